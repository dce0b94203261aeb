//! A run its observer stops ([`Observer::cancelled`]): it returns `Cancelled`, begins no
//! stage after the one it was stopped in, skips the work of that stage not yet begun,
//! and a checkpoint keeps the batches saved before the stop.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use neardup::feed::{
    self, Access, FeedIndex, IndexSettings, IngestMode, IngestOptions, Level as FeedLevel,
    VerdictKind,
};
use neardup::input::{InputSpec, Problem};
use neardup::{ErrorKind, Level, Observer, Outcome, PipelineBuilder, Stage};

use crate::checkpoint::{BATCH, corpus};
use crate::util::*;

/// Where a run is stopped.
#[derive(Clone, Copy, Debug)]
enum StopAt {
    Never,
    /// When the stage begins.
    Start(Stage),
    /// When the stage has done its first unit of work.
    FirstWork(Stage),
    /// When a bad record whose message holds this text is reported.
    Problem(&'static str),
}

/// Records what a run began and did, and stops it where told.
struct Stopper {
    at: StopAt,
    begun: Mutex<Vec<Stage>>,
    work: Mutex<HashMap<Stage, (Option<u64>, u64)>>,
    stopped: AtomicBool,
}

impl Stopper {
    fn new(at: StopAt) -> Self {
        Stopper {
            at,
            begun: Mutex::default(),
            work: Mutex::default(),
            stopped: AtomicBool::new(false),
        }
    }

    fn begun(&self) -> Vec<Stage> {
        self.begun.lock().unwrap().clone()
    }

    /// The stage's total work and the work told done.
    fn work(&self, stage: Stage) -> (Option<u64>, u64) {
        self.work.lock().unwrap()[&stage]
    }
}

impl Observer for Stopper {
    fn stage_started(&self, stage: Stage, total: Option<u64>) {
        self.begun.lock().unwrap().push(stage);
        self.work.lock().unwrap().insert(stage, (total, 0));
        if matches!(self.at, StopAt::Start(s) if s == stage) {
            self.stopped.store(true, Ordering::SeqCst);
        }
    }

    fn advanced(&self, stage: Stage, amount: u64) {
        self.work.lock().unwrap().get_mut(&stage).unwrap().1 += amount;
        if matches!(self.at, StopAt::FirstWork(s) if s == stage) {
            self.stopped.store(true, Ordering::SeqCst);
        }
    }

    fn problem(&self, problem: &Problem) {
        if matches!(self.at, StopAt::Problem(text) if problem.to_string().contains(text)) {
            self.stopped.store(true, Ordering::SeqCst);
        }
    }

