//! Quality measures of a clustering against gold labels.
//!
//! * Pairwise: a pair is predicted positive when both documents are in one cluster;
//!   precision, recall and F-β over the judged pairs ([`Confusion`]).
//! * Partition (cluster gold): the adjusted Rand index (Hubert & Arabie, 1985) and B-cubed
//!   precision and recall (Bagga & Baldwin, 1998; Amigó et al., 2009), from the
//!   contingency table of gold and predicted labels ([`Contingency`]).
//!
//! Undefined values are `None` rather than a made-up number: precision with no predicted
//! positive, recall with no gold positive, F-β when there is neither a true positive, a
//! false positive nor a false negative.

use std::collections::HashMap;

/// Counts of a binary decision over pairs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Confusion {
    /// Gold positives predicted positive.
    pub true_positives: u64,
    /// Gold negatives predicted positive.
    pub false_positives: u64,
    /// Gold positives predicted negative.
    pub false_negatives: u64,
}

impl Confusion {
    /// `tp / (tp + fp)`.
    pub fn precision(&self) -> Option<f64> {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    /// `tp / (tp + fn)`.
    pub fn recall(&self) -> Option<f64> {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }

    /// `(1 + β²)·tp / ((1 + β²)·tp + β²·fn + fp)`: the weighted harmonic mean of precision
    /// and recall, recall counting β times as much. Zero when there is no true positive;
    /// none when the gold has no positive pair (recall is undefined, and any prediction
    /// would score 0 however good).
    pub fn f_beta(&self, beta: f64) -> Option<f64> {
        if self.true_positives + self.false_negatives == 0 {
            return None;
        }
        let b2 = beta * beta;
        let (tp, fp, misses) = (
            self.true_positives as f64,
            self.false_positives as f64,
            self.false_negatives as f64,
        );
        let num = (1.0 + b2) * tp;
        let den = num + b2 * misses + fp;
        if den.is_finite() {
            return (den > 0.0).then(|| num / den);
        }
        // β so large that the terms overflow: divided through by 1 + β², which is recall
        // to the last place (once NaN here).
        let den = tp + misses / (1.0 + 1.0 / b2) + fp / (1.0 + b2);
        (den > 0.0).then(|| tp / den)
    }

    /// F-β with β = 1.
    pub fn f1(&self) -> Option<f64> {
        self.f_beta(1.0)
    }
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// Number of unordered pairs among `n` items.
fn pairs_of(n: u64) -> f64 {
    let n = n as f64;
    n * (n - 1.0) / 2.0
}

/// The contingency table of two labellings of the same items.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Contingency {
    /// Items per (gold label, predicted label), only the non-empty cells.
    cells: Vec<u64>,
    /// For each cell: the sizes of its gold and predicted classes.
    margins: Vec<(u64, u64)>,
    /// Sizes of the gold classes.
    gold_sizes: Vec<u64>,
    /// Sizes of the predicted classes.
    predicted_sizes: Vec<u64>,
    items: u64,
}

impl Contingency {
    /// The table of `gold[i]` versus `predicted[i]` for every item `i`.
    ///
    /// # Panics
    /// If the two slices differ in length.
    pub fn new(gold: &[u32], predicted: &[u32]) -> Self {
        assert_eq!(
            gold.len(),
            predicted.len(),
            "one label per item on each side"
        );
        let mut cells: HashMap<(u32, u32), u64> = HashMap::new();
        let mut gold_sizes: HashMap<u32, u64> = HashMap::new();
        let mut predicted_sizes: HashMap<u32, u64> = HashMap::new();
        for (&g, &p) in gold.iter().zip(predicted) {
            *cells.entry((g, p)).or_default() += 1;
            *gold_sizes.entry(g).or_default() += 1;
            *predicted_sizes.entry(p).or_default() += 1;
        }
        let mut keyed: Vec<((u32, u32), u64)> = cells.into_iter().collect();
        keyed.sort_unstable(); // sums in a fixed order: identical floats on every run
        let sorted_sizes = |m: HashMap<u32, u64>| {
            let mut v: Vec<(u32, u64)> = m.into_iter().collect();
            v.sort_unstable();
            v
        };
        let gold_sizes = sorted_sizes(gold_sizes);
        let predicted_sizes = sorted_sizes(predicted_sizes);
        let size_of = |v: &[(u32, u64)], label: u32| {
            v[v.binary_search_by_key(&label, |x| x.0)
                .expect("label counted")]
            .1
        };
        Contingency {
            margins: keyed
                .iter()
                .map(|&((g, p), _)| (size_of(&gold_sizes, g), size_of(&predicted_sizes, p)))
                .collect(),
            cells: keyed.iter().map(|&(_, n)| n).collect(),
            gold_sizes: gold_sizes.iter().map(|x| x.1).collect(),
            predicted_sizes: predicted_sizes.iter().map(|x| x.1).collect(),
            items: gold.len() as u64,
        }
    }

