//! Resumable reading (`--checkpoint DIR`): what the workers made of each batch of records
//! — ids, dates, signatures, shingle sets, story features — kept in checksummed frames in
//! `DIR/fingerprints.log`. A run killed while reading and started again with the same
//! directory re-reads its inputs but fingerprints only the records it had not reached; a
//! later run over the same inputs with other comparison settings (threshold, bands,
//! window, clustering, output) fingerprints nothing.
//!
//! Each frame holds one batch, keyed by a hash of the batch as read: its bytes and where
//! each record came from. A frame is replayed only when the batch read at its place hashes
//! the same; from the first batch that differs (an input changed, was added or removed)
//! the frames are cut off and written afresh. The header holds the settings that shape a
//! fingerprint and the fingerprints of a probe text, so a checkpoint made with other
//! settings or by another neardup is refused rather than mixed in, and the first input
//! file (its canonical path): when the very first batch differs, the checkpoint is
//! written afresh if that file is this run's first too (it changed), and refused as
//! holding other inputs if not (nothing of it would be reused, and a mistyped directory
//! must not wipe another job's checkpoint). Output with a
//! checkpoint is byte-identical to output without one.
//!
//! Frames are written whole, one `write` each, and never synced: a killed process loses
//! nothing the kernel has, and after a power loss a torn or unwritten frame fails its
//! checksum and is cut off, so what is lost is found again, never read wrong.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use xxhash_rust::xxh3::Xxh3;

use crate::corpus::KeptLists;
use crate::error::{Error, ErrorKind, Result};
use crate::frame;
use crate::input::{Batch, Source};

/// The file holding the frames.
pub const FILE: &str = "fingerprints.log";
const LOCK_FILE: &str = "lock";
const MAGIC: &[u8; 8] = b"NDUPCKPT";
/// 2: the header names the first input file.
const VERSION: u32 = 2;
/// A frame's payload starts with the hash of its batch.
const HASH_BYTES: usize = 8;
/// Longer settings in a header mean it is not one.
const MAX_SETTINGS_BYTES: u64 = 1 << 20;

/// An open checkpoint, locked against other writers.
#[derive(Debug)]
pub struct Checkpoint {
    dir: PathBuf,
    file: File,
    _lock: File,
    /// `(offset, payload length, batch hash)` of the intact frames found when opened that
    /// have not been replayed or cut off yet, the next batch's first.
    ahead: std::collections::VecDeque<(u64, u32, u64)>,
    /// Bytes of the file written so far: where the next frame goes. Shared with the set
    /// stores that read kept lists back ([`KeptLists`]).
    written: Arc<AtomicU64>,
    /// Where the first frame is.
    frames_start: u64,
    /// The first input file of the run that made the checkpoint, and of this run
    /// ([`first_input`]; empty when not a file).
    first_input: (String, String),
    /// The frame being written.
    frame: Vec<u8>,
}

