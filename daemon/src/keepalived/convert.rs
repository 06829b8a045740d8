//! From keepalived's statement tree to hafront's configuration, as TOML sections
//! with the source line of every item, and the list of what was not carried over.
//!
//! Rules:
//! - a value hafront or keepalived would reject (bad address, priority out of
//!   range, unknown scheduler...) is an error naming the line;
//! - an unknown block is an error: keepalived skips it, and whatever it swallowed
//!   (often the next block) silently goes missing;
//! - a keyword with no hafront equivalent, or an unknown single-line keyword, is a
//!   warning (`Dropped`), fatal with `--strict`;
//! - where keepalived's default differs from hafront's (VRRP version 2, checker
//!   timings), the keepalived value is written out so the node behaves the same.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

use super::emit::{Section, Value};
use super::error::{ImportError, Loc, Warning, WarningKind};
use super::parser::Node;
use crate::config::ipvs::SCHEDULERS;

type R<T> = Result<T, ImportError>;

pub struct Converted {
    pub sections: Vec<Section>,
    pub warnings: Vec<Warning>,
}

const NO_EVENT_WHY: &str =
    "not carried over: hafront notifies an instance's MASTER, BACKUP, FAULT and STOP only";
const CHECKER_NOTIFY_WHY: &str = "not carried over: hafront has no notify scripts for real servers or \
     quorum (its checks and IPVS state are in `hafront status`, the API and /metrics)";
const SCRIPT_SECURITY_WHY: &str = "not carried over: hafront runs scripts and exec checks as \
     security.script_user, without a shell, from an absolute program path (see docs/migration.md)";

/// keepalived's defaults where they differ from hafront's.
const KA_VRRP_VERSION: i64 = 2;
const KA_DELAY_LOOP: Duration = Duration::from_secs(60);
const KA_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const KA_RETRY: i64 = 1;

#[derive(Default)]
struct Globals {
    version: Option<(i64, Loc)>,
    strict: Option<Loc>,
    garp_delay: Option<(Duration, Loc)>,
    garp_repeat: Option<(i64, Loc)>,
    garp_refresh: Option<(Duration, Loc)>,
    garp_lower_prio: Option<(bool, Loc)>,
    /// keepalived's e-mail settings (global_defs), carried as [notify.smtp] when
    /// something asks for mail (smtp_alert).
    smtp_server: Option<(String, Loc)>,
    smtp_from: Option<(String, Loc)>,
    smtp_to: Vec<(String, Loc)>,
    smtp_to_block: Option<Loc>,
    smtp_timeout: Option<(Duration, Loc)>,
    /// Where mail is asked for: smtp_alert in an instance, group or global_defs.
    smtp_alert: Option<Loc>,
}

struct TrackDef {
    name: String,
    weight: i64,
}

#[derive(Default)]
struct Cx {
    warnings: Vec<Warning>,
    g: Globals,
    /// keepalived vrrp_script name -> hafront script (None: not carried over).
    scripts: BTreeMap<String, Option<TrackDef>>,
    files: BTreeMap<String, TrackDef>,
    /// keepalived instance name -> hafront name.
    instances: BTreeMap<String, String>,
    /// Names taken, per table (`scripts`, `checks`...).
    used: BTreeSet<String>,
    sections: Vec<Section>,
}

pub fn convert(tree: &[Node]) -> R<Converted> {
    let mut cx = Cx::default();
    // First the definitions others refer to: globals, scripts, files, instance names.
    for n in tree {
        match n.keyword.as_str() {
            "global_defs" => cx.global_defs(n)?,
            "vrrp_script" => cx.vrrp_script(n)?,
            "vrrp_track_file" => cx.track_file(n)?,
            "vrrp_instance" => {
                let kname = name_arg(n)?;
                if cx.instances.contains_key(kname) {
                    return Err(ImportError::new(
                        &n.loc,
                        format!("vrrp_instance {kname} is defined twice"),
                    ));
                }
                let name = cx.unique_name("vrrp.instances", kname);
                cx.instances.insert(kname.to_string(), name);
            }
            _ => {}
        }
    }
    for n in tree {
        match n.keyword.as_str() {
            "global_defs" | "vrrp_script" | "vrrp_track_file" => {}
            "vrrp_instance" => cx.instance(n)?,
            "vrrp_sync_group" => cx.sync_group(n)?,
            "virtual_server" => cx.virtual_server(n)?,
            "virtual_server_group"
            | "static_ipaddress"
            | "static_routes"
            | "static_rules"
            | "garp_group"
            | "linkbeat_interfaces"
            | "bfd_instance"
            | "vrrp_track_process" => {
                cx.skip(n, "not carried over: hafront has no equivalent (the whole block)")
            }
            _ => cx.other(n, "the top level")?,
        }
    }
    cx.notify_smtp();
    Ok(Converted {
        sections: cx.sections,
        warnings: cx.warnings,
    })
}

// ---- helpers -------------------------------------------------------------------

fn block(n: &Node) -> R<&[Node]> {
    n.children
        .as_deref()
        .ok_or_else(|| ImportError::new(&n.loc, format!("{}: expected a block ('{{ ... }}')", n.head())))
}

fn name_arg(n: &Node) -> R<&str> {
    n.args
        .first()
        .map(String::as_str)
        .ok_or_else(|| ImportError::new(&n.loc, format!("{} needs a name", n.keyword)))
}

fn arg(n: &Node, i: usize) -> R<&str> {
    n.args
        .get(i)
        .map(String::as_str)
        .ok_or_else(|| ImportError::new(&n.loc, format!("{}: missing value", n.keyword)))
}

fn int(n: &Node, i: usize, lo: i64, hi: i64) -> R<i64> {
    let s = arg(n, i)?;
    match s.parse::<i64>() {
        Ok(v) if (lo..=hi).contains(&v) => Ok(v),
        _ => Err(ImportError::new(
            &n.loc,
            format!("{} {s}: must be an integer in {lo}..{hi}", n.keyword),
        )),
    }
}

/// keepalived times: seconds, possibly with a fraction (`1`, `0.5`).
fn secs(n: &Node, i: usize) -> R<Duration> {
    let s = arg(n, i)?;
    parse_secs(s)
        .ok_or_else(|| ImportError::new(&n.loc, format!("{} {s}: expected a number of seconds", n.keyword)))
}

fn parse_secs(s: &str) -> Option<Duration> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    let ok = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if !ok(whole) || !ok(frac) || frac.len() > 9 || whole.len() > 9 {
        return None;
    }
    let secs: u64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    Some(Duration::new(secs, nanos))
}

fn dur(d: Duration) -> toml::Value {
    toml::Value::String(humantime::format_duration(d).to_string())
}

fn ip(n: &Node, s: &str) -> R<IpAddr> {
    s.parse()
        .map_err(|_| ImportError::new(&n.loc, format!("{}: {s:?} is not an IP address", n.keyword)))
}

fn port(n: &Node, s: &str) -> R<u16> {
    s.parse()
        .map_err(|_| ImportError::new(&n.loc, format!("{}: {s:?} is not a port (0..65535)", n.keyword)))
}

/// `IP:port`, IPv6 in brackets.
fn sockaddr(a: IpAddr, p: u16) -> String {
    SocketAddr::new(a, p).to_string()
}

/// A hafront name (1-32 of a-z 0-9 _ -, starting with a letter or digit) for a
/// keepalived name.
pub fn hafront_name(raw: &str) -> String {
    let mut s: String = raw
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let trimmed = s.trim_start_matches(['_', '-']);
    if trimmed.len() != s.len() {
        s = trimmed.to_string();
    }
    if s.is_empty() {
        s = "x".to_string();
    }
    s.truncate(32);
    s
}

/// keepalived splits a script string on blanks, single or double quotes grouping.
fn argv(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn track_table(name: &str, weight: i64) -> toml::Value {
    let mut t = toml::Table::new();
    t.insert("name".into(), name.into());
    t.insert("weight".into(), weight.into());
    toml::Value::Table(t)
}

fn why_unknown(keyword: &str, ctx: &str) -> String {
    if !keyword.is_empty() && keyword.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        format!("not carried over: hafront has no equivalent in {ctx}")
    } else {
        "not a keepalived keyword (prose or a typo?): ignored, as keepalived ignores it".to_string()
    }
}