    fn cancelled(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }
}

fn run(builder: PipelineBuilder, input: &Path, stopper: &Stopper) -> neardup::Result<Outcome> {
    let pipeline = builder.build().unwrap();
    pipeline.run(&[InputSpec::Path(input.to_path_buf())], stopper)
}

fn assert_cancelled(result: neardup::Result<Outcome>, at: StopAt) {
    match result {
        Err(e) if matches!(e.kind(), ErrorKind::Cancelled) => {}
        Err(e) => panic!("stopped at {at:?}: {e}"),
        Ok(_) => panic!("stopped at {at:?}, but the run finished"),
    }
}

fn builder(level: Level) -> PipelineBuilder {
    let builder = PipelineBuilder::new().level(level).threshold(0.5);
    match level {
        Level::NearCopy => builder.passages(Some(Default::default())),
        Level::Story => builder,
    }
}

#[test]
fn a_run_stopped_as_a_stage_begins_begins_no_later_stage_at_either_level() {
    let s = Scratch::new();
    let input = s.write("corpus.jsonl", corpus(1));
    for level in [Level::NearCopy, Level::Story] {
        let whole = Stopper::new(StopAt::Never);
        let outcome = run(builder(level), &input, &whole).unwrap();
        assert!(
            outcome.stats.verified_pairs > 0,
            "{level:?}: the corpus has pairs"
        );
        let stages = whole.begun();
        let expected: &[Stage] = match level {
            Level::NearCopy => &[
                Stage::Read,
                Stage::Candidates,
                Stage::Verify,
                Stage::Cluster,
                Stage::Align,
            ],
            Level::Story => &[
                Stage::Read,
                Stage::Weigh,
                Stage::Candidates,
                Stage::Verify,
                Stage::Cluster,
            ],
        };
        assert_eq!(stages, expected);
        for (i, &stage) in stages.iter().enumerate() {
            let at = StopAt::Start(stage);
            let stopper = Stopper::new(at);
            assert_cancelled(run(builder(level), &input, &stopper), at);
            assert_eq!(
                stopper.begun(),
                &stages[..=i],
                "{level:?}, stopped as {stage:?} began"
            );
        }
    }
}

#[test]
fn a_stopped_stage_skips_the_work_it_had_not_begun() {
    let s = Scratch::new();
    let input = s.write("corpus.jsonl", corpus(3));
    // Two threads, so that at most a few pieces of work are under way when it stops.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    for (level, stage) in [
        (Level::NearCopy, Stage::Candidates),
        (Level::Story, Stage::Weigh),
        (Level::Story, Stage::Candidates),
    ] {
        let at = StopAt::FirstWork(stage);
        let stopper = Stopper::new(at);
        pool.install(|| assert_cancelled(run(builder(level), &input, &stopper), at));
        let (total, done) = stopper.work(stage);
        let total = total.expect("the stage's total is known");
        assert!(
            done > 0 && done < total,
            "{level:?} {stage:?}: {done} of {total} done"
        );
        assert_eq!(stopper.begun().last(), Some(&stage));
    }
}

#[test]
fn an_evaluation_stopped_part_way_returns_cancelled() {
    let s = Scratch::new();
    let input = s.write("corpus.jsonl", corpus(1));
    let outcome = run(
        builder(Level::NearCopy).candidate_scores(true),
        &input,
        &Stopper::new(StopAt::Never),
    )
    .unwrap();
    let gold = neardup::eval::gold::parse_gold(
        "gold",
        br#"{"a": "doc-10", "b": "doc-3010", "same_story": true}"#,
        neardup::eval::gold::GoldFormat::JsonLines,
        None,
        &Default::default(),
    )
    .unwrap();
    let config = neardup::eval::sweep::SweepConfig::default();
    let at = StopAt::FirstWork(Stage::Cluster);
    let stopper = Stopper::new(at);
    let result = neardup::eval::sweep::evaluate(&outcome, &gold, &config, &stopper);
    assert!(matches!(result.map_err(|e| e.kind().to_string()), Err(m) if m.contains("stopped")));
    let (total, done) = stopper.work(Stage::Cluster);
    assert_eq!((total, done), (Some(config.thresholds.len() as u64), 1));
    let whole =
        neardup::eval::sweep::evaluate(&outcome, &gold, &config, &Stopper::new(StopAt::Never));
    assert!(whole.is_ok());
}

#[test]
fn a_checkpointed_run_stopped_while_reading_is_resumed_from_the_batches_it_saved() {
    let s = Scratch::new();
    let input = s.write("corpus.jsonl", corpus(3));
    let records = 3 * BATCH + 1000;
    let checkpoint = s.path("checkpoint");
    let pipeline = |checkpoint: Option<&Path>| {
        PipelineBuilder::new().checkpoint(checkpoint.map(Path::to_path_buf))
    };
    let pairs = |outcome: &Outcome| {
        let mut out = Vec::new();
        neardup::report::write_pairs(&mut out, outcome, neardup::report::Format::Jsonl).unwrap();
        out
    };
    let expected = pairs(&run(pipeline(None), &input, &Stopper::new(StopAt::Never)).unwrap());

    // The repeated id of record 7000 is filed after the whole first batch was saved.
    let at = StopAt::Problem("duplicate id");
    assert_cancelled(
        run(pipeline(Some(&checkpoint)), &input, &Stopper::new(at)),
        at,
    );
    let resumed = run(
        pipeline(Some(&checkpoint)),
        &input,
        &Stopper::new(StopAt::Never),
    )
    .unwrap();
    let reused = resumed.stats.checkpoint_records as usize;
    // At least the first batch; on a loaded machine the reader may have saved every
    // batch before the stop was seen.
    assert!(
        (BATCH..=records).contains(&reused),
        "{reused} records reused of {records}"
    );
    assert_eq!(pairs(&resumed), expected);
}

