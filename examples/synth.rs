//! Generates a synthetic news corpus of any size from real articles, with a known
//! duplicate structure, for scale and latency benchmarks.
//!
//!     cargo run --release --example synth -- --count 1000000 --seed 1 \
//!         -o /tmp/synth-1m.jsonl ../shared/data/reuters21578.jsonl \
//!         ../shared/data/bbc-news.jsonl ../shared/data/20newsgroups.jsonl.gz
//!
//! The real articles are cut into sentences. An *original* is a mosaic of 5–25 sentences
//! drawn at random from the whole pool, so originals are unrelated to one another. A
//! *copy* (`--copy-rate`, default 0.3) takes an earlier original and edits it: every word
//! is, with probability `e` drawn uniformly from [0, `--max-edit`] (default 0.10), deleted,
//! replaced by a random word or followed by one; sometimes a sentence is dropped or one
//! appended. Each record carries `dup_of`: the id of the original it was copied from
//! (null for originals), so the true clusters are known. Output: JSON Lines with `id`,
//! `date`, `title`, `text`, `dup_of`; `.zst` and `.gz` output names are compressed.
//! Dates fall at random over a year, copies' too; `--copy-within H` dates each copy within
//! H hours after its original instead, as news copies follow their source (the story
//! level's default window then finds them).
//! The same seed and inputs give the same corpus.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use neardup::input::{self, FieldNames, InputFormat, InputSpec, ReadEvent, ReadLimits};

/// splitmix64: small, fast and reproducible everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64 * n as f64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Options {
    count: usize,
    seed: u64,
    copy_rate: f64,
    max_edit: f64,
    /// Date each copy this many hours at most after its original.
    copy_within_hours: Option<u32>,
    output: Option<PathBuf>,
    inputs: Vec<InputSpec>,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        count: 100_000,
        seed: 1,
        copy_rate: 0.3,
        max_edit: 0.10,
        copy_within_hours: None,
        output: None,
        inputs: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--count" => o.count = value()?.parse().map_err(|e| format!("--count: {e}"))?,
            "--seed" => o.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--copy-rate" => {
                o.copy_rate = value()?.parse().map_err(|e| format!("--copy-rate: {e}"))?
            }
            "--max-edit" => {
                o.max_edit = value()?.parse().map_err(|e| format!("--max-edit: {e}"))?
            }
            "--copy-within" => {
                let hours = value()?
                    .parse()
                    .map_err(|e| format!("--copy-within: {e}"))?;
                o.copy_within_hours = Some(hours);
            }
            "-o" | "--output" => o.output = Some(PathBuf::from(value()?)),
            _ if a.starts_with('-') && a != "-" => return Err(format!("unknown flag {a}")),
            _ => o.inputs.push(InputSpec::from(a.as_str())),
        }
    }
    if o.inputs.is_empty() {
        return Err(
            "usage: synth [--count N] [--seed S] [--copy-rate R] [--max-edit E] [--copy-within HOURS] [-o FILE] INPUT..."
                .into(),
        );
    }
    Ok(o)
}

/// Sentences (at least five words) of every article in the inputs.
fn sentence_pool(inputs: &[InputSpec]) -> Vec<String> {
    let input::Plan {
        sources, problems, ..
    } = input::plan_sources(inputs, Some(InputFormat::JsonLines)).expect("planning the inputs");
    for p in problems {
        eprintln!("synth: {p}");
    }
    let fields = FieldNames::default();
    let mut pool = Vec::new();
    input::read_sources(&sources, ReadLimits::default(), &mut |_| {}, &mut |event| {
        if let ReadEvent::Batch(batch) = event {
            for r in &batch.records {
                let Ok(line) = std::str::from_utf8(batch.bytes(r)) else {
                    continue;
                };
                let Ok(record) = input::parse_json_record(line, &fields) else {
                    continue;
                };
                let flat = record.text.split_whitespace().collect::<Vec<_>>().join(" ");
                for sentence in flat.split_inclusive(['.', '!', '?']) {
                    let s = sentence.trim();
                    if s.split(' ').count() >= 5 {
                        pool.push(s.to_string());
                    }
                }
            }
        }
        true
    });
    pool
}