impl Cx {
    fn warn(&mut self, n: &Node, kind: WarningKind, why: impl Into<String>) {
        self.warnings.push(Warning {
            loc: n.loc.clone(),
            keyword: n.keyword.clone(),
            why: why.into(),
            kind,
        });
    }

    fn skip(&mut self, n: &Node, why: impl Into<String>) {
        self.warn(n, WarningKind::Dropped, why);
    }

    fn changed(&mut self, n: &Node, why: impl Into<String>) {
        self.warn(n, WarningKind::Changed, why);
    }

    /// A keyword the context does not handle: an unknown block is an error, a
    /// single line a warning.
    fn other(&mut self, n: &Node, ctx: &str) -> R<()> {
        if n.children.is_some() {
            return Err(ImportError::new(
                &n.loc,
                format!(
                    "unknown block '{}' in {ctx} (keepalived would skip it and everything inside it)",
                    n.head()
                ),
            ));
        }
        self.skip(n, why_unknown(&n.keyword, ctx));
        Ok(())
    }

    fn unique_name(&mut self, table: &str, raw: &str) -> String {
        let base = hafront_name(raw);
        let mut name = base.clone();
        let mut k = 2;
        while !self.used.insert(format!("{table}.{name}")) {
            let suffix = format!("_{k}");
            let mut b = base.clone();
            b.truncate(32 - suffix.len());
            name = format!("{b}{suffix}");
            k += 1;
        }
        name
    }

    /// The comment for a key: its line, and the file if it differs from the
    /// section's.
    fn at(section_loc: &Loc, n: &Node) -> Option<String> {
        if n.loc.file == section_loc.file {
            Some(format!("line {}", n.loc.line))
        } else {
            Some(n.loc.to_string())
        }
    }

    // ---- global_defs -----------------------------------------------------------

    fn global_defs(&mut self, n: &Node) -> R<()> {
        // keepalived allows several global_defs blocks: one [node] table.
        let mut node = match self.sections.iter().position(|s| s.path == "node") {
            Some(i) => self.sections.remove(i),
            None => Section::new("node"),
        };
        node.comments.push(format!("{} global_defs", n.loc));
        let mut script_user = None;
        let mut vrrp: Option<Section> = None;
        for c in block(n)? {
            let kw = c.keyword.as_str();
            match kw {
                "router_id" | "lvs_id" => {
                    node.set("name", arg(c, 0)?, Self::at(&n.loc, c));
                }
                "vrrp_version" => self.g.version = Some((int(c, 0, 2, 3)?, c.loc.clone())),
                "vrrp_strict" => {
                    self.g.strict = Some(c.loc.clone());
                    self.changed(
                        c,
                        "carried over as accept = false on every instance (unless it sets accept); \
                         as keepalived in strict mode, authentication is not used. hafront checks \
                         the RFC rules always",
                    );
                }
                "vrrp_garp_master_delay" => self.g.garp_delay = Some((secs(c, 0)?, c.loc.clone())),
                "vrrp_garp_master_repeat" => self.g.garp_repeat = Some((int(c, 0, 1, 100)?, c.loc.clone())),
                "vrrp_garp_master_refresh" => self.g.garp_refresh = Some((secs(c, 0)?, c.loc.clone())),
                "vrrp_garp_lower_prio_repeat" => {
                    self.g.garp_lower_prio = Some((int(c, 0, 0, i64::MAX)? > 0, c.loc.clone()))
                }
                "vrrp_garp_interval" | "vrrp_gna_interval" => {
                    if parse_secs(arg(c, 0)?).is_some_and(|d| d.is_zero()) {
                        self.changed(
                            c,
                            "0 is no delay, which keepalived rejects and replaces by its default (no \
                             delay); hafront sends its bursts without a delay too: nothing to carry",
                        );
                    } else {
                        self.skip(c, "not carried over: hafront sends a burst without a delay between messages");
                    }
                }
                "vrrp_mcast_group4" | "vrrp_mcast_group6" => {
                    let a = ip(c, arg(c, 0)?)?;
                    let default: IpAddr = if kw == "vrrp_mcast_group4" {
                        [224, 0, 0, 18].into()
                    } else {
                        "ff02::12".parse().unwrap_or(a)
                    };
                    if a != default {
                        self.skip(c, format!("not carried over: hafront always uses the RFC group {default}"));
                    }
                }
                "notification_email" => {
                    self.g.smtp_to_block = Some(c.loc.clone());
                    for a in block(c)? {
                        self.g.smtp_to.push((a.keyword.clone(), a.loc.clone()));
                    }
                }
                "notification_email_from" => self.g.smtp_from = Some((arg(c, 0)?.to_string(), c.loc.clone())),
                "smtp_server" => {
                    // An address or a host name, then an optional port.
                    let host = arg(c, 0)?;
                    let p = match c.args.get(1) {
                        Some(p) => port(c, p)?,
                        None => 25,
                    };
                    let server = match host.parse::<IpAddr>() {
                        Ok(a) => sockaddr(a, p),
                        Err(_) => format!("{host}:{p}"),
                    };
                    self.g.smtp_server = Some((server, c.loc.clone()));
                }
                "smtp_connect_timeout" => self.g.smtp_timeout = Some((secs(c, 0)?, c.loc.clone())),
                "smtp_alert" | "smtp_alert_vrrp" => {
                    if c.args.first().is_none_or(|a| a != "false" && a != "no" && a != "off") {
                        self.g.smtp_alert.get_or_insert(c.loc.clone());
                    }
                }
                "smtp_helo_name" => self.skip(c, "not carried over: hafront says HELO with the node's host name"),
                "email_faults" | "no_email_faults" | "smtp_alert_checker" => {
                    self.skip(c, "not carried over: hafront mails instance state changes and split brain only")
                }
                "script_user" => {
                    let user = arg(c, 0)?;
                    // hafront refuses a configuration naming a user this machine lacks.
                    if crate::notify::security::lookup_user(user).is_none() {
                        self.skip(
                            c,
                            format!(
                                "not carried over: no user {user:?} on this machine (scripts run as \
                                 hafront-script if it exists, else as hafront's own user)"
                            ),
                        );
                        continue;
                    }
                    let mut sec = Section::new("security");
                    sec.set("script_user", user, Self::at(&n.loc, c));
                    script_user = Some(sec);
                    if c.args.len() > 1 {
                        self.changed(c, "the group is not carried over: scripts run with the user's own group");
                    }
                }
                "enable_script_security" => self.changed(
                    c,
                    "nothing to carry: hafront refuses scripts that others could change unless \
                     security.script_security = false (on by default, unlike keepalived)",
                ),
                "vrrp_skip_check_adv_addr" => self.changed(
                    c,
                    "nothing to carry: hafront never drops an advert for its address list (a \
                     mismatch is only counted)",
                ),
                "vrrp_startup_delay" => vrrp.get_or_insert_with(|| Section::new("vrrp")).set(
                    "startup_delay",
                    dur(secs(c, 0)?),
                    Self::at(&n.loc, c),
                ),
                "vrrp_rt_priority" => vrrp.get_or_insert_with(|| Section::new("vrrp")).set(
                    "rt_priority",
                    int(c, 0, 1, 99)?,
                    Self::at(&n.loc, c),
                ),
                "vrrp_no_swap" => {
                    vrrp.get_or_insert_with(|| Section::new("vrrp"))
                        .set("lock_memory", true, Self::at(&n.loc, c))
                }
                "vrrp_iptables" | "vrrp_ipsets" | "nftables" => self.skip(
                    c,
                    "not carried over: hafront manages its own nftables table (inet hafront) for accept = false",
                ),
                _ => self.other(c, "global_defs")?,
            }
        }
        if let Some(sec) = script_user {
            // The last script_user of several global_defs wins, as in keepalived.
            self.sections.retain(|s| s.path != "security");
            self.sections.push(sec);
        }
        if let Some(sec) = vrrp {
            self.sections.retain(|s| s.path != "vrrp");
            self.sections.push(sec);
        }
        if !node.entries.is_empty() {
            self.sections.insert(0, node);
        }
        Ok(())
    }

