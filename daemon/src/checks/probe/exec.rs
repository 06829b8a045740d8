//! exec (keepalived MISC_CHECK): the command runs in its own process group; at the
//! deadline, or if the probe is dropped, the whole group is killed.

use std::process::Stdio;

use tokio::time::{timeout_at, Instant};

use super::ProbeError;
use crate::process::{command, Child, GroupGuard};

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

pub(super) async fn probe(
    argv: &[String],
    dynamic: bool,
    deadline: Instant,
    timeout: std::time::Duration,
) -> Result<Option<i32>, ProbeError> {
    let mut child = command(&argv[0], Child::Script)
        .args(&argv[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| ProbeError::Spawn {
            program: argv[0].clone(),
            message: e.to_string(),
        })?;
    let guard = GroupGuard::new(child.id());
    match timeout_at(deadline, child.wait()).await {
        Ok(Ok(status)) => {
            guard.disarm();
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
