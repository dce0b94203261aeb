//! The score components of a candidate pair (see [`Components`]).

use super::features::StoryDoc;
use super::model::{COMPONENTS, Components};
use super::stats::StoryStats;
use crate::verify::intersection_size;

/// A document's features with the IDF weight of each term and name looked up once.
#[derive(Debug)]
pub struct Weighted<'d> {
    /// The features.
    pub doc: &'d StoryDoc,
    /// IDF of each of `doc.terms`.
    pub term_weights: Vec<f32>,
    /// Sum of `term_weights`.
    pub term_total: f64,
    /// IDF of each of `doc.names`.
    pub name_weights: Vec<f32>,
    /// Sum of `name_weights`.
    pub name_total: f64,
}

impl<'d> Weighted<'d> {
    /// Looks up the weights of `doc` in `stats`.
    pub fn new(doc: &'d StoryDoc, stats: &StoryStats) -> Self {
        let term_weights: Vec<f32> = doc.terms.iter().map(|&t| stats.idf(t) as f32).collect();
        let name_weights: Vec<f32> = doc.names.iter().map(|&t| stats.idf(t) as f32).collect();
        Weighted {
            doc,
            term_total: term_weights.iter().map(|&w| f64::from(w)).sum(),
            name_total: name_weights.iter().map(|&w| f64::from(w)).sum(),
            term_weights,
            name_weights,
        }
    }
}

/// Weight of the intersection of two sorted key lists (weights of the first list).
fn shared_weight(a: &[u64], weights: &[f32], b: &[u64]) -> f64 {
    let (mut i, mut j, mut sum) = (0, 0, 0.0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                sum += f64::from(weights[i]);
                i += 1;
                j += 1;
            }
        }
    }
    sum
}

fn ratio(num: f64, den: f64) -> f64 {
    if den > 0.0 { (num / den).min(1.0) } else { 0.0 }
}

/// Among slots both documents fill, the fraction filled with no common figure.
fn slot_conflict(a: &[(u64, u64)], b: &[(u64, u64)]) -> f64 {
    let (mut i, mut j) = (0, 0);
    let (mut shared, mut conflicting) = (0u32, 0u32);
    while i < a.len() && j < b.len() {
        let (sa, sb) = (a[i].0, b[j].0);
        if sa < sb {
            i += 1;
        } else if sb < sa {
            j += 1;
        } else {
            let ea = i + a[i..].iter().take_while(|x| x.0 == sa).count();
            let eb = j + b[j..].iter().take_while(|x| x.0 == sb).count();
            let agree = a[i..ea].iter().any(|x| b[j..eb].iter().any(|y| y.1 == x.1));
            shared += 1;
            conflicting += u32::from(!agree);
            i = ea;
            j = eb;
        }
    }
    ratio(f64::from(conflicting), f64::from(shared))
}

/// The components of a pair; `shingles` are the (containment a in b, containment b in a,
/// Jaccard) of their word shingle sets.
pub fn components(a: &Weighted<'_>, b: &Weighted<'_>, shingles: (f64, f64, f64)) -> Components {
    let (da, db) = (a.doc, b.doc);
    let terms = shared_weight(&da.terms, &a.term_weights, &db.terms);
    let names = shared_weight(&da.names, &a.name_weights, &db.names);
    let figures = intersection_size(&da.figures, &db.figures) as f64;
    let figure_union = (da.figures.len() + db.figures.len()) as f64 - figures;
    let (wa, wb) = (da.weekdays, db.weekdays);
    let weekday_conflict = wa != 0 && wb != 0 && (wa & wb) != wa && (wa & wb) != wb;
    let (first_differs, first_same) = match (da.first_weekday, db.first_weekday) {
        (Some(x), Some(y)) => (x != y, x == y),
        _ => (false, false),
    };
    let flag = |b: bool| f64::from(u8::from(b));
    let c: [f64; COMPONENTS] = [
        ratio(terms, a.term_total + b.term_total - terms),
        ratio(terms, a.term_total.min(b.term_total)),
        shingles.0.max(shingles.1),
        shingles.2,
        ratio(names, a.name_total + b.name_total - names),
        ratio(figures, figure_union),
        ratio(
            intersection_size(&da.quotes, &db.quotes) as f64,
            da.quotes.len().min(db.quotes.len()) as f64,
        ),
        slot_conflict(&da.slots, &db.slots),
        flag(weekday_conflict),
        flag(first_differs),
        flag(first_same),
    ];
    Components(c)
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
            &Weighted::new(&da, &stats),
            &Weighted::new(&db, &stats),
            (0.0, 0.0, 0.0),
        )
    }

    #[test]
    fn identical_texts_score_one_without_conflicts() {
        let t = "Shares in Acme rose 5% on Monday after Chief Executive Jane Roe said profit grew.";
        let c = pair(t, t);
        assert_eq!(&c.0[..2], &[1.0, 1.0]);
        assert_eq!(&c.0[4..], &[1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
    }

    #[test]
    fn figures_in_the_same_slot_conflict() {
        let c = pair(
            "The weekly chart: sales rose 5% and exports rose 7% on Friday.",
            "The weekly chart: sales rose 3% and exports rose 7% on Thursday.",
        );
        // Slot "rose" holds {5, 7} and {3, 7}: they share 7, so no conflict there.
        assert_eq!(c.0[7], 0.0);
        let c = pair(
            "Sales climbed 5% this quarter.",
            "Sales climbed 3% this quarter.",
        );
        assert_eq!(c.0[7], 1.0);
        assert_eq!(c.0[5], 0.0);
        assert_eq!((c.0[8], c.0[9]), (0.0, 0.0));
        let c = pair("Talks on Monday and Tuesday.", "Talks on Wednesday.");
        assert_eq!((c.0[8], c.0[9], c.0[10]), (1.0, 1.0, 0.0));
    }
}
