//! Output records of the feed commands (the only `Serialize` types of the feed index).
//!
//! Every record carries `schema_version` ([`crate::report::SCHEMA_VERSION`]); scores are
//! rounded to 4 decimals, as in batch output.

use std::io::{self, Write};

use serde::Serialize;

use super::{IndexCluster, IndexStats, Match, RepairReport, Verdict};
use crate::report::{Format, SCHEMA_VERSION, write_records};

fn round4(x: f32) -> f64 {
    (f64::from(x) * 10_000.0).round() / 10_000.0
}

/// The verdict on one article: one JSON line.
#[derive(Debug, Serialize)]
pub struct VerdictRecord<'a> {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The article.
    pub id: &'a str,
    /// `new`, `duplicate` or (story level) `rewrite`.
    pub verdict: &'static str,
    /// The best match's id (`null` when new).
    #[serde(rename = "match")]
    pub best_match: Option<&'a str>,
    /// Exact Jaccard with the best match for a duplicate, the story model's probability
    /// for a rewrite (`null` when new).
    pub score: Option<f64>,
    /// A rewrite: how it relates to its best match, as the batch story level's pair kind
    /// (`copy`, `update` or `rewrite`). Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// The article's cluster: its best match's cluster, or its own id when new.
    pub cluster: &'a str,
    /// The article was already indexed, and this is the verdict it got then: always
    /// present for a query, and when adding present (`true`) only for an article re-sent
    /// with the same text, which is not added again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indexed: Option<bool>,
    /// With `--all-matches`: every match at or above the threshold, best first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matches: Option<Vec<MatchRecord<'a>>>,
    /// With `--all-matches`, a duplicate on a story index: every same-story match, best
    /// first (its near-copies are `matches`; a rewrite's `matches` are these already).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub story_matches: Option<Vec<MatchRecord<'a>>>,
    /// The article's date field when it was not used (the article counted as undated):
    /// its value and why. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_ignored: Option<IgnoredDateRecord<'a>>,
}

/// [`VerdictRecord::date_ignored`].
#[derive(Debug, Serialize)]
pub struct IgnoredDateRecord<'a> {
    /// The date field's value as read (a number as text).
    pub value: &'a str,
    /// `unparsable` or `in_the_future` (more than a day after now).
    pub reason: &'static str,
}

/// One match in [`VerdictRecord::matches`] or [`VerdictRecord::story_matches`].
#[derive(Debug, Serialize)]
pub struct MatchRecord<'a> {
    /// The indexed article.
    pub id: &'a str,
    /// Exact Jaccard, or the story model's probability.
    pub score: f64,
    /// Story matches: the pair kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// Its cluster.
    pub cluster: &'a str,
}

impl<'a> VerdictRecord<'a> {
    /// The record of a verdict; `query` adds the `indexed` field (an add has it only for
    /// a re-sent article), `all_matches` the list.
    pub fn new(verdict: &'a Verdict, query: bool, all_matches: bool) -> Self {
        let best = verdict.best();
        VerdictRecord {
            schema_version: SCHEMA_VERSION,
            id: &verdict.id,
            verdict: verdict.kind.name(),
            best_match: best.map(|m| m.id.as_str()),
            score: best.map(|m| round4(m.score)),
            kind: best.and_then(|m| m.kind).map(|k| k.name()),
            cluster: &verdict.cluster,
            indexed: (query || verdict.already_indexed).then_some(verdict.already_indexed),
            matches: all_matches.then(|| verdict.matches.iter().map(MatchRecord::new).collect()),
            // Without them a duplicate's same-story pairs would be missing from the list.
            story_matches: (all_matches
                && verdict.kind == super::VerdictKind::Duplicate
                && !verdict.story_matches.is_empty())
            .then(|| verdict.story_matches.iter().map(MatchRecord::new).collect()),
            date_ignored: verdict.ignored_date.as_ref().map(|d| IgnoredDateRecord {
                value: &d.value,
                reason: d.reason.label(),
            }),
        }
    }
}

