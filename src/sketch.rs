//! MinHash signatures by Fast Similarity Sketching.
//!
//! Classic MinHash applies k hash functions to every shingle: cost |A|·k. neardup uses
//! Fast Similarity Sketching (Dahlgaard, Knudsen and Thorup, FOCS 2017), which fills the
//! same k slots at expected cost O(|A| + k log k):
//!
//! * rounds `r = 0, 1, …, k-1`: every shingle `x` is hashed with the round's seed to a
//!   slot `bin(h_r(x))` and a value `(r, low32(h_r(x)))`; each slot keeps its minimum
//!   (`h_r` is one 64×64→128-bit multiply by a per-round odd constant, folded: the shingle
//!   hashes are already xxh3 outputs);
//! * rounds `r = k, …, 2k-1` are only needed for slots still empty: slot `r - k` takes the
//!   minimum of `(r, low32(h_r(x)))` over all shingles;
//! * it stops as soon as every slot is filled, since later rounds only produce larger
//!   values. A long text fills all slots in its first round or two.
//!
//! The probability that two sets agree in a slot is their Jaccard similarity, and slots
//! behave like those of classic MinHash (the property tests in this module check the
//! estimates against exact Jaccard and against a classic k-hash MinHash, for bias and
//! variance). A slot stores the 32 low bits of the winning hash: equal slots mean the same
//! shingle won in the same round, up to a 2⁻³² chance.

/// Seeded, reproducible MinHash sketcher with `num_perm` slots.
#[derive(Clone, Debug)]
pub struct Sketcher {
    num_perm: usize,
    round_seeds: Vec<u64>,
    round_multipliers: Vec<u64>,
}

/// Sketches with more slots than this are refused (values store the round in 32 bits).
pub const MAX_NUM_PERM: usize = 1 << 16;

impl Sketcher {
    /// A sketcher with `num_perm` slots (1 to [`MAX_NUM_PERM`]) and the given seed.
    pub fn new(num_perm: usize, seed: u64) -> Self {
        assert!(
            (1..=MAX_NUM_PERM).contains(&num_perm),
            "num_perm out of range"
        );
        let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
        let round_seeds = (0..2 * num_perm).map(|_| splitmix64(&mut state)).collect();
        let round_multipliers = (0..2 * num_perm)
            .map(|_| splitmix64(&mut state) | 1)
            .collect();
        Sketcher {
            num_perm,
            round_seeds,
            round_multipliers,
        }
    }

    /// Number of slots.
    pub fn num_perm(&self) -> usize {
        self.num_perm
    }

    /// Writes the signature of the shingle hashes `shingles` (repeats allowed) into `out`.
    ///
    /// `out.len()` must be `num_perm`. An empty input gives a signature of `u32::MAX`
    /// slots, which neardup never indexes.
    pub fn sketch(&self, shingles: &[u64], scratch: &mut Vec<u64>, out: &mut [u32]) {
        let k = self.num_perm;
        assert_eq!(out.len(), k, "signature buffer has the wrong length");
        scratch.clear();
        scratch.resize(k, u64::MAX);
        let slots = &mut scratch[..];
        if shingles.is_empty() {
            out.fill(u32::MAX);
            return;
        }
        let mut filled = 0;
        for round in 0..k {
            let (seed, multiplier) = (self.round_seeds[round], self.round_multipliers[round]);
            let tag = (round as u64) << 32;
            for &x in shingles {
                let h = fold_multiply(x ^ seed, multiplier);
                let slot = (((h >> 32) * k as u64) >> 32) as usize;
                let value = tag | (h & 0xFFFF_FFFF);
                let current = slots[slot];
                if value < current {
                    filled += usize::from(current == u64::MAX);
                    slots[slot] = value;
                }
            }
            if filled == k {
                break;
            }
        }
        if filled < k {
            for (slot, value) in slots.iter_mut().enumerate() {
                if *value == u64::MAX {
                    let round = k + slot;
                    let (seed, multiplier) =
                        (self.round_seeds[round], self.round_multipliers[round]);
                    let low = shingles
                        .iter()
                        .map(|&x| fold_multiply(x ^ seed, multiplier) & 0xFFFF_FFFF)
                        .min();
                    *value = ((round as u64) << 32) | low.unwrap_or(0);
                }
            }
        }
        for (o, v) in out.iter_mut().zip(slots.iter()) {
            *o = *v as u32;
        }
    }
}

