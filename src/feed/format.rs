//! The on-disk format of a feed index, version [`FORMAT_VERSION`].
//!
//! An index is a directory:
//!
//! * `index.meta`: magic `NDUPMETA`, format version, generation, settings, the
//!   fingerprint check, CRC-32C of all before it. Written once by `create` and replaced atomically by `compact`
//!   (temporary file, fsync, rename, fsync of the directory).
//! * `articles.<generation>.log`: a 24-byte header (magic `NDUPLOG\n`, format version,
//!   generation, CRC-32C) followed by framed article records, appended in the order the
//!   articles were added. A frame is `u32 length`, `u32 CRC-32C of (length ‖ payload)`,
//!   then the payload. Only `compact` writes a new generation.
//! * `lock`: locked (advisory, `flock`) by the one process that may write.
//!
//! All integers are little-endian. An article payload:
//!
//! ```text
//! offset  size  field
//!      0     1  record kind (1 = article)
//!      1     1  flags (bit 0: `time` is the article's own date, else its arrival time)
//!      2     1  verdict (1 = new, 2 = duplicate)
//!      3     1  reserved (0)
//!      4     4  score of the best match (f32; exact Jaccard), 0 for new
//!      8     4  estimated Jaccard of the best match (f32), 0 for new
//!     12     8  time, seconds since the Unix epoch (i64)
//!     20     8  text length in bytes
//!     28     4  tokens
//!     32     4  shingle-set size S
//!     36     4  id length I
//!     40     4  best-match id length M (0 for new)
//!     44     4  cluster id length C
//!     48  4·K   MinHash signature (K = num_perm u32 slots)
//!      …   8·S  sorted shingle set (u64)
//!      …     I  id (UTF-8), then M bytes of best-match id, then C bytes of cluster id
//! ```
//!
//! **Story level** (an extension of version 1: copy-level files are unchanged). `index.meta`
//! has level code 2 and, after the fingerprint check, a story section: `u8` statistics
//! source (1 = accumulated, 2 = fixed in `story.stats`), `u32` weighted slots K′, `f64`
//! candidate threshold, `u32` bands, `u32` rows, `u32` bucket cap, `f64` model threshold,
//! `u64` xxh3 of `story.stats` (0 when accumulated), `u64` story check. `story.stats` is a
//! statistics file ([`crate::story::stats`]) written before `index.meta`. Articles are
//! record kind 2: the layout above, with byte 3 the pair kind of a rewrite (0 none, 1 copy,
//! 2 update, 3 rewrite) and verdict 3 = rewrite, followed by:
//!
//! ```text
//! size  field
//!    4  weighted signature slots K′
//!   24  counts of terms T, names N, figures F, template slots L, quotes Q, lead names D
//!       (u32 each)
//!    1  weekdays (bit d = weekday d mentioned)
//!    1  first weekday (255 = none)
//!    2  back references (bits)
//! 4·K′  weighted signature (u32; all u32::MAX: no weighted content)
//!  8·T  terms, 8·N names, 8·F figures (u64, sorted), 16·L slots (u64 slot, u64 value),
//!  8·Q  quotes, 8·D lead names
//! ```

use crate::index::LshParams;
use crate::shingle::ShingleSpec;
use crate::story::{Kind, StoryDoc};

/// Version of the on-disk format. Bumped on any change that an older neardup could not read;
/// `tests/feed.rs` pins it with a golden index.
pub const FORMAT_VERSION: u32 = 1;

pub(crate) const META_FILE: &str = "index.meta";
pub(crate) const LOCK_FILE: &str = "lock";
pub(crate) const META_MAGIC: &[u8; 8] = b"NDUPMETA";
/// What to do about a damaged `index.meta`, said wherever it is found damaged.
pub(crate) const META_NOT_REPAIRABLE: &str = "it holds the index's settings, which cannot \
     be repaired: create a new index and add the articles again";