/// Sends `signal` (by name, e.g. "TERM") to a child process.
/// Adds `input` to a new copy-level index in `dir`, stopped by `stopper`; the verdicts
/// its sink was handed, as (id, kind).
fn add_to_index(
    dir: &Path,
    input: &Path,
    stopper: &Stopper,
) -> (neardup::Result<()>, Vec<(String, VerdictKind)>) {
    let pipeline = PipelineBuilder::new().threshold(0.5).build().unwrap();
    if !dir.join("index.meta").exists() {
        let settings = IndexSettings::new(pipeline.settings(), FeedLevel::Copy, None).unwrap();
        FeedIndex::create(dir, &settings).unwrap();
    }
    let mut index = FeedIndex::open(dir, Access::Write, &neardup::progress::Silent).unwrap();
    let mut verdicts = Vec::new();
    let result = feed::ingest(
        &mut index,
        &[InputSpec::Path(input.to_path_buf())],
        IngestMode::Add,
        &IngestOptions::default(),
        stopper,
        &mut |group| {
            verdicts.extend(group.iter().map(|v| (v.id.clone(), v.kind)));
            Ok(())
        },
    );
    (result.map(drop), verdicts)
}

#[test]
fn an_index_add_stopped_part_way_stored_what_it_answered_and_nothing_else() {
    let s = Scratch::new();
    let input = s.write("corpus.jsonl", corpus(2));
    let (whole, expected) = add_to_index(&s.path("whole"), &input, &Stopper::new(StopAt::Never));
    whole.unwrap();

    // The malformed record 100 is filed while the first batch is decided: the run stops
    // before the second.
    let at = StopAt::Problem(":101:");
    let stopped_dir = s.path("stopped");
    let (stopped, answered) = add_to_index(&stopped_dir, &input, &Stopper::new(at));
    match stopped {
        Err(e) if matches!(e.kind(), ErrorKind::Cancelled) => {}
        other => panic!("expected Cancelled, got {other:?}"),
    }
    assert!(
        !answered.is_empty() && answered.len() < BATCH,
        "{}",
        answered.len()
    );
    assert_eq!(answered, expected[..answered.len()]);
    let reopened = FeedIndex::open(&stopped_dir, Access::Read, &neardup::progress::Silent);
    assert_eq!(reopened.unwrap().len(), answered.len(), "stored = answered");

    // Run again, it answers the stored records as before and adds the rest.
    let (again, all) = add_to_index(&stopped_dir, &input, &Stopper::new(StopAt::Never));
    again.unwrap();
    assert_eq!(all, expected);
}

