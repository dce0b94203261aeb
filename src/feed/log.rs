//! The article log: framed records appended to one file, made durable in groups.
//!
//! Appended frames wait in memory until [`Log::write`] hands them, as one group, to a
//! [`Syncer`], which writes them to the file and calls `fdatasync` (possibly on another
//! thread while more articles are added); once it has returned, their articles are
//! acknowledged. Reads find a frame wherever it is: pending, in a group being written,
//! or in the file. After a crash the file may end
//! in a partly written group: [`scan`] stops at the first frame that is incomplete or
//! fails its checksum, and a writer truncates the file there. Nothing acknowledged can be
//! in that tail, because a group is acknowledged only after it is synced as a whole; a
//! tail with an intact frame after the bad one is damage, and [`check_tail`] refuses it.
//! Only `index repair` reads past damage ([`salvage`]): it resynchronises on the next
//! intact frame and reports the bytes it crossed.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use super::format::{self, FRAME_HEADER_BYTES, LOG_HEADER_BYTES};

/// An unfinished tail longer than this is not a torn write but damage: a writer refuses
/// to truncate it. Commit groups are kept well below it (see [`MAX_GROUP_BYTES`]).
pub(crate) const MAX_TORN_TAIL: u64 = 256 << 20;
/// A commit group is written as soon as it holds this many bytes.
pub(crate) const MAX_GROUP_BYTES: usize = 32 << 20;

/// The article log of one generation.
#[derive(Debug)]
pub(crate) struct Log {
    file: Arc<File>,
    path: Arc<Path>,
    /// Length of the log once every group handed to a syncer is written: where the
    /// pending frames start.
    handed: u64,
    /// Bytes of the file written by syncers (a prefix of `handed`).
    written: Arc<AtomicU64>,
    /// Groups handed to syncers and maybe not yet written: `(offset, frames)`.
    in_flight: VecDeque<(u64, Arc<Vec<u8>>)>,
    /// Frames appended since the last group was handed over.
    pending: Vec<u8>,
    /// A failed write leaves the file and memory out of step: nothing more is accepted.
    failed: Arc<Failed>,
}

/// The first failure of a log's writes, kept so that every later attempt reports it
/// (a full disk, say) rather than only that something failed earlier.
#[derive(Debug, Default)]
struct Failed(OnceLock<(io::ErrorKind, Option<i32>, String)>);

impl Failed {
    fn set(&self, e: &io::Error) {
        // Only the first counts: later failures follow from it.
        let _ = self.0.set((e.kind(), e.raw_os_error(), e.to_string()));
    }

    /// The first failure again, as an error of its own (an `io::Error` cannot be cloned).
    fn error(&self) -> Option<io::Error> {
        self.0.get().map(|(kind, os, message)| match os {
            Some(code) => io::Error::from_raw_os_error(*code),
            None => io::Error::new(*kind, message.clone()),
        })
    }
}

/// Writes one group of frames to the log and makes it durable (`fdatasync`). It can be
/// sent to another thread, so that writing and syncing overlap with adding the next
/// articles; syncers must run in the order they were made.
#[derive(Debug)]
pub struct Syncer {
    file: Arc<File>,
    path: Arc<Path>,
    offset: u64,
    frames: Arc<Vec<u8>>,
    written: Arc<AtomicU64>,
    failed: Arc<Failed>,
}

impl Syncer {
    /// Writes and syncs; when it returns, the group and every earlier one are durable.
    pub fn sync(self) -> crate::Result<()> {
        self.write()?.sync()
    }

    /// Writes the group to the file (the operating system's cache) without syncing: it
    /// then survives the process being killed, but not a power loss until
    /// [`Written::sync`] (or any later sync) has returned.
    pub fn write(self) -> crate::Result<Written> {
        let path = Arc::clone(&self.path);
        self.write_io().map_err(|e| {
            crate::Error::io(
                format!(
                    "writing the article log {}",
                    crate::report::shown_path(&path)
                ),
                e,
            )
        })
    }

    fn write_io(self) -> io::Result<Written> {
        match write_all_at(&self.file, &self.frames, self.offset) {
            Ok(()) => {
                // Frames below this are read from the file from now on.
                self.written
                    .store(self.offset + self.frames.len() as u64, Ordering::Release);
                Ok(Written {
                    file: self.file,
                    path: self.path,
                    failed: self.failed,
                })
            }
            Err(e) => {
                self.failed.set(&e);
                Err(e)
            }
        }
    }

