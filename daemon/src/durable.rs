//! The one way hafront writes a file it keeps (overrides.json, ipvs-owned.json,
//! recordings, `import-keepalived -o`; status.json without the fsyncs): a new
//! file beside the target, owner-only (0600), created exclusively and without
//! following a symlink, written, fsynced, renamed over the target, then the
//! directory fsynced. After a power loss the target is either the old file or
//! the new one, never empty or half written (issue 13, docs/security.md "State
//! and files").

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Files hafront writes: owner only (they can hold secrets, e.g. a VRRPv2 password).
pub const FILE_MODE: u32 = 0o600;
/// Directories hafront creates for its own files.
pub const DIR_MODE: u32 = 0o700;

#[derive(Debug, thiserror::Error)]
pub enum DurableError {
    #[error("{path}: not a directory (it is {kind})")]
    NotADirectory { path: PathBuf, kind: &'static str },
    #[error("{path}: is a symbolic link; hafront does not follow it")]
    Symlink { path: PathBuf },
    #[error("{path}: not a regular file (it is {kind})")]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("{path}: {step}: {source}")]
    Io {
        path: PathBuf,
        step: Step,
        #[source]
        source: io::Error,
    },
}

/// The steps of a durable write, in order (errors name the one that failed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    CreateDir,
    CreateTemp,
    Write,
    FsyncFile,
    Rename,
    FsyncDir,
    Open,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Step::CreateDir => "cannot create the directory",
            Step::CreateTemp => "cannot create the temporary file",
            Step::Write => "cannot write",
            Step::FsyncFile => "cannot fsync the file",
            Step::Rename => "cannot rename into place",
            Step::FsyncDir => "cannot fsync the directory",
            Step::Open => "cannot open",
        })
    }
}

fn io_err(path: &Path, step: Step) -> impl FnOnce(io::Error) -> DurableError + '_ {
    move |source| DurableError::Io {
        path: path.to_path_buf(),
        step,
        source,
    }
}

/// What a file system object is, for messages.
fn kind_of(ft: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_file() {
        "a regular file"
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() || ft.is_block_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// Makes sure `dir` is a directory, creating it (and missing parents, 0700) if
/// needed. A configured directory may be a symlink to one (the operator's
/// choice); a path that exists as anything else is said plainly, not as
/// "File exists (os error 17)".
pub fn ensure_dir(dir: &Path) -> Result<(), DurableError> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(m) => {
            return Err(DurableError::NotADirectory {
                path: dir.to_path_buf(),
                kind: kind_of(m.file_type()),
            })
        }
        // ENOTDIR: a parent is not a directory; the parent's turn names it.
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => {}
        Err(e) => return Err(io_err(dir, Step::CreateDir)(e)),
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        ensure_dir(parent)?;
    }
    match std::fs::DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => Ok(()),
        // Created meanwhile by someone else: fine if it is a directory.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(io_err(dir, Step::CreateDir)(e)),
    }
}

/// Where a configured directory cannot be: `dir` or its nearest existing
/// ancestor exists but is not a directory (for check-config, before anything
/// tries to create it).
pub fn not_a_directory(dir: &Path) -> Option<DurableError> {
    for part in dir.ancestors() {
        match std::fs::metadata(part) {
            Ok(m) if m.is_dir() => return None,
            Ok(m) => {
                return Some(DurableError::NotADirectory {
                    path: part.to_path_buf(),
                    kind: kind_of(m.file_type()),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => {}
            Err(_) => return None, // not ours to judge (permissions): the start says
        }
    }
    None
}

/// A directory of hafront's own below a configured one (a recording's): created
/// 0700; an existing one must be a real directory, not a symlink, and is made
/// owner-only.
pub fn private_dir(dir: &Path) -> Result<(), DurableError> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        ensure_dir(parent)?;
    }
    match std::fs::DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err(dir, Step::CreateDir)(e)),
    }
    // O_NOFOLLOW on the last component: a symlink planted there fails (ELOOP).
    let handle = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dir)
        .map_err(|e| refine(dir, e, Step::Open))?;
    handle
        .set_permissions(std::fs::Permissions::from_mode(DIR_MODE))
        .map_err(io_err(dir, Step::Open))
}

