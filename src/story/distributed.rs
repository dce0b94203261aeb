//! The story level split into steps that a cluster engine runs on many machines
//! (`scripts/spark/neardup_spark.py --level story`), giving the pairs and clusters of one
//! batch run over the whole input:
//!
//! 1. count: each worker counts the statistics of its part (`neardup stats count`), and
//!    the parts are summed ([`StoryStats::merge`], `neardup stats merge`): document
//!    frequencies add up, so the sum is the whole input's;
//! 2. sketch: each worker writes one [`StorySketchRecord`] per document, weighed by the
//!    summed statistics: the band keys of its weighted signature, the signature, its
//!    story features and its shingle set ([`write_sketches`], `neardup sketch --level
//!    story --stats`);
//! 3. the engine pairs the documents that share a band key, as [`crate::index`] does
//!    (buckets over the cap paired in id-order windows);
//! 4. verify: each candidate pair of records is judged here as the batch judges it: the
//!    signature estimate's floor, the time window, the components and the model
//!    ([`Verifier`], `neardup verify`);
//! 5. link: the same-story pairs' connected components are linked into clusters, each
//!    with every judged pair inside it and its members' records, exactly as the batch
//!    links them ([`StoryLinker`], `neardup link`; majority linkage only merges along
//!    same-story pairs, so components link apart, and the engine numbers the clusters).

use std::collections::HashMap;
use std::io::{self, BufRead, Write};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::model::Veto;
use super::output::{ComponentsRecord, StoryPairRecord};
use super::{
    Kind, StoryDocs, StoryPair, StorySettings, StoryStats, StoryView, beyond_window, candidate_lsh,
    estimate_floor, link, score, weighted_components, weighted_elements_of, weighted_sketcher,
};
use crate::corpus::Corpus;
use crate::distributed::{
    Documents, LineOrigins, SettingsCheck, decode_set, decode_signature, decode_words, encode,
    for_each_line, refuse_repeated_pairs, undecodable,
};
use crate::index::band_key;
use crate::report::{SCHEMA_VERSION, round4};
use crate::sketch::estimate_jaccard;

/// One document, sketched for a distributed story run.
#[derive(Debug, Serialize, Deserialize)]
pub struct StorySketchRecord {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Always `story`.
    pub level: String,
    /// The document.
    pub id: String,
    /// What it was sketched with ([`crate::distributed::sketch_settings`], the
    /// statistics' digest included); `None` only in records of older versions, which
    /// `verify` refuses.
    #[serde(default)]
    pub settings: Option<String>,
    /// Band keys of its weighted signature, one per band in band order, as 16 hex digits;
    /// none when it has no weighted content (only common words), as such a document is
    /// never a candidate.
    pub bands: Vec<String>,
    /// Its weighted signature: little-endian u32 slots, in base64.
    pub signature: String,
    /// Its story features (words, names, figures, slots, ...), encoded as little-endian
    /// u64 words, in base64; weighed again by whoever scores it.
    pub features: String,
    /// Its word-shingle set: sorted distinct 64-bit hashes, little-endian, in base64.
    pub set: String,
    /// Its date, seconds since the Unix epoch, when it has one.
    pub date: Option<i64>,
    /// Length of its text in bytes.
    pub text_bytes: u64,
    /// The record's other fields, as read (absent when it has none): what a story
    /// cluster lists with each member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Box<RawValue>>,
}

