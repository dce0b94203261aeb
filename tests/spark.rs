//! neardup on Apache Spark (`scripts/spark/neardup_spark.py`): the distributed run finds
//! exactly the pairs and connected clusters of one `neardup` run.
//!
//! Needs a Python with pyspark (`NEARDUP_SPARK_PYTHON`, else `target/spark-venv/bin/python`,
//! which `.ci/run` creates) and a Java runtime. Skipped with a note when either is missing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;

/// The Python to run the Spark job with, if one with pyspark is there.
fn spark_python() -> Option<PathBuf> {
    let python = std::env::var_os("NEARDUP_SPARK_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/spark-venv/bin/python")
        });
    let runs = |program: &Path, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !runs(&python, &["-c", "import pyspark"]) {
        eprintln!(
            "note: no Python with pyspark ({} ; set NEARDUP_SPARK_PYTHON or run .ci/run): skipping the Spark check",
            python.display()
        );
        return None;
    }
    if !runs(Path::new("java"), &["-version"]) {
        eprintln!("note: no Java runtime (java): skipping the Spark check");
        return None;
    }
    Some(python)
}

/// Runs the Spark job on `inputs` into `out`; returns its exit status and stderr.
fn run_spark(python: &Path, inputs: &[&Path], out: &Path, flags: &[&str]) -> (bool, String) {
    let output = Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/spark/neardup_spark.py"))
        .args(inputs)
        .arg("--output")
        .arg(out)
        .arg("--neardup")
        .arg(assert_cmd::cargo::cargo_bin("neardup"))
        .args(["--master", "local[2]", "--partitions", "3"])
        .args(flags)
        .output()
        .expect("python runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The pairs and clusters of the Spark job's output, lines as written.
fn spark_result(out: &Path) -> (Vec<String>, Vec<String>) {
    let clusters = std::fs::read_to_string(out.join("clusters.jsonl")).unwrap();
    (
        part_lines(&out.join("pairs")),
        clusters.lines().map(String::from).collect(),
    )
}

/// The part files of a Spark output directory, in order.
fn part_files(dir: &Path) -> Vec<PathBuf> {
    let mut parts: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("part-")
        })
        .collect();
    parts.sort();
    parts
}

/// The lines of a Spark output directory's part files, in order.
fn part_lines(dir: &Path) -> Vec<String> {
    part_files(dir)
        .iter()
        .flat_map(|part| {
            let text = std::fs::read_to_string(part).unwrap();
            text.lines().map(String::from).collect::<Vec<_>>()
        })
        .collect()
}

/// The same from one `neardup pairs` and `neardup cluster` run (or with `--level story`).
fn neardup_result(inputs: &[&Path], flags: &[&str]) -> (Vec<String>, Vec<String>) {
    // `pairs` makes no clusters and refuses the clustering flags.
    let mut pairs_flags = Vec::new();
    let mut given = flags.iter();
    while let Some(&flag) = given.next() {
        if flag == "--mode" || flag == "--representative" {
            given.next();
        } else {
            pairs_flags.push(flag);
        }
    }
    let run = |command: &str| -> Vec<String> {
        let flags = if command == "pairs" {
            &pairs_flags[..]
        } else {
            flags
        };
        let out = neardup()
            .args([command, "-q"])
            .args(flags)
            .args(inputs)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        stdout_of(&out).lines().map(String::from).collect()
    };
    (run("pairs"), run("cluster"))
}

/// 400 articles of random words, one in three an edited copy of an earlier one, and ten
/// copies of one text, so that at `--bucket-cap 4` some buckets overflow into id-order
/// windows.
fn generated_corpus() -> String {
    let mut next = xorshift(0x2545_F491_4F6C_DD1D);
    let mut texts: Vec<Vec<String>> = Vec::new();
    let mut out = String::new();
    for i in 0..400 {
        let words: Vec<String> = if i % 3 == 2 {
            let mut w = texts[next(texts.len() as u64) as usize].clone();
            let edits = next(w.len() as u64 / 4 + 1);
            for _ in 0..edits {
                let at = next(w.len() as u64) as usize;
                w[at] = format!("w{}", next(2000));
            }
            w
        } else if i >= 380 {
            texts[0].clone()
        } else {
            (0..40 + next(80))
                .map(|_| format!("w{}", next(2000)))
                .collect()
        };
        // Some dated, later ids earlier: the kept member is not simply the smallest id.
        let record = if i % 4 == 1 {
            let day = 28 - (i % 27);
            serde_json::json!({"id": format!("doc-{i:03}"), "text": words.join(" "),
                               "date": format!("2024-03-{day:02}")})
        } else {
            serde_json::json!({"id": format!("doc-{i:03}"), "text": words.join(" ")})
        };
        out.push_str(&record.to_string());
        out.push('\n');
        texts.push(words);
    }
    out
}

