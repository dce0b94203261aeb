//! The batch pipeline: inputs → documents → candidates → verified pairs → clusters.
//!
//! [`PipelineBuilder`] collects and checks settings; [`Pipeline`] is frozen and runs.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::align::{PairPassages, PassageSettings, TextStore};
use crate::checkpoint::{self, Checkpoint, Keeper};
use crate::cluster::{self, Cluster, ClusterMode, RepresentativeRule};
use crate::corpus::{Corpus, DocEntry, SetStore};
use crate::error::{Error, ErrorKind, Result};
use crate::feed::format::SCRIPTS_PROBE_TEXT;
use crate::index::{self, CopyGroup, LshParams, OversizedBucket};
use crate::input::{
    self, Batch, FieldNames, FirstSeen, InputFormat, InputSpec, Location, Problem, ProblemKind,
    RawRecord, ReadEvent, ReadLimits, RecordLocation, Source,
};
use crate::progress::{Observer, Stage, Ticker, go_on};
use crate::shingle::{ShingleSpec, Shingler, into_set};
use crate::sketch::Sketcher;
use crate::story::{self, StoryDoc, StoryDocs, StoryOutcome, StorySettings, StoryStats};
use crate::verify::{self, PairScore};

/// What counts as "the same": near-copies (shared text) or one news story.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Level {
    /// Word-shingle Jaccard at or above the threshold.
    #[default]
    NearCopy,
    /// Copies, updates and rewrites of one story (see [`crate::story`]).
    Story,
}

/// Settings of a run, checked and frozen by [`PipelineBuilder::build`].
#[derive(Clone, Debug)]
pub struct Settings {
    /// Field names of JSON Lines records.
    pub fields: FieldNames,
    /// Input format for every input, overriding file names.
    pub format: Option<InputFormat>,
    /// Record size and batching limits.
    pub limits: ReadLimits,
    /// Shingles.
    pub shingle: ShingleSpec,
    /// Signature slots.
    pub num_perm: usize,
    /// Seed of the sketch's hash functions.
    pub seed: u64,
    /// Pairs with exact Jaccard below this are dropped.
    pub threshold: f64,
    /// LSH banding.
    pub lsh: LshParams,
    /// Largest bucket expanded into all its pairs.
    pub bucket_cap: usize,
    /// How pairs become clusters.
    pub cluster_mode: ClusterMode,
    /// Which member represents a cluster.
    pub representative: RepresentativeRule,
    /// Stop at the first bad record.
    pub strict: bool,
    /// Bytes of shingle sets kept in memory before spilling to disk.
    pub memory_budget: u64,
    /// Where spill and spool files go (the system's temporary directory by default).
    pub temp_dir: Option<PathBuf>,
    /// Copy standard input to a temporary file so that the outcome's sources can be read
    /// again (`dedup` needs this).
    pub replayable_stdin: bool,
    /// Keep every candidate pair's scores in [`Outcome::scores`], those below the
    /// threshold too: what [`crate::eval::sweep`] sweeps. Off, only the verified pairs are
    /// kept, 24 bytes a candidate less.
    pub candidate_scores: bool,
    /// Find the passages each verified pair shares (see [`crate::align`]).
    pub passages: Option<PassageSettings>,
    /// Near-copy or story level.
    pub level: Level,
    /// Settings of the story level.
    pub story: StorySettings,
    /// Keep what reading made of every batch in this directory, and reuse what it holds
    /// (see [`crate::checkpoint`]).
    pub checkpoint: Option<PathBuf>,
}

/// Builds a [`Pipeline`]. Every setting has a default.
#[derive(Clone, Debug)]
pub struct PipelineBuilder {
    settings: Settings,
    explicit_lsh: Option<(Option<usize>, Option<usize>)>,
    weights: (f64, f64),
}

impl Default for PipelineBuilder {
    fn default() -> Self {
        PipelineBuilder {
            settings: Settings {
                fields: FieldNames::default(),
                format: None,
                limits: ReadLimits::default(),
                shingle: ShingleSpec::default(),
                num_perm: 128,
                seed: 42,
                threshold: 0.5,
                lsh: LshParams { bands: 0, rows: 0 },
                bucket_cap: 1000,
                cluster_mode: ClusterMode::default(),
                representative: RepresentativeRule::default(),
                strict: false,
                memory_budget: 512 << 20,
                temp_dir: None,
                replayable_stdin: false,
                candidate_scores: false,
                passages: None,
                level: Level::NearCopy,
                story: StorySettings::default(),
                checkpoint: None,
            },
            explicit_lsh: None,
            weights: (index::DEFAULT_FP_WEIGHT, index::DEFAULT_FN_WEIGHT),
        }
    }
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty => $($field:ident).+) => {
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Self {
            self.settings.$($field).+ = value;
            self
        }
    };
}

impl PipelineBuilder {
    /// A builder with default settings.
    pub fn new() -> Self {
        Self::default()
    }

    setter!(/// Field names of JSON Lines records.
        fields: FieldNames => fields);
    setter!(/// Force one input format for every input.
        format: Option<InputFormat> => format);
    setter!(/// Longest record accepted, in bytes.
        max_record_bytes: u64 => limits.max_record_bytes);
    setter!(/// Shingle kind and size.
        shingle: ShingleSpec => shingle);
    setter!(/// Signature slots.
        num_perm: usize => num_perm);
    setter!(/// Seed of the sketch's hash functions.
        seed: u64 => seed);
    setter!(/// Exact Jaccard threshold.
        threshold: f64 => threshold);
    setter!(/// Largest LSH bucket expanded into all its pairs.
        bucket_cap: usize => bucket_cap);
    setter!(/// How pairs become clusters.
        cluster_mode: ClusterMode => cluster_mode);
    setter!(/// Which member represents a cluster.
        representative: RepresentativeRule => representative);
    setter!(/// Stop at the first bad record.
        strict: bool => strict);
    setter!(/// Bytes of shingle sets kept in memory before spilling to disk.
        memory_budget: u64 => memory_budget);
    setter!(/// Directory for spill and spool files.
        temp_dir: Option<PathBuf> => temp_dir);
    setter!(/// Keep a copy of standard input so that the sources can be read twice.
        replayable_stdin: bool => replayable_stdin);
    setter!(/// Keep every candidate's scores, not only the verified pairs' (for evaluation).
        candidate_scores: bool => candidate_scores);
    setter!(/// Find the passages each verified pair shares (`None`: do not).
        passages: Option<PassageSettings> => passages);
    setter!(/// Near-copy or story level.
        level: Level => level);
    setter!(/// Settings of the story level.
        story: StorySettings => story);
    setter!(/// Keep the fingerprints of every batch read in this directory and reuse those
        /// it holds, so that a killed run resumes (`None`: do not).
        checkpoint: Option<PathBuf> => checkpoint);

    /// Sets bands and/or rows explicitly; a missing one is derived from `num_perm`.
    pub fn lsh(mut self, bands: Option<usize>, rows: Option<usize>) -> Self {
        self.explicit_lsh = (bands.is_some() || rows.is_some()).then_some((bands, rows));
        self
    }

    /// Weights of the false-positive and false-negative masses when (bands, rows) are
    /// derived from the threshold.
    pub fn lsh_weights(mut self, false_positive: f64, false_negative: f64) -> Self {
        self.weights = (false_positive, false_negative);
        self
    }

