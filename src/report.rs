//! Output: the only module with `Serialize` types. Every JSON record carries
//! `schema_version`; the formats are a contract of their own, separate from the internal
//! types.
//!
//! Scores are rounded to 4 decimals so that output is byte-identical across runs, thread
//! counts and input orders.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::io::{self, Write};

use serde::Serialize;
use serde_json::value::RawValue;

use crate::align::{Comparison, PairPassages, Passage};
use crate::cluster::Cluster;
use crate::corpus::Corpus;
use crate::input::{self, InputFormat, Problem, ProblemKind, RawRecord, ReadEvent, RecordLocation};
use crate::pipeline::Outcome;
use crate::verify::PairScore;

/// Version of every JSON record neardup writes. Bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line.
    #[default]
    Jsonl,
    /// One JSON array of the same objects.
    Json,
    /// Comma-separated values with a header row.
    Csv,
    /// An aligned table for people (control characters in values shown escaped).
    Table,
}

pub(crate) fn round4(x: f32) -> f64 {
    (f64::from(x) * 10_000.0).round() / 10_000.0
}

/// One verified pair.
#[derive(Debug, Serialize)]
pub struct PairRecord<'a> {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The smaller id.
    pub a: &'a str,
    /// The larger id.
    pub b: &'a str,
    /// Fraction of equal MinHash slots.
    pub estimated_jaccard: f64,
    /// Exact Jaccard of the shingle sets.
    pub jaccard: f64,
    /// |A∩B| / |A|.
    pub containment_a_in_b: f64,
    /// |A∩B| / |B|.
    pub containment_b_in_a: f64,
    /// With passages: fraction of a's words inside story (not boilerplate) passages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage_a: Option<f64>,
    /// With passages: the same for b.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage_b: Option<f64>,
    /// With passages: what the two texts share, in a's order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passages: Option<Vec<PassageRecord>>,
}

/// One side of a shared passage.
#[derive(Debug, Serialize)]
pub struct PassageSideRecord {
    /// Byte offset of its first byte in the original text.
    pub start: u32,
    /// Byte offset one past its last byte.
    pub end: u32,
    /// Number of words.
    pub words: u32,
    /// The passage as written in this text (`text[start..end]`).
    pub text: String,
}

/// A passage two documents share.
#[derive(Debug, Serialize)]
pub struct PassageRecord {
    /// Where it is in a.
    pub a: PassageSideRecord,
    /// Where it is in b.
    pub b: PassageSideRecord,
    /// Word edits between the two sides.
    pub edits: u32,
    /// Identical after normalization (no edits).
    pub exact: bool,
    /// Recurring text (banners, footers, sign-offs), not story reuse.
    pub boilerplate: bool,
    /// For boilerplate: the fewest documents of the corpus that carry one of its shingles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub documents: Option<u64>,
}

impl PassageRecord {
    /// The record of a passage between the texts `a` and `b`.
    pub fn new(p: &Passage, a: &str, b: &str) -> Self {
        let side = |s: &crate::align::Side, text: &str| PassageSideRecord {
            start: s.start,
            end: s.end,
            words: s.words,
            text: text.get(s.range()).unwrap_or_default().to_string(),
        };
        PassageRecord {
            a: side(&p.a, a),
            b: side(&p.b, b),
            edits: p.edits,
            exact: p.is_exact(),
            boilerplate: p.boilerplate.is_some(),
            documents: p.boilerplate,
        }
    }
}

/// The passage records of a pair, reading the texts from the corpus.
fn passage_records(
    corpus: &Corpus,
    pair: &PairPassages,
    a: u32,
    b: u32,
) -> io::Result<Vec<PassageRecord>> {
    let (mut buf_a, mut buf_b) = (Vec::new(), Vec::new());
    let missing = || io::Error::other("the corpus kept no texts");
    let text_a = corpus.text(a, &mut buf_a)?.ok_or_else(missing)?;
    let text_b = corpus.text(b, &mut buf_b)?.ok_or_else(missing)?;
    Ok(pair
        .passages
        .iter()
        .map(|p| PassageRecord::new(p, &text_a, &text_b))
        .collect())
}

impl<'a> PairRecord<'a> {
    /// The record of a scored pair.
    pub fn new(corpus: &'a Corpus, p: &PairScore) -> Self {
        Self::of(corpus.id(p.a), corpus.id(p.b), p)
    }

