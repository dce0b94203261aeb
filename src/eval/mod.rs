//! Choosing and defending a threshold: quality against gold labels, threshold by
//! threshold, and the LSH banding behind each threshold.
//!
//! * [`gold`]: gold labels, as judged pairs or as a cluster per document.
//! * [`metrics`]: pairwise precision/recall/F-β, adjusted Rand index, B-cubed.
//! * [`sweep`]: one pipeline run, then every threshold judged, with the reason for each
//!   missed gold positive; at the near-copy level (shingle scores, re-banded per
//!   threshold) or the story level (the story model's probability, the story linkage
//!   re-run per threshold).
//! * [`banding`]: the banding of a threshold and its S-curve (`neardup params`).
//! * [`report`]: JSON documents and terminal tables.
//! * [`plot`]: charts as SVG or PNG.
//!
//! ```
//! use neardup::eval::{gold, sweep};
//! use neardup::{PipelineBuilder, input::InputSpec, progress::Silent};
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("news.jsonl");
//! # std::fs::write(&path, concat!(
//! #   r#"{"id":"a","text":"The central bank raised its key interest rate by half a point on Tuesday."}"#, "\n",
//! #   r#"{"id":"b","text":"The central bank raised its key interest rate by half a point on Tuesday!"}"#, "\n",
//! #   r#"{"id":"c","text":"A storm closed schools across the region for a second day."}"#, "\n")).unwrap();
//! let labels = concat!(
//!     r#"{"a": "a", "b": "b", "same_story": true}"#, "\n",
//!     r#"{"a": "a", "b": "c", "same_story": false}"#, "\n");
//! let gold = gold::parse_gold("labels", labels.as_bytes(), gold::GoldFormat::JsonLines,
//!     None, &gold::GoldFields::default())?;
//! let config = sweep::SweepConfig::default();
//! // Run once at the lowest threshold, keeping every candidate's scores: its candidates
//! // serve every threshold.
//! let pipeline = PipelineBuilder::new()
//!     .threshold(config.thresholds[0])
//!     .candidate_scores(true)
//!     .build()?;
//! let outcome = pipeline.run(&[InputSpec::Path(path)], &Silent)?;
//! let evaluation = sweep::evaluate(&outcome, &gold, &config, &Silent)?;
//! let best = &evaluation.rows[evaluation.best_f1.unwrap()];
//! assert_eq!(best.pairwise.f1(), Some(1.0));
//! # Ok::<(), neardup::Error>(())
//! ```

pub mod banding;
pub mod gold;
pub mod metrics;
pub mod plot;
pub mod report;
pub mod sweep;
