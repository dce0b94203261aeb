//! `neardup params`: the LSH banding a threshold gets, and its S-curve.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use neardup::eval::banding::banding_report;
use neardup::eval::plot;
use neardup::eval::report::{self, BandingRecord};
use neardup::index::{DEFAULT_FN_WEIGHT, DEFAULT_FP_WEIGHT};
use neardup::story::STORY_LSH_WEIGHTS;

use crate::args::LevelArg;
use crate::eval::{PlotArgs, ReportFormat};

pub const PARAMS_HELP: &str = "\
How it works:
  A MinHash signature of K slots is cut into b bands of r rows (b x r <= K). Two
  documents become a candidate pair when all r slots of at least one band agree; for a
  pair of Jaccard similarity s that happens with probability

      P(s) = 1 - (1 - s^r)^b

  an S-shaped curve. Pairs below the threshold that become candidates cost verification
  time (false-positive mass FP, the area under the curve left of the threshold); pairs
  above it that never become candidates are lost (false-negative mass FN, the area above
  the curve right of it). neardup chooses the (b, r) minimizing
  fp-weight x FP + fn-weight x FN: by default a miss counts 49 times a wasted candidate,
  because every candidate is verified exactly anyway.

  This command prints that choice (or the curve of --bands/--rows), the masses, and
  P(candidate) over s, and draws the S-curve in --plots (params-s-curve.svg/png).
  Use the printed bands and rows with 'neardup cluster --bands B --rows R'.

  --level story shows the story level's candidates instead: s is then the weighted
  Jaccard of the IDF-weighted words, the threshold is --story-candidates (0.2;
  --threshold there says the same), false candidates weigh 0.1 (at a low threshold they
  are the bulk), and the record adds the level's bucket cap and the signature estimate a
  bucket pair needs to be scored.

Examples:
  neardup params --threshold 0.5 --num-perm 128
  neardup params --threshold 0.8 --bands 16 --rows 8 --no-plots
  neardup params --threshold 0.3 --fp-weight 0.5 --fn-weight 0.5 --format json
  neardup params --level story --story-candidates 0.15 --format json --no-plots";

#[derive(Debug, Args)]
pub struct ParamsArgs {
    /// The threshold the banding is for, in (0, 1] (default: 0.5; at the story level its
    /// candidate threshold, 0.2, as --story-candidates sets it).
    #[arg(short, long, value_name = "T", value_parser = crate::args::parse_threshold)]
    pub threshold: Option<f64>,
    /// With --level story: the candidate threshold, as the other commands name it (the
    /// same as --threshold there).
    #[arg(
        long,
        value_name = "T",
        conflicts_with = "threshold",
        value_parser = crate::args::parse_threshold
    )]
    pub story_candidates: Option<f64>,
    /// near-copy: shingle Jaccard, as 'cluster --threshold' bands it; story: the story
    /// level's candidates (weighted Jaccard).
    #[arg(long, value_enum, default_value_t = LevelArg::NearCopy)]
    pub level: LevelArg,
    /// Slots of the MinHash signature.
    #[arg(long, default_value_t = 128, value_name = "K", value_parser = crate::args::parse_num_perm)]
    pub num_perm: usize,
    /// Use this many bands (rows default to num-perm / bands).
    #[arg(long, value_name = "B", value_parser = crate::args::parse_bands_or_rows)]
    pub bands: Option<usize>,
    /// Use this many rows per band (bands default to num-perm / rows).
    #[arg(long, value_name = "R", value_parser = crate::args::parse_bands_or_rows)]
    pub rows: Option<usize>,
    /// Weight of the false-positive mass when choosing the banding (default: 0.02; 0.1
    /// at the story level).
    #[arg(long, value_name = "W", value_parser = parse_weight)]
    pub fp_weight: Option<f64>,
    /// Weight of the false-negative mass when choosing the banding (default: 0.98; 0.9 at
    /// the story level).
    #[arg(long, value_name = "W", value_parser = parse_weight)]
    pub fn_weight: Option<f64>,
    /// Distance between the similarities of the table.
    #[arg(long, default_value_t = 0.05, value_name = "STEP", value_parser = crate::eval::parse_swept)]
    pub step: f64,
    /// Write to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE", help_heading = "Output")]
    pub output: Option<PathBuf>,
    /// A table for people, or one JSON document for programs.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table, help_heading = "Output")]
    pub format: ReportFormat,
    /// No message on standard error.
    #[arg(short, long, help_heading = "Output")]
    pub quiet: bool,
    #[command(flatten)]
    pub plots: PlotArgs,
}

/// `--fp-weight`, `--fn-weight`: 0 to 1,000,000 (only their ratio matters).
fn parse_weight(s: &str) -> Result<f64, String> {
    crate::args::number_in(s, 0.0, true, Some(1e6))
}

pub fn run(a: ParamsArgs) -> Result<ExitCode> {
    let story = a.level == LevelArg::Story;
    if a.story_candidates.is_some() && !story {
        return Err(crate::usage(anyhow::anyhow!(
            "--story-candidates is the story level's candidate threshold: add --level story, \
             or give the near-copy level's --threshold"
        )));
    }
    let settings = neardup::story::StorySettings::default();
    let (threshold, (fp_weight, fn_weight)) = if story {
        (settings.candidate_threshold, STORY_LSH_WEIGHTS)
    } else {
        (0.5, (DEFAULT_FP_WEIGHT, DEFAULT_FN_WEIGHT))
    };
    let threshold = a.threshold.or(a.story_candidates).unwrap_or(threshold);
    let banding = banding_report(
        threshold,
        a.num_perm,
        a.bands,
        a.rows,
        (
            a.fp_weight.unwrap_or(fp_weight),
            a.fn_weight.unwrap_or(fn_weight),
        ),
        a.step,
    )
    .map_err(crate::usage)?;
    let record = if story {
        BandingRecord::story(
            &banding,
            settings.bucket_cap,
            neardup::story::estimate_floor(threshold),
        )
    } else {
        BandingRecord::new(&banding)
    };
    super::write_atomically(a.output.as_deref(), |w| match a.format {
        ReportFormat::Table => report::write_banding_table(w, &record),
        ReportFormat::Json => report::write_json(w, &record),
    })?;
    let written = a.plots.write(&[(
        "params-s-curve",
        plot::s_curve_chart(&banding, a.level.into()),
    )])?;
    if !a.quiet && !written.is_empty() {
        let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
        eprintln!("neardup: charts: {}", names.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}
