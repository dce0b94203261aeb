//! Corpus statistics for story matching: in how many documents each term and name occurs.
//!
//! Counted while the documents are read (one streaming pass, no second read), or loaded
//! from a file written by an earlier run, so that a later run or the feed index scores
//! against the same statistics.
//!
//! File format (all integers little-endian), version 1:
//!
//! ```text
//! b"NDSTATS\0"  u32 version  u64 documents  u64 entries
//! entries × (u64 key, u32 document frequency), keys strictly increasing
//! u64 xxh3 of every byte before it
//! ```
//!
//! Keys are what the story features hash (terms, names). They changed once without a new
//! version: the terms of Thai, Lao, Khmer and Myanmar text, once single letters, are
//! n-grams of letters. The letters' keys are never counted now, so a file holding any was
//! counted by an older neardup over such text and is refused (its n-grams would all weigh
//! as unseen); files without such text, English ones among them, stay valid.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, Read, Write};

use xxhash_rust::xxh3::Xxh3;

use super::features::StoryDoc;

const MAGIC: &[u8; 8] = b"NDSTATS\0";
/// Version of the statistics file format this build reads and writes.
pub const STATS_VERSION: u32 = 1;

/// Pseudo-documents added to the corpus size in inverse document frequencies: in a tiny
/// corpus every term is then weighted about equally (stop words are left out anyway)
/// instead of every shared term weighing nothing.
pub const IDF_PRIOR_DOCUMENTS: f64 = 100.0;

/// See [`StoryStats::common_idf`].
const COMMON_IDF: f64 = 3.0;
/// Corpus size from which the whole [`COMMON_IDF`] applies.
const FULL_FLOOR_DOCUMENTS: f64 = FEW_DOCUMENTS as f64;
/// Fewer documents than this are too few to tell rare words from common ones: the
/// model was fitted on weights from thousands of articles (BBC: 2,225).
pub const FEW_DOCUMENTS: u64 = 1000;
/// See [`StoryStats::rare_idf`].
const RARE_ABOVE_COMMON: f64 = 1.5;

/// A hasher for keys that already are well-mixed 64-bit hashes (xxh3 of tokens): it
/// passes them through instead of hashing them again.
#[derive(Clone, Copy, Debug, Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).rotate_left(5);
        }
    }
    fn write_u64(&mut self, key: u64) {
        self.0 = key;
    }
}

/// Map from token-hash keys, without rehashing them.
pub type KeyMap<V> = HashMap<u64, V, BuildHasherDefault<KeyHasher>>;

/// Whether `key` is a one-letter term of Thai, Lao, Khmer or Myanmar: counted by neardup
/// before it took n-grams of those letters, never since.
pub fn is_retired_letter_key(key: u64) -> bool {
    static KEYS: std::sync::OnceLock<
        std::collections::HashSet<u64, BuildHasherDefault<KeyHasher>>,
    > = std::sync::OnceLock::new();
    KEYS.get_or_init(|| crate::text::unspaced_letter_hashes().collect())
        .contains(&key)
}

/// Document frequencies of terms and names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoryStats {
    documents: u64,
    df: KeyMap<u32>,
}

impl StoryStats {
    /// Empty statistics.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one more document.
    pub fn add(&mut self, doc: &StoryDoc) {
        self.add_documents(1, doc.counted_keys());
    }

    /// Counts `documents` more documents whose terms and names, all lists together, are
    /// `keys`: the same as [`StoryStats::add`] for each (counts do not depend on order).
    pub fn add_documents(&mut self, documents: u64, keys: impl IntoIterator<Item = u64>) {
        self.documents += documents;
        for key in keys {
            let n = self.df.entry(key).or_insert(0);
            *n = n.saturating_add(1);
        }
    }

    /// Adds the counts of `other`: statistics counted over disjoint parts of a corpus
    /// sum to those of the whole.
    pub fn merge(&mut self, other: &StoryStats) {
        self.documents += other.documents;
        self.df
            .reserve(other.df.len().saturating_sub(self.df.len()));
        for (&key, &n) in &other.df {
            let m = self.df.entry(key).or_insert(0);
            *m = m.saturating_add(n);
        }
    }

    /// Counts every `(documents, keys)` chunk that arrives until the senders hang up
    /// (run on a thread of its own, so that counting stays off a serial loop).
    pub fn count_from(chunks: std::sync::mpsc::Receiver<(u64, Vec<u64>)>) -> Self {
        let mut counted = Self::new();
        for (documents, keys) in chunks {
            counted.add_documents(documents, keys);
        }
        counted
    }

    /// Number of documents counted.
    pub fn documents(&self) -> u64 {
        self.documents
    }

    /// Whether they are too few documents to weigh words by (see [`FEW_DOCUMENTS`]).
    pub fn too_few(&self) -> bool {
        self.documents < FEW_DOCUMENTS
    }

    /// Number of distinct terms and names.
    pub fn len(&self) -> usize {
        self.df.len()
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.df.is_empty()
    }

