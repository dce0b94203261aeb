//! Measuring passage finding against known truth.
//!
//! [`plant`] builds a test case from two real texts: passages of the source text, with
//! word edits, inserted into the host text at random word boundaries and in shuffled
//! order. [`score`] compares what an aligner reports with the planted truth using the
//! measures of the PAN text alignment task (Potthast et al., *An Evaluation Framework for
//! Plagiarism Detection*, COLING 2010), over byte positions:
//!
//! * a detection `r` **detects** a case `s` when they overlap in both documents;
//! * `s ⊓ r` is their intersection (positions in both documents) if `r` detects `s`, else
//!   nothing;
//! * precision = mean over detections of `|⋃ₛ (s ⊓ r)| / |r|`, recall = mean over cases of
//!   `|⋃ᵣ (s ⊓ r)| / |s|` (macro-averaged, as in PAN; micro-averaged variants too);
//! * granularity = mean, over detected cases, of the number of detections detecting each;
//! * plagdet = F₁(precision, recall) / log₂(1 + granularity).
//!
//! Passage-level measures: a case is **found** by a detection that detects it and shares
//! at least half of the case's positions and half of its own; case recall is the fraction
//! of cases found, case precision the fraction of detections that find a case.
//!
//! The `passage_bench` example runs it on real articles.

use super::union_len;
use std::ops::Range;

/// A small deterministic random number generator (SplitMix64).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A number in `lo..=hi`.
    pub fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// A float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How passages are planted.
#[derive(Clone, Debug)]
pub struct PlantSettings {
    /// Passages per case (inclusive range).
    pub passages: (usize, usize),
    /// Words per passage (inclusive range).
    pub words: (usize, usize),
    /// Fraction of words edited in each passage, drawn uniformly from this range.
    pub edit_rate: (f64, f64),
}

impl Default for PlantSettings {
    fn default() -> Self {
        PlantSettings {
            passages: (1, 4),
            words: (8, 200),
            edit_rate: (0.0, 0.10),
        }
    }
}

/// One planted passage: where it is in each text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Truth {
    /// Byte range in the suspicious (host) text.
    pub suspicious: Range<usize>,
    /// Byte range in the source text.
    pub source: Range<usize>,
    /// Word edits applied.
    pub edits: usize,
}

/// A test case: a host text with passages of a source text planted into it.
#[derive(Clone, Debug)]
pub struct Case {
    /// The host text with the passages inserted.
    pub suspicious: String,
    /// The source text, unchanged.
    pub source: String,
    /// The planted passages.
    pub truth: Vec<Truth>,
}

/// A reported passage, as byte ranges in both texts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detection {
    /// Byte range in the suspicious text.
    pub suspicious: Range<usize>,
    /// Byte range in the source text.
    pub source: Range<usize>,
}

/// Words separated by white space, with their byte ranges.
fn words(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push(s..i);
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(s..text.len());
    }
    out
}

