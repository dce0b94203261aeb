//! Parsing one raw record into an id, a text and the metadata carried to the output.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::problem::ProblemKind;

/// The field names of a JSON Lines record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldNames {
    /// Field holding the record id (a string or an integer).
    pub id: String,
    /// Field holding the text (a string).
    pub text: String,
    /// Field holding the date, used to choose the earliest article (optional in records).
    pub date: String,
}

impl Default for FieldNames {
    fn default() -> Self {
        FieldNames {
            id: "id".into(),
            text: "text".into(),
            date: "date".into(),
        }
    }
}

/// A parsed record.
#[derive(Debug)]
pub struct ParsedRecord<'a> {
    /// The id, as a string.
    pub id: String,
    /// The text.
    pub text: Cow<'a, str>,
    /// Every other field, as a JSON object in input order (`None` when there are none).
    pub metadata: Option<Box<str>>,
    /// The date field, when present.
    pub date: Option<DateValue>,
}

/// A date as found in a record.
#[derive(Debug, Clone, PartialEq)]
pub enum DateValue {
    /// A string, to be parsed with [`crate::input::parse_date`].
    Text(String),
    /// A number: seconds since the Unix epoch, or milliseconds (see
    /// [`DateValue::seconds`]).
    Epoch(f64),
}

/// Numbers at least this large are milliseconds since the epoch (as JavaScript writes
/// them): as seconds they would be after the year 5000, as milliseconds they are after
/// March 1973.
const MILLISECONDS_FROM: f64 = 1e11;

impl DateValue {
    /// Seconds since the Unix epoch (UTC where a text has no offset), or the text that
    /// could not be read as a date.
    pub fn seconds(self) -> Result<i64, String> {
        match self {
            DateValue::Epoch(n) if n.abs() >= MILLISECONDS_FROM => Ok((n / 1000.0) as i64),
            // `as` saturates: a number beyond i64 becomes its end.
            DateValue::Epoch(secs) => Ok(secs as i64),
            // Eight digits are `YYYYMMDD` (`20250818`), or no date at all (a typo:
            // "20250231"): as seconds they would be 1970, which no news archive is dated
            // by in a string.
            DateValue::Text(t) if is_eight_digits(t.trim()) => compact_date(t.trim()).ok_or(t),
            // Epoch seconds or milliseconds written as a string mean what the number does.
            DateValue::Text(t) if is_epoch(t.trim()) => match t.trim().parse::<f64>() {
                Ok(n) => DateValue::Epoch(n).seconds(),
                Err(_) => Err(t),
            },
            DateValue::Text(t) => parse_date(&t).ok_or(t),
        }
    }
}

