//! `neardup eval`: quality against gold labels at every threshold, from one run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use neardup::eval::gold::{self, GoldFields, GoldFormat, GoldShape};
use neardup::eval::plot::{self, Chart, ImageFormat};
use neardup::eval::report::{self, EvalRecord};
use neardup::eval::sweep::{self, Banding, Score, SweepConfig, UnknownIds};
use neardup::progress::Silent;
use neardup::shingle::ShingleSpec;

use crate::args::{ClusterArgs, ExecArgs, InputArgs, LevelArg, SimilarityArgs, StoryArgs};

pub const EVAL_HELP: &str = "\
How it works:
  The corpus is read, shingled and sketched once. Then, for every threshold from
  --min-threshold to --max-threshold by --step, neardup does what 'neardup cluster
  --threshold T' would do with the same flags: the LSH banding chosen for T (or
  --bands/--rows), its candidate pairs, the pairs whose score reaches T, and their
  clusters. A judged pair counts as predicted 'same story' when its two documents end up
  in one cluster (the 'direct' figures in --format json count only pairs verified
  themselves, as 'neardup pairs' lists them).

Gold labels (--gold), JSON Lines or CSV (by the name, or --gold-format):
  pairs     {\"a\": ID, \"b\": ID, \"same_story\": true}   (or \"duplicate\"; see --gold-label)
            the label true/false, yes/no or 1/0 in either format; both fields must agree
            an optional \"label\" field (e.g. copy, rewrite, related) breaks results down
  clusters  {\"id\": ID, \"cluster\": LABEL}   one record per document; list singletons too
  Gold ids missing from the corpus are counted, listed in --format json, and left out
  (with a warning); --strict makes them an error.

Why a same-story pair was missed, at each threshold:
  LSH    its score reaches the threshold, but LSH never proposed it (more bands help)
  split  a candidate above the threshold that leader clustering left apart
  below  its score is below the threshold
  Every judged pair is scored exactly from its shingle sets, so the reasons are exact.

Story level (--level story):
  The corpus is read and every story candidate scored once, as 'neardup pairs --level
  story --story-threshold 0' lists them. The swept score is the story score: the story
  model's probability of one story (--score story, the default at this level). For every
  threshold T neardup does what 'neardup cluster --level story --story-threshold T'
  would do: the scored candidates whose probability reaches T, clustered by the
  story linkage re-run at T (--mode, --num-perm, --bands, --rows and --bucket-cap are
  refused). Candidates do not depend on T, so 'LSH' misses are same-story pairs above T
  that the weighted-MinHash LSH (--story-candidates) or --window never proposed; judged
  pairs outside the candidates are scored by the same model, so every reason is exact.
  The figures depend on the committed model (see BENCHMARKS.md).

Output: the sweep table (or --format json), the best threshold by F1 (and by F-beta
with --beta), the misses and wrong merges at that threshold (or --explain-at), and four
charts in --plots: eval-sweep.svg/png (precision, recall, F1 by threshold) and
eval-scores.svg/png (score distribution of same-story and different-story pairs).

Examples:
  neardup eval news.jsonl --gold labels.jsonl
  neardup eval news.jsonl --gold labels.csv --score containment-max --beta 0.5
  neardup eval news.jsonl --gold stories.jsonl --gold-id doc --gold-cluster story --mode leader
  neardup eval news.jsonl --gold labels.jsonl --min-threshold 0.02 --step 0.02 --format json
  neardup eval news.jsonl --gold labels.jsonl --format json -o eval.json --plots charts/
  neardup eval news.jsonl --gold labels.jsonl --level story --min-threshold 0.05";

#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub gold: GoldArgs,
    #[command(flatten)]
    pub sweep: SweepArgs,
    #[command(flatten)]
    pub sketch: SketchArgs,
    #[command(flatten)]
    pub clustering: ClusterArgs,
    // The level swept (its --story-threshold is swept instead, and hidden).
    #[command(flatten)]
    pub story: StoryArgs,
    #[command(flatten)]
    pub output: ReportArgs,
    /// Missed and wrongly merged pairs listed in the table (all are in --format json).
    #[arg(long, default_value_t = 15, value_name = "N", help_heading = "Output", value_parser = parse_show)]
    pub show: usize,
    #[command(flatten)]
    pub plots: PlotArgs,
    #[command(flatten)]
    pub run: ExecArgs,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Gold labels")]
pub struct GoldArgs {
    /// The gold labels: judged pairs or a cluster per document (see below).
    #[arg(long = "gold", id = "gold", value_name = "FILE", required = true)]
    pub path: PathBuf,
    /// Format of the gold file (default: csv for .csv names, jsonl otherwise).
    #[arg(
        long = "gold-format",
        id = "gold_format",
        value_enum,
        value_name = "FORMAT"
    )]
    pub format: Option<GoldFormatArg>,
    /// What the gold file holds (default: pairs if its first record has the pair fields).
    #[arg(
        long = "gold-shape",
        id = "gold_shape",
        value_enum,
        value_name = "SHAPE"
    )]
    pub shape: Option<GoldShapeArg>,
    /// Field of a pair's first id.
    #[arg(
        long = "gold-a",
        id = "gold_a",
        default_value = "a",
        value_name = "FIELD"
    )]
    pub a: String,
    /// Field of a pair's second id.
    #[arg(
        long = "gold-b",
        id = "gold_b",
        default_value = "b",
        value_name = "FIELD"
    )]
    pub b: String,
    /// Field saying a pair is the same story (default: same_story or duplicate, which must
    /// agree where a pair has both).
    #[arg(long = "gold-label", id = "gold_label", value_name = "FIELD")]
    pub label: Option<String>,
    /// Optional field with a pair's kind, to break results down by it.
    #[arg(
        long = "gold-kind",
        id = "gold_kind",
        default_value = "label",
        value_name = "FIELD"
    )]
    pub kind: String,
    /// Field of a document's id in cluster gold.
    #[arg(
        long = "gold-id",
        id = "gold_id",
        default_value = "id",
        value_name = "FIELD"
    )]
    pub id: String,
    /// Field of a document's cluster label in cluster gold.
    #[arg(
        long = "gold-cluster",
        id = "gold_cluster",
        default_value = "cluster",
        value_name = "FIELD"
    )]
    pub cluster: String,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Sweep")]
