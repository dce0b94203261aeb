//! Passages: what exactly two texts share, with byte offsets into both originals.
//!
//! Runs after [`crate::verify`] (and clustering) on the verified pairs, when
//! [`crate::Settings::passages`] is set. For each pair it reports the passages the two
//! texts share: `[start, end)` byte offsets into each **original** text, the number of
//! words on each side, and the word edits between the two sides (0: identical after
//! normalization). Passages are found in any order, survive small edits, and are maximal;
//! see [`Aligner`] for the algorithm.
//!
//! ## Boilerplate
//! Site banners, copyright footers, "Source link" lines, newsletter pitches, an agency's
//! sign-off: text that recurs across many documents of the corpus is not story reuse. The
//! rule, on the pipeline's own shingles (the windows of the first document's side):
//!
//! 1. a shingle is **common** when it occurs in at least
//!    [`PassageSettings::boilerplate_docs`] documents of the corpus (default 20);
//! 2. a run of consecutive common shingles covering at least `min_words` words is a
//!    **recurring stretch**; story text shorter than `min_words` between or beside
//!    recurring stretches joins them;
//! 3. the recurring stretches of a pair are **boilerplate** when both documents have at
//!    least `min_words` words of their own beside them. Recurring text that makes up (all
//!    but a few words of) either document is a story syndicated many times: it stays
//!    story text.
//!
//! Boilerplate stretches are reported as passages of their own, marked with the smallest
//! document frequency among their shingles, and left out of the pair's coverage.
//!
//! Counting is cheap: only the shingles of passages are counted, over the shingle sets the
//! corpus already holds, in two passes. The first counts every `(min_words − n + 1)`-th
//! shingle of each passage (every run of rule 2 holds one of them) over the whole corpus;
//! the second counts, at each end of a run of common sampled shingles, the shingles up to
//! the next sampled one, over the documents that carry a common sampled shingle (the
//! recurring text's own documents). A shingle between two common sampled shingles is
//! taken as common without counting.
//!
//! ## Where the texts come from
//! With passages on, the corpus keeps the raw records as they are read (the reader's batch
//! buffers, moved into a [`TextStore`] that spills to a temporary file beyond the memory
//! budget) and decodes the texts of paired documents on use. This was measured cheaper
//! than reading the inputs twice (which decompresses them again) and than keeping every
//! decoded text (see ARCHITECTURE.md).
//!
//! ## Quirks
//! * Boilerplate shorter than a shingle (a one-word banner such as `BREAKINGON`) cannot be
//!   told apart by document frequency: when two documents share it *and* the text that
//!   follows it, it stays in the story passage.
//! * A passage ends at its last word, plus a sentence terminator (`.`, `!`, `?`, `…`) that
//!   directly follows it; opening and closing quotes stay outside.
//! * A document made only of recurring text (a story syndicated in `boilerplate_docs`
//!   copies, plus its site's footer) has no boilerplate marked: rule 3 cannot tell which
//!   part is the story.
//! * Document frequency cannot tell a site's furniture from a phrase many documents use
//!   (a famous quote, an institution's full name): at least `min_words` long, in at least
//!   `boilerplate_docs` documents and beside other text, it is marked boilerplate too.

mod aligner;
mod boilerplate;
mod compare;
pub mod eval;
mod found;
pub mod reference;
mod texts;

use std::io;
use std::ops::Range;

use rayon::prelude::*;

use crate::corpus::Corpus;
use crate::error::{Error, Result};
use crate::pipeline::Settings;
use crate::progress::{Observer, Stage, Ticker, go_on};
use crate::shingle::ShingleSpec;
use crate::text::{Token, Tokenizer};
use crate::verify::PairScore;

pub use aligner::{Aligner, Op, Prepared, TokenPassage};
pub use compare::{ComparedDoc, Comparison, DocRef, StoryVerdict, compare};
pub use texts::TextStore;

use boilerplate::Windows;
use found::{Found, FoundStore};

/// Largest [`PassageSettings::max_gap`]: the ends of a passage are searched over every
/// pair of gaps up to it.
pub const MAX_GAP: usize = 32;

/// How passages are found and which are boilerplate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PassageSettings {
    /// Shortest passage reported, in words on each side.
    pub min_words: usize,
    /// Words in a seed: an n-gram found in both texts from which a passage grows.
    pub seed_words: usize,
    /// Longest run of differing words (on each side) bridged inside a passage.
    pub max_gap: usize,
    /// A seed n-gram that occurs more often than this in one text is not used as a seed.
    pub max_repeats: usize,
    /// A stretch whose shingles each occur in at least this many documents is boilerplate.
    pub boilerplate_docs: u64,
}

