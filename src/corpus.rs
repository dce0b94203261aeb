//! What neardup keeps of each document after it has been read.
//!
//! In memory, per document: its id, the metadata fields carried to the output, its date,
//! text length, where it was read from, and its MinHash signature (`4 × num_perm` bytes).
//! The exact shingle sets used for verification live in a [`SetStore`], which keeps them
//! in memory up to a budget and spills the rest to an unlinked temporary file, so a large
//! archive never has to fit in memory. When passages are wanted, the original texts are
//! kept the same way, in a [`TextStore`].

use std::fs::File;
use std::io::{self, BufWriter, Seek, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::align::TextStore;
use crate::input::RecordLocation;

/// One document's entry, as handed to [`Corpus::push`].
#[derive(Debug)]
pub struct DocEntry {
    /// The document's id.
    pub id: Box<str>,
    /// The other fields of the record, as a JSON object.
    pub metadata: Option<Box<str>>,
    /// Seconds since the Unix epoch, when the record has a date.
    pub date: Option<i64>,
    /// Length of the text in bytes.
    pub text_bytes: u64,
    /// Number of tokens in the text.
    pub tokens: u32,
    /// Where the record was read from.
    pub location: RecordLocation,
}

/// The documents of a run, addressed by their index in input order.
#[derive(Debug)]
pub struct Corpus {
    num_perm: usize,
    ids: Vec<Box<str>>,
    metadata: Vec<Option<Box<str>>>,
    dates: Vec<Option<i64>>,
    text_bytes: Vec<u64>,
    tokens: Vec<u32>,
    locations: Vec<RecordLocation>,
    signatures: Vec<u32>,
    sets: SetStore,
    texts: Option<TextStore>,
}

impl Corpus {
    /// An empty corpus for signatures of `num_perm` slots.
    pub fn new(num_perm: usize, sets: SetStore) -> Self {
        Corpus {
            num_perm,
            ids: Vec::new(),
            metadata: Vec::new(),
            dates: Vec::new(),
            text_bytes: Vec::new(),
            tokens: Vec::new(),
            locations: Vec::new(),
            signatures: Vec::new(),
            sets,
            texts: None,
        }
    }

    /// Keeps the original text of every document too (for passages): hand each batch of
    /// raw records to [`Corpus::keep_records`] and call [`Corpus::push_text`] after each
    /// [`Corpus::push`].
    pub fn keep_texts(&mut self, texts: TextStore) {
        assert!(self.is_empty(), "texts are kept from the first document on");
        self.texts = Some(texts);
    }

    /// Keeps a batch's buffer of raw records (when the corpus keeps texts); returns its
    /// number for [`Corpus::push_text`].
    pub fn keep_records(&mut self, buf: Vec<u8>) -> io::Result<u32> {
        match &mut self.texts {
            Some(texts) => texts.keep_chunk(buf),
            None => Ok(0),
        }
    }

    /// Records where the text of the document just pushed is: `range` of the kept buffer
    /// `chunk`, a JSON record (`json`) or the text itself.
    pub fn push_text(&mut self, chunk: u32, range: std::ops::Range<usize>, json: bool) {
        if let Some(texts) = &mut self.texts {
            assert_eq!(texts.len() + 1, self.ids.len(), "one text per document");
            texts.push(chunk, range, json);
        }
    }

    /// The original text of a document (a spilled record is read into `buf`); `None` if
    /// the corpus keeps no texts.
    pub fn text<'a>(
        &'a self,
        doc: u32,
        buf: &'a mut Vec<u8>,
    ) -> io::Result<Option<std::borrow::Cow<'a, str>>> {
        match &self.texts {
            Some(texts) => texts.get(doc, buf),
            None => Ok(None),
        }
    }

    /// Adds a document with its signature and its sorted, deduplicated shingle set.
    pub fn push(&mut self, entry: DocEntry, signature: &[u32], set: &[u64]) -> io::Result<u32> {
        self.push_kept(entry, signature, set, None)
    }

    /// [`Corpus::push`], for a set also written at byte `kept_at` of the checkpoint the
    /// corpus's set store reads ([`SetStore::read_kept_from`]).
    pub(crate) fn push_kept(
        &mut self,
        entry: DocEntry,
        signature: &[u32],
        set: &[u64],
        kept_at: Option<u64>,
    ) -> io::Result<u32> {
        debug_assert_eq!(signature.len(), self.num_perm);
        let doc = self.ids.len() as u32;
        self.sets.push_kept(set, kept_at)?;
        self.ids.push(entry.id);
        self.metadata.push(entry.metadata);
        self.dates.push(entry.date);
        self.text_bytes.push(entry.text_bytes);
        self.tokens.push(entry.tokens);
        self.locations.push(entry.location);
        self.signatures.extend_from_slice(signature);
        Ok(doc)
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no documents.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Slots per signature.
    pub fn num_perm(&self) -> usize {
        self.num_perm
    }

    /// The id of a document.
    pub fn id(&self, doc: u32) -> &str {
        &self.ids[doc as usize]
    }

    /// The metadata of a document: its record's other fields as a JSON object.
    pub fn metadata(&self, doc: u32) -> Option<&str> {
        self.metadata[doc as usize].as_deref()
    }

    /// The date of a document (seconds since the Unix epoch).
    pub fn date(&self, doc: u32) -> Option<i64> {
        self.dates[doc as usize]
    }

    /// Length of a document's text in bytes.
    pub fn text_bytes(&self, doc: u32) -> u64 {
        self.text_bytes[doc as usize]
    }

    /// Number of tokens in a document's text.
    pub fn tokens(&self, doc: u32) -> u32 {
        self.tokens[doc as usize]
    }

    /// Where a document was read from.
    pub fn location(&self, doc: u32) -> RecordLocation {
        self.locations[doc as usize]
    }

    /// A document's MinHash signature.
    pub fn signature(&self, doc: u32) -> &[u32] {
        let k = self.num_perm;
        &self.signatures[doc as usize * k..(doc as usize + 1) * k]
    }

    /// Size of a document's shingle set.
    pub fn set_len(&self, doc: u32) -> usize {
        self.sets.len_of(doc)
    }

    /// A document's sorted shingle set, read into `buf` if it was spilled to disk.
    pub fn set<'a>(&'a self, doc: u32, buf: &'a mut Vec<u64>) -> io::Result<&'a [u64]> {
        self.sets.get(doc, buf)
    }

    /// Lets the set store read sets kept in a checkpoint from there (see
    /// [`SetStore::read_kept_from`]).
    pub(crate) fn read_kept_sets_from(&mut self, kept: Arc<KeptLists>) {
        self.sets.read_kept_from(kept);
    }

    /// Bytes of shingle sets kept in memory and spilled to disk.
    pub fn set_bytes(&self) -> (u64, u64) {
        self.sets.bytes()
    }

    /// Index of every document, ordered by id: the tie-breaker that makes output
    /// independent of input order.
    pub fn id_order(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| self.ids[a as usize].cmp(&self.ids[b as usize]));
        order
    }

    /// `rank[doc]` = position of the document in id order.
    pub fn id_ranks(&self) -> Vec<u32> {
        let mut rank = vec![0u32; self.len()];
        for (r, doc) in self.id_order().into_iter().enumerate() {
            rank[doc as usize] = r as u32;
        }
        rank
    }
}

