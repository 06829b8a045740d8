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

use tracing::{info, warn};

use crate::process::{self, Child};
use crate::shared::HookStep;

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
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) if out.status.success() => Outcome::Ok,
        Ok(Ok(out)) => {
            let mut err = String::from_utf8_lossy(&out.stderr).trim().to_string();
            // What a command prints is bounded in the log.
            if err.len() > 512 {
                let mut cut = 512;
                while !err.is_char_boundary(cut) {
                    cut -= 1;
                }
                err.truncate(cut);
            }
            Outcome::Failed(format!("{}: {err}", out.status))
        }
        Ok(Err(e)) => Outcome::Failed(e.to_string()),
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
    async fn a_missing_program_is_a_failure_not_a_panic() {
        let out = run_one(&step(&["/nonexistent/hook"]), Duration::from_secs(1)).await;
        assert!(matches!(out, Outcome::Failed(_)), "{out:?}");
    }
}
