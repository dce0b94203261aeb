//! The story decision: a logistic model over the score components of a pair.
//!
//! `p = 1 / (1 + e^-(bias + Σ weightᵢ · componentᵢ))`; a pair is one story when `p`
//! reaches the model's threshold. The committed weights ([`Model::fitted`]) were fitted
//! on labelled pairs with `examples/story_fit.rs`; the command, the data set and the
//! cross-validated figures are in BENCHMARKS.md.

/// Number of score components.
pub const COMPONENTS: usize = 15;

/// One score component of a pair; every value is in [0, 1].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(usize)]
pub enum Component {
    /// IDF-weighted Jaccard of the content words.
    TermWeightedJaccard,
    /// The same overlap over the smaller side's weight.
    TermWeightedContainment,
    /// Cosine of the IDF-weighted word vectors (the TF-IDF baseline, on word sets).
    IdfCosine,
    /// The larger containment of the word shingles (shared text).
    ShingleContainment,
    /// Jaccard of the word shingles.
    ShingleJaccard,
    /// IDF-weighted Jaccard of names.
    NameWeightedJaccard,
    /// IDF-weighted overlap of the rare words and names (the specific facts) over the
    /// smaller side's: high for rewrites, which share facts but few word sequences.
    RareFactContainment,
    /// Jaccard of the values (figures, dates).
    FigureJaccard,
    /// Shared quoted word pairs over the smaller side's.
    QuoteContainment,
    /// Among the template slots both texts fill (a value and the word or amount before
    /// it), the fraction filled with different values: yesterday's report.
    FigureSlotConflict,
    /// How many slots conflict (0, 1, 2, 3 or more → 0, ⅓, ⅔, 1).
    ConflictingSlots,
    /// 1 when both name weekdays and neither set contains the other.
    WeekdayConflict,
    /// 1 when the first weekdays they name differ.
    FirstWeekdayDiffers,
    /// References to an earlier time ("last week", "earlier this month") one text makes
    /// and the other does not (0, 1, 2 or more → 0, ½, 1): a follow-up retelling.
    BackReference,
    /// How much of each lead's names (IDF-weighted) the other text never mentions, the
    /// smaller of the two shares: 1 when each lead is about someone the other text does
    /// not name (another company's notice in the same template).
    LeadNameConflict,
}

impl Component {
    /// Every component, in vector order.
    pub const ALL: [Component; COMPONENTS] = [
        Component::TermWeightedJaccard,
        Component::TermWeightedContainment,
        Component::IdfCosine,
        Component::ShingleContainment,
        Component::ShingleJaccard,
        Component::NameWeightedJaccard,
        Component::RareFactContainment,
        Component::FigureJaccard,
        Component::QuoteContainment,
        Component::FigureSlotConflict,
        Component::ConflictingSlots,
        Component::WeekdayConflict,
        Component::FirstWeekdayDiffers,
        Component::BackReference,
        Component::LeadNameConflict,
    ];

    /// The snake_case name (output field).
    pub fn name(self) -> &'static str {
        COMPONENT_NAMES[self as usize]
    }

    /// The component with this name.
    pub fn from_name(name: &str) -> Option<Component> {
        COMPONENT_NAMES
            .iter()
            .position(|&n| n == name)
            .map(|i| Component::ALL[i])
    }
}

/// Names of the score components, in vector order (they name the output fields).
pub const COMPONENT_NAMES: [&str; COMPONENTS] = [
    "term_weighted_jaccard",
    "term_weighted_containment",
    "idf_cosine",
    "shingle_containment",
    "shingle_jaccard",
    "name_weighted_jaccard",
    "rare_fact_containment",
    "figure_jaccard",
    "quote_containment",
    "figure_slot_conflict",
    "conflicting_slots",
    "weekday_conflict",
    "first_weekday_differs",
    "back_reference",
    "lead_name_conflict",
];

/// The score components of a pair, each in [0, 1], indexed by [`Component`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Components(pub [f64; COMPONENTS]);

impl Components {
    /// One component.
    pub fn get(&self, c: Component) -> f64 {
        self.0[c as usize]
    }
    /// IDF-weighted Jaccard of the content words.
    pub fn term_weighted_jaccard(&self) -> f64 {
        self.get(Component::TermWeightedJaccard)
    }
    /// Larger containment of word shingles.
    pub fn shingle_containment(&self) -> f64 {
        self.get(Component::ShingleContainment)
    }
    /// Jaccard of word shingles.
    pub fn shingle_jaccard(&self) -> f64 {
        self.get(Component::ShingleJaccard)
    }
}