fn edit(text: &str, rate: f64, rng: &mut Rng, vocabulary: &[&str]) -> String {
    let mut out: Vec<&str> = Vec::new();
    for w in text.split(' ') {
        if rng.unit() >= rate {
            out.push(w);
            continue;
        }
        match rng.below(3) {
            0 => {}
            1 => out.push(vocabulary[rng.below(vocabulary.len())]),
            _ => {
                out.push(w);
                out.push(vocabulary[rng.below(vocabulary.len())]);
            }
        }
    }
    out.join(" ")
}

fn main() -> io::Result<()> {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("synth: {e}");
            std::process::exit(2);
        }
    };
    let pool = sentence_pool(&o.inputs);
    if pool.is_empty() {
        eprintln!("synth: no sentences in the inputs");
        std::process::exit(1);
    }
    let vocabulary: Vec<&str> = pool
        .iter()
        .step_by(7)
        .flat_map(|s| s.split(' '))
        .take(200_000)
        .collect();
    eprintln!(
        "synth: {} sentences, {} words of vocabulary",
        pool.len(),
        vocabulary.len()
    );

    let sink: Box<dyn Write> = match &o.output {
        None => Box::new(io::stdout().lock()),
        Some(p) => {
            let f = File::create(p)?;
            let name = p.to_string_lossy();
            if name.ends_with(".zst") {
                Box::new(zstd::Encoder::new(f, 3)?.auto_finish())
            } else if name.ends_with(".gz") {
                Box::new(flate2::write::GzEncoder::new(
                    f,
                    flate2::Compression::fast(),
                ))
            } else {
                Box::new(f)
            }
        }
    };
    let mut out = BufWriter::with_capacity(1 << 20, sink);
    let mut rng = Rng(o.seed);
    // An original is kept as its sentence numbers: 1M articles stay small in memory.
    let mut originals: Vec<(usize, Vec<u32>)> = Vec::new();
    let mosaic = |sentences: &[u32]| {
        sentences
            .iter()
            .map(|&s| pool[s as usize].as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let base_day = 1_700_000_000i64 / 86_400;
    // Every record's time, for its copies' with --copy-within.
    let mut times: Vec<i64> = Vec::with_capacity(o.count);
    for i in 0..o.count {
        let is_copy = !originals.is_empty() && rng.unit() < o.copy_rate;
        let (text, dup_of) = if is_copy {
            let (source, sentences) = &originals[rng.below(originals.len())];
            let mut sentences = sentences.clone();
            if sentences.len() > 5 && rng.below(4) == 0 {
                sentences.remove(rng.below(sentences.len()));
            }
            let mut text = edit(
                &mosaic(&sentences),
                rng.unit() * o.max_edit,
                &mut rng,
                &vocabulary,
            );
            if rng.below(4) == 0 {
                text.push(' ');
                text.push_str(&pool[rng.below(pool.len())]);
            }
            (text, Some(*source))
        } else {
            let count = 5 + rng.below(21);
            let sentences: Vec<u32> = (0..count).map(|_| rng.below(pool.len()) as u32).collect();
            let text = mosaic(&sentences);
            originals.push((i, sentences));
            (text, None)
        };
        let day = base_day + rng.below(365) as i64;
        let mut time = day * 86_400 + rng.below(86_400) as i64;
        if let (Some(hours), Some(source)) = (o.copy_within_hours, dup_of) {
            time = times[source] + rng.below(hours as usize * 3600 + 1) as i64;
        }
        times.push(time);
        let date = chrono::DateTime::from_timestamp(time, 0)
            .map(|d| d.to_rfc3339())
            .unwrap_or_default();
        let title: String = text.split(' ').take(8).collect::<Vec<_>>().join(" ");
        let record = serde_json::json!({
            "id": format!("synth-{i:07}"),
            "date": date,
            "title": title,
            "text": text,
            "dup_of": dup_of.map(|d| format!("synth-{d:07}")),
        });
        serde_json::to_writer(&mut out, &record)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    eprintln!(
        "synth: wrote {} records ({} originals)",
        o.count,
        originals.len()
    );
    Ok(())
}