    fn sync_io(self) -> io::Result<()> {
        self.write_io()?.sync_io()
    }
}

/// A group written to the log but not yet synced (see [`Syncer::write`]). Cloning it is
/// cheap: a background thread may keep one to sync the log now and then.
#[derive(Clone, Debug)]
pub struct Written {
    file: Arc<File>,
    path: Arc<Path>,
    failed: Arc<Failed>,
}

impl Written {
    /// Syncs the log: this group and everything written before it are durable.
    pub fn sync(&self) -> crate::Result<()> {
        self.sync_io().map_err(|e| {
            crate::Error::io(
                format!(
                    "syncing the article log {}",
                    crate::report::shown_path(&self.path)
                ),
                e,
            )
        })
    }

    fn sync_io(&self) -> io::Result<()> {
        let result = self.file.sync_data();
        if let Err(e) = &result {
            self.failed.set(e);
        }
        result
    }
}

/// Where the valid frames of a log end, and why scanning stopped there.
#[derive(Debug)]
pub(crate) struct ScanEnd {
    /// Offset just past the last intact frame.
    pub valid_len: u64,
    /// Length of the file.
    pub file_len: u64,
}

impl ScanEnd {
    /// Bytes after the last intact frame: an unfinished write (or damage).
    pub fn tail(&self) -> u64 {
        self.file_len - self.valid_len
    }
}

/// Creates a log file with its header, synced.
pub(crate) fn create(path: &Path, generation: u64) -> io::Result<()> {
    let mut file = File::options().write(true).create_new(true).open(path)?;
    file.write_all(&format::encode_log_header(generation))?;
    file.sync_all()
}

/// Reads every intact frame of the log at `path` (open as `file`) in order, handing
/// `(offset, payload)` to `visit` (which may stop the scan with an error). `on_bytes` is
/// told of progress.
pub(crate) fn scan(
    path: &Path,
    file: &File,
    generation: u64,
    mut on_bytes: impl FnMut(u64),
    mut visit: impl FnMut(u64, &[u8]) -> Result<(), String>,
) -> Result<ScanEnd, String> {
    let file_len = file.metadata().map_err(|e| e.to_string())?.len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut header = [0u8; LOG_HEADER_BYTES as usize];
    reader.read_exact(&mut header).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            format!(
                "the article log is cut short: it holds {file_len} bytes, fewer than its \
                 {LOG_HEADER_BYTES}-byte header ({})",
                repair_hint(path)
            )
        } else {
            format!("reading the article log header: {e}")
        }
    })?;
    // A damaged header hides no article: repair rewrites it (QA pass 11 found users told
    // only "no neardup header", as if the index were lost).
    format::check_log_header(&header, generation).map_err(|e| {
        format!(
            "{e}; the header is damaged, or the log is not this index's ({})",
            repair_hint(path)
        )
    })?;
    let valid_len = crate::frame::scan(
        &mut reader,
        LOG_HEADER_BYTES,
        file_len,
        "the article log",
        &mut on_bytes,
        &mut visit,
    )?;
    Ok(ScanEnd {
        valid_len,
        file_len,
    })
}

/// Reads the intact frames of a log from `offset` (just past an intact frame, as an
/// earlier [`scan`] ended) to `file_len`, as [`scan`] reads them from the header on:
/// stopping at the first frame that is incomplete or fails its checksum.
pub(crate) fn scan_from(
    file: &File,
    offset: u64,
    file_len: u64,
    mut visit: impl FnMut(u64, &[u8]) -> Result<(), String>,
) -> Result<ScanEnd, String> {
    let mut reader = BufReader::with_capacity(1 << 16, file);
    io::Seek::seek(&mut reader, io::SeekFrom::Start(offset))
        .map_err(|e| format!("reading the article log: {e}"))?;
    let valid_len = crate::frame::scan(
        &mut reader,
        offset,
        file_len,
        "the article log",
        |_| {},
        &mut visit,
    )?;
    Ok(ScanEnd {
        valid_len,
        file_len,
    })
}