    /// In how many documents a term or name occurs.
    pub fn df(&self, key: u64) -> u32 {
        self.df.get(&key).copied().unwrap_or(0)
    }

    /// Inverse document frequency `ln((N + P) / (df + 1))`, with `P` =
    /// [`IDF_PRIOR_DOCUMENTS`]: above 0 for every term, largest for the rarest.
    pub fn idf(&self, key: u64) -> f64 {
        ((self.documents as f64 + IDF_PRIOR_DOCUMENTS) / (f64::from(self.df(key)) + 1.0)).ln()
    }

    /// IDF below which a word counts as common: words in more than about 1 document in
    /// 20 (`ln 20 ≈ 3`) in a corpus of at least 1,000 documents; smaller corpora get a
    /// proportionally lower floor (a 5-document corpus has no common words to speak of).
    pub fn common_idf(&self) -> f64 {
        COMMON_IDF * (self.documents as f64 / FULL_FLOOR_DOCUMENTS).min(1.0)
    }

    /// IDF from which a word or name is rare: 1.5 above [`StoryStats::common_idf`] (in a
    /// large corpus, in fewer than about 1 document in 90).
    pub fn rare_idf(&self) -> f64 {
        self.common_idf() + RARE_ABOVE_COMMON
    }

    /// A digest of the counts: the checksum of the file [`StoryStats::write_to`] writes,
    /// equal for equal counts however they were stored or compressed. Sketch records
    /// carry it so that `verify` weighs them by the statistics they were sketched with.
    pub fn digest(&self) -> u64 {
        let mut buf = Vec::new();
        self.write_to(&mut buf).expect("writing to memory");
        u64::from_le_bytes(buf[buf.len() - 8..].try_into().expect("8 bytes"))
    }