/// Writes one [`StorySketchRecord`] per document of `corpus`, in document order, weighed
/// by `stats` (the statistics of the whole input, for band keys that match across
/// workers), with the shingles and `seed` of `run`.
pub fn write_sketches(
    out: &mut dyn Write,
    corpus: &Corpus,
    docs: &StoryDocs,
    stats: &StoryStats,
    settings: &StorySettings,
    run: &crate::pipeline::Settings,
) -> io::Result<()> {
    let seed = run.seed;
    let k = settings.num_perm;
    let lsh = candidate_lsh(settings.candidate_threshold, k);
    // The statistics weigh the words; the candidate threshold sets the estimate floor.
    let sketched = format!(
        "{} stats={:016x} candidates={}",
        crate::distributed::sketch_settings("story", run.shingle, seed, k, lsh),
        stats.digest(),
        settings.candidate_threshold
    );
    let sketcher = weighted_sketcher(k, seed);
    const CHUNK: usize = 1024;
    let chunks: Vec<u32> = (0..corpus.len() as u32).step_by(CHUNK).collect();
    // A round of chunks at a time, so that memory stays bounded by the round's lines.
    for round in chunks.chunks(4 * rayon::current_num_threads().max(1)) {
        let written: Vec<io::Result<Vec<u8>>> = round
            .par_iter()
            .map(|&first| {
                let last = (first as usize + CHUNK).min(corpus.len()) as u32;
                let (mut buf, mut set_buf, mut elements, mut scratch) =
                    (Vec::new(), Vec::new(), Vec::new(), Vec::new());
                let (mut words, mut bytes) = (Vec::new(), Vec::new());
                let mut signature = vec![u32::MAX; k];
                let mut lines = Vec::new();
                for doc in first..last {
                    let view = docs.get(doc, &mut buf)?;
                    let weighted = score::Weighted::new(view, stats);
                    weighted_elements_of(&weighted, stats, &mut elements);
                    signature.fill(u32::MAX);
                    let bands = if elements.is_empty() {
                        Vec::new()
                    } else {
                        sketcher.sketch(&elements, &mut scratch, &mut signature);
                        (0..lsh.bands)
                            .map(|b| format!("{:016x}", band_key(&signature, lsh, b)))
                            .collect()
                    };
                    words.clear();
                    view.encode_into(&mut words);
                    let set = corpus.set(doc, &mut set_buf)?;
                    let record = StorySketchRecord {
                        schema_version: SCHEMA_VERSION,
                        level: "story".into(),
                        id: corpus.id(doc).to_string(),
                        settings: Some(sketched.clone()),
                        bands,
                        signature: encode(&mut bytes, &signature),
                        features: encode(&mut bytes, &words),
                        set: encode(&mut bytes, set),
                        date: corpus.date(doc),
                        text_bytes: corpus.text_bytes(doc),
                        metadata: corpus
                            .metadata(doc)
                            .map(|m| RawValue::from_string(m.to_string()))
                            .transpose()?,
                    };
                    serde_json::to_writer(&mut lines, &record)?;
                    lines.push(b'\n');
                }
                Ok(lines)
            })
            .collect();
        for lines in written {
            out.write_all(&lines?)?;
        }
    }
    Ok(())
}

/// A sketched document, decoded for scoring.
struct Sketched {
    id: String,
    signature: Vec<u32>,
    features: Vec<u64>,
    set: Vec<u64>,
    date: Option<i64>,
}

impl Sketched {
    fn decode(record: StorySketchRecord, num_perm: usize) -> Result<Self, String> {
        if record.level != "story" {
            return Err(format!(
                "document {:?} was sketched at the {} level, not the story level",
                record.id, record.level
            ));
        }
        let signature = decode_signature(&record.id, &record.signature, num_perm)?;
        let features = decode_words(&record.id, "features", &record.features)?;
        StoryView::decode(&features).ok_or_else(|| undecodable(&record.id, "features"))?;
        let set = decode_set(&record.id, &record.set)?;
        Ok(Sketched {
            id: record.id,
            signature,
            features,
            set,
            date: record.date,
        })
    }

    fn view(&self) -> StoryView<'_> {
        StoryView::decode(&self.features).expect("checked when decoded")
    }
}

/// A judged candidate pair, as `neardup verify` writes it: the record of a story pair of
/// `neardup pairs --level story`, then the decision.
#[derive(Debug, Serialize)]
pub struct VerifiedRecord<'a> {
    /// The pair as `pairs --level story` writes it (`kind`: the kind it would be).
    #[serde(flatten)]
    pub pair: StoryPairRecord<'a>,
    /// The probability unrounded: the 32-bit float that the linkage compares, written as
    /// the shortest decimal that reads back as it.
    pub probability: f32,
    /// Whether the model decides one story.
    pub same_story: bool,
    /// The veto that ruled the pair two stories, if one did.
    pub veto: Option<&'static str>,
}