/// Lists of words, appended in document order (sorted shingle sets; encoded story
/// features); in memory up to a budget, then spilled to an unlinked temporary file read
/// back with positioned reads. A list that a checkpoint already holds on disk is not
/// written again when it leaves memory: it is read back from the checkpoint.
#[derive(Debug)]
pub struct SetStore {
    /// Start of each set in the global element space; one extra entry at the end.
    starts: Vec<u64>,
    /// Elements not yet spilled: global positions `spilled..`.
    memory: Vec<u64>,
    spilled: u64,
    budget_elements: usize,
    temp_dir: Option<PathBuf>,
    file: Option<BufWriter<File>>,
    /// The checkpoint's lists, when lists are pushed with where it holds them.
    kept: Option<Arc<KeptLists>>,
    /// Per list, the byte in the checkpoint where it is kept, or [`NOT_KEPT`]; empty
    /// while no list was pushed with one.
    kept_at: Vec<u64>,
    /// The first list still in memory.
    first_in_memory: usize,
    /// Where the store's own file is written next.
    file_position: u64,
}

/// A checkpoint's file as the set stores read it: lists pushed with a place in it leave
/// memory without being written again, once the checkpoint's writer has written them.
#[derive(Debug)]
pub struct KeptLists {
    file: File,
    /// Bytes of the file written so far.
    written: Arc<AtomicU64>,
    /// The checkpoint's lock, held as long as lists are read from it.
    _lock: File,
}

