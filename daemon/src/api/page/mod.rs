//! The status page (`GET /status`): read-only HTML rendered from the same document
//! as `/v1/status`, so the page and the API cannot disagree. The page is complete
//! without JavaScript (a `<noscript>` refresh reloads it); with JavaScript,
//! `page.js` fetches `GET /status/live` (this renderer's output for `<main>`)
//! every second and swaps it in. One renderer, in Rust, escapes everything: the
//! script never builds markup from data.
//!
//! Everything is embedded in the binary (no CDN); the responses carry a strict CSP
//! (no inline script at all, no framing).

use std::fmt::Write as _;

use serde_json::Value;

pub const CSS: &str = include_str!("page.css");
pub const JS: &str = include_str!("page.js");
/// The page names its icon, so a browser does not ask for `/favicon.ico`: that
/// path is not the page's, so Basic credentials stop there with a 401.
pub const ICON: &str = include_str!("icon.svg");
const SHELL: &str = include_str!("page.html");

/// The headers of every page response (HTML, CSS, JS, and the 401 that asks for
/// the token). `default-src 'self'`: no inline script or style, nothing from
/// elsewhere; `frame-ancestors 'none'`: no clickjacking through a frame.
pub const CSP: &str =
    "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'";

/// HTML-escapes text for element content and double-quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The whole page around [`live`].
pub fn page(doc: &Value, now_ms: u64) -> String {
    let node = doc["node"].as_str().unwrap_or("?");
    SHELL
        .replace("{{title}}", &esc(&format!("{node} · hafront")))
        .replace("{{body}}", &live(doc, now_ms))
}