/// A logistic model, its decision threshold and its two vetoes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Model {
    /// Intercept.
    pub bias: f64,
    /// One weight per component (0 for a component the model does not use).
    pub weights: [f64; COMPONENTS],
    /// Lowest probability decided as one story.
    pub threshold: f64,
    /// The veto: a pair with at least this many conflicting template slots (0: no
    /// veto)…
    pub veto_slots: u32,
    /// …making up at least this fraction of the slots both fill, is two stories,
    /// whatever else it shares (probability 0).
    pub veto_fraction: f64,
    /// The lead veto: a pair whose [`Component::LeadNameConflict`] reaches this is two
    /// stories (0: no veto).
    pub veto_lead: f64,
}

impl Model {
    /// The weights committed with neardup (see the module documentation).
    pub fn fitted() -> Self {
        FITTED
    }

    /// Which veto, if any, rules the pair out.
    pub fn veto(&self, c: &Components) -> Option<Veto> {
        let conflicting = (c.get(Component::ConflictingSlots)
            * f64::from(super::score::CONFLICTING_SLOTS_FULL))
        .round() as u32;
        if self.veto_slots > 0
            && conflicting >= self.veto_slots
            && c.get(Component::FigureSlotConflict) >= self.veto_fraction
        {
            Some(Veto::TemplateSlots)
        } else if self.veto_lead > 0.0 && c.get(Component::LeadNameConflict) >= self.veto_lead {
            Some(Veto::LeadNames)
        } else {
            None
        }
    }

    /// Whether a veto rules the pair out.
    pub fn vetoes(&self, c: &Components) -> bool {
        self.veto(c).is_some()
    }

    /// Probability that the pair is one story under the logistic model, before the veto.
    pub fn logistic(&self, c: &Components) -> f64 {
        let z = self.bias
            + self
                .weights
                .iter()
                .zip(c.0.iter())
                .map(|(w, x)| w * x)
                .sum::<f64>();
        1.0 / (1.0 + (-z).exp())
    }

    /// Probability that the pair is one story (0 when vetoed), and the veto if one
    /// decided: both from one look at the vetoes.
    pub fn judge(&self, c: &Components) -> (f64, Option<Veto>) {
        match self.veto(c) {
            Some(veto) => (0.0, Some(veto)),
            None => (self.logistic(c), None),
        }
    }

    /// Probability that the pair is one story (0 when vetoed).
    pub fn probability(&self, c: &Components) -> f64 {
        self.judge(c).0
    }

    /// Whether the pair is one story.
    pub fn same_story(&self, c: &Components) -> bool {
        self.probability(c) >= self.threshold
    }
}

/// Fitted on all 320 pairs of `bbc-same-story.jsonl` over `bbc-news.jsonl` by
/// `cargo run --release --example story_fit -- ../shared/data/bbc-news.jsonl
/// ../shared/data/labels/bbc-same-story.jsonl` with the components it uses now (its
/// default `--use`), `--l2 0.1`, `--veto 2,0.5`, `--lead-veto 0.75`, majority linkage
/// (cross-validated figures in BENCHMARKS.md). The lead veto's share is not fitted: no
/// labelled same-story BBC pair reaches 0.54, while the different companies' notices
/// of one template on Reuters mostly reach 0.75 (BENCHMARKS.md, "Templated reports").
const FITTED: Model = Model {
    bias: -3.4499,
    weights: [
        5.4714,  // term_weighted_jaccard
        0.0,     // term_weighted_containment
        0.0,     // idf_cosine
        0.0,     // shingle_containment
        4.8804,  // shingle_jaccard
        0.0,     // name_weighted_jaccard
        0.0,     // rare_fact_containment
        0.0,     // figure_jaccard
        0.0,     // quote_containment
        0.0,     // figure_slot_conflict
        -2.5604, // conflicting_slots
        -4.6008, // weekday_conflict
        0.0,     // first_weekday_differs
        -1.5523, // back_reference
        0.0,     // lead_name_conflict
    ],
    threshold: 0.35,
    veto_slots: 2,
    veto_fraction: 0.50,
    veto_lead: 0.75,
};

/// What rules a pair two stories whatever else it shares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Veto {
    /// Template slots filled with different values: yesterday's edition of a report.
    TemplateSlots,
    /// Each lead names someone the other text never mentions: another company's notice.
    LeadNames,
}

