//! The threshold sweep: one pipeline run, every threshold judged against gold labels.
//!
//! Signatures and shingle sets come from the run's [`Outcome`] and are never recomputed.
//! For each threshold `t` the sweep reproduces what `neardup cluster --threshold t` does
//! with the same flags: the LSH banding chosen for `t` (or the fixed `--bands/--rows`),
//! its candidate pairs (bucket cap included), the pairs whose score reaches `t`, and
//! their clusters. Bandings are recomputed from the stored signatures only when they
//! change between thresholds, and a candidate pair is verified on its exact shingle sets
//! at most once per banding (pairs the run already verified are reused).
//!
//! Every judged pair is also scored exactly, whether or not LSH proposed it, so that a
//! missed positive is explained by its own score: below the threshold, above it but never
//! a candidate (an LSH miss), or a candidate above it that clustering did not join (only
//! possible in leader mode).
//!
//! At the story level ([`Score::Story`], an outcome of a run with
//! [`crate::Level::Story`]) the swept score is the story model's probability. The story
//! candidates do not depend on the probability threshold, so every threshold `t` reuses
//! the run's scored candidates ([`StoryOutcome::scored`]) and reproduces what `neardup
//! cluster --level story --story-threshold t` does with the same flags: the candidates
//! whose probability reaches `t`, and their clusters by the story linkage
//! ([`crate::story::link::link`], re-run at `t`). Judged pairs that were never candidates
//! (weighted-MinHash LSH misses, pairs outside `--window`) are scored by the same model
//! from their components, so their misses get exact reasons too; a split by clustering
//! is a candidate above `t` that the linkage (majority or average) left apart.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};

use rayon::prelude::*;

use crate::cluster;
use crate::error::{Error, Result};
use crate::eval::gold::{Gold, GoldRecords, GoldShape};
use crate::eval::metrics::{Confusion, Contingency};
use crate::index::{self, LshParams};
use crate::pipeline::Outcome;
use crate::progress::{Observer, Stage, Ticker, go_on};
use crate::story::{self, StoryOutcome, link};
use crate::verify::{self, PairScore};

/// The similarity a sweep thresholds.
///
/// Each level of the pipeline contributes its scores here: the near-copy level gives the
/// first four, read from a verified [`PairScore`]; the story level gives
/// [`Score::Story`], the story model's probability. A new score is a new variant with its
/// [`Score::of`] arm and names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Score {
    /// Exact Jaccard similarity of the shingle sets (what the pipeline thresholds).
    #[default]
    Jaccard,
    /// The MinHash estimate of the Jaccard similarity.
    Estimated,
    /// The smaller of the two containments: `|A∩B| / max(|A|, |B|)`.
    ContainmentMin,
    /// The larger of the two containments: `|A∩B| / min(|A|, |B|)`; high when one
    /// document is an excerpt of the other.
    ContainmentMax,
    /// The story level's score: the probability of one story under the story model
    /// ([`crate::story::Model::probability`]); needs an outcome of the story level.
    Story,
}

impl Score {
    /// Every score, in a fixed order.
    pub const ALL: [Score; 5] = [
        Score::Jaccard,
        Score::Estimated,
        Score::ContainmentMin,
        Score::ContainmentMax,
        Score::Story,
    ];

    /// The score of a verified pair; `None` for [`Score::Story`], which is not read from
    /// shingle sets (see [`JudgedPair::score`]).
    pub fn of(self, p: &PairScore) -> Option<f32> {
        match self {
            Score::Jaccard => Some(p.jaccard),
            Score::Estimated => Some(p.estimated),
            Score::ContainmentMin => Some(p.a_in_b.min(p.b_in_a)),
            Score::ContainmentMax => Some(p.a_in_b.max(p.b_in_a)),
            Score::Story => None,
        }
    }

    /// Whether this score is the story level's.
    pub fn is_story(self) -> bool {
        self == Score::Story
    }

    /// Whether `score` reaches `threshold`, compared as the pipeline compares it: in
    /// `f32` at the near-copy level, in `f64` by the story linkage.
    pub fn reaches(self, score: f32, threshold: f64) -> bool {
        match self {
            Score::Story => f64::from(score) >= threshold,
            _ => score >= threshold as f32,
        }
    }

    /// A stable snake_case name (JSON output).
    pub fn name(self) -> &'static str {
        match self {
            Score::Jaccard => "jaccard",
            Score::Estimated => "estimated_jaccard",
            Score::ContainmentMin => "containment_min",
            Score::ContainmentMax => "containment_max",
            Score::Story => "story",
        }
    }

    /// A name for people (plots, tables).
    pub fn title(self) -> &'static str {
        match self {
            Score::Jaccard => "exact Jaccard",
            Score::Estimated => "estimated Jaccard (MinHash)",
            Score::ContainmentMin => "min containment",
            Score::ContainmentMax => "max containment",
            Score::Story => "story score (model probability)",
        }
    }
}

/// How the LSH banding of each threshold is chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Banding {
    /// Derived from each threshold, as the pipeline does, with these weights of the
    /// false-positive and false-negative masses.
    Derived {
        /// Weight of the false-positive mass.
        fp_weight: f64,
        /// Weight of the false-negative mass.
        fn_weight: f64,
    },
    /// The same banding at every threshold (`--bands/--rows`).
    Fixed(LshParams),
}

impl Default for Banding {
    fn default() -> Self {
        Banding::Derived {
            fp_weight: index::DEFAULT_FP_WEIGHT,
            fn_weight: index::DEFAULT_FN_WEIGHT,
        }
    }
}

impl Banding {
    /// The banding used at `threshold`.
    pub fn at(&self, threshold: f64, num_perm: usize) -> LshParams {
        match *self {
            Banding::Derived {
                fp_weight,
                fn_weight,
            } => index::optimal_params(threshold, num_perm, fp_weight, fn_weight),
            Banding::Fixed(p) => p,
        }
    }
}

/// What to do with gold ids that are not in the corpus.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UnknownIds {
    /// Leave their records out, and count and list them in the result.
    #[default]
    Skip,
    /// Stop with an error naming the first one.
    Fail,
}

/// Settings of a sweep.
#[derive(Clone, Debug)]
pub struct SweepConfig {
    /// The similarity thresholded.
    pub score: Score,
    /// The thresholds, ascending, each in (0, 1].
    pub thresholds: Vec<f64>,
    /// A second F-measure to choose a threshold by, besides F1.
    pub beta: Option<f64>,
    /// LSH banding per threshold.
    pub banding: Banding,
    /// Where misses are explained; the best threshold by F1 when `None`.
    pub explain_at: Option<f64>,
    /// Bins of the score histogram over [0, 1].
    pub bins: usize,
    /// Gold ids missing from the corpus.
    pub unknown_ids: UnknownIds,
}

impl Default for SweepConfig {
    fn default() -> Self {
        SweepConfig {
            score: Score::default(),
            thresholds: thresholds(0.1, 1.0, 0.05).expect("valid defaults"),
            beta: None,
            banding: Banding::default(),
            explain_at: None,
            bins: 20,
            unknown_ids: UnknownIds::default(),
        }
    }
}

