//! Link-local IGMP reports (keepalived's `disable_local_igmp`). A socket that joins
//! the VRRP group 224.0.0.18 on a virtual-MAC macvlan makes the kernel send IGMP
//! membership reports from that macvlan, with the virtual MAC as source; a backup's
//! report teaches the switch that the master's MAC is on the backup's port, and the
//! VIP's traffic goes there until the master's next advert (at start, and at every
//! IGMP query of a querier on the link). RFC 4541 §2.1.2 has snooping switches
//! flood 224.0.0.0/24 whatever is reported, so these reports are not needed:
//! `net.ipv4.igmp_link_local_mcast_reports = 0` in hafront's own network namespace
//! (the sysctl is per namespace) stops them, and the value found is put back at
//! stop. MLD (IPv6) has no such switch: net/mld.rs moves those reports instead.

use std::path::Path;

/// The sysctl, for the namespace of the process that opens it.
pub const SYSCTL: &str = "/proc/sys/net/ipv4/igmp_link_local_mcast_reports";

/// The value found, to put back at stop (`None`: it was already off, nothing to do).
#[derive(Debug, PartialEq, Eq)]
pub struct Saved(Option<String>);

/// Turns the reports off. `Err` names the file and the reason (a read-only
/// /proc/sys under systemd's `ProtectKernelTunables=`, no CAP_NET_ADMIN).
pub fn disable(path: &Path) -> Result<Saved, String> {
    let found = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let found = found.trim().to_string();
    if found == "0" {
        return Ok(Saved(None));
    }
    std::fs::write(path, "0").map_err(|e| format!("writing 0 into {}: {e}", path.display()))?;
    Ok(Saved(Some(found)))
}

/// Puts back what [`disable`] found.
pub fn restore(path: &Path, saved: Saved) -> Result<(), String> {
    match saved.0 {
        None => Ok(()),
        Some(v) => std::fs::write(path, &v).map_err(|e| format!("writing {v} into {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of its own per test (they run in parallel), removed with the guard.
    struct Scratch(std::path::PathBuf);
    impl Scratch {
        fn new(test: &str, content: &str) -> Scratch {
            let p = std::env::temp_dir().join(format!("hafront-igmp-{}-{test}", std::process::id()));
            std::fs::write(&p, content).unwrap();
            Scratch(p)
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn turns_reports_off_and_puts_back_what_it_found() {
        let scratch = Scratch::new("on", "1\n");
        let f = &scratch.0;
        let saved = disable(f).unwrap();
        assert_eq!(std::fs::read_to_string(f).unwrap(), "0");
        restore(f, saved).unwrap();
        assert_eq!(std::fs::read_to_string(f).unwrap(), "1");
    }

    #[test]
    fn already_off_is_left_alone() {
        let scratch = Scratch::new("off", "0\n");
        let f = &scratch.0;
        let saved = disable(f).unwrap();
        assert_eq!(saved, Saved(None));
        std::fs::write(f, "1").unwrap(); // changed by someone else meanwhile
        restore(f, saved).unwrap();
        assert_eq!(std::fs::read_to_string(f).unwrap(), "1");
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let err = disable(Path::new("/nonexistent/igmp_link_local_mcast_reports")).unwrap_err();
        assert!(
            err.contains("/nonexistent/igmp_link_local_mcast_reports"),
            "{err}"
        );
    }
}
