//! `neardup._native`: the library behind the `neardup` Python package.
//!
//! Records are encoded here as the JSON Lines the library reads (`encode.rs`), and
//! results come back as JSON Lines text, written by the same writers as the command's
//! output, so a record means the same in both; `neardup/__init__.py` reads them into
//! dicts. Every run releases the GIL.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use neardup::feed::{
    self, Access, FeedIndex, IndexSettings, IngestMode, IngestOptions, RejectedRecord,
    VerdictRecord,
};
use neardup::input::{FieldNames, FirstSeen, InputSpec, Problem, ProblemKind};
use neardup::shingle::ShingleSpec;
use neardup::story::{self, Model, StoryStats};
use neardup::{ErrorKind, FileLocation, PipelineBuilder};
use pyo3::create_exception;
use pyo3::exceptions::{
    PyException, PyFileNotFoundError, PyKeyboardInterrupt, PyOSError, PyPermissionError,
    PyValueError,
};
use pyo3::prelude::*;

mod batch;
mod encode;
mod watch;

use watch::Watch;

create_exception!(
    _native,
    NeardupError,
    PyException,
    "A run that could not be done: settings, an index, a file."
);
create_exception!(
    _native,
    Interrupted,
    PyKeyboardInterrupt,
    "Ctrl-C stopped an index call part way: args are (message, the answers of the records \
     before the stop as JSON lines)."
);
create_exception!(
    _native,
    BadRecord,
    PyValueError,
    "A record that cannot be read: args are (message, index of the record)."
);

/// The name bad records are reported under; their line is their position plus one.
const RECORDS: &str = "records";

/// Every name records in memory are read under.
const IN_MEMORY: [&str; 5] = [RECORDS, "a", "b", batch::GOLD, batch::CORPUS];

fn error(e: neardup::Error) -> PyErr {
    match e.kind() {
        ErrorKind::Strict(problem) => bad_record(problem),
        ErrorKind::Config(message) => PyValueError::new_err(keywords(message)),
        ErrorKind::Gold { location, reason } => PyValueError::new_err(format!(
            "{}: {}",
            gold_position(location),
            keywords(&earlier_position(location, reason))
        )),
        ErrorKind::Io { context, source } => os_error(format!("{context}: {source}"), source),
        // A damaged log header is an index error, and names the command too.
        _ => NeardupError::new_err(repair_call(&e.to_string())),
    }
}

/// A damaged log's message, which points to `'neardup index repair DIR'`, pointing to the
/// package's `neardup.Index.repair('DIR')` instead.
fn repair_call(message: &str) -> String {
    const COMMAND: &str = "'neardup index repair ";
    let Some((head, rest)) = message.split_once(COMMAND) else {
        return message.to_string();
    };
    match rest.split_once("' ") {
        Some((dir, tail)) => format!("{head}neardup.Index.repair({dir:?}) {tail}"),
        None => message.to_string(),
    }
}

/// The Python exception of an I/O error.
fn os_error(message: String, source: &std::io::Error) -> PyErr {
    match source.kind() {
        std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(message),
        std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(message),
        _ => PyOSError::new_err(message),
    }
}

/// A library message with the command's flags named as the package's keywords.
fn keywords(message: &str) -> String {
    const FLAGS: [(&str, &str); 9] = [
        ("--level story", "level='story'"),
        ("--shingle words:N", "shingle='words:N'"),
        ("--stats", "stats"),
        ("--gold-label", "gold_fields['label']"),
        ("--gold-cluster", "gold_fields['cluster']"),
        ("--gold-id", "gold_fields['id']"),
        ("--gold-a", "gold_fields['a']"),
        ("--gold-b", "gold_fields['b']"),
        ("--id-field", "id_field"),
    ];
    FLAGS
        .iter()
        .fold(message.to_string(), |m, (flag, keyword)| {
            m.replace(flag, keyword)
        })
}

fn bad_record(problem: &Problem) -> PyErr {
    let index = problem.line.map_or(0, |line| line - 1);
    BadRecord::new_err((
        format!("{}[{index}]: {}", problem.source, reason(&problem.kind)),
        index,
    ))
}

