//! The story decision: a logistic model over the score components of a pair.
//!
//! `p = 1 / (1 + e^-(bias + Σ weightᵢ · componentᵢ))`; a pair is one story when `p`
//! reaches the model's threshold. The committed weights ([`Model::fitted`]) were fitted
//! on labelled pairs with `examples/story_fit.rs`; the command, the data set and the
//! cross-validated figures are in BENCHMARKS.md.

/// Number of score components.
pub const COMPONENTS: usize = 11;

/// Names of the score components, in vector order (they name the output fields).
pub const COMPONENT_NAMES: [&str; COMPONENTS] = [
    "term_weighted_jaccard",
    "term_weighted_containment",
    "shingle_containment",
    "shingle_jaccard",
    "name_weighted_jaccard",
    "figure_jaccard",
    "quote_containment",
    "figure_slot_conflict",
    "weekday_conflict",
    "first_weekday_differs",
    "first_weekday_same",
];

/// The score components of a pair, each in [0, 1].
///
/// * `term_weighted_jaccard`: IDF-weighted Jaccard of the content words;
/// * `term_weighted_containment`: the same overlap over the smaller side's weight;
/// * `shingle_containment`, `shingle_jaccard`: of the word shingles (shared text; the
///   larger of the two containments);
/// * `name_weighted_jaccard`: IDF-weighted Jaccard of names;
/// * `figure_jaccard`: Jaccard of the figures;
/// * `quote_containment`: shared quoted word pairs over the smaller side's;
/// * `figure_slot_conflict`: among the template slots (a figure and the word before it)
///   both texts fill, the fraction filled with different figures — yesterday's report;
/// * `weekday_conflict`: 1 when both name weekdays and neither set contains the other;
/// * `first_weekday_differs` / `first_weekday_same`: the first weekday each names.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Components(pub [f64; COMPONENTS]);

impl Components {
    /// IDF-weighted Jaccard of the content words.
    pub fn term_weighted_jaccard(&self) -> f64 {
        self.0[0]
    }
    /// Larger containment of word shingles.
    pub fn shingle_containment(&self) -> f64 {
        self.0[2]
    }
    /// Jaccard of word shingles.
    pub fn shingle_jaccard(&self) -> f64 {
        self.0[3]
    }
}

/// A logistic model and its decision threshold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Model {
    /// Intercept.
    pub bias: f64,
    /// One weight per component.
    pub weights: [f64; COMPONENTS],
    /// Lowest probability decided as one story.
    pub threshold: f64,
}

impl Model {
    /// The weights committed with neardup (see the module documentation).
    pub fn fitted() -> Self {
        FITTED
    }

    /// Probability that the pair is one story.
    pub fn probability(&self, c: &Components) -> f64 {
        let z = self.bias
            + self
                .weights
                .iter()
                .zip(c.0.iter())
                .map(|(w, x)| w * x)
                .sum::<f64>();
        1.0 / (1.0 + (-z).exp())
    }

    /// Whether the pair is one story.
    pub fn same_story(&self, c: &Components) -> bool {
        self.probability(c) >= self.threshold
    }
}

/// Fitted on all 320 pairs of `bbc-same-story.jsonl` over `bbc-news.jsonl` by
/// `cargo run --release --example story_fit -- ../shared/data/bbc-news.jsonl
/// ../shared/data/labels/bbc-same-story.jsonl --l2 0.1` (cross-validated figures in
/// BENCHMARKS.md).
const FITTED: Model = Model {
    bias: -5.0080,
    weights: [
        4.3556,  // term_weighted_jaccard
        2.0295,  // term_weighted_containment
        2.3107,  // shingle_containment
        1.5977,  // shingle_jaccard
        -0.5530, // name_weighted_jaccard
        0.6650,  // figure_jaccard
        -0.7536, // quote_containment
        -1.0893, // figure_slot_conflict
        -5.3308, // weekday_conflict
        1.2363,  // first_weekday_differs
        1.2622,  // first_weekday_same
    ],
    threshold: 0.25,
};

/// How a same-story pair relates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// The same text, give or take small edits, a headline or a trimmed paragraph.
    Copy,
    /// Shares a core of text, and adds or changes material.
    Update,
    /// The same story in other words.
    Rewrite,
}

impl Kind {
    /// Lower-case name, as written in the output.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Copy => "copy",
            Kind::Update => "update",
            Kind::Rewrite => "rewrite",
        }
    }

    /// The kind of a same-story pair, from how much text it shares.
    ///
    /// Copy: one text is almost entirely inside the other (≥ 85% of its shingles) and
    /// they are largely the same (Jaccard ≥ 0.5). Update: at least 20% of one text's
    /// shingles are in the other. Rewrite: less shared text than that.
    pub fn of(c: &Components) -> Kind {
        if c.shingle_containment() >= 0.85 && c.shingle_jaccard() >= 0.5 {
            Kind::Copy
        } else if c.shingle_containment() >= 0.2 {
            Kind::Update
        } else {
            Kind::Rewrite
        }
    }
}

