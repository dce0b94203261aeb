//! Story level: copies, updates and rewrites of one news story, kept apart from
//! look-alike stories (templated reports, running stories on other days).
//!
//! The flow, after the batch pipeline has read the documents:
//!
//! 1. [`features`]: while each document is read, its content words, names, figures with
//!    their template slot, and weekdays ([`StoryDoc`]), kept in a [`docs::StoryDocs`]
//!    store (in memory up to the memory budget, then in a temporary file);
//! 2. [`stats`]: document frequencies counted in the same pass (or loaded from a file);
//! 3. candidates: a **weighted** MinHash per document — each content word is repeated
//!    `round((idf − 3) / 0.5)` times (a lower floor than 3 below 1,000 documents) before Fast Similarity Sketching, so slot agreement
//!    estimates the weighted Jaccard (integer weights make weighted Jaccard a plain Jaccard
//!    of the expanded sets; words in over ~5% of documents weigh nothing here) — and LSH
//!    banding tuned for a low threshold (0.2 by default: 64 bands of 2 slots);
//! 4. [`score`]: the components of every candidate pair — weighted word and name overlap,
//!    shared text (word shingles), figures, figures that differ in the same slot, weekdays;
//! 5. [`model`]: a fitted logistic decision, and the pair's kind (copy, update, rewrite);
//! 6. [`link`]: majority-linkage clusters, whose representative is the earliest article.
//!
//! Dated articles further apart than the time window ([`DEFAULT_WINDOW`] unless set) are
//! never matched: the same running story on another day, and a templated report's next
//! edition, are other stories.

pub mod distributed;
pub mod docs;
pub mod features;
pub mod link;
pub mod model;
pub mod output;
pub mod score;
pub mod stats;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rayon::prelude::*;

pub use docs::StoryDocs;
pub use features::{Extractor, StoryDoc, StoryView};
pub use link::{Linkage, StoryCluster};
pub use model::{COMPONENT_NAMES, Component, Components, Kind, Model, Veto};
pub use stats::StoryStats;

use crate::cluster::RepresentativeRule;
use crate::corpus::Corpus;
use crate::index::{self, LshParams};
use crate::progress::{Observer, Stage, Ticker, go_on};
use crate::sketch::Sketcher;
use crate::verify::intersection_size;

/// Width of one weight unit in the expanded sets of the weighted sketch.
const WEIGHT_QUANTUM: f64 = 0.5;
/// Weights of the LSH error masses at the story level: the candidate threshold is low,
/// so false candidates are far more numerous than at the near-copy level.
/// (`neardup params --level story` shows the banding they give.)
pub const STORY_LSH_WEIGHTS: (f64, f64) = (0.1, 0.9);

/// The time window unless one is set: 72 hours. Wide enough for a wire story's rewrites by
/// slower outlets, narrow enough to keep weekly and monthly editions of a report apart
/// (on Reuters, 418 of 1,546 story pairs without it are further apart: the Fed's
/// repurchase notices of different weeks, monthly crop estimates; BENCHMARKS.md).
pub const DEFAULT_WINDOW: i64 = 72 * 3600;

/// Settings of the story level.
#[derive(Clone, Debug)]
pub struct StorySettings {
    /// Dated articles further apart than this many seconds are never one story (`None`:
    /// any distance). Undated articles match any.
    pub window: Option<i64>,
    /// Score against statistics loaded from this file instead of this run's.
    pub stats_in: Option<PathBuf>,
    /// The decision.
    pub model: Model,
    /// Weighted Jaccard (of the words above the sketch's IDF floor) at which a pair
    /// becomes a candidate with probability ≈ 0.93.
    pub candidate_threshold: f64,
    /// Largest LSH bucket expanded into all its pairs (see [`crate::index`]).
    pub bucket_cap: usize,
    /// Slots of the weighted signature.
    pub num_perm: usize,
    /// When two story clusters merge.
    pub linkage: link::Linkage,
    /// The record field holding a headline, whose words count with the text's (`None`:
    /// text only).
    pub title_field: Option<String>,
}

impl Default for StorySettings {
    fn default() -> Self {
        StorySettings {
            window: Some(DEFAULT_WINDOW),
            stats_in: None,
            model: Model::fitted(),
            candidate_threshold: 0.2,
            bucket_cap: 100,
            num_perm: 128,
            linkage: link::Linkage::default(),
            title_field: Some("title".into()),
        }
    }
}

