//! `[services.NAME]`: supervised web servers (nginx, httpd/apache2) or any
//! long-running command, and their validation. Instances follow them with
//! `track_services` (config/track.rs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::schema::{duration, opt_duration};
use super::validate::Problem;
use super::Config;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    Nginx,
    /// Apache httpd (Debian's apache2 included).
    Httpd,
    Command,
}

impl ServiceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceKind::Nginx => "nginx",
            ServiceKind::Httpd => "httpd",
            ServiceKind::Command => "command",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunOn {
    /// Runs on every node.
    #[default]
    Always,
    /// Runs only while `instance` is master (keepalived's notify.sh that starts
    /// httpd on the master and stops it on the backup).
    Master,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub kind: ServiceKind,
    /// The server's configuration file (nginx `-c`, httpd `-f`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<PathBuf>,
    /// The server binary; by default /usr/sbin/nginx, or /usr/sbin/apache2 (Debian)
    /// else /usr/sbin/httpd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<PathBuf>,
    /// `kind = "command"`: the argv of a program that stays in the foreground.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Adopt a server started elsewhere: watch the PID in this file, never start it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pidfile: Option<PathBuf>,
    /// Adopt a server run by systemd: watch the unit's MainPID, never start it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_unit: Option<String>,
    #[serde(default)]
    pub run_on: RunOn,
    /// The instance whose role `run_on = "master"` follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Consecutive failed starts after which the service counts as failed (a fault
    /// for every instance tracking it, whatever the weight) until it has run
    /// healthy for `healthy_after` again.
    #[serde(default = "default_max_restarts")]
    pub max_restarts: u32,
    /// First restart delay, doubled after each failed start.
    #[serde(with = "duration", default = "default_restart_delay")]
    pub restart_delay: Duration,
    /// Upper bound of the restart delay.
    #[serde(with = "duration", default = "default_restart_delay_max")]
    pub restart_delay_max: Duration,
    /// Running this long (and the liveness check up, if any) counts as a successful
    /// start: the failure count and the delay are reset.
    #[serde(with = "duration", default = "default_healthy_after")]
    pub healthy_after: Duration,
    /// Liveness probe: a `[checks.NAME]` (e.g. an http check of the server); when it
    /// goes down the service counts as down and is restarted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    /// Grace time between SIGTERM and SIGKILL of the process group at stop.
    #[serde(with = "duration", default = "default_stop_timeout")]
    pub stop_timeout: Duration,
    /// Limit for the configuration test (`nginx -t`, `apache2 -t`).
    #[serde(
        with = "opt_duration",
        default = "default_test_timeout",
        skip_serializing_if = "Option::is_none"
    )]
    pub test_timeout: Option<Duration>,
}

fn default_max_restarts() -> u32 {
    5
}
fn default_restart_delay() -> Duration {
    Duration::from_millis(100)
}
fn default_restart_delay_max() -> Duration {
    Duration::from_secs(30)
}
fn default_healthy_after() -> Duration {
    Duration::from_secs(10)
}
fn default_stop_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_test_timeout() -> Option<Duration> {
    Some(Duration::from_secs(10))
}

impl ServiceConfig {
    pub fn adopted(&self) -> bool {
        self.pidfile.is_some() || self.systemd_unit.is_some()
    }

    /// The binary to run (configured, or the distribution's).
    pub fn binary_path(&self) -> PathBuf {
        if let Some(b) = &self.binary {
            return b.clone();
        }
        match self.kind {
            ServiceKind::Nginx => PathBuf::from("/usr/sbin/nginx"),
            ServiceKind::Httpd => {
                let debian = Path::new("/usr/sbin/apache2");
                if debian.exists() {
                    debian.to_path_buf()
                } else {
                    PathBuf::from("/usr/sbin/httpd")
                }
            }
            ServiceKind::Command => PathBuf::from(self.command.first().map(String::as_str).unwrap_or("")),
        }
    }
}

