//! Output of `neardup eval` and `neardup params`: JSON documents and terminal tables.
//!
//! Like [`crate::report`], the only place these commands' `Serialize` types live; every
//! document carries `schema_version` and every score is rounded to 4 decimals, so output
//! is byte-identical across runs and thread counts.

use std::io::{self, Write};

use comfy_table::{CellAlignment, Table, presets::UTF8_BORDERS_ONLY};
use serde::Serialize;

use crate::cluster::{ClusterMode, RepresentativeRule};
use crate::eval::banding::BandingReport;
use crate::eval::gold::GoldShape;
use crate::eval::sweep::{Banding, Evaluation, JudgedOutcome, ThresholdResult};
use crate::pipeline::Outcome;
use crate::report::SCHEMA_VERSION;
use crate::story::Linkage;

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn round4_opt(x: Option<f64>) -> Option<f64> {
    x.map(round4)
}

/// `part` as a percentage of `whole`, for people.
fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".into();
    }
    let p = 100.0 * part as f64 / whole as f64;
    if p > 0.0 && p < 10.0 {
        format!("{p:.1}%")
    } else {
        format!("{p:.0}%")
    }
}

/// Text for an optional figure in a table.
fn cell(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |v| format!("{v:.3}"))
}

/// One threshold of the sweep.
#[derive(Debug, Serialize)]
pub struct ThresholdRecord {
    /// The threshold.
    pub threshold: f64,
    /// LSH bands used at this threshold.
    pub bands: usize,
    /// LSH rows per band.
    pub rows: usize,
    /// Candidate pairs from LSH.
    pub candidates: u64,
    /// Candidates at or above the threshold.
    pub verified: u64,
    /// Clusters of two or more documents.
    pub clusters: u64,
    /// Documents in them.
    pub clustered_documents: u64,
    /// Pairwise (both in one cluster) precision; null when nothing is predicted.
    pub precision: Option<f64>,
    /// Pairwise recall.
    pub recall: Option<f64>,
    /// Pairwise F1.
    pub f1: Option<f64>,
    /// Pairwise F-β, when a β was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub f_beta: Option<f64>,
    /// Gold positives in one cluster.
    pub true_positives: u64,
    /// Gold negatives in one cluster.
    pub false_positives: u64,
    /// Gold positives not in one cluster.
    pub false_negatives: u64,
    /// Missed positives by reason.
    pub missed: MissedRecord,
    /// The same figures when a pair counts only if it was itself verified (`neardup pairs`).
    pub direct: DirectRecord,
    /// Adjusted Rand index (cluster gold).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adjusted_rand_index: Option<f64>,
    /// B-cubed precision (cluster gold).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bcubed_precision: Option<f64>,
    /// B-cubed recall (cluster gold).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bcubed_recall: Option<f64>,
}

/// Missed positives by reason.
#[derive(Debug, Serialize)]
pub struct MissedRecord {
    /// Score at or above the threshold, but never an LSH candidate.
    pub not_candidate: u64,
    /// A candidate at or above the threshold that clustering left apart.
    pub split_by_clustering: u64,
    /// Score below the threshold…
    pub below_threshold: u64,
    /// …of which ruled two stories by a story-level veto (always 0 at the near-copy level).
    pub vetoed: u64,
}

/// Pair-level figures.
#[derive(Debug, Serialize)]
pub struct DirectRecord {
    /// Precision.
    pub precision: Option<f64>,
    /// Recall.
    pub recall: Option<f64>,
    /// F1.
    pub f1: Option<f64>,
}

