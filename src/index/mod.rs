//! Candidate pairs by locality-sensitive hashing over MinHash signatures.
//!
//! Each band of `rows` signature slots is hashed to a key; documents with equal keys in any
//! band become candidate pairs. Bands are processed in parallel, each by sorting
//! `(key, document)` pairs, which is cache-friendly and gives the same result whatever the
//! thread count.
//!
//! A bucket larger than the cap (boilerplate, templated reports, mass copies) would yield a
//! quadratic number of pairs. Its members are instead ordered by id and each is paired only
//! with the next `cap − 1` members: linear in the bucket size, and copies still chain into
//! one cluster. Every such bucket is reported.

mod params;

pub use params::{
    DEFAULT_FN_WEIGHT, DEFAULT_FP_WEIGHT, LshParams, candidate_probability, optimal_params,
};

use rayon::prelude::*;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::corpus::Corpus;
use crate::progress::Ticker;

/// A bucket that exceeded the cap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OversizedBucket {
    /// The band it was found in.
    pub band: usize,
    /// Number of documents in the bucket.
    pub size: usize,
    /// The first few members, in id order.
    pub sample: Vec<u32>,
}

/// Candidate pairs from LSH.
#[derive(Debug, Default)]
pub struct Candidates {
    /// Distinct pairs `(a, b)` of document indices with `a < b`, sorted.
    pub pairs: Vec<(u32, u32)>,
    /// Buckets that exceeded the cap, largest first.
    pub oversized: Vec<OversizedBucket>,
}

/// Finds candidate pairs among `docs` (indices into `corpus`).
///
/// `rank[doc]` orders documents by id (see [`Corpus::id_ranks`]); `ticker` is told of each
/// finished band, and bands not yet begun are skipped once it says the run is stopping.
pub fn candidate_pairs(
    corpus: &Corpus,
    docs: &[u32],
    params: LshParams,
    bucket_cap: usize,
    rank: &[u32],
    ticker: Ticker<'_>,
) -> Candidates {
    candidate_pairs_of(
        &|d| corpus.signature(d),
        corpus.num_perm(),
        docs,
        params,
        bucket_cap,
        rank,
        &|_, _| true,
        ticker,
    )
}

/// [`candidate_pairs`] over any signatures: `signature(doc)` gives a document's
/// `num_perm` slots (the story level bands its own weighted signatures this way).
///
/// Only pairs for which `keep(a, b)` holds are listed. It is asked inside each bucket,
/// before pairs are gathered: with short bands, bucket mates are mostly far apart, and
/// keeping them all first would cost memory in proportion to every collision (hundreds of
/// millions of pairs for a million documents), while a bucket's members are still in
/// cache. `keep` must depend on the pair alone (it may be asked once per shared band).
#[allow(clippy::too_many_arguments)] // the banding settings, passed apart
pub fn candidate_pairs_of<'s>(
    signature: &(dyn Fn(u32) -> &'s [u32] + Sync),
    num_perm: usize,
    docs: &[u32],
    params: LshParams,
    bucket_cap: usize,
    rank: &[u32],
    keep: &(dyn Fn(u32, u32) -> bool + Sync),
    ticker: Ticker<'_>,
) -> Candidates {
    assert!(
        params.bands * params.rows <= num_perm,
        "bands × rows exceeds num_perm"
    );
    let bucket_cap = bucket_cap.max(2);
    let per_band: Vec<(Vec<u64>, Vec<OversizedBucket>)> = (0..params.bands)
        .into_par_iter()
        .map(|band| {
            if ticker.stopped() {
                return Default::default();
            }
            let out = band_pairs(signature, docs, params, band, bucket_cap, rank, keep);
            ticker.advance(1);
            out
        })
        .collect();
    let mut oversized = Vec::new();
    let total: usize = per_band.iter().map(|(p, _)| p.len()).sum();
    let mut packed = Vec::with_capacity(total);
    for (pairs, big) in per_band {
        packed.extend_from_slice(&pairs);
        oversized.extend(big);
    }
    packed.par_sort_unstable();
    packed.dedup();
    oversized.sort_by(|a, b| b.size.cmp(&a.size).then(a.band.cmp(&b.band)));
    Candidates {
        pairs: packed
            .into_iter()
            .map(|p| ((p >> 32) as u32, p as u32))
            .collect(),
        oversized,
    }
}