/// One labelled example for fitting.
#[derive(Clone, Copy, Debug)]
pub struct Example {
    /// Score components of the pair.
    pub components: Components,
    /// Whether the pair is one story.
    pub same: bool,
}

/// Fits a logistic model by gradient descent on standardized components with an L2
/// penalty `l2` (deterministic: fixed step and iteration count), then picks the
/// threshold that maximizes F1 on the examples themselves.
pub fn fit(examples: &[Example], l2: f64) -> Model {
    let n = examples.len().max(1) as f64;
    let mut mean = [0.0; COMPONENTS];
    let mut sd = [0.0; COMPONENTS];
    for e in examples {
        for (m, x) in mean.iter_mut().zip(e.components.0) {
            *m += x / n;
        }
    }
    for e in examples {
        for i in 0..COMPONENTS {
            sd[i] += (e.components.0[i] - mean[i]).powi(2) / n;
        }
    }
    for s in &mut sd {
        *s = s.sqrt().max(1e-6);
    }
    let z: Vec<[f64; COMPONENTS]> = examples
        .iter()
        .map(|e| std::array::from_fn(|i| (e.components.0[i] - mean[i]) / sd[i]))
        .collect();
    let (mut w, mut b) = ([0.0; COMPONENTS], 0.0);
    const STEP: f64 = 0.5;
    for _ in 0..4000 {
        let mut gw = [0.0; COMPONENTS];
        let mut gb = 0.0;
        for (x, e) in z.iter().zip(examples) {
            let s: f64 = b + w.iter().zip(x).map(|(w, x)| w * x).sum::<f64>();
            let err = 1.0 / (1.0 + (-s).exp()) - f64::from(u8::from(e.same));
            gb += err / n;
            for i in 0..COMPONENTS {
                gw[i] += err * x[i] / n;
            }
        }
        for i in 0..COMPONENTS {
            w[i] -= STEP * (gw[i] + l2 * w[i] / n);
        }
        b -= STEP * gb;
    }
    // Back to raw components: w·(x − μ)/σ + b.
    let weights: [f64; COMPONENTS] = std::array::from_fn(|i| w[i] / sd[i]);
    let bias = b - (0..COMPONENTS).map(|i| w[i] * mean[i] / sd[i]).sum::<f64>();
    let mut model = Model {
        bias,
        weights,
        threshold: 0.5,
    };
    model.threshold = best_threshold(&model, examples);
    model
}

/// The probability cut (among 0.05, 0.10, …, 0.95) with the best F1 on `examples`;
/// ties go to the higher cut (fewer merges).
pub fn best_threshold(model: &Model, examples: &[Example]) -> f64 {
    let probs: Vec<(f64, bool)> = examples
        .iter()
        .map(|e| (model.probability(&e.components), e.same))
        .collect();
    let mut best = (f64::MIN, 0.5);
    for step in 1..20 {
        let t = f64::from(step) * 0.05;
        let (mut tp, mut fp, mut fn_) = (0.0f64, 0.0f64, 0.0f64);
        for &(p, same) in &probs {
            match (p >= t, same) {
                (true, true) => tp += 1.0,
                (true, false) => fp += 1.0,
                (false, true) => fn_ += 1.0,
                _ => {}
            }
        }
        let f1 = 2.0 * tp / (2.0 * tp + fp + fn_).max(1.0);
        if f1 >= best.0 {
            best = (f1, t);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(x0: f64, same: bool) -> Example {
        let mut c = [0.0; COMPONENTS];
        c[0] = x0;
        Example {
            components: Components(c),
            same,
        }
    }

    #[test]
    fn fitting_separates_a_separable_set() {
        let examples: Vec<Example> = (0..40)
            .map(|i| example(f64::from(i) / 40.0, i >= 24))
            .collect();
        let model = fit(&examples, 0.1);
        assert!(model.weights[0] > 0.0);
        for e in &examples {
            assert_eq!(model.same_story(&e.components), e.same, "{e:?}");
        }
    }

    #[test]
    fn kinds_follow_shared_text() {
        let with = |containment: f64, jaccard: f64| {
            let mut c = [0.0; COMPONENTS];
            c[2] = containment;
            c[3] = jaccard;
            Kind::of(&Components(c))
        };
        assert_eq!(with(1.0, 0.95), Kind::Copy);
        assert_eq!(with(0.95, 0.4), Kind::Update);
        assert_eq!(with(0.3, 0.1), Kind::Update);
        assert_eq!(with(0.05, 0.01), Kind::Rewrite);
    }
}