pub struct SweepArgs {
    /// The similarity thresholded: exact Jaccard, its MinHash estimate, or the smaller or
    /// larger containment (larger: one text is an excerpt of the other); at --level
    /// story, the story score [default: jaccard; story at --level story].
    #[arg(long, value_enum)]
    pub score: Option<ScoreArg>,
    /// Lowest threshold swept (LSH candidates are generated for it: low values cost time).
    #[arg(long, default_value_t = 0.1, value_name = "T", value_parser = parse_swept)]
    pub min_threshold: f64,
    /// Highest threshold swept.
    #[arg(long, default_value_t = 1.0, value_name = "T", value_parser = parse_swept)]
    pub max_threshold: f64,
    /// Distance between swept thresholds.
    #[arg(long, default_value_t = 0.05, value_name = "STEP", value_parser = parse_swept)]
    pub step: f64,
    /// Also choose a threshold by F-beta (beta < 1 favours precision, > 1 recall).
    #[arg(long, value_name = "BETA", value_parser = parse_beta)]
    pub beta: Option<f64>,
    /// Explain misses and wrong merges at this threshold (default: the best by F1).
    #[arg(long, value_name = "T", value_parser = parse_swept)]
    pub explain_at: Option<f64>,
    /// Bins of the score histogram (1 to 10000).
    #[arg(long, default_value_t = 20, value_name = "N", value_parser = parse_bins)]
    pub bins: usize,
}