/// `YYYYMMDD` (eight digits) as seconds since the epoch (midnight UTC), if it makes a date
/// from [`EARLIEST_TEXT_DATE`] on.
fn compact_date(t: &str) -> Option<i64> {
    chrono::NaiveDate::parse_from_str(t, "%Y%m%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp())
        .filter(|&secs| secs >= EARLIEST_TEXT_DATE)
}

fn is_eight_digits(t: &str) -> bool {
    t.len() == 8 && t.bytes().all(|b| b.is_ascii_digit())
}

/// 1800-01-01T00:00:00Z. A date read from text before it is taken for a misreading: a
/// two-digit year ("8/18/25") would otherwise be the year 25.
pub const EARLIEST_TEXT_DATE: i64 = -5_364_662_400;

/// Digits, with a decimal part or not (`1755511200`, `1755511200.5`).
fn is_epoch(t: &str) -> bool {
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    match t.split_once('.') {
        Some((whole, fraction)) => digits(whole) && digits(fraction),
        None => digits(t),
    }
}

/// Parses one JSON Lines record (already checked to be UTF-8).
pub fn parse_json_record<'a>(
    line: &'a str,
    fields: &FieldNames,
) -> Result<ParsedRecord<'a>, ProblemKind> {
    if !line.trim_start().starts_with('{') {
        return Err(match serde_json::from_str::<IgnoredAny>(line) {
            Ok(_) => ProblemKind::NotAnObject {
                array: line.trim_start().starts_with('['),
            },
            // The first line of a JSON array written out whole (`[{...},` or `[`): one
            // hint, the later lines are plain malformed JSON.
            Err(e) if line.trim_start().starts_with('[') => ProblemKind::MalformedJson {
                reason: format!(
                    "{}; this looks like a JSON array, neardup reads JSON Lines: `jq -c '.[]' \
                     FILE | neardup … -`",
                    json_reason(&e)
                ),
            },
            Err(e) => ProblemKind::MalformedJson {
                reason: json_reason(&e),
            },
        });
    }
    let mut de = serde_json::Deserializer::from_str(line);
    let parts = RecordSeed { fields }
        .deserialize(&mut de)
        .and_then(|p| de.end().map(|_| p))
        .map_err(|e| ProblemKind::MalformedJson {
            // Lines split only at `\n`: a file of classic Mac (CR-only) line endings is
            // one line of records.
            reason: match line.contains('\r') && e.to_string().starts_with("trailing") {
                true => format!(
                    "{}; the line holds carriage returns: if the file's lines end in CR \
                     alone, `tr '\\r' '\\n' < FILE | neardup … -` reads them",
                    json_reason(&e)
                ),
                false => json_reason(&e),
            },
        })?;
    // Named now: taking the id out below leaves `parts` partly moved.
    let present_without_text = parts.text.is_none().then(|| parts.present(fields));
    let id = match parts.id {
        None => {
            return Err(ProblemKind::MissingField {
                field: fields.id.clone(),
                present: parts.present(fields),
            });
        }
        Some(Scalar::Str(s)) => s,
        Some(Scalar::Integer(s)) => s,
        Some(other) => {
            return Err(ProblemKind::WrongType {
                field: fields.id.clone(),
                expected: "a string or an integer",
                found: other.type_name(),
            });
        }
    };
    let text = match parts.text {
        None => {
            return Err(ProblemKind::MissingField {
                field: fields.text.clone(),
                present: present_without_text.unwrap_or_default(),
            });
        }
        Some(Scalar::Str(s)) => Cow::Owned(s),
        Some(other) => {
            return Err(ProblemKind::WrongType {
                field: fields.text.clone(),
                expected: "a string",
                found: other.type_name(),
            });
        }
    };
    let date = match parts.date {
        Some(Scalar::Str(s)) => Some(DateValue::Text(s)),
        Some(Scalar::Integer(s)) => s.parse().ok().map(DateValue::Epoch),
        Some(Scalar::Float(f)) => Some(DateValue::Epoch(f)),
        // A value of another type (true, an object) is a date that cannot be read,
        // reported as such, not the absence of one.
        Some(Scalar::Other(kind)) if kind != "null" => parts
            .metadata
            .iter()
            .find(|(key, _)| key.as_ref() == fields.date.as_str())
            .map(|(_, raw)| DateValue::Text(raw.get().to_string())),
        _ => None,
    };
    let metadata = (!parts.metadata.is_empty()).then(|| {
        let mut out = String::from("{");
        for (i, (key, raw)) in parts.metadata.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&serde_json::to_string(key.as_ref()).unwrap_or_default());
            out.push(':');
            out.push_str(raw.get());
        }
        out.push('}');
        out.into_boxed_str()
    });
    Ok(ParsedRecord {
        id,
        text,
        metadata,
        date,
    })
}