impl Checkpoint {
    /// Opens the checkpoint in `dir` (creating the directory and an empty checkpoint if
    /// there is none) for a run whose fingerprints are shaped by `settings`: one
    /// `name: value` per line. A checkpoint made with other settings is an error that
    /// names the first difference.
    /// `first_input` is this run's first input file ([`first_input`]).
    pub fn open(dir: &Path, settings: &str, first_input: &str) -> Result<Checkpoint> {
        if dir.exists() && !dir.is_dir() {
            return Err(checkpoint_error(
                dir,
                "is not a directory; give a directory (created if missing)".into(),
            ));
        }
        // `--checkpoint .` wrote fingerprints.log and lock among the user's files, which
        // the advice "delete the directory when done" would then delete.
        if let Ok(entries) = std::fs::read_dir(dir) {
            let names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
            let ours = |n: &std::ffi::OsString| n == FILE || n == LOCK_FILE;
            if !names.iter().any(|n| n == FILE) && !names.iter().all(ours) {
                return Err(checkpoint_error(
                    dir,
                    "holds other files and no neardup checkpoint; give a new or empty \
                     directory (created if missing)"
                        .into(),
                ));
            }
        }
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, "creating", e))?;
        let lock = match crate::lock::take(&dir.join(LOCK_FILE)) {
            Ok(Ok(file)) => file,
            Ok(Err(holder)) => {
                return Err(checkpoint_error(
                    dir,
                    format!(
                        "is in use by {}; give each run its own --checkpoint directory",
                        crate::lock::describe_holder(&holder)
                    ),
                ));
            }
            Err(e) => return Err(io_error(dir, "locking", e)),
        };
        // A refused run leaves no lock file behind (it is ours until the run ends).
        struct Unlock<'a>(Option<&'a Path>);
        impl Drop for Unlock<'_> {
            fn drop(&mut self) {
                if let Some(dir) = self.0 {
                    let _ = std::fs::remove_file(dir.join(LOCK_FILE));
                }
            }
        }
        let mut unlock = Unlock(Some(dir));
        let path = dir.join(FILE);
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_error(dir, "opening", e))?;
        let header = encode_header(settings, first_input);
        let file_len = file
            .metadata()
            .map_err(|e| io_error(dir, "reading", e))?
            .len();
        // The header's fixed part says how long its settings are.
        let mut found = Vec::new();
        let read_header = |n: u64, found: &mut Vec<u8>| {
            (&file)
                .take(n)
                .read_to_end(found)
                .map_err(|e| io_error(dir, "reading", e))
        };
        read_header(16, &mut found)?;
        if found.len() == 16 && &found[..8] == MAGIC {
            let len = u32::from_le_bytes(found[12..16].try_into().expect("4 bytes"));
            read_header(u64::from(len).min(MAX_SETTINGS_BYTES), &mut found)?;
            // Then the first input's name, as long as its 4 bytes say.
            let at = found.len();
            read_header(4, &mut found)?;
            if let Some(len) = found.get(at..at + 4) {
                let len = u32::from_le_bytes(len.try_into().expect("4 bytes"));
                read_header(u64::from(len).min(MAX_SETTINGS_BYTES), &mut found)?;
            }
        }
        let mut ahead = std::collections::VecDeque::new();
        let mut theirs = first_input.to_string();
        let (end, frames_start) = if found.len() < header.len() && header.starts_with(&found) {
            // New, or killed while its header was written.
            file.set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| file.write_all(&header))
                .and_then(|()| file.sync_all())
                .map_err(|e| io_error(dir, "writing", e))?;
            (header.len() as u64, header.len() as u64)
        } else {
            theirs =
                check_header(&found, settings).map_err(|reason| checkpoint_error(dir, reason))?;
            let mut reader = BufReader::with_capacity(1 << 20, &file);
            let end = frame::scan(
                &mut reader,
                found.len() as u64,
                file_len,
                "the checkpoint",
                |_| {},
                |offset, payload| {
                    let hash = frame::Reader::new(payload).u64()?;
                    ahead.push_back((offset, payload.len() as u32, hash));
                    Ok(())
                },
            )
            .map_err(|reason| checkpoint_error(dir, reason))?;
            if end < file_len {
                // A frame torn by a kill or a crash: it is written afresh.
                file.set_len(end)
                    .map_err(|e| io_error(dir, "cutting a torn frame off", e))?;
            }
            (end, found.len() as u64)
        };
        unlock.0 = None;
        Ok(Checkpoint {
            dir: dir.to_path_buf(),
            file,
            _lock: lock,
            ahead,
            written: Arc::new(AtomicU64::new(end)),
            frames_start,
            first_input: (theirs, first_input.to_string()),
            frame: Vec::new(),
        })
    }

    /// The results kept for the next batch, whose hash is `hash` ([`batch_hash`]), read
    /// into `buf`: its payload after the hash, with the byte of the file it starts at.
    /// `None` when the checkpoint holds none for it; a batch that differs from the one
    /// kept at its place cuts off the kept frames from there on, to be written afresh by
    /// [`Checkpoint::append`].
    pub fn replay<'b>(
        &mut self,
        hash: u64,
        buf: &'b mut Vec<u8>,
    ) -> Result<Option<(u64, &'b [u8])>> {
        match self.ahead.front() {
            None => return Ok(None),
            Some(&(offset, len, kept)) if kept == hash => {
                buf.resize(len as usize, 0);
                crate::corpus::read_exact_at(&self.file, buf, offset + frame::HEADER_BYTES as u64)
                    .map_err(|e| io_error(&self.dir, "reading", e))?;
                self.ahead.pop_front();
                let at = offset + (frame::HEADER_BYTES + HASH_BYTES) as u64;
                return Ok(Some((at, &buf[HASH_BYTES..])));
            }
            Some(&(offset, ..)) if offset == self.frames_start && !self.same_first_input() => {
                return Err(self.other_inputs());
            }
            // The first batch of the same first input: it changed there.
            Some(&(offset, ..)) => self.cut(offset)?,
        }
        Ok(None)
    }

    /// Appends the results of the batch whose hash is `hash`: one entry per record, in
    /// order.
    pub fn append(&mut self, hash: u64, entries: &[Vec<u8>]) -> Result<()> {
        // One buffer for every frame: a fresh one would fault in its pages each batch.
        let out = &mut self.frame;
        out.clear();
        let start = frame::open(out);
        out.extend_from_slice(&hash.to_le_bytes());
        out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for entry in entries {
            out.extend_from_slice(&(entry.len() as u32).to_le_bytes());
            out.extend_from_slice(entry);
        }
        frame::seal(out, start);
        let end = self.written.load(Ordering::Acquire);
        (&self.file)
            .seek(io::SeekFrom::Start(end))
            .and_then(|_| (&self.file).write_all(out))
            .map_err(|e| io_error(&self.dir, "writing", e))?;
        self.written
            .store(end + out.len() as u64, Ordering::Release);
        Ok(())
    }

    /// Ends a run that read all its inputs: frames of batches it no longer has are cut
    /// off.
    pub fn finish(&mut self) -> Result<()> {
        match self.ahead.front() {
            // Inputs with no records at all are other inputs too, unless their first file
            // is the one the checkpoint was made from (emptied since).
            Some(&(offset, ..)) if offset == self.frames_start && !self.same_first_input() => {
                Err(self.other_inputs())
            }
            Some(&(offset, ..)) => self.cut(offset),
            None => Ok(()),
        }
    }

    /// The file as the set stores read kept lists from it, holding the lock as long as
    /// they do.
    pub(crate) fn kept_lists(&self) -> Result<Arc<KeptLists>> {
        match (self.file.try_clone(), self._lock.try_clone()) {
            (Ok(file), Ok(lock)) => Ok(Arc::new(KeptLists::new(file, self.written.clone(), lock))),
            (Err(e), _) | (_, Err(e)) => Err(io_error(&self.dir, "opening", e)),
        }
    }

    /// Whether this run's first input file is the one the checkpoint was made from (an
    /// input that is not a file, standard input say, is never the same).
    fn same_first_input(&self) -> bool {
        let (theirs, ours) = &self.first_input;
        !ours.is_empty() && theirs == ours
    }

    /// A run's inputs are not the ones whose fingerprints the checkpoint holds: refused
    /// rather than overwriting them all.
    fn other_inputs(&self) -> Error {
        let name = |n: &str| {
            if n.is_empty() {
                "no input file".to_string()
            } else {
                n.to_string()
            }
        };
        let (theirs, ours) = &self.first_input;
        checkpoint_error(
            &self.dir,
            format!(
                "holds the fingerprints of other inputs (its first input was {}, this \
                 run's is {}; inputs are known by their names as well as their bytes, so a \
                 moved or renamed file is another input); give the same inputs, another \
                 --checkpoint directory, or delete it to start afresh",
                name(theirs),
                name(ours)
            ),
        )
    }

    /// Where the next frame goes.
    fn end(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    fn cut(&mut self, offset: u64) -> Result<()> {
        self.file
            .set_len(offset)
            .map_err(|e| io_error(&self.dir, "cutting off outdated batches from", e))?;
        self.ahead.clear();
        self.written.store(offset, Ordering::Release);
        Ok(())
    }
}

