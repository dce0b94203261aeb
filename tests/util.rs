//! Test harness: run the CLI in a temporary directory, find the data, sample texts.

#![allow(dead_code)] // each test module uses a different part of the harness

use std::io::Write;
use std::path::{Path, PathBuf};

/// The `neardup` binary, ready for arguments.
pub fn neardup() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("neardup").expect("the neardup binary is built")
}

/// The project's shipped fixtures.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The real corpora, when `NEARDUP_DATA` points at them; `None` (with a note) otherwise.
pub fn data_dir() -> Option<PathBuf> {
    match std::env::var_os("NEARDUP_DATA") {
        Some(d) if Path::new(&d).join("reuters21578.jsonl").exists() => Some(PathBuf::from(d)),
        _ => {
            eprintln!(
                "note: NEARDUP_DATA is not set (or has no reuters21578.jsonl): skipping a real-data check"
            );
            None
        }
    }
}

/// A temporary directory with helpers to write inputs into it.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Scratch {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `bytes` to `name` (creating parent directories) and returns the path.
    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create directories");
        }
        std::fs::write(&path, bytes).expect("write input");
        path
    }

    /// Makes a named pipe `name` (with `mkfifo`) and returns its path.
    pub fn fifo(&self, name: &str) -> PathBuf {
        let path = self.path(name);
        let made = std::process::Command::new("mkfifo").arg(&path).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo {}", path.display());
        path
    }

    /// Writes JSON Lines records built from `(id, text)` pairs.
    pub fn jsonl(&self, name: &str, records: &[(&str, &str)]) -> PathBuf {
        let mut out = String::new();
        for (id, text) in records {
            out.push_str(&serde_json::json!({"id": id, "text": text}).to_string());
            out.push('\n');
        }
        self.write(name, out)
    }
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

pub fn stdout_of(output: &std::process::Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 output")
}

pub fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `command`, which must be refused as a usage error: exit 2, `message` and clap's
/// pointer to `--help` on standard error, nothing on standard output. Returns the error.
pub fn refused_as_usage(command: &mut assert_cmd::Command, message: &str) -> String {
    let out = command.output().unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{command:?}: {err}");
    assert!(err.contains(message), "{command:?}: {err}");
    assert!(err.contains("try '--help'"), "{command:?}: {err}");
    assert!(stdout_of(&out).is_empty(), "{command:?}");
    err
}

pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// Sample articles written for these tests: `RATE` and `RATE_COPY` are near-copies
/// (one word and the punctuation differ), `STORM` is unrelated.
pub const RATE: &str = "The central bank raised its benchmark interest rate by half a percentage point on \
Tuesday, the third increase this year, saying inflation remained far above its target. Officials said \
further increases were likely if price pressures did not ease in the coming months, and markets fell \
sharply after the announcement.";
pub const RATE_COPY: &str = "The central bank raised its benchmark interest rate by half a percentage point on \
Tuesday - the third increase this year - saying inflation remained well above its target. Officials said \
further increases were likely if price pressures did not ease in the coming months, and markets fell \
sharply after the announcement.";
pub const STORM: &str = "A powerful storm closed schools and roads across the northern region for a second \
day, leaving thousands of homes without electricity while crews worked to clear fallen trees and restore \
power lines before temperatures drop again this weekend.";
pub const STORM_COPY: &str = "A powerful storm closed schools and roads across the northern region for a \
second day, leaving thousands of homes without electricity while crews worked to clear fallen trees and \
restore power lines before temperatures drop again at the weekend.";

/// Four good records: two near-copy pairs.
pub fn good_records() -> Vec<(&'static str, &'static str)> {
    vec![
        ("rate-1", RATE),
        ("storm-1", STORM),
        ("rate-2", RATE_COPY),
        ("storm-2", STORM_COPY),
    ]
}

/// A seeded xorshift generator: `next(n)` is a number below `n`.
pub fn xorshift(mut state: u64) -> impl FnMut(u64) -> u64 {
    move |n| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    }
}

