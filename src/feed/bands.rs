//! In-memory LSH band tables of a feed index, kept compact for millions of articles.
//!
//! Each band holds `(fingerprint, article)` entries, where the fingerprint is the high 32
//! bits of the article's 64-bit band key: 8 bytes per article per band. Two articles with
//! equal fingerprints are only *probably* in the same bucket; the index confirms every
//! candidate against the full key recomputed from its stored signature, so the candidate
//! sets are exactly those of the batch pipeline.
//!
//! A band is a sorted base array (found through a directory on the fingerprint's top bits:
//! one read and a short scan) plus a hash-chained delta of recent additions. A delta that
//! outgrows an eighth of its base is merged into it; at most one band is merged per
//! addition, so the cost of a merge is spread instead of stalling one article.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Smallest delta that triggers a merge.
const MIN_DELTA: usize = 4096;
/// End of a delta chain.
const NONE: u32 = u32::MAX;

/// Hashes an already uniformly distributed `u32` by one multiplication (the table uses
/// the top bits, which a bare `u32` would leave at zero).
#[derive(Default)]
struct SpreadHasher(u64);

impl Hasher for SpreadHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, x: u32) {
        self.0 = u64::from(x).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type SpreadMap = HashMap<u32, u32, BuildHasherDefault<SpreadHasher>>;

/// One band: `fingerprint → articles`.
#[derive(Default)]
pub(crate) struct BandTable {
    /// `(fingerprint << 32) | article`, sorted.
    base: Vec<u64>,
    /// `directory[p]` = first base entry whose fingerprint's top `dir_bits` bits are `≥ p`.
    directory: Vec<u32>,
    dir_bits: u32,
    /// Newest delta entry of each fingerprint.
    heads: SpreadMap,
    /// Delta entries: `(fingerprint, article, previous entry with that fingerprint)`.
    delta: Vec<(u32, u32, u32)>,
}

impl std::fmt::Debug for BandTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BandTable")
            .field("base", &self.base.len())
            .field("delta", &self.delta.len())
            .finish()
    }
}

impl BandTable {
    /// A table holding `entries` (packed as `(fingerprint << 32) | article`, any order).
    pub(crate) fn from_entries(mut entries: Vec<u64>) -> Self {
        entries.sort_unstable();
        let mut table = BandTable {
            base: entries,
            ..BandTable::default()
        };
        table.build_directory();
        table
    }

    fn build_directory(&mut self) {
        let n = self.base.len();
        // About eight entries per directory slot; between 2^8 and 2^24 slots.
        let bits = (usize::BITS - (n / 8).leading_zeros()).clamp(8, 24);
        let slots = 1usize << bits;
        let mut directory = Vec::with_capacity(slots + 1);
        let mut i = 0;
        for slot in 0..slots as u64 {
            while i < n && (self.base[i] >> (64 - bits)) < slot {
                i += 1;
            }
            directory.push(i as u32);
        }
        directory.push(n as u32);
        self.directory = directory;
        self.dir_bits = bits;
    }

    /// Adds an article (articles are added in increasing order).
    pub(crate) fn insert(&mut self, fingerprint: u32, article: u32) {
        let index = self.delta.len() as u32;
        let previous = self.heads.insert(fingerprint, index).unwrap_or(NONE);
        self.delta.push((fingerprint, article, previous));
    }

    /// The base range that holds this fingerprint's entries, if any. Split from
    /// [`BandTable::lookup`] so that a query can load every band's directory slot before
    /// it scans any: the loads are independent and their cache misses overlap.
    #[inline]
    pub(crate) fn base_range(&self, fingerprint: u32) -> (u32, u32) {
        if self.base.is_empty() {
            return (0, 0);
        }
        let slot = (fingerprint >> (32 - self.dir_bits)) as usize;
        (self.directory[slot], self.directory[slot + 1])
    }

    /// The first base entry of a range (a load that brings its cache line in early).
    #[inline]
    pub(crate) fn touch(&self, range: (u32, u32)) -> u64 {
        self.base.get(range.0 as usize).copied().unwrap_or(0)
    }

    /// Appends every article with this fingerprint to `out`, in increasing order.
    #[cfg(test)]
    pub(crate) fn lookup(&self, fingerprint: u32, out: &mut Vec<u32>) {
        self.lookup_in(fingerprint, self.base_range(fingerprint), out);
    }

