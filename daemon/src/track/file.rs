//! The one piece of I/O in tracking: a tracked file's value (keepalived's
//! vrrp_track_file), read on the checks' thread. Bounded: regular files only
//! (checked with fstat on the opened file), opened non-blocking so a FIFO cannot
//! stall the thread, and at most [`MAX_READ`] bytes read. Symlinks are followed:
//! the path is the operator's (docs/security.md, "State and files").

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Enough for any integer with white space around it.
pub const MAX_READ: usize = 64;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TrackFileError {
    #[error("{path}: not a regular file; counted as 0")]
    NotAFile { path: PathBuf },
    #[error("{path}: {error}; counted as 0")]
    Io { path: PathBuf, error: String },
}

/// The integer at the start of the file. A missing, empty or unparsable file is
/// 0 (keepalived's behaviour); anything that is not a regular file, or cannot be
/// read, is 0 with an error to log.
pub fn read_value(path: &Path) -> Result<i64, TrackFileError> {
    let io = |e: std::io::Error| TrackFileError::Io {
        path: path.to_path_buf(),
        error: e.to_string(),
    };
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io(e)),
    };
    if !file.metadata().map_err(io)?.is_file() {
        return Err(TrackFileError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let mut buf = Vec::with_capacity(MAX_READ);
    file.take(MAX_READ as u64).read_to_end(&mut buf).map_err(io)?;
    Ok(String::from_utf8_lossy(&buf)
        .split_whitespace()
        .next()
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_does_not_block_and_a_huge_file_is_read_in_part() {
        let dir = std::env::temp_dir().join(format!("hafront-trackfile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // Without a writer, a blocking open of a FIFO never returns.
        let (tx, rx) = std::sync::mpsc::channel();
        let f = fifo.clone();
        std::thread::spawn(move || tx.send(read_value(&f)));
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("blocked on a FIFO");
        assert!(matches!(got, Err(TrackFileError::NotAFile { .. })), "{got:?}");

        let big = dir.join("big");
        let mut text = b"-7\n".to_vec();
        text.resize(8 << 20, b'9');
        std::fs::write(&big, &text).unwrap();
        assert_eq!(read_value(&big), Ok(-7));
        assert_eq!(read_value(&dir.join("missing")), Ok(0));
        std::fs::write(&big, b"  42 \n").unwrap();
        assert_eq!(read_value(&big), Ok(42));
        assert!(matches!(read_value(&dir), Err(TrackFileError::NotAFile { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