/// Fraction of equal slots: the MinHash estimate of Jaccard similarity.
#[inline]
pub fn estimate_jaccard(a: &[u32], b: &[u32]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    // Counted in eight 32-bit lanes so that the compiler compares four slots per SSE2
    // instruction; a `usize` count widened every comparison to 64 bits, two at a time.
    let (chunks_a, chunks_b) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail = (chunks_a.remainder().iter())
        .zip(chunks_b.remainder())
        .filter(|(x, y)| x == y)
        .count();
    let mut lanes = [0u32; 8];
    for (x, y) in chunks_a.zip(chunks_b) {
        for i in 0..8 {
            lanes[i] += u32::from(x[i] == y[i]);
        }
    }
    let equal = lanes.iter().map(|&n| n as usize).sum::<usize>() + tail;
    equal as f64 / a.len() as f64
}

/// A round's hash of a shingle: the 128-bit product of the seeded shingle hash and an odd
/// multiplier, folded to 64 bits (the "mum" mix of wyhash). The inputs are already xxh3
/// hashes, so one full multiply mixes enough; it costs about half of `fmix64`.
#[inline]
fn fold_multiply(x: u64, multiplier: u64) -> u64 {
    let product = u128::from(x) * u128::from(multiplier);
    (product as u64) ^ ((product >> 64) as u64)
}

