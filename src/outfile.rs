//! Output files that appear whole or not at all.
//!
//! A regular file is written under a temporary name in its own directory and renamed over
//! the destination on [`OutputFile::commit`], so a reader (or a crash) never sees half an
//! output. Anything else that already exists at the path — `/dev/null`, a named pipe, a
//! terminal, `/dev/stdout` — is written in place: renaming over it would swap the device
//! for a regular file (as root, that breaks `/dev/null` for every later program).
//!
//! A name ending in `.gz` or `.zst` is compressed (gzip, zstd), as inputs so named are
//! decompressed: `-o deduped.jsonl.gz` must not be plain text under a gzip name.
//!
//! The temporary file says whose it is: `.NAME.neardup-PID-XXXXXX.tmp` beside `NAME`, held
//! under an advisory lock while its process writes it. A process killed outright (`kill
//! -9`, a crash, the machine's power) leaves it behind; the next [`OutputFile::create`] of
//! the same destination removes such leftovers whose process is gone (no process PID,
//! and the lock free), and never one of a live process.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A file being written; nothing is visible at the destination until [`commit`](Self::commit)
/// (for a regular file).
pub struct OutputFile(Sink);

impl std::fmt::Debug for OutputFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (codec, target) = match &self.0 {
            Sink::Plain(t) => ("plain", t),
            Sink::Gzip(e) => ("gzip", e.get_ref()),
            Sink::Zstd(e) => ("zstd", e.get_ref()),
        };
        f.debug_struct("OutputFile")
            .field("codec", &codec)
            .field("target", target)
            .finish()
    }
}

/// What the bytes written go through on their way to the file.
enum Sink {
    Plain(Target),
    Gzip(flate2::write::GzEncoder<Target>),
    Zstd(zstd::Encoder<'static, Target>),
}

#[derive(Debug)]
enum Target {
    Replace {
        tmp: tempfile::NamedTempFile,
        destination: PathBuf,
    },
    InPlace(File),
}

impl OutputFile {
    /// Starts writing `path`. A symbolic link is kept and the file it points to replaced.
    pub fn create(path: &Path) -> io::Result<Self> {
        let target = match fs::metadata(path) {
            // Refused before any work is done, not at the final rename.
            Ok(meta) if meta.is_dir() => {
                return Err(io::Error::new(
                    io::ErrorKind::IsADirectory,
                    "is a directory; name a file",
                ));
            }
            Ok(meta) if !meta.is_file() => {
                Target::InPlace(OpenOptions::new().write(true).open(path)?)
            }
            existing => {
                let destination = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
                remove_stale_temporaries(&destination);
                let tmp = temporary_beside(&destination)?;
                // A file replaced keeps its mode: a private 0600 output became 0644.
                if let Ok(meta) = existing {
                    tmp.as_file().set_permissions(meta.permissions())?;
                }
                Target::Replace { tmp, destination }
            }
        };
        let name = path.to_string_lossy().to_ascii_lowercase();
        let sink = if name.ends_with(".gz") {
            Sink::Gzip(flate2::write::GzEncoder::new(
                target,
                flate2::Compression::default(),
            ))
        } else if name.ends_with(".zst") {
            Sink::Zstd(zstd::Encoder::new(target, zstd::DEFAULT_COMPRESSION_LEVEL)?)
        } else {
            Sink::Plain(target)
        };
        Ok(Self(sink))
    }

    /// Makes the output visible at its destination (for a regular file, by an atomic
    /// rename), after ending its compressed stream.
    pub fn commit(self) -> io::Result<()> {
        let target = match self.0 {
            Sink::Plain(target) => target,
            Sink::Gzip(encoder) => encoder.finish()?,
            Sink::Zstd(encoder) => encoder.finish()?,
        };
        match target {
            Target::Replace { tmp, destination } => {
                tmp.persist(destination).map_err(|e| e.error)?;
            }
            Target::InPlace(mut file) => file.flush()?,
        }
        Ok(())
    }

    fn sink(&mut self) -> &mut dyn Write {
        match &mut self.0 {
            Sink::Plain(target) => target,
            Sink::Gzip(encoder) => encoder,
            Sink::Zstd(encoder) => encoder,
        }
    }
}

impl Target {
    fn file(&mut self) -> &mut File {
        match self {
            Target::Replace { tmp, .. } => tmp.as_file_mut(),
            Target::InPlace(file) => file,
        }
    }
}

impl Write for Target {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file().write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file().flush()
    }
}

impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sink().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.sink().write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sink().flush()
    }
}

/// The directory of `path` (`.` for a bare name).
fn directory_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The start of the names of `path`'s temporary files, up to the pid: `.NAME.neardup-`.
fn temporary_prefix(path: &Path) -> String {
    hidden_prefix(path, ".neardup-")
}

