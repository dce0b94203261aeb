//! Recall against the exhaustive reference on real news (needs NEARDUP_DATA).

use std::collections::HashSet;

use neardup::PipelineBuilder;
use neardup::input::InputSpec;
use neardup::progress::Silent;

use crate::util::data_dir;

#[test]
fn reuters_recall_against_exhaustive_search() {
    let Some(data) = data_dir() else { return };
    let threshold = 0.5;
    let pipeline = PipelineBuilder::new().threshold(threshold).build().unwrap();
    let outcome = pipeline
        .run(&[InputSpec::Path(data.join("reuters21578.jsonl"))], &Silent)
        .unwrap();
    let reference = neardup::verify::exhaustive_pairs(&outcome.corpus, threshold).unwrap();
    let found: HashSet<(u32, u32)> = outcome
        .pairs
        .iter()
        .map(|p| (p.a.min(p.b), p.a.max(p.b)))
        .collect();
    let expected: HashSet<(u32, u32)> = reference.iter().map(|&(a, b, _)| (a, b)).collect();
    assert!(
        expected.len() > 500,
        "the reference finds the corpus's duplicates"
    );
    let recall = expected.intersection(&found).count() as f64 / expected.len() as f64;
    assert!(recall >= 0.98, "recall {recall}");
    assert!(
        found.is_subset(&expected),
        "every reported pair is at or above the threshold"
    );
}

#[test]
fn exhaustive_reference_matches_all_pairs_brute_force() {
    // The reference itself, checked against the plainest possible all-pairs loop.
    let s = crate::util::Scratch::new();
    let texts = crate::util::good_records();
    let mut records = Vec::new();
    for (i, (_, t)) in texts.iter().cycle().take(40).enumerate() {
        let words: Vec<&str> = t.split(' ').collect();
        let cut = i % words.len();
        records.push((
            format!("d{i}"),
            format!("{} {}", words[cut..].join(" "), words[..cut].join(" ")),
        ));
    }
    let borrowed: Vec<(&str, &str)> = records
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let f = s.jsonl("in.jsonl", &borrowed);
    let outcome = PipelineBuilder::new()
        .threshold(0.3)
        .build()
        .unwrap()
        .run(&[InputSpec::Path(f)], &Silent)
        .unwrap();
    let corpus = &outcome.corpus;
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let mut brute = Vec::new();
    for a in 0..corpus.len() as u32 {
        for b in a + 1..corpus.len() as u32 {
            let sa: HashSet<u64> = corpus.set(a, &mut x).unwrap().iter().copied().collect();
            let sb: HashSet<u64> = corpus.set(b, &mut y).unwrap().iter().copied().collect();
            let j = sa.intersection(&sb).count() as f64 / sa.union(&sb).count() as f64;
            if j >= 0.3 {
                brute.push((a, b));
            }
        }
    }
    let reference: Vec<(u32, u32)> = neardup::verify::exhaustive_pairs(corpus, 0.3)
        .unwrap()
        .into_iter()
        .map(|(a, b, _)| (a, b))
        .collect();
    assert!(!brute.is_empty());
    assert_eq!(reference, brute);
}