/// The id of a JSON record that [`parse_json_record`] (or the feed, for its text or date)
/// refused, when it is a string or an integer, read as that parser reads it: a record
/// without a usable text still owns such an id (`dedup` keeps ids unique among all
/// records that have one), and `watch` and `serve` name a rejected record by it.
pub fn usable_id(line: &str, fields: &FieldNames) -> Option<String> {
    let mut de = serde_json::Deserializer::from_str(line);
    let parts = RecordSeed { fields }.deserialize(&mut de).ok()?;
    de.end().ok()?;
    match parts.id? {
        Scalar::Str(s) | Scalar::Integer(s) => Some(s),
        _ => None,
    }
}

/// serde_json's message with the position as a column: the parser's "line 1" (a record
/// is one line) read as a contradiction beside the file's line number.
fn json_reason(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let message = full.strip_suffix(&suffix).unwrap_or(&full);
    let hint = if message.contains("hex escape") || message.contains("surrogate") {
        " (a \\ud800-\\udbff escape must be followed by a \\udc00-\\udfff one: a lone \
         UTF-16 surrogate is not a character)"
    } else {
        ""
    };
    if e.column() > 0 {
        format!("{message} at column {}{hint}", e.column())
    } else {
        format!("{message}{hint}")
    }
}

/// A JSON value reduced to what neardup needs from the id, text and date fields.
enum Scalar {
    Str(String),
    Integer(String),
    Float(f64),
    Other(&'static str),
}

impl Scalar {
    fn type_name(&self) -> &'static str {
        match self {
            Scalar::Str(_) => "a string",
            Scalar::Integer(_) => "an integer",
            // serde_json reads an integer beyond 64 bits as a float, as it reads `1e300`:
            // the value cannot tell them apart, so the message fits both.
            Scalar::Float(f) if f.fract() == 0.0 && f.abs() >= 9.2e18 => {
                "a number beyond the 64-bit integer range (write such an id as a string)"
            }
            Scalar::Float(f) if f.fract() != 0.0 => "a fraction",
            Scalar::Float(_) => "a number written with a decimal point or an exponent",
            Scalar::Other(t) => t,
        }
    }
}

impl<'de> de::Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Str(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar::Str(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Integer(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::Integer(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Scalar, E> {
                Ok(Scalar::Other("a boolean"))
            }
            fn visit_unit<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Other("null"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other("an array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other("an object"))
            }
        }
        d.deserialize_any(V)
    }
}

/// An object key, borrowed from the input when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

struct Parts<'de> {
    id: Option<Scalar>,
    text: Option<Scalar>,
    date: Option<Scalar>,
    metadata: Vec<(Cow<'de, str>, &'de RawValue)>,
}

impl Parts<'_> {
    /// The names of the record's fields (at most 10), for a missing field's hint.
    fn present(&self, fields: &FieldNames) -> Vec<String> {
        let id = self.id.as_ref().map(|_| fields.id.as_str());
        let text = self.text.as_ref().map(|_| fields.text.as_str());
        id.into_iter()
            .chain(text)
            .chain(self.metadata.iter().map(|(k, _)| k.as_ref()))
            .take(10)
            .map(String::from)
            .collect()
    }
}

struct RecordSeed<'f> {
    fields: &'f FieldNames,
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_> {
    type Value = Parts<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Parts<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_> {
    type Value = Parts<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parts<'de>, A::Error> {
        let mut parts = Parts {
            id: None,
            text: None,
            date: None,
            metadata: Vec::new(),
        };
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if key == self.fields.id.as_str() {
                parts.id = Some(map.next_value()?);
            } else if key == self.fields.text.as_str() {
                parts.text = Some(map.next_value()?);
            } else {
                let raw: &'de RawValue = map.next_value()?;
                if key == self.fields.date.as_str() {
                    parts.date = serde_json::from_str(raw.get()).ok();
                }
                parts.metadata.push((key, raw));
            }
        }
        Ok(parts)
    }
}