    /// Checks the settings and freezes them.
    pub fn build(self) -> Result<Pipeline> {
        let mut s = self.settings;
        if !(s.threshold > 0.0 && s.threshold <= 1.0) {
            return Err(Error::config(format!(
                "threshold must be in (0, 1], got {}",
                s.threshold
            )));
        }
        if !(1..=crate::sketch::MAX_NUM_PERM).contains(&s.num_perm) {
            return Err(Error::config(format!(
                "num-perm must be from 1 to {}, got {}",
                crate::sketch::MAX_NUM_PERM,
                s.num_perm
            )));
        }
        if s.fields.id == s.fields.text {
            return Err(Error::config("the id field and the text field must differ"));
        }
        // Checked now: a run only finds out when it first spills, maybe an hour in.
        if let Some(dir) = &s.temp_dir {
            if !dir.is_dir() {
                return Err(Error::config(format!(
                    "the temporary directory {} does not exist or is not a directory",
                    dir.display()
                )));
            }
        }
        if s.limits.max_record_bytes == 0
            || s.limits.max_record_bytes > crate::text::MAX_TEXT_BYTES as u64
        {
            return Err(Error::config(format!(
                "max-record-bytes must be from 1 to {}",
                crate::text::MAX_TEXT_BYTES
            )));
        }
        let (w_fp, w_fn) = self.weights;
        if !(w_fp >= 0.0 && w_fn >= 0.0 && w_fp + w_fn > 0.0) {
            return Err(Error::config(
                "LSH weights must be non-negative and not both zero",
            ));
        }
        s.lsh = match self.explicit_lsh {
            None => index::optimal_params(s.threshold, s.num_perm, w_fp, w_fn),
            Some((bands, rows)) => {
                // One given alone is checked alone: the other, derived from it, would be
                // 0 and named as if given.
                for (name, given) in [("bands", bands), ("rows", rows)] {
                    if let Some(n) = given.filter(|&n| n == 0 || n > s.num_perm) {
                        return Err(Error::config(format!(
                            "{name} ({n}) must be at least 1 and at most num-perm ({})",
                            s.num_perm
                        )));
                    }
                }
                let (bands, rows) = match (bands, rows) {
                    (Some(b), Some(r)) => (b, r),
                    (Some(b), None) => (b, s.num_perm / b.max(1)),
                    (None, Some(r)) => (s.num_perm / r.max(1), r),
                    (None, None) => unreachable!("explicit_lsh holds at least one"),
                };
                if bands == 0 || rows == 0 || bands * rows > s.num_perm {
                    return Err(Error::config(format!(
                        "bands ({bands}) × rows ({rows}) must be at least 1 and at most num-perm ({})",
                        s.num_perm
                    )));
                }
                LshParams { bands, rows }
            }
        };
        if s.bucket_cap < 2 {
            return Err(Error::config("bucket-cap must be at least 2"));
        }
        if s.level == Level::Story {
            if !matches!(s.shingle, ShingleSpec::Words(_)) {
                return Err(Error::config(
                    "the story level measures shared text with word shingles (--shingle words:N)",
                ));
            }
            s.story.check()?;
        }
        if let Some(p) = &s.passages {
            p.check()?;
            if s.level == Level::Story {
                return Err(Error::config(
                    "passages are found at the near-copy level (not with --level story)",
                ));
            }
        }
        Ok(Pipeline { settings: s })
    }
}

/// A configured pipeline.
#[derive(Clone, Debug)]
pub struct Pipeline {
    settings: Settings,
}

/// Counts and timings of a run.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Inputs read (files, standard input).
    pub sources: u64,
    /// Files of input directories left out, not being named as inputs.
    pub skipped_files: input::SkippedFiles,
    /// Records read, good or bad.
    pub records: u64,
    /// Documents analysed.
    pub documents: u64,
    /// Bytes of text analysed.
    pub text_bytes: u64,
    /// Bad records and inputs, by [`ProblemKind::label`].
    pub problems: BTreeMap<&'static str, u64>,
    /// Records whose date field could not be parsed (they count as undated).
    pub unparsed_dates: u64,
    /// The first unparsed date, as an example for the user.
    pub unparsed_date_example: Option<String>,
    /// Distinct candidate pairs from LSH.
    pub candidate_pairs: u64,
    /// Pairs at or above the threshold.
    pub verified_pairs: u64,
    /// Clusters of two or more documents.
    pub clusters: u64,
    /// Documents in those clusters.
    pub clustered_documents: u64,
    /// Shingle-set bytes kept in memory / spilled to disk.
    pub set_bytes: (u64, u64),
    /// Story-feature bytes (with their weights) kept in memory / spilled to disk (story
    /// level only).
    pub story_bytes: (u64, u64),
    /// Passages found in verified pairs (story and boilerplate).
    pub passages: u64,
    /// Of those, boilerplate.
    pub boilerplate_passages: u64,
    /// Records whose fingerprints came from the checkpoint (with `--checkpoint`).
    pub checkpoint_records: u64,
    /// Wall time per stage.
    pub timings: Vec<(Stage, Duration)>,
}

impl Stats {
    /// Number of bad records and inputs.
    pub fn bad(&self) -> u64 {
        self.problems.values().sum()
    }

    /// Total wall time of the stages.
    pub fn elapsed(&self) -> Duration {
        self.timings.iter().map(|(_, d)| *d).sum()
    }
}

/// Everything a run found.
#[derive(Debug)]
pub struct Outcome {
    /// The inputs, in reading order (record locations index into this).
    pub sources: Vec<Source>,
    /// The documents.
    pub corpus: Corpus,
    /// `rank[doc]`: position of the document in id order.
    pub rank: Vec<u32>,
    /// Every candidate pair with its scores, ordered by (id a, id b), id a < id b; empty
    /// unless [`Settings::candidate_scores`] is set, and always at the story level.
    pub scores: Vec<PairScore>,
    /// The candidates at or above the threshold, in the same order.
    pub pairs: Vec<PairScore>,
    /// Clusters, largest first.
    pub clusters: Vec<Cluster>,
    /// LSH buckets that exceeded the cap.
    pub oversized: Vec<OversizedBucket>,
    /// Groups of exact copies over the cap, paired as stars (largest first).
    pub copies: Vec<CopyGroup>,
    /// Records that are not valid JSON objects (or not UTF-8, or too large).
    pub malformed: Vec<RecordLocation>,
    /// Records whose id an earlier record already has (not compared; reported).
    pub repeated_ids: Vec<RepeatedId>,
    /// The settings used.
    pub settings: Settings,
    /// Counts and timings.
    pub stats: Stats,
    /// The copy of standard input, deleted when the outcome is dropped.
    pub stdin_copy: Option<tempfile::TempPath>,
    /// The passages of every verified pair (index-aligned with `pairs`), when
    /// [`Settings::passages`] is set.
    pub passages: Option<Vec<PairPassages>>,
    /// What the story level found (`None` at the near-copy level). `clusters` then holds
    /// the story clusters too (without pair indices), so that `dedup` works unchanged.
    pub story: Option<StoryOutcome>,
}

