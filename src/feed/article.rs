//! An incoming article, parsed and fingerprinted exactly as the batch pipeline does it.

use crate::input::{self, DateValue, FieldNames, InputFormat, ProblemKind, Source};
use crate::pipeline::{Fingerprint, Fingerprinter};
use crate::story::{self, StoryDoc};

/// An article ready to be checked against (or added to) an index.
#[derive(Clone, Debug, PartialEq)]
pub struct Article {
    /// Its id.
    pub id: String,
    /// Seconds since the Unix epoch: its date, or its arrival time when undated (an index
    /// stores an undated article at its clock instead, `FeedIndex::time_of`, and matches it
    /// at any distance).
    pub time: i64,
    /// Whether `time` is the article's own date.
    pub dated: bool,
    /// Length of the text in bytes.
    pub text_bytes: u64,
    /// Shingle set and signature.
    pub fingerprint: Fingerprint,
    /// A date field that is not used (the article counts as undated), and why.
    pub ignored_date: Option<IgnoredDate>,
    /// Story features, for an index at the story level (its fingerprinter extracts them).
    pub story: Option<StoryDoc>,
}

impl Article {
    /// An article from one JSON Lines record. `arrival` (seconds since the epoch) stands
    /// in for a missing or unparsable date.
    pub fn from_json(
        line: &str,
        fields: &FieldNames,
        fingerprinter: &mut Fingerprinter,
        arrival: i64,
    ) -> Result<Article, ProblemKind> {
        let r = input::parse_json_record(line, fields)?;
        let title = fingerprinter
            .story_title_field()
            .zip(r.metadata.as_deref())
            .and_then(|(field, m)| story::string_field(m, field));
        Article::new(
            r.id,
            &r.text,
            title.as_deref(),
            r.date,
            fingerprinter,
            arrival,
        )
    }

    /// An article from one raw record of `source` (a JSON line or a whole text file).
    pub fn from_record(
        source: &Source,
        bytes: &[u8],
        fields: &FieldNames,
        fingerprinter: &mut Fingerprinter,
        arrival: i64,
    ) -> Result<Article, ProblemKind> {
        let text = std::str::from_utf8(bytes).map_err(|e| ProblemKind::InvalidUtf8 {
            byte: e.valid_up_to(),
        })?;
        match source.format {
            InputFormat::JsonLines => Article::from_json(text, fields, fingerprinter, arrival),
            InputFormat::Text => {
                let id = source
                    .text_id
                    .clone()
                    .unwrap_or_else(|| source.name.to_string());
                let text = crate::input::document_text(text);
                Article::new(id, text, None, None, fingerprinter, arrival)
            }
        }
    }

    fn new(
        id: String,
        text: &str,
        title: Option<&str>,
        date: Option<DateValue>,
        fingerprinter: &mut Fingerprinter,
        arrival: i64,
    ) -> Result<Article, ProblemKind> {
        let fingerprint = fingerprinter
            .fingerprint(text)
            .ok_or_else(|| ProblemKind::wordless(text))?;
        let story = fingerprinter.story_features(title, text);
        let (date, ignored_date) = match date.map(IgnoredDate::check) {
            None => (None, None),
            Some(Ok(d)) => (Some(d), None),
            Some(Err(ignored)) => (None, Some(ignored)),
        };
        Ok(Article {
            id,
            time: date.unwrap_or(arrival),
            dated: date.is_some(),
            text_bytes: text.len() as u64,
            fingerprint,
            ignored_date,
            story,
        })
    }
}

/// How far past now an article's date may lie (time zones written wrongly, clocks a
/// little apart) before it is taken for a mistake.
pub const FUTURE_SLACK_SECS: i64 = 86_400;

/// A date field an index does not use: the article counts as undated (it matches at any
/// distance and is stored at the index's clock, `FeedIndex::time_of`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IgnoredDate {
    /// The field's value: its text, or a number as written by Rust.
    pub value: String,
    /// Why it is not used.
    pub reason: IgnoredDateReason,
}

/// Why a date field is not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IgnoredDateReason {
    /// It is not in a format neardup reads ([`crate::input::parse_date`]).
    Unparsable,
    /// It is more than [`FUTURE_SLACK_SECS`] after now (the machine's clock): a mistake
    /// (a wrong year, a number in other units) that would otherwise move the index's
    /// clock to now and expire a replayed archive at the next compaction.
    InTheFuture,
}

impl IgnoredDateReason {
    /// `unparsable` or `in_the_future`, as verdicts write it.
    pub fn label(self) -> &'static str {
        match self {
            IgnoredDateReason::Unparsable => "unparsable",
            IgnoredDateReason::InTheFuture => "in_the_future",
        }
    }
}

impl IgnoredDate {
    /// The date of `value` in seconds since the epoch, or why an index does not use it.
    pub fn check(value: DateValue) -> Result<i64, IgnoredDate> {
        let shown = match &value {
            DateValue::Text(t) => t.clone(),
            DateValue::Epoch(n) => n.to_string(),
        };
        match value.seconds() {
            Ok(d) if d > now().saturating_add(FUTURE_SLACK_SECS) => Err(IgnoredDate {
                value: shown,
                reason: IgnoredDateReason::InTheFuture,
            }),
            Ok(d) => Ok(d),
            Err(_) => Err(IgnoredDate {
                value: shown,
                reason: IgnoredDateReason::Unparsable,
            }),
        }
    }
}

impl std::fmt::Display for IgnoredDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.reason {
            IgnoredDateReason::Unparsable => {
                write!(f, "{:?} is not a date neardup reads", self.value)
            }
            IgnoredDateReason::InTheFuture => {
                write!(f, "{:?} is more than a day after now", self.value)
            }
        }
    }
}

/// Seconds since the Unix epoch, now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
