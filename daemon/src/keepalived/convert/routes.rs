//! A `vrrp_instance`'s `virtual_routes` and `virtual_rules` lines (keepalived's
//! vrrp_iproute.c `alloc_route`, vrrp_iprule.c `alloc_rule`) as hafront's
//! `virtual_routes` / `virtual_rules` entries. A line with an option hafront does
//! not have is not carried over at all (a route without its `onlink` or `mtu`, a
//! rule without its `not`, would be another route or rule), and says which option.

use toml::{Table, Value as T};

use super::*;
use crate::config::routes::{Prefix, Proto};

/// keepalived's first automatic rule priority (vrrp_iprule.c RULE_START_PRIORITY),
/// counted down per family for rules written without one.
const KA_RULE_START_PRIORITY: u32 = 16384;

/// Route types hafront has (ip-route(8) names).
const ROUTE_TYPES: [&str; 5] = ["unicast", "blackhole", "unreachable", "prohibit", "throw"];

/// Options keepalived takes on a route or rule that hafront does not have.
const ROUTE_OTHER: [&str; 27] = [
    "as",
    "from",
    "tos",
    "dsfield",
    "onlink",
    "encap",
    "expires",
    "mtu",
    "hoplimit",
    "advmss",
    "rtt",
    "rttvar",
    "reordering",
    "window",
    "cwnd",
    "ssthresh",
    "realms",
    "rto_min",
    "initcwnd",
    "initrwnd",
    "features",
    "quickack",
    "congctl",
    "pref",
    "ttl-propagate",
    "fastopen_no_cookie",
    "nexthop",
];

fn table_id(w: &str) -> Option<u32> {
    match w {
        "main" => Some(254),
        "local" => Some(255),
        "default" => Some(253),
        n => n.parse().ok().filter(|t| *t > 0),
    }
}

fn scope_name(w: &str) -> Option<&'static str> {
    match w {
        "global" | "universe" | "0" => Some("global"),
        "site" | "200" => Some("site"),
        "link" | "253" => Some("link"),
        "host" | "254" => Some("host"),
        _ => None,
    }
}

/// An `a.b.c.d[/len]` or `all`/`default` (None) for a route or rule.
fn prefix(n: &Node, w: &str) -> R<Option<Prefix>> {
    if w == "all" || w == "default" {
        return Ok(None);
    }
    Prefix::parse(w)
        .map(Some)
        .map_err(|e| ImportError::new(&n.loc, format!("{}: {e}", n.head())))
}

/// The words of a route or rule line.
fn line_words(n: &Node) -> Vec<&str> {
    std::iter::once(n.keyword.as_str())
        .chain(n.args.iter().map(String::as_str))
        .collect()
}

/// The word after `words[*i]` (its value), moving `i` onto it.
fn value<'a>(n: &Node, words: &[&'a str], i: &mut usize) -> R<&'a str> {
    *i += 1;
    words
        .get(*i)
        .copied()
        .ok_or_else(|| ImportError::new(&n.loc, format!("{}: {} needs a value", n.head(), words[*i - 1])))
}

/// `v`, the value of `w`, as a u32.
fn number(n: &Node, w: &str, v: &str) -> R<u32> {
    v.parse()
        .map_err(|_| ImportError::new(&n.loc, format!("{}: {w} {v}: not a number", n.head())))
}

impl Cx {
    /// keepalived's priority for a rule written without one.
    fn next_rule_priority(&mut self, v6: bool) -> u32 {
        let p = &mut self.rule_priority[usize::from(v6)];
        if *p == 0 {
            *p = KA_RULE_START_PRIORITY;
        }
        *p -= 1;
        *p + 1
    }