/// Text of a JSON value shown as-is (strings without quotes), escaped.
fn t(v: &Value) -> String {
    match v {
        Value::Null => "–".into(),
        Value::String(s) => esc(s),
        other => esc(&other.to_string()),
    }
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

fn u(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(0)
}

/// A value made only of a-z, 0-9 and '_' (for class names).
fn token(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// `YYYY-MM-DD HH:MM:SS` UTC (up to the year 9999).
pub fn utc(unix_ms: u64) -> String {
    const MAX_SECS: u64 = 253_402_300_799; // 9999-12-31 23:59:59
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs((unix_ms / 1000).min(MAX_SECS));
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replace('T', " ")
        .trim_end_matches('Z')
        .to_string()
}

/// `4.2 s`, `12 min`, `3 h 5 min`, `2 d 4 h`.
pub fn span(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{:.1} s", ms as f64 / 1000.0),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        3600..=86_399 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

fn ago(unix_ms: u64, now_ms: u64) -> String {
    format!("{} ago", span(now_ms.saturating_sub(unix_ms)))
}

/// `1.5 KiB`: bytes in binary units.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

fn badge(class: &str, text: &str) -> String {
    format!(r#"<span class="badge {}">{}</span>"#, esc(class), esc(text))
}

/// `up` / `down` / `pending` for a verdict that may not exist yet.
fn verdict(up: &Value) -> String {
    match up.as_bool() {
        Some(true) => badge("up", "UP"),
        Some(false) => badge("down", "DOWN"),
        None => badge("pending", "PENDING"),
    }
}

/// What goes inside `<main id="live">`: header, alerts, instances, checks, IPVS,
/// supervised services.
pub fn live(doc: &Value, now_ms: u64) -> String {
    let mut o = String::with_capacity(16 * 1024);
    header(&mut o, doc, now_ms);
    alerts(&mut o, doc, now_ms);
    instances(&mut o, doc, now_ms);
    checks(&mut o, doc);
    ipvs(&mut o, doc);
    services(&mut o, doc);
    o
}

fn header(o: &mut String, doc: &Value, now_ms: u64) {
    let uptime = doc["uptime_seconds"].as_f64().unwrap_or(0.0);
    let _ = write!(
        o,
        r#"<header><h1>hafront · <span class="node">{}</span></h1><p class="meta">version {} · pid {} · up {} · rendered <time data-unix-ms="{now_ms}">{} UTC</time>"#,
        t(&doc["node"]),
        t(&doc["version"]),
        t(&doc["pid"]),
        esc(&span((uptime * 1000.0) as u64)),
        utc(now_ms),
    );
    let unknown = u(doc, "unknown_vrid_packets");
    if unknown > 0 {
        let _ = write!(o, " · {unknown} adverts for unknown VRIDs");
    }
    o.push_str("</p></header>\n");
}

fn alerts(o: &mut String, doc: &Value, now_ms: u64) {
    let mut list: Vec<(&str, String)> = Vec::new();
    let empty = serde_json::Map::new();
    let instances = doc["instances"].as_object().unwrap_or(&empty);
    for (name, i) in instances {
        let sb = &i["split_brain"];
        if sb["active"].as_bool() == Some(true) {
            let since = sb["since_unix_ms"]
                .as_u64()
                .map(|ms| format!(" (since {} UTC, {})", utc(ms), ago(ms, now_ms)))
                .unwrap_or_default();
            list.push((
                "bad",
                format!(
                    "<b>Split brain</b> on instance <b>{}</b>{}: {}",
                    esc(name),
                    esc(&since),
                    t(&sb["detail"])
                ),
            ));
        }
        if s(i, "state") == "fault" {
            let reasons: Vec<&str> = i["tracking"]["reasons"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let why = if reasons.is_empty() {
                "interface down".to_string()
            } else {
                reasons.join("; ")
            };
            list.push((
                "warn",
                format!("Instance <b>{}</b> is in FAULT: {}", esc(name), esc(&why)),
            ));
        }
    }
    let reload = &doc["reload"];
    if reload["successful"].as_bool() == Some(false) {
        let at = u(reload, "last_unix_ms");
        list.push((
            "bad",
            format!(
                "<b>Reload rejected</b> ({} at {} UTC, {}): {} — still running the configuration loaded at {} UTC",
                t(&reload["by"]),
                utc(at),
                esc(&ago(at, now_ms)),
                t(&reload["error"]),
                utc(u(reload, "last_success_unix_ms")),
            ),
        ));
    }
    if let Some(e) = doc["overrides_error"].as_str() {
        list.push((
            "warn",
            format!(
                "overrides.json was unusable at start, every instance began in maintenance: {}",
                esc(e)
            ),
        ));
    }
    let ipvs = &doc["ipvs"];
    if ipvs["available"].as_bool() == Some(false) {
        list.push(("bad", format!("<b>IPVS unavailable</b>: {}", t(&ipvs["error"]))));
    }
    if let Some(svcs) = ipvs["services"].as_object() {
        for (name, svc) in svcs {
            if svc["quorum_lost"].as_bool() == Some(true) {
                let sorry = if svc["sorry_server_active"].as_bool() == Some(true) {
                    ", the sorry server answers"
                } else {
                    ""
                };
                list.push((
                    "bad",
                    format!(
                        "IPVS service <b>{}</b> (<code>{}</code>) is below quorum{sorry}",
                        esc(name),
                        t(&svc["key"])
                    ),
                ));
            }
        }
    }
    if let Some(svcs) = doc["services"].as_object() {
        for (name, svc) in svcs {
            if svc["failed"].as_bool() == Some(true) {
                list.push((
                    "bad",
                    format!(
                        "Supervised {} <b>{}</b> failed (past its restart limit): {}",
                        t(&svc["kind"]),
                        esc(name),
                        t(&svc["last_exit"])
                    ),
                ));
            }
        }
    }
    o.push_str(r#"<section class="alerts" id="alerts">"#);
    if list.is_empty() {
        o.push_str(r#"<div class="alert ok">No alerts: no split brain, last reload applied.</div>"#);
    }
    for (class, text) in list {
        let _ = write!(o, r#"<div class="alert {class}">{text}</div>"#);
    }
    o.push_str("</section>\n");
}

/// The effective priority and why it differs from the configured one.
fn priority_why(i: &Value) -> String {
    let tr = &i["tracking"];
    let mut why = Vec::new();
    if i["maintenance"].as_bool() == Some(true) {
        why.push("maintenance (API)".to_string());
    }
    if tr["priority_overridden"].as_bool() == Some(true) {
        why.push(format!("operator override: base {}", u(tr, "base_priority")));
    }
    if tr.is_object() {
        let base = u(tr, "base_priority") as i64;
        let eff = u(tr, "effective_priority") as i64;
        if eff != base {
            let items: Vec<String> = tr["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|it| it["up"].as_bool() == Some(false) && it["weight"].as_i64() != Some(0))
                .map(|it| {
                    format!(
                        "{} {} {:+}",
                        s(it, "kind"),
                        s(it, "name"),
                        it["weight"].as_i64().unwrap_or(0)
                    )
                })
                .collect();
            let mut text = format!("tracking {:+}", eff - base);
            if !items.is_empty() {
                let _ = write!(text, " ({})", items.join(", "));
            }
            why.push(text);
        }
        if tr["fault"].as_bool() == Some(true) {
            why.push("tracking fault".into());
        }
    }
    if why.is_empty() {
        "as configured".into()
    } else {
        why.join("; ")
    }
}

fn instances(o: &mut String, doc: &Value, now_ms: u64) {
    o.push_str(r#"<section id="instances"><h2>VRRP instances</h2>"#);
    let empty = serde_json::Map::new();
    let instances = doc["instances"].as_object().unwrap_or(&empty);
    if instances.is_empty() {
        o.push_str(r#"<p class="empty">No VRRP instance configured.</p>"#);
    }
    o.push_str(r#"<div class="cards">"#);
    for (name, i) in instances {
        let state = s(i, "state");
        let st = token(state);
        let _ = write!(
            o,
            r#"<article class="card inst st-{st}" data-instance="{}" data-state="{}"><h3><span class="name">{}</span> {}</h3><dl>"#,
            esc(name),
            esc(state),
            esc(name),
            badge(&format!("st-{st}"), &state.to_uppercase()),
        );
        let _ = write!(
            o,
            "<dt>Interface</dt><dd><code>{}</code> · VRID {} · VRRPv{} · advert {} ms</dd>",
            t(&i["interface"]),
            t(&i["vrid"]),
            t(&i["version"]),
            t(&i["advert_interval_ms"]),
        );
        let _ = write!(
            o,
            r#"<dt>Priority</dt><dd><b class="prio">{}</b> advertised · {} configured <span class="why">— {}</span></dd>"#,
            t(&i["priority"]),
            t(&i["configured_priority"]),
            esc(&priority_why(i)),
        );
        let vips: Vec<String> = i["vips"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| format!("<code>{}</code>", t(v)))
            .collect();
        let _ = write!(
            o,
            "<dt>VIPs</dt><dd>{}</dd>",
            if vips.is_empty() {
                "–".to_string()
            } else {
                vips.join(" ")
            }
        );
        let master = match (&i["master"], state) {
            (Value::Null, "master") => "this node".to_string(),
            (Value::Null, _) => "none heard".to_string(),
            (m, "master") => format!("this node ({})", t(m)),
            (m, _) => format!("<code>{}</code>", t(m)),
        };
        let _ = write!(o, "<dt>Master</dt><dd>{master}</dd>");
        let since = i["last_transition"]["unix_ms"]
            .as_u64()
            .map(|ms| format!(", last {}", ago(ms, now_ms)))
            .unwrap_or_default();
        let _ = write!(
            o,
            "<dt>Transitions</dt><dd>{}{}</dd>",
            u(i, "transitions"),
            esc(&since)
        );
        o.push_str("</dl>");
        timeline(o, i, now_ms);
        tracked(o, i);
        o.push_str("</article>");
    }
    o.push_str("</div></section>\n");
}

fn timeline(o: &mut String, i: &Value, now_ms: u64) {
    let recent = i["recent_transitions"].as_array().cloned().unwrap_or_default();
    if recent.is_empty() {
        return;
    }
    o.push_str(r#"<ol class="timeline" reversed>"#);
    for tr in recent.iter().rev() {
        let at = u(tr, "unix_ms");
        let _ = write!(
            o,
            r#"<li class="to-{}"><time data-unix-ms="{at}">{} UTC</time> <b>{}</b> → <b>{}</b> <span class="why">{} · {}</span></li>"#,
            token(s(tr, "to")),
            utc(at),
            esc(&s(tr, "from").to_uppercase()),
            esc(&s(tr, "to").to_uppercase()),
            t(&tr["reason"]),
            esc(&ago(at, now_ms)),
        );
    }
    o.push_str("</ol>");
}

fn tracked(o: &mut String, i: &Value) {
    let items = i["tracking"]["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        return;
    }
    o.push_str(r#"<div class="tablewrap"><table class="tracked"><thead><tr><th>Tracked</th><th>Name</th><th>State</th><th class="num">Weight</th></tr></thead><tbody>"#);
    for it in &items {
        let value = it["value"]
            .as_i64()
            .map(|v| format!(" (value {v})"))
            .unwrap_or_default();
        let _ = write!(
            o,
            r#"<tr><td>{}</td><td><code>{}</code></td><td>{}{}</td><td class="num">{}</td></tr>"#,
            t(&it["kind"]),
            t(&it["name"]),
            verdict(&it["up"]),
            esc(&value),
            t(&it["weight"]),
        );
    }
    o.push_str("</tbody></table></div>");
}

fn check_table(o: &mut String, title: &str, id: &str, map: &serde_json::Map<String, Value>) {
    let _ = write!(
        o,
        r#"<div class="panel" id="{id}"><h3>{}</h3><div class="tablewrap"><table><thead><tr><th>Name</th><th>Kind</th><th>Verdict</th><th class="num">Latency</th><th class="num">OK/fail in a row</th><th class="num">Probes</th><th>Last error</th></tr></thead><tbody>"#,
        esc(title)
    );
    for (name, c) in map {
        let latency = c["last_latency_ms"]
            .as_f64()
            .map(|ms| format!("{ms:.1} ms"))
            .unwrap_or_else(|| "–".into());
        let _ = write!(
            o,
            r#"<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td class="num">{}</td><td class="num">{}/{}</td><td class="num">{}</td><td>{}</td></tr>"#,
            esc(name),
            t(&c["kind"]),
            verdict(&c["up"]),
            esc(&latency),
            u(c, "consecutive_ok"),
            u(c, "consecutive_fail"),
            u(c, "checks_total"),
            if c["last_error"].is_null() {
                String::new()
            } else {
                t(&c["last_error"])
            },
        );
    }
    o.push_str("</tbody></table></div></div>");
}

fn checks(o: &mut String, doc: &Value) {
    let checks = doc["checks"].as_object().filter(|m| !m.is_empty());
    let scripts = doc["scripts"].as_object().filter(|m| !m.is_empty());
    if checks.is_none() && scripts.is_none() {
        return;
    }
    o.push_str(r#"<section id="checks"><h2>Health checks</h2>"#);
    if let Some(m) = checks {
        check_table(o, "Checks", "checks-table", m);
    }
    if let Some(m) = scripts {
        check_table(o, "Tracking scripts", "scripts-table", m);
    }
    o.push_str("</section>\n");
}

fn ipvs(o: &mut String, doc: &Value) {
    let ipvs = &doc["ipvs"];
    let Some(svcs) = ipvs["services"].as_object().filter(|m| !m.is_empty()) else {
        return;
    };
    o.push_str(r#"<section id="ipvs"><h2>IPVS services</h2>"#);
    for (name, svc) in svcs {
        let mut flags = Vec::new();
        flags.push(if svc["installed"].as_bool() == Some(true) {
            badge("up", "INSTALLED")
        } else {
            badge("", "NOT INSTALLED")
        });
        if svc["quorum_lost"].as_bool() == Some(true) {
            flags.push(badge("down", "QUORUM LOST"));
        }
        if svc["sorry_server_active"].as_bool() == Some(true) {
            flags.push(badge("warn", "SORRY SERVER"));
        }
        let st = &svc["stats"];
        let stats = if st.is_object() {
            format!(
                " · {} conns · {}/s · in {} · out {}",
                u(st, "conns"),
                u(st, "cps"),
                bytes(u(st, "in_bytes")),
                bytes(u(st, "out_bytes"))
            )
        } else {
            String::new()
        };
        let _ = write!(
            o,
            r#"<div class="panel svc" data-service="{}"><h3><span>{}</span> <code>{}</code> {}</h3><p class="meta">scheduler {}{}</p>"#,
            esc(name),
            esc(name),
            t(&svc["key"]),
            flags.join(" "),
            t(&svc["scheduler"]),
            esc(&stats),
        );
        o.push_str(r#"<div class="tablewrap"><table><thead><tr><th>Real server</th><th>Health</th><th class="num">Weight</th><th class="num">Active</th><th class="num">Inactive</th><th class="num">Conns</th><th class="num">In</th><th class="num">Out</th></tr></thead><tbody>"#);
        for rs in svc["real_servers"].as_array().into_iter().flatten() {
            let health = if rs["disabled"].as_bool() == Some(true) {
                badge("warn", "DISABLED")
            } else if rs["healthy"].as_bool() == Some(true) {
                badge("up", "UP")
            } else {
                badge("down", "DOWN")
            };
            let mut weight = match rs["weight"].as_u64() {
                Some(w) => w.to_string(),
                None => "–".into(),
            };
            let _ = write!(weight, " / {}", u(rs, "configured_weight"));
            if let Some(w) = rs["weight_override"].as_u64() {
                let _ = write!(weight, " (override {w})");
            }
            let c = &rs["counters"];
            let (active, inactive, conns, inb, outb) = if c.is_object() {
                (
                    u(c, "active_conns").to_string(),
                    u(c, "inactive_conns").to_string(),
                    u(&c["stats"], "conns").to_string(),
                    bytes(u(&c["stats"], "in_bytes")),
                    bytes(u(&c["stats"], "out_bytes")),
                )
            } else {
                Default::default()
            };
            let _ = write!(
                o,
                r#"<tr><td><code>{}</code></td><td>{health}</td><td class="num">{}</td><td class="num">{active}</td><td class="num">{inactive}</td><td class="num">{conns}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
                t(&rs["address"]),
                esc(&weight),
                esc(&inb),
                esc(&outb),
            );
        }
        o.push_str("</tbody></table></div></div>");
    }
    o.push_str("</section>\n");
}

fn services(o: &mut String, doc: &Value) {
    let Some(svcs) = doc["services"].as_object().filter(|m| !m.is_empty()) else {
        return;
    };
    o.push_str(r#"<section id="services"><h2>Supervised services</h2><div class="panel"><div class="tablewrap"><table><thead><tr><th>Name</th><th>Kind</th><th>State</th><th class="num">PID</th><th>Runs on</th><th class="num">Restarts</th><th>Last exit</th></tr></thead><tbody>"#);
    for (name, svc) in svcs {
        let state = s(svc, "state");
        let class = match state {
            "running" => "up",
            "failed" | "down" => "down",
            _ => "warn",
        };
        let adopted = if svc["adopted"].as_bool() == Some(true) {
            " (adopted)"
        } else {
            ""
        };
        let run_on = match svc["instance"].as_str() {
            Some(i) => format!("{} of {}", s(svc, "run_on"), i),
            None => s(svc, "run_on").to_string(),
        };
        let _ = write!(
            o,
            r#"<tr><td><code>{}</code></td><td>{}</td><td>{}{adopted}</td><td class="num">{}</td><td>{}</td><td class="num">{}</td><td>{}</td></tr>"#,
            esc(name),
            t(&svc["kind"]),
            badge(class, &state.to_uppercase()),
            t(&svc["pid"]),
            esc(&run_on),
            u(svc, "restarts"),
            if svc["last_exit"].is_null() {
                String::new()
            } else {
                t(&svc["last_exit"])
            },
        );
    }
    o.push_str("</tbody></table></div></div></section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const EVIL: &str = r#"<script>alert("x")</script><img src=x onerror='alert(1)'>&amp;"#;

    /// A status document with the hostile string in every free-text field.
    fn hostile() -> Value {
        json!({
            "node": EVIL,
            "pid": 42, "version": EVIL, "uptime_seconds": 12.5,
            "unknown_vrid_packets": 0,
            "instances": {
                EVIL: {
                    "state": "fault", "interface": EVIL, "vrid": 51, "version": 3,
                    "priority": 90, "configured_priority": 150, "maintenance": false,
                    "transitions": 2, "master": EVIL, "vips": [EVIL, "192.0.2.100/24"],
                    "advert_interval_ms": 100,
                    "last_transition": {"unix_ms": 1_700_000_000_000u64, "from": "backup", "to": "master", "reason": EVIL},
                    "recent_transitions": [
                        {"unix_ms": 1_699_999_990_000u64, "from": "initialize", "to": EVIL, "reason": EVIL},
                        {"unix_ms": 1_700_000_000_000u64, "from": "backup", "to": "master", "reason": "master_down"}
                    ],
                    "tracking": {
                        "base_priority": 150, "priority_overridden": false, "effective_priority": 90,
                        "fault": true, "reasons": [EVIL],
                        "items": [{"kind": "file", "name": EVIL, "weight": -60, "up": false, "value": 3}]
                    },
                    "split_brain": {"active": true, "since_unix_ms": 1_700_000_000_000u64, "detail": EVIL, "detected": 1}
                }
            },
            "checks": {EVIL: {"kind": EVIL, "up": false, "dynamic_weight": null, "last_latency_ms": null,
                              "last_error": EVIL, "consecutive_ok": 0, "consecutive_fail": 3, "checks_total": 9}},
            "scripts": {},
            "ipvs": {"available": false, "error": EVIL, "services": {EVIL: {
                "key": EVIL, "scheduler": EVIL, "installed": true, "sorry_server_active": true, "quorum_lost": true,
                "stats": null,
                "real_servers": [{"address": EVIL, "configured_weight": 1, "weight": null, "healthy": false,
                                  "disabled": false, "counters": null}]
            }}, "sync": {}},
            "services": {EVIL: {"kind": EVIL, "state": EVIL, "pid": null, "adopted": false, "run_on": EVIL,
                                "instance": EVIL, "up": false, "failed": true, "restarts": 3,
                                "consecutive_failures": 3, "last_exit": EVIL}},
            "overrides": {},
            "overrides_error": EVIL,
            "reload": {"last_unix_ms": 1_700_000_000_000u64, "by": "API", "successful": false, "error": EVIL,
                       "last_success_unix_ms": 1_699_999_000_000u64}
        })
    }

    #[test]
    fn escapes_every_field() {
        assert_eq!(
            esc(r#"<a href="x" b='y'>&"#),
            "&lt;a href=&quot;x&quot; b=&#39;y&#39;&gt;&amp;"
        );
        let html = page(&hostile(), 1_700_000_001_000);
        // Only the shell's own script element, and no markup from the data.
        assert_eq!(html.matches("<script").count(), 1, "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("onerror='"), "{html}");
        assert!(!html.contains(r#"alert("x")"#));
        // The text is there, escaped (so a browser shows it as typed).
        let shown = esc(EVIL);
        assert!(
            html.contains(&format!("<title>{} · hafront</title>", shown)),
            "title"
        );
        // node, version, instance name (x2: attribute and heading), interface, master, VIP,
        // reason, tracked item, fault reason, split brain detail, check name and error and
        // kind, IPVS error, service name/key/scheduler, real server, supervised
        // service fields, overrides error, reload error: far more than 20.
        assert!(
            html.matches(&shown).count() >= 20,
            "{}",
            html.matches(&shown).count()
        );
        // Attribute values cannot be left: no raw quote from the data anywhere.
        assert!(!html.contains(r#"data-instance="<"#));
    }

    #[test]
    fn alerts_on_top() {
        let html = live(&hostile(), 1_700_000_001_000);
        let alerts = html.find(r#"id="alerts""#).unwrap();
        let instances = html.find(r#"id="instances""#).unwrap();
        assert!(alerts < instances);
        let top = &html[alerts..instances];
        for want in [
            "Split brain",
            "Reload rejected",
            "IPVS unavailable",
            "below quorum",
            "failed (past its restart limit)",
            "in FAULT",
            "overrides.json",
        ] {
            assert!(top.contains(want), "no {want:?} alert in {top}");
        }
        // A quiet node says so.
        let quiet = json!({"node": "n", "instances": {}, "reload": {"successful": true}});
        assert!(live(&quiet, 0).contains("No alerts"));
    }

    #[test]
    fn instance_card_state_priority_and_timeline() {
        let doc = json!({
            "node": "n",
            "instances": {"web": {
                "state": "backup", "interface": "eth0", "vrid": 51, "version": 3,
                "priority": 90, "configured_priority": 150, "maintenance": false,
                "transitions": 2, "master": "192.0.2.1", "vips": ["192.0.2.100/24"],
                "advert_interval_ms": 100,
                "recent_transitions": [
                    {"unix_ms": 1_700_000_000_000u64, "from": "initialize", "to": "backup", "reason": "startup"},
                    {"unix_ms": 1_700_000_005_000u64, "from": "master", "to": "backup", "reason": "higher_priority"}
                ],
                "tracking": {"base_priority": 150, "priority_overridden": false, "effective_priority": 90,
                             "fault": false, "reasons": [],
                             "items": [{"kind": "check", "name": "web", "weight": -60, "up": false}]}
            }}
        });
        let html = live(&doc, 1_700_000_010_000);
        assert!(
            html.contains(r#"data-instance="web" data-state="backup""#),
            "{html}"
        );
        assert!(html.contains("BACKUP"));
        assert!(html.contains("tracking -60 (check web -60)"), "{html}");
        assert!(html.contains("<code>192.0.2.1</code>"));
        // Newest first.
        let a = html.find("2023-11-14 22:13:25 UTC").unwrap();
        let b = html.find("2023-11-14 22:13:20 UTC").unwrap();
        assert!(a < b, "{html}");
        assert!(html.contains("5.0 s ago"));
    }

    #[test]
    fn formats() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(utc(1_700_000_000_123), "2023-11-14 22:13:20");
        assert_eq!(utc(u64::MAX), "9999-12-31 23:59:59");
        assert_eq!(span(1_500), "1.5 s");
        assert_eq!(span(125_000), "2 min 5 s");
        assert_eq!(span(3_600_000 * 26), "1 d 2 h");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(token("Master<x>"), "masterx");
    }

    #[test]
    fn junk_documents_do_not_panic() {
        for doc in [
            json!(null),
            json!([]),
            json!({"instances": [1, 2]}),
            json!({"instances": {"a": null}, "ipvs": {"services": {"s": {"real_servers": 3}}}}),
            json!({"services": {"x": 1}, "checks": {"c": "x"}, "reload": {"successful": false}}),
        ] {
            let _ = page(&doc, u64::MAX);
        }
    }
}
