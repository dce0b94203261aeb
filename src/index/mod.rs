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
//! one cluster. Every such bucket is reported. Identical copies share a bucket in every
//! band, so a large bucket (oversized, or of at least 32 members) whose
//! members equal another band's is expanded once: its pairs are not gathered band after
//! band.
//!
//! Exact copies (equal shingle sets) in a group larger than the cap would still give
//! `copies × (cap − 1)` pairs of Jaccard 1. Only the group's first member in id order is
//! banded; every other member is paired with it alone (a star, `copies − 1` pairs), which
//! keeps them one cluster. Groups at or below the cap are banded as any document.

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

/// Documents with equal shingle sets, more of them than the bucket cap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyGroup {
    /// The members in id order; the first is the one banded, the others are paired with it.
    pub members: Vec<u32>,
}

/// Buckets of at least this many members are expanded after all bands are in, once per
/// distinct membership: copies fill the same bucket in every band, and gathering its
/// `n(n − 1)/2` pairs band after band would hold them `bands` times over. Smaller buckets
/// (almost all of them) are paired where they are found, without a list of members to
/// allocate: 32 members are 496 pairs, where the list's cost is already small beside them.
const SHARED_BUCKET_MIN: usize = 32;

/// Candidate pairs from LSH.
#[derive(Debug, Default)]
pub struct Candidates {
    /// Distinct pairs `(a, b)` of document indices with `a < b`, sorted.
    pub pairs: Vec<(u32, u32)>,
    /// Buckets that exceeded the cap, largest first.
    pub oversized: Vec<OversizedBucket>,
    /// Groups of exact copies over the cap, paired as stars; largest first.
    pub copies: Vec<CopyGroup>,
    /// Pairs gathered from the buckets before duplicates were removed: what the candidate
    /// lists held at their largest.
    pub gathered: u64,
}

/// Finds candidate pairs among `docs` (indices into `corpus`), exact copies over the cap
/// paired as stars (see the module doc).
///
/// `rank[doc]` orders documents by id (see [`Corpus::id_ranks`]); `ticker` is told of each
/// finished band, and bands not yet begun are skipped once it says the run is stopping.
/// Fails only if a spilled shingle set cannot be read back.
pub fn candidate_pairs(
    corpus: &Corpus,
    docs: &[u32],
    params: LshParams,
    bucket_cap: usize,
    rank: &[u32],
    ticker: Ticker<'_>,
) -> std::io::Result<Candidates> {
    let bucket_cap = bucket_cap.max(2);
    let copies = copy_groups(corpus, docs, bucket_cap, rank)?;
    let mut banded = docs.to_vec();
    if !copies.is_empty() {
        let mut starred = vec![false; corpus.len()];
        for g in &copies {
            for &d in &g.members[1..] {
                starred[d as usize] = true;
            }
        }
        banded.retain(|&d| !starred[d as usize]);
    }
    let mut found = candidate_pairs_of(
        &|d| corpus.signature(d),
        corpus.num_perm(),
        &banded,
        params,
        bucket_cap,
        rank,
        &|_, _| true,
        ticker,
    );
    if !copies.is_empty() {
        // A starred member is in no other pair: the star adds new pairs only.
        for g in &copies {
            let first = g.members[0];
            found
                .pairs
                .extend(g.members[1..].iter().map(|&d| (first.min(d), first.max(d))));
            found.gathered += g.members.len() as u64 - 1;
        }
        found.pairs.par_sort_unstable();
    }
    found.copies = copies;
    Ok(found)
}

