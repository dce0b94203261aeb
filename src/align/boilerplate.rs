//! Boilerplate: passage stretches whose shingles recur across many documents.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::ops::Range;

use rayon::prelude::*;

use crate::corpus::Corpus;
use crate::shingle::{ShingleSpec, char_shingles, word_shingle_hash};
use crate::text::{Token, Tokenizer};

use super::{Found, Passage, PassageSettings, Side, union_len};

/// One of the pipeline's shingles inside a passage, with the passage tokens it covers
/// (relative to the passage's first token, `last` included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub hash: u64,
    pub first: u32,
    pub last: u32,
}

/// The pipeline's shingles lying wholly inside a passage (on the first document's side),
/// with the same hashes as in its shingle set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Windows {
    /// Word shingles of `n` tokens over the passage's token hashes, hashed when asked
    /// for (most are never needed).
    Words { n: usize, tokens: Vec<u64> },
    /// Character shingles, with the tokens each covers.
    Chars(Vec<Window>),
}

impl Windows {
    /// No shingle (the passage is shorter than one).
    pub fn none() -> Self {
        Windows::Chars(Vec::new())
    }

    pub fn len(&self) -> usize {
        match self {
            Windows::Words { n, tokens } => (tokens.len() + 1).saturating_sub(*n),
            Windows::Chars(w) => w.len(),
        }
    }

    /// The hash of window `i`.
    pub fn hash(&self, i: usize) -> u64 {
        match self {
            Windows::Words { n, tokens } => word_shingle_hash(&tokens[i..i + n]),
            Windows::Chars(w) => w[i].hash,
        }
    }

    /// The first and last passage token of window `i`.
    pub fn span(&self, i: usize) -> (usize, usize) {
        match self {
            Windows::Words { n, .. } => (i, i + n - 1),
            Windows::Chars(w) => (w[i].first as usize, w[i].last as usize),
        }
    }
}

/// The shingles (of the pipeline's spec) lying wholly inside `tokens[range]` of the first
/// document, the same hashes as in its shingle set.
pub(crate) fn windows(
    spec: ShingleSpec,
    text: &str,
    tokens: &[Token],
    hashes: &[u64],
    range: Range<usize>,
    tokenizer: &mut Tokenizer,
) -> Windows {
    match spec {
        ShingleSpec::Words(n) => {
            if hashes.len() <= n {
                // The document is one shingle of all its tokens.
                if range == (0..hashes.len()) {
                    return Windows::Words {
                        n: hashes.len(),
                        tokens: hashes.to_vec(),
                    };
                }
                return Windows::none();
            }
            if range.len() < n {
                return Windows::none();
            }
            Windows::Words {
                n,
                tokens: hashes[range].to_vec(),
            }
        }
        ShingleSpec::Chars(n) => {
            // The passage's normalized text, built as the shingler builds a document's, with
            // the passage token each character belongs to (a space goes with the token before).
            let from = tokens[range.start].start as usize;
            let to = tokens[range.end - 1].end as usize;
            let mut normalized = String::new();
            let mut owner: Vec<u32> = Vec::new();
            let (mut count, mut prev_end) = (0u32, 0usize);
            tokenizer.for_each(&text[from..to], |start, end, norm| {
                if !normalized.is_empty() && start > prev_end {
                    normalized.push(' ');
                    owner.push(count - 1);
                }
                normalized.push_str(norm);
                owner.extend(std::iter::repeat_n(count, norm.chars().count()));
                prev_end = end;
                count += 1;
            });
            if count as usize != range.len() || owner.len() <= n {
                return Windows::none();
            }
            let (mut starts, mut hashes) = (Vec::new(), Vec::new());
            char_shingles(&normalized, n, &mut starts, &mut hashes);
            Windows::Chars(
                hashes
                    .iter()
                    .enumerate()
                    .map(|(c, &hash)| Window {
                        hash,
                        first: owner[c],
                        last: owner[c + n - 1],
                    })
                    .collect(),
            )
        }
    }
}

