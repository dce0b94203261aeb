//! The steps of a distributed story run on one machine: `stats count` / `merge` / `show`,
//! `sketch --level story` and `verify` (scripts/spark chains them; tests/spark.rs runs it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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

/// `sketch` wrote `"date":null` for a date it could not read without the note the batch
/// commands give (QA pass 13).
#[test]
fn sketch_notes_dates_it_cannot_read_at_both_levels() {
    let s = Scratch::new();
    let input = s.write(
        "in.jsonl",
        format!(
            "{}\n{}\n",
            serde_json::json!({"id": "a", "text": "one two three four five six seven", "date": "8/18/25"}),
            serde_json::json!({"id": "b", "text": "eight nine ten eleven twelve thirteen", "date": "2025-08-18"})
        ),
    );
    for level in ["near-copy", "story"] {
        let out = neardup()
            .args(["sketch", "--level", level])
            .arg(&input)
            .output()
            .unwrap();
        let err = stderr_of(&out);
        assert!(out.status.success(), "{err}");
        assert!(
            err.contains("1 date could not be parsed (e.g. \"8/18/25\")"),
            "{level}: {err}"
        );
    }
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
            "--level",
            "story",
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
    let judged = run_ok(
        &["verify", "--level", "story", "-q", "--stats"],
        &[&stats, &pairs_file],
    );
    let gzipped = s.write("candidates.jsonl.gz", gzip(candidates.as_bytes()));
    assert_eq!(
        run_ok(
            &["verify", "--level", "story", "-q", "--stats"],
            &[&stats, &gzipped]
        ),
        judged
    );
    for r in json_lines(&judged) {
        assert_eq!(r["same_story"], false);
        assert!(r["probability"].as_f64().unwrap() < 0.35);
    }
    assert_float_text_is_shortest(&judged, "probability");
}

