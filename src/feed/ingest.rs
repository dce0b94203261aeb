//! Adding (or checking) the articles of input files in bulk.
//!
//! Four stages run at once: a reader thread cuts inputs into batches of raw records, the
//! calling thread parses and fingerprints each batch on all cores (its rayon pool), a
//! deciding thread decides and adds articles one by one, in input order (each sees every
//! article before it) and writes each batch to the log, and a sync thread makes each written
//! batch durable with one `fdatasync` and only then hands out its verdicts: a verdict is
//! only ever seen for an article that is durable, and syncing overlaps with deciding.

use std::collections::BTreeMap;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use rayon::prelude::*;

use super::{Article, FeedIndex, IgnoredDate, Syncer, Verdict, VerdictKind, now};
use crate::error::{Error, ErrorKind, Result};
use crate::input::{
    self, FieldNames, FirstSeen, InputFormat, InputSpec, Problem, ProblemKind, ReadEvent,
    ReadLimits,
};
use crate::progress::{Observer, Stage};

/// Add the articles, or only check them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IngestMode {
    /// Decide and add each article (`index add`).
    Add,
    /// Decide without adding (`index query`): articles are compared with the index only,
    /// not with one another.
    Query,
}

/// How inputs are read.
#[derive(Clone, Debug, Default)]
pub struct IngestOptions {
    /// Field names of JSON Lines records.
    pub fields: FieldNames,
    /// Input format for every input, overriding file names.
    pub format: Option<InputFormat>,
    /// Record size and batching limits.
    pub limits: ReadLimits,
    /// Stop at the first bad record (after committing what came before it).
    pub strict: bool,
}

/// What a bulk run did.
#[derive(Clone, Debug, Default)]
pub struct IngestStats {
    /// Inputs read (files, standard input).
    pub sources: u64,
    /// Files of input directories left out, not being named as inputs.
    pub skipped_files: input::SkippedFiles,
    /// Records read, good or bad.
    pub records: u64,
    /// Articles decided (added, or checked by a query). Not counted when adding: an
    /// article already indexed with the same text (see `already_indexed`).
    pub articles: u64,
    /// Of which new (not counting those already indexed: the four counts add up).
    pub new: u64,
    /// Of which duplicates (not counting those already indexed).
    pub duplicates: u64,
    /// Of which rewrites (story level; not counting those already indexed).
    pub rewrites: u64,
    /// Query: of the articles, how many were already indexed. Add: articles not added
    /// because their id was already indexed with the same text (a re-send, or the part
    /// of an input a killed run had added); their stored verdicts are passed on.
    pub already_indexed: u64,
    /// Bad records and inputs, by [`ProblemKind::label`].
    pub problems: BTreeMap<&'static str, u64>,
    /// Date fields not used, unparsable or later than the article's arrival: those
    /// articles count as undated (they match at any distance and are stored at the
    /// index's clock for compaction, `FeedIndex::time_of`).
    pub ignored_dates: u64,
    /// The first of them.
    pub ignored_date_example: Option<IgnoredDate>,
    /// Wall time.
    pub elapsed: Duration,
}

impl IngestStats {
    /// Number of bad records and inputs.
    pub fn bad(&self) -> u64 {
        self.problems.values().sum()
    }
}

struct Prepared {
    batch: input::Batch,
    articles: Vec<Result<Article, ProblemKind>>,
}

enum Stage2 {
    Batch(Prepared),
    Problem(Problem),
    /// Reading stopped for want of resources: after the batches before it, the error.
    Failed(Error),
}