    /// [notify.smtp] from global_defs' e-mail settings, when something asked for mail
    /// (keepalived sends none without smtp_alert) and the settings are complete.
    fn notify_smtp(&mut self) {
        let g = &self.g;
        let Some(alert) = g.smtp_alert.clone() else {
            let set = [
                ("smtp_server", g.smtp_server.as_ref().map(|(_, l)| l)),
                ("notification_email_from", g.smtp_from.as_ref().map(|(_, l)| l)),
                ("notification_email", g.smtp_to_block.as_ref()),
                ("smtp_connect_timeout", g.smtp_timeout.as_ref().map(|(_, l)| l)),
            ];
            let dropped: Vec<Warning> = set
                .into_iter()
                .filter_map(|(keyword, loc)| {
                    Some(Warning {
                        loc: loc?.clone(),
                        keyword: keyword.into(),
                        why: "not carried over: no smtp_alert asks for mail, so keepalived sends none".into(),
                        kind: WarningKind::Dropped,
                    })
                })
                .collect();
            self.warnings.extend(dropped);
            return;
        };
        let lacking = match (&g.smtp_server, &g.smtp_from, g.smtp_to.is_empty()) {
            (None, _, _) => Some("smtp_server"),
            (_, None, _) => Some("notification_email_from"),
            (_, _, true) => Some("notification_email addresses"),
            _ => None,
        };
        let (Some((server, server_loc)), Some((from, from_loc)), None) =
            (g.smtp_server.clone(), g.smtp_from.clone(), lacking)
        else {
            self.warnings.push(Warning {
                loc: alert,
                keyword: "smtp_alert".into(),
                why: format!(
                    "not carried over: global_defs has no {}",
                    lacking.unwrap_or("mail settings")
                ),
                kind: WarningKind::Dropped,
            });
            return;
        };
        let line = |l: &Loc| Some(l.to_string());
        let mut sec = Section::new("notify.smtp");
        sec.comments.push(format!(
            "{alert} smtp_alert: hafront mails every instance's state changes (and split brain), \
             over plain SMTP as keepalived (tls = \"starttls\" is better where the server offers it)"
        ));
        sec.set("server", server, line(&server_loc));
        sec.set("from", from, line(&from_loc));
        sec.put(
            "to",
            Value::List(
                g.smtp_to
                    .iter()
                    .map(|(a, l)| (a.clone().into(), line(l)))
                    .collect(),
            ),
            None,
        );
        sec.set("tls", "none", None);
        if let Some((t, l)) = &g.smtp_timeout {
            sec.set("timeout", dur(*t), line(l));
        }
        self.sections.push(sec);
    }

    // ---- vrrp_script, vrrp_track_file ---------------------------------------------

    fn vrrp_script(&mut self, n: &Node) -> R<()> {
        let kname = name_arg(n)?.to_string();
        let mut s = Section::default();
        let mut weight = 0;
        let mut command: Option<Vec<String>> = None;
        for c in block(n)? {
            match c.keyword.as_str() {
                "script" => {
                    let words: Vec<String> = c.args.iter().flat_map(|a| argv(a)).collect();
                    if words.is_empty() {
                        // keepalived too: the vrrp_script is then removed (below).
                        self.skip(c, "no command given");
                    } else {
                        command = Some(self.program(c, words)?);
                    }
                }
                "interval" => s.set("interval", dur(secs(c, 0)?), Self::at(&n.loc, c)),
                "timeout" => s.set("timeout", dur(secs(c, 0)?), Self::at(&n.loc, c)),
                "weight" => {
                    weight = int(c, 0, -253, 253)?;
                    if c.args.get(1).is_some_and(|a| a == "reverse") {
                        self.skip(c, "not carried over: hafront has no reversed weights");
                    }
                }
                "rise" => s.set("rise", int(c, 0, 1, 1000)?, Self::at(&n.loc, c)),
                "fall" => s.set("fall", int(c, 0, 1, 1000)?, Self::at(&n.loc, c)),
                "user" => self.skip(c, SCRIPT_SECURITY_WHY),
                "init_fail" => self.skip(
                    c,
                    "not carried over: hafront counts a script healthy until its first result",
                ),
                _ => self.other(c, "vrrp_script")?,
            }
        }
        let Some(command) = command else {
            // keepalived: "No script set for vrrp_script X - removing".
            self.skip(
                n,
                format!(
                    "vrrp_script {kname} has no 'script': not carried over (keepalived removes it too), \
                     nor are the track_script entries naming it"
                ),
            );
            self.scripts.insert(kname, None);
            return Ok(());
        };
        let name = self.unique_name("scripts", &kname);
        s.path = format!("scripts.{name}");
        s.comments
            .push(format!("{} vrrp_script {kname}{}", n.loc, renamed(&kname, &name)));
        if weight != 0 {
            s.comments.push(format!(
                "its weight {weight} goes to the track_scripts entries that name it"
            ));
        }
        let list: Vec<toml::Value> = command.into_iter().map(toml::Value::String).collect();
        s.entries.insert(
            0,
            super::emit::Entry {
                key: "command".into(),
                value: Value::One(toml::Value::Array(list)),
                comment: None,
            },
        );
        self.sections.push(s);
        self.scripts.insert(kname, Some(TrackDef { name, weight }));
        Ok(())
    }

