//! Checks the pipeline against the exhaustive reference: every pair whose exact Jaccard
//! reaches the threshold, found without sketches or LSH.
//!
//!     cargo run --release --example bruteforce -- ../shared/data/reuters21578.jsonl --threshold 0.5
//!
//! Prints one JSON object: the reference's pairs, the pipeline's, recall, and how many
//! reported pairs fall below the threshold (must be 0). Exits 1 if recall < --min-recall
//! or any reported pair is below the threshold.

use std::collections::HashSet;
use std::process::ExitCode;

use neardup::PipelineBuilder;
use neardup::input::InputSpec;
use neardup::progress::Silent;
use neardup::shingle::ShingleSpec;

fn main() -> ExitCode {
    let mut inputs = Vec::new();
    let mut threshold = 0.5;
    let mut num_perm = 128;
    let mut shingle = ShingleSpec::Words(5);
    let mut min_recall = 0.98;
    let mut seed = 42;
    let (mut bands, mut rows) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().expect("flag needs a value");
        match a.as_str() {
            "--threshold" => threshold = value().parse().expect("threshold"),
            "--num-perm" => num_perm = value().parse().expect("num-perm"),
            "--shingle" => shingle = value().parse().expect("shingle"),
            "--min-recall" => min_recall = value().parse().expect("min-recall"),
            "--seed" => seed = value().parse().expect("seed"),
            "--bands" => bands = Some(value().parse().expect("bands")),
            "--rows" => rows = Some(value().parse().expect("rows")),
            _ => inputs.push(InputSpec::from(a.as_str())),
        }
    }
    if inputs.is_empty() {
        eprintln!(
            "usage: bruteforce INPUT... [--threshold T] [--num-perm K] [--shingle words:5] [--seed S] [--bands B --rows R] [--min-recall R]"
        );
        return ExitCode::from(2);
    }
    let pipeline = PipelineBuilder::new()
        .threshold(threshold)
        .num_perm(num_perm)
        .shingle(shingle)
        .seed(seed)
        .lsh(bands, rows)
        .build()
        .expect("settings");
    let started = std::time::Instant::now();
    let outcome = pipeline.run(&inputs, &Silent).expect("pipeline run");
    let pipeline_secs = started.elapsed().as_secs_f64();
    let started = std::time::Instant::now();
    let reference =
        neardup::verify::exhaustive_pairs(&outcome.corpus, threshold).expect("reference");
    let reference_secs = started.elapsed().as_secs_f64();

    let key = |a: u32, b: u32| (a.min(b), a.max(b));
    let found: HashSet<(u32, u32)> = outcome.pairs.iter().map(|p| key(p.a, p.b)).collect();
    let expected: HashSet<(u32, u32)> = reference.iter().map(|&(a, b, _)| key(a, b)).collect();
    let hit = expected.iter().filter(|p| found.contains(p)).count();
    let recall = if expected.is_empty() {
        1.0
    } else {
        hit as f64 / expected.len() as f64
    };
    let below = outcome
        .pairs
        .iter()
        .filter(|p| f64::from(p.jaccard) < threshold)
        .count();
    let not_in_reference = found.difference(&expected).count();
    let (b, r) = (outcome.settings.lsh.bands, outcome.settings.lsh.rows);
    println!(
        "{}",
        serde_json::json!({
            "documents": outcome.corpus.len(),
            "threshold": threshold, "num_perm": num_perm, "shingle": shingle.to_string(),
            "bands": b, "rows": r,
            "reference_pairs": expected.len(), "reported_pairs": found.len(), "recalled": hit,
            "recall": (recall * 10_000.0).round() / 10_000.0,
            "reported_below_threshold": below, "reported_not_in_reference": not_in_reference,
            "candidate_pairs": outcome.stats.candidate_pairs,
            "pipeline_seconds": pipeline_secs, "reference_seconds": reference_secs,
        })
    );
    if recall < min_recall || below > 0 || not_in_reference > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