/// A record whose id an earlier record of the run already has. It is not a document of
/// the run; `dedup` drops it as a copy when its shingles are the first's, and rejects it
/// otherwise (it could not be compared, and writing it would repeat the id). A record
/// without a usable text still owns its id: a later record with it is a repeat, and so
/// is such a record itself when an earlier one has its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RepeatedId {
    /// Where the repeat was read.
    pub location: RecordLocation,
    /// The document of the first record with this id; `None` when that record has no
    /// usable text (it is no document, but `dedup` writes it unchanged).
    pub first: Option<u32>,
    /// Whether both have a shingle set and the repeat's equals the first's (Jaccard 1:
    /// the same text, up to what the tokenizer ignores).
    pub same_shingles: bool,
}

/// A document's fingerprint: what the pipeline keeps to compare it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    /// Sorted, deduplicated shingle hashes.
    pub set: Vec<u64>,
    /// MinHash signature (empty at the batch story level, which sketches words instead).
    pub signature: Vec<u32>,
    /// Number of tokens in the text.
    pub tokens: usize,
}

/// Turns texts into fingerprints with a pipeline's settings; one per thread (it reuses
/// buffers). The batch pipeline and the feed index both use it, so they agree exactly.
#[derive(Debug)]
pub struct Fingerprinter {
    sketcher: Sketcher,
    shingler: Shingler,
    shingles: Vec<u64>,
    scratch: Vec<u64>,
    /// Whether the near-copy signature is computed: the batch story level only needs
    /// the shingle set (its own sketch weighs words instead).
    signatures: bool,
    /// Story features too (the feed index at the story level): the extractor and the
    /// record field holding a headline.
    story: Option<(story::Extractor, Option<String>)>,
}

/// Slots of the near-copy signature a batch run computes and keeps per document: none at
/// the story level, which sketches weighted words instead (a million documents' worth of
/// empty slots would be 512 MB).
fn batch_signature_slots(settings: &Settings) -> usize {
    if settings.level == Level::Story {
        0
    } else {
        settings.num_perm
    }
}

impl Fingerprinter {
    /// A fingerprinter for these settings.
    pub fn new(settings: &Settings) -> Self {
        Fingerprinter {
            sketcher: Sketcher::new(settings.num_perm, settings.seed),
            shingler: Shingler::new(settings.shingle),
            shingles: Vec::new(),
            scratch: Vec::new(),
            signatures: batch_signature_slots(settings) > 0,
            story: None,
        }
    }

    /// Also extracts story features ([`Fingerprinter::story_features`]), with the
    /// headline in `title_field`, as the batch story level does.
    pub fn with_story(mut self, title_field: Option<String>) -> Self {
        self.story = Some((story::Extractor::new(), title_field));
        // The feed's story level still answers near-copies first, from signatures.
        self.signatures = true;
        self
    }

    /// The record field holding a headline, when story features are extracted.
    pub fn story_title_field(&self) -> Option<&str> {
        self.story.as_ref().and_then(|(_, f)| f.as_deref())
    }

    /// The story features of the text fingerprinted last (`text`, with its headline), as
    /// the batch story level extracts them; `None` unless made [`Fingerprinter::with_story`].
    pub fn story_features(&mut self, title: Option<&str>, text: &str) -> Option<StoryDoc> {
        let (extractor, _) = self.story.as_mut()?;
        Some(extractor.extract_document(title, text, Some(self.shingler.tokens())))
    }

    /// The tokens of the last text fingerprinted with word shingles.
    pub fn tokens(&self) -> &[crate::text::Token] {
        self.shingler.tokens()
    }

    /// The fingerprint of `text`, or `None` if it has no tokens.
    pub fn fingerprint(&mut self, text: &str) -> Option<Fingerprint> {
        // Shingles go to a reused buffer; the set is then allocated once, at its size.
        let shingles = &mut self.shingles;
        let tokens = self.shingler.shingle(text, shingles);
        if shingles.is_empty() {
            return None;
        }
        // Without signatures the signature is empty (see `batch_signature_slots`).
        let mut signature = Vec::new();
        if self.signatures {
            signature.resize(self.sketcher.num_perm(), u32::MAX);
            self.sketcher
                .sketch(shingles, &mut self.scratch, &mut signature);
        }
        into_set(shingles);
        Some(Fingerprint {
            set: shingles.clone(),
            signature,
            tokens,
        })
    }
}

/// A record the workers could not make a document of: what is wrong, and its id when it
/// has a usable one (it owns that id all the same, see [`RepeatedId`]).
struct Unusable {
    kind: ProblemKind,
    id: Option<Box<str>>,
}

struct Processed {
    entry: DocEntry,
    fingerprint: Fingerprint,
    unparsed_date: Option<String>,
    /// Story features, encoded ([`story::StoryView::encode_into`]).
    story: Option<Vec<u64>>,
    /// Where a checkpoint holds the set and the story features, if it does.
    kept: Option<Kept>,
}

/// Bytes of a checkpoint file at which a record's lists are kept.
#[derive(Clone, Copy, Debug)]
struct Kept {
    set: u64,
    story: Option<u64>,
}

impl Processed {
    /// What a checkpoint keeps of a record: its results, or only that it failed (the
    /// failure is found again on replay, so that its problem is reported as first).
    fn encode(result: &Result<Processed, Unusable>) -> Vec<u8> {
        let Ok(p) = result else {
            return vec![0];
        };
        let mut out = Vec::with_capacity(
            64 + p.entry.id.len()
                + p.entry.metadata.as_ref().map_or(0, |m| m.len())
                + 4 * p.fingerprint.signature.len()
                + 8 * (p.fingerprint.set.len() + p.story.as_ref().map_or(0, Vec::len)),
        );
        out.push(1);
        let mut bytes = |b: Option<&[u8]>| {
            let len = b.map_or(0, |b| b.len() as u32 + 1);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(b.unwrap_or_default());
        };
        bytes(Some(p.entry.id.as_bytes()));
        bytes(p.entry.metadata.as_deref().map(str::as_bytes));
        bytes(p.unparsed_date.as_deref().map(str::as_bytes));
        bytes(Some(bytemuck::cast_slice(&p.fingerprint.signature)));
        bytes(Some(bytemuck::cast_slice(&p.fingerprint.set)));
        bytes(p.story.as_deref().map(bytemuck::cast_slice));
        out.push(u8::from(p.entry.date.is_some()));
        out.extend_from_slice(&p.entry.date.unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&p.entry.text_bytes.to_le_bytes());
        out.extend_from_slice(&p.entry.tokens.to_le_bytes());
        out.extend_from_slice(&(p.fingerprint.tokens as u64).to_le_bytes());
        out
    }

    /// Where the lists of this record's entry are, for an entry that starts at byte `at`
    /// of a checkpoint (the layout [`Processed::encode`] writes).
    fn kept_at(&self, at: u64) -> Kept {
        let field = |len: Option<usize>| 4 + len.unwrap_or(0) as u64;
        let set = at
            + 1
            + field(Some(self.entry.id.len()))
            + field(self.entry.metadata.as_ref().map(|m| m.len()))
            + field(self.unparsed_date.as_ref().map(String::len))
            + field(Some(4 * self.fingerprint.signature.len()))
            + 4;
        let story = self
            .story
            .as_ref()
            .map(|_| set + 8 * self.fingerprint.set.len() as u64 + 4);
        Kept { set, story }
    }