impl ThresholdRecord {
    /// The record of a threshold's result; `beta` adds F-β.
    pub fn new(r: &ThresholdResult, beta: Option<f64>) -> Self {
        let p = &r.pairwise;
        ThresholdRecord {
            threshold: r.threshold,
            bands: r.lsh.bands,
            rows: r.lsh.rows,
            candidates: r.candidates,
            verified: r.verified,
            clusters: r.clusters,
            clustered_documents: r.clustered_documents,
            precision: round4_opt(p.precision()),
            recall: round4_opt(p.recall()),
            f1: round4_opt(p.f1()),
            f_beta: beta.and_then(|b| round4_opt(p.f_beta(b))),
            true_positives: p.true_positives,
            false_positives: p.false_positives,
            false_negatives: p.false_negatives,
            missed: MissedRecord {
                not_candidate: r.missed.not_candidate,
                split_by_clustering: r.missed.split_by_clustering,
                below_threshold: r.missed.below_threshold,
                vetoed: r.missed.vetoed,
            },
            direct: DirectRecord {
                precision: round4_opt(r.direct.precision()),
                recall: round4_opt(r.direct.recall()),
                f1: round4_opt(r.direct.f1()),
            },
            adjusted_rand_index: r.partition.map(|p| round4(p.adjusted_rand_index)),
            bcubed_precision: r.partition.map(|p| round4(p.bcubed_precision)),
            bcubed_recall: r.partition.map(|p| round4(p.bcubed_recall)),
        }
    }
}

/// The settings an evaluation ran with.
#[derive(Debug, Serialize)]
pub struct EvalSettingsRecord {
    /// `near_copy` or `story`.
    pub level: &'static str,
    /// The swept similarity.
    pub score: &'static str,
    /// Shingles.
    pub shingle: String,
    /// Signature slots.
    pub num_perm: usize,
    /// Sketch seed.
    pub seed: u64,
    /// `derived` (per threshold) or `fixed` (`--bands/--rows`); `story` at the story
    /// level (the weighted-MinHash banding of `--story-candidates`, the same at every
    /// threshold).
    pub banding: &'static str,
    /// LSH bucket cap.
    pub bucket_cap: usize,
    /// `connected` or `leader`; at the story level, the linkage (`majority` or
    /// `average`).
    pub cluster_mode: &'static str,
    /// Representative rule (matters in leader mode).
    pub representative: &'static str,
}

/// How the gold file was used.
#[derive(Debug, Serialize)]
pub struct GoldRecord<'a> {
    /// The file as given.
    pub file: &'a str,
    /// `pairs` or `clusters`.
    pub shape: &'static str,
    /// Records (repeats merged).
    pub records: u64,
    /// Records left out because an id is not in the corpus.
    pub skipped: u64,
    /// Repeated records merged.
    pub repeated: u64,
    /// Gold ids that are not in the corpus.
    pub unknown_ids: &'a [String],
    /// Judged documents.
    pub documents: u64,
    /// Gold positive pairs.
    pub positives: u64,
    /// Gold negative pairs.
    pub negatives: u64,
}

/// The best threshold by an F-measure.
#[derive(Debug, Serialize)]
pub struct BestRecord {
    /// β of the F-measure.
    pub beta: f64,
    /// The threshold (the higher one on ties).
    pub threshold: f64,
    /// Its F-β.
    pub f_beta: Option<f64>,
    /// Its precision.
    pub precision: Option<f64>,
    /// Its recall.
    pub recall: Option<f64>,
}

/// A judged pair at the explained threshold.
#[derive(Debug, Serialize)]
pub struct JudgedRecord<'a> {
    /// The smaller id.
    pub a: &'a str,
    /// The larger id.
    pub b: &'a str,
    /// Why a positive was missed (`not_candidate`, `split_by_clustering`,
    /// `below_threshold`); absent for false merges.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// A story-level veto ruled the pair two stories (present only then).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub vetoed: bool,
    /// LSH proposed the pair at this threshold's banding.
    pub candidate: bool,
    /// The swept score.
    pub score: f64,
    /// Exact Jaccard.
    pub jaccard: f64,
    /// MinHash estimate.
    pub estimated_jaccard: f64,
    /// |A∩B| / |A|.
    pub containment_a_in_b: f64,
    /// |A∩B| / |B|.
    pub containment_b_in_a: f64,
    /// The pair's kind in the gold file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'a str>,
    /// The gold record's line.
    pub gold_line: u64,
}

