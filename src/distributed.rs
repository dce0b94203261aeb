//! The near-copy level split into steps that a cluster engine runs on many machines
//! (`scripts/spark/neardup_spark.py`), giving the pairs and clusters of one batch run over
//! the whole input (the story level's steps are in [`crate::story::distributed`]):
//!
//! 1. sketch: each worker writes one [`crate::report::SketchRecord`] per document: its
//!    band keys, signature and shingle set ([`crate::report::write_sketches`], `neardup
//!    sketch`);
//! 2. the engine pairs the documents that share a band key, as [`crate::index`] does
//!    (buckets over the cap paired in id-order windows);
//! 3. verify: each candidate pair of records is scored as the batch scores it and kept at
//!    or above the threshold ([`PairVerifier`], `neardup verify --level near-copy`),
//!    written as `neardup pairs` writes it;
//! 4. link: the verified pairs' connected components are clustered as the batch clusters
//!    them, with their members' records ([`PairLinker`], `neardup link --level
//!    near-copy`; both cluster modes only group along verified pairs, so components
//!    cluster apart, and the engine numbers the clusters).
//!
//! Also the pieces both levels' steps share: reading lines, base64 fields, and the
//! registry of the documents a linker needs.

use std::collections::HashMap;
use std::io::{BufRead, Write};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::cluster::{ClusterMode, RepresentativeRule};
use crate::corpus::{Corpus, DocEntry, SetStore};
use crate::report::{Format, PairRecord};
use crate::verify::PairScore;

const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Base64 of `values` as little-endian bytes (`bytes` is scratch).
pub(crate) fn encode<T: bytemuck::Pod>(bytes: &mut Vec<u8>, values: &[T]) -> String {
    bytes.clear();
    bytes.extend_from_slice(bytemuck::cast_slice(values));
    if cfg!(target_endian = "big") {
        let width = std::mem::size_of::<T>();
        bytes.chunks_mut(width).for_each(<[u8]>::reverse);
    }
    BASE64.encode(bytes)
}

/// Little-endian values of width `N` from base64; `None` when it is not such.
fn decode<const N: usize>(text: &str) -> Option<Vec<[u8; N]>> {
    let bytes = BASE64.decode(text).ok()?;
    if bytes.len() % N != 0 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(N)
            .map(|c| c.try_into().expect("N bytes"))
            .collect(),
    )
}

/// What a sketch record's `settings` field says it was made with: `level=… shingle=…
/// seed=… num_perm=… tokenizer=… bands=… rows=…` (the story level appends its own).
/// Records made otherwise have other shingles or slots, and scoring them together gives
/// wrong scores without any error; records banded otherwise never meet in a bucket, so
/// their pairs would be lost without any error: `verify` compares them.
pub fn sketch_settings(
    level: &str,
    shingle: crate::shingle::ShingleSpec,
    seed: u64,
    num_perm: usize,
    lsh: crate::index::LshParams,
) -> String {
    format!(
        "level={level} shingle={shingle} seed={seed} num_perm={num_perm} tokenizer={} \
         bands={} rows={}",
        tokenizer_check(),
        lsh.bands,
        lsh.rows
    )
}

/// A hash of the tokens of the feed index's probe texts: sketches made by a neardup that
/// reads text otherwise (another tokenizer: scripts, invisible characters, joiners) have
/// other shingles, and `verify` refuses to score them with this one's.
pub(crate) fn tokenizer_check() -> String {
    let mut tokens = Vec::new();
    for probe in [
        crate::feed::format::PROBE_TEXT,
        crate::feed::format::SCRIPTS_PROBE_TEXT,
    ] {
        crate::text::tokenize(probe, &mut tokens);
    }
    let hashes: Vec<u64> = tokens.iter().map(|t| t.hash).collect();
    format!(
        "{:016x}",
        xxhash_rust::xxh3::xxh3_64(bytemuck::cast_slice(&hashes))
    )
}

/// The setting of [`tokenizer_check`], as `verify` checks it.
pub(crate) fn tokenizer_setting() -> (&'static str, String, String) {
    (
        "tokenizer",
        tokenizer_check(),
        "this neardup's tokenizer: sketch the documents again with it".into(),
    )
}