impl KeptLists {
    /// The lists in `file`, of which the first `written` bytes are on disk; `lock` keeps
    /// other runs from changing the file meanwhile.
    pub(crate) fn new(file: File, written: Arc<AtomicU64>, lock: File) -> Self {
        KeptLists {
            file,
            written,
            _lock: lock,
        }
    }
}

/// A list no checkpoint holds.
const NOT_KEPT: u64 = u64::MAX;

/// Once a store has spilled, it keeps this fraction of its budget in memory.
const SPILL_BUFFER_FRACTION: usize = 8;

impl SetStore {
    /// A store that keeps up to `budget_bytes` of set elements in memory.
    pub fn new(budget_bytes: u64, temp_dir: Option<PathBuf>) -> Self {
        SetStore {
            starts: vec![0],
            memory: Vec::new(),
            spilled: 0,
            budget_elements: (budget_bytes / 8).max(1) as usize,
            temp_dir,
            file: None,
            kept: None,
            kept_at: Vec::new(),
            first_in_memory: 0,
            file_position: 0,
        }
    }

    /// Reads lists pushed with a place in the checkpoint from `kept` once they leave
    /// memory, instead of writing them to the store's own file.
    pub(crate) fn read_kept_from(&mut self, kept: Arc<KeptLists>) {
        self.kept = Some(kept);
    }

    /// An empty store with the same budget and directory.
    pub(crate) fn empty_like(&self) -> Self {
        SetStore::new(self.budget_elements as u64 * 8, self.temp_dir.clone())
    }

    /// Number of lists.
    pub(crate) fn count(&self) -> usize {
        self.starts.len() - 1
    }

    pub(crate) fn push(&mut self, set: &[u64]) -> io::Result<()> {
        self.push_kept(set, None)
    }

