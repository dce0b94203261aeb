//! Bad input: what went wrong, where.

use std::fmt;
use std::sync::Arc;

use crate::report::one_line;

/// One bad record or unreadable input, with the file and line it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The input's name as the user gave it (a path, or `<stdin>`).
    pub source: Arc<str>,
    /// 1-based line number for JSON Lines; `None` for a whole file.
    pub line: Option<u64>,
    /// What went wrong.
    pub kind: ProblemKind,
}

/// What went wrong with a record or an input.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProblemKind {
    /// The input could not be opened or listed.
    Unreadable { reason: String },
    /// Reading stopped part way: an I/O error or a corrupt or truncated compressed stream.
    /// Records before `line` were read; the rest of the input was not.
    ReadFailed { reason: String },
    /// The record is not valid UTF-8.
    InvalidUtf8 { byte: usize },
    /// The line is not valid JSON.
    MalformedJson { reason: String },
    /// The line is valid JSON but not an object (`array` says whether it is an array).
    NotAnObject { array: bool },
    /// A required field is absent; `present` names the record's fields (the first few),
    /// for a hint when no record has it (`--id-field`, `--text-field`).
    MissingField { field: String, present: Vec<String> },
    /// A field has the wrong JSON type.
    WrongType {
        field: String,
        expected: &'static str,
        found: &'static str,
    },
    /// The text is empty or white space only: nothing to compare.
    EmptyText,
    /// The text has characters but no word: only punctuation, symbols, emoji or
    /// invisible characters (which the tokenizer does not count as words), so nothing to
    /// compare either.
    NoWords,
    /// The id was already used by an earlier record, which is kept.
    DuplicateId {
        id: String,
        first: FirstSeen,
        /// Its text has the first's shingles: a copy, which `dedup` drops (a repeat with
        /// other text it rejects).
        same_text: bool,
    },
    /// The record is longer than the limit (`--max-record-bytes`).
    RecordTooLarge { bytes: u64, limit: u64 },
}

/// Where the id a record repeats was seen first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FirstSeen {
    /// An earlier record of the inputs, at this location (`file:line`, or the file's
    /// name for a document read from a directory).
    Record(String),
    /// A feed index, at this path, that holds the id with other text. `adding`: the
    /// article was being added, so the index may have it from this same input.
    Index { path: String, adding: bool },
}

impl fmt::Display for FirstSeen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FirstSeen::Record(location) => write!(f, "{}", one_line(location)),
            // Perhaps by this very input when adding: not necessarily before it.
            FirstSeen::Index { path, adding: true } => write!(
                f,
                "index {}, added earlier by this input or before it, with other text",
                one_line(path)
            ),
            FirstSeen::Index {
                path,
                adding: false,
            } => write!(f, "index {}, with other text", one_line(path)),
        }
    }
}

impl ProblemKind {
    /// The problem of a text in which the tokenizer found no word: empty (or white
    /// space), or without words. "Empty text" for a text of emoji was not true.
    pub fn wordless(text: &str) -> ProblemKind {
        if text.trim().is_empty() {
            ProblemKind::EmptyText
        } else {
            ProblemKind::NoWords
        }
    }

    /// A stable snake_case name, used as the key in problem counts.
    pub fn label(&self) -> &'static str {
        match self {
            ProblemKind::Unreadable { .. } => "unreadable_input",
            ProblemKind::ReadFailed { .. } => "read_failed",
            ProblemKind::InvalidUtf8 { .. } => "invalid_utf8",
            ProblemKind::MalformedJson { .. } => "malformed_json",
            ProblemKind::NotAnObject { .. } => "not_an_object",
            ProblemKind::MissingField { .. } => "missing_field",
            ProblemKind::WrongType { .. } => "wrong_type",
            ProblemKind::EmptyText => "empty_text",
            ProblemKind::NoWords => "no_words",
            ProblemKind::DuplicateId { .. } => "duplicate_id",
            ProblemKind::RecordTooLarge { .. } => "record_too_large",
        }
    }

    /// Whether the record itself is unusable as a record (not just as text to compare):
    /// such lines cannot be written back by `dedup` and go to its rejects instead.
    pub fn is_malformed_record(&self) -> bool {
        matches!(
            self,
            ProblemKind::InvalidUtf8 { .. }
                | ProblemKind::MalformedJson { .. }
                | ProblemKind::NotAnObject { .. }
                | ProblemKind::RecordTooLarge { .. }
        )
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_fact(f)?;
        f.write_str(self.outcome())
    }
}