const LOG_MAGIC: &[u8; 8] = b"NDUPLOG\n";
pub(crate) const LOG_HEADER_BYTES: u64 = 24;
pub(crate) use crate::frame::HEADER_BYTES as FRAME_HEADER_BYTES;
use crate::frame::Reader;
const RECORD_ARTICLE: u8 = 1;
const RECORD_STORY_ARTICLE: u8 = 2;
const PAYLOAD_HEADER_BYTES: usize = 48;
/// Bytes of the fixed part of a story section.
pub(crate) const STORY_HEADER_BYTES: usize = 32;

/// The file name of a generation's log.
pub(crate) fn log_file_name(generation: u64) -> String {
    format!("articles.{generation}.log")
}

/// The generation of a log file name, if it is one.
pub(crate) fn parse_log_file_name(name: &str) -> Option<u64> {
    name.strip_prefix("articles.")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

/// What a verdict is about: how far two articles may differ and still count as one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Level {
    /// Near-copies: exact Jaccard of the shingle sets at or above the threshold.
    Copy,
    /// Near-copies as at the copy level, and other copies, updates and rewrites of one
    /// news story, decided by the batch story level's model (see [`crate::story`]).
    Story,
}

impl Level {
    /// The name used on the command line and in statistics.
    pub fn name(self) -> &'static str {
        match self {
            Level::Copy => "copy",
            Level::Story => "story",
        }
    }

    fn code(self) -> u8 {
        match self {
            Level::Copy => 1,
            Level::Story => 2,
        }
    }

    fn from_code(code: u8) -> Option<Level> {
        match code {
            1 => Some(Level::Copy),
            2 => Some(Level::Story),
            _ => None,
        }
    }
}

/// Where a story-level index takes its document frequencies from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsSource {
    /// Counted over the articles the index holds, each article scored against the
    /// articles added before it (compaction forgets the removed ones).
    Accumulated,
    /// Fixed when the index was created (a file written by `neardup cluster --level
    /// story --stats-out`), kept in the index as `story.stats`.
    Fixed,
}

/// The story level's settings of an index; fixed for its lifetime.
#[derive(Clone, Debug, PartialEq)]
pub struct StoryIndexSettings {
    /// Where the statistics come from.
    pub stats: StatsSource,
    /// Slots of the weighted signature.
    pub num_perm: usize,
    /// Weighted Jaccard at which a pair becomes a story candidate (see
    /// [`crate::story::StorySettings::candidate_threshold`]).
    pub candidate_threshold: f64,
    /// LSH banding of the weighted signatures.
    pub lsh: LshParams,
    /// Largest story LSH bucket whose members are all compared with a new article; in
    /// larger ones only the newest `bucket_cap − 1` are.
    pub bucket_cap: usize,
    /// Lowest model probability decided as one story.
    pub threshold: f64,
}

/// The settings an index is created with; fixed for its lifetime.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexSettings {
    /// What counts as the same article.
    pub level: Level,
    /// Shingles.
    pub shingle: ShingleSpec,
    /// Signature slots.
    pub num_perm: usize,
    /// Seed of the sketch's hash functions.
    pub seed: u64,
    /// Lowest exact Jaccard of a duplicate.
    pub threshold: f64,
    /// LSH banding.
    pub lsh: LshParams,
    /// Largest LSH bucket whose members are all compared with a new article; in larger
    /// ones only the newest `bucket_cap − 1` are.
    pub bucket_cap: usize,
    /// Articles older than this many seconds (before the article being checked) do not
    /// match it, and `compact` removes those older than this before the newest article.
    pub window: Option<u64>,
    /// The story level's settings (`Some` exactly at [`Level::Story`]).
    pub story: Option<StoryIndexSettings>,
}

/// The decoded `index.meta`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Meta {
    pub generation: u64,
    pub settings: IndexSettings,
    /// A hash of the fingerprint of [`PROBE_TEXT`] made when the index was created: stored
    /// signatures and shingle sets are only comparable with new ones while the tokenizer,
    /// shingles and sketch give the same result.
    pub fingerprint_check: u64,
    /// Story level: the checks of its statistics and algorithms.
    pub story: Option<StoryMeta>,
    /// The same check for [`SCRIPTS_PROBE_TEXT`], after the story section. An index made
    /// before neardup wrote it has none, and is not checked for those scripts.
    pub scripts_check: Option<u64>,
}

