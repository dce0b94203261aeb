//! Verification of candidate pairs on their exact shingle sets.
//!
//! For each candidate: the signature estimate, exact Jaccard `|A∩B| / |A∪B|`, and the
//! containments `|A∩B| / |A|` (a in b) and `|A∩B| / |B|` (b in a).

use rayon::prelude::*;

use crate::corpus::Corpus;
use crate::progress::Ticker;
use crate::sketch::estimate_jaccard;

/// The scores of one candidate pair.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PairScore {
    /// First document (index into the corpus).
    pub a: u32,
    /// Second document.
    pub b: u32,
    /// Fraction of equal signature slots.
    pub estimated: f32,
    /// Exact Jaccard similarity of the shingle sets.
    pub jaccard: f32,
    /// Fraction of a's shingles that are in b.
    pub a_in_b: f32,
    /// Fraction of b's shingles that are in a.
    pub b_in_a: f32,
}

/// Scores every pair; the result is in the order of `pairs`.
///
/// `ticker` is told as pairs are done; once it says the run is stopping, chunks of pairs
/// not yet begun are left out of the result. Fails only if a spilled shingle set cannot
/// be read back.
pub fn score_pairs(
    corpus: &Corpus,
    pairs: &[(u32, u32)],
    ticker: Ticker<'_>,
) -> std::io::Result<Vec<PairScore>> {
    score_pairs_where(corpus, pairs, |_| true, ticker)
}

/// Scores every pair and keeps those `keep` accepts, in the order of `pairs`.
///
/// The scores are written into one buffer of a slot per pair and compacted in place, so
/// the memory is 24 bytes a pair at most whatever `keep` lets through (gathering chunks
/// and joining them would hold twice that when nearly all are kept). Otherwise as
/// [`score_pairs`].
pub fn score_pairs_where(
    corpus: &Corpus,
    pairs: &[(u32, u32)],
    keep: impl Fn(&PairScore) -> bool + Sync,
    ticker: Ticker<'_>,
) -> std::io::Result<Vec<PairScore>> {
    const CHUNK: usize = 4096;
    let unset = PairScore {
        a: 0,
        b: 0,
        estimated: 0.0,
        jaccard: 0.0,
        a_in_b: 0.0,
        b_in_a: 0.0,
    };
    let mut scores = vec![unset; pairs.len()];
    // Each chunk writes its kept scores at the front of its own slots.
    let kept: Vec<std::io::Result<usize>> = scores
        .par_chunks_mut(CHUNK)
        .zip(pairs.par_chunks(CHUNK))
        .map(|(out, chunk)| {
            if ticker.stopped() {
                return Ok(0);
            }
            let (mut buf_a, mut buf_b) = (Vec::new(), Vec::new());
            let mut cached_a = u32::MAX;
            let mut set_a: Vec<u64> = Vec::new();
            let mut len = 0;
            for &(a, b) in chunk {
                // Pairs are sorted by `a`: read each `a` set once per run.
                if a != cached_a {
                    set_a.clear();
                    set_a.extend_from_slice(corpus.set(a, &mut buf_a)?);
                    cached_a = a;
                }
                let set_b = corpus.set(b, &mut buf_b)?;
                let (sig_a, sig_b) = (corpus.signature(a), corpus.signature(b));
                let score = score_sets(a, b, &set_a, set_b, sig_a, sig_b);
                if keep(&score) {
                    out[len] = score;
                    len += 1;
                }
            }
            ticker.advance(chunk.len() as u64);
            Ok(len)
        })
        .collect();
    let mut end = 0;
    for (i, len) in kept.into_iter().enumerate() {
        let (start, len) = (i * CHUNK, len?);
        scores.copy_within(start..start + len, end);
        end += len;
    }
    scores.truncate(end);
    scores.shrink_to_fit();
    Ok(scores)
}