impl StorySettings {
    /// Refuses settings that cannot work.
    pub fn check(&self) -> crate::Result<()> {
        let t = self.candidate_threshold;
        if !(t > 0.0 && t <= 1.0) {
            return Err(crate::Error::config(format!(
                "story candidate threshold must be in (0, 1], got {t}"
            )));
        }
        let p = self.model.threshold;
        if !(0.0..=1.0).contains(&p) {
            return Err(crate::Error::config(format!(
                "story threshold is a probability, in [0, 1]; got {p}"
            )));
        }
        if !(1..=crate::sketch::MAX_NUM_PERM).contains(&self.num_perm) {
            return Err(crate::Error::config("story num-perm out of range"));
        }
        if self.window.is_some_and(|w| w < 0) {
            return Err(crate::Error::config("the window must not be negative"));
        }
        Ok(())
    }
}

/// A pair decided to be one story.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StoryPair {
    /// First document (smaller id).
    pub a: u32,
    /// Second document.
    pub b: u32,
    /// Probability of one story under the model.
    pub probability: f32,
    /// What led to it.
    pub components: Components,
    /// Copy, update or rewrite.
    pub kind: Kind,
    /// The veto that set its probability to 0 (such a pair is listed only at a cut of 0).
    pub veto: Option<Veto>,
}

impl StoryPair {
    /// The pair as the linkage sees it.
    pub fn link(&self) -> link::Link {
        link::Link {
            a: self.a,
            b: self.b,
            probability: self.probability,
        }
    }
}

/// What the story level found.
#[derive(Debug)]
pub struct StoryOutcome {
    /// Same-story pairs, ordered by (id a, id b).
    pub pairs: Vec<StoryPair>,
    /// Every scored candidate `(a, b, probability)`, same order (a < b by id).
    pub scored: Vec<link::Link>,
    /// Clusters, largest first.
    pub clusters: Vec<StoryCluster>,
    /// The statistics scored against (what `--stats-out` saves, with
    /// [`StoryStats::write_to`]).
    pub stats: StoryStats,
    /// The story features of every document, with the weights scored with.
    pub docs: StoryDocs,
    /// Banding of the weighted signatures.
    pub lsh: LshParams,
    /// Candidate pairs (past the signature estimate) dropped by the time window.
    pub outside_window: u64,
    /// Scored candidates each veto ruled two stories: template slots, lead names.
    pub vetoed: VetoCounts,
    /// How long each stage took: weigh (weights and weighted sketches), candidates
    /// (banding), verify (scoring), cluster (linkage).
    pub timings: Vec<(Stage, Duration)>,
}

/// How many scored candidates each veto ruled two stories.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VetoCounts {
    /// By [`Veto::TemplateSlots`].
    pub template_slots: u64,
    /// By [`Veto::LeadNames`].
    pub lead_names: u64,
}

impl VetoCounts {
    fn add(&mut self, veto: Option<Veto>) {
        match veto {
            Some(Veto::TemplateSlots) => self.template_slots += 1,
            Some(Veto::LeadNames) => self.lead_names += 1,
            None => {}
        }
    }
}

/// Whether a pair of this probability is one story: decided on the 32-bit probability
/// that is kept and linked, so that every step (and a distributed run) decides alike.
pub fn accepted(probability: f32, threshold: f64) -> bool {
    f64::from(probability) >= threshold
}

/// The expanded set whose Jaccard is the IDF-weighted Jaccard of the content words.
pub fn weighted_elements(doc: &StoryDoc, stats: &StoryStats, out: &mut Vec<u64>) {
    weighted_elements_of(&score::Weighted::new(doc.view(), stats), stats, out);
}

/// The score components of documents `a` and `b` (indices into `corpus` and `docs`),
/// weighted by `stats`.
pub fn pair_components(
    corpus: &Corpus,
    docs: &StoryDocs,
    stats: &StoryStats,
    a: u32,
    b: u32,
) -> std::io::Result<Components> {
    let (mut set_a, mut set_b) = (Vec::new(), Vec::new());
    let sa = corpus.set(a, &mut set_a)?;
    let sb = corpus.set(b, &mut set_b)?;
    let (mut features_a, mut features_b) = (Vec::new(), Vec::new());
    let wa = docs.weighted(a, stats, &mut features_a)?;
    let wb = docs.weighted(b, stats, &mut features_b)?;
    Ok(weighted_components(&wa, &wb, sa, sb))
}

/// The score components of two documents from their features and sorted word shingle
/// sets (as [`run`] scores a pair; it puts the document with the smaller id first).
pub fn doc_components(
    a: &StoryDoc,
    b: &StoryDoc,
    stats: &StoryStats,
    sa: &[u64],
    sb: &[u64],
) -> Components {
    weighted_components(
        &score::Weighted::new(a.view(), stats),
        &score::Weighted::new(b.view(), stats),
        sa,
        sb,
    )
}