/// Results for one kind of pair.
#[derive(Debug, Serialize)]
pub struct KindRecord<'a> {
    /// The kind.
    pub kind: &'a str,
    /// Pairs of this kind.
    pub pairs: u64,
    /// Gold positives among them.
    pub positives: u64,
    /// Pairs put in one cluster.
    pub clustered: u64,
}

/// Misses and false merges at one threshold.
#[derive(Debug, Serialize)]
pub struct ExplainedRecord<'a> {
    /// The threshold.
    pub threshold: f64,
    /// Missed gold positives.
    pub misses: Vec<JudgedRecord<'a>>,
    /// Gold negatives put in one cluster.
    pub false_merges: Vec<JudgedRecord<'a>>,
    /// Results per kind of pair.
    pub kinds: Vec<KindRecord<'a>>,
}

/// One histogram bin.
#[derive(Debug, Serialize)]
pub struct BinRecord {
    /// Lower bound (inclusive).
    pub from: f64,
    /// Upper bound (exclusive, except for the last bin).
    pub to: f64,
    /// Gold positives in the bin.
    pub positives: u64,
    /// Gold negatives in the bin.
    pub negatives: u64,
}

/// The score distribution.
#[derive(Debug, Serialize)]
pub struct HistogramRecord {
    /// The bins.
    pub bins: Vec<BinRecord>,
    /// Whether negatives are only the LSH candidates (cluster gold).
    pub negatives_are_candidates: bool,
}

/// The whole `neardup eval` result.
#[derive(Debug, Serialize)]
pub struct EvalRecord<'a> {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Documents in the corpus.
    pub documents: u64,
    /// Settings.
    pub settings: EvalSettingsRecord,
    /// Gold use.
    pub gold: GoldRecord<'a>,
    /// One record per threshold, ascending.
    pub thresholds: Vec<ThresholdRecord>,
    /// Best threshold by F1.
    pub best_f1: Option<BestRecord>,
    /// Best threshold by F-β, when a β was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_f_beta: Option<BestRecord>,
    /// Misses and false merges at the explained threshold.
    pub explained: ExplainedRecord<'a>,
    /// Score distribution.
    pub histogram: HistogramRecord,
}

fn mode_name(mode: ClusterMode) -> &'static str {
    match mode {
        ClusterMode::Connected => "connected",
        ClusterMode::Leader => "leader",
    }
}

fn linkage_name(linkage: Linkage) -> &'static str {
    match linkage {
        Linkage::Average => "average",
        Linkage::Majority => "majority",
    }
}

fn representative_name(rule: RepresentativeRule) -> &'static str {
    match rule {
        RepresentativeRule::Earliest => "earliest",
        RepresentativeRule::Longest => "longest",
        RepresentativeRule::First => "first",
    }
}

fn shape_name(shape: GoldShape) -> &'static str {
    match shape {
        GoldShape::Pairs => "pairs",
        GoldShape::Clusters => "clusters",
    }
}