/// `min, min + step, …` up to `max` (inclusive, within rounding), rounded to 4 decimals.
pub fn thresholds(min: f64, max: f64, step: f64) -> Result<Vec<f64>> {
    if !(min > 0.0 && min <= max && max <= 1.0) {
        return Err(Error::config(format!(
            "thresholds must satisfy 0 < min ({min}) <= max ({max}) <= 1"
        )));
    }
    if !(step > 0.0 && step.is_finite()) {
        return Err(Error::config(format!(
            "the threshold step must be positive, got {step}"
        )));
    }
    // Kept to four decimals: a finer step or a lower minimum gave repeated thresholds
    // or a minimum of 0.
    if step < 1e-4 || min < 1e-4 {
        return Err(Error::config(format!(
            "thresholds are kept to four decimals: the step ({step}) and the minimum \
             ({min}) must be at least 0.0001"
        )));
    }
    // At most 10,000 thresholds, by the bounds above.
    let count = ((max - min) / step + 1e-9).floor() as usize + 1;
    Ok((0..count)
        .map(|i| ((min + i as f64 * step) * 10_000.0).round() / 10_000.0)
        .collect())
}

/// Why a gold positive is not in one cluster at a threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MissReason {
    /// Its score reaches the threshold but LSH never proposed it.
    NotCandidate,
    /// A candidate whose score reaches the threshold, left in two clusters (leader mode
    /// does not chain).
    SplitByClustering,
    /// Its score is below the threshold.
    BelowThreshold,
}

impl MissReason {
    /// A stable snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            MissReason::NotCandidate => "not_candidate",
            MissReason::SplitByClustering => "split_by_clustering",
            MissReason::BelowThreshold => "below_threshold",
        }
    }
}

/// Missed gold positives at a threshold, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MissCounts {
    /// Above the threshold, never a candidate.
    pub not_candidate: u64,
    /// Above the threshold and a candidate, but not joined.
    pub split_by_clustering: u64,
    /// Below the threshold.
    pub below_threshold: u64,
    /// Of those below the threshold, the pairs a story-level veto ruled two stories.
    pub vetoed: u64,
}

impl MissCounts {
    fn add(&mut self, reason: MissReason, vetoed: bool) {
        match reason {
            MissReason::NotCandidate => self.not_candidate += 1,
            MissReason::SplitByClustering => self.split_by_clustering += 1,
            MissReason::BelowThreshold => {
                self.below_threshold += 1;
                self.vetoed += u64::from(vetoed);
            }
        }
    }
}

/// Partition scores (cluster gold only).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PartitionScores {
    /// Adjusted Rand index over the gold documents.
    pub adjusted_rand_index: f64,
    /// B-cubed precision.
    pub bcubed_precision: f64,
    /// B-cubed recall.
    pub bcubed_recall: f64,
}

/// The result at one threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct ThresholdResult {
    /// The threshold.
    pub threshold: f64,
    /// The LSH banding used.
    pub lsh: LshParams,
    /// Candidate pairs from LSH.
    pub candidates: u64,
    /// Candidates whose score reaches the threshold.
    pub verified: u64,
    /// Clusters of two or more documents.
    pub clusters: u64,
    /// Documents in those clusters.
    pub clustered_documents: u64,
    /// Judged pairs, predicted positive when both documents are in one cluster.
    pub pairwise: Confusion,
    /// Judged pairs, predicted positive when the pair itself was verified (what `neardup
    /// pairs` lists).
    pub direct: Confusion,
    /// Partition scores, for cluster gold.
    pub partition: Option<PartitionScores>,
    /// Missed positives by reason (they add up to `pairwise.false_negatives`).
    pub missed: MissCounts,
}

/// A judged pair: gold positive or negative, scored exactly.
#[derive(Clone, Debug, PartialEq)]
pub struct JudgedPair {
    /// Its shingle scores (`a` precedes `b` in id order).
    pub scores: PairScore,
    /// The swept score ([`Evaluation::score`]).
    pub score: f32,
    /// Whether the gold says one story.
    pub same: bool,
    /// Whether a story-level veto rules the pair two stories (never at the near-copy
    /// level).
    pub vetoed: bool,
    /// Index into [`Evaluation::kinds`].
    pub kind: Option<u32>,
    /// Line of the gold record (for cluster gold, the line of `b`'s record).
    pub line: u64,
}

/// A judged pair at the explained threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JudgedOutcome {
    /// Index into [`Evaluation::judged`].
    pub pair: usize,
    /// LSH proposed it.
    pub candidate: bool,
    /// Why it was missed (for missed positives).
    pub reason: Option<MissReason>,
}

/// Results per kind of judged pair (the gold's `label` field), at the explained threshold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindResult {
    /// The kind.
    pub kind: String,
    /// Pairs of this kind.
    pub pairs: u64,
    /// Of which gold positives.
    pub positives: u64,
    /// Of which put in one cluster.
    pub clustered: u64,
}

/// Details at one threshold: what was missed, what was wrongly merged, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Explanation {
    /// The threshold.
    pub threshold: f64,
    /// Its row.
    pub result: ThresholdResult,
    /// Gold positives not in one cluster: LSH misses first, then splits, then by score
    /// (highest first), then by ids.
    pub misses: Vec<JudgedOutcome>,
    /// Judged negatives put in one cluster (cluster gold: every pair across gold
    /// clusters that a cluster holds), highest score first.
    pub false_merges: Vec<JudgedOutcome>,
    /// Results per kind, by kind name.
    pub kinds: Vec<KindResult>,
}

/// How the gold file was used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoldUse {
    /// Pairs or clusters.
    pub shape: GoldShape,
    /// Records in the file (repeats merged).
    pub records: u64,
    /// Records left out because an id is not in the corpus.
    pub skipped: u64,
    /// Repeated records merged into their first occurrence.
    pub repeated: u64,
    /// Gold ids not in the corpus, sorted.
    pub unknown_ids: Vec<String>,
    /// Documents judged (cluster gold: those listed and found).
    pub documents: u64,
    /// Gold positive pairs used.
    pub positives: u64,
    /// Gold negative pairs used (cluster gold: pairs across clusters, counted not listed).
    pub negatives: u64,
}

/// Counts of scores in equal-width bins over [0, 1].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Histogram {
    /// Gold positives per bin.
    pub positives: Vec<u64>,
    /// Gold negatives per bin.
    pub negatives: Vec<u64>,
    /// The negatives are only those LSH proposed at the lowest threshold, or the story
    /// level's scored candidates (cluster gold: listing every pair across clusters would
    /// be quadratic).
    pub negatives_are_candidates: bool,
}

impl Histogram {
    /// Number of bins.
    pub fn bins(&self) -> usize {
        self.positives.len()
    }

    fn bin(&self, score: f32) -> usize {
        ((f64::from(score) * self.bins() as f64) as usize).min(self.bins() - 1)
    }
}

