//! The library's error type.

use crate::input::Problem;
use crate::report::{one_line, shown_path};

/// A failure that stops a run. Bad records are not errors (they are [`Problem`]s,
/// reported and counted) unless the run is strict.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Error {
    kind: Box<ErrorKind>,
}

/// What stopped the run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Settings that cannot work together.
    #[error("invalid settings: {0}")]
    Config(String),
    /// A bad record in a strict run.
    #[error("{} (stopped: --strict)", .0.fact())]
    Strict(Problem),
    /// A document asked for by name is not in the inputs.
    #[error("{0}")]
    NotFound(String),
    /// A feed index that cannot be used: missing, locked by another writer, damaged, or
    /// of another format version.
    #[error("index {}: {reason}", shown_path(path))]
    Index {
        /// The index directory.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A feed index whose article log is damaged (an unreadable stretch with intact
    /// articles after it): every reader and writer refuses it, changing nothing, and
    /// `FeedIndex::repair` (`neardup index repair`) is the way out.
    #[error("index {}: {reason}", shown_path(path))]
    Damaged {
        /// The index directory.
        path: std::path::PathBuf,
        /// Where the log is damaged, and what to do.
        reason: String,
    },
    /// A checkpoint (`--checkpoint DIR`) that cannot be used: in use by another run, made
    /// with other settings, or not a checkpoint.
    #[error("checkpoint {}: {reason}", shown_path(path))]
    Checkpoint {
        /// The checkpoint directory.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A gold-label file (`neardup eval --gold`) that cannot be used.
    #[error("{location}: {reason}")]
    Gold {
        /// The file, and the line when one is to blame.
        location: FileLocation,
        /// What is wrong there.
        reason: String,
    },
    /// A sketch record given to `neardup verify` that cannot be used.
    #[error("{location}: {reason}")]
    Sketch {
        /// The file, and the line when one is to blame.
        location: FileLocation,
        /// What is wrong there.
        reason: String,
    },
    /// The caller stopped the run (its [`crate::Observer::cancelled`] said so).
    #[error("stopped by the caller before the run finished")]
    Cancelled,
    /// An I/O failure outside the inputs (temporary files, output). Its display is the
    /// context alone; the cause is its `source()` (`{:#}` with anyhow prints both).
    #[error("{context}")]
    Io {
        /// What neardup was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        ErrorKind::Config(message.into()).into()
    }

    pub(crate) fn gold(location: impl Into<FileLocation>, reason: impl Into<String>) -> Self {
        ErrorKind::Gold {
            location: location.into(),
            reason: reason.into(),
        }
        .into()
    }

    pub(crate) fn sketch(location: impl Into<FileLocation>, reason: impl Into<String>) -> Self {
        ErrorKind::Sketch {
            location: location.into(),
            reason: reason.into(),
        }
        .into()
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        ErrorKind::Io {
            context: context.into(),
            source,
        }
        .into()
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error {
            kind: Box::new(kind),
        }
    }
}

/// Where in an input file an error is: the file's name as given, and the line (counted
/// from 1) when one is to blame. Displayed `file:line`, or the file alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileLocation {
    /// The file's name as the caller gave it.
    pub file: String,
    /// The line, from 1; `None` when the whole file is at fault.
    pub line: Option<u64>,
}

impl FileLocation {
    /// Line `line` (from 1) of `file`.
    pub fn at(file: impl Into<String>, line: u64) -> Self {
        FileLocation {
            file: file.into(),
            line: Some(line),
        }
    }
}

/// The whole file.
impl From<&str> for FileLocation {
    fn from(file: &str) -> Self {
        FileLocation {
            file: file.to_string(),
            line: None,
        }
    }
}

/// The whole file.
impl From<&String> for FileLocation {
    fn from(file: &String) -> Self {
        file.as_str().into()
    }
}

impl std::fmt::Display for FileLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let file = one_line(&self.file);
        match self.line {
            Some(line) => write!(f, "{file}:{line}"),
            None => f.write_str(&file),
        }
    }
}

/// Result with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