/// What [`Verifier::verify`] did with the pairs it read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerifyCounts {
    /// Pairs read.
    pub pairs: u64,
    /// Pairs whose signatures agree on too few slots (as the batch cuts bucket mates).
    pub below_estimate: u64,
    /// Pairs of dated documents further apart than the window.
    pub outside_window: u64,
    /// Pairs scored (and written).
    pub scored: u64,
    /// Of those, decided one story.
    pub same_story: u64,
}

/// Judges candidate pairs of sketched documents as the batch story level does.
#[derive(Debug)]
pub struct Verifier<'s> {
    stats: &'s StoryStats,
    settings: &'s StorySettings,
    /// The digest of `stats`, which every record must have been sketched with.
    digest: u64,
}

impl<'s> Verifier<'s> {
    /// A verifier scoring against `stats` (the statistics the documents were sketched
    /// with) under `settings` (window, model, candidate threshold, signature slots).
    pub fn new(stats: &'s StoryStats, settings: &'s StorySettings) -> Self {
        Verifier {
            stats,
            settings,
            digest: stats.digest(),
        }
    }

    /// Reads candidate pairs from `input`, one JSON array of two [`StorySketchRecord`]s
    /// per line (blank lines skipped), and writes a [`VerifiedRecord`] for every pair
    /// that gets scored. A line that is not such a pair is an error naming
    /// `name:line`.
    pub fn verify(
        &self,
        input: &mut dyn BufRead,
        name: &str,
        out: &mut dyn Write,
    ) -> crate::Result<VerifyCounts> {
        let mut counts = VerifyCounts::default();
        let floor = estimate_floor(self.settings.candidate_threshold);
        let mut check = SettingsCheck::new(vec![
            ("level", "story".into(), "--level".into()),
            (
                "num_perm",
                self.settings.num_perm.to_string(),
                "the story level's".into(),
            ),
            (
                "stats",
                format!("{:016x}", self.digest),
                "the statistics of --stats".into(),
            ),
            (
                "candidates",
                self.settings.candidate_threshold.to_string(),
                "--story-candidates".into(),
            ),
            crate::distributed::tokenizer_setting(),
        ]);
        for_each_line(input, name, |number, line| {
            let at = crate::FileLocation::at(name, number);
            let bad = |reason: String| crate::Error::sketch(at.clone(), reason);
            let (x, y): (StorySketchRecord, StorySketchRecord) = serde_json::from_slice(line)
                .map_err(|e| {
                    bad(format!(
                        "not a pair of story sketch records ([{{…}}, {{…}}]): {e}"
                    ))
                })?;
            for r in [&x, &y] {
                // The level first: its message says more than the settings'.
                if r.level == "story" {
                    check
                        .check(&r.id, Some(r.schema_version), r.settings.as_deref(), &at)
                        .map_err(bad)?;
                }
            }
            let num_perm = self.settings.num_perm;
            let x = Sketched::decode(x, num_perm).map_err(bad)?;
            let y = Sketched::decode(y, num_perm).map_err(bad)?;
            if x.id == y.id {
                return Err(bad(format!("a document paired with itself: {:?}", x.id)));
            }
            counts.pairs += 1;
            if estimate_jaccard(&x.signature, &y.signature) < floor {
                counts.below_estimate += 1;
                return Ok(());
            }
            if beyond_window(self.settings.window, x.date, y.date).is_some() {
                counts.outside_window += 1;
                return Ok(());
            }
            let (a, b) = if x.id < y.id { (&x, &y) } else { (&y, &x) };
            let c = weighted_components(
                &score::Weighted::new(a.view(), self.stats),
                &score::Weighted::new(b.view(), self.stats),
                &a.set,
                &b.set,
            );
            let model = &self.settings.model;
            let (p, veto) = model.judge(&c);
            let probability = p as f32;
            let same_story = super::accepted(probability, model.threshold);
            counts.scored += 1;
            counts.same_story += u64::from(same_story);
            let record = VerifiedRecord {
                pair: StoryPairRecord {
                    schema_version: SCHEMA_VERSION,
                    level: "story",
                    a: &a.id,
                    b: &b.id,
                    kind: Kind::of(&c).name(),
                    score: round4(probability),
                    // Said by the judged record's own `veto`, always present.
                    veto: None,
                    components: ComponentsRecord::new(&c),
                },
                probability,
                same_story,
                veto: veto.map(Veto::name),
            };
            crate::feed::write_json_line(out, &record)
                .map_err(|e| crate::Error::io("writing the judged pairs", e))
        })?;
        Ok(counts)
    }
}

