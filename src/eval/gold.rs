//! Gold labels: which pairs are the same story, or which documents belong together.
//!
//! Two shapes, each as JSON Lines or CSV (with a header row):
//! * pairs: one record per judged pair, `{"a": ID, "b": ID, "same_story": BOOL}` (the label
//!   field may also be called `duplicate`), with an optional kind (`"label": "rewrite"`)
//!   used to break the results down;
//! * clusters: one record per document, `{"id": ID, "cluster": LABEL}`. Every listed
//!   document counts; a document alone in its cluster is a singleton.
//!
//! Field names are configurable ([`GoldFields`]). Ids and cluster labels are strings or
//! integers; a label is `true`/`false`, `yes`/`no` or `1`/`0`, the same in both formats
//! (in JSON a boolean, a number or a string). A pair with both label fields takes either,
//! but they must agree. A record that cannot be used is an error naming file and line,
//! never a skip.
//! A repeated pair or document with the same label is merged and counted; with a
//! different label it is an error.

use std::collections::HashMap;
use std::io::{BufRead, Read};
use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::input::{Location, open_decoded};

/// How a gold file is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GoldFormat {
    /// One JSON object per line.
    JsonLines,
    /// Comma-separated values with a header row.
    Csv,
}

impl GoldFormat {
    /// The format a file name suggests: CSV for `.csv` (also compressed), JSON Lines
    /// otherwise.
    pub fn from_name(path: &Path) -> Self {
        let name = path.to_string_lossy().to_ascii_lowercase();
        let name = name
            .strip_suffix(".gz")
            .or_else(|| name.strip_suffix(".zst"))
            .unwrap_or(&name);
        if name.ends_with(".csv") {
            GoldFormat::Csv
        } else {
            GoldFormat::JsonLines
        }
    }
}

/// What a gold file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GoldShape {
    /// Judged pairs.
    Pairs,
    /// A cluster label per document.
    Clusters,
}

/// Field (or CSV column) names of a gold file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoldFields {
    /// First document of a pair.
    pub a: String,
    /// Second document of a pair.
    pub b: String,
    /// Whether a pair is the same story; `None` accepts `same_story` or `duplicate`.
    pub label: Option<String>,
    /// Optional kind of a pair (e.g. `copy`, `rewrite`, `related`), to break results down.
    pub kind: String,
    /// Document id in cluster gold.
    pub id: String,
    /// Cluster label in cluster gold.
    pub cluster: String,
}

impl Default for GoldFields {
    fn default() -> Self {
        GoldFields {
            a: "a".into(),
            b: "b".into(),
            label: None,
            kind: "label".into(),
            id: "id".into(),
            cluster: "cluster".into(),
        }
    }
}

/// Label fields accepted when none is named.
pub const DEFAULT_LABEL_FIELDS: [&str; 2] = ["same_story", "duplicate"];

/// One judged pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoldPair {
    /// One document id.
    pub a: String,
    /// The other document id.
    pub b: String,
    /// Whether the two are the same story.
    pub same: bool,
    /// The pair's kind, when the file gives one.
    pub kind: Option<String>,
    /// 1-based line of the file (CSV: where the record starts).
    pub line: u64,
}

/// One document's cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoldMember {
    /// The document id.
    pub id: String,
    /// Its cluster label.
    pub cluster: String,
    /// 1-based line.
    pub line: u64,
}

/// The records of a gold file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GoldRecords {
    /// Judged pairs, in file order.
    Pairs(Vec<GoldPair>),
    /// Documents with their cluster labels, in file order.
    Clusters(Vec<GoldMember>),
}

/// A parsed gold file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gold {
    /// The file's name as given.
    pub name: String,
    /// Its records.
    pub records: GoldRecords,
    /// Repeated records with the same label, merged into the first.
    pub repeated: u64,
}

impl Gold {
    /// Pairs or clusters.
    pub fn shape(&self) -> GoldShape {
        match self.records {
            GoldRecords::Pairs(_) => GoldShape::Pairs,
            GoldRecords::Clusters(_) => GoldShape::Clusters,
        }
    }
}