/// Refuses a log whose unreadable tail has intact frames after it: a torn write is only
/// the last group, so frames after the bad one mean damage, and cutting (or ignoring) the
/// tail would lose acknowledged articles.
pub(crate) fn check_tail(path: &Path, file: &File, end: &ScanEnd) -> Result<(), Refusal> {
    if end.tail() == 0 {
        return Ok(());
    }
    let found = intact_frame_after(file, end.valid_len + 1, end.file_len).map_err(|e| {
        Refusal::failed(format!(
            "{}: reading the article log: {e}",
            crate::report::shown_path(path)
        ))
    })?;
    match found {
        None => Ok(()),
        Some(at) => Err(Refusal::damaged(format!(
            "{} is damaged at byte {}: the frame there cannot be read, but intact articles \
             follow it (the first at byte {at}), so this is not an unfinished write; nothing \
             was changed ({})",
            crate::report::shown_path(path),
            end.valid_len,
            repair_hint(path)
        ))),
    }
}

/// Copies the bytes of `file` after its last intact frame to a new file beside `path`
/// (`<log>.unfinished-<offset>`, `.1`, `.2`, … when taken), synced. The tail a writer
/// cuts off is almost always a write torn by a crash, whose articles were never
/// acknowledged; but damage at the very end of the log looks the same, so it is never
/// cut without a copy.
fn keep_tail_aside(path: &Path, file: &File, end: &ScanEnd) -> io::Result<PathBuf> {
    use std::io::{Seek, SeekFrom};
    let base = format!("{}.unfinished-{}", path.display(), end.valid_len);
    let (mut copy, kept) = (0..)
        .map(|n| match n {
            0 => PathBuf::from(&base),
            n => PathBuf::from(format!("{base}.{n}")),
        })
        .find_map(|candidate| {
            match File::options()
                .write(true)
                .create_new(true)
                .open(&candidate)
            {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => None,
                opened => Some(opened.map(|f| (f, candidate))),
            }
        })
        .expect("an unused name")?;
    let mut tail = file.try_clone()?;
    tail.seek(SeekFrom::Start(end.valid_len))?;
    io::copy(&mut tail.take(end.tail()), &mut copy)?;
    copy.sync_all()?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?; // the new name too
    }
    Ok(kept)
}

/// Why a log is not opened: damage, which only `index repair` mends, or a failure to
/// read or cut it.
#[derive(Debug)]
pub(crate) struct Refusal {
    /// What is wrong, naming the file.
    pub(crate) message: String,
    /// Damage (intact frames after a bad one, or a tail too long for a torn write).
    pub(crate) damaged: bool,
}

impl Refusal {
    fn damaged(message: String) -> Self {
        Refusal {
            message,
            damaged: true,
        }
    }

    fn failed(message: String) -> Self {
        Refusal {
            message,
            damaged: false,
        }
    }
}

/// What to do about a damaged log at `path`.
fn repair_hint(path: &Path) -> String {
    let dir = path.parent().unwrap_or(Path::new("."));
    format!(
        "'neardup index repair {}' keeps every intact article and sets the damaged log aside",
        crate::report::shown_path(dir)
    )
}

/// What [`salvage`] found in a log: the frames it can use and the bytes it cannot.
#[derive(Debug, Default)]
pub(crate) struct Salvage {
    /// `(offset, length)` of every intact frame holding a usable record, in log order.
    pub frames: Vec<(u64, u32)>,
    /// `(offset, length)` of the unusable stretches that have a usable frame after them
    /// (the header counts as one when it is bad).
    pub damaged: Vec<(u64, u64)>,
    /// `(offset, length)` of the unusable bytes after the last usable frame, if any.
    pub tail: Option<(u64, u64)>,
    /// Whether the log's header is missing, cut short or wrong.
    pub header_damaged: bool,
    /// Intact frames whose payload `usable` refused (counted as damage).
    pub refused: u64,
    /// Length of the file.
    pub file_len: u64,
}

