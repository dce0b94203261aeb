//! Throughput of each pipeline stage, in bytes of text per second where it applies.
//!
//!     cargo bench --bench stages
//!     NEARDUP_DATA=../shared/data cargo bench --bench stages   # real news text
//!
//! Each bench first checks its answer on the input (token counts, set sizes, a known
//! similarity), so broken code is never timed.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use neardup::input::{FieldNames, InputSpec, parse_json_record};
use neardup::pipeline::{Fingerprinter, PipelineBuilder};
use neardup::progress::Silent;
use neardup::shingle::{ShingleSpec, Shingler, into_set, word_shingles};
use neardup::sketch::{Sketcher, estimate_jaccard};
use neardup::text::{Token, Tokenizer};

/// Texts to measure on: the first ~8 MB of Reuters when NEARDUP_DATA is set, else the
/// shipped fixtures repeated.
fn sample_texts() -> (String, Vec<String>) {
    if let Some(dir) = std::env::var_os("NEARDUP_DATA") {
        let path = Path::new(&dir).join("reuters21578.jsonl");
        if let Ok(data) = std::fs::read_to_string(&path) {
            let fields = FieldNames::default();
            let mut texts = Vec::new();
            let mut bytes = 0;
            for line in data.lines() {
                if let Ok(r) = parse_json_record(line, &fields) {
                    bytes += r.text.len();
                    texts.push(r.text.into_owned());
                }
                if bytes > 8 << 20 {
                    break;
                }
            }
            return ("reuters".into(), texts);
        }
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/wire-story");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let fixtures: Vec<String> = files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let texts = fixtures
        .iter()
        .cycle()
        .take(fixtures.len() * 400)
        .cloned()
        .collect();
    ("fixtures".into(), texts)
}

fn stages(c: &mut Criterion) {
    let (name, texts) = sample_texts();
    let bytes: u64 = texts.iter().map(|t| t.len() as u64).sum();
    eprintln!(
        "bench input: {name}, {} texts, {:.1} MB, SIMD: {}",
        texts.len(),
        bytes as f64 / 1e6,
        neardup::text::simd_level()
    );

    // Known answers first.
    let mut tokenizer = Tokenizer::new();
    let mut tokens: Vec<Token> = Vec::new();
    tokenizer.tokenize(
        "The U.S. envoy’s 1,000-word “Article 5-like” offer",
        &mut tokens,
    );
    assert_eq!(tokens.len(), 10, "tokenizer answer"); // the u s envoys 1000 word article 5 like offer

    let mut group = c.benchmark_group(format!("stages/{name}"));
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes));

    group.bench_function("tokenize", |b| {
        b.iter(|| {
            let mut n = 0;
            for t in &texts {
                tokens.clear();
                tokenizer.tokenize(t, &mut tokens);
                n += tokens.len();
            }
            black_box(n)
        })
    });

    let token_hashes: Vec<Vec<u64>> = texts
        .iter()
        .map(|t| {
            tokens.clear();
            tokenizer.tokenize(t, &mut tokens);
            tokens.iter().map(|t| t.hash).collect()
        })
        .collect();
    group.bench_function("shingle words:5", |b| {
        let mut out = Vec::new();
        b.iter(|| {
            let mut n = 0;
            for h in &token_hashes {
                out.clear();
                word_shingles(h, 5, &mut out);
                n += out.len();
            }
            black_box(n)
        })
    });

    let mut shingler = Shingler::new(ShingleSpec::Words(5));
    let shingles: Vec<Vec<u64>> = texts
        .iter()
        .map(|t| {
            let mut s = Vec::new();
            shingler.shingle(t, &mut s);
            s
        })
        .collect();
    let sketcher = Sketcher::new(128, 42);
    {
        let (mut x, mut y) = (vec![0; 128], vec![0; 128]);
        let mut scratch = Vec::new();
        sketcher.sketch(&shingles[0], &mut scratch, &mut x);
        sketcher.sketch(&shingles[0], &mut scratch, &mut y);
        assert_eq!(estimate_jaccard(&x, &y), 1.0, "sketch answer");
    }
    group.bench_function("sketch (FSS, 128 slots)", |b| {
        let mut scratch = Vec::new();
        let mut sig = vec![0u32; 128];
        b.iter(|| {
            for s in &shingles {
                sketcher.sketch(s, &mut scratch, &mut sig);
            }
            black_box(sig[0])
        })
    });
    group.bench_function("sort+dedup shingle sets", |b| {
        b.iter(|| {
            let mut n = 0;
            for s in &shingles {
                let mut set = s.clone();
                into_set(&mut set);
                n += set.len();
            }
            black_box(n)
        })
    });
    let settings = PipelineBuilder::new().build().unwrap().settings().clone();
    group.bench_function("fingerprint (tokenize+shingle+sketch+set)", |b| {
        let mut f = Fingerprinter::new(&settings);
        b.iter(|| {
            let mut n = 0;
            for t in &texts {
                n += f.fingerprint(t).map_or(0, |fp| fp.set.len());
            }
            black_box(n)
        })
    });
    group.finish();

    let sets: Vec<Vec<u64>> = shingles
        .iter()
        .map(|s| {
            let mut s = s.clone();
            into_set(&mut s);
            s
        })
        .collect();
    assert_eq!(
        neardup::verify::intersection_size(&sets[0], &sets[0]),
        sets[0].len(),
        "intersection answer"
    );
    // The estimate the story level asks of every pair of LSH bucket mates.
    let signatures: Vec<Vec<u32>> = shingles
        .iter()
        .map(|s| {
            let mut sig = vec![0u32; 128];
            sketcher.sketch(s, &mut Vec::new(), &mut sig);
            sig
        })
        .collect();
    let mut group = c.benchmark_group("estimate");
    group.throughput(Throughput::Elements(signatures.len() as u64 - 1));
    group.bench_function(
        "estimate_jaccard of consecutive signatures (128 slots)",
        |b| {
            b.iter(|| {
                let mut sum = 0.0;
                for w in signatures.windows(2) {
                    sum += estimate_jaccard(black_box(&w[0]), black_box(&w[1]));
                }
                black_box(sum)
            })
        },
    );
    group.finish();

    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Elements(sets.len() as u64 - 1));
    group.bench_function("intersection of consecutive sets", |b| {
        b.iter(|| {
            let mut n = 0;
            for w in sets.windows(2) {
                n += neardup::verify::intersection_size(&w[0], &w[1]);
            }
            black_box(n)
        })
    });
    group.finish();

    // The whole pipeline on a JSON Lines file of the sample texts.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sample.jsonl");
    let mut jsonl = String::new();
    for (i, t) in texts.iter().enumerate() {
        jsonl.push_str(&serde_json::json!({"id": i, "text": t}).to_string());
        jsonl.push('\n');
    }
    std::fs::write(&path, jsonl).unwrap();
    let pipeline = PipelineBuilder::new().build().unwrap();
    let inputs = [InputSpec::Path(path)];
    let docs = pipeline.run(&inputs, &Silent).unwrap().corpus.len();
    assert_eq!(docs, texts.len(), "pipeline answer");
    let mut group = c.benchmark_group(format!("pipeline/{name}"));
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("read to clusters", |b| {
        b.iter(|| black_box(pipeline.run(&inputs, &Silent).unwrap().clusters.len()))
    });
    group.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