impl<'a> MatchRecord<'a> {
    fn new(m: &'a Match) -> Self {
        MatchRecord {
            id: &m.id,
            score: round4(m.score),
            kind: m.kind.map(|k| k.name()),
            cluster: &m.cluster,
        }
    }
}

/// `watch`'s line for an input line that could not be checked (malformed, no text, an id
/// already indexed), so that output lines pair with input lines.
#[derive(Debug, Serialize)]
pub struct RejectedRecord<'a> {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The article's id, when it could be read.
    pub id: Option<&'a str>,
    /// Always `rejected`.
    pub verdict: &'static str,
    /// 1-based input line.
    pub line: u64,
    /// Why.
    pub reason: String,
}

impl<'a> RejectedRecord<'a> {
    /// The record of a rejected input line.
    pub fn new(id: Option<&'a str>, line: u64, reason: String) -> Self {
        RejectedRecord {
            schema_version: SCHEMA_VERSION,
            id,
            verdict: "rejected",
            line,
            reason,
        }
    }
}

/// One cluster of `index export --clusters`.
#[derive(Debug, Serialize)]
pub struct ClusterRecord<'a> {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The cluster id, as in verdicts (its first article's id).
    pub cluster: &'a str,
    /// Number of members.
    pub size: usize,
    /// Its articles' ids, in the order added.
    pub members: &'a [String],
}

impl<'a> ClusterRecord<'a> {
    /// The record of a cluster.
    pub fn new(c: &'a IndexCluster) -> Self {
        ClusterRecord {
            schema_version: SCHEMA_VERSION,
            cluster: &c.cluster,
            size: c.members.len(),
            members: &c.members,
        }
    }
}

/// `index repair` as one JSON object: what was kept, what was left out, where the
/// damaged log went.
#[derive(Debug, Serialize)]
pub struct RepairRecord<'a> {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `repaired`, `cut_unfinished_write` or `nothing_to_repair`.
    pub outcome: &'static str,
    /// The article log that was read.
    pub log: String,
    /// Its bytes before the repair.
    pub log_bytes: u64,
    /// The article log's bytes after it.
    pub repaired_log_bytes: u64,
    /// The generation in force before.
    pub generation: u64,
    /// The generation in force after (one more when the log was rewritten).
    pub repaired_generation: u64,
    /// Intact articles kept.
    pub kept: u64,
    /// Stretches left out because they held no intact article, in log order.
    pub damaged: Vec<ByteRange>,
    /// Whether the log's 24-byte header was one of them.
    pub header_damaged: bool,
    /// The unfinished write at the end that was left out, if any.
    pub unfinished_write: Option<ByteRange>,
    /// Where the damaged log was kept (`null`: not rewritten, or discarded).
    pub kept_aside: Option<String>,
    /// Ids of kept articles whose verdict, decided again, differs from the stored one.
    pub verdicts_changed: &'a [String],
}

/// Bytes of a log: where they start and how many.
#[derive(Debug, Serialize)]
pub struct ByteRange {
    /// Offset of the first byte.
    pub offset: u64,
    /// Number of bytes.
    pub bytes: u64,
}

impl<'a> RepairRecord<'a> {
    /// The record of a repair.
    pub fn new(r: &'a RepairReport) -> Self {
        let range = |&(offset, bytes): &(u64, u64)| ByteRange { offset, bytes };
        RepairRecord {
            schema_version: SCHEMA_VERSION,
            outcome: r.outcome.name(),
            log: r.log.display().to_string(),
            log_bytes: r.log_bytes.0,
            repaired_log_bytes: r.log_bytes.1,
            generation: r.generation.0,
            repaired_generation: r.generation.1,
            kept: r.kept,
            damaged: r.damaged.iter().map(range).collect(),
            header_damaged: r.header_damaged,
            unfinished_write: r.unfinished_write.as_ref().map(range),
            kept_aside: r.kept_aside.as_ref().map(|p| p.display().to_string()),
            verdicts_changed: &r.verdicts_changed,
        }
    }
}