/// A whole evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// The swept similarity.
    pub score: Score,
    /// How the gold was used.
    pub gold: GoldUse,
    /// Kinds of judged pairs, sorted.
    pub kinds: Vec<String>,
    /// Judged pairs, in id order (cluster gold: the positives, then the different-story
    /// pairs put in one cluster at the explained threshold, in id order).
    pub judged: Vec<JudgedPair>,
    /// One row per threshold, ascending.
    pub rows: Vec<ThresholdResult>,
    /// Index of the row with the best pairwise F1 (ties: the higher threshold).
    pub best_f1: Option<usize>,
    /// β and the index of the row with the best pairwise F-β.
    pub best_f_beta: Option<(f64, Option<usize>)>,
    /// Misses and false merges at one threshold.
    pub explanation: Explanation,
    /// Score distribution of positives and negatives.
    pub histogram: Histogram,
}

/// Runs the sweep over an outcome of [`crate::Pipeline::run`] (ideally run at the lowest
/// threshold, whose candidates are then reused).
pub fn evaluate(
    outcome: &Outcome,
    gold: &Gold,
    config: &SweepConfig,
    observer: &dyn Observer,
) -> Result<Evaluation> {
    if config.thresholds.is_empty() {
        return Err(Error::config("no threshold to evaluate"));
    }
    if let Some(t) = config
        .thresholds
        .iter()
        .chain(&config.explain_at)
        .find(|t| !(**t > 0.0 && **t <= 1.0))
    {
        return Err(Error::config(format!(
            "thresholds must be in (0, 1], got {t}"
        )));
    }
    if let Some(beta) = config.beta.filter(|b| !(*b > 0.0 && b.is_finite())) {
        return Err(Error::config(format!("beta must be positive, got {beta}")));
    }
    if config.bins == 0 {
        return Err(Error::config("the histogram needs at least one bin"));
    }
    match (config.score.is_story(), outcome.story.is_some()) {
        (true, false) => {
            return Err(Error::config(
                "the story score needs a run at the story level (--level story)",
            ));
        }
        (false, true) => {
            return Err(Error::config(format!(
                "at the story level the swept score is the story score, not {}",
                config.score.name()
            )));
        }
        _ => {}
    }
    if outcome.story.is_none() && !outcome.settings.candidate_scores {
        return Err(Error::config(
            "the sweep needs every candidate's scores: run the pipeline with candidate_scores(true)",
        ));
    }
    let mut sweep = Sweep::new(outcome, gold, config)?;
    observer.stage_started(Stage::Cluster, Some(config.thresholds.len() as u64));
    let mut rows = Vec::with_capacity(config.thresholds.len());
    for &t in &config.thresholds {
        go_on(observer)?;
        rows.push(sweep.decide(t)?.result);
        observer.advanced(Stage::Cluster, 1);
    }
    observer.stage_finished(Stage::Cluster);
    let best = |beta: f64| {
        let mut best: Option<(usize, f64)> = None;
        for (i, row) in rows.iter().enumerate() {
            if let Some(f) = row.pairwise.f_beta(beta) {
                if best.is_none_or(|(_, b)| f >= b) {
                    best = Some((i, f));
                }
            }
        }
        best.map(|(i, _)| i)
    };
    let best_f1 = best(1.0);
    let best_f_beta = config.beta.map(|b| (b, best(b)));
    let explain_at = config
        .explain_at
        .or(best_f1.map(|i| rows[i].threshold))
        .unwrap_or(config.thresholds[0]);
    let explanation = sweep.explain(explain_at)?;
    let histogram = sweep.histogram(config.bins);
    Ok(Evaluation {
        score: config.score,
        gold: sweep.gold_use,
        kinds: sweep.kinds,
        judged: sweep.judged,
        rows,
        best_f1,
        best_f_beta,
        explanation,
        histogram,
    })
}

const NONE: u32 = u32::MAX;

fn pack(a: u32, b: u32) -> u64 {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    (u64::from(lo) << 32) | u64::from(hi)
}

/// The candidates of one banding with their scores.
struct CandidateSet<'o> {
    params: LshParams,
    /// In (rank a, rank b) order, `a` before `b` in id order.
    scores: Cow<'o, [PairScore]>,
    /// Packed (smaller index, larger index), sorted: membership tests.
    keys: Vec<u64>,
}

/// What a level finds at one threshold, before the gold judges it.
struct Found<'k> {
    /// The LSH banding of the candidates.
    params: LshParams,
    /// Number of candidates.
    candidates: u64,
    /// Packed keys of the candidates, sorted.
    keys: &'k [u64],
    /// The candidates whose score reaches the threshold.
    verified: Vec<(u32, u32)>,
    /// Members of each cluster of two or more.
    clusters: Vec<Vec<u32>>,
}

/// One threshold's decisions, per judged pair.
struct Decision {
    result: ThresholdResult,
    candidate: Vec<bool>,
    clustered: Vec<bool>,
    /// Members of each cluster of two or more.
    clusters: Vec<Vec<u32>>,
}

struct Sweep<'o> {
    outcome: &'o Outcome,
    config: &'o SweepConfig,
    judged: Vec<JudgedPair>,
    kinds: Vec<String>,
    gold_use: GoldUse,
    /// Cluster gold: dense gold label of each document (`NONE` outside the gold).
    gold_label: Vec<u32>,
    /// Cluster gold: the judged documents, in id order.
    gold_docs: Vec<u32>,
    /// Cluster gold: each judged document's line in the gold file.
    gold_line: Vec<u64>,
    /// Where each threshold's candidates come from.
    candidates: Candidates<'o>,
}

/// Where a threshold's candidates come from, by level.
enum Candidates<'o> {
    /// Near-copy level: the LSH candidates of each threshold's banding.
    NearCopy {
        /// The run's own candidates, by packed key: reused when another banding finds
        /// them.
        base_keys: Vec<(u64, u32)>,
        /// The candidates of the banding last used.
        current: Option<CandidateSet<'o>>,
    },
    /// Story level: the run's scored candidates, the same at every threshold.
    Story {
        /// What the story level found.
        found: &'o StoryOutcome,
        /// Packed keys of `found.scored`, sorted: membership tests.
        keys: Vec<u64>,
    },
}