    /// The results [`Processed::encode`] kept for the record at `location`, with
    /// signatures of `slots` slots; `None` when it failed.
    fn decode(
        entry: &[u8],
        location: RecordLocation,
        slots: usize,
    ) -> Result<Option<Processed>, String> {
        let mut r = crate::frame::Reader::new(entry);
        if r.u8()? == 0 {
            return Ok(None);
        }
        let mut bytes = || -> Result<Option<&[u8]>, String> {
            match r.u32()? {
                0 => Ok(None),
                n => r.take(n as usize - 1).map(Some),
            }
        };
        fn text(b: &[u8]) -> Result<&str, String> {
            std::str::from_utf8(b).map_err(|_| "text is not UTF-8".to_string())
        }
        let words = |b: &[u8], width: usize| -> Result<(), String> {
            if b.len() % width == 0 {
                Ok(())
            } else {
                Err("a list is cut short".into())
            }
        };
        let id = text(bytes()?.ok_or("no id")?)?.into();
        let metadata = bytes()?.map(text).transpose()?.map(Into::into);
        let unparsed_date = bytes()?.map(text).transpose()?.map(String::from);
        let signature = bytes()?.unwrap_or_default();
        let set = bytes()?.unwrap_or_default();
        let story = bytes()?;
        if signature.len() != 4 * slots {
            return Err(format!(
                "a signature of {} slots, not {slots}",
                signature.len() / 4
            ));
        }
        words(set, 8)?;
        story.map_or(Ok(()), |s| words(s, 8))?;
        let dated = r.u8()? == 1;
        let date = r.i64()?;
        let text_bytes = r.u64()?;
        let tokens = r.u32()?;
        let fingerprint_tokens = r.u64()?;
        if r.at != entry.len() {
            return Err("a record's results run on past their end".into());
        }
        let from_le = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
        Ok(Some(Processed {
            entry: DocEntry {
                id,
                metadata,
                date: dated.then_some(date),
                text_bytes,
                tokens,
                location,
            },
            fingerprint: Fingerprint {
                set: set.chunks_exact(8).map(from_le).collect(),
                signature: signature
                    .chunks_exact(4)
                    .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
                    .collect(),
                tokens: fingerprint_tokens as usize,
            },
            unparsed_date,
            kept: None,
            story: story
                .map(|s| {
                    let words: Vec<u64> = s.chunks_exact(8).map(from_le).collect();
                    match story::StoryView::decode(&words) {
                        Some(_) => Ok(words),
                        None => Err("story features that do not decode".to_string()),
                    }
                })
                .transpose()?,
        }))
    }
}

/// Per-thread document processing: parse, then fingerprint.
struct Worker<'p> {
    settings: &'p Settings,
    fingerprinter: Fingerprinter,
    /// The story features' extractor, at the story level.
    story: Option<story::Extractor>,
}

impl Worker<'_> {
    fn process(
        &mut self,
        source: &Source,
        batch: &Batch,
        record: &RawRecord,
    ) -> Result<Processed, Unusable> {
        self.document(source, batch, record).map_err(|kind| {
            let bytes = batch.bytes(record);
            let id = match source.format {
                _ if kind.is_malformed_record() => None,
                InputFormat::Text => Some(text_id(source)),
                // Read again only for a bad record: the parse stopped at its text.
                InputFormat::JsonLines => std::str::from_utf8(bytes)
                    .ok()
                    .and_then(|line| input::usable_id(line, &self.settings.fields)),
            };
            Unusable {
                kind,
                id: id.map(String::into_boxed_str),
            }
        })
    }

    fn document(
        &mut self,
        source: &Source,
        batch: &Batch,
        record: &RawRecord,
    ) -> Result<Processed, ProblemKind> {
        let bytes = batch.bytes(record);
        let text = std::str::from_utf8(bytes).map_err(|e| ProblemKind::InvalidUtf8 {
            byte: e.valid_up_to(),
        })?;
        let (id, body, metadata, date) = match source.format {
            InputFormat::JsonLines => {
                let r = input::parse_json_record(text, &self.settings.fields)?;
                (r.id, r.text, r.metadata, r.date)
            }
            InputFormat::Text => (
                text_id(source),
                std::borrow::Cow::Borrowed(input::document_text(text)),
                None,
                None,
            ),
        };
        let fingerprint = self
            .fingerprinter
            .fingerprint(&body)
            .ok_or_else(|| ProblemKind::wordless(&body))?;
        let (date, unparsed_date) = match date {
            None => (None, None),
            Some(value) => match value.seconds() {
                Ok(d) => (Some(d), None),
                Err(t) => (None, Some(t)),
            },
        };
        // Word shingles (checked by the builder) leave their tokens for the story features.
        let story = self.story.as_mut().map(|extractor| {
            let title = self
                .settings
                .story
                .title_field
                .as_deref()
                .zip(metadata.as_deref())
                .and_then(|(field, m)| story::string_field(m, field));
            let doc = extractor.extract_document(
                title.as_deref(),
                &body,
                Some(self.fingerprinter.tokens()),
            );
            let mut words = Vec::new();
            doc.view().encode_into(&mut words);
            words
        });
        let entry = DocEntry {
            id: id.into_boxed_str(),
            metadata,
            date,
            text_bytes: body.len() as u64,
            tokens: fingerprint.tokens.min(u32::MAX as usize) as u32,
            location: record.location,
        };
        Ok(Processed {
            entry,
            fingerprint,
            unparsed_date,
            story,
            kept: None,
        })
    }
}

/// The id of a text document: its path in the directory given, or its name.
fn text_id(source: &Source) -> String {
    source
        .text_id
        .clone()
        .unwrap_or_else(|| source.name.to_string())
}

/// The first record with an id.
#[derive(Clone, Copy, Debug)]
enum Owner {
    /// A document of the run.
    Document(u32),
    /// A record without a usable text, read there.
    Uncompared(RecordLocation),
}

/// Detects duplicate ids without keeping a second copy of every document's id.
#[derive(Default)]
struct IdIndex {
    first: HashMap<u64, u32>,
    collided: HashMap<Box<str>, u32>,
    /// Ids of records without a usable text (few: each is a bad record), kept whole.
    uncompared: HashMap<Box<str>, RecordLocation>,
}

impl IdIndex {
    /// Returns the earlier owner of this id, or records `owner` as its first.
    fn claim(&mut self, corpus: &Corpus, id: &str, owner: Owner) -> Option<Owner> {
        if !self.uncompared.is_empty() {
            if let Some(&at) = self.uncompared.get(id) {
                return Some(Owner::Uncompared(at));
            }
        }
        let key = xxhash_rust::xxh3::xxh3_64(id.as_bytes());
        let earlier = match self.first.get(&key) {
            None => None,
            Some(&earlier) if corpus.id(earlier) == id => Some(earlier),
            Some(_) => self.collided.get(id).copied(),
        };
        if let Some(earlier) = earlier {
            return Some(Owner::Document(earlier));
        }
        match owner {
            Owner::Document(doc) if self.first.contains_key(&key) => {
                self.collided.insert(id.into(), doc);
            }
            Owner::Document(doc) => {
                self.first.insert(key, doc);
            }
            Owner::Uncompared(at) => {
                self.uncompared.insert(id.into(), at);
            }
        }
        None
    }
}