/// Writes verdicts (as `index add` prints them) in `format`: JSON Lines, a JSON array, CSV
/// or a table with the columns id, verdict, match, score, kind, cluster.
pub fn write_verdicts(out: &mut dyn Write, verdicts: &[Verdict], format: Format) -> io::Result<()> {
    let columns = ["id", "verdict", "match", "score", "kind", "cluster"];
    let records = verdicts.iter().map(|v| VerdictRecord::new(v, false, false));
    write_records(out, format, records, &columns, |r| {
        vec![vec![
            r.id.to_string(),
            r.verdict.to_string(),
            r.best_match.unwrap_or_default().to_string(),
            r.score.map(|s| format!("{s:.4}")).unwrap_or_default(),
            r.kind.unwrap_or_default().to_string(),
            r.cluster.to_string(),
        ]]
    })
}

/// Writes clusters in `format`; CSV and table rows are one per member (columns cluster,
/// size, member).
pub fn write_clusters(
    out: &mut dyn Write,
    clusters: &[IndexCluster],
    format: Format,
) -> io::Result<()> {
    let columns = ["cluster", "size", "member"];
    write_records(
        out,
        format,
        clusters.iter().map(ClusterRecord::new),
        &columns,
        |c| {
            c.members
                .iter()
                .map(|m| vec![c.cluster.to_string(), c.size.to_string(), m.clone()])
                .collect()
        },
    )
}

/// `index stats` as one JSON object.
#[derive(Debug, Serialize)]
pub struct StatsRecord {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// On-disk format version.
    pub format_version: u32,
    /// Comparison level.
    pub level: &'static str,
    /// Shingles, e.g. `words:5`.
    pub shingle: String,
    /// Signature slots.
    pub num_perm: usize,
    /// Sketch seed.
    pub seed: u64,
    /// Duplicate threshold (exact Jaccard).
    pub threshold: f64,
    /// LSH bands.
    pub bands: usize,
    /// Rows per band.
    pub rows: usize,
    /// LSH bucket cap.
    pub bucket_cap: usize,
    /// Window in seconds (`null`: none).
    pub window_seconds: Option<u64>,
    /// Story level: its settings and statistics (absent at the copy level).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub story: Option<StoryStatsRecord>,
    /// Log generation.
    pub generation: u64,
    /// Articles indexed.
    pub articles: u64,
    /// Of which new when added.
    pub new: u64,
    /// Of which duplicates when added.
    pub duplicates: u64,
    /// Of which rewrites when added (story level).
    pub rewrites: u64,
    /// Clusters with at least one duplicate.
    pub clusters_with_duplicates: u64,
    /// Articles older than the window.
    pub expired: u64,
    /// Oldest article time (seconds since the epoch).
    pub oldest: Option<i64>,
    /// Newest article time.
    pub newest: Option<i64>,
    /// Clock of the window.
    pub clock: i64,
    /// Bytes on disk.
    pub disk_bytes: u64,
    /// Approximate bytes of memory when open.
    pub memory_bytes: u64,
    /// Bytes of an unfinished write (left by a crash) ignored at opening.
    pub unfinished_write_bytes: u64,
}

/// The story level's part of [`StatsRecord`].
#[derive(Debug, Serialize)]
pub struct StoryStatsRecord {
    /// `accumulated` (from the articles indexed) or `fixed` (from a file at creation).
    pub statistics: &'static str,
    /// Documents counted in the statistics.
    pub documents: u64,
    /// Slots of the weighted signature.
    pub num_perm: usize,
    /// Weighted Jaccard at which a pair becomes a story candidate.
    pub candidate_threshold: f64,
    /// LSH bands of the weighted signatures.
    pub bands: usize,
    /// Rows per band.
    pub rows: usize,
    /// Story LSH bucket cap.
    pub bucket_cap: usize,
    /// Lowest model probability of one story.
    pub threshold: f64,
}