/// Shingle hashes are already uniformly spread: hash them as themselves.
#[derive(Default)]
pub(crate) struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = x;
    }
}

/// Every how many windows the first counting pass samples: a run of consecutive common
/// windows over at least `min_words` tokens always holds a sampled window. For character
/// shingles (several windows per token) every window is counted.
pub(crate) fn sample_stride(spec: ShingleSpec, min_words: usize) -> usize {
    match spec {
        ShingleSpec::Words(n) => (min_words + 1).saturating_sub(n).max(1),
        ShingleSpec::Chars(_) => 1,
    }
}

pub(crate) type IdentityMap<V> = HashMap<u64, V, BuildHasherDefault<Identity>>;

/// Calls its argument with the windows of every passage, in the same order each time.
pub(crate) type EachWindows<'a> = &'a dyn Fn(&mut dyn FnMut(&Windows)) -> io::Result<()>;

/// Calls its argument with every shingle hash to count, in the same order each time.
type EachHash<'a> = &'a dyn Fn(&mut dyn FnMut(u64)) -> io::Result<()>;

/// Number of documents of a corpus whose shingle set holds each of some shingles, and
/// which windows of the passages are common.
#[derive(Debug, Default)]
pub(crate) struct DocumentFrequencies {
    counts: IdentityMap<u32>,
    stride: usize,
    threshold: u64,
    /// Parts of the hash space counted, each a read of the shingle sets.
    parts: usize,
}

impl DocumentFrequencies {
    /// Counts the windows of the passages (`each` calls its argument with the windows of
    /// every passage) in two passes: first every `stride`-th window of each passage (the
    /// sampled ones), over the whole corpus; then, around each run of common sampled
    /// windows, the windows up to the sampled neighbours that are not common, over the
    /// documents that carry a common sampled window. Windows between two common sampled
    /// windows are not counted: they are taken as common (see
    /// [`DocumentFrequencies::common`]).
    ///
    /// Only the counts of common windows are kept (the others are never asked for), and
    /// each pass counts the hash space part by part so that no part's table holds more
    /// than `table` shingles (see [`count_parts`]): the memory is bounded by `table`
    /// whatever the number of passages.
    pub fn count(
        corpus: &Corpus,
        each: EachWindows<'_>,
        stride: usize,
        threshold: u64,
        table: usize,
    ) -> io::Result<Self> {
        let stride = stride.max(1);
        let sampled = |f: &mut dyn FnMut(u64)| {
            each(&mut |w: &Windows| {
                for i in (0..w.len()).step_by(stride) {
                    f(w.hash(i));
                }
            })
        };
        let (counts, parts) = count_parts(corpus, &sampled, None, threshold, table)?;
        let mut this = DocumentFrequencies {
            counts,
            stride,
            threshold,
            parts,
        };
        if stride > 1 && !this.counts.is_empty() {
            // Only the documents that carry a common sampled shingle are searched: the
            // recurring text around it is theirs.
            let (_, carriers) = count_in(corpus, index_of(this.counts.keys().copied()), None)?;
            let mut edges: Vec<u64> = Vec::new();
            each(&mut |w: &Windows| {
                let sampled: Vec<bool> = (0..w.len())
                    .step_by(stride)
                    .map(|i| this.counted_common(w.hash(i)))
                    .collect();
                for (k, _) in sampled.iter().enumerate().filter(|(_, c)| **c) {
                    let i = k * stride;
                    if k == 0 || !sampled[k - 1] {
                        edges.extend((i.saturating_sub(stride - 1)..i).map(|x| w.hash(x)));
                    }
                    if !sampled.get(k + 1).copied().unwrap_or(false) {
                        edges.extend((i + 1..(i + stride).min(w.len())).map(|x| w.hash(x)));
                    }
                }
            })?;
            // A sampled window counted uncommon over the corpus is counted again here if it
            // is an edge elsewhere: over fewer documents, it stays uncommon.
            edges.retain(|h| !this.counts.contains_key(h));
            edges.sort_unstable();
            edges.dedup();
            let all_edges = |f: &mut dyn FnMut(u64)| {
                edges.iter().for_each(|&h| f(h));
                Ok(())
            };
            let (more, parts) = count_parts(corpus, &all_edges, Some(&carriers), threshold, table)?;
            this.counts.extend(more);
            this.parts += parts;
        }
        Ok(this)
    }

