//! One-time installs of test tools (the Python venv, the Node conformance suite) into the
//! Cargo target dir: where they go, the cross-process lock that serializes them, and the
//! atomic write of the "complete" stamp.
//!
//! It owns only the lock files and those helpers; what gets installed is up to the callers
//! ([`crate::python`], [`crate::conformance`]). It must not hold a lock beyond the install
//! that took it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Cargo's target directory ([`crate::workspace::target_dir`]), where the tools go.
pub fn target_dir() -> anyhow::Result<PathBuf> {
    crate::workspace::target_dir().map(Path::to_path_buf)
}

/// An exclusive `flock(2)` on a lock file, released on drop (or when the process dies, so a
/// crashed installer never wedges the next one).
pub struct FileLock {
    _file: std::fs::File,
}

impl FileLock {
    /// Wait (bounded) for the exclusive lock on `path`.
    pub fn acquire(path: &Path, timeout: Duration) -> anyhow::Result<FileLock> {
        use std::os::fd::AsRawFd;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .with_context(|| format!("opening the lock file {}", path.display()))?;
        let deadline = Instant::now() + timeout;
        loop {
            // SAFETY: flock(2) on a descriptor we own for the duration of the call.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                return Ok(FileLock { _file: file });
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(err).with_context(|| format!("locking {}", path.display()));
            }
            if Instant::now() >= deadline {
                bail!(
                    "another process held {} for more than {timeout:?}",
                    path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Write `contents` to `path` atomically (temp file + rename), so readers never see half.
pub fn write_atomic(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, contents).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming onto {}", path.display()))
}
