//! The original texts of the documents, kept when passages are wanted.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use crate::corpus::read_exact_at;

/// The original texts of documents, appended in document order: in memory up to a
/// budget (the strings handed over are kept as they are, without a copy), then spilled to
/// an unlinked temporary file and read back with positioned reads.
#[derive(Debug)]
pub struct TextStore {
    texts: Vec<Held>,
    /// Bytes of the texts in memory.
    in_memory: u64,
    spilled: u64,
    budget: u64,
    temp_dir: Option<PathBuf>,
    file: Option<BufWriter<File>>,
}

#[derive(Debug)]
enum Held {
    /// Kept as handed over (a `String` from the record parser, not shrunk: no copy).
    Memory(String),
    /// Offset and length in the spill file.
    Spilled(u64, u64),
}

impl TextStore {
    /// An empty store keeping up to `budget` bytes in memory.
    pub fn new(budget: u64, temp_dir: Option<PathBuf>) -> Self {
        TextStore {
            texts: Vec::new(),
            in_memory: 0,
            spilled: 0,
            budget: budget.max(1),
            temp_dir,
            file: None,
        }
    }

    /// Adds the text of the next document.
    pub fn push(&mut self, text: impl Into<String>) -> io::Result<()> {
        let text = text.into();
        self.in_memory += text.len() as u64;
        self.texts.push(Held::Memory(text));
        if self.in_memory > self.budget {
            self.spill()?;
        }
        Ok(())
    }

    /// Writes every text held in memory to the spill file.
    fn spill(&mut self) -> io::Result<()> {
        if self.file.is_none() {
            let file = match &self.temp_dir {
                Some(dir) => tempfile::tempfile_in(dir)?,
                None => tempfile::tempfile()?,
            };
            self.file = Some(BufWriter::with_capacity(1 << 20, file));
        }
        let writer = self.file.as_mut().expect("spill file was just created");
        // Texts before the last spilled one were spilled with it.
        let first = self
            .texts
            .iter()
            .rposition(|h| matches!(h, Held::Spilled(..)))
            .map_or(0, |i| i + 1);
        for held in &mut self.texts[first..] {
            if let Held::Memory(text) = held {
                writer.write_all(text.as_bytes())?;
                let len = text.len() as u64;
                *held = Held::Spilled(self.spilled, len);
                self.spilled += len;
            }
        }
        writer.flush()?;
        self.in_memory = 0;
        Ok(())
    }

    /// Number of texts held.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// Whether no text is held.
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// The text of `doc`, read into `buf` if it was spilled; `None` if it is not held.
    pub fn get<'a>(&'a self, doc: u32, buf: &'a mut Vec<u8>) -> io::Result<Option<&'a str>> {
        match self.texts.get(doc as usize) {
            None => Ok(None),
            Some(Held::Memory(text)) => Ok(Some(text)),
            Some(&Held::Spilled(offset, len)) => {
                let file = self
                    .file
                    .as_ref()
                    .expect("spilled texts have a file")
                    .get_ref();
                buf.clear();
                buf.resize(len as usize, 0);
                read_exact_at(file, buf, offset)?;
                std::str::from_utf8(buf)
                    .map(Some)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
            }
        }
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
        let mut store = TextStore::new(40, None);
        let texts: Vec<String> = (0..30)
            .map(|i| format!("text number {i} – “ü” {}", "x".repeat(i)))
            .collect();
        for t in &texts {
            store.push(t.as_str()).unwrap();
        }
        assert!(store.bytes().1 > 0, "some texts were spilled");
        let mut buf = Vec::new();
        for (i, t) in texts.iter().enumerate() {
            assert_eq!(store.get(i as u32, &mut buf).unwrap(), Some(t.as_str()));
        }
        assert_eq!(store.get(texts.len() as u32, &mut buf).unwrap(), None);
    }
}
