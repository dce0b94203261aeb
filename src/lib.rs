//! # neardup
//!
//! Finds near-duplicates and syndicated rewrites in news text.
//!
//! The batch pipeline, in the order the data flows (one module each):
//!
//! 1. [`input`]: files, directories, standard input; JSON Lines or text; gzip and zstd.
//! 2. [`text`]: Unicode normalization and tokens with byte offsets into the original.
//! 3. [`shingle`]: hashed word or character n-grams.
//! 4. [`sketch`]: MinHash signatures (Fast Similarity Sketching).
//! 5. [`corpus`]: what is kept per document (signatures in memory, shingle sets spillable).
//! 6. [`index`]: LSH banding into candidate pairs, with a cap on oversized buckets.
//! 7. [`verify`]: exact Jaccard and containment of every candidate.
//! 8. [`cluster`]: connected components or leader clustering, with a representative.
//! 9. [`align`]: the passages each verified pair shares, with byte offsets in both texts
//!    and boilerplate marked (optional).
//! 10. [`report`]: JSON Lines, JSON, CSV and tables, each record with a schema version.
//!
//! [`story`] adds the story level: copies, updates and rewrites of one news story.
//! [`distributed`] and [`story::distributed`] split each level into steps a cluster engine
//! runs on many machines (sketch, verify, link), with one run's output.
//!
//! [`pipeline`] runs them all; [`eval`] judges its output against gold labels, threshold
//! by threshold. The library never prints: progress and bad records reach the
//! caller through an [`Observer`].
//!
//! [`outfile`] writes output files whole or not at all (and never replaces `/dev/null`).
//! [`checkpoint`] keeps what reading made of each batch, so that a killed run resumes
//! (`PipelineBuilder::checkpoint`).
//!
//! [`feed`] keeps a persistent, incremental, crash-safe index for deduplicating a stream of
//! articles as they arrive, with the same fingerprints and verification as the batch run.
//!
//! ```
//! use neardup::{PipelineBuilder, input::InputSpec, progress::Silent};
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("news.jsonl");
//! # std::fs::write(&path, concat!(
//! #   r#"{"id":"a","text":"The central bank raised its key interest rate by half a point on Tuesday."}"#, "\n",
//! #   r#"{"id":"b","text":"The central bank raised its key interest rate by half a point on Tuesday!"}"#, "\n",
//! #   r#"{"id":"c","text":"A storm closed schools across the region for a second day."}"#, "\n")).unwrap();
//! let pipeline = PipelineBuilder::new().threshold(0.5).build()?;
//! let outcome = pipeline.run(&[InputSpec::Path(path)], &Silent)?;
//! assert_eq!(outcome.clusters.len(), 1);
//! assert_eq!(outcome.pairs[0].jaccard, 1.0);
//! # Ok::<(), neardup::Error>(())
//! ```
//!
//! ## Memory usage
//! Per document: its id and metadata (as long as they are in the input), about 110 bytes
//! of fixed fields and index entries, and a signature of `4 × num_perm` bytes (512 at the
//! default). Shingle sets (8 bytes per distinct shingle) are kept in memory up to
//! `memory_budget` and spilled to an unlinked temporary file beyond it.
//! With passages on, the raw records as read (about the decompressed input's size) are
//! kept the same way, under their own `memory_budget`.

pub mod align;
pub mod checkpoint;
pub mod cluster;
pub mod corpus;
pub mod distributed;
mod error;
pub mod eval;
pub mod feed;
mod frame;
pub mod index;
pub mod input;
mod lock;
pub mod outfile;
pub mod pipeline;
pub mod progress;
pub mod report;
pub mod shingle;
pub mod sketch;
pub mod story;
pub mod text;
pub mod verify;

pub use error::{Error, ErrorKind, FileLocation, Result};
pub use pipeline::{Level, Outcome, Pipeline, PipelineBuilder, RepeatedId, Settings, Stats};
pub use progress::{Observer, Stage};