/// The unrounded fields of `verify` (`exact_jaccard`, `probability`) are 32-bit floats
/// written as the shortest decimal that reads back as them: at most 9 significant digits,
/// and a 32-bit float. They were written widened to 64 bits, with noise
/// (`0.30000001192092896`).
fn assert_float_text_is_shortest(lines: &str, field: &str) {
    let key = format!("\"{field}\":");
    let mut seen = 0;
    for line in lines.lines() {
        let text = line.split(&key).nth(1).unwrap();
        let text = &text[..text.find([',', '}']).unwrap()];
        let mantissa = text.split(['e', 'E']).next().unwrap();
        let digits = mantissa
            .trim_start_matches(['-', '0', '.'])
            .chars()
            .filter(char::is_ascii_digit)
            .count();
        assert!(digits <= 9, "{field} {text} in {line}");
        let value: f32 = text.parse().unwrap();
        assert_eq!(value.to_string().parse::<f32>().unwrap(), value);
        seen += 1;
    }
    assert!(seen > 0, "no {field} in {lines}");
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
        let mut verify = neardup();
        verify
            .args(["verify", "--level", "story", "-q", "--stats"])
            .arg(&stats)
            .arg(&input);
        let err = refused(verify, &s.path("judged.jsonl"));
        assert!(err.contains("bad.jsonl:3: "), "{bad}: {err}");
        assert!(err.contains(expected), "{bad}: {err}");
    }

    // Standard input, blank lines skipped.
    let out = neardup()
        .args(["verify", "--level", "story", "-q", "--stats"])
        .arg(&stats)
        .write_stdin(format!("{good}\n\n{good}\n"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(stdout_of(&out).lines().count(), 2);
    // Settings that cannot work.
    let out = neardup()
        .args([
            "verify",
            "--level",
            "story",
            "--story-threshold",
            "1.5",
            "--stats",
        ])
        .arg(&stats)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(
        stderr_of(&out).contains("'--story-threshold <P>': must be a number from 0 to 1"),
        "{}",
        stderr_of(&out)
    );
}

/// Records sketched with other settings would be scored wrongly without an error (other
/// shingles, hash functions or weights), so verify refuses them, naming the setting.
#[test]
fn verify_refuses_sketches_made_with_other_settings() {
    let s = Scratch::new();
    let wire = fixtures().join("wire-story");
    let sketch = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["sketch", "-q", "-t", "0.05"];
        args.extend(extra);
        let out = run_ok(&args, &[&wire]);
        out.lines().map(String::from).collect()
    };
    let plain = sketch(&[]);
    let refused_line = |line: String, flags: &[&str], expected: &str| {
        let input = s.write(
            "mixed.jsonl",
            format!("[{},{}]\n{line}\n", plain[0], plain[1]),
        );
        let mut verify = neardup();
        verify.args(["verify", "-q"]).args(flags).arg(&input);
        let err = refused(verify, &s.path("verified.jsonl"));
        assert!(err.contains(expected), "{expected}: {err}");
    };
    for (extra, expected) in [
        (["--seed", "7"], "seed 7, the record at "),
        (["--shingle", "words:3"], "shingle words:3, the record at "),
        // Banded otherwise, its buckets never meet the others': pairs would be lost.
        (["--bands", "20"], "bands 20, the record at "),
    ] {
        let other = sketch(&extra);
        let expected = format!(
            "mixed.jsonl:2: document {:?} was sketched with {expected}",
            {
                let r: serde_json::Value = serde_json::from_str(&other[4]).unwrap();
                r["id"].as_str().unwrap().to_string()
            }
        );
        refused_line(
            format!("[{},{}]", plain[3], other[4]),
            &["-t", "0.01"],
            &expected,
        );
        refused_line(
            format!("[{},{}]", plain[3], other[4]),
            &["-t", "0.01"],
            "mixed.jsonl:1",
        );
    }
    refused_line(
        format!("[{},{}]", plain[3], plain[4]),
        &["--num-perm", "64"],
        "num_perm 128, this verify has num_perm 64 (--num-perm)",
    );
    let mut old: serde_json::Value = serde_json::from_str(&plain[4]).unwrap();
    old.as_object_mut().unwrap().remove("settings");
    refused_line(
        format!("[{},{old}]", plain[3]),
        &[],
        "has no \"settings\" field (sketched by an older neardup)",
    );
    // A compressed input cut short is named by file and line, as every other fault of
    // these inputs (QA pass 13: "reading X.gz: incomplete deflate stream").
    let pairs: String = (0..40)
        .map(|i| format!("[{},{}]\n", plain[i % 4], plain[(i + 1) % 4]))
        .collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, pairs.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let cut = s.path("cut.jsonl.gz");
    std::fs::write(&cut, &gz[..gz.len() * 2 / 3]).unwrap();
    let mut verify = neardup();
    verify.args(["verify", "-q"]).arg(&cut);
    let err = refused(verify, &s.path("verified.jsonl"));
    assert!(
        err.contains("cut.jsonl.gz:")
            && err.contains(": reading stopped here: truncated compressed stream"),
        "{err}"
    );
    // Written by a neardup of another record schema: refused, not guessed at.
    let mut newer: serde_json::Value = serde_json::from_str(&plain[4]).unwrap();
    newer["schema_version"] = 2.into();
    refused_line(
        format!("[{},{newer}]", plain[3]),
        &[],
        "was sketched with schema_version 2, this neardup reads 1",
    );
    // Sketched before the banding was named, both records: they could be banded otherwise.
    let unbanded = |line: &str| {
        let mut record: serde_json::Value = serde_json::from_str(line).unwrap();
        let settings = record["settings"].as_str().unwrap();
        let (head, _) = settings.split_once(" bands=").unwrap();
        record["settings"] = head.into();
        record
    };
    let input = s.write(
        "unbanded.jsonl",
        format!("[{},{}]\n", unbanded(&plain[0]), unbanded(&plain[1])),
    );
    let mut verify = neardup();
    verify.args(["verify", "-q"]).arg(&input);
    let err = refused(verify, &s.path("verified.jsonl"));
    assert!(err.contains("unbanded.jsonl:1: document"), "{err}");
    assert!(err.contains("without its banding"), "{err}");
    // Sketched by a neardup that read text otherwise (or before the tokenizer was named).
    for tokenizer in ["", " tokenizer=0123456789abcdef"] {
        let mut other: serde_json::Value = serde_json::from_str(&plain[4]).unwrap();
        let settings = other["settings"].as_str().unwrap().to_string();
        let (before, after) = settings.split_once(" tokenizer=").unwrap();
        let rest = after.split_once(' ').map_or("", |(_, rest)| rest);
        other["settings"] = format!("{before}{tokenizer} {rest}").trim_end().into();
        refused_line(
            format!("[{},{other}]", plain[3]),
            &[],
            "this neardup's tokenizer: sketch the documents again with it",
        );
    }

    // The story level: weighed by other statistics than verify's.
    let (stats, records) = fixture_sketches(&s);
    let other_stats = s.path("other.stats");
    let few = s.write(
        "few.jsonl",
        "{\"id\":\"x\",\"text\":\"Some other words entirely, counted apart.\"}\n",
    );
    run_ok(&["stats", "count", "-q", "-o"], &[&other_stats, &few]);
    let story_refused = |pair: String, stats: &Path, expected: &str| {
        let input = s.write("story.jsonl", format!("[{pair}]\n"));
        let mut verify = neardup();
        verify
            .args(["verify", "--level", "story", "-q", "--stats"])
            .arg(stats)
            .arg(&input);
        let err = refused(verify, &s.path("judged.jsonl"));
        assert!(err.contains("story.jsonl:1: document"), "{err}");
        assert!(err.contains(expected), "{err}");
    };
    story_refused(
        format!("{},{}", records[0], records[1]),
        &other_stats,
        "(the statistics of --stats)",
    );
    // And by other statistics than each other.
    let others = run_ok(
        &["sketch", "-q", "--level", "story", "--stats"],
        &[&other_stats, &wire],
    );
    story_refused(
        format!("{},{}", records[0], others.lines().nth(1).unwrap()),
        &stats,
        "was sketched with stats ",
    );
    // With another candidate threshold: other bands and another estimate floor.
    let lower = run_ok(
        &[
            "sketch",
            "-q",
            "--level",
            "story",
            "--story-candidates",
            "0.5",
            "--stats",
        ],
        &[&stats, &wire],
    );
    story_refused(
        format!("{},{}", records[0], lower.lines().nth(1).unwrap()),
        &stats,
        "candidates 0.5, this verify has candidates 0.2 (--story-candidates)",
    );
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
    // A summary line as the other commands print, and -q as they take.
    let out = neardup()
        .args(["stats", "merge", "-o"])
        .args([&merged, &a, &b])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).starts_with("neardup: merged 2 statistics files: "),
        "{}",
        stderr_of(&out)
    );
    let out = neardup()
        .args(["stats", "merge", "-q", "-o"])
        .args([&merged, &a, &b])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(stderr_of(&out), "");
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
        stderr_of(&out).contains("in 1 document ("),
        "{}",
        stderr_of(&out)
    );

    // --stats weighs words: the near-copy sketch refuses it, as a usage error.
    let out = neardup()
        .args(["sketch", "--stats"])
        .arg(&whole)
        .arg(&first)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("--stats is a story-level flag: it needs --level story"));
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