/// Reads a gold file (gzip and zstd are detected from their bytes).
///
/// `format` defaults to the one the name suggests; `shape` defaults to what the first
/// record holds (the pair fields, else the cluster fields).
pub fn read_gold(
    path: &Path,
    format: Option<GoldFormat>,
    shape: Option<GoldShape>,
    fields: &GoldFields,
) -> Result<Gold> {
    let name = path.display().to_string();
    let mut on_read = |_| {};
    let reader = open_decoded(&Location::File(path.to_path_buf()), &mut on_read)
        .map_err(|e| Error::gold(&name, format!("cannot read: {e}")))?;
    let format = format.unwrap_or_else(|| GoldFormat::from_name(path));
    let rows = match format {
        GoldFormat::JsonLines => json_rows(reader, &name)?,
        GoldFormat::Csv => csv_rows(reader, &name)?,
    };
    parse_rows(name, rows, shape, fields)
}

/// Parses gold records already in memory (`name` is used in messages).
pub fn parse_gold(
    name: &str,
    bytes: &[u8],
    format: GoldFormat,
    shape: Option<GoldShape>,
    fields: &GoldFields,
) -> Result<Gold> {
    let rows = match format {
        GoldFormat::JsonLines => json_rows(bytes, name)?,
        GoldFormat::Csv => csv_rows(bytes, name)?,
    };
    parse_rows(name.to_string(), rows, shape, fields)
}

/// A field's value, whatever the file format.
#[derive(Debug)]
enum Cell {
    Json(Value),
    Text(String),
}

/// One record: its line and its fields.
type Row = (u64, HashMap<String, Cell>);

fn json_rows(reader: impl BufRead, name: &str) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line_no = i as u64 + 1;
        let at = || crate::FileLocation::at(name, line_no);
        let line = line.map_err(|e| Error::gold(at(), format!("cannot read: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let object: Map<String, Value> = match serde_json::from_str(&line) {
            Ok(Value::Object(o)) => o,
            Ok(_) => return Err(Error::gold(at(), "not a JSON object")),
            Err(e) => return Err(Error::gold(at(), format!("malformed JSON: {e}"))),
        };
        rows.push((
            line_no,
            object
                .into_iter()
                .map(|(k, v)| (k, Cell::Json(v)))
                .collect(),
        ));
    }
    Ok(rows)
}

fn csv_rows(reader: impl BufRead, name: &str) -> Result<Vec<Row>> {
    let mut csv = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(NewlineOffsets::new(reader));
    let headers = csv
        .headers()
        .map_err(|e| {
            Error::gold(
                crate::FileLocation::at(name, 1),
                format!("bad CSV header: {e}"),
            )
        })?
        .clone();
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let more = csv.read_record(&mut record).map_err(|e| {
            let line = e.position().map_or(0, |p| csv.get_ref().line_at(p.byte()));
            let why = match e.kind() {
                csv::ErrorKind::UnequalLengths {
                    expected_len, len, ..
                } => format!(
                    "{} where the header has {expected_len}",
                    crate::report::count(*len, "field", "fields")
                ),
                _ => e.to_string(),
            };
            Error::gold(
                crate::FileLocation::at(name, line),
                format!("bad CSV record: {why}"),
            )
        })?;
        if !more {
            break;
        }
        let line = record
            .position()
            .map_or(0, |p| csv.get_ref().line_at(p.byte()));
        rows.push((
            line,
            headers
                .iter()
                .zip(record.iter())
                .map(|(h, v)| (h.to_string(), Cell::Text(v.to_string())))
                .collect(),
        ));
    }
    Ok(rows)
}

/// A reader that notes where each line ends, so that a byte offset gives its line: the
/// csv crate's own line numbers lag by one per record in a file with CRLF line ends
/// (BurntSushi/rust-csv#395).
struct NewlineOffsets<R> {
    inner: R,
    read: u64,
    /// Offsets of the `\n` bytes.
    newlines: Vec<u64>,
    /// Offsets of the `\n` and `\r` bytes.
    line_ends: Vec<u64>,
}

impl<R> NewlineOffsets<R> {
    fn new(inner: R) -> Self {
        NewlineOffsets {
            inner,
            read: 0,
            newlines: Vec::new(),
            line_ends: Vec::new(),
        }
    }

