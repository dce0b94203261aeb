//! One integration-test binary (faster to build and link than one per file).
//!
//! Tests that need the real corpora read them from `NEARDUP_DATA` (e.g.
//! `NEARDUP_DATA=../shared/data`) and pass with a note when it is unset.

mod util;

mod bad_input;
mod cancel;
mod checkpoint;
mod cli;
mod determinism;
mod distributed;
mod eval;
mod feed;
mod passages;
mod python;
mod reference;
mod spark;
mod story;
