//! exec (keepalived MISC_CHECK): the command runs in its own process group; at the
//! deadline, or if the probe is dropped, the whole group is killed.

use std::process::Stdio;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::Command;
use tokio::time::{timeout_at, Instant};

use super::ProbeError;

/// The verdict on an exit: 0 up; 1 down; 2..255 up with weight `code − 2` when
/// `dynamic` (keepalived `misc_dynamic`), down otherwise; a signal is down.
pub fn exit_verdict(
    code: Option<i32>,
    signal: Option<i32>,
    dynamic: bool,
) -> Result<Option<i32>, ProbeError> {
    match (code, signal) {
        (Some(0), _) => Ok(None),
        (Some(c @ 2..=255), _) if dynamic => Ok(Some(c - 2)),
        (Some(c), _) => Err(ProbeError::ExitCode(c)),
        (None, Some(s)) => Err(ProbeError::Signal(s)),
        (None, None) => Err(ProbeError::ExitCode(-1)),
    }
}

/// Kills the process group when dropped unless disarmed (the leader is reaped).
struct GroupGuard(Option<Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

pub(super) async fn probe(
    argv: &[String],
    dynamic: bool,
    deadline: Instant,
    timeout: std::time::Duration,
) -> Result<Option<i32>, ProbeError> {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    crate::notify::security::apply(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| ProbeError::Spawn {
        program: argv[0].clone(),
        message: e.to_string(),
    })?;
    // The leader is not reaped before the guard is disarmed, so its PID (the
    // group's ID) cannot have been reused when the guard fires.
    let mut guard = GroupGuard(child.id().map(|p| Pid::from_raw(p as i32)));
    match timeout_at(deadline, child.wait()).await {
        Ok(Ok(status)) => {
            guard.0 = None;
            use std::os::unix::process::ExitStatusExt;
            exit_verdict(status.code(), status.signal(), dynamic)
        }
        Ok(Err(e)) => Err(ProbeError::io("wait", e)),
        Err(_) => {
            drop(guard); // SIGKILL to the group
            let _ = child.wait().await;
            Err(ProbeError::Timeout(timeout))
        }
    }
}