    fn counted_common(&self, hash: u64) -> bool {
        u64::from(self.get(hash)) >= self.threshold
    }

    /// Which of a passage's windows are common: a sampled or an edge window when it
    /// occurs in at least `threshold` documents; a window between two common sampled
    /// windows always; any other window never (it was not counted).
    pub fn common(&self, windows: &Windows) -> Vec<bool> {
        let s = self.stride.max(1);
        let sampled: Vec<bool> = (0..windows.len())
            .step_by(s)
            .map(|i| self.counted_common(windows.hash(i)))
            .collect();
        (0..windows.len())
            .map(|i| {
                let k = i / s;
                if i % s == 0 {
                    return sampled[k];
                }
                let next = sampled.get(k + 1).copied().unwrap_or(false);
                match (sampled[k], next) {
                    (true, true) => true,
                    (false, false) => false,
                    _ => self.counted_common(windows.hash(i)),
                }
            })
            .collect()
    }

    /// Documents holding the shingle, when at least `threshold` do (0 if fewer do or it
    /// was not counted).
    pub fn get(&self, hash: u64) -> u32 {
        self.counts.get(&hash).copied().unwrap_or(0)
    }

    /// The common shingles and their counts, sorted.
    #[cfg(test)]
    pub fn counted(&self) -> Vec<(u64, u32)> {
        let mut all: Vec<(u64, u32)> = self.counts.iter().map(|(&h, &n)| (h, n)).collect();
        all.sort_unstable();
        all
    }

    /// Parts of the hash space counted.
    #[cfg(test)]
    pub fn parts(&self) -> usize {
        self.parts
    }
}

/// Bytes a counted shingle takes while its part of the hash space is counted: its slot in
/// the table (with the table's spare room and growth), its bits in the bitmap, and its
/// count in each thread's tallies.
pub(crate) fn bytes_per_counted() -> usize {
    48 + 8 * rayon::current_num_threads()
}

/// The part of the hash space a shingle falls in: bits 32 and up of its hash, reversed, so
/// that a part (a range of this key) fixes neither the low bits the table places it by,
/// nor the top bits of its tag and of the bitmap.
fn part_key(hash: u64) -> u64 {
    u64::from(((hash >> 32) as u32).reverse_bits())
}

/// Counts, over the documents `docs` of `corpus` (all of them when `None`), the documents
/// holding each shingle that `each` yields, and keeps the counts of at least `keep_from`.
///
/// The shingles are counted by parts of the hash space, each read again from `each`:
/// whole when their table holds at most `table` shingles, else in halves, quarters, … as
/// needed (at most 2^16 parts), so the table stays within `table` shingles. The counts do
/// not depend on the parts. Returns the counts and the number of parts.
fn count_parts(
    corpus: &Corpus,
    each: EachHash<'_>,
    docs: Option<&[u32]>,
    keep_from: u64,
    table: usize,
) -> io::Result<(IdentityMap<u32>, usize)> {
    const KEYS: u64 = 1 << 32;
    const FEWEST: u64 = KEYS >> 16;
    let mut out = IdentityMap::default();
    let mut parts = 0;
    let (mut from, mut width) = (0u64, KEYS);
    while from < KEYS {
        let to = (from + width).min(KEYS);
        let mut index: IdentityMap<u32> = HashMap::default();
        let mut over = false;
        each(&mut |h| {
            if over {
                return;
            }
            if (from..to).contains(&part_key(h)) {
                let next = index.len() as u32;
                index.entry(h).or_insert(next);
                over = index.len() > table && width > FEWEST;
            }
        })?;
        if over {
            width /= 2;
            continue;
        }
        let (counts, _) = count_in(corpus, index, docs)?;
        out.extend(
            counts
                .into_iter()
                .filter(|&(_, n)| u64::from(n) >= keep_from),
        );
        from = to;
        parts += 1;
    }
    Ok((out, parts))
}