/// `.NAME` then `mark`, for a file or directory beside `path` (named NAME), with a long
/// NAME cut (on a character boundary) so that the whole name stays within the usual 255
/// bytes.
pub(crate) fn hidden_prefix(path: &Path, mark: &str) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let mut cut = name.len().min(200);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(".{}{mark}", &name[..cut])
}

/// Characters of the random part of a temporary file's or directory's name.
pub(crate) const RANDOM_CHARS: usize = 6;

/// The pid in `PID-XXXXXX` (six random letters or digits), the end of the names of
/// temporary files and directories; `None` for any other text.
pub(crate) fn pid_and_random(rest: &str) -> Option<u32> {
    let (pid, random) = rest.split_once('-')?;
    let digits = !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit());
    let random_ok =
        random.len() == RANDOM_CHARS && random.bytes().all(|b| b.is_ascii_alphanumeric());
    (digits && random_ok).then(|| pid.parse().ok()).flatten()
}

/// The pid in the name of one of `path`'s temporary files (`prefix` PID `-` six random
/// characters `.tmp`), or `None` for any other name.
fn temporary_pid(name: &str, prefix: &str) -> Option<u32> {
    pid_and_random(name.strip_prefix(prefix)?.strip_suffix(".tmp")?)
}

/// Whether what process `pid` left, locked through `lock` while it ran, is abandoned: the
/// process is gone and the lock is free (or its file is gone). Anything that may belong
/// to a live process is not: its pid is running, whoever runs it now; its lock is held;
/// the lock cannot be taken at all.
pub(crate) fn abandoned(pid: u32, lock: &Path) -> bool {
    pid != std::process::id()
        && !process_may_be_alive(pid)
        && match File::open(lock) {
            Ok(file) => matches!(crate::lock::try_lock(&file), Ok(true)),
            Err(e) => e.kind() == io::ErrorKind::NotFound,
        }
}

/// Removes the temporary files of `path` that a process killed outright left behind
/// ([`abandoned`] ones). Best effort: whatever cannot be read or removed is left.
fn remove_stale_temporaries(path: &Path) {
    let prefix = temporary_prefix(path);
    let Ok(entries) = fs::read_dir(directory_of(path)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = temporary_pid(&name.to_string_lossy(), &prefix) else {
            continue;
        };
        if abandoned(pid, &entry.path()) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Whether `path`, named `name`, is the temporary file of any output (`.NAME.neardup-PID-
/// XXXXXX.tmp`) that a process killed outright left: its process is gone and its lock is
/// free. (Anything else in a directory, a live process's file among them, is not.)
pub(crate) fn is_stale_temporary(path: &Path, name: &str) -> bool {
    let Some(at) = name.rfind(".neardup-") else {
        return false;
    };
    let prefix = &name[..at + ".neardup-".len()];
    match temporary_pid(name, prefix) {
        Some(pid) if name.starts_with('.') => abandoned(pid, path),
        _ => false,
    }
}

/// Whether a process `pid` may exist: `false` only when the system says there is none.
#[cfg(unix)]
pub(crate) fn process_may_be_alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return true; // not a pid a process can have: not ours to judge
    };
    // kill(pid, 0): ESRCH is no such process; EPERM is one of another user's.
    rustix::process::test_kill_process(pid) != Err(rustix::io::Errno::SRCH)
}

#[cfg(not(unix))]
pub(crate) fn process_may_be_alive(_pid: u32) -> bool {
    true
}

