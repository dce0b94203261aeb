//! The score components of a candidate pair (see [`Components`]).

use std::borrow::Cow;

use super::features::StoryView;
use super::model::{COMPONENTS, Component, Components};
use super::stats::StoryStats;
use crate::verify::intersection_size;

/// A document's features with the IDF weight of each term and name looked up once.
#[derive(Debug)]
pub struct Weighted<'d> {
    /// The features.
    pub doc: StoryView<'d>,
    /// IDF of each of `doc.terms`; negative for a rare term (its weight is the absolute
    /// value), so that one array carries both.
    term_weights: Cow<'d, [f32]>,
    /// IDF of each of `doc.names`, negative when rare, as `term_weights`.
    name_weights: Cow<'d, [f32]>,
    /// Sum of the term weights.
    term_total: f64,
    /// Sum of the squared term weights.
    term_squares: f64,
    /// Sum of the name weights.
    name_total: f64,
    /// Sum of the weights of rare terms and names.
    rare_total: f64,
}

impl<'d> Weighted<'d> {
    /// Each content term with its IDF.
    pub fn term_idfs(&self) -> impl Iterator<Item = (u64, f64)> + '_ {
        (self.doc.terms.iter().zip(self.term_weights.iter()))
            .map(|(&t, &w)| (t, f64::from(w.abs())))
    }

    /// Looks up the weights of `doc` in `stats`.
    pub fn new(doc: StoryView<'d>, stats: &StoryStats) -> Self {
        let rare = stats.rare_idf();
        let signed = |key: &u64| {
            let w = stats.idf(*key);
            if w >= rare { -(w as f32) } else { w as f32 }
        };
        let term_weights: Vec<f32> = doc.terms.iter().map(signed).collect();
        let name_weights: Vec<f32> = doc.names.iter().map(signed).collect();
        let (mut term_total, mut term_squares, mut name_total, mut rare_total) =
            (0.0, 0.0, 0.0, 0.0);
        for &w in &term_weights {
            let x = f64::from(w.abs());
            term_total += x;
            term_squares += x * x;
            if w < 0.0 {
                rare_total += x;
            }
        }
        for &w in &name_weights {
            let x = f64::from(w.abs());
            name_total += x;
            if w < 0.0 {
                rare_total += x;
            }
        }
        Weighted {
            doc,
            term_weights: Cow::Owned(term_weights),
            name_weights: Cow::Owned(name_weights),
            term_total,
            term_squares,
            name_total,
            rare_total,
        }
    }

    /// Appends the weights (not the features) to `out` as words (see [`Self::decode`]).
    pub fn encode_weights_into(&self, out: &mut Vec<u64>) {
        out.extend(
            [
                self.term_total,
                self.term_squares,
                self.name_total,
                self.rare_total,
            ]
            .map(f64::to_bits),
        );
        for weights in [&self.term_weights, &self.name_weights] {
            // Two weights to a word, the last one padded.
            let start = out.len();
            out.resize(start + weights.len().div_ceil(2), 0);
            bytemuck::cast_slice_mut::<u64, f32>(&mut out[start..])[..weights.len()]
                .copy_from_slice(weights);
        }
    }

    /// The features `doc` with the weights [`Self::encode_weights_into`] wrote to
    /// `words`, borrowed from them; `None` when `words` do not hold weights for `doc`.
    pub fn decode(doc: StoryView<'d>, words: &'d [u64]) -> Option<Self> {
        let totals = words.get(..4)?;
        let mut rest = &words[4..];
        let mut weights = |n: usize| -> Option<&'d [f32]> {
            let packed = rest.get(..n.div_ceil(2))?;
            rest = &rest[n.div_ceil(2)..];
            Some(&bytemuck::cast_slice(packed)[..n])
        };
        let term_weights = weights(doc.terms.len())?;
        let name_weights = weights(doc.names.len())?;
        if !rest.is_empty() {
            return None;
        }
        Some(Weighted {
            doc,
            term_weights: Cow::Borrowed(term_weights),
            name_weights: Cow::Borrowed(name_weights),
            term_total: f64::from_bits(totals[0]),
            term_squares: f64::from_bits(totals[1]),
            name_total: f64::from_bits(totals[2]),
            rare_total: f64::from_bits(totals[3]),
        })
    }
}

/// Weights of the intersection of two sorted key lists (weights of the first list):
/// `(Σ w, Σ w², Σ w over rare keys)`.
fn shared_weight(a: &[u64], weights: &[f32], b: &[u64]) -> (f64, f64, f64) {
    let (mut i, mut j) = (0, 0);
    let (mut sum, mut squares, mut rare) = (0.0, 0.0, 0.0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                let w = f64::from(weights[i]);
                let x = w.abs();
                sum += x;
                squares += x * x;
                if w < 0.0 {
                    rare += x;
                }
                i += 1;
                j += 1;
            }
        }
    }
    (sum, squares, rare)
}

fn ratio(num: f64, den: f64) -> f64 {
    if den > 0.0 { (num / den).min(1.0) } else { 0.0 }
}

