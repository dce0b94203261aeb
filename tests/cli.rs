//! The command line end to end: inputs, formats, commands.

use crate::util::*;

#[test]
fn clusters_the_shipped_fixtures_without_errors() {
    let out = neardup()
        .args(["cluster", "--threshold", "0.05"])
        .arg(fixtures())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let clusters = json_lines(&stdout_of(&out));
    // Only 003 and 004 share verbatim quotes; at word-5-gram level the others are apart.
    assert_eq!(clusters.len(), 1);
    assert_eq!(clusters[0]["members"].as_array().unwrap().len(), 2);
    assert_eq!(clusters[0]["schema_version"], 1);
}

#[test]
fn cluster_records_carry_metadata_and_cohesion() {
    let s = Scratch::new();
    let f = s.write(
        "in.jsonl",
        [
            serde_json::json!({"id": "b", "title": "Rates up", "date": "2024-03-02", "text": RATE_COPY}),
            serde_json::json!({"id": "a", "title": "Rates", "date": "2024-03-01", "url": "https://x/a", "text": RATE}),
            serde_json::json!({"id": "c", "text": STORM}),
        ]
        .map(|v| v.to_string() + "\n")
        .concat(),
    );
    let out = neardup().arg("cluster").arg(&f).output().unwrap();
    assert!(out.status.success());
    // The raw bytes: field order and number formatting are part of the contract.
    insta::assert_snapshot!(stdout_of(&out));
}