impl<'a> EvalRecord<'a> {
    /// The record of an evaluation of `outcome` against `gold_file`.
    pub fn new(
        outcome: &'a Outcome,
        eval: &'a Evaluation,
        gold_file: &'a str,
        banding: Banding,
    ) -> Self {
        let s = &outcome.settings;
        let story = eval.score.is_story();
        let beta = eval.best_f_beta.map(|b| b.0);
        let corpus = &outcome.corpus;
        let judged = |o: &JudgedOutcome| {
            let j = &eval.judged[o.pair];
            let p = &j.scores;
            JudgedRecord {
                a: corpus.id(p.a),
                b: corpus.id(p.b),
                reason: o.reason.map(|r| r.name()),
                vetoed: j.vetoed,
                candidate: o.candidate,
                score: round4(f64::from(j.score)),
                jaccard: round4(f64::from(p.jaccard)),
                estimated_jaccard: round4(f64::from(p.estimated)),
                containment_a_in_b: round4(f64::from(p.a_in_b)),
                containment_b_in_a: round4(f64::from(p.b_in_a)),
                kind: j.kind.map(|k| eval.kinds[k as usize].as_str()),
                gold_line: j.line,
            }
        };
        let best = |beta: f64, row: Option<usize>| {
            row.map(|i| {
                let r = &eval.rows[i].pairwise;
                BestRecord {
                    beta,
                    threshold: eval.rows[i].threshold,
                    f_beta: round4_opt(r.f_beta(beta)),
                    precision: round4_opt(r.precision()),
                    recall: round4_opt(r.recall()),
                }
            })
        };
        let h = &eval.histogram;
        let bins = h.bins() as f64;
        EvalRecord {
            schema_version: SCHEMA_VERSION,
            documents: corpus.len() as u64,
            settings: EvalSettingsRecord {
                level: if story { "story" } else { "near_copy" },
                score: eval.score.name(),
                shingle: s.shingle.to_string(),
                num_perm: s.num_perm,
                seed: s.seed,
                banding: match banding {
                    _ if story => "story",
                    Banding::Derived { .. } => "derived",
                    Banding::Fixed(_) => "fixed",
                },
                bucket_cap: if story {
                    s.story.bucket_cap
                } else {
                    s.bucket_cap
                },
                cluster_mode: if story {
                    linkage_name(s.story.linkage)
                } else {
                    mode_name(s.cluster_mode)
                },
                representative: representative_name(s.representative),
            },
            gold: GoldRecord {
                file: gold_file,
                shape: shape_name(eval.gold.shape),
                records: eval.gold.records,
                skipped: eval.gold.skipped,
                repeated: eval.gold.repeated,
                unknown_ids: &eval.gold.unknown_ids,
                documents: eval.gold.documents,
                positives: eval.gold.positives,
                negatives: eval.gold.negatives,
            },
            thresholds: eval
                .rows
                .iter()
                .map(|r| ThresholdRecord::new(r, beta))
                .collect(),
            best_f1: best(1.0, eval.best_f1),
            best_f_beta: eval
                .best_f_beta
                .map(|(b, row)| best(b, row))
                .unwrap_or(None),
            explained: ExplainedRecord {
                threshold: eval.explanation.threshold,
                misses: eval.explanation.misses.iter().map(judged).collect(),
                false_merges: eval.explanation.false_merges.iter().map(judged).collect(),
                kinds: eval
                    .explanation
                    .kinds
                    .iter()
                    .map(|k| KindRecord {
                        kind: &k.kind,
                        pairs: k.pairs,
                        positives: k.positives,
                        clustered: k.clustered,
                    })
                    .collect(),
            },
            histogram: HistogramRecord {
                bins: (0..h.bins())
                    .map(|i| BinRecord {
                        from: round4(i as f64 / bins),
                        to: round4((i + 1) as f64 / bins),
                        positives: h.positives[i],
                        negatives: h.negatives[i],
                    })
                    .collect(),
                negatives_are_candidates: h.negatives_are_candidates,
            },
        }
    }
}

/// Writes a record as one pretty-printed JSON document.
pub fn write_json<T: Serialize>(out: &mut dyn Write, record: &T) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, record)?;
    out.write_all(b"\n")
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY);
    t.set_header(header.to_vec());
    t
}

