//! Every kind of bad input: a clear message naming file and line, a count in the summary,
//! the rest of the run unaffected, exit code 2 (or 1 at once with --strict).

use crate::util::*;

/// Runs `neardup pairs` and checks the exit code, that the message appears, and that the
/// good records still give their two pairs.
fn check(inputs: &[&std::path::Path], message: &str, extra: &[&str]) -> String {
    let (out, err) = bad_records_run(inputs, message, extra);
    let pairs = json_lines(&stdout_of(&out));
    let ids: Vec<(String, String)> = pairs
        .iter()
        .map(|p| {
            (
                p["a"].as_str().unwrap().into(),
                p["b"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        ids.contains(&("rate-1".into(), "rate-2".into())),
        "good records lost: {ids:?}"
    );
    err
}

/// Runs `neardup pairs`, checks that it exits 2 (bad records) with `message` among the
/// warnings, and returns the run and its standard error.
fn bad_records_run(
    inputs: &[&std::path::Path],
    message: &str,
    extra: &[&str],
) -> (std::process::Output, String) {
    let out = neardup()
        .arg("pairs")
        .args(inputs)
        .args(extra)
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(
        err.contains(message),
        "expected {message:?} in stderr: {err}"
    );
    (out, err)
}

fn with_good_records(bad_line: &str) -> String {
    let mut lines: Vec<String> = good_records()
        .iter()
        .map(|(id, t)| serde_json::json!({"id": id, "text": t}).to_string())
        .collect();
    lines.insert(2, bad_line.to_string()); // line 3
    lines.join("\n") + "\n"
}

#[test]
fn malformed_json_line() {
    let s = Scratch::new();
    let f = s.write(
        "in.jsonl",
        with_good_records(r#"{"id": "x", "text": "unterminated"#),
    );
    let err = check(&[&f], "in.jsonl:3: malformed JSON", &[]);
    assert!(err.contains("malformed_json 1"), "summary counts it: {err}");
}

#[test]
fn missing_and_non_string_fields() {
    let s = Scratch::new();
    let f = s.write(
        "a.jsonl",
        with_good_records(r#"{"id": "x", "body": "no text field"}"#),
    );
    check(&[&f], r#"a.jsonl:3: missing field "text""#, &[]);
    let f = s.write("b.jsonl", with_good_records(r#"{"id": "x", "text": 42}"#));
    check(
        &[&f],
        r#"b.jsonl:3: field "text" is an integer, expected a string"#,
        &[],
    );
    let f = s.write("c.jsonl", with_good_records(r#"{"text": "no id"}"#));
    check(&[&f], r#"c.jsonl:3: missing field "id""#, &[]);
    let f = s.write("d.jsonl", with_good_records(r#"["an", "array"]"#));
    let err = check(
        &[&f],
        "d.jsonl:3: expected a JSON object, found an array",
        &[],
    );
    assert!(err.contains("jq -c"), "{err}");
}

#[test]
fn invalid_utf8() {
    let s = Scratch::new();
    let mut bytes = with_good_records("PLACEHOLDER").into_bytes();
    let at = bytes.windows(11).position(|w| w == b"PLACEHOLDER").unwrap();
    bytes.splice(
        at..at + 11,
        b"{\"id\":\"x\",\"text\":\"caf\xE9\"}".iter().copied(),
    );
    let f = s.write("in.jsonl", bytes);
    let err = check(&[&f], "in.jsonl:3: invalid UTF-8 at byte 21", &[]);
    assert!(err.contains("iconv -f windows-1252 -t utf-8"), "{err}");
}

#[test]
fn truncated_gzip_keeps_what_was_read() {
    let s = Scratch::new();
    let good: String = good_records()
        .iter()
        .map(|(id, t)| serde_json::json!({"id": id, "text": t}).to_string() + "\n")
        .collect();
    let mut filler = String::new();
    for i in 0..2000 {
        filler.push_str(&serde_json::json!({"id": format!("filler-{i}"), "text": format!("{i} {}", "x ".repeat(i % 50))}).to_string());
        filler.push('\n');
    }
    let gz = gzip((good + &filler).as_bytes());
    let f = s.write("in.jsonl.gz", &gz[..gz.len() / 2]);
    let err = check(&[&f], "in.jsonl.gz:", &[]);
    assert!(err.contains("truncated compressed stream"), "{err}");
    assert!(err.contains("read_failed 1"), "{err}");
}

#[test]
fn unreadable_inputs() {
    let s = Scratch::new();
    let good = s.jsonl("good.jsonl", &good_records());
    let missing = s.path("missing.jsonl");
    check(&[&good, &missing], "missing.jsonl: cannot read input", &[]);
}

/// `--quiet` hides each warning, but not that something was skipped: a quiet run's exit 2
/// gets one line counting the problems and naming the first, at either level and in the
/// feed's bulk commands.
#[test]
fn quiet_runs_still_say_what_they_skipped() {
    let s = Scratch::new();
    let bad = s.write(
        "in.jsonl",
        with_good_records(r#"{"id": "x", "text": "unterminated"#),
    );
    let missing = s.path("missing.jsonl");
    let err = check(&[&missing, &bad], "2 bad records", &["--quiet"]);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("the first: ") && err.contains("missing.jsonl: cannot read input"),
        "{err}"
    );
    let err = check(&[&bad], "1 bad record ", &["-q", "--level", "story"]);
    assert!(err.contains("in.jsonl:3: malformed JSON"), "{err}");

    let index = s.path("index");
    let out = neardup()
        .args(["index", "create"])
        .arg(&index)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = neardup()
        .args(["index", "add", "-q"])
        .arg(&index)
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr_of(&out);
    assert!(err.contains("in.jsonl:3: malformed JSON"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");

    // A clean quiet run stays silent.
    let good = s.jsonl("good.jsonl", &good_records());
    let out = neardup().args(["pairs", "-q"]).arg(&good).output().unwrap();
    assert!(out.status.success());
    assert_eq!(stderr_of(&out), "");
}

/// A temporary directory that is not there is refused before reading, at either level,
/// not when the first spill comes.
#[test]
fn a_missing_temporary_directory_is_named_at_once() {
    let s = Scratch::new();
    let good = s.jsonl("good.jsonl", &good_records());
    for level in ["near-copy", "story"] {
        let out = neardup()
            .args(["pairs", "--level", level, "--temp-dir"])
            .arg(s.path("no-such-dir"))
            .arg(&good)
            .output()
            .unwrap();
        let err = stderr_of(&out);
        assert!(!out.status.success(), "{err}");
        assert!(
            err.contains("temporary directory") && err.contains("no-such-dir"),
            "{err}"
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn duplicate_ids_keep_the_first() {
    let s = Scratch::new();
    let f = s.write(
        "in.jsonl",
        with_good_records(&serde_json::json!({"id": "rate-1", "text": STORM}).to_string()),
    );
    let err = check(
        &[&f],
        r#"in.jsonl:3: duplicate id "rate-1" (first seen at "#,
        &[],
    );
    assert!(err.contains("in.jsonl:1"), "{err}");
}

#[test]
fn empty_and_whitespace_texts() {
    let s = Scratch::new();
    let f = s.write(
        "in.jsonl",
        with_good_records(r#"{"id": "x", "text": "  \n\t "}"#),
    );
    check(&[&f], "in.jsonl:3: empty text", &[]);
    let dir = s.path("docs");
    s.write("docs/empty.txt", "");
    s.write("docs/punct.txt", " -- ... !! ");
    s.write("docs/emoji.txt", "👨‍👩‍👧‍👦 🏳️‍🌈 👍🏽 ❤️ 🇫🇷");
    s.write("docs/invisible.txt", "\u{AD}\u{200B} \u{2060}\u{FEFF}");
    let good = s.jsonl("good.jsonl", &good_records());
    let (out, err) = bad_records_run(&[&good, &dir], "empty.txt: empty text", &[]);
    // A text of punctuation, emoji or invisible characters is not empty: it has no
    // words (still a bad record).
    for name in ["punct.txt", "emoji.txt", "invisible.txt"] {
        assert!(
            err.contains(&format!(
                "{name}: no words to compare: the text has only punctuation, symbols, emoji or invisible characters"
            )),
            "{err}"
        );
    }
    assert!(err.contains("[bad: empty_text 1, no_words 3]"), "{err}");
    assert!(!json_lines(&stdout_of(&out)).is_empty());
}

#[test]
fn strict_stops_at_the_first_problem() {
    let s = Scratch::new();
    let f = s.write("in.jsonl", with_good_records("{oops"));
    let out = neardup()
        .args(["pairs", "--strict"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("in.jsonl:3: malformed JSON"),
        "{}",
        stderr_of(&out)
    );
    assert!(stderr_of(&out).contains("--strict"));
}

#[test]
fn huge_single_document() {
    // 50 MB of text in one JSON line: processed, not rejected, nothing blows up.
    let s = Scratch::new();
    let mut text = String::with_capacity(50 << 20);
    let mut i = 0u64;
    while text.len() < 50 << 20 {
        text.push_str(&format!("word{} ", i % 100_003));
        i += 1;
    }
    let mut records = good_records();
    records.push(("huge", text.as_str()));
    let f = s.jsonl("in.jsonl", &records);
    let out = neardup().arg("pairs").arg(&f).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("5 documents"),
        "{}",
        stderr_of(&out)
    );
    // With a lower limit the same record is reported, and the others still processed.
    let err = check(
        &[&f],
        "in.jsonl:5: record of at least",
        &["--max-record-bytes", "1MiB"],
    );
    assert!(err.contains("record_too_large 1"), "{err}");
}

#[test]
fn killed_run_leaves_no_partial_output() {
    let s = Scratch::new();
    let mut big = String::new();
    for i in 0..200_000 {
        big.push_str(
            &serde_json::json!({"id": i, "text": format!("{RATE} {i} {STORM}")}).to_string(),
        );
        big.push('\n');
    }
    let input = s.write("big.jsonl", big);
    let output = s.path("out.jsonl");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("neardup"))
        .args(["cluster", "--quiet", "-o"])
        .arg(&output)
        .arg(&input)
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    if child.try_wait().unwrap().is_some() {
        // Finished before the kill (a fast machine): then the output must be complete.
        let text = std::fs::read_to_string(&output).unwrap();
        assert!(!json_lines(&text).is_empty());
        return;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        !output.exists(),
        "a killed run must not leave a partial output file"
    );
}

#[test]
fn empty_inputs_give_empty_output() {
    let s = Scratch::new();
    let f = s.write("empty.jsonl", "");
    let blank = s.write("blank.jsonl", "\n\n  \n");
    let out = neardup()
        .arg("cluster")
        .arg(&f)
        .arg(&blank)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(out.stdout.is_empty());
    assert!(
        stderr_of(&out).contains("0 documents, 0 bad records"),
        "{}",
        stderr_of(&out)
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Whatever bytes a file holds (random, a damaged gzip or zstd stream, JSON with bytes
    /// changed), a run at either level ends with documents and problems, never a panic or
    /// an error of its own.
    #[test]
    fn any_input_file_is_read_without_panicking(
        random in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2000),
        flips in proptest::collection::vec((0usize..4000, proptest::prelude::any::<u8>()), 0..8),
        cut in 0usize..4000,
        story in proptest::prelude::any::<bool>(),
    ) {
        use neardup::input::InputSpec;
        let s = Scratch::new();
        let mut good = String::new();
        for (id, text) in good_records() {
            good.push_str(&serde_json::json!({"id": id, "text": text, "date": "2024-05-01"}).to_string());
            good.push('\n');
        }
        let damaged = |mut bytes: Vec<u8>| {
            let len = bytes.len().max(1);
            for &(at, byte) in &flips {
                if let Some(b) = bytes.get_mut(at % len) {
                    *b = byte;
                }
            }
            bytes.truncate(cut.max(1));
            bytes
        };
        let files = [
            s.write("random.jsonl", &random),
            s.write("random.txt", &random),
            s.write("damaged.jsonl", damaged(good.clone().into_bytes())),
            s.write("damaged.jsonl.gz", damaged(gzip(good.as_bytes()))),
            s.write("damaged.jsonl.zst", damaged(zstd::encode_all(good.as_bytes(), 3).unwrap())),
        ];
        let level = if story { neardup::Level::Story } else { neardup::Level::NearCopy };
        let pipeline = neardup::PipelineBuilder::new().level(level).build().unwrap();
        for file in &files {
            let outcome = pipeline.run(&[InputSpec::Path(file.clone())], &neardup::progress::Silent);
            proptest::prop_assert!(outcome.is_ok(), "{}: {:?}", file.display(), outcome.err());
        }
    }
}

#[test]
fn dedup_rejects_a_record_over_the_limit_verbatim() {
    // Skipped unbuffered while reading, it once vanished: neither kept nor rejected.
    let s = Scratch::new();
    let long = serde_json::json!({"id": "long", "text": "word ".repeat(1000)}).to_string();
    let f = s.write("in.jsonl", with_good_records(&long).replace("\n", "\r\n"));
    for limit in ["1KiB", "2000"] {
        let (kept, rejects) = (s.path("kept.jsonl"), s.path("rej.jsonl"));
        let out = neardup()
            .args(["dedup", "--max-record-bytes", limit, "-o"])
            .arg(&kept)
            .arg("--rejects")
            .arg(&rejects)
            .arg(&f)
            .output()
            .unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("in.jsonl:3: record of at least"), "{err}");
        // Only over the limit: not called malformed.
        assert!(err.contains("rejected 1 over --max-record-bytes"), "{err}");
        assert!(!err.contains("malformed"), "{err}");
        // With its own line ending (the input's lines end in CRLF).
        assert_eq!(
            std::fs::read_to_string(&rejects).unwrap(),
            format!("{long}\r\n")
        );
        let records = json_lines(&std::fs::read_to_string(&kept).unwrap());
        assert_eq!(records.len(), 2, "{records:?}"); // each copy dropped
        // Without --rejects it is still counted.
        let out = neardup()
            .args(["dedup", "--max-record-bytes", limit, "-o"])
            .arg(&kept)
            .arg(&f)
            .output()
            .unwrap();
        assert!(stderr_of(&out).contains("rejected 1 over --max-record-bytes"));
    }
    // A text document over the limit too.
    let dir = s.path("docs");
    s.write("docs/a.txt", "word ".repeat(1000));
    s.write("docs/b.txt", "a short one");
    let rejects = s.path("rej.txt");
    let out = neardup()
        .args(["dedup", "--max-record-bytes", "1KiB", "--rejects"])
        .arg(&rejects)
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        stderr_of(&out).contains("rejected 1 over --max-record-bytes"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&rejects).unwrap(),
        "word ".repeat(1000) + "\n"
    );
}

/// dedup's warnings say what becomes of each record in its output: a record with a
/// fractional id or no text is written unchanged, a repeated id with other text and a
/// malformed line go to --rejects (or are not written), a repeat of an id and its text is
/// dropped as a copy. They said "skipped" for all.
#[test]
fn dedup_warnings_say_where_each_record_went() {
    let s = Scratch::new();
    let same = serde_json::json!({"id": "rate-1", "text": RATE});
    let f = s.write(
        "in.jsonl",
        with_good_records(&format!(
            r#"{{"id": 1.5, "text": "a fractional id"}}
{{"id": "notext"}}
{{"id": "rate-1", "text": "other"}}
[1, 2]
{same}"#
        )),
    );
    for (rejects, gone) in [
        (true, "this record goes to --rejects"),
        (
            false,
            "this record is not written (--rejects FILE keeps such records)",
        ),
    ] {
        let mut command = neardup();
        command.args(["dedup", "-o"]).arg(s.path("kept.jsonl"));
        if rejects {
            command.arg("--rejects").arg(s.path("rej.jsonl"));
        }
        let err = stderr_of(&command.arg(&f).output().unwrap());
        let line = |n: u64| {
            err.lines()
                .find(|l| l.contains(&format!("in.jsonl:{n}:")))
                .unwrap_or_default()
        };
        let unchanged = "; this record is written unchanged, not compared";
        assert!(line(3).ends_with(unchanged), "{err}");
        // 1.5 is a number, and so is an integer: the message says which kind it is.
        assert!(
            line(3).contains(r#"field "id" is a fraction, expected"#),
            "{err}"
        );
        assert!(line(4).ends_with(unchanged), "{err}");
        assert!(
            line(5).contains("duplicate id") && line(5).ends_with(gone),
            "{err}"
        );
        assert!(line(6).ends_with(gone), "{err}");
        // A repeat of the first's text is dropped as a copy, whatever --rejects says.
        assert!(
            line(7).ends_with("; this record is dropped as a copy of it (--report lists it)"),
            "{err}"
        );
        assert!(!err.contains("skipped"), "{err}");
    }
}

/// The messages QA found confusing: the parser's "line 1" beside the file's line, a lone
/// surrogate as "end of hex escape", an id beyond 64 bits as "a number" (and `1e300` as
/// "an integer out of the 64-bit range"), trailing bytes
/// after a gzip stream as a truncation that lost the rest, --strict's record both warned
/// of and "skipped", and an input given twice as one warning per record.
#[test]
fn messages_say_what_is_wrong() {
    let s = Scratch::new();
    let f = s.write("in.jsonl", with_good_records(r#"{"id": "x" "text": "t"}"#));
    let err = check(
        &[&f],
        "in.jsonl:3: malformed JSON: expected `,` or `}` at column 12",
        &[],
    );
    assert!(!err.contains("line 1"), "{err}");
    let f = s.write(
        "in.jsonl",
        with_good_records(r#"{"id": "x", "text": "\ud800"}"#),
    );
    check(&[&f], "a lone UTF-16 surrogate is not a character", &[]);
    let f = s.write(
        "in.jsonl",
        with_good_records(r#"{"id": 18446744073709551616, "text": "t"}"#),
    );
    check(
        &[&f],
        "in.jsonl:3: field \"id\" is a number beyond the 64-bit integer range",
        &[],
    );
    // Not "an integer": serde_json reads 1e300 as it reads a 301-digit integer.
    let f = s.write(
        "in.jsonl",
        with_good_records(r#"{"id": 1e300, "text": "t"}"#),
    );
    let err = check(
        &[&f],
        "in.jsonl:3: field \"id\" is a number beyond the 64-bit integer range",
        &[],
    );
    assert!(!err.contains("an integer out of"), "{err}");

    let mut gz = gzip(with_good_records(r#"{"id": "x", "text": "last"}"#).as_bytes());
    gz.extend_from_slice(b"garbage!!");
    let f = s.write("in.jsonl.gz", gz);
    let err = check(
        &[&f],
        "in.jsonl.gz:6: reading stopped here: trailing bytes that are not gzip after the last stream",
        &[],
    );
    assert!(!err.contains("lost"), "{err}");
    assert!(err.contains("5 documents"), "{err}");

    let f = s.write(
        "dup.jsonl",
        with_good_records(r#"{"id": "rate-1", "text": "other"}"#),
    );
    let out = neardup()
        .args(["pairs", "--strict"])
        .arg(&f)
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("duplicate id \"rate-1\""), "{err}");
    assert!(!err.contains("skipped"), "{err}");

    let out = neardup().arg("pairs").arg(&f).arg(&f).output().unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("is given twice"), "{err}");
}

/// A file reached twice in one input directory (a `latest` link to one of its files, a
/// `current` link to one of its subdirectories) is read once, the second path skipped
/// with one note; the run aborted with "the input … is given twice". A file and its
/// directory both named by the user stay refused.
#[test]
fn a_link_inside_an_input_directory_reads_its_file_once() {
    let s = Scratch::new();
    let wire = fixtures().join("wire-story");
    let mut names: Vec<_> = std::fs::read_dir(&wire)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    std::fs::create_dir_all(s.path("d/archive")).unwrap();
    for name in &names {
        std::fs::copy(wire.join(name), s.path("d/archive").join(name)).unwrap();
    }
    std::fs::create_dir_all(s.path("d/latest")).unwrap();
    std::os::unix::fs::symlink(
        std::path::Path::new("../archive").join(&names[0]),
        s.path("d/latest/story.txt"),
    )
    .unwrap();
    std::os::unix::fs::symlink("archive", s.path("d/current")).unwrap();
    let expected = neardup()
        .args(["pairs", "-q", "--threshold", "0.05"])
        .arg(s.path("d/archive"))
        .output()
        .unwrap();
    let out = neardup()
        .args(["pairs", "--threshold", "0.05"])
        .arg(s.path("d"))
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let repeated = names.len() + 1; // every file again under current/, one under latest/
    assert!(
        err.contains(&format!(
            "{repeated} paths reached again in an input directory"
        )),
        "{err}"
    );
    assert_eq!(err.matches("reached again").count(), 1, "{err}");
    // The same pairs, under the ids of the first paths (archive/...).
    let ids = |out: &std::process::Output| {
        json_lines(&stdout_of(out))
            .iter()
            .map(|p| p["jaccard"].to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&out), ids(&expected));
    assert!(stdout_of(&out).contains("archive/"), "{}", stdout_of(&out));
    assert!(!stdout_of(&out).contains("current/"));
    // Named twice by the user: refused.
    let out = neardup()
        .arg("pairs")
        .arg(s.path("d/archive"))
        .arg(s.path("d/archive").join(&names[0]))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("is given twice"));
}

/// A zstd stream that begins with a skippable frame (as `pzstd` writes) is zstd: it was
/// read as text, every line "invalid UTF-8". xz, bzip2 and zip inputs get one error
/// saying to decompress them first, not one per line of compressed bytes.
#[test]
fn compressed_inputs_are_told_by_their_magic_bytes() {
    let s = Scratch::new();
    let plain = with_good_records(r#"{"id": "extra", "text": "one more text"}"#);
    let plain_file = s.write("plain.jsonl", &plain);
    let expected = neardup()
        .args(["pairs", "-q"])
        .arg(&plain_file)
        .output()
        .unwrap();
    assert!(expected.status.success());
    // Skippable frame: magic 0x184D2A5E (LE), 4-byte length, payload; then the data.
    let mut pz = vec![0x5E, 0x2A, 0x4D, 0x18, 4, 0, 0, 0, 1, 2, 3, 4];
    pz.extend(zstd::encode_all(plain.as_bytes(), 3).unwrap());
    let f = s.write("pz.jsonl.zst", pz);
    let out = neardup().args(["pairs", "-q"]).arg(&f).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(stdout_of(&out), stdout_of(&expected));

    let lines = "line\n".repeat(50);
    for (kind, head, command) in [
        ("xz", &[0xFD, b'7', b'z', b'X', b'Z', 0x00][..], "xz -dc"),
        ("bzip2", b"BZh91AY&SY", "bzip2 -dc"),
        ("zip", b"PK\x03\x04\x14\x00", "unzip -p"),
    ] {
        let mut bytes = head.to_vec();
        bytes.extend(lines.as_bytes());
        bytes.extend([0xFF, 0xFE, b'\n'].repeat(20));
        let f = s.write(&format!("in-{kind}.jsonl"), bytes);
        let out = neardup().arg("pairs").arg(&f).output().unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        let message =
            format!("{kind}-compressed input is not supported: decompress it first (`{command} ");
        assert!(err.contains(&message), "{err}");
        assert_eq!(err.matches("not supported").count(), 1, "{err}");
        assert!(!err.contains("UTF-8"), "{err}");
    }
}

/// A JSON array (as `--format json` writes) says once that neardup reads JSON Lines, and
/// records without the id or text field say, after the run, which fields they have; each
/// record is still reported as before.
#[test]
fn arrays_and_other_field_names_get_a_hint() {
    let s = Scratch::new();
    let check = |inputs: &[&std::path::Path], message: &str, extra: &[&str]| {
        bad_records_run(inputs, message, extra).1
    };
    let f = s.write(
        "arr.json",
        "[{\"id\":\"a\",\"text\":\"one two three\"},\n{\"id\":\"b\",\"text\":\"one two\"},\n{\"id\":\"c\",\"text\":\"x\"}]\n",
    );
    let err = check(&[&f], "arr.json:1: malformed JSON: ", &[]);
    let hint =
        "this looks like a JSON array, neardup reads JSON Lines: `jq -c '.[]' FILE | neardup … -`";
    assert_eq!(err.matches(hint).count(), 1, "{err}");
    assert!(err.contains("arr.json:3: malformed JSON"), "{err}");

    let f = s.write(
        "other.jsonl",
        "{\"url\":\"u1\",\"body\":\"one two\",\"when\":1}\n{\"url\":\"u2\",\"body\":\"three\"}\n",
    );
    let err = check(&[&f], "other.jsonl:2: missing field \"id\"", &[]);
    assert!(
        err.contains(
            "hint: no document was read: records lack the field \"id\", and the first such \
             record has the fields \"url\", \"body\", \"when\"; name the id and text fields \
             with --id-field and --text-field"
        ),
        "{err}"
    );
    assert_eq!(err.matches("hint:").count(), 1, "{err}");
    // With the id there but no text field, the hint names it; with documents read, none.
    let err = check(&[&f], "missing field \"text\"", &["--id-field", "url"]);
    assert!(err.contains("lack the field \"text\""), "{err}");
    assert!(err.contains("\"url\", \"body\", \"when\""), "{err}");
    let out = neardup()
        .args(["pairs", "--id-field", "url", "--text-field", "body"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let mixed = s.write(
        "mixed.jsonl",
        with_good_records(r#"{"url": "x", "body": "y"}"#),
    );
    let err = check(&[&mixed], "missing field \"id\"", &[]);
    assert!(!err.contains("hint:"), "{err}");
}

/// Running out of file descriptors (`ulimit -n`) is no input's fault: the run stops with
/// exit 1 and a message naming the limit, writes no output, and warns of no input (every
/// file of a directory was skipped as unreadable, an empty result written, exit 2). At
/// each limit a run either succeeds with the whole output or fails so.
#[test]
fn running_out_of_file_descriptors_stops_the_run() {
    let s = Scratch::new();
    for i in 0..20 {
        s.write(&format!("docs/d{i:02}.txt"), format!("{RATE} {i}"));
    }
    let docs = s.path("docs");
    let expected = neardup().arg("cluster").arg(&docs).output().unwrap().stdout;
    let bin = assert_cmd::cargo::cargo_bin("neardup");
    let mut failed_reading = 0;
    for limit in 5..=14 {
        let out = s.path("out.jsonl");
        let checkpoint = s.path("ck");
        let _ = std::fs::remove_dir_all(&checkpoint);
        let run = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
            .arg(&bin)
            .arg("cluster")
            .arg(&docs)
            .arg("-o")
            .arg(&out)
            .arg("--checkpoint")
            .arg(&checkpoint)
            .output()
            .unwrap();
        let err = stderr_of(&run);
        if run.status.success() {
            assert_eq!(std::fs::read(&out).unwrap(), expected, "{limit}: {err}");
            std::fs::remove_file(&out).unwrap();
            continue;
        }
        assert_eq!(run.status.code(), Some(1), "{limit}: {err}");
        assert!(err.contains("`ulimit -n`"), "{limit}: {err}");
        assert!(!err.contains("cannot read input"), "{limit}: {err}");
        assert!(!out.exists(), "{limit}: {err}");
        failed_reading +=
            usize::from(err.contains("docs/d00.txt: the process ran out of file descriptors"));
    }
    assert!(failed_reading > 0, "no limit failed while reading an input");
}

/// A nested `--text-field` (`body.text`) says that a field is a top-level key, and a file
/// of CR-only line endings (one malformed line of records) says so.
#[test]
fn nested_fields_and_cr_line_endings_get_a_hint() {
    let s = Scratch::new();
    let f = s.write(
        "nested.jsonl",
        "{\"id\":\"a\",\"body\":{\"text\":\"one two three\"}}\n",
    );
    bad_records_run(
        &[&f],
        "nested.jsonl:1: missing field \"body.text\" (a field is a top-level key, not a path: \
         `jq -c '.text = .body.text' FILE | neardup … -` lifts a nested one)",
        &["--text-field", "body.text"],
    );
    let lines: Vec<String> = good_records()
        .iter()
        .map(|(id, t)| serde_json::json!({"id": id, "text": t}).to_string())
        .collect();
    let f = s.write("mac.jsonl", lines.join("\r") + "\r");
    bad_records_run(
        &[&f],
        "mac.jsonl:1: malformed JSON: trailing characters at column ",
        &[],
    );
    let (_, err) = bad_records_run(&[&f], "the line holds carriage returns", &[]);
    assert!(
        err.contains("`tr '\\r' '\\n' < FILE | neardup … -`"),
        "{err}"
    );
}

/// File names found in a directory reach messages with their control characters escaped
/// (`\n`, `\u{1b}`, `\u{202e}`), as ids are: a newline in a name printed a second line
/// that passed for a summary, and an escape sequence in a skipped file's name cleared the
/// screen. Outputs keep the name exact.
#[test]
fn control_characters_in_file_names_are_escaped_in_messages() {
    let s = Scratch::new();
    let forged = "evil\nneardup: 0 documents, 0 bad records fake.txt";
    s.write(&format!("d/{forged}"), b"bad \xff\n");
    s.write("d/x\x1b[2Jy.dat", "x");
    s.write("d/r\u{202e}txt.exe.txt", " ");
    s.write("d/ok.txt", RATE);
    s.write("d/copy\n.txt", RATE_COPY);
    let only_messages = |err: &str| {
        assert!(!err.contains('\x1b') && !err.contains('\u{202e}'), "{err}");
        for line in err.lines() {
            assert!(line.starts_with("neardup: "), "a line of its own: {line:?}");
        }
    };
    let out = neardup().arg("pairs").arg(s.path("d")).output().unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    only_messages(&err);
    for shown in [
        "evil\\nneardup: 0 documents, 0 bad records fake.txt: invalid UTF-8",
        "x\\u{1b}[2Jy.dat",
        "r\\u{202e}txt.exe.txt: empty text",
    ] {
        assert!(err.contains(shown), "{shown:?} in {err}");
    }
    let pairs = json_lines(&stdout_of(&out));
    assert_eq!(pairs[0]["a"].as_str(), Some("copy\n.txt"), "{pairs:?}");
    // The error of a strict run, and a file given twice.
    let out = neardup()
        .args(["pairs", "--strict"])
        .arg(s.path("d"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    only_messages(&stderr_of(&out));
    assert!(
        stderr_of(&out).contains("evil\\nneardup"),
        "{}",
        stderr_of(&out)
    );
    let out = neardup()
        .arg("pairs")
        .arg(s.path("d/copy\n.txt"))
        .arg(s.path("d/copy\n.txt"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    only_messages(&stderr_of(&out));
    assert!(stderr_of(&out).contains("copy\\n.txt is given twice"));
}

/// A link to a directory it is in (`a/b/up -> ../../a`, `a/loop -> ..`) is a path
/// reached again, counted in the same note, not an unreadable input: every file under it
/// was read already ("File system loop found" was a bad record, and `--strict` stopped).
#[test]
fn a_link_to_an_enclosing_directory_is_counted_as_reached_again() {
    let s = Scratch::new();
    s.write("d/a/s.txt", RATE);
    s.write("d/a/b/t.txt", RATE_COPY);
    std::os::unix::fs::symlink("../../a", s.path("d/a/b/up")).unwrap();
    std::os::unix::fs::symlink("..", s.path("d/a/loop")).unwrap();
    for strict in [false, true] {
        let out = neardup()
            .arg("pairs")
            .arg(s.path("d"))
            .args(strict.then_some("--strict"))
            .output()
            .unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(0), "{err}");
        assert!(!err.contains("File system loop"), "{err}");
        assert!(
            err.contains("2 paths reached again in an input directory"),
            "{err}"
        );
        let pairs = json_lines(&stdout_of(&out));
        assert_eq!(pairs.len(), 1, "{pairs:?}");
        assert_eq!(
            (pairs[0]["a"].as_str(), pairs[0]["b"].as_str()),
            (Some("a/b/t.txt"), Some("a/s.txt"))
        );
    }
}

/// A directory given twice, by any path, is named as given: the error named a file in it
/// ("the input d/a/s.txt is given twice (also as d/a/s.txt)").
#[test]
fn a_directory_given_twice_is_named() {
    let s = Scratch::new();
    s.write("d/a/s.txt", RATE);
    s.write("d/t.txt", RATE_COPY);
    std::os::unix::fs::symlink("d", s.path("current")).unwrap();
    let d = s.path("d").display().to_string();
    for again in [
        d.clone(),
        format!("{d}/"),
        s.path("current").display().to_string(),
    ] {
        let out = neardup().args(["pairs", &d, &again]).output().unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!("the input {again} is given twice (also as {d})")),
            "{err}"
        );
    }
}