    /// The record of a scored pair of documents `a` and `b`.
    pub fn of(a: &'a str, b: &'a str, p: &PairScore) -> Self {
        PairRecord {
            schema_version: SCHEMA_VERSION,
            a,
            b,
            estimated_jaccard: round4(p.estimated),
            jaccard: round4(p.jaccard),
            containment_a_in_b: round4(p.a_in_b),
            containment_b_in_a: round4(p.b_in_a),
            coverage_a: None,
            coverage_b: None,
            passages: None,
        }
    }

    /// Adds the passages of verified pair number `index` of the outcome, if it has them.
    pub fn with_passages(mut self, outcome: &Outcome, index: usize) -> io::Result<Self> {
        if let Some(passages) = &outcome.passages {
            let pair = &passages[index];
            let p = &outcome.pairs[index];
            self.coverage_a = Some(round4(pair.coverage_a));
            self.coverage_b = Some(round4(pair.coverage_b));
            self.passages = Some(passage_records(&outcome.corpus, pair, p.a, p.b)?);
        }
        Ok(self)
    }
}

/// Similarity among a cluster's verified pairs.
#[derive(Debug, Serialize)]
pub struct Cohesion {
    /// Lowest exact Jaccard.
    pub min_jaccard: f64,
    /// Mean exact Jaccard.
    pub mean_jaccard: f64,
}

/// One member of a cluster.
#[derive(Debug, Serialize)]
pub struct MemberRecord<'a> {
    /// The document id.
    pub id: &'a str,
    /// The record's other fields, as read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<&'a RawValue>,
}

impl<'a> MemberRecord<'a> {
    /// The record of document `d`, with its metadata as read.
    pub fn new(corpus: &'a Corpus, d: u32) -> Self {
        MemberRecord {
            id: corpus.id(d),
            metadata: corpus
                .metadata(d)
                .and_then(|m| serde_json::from_str(m).ok()),
        }
    }
}

/// One cluster.
#[derive(Debug, Serialize)]
pub struct ClusterRecord<'a> {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// 1-based cluster number, in output order (largest first).
    pub cluster: usize,
    /// Number of members.
    pub size: usize,
    /// The member chosen by the representative rule.
    pub representative: &'a str,
    /// Similarity among the cluster's verified pairs.
    pub cohesion: Cohesion,
    /// Members in id order.
    pub members: Vec<MemberRecord<'a>>,
    /// The verified pairs inside the cluster.
    pub pairs: Vec<PairRecord<'a>>,
}

impl<'a> ClusterRecord<'a> {
    /// The record of cluster number `number` (1-based).
    pub fn new(outcome: &'a Outcome, number: usize, cluster: &Cluster) -> Self {
        Self::of(&outcome.corpus, &outcome.pairs, number, cluster)
    }

    /// The record of cluster number `number` of `corpus`, whose pairs index `pairs`.
    pub fn of(corpus: &'a Corpus, pairs: &[PairScore], number: usize, cluster: &Cluster) -> Self {
        ClusterRecord {
            schema_version: SCHEMA_VERSION,
            cluster: number,
            size: cluster.members.len(),
            representative: corpus.id(cluster.representative),
            cohesion: Cohesion {
                min_jaccard: round4(cluster.min_jaccard),
                mean_jaccard: round4(cluster.mean_jaccard),
            },
            members: cluster
                .members
                .iter()
                .map(|&d| MemberRecord::new(corpus, d))
                .collect(),
            pairs: cluster
                .pairs
                .iter()
                .map(|&i| PairRecord::new(corpus, &pairs[i]))
                .collect(),
        }
    }
}

/// Why `dedup` dropped a record.
#[derive(Debug, Serialize)]
pub struct DroppedRecord<'a> {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The dropped document.
    pub id: &'a str,
    /// Where it was read from (`file:line`).
    pub location: String,
    /// The document kept in its place (its cluster's representative).
    pub kept: &'a str,
    /// The cluster number, as in `neardup cluster` output with the same settings (`null`
    /// for a repeated id whose first record is in no cluster).
    pub cluster: Option<usize>,
    /// Exact Jaccard with the kept document, when the two were compared directly.
    pub jaccard_with_kept: Option<f64>,
    /// The most similar member of its cluster (a repeated id: the first record with it).
    pub best_match: &'a str,
    /// Exact Jaccard with that member.
    pub best_jaccard: f64,
    /// `near_duplicate`, or `repeated_id`: the record repeats an earlier record's id and
    /// shingles, and is dropped as its copy.
    pub reason: &'static str,
}

/// A record dropped for repeating an earlier record's id and shingles, and where that
/// first record went.
pub(crate) struct RepeatedCopy<'a> {
    /// The repeated id.
    pub id: &'a str,
    /// Where the repeat was read (`file:line`).
    pub location: String,
    /// The first record with the id.
    pub first: u32,
    /// What `dedup` keeps in its place: the first's cluster's representative, or the
    /// first itself.
    pub kept: u32,
    /// The first's cluster number, if it is in a cluster.
    pub cluster: Option<usize>,
}