/// Runs `command -o output`, which must fail (exit 1) without writing `output`; its
/// standard error.
fn refused(mut command: assert_cmd::Command, output: &Path) -> String {
    let out = command.arg("-o").arg(output).output().unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!output.exists(), "no partial output: {err}");
    err
}

/// Candidate pairs of sketch records as a cluster engine makes them: records that share a
/// band key, buckets over `cap` paired in id-order windows (and with `star_copies`, more
/// than `cap` equal shingle sets paired with their first in id order, banded alone). One
/// line per pair, `[record, record]`.
fn bucket_pairs(records: &[String], cap: usize, star_copies: bool) -> String {
    let mut buckets: BTreeMap<(usize, String), Vec<(String, usize)>> = BTreeMap::new();
    let mut pairs = std::collections::BTreeSet::new();
    // The near-copy level: more than `cap` equal shingle sets band only the first in id
    // order, the others paired with it.
    let mut copies: BTreeMap<String, Vec<(String, usize)>> = BTreeMap::new();
    for (i, line) in records.iter().enumerate() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = r["id"].as_str().unwrap().to_string();
        copies
            .entry(r["set"].as_str().unwrap().to_string())
            .or_default()
            .push((id, i));
    }
    let mut starred = vec![false; records.len()];
    for mut group in copies.into_values() {
        if star_copies && group.len() > cap {
            group.sort();
            for (_, y) in &group[1..] {
                starred[*y] = true;
                pairs.insert((group[0].1, *y));
            }
        }
    }
    for (i, line) in records.iter().enumerate() {
        if starred[i] {
            continue;
        }
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = r["id"].as_str().unwrap().to_string();
        for (band, key) in r["bands"].as_array().unwrap().iter().enumerate() {
            let key = key.as_str().unwrap().to_string();
            buckets
                .entry((band, key))
                .or_default()
                .push((id.clone(), i));
        }
    }
    for mut members in buckets.into_values() {
        members.sort();
        for (i, (_, x)) in members.iter().enumerate() {
            let end = if members.len() <= cap {
                members.len()
            } else {
                (i + cap).min(members.len())
            };
            for (_, y) in &members[i + 1..end] {
                pairs.insert((*x, *y));
            }
        }
    }
    pairs
        .into_iter()
        .map(|(x, y)| format!("[{},{}]\n", records[x], records[y]))
        .collect()
}