/// Turns ELOOP/ENOTDIR from an O_NOFOLLOW open into what the path is.
fn refine(path: &Path, e: io::Error, step: Step) -> DurableError {
    if matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR)) {
        if let Ok(m) = std::fs::symlink_metadata(path) {
            if m.file_type().is_symlink() {
                return DurableError::Symlink {
                    path: path.to_path_buf(),
                };
            }
            if !m.is_dir() && e.raw_os_error() == Some(libc::ENOTDIR) {
                return DurableError::NotADirectory {
                    path: path.to_path_buf(),
                    kind: kind_of(m.file_type()),
                };
            }
        }
    }
    io_err(path, step)(e)
}

/// Opens `path` for appending (a recording): created 0600, never through a
/// symlink, a regular file only; an existing file is made owner-only.
pub fn open_append(path: &Path) -> Result<File, DurableError> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| refine(path, e, Step::Open))?;
    let meta = file.metadata().map_err(io_err(path, Step::Open))?;
    if !meta.is_file() {
        return Err(DurableError::NotAFile {
            path: path.to_path_buf(),
            kind: kind_of(meta.file_type()),
        });
    }
    if meta.permissions().mode() & 0o777 != FILE_MODE {
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
            .map_err(io_err(path, Step::Open))?;
    }
    Ok(file)
}

/// Writes `bytes` to `path` durably (see the module comment); the directory
/// is created (0700) if missing.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), DurableError> {
    write_traced(path, bytes, true, &mut |_| {})
}

/// [`write`] without the two fsyncs, for a runtime file that is rewritten every
/// second and means nothing after a reboot (status.json, in /run): private and
/// atomic all the same. The engine writes it on a state change before the VIPs
/// move; the fsyncs cost ~12 ms there on ext4 (measured on the lab machine).
pub fn write_runtime(path: &Path, bytes: &[u8]) -> Result<(), DurableError> {
    write_traced(path, bytes, false, &mut |_| {})
}

/// [`write`], reporting each step done (the unit tests check the order).
fn write_traced(
    path: &Path,
    bytes: &[u8],
    sync: bool,
    done: &mut dyn FnMut(Step),
) -> Result<(), DurableError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    ensure_dir(dir)?;
    done(Step::CreateDir);
    let (tmp, mut file) = create_temp(dir, path)?;
    done(Step::CreateTemp);
    let result = (|| {
        file.write_all(bytes).map_err(io_err(&tmp, Step::Write))?;
        done(Step::Write);
        if sync {
            file.sync_all().map_err(io_err(&tmp, Step::FsyncFile))?;
            done(Step::FsyncFile);
        }
        std::fs::rename(&tmp, path).map_err(|e| {
            // The target is a directory, say: name it, not the temporary file.
            io_err(path, Step::Rename)(e)
        })?;
        done(Step::Rename);
        Ok(())
    })();
    if result.is_err() || !sync {
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        return result;
    }
    // The rename is durable only once the directory is on disk.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir, Step::FsyncDir))?;
    done(Step::FsyncDir);
    Ok(())
}