    /// Appends a list that the checkpoint given to [`SetStore::read_kept_from`] holds
    /// (little-endian) at byte `kept_at`.
    pub(crate) fn push_kept(&mut self, set: &[u64], kept_at: Option<u64>) -> io::Result<()> {
        if let Some(at) = kept_at.filter(|_| self.kept.is_some()) {
            if self.kept_at.is_empty() {
                self.kept_at.resize(self.count(), NOT_KEPT);
            }
            self.kept_at.push(at);
        } else if !self.kept_at.is_empty() {
            self.kept_at.push(NOT_KEPT);
        }
        self.memory.extend_from_slice(set);
        let end = self.starts.last().copied().unwrap_or(0) + set.len() as u64;
        self.starts.push(end);
        // A store that has outgrown its budget streams to its file through a buffer of an
        // eighth of the budget: keeping the rest of the budget filled would only hold
        // whichever sets came last, at the full budget's resident memory.
        let limit = if self.spilled > 0 {
            self.spill_buffer_elements()
        } else {
            self.budget_elements
        };
        if self.memory.len() > limit {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> io::Result<()> {
        if !self.kept_at.is_empty() {
            return self.spill_keeping();
        }
        let writer = spill_file(&mut self.file, self.temp_dir.as_deref())?;
        writer.write_all(bytemuck::cast_slice(&self.memory))?;
        writer.flush()?;
        self.spilled += self.memory.len() as u64;
        self.file_position = self.spilled * 8;
        self.release_memory();
        Ok(())
    }

    /// Spills the lists in memory, writing to the store's own file only those that the
    /// checkpoint does not hold on disk yet; each at its place in the element space, as
    /// [`SetStore::spill`] would have written it.
    fn spill_keeping(&mut self) -> io::Result<()> {
        let kept = self
            .kept
            .as_ref()
            .expect("lists are kept only with a checkpoint");
        let written = kept.written.load(Ordering::Acquire);
        for doc in self.first_in_memory..self.count() {
            let (start, end) = (self.starts[doc], self.starts[doc + 1]);
            let at = self.kept_at[doc];
            if at != NOT_KEPT && at.saturating_add((end - start) * 8) <= written {
                continue;
            }
            // Not (yet) on disk in the checkpoint: read it from the store's own file.
            self.kept_at[doc] = NOT_KEPT;
            let writer = spill_file(&mut self.file, self.temp_dir.as_deref())?;
            if self.file_position != start * 8 {
                writer.seek(io::SeekFrom::Start(start * 8))?;
            }
            let from = (start - self.spilled) as usize;
            writer.write_all(bytemuck::cast_slice(
                &self.memory[from..from + (end - start) as usize],
            ))?;
            self.file_position = end * 8;
        }
        if let Some(writer) = &mut self.file {
            writer.flush()?;
        }
        self.spilled += self.memory.len() as u64;
        self.release_memory();
        Ok(())
    }

    /// After a spill: memory holds no list.
    fn release_memory(&mut self) {
        self.first_in_memory = self.count();
        let buffer = self.spill_buffer_elements();
        if self.memory.capacity() > 2 * buffer {
            // The first spill: give back the pages of the full budget.
            self.memory = Vec::with_capacity(buffer);
        } else {
            self.memory.clear();
        }
    }

    /// Elements kept in memory between spills once the store has spilled.
    fn spill_buffer_elements(&self) -> usize {
        (self.budget_elements / SPILL_BUFFER_FRACTION).max(1)
    }

    fn len_of(&self, doc: u32) -> usize {
        (self.starts[doc as usize + 1] - self.starts[doc as usize]) as usize
    }

    pub(crate) fn get<'a>(&'a self, doc: u32, buf: &'a mut Vec<u64>) -> io::Result<&'a [u64]> {
        let (start, end) = (self.starts[doc as usize], self.starts[doc as usize + 1]);
        if start >= self.spilled {
            let from = (start - self.spilled) as usize;
            return Ok(&self.memory[from..from + (end - start) as usize]);
        }
        buf.clear();
        buf.resize((end - start) as usize, 0);
        // Sets never straddle the boundary: spilling happens between pushes.
        if let Some(&at) = self.kept_at.get(doc as usize).filter(|&&at| at != NOT_KEPT) {
            let kept = self
                .kept
                .as_ref()
                .expect("lists are kept only with a checkpoint");
            read_exact_at(&kept.file, bytemuck::cast_slice_mut(buf), at)?;
            return Ok(buf);
        }
        let file = self
            .file
            .as_ref()
            .expect("spilled sets have a file")
            .get_ref();
        read_exact_at(file, bytemuck::cast_slice_mut(buf), start * 8)?;
        Ok(buf)
    }

    pub(crate) fn bytes(&self) -> (u64, u64) {
        (self.memory.len() as u64 * 8, self.spilled * 8)
    }
}

/// The spill file in `slot`, created on first use: unlinked, in `temp_dir` (the
/// system's temporary directory when `None`).
pub(crate) fn spill_file<'a>(
    slot: &'a mut Option<BufWriter<File>>,
    temp_dir: Option<&std::path::Path>,
) -> io::Result<&'a mut BufWriter<File>> {
    if slot.is_none() {
        let file = match temp_dir {
            Some(dir) => tempfile::tempfile_in(dir)?,
            None => tempfile::tempfile()?,
        };
        *slot = Some(BufWriter::with_capacity(1 << 20, file));
    }
    Ok(slot.as_mut().expect("the spill file was just created"))
}

