//! Which inputs to read, in which order, and how.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::problem::{Problem, ProblemKind};
use crate::{Error, Result};

/// How the records of an input are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputFormat {
    /// One JSON object per line.
    JsonLines,
    /// The whole (decompressed) file is one document.
    Text,
}

/// One input as the user named it: a path, or standard input; or records a program
/// holds in memory (the Python module's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputSpec {
    /// `-`: standard input.
    Stdin,
    /// A file or a directory.
    Path(PathBuf),
    /// JSON Lines (or, with a forced text format, one document) held in memory; `name`
    /// stands for a path in messages and is a text document's id.
    Bytes { name: Arc<str>, bytes: Arc<[u8]> },
}

impl From<&str> for InputSpec {
    fn from(s: &str) -> Self {
        if s == "-" {
            InputSpec::Stdin
        } else {
            InputSpec::Path(PathBuf::from(s))
        }
    }
}

/// Where a source's bytes come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A file on disk.
    File(PathBuf),
    /// Standard input (read once).
    Stdin,
    /// Bytes in memory.
    Memory(Arc<[u8]>),
}

/// One readable input: a JSON Lines stream or a single text document.
#[derive(Clone, Debug)]
pub struct Source {
    /// Name for messages: the path as given, or `<stdin>`.
    pub name: Arc<str>,
    /// Where to read.
    pub location: Location,
    /// How to read it.
    pub format: InputFormat,
    /// For a text document: its id (path relative to the directory it was found in).
    pub text_id: Option<String>,
    /// Size on disk (compressed), when known: drives the progress bar.
    pub size: Option<u64>,
}

/// The format an input's name implies: `.jsonl`, `.ndjson`, `.json` (optionally followed by
/// `.gz` or `.zst`) are JSON Lines, `.txt` is text; `None` otherwise.
pub fn format_from_name(name: &str) -> Option<InputFormat> {
    let lower = name.to_ascii_lowercase();
    let base = lower
        .strip_suffix(".gz")
        .or_else(|| lower.strip_suffix(".zst"))
        .unwrap_or(&lower);
    if base.ends_with(".jsonl") || base.ends_with(".ndjson") || base.ends_with(".json") {
        Some(InputFormat::JsonLines)
    } else if base.ends_with(".txt") {
        Some(InputFormat::Text)
    } else {
        None
    }
}

/// The user's inputs, expanded: what to read, what could not be, what was left out.
#[derive(Debug, Default)]
pub struct Plan {
    /// What to read, in order.
    pub sources: Vec<Source>,
    /// Inputs that cannot be read.
    pub problems: Vec<Problem>,
    /// Files of directories that are not named as inputs.
    pub skipped: SkippedFiles,
}

/// Files found in input directories and not read, because their names say neither
/// document nor JSON Lines (`--input-format` reads them); hidden ones are not counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SkippedFiles {
    pub count: u64,
    /// The first of them, in path order, to show the user.
    pub example: Option<String>,
    /// Files reached a second time in one input directory (through a symbolic link to a
    /// file or directory in it, or a hard link), read once at their first path; a link to
    /// a directory it is in (a loop) counts once.
    pub repeated: u64,
    /// The first path skipped so, and the path it was read as.
    pub repeated_example: Option<(String, String)>,
    /// Entries that are neither files nor directories (named pipes, sockets, devices),
    /// whatever their names: never opened, since a pipe would block the run.
    pub special: u64,
    /// The first of them, in path order.
    pub special_example: Option<String>,
    /// Files given by name whose names say neither document nor JSON Lines (`in.csv`)
    /// and that do not start with `{`: read as one text document each, which a user who
    /// meant records must be told.
    pub read_as_text: u64,
    /// The first of them.
    pub read_as_text_example: Option<String>,
}