impl ProblemKind {
    /// What becomes of the record, when the message says it.
    fn outcome(&self) -> &'static str {
        match self {
            ProblemKind::DuplicateId { .. } => "; this record is skipped",
            _ => "",
        }
    }

    /// What is wrong, without what becomes of the record (a strict run stops instead).
    fn write_fact(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProblemKind::Unreadable { reason } => {
                write!(f, "cannot read input: {}", one_line(reason))
            }
            // Bytes after the last gzip stream: nothing was lost (see `source::GzMembers`).
            ProblemKind::ReadFailed { reason } if reason.starts_with("trailing bytes") => {
                write!(f, "reading stopped here: {}", one_line(reason))
            }
            ProblemKind::ReadFailed { reason } => {
                write!(
                    f,
                    "reading stopped here, the rest of this input is lost: {}",
                    one_line(reason)
                )
            }
            ProblemKind::InvalidUtf8 { byte } => {
                write!(
                    f,
                    "invalid UTF-8 at byte {byte} of the record: neardup reads UTF-8 (`iconv -f \
                     windows-1252 -t utf-8 FILE` converts a Latin-1 or Windows-1252 one)"
                )
            }
            ProblemKind::MalformedJson { reason } => {
                write!(f, "malformed JSON: {}", one_line(reason))
            }
            ProblemKind::NotAnObject { array: false } => write!(f, "expected a JSON object"),
            ProblemKind::NotAnObject { array: true } => write!(
                f,
                "expected a JSON object, found an array: neardup reads JSON Lines, one object per line \
                 (`jq -c '.[]' FILE` converts an array)"
            ),
            // `--text-field body.text` named no key: keys are not paths.
            ProblemKind::MissingField { field, .. } if field.contains('.') => write!(
                f,
                "missing field {field:?} (a field is a top-level key, not a path: `jq -c \
                 '.text = .{field}' FILE | neardup … -` lifts a nested one)"
            ),
            ProblemKind::MissingField { field, .. } => write!(f, "missing field {field:?}"),
            ProblemKind::WrongType {
                field,
                expected,
                found,
            } => {
                write!(f, "field {field:?} is {found}, expected {expected}")
            }
            ProblemKind::EmptyText => write!(f, "empty text (nothing to compare)"),
            ProblemKind::NoWords => write!(
                f,
                "no words to compare: the text has only punctuation, symbols, emoji or invisible characters"
            ),
            ProblemKind::DuplicateId { id, first, .. } => {
                write!(f, "duplicate id {id:?} (first seen at {first})")
            }
            ProblemKind::RecordTooLarge { bytes, limit } => write!(
                f,
                "record of at least {bytes} bytes exceeds the limit of {limit} bytes (--max-record-bytes)"
            ),
        }
    }
}

/// Messages show the source's name (a path, perhaps a file name found in a directory)
/// with its control characters escaped (`report::one_line`): a newline in it printed a
/// second line that could pass for a summary. `source` itself stays exact.
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.fact(), self.kind.outcome())
    }
}

impl Problem {
    /// Where and what is wrong, without what becomes of the record: a strict run's error.
    pub fn fact(&self) -> impl fmt::Display + '_ {
        struct Fact<'a>(&'a Problem);
        impl fmt::Display for Fact<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let source = one_line(&self.0.source);
                match self.0.line {
                    Some(line) => write!(f, "{source}:{line}: ")?,
                    None => write!(f, "{source}: ")?,
                }
                self.0.kind.write_fact(f)
            }
        }
        Fact(self)
    }
}

impl std::error::Error for Problem {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_escape_the_source_name_and_keep_it_exact() {
        let problem = Problem {
            source: Arc::from("d/a\nneardup: fake\u{1b}[2J.txt"),
            line: None,
            kind: ProblemKind::EmptyText,
        };
        let shown = "d/a\\nneardup: fake\\u{1b}[2J.txt: empty text (nothing to compare)";
        assert_eq!(problem.to_string(), shown);
        assert_eq!(problem.fact().to_string(), shown);
        assert_eq!(&*problem.source, "d/a\nneardup: fake\u{1b}[2J.txt");
    }
}
