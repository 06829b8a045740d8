//! Child processes: the one place hafront starts a child and signals a process
//! group.
//!
//! Every child is built by [`command`] (or [`std_command`] where the caller is not
//! async): notify scripts, exec checks and tracking scripts ([`Child::Script`]: own
//! process group, the script user), supervised servers ([`Child::Server`]: own
//! process group, so workers that would keep the listening socket die with the
//! leader), and the tools the daemon runs for itself ([`Child::Tool`]: systemctl;
//! [`Child::NetTool`]: nft). What a child may inherit is decided here and nowhere
//! else: no `HAFRONT_*` variable (the secrets of the configuration come that way),
//! and of the daemon's capabilities only what its kind needs ([`Child::keeps`]),
//! also for a child that runs as root (docs/security.md, "Child processes").

pub mod caps;
pub mod security;

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::Stdio;

use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

use caps::{bit, CapSet};

/// What a child is, which decides what it gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Child {
    /// A user's script or exec check: its own process group (killed whole at a
    /// timeout), run as the script user.
    Script,
    /// A supervised server (and its configuration test, the same program): its
    /// own process group.
    Server,
    /// A tool the daemon itself runs and waits for (systemctl).
    Tool,
    /// A tool that changes the network (nft): keeps CAP_NET_ADMIN.
    NetTool,
}

impl Child {
    /// The capabilities a child of this kind keeps of the daemon's: none for
    /// scripts and tools; nft needs CAP_NET_ADMIN; a web server started as root
    /// binds its ports, switches to its user, owns its temporary directories and
    /// raises its file limit, but has no business with the network's
    /// configuration or raw sockets.
    pub fn keeps(self) -> CapSet {
        match self {
            Child::Script | Child::Tool => 0,
            Child::NetTool => bit(caps::NET_ADMIN),
            Child::Server => SERVER_CAPS,
        }
    }
}

/// What a supervised server keeps (docs/security.md lists them).
pub const SERVER_CAPS: CapSet = bit(caps::CHOWN)
    | bit(caps::DAC_OVERRIDE)
    | bit(caps::DAC_READ_SEARCH)
    | bit(caps::FOWNER)
    | bit(caps::KILL)
    | bit(caps::SETGID)
    | bit(caps::SETUID)
    | bit(caps::NET_BIND_SERVICE)
    | bit(caps::SYS_RESOURCE);

/// A command for `program`, stdin from /dev/null, set up for `kind`.
pub fn std_command(program: impl AsRef<OsStr>, kind: Child) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    cmd.stdin(Stdio::null());
    let mut user = None;
    match kind {
        Child::Script => {
            cmd.process_group(0);
            // Switched in `restrict`, not by `Command::uid`: std switches before
            // the pre_exec hook, and the bounding set can only be dropped while
            // the child is still root (a setuid-root program the script runs
            // would get it back).
            user = security::script_credentials();
        }
        Child::Server => {
            cmd.process_group(0);
        }
        Child::Tool | Child::NetTool => {}
    }
    // Inherited only: a caller's own `.env()` set afterwards still applies.
    for (key, _) in std::env::vars_os() {
        if key.as_bytes().starts_with(b"HAFRONT_") {
            cmd.env_remove(key);
        }
    }
    let keep = kind.keeps();
    // SAFETY: `restrict` only makes syscalls (no allocation, no locks), which is
    // what may run between fork and exec.
    unsafe {
        cmd.pre_exec(move || caps::restrict(keep, user.map(|c| (c.uid, c.gid))));
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

/// A signal to one process: through a pidfd where the kernel has them (Linux
/// 5.3), so that it cannot reach another process that got the number, else by
/// PID. Use [`Pidfd`] to hold on to a process that is not a child.
pub fn signal_pid(pid: u32, sig: Signal) -> nix::Result<()> {
    match Pidfd::open(pid) {
        Ok(fd) => fd.signal(sig),
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => kill(Pid::from_raw(pid as i32), sig),
        Err(e) => Err(Errno::from_raw(e.raw_os_error().unwrap_or(libc::ESRCH))),
    }
}

/// A process by pidfd: it names that process and no other, also once its
/// number is free again.
#[derive(Debug)]
pub struct Pidfd {
    fd: OwnedFd,
    pid: u32,
}

impl Pidfd {
    pub fn open(pid: u32) -> io::Result<Pidfd> {
        // SAFETY: a plain syscall; the descriptor it returns is owned just below.
        let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
        Ok(Pidfd { fd, pid })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// ESRCH once the process has exited.
    pub fn signal(&self, sig: Signal) -> nix::Result<()> {
        // SAFETY: pidfd_send_signal(2) with no siginfo and no flags.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                sig as libc::c_int,
                std::ptr::null::<libc::siginfo_t>(),
                0u32,
            )
        };
        if r != 0 {
            return Err(Errno::last());
        }
        Ok(())
    }
}