/// What `index.meta` pins of a story-level index besides its settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StoryMeta {
    /// xxh3 of `story.stats` ([`StatsSource::Fixed`]; 0 otherwise).
    pub stats_check: u64,
    /// A hash of the story features, weighted sketch, score components and model
    /// decision of [`PROBE_TEXT`] and a variant of it, made when the index was created:
    /// stored features are only comparable with new ones while these give the same result.
    pub story_check: u64,
}

/// The file of fixed story statistics in an index directory.
pub(crate) const STATS_FILE: &str = "story.stats";

/// A text that exercises the tokenizer (case, accents, punctuation, digits, joiners,
/// scripts without spaces), fingerprinted to detect a change of algorithm.
pub(crate) const PROBE_TEXT: &str = "Zürich, 3 Jan. (Reuters) — The central bank's \
    rate rose 0.5% to 4,25 per cent; l'économie « ralentit », 中国央行周二宣布 降息。 \
    ÉCOLE école Ǆ ǆ ﬁne café́ e-mail co-operate #tags @user https://x.example/a?b=1";

/// A second probe text, in the scripts and characters [`PROBE_TEXT`] leaves out:
/// half-width katakana with voiced marks, Thai, Lao, Khmer, Myanmar, and invisible
/// characters inside words (soft hyphen, zero-width space, word joiner) and beside a digit
/// separator.
pub(crate) const SCRIPTS_PROBE_TEXT: &str = "ｶﾞｲﾄﾞﾌﾞｯｸ ガイドブック ภาษาไทยง่ายๆ ๒๕๖๗ ພາສາລາວ ភាសាខ្មែរ မြန်မာစာ \
    Qua\u{AD}rter\u{200B}ly re\u{2060}sults 1\u{AD},000";

/// The fingerprint check of `probe` fingerprinted with `settings` (see
/// [`Meta::fingerprint_check`], [`Meta::scripts_check`]).
pub(crate) fn probe_check(settings: &crate::pipeline::Settings, probe: &str) -> u64 {
    fingerprint_check(
        crate::pipeline::Fingerprinter::new(settings)
            .fingerprint(probe)
            .as_ref(),
    )
}

/// The fingerprint check of a fingerprint (see [`Meta::fingerprint_check`]).
pub(crate) fn fingerprint_check(fingerprint: Option<&crate::pipeline::Fingerprint>) -> u64 {
    let mut bytes = Vec::new();
    if let Some(f) = fingerprint {
        bytes.extend(f.set.iter().flat_map(|x| x.to_le_bytes()));
        bytes.extend(f.signature.iter().flat_map(|x| x.to_le_bytes()));
        bytes.extend((f.tokens as u64).to_le_bytes());
    }
    xxhash_rust::xxh3::xxh3_64(&bytes)
}

fn crc(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
}