/// Plants passages of `source` into `host`. Edits replace, delete or insert whole words
/// (replacement and inserted words are drawn from `vocabulary`); words are re-joined with
/// single spaces and some line breaks, and straight apostrophes are sometimes made
/// typographic (neither counts as an edit). Returns `None` if either text is too short.
pub fn plant(
    host: &str,
    source: &str,
    vocabulary: &[&str],
    settings: &PlantSettings,
    rng: &mut Rng,
) -> Option<Case> {
    let src_words = words(source);
    let host_words = words(host);
    if src_words.len() < settings.words.0 || host_words.len() < 2 || vocabulary.is_empty() {
        return None;
    }
    let wanted = rng.between(settings.passages.0, settings.passages.1);
    // Non-overlapping source stretches, at least one word apart.
    let mut taken: Vec<Range<usize>> = Vec::new();
    for _ in 0..wanted * 20 {
        if taken.len() == wanted {
            break;
        }
        let len = rng
            .between(settings.words.0, settings.words.1)
            .min(src_words.len());
        let from = rng.below(src_words.len() - len + 1);
        let stretch = from..from + len;
        if taken
            .iter()
            .all(|t| stretch.end < t.start || t.end < stretch.start)
        {
            taken.push(stretch);
        }
    }
    let mut pieces: Vec<(String, Range<usize>, usize)> = Vec::new();
    for stretch in taken {
        let rate =
            settings.edit_rate.0 + rng.unit() * (settings.edit_rate.1 - settings.edit_rate.0);
        let mut out_words: Vec<String> = Vec::new();
        let mut edits = 0;
        for w in &src_words[stretch.clone()] {
            let word = &source[w.clone()];
            let noisy = if word.contains('\'') && rng.unit() < 0.5 {
                word.replace('\'', "\u{2019}")
            } else {
                word.to_string()
            };
            if rng.unit() < rate {
                edits += 1;
                match rng.below(3) {
                    0 => out_words.push(vocabulary[rng.below(vocabulary.len())].to_string()),
                    1 => {}
                    _ => {
                        out_words.push(noisy);
                        out_words.push(vocabulary[rng.below(vocabulary.len())].to_string());
                    }
                }
            } else {
                out_words.push(noisy);
            }
        }
        if out_words.is_empty() {
            continue;
        }
        let mut text = String::new();
        for (i, w) in out_words.iter().enumerate() {
            if i > 0 {
                text.push(if rng.unit() < 0.05 { '\n' } else { ' ' });
            }
            text.push_str(w);
        }
        let bytes = src_words[stretch.start].start..src_words[stretch.end - 1].end;
        pieces.push((text, bytes, edits));
    }
    // Shuffled order, at distinct random word boundaries of the host.
    for i in (1..pieces.len()).rev() {
        pieces.swap(i, rng.below(i + 1));
    }
    let mut at: Vec<usize> = Vec::new();
    while at.len() < pieces.len().min(host_words.len()) {
        let k = rng.below(host_words.len());
        if !at.contains(&k) {
            at.push(k);
        }
    }
    at.sort_unstable();
    let mut suspicious = String::with_capacity(host.len() + 4096);
    let mut truth = Vec::new();
    let mut copied = 0;
    for (k, (text, src, edits)) in at.into_iter().zip(pieces) {
        let end = host_words[k].end;
        suspicious.push_str(&host[copied..end]);
        suspicious.push(' ');
        let start = suspicious.len();
        suspicious.push_str(&text);
        truth.push(Truth {
            suspicious: start..suspicious.len(),
            source: src,
            edits,
        });
        copied = end;
    }
    suspicious.push_str(&host[copied..]);
    Some(Case {
        suspicious,
        source: source.to_string(),
        truth,
    })
}

/// PAN measures and passage-level measures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scores {
    /// Planted passages.
    pub cases: usize,
    /// Reported passages.
    pub detections: usize,
    /// Macro-averaged character (byte) precision.
    pub precision: f64,
    /// Macro-averaged character (byte) recall.
    pub recall: f64,
    /// Mean number of detections per detected case.
    pub granularity: f64,
    /// F₁ of precision and recall over log₂(1 + granularity).
    pub plagdet: f64,
    /// Micro-averaged precision.
    pub micro_precision: f64,
    /// Micro-averaged recall.
    pub micro_recall: f64,
    /// Plagdet with micro-averaged precision and recall.
    pub micro_plagdet: f64,
    /// Fraction of reported passages that find a planted one.
    pub passage_precision: f64,
    /// Fraction of planted passages found.
    pub passage_recall: f64,
}

fn overlap(x: &Range<usize>, y: &Range<usize>) -> usize {
    x.end.min(y.end).saturating_sub(x.start.max(y.start))
}

fn intersect(x: &Range<usize>, y: &Range<usize>) -> Range<usize> {
    x.start.max(y.start)..x.end.min(y.end).max(x.start.max(y.start))
}

fn f1(p: f64, r: f64) -> f64 {
    if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    }
}