/// `name[i]` for a record read from memory at `name:line` (line i + 1); other
/// locations (a file's) as they are.
fn position(location: &str) -> String {
    location
        .rsplit_once(':')
        .filter(|(name, _)| IN_MEMORY.contains(name))
        .and_then(|(name, line)| Some((name, line.parse::<u64>().ok()?.checked_sub(1)?)))
        .map_or_else(|| location.to_string(), |(name, i)| format!("{name}[{i}]"))
}

/// `name[i]` for a gold record read from memory (line i + 1); a file's as it is.
fn gold_position(location: &FileLocation) -> String {
    match in_memory_index(location) {
        Some(i) => format!("{}[{i}]", location.file),
        None => location.to_string(),
    }
}

/// The position from 0 of a record read from a list given in memory.
fn in_memory_index(location: &FileLocation) -> Option<u64> {
    if !IN_MEMORY.contains(&location.file.as_str()) {
        return None;
    }
    location.line?.checked_sub(1)
}

/// A gold message naming an earlier record `at line N` of a list given in memory, with
/// that record's position instead (`at gold[N-1]`), as the record itself is named.
fn earlier_position(location: &FileLocation, reason: &str) -> String {
    reason
        .rsplit_once(" at line ")
        .filter(|_| in_memory_index(location).is_some())
        .and_then(|(head, line)| {
            Some(format!(
                "{head} at {}[{}]",
                location.file,
                line.parse::<u64>().ok()?.checked_sub(1)?
            ))
        })
        .unwrap_or_else(|| reason.to_string())
}

/// What is wrong with a record, in the caller's terms: positions counted from 0, no
/// command-line flags.
fn reason(kind: &ProblemKind) -> String {
    match kind {
        ProblemKind::DuplicateId { id, first, .. } => match first {
            FirstSeen::Index { path, .. } => {
                format!("duplicate id {id:?}: the index {path} has it with other text")
            }
            FirstSeen::Record(location) => {
                format!("duplicate id {id:?} ({} has it too)", position(location))
            }
        },
        ProblemKind::RecordTooLarge { bytes, limit } => {
            format!("record of at least {bytes} bytes exceeds the limit of {limit} bytes")
        }
        other => other.to_string(),
    }
}