impl<'o> Sweep<'o> {
    fn new(outcome: &'o Outcome, gold: &Gold, config: &'o SweepConfig) -> Result<Self> {
        let corpus = &outcome.corpus;
        let doc_of: HashMap<&str, u32> = (0..corpus.len() as u32)
            .map(|d| (corpus.id(d), d))
            .collect();
        let mut unknown: BTreeSet<String> = BTreeSet::new();
        let mut lookup = |id: &str, line: u64| -> Result<Option<u32>> {
            match doc_of.get(id) {
                Some(&d) => Ok(Some(d)),
                None if config.unknown_ids == UnknownIds::Fail => Err(Error::gold(
                    crate::FileLocation::at(gold.name.as_str(), line),
                    format!("id {id:?} is not in the corpus"),
                )),
                None => {
                    unknown.insert(id.to_string());
                    Ok(None)
                }
            }
        };
        let rank = &outcome.rank;
        let mut kinds: Vec<String> = Vec::new();
        let mut skipped = 0u64;
        let mut gold_label = Vec::new();
        let mut gold_docs = Vec::new();
        let mut line_of = Vec::new();
        let mut raw: Vec<RawPair> = Vec::new();
        let records;
        let (documents, positives, negatives);
        match &gold.records {
            GoldRecords::Pairs(pairs) => {
                records = pairs.len() as u64;
                let mut names: Vec<&str> = pairs.iter().filter_map(|p| p.kind.as_deref()).collect();
                names.sort_unstable();
                names.dedup();
                kinds = names.iter().map(|k| k.to_string()).collect();
                for p in pairs {
                    let (a, b) = (lookup(&p.a, p.line)?, lookup(&p.b, p.line)?);
                    let (Some(a), Some(b)) = (a, b) else {
                        skipped += 1;
                        continue;
                    };
                    let (a, b) = if rank[a as usize] < rank[b as usize] {
                        (a, b)
                    } else {
                        (b, a)
                    };
                    let kind = p
                        .kind
                        .as_deref()
                        .map(|k| names.binary_search(&k).expect("kind listed") as u32);
                    raw.push((a, b, p.same, kind, p.line));
                }
                if raw.is_empty() {
                    return Err(none_known(gold, &unknown, "pair"));
                }
                positives = raw.iter().filter(|p| p.2).count() as u64;
                negatives = raw.len() as u64 - positives;
                documents = {
                    let mut docs: Vec<u32> = raw.iter().flat_map(|p| [p.0, p.1]).collect();
                    docs.sort_unstable();
                    docs.dedup();
                    docs.len() as u64
                };
            }
            GoldRecords::Clusters(members) => {
                records = members.len() as u64;
                gold_label = vec![NONE; corpus.len()];
                let mut labels: HashMap<&str, u32> = HashMap::new();
                line_of = vec![0u64; corpus.len()];
                for m in members {
                    let Some(doc) = lookup(&m.id, m.line)? else {
                        skipped += 1;
                        continue;
                    };
                    let next = labels.len() as u32;
                    gold_label[doc as usize] = *labels.entry(m.cluster.as_str()).or_insert(next);
                    line_of[doc as usize] = m.line;
                    gold_docs.push(doc);
                }
                if gold_docs.len() < 2 {
                    return Err(too_few_documents(gold, gold_docs.len(), &unknown));
                }
                gold_docs.sort_unstable_by_key(|&d| rank[d as usize]);
                let mut by_label: Vec<Vec<u32>> = vec![Vec::new(); labels.len()];
                for &d in &gold_docs {
                    by_label[gold_label[d as usize] as usize].push(d);
                }
                for members in &by_label {
                    for (i, &a) in members.iter().enumerate() {
                        for &b in &members[i + 1..] {
                            raw.push((a, b, true, None, line_of[b as usize]));
                        }
                    }
                }
                documents = gold_docs.len() as u64;
                positives = raw.len() as u64;
                negatives = documents * (documents - 1) / 2 - positives;
            }
        }
        raw.sort_unstable_by_key(|p| (rank[p.0 as usize], rank[p.1 as usize]));
        let judged = judge_pairs(outcome, config, &raw)?;
        let candidates = match &outcome.story {
            Some(found) => {
                let mut keys: Vec<u64> = found.scored.iter().map(|l| pack(l.a, l.b)).collect();
                keys.sort_unstable();
                Candidates::Story { found, keys }
            }
            None => {
                let mut base_keys: Vec<(u64, u32)> = outcome
                    .scores
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (pack(p.a, p.b), i as u32))
                    .collect();
                base_keys.sort_unstable();
                Candidates::NearCopy {
                    base_keys,
                    current: None,
                }
            }
        };
        Ok(Sweep {
            outcome,
            config,
            judged,
            kinds,
            gold_use: GoldUse {
                shape: gold.shape(),
                records,
                skipped,
                repeated: gold.repeated,
                unknown_ids: unknown.into_iter().collect(),
                documents,
                positives,
                negatives,
            },
            gold_label,
            gold_docs,
            gold_line: line_of,
            candidates,
        })
    }

    /// The candidates of `params`, verified (the run's own when they match).
    fn banding_candidates(
        outcome: &'o Outcome,
        base_keys: &[(u64, u32)],
        params: LshParams,
    ) -> Result<CandidateSet<'o>> {
        let corpus = &outcome.corpus;
        if params == outcome.settings.lsh {
            let mut keys: Vec<u64> = base_keys.iter().map(|k| k.0).collect();
            keys.sort_unstable();
            return Ok(CandidateSet {
                params,
                scores: Cow::Borrowed(&outcome.scores),
                keys,
            });
        }
        let docs: Vec<u32> = (0..corpus.len() as u32).collect();
        let found = index::candidate_pairs(
            corpus,
            &docs,
            params,
            outcome.settings.bucket_cap,
            &outcome.rank,
            Ticker::silent(),
        )
        .map_err(|e| Error::io("reading spilled shingle sets", e))?;
        let mut scores = Vec::with_capacity(found.pairs.len());
        let mut unseen = Vec::new();
        for &(a, b) in &found.pairs {
            match base_keys.binary_search_by_key(&pack(a, b), |k| k.0) {
                Ok(i) => scores.push(outcome.scores[base_keys[i].1 as usize]),
                Err(_) => unseen.push((a, b)),
            }
        }
        let rank = &outcome.rank;
        let fresh = verify::score_pairs(corpus, &unseen, Ticker::silent())
            .map_err(|e| Error::io("reading spilled shingle sets", e))?;
        for mut p in fresh {
            if rank[p.a as usize] > rank[p.b as usize] {
                std::mem::swap(&mut p.a, &mut p.b);
                std::mem::swap(&mut p.a_in_b, &mut p.b_in_a);
            }
            scores.push(p);
        }
        scores.sort_unstable_by_key(|p| (rank[p.a as usize], rank[p.b as usize]));
        let keys = found.pairs.iter().map(|&(a, b)| pack(a, b)).collect();
        Ok(CandidateSet {
            params,
            scores: Cow::Owned(scores),
            keys,
        })
    }

    fn decide(&mut self, threshold: f64) -> Result<Decision> {
        let outcome = self.outcome;
        let corpus = &outcome.corpus;
        let settings = &outcome.settings;
        let score = self.config.score;
        // The level's part: the candidates, those reaching the threshold, their clusters.
        let Found {
            params,
            candidates,
            keys,
            verified,
            clusters,
        } = match &mut self.candidates {
            Candidates::NearCopy { base_keys, current } => {
                let params = self.config.banding.at(threshold, corpus.num_perm());
                if current.as_ref().is_none_or(|c| c.params != params) {
                    *current = Some(Self::banding_candidates(outcome, base_keys, params)?);
                }
                let set = current.as_ref().expect("candidates computed");
                let verified: Vec<PairScore> = set
                    .scores
                    .iter()
                    .filter(|p| score.of(p).is_some_and(|s| score.reaches(s, threshold)))
                    .copied()
                    .collect();
                // Copy groups do not depend on the banding.
                let clusters = cluster::cluster(
                    corpus,
                    &verified,
                    &outcome.copies,
                    settings.cluster_mode,
                    settings.representative,
                    &outcome.rank,
                );
                Found {
                    params,
                    candidates: set.scores.len() as u64,
                    keys: &set.keys,
                    verified: verified.iter().map(|p| (p.a, p.b)).collect(),
                    clusters: clusters.into_iter().map(|c| c.members).collect(),
                }
            }
            Candidates::Story { found, keys } => {
                // What the story level does with --story-threshold `threshold`.
                let accepted: Vec<link::Link> = found
                    .scored
                    .iter()
                    .filter(|l| score.reaches(l.probability, threshold))
                    .copied()
                    .collect();
                let clusters = link::link(
                    corpus,
                    &found.scored,
                    &accepted,
                    threshold,
                    settings.story.linkage,
                    settings.representative,
                    &outcome.rank,
                );
                Found {
                    params: found.lsh,
                    candidates: found.scored.len() as u64,
                    keys,
                    verified: accepted.iter().map(|l| (l.a, l.b)).collect(),
                    clusters: clusters.into_iter().map(|c| c.members).collect(),
                }
            }
        };
        let mut cluster_of = vec![NONE; corpus.len()];
        for (i, members) in clusters.iter().enumerate() {
            for &d in members {
                cluster_of[d as usize] = i as u32;
            }
        }
        let together = |a: u32, b: u32| {
            cluster_of[a as usize] != NONE && cluster_of[a as usize] == cluster_of[b as usize]
        };

        let mut candidate = Vec::with_capacity(self.judged.len());
        let mut clustered = Vec::with_capacity(self.judged.len());
        let (mut pairwise, mut direct) = (Confusion::default(), Confusion::default());
        let mut missed = MissCounts::default();
        for j in &self.judged {
            let (a, b) = (j.scores.a, j.scores.b);
            let is_candidate = keys.binary_search(&pack(a, b)).is_ok();
            let above = score.reaches(j.score, threshold);
            let joined = together(a, b);
            let listed = is_candidate && above;
            match (j.same, joined) {
                (true, true) => pairwise.true_positives += 1,
                (true, false) => {
                    pairwise.false_negatives += 1;
                    missed.add(miss_reason(above, is_candidate), j.vetoed);
                }
                (false, true) => pairwise.false_positives += 1,
                (false, false) => {}
            }
            match (j.same, listed) {
                (true, true) => direct.true_positives += 1,
                (true, false) => direct.false_negatives += 1,
                (false, true) => direct.false_positives += 1,
                (false, false) => {}
            }
            candidate.push(is_candidate);
            clustered.push(joined);
        }
        let partition = if self.gold_docs.is_empty() {
            None
        } else {
            // Negatives are not listed in cluster gold: count them from the clusters and
            // the verified pairs instead.
            let gold: Vec<u32> = self
                .gold_docs
                .iter()
                .map(|&d| self.gold_label[d as usize])
                .collect();
            let singles = clusters.len() as u32;
            let predicted: Vec<u32> = self
                .gold_docs
                .iter()
                .enumerate()
                .map(|(i, &d)| match cluster_of[d as usize] {
                    NONE => singles + i as u32,
                    c => c,
                })
                .collect();
            let table = Contingency::new(&gold, &predicted);
            let counted = table.pair_confusion();
            debug_assert_eq!(counted.true_positives, pairwise.true_positives);
            pairwise.false_positives = counted.false_positives;
            direct.false_positives = verified
                .iter()
                .filter(|&&(a, b)| {
                    let (ga, gb) = (self.gold_label[a as usize], self.gold_label[b as usize]);
                    ga != NONE && gb != NONE && ga != gb
                })
                .count() as u64;
            let (bcubed_precision, bcubed_recall) = table.bcubed().expect("two or more documents");
            Some(PartitionScores {
                adjusted_rand_index: table.adjusted_rand_index(),
                bcubed_precision,
                bcubed_recall,
            })
        };
        Ok(Decision {
            result: ThresholdResult {
                threshold,
                lsh: params,
                candidates,
                verified: verified.len() as u64,
                clusters: clusters.len() as u64,
                clustered_documents: clusters.iter().map(|m| m.len() as u64).sum(),
                pairwise,
                direct,
                partition,
                missed,
            },
            candidate,
            clustered,
            clusters,
        })
    }

    fn explain(&mut self, threshold: f64) -> Result<Explanation> {
        let mut decision = self.decide(threshold)?;
        if !self.gold_docs.is_empty() {
            // Cluster gold lists no negatives: judge those the clusters merge, so that
            // they can be shown like pair gold's.
            let merged = self.merged_negatives(&decision.clusters);
            let first = self.judged.len();
            self.judged
                .extend(judge_pairs(self.outcome, self.config, &merged)?);
            decision.candidate.extend(
                self.judged[first..]
                    .iter()
                    .map(|j| self.is_candidate(j.scores.a, j.scores.b)),
            );
            decision.clustered.resize(self.judged.len(), true);
        }
        let score = self.config.score;
        let mut misses = Vec::new();
        let mut false_merges = Vec::new();
        let mut kinds: Vec<KindResult> = self
            .kinds
            .iter()
            .map(|k| KindResult {
                kind: k.clone(),
                pairs: 0,
                positives: 0,
                clustered: 0,
            })
            .collect();
        for (i, j) in self.judged.iter().enumerate() {
            let (candidate, joined) = (decision.candidate[i], decision.clustered[i]);
            if let Some(k) = j.kind {
                let k = &mut kinds[k as usize];
                k.pairs += 1;
                k.positives += u64::from(j.same);
                k.clustered += u64::from(joined);
            }
            let outcome = |reason| JudgedOutcome {
                pair: i,
                candidate,
                reason,
            };
            if j.same && !joined {
                let above = score.reaches(j.score, threshold);
                misses.push(outcome(Some(miss_reason(above, candidate))));
            } else if !j.same && joined {
                false_merges.push(outcome(None));
            }
        }
        // Judged pairs are in id order, and the sorts are stable.
        let by_score = |o: &JudgedOutcome| std::cmp::Reverse(self.judged[o.pair].score.to_bits());
        misses.sort_by_key(|o| (o.reason, by_score(o)));
        false_merges.sort_by_key(by_score);
        Ok(Explanation {
            threshold,
            result: decision.result,
            misses,
            false_merges,
            kinds,
        })
    }

    /// Cluster gold: the pairs of judged documents with different gold labels that
    /// `clusters` put together, `a` before `b` in id order, sorted by it.
    fn merged_negatives(&self, clusters: &[Vec<u32>]) -> Vec<RawPair> {
        let rank = &self.outcome.rank;
        let mut merged = Vec::new();
        for members in clusters {
            let mut judged: Vec<u32> = members
                .iter()
                .copied()
                .filter(|&d| self.gold_label[d as usize] != NONE)
                .collect();
            judged.sort_unstable_by_key(|&d| rank[d as usize]);
            for (i, &a) in judged.iter().enumerate() {
                for &b in &judged[i + 1..] {
                    if self.gold_label[a as usize] != self.gold_label[b as usize] {
                        merged.push((a, b, false, None, self.gold_line[b as usize]));
                    }
                }
            }
        }
        merged.sort_unstable_by_key(|p| (rank[p.0 as usize], rank[p.1 as usize]));
        merged
    }

    /// Whether the candidates of the threshold last decided hold the pair.
    fn is_candidate(&self, a: u32, b: u32) -> bool {
        let keys = match &self.candidates {
            Candidates::NearCopy { current, .. } => match current {
                Some(set) => &set.keys,
                None => return false,
            },
            Candidates::Story { keys, .. } => keys,
        };
        keys.binary_search(&pack(a, b)).is_ok()
    }

    fn histogram(&self, bins: usize) -> Histogram {
        let score = self.config.score;
        let mut h = Histogram {
            positives: vec![0; bins],
            negatives: vec![0; bins],
            negatives_are_candidates: !self.gold_docs.is_empty(),
        };
        for j in &self.judged {
            let bin = h.bin(j.score);
            if j.same {
                h.positives[bin] += 1;
            } else if !h.negatives_are_candidates {
                // (Cluster gold's judged negatives, the explained merges, are counted
                // among the candidates below.)
                h.negatives[bin] += 1;
            }
        }
        if h.negatives_are_candidates {
            // The run's own candidates.
            let run: Box<dyn Iterator<Item = (u32, u32, f32)>> = match &self.candidates {
                Candidates::NearCopy { .. } => Box::new(
                    self.outcome
                        .scores
                        .iter()
                        .map(|p| (p.a, p.b, score.of(p).expect("a near-copy score"))),
                ),
                Candidates::Story { found, .. } => {
                    Box::new(found.scored.iter().map(|l| (l.a, l.b, l.probability)))
                }
            };
            for (a, b, s) in run {
                let (ga, gb) = (self.gold_label[a as usize], self.gold_label[b as usize]);
                if ga != NONE && gb != NONE && ga != gb {
                    let bin = h.bin(s);
                    h.negatives[bin] += 1;
                }
            }
        }
        h
    }
}

