//! The steps of a distributed story run on one machine: `stats count` / `merge` / `show`,
//! `sketch --level story` and `verify` (scripts/spark chains them; tests/spark.rs runs it).

use std::collections::BTreeMap;
use std::path::Path;

use crate::util::*;

fn run_ok(args: &[&str], paths: &[&Path]) -> String {
    let out = neardup().args(args).args(paths).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", stderr_of(&out));
    stdout_of(&out)
}

/// The fields of a `pairs --level story` record, keyed by (a, b).
fn by_pair(lines: &str, drop: &[&str]) -> BTreeMap<(String, String), serde_json::Value> {
    json_lines(lines)
        .into_iter()
        .map(|mut r| {
            let key = (
                r["a"].as_str().unwrap().into(),
                r["b"].as_str().unwrap().into(),
            );
            for field in drop {
                r.as_object_mut().unwrap().remove(*field);
            }
            (key, r)
        })
        .collect()
}

/// The wire-story fixtures as sketch records weighed by their own statistics.
fn fixture_sketches(s: &Scratch) -> (std::path::PathBuf, Vec<String>) {
    let stats = s.path("fixtures.stats");
    let wire = fixtures().join("wire-story");
    run_ok(&["stats", "count", "-q", "-o"], &[&stats, &wire]);
    let sketches = run_ok(
        &["sketch", "-q", "--level", "story", "--stats"],
        &[&stats, &wire],
    );
    (stats, sketches.lines().map(String::from).collect())
}

#[test]
fn verify_judges_sketched_pairs_as_the_batch_judges_them() {
    let s = Scratch::new();
    let (stats, records) = fixture_sketches(&s);
    assert_eq!(records.len(), 5);
    let mut candidates = String::new();
    for (i, x) in records.iter().enumerate() {
        for y in &records[i + 1..] {
            // Either order: verify puts the smaller id first.
            candidates.push_str(&format!("[{y},{x}]\n"));
        }
    }
    let pairs_file = s.write("candidates.jsonl", &candidates);
    let judged = run_ok(
        &[
            "verify",
            "-q",
            "--window",
            "none",
            "--story-threshold",
            "0",
            "--stats",
        ],
        &[&stats, &pairs_file],
    );
    let batch = run_ok(
        &[
            "pairs",
            "-q",
            "--level",
            "story",
            "--window",
            "none",
            "--story-threshold",
            "0",
        ],
        &[&fixtures().join("wire-story")],
    );
    let judged = by_pair(&judged, &["probability", "same_story", "veto"]);
    let batch = by_pair(&batch, &[]);
    assert_eq!(batch.len(), 10, "every fixture pair is a batch candidate");
    assert_eq!(judged, batch);

    // At the model's own cut none is one story (BENCHMARKS.md, issue 4), and verify says so.
    let judged = run_ok(&["verify", "-q", "--stats"], &[&stats, &pairs_file]);
    for r in json_lines(&judged) {
        assert_eq!(r["same_story"], false);
        assert!(r["probability"].as_f64().unwrap() < 0.35);
    }
}

#[test]
fn verify_refuses_lines_that_are_not_pairs_of_story_sketches() {
    let s = Scratch::new();
    let (stats, records) = fixture_sketches(&s);
    let good = format!("[{},{}]", records[0], records[1]);
    let record: serde_json::Value = serde_json::from_str(&records[2]).unwrap();
    let with = |field: &str, value: serde_json::Value| {
        let mut r = record.clone();
        r[field] = value;
        format!("[{},{}]", records[0], r)
    };
    let near_copy = run_ok(&["sketch", "-q"], &[&fixtures().join("wire-story")]);
    let cases = [
        ("{not json", "not a pair of story sketch records"),
        (
            &format!("[{}]", records[0]),
            "not a pair of story sketch records",
        ),
        (
            &format!("[{},{}]", records[0], near_copy.lines().next().unwrap()),
            "missing field",
        ),
        (
            &with("level", "near-copy".into()),
            "sketched at the near-copy level",
        ),
        (
            &with("features", "AAAA".into()),
            "its field \"features\" does not decode",
        ),
        (
            &with("signature", "AAAAAA==".into()),
            "its signature has 1 slots",
        ),
        (
            &with("set", "not base64!".into()),
            "its field \"set\" does not decode",
        ),
        (
            &format!("[{},{}]", records[0], records[0]),
            "paired with itself",
        ),
    ];
    for (bad, expected) in cases {
        let input = s.write("bad.jsonl", format!("{good}\n\n{bad}\n{good}\n"));
        let output = s.path("judged.jsonl");
        let out = neardup()
            .args(["verify", "-q", "--stats"])
            .arg(&stats)
            .arg(&input)
            .arg("-o")
            .arg(&output)
            .output()
            .unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "{bad}: {err}");
        assert!(err.contains("bad.jsonl:3: "), "{bad}: {err}");
        assert!(err.contains(expected), "{bad}: {err}");
        assert!(!output.exists(), "no partial output");
    }

    // Standard input, blank lines skipped.
    let out = neardup()
        .args(["verify", "-q", "--stats"])
        .arg(&stats)
        .write_stdin(format!("{good}\n\n{good}\n"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(stdout_of(&out).lines().count(), 2);
    // Settings that cannot work.
    let out = neardup()
        .args(["verify", "--story-threshold", "1.5", "--stats"])
        .arg(&stats)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("in [0, 1]"), "{}", stderr_of(&out));
}