/// What `write` writes (JSON Lines, by the command's writers), as text for Python.
fn json_lines(write: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> PyResult<String> {
    let mut out = Vec::new();
    write(&mut out).map_err(|e| PyOSError::new_err(e.to_string()))?;
    String::from_utf8(out).map_err(|e| NeardupError::new_err(e.to_string()))
}

fn in_memory(name: &str, data: Vec<u8>) -> InputSpec {
    InputSpec::Bytes {
        name: Arc::from(name),
        bytes: Arc::from(data),
    }
}

fn fields(id: &str, text: &str, date: &str) -> FieldNames {
    FieldNames {
        id: id.to_string(),
        text: text.to_string(),
        date: date.to_string(),
    }
}

/// Seconds of a window given as `72h`, `3d`, `3600`…; `None` for none.
fn window(text: Option<&str>) -> PyResult<Option<i64>> {
    match text {
        None => Ok(None),
        Some(t) => match story::parse_window(t).map_err(PyValueError::new_err)? {
            0 => Err(PyValueError::new_err(
                "the window must be longer than 0 (None for no window)",
            )),
            secs => Ok(Some(secs)),
        },
    }
}

fn level(name: &str) -> PyResult<neardup::Level> {
    match name {
        "near-copy" | "copy" => Ok(neardup::Level::NearCopy),
        "story" => Ok(neardup::Level::Story),
        other => Err(PyValueError::new_err(format!(
            "level must be 'near-copy' or 'story', not {other:?}"
        ))),
    }
}

fn shingle(text: &str) -> PyResult<ShingleSpec> {
    text.parse()
        .map_err(|e| PyValueError::new_err(format!("{e}")))
}

fn story_threshold(p: Option<f64>) -> PyResult<f64> {
    match p {
        None => Ok(Model::fitted().threshold),
        Some(p) if (0.0..=1.0).contains(&p) => Ok(p),
        Some(p) => Err(PyValueError::new_err(format!(
            "story_threshold must be in [0, 1], not {p}"
        ))),
    }
}

/// Runs `work` on `threads` worker threads (all cores when `None`: this process's pool).
///
/// Never on rayon's global pool: its threads are started once per process, and a process
/// forked from one that used it (a `multiprocessing` worker on Linux) has the pool
/// without its threads, so that every parallel step there waits forever.
fn on_threads<T: Send>(
    threads: Option<usize>,
    work: impl FnOnce() -> PyResult<T> + Send,
) -> PyResult<T> {
    match threads {
        None => match process_pool() {
            Some(pool) => pool.install(work),
            // Another thread is looking the pool up this moment: a pool for this call.
            None => build_pool(None)?.install(work),
        },
        Some(n) if !(1..=MAX_THREADS).contains(&n) => Err(PyValueError::new_err(format!(
            "threads must be from 1 to {MAX_THREADS}, not {n}"
        ))),
        Some(n) => build_pool(Some(n))?.install(work),
    }
}

/// The most worker threads a call takes, as the command's `--threads`: more gain
/// nothing, and each has a stack of its own (a mistyped `10**6` would not finish starting).
const MAX_THREADS: usize = 1024;

fn build_pool(threads: Option<usize>) -> PyResult<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0)) // 0: rayon's default, all cores
        .thread_name(|i| format!("neardup-{i}"))
        .build()
        .map_err(|e| NeardupError::new_err(format!("starting worker threads: {e}")))
}

/// This process's pool of worker threads and the pid it was started in, leaked: one of
/// another process (the parent of a fork) is replaced, never dropped, since its threads
/// are not there to be stopped.
static POOL: Mutex<Option<(u32, &'static rayon::ThreadPool)>> = Mutex::new(None);

/// The pool of this process, started on first use; `None` if another thread holds the
/// lock on it (in a forked child, maybe one of the parent's, forever).
fn process_pool() -> Option<&'static rayon::ThreadPool> {
    let mut held = match POOL.try_lock() {
        Ok(held) => held,
        Err(std::sync::TryLockError::Poisoned(held)) => held.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => return None,
    };
    let pid = std::process::id();
    match *held {
        Some((started_in, pool)) if started_in == pid => Some(pool),
        _ => {
            let pool: &'static rayon::ThreadPool = Box::leak(Box::new(build_pool(None).ok()?));
            *held = Some((pid, pool));
            Some(pool)
        }
    }
}

/// `FileNotFoundError` (as for any file that is not there) unless `path` is there;
/// whether it holds an index is the library's to say.
fn there(path: &std::path::Path) -> PyResult<()> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(os_error(format!("{}: {e}", path.display()), &e))
        }
        _ => Ok(()),
    }
}

/// A feed index opened for writing (or for reading only), as `neardup index` uses it.
///
/// It belongs to the process that opened it. A process forked from that one (as
/// `multiprocessing` starts its workers on Linux) inherits it, with the writer's lock
/// (a `flock` is shared across `fork`) and its idea of where the log ends: writing there
/// would make two writers of one log. So every call from another process raises, and
/// such a process only lets go of its copies of the index's files (`release`).
#[pyclass(module = "neardup._native")]
struct Index {
    index: Mutex<Option<FeedIndex>>,
    fields: FieldNames,
    path: PathBuf,
    /// The process that opened it.
    opened_by: u32,
}

impl Index {
    /// An error unless this is the process that opened the index.
    fn in_its_process(&self) -> PyResult<()> {
        let here = std::process::id();
        if here == self.opened_by {
            return Ok(());
        }
        Err(NeardupError::new_err(format!(
            "the index {} was opened by process {}, and this is process {here} (forked from it, \
             as multiprocessing starts workers): an Index cannot be used across a fork. Open \
             the index in this process instead, with neardup.Index(path) (for writing, once \
             the process that has it open for writing has closed it; or read_only=True)",
            self.path.display(),
            self.opened_by,
        )))
    }