/// Expands the user's inputs into sources, in a deterministic order.
///
/// A directory is searched recursively, in path order, for `.txt` files (also `.txt.gz`,
/// `.txt.zst`), each one document whose id is its path relative to the directory, and for
/// JSON Lines files (`.jsonl`, `.ndjson`, `.json`, also compressed); other files are
/// skipped and counted.
/// `forced` overrides the format implied by file names. Inputs that cannot be read are
/// returned as problems; the others are still planned. The error: the process or the
/// system ran out of open files or memory (`exhaustion`), which is no input's fault.
pub fn plan_sources(specs: &[InputSpec], forced: Option<InputFormat>) -> Result<Plan> {
    let mut plan = Plan::default();
    for spec in specs {
        match spec {
            InputSpec::Stdin => plan.sources.push(Source {
                name: Arc::from("<stdin>"),
                location: Location::Stdin,
                format: forced.unwrap_or(InputFormat::JsonLines),
                text_id: forced
                    .filter(|f| *f == InputFormat::Text)
                    .map(|_| "-".to_string()),
                size: None,
            }),
            InputSpec::Path(path) => plan_path(path, forced, &mut plan)?,
            InputSpec::Bytes { name, bytes } => plan.sources.push(Source {
                name: name.clone(),
                location: Location::Memory(bytes.clone()),
                format: forced.unwrap_or(InputFormat::JsonLines),
                text_id: (forced == Some(InputFormat::Text)).then(|| name.to_string()),
                size: Some(bytes.len() as u64),
            }),
        }
    }
    Ok(plan)
}

/// The error that stops a run when reading input `name` failed because the process or
/// the system ran out of something (open files, memory): that is no fault of the input,
/// and every later input would fail alike, so skipping it as a bad input read none of
/// 2,200 files under `ulimit -n 10` and wrote an empty result (QA 23, F5).
pub(crate) fn exhaustion(name: &str, e: &io::Error) -> Option<Error> {
    let what = match e.raw_os_error() {
        Some(libc::EMFILE) => {
            let limit = rlimit::getrlimit(rlimit::Resource::NOFILE)
                .map(|(soft, _)| format!(", now {soft}"))
                .unwrap_or_default();
            format!(
                "the process ran out of file descriptors, raise its limit of open files \
                 (`ulimit -n`{limit})"
            )
        }
        Some(libc::ENFILE) => "the system ran out of file descriptors, close files elsewhere \
                               or raise its limit (`sysctl fs.file-max`)"
            .to_string(),
        _ if e.kind() == io::ErrorKind::OutOfMemory => "the process ran out of memory".to_string(),
        _ => return None,
    };
    let source = match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::from(e.kind()),
    };
    Some(Error::io(
        format!("reading {}: {what}", crate::report::one_line(name)),
        source,
    ))
}