#[test]
fn statistics_of_parts_merge_into_those_of_the_whole() {
    let s = Scratch::new();
    let texts: Vec<(String, String)> = (0..40)
        .map(|i| {
            (
                format!("d{i}"),
                format!(
                    "Minister Arlo Venn said on Monday the port of Kestrel moved {i} mln \
                         tonnes, word{} word{} and word{}",
                    i % 7,
                    i % 11,
                    i % 3
                ),
            )
        })
        .collect();
    let records = |range: std::ops::Range<usize>| -> Vec<(&str, &str)> {
        texts[range]
            .iter()
            .map(|(i, t)| (i.as_str(), t.as_str()))
            .collect()
    };
    let first = s.jsonl("first.jsonl", &records(0..15));
    let second = s.jsonl("second.jsonl", &records(15..40));
    let (a, b, whole, merged) = (
        s.path("a.stats"),
        s.path("b.stats"),
        s.path("whole.stats"),
        s.path("merged.stats"),
    );
    run_ok(&["stats", "count", "-q", "-o"], &[&a, &first]);
    run_ok(&["stats", "count", "-q", "-o"], &[&b, &second]);
    run_ok(&["stats", "count", "-q", "-o"], &[&whole, &first, &second]);
    run_ok(&["stats", "merge", "-o"], &[&merged, &a, &b]);
    assert_eq!(
        std::fs::read(&merged).unwrap(),
        std::fs::read(&whole).unwrap()
    );
    // The same statistics as a story run writes.
    let (written, clusters) = (s.path("written.stats"), s.path("clusters.jsonl"));
    run_ok(
        &["cluster", "-q", "--level", "story", "-o"],
        &[
            &clusters,
            Path::new("--stats-out"),
            &written,
            &first,
            &second,
        ],
    );
    assert_eq!(
        std::fs::read(&written).unwrap(),
        std::fs::read(&whole).unwrap()
    );
    let shown: serde_json::Value =
        serde_json::from_str(&run_ok(&["stats", "show"], &[&merged])).unwrap();
    assert_eq!(shown["documents"], 40);
    assert_eq!(shown["too_few_documents"], true);
    assert!(shown["distinct_words_and_names"].as_u64().unwrap() > 10);

    // A damaged part is refused by name, and nothing is written.
    let mut bytes = std::fs::read(&b).unwrap();
    bytes.truncate(bytes.len() - 3);
    let damaged = s.write("damaged.stats", bytes);
    let out_path = s.path("out.stats");
    let out = neardup()
        .args(["stats", "merge", "-o"])
        .arg(&out_path)
        .arg(&a)
        .arg(&damaged)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(
        err.contains("damaged.stats") && err.contains("truncated"),
        "{err}"
    );
    assert!(!out_path.exists());

    // Bad records are reported and counted; the good ones still are counted (exit 2).
    let bad = s.write(
        "bad.jsonl",
        "{\"id\":\"x\",\"text\":\"Arlo Venn spoke\"}\n{not json\n",
    );
    let out = neardup()
        .args(["stats", "count", "-o"])
        .arg(s.path("bad.stats"))
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("bad.jsonl:2"),
        "{}",
        stderr_of(&out)
    );
    assert!(
        stderr_of(&out).contains("in 1 documents"),
        "{}",
        stderr_of(&out)
    );

    // --stats weighs words: the near-copy sketch refuses it.
    let out = neardup()
        .args(["sketch", "--stats"])
        .arg(&whole)
        .arg(&first)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("needs --level story"));
}

#[test]
fn story_sketches_are_the_same_with_any_thread_count() {
    let s = Scratch::new();
    let records: Vec<(String, String)> = (0..3000)
        .map(|i| {
            (
                format!("n{i}"),
                format!(
                    "Officials in Port Ulva said {} tonnes of grain left on day {} as talks \
                     with Meridia over tariff {} went on, word{} word{}",
                    i % 97,
                    i % 13,
                    i % 31,
                    i % 211,
                    i % 17
                ),
            )
        })
        .collect();
    let borrowed: Vec<(&str, &str)> = records
        .iter()
        .map(|(i, t)| (i.as_str(), t.as_str()))
        .collect();
    let input = s.jsonl("news.jsonl", &borrowed);
    let sketch = |threads: &str| {
        run_ok(
            &["sketch", "-q", "--level", "story", "--threads", threads],
            &[&input],
        )
    };
    let one = sketch("1");
    assert_eq!(one.lines().count(), 3000);
    assert_eq!(one, sketch("2"));
    assert_eq!(one, sketch("3"));
}