#[test]
fn pairs_in_every_format() {
    let s = Scratch::new();
    let f = s.jsonl("in.jsonl", &good_records());
    let jsonl = stdout_of(&neardup().arg("pairs").arg(&f).output().unwrap());
    let pairs = json_lines(&jsonl);
    assert_eq!(pairs.len(), 2);
    assert_eq!(
        (pairs[0]["a"].as_str(), pairs[0]["b"].as_str()),
        (Some("rate-1"), Some("rate-2"))
    );
    for field in [
        "estimated_jaccard",
        "jaccard",
        "containment_a_in_b",
        "containment_b_in_a",
    ] {
        let v = pairs[0][field].as_f64().unwrap();
        assert!((0.5..=1.0).contains(&v), "{field} = {v}");
    }
    let json: serde_json::Value = serde_json::from_slice(
        &neardup()
            .args(["pairs", "--format", "json"])
            .arg(&f)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(json.as_array().unwrap(), &pairs);
    let csv = stdout_of(
        &neardup()
            .args(["pairs", "--format", "csv"])
            .arg(&f)
            .output()
            .unwrap(),
    );
    assert!(csv.starts_with(
        "a,b,jaccard,estimated_jaccard,containment_a_in_b,containment_b_in_a\nrate-1,rate-2,"
    ));
    assert_eq!(csv.lines().count(), 3);
    let table = stdout_of(
        &neardup()
            .args(["pairs", "--format", "table"])
            .arg(&f)
            .output()
            .unwrap(),
    );
    assert!(table.contains("rate-1") && table.contains("storm-2"));
}

/// A tab or newline in an id is escaped in a table, where it would shift the columns
/// after it (or break the row), and kept as it is in JSON and CSV.
#[test]
fn control_characters_in_ids_are_escaped_in_tables_only() {
    let s = Scratch::new();
    let f = s.jsonl(
        "in.jsonl",
        &[
            ("rate\t1", RATE),
            ("rate\n2", RATE_COPY),
            ("storm\u{1b}", STORM),
        ],
    );
    let run = |command: &str, format: &str| {
        let out = neardup()
            .args([command, "-q", "--format", format])
            .arg(&f)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        stdout_of(&out)
    };
    for command in ["pairs", "cluster"] {
        let table = run(command, "table");
        assert!(
            !table.contains(['\t', '\u{1b}']) && table.contains("rate\\t1"),
            "{command}:\n{table}"
        );
        assert!(table.contains("rate\\n2"), "{command}:\n{table}");
        // Every line of the table is as wide as the others.
        let widths: Vec<usize> = table.lines().map(|l| l.chars().count()).collect();
        assert!(
            widths.windows(2).all(|w| w[0] == w[1]),
            "{command}:\n{table}"
        );
    }
    let pairs = json_lines(&run("pairs", "jsonl"));
    assert_eq!(
        (pairs[0]["a"].as_str(), pairs[0]["b"].as_str()),
        (Some("rate\t1"), Some("rate\n2"))
    );
    let csv = run("pairs", "csv");
    assert!(csv.contains("rate\t1,\"rate\n2\""), "{csv}");
}

#[test]
fn reads_directories_stdin_and_compressed_inputs() {
    let s = Scratch::new();
    s.write("docs/a/one.txt", RATE);
    s.write("docs/b/two.txt", RATE_COPY);
    s.write("docs/ignored.md", RATE);
    let out = neardup().arg("pairs").arg(s.path("docs")).output().unwrap();
    let pairs = json_lines(&stdout_of(&out));
    assert_eq!(pairs.len(), 1, "{}", stderr_of(&out));
    assert_eq!(pairs[0]["a"], "a/one.txt");
    assert_eq!(pairs[0]["b"], "b/two.txt");

    let records: String = good_records()
        .iter()
        .map(|(id, t)| serde_json::json!({"id": id, "text": t}).to_string() + "\n")
        .collect();
    let from_stdin = neardup()
        .args(["pairs", "-"])
        .write_stdin(records.clone())
        .output()
        .unwrap();
    assert_eq!(json_lines(&stdout_of(&from_stdin)).len(), 2);
    let gz = s.write("in.jsonl.gz", gzip(records.as_bytes()));
    let zst = s.write(
        "in.jsonl.zst",
        zstd::encode_all(records.as_bytes(), 3).unwrap(),
    );
    // Compression is detected from the bytes, not the name.
    let disguised = s.write("in.data", gzip(records.as_bytes()));
    for f in [&gz, &zst, &disguised] {
        let out = neardup().arg("pairs").arg(f).output().unwrap();
        assert!(out.status.success(), "{}: {}", f.display(), stderr_of(&out));
        assert_eq!(json_lines(&stdout_of(&out)).len(), 2, "{}", f.display());
    }

    // A directory's JSON Lines files are read too (an archive split into parts), with
    // its .txt documents; files named otherwise are skipped, and a run that finds no
    // input file at all says so instead of passing for an input without duplicates.
    let (head, tail) = records.split_at(records.find('\n').unwrap() + 1);
    s.write("archive/2024/part-1.jsonl", head);
    s.write("archive/2025/part-2.jsonl.gz", gzip(tail.as_bytes()));
    s.write("archive/notes/one.txt", RATE);
    s.write("archive/_SUCCESS", "");
    let out = neardup()
        .args(["pairs", "-q"])
        .arg(s.path("archive"))
        .output()
        .unwrap();
    assert!(
        out.status.success() && stderr_of(&out).is_empty(),
        "{}",
        stderr_of(&out)
    );
    // rate-1 (the first part), rate-2 and the storms (the second), the .txt document.
    let pairs = json_lines(&stdout_of(&out));
    assert_eq!(pairs.len(), 4, "{}", stdout_of(&out));
    assert_eq!(
        (&pairs[0]["a"], &pairs[0]["b"]),
        (&"notes/one.txt".into(), &"rate-1".into())
    );
    // Without -q, the skipped files are counted and the first named, by the batch
    // commands and by 'index add'.
    s.write("archive/2025/readme.md", "# not an input");
    s.write("archive/.DS_Store", "hidden: not counted");
    s.write("archive/.git/HEAD", "hidden: not counted");
    // A named pipe is never opened (it would block the run), but said so.
    s.fifo("archive/2025/pipe.txt");
    s.fifo("archive/.pipe.txt");
    let skipped = |err: &str| {
        assert!(
            err.contains("note: 2 files in the input directories were not read")
                && err.contains(&format!(
                    "e.g. {}",
                    s.path("archive/2025/readme.md").display()
                )),
            "{err}"
        );
        assert!(
            err.contains(&format!(
                "note: 1 entry in the input directories was not read, being neither a file \
                 nor a directory (a named pipe, socket or device; e.g. {})",
                s.path("archive/2025/pipe.txt").display()
            )),
            "{err}"
        );
    };
    let out = neardup()
        .arg("cluster")
        .arg(s.path("archive"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    skipped(&stderr_of(&out));
    let idx = s.path("archive.idx");
    let created = neardup()
        .args(["index", "create", "-q"])
        .arg(&idx)
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", stderr_of(&created));
    let out = neardup()
        .args(["index", "add"])
        .arg(&idx)
        .arg(s.path("archive"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    skipped(&stderr_of(&out));
    assert_eq!(
        json_lines(&stdout_of(&out)).len(),
        5,
        "four records and one document"
    );
    s.write("spark-output/part-00000", &records);
    for command in [&["pairs"][..], &["pairs", "-q"], &["index", "add", "-q"]] {
        let mut run = neardup();
        run.args(command);
        if command[0] == "index" {
            run.arg(&idx);
        }
        let out = run.arg(s.path("spark-output")).output().unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        assert!(
            stderr_of(&out).contains("warning: no input file was found"),
            "{command:?}: {}",
            stderr_of(&out)
        );
    }
    let out = neardup()
        .args(["pairs", "-q", "--input-format", "jsonl"])
        .arg(s.path("spark-output"))
        .output()
        .unwrap();
    assert_eq!(json_lines(&stdout_of(&out)).len(), 2, "{}", stderr_of(&out));
}

/// An output that is a file the run reads is refused before the run: renamed over it at
/// the end, it replaced the input (`dedup feed.jsonl --report feed.jsonl` left the
/// corpus an empty report). Through a symbolic link and inside an input directory too.
#[test]
fn an_output_naming_an_input_is_refused() {
    let s = Scratch::new();
    let input = s.jsonl("feed.jsonl", &good_records());
    let original = std::fs::read_to_string(&input).unwrap();
    let inner = s.jsonl("dir/inner.jsonl", &good_records());
    let gold = s.write(
        "gold.jsonl",
        "{\"a\":\"rate-1\",\"b\":\"rate-2\",\"label\":1}\n",
    );
    let link = s.path("link.jsonl");
    std::os::unix::fs::symlink(&input, &link).unwrap();
    let dir = s.path("dir");
    let cases: Vec<(Vec<&std::ffi::OsStr>, &std::path::Path)> = vec![
        (
            vec![
                "dedup".as_ref(),
                input.as_ref(),
                "--report".as_ref(),
                input.as_ref(),
            ],
            &input,
        ),
        (
            vec![
                "dedup".as_ref(),
                input.as_ref(),
                "--rejects".as_ref(),
                link.as_ref(),
            ],
            &input,
        ),
        (
            vec![
                "cluster".as_ref(),
                input.as_ref(),
                "-o".as_ref(),
                input.as_ref(),
            ],
            &input,
        ),
        (
            vec![
                "pairs".as_ref(),
                link.as_ref(),
                "-o".as_ref(),
                input.as_ref(),
            ],
            &input,
        ),
        (
            vec![
                "dedup".as_ref(),
                dir.as_ref(),
                "-o".as_ref(),
                inner.as_ref(),
            ],
            &inner,
        ),
        (
            vec![
                "eval".as_ref(),
                input.as_ref(),
                "--gold".as_ref(),
                gold.as_ref(),
                "--no-plots".as_ref(),
                "-o".as_ref(),
                gold.as_ref(),
            ],
            &gold,
        ),
    ];
    for (args, victim) in cases {
        let before = std::fs::read(victim).unwrap();
        let out = neardup().args(&args).output().unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("the output would replace it"),
            "{args:?}: {err}"
        );
        assert_eq!(std::fs::read(victim).unwrap(), before, "{args:?}");
    }
    assert_eq!(std::fs::read_to_string(&input).unwrap(), original);
}

/// Two outputs naming one file are refused before the run, whatever the spelling (a
/// relative detour, a symbolic link); the file already there is left as it was. Before,
/// `dedup -o kept.jsonl --report kept.jsonl` replaced the kept records with the report.
/// /dev/null may take several.
#[test]
fn two_outputs_naming_one_file_are_refused() {
    let s = Scratch::new();
    let input = s.jsonl("in.jsonl", &good_records());
    let kept = s.write("kept.jsonl", "what was there\n");
    std::fs::create_dir(s.path("sub")).unwrap();
    let detour = s.path("sub/../kept.jsonl");
    let link = s.path("link.jsonl");
    std::os::unix::fs::symlink(&kept, &link).unwrap();
    for (command, flags) in [
        ("dedup", vec!["-o", "A", "--report", "B"]),
        ("dedup", vec!["-o", "A", "--rejects", "B"]),
        ("dedup", vec!["--report", "A", "--rejects", "B"]),
        (
            "cluster",
            vec!["--level", "story", "-o", "A", "--stats-out", "B"],
        ),
        (
            "pairs",
            vec!["-o", "A", "--stats-out", "B", "--level", "story"],
        ),
    ] {
        for (a, b) in [(&kept, &kept), (&kept, &detour), (&link, &kept)] {
            let args: Vec<&std::ffi::OsStr> = flags
                .iter()
                .map(|&f| match f {
                    "A" => a.as_os_str(),
                    "B" => b.as_os_str(),
                    f => std::ffi::OsStr::new(f),
                })
                .collect();
            let out = neardup()
                .arg(command)
                .args(&args)
                .arg(&input)
                .output()
                .unwrap();
            let err = stderr_of(&out);
            assert_eq!(out.status.code(), Some(1), "{command} {args:?}: {err}");
            assert!(
                err.contains("each output needs a file of its own"),
                "{command} {args:?}: {err}"
            );
            assert_eq!(std::fs::read_to_string(&kept).unwrap(), "what was there\n");
        }
    }
    // A link to a file not there yet: writing through it creates the file it names.
    let dangling = s.path("dangling.jsonl");
    std::os::unix::fs::symlink(s.path("new.jsonl"), &dangling).unwrap();
    let out = neardup()
        .args(["dedup", "-o"])
        .arg(&dangling)
        .arg("--report")
        .arg(s.path("new.jsonl"))
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(!s.path("new.jsonl").exists());
    let out = neardup()
        .args(["dedup", "-q", "-o", "/dev/null", "--report", "/dev/null"])
        .arg(&input)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));

    // '-' is standard output, as it is standard input for inputs: for -o and --report,
    // one of them at a time (an absent -o is standard output), never for a file-only
    // output; and no file named '-' appears.
    let out = neardup()
        .current_dir(s.dir.path())
        .args(["pairs", "-q", "-o", "-"])
        .arg(&input)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stdout_of(&out).contains("\"rate-1\""),
        "{}",
        stdout_of(&out)
    );
    assert!(!s.path("-").exists());
    for (flags, says) in [
        (
            vec!["--report", "-"],
            "-o and --report would both go to standard output",
        ),
        (
            vec!["-o", "-", "--report", "-"],
            "-o and --report would both go to standard output",
        ),
        (
            vec!["-o", "k.jsonl", "--rejects", "-"],
            "--rejects writes a file",
        ),
        (
            vec!["--level", "story", "--stats-out", "-"],
            "--stats-out writes a file",
        ),
    ] {
        let out = neardup()
            .current_dir(s.dir.path())
            .arg("dedup")
            .args(&flags)
            .arg(&input)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{flags:?}");
        assert!(
            stderr_of(&out).contains(says),
            "{flags:?}: {}",
            stderr_of(&out)
        );
    }
    let out = neardup()
        .current_dir(s.dir.path())
        .args(["dedup", "-q", "-o", "kept-too.jsonl", "--report", "-"])
        .arg(&input)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(s.path("kept-too.jsonl").exists() && !s.path("-").exists());
}

#[test]
fn outputs_named_gz_or_zst_are_compressed() {
    let s = Scratch::new();
    let records: String = good_records()
        .iter()
        .map(|(id, t)| serde_json::json!({"id": id, "text": t}).to_string() + "\n")
        .collect();
    let corpus = s.write("corpus.jsonl", records);
    let decompressed = |path: &std::path::Path| -> String {
        let bytes = std::fs::read(path).unwrap();
        let raw = if path.to_string_lossy().ends_with(".gz") {
            assert_eq!(bytes[..2], [0x1f, 0x8b], "{}", path.display());
            let mut text = Vec::new();
            std::io::Read::read_to_end(
                &mut flate2::read::MultiGzDecoder::new(&bytes[..]),
                &mut text,
            )
            .unwrap();
            text
        } else {
            zstd::decode_all(&bytes[..]).unwrap()
        };
        String::from_utf8(raw).unwrap()
    };
    for (command, name) in [
        ("dedup", "kept.jsonl.gz"),
        ("cluster", "clusters.jsonl.zst"),
        ("pairs", "pairs.csv.gz"),
    ] {
        let mut plain = neardup();
        plain.args([command, "-q"]).arg(&corpus);
        if name.contains(".csv") {
            plain.args(["--format", "csv"]);
        }
        let expected = stdout_of(&plain.output().unwrap());
        assert!(!expected.is_empty(), "{command}");
        let path = s.path(name);
        let mut written = neardup();
        written
            .args([command, "-q"])
            .arg(&corpus)
            .arg("-o")
            .arg(&path);
        if name.contains(".csv") {
            written.args(["--format", "csv"]);
        }
        let out = written.output().unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        assert_eq!(decompressed(&path), expected, "{command} -o {name}");
    }
    // Statistics written compressed are read back whatever their name.
    let stats = s.path("corpus.stats.gz");
    let out = neardup()
        .args(["stats", "count", "-q"])
        .arg(&corpus)
        .arg("-o")
        .arg(&stats)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let shown = neardup()
        .args(["stats", "show"])
        .arg(&stats)
        .output()
        .unwrap();
    assert!(shown.status.success(), "{}", stderr_of(&shown));
    assert!(
        stdout_of(&shown).contains("documents"),
        "{}",
        stdout_of(&shown)
    );
}

/// A file given by name whose name says neither text nor JSON Lines (a CSV export) is
/// read as one document: said in a note, since a user who meant records got one.
#[test]
fn a_file_read_as_one_text_document_by_its_content_is_noted() {
    let s = Scratch::new();
    let csv = s.write(
        "articles.csv",
        "id,text\n1,one two three\n2,four five six\n",
    );
    let plain = s.write("notes", "a note without an extension");
    let records = s.jsonl("records.data", &[("a", RATE)]);
    let out = neardup()
        .arg("cluster")
        .arg(&csv)
        .arg(&plain)
        .arg(&records)
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("3 documents"), "{err}");
    assert!(
        err.contains("articles.csv and 1 other file were each read as one text document")
            && err.contains("--input-format jsonl"),
        "{err}"
    );
    let out = neardup()
        .args(["cluster", "--input-format", "text"])
        .arg(&csv)
        .output()
        .unwrap();
    assert!(
        !stderr_of(&out).contains("read as one text document"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn several_inputs_in_one_run() {
    let s = Scratch::new();
    let a = s.jsonl("a.jsonl", &[("rate-1", RATE), ("storm-1", STORM)]);
    let b = s.jsonl("b.jsonl", &[("rate-2", RATE_COPY)]);
    s.write("docs/storm-2.txt", STORM_COPY);
    let out = neardup()
        .arg("pairs")
        .arg(&a)
        .arg(&b)
        .arg(s.path("docs"))
        .output()
        .unwrap();
    let pairs = json_lines(&stdout_of(&out));
    let ids: Vec<_> = pairs
        .iter()
        .map(|p| (p["a"].as_str().unwrap(), p["b"].as_str().unwrap()))
        .collect();
    assert_eq!(ids, [("rate-1", "rate-2"), ("storm-1", "storm-2.txt")]);
}

#[test]
fn custom_field_names() {
    let s = Scratch::new();
    let f = s.write(
        "in.jsonl",
        [
            serde_json::json!({"uid": 1, "body": RATE}),
            serde_json::json!({"uid": 2, "body": RATE_COPY}),
        ]
        .map(|v| v.to_string() + "\n")
        .concat(),
    );
    let out = neardup()
        .args(["pairs", "--id-field", "uid", "--text-field", "body"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(json_lines(&stdout_of(&out))[0]["a"], "1");
}

#[test]
fn chinese_text_without_spaces_still_shingles() {
    let s = Scratch::new();
    let story = "中国人民银行周二宣布将基准利率下调零点二五个百分点，这是今年以来的第二次降息，旨在支持经济增长并稳定市场信心。";
    let copy = "中国人民银行周二宣布将基准利率下调零点二五个百分点，这是今年以来第二次降息，旨在支持经济增长和稳定市场信心。";
    let other = "强烈的暴风雨导致北部地区的学校和道路连续第二天关闭，数千户家庭断电，工人们正在清理倒下的树木。";
    let f = s.jsonl(
        "zh.jsonl",
        &[("zh-1", story), ("zh-2", copy), ("zh-3", other)],
    );
    let out = neardup()
        .args(["pairs", "--threshold", "0.4"])
        .arg(&f)
        .output()
        .unwrap();
    let pairs = json_lines(&stdout_of(&out));
    assert_eq!(pairs.len(), 1, "{pairs:?}");
    assert_eq!(
        (pairs[0]["a"].as_str(), pairs[0]["b"].as_str()),
        (Some("zh-1"), Some("zh-2"))
    );
    assert!(pairs[0]["jaccard"].as_f64().unwrap() > 0.4);
    let chars = neardup()
        .args(["pairs", "--shingle", "chars:3", "--threshold", "0.4"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(json_lines(&stdout_of(&chars)).len(), 1);
}

#[test]
fn dedup_writes_records_untouched_minus_duplicates() {
    let s = Scratch::new();
    let lines = [
        r#"{"id":"rate-late","date":"2024-03-02","text":"RATE_COPY","extra":{"keep":  "spacing"}}"#
            .replace("RATE_COPY", RATE_COPY),
        r#"{"id":"storm","text":"STORM"}"#.replace("STORM", STORM),
        "{not json".to_string(),
        r#"{"id":"rate-early","date":"2024-03-01","text":"RATE"}"#.replace("RATE", RATE),
        r#"{"id":"empty","text":""}"#.to_string(),
    ];
    let input = s.write("in.jsonl", lines.join("\n") + "\n");
    let (kept, report, rejects) = (
        s.path("kept.jsonl"),
        s.path("dropped.jsonl"),
        s.path("rejects.jsonl"),
    );
    let out = neardup()
        .args(["dedup", "-o"])
        .arg(&kept)
        .arg("--report")
        .arg(&report)
        .arg("--rejects")
        .arg(&rejects)
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "bad records were present: {}",
        stderr_of(&out)
    );
    let kept_text = std::fs::read_to_string(&kept).unwrap();
    // Byte for byte, input order, the later near-copy dropped, the empty record kept.
    assert_eq!(
        kept_text,
        [&lines[1], &lines[3], &lines[4]]
            .map(|l| l.to_string() + "\n")
            .concat()
    );
    assert_eq!(std::fs::read_to_string(&rejects).unwrap(), "{not json\n");
    let dropped = json_lines(&std::fs::read_to_string(&report).unwrap());
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0]["id"], "rate-late");
    assert_eq!(dropped[0]["kept"], "rate-early");
    assert!(dropped[0]["jaccard_with_kept"].as_f64().unwrap() > 0.5);
    assert!(
        dropped[0]["location"]
            .as_str()
            .unwrap()
            .ends_with("in.jsonl:1")
    );
    assert!(
        stderr_of(&out).contains("dedup kept 3 records, dropped 1"),
        "{}",
        stderr_of(&out)
    );
}

/// dedup copies each record with its own line ending: CRLF records were written with LF.
/// The kept records, the rejected lines (an oversized one too) and a last line without an
/// ending (given a newline) are the input's bytes.
#[test]
fn dedup_keeps_each_records_line_ending() {
    let s = Scratch::new();
    let long = format!(r#"{{"id":"long","text":"{}"}}"#, "word ".repeat(400));
    let lines = [
        serde_json::json!({"id": "rate-late", "date": "2024-03-02", "text": RATE_COPY}).to_string(),
        serde_json::json!({"id": "storm", "text": STORM}).to_string(),
        "{not json".to_string(),
        long,
        serde_json::json!({"id": "rate-early", "date": "2024-03-01", "text": RATE}).to_string(),
        serde_json::json!({"id": "mixed", "text": "a line ending in LF alone"}).to_string(),
        serde_json::json!({"id": "last", "text": "the last line has no line ending"}).to_string(),
    ];
    let endings = ["\r\n", "\r\n", "\r\n", "\r\n", "\r\n", "\n", ""];
    let input: String = lines
        .iter()
        .zip(endings)
        .map(|(l, e)| format!("{l}{e}"))
        .collect();
    let input = s.write("in.jsonl", input);
    let (kept, rejects) = (s.path("kept.jsonl"), s.path("rejects.jsonl"));
    let out = neardup()
        .args(["dedup", "-q", "--max-record-bytes", "1000", "-o"])
        .arg(&kept)
        .arg("--rejects")
        .arg(&rejects)
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert_eq!(
        std::fs::read_to_string(&kept).unwrap(),
        format!(
            "{}\r\n{}\r\n{}\n{}\n",
            lines[1], lines[4], lines[5], lines[6]
        )
    );
    assert_eq!(
        std::fs::read_to_string(&rejects).unwrap(),
        format!("{}\r\n{}\r\n", lines[2], lines[3])
    );
}

#[test]
fn dedup_drops_a_repeated_id_with_the_same_text_and_rejects_one_with_other_text() {
    let s = Scratch::new();
    let first = [
        serde_json::json!({"id": "storm", "text": STORM}).to_string(),
        serde_json::json!({"id": "rate", "text": RATE}).to_string(),
    ];
    // Re-delivered: the same storm text (other case and punctuation), a new rate text.
    let again = [
        serde_json::json!({"id": "storm", "text": STORM.to_uppercase().replace('.', "!")})
            .to_string(),
        serde_json::json!({"id": "rate", "text": "An unrelated text under a reused id."})
            .to_string(),
    ];
    let a = s.write("a.jsonl", first.join("\n") + "\n");
    let b = s.write("b.jsonl", again.join("\n") + "\n");
    for level in ["near-copy", "story"] {
        let (kept, rejects) = (s.path("kept.jsonl"), s.path("rejects.jsonl"));
        let report = s.path("report.jsonl");
        let out = neardup()
            .args(["dedup", "--level", level, "-o"])
            .arg(&kept)
            .arg("--rejects")
            .arg(&rejects)
            .arg("--report")
            .arg(&report)
            .args([&a, &b])
            .output()
            .unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_eq!(
            std::fs::read_to_string(&kept).unwrap(),
            first.clone().map(|l| l + "\n").concat(),
            "{level}"
        );
        assert_eq!(
            std::fs::read_to_string(&rejects).unwrap(),
            again[1].clone() + "\n",
            "{level}"
        );
        let dropped = if level == "story" {
            "same-story duplicate"
        } else {
            "near-duplicate"
        };
        assert!(
            err.contains(&format!("dropped 1 {dropped} (1 repeating an earlier record's id and text), rejected 0 malformed and 1 repeating")),
            "{level}: {err}"
        );
        // The report names every dropped record, the repeat too.
        let dropped = json_lines(&std::fs::read_to_string(&report).unwrap());
        assert_eq!(dropped.len(), 1, "{level}: {dropped:?}");
        let d = &dropped[0];
        assert_eq!(
            (
                d["id"].as_str(),
                d["kept"].as_str(),
                d["best_match"].as_str(),
                d["reason"].as_str(),
                d["cluster"].is_null()
            ),
            (
                Some("storm"),
                Some("storm"),
                Some("storm"),
                Some("repeated_id"),
                true
            ),
            "{level}"
        );
        assert!(d["location"].as_str().unwrap().ends_with("b.jsonl:1"));
    }
}

/// A record without a usable text is written unchanged but owns its id: a later record
/// with that id, with text or without, is a repeat (rejected, so output ids stay unique),
/// as is one without text repeating a document's id. `cluster` leaves the same records out.
/// Records without a usable id repeat nothing.
#[test]
fn dedup_keeps_ids_unique_across_records_without_a_usable_text() {
    let s = Scratch::new();
    let lines = [
        serde_json::json!({"id": "empty", "text": ""}),
        serde_json::json!({"id": "rate", "text": RATE}),
        serde_json::json!({"id": "empty", "text": RATE_COPY}),
        serde_json::json!({"id": "rate", "text": "  "}),
        serde_json::json!({"id": 7}),
        serde_json::json!({"id": 7, "text": ""}),
        serde_json::json!({"id": null, "text": STORM}),
        serde_json::json!({"id": null, "text": STORM}),
        serde_json::json!({"id": "storm", "text": STORM_COPY}),
    ]
    .map(|v| v.to_string());
    let input = s.write("in.jsonl", lines.clone().map(|l| l + "\n").concat());
    let at = |n: usize| format!("{}:{n}", input.display());
    for level in ["near-copy", "story"] {
        let (kept, rejects) = (s.path("kept.jsonl"), s.path("rejects.jsonl"));
        let out = neardup()
            .args(["dedup", "--level", level, "-o"])
            .arg(&kept)
            .arg("--rejects")
            .arg(&rejects)
            .arg(&input)
            .output()
            .unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{level}: {err}");
        let written = |numbers: &[usize]| {
            numbers
                .iter()
                .map(|&n| lines[n - 1].clone() + "\n")
                .collect::<String>()
        };
        assert_eq!(
            std::fs::read_to_string(&kept).unwrap(),
            written(&[1, 2, 5, 7, 8, 9]),
            "{level}"
        );
        assert_eq!(
            std::fs::read_to_string(&rejects).unwrap(),
            written(&[3, 4, 6]),
            "{level}"
        );
        for (repeat, first, id) in [(3, 1, "\"empty\""), (4, 2, "\"rate\""), (6, 5, "\"7\"")] {
            let warning = format!(
                "{}: duplicate id {id} (first seen at {})",
                at(repeat),
                at(first)
            );
            assert!(err.contains(&warning), "{level}: {warning}\n{err}");
        }
        assert!(
            err.contains("rejected 0 malformed and 3 repeating an earlier record's id"),
            "{level}: {err}"
        );
    }
    // `cluster` leaves out the same repeats: the rate copy under the id "empty" is in no
    // cluster.
    let out = neardup().arg("cluster").arg(&input).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        json_lines(&stdout_of(&out)),
        Vec::<serde_json::Value>::new()
    );
    assert!(stderr_of(&out).contains(&format!("{}: duplicate id \"empty\"", at(3))));
}

/// A repeat of a record that is itself a near-duplicate is dropped in favour of what its
/// first record's cluster keeps, and the report says so.
#[test]
fn dedup_report_of_a_repeat_names_what_its_first_record_gave_way_to() {
    let s = Scratch::new();
    let records = [("rate", RATE), ("rate-copy", RATE_COPY), ("storm", STORM)];
    let a = s.jsonl("a.jsonl", &records);
    // "rate-copy" is longer and kept; "rate" gives way to it, and so does its repeat.
    let b = s.jsonl("b.jsonl", &[("rate", RATE)]);
    let report = s.path("report.jsonl");
    let out = neardup()
        .args(["dedup", "-q", "--threshold", "0.5", "--report"])
        .arg(&report)
        .args([&a, &b])
        .output()
        .unwrap();
    let kept: Vec<String> = json_lines(&stdout_of(&out))
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let dropped = json_lines(&std::fs::read_to_string(&report).unwrap());
    let kept_for_copy = dropped[0]["kept"].as_str().unwrap().to_string();
    assert!(kept.contains(&kept_for_copy) && kept.len() == 2, "{kept:?}");
    let summary: Vec<_> = dropped
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap(),
                d["reason"].as_str().unwrap(),
                d["kept"].as_str().unwrap(),
                d["cluster"].as_u64(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("rate", "near_duplicate", "rate-copy", Some(1)),
            ("rate", "repeated_id", "rate-copy", Some(1)),
        ]
    );
    assert_eq!(
        dropped[1]["jaccard_with_kept"], dropped[0]["jaccard_with_kept"],
        "the repeat has the first's shingles"
    );
    let csv = neardup()
        .args([
            "dedup",
            "-q",
            "--threshold",
            "0.5",
            "--report-format",
            "csv",
            "--report",
        ])
        .arg(&report)
        .args([&a, &b])
        .output()
        .unwrap();
    assert!(csv.status.code() == Some(2));
    let csv = std::fs::read_to_string(&report).unwrap();
    assert!(
        csv.lines().next().unwrap().ends_with(",location,reason"),
        "{csv}"
    );
    assert!(
        csv.lines().nth(2).unwrap().ends_with(",repeated_id"),
        "{csv}"
    );
}

/// `neardup sketch`: per document its band keys (one per band) and its exact shingle set,
/// from which a distributed run computes what `pairs` computes.
#[test]
fn sketch_writes_band_keys_and_the_exact_sets_pairs_uses() {
    use base64::Engine as _;
    let s = Scratch::new();
    let input = s.jsonl(
        "in.jsonl",
        &[("rate", RATE), ("rate-copy", RATE_COPY), ("storm", STORM)],
    );
    let out = neardup().arg("sketch").arg(&input).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("sketched 3 documents (34 bands x 3 rows)"));
    let sketches = json_lines(&stdout_of(&out));
    let ids: Vec<&str> = sketches.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["rate", "rate-copy", "storm"]);
    let set = |r: &serde_json::Value| -> Vec<u64> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(r["set"].as_str().unwrap())
            .unwrap();
        raw.chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    let bands = |r: &serde_json::Value| -> Vec<String> {
        r["bands"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_str().unwrap().to_string())
            .collect()
    };
    for r in &sketches {
        let keys = bands(r);
        assert_eq!(keys.len(), 34);
        assert!(
            keys.iter()
                .all(|k| k.len() == 16 && u64::from_str_radix(k, 16).is_ok())
        );
        let set = set(r);
        assert!(
            !set.is_empty() && set.windows(2).all(|w| w[0] < w[1]),
            "sorted, distinct"
        );
    }
    // The copies share a band key; their Jaccard from the sets is the one 'pairs' reports.
    let (a, b) = (&sketches[0], &sketches[1]);
    assert!(bands(a).iter().zip(bands(b)).any(|(x, y)| *x == y));
    let (sa, sb) = (set(a), set(b));
    let common = sa.iter().filter(|x| sb.binary_search(x).is_ok()).count();
    let jaccard = common as f64 / (sa.len() + sb.len() - common) as f64;
    let pairs = neardup().arg("pairs").arg(&input).output().unwrap();
    let pair = &json_lines(&stdout_of(&pairs))[0];
    assert_eq!(
        (pair["a"].as_str(), pair["b"].as_str()),
        (Some("rate"), Some("rate-copy"))
    );
    let reported = pair["jaccard"].as_f64().unwrap();
    assert!((jaccard - reported).abs() < 1e-4, "{jaccard} vs {reported}");
}

#[test]
fn dedup_from_stdin() {
    let records: String = good_records()
        .iter()
        .map(|(id, t)| serde_json::json!({"id": id, "text": t}).to_string() + "\n")
        .collect();
    let out = neardup()
        .args(["dedup", "-", "--quiet"])
        .write_stdin(records)
        .output()
        .unwrap();
    assert!(out.status.success());
    let kept = json_lines(&stdout_of(&out));
    let ids: Vec<_> = kept.iter().map(|r| r["id"].as_str().unwrap()).collect();
    // No dates: the longer text is kept; ties go to the smaller id.
    assert_eq!(ids.len(), 2, "{ids:?}");
}

#[test]
fn leader_mode_does_not_chain() {
    // a ~ b and b ~ c but a !~ c: connected mode makes one cluster, leader mode does not.
    let words: Vec<String> = (0..60).map(|i| format!("w{i}")).collect();
    let a = words[0..40].join(" ");
    let b = words[10..50].join(" ");
    let c = words[20..60].join(" ");
    let s = Scratch::new();
    let f = s.jsonl("in.jsonl", &[("a", &a), ("b", &b), ("c", &c)]);
    let run = |mode: &str, representative: &str| {
        let out = neardup()
            .args([
                "cluster",
                "--threshold",
                "0.4",
                "--mode",
                mode,
                "--representative",
                representative,
            ])
            .arg(&f)
            .output()
            .unwrap();
        json_lines(&stdout_of(&out))
    };
    let connected = run("connected", "first");
    assert_eq!(connected.len(), 1);
    assert_eq!(connected[0]["size"], 3);
    // a comes first and leads: b joins it, c is similar only to b and stays alone.
    let leader = run("leader", "first");
    assert_eq!(leader.len(), 1);
    assert_eq!(leader[0]["size"], 2, "{leader:?}");
    assert_eq!(leader[0]["representative"], "a");
    // b is the longest and leads: both a and c are similar to it.
    let leader = run("leader", "longest");
    assert_eq!(
        (
            leader[0]["size"].as_u64(),
            leader[0]["representative"].as_str()
        ),
        (Some(3), Some("b"))
    );
}

#[test]
fn help_teaches() {
    let out = neardup().args(["help", "cluster"]).output().unwrap();
    let help = stdout_of(&out);
    for needle in [
        "--threshold",
        "--shingle",
        "words:N",
        "--bucket-cap",
        "Examples:",
        "Exit codes",
    ] {
        assert!(help.contains(needle), "missing {needle:?} in help");
    }
}

#[test]
fn bad_settings_are_clear_errors() {
    let s = Scratch::new();
    let f = s.jsonl("in.jsonl", &good_records());
    let out = neardup()
        .args(["pairs", "--threshold", "1.5"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "usage error");
    assert!(
        stderr_of(&out).contains("invalid value '1.5' for '--threshold <T>'"),
        "{}",
        stderr_of(&out)
    );
    // One rule for every fractional flag, which the story flags now share: a value
    // between 0 and a millionth printed as 300 digits in the summary.
    for (args, message) in [
        (
            vec!["cluster", "--threshold", "1e-300"],
            "'--threshold <T>': must be a number above 0 and at most 1; the smallest above 0 \
             taken is 0.000001",
        ),
        (
            vec!["pairs", "--level", "story", "--story-threshold", "1.5"],
            "'--story-threshold <P>': must be a number from 0 to 1",
        ),
        (
            vec!["dedup", "--level", "story", "--story-candidates", "0"],
            "'--story-candidates <T>': must be a number above 0 and at most 1",
        ),
        (
            vec!["params", "--threshold", "nan"],
            "'--threshold <T>': must be a number above 0 and at most 1",
        ),
        // A negative value is refused by the flag's range (it was "unexpected argument
        // '-1'", as if it were a flag).
        (
            vec!["pairs", "--threshold", "-1"],
            "invalid value '-1' for '--threshold <T>': must be a number above 0",
        ),
        (
            vec!["cluster", "--num-perm", "-5"],
            "invalid value '-5' for '--num-perm <K>': must be a whole number from 1",
        ),
        (
            vec!["pairs", "--threshold", "-.5"],
            "invalid value '-.5' for '--threshold <T>': must be a number above 0",
        ),
        (
            vec!["eval", "--step", "-inf", "--gold", "g.jsonl"],
            "invalid value '-inf' for '--step <STEP>': must be a number from 0.0001 to 1",
        ),
        (
            vec!["pairs", "--bands", "-1"],
            "invalid value '-1' for '--bands <B>': must be a whole number from 1 to 65536",
        ),
        (
            vec!["cluster", "--seed", "-1"],
            "invalid value '-1' for '--seed <SEED>': must be a whole number from 0",
        ),
        (
            vec!["verify", "--threshold", "1e-300"],
            "'--threshold <T>': must be a number above 0 and at most 1; the smallest",
        ),
        (
            vec!["params", "--fp-weight", "inf"],
            "'--fp-weight <W>': must be a number from 0 to 1000000",
        ),
        (
            vec!["params", "--step", "0.00001"],
            "'--step <STEP>': must be a number from 0.0001 to 1",
        ),
    ] {
        let input = (!["params", "verify"].contains(&args[0])).then_some(&f);
        refused_as_usage(neardup().args(&args).args(input), message);
    }
    let out = neardup()
        .args(["pairs", "--bands", "100", "--rows", "2"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "usage error");
    assert!(
        stderr_of(&out).contains("at most num-perm (128)"),
        "{}",
        stderr_of(&out)
    );
    let out = neardup()
        .args(["pairs", "--shingle", "lines:3"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "usage error");
    assert!(stderr_of(&out).contains("expected words:N or chars:N"));
    // Every refused flag value is a usage error (exit 2), as the README says; they were
    // exit 1, as a failed run.
    let index = s.path("i.idx");
    let index = index.to_str().unwrap();
    let input = f.to_str().unwrap();
    for (args, message) in [
        (
            vec!["cluster", input, "--num-perm", "0"],
            "invalid value '0' for '--num-perm <K>'",
        ),
        (
            vec!["cluster", input, "--threads", "0"],
            "invalid value '0' for '--threads <N>'",
        ),
        (
            vec!["cluster", input, "--threads", "99999999"],
            "invalid value '99999999' for '--threads <N>': must be a whole number from 1 to 1024",
        ),
        (
            vec!["pairs", input, "--passages", "--passage-gap", "33"],
            "invalid value '33' for '--passage-gap <N>'",
        ),
        (
            vec!["cluster", input, "--bands", "200", "--rows", "1"],
            "bands (200)",
        ),
        (
            vec!["dedup", input, "--max-record-bytes", "0"],
            "max-record-bytes",
        ),
        // One wording and one range for --bucket-cap, whatever the command.
        (
            vec!["pairs", input, "--bucket-cap", "1"],
            "'--bucket-cap <N>': must be a whole number from 2 to 4294967295",
        ),
        (
            vec!["link", input, "--members", input, "--bucket-cap", "1"],
            "'--bucket-cap <N>': must be a whole number from 2 to 4294967295",
        ),
        (
            vec!["index", "create", index, "--bucket-cap", "4294967296"],
            "'--bucket-cap <N>': must be a whole number from 2 to 4294967295",
        ),
        (
            vec!["index", "create", index, "--story-threshold", "0.5"],
            "--story-threshold and --story-candidates need --level story",
        ),
        (
            vec![
                "cluster",
                input,
                "--level",
                "story",
                "--story-threshold",
                "2",
            ],
            "'--story-threshold <P>': must be a number from 0 to 1",
        ),
    ] {
        refused_as_usage(neardup().args(&args), message);
    }
    assert!(!s.path("i.idx").exists());
}

/// Flags that do nothing where they are given are usage errors naming the flag and what it
/// needs: `compare --checkpoint` kept nothing, and the passage flags of `pairs` and
/// `cluster` without `--passages` were ignored.
#[test]
fn flags_that_would_do_nothing_are_refused() {
    let s = Scratch::new();
    let f = s.jsonl("in.jsonl", &good_records());
    let a = s.write("a.txt", "one text of a few words for the first document");
    let b = s.write(
        "b.txt",
        "another text of a few words for the second document",
    );
    let (input, a, b) = (
        f.to_str().unwrap(),
        a.to_str().unwrap(),
        b.to_str().unwrap(),
    );
    let checkpoint = s.path("ck");
    let checkpoint = checkpoint.to_str().unwrap();
    let stats = s.path("st.stats");
    let stats = stats.to_str().unwrap();
    for (args, message) in [
        (
            vec!["compare", a, b, "--checkpoint", checkpoint],
            "--checkpoint keeps the fingerprints of a batch run",
        ),
        (
            vec!["compare", a, b, "--verbose"],
            "--verbose times the stages of a batch run; compare has none",
        ),
        (
            vec!["sketch", input, "-v"],
            "--verbose times the stages of a batch run; sketch has none",
        ),
        (
            vec!["sketch", input, "--bucket-cap", "2"],
            "--bucket-cap caps the buckets where candidates are made, after sketch",
        ),
        (
            vec!["stats", "count", input, "-o", stats, "--verbose"],
            "--verbose times the stages of a batch run; stats count has none",
        ),
        (
            vec!["pairs", input, "--mode", "leader"],
            "--mode chooses how pairs are grouped into clusters; pairs lists the pairs",
        ),
        (
            vec!["pairs", input, "--representative", "longest"],
            "--representative chooses a cluster's representative; pairs writes no clusters",
        ),
        // At the story level too, not "--representative still applies".
        (
            vec!["pairs", input, "--level", "story", "--mode", "leader"],
            "--mode chooses how pairs are grouped into clusters; pairs lists the pairs",
        ),
        (
            vec!["pairs", input, "--passage-gap", "2"],
            "--passage-gap tunes the passages of --passages: it needs --passages",
        ),
        (
            vec!["cluster", input, "--min-passage-words", "12"],
            "--min-passage-words tunes the passages of --passages: it needs --passages",
        ),
        (
            vec!["pairs", input, "--boilerplate-docs", "5"],
            "--boilerplate-docs tunes the passages of --passages: it needs --passages",
        ),
    ] {
        refused_as_usage(neardup().args(&args), message);
    }
    assert!(!s.path("ck").exists() && !s.path("st.stats").exists());
    // A flag refused there is not offered by its help either.
    let help = stdout_of(&neardup().args(["sketch", "--help"]).output().unwrap());
    assert!(
        help.contains("--threshold") && !help.contains("--bucket-cap"),
        "{help}"
    );
    let help = stdout_of(&neardup().args(["pairs", "--help"]).output().unwrap());
    let offers = |flag: &str| help.lines().any(|l| l.trim_start().starts_with(flag));
    assert!(
        offers("-t, --threshold") && !offers("--mode") && !offers("--representative"),
        "{help}"
    );
    // With --passages they are taken; compare takes them without it.
    for args in [
        vec!["pairs", "-q", input, "--passages", "--passage-gap", "2"],
        vec!["compare", "-q", a, b, "--min-passage-words", "4"],
    ] {
        let out = neardup().args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr_of(&out));
    }
}

#[test]
fn copies_over_the_bucket_cap_are_paired_as_a_star() {
    // 60 copies of one text share every LSH bucket: with a cap of 10 only the first in id
    // order is banded and the others are paired with it (59 pairs, not a window of 9 pairs
    // per member in every band), and the copies still form one cluster, of which dedup
    // keeps one.
    let s = Scratch::new();
    let ids: Vec<String> = (0..60).map(|i| format!("copy-{i:02}")).collect();
    let mut records: Vec<(&str, &str)> = ids.iter().map(|id| (id.as_str(), RATE)).collect();
    records.push(("near", RATE_COPY));
    let f = s.jsonl("in.jsonl", &records);
    let capped = neardup()
        .args(["cluster", "--bucket-cap", "10"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(capped.status.success());
    let err = stderr_of(&capped);
    assert!(
        err.contains(
            "1 groups of identical documents held more than --bucket-cap 10 documents \
             (largest: 60 documents, e.g. copy-00, copy-01"
        ),
        "{err}"
    );
    assert!(!err.contains("LSH buckets held more"), "{err}");
    let clusters = json_lines(&stdout_of(&capped));
    assert_eq!(clusters.len(), 1);
    assert_eq!(clusters[0]["size"], 61);
    let pairs_of = |cap: &str| {
        let out = neardup()
            .args(["pairs", "--quiet", "--bucket-cap", cap])
            .arg(&f)
            .output()
            .unwrap();
        json_lines(&stdout_of(&out))
    };
    // The near-copy pairs with the star's centre only.
    let capped = pairs_of("10");
    assert_eq!(capped.len(), 59 + 1);
    assert!(capped.iter().all(|p| p["a"] == "copy-00"), "{capped:?}");
    assert_eq!(pairs_of("1000").len(), 61 * 60 / 2);
    let kept = neardup()
        .args(["dedup", "--quiet", "--bucket-cap", "10"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(json_lines(&stdout_of(&kept)).len(), 1);
}

#[test]
fn progress_settings_keep_the_summary() {
    // Regression: with bars forced on a non-terminal, the summary line was swallowed.
    let s = Scratch::new();
    let f = s.jsonl("in.jsonl", &good_records());
    for progress in ["always", "never", "auto"] {
        let out = neardup()
            .args(["pairs", "--progress", progress])
            .arg(&f)
            .output()
            .unwrap();
        let err = stderr_of(&out);
        assert!(
            err.contains("neardup: 4 documents"),
            "--progress {progress}: {err}"
        );
    }
    // Rates in whole items a second: they were "1,234.5678/s". Enough documents that the
    // bars are drawn before their stage ends.
    let many: String = (0..20_000)
        .map(|i| {
            let words: Vec<String> = (0..40)
                .map(|w| format!("w{}", (i * 7 + w * 13) % 5000))
                .collect();
            format!("{{\"id\": \"d{i}\", \"text\": \"{}\"}}\n", words.join(" "))
        })
        .collect();
    let many = s.write("many.jsonl", many);
    let out = neardup()
        .args(["pairs", "--progress", "always", "--threshold", "0.9"])
        .arg(&many)
        .output()
        .unwrap();
    let err = stderr_of(&out);
    let pieces: Vec<&str> = err.split("/s eta").collect();
    // The word before each "/s eta" (a bar's rate; "MiB" for the read bar's bytes).
    let rates: Vec<&str> = pieces[..pieces.len() - 1]
        .iter()
        .filter_map(|before| before.rsplit(' ').next())
        .filter(|rate| rate.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert!(!rates.is_empty(), "no bar with a rate drawn: {err}");
    for rate in rates {
        assert!(
            rate.chars().all(|c| c.is_ascii_digit() || c == ','),
            "{rate}: {err}"
        );
    }
    let quiet = neardup()
        .args(["pairs", "--quiet"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(quiet.stderr.is_empty());
}

/// `-o /dev/null` once replaced the device with a regular file (a rename over it). A named
/// pipe stands in for the device: it must still be a pipe afterwards and carry the output.
#[cfg(unix)]
#[test]
fn outputs_to_a_device_or_pipe_are_written_in_place() {
    use std::os::unix::fs::FileTypeExt;
    let s = Scratch::new();
    let cases: [(&str, &[&str]); 2] = [
        ("-o", &["--threshold", "0.05"]),
        ("--stats-out", &["--level", "story", "-o", "/dev/null"]),
    ];
    for (flag, settings) in cases {
        let fifo = s.fifo(&format!("pipe{flag}"));
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(fifo).unwrap())
        };
        let mut cmd = neardup();
        cmd.args(["cluster", "-q"])
            .args(settings)
            .arg(flag)
            .arg(&fifo);
        let out = cmd.arg(fixtures()).output().unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        // Checked first: had the pipe been replaced, the reader would wait forever.
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
        assert!(
            !reader.join().unwrap().is_empty(),
            "{flag}: nothing came through"
        );
    }
    assert!(
        std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );
}

/// A reader that stops early (`| head`) ends the run quietly with exit 0, in every format,
/// whatever layer the closed pipe surfaces in (the CSV writer wraps I/O errors).
#[test]
fn a_closed_output_pipe_is_a_quiet_success() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let s = Scratch::new();
    let mut records = String::new();
    // Outputs well beyond the pipe's and the writers' buffers (hundreds of KB in every
    // format), so that writes fail after the reader leaves.
    for i in 0..20_000 {
        // Two copies of each text, texts otherwise unrelated: 10,000 pairs.
        let text: Vec<String> = (0..12).map(|k| format!("w{}", (i / 2) * 13 + k)).collect();
        let text = text.join(" ");
        records.push_str(&serde_json::json!({"id": format!("d{i:04}"), "text": text}).to_string());
        records.push('\n');
    }
    let input = s.write("in.jsonl", records);
    let idx = s.path("idx");
    neardup()
        .args(["index", "create", "-q"])
        .arg(&idx)
        .assert()
        .success();
    neardup()
        .args(["index", "add", "-q"])
        .arg(&idx)
        .arg(&input)
        .assert()
        .success();
    let bin = assert_cmd::cargo::cargo_bin("neardup");
    for format in ["jsonl", "json", "csv", "table"] {
        let pairs = ["pairs", "-q", "--format", format, input.to_str().unwrap()];
        let export = ["index", "export", idx.to_str().unwrap(), "--format", format];
        let sketch = ["sketch", "-q", input.to_str().unwrap()];
        for args in [&pairs[..], &export[..], &sketch[..]] {
            let mut child = Command::new(&bin)
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut first = [0u8; 64];
            child.stdout.take().unwrap().read_exact(&mut first).unwrap();
            // The pipe's read end is closed here, with most of the output unwritten.
            let out = child.wait_with_output().unwrap();
            assert_eq!(
                (
                    out.status.code(),
                    String::from_utf8_lossy(&out.stderr).into_owned()
                ),
                (Some(0), String::new()),
                "{args:?}"
            );
        }
    }
}

/// Files whose names are not UTF-8 get distinct ids, each byte that is not UTF-8 written
/// `\xNN` (a lossy `n\u{fffd}.txt` gave both one id, and one was skipped as a duplicate
/// with a message naming the same path twice).
#[test]
fn names_that_are_not_utf8_keep_distinct_ids() {
    use std::os::unix::ffi::OsStrExt;
    let s = Scratch::new();
    let dir = s.path("docs");
    std::fs::create_dir(&dir).unwrap();
    for (byte, text) in [(0xff, RATE), (0xfe, RATE_COPY)] {
        let name = [b'n', byte, b'.', b't', b'x', b't'];
        std::fs::write(dir.join(std::ffi::OsStr::from_bytes(&name)), text).unwrap();
    }
    let out = neardup().arg("pairs").arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let pairs = json_lines(&stdout_of(&out));
    assert_eq!(pairs.len(), 1, "{pairs:?}");
    assert_eq!(
        (pairs[0]["a"].as_str(), pairs[0]["b"].as_str()),
        (Some("n\\xfe.txt"), Some("n\\xff.txt"))
    );
}

/// Standard error closed early (`neardup … 2>&1 | head -1`, a log collector gone): the
/// warnings and the summary are dropped, the run finishes, writes its `-o` output and
/// exits as it would with standard error open (std's `eprintln!` panicked, exit 101, and
/// the output was lost). Bars drawn anyway (`--progress always`) and `watch` alike.
#[test]
fn a_closed_error_pipe_loses_no_output() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let s = Scratch::new();
    let mut records = vec![
        serde_json::json!({"id": "a", "text": RATE}).to_string(),
        serde_json::json!({"id": "b", "text": RATE_COPY}).to_string(),
    ];
    // More warnings than a pipe's buffer holds would not be needed: the first write fails.
    records.extend((0..60).map(|i| format!("{{oops {i}")));
    let input = s.write("in.jsonl", records.join("\n") + "\n");
    let idx = s.path("idx");
    let bin = assert_cmd::cargo::cargo_bin("neardup");
    let run = |args: &[&str], close: bool| {
        let out = s.path("out.jsonl");
        let _ = std::fs::remove_file(&out);
        // `watch` answers alike only into an index as empty as the first time.
        let _ = std::fs::remove_dir_all(&idx);
        neardup()
            .args(["index", "create", "-q"])
            .arg(&idx)
            .assert()
            .success();
        let mut command = Command::new(&bin);
        command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        if close {
            drop(child.stderr.take()); // the read end closed before anything is written
        }
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(&std::fs::read(&input).unwrap());
        drop(stdin);
        let done = child.wait_with_output().unwrap();
        (done.status.code(), done.stdout, std::fs::read(&out).ok())
    };
    let out = s.path("out.jsonl");
    let (input, out, idx) = (
        input.to_str().unwrap(),
        out.to_str().unwrap(),
        idx.to_str().unwrap(),
    );
    for args in [
        &["cluster", input, "-o", out][..],
        &["cluster", input, "-o", out, "--progress", "always"],
        &["dedup", input, "-o", out],
        &["watch", idx],
    ] {
        let open = run(args, false);
        assert_eq!(open.0, Some(2), "{args:?}");
        assert_eq!(run(args, true), open, "{args:?}");
    }
}

/// An output that cannot be written (no such directory, a directory, --plots a plain
/// file) is refused before the run, not after it (minutes on an archive): nothing is
/// read (no warning about the bad record), printed or left behind.
#[test]
fn unwritable_outputs_are_refused_before_the_run() {
    let s = Scratch::new();
    let input = s.write(
        "in.jsonl",
        format!(
            "{}\nnot json\n",
            serde_json::json!({"id": "a", "text": "some text"})
        ),
    );
    let dir = s.path("adir");
    std::fs::create_dir(&dir).unwrap();
    let plain = s.write("afile", "");
    let dir = dir.to_str().unwrap();
    for (command, flags) in [
        ("dedup", vec!["-o", "/nonexistent/x.jsonl"]),
        ("dedup", vec!["-o", dir]),
        ("dedup", vec!["--rejects", "/nonexistent/x"]),
        ("dedup", vec!["--report", "/nonexistent/x"]),
        ("cluster", vec!["-o", "/nonexistent/x.jsonl"]),
        ("pairs", vec!["-o", dir]),
        (
            "cluster",
            vec!["--level", "story", "--stats-out", "/nonexistent/s"],
        ),
        ("eval", vec!["--gold", "/dev/null", "-o", "/nonexistent/e"]),
        (
            "eval",
            vec!["--gold", "/dev/null", "--plots", plain.to_str().unwrap()],
        ),
    ] {
        let out = neardup()
            .current_dir(s.dir.path())
            .arg(command)
            .arg(&input)
            .args(&flags)
            .output()
            .unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "{command} {flags:?}: {err}");
        assert!(
            !err.contains("in.jsonl:2"),
            "read first: {command} {flags:?}: {err}"
        );
        assert!(stdout_of(&out).is_empty(), "{command} {flags:?}");
        let flag = if flags.contains(&"--plots") {
            "--plots"
        } else {
            flags[flags.len() - 2]
        };
        assert!(err.contains(flag), "{command} {flags:?}: {err}");
    }
    let names: Vec<_> = std::fs::read_dir(s.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}"); // in.jsonl, adir, afile
}

/// Sizes take a decimal fraction (`1.5MiB` was "unknown size unit \".5mib\""), and
/// `--max-record-bytes 4GiB` is the longest text (4GiB - 1 byte), not refused for a byte.
#[test]
fn size_flags_take_fractions_and_4gib() {
    let s = Scratch::new();
    let f = s.jsonl("in.jsonl", &good_records());
    for flags in [
        ["--max-record-bytes", "1.5MiB"],
        ["--max-record-bytes", "4GiB"],
        ["--memory-budget", "0.5GiB"],
    ] {
        let out = neardup()
            .args(["cluster", "-q"])
            .args(flags)
            .arg(&f)
            .output()
            .unwrap();
        assert!(out.status.success(), "{flags:?}: {}", stderr_of(&out));
    }
    let out = neardup()
        .args(["cluster", "--max-record-bytes", "4.5GiB"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains(
            "invalid value '4.5GiB' for '--max-record-bytes <SIZE>': must be at most 4GiB"
        ),
        "{}",
        stderr_of(&out)
    );
}

/// An output replacing a file keeps the file's permissions: a private 0600 output became
/// 0644 (the atomic rename put a new file in its place). A new file gets 0666 & !umask.
#[test]
fn an_output_replaced_keeps_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new();
    let f = s.jsonl("in.jsonl", &good_records());
    for (name, mode) in [("private.jsonl", 0o600), ("shared.jsonl.gz", 0o640)] {
        let out = s.write(name, "old\n");
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(mode)).unwrap();
        let run = neardup()
            .args(["cluster", "-q", "-o"])
            .arg(&out)
            .arg(&f)
            .output()
            .unwrap();
        assert!(run.status.success(), "{}", stderr_of(&run));
        assert_ne!(std::fs::read(&out).unwrap(), b"old\n");
        let got = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(got, mode, "{name}: {got:o}");
    }
}