/// Checks, record by record, that every sketch a `verify` reads was made with the
/// settings of the first one read and with those the verify's own flags give.
#[derive(Debug)]
pub(crate) struct SettingsCheck {
    /// `(setting, value, the flag giving it)` of the verify itself.
    own: Vec<(&'static str, String, String)>,
    /// The first record's settings and where it was read.
    first: Option<(String, String)>,
}

impl SettingsCheck {
    pub(crate) fn new(own: Vec<(&'static str, String, String)>) -> Self {
        SettingsCheck { own, first: None }
    }

    /// Whether the record of `id` read at `at`, sketched with `settings`, agrees.
    pub(crate) fn check(
        &mut self,
        id: &str,
        schema_version: Option<u32>,
        settings: Option<&str>,
        at: &crate::FileLocation,
    ) -> Result<(), String> {
        let ours = crate::report::SCHEMA_VERSION;
        if let Some(theirs) = schema_version.filter(|&v| v != ours) {
            return Err(format!(
                "document {id:?} was sketched with schema_version {theirs}, this neardup \
                 reads {ours}: sketch it again with this neardup"
            ));
        }
        let settings = settings.ok_or_else(|| {
            format!(
                "document {id:?} has no \"settings\" field (sketched by an older neardup): \
                 sketch it again"
            )
        })?;
        // Most records repeat the first one's, which was checked against the flags.
        if self
            .first
            .as_ref()
            .is_some_and(|(first, _)| first == settings)
        {
            return Ok(());
        }
        let theirs = parse_settings(settings);
        if setting(&theirs, "bands").is_none() {
            return Err(format!(
                "document {id:?} was sketched without its banding in \"settings\" (by an \
                 older neardup): sketch it again"
            ));
        }
        for (key, value, flag) in &self.own {
            let found = setting(&theirs, key);
            if found != Some(value.as_str()) {
                return Err(format!(
                    "document {id:?} was sketched with {key} {}, this verify has {key} \
                     {value} ({flag})",
                    found.unwrap_or("(none)")
                ));
            }
        }
        let Some((first, first_at)) = &self.first else {
            self.first = Some((settings.to_string(), at.to_string()));
            return Ok(());
        };
        let ours = parse_settings(first);
        let differing = theirs
            .iter()
            .chain(&ours)
            .map(|&(key, _)| key)
            .find(|key| setting(&theirs, key) != setting(&ours, key));
        match differing {
            Some(key) => Err(format!(
                "document {id:?} was sketched with {key} {}, the record at {first_at} with \
                 {key} {}: sketch every document with the same settings",
                setting(&theirs, key).unwrap_or("(none)"),
                setting(&ours, key).unwrap_or("(none)")
            )),
            None => Ok(()),
        }
    }
}

/// The value of `key` among `pairs`.
fn setting<'a>(pairs: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| *k == key).map(|&(_, v)| v)
}

/// The `key=value` pairs of a `settings` field.
fn parse_settings(settings: &str) -> Vec<(&str, &str)> {
    settings
        .split_ascii_whitespace()
        .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
        .collect()
}

/// Why field `field` of document `id`'s record is refused.
pub(crate) fn undecodable(id: &str, field: &str) -> String {
    format!("document {id:?}: its field {field:?} does not decode")
}

/// A record's signature field: `num_perm` little-endian u32 in base64.
pub(crate) fn decode_signature(id: &str, text: &str, num_perm: usize) -> Result<Vec<u32>, String> {
    let signature: Vec<u32> = decode::<4>(text)
        .ok_or_else(|| undecodable(id, "signature"))?
        .into_iter()
        .map(u32::from_le_bytes)
        .collect();
    if signature.len() != num_perm {
        return Err(format!(
            "document {id:?}: its signature has {} slots, this run {num_perm} (--num-perm)",
            signature.len()
        ));
    }
    Ok(signature)
}

/// A record's field of little-endian u64 words in base64.
pub(crate) fn decode_words(id: &str, field: &str, text: &str) -> Result<Vec<u64>, String> {
    Ok(decode::<8>(text)
        .ok_or_else(|| undecodable(id, field))?
        .into_iter()
        .map(u64::from_le_bytes)
        .collect())
}

/// A record's shingle set: sorted distinct u64.
pub(crate) fn decode_set(id: &str, text: &str) -> Result<Vec<u64>, String> {
    let set = decode_words(id, "set", text)?;
    if !set.windows(2).all(|w| w[0] < w[1]) {
        return Err(undecodable(id, "set"));
    }
    Ok(set)
}

/// Calls `each` with every line of `input` that is not blank, and its 1-based number.
pub(crate) fn for_each_line(
    input: &mut dyn BufRead,
    name: &str,
    mut each: impl FnMut(u64, &[u8]) -> crate::Result<()>,
) -> crate::Result<()> {
    let mut line = Vec::new();
    for number in 1.. {
        line.clear();
        // Named by line as every other fault of these inputs (QA pass 13).
        let read = input.read_until(b'\n', &mut line).map_err(|e| {
            crate::Error::sketch(
                crate::FileLocation::at(name, number),
                format!(
                    "reading stopped here: {}",
                    crate::input::describe_read_error(&e, name)
                ),
            )
        })?;
        if read == 0 {
            break;
        }
        if !line.iter().all(u8::is_ascii_whitespace) {
            each(number, &line)?;
        }
    }
    Ok(())
}

/// A document as a linker reads it: a sketch record of either level serves (its other
/// fields are not read), as does `{"id", "date", "text_bytes", "metadata"}`.
#[derive(Debug, Deserialize)]
struct MemberIn {
    id: String,
    date: Option<i64>,
    text_bytes: u64,
    #[serde(default)]
    metadata: Option<Box<RawValue>>,
    /// The shingle set of a sketch record, read only when [`Documents::keep_sets`] asks.
    #[serde(skip)]
    set: Option<Vec<u64>>,
}

/// The shingle set of a sketch record (base64; absent from plain member records).
#[derive(Debug, Deserialize)]
struct SetIn<'a> {
    #[serde(borrow, default)]
    set: Option<std::borrow::Cow<'a, str>>,
}

