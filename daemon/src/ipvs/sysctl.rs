//! `[ipvs.sysctl]`: writes the director's `net.ipv4.vs.*` settings into
//! /proc/sys/net/ipv4/vs of hafront's own network namespace (the files exist once
//! the ip_vs module is loaded), and reads them back for the status.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::config::ipvs::IpvsSysctls;

/// Where the kernel has them, for the namespace of the process that opens them.
pub const PROC_DIR: &str = "/proc/sys/net/ipv4/vs";

/// One setting as the status shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SysctlState {
    /// What the configuration asks.
    pub wanted: String,
    /// What the kernel reports after the write (tabs as spaces); absent when it
    /// could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    /// Why the write or the read failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A file's value: at most 64 bytes (every file here holds one or two numbers),
/// whitespace runs as one space.
fn read(dir: &Path, name: &str) -> Result<String, String> {
    use std::io::Read;
    let mut buf = Vec::with_capacity(64);
    std::fs::File::open(dir.join(name))
        .and_then(|f| f.take(64).read_to_end(&mut buf))
        .map_err(|e| format!("reading {}: {e}", dir.join(name).display()))?;
    Ok(String::from_utf8_lossy(&buf)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" "))
}

/// "3 50" -> (3, 50).
fn threshold(s: &str) -> Option<(u32, u32)> {
    let mut it = s.split_whitespace().map(str::parse::<u32>);
    match (it.next(), it.next(), it.next()) {
        (Some(Ok(t)), Some(Ok(p)), None) => Some((t, p)),
        _ => None,
    }
}

/// Writes every configured setting (the others are left alone) and reads each
/// back. `Err` when `dir` does not exist (no IPVS in this kernel or namespace
/// yet): nothing was written.
pub fn apply(dir: &Path, s: &IpvsSysctls) -> Result<BTreeMap<String, SysctlState>, String> {
    if !dir.is_dir() {
        return Err(format!(
            "{} does not exist (no ip_vs module loaded)",
            dir.display()
        ));
    }
    let current_threshold = read(dir, "sync_threshold").ok().and_then(|v| threshold(&v));
    let mut out = BTreeMap::new();
    for (name, wanted) in s.writes(current_threshold) {
        let mut st = SysctlState {
            wanted: wanted.clone(),
            ..Default::default()
        };
        let path = dir.join(name);
        // No create: a file the kernel lacks is an error, not a new file.
        let written = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{wanted}\n").as_bytes()));
        if let Err(e) = written {
            st.error = Some(format!("writing {wanted:?} to {}: {e}", path.display()));
        }
        match read(dir, name) {
            Ok(v) => {
                if st.error.is_none() && v != wanted {
                    st.error = Some(format!("the kernel reports {v:?} after writing {wanted:?}"));
                }
                st.current = Some(v);
            }
            Err(e) => st.error = st.error.or(Some(e)),
        }
        out.insert(name.to_string(), st);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_configured_files_and_reads_them_back() {
        let dir = std::env::temp_dir().join(format!("hafront-sysctl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("sync_threshold"), "3\t50\n").unwrap();
        std::fs::write(dir.join("expire_nodest_conn"), "0\n").unwrap();
        std::fs::write(dir.join("sloppy_tcp"), "0\n").unwrap();
        let s = IpvsSysctls {
            sync_period: Some(10),
            expire_nodest_conn: Some(true),
            // No such file: the error names it, the others are still written.
            sync_retries: Some(2),
            ..Default::default()
        };
        let got = apply(&dir, &s).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("sync_threshold")).unwrap(),
            "3 10\n"
        );
        assert_eq!(got["sync_threshold"].current.as_deref(), Some("3 10"));
        assert_eq!(got["expire_nodest_conn"].current.as_deref(), Some("1"));
        assert!(got["expire_nodest_conn"].error.is_none());
        assert!(got["sync_retries"]
            .error
            .as_deref()
            .unwrap()
            .contains("sync_retries"));
        // sloppy_tcp is not configured: untouched and not shown.
        assert!(!got.contains_key("sloppy_tcp"));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(apply(&dir, &s).unwrap_err().contains("no ip_vs module"));
    }

    #[test]
    fn threshold_parses_the_kernel_format() {
        assert_eq!(threshold("3 50"), Some((3, 50)));
        assert_eq!(threshold("3"), None);
        assert_eq!(threshold("a b"), None);
    }
}