    /// The 1-based line of a record that the csv crate says starts at byte `offset`. It
    /// may say a line end before the record (the `\n` of a CRLF, blank lines skipped):
    /// the record's line is that of its first other byte.
    fn line_at(&self, mut offset: u64) -> u64 {
        let mut k = self.line_ends.partition_point(|&e| e < offset);
        while self.line_ends.get(k) == Some(&offset) {
            offset += 1;
            k += 1;
        }
        self.newlines.partition_point(|&n| n < offset) as u64 + 1
    }
}

impl<R: Read> Read for NewlineOffsets<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for (i, &b) in buf[..n].iter().enumerate() {
            let at = self.read + i as u64;
            if b == b'\n' {
                self.newlines.push(at);
            }
            if b == b'\n' || b == b'\r' {
                self.line_ends.push(at);
            }
        }
        self.read += n as u64;
        Ok(n)
    }
}

fn parse_rows(
    name: String,
    rows: Vec<Row>,
    shape: Option<GoldShape>,
    fields: &GoldFields,
) -> Result<Gold> {
    let Some((first_line, first)) = rows.first() else {
        return Err(Error::gold(&name, "no gold records"));
    };
    let shape = match shape {
        Some(s) => s,
        None if first.contains_key(&fields.a) && first.contains_key(&fields.b) => GoldShape::Pairs,
        None if first.contains_key(&fields.id) && first.contains_key(&fields.cluster) => {
            GoldShape::Clusters
        }
        None => {
            return Err(Error::gold(
                crate::FileLocation::at(name.as_str(), *first_line),
                format!(
                    "neither a pair ({:?} and {:?} fields) nor a cluster member ({:?} and {:?} fields); \
                     see --gold-a, --gold-b, --gold-id, --gold-cluster",
                    fields.a, fields.b, fields.id, fields.cluster
                ),
            ));
        }
    };
    let mut repeated = 0;
    let records = match shape {
        GoldShape::Pairs => {
            let mut pairs: Vec<GoldPair> = Vec::with_capacity(rows.len());
            let mut seen: HashMap<(String, String), usize> = HashMap::new();
            for (line, row) in &rows {
                let at = || crate::FileLocation::at(name.as_str(), *line);
                let a = id_field(row, &fields.a).map_err(|r| Error::gold(at(), r))?;
                let b = id_field(row, &fields.b).map_err(|r| Error::gold(at(), r))?;
                if a == b {
                    return Err(Error::gold(at(), format!("a pair of {a:?} with itself")));
                }
                let same =
                    label_field(row, fields.label.as_deref()).map_err(|r| Error::gold(at(), r))?;
                let kind = kind_field(row, &fields.kind).map_err(|r| Error::gold(at(), r))?;
                let key = if a < b {
                    (a.clone(), b.clone())
                } else {
                    (b.clone(), a.clone())
                };
                if let Some(&earlier) = seen.get(&key) {
                    let first = &pairs[earlier];
                    if first.same != same {
                        return Err(Error::gold(
                            at(),
                            format!(
                                "the pair {a:?}, {b:?} is labelled {same} here and {} at line {}",
                                first.same, first.line
                            ),
                        ));
                    }
                    repeated += 1;
                    continue;
                }
                seen.insert(key, pairs.len());
                pairs.push(GoldPair {
                    a,
                    b,
                    same,
                    kind,
                    line: *line,
                });
            }
            GoldRecords::Pairs(pairs)
        }
        GoldShape::Clusters => {
            let mut members: Vec<GoldMember> = Vec::with_capacity(rows.len());
            let mut seen: HashMap<String, usize> = HashMap::new();
            for (line, row) in &rows {
                let at = || crate::FileLocation::at(name.as_str(), *line);
                let id = id_field(row, &fields.id).map_err(|r| Error::gold(at(), r))?;
                let cluster = id_field(row, &fields.cluster).map_err(|r| Error::gold(at(), r))?;
                if let Some(&earlier) = seen.get(&id) {
                    let first = &members[earlier];
                    if first.cluster != cluster {
                        return Err(Error::gold(
                            at(),
                            format!(
                                "document {id:?} is in cluster {cluster:?} here and {:?} at line {}",
                                first.cluster, first.line
                            ),
                        ));
                    }
                    repeated += 1;
                    continue;
                }
                seen.insert(id.clone(), members.len());
                members.push(GoldMember {
                    id,
                    cluster,
                    line: *line,
                });
            }
            GoldRecords::Clusters(members)
        }
    };
    Ok(Gold {
        name,
        records,
        repeated,
    })
}