/// A document named by a linked pair.
#[derive(Debug)]
struct Named {
    id: Box<str>,
    /// Where a pair first named it (`file:line`).
    named_at: crate::FileLocation,
    /// In a pair that clusters, so a member of a cluster.
    clustered: bool,
    /// Its record, and where in `Documents::members_read` it was read.
    member: Option<(MemberIn, u32)>,
}

/// The documents a linker's pairs name, and the records of those that cluster.
#[derive(Debug, Default)]
pub(crate) struct Documents {
    index: HashMap<Box<str>, u32>,
    named: Vec<Named>,
    /// Keep the shingle sets of the members' sketch records (to find copy groups).
    keep_sets: bool,
    members_read: LineOrigins,
}

impl Documents {
    /// The number of document `id`, first named at `at()` (`file:line`).
    pub(crate) fn intern(&mut self, id: String, at: impl FnOnce() -> crate::FileLocation) -> u32 {
        if let Some(&doc) = self.index.get(id.as_str()) {
            return doc;
        }
        let doc = self.named.len() as u32;
        let id: Box<str> = id.into();
        self.index.insert(id.clone(), doc);
        self.named.push(Named {
            id,
            named_at: at(),
            clustered: false,
            member: None,
        });
        doc
    }

    /// Marks `doc` as a member of a cluster: its record is needed.
    pub(crate) fn cluster(&mut self, doc: u32) {
        self.named[doc as usize].clustered = true;
    }

    /// Reads document records from `input` (blank lines skipped), keeping those of the
    /// documents marked so far.
    pub(crate) fn read_members(
        &mut self,
        input: &mut dyn BufRead,
        name: &str,
    ) -> crate::Result<()> {
        for_each_line(input, name, |number, line| {
            let bad = |reason: String| {
                crate::Error::sketch(crate::FileLocation::at(name, number), reason)
            };
            let member: MemberIn = serde_json::from_slice(line).map_err(|e| {
                bad(format!(
                    "not a document record (a sketch, or id, date, text_bytes): {e}"
                ))
            })?;
            let Some(&doc) = self.index.get(member.id.as_str()) else {
                return Ok(());
            };
            let named = &mut self.named[doc as usize];
            if !named.clustered {
                return Ok(());
            }
            if let Some((_, first)) = &named.member {
                return Err(bad(format!(
                    "the document {:?} is given twice (first at {})",
                    member.id,
                    self.members_read.location(*first)
                )));
            }
            let mut member = member;
            if self.keep_sets {
                let r: SetIn = serde_json::from_slice(line)
                    .map_err(|e| bad(format!("not a document record: {e}")))?;
                if let Some(set) = r.set {
                    member.set = Some(decode_set(&member.id, &set).map_err(bad)?);
                }
            }
            named.member = Some((member, self.members_read.push(name, number)));
            Ok(())
        })
    }