/// A checkpoint in use by a run's reading loop: kept results are replayed on the loop's
/// thread; from the first batch without any, frames are written on a thread of their own,
/// so that the loop goes on to the next batch meanwhile.
pub(crate) struct Keeper<'scope, 'env> {
    scope: &'scope std::thread::Scope<'scope, 'env>,
    dir: PathBuf,
    /// The checkpoint, while batches are replayed.
    replaying: Option<Checkpoint>,
    /// The writing thread, which owns the checkpoint once the first batch missed.
    writer: Option<Writer<'scope>>,
    /// Where the writer puts the next frame.
    next_frame: u64,
    /// A batch was too large for a frame: nothing more is kept.
    stopped: bool,
    buf: Vec<u8>,
    replayed: u64,
}

/// A record's kept entry, with the byte of the checkpoint file it starts at.
pub(crate) type KeptEntry<'a> = (u64, &'a [u8]);

type Writer<'scope> = (
    std::sync::mpsc::SyncSender<(u64, Vec<Vec<u8>>)>,
    std::thread::ScopedJoinHandle<'scope, Result<Checkpoint>>,
);

impl<'scope, 'env> Keeper<'scope, 'env> {
    /// Keeps `checkpoint` for a reading loop running in `scope`.
    pub(crate) fn new(
        checkpoint: Checkpoint,
        scope: &'scope std::thread::Scope<'scope, 'env>,
    ) -> Self {
        Keeper {
            scope,
            dir: checkpoint.dir.clone(),
            replaying: Some(checkpoint),
            writer: None,
            next_frame: 0,
            stopped: false,
            buf: Vec::new(),
            replayed: 0,
        }
    }

