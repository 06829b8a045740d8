//! Script security: who scripts run as, and which scripts a root daemon refuses
//! (keepalived's script_user / enable_script_security). A script that a non-root
//! user can change, or that sits in a directory such a user can write to, would let
//! that user run code as root.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::config::notify::DEFAULT_SCRIPT_USER;
use crate::config::validate::Problem;
use crate::config::Config;

/// uid and gid a script runs as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub uid: u32,
    pub gid: u32,
}

pub fn lookup_user(name: &str) -> Option<Credentials> {
    nix::unistd::User::from_name(name)
        .ok()
        .flatten()
        .map(|u| Credentials {
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
        })
}

static SCRIPT_CREDENTIALS: OnceLock<Option<Credentials>> = OnceLock::new();

/// Chooses the script user once, at start: the configured one, else
/// `hafront-script` when it exists, else none (the daemon's own user). Only a root
/// daemon can switch users.
pub fn init(cfg: &Config) -> Option<Credentials> {
    *SCRIPT_CREDENTIALS.get_or_init(|| {
        if !nix::unistd::geteuid().is_root() {
            return None;
        }
        match &cfg.security.script_user {
            Some(u) => lookup_user(u),
            None => lookup_user(DEFAULT_SCRIPT_USER),
        }
    })
}

/// The credentials scripts run with (set by [`init`]; none before).
pub fn script_credentials() -> Option<Credentials> {
    SCRIPT_CREDENTIALS.get().copied().flatten()
}

/// Why `path` is unsafe to run as root, if it is: the file or a directory on its
/// path (symbolic links followed) writable by a user other than root.
pub fn insecure(path: &Path) -> Option<String> {
    let real = match std::fs::canonicalize(path) {
        Ok(p) => p,
        // Not there yet (created later, or on another system when a configuration
        // is built): whoever can write where it will appear could plant it.
        Err(_) => {
            return path.ancestors().skip(1).find(|a| a.exists()).and_then(|a| {
                insecure(a).map(|why| format!("{} does not exist, and {why}", path.display()))
            });
        }
    };
    let mut paths: Vec<PathBuf> = vec![real.clone()];
    if real != path {
        paths.push(path.to_path_buf());
    }
    for p in &paths {
        for c in p.ancestors() {
            if let Some(why) = writable_by_others(c) {
                return Some(why);
            }
        }
    }
    None
}

fn writable_by_others(p: &Path) -> Option<String> {
    // The link itself for the given path (its target is checked on the real path).
    let md = std::fs::symlink_metadata(p).ok()?;
    if md.file_type().is_symlink() {
        return None;
    }
    let mode = md.mode();
    let is_file = !md.is_dir();
    let what = if is_file { "the script" } else { "directory" };
    let sticky = !is_file && mode & 0o1000 != 0;
    if md.uid() != 0 {
        return Some(format!(
            "{what} {} is owned by uid {} (not root), who can change it",
            p.display(),
            md.uid()
        ));
    }
    if mode & 0o020 != 0 && md.gid() != 0 {
        return Some(format!(
            "{what} {} is writable by group {}",
            p.display(),
            md.gid()
        ));
    }
    // A sticky directory (/tmp) lets others create files but not replace root's.
    if mode & 0o002 != 0 && !sticky {
        return Some(format!("{what} {} is writable by everyone", p.display()));
    }
    None
}

/// Every script of the configuration by key: tracking scripts, exec checks,
/// notify scripts and commands of supervised services.
pub fn scripts(cfg: &Config) -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    let key = |parts: &[&str]| parts.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    for (name, s) in &cfg.scripts {
        if let Some(c) = s.command.first() {
            out.push((key(&["scripts", name, "command"]), c.clone()));
        }
    }
    for (name, c) in &cfg.checks {
        if c.kind == crate::config::CheckKind::Exec {
            if let Some(p) = c.command.first() {
                out.push((key(&["checks", name, "command"]), p.clone()));
            }
        }
    }
    for (iname, inst) in &cfg.vrrp.instances {
        for (field, argv) in inst.notify_scripts() {
            if let Some(p) = argv.first() {
                out.push((key(&["vrrp", "instances", iname, field]), p.clone()));
            }
        }
    }
    for (name, s) in &cfg.services {
        if let Some(p) = s.command.first() {
            out.push((key(&["services", name, "command"]), p.clone()));
        }
    }
    out
}

pub fn validate(cfg: &Config, problems: &mut Vec<Problem>) {
    if !cfg.security.script_security || !nix::unistd::geteuid().is_root() {
        return;
    }
    for (key, program) in scripts(cfg) {
        if !program.starts_with('/') {
            continue; // reported by the key's own rule
        }
        if let Some(why) = insecure(Path::new(&program)) {
            problems.push(Problem {
                key,
                message: format!(
                    "refused: {why}; hafront runs as root (make it root-owned and not writable by \
                     others, or set security.script_security = false)"
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn system_binaries_are_fine_and_world_writable_is_not() {
        if !nix::unistd::geteuid().is_root() {
            return; // ownership rules are about root; the lab tests run as root
        }
        assert_eq!(insecure(Path::new("/bin/true")), None);
        let dir = std::env::temp_dir().join(format!("hafront-sec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let script = dir.join("s.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(insecure(&script), None);
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(insecure(&script).unwrap().contains("writable by everyone"));
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let why = insecure(&script).unwrap();
        assert!(
            why.contains("directory") && why.contains("writable by everyone"),
            "{why}"
        );
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(&script, Some(65534), None).unwrap();
        assert!(insecure(&script).unwrap().contains("uid 65534"));
        // Missing: its nearest existing directory decides.
        assert_eq!(insecure(&dir.join("later/s.sh")), None);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let why = insecure(&dir.join("later/s.sh")).unwrap();
        assert!(
            why.contains("does not exist") && why.contains("writable by everyone"),
            "{why}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
