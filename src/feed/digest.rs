//! One byte per slot of every indexed article's weighted signature, kept in memory so the
//! story lookup can reject most candidates without reading their records from the log.
//!
//! The rejection is exact: equal slots have equal bytes, so the fraction of equal bytes is
//! never below the fraction of equal slots. A candidate whose byte fraction is under the
//! estimate floor would have been rejected after reading its record too; verdicts do not
//! change, only the reads they cost.

/// The byte kept for a slot: the top byte of a multiplicative mix, so structured slot
/// values (small ranks, `u32::MAX` for empty) still spread over all 256 bytes.
#[inline]
fn digest_byte(slot: u32) -> u8 {
    (slot.wrapping_mul(0x9E37_79B1) >> 24) as u8
}

/// How many of the eight bytes of `x` are zero. Exact: no carry crosses a byte, since
/// each byte's low seven bits plus 0x7F stay below 0x100.
#[inline]
fn zero_bytes(x: u64) -> u32 {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    (!(((x & LOW7) + LOW7) | x | LOW7)).count_ones()
}

/// The digests of every indexed article's weighted signature, in document order.
#[derive(Debug, Default)]
pub(super) struct SignatureDigests {
    slots: usize,
    bytes: Vec<u8>,
}

impl SignatureDigests {
    pub(super) fn new(slots: usize) -> Self {
        Self {
            slots,
            bytes: Vec::new(),
        }
    }

    /// Appends the next document's digest.
    pub(super) fn push(&mut self, signature: &[u32]) {
        debug_assert_eq!(signature.len(), self.slots);
        self.bytes.extend(signature.iter().map(|&v| digest_byte(v)));
    }

    /// Writes the digest of `signature` into `out`, for [`Self::upper_estimate`].
    pub(super) fn digest_into(signature: &[u32], out: &mut Vec<u8>) {
        out.clear();
        out.extend(signature.iter().map(|&v| digest_byte(v)));
    }

    /// An upper bound of `estimate_jaccard` between the signature digested in `mine` and
    /// that of document `doc`, in the same arithmetic (equal slots over slots).
    pub(super) fn upper_estimate(&self, doc: u32, mine: &[u8]) -> f64 {
        let theirs = self.row(doc);
        let mut mine_words = mine.chunks_exact(8);
        let mut their_words = theirs.chunks_exact(8);
        let mut equal = 0;
        for (a, b) in (&mut mine_words).zip(&mut their_words) {
            let a = u64::from_le_bytes(a.try_into().expect("8 bytes"));
            let b = u64::from_le_bytes(b.try_into().expect("8 bytes"));
            equal += zero_bytes(a ^ b);
        }
        equal += mine_words
            .remainder()
            .iter()
            .zip(their_words.remainder())
            .filter(|(a, b)| a == b)
            .count() as u32;
        f64::from(equal) / self.slots as f64
    }

    /// Loads the first and last byte of each document's digest, so the cache misses of
    /// a lookup's candidates overlap instead of coming one by one in the comparisons.
    pub(super) fn touch(&self, docs: impl Iterator<Item = u32>) -> u8 {
        docs.map(|d| {
            let row = self.row(d);
            row[0] ^ row[row.len() - 1]
        })
        .fold(0, |x, y| x ^ y)
    }

    fn row(&self, doc: u32) -> &[u8] {
        let start = doc as usize * self.slots;
        &self.bytes[start..start + self.slots]
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sketch::estimate_jaccard;
    use proptest::prelude::*;

    proptest! {
        // The exactness the story lookup relies on: the bound never falls below the
        // estimate from the full slots.
        #[test]
        fn never_below_the_full_estimate(
            pairs in proptest::collection::vec((any::<u32>(), any::<u32>(), any::<bool>()), 1..160)
        ) {
            let a: Vec<u32> = pairs.iter().map(|p| p.0).collect();
            let b: Vec<u32> = pairs.iter().map(|&(x, y, same)| if same { x } else { y }).collect();
            let mut digests = SignatureDigests::new(a.len());
            digests.push(&a);
            digests.push(&b);
            let mut mine = Vec::new();
            SignatureDigests::digest_into(&a, &mut mine);
            prop_assert!(digests.upper_estimate(1, &mine) >= estimate_jaccard(&a, &b));
            prop_assert_eq!(digests.upper_estimate(0, &mine), 1.0);
        }
    }

    proptest! {
        #[test]
        fn zero_bytes_counts_each_byte(x in any::<u64>(), zeroed in any::<u8>()) {
            let bytes: Vec<u8> = x
                .to_le_bytes()
                .iter()
                .enumerate()
                .map(|(i, &b)| if zeroed >> i & 1 == 1 { 0 } else { b })
                .collect();
            let word = u64::from_le_bytes(bytes.clone().try_into().unwrap());
            prop_assert_eq!(zero_bytes(word), bytes.iter().filter(|&&b| b == 0).count() as u32);
        }
    }

    #[test]
    fn unrelated_signatures_rarely_share_bytes() {
        let slots = 128;
        let a: Vec<u32> = (0..slots as u32).collect();
        let b: Vec<u32> = (0..slots as u32).map(|v| v + 1_000_000).collect();
        let mut digests = SignatureDigests::new(slots);
        digests.push(&b);
        let mut mine = Vec::new();
        SignatureDigests::digest_into(&a, &mut mine);
        // About one slot in 256 collides; the story floor is 0.15.
        assert!(digests.upper_estimate(0, &mine) < 0.05);
    }
}