/// Among slots both documents fill: `(shared slots, slots filled with no common value)`.
fn slot_conflicts(a: &[[u64; 2]], b: &[[u64; 2]]) -> (u32, u32) {
    let (mut i, mut j) = (0, 0);
    let (mut shared, mut conflicting) = (0u32, 0u32);
    while i < a.len() && j < b.len() {
        let (sa, sb) = (a[i][0], b[j][0]);
        if sa < sb {
            i += 1;
        } else if sb < sa {
            j += 1;
        } else {
            let ea = i + a[i..].iter().take_while(|x| x[0] == sa).count();
            let eb = j + b[j..].iter().take_while(|x| x[0] == sb).count();
            let agree = a[i..ea]
                .iter()
                .any(|x| b[j..eb].iter().any(|y| y[1] == x[1]));
            shared += 1;
            conflicting += u32::from(!agree);
            i = ea;
            j = eb;
        }
    }
    (shared, conflicting)
}

/// Conflicting slots at which [`Component::ConflictingSlots`] saturates.
pub const CONFLICTING_SLOTS_FULL: u32 = 3;
/// Back references at which [`Component::BackReference`] saturates.
const BACK_REFERENCES_FULL: u32 = 2;

/// The components of a pair; `shingles` are the (containment a in b, containment b in a,
/// Jaccard) of their word shingle sets.
pub fn components(a: &Weighted<'_>, b: &Weighted<'_>, shingles: (f64, f64, f64)) -> Components {
    let (da, db) = (a.doc, b.doc);
    let (terms, term_squares, rare_terms) = shared_weight(da.terms, &a.term_weights, db.terms);
    let (names, _, rare_names) = shared_weight(da.names, &a.name_weights, db.names);
    let figures = intersection_size(da.figures, db.figures) as f64;
    let figure_union = (da.figures.len() + db.figures.len()) as f64 - figures;
    let (wa, wb) = (da.weekdays, db.weekdays);
    let weekday_conflict = wa != 0 && wb != 0 && (wa & wb) != wa && (wa & wb) != wb;
    let first_differs =
        matches!((da.first_weekday, db.first_weekday), (Some(x), Some(y)) if x != y);
    let (shared_slots, conflicting) = slot_conflicts(da.slots, db.slots);
    let (ra, rb) = (da.back_references, db.back_references);
    let back = (ra & !rb).count_ones().max((rb & !ra).count_ones());
    let flag = |b: bool| f64::from(u8::from(b));
    let mut c = [0.0; COMPONENTS];
    let mut set = |k: Component, x: f64| c[k as usize] = x;
    set(
        Component::TermWeightedJaccard,
        ratio(terms, a.term_total + b.term_total - terms),
    );
    set(
        Component::TermWeightedContainment,
        ratio(terms, a.term_total.min(b.term_total)),
    );
    set(
        Component::IdfCosine,
        ratio(term_squares, (a.term_squares * b.term_squares).sqrt()),
    );
    set(Component::ShingleContainment, shingles.0.max(shingles.1));
    set(Component::ShingleJaccard, shingles.2);
    set(
        Component::NameWeightedJaccard,
        ratio(names, a.name_total + b.name_total - names),
    );
    set(
        Component::RareFactContainment,
        ratio(rare_terms + rare_names, a.rare_total.min(b.rare_total)),
    );
    set(Component::FigureJaccard, ratio(figures, figure_union));
    set(
        Component::QuoteContainment,
        ratio(
            intersection_size(da.quotes, db.quotes) as f64,
            da.quotes.len().min(db.quotes.len()) as f64,
        ),
    );
    set(
        Component::FigureSlotConflict,
        ratio(f64::from(conflicting), f64::from(shared_slots)),
    );
    set(
        Component::ConflictingSlots,
        f64::from(conflicting.min(CONFLICTING_SLOTS_FULL)) / f64::from(CONFLICTING_SLOTS_FULL),
    );
    set(Component::WeekdayConflict, flag(weekday_conflict));
    set(Component::FirstWeekdayDiffers, flag(first_differs));
    set(
        Component::BackReference,
        f64::from(back.min(BACK_REFERENCES_FULL)) / f64::from(BACK_REFERENCES_FULL),
    );
    set(
        Component::LeadNameConflict,
        lead_names_missing(a, db).min(lead_names_missing(b, da)),
    );
    Components(c)
}

