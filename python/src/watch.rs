//! The observer of one call: the bad records it met, kept for the caller, and its
//! progress, handed to a Python callable.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use neardup::input::Problem;
use neardup::{Observer, Stage};
use pyo3::prelude::*;

/// Least time between two progress calls within a stage: often enough for a bar, rarely
/// enough that the GIL is not fought over.
const INTERVAL: Duration = Duration::from_millis(100);

/// What a call saw: problems in input order, progress for `callback(stage, done, total)`.
#[derive(Default)]
pub struct Watch {
    problems: Mutex<Vec<Problem>>,
    progress: Option<Progress>,
}

struct Progress {
    callback: Py<PyAny>,
    /// The current stage's total work, and when the callback was last called.
    state: Mutex<(Option<u64>, Instant)>,
    done: AtomicU64,
    /// The first exception the callback raised; no call is made after it.
    failed: Mutex<Option<PyErr>>,
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
                failed: Mutex::default(),
            }),
        }
    }

    /// The problems met, in input order; or the exception the progress callback raised.
    pub fn finish(&self) -> PyResult<Vec<Problem>> {
        if let Some(e) = self.progress.as_ref().and_then(|p| lock(&p.failed).take()) {
            return Err(e);
        }
        Ok(std::mem::take(&mut *lock(&self.problems)))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Progress {
    /// Calls the callback, unless it raised before. The caller holds no GIL.
    fn call(&self, stage: Stage, done: u64, total: Option<u64>) {
        let mut failed = lock(&self.failed);
        if failed.is_none() {
            let result = Python::attach(|py| {
                self.callback
                    .call1(py, (stage.name(), done, total))
                    .map(drop)
            });
            *failed = result.err();
        }
    }
}

impl Observer for Watch {
    fn stage_started(&self, stage: Stage, total: Option<u64>) {
        if let Some(p) = &self.progress {
            *lock(&p.state) = (total, Instant::now());
            p.done.store(0, Ordering::Relaxed);
            p.call(stage, 0, total);
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
                p.call(stage, done, state.0);
            }
        }
    }

    fn stage_finished(&self, stage: Stage) {
        if let Some(p) = &self.progress {
            let total = lock(&p.state).0;
            let done = p.done.load(Ordering::Relaxed);
            p.call(stage, total.map_or(done, |t| t.max(done)), total);
        }
    }

    fn problem(&self, problem: &Problem) {
        lock(&self.problems).push(problem.clone());
    }
}