/// Reads every usable frame of the log, past damage: where [`scan`] would stop, it
/// resynchronises on the next intact frame (as [`check_tail`] finds it) and goes on.
/// `usable` says whether an intact frame's payload is a record the index can take; one
/// it refuses counts as damage. `on_bytes` is told of progress.
pub(crate) fn salvage(
    file: &File,
    generation: u64,
    mut on_bytes: impl FnMut(u64),
    mut usable: impl FnMut(&[u8]) -> bool,
) -> io::Result<Salvage> {
    let file_len = file.metadata()?.len();
    let mut found = Salvage {
        file_len,
        ..Salvage::default()
    };
    let mut header = vec![0u8; LOG_HEADER_BYTES.min(file_len) as usize];
    read_exact_at(file, &mut header, 0)?;
    // Where the unusable stretch being crossed began.
    let mut bad_from = None;
    if format::check_log_header(&header, generation).is_err() {
        found.header_damaged = true;
        bad_from = Some(0);
    }
    let mut at = LOG_HEADER_BYTES;
    while at < file_len {
        let mut reader = BufReader::with_capacity(1 << 20, file);
        io::Seek::seek(&mut reader, io::SeekFrom::Start(at))?;
        let mut refused = None;
        let end = crate::frame::scan(
            &mut reader,
            at,
            file_len,
            "the article log",
            &mut on_bytes,
            |offset, payload| {
                if !usable(payload) {
                    found.refused += 1;
                    refused = Some(offset);
                    return Err(String::new());
                }
                if let Some(from) = bad_from.take() {
                    found.damaged.push((from, offset - from));
                }
                let len = (payload.len() + FRAME_HEADER_BYTES) as u32;
                found.frames.push((offset, len));
                Ok(())
            },
        );
        let end = match (end, refused) {
            (_, Some(offset)) => offset,
            (Ok(end), None) => end,
            (Err(e), None) => return Err(io::Error::other(e)),
        };
        if end >= file_len {
            break;
        }
        let from = *bad_from.get_or_insert(end);
        match intact_frame_after(file, end + 1, file_len)? {
            Some(next) => {
                on_bytes(next - end);
                at = next;
            }
            None => {
                found.tail = Some((from, file_len - from));
                bad_from = None;
                break;
            }
        }
    }
    if let Some(from) = bad_from.filter(|&from| from < file_len) {
        // A bad header with nothing after it, or a header cut short.
        found.tail = Some((from, file_len - from));
    }
    Ok(found)
}

/// The offset of the first intact article frame at or after `from`, if any.
fn intact_frame_after(file: &File, from: u64, file_len: u64) -> io::Result<Option<u64>> {
    // A frame header and the first bytes of an article record, which are checked before
    // the (possibly long) payload is read and its checksum computed.
    const PEEK: usize = FRAME_HEADER_BYTES + 3;
    let mut buf = vec![0u8; (1 << 20) + PEEK];
    let mut payload = Vec::new();
    let mut start = from;
    while start + PEEK as u64 <= file_len {
        let n = (file_len - start).min(buf.len() as u64) as usize;
        read_exact_at(file, &mut buf[..n], start)?;
        for at in 0..=n - PEEK {
            let peek = &buf[at..at + PEEK];
            if !format::may_start_article(&peek[FRAME_HEADER_BYTES..]) {
                continue;
            }
            let header: [u8; FRAME_HEADER_BYTES] =
                peek[..FRAME_HEADER_BYTES].try_into().expect("header bytes");
            let len = u64::from(crate::frame::payload_len(&header));
            let offset = start + at as u64;
            if len == 0 || offset + FRAME_HEADER_BYTES as u64 + len > file_len {
                continue;
            }
            payload.resize(len as usize, 0);
            read_exact_at(file, &mut payload, offset + FRAME_HEADER_BYTES as u64)?;
            if crate::frame::is_intact(&header, &payload) {
                return Ok(Some(offset));
            }
        }
        start += (n - PEEK + 1) as u64;
    }
    Ok(None)
}

impl Log {
    /// Opens a log for reading only, up to `valid_len`.
    pub fn open_read(path: &Path, file: File, valid_len: u64) -> Log {
        Log {
            file: Arc::new(file),
            path: Arc::from(path),
            handed: valid_len,
            written: Arc::new(AtomicU64::new(valid_len)),
            in_flight: VecDeque::new(),
            pending: Vec::new(),
            failed: Arc::default(),
        }
    }

    /// A reader's log takes in the frames a later scan found, up to `valid_len` (see
    /// [`scan_from`]). Only for a log opened with [`Log::open_read`] that appends nothing.
    pub fn extend_read(&mut self, valid_len: u64) {
        debug_assert!(self.pending.is_empty() && self.in_flight.is_empty());
        self.handed = valid_len;
        self.written.store(valid_len, Ordering::Release);
    }

    /// The file, shared (a reader scans it again for frames written since).
    pub fn file(&self) -> Arc<File> {
        Arc::clone(&self.file)
    }