#[test]
fn spark_job_finds_the_pairs_and_clusters_of_one_neardup_run() {
    let Some(python) = spark_python() else {
        return;
    };
    let s = Scratch::new();
    let input = s.write("corpus.jsonl", generated_corpus());
    let flags = ["--threshold", "0.4", "--bucket-cap", "4"];
    let out = s.path("out");
    let (ok, err) = run_spark(
        &python,
        &[&input],
        &out,
        &[&flags[..], &["--dedup"]].concat(),
    );
    assert!(ok, "{err}");
    let (spark_pairs, spark_clusters) = spark_result(&out);
    let (pairs, clusters) = neardup_result(&[&input], &flags);
    assert!(pairs.len() > 50 && clusters.len() > 10, "{}", pairs.len());
    assert_eq!(
        spark_pairs, pairs,
        "the records of neardup pairs, byte for byte"
    );
    assert_eq!(
        spark_clusters, clusters,
        "the records of neardup cluster, byte for byte"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["documents"], 400);
    assert!(
        summary["oversized_buckets"].as_u64().unwrap() > 0,
        "the cap is exercised"
    );

    // --dedup keeps and drops what `neardup dedup` keeps and drops.
    let report = s.path("dropped.jsonl");
    let dedup = neardup()
        .args(["dedup", "-q", "--report"])
        .arg(&report)
        .args(flags)
        .arg(&input)
        .output()
        .unwrap();
    assert!(dedup.status.success(), "{}", stderr_of(&dedup));
    let kept_lines = part_lines(&out.join("kept"));
    let expected_kept: Vec<String> = stdout_of(&dedup).lines().map(String::from).collect();
    assert_eq!(
        kept_lines, expected_kept,
        "kept records, byte for byte, in input order"
    );
    let dropped = |text: &str| -> BTreeSet<(String, String)> {
        json_lines(text)
            .iter()
            .map(|d| {
                (
                    d["id"].as_str().unwrap().into(),
                    d["kept"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    let spark_dropped = dropped(&std::fs::read_to_string(out.join("dropped.jsonl")).unwrap());
    assert_eq!(
        spark_dropped,
        dropped(&std::fs::read_to_string(&report).unwrap())
    );
    assert_eq!(
        summary["dropped"].as_u64(),
        Some(spark_dropped.len() as u64)
    );
    assert!(
        spark_dropped.iter().any(|(id, kept)| kept > id),
        "an earlier date wins over a smaller id somewhere"
    );
    assert!(
        summary["copy_groups"].as_u64().unwrap() > 0,
        "the 21 copies of one text, over the cap, are a star"
    );

    // Leader mode: `link` moves the star of copies as one, as the batch run does, so
    // the clusters and what --dedup keeps are the batch run's again.
    let leader = [&flags[..], &["--mode", "leader"]].concat();
    let out = s.path("out-leader");
    let (ok, err) = run_spark(
        &python,
        &[&input],
        &out,
        &[&leader[..], &["--dedup"]].concat(),
    );
    assert!(ok, "{err}");
    let (_, spark_clusters) = spark_result(&out);
    let (_, clusters) = neardup_result(&[&input], &leader);
    assert_eq!(spark_clusters, clusters, "neardup cluster --mode leader");
    let dedup = neardup()
        .args(["dedup", "-q"])
        .args(&leader)
        .arg(&input)
        .output()
        .unwrap();
    assert!(dedup.status.success(), "{}", stderr_of(&dedup));
    assert_eq!(
        part_lines(&out.join("kept")),
        stdout_of(&dedup)
            .lines()
            .map(String::from)
            .collect::<Vec<_>>(),
        "neardup dedup --mode leader keeps the same records"
    );

    // Real news, when the corpora are there: Reuters' 793 pairs at the default threshold.
    if let Some(data) = data_dir() {
        let reuters = data.join("reuters21578.jsonl");
        let out = s.path("reuters");
        let (ok, err) = run_spark(&python, &[&reuters], &out, &[]);
        assert!(ok, "{err}");
        let (spark_pairs, spark_clusters) = spark_result(&out);
        let (pairs, clusters) = neardup_result(&[&reuters], &[]);
        assert_eq!(spark_pairs.len(), 793);
        assert_eq!(spark_pairs, pairs);
        assert_eq!(spark_clusters, clusters);
    }
}

#[test]
fn spark_job_fails_on_bad_input_with_neardups_message() {
    let Some(python) = spark_python() else {
        return;
    };
    let s = Scratch::new();
    let malformed = s.write(
        "bad.jsonl",
        "{\"id\": \"a\", \"text\": \"one two three four five six\"}\n{not json\n",
    );
    let cases: [(&[&str], &str); 3] = [
        (&[], "malformed JSON"),
        (&["--level", "story"], "malformed JSON"),
        // The near-copy level's settings are refused at the story level, not ignored.
        (
            &[
                "--level",
                "story",
                "--bucket-cap",
                "5",
                "--threshold",
                "0.8",
            ],
            "--threshold, --bucket-cap: the near-copy level's",
        ),
    ];
    for (n, (flags, expected)) in cases.into_iter().enumerate() {
        let (ok, err) = run_spark(&python, &[&malformed], &s.path(&format!("out-{n}")), flags);
        assert!(!ok, "{flags:?} fails the job");
        assert!(err.contains(expected), "{flags:?}: {err}");
    }

    // zstd inputs: each file decompressed whole by one task, so neardup's line numbers
    // are the file's; a truncated stream fails the job by name, nothing silently lost.
    let lines = [
        "{\"id\": \"a\", \"text\": \"one two three four five six\"}",
        "{not json",
    ];
    let zstd_file = s.write(
        "bad.jsonl.zst",
        zstd::encode_all(lines.join("\n").as_bytes(), 3).unwrap(),
    );
    let (ok, err) = run_spark(&python, &[&zstd_file], &s.path("out-bad-zstd"), &[]);
    assert!(!ok);
    assert!(err.contains("<stdin>:2: malformed JSON"), "{err}");
    let corpus = zstd::encode_all(generated_corpus().as_bytes(), 3).unwrap();
    let truncated = s.write("cut.jsonl.zst", &corpus[..corpus.len() - 20]);
    let (ok, err) = run_spark(&python, &[&truncated], &s.path("out-cut"), &[]);
    assert!(!ok);
    assert!(
        err.contains("cut.jsonl.zst: truncated zstd stream"),
        "{err}"
    );
    let whole = s.write("corpus.jsonl.zst", &corpus);
    let out = s.path("out-zstd");
    let (ok, err) = run_spark(&python, &[&whole], &out, &["--threshold", "0.4"]);
    assert!(ok, "{err}");
    let (pairs, clusters) = neardup_result(&[&whole], &["--threshold", "0.4"]);
    assert!(pairs.len() > 50);
    assert_eq!(spark_result(&out), (pairs, clusters));

    // The same id in two files (so in two tasks): caught after the map step.
    let a = s.jsonl("a.jsonl", &[("same", "one two three four five six")]);
    let b = s.jsonl("b.jsonl", &[("same", "seven eight nine ten eleven twelve")]);
    let (ok, err) = run_spark(&python, &[&a, &b], &s.path("out-repeat"), &[]);
    assert!(!ok);
    assert!(
        err.contains("ids repeated across the input: 'same'"),
        "{err}"
    );
}

#[test]
fn spark_story_job_finds_the_story_pairs_and_clusters_of_one_neardup_run() {
    let Some(python) = spark_python() else {
        return;
    };
    let s = Scratch::new();
    let input = s.write("stories.jsonl", generated_stories());
    let out = s.path("out");
    let (ok, err) = run_spark(&python, &[&input], &out, &["--level", "story", "--dedup"]);
    assert!(ok, "{err}");
    let (spark_pairs, spark_clusters) = spark_result(&out);
    let (pairs, clusters) = neardup_result(&[&input], &["--level", "story"]);
    assert!(
        pairs.len() > 100 && clusters.len() > 20,
        "{} pairs",
        pairs.len()
    );
    assert_eq!(
        spark_pairs, pairs,
        "the same pairs, byte for byte, in the same order"
    );
    assert_eq!(
        spark_clusters, clusters,
        "the same cluster records, byte for byte"
    );
    assert!(
        clusters
            .iter()
            .any(|c| c.contains("\"metadata\":{\"date\""))
    );
    for kind in ["copy", "update", "rewrite"] {
        assert!(
            pairs
                .iter()
                .any(|p| p.contains(&format!("\"kind\":\"{kind}\""))),
            "a {kind} among the pairs"
        );
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["documents"], 3105);
    assert!(
        summary["oversized_buckets"].as_u64().unwrap() > 0,
        "the story cap is exercised"
    );
    // The window is exercised: without it, more pairs.
    let unwindowed = neardup()
        .args(["pairs", "-q", "--level", "story", "--window", "none"])
        .arg(&input)
        .output()
        .unwrap();
    assert!(stdout_of(&unwindowed).lines().count() > pairs.len());
    // The statistics the workers weighed by are the whole input's.
    let counted = s.path("counted.stats");
    let count = neardup()
        .args(["stats", "count", "-q", "-o"])
        .arg(&counted)
        .arg(&input)
        .output()
        .unwrap();
    assert!(count.status.success(), "{}", stderr_of(&count));
    assert_eq!(
        std::fs::read(out.join("corpus.stats")).unwrap(),
        std::fs::read(&counted).unwrap()
    );

    // --dedup drops what `neardup dedup --level story` drops.
    let report = s.path("dropped.jsonl");
    let dedup = neardup()
        .args(["dedup", "-q", "--level", "story", "--report"])
        .arg(&report)
        .arg(&input)
        .output()
        .unwrap();
    assert!(dedup.status.success(), "{}", stderr_of(&dedup));
    let kept_lines = part_lines(&out.join("kept"));
    let expected_kept: Vec<String> = stdout_of(&dedup).lines().map(String::from).collect();
    assert_eq!(kept_lines, expected_kept);

    // An empty input: no documents, no clusters, statistics of nothing.
    let empty = s.write("empty.jsonl", "");
    let (ok, err) = run_spark(
        &python,
        &[&empty],
        &s.path("out-empty"),
        &["--level", "story"],
    );
    assert!(ok, "{err}");
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(s.path("out-empty").join("summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (summary["documents"].as_u64(), summary["clusters"].as_u64()),
        (Some(0), Some(0))
    );

    // Real news, when the corpora are there: Reuters (dated, templated reports) and BBC.
    if let Some(data) = data_dir() {
        let reuters = data.join("reuters21578.jsonl");
        let bbc = data.join("bbc-news.jsonl");
        let out = s.path("news");
        let (ok, err) = run_spark(&python, &[&reuters, &bbc], &out, &["--level", "story"]);
        assert!(ok, "{err}");
        let both = s.path("news.jsonl");
        let mut text = std::fs::read_to_string(&reuters).unwrap();
        text.push_str(&std::fs::read_to_string(&bbc).unwrap());
        std::fs::write(&both, text).unwrap();
        let (spark_pairs, spark_clusters) = spark_result(&out);
        let (pairs, clusters) = neardup_result(&[&both], &["--level", "story"]);
        assert!(pairs.len() > 1000, "{}", pairs.len());
        assert_eq!(spark_pairs, pairs);
        assert_eq!(spark_clusters, clusters);
    }
}

/// `--input-format text`: a directory of `.txt` documents (nested, gzip, a byte-order
/// mark, other files among them) gives the pairs and clusters of `neardup` on the same
/// directory, ids and all; a document that is not UTF-8 fails the job naming it.
#[test]
fn spark_job_reads_directories_of_text_documents_as_neardup_does() {
    let Some(python) = spark_python() else {
        return;
    };
    let s = Scratch::new();
    let docs = s.path("docs");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/wire-story");
    std::fs::create_dir_all(docs.join("wire")).unwrap();
    for entry in std::fs::read_dir(&fixtures).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, docs.join("wire").join(path.file_name().unwrap())).unwrap();
    }
    let texts: Vec<String> = generated_corpus()
        .lines()
        .take(150)
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            record["text"].as_str().unwrap().to_string()
        })
        .collect();
    for (i, text) in texts.iter().enumerate() {
        let dir = docs.join(format!("gen/part {}", i % 3));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("doc-{i:03}.txt")), text).unwrap();
    }
    let mut gzipped = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gzipped, texts[2].as_bytes()).unwrap();
    std::fs::write(docs.join("gen/copy.txt.gz"), gzipped.finish().unwrap()).unwrap();
    std::fs::write(
        docs.join("bom.TXT"),
        [b"\xef\xbb\xbf".as_slice(), texts[5].as_bytes()].concat(),
    )
    .unwrap();
    std::fs::write(docs.join("notes.md"), &texts[7]).unwrap();

    let out = s.path("out");
    let (ok, err) = run_spark(&python, &[&docs], &out, &["--input-format", "text"]);
    assert!(ok, "{err}");
    let (pairs, clusters) = neardup_result(&[&docs], &[]);
    assert!(
        clusters.iter().any(|c| c.contains("gen/copy.txt.gz"))
            && clusters.iter().any(|c| c.contains("\"bom.TXT\""))
            && !clusters.iter().any(|c| c.contains("notes.md")),
        "{clusters:?}"
    );
    assert_eq!(spark_result(&out), (pairs, clusters));

    std::fs::write(docs.join("gen/latin1.txt"), b"caf\xe9 au lait").unwrap();
    let (ok, err) = run_spark(
        &python,
        &[&docs],
        &s.path("out-bad"),
        &["--input-format", "text"],
    );
    assert!(!ok);
    assert!(
        err.contains("gen/latin1.txt: invalid UTF-8 at byte 3"),
        "{err}"
    );
    let (ok, err) = run_spark(
        &python,
        &[&docs.join("bom.TXT")],
        &s.path("out-file"),
        &["--input-format", "text"],
    );
    assert!(!ok);
    assert!(err.contains("this is not a directory"), "{err}");
}
