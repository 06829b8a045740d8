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
use crate::config::validate::{is_address_label, is_interface_name};

mod global_defs;
mod instance;
mod instance_rules;
pub mod keywords;
mod routes;
mod scripts;
mod sync_group;
mod virtual_server;
mod vmac;

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
/// DNS_CHECK's (check_dns.h DNS_DEFAULT_RETRY).
const KA_DNS_RETRY: i64 = 3;
/// delay_before_retry (check_api.c), HTTP_GET/SSL_GET's (check_http.c).
const KA_RETRY_DELAY: Duration = Duration::from_secs(1);
const KA_HTTP_RETRY_DELAY: Duration = Duration::from_secs(3);

#[derive(Default)]
struct Globals {
    version: Option<(i64, Loc)>,
    strict: Option<Loc>,
    garp_delay: Option<(Duration, Loc)>,
    garp_repeat: Option<(i64, Loc)>,
    garp_refresh: Option<(Duration, Loc)>,
    garp_lower_prio: Option<(bool, Loc)>,
    /// `vrrp_garp_extra_if`: every instance's default.
    extra_if: Option<(ExtraIfDef, Loc)>,
    /// `v3_checksum_as_v2`: every instance's default.
    v3_checksum_as_v2: Option<Loc>,
    /// keepalived's e-mail settings (global_defs), carried as [notify.smtp] when
    /// something asks for mail (smtp_alert).
    smtp_server: Option<(String, Loc)>,
    smtp_from: Option<(String, Loc)>,
    smtp_to: Vec<(String, Loc)>,
    smtp_to_block: Option<Loc>,
    smtp_timeout: Option<(Duration, Loc)>,
    /// Where mail is asked for: smtp_alert in an instance, group or global_defs.
    smtp_alert: Option<Loc>,
    /// `lvs_sync_daemon` (global_defs), converted once the instance names are known.
    lvs_sync_daemon: Option<(Node, Loc)>,
    /// `vmac_prefix` (global_defs): the prefix of the VMAC and ipvlan names
    /// keepalived makes up (vmac.rs).
    vmac_prefix: Option<(String, Loc)>,
    /// `vmac_addr_prefix` (global_defs): the prefix of the names of the VIPs'
    /// VMACs (`use_vmac_addr`, a VIP's `use_vmac`), `vmac_prefix` by default.
    vmac_addr_prefix: Option<(String, Loc)>,
}

/// `garp_extra_if [all] N`.
#[derive(Clone, Copy)]
struct ExtraIfDef {
    every: Duration,
    all: bool,
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
    /// keepalived's next automatic rule priority, IPv4 and IPv6 (routes.rs).
    rule_priority: [u32; 2],
    /// Instances with use_vmac or use_ipvlan, named once all are known (vmac.rs).
    vmacs: Vec<vmac::VmacInstance>,
}

pub fn convert(tree: &[Node]) -> R<Converted> {
    let mut cx = Cx::default();
    // First the definitions others refer to: globals, scripts, files, instance names.
    for n in tree {
        match n.keyword.as_str() {
            "global_defs" => cx.global_defs(n)?,
            "vrrp_script" => cx.vrrp_script(n)?,
            // track_file is keepalived 2.1's name, vrrp_track_file the old one.
            "vrrp_track_file" | "track_file" => cx.track_file(n)?,
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
            "global_defs" | "vrrp_script" | "vrrp_track_file" | "track_file" => {}
            "vrrp_instance" => cx.instance(n)?,
            "vrrp_sync_group" => cx.sync_group(n)?,
            "virtual_server" => cx.virtual_server(n)?,
            "virtual_server_group"
            | "static_ipaddress"
            | "static_routes"
            | "static_rules"
            | "linkbeat_interfaces"
            | "bfd_instance"
            | "vrrp_track_process" => {
                cx.skip(n, "not carried over: hafront has no equivalent (the whole block)")
            }
            "garp_group" => cx.skip(
                n,
                "not carried over: hafront spaces announcements per interface with one \
                 interval per family for all interfaces (vrrp.garp_interval, vrrp.na_interval); \
                 set those to the group's values",
            ),
            _ => cx.other(n, "the top level")?,
        }
    }
    cx.notify_smtp();
    cx.lvs_sync_daemon()?;
    cx.vmac_names();
    cx.vmac_addr_prefix();
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

/// Why a keyword the context does not handle is not carried over: the reason
/// keywords.rs gives for a keepalived keyword, else it is not one.
fn why_unknown(keyword: &str, ctx: &str) -> String {
    match keywords::reason(ctx, keyword) {
        Some(why) => format!("not carried over: {why}"),
        None if !keyword.is_empty() && keyword.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
            format!("not a keepalived 2.4.3 keyword in {ctx} (a typo?): ignored, as keepalived ignores it")
        }
        None => "not a keepalived keyword (prose or a typo?): ignored, as keepalived ignores it".to_string(),
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
        if n.children.is_some() && keywords::reason(ctx, &n.keyword).is_none() {
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
