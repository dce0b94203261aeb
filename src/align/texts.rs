//! The original texts of the documents, kept when passages are wanted.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::ops::Range;
use std::path::PathBuf;

use crate::corpus::read_exact_at;
use crate::input::{FieldNames, parse_json_record};

/// The original texts of documents, kept as the raw records the reader produced: whole
/// batch buffers, moved in (no copy) and decoded again when a text is asked for (only
/// paired documents are). In memory up to a budget, then spilled to an unlinked temporary
/// file and read back with positioned reads.
#[derive(Debug)]
pub struct TextStore {
    fields: FieldNames,
    chunks: Vec<Chunk>,
    docs: Vec<Record>,
    /// Bytes of the chunks in memory.
    in_memory: u64,
    spilled: u64,
    budget: u64,
    temp_dir: Option<PathBuf>,
    file: Option<BufWriter<File>>,
}

#[derive(Debug)]
enum Chunk {
    Memory(Vec<u8>),
    /// Offset in the spill file.
    Spilled(u64),
}

/// Where a document's record is: its chunk, its byte range there, and how to decode it.
#[derive(Clone, Copy, Debug)]
struct Record {
    chunk: u32,
    start: u32,
    len: u32,
    json: bool,
}

impl TextStore {
    /// An empty store keeping up to `budget` bytes in memory; JSON records are decoded
    /// with `fields`.
    pub fn new(budget: u64, temp_dir: Option<PathBuf>, fields: FieldNames) -> Self {
        TextStore {
            fields,
            chunks: Vec::new(),
            docs: Vec::new(),
            in_memory: 0,
            spilled: 0,
            budget: budget.max(1),
            temp_dir,
            file: None,
        }
    }

    /// Keeps a buffer of raw records; returns its number for [`TextStore::push`].
    pub fn keep_chunk(&mut self, bytes: Vec<u8>) -> io::Result<u32> {
        self.in_memory += bytes.len() as u64;
        self.chunks.push(Chunk::Memory(bytes));
        let chunk = self.chunks.len() as u32 - 1;
        if self.in_memory > self.budget {
            self.spill()?;
        }
        Ok(chunk)
    }

    /// Adds the next document: its record is `range` of chunk `chunk`, a JSON Lines record
    /// (`json`) or the text itself.
    pub fn push(&mut self, chunk: u32, range: Range<usize>, json: bool) {
        self.docs.push(Record {
            chunk,
            start: range.start as u32,
            len: range.len() as u32,
            json,
        });
    }

    /// Writes every chunk held in memory to the spill file.
    fn spill(&mut self) -> io::Result<()> {
        let writer = crate::corpus::spill_file(&mut self.file, self.temp_dir.as_deref())?;
        // Chunks before the last spilled one were spilled with it.
        let first = self
            .chunks
            .iter()
            .rposition(|c| matches!(c, Chunk::Spilled(..)))
            .map_or(0, |i| i + 1);
        for chunk in &mut self.chunks[first..] {
            if let Chunk::Memory(bytes) = chunk {
                writer.write_all(bytes)?;
                let len = bytes.len() as u64;
                *chunk = Chunk::Spilled(self.spilled);
                self.spilled += len;
            }
        }
        writer.flush()?;
        self.in_memory = 0;
        Ok(())
    }

    /// Number of texts held.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// Whether no text is held.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// The text of `doc` (`None` if it is not held), decoded from its record; a spilled
    /// record is read into `buf`.
    pub fn get<'a>(&'a self, doc: u32, buf: &'a mut Vec<u8>) -> io::Result<Option<Cow<'a, str>>> {
        let Some(&record) = self.docs.get(doc as usize) else {
            return Ok(None);
        };
        let range = record.start as usize..(record.start + record.len) as usize;
        let raw: &[u8] = match &self.chunks[record.chunk as usize] {
            Chunk::Memory(bytes) => &bytes[range],
            &Chunk::Spilled(offset) => {
                let file = self
                    .file
                    .as_ref()
                    .expect("spilled chunks have a file")
                    .get_ref();
                buf.clear();
                buf.resize(range.len(), 0);
                read_exact_at(file, buf, offset + range.start as u64)?;
                buf
            }
        };
        let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidData, e);
        let raw = std::str::from_utf8(raw).map_err(|e| invalid(e.to_string()))?;
        if !record.json {
            return Ok(Some(Cow::Borrowed(raw)));
        }
        let parsed = parse_json_record(raw, &self.fields).map_err(|e| invalid(e.to_string()))?;
        Ok(Some(Cow::Owned(parsed.text.into_owned())))
    }

    /// Bytes kept in memory and spilled to disk.
    pub fn bytes(&self) -> (u64, u64) {
        (self.in_memory, self.spilled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spilled_texts_read_back_exactly() {
        let mut store = TextStore::new(100, None, FieldNames::default());
        let texts: Vec<String> = (0..30)
            .map(|i| format!("text number {i} – “ü” \"quoted\" {}", "x".repeat(i)))
            .collect();
        for pair in texts.chunks(3) {
            // A chunk of JSON records and plain texts, as a batch buffer holds them.
            let mut bytes = Vec::new();
            let mut ranges = Vec::new();
            for (k, t) in pair.iter().enumerate() {
                let record = if k == 1 {
                    t.clone()
                } else {
                    serde_json::json!({"id": k, "text": t}).to_string()
                };
                ranges.push((bytes.len()..bytes.len() + record.len(), k != 1));
                bytes.extend_from_slice(record.as_bytes());
                bytes.push(b'\n');
            }
            let chunk = store.keep_chunk(bytes).unwrap();
            for (range, json) in ranges {
                store.push(chunk, range, json);
            }
        }
        assert!(store.bytes().1 > 0, "some chunks were spilled");
        let mut buf = Vec::new();
        for (i, t) in texts.iter().enumerate() {
            assert_eq!(
                store.get(i as u32, &mut buf).unwrap().as_deref(),
                Some(t.as_str())
            );
        }
        assert_eq!(store.len(), texts.len());
        assert!(store.get(texts.len() as u32, &mut buf).unwrap().is_none());
    }
}
