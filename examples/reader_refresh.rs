//! What following the writer costs a reader when nothing changed: a query through a
//! reader ([`Access::Read`], which calls `FeedIndex::refresh` first) against the same
//! query through the writer (which has nothing to follow: the query as it was before
//! readers followed), and `refresh` alone.
//!
//!     cargo run --release --example reader_refresh -- ../shared/data/reuters21578.jsonl [--probes 2000] [--rounds 7]
//!
//! The data path may also come from NEARDUP_DATA (reuters21578.jsonl in it). The index is
//! built in a temporary directory; each figure is the best of `--rounds` rounds.

use std::time::Instant;

use neardup::PipelineBuilder;
use neardup::feed::{Access, Article, FeedIndex, IndexSettings, Level};
use neardup::input::FieldNames;
use neardup::progress::Silent;

fn main() {
    let mut path = std::env::var_os("NEARDUP_DATA")
        .map(|d| std::path::Path::new(&d).join("reuters21578.jsonl"));
    let (mut probes, mut rounds) = (2000usize, 7usize);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().expect("flag needs a value");
        match a.as_str() {
            "--probes" => probes = value().parse().expect("--probes N"),
            "--rounds" => rounds = value().parse().expect("--rounds N"),
            _ => path = Some(a.into()),
        }
    }
    let path = path.expect("a JSON Lines corpus (or NEARDUP_DATA)");
    let lines: Vec<String> = std::fs::read_to_string(&path)
        .expect("reading the corpus")
        .lines()
        .map(str::to_string)
        .collect();

    let tmp = tempfile::tempdir().expect("a temporary directory");
    let dir = tmp.path().join("idx");
    let pipeline = PipelineBuilder::new().build().expect("default settings");
    let settings = IndexSettings::new(pipeline.settings(), Level::Copy, None).expect("settings");
    FeedIndex::create(&dir, &settings).expect("creating the index");
    let mut writer = FeedIndex::open(&dir, Access::Write, &Silent).expect("opening to write");
    let mut fingerprinter = writer.fingerprinter();
    let fields = FieldNames::default();
    let mut articles = Vec::new();
    for line in &lines {
        if let Ok(a) = Article::from_json(line, &fields, &mut fingerprinter, 0) {
            articles.push(a);
        }
    }
    for a in &articles {
        writer.add(a).expect("adding");
    }
    writer.commit().expect("committing");
    // Probes: indexed texts under other ids, so each query is decided, not looked up.
    let step = (articles.len() / probes.max(1)).max(1);
    let probes: Vec<Article> = articles
        .iter()
        .step_by(step)
        .map(|a| Article {
            id: format!("probe-{}", a.id),
            ..a.clone()
        })
        .collect();
    let mut reader = FeedIndex::open(&dir, Access::Read, &Silent).expect("opening to read");
    println!(
        "{} articles indexed, {} probes, best of {rounds} rounds",
        writer.len(),
        probes.len()
    );

    let per_call = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        f();
        start.elapsed().as_secs_f64() * 1e6 / probes.len() as f64
    };
    let (mut without, mut with, mut refresh) = (f64::MAX, f64::MAX, f64::MAX);
    for _ in 0..rounds {
        without = without.min(per_call(&mut || {
            for p in &probes {
                std::hint::black_box(writer.query(p).expect("query"));
            }
        }));
        with = with.min(per_call(&mut || {
            for p in &probes {
                std::hint::black_box(reader.query(p).expect("query"));
            }
        }));
        refresh = refresh.min(per_call(&mut || {
            for _ in &probes {
                assert!(!reader.refresh().expect("refresh"));
            }
        }));
    }
    println!("query, writer (nothing to follow): {without:.2} µs");
    println!("query, reader (refresh first):     {with:.2} µs");
    println!("refresh alone, nothing changed:    {refresh:.2} µs");
}