/// A new temporary file in `dir`, named after `target`, 0600, O_EXCL|O_NOFOLLOW:
/// an existing file or symlink of that name is never written through. One left
/// by a crash (or planted) is skipped for the next name.
fn create_temp(dir: &Path, target: &Path) -> Result<(PathBuf, File), DurableError> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let base = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let mut last = None;
    for _ in 0..16 {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{base}.{}.{n}.tmp", std::process::id()));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(io_err(&tmp, Step::CreateTemp)(e)),
        }
    }
    Err(io_err(dir, Step::CreateTemp)(
        last.unwrap_or_else(|| io::Error::other("no free temporary name")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hafront-durable-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn writes_owner_only_whatever_the_umask_and_replaces_old_modes() {
        let dir = scratch("mode");
        let path = dir.join("sub").join("f.json");
        write(&path, b"one").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(dir.join("sub")).unwrap().mode() & 0o777, 0o700);
        // A world-readable file left by an older version is replaced by a 0600 one.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        // No temporary file is left behind.
        let left: Vec<_> = std::fs::read_dir(dir.join("sub")).unwrap().collect();
        assert_eq!(left.len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn never_writes_through_a_planted_symlink() {
        let dir = scratch("symlink");
        std::fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let target = dir.join("f.json");
        // Every temporary name this process could use next, as a symlink.
        let next = next_seq();
        for n in next..next + 8 {
            std::os::unix::fs::symlink(
                &victim,
                dir.join(format!(".f.json.{}.{n}.tmp", std::process::id())),
            )
            .unwrap();
        }
        write(&target, b"new").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        // The target itself a symlink: replaced by the rename, the victim untouched.
        std::fs::remove_file(&target).unwrap();
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        write(&target, b"newer").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(!std::fs::symlink_metadata(&target)
            .unwrap()
            .file_type()
            .is_symlink());
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn next_seq() -> u64 {
        // The next sequence number: create one temporary name and read it back.
        let dir = scratch("peek");
        std::fs::create_dir_all(&dir).unwrap();
        let (tmp, _) = create_temp(&dir, &dir.join("x")).unwrap();
        let name = tmp.file_name().unwrap().to_string_lossy().into_owned();
        let n: u64 = name.rsplit('.').nth(1).unwrap().parse().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        n + 1
    }

    #[test]
    fn fsyncs_the_file_before_the_rename_and_the_directory_after() {
        let dir = scratch("steps");
        let mut steps = Vec::new();
        write_traced(&dir.join("f"), b"x", true, &mut |s| steps.push(s)).unwrap();
        assert_eq!(
            steps,
            [
                Step::CreateDir,
                Step::CreateTemp,
                Step::Write,
                Step::FsyncFile,
                Step::Rename,
                Step::FsyncDir
            ]
        );
        steps.clear();
        write_traced(&dir.join("f"), b"y", false, &mut |s| steps.push(s)).unwrap();
        assert_eq!(
            steps,
            [Step::CreateDir, Step::CreateTemp, Step::Write, Step::Rename]
        );
        assert_eq!(std::fs::metadata(dir.join("f")).unwrap().mode() & 0o777, 0o600);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_file_where_a_directory_belongs_is_said_plainly() {
        let dir = scratch("notdir");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("state");
        std::fs::write(&file, b"").unwrap();
        let e = write(&file.join("overrides.json"), b"{}").unwrap_err();
        assert!(matches!(e, DurableError::NotADirectory { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            format!("{}: not a directory (it is a regular file)", file.display())
        );
        let e = ensure_dir(&file.join("a").join("b")).unwrap_err();
        assert!(e.to_string().contains("not a directory"), "{e}");
        let e = not_a_directory(&file.join("a")).unwrap();
        assert_eq!(
            e.to_string(),
            format!("{}: not a directory (it is a regular file)", file.display())
        );
        assert!(not_a_directory(&dir.join("missing").join("x")).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn private_dirs_and_appends_refuse_symlinks() {
        let dir = scratch("private");
        std::fs::create_dir_all(&dir).unwrap();
        let elsewhere = scratch("private-elsewhere");
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.join("link")).unwrap();
        let e = private_dir(&dir.join("link")).unwrap_err();
        assert!(matches!(e, DurableError::Symlink { .. }), "{e}");
        private_dir(&dir.join("real")).unwrap();
        assert_eq!(std::fs::metadata(dir.join("real")).unwrap().mode() & 0o777, 0o700);
        let victim = elsewhere.join("victim");
        std::fs::write(&victim, b"").unwrap();
        std::os::unix::fs::symlink(&victim, dir.join("real/input.jsonl")).unwrap();
        let e = open_append(&dir.join("real/input.jsonl")).unwrap_err();
        assert!(matches!(e, DurableError::Symlink { .. }), "{e}");
        std::fs::remove_file(dir.join("real/input.jsonl")).unwrap();
        // An existing 0644 file is made owner-only.
        std::fs::write(dir.join("real/input.jsonl"), b"").unwrap();
        std::fs::set_permissions(
            dir.join("real/input.jsonl"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let mut f = open_append(&dir.join("real/input.jsonl")).unwrap();
        f.write_all(b"x").unwrap();
        assert_eq!(
            std::fs::metadata(dir.join("real/input.jsonl")).unwrap().mode() & 0o777,
            0o600
        );
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&elsewhere);
    }
}