impl Pipeline {
    /// The frozen settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Plans the inputs and runs every stage.
    pub fn run(&self, inputs: &[InputSpec], observer: &dyn Observer) -> Result<Outcome> {
        let s = &self.settings;
        let (mut sources, stats) = self.plan(inputs, observer)?;
        let mut stdin_copy = None;
        if s.replayable_stdin {
            if let Some(src) = sources
                .iter_mut()
                .find(|src| src.location == Location::Stdin)
            {
                let path = input::spool_stdin(s.temp_dir.as_deref())
                    .map_err(|e| Error::io("copying standard input to a temporary file", e))?;
                src.location = Location::File(path.to_path_buf());
                stdin_copy = Some(path);
            }
        }
        let mut outcome = self.run_sources(sources, stats, observer)?;
        outcome.stdin_copy = stdin_copy;
        Ok(outcome)
    }

    /// Plans the inputs and fingerprints every document, comparing nothing: the map step
    /// of a distributed run (`neardup sketch`). Bad records are reported and counted as
    /// by [`Pipeline::run`].
    pub fn fingerprint_inputs(
        &self,
        inputs: &[InputSpec],
        observer: &dyn Observer,
    ) -> Result<(Corpus, Stats)> {
        if self.settings.level == Level::Story {
            return Err(Error::config(
                "story fingerprints come from fingerprint_stories, which also counts the statistics",
            ));
        }
        let (ingested, stats) = self.read_inputs(inputs, observer)?;
        Ok((ingested.corpus, stats))
    }

    /// Plans the inputs and reads every document at the story level, comparing nothing:
    /// the count and sketch steps of a distributed story run (see
    /// [`crate::story::distributed`]). The statistics are those loaded from the story
    /// settings' `stats_in` when set, else those of the documents read.
    pub fn fingerprint_stories(
        &self,
        inputs: &[InputSpec],
        observer: &dyn Observer,
    ) -> Result<(Corpus, StoryDocs, StoryStats, Stats)> {
        if self.settings.level != Level::Story {
            return Err(Error::config("story fingerprints need the story level"));
        }
        let (ingested, stats) = self.read_inputs(inputs, observer)?;
        let story_stats = self.story_statistics(ingested.story_stats)?;
        Ok((ingested.corpus, ingested.story_docs, story_stats, stats))
    }

    /// Plans and reads the inputs, comparing nothing (the read stage of a run).
    fn read_inputs(
        &self,
        inputs: &[InputSpec],
        observer: &dyn Observer,
    ) -> Result<(Ingested, Stats)> {
        let (sources, mut stats) = self.plan(inputs, observer)?;
        stats.sources = sources.len() as u64;
        let started = Instant::now();
        let ingested = self.ingest(&sources, &mut stats, observer)?;
        stats.timings.push((Stage::Read, started.elapsed()));
        Ok((ingested, stats))
    }

    /// The statistics the story level weighs by: those loaded from the story settings'
    /// `stats_in` when set, else `counted` (the documents read).
    fn story_statistics(&self, counted: StoryStats) -> Result<StoryStats> {
        match &self.settings.story.stats_in {
            None => Ok(counted),
            Some(path) => StoryStats::load(path),
        }
    }

    /// Plans the inputs into sources; inputs that cannot be read are reported and counted
    /// in the returned stats.
    fn plan(&self, inputs: &[InputSpec], observer: &dyn Observer) -> Result<(Vec<Source>, Stats)> {
        if inputs.iter().filter(|i| **i == InputSpec::Stdin).count() > 1 {
            return Err(Error::config("standard input ('-') can be given only once"));
        }
        let plan = input::plan_sources(inputs, self.settings.format)?;
        let mut stats = Stats {
            skipped_files: plan.skipped,
            ..Stats::default()
        };
        let sources = plan.sources;
        for p in &plan.problems {
            self.on_problem(p, observer, &mut stats)?;
        }
        Ok((sources, stats))
    }

    /// Runs every stage on already planned sources; `stats` may hold earlier counts.
    pub fn run_sources(
        &self,
        sources: Vec<Source>,
        mut stats: Stats,
        observer: &dyn Observer,
    ) -> Result<Outcome> {
        let s = &self.settings;
        stats.sources = sources.len() as u64;

        let started = Instant::now();
        let ingested = self.ingest(&sources, &mut stats, observer)?;
        stats.timings.push((Stage::Read, started.elapsed()));
        if s.level == Level::Story {
            return self.run_story(sources, ingested, stats, observer);
        }
        let Ingested {
            corpus,
            malformed,
            repeated_ids,
            ..
        } = ingested;

        let started = Instant::now();
        let rank = corpus.id_ranks();
        let docs: Vec<u32> = (0..corpus.len() as u32).collect();
        observer.stage_started(Stage::Candidates, Some(s.lsh.bands as u64));
        let ticker = Ticker::new(observer, Stage::Candidates);
        let candidates = index::candidate_pairs(&corpus, &docs, s.lsh, s.bucket_cap, &rank, ticker);
        observer.stage_finished(Stage::Candidates);
        let candidates = candidates.map_err(|e| Error::io("reading spilled shingle sets", e))?;
        go_on(observer)?;
        stats.candidate_pairs = candidates.pairs.len() as u64;
        stats.timings.push((Stage::Candidates, started.elapsed()));

        let started = Instant::now();
        observer.stage_started(Stage::Verify, Some(candidates.pairs.len() as u64));
        let ticker = Ticker::new(observer, Stage::Verify);
        let threshold = s.threshold as f32;
        let keep_all = s.candidate_scores;
        let mut scores = verify::score_pairs_where(
            &corpus,
            &candidates.pairs,
            |p| keep_all || p.jaccard >= threshold,
            ticker,
        )
        .map_err(|e| Error::io("reading spilled shingle sets", e))?;
        go_on(observer)?;
        drop(candidates.pairs);
        for p in &mut scores {
            if rank[p.a as usize] > rank[p.b as usize] {
                std::mem::swap(&mut p.a, &mut p.b);
                std::mem::swap(&mut p.a_in_b, &mut p.b_in_a);
            }
        }
        scores.par_sort_unstable_by_key(|p| (rank[p.a as usize], rank[p.b as usize]));
        let pairs: Vec<PairScore> = if keep_all {
            scores
                .iter()
                .filter(|p| p.jaccard >= threshold)
                .copied()
                .collect()
        } else {
            std::mem::take(&mut scores)
        };
        observer.stage_finished(Stage::Verify);
        stats.verified_pairs = pairs.len() as u64;
        stats.timings.push((Stage::Verify, started.elapsed()));

        let started = Instant::now();
        observer.stage_started(Stage::Cluster, None);
        let clusters = cluster::cluster(
            &corpus,
            &pairs,
            &candidates.copies,
            s.cluster_mode,
            s.representative,
            &rank,
        );
        observer.stage_finished(Stage::Cluster);
        go_on(observer)?;
        stats.clusters = clusters.len() as u64;
        stats.clustered_documents = clusters.iter().map(|c| c.members.len() as u64).sum();
        stats.set_bytes = corpus.set_bytes();
        stats.timings.push((Stage::Cluster, started.elapsed()));

        let passages = match &s.passages {
            None => None,
            Some(settings) => {
                let started = Instant::now();
                observer.stage_started(Stage::Align, Some(pairs.len() as u64));
                let found = crate::align::find_passages(&corpus, &pairs, s, settings, observer);
                observer.stage_finished(Stage::Align);
                let found = found?;
                let all = found.iter().flat_map(|p| &p.passages);
                stats.passages = all.clone().count() as u64;
                stats.boilerplate_passages = all.filter(|p| p.boilerplate.is_some()).count() as u64;
                stats.timings.push((Stage::Align, started.elapsed()));
                Some(found)
            }
        };

        Ok(Outcome {
            sources,
            corpus,
            rank,
            scores,
            pairs,
            clusters,
            oversized: candidates.oversized,
            copies: candidates.copies,
            malformed,
            repeated_ids,
            settings: s.clone(),
            stats,
            stdin_copy: None,
            passages,
            story: None,
        })
    }