impl Veto {
    /// The snake_case name (output field).
    pub fn name(self) -> &'static str {
        match self {
            Veto::TemplateSlots => "template_slots",
            Veto::LeadNames => "lead_names",
        }
    }

    /// The veto named `name` (as [`Veto::name`] writes it).
    pub fn from_name(name: &str) -> Option<Veto> {
        [Veto::TemplateSlots, Veto::LeadNames]
            .into_iter()
            .find(|v| v.name() == name)
    }

    /// What it means, for people.
    pub fn describe(self) -> &'static str {
        match self {
            Veto::TemplateSlots => "template slots filled with different figures",
            Veto::LeadNames => "each lead names someone the other text never mentions",
        }
    }
}

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

    /// The kind named `name` (as [`Kind::name`] writes it).
    pub fn from_name(name: &str) -> Option<Kind> {
        [Kind::Copy, Kind::Update, Kind::Rewrite]
            .into_iter()
            .find(|k| k.name() == name)
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

/// What a fit may use: which components, the L2 penalty, and the veto (applied before
/// the logistic model: vetoed examples are decided and left out of the fit).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FitSettings {
    /// Components the model uses (the others get weight 0).
    pub used: [bool; COMPONENTS],
    /// L2 penalty on the standardized weights.
    pub l2: f64,
    /// See [`Model::veto_slots`].
    pub veto_slots: u32,
    /// See [`Model::veto_fraction`].
    pub veto_fraction: f64,
    /// See [`Model::veto_lead`].
    pub veto_lead: f64,
}

/// Fits a logistic model by gradient descent on standardized components with an L2
/// penalty (deterministic: fixed step and iteration count), then picks the threshold
/// that maximizes F1 on the examples themselves (vetoed ones included, as negatives).
pub fn fit(all: &[Example], settings: &FitSettings) -> Model {
    let veto = Model {
        bias: 0.0,
        weights: [0.0; COMPONENTS],
        threshold: 0.5,
        veto_slots: settings.veto_slots,
        veto_fraction: settings.veto_fraction,
        veto_lead: settings.veto_lead,
    };
    let examples: Vec<Example> = all
        .iter()
        .filter(|e| !veto.vetoes(&e.components))
        .copied()
        .collect();
    let examples = &examples[..];
    let l2 = settings.l2;
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
    for (s, &used) in sd.iter_mut().zip(&settings.used) {
        // An unused (or constant) component is standardized to 0 and gets no weight.
        *s = if used {
            s.sqrt().max(1e-6)
        } else {
            f64::INFINITY
        };
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
        ..veto
    };
    model.threshold = best_threshold(&model, all);
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
        let settings = FitSettings {
            used: [true; COMPONENTS],
            l2: 0.1,
            veto_slots: 0,
            veto_fraction: 0.0,
            veto_lead: 0.0,
        };
        let model = fit(&examples, &settings);
        assert!(model.weights[0] > 0.0);
        assert!(
            model.weights[1..].iter().all(|&w| w == 0.0),
            "constant components"
        );
        for e in &examples {
            assert_eq!(model.same_story(&e.components), e.same, "{e:?}");
        }
        // Unused components get no weight even when they would help.
        let mut used = [false; COMPONENTS];
        used[1] = true;
        let model = fit(&examples, &FitSettings { used, ..settings });
        assert_eq!(model.weights[0], 0.0);
    }

    #[test]
    fn the_veto_overrules_the_logistic_model() {
        let mut c = [1.0; COMPONENTS];
        c[Component::ConflictingSlots as usize] = 2.0 / 3.0;
        c[Component::FigureSlotConflict as usize] = 0.5;
        c[Component::LeadNameConflict as usize] = 0.0;
        let model = Model {
            bias: 10.0,
            weights: [0.0; COMPONENTS],
            threshold: 0.5,
            veto_slots: 2,
            veto_fraction: 0.5,
            veto_lead: 0.75,
        };
        assert!(model.logistic(&Components(c)) > 0.99);
        assert_eq!(model.probability(&Components(c)), 0.0);
        c[Component::FigureSlotConflict as usize] = 0.4;
        assert!(
            model.same_story(&Components(c)),
            "a minority of slots conflict"
        );
        assert!(
            !Model {
                veto_slots: 3,
                ..model
            }
            .vetoes(&Components(c))
        );
        // Each lead names someone the other text never mentions.
        c[Component::LeadNameConflict as usize] = 0.8;
        assert_eq!(model.probability(&Components(c)), 0.0);
        assert!(
            !Model {
                veto_lead: 0.0,
                ..model
            }
            .vetoes(&Components(c)),
            "0 turns the lead veto off"
        );
    }

    #[test]
    fn kinds_follow_shared_text() {
        let with = |containment: f64, jaccard: f64| {
            let mut c = [0.0; COMPONENTS];
            c[Component::ShingleContainment as usize] = containment;
            c[Component::ShingleJaccard as usize] = jaccard;
            Kind::of(&Components(c))
        };
        assert_eq!(with(1.0, 0.95), Kind::Copy);
        assert_eq!(with(0.95, 0.4), Kind::Update);
        assert_eq!(with(0.3, 0.1), Kind::Update);
        assert_eq!(with(0.05, 0.01), Kind::Rewrite);
    }
}
