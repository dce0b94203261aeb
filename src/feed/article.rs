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
    /// The date field's text when it could not be parsed (the arrival time is used).
    pub unparsed_date: Option<String>,
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
        let (date, unparsed_date) = match date {
            None => (None, None),
            Some(value) => match value.seconds() {
                Ok(d) => (Some(d), None),
                Err(t) => (None, Some(t)),
            },
        };
        Ok(Article {
            id,
            time: date.unwrap_or(arrival),
            dated: date.is_some(),
            text_bytes: text.len() as u64,
            fingerprint,
            unparsed_date,
            story,
        })
    }
}

/// Seconds since the Unix epoch, now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