    /// Writes the statistics in the versioned file format.
    pub fn write_to(&self, out: &mut dyn Write) -> io::Result<()> {
        let mut entries: Vec<(u64, u32)> = self.df.iter().map(|(&k, &v)| (k, v)).collect();
        entries.sort_unstable();
        let mut buf = Vec::with_capacity(28 + entries.len() * 12 + 8);
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&STATS_VERSION.to_le_bytes());
        buf.extend_from_slice(&self.documents.to_le_bytes());
        buf.extend_from_slice(&(entries.len() as u64).to_le_bytes());
        for (k, v) in entries {
            buf.extend_from_slice(&k.to_le_bytes());
            buf.extend_from_slice(&v.to_le_bytes());
        }
        let mut hasher = Xxh3::new();
        hasher.update(&buf);
        buf.extend_from_slice(&hasher.digest().to_le_bytes());
        out.write_all(&buf)
    }

    /// Reads the statistics file at `path` (as [`StoryStats::read_from`]); the error
    /// names the file.
    pub fn load(path: &std::path::Path) -> crate::error::Result<Self> {
        // Decompressed whatever its name, as every input is (`--stats-out x.stats.gz`).
        let location = crate::input::Location::File(path.to_path_buf());
        crate::input::open_decoded(&location, &mut |_| {})
            .and_then(|mut f| StoryStats::read_from(&mut f))
            .map_err(|e| {
                crate::error::Error::io(
                    format!(
                        "reading statistics {}",
                        crate::report::one_line(&path.display().to_string())
                    ),
                    e,
                )
            })
    }

    /// Reads statistics written by [`StoryStats::write_to`]; any other content is an
    /// `InvalidData` error that says what is wrong.
    pub fn read_from(input: &mut dyn Read) -> io::Result<Self> {
        let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
        let mut buf = Vec::new();
        input.read_to_end(&mut buf)?;
        if buf.len() < 36 || &buf[..8] != MAGIC {
            return Err(invalid("not a neardup statistics file".into()));
        }
        let u32_at = |i: usize| u32::from_le_bytes(buf[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_le_bytes(buf[i..i + 8].try_into().expect("8 bytes"));
        let version = u32_at(8);
        if version != STATS_VERSION {
            return Err(invalid(format!(
                "statistics file version {version}; this neardup reads version {STATS_VERSION}"
            )));
        }
        let documents = u64_at(12);
        let entries = u64_at(20);
        let expected_len = entries
            .checked_mul(12)
            .and_then(|n| n.checked_add(36))
            .ok_or_else(|| invalid("corrupt entry count".into()))?;
        if buf.len() as u64 != expected_len {
            return Err(invalid(format!(
                "statistics file is {} bytes, expected {expected_len} (truncated or corrupt)",
                buf.len()
            )));
        }
        let body = buf.len() - 8;
        let mut hasher = Xxh3::new();
        hasher.update(&buf[..body]);
        if hasher.digest() != u64_at(body) {
            return Err(invalid(
                "statistics file checksum mismatch (corrupt)".into(),
            ));
        }
        let mut df = KeyMap::with_capacity_and_hasher(entries as usize, Default::default());
        let mut previous = None;
        for i in 0..entries as usize {
            let at = 28 + i * 12;
            let key = u64_at(at);
            if previous.is_some_and(|p| p >= key) {
                return Err(invalid("statistics keys out of order (corrupt)".into()));
            }
            previous = Some(key);
            df.insert(key, u32_at(at + 8));
        }
        // A few hundred letters looked up, not every key read.
        if crate::text::unspaced_letter_hashes().any(|k| df.contains_key(&k)) {
            return Err(invalid(
                "statistics counted by an older neardup over Thai, Lao, Khmer or Myanmar \
                 text, whose words it counted letter by letter; count them again with this \
                 version (neardup stats count)"
                    .into(),
            ));
        }
        Ok(StoryStats { documents, df })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// A damaged or foreign statistics file is an `InvalidData` error, never a panic.
        #[test]
        fn damaged_statistics_files_are_errors(
            cut in 0usize..200,
            flips in proptest::collection::vec((0usize..200, proptest::prelude::any::<u8>()), 1..4),
            random in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..120),
        ) {
            let mut bytes = Vec::new();
            sample().write_to(&mut bytes).unwrap();
            let mut damaged = bytes.clone();
            for (at, byte) in flips {
                let len = damaged.len();
                damaged[at % len] = byte;
            }
            if damaged != bytes {
                proptest::prop_assert!(StoryStats::read_from(&mut &damaged[..]).is_err());
            }
            bytes.truncate(cut.min(bytes.len().saturating_sub(1)));
            proptest::prop_assert!(StoryStats::read_from(&mut &bytes[..]).is_err());
            let _ = StoryStats::read_from(&mut &random[..]);
        }
    }

    fn sample() -> StoryStats {
        let mut s = StoryStats::new();
        s.add(&StoryDoc {
            terms: vec![1, 2, 3],
            names: vec![9],
            ..StoryDoc::default()
        });
        s.add(&StoryDoc {
            terms: vec![2, 3],
            ..StoryDoc::default()
        });
        s
    }

    #[test]
    fn counts_documents_per_term() {
        let s = sample();
        assert_eq!(
            (s.documents(), s.df(1), s.df(2), s.df(9), s.df(7)),
            (2, 1, 2, 1, 0)
        );
        assert!(s.idf(7) > s.idf(1) && s.idf(1) > s.idf(2) && s.idf(2) > 0.0);
    }

    #[test]
    fn parts_merge_into_the_whole() {
        let docs = [
            StoryDoc {
                terms: vec![1, 2, 3],
                names: vec![9],
                ..StoryDoc::default()
            },
            StoryDoc {
                terms: vec![2, 3],
                ..StoryDoc::default()
            },
            StoryDoc {
                terms: vec![3, 4],
                names: vec![9],
                ..StoryDoc::default()
            },
        ];
        let mut whole = StoryStats::new();
        docs.iter().for_each(|d| whole.add(d));
        let (mut first, mut second) = (StoryStats::new(), StoryStats::new());
        first.add(&docs[0]);
        docs[1..].iter().for_each(|d| second.add(d));
        first.merge(&second);
        assert_eq!(first, whole);
        first.merge(&StoryStats::new());
        assert_eq!(first, whole);
    }

    #[test]
    fn round_trips_and_pins_the_format() {
        let s = sample();
        let mut bytes = Vec::new();
        s.write_to(&mut bytes).unwrap();
        // Golden layout: header, 4 sorted entries, checksum.
        assert_eq!(bytes.len(), 28 + 4 * 12 + 8);
        assert_eq!(&bytes[..12], b"NDSTATS\0\x01\0\0\0");
        assert_eq!(&bytes[28..40], &[1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(StoryStats::read_from(&mut &bytes[..]).unwrap(), s);
    }

    #[test]
    fn refuses_statistics_counted_over_thai_letters() {
        let mut thai = StoryStats::new();
        thai.add(&crate::story::Extractor::new().extract("ภาษาไทย ง่ายๆ"));
        let mut old = sample();
        old.add_documents(1, [crate::text::hash_normalized("ภ".as_bytes())]);
        let read = |s: &StoryStats| {
            let mut bytes = Vec::new();
            s.write_to(&mut bytes).unwrap();
            StoryStats::read_from(&mut &bytes[..])
        };
        assert_eq!(read(&thai).unwrap(), thai);
        assert!(
            read(&old)
                .unwrap_err()
                .to_string()
                .contains("count them again")
        );
    }

    #[test]
    fn rejects_damaged_files() {
        let mut bytes = Vec::new();
        sample().write_to(&mut bytes).unwrap();
        let err = |b: &[u8]| StoryStats::read_from(&mut &b[..]).unwrap_err().to_string();
        assert!(err(&bytes[..bytes.len() - 1]).contains("truncated"));
        let mut flipped = bytes.clone();
        flipped[30] ^= 1;
        assert!(err(&flipped).contains("checksum"));
        let mut future = bytes.clone();
        future[8] = 2;
        assert!(err(&future).contains("version 2"));
        assert!(err(b"hello").contains("not a neardup statistics file"));
    }
}