    /// hafront runs programs by absolute path only; keepalived searches PATH.
    fn program(&mut self, c: &Node, mut words: Vec<String>) -> R<Vec<String>> {
        if words[0].starts_with('/') {
            return Ok(words);
        }
        let found = std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join(&words[0]))
                .find(|p| p.is_absolute() && p.is_file())
        });
        match found {
            Some(p) => {
                let shown = p.display().to_string();
                self.changed(
                    c,
                    format!(
                        "{} resolved to {shown} through this machine's PATH (hafront does no PATH lookup)",
                        words[0]
                    ),
                );
                words[0] = shown;
                Ok(words)
            }
            None => Err(ImportError::new(
                &c.loc,
                format!(
                    "{}: {:?} is not an absolute path and is not in PATH (hafront does no PATH lookup)",
                    c.keyword, words[0]
                ),
            )),
        }
    }

    /// A notify script: keepalived's `notify_x "/path arg ..." [user [group]]`
    /// (the string split as keepalived splits it). `None`: nothing to carry.
    fn notify_script(&mut self, c: &Node) -> R<Option<toml::Value>> {
        let words = argv(arg(c, 0)?);
        if words.is_empty() {
            self.skip(c, "no command given");
            return Ok(None);
        }
        let cmd = self.program(c, words)?;
        if c.args.len() > 1 {
            self.changed(
                c,
                "the user and group after the script are not carried over: notify scripts run as \
                 security.script_user",
            );
        }
        Ok(Some(toml::Value::Array(
            cmd.into_iter().map(Into::into).collect(),
        )))
    }

    /// smtp_alert in an instance or sync group: mail is wanted ([notify.smtp], at the end).
    fn smtp_alert(&mut self, c: &Node) {
        if c.args
            .first()
            .is_some_and(|a| a == "false" || a == "no" || a == "off")
        {
            return;
        }
        self.g.smtp_alert.get_or_insert(c.loc.clone());
        self.changed(
            c,
            "mail is not per instance in hafront: with [notify.smtp] (from global_defs) every \
             instance's state changes are mailed",
        );
    }

    fn track_file(&mut self, n: &Node) -> R<()> {
        let kname = name_arg(n)?.to_string();
        let name = self.unique_name("files", &kname);
        let mut s = Section::new(format!("files.{name}"));
        s.comments.push(format!(
            "{} vrrp_track_file {kname}{}",
            n.loc,
            renamed(&kname, &name)
        ));
        let mut weight = 0;
        for c in block(n)? {
            match c.keyword.as_str() {
                "file" => {
                    let p = arg(c, 0)?;
                    if !p.starts_with('/') {
                        return Err(ImportError::new(
                            &c.loc,
                            format!("file {p}: must be an absolute path"),
                        ));
                    }
                    s.set("path", p, Self::at(&n.loc, c));
                }
                "weight" => weight = int(c, 0, -253, 253)?,
                "init_file" => self.skip(c, "not carried over: hafront reads a missing file as 0"),
                _ => self.other(c, "vrrp_track_file")?,
            }
        }
        if !s.has("path") {
            return Err(ImportError::new(
                &n.loc,
                format!("vrrp_track_file {kname}: 'file' is required"),
            ));
        }
        self.sections.push(s);
        self.files.insert(kname, TrackDef { name, weight });
        Ok(())
    }

    // ---- vrrp_instance ------------------------------------------------------------

    fn instance(&mut self, n: &Node) -> R<()> {
        let kname = name_arg(n)?.to_string();
        let name = self
            .instances
            .get(&kname)
            .cloned()
            .unwrap_or_else(|| hafront_name(&kname));
        let mut s = Section::new(format!("vrrp.instances.{name}"));
        let mut garp = Section::new(format!("vrrp.instances.{name}.garp"));
        s.comments.push(format!(
            "{} vrrp_instance {kname}{}",
            n.loc,
            renamed(&kname, &name)
        ));
        let at = |c: &Node| Self::at(&n.loc, c);

        let mut interface: Option<String> = None;
        let mut version: Option<(i64, Option<String>)> = None;
        let mut advert: Option<(Duration, &Node)> = None;
        let mut auth: Option<(&Node, Option<&Node>)> = None;
        let mut vips: Vec<(toml::Value, Option<String>)> = Vec::new();
        let mut no_track: Vec<(toml::Value, Option<String>)> = Vec::new();
        let mut vip_nodes: Vec<(&Node, IpNet)> = Vec::new();
        let mut label: Option<(String, &Node)> = None;
        let mut state: Option<&Node> = None;
        let mut mcast_src: Option<&Node> = None;
        let mut unicast_src: Option<&Node> = None;
        let mut peers: Vec<(toml::Value, Option<String>)> = Vec::new();
        let mut tracks: BTreeMap<&str, Vec<(toml::Value, Option<String>)>> = BTreeMap::new();
        let mut accept_set = false;

        for c in block(n)? {
            let kw = c.keyword.as_str();
            match kw {
                "state" => match arg(c, 0)? {
                    "MASTER" | "BACKUP" => state = Some(c),
                    other => {
                        return Err(ImportError::new(
                            &c.loc,
                            format!("state {other}: must be MASTER or BACKUP"),
                        ))
                    }
                },
                "interface" => {
                    let i = arg(c, 0)?;
                    if i.is_empty() || i.len() > 15 || i.contains('/') {
                        return Err(ImportError::new(
                            &c.loc,
                            format!("interface {i:?}: not an interface name"),
                        ));
                    }
                    interface = Some(i.to_string());
                    s.set("interface", i, at(c));
                }
                "virtual_router_id" => s.set("vrid", int(c, 0, 1, 255)?, at(c)),
                "priority" => s.set("priority", int(c, 0, 1, 255)?, at(c)),
                "advert_int" => advert = Some((secs(c, 0)?, c)),
                "version" => version = Some((int(c, 0, 2, 3)?, at(c))),
                "authentication" => {
                    let mut pass = None;
                    for a in block(c)? {
                        match a.keyword.as_str() {
                            "auth_type" => match arg(a, 0)? {
                                "PASS" => {}
                                "AH" => self.skip(
                                    a,
                                    "not carried over: hafront has no IPsec-AH authentication (adverts \
                                     go without it; peers still using AH will drop them)",
                                ),
                                other => {
                                    return Err(ImportError::new(
                                        &a.loc,
                                        format!("auth_type {other}: must be PASS or AH"),
                                    ))
                                }
                            },
                            "auth_pass" => pass = Some(a),
                            _ => self.other(a, "authentication")?,
                        }
                    }
                    let ah = block(c)?
                        .iter()
                        .any(|a| a.keyword == "auth_type" && a.args.first().is_some_and(|t| t == "AH"));
                    if !ah {
                        auth = Some((c, pass));
                    }
                }
                "virtual_ipaddress" | "virtual_ipaddress_excluded" => {
                    if kw == "virtual_ipaddress_excluded" {
                        self.changed(
                            c,
                            "carried over as ordinary virtual_ips: hafront advertises every VIP of the \
                             instance's family",
                        );
                    }
                    for v in block(c)? {
                        let net = self.vip(v, interface.as_deref(), &mut label)?;
                        if vip_nodes.iter().any(|(_, o)| o.addr() == net.addr()) {
                            self.skip(v, format!("{} is listed twice", net.addr()));
                            continue;
                        }
                        if v.args.iter().any(|a| a == "no_track") {
                            no_track.push((net.to_string().into(), at(v)));
                        }
                        vip_nodes.push((v, net));
                        vips.push((net.to_string().into(), at(v)));
                    }
                }
                "unicast_src_ip" => unicast_src = Some(c),
                "mcast_src_ip" => mcast_src = Some(c),
                "unicast_peer" => {
                    for p in block(c)? {
                        let a = ip(p, &p.keyword)?;
                        if !p.args.is_empty() {
                            self.skip(
                                p,
                                format!("{}: not carried over (hafront takes the address only)", p.head()),
                            );
                        }
                        peers.push((a.to_string().into(), at(p)));
                    }
                }
                "nopreempt" => s.set("preempt", false, at(c)),
                "preempt" => s.set("preempt", true, at(c)),
                "preempt_delay" => {
                    let d = secs(c, 0)?;
                    if d > Duration::from_secs(1000) {
                        return Err(ImportError::new(&c.loc, "preempt_delay: at most 1000 seconds"));
                    }
                    s.set("preempt_delay", dur(d), at(c));
                }
                "track_script" | "track_interface" | "track_file" => {
                    for t in block(c)? {
                        if let Some(item) = self.track_item(kw, t)? {
                            tracks.entry(kw).or_default().push((item, at(t)));
                        }
                    }
                }
                "accept" => {
                    accept_set = true;
                    s.set("accept", true, at(c));
                }
                "no_accept" => {
                    accept_set = true;
                    s.set("accept", false, at(c));
                }
                "garp_master_delay" => garp.set("master_delay", dur(secs(c, 0)?), at(c)),
                "garp_master_repeat" => {
                    let r = int(c, 0, 1, 100)?;
                    garp.set("master_burst", r, at(c));
                    garp.set("master_repeat", r, at(c));
                }
                "garp_master_refresh" => {
                    let d = secs(c, 0)?;
                    if !d.is_zero() {
                        garp.set("refresh", dur(d.max(Duration::from_secs(1))), at(c));
                    }
                }
                "garp_lower_prio_repeat" => garp.set("lower_prio_burst", int(c, 0, 0, i64::MAX)? > 0, at(c)),
                "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" | "notify" => {
                    if let Some(cmd) = self.notify_script(c)? {
                        s.set(kw, cmd, at(c));
                    }
                }
                "notify_master_rx_lower_pri" | "notify_deleted" => self.skip(c, NO_EVENT_WHY),
                "smtp_alert" => self.smtp_alert(c),
                "dont_track_primary" => self.skip(
                    c,
                    "not carried over: hafront always faults the instance while its interface is down",
                ),
                "use_vmac" | "vmac_xmit_base" => self.skip(
                    c,
                    "not carried over: hafront has no VMAC interfaces; the VIPs go on the interface itself",
                ),
                "track_process" | "track_bfd" | "virtual_routes" | "virtual_rules" => {
                    self.skip(c, "not carried over: hafront has no equivalent (the whole block)")
                }
                _ => self.other(c, "vrrp_instance")?,
            }
        }

        let Some(interface) = interface else {
            return Err(ImportError::new(
                &n.loc,
                format!("vrrp_instance {kname}: 'interface' is required"),
            ));
        };
        if !s.has("vrid") {
            return Err(ImportError::new(
                &n.loc,
                format!("vrrp_instance {kname}: 'virtual_router_id' is required"),
            ));
        }
        if vips.is_empty() {
            return Err(ImportError::new(
                &n.loc,
                format!("vrrp_instance {kname}: no virtual_ipaddress (hafront needs at least one VIP)"),
            ));
        }
        let (version, vcomment) = match (version, &self.g.version) {
            (Some(v), _) => v,
            (None, Some((v, loc))) => (*v, Some(format!("vrrp_version at {loc}"))),
            (None, None) => (
                KA_VRRP_VERSION,
                Some("keepalived's default (hafront's is 3)".to_string()),
            ),
        };
        s.set("version", version, vcomment);
        if let Some((d, c)) = advert {
            let ok = if version == 2 {
                d.subsec_nanos() == 0 && (1..=255).contains(&d.as_secs())
            } else {
                d.as_nanos() % 10_000_000 == 0
                    && d >= Duration::from_millis(10)
                    && d <= Duration::from_millis(40_950)
            };
            if !ok {
                return Err(ImportError::new(
                    &c.loc,
                    format!(
                        "advert_int {}: VRRPv{version} needs {}",
                        arg(c, 0)?,
                        if version == 2 {
                            "whole seconds 1..255"
                        } else {
                            "0.01..40.95 seconds in steps of 0.01"
                        }
                    ),
                ));
            }
            s.set("advert_interval", dur(d), at(c));
        }
        if version == 2 {
            if let Some((_, net)) = vip_nodes.iter().find(|(_, v)| v.addr().is_ipv6()) {
                return Err(ImportError::new(
                    &n.loc,
                    format!("vrrp_instance {kname}: VIP {net} is IPv6 but VRRPv2 carries IPv4 only (set version 3)"),
                ));
            }
        }
        s.put("virtual_ips", Value::List(vips), None);
        if !no_track.is_empty() {
            s.put("vip_no_track", Value::List(no_track), None);
        }
        if let Some((l, c)) = label {
            if !l.starts_with(&interface) || l.len() > 15 {
                return Err(ImportError::new(
                    &c.loc,
                    format!("label {l}: must start with the interface name {interface} and be at most 15 characters"),
                ));
            }
            s.set("vip_label", l, at(c));
        }
        if let Some((c, pass)) = auth {
            if version != 2 {
                self.skip(
                    c,
                    "not carried over: VRRPv3 has no authentication (keepalived ignores it too)",
                );
            } else if self.g.strict.is_some() {
                self.skip(
                    c,
                    "not carried over: keepalived ignores authentication under vrrp_strict, so adverts carry none",
                );
            } else if let Some(p) = pass {
                let mut pw = arg(p, 0)?.to_string();
                if pw.is_empty() || !pw.is_ascii() {
                    return Err(ImportError::new(
                        &p.loc,
                        "auth_pass: must be 1 to 8 ASCII characters",
                    ));
                }
                if pw.len() > 8 {
                    pw.truncate(8);
                    self.changed(p, "truncated to its first 8 characters, as keepalived does");
                }
                s.set("auth_pass", pw, at(p));
            } else {
                return Err(ImportError::new(&c.loc, "authentication: auth_pass is missing"));
            }
        }
        if !peers.is_empty() {
            s.put("unicast_peers", Value::List(peers), None);
            if let Some(c) = unicast_src.or(mcast_src) {
                let a = ip(c, arg(c, 0)?)?;
                s.set("unicast_source", a.to_string(), at(c));
            }
        } else {
            if let Some(c) = unicast_src {
                self.skip(c, "not carried over: only used with unicast_peer");
            }
            if let Some(c) = mcast_src {
                ip(c, arg(c, 0)?)?;
                self.skip(
                    c,
                    "not carried over: hafront sends multicast adverts from the interface's primary address",
                );
            }
        }
        if self.g.strict.is_some() && !accept_set {
            s.set("accept", false, Some("vrrp_strict".into()));
        }
        for (kw, key) in [
            ("track_interface", "track_interfaces"),
            ("track_script", "track_scripts"),
            ("track_file", "track_files"),
        ] {
            if let Some(items) = tracks.remove(kw) {
                s.put(key, Value::List(items), None);
            }
        }
        if let Some(c) = state {
            let prio = s
                .entries
                .iter()
                .find(|e| e.key == "priority")
                .and_then(|e| match &e.value {
                    Value::One(v) => v.as_integer(),
                    _ => None,
                })
                .unwrap_or(100);
            let why = format!(
                "hafront has no initial state: the highest priority (here {prio}) becomes master, \
                 as keepalived also ends up doing; state {} only shortened keepalived's start",
                arg(c, 0)?
            );
            s.comments
                .push(format!("line {}: state {}: {why}", c.loc.line, arg(c, 0)?));
            self.changed(c, why);
        }
        // garp: the instance's own settings, else global_defs'.
        let g = &self.g;
        if !garp.has("master_delay") {
            if let Some((d, loc)) = &g.garp_delay {
                garp.set(
                    "master_delay",
                    dur(*d),
                    Some(format!("vrrp_garp_master_delay at {loc}")),
                );
            }
        }
        if !garp.has("master_burst") {
            if let Some((r, loc)) = &g.garp_repeat {
                garp.set(
                    "master_burst",
                    *r,
                    Some(format!("vrrp_garp_master_repeat at {loc}")),
                );
                garp.set(
                    "master_repeat",
                    *r,
                    Some(format!("vrrp_garp_master_repeat at {loc}")),
                );
            }
        }
        if !garp.has("refresh") {
            if let Some((d, loc)) = &g.garp_refresh {
                if !d.is_zero() {
                    garp.set(
                        "refresh",
                        dur((*d).max(Duration::from_secs(1))),
                        Some(format!("vrrp_garp_master_refresh at {loc}")),
                    );
                }
            }
        }
        if !garp.has("lower_prio_burst") {
            if let Some((b, loc)) = &g.garp_lower_prio {
                garp.set(
                    "lower_prio_burst",
                    *b,
                    Some(format!("vrrp_garp_lower_prio_repeat at {loc}")),
                );
            }
        }
        self.sections.push(s);
        if !garp.entries.is_empty() {
            self.sections.push(garp);
        }
        Ok(())
    }

    /// One line of virtual_ipaddress: `ADDR[/PREFIX] [dev IF] [label L] [...]`.
    fn vip<'a>(
        &mut self,
        v: &'a Node,
        interface: Option<&str>,
        label: &mut Option<(String, &'a Node)>,
    ) -> R<IpNet> {
        if v.children.is_some() {
            return Err(ImportError::new(&v.loc, "unexpected block in virtual_ipaddress"));
        }
        let text = v.keyword.as_str();
        let net: IpNet = match text.parse::<IpNet>() {
            Ok(n) => n,
            Err(_) => match text.parse::<IpAddr>() {
                Ok(a) => IpNet::from(a),
                Err(_) => {
                    return Err(ImportError::new(
                        &v.loc,
                        format!("virtual_ipaddress: {text:?} is not an IP address (ADDR or ADDR/PREFIX)"),
                    ))
                }
            },
        };
        let a = net.addr();
        if a.is_unspecified() || a.is_multicast() || a.is_loopback() {
            return Err(ImportError::new(
                &v.loc,
                format!("virtual_ipaddress: {a} is not a usable unicast address"),
            ));
        }
        let mut opts = v.args.iter();
        while let Some(o) = opts.next() {
            match o.as_str() {
                "dev" => {
                    let dev = opts.next().map(String::as_str).unwrap_or("");
                    if Some(dev) != interface {
                        return Err(ImportError::new(
                            &v.loc,
                            format!(
                                "{}: dev {dev}: hafront puts an instance's VIPs on its own interface{}",
                                v.head(),
                                interface.map(|i| format!(" ({i})")).unwrap_or_default()
                            ),
                        ));
                    }
                }
                // Carried over as vip_no_track by the caller.
                "no_track" => {}
                "label" => {
                    let l = opts.next().cloned().unwrap_or_default();
                    match label {
                        Some((prev, _)) if *prev != l => {
                            self.skip(
                                v,
                                format!("label {l}: not carried over: hafront gives all VIPs of an instance one label ({prev})"),
                            );
                        }
                        Some(_) => {}
                        None => *label = Some((l, v)),
                    }
                }
                other => {
                    // brd, scope, no_track, preferred_lft...: value-taking or not, the
                    // rest of the line is not carried over.
                    let rest: Vec<&str> = std::iter::once(other)
                        .chain(opts.by_ref().map(String::as_str))
                        .collect();
                    self.skip(
                        v,
                        format!(
                            "{}: not carried over (hafront takes the address, prefix, dev and label)",
                            rest.join(" ")
                        ),
                    );
                    break;
                }
            }
        }
        Ok(net)
    }

    fn track_item(&mut self, kw: &str, t: &Node) -> R<Option<toml::Value>> {
        let explicit = match t.args.first().map(String::as_str) {
            Some("weight") => Some(int(t, 1, -253, 253)?),
            Some(_) | None => None,
        };
        if t.args.iter().any(|a| a == "reverse") {
            self.skip(t, "reverse: not carried over (hafront has no reversed weights)");
        }
        match kw {
            "track_script" => match self.scripts.get(&t.keyword) {
                Some(Some(def)) => Ok(Some(track_table(&def.name, explicit.unwrap_or(def.weight)))),
                Some(None) => Ok(None), // already reported at the vrrp_script
                None => {
                    self.skip(
                        t,
                        format!(
                            "no vrrp_script named {}: not carried over (keepalived ignores it too)",
                            t.keyword
                        ),
                    );
                    Ok(None)
                }
            },
            "track_file" => match self.files.get(&t.keyword) {
                Some(def) => Ok(Some(track_table(&def.name, explicit.unwrap_or(def.weight)))),
                None => Err(ImportError::new(
                    &t.loc,
                    format!("no vrrp_track_file named {}", t.keyword),
                )),
            },
            _ => {
                let i = &t.keyword;
                if i.is_empty() || i.len() > 15 || i.contains('/') {
                    return Err(ImportError::new(
                        &t.loc,
                        format!("track_interface {i:?}: not an interface name"),
                    ));
                }
                Ok(Some(track_table(i, explicit.unwrap_or(0))))
            }
        }
    }

    // ---- vrrp_sync_group ------------------------------------------------------------

    fn sync_group(&mut self, n: &Node) -> R<()> {
        let kname = name_arg(n)?.to_string();
        let mut members: Vec<(toml::Value, Option<String>)> = Vec::new();
        for c in block(n)? {
            match c.keyword.as_str() {
                "group" => {
                    for m in block(c)? {
                        // Members may also share a line: `group { a b }`.
                        for word in std::iter::once(&m.keyword).chain(m.args.iter()) {
                            match self.instances.get(word) {
                                Some(h) => members.push((h.clone().into(), Self::at(&n.loc, m))),
                                None => self.skip(
                                    m,
                                    format!("no vrrp_instance named {word}: not carried over (keepalived ignores it too)"),
                                ),
                            }
                        }
                    }
                }
                "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" | "notify" => self.skip(
                    c,
                    "not carried over: hafront runs notify scripts per instance; set them on the \
                     group's instances (each then notifies its own changes)",
                ),
                "smtp_alert" => self.smtp_alert(c),
                "global_tracking" | "sync_group_tracking_weight" => self.skip(
                    c,
                    "not carried over: hafront tracks per instance; a sync group carries faults only",
                ),
                "track_script" | "track_interface" | "track_file" | "track_process" | "track_bfd" => self
                    .skip(
                        c,
                        "not carried over: in hafront, instances track, not sync groups",
                    ),
                _ => self.other(c, "vrrp_sync_group")?,
            }
        }
        if members.len() < 2 {
            self.skip(
                n,
                format!(
                    "vrrp_sync_group {kname}: {} known member(s); a group needs two, not carried over",
                    members.len()
                ),
            );
            return Ok(());
        }
        let name = self.unique_name("vrrp.sync_groups", &kname);
        let mut s = Section::new(format!("vrrp.sync_groups.{name}"));
        s.comments.push(format!(
            "{} vrrp_sync_group {kname}{}",
            n.loc,
            renamed(&kname, &name)
        ));
        s.put("instances", Value::List(members), None);
        self.sections.push(s);
        Ok(())
    }

    // ---- virtual_server / real_server ---------------------------------------------------

    fn virtual_server(&mut self, n: &Node) -> R<()> {
        let children = block(n)?;
        let (raw_name, address, fwmark) = match n.args.first().map(String::as_str) {
            Some("group") => {
                self.skip(
                    n,
                    "virtual_server group: not carried over (hafront has no virtual_server_group)",
                );
                return Ok(());
            }
            Some("fwmark") => {
                let m = int(n, 1, 1, u32::MAX as i64)?;
                (format!("fwmark_{m}"), None, Some(m))
            }
            Some(a) => {
                let addr = ip(n, a)?;
                let p = port(n, arg(n, 1)?)?;
                (format!("vs_{addr}_{p}"), Some(SocketAddr::new(addr, p)), None)
            }
            None => {
                return Err(ImportError::new(
                    &n.loc,
                    "virtual_server: expected IP PORT or fwmark N",
                ))
            }
        };
        let name = {
            let h = hafront_name(&raw_name);
            let candidate = if h.len() > 26 { "vs".to_string() } else { h };
            self.unique_name("ipvs.services", &candidate)
        };
        let mut s = Section::new(format!("ipvs.services.{name}"));
        s.comments
            .push(format!("{} virtual_server {}", n.loc, n.args.join(" ")));
        let at = |c: &Node| Self::at(&n.loc, c);
        if let Some(a) = address {
            s.set("address", a.to_string(), at(n));
        }
        if let Some(m) = fwmark {
            s.set("fwmark", m, at(n));
        }
        let mut defaults = CheckDefaults {
            interval: None,
            host: None,
        };
        let mut servers: Vec<&Node> = Vec::new();
        for c in children {
            match c.keyword.as_str() {
                "delay_loop" => defaults.interval = Some((secs(c, 0)?, c.loc.line)),
                "lb_algo" | "lvs_sched" => {
                    let sched = arg(c, 0)?.to_ascii_lowercase();
                    if !SCHEDULERS.contains(&sched.as_str()) {
                        return Err(ImportError::new(
                            &c.loc,
                            format!(
                                "{} {sched}: not an IPVS scheduler ({})",
                                c.keyword,
                                SCHEDULERS.join(", ")
                            ),
                        ));
                    }
                    s.set("scheduler", sched, at(c));
                }
                "lb_kind" | "lvs_method" => s.set("forwarding", forwarding(c)?, at(c)),
                "persistence_timeout" => {
                    let d = secs(c, 0)?;
                    if d.subsec_nanos() != 0 {
                        return Err(ImportError::new(&c.loc, "persistence_timeout: whole seconds"));
                    }
                    if !d.is_zero() {
                        s.set("persistence", dur(d), at(c));
                    }
                }
                "persistence_granularity" => {
                    let g = arg(c, 0)?;
                    let plen = match g.parse::<IpAddr>() {
                        Ok(mask) => ipnet::ip_mask_to_prefix(mask).map_err(|_| {
                            ImportError::new(&c.loc, format!("persistence_granularity {g}: not a netmask"))
                        })?,
                        Err(_) => g.parse::<u8>().map_err(|_| {
                            ImportError::new(
                                &c.loc,
                                format!("persistence_granularity {g}: not a netmask or prefix"),
                            )
                        })?,
                    };
                    s.set("persistence_prefix", plen as i64, at(c));
                }
                "persistence_engine" => s.set("persistence_engine", arg(c, 0)?, at(c)),
                "protocol" => {
                    let p = arg(c, 0)?.to_ascii_lowercase();
                    if !["tcp", "udp", "sctp"].contains(&p.as_str()) {
                        return Err(ImportError::new(
                            &c.loc,
                            format!("protocol {p}: TCP, UDP or SCTP"),
                        ));
                    }
                    s.set("protocol", p, at(c));
                }
                "sorry_server" => {
                    let a = ip(c, arg(c, 0)?)?;
                    let p = port(c, c.args.get(1).map(String::as_str).unwrap_or("0"))?;
                    s.set("sorry_server", sockaddr(a, p), at(c));
                }
                "quorum" => s.set("quorum", int(c, 0, 0, u32::MAX as i64)?, at(c)),
                "inhibit_on_failure" => s.set("inhibit_on_failure", true, at(c)),
                "virtualhost" => defaults.host = Some(arg(c, 0)?.to_string()),
                "ops" => s.set("one_packet", true, at(c)),
                "ip_family" => match arg(c, 0)? {
                    "inet" => s.set("family", "ipv4", at(c)),
                    "inet6" => s.set("family", "ipv6", at(c)),
                    f => return Err(ImportError::new(&c.loc, format!("ip_family {f}: inet or inet6"))),
                },
                "real_server" => servers.push(c),
                "sorry_server_inhibit"
                | "sorry_server_lvs_method"
                | "hysteresis"
                | "ha_suspend"
                | "alpha"
                | "omega"
                | "retry"
                | "delay_before_retry"
                | "warmup"
                | "connect_timeout" => self.skip(
                    c,
                    "not carried over: hafront has no such setting for a virtual service",
                ),
                "quorum_up" | "quorum_down" => self.skip(c, CHECKER_NOTIFY_WHY),
                _ => self.other(c, "virtual_server")?,
            }
        }
        let mut list: Vec<(toml::Value, Option<String>)> = Vec::new();
        let mut seen: Vec<SocketAddr> = Vec::new();
        let mut inhibit = Vec::new();
        for (k, rs) in servers.into_iter().enumerate() {
            let (addr, table, inh) = self.real_server(rs, &name, k + 1, address, &defaults)?;
            if seen.contains(&addr) {
                self.skip(
                    rs,
                    format!(
                        "{addr} is listed twice: not carried over (keepalived removes the second one too)"
                    ),
                );
                // Its check section was already added: take it back out.
                if let Some(toml::Value::String(chk)) = table.get("check") {
                    let path = format!("checks.{chk}");
                    self.sections.retain(|s| s.path != path);
                }
                continue;
            }
            seen.push(addr);
            inhibit.push((inh, rs));
            list.push((
                toml::Value::Table(table),
                Some(format!("{} real_server {}", rs.loc, rs.args.join(" "))),
            ));
        }
        if inhibit.iter().any(|(i, _)| *i) && !s.has("inhibit_on_failure") {
            if let Some((_, rs)) = inhibit.iter().find(|(i, _)| !*i) {
                self.changed(
                    rs,
                    "hafront applies inhibit_on_failure to a whole service: this real server is inhibited too",
                );
            }
            s.set("inhibit_on_failure", true, Some("from its real servers".into()));
        }
        s.put("real_servers", Value::List(list), None);
        // Checks were pushed while reading the real servers; the service goes before them.
        let first_check = self
            .sections
            .iter()
            .position(|x| x.path.starts_with(&format!("checks.{name}_rs")))
            .unwrap_or(self.sections.len());
        self.sections.insert(first_check, s);
        Ok(())
    }

    fn real_server(
        &mut self,
        rs: &Node,
        service: &str,
        k: usize,
        vs: Option<SocketAddr>,
        defaults: &CheckDefaults,
    ) -> R<(SocketAddr, toml::Table, bool)> {
        let a = ip(rs, arg(rs, 0)?)?;
        let p = match rs.args.get(1) {
            Some(p) => port(rs, p)?,
            None => vs.map(|v| v.port()).unwrap_or(0),
        };
        let addr = SocketAddr::new(a, p);
        let mut t = toml::Table::new();
        t.insert("address".into(), addr.to_string().into());
        let mut inhibit = false;
        let mut check: Option<&Node> = None;
        let mut rs_defaults = CheckDefaults {
            interval: defaults.interval,
            host: defaults.host.clone(),
        };
        for c in block(rs)? {
            match c.keyword.as_str() {
                "weight" => {
                    t.insert("weight".into(), int(c, 0, 0, i32::MAX as i64)?.into());
                }
                "inhibit_on_failure" => inhibit = true,
                "uthreshold" => {
                    t.insert("upper_threshold".into(), int(c, 0, 0, u32::MAX as i64)?.into());
                }
                "lthreshold" => {
                    t.insert("lower_threshold".into(), int(c, 0, 0, u32::MAX as i64)?.into());
                }
                "lvs_method" => {
                    t.insert("forwarding".into(), forwarding(c)?.into());
                }
                "delay_loop" => rs_defaults.interval = Some((secs(c, 0)?, c.loc.line)),
                "notify_up" | "notify_down" => self.skip(c, CHECKER_NOTIFY_WHY),
                "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "MISC_CHECK" | "DNS_CHECK" | "SMTP_CHECK"
                | "PING_CHECK" | "UDP_CHECK" => {
                    block(c)?;
                    if let Some(first) = check {
                        self.skip(
                            c,
                            format!(
                                "not carried over: a hafront real server follows one check (the {} at line {})",
                                first.keyword, first.loc.line
                            ),
                        );
                    } else {
                        check = Some(c);
                    }
                }
                "BFD_CHECK" | "FILE_CHECK" => self.skip(c, "not carried over: hafront has no such check"),
                _ => self.other(c, "real_server")?,
            }
        }
        if let Some(c) = check {
            let mut cname = format!("{service}_rs{k}");
            if cname.len() > 32 {
                cname = format!("rs{k}");
            }
            let cname = self.unique_name("checks", &cname);
            self.check(c, &cname, a, p, &rs_defaults)?;
            t.insert("check".into(), cname.into());
        }
        Ok((addr, t, inhibit))
    }

    fn check(&mut self, c: &Node, name: &str, rs_ip: IpAddr, rs_port: u16, d: &CheckDefaults) -> R<()> {
        let mut s = Section::new(format!("checks.{name}"));
        s.comments.push(format!(
            "{} {} of real_server {}",
            c.loc,
            c.keyword,
            sockaddr(rs_ip, rs_port)
        ));
        let at = |x: &Node| Self::at(&c.loc, x);
        let kind = match c.keyword.as_str() {
            "TCP_CHECK" => "tcp",
            "HTTP_GET" => "http",
            "SSL_GET" => "https",
            "MISC_CHECK" => "exec",
            "DNS_CHECK" => "dns",
            "SMTP_CHECK" => "smtp",
            "PING_CHECK" => "ping",
            _ => "udp",
        };
        s.set("kind", kind, None);
        let mut interval = d
            .interval
            .map(|(v, line)| (v, Some(format!("delay_loop, line {line}"))));
        let mut timeout: Option<(Duration, Option<String>)> = None;
        let mut retries: Option<(i64, Option<String>)> = None;
        let mut connect_ip: Option<IpAddr> = None;
        let mut connect_port: Option<u16> = None;
        let mut host = d.host.clone();
        let mut url: Option<&Node> = None;
        let mut argv_cmd: Option<Vec<String>> = None;
        let mut smtp_host_seen = false;
        for x in block(c)? {
            match x.keyword.as_str() {
                "delay_loop" => interval = Some((secs(x, 0)?, at(x))),
                "connect_timeout" | "misc_timeout" => timeout = Some((secs(x, 0)?, at(x))),
                "retry" | "nb_get_retry" => {
                    retries = Some((int(x, 0, 0, 100)?, at(x)));
                    if x.keyword == "nb_get_retry" && kind == "tcp" {
                        self.changed(
                            x,
                            "keepalived 2.2 ignores nb_get_retry in TCP_CHECK (it keeps 1 retry); carried \
                             over as retries as written",
                        );
                    }
                }
                "delay_before_retry" => s.set("retry_delay", dur(secs(x, 0)?), at(x)),
                "warmup" => s.set("warmup", dur(secs(x, 0)?), at(x)),
                "connect_ip" => connect_ip = Some(ip(x, arg(x, 0)?)?),
                "connect_port" => connect_port = Some(port(x, arg(x, 0)?)?),
                "bindto" => s.set("bind_address", ip(x, arg(x, 0)?)?.to_string(), at(x)),
                "bind_if" => s.set("bind_interface", arg(x, 0)?, at(x)),
                "bind_port" | "fwmark" | "alpha" => {
                    self.skip(x, "not carried over: hafront checks have no such setting")
                }
                "virtualhost" if kind == "http" || kind == "https" => host = Some(arg(x, 0)?.to_string()),
                "url" if kind == "http" || kind == "https" => {
                    block(x)?;
                    match url {
                        None => url = Some(x),
                        Some(first) => self.skip(
                            x,
                            format!(
                                "not carried over: a hafront HTTP check has one URL (the one at line {})",
                                first.loc.line
                            ),
                        ),
                    }
                }
                "misc_path" if kind == "exec" => {
                    let words: Vec<String> = x.args.iter().flat_map(|a| argv(a)).collect();
                    if words.is_empty() {
                        return Err(ImportError::new(&x.loc, "misc_path: missing command"));
                    }
                    argv_cmd = Some(self.program(x, words)?);
                }
                "misc_dynamic" if kind == "exec" => s.set("dynamic_weight", true, at(x)),
                "user" if kind == "exec" => self.skip(x, SCRIPT_SECURITY_WHY),
                "type" if kind == "dns" => s.set("query_type", arg(x, 0)?.to_ascii_uppercase(), at(x)),
                "name" if kind == "dns" => s.set("query_name", arg(x, 0)?, at(x)),
                "helo_name" if kind == "smtp" => s.set("helo_name", arg(x, 0)?, at(x)),
                "host" if kind == "smtp" => {
                    // keepalived 1.x: SMTP_CHECK { host { connect_ip ... } }.
                    if smtp_host_seen {
                        self.skip(x, "not carried over: a hafront smtp check has one target");
                        continue;
                    }
                    smtp_host_seen = true;
                    for h in block(x)? {
                        match h.keyword.as_str() {
                            "connect_ip" => connect_ip = Some(ip(h, arg(h, 0)?)?),
                            "connect_port" => connect_port = Some(port(h, arg(h, 0)?)?),
                            "bindto" => s.set("bind_address", ip(h, arg(h, 0)?)?.to_string(), at(h)),
                            _ => self.other(h, "SMTP_CHECK host")?,
                        }
                    }
                }
                "payload" if kind == "udp" => s.set("payload", format!("hex:{}", arg(x, 0)?), at(x)),
                "require_reply" if kind == "udp" => {
                    if let Some(r) = x.args.first() {
                        s.set("expect", format!("hex:{r}"), at(x));
                    }
                }
                _ => self.other(x, &c.keyword)?,
            }
        }
        let (interval, icomment) =
            interval.unwrap_or((KA_DELAY_LOOP, Some("keepalived's default delay_loop".into())));
        if interval < Duration::from_millis(10) || interval > Duration::from_secs(3600) {
            return Err(ImportError::new(
                &c.loc,
                "delay_loop: hafront checks run every 10ms..1h",
            ));
        }
        s.set("interval", dur(interval), icomment);
        let (timeout, tcomment) = match (timeout, kind) {
            (Some(t), _) => t,
            // keepalived's misc_timeout defaults to the delay_loop.
            (None, "exec") => (
                interval,
                Some("keepalived's default misc_timeout (delay_loop)".into()),
            ),
            (None, _) => (
                KA_CONNECT_TIMEOUT,
                Some("keepalived's default connect_timeout".into()),
            ),
        };
        if timeout.is_zero() || timeout > Duration::from_secs(3600) {
            return Err(ImportError::new(&c.loc, "timeout: hafront needs 1ms..1h"));
        }
        s.set("timeout", dur(timeout), tcomment);
        let (r, rcomment) = retries.unwrap_or((
            if kind == "exec" { 0 } else { KA_RETRY },
            Some("keepalived's default retry".into()),
        ));
        s.set("retries", r, rcomment);
        // keepalived changes a real server's state on one verdict (after its retries).
        s.set(
            "rise",
            1i64,
            Some("keepalived: one success brings a server up".into()),
        );
        s.set(
            "fall",
            1i64,
            Some("keepalived: one failure (after retries) takes it down".into()),
        );
        let target_ip = connect_ip.unwrap_or(rs_ip);
        match kind {
            "tcp" | "smtp" | "udp" => {
                let p = connect_port.unwrap_or(rs_port);
                if p == 0 {
                    return Err(ImportError::new(
                        &c.loc,
                        format!("{}: connect_port is needed", c.keyword),
                    ));
                }
                s.set("target", sockaddr(target_ip, p), None);
            }
            "ping" => s.set("target", target_ip.to_string(), None),
            "dns" => {
                s.set("server", sockaddr(target_ip, connect_port.unwrap_or(53)), None);
                if !s.has("query_name") {
                    s.set("query_name", ".", Some("keepalived's default name".into()));
                }
                if !s.has("query_type") {
                    s.set("query_type", "SOA", Some("keepalived's default type".into()));
                }
            }
            "exec" => match argv_cmd {
                Some(cmd) => {
                    let list: Vec<toml::Value> = cmd.into_iter().map(toml::Value::String).collect();
                    s.set("command", toml::Value::Array(list), None);
                }
                None => return Err(ImportError::new(&c.loc, "MISC_CHECK: misc_path is required")),
            },
            _ => {
                let p = connect_port.unwrap_or(rs_port);
                if p == 0 {
                    return Err(ImportError::new(
                        &c.loc,
                        format!("{}: connect_port is needed", c.keyword),
                    ));
                }
                let Some(u) = url else {
                    return Err(ImportError::new(
                        &c.loc,
                        format!("{}: a url {{ path ... }} block is required", c.keyword),
                    ));
                };
                self.url(&mut s, u, kind, target_ip, p, host.as_deref(), &c.loc)?;
                if kind == "https" {
                    s.set(
                        "tls_verify",
                        false,
                        Some("keepalived never verifies certificates; see docs/migration.md".into()),
                    );
                    self.changed(
                        c,
                        "tls_verify = false, as keepalived never verifies the server's certificate; set \
                         tls_verify = true (with ca_file for a private CA) to have hafront verify it",
                    );
                }
            }
        }
        self.sections.push(s);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn url(
        &mut self,
        s: &mut Section,
        u: &Node,
        kind: &str,
        ip: IpAddr,
        port: u16,
        host: Option<&str>,
        section_loc: &Loc,
    ) -> R<()> {
        let mut path = "/".to_string();
        let mut statuses: Vec<toml::Value> = Vec::new();
        let mut host = host.map(str::to_string);
        for x in block(u)? {
            let at = Self::at(section_loc, x);
            match x.keyword.as_str() {
                "path" => {
                    let p = arg(x, 0)?;
                    if !p.starts_with('/') || p.contains(char::is_whitespace) {
                        return Err(ImportError::new(&x.loc, format!("path {p}: must start with '/'")));
                    }
                    path = p.to_string();
                }
                "digest" => {
                    let h = arg(x, 0)?;
                    if h.len() != 32 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(ImportError::new(
                            &x.loc,
                            format!("digest {h}: expected 32 hex digits (MD5)"),
                        ));
                    }
                    s.set("expect_digest", format!("md5:{}", h.to_ascii_lowercase()), at);
                }
                "status_code" => {
                    for code in &x.args {
                        let r: crate::config::StatusRange = code
                            .parse()
                            .map_err(|e: String| ImportError::new(&x.loc, format!("status_code: {e}")))?;
                        statuses.push(if r.low == r.high {
                            toml::Value::Integer(r.low as i64)
                        } else {
                            toml::Value::String(r.to_string())
                        });
                    }
                    if x.args.is_empty() {
                        return Err(ImportError::new(&x.loc, "status_code: missing value"));
                    }
                }
                "regex" => s.set("expect_body_regex", arg(x, 0)?, at),
                "virtualhost" => host = Some(arg(x, 0)?.to_string()),
                _ => self.other(x, "url")?,
            }
        }
        let hostport = match ip {
            IpAddr::V4(a) => format!("{a}:{port}"),
            IpAddr::V6(a) => format!("[{a}]:{port}"),
        };
        let scheme = if kind == "https" { "https" } else { "http" };
        s.set(
            "url",
            format!("{scheme}://{hostport}{path}"),
            Self::at(section_loc, u),
        );
        if !statuses.is_empty() {
            s.set("expect_status", toml::Value::Array(statuses), None);
        }
        if let Some(h) = host {
            s.set("host", h, Some("virtualhost".into()));
        }
        Ok(())
    }
}