/// A table numbering `hashes` (first come, first numbered).
fn index_of(hashes: impl Iterator<Item = u64>) -> IdentityMap<u32> {
    let mut index: IdentityMap<u32> = HashMap::default();
    for h in hashes {
        let next = index.len() as u32;
        index.entry(h).or_insert(next);
    }
    index
}

/// Counts, over the documents `docs` of `corpus` (all of them when `None`), the documents
/// holding each shingle of `index` (a table numbering them), and returns the counts and
/// (sorted) the documents holding any of them.
fn count_in(
    corpus: &Corpus,
    mut index: IdentityMap<u32>,
    docs: Option<&[u32]>,
) -> io::Result<(IdentityMap<u32>, Vec<u32>)> {
    if index.is_empty() {
        return Ok((IdentityMap::default(), Vec::new()));
    }
    // Most shingles of the corpus are not wanted: a bitmap on the top bits of the hash
    // (about 64 bits per wanted shingle, in the L2 cache for the usual sizes) turns most of
    // them away without a table probe.
    let bits = (index.len() * 64)
        .next_power_of_two()
        .clamp(1 << 16, 1 << 30);
    let shift = 64 - bits.trailing_zeros();
    let mut filter = vec![0u64; bits / 64];
    for &h in index.keys() {
        let bit = (h >> shift) as usize;
        filter[bit / 64] |= 1 << (bit % 64);
    }
    let maybe = |h: u64| {
        let bit = (h >> shift) as usize;
        filter[bit / 64] & (1 << (bit % 64)) != 0
    };
    let all: Vec<u32>;
    let docs = match docs {
        Some(d) => d,
        None => {
            all = (0..corpus.len() as u32).collect();
            &all
        }
    };
    let chunk = docs.len().div_ceil(rayon::current_num_threads() * 4).max(1);
    // Per chunk: counts per wanted slot, and the documents holding a wanted shingle.
    type Tally = (Vec<u32>, Vec<u32>);
    let (counts, mut holders) = docs
        .par_chunks(chunk)
        .map(|docs| -> io::Result<Tally> {
            let mut counts = vec![0u32; index.len()];
            let mut holders = Vec::new();
            let mut buf = Vec::new();
            for &doc in docs {
                let mut held = false;
                for &h in corpus.set(doc, &mut buf)? {
                    if maybe(h)
                        && let Some(&i) = index.get(&h)
                    {
                        counts[i as usize] += 1;
                        held = true;
                    }
                }
                if held {
                    holders.push(doc);
                }
            }
            Ok((counts, holders))
        })
        .try_reduce(
            || (vec![0u32; index.len()], Vec::new()),
            |mut x, y| {
                x.0.iter_mut().zip(y.0).for_each(|(x, y)| *x += y);
                x.1.extend(y.1);
                Ok(x)
            },
        )?;
    holders.sort_unstable();
    holders.dedup();
    for slot in index.values_mut() {
        *slot = counts[*slot as usize];
    }
    Ok((index, holders))
}