fn send(child: &std::process::Child, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

fn generated_corpus(s: &Scratch, records: usize) -> std::path::PathBuf {
    let mut next = xorshift(7);
    let mut text = String::new();
    for i in 0..records {
        let words: Vec<String> = (0..40).map(|_| format!("w{}", next(5000))).collect();
        text.push_str(
            &serde_json::json!({"id": i.to_string(), "text": words.join(" ")}).to_string(),
        );
        text.push('\n');
    }
    s.write("in.jsonl", text)
}

/// The files left in `dir`.
fn left_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// SIGTERM at several moments of a `dedup` run with three outputs: the run stops with
/// exit status 143 and one line, leaving no temporary file and no output, or (signalled
/// too late) has committed all of them; never some. Before, a signal killed the process
/// and left `.tmpXXXXXX` files, or `-o` without `--report`.
#[test]
fn a_signal_leaves_all_outputs_or_none_and_no_temporary_file() {
    let s = Scratch::new();
    let input = generated_corpus(&s, 40_000);
    for delay_ms in [0, 50, 200, 500, 1000, 2000] {
        let out = s.path(&format!("out{delay_ms}"));
        std::fs::create_dir(&out).unwrap();
        let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("neardup"))
            .args(["dedup", "-q", "-o"])
            .arg(out.join("kept.jsonl"))
            .arg("--report")
            .arg(out.join("report.jsonl"))
            .arg("--rejects")
            .arg(out.join("rejects.jsonl"))
            .arg(&input)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        send(&child, "TERM");
        let result = child.wait_with_output().unwrap();
        let err = stderr_of(&result);
        match result.status.code() {
            Some(143) => {
                assert_eq!(
                    err.trim(),
                    "neardup: stopped: SIGTERM received; no output written"
                );
                assert_eq!(left_in(&out), Vec::<String>::new(), "{delay_ms} ms");
            }
            Some(0) => assert_eq!(
                left_in(&out),
                ["kept.jsonl", "rejects.jsonl", "report.jsonl"],
                "{delay_ms} ms"
            ),
            // Signalled before the handler was installed: killed at once, as ever.
            None if delay_ms == 0 => {}
            code => panic!("{delay_ms} ms: exit {code:?}: {err}"),
        }
    }
}

/// SIGTERM during the write stage: `-o` is a named pipe the test reads from, so the run
/// is surely writing (and the other outputs' temporary files exist) when signalled. It
/// stops between records and deletes its temporary files.
#[test]
fn a_signal_during_the_write_stage_stops_it_and_removes_its_temporary_files() {
    let s = Scratch::new();
    let input = generated_corpus(&s, 5_000); // far more than a pipe's buffer
    let out = s.path("out");
    std::fs::create_dir(&out).unwrap();
    let fifo = s.fifo("kept.fifo");
    let (child, mut reader) = dedup_writing_to(
        &fifo,
        &[
            "--report".as_ref(),
            out.join("report.jsonl").as_os_str(),
            "--rejects".as_ref(),
            out.join("rejects.jsonl").as_os_str(),
            "--checkpoint".as_ref(),
            s.path("ck").as_os_str(),
            input.as_os_str(),
        ],
    );
    assert_eq!(left_in(&out).len(), 2, "the temporary files");
    send(&child, "TERM");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut reader, &mut rest).unwrap();
    let result = child.wait_with_output().unwrap();
    let err = stderr_of(&result);
    assert_eq!(result.status.code(), Some(143), "{err}");
    assert!(
        err.contains("stopped: SIGTERM received; no output written"),
        "{err}"
    );
    assert!(err.contains("checkpoint"), "{err}");
    assert_eq!(left_in(&out), Vec::<String>::new());
    let whole = std::fs::metadata(&input).unwrap().len();
    assert!(((rest.len() + 1) as u64) < whole, "stopped part way");
}

/// SIGINT while a story-level run writes: `--stats-out` is committed with the other
/// outputs, so it is left out too. It was written by the library once the statistics
/// were counted, and a run stopped after that left it alone.
#[test]
fn a_signal_after_the_statistics_leaves_no_stats_out_either() {
    let s = Scratch::new();
    let input = generated_corpus(&s, 5_000); // far more than a pipe's buffer
    let out = s.path("out");
    std::fs::create_dir(&out).unwrap();
    let fifo = s.fifo("kept.fifo");
    let (child, mut reader) = dedup_writing_to(
        &fifo,
        &[
            "--level".as_ref(),
            "story".as_ref(),
            "--report".as_ref(),
            out.join("report.jsonl").as_os_str(),
            "--stats-out".as_ref(),
            out.join("corpus.stats").as_os_str(),
            input.as_os_str(),
        ],
    );
    send(&child, "INT");
    std::thread::sleep(std::time::Duration::from_millis(200));
    std::io::Read::read_to_end(&mut reader, &mut Vec::new()).unwrap();
    let result = child.wait_with_output().unwrap();
    let err = stderr_of(&result);
    assert_eq!(result.status.code(), Some(130), "{err}");
    assert!(
        err.contains("stopped: SIGINT received; no output written"),
        "{err}"
    );
    assert_eq!(left_in(&out), Vec::<String>::new());
}