    /// Opens a scanned log for appending: an unfinished tail left by a crash is cut off
    /// (and the cut synced), a copy of it kept first (returned: see [`keep_tail_aside`]);
    /// a longer damaged tail is refused. The caller has checked the tail with
    /// [`check_tail`].
    pub fn open_write(
        path: &Path,
        file: File,
        end: &ScanEnd,
    ) -> Result<(Log, Option<PathBuf>), Refusal> {
        let mut kept = None;
        if end.tail() > 0 {
            if end.tail() > MAX_TORN_TAIL {
                return Err(Refusal::damaged(format!(
                    "{} is damaged at byte {}: {} bytes after it cannot be read; \
                     refusing to cut them off ({})",
                    crate::report::shown_path(path),
                    end.valid_len,
                    end.tail(),
                    repair_hint(path)
                )));
            }
            kept = Some(keep_tail_aside(path, &file, end).map_err(|e| {
                Refusal::failed(format!("keeping a copy of an unfinished write: {e}"))
            })?);
            file.set_len(end.valid_len)
                .and_then(|()| file.sync_all())
                .map_err(|e| Refusal::failed(format!("cutting off an unfinished write: {e}")))?;
        }
        Ok((Log::open_read(path, file, end.valid_len), kept))
    }

    /// Appends a frame built by `encode` (which appends one frame to the vector it gets);
    /// returns its offset and length. It is durable once a syncer made after this has run.
    pub fn append(&mut self, encode: impl FnOnce(&mut Vec<u8>)) -> (u64, u32) {
        let offset = self.handed + self.pending.len() as u64;
        let before = self.pending.len();
        encode(&mut self.pending);
        (offset, (self.pending.len() - before) as u32)
    }

    /// Bytes appended and not yet handed to a syncer.
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }

    /// Hands every appended frame to a syncer, which writes them and makes them durable.
    pub fn write(&mut self) -> io::Result<Syncer> {
        if let Some(first) = self.failed.error() {
            return Err(first);
        }
        let written = self.written.load(Ordering::Acquire);
        while self
            .in_flight
            .front()
            .is_some_and(|(offset, frames)| offset + frames.len() as u64 <= written)
        {
            self.in_flight.pop_front();
        }
        let frames = Arc::new(std::mem::take(&mut self.pending));
        let offset = self.handed;
        self.handed += frames.len() as u64;
        if !frames.is_empty() {
            self.in_flight.push_back((offset, Arc::clone(&frames)));
        }
        Ok(Syncer {
            file: Arc::clone(&self.file),
            path: Arc::clone(&self.path),
            offset,
            frames,
            written: Arc::clone(&self.written),
            failed: Arc::clone(&self.failed),
        })
    }

    /// Writes and syncs every appended frame (and waits for nothing else: every syncer
    /// made earlier must have run).
    pub fn commit(&mut self) -> io::Result<()> {
        self.write()?.sync_io()
    }

    /// The payload of the frame at `offset` of `len` bytes (frame included), read into
    /// `buf` unless it is still in memory.
    pub fn read<'a>(&'a self, offset: u64, len: u32, buf: &'a mut Vec<u8>) -> io::Result<&'a [u8]> {
        let payload =
            |frames: &'a [u8], at: usize| &frames[at + FRAME_HEADER_BYTES..at + len as usize];
        if offset >= self.handed {
            return Ok(payload(&self.pending, (offset - self.handed) as usize));
        }
        // Written frames are in the file (the syncer's release store orders its write
        // before this load); later ones are still in their group's buffer.
        if offset >= self.written.load(Ordering::Acquire) {
            if let Some((start, frames)) = self
                .in_flight
                .iter()
                .rev()
                .find(|(start, _)| *start <= offset)
            {
                return Ok(payload(frames, (offset - start) as usize));
            }
        }
        buf.resize(len as usize - FRAME_HEADER_BYTES, 0);
        read_exact_at(&self.file, buf, offset + FRAME_HEADER_BYTES as u64)?;
        Ok(buf)
    }

    /// The whole frame at `offset` (for copying it to another log); it must be written.
    pub fn read_frame<'a>(
        &'a self,
        offset: u64,
        len: u32,
        buf: &'a mut Vec<u8>,
    ) -> io::Result<&'a [u8]> {
        self.frame_reader().read_frame(offset, len, buf)
    }

    /// Reads written frames on another thread while this log goes on appending.
    pub fn frame_reader(&self) -> FrameReader {
        FrameReader {
            file: Arc::clone(&self.file),
        }
    }

    /// Accepts no more writes: this log is no longer the one in force (or may not be);
    /// later writes fail with `why`.
    pub fn refuse_writes(&self, why: &str) {
        self.failed.set(&io::Error::other(why.to_string()));
    }

    /// Length of the file once everything appended is written.
    pub fn len(&self) -> u64 {
        self.handed + self.pending.len() as u64
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads the written frames of a log (see [`Log::frame_reader`]).
#[derive(Clone, Debug)]
pub(crate) struct FrameReader {
    file: Arc<File>,
}

impl FrameReader {
    /// The whole frame at `offset` of `len` bytes, header included.
    pub fn read_frame<'a>(
        &self,
        offset: u64,
        len: u32,
        buf: &'a mut Vec<u8>,
    ) -> io::Result<&'a [u8]> {
        buf.resize(len as usize, 0);
        read_exact_at(&self.file, buf, offset)?;
        Ok(buf)
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, offset)
}