/// Parses a date in one of the usual news formats to seconds since the Unix epoch (UTC
/// where the text has no offset). Returns `None` for anything else.
///
/// Accepted: RFC 3339 (`2025-08-18T10:00:00Z`), RFC 2822, `2025-08-18 10:00:00`,
/// `2025-08-18 10:00`, `2025/08/18 10:00`, `2025-08-18`, `2025/08/18`, `8/18/2025` (month
/// first), `August 18, 2025` (or `Aug`, with the comma or not), `August 18, 2025 10:00 AM`,
/// `18 August 2025`, and Reuters' `26-FEB-1987 15:01:01.79`. A date with a time may end
/// in a zone: `Z`, `UTC`, `GMT` or an offset (`+0200`, `+02:00`, `-05`).
pub fn parse_date(text: &str) -> Option<i64> {
    let t = text.trim();
    parse_naive_or_rfc(t).or_else(|| {
        // Only a date with a time takes a zone ("2025-08-18-05" is no date).
        let (local, offset) = split_zone(t).filter(|(local, _)| local.contains(':'))?;
        parse_naive_or_rfc(local).map(|secs| secs - offset)
    })
}

/// `t` without a trailing zone, and the zone's offset east of UTC in seconds.
fn split_zone(t: &str) -> Option<(&str, i64)> {
    for name in ["Z", "UTC", "GMT"] {
        if let Some(local) = t.strip_suffix(name) {
            if local.ends_with(|c: char| c.is_ascii_digit() || c == ' ') {
                return Some((local.trim_end(), 0));
            }
        }
    }
    // [+-]HH, [+-]HHMM or [+-]HH:MM, after a digit or a space.
    let sign_at = t.rfind(['+', '-'])?;
    let (local, zone) = t.split_at(sign_at);
    let digits: String = zone[1..].chars().filter(|&c| c != ':').collect();
    let shape_ok = matches!(zone.len(), 3 | 5 | 6)
        && (zone.len() != 6 || zone.as_bytes()[3] == b':')
        && (zone.len() != 5 || !zone.contains(':'))
        && digits.bytes().all(|b| b.is_ascii_digit())
        && local.ends_with(|c: char| c.is_ascii_digit() || c == ' ');
    if !shape_ok {
        return None;
    }
    let hours: i64 = digits.get(..2)?.parse().ok()?;
    let minutes: i64 = digits
        .get(2..)
        .filter(|m| !m.is_empty())
        .map_or(Some(0), |m| m.parse().ok())?;
    if hours > 23 || minutes > 59 {
        return None;
    }
    let offset = hours * 3600 + minutes * 60;
    Some((
        local.trim_end(),
        if zone.starts_with('-') {
            -offset
        } else {
            offset
        },
    ))
}

fn parse_naive_or_rfc(t: &str) -> Option<i64> {
    use std::cell::Cell;
    thread_local! {
        // A corpus nearly always uses one format: try the last one that matched first.
        static LAST_MATCH: Cell<usize> = const { Cell::new(0) };
    }
    // Before 1800 is a misreading (a two-digit year), and no two formats then read one
    // text as two dates, so trying the last match first changes no result.
    let parse = |i: usize| DATE_FORMATS[i](t).filter(|&secs| secs >= EARLIEST_TEXT_DATE);
    let first = LAST_MATCH.with(Cell::get);
    if let Some(secs) = parse(first) {
        return Some(secs);
    }
    for i in 0..DATE_FORMATS.len() {
        if i != first {
            if let Some(secs) = parse(i) {
                LAST_MATCH.with(|m| m.set(i));
                return Some(secs);
            }
        }
    }
    None
}

type DateParser = fn(&str) -> Option<i64>;