/// News-like articles for the story level: stories told again with other words, updated
/// copies, a templated report whose editions differ in their figures, dates a few days
/// apart (some beyond the 72-hour window, some undated), and 105 copies of one text, so
/// that the story level's buckets (capped at 100) overflow into id-order windows.
pub fn generated_stories() -> String {
    let mut next = xorshift(0x9E37_79B9_7F4A_7C15);
    let syllables = [
        "ka", "lo", "mi", "ner", "sa", "tu", "vel", "dor", "an", "pri", "gos", "ul", "fe", "rin",
    ];
    let mut word = |n: u64| -> String {
        let mut w = String::new();
        let mut x = n + 7;
        while x > 0 {
            w.push_str(syllables[(x % 14) as usize]);
            x /= 14;
        }
        w
    };
    // Zipf-like: low numbers (common words) far more often than high ones.
    let vocabulary: Vec<String> = (0..3000).map(&mut word).collect();
    let draw = |next: &mut dyn FnMut(u64) -> u64| -> String {
        let r = next(3000);
        vocabulary[(r * r / 3000) as usize].clone()
    };
    let mut stories: Vec<Vec<String>> = Vec::new();
    let mut out = String::new();
    let mut push = |id: String, text: String, date: Option<String>| {
        let record = match date {
            Some(d) => serde_json::json!({"id": id, "text": text, "date": d}),
            None => serde_json::json!({"id": id, "text": text}),
        };
        out.push_str(&record.to_string());
        out.push('\n');
    };
    for i in 0..3000u64 {
        let mut words: Vec<String> = match i % 6 {
            // A rewrite of an earlier story: a third of its words replaced.
            1 | 4 if !stories.is_empty() => {
                let mut w = stories[next(stories.len() as u64) as usize].clone();
                for _ in 0..w.len() / 3 {
                    let at = next(w.len() as u64) as usize;
                    if w[at].chars().next().unwrap().is_lowercase() {
                        w[at] = draw(&mut next);
                    }
                }
                w
            }
            // An update: an earlier story with a paragraph more.
            2 if !stories.is_empty() => {
                let mut w = stories[next(stories.len() as u64) as usize].clone();
                w.extend((0..20).map(|_| draw(&mut next)));
                w
            }
            // A templated report: the same words every time, other figures.
            3 => {
                let mut w: Vec<String> = "the weekly report of the Kalomi Exchange said trading \
                    volume rose to"
                    .split(' ')
                    .map(String::from)
                    .collect();
                w.push(format!("{}.{} pct", next(20), next(10)));
                w.extend(
                    "while Sanerdor shares closed at"
                        .split(' ')
                        .map(String::from),
                );
                w.push(format!("{} dlrs", 10 + next(90)));
                w
            }
            _ => {
                let mut w: Vec<String> = (0..60 + next(60)).map(|_| draw(&mut next)).collect();
                for _ in 0..3 {
                    let at = next(w.len() as u64) as usize;
                    let mut name = draw(&mut next);
                    name[..1].make_ascii_uppercase();
                    w[at] = name;
                }
                let at = next(w.len() as u64) as usize;
                w[at] = format!("{} mln", next(1000));
                w
            }
        };
        if i % 6 == 0 || i % 6 == 5 {
            stories.push(words.clone());
        }
        words.truncate(400);
        let date = (i % 5 != 4).then(|| format!("2024-03-{:02}", 1 + (i * 7 + next(3)) % 28));
        push(format!("story-{i:04}"), words.join(" "), date);
    }
    // Rare words, so that the copies weigh something and share every band.
    let copied: Vec<String> = (0..80)
        .map(|_| vocabulary[next(3000) as usize].clone())
        .collect();
    // 105 copies in 3,105 documents: rare enough to weigh something (IDF above the
    // common floor of 3), more than the cap of 100.
    for i in 0..105 {
        push(format!("copy-{i:03}"), copied.join(" "), None);
    }
    out
}