#[cfg(unix)]
fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.write_all_at(buf, offset)
}

#[cfg(windows)]
fn write_all_at(file: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        let n = file.seek_write(buf, offset)?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        buf = &buf[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        let n = file.seek_read(buf, offset)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf = &mut buf[n..];
        offset += n as u64;
    }
    Ok(())
}

/// Syncs a directory so that a rename or a new file in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir; // Windows offers no directory sync; renames are journaled by NTFS.
        Ok(())
    }
}

/// Keeps the file at `path` under a name beside it that no writer removes as stale
/// (`<name>.damaged`, or `<name>.damaged-2`, … when taken by another file): a hard link,
/// or a synced copy where the file system has no links; the directory is synced. A name
/// already linked to the file (left by an interrupted repair) is used again.
pub(crate) fn keep_aside(path: &Path) -> io::Result<PathBuf> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    for n in 1u32.. {
        let aside = match n {
            1 => dir.join(format!("{name}.damaged")),
            n => dir.join(format!("{name}.damaged-{n}")),
        };
        match std::fs::hard_link(path, &aside) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if same_file(path, &aside)? {
                    return Ok(aside);
                }
                continue;
            }
            Err(_) => {
                // No hard links here: a copy, which appears under its name only whole.
                if aside.exists() {
                    continue;
                }
                let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
                io::copy(&mut File::open(path)?, &mut tmp)?;
                tmp.as_file().sync_all()?;
                tmp.persist_noclobber(&aside).map_err(|e| e.error)?;
            }
        }
        sync_dir(dir)?;
        return Ok(aside);
    }
    unreachable!("some name is free")
}

#[cfg(unix)]
fn same_file(a: &Path, b: &Path) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let (a, b) = (std::fs::metadata(a)?, std::fs::metadata(b)?);
    Ok((a.dev(), a.ino()) == (b.dev(), b.ino()))
}

#[cfg(not(unix))]
fn same_file(_: &Path, _: &Path) -> io::Result<bool> {
    Ok(false)
}

