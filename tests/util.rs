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