/// The IDF-weighted share of `a`'s lead names that `other` never mentions (0 for a lead
/// without names).
fn lead_names_missing(a: &Weighted<'_>, other: StoryView<'_>) -> f64 {
    let (mut missing, mut total) = (0.0, 0.0);
    for word in a.doc.lead_names {
        // Lead names are content words, so each has its weight among the terms.
        let Ok(at) = a.doc.terms.binary_search(word) else {
            continue;
        };
        let w = f64::from(a.term_weights[at].abs());
        total += w;
        if other.terms.binary_search(word).is_err() {
            missing += w;
        }
    }
    ratio(missing, total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::story::features::Extractor;

    fn pair(a: &str, b: &str) -> Components {
        let mut x = Extractor::new();
        let (da, db) = (x.extract(a), x.extract(b));
        let mut stats = StoryStats::new();
        stats.add(&da);
        stats.add(&db);
        components(
            &Weighted::new(da.view(), &stats),
            &Weighted::new(db.view(), &stats),
            (0.0, 0.0, 0.0),
        )
    }

    #[test]
    fn identical_texts_score_one_without_conflicts() {
        let t = "Shares in Acme rose 5% on Monday after Chief Executive Jane Roe said: \"Profit grew \
                 faster than any of us had dared to hope this year.\"";
        let c = pair(t, t);
        use Component::*;
        for k in [
            TermWeightedJaccard,
            TermWeightedContainment,
            IdfCosine,
            NameWeightedJaccard,
            RareFactContainment,
            FigureJaccard,
            QuoteContainment,
        ] {
            assert!((c.get(k) - 1.0).abs() < 1e-9, "{k:?}: {}", c.get(k));
        }
        for k in [
            FigureSlotConflict,
            ConflictingSlots,
            WeekdayConflict,
            FirstWeekdayDiffers,
            BackReference,
        ] {
            assert_eq!(c.get(k), 0.0, "{k:?}");
        }
    }

    #[test]
    fn figures_in_the_same_slot_conflict() {
        use Component::*;
        let c = pair(
            "The weekly chart: sales rose 5% and exports rose 7% on Friday.",
            "The weekly chart: sales rose 3% and exports rose 7% on Thursday.",
        );
        // Slot "rose" holds {5, 7} and {3, 7}: they share 7, so no conflict there.
        assert_eq!(c.get(FigureSlotConflict), 0.0);
        let c = pair(
            "Sales climbed 5% this quarter.",
            "Sales climbed 3% this quarter.",
        );
        assert_eq!(c.get(FigureSlotConflict), 1.0);
        assert!((c.get(ConflictingSlots) - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(c.get(FigureJaccard), 0.0);
        assert_eq!(
            (c.get(WeekdayConflict), c.get(FirstWeekdayDiffers)),
            (0.0, 0.0)
        );
        let c = pair("Talks on Monday and Tuesday.", "Talks on Wednesday.");
        assert_eq!(
            (c.get(WeekdayConflict), c.get(FirstWeekdayDiffers)),
            (1.0, 1.0)
        );
    }

    #[test]
    fn fractions_dates_and_conversions_are_values() {
        use Component::*;
        // 12-1/2 and 4-1/2 share the tokens 1 and 2 but are different values; the pay
        // dates differ by month.
        let c = pair(
            "Qtly div 12-1/2 cts vs 12-1/2 cts prior. Pay April 15. Record March 24.",
            "Qtly div 4-1/2 cts vs 4-1/2 cts prior. Pay May 20. Record April 10.",
        );
        assert_eq!(c.get(FigureSlotConflict), 1.0);
        assert_eq!(c.get(ConflictingSlots), 1.0);
        // The same amount converted at another day's rate.
        let c = pair(
            "The claim for $280bn (£155bn) was rejected.",
            "The claim for $280bn (£149bn) was rejected.",
        );
        assert!(c.get(ConflictingSlots) > 0.0, "{c:?}");
    }

    #[test]
    fn leads_about_different_companies_conflict() {
        use Component::LeadNameConflict;
        // The same template, another issuer: neither lead's names are in the other text.
        let c = pair(
            "Tokyo Optical is issuing a 100 mln dlr equity warrant eurobond due 1992. \
             The lead manager is Nomura International.\nThe issue is listed in Luxembourg.",
            "Sankei Building is issuing a 100 mln dlr equity warrant eurobond due 1992. \
             The lead manager is Nomura International.\nThe issue is listed in Luxembourg.",
        );
        assert!(c.get(LeadNameConflict) > 0.75, "{c:?}");
        // A rewrite names the same people, in other words and another order.
        let c = pair(
            "Russian President Vladimir Putin agreed to security guarantees for Ukraine, \
             envoy Steve Witkoff said on Sunday.",
            "Envoy Steve Witkoff said Putin had agreed that Ukraine could get guarantees. \
             Moscow gave no comment.",
        );
        assert_eq!(c.get(LeadNameConflict), 0.0, "{c:?}");
        // One lead about someone new is not enough: the other's subject is still there.
        let c = pair(
            "Acme Corp said profit rose.",
            "Analysts at Zenith Bank said Acme Corp profit rose.",
        );
        assert_eq!(c.get(LeadNameConflict), 0.0, "{c:?}");
    }

    #[test]
    fn a_retelling_of_an_earlier_day_is_a_back_reference() {
        let c = pair(
            "A court rejected the tobacco claim in a 2-1 decision.",
            "Earlier this month, a court rejected the tobacco claim. Last week lawyers appealed.",
        );
        assert_eq!(c.get(Component::BackReference), 1.0);
        let c = pair(
            "Last week the court rejected the claim.",
            "Last week the court rejected the claim, lawyers said.",
        );
        assert_eq!(c.get(Component::BackReference), 0.0);
    }
}
