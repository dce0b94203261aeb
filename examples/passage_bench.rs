//! The passage benchmark with known truth: real articles with passages of other real
//! articles planted into them (8–200 words, 0–10% word edits, random positions, shuffled
//! order), scored with the PAN text-alignment measures (see `neardup::align::eval`).
//!
//!     cargo run --release --example passage_bench -- ../shared/data/bbc-news.jsonl [--cases 500] [--seed 1]
//!
//! The data path may also come from NEARDUP_DATA (bbc-news.jsonl in it). Prints one line
//! per edit level and a JSON object per level on the last lines.

use std::io::BufRead;
use std::time::Instant;

use neardup::align::PassageSettings;
use neardup::align::eval::{PlantSettings, benchmark};

fn main() {
    let mut path =
        std::env::var_os("NEARDUP_DATA").map(|d| std::path::Path::new(&d).join("bbc-news.jsonl"));
    let (mut cases, mut seed, mut min_words, mut gap) = (500usize, 1u64, 8usize, 4usize);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().expect("flag needs a value");
        match a.as_str() {
            "--cases" => cases = value().parse().expect("--cases N"),
            "--seed" => seed = value().parse().expect("--seed N"),
            "--min-words" => min_words = value().parse().expect("--min-words N"),
            "--gap" => gap = value().parse().expect("--gap N"),
            _ => path = Some(a.into()),
        }
    }
    let path = path.expect("give a JSON Lines file of articles (or set NEARDUP_DATA)");
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let texts: Vec<String> = std::io::BufReader::new(file)
        .lines()
        .map(|l| l.expect("readable line"))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_string))
        .collect();
    let articles: Vec<&str> = texts.iter().map(String::as_str).collect();
    let settings = PassageSettings {
        min_words,
        max_gap: gap,
        ..PassageSettings::default()
    };
    println!(
        "{} articles from {}, {cases} cases per level, seed {seed}",
        articles.len(),
        path.display()
    );
    println!(
        "{:<22} {:>6} {:>6} {:>9} {:>7} {:>7} {:>7} {:>8} {:>8} {:>8} {:>8}",
        "edits",
        "cases",
        "found",
        "plagdet",
        "prec",
        "rec",
        "gran",
        "µplagdet",
        "psg prec",
        "psg rec",
        "secs"
    );
    let mut json = Vec::new();
    for (name, rate) in [
        ("verbatim (0%)", (0.0, 0.0)),
        ("light (0-5%)", (0.0, 0.05)),
        ("heavier (5-10%)", (0.05, 0.10)),
        ("all (0-10%)", (0.0, 0.10)),
    ] {
        let plant = PlantSettings {
            edit_rate: rate,
            ..PlantSettings::default()
        };
        let started = Instant::now();
        let s = benchmark(&articles, cases, &plant, &settings, seed);
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{:<22} {:>6} {:>6} {:>9.4} {:>7.4} {:>7.4} {:>7.4} {:>8.4} {:>8.4} {:>8.4} {:>7.2}s",
            name,
            s.cases,
            s.detections,
            s.plagdet,
            s.precision,
            s.recall,
            s.granularity,
            s.micro_plagdet,
            s.passage_precision,
            s.passage_recall,
            secs
        );
        json.push(serde_json::json!({
            "edits": name, "cases": s.cases, "detections": s.detections, "plagdet": s.plagdet,
            "precision": s.precision, "recall": s.recall, "granularity": s.granularity,
            "micro_plagdet": s.micro_plagdet, "passage_precision": s.passage_precision,
            "passage_recall": s.passage_recall,
        }));
    }
    for j in json {
        println!("{j}");
    }
}