fn plan_path(path: &Path, forced: Option<InputFormat>, plan: &mut Plan) -> Result<()> {
    let Plan {
        sources,
        problems,
        skipped,
    } = plan;
    let name: Arc<str> = Arc::from(path_name(path));
    let unreadable = |name: Arc<str>, e: &dyn std::fmt::Display| Problem {
        source: name,
        line: None,
        kind: ProblemKind::Unreadable {
            reason: e.to_string(),
        },
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => match exhaustion(&name, &e) {
            Some(error) => return Err(error),
            None => {
                problems.push(unreadable(name, &e));
                return Ok(());
            }
        },
    };
    if !meta.is_dir() {
        let format = match forced.or_else(|| format_from_name(&name)) {
            Some(format) => format,
            None => {
                let sniffed = sniff_format(path, &name)?;
                if sniffed == InputFormat::Text {
                    skipped.read_as_text += 1;
                    skipped
                        .read_as_text_example
                        .get_or_insert_with(|| name.to_string());
                }
                sniffed
            }
        };
        sources.push(Source {
            text_id: (format == InputFormat::Text).then(|| name.to_string()),
            name,
            location: Location::File(path.to_path_buf()),
            format,
            size: Some(meta.len()),
        });
        return Ok(());
    }
    let walker = walkdir::WalkDir::new(path)
        .follow_links(true)
        .sort_by_file_name();
    // A `latest` link to a file of the archive is the same file: read once, not refused
    // as an input given twice.
    let mut seen: std::collections::HashMap<FileKey, PathBuf> = std::collections::HashMap::new();
    for entry in walker {
        let entry = match entry {
            Ok(e) => e,
            // A link to a directory it is in: every file under it was read already, as
            // with a link to any other directory of the input.
            Err(e) if e.loop_ancestor().is_some() => {
                skipped.repeated += 1;
                if let (Some(link), Some(ancestor)) = (e.path(), e.loop_ancestor()) {
                    skipped
                        .repeated_example
                        .get_or_insert_with(|| (path_name(link), path_name(ancestor)));
                }
                continue;
            }
            Err(e) => {
                let at = e.path().map(path_name).unwrap_or_else(|| name.to_string());
                if let Some(error) = e.io_error().and_then(|io| exhaustion(&at, io)) {
                    return Err(error);
                }
                problems.push(unreadable(Arc::from(at), &e));
                continue;
            }
        };
        if entry.file_type().is_dir() {
            continue;
        }
        let relative = entry.path().strip_prefix(path).unwrap_or(entry.path());
        if !entry.file_type().is_file() {
            // A `fifo.txt` was skipped without a word.
            if !hidden(relative) {
                skipped.special += 1;
                skipped
                    .special_example
                    .get_or_insert_with(|| path_name(entry.path()));
            }
            continue;
        }
        let file_name = entry.file_name().to_string_lossy();
        let format = match forced.or_else(|| format_from_name(&file_name)) {
            Some(f) => f,
            // Hidden files (.DS_Store, a .git directory) are not worth a note.
            None if hidden(relative) => continue,
            None => {
                // Not named as a document or as JSON Lines: not an input, but said so.
                skipped.count += 1;
                skipped
                    .example
                    .get_or_insert_with(|| path_name(entry.path()));
                continue;
            }
        };
        if let Some(key) = file_key(entry.path()) {
            if let Some(first) = seen.get(&key) {
                skipped.repeated += 1;
                skipped
                    .repeated_example
                    .get_or_insert_with(|| (path_name(entry.path()), path_name(first)));
                continue;
            }
            seen.insert(key, entry.path().to_path_buf());
        }
        let id = relative
            .components()
            .map(|c| escaped(c.as_os_str()))
            .collect::<Vec<_>>()
            .join("/");
        sources.push(Source {
            name: Arc::from(path_name(entry.path())),
            location: Location::File(entry.path().to_path_buf()),
            format,
            text_id: (format == InputFormat::Text).then_some(id),
            size: entry.metadata().ok().map(|m| m.len()),
        });
    }
    Ok(())
}

/// A path as messages, and ids of text documents, show it: as it is when it is UTF-8,
/// else with each byte that is not written `\xNN`. A lossy name (`n\u{fffd}.txt`) gave
/// two files one id, and a message naming one path twice.
pub(crate) fn path_name(path: &Path) -> String {
    escaped(path.as_os_str())
}

#[cfg(unix)]
fn escaped(name: &std::ffi::OsStr) -> String {
    use std::fmt::Write;
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for chunk in name.as_bytes().utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

#[cfg(not(unix))]
fn escaped(name: &std::ffi::OsStr) -> String {
    name.to_string_lossy().into_owned()
}

/// What makes a file the same file whatever path reaches it.
#[cfg(unix)]
type FileKey = (u64, u64);
#[cfg(not(unix))]
type FileKey = PathBuf;

/// The file `path` leads to (links followed): device and inode on Unix, so that hard
/// links are one file too; `None` when it cannot be told (reading it will say why).
#[cfg(unix)]
fn file_key(path: &Path) -> Option<FileKey> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_key(path: &Path) -> Option<FileKey> {
    path.canonicalize().ok()
}

/// Whether a path (relative to an input directory) names or passes through a hidden entry.
fn hidden(relative: &Path) -> bool {
    relative
        .components()
        .any(|c| c.as_os_str().to_string_lossy().starts_with('.'))
}

/// For a file whose name says nothing: JSON Lines if it starts with `{`, else text (also
/// when it cannot be read: reading it will say why). The error: out of resources
/// ([`exhaustion`]), which says nothing of the file `name`.
fn sniff_format(path: &Path, name: &str) -> Result<InputFormat> {
    let looks_like_json =
        open_decoded(&Location::File(path.to_path_buf()), &mut |_| {}).and_then(|mut r| {
            let buf = r.fill_buf()?;
            Ok(buf.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'))
        });
    match looks_like_json {
        Ok(true) => Ok(InputFormat::JsonLines),
        Err(e) => exhaustion(name, &e).map_or(Ok(InputFormat::Text), Err),
        Ok(false) => Ok(InputFormat::Text),
    }
}

/// Counts the raw (compressed) bytes read, for progress.
struct Counting<R, F> {
    inner: R,
    on_read: F,
}

impl<R: Read, F: FnMut(u64)> Read for Counting<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.on_read)(n as u64);
        Ok(n)
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1F, 0x8B];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// Whether `head` begins a zstd stream: a zstd frame, or a skippable frame (magic
/// 0x184D2A50..=0x184D2A5F, little-endian), which `pzstd` writes first.
fn is_zstd(head: &[u8]) -> bool {
    head.starts_with(&ZSTD_MAGIC) || matches!(head, [b0, 0x2A, 0x4D, 0x18, ..] if b0 & 0xF0 == 0x50)
}

