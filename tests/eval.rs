//! `neardup eval` and `neardup params` end to end.

use crate::util::*;

/// Four articles in two near-copy pairs, plus one unrelated.
fn corpus(s: &Scratch) -> std::path::PathBuf {
    let mut records = good_records();
    records.push(("other", "Ministers met in the capital to discuss a new trade agreement with neighbouring countries, covering farm goods, steel and cars, and said talks would resume next month after the holidays."));
    s.jsonl("news.jsonl", &records)
}

const PAIRS: &str = r#"{"a": "rate-1", "b": "rate-2", "same_story": true, "label": "copy"}
{"a": "storm-2", "b": "storm-1", "same_story": true, "label": "copy"}
{"a": "rate-1", "b": "storm-1", "same_story": false, "label": "unrelated"}
{"a": "rate-2", "b": "other", "same_story": false, "label": "unrelated"}
"#;

fn eval_json(s: &Scratch, extra: &[&str]) -> serde_json::Value {
    let out = neardup()
        .current_dir(s.dir.path())
        .arg("eval")
        .arg(corpus(s))
        .args(["--format", "json", "--no-plots"])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    serde_json::from_slice(&out.stdout).expect("one JSON document")
}

#[test]
fn prints_the_sweep_and_the_best_threshold_and_draws_charts() {
    let s = Scratch::new();
    s.write("gold.jsonl", PAIRS);
    let out = neardup()
        .current_dir(s.dir.path())
        .arg("eval")
        .arg(corpus(&s))
        .args(["--gold", "gold.jsonl", "--plots", "charts"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let table = stdout_of(&out);
    assert!(
        table.contains("gold: gold.jsonl: 4 judged pairs (2 same story, 2 different)"),
        "{table}"
    );
    assert!(
        table.contains("threshold") && table.contains("missed: LSH"),
        "{table}"
    );
    // The copies are near 0.8 Jaccard: every threshold up to there finds both, none wrongly.
    assert!(table.contains("best F1: 1.000 at threshold"), "{table}");
    assert!(
        stderr_of(&out).contains("neardup: charts: charts/eval-sweep.svg"),
        "{}",
        stderr_of(&out)
    );

    for name in ["eval-sweep", "eval-scores"] {
        let svg = std::fs::read_to_string(s.path(&format!("charts/{name}.svg"))).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("exact Jaccard"),
            "{name}.svg"
        );
        let png = std::fs::read(s.path(&format!("charts/{name}.png"))).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let reader = decoder.read_info().expect("a valid PNG");
        assert_eq!((reader.info().width, reader.info().height), (900, 540));
    }
    let svg = std::fs::read_to_string(s.path("charts/eval-sweep.svg")).unwrap();
    assert!(svg.contains("precision") && svg.contains("recall") && svg.contains("best F1 1.000"));

    // Charts depend only on the input.
    let again = neardup()
        .current_dir(s.dir.path())
        .arg("eval")
        .arg(s.path("news.jsonl"))
        .args(["--gold", "gold.jsonl", "--plots", "again", "--threads", "1"])
        .output()
        .unwrap();
    assert!(again.status.success());
    for name in [
        "eval-sweep.svg",
        "eval-sweep.png",
        "eval-scores.svg",
        "eval-scores.png",
    ] {
        assert_eq!(
            std::fs::read(s.path(&format!("charts/{name}"))).unwrap(),
            std::fs::read(s.path(&format!("again/{name}"))).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn json_report_and_csv_gold_agree() {
    let s = Scratch::new();
    s.write("gold.jsonl", PAIRS);
    s.write(
        "gold.csv",
        "a,b,same_story,label\nrate-1,rate-2,true,copy\nstorm-2,storm-1,yes,copy\nrate-1,storm-1,false,unrelated\nrate-2,other,0,unrelated\n",
    );
    let from_jsonl = eval_json(&s, &["--gold", "gold.jsonl", "--beta", "0.5"]);
    let mut from_csv = eval_json(&s, &["--gold", "gold.csv", "--beta", "0.5"]);
    from_csv["gold"]["file"] = from_jsonl["gold"]["file"].clone();
    assert_eq!(from_jsonl, from_csv);

    let r = &from_jsonl;
    assert_eq!(r["schema_version"], 1);
    assert_eq!(r["documents"], 5);
    assert_eq!(r["settings"]["score"], "jaccard");
    assert_eq!(r["gold"]["shape"], "pairs");
    assert_eq!(
        (
            r["gold"]["positives"].as_u64(),
            r["gold"]["negatives"].as_u64()
        ),
        (Some(2), Some(2))
    );
    let rows = r["thresholds"].as_array().unwrap();
    assert_eq!(rows.len(), 19, "0.10 to 1.00 by 0.05");
    assert_eq!(rows[0]["threshold"], 0.1);
    assert_eq!(rows[18]["threshold"], 1.0);
    for row in rows {
        let missed = &row["missed"];
        let sum = missed["not_candidate"].as_u64().unwrap()
            + missed["split_by_clustering"].as_u64().unwrap()
            + missed["below_threshold"].as_u64().unwrap();
        assert_eq!(sum, row["false_negatives"].as_u64().unwrap());
        assert!(row["f_beta"].is_number(), "--beta adds F-beta to every row");
    }
    // At 1.0 the near-copies are below the threshold: both missed, nothing predicted.
    assert_eq!(rows[18]["missed"]["below_threshold"], 2);
    assert_eq!(rows[18]["precision"], serde_json::Value::Null);
    assert_eq!(rows[18]["f1"], 0.0);
    assert_eq!(r["best_f1"]["f_beta"], 1.0);
    assert_eq!(r["best_f_beta"]["beta"], 0.5);
    // Ties go to the higher threshold.
    let best = r["best_f1"]["threshold"].as_f64().unwrap();
    let next = rows
        .iter()
        .find(|row| row["threshold"].as_f64().unwrap() > best + 1e-9)
        .unwrap();
    assert!(next["f1"].as_f64().unwrap() < 1.0);
    let kinds = r["explained"]["kinds"].as_array().unwrap();
    assert_eq!(
        kinds[0],
        serde_json::json!({"kind": "copy", "pairs": 2, "positives": 2, "clustered": 2})
    );
    let bins = r["histogram"]["bins"].as_array().unwrap();
    assert_eq!(bins.len(), 20);
    let positives: u64 = bins.iter().map(|b| b["positives"].as_u64().unwrap()).sum();
    assert_eq!(positives, 2);
}

#[test]
fn output_does_not_depend_on_input_order() {
    let s = Scratch::new();
    s.write("gold.jsonl", PAIRS);
    let forward = eval_json(&s, &["--gold", "gold.jsonl"]);
    // The same records in another order, in another directory.
    let other = Scratch::new();
    let text: String = std::fs::read_to_string(s.path("news.jsonl")).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.reverse();
    other.write("news.jsonl", lines.join("\n") + "\n");
    other.write("gold.jsonl", PAIRS);
    let out = neardup()
        .current_dir(other.dir.path())
        .args([
            "eval",
            "news.jsonl",
            "--gold",
            "gold.jsonl",
            "--format",
            "json",
            "--no-plots",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let reversed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(forward, reversed);
}

#[test]
fn misses_are_explained_with_their_scores() {
    let s = Scratch::new();
    s.write("gold.jsonl", PAIRS);
    let r = eval_json(&s, &["--gold", "gold.jsonl", "--explain-at", "0.95"]);
    let explained = &r["explained"];
    assert_eq!(explained["threshold"], 0.95);
    let misses = explained["misses"].as_array().unwrap();
    assert_eq!(misses.len(), 2);
    for m in misses {
        assert_eq!(m["reason"], "below_threshold");
        let score = m["score"].as_f64().unwrap();
        assert!(score > 0.5 && score < 0.95, "{m}");
        assert_eq!(m["score"], m["jaccard"]);
        assert_eq!(m["kind"], "copy");
    }
    // Containment as the score: the same pairs, scored by their larger containment.
    let r = eval_json(
        &s,
        &[
            "--gold",
            "gold.jsonl",
            "--explain-at",
            "0.95",
            "--score",
            "containment-max",
        ],
    );
    assert_eq!(r["settings"]["score"], "containment_max");
    for m in r["explained"]["misses"].as_array().unwrap() {
        let larger = m["containment_a_in_b"]
            .as_f64()
            .unwrap()
            .max(m["containment_b_in_a"].as_f64().unwrap());
        assert_eq!(m["score"].as_f64().unwrap(), larger);
    }
}

#[test]
fn cluster_gold_with_custom_fields() {
    let s = Scratch::new();
    s.write(
        "stories.jsonl",
        r#"{"doc": "rate-1", "story": 1}
{"doc": "rate-2", "story": 1}
{"doc": "storm-1", "story": 2}
{"doc": "storm-2", "story": 2}
{"doc": "other", "story": 3}
"#,
    );
    let r = eval_json(
        &s,
        &[
            "--gold",
            "stories.jsonl",
            "--gold-id",
            "doc",
            "--gold-cluster",
            "story",
        ],
    );
    assert_eq!(r["gold"]["shape"], "clusters");
    assert_eq!(
        (
            r["gold"]["documents"].as_u64(),
            r["gold"]["positives"].as_u64()
        ),
        (Some(5), Some(2))
    );
    assert_eq!(r["gold"]["negatives"], 8);
    let best = &r["thresholds"][r["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .position(|row| row["threshold"] == r["best_f1"]["threshold"])
        .unwrap()];
    assert_eq!(best["adjusted_rand_index"], 1.0);
    assert_eq!(
        (
            best["bcubed_precision"].as_f64(),
            best["bcubed_recall"].as_f64()
        ),
        (Some(1.0), Some(1.0))
    );
    assert_eq!(r["histogram"]["negatives_are_candidates"], true);
}

#[test]
fn unknown_gold_ids_warn_or_fail_with_strict() {
    let s = Scratch::new();
    s.write(
        "gold.jsonl",
        format!("{PAIRS}{{\"a\": \"rate-1\", \"b\": \"missing-7\", \"same_story\": true}}\n"),
    );
    let out = neardup()
        .current_dir(s.dir.path())
        .arg("eval")
        .arg(corpus(&s))
        .args(["--gold", "gold.jsonl", "--no-plots", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains(
            "warning: 1 gold records left out: 1 ids are not in the corpus (e.g. missing-7)"
        ),
        "{}",
        stderr_of(&out)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["gold"]["unknown_ids"], serde_json::json!(["missing-7"]));
    assert_eq!(
        (r["gold"]["records"].as_u64(), r["gold"]["skipped"].as_u64()),
        (Some(5), Some(1))
    );

    let strict = neardup()
        .current_dir(s.dir.path())
        .arg("eval")
        .arg(s.path("news.jsonl"))
        .args(["--gold", "gold.jsonl", "--no-plots", "--strict"])
        .output()
        .unwrap();
    assert_eq!(strict.status.code(), Some(1));
    assert!(
        stderr_of(&strict).contains("gold.jsonl:5: id \"missing-7\" is not in the corpus"),
        "{}",
        stderr_of(&strict)
    );
}

#[test]
fn bad_gold_files_are_clear_errors() {
    let s = Scratch::new();
    corpus(&s);
    let cases = [
        (
            "bad.jsonl",
            "{\"a\": \"rate-1\", \"b\": \"rate-2\", \"same_story\": true}\n{\"a\": \"rate-1\", \"b\": \"storm-1\"}\n",
            "bad.jsonl:2: missing label field",
        ),
        (
            "bad.csv",
            "a,b,same_story\nrate-1,rate-2,sometimes\n",
            "bad.csv:2: field \"same_story\" must be true or false",
        ),
        ("empty.jsonl", "", "empty.jsonl: no gold records"),
    ];
    for (name, text, expected) in cases {
        s.write(name, text);
        let out = neardup()
            .current_dir(s.dir.path())
            .args(["eval", "news.jsonl", "--no-plots", "--gold", name])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert!(
            stderr_of(&out).contains(expected),
            "{name}: {}",
            stderr_of(&out)
        );
    }
    let out = neardup()
        .current_dir(s.dir.path())
        .args(["eval", "news.jsonl", "--gold", "absent.jsonl"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("absent.jsonl: cannot read"),
        "{}",
        stderr_of(&out)
    );
    let out = neardup()
        .current_dir(s.dir.path())
        .args([
            "eval",
            "news.jsonl",
            "--gold",
            "bad.csv",
            "--min-threshold",
            "0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn chart_flags() {
    let s = Scratch::new();
    s.write("gold.jsonl", PAIRS);
    let run = |extra: &[&str]| {
        let out = neardup()
            .current_dir(s.dir.path())
            .arg("eval")
            .arg(corpus(&s))
            .args(["--gold", "gold.jsonl", "-q"])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        assert!(out.stderr.is_empty(), "--quiet: {}", stderr_of(&out));
    };
    run(&["--no-plots"]);
    assert!(!s.path("neardup-plots").exists());
    run(&["--plot-format", "svg"]);
    let mut files: Vec<String> = std::fs::read_dir(s.path("neardup-plots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["eval-scores.svg", "eval-sweep.svg"]);
}

#[test]
fn help_teaches_the_method() {
    let out = neardup().args(["help", "eval"]).output().unwrap();
    let help = stdout_of(&out);
    for expected in [
        "--gold",
        "--score",
        "--min-threshold",
        "Why a same-story pair was missed",
        "--strict makes them an error",
    ] {
        assert!(help.contains(expected), "{expected}");
    }
    let out = neardup().args(["help", "params"]).output().unwrap();
    assert!(stdout_of(&out).contains("P(s) = 1 - (1 - s^r)^b"));
}

/// Acceptance: `neardup params --threshold 0.5 --num-perm 128` prints the closed form.
#[test]
fn params_match_the_closed_form() {
    let s = Scratch::new();
    for extra in [
        &[][..],
        &["--bands", "16", "--rows", "8"][..],
        &["--bands", "20"][..],
    ] {
        let out = neardup()
            .current_dir(s.dir.path())
            .args([
                "params",
                "--threshold",
                "0.5",
                "--num-perm",
                "128",
                "--format",
                "json",
                "--no-plots",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let (b, rows) = (
            r["bands"].as_u64().unwrap() as i32,
            r["rows"].as_u64().unwrap() as i32,
        );
        if extra.is_empty() {
            let chosen = neardup::index::optimal_params(
                0.5,
                128,
                neardup::index::DEFAULT_FP_WEIGHT,
                neardup::index::DEFAULT_FN_WEIGHT,
            );
            assert_eq!((b as usize, rows as usize), (chosen.bands, chosen.rows));
            assert_eq!(r["explicit"], false);
        } else {
            assert_eq!(b, if extra.len() == 4 { 16 } else { 20 });
            assert_eq!(rows, if extra.len() == 4 { 8 } else { 6 }, "128 / 20 rows");
        }
        assert!(b * rows <= 128);
        let curve = r["curve"].as_array().unwrap();
        assert_eq!(curve.len(), 21);
        for (i, point) in curve.iter().enumerate() {
            let s_ = point["similarity"].as_f64().unwrap();
            assert!((s_ - i as f64 * 0.05).abs() < 1e-9);
            let closed = 1.0 - (1.0 - s_.powi(rows)).powi(b);
            let p = point["probability"].as_f64().unwrap();
            assert!(
                (p - closed).abs() <= 0.5e-4,
                "P({s_}) = {p}, closed form {closed}"
            );
        }
        let at = 1.0 - (1.0 - 0.5f64.powi(rows)).powi(b);
        assert!((r["probability_at_threshold"].as_f64().unwrap() - at).abs() <= 0.5e-4);
    }
    // The table and the S-curve chart.
    let out = neardup()
        .current_dir(s.dir.path())
        .args(["params", "--threshold", "0.5", "--num-perm", "128"])
        .output()
        .unwrap();
    let table = stdout_of(&out);
    assert!(
        table.contains("threshold 0.5, num-perm 128:") && table.contains("<- threshold"),
        "{table}"
    );
    assert!(s.path("neardup-plots/params-s-curve.png").exists());
    assert!(
        std::fs::read_to_string(s.path("neardup-plots/params-s-curve.svg"))
            .unwrap()
            .contains("num-perm 128")
    );
    let bad = neardup()
        .args([
            "params",
            "--threshold",
            "0.5",
            "--bands",
            "100",
            "--rows",
            "2",
            "--no-plots",
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr_of(&bad).contains("must be at least 1 and at most num-perm"),
        "{}",
        stderr_of(&bad)
    );
}

/// Acceptance: the labelled BBC pairs, the whole corpus in one run.
#[test]
fn bbc_same_story_pairs() {
    let Some(data) = data_dir() else { return };
    // The run happens in a scratch directory (for the charts): NEARDUP_DATA may be relative.
    let data = data.canonicalize().unwrap();
    let s = Scratch::new();
    let run = |threads: &str| {
        let out = neardup()
            .current_dir(s.dir.path())
            .arg("eval")
            .arg(data.join("bbc-news.jsonl"))
            .arg("--gold")
            .arg(data.join("labels/bbc-same-story.jsonl"))
            .args([
                "--format",
                "json",
                "--plots",
                "charts",
                "--threads",
                threads,
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        out.stdout
    };
    let json = run("2");
    assert_eq!(json, run("1"), "identical for any thread count");
    let r: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(r["documents"], 2225);
    assert_eq!(r["gold"]["records"], 320);
    assert_eq!(r["gold"]["skipped"], 0);
    assert_eq!(r["gold"]["positives"], 74);
    // Word 5-gram Jaccard finds copies but not rewrites: F1 about 0.75, best at a low threshold.
    let f1 = r["best_f1"]["f_beta"].as_f64().unwrap();
    let t = r["best_f1"]["threshold"].as_f64().unwrap();
    assert!((0.7..0.85).contains(&f1), "best F1 {f1}");
    assert!((0.15..=0.4).contains(&t), "best threshold {t}");
    let copies = r["explained"]["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "copy")
        .unwrap();
    assert_eq!(
        copies["clustered"], copies["pairs"],
        "every copy is found at the best threshold"
    );
    assert!(s.path("charts/eval-sweep.png").exists() && s.path("charts/eval-scores.svg").exists());
}