    /// A corpus of the marked documents in id order (so a document's index is its rank),
    /// with their shingle sets if they were kept (none: empty), and the numbering of named
    /// documents into it. A marked document without a record is an error naming where a
    /// pair named it.
    pub(crate) fn corpus(&self) -> crate::Result<(Corpus, Numbering)> {
        let mut order: Vec<u32> = (0..self.named.len() as u32)
            .filter(|&d| self.named[d as usize].clustered)
            .collect();
        order.sort_unstable_by(|&x, &y| self.named[x as usize].id.cmp(&self.named[y as usize].id));
        let mut number = vec![u32::MAX; self.named.len()];
        // Sets are kept only to find copy groups, in memory as the records held them.
        let mut corpus = Corpus::new(0, SetStore::new(u64::MAX, None));
        for (rank, &d) in order.iter().enumerate() {
            let named = &self.named[d as usize];
            let (member, _) = named.member.as_ref().ok_or_else(|| {
                crate::Error::sketch(
                    named.named_at.clone(),
                    format!(
                        "the document {:?} is in a clustered pair but has no record among the \
                         members",
                        named.id
                    ),
                )
            })?;
            let entry = DocEntry {
                id: named.id.clone(),
                metadata: member.metadata.as_ref().map(|m| m.get().into()),
                date: member.date,
                text_bytes: member.text_bytes,
                tokens: 0,
                location: crate::input::RecordLocation { source: 0, line: 0 },
            };
            corpus
                .push(entry, &[], member.set.as_deref().unwrap_or(&[]))
                .map_err(|e| crate::Error::io("keeping the members", e))?;
            number[d as usize] = rank as u32;
        }
        Ok((corpus, Numbering(number)))
    }

    /// The documents of [`Documents::corpus`] whose shingle sets were kept, in id order.
    pub(crate) fn with_sets(&self, numbering: &Numbering) -> Vec<u32> {
        let mut docs: Vec<u32> = (0..self.named.len())
            .filter(|&d| {
                self.named[d]
                    .member
                    .as_ref()
                    .is_some_and(|(m, _)| m.set.is_some())
            })
            .map(|d| numbering.0[d])
            .filter(|&d| d != u32::MAX)
            .collect();
        docs.sort_unstable();
        docs
    }
}

/// Named documents' indices in the corpus of [`Documents::corpus`] (`u32::MAX`: not in it).
pub(crate) struct Numbering(Vec<u32>);

impl Numbering {
    /// The pair of named documents `a` and `b` in the corpus, smaller index first, and
    /// whether that swapped them; `None` when either is not in the corpus.
    pub(crate) fn pair(&self, a: u32, b: u32) -> Option<(u32, u32, bool)> {
        let (x, y) = (self.0[a as usize], self.0[b as usize]);
        (x != u32::MAX && y != u32::MAX).then(|| (x.min(y), x.max(y), y < x))
    }
}

/// Where each record of one kind (pairs, members) was read, in reading order, so that one
/// given twice is named at both places (`link` reads millions of pairs; one file name per
/// run of a file's records).
#[derive(Debug, Default)]
pub(crate) struct LineOrigins {
    files: Vec<String>,
    /// (index into `files`, line) of each record read.
    at: Vec<(u32, u64)>,
}

impl LineOrigins {
    /// The next record read is on line `line` of `file`; returns its place in reading
    /// order.
    pub(crate) fn push(&mut self, file: &str, line: u64) -> u32 {
        if self.files.last().map(String::as_str) != Some(file) {
            self.files.push(file.to_string());
        }
        self.at.push(((self.files.len() - 1) as u32, line));
        (self.at.len() - 1) as u32
    }

    fn location(&self, read: u32) -> crate::FileLocation {
        let (file, line) = self.at[read as usize];
        crate::FileLocation::at(&self.files[file as usize], line)
    }
}