/// The story probability of each pair, from its components as the story level scores a
/// candidate (so a candidate gets exactly its [`StoryOutcome::scored`] probability), and
/// whether a veto decided it.
fn story_scores(
    outcome: &Outcome,
    found: &StoryOutcome,
    pairs: &[(u32, u32)],
) -> Result<Vec<(f32, bool)>> {
    let model = outcome.settings.story.model;
    pairs
        .par_iter()
        .map(|&(a, b)| {
            story::pair_components(&outcome.corpus, &found.docs, &found.stats, a, b).map(|c| {
                let (p, veto) = model.judge(&c);
                (p as f32, veto.is_some())
            })
        })
        .collect::<std::io::Result<Vec<(f32, bool)>>>()
        .map_err(|e| Error::io("reading spilled shingle sets", e))
}

/// A gold pair before it is scored: `(a, b, same, kind, line)`, `a` before `b` in id order.
type RawPair = (u32, u32, bool, Option<u32>, u64);

/// Scores gold pairs exactly, with the swept score of each.
fn judge_pairs(
    outcome: &Outcome,
    config: &SweepConfig,
    raw: &[RawPair],
) -> Result<Vec<JudgedPair>> {
    let index_pairs: Vec<(u32, u32)> = raw.iter().map(|p| (p.0, p.1)).collect();
    let scores = verify::score_pairs(&outcome.corpus, &index_pairs, Ticker::silent())
        .map_err(|e| Error::io("reading spilled shingle sets", e))?;
    let swept: Vec<(f32, bool)> = match &outcome.story {
        Some(found) => story_scores(outcome, found, &index_pairs)?,
        None => scores
            .iter()
            .map(|p| (config.score.of(p).expect("a near-copy score"), false))
            .collect(),
    };
    Ok(raw
        .iter()
        .zip(scores)
        .zip(swept)
        .map(
            |((&(_, _, same, kind, line), scores), (score, vetoed))| JudgedPair {
                scores,
                score,
                same,
                vetoed,
                kind,
                line,
            },
        )
        .collect())
}