impl Default for PassageSettings {
    fn default() -> Self {
        PassageSettings {
            min_words: 8,
            seed_words: 3,
            max_gap: 4,
            max_repeats: 32,
            boilerplate_docs: 20,
        }
    }
}

impl PassageSettings {
    /// Checks that the settings can work.
    pub fn check(&self) -> Result<()> {
        if self.min_words == 0 {
            return Err(Error::config(
                "the minimum passage length must be at least 1 word",
            ));
        }
        if self.max_gap > MAX_GAP {
            return Err(Error::config(format!(
                "the passage gap can be at most {MAX_GAP} words, got {}",
                self.max_gap
            )));
        }
        if self.seed_words == 0 || self.max_repeats == 0 {
            return Err(Error::config(
                "seed words and seed repeats must be at least 1",
            ));
        }
        if self.boilerplate_docs < 3 {
            return Err(Error::config(
                "boilerplate-docs must be at least 3 (every shared passage is in 2 documents)",
            ));
        }
        Ok(())
    }
}

/// One side of a passage: where it is in its document's original text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Side {
    /// Byte offset of the passage's first byte in the original text.
    pub start: u32,
    /// Byte offset one past its last byte (its last word, plus a sentence terminator that
    /// follows it directly).
    pub end: u32,
    /// Index of its first token in the document.
    pub first_token: u32,
    /// Number of words (tokens).
    pub words: u32,
}

impl Side {
    /// The byte range, to slice the original text with.
    pub fn range(&self) -> Range<usize> {
        self.start as usize..self.end as usize
    }

    /// The token index range.
    pub fn tokens(&self) -> Range<usize> {
        self.first_token as usize..(self.first_token + self.words) as usize
    }
}

/// A passage two documents share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passage {
    /// In the pair's first document.
    pub a: Side,
    /// In the pair's second document.
    pub b: Side,
    /// Word edits between the two sides (0: identical after normalization).
    pub edits: u32,
    /// For boilerplate: the smallest number of documents of the corpus that carry one of
    /// its shingles. `None` for story text.
    pub boilerplate: Option<u64>,
}

impl Passage {
    /// Identical after normalization.
    pub fn is_exact(&self) -> bool {
        self.edits == 0
    }
}

/// The passages of one pair.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PairPassages {
    /// Ordered by start in the first document, then in the second.
    pub passages: Vec<Passage>,
    /// Fraction of the first document's words inside story (not boilerplate) passages.
    pub coverage_a: f32,
    /// The same for the second document.
    pub coverage_b: f32,
}

/// Finds the passages of every verified pair (the pipeline's stage); the result is
/// index-aligned with `pairs`. The corpus must keep texts ([`Corpus::keep_texts`]).
pub fn find_passages(
    corpus: &Corpus,
    pairs: &[PairScore],
    settings: &Settings,
    passage: &PassageSettings,
    observer: &dyn Observer,
) -> Result<Vec<PairPassages>> {
    let doc_pairs: Vec<(u32, u32)> = pairs.iter().map(|p| (p.a, p.b)).collect();
    let ticker = Ticker::new(observer, Stage::Align);
    let found = align_pairs(corpus, &doc_pairs, &Room::of(settings), passage, ticker)?;
    go_on(observer)?;
    Ok(found)
}

/// A document tokenized and prepared for alignment.
struct Entry {
    doc: u32,
    tokens: Vec<Token>,
    prepared: Prepared,
}

/// Per-thread state of the alignment stage, with the last documents it prepared (a
/// document is usually in several pairs).
struct Worker {
    aligner: Aligner,
    tokenizer: Tokenizer,
    cache: Vec<Entry>,
    cached_bytes: usize,
    /// Evict beyond this many bytes ([`CACHE_BYTES`]; tests make it tiny).
    cache_budget: usize,
    text_a: Vec<u8>,
    text_b: Vec<u8>,
}

/// Bytes of prepared documents a worker keeps.
const CACHE_BYTES: usize = 16 << 20;