/// A judged pair as [`StoryLinker`] reads it back: a [`VerifiedRecord`].
#[derive(Debug, Deserialize)]
struct JudgedRecord {
    level: String,
    a: String,
    b: String,
    kind: String,
    components: HashMap<String, f64>,
    #[serde(deserialize_with = "crate::distributed::exact_f32")]
    probability: f32,
    same_story: bool,
    #[serde(default)]
    veto: Option<String>,
}

/// What [`StoryLinker`] read and wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkCounts {
    /// Judged pairs read.
    pub pairs: u64,
    /// Of those, one story.
    pub same_story: u64,
    /// Story clusters written.
    pub clusters: u64,
    /// Documents in them.
    pub clustered_documents: u64,
}

/// Links judged pairs into story clusters exactly as one batch run links them (the last
/// step of a distributed story run): the linkage, the representative, the cohesion and
/// the records of `neardup cluster --level story`.
///
/// Read every judged pair first ([`StoryLinker::read_pairs`]: every pair `verify` wrote,
/// not only the same-story ones, since the linkage counts the others against a merge),
/// then the records of the documents in same-story pairs ([`StoryLinker::read_members`]:
/// their dates, lengths and metadata), then [`StoryLinker::write`]. Any set of pairs
/// closed under the same-story pairs links alone (a connected component and every
/// judged pair inside it), so a cluster engine links components apart.
#[derive(Debug)]
pub struct StoryLinker {
    threshold: f64,
    linkage: super::Linkage,
    rule: crate::cluster::RepresentativeRule,
    documents: Documents,
    /// Every judged pair: (document, document, probability).
    scored: Vec<(u32, u32, f32)>,
    /// Where each of `scored` was read.
    origins: LineOrigins,
    /// The same-story ones (documents numbered as `scored`'s).
    accepted: Vec<StoryPair>,
    counts: LinkCounts,
}

impl StoryLinker {
    /// A linker under `settings` (the model's cut and the linkage) choosing
    /// representatives by `rule` (documents are in id order here, so `First` means the
    /// smallest id).
    pub fn new(settings: &StorySettings, rule: crate::cluster::RepresentativeRule) -> Self {
        StoryLinker {
            threshold: settings.model.threshold,
            linkage: settings.linkage,
            rule,
            documents: Documents::default(),
            scored: Vec::new(),
            origins: LineOrigins::default(),
            accepted: Vec::new(),
            counts: LinkCounts::default(),
        }
    }

