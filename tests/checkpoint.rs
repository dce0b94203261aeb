//! `--checkpoint DIR`: a run killed while reading resumes from what it kept; a kept
//! fingerprint never changes the output; a changed input, a torn or damaged checkpoint,
//! other settings and other inputs are each handled as documented.

use std::path::{Path, PathBuf};

use crate::util::*;

/// Records a batch holds (the reader's default), so that tests can reason in batches.
pub(crate) const BATCH: usize = 4096;

/// An article of 60 words drawn from 5,000 made-up ones by `seed`, its last four by
/// `variant`: texts of different seeds share few shingles, of one seed most.
fn article(seed: u64, variant: u64) -> String {
    let draw = |x: &mut u64| {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        format!("w{}", *x % 5000)
    };
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut y = variant.wrapping_mul(0xBF58_476D_1CE4_E5B9) | 1;
    let words: Vec<String> = (0..56)
        .map(|_| draw(&mut x))
        .chain((0..4).map(|_| draw(&mut y)))
        .collect();
    format!(
        "Officials in Capital{} said on Tuesday that {}.",
        seed % 97,
        words.join(" ")
    )
}

/// The article of record `i`: one in ten retells the one 3,000 records before it.
fn article_of(i: u64) -> String {
    article(if i % 10 == 0 { i % 3000 } else { i }, i)
}

/// A corpus over `batches` full batches and a part, in which one record in ten repeats
/// the text of a record 3,000 before it (near-copies across batches), with dates, and
/// bad records of each kind the workers find (malformed JSON, empty text, invalid UTF-8)
/// and one the filing finds (a repeated id).
pub(crate) fn corpus(batches: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..batches * BATCH + 1000 {
        let line = match i {
            100 => "{\"id\": \"broken\", \"text\": ".to_string(),
            5000 => serde_json::json!({"id": "empty", "text": "  "}).to_string(),
            7000 => serde_json::json!({"id": "doc-3", "text": RATE}).to_string(),
            _ => serde_json::json!({
                "id": format!("doc-{i}"),
                "date": format!("2025-03-{:02}", 1 + i % 3000 % 28),
                "text": article_of(i as u64),
            })
            .to_string(),
        };
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
        if i == 3000 {
            out.extend_from_slice(b"{\"id\": \"latin1\", \"text\": \"caf\xe9\"}\n");
        }
    }
    out
}

/// Runs `neardup pairs` on `input` with `args`; returns (exit code, stdout, stderr).
fn pairs(input: &Path, args: &[&str]) -> (i32, String, String) {
    let out = neardup()
        .arg("pairs")
        .arg(input)
        .args(args)
        .output()
        .unwrap();
    (out.status.code().unwrap(), stdout_of(&out), stderr_of(&out))
}

/// The problem lines of a run's standard error, in order.
fn problems(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| !l.starts_with("neardup: ") || l.contains(".jsonl:"))
        .collect()
}

/// How many records the run says it reused from its checkpoint.
fn reused(stderr: &str) -> usize {
    let line = stderr
        .lines()
        .find(|l| l.contains("fingerprints of "))
        .unwrap_or_else(|| panic!("no checkpoint line in {stderr}"));
    let after = &line[line.find("fingerprints of ").unwrap() + "fingerprints of ".len()..];
    after.split(' ').next().unwrap().parse().unwrap()
}

fn log(dir: &Path) -> PathBuf {
    dir.join("fingerprints.log")
}

#[test]
fn a_checkpoint_changes_no_output_at_either_level_whatever_the_threads_and_memory() {
    let s = Scratch::new();
    let input = s.write("in.jsonl", corpus(3));
    // With a small memory budget, sets and features leave memory while the run reads:
    // those the checkpoint holds are read back from it, the others from the spill file.
    for (level, budget) in [
        ("near-copy", "512MiB"),
        ("story", "512MiB"),
        ("near-copy", "64KiB"),
        ("story", "64KiB"),
    ] {
        let dir = s.path(&format!("ckpt-{level}-{budget}"));
        let dir_arg = dir.to_str().unwrap();
        let budget = ["--memory-budget", budget];
        let (code, plain, plain_err) = pairs(&input, &["--level", level]);
        assert_eq!(code, 2, "bad records give exit code 2: {plain_err}");
        assert!(plain.lines().count() > 500, "{level}: the corpus has pairs");
        let run = |threads: &str| {
            let args = [
                "--level",
                level,
                "--threads",
                threads,
                "--checkpoint",
                dir_arg,
            ];
            pairs(&input, &[&args[..], &budget[..]].concat())
        };
        let first = run("1");
        let again = run("2");
        for (run, (code, out, err)) in [("first", &first), ("again", &again)] {
            assert_eq!(*code, 2, "{level} {budget:?} {run}: {err}");
            assert!(
                *out == plain,
                "{level} {budget:?} {run}: output differs from a plain run"
            );
            assert_eq!(problems(err), problems(&plain_err), "{level} {run}");
        }
        assert_eq!(reused(&first.2), 0);
        // Every record, bad ones included (their problems are found again).
        assert_eq!(reused(&again.2), 3 * BATCH + 1000 + 1, "{}", again.2);
    }
}