/// A string or integer field (ids, cluster labels).
fn id_field(row: &HashMap<String, Cell>, field: &str) -> std::result::Result<String, String> {
    match row.get(field) {
        None => Err(format!("missing field {field:?}")),
        Some(Cell::Json(Value::String(s))) | Some(Cell::Text(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Cell::Json(Value::Number(n))) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        Some(other) => Err(format!(
            "field {field:?} must be a non-empty string or an integer, found {}",
            describe(other)
        )),
    }
}

fn label_field(
    row: &HashMap<String, Cell>,
    field: Option<&str>,
) -> std::result::Result<bool, String> {
    if let Some(name) = field {
        let cell = row
            .get(name)
            .ok_or_else(|| format!("missing field {name:?}"))?;
        return label_value(name, cell);
    }
    // Either default field, and both must agree. An empty CSV cell (a column that other
    // rows fill) or a JSON null is no label when the other field gives one.
    let present: Vec<(&str, &Cell)> = DEFAULT_LABEL_FIELDS
        .iter()
        .filter_map(|&f| Some((f, row.get(f)?)))
        .collect();
    let blank = |c: &Cell| {
        matches!(c, Cell::Json(Value::Null)) || matches!(c, Cell::Text(t) if t.is_empty())
    };
    let labels: Vec<(&str, &Cell)> = present.iter().copied().filter(|(_, c)| !blank(c)).collect();
    let Some(&(name, cell)) = labels.first().or(present.first()) else {
        return Err(format!(
            "missing label field: expected {:?} or {:?} (see --gold-label)",
            DEFAULT_LABEL_FIELDS[0], DEFAULT_LABEL_FIELDS[1]
        ));
    };
    let same = label_value(name, cell)?;
    for &(other, cell) in labels.iter().skip(1) {
        let also = label_value(other, cell)?;
        if also != same {
            return Err(format!(
                "fields {name:?} and {other:?} disagree ({same} and {also}): give one, or name \
                 the one to read with --gold-label"
            ));
        }
    }
    Ok(same)
}

/// A pair's label: `true`/`false`, `yes`/`no` or `1`/`0`, as a JSON boolean, number or
/// string or as CSV text alike.
fn label_value(name: &str, cell: &Cell) -> std::result::Result<bool, String> {
    let bad = |found: String| {
        format!("field {name:?} must be true or false (or yes or no, 1 or 0), found {found}")
    };
    let text = match cell {
        Cell::Json(Value::Bool(b)) => return Ok(*b),
        Cell::Json(Value::Number(n)) => {
            return match n.as_u64() {
                Some(0) => Ok(false),
                Some(1) => Ok(true),
                _ => Err(bad(n.to_string())),
            };
        }
        Cell::Json(Value::String(t)) | Cell::Text(t) => t,
        other => return Err(bad(describe(other))),
    };
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(bad(format!("{text:?}"))),
    }
}

fn kind_field(
    row: &HashMap<String, Cell>,
    field: &str,
) -> std::result::Result<Option<String>, String> {
    match row.get(field) {
        None | Some(Cell::Json(Value::Null)) => Ok(None),
        Some(Cell::Json(Value::String(s))) | Some(Cell::Text(s)) => {
            Ok((!s.is_empty()).then(|| s.clone()))
        }
        Some(other) => Err(format!(
            "field {field:?} (the pair's kind) must be a string, found {}",
            describe(other)
        )),
    }
}