    /// Runs `work` on the index. A read-only view first takes in what the writer
    /// committed since its last call (a writer has nothing to take in), so every call
    /// (`len`, `stats`, `clusters`, `query`) answers from the index as it is now.
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        work: impl FnOnce(&mut FeedIndex) -> PyResult<T> + Send,
    ) -> PyResult<T> {
        // Before the lock: a thread of the opener may have held it when the process
        // forked, and in the child nobody ever releases it.
        self.in_its_process()?;
        py.detach(|| on_threads(None, || self.locked(work)))
    }

    /// `work` on the open index, once it took in what was committed (see [`Index::with`]);
    /// called without the GIL, after [`Index::in_its_process`].
    fn locked<T>(&self, work: impl FnOnce(&mut FeedIndex) -> PyResult<T>) -> PyResult<T> {
        let mut held = self.index.lock().expect("index lock");
        match held.as_mut() {
            Some(index) => {
                index.refresh().map_err(error)?;
                work(index)
            }
            None => Err(NeardupError::new_err("the index is closed")),
        }
    }

    /// Adds or checks records; one answer per record, in order: a verdict, or a
    /// rejection naming the record's position (as `watch` answers a bad line). Ctrl-C
    /// stops it between batches: `Interrupted` then carries the answers of the records
    /// before the stop, which were stored whole; nothing after them was.
    fn ingest(&self, records: &Bound<'_, PyAny>, mode: IngestMode) -> PyResult<String> {
        let py = records.py();
        let options = IngestOptions {
            fields: self.fields.clone(),
            ..IngestOptions::default()
        };
        // A record with a value JSON cannot hold (NaN, bytes, ...) is answered in its
        // place as one the reader rejects is: an empty line for the reader.
        let encoded = match encode::json_lines(records, RECORDS, &self.fields, false, true) {
            Err(e) if e.is_instance_of::<PyKeyboardInterrupt>(py) => {
                return Err(Interrupted::new_err((
                    "stopped by Ctrl-C (KeyboardInterrupt) before any record was added",
                    String::new(),
                )));
            }
            encoded => encoded?,
        };
        let count = encoded.count;
        let unwritable = encoded.unwritable;
        let input = [in_memory(RECORDS, encoded.bytes)];
        self.in_its_process()?;
        let watch = Watch::default();
        let mut verdicts = Vec::new();
        let ran = watch.run(py, None, || {
            self.locked(|index| {
                feed::ingest(index, &input, mode, &options, &watch, &mut |group| {
                    verdicts.extend_from_slice(group);
                    Ok(())
                })
                .map_err(error)
            })
        });
        let interrupted = match ran {
            Ok(_) => false,
            Err(e) if e.is_instance_of::<PyKeyboardInterrupt>(py) => true,
            Err(e) => return Err(e),
        };
        let mut rejected = watch.finish()?;
        rejected.sort_by_key(|p| p.line);
        let (mut verdicts, mut rejected) = (verdicts.iter(), rejected.iter().peekable());
        let mut unwritable = unwritable.iter().peekable();
        let query = mode == IngestMode::Query;
        let answers = json_lines(|out| {
            for line in 1..=count as u64 {
                if let Some((_, why)) = unwritable.next_if(|(i, _)| *i as u64 + 1 == line) {
                    let rejection = RejectedRecord::new(None, line, why.clone());
                    feed::write_json_line(out, &rejection)?;
                } else if let Some(p) = rejected.next_if(|p| p.line == Some(line)) {
                    let rejection = RejectedRecord::new(None, line, reason(&p.kind));
                    feed::write_json_line(out, &rejection)?;
                } else if let Some(v) = verdicts.next() {
                    feed::write_json_line(out, &VerdictRecord::new(v, query, true))?;
                } else if interrupted {
                    break; // this record and the rest were not decided
                } else {
                    return Err(std::io::Error::other(format!(
                        "no verdict for records[{}]",
                        line - 1
                    )));
                }
            }
            Ok(())
        })?;
        if interrupted {
            return Err(Interrupted::new_err((
                "stopped by Ctrl-C (KeyboardInterrupt): the records before the stop were \
                 answered and, when adding, stored; the rest were not",
                answers,
            )));
        }
        Ok(answers)
    }
}