    /// One `virtual_routes` line; None when not carried over (said why).
    /// `v6`: the instance's family, for `default` without a family.
    pub(super) fn virtual_route(&mut self, n: &Node, v6: bool) -> R<Option<T>> {
        let words = line_words(n);
        let mut t = Table::new();
        let mut dst: Option<Option<Prefix>> = None;
        let mut family: Option<bool> = None;
        let mut i = 0;
        let next = |i: &mut usize| value(n, &words, i);
        while i < words.len() {
            let w = words[i];
            match w {
                "inet" | "inet6" => family = Some(w == "inet6"),
                "src" => {
                    let a = ip(n, next(&mut i)?)?;
                    t.insert("src".into(), a.to_string().into());
                }
                "via" | "gw" => {
                    let mut v = next(&mut i)?;
                    if v == "inet" || v == "inet6" {
                        v = next(&mut i)?;
                    }
                    t.insert("via".into(), ip(n, v)?.to_string().into());
                }
                "dev" | "oif" => {
                    let d = next(&mut i)?;
                    if !is_interface_name(d) {
                        return Err(ImportError::new(
                            &n.loc,
                            format!("{}: {d:?} is not an interface name", n.head()),
                        ));
                    }
                    t.insert("dev".into(), d.into());
                }
                "table" => {
                    let v = next(&mut i)?;
                    let Some(id) = table_id(v) else {
                        self.skip(n, format!("table {v}: not carried over (hafront takes table numbers, main, local and default, not /etc/iproute2/rt_tables names): the whole route"));
                        return Ok(None);
                    };
                    t.insert("table".into(), i64::from(id).into());
                }
                "protocol" => {
                    let v = next(&mut i)?;
                    match Proto::parse(v) {
                        Some(p) => {
                            t.insert("proto".into(), i64::from(p.0).into());
                        }
                        None => {
                            self.skip(n, format!("protocol {v}: not carried over (a number, or kernel, boot, static, dhcp, keepalived): the whole route"));
                            return Ok(None);
                        }
                    }
                }
                "scope" => {
                    let v = next(&mut i)?;
                    let Some(s) = scope_name(v) else {
                        self.skip(
                            n,
                            format!(
                                "scope {v}: not carried over (global, site, link, host): the whole route"
                            ),
                        );
                        return Ok(None);
                    };
                    t.insert("scope".into(), s.into());
                }
                "metric" | "priority" | "preference" => {
                    let m = number(n, w, next(&mut i)?)?;
                    t.insert("metric".into(), i64::from(m).into());
                }
                "no_track" => {
                    t.insert("no_track".into(), true.into());
                }
                w if ROUTE_OTHER.contains(&w) || w == "track_group" || w == "vrf" || w == "or" => {
                    self.skip(n, format!("{w}: not carried over (hafront's routes take to, via, dev, src, table, metric, scope, protocol and type): the whole route"));
                    return Ok(None);
                }
                _ => {
                    let mut w = w;
                    if w == "to" {
                        w = next(&mut i)?;
                    }
                    if ROUTE_TYPES.contains(&w) {
                        if w != "unicast" {
                            t.insert("type".into(), w.into());
                        }
                        w = next(&mut i)?;
                    } else if ["local", "broadcast", "anycast", "multicast", "nat", "xresolve"].contains(&w) {
                        self.skip(n, format!("type {w}: not carried over (hafront's route types are unicast, blackhole, unreachable, prohibit, throw): the whole route"));
                        return Ok(None);
                    }
                    dst = Some(prefix(n, w)?);
                }
            }
            i += 1;
        }
        let Some(dst) = dst else {
            return Err(ImportError::new(
                &n.loc,
                format!("{}: a route needs a destination", n.head()),
            ));
        };
        let v6 = match (dst, family) {
            (Some(p), _) => p.0.addr().is_ipv6(),
            (None, Some(f)) => f,
            (None, None) => ["via", "src"]
                .iter()
                .find_map(|k| t.get(*k).and_then(|v| v.as_str()).map(|s| s.contains(':')))
                .unwrap_or(v6),
        };
        // keepalived's routes are scope global unless told (ip(8) would make a
        // unicast route without a gateway a link route).
        let unicast = !t.contains_key("type");
        if unicast && !t.contains_key("via") && !t.contains_key("scope") {
            t.insert("scope".into(), "global".into());
        }
        let to = dst.map_or(if v6 { "::/0" } else { "0.0.0.0/0" }.to_string(), |p| {
            p.to_string()
        });
        t.insert("to".into(), to.into());
        Ok(Some(T::Table(t)))
    }