#[test]
fn a_torn_or_damaged_frame_and_what_follows_are_fingerprinted_afresh() {
    let s = Scratch::new();
    let input = s.write("in.jsonl", corpus(3));
    let dir = s.path("ckpt");
    let args = ["--checkpoint", dir.to_str().unwrap()];
    let (_, plain, _) = pairs(&input, &[]);
    pairs(&input, &args);
    let full = std::fs::metadata(log(&dir)).unwrap().len();

    // A kill in the middle of writing the last frame.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(log(&dir))
        .unwrap();
    file.set_len(full - 1000).unwrap();
    let (_, out, err) = pairs(&input, &args);
    assert!(out == plain, "output differs after a torn frame");
    assert_eq!(reused(&err), 3 * BATCH, "{err}");
    assert_eq!(
        std::fs::metadata(log(&dir)).unwrap().len(),
        full,
        "refilled"
    );

    // A flipped bit inside the second frame: the first is still replayed.
    let mut bytes = std::fs::read(log(&dir)).unwrap();
    let at = bytes.len() * 2 / 5;
    bytes[at] ^= 0x10;
    std::fs::write(log(&dir), &bytes).unwrap();
    let (_, out, err) = pairs(&input, &args);
    assert!(out == plain, "output differs after a damaged frame");
    assert_eq!(reused(&err), BATCH, "{err}");
    assert_eq!(std::fs::read(log(&dir)).unwrap().len() as u64, full);
}

#[test]
fn a_changed_input_is_fingerprinted_afresh_from_its_first_changed_batch() {
    let s = Scratch::new();
    let input = s.write("in.jsonl", corpus(3));
    let dir = s.path("ckpt");
    let args = ["--checkpoint", dir.to_str().unwrap()];
    pairs(&input, &args);
    // A record of the third batch gets another id of the same length (so the batches keep
    // their bounds); then the input grows.
    let mut changed = corpus(3);
    let (from, to) = (&b"\"id\":\"doc-9000\""[..], &b"\"id\":\"doc-X000\""[..]);
    let at = changed.windows(from.len()).position(|w| w == from).unwrap();
    changed[at..at + from.len()].copy_from_slice(to);
    changed.extend_from_slice(
        serde_json::json!({"id": "late", "text": STORM})
            .to_string()
            .as_bytes(),
    );
    changed.push(b'\n');
    std::fs::write(&input, &changed).unwrap();
    let (_, plain, _) = pairs(&input, &[]);
    let (_, out, err) = pairs(&input, &args);
    assert!(
        out == plain,
        "output differs from a plain run over the changed input"
    );
    assert_eq!(reused(&err), 2 * BATCH, "{err}");
    let (_, out, err) = pairs(&input, &args);
    assert!(out == plain);
    assert_eq!(reused(&err), 3 * BATCH + 1000 + 2, "{err}");
}

/// A change inside the first batch is a change like any other: the input is
/// fingerprinted afresh from there (here, from its start). It was refused as "other
/// inputs", which only a run whose first input is another file is.
#[test]
fn an_input_changed_in_its_first_batch_is_fingerprinted_afresh() {
    let s = Scratch::new();
    let input = s.write("in.jsonl", corpus(2));
    let dir = s.path("ckpt");
    let args = ["--checkpoint", dir.to_str().unwrap()];
    pairs(&input, &args);
    let mut changed = corpus(2);
    let (from, to) = (&b"\"id\":\"doc-10\""[..], &b"\"id\":\"doc-X0\""[..]);
    let at = changed.windows(from.len()).position(|w| w == from).unwrap();
    changed[at..at + from.len()].copy_from_slice(to);
    std::fs::write(&input, &changed).unwrap();
    let (_, plain, _) = pairs(&input, &[]);
    let (code, out, err) = pairs(&input, &args);
    assert_eq!(code, 2, "{err}"); // the corpus's bad records
    assert!(
        out == plain,
        "output differs from a plain run over the changed input"
    );
    assert_eq!(reused(&err), 0, "{err}");
    let (_, out, err) = pairs(&input, &args);
    assert!(out == plain);
    assert_eq!(reused(&err), 2 * BATCH + 1000 + 1, "{err}");
}