    /// Number of items.
    pub fn items(&self) -> u64 {
        self.items
    }

    /// Pairwise counts: a pair is gold positive when its items share a gold label and
    /// predicted positive when they share a predicted label.
    pub fn pair_confusion(&self) -> Confusion {
        let both: u64 = self
            .cells
            .iter()
            .map(|&n| n * n.saturating_sub(1) / 2)
            .sum();
        let gold: u64 = self
            .gold_sizes
            .iter()
            .map(|&n| n * n.saturating_sub(1) / 2)
            .sum();
        let predicted: u64 = self
            .predicted_sizes
            .iter()
            .map(|&n| n * n.saturating_sub(1) / 2)
            .sum();
        Confusion {
            true_positives: both,
            false_positives: predicted - both,
            false_negatives: gold - both,
        }
    }

    /// The adjusted Rand index: 1 for identical partitions, about 0 for independent ones,
    /// negative for less agreement than chance.
    ///
    /// When both partitions are trivial in the same way (all items together, or all
    /// apart, or fewer than two items) the index is 0/0; it is then 1, as the partitions
    /// agree (scikit-learn's convention).
    pub fn adjusted_rand_index(&self) -> f64 {
        let index: f64 = self.cells.iter().map(|&n| pairs_of(n)).sum();
        let gold: f64 = self.gold_sizes.iter().map(|&n| pairs_of(n)).sum();
        let predicted: f64 = self.predicted_sizes.iter().map(|&n| pairs_of(n)).sum();
        let total = pairs_of(self.items);
        let expected = if total > 0.0 {
            gold * predicted / total
        } else {
            0.0
        };
        let max = (gold + predicted) / 2.0;
        if max == expected {
            return 1.0;
        }
        (index - expected) / (max - expected)
    }