    /// [`BandTable::lookup`] with the range from [`BandTable::base_range`].
    pub(crate) fn lookup_in(&self, fingerprint: u32, range: (u32, u32), out: &mut Vec<u32>) {
        if range.1 > range.0 {
            let range = &self.base[range.0 as usize..range.1 as usize];
            let start = range.partition_point(|&e| ((e >> 32) as u32) < fingerprint);
            out.extend(
                range[start..]
                    .iter()
                    .take_while(|&&e| (e >> 32) as u32 == fingerprint)
                    .map(|&e| e as u32),
            );
        }
        let first_new = out.len();
        let mut next = self.heads.get(&fingerprint).copied().unwrap_or(NONE);
        while next != NONE {
            let (_, article, previous) = self.delta[next as usize];
            out.push(article);
            next = previous;
        }
        out[first_new..].reverse();
    }

    /// Whether the delta is due to be merged into the base.
    pub(crate) fn wants_merge(&self) -> bool {
        self.delta.len() >= MIN_DELTA.max(self.base.len() / 8)
    }

    /// Merges the delta into the base.
    pub(crate) fn merge(&mut self) {
        let mut fresh: Vec<u64> = self
            .delta
            .iter()
            .map(|&(fp, article, _)| (u64::from(fp) << 32) | u64::from(article))
            .collect();
        fresh.sort_unstable();
        let old = std::mem::take(&mut self.base);
        let mut merged = Vec::with_capacity(old.len() + fresh.len());
        let (mut i, mut j) = (0, 0);
        while i < old.len() && j < fresh.len() {
            if old[i] <= fresh[j] {
                merged.push(old[i]);
                i += 1;
            } else {
                merged.push(fresh[j]);
                j += 1;
            }
        }
        merged.extend_from_slice(&old[i..]);
        merged.extend_from_slice(&fresh[j..]);
        self.base = merged;
        self.delta = Vec::new();
        self.heads = SpreadMap::default();
        self.build_directory();
    }

    /// Bytes of memory held (capacity, approximately).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.base.capacity() * 8
            + self.directory.capacity() * 4
            + self.delta.capacity() * 12
            + self.heads.capacity() * 9
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(entries: &[(u32, u32)], fp: u32) -> Vec<u32> {
        let mut v: Vec<u32> = entries.iter().filter(|e| e.0 == fp).map(|e| e.1).collect();
        v.sort_unstable();
        v
    }

    proptest! {
        /// Whatever the mix of bulk-built, inserted and merged entries, a lookup returns
        /// exactly the articles a linear scan finds, in increasing order.
        #[test]
        fn lookups_match_a_linear_scan(
            bulk in 0usize..3000,
            added in 0usize..6000,
            spread in 1u32..5000,
            seed in any::<u64>(),
        ) {
            let mut state = seed;
            let mut fp = move || {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                // Few distinct values (many shared buckets), spread over the whole range.
                ((state >> 33) as u32 % spread).wrapping_mul(0x9E37_79B9)
            };
            let mut entries: Vec<(u32, u32)> = Vec::new();
            for a in 0..bulk as u32 {
                entries.push((fp(), a));
            }
            let mut table = BandTable::from_entries(
                entries.iter().map(|&(f, a)| (u64::from(f) << 32) | u64::from(a)).collect(),
            );
            for a in bulk as u32..(bulk + added) as u32 {
                let f = fp();
                entries.push((f, a));
                table.insert(f, a);
                if table.wants_merge() {
                    table.merge();
                }
            }
            let mut out = Vec::new();
            for probe in entries.iter().map(|e| e.0).take(200).chain([0, u32::MAX, 12345]) {
                out.clear();
                table.lookup(probe, &mut out);
                prop_assert_eq!(&out, &naive(&entries, probe));
            }
        }
    }

    #[test]
    fn edge_fingerprints_and_empty_tables() {
        let mut table = BandTable::default();
        let mut out = Vec::new();
        table.lookup(7, &mut out);
        assert!(out.is_empty());
        table.insert(0, 1);
        table.insert(u32::MAX, 2);
        table.insert(0, 3);
        table.merge();
        table.insert(0, 4);
        table.lookup(0, &mut out);
        assert_eq!(out, [1, 3, 4]);
        out.clear();
        table.lookup(u32::MAX, &mut out);
        assert_eq!(out, [2]);
    }
}