pub(crate) fn encode_meta(meta: &Meta) -> Vec<u8> {
    let s = &meta.settings;
    let mut out = Vec::with_capacity(80);
    out.extend_from_slice(META_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&meta.generation.to_le_bytes());
    out.push(s.level.code());
    let (kind, n) = match s.shingle {
        ShingleSpec::Words(n) => (1u8, n),
        ShingleSpec::Chars(n) => (2u8, n),
    };
    out.push(kind);
    out.extend_from_slice(&(n as u16).to_le_bytes());
    out.extend_from_slice(&(s.num_perm as u32).to_le_bytes());
    out.extend_from_slice(&s.seed.to_le_bytes());
    out.extend_from_slice(&s.threshold.to_le_bytes());
    out.extend_from_slice(&(s.lsh.bands as u32).to_le_bytes());
    out.extend_from_slice(&(s.lsh.rows as u32).to_le_bytes());
    out.extend_from_slice(&(s.bucket_cap as u32).to_le_bytes());
    out.extend_from_slice(&s.window.unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&meta.fingerprint_check.to_le_bytes());
    if let Some(story) = &s.story {
        let m = meta.story.unwrap_or(StoryMeta {
            stats_check: 0,
            story_check: 0,
        });
        out.push(match story.stats {
            StatsSource::Accumulated => 1,
            StatsSource::Fixed => 2,
        });
        out.extend_from_slice(&(story.num_perm as u32).to_le_bytes());
        out.extend_from_slice(&story.candidate_threshold.to_le_bytes());
        out.extend_from_slice(&(story.lsh.bands as u32).to_le_bytes());
        out.extend_from_slice(&(story.lsh.rows as u32).to_le_bytes());
        out.extend_from_slice(&(story.bucket_cap as u32).to_le_bytes());
        out.extend_from_slice(&story.threshold.to_le_bytes());
        out.extend_from_slice(&m.stats_check.to_le_bytes());
        out.extend_from_slice(&m.story_check.to_le_bytes());
    }
    if let Some(check) = meta.scripts_check {
        out.extend_from_slice(&check.to_le_bytes());
    }
    let sum = crc(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// Decodes `index.meta`; the error says what is wrong.
pub(crate) fn decode_meta(bytes: &[u8]) -> Result<Meta, String> {
    if bytes.len() < 12 || &bytes[..8] != META_MAGIC {
        return Err("not a neardup index (index.meta has no neardup header)".into());
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(format!(
            "index format version {version}, but this neardup reads version {FORMAT_VERSION}"
        ));
    }
    let (body, sum) = bytes.split_at(bytes.len().saturating_sub(4));
    if sum.len() != 4 || crc(body) != u32::from_le_bytes(sum.try_into().expect("4 bytes")) {
        return Err(format!(
            "index.meta is damaged (checksum mismatch); {META_NOT_REPAIRABLE}"
        ));
    }
    let mut r = Reader {
        bytes: body,
        at: 12,
    };
    let generation = r.u64()?;
    let level = r.u8()?;
    let level = Level::from_code(level)
        .ok_or_else(|| format!("unknown level code {level} (made by a newer neardup?)"))?;
    let kind = r.u8()?;
    let n = r.u16()? as usize;
    let shingle = match kind {
        1 => ShingleSpec::Words(n),
        2 => ShingleSpec::Chars(n),
        other => return Err(format!("unknown shingle kind {other}")),
    };
    let num_perm = r.u32()? as usize;
    let seed = r.u64()?;
    let threshold = r.f64()?;
    let bands = r.u32()? as usize;
    let rows = r.u32()? as usize;
    let bucket_cap = r.u32()? as usize;
    let window = Some(r.u64()?).filter(|&w| w > 0);
    let fingerprint_check = r.u64()?;
    let (story, story_meta) = if level == Level::Story {
        let stats = match r.u8()? {
            1 => StatsSource::Accumulated,
            2 => StatsSource::Fixed,
            other => return Err(format!("unknown story statistics source {other}")),
        };
        let settings = StoryIndexSettings {
            stats,
            num_perm: r.u32()? as usize,
            candidate_threshold: r.f64()?,
            lsh: LshParams {
                bands: r.u32()? as usize,
                rows: r.u32()? as usize,
            },
            bucket_cap: r.u32()? as usize,
            threshold: r.f64()?,
        };
        let meta = StoryMeta {
            stats_check: r.u64()?,
            story_check: r.u64()?,
        };
        (Some(settings), Some(meta))
    } else {
        (None, None)
    };
    let scripts_check = if body.len() > r.at {
        Some(r.u64()?)
    } else {
        None
    };
    if r.at != body.len() {
        return Err("index.meta has trailing bytes".into());
    }
    Ok(Meta {
        generation,
        settings: IndexSettings {
            level,
            shingle,
            num_perm,
            seed,
            threshold,
            lsh: LshParams { bands, rows },
            bucket_cap,
            window,
            story,
        },
        fingerprint_check,
        story: story_meta,
        scripts_check,
    })
}

pub(crate) fn encode_log_header(generation: u64) -> [u8; LOG_HEADER_BYTES as usize] {
    let mut out = [0u8; LOG_HEADER_BYTES as usize];
    out[..8].copy_from_slice(LOG_MAGIC);
    out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    out[12..20].copy_from_slice(&generation.to_le_bytes());
    let sum = crc(&out[..20]);
    out[20..].copy_from_slice(&sum.to_le_bytes());
    out
}

pub(crate) fn check_log_header(bytes: &[u8], generation: u64) -> Result<(), String> {
    if bytes.len() < LOG_HEADER_BYTES as usize || &bytes[..8] != LOG_MAGIC {
        return Err("the article log has no neardup header".into());
    }
    if bytes[..LOG_HEADER_BYTES as usize] != encode_log_header(generation) {
        return Err(format!(
            "the article log header does not match generation {generation} and format version {FORMAT_VERSION}"
        ));
    }
    Ok(())
}

/// The verdict stored with an article.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StoredVerdict {
    New,
    Duplicate,
    Rewrite,
}

/// The story section of a story-level article record, borrowed from a payload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoryRecord<'a> {
    /// Kind of the best same-story match (of a `rewrite` verdict).
    pub kind: Option<Kind>,
    /// Weighted signature: little-endian u32 slots (all `u32::MAX`: no weighted content).
    pub signature: &'a [u8],
    /// Little-endian u64 keys of each [`StoryDoc`] list.
    pub terms: &'a [u8],
    pub names: &'a [u8],
    pub figures: &'a [u8],
    /// Little-endian `(u64 slot, u64 value)` pairs.
    pub slots: &'a [u8],
    pub quotes: &'a [u8],
    pub lead_names: &'a [u8],
    pub weekdays: u8,
    pub first_weekday: Option<u8>,
    pub back_references: u16,
}

