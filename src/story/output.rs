//! Story-level output records (the story level's part of the output contract; see
//! [`crate::report`] for the shared rules: `schema_version`, 4-decimal rounding).

use std::io::{self, Write};

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use super::model::COMPONENTS;
use super::{Component, Kind, StoryCluster, StoryOutcome, StoryPair};
use crate::corpus::Corpus;
use crate::pipeline::Outcome;
use crate::report::{Format, MemberRecord, SCHEMA_VERSION, cluster_rows, round4, write_records};

fn r4(x: f64) -> f64 {
    round4(x as f32)
}

/// The score components of a pair, rounded, written as an object keyed by
/// [`Component::name`] in [`Component::ALL`] order.
#[derive(Debug)]
pub struct ComponentsRecord([f64; COMPONENTS]);

impl ComponentsRecord {
    pub(crate) fn new(c: &super::Components) -> Self {
        ComponentsRecord(c.0.map(r4))
    }

    /// One component's rounded value.
    pub fn get(&self, c: Component) -> f64 {
        self.0[c as usize]
    }
}

impl Serialize for ComponentsRecord {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(COMPONENTS))?;
        for c in Component::ALL {
            map.serialize_entry(c.name(), &self.get(c))?;
        }
        map.end()
    }
}

/// One same-story pair.
#[derive(Debug, Serialize)]
pub struct StoryPairRecord<'a> {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Always `story`.
    pub level: &'static str,
    /// The smaller id.
    pub a: &'a str,
    /// The larger id.
    pub b: &'a str,
    /// `copy`, `update` or `rewrite`.
    pub kind: &'static str,
    /// Probability of one story under the model.
    pub score: f64,
    /// The veto that made the score 0, `template_slots` or `lead_names` (absent when none
    /// did; a vetoed pair is listed only at `--story-threshold 0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub veto: Option<&'static str>,
    /// What the score was computed from.
    pub components: ComponentsRecord,
}

/// The story level's verdict on a compared pair (`neardup compare`).
#[derive(Debug, Serialize)]
pub struct StoryVerdictRecord {
    /// Whether the model decides one story.
    pub same_story: bool,
    /// Probability of one story under the model (0 when vetoed).
    pub score: f64,
    /// The model's cut: one story from this score up.
    pub threshold: f64,
    /// Whether a veto decided two stories…
    pub vetoed: bool,
    /// …and which: `template_slots` or `lead_names` (absent when none did).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub veto: Option<&'static str>,
    /// `copy`, `update` or `rewrite`: what the pair is, or would be, as one story.
    pub kind: &'static str,
    /// Documents the IDF weights were counted over.
    pub statistics_documents: u64,
    /// Seconds between the dates, when further apart than the window (two stories).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beyond_window_seconds: Option<u64>,
    /// What the score was computed from (a: the smaller id).
    pub components: ComponentsRecord,
}

impl StoryVerdictRecord {
    /// The record of a verdict.
    pub fn new(v: &crate::align::StoryVerdict) -> Self {
        StoryVerdictRecord {
            same_story: v.same_story,
            score: r4(v.probability),
            threshold: v.model.threshold,
            vetoed: v.veto.is_some(),
            veto: v.veto.map(super::Veto::name),
            kind: v.kind.name(),
            statistics_documents: v.statistics_documents,
            beyond_window_seconds: v.beyond_window,
            components: ComponentsRecord::new(&v.components),
        }
    }
}

impl<'a> StoryPairRecord<'a> {
    /// The record of a same-story pair.
    pub fn new(corpus: &'a Corpus, p: &StoryPair) -> Self {
        StoryPairRecord {
            schema_version: SCHEMA_VERSION,
            level: "story",
            a: corpus.id(p.a),
            b: corpus.id(p.b),
            kind: p.kind.name(),
            score: round4(p.probability),
            veto: p.veto.map(super::Veto::name),
            components: ComponentsRecord::new(&p.components),
        }
    }
}

/// Scores among a story cluster's same-story pairs.
#[derive(Debug, Serialize)]
pub struct StoryCohesion {
    /// Lowest score.
    pub min_score: f64,
    /// Mean score.
    pub mean_score: f64,
}

/// One story cluster.
#[derive(Debug, Serialize)]
pub struct StoryClusterRecord<'a> {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Always `story`.
    pub level: &'static str,
    /// 1-based cluster number, largest first.
    pub cluster: usize,
    /// Number of members.
    pub size: usize,
    /// The member chosen by the representative rule (the earliest by default).
    pub representative: &'a str,
    /// Scores among the cluster's same-story pairs.
    pub cohesion: StoryCohesion,
    /// Members in id order.
    pub members: Vec<MemberRecord<'a>>,
    /// The same-story pairs inside the cluster, each with its kind and components.
    pub pairs: Vec<StoryPairRecord<'a>>,
}

/// The components a table of story pairs shows (CSV has them all, but a table wider than
/// a terminal cannot be read): those the fitted model weighs and the lead veto's, the
/// ones that explain a score.
fn table_components() -> Vec<Component> {
    let model = super::Model::fitted();
    Component::ALL
        .into_iter()
        .filter(|&c| model.weights[c as usize] != 0.0 || c == Component::LeadNameConflict)
        .collect()
}