/// The key of one band of a signature.
#[inline]
pub fn band_key(signature: &[u32], params: LshParams, band: usize) -> u64 {
    let slots = &signature[band * params.rows..(band + 1) * params.rows];
    xxh3_64_with_seed(bytemuck::cast_slice(slots), band as u64)
}

fn band_pairs<'s>(
    signature: &(dyn Fn(u32) -> &'s [u32] + Sync),
    docs: &[u32],
    params: LshParams,
    band: usize,
    cap: usize,
    rank: &[u32],
    keep: &(dyn Fn(u32, u32) -> bool + Sync),
) -> (Vec<u64>, Vec<OversizedBucket>) {
    let mut keyed: Vec<(u64, u32)> = docs
        .iter()
        .map(|&d| (band_key(signature(d), params, band), d))
        .collect();
    keyed.sort_unstable();
    let mut pairs = Vec::new();
    let mut oversized = Vec::new();
    let mut members: Vec<u32> = Vec::new();
    for bucket in keyed.chunk_by(|a, b| a.0 == b.0) {
        if bucket.len() < 2 {
            continue;
        }
        let mut push = |a: u32, b: u32| {
            let (a, b) = if a < b { (a, b) } else { (b, a) };
            if keep(a, b) {
                pairs.push((u64::from(a) << 32) | u64::from(b));
            }
        };
        if bucket.len() <= cap {
            for (i, &(_, a)) in bucket.iter().enumerate() {
                for &(_, b) in &bucket[i + 1..] {
                    push(a, b);
                }
            }
            continue;
        }
        members.clear();
        members.extend(bucket.iter().map(|&(_, d)| d));
        members.sort_unstable_by_key(|&d| rank[d as usize]);
        for (i, &a) in members.iter().enumerate() {
            for &b in &members[i + 1..(i + cap).min(members.len())] {
                push(a, b);
            }
        }
        oversized.push(OversizedBucket {
            band,
            size: members.len(),
            sample: members.iter().take(5).copied().collect(),
        });
    }
    (pairs, oversized)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pairs_of(
        signatures: &[u32],
        k: usize,
        cap: usize,
        keep: &(dyn Fn(u32, u32) -> bool + Sync),
    ) -> Candidates {
        let docs: Vec<u32> = (0..(signatures.len() / k) as u32).collect();
        // Ranks reversed, so that id order and document order differ in capped buckets.
        let rank: Vec<u32> = docs.iter().rev().copied().collect();
        candidate_pairs_of(
            &|d| &signatures[d as usize * k..(d as usize + 1) * k],
            k,
            &docs,
            LshParams { bands: 3, rows: 2 },
            cap,
            &rank,
            keep,
            Ticker::silent(),
        )
    }

    proptest! {
        // Asking `keep` inside the buckets gives exactly the unfiltered candidates filtered
        // afterwards, capped buckets included, and reports the same oversized buckets.
        #[test]
        fn keep_is_the_unfiltered_result_filtered(
            slots in proptest::collection::vec(0u32..3, 6..240),
            cap in 2usize..6,
            modulus in 2u32..5,
        ) {
            let k = 6;
            let signatures = &slots[..slots.len() / k * k];
            let keep = |a: u32, b: u32| (a + 2 * b) % modulus != 0;
            let all = pairs_of(signatures, k, cap, &|_, _| true);
            let kept = pairs_of(signatures, k, cap, &keep);
            let expected: Vec<(u32, u32)> =
                all.pairs.iter().copied().filter(|&(a, b)| keep(a, b)).collect();
            prop_assert_eq!(kept.pairs, expected);
            prop_assert_eq!(kept.oversized, all.oversized);
        }
    }
}