/// The records `dedup` drops as repeats of an earlier id (same shingles), in input order.
pub(crate) fn repeated_copies(outcome: &Outcome) -> Vec<RepeatedCopy<'_>> {
    let copies = || {
        outcome
            .repeated_ids
            .iter()
            .filter_map(|r| Some((r, r.first.filter(|_| r.same_shingles)?)))
    };
    let firsts: HashSet<u32> = copies().map(|(_, first)| first).collect();
    let mut home: HashMap<u32, (u32, usize)> = HashMap::new();
    for (i, c) in outcome.clusters.iter().enumerate() {
        for &d in c.members.iter().filter(|d| firsts.contains(d)) {
            home.insert(d, (c.representative, i + 1));
        }
    }
    copies()
        .map(|(r, first)| {
            let (kept, cluster) = home
                .get(&first)
                .map_or((first, None), |&(kept, n)| (kept, Some(n)));
            RepeatedCopy {
                id: outcome.corpus.id(first),
                location: crate::pipeline::describe_location(&outcome.sources, r.location),
                first,
                kept,
                cluster,
            }
        })
        .collect()
}

/// The I/O error inside a CSV error, itself (a closed pipe stays `BrokenPipe`, which the
/// binary treats as a reader that has seen enough), else the CSV error as `Other`.
fn csv_io_error(e: csv::Error) -> io::Error {
    if !e.is_io_error() {
        return io::Error::other(e);
    }
    match e.into_kind() {
        csv::ErrorKind::Io(io) => io,
        kind => io::Error::other(format!("{kind:?}")),
    }
}

/// Writes records in a format. `columns` names the CSV/table columns and `row` gives a
/// record's cells; JSON formats serialize the records themselves.
pub(crate) fn write_records<T: Serialize>(
    out: &mut dyn Write,
    format: Format,
    records: impl Iterator<Item = T>,
    columns: &[&str],
    row: impl Fn(&T) -> Vec<Vec<String>>,
) -> io::Result<()> {
    match format {
        Format::Jsonl => {
            for r in records {
                serde_json::to_writer(&mut *out, &r)?;
                out.write_all(b"\n")?;
            }
        }
        Format::Json => {
            out.write_all(b"[")?;
            for (i, r) in records.enumerate() {
                out.write_all(if i == 0 { b"\n  " } else { b",\n  " })?;
                serde_json::to_writer(&mut *out, &r)?;
            }
            out.write_all(b"\n]\n")?;
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(&mut *out);
            w.write_record(columns).map_err(csv_io_error)?;
            for r in records {
                for cells in row(&r) {
                    w.write_record(&cells).map_err(csv_io_error)?;
                }
            }
            w.flush()?;
        }
        Format::Table => {
            let mut table = comfy_table::Table::new();
            table.load_preset(comfy_table::presets::UTF8_BORDERS_ONLY);
            table.set_header(columns.to_vec());
            for r in records {
                for cells in row(&r) {
                    table.add_row(cells.iter().map(|c| one_line(c)));
                }
            }
            writeln!(out, "{table}")?;
        }
    }
    Ok(())
}

/// A table cell, or a name (an id, a path) within a message, as shown: control characters
/// (a tab or a newline in an id, an escape sequence in a file name) as escapes (`\t`,
/// `\n`, `\u{1b}`), since a terminal would shift the columns after them, start a line
/// that passes for another message, or obey them. Only text for reading: JSON and CSV
/// keep every value as it is.
pub fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    escape_controls(text, |_, _| false)
}

/// A path as a message shows it: [`one_line`] of its display.
pub fn shown_path(path: &std::path::Path) -> String {
    one_line(&path.display().to_string()).into_owned()
}

/// `text` with each control character that `keep` (given it and the next character)
/// does not keep written as an escape: `\t`, `\n`, `\r`, else `\u{1b}`. Bidirectional
/// controls count as control characters: raw, they reorder what a terminal shows after
/// them, markers and other columns included ("Trojan Source").
fn escape_controls(
    text: &str,
    keep: impl Fn(char, Option<char>) -> bool,
) -> std::borrow::Cow<'_, str> {
    let escaped =
        |c: char, next: Option<char>| (c.is_control() || is_bidi_control(c)) && !keep(c, next);
    let mut chars = text.chars().peekable();
    if !std::iter::from_fn(|| chars.next().map(|c| escaped(c, chars.peek().copied()))).any(|e| e) {
        return text.into();
    }
    let mut shown = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if !escaped(c, chars.peek().copied()) => shown.push(c),
            '\t' => shown.push_str("\\t"),
            '\n' => shown.push_str("\\n"),
            '\r' => shown.push_str("\\r"),
            c => shown.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
        }
    }
    shown.into()
}