/// Writes every same-story pair: in CSV every component and the veto, in a table the
/// score, the veto and the components the fitted model weighs with the lead veto's.
pub fn write_pairs(
    out: &mut dyn Write,
    corpus: &Corpus,
    story: &StoryOutcome,
    format: Format,
) -> io::Result<()> {
    let records = story.pairs.iter().map(|p| StoryPairRecord::new(corpus, p));
    let shown = match format {
        Format::Table => table_components(),
        _ => Component::ALL.to_vec(),
    };
    let columns: Vec<&str> = ["a", "b", "kind", "score", "veto"]
        .into_iter()
        .chain(shown.iter().map(|c| c.name()))
        .collect();
    write_records(out, format, records, &columns, |p| {
        let head = [
            p.a,
            p.b,
            p.kind,
            &format!("{:.4}", p.score),
            p.veto.unwrap_or(""),
        ];
        let components = shown.iter().map(|&c| format!("{:.4}", p.components.get(c)));
        vec![
            head.iter()
                .map(|s| s.to_string())
                .chain(components)
                .collect(),
        ]
    })
}

/// Writes every story cluster (CSV and table: one row per member).
pub fn write_clusters(
    out: &mut dyn Write,
    corpus: &Corpus,
    story: &StoryOutcome,
    format: Format,
) -> io::Result<()> {
    write_cluster_records(out, corpus, &story.clusters, &story.pairs, format)
}

/// Writes `clusters` of `corpus`, whose `pairs` index the same-story pairs `pairs`.
pub(crate) fn write_cluster_records(
    out: &mut dyn Write,
    corpus: &Corpus,
    clusters: &[StoryCluster],
    pairs: &[StoryPair],
    format: Format,
) -> io::Result<()> {
    let records = clusters
        .iter()
        .enumerate()
        .map(|(i, c)| StoryClusterRecord {
            schema_version: SCHEMA_VERSION,
            level: "story",
            cluster: i + 1,
            size: c.members.len(),
            representative: corpus.id(c.representative),
            cohesion: StoryCohesion {
                min_score: round4(c.min_probability),
                mean_score: round4(c.mean_probability),
            },
            members: c
                .members
                .iter()
                .map(|&d| MemberRecord::new(corpus, d))
                .collect(),
            pairs: c
                .pairs
                .iter()
                .map(|&i| StoryPairRecord::new(corpus, &pairs[i]))
                .collect(),
        });
    let columns = [
        "cluster",
        "size",
        "representative",
        "min_score",
        "mean_score",
        "member",
    ];
    write_records(out, format, records, &columns, |c| {
        cluster_rows(
            c.cluster,
            c.representative,
            (c.cohesion.min_score, c.cohesion.mean_score),
            &c.members,
        )
    })
}

/// Why `dedup --level story` dropped a record.
#[derive(Debug, Serialize)]
pub struct StoryDroppedRecord<'a> {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Always `story`.
    pub level: &'static str,
    /// The dropped document.
    pub id: &'a str,
    /// Where it was read from (`file:line`).
    pub location: String,
    /// The document kept in its place (its cluster's representative).
    pub kept: &'a str,
    /// The cluster number, as in `neardup cluster --level story` output (`null` for a
    /// repeated id whose first record is in no cluster).
    pub cluster: Option<usize>,
    /// The most similar member of its cluster (a repeated id: the first record with it).
    pub best_match: &'a str,
    /// How it relates to that member.
    pub kind: &'static str,
    /// Their score.
    pub score: f64,
    /// `same_story`, or `repeated_id`: the record repeats an earlier record's id and
    /// shingles, and is dropped as its copy.
    pub reason: &'static str,
}

/// Writes the story-level dedup report.
pub fn write_dropped(
    out: &mut dyn Write,
    outcome: &Outcome,
    story: &StoryOutcome,
    format: Format,
) -> io::Result<()> {
    let corpus = &outcome.corpus;
    let mut dropped = Vec::new();
    for (i, c) in story.clusters.iter().enumerate() {
        for &doc in c.members.iter().filter(|&&d| d != c.representative) {
            let best = c
                .pairs
                .iter()
                .map(|&pi| &story.pairs[pi])
                .filter(|p| p.a == doc || p.b == doc)
                .max_by(|x, y| {
                    x.probability.total_cmp(&y.probability).then_with(|| {
                        let other = |p: &StoryPair| if p.a == doc { p.b } else { p.a };
                        outcome.rank[other(y) as usize].cmp(&outcome.rank[other(x) as usize])
                    })
                });
            let (best_match, kind, score) = match best {
                Some(p) => (
                    if p.a == doc { p.b } else { p.a },
                    p.kind.name(),
                    round4(p.probability),
                ),
                None => (c.representative, "", 0.0),
            };
            dropped.push(StoryDroppedRecord {
                schema_version: SCHEMA_VERSION,
                level: "story",
                id: corpus.id(doc),
                location: crate::pipeline::describe_location(
                    &outcome.sources,
                    corpus.location(doc),
                ),
                kept: corpus.id(c.representative),
                cluster: Some(i + 1),
                best_match: corpus.id(best_match),
                kind,
                score,
                reason: "same_story",
            });
        }
    }
    for r in crate::report::repeated_copies(outcome) {
        dropped.push(StoryDroppedRecord {
            schema_version: SCHEMA_VERSION,
            level: "story",
            id: r.id,
            location: r.location,
            kept: corpus.id(r.kept),
            cluster: r.cluster,
            best_match: r.id,
            kind: Kind::Copy.name(),
            score: 1.0,
            reason: "repeated_id",
        });
    }
    // Stable: a repeat follows the same-story record of its id, repeats in input order.
    dropped.sort_by(|x, y| x.id.cmp(y.id));
    let columns = [
        "id",
        "kept",
        "cluster",
        "best_match",
        "kind",
        "score",
        "location",
        "reason",
    ];
    write_records(out, format, dropped.into_iter(), &columns, |d| {
        vec![vec![
            d.id.to_string(),
            d.kept.to_string(),
            d.cluster.map(|c| c.to_string()).unwrap_or_default(),
            d.best_match.to_string(),
            d.kind.to_string(),
            format!("{:.4}", d.score),
            d.location.clone(),
            d.reason.to_string(),
        ]]
    })
}