    /// One `virtual_rules` line; None when not carried over (said why).
    pub(super) fn virtual_rule(&mut self, n: &Node) -> R<Option<T>> {
        let words = line_words(n);
        let mut t = Table::new();
        let mut family: Option<bool> = None;
        let mut i = 0;
        let next = |i: &mut usize| value(n, &words, i);
        while i < words.len() {
            let w = words[i];
            match w {
                "inet" | "inet6" => family = Some(w == "inet6"),
                "from" | "to" => {
                    if let Some(p) = prefix(n, next(&mut i)?)? {
                        t.insert(w.into(), p.to_string().into());
                    }
                }
                "table" | "lookup" => {
                    let v = next(&mut i)?;
                    let Some(id) = table_id(v) else {
                        self.skip(n, format!("table {v}: not carried over (hafront takes table numbers, main, local and default): the whole rule"));
                        return Ok(None);
                    };
                    t.insert("table".into(), i64::from(id).into());
                }
                "preference" | "order" | "priority" => {
                    let p = number(n, w, next(&mut i)?)?;
                    t.insert("priority".into(), i64::from(p).into());
                }
                "fwmark" => {
                    let v = next(&mut i)?;
                    let (mark, mask) = match v.split_once('/') {
                        Some((a, b)) => (a, Some(b)),
                        None => (v, None),
                    };
                    let num = |s: &str| -> R<i64> {
                        let x = match s.strip_prefix("0x") {
                            Some(h) => u32::from_str_radix(h, 16).ok(),
                            None => s.parse::<u32>().ok(),
                        };
                        x.map(i64::from).ok_or_else(|| {
                            ImportError::new(&n.loc, format!("{}: fwmark {v}: not a number", n.head()))
                        })
                    };
                    t.insert("fwmark".into(), num(mark)?.into());
                    if let Some(m) = mask {
                        t.insert("fwmask".into(), num(m)?.into());
                    }
                }
                "dev" | "iif" | "oif" => {
                    let d = next(&mut i)?;
                    if !is_interface_name(d) {
                        return Err(ImportError::new(
                            &n.loc,
                            format!("{}: {d:?} is not an interface name", n.head()),
                        ));
                    }
                    let key = if w == "oif" { "oif" } else { "iif" };
                    t.insert(key.into(), d.into());
                }
                "no_track" => {
                    t.insert("no_track".into(), true.into());
                }
                "type" | "blackhole" | "unreachable" | "prohibit" => {
                    let a = if w == "type" { next(&mut i)? } else { w };
                    if !["blackhole", "unreachable", "prohibit"].contains(&a) {
                        self.skip(n, format!("type {a}: not carried over (hafront's rule types are table, blackhole, unreachable, prohibit): the whole rule"));
                        return Ok(None);
                    }
                    t.insert("type".into(), a.into());
                }
                other => {
                    self.skip(n, format!("{other}: not carried over (hafront's rules take from, to, iif, oif, fwmark, priority, table and type): the whole rule"));
                    return Ok(None);
                }
            }
            i += 1;
        }
        let v6 = ["from", "to"]
            .iter()
            .find_map(|k| t.get(*k).and_then(|v| v.as_str()).map(|s| s.contains(':')))
            .or(family)
            .unwrap_or(false);
        if family == Some(true) && !t.contains_key("from") && !t.contains_key("to") {
            t.insert("family".into(), "ipv6".into());
        }
        if !t.contains_key("priority") {
            let p = self.next_rule_priority(v6);
            self.changed(
                n,
                format!(
                    "no priority: {p}, as keepalived gives it (counting down from {KA_RULE_START_PRIORITY})"
                ),
            );
            t.insert("priority".into(), i64::from(p).into());
        }
        if !t.contains_key("table") && !t.contains_key("type") {
            self.skip(
                n,
                "not carried over: a rule needs a table or a type (keepalived's would do nothing)",
            );
            return Ok(None);
        }
        Ok(Some(T::Table(t)))
    }
}