/// The generated stories judged by `verify` from their sketches: (statistics, sketches,
/// judged pairs, input).
fn judged_stories(s: &Scratch) -> [std::path::PathBuf; 4] {
    let input = s.write("stories.jsonl", generated_stories());
    let (stats, sketches, judged) = (
        s.path("stories.stats"),
        s.path("stories.sketch.jsonl"),
        s.path("judged.jsonl"),
    );
    run_ok(&["stats", "count", "-q", "-o"], &[&stats, &input]);
    run_ok(
        &["sketch", "-q", "--level", "story", "--stats"],
        &[&stats, &input, Path::new("-o"), &sketches],
    );
    let records: Vec<String> = std::fs::read_to_string(&sketches)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let candidates = s.write("candidates.jsonl", bucket_pairs(&records, 100, false));
    run_ok(
        &["verify", "--level", "story", "-q", "--stats"],
        &[&stats, &candidates, Path::new("-o"), &judged],
    );
    [stats, sketches, judged, input]
}

#[test]
fn link_writes_the_clusters_of_one_batch_run() {
    let s = Scratch::new();
    let [_, sketches, judged, input] = judged_stories(&s);
    let batch = run_ok(&["cluster", "-q", "--level", "story"], &[&input]);
    let linked = run_ok(
        &["link", "--level", "story", "-q"],
        &[&judged, Path::new("--members"), &sketches],
    );
    assert!(batch.lines().count() > 20, "{batch}");
    assert!(
        batch.contains("\"metadata\":{\"date\""),
        "members keep their metadata"
    );
    assert_eq!(linked, batch, "byte for byte");

    // Members in several files, compressed or not, pairs from standard input; and the
    // pairs of the clusters' components alone link to the same clusters.
    let records = std::fs::read_to_string(&sketches).unwrap();
    let (first, second) = records.split_at(records.len() / 2 + 1);
    let first = first.rsplit_once('\n').map_or(first, |(head, _)| head);
    let rest = &records[first.len() + 1..];
    let part_1 = s.write("part-1.jsonl.gz", gzip(format!("{first}\n").as_bytes()));
    let part_2 = s.write("part-2.jsonl", rest);
    assert!(!second.is_empty());
    let out = neardup()
        .args(["link", "--level", "story", "-q", "-", "--members"])
        .arg(&part_1)
        .arg(&part_2)
        .write_stdin(std::fs::read(&judged).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(stdout_of(&out), batch);

    // A table for people.
    let table = run_ok(
        &["link", "--level", "story", "-q", "--format", "table"],
        &[&judged, Path::new("--members"), &sketches],
    );
    assert!(
        table.lines().nth(1).unwrap().contains("representative"),
        "{table}"
    );
    // Another representative rule, as the batch applies it.
    let longest = |command: &[&str], paths: &[&Path]| {
        let mut args = command.to_vec();
        args.extend(["--representative", "longest"]);
        run_ok(&args, paths)
    };
    assert_eq!(
        longest(
            &["link", "--level", "story", "-q"],
            &[&judged, Path::new("--members"), &sketches]
        ),
        longest(&["cluster", "-q", "--level", "story"], &[&input])
    );

    // Majority linkage, not connected components: x~y and y~z are one story, x and z
    // are not, so z does not join {x, y} (one of its two cross pairs agrees).
    let template: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&judged)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let pair = |a: &str, b: &str, p: f64| {
        let mut r = template.clone();
        r["a"] = a.into();
        r["b"] = b.into();
        r["probability"] = p.into();
        r["score"] = p.into();
        r["same_story"] = (p >= 0.35).into();
        r["veto"] = serde_json::Value::Null;
        r.to_string()
    };
    let chain = s.write(
        "chain.jsonl",
        [
            pair("x", "y", 0.875),
            pair("y", "z", 0.75),
            pair("x", "z", 0.125),
        ]
        .join("\n"),
    );
    let members = s.write(
        "members.jsonl",
        "{\"id\":\"x\",\"date\":200,\"text_bytes\":10}\n\
         {\"id\":\"y\",\"date\":100,\"text_bytes\":10,\"metadata\":{\"title\":\"Y\"}}\n\
         {\"id\":\"z\",\"date\":null,\"text_bytes\":10}\n",
    );
    let linked = json_lines(&run_ok(
        &["link", "--level", "story", "-q"],
        &[&chain, Path::new("--members"), &members],
    ));
    assert_eq!(linked.len(), 1);
    assert_eq!(
        linked[0]["members"].to_string(),
        r#"[{"id":"x"},{"id":"y","metadata":{"title":"Y"}}]"#
    );
    assert_eq!(linked[0]["representative"], "y", "the earliest");
    assert_eq!(linked[0]["cohesion"]["min_score"], 0.875);
}