/// The groups of `docs` with equal shingle sets that are larger than `cap`, largest
/// first (then by first member's id). Equal sets have equal signatures, so only runs of
/// equal signatures over the cap are looked at; within them sets are grouped by a hash and
/// compared in full with the group's first member, so a hash collision never joins two.
/// (`neardup link` finds a distributed run's groups with it too, from the members' sets.)
pub(crate) fn copy_groups(
    corpus: &Corpus,
    docs: &[u32],
    cap: usize,
    rank: &[u32],
) -> std::io::Result<Vec<CopyGroup>> {
    let hash = |words: &[u8]| xxh3_64_with_seed(words, 0);
    let mut keyed: Vec<(u64, u32, u32)> = docs
        .par_iter()
        .map(|&d| {
            let signature = corpus.signature(d);
            (hash(bytemuck::cast_slice(signature)), rank[d as usize], d)
        })
        .collect();
    keyed.par_sort_unstable();
    let mut groups = Vec::new();
    let (mut buf, mut first_set) = (Vec::new(), Vec::new());
    for run in keyed.chunk_by(|x, y| x.0 == y.0) {
        if run.len() <= cap {
            continue;
        }
        let mut by_set = Vec::with_capacity(run.len());
        for &(_, r, d) in run {
            by_set.push((hash(bytemuck::cast_slice(corpus.set(d, &mut buf)?)), r, d));
        }
        by_set.sort_unstable();
        for same_hash in by_set.chunk_by(|x, y| x.0 == y.0) {
            if same_hash.len() <= cap {
                continue;
            }
            let first = same_hash[0].2;
            first_set.clear();
            first_set.extend_from_slice(corpus.set(first, &mut buf)?);
            let mut members = vec![first];
            for &(_, _, d) in &same_hash[1..] {
                if corpus.signature(d) == corpus.signature(first)
                    && corpus.set(d, &mut buf)? == first_set.as_slice()
                {
                    members.push(d);
                }
            }
            if members.len() > cap {
                groups.push(CopyGroup { members });
            }
        }
    }
    groups.sort_by(|x, y| {
        y.members
            .len()
            .cmp(&x.members.len())
            .then(rank[x.members[0] as usize].cmp(&rank[y.members[0] as usize]))
    });
    Ok(groups)
}

/// [`candidate_pairs`] over any signatures: `signature(doc)` gives a document's
/// `num_perm` slots (the story level bands its own weighted signatures this way).
///
/// Only pairs for which `keep(a, b)` holds are listed. It is asked before pairs are
/// gathered (inside each small bucket, while its members are in cache; for a large or
/// oversized bucket, as its membership is expanded): with short bands, bucket mates are
/// mostly far apart, and keeping them all first would cost memory in proportion to every
/// collision (hundreds of millions of pairs for a million documents). `keep` must depend
/// on the pair alone (it may be asked once per shared band).
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
    let mut per_band: Vec<BandPairs> = (0..params.bands)
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
    let mut memberships: Vec<Vec<u32>> = Vec::new();
    for band in &mut per_band {
        oversized.append(&mut band.oversized);
        memberships.append(&mut band.memberships);
    }
    // Copies make the same bucket in every band: expand each membership once (in full
    // within the cap, windowed over it).
    memberships.par_sort_unstable();
    memberships.dedup();
    let expanded: Vec<Vec<u64>> = memberships
        .par_iter()
        .map(|members| {
            let mut pairs = Vec::new();
            window_pairs(members, bucket_cap, keep, &mut pairs);
            pairs
        })
        .collect();
    drop(memberships);
    let total = per_band.iter().map(|b| b.pairs.len()).sum::<usize>()
        + expanded.iter().map(Vec::len).sum::<usize>();
    let mut packed = Vec::with_capacity(total);
    for pairs in per_band.into_iter().map(|b| b.pairs).chain(expanded) {
        packed.extend_from_slice(&pairs);
    }
    let gathered = packed.len() as u64;
    packed.par_sort_unstable();
    packed.dedup();
    oversized.sort_by(|a, b| b.size.cmp(&a.size).then(a.band.cmp(&b.band)));
    Candidates {
        pairs: packed
            .into_iter()
            .map(|p| ((p >> 32) as u32, p as u32))
            .collect(),
        oversized,
        copies: Vec::new(),
        gathered,
    }
}

/// One band's pairs from its small buckets, its oversized buckets (reported), and the
/// members in id order of its large buckets, expanded once all bands are in (oversized
/// ones windowed).
#[derive(Default)]
struct BandPairs {
    pairs: Vec<u64>,
    oversized: Vec<OversizedBucket>,
    memberships: Vec<Vec<u32>>,
}