impl AsRawFd for Pidfd {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

impl std::os::fd::AsFd for Pidfd {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `/proc/self/status` capability lines and the environment of a child of
    /// `kind`, as the child sees them.
    fn child_view(kind: Child) -> (CapSet, CapSet, String) {
        let out = std_command("/bin/sh", kind)
            .args(["-c", "grep -E '^Cap(Eff|Amb):' /proc/self/status; env"])
            .output()
            .expect("run /bin/sh");
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let cap = |name: &str| {
            let line = text.lines().find(|l| l.starts_with(name)).expect(name);
            u64::from_str_radix(line[name.len()..].trim(), 16).unwrap()
        };
        (cap("CapEff:"), cap("CapAmb:"), text)
    }

    #[test]
    fn children_get_no_hafront_variable_and_only_their_capabilities() {
        // No lib test reads the environment as configuration, so this variable
        // disturbs none.
        std::env::set_var("HAFRONT_TEST_CHILD_SECRET", "s3cret-token");
        let held = caps::effective();
        for kind in [Child::Script, Child::Tool, Child::NetTool, Child::Server] {
            let (eff, amb, text) = child_view(kind);
            assert!(
                !text.contains("HAFRONT_") && !text.contains("s3cret-token"),
                "{kind:?} inherited a HAFRONT_ variable:\n{text}"
            );
            // As root (the lab and CI run tests as root) the unfixed code gave
            // every child the whole set.
            assert_eq!(eff & !kind.keeps(), 0, "{kind:?}: CapEff {eff:x}");
            assert_eq!(eff, held & kind.keeps(), "{kind:?}: CapEff {eff:x}");
            assert_eq!(amb & !kind.keeps(), 0, "{kind:?}: CapAmb {amb:x}");
        }
        // What a caller sets itself still arrives.
        let out = std_command("/bin/sh", Child::Script)
            .args(["-c", "echo $NOTIFY_STATE"])
            .env("NOTIFY_STATE", "MASTER")
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "MASTER");
    }

    #[test]
    fn a_root_child_cannot_get_capabilities_back() {
        if !nix::unistd::geteuid().is_root() {
            return; // the bounding set is what stops a root child; as root only
        }
        // A root child exec'ing a program gets the bounding set as its permitted
        // set: the bounding set itself must have lost the capabilities.
        for (kind, bounding) in [(Child::Script, 0), (Child::NetTool, bit(caps::NET_ADMIN))] {
            let out = std_command("/bin/sh", kind)
                .args(["-c", "grep -E '^CapBnd:' /proc/self/status"])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert_eq!(text.trim(), format!("CapBnd:\t{bounding:016x}"), "{kind:?}");
        }
    }

    #[test]
    fn a_pidfd_signal_reaches_its_process_and_no_later_one() {
        // `sleep` from PATH: Nix's build sandbox (nixos/package.nix runs these
        // tests) has /bin/sh and nothing else under /bin.
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let fd = Pidfd::open(child.id()).unwrap();
        fd.signal(Signal::SIGTERM).unwrap();
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGTERM));
        // Reaped: its number may name another process now; the pidfd does not.
        assert_eq!(fd.signal(Signal::SIGTERM), Err(Errno::ESRCH));
    }
}
