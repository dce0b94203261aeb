//! Passage alignment speed, on the wire-story fixtures and on planted text.
//!
//!     cargo bench --bench passages
//!
//! Each bench checks its answer first, so broken code is never timed.

use criterion::{Criterion, criterion_group, criterion_main};
use neardup::align::eval::{PlantSettings, Rng, plant};
use neardup::align::{Aligner, PassageSettings, passages_between};

fn fixture(prefix: &str) -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/wire-story");
    let path = std::fs::read_dir(&dir)
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .expect("fixture file");
    std::fs::read_to_string(path).expect("fixture text")
}

/// Text written for the bench: sentences drawn from a small vocabulary.
fn written(rng: &mut Rng, words: usize) -> String {
    const WORDS: &[&str] = &[
        "council",
        "river",
        "budget",
        "school",
        "market",
        "harbour",
        "museum",
        "railway",
        "bridge",
        "mayor",
        "storm",
        "library",
        "hospital",
        "election",
        "company",
        "announced",
        "approved",
        "rejected",
        "opened",
        "delayed",
        "expanded",
        "reported",
        "planned",
        "warned",
        "new",
        "local",
        "regional",
        "annual",
        "public",
        "on",
        "in",
        "after",
        "before",
        "with",
        "near",
        "the",
        "its",
        "Monday",
        "Friday",
        "spring",
        "winter",
        "north",
        "south",
        "plan",
        "vote",
        "report",
        "contract",
    ];
    let mut out = String::new();
    for i in 0..words {
        out.push_str(if i > 0 && i % 14 == 0 {
            ". "
        } else if i > 0 {
            " "
        } else {
            ""
        });
        out.push_str(WORDS[rng.below(WORDS.len())]);
    }
    out
}

fn benches(c: &mut Criterion) {
    let settings = PassageSettings::default();
    let (a, b) = (fixture("003"), fixture("004"));
    assert_eq!(passages_between(&a, &b, &settings).len(), 7);
    c.bench_function("passages/wire-story 003-004", |bench| {
        bench.iter(|| passages_between(&a, &b, &settings))
    });

    let mut rng = Rng::new(5);
    let (host, source) = (written(&mut rng, 1500), written(&mut rng, 1500));
    let vocabulary = ["alpha", "beta", "gamma"];
    let plant_settings = PlantSettings {
        passages: (4, 4),
        edit_rate: (0.0, 0.05),
        ..PlantSettings::default()
    };
    let case = plant(&host, &source, &vocabulary, &plant_settings, &mut rng).expect("a case");
    let found = passages_between(&case.suspicious, &case.source, &settings);
    assert!(
        found.len() >= case.truth.len(),
        "{} planted, {} found",
        case.truth.len(),
        found.len()
    );
    c.bench_function("passages/1500 words, 4 planted", |bench| {
        bench.iter(|| passages_between(&case.suspicious, &case.source, &settings))
    });

    // The aligner alone on token hashes: a long near-copy with scattered edits.
    let tokens: Vec<u64> = (0..20_000).map(|_| rng.next_u64() % 50_000).collect();
    let mut copy = tokens.clone();
    for i in (0..copy.len()).step_by(97) {
        copy[i] = 1_000_000 + i as u64;
    }
    let mut aligner = Aligner::new(settings);
    assert_eq!(
        aligner.align(&tokens, &copy).len(),
        1,
        "one passage across the edits"
    );
    c.bench_function("aligner/20000 tokens, 1% edits", |bench| {
        bench.iter(|| aligner.align(&tokens, &copy))
    });
}

criterion_group!(group, benches);
criterion_main!(group);
