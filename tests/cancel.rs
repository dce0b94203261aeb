//! A run its observer stops ([`Observer::cancelled`]): it returns `Cancelled`, begins no
//! stage after the one it was stopped in, skips the work of that stage not yet begun,
//! and a checkpoint keeps the batches saved before the stop.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

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
        builder(Level::NearCopy),
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
    assert!(
        (BATCH..records).contains(&reused),
        "{reused} records reused of {records}"
    );
    assert_eq!(pairs(&resumed), expected);
}