/// Starts `neardup dedup -q -o FIFO ARGS…` and returns it with the reading end of the
/// pipe once its first byte has come: the run is writing its output then.
fn dedup_writing_to(
    fifo: &std::path::Path,
    args: &[&std::ffi::OsStr],
) -> (std::process::Child, std::fs::File) {
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("neardup"))
        .args(["dedup", "-q", "-o"])
        .arg(fifo)
        .args(args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = std::fs::File::open(fifo).unwrap();
    let mut first = [0u8; 1];
    std::io::Read::read_exact(&mut reader, &mut first).unwrap();
    (child, reader)
}

/// Starts `neardup cluster -q - -o OUTPUT` reading a standard input that stays open, and
/// returns it once its output's temporary file is there (its outputs are opened before
/// the run), with that file's name. The run waits for input until killed.
fn cluster_waiting_for_input(output: &Path) -> (std::process::Child, String) {
    let dir = output.parent().unwrap();
    let before = left_in(dir);
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("neardup"))
        .args(["cluster", "-q", "-", "-o"])
        .arg(output)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..500 {
        let new: Vec<String> = left_in(dir)
            .into_iter()
            .filter(|n| !before.contains(n))
            .collect();
        if let [name] = new.as_slice() {
            return (child, name.clone());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("no temporary file appeared in {}", dir.display());
}

/// `kill -9` of a run with `-o OUT` leaves its temporary file; its name says which output
/// and which process it was for, and the next run writing OUT removes it, but not the
/// temporary file of a run still going. It was an anonymous `.tmpXXXXXX` left for good.
#[test]
fn a_later_run_removes_the_temporary_file_of_a_killed_run_not_of_a_live_one() {
    let s = Scratch::new();
    let input = s.jsonl("in.jsonl", &good_records());
    let out = s.path("out");
    std::fs::create_dir(&out).unwrap();
    let output = out.join("clusters.jsonl");

    let (mut killed, stale) = cluster_waiting_for_input(&output);
    let prefix = format!(".clusters.jsonl.neardup-{}-", killed.id());
    assert!(
        stale.starts_with(&prefix) && stale.ends_with(".tmp"),
        "{stale}"
    );
    killed.kill().unwrap(); // SIGKILL: no handler runs
    killed.wait().unwrap();
    assert_eq!(left_in(&out), [stale], "left by kill -9");

    let (mut live, running) = cluster_waiting_for_input(&output);
    assert!(
        running.starts_with(&format!(".clusters.jsonl.neardup-{}-", live.id())),
        "{running}"
    );
    // Another output's leftover is not this output's to remove.
    let other = out.join(".other.jsonl.neardup-999999999-abcdef.tmp");
    std::fs::write(&other, "").unwrap();

    let done = neardup()
        .args(["cluster", "-q", "-o"])
        .arg(&output)
        .arg(&input)
        .output()
        .unwrap();
    assert!(done.status.success(), "{}", stderr_of(&done));
    let mut expected = vec![
        ".other.jsonl.neardup-999999999-abcdef.tmp".to_string(),
        running.clone(),
        "clusters.jsonl".to_string(),
    ];
    expected.sort();
    assert_eq!(left_in(&out), expected, "the killed run's file removed");

    live.kill().unwrap();
    live.wait().unwrap();
}