pub(super) fn validate(cfg: &Config, problems: &mut Vec<Problem>) {
    let mut p = |key: Vec<String>, message: String| problems.push(Problem { key, message });
    let k = |name: &str, field: &str| -> Vec<String> {
        let mut v = vec!["services".to_string(), name.to_string()];
        if !field.is_empty() {
            v.push(field.to_string());
        }
        v
    };
    for (name, s) in &cfg.services {
        if !super::validate::valid_instance_name(name) {
            p(
                k(name, ""),
                format!("service name {name:?} must be 1-32 characters of a-z, 0-9, '_' and '-'"),
            );
        }
        match s.kind {
            ServiceKind::Command => {
                if s.command.is_empty() && !s.adopted() {
                    p(
                        k(name, "command"),
                        "kind = \"command\" needs the program's argv".into(),
                    );
                } else if s.command.first().is_some_and(|c| !c.starts_with('/')) {
                    p(
                        k(name, "command"),
                        format!("{:?} must be an absolute path", s.command[0]),
                    );
                }
                if s.config.is_some() {
                    p(k(name, "config"), "only for kind = \"nginx\" or \"httpd\"".into());
                }
            }
            _ => {
                if !s.command.is_empty() {
                    p(k(name, "command"), "only for kind = \"command\"".into());
                }
                if s.config.is_none() && !s.adopted() {
                    p(
                        k(name, "config"),
                        format!(
                            "is required for kind = \"{}\" (the server's configuration file)",
                            s.kind.as_str()
                        ),
                    );
                }
            }
        }
        for (field, path) in [
            ("config", &s.config),
            ("binary", &s.binary),
            ("pidfile", &s.pidfile),
        ] {
            if path.as_ref().is_some_and(|p| !p.is_absolute()) {
                p(k(name, field), "must be an absolute path".into());
            }
        }
        if s.pidfile.is_some() && s.systemd_unit.is_some() {
            p(
                k(name, "systemd_unit"),
                "give either pidfile or systemd_unit, not both".into(),
            );
        }
        if let Some(u) = &s.systemd_unit {
            if u.is_empty() || u.contains(['/', ' ']) {
                p(k(name, "systemd_unit"), format!("{u:?} is not a unit name"));
            }
        }
        match (s.run_on, &s.instance) {
            (RunOn::Master, None) => p(
                k(name, "instance"),
                "run_on = \"master\" needs the instance whose role it follows".into(),
            ),
            (RunOn::Master, Some(_)) if s.adopted() => p(
                k(name, "run_on"),
                "an adopted service (pidfile, systemd_unit) is not started or stopped by hafront".into(),
            ),
            (_, Some(i)) if !cfg.vrrp.instances.contains_key(i) => {
                p(k(name, "instance"), format!("no VRRP instance named {i:?}"))
            }
            (RunOn::Always, Some(_)) => p(k(name, "instance"), "only used with run_on = \"master\"".into()),
            _ => {}
        }
        if s.restart_delay.is_zero() {
            p(
                k(name, "restart_delay"),
                "must be more than 0 (no tight restart loop)".into(),
            );
        }
        if s.restart_delay_max < s.restart_delay {
            p(
                k(name, "restart_delay_max"),
                "must be at least restart_delay".into(),
            );
        }
        if s.max_restarts == 0 {
            p(k(name, "max_restarts"), "must be at least 1".into());
        }
        if let Some(c) = &s.check {
            if !cfg.checks.contains_key(c) {
                p(k(name, "check"), format!("no check named {c:?} ([checks.{c}])"));
            }
        }
    }
    // A role-bound service stops on the backup: tracking it would fault the backup.
    let role_bound: BTreeMap<&String, &ServiceConfig> = cfg
        .services
        .iter()
        .filter(|(_, s)| s.run_on == RunOn::Master)
        .collect();
    for (iname, inst) in &cfg.vrrp.instances {
        for (n, item) in inst.track_services.iter().enumerate() {
            if role_bound.contains_key(&item.name) {
                p(
                    vec![
                        "vrrp".into(),
                        "instances".into(),
                        iname.clone(),
                        "track_services".into(),
                        n.to_string(),
                    ],
                    format!(
                        "service {:?} has run_on = \"master\": it is stopped on backups, so it cannot be tracked",
                        item.name
                    ),
                );
            }
        }
    }
}