    /// B-cubed precision and recall: per item, the share of its predicted cluster that is
    /// in its gold cluster (precision) and the share of its gold cluster that is in its
    /// predicted cluster (recall), averaged over items. `None` without items.
    pub fn bcubed(&self) -> Option<(f64, f64)> {
        if self.items == 0 {
            return None;
        }
        let (mut precision, mut recall) = (0.0, 0.0);
        for (&n, &(gold, predicted)) in self.cells.iter().zip(&self.margins) {
            let n = n as f64;
            precision += n * n / predicted as f64;
            recall += n * n / gold as f64;
        }
        let items = self.items as f64;
        Some((precision / items, recall / items))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn precision_recall_f_beta_by_hand() {
        // tp 6, fp 2, fn 4: P = 6/8, R = 6/10, F1 = 2·6/(2·6 + 2 + 4) = 12/18.
        let c = Confusion {
            true_positives: 6,
            false_positives: 2,
            false_negatives: 4,
        };
        assert!(close(c.precision().unwrap(), 0.75));
        assert!(close(c.recall().unwrap(), 0.6));
        assert!(close(c.f1().unwrap(), 2.0 / 3.0));
        // F1 is the harmonic mean: 2PR/(P+R) = 2·0.75·0.6/1.35.
        assert!(close(c.f1().unwrap(), 2.0 * 0.75 * 0.6 / 1.35));
        // β = 2: 5·6/(5·6 + 4·4 + 2) = 30/48; β = 0.5: 1.25·6/(1.25·6 + 0.25·4 + 2) = 7.5/10.5.
        assert!(close(c.f_beta(2.0).unwrap(), 30.0 / 48.0));
        assert!(close(c.f_beta(0.5).unwrap(), 7.5 / 10.5));
        // No β is too large or too small: its square overflowed into NaN once.
        for (beta, limit) in [
            (1e200, c.recall()),
            (f64::MAX, c.recall()),
            (1e-200, c.precision()),
        ] {
            assert!(close(c.f_beta(beta).unwrap(), limit.unwrap()), "{beta}");
        }
    }

    #[test]
    fn undefined_ratios_are_none() {
        let nothing_predicted = Confusion {
            true_positives: 0,
            false_positives: 0,
            false_negatives: 5,
        };
        assert_eq!(nothing_predicted.precision(), None);
        assert_eq!(nothing_predicted.recall(), Some(0.0));
        assert_eq!(nothing_predicted.f1(), Some(0.0));
        assert_eq!(Confusion::default().f1(), None);
        assert_eq!(Confusion::default().recall(), None);
    }

    #[test]
    fn ari_textbook_cases() {
        // Gold {0,1}{2,3} vs predicted {0,1}{2}{3}: index = C(2,2) = 1, gold pairs 2,
        // predicted pairs 1, total C(4,2) = 6; expected = 2·1/6 = 1/3, max = 3/2;
        // ARI = (1 − 1/3)/(3/2 − 1/3) = 4/7.
        let c = Contingency::new(&[0, 0, 1, 1], &[0, 0, 1, 2]);
        assert!(close(c.adjusted_rand_index(), 4.0 / 7.0));
        // Relabelling either side changes nothing; swapping the sides neither.
        assert!(close(
            Contingency::new(&[5, 5, 9, 9], &[7, 7, 3, 1]).adjusted_rand_index(),
            4.0 / 7.0
        ));
        assert!(close(
            Contingency::new(&[0, 0, 1, 2], &[0, 0, 1, 1]).adjusted_rand_index(),
            4.0 / 7.0
        ));
        // Crossed: {0,1}{2,3} vs {0,2}{1,3}: index 0, expected 2·2/6, max 2:
        // ARI = (0 − 2/3)/(2 − 2/3) = −1/2.
        assert!(close(
            Contingency::new(&[0, 0, 1, 1], &[0, 1, 0, 1]).adjusted_rand_index(),
            -0.5
        ));
        // Identical non-trivial partitions: 1.
        assert!(close(
            Contingency::new(&[0, 0, 0, 1, 1, 2], &[4, 4, 4, 2, 2, 9]).adjusted_rand_index(),
            1.0
        ));
        // A 3×3 table where each class keeps two of its three items: gold
        // {a a a b b b c c c}, predicted {a a b b b c c c a}. Cells: (a,a)=2, (a,b)=1,
        // (b,b)=2, (b,c)=1, (c,c)=2, (c,a)=1 → index = 3; margins all 3 → 3 pairs each
        // side → 9; total 36; expected 81/36 = 2.25; max 9 → ARI = 0.75/6.75 = 1/9.
        let c = Contingency::new(&[0, 0, 0, 1, 1, 1, 2, 2, 2], &[0, 0, 1, 1, 1, 2, 2, 2, 0]);
        assert!(close(c.adjusted_rand_index(), 1.0 / 9.0));
    }

    #[test]
    fn ari_degenerate_inputs() {
        // One gold cluster, all predicted singletons: index 0, gold 6, predicted 0,
        // expected 0, max 3 → 0.
        let c = Contingency::new(&[0, 0, 0, 0], &[0, 1, 2, 3]);
        assert!(close(c.adjusted_rand_index(), 0.0));
        // Both one cluster, both all singletons: they agree → 1.
        assert!(close(
            Contingency::new(&[1, 1, 1], &[2, 2, 2]).adjusted_rand_index(),
            1.0
        ));
        assert!(close(
            Contingency::new(&[0, 1, 2], &[0, 1, 2]).adjusted_rand_index(),
            1.0
        ));
        // No item, one item: nothing to disagree on.
        assert!(close(Contingency::new(&[], &[]).adjusted_rand_index(), 1.0));
        assert!(close(
            Contingency::new(&[3], &[4]).adjusted_rand_index(),
            1.0
        ));
    }

    #[test]
    fn bcubed_by_hand() {
        // Gold {0,1,2}{3,4}; predicted {0,1}{2,3,4}.
        // Precision per item: 0,1 → 2/2; 2 → 1/3; 3,4 → 2/3 ⇒ (1+1+1/3+2/3+2/3)/5 = 11/15.
        // Recall per item: 0,1 → 2/3; 2 → 1/3; 3,4 → 2/2 ⇒ (2/3+2/3+1/3+1+1)/5 = 11/15.
        let (p, r) = Contingency::new(&[0, 0, 0, 1, 1], &[0, 0, 1, 1, 1])
            .bcubed()
            .unwrap();
        assert!(close(p, 11.0 / 15.0) && close(r, 11.0 / 15.0));
        // All in one predicted cluster: recall 1, precision (3·3/5 + 2·2/5)/5 = 13/25.
        let (p, r) = Contingency::new(&[0, 0, 0, 1, 1], &[7; 5])
            .bcubed()
            .unwrap();
        assert!(close(p, 13.0 / 25.0) && close(r, 1.0));
        // All singletons: precision 1, recall (3·1/3 + 2·1/2)/5 = 2/5.
        let (p, r) = Contingency::new(&[0, 0, 0, 1, 1], &[0, 1, 2, 3, 4])
            .bcubed()
            .unwrap();
        assert!(close(p, 1.0) && close(r, 0.4));
        assert_eq!(Contingency::new(&[], &[]).bcubed(), None);
    }

    #[test]
    fn pairwise_counts_from_the_table() {
        // Gold {0,1,2}{3,4}: 3 + 1 = 4 positive pairs; predicted {0,1}{2,3,4}: 1 + 3 = 4
        // predicted pairs; shared: (0,1) and (3,4).
        let c = Contingency::new(&[0, 0, 0, 1, 1], &[0, 0, 1, 1, 1]);
        assert_eq!(
            c.pair_confusion(),
            Confusion {
                true_positives: 2,
                false_positives: 2,
                false_negatives: 2
            }
        );
        assert_eq!(c.items(), 5);
    }
}