/// Refuses a pair given twice among `pairs` (corpus indices, smaller first, with the pair's
/// place in reading order; sorted), naming where it was read again and where first.
pub(crate) fn refuse_repeated_pairs(
    corpus: &Corpus,
    pairs: impl Iterator<Item = (u32, u32, u32)>,
    origins: &LineOrigins,
) -> crate::Result<()> {
    let mut previous = None;
    for (a, b, read) in pairs {
        if let Some((_, _, first)) = previous.filter(|&(a0, b0, _)| (a0, b0) == (a, b)) {
            return Err(crate::Error::sketch(
                origins.location(read),
                format!(
                    "the pair {:?} / {:?} is given twice (first at {})",
                    corpus.id(a),
                    corpus.id(b),
                    origins.location(first)
                ),
            ));
        }
        previous = Some((a, b, read));
    }
    Ok(())
}

/// A near-copy sketch record as [`PairVerifier`] reads it.
#[derive(Debug, Deserialize)]
struct SketchIn {
    id: String,
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    level: Option<String>,
    #[serde(default)]
    settings: Option<String>,
    signature: String,
    set: String,
}

/// A verified pair as `neardup verify --level near-copy` writes it: the record of
/// `neardup pairs`, then the exact Jaccard unrounded.
#[derive(Debug, Serialize)]
pub struct VerifiedPairRecord<'a> {
    /// The pair as `neardup pairs` writes it.
    #[serde(flatten)]
    pub pair: PairRecord<'a>,
    /// The exact Jaccard unrounded: the 32-bit float the clusters' cohesion averages,
    /// written as the shortest decimal that reads back as that float (`0.3`, not the
    /// `0.30000001192092896` of its 64-bit widening), and read back by `exact_f32`.
    pub exact_jaccard: f32,
}

/// Reads a JSON number as the 32-bit float written as it (`exact_jaccard`, a story
/// pair's `probability`): parsed from its text straight to `f32`, not through an `f64`,
/// so that the float comes back bit for bit (a longer decimal, as older neardups wrote,
/// comes back the same too).
pub(crate) fn exact_f32<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
    let raw = Box::<RawValue>::deserialize(d)?;
    raw.get()
        .trim()
        .parse::<f32>()
        .map_err(|_| serde::de::Error::custom(format!("not a number: {}", raw.get())))
}

/// What [`PairVerifier::verify`] did with the pairs it read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PairVerifyCounts {
    /// Pairs read.
    pub pairs: u64,
    /// Of those, at or above the threshold (and written).
    pub verified: u64,
}

/// Scores candidate pairs of near-copy sketches as the batch does.
#[derive(Debug)]
pub struct PairVerifier {
    threshold: f32,
    num_perm: usize,
}

impl PairVerifier {
    /// A verifier keeping pairs whose exact Jaccard reaches `threshold` (compared in
    /// 32-bit floats, as the batch compares), for signatures of `num_perm` slots.
    pub fn new(threshold: f64, num_perm: usize) -> Self {
        PairVerifier {
            threshold: threshold as f32,
            num_perm,
        }
    }

    /// Reads candidate pairs from `input`, one JSON array of two sketch records per line
    /// (blank lines skipped), and writes a [`VerifiedPairRecord`] for every pair at or
    /// above the threshold. A line that is not such a pair is an error naming
    /// `name:line`.
    pub fn verify(
        &self,
        input: &mut dyn BufRead,
        name: &str,
        out: &mut dyn Write,
    ) -> crate::Result<PairVerifyCounts> {
        let mut counts = PairVerifyCounts::default();
        let mut check = SettingsCheck::new(vec![
            ("level", "near-copy".into(), "--level".into()),
            ("num_perm", self.num_perm.to_string(), "--num-perm".into()),
            tokenizer_setting(),
        ]);
        for_each_line(input, name, |number, line| {
            let at = crate::FileLocation::at(name, number);
            let bad = |reason: String| crate::Error::sketch(at.clone(), reason);
            let (x, y): (SketchIn, SketchIn) = serde_json::from_slice(line).map_err(|e| {
                bad(format!(
                    "not a pair of sketch records ([{{…}}, {{…}}]): {e}"
                ))
            })?;
            for r in [&x, &y] {
                if let Some(level) = r.level.as_deref().filter(|l| *l != "near-copy") {
                    return Err(bad(format!(
                        "document {:?} was sketched at the {level} level, not the near-copy \
                         level",
                        r.id
                    )));
                }
            }
            for r in [&x, &y] {
                check
                    .check(&r.id, r.schema_version, r.settings.as_deref(), &at)
                    .map_err(bad)?;
            }
            if x.id == y.id {
                return Err(bad(format!("a document paired with itself: {:?}", x.id)));
            }
            let (a, b) = if x.id < y.id { (x, y) } else { (y, x) };
            let decoded = |r: &SketchIn| -> Result<(Vec<u32>, Vec<u64>), String> {
                Ok((
                    decode_signature(&r.id, &r.signature, self.num_perm)?,
                    decode_set(&r.id, &r.set)?,
                ))
            };
            let (signature_a, set_a) = decoded(&a).map_err(bad)?;
            let (signature_b, set_b) = decoded(&b).map_err(bad)?;
            counts.pairs += 1;
            let score = crate::verify::score_sets(0, 1, &set_a, &set_b, &signature_a, &signature_b);
            if score.jaccard < self.threshold {
                return Ok(());
            }
            counts.verified += 1;
            let record = VerifiedPairRecord {
                pair: PairRecord::of(&a.id, &b.id, &score),
                exact_jaccard: score.jaccard,
            };
            crate::feed::write_json_line(out, &record)
                .map_err(|e| crate::Error::io("writing the verified pairs", e))
        })?;
        Ok(counts)
    }
}