/// The explicit bidirectional formatting characters (Unicode's Bidi_Control property):
/// the marks (ALM, LRM, RLM), embeddings and overrides, and isolates.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn pair_cells(p: &PairRecord<'_>) -> Vec<String> {
    vec![
        p.a.to_string(),
        p.b.to_string(),
        format!("{:.4}", p.jaccard),
        format!("{:.4}", p.estimated_jaccard),
        format!("{:.4}", p.containment_a_in_b),
        format!("{:.4}", p.containment_b_in_a),
    ]
}

const PAIR_COLUMNS: [&str; 6] = [
    "a",
    "b",
    "jaccard",
    "estimated_jaccard",
    "containment_a_in_b",
    "containment_b_in_a",
];

/// Writes every verified pair (with their passages when the run found them).
pub fn write_pairs(out: &mut dyn Write, outcome: &Outcome, format: Format) -> io::Result<()> {
    if let Some(story) = &outcome.story {
        return crate::story::output::write_pairs(out, &outcome.corpus, story, format);
    }
    let failure = std::cell::RefCell::new(None);
    let records = outcome.pairs.iter().enumerate().map_while(|(i, p)| {
        PairRecord::new(&outcome.corpus, p)
            .with_passages(outcome, i)
            .map_err(|e| failure.replace(Some(e)))
            .ok()
    });
    if outcome.passages.is_some() {
        let columns: Vec<&str> = PAIR_COLUMNS
            .iter()
            .chain(&PASSAGE_COLUMNS)
            .copied()
            .collect();
        write_records(out, format, records, &columns, |p| {
            let mut cells = pair_cells(p);
            cells.extend(passage_cells(p));
            vec![cells]
        })?;
    } else {
        write_records(out, format, records, &PAIR_COLUMNS, |p| vec![pair_cells(p)])?;
    }
    match failure.into_inner() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

const PASSAGE_COLUMNS: [&str; 4] = [
    "passages",
    "boilerplate_passages",
    "coverage_a",
    "coverage_b",
];

fn passage_cells(p: &PairRecord<'_>) -> Vec<String> {
    let passages = p.passages.as_deref().unwrap_or_default();
    let boilerplate = passages.iter().filter(|x| x.boilerplate).count();
    vec![
        (passages.len() - boilerplate).to_string(),
        boilerplate.to_string(),
        format!("{:.4}", p.coverage_a.unwrap_or_default()),
        format!("{:.4}", p.coverage_b.unwrap_or_default()),
    ]
}

/// A comparison of two documents (`neardup compare --format json`).
#[derive(Debug, Serialize)]
pub struct ComparisonRecord<'a> {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The first document.
    pub a: ComparedRecord<'a>,
    /// The second document.
    pub b: ComparedRecord<'a>,
    /// Fraction of equal MinHash slots.
    pub estimated_jaccard: f64,
    /// Exact Jaccard of the shingle sets.
    pub jaccard: f64,
    /// |A∩B| / |A|.
    pub containment_a_in_b: f64,
    /// |A∩B| / |B|.
    pub containment_b_in_a: f64,
    /// Fraction of a's words inside story (not boilerplate) passages.
    pub coverage_a: f64,
    /// The same for b.
    pub coverage_b: f64,
    /// What the two texts share, in a's order.
    pub passages: Vec<PassageRecord>,
    /// How the story level judges the pair, and why.
    pub story: crate::story::output::StoryVerdictRecord,
}

/// One document of a [`ComparisonRecord`].
#[derive(Debug, Serialize)]
pub struct ComparedRecord<'a> {
    /// Its id (the path, for a text file).
    pub id: &'a str,
    /// Where it was read (`file:line` or `file`).
    pub location: &'a str,
    /// Number of words.
    pub words: u32,
    /// Length of the text in bytes.
    pub bytes: usize,
}