fn u64s(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
}

impl StoryRecord<'_> {
    /// The keys the story statistics count: its terms, then its names.
    pub fn counted_keys(&self) -> impl Iterator<Item = u64> + '_ {
        u64s(self.terms).chain(u64s(self.names))
    }

    /// The weighted signature, decoded into `out`.
    pub fn signature_into(&self, out: &mut Vec<u32>) {
        out.clear();
        out.extend(
            self.signature
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes"))),
        );
    }

    /// The story features, decoded into `out` (its buffers reused).
    pub fn features_into(&self, out: &mut StoryDoc) {
        for (list, bytes) in [
            (&mut out.terms, self.terms),
            (&mut out.names, self.names),
            (&mut out.figures, self.figures),
            (&mut out.quotes, self.quotes),
            (&mut out.lead_names, self.lead_names),
        ] {
            list.clear();
            list.extend(u64s(bytes));
        }
        out.slots.clear();
        let mut slots = u64s(self.slots);
        while let (Some(slot), Some(value)) = (slots.next(), slots.next()) {
            out.slots.push([slot, value]);
        }
        out.weekdays = self.weekdays;
        out.first_weekday = self.first_weekday;
        out.back_references = self.back_references;
    }
}

/// The byte lists of a story section, encoded from features into reusable buffers.
#[derive(Debug, Default)]
pub(crate) struct StoryBytes {
    pub signature: Vec<u8>,
    pub terms: Vec<u8>,
    pub names: Vec<u8>,
    pub figures: Vec<u8>,
    pub slots: Vec<u8>,
    pub quotes: Vec<u8>,
    pub lead_names: Vec<u8>,
}

impl StoryBytes {
    /// Fills the buffers from a weighted signature and features.
    pub fn fill(&mut self, signature: &[u32], doc: &StoryDoc) {
        self.signature.clear();
        self.signature
            .extend(signature.iter().flat_map(|x| x.to_le_bytes()));
        for (out, list) in [
            (&mut self.terms, &doc.terms),
            (&mut self.names, &doc.names),
            (&mut self.figures, &doc.figures),
            (&mut self.quotes, &doc.quotes),
            (&mut self.lead_names, &doc.lead_names),
        ] {
            out.clear();
            out.extend(list.iter().flat_map(|x| x.to_le_bytes()));
        }
        self.slots.clear();
        self.slots.extend(
            doc.slots
                .iter()
                .flat_map(|&[a, b]| a.to_le_bytes().into_iter().chain(b.to_le_bytes())),
        );
    }

