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
    eval_json_of(s, &corpus(s), extra)
}

/// `neardup eval CORPUS --format json --no-plots EXTRA…` in the scratch directory.
fn eval_json_of(s: &Scratch, corpus: &std::path::Path, extra: &[&str]) -> serde_json::Value {
    let out = neardup()
        .current_dir(s.dir.path())
        .arg("eval")
        .arg(corpus)
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

/// `--no-plots` with `--plots DIR` said nothing of the directory it did not write.
#[test]
fn no_plots_with_a_plots_directory_is_refused() {
    let s = Scratch::new();
    s.write("gold.jsonl", PAIRS);
    for command in [
        &["eval", "news.jsonl", "--gold", "gold.jsonl"][..],
        &["params"],
    ] {
        let out = neardup()
            .current_dir(s.dir.path())
            .args(command)
            .args(["--no-plots", "--plots", "charts"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
        assert!(
            stderr_of(&out).contains("cannot be used with"),
            "{}",
            stderr_of(&out)
        );
        assert!(!s.path("charts").exists());
    }
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

/// At the story level, a positive that a veto rules two stories is counted among those
/// below the threshold and flagged as vetoed (here a deliberately wrong gold pair: two
/// companies' notices in one template).
#[test]
fn story_level_misses_say_when_a_veto_decided() {
    let s = Scratch::new();
    let tokyo = crate::story::bond_notice("Tokyo Optical", 100);
    let corpus = s.jsonl(
        "notices.jsonl",
        &[
            ("tokyo", &tokyo),
            ("sankei", &crate::story::bond_notice("Sankei Building", 100)),
            (
                "tokyo-copy",
                &format!("{tokyo} Reporting by the Tokyo desk."),
            ),
            ("rate", RATE),
            ("storm", STORM),
        ],
    );
    s.write(
        "gold.jsonl",
        "{\"a\": \"tokyo\", \"b\": \"sankei\", \"same_story\": true}\n\
         {\"a\": \"tokyo\", \"b\": \"tokyo-copy\", \"same_story\": true}\n\
         {\"a\": \"rate\", \"b\": \"storm\", \"same_story\": false}\n",
    );
    let r = eval_json_of(
        &s,
        &corpus,
        &[
            "--gold",
            "gold.jsonl",
            "--level",
            "story",
            "--explain-at",
            "0.35",
        ],
    );
    let misses = r["explained"]["misses"].as_array().unwrap();
    assert_eq!(misses.len(), 1, "{misses:?}");
    assert_eq!(
        (misses[0]["a"].as_str(), misses[0]["b"].as_str()),
        (Some("sankei"), Some("tokyo"))
    );
    assert_eq!(misses[0]["reason"], "below_threshold");
    assert_eq!(misses[0]["vetoed"], true);
    let row = r["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["threshold"] == 0.35)
        .expect("the explained threshold is swept");
    assert_eq!(row["missed"]["below_threshold"], 1);
    assert_eq!(row["missed"]["vetoed"], 1);
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

/// Cluster gold lists no negatives, yet the pairs across its clusters that a cluster
/// merges are listed as pair gold's are, and counted at a threshold off the sweep's grid.
#[test]
fn cluster_gold_lists_the_merged_different_story_pairs() {
    let s = Scratch::new();
    // rate-1 and rate-2 are near-copies, labelled two stories here.
    s.write(
        "stories.csv",
        "id,story\r\nrate-1,a\r\nrate-2,b\r\nstorm-1,c\r\nstorm-2,c\r\nother,d\r\n",
    );
    let args = ["--gold", "stories.csv", "--gold-cluster", "story"];
    for at in ["0.3", "0.333"] {
        let r = eval_json(&s, &[&args[..], &["--explain-at", at]].concat());
        let merged = r["explained"]["false_merges"].as_array().unwrap();
        assert_eq!(merged.len(), 1, "at {at}: {merged:?}");
        let m = &merged[0];
        assert_eq!(
            (m["a"].as_str(), m["b"].as_str()),
            (Some("rate-1"), Some("rate-2"))
        );
        assert!(m["jaccard"].as_f64().unwrap() > 0.5, "{m}");
        assert_eq!(m["candidate"], true);
        assert_eq!(m["gold_line"], 3, "rate-2's line, CRLF or not");
        assert!(m.get("reason").is_none());
        assert!(r["explained"]["misses"].as_array().unwrap().is_empty());
    }
    // Every swept row counts it; the histogram counts it once among the candidates.
    let r = eval_json(&s, &args);
    for row in r["thresholds"].as_array().unwrap() {
        if row["threshold"].as_f64().unwrap() <= 0.5 {
            assert_eq!(row["false_positives"], 1, "{row}");
        }
    }
    let negatives: u64 = r["histogram"]["bins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["negatives"].as_u64().unwrap())
        .sum();
    assert_eq!(negatives, 1);
    // The table's summary line, off the grid, says what the list holds.
    let out = neardup()
        .current_dir(s.dir.path())
        .arg("eval")
        .arg(corpus(&s))
        .args(["--no-plots", "-q", "--explain-at", "0.333"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("at threshold 0.333: 0 of 1 same-story pairs missed")
            && text.contains("1 of 9 different-story pairs merged"),
        "{text}"
    );
    assert!(
        text.contains("merged different-story pairs (1 of 1"),
        "{text}"
    );
}

/// Cluster gold that makes no pair says so, not that ids are unknown.
#[test]
fn cluster_gold_of_one_document_says_it_makes_no_pair() {
    let s = Scratch::new();
    s.write("one.csv", "id,cluster\nrate-1,a\nnowhere,b\n");
    let out = neardup()
        .current_dir(s.dir.path())
        .arg("eval")
        .arg(corpus(&s))
        .args(["--no-plots", "--gold", "one.csv"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains(
            "one.csv: cluster gold needs two or more documents found in the corpus to make a pair; 1 found (1 id is not in the corpus, e.g. nowhere)"
        ),
        "{}",
        stderr_of(&out)
    );
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
            "warning: 1 gold record left out: 1 id is not in the corpus (e.g. missing-7)"
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
        (
            "both.jsonl",
            "{\"a\": \"rate-1\", \"b\": \"rate-2\", \"same_story\": true}\n{\"a\": \"rate-1\", \"b\": \"storm-1\", \"same_story\": false, \"duplicate\": \"yes\"}\n",
            "both.jsonl:2: fields \"same_story\" and \"duplicate\" disagree (false and true)",
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
    assert_eq!(out.status.code(), Some(2), "a usage error");
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
        "--level story",
        "story linkage",
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
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr_of(&bad).contains("must be at least 1 and at most num-perm"),
        "{}",
        stderr_of(&bad)
    );
}

/// `params --level story` shows the banding, bucket cap and estimate floor the story level
/// runs with (the Spark job reads its cap and floor from it), at the default candidate
/// threshold and at another.
#[test]
fn params_shows_the_story_levels_candidates() {
    for (flags, threshold) in [(vec![], 0.2), (vec!["--threshold", "0.3"], 0.3)] {
        let out = neardup()
            .args([
                "params",
                "--level",
                "story",
                "--format",
                "json",
                "--no-plots",
            ])
            .args(&flags)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        let r: serde_json::Value = serde_json::from_str(&stdout_of(&out)).unwrap();
        let lsh = neardup::story::candidate_lsh(threshold, 128);
        let settings = neardup::story::StorySettings::default();
        assert_eq!(r["level"], "story");
        assert_eq!(r["threshold"].as_f64(), Some(threshold));
        assert_eq!(
            (r["bands"].as_u64(), r["rows"].as_u64()),
            (Some(lsh.bands as u64), Some(lsh.rows as u64))
        );
        assert_eq!(r["bucket_cap"].as_u64(), Some(settings.bucket_cap as u64));
        // serde_json's default reading of a float may be off in the last bit.
        let floor = r["estimate_floor"].as_f64().unwrap();
        assert!(
            (floor - neardup::story::estimate_floor(threshold)).abs() < 1e-12,
            "{floor}"
        );
    }
    // The near-copy level's record names its level and has neither.
    let out = neardup()
        .args(["params", "--format", "json", "--no-plots"])
        .output()
        .unwrap();
    let r: serde_json::Value = serde_json::from_str(&stdout_of(&out)).unwrap();
    assert_eq!(r["level"], "near-copy");
    assert!(r.get("bucket_cap").is_none() && r.get("estimate_floor").is_none());
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

/// A synthetic corpus of story families for the story level: each family is a base
/// article of made-up words (rare in the corpus, so they weigh in the story score) and
/// rewrites of it with a growing share of their words replaced, so that same-story pairs
/// spread over the whole probability range. Returns the corpus and pair gold: each base
/// against its rewrites (same story, labelled by how much was rewritten) and against the
/// next family's base (different stories).
fn story_families(s: &Scratch) -> (std::path::PathBuf, String) {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move |n: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % n
    };
    const SYLLABLES: [&str; 16] = [
        "ka", "lo", "mi", "ter", "van", "su", "dre", "pol", "zen", "ri", "bak", "tho", "mun", "el",
        "gra", "fis",
    ];
    let word = |next: &mut dyn FnMut(u64) -> u64| -> String {
        (0..3)
            .map(|_| SYLLABLES[next(16) as usize])
            .collect::<String>()
    };
    let sentence = |words: &[String]| -> String {
        words
            .chunks(12)
            .map(|c| c.join(" ") + ".")
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut records = Vec::new();
    let mut gold = String::new();
    for family in 0..12 {
        let base: Vec<String> = (0..72).map(|_| word(&mut next)).collect();
        for (copy, (rate, label)) in [
            (0, "base"),
            (0, "copy"),
            (10, "update"),
            (35, "rewrite"),
            (60, "loose"),
        ]
        .into_iter()
        .enumerate()
        {
            let text: Vec<String> = base
                .iter()
                .map(|w| {
                    if next(100) < rate {
                        word(&mut next)
                    } else {
                        w.clone()
                    }
                })
                .collect();
            let id = format!("s{family:02}-{copy}");
            records.push((id.clone(), sentence(&text)));
            if copy > 0 {
                gold.push_str(&format!(
                    "{{\"a\": \"s{family:02}-0\", \"b\": \"{id}\", \"same_story\": true, \"label\": \"{label}\"}}\n"
                ));
            }
        }
        if family > 0 {
            gold.push_str(&format!(
                "{{\"a\": \"s{:02}-0\", \"b\": \"s{family:02}-0\", \"same_story\": false, \"label\": \"unrelated\"}}\n",
                family - 1
            ));
        }
    }
    let refs: Vec<(&str, &str)> = records
        .iter()
        .map(|(i, t)| (i.as_str(), t.as_str()))
        .collect();
    (s.jsonl("stories.jsonl", &refs), gold)
}

/// The story level's output for `args` (`pairs` or `cluster`) at a story threshold.
fn story_run(corpus: &std::path::Path, command: &str, threshold: f64) -> Vec<serde_json::Value> {
    let out = neardup()
        .args([command, "--level", "story", "--story-threshold"])
        .arg(threshold.to_string())
        .arg(corpus)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    json_lines(&stdout_of(&out))
}

/// Every row of a story-level sweep is what `cluster`/`pairs --level story
/// --story-threshold T` find at that threshold, judged against the gold.
#[test]
fn story_level_sweep_reproduces_runs_at_each_threshold() {
    let s = Scratch::new();
    let (corpus, gold) = story_families(&s);
    s.write("gold.jsonl", &gold);
    let out = neardup()
        .current_dir(s.dir.path())
        .arg("eval")
        .arg(&corpus)
        .args([
            "--gold",
            "gold.jsonl",
            "--level",
            "story",
            "--format",
            "json",
            "--plots",
            "charts",
            "--beta",
            "0.5",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["settings"]["level"], "story");
    assert_eq!(r["settings"]["score"], "story");
    assert_eq!(r["settings"]["cluster_mode"], "majority");
    assert_eq!(r["gold"]["positives"], 48);
    assert_eq!(r["gold"]["negatives"], 11);

    // Every scored candidate, with its probability.
    let all = story_run(&corpus, "pairs", 0.0);
    let score_of: std::collections::HashMap<(String, String), f64> = all
        .iter()
        .map(|p| {
            let key = (
                p["a"].as_str().unwrap().to_string(),
                p["b"].as_str().unwrap().to_string(),
            );
            (key, p["score"].as_f64().unwrap())
        })
        .collect();
    let gold_pairs: Vec<(String, String, bool)> = json_lines(&gold)
        .iter()
        .map(|g| {
            let (a, b) = (g["a"].as_str().unwrap(), g["b"].as_str().unwrap());
            let (a, b) = if a < b { (a, b) } else { (b, a) };
            (
                a.to_string(),
                b.to_string(),
                g["same_story"].as_bool().unwrap(),
            )
        })
        .collect();

    let rows = r["thresholds"].as_array().unwrap();
    assert_eq!(rows.len(), 19, "0.10 to 1.00 by 0.05");
    let mut checked = 0;
    for row in rows {
        let t = row["threshold"].as_f64().unwrap();
        assert_eq!(
            row["candidates"].as_u64().unwrap(),
            all.len() as u64,
            "at {t}"
        );
        let missed = &row["missed"];
        let reasons = missed["not_candidate"].as_u64().unwrap()
            + missed["split_by_clustering"].as_u64().unwrap()
            + missed["below_threshold"].as_u64().unwrap();
        assert_eq!(reasons, row["false_negatives"].as_u64().unwrap(), "at {t}");
        if ![0.2, 0.4, 0.5, 0.7, 0.9]
            .iter()
            .any(|x| (x - t).abs() < 1e-9)
        {
            continue;
        }
        checked += 1;
        let pairs = story_run(&corpus, "pairs", t);
        assert_eq!(
            row["verified"].as_u64().unwrap(),
            pairs.len() as u64,
            "at {t}"
        );
        let clusters = story_run(&corpus, "cluster", t);
        assert_eq!(
            row["clusters"].as_u64().unwrap(),
            clusters.len() as u64,
            "at {t}"
        );
        let mut cluster_of = std::collections::HashMap::new();
        let mut clustered = 0;
        for (i, c) in clusters.iter().enumerate() {
            for m in c["members"].as_array().unwrap() {
                cluster_of.insert(m["id"].as_str().unwrap().to_string(), i);
                clustered += 1;
            }
        }
        assert_eq!(row["clustered_documents"], clustered, "at {t}");
        let (mut tp, mut fp, mut fn_) = (0, 0, 0);
        let (mut below, mut never) = (0, 0);
        for (a, b, same) in &gold_pairs {
            let together = cluster_of
                .get(a)
                .is_some_and(|c| cluster_of.get(b) == Some(c));
            match (same, together) {
                (true, true) => tp += 1,
                (false, true) => fp += 1,
                (true, false) => {
                    fn_ += 1;
                    match score_of.get(&(a.clone(), b.clone())) {
                        Some(&p) if p < t => below += 1,
                        None => never += 1,
                        Some(_) => {}
                    }
                }
                (false, false) => {}
            }
        }
        assert_eq!(
            (
                row["true_positives"].as_u64(),
                row["false_positives"].as_u64(),
                row["false_negatives"].as_u64()
            ),
            (Some(tp), Some(fp), Some(fn_)),
            "at {t}"
        );
        // Pairs scored below T are below it; pairs never scored are below it or LSH misses.
        assert!(
            missed["below_threshold"].as_u64().unwrap() >= below,
            "at {t}"
        );
        assert!(
            missed["below_threshold"].as_u64().unwrap() + missed["not_candidate"].as_u64().unwrap()
                >= below + never,
            "at {t}"
        );
    }
    assert_eq!(checked, 5);

    // The sweep spans the range: high recall at the bottom, fewer pairs at the top.
    let recall = |row: &serde_json::Value| row["recall"].as_f64().unwrap();
    assert!(recall(&rows[0]) > recall(&rows[18]), "{rows:?}");
    let best = &r["best_f1"];
    assert!(best["f_beta"].as_f64().unwrap() > 0.6, "{best}");
    assert_eq!(r["best_f_beta"]["beta"], 0.5);

    // Misses at the explained threshold carry the probability the story level gives them.
    let explained = &r["explained"];
    for m in explained["misses"].as_array().unwrap() {
        let key = (
            m["a"].as_str().unwrap().to_string(),
            m["b"].as_str().unwrap().to_string(),
        );
        match score_of.get(&key) {
            Some(&p) => {
                assert!(m["candidate"].as_bool().unwrap(), "{m}");
                assert!(
                    (m["score"].as_f64().unwrap() - p).abs() < 1e-4,
                    "{m} vs {p}"
                );
            }
            None => assert!(!m["candidate"].as_bool().unwrap(), "{m}"),
        }
    }
    // The gold's labels break the results down.
    let kinds: Vec<&str> = explained["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["copy", "loose", "rewrite", "unrelated", "update"]);
    let bins = r["histogram"]["bins"].as_array().unwrap();
    let positives: u64 = bins.iter().map(|b| b["positives"].as_u64().unwrap()).sum();
    assert_eq!(positives, 48);

    for name in ["eval-sweep", "eval-scores"] {
        let svg = std::fs::read_to_string(s.path(&format!("charts/{name}.svg"))).unwrap();
        assert!(svg.contains("story score"), "{name}.svg");
        assert!(s.path(&format!("charts/{name}.png")).exists());
    }
}

#[test]
fn story_level_tables_cluster_gold_and_flag_errors() {
    let s = Scratch::new();
    let (corpus, _) = story_families(&s);
    let clusters: String = (0..12)
        .flat_map(|f| {
            (0..5).map(move |c| format!("{{\"id\": \"s{f:02}-{c}\", \"cluster\": {f}}}\n"))
        })
        .collect();
    s.write("clusters.jsonl", clusters);
    let out = neardup()
        .current_dir(s.dir.path())
        .arg("eval")
        .arg(&corpus)
        .args(["--gold", "clusters.jsonl", "--level", "story", "--no-plots"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let table = stdout_of(&out);
    for expected in [
        "level: story; score: story (model probability); majority linkage clusters",
        "ARI",
        "B3 recall",
        "best F1: ",
    ] {
        assert!(table.contains(expected), "{expected}: {table}");
    }

    let refused = |extra: &[&str], message: &str| {
        let out = neardup()
            .current_dir(s.dir.path())
            .arg("eval")
            .arg(&corpus)
            .args(["--gold", "clusters.jsonl", "--no-plots"])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{extra:?}: a usage error");
        assert!(stderr_of(&out).contains(message), "{}", stderr_of(&out));
    };
    refused(&["--score", "story"], "--score story needs --level story");
    refused(
        &["--level", "story", "--score", "jaccard"],
        "the swept score is the story score",
    );
    refused(
        &["--level", "story", "--story-threshold", "0.5"],
        "eval sweeps the story threshold",
    );
}

/// On real data: the story-level sweep over the BBC labels. The figures depend on the
/// committed model, so only their structure and plausibility are checked.
#[test]
fn bbc_same_story_pairs_at_the_story_level() {
    let Some(data) = data_dir() else { return };
    let data = data.canonicalize().unwrap();
    let s = Scratch::new();
    let out = neardup()
        .current_dir(s.dir.path())
        .arg("eval")
        .arg(data.join("bbc-news.jsonl"))
        .arg("--gold")
        .arg(data.join("labels/bbc-same-story.jsonl"))
        .args([
            "--level",
            "story",
            "--min-threshold",
            "0.05",
            "--format",
            "json",
            "--plots",
            "charts",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["documents"], 2225);
    assert_eq!(r["settings"]["level"], "story");
    assert_eq!(r["gold"]["positives"], 74);
    let rows = r["thresholds"].as_array().unwrap();
    assert_eq!(rows.len(), 20, "0.05 to 1.00 by 0.05");
    let candidates = rows[0]["candidates"].as_u64().unwrap();
    for row in rows {
        assert_eq!(row["candidates"].as_u64().unwrap(), candidates);
        let missed = &row["missed"];
        let reasons = missed["not_candidate"].as_u64().unwrap()
            + missed["split_by_clustering"].as_u64().unwrap()
            + missed["below_threshold"].as_u64().unwrap();
        assert_eq!(reasons, row["false_negatives"].as_u64().unwrap());
    }
    // Fewer pairs reach a higher threshold.
    let verified: Vec<u64> = rows
        .iter()
        .map(|r| r["verified"].as_u64().unwrap())
        .collect();
    assert!(verified.windows(2).all(|w| w[0] >= w[1]), "{verified:?}");
    let f1 = r["best_f1"]["f_beta"].as_f64().unwrap();
    let t = r["best_f1"]["threshold"].as_f64().unwrap();
    let precision = r["best_f1"]["precision"].as_f64().unwrap();
    eprintln!("bbc story-level sweep: best F1 {f1} at {t} (precision {precision})");
    assert!(f1 > 0.6, "best F1 {f1}");
    assert!((0.05..0.95).contains(&t), "best threshold {t}");
    let copies = r["explained"]["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "copy")
        .unwrap();
    assert_eq!(copies["clustered"], copies["pairs"], "copies share a story");
    assert!(s.path("charts/eval-sweep.png").exists() && s.path("charts/eval-scores.svg").exists());
}

/// The small print of `params`, `eval` and `stats merge`: numbers as people write them,
/// singular nouns for one, and a setting named as given.
#[test]
fn params_eval_and_stats_say_it_plainly() {
    let run = |args: &[&str]| neardup().args(args).output().unwrap();
    let story = stdout_of(&run(&["params", "--level", "story", "--no-plots"]));
    assert!(story.contains("estimate reaches 0.15\n"), "{story}");
    let one_row = stdout_of(&run(&["params", "-t", "0.01", "--no-plots"]));
    assert!(one_row.contains(": 128 bands x 1 row ("), "{one_row}");
    let out = run(&["params", "--rows", "200", "--no-plots"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("rows (200) must be at least 1 and at most num-perm (128)"),
        "{}",
        stderr_of(&out)
    );

    // Only different-story pairs in the gold: F1 is undefined, not 0.
    let s = Scratch::new();
    s.write(
        "gold.jsonl",
        "{\"a\": \"rate-1\", \"b\": \"rate-2\", \"same_story\": false}\n",
    );
    let out = neardup()
        .current_dir(s.dir.path())
        .arg("eval")
        .arg(corpus(&s))
        .args(["--gold", "gold.jsonl", "--no-plots"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let table = stdout_of(&out);
    assert!(
        table.contains("best F1: undefined (the gold has no same-story pair"),
        "{table}"
    );
    let r = eval_json_of(&s, &corpus(&s), &["--gold", "gold.jsonl"]);
    assert_eq!(r["best_f1"], serde_json::Value::Null);

    // One statistics file twice would count its documents twice.
    let stats = s.path("news.stats");
    let out = neardup()
        .args(["stats", "count", "-q", "-o"])
        .arg(&stats)
        .arg(corpus(&s))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    // A hard link is the same file too (paths made canonical did not see it).
    std::fs::hard_link(&stats, s.path("linked.stats")).unwrap();
    for again in ["./news.stats", "linked.stats"] {
        let out = neardup()
            .current_dir(s.dir.path())
            .args(["stats", "merge", "news.stats", again, "-o", "all.stats"])
            .output()
            .unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!("news.stats and {again} are the same file")),
            "{err}"
        );
    }
    assert!(!s.path("all.stats").exists());
}

/// eval's refused flag values are usage errors (exit 2) before anything is read, as every
/// command's are; they exited 1, as a failed run, after the whole run for some.
#[test]
fn eval_flag_values_out_of_range_are_usage_errors() {
    let s = Scratch::new();
    s.write("gold.jsonl", PAIRS);
    let input = corpus(&s);
    for (args, message) in [
        (vec!["--max-threshold", "1.5"], "'--max-threshold <T>'"),
        (
            vec!["--min-threshold", "0.6", "--max-threshold", "0.4"],
            "0 < min (0.6) <= max (0.4) <= 1",
        ),
        // Swept thresholds are kept to four decimals: nothing finer is taken.
        (
            vec!["--step", "0"],
            "'--step <STEP>': must be a number from 0.0001 to 1",
        ),
        (
            vec!["--step", "0.00001"],
            "'--step <STEP>': must be a number from 0.0001 to 1",
        ),
        (
            vec!["--step", "-0.1"],
            "invalid value '-0.1' for '--step <STEP>': must be a number from 0.0001 to 1",
        ),
        (
            vec!["--min-threshold", "0.00002"],
            "'--min-threshold <T>': must be a number from 0.0001 to 1",
        ),
        (vec!["--bins", "0"], "'--bins <N>'"),
        (vec!["--beta=-1"], "'--beta <BETA>'"),
        // Its square overflowed: every F-beta was NaN.
        (
            vec!["--beta", "1e200"],
            "'--beta <BETA>': must be a number from 0.000001 to 1000000",
        ),
        (vec!["--explain-at", "0"], "'--explain-at <T>'"),
    ] {
        refused_as_usage(
            neardup()
                .current_dir(s.dir.path())
                .arg("eval")
                .arg(&input)
                .args(["--gold", "gold.jsonl", "--no-plots"])
                .args(&args),
            message,
        );
    }
}
