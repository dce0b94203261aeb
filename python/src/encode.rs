//! Python records into the JSON Lines the library reads.
//!
//! Written here rather than by Python's `json`, which took as long as the run itself
//! (BENCHMARKS.md, "From Python"): strings, numbers, booleans, None and datetimes are
//! written directly, and only other values (lists, nested dicts) go through `json`.

use neardup::input::FieldNames;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString};

use crate::BadRecord;

/// Records as JSON Lines, one line per record.
#[derive(Debug, Default)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub count: usize,
    /// With `in_place`: the records that cannot be written (a value JSON cannot hold),
    /// by position, with what is wrong; each is an empty line of `bytes`, which the
    /// reader skips (so that the others keep their line numbers).
    pub unwritable: Vec<(usize, String)>,
}

/// Why a record cannot be encoded: what is wrong with it (for `BadRecord`, or its
/// answer in place), or an exception raised by the caller's own objects.
enum Fault {
    Record(String),
    Python(PyErr),
}

impl From<PyErr> for Fault {
    fn from(e: PyErr) -> Self {
        Fault::Python(e)
    }
}

/// Encodes every record of `records` (an iterable of mappings, or of strings where
/// `texts_alone`: a text whose id is its position), every field of it, in its order. A
/// record with a value JSON cannot hold raises `BadRecord`, or with `in_place` is left
/// out and listed in [`Encoded::unwritable`].
pub fn json_lines(
    records: &Bound<'_, PyAny>,
    name: &str,
    fields: &FieldNames,
    texts_alone: bool,
    in_place: bool,
) -> PyResult<Encoded> {
    let py = records.py();
    let mapping = py.import("collections.abc")?.getattr("Mapping")?;
    let mut out = Encoded::default();
    for (i, record) in records.try_iter()?.enumerate() {
        // Millions of records take seconds to convert: Ctrl-C is seen here too.
        if i % 1024 == 1023 {
            py.check_signals()?;
        }
        let record = record?;
        out.count += 1;
        let start = out.bytes.len();
        match write_record(
            &mut out.bytes,
            &record,
            &mapping,
            name,
            i,
            fields,
            texts_alone,
        ) {
            Ok(()) => {}
            Err(Fault::Python(e)) => return Err(e),
            Err(Fault::Record(why)) if in_place => {
                out.bytes.truncate(start);
                out.bytes.push(b'\n');
                out.unwritable.push((i, why));
            }
            Err(Fault::Record(why)) => {
                return Err(BadRecord::new_err((format!("{name}[{i}]: {why}"), i)));
            }
        }
    }
    Ok(out)
}

/// One record as a line of JSON.
fn write_record(
    out: &mut Vec<u8>,
    record: &Bound<'_, PyAny>,
    mapping: &Bound<'_, PyAny>,
    name: &str,
    i: usize,
    fields: &FieldNames,
    texts_alone: bool,
) -> Result<(), Fault> {
    let text = record.cast::<PyString>().ok().filter(|_| texts_alone);
    if let Some(text) = text {
        out.push(b'{');
        write_str(out, &fields.id);
        out.push(b':');
        write_str(out, &i.to_string());
        out.push(b',');
        write_str(out, &fields.text);
        out.push(b':');
        write_str(out, text_of(text, "a string")?);
        out.extend_from_slice(b"}\n");
        return Ok(());
    }
    let items = if let Ok(dict) = record.cast::<PyDict>() {
        dict.items().into_any()
    } else if record.is_instance(mapping)? {
        record.call_method0("items")?
    } else {
        let alone = if texts_alone {
            " (or a str of text)"
        } else {
            ""
        };
        // Gold records have no id and text fields, but fields of their own.
        let expected = if fields.id.is_empty() {
            "a dict".to_string()
        } else {
            format!("a dict with {:?} and {:?}{alone}", fields.id, fields.text)
        };
        return Err(Fault::Python(PyTypeError::new_err(format!(
            "{name}[{i}]: expected {expected}, not {}",
            record.get_type().name()?
        ))));
    };
    out.push(b'{');
    for (n, item) in items.try_iter()?.enumerate() {
        let (key, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
        let Ok(key) = key.cast::<PyString>() else {
            return Err(Fault::Record(format!(
                "a field name that is not a string: {key}"
            )));
        };
        if n > 0 {
            out.push(b',');
        }
        let key = text_of(key, "a field name")?;
        write_str(out, key);
        out.push(b':');
        write_value(out, &value, key, key == fields.date)?;
    }
    out.extend_from_slice(b"}\n");
    Ok(())
}

/// The text of `s`, `what` (a string, a field name, field "x") unless it is not valid
/// Unicode (a lone surrogate).
fn text_of<'a>(s: &'a Bound<'_, PyString>, what: &str) -> Result<&'a str, Fault> {
    s.to_str()
        .map_err(|e| Fault::Record(format!("{what} that is not valid Unicode ({e})")))
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(out, s).expect("writing to a Vec");
}

/// A field's value as JSON: strings, numbers, booleans and null as such, a `datetime` or
/// `date` as ISO 8601 text, anything else as Python's `json` writes it (the reader then
/// says what it expected where it expected something else). `is_date`: the value is the
/// record's date, where an integer beyond 64 bits is written as it is, as the command
/// reads it from a file (a date beyond any calendar, which the run says it does not use).
fn write_value(
    out: &mut Vec<u8>,
    value: &Bound<'_, PyAny>,
    key: &str,
    is_date: bool,
) -> Result<(), Fault> {
    let refuse = |why: String| Fault::Record(format!("field {key:?} {why}"));
    if let Ok(s) = value.cast::<PyString>() {
        write_str(out, text_of(s, &format!("field {key:?} is a string"))?);
    } else if value.is_none() {
        out.extend_from_slice(b"null");
    } else if let Ok(b) = value.cast::<PyBool>() {
        out.extend_from_slice(if b.is_true() { b"true" } else { b"false" });
    } else if value.cast::<PyInt>().is_ok() {
        // The reader holds integers in 64 bits; a larger one would be read as a float
        // and refused as "a number" (an id) or rounded (a gold id).
        if !is_date && value.extract::<i64>().is_err() && value.extract::<u64>().is_err() {
            return Err(refuse(format!(
                "is the integer {value}, out of range: integers must fit in 64 bits (give a str)"
            )));
        }
        out.extend_from_slice(value.str()?.to_cow()?.as_bytes());
    } else if let Ok(f) = value.cast::<PyFloat>() {
        // serde_json writes NaN and infinities as null, which would be misreported.
        if !f.value().is_finite() {
            return Err(refuse(format!("is {}, which JSON cannot hold", f.value())));
        }
        serde_json::to_writer(&mut *out, &f.value()).expect("writing to a Vec");
    } else if value.hasattr("isoformat")? {
        write_str(out, &value.call_method0("isoformat")?.extract::<String>()?);
    } else {
        // allow_nan=False: a NaN inside a list would be written as `NaN`, which is not JSON.
        let py = value.py();
        let options = PyDict::new(py);
        options.set_item("allow_nan", false)?;
        let dumped = py
            .import("json")?
            .call_method("dumps", (value,), Some(&options))
            .map_err(|e| refuse(format!("cannot be written as JSON: {e}")))?;
        out.extend_from_slice(dumped.extract::<String>()?.as_bytes());
    }
    Ok(())
}
