//! Where documents come from: files, directories and standard input, plain or compressed.
//!
//! This module and [`crate::report`] are the only ones that do I/O. Inputs are planned
//! into [`Source`]s (directories expanded and sorted), read in order into [`Batch`]es of
//! raw records, and each record is parsed by the worker that processes it. Everything that
//! goes wrong is a [`Problem`] naming the input and line; nothing is skipped silently.

mod problem;
mod read;
pub(crate) use read::describe_read_error;
mod record;
mod source;

pub use problem::{FirstSeen, Problem, ProblemKind};
pub use read::{
    Batch, RawRecord, ReadEvent, ReadLimits, RecordLocation, document_text, read_sources,
    read_sources_passing_oversized,
};
pub use record::{DateValue, FieldNames, ParsedRecord, parse_date, parse_json_record, usable_id};
pub use source::{
    InputFormat, InputSpec, Location, Plan, SkippedFiles, Source, format_from_name, open_decoded,
    plan_sources, spool_stdin,
};