impl<'a> ComparisonRecord<'a> {
    /// The record of a comparison.
    pub fn new(c: &'a Comparison) -> Self {
        let doc = |d: &'a crate::align::ComparedDoc| ComparedRecord {
            id: &d.id,
            location: &d.location,
            words: d.words,
            bytes: d.text.len(),
        };
        ComparisonRecord {
            schema_version: SCHEMA_VERSION,
            a: doc(&c.a),
            b: doc(&c.b),
            estimated_jaccard: round4(c.score.estimated),
            jaccard: round4(c.score.jaccard),
            containment_a_in_b: round4(c.score.a_in_b),
            containment_b_in_a: round4(c.score.b_in_a),
            coverage_a: round4(c.passages.coverage_a),
            coverage_b: round4(c.passages.coverage_b),
            passages: c
                .passages
                .passages
                .iter()
                .map(|p| PassageRecord::new(p, &c.a.text, &c.b.text))
                .collect(),
            story: crate::story::output::StoryVerdictRecord::new(&c.story),
        }
    }
}

/// Untrusted text as a terminal should show it: line breaks and tabs as they are, every
/// other control character and every bidirectional control escaped (`\u{1b}`,
/// `\u{202e}`), so that a document cannot move the cursor, recolour or clear the screen,
/// nor reorder what is shown after it. For text meant to be read; JSON keeps the text as it is.
pub fn for_terminal(text: &str) -> std::borrow::Cow<'_, str> {
    escape_controls(text, |c, next| {
        matches!(c, '\n' | '\t') || (c == '\r' && next == Some('\n'))
    })
}

/// Writes a comparison as one JSON object (and a newline).
pub fn write_comparison(out: &mut dyn Write, comparison: &Comparison) -> io::Result<()> {
    serde_json::to_writer(&mut *out, &ComparisonRecord::new(comparison))?;
    out.write_all(b"\n")
}

/// Writes every cluster (CSV and table: one row per member).
pub fn write_clusters(out: &mut dyn Write, outcome: &Outcome, format: Format) -> io::Result<()> {
    if let Some(story) = &outcome.story {
        return crate::story::output::write_clusters(out, &outcome.corpus, story, format);
    }
    let failure = std::cell::RefCell::new(None);
    let records = outcome.clusters.iter().enumerate().map_while(|(i, c)| {
        let mut record = ClusterRecord::new(outcome, i + 1, c);
        if outcome.passages.is_some() {
            let pairs = std::mem::take(&mut record.pairs);
            let with: io::Result<Vec<PairRecord<'_>>> = pairs
                .into_iter()
                .zip(&c.pairs)
                .map(|(p, &index)| p.with_passages(outcome, index))
                .collect();
            record.pairs = with.map_err(|e| failure.replace(Some(e))).ok()?;
        }
        Some(record)
    });
    write_cluster_rows(out, format, records)?;
    match failure.into_inner() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Writes `clusters` of `corpus` (without passages), whose pairs index `pairs`.
pub(crate) fn write_cluster_records(
    out: &mut dyn Write,
    corpus: &Corpus,
    clusters: &[Cluster],
    pairs: &[PairScore],
    format: Format,
) -> io::Result<()> {
    let records = clusters
        .iter()
        .enumerate()
        .map(|(i, c)| ClusterRecord::of(corpus, pairs, i + 1, c));
    write_cluster_rows(out, format, records)
}

fn write_cluster_rows<'a>(
    out: &mut dyn Write,
    format: Format,
    records: impl Iterator<Item = ClusterRecord<'a>>,
) -> io::Result<()> {
    let columns = [
        "cluster",
        "size",
        "representative",
        "min_jaccard",
        "mean_jaccard",
        "member",
    ];
    write_records(out, format, records, &columns, |c| {
        cluster_rows(
            c.cluster,
            c.representative,
            (c.cohesion.min_jaccard, c.cohesion.mean_jaccard),
            &c.members,
        )
    })
}