/// Scores detections against truth over many cases (one pair of texts each).
pub fn score(cases: &[(Vec<Truth>, Vec<Detection>)]) -> Scores {
    let detects = |s: &Truth, r: &Detection| {
        overlap(&s.suspicious, &r.suspicious) > 0 && overlap(&s.source, &r.source) > 0
    };
    let size = |x: &Range<usize>, y: &Range<usize>| (x.len() + y.len()) as f64;
    let (mut prec_sum, mut rec_sum) = (0.0, 0.0);
    let (mut n_s, mut n_r) = (0usize, 0usize);
    let (mut gran_sum, mut detected) = (0usize, 0usize);
    let (mut micro_hit, mut micro_r, mut micro_s) = (0usize, 0usize, 0usize);
    let (mut found_cases, mut good_detections) = (0usize, 0usize);
    for (truth, detections) in cases {
        n_s += truth.len();
        n_r += detections.len();
        for r in detections {
            let (sus, src): (Vec<_>, Vec<_>) = truth
                .iter()
                .filter(|s| detects(s, r))
                .map(|s| {
                    (
                        intersect(&s.suspicious, &r.suspicious),
                        intersect(&s.source, &r.source),
                    )
                })
                .unzip();
            let hit = union_len(sus.into_iter()) + union_len(src.into_iter());
            prec_sum += hit as f64 / size(&r.suspicious, &r.source).max(1.0);
            if truth.iter().any(|s| finds(s, r)) {
                good_detections += 1;
            }
        }
        for s in truth {
            let by: Vec<&Detection> = detections.iter().filter(|r| detects(s, r)).collect();
            let sus: Vec<_> = by
                .iter()
                .map(|r| intersect(&s.suspicious, &r.suspicious))
                .collect();
            let src: Vec<_> = by.iter().map(|r| intersect(&s.source, &r.source)).collect();
            rec_sum += (union_len(sus.into_iter()) + union_len(src.into_iter())) as f64
                / size(&s.suspicious, &s.source).max(1.0);
            if !by.is_empty() {
                detected += 1;
                gran_sum += by.len();
            }
            if by.iter().any(|r| finds(s, r)) {
                found_cases += 1;
            }
        }
        // Micro: unions over the whole case pair.
        let mut hit_sus = Vec::new();
        let mut hit_src = Vec::new();
        for s in truth {
            for r in detections.iter().filter(|r| detects(s, r)) {
                hit_sus.push(intersect(&s.suspicious, &r.suspicious));
                hit_src.push(intersect(&s.source, &r.source));
            }
        }
        micro_hit += union_len(hit_sus.into_iter()) + union_len(hit_src.into_iter());
        micro_r += union_len(detections.iter().map(|r| r.suspicious.clone()))
            + union_len(detections.iter().map(|r| r.source.clone()));
        micro_s += union_len(truth.iter().map(|s| s.suspicious.clone()))
            + union_len(truth.iter().map(|s| s.source.clone()));
    }
    let ratio = |x: f64, n: usize| if n == 0 { 0.0 } else { x / n as f64 };
    let precision = if n_r == 0 { 1.0 } else { prec_sum / n_r as f64 };
    let recall = ratio(rec_sum, n_s);
    let granularity = if detected == 0 {
        1.0
    } else {
        gran_sum as f64 / detected as f64
    };
    let micro_precision = if micro_r == 0 {
        1.0
    } else {
        micro_hit as f64 / micro_r as f64
    };
    let micro_recall = ratio(micro_hit as f64, micro_s);
    Scores {
        cases: n_s,
        detections: n_r,
        precision,
        recall,
        granularity,
        plagdet: f1(precision, recall) / (1.0 + granularity).log2(),
        micro_precision,
        micro_recall,
        micro_plagdet: f1(micro_precision, micro_recall) / (1.0 + granularity).log2(),
        passage_precision: if n_r == 0 {
            1.0
        } else {
            good_detections as f64 / n_r as f64
        },
        passage_recall: ratio(found_cases as f64, n_s),
    }
}

/// Builds `cases` test cases from random pairs of `articles` (host, source; each pair
/// checked to share no passage beforehand), with replacement words drawn from a third
/// article, and scores [`super::passages_between`] with `settings` on them.
///
/// Deterministic for a seed; the cases are aligned in parallel.
pub fn benchmark(
    articles: &[&str],
    cases: usize,
    plant_settings: &PlantSettings,
    settings: &super::PassageSettings,
    seed: u64,
) -> Scores {
    use rayon::prelude::*;
    let mut rng = Rng::new(seed);
    let mut built: Vec<Case> = Vec::with_capacity(cases);
    let mut attempts = 0;
    while built.len() < cases && articles.len() >= 3 && attempts < cases * 20 {
        attempts += 1;
        let (h, s, v) = (
            rng.below(articles.len()),
            rng.below(articles.len()),
            rng.below(articles.len()),
        );
        if h == s || s == v || h == v {
            continue;
        }
        if !super::passages_between(articles[h], articles[s], settings).is_empty() {
            continue; // the two already share text: the truth would be incomplete
        }
        let vocabulary: Vec<&str> = articles[v].split_whitespace().collect();
        if let Some(case) = plant(
            articles[h],
            articles[s],
            &vocabulary,
            plant_settings,
            &mut rng,
        ) {
            built.push(case);
        }
    }
    let scored: Vec<(Vec<Truth>, Vec<Detection>)> = built
        .into_par_iter()
        .map(|case| {
            let detections = super::passages_between(&case.suspicious, &case.source, settings)
                .into_iter()
                .map(|p| Detection {
                    suspicious: p.a.range(),
                    source: p.b.range(),
                })
                .collect();
            (case.truth, detections)
        })
        .collect();
    score(&scored)
}