/// The compression `head` begins with among those not read (xz, bzip2, zip), and the
/// command that decompresses it to standard output.
fn unsupported_compression(head: &[u8]) -> Option<(&'static str, &'static str)> {
    if head.starts_with(&[0xFD, b'7', b'z', b'X', b'Z', 0x00]) {
        Some(("xz", "xz -dc"))
    } else if matches!(head, [b'B', b'Z', b'h', b'1'..=b'9', ..]) {
        Some(("bzip2", "bzip2 -dc"))
    } else if head.starts_with(b"PK\x03\x04") {
        Some(("zip", "unzip -p"))
    } else {
        None
    }
}

/// Opens a location and decompresses it if its first bytes are a gzip or zstd header
/// (whatever its name says); xz, bzip2 and zip are refused by name. `on_read` is called with the number of raw bytes read.
pub fn open_decoded<'a>(
    location: &Location,
    on_read: &'a mut dyn FnMut(u64),
) -> io::Result<Box<dyn BufRead + 'a>> {
    Ok(Box::new(open_buffered(location, on_read)?))
}

/// A reader that can tell whether a whole line is already in its buffer, so that the
/// next line can be read without waiting for the input.
pub(crate) trait Buffered: BufRead {
    fn holds_line(&self) -> bool;
}

impl<R: Read> Buffered for BufReader<R> {
    fn holds_line(&self) -> bool {
        self.buffer().contains(&b'\n')
    }
}

/// Whether reading `location` may wait for bytes yet to come (a pipe, a terminal), as
/// reading a regular file never does.
pub(crate) fn is_stream(location: &Location) -> bool {
    match location {
        Location::File(path) => std::fs::metadata(path).is_ok_and(|m| !m.is_file()),
        #[cfg(unix)]
        Location::Stdin => rustix::fs::fstat(io::stdin()).is_ok_and(|st| {
            rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile
        }),
        // Elsewhere taken as one: batches are only cut smaller.
        #[cfg(not(unix))]
        Location::Stdin => true,
        Location::Memory(_) => false,
    }
}

/// [`open_decoded`], telling whether a line is buffered.
pub(crate) fn open_buffered<'a>(
    location: &Location,
    on_read: &'a mut dyn FnMut(u64),
) -> io::Result<Box<dyn Buffered + 'a>> {
    const BUF: usize = 256 * 1024;
    let raw: Box<dyn Read + 'a> = match location {
        Location::File(path) => Box::new(Counting {
            inner: File::open(path)?,
            on_read,
        }),
        Location::Stdin => Box::new(Counting {
            inner: io::stdin().lock(),
            on_read,
        }),
        Location::Memory(bytes) => Box::new(Counting {
            inner: io::Cursor::new(bytes.clone()),
            on_read,
        }),
    };
    let mut raw = BufReader::with_capacity(BUF, raw);
    let head = raw.fill_buf()?;
    if let Some((kind, command)) = unsupported_compression(head) {
        // One clear error, not an "invalid UTF-8" per line of compressed bytes.
        let file = match location {
            Location::File(path) => path.display().to_string(),
            _ => "FILE".to_string(),
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{kind}-compressed input is not supported: decompress it first (`{command} \
                 {file} | neardup … -`)"
            ),
        ));
    }
    if head.starts_with(&GZIP_MAGIC) {
        Ok(Box::new(BufReader::with_capacity(BUF, GzMembers::new(raw))))
    } else if is_zstd(head) {
        Ok(Box::new(BufReader::with_capacity(
            BUF,
            zstd::Decoder::with_buffer(raw)?,
        )))
    } else {
        Ok(Box::new(raw))
    }
}