/// The CSV and table rows of a cluster: one per member, with the cluster's number,
/// size, representative and `(min, mean)` cohesion repeated.
pub(crate) fn cluster_rows(
    cluster: usize,
    representative: &str,
    (min, mean): (f64, f64),
    members: &[MemberRecord<'_>],
) -> Vec<Vec<String>> {
    members
        .iter()
        .map(|m| {
            vec![
                cluster.to_string(),
                members.len().to_string(),
                representative.to_string(),
                format!("{min:.4}"),
                format!("{mean:.4}"),
                m.id.to_string(),
            ]
        })
        .collect()
}

/// The documents `dedup` drops: every cluster member but the representative.
pub fn dropped_records(outcome: &Outcome) -> Vec<DroppedRecord<'_>> {
    let corpus = &outcome.corpus;
    let mut dropped = Vec::new();
    for (i, cluster) in outcome.clusters.iter().enumerate() {
        for &doc in &cluster.members {
            if doc == cluster.representative {
                continue;
            }
            let mut with_kept = None;
            let mut best = (doc, -1.0f32);
            for &pi in &cluster.pairs {
                let p = &outcome.pairs[pi];
                let other = if p.a == doc {
                    p.b
                } else if p.b == doc {
                    p.a
                } else {
                    continue;
                };
                if other == cluster.representative {
                    with_kept = Some(round4(p.jaccard));
                }
                if p.jaccard > best.1
                    || (p.jaccard == best.1
                        && outcome.rank[other as usize] < outcome.rank[best.0 as usize])
                {
                    best = (other, p.jaccard);
                }
            }
            dropped.push(DroppedRecord {
                schema_version: SCHEMA_VERSION,
                id: corpus.id(doc),
                location: crate::pipeline::describe_location(
                    &outcome.sources,
                    corpus.location(doc),
                ),
                kept: corpus.id(cluster.representative),
                cluster: Some(i + 1),
                jaccard_with_kept: with_kept,
                best_match: corpus.id(best.0),
                best_jaccard: round4(best.1.max(0.0)),
                reason: "near_duplicate",
            });
        }
    }
    let repeats = repeated_copies(outcome);
    // Same shingles as the first: a repeat's Jaccard with the kept one is the first's.
    let ordered = |x: u32, y: u32| (x.min(y), x.max(y));
    let mut first_with_kept: HashMap<(u32, u32), Option<f64>> = repeats
        .iter()
        .filter(|r| r.kept != r.first)
        .map(|r| (ordered(r.first, r.kept), None))
        .collect();
    if !first_with_kept.is_empty() {
        for p in &outcome.pairs {
            if let Some(j) = first_with_kept.get_mut(&ordered(p.a, p.b)) {
                *j = Some(round4(p.jaccard));
            }
        }
    }
    for r in repeats {
        let with_kept = if r.kept == r.first {
            Some(1.0)
        } else {
            first_with_kept[&ordered(r.first, r.kept)]
        };
        dropped.push(DroppedRecord {
            schema_version: SCHEMA_VERSION,
            id: r.id,
            location: r.location,
            kept: corpus.id(r.kept),
            cluster: r.cluster,
            jaccard_with_kept: with_kept,
            best_match: r.id,
            best_jaccard: 1.0,
            reason: "repeated_id",
        });
    }
    // Stable: a repeat follows the near-duplicate record of its id, repeats in input order.
    dropped.sort_by(|x, y| x.id.cmp(y.id));
    dropped
}

/// One document's fingerprint as `neardup sketch` writes it: the map step of a
/// distributed run (`scripts/spark/neardup_spark.py`). Two documents that share a band key
/// are a candidate pair; their exact Jaccard comes from the two sets.
#[derive(Debug, Serialize)]
pub struct SketchRecord<'a> {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The document.
    pub id: &'a str,
    /// What it was sketched with ([`crate::distributed::sketch_settings`]), for
    /// `neardup verify` to refuse records made otherwise.
    pub settings: &'a str,
    /// Its LSH band keys, one per band in band order, as 16 hex digits (a u64 does not
    /// fit every JSON reader's numbers).
    pub bands: Vec<String>,
    /// Its MinHash signature: little-endian u32 slots, in base64 (for the estimate
    /// `neardup verify` reports).
    pub signature: String,
    /// Its shingle set: sorted distinct 64-bit hashes, little-endian, in base64.
    pub set: String,
    /// Its date, seconds since the Unix epoch, when it has one.
    pub date: Option<i64>,
    /// Length of its text in bytes.
    pub text_bytes: u64,
    /// The record's other fields, as read (absent when it has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<&'a serde_json::value::RawValue>,
}