impl StatsRecord {
    /// The record of an index's statistics.
    pub fn new(s: &IndexStats) -> Self {
        let settings = &s.settings;
        StatsRecord {
            schema_version: SCHEMA_VERSION,
            format_version: super::FORMAT_VERSION,
            level: settings.level.name(),
            shingle: settings.shingle.to_string(),
            num_perm: settings.num_perm,
            seed: settings.seed,
            threshold: settings.threshold,
            bands: settings.lsh.bands,
            rows: settings.lsh.rows,
            bucket_cap: settings.bucket_cap,
            window_seconds: settings.window,
            story: settings.story.as_ref().map(|st| StoryStatsRecord {
                statistics: match st.stats {
                    super::StatsSource::Accumulated => "accumulated",
                    super::StatsSource::Fixed => "fixed",
                },
                documents: s.story_documents.unwrap_or(0),
                num_perm: st.num_perm,
                candidate_threshold: st.candidate_threshold,
                bands: st.lsh.bands,
                rows: st.lsh.rows,
                bucket_cap: st.bucket_cap,
                threshold: st.threshold,
            }),
            generation: s.generation,
            articles: s.articles,
            new: s.new,
            duplicates: s.duplicates,
            rewrites: s.rewrites,
            clusters_with_duplicates: s.clusters_with_duplicates,
            expired: s.expired,
            oldest: s.time_range.map(|r| r.0),
            newest: s.time_range.map(|r| r.1),
            clock: s.clock,
            disk_bytes: s.disk_bytes,
            memory_bytes: s.memory_bytes,
            unfinished_write_bytes: s.recovered_tail_bytes,
        }
    }
}

/// Writes one record as a JSON line.
pub fn write_json_line<T: Serialize>(out: &mut dyn Write, record: &T) -> io::Result<()> {
    serde_json::to_writer(&mut *out, record)?;
    out.write_all(b"\n")
}

/// Writes statistics as a two-column table for people.
pub fn write_stats_table(out: &mut dyn Write, stats: &IndexStats) -> io::Result<()> {
    let r = StatsRecord::new(stats);
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let date = |t: Option<i64>| {
        or_dash(t.map(|t| {
            chrono::DateTime::from_timestamp(t, 0).map_or_else(
                || format!("{t} s from 1970 (beyond the calendar)"),
                |d| d.to_rfc3339(),
            )
        }))
    };
    let rows: [(&str, String); 23] = [
        ("format version", r.format_version.to_string()),
        ("level", r.level.to_string()),
        ("shingle", r.shingle.clone()),
        ("num-perm", r.num_perm.to_string()),
        ("seed", r.seed.to_string()),
        ("threshold", r.threshold.to_string()),
        ("bands x rows", format!("{} x {}", r.bands, r.rows)),
        ("bucket cap", r.bucket_cap.to_string()),
        (
            "window",
            or_dash(r.window_seconds.map(crate::story::describe_window)),
        ),
        ("generation", r.generation.to_string()),
        ("articles", r.articles.to_string()),
        ("new when added", r.new.to_string()),
        ("duplicates when added", r.duplicates.to_string()),
        ("rewrites when added", r.rewrites.to_string()),
        (
            "story statistics",
            or_dash(
                r.story
                    .as_ref()
                    .map(|s| format!("{} ({} documents)", s.statistics, s.documents)),
            ),
        ),
        (
            "clusters with duplicates",
            r.clusters_with_duplicates.to_string(),
        ),
        ("expired (compact removes)", r.expired.to_string()),
        ("oldest", date(r.oldest)),
        ("newest", date(r.newest)),
        ("clock", date(Some(r.clock))),
        ("disk", format!("{:.1} MB", r.disk_bytes as f64 / 1e6)),
        (
            "memory when open",
            format!("{:.1} MB", r.memory_bytes as f64 / 1e6),
        ),
        (
            "unfinished write ignored",
            format!("{} bytes", r.unfinished_write_bytes),
        ),
    ];
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_BORDERS_ONLY);
    for (name, value) in rows {
        table.add_row([name.to_string(), value]);
    }
    writeln!(out, "{table}")
}