fn miss_reason(above: bool, candidate: bool) -> MissReason {
    match (above, candidate) {
        (false, _) => MissReason::BelowThreshold,
        (true, false) => MissReason::NotCandidate,
        (true, true) => MissReason::SplitByClustering,
    }
}

/// Cluster gold whose documents make no pair.
fn too_few_documents(gold: &Gold, found: usize, unknown: &BTreeSet<String>) -> Error {
    if unknown.is_empty() || found > 0 {
        let mut why = format!(
            "cluster gold needs two or more documents found in the corpus to make a pair; {} found",
            found
        );
        if !unknown.is_empty() {
            why += &format!(
                " ({} not in the corpus, e.g. {})",
                crate::report::count(unknown.len() as u64, "id is", "ids are"),
                examples(unknown)
            );
        }
        return Error::gold(&gold.name, why);
    }
    none_known(gold, unknown, "document")
}

fn examples(unknown: &BTreeSet<String>) -> String {
    let examples: Vec<&str> = unknown.iter().take(3).map(String::as_str).collect();
    examples.join(", ")
}

fn none_known(gold: &Gold, unknown: &BTreeSet<String>, what: &str) -> Error {
    Error::gold(
        &gold.name,
        format!(
            "no gold {what} can be judged: {} not in the corpus (e.g. {}); check --id-field and the gold file",
            crate::report::count(unknown.len() as u64, "id is", "ids are"),
            examples(unknown)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ClusterMode;
    use crate::eval::gold::{GoldFields, GoldFormat, parse_gold};
    use crate::input::InputSpec;
    use crate::progress::Silent;
    use crate::shingle::ShingleSpec;
    use crate::{Pipeline, PipelineBuilder};

    /// Writes `(id, text)` records to a temporary JSON Lines file.
    fn corpus_file(docs: &[(String, String)]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docs.jsonl");
        let lines: String = docs
            .iter()
            .map(|(id, text)| serde_json::json!({"id": id, "text": text}).to_string() + "\n")
            .collect();
        std::fs::write(&path, lines).unwrap();
        (dir, path)
    }

    fn words(prefix: &str, range: std::ops::Range<usize>) -> String {
        range
            .map(|i| format!("{prefix}{i}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// With single-word shingles: J(A,B) = 40/60, J(B,C) = 30/50, J(A,C) = 30/70, D apart.
    /// A is the longest, so in leader mode it leads {A, B} and C is left alone.
    fn chain() -> Vec<(String, String)> {
        vec![
            ("A".into(), words("w", 0..60)),
            ("B".into(), words("w", 10..50)),
            ("C".into(), words("w", 20..50) + " " + &words("x", 0..10)),
            ("D".into(), words("y", 0..40)),
        ]
    }

    fn pipeline(mode: ClusterMode, threshold: f64) -> Pipeline {
        PipelineBuilder::new()
            .shingle(ShingleSpec::Words(1))
            .cluster_mode(mode)
            .threshold(threshold)
            .candidate_scores(true)
            .build()
            .unwrap()
    }

    fn gold(text: &str) -> Gold {
        parse_gold(
            "gold",
            text.as_bytes(),
            GoldFormat::JsonLines,
            None,
            &GoldFields::default(),
        )
        .unwrap()
    }

    const CHAIN_PAIRS: &str = concat!(
        r#"{"a": "B", "b": "C", "same_story": true, "label": "update"}"#,
        "\n",
        r#"{"a": "A", "b": "B", "same_story": true, "label": "copy"}"#,
        "\n",
        r#"{"a": "D", "b": "A", "same_story": true, "label": "rewrite"}"#,
        "\n",
        r#"{"a": "C", "b": "D", "same_story": false, "label": "related"}"#,
        "\n",
    );

    fn config(thresholds: &[f64]) -> SweepConfig {
        SweepConfig {
            thresholds: thresholds.to_vec(),
            ..SweepConfig::default()
        }
    }

    fn judged_ids<'a>(
        outcome: &'a Outcome,
        eval: &Evaluation,
        o: &JudgedOutcome,
    ) -> (&'a str, &'a str) {
        let p = &eval.judged[o.pair].scores;
        (outcome.corpus.id(p.a), outcome.corpus.id(p.b))
    }

    #[test]
    fn only_a_run_that_kept_every_candidates_scores_is_swept() {
        let (_dir, path) = corpus_file(&chain());
        let input = [InputSpec::Path(path)];
        let plain = PipelineBuilder::new()
            .shingle(ShingleSpec::Words(1))
            .threshold(0.5)
            .build()
            .unwrap()
            .run(&input, &Silent)
            .unwrap();
        let kept = pipeline(ClusterMode::Connected, 0.5)
            .run(&input, &Silent)
            .unwrap();
        // The same pairs either way; only the kept run holds the candidates below 0.5.
        assert!(plain.scores.is_empty());
        assert_eq!(plain.pairs, kept.pairs);
        assert_eq!(plain.pairs.len(), 2);
        assert!(kept.scores.iter().any(|p| p.jaccard < 0.5));
        assert_eq!(kept.scores.len() as u64, kept.stats.candidate_pairs);
        let err = evaluate(&plain, &gold(CHAIN_PAIRS), &config(&[0.5]), &Silent).unwrap_err();
        assert!(err.to_string().contains("candidate_scores(true)"), "{err}");
        assert!(evaluate(&kept, &gold(CHAIN_PAIRS), &config(&[0.5]), &Silent).is_ok());
    }

    #[test]
    fn each_miss_gets_its_reason() {
        let (_dir, path) = corpus_file(&chain());
        let outcome = pipeline(ClusterMode::Leader, 0.3)
            .run(&[InputSpec::Path(path)], &Silent)
            .unwrap();
        let config = SweepConfig {
            explain_at: Some(0.5),
            ..config(&[0.3, 0.5, 0.55])
        };
        let eval = evaluate(&outcome, &gold(CHAIN_PAIRS), &config, &Silent).unwrap();
        // The exact scores the test relies on.
        let j: Vec<f32> = eval.judged.iter().map(|j| j.scores.jaccard).collect();
        assert_eq!(j, [40.0 / 60.0, 0.0, 30.0 / 50.0, 0.0]); // (A,B), (A,D), (B,C), (C,D)

        // At 0.5 A leads {A, B}; C's only neighbour B is taken: (B, C) is split.
        let at_half = &eval.rows[1];
        assert_eq!(
            at_half.missed,
            MissCounts {
                not_candidate: 0,
                split_by_clustering: 1,
                below_threshold: 1,
                vetoed: 0,
            }
        );
        assert_eq!(
            at_half.pairwise,
            Confusion {
                true_positives: 1,
                false_positives: 0,
                false_negatives: 2
            }
        );
        // Both (A,B) and (B,C) were verified themselves: the direct decision finds both.
        assert_eq!(at_half.direct.true_positives, 2);

        let e = &eval.explanation;
        assert_eq!(
            e.threshold, 0.5,
            "the best F1 ties at 0.3 and 0.5; the higher wins"
        );
        let misses: Vec<_> = e
            .misses
            .iter()
            .map(|m| (judged_ids(&outcome, &eval, m), m.reason, m.candidate))
            .collect();
        assert_eq!(
            misses,
            [
                (("B", "C"), Some(MissReason::SplitByClustering), true),
                (("A", "D"), Some(MissReason::BelowThreshold), false),
            ]
        );
        let kinds: Vec<_> = e
            .kinds
            .iter()
            .map(|k| (k.kind.as_str(), k.pairs, k.positives, k.clustered))
            .collect();
        assert_eq!(
            kinds,
            [
                ("copy", 1, 1, 1),
                ("related", 1, 0, 0),
                ("rewrite", 1, 1, 0),
                ("update", 1, 1, 0)
            ]
        );
    }

    #[test]
    fn lsh_misses_are_told_apart_from_low_scores() {
        let (_dir, path) = corpus_file(&chain());
        let outcome = pipeline(ClusterMode::Connected, 0.5)
            .run(&[InputSpec::Path(path)], &Silent)
            .unwrap();
        // One band of all 128 slots: only identical signatures collide.
        let config = SweepConfig {
            banding: Banding::Fixed(LshParams {
                bands: 1,
                rows: 128,
            }),
            ..config(&[0.5])
        };
        let eval = evaluate(&outcome, &gold(CHAIN_PAIRS), &config, &Silent).unwrap();
        let row = &eval.rows[0];
        assert_eq!(
            row.lsh,
            LshParams {
                bands: 1,
                rows: 128
            }
        );
        assert_eq!(row.candidates, 0);
        assert_eq!(
            row.missed,
            MissCounts {
                not_candidate: 2,
                split_by_clustering: 0,
                below_threshold: 1,
                vetoed: 0,
            }
        );
    }

    #[test]
    fn cluster_gold_gives_partition_scores() {
        let (_dir, path) = corpus_file(&chain());
        let clusters = "{\"id\": \"A\", \"cluster\": 1}\n{\"id\": \"B\", \"cluster\": 1}\n{\"id\": \"C\", \"cluster\": 1}\n{\"id\": \"D\", \"cluster\": 2}\n";
        for (mode, ari, bcubed_recall, missed) in [
            // {A, B, C} {D}: exactly the gold.
            (ClusterMode::Connected, 1.0, 1.0, 0),
            // {A, B} {C} {D}: ARI 1/3 and B-cubed recall 2/3 (see the metrics tests).
            (ClusterMode::Leader, 1.0 / 3.0, 2.0 / 3.0, 2),
        ] {
            let outcome = pipeline(mode, 0.5)
                .run(&[InputSpec::Path(path.clone())], &Silent)
                .unwrap();
            let eval = evaluate(&outcome, &gold(clusters), &config(&[0.5]), &Silent).unwrap();
            assert_eq!(
                (
                    eval.gold.positives,
                    eval.gold.negatives,
                    eval.gold.documents
                ),
                (3, 3, 4)
            );
            let row = &eval.rows[0];
            let p = row.partition.unwrap();
            assert!(
                (p.adjusted_rand_index - ari).abs() < 1e-12,
                "{mode:?}: {p:?}"
            );
            assert!((p.bcubed_precision - 1.0).abs() < 1e-12);
            assert!((p.bcubed_recall - bcubed_recall).abs() < 1e-12);
            assert_eq!(row.pairwise.false_negatives, missed);
            assert_eq!(row.pairwise.false_positives, 0);
            // Negatives are the candidates across gold clusters: (C, D) shares no word.
            assert!(eval.histogram.negatives_are_candidates);
            assert_eq!(eval.histogram.positives.iter().sum::<u64>(), 3);
        }
    }

    #[test]
    fn unknown_ids_are_counted_or_fatal() {
        let (_dir, path) = corpus_file(&chain());
        let outcome = pipeline(ClusterMode::Connected, 0.5)
            .run(&[InputSpec::Path(path)], &Silent)
            .unwrap();
        let labels = String::from(CHAIN_PAIRS)
            + r#"{"a": "A", "b": "ghost", "same_story": true}"#
            + "\n"
            + r#"{"a": "ghost", "b": "phantom", "same_story": false}"#
            + "\n";
        let eval = evaluate(&outcome, &gold(&labels), &config(&[0.5]), &Silent).unwrap();
        assert_eq!(eval.gold.records, 6);
        assert_eq!(eval.gold.skipped, 2);
        assert_eq!(eval.gold.unknown_ids, ["ghost", "phantom"]);
        assert_eq!(eval.gold.positives + eval.gold.negatives, 4);

        let strict = SweepConfig {
            unknown_ids: UnknownIds::Fail,
            ..config(&[0.5])
        };
        let err = evaluate(&outcome, &gold(&labels), &strict, &Silent).unwrap_err();
        assert_eq!(err.to_string(), "gold:5: id \"ghost\" is not in the corpus");

        let none = "{\"a\": \"ghost\", \"b\": \"phantom\", \"same_story\": true}\n";
        let err = evaluate(&outcome, &gold(none), &config(&[0.5]), &Silent).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("gold: no gold pair can be judged: 2 ids are not in the corpus"),
            "{err}"
        );
    }

    /// A corpus of story families: each family is a base text and copies with a share of
    /// their words replaced, so pairs spread over the whole similarity range.
    fn families() -> Vec<(String, String)> {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move |n: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        let mut docs = Vec::new();
        for family in 0..25 {
            let base: Vec<String> = (0..80).map(|_| format!("t{}", next(3000))).collect();
            for copy in 0..5 {
                let rate = [0, 2, 5, 10, 20][copy];
                let text: Vec<String> = base
                    .iter()
                    .map(|w| {
                        if next(100) < rate {
                            format!("t{}", next(3000))
                        } else {
                            w.clone()
                        }
                    })
                    .collect();
                docs.push((format!("f{family:02}-{copy}"), text.join(" ")));
            }
        }
        docs
    }

    #[test]
    fn every_threshold_reproduces_a_run_at_that_threshold() {
        let docs = families();
        let (_dir, path) = corpus_file(&docs);
        let input = [InputSpec::Path(path)];
        let labels: String = (0..25)
            .flat_map(|f| {
                (1..5).map(move |c| {
                    format!(
                        "{{\"a\": \"f{f:02}-0\", \"b\": \"f{f:02}-{c}\", \"same_story\": true}}\n"
                    )
                })
            })
            .chain((0..24).map(|f| {
                format!(
                    "{{\"a\": \"f{f:02}-0\", \"b\": \"f{:02}-0\", \"same_story\": false}}\n",
                    f + 1
                )
            }))
            .collect();
        let gold = gold(&labels);
        let thresholds = [0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 1.0];
        for mode in [ClusterMode::Connected, ClusterMode::Leader] {
            let base = PipelineBuilder::new()
                .cluster_mode(mode)
                .threshold(0.1)
                .candidate_scores(true)
                .build()
                .unwrap();
            let outcome = base.run(&input, &Silent).unwrap();
            let eval = evaluate(&outcome, &gold, &config(&thresholds), &Silent).unwrap();
            for (row, &t) in eval.rows.iter().zip(&thresholds) {
                let direct = PipelineBuilder::new()
                    .cluster_mode(mode)
                    .threshold(t)
                    .build()
                    .unwrap();
                let at_t = direct.run(&input, &Silent).unwrap();
                assert_eq!(row.lsh, at_t.settings.lsh, "{mode:?} at {t}");
                assert_eq!(
                    row.candidates, at_t.stats.candidate_pairs,
                    "{mode:?} at {t}"
                );
                assert_eq!(row.verified, at_t.pairs.len() as u64, "{mode:?} at {t}");
                assert_eq!(row.clusters, at_t.clusters.len() as u64, "{mode:?} at {t}");
                assert_eq!(
                    row.clustered_documents, at_t.stats.clustered_documents,
                    "{mode:?} at {t}"
                );
                let m = row.missed;
                assert_eq!(
                    m.not_candidate + m.split_by_clustering + m.below_threshold,
                    row.pairwise.false_negatives
                );
                if mode == ClusterMode::Connected {
                    // Connected components never split a verified pair.
                    assert_eq!(m.split_by_clustering, 0);
                }
            }
            let mut bandings: Vec<(usize, usize)> = eval
                .rows
                .iter()
                .map(|r| (r.lsh.bands, r.lsh.rows))
                .collect();
            bandings.dedup();
            assert!(bandings.len() >= 4, "the sweep re-bands: {bandings:?}");
            // Recall falls as the threshold rises.
            let recall: Vec<f64> = eval
                .rows
                .iter()
                .filter_map(|r| r.pairwise.recall())
                .collect();
            assert!(recall.windows(2).all(|w| w[0] >= w[1]), "{recall:?}");
            assert!(
                recall[0] > 0.9 && recall[recall.len() - 1] <= 0.25,
                "{recall:?}"
            );
        }
    }

    #[test]
    fn threshold_grid() {
        assert_eq!(
            thresholds(0.1, 0.3, 0.05).unwrap(),
            [0.1, 0.15, 0.2, 0.25, 0.3]
        );
        assert_eq!(thresholds(0.5, 0.5, 0.1).unwrap(), [0.5]);
        assert_eq!(thresholds(0.9, 1.0, 0.3).unwrap(), [0.9]);
        assert!(thresholds(0.0, 0.5, 0.1).is_err());
        assert!(thresholds(0.6, 0.5, 0.1).is_err());
        assert!(thresholds(0.1, 1.1, 0.1).is_err());
        assert!(thresholds(0.1, 0.5, 0.0).is_err());
        assert!(thresholds(0.1, 0.5, f64::NAN).is_err());
        // Kept to four decimals, so nothing finer is taken.
        assert!(thresholds(0.1, 0.1001, 0.00001).is_err());
        assert!(thresholds(0.00002, 0.5, 0.1).is_err());
        assert_eq!(
            thresholds(0.0001, 0.0003, 0.0001).unwrap(),
            [0.0001, 0.0002, 0.0003]
        );
        assert!(thresholds(0.0001, 1.0, 0.00001).is_err());
    }

    #[test]
    fn scores_read_the_right_field() {
        let p = PairScore {
            a: 0,
            b: 1,
            estimated: 0.4,
            jaccard: 0.3,
            a_in_b: 0.9,
            b_in_a: 0.35,
        };
        let got: Vec<Option<f32>> = Score::ALL.iter().map(|s| s.of(&p)).collect();
        assert_eq!(got, [Some(0.3), Some(0.4), Some(0.35), Some(0.9), None]);
    }
}