fn describe(cell: &Cell) -> String {
    match cell {
        Cell::Text(t) => format!("{t:?}"),
        Cell::Json(Value::Null) => "null".into(),
        Cell::Json(Value::Bool(b)) => b.to_string(),
        Cell::Json(Value::Number(n)) => n.to_string(),
        Cell::Json(Value::String(s)) => format!("{s:?}"),
        Cell::Json(Value::Array(_)) => "an array".into(),
        Cell::Json(Value::Object(_)) => "an object".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Any bytes are gold labels or an error naming the file, never a panic.
        #[test]
        fn any_gold_file_is_labels_or_an_error(
            random in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
            lines in proptest::collection::vec("[{}\\[\\]\",:0-9a-z_ .\n-]{0,40}", 0..8),
        ) {
            let text = lines.join("\n");
            for format in [GoldFormat::JsonLines, GoldFormat::Csv] {
                for bytes in [&random[..], text.as_bytes()] {
                    if let Err(e) = parse_gold("g.txt", bytes, format, None, &GoldFields::default()) {
                        proptest::prop_assert!(e.to_string().contains("g.txt"), "{e}");
                    }
                }
            }
        }
    }

    fn pairs(text: &str, format: GoldFormat) -> Result<Gold> {
        parse_gold(
            "gold",
            text.as_bytes(),
            format,
            None,
            &GoldFields::default(),
        )
    }

    #[test]
    fn json_pairs_with_either_label_field() {
        let gold = pairs(
            concat!(
                r#"{"a": "x", "b": "y", "same_story": true, "label": "copy"}"#,
                "\n\n",
                r#"{"a": 1, "b": 2, "duplicate": false}"#,
                "\n"
            ),
            GoldFormat::JsonLines,
        )
        .unwrap();
        let GoldRecords::Pairs(p) = gold.records else {
            panic!("pairs expected")
        };
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].a.as_str(), p[0].same, p[0].kind.as_deref()),
            ("x", true, Some("copy"))
        );
        assert_eq!(
            (p[1].a.as_str(), p[1].b.as_str(), p[1].same, p[1].line),
            ("1", "2", false, 3)
        );
    }

    #[test]
    fn csv_pairs_and_clusters() {
        let gold = pairs("a,b,duplicate\nx,y,yes\nx,z,0\n", GoldFormat::Csv).unwrap();
        let GoldRecords::Pairs(p) = gold.records else {
            panic!("pairs expected")
        };
        assert_eq!(p.iter().map(|p| p.same).collect::<Vec<_>>(), [true, false]);
        assert_eq!(p[1].line, 3);
        let gold = pairs("id,cluster\nd1,s1\nd2,s1\nd3,7\n", GoldFormat::Csv).unwrap();
        assert_eq!(gold.shape(), GoldShape::Clusters);
    }

    /// JSON takes the spellings CSV takes; a pair may give both label fields when they
    /// agree (an empty CSV cell or a JSON null in one of them gives none).
    #[test]
    fn labels_are_spelled_alike_in_both_formats_and_two_fields_must_agree() {
        let json = concat!(
            r#"{"a": "x", "b": "y", "same_story": "yes"}"#,
            "\n",
            r#"{"a": "x", "b": "z", "duplicate": "No", "same_story": 0}"#,
            "\n",
            r#"{"a": "x", "b": "w", "same_story": null, "duplicate": "true"}"#,
            "\n",
        );
        let csv = "a,b,same_story,duplicate\nx,y,yes,\nx,z,No,0\nx,w,,true\n";
        for (text, format) in [(json, GoldFormat::JsonLines), (csv, GoldFormat::Csv)] {
            let GoldRecords::Pairs(p) = pairs(text, format).unwrap().records else {
                panic!("pairs expected")
            };
            let labels: Vec<bool> = p.iter().map(|p| p.same).collect();
            assert_eq!(labels, [true, false, true], "{format:?}");
        }
    }

    #[test]
    fn json_clusters_with_custom_fields() {
        let fields = GoldFields {
            id: "doc".into(),
            cluster: "story".into(),
            ..GoldFields::default()
        };
        let text = "{\"doc\": \"d1\", \"story\": 3}\n{\"doc\": \"d2\", \"story\": \"3\"}\n{\"doc\": \"d1\", \"story\": 3}\n";
        let gold = parse_gold("g", text.as_bytes(), GoldFormat::JsonLines, None, &fields).unwrap();
        let GoldRecords::Clusters(m) = gold.records else {
            panic!("clusters expected")
        };
        // Integer and string labels with the same digits are the same cluster.
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].cluster, m[1].cluster);
        assert_eq!(gold.repeated, 1);
    }

    #[test]
    fn bad_records_name_file_and_line() {
        let cases = [
            (
                "{\"a\": \"x\", \"b\": \"y\"}\n",
                "gold:1: missing label field",
            ),
            (
                "{\"a\": \"x\", \"b\": \"y\", \"same_story\": \"maybe\"}\n",
                "gold:1: field \"same_story\" must be true or false",
            ),
            (
                "{\"a\": \"x\", \"b\": \"x\", \"same_story\": true}\n",
                "gold:1: a pair of \"x\" with itself",
            ),
            (
                "{\"a\": \"x\", \"b\": \"y\", \"same_story\": true}\n{\"a\": \"y\", \"b\": \"x\", \"same_story\": false}\n",
                "gold:2: the pair \"y\", \"x\" is labelled false here and true at line 1",
            ),
            (
                "{\"a\": \"x\", \"b\": \"y\", \"same_story\": true}\n{\"a\": [1], \"b\": \"x\", \"same_story\": false}\n",
                "gold:2: field \"a\" must be a non-empty string or an integer, found an array",
            ),
            (
                "{\"a\": \"x\", \"b\": \"y\", \"same_story\": true}\nnot json\n",
                "gold:2: malformed JSON",
            ),
            ("{\"title\": \"x\"}\n", "gold:1: neither a pair"),
            ("", "gold: no gold records"),
        ];
        for (text, expected) in cases {
            let error = pairs(text, GoldFormat::JsonLines).unwrap_err();
            let err = error.to_string();
            assert!(
                err.starts_with(expected),
                "{err:?} should start with {expected:?}"
            );
            // The line is a field too, not only text.
            let crate::ErrorKind::Gold { location, .. } = error.kind() else {
                panic!("{err}: not a gold error");
            };
            let line = expected
                .strip_prefix("gold:")
                .and_then(|rest| rest.split(':').next()?.parse().ok());
            assert_eq!(
                (location.file.as_str(), location.line),
                ("gold", line),
                "{err}"
            );
        }
        // Both label fields: they must agree.
        let both = "{\"a\": \"x\", \"b\": \"y\", \"same_story\": true}\n{\"a\": \"x\", \"b\": \"z\", \"same_story\": true, \"duplicate\": \"no\"}\n";
        let err = pairs(both, GoldFormat::JsonLines).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "gold:2: fields \"same_story\" and \"duplicate\" disagree (true and false)"
            ),
            "{err}"
        );
        let err = pairs(
            "a,b,same_story,duplicate\nx,y,1,yes\nx,z,0,1\n",
            GoldFormat::Csv,
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("gold:3: fields"), "{err}");
        let err = pairs("a,b,same_story\nx,y,perhaps\n", GoldFormat::Csv).unwrap_err();
        assert!(
            err.to_string().starts_with("gold:2: field \"same_story\""),
            "{err}"
        );
    }

    /// Lines as an editor shows them, whatever the line ends and blank lines: the csv
    /// crate's own numbers lag one per record after CRLF.
    #[test]
    fn csv_lines_are_the_files_lines_with_crlf_and_blank_lines() {
        let fields = GoldFields::default();
        for end in ["\n", "\r\n"] {
            let text = ["id,cluster", "a,1", "", "b,1", "", "", "c,2", "d,1"].join(end) + end;
            let gold = parse_gold("gold", text.as_bytes(), GoldFormat::Csv, None, &fields).unwrap();
            let GoldRecords::Clusters(members) = &gold.records else {
                panic!("cluster gold")
            };
            let lines: Vec<(&str, u64)> = members.iter().map(|m| (m.id.as_str(), m.line)).collect();
            assert_eq!(lines, [("a", 2), ("b", 4), ("c", 7), ("d", 8)], "{end:?}");
            let bad = ["id,cluster", "a,1", "", "b"].join(end) + end;
            let err = parse_gold("gold", bad.as_bytes(), GoldFormat::Csv, None, &fields)
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("gold:4: bad CSV record: 1 field where the header has 2"),
                "{end:?}: {err}"
            );
        }
    }

    #[test]
    fn format_from_the_name() {
        assert_eq!(
            GoldFormat::from_name(Path::new("g.CSV.gz")),
            GoldFormat::Csv
        );
        assert_eq!(
            GoldFormat::from_name(Path::new("g.jsonl")),
            GoldFormat::JsonLines
        );
    }
}