/// Every accepted date format, as a parser to epoch seconds.
const DATE_FORMATS: [DateParser; 18] = {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    fn datetime(t: &str, f: &str) -> Option<i64> {
        NaiveDateTime::parse_from_str(t, f)
            .ok()
            .map(|d| d.and_utc().timestamp())
    }
    fn date(t: &str, f: &str) -> Option<i64> {
        NaiveDate::parse_from_str(t, f)
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc().timestamp())
    }
    [
        |t| DateTime::parse_from_rfc3339(t).ok().map(|d| d.timestamp()),
        |t| DateTime::parse_from_rfc2822(t).ok().map(|d| d.timestamp()),
        |t| datetime(t, "%Y-%m-%dT%H:%M:%S%.f"),
        |t| datetime(t, "%Y-%m-%d %H:%M:%S%.f"),
        // Reuters-21578 dates sometimes carry junk after the time ("&#5;&#5;&#5;RM", "
        // # date added by S Finch as guesswork"), but never a zone, "PM" or a word: those
        // are not dropped.
        |t| match NaiveDateTime::parse_and_remainder(t, "%d-%b-%Y %H:%M:%S%.f") {
            Ok((d, rest))
                if !rest
                    .trim_start()
                    .starts_with(|c: char| c.is_alphanumeric() || c == '+' || c == '-') =>
            {
                Some(d.and_utc().timestamp())
            }
            _ => None,
        },
        |t| datetime(t, "%Y/%m/%d %H:%M:%S"),
        |t| datetime(t, "%Y/%m/%d %H:%M"),
        // RFC 2822 without its zone (which `split_zone` took, as in "... 10:00:00 UTC").
        |t| datetime(t, "%a, %d %b %Y %H:%M:%S"),
        |t| datetime(t, "%Y-%m-%dT%H:%M"),
        |t| datetime(t, "%Y-%m-%d %H:%M"),
        |t| datetime(t, "%B %d, %Y %I:%M %p"),
        |t| date(t, "%Y-%m-%d"),
        |t| date(t, "%Y/%m/%d"),
        |t| date(t, "%d-%b-%Y"),
        |t| date(t, "%m/%d/%Y"),
        |t| date(t, "%B %d, %Y"),
        |t| date(t, "%B %d %Y"),
        |t| date(t, "%d %B %Y"),
    ]
};

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<ParsedRecord<'_>, ProblemKind> {
        parse_json_record(line, &FieldNames::default())
    }

    proptest::proptest! {
        /// Any line is a record or a problem, never a panic: random text, and records with
        /// random values in the id, text and date fields.
        #[test]
        fn any_line_is_a_record_or_a_problem(
            line in ".{0,80}",
            id in proptest::prelude::any::<String>(),
            text in proptest::prelude::any::<String>(),
            date in "[0-9A-Za-z:+ -]{0,30}",
            noise in "[{}\\[\\]\",:0-9a-z ]{0,40}",
        ) {
            let _ = parse(&line);
            let record = serde_json::json!({"id": id, "text": text, "date": date}).to_string();
            if let Ok(r) = parse(&record) {
                proptest::prop_assert_eq!(r.id, id.as_str());
            }
            let _ = parse(&(record.clone() + &noise));
            let _ = parse(&record.replacen('"', &noise, 1));
            let _ = parse_date(&date);
        }
    }

    #[test]
    fn keeps_other_fields_as_metadata_in_order() {
        let r = parse(
            r#"{"title":"T \"q\"","id":"a1","text":"Hello\nworld","date":"2025-08-18","n":[1,2]}"#,
        )
        .unwrap();
        assert_eq!(r.id, "a1");
        assert_eq!(r.text, "Hello\nworld");
        assert_eq!(
            r.metadata.as_deref(),
            Some(r#"{"title":"T \"q\"","date":"2025-08-18","n":[1,2]}"#)
        );
        assert_eq!(r.date, Some(DateValue::Text("2025-08-18".into())));
        let bare = parse(r#"{"id":7,"text":"x"}"#).unwrap();
        assert_eq!(bare.id, "7");
        assert_eq!(bare.metadata, None);
    }

    #[test]
    fn reports_each_kind_of_bad_record() {
        let kind = |line| parse(line).unwrap_err().label();
        assert_eq!(kind(r#"{"id":"a","text":"x""#), "malformed_json");
        assert_eq!(kind(r#"{"id":"a","text":"x"} trailing"#), "malformed_json");
        assert_eq!(kind(r#"["id","text"]"#), "not_an_object");
        assert_eq!(kind(r#"{"text":"x"}"#), "missing_field");
        assert_eq!(kind(r#"{"id":"a"}"#), "missing_field");
        assert_eq!(kind(r#"{"id":"a","text":5}"#), "wrong_type");
        assert_eq!(kind(r#"{"id":"a","text":null}"#), "wrong_type");
        assert_eq!(kind(r#"{"id":{"x":1},"text":"t"}"#), "wrong_type");
        assert_eq!(
            parse(r#"{"id":"a","text":["x"]}"#).unwrap_err().to_string(),
            r#"field "text" is an array, expected a string"#
        );
    }

    #[test]
    fn custom_field_names() {
        let fields = FieldNames {
            id: "uid".into(),
            text: "body".into(),
            date: "published".into(),
        };
        let r = parse_json_record(
            r#"{"uid":"u","body":"b","published":1700000000,"text":"other"}"#,
            &fields,
        )
        .unwrap();
        assert_eq!((r.id.as_str(), r.text.as_ref()), ("u", "b"));
        assert_eq!(r.date, Some(DateValue::Epoch(1_700_000_000.0)));
        assert_eq!(
            r.metadata.as_deref(),
            Some(r#"{"published":1700000000,"text":"other"}"#)
        );
    }

    #[test]
    fn epoch_seconds_and_milliseconds_in_a_string_read_as_the_number() {
        let text = |t: &str| DateValue::Text(t.to_string()).seconds();
        for (t, n) in [
            ("1755513000", 1_755_513_000.0),
            ("1755513000000", 1_755_513_000_000.0),
        ] {
            assert_eq!(text(t), DateValue::Epoch(n).seconds(), "{t}");
            assert_eq!(text(&format!(" {t} ")), Ok(1_755_513_000), "{t}");
        }
        assert_eq!(text("0"), Ok(0));
        assert_eq!(text("17555x"), Err("17555x".to_string()));
        assert_eq!(text("2025-08-18"), Ok(1_755_475_200));
    }

    #[test]
    fn parses_news_dates() {
        let day = 1_755_475_200; // 2025-08-18T00:00:00Z
        assert_eq!(parse_date("2025-08-18"), Some(day));
        assert_eq!(parse_date("2025-08-18T00:00:00Z"), Some(day));
        assert_eq!(parse_date("2025-08-18T02:00:00+02:00"), Some(day));
        assert_eq!(parse_date("2025-08-18 00:00:00"), Some(day));
        assert_eq!(parse_date("8/18/2025"), Some(day));
        assert_eq!(parse_date("Mon, 18 Aug 2025 00:00:00 +0000"), Some(day));
        assert_eq!(parse_date("26-FEB-1987 15:01:01.79"), Some(541_350_061));
        assert_eq!(
            parse_date("26-FEB-1987 15:01:01.79&#5;&#5;&#5;RM"),
            Some(541_350_061)
        );
        assert_eq!(parse_date("August 18, 2025"), Some(day));
        assert_eq!(parse_date("Aug 18, 2025"), Some(day));
        assert_eq!(parse_date("18 August 2025"), Some(day));
        assert_eq!(parse_date("2025-08-18 10:30"), Some(day + 37_800));
        assert_eq!(parse_date("August 18, 2025 10:30 PM"), Some(day + 81_000));
        assert_eq!(parse_date("yesterday"), None);
        let seconds = |d: DateValue| d.seconds();
        assert_eq!(seconds(DateValue::Epoch(1_755_475_200.0)), Ok(day));
        assert_eq!(seconds(DateValue::Epoch(1_755_475_200_000.0)), Ok(day));
        assert_eq!(seconds(DateValue::Text("2025-08-18".into())), Ok(day));
        assert_eq!(seconds(DateValue::Text("soon".into())), Err("soon".into()));
        // The remembered format does not stop the others from matching.
        assert_eq!(parse_date("2025-08-18"), Some(day));
    }

    /// The forms feeds write that a first release did not read (QA pass 11).
    #[test]
    fn parses_zones_and_other_common_forms() {
        let ten = 1_755_475_200 + 36_000; // 2025-08-18T10:00:00Z
        for form in [
            "2025-08-18T10:00:00+0000",
            "2025-08-18T12:00:00+0200",
            "2025-08-18T05:00:00-05",
            "2025-08-18T10:00Z",
            "2025-08-18 10:00:00 UTC",
            "2025-08-18 10:00 GMT",
            "2025-08-18 11:30:00 +01:30",
            "Mon, 18 Aug 2025 10:00:00 UTC",
            "2025/08/18 10:00",
        ] {
            assert_eq!(parse_date(form), Some(ten), "{form}");
        }
        assert_eq!(parse_date("Aug 18 2025"), Some(ten - 36_000));
        let text = |t: &str| DateValue::Text(t.into()).seconds();
        assert_eq!(text("1755511200.5"), Ok(ten));
        // Not zones: a date alone, hours past 23, a sign inside the date, junk.
        for not_a_date in [
            "2025-08-18-05",
            "2025-08-18T10:00:00+2500",
            "2025-08-18T10:00:00+02:0",
            "2025-08-18T10:00:00+0x00",
            "18-08-2025 10:00",
            "1755511200.",
            ".5",
            "1.2.3",
            "UTC",
            "Z",
        ] {
            assert_eq!(parse_date(not_a_date), None, "{not_a_date}");
        }
        assert!(text("1.2.3").is_err());
    }

    /// QA pass 12: two-digit years were the year 25, eight digits were seconds of 1970, a
    /// zone after a Reuters-form time was dropped, and a value of another JSON type was
    /// taken for no date.
    #[test]
    fn misreadings_are_not_dates() {
        let day = 1_755_475_200; // 2025-08-18
        let text = |t: &str| DateValue::Text(t.into()).seconds();
        for two_digit_year in [
            "8/18/25",
            "18-Aug-25",
            "Aug 18, 25",
            "25/08/18",
            "10/11/12",
            "0000-01-01",
        ] {
            assert_eq!(parse_date(two_digit_year), None, "{two_digit_year}");
        }
        assert_eq!(text("20250818"), Ok(day));
        assert!(text("17555112").is_err(), "eight digits, no date: a typo");
        assert!(text("20250231").is_err());
        assert!(text("17991231").is_err());
        assert_eq!(text("2025081"), Ok(2_025_081));
        assert_eq!(
            parse_date("18-Aug-2025 10:00:00 +0200"),
            Some(day + 8 * 3600)
        );
        assert_eq!(
            parse_date("18-Aug-2025 10:00:00 -05"),
            Some(day + 15 * 3600)
        );
        assert_eq!(parse_date("18-Aug-2025 10:00:00 PM"), None);
        assert_eq!(parse_date("18-Aug-2025 10:00:00 EST"), None);
        assert_eq!(
            parse_date("18-AUG-2025 10:00:00.79&#5;&#5;RM"),
            Some(day + 36_000)
        );
        assert_eq!(
            parse_date("18-AUG-2025 10:00:00.00    # a note"),
            Some(day + 36_000)
        );
        for other_type in [r#"true"#, r#"{"$date":1}"#, r#"[1755511200]"#] {
            let line = format!(r#"{{"id":"a","text":"x","date":{other_type}}}"#);
            let r = parse(&line).unwrap();
            assert_eq!(r.date, Some(DateValue::Text(other_type.into())));
            assert!(r.date.unwrap().seconds().is_err());
        }
        let r = parse(r#"{"id":"a","text":"x","date":null}"#).unwrap();
        assert_eq!(r.date, None);
    }
}