    /// The entries kept for the next batch of `records` records, whose hash is `hash`,
    /// each with the byte of the file it starts at; `None` when there are none (see
    /// [`Checkpoint::replay`]).
    pub(crate) fn replay(
        &mut self,
        hash: u64,
        records: usize,
    ) -> Result<Option<Vec<KeptEntry<'_>>>> {
        let Some(checkpoint) = &mut self.replaying else {
            return Ok(None);
        };
        match checkpoint.replay(hash, &mut self.buf)? {
            Some((at, kept)) => {
                self.replayed += records as u64;
                let entries =
                    decode_results(kept, records).map_err(|reason| damaged(&self.dir, reason))?;
                let start = kept.as_ptr() as usize;
                Ok(Some(
                    entries
                        .into_iter()
                        .map(|e| (at + (e.as_ptr() as usize - start) as u64, e))
                        .collect(),
                ))
            }
            None => {
                let mut checkpoint = self.replaying.take().expect("replaying");
                self.next_frame = checkpoint.end();
                let (tx, rx) = std::sync::mpsc::sync_channel::<(u64, Vec<Vec<u8>>)>(2);
                let handle = self.scope.spawn(move || {
                    for (hash, entries) in rx {
                        checkpoint.append(hash, &entries)?;
                    }
                    Ok(checkpoint)
                });
                self.writer = Some((tx, handle));
                Ok(None)
            }
        }
    }

    /// The error for kept entries of a record that do not decode.
    pub(crate) fn damaged(&self, reason: String) -> Error {
        damaged(&self.dir, reason)
    }

    /// Appends the next batch's entries (one per record, in order); only after
    /// [`Keeper::replay`] found none for it. Returns the byte of the file each entry will
    /// start at, or `None` when the batch is not kept.
    pub(crate) fn append(&mut self, hash: u64, entries: Vec<Vec<u8>>) -> Result<Option<Vec<u64>>> {
        let payload = HASH_BYTES + 4 + entries.iter().map(|e| 4 + e.len()).sum::<usize>();
        if self.stopped || payload > u32::MAX as usize {
            // A frame's length is a u32: a batch of giant records (--max-record-bytes
            // over a gigabyte) is not kept, nor anything after it, and a later run
            // fingerprints them again.
            self.stopped = true;
            return Ok(None);
        }
        let mut at = self.next_frame + (frame::HEADER_BYTES + HASH_BYTES + 4) as u64;
        let places = entries
            .iter()
            .map(|e| {
                let entry = at + 4;
                at = entry + e.len() as u64;
                entry
            })
            .collect();
        self.next_frame = at;
        let (tx, _) = self
            .writer
            .as_ref()
            .expect("append follows a replay that missed");
        if tx.send((hash, entries)).is_ok() {
            return Ok(Some(places));
        }
        // The writer stops early only on an error, which joining it returns.
        let (tx, handle) = self.writer.take().expect("writing");
        drop(tx);
        handle
            .join()
            .expect("writing a checkpoint does not panic")?;
        Err(Error::io(
            format!(
                "writing the checkpoint {}",
                crate::report::shown_path(&self.dir)
            ),
            io::Error::other("the writing thread stopped"),
        ))
    }

    /// Waits for the writes; cuts off frames of batches the inputs no longer have when
    /// the loop `read_all` of them; returns how many records were replayed.
    pub(crate) fn finish(mut self, read_all: bool) -> Result<u64> {
        let mut checkpoint = match self.writer.take() {
            Some((tx, handle)) => {
                drop(tx);
                handle
                    .join()
                    .expect("writing a checkpoint does not panic")?
            }
            None => self.replaying.take().expect("either replaying or writing"),
        };
        if read_all {
            checkpoint.finish()?;
        }
        Ok(self.replayed)
    }
}

