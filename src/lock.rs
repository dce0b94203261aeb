//! Exclusive advisory locks on a file, for the one writer of a feed index or of a
//! checkpoint. The kernel drops the lock when the process dies, so a killed writer never
//! leaves a stale lock behind.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

/// Takes the lock on the file at `path` (created if missing) without waiting for long:
/// `Ok(Ok(file))` holds it until `file` is closed; `Ok(Err(holder))` when another process
/// holds it, with its pid as it wrote it (for messages; empty when unknown).
pub(crate) fn take(path: &Path) -> io::Result<Result<File, String>> {
    let mut file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    // A process forked by this one between our closing an earlier handle and its exec
    // holds the lock for a moment: try a few times before saying it is taken.
    let mut locked = try_lock(&file);
    for wait_ms in [5, 20, 50, 100, 200] {
        if !matches!(locked, Ok(false)) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(wait_ms));
        locked = try_lock(&file);
    }
    if !locked? {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        return Ok(Err(holder.trim().to_string()));
    }
    // Who holds the lock, for the message of the next process; not needed for correctness.
    let _ = file
        .set_len(0)
        .and_then(|()| file.write_all(std::process::id().to_string().as_bytes()));
    Ok(Ok(file))
}

/// "another process (pid N)", or "another process" when the pid is unknown; a lock held
/// in this very process (a program that opened the index twice) is said to be.
pub(crate) fn describe_holder(holder: &str) -> String {
    if holder.is_empty() {
        "another process".to_string()
    } else if holder == std::process::id().to_string() {
        format!("this process (pid {holder}), which opened it before")
    } else {
        format!("another process (pid {holder})")
    }
}

/// Takes an exclusive advisory lock without waiting: `Ok(false)` if another process
/// holds it. The lock is released when the file is closed, or the process dies.
#[cfg(unix)]
pub(crate) fn try_lock(file: &File) -> io::Result<bool> {
    use rustix::fs::{FlockOperation, flock};
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(unix))]
#[allow(clippy::incompatible_msrv)] // elsewhere the lock needs Rust 1.89's File::try_lock
pub(crate) fn try_lock(file: &File) -> io::Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}