    /// The story level, after reading (see [`crate::story`]).
    fn run_story(
        &self,
        sources: Vec<Source>,
        ingested: Ingested,
        mut stats: Stats,
        observer: &dyn Observer,
    ) -> Result<Outcome> {
        let s = &self.settings;
        let Ingested {
            corpus,
            malformed,
            repeated_ids,
            story_docs,
            story_stats,
        } = ingested;
        let story_stats = self.story_statistics(story_stats)?;
        let rank = corpus.id_ranks();
        let found = story::run(
            &corpus,
            story_docs,
            story_stats,
            &s.story,
            s.seed,
            s.representative,
            &rank,
            observer,
        )?;
        stats.candidate_pairs = found.scored.len() as u64 + found.outside_window;
        stats.verified_pairs = found.pairs.len() as u64;
        stats.clusters = found.clusters.len() as u64;
        stats.clustered_documents = found.clusters.iter().map(|c| c.members.len() as u64).sum();
        stats.set_bytes = corpus.set_bytes();
        stats.story_bytes = found.docs.bytes();
        stats.timings.extend(found.timings.iter().copied());
        let clusters = found
            .clusters
            .iter()
            .map(|c| Cluster {
                members: c.members.clone(),
                representative: c.representative,
                pairs: Vec::new(),
                min_jaccard: c.min_probability,
                mean_jaccard: c.mean_probability,
            })
            .collect();
        Ok(Outcome {
            sources,
            corpus,
            rank,
            scores: Vec::new(),
            pairs: Vec::new(),
            clusters,
            oversized: Vec::new(),
            copies: Vec::new(),
            malformed,
            repeated_ids,
            settings: s.clone(),
            stats,
            stdin_copy: None,
            story: Some(found),
            passages: None,
        })
    }

    fn on_problem(
        &self,
        problem: &Problem,
        observer: &dyn Observer,
        stats: &mut Stats,
    ) -> Result<()> {
        observer.problem(problem);
        *stats.problems.entry(problem.kind.label()).or_default() += 1;
        if self.settings.strict {
            return Err(ErrorKind::Strict(problem.clone()).into());
        }
        Ok(())
    }

    /// Reads every source into a corpus, without comparing anything (`neardup compare`
    /// looks documents up in it). Bad records are reported to `observer` and counted in
    /// `stats`.
    pub fn read_corpus(
        &self,
        sources: &[Source],
        stats: &mut Stats,
        observer: &dyn Observer,
    ) -> Result<Corpus> {
        Ok(self.ingest(sources, stats, observer)?.corpus)
    }

    /// Reads every source into a corpus, in parallel, keeping input order.
    fn ingest(
        &self,
        sources: &[Source],
        stats: &mut Stats,
        observer: &dyn Observer,
    ) -> Result<Ingested> {
        let s = &self.settings;
        let checkpoint = match &s.checkpoint {
            None => None,
            Some(dir) => Some(Checkpoint::open(
                dir,
                &self.checkpoint_settings(),
                &checkpoint::first_input(sources),
            )?),
        };
        let mut filer = Filer::new(self, sources, observer);
        if let Some(checkpoint) = &checkpoint {
            // Sets and features the checkpoint holds are read back from it, not spilled.
            let kept = checkpoint.kept_lists()?;
            filer.corpus.read_kept_sets_from(kept.clone());
            filer.story_docs.read_kept_from(kept);
        }
        let total: Option<u64> = sources.iter().map(|src| src.size).sum();
        observer.stage_started(Stage::Read, total);
        let (tx, rx) = sync_channel::<ReadEvent>(4);
        // The filing thread counts into `stats` until the scope ends.
        let filing_stats = &mut *stats;
        let result = std::thread::scope(|scope| -> Result<(Filer<'_>, StoryStats, u64)> {
            // Reading stopped for want of resources (no input's fault): the run fails.
            let mut failed = None;
            scope.spawn(move || {
                let mut on_read = |n| observer.advanced(Stage::Read, n);
                input::read_sources(sources, s.limits, &mut on_read, &mut |event| {
                    tx.send(event).is_ok()
                });
            });
            // Document frequencies are counted on a thread of their own, off the serial
            // filing loop, from each batch's keys (counts do not depend on order).
            let (keys_tx, keys_rx) = sync_channel::<(u64, Vec<u64>)>(4);
            let counter = scope.spawn(move || StoryStats::count_from(keys_rx));
            // Filing is serial (document numbers follow input order) and runs on a thread
            // of its own, one batch behind the workers, so that neither waits for the
            // other: it takes each batch's records in input order with their results.
            let (file_tx, file_rx) = sync_channel::<Filing>(1);
            let filing = scope.spawn(move || -> Result<Filer<'_>> {
                for filing in file_rx {
                    match filing {
                        Filing::Problem(p) => self.on_problem(&p, observer, filing_stats)?,
                        Filing::Batch(batch, processed) => {
                            let keys = filer.file(batch, processed, filing_stats)?;
                            if keys.0 > 0 {
                                // The counter only stops when this sender is dropped.
                                let _ = keys_tx.send(keys);
                            }
                        }
                    }
                }
                Ok(filer)
            });
            let mut read_all = true;
            let mut keeper = checkpoint.map(|c| Keeper::new(c, scope));
            for event in rx {
                if observer.cancelled() {
                    read_all = false;
                    break;
                }
                let batch = match event {
                    ReadEvent::Problem(p) => {
                        if file_tx.send(Filing::Problem(p)).is_err() {
                            read_all = false;
                            break; // filing stopped on an error, which the join returns
                        }
                        continue;
                    }
                    ReadEvent::Batch(b) => b,
                    ReadEvent::Failed(e) => {
                        failed = Some(e);
                        read_all = false;
                        break;
                    }
                };
                let processed = match &mut keeper {
                    None => self.fingerprint_batch(sources, &batch),
                    Some(keeper) => {
                        let hash = checkpoint::batch_hash(sources, &batch);
                        match keeper.replay(hash, batch.records.len())? {
                            Some(kept) => self
                                .process(sources, &batch, Some(&kept))
                                .map_err(|reason| keeper.damaged(reason))?,
                            None => {
                                let mut processed = self.fingerprint_batch(sources, &batch);
                                let entries = processed.par_iter().map(Processed::encode).collect();
                                if let Some(places) = keeper.append(hash, entries)? {
                                    for (p, at) in processed.iter_mut().zip(places) {
                                        if let Ok(p) = p {
                                            p.kept = Some(p.kept_at(at));
                                        }
                                    }
                                }
                                processed
                            }
                        }
                    }
                };
                if file_tx.send(Filing::Batch(batch, processed)).is_err() {
                    read_all = false;
                    break;
                }
            }
            drop(file_tx);
            let filer = filing.join().expect("filing documents does not panic");
            let replayed = match keeper {
                None => 0,
                Some(keeper) => keeper.finish(read_all && filer.is_ok())?,
            };
            let filer = filer?;
            if let Some(e) = failed {
                return Err(e);
            }
            let story_stats = counter
                .join()
                .expect("counting document frequencies does not panic");
            Ok((filer, story_stats, replayed))
        });
        observer.stage_finished(Stage::Read);
        let (filer, story_stats, replayed) = result?;
        go_on(observer)?;
        stats.checkpoint_records = replayed;
        Ok(Ingested {
            corpus: filer.corpus,
            malformed: filer.malformed,
            repeated_ids: filer.repeated_ids,
            story_docs: filer.story_docs,
            story_stats,
        })
    }
}