/// The entries [`Checkpoint::append`] wrote, one per record of a batch of `records`.
fn decode_results(payload: &[u8], records: usize) -> std::result::Result<Vec<&[u8]>, String> {
    let mut r = frame::Reader::new(payload);
    let count = r.u32()? as usize;
    if count != records {
        return Err(format!("{count} records kept for a batch of {records}"));
    }
    let entries = (0..count)
        .map(|_| {
            let len = r.u32()? as usize;
            r.take(len)
        })
        .collect::<std::result::Result<Vec<_>, String>>()?;
    if r.at != payload.len() {
        return Err("a batch's results run on past its records".into());
    }
    Ok(entries)
}

/// The hash that keys a batch's results: its bytes, and each record's place (source name
/// and format, line, byte range), since a text document's id is its file name.
pub fn batch_hash(sources: &[Source], batch: &Batch) -> u64 {
    let mut h = Xxh3::new();
    h.update(&batch.buf);
    let mut last_source = u32::MAX;
    for r in &batch.records {
        if r.location.source != last_source {
            last_source = r.location.source;
            let source = &sources[r.location.source as usize];
            h.update(source.name.as_bytes());
            h.update(&[0xff, source.format as u8]);
            if let Some(id) = &source.text_id {
                h.update(id.as_bytes());
            }
        }
        h.update(&r.location.line.to_le_bytes());
        h.update(&(r.range.start as u64).to_le_bytes());
        h.update(&(r.range.end as u64).to_le_bytes());
    }
    h.digest()
}