impl Worker {
    fn new(settings: PassageSettings, cache_budget: usize) -> Self {
        Worker {
            aligner: Aligner::new(settings),
            tokenizer: Tokenizer::new(),
            cache: Vec::new(),
            cached_bytes: 0,
            cache_budget,
            text_a: Vec::new(),
            text_b: Vec::new(),
        }
    }

    /// The cache indices of `a` and `b` prepared. Both are added before anything is
    /// evicted, and neither is: an eviction shifts the entries behind it, so an index
    /// taken before it could name another document.
    fn pair(&mut self, (a, ta): (u32, &str), (b, tb): (u32, &str)) -> (usize, usize) {
        debug_assert_ne!(a, b);
        self.add(a, ta);
        self.add(b, tb);
        while self.cached_bytes > self.cache_budget && self.cache.len() > 2 {
            let old = (self.cache.iter())
                .position(|e| e.doc != a && e.doc != b)
                .expect("a third entry");
            self.cached_bytes -= entry_bytes(&self.cache[old]);
            self.cache.remove(old);
        }
        let at = |doc| self.cache.iter().position(|e: &Entry| e.doc == doc);
        (at(a).expect("kept"), at(b).expect("kept"))
    }

    /// Prepares `doc` into the cache unless it is there.
    fn add(&mut self, doc: u32, text: &str) {
        if self.cache.iter().any(|e| e.doc == doc) {
            return;
        }
        let mut tokens = Vec::new();
        self.tokenizer.tokenize(text, &mut tokens);
        let mut prepared = Prepared::default();
        self.aligner
            .prepare(tokens.iter().map(|t| t.hash), &mut prepared);
        let entry = Entry {
            doc,
            tokens,
            prepared,
        };
        self.cached_bytes += entry_bytes(&entry);
        self.cache.push(entry);
    }
}

/// Tokens, hashes and the n-gram index: about 48 bytes a token once indexed.
fn entry_bytes(e: &Entry) -> usize {
    e.tokens.len() * 48
}

pub(crate) fn missing_text(doc: u32) -> Error {
    Error::io(
        "finding passages",
        io::Error::other(format!("the text of document {doc} was not kept")),
    )
}

/// Where the stage may keep what it holds between aligning and splitting: the pipeline's
/// shingle spec, its memory budget and temporary directory.
#[derive(Clone, Debug)]
pub(crate) struct Room {
    pub spec: ShingleSpec,
    /// Bytes of found passages kept in memory (then spilled).
    pub budget: u64,
    /// Shingles counted at once (see [`boilerplate::count_parts`]).
    pub table: usize,
    pub temp_dir: Option<std::path::PathBuf>,
}

/// The fewest shingles counted at once, whatever the budget (about 4 MiB): every further
/// part of the hash space reads every shingle set of the corpus again.
const MIN_TABLE: usize = 1 << 16;

impl Room {
    pub fn of(settings: &Settings) -> Self {
        Room {
            spec: settings.shingle,
            budget: settings.memory_budget,
            table: (usize::try_from(settings.memory_budget).unwrap_or(usize::MAX)
                / boilerplate::bytes_per_counted())
            .max(MIN_TABLE),
            temp_dir: settings.temp_dir.clone(),
        }
    }
}

/// Aligns every pair, then counts the document frequency of the passages' shingles and
/// splits off boilerplate. The result is index-aligned with `pairs`.
pub(crate) fn align_pairs(
    corpus: &Corpus,
    pairs: &[(u32, u32)],
    room: &Room,
    settings: &PassageSettings,
    ticker: Ticker<'_>,
) -> Result<Vec<PairPassages>> {
    align_pairs_cached(corpus, pairs, room, settings, ticker, CACHE_BYTES)
}

/// Pairs aligned at a time: their found passages are in memory together before they go to
/// the [`FoundStore`].
const BATCH: usize = 1024;