impl Pipeline {
    /// What the workers make of each record of `batch`, in parallel.
    fn fingerprint_batch(
        &self,
        sources: &[Source],
        batch: &Batch,
    ) -> Vec<Result<Processed, Unusable>> {
        self.process(sources, batch, None)
            .expect("only kept results can fail to decode")
    }

    /// What the workers make of each record of `batch`, in parallel; with `kept`, the
    /// results a checkpoint kept for it, found again only for the records that failed.
    /// The error says what is wrong with `kept`.
    fn process(
        &self,
        sources: &[Source],
        batch: &Batch,
        kept: Option<&[checkpoint::KeptEntry<'_>]>,
    ) -> std::result::Result<Vec<Result<Processed, Unusable>>, String> {
        let s = &self.settings;
        let slots = batch_signature_slots(s);
        batch
            .records
            .par_iter()
            .enumerate()
            .map_init(
                || Worker {
                    settings: s,
                    fingerprinter: Fingerprinter::new(s),
                    story: (s.level == Level::Story).then(story::Extractor::new),
                },
                |w, (i, r)| {
                    if let Some((at, entry)) = kept.map(|k| k[i]) {
                        if let Some(mut p) = Processed::decode(entry, r.location, slots)
                            .map_err(|e| format!("record {} of a kept batch: {e}", i + 1))?
                        {
                            p.kept = Some(p.kept_at(at));
                            return Ok(Ok(p));
                        }
                    }
                    Ok(w.process(&sources[r.location.source as usize], batch, r))
                },
            )
            .collect()
    }

    /// What shapes the results a checkpoint keeps, one `name: value` per line: a
    /// checkpoint made with other values is refused (see [`crate::checkpoint`]).
    fn checkpoint_settings(&self) -> String {
        let s = &self.settings;
        let mut probe = Fingerprinter::new(s);
        let fingerprint = probe.fingerprint(crate::feed::format::PROBE_TEXT);
        let mut lines = vec![
            format!(
                "level: {}",
                match s.level {
                    Level::NearCopy => "near-copy",
                    Level::Story => "story",
                }
            ),
            format!("shingles: {}", s.shingle),
            format!("signature slots: {}", batch_signature_slots(s)),
            format!("seed: {}", s.seed),
            format!("id field: {}", s.fields.id),
            format!("text field: {}", s.fields.text),
            format!("date field: {}", s.fields.date),
            format!(
                "input format: {}",
                match s.format {
                    None => "by name",
                    Some(InputFormat::JsonLines) => "jsonl",
                    Some(InputFormat::Text) => "text",
                }
            ),
            format!("longest record: {} bytes", s.limits.max_record_bytes),
            format!(
                "batch: {} bytes or {} records",
                s.limits.batch_bytes, s.limits.batch_records
            ),
            format!(
                "probe fingerprint: {:016x}",
                crate::feed::format::fingerprint_check(fingerprint.as_ref())
            ),
            // The tokenizer's rules for other scripts and invisible characters change what
            // the first probe cannot show.
            format!(
                "probe fingerprint, other scripts: {:016x}",
                crate::feed::format::probe_check(s, SCRIPTS_PROBE_TEXT)
            ),
        ];
        if s.level == Level::Story {
            let title = s.story.title_field.as_deref().unwrap_or("");
            lines.push(format!("title field: {title}"));
            let hash = |doc: story::StoryDoc| {
                let mut words = Vec::new();
                doc.view().encode_into(&mut words);
                xxhash_rust::xxh3::xxh3_64(bytemuck::cast_slice(&words))
            };
            let mut extractor = story::Extractor::new();
            let latin = extractor.extract_document(
                Some("Probe: Fed Holds Rates"),
                crate::feed::format::PROBE_TEXT,
                Some(probe.tokens()),
            );
            lines.push(format!("probe story features: {:016x}", hash(latin)));
            let other = extractor.extract(SCRIPTS_PROBE_TEXT);
            lines.push(format!(
                "probe story features, other scripts: {:016x}",
                hash(other)
            ));
        }
        lines.join("\n")
    }
}

/// The filing thread's state: appends read documents to the corpus in input order.
struct Filer<'p> {
    pipeline: &'p Pipeline,
    sources: &'p [Source],
    observer: &'p dyn Observer,
    corpus: Corpus,
    ids: IdIndex,
    set_buf: Vec<u64>,
    malformed: Vec<RecordLocation>,
    repeated_ids: Vec<RepeatedId>,
    story_docs: StoryDocs,
}

impl<'p> Filer<'p> {
    fn new(pipeline: &'p Pipeline, sources: &'p [Source], observer: &'p dyn Observer) -> Self {
        let s = &pipeline.settings;
        let mut corpus = Corpus::new(
            batch_signature_slots(s),
            SetStore::new(s.memory_budget, s.temp_dir.clone()),
        );
        if s.passages.is_some() {
            corpus.keep_texts(TextStore::new(
                s.memory_budget,
                s.temp_dir.clone(),
                s.fields.clone(),
            ));
        }
        Filer {
            pipeline,
            sources,
            observer,
            corpus,
            ids: IdIndex::default(),
            set_buf: Vec::new(),
            malformed: Vec::new(),
            repeated_ids: Vec::new(),
            story_docs: StoryDocs::new(s.memory_budget, s.temp_dir.clone()),
        }
    }