/// The similarity flags of the pipeline commands, minus --threshold (swept instead).
#[derive(Debug, Args)]
#[command(next_help_heading = "Similarity")]
pub struct SketchArgs {
    /// Shingles: words:N (word n-grams) or chars:N (character n-grams).
    #[arg(long, default_value = "words:5", value_name = "KIND:N")]
    pub shingle: ShingleSpec,
    /// Slots of the MinHash signature (1 to 65536).
    #[arg(long, default_value_t = 128, value_name = "K", value_parser = crate::args::parse_num_perm)]
    pub num_perm: usize,
    /// Seed of the MinHash hash functions.
    #[arg(long, default_value_t = 42, value_parser = crate::args::parse_seed)]
    pub seed: u64,
    /// LSH bands at every threshold (default: derived from each threshold, as
    /// 'neardup cluster' does).
    #[arg(long, value_name = "B", value_parser = crate::args::parse_bands_or_rows)]
    pub bands: Option<usize>,
    /// Signature slots per LSH band at every threshold.
    #[arg(long, value_name = "R", value_parser = crate::args::parse_bands_or_rows)]
    pub rows: Option<usize>,
    /// LSH buckets larger than this are paired in a sliding window (see 'neardup help
    /// cluster').
    #[arg(long, default_value_t = 1000, value_name = "N", value_parser = crate::args::parse_bucket_cap)]
    pub bucket_cap: usize,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Output")]
pub struct ReportArgs {
    /// Write the report to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// A table for people, or one JSON document for programs.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Charts")]
pub struct PlotArgs {
    /// Directory for the charts (created if needed; files are replaced).
    #[arg(long = "plots", default_value = "neardup-plots", value_name = "DIR")]
    pub dir: PathBuf,
    /// Write no chart.
    #[arg(long, conflicts_with = "dir")]
    pub no_plots: bool,
    /// Image formats of the charts.
    #[arg(long, value_enum, default_value_t = PlotFormatArg::Both)]
    pub plot_format: PlotFormatArg,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ReportFormat {
    /// Aligned tables and a summary.
    Table,
    /// One JSON document (with a schema_version).
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PlotFormatArg {
    /// SVG and PNG.
    Both,
    Svg,
    Png,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum GoldFormatArg {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header row.
    Csv,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum GoldShapeArg {
    /// One record per judged pair.
    Pairs,
    /// One record per document, with its cluster label.
    Clusters,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ScoreArg {
    /// Exact Jaccard similarity of the shingle sets.
    Jaccard,
    /// MinHash estimate of the Jaccard similarity.
    Estimated,
    /// Smaller containment: shared shingles over the larger document's.
    ContainmentMin,
    /// Larger containment: shared shingles over the smaller document's.
    ContainmentMax,
    /// The story model's probability of one story (--level story).
    Story,
}

impl PlotArgs {
    /// Makes sure, before the run, that the charts have a directory to go to (once the
    /// whole report was printed before a plain file there was found).
    pub fn prepare(&self) -> Result<()> {
        if self.no_plots {
            return Ok(());
        }
        match std::fs::metadata(&self.dir) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => anyhow::bail!(
                "--plots {} is not a directory: name a directory for the charts, or give --no-plots",
                self.dir.display()
            ),
            Err(_) => std::fs::create_dir_all(&self.dir)
                .with_context(|| format!("creating the --plots directory {}", self.dir.display())),
        }
    }

    /// Writes each chart as `DIR/NAME.svg` and/or `.png`; returns the paths written.
    pub fn write(&self, charts: &[(&str, Chart)]) -> Result<Vec<PathBuf>> {
        if self.no_plots {
            return Ok(Vec::new());
        }
        let formats: &[ImageFormat] = match self.plot_format {
            PlotFormatArg::Both => &[ImageFormat::Svg, ImageFormat::Png],
            PlotFormatArg::Svg => &[ImageFormat::Svg],
            PlotFormatArg::Png => &[ImageFormat::Png],
        };
        Ok(plot::write_charts(&self.dir, charts, formats)?)
    }
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn run(a: EvalArgs) -> Result<ExitCode> {
    crate::progress::stop::install()?;
    super::check_outputs(
        &[
            ("-o", a.output.output.as_deref(), super::Stdout::Default),
            (
                "--stats-out",
                a.story.stats_out.as_deref(),
                super::Stdout::Refused,
            ),
        ],
        &super::read_files(
            &a.input,
            Some(&a.story),
            &a.run,
            &[("--gold", a.gold.path.as_path())],
        )?,
    )?;
    let mut out = super::Output::open("-o", a.output.output.as_deref())?;
    let mut stats_out = super::open_stats_out(&a.story)?;
    a.plots.prepare()?;
    let fields = GoldFields {
        a: a.gold.a.clone(),
        b: a.gold.b.clone(),
        label: a.gold.label.clone(),
        kind: a.gold.kind.clone(),
        id: a.gold.id.clone(),
        cluster: a.gold.cluster.clone(),
    };
    let gold = gold::read_gold(
        &a.gold.path,
        a.gold.format.map(|f| match f {
            GoldFormatArg::Jsonl => GoldFormat::JsonLines,
            GoldFormatArg::Csv => GoldFormat::Csv,
        }),
        a.gold.shape.map(|s| match s {
            GoldShapeArg::Pairs => GoldShape::Pairs,
            GoldShapeArg::Clusters => GoldShape::Clusters,
        }),
        &fields,
    )?;
    let s = &a.sweep;
    let thresholds =
        sweep::thresholds(s.min_threshold, s.max_threshold, s.step).map_err(super::usage)?;
    let story_level = a.story.level == LevelArg::Story;
    let score = match (s.score, story_level) {
        (None, false) | (Some(ScoreArg::Jaccard), false) => Score::Jaccard,
        (Some(ScoreArg::Estimated), false) => Score::Estimated,
        (Some(ScoreArg::ContainmentMin), false) => Score::ContainmentMin,
        (Some(ScoreArg::ContainmentMax), false) => Score::ContainmentMax,
        (None, true) | (Some(ScoreArg::Story), true) => Score::Story,
        (Some(ScoreArg::Story), false) => {
            return Err(super::usage("--score story needs --level story"));
        }
        (Some(_), true) => {
            return Err(super::usage(
                "at --level story the swept score is the story score (--score story); shingle scores are swept at the near-copy level",
            ));
        }
    };
    if story_level && a.story.story_threshold.is_some() {
        return Err(super::usage(
            "eval sweeps the story threshold: use --min-threshold, --max-threshold and --step instead of --story-threshold",
        ));
    }
    let similarity = SimilarityArgs {
        shingle: a.sketch.shingle,
        num_perm: a.sketch.num_perm,
        seed: a.sketch.seed,
        // The lowest threshold's candidates are the largest set; the sweep reuses them.
        threshold: thresholds[0],
        bands: a.sketch.bands,
        rows: a.sketch.rows,
        bucket_cap: a.sketch.bucket_cap,
    };
    let explicit = a.sketch.bands.is_some() || a.sketch.rows.is_some();
    let quiet = a.run.quiet;
    super::analyse(
        super::Purpose::Eval,
        &a.input,
        &similarity,
        &a.clustering,
        &a.story,
        &a.run,
        |outcome| {
            let banding = if explicit {
                Banding::Fixed(outcome.settings.lsh)
            } else {
                Banding::default()
            };
            let config = SweepConfig {
                score,
                thresholds: thresholds.clone(),
                beta: s.beta,
                banding,
                explain_at: s.explain_at,
                bins: s.bins,
                unknown_ids: if a.run.strict {
                    UnknownIds::Fail
                } else {
                    UnknownIds::Skip
                },
            };
            let evaluation = sweep::evaluate(outcome, &gold, &config, &Silent)?;
            let gold_name = a.gold.path.display().to_string();
            let record = EvalRecord::new(outcome, &evaluation, &gold_name, banding);
            if !quiet && evaluation.gold.skipped > 0 {
                let ids = &evaluation.gold.unknown_ids;
                eprintln!(
                    "neardup: warning: {} left out: {} not in the corpus (e.g. {}); --strict makes this an error",
                    neardup::report::count(evaluation.gold.skipped, "gold record", "gold records"),
                    neardup::report::count(ids.len() as u64, "id is", "ids are"),
                    ids.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
                );
            }
            out.write(|w| match a.output.format {
                ReportFormat::Table => report::write_eval_table(w, &record, a.show),
                ReportFormat::Json => report::write_json(w, &record),
            })?;
            let charts = plot::evaluation_charts(
                &evaluation,
                &file_name(&a.gold.path),
                record.settings.cluster_mode,
            );
            let written = a.plots.write(&charts)?;
            if let Some(stats) = stats_out.as_mut() {
                stats.write_stats(outcome)?;
            }
            super::Output::commit_all([Some(out), stats_out].into_iter().flatten())?;
            if !quiet && !written.is_empty() {
                eprintln!("neardup: charts: {}", list(&written));
            }
            Ok(())
        },
    )
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// `--min-threshold`, `--max-threshold`, `--explain-at` and the `--step` of `eval` and
/// `params`: 0.0001 to 1, since swept thresholds are kept to four decimals.
pub fn parse_swept(s: &str) -> Result<f64, String> {
    crate::args::number_in(s, 1e-4, true, Some(1.0))
}

/// `--show`: any number of examples.
fn parse_show(s: &str) -> Result<usize, String> {
    crate::args::whole_number_in(s, 0..=usize::MAX)
}

/// Widest `--beta` either way: F-beta is then recall (or precision) to four places, and
/// beta prints short.
const MOST_BETA: f64 = 1e6;

/// `--beta`: a number from 1/[`MOST_BETA`] to [`MOST_BETA`].
fn parse_beta(s: &str) -> Result<f64, String> {
    crate::args::number_in(s, 1.0 / MOST_BETA, true, Some(MOST_BETA))
}

/// `--bins`: 1 to 10000.
fn parse_bins(s: &str) -> Result<usize, String> {
    crate::args::whole_number_in(s, 1..=10_000)
}
