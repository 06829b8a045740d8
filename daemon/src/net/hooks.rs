//! Transition hooks: commands that must finish before an instance's VIPs are added
//! (becoming master) and that run after they are removed (leaving). The VIP
//! executor runs them in its queue, so "hooks, then add" and "remove, then hooks"
//! keep their order without the engine waiting: adverts and timers go on.
//!
//! Each command gets `timeout`; then it (its process group, for the operator's
//! commands) is killed and the next one runs. A failure is logged and the
//! transition goes on: a VIP that never comes up is worse than a lost flow.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tracing::{info, warn};

use crate::process::{self, Child};
use crate::shared::HookStep;

/// The most of a hook's stderr kept for the log (512 bytes of it are logged).
const STDERR_KEPT: usize = 4096;

/// Which side of the VIP change the hooks are on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Becoming master: before the VIPs are added.
    BeforeMaster,
    /// Backup, fault or stop: after the VIPs are removed.
    AfterLeave,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::BeforeMaster => "before_master",
            Phase::AfterLeave => "after_leave",
        }
    }
}

/// How one step ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Failed(String),
    TimedOut,
}

/// Runs `steps` one after the other; returns how many did not succeed.
pub async fn run(instance: &str, phase: Phase, steps: &[HookStep], timeout: Duration) -> usize {
    let started = Instant::now();
    let mut failed = 0;
    for step in steps {
        let t0 = Instant::now();
        let outcome = run_one(step, timeout).await;
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        let command = step.argv.join(" ");
        match outcome {
            Outcome::Ok => info!(instance, phase = phase.as_str(), command, ms, "hook done"),
            Outcome::Failed(error) => {
                failed += 1;
                warn!(
                    instance,
                    phase = phase.as_str(),
                    command,
                    ms,
                    error,
                    "hook failed"
                );
            }
            Outcome::TimedOut => {
                failed += 1;
                warn!(
                    instance,
                    phase = phase.as_str(),
                    command,
                    ?timeout,
                    "hook timed out: killed"
                );
            }
        }
    }
    if !steps.is_empty() {
        let ms = started.elapsed().as_secs_f64() * 1e3;
        info!(
            instance,
            phase = phase.as_str(),
            steps = steps.len(),
            failed,
            ms,
            "hooks finished"
        );
    }
    failed
}

async fn run_one(step: &HookStep, timeout: Duration) -> Outcome {
    let Some((program, args)) = step.argv.split_first() else {
        return Outcome::Failed("empty command".into());
    };
    let kind = if step.builtin { Child::Tool } else { Child::Script };
    let mut cmd = process::command(program, kind);
    cmd.args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(format!("not started: {e}")),
    };
    let pgid = (kind == Child::Script).then(|| child.id()).flatten();
    let mut child = child;
    // stderr is read as it comes and only its first STDERR_KEPT bytes are kept: a
    // command that prints without end neither grows our memory nor blocks on a
    // full pipe before its timeout.
    let stderr = child.stderr.take();
    let read = async move {
        let mut kept = Vec::new();
        let Some(mut pipe) = stderr else { return kept };
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = pipe.read(&mut buf).await {
            let room = STDERR_KEPT.saturating_sub(kept.len());
            kept.extend_from_slice(&buf[..n.min(room)]);
        }
        kept
    };
    let run = async { tokio::join!(child.wait(), read) };
    match tokio::time::timeout(timeout, run).await {
        Ok((Ok(status), _)) if status.success() => Outcome::Ok,
        Ok((Ok(status), stderr)) => {
            let mut err = String::from_utf8_lossy(&stderr).trim().to_string();
            // What a command prints is bounded in the log.
            if err.len() > 512 {
                let mut cut = 512;
                while !err.is_char_boundary(cut) {
                    cut -= 1;
                }
                err.truncate(cut);
            }
            Outcome::Failed(format!("{status}: {err}"))
        }
        Ok((Err(e), _)) => Outcome::Failed(e.to_string()),
        Err(_) => {
            // The child itself is killed on drop; its process group too.
            if let Some(pgid) = pgid {
                process::kill_group(pgid);
            }
            Outcome::TimedOut
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(argv: &[&str]) -> HookStep {
        HookStep {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            builtin: true,
        }
    }

    #[tokio::test]
    async fn steps_run_in_order_and_a_hanging_one_is_cut() {
        let log = std::env::temp_dir().join(format!("hafront-hooks-{}", std::process::id()));
        let _ = std::fs::remove_file(&log);
        let l = log.to_str().unwrap();
        let steps = [
            step(&["/bin/sh", "-c", &format!("echo one >>{l}")]),
            step(&["/bin/sh", "-c", "exit 3"]),
            step(&["/bin/sleep", "10"]),
            step(&["/bin/sh", "-c", &format!("echo two >>{l}")]),
        ];
        let t0 = Instant::now();
        let failed = run("t", Phase::BeforeMaster, &steps, Duration::from_millis(300)).await;
        assert_eq!(failed, 2);
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the hanging step was not cut"
        );
        let written = std::fs::read_to_string(&log).unwrap();
        let _ = std::fs::remove_file(&log);
        assert_eq!(written, "one\ntwo\n");
    }

    #[tokio::test]
    async fn a_flood_on_stderr_is_read_and_bounded() {
        // 32 MiB on stderr, then a failure: read through (the child is not blocked
        // on a full pipe), and only the start of it is kept and logged.
        let out = run_one(
            &step(&[
                "/bin/sh",
                "-c",
                "head -c 33554432 /dev/zero | tr '\\0' x >&2; exit 1",
            ]),
            Duration::from_secs(30),
        )
        .await;
        match out {
            Outcome::Failed(msg) => {
                assert!(msg.len() < 600, "{} bytes kept", msg.len());
                assert!(
                    msg.contains("exit status: 1") && msg.contains("xxxx"),
                    "{msg:.80}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_missing_program_is_a_failure_not_a_panic() {
        let out = run_one(&step(&["/nonexistent/hook"]), Duration::from_secs(1)).await;
        assert!(matches!(out, Outcome::Failed(_)), "{out:?}");
    }
}