/// The identity of a run's inputs for [`Checkpoint::open`]: the canonical path of its
/// first input when that is a file, else empty (standard input, bytes in memory, a file
/// that cannot be found).
pub fn first_input(sources: &[Source]) -> String {
    match sources.first().map(|s| &s.location) {
        Some(crate::input::Location::File(path)) => std::fs::canonicalize(path)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

fn encode_header(settings: &str, first_input: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(20 + settings.len() + first_input.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(settings.len() as u32).to_le_bytes());
    out.extend_from_slice(settings.as_bytes());
    out.extend_from_slice(&(first_input.len() as u32).to_le_bytes());
    out.extend_from_slice(first_input.as_bytes());
    out
}

/// Checks a checkpoint's header (`found`, as many bytes as this run's header has)
/// against this run's settings; the error names the first setting that differs.
fn check_header(found: &[u8], settings: &str) -> std::result::Result<String, String> {
    if found.len() < 16 || &found[..8] != MAGIC {
        return Err(format!("{FILE} is not a neardup checkpoint"));
    }
    let version = u32::from_le_bytes(found[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(format!(
            "was written in checkpoint format {version}, and this neardup reads {VERSION}; \
             delete it or give another --checkpoint directory"
        ));
    }
    let len = u32::from_le_bytes(found[12..16].try_into().expect("4 bytes")) as usize;
    let theirs = found
        .get(16..16 + len)
        .and_then(|b| std::str::from_utf8(b).ok());
    if theirs == Some(settings) {
        // Then the first input: its length and its name, and nothing after.
        let rest = &found[16 + len..];
        return rest
            .get(..4)
            .map(|n| u32::from_le_bytes(n.try_into().expect("4 bytes")) as usize)
            .filter(|&n| rest.len() == 4 + n)
            .and_then(|_| std::str::from_utf8(&rest[4..]).ok())
            .map(str::to_string)
            .ok_or_else(|| format!("{FILE} has a damaged header; delete it to start afresh"));
    }
    let theirs: Vec<&str> = theirs.map_or_else(Vec::new, |t| t.lines().collect());
    let difference = settings
        .lines()
        .zip(theirs.iter().chain(std::iter::repeat(&"")))
        .find(|(ours, theirs)| ours != *theirs);
    let what = match difference {
        Some((ours, theirs)) => {
            let name = ours.split(':').next().unwrap_or(ours);
            let value = |line: &str| {
                line.split_once(": ")
                    .map_or(String::new(), |(_, v)| v.to_string())
            };
            if theirs.split(':').next() == Some(name) {
                format!("{name} {} then, {} now", value(theirs), value(ours))
            } else {
                "settings this neardup does not know".to_string()
            }
        }
        None => "other settings".to_string(),
    };
    Err(format!(
        "holds fingerprints made with other settings ({what}); give the same settings, \
         another --checkpoint directory, or delete it to start afresh"
    ))
}

fn damaged(dir: &Path, reason: String) -> Error {
    checkpoint_error(
        dir,
        format!("is damaged ({reason}); delete it to start afresh"),
    )
}

fn checkpoint_error(dir: &Path, reason: String) -> Error {
    ErrorKind::Checkpoint {
        path: dir.to_path_buf(),
        reason,
    }
    .into()
}

fn io_error(dir: &Path, doing: &str, e: io::Error) -> Error {
    Error::io(
        format!("{doing} the checkpoint {}", crate::report::shown_path(dir)),
        e,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SETTINGS: &str = "level: near-copy\nshingles: words:5\nprobe fingerprint: 00ff";

    #[test]
    fn the_first_differing_setting_is_named() {
        let theirs = encode_header(SETTINGS, "/data/in.jsonl");
        assert_eq!(check_header(&theirs, SETTINGS), Ok("/data/in.jsonl".into()));
        assert!(
            check_header(&theirs[..theirs.len() - 1], SETTINGS)
                .unwrap_err()
                .contains("damaged header")
        );
        let ours = SETTINGS.replace("words:5", "chars:4");
        let err = check_header(&theirs, &ours).unwrap_err();
        assert!(
            err.contains("(shingles words:5 then, chars:4 now)"),
            "{err}"
        );
        let mut newer = theirs.clone();
        newer[8] = 9;
        assert!(
            check_header(&newer, SETTINGS)
                .unwrap_err()
                .contains("format 9")
        );
        assert!(
            check_header(b"{\"id\": 1}\n", SETTINGS)
                .unwrap_err()
                .contains("not a neardup")
        );
    }

    #[test]
    fn results_come_back_per_record_and_a_wrong_count_is_an_error() {
        let entries = vec![vec![1, 2, 3], vec![], vec![0]];
        let mut payload = (entries.len() as u32).to_le_bytes().to_vec();
        for e in &entries {
            payload.extend_from_slice(&(e.len() as u32).to_le_bytes());
            payload.extend_from_slice(e);
        }
        let decoded = decode_results(&payload, 3).unwrap();
        assert_eq!(
            decoded,
            entries.iter().map(Vec::as_slice).collect::<Vec<_>>()
        );
        assert!(decode_results(&payload, 4).is_err());
        assert!(decode_results(&payload[..payload.len() - 1], 3).is_err());
    }

    proptest! {
        // Kept results pass their frame's checksum, but a checkpoint written by a buggy
        // or foreign program must still give an error, never a panic.
        #[test]
        fn any_payload_decodes_or_errs(bytes in proptest::collection::vec(any::<u8>(), 0..200), n in 0usize..5) {
            let _ = decode_results(&bytes, n);
        }
    }
}