/// [`doc_components`] of documents whose weights are already looked up.
pub fn weighted_components(
    a: &score::Weighted<'_>,
    b: &score::Weighted<'_>,
    sa: &[u64],
    sb: &[u64],
) -> Components {
    score::components(a, b, shingle_overlap(sa, sb))
}

/// [`weighted_elements`] of a document whose weights are already looked up.
pub fn weighted_elements_of(doc: &score::Weighted<'_>, stats: &StoryStats, out: &mut Vec<u64>) {
    out.clear();
    // Common words would fill LSH buckets with every article of a section while adding
    // little to the weighted Jaccard; scoring still uses them.
    let floor = stats.common_idf();
    for (t, idf) in doc.term_idfs() {
        let weight = (idf - floor).max(0.0);
        let copies = (weight / WEIGHT_QUANTUM).round() as u64;
        out.extend((0..copies).map(|c| t ^ c.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
    }
}

/// The sketcher of the weighted signatures, for the pipeline's seed (as [`run`] makes
/// them: [`weighted_elements`], sketched; no elements leave every slot `u32::MAX`).
pub fn weighted_sketcher(num_perm: usize, seed: u64) -> Sketcher {
    Sketcher::new(num_perm, seed ^ 0x0073_746f_7279)
}

/// The LSH banding of weighted signatures of `num_perm` slots for a candidate threshold
/// (as [`run`] bands them).
pub fn candidate_lsh(candidate_threshold: f64, num_perm: usize) -> LshParams {
    index::optimal_params(
        candidate_threshold,
        num_perm,
        STORY_LSH_WEIGHTS.0,
        STORY_LSH_WEIGHTS.1,
    )
}

/// Lowest estimated weighted Jaccard (slot agreement of the weighted signatures) of an
/// LSH candidate that [`run`] goes on to score.
pub fn estimate_floor(candidate_threshold: f64) -> f64 {
    // Three quarters of the candidate threshold: a cheap cut of the bucket mates that
    // share little (2-slot bands let many through), before exact scoring.
    candidate_threshold * 0.75
}

fn shingle_overlap(sa: &[u64], sb: &[u64]) -> (f64, f64, f64) {
    let common = intersection_size(sa, sb) as f64;
    let ratio = |n: f64, d: f64| if d > 0.0 { n / d } else { 0.0 };
    (
        ratio(common, sa.len() as f64),
        ratio(common, sb.len() as f64),
        ratio(common, (sa.len() + sb.len()) as f64 - common),
    )
}

/// Runs the story level over a read corpus: `docs` holds the features of each document.
/// Fails when spilled sets or features cannot be read or written, or when the observer
/// stops the run.
#[allow(clippy::too_many_arguments)] // the pipeline's frozen settings, passed apart
pub fn run(
    corpus: &Corpus,
    mut docs: StoryDocs,
    stats: StoryStats,
    settings: &StorySettings,
    seed: u64,
    rule: RepresentativeRule,
    rank: &[u32],
    observer: &dyn Observer,
) -> crate::Result<StoryOutcome> {
    let spill_error = |e| {
        crate::Error::io(
            "reading or writing the story level's spilled sets and features",
            e,
        )
    };
    let mut stages = Stages::new(observer);
    let k = settings.num_perm;
    let lsh = candidate_lsh(settings.candidate_threshold, k);
    stages.start(Stage::Weigh, Some(docs.len() as u64));
    let sketcher = weighted_sketcher(k, seed);
    let mut signatures = vec![u32::MAX; docs.len() * k];
    // Each document's weights are looked up once, for its sketch and its scoring, and
    // stored next to its features.
    docs.start_weights();
    // Progress is told per batch of documents, not per document; batches are weighed in
    // parallel a round at a time and stored in document order.
    const BATCH: usize = 1024;
    let round = BATCH * 4 * rayon::current_num_threads();
    for (r, round_signatures) in signatures.chunks_mut(k * round).enumerate() {
        go_on(observer)?;
        type Encoded = (Vec<u64>, Vec<usize>);
        let encoded: Vec<std::io::Result<Encoded>> = round_signatures
            .par_chunks_mut(k * BATCH)
            .enumerate()
            .map_init(
                || (Vec::new(), Vec::new(), Vec::new()),
                |(elements, scratch, buf), (b, outs)| {
                    let first = r * round + b * BATCH;
                    let (mut words, mut ends) = (Vec::new(), Vec::new());
                    for (i, out) in outs.chunks_mut(k).enumerate() {
                        let doc = docs.get((first + i) as u32, buf)?;
                        let w = score::Weighted::new(doc, &stats);
                        weighted_elements_of(&w, &stats, elements);
                        if !elements.is_empty() {
                            sketcher.sketch(elements, scratch, out);
                        }
                        w.encode_weights_into(&mut words);
                        ends.push(words.len());
                    }
                    observer.advanced(Stage::Weigh, ends.len() as u64);
                    Ok((words, ends))
                },
            )
            .collect();
        for batch in encoded {
            let (words, ends) = batch.map_err(spill_error)?;
            let mut start = 0;
            for end in ends {
                docs.push_weights(&words[start..end]).map_err(spill_error)?;
                start = end;
            }
        }
    }
    stages.start(Stage::Candidates, Some(lsh.bands as u64));
    // Documents without weighted content (all stop words) are never candidates.
    let indexed: Vec<u32> = (0..docs.len() as u32)
        .filter(|&d| {
            signatures[d as usize * k..(d as usize + 1) * k]
                .iter()
                .any(|&v| v != u32::MAX)
        })
        .collect();
    let signature = |d: u32| &signatures[d as usize * k..(d as usize + 1) * k];
    let floor = estimate_floor(settings.candidate_threshold);
    // Bucket mates that share little are cut where they collide (see `candidate_pairs_of`).
    let candidates = index::candidate_pairs_of(
        &signature,
        k,
        &indexed,
        lsh,
        settings.bucket_cap,
        rank,
        &|a, b| crate::sketch::estimate_jaccard(signature(a), signature(b)) >= floor,
        Ticker::new(observer, Stage::Candidates),
    );
    go_on(observer)?;
    let pairs: Vec<(u32, u32)> = candidates
        .pairs
        .iter()
        .copied()
        .filter(|&(a, b)| beyond_window(settings.window, corpus.date(a), corpus.date(b)).is_none())
        .collect();
    let outside_window = (candidates.pairs.len() - pairs.len()) as u64;
    // Nothing reads a signature after the candidates (512 MB at a million documents).
    drop(candidates);
    drop(indexed);
    drop(signatures);
    stages.start(Stage::Verify, Some(pairs.len() as u64));
    let model = settings.model;
    const CHUNK: usize = 4096;
    type Scored = (link::Link, Option<StoryPair>, Option<Veto>);
    let ticker = Ticker::new(observer, Stage::Verify);
    let chunks: Vec<std::io::Result<Vec<Scored>>> = pairs
        .par_chunks(CHUNK)
        .map(|chunk| {
            if ticker.stopped() {
                return Ok(Vec::new());
            }
            let (mut set_x, mut set_y) = (Vec::new(), Vec::new());
            let (mut words_x, mut words_y) = Default::default();
            let mut out = Vec::with_capacity(chunk.len());
            // Pairs come sorted, so each document's set and weights are read once for
            // the run of pairs it starts.
            for run in chunk.chunk_by(|p, q| p.0 == q.0) {
                let x = run[0].0;
                let sx = corpus.set(x, &mut set_x)?;
                let wx = docs.get_weighted(x, &mut words_x)?;
                for &(_, y) in run {
                    let sy = corpus.set(y, &mut set_y)?;
                    let wy = docs.get_weighted(y, &mut words_y)?;
                    let (a, b, c) = if rank[x as usize] < rank[y as usize] {
                        (x, y, weighted_components(&wx, &wy, sx, sy))
                    } else {
                        (y, x, weighted_components(&wy, &wx, sy, sx))
                    };
                    let (p, veto) = model.judge(&c);
                    let l = link::Link {
                        a,
                        b,
                        probability: p as f32,
                    };
                    let pair = accepted(p as f32, model.threshold).then(|| StoryPair {
                        a,
                        b,
                        probability: p as f32,
                        components: c,
                        kind: Kind::of(&c),
                        veto,
                    });
                    out.push((l, pair, veto));
                }
            }
            ticker.advance(chunk.len() as u64);
            Ok(out)
        })
        .collect();
    let mut scored = Vec::with_capacity(pairs.len());
    let mut accepted = Vec::new();
    let mut vetoed = VetoCounts::default();
    for chunk in chunks {
        for (l, pair, veto) in chunk.map_err(spill_error)? {
            scored.push(l);
            accepted.extend(pair);
            vetoed.add(veto);
        }
    }
    let key = |a: u32, b: u32| (rank[a as usize], rank[b as usize]);
    scored.par_sort_unstable_by_key(|l| key(l.a, l.b));
    accepted.par_sort_unstable_by_key(|p| key(p.a, p.b));
    go_on(observer)?;
    stages.start(Stage::Cluster, None);
    let links: Vec<link::Link> = accepted.iter().map(StoryPair::link).collect();
    let clusters = link::link(
        corpus,
        &scored,
        &links,
        model.threshold,
        settings.linkage,
        rule,
        rank,
    );
    stages.finish();
    go_on(observer)?;
    Ok(StoryOutcome {
        pairs: accepted,
        scored,
        clusters,
        stats,
        docs,
        lsh,
        outside_window,
        vetoed,
        timings: stages.timings,
    })
}

/// Tells the observer of each stage in turn and times it.
struct Stages<'o> {
    observer: &'o dyn Observer,
    running: Option<(Stage, Instant)>,
    timings: Vec<(Stage, Duration)>,
}

impl<'o> Stages<'o> {
    fn new(observer: &'o dyn Observer) -> Self {
        Stages {
            observer,
            running: None,
            timings: Vec::new(),
        }
    }

    /// Finishes the running stage, if any, and starts `stage`.
    fn start(&mut self, stage: Stage, total: Option<u64>) {
        self.finish();
        self.observer.stage_started(stage, total);
        self.running = Some((stage, Instant::now()));
    }

    /// Finishes the running stage and records its time.
    fn finish(&mut self) {
        if let Some((stage, started)) = self.running.take() {
            self.observer.stage_finished(stage);
            self.timings.push((stage, started.elapsed()));
        }
    }
}

/// The string value of `field` in a record's metadata (a JSON object), if it has one.
pub fn string_field(metadata: &str, field: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Loose<'a>(
        #[serde(borrow)]
        std::collections::HashMap<std::borrow::Cow<'a, str>, &'a serde_json::value::RawValue>,
    );
    let Loose(map) = serde_json::from_str(metadata).ok()?;
    let raw = map.get(field)?;
    serde_json::from_str::<String>(raw.get()).ok()
}