/// The scores of documents `a` and `b` from their shingle sets and signatures.
pub fn score_sets(
    a: u32,
    b: u32,
    set_a: &[u64],
    set_b: &[u64],
    signature_a: &[u32],
    signature_b: &[u32],
) -> PairScore {
    let common = intersection_size(set_a, set_b) as f64;
    let union = (set_a.len() + set_b.len()) as f64 - common;
    let ratio = |num: f64, den: f64| if den > 0.0 { (num / den) as f32 } else { 0.0 };
    PairScore {
        a,
        b,
        estimated: estimate_jaccard(signature_a, signature_b) as f32,
        jaccard: ratio(common, union),
        a_in_b: ratio(common, set_a.len() as f64),
        b_in_a: ratio(common, set_b.len() as f64),
    }
}

/// Every pair of documents whose exact Jaccard is at least `threshold`, found without
/// sketches or LSH: an inverted index over every shingle and a full overlap count for
/// every pair that shares one (pairs that share none have Jaccard 0).
///
/// The reference the pipeline's recall is measured against. Its cost grows with the
/// square of posting-list lengths: for checks, not for production. Pairs come sorted by
/// `(a, b)` with `a < b`, each with its exact Jaccard.
pub fn exhaustive_pairs(corpus: &Corpus, threshold: f64) -> std::io::Result<Vec<(u32, u32, f64)>> {
    let n = corpus.len();
    let mut buf = Vec::new();
    let mut postings: Vec<(u64, u32)> = Vec::new();
    let mut sizes = Vec::with_capacity(n);
    for doc in 0..n as u32 {
        let set = corpus.set(doc, &mut buf)?;
        sizes.push(set.len() as u32);
        postings.extend(set.iter().map(|&h| (h, doc)));
    }
    postings.par_sort_unstable();
    // For each document, the ranges of the postings of its shingles.
    let mut lists: Vec<(usize, usize)> = Vec::new();
    let mut doc_lists: Vec<Vec<u32>> = vec![Vec::new(); n];
    for group in postings.chunk_by(|x, y| x.0 == y.0) {
        let start = group.as_ptr() as usize - postings.as_ptr() as usize;
        let start = start / std::mem::size_of::<(u64, u32)>();
        let id = lists.len() as u32;
        lists.push((start, start + group.len()));
        for &(_, doc) in group {
            doc_lists[doc as usize].push(id);
        }
    }
    let found: Vec<Vec<(u32, u32, f64)>> = (0..n as u32)
        .into_par_iter()
        .map_init(
            || (vec![0u32; n], Vec::new()),
            |(counts, touched), a| {
                for &list in &doc_lists[a as usize] {
                    let (from, to) = lists[list as usize];
                    for &(_, b) in &postings[from..to] {
                        if b > a {
                            if counts[b as usize] == 0 {
                                touched.push(b);
                            }
                            counts[b as usize] += 1;
                        }
                    }
                }
                let mut out = Vec::new();
                for &b in touched.iter() {
                    let common = f64::from(counts[b as usize]);
                    let union =
                        f64::from(sizes[a as usize]) + f64::from(sizes[b as usize]) - common;
                    let jaccard = common / union;
                    if jaccard >= threshold {
                        out.push((a, b, jaccard));
                    }
                    counts[b as usize] = 0;
                }
                touched.clear();
                out.sort_unstable_by_key(|p| p.1);
                out
            },
        )
        .collect();
    Ok(found.into_iter().flatten().collect())
}

/// Size of the intersection of two sorted, deduplicated slices.
///
/// A linear merge; when one side is much smaller, a galloping search over the larger.
pub fn intersection_size(a: &[u64], b: &[u64]) -> usize {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if small.is_empty() {
        return 0;
    }
    if large.len() / small.len() >= 32 {
        let mut rest = large;
        let mut count = 0;
        for &x in small {
            match gallop(rest, x) {
                Ok(i) => {
                    count += 1;
                    rest = &rest[i + 1..];
                }
                Err(i) => rest = &rest[i..],
            }
            if rest.is_empty() {
                break;
            }
        }
        return count;
    }
    let (mut i, mut j, mut count) = (0, 0, 0);
    while i < small.len() && j < large.len() {
        let (x, y) = (small[i], large[j]);
        count += usize::from(x == y);
        i += usize::from(x <= y);
        j += usize::from(y <= x);
    }
    count
}