/// A verified pair as [`PairLinker`] reads it back: a [`VerifiedPairRecord`].
#[derive(Debug, Deserialize)]
struct VerifiedPairIn {
    a: String,
    b: String,
    estimated_jaccard: f64,
    containment_a_in_b: f64,
    containment_b_in_a: f64,
    #[serde(deserialize_with = "exact_f32")]
    exact_jaccard: f32,
}

/// What [`PairLinker`] read and wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PairLinkCounts {
    /// Verified pairs read.
    pub pairs: u64,
    /// Clusters written.
    pub clusters: u64,
    /// Documents in them.
    pub clustered_documents: u64,
}

/// Clusters verified near-copy pairs exactly as one batch run clusters them (the last step
/// of a distributed run): the mode, the representative, the cohesion and the records of
/// `neardup cluster`.
///
/// Read every verified pair first ([`PairLinker::read_pairs`]), then the records of the
/// documents in them ([`PairLinker::read_members`]: dates, lengths, metadata), then
/// [`PairLinker::write`]. The verified pairs of any union of connected components
/// cluster alone, so a cluster engine clusters components apart.
#[derive(Debug)]
pub struct PairLinker {
    mode: ClusterMode,
    rule: RepresentativeRule,
    bucket_cap: usize,
    documents: Documents,
    pairs: Vec<PairScore>,
    origins: LineOrigins,
}

impl PairLinker {
    /// A linker clustering in `mode` and choosing representatives by `rule` (documents
    /// are in id order here, so `First` means the smallest id). It clusters the pairs it
    /// is given: those verified at the run's threshold.
    ///
    /// In leader mode the batch run moves a copy group (more than the bucket cap documents
    /// with one shingle set, paired as a star) as one; the linker finds the groups among
    /// the members whose sketch records carry their `set` (a plain member record is in
    /// none), at the cap of [`PairLinker::bucket_cap`].
    pub fn new(mode: ClusterMode, rule: RepresentativeRule) -> Self {
        PairLinker {
            mode,
            rule,
            bucket_cap: 1000,
            documents: Documents {
                keep_sets: mode == ClusterMode::Leader,
                ..Documents::default()
            },
            pairs: Vec::new(),
            origins: LineOrigins::default(),
        }
    }

    /// The bucket cap the candidates were found with (`--bucket-cap`, default 1000; at
    /// least 2): more than this many equal shingle sets are a copy group.
    pub fn bucket_cap(mut self, cap: usize) -> Self {
        self.bucket_cap = cap.max(2);
        self
    }

