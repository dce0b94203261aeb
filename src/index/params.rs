//! Choosing LSH bands and rows.
//!
//! With `b` bands of `r` rows, two documents whose signatures agree in a slot with
//! probability `s` (their Jaccard similarity) become candidates with probability
//!
//! ```text
//! P(s) = 1 − (1 − s^r)^b
//! ```
//!
//! For a threshold `t`, the false-positive mass is `FP = ∫₀ᵗ P(s) ds` (pairs below the
//! threshold that become candidates) and the false-negative mass is
//! `FN = ∫ₜ¹ (1 − P(s)) ds` (pairs above it that are missed). neardup picks the
//! `(b, r)` with `b·r ≤ num_perm` that minimizes `w_fp·FP + w_fn·FN`.
//!
//! Every candidate is verified on the exact shingle sets, so a false positive costs only
//! a little time while a false negative is lost for good: the default weights count a
//! miss [`DEFAULT_FN_WEIGHT`] / [`DEFAULT_FP_WEIGHT`] times as much as a false candidate.

/// Default weight of the false-positive mass.
pub const DEFAULT_FP_WEIGHT: f64 = 0.02;
/// Default weight of the false-negative mass.
pub const DEFAULT_FN_WEIGHT: f64 = 0.98;

/// LSH banding: `bands` bands of `rows` signature slots each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LshParams {
    /// Number of bands.
    pub bands: usize,
    /// Slots per band.
    pub rows: usize,
}

impl LshParams {
    /// Probability that a pair of similarity `s` shares at least one band.
    pub fn candidate_probability(&self, s: f64) -> f64 {
        candidate_probability(s, self.bands, self.rows)
    }

    /// Weighted false-positive and false-negative probability masses at `threshold`.
    pub fn error_masses(&self, threshold: f64) -> (f64, f64) {
        let fp = integrate(|s| self.candidate_probability(s), 0.0, threshold);
        let fn_ = integrate(|s| 1.0 - self.candidate_probability(s), threshold, 1.0);
        (fp, fn_)
    }
}

/// `1 − (1 − s^rows)^bands`.
pub fn candidate_probability(s: f64, bands: usize, rows: usize) -> f64 {
    1.0 - (1.0 - s.powi(rows as i32)).powi(bands as i32)
}

/// The `(bands, rows)` with `bands·rows ≤ num_perm` that minimizes
/// `fp_weight·FP + fn_weight·FN` at `threshold` (ties: fewer slots used, then more rows).
pub fn optimal_params(
    threshold: f64,
    num_perm: usize,
    fp_weight: f64,
    fn_weight: f64,
) -> LshParams {
    let mut best = (
        f64::INFINITY,
        LshParams {
            bands: 1,
            rows: num_perm.max(1),
        },
    );
    for bands in 1..=num_perm {
        for rows in 1..=num_perm / bands {
            let p = LshParams { bands, rows };
            let (fp, fn_) = p.error_masses(threshold);
            let cost = fp_weight * fp + fn_weight * fn_;
            if cost < best.0 - 1e-12 {
                best = (cost, p);
            }
        }
    }
    best.1
}

/// Composite Simpson's rule; the integrands are smooth polynomials in `s`.
fn integrate(f: impl Fn(f64) -> f64, a: f64, b: f64) -> f64 {
    const STEPS: usize = 200; // even
    if b <= a {
        return 0.0;
    }
    let h = (b - a) / STEPS as f64;
    let mut sum = f(a) + f(b);
    for i in 1..STEPS {
        let w = if i % 2 == 1 { 4.0 } else { 2.0 };
        sum += w * f(a + i as f64 * h);
    }
    sum * h / 3.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_form_probabilities() {
        let p = LshParams { bands: 32, rows: 4 };
        assert_eq!(p.candidate_probability(0.0), 0.0);
        assert_eq!(p.candidate_probability(1.0), 1.0);
        let expected = 1.0 - (1.0 - 0.5f64.powi(4)).powi(32);
        assert!((p.candidate_probability(0.5) - expected).abs() < 1e-15);
        assert!((expected - 0.8732).abs() < 1e-4);
    }

    #[test]
    fn integration_matches_analytic_values() {
        // ∫₀¹ s² ds = 1/3, and for b = 1, r = 1: FP = t²/2, FN = (1 − t)²/2.
        assert!((integrate(|s| s * s, 0.0, 1.0) - 1.0 / 3.0).abs() < 1e-12);
        let (fp, fn_) = LshParams { bands: 1, rows: 1 }.error_masses(0.3);
        assert!((fp - 0.045).abs() < 1e-12 && (fn_ - 0.245).abs() < 1e-12);
    }

    #[test]
    fn the_choice_minimizes_the_weighted_cost() {
        for &t in &[0.3, 0.5, 0.8] {
            let chosen = optimal_params(t, 128, 0.5, 0.5);
            let cost = |p: LshParams| {
                let (fp, fn_) = p.error_masses(t);
                0.5 * fp + 0.5 * fn_
            };
            for bands in 1..=128 {
                for rows in 1..=128 / bands {
                    assert!(cost(chosen) <= cost(LshParams { bands, rows }) + 1e-12);
                }
            }
        }
    }

    #[test]
    fn weighting_misses_more_lowers_the_curve() {
        let balanced = optimal_params(0.5, 128, 0.5, 0.5);
        let recall_first = optimal_params(0.5, 128, DEFAULT_FP_WEIGHT, DEFAULT_FN_WEIGHT);
        assert!(recall_first.candidate_probability(0.5) > balanced.candidate_probability(0.5));
        assert!(recall_first.bands * recall_first.rows <= 128);
    }
}