/// Exponential then binary search for `x` in sorted `s`.
fn gallop(s: &[u64], x: u64) -> Result<usize, usize> {
    let mut hi = 1;
    while hi < s.len() && s[hi - 1] < x {
        hi *= 2;
    }
    let lo = hi / 2;
    let hi = hi.min(s.len());
    s[lo..hi]
        .binary_search(&x)
        .map(|i| i + lo)
        .map_err(|i| i + lo)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    proptest! {
        #[test]
        fn intersection_matches_btreeset(
            a in proptest::collection::btree_set(0u64..500, 0..200),
            b in proptest::collection::btree_set(0u64..500, 0..20),
        ) {
            let va: Vec<u64> = a.iter().copied().collect();
            let vb: Vec<u64> = b.iter().copied().collect();
            let expected = a.intersection(&b).count();
            prop_assert_eq!(intersection_size(&va, &vb), expected);
            prop_assert_eq!(intersection_size(&vb, &va), expected);
        }
    }

    #[test]
    fn kept_scores_are_the_filtered_scores_in_order_across_chunks() {
        // Sets of 1..=40 of the first numbers: J(i, j) = min/max, so a cut keeps a pattern
        // that differs from chunk to chunk of 4096 pairs.
        let dir = tempfile::tempdir().unwrap();
        let lines: String = (1..=40)
            .map(|n| {
                let text: Vec<String> = (0..n).map(|w| format!("w{w}")).collect();
                serde_json::json!({"id": format!("d{n}"), "text": text.join(" ")}).to_string()
                    + "\n"
            })
            .collect();
        let path = dir.path().join("docs.jsonl");
        std::fs::write(&path, lines).unwrap();
        let pipeline = crate::PipelineBuilder::new()
            .shingle(crate::shingle::ShingleSpec::Words(1))
            .build()
            .unwrap();
        let (corpus, _) = pipeline
            .fingerprint_inputs(
                &[crate::input::InputSpec::Path(path)],
                &crate::progress::Silent,
            )
            .unwrap();
        let n = corpus.len() as u32;
        let pairs: Vec<(u32, u32)> = (0..n)
            .flat_map(|a| (0..n).map(move |b| (a, b)))
            .cycle()
            .take(10_000)
            .collect();
        // The reference scores each pair on its own, outside any buffer.
        let (mut buf_a, mut buf_b) = (Vec::new(), Vec::new());
        let all: Vec<PairScore> = pairs
            .iter()
            .map(|&(a, b)| {
                let set_a = corpus.set(a, &mut buf_a).unwrap();
                let set_b = corpus.set(b, &mut buf_b).unwrap();
                score_sets(a, b, set_a, set_b, corpus.signature(a), corpus.signature(b))
            })
            .collect();
        assert_eq!(score_pairs(&corpus, &pairs, Ticker::silent()).unwrap(), all);
        for cut in [0.0, 0.3, 0.77, 1.0, 1.5] {
            let kept =
                score_pairs_where(&corpus, &pairs, |p| p.jaccard >= cut, Ticker::silent()).unwrap();
            let expected: Vec<PairScore> =
                all.iter().filter(|p| p.jaccard >= cut).copied().collect();
            assert_eq!(kept, expected, "cut {cut}");
        }
    }

    #[test]
    fn intersection_edge_cases() {
        let big: Vec<u64> = (0..10_000).map(|x| x * 2).collect();
        assert_eq!(intersection_size(&[], &big), 0);
        assert_eq!(intersection_size(&[0, 19_998, 19_999], &big), 2);
        assert_eq!(intersection_size(&[5], &[5]), 1);
        let s: BTreeSet<u64> = [1, 2, 3].into();
        let v: Vec<u64> = s.into_iter().collect();
        assert_eq!(intersection_size(&v, &v), 3);
    }
}