/// How far apart two dates are when that is further than `window` (seconds): such
/// articles are never one story. `None` when within it, or without a window or a date.
pub fn beyond_window(window: Option<i64>, a: Option<i64>, b: Option<i64>) -> Option<u64> {
    let (w, x, y) = (window?, a?, b?);
    // abs_diff: dates given as huge numbers saturate to the ends of i64.
    Some(x.abs_diff(y)).filter(|&apart| apart > w.unsigned_abs())
}

/// A window in the unit it reads best in: `72h`, `90m`, `45s`.
pub fn describe_window(seconds: u64) -> String {
    match seconds {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Parses a duration such as `72h`, `3d`, `90m`, `45s`, `1w` or `3600` (seconds) into
/// seconds: the story level's `--window` and the feed index's use it alike.
pub fn parse_window(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: i64 = digits.parse().map_err(|_| {
        if digits.is_empty() {
            format!("{text:?} is not a duration (e.g. 72h, 3d, 90m)")
        } else {
            // Digits past i64: as long as a product past it.
            format!("{text:?} is too long")
        }
    })?;
    let scale = match unit.trim() {
        "" | "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        other => {
            return Err(format!(
                "unknown duration unit {other:?} in {text:?} (s, m, h, d, w)"
            ));
        }
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("{text:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse() {
        assert_eq!(parse_window("72h"), Ok(259_200));
        assert_eq!(parse_window("3d"), Ok(259_200));
        assert_eq!(parse_window("90m"), Ok(5_400));
        assert_eq!(parse_window("2w"), Ok(14 * 86_400));
        assert_eq!(parse_window("3600"), Ok(3_600));
        assert!(parse_window("3 fortnights").is_err());
        // Too many digits and too large a product say the same.
        for long in ["99999999999999999999h", "106751991167301d"] {
            assert_eq!(parse_window(long), Err(format!("{long:?} is too long")));
        }
        assert!(parse_window("h").is_err());
        assert_eq!(describe_window(DEFAULT_WINDOW.unsigned_abs()), "72h");
        assert_eq!(describe_window(5_400), "90m");
        assert_eq!(describe_window(61), "61s");
    }

    #[test]
    fn expanded_sets_weigh_rare_words_more() {
        let mut x = Extractor::new();
        let common = x.extract("market shares");
        let rare = x.extract("market witkoff");
        let mut stats = StoryStats::new();
        for _ in 0..50 {
            stats.add(&common);
        }
        stats.add(&rare);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        weighted_elements(&common, &stats, &mut a);
        weighted_elements(&rare, &stats, &mut b);
        assert!(b.len() > a.len(), "{} vs {}", b.len(), a.len());
    }
}