#[test]
fn other_settings_other_inputs_and_a_second_run_are_refused_and_nothing_is_lost() {
    let s = Scratch::new();
    let input = s.write("in.jsonl", corpus(1));
    let other = s.jsonl("other.jsonl", &good_records());
    let dir = s.path("ckpt");
    let dir_arg = dir.to_str().unwrap();
    pairs(&input, &["--checkpoint", dir_arg]);
    let kept = std::fs::read(log(&dir)).unwrap();

    let (code, _, err) = pairs(&input, &["--checkpoint", dir_arg, "--shingle", "words:3"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("other settings (shingles words:5 then, words:3 now)"),
        "{err}"
    );
    let (code, _, err) = pairs(&input, &["--checkpoint", dir_arg, "--level", "story"]);
    assert_eq!(code, 1);
    assert!(err.contains("(level near-copy then, story now)"), "{err}");
    let (code, _, err) = pairs(&other, &["--checkpoint", dir_arg]);
    assert_eq!(code, 1);
    assert!(
        err.contains("holds the fingerprints of other inputs")
            && err.contains("its first input was ")
            && err.contains("in.jsonl, this run's is ")
            && err.contains("other.jsonl; inputs are known by their names"),
        "{err}"
    );
    let (code, _, err) = pairs(&input, &["--checkpoint", input.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("in.jsonl: is not a directory"), "{err}");

    // A run still reading (standard input left open) holds the checkpoint.
    let mut reading = std::process::Command::new(assert_cmd::cargo::cargo_bin("neardup"))
        .args(["pairs", "--quiet", "--checkpoint", dir_arg, "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until it holds the lock (it writes its pid there): a run started meanwhile
    // would take the checkpoint first and the reading run would be the one refused.
    let started = std::time::Instant::now();
    let pid = reading.id().to_string();
    while std::fs::read_to_string(dir.join("lock"))
        .unwrap_or_default()
        .trim()
        != pid
    {
        assert!(
            reading.try_wait().unwrap().is_none(),
            "the reading run stopped before taking the checkpoint"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "the reading run did not take the checkpoint"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (code, _, refused) = pairs(&input, &["--checkpoint", dir_arg]);
    assert_eq!(code, 1, "{refused}");
    drop(reading.stdin.take());
    reading.wait().unwrap();
    assert!(
        refused.contains("is in use by another process (pid "),
        "{refused}"
    );

    assert!(
        std::fs::read(log(&dir)).unwrap() == kept,
        "a refusal changed the checkpoint"
    );
    let (_, _, err) = pairs(&input, &["--checkpoint", dir_arg]);
    assert_eq!(reused(&err), BATCH + 1000 + 1, "{err}");
}

#[test]
fn a_killed_run_resumes_from_its_checkpoint_with_the_same_output() {
    let s = Scratch::new();
    let mut big = String::new();
    for i in 0..100_000u64 {
        let text = article_of(i);
        big.push_str(&serde_json::json!({"id": i, "text": text}).to_string());
        big.push('\n');
    }
    let input = s.write("big.jsonl", big);
    let dir = s.path("ckpt");
    let output = s.path("out.jsonl");
    let run = || {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("neardup"));
        cmd.args(["cluster", "--checkpoint"])
            .arg(&dir)
            .arg("-o")
            .arg(&output)
            .arg(&input);
        cmd
    };
    let mut child = run().stderr(std::process::Stdio::null()).spawn().unwrap();
    // Kill it once it has kept a few batches (about 4.5 MB each), not at the end of a
    // frame (or let it finish on a fast machine).
    while child.try_wait().unwrap().is_none()
        && std::fs::metadata(log(&dir)).map_or(0, |m| m.len()) < 20 << 20
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let _ = std::fs::remove_file(&output);

    let resumed = run().output().unwrap();
    let err = stderr_of(&resumed);
    assert!(resumed.status.success(), "{err}");
    assert!(reused(&err) >= BATCH, "nothing was reused: {err}");
    let plain = neardup().arg("cluster").arg(&input).output().unwrap();
    assert!(
        std::fs::read(&output).unwrap() == plain.stdout,
        "the resumed run's clusters differ from an uninterrupted run's"
    );
}

/// `--checkpoint .` (a directory of the user's files) is refused: fingerprints.log and
/// lock were written among them. A refused run leaves no lock behind; an empty
/// directory, or one holding a checkpoint, is taken.
#[test]
fn a_directory_of_other_files_is_not_a_checkpoint() {
    let s = Scratch::new();
    let input = s.jsonl("in.jsonl", &good_records());
    let mine = s.path("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "precious\n").unwrap();
    let (code, out, err) = pairs(&input, &["--checkpoint", mine.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty());
    assert!(
        err.contains("holds other files and no neardup checkpoint"),
        "{err}"
    );
    let names = |dir: &Path| {
        let mut n: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(&mine), ["notes.txt"]);
    // A foreign fingerprints.log: refused, and the lock it took removed.
    let foreign = s.path("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(log(&foreign), "not a checkpoint, but a long enough file\n").unwrap();
    let (code, _, err) = pairs(&input, &["--checkpoint", foreign.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is not a neardup checkpoint"), "{err}");
    assert_eq!(names(&foreign), ["fingerprints.log"]);
    // Empty, then holding the checkpoint it made: taken both times.
    let empty = s.path("empty");
    std::fs::create_dir(&empty).unwrap();
    for _ in 0..2 {
        let (code, _, err) = pairs(&input, &["-q", "--checkpoint", empty.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
    }
}