/// Splits the passages of a pair (documents of `words` words each) into story and
/// boilerplate stretches.
///
/// Recurring stretches are boilerplate only when both documents have at least
/// `min_words` words of their own beside them: recurring text that is all of a document
/// is a story syndicated many times, not a site's furniture.
pub(crate) fn split(
    found: Vec<Found>,
    frequencies: &DocumentFrequencies,
    settings: &PassageSettings,
    words: (u32, u32),
) -> Vec<Passage> {
    let cut: Vec<Option<Vec<Stretch>>> = found
        .iter()
        .map(|f| {
            let common = frequencies.common(&f.windows);
            let mut marked = vec![false; f.tokens.a.len()];
            // Runs of consecutive common windows over at least `min_words` tokens.
            let mut i = 0;
            while i < f.windows.len() {
                let j = i + common[i..].iter().take_while(|&&c| c == common[i]).count();
                let (first, last) = (f.windows.span(i).0, f.windows.span(j - 1).1);
                if common[i] && last + 1 - first >= settings.min_words {
                    marked[first..=last].fill(true);
                }
                i = j;
            }
            marked
                .contains(&true)
                .then(|| stretches(&marked, settings.min_words))
        })
        .collect();
    let boilerplate_ranges = |side_b: bool| -> Vec<Range<usize>> {
        found
            .iter()
            .zip(&cut)
            .filter_map(|(f, c)| c.as_ref().map(|c| (f, c)))
            .flat_map(|(f, c)| {
                c.iter().filter(|r| r.boilerplate).map(move |r| {
                    let range = f.tokens.a.start + r.tokens.start..f.tokens.a.start + r.tokens.end;
                    if side_b {
                        f.tokens.b_at(range.start)..f.tokens.b_at(range.end)
                    } else {
                        range
                    }
                })
            })
            .collect()
    };
    let own = |total: u32, ranges: Vec<Range<usize>>| {
        (total as usize).saturating_sub(union_len(ranges.into_iter()))
    };
    let keep = own(words.0, boilerplate_ranges(false)) >= settings.min_words
        && own(words.1, boilerplate_ranges(true)) >= settings.min_words;
    let mut out = Vec::with_capacity(found.len());
    for (f, cut) in found.into_iter().zip(cut) {
        let Some(runs) = cut.filter(|_| keep) else {
            out.push(Passage {
                a: f.a,
                b: f.b,
                edits: f.tokens.edits,
                boilerplate: None,
            });
            continue;
        };
        let common = frequencies.common(&f.windows);
        let len = f.tokens.a.len();
        let (a0, b0) = (f.tokens.a.start, f.tokens.b.start);
        for run in runs {
            let (from, to) = (a0 + run.tokens.start, a0 + run.tokens.end);
            let b_from = if run.tokens.start == 0 {
                b0
            } else {
                f.tokens.b_at(from)
            };
            let b_to = if run.tokens.end == len {
                f.tokens.b.end
            } else {
                f.tokens.b_at(to)
            };
            if b_to <= b_from {
                continue;
            }
            let documents = run.boilerplate.then(|| {
                // The fewest documents among the stretch's sampled windows (those were
                // counted over the whole corpus).
                (0..f.windows.len())
                    .step_by(frequencies.stride.max(1))
                    .filter(|&i| common[i] && run.tokens.contains(&f.windows.span(i).0))
                    .map(|i| u64::from(frequencies.get(f.windows.hash(i))))
                    .min()
                    .unwrap_or(settings.boilerplate_docs)
            });
            out.push(Passage {
                a: sub_side(&f.a_offsets, a0, from..to),
                b: sub_side(&f.b_offsets, b0, b_from..b_to),
                edits: f.tokens.edits_between(from, to),
                boilerplate: documents,
            });
        }
    }
    out.sort_by_key(|p| (p.a.start, p.b.start, p.a.end, p.b.end));
    out
}

/// The side covering tokens `range` (document indices), given the `(start, end)` byte
/// offsets of the passage's tokens from token `first` on.
fn sub_side(offsets: &[(u32, u32)], first: usize, range: Range<usize>) -> Side {
    Side {
        start: offsets[range.start - first].0,
        end: offsets[range.end - 1 - first].1,
        first_token: range.start as u32,
        words: range.len() as u32,
    }
}

/// A run of a passage's tokens, story or boilerplate.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stretch {
    tokens: Range<usize>,
    boilerplate: bool,
}