/// [`align_pairs`] with each thread's cache of prepared documents bounded by `cache_budget`.
fn align_pairs_cached(
    corpus: &Corpus,
    pairs: &[(u32, u32)],
    room: &Room,
    settings: &PassageSettings,
    ticker: Ticker<'_>,
    cache_budget: usize,
) -> Result<Vec<PairPassages>> {
    // Small chunks balance the threads: a few pairs of long documents can take most of the time.
    const CHUNK: usize = 16;
    let spec = room.spec;
    let count_windows = settings.boilerplate_docs <= corpus.len() as u64;
    let read_err = |e| Error::io("reading a spilled text", e);
    let spill_err = |e| Error::io("spilling found passages", e);
    // Every pair's passages, with the windows and offsets that boilerplate needs, wait in
    // a store that spills beyond the budget while the document frequencies are counted.
    let mut store = FoundStore::new(room.budget, room.temp_dir.clone());
    for batch in pairs.chunks(BATCH) {
        let found: Vec<Result<Vec<Vec<Found>>>> = batch
            .par_chunks(CHUNK)
            .map_init(
                || Worker::new(*settings, cache_budget),
                |w, chunk| {
                    if ticker.stopped() {
                        return Ok(Vec::new());
                    }
                    let mut out = Vec::with_capacity(chunk.len());
                    for &(a, b) in chunk {
                        out.push(w.found(corpus, (a, b), spec, count_windows, read_err)?);
                    }
                    ticker.advance(chunk.len() as u64);
                    Ok(out)
                },
            )
            .collect();
        for chunk in found {
            for pair in chunk? {
                store.push(&pair).map_err(spill_err)?;
            }
        }
        if ticker.stopped() {
            break;
        }
    }
    if store.len() < pairs.len() {
        // Stopped: the caller reports it.
        return Ok(Vec::new());
    }
    let frequencies = if count_windows {
        let sample = boilerplate::sample_stride(spec, settings.min_words);
        let each = |f: &mut dyn FnMut(&Windows)| store.each_windows(f);
        boilerplate::DocumentFrequencies::count(
            corpus,
            &each,
            sample,
            settings.boilerplate_docs,
            room.table,
        )
        .map_err(|e| Error::io("reading spilled shingle sets or passages", e))?
    } else {
        boilerplate::DocumentFrequencies::default()
    };
    (0..pairs.len())
        .into_par_iter()
        .map_init(Vec::new, |buf, i| {
            let found = store
                .get(i, buf)
                .map_err(|e| Error::io("reading spilled passages", e))?;
            let (a, b) = pairs[i];
            let words = (corpus.tokens(a), corpus.tokens(b));
            let passages = boilerplate::split(found, &frequencies, settings, words);
            Ok(with_coverage(passages, corpus.tokens(a), corpus.tokens(b)))
        })
        .collect()
}

impl Worker {
    /// The passages of pair `(a, b)`, with their windows and offsets when `count_windows`.
    fn found(
        &mut self,
        corpus: &Corpus,
        (a, b): (u32, u32),
        spec: ShingleSpec,
        count_windows: bool,
        read_err: impl Fn(io::Error) -> Error,
    ) -> Result<Vec<Found>> {
        let w = self;
        let mut text_a = std::mem::take(&mut w.text_a);
        let mut text_b = std::mem::take(&mut w.text_b);
        let ta = corpus
            .text(a, &mut text_a)
            .map_err(&read_err)?
            .ok_or_else(|| missing_text(a))?;
        let tb = corpus
            .text(b, &mut text_b)
            .map_err(&read_err)?
            .ok_or_else(|| missing_text(b))?;
        let (ta, tb) = (&*ta, &*tb);
        let (ia, ib) = w.pair((a, ta), (b, tb));
        let (ea, eb) = if ia < ib {
            let (x, y) = w.cache.split_at_mut(ib);
            (&mut x[ia], &mut y[0])
        } else {
            let (x, y) = w.cache.split_at_mut(ia);
            (&mut y[0], &mut x[ib])
        };
        let passages = w.aligner.align_prepared(&mut ea.prepared, &mut eb.prepared);
        let (ea, eb) = (&*ea, &*eb);
        let mut pair = Vec::with_capacity(passages.len());
        for tp in passages {
            let windows = if count_windows {
                boilerplate::windows(
                    spec,
                    ta,
                    &ea.tokens,
                    ea.prepared.hashes(),
                    tp.a.clone(),
                    &mut w.tokenizer,
                )
            } else {
                Windows::none()
            };
            let offsets = |text: &str, tokens: &[Token], range: Range<usize>| {
                if windows.len() == 0 {
                    return Vec::new();
                }
                tokens[range]
                    .iter()
                    .map(|t| (t.start, end_with_terminators(text, t.end as usize) as u32))
                    .collect()
            };
            pair.push(Found {
                a: side(ta, &ea.tokens, tp.a.clone()),
                b: side(tb, &eb.tokens, tp.b.clone()),
                a_offsets: offsets(ta, &ea.tokens, tp.a.clone()),
                b_offsets: offsets(tb, &eb.tokens, tp.b.clone()),
                tokens: tp,
                windows,
            });
        }
        (w.text_a, w.text_b) = (text_a, text_b);
        Ok(pair)
    }
}

