//! Script security: who scripts run as, and which scripts a privileged daemon
//! refuses (keepalived's script_user / enable_script_security). A script that
//! another user can change, or that sits in a directory such a user can write to,
//! would let that user run code as the daemon: as root, or as a user with the
//! daemon's capabilities. Privileged means root or any capability held
//! ([`super::caps::privileged`]): the shipped unit runs a non-root user with
//! CAP_NET_ADMIN and CAP_NET_RAW.

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
/// `hafront-script` when it exists, else none (the daemon's own user). Only a
/// daemon holding CAP_SETUID and CAP_SETGID (root) can switch users; one that
/// cannot runs scripts as itself, without its capabilities (`Child::Script`
/// keeps none).
pub fn init(cfg: &Config) -> Option<Credentials> {
    *SCRIPT_CREDENTIALS.get_or_init(|| {
        let wanted = match &cfg.security.script_user {
            Some(u) => lookup_user(u),
            None => lookup_user(DEFAULT_SCRIPT_USER),
        }?;
        let own = nix::unistd::geteuid().as_raw();
        if wanted.uid == own {
            return None;
        }
        if !super::caps::can_switch_user() {
            if cfg.security.script_user.is_some() && super::caps::privileged() {
                tracing::warn!(
                    uid = own,
                    script_uid = wanted.uid,
                    "security.script_user cannot be used without CAP_SETUID and CAP_SETGID: \
                     scripts run as the daemon's user, with no capabilities"
                );
            }
            return None;
        }
        Some(wanted)
    })
}

/// The credentials scripts run with (set by [`init`]; none before).
pub fn script_credentials() -> Option<Credentials> {
    SCRIPT_CREDENTIALS.get().copied().flatten()
}

/// Why `path` is unsafe to run as a privileged daemon, if it is: the file or a
/// directory on its path (symbolic links followed) writable by a user other than
/// root and the daemon's own.
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
    if md.uid() != 0 && md.uid() != nix::unistd::geteuid().as_raw() {
        return Some(format!(
            "{what} {} is owned by uid {} (neither root nor hafront's user), who can change it",
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

/// Every script of the configuration by key, with its argv: tracking scripts,
/// exec checks, notify scripts and commands of supervised services.
pub fn scripts(cfg: &Config) -> Vec<(Vec<String>, &[String])> {
    let mut out: Vec<(Vec<String>, &[String])> = Vec::new();
    let key = |parts: &[&str]| parts.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    for (name, s) in &cfg.scripts {
        out.push((key(&["scripts", name, "command"]), &s.command));
    }
    for (name, c) in &cfg.checks {
        if c.kind == crate::config::CheckKind::Exec {
            out.push((key(&["checks", name, "command"]), &c.command));
        }
    }
    for (iname, inst) in &cfg.vrrp.instances {
        for (field, argv) in inst.notify_scripts() {
            out.push((key(&["vrrp", "instances", iname, field]), argv));
        }
        for (field, argv) in inst.hooks.commands() {
            out.push((
                key(&["vrrp", "instances", iname, "hooks", field.0, &field.1]),
                argv,
            ));
        }
    }
    for (name, s) in &cfg.services {
        out.push((key(&["services", name, "command"]), &s.command));
    }
    out.retain(|(_, argv)| !argv.is_empty());
    out
}

/// Interpreters whose first operand is a script file: the file is what runs, so
/// it is checked like a program. The name is the program's file name without a
/// version (`python3.11` is `python`); the options say which of its options make
/// the operand inline code instead (`sh -c`, `perl -e`), for short options also
/// when grouped (`-ec`).
const INTERPRETERS: &[(&[&str], &[&str])] = &[
    (
        &["sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "busybox"],
        &["-c"],
    ),
    (&["python", "pypy"], &["-c", "-m"]),
    (&["perl", "ruby"], &["-e", "-E"]),
    (&["node", "nodejs"], &["-e", "-p", "--eval", "--print"]),
    (&["php"], &["-r"]),
    (&["lua", "tclsh"], &["-e"]),
];

/// The script file an interpreter in `argv[0]` is given, if any (docs/security.md,
/// "Child processes"): the first argument that is not an option (or the one
/// after `--`), unless an option for inline code came first.
pub fn script_file(argv: &[String]) -> Option<&str> {
    let name = Path::new(argv.first()?).file_name()?.to_str()?;
    let name = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    let (_, inline) = INTERPRETERS.iter().find(|(names, _)| names.contains(&name))?;
    let mut args = argv[1..].iter();
    while let Some(a) = args.next() {
        if a == "--" {
            return args.next().map(String::as_str);
        }
        if !a.starts_with('-') || a == "-" {
            return (a != "-").then_some(a.as_str());
        }
        let grouped = |o: &&str| o.len() == 2 && !a.starts_with("--") && a[1..].contains(&o[1..]);
        if inline.iter().any(|o| a == o || grouped(o)) {
            return None;
        }
    }
    None
}

pub fn validate(cfg: &Config, problems: &mut Vec<Problem>) {
    if !cfg.security.script_security || !super::caps::privileged() {
        return;
    }
    let who = if nix::unistd::geteuid().is_root() {
        "hafront runs as root".to_string()
    } else {
        format!(
            "hafront holds capabilities (CapEff {:016x})",
            super::caps::effective()
        )
    };
    let mut refuse = |key: &Vec<String>, why: String| {
        problems.push(Problem {
            key: key.clone(),
            message: format!(
                "refused: {why}; {who} (make it root-owned and not writable by others, or set \
                 security.script_security = false)"
            ),
        })
    };
    for (key, argv) in scripts(cfg) {
        let program = &argv[0];
        if !program.starts_with('/') {
            continue; // reported by the key's own rule
        }
        if let Some(why) = insecure(Path::new(program)) {
            refuse(&key, why);
            continue;
        }
        match script_file(argv) {
            Some(file) if !file.starts_with('/') => refuse(
                &key,
                format!(
                    "the script file {file:?} given to {program} is not an absolute path (it \
                     would be looked up in the working directory or on PATH)"
                ),
            ),
            Some(file) => {
                if let Some(why) = insecure(Path::new(file)) {
                    refuse(&key, format!("{why} (the script file given to {program})"));
                }
            }
            None => {}
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

#[cfg(test)]
mod script_file_tests {
    use super::script_file;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_script_an_interpreter_runs() {
        let f = |a: &[&str]| script_file(&argv(a)).map(str::to_string);
        assert_eq!(f(&["/bin/sh", "/etc/x.sh"]).as_deref(), Some("/etc/x.sh"));
        assert_eq!(
            f(&["/bin/bash", "-e", "/etc/x.sh", "a"]).as_deref(),
            Some("/etc/x.sh")
        );
        assert_eq!(f(&["/usr/bin/python3.11", "-u", "x.py"]).as_deref(), Some("x.py"));
        assert_eq!(f(&["/bin/sh", "--", "-x.sh"]).as_deref(), Some("-x.sh"));
        // Inline code: nothing but the configuration runs.
        assert_eq!(f(&["/bin/sh", "-c", "/etc/x.sh"]), None);
        assert_eq!(f(&["/bin/sh", "-ec", "true"]), None);
        assert_eq!(f(&["/usr/bin/perl", "-e", "1", "/etc/x"]), None);
        assert_eq!(f(&["/usr/bin/python3", "-m", "mod"]), None);
        // Not an interpreter: its arguments are data.
        assert_eq!(f(&["/usr/bin/test", "-f", "/tmp/flag"]), None);
        assert_eq!(f(&["/bin/sh"]), None);
    }
}
