//! Tracking configuration: `[scripts.NAME]` (keepalived's vrrp_script),
//! `[files.NAME]` (vrrp_track_file), `[vrrp.sync_groups.NAME]` (vrrp_sync_group), and
//! the `track_*` lists of instances, with their validation.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::schema::duration;
use super::validate::Problem;
use super::Config;

/// `{ name, weight }` in `track_*` lists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackItem {
    pub name: String,
    #[serde(default)]
    pub weight: i32,
}

/// keepalived's vrrp_script: a command run every `interval`; exit 0 is success.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptConfig {
    /// argv; a single string is run as is (no shell).
    pub command: Vec<String>,
    #[serde(with = "duration", default = "default_script_interval")]
    pub interval: Duration,
    #[serde(with = "duration", default = "default_script_timeout")]
    pub timeout: Duration,
    /// Consecutive successes before the script counts as up again.
    #[serde(default = "one")]
    pub rise: u32,
    /// Consecutive failures before it counts as down.
    #[serde(default = "one")]
    pub fall: u32,
}

impl ScriptConfig {
    /// keepalived's vrrp_script is an exec check: exit 0 up, anything else down.
    pub fn as_check(&self) -> super::CheckConfig {
        super::CheckConfig {
            command: self.command.clone(),
            interval: self.interval,
            timeout: self.timeout,
            rise: self.rise,
            fall: self.fall,
            ..super::CheckConfig::new(super::CheckKind::Exec)
        }
    }
}

/// keepalived's vrrp_track_file: an integer read from a file (a missing or empty
/// file counts as 0).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackFileConfig {
    pub path: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncGroupConfig {
    pub instances: Vec<String>,
}

fn default_script_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_script_timeout() -> Duration {
    Duration::from_secs(5)
}
fn one() -> u32 {
    1
}

const WEIGHT_RANGE: std::ops::RangeInclusive<i32> = -253..=253;

pub(super) fn validate(cfg: &Config, problems: &mut Vec<Problem>) {
    let mut p = |key: Vec<String>, message: String| problems.push(Problem { key, message });
    let k = |parts: &[&str]| parts.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    for (name, s) in &cfg.scripts {
        if !super::validate::valid_instance_name(name) {
            p(
                k(&["scripts", name]),
                format!("script name {name:?} must be 1-32 characters of a-z, 0-9, '_' and '-'"),
            );
        }
        if s.command.is_empty() || s.command[0].is_empty() {
            p(k(&["scripts", name, "command"]), "must name a program".into());
        } else if !s.command[0].starts_with('/') {
            p(
                k(&["scripts", name, "command"]),
                format!(
                    "{:?} must be an absolute path (no PATH lookup for scripts run as root)",
                    s.command[0]
                ),
            );
        }
        if s.interval.is_zero() {
            p(k(&["scripts", name, "interval"]), "must be more than 0".into());
        }
        if s.timeout.is_zero() {
            p(k(&["scripts", name, "timeout"]), "must be more than 0".into());
        }
        if s.rise == 0 || s.fall == 0 {
            p(
                k(&["scripts", name, if s.rise == 0 { "rise" } else { "fall" }]),
                "must be at least 1".into(),
            );
        }
    }
    for (name, f) in &cfg.files {
        if !f.path.is_absolute() {
            p(k(&["files", name, "path"]), "must be an absolute path".into());
        }
    }
    for (iname, inst) in &cfg.vrrp.instances {
        let lists: [(&str, &Vec<TrackItem>); 5] = [
            ("track_interfaces", &inst.track_interfaces),
            ("track_scripts", &inst.track_scripts),
            ("track_checks", &inst.track_checks),
            ("track_files", &inst.track_files),
            ("track_services", &inst.track_services),
        ];
        for (field, items) in lists {
            let mut at = |key: &[&str], message: String| p(k(key), message);
            validate_items(
                cfg,
                &["vrrp", "instances", iname, field],
                field,
                items,
                &mut at,
                |w| (!WEIGHT_RANGE.contains(&w)).then(|| format!("weight {w} is outside -253..253")),
            );
        }
    }
    let mut member_of: BTreeMap<&str, &str> = BTreeMap::new();
    for (gname, g) in &cfg.vrrp.sync_groups {
        if g.instances.len() < 2 {
            p(
                k(&["vrrp", "sync_groups", gname, "instances"]),
                "a sync group needs at least two instances".into(),
            );
        }
        for m in &g.instances {
            if !cfg.vrrp.instances.contains_key(m) {
                p(
                    k(&["vrrp", "sync_groups", gname, "instances"]),
                    format!("no VRRP instance named {m:?}"),
                );
            } else if let Some(other) = member_of.insert(m, gname) {
                p(
                    k(&["vrrp", "sync_groups", gname, "instances"]),
                    format!("{m:?} is already in sync group {other:?}"),
                );
            }
        }
    }
}

/// One `track_*` list (`field`) under `key`: each item's weight (`bad_weight` says
/// what is wrong with one, if anything) and that what it names exists.
pub(super) fn validate_items(
    cfg: &Config,
    key: &[&str],
    field: &str,
    items: &[TrackItem],
    p: &mut impl FnMut(&[&str], String),
    bad_weight: impl Fn(i32) -> Option<String>,
) {
    for (n, item) in items.iter().enumerate() {
        let n = n.to_string();
        let mut at: Vec<&str> = key.to_vec();
        at.push(&n);
        if let Some(message) = bad_weight(item.weight) {
            p(&at, message);
        }
        let exists = match field {
            "track_interfaces" => super::validate::is_interface_name(&item.name),
            "track_scripts" => cfg.scripts.contains_key(&item.name),
            "track_checks" => cfg.checks.contains_key(&item.name),
            "track_services" => cfg.services.contains_key(&item.name),
            _ => cfg.files.contains_key(&item.name),
        };
        if !exists {
            let what = match field {
                "track_interfaces" => format!("{:?} is not an interface name", item.name),
                "track_scripts" => format!("no script named {:?} ([scripts.{}])", item.name, item.name),
                "track_checks" => format!("no check named {:?} ([checks.{}])", item.name, item.name),
                "track_services" => format!("no service named {:?} ([services.{}])", item.name, item.name),
                _ => format!("no tracked file named {:?} ([files.{}])", item.name, item.name),
            };
            p(&at, what);
        }
    }
}