    /// Files one batch's records with what the workers made of them, reporting their
    /// problems; returns how many documents have story features and their keys (for the
    /// document frequencies).
    fn file(
        &mut self,
        mut batch: Batch,
        processed: Vec<Result<Processed, Unusable>>,
        stats: &mut Stats,
    ) -> Result<(u64, Vec<u64>)> {
        // With passages, the raw records stay: texts are decoded again on use.
        let chunk = self
            .corpus
            .keep_records(std::mem::take(&mut batch.buf))
            .map_err(|e| Error::io("spilling texts to a temporary file", e))?;
        let (mut batch_documents, mut batch_keys) = (0u64, Vec::new());
        for (record, result) in batch.records.iter().zip(processed) {
            stats.records += 1;
            let source = &self.sources[record.location.source as usize];
            let line = (source.format == InputFormat::JsonLines).then_some(record.location.line);
            let problem = |kind| Problem {
                source: source.name.clone(),
                line,
                kind,
            };
            let doc = match result {
                Ok(doc) => doc,
                Err(Unusable { kind, id }) => {
                    if kind.is_malformed_record() {
                        self.malformed.push(record.location);
                    }
                    // Not comparable, but it owns its id. A repeat is reported as one,
                    // not for its text: that is why `dedup` rejects it.
                    let owner = Owner::Uncompared(record.location);
                    let kind = match id {
                        Some(id) => match self.ids.claim(&self.corpus, &id, owner) {
                            Some(earlier) => {
                                self.repeated_ids.push(RepeatedId {
                                    location: record.location,
                                    first: earlier.document(),
                                    same_shingles: false,
                                });
                                self.duplicate_id(&id, earlier, false)
                            }
                            None => kind,
                        },
                        None => kind,
                    };
                    self.pipeline
                        .on_problem(&problem(kind), self.observer, stats)?;
                    continue;
                }
            };
            let owner = Owner::Document(self.corpus.len() as u32);
            if let Some(earlier) = self.ids.claim(&self.corpus, &doc.entry.id, owner) {
                let same_shingles = match earlier.document() {
                    Some(first) => {
                        let first_set = self
                            .corpus
                            .set(first, &mut self.set_buf)
                            .map_err(|e| Error::io("reading a spilled shingle set", e))?;
                        first_set == &doc.fingerprint.set[..]
                    }
                    None => false,
                };
                self.repeated_ids.push(RepeatedId {
                    location: record.location,
                    first: earlier.document(),
                    same_shingles,
                });
                let kind = self.duplicate_id(&doc.entry.id, earlier, same_shingles);
                self.pipeline
                    .on_problem(&problem(kind), self.observer, stats)?;
                continue;
            }
            if let Some(date) = doc.unparsed_date {
                stats.unparsed_dates += 1;
                stats.unparsed_date_example.get_or_insert(date);
            }
            stats.documents += 1;
            stats.text_bytes += doc.entry.text_bytes;
            self.corpus
                .push_kept(
                    doc.entry,
                    &doc.fingerprint.signature,
                    &doc.fingerprint.set,
                    doc.kept.map(|k| k.set),
                )
                .map_err(|e| Error::io("spilling shingle sets to a temporary file", e))?;
            let json = source.format == InputFormat::JsonLines;
            self.corpus.push_text(chunk, record.range.clone(), json);
            if let Some(words) = doc.story {
                let features = story::StoryView::decode(&words)
                    .expect("a worker's story features decode as they were encoded");
                batch_documents += 1;
                batch_keys.extend(features.terms.iter().chain(features.names));
                self.story_docs
                    .push_encoded(&words, doc.kept.and_then(|k| k.story))
                    .map_err(|e| Error::io("spilling story features to a temporary file", e))?;
            }
        }
        Ok((batch_documents, batch_keys))
    }
}

impl Filer<'_> {
    /// The problem of a record repeating the id of `earlier` (`same_text`: with its
    /// shingles).
    fn duplicate_id(&self, id: &str, earlier: Owner, same_text: bool) -> ProblemKind {
        let at = match earlier {
            Owner::Document(d) => self.corpus.location(d),
            Owner::Uncompared(at) => at,
        };
        ProblemKind::DuplicateId {
            id: id.to_string(),
            first: FirstSeen::Record(describe_location(self.sources, at)),
            same_text,
        }
    }
}

impl Owner {
    /// The document, when the owner is one.
    fn document(self) -> Option<u32> {
        match self {
            Owner::Document(d) => Some(d),
            Owner::Uncompared(_) => None,
        }
    }
}

/// What the filing thread takes, in input order.
enum Filing {
    /// A problem of the input, reported in its place.
    Problem(Problem),
    /// A batch of records and what the workers made of each.
    Batch(Batch, Vec<Result<Processed, Unusable>>),
}

/// What reading the inputs produced.
struct Ingested {
    corpus: Corpus,
    malformed: Vec<RecordLocation>,
    repeated_ids: Vec<RepeatedId>,
    /// Story features per document (story level only).
    story_docs: StoryDocs,
    /// Document frequencies of this run's documents (story level only).
    story_stats: StoryStats,
}

/// `file:line` (or `file` for a whole document) of a record.
pub fn describe_location(sources: &[Source], location: RecordLocation) -> String {
    let source = &sources[location.source as usize];
    match source.format {
        InputFormat::JsonLines => format!("{}:{}", source.name, location.line),
        InputFormat::Text => source.name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn location() -> RecordLocation {
        RecordLocation { source: 0, line: 7 }
    }

    #[test]
    fn kept_results_come_back_as_they_were() {
        let settings = PipelineBuilder::new().build().unwrap().settings;
        let mut fingerprinter = Fingerprinter::new(&settings);
        let text = "The central bank raised its key rate by half a point on Tuesday.";
        let processed = Processed {
            entry: DocEntry {
                id: "a-1".into(),
                metadata: Some(r#"{"source":"wire"}"#.into()),
                date: Some(-86_400),
                text_bytes: text.len() as u64,
                tokens: 13,
                location: location(),
            },
            fingerprint: fingerprinter.fingerprint(text).unwrap(),
            unparsed_date: Some("yesterday".into()),
            story: Some({
                let mut words = Vec::new();
                story::Extractor::new()
                    .extract(text)
                    .view()
                    .encode_into(&mut words);
                words
            }),
            kept: None,
        };
        // Where a checkpoint holds the lists is where the encoding put them.
        let kept = processed.kept_at(1000);
        let set_bytes: Vec<u8> = bytemuck::cast_slice(&processed.fingerprint.set).to_vec();
        let story_bytes: Vec<u8> = bytemuck::cast_slice(processed.story.as_ref().unwrap()).to_vec();
        let entry = Processed::encode(&Ok(processed));
        let set_at = (kept.set - 1000) as usize;
        assert_eq!(entry[set_at..set_at + set_bytes.len()], set_bytes[..]);
        let story_at = (kept.story.unwrap() - 1000) as usize;
        assert_eq!(
            entry[story_at..story_at + story_bytes.len()],
            story_bytes[..]
        );
        let back = Processed::decode(&entry, location(), 128).unwrap().unwrap();
        let again = Processed::encode(&Ok(back));
        assert_eq!(entry, again);
        assert!(Processed::decode(&entry, location(), 64).is_err());
        // Features that do not decode are an error here, not a panic when filed.
        let mut garbled = Processed::decode(&entry, location(), 128).unwrap().unwrap();
        garbled.story = Some(vec![5]);
        let garbled = Processed::encode(&Ok(garbled));
        assert!(Processed::decode(&garbled, location(), 128).is_err());
        let failed = Processed::encode(&Err(Unusable {
            kind: ProblemKind::EmptyText,
            id: Some("a-2".into()),
        }));
        assert!(
            Processed::decode(&failed, location(), 128)
                .unwrap()
                .is_none()
        );
    }

    proptest! {
        #[test]
        fn any_entry_decodes_or_errs(mut bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Some(tag) = bytes.first_mut() {
                *tag = 1;
            }
            let _ = Processed::decode(&bytes, location(), 128);
        }
    }
}