/// Pairs each of `members` (in id order) with its next `cap − 1`, as packed `(a, b)`: all
/// pairs when there are no more than `cap`.
fn window_pairs(
    members: &[u32],
    cap: usize,
    keep: &(dyn Fn(u32, u32) -> bool + Sync),
    out: &mut Vec<u64>,
) {
    for (i, &a) in members.iter().enumerate() {
        for &b in &members[i + 1..i.saturating_add(cap).min(members.len())] {
            let (a, b) = if a < b { (a, b) } else { (b, a) };
            if keep(a, b) {
                out.push((u64::from(a) << 32) | u64::from(b));
            }
        }
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
) -> BandPairs {
    let mut keyed: Vec<(u64, u32)> = docs
        .iter()
        .map(|&d| (band_key(signature(d), params, band), d))
        .collect();
    keyed.sort_unstable();
    let mut out = BandPairs::default();
    for bucket in keyed.chunk_by(|a, b| a.0 == b.0) {
        if bucket.len() < 2 {
            continue;
        }
        if bucket.len() < SHARED_BUCKET_MIN.min(cap.saturating_add(1)) {
            for (i, &(_, a)) in bucket.iter().enumerate() {
                for &(_, b) in &bucket[i + 1..] {
                    let (a, b) = if a < b { (a, b) } else { (b, a) };
                    if keep(a, b) {
                        out.pairs.push((u64::from(a) << 32) | u64::from(b));
                    }
                }
            }
            continue;
        }
        let mut members: Vec<u32> = bucket.iter().map(|&(_, d)| d).collect();
        members.sort_unstable_by_key(|&d| rank[d as usize]);
        if members.len() <= cap {
            out.memberships.push(members);
            continue;
        }
        out.oversized.push(OversizedBucket {
            band,
            size: members.len(),
            sample: members.iter().take(5).copied().collect(),
        });
        out.memberships.push(members);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ClusterMode;
    use crate::input::InputSpec;
    use crate::pipeline::{Outcome, PipelineBuilder};
    use crate::progress::Silent;
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

    #[test]
    fn identical_oversized_buckets_are_windowed_once() {
        // 30 equal signatures make one oversized bucket in each of the 3 bands: its window
        // (each member with its next 4) is gathered once, not once per band.
        let k = 6;
        let signatures = vec![7u32; 30 * k];
        let found = pairs_of(&signatures, k, 5, &|_, _| true);
        let window: usize = (0..30).map(|i| (29 - i).min(4)).sum();
        assert_eq!(found.oversized.len(), 3);
        assert_eq!(found.pairs.len(), window);
        assert_eq!(found.gathered, window as u64);
    }

    #[test]
    fn a_cap_of_any_size_pairs_every_bucket_in_full() {
        // A cap meant as "no cap" (the largest number) must not overflow.
        let k = 6;
        let signatures = vec![7u32; 40 * k];
        for cap in [usize::MAX, usize::MAX - 16, 1 << 40] {
            let found = pairs_of(&signatures, k, cap, &|_, _| true);
            assert_eq!(found.pairs.len(), 780);
            assert!(found.oversized.is_empty());
        }
    }

    #[test]
    fn identical_large_buckets_are_expanded_once() {
        // 40 equal signatures make one bucket within the cap in each of the 3 bands: its
        // 780 pairs are gathered once, not once per band (fails when gathered per band).
        let k = 6;
        let signatures = vec![7u32; 40 * k];
        let found = pairs_of(&signatures, k, 100, &|_, _| true);
        const { assert!(40 >= SHARED_BUCKET_MIN) };
        assert!(found.oversized.is_empty());
        assert_eq!(found.pairs.len(), 780);
        assert_eq!(found.gathered, 780);
    }

    /// The outcome of a run at `--bucket-cap 10` over `records` (id, text, date).
    fn run(records: &[(String, &str, Option<&str>)], mode: ClusterMode) -> Outcome {
        let mut bytes = String::new();
        for (id, text, date) in records {
            let mut r = serde_json::json!({"id": id, "text": text});
            if let Some(date) = date {
                r["date"] = serde_json::json!(date);
            }
            bytes.push_str(&format!("{r}\n"));
        }
        let input = InputSpec::Bytes {
            name: "copies.jsonl".into(),
            bytes: bytes.into_bytes().into(),
        };
        PipelineBuilder::new()
            .bucket_cap(10)
            .cluster_mode(mode)
            .build()
            .unwrap()
            .run(&[input], &Silent)
            .unwrap()
    }

    const STUB: &str = "Subscribe today to read the full story and every other article on our site";
    const NEAR: &str =
        "Subscribe today to read the full story and every other article on our site now";

    #[test]
    fn copies_over_the_cap_are_one_star() {
        // 40 copies: 39 pairs with the first (not 40 × 9 window pairs), one cluster; a
        // group of 8 copies (within the cap) keeps all its 28 pairs.
        let mut records: Vec<(String, &str, Option<&str>)> =
            (0..40).map(|i| (format!("c{i:02}"), STUB, None)).collect();
        let other = "Markets fell sharply on Monday as investors weighed the central bank outlook";
        records.extend((0..8).map(|i| (format!("o{i}"), other, None)));
        let out = run(&records, ClusterMode::Connected);
        assert_eq!(out.copies.len(), 1);
        let members = &out.copies[0].members;
        assert_eq!(members.len(), 40);
        assert_eq!(out.corpus.id(members[0]), "c00");
        assert_eq!(out.pairs.len(), 39 + 28);
        assert!(out.pairs.iter().all(|p| p.jaccard == 1.0));
        assert!(out.oversized.is_empty(), "no bucket is left over the cap");
        let sizes: Vec<usize> = out.clusters.iter().map(|c| c.members.len()).collect();
        assert_eq!(sizes, [40, 8]);
    }

    #[test]
    fn leader_mode_moves_a_star_as_one() {
        // The earliest copy leads, although the star's centre is the first in id order;
        // a near-copy dated earlier still takes every copy, as it would every fully
        // paired one.
        let mut records: Vec<(String, &str, Option<&str>)> = (0..30)
            .map(|i| (format!("c{i:02}"), STUB, Some("2024-05-02")))
            .collect();
        records[17].2 = Some("2024-05-01");
        let out = run(&records, ClusterMode::Leader);
        assert_eq!(out.clusters.len(), 1);
        assert_eq!(out.clusters[0].members.len(), 30);
        assert_eq!(out.corpus.id(out.clusters[0].representative), "c17");

        records.push(("near".into(), NEAR, Some("2024-04-30")));
        let out = run(&records, ClusterMode::Leader);
        assert_eq!(out.clusters.len(), 1);
        assert_eq!(out.clusters[0].members.len(), 31);
        assert_eq!(out.corpus.id(out.clusters[0].representative), "near");
    }

    proptest! {
        // Asking `keep` inside the buckets gives exactly the unfiltered candidates filtered
        // afterwards, capped buckets and buckets expanded after the bands (32 members or
        // more) included, and reports the same oversized buckets.
        #[test]
        fn keep_is_the_unfiltered_result_filtered(
            slots in proptest::collection::vec(0u32..3, 6..600),
            cap in prop_oneof![2usize..6, 32usize..120],
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

        // Within the cap, the candidates are every pair sharing a band key, whether a
        // bucket's pairs are gathered in its band or expanded later (buckets of 32 or more).
        #[test]
        fn within_the_cap_every_pair_sharing_a_band_is_a_candidate(
            slots in proptest::collection::vec(0u32..2, 6..600),
        ) {
            let k = 6;
            let signatures = &slots[..slots.len() / k * k];
            let n = signatures.len() / k;
            let found = pairs_of(signatures, k, n.max(2), &|_, _| true);
            let band = |d: usize, b: usize| &signatures[d * k + 2 * b..d * k + 2 * b + 2];
            let mut expected = Vec::new();
            for a in 0..n {
                for b in a + 1..n {
                    if (0..3).any(|i| band(a, i) == band(b, i)) {
                        expected.push((a as u32, b as u32));
                    }
                }
            }
            prop_assert!(found.oversized.is_empty());
            prop_assert_eq!(found.pairs, expected);
        }
    }
}