/// Concatenated gzip streams (members), as `MultiGzDecoder` reads them, except that bytes
/// after the last member that do not begin another are an error of their own: read as
/// a member header, they were reported as a truncated stream whose rest was lost, when
/// every record had been read.
struct GzMembers<R: BufRead> {
    member: Option<flate2::bufread::GzDecoder<R>>,
}

impl<R: BufRead> GzMembers<R> {
    fn new(raw: R) -> Self {
        GzMembers {
            member: Some(flate2::bufread::GzDecoder::new(raw)),
        }
    }
}

impl<R: BufRead> Read for GzMembers<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(member) = self.member.as_mut() else {
                return Ok(0);
            };
            let n = member.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let mut rest = self.member.take().expect("a member").into_inner();
            let next = rest.fill_buf()?;
            if next.is_empty() {
                return Ok(0);
            }
            if !next.starts_with(&GZIP_MAGIC[..next.len().min(GZIP_MAGIC.len())]) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "trailing bytes that are not gzip after the last stream (every record \
                     before them was read)",
                ));
            }
            self.member = Some(flate2::bufread::GzDecoder::new(rest));
        }
    }
}

/// Copies standard input to a temporary file so that it can be read twice (`dedup`).
pub fn spool_stdin(dir: Option<&Path>) -> io::Result<tempfile::TempPath> {
    let mut file = match dir {
        Some(d) => tempfile::NamedTempFile::new_in(d)?,
        None => tempfile::NamedTempFile::new()?,
    };
    io::copy(&mut io::stdin().lock(), &mut file)?;
    Ok(file.into_temp_path())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_from_names() {
        assert_eq!(format_from_name("a.jsonl"), Some(InputFormat::JsonLines));
        assert_eq!(format_from_name("a.JSONL.gz"), Some(InputFormat::JsonLines));
        assert_eq!(
            format_from_name("a.ndjson.zst"),
            Some(InputFormat::JsonLines)
        );
        assert_eq!(format_from_name("a.txt.gz"), Some(InputFormat::Text));
        assert_eq!(format_from_name("a.csv"), None);
    }

    #[test]
    fn missing_paths_are_problems_not_panics() {
        let Plan {
            sources, problems, ..
        } = plan_sources(&[InputSpec::from("/no/such/path.jsonl")], None).unwrap();
        assert!(sources.is_empty());
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].kind.label(), "unreadable_input");
    }

    #[test]
    fn bytes_in_memory_read_as_a_file_of_them_would() {
        let lines = b"{\"id\":\"a\",\"text\":\"x\"}\n";
        let mut gzipped = Vec::new();
        {
            use std::io::Write;
            let mut w = flate2::write::GzEncoder::new(&mut gzipped, flate2::Compression::fast());
            w.write_all(lines).unwrap();
            w.finish().unwrap();
        }
        for (bytes, forced, text_id) in [
            (&lines[..], None, None),
            (&gzipped[..], None, None),
            (&lines[..], Some(InputFormat::Text), Some("records")),
        ] {
            let plan = plan_sources(
                &[InputSpec::Bytes {
                    name: Arc::from("records"),
                    bytes: Arc::from(bytes),
                }],
                forced,
            )
            .unwrap();
            let [source] = &plan.sources[..] else {
                panic!("one source")
            };
            assert_eq!(&*source.name, "records");
            assert_eq!(source.text_id.as_deref(), text_id);
            assert_eq!(source.size, Some(bytes.len() as u64));
            let mut read = Vec::new();
            open_decoded(&source.location, &mut |_| {})
                .unwrap()
                .read_to_end(&mut read)
                .unwrap();
            assert_eq!(read, lines);
        }
    }
}