/// A detection finds a case when it shares at least half of the case and half of itself.
fn finds(s: &Truth, r: &Detection) -> bool {
    let shared = (overlap(&s.suspicious, &r.suspicious) + overlap(&s.source, &r.source)) as f64;
    let case = (s.suspicious.len() + s.source.len()) as f64;
    let own = (r.suspicious.len() + r.source.len()) as f64;
    overlap(&s.suspicious, &r.suspicious) > 0
        && overlap(&s.source, &r.source) > 0
        && shared >= 0.5 * case
        && shared >= 0.5 * own
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(a: Range<usize>, b: Range<usize>) -> Truth {
        Truth {
            suspicious: a,
            source: b,
            edits: 0,
        }
    }
    fn d(a: Range<usize>, b: Range<usize>) -> Detection {
        Detection {
            suspicious: a,
            source: b,
        }
    }

    #[test]
    fn perfect_detection_scores_one() {
        let s = score(&[(
            vec![t(10..20, 0..10), t(30..50, 40..60)],
            vec![d(10..20, 0..10), d(30..50, 40..60)],
        )]);
        assert_eq!(
            (s.precision, s.recall, s.granularity, s.plagdet),
            (1.0, 1.0, 1.0, 1.0)
        );
        assert_eq!((s.passage_precision, s.passage_recall), (1.0, 1.0));
    }

    #[test]
    fn split_and_partial_detections() {
        // One case found in two halves: full recall and precision, granularity 2.
        let s = score(&[(
            vec![t(0..100, 0..100)],
            vec![d(0..50, 0..50), d(50..100, 50..100)],
        )]);
        assert_eq!((s.precision, s.recall, s.granularity), (1.0, 1.0, 2.0));
        assert!((s.plagdet - 1.0 / 3f64.log2()).abs() < 1e-12);
        // A detection half outside the case; a false detection elsewhere.
        let s = score(&[(
            vec![t(0..100, 0..100)],
            vec![d(50..150, 50..150), d(300..400, 300..400)],
        )]);
        assert_eq!(s.recall, 0.5);
        assert_eq!(s.precision, (0.5 + 0.0) / 2.0);
        assert_eq!((s.passage_precision, s.passage_recall), (0.5, 1.0));
        // Overlap in one document only is no detection.
        let s = score(&[(vec![t(0..100, 0..100)], vec![d(0..100, 200..300)])]);
        assert_eq!((s.precision, s.recall), (0.0, 0.0));
    }

    #[test]
    fn planted_passages_are_where_the_truth_says() {
        let host = "a b c d e f g h i j k l m n o p q r s t u v w x y z";
        let source = "one two three four five six seven eight nine ten eleven twelve thirteen \
                      fourteen fifteen sixteen seventeen eighteen nineteen twenty";
        let settings = PlantSettings {
            passages: (2, 3),
            words: (3, 6),
            edit_rate: (0.0, 0.0),
        };
        let mut rng = Rng::new(7);
        for _ in 0..50 {
            let case = plant(host, source, &["zzz"], &settings, &mut rng).unwrap();
            assert!(case.truth.len() >= 2);
            for t in &case.truth {
                let planted: Vec<&str> = case.suspicious[t.suspicious.clone()]
                    .split_whitespace()
                    .collect();
                let original: Vec<&str> =
                    case.source[t.source.clone()].split_whitespace().collect();
                assert_eq!(planted, original);
            }
            let rest: String = case
                .suspicious
                .split_whitespace()
                .filter(|w| w.len() == 1)
                .collect();
            assert_eq!(
                rest,
                host.replace(' ', ""),
                "the host text is intact around the passages"
            );
        }
    }
}