/// Writes `bytes` to `dir/name` atomically: a temporary file, synced, renamed over the
/// target, then the directory synced. The temporary file is named as every output's,
/// `.NAME.neardup-PID-XXXXXX.tmp`; a writer removes one a kill left (`remove_stale_files`).
pub(crate) fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = crate::outfile::temporary_beside(&dir.join(name))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(dir.join(name)).map_err(|e| e.error)?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::format::{ArticleRecord, StoredVerdict, encode_article};

    fn frame(id: &str) -> Vec<u8> {
        let mut out = Vec::new();
        encode_article(
            &mut out,
            &ArticleRecord {
                dated: false,
                verdict: StoredVerdict::New,
                score: 0.0,
                estimated: 0.0,
                time: 1,
                text_bytes: 3,
                tokens: 1,
                signature: &[1, 0, 0, 0],
                set: &[2, 0, 0, 0, 0, 0, 0, 0],
                id,
                best_match: "",
                cluster: id,
                story: None,
            },
        );
        out
    }

    fn ids(path: &Path) -> (Vec<String>, ScanEnd) {
        let file = File::open(path).unwrap();
        let mut seen = Vec::new();
        let end = scan(
            path,
            &file,
            0,
            |_| {},
            |_, payload| {
                seen.push(format::decode_article(payload, 1).unwrap().id.to_string());
                Ok(())
            },
        )
        .unwrap();
        (seen, end)
    }

    #[test]
    fn every_cut_of_a_torn_write_is_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        create(&path, 0).unwrap();
        let file = File::options().read(true).write(true).open(&path).unwrap();
        let end = scan(&path, &file, 0, |_| {}, |_, _| Ok(())).unwrap();
        let (mut log, kept) = Log::open_write(&path, file, &end).unwrap();
        assert_eq!(kept, None);
        log.append(|v| v.extend_from_slice(&frame("a")));
        log.commit().unwrap();
        let durable = std::fs::read(&path).unwrap();
        let second = frame("b");
        // Every prefix of the second frame, and garbage or zeros instead of it, reads as
        // the first frame alone; the writer then cuts the tail off.
        let mut damaged: Vec<Vec<u8>> = (0..second.len()).map(|n| second[..n].to_vec()).collect();
        damaged.push(vec![0; second.len()]);
        let mut flipped = second.clone();
        flipped[second.len() - 1] ^= 0xFF;
        damaged.push(flipped);
        for tail in damaged {
            std::fs::write(&path, [&durable[..], &tail[..]].concat()).unwrap();
            let (seen, end) = ids(&path);
            assert_eq!(seen, ["a"]);
            let file = File::options().read(true).write(true).open(&path).unwrap();
            let (mut log, kept) = Log::open_write(&path, file, &end).unwrap();
            assert_eq!(
                std::fs::metadata(&path).unwrap().len(),
                durable.len() as u64
            );
            // What was cut off is kept beside the log, byte for byte.
            match kept {
                Some(kept) => {
                    assert_eq!(std::fs::read(&kept).unwrap(), tail);
                    std::fs::remove_file(kept).unwrap();
                }
                None => assert!(tail.is_empty()),
            }
            log.append(|v| v.extend_from_slice(&second));
            log.commit().unwrap();
            assert_eq!(ids(&path).0, ["a", "b"]);
        }
    }

    /// A log of frames `ids` in order: its bytes and each frame's `(offset, length)`.
    fn log_of(ids: &[&str]) -> (Vec<u8>, Vec<(u64, u64)>) {
        let mut bytes = format::encode_log_header(0).to_vec();
        let mut frames = Vec::new();
        for id in ids {
            let f = frame(id);
            frames.push((bytes.len() as u64, f.len() as u64));
            bytes.extend_from_slice(&f);
        }
        (bytes, frames)
    }

    /// What `salvage` makes of a log: the ids kept, the damaged ranges, the tail and
    /// whether the header was bad.
    type Salvaged = (Vec<String>, Vec<(u64, u64)>, Option<(u64, u64)>, bool);

    fn salvaged(bytes: &[u8]) -> Salvaged {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, bytes).unwrap();
        let file = File::open(&path).unwrap();
        let mut seen = 0;
        let found = salvage(&file, 0, |n| seen += n, |p| p[0] != 9).unwrap();
        let log = Log::open_read(&path, file, found.file_len);
        let mut buf = Vec::new();
        let ids = found
            .frames
            .iter()
            .map(|&(offset, len)| {
                let payload = log.read(offset, len, &mut buf).unwrap();
                format::decode_article(payload, 1).unwrap().id.to_string()
            })
            .collect();
        (ids, found.damaged, found.tail, found.header_damaged)
    }

    #[test]
    fn salvage_keeps_every_intact_frame_past_damage() {
        let (good, f) = log_of(&["a", "b", "c", "d", "e"]);
        let flip = |at: &[u64]| {
            let mut bytes = good.clone();
            for &i in at {
                bytes[i as usize] ^= 0xFF;
            }
            bytes
        };
        let whole: Vec<String> = "abcde".chars().map(String::from).collect();
        let without = |gone: &str| -> Vec<String> {
            whole
                .iter()
                .filter(|id| !gone.contains(id.as_str()))
                .cloned()
                .collect()
        };
        // Whole, then a bad byte in the middle of each frame, then in its length.
        assert_eq!(salvaged(&good), (whole.clone(), vec![], None, false));
        for (k, id) in ["a", "b", "c", "d"].iter().enumerate() {
            let (offset, len) = f[k];
            for at in [offset, offset + len / 2] {
                assert_eq!(
                    salvaged(&flip(&[at])),
                    (without(id), vec![f[k]], None, false),
                    "frame {id}, byte {at}"
                );
            }
        }
        // Two places, and two frames in a row: one stretch each.
        assert_eq!(
            salvaged(&flip(&[f[1].0 + 20, f[3].0 + 20])),
            (without("bd"), vec![f[1], f[3]], None, false)
        );
        assert_eq!(
            salvaged(&flip(&[f[1].0 + 20, f[2].0 + 20])),
            (without("bc"), vec![(f[1].0, f[1].1 + f[2].1)], None, false)
        );
        // A page of the last group that never reached the disk reads as zeros, while a
        // later one did: the frames after the hole are kept.
        let mut hole = good.clone();
        hole[f[2].0 as usize..(f[3].0 + 10) as usize].fill(0);
        assert_eq!(
            salvaged(&hole),
            (without("cd"), vec![(f[2].0, f[2].1 + f[3].1)], None, false)
        );
        // The last frame has nothing intact after it: the tail.
        assert_eq!(
            salvaged(&flip(&[f[4].0 + 20])),
            (without("e"), vec![], Some(f[4]), false)
        );
        let cut = &good[..good.len() - 3];
        assert_eq!(
            salvaged(cut),
            (without("e"), vec![], Some((f[4].0, f[4].1 - 3)), false)
        );
        // A bad header is a stretch of its own; one cut short holds nothing.
        assert_eq!(
            salvaged(&flip(&[3])),
            (whole.clone(), vec![(0, LOG_HEADER_BYTES)], None, true)
        );
        for n in [0, 10, 24] {
            let tail = (n > 0 && n < 24).then_some((0, n as u64));
            assert_eq!(salvaged(&good[..n]), (vec![], vec![], tail, n < 24));
        }
        // An intact frame whose record is refused counts as damage.
        let mut refused = good.clone();
        let (at, len) = (f[2].0 as usize, f[2].1 as usize);
        refused[at + FRAME_HEADER_BYTES] = 9;
        crate::frame::seal(&mut refused[..at + len], at);
        assert_eq!(salvaged(&refused), (without("c"), vec![f[2]], None, false));
    }

    #[test]
    fn keep_aside_links_the_log_under_a_free_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("articles.0.log");
        std::fs::write(&path, b"damaged").unwrap();
        let aside = keep_aside(&path).unwrap();
        assert_eq!(aside, dir.path().join("articles.0.log.damaged"));
        assert_eq!(std::fs::read(&aside).unwrap(), b"damaged");
        // Again (an interrupted repair tried before): the same name.
        assert_eq!(keep_aside(&path).unwrap(), aside);
        // Another file under that name is not overwritten.
        std::fs::remove_file(&aside).unwrap();
        std::fs::write(&aside, b"other").unwrap();
        let second = keep_aside(&path).unwrap();
        assert_eq!(second, dir.path().join("articles.0.log.damaged-2"));
        assert_eq!(std::fs::read(&aside).unwrap(), b"other");
        assert_eq!(std::fs::read(&second).unwrap(), b"damaged");
        // Neither is taken for a log of another generation.
        for name in [&aside, &second] {
            let name = name.file_name().unwrap().to_str().unwrap();
            assert_eq!(format::parse_log_file_name(name), None);
        }
    }

    #[test]
    fn pending_frames_are_readable_before_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        create(&path, 0).unwrap();
        let file = File::options().read(true).write(true).open(&path).unwrap();
        let end = scan(&path, &file, 0, |_| {}, |_, _| Ok(())).unwrap();
        let (mut log, _) = Log::open_write(&path, file, &end).unwrap();
        let (offset, len) = log.append(|v| v.extend_from_slice(&frame("x")));
        let mut buf = Vec::new();
        let pending = log.read(offset, len, &mut buf).unwrap().to_vec();
        assert_eq!(format::decode_article(&pending, 1).unwrap().id, "x");
        // Handed to a syncer that has not run: still read from memory.
        let syncer = log.write().unwrap();
        let (second, second_len) = log.append(|v| v.extend_from_slice(&frame("y")));
        assert_eq!(log.read(offset, len, &mut buf).unwrap(), &pending[..]);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), LOG_HEADER_BYTES);
        syncer.sync().unwrap();
        assert_eq!(log.read(offset, len, &mut buf).unwrap(), &pending[..]);
        log.commit().unwrap();
        let y = log.read(second, second_len, &mut buf).unwrap();
        assert_eq!(format::decode_article(y, 1).unwrap().id, "y");
        assert_eq!(ids(&path).0, ["x", "y"]);
    }
}