/// The murmur3 64-bit finalizer: the classic reference's hash functions.
#[cfg(test)]
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    h ^= h >> 33;
    h
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Classic MinHash with `k` independent hash functions: the naive reference the fast
/// sketch is tested against. Cost |A|·k.
#[cfg(test)]
pub(crate) fn classic_minhash(shingles: &[u64], k: usize, seed: u64) -> Vec<u32> {
    let mut state = seed;
    (0..k)
        .map(|_| {
            let s = splitmix64(&mut state);
            shingles
                .iter()
                .map(|&x| fmix64(x ^ s))
                .min()
                .unwrap_or(u64::MAX) as u32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sketch(s: &Sketcher, set: &[u64]) -> Vec<u32> {
        let mut out = vec![0; s.num_perm()];
        s.sketch(set, &mut Vec::new(), &mut out);
        out
    }

    /// Two sets with exactly `common` shared and `only_a`, `only_b` private elements.
    fn pair_of_sets(
        common: usize,
        only_a: usize,
        only_b: usize,
        salt: u64,
    ) -> (Vec<u64>, Vec<u64>) {
        let mut state = salt;
        let mut draw = |n: usize| (0..n).map(|_| splitmix64(&mut state)).collect::<Vec<_>>();
        let shared = draw(common);
        let mut a = shared.clone();
        a.extend(draw(only_a));
        let mut b = shared;
        b.extend(draw(only_b));
        (a, b)
    }

    fn mean_and_variance(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var)
    }

    #[test]
    fn identical_sets_have_identical_signatures() {
        let s = Sketcher::new(128, 7);
        let (a, _) = pair_of_sets(300, 0, 0, 1);
        let mut shuffled = a.clone();
        shuffled.reverse();
        shuffled.extend_from_slice(&a[..10]); // repeats do not matter
        assert_eq!(sketch(&s, &a), sketch(&s, &shuffled));
        assert_eq!(
            estimate_jaccard(&sketch(&s, &a), &sketch(&s, &shuffled)),
            1.0
        );
    }

    #[test]
    fn seeds_change_signatures_reproducibly() {
        let (a, _) = pair_of_sets(50, 0, 0, 2);
        assert_eq!(
            sketch(&Sketcher::new(64, 1), &a),
            sketch(&Sketcher::new(64, 1), &a)
        );
        assert_ne!(
            sketch(&Sketcher::new(64, 1), &a),
            sketch(&Sketcher::new(64, 2), &a)
        );
    }

    #[test]
    fn single_element_and_empty_sets() {
        let s = Sketcher::new(16, 3);
        let one = sketch(&s, &[42]);
        assert!(one.iter().all(|&v| v != u32::MAX || one.len() == 1));
        assert_eq!(sketch(&s, &[]), vec![u32::MAX; 16]);
        assert_eq!(estimate_jaccard(&one, &sketch(&s, &[43])), 0.0);
    }

    /// Over many seeds, the fast sketch's estimate is unbiased and its variance is that
    /// of classic MinHash (measured on the same sets with the naive k-hash reference).
    fn check_unbiased_with_classic_variance(common: usize, only_a: usize, only_b: usize, k: usize) {
        let (a, b) = pair_of_sets(
            common,
            only_a,
            only_b,
            (common * 31 + only_a * 7 + only_b) as u64,
        );
        let jaccard = common as f64 / (common + only_a + only_b) as f64;
        let trials = 400;
        let mut fast = Vec::with_capacity(trials);
        let mut classic = Vec::with_capacity(trials);
        for seed in 0..trials as u64 {
            let s = Sketcher::new(k, seed);
            fast.push(estimate_jaccard(&sketch(&s, &a), &sketch(&s, &b)));
            classic.push(estimate_jaccard(
                &classic_minhash(&a, k, seed + 1_000_000),
                &classic_minhash(&b, k, seed + 1_000_000),
            ));
        }
        let (fast_mean, fast_var) = mean_and_variance(&fast);
        let (_, classic_var) = mean_and_variance(&classic);
        let theory_var = jaccard * (1.0 - jaccard) / k as f64;
        let standard_error = (theory_var / trials as f64).sqrt();
        assert!(
            (fast_mean - jaccard).abs() <= 4.5 * standard_error + 1e-9,
            "biased: mean {fast_mean} vs J {jaccard} (se {standard_error})"
        );
        if theory_var > 0.0 {
            // Sample variances over 400 trials vary by about ±15%; allow for that.
            assert!(
                fast_var <= 1.35 * classic_var.max(theory_var),
                "variance {fast_var} vs classic {classic_var} (theory {theory_var})"
            );
            assert!(
                fast_var <= 1.35 * theory_var,
                "variance {fast_var} vs theory {theory_var}"
            );
        }
    }

    #[test]
    fn estimates_on_small_sets_where_densification_matters() {
        check_unbiased_with_classic_variance(5, 5, 5, 128);
        check_unbiased_with_classic_variance(30, 10, 20, 128);
    }

    #[test]
    fn estimates_on_large_sets() {
        check_unbiased_with_classic_variance(500, 500, 300, 128);
        check_unbiased_with_classic_variance(2000, 100, 100, 64);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn estimates_are_unbiased_with_classic_variance(
            common in 0usize..400,
            only_a in 0usize..400,
            only_b in 0usize..400,
            k in prop_oneof![Just(32usize), Just(128)],
        ) {
            prop_assume!(common + only_a > 0 && common + only_b > 0);
            check_unbiased_with_classic_variance(common, only_a, only_b, k);
        }

        #[test]
        fn the_estimate_counts_every_equal_slot(
            pairs in proptest::collection::vec((0u32..4, 0u32..4), 1..300),
        ) {
            // Any length (lanes of eight and a remainder), slots equal about a quarter of the time.
            let (a, b): (Vec<u32>, Vec<u32>) = pairs.into_iter().unzip();
            let equal = a.iter().zip(&b).filter(|(x, y)| x == y).count();
            prop_assert_eq!(estimate_jaccard(&a, &b), equal as f64 / a.len() as f64);
        }
    }
}