#[pymethods]
impl Index {
    /// Creates an empty index in `path` (a new or empty directory; it is built beside it
    /// and renamed into place, so a create that fails leaves no index).
    #[staticmethod]
    #[pyo3(signature = (
        path, *, level, threshold, shingle, num_perm, seed, window, story_threshold, stats
    ))]
    #[allow(clippy::too_many_arguments)] // one per keyword argument of Index.create
    fn create(
        py: Python<'_>,
        path: PathBuf,
        level: &str,
        threshold: f64,
        shingle: &str,
        num_perm: usize,
        seed: u64,
        window: Option<&str>,
        story_threshold: Option<f64>,
        stats: Option<PathBuf>,
    ) -> PyResult<()> {
        let level = match self::level(level)? {
            neardup::Level::NearCopy => feed::Level::Copy,
            neardup::Level::Story => feed::Level::Story,
        };
        let pipeline = PipelineBuilder::new()
            .shingle(self::shingle(shingle)?)
            .num_perm(num_perm)
            .seed(seed)
            .threshold(threshold)
            .build()
            .map_err(error)?;
        let window = self::window(window)?.map(|w| w as u64);
        let mut settings = IndexSettings::new(pipeline.settings(), level, window).map_err(error)?;
        if let Some(p) = story_threshold {
            let Some(story) = settings.story.as_mut() else {
                return Err(PyValueError::new_err("story_threshold needs level='story'"));
            };
            story.threshold = self::story_threshold(Some(p))?;
        }
        py.detach(|| {
            let stats = match &stats {
                None => None,
                Some(_) if level != feed::Level::Story => {
                    return Err(PyValueError::new_err(
                        "stats gives story statistics: it needs level='story'",
                    ));
                }
                Some(path) => Some(StoryStats::load(path).map_err(error)?),
            };
            on_threads(None, || {
                FeedIndex::create_with_stats(&path, &settings, stats.as_ref()).map_err(error)
            })
        })
    }

    /// Opens the index in `path`; for writing it takes the index's lock (one writer).
    #[new]
    #[pyo3(signature = (path, *, read_only, id_field, text_field, date_field))]
    fn open(
        py: Python<'_>,
        path: PathBuf,
        read_only: bool,
        id_field: String,
        text_field: String,
        date_field: String,
    ) -> PyResult<Self> {
        let access = if read_only {
            Access::Read
        } else {
            Access::Write
        };
        there(&path)?;
        let index = py.detach(|| {
            on_threads(None, || {
                FeedIndex::open(&path, access, &neardup::progress::Silent).map_err(error)
            })
        })?;
        Ok(Index {
            index: Mutex::new(Some(index)),
            fields: fields(&id_field, &text_field, &date_field),
            path,
            opened_by: std::process::id(),
        })
    }

    /// Decides and adds records (an iterable of mappings); each is durable before this
    /// returns. One JSON line per record.
    fn add(&self, records: &Bound<'_, PyAny>) -> PyResult<String> {
        self.ingest(records, IngestMode::Add)
    }

    /// Decides records against the index without adding them.
    fn query(&self, records: &Bound<'_, PyAny>) -> PyResult<String> {
        self.ingest(records, IngestMode::Query)
    }

    /// Removes articles by id (rewriting the log); for each id, whether it was there.
    fn remove(&self, py: Python<'_>, ids: Vec<String>) -> PyResult<Vec<bool>> {
        self.with(py, |index| {
            index
                .remove(&ids, &neardup::progress::Silent)
                .map(|report| report.found)
                .map_err(error)
        })
    }

    /// Removes the articles older than the window before the index's clock, as
    /// `neardup index compact` does: (removed, kept, log bytes before, after).
    fn compact(&self, py: Python<'_>) -> PyResult<(u64, u64, u64, u64)> {
        self.with(py, |index| {
            let report = index.compact(&neardup::progress::Silent).map_err(error)?;
            Ok((
                report.removed,
                report.kept,
                report.log_bytes.0,
                report.log_bytes.1,
            ))
        })
    }

    /// The index's settings and counts, as `neardup index stats --format jsonl` gives them.
    fn stats(&self, py: Python<'_>) -> PyResult<String> {
        self.with(py, |index| {
            serde_json::to_string(&feed::StatsRecord::new(&index.stats()))
                .map_err(|e| NeardupError::new_err(e.to_string()))
        })
    }

    /// Repairs the index in `path` whose article log is damaged, as `neardup index repair`
    /// does (it takes the index's lock); the report as `--format jsonl` prints it.
    #[staticmethod]
    #[pyo3(signature = (path, *, discard_damaged))]
    fn repair(py: Python<'_>, path: PathBuf, discard_damaged: bool) -> PyResult<String> {
        there(&path)?;
        let options = feed::RepairOptions { discard_damaged };
        py.detach(|| {
            let report = on_threads(None, || {
                FeedIndex::repair(&path, &options, &neardup::progress::Silent).map_err(error)
            })?;
            serde_json::to_string(&feed::RepairRecord::new(&report))
                .map_err(|e| NeardupError::new_err(e.to_string()))
        })
    }

    /// Clusters of at least `min_size` articles, as `neardup index export --clusters`.
    fn clusters(&self, py: Python<'_>, min_size: usize) -> PyResult<String> {
        self.with(py, |index| {
            let clusters = index.clusters(min_size).map_err(error)?;
            json_lines(|out| {
                clusters
                    .iter()
                    .try_for_each(|c| feed::write_json_line(out, &feed::ClusterRecord::new(c)))
            })
        })
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |index| Ok(index.len()))
    }

    /// Releases the index (and its lock); later calls raise. In a process forked from
    /// the one that opened it, only lets go of this process's copies (`release`).
    fn close(&self) {
        if self.in_its_process().is_err() {
            self.release();
            return;
        }
        self.index.lock().expect("index lock").take();
    }

    /// In a process forked from the one that opened the index: closes this process's
    /// copies of the index's files, so that the lock is the opener's alone again (a
    /// `flock` lasts while any process has the file open), and nothing else. Dropping a
    /// `FeedIndex` closes its files and frees its memory: it writes, removes and unlocks
    /// nothing (closing a copy of a `flock`ed file leaves the lock with the other copies).
    /// Called by the package right after a fork, for every index open; a no-op in the
    /// opener's process.
    fn release(&self) {
        if self.in_its_process().is_ok() {
            return;
        }
        // Not waiting: a lock held by a thread at the fork is never released here, and
        // then what it guards is left alone (its files stay open until the process ends).
        match self.index.try_lock() {
            Ok(mut held) => drop(held.take()),
            Err(std::sync::TryLockError::Poisoned(held)) => drop(held.into_inner().take()),
            Err(std::sync::TryLockError::WouldBlock) => {}
        }
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(batch::analyse, m)?)?;
    m.add_function(wrap_pyfunction!(batch::dedup, m)?)?;
    m.add_function(wrap_pyfunction!(batch::evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(batch::compare, m)?)?;
    m.add_class::<Index>()?;
    m.add("NeardupError", m.py().get_type::<NeardupError>())?;
    m.add("BadRecord", m.py().get_type::<BadRecord>())?;
    m.add("Interrupted", m.py().get_type::<Interrupted>())?;
    m.add("DEFAULT_STORY_THRESHOLD", Model::fitted().threshold)?;
    m.add("MAX_NUM_PERM", neardup::sketch::MAX_NUM_PERM)?;
    m.add("MAX_PASSAGE_GAP", neardup::align::MAX_GAP)?;
    m.add("MAX_THREADS", MAX_THREADS)?;
    Ok(())
}
