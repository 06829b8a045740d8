//! Child processes: the one place hafront starts a child and signals a process
//! group.
//!
//! Every child is built by [`command`] (or [`std_command`] where the caller is not
//! async): notify scripts, exec checks and tracking scripts ([`Child::Script`]: own
//! process group, the script user), supervised servers ([`Child::Server`]: own
//! process group, so workers that would keep the listening socket die with the
//! leader), and the tools the daemon runs for itself ([`Child::Tool`]: nft,
//! systemctl, a server's configuration test). What a child may inherit is decided
//! here and nowhere else.

pub mod security;

use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::process::Stdio;

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// What a child is, which decides what it gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Child {
    /// A user's script or exec check: its own process group (killed whole at a
    /// timeout), run as the script user.
    Script,
    /// A supervised server: its own process group.
    Server,
    /// A tool the daemon itself runs and waits for.
    Tool,
}

/// A command for `program`, stdin from /dev/null, set up for `kind`.
pub fn std_command(program: impl AsRef<OsStr>, kind: Child) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    cmd.stdin(Stdio::null());
    match kind {
        Child::Script => {
            cmd.process_group(0);
            if let Some(c) = security::script_credentials() {
                cmd.uid(c.uid).gid(c.gid);
            }
        }
        Child::Server => {
            cmd.process_group(0);
        }
        Child::Tool => {}
    }
    cmd
}

/// [`std_command`] for tokio.
pub fn command(program: impl AsRef<OsStr>, kind: Child) -> tokio::process::Command {
    tokio::process::Command::from(std_command(program, kind))
}

/// SIGKILL to a process group; orphans left by a dead leader go too.
pub fn kill_group(pgid: u32) {
    let _ = killpg(Pid::from_raw(pgid as i32), Signal::SIGKILL);
}

pub fn signal_group(pgid: u32, sig: Signal) -> nix::Result<()> {
    killpg(Pid::from_raw(pgid as i32), sig)
}

pub fn signal_pid(pid: u32, sig: Signal) -> nix::Result<()> {
    kill(Pid::from_raw(pid as i32), sig)
}

/// Kills a child's process group when dropped (a timeout dropped the future that
/// waited for it), unless disarmed once the child has exited. The leader is not
/// reaped before the guard is disarmed, so its PID (the group's ID) cannot have
/// been reused when the guard fires.
pub struct GroupGuard(Option<u32>);

impl GroupGuard {
    /// For a child of kind `Script` or `Server` (`child.id()`: none once reaped).
    pub fn new(pgid: Option<u32>) -> GroupGuard {
        GroupGuard(pgid)
    }

    /// The child exited and was reaped: nothing to kill.
    pub fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            kill_group(pgid);
        }
    }
}