/// Reads `inputs` and adds (or checks) every article, handing verdicts to `sink` in input
/// order, a commit group at a time, once they are durable. Bad records go to `observer` and are counted.
/// When `observer` asks to stop, the run stops between batches with
/// [`ErrorKind::Cancelled`]: the batches before were stored whole and `sink` has had their
/// verdicts, and nothing of the rest was stored. When
/// adding or querying, an id already indexed with the same text passes on its stored
/// verdict (so a killed run can be rerun on the same input), and with other text it is a
/// bad record of kind `duplicate_id`.
pub fn ingest(
    index: &mut FeedIndex,
    inputs: &[InputSpec],
    mode: IngestMode,
    options: &IngestOptions,
    observer: &dyn Observer,
    sink: &mut (dyn FnMut(&[Verdict]) -> std::io::Result<()> + Send),
) -> Result<IngestStats> {
    let started = Instant::now();
    if mode == IngestMode::Add {
        index.writable()?;
    }
    if inputs.iter().filter(|i| **i == InputSpec::Stdin).count() > 1 {
        return Err(Error::config("standard input ('-') can be given only once"));
    }
    let mut stats = IngestStats::default();
    let plan = input::plan_sources(inputs, options.format)?;
    let sources = plan.sources;
    stats.sources = sources.len() as u64;
    stats.skipped_files = plan.skipped;
    for p in &plan.problems {
        on_problem(p, observer, &mut stats, options.strict)?;
    }
    let pipeline = index.pipeline.clone();
    let level = index.settings.level;
    let index_name = index.dir.display().to_string();
    let total: Option<u64> = sources.iter().map(|s| s.size).sum();
    observer.stage_started(Stage::Read, total);
    let (raw_tx, raw_rx) = sync_channel::<ReadEvent>(2);
    let (tx, rx) = sync_channel::<Stage2>(2);
    // Written batches waiting for their sync: at most two behind the one being decided.
    let (ack_tx, ack_rx) = sync_channel::<(Option<Syncer>, Vec<Verdict>)>(2);
    let result = std::thread::scope(|scope| -> Result<()> {
        let acknowledger = scope.spawn(move || -> Result<()> {
            for (syncer, verdicts) in ack_rx {
                if let Some(syncer) = syncer {
                    syncer.sync()?;
                }
                sink(&verdicts).map_err(|e| Error::io("writing verdicts", e))?;
            }
            Ok(())
        });
        let sources = &sources;
        scope.spawn(move || {
            let mut on_read = |n| observer.advanced(Stage::Read, n);
            input::read_sources(sources, options.limits, &mut on_read, &mut |event| {
                raw_tx.send(event).is_ok()
            });
        });
        // Fingerprints are made on this thread and decisions on one of their own, so that
        // the parallel steps run on the caller's rayon pool: a thread spawned here would
        // run them on the global pool, which `ThreadPool::install` (the Python package's
        // per-process pool) does not reach.
        let pipeline = &pipeline;
        let stats = &mut stats;
        let deciding = scope.spawn(move || -> Result<()> {
            let decided = (|| -> Result<()> {
                let mut verdicts: Vec<Verdict> = Vec::new();
                for event in rx {
                    // Between batches: every batch stored so far has gone to the sync
                    // thread, whose verdicts still reach `sink`.
                    crate::progress::go_on(observer)?;
                    let prepared = match event {
                        Stage2::Problem(p) => {
                            on_problem(&p, observer, stats, options.strict)?;
                            continue;
                        }
                        Stage2::Batch(p) => p,
                        Stage2::Failed(e) => return Err(e),
                    };
                    let mut failure = None;
                    for (record, article) in prepared.batch.records.iter().zip(prepared.articles) {
                        stats.records += 1;
                        let source = &sources[record.location.source as usize];
                        let problem = |kind| Problem {
                            source: source.name.clone(),
                            line: (source.format == InputFormat::JsonLines)
                                .then_some(record.location.line),
                            kind,
                        };
                        let article = match article {
                            Ok(a) => a,
                            Err(kind) => {
                                if let Err(e) =
                                    on_problem(&problem(kind), observer, stats, options.strict)
                                {
                                    failure = Some(e);
                                    break;
                                }
                                continue;
                            }
                        };
                        if let Some(date) = &article.ignored_date {
                            stats.ignored_dates += 1;
                            stats
                                .ignored_date_example
                                .get_or_insert_with(|| date.clone());
                        }
                        let verdict = match mode {
                            IngestMode::Add => index.add(&article)?,
                            IngestMode::Query => index.query(&article)?,
                        };
                        let Some(verdict) = verdict else {
                            let kind = ProblemKind::DuplicateId {
                                id: article.id,
                                first: FirstSeen::Index {
                                    path: index_name.clone(),
                                    adding: mode == IngestMode::Add,
                                },
                                same_text: false,
                            };
                            if let Err(e) =
                                on_problem(&problem(kind), observer, stats, options.strict)
                            {
                                failure = Some(e);
                                break;
                            }
                            continue;
                        };
                        if verdict.already_indexed {
                            // Its stored verdict, counted apart (as watch and serve do).
                            stats.already_indexed += 1;
                            stats.articles += u64::from(mode == IngestMode::Query);
                        } else {
                            stats.articles += 1;
                            match verdict.kind {
                                VerdictKind::New => stats.new += 1,
                                VerdictKind::Duplicate => stats.duplicates += 1,
                                VerdictKind::Rewrite => stats.rewrites += 1,
                            }
                        }
                        verdicts.push(verdict);
                    }
                    // Durable first, then acknowledged (by the sync thread).
                    let syncer = match mode {
                        IngestMode::Add => Some(index.write()?),
                        IngestMode::Query => None,
                    };
                    if ack_tx
                        .send((syncer, std::mem::take(&mut verdicts)))
                        .is_err()
                    {
                        break; // the sync thread failed: its error is returned below
                    }
                    if let Some(e) = failure {
                        return Err(e);
                    }
                }
                Ok(())
            })();
            drop(ack_tx);
            let acknowledged = acknowledger.join().expect("the sync thread does not panic");
            decided.and(acknowledged)
        });
        for event in raw_rx {
            let out = match event {
                ReadEvent::Problem(p) => Stage2::Problem(p),
                ReadEvent::Failed(e) => Stage2::Failed(e),
                ReadEvent::Batch(batch) => {
                    let arrival = now();
                    let articles = batch
                        .records
                        .par_iter()
                        .map_init(
                            || super::fingerprinter_for(pipeline, level),
                            |f, r| {
                                let source = &sources[r.location.source as usize];
                                Article::from_record(
                                    source,
                                    batch.bytes(r),
                                    &options.fields,
                                    f,
                                    arrival,
                                )
                            },
                        )
                        .collect();
                    Stage2::Batch(Prepared { batch, articles })
                }
            };
            if tx.send(out).is_err() {
                break; // deciding stopped on an error, which its join returns
            }
        }
        drop(tx);
        deciding.join().expect("deciding does not panic")
    });
    observer.stage_finished(Stage::Read);
    result?;
    stats.elapsed = started.elapsed();
    Ok(stats)
}

fn on_problem(
    problem: &Problem,
    observer: &dyn Observer,
    stats: &mut IngestStats,
    strict: bool,
) -> Result<()> {
    observer.problem(problem);
    *stats.problems.entry(problem.kind.label()).or_default() += 1;
    if strict {
        return Err(ErrorKind::Strict(problem.clone()).into());
    }
    Ok(())
}