/// The side of a passage covering `tokens[range]` of `text`.
pub(crate) fn side(text: &str, tokens: &[Token], range: Range<usize>) -> Side {
    Side {
        start: tokens[range.start].start,
        end: end_with_terminators(text, tokens[range.end - 1].end as usize) as u32,
        first_token: range.start as u32,
        words: range.len() as u32,
    }
}

/// A sentence terminator right after a passage's last word belongs to the passage.
fn end_with_terminators(text: &str, mut end: usize) -> usize {
    for c in text[end..].chars() {
        if matches!(c, '.' | '!' | '?' | '…') {
            end += c.len_utf8();
        } else {
            break;
        }
    }
    end
}

/// Total length of the union of ranges.
pub(crate) fn union_len(ranges: impl Iterator<Item = Range<usize>>) -> usize {
    let mut ranges: Vec<Range<usize>> = ranges.collect();
    ranges.sort_by_key(|r| r.start);
    let (mut total, mut reach) = (0, 0);
    for r in ranges {
        let start = r.start.max(reach);
        if r.end > start {
            total += r.end - start;
        }
        reach = reach.max(r.end);
    }
    total
}

/// Fills in the coverage of each document by story passages.
fn with_coverage(passages: Vec<Passage>, words_a: u32, words_b: u32) -> PairPassages {
    let covered = |pick: fn(&Passage) -> Range<usize>| -> usize {
        union_len(
            passages
                .iter()
                .filter(|p| p.boilerplate.is_none())
                .map(pick),
        )
    };
    let fraction = |n: usize, of: u32| {
        if of == 0 {
            0.0
        } else {
            (n as f64 / f64::from(of)) as f32
        }
    };
    let coverage_a = fraction(covered(|p| p.a.tokens()), words_a);
    let coverage_b = fraction(covered(|p| p.b.tokens()), words_b);
    PairPassages {
        passages,
        coverage_a,
        coverage_b,
    }
}