#[test]
fn link_refuses_pairs_and_members_it_cannot_link() {
    let s = Scratch::new();
    let [_, sketches, judged, _] = judged_stories(&s);
    let lines: Vec<String> = std::fs::read_to_string(&judged)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let same: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("\"same_story\":true"))
        .collect();
    let other: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("\"same_story\":false"))
        .collect();
    assert!(!same.is_empty() && !other.is_empty());
    let edited = |line: &str, edit: &dyn Fn(&mut serde_json::Value)| {
        let mut r: serde_json::Value = serde_json::from_str(line).unwrap();
        edit(&mut r);
        r.to_string()
    };
    let unknown = edited(same[0], &|r| r["a"] = "nowhere".into());
    let cases: Vec<(String, &str)> = vec![
        ("{not json".into(), "bad.jsonl:2: not a judged pair"),
        (
            edited(same[0], &|r| r["same_story"] = false.into()),
            "bad.jsonl:2: judged at another cut",
        ),
        (
            edited(same[0], &|r| {
                r["components"]
                    .as_object_mut()
                    .unwrap()
                    .remove("idf_cosine");
            }),
            "bad.jsonl:2: the component \"idf_cosine\" is missing",
        ),
        (
            edited(same[0], &|r| r["kind"] = "echo".into()),
            "unknown kind \"echo\"",
        ),
        (
            edited(same[0], &|r| r["b"] = r["a"].clone()),
            "paired with itself",
        ),
        (
            unknown,
            "bad.jsonl:2: the document \"nowhere\" is in a clustered pair but has no record",
        ),
        (
            (*same[0]).clone(),
            "bad.jsonl:2: the pair \"", // …" / "…" is given twice (first at bad.jsonl:1)
        ),
    ];
    for (bad, expected) in cases {
        let bad_input = s.write("bad.jsonl", format!("{}\n{bad}\n", same[0]));
        let mut link = neardup();
        link.args(["link", "--level", "story", "-q"])
            .arg(&bad_input)
            .arg("--members")
            .arg(&sketches);
        let err = refused(link, &s.path("clusters.jsonl"));
        assert!(err.contains(expected), "{bad}: {err}");
        if bad == *same[0] {
            assert!(
                err.contains("is given twice (first at ") && err.contains("bad.jsonl:1)"),
                "{err}"
            );
        }
    }

    // A member given twice, named by its file and line.
    let records = std::fs::read_to_string(&sketches).unwrap();
    let twice = s.write("twice.jsonl", format!("{records}{records}"));
    let count = records.lines().count();
    let mut link = neardup();
    link.args(["link", "--level", "story", "-q"])
        .arg(&judged)
        .arg("--members")
        .arg(&twice);
    let err = refused(link, &s.path("clusters.jsonl"));
    assert!(
        err.contains("twice.jsonl:") && err.contains("is given twice"),
        "{err}"
    );
    let line: usize = err
        .split("twice.jsonl:")
        .nth(1)
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(line > count, "{err}");
    // And where it was read first.
    let first: usize = err
        .split("(first at ")
        .nth(1)
        .and_then(|rest| rest.split(':').nth(1))
        .and_then(|n| {
            n.trim_end_matches(|c: char| !c.is_ascii_digit())
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("{err}"));
    assert_eq!(first, line - count, "{err}");
    // A member line that is not a record; settings that cannot link.
    let broken = s.write("broken.jsonl", format!("{records}[1, 2]\n"));
    for (args, expected) in [
        (
            vec!["--members".as_ref(), broken.as_os_str()],
            format!("broken.jsonl:{}: not a document record", count + 1),
        ),
        (
            vec![
                "--members".as_ref(),
                sketches.as_os_str(),
                "--story-threshold".as_ref(),
                "0.99".as_ref(),
            ],
            "judged at another cut".to_string(),
        ),
    ] {
        let mut link = neardup();
        link.args(["link", "--level", "story", "-q"])
            .arg(&judged)
            .args(&args);
        let err = refused(link, &s.path("clusters.jsonl"));
        assert!(err.contains(&expected), "{expected}: {err}");
    }
}

