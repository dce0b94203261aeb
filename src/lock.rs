//! Exclusive advisory locks on a file (or a directory), for the one writer of a feed
//! index or of a checkpoint. The kernel drops the lock when the process dies, so a killed writer never
//! leaves a stale lock behind.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

/// Takes the lock on the file at `path` (created if missing) without waiting for long:
/// `Ok(Ok(file))` holds it until `file` is closed; `Ok(Err(holder))` when another process
/// holds it, with its pid as it wrote it (for messages; empty when unknown).
///
/// The lock counts only while `path` names the locked file: one removed (and made again
/// by another process) between our opening and locking it is opened again.
pub(crate) fn take(path: &Path) -> io::Result<Result<File, String>> {
    let mut replaced = 0;
    loop {
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        if !try_lock_patiently(&file)? {
            return Ok(Err(holder_in(&mut file)));
        }
        if !is_linked_at(&file, path)? {
            replaced += 1;
            if replaced < 10 {
                continue;
            }
            return Err(io::Error::other(format!(
                "{} was removed or replaced each time it was locked",
                path.display()
            )));
        }
        // Who holds the lock, for the message of the next process; not needed for correctness.
        let _ = file
            .set_len(0)
            .and_then(|()| file.write_all(std::process::id().to_string().as_bytes()));
        return Ok(Ok(file));
    }
}

/// The pid a lock's holder wrote in it, trimmed (empty when unknown).
fn holder_in(file: &mut File) -> String {
    let mut holder = String::new();
    let _ = file.read_to_string(&mut holder);
    holder.trim().to_string()
}

/// The pid written in the lock file at `path`, without locking it (empty when unknown).
pub(crate) fn holder_at(path: &Path) -> String {
    File::open(path).map_or_else(|_| String::new(), |mut f| holder_in(&mut f))
}

/// Locks a file, trying a few times before saying another process holds it: a process
/// forked by this one between our closing an earlier handle and its exec holds the lock
/// for a moment.
fn try_lock_patiently(file: &File) -> io::Result<bool> {
    let mut locked = try_lock(file);
    for wait_ms in [5, 20, 50, 100, 200] {
        if !matches!(locked, Ok(false)) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(wait_ms));
        locked = try_lock(file);
    }
    locked
}

/// Whether `path` still names `file` (not removed, nor replaced by another file).
#[cfg(unix)]
pub(crate) fn is_linked_at(file: &File, path: &Path) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let held = file.metadata()?;
    match std::fs::metadata(path) {
        Ok(named) => Ok(named.dev() == held.dev() && named.ino() == held.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Elsewhere a file's identity is not within reach of stable Rust: taken as linked.
#[cfg(not(unix))]
pub(crate) fn is_linked_at(_file: &File, _path: &Path) -> io::Result<bool> {
    Ok(true)
}

/// What locking a directory itself gave.
#[derive(Debug)]
pub(crate) enum DirLock {
    /// Held until the file is closed.
    Held(File),
    /// Another open handle holds it.
    Busy,
    /// This system or file system cannot lock a directory (Windows; NFS, where flock
    /// becomes a POSIX lock that needs a handle open for writing).
    Unsupported,
}

/// Locks the directory `dir` itself, as [`take`] locks a file. A directory cannot be
/// removed while it holds files, so unlike a lock file, nobody can delete this lock out
/// from under its holder and let a second one in.
#[cfg(unix)]
pub(crate) fn take_dir(dir: &Path) -> io::Result<DirLock> {
    // A directory one may write but not list (`-wx`) held an index before this lock.
    let handle = match File::open(dir) {
        Ok(handle) => handle,
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Ok(DirLock::Unsupported),
        Err(e) => return Err(e),
    };
    match try_lock_patiently(&handle) {
        Ok(true) => Ok(DirLock::Held(handle)),
        Ok(false) => Ok(DirLock::Busy),
        Err(e) => {
            let unsupported = [
                libc::EBADF,
                libc::ENOLCK,
                libc::EOPNOTSUPP,
                libc::ENOTSUP,
                libc::EINVAL,
            ];
            match e.raw_os_error() {
                Some(code) if unsupported.contains(&code) => Ok(DirLock::Unsupported),
                _ => Err(e),
            }
        }
    }
}

#[cfg(not(unix))]
pub(crate) fn take_dir(_dir: &Path) -> io::Result<DirLock> {
    Ok(DirLock::Unsupported)
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