/// Cuts a passage into stretches by its boilerplate marks. A marked run shorter than
/// `min_words` is a common phrase, not boilerplate: it stays story text. Then a story
/// stretch shorter than `min_words` between or beside boilerplate joins it.
fn stretches(marked: &[bool], min_words: usize) -> Vec<Stretch> {
    let runs = |marks: &mut dyn Iterator<Item = bool>| {
        let mut runs: Vec<Stretch> = Vec::new();
        for (i, m) in marks.enumerate() {
            match runs.last_mut() {
                Some(r) if r.boilerplate == m => r.tokens.end = i + 1,
                _ => runs.push(Stretch {
                    tokens: i..i + 1,
                    boilerplate: m,
                }),
            }
        }
        runs
    };
    let mut long = marked.to_vec();
    for r in runs(&mut marked.iter().copied()) {
        if r.boilerplate && r.tokens.len() < min_words {
            long[r.tokens].fill(false);
        }
    }
    let mut out: Vec<Stretch> = Vec::new();
    for mut r in runs(&mut long.into_iter()) {
        if !r.boilerplate && r.tokens.len() < min_words {
            r.boilerplate = true;
        }
        match out.last_mut() {
            Some(last) if last.boilerplate == r.boilerplate => last.tokens.end = r.tokens.end,
            _ => out.push(r),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_story_stretches_join_the_boilerplate() {
        let m = |s: &str| s.chars().map(|c| c == 'B').collect::<Vec<_>>();
        let cut = |s: &str| -> Vec<(Range<usize>, bool)> {
            stretches(&m(s), 3)
                .into_iter()
                .map(|r| (r.tokens, r.boilerplate))
                .collect()
        };
        assert_eq!(cut("ssssBBBss"), [(0..4, false), (4..9, true)]);
        assert_eq!(
            cut("ssssBBBsss"),
            [(0..4, false), (4..7, true), (7..10, false)]
        );
        assert_eq!(cut("sBBBBs"), [(0..6, true)]);
        assert_eq!(cut("ssss"), [(0..4, false)]);
        // Marked runs shorter than the minimum are common phrases inside story text.
        assert_eq!(cut("ssssBBssss"), [(0..10, false)]);
        assert_eq!(
            cut("BBsssBBBsss"),
            [(0..5, false), (5..8, true), (8..11, false)]
        );
    }

    #[test]
    fn windows_between_common_samples_are_common() {
        // Stride 4; counted: the samples (0, 4, 8, 12) and the edges of the run 4..=8.
        let counts: IdentityMap<u32> = [
            (0, 1),
            (4, 30),
            (8, 25),
            (12, 2),
            (1, 0),
            (2, 21),
            (3, 22),
            (9, 20),
            (10, 3),
            (11, 1),
        ]
        .into_iter()
        .collect();
        let frequencies = DocumentFrequencies {
            counts,
            stride: 4,
            threshold: 20,
            parts: 1,
        };
        let windows = Windows::Chars(
            (0..14)
                .map(|h| Window {
                    hash: h,
                    first: h as u32,
                    last: h as u32 + 4,
                })
                .collect(),
        );
        let common: Vec<usize> = frequencies
            .common(&windows)
            .iter()
            .enumerate()
            .filter_map(|(i, &c)| c.then_some(i))
            .collect();
        // 5, 6, 7 are between two common samples (not counted); 13 is after the last,
        // uncommon sample and was not counted.
        assert_eq!(common, [2, 3, 4, 5, 6, 7, 8, 9]);
    }

    #[test]
    fn word_windows_match_the_shingler() {
        let text = "one two three four five six seven eight nine ten";
        let mut tokens = Vec::new();
        crate::text::tokenize(text, &mut tokens);
        let hashes: Vec<u64> = tokens.iter().map(|t| t.hash).collect();
        for spec in [ShingleSpec::Words(3), ShingleSpec::Chars(5)] {
            let mut set = Vec::new();
            crate::shingle::Shingler::new(spec).shingle(text, &mut set);
            let w = windows(spec, text, &tokens, &hashes, 2..8, &mut Tokenizer::new());
            assert!(w.len() > 0);
            for i in 0..w.len() {
                assert!(
                    set.contains(&w.hash(i)),
                    "{spec}: a window is one of the document's shingles"
                );
                let (first, last) = w.span(i);
                assert!(first <= last && last < 6);
            }
        }
    }
}
