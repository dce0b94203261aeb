//! How the library tells its caller what it is doing. It never prints.

use crate::input::Problem;

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

/// Receives progress and problems while a run goes on. Every method has an empty default.
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
}

/// An observer that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl Observer for Silent {}