fn align_right(t: &mut Table, from: usize) {
    let n = t.column_count();
    for i in from..n {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
}

/// Writes an evaluation for people: the gold summary, the sweep, the best thresholds,
/// and the misses and false merges at the explained threshold (the first `shown`).
pub fn write_eval_table(
    out: &mut dyn Write,
    record: &EvalRecord<'_>,
    shown: usize,
) -> io::Result<()> {
    let g = &record.gold;
    let s = &record.settings;
    let judged = match g.shape {
        "pairs" => format!(
            "{} ({} same story, {} different)",
            crate::report::count(g.positives + g.negatives, "judged pair", "judged pairs"),
            g.positives,
            g.negatives
        ),
        _ => format!(
            "{} in clusters ({} same-story pairs, {} different)",
            crate::report::count(g.documents, "document", "documents"),
            g.positives,
            g.negatives
        ),
    };
    writeln!(out, "gold: {}: {judged}", g.file)?;
    if g.skipped > 0 {
        writeln!(
            out,
            "      {} left out: {} not in the corpus (e.g. {})",
            crate::report::count(g.skipped, "record", "records"),
            crate::report::count(g.unknown_ids.len() as u64, "id is", "ids are"),
            g.unknown_ids
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )?;
    }
    if s.level == "story" {
        writeln!(
            out,
            "corpus: {}; level: story; score: story (model probability); {} linkage clusters",
            crate::report::count(record.documents, "document", "documents"),
            s.cluster_mode
        )?;
    } else {
        writeln!(
            out,
            "corpus: {}; score: {}; shingles {}, num-perm {}, {} banding, {} clusters",
            crate::report::count(record.documents, "document", "documents"),
            s.score,
            s.shingle,
            s.num_perm,
            s.banding,
            s.cluster_mode
        )?;
    }
    writeln!(out)?;

    let with_beta = record.best_f_beta.is_some();
    let with_partition = record
        .thresholds
        .iter()
        .any(|r| r.adjusted_rand_index.is_some());
    let mut header = vec![
        "threshold",
        "bands x rows",
        "candidates",
        "clusters",
        "precision",
        "recall",
        "F1",
    ];
    if with_beta {
        header.push("F-beta");
    }
    if with_partition {
        header.extend(["ARI", "B3 prec", "B3 recall"]);
    }
    header.extend(["missed: LSH", "split", "below"]);
    let mut t = table(&header);
    for r in &record.thresholds {
        let mut row = vec![
            format!("{:.2}", r.threshold),
            format!("{} x {}", r.bands, r.rows),
            r.candidates.to_string(),
            r.clusters.to_string(),
            cell(r.precision),
            cell(r.recall),
            cell(r.f1),
        ];
        if with_beta {
            row.push(cell(r.f_beta));
        }
        if with_partition {
            row.extend([
                cell(r.adjusted_rand_index),
                cell(r.bcubed_precision),
                cell(r.bcubed_recall),
            ]);
        }
        row.extend([
            r.missed.not_candidate.to_string(),
            r.missed.split_by_clustering.to_string(),
            r.missed.below_threshold.to_string(),
        ]);
        t.add_row(row);
    }
    align_right(&mut t, 0);
    writeln!(out, "{t}")?;
    writeln!(out)?;

    for (name, best) in [("F1", &record.best_f1), ("F-beta", &record.best_f_beta)] {
        match best {
            Some(b) => writeln!(
                out,
                "best {name}{}: {} at threshold {} (precision {}, recall {})",
                if name == "F1" {
                    String::new()
                } else {
                    format!(" (beta = {})", b.beta)
                },
                cell(b.f_beta),
                b.threshold,
                cell(b.precision),
                cell(b.recall)
            )?,
            None if name == "F1" && record.gold.positives == 0 => writeln!(
                out,
                "best F1: undefined (the gold has no same-story pair, so recall has none to count)"
            )?,
            None if name == "F1" => {
                writeln!(out, "best F1: none (no threshold predicts a gold pair)")?
            }
            None => {}
        }
    }

    let e = &record.explained;
    // From the lists, not the sweep's rows: the explained threshold may be off the grid.
    let reasons = |why: &str| e.misses.iter().filter(|m| m.reason == Some(why)).count();
    let vetoed = e.misses.iter().filter(|m| m.vetoed).count();
    writeln!(out)?;
    writeln!(
        out,
        "at threshold {}: {} of {} same-story pairs missed ({}: {} never LSH candidates, {} split by clustering, {} below the threshold{}); {} of {} different-story pairs merged ({})",
        e.threshold,
        e.misses.len(),
        g.positives,
        percent(e.misses.len() as u64, g.positives),
        reasons("not_candidate"),
        reasons("split_by_clustering"),
        reasons("below_threshold"),
        if vetoed > 0 {
            format!(", {vetoed} of them vetoed")
        } else {
            String::new()
        },
        e.false_merges.len(),
        g.negatives,
        percent(e.false_merges.len() as u64, g.negatives),
    )?;
    if !e.kinds.is_empty() {
        let mut t = table(&["kind", "pairs", "same story", "in one cluster", "share"]);
        for k in &e.kinds {
            t.add_row(vec![
                k.kind.to_string(),
                k.pairs.to_string(),
                k.positives.to_string(),
                k.clustered.to_string(),
                percent(k.clustered, k.pairs),
            ]);
        }
        align_right(&mut t, 1);
        writeln!(out, "{t}")?;
    }
    for (title, list) in [
        ("missed same-story pairs", &e.misses),
        ("merged different-story pairs", &e.false_merges),
    ] {
        if list.is_empty() {
            continue;
        }
        writeln!(
            out,
            "{title} ({} of {}, highest score first{}):",
            list.len().min(shown),
            list.len(),
            if list.len() > shown {
                "; --format json lists all"
            } else {
                ""
            }
        )?;
        let mut t = table(&[
            "a",
            "b",
            "why",
            "score",
            "jaccard",
            "cont. min",
            "cont. max",
            "kind",
        ]);
        for j in list.iter().take(shown) {
            t.add_row(vec![
                crate::report::one_line(j.a).into_owned(),
                crate::report::one_line(j.b).into_owned(),
                match (j.reason, j.vetoed) {
                    (Some(_), true) => "vetoed".to_string(),
                    (reason, _) => reason.unwrap_or("merged").replace('_', " "),
                },
                format!("{:.3}", j.score),
                format!("{:.3}", j.jaccard),
                format!("{:.3}", j.containment_a_in_b.min(j.containment_b_in_a)),
                format!("{:.3}", j.containment_a_in_b.max(j.containment_b_in_a)),
                j.kind.unwrap_or("").to_string(),
            ]);
        }
        writeln!(out, "{t}")?;
    }
    Ok(())
}

/// `neardup params` output.
#[derive(Debug, Serialize)]
pub struct BandingRecord {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `near-copy`, or `story` for the story level's candidates (weighted signatures).
    pub level: &'static str,
    /// At the story level, its fixed bucket cap: larger buckets pair each member with
    /// the next `bucket_cap - 1` in id order only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket_cap: Option<usize>,
    /// At the story level, the lowest signature estimate of a bucket pair that is scored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate_floor: Option<f64>,
    /// The threshold.
    pub threshold: f64,
    /// Signature slots.
    pub num_perm: usize,
    /// Bands used.
    pub bands: usize,
    /// Rows per band.
    pub rows: usize,
    /// Whether bands/rows were given.
    pub explicit: bool,
    /// The optimal banding for the weights.
    pub optimal: OptimalRecord,
    /// Weight of the false-positive mass.
    pub fp_weight: f64,
    /// Weight of the false-negative mass.
    pub fn_weight: f64,
    /// False-positive mass `∫₀ᵗ P(s) ds`.
    pub fp_mass: f64,
    /// False-negative mass `∫ₜ¹ (1 − P(s)) ds`.
    pub fn_mass: f64,
    /// P(candidate) at the threshold.
    pub probability_at_threshold: f64,
    /// The similarity where P(candidate) = ½.
    pub half_point: f64,
    /// P(candidate) over s.
    pub curve: Vec<CurvePoint>,
}

/// The optimal banding.
#[derive(Debug, Serialize)]
pub struct OptimalRecord {
    /// Bands.
    pub bands: usize,
    /// Rows per band.
    pub rows: usize,
}

/// One point of the S-curve.
#[derive(Debug, Serialize)]
pub struct CurvePoint {
    /// Similarity.
    pub similarity: f64,
    /// Probability of becoming a candidate.
    pub probability: f64,
}

impl BandingRecord {
    /// The record of the story level's candidate banding (`report` made with its
    /// threshold and weights), with its bucket cap and estimate floor.
    pub fn story(report: &BandingReport, bucket_cap: usize, estimate_floor: f64) -> Self {
        BandingRecord {
            level: "story",
            bucket_cap: Some(bucket_cap),
            estimate_floor: Some(estimate_floor),
            ..Self::new(report)
        }
    }

    /// The record of a near-copy banding report (see [`Self::story`]).
    pub fn new(r: &BandingReport) -> Self {
        BandingRecord {
            schema_version: SCHEMA_VERSION,
            level: "near-copy",
            bucket_cap: None,
            estimate_floor: None,
            threshold: r.threshold,
            num_perm: r.num_perm,
            bands: r.lsh.bands,
            rows: r.lsh.rows,
            explicit: r.explicit,
            optimal: OptimalRecord {
                bands: r.optimal.bands,
                rows: r.optimal.rows,
            },
            fp_weight: r.fp_weight,
            fn_weight: r.fn_weight,
            fp_mass: round4(r.fp_mass),
            fn_mass: round4(r.fn_mass),
            probability_at_threshold: round4(r.at_threshold()),
            half_point: round4(r.half_point),
            curve: r
                .curve
                .iter()
                .map(|&(s, p)| CurvePoint {
                    similarity: round4(s),
                    probability: round4(p),
                })
                .collect(),
        }
    }
}

/// Writes a banding report for people.
pub fn write_banding_table(out: &mut dyn Write, r: &BandingRecord) -> io::Result<()> {
    if let (Some(cap), Some(floor)) = (r.bucket_cap, r.estimate_floor) {
        writeln!(
            out,
            "story level: candidates by weighted Jaccard of the IDF-weighted words; buckets \
             of more than {cap} pair each member with the next {} in id order; a bucket \
             pair is scored when its signatures' estimate reaches {}",
            cap - 1,
            // The floor is 3/4 of the candidate threshold: shown without float noise.
            (floor * 1e4).round() / 1e4
        )?;
    }
    writeln!(
        out,
        "threshold {}, num-perm {}: {} x {} ({} of {} slots){}",
        r.threshold,
        r.num_perm,
        crate::report::count(r.bands as u64, "band", "bands"),
        crate::report::count(r.rows as u64, "row", "rows"),
        r.bands * r.rows,
        r.num_perm,
        if r.explicit {
            format!(
                ", as given (the optimum is {} x {})",
                r.optimal.bands, r.optimal.rows
            )
        } else {
            format!(", minimizing {} x FP + {} x FN", r.fp_weight, r.fn_weight)
        }
    )?;
    writeln!(
        out,
        "FP mass (area under the S-curve below the threshold) {:.4}; FN mass (area above the curve from the threshold up) {:.4}",
        r.fp_mass, r.fn_mass
    )?;
    writeln!(
        out,
        "P(candidate) at the threshold {:.4}; P = 0.5 at s = {:.4}",
        r.probability_at_threshold, r.half_point
    )?;
    let mut t = table(&["similarity", "P(candidate)", "S-curve"]);
    for p in &r.curve {
        let bar = "#".repeat((p.probability * 40.0).round() as usize);
        let mark = if p.similarity == r.threshold {
            " <- threshold"
        } else {
            ""
        };
        t.add_row(vec![
            format!("{:.2}", p.similarity),
            format!("{:.4}", p.probability),
            format!("{bar}{mark}"),
        ]);
    }
    align_right(&mut t, 0);
    if let Some(c) = t.column_mut(2) {
        c.set_cell_alignment(CellAlignment::Left);
    }
    writeln!(out, "{t}")
}