#[cfg(unix)]
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, offset)
}

#[cfg(windows)]
pub(crate) fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spilled_store_keeps_an_eighth_of_its_budget() {
        let budget = 8 * 800; // 800 elements
        let mut store = SetStore::new(budget, None);
        let set: Vec<u64> = (0..10).collect();
        let mut most = 0;
        for _ in 0..500 {
            store.push(&set).unwrap();
            if store.bytes().1 > 0 {
                most = most.max(store.bytes().0);
            }
        }
        assert!(store.bytes().1 > 0, "spilled");
        // The buffer's limit plus the set that crossed it.
        assert!(
            most <= budget / 8 + 10 * 8,
            "{most} bytes in memory after spilling"
        );
        assert!(store.memory.capacity() * 8 < budget as usize / 2);
        let mut buf = Vec::new();
        for doc in [0, 77, 499] {
            assert_eq!(store.get(doc, &mut buf).unwrap(), &set[..]);
        }
    }

    #[test]
    fn kept_sets_are_read_from_the_checkpoint_once_written_and_spilled_before() {
        // A "checkpoint" holding every other set at odd offsets, of which only the first
        // half is written when the store spills: later kept sets go to the spill file.
        let sets: Vec<Vec<u64>> = (0..40u64)
            .map(|i| (0..i % 7 + 1).map(|x| x * 1_000 + i).collect())
            .collect();
        let mut bytes = vec![0xAAu8; 3];
        let mut places = Vec::new();
        for (i, set) in sets.iter().enumerate() {
            places.push((i % 2 == 0).then_some(bytes.len() as u64));
            if i % 2 == 0 {
                bytes.extend(set.iter().flat_map(|x| x.to_le_bytes()));
                bytes.push(0x55);
            }
        }
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&bytes).unwrap();
        let written = Arc::new(AtomicU64::new(places[20].unwrap()));
        let lock = tempfile::tempfile().unwrap();
        let kept = Arc::new(KeptLists::new(file, written.clone(), lock));
        let mut store = SetStore::new(8 * 12, None);
        store.read_kept_from(kept);
        for (set, at) in sets.iter().zip(&places) {
            store.push_kept(set, *at).unwrap();
        }
        let mut buf = Vec::new();
        for (doc, set) in sets.iter().enumerate() {
            assert_eq!(
                store.get(doc as u32, &mut buf).unwrap(),
                &set[..],
                "set {doc}"
            );
        }
        // Kept and written: read from the checkpoint; kept too late: from the spill file.
        assert_eq!(store.kept_at[2], places[2].unwrap());
        assert_eq!(store.kept_at[30], NOT_KEPT);
        assert!(store.file.is_some());
    }

    #[test]
    fn spilled_sets_read_back_exactly() {
        // A budget of 10 elements forces most sets to disk.
        let mut store = SetStore::new(80, None);
        let sets: Vec<Vec<u64>> = (0..50u64)
            .map(|i| (0..i * 3).map(|x| x * 7 + i).collect())
            .collect();
        for s in &sets {
            store.push(s).unwrap();
        }
        let (in_memory, on_disk) = store.bytes();
        assert!(on_disk > 0 && in_memory <= 80 + 49 * 3 * 8);
        let mut buf = Vec::new();
        for (doc, s) in sets.iter().enumerate() {
            assert_eq!(store.get(doc as u32, &mut buf).unwrap(), &s[..]);
            assert_eq!(store.len_of(doc as u32), s.len());
        }
    }
}
