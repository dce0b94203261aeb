//! What LSH banding a threshold gets, and how likely each similarity is to become a
//! candidate under it (`neardup params`).
//!
//! The banding is resolved by [`crate::PipelineBuilder`] itself, so the answer is exactly
//! what `neardup cluster` would use with the same flags.

use crate::error::{Error, Result};
use crate::index::LshParams;
use crate::pipeline::PipelineBuilder;

/// The banding of a threshold and its S-curve.
#[derive(Clone, Debug, PartialEq)]
pub struct BandingReport {
    /// The threshold.
    pub threshold: f64,
    /// Signature slots.
    pub num_perm: usize,
    /// The banding used: the optimum, or the explicit `--bands/--rows`.
    pub lsh: LshParams,
    /// The banding that minimizes the weighted error masses at the threshold.
    pub optimal: LshParams,
    /// Whether bands or rows were given explicitly.
    pub explicit: bool,
    /// Weight of the false-positive mass.
    pub fp_weight: f64,
    /// Weight of the false-negative mass.
    pub fn_weight: f64,
    /// `∫₀ᵗ P(s) ds` under `lsh`.
    pub fp_mass: f64,
    /// `∫ₜ¹ (1 − P(s)) ds` under `lsh`.
    pub fn_mass: f64,
    /// The similarity at which `P(s) = ½`: `(1 − ½^(1/b))^(1/r)`.
    pub half_point: f64,
    /// `(s, P(s))` from 0 to 1 by the step, with the threshold itself included.
    pub curve: Vec<(f64, f64)>,
}

impl BandingReport {
    /// The probability that a pair at the threshold becomes a candidate.
    pub fn at_threshold(&self) -> f64 {
        self.lsh.candidate_probability(self.threshold)
    }
}

/// The banding for `threshold` with `num_perm` slots (`bands`/`rows` as the pipeline
/// takes them), its error masses under `weights` (false positive, false negative), and
/// `P(candidate)` over `s` in steps of `step`.
pub fn banding_report(
    threshold: f64,
    num_perm: usize,
    bands: Option<usize>,
    rows: Option<usize>,
    weights: (f64, f64),
    step: f64,
) -> Result<BandingReport> {
    if !(step > 0.0 && step <= 1.0) {
        return Err(Error::config(format!(
            "the step must be in (0, 1], got {step}"
        )));
    }
    let resolve = |bands, rows| {
        PipelineBuilder::new()
            .threshold(threshold)
            .num_perm(num_perm)
            .lsh(bands, rows)
            .lsh_weights(weights.0, weights.1)
            .build()
            .map(|p| p.settings().lsh)
    };
    let lsh = resolve(bands, rows)?;
    let optimal = resolve(None, None)?;
    let (fp_mass, fn_mass) = lsh.error_masses(threshold);
    let steps = (1.0 / step + 1e-9).floor() as usize;
    let mut grid: Vec<f64> = (0..=steps)
        .map(|i| ((i as f64 * step) * 10_000.0).round() / 10_000.0)
        .collect();
    if grid.last() != Some(&1.0) {
        grid.push(1.0);
    }
    if !grid.iter().any(|&s| (s - threshold).abs() < 1e-12) {
        grid.push(threshold);
        grid.sort_by(f64::total_cmp);
    }
    let curve = grid
        .into_iter()
        .map(|s| (s, lsh.candidate_probability(s)))
        .collect();
    Ok(BandingReport {
        threshold,
        num_perm,
        lsh,
        optimal,
        explicit: bands.is_some() || rows.is_some(),
        fp_weight: weights.0,
        fn_weight: weights.1,
        fp_mass,
        fn_mass,
        half_point: (1.0 - 0.5f64.powf(1.0 / lsh.bands as f64)).powf(1.0 / lsh.rows as f64),
        curve,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{DEFAULT_FN_WEIGHT, DEFAULT_FP_WEIGHT, optimal_params};

    const DEFAULT_WEIGHTS: (f64, f64) = (DEFAULT_FP_WEIGHT, DEFAULT_FN_WEIGHT);

    #[test]
    fn the_curve_is_the_closed_form() {
        let r = banding_report(0.5, 128, None, None, DEFAULT_WEIGHTS, 0.05).unwrap();
        assert_eq!(
            r.lsh,
            optimal_params(0.5, 128, DEFAULT_FP_WEIGHT, DEFAULT_FN_WEIGHT)
        );
        assert_eq!(r.curve.len(), 21);
        let (b, rows) = (r.lsh.bands as i32, r.lsh.rows as i32);
        for &(s, p) in &r.curve {
            let expected = 1.0 - (1.0 - s.powi(rows)).powi(b);
            assert!(
                (p - expected).abs() < 1e-12,
                "P({s}) = {p}, expected {expected}"
            );
        }
        assert_eq!(r.curve[0], (0.0, 0.0));
        assert_eq!(r.curve[20], (1.0, 1.0));
    }

    #[test]
    fn the_half_point_is_where_the_curve_crosses_one_half() {
        let r = banding_report(0.5, 128, Some(16), Some(8), DEFAULT_WEIGHTS, 0.1).unwrap();
        assert!((r.lsh.candidate_probability(r.half_point) - 0.5).abs() < 1e-12);
        assert!(r.explicit);
        assert_eq!(r.lsh, LshParams { bands: 16, rows: 8 });
        assert_ne!(r.optimal, r.lsh);
    }

    #[test]
    fn an_off_grid_threshold_is_on_the_curve() {
        let r = banding_report(0.33, 64, None, None, DEFAULT_WEIGHTS, 0.25).unwrap();
        let s: Vec<f64> = r.curve.iter().map(|c| c.0).collect();
        assert_eq!(s, [0.0, 0.25, 0.33, 0.5, 0.75, 1.0]);
        assert!((r.at_threshold() - r.curve[2].1).abs() < 1e-15);
    }

    #[test]
    fn one_of_bands_or_rows_derives_the_other_like_the_pipeline() {
        let r = banding_report(0.5, 128, Some(20), None, DEFAULT_WEIGHTS, 0.1).unwrap();
        assert_eq!(r.lsh, LshParams { bands: 20, rows: 6 });
        assert!(banding_report(0.5, 128, Some(20), Some(7), DEFAULT_WEIGHTS, 0.1).is_err());
        assert!(banding_report(0.0, 128, None, None, DEFAULT_WEIGHTS, 0.1).is_err());
        assert!(banding_report(0.5, 128, None, None, DEFAULT_WEIGHTS, 0.0).is_err());
    }
}