/// `sketch` and `verify` at `threshold` of `input`, candidates paired as a cluster engine
/// pairs them at `cap` (copy groups starred): (sketches, their lines, candidates, verified).
fn near_copy_steps(
    s: &Scratch,
    input: &Path,
    threshold: &str,
    cap: usize,
) -> (PathBuf, Vec<String>, PathBuf, PathBuf) {
    let sketches = s.path("sketches.jsonl");
    run_ok(
        &["sketch", "-q", "--threshold", threshold, "-o"],
        &[&sketches, input],
    );
    let records: Vec<String> = std::fs::read_to_string(&sketches)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let candidates = s.write("candidates.jsonl", bucket_pairs(&records, cap, true));
    let verified = s.path("verified.jsonl");
    run_ok(
        &["verify", "-q", "--threshold", threshold, "-o"],
        &[&verified, &candidates],
    );
    (sketches, records, candidates, verified)
}

#[test]
fn near_copy_steps_give_the_pairs_and_clusters_of_one_batch_run() {
    let s = Scratch::new();
    let input = s.write("stories.jsonl", generated_stories());
    // A cap of 40 at both ends, so that the 105 copies overflow it into id-order windows.
    let (sketches, records, candidates, verified) = near_copy_steps(&s, &input, "0.6", 40);
    assert!(records[0].contains("\"signature\":"));
    assert_float_text_is_shortest(
        &std::fs::read_to_string(&verified).unwrap(),
        "exact_jaccard",
    );
    let batch = |command: &str, extra: &[&str]| {
        let mut args = vec![command, "-q", "--threshold", "0.6", "--bucket-cap", "40"];
        args.extend(extra);
        run_ok(&args, &[&input])
    };
    let pairs = batch("pairs", &[]);
    assert!(pairs.lines().count() > 100, "{pairs}");
    assert_eq!(
        by_pair(
            &std::fs::read_to_string(&verified).unwrap(),
            &["exact_jaccard"]
        ),
        by_pair(&pairs, &[])
    );
    // Clusters byte for byte, in both modes, with the metadata of the members.
    for mode in ["connected", "leader"] {
        let linked = run_ok(
            &["link", "-q", "--bucket-cap", "40", "--mode", mode],
            &[&verified, Path::new("--members"), &sketches],
        );
        let clusters = batch("cluster", &["--mode", mode]);
        assert!(clusters.contains("\"metadata\":{\"date\""));
        assert_eq!(linked, clusters, "--mode {mode}");
    }

    // What neither step takes.
    let story = run_ok(&["sketch", "-q", "--level", "story"], &[&input]);
    let story_pair = s.write(
        "story-pair.jsonl",
        format!("[{},{}]\n", records[0], story.lines().next().unwrap()),
    );
    let short = {
        let mut r: serde_json::Value = serde_json::from_str(&records[1]).unwrap();
        r["signature"] = "AAAAAA==".into();
        s.write("short.jsonl", format!("[{},{r}]\n", records[0]))
    };
    let verified_line = std::fs::read_to_string(&verified)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let no_member = {
        let mut r: serde_json::Value = serde_json::from_str(&verified_line).unwrap();
        r["a"] = "nowhere".into();
        s.write("no-member.jsonl", format!("{r}\n"))
    };
    let again = s.write("again.jsonl", format!("{verified_line}\n"));
    let output = s.path("out.jsonl");
    for (args, expected) in [
        (
            vec![
                "link",
                "-q",
                verified.to_str().unwrap(),
                again.to_str().unwrap(),
                "--members",
                sketches.to_str().unwrap(),
            ],
            "again.jsonl:1: the pair \"",
        ),
        (
            vec![
                "link",
                "-q",
                again.to_str().unwrap(),
                verified.to_str().unwrap(),
                "--members",
                sketches.to_str().unwrap(),
            ],
            "is given twice (first at ",
        ),
        (
            vec![
                "link",
                "-q",
                verified.to_str().unwrap(),
                "--members",
                sketches.to_str().unwrap(),
                sketches.to_str().unwrap(),
            ],
            "is given twice (also as ",
        ),
        (
            vec!["verify", "-q", story_pair.to_str().unwrap()],
            "story-pair.jsonl:1: document \"story-0000\" was sketched at the story level",
        ),
        (
            vec!["verify", "-q", short.to_str().unwrap()],
            "short.jsonl:1: document \"story-0001\": its signature has 1 slots",
        ),
        (
            vec![
                "link",
                "-q",
                candidates.to_str().unwrap(),
                "--members",
                sketches.to_str().unwrap(),
            ],
            "candidates.jsonl:1: not a verified pair",
        ),
        (
            vec![
                "link",
                "-q",
                no_member.to_str().unwrap(),
                "--members",
                sketches.to_str().unwrap(),
            ],
            "no-member.jsonl:1: the document \"nowhere\" is in a clustered pair but has no record",
        ),
    ] {
        let mut command = neardup();
        command.args(&args);
        let err = refused(command, &output);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

/// Every command that reads files refuses an `-o` naming one of them, before writing
/// anything: `stats count corpus.jsonl -o corpus.jsonl` replaced the corpus with
/// statistics, and `index export -o news.idx/index.meta` broke the index.
#[test]
fn an_output_that_would_replace_an_input_is_refused() {
    let s = Scratch::new();
    let [stats, sketches, judged, input] = judged_stories(&s);
    let candidates = s.path("candidates.jsonl");
    let other_stats = s.path("other.stats");
    std::fs::copy(&stats, &other_stats).unwrap();
    let index = s.path("news.idx");
    run_ok(&["index", "create", "-q"], &[&index]);
    run_ok(&["index", "add", "-q"], &[&index, &input]);
    let meta = index.join("index.meta");
    let args = |list: &[&Path]| {
        list.iter()
            .map(|p| p.as_os_str().to_owned())
            .collect::<Vec<_>>()
    };
    let p = |s: &'static str| Path::new(s);
    let cases: Vec<(Vec<std::ffi::OsString>, &Path)> = vec![
        (
            args(&[p("stats"), p("count"), &input, p("-o"), &input]),
            &input,
        ),
        (
            args(&[
                p("stats"),
                p("merge"),
                &stats,
                &other_stats,
                p("-o"),
                &stats,
            ]),
            &stats,
        ),
        (
            args(&[p("verify"), &candidates, p("-o"), &candidates]),
            &candidates,
        ),
        (
            args(&[
                p("verify"),
                p("--level"),
                p("story"),
                p("--stats"),
                &stats,
                &candidates,
                p("-o"),
                &stats,
            ]),
            &stats,
        ),
        (
            args(&[
                p("link"),
                &judged,
                p("--members"),
                &sketches,
                p("-o"),
                &judged,
            ]),
            &judged,
        ),
        (
            args(&[
                p("link"),
                &judged,
                p("--members"),
                &sketches,
                p("-o"),
                &sketches,
            ]),
            &sketches,
        ),
        (
            args(&[
                p("sketch"),
                p("--level"),
                p("story"),
                p("--stats"),
                &stats,
                &input,
                p("-o"),
                &stats,
            ]),
            &stats,
        ),
        (
            args(&[
                p("sketch"),
                p("--level"),
                p("story"),
                &input,
                p("-o"),
                &input,
            ]),
            &input,
        ),
        (
            args(&[p("index"), p("export"), &index, p("-o"), &meta]),
            &meta,
        ),
    ];
    for (args, victim) in cases {
        let before = std::fs::read(victim).unwrap();
        let out = neardup().args(&args).output().unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("write it"), "{args:?}: {err}");
        assert_eq!(std::fs::read(victim).unwrap(), before, "{args:?}");
    }
    // A new file inside the index directory is refused too; one beside it is written.
    let inside = index.join("export.jsonl");
    let out = neardup()
        .args(["index", "export"])
        .arg(&index)
        .arg("-o")
        .arg(&inside)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(!inside.exists());
    run_ok(
        &["index", "export"],
        &[&index, p("-o"), &s.path("export.jsonl")],
    );
    run_ok(&["index", "stats"], &[&index]);
}

/// More than `--bucket-cap` exact copies are starred around the first in id order; in
/// leader mode `link` moves them as one, as the batch run does, although the leader (the
/// earliest copy) is not the centre of the star.
#[test]
fn leader_mode_links_a_starred_copy_group_as_one_batch_run() {
    let s = Scratch::new();
    let stub = "Subscribe today to read the full story and every other article on our site";
    let input: String = (0..30)
        .map(|i| {
            let date = if i == 17 { "2024-05-01" } else { "2024-05-02" };
            format!("{{\"id\":\"c{i:02}\",\"text\":\"{stub}\",\"date\":\"{date}\"}}\n")
        })
        .collect();
    let input = s.write("copies.jsonl", input);
    let (sketches, _, _, verified) = near_copy_steps(&s, &input, "0.8", 10);
    assert_eq!(
        std::fs::read_to_string(&verified).unwrap().lines().count(),
        29
    );
    for mode in ["leader", "connected"] {
        let linked = run_ok(
            &["link", "-q", "--bucket-cap", "10", "--mode", mode],
            &[&verified, Path::new("--members"), &sketches],
        );
        let clusters = run_ok(
            &[
                "cluster",
                "-q",
                "--threshold",
                "0.8",
                "--bucket-cap",
                "10",
                "--mode",
                mode,
            ],
            &[&input],
        );
        let records = json_lines(&clusters);
        assert_eq!(records.len(), 1, "--mode {mode}: {clusters}");
        assert_eq!(records[0]["size"], 30, "--mode {mode}");
        assert_eq!(records[0]["representative"], "c17", "--mode {mode}");
        assert_eq!(linked, clusters, "--mode {mode}");
    }
}
