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
}

/// Encodes every record of `records` (an iterable of mappings, or of strings where
/// `texts_alone`: a text whose id is its position), every field of it, in its order.
pub fn json_lines(
    records: &Bound<'_, PyAny>,
    name: &str,
    fields: &FieldNames,
    texts_alone: bool,
) -> PyResult<Encoded> {
    let py = records.py();
    let mapping = py.import("collections.abc")?.getattr("Mapping")?;
    let mut out = Encoded::default();
    for (i, record) in records.try_iter()?.enumerate() {
        let record = record?;
        out.count += 1;
        let text = record.cast::<PyString>().ok().filter(|_| texts_alone);
        if let Some(text) = text {
            out.bytes.push(b'{');
            write_str(&mut out.bytes, &fields.id);
            out.bytes.push(b':');
            write_str(&mut out.bytes, &i.to_string());
            out.bytes.push(b',');
            write_str(&mut out.bytes, &fields.text);
            out.bytes.push(b':');
            write_str(&mut out.bytes, text_of(text, name, i)?);
            out.bytes.extend_from_slice(b"}\n");
            continue;
        }
        let items = if let Ok(dict) = record.cast::<PyDict>() {
            dict.items().into_any()
        } else if record.is_instance(&mapping)? {
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
            return Err(PyTypeError::new_err(format!(
                "{name}[{i}]: expected {expected}, not {}",
                record.get_type().name()?
            )));
        };
        out.bytes.push(b'{');
        for (n, item) in items.try_iter()?.enumerate() {
            let (key, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
            let Ok(key) = key.cast::<PyString>() else {
                return Err(BadRecord::new_err((
                    format!("{name}[{i}]: a field name that is not a string: {key}"),
                    i,
                )));
            };
            if n > 0 {
                out.bytes.push(b',');
            }
            let key = text_of(key, name, i)?;
            write_str(&mut out.bytes, key);
            out.bytes.push(b':');
            write_value(&mut out.bytes, &value, name, i, key)?;
        }
        out.bytes.extend_from_slice(b"}\n");
    }
    Ok(out)
}

fn text_of<'a>(s: &'a Bound<'_, PyString>, name: &str, i: usize) -> PyResult<&'a str> {
    s.to_str().map_err(|e| {
        BadRecord::new_err((
            format!("{name}[{i}]: a string that is not valid Unicode ({e})"),
            i,
        ))
    })
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(out, s).expect("writing to a Vec");
}

/// A field's value as JSON: strings, numbers, booleans and null as such, a `datetime` or
/// `date` as ISO 8601 text, anything else as Python's `json` writes it (the reader then
/// says what it expected where it expected something else).
fn write_value(
    out: &mut Vec<u8>,
    value: &Bound<'_, PyAny>,
    name: &str,
    i: usize,
    key: &str,
) -> PyResult<()> {
    let refuse = |why: String| BadRecord::new_err((format!("{name}[{i}]: field {key:?} {why}"), i));
    if let Ok(s) = value.cast::<PyString>() {
        write_str(out, text_of(s, name, i)?);
    } else if value.is_none() {
        out.extend_from_slice(b"null");
    } else if let Ok(b) = value.cast::<PyBool>() {
        out.extend_from_slice(if b.is_true() { b"true" } else { b"false" });
    } else if value.cast::<PyInt>().is_ok() {
        // The reader holds integers in 64 bits; a larger one would be read as a float
        // and refused as "a number" (an id) or rounded (a gold id).
        if value.extract::<i64>().is_err() && value.extract::<u64>().is_err() {
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
        let dumped = value
            .py()
            .import("json")?
            .call_method1("dumps", (value,))
            .map_err(|e| {
                BadRecord::new_err((format!("{name}[{i}]: cannot be written as JSON: {e}"), i))
            })?;
        out.extend_from_slice(dumped.extract::<String>()?.as_bytes());
    }
    Ok(())
}
