//! How the library tells its caller what it is doing, and how the caller stops it. It
//! never prints.

use crate::input::Problem;
use crate::{ErrorKind, Result};

/// The stages of a run, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// Reading, parsing, shingling and sketching (progress in input bytes).
    Read,
    /// Story level: IDF weights and weighted sketches of every document (progress in
    /// documents).
    Weigh,
    /// LSH banding (progress in bands).
    Candidates,
    /// Exact verification of candidate pairs (progress in pairs).
    Verify,
    /// Clustering.
    Cluster,
    /// Passages of the verified pairs (progress in pairs).
    Align,
    /// Writing output (progress in records).
    Write,
}

impl Stage {
    /// A short lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Read => "read",
            Stage::Weigh => "weigh",
            Stage::Candidates => "candidates",
            Stage::Verify => "verify",
            Stage::Cluster => "cluster",
            Stage::Align => "passages",
            Stage::Write => "write",
        }
    }
}

/// Receives progress and problems while a run goes on, and may stop it. Every method has
/// a default that ignores what it is told and never stops the run.
///
/// Methods may be called from several threads at once.
pub trait Observer: Sync {
    /// A stage starts; `total` is its amount of work when known.
    fn stage_started(&self, _stage: Stage, _total: Option<u64>) {}
    /// `amount` more units of the stage's work are done.
    fn advanced(&self, _stage: Stage, _amount: u64) {}
    /// A stage is finished.
    fn stage_finished(&self, _stage: Stage) {}
    /// A bad record or an unreadable input (in input order).
    fn problem(&self, _problem: &Problem) {}
    /// Whether the caller wants the run stopped. It is asked between stages and between
    /// pieces of a stage's work (a batch of input, a band, a chunk of pairs), often, so
    /// it must be cheap; once it has answered `true` it must keep doing so. A stopped
    /// run returns [`ErrorKind::Cancelled`] and writes nothing; a checkpoint keeps the
    /// batches it had saved, as if the run had been killed. Batch runs ask it
    /// ([`crate::Pipeline`]'s runs and reads, [`crate::eval::sweep::evaluate`],
    /// [`crate::align::compare`]), and so does the feed index's bulk
    /// [`crate::feed::ingest`], between batches, once the verdicts of every batch it
    /// stored have gone to its sink; its other operations do not, since one stopped part
    /// way would have stored articles whose verdicts nobody hears.
    fn cancelled(&self) -> bool {
        false
    }
}

/// `Err(Cancelled)` once `observer` has asked the run to stop.
pub(crate) fn go_on(observer: &dyn Observer) -> Result<()> {
    if observer.cancelled() {
        return Err(ErrorKind::Cancelled.into());
    }
    Ok(())
}

/// One stage's progress, told to the observer by the code that does the stage's work,
/// which asks it between pieces of work whether to go on.
#[derive(Clone, Copy)]
pub struct Ticker<'o> {
    observer: &'o dyn Observer,
    stage: Stage,
}

impl std::fmt::Debug for Ticker<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticker")
            .field("stage", &self.stage)
            .finish()
    }
}

impl<'o> Ticker<'o> {
    /// Tells `observer` of `stage`'s work.
    pub fn new(observer: &'o dyn Observer, stage: Stage) -> Self {
        Ticker { observer, stage }
    }

    /// Tells no one and never stops (work done outside a run's stages).
    pub fn silent() -> Ticker<'static> {
        Ticker {
            observer: &Silent,
            stage: Stage::Verify,
        }
    }

    /// `amount` more units of the stage's work are done.
    pub fn advance(&self, amount: u64) {
        self.observer.advanced(self.stage, amount);
    }

    /// Whether the run is being stopped: work not yet begun should be skipped (its
    /// result is thrown away).
    pub fn stopped(&self) -> bool {
        self.observer.cancelled()
    }
}

/// An observer that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl Observer for Silent {}
