//! Processes of supervised services: the argv per kind, the configuration test,
//! reload and stop signals, and watching a process that is not our child (pidfd).

use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::io::unix::AsyncFd;

use crate::config::services::{ServiceConfig, ServiceKind};
use crate::process::{command, Child, Pidfd};
pub use crate::process::{kill_group, signal_group, signal_pid};

/// The argv that runs the server in the foreground (so it stays our child and its
/// death is a SIGCHLD, not a poll).
pub fn run_argv(s: &ServiceConfig) -> Vec<String> {
    let bin = s.binary_path().display().to_string();
    let conf = s
        .config
        .as_ref()
        .map(|c| c.display().to_string())
        .unwrap_or_default();
    match s.kind {
        ServiceKind::Nginx => vec![bin, "-c".into(), conf, "-g".into(), "daemon off;".into()],
        ServiceKind::Httpd => vec![bin, "-f".into(), conf, "-DFOREGROUND".into()],
        ServiceKind::Command => s.command.clone(),
    }
}

/// The configuration test (`nginx -t -c FILE`, `apache2 -t -f FILE`, what
/// `apachectl -t` runs); `None` for commands.
pub fn test_argv(s: &ServiceConfig) -> Option<Vec<String>> {
    let bin = s.binary_path().display().to_string();
    let conf = s.config.as_ref()?.display().to_string();
    match s.kind {
        ServiceKind::Nginx => Some(vec![bin, "-t".into(), "-q".into(), "-c".into(), conf]),
        ServiceKind::Httpd => Some(vec![bin, "-t".into(), "-f".into(), conf]),
        ServiceKind::Command => None,
    }
}

/// nginx re-reads its configuration on SIGHUP; httpd's graceful restart
/// (`apachectl graceful`) is SIGUSR1 to its parent.
pub fn reload_signal(kind: ServiceKind) -> Signal {
    match kind {
        ServiceKind::Httpd => Signal::SIGUSR1,
        _ => Signal::SIGHUP,
    }
}

/// Runs the configuration test; `Err` carries the tool's own words.
pub async fn config_test(s: &ServiceConfig) -> Result<(), String> {
    let Some(argv) = test_argv(s) else {
        return Ok(());
    };
    // The server's own program: it needs what the server needs (nginx -t creates
    // the temporary directories and gives them to its user).
    let out = command(&argv[0], Child::Server)
        .args(&argv[1..])
        .kill_on_drop(true)
        .output();
    let limit = s.test_timeout.unwrap_or(Duration::from_secs(10));
    match tokio::time::timeout(limit, out).await {
        Err(_) => Err(format!("{} -t did not finish within {limit:?}", argv[0])),
        Ok(Err(e)) => Err(format!("cannot run {}: {e}", argv[0])),
        Ok(Ok(o)) if o.status.success() => Ok(()),
        Ok(Ok(o)) => {
            let text = String::from_utf8_lossy(&o.stderr).to_string() + &String::from_utf8_lossy(&o.stdout);
            Err(format!("{} failed: {}", argv.join(" "), text.trim()))
        }
    }
}

/// Starts the server in its own process group: at its death the whole group (nginx
/// workers that would keep the listening socket) can be killed.
pub fn spawn(s: &ServiceConfig) -> io::Result<tokio::process::Child> {
    let argv = run_argv(s);
    command(&argv[0], Child::Server).args(&argv[1..]).spawn()
}

/// The PID an adopted service runs as: the first number in its pidfile, or the
/// MainPID systemd reports for its unit.
pub async fn adopted_pid(s: &ServiceConfig) -> Option<u32> {
    let pid = if let Some(file) = &s.pidfile {
        read_pidfile(file)?
    } else {
        let unit = s.systemd_unit.as_ref()?;
        let out = command("systemctl", Child::Tool)
            .args(["show", "--property=MainPID", "--value", unit])
            .stderr(Stdio::null())
            .output()
            .await
            .ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse::<u32>().ok()?
    };
    (pid > 1 && alive(pid)).then_some(pid)
}

/// Running (a zombie that nobody reaped yet is dead: its pidfile still names it).
/// Through a pidfd first: under the unit's ProtectProc=invisible, another user's
/// process (an adopted nginx) has no /proc entry for hafront's dynamic user, but
/// pidfd_open still finds it, and a pidfd polls readable once the process has
/// exited (zombie included). /proc only where the kernel has no pidfd_open.
fn alive(pid: u32) -> bool {
    match Pidfd::open(pid) {
        Ok(fd) => {
            let mut p = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd, no wait.
            let n = unsafe { libc::poll(&mut p, 1, 0) };
            return n == 0;
        }
        // ESRCH: no such process.
        Err(e) if e.raw_os_error() != Some(libc::ENOSYS) => return false,
        Err(_) => {}
    }
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with(['Z', 'X'])))
        .unwrap_or(false)
}

fn read_pidfile(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A process that is not our child, watched through a pidfd: readable once it
/// exits (event-driven, like a child's SIGCHLD), and signalled through it (a
/// signal cannot reach another process that got its number after it died).
pub struct PidWatch {
    fd: AsyncFd<Pidfd>,
}

impl PidWatch {
    pub fn open(pid: u32) -> io::Result<PidWatch> {
        // SAFETY: the AsyncFd owns the descriptor, which stays open as long as it does.
        let fd = unsafe { AsyncFd::register_with_interest(Pidfd::open(pid)?, tokio::io::Interest::READABLE) }
            .map_err(io::Error::from)?;
        Ok(PidWatch { fd })
    }

    /// ESRCH once the process has exited, whoever has its number now.
    pub fn signal(&self, sig: Signal) -> nix::Result<()> {
        self.fd.get_ref().signal(sig)
    }

    /// Resolves when the process has exited.
    pub async fn exited(&self) {
        if let Ok(mut g) = self.fd.readable().await {
            g.retain_ready();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alive_until_exit_and_a_zombie_is_dead() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        assert!(alive(pid));
        // SAFETY: signals our own child.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        // Not reaped yet: a zombie, which counts as dead.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while alive(pid) {
            assert!(std::time::Instant::now() < deadline, "a killed child still alive");
            std::thread::sleep(Duration::from_millis(10));
        }
        child.wait().unwrap();
        assert!(!alive(pid));
    }

    /// Another user's process (pid 1, root's) is alive. Run as a user under a
    /// /proc mounted hidepid=invisible (the unit's ProtectProc=invisible), this
    /// failed with the /proc-only check (commit message: how).
    #[test]
    fn another_users_process_is_alive() {
        assert!(alive(1));
    }
}