struct CheckDefaults {
    /// delay_loop and its line.
    interval: Option<(Duration, usize)>,
    /// virtualhost.
    host: Option<String>,
}

fn forwarding(c: &Node) -> R<&'static str> {
    match arg(c, 0)?.to_ascii_uppercase().as_str() {
        "NAT" => Ok("nat"),
        "DR" => Ok("dr"),
        "TUN" => Ok("tun"),
        other => Err(ImportError::new(
            &c.loc,
            format!("{} {other}: NAT, DR or TUN", c.keyword),
        )),
    }
}

fn renamed(kname: &str, name: &str) -> String {
    if kname == name {
        String::new()
    } else {
        format!(" -> {name} (hafront names are lowercase a-z 0-9 _ -)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(hafront_name("VI_1"), "vi_1");
        assert_eq!(hafront_name("_x.y"), "x_y");
        assert_eq!(hafront_name("!!"), "x");
        assert_eq!(hafront_name(&"A".repeat(40)).len(), 32);
    }

    #[test]
    fn seconds() {
        assert_eq!(parse_secs("1"), Some(Duration::from_secs(1)));
        assert_eq!(parse_secs("0.1"), Some(Duration::from_millis(100)));
        assert_eq!(parse_secs(".5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_secs("-1"), None);
        assert_eq!(parse_secs("1e3"), None);
        assert_eq!(parse_secs("."), None);
    }

    #[test]
    fn script_words() {
        assert_eq!(argv("/bin/a -x 'b c'"), vec!["/bin/a", "-x", "b c"]);
        assert_eq!(argv("  /bin/a  \"\" "), vec!["/bin/a", ""]);
    }
}