    /// Reads judged pairs from `input` (the lines `neardup verify` writes; blank lines
    /// skipped). A line that is not one, or that was judged at another cut than this
    /// linker's, is an error naming `name:line`.
    pub fn read_pairs(&mut self, input: &mut dyn BufRead, name: &str) -> crate::Result<()> {
        for_each_line(input, name, |number, line| {
            let at = || crate::FileLocation::at(name, number);
            let bad = |reason: String| crate::Error::sketch(at(), reason);
            let r: JudgedRecord = serde_json::from_slice(line)
                .map_err(|e| bad(format!("not a judged pair (neardup verify): {e}")))?;
            if r.level != "story" {
                return Err(bad(format!("a pair of the {} level", r.level)));
            }
            if r.a == r.b {
                return Err(bad(format!("a document paired with itself: {:?}", r.a)));
            }
            let kind = Kind::from_name(&r.kind)
                .ok_or_else(|| bad(format!("unknown kind {:?}", r.kind)))?;
            let veto = (r.veto.as_deref())
                .map(|name| {
                    Veto::from_name(name).ok_or_else(|| bad(format!("unknown veto {name:?}")))
                })
                .transpose()?;
            let mut components = super::Components::default();
            for c in super::Component::ALL {
                components.0[c as usize] = *r
                    .components
                    .get(c.name())
                    .ok_or_else(|| bad(format!("the component {:?} is missing", c.name())))?;
            }
            if !(0.0..=1.0).contains(&r.probability) {
                return Err(bad(format!(
                    "probability {} is not in [0, 1]",
                    r.probability
                )));
            }
            let probability = r.probability;
            if super::accepted(probability, self.threshold) != r.same_story {
                return Err(bad(format!(
                    "judged at another cut: probability {} {} one story, but this run's \
                     --story-threshold is {}",
                    r.probability,
                    if r.same_story {
                        "decided"
                    } else {
                        "not decided"
                    },
                    self.threshold
                )));
            }
            let a = self.documents.intern(r.a, at);
            let b = self.documents.intern(r.b, at);
            self.scored.push((a, b, probability));
            self.origins.push(name, number);
            self.counts.pairs += 1;
            if r.same_story {
                self.documents.cluster(a);
                self.documents.cluster(b);
                self.accepted.push(StoryPair {
                    a,
                    b,
                    probability,
                    components,
                    kind,
                    veto,
                });
                self.counts.same_story += 1;
            }
            Ok(())
        })
    }

    /// Reads document records from `input` (story sketch records, or `{"id", "date",
    /// "text_bytes", "metadata"}`; blank lines skipped), keeping those of documents in
    /// same-story pairs read so far. Call it after every [`StoryLinker::read_pairs`].
    pub fn read_members(&mut self, input: &mut dyn BufRead, name: &str) -> crate::Result<()> {
        self.documents.read_members(input, name)
    }

    /// Links the pairs and writes the clusters as `neardup cluster --level story` does
    /// (largest first, numbered from 1). A document of a same-story pair without a
    /// record, or a pair judged twice, is an error.
    pub fn write(
        self,
        out: &mut dyn Write,
        format: crate::report::Format,
    ) -> crate::Result<LinkCounts> {
        let mut counts = self.counts;
        let (corpus, numbering) = self.documents.corpus()?;
        // Pairs outside the same-story pairs' documents take no part in the linkage.
        // With each pair's place in reading order, to name both places of a repeat.
        let mut scored: Vec<(link::Link, u32)> = (0..)
            .zip(&self.scored)
            .filter_map(|(read, &(a, b, probability))| {
                let (a, b, _) = numbering.pair(a, b)?;
                Some((link::Link { a, b, probability }, read))
            })
            .collect();
        scored.sort_unstable_by_key(|&(l, read)| (l.a, l.b, read));
        let ends = scored.iter().map(|&(l, read)| (l.a, l.b, read));
        refuse_repeated_pairs(&corpus, ends, &self.origins)?;
        let scored: Vec<link::Link> = scored.into_iter().map(|(l, _)| l).collect();
        let mut pairs = self.accepted;
        for p in &mut pairs {
            (p.a, p.b, _) = numbering.pair(p.a, p.b).expect("both ends clustered");
        }
        pairs.sort_unstable_by_key(|p| (p.a, p.b));
        let links: Vec<link::Link> = pairs.iter().map(StoryPair::link).collect();
        let rank: Vec<u32> = (0..corpus.len() as u32).collect();
        let clusters = link::link(
            &corpus,
            &scored,
            &links,
            self.threshold,
            self.linkage,
            self.rule,
            &rank,
        );
        counts.clusters = clusters.len() as u64;
        counts.clustered_documents = clusters.iter().map(|c| c.members.len() as u64).sum();
        super::output::write_cluster_records(out, &corpus, &clusters, &pairs, format)
            .map_err(|e| crate::Error::io("writing the story clusters", e))?;
        Ok(counts)
    }
}