/// Finds the passages two texts share, without a corpus (so without boilerplate).
///
/// ```
/// use neardup::align::{passages_between, PassageSettings};
/// let a = "Officials said on Tuesday that the central bank would raise its key rate by half a point.";
/// let b = "The central bank would raise its key rate by half a point, officials said.";
/// let found = passages_between(a, b, &PassageSettings::default());
/// assert_eq!(found.len(), 1);
/// assert_eq!(&a[found[0].a.range()], "the central bank would raise its key rate by half a point.");
/// assert_eq!(&b[found[0].b.range()], "The central bank would raise its key rate by half a point");
/// ```
pub fn passages_between(a: &str, b: &str, settings: &PassageSettings) -> Vec<Passage> {
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    let mut tokenizer = Tokenizer::new();
    tokenizer.tokenize(a, &mut ta);
    tokenizer.tokenize(b, &mut tb);
    let ha: Vec<u64> = ta.iter().map(|t| t.hash).collect();
    let hb: Vec<u64> = tb.iter().map(|t| t.hash).collect();
    Aligner::new(*settings)
        .align(&ha, &hb)
        .into_iter()
        .map(|tp| Passage {
            a: side(a, &ta, tp.a.clone()),
            b: side(b, &tb, tp.b.clone()),
            edits: tp.edits,
            boilerplate: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::input::{InputSpec, plan_sources};

    /// Documents that share stretches of one text, of different lengths.
    fn corpus(docs: usize) -> Corpus {
        let word = |i: usize| format!("w{}", i.wrapping_mul(2654435761) % 100_003);
        let mut lines = String::new();
        for d in 0..docs {
            let words: Vec<String> = (d * 7..d * 7 + 60 + 40 * d)
                .map(|i| {
                    if i % 23 == d {
                        format!("edit{d}")
                    } else {
                        word(i)
                    }
                })
                .collect();
            let text = words.join(" ");
            lines.push_str(&format!("{{\"id\":\"d{d}\",\"text\":\"{text}\"}}\n"));
        }
        let pipeline = crate::PipelineBuilder::new()
            .passages(Some(PassageSettings::default()))
            .build()
            .unwrap();
        let plan = plan_sources(
            &[InputSpec::Bytes {
                name: Arc::from("docs"),
                bytes: Arc::from(lines.as_bytes()),
            }],
            None,
        )
        .unwrap();
        let mut stats = crate::Stats::default();
        let corpus = pipeline
            .read_corpus(&plan.sources, &mut stats, &crate::progress::Silent)
            .unwrap();
        assert_eq!(corpus.len(), docs);
        corpus
    }

    #[test]
    fn evicting_prepared_documents_keeps_each_pair_its_own() {
        let corpus = corpus(7);
        // Every ordered pair, so that a pair's first document is often cached behind
        // older entries that its second document's arrival evicts.
        let n = corpus.len() as u32;
        let pairs: Vec<(u32, u32)> = (0..n)
            .flat_map(|a| (0..n).filter(move |&b| b != a).map(move |b| (a, b)))
            .collect();
        let settings = PassageSettings::default();
        let room = Room {
            spec: ShingleSpec::Words(5),
            budget: 512 << 20,
            table: MIN_TABLE,
            temp_dir: None,
        };
        let run = |budget| {
            align_pairs_cached(&corpus, &pairs, &room, &settings, Ticker::silent(), budget).unwrap()
        };
        let expected = run(CACHE_BYTES);
        let text = |d| {
            corpus
                .text(d, &mut Vec::new())
                .unwrap()
                .unwrap()
                .to_string()
        };
        for (&(a, b), found) in pairs.iter().zip(&expected) {
            let alone = passages_between(&text(a), &text(b), &settings);
            assert!(!alone.is_empty());
            assert_eq!(found.passages, alone, "pair {a}, {b}");
        }
        // From one entry's size (every pair evicts) to a few.
        for budget in [0, 48 * 300, 48 * 700, 48 * 1200] {
            assert!(run(budget) == expected, "cache budget {budget}");
        }
    }

    #[test]
    fn spilled_passages_and_counting_by_parts_change_nothing() {
        let corpus = corpus(12);
        let n = corpus.len() as u32;
        let pairs: Vec<(u32, u32)> = (0..n)
            .flat_map(|a| (a + 1..n).map(move |b| (a, b)))
            .collect();
        // Documents overlap in runs of at least 3: much of their text is "boilerplate".
        let settings = PassageSettings {
            boilerplate_docs: 3,
            ..PassageSettings::default()
        };
        let room = |budget, table| Room {
            spec: ShingleSpec::Words(5),
            budget,
            table,
            temp_dir: None,
        };
        let run = |room: &Room| {
            align_pairs_cached(
                &corpus,
                &pairs,
                room,
                &settings,
                Ticker::silent(),
                CACHE_BYTES,
            )
            .unwrap()
        };
        let expected = run(&room(512 << 20, MIN_TABLE));
        let all = || expected.iter().flat_map(|p| &p.passages);
        assert!(
            all().any(|p| p.boilerplate.is_some()),
            "boilerplate is marked"
        );
        assert!(all().any(|p| p.boilerplate.is_none()), "and story text");
        // Passages spilled after a few pairs; shingles counted a few at a time.
        for (budget, table) in [(64, MIN_TABLE), (512 << 20, 40), (64, 9)] {
            assert!(
                run(&room(budget, table)) == expected,
                "budget {budget}, table {table}"
            );
        }

        // The frequencies themselves: the same by parts, and only the common ones kept.
        let mut worker = Worker::new(settings, CACHE_BYTES);
        let mut store = FoundStore::new(64, None);
        for &pair in &pairs {
            let found = worker
                .found(&corpus, pair, ShingleSpec::Words(5), true, |e| {
                    Error::io("test", e)
                })
                .unwrap();
            store.push(&found).unwrap();
        }
        assert!(store.bytes().1 > 0, "the found passages spilled");
        let each = |f: &mut dyn FnMut(&Windows)| store.each_windows(f);
        let count =
            |table| boilerplate::DocumentFrequencies::count(&corpus, &each, 4, 3, table).unwrap();
        let whole = count(MIN_TABLE);
        assert_eq!(
            whole.parts(),
            2,
            "the samples, then the edges, in one part each"
        );
        assert!(!whole.counted().is_empty());
        assert!(whole.counted().iter().all(|&(_, n)| n >= 3));
        for table in [9, 40] {
            let parts = count(table);
            assert!(parts.parts() > 2, "table {table}: counted by parts");
            assert_eq!(parts.counted(), whole.counted(), "table {table}");
        }
    }
}