/// A temporary file in the directory of `path`, so the final rename stays on one file
/// system, named after `path` and this process and locked while it is open (see the
/// module's documentation).
pub(crate) fn temporary_beside(path: &Path) -> io::Result<tempfile::NamedTempFile> {
    let dir = directory_of(path);
    if !dir.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no directory {}", dir.display()),
        ));
    }
    let prefix = format!("{}{}-", temporary_prefix(path), std::process::id());
    let mut builder = tempfile::Builder::new();
    builder
        .prefix(&prefix)
        .suffix(".tmp")
        .rand_bytes(RANDOM_CHARS);
    // Temporary files are private (0600); the file it becomes gets the usual 0666 & !umask.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let tmp = builder.tempfile_in(dir)?;
    // Held until the file is closed or the process dies: a later run leaves it alone. A
    // file system without locks leaves it unlocked, and a later run then removes nothing.
    let _ = crate::lock::try_lock(tmp.as_file());
    Ok(tmp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn nothing_appears_until_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        fs::write(&path, "old\n").unwrap();
        let mut out = OutputFile::create(&path).unwrap();
        out.write_all(b"new\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "old\n");
        out.commit().unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new\n");
    }

    #[test]
    fn dropped_without_commit_leaves_no_trace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let mut out = OutputFile::create(&path).unwrap();
        out.write_all(b"half").unwrap();
        drop(out);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_directory_or_a_missing_parent_is_refused_up_front() {
        let dir = tempfile::tempdir().unwrap();
        let err = OutputFile::create(dir.path()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::IsADirectory);
        let err = OutputFile::create(&dir.path().join("missing/out.jsonl")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("missing"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_symbolic_link_stays_a_link_to_the_new_content() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.jsonl");
        let link = dir.path().join("link.jsonl");
        fs::write(&real, "old\n").unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let mut out = OutputFile::create(&link).unwrap();
        out.write_all(b"new\n").unwrap();
        out.commit().unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read_to_string(&real).unwrap(), "new\n");
    }

    #[test]
    fn names_ending_in_gz_or_zst_are_compressed_and_appear_whole() {
        let dir = tempfile::tempdir().unwrap();
        let text = "{\"id\":\"a\"}\n".repeat(1000);
        for name in ["out.jsonl.gz", "out.jsonl.zst", "OUT.CSV.GZ"] {
            let path = dir.path().join(name);
            let mut out = OutputFile::create(&path).unwrap();
            out.write_all(text.as_bytes()).unwrap();
            assert!(!path.exists(), "{name}");
            out.commit().unwrap();
            let bytes = fs::read(&path).unwrap();
            assert!(
                bytes.len() < text.len() / 10,
                "{name}: {} bytes",
                bytes.len()
            );
            let mut back = String::new();
            crate::input::open_decoded(&crate::input::Location::File(path), &mut |_| {})
                .unwrap()
                .read_to_string(&mut back)
                .unwrap();
            assert_eq!(back, text, "{name}");
        }
        // Dropped unfinished: nothing appears, compressed or not.
        let mut out = OutputFile::create(&dir.path().join("half.jsonl.gz")).unwrap();
        out.write_all(text.as_bytes()).unwrap();
        drop(out);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 3);
    }

    /// A leftover temporary file is removed only when its process is gone and its lock is
    /// free: a file still locked (by whatever holds it) stays, as do other names.
    #[cfg(unix)]
    #[test]
    fn a_stale_temporary_of_any_output_is_one_of_a_dead_process() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let cases = [
            (format!(".a.jsonl.neardup-{dead}-aB3xYz.tmp"), true),
            (format!(".index.meta.neardup-{dead}-Zz9yY8.tmp"), true),
            (
                format!(".a.jsonl.neardup-{}-mine12.tmp", std::process::id()),
                false,
            ),
            (".a.jsonl.neardup-1-init01.tmp".to_string(), false),
            (format!(".a.jsonl.neardup-{dead}-short.tmp"), false),
            (format!("a.jsonl.neardup-{dead}-aB3xYz.tmp"), false),
            (format!(".a.jsonl.neardup-{dead}-LoCk3d.tmp"), false),
        ];
        for (name, _) in &cases {
            fs::write(dir.path().join(name), "").unwrap();
        }
        let holder = File::open(dir.path().join(&cases[6].0)).unwrap();
        assert!(crate::lock::try_lock(&holder).unwrap());
        for (name, stale) in &cases {
            assert_eq!(
                is_stale_temporary(&dir.path().join(name), name),
                *stale,
                "{name}"
            );
        }
    }

    #[test]
    fn only_temporary_files_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let name = |pid: u32, random: &str| format!(".out.jsonl.neardup-{pid}-{random}.tmp");
        let stale = name(dead, "aB3xYz");
        let locked = name(dead, "LoCk3d");
        let kept = [
            locked.clone(),
            name(std::process::id(), "mine12"),
            name(1, "init01"), // a live process (init)
            format!(".out.jsonl.neardup-{dead}-short.tmp"),
            format!(".other.jsonl.neardup-{dead}-aB3xYz.tmp"),
        ];
        for n in kept.iter().chain([&stale]) {
            fs::write(dir.path().join(n), "").unwrap();
        }
        let holder = File::open(dir.path().join(&locked)).unwrap();
        assert!(crate::lock::try_lock(&holder).unwrap());
        remove_stale_temporaries(&path);
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut expected = kept.to_vec();
        expected.sort();
        assert_eq!(left, expected);
        // Its own temporary file is named for the output and this process.
        let out = OutputFile::create(&path).unwrap();
        let prefix = format!(".out.jsonl.neardup-{}-", std::process::id());
        assert!(fs::read_dir(dir.path()).unwrap().any(|e| {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            n.starts_with(&prefix) && n.ends_with(".tmp") && !kept.contains(&n)
        }));
        drop(out);
    }

    /// A named pipe stands in for `/dev/null`: both must survive being an output.
    #[cfg(unix)]
    #[test]
    fn a_named_pipe_is_written_in_place_not_replaced() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || fs::read_to_string(fifo).unwrap())
        };
        let mut out = OutputFile::create(&fifo).unwrap();
        out.write_all(b"through the pipe\n").unwrap();
        out.commit().unwrap();
        // Checked first: had the pipe been replaced, the reader would wait forever.
        assert!(fs::metadata(&fifo).unwrap().file_type().is_fifo());
        assert_eq!(reader.join().unwrap(), "through the pipe\n");
    }
}
