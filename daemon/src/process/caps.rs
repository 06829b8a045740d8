//! Linux capabilities: what the daemon holds, and what a child keeps of it.
//!
//! Raw `capget`/`capset`/`prctl` (a handful of syscalls; the `caps` crate would add
//! a dependency for the same few lines). [`restrict`] runs in the forked child
//! before exec, so it only makes syscalls: no allocation, no locks.

use std::io;

/// Capability numbers (linux/capability.h) hafront names.
pub const CHOWN: u32 = 0;
pub const DAC_OVERRIDE: u32 = 1;
pub const DAC_READ_SEARCH: u32 = 2;
pub const FOWNER: u32 = 3;
pub const KILL: u32 = 5;
pub const SETGID: u32 = 6;
pub const SETUID: u32 = 7;
pub const SETPCAP: u32 = 8;
pub const NET_BIND_SERVICE: u32 = 10;
pub const NET_ADMIN: u32 = 12;
pub const NET_RAW: u32 = 13;
pub const SYS_RESOURCE: u32 = 24;

/// A set of capabilities as a bit mask (bit n = capability n).
pub type CapSet = u64;

pub const fn bit(cap: u32) -> CapSet {
    1 << cap
}

/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct Header {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The effective, permitted and inheritable sets of the calling thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sets {
    pub effective: CapSet,
    pub permitted: CapSet,
    pub inheritable: CapSet,
}

pub fn get() -> io::Result<Sets> {
    let mut h = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut d = [Data::default(); 2];
    // SAFETY: header and a two-element data array, as capget(2) wants for version 3.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut h as *mut Header, d.as_mut_ptr()) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    let join = |lo: u32, hi: u32| lo as u64 | (hi as u64) << 32;
    Ok(Sets {
        effective: join(d[0].effective, d[1].effective),
        permitted: join(d[0].permitted, d[1].permitted),
        inheritable: join(d[0].inheritable, d[1].inheritable),
    })
}

fn set(s: Sets) -> io::Result<()> {
    let mut h = Header {
        version: VERSION_3,
        pid: 0,
    };
    let split = |v: u64| (v as u32, (v >> 32) as u32);
    let (e0, e1) = split(s.effective);
    let (p0, p1) = split(s.permitted);
    let (i0, i1) = split(s.inheritable);
    let d = [
        Data {
            effective: e0,
            permitted: p0,
            inheritable: i0,
        },
        Data {
            effective: e1,
            permitted: p1,
            inheritable: i1,
        },
    ];
    // SAFETY: as in `get`; the kernel only reads `d`.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut h as *mut Header, d.as_ptr()) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The daemon's effective set (`CapEff` of /proc/self/status); empty if it
/// cannot be read.
pub fn effective() -> CapSet {
    get().map(|s| s.effective).unwrap_or(0)
}

/// True when the daemon runs as root or holds any capability: then what its
/// children run is a privilege boundary (script user, unsafe-path refusal).
pub fn privileged() -> bool {
    nix::unistd::geteuid().is_root() || effective() != 0
}

/// True when the daemon can switch a child to another user.
pub fn can_switch_user() -> bool {
    let need = bit(SETUID) | bit(SETGID);
    effective() & need == need
}

fn prctl(op: libc::c_int, a: libc::c_ulong, b: libc::c_ulong) -> io::Result<()> {
    // SAFETY: a plain prctl(2) with integer arguments.
    let r = unsafe { libc::prctl(op, a, b, 0 as libc::c_ulong, 0 as libc::c_ulong) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Drops all but `keep` from the bounding set, when CAP_SETPCAP allows it.
fn drop_bounding(keep: CapSet) -> io::Result<()> {
    if get()?.effective & bit(SETPCAP) != 0 {
        for cap in 0..64u32 {
            if keep & bit(cap) == 0 {
                // EINVAL past the kernel's last capability.
                let _ = prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0);
            }
        }
    }
    Ok(())
}

/// In a forked child before exec: keep at most `keep` of the capabilities, and
/// become `user` (uid, gid; no supplementary groups) if given.
///
/// * the ambient set is cleared, then re-raised for what is kept (a non-root
///   child keeps capabilities across exec only through it);
/// * the bounding set loses everything else when the child may change it
///   (CAP_SETPCAP, root): a child that execs as root, or a setuid-root program,
///   would otherwise get the whole bounding set back;
/// * then the switch to `user` (which empties the sets of a root child);
/// * effective, permitted and inheritable become `permitted & keep`.
///
/// Errors only where a capability would stay that should not, or the user
/// cannot be switched to.
pub fn restrict(keep: CapSet, user: Option<(u32, u32)>) -> io::Result<()> {
    // EINVAL: a kernel without ambient capabilities (< 4.3) has none to clear.
    match prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
        0,
    ) {
        Err(e) if e.raw_os_error() != Some(libc::EINVAL) => return Err(e),
        _ => {}
    }
    drop_bounding(keep)?;
    if let Some((uid, gid)) = user {
        let ok = |r: libc::c_int| {
            if r == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        };
        // SAFETY: plain syscalls with integer arguments (no groups: a null list).
        unsafe {
            ok(libc::setgroups(0, std::ptr::null()))?;
            ok(libc::setgid(gid))?;
            ok(libc::setuid(uid))?;
        }
    }
    let kept = get()?.permitted & keep;
    set(Sets {
        effective: kept,
        permitted: kept,
        inheritable: kept,
    })?;
    for cap in 0..64u32 {
        if kept & bit(cap) != 0 {
            prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                cap as libc::c_ulong,
            )?;
        }
    }
    Ok(())
}

pub const IPC_LOCK: u32 = 14;
pub const SYS_NICE: u32 = 23;

/// What the configured features need of hafront's own capabilities after
/// start-up (docs/security.md, "Capabilities hafront itself needs"). Chosen at
/// start: a reload cannot add one.
pub fn needed(cfg: &crate::config::Config) -> CapSet {
    // VRRP, VIPs, ARP/NA, IPVS, nft, ping; emptying children's bounding sets;
    // reading the files a reload reads (configuration, tokens, tracked files)
    // whoever owns them.
    let mut need = bit(NET_ADMIN) | bit(NET_RAW) | bit(SETPCAP) | bit(DAC_OVERRIDE) | bit(DAC_READ_SEARCH);
    if super::security::script_credentials().is_some() {
        need |= bit(SETUID) | bit(SETGID);
    }
    if !cfg.services.is_empty() {
        // Signals to servers and their workers of another user.
        need |= bit(KILL);
    }
    if cfg.services.values().any(|s| !s.adopted()) {
        need |= super::SERVER_CAPS;
    }
    if cfg.api.listen.is_some_and(|a| a.port() < 1024) {
        need |= bit(NET_BIND_SERVICE);
    }
    if cfg.vrrp.lock_memory {
        need |= bit(IPC_LOCK); // MCL_FUTURE locks pages allocated later too
    }
    if cfg.vrrp.rt_priority > 0 {
        need |= bit(SYS_NICE);
    }
    need
}

/// Keeps only `keep` of the calling thread's capabilities (permitted, effective,
/// inheritable, ambient, and the bounding set while CAP_SETPCAP allows). Per
/// thread: called before hafront starts any thread, so every later one inherits
/// it. Returns the effective set left.
pub fn keep_only(keep: CapSet) -> io::Result<CapSet> {
    drop_bounding(keep)?;
    let now = get()?;
    // Ambient capabilities not in the new permitted set go with it.
    set(Sets {
        effective: now.effective & keep,
        permitted: now.permitted & keep,
        inheritable: now.inheritable & keep,
    })?;
    Ok(get()?.effective)
}