    /// The story record of these buffers.
    pub fn record(&self, kind: Option<Kind>, doc: &StoryDoc) -> StoryRecord<'_> {
        StoryRecord {
            kind,
            signature: &self.signature,
            terms: &self.terms,
            names: &self.names,
            figures: &self.figures,
            slots: &self.slots,
            quotes: &self.quotes,
            lead_names: &self.lead_names,
            weekdays: doc.weekdays,
            first_weekday: doc.first_weekday,
            back_references: doc.back_references,
        }
    }
}

fn kind_code(kind: Option<Kind>) -> u8 {
    match kind {
        None => 0,
        Some(Kind::Copy) => 1,
        Some(Kind::Update) => 2,
        Some(Kind::Rewrite) => 3,
    }
}

fn kind_of_code(code: u8) -> Result<Option<Kind>, String> {
    Ok(match code {
        0 => None,
        1 => Some(Kind::Copy),
        2 => Some(Kind::Update),
        3 => Some(Kind::Rewrite),
        other => return Err(format!("unknown story kind code {other}")),
    })
}

/// One article record, borrowed from a payload.
#[derive(Debug)]
pub(crate) struct ArticleRecord<'a> {
    pub dated: bool,
    pub verdict: StoredVerdict,
    pub score: f32,
    pub estimated: f32,
    pub time: i64,
    pub text_bytes: u64,
    pub tokens: u32,
    /// Little-endian u32 slots.
    pub signature: &'a [u8],
    /// Little-endian u64 elements.
    pub set: &'a [u8],
    pub id: &'a str,
    pub best_match: &'a str,
    pub cluster: &'a str,
    /// Story level: the story section (record kind 2).
    pub story: Option<StoryRecord<'a>>,
}

impl ArticleRecord<'_> {
    /// The signature, decoded into `out`.
    pub fn signature_into(&self, out: &mut Vec<u32>) {
        out.clear();
        out.extend(
            self.signature
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes"))),
        );
    }

    /// The shingle set, decoded into `out`.
    pub fn set_into(&self, out: &mut Vec<u64>) {
        out.clear();
        out.extend(
            self.set
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))),
        );
    }
}

/// Whether `bytes` (at least 3) can begin an article record: its kind, dated flag and
/// verdict codes. A cheap test before a checksum when looking for frames in damage.
pub(crate) fn may_start_article(bytes: &[u8]) -> bool {
    matches!(bytes[0], RECORD_ARTICLE | RECORD_STORY_ARTICLE)
        && bytes[1] <= 1
        && matches!(bytes[2], 1..=3)
}

/// Appends a framed article record to `out`.
pub(crate) fn encode_article(out: &mut Vec<u8>, r: &ArticleRecord<'_>) {
    let start = crate::frame::open(out);
    out.push(match r.story {
        None => RECORD_ARTICLE,
        Some(_) => RECORD_STORY_ARTICLE,
    });
    out.push(u8::from(r.dated));
    out.push(match r.verdict {
        StoredVerdict::New => 1,
        StoredVerdict::Duplicate => 2,
        StoredVerdict::Rewrite => 3,
    });
    out.push(r.story.map_or(0, |s| kind_code(s.kind)));
    out.extend_from_slice(&r.score.to_le_bytes());
    out.extend_from_slice(&r.estimated.to_le_bytes());
    out.extend_from_slice(&r.time.to_le_bytes());
    out.extend_from_slice(&r.text_bytes.to_le_bytes());
    out.extend_from_slice(&r.tokens.to_le_bytes());
    for len in [
        r.set.len() / 8,
        r.id.len(),
        r.best_match.len(),
        r.cluster.len(),
    ] {
        out.extend_from_slice(&(len as u32).to_le_bytes());
    }
    out.extend_from_slice(r.signature);
    out.extend_from_slice(r.set);
    out.extend_from_slice(r.id.as_bytes());
    out.extend_from_slice(r.best_match.as_bytes());
    out.extend_from_slice(r.cluster.as_bytes());
    if let Some(story) = &r.story {
        for len in [
            story.signature.len() / 4,
            story.terms.len() / 8,
            story.names.len() / 8,
            story.figures.len() / 8,
            story.slots.len() / 16,
            story.quotes.len() / 8,
            story.lead_names.len() / 8,
        ] {
            out.extend_from_slice(&(len as u32).to_le_bytes());
        }
        out.push(story.weekdays);
        out.push(story.first_weekday.unwrap_or(u8::MAX));
        out.extend_from_slice(&story.back_references.to_le_bytes());
        for bytes in [
            story.signature,
            story.terms,
            story.names,
            story.figures,
            story.slots,
            story.quotes,
            story.lead_names,
        ] {
            out.extend_from_slice(bytes);
        }
    }
    crate::frame::seal(out, start);
}