/// Writes one [`SketchRecord`] per document of `corpus`, in input order, with the band
/// keys of `lsh` (the banding a batch run with the same settings uses) and `settings`
/// ([`crate::distributed::sketch_settings`]).
pub fn write_sketches(
    out: &mut dyn Write,
    corpus: &Corpus,
    lsh: crate::index::LshParams,
    settings: &str,
) -> io::Result<()> {
    let (mut set_buf, mut bytes) = (Vec::new(), Vec::new());
    for doc in 0..corpus.len() as u32 {
        let signature = corpus.signature(doc);
        let metadata: Option<Box<serde_json::value::RawValue>> = corpus
            .metadata(doc)
            .map(|m| serde_json::value::RawValue::from_string(m.to_string()))
            .transpose()?;
        let record = SketchRecord {
            schema_version: SCHEMA_VERSION,
            id: corpus.id(doc),
            settings,
            bands: (0..lsh.bands)
                .map(|b| format!("{:016x}", crate::index::band_key(signature, lsh, b)))
                .collect(),
            signature: crate::distributed::encode(&mut bytes, signature),
            set: crate::distributed::encode(&mut bytes, corpus.set(doc, &mut set_buf)?),
            date: corpus.date(doc),
            text_bytes: corpus.text_bytes(doc),
            metadata: metadata.as_deref(),
        };
        // `?`, not `io::Error::other`: serde_json hands back the I/O error itself, so a
        // closed pipe stays `BrokenPipe` (a quiet success for the binary).
        serde_json::to_writer(&mut *out, &record)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// `n` and its noun, singular for 1: `1 band`, `2 bands`.
pub fn count(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Writes the dedup report (what was dropped and why).
pub fn write_dropped(out: &mut dyn Write, outcome: &Outcome, format: Format) -> io::Result<()> {
    if let Some(story) = &outcome.story {
        return crate::story::output::write_dropped(out, outcome, story, format);
    }
    let columns = [
        "id",
        "kept",
        "cluster",
        "jaccard_with_kept",
        "best_match",
        "best_jaccard",
        "location",
        "reason",
    ];
    write_records(
        out,
        format,
        dropped_records(outcome).into_iter(),
        &columns,
        |d| {
            vec![vec![
                d.id.to_string(),
                d.kept.to_string(),
                d.cluster.map(|c| c.to_string()).unwrap_or_default(),
                d.jaccard_with_kept
                    .map(|j| format!("{j:.4}"))
                    .unwrap_or_default(),
                d.best_match.to_string(),
                format!("{:.4}", d.best_jaccard),
                d.location.clone(),
                d.reason.to_string(),
            ]]
        },
    )
}

/// Counts of a dedup rewrite.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DedupCounts {
    /// Records written to the output.
    pub kept: u64,
    /// Near-duplicates left out (including `repeated_copies`).
    pub dropped: u64,
    /// Malformed records and repeated ids with other text, written to the rejects (or
    /// counted, without a rejects writer).
    pub rejected: u64,
    /// Of `dropped`: records repeating an earlier record's id with the same shingles.
    pub repeated_copies: u64,
    /// Of `rejected`: records repeating an earlier record's id with other text (or where
    /// either has no usable text).
    pub repeated_conflicts: u64,
    /// Of `rejected`: records over `--max-record-bytes` (well-formed or not: never parsed).
    pub oversized: u64,
}

/// What `dedup` does with one record read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Written to the output.
    Keep,
    /// Left out as a duplicate; `repeat`: it repeats an earlier record's id and text.
    Drop {
        /// Whether it repeats an earlier record's id (with the same shingles).
        repeat: bool,
    },
    /// Malformed, or (`repeat`) repeating an earlier record's id with other text (or
    /// where either has no usable text).
    Reject {
        /// Whether it repeats an earlier record's id (not as a copy).
        repeat: bool,
    },
}

/// The fate of every record of a run, by where it was read: every cluster member but
/// the representative is dropped, as are records repeating an earlier record's id and
/// text; malformed records and repeated ids with other text are rejected.
#[derive(Debug)]
pub struct DedupPlan {
    drop: HashSet<RecordLocation>,
    malformed: HashSet<RecordLocation>,
    /// Repeated ids, and whether each has the first record's shingles.
    repeated: HashMap<RecordLocation, bool>,
}

impl DedupPlan {
    /// The plan of `outcome`'s clusters and problems.
    pub fn new(outcome: &Outcome) -> Self {
        let corpus = &outcome.corpus;
        DedupPlan {
            drop: outcome
                .clusters
                .iter()
                .flat_map(|c| {
                    c.members
                        .iter()
                        .filter(move |&&d| d != c.representative)
                        .map(|&d| corpus.location(d))
                })
                .collect(),
            malformed: outcome.malformed.iter().copied().collect(),
            repeated: outcome
                .repeated_ids
                .iter()
                .map(|r| (r.location, r.same_shingles))
                .collect(),
        }
    }

    /// What becomes of the record read at `location`.
    pub fn fate(&self, location: RecordLocation) -> Fate {
        let repeat = self.repeated.get(&location).copied();
        if self.drop.contains(&location) || repeat == Some(true) {
            Fate::Drop {
                repeat: repeat.is_some(),
            }
        } else if self.malformed.contains(&location) || repeat == Some(false) {
            Fate::Reject {
                repeat: repeat.is_some(),
            }
        } else {
            Fate::Keep
        }
    }
}

/// Reads the inputs again and writes every record except the dropped near-duplicates,
/// byte for byte, in input order. Malformed records go to `rejects` when given. A record
/// repeating an earlier record's id is dropped as a copy when its shingles are the
/// same, else rejected (see [`crate::pipeline::RepeatedId`]; a record without a usable
/// text is written, and owns its id): ids stay unique. Text
/// documents are written as `{"id": …, "text": …}` JSON lines.
pub fn write_deduplicated(
    outcome: &Outcome,
    kept_out: &mut dyn Write,
    rejects: Option<&mut dyn Write>,
) -> io::Result<DedupCounts> {
    let plan = DedupPlan::new(outcome);
    let mut counts = DedupCounts::default();
    let failure: RefCell<Option<io::Error>> = RefCell::new(None);
    // The reader passes a record over --max-record-bytes to `oversized` in pieces, and
    // the sink writes the rest of the rejects: both write to the rejects.
    let rejects = RefCell::new(rejects);
    let fail = |e: io::Error| {
        *failure.borrow_mut() = Some(e);
        false
    };
    let reject = |bytes: &[u8]| -> bool {
        match rejects.borrow_mut().as_mut().map(|w| w.write_all(bytes)) {
            Some(Err(e)) => fail(e),
            _ => true,
        }
    };
    // Whether the last piece of an oversized line ended it: its line ending, as read, is
    // the one written.
    let ended = std::cell::Cell::new(false);
    let mut oversized = |piece: &[u8]| {
        ended.set(piece.last() == Some(&b'\n'));
        reject(piece)
    };
    let mut sink = |event: ReadEvent| -> bool {
        let batch = match event {
            ReadEvent::Batch(batch) => batch,
            // Skipped while reading, its bytes went to `oversized`: it is rejected.
            ReadEvent::Problem(Problem {
                kind: ProblemKind::RecordTooLarge { .. },
                line,
                ..
            }) => {
                counts.rejected += 1;
                counts.oversized += 1;
                // A line that had its ending has it; a last line without one and a text
                // document get a newline.
                return line.is_some() && ended.get() || reject(b"\n");
            }
            ReadEvent::Problem(_) => return true, // reported by the first pass
            // Out of open files or memory this time: the rewrite would lose records.
            ReadEvent::Failed(e) => return fail(io::Error::other(e)),
        };
        let mut rejects = rejects.borrow_mut();
        // A record's line ending as read (`\r\n` stays `\r\n`); a newline for the last
        // line of an input without one, so that the next input's records start a line.
        let line_ending = |r: &RawRecord| match batch.ending(r) {
            b"" => b"\n".as_slice(),
            ending => ending,
        };
        for r in &batch.records {
            let bytes = batch.bytes(r);
            let result = match plan.fate(r.location) {
                Fate::Drop { repeat } => {
                    counts.dropped += 1;
                    counts.repeated_copies += u64::from(repeat);
                    Ok(())
                }
                Fate::Reject { repeat } => {
                    counts.rejected += 1;
                    counts.repeated_conflicts += u64::from(repeat);
                    match rejects.as_mut() {
                        Some(w) => w.write_all(bytes).and_then(|_| w.write_all(line_ending(r))),
                        None => Ok(()),
                    }
                }
                Fate::Keep => {
                    counts.kept += 1;
                    let source = &outcome.sources[r.location.source as usize];
                    match source.format {
                        InputFormat::JsonLines => kept_out
                            .write_all(bytes)
                            .and_then(|_| kept_out.write_all(line_ending(r))),
                        InputFormat::Text => {
                            let record = serde_json::json!({
                                "id": source.text_id.as_deref().unwrap_or(&source.name),
                                "text": input::document_text(&String::from_utf8_lossy(bytes)),
                            });
                            serde_json::to_writer(&mut *kept_out, &record)
                                .map_err(io::Error::from)
                                .and_then(|_| kept_out.write_all(b"\n"))
                        }
                    }
                }
            };
            if let Err(e) = result {
                return fail(e);
            }
        }
        true
    };
    let limits = outcome.settings.limits;
    input::read_sources_passing_oversized(
        &outcome.sources,
        limits,
        &mut |_| {},
        &mut oversized,
        &mut sink,
    );
    match failure.into_inner() {
        Some(e) => Err(e),
        None => Ok(counts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidirectional_controls_are_escaped_for_reading_only() {
        let hostile = "id \u{202E}gnp.exe\u{202C} \u{2067}x\u{2069} \u{200F}\u{061C}";
        let shown = "id \\u{202e}gnp.exe\\u{202c} \\u{2067}x\\u{2069} \\u{200f}\\u{61c}";
        assert_eq!(for_terminal(hostile), shown);
        assert_eq!(one_line(hostile), shown);
        // Right-to-left text itself is shown as it is.
        assert!(matches!(
            for_terminal("שלום مرحبا"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