    /// Reads verified pairs from `input` (the lines `neardup verify --level near-copy`
    /// writes; blank lines skipped). A line that is not one is an error naming
    /// `name:line`.
    pub fn read_pairs(&mut self, input: &mut dyn BufRead, name: &str) -> crate::Result<()> {
        for_each_line(input, name, |number, line| {
            let at = || crate::FileLocation::at(name, number);
            let bad = |reason: String| crate::Error::sketch(at(), reason);
            let r: VerifiedPairIn = serde_json::from_slice(line).map_err(|e| {
                bad(format!(
                    "not a verified pair (neardup verify --level near-copy): {e}"
                ))
            })?;
            if r.a == r.b {
                return Err(bad(format!("a document paired with itself: {:?}", r.a)));
            }
            if !(0.0..=1.0).contains(&r.exact_jaccard) {
                return Err(bad(format!(
                    "exact Jaccard {} is not in [0, 1]",
                    r.exact_jaccard
                )));
            }
            let jaccard = r.exact_jaccard;
            self.origins.push(name, number);
            let a = self.documents.intern(r.a, at);
            let b = self.documents.intern(r.b, at);
            self.documents.cluster(a);
            self.documents.cluster(b);
            self.pairs.push(PairScore {
                a,
                b,
                estimated: r.estimated_jaccard as f32,
                jaccard,
                a_in_b: r.containment_a_in_b as f32,
                b_in_a: r.containment_b_in_a as f32,
            });
            Ok(())
        })
    }

    /// Reads document records from `input` (sketch records, or `{"id", "date",
    /// "text_bytes", "metadata"}`; blank lines skipped), keeping those of documents in
    /// pairs read so far. Call it after every [`PairLinker::read_pairs`].
    pub fn read_members(&mut self, input: &mut dyn BufRead, name: &str) -> crate::Result<()> {
        self.documents.read_members(input, name)
    }

    /// Clusters the pairs and writes the clusters as `neardup cluster` does (largest first,
    /// numbered from 1). A document of a pair without a record, or a pair given twice, is
    /// an error.
    pub fn write(mut self, out: &mut dyn Write, format: Format) -> crate::Result<PairLinkCounts> {
        let (corpus, numbering) = self.documents.corpus()?;
        for p in &mut self.pairs {
            let swapped;
            (p.a, p.b, swapped) = numbering.pair(p.a, p.b).expect("both ends clustered");
            if swapped {
                std::mem::swap(&mut p.a_in_b, &mut p.b_in_a);
            }
        }
        let mut read: Vec<(u32, u32, u32)> =
            (0..).zip(&self.pairs).map(|(i, p)| (p.a, p.b, i)).collect();
        read.sort_unstable();
        refuse_repeated_pairs(&corpus, read.into_iter(), &self.origins)?;
        self.pairs.sort_unstable_by_key(|p| (p.a, p.b));
        let rank: Vec<u32> = (0..corpus.len() as u32).collect();
        // The batch's copy groups: every member of one is in this corpus (the star joins
        // them in one component), and ranks are id order, so the centre is the batch's.
        let copies = match self.mode {
            ClusterMode::Leader => {
                let docs = self.documents.with_sets(&numbering);
                crate::index::copy_groups(&corpus, &docs, self.bucket_cap, &rank)
                    .map_err(|e| crate::Error::io("keeping the members' sets", e))?
            }
            ClusterMode::Connected => Vec::new(),
        };
        let clusters =
            crate::cluster::cluster(&corpus, &self.pairs, &copies, self.mode, self.rule, &rank);
        let counts = PairLinkCounts {
            pairs: self.pairs.len() as u64,
            clusters: clusters.len() as u64,
            clustered_documents: clusters.iter().map(|c| c.members.len() as u64).sum(),
        };
        crate::report::write_cluster_records(out, &corpus, &clusters, &self.pairs, format)
            .map_err(|e| crate::Error::io("writing the clusters", e))?;
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 32-bit float written by serde_json (its shortest decimal) reads back bit for bit
    /// through [`exact_f32`], over the whole of [0, 1] and the 64-bit widening older
    /// neardups wrote.
    #[test]
    fn unrounded_floats_read_back_bit_for_bit() {
        #[derive(Deserialize)]
        struct In {
            #[serde(deserialize_with = "exact_f32")]
            x: f32,
        }
        let read = |text: String| {
            serde_json::from_str::<In>(&format!("{{\"x\":{text}}}"))
                .unwrap()
                .x
        };
        let one = 1.0f32.to_bits();
        for bits in (0..=one).step_by(997).chain([one, 1, 0x3e99_999a]) {
            let x = f32::from_bits(bits);
            assert_eq!(
                read(serde_json::to_string(&x).unwrap()).to_bits(),
                bits,
                "{x}"
            );
            let widened = serde_json::to_string(&f64::from(x)).unwrap();
            assert_eq!(read(widened).to_bits(), bits, "{x}");
        }
        assert_eq!(serde_json::to_string(&0.3f32).unwrap(), "0.3");
    }
}
