//! The observer of one call: the bad records it met, kept for the caller, its progress,
//! handed to a Python callable, and Ctrl-C, which stops it part way.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use neardup::input::Problem;
use neardup::{Observer, Stage};
use pyo3::prelude::*;

/// Least time between two progress calls within a stage, and between two looks for
/// Ctrl-C: often enough for a bar and a prompt stop, rarely enough that the GIL is not
/// fought over.
const INTERVAL: Duration = Duration::from_millis(100);

/// What a call saw: problems in input order, progress for `callback(stage, done, total)`,
/// and the exception that stopped it.
#[derive(Default)]
pub struct Watch {
    problems: Mutex<Vec<Problem>>,
    progress: Option<Progress>,
    /// The first exception met (Ctrl-C's `KeyboardInterrupt`, or one the callback
    /// raised); the run stops at its next check and no callback is made after it.
    stop: Mutex<Option<PyErr>>,
    stopping: AtomicBool,
}

struct Progress {
    callback: Py<PyAny>,
    /// The current stage's total work, and when the callback was last called.
    state: Mutex<(Option<u64>, Instant)>,
    done: AtomicU64,
}

impl Watch {
    /// A watch that calls `callback` (when given) with each stage's progress.
    pub fn new(callback: Option<Py<PyAny>>) -> Self {
        Watch {
            problems: Mutex::default(),
            progress: callback.map(|callback| Progress {
                callback,
                state: Mutex::new((None, Instant::now())),
                done: AtomicU64::new(0),
            }),
            ..Watch::default()
        }
    }

    /// The problems met, in input order; or the exception that stopped the run.
    pub fn finish(&self) -> PyResult<Vec<Problem>> {
        if let Some(e) = lock(&self.stop).take() {
            return Err(e);
        }
        Ok(std::mem::take(&mut *lock(&self.problems)))
    }

    /// Runs `work` (which holds no GIL) on a thread of its own, on `threads` threads,
    /// while this thread waits and looks for Ctrl-C every [`INTERVAL`]: Python runs
    /// signal handlers on the main thread only, and only when asked. Ctrl-C stops the
    /// work at its next check and its `KeyboardInterrupt` is raised, whatever the work
    /// returned.
    pub fn run<T: Send>(
        &self,
        py: Python<'_>,
        threads: Option<usize>,
        work: impl FnOnce() -> PyResult<T> + Send,
    ) -> PyResult<T> {
        let result = std::thread::scope(|scope| {
            let (tx, mut rx) = mpsc::channel();
            scope.spawn(move || {
                // The receiver waits for this; a panic drops the sender instead.
                let _ = tx.send(crate::on_threads(threads, work));
            });
            loop {
                // The receiver is not shared with the detached closure but moved through it.
                let (answer, back) = py.detach(move || (rx.recv_timeout(INTERVAL), rx));
                rx = back;
                match answer {
                    Ok(result) => break result,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if let Err(e) = py.check_signals() {
                            self.stop_with(e);
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        // The thread panicked: the scope raises its panic when it ends.
                        break Err(crate::NeardupError::new_err("the run's thread panicked"));
                    }
                }
            }
        });
        match lock(&self.stop).take() {
            Some(e) => Err(e),
            None => result,
        }
    }

    /// Keeps the first exception and stops the run.
    fn stop_with(&self, e: PyErr) {
        lock(&self.stop).get_or_insert(e);
        self.stopping.store(true, Ordering::Release);
    }

    /// Calls the progress callback, unless the run is stopping. The caller holds no GIL.
    fn report(&self, p: &Progress, stage: Stage, done: u64, total: Option<u64>) {
        if self.cancelled() {
            return;
        }
        let result =
            Python::attach(|py| p.callback.call1(py, (stage.name(), done, total)).map(drop));
        if let Err(e) = result {
            self.stop_with(e);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Observer for Watch {
    fn stage_started(&self, stage: Stage, total: Option<u64>) {
        if let Some(p) = &self.progress {
            *lock(&p.state) = (total, Instant::now());
            p.done.store(0, Ordering::Relaxed);
            self.report(p, stage, 0, total);
        }
    }

    fn advanced(&self, stage: Stage, amount: u64) {
        if let Some(p) = &self.progress {
            let done = p.done.fetch_add(amount, Ordering::Relaxed) + amount;
            // A thread that finds another reporting moves on: progress never waits.
            if let Ok(mut state) = p.state.try_lock()
                && state.1.elapsed() >= INTERVAL
            {
                state.1 = Instant::now();
                self.report(p, stage, done, state.0);
            }
        }
    }

    fn stage_finished(&self, stage: Stage) {
        if let Some(p) = &self.progress {
            let total = lock(&p.state).0;
            let done = p.done.load(Ordering::Relaxed);
            self.report(p, stage, total.map_or(done, |t| t.max(done)), total);
        }
    }

    fn problem(&self, problem: &Problem) {
        lock(&self.problems).push(problem.clone());
    }

    fn cancelled(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }
}