/// Decodes an article payload for signatures of `num_perm` slots.
pub(crate) fn decode_article(payload: &[u8], num_perm: usize) -> Result<ArticleRecord<'_>, String> {
    let mut r = Reader::new(payload);
    let kind = r.u8()?;
    if kind != RECORD_ARTICLE && kind != RECORD_STORY_ARTICLE {
        return Err(format!(
            "unknown record kind {kind} (made by a newer neardup?)"
        ));
    }
    let dated = r.u8()? & 1 == 1;
    let verdict = match r.u8()? {
        1 => StoredVerdict::New,
        2 => StoredVerdict::Duplicate,
        3 if kind == RECORD_STORY_ARTICLE => StoredVerdict::Rewrite,
        other => return Err(format!("unknown verdict code {other}")),
    };
    let story_kind = r.u8()?;
    let score = r.f32()?;
    let estimated = r.f32()?;
    let time = r.i64()?;
    let text_bytes = r.u64()?;
    let tokens = r.u32()?;
    let set_len = r.u32()? as usize;
    let id_len = r.u32()? as usize;
    let match_len = r.u32()? as usize;
    let cluster_len = r.u32()? as usize;
    debug_assert_eq!(r.at, PAYLOAD_HEADER_BYTES);
    let signature = r.take(num_perm * 4)?;
    let set = r.take(set_len.checked_mul(8).ok_or("set size overflows")?)?;
    let id = r.str(id_len)?;
    let best_match = r.str(match_len)?;
    let cluster = r.str(cluster_len)?;
    let story = if kind == RECORD_STORY_ARTICLE {
        let start = r.at;
        let lens = [
            r.u32()?,
            r.u32()?,
            r.u32()?,
            r.u32()?,
            r.u32()?,
            r.u32()?,
            r.u32()?,
        ];
        let weekdays = r.u8()?;
        let first_weekday = Some(r.u8()?).filter(|&d| d != u8::MAX);
        let back_references = r.u16()?;
        debug_assert_eq!(r.at - start, STORY_HEADER_BYTES);
        let mut list = |n: u32, width: usize| {
            let bytes = (n as usize)
                .checked_mul(width)
                .ok_or("story section size overflows")?;
            r.take(bytes)
        };
        Some(StoryRecord {
            kind: kind_of_code(story_kind)?,
            signature: list(lens[0], 4)?,
            terms: list(lens[1], 8)?,
            names: list(lens[2], 8)?,
            figures: list(lens[3], 8)?,
            slots: list(lens[4], 16)?,
            quotes: list(lens[5], 8)?,
            lead_names: list(lens[6], 8)?,
            weekdays,
            first_weekday,
            back_references,
        })
    } else {
        None
    };
    if r.at != payload.len() {
        return Err("record has trailing bytes".into());
    }
    Ok(ArticleRecord {
        dated,
        verdict,
        score,
        estimated,
        time,
        text_bytes,
        tokens,
        signature,
        set,
        id,
        best_match,
        cluster,
        story,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> IndexSettings {
        IndexSettings {
            level: Level::Copy,
            shingle: ShingleSpec::Chars(7),
            num_perm: 64,
            seed: 9,
            threshold: 0.75,
            lsh: LshParams { bands: 10, rows: 6 },
            bucket_cap: 500,
            window: Some(604_800),
            story: None,
        }
    }

    #[test]
    fn meta_round_trips_and_rejects_damage() {
        let meta = Meta {
            generation: 3,
            settings: settings(),
            fingerprint_check: 0xDEAD_BEEF,
            story: None,
            scripts_check: Some(0xFEED),
        };
        let bytes = encode_meta(&meta);
        assert_eq!(decode_meta(&bytes).unwrap(), meta);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(
                decode_meta(&bad).is_err(),
                "flipping byte {i} goes unnoticed"
            );
        }
        assert!(decode_meta(&bytes[..bytes.len() - 1]).is_err());
        let mut newer = bytes.clone();
        newer[8] = 99;
        assert!(decode_meta(&newer).unwrap_err().contains("version 99"));
    }

    /// A copy-level record of 64 slots (`x * 7`) and the set {3, 9, 2^60}, in the buffers
    /// given.
    fn sample_record<'a>(signature: &'a mut Vec<u8>, set: &'a mut Vec<u8>) -> ArticleRecord<'a> {
        signature.extend((0..64u32).flat_map(|x| (x * 7).to_le_bytes()));
        set.extend([3u64, 9, 1 << 60].iter().flat_map(|x| x.to_le_bytes()));
        ArticleRecord {
            dated: true,
            verdict: StoredVerdict::Duplicate,
            score: 0.8125,
            estimated: 0.75,
            time: -5,
            text_bytes: 1234,
            tokens: 200,
            signature,
            set,
            id: "b-2",
            best_match: "a-1",
            cluster: "a-0",
            story: None,
        }
    }

    #[test]
    fn article_round_trips_and_frames_catch_damage() {
        let (mut signature, mut set) = (Vec::new(), Vec::new());
        let record = sample_record(&mut signature, &mut set);
        let mut framed = Vec::new();
        encode_article(&mut framed, &record);
        let header: [u8; 8] = framed[..8].try_into().unwrap();
        let payload = &framed[8..];
        assert!(crate::frame::is_intact(&header, payload));
        let back = decode_article(payload, 64).unwrap();
        assert_eq!(
            (
                back.id,
                back.best_match,
                back.cluster,
                back.time,
                back.score
            ),
            ("b-2", "a-1", "a-0", -5, 0.8125)
        );
        let mut slots = Vec::new();
        back.signature_into(&mut slots);
        assert_eq!(slots, (0..64u32).map(|x| x * 7).collect::<Vec<_>>());
        let mut decoded = Vec::new();
        back.set_into(&mut decoded);
        assert_eq!(decoded, [3, 9, 1 << 60]);
        for i in 0..payload.len() {
            let mut bad = payload.to_vec();
            bad[i] ^= 1;
            assert!(!crate::frame::is_intact(&header, &bad));
        }
        assert!(!crate::frame::is_intact(
            &header,
            &payload[..payload.len() - 1]
        ));
        assert!(decode_article(payload, 65).is_err());
    }

    proptest::proptest! {
        /// A damaged payload (one that passed a CRC by chance, or a bug) is an error,
        /// never a panic or an out-of-bounds read: truncated, bytes changed, or random.
        #[test]
        fn decoders_never_panic_on_damaged_bytes(
            cut in 0usize..700,
            flips in proptest::collection::vec((0usize..700, proptest::prelude::any::<u8>()), 0..6),
            random in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        ) {
            let (mut signature, mut set) = (Vec::new(), Vec::new());
            let mut framed = Vec::new();
            encode_article(&mut framed, &sample_record(&mut signature, &mut set));
            let mut payload = framed[8..].to_vec();
            payload.truncate(cut.min(payload.len()));
            for (at, byte) in flips {
                if let Some(b) = payload.get_mut(at) {
                    *b = byte;
                }
            }
            let _ = decode_article(&payload, 64);
            let _ = decode_article(&random, 64);
            let _ = decode_meta(&random);
            let mut meta = encode_meta(&Meta {
                generation: 1,
                settings: settings(),
                fingerprint_check: 1,
                story: None,
                scripts_check: None,
            });
            meta.truncate(cut.min(meta.len()));
            let _ = decode_meta(&meta);
        }
    }

    #[test]
    fn log_file_names() {
        assert_eq!(parse_log_file_name(&log_file_name(12)), Some(12));
        assert_eq!(parse_log_file_name("articles.x.log"), None);
        assert_eq!(parse_log_file_name("index.meta"), None);
    }
}
