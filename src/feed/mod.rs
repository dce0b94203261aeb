//! Feed deduplication: a persistent, incremental, crash-safe index of articles.
//!
//! A [`FeedIndex`] lives in a directory (see [`format`] for the files). Each article added
//! gets a [`Verdict`] at once: `new`, or `duplicate` with its best match, the exact
//! Jaccard score and a cluster id. Articles are fingerprinted by the batch pipeline's own
//! [`Fingerprinter`] and candidates come from the same LSH bands, confirmed on the full
//! band key and verified on exact shingle sets, so adding a corpus article by article
//! finds exactly the pairs `neardup pairs` finds on the whole corpus (as long as no LSH
//! bucket exceeds the cap; see [`IndexSettings::bucket_cap`]).
//!
//! ## Durability
//! [`FeedIndex::add`] appends to the log in memory; [`FeedIndex::commit`] writes and syncs
//! (`fdatasync`) everything added since the last commit. An article is *acknowledged*
//! once a commit after its `add` has returned: it then survives a crash (`kill -9`,
//! power loss with honest disks). A crash never corrupts the index: the next writer cuts
//! off the unfinished tail of the log, and readers ignore it.
//!
//! ## Sharing
//! One process at a time may write (`add`, `compact`, the CLI's `watch`): it holds an
//! advisory lock on `DIR/lock`, and a second writer gets [`ErrorKind::Index`] naming the
//! holder's process id. The lock dies with its process, so a crash leaves no stale lock.
//! Any number of readers ([`Access::Read`]: queries, statistics) may open the index at
//! the same time, even while it is written: they see the articles committed when they
//! opened it.
//!
//! ## Clusters
//! An article that is new starts a cluster whose id is its own id; a duplicate joins the
//! cluster of its best match. Cluster ids never change once given (an article bridging
//! two clusters joins one, it does not merge them), so they can be stored downstream.
//!
//! ## Time window
//! With a window `w`, an article dated `t` (its arrival time when it has no date) matches
//! only articles dated `t − w` or later; [`FeedIndex::compact`] deletes articles older than
//! `w` before the index's clock (its newest article's time, but never later than now).
//!
//! ## Memory usage
//! Per article: 8 bytes per LSH band (34 bands at the default threshold 0.5 and 128
//! slots: 272 bytes), about 40 bytes of offsets, times and id hash, and up to a
//! third more per band while recent additions sit in the delta tables. Signatures and
//! shingle sets stay on disk and are read only for candidates.

mod article;
mod bands;
pub mod format;
mod ingest;
mod log;
mod output;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use xxhash_rust::xxh3::xxh3_64;

pub use article::{Article, now};
pub use format::{FORMAT_VERSION, IndexSettings, Level};
pub use ingest::{IngestMode, IngestOptions, IngestStats, ingest};
pub use output::{
    MatchRecord, RejectedRecord, StatsRecord, VerdictRecord, write_json_line, write_stats_table,
};

use crate::error::{Error, ErrorKind, Result};
use crate::index::band_key;
use crate::pipeline::{Fingerprinter, PipelineBuilder, Settings};
use crate::progress::{Observer, Stage};
use crate::sketch::estimate_jaccard;
use crate::verify::intersection_size;
use bands::BandTable;
use format::{ArticleRecord, Meta, StoredVerdict};
use log::Log;
pub use log::{Syncer, Written};

/// Whether an index is opened to write or only to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Shared with any other readers and one writer; sees what was committed at opening.
    Read,
    /// The one writer: takes the index's lock.
    Write,
}

/// What an article is, compared with the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerdictKind {
    /// No indexed article is similar enough.
    New,
    /// A near-copy of an indexed article (at the `copy` level).
    Duplicate,
}

impl VerdictKind {
    /// The name used in output.
    pub fn name(self) -> &'static str {
        match self {
            VerdictKind::New => "new",
            VerdictKind::Duplicate => "duplicate",
        }
    }
}

/// An indexed article similar to the one checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Match {
    /// Its id.
    pub id: String,
    /// Exact Jaccard similarity of the shingle sets.
    pub score: f32,
    /// Fraction of equal MinHash slots.
    pub estimated: f32,
    /// Its cluster id.
    pub cluster: String,
}

/// The verdict on one article.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// The article's id.
    pub id: String,
    /// New or duplicate.
    pub kind: VerdictKind,
    /// Every indexed article at or above the threshold, best first (highest score, then
    /// the earliest added). For an article that was already indexed, only its stored best
    /// match.
    pub matches: Vec<Match>,
    /// The article's cluster: its best match's, or its own id when new.
    pub cluster: String,
    /// The article was already in the index and this is the verdict it got then.
    pub already_indexed: bool,
}

impl Verdict {
    /// The best match.
    pub fn best(&self) -> Option<&Match> {
        self.matches.first()
    }
}

/// Counts describing an index.
#[derive(Clone, Debug)]
pub struct IndexStats {
    /// The settings it was created with.
    pub settings: IndexSettings,
    /// Generation of the article log (incremented by each compaction that removes articles).
    pub generation: u64,
    /// Articles indexed.
    pub articles: u64,
    /// Of which were new when added.
    pub new: u64,
    /// Of which were duplicates when added.
    pub duplicates: u64,
    /// Clusters with at least one duplicate.
    pub clusters_with_duplicates: u64,
    /// Articles older than the window (removed by the next compaction).
    pub expired: u64,
    /// Oldest and newest article time (seconds since the epoch).
    pub time_range: Option<(i64, i64)>,
    /// The clock the window is measured against.
    pub clock: i64,
    /// Bytes of the index's files.
    pub disk_bytes: u64,
    /// Approximate bytes of memory held by the open index.
    pub memory_bytes: u64,
    /// Bytes of an unfinished write (left by a crash) that were ignored or cut off at opening.
    pub recovered_tail_bytes: u64,
}

/// What a compaction did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Articles removed (older than the window).
    pub removed: u64,
    /// Articles kept.
    pub kept: u64,
    /// Bytes of the article log before and after.
    pub log_bytes: (u64, u64),
}

/// Where each article's record is and when it was published.
#[derive(Debug, Default)]
struct Docs {
    offsets: Vec<u64>,
    lens: Vec<u32>,
    times: Vec<i64>,
}

/// Ids to articles without keeping a second copy of every id.
#[derive(Debug, Default)]
struct IdIndex {
    first: HashMap<u64, u32>,
    /// Ids whose 64-bit hash equals an earlier, different id's.
    collided: HashMap<Box<str>, u32>,
}

/// Reusable buffers of one query.
#[derive(Debug, Default)]
struct Scratch {
    keys: Vec<u64>,
    ranges: Vec<(u32, u32)>,
    bucket: Vec<u32>,
    hits: Vec<(u32, u16)>,
    record: Vec<u8>,
    signature: Vec<u32>,
    set: Vec<u64>,
    signature_bytes: Vec<u8>,
    set_bytes: Vec<u8>,
}

/// A feed index, open for reading or writing.
#[derive(Debug)]
pub struct FeedIndex {
    dir: PathBuf,
    settings: IndexSettings,
    pipeline: Settings,
    generation: u64,
    log: Log,
    docs: Docs,
    ids: IdIndex,
    bands: Vec<BandTable>,
    lock: Option<File>,
    new: u64,
    duplicates: u64,
    clusters: HashSet<u64>,
    newest: Option<i64>,
    oldest: Option<i64>,
    recovered_tail: u64,
    scratch: Scratch,
}

impl IndexSettings {
    /// Index settings from a built pipeline's (shingles, slots, seed, threshold, LSH
    /// banding and bucket cap), with a level and an optional window in seconds.
    pub fn new(pipeline: &Settings, level: Level, window: Option<u64>) -> Result<IndexSettings> {
        if window == Some(0) {
            return Err(Error::config("the window must be longer than 0 seconds"));
        }
        if pipeline.bucket_cap > u32::MAX as usize {
            return Err(Error::config("bucket-cap is too large"));
        }
        Ok(IndexSettings {
            level,
            shingle: pipeline.shingle,
            num_perm: pipeline.num_perm,
            seed: pipeline.seed,
            threshold: pipeline.threshold,
            lsh: pipeline.lsh,
            bucket_cap: pipeline.bucket_cap,
            window,
        })
    }

    /// The pipeline settings that fingerprint and compare articles the same way.
    pub fn pipeline(&self) -> Result<Settings> {
        Ok(PipelineBuilder::new()
            .shingle(self.shingle)
            .num_perm(self.num_perm)
            .seed(self.seed)
            .threshold(self.threshold)
            .lsh(Some(self.lsh.bands), Some(self.lsh.rows))
            .bucket_cap(self.bucket_cap)
            .build()?
            .settings()
            .clone())
    }
}

fn index_error(dir: &Path, reason: impl Into<String>) -> Error {
    ErrorKind::Index {
        path: dir.to_path_buf(),
        reason: reason.into(),
    }
    .into()
}

fn io_error(dir: &Path, doing: &str, e: io::Error) -> Error {
    Error::io(format!("{doing} in index {}", dir.display()), e)
}

impl FeedIndex {
    /// Creates an empty index in `dir` (which must not exist or be empty).
    pub fn create(dir: &Path, settings: &IndexSettings) -> Result<()> {
        settings.pipeline()?; // the same checks as a batch run
        let occupied = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
        if occupied {
            return Err(index_error(
                dir,
                "already exists and is not empty; an index is created in a new or empty directory",
            ));
        }
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, "creating the directory", e))?;
        let meta = Meta {
            generation: 0,
            settings: settings.clone(),
            fingerprint_check: probe_check(&settings.pipeline()?),
        };
        log::create(&dir.join(format::log_file_name(0)), 0)
            .map_err(|e| io_error(dir, "creating the article log", e))?;
        log::write_atomically(dir, format::META_FILE, &format::encode_meta(&meta))
            .map_err(|e| io_error(dir, "writing index.meta", e))?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            log::sync_dir(parent).map_err(|e| io_error(dir, "syncing the parent directory", e))?;
        }
        Ok(())
    }

    /// Opens the index in `dir`. Reading the article log is reported to `observer` as
    /// [`Stage::Read`] (in bytes).
    pub fn open(dir: &Path, access: Access, observer: &dyn Observer) -> Result<FeedIndex> {
        if !dir.join(format::META_FILE).is_file() {
            return Err(index_error(
                dir,
                "is not a neardup index (it has no index.meta); create one first",
            ));
        }
        let lock = match access {
            Access::Read => None,
            Access::Write => Some(take_lock(dir)?),
        };
        // A compaction may replace the log between reading index.meta and opening the
        // log it names: a reader then tries again with the new index.meta.
        let mut attempts = 0;
        loop {
            let meta = read_meta(dir)?;
            let path = dir.join(format::log_file_name(meta.generation));
            let file = File::options()
                .read(true)
                .write(access == Access::Write)
                .open(&path);
            match file {
                Ok(file) => return Self::load(dir, meta, path, file, lock, observer),
                Err(e) if e.kind() == io::ErrorKind::NotFound && lock.is_none() && attempts < 5 => {
                    attempts += 1;
                }
                Err(e) => return Err(io_error(dir, "opening the article log", e)),
            }
        }
    }

    fn load(
        dir: &Path,
        meta: Meta,
        path: PathBuf,
        file: File,
        lock: Option<File>,
        observer: &dyn Observer,
    ) -> Result<FeedIndex> {
        let settings = meta.settings;
        let pipeline = settings
            .pipeline()
            .map_err(|e| index_error(dir, format!("index.meta holds invalid settings: {e}")))?;
        if probe_check(&pipeline) != meta.fingerprint_check {
            return Err(index_error(
                dir,
                "was built by a version of neardup that fingerprints texts differently (its \
                 tokenizer, shingles or sketch changed), so its verdicts would be wrong; \
                 rebuild it by adding the articles to a new index",
            ));
        }
        if lock.is_some() {
            remove_stale_files(dir, meta.generation);
        }
        let lsh = settings.lsh;
        let mut index = FeedIndex {
            dir: dir.to_path_buf(),
            settings: settings.clone(),
            pipeline,
            generation: meta.generation,
            log: Log::open_read(
                &path,
                file.try_clone()
                    .map_err(|e| io_error(dir, "opening the article log", e))?,
                0,
            ),
            docs: Docs::default(),
            ids: IdIndex::default(),
            bands: Vec::new(),
            lock: None,
            new: 0,
            duplicates: 0,
            clusters: HashSet::new(),
            newest: None,
            oldest: None,
            recovered_tail: 0,
            scratch: Scratch::default(),
        };
        let mut entries: Vec<Vec<u64>> = vec![Vec::new(); lsh.bands];
        let mut collisions: Vec<(u32, u64)> = Vec::new();
        let mut signature = Vec::new();
        let total = file.metadata().map(|m| m.len()).ok();
        observer.stage_started(Stage::Read, total);
        let mut on_bytes = |n| observer.advanced(Stage::Read, n);
        let scanned = log::scan(
            &file,
            meta.generation,
            &mut on_bytes,
            |offset: u64, payload: &[u8]| {
                let record = format::decode_article(payload, settings.num_perm)
                    .map_err(|e| format!("record at byte {offset}: {e}"))?;
                let doc = index.docs.offsets.len() as u32;
                index.docs.offsets.push(offset);
                index
                    .docs
                    .lens
                    .push((payload.len() + format::FRAME_HEADER_BYTES) as u32);
                index.docs.times.push(record.time);
                index.note_time(record.time);
                let key = xxh3_64(record.id.as_bytes());
                if index.ids.first.insert(key, doc).is_some_and(|earlier| {
                    // Keep the earlier article under this hash; sort it out below.
                    index.ids.first.insert(key, earlier);
                    true
                }) {
                    collisions.push((doc, key));
                }
                index.count_verdict(&record);
                record.signature_into(&mut signature);
                for (band, list) in entries.iter_mut().enumerate() {
                    let fp = band_key(&signature, lsh, band) >> 32;
                    list.push((fp << 32) | u64::from(doc));
                }
                Ok(())
            },
        );
        observer.stage_finished(Stage::Read);
        let end = scanned.map_err(|e| index_error(dir, format!("{}: {e}", path.display())))?;
        index.recovered_tail = end.tail();
        index.log = match lock {
            Some(_) => Log::open_write(&path, file, &end).map_err(|e| index_error(dir, e))?,
            None => Log::open_read(&path, file, end.valid_len),
        };
        index.lock = lock;
        for (doc, key) in collisions {
            let id = index.record_id(doc)?;
            let earlier = index.ids.first[&key];
            if index.record_id(earlier)? != id {
                index.ids.collided.entry(id.into()).or_insert(doc);
            }
        }
        index.bands = entries
            .into_par_iter()
            .map(BandTable::from_entries)
            .collect();
        Ok(index)
    }

    fn note_time(&mut self, time: i64) {
        self.newest = Some(self.newest.map_or(time, |t| t.max(time)));
        self.oldest = Some(self.oldest.map_or(time, |t| t.min(time)));
    }

    fn count_verdict(&mut self, record: &ArticleRecord<'_>) {
        match record.verdict {
            StoredVerdict::New => self.new += 1,
            StoredVerdict::Duplicate => {
                self.duplicates += 1;
                self.clusters.insert(xxh3_64(record.cluster.as_bytes()));
            }
        }
    }

    /// The index's settings.
    pub fn settings(&self) -> &IndexSettings {
        &self.settings
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Number of articles indexed.
    pub fn len(&self) -> usize {
        self.docs.offsets.len()
    }

    /// Whether no article is indexed.
    pub fn is_empty(&self) -> bool {
        self.docs.offsets.is_empty()
    }

    /// A fingerprinter with this index's settings (one per thread).
    pub fn fingerprinter(&self) -> Fingerprinter {
        Fingerprinter::new(&self.pipeline)
    }

    /// The time the window is measured against for compaction: the newest article's,
    /// but never later than now.
    pub fn clock(&self) -> i64 {
        let now = now();
        self.newest.map_or(now, |t| t.min(now))
    }

    fn record<'a>(
        log: &'a Log,
        docs: &Docs,
        doc: u32,
        buf: &'a mut Vec<u8>,
        num_perm: usize,
    ) -> Result<ArticleRecord<'a>> {
        let payload = log
            .read(docs.offsets[doc as usize], docs.lens[doc as usize], buf)
            .map_err(|e| Error::io(format!("reading {}", log.path().display()), e))?;
        format::decode_article(payload, num_perm).map_err(|e| {
            Error::io(
                format!("reading {}", log.path().display()),
                io::Error::new(io::ErrorKind::InvalidData, e),
            )
        })
    }

    fn record_id(&self, doc: u32) -> Result<String> {
        let mut buf = Vec::new();
        let r = Self::record(&self.log, &self.docs, doc, &mut buf, self.settings.num_perm)?;
        Ok(r.id.to_string())
    }

    /// The article with this id, if indexed.
    fn find(&self, id: &str) -> Result<Option<u32>> {
        let key = xxh3_64(id.as_bytes());
        let Some(&doc) = self.ids.first.get(&key) else {
            return Ok(None);
        };
        if self.record_id(doc)? == id {
            return Ok(Some(doc));
        }
        Ok(self.ids.collided.get(id).copied())
    }

    /// Whether an article with this id is indexed.
    pub fn contains(&self, id: &str) -> Result<bool> {
        Ok(self.find(id)?.is_some())
    }

    /// Every indexed article similar to `article` (at or above the threshold, within the
    /// window), best first. `keys` holds the article's band keys.
    fn matches(&self, article: &Article, scratch: &mut Scratch) -> Result<Vec<Match>> {
        let lsh = self.settings.lsh;
        let signature = &article.fingerprint.signature;
        scratch.keys.clear();
        scratch
            .keys
            .extend((0..lsh.bands).map(|b| band_key(signature, lsh, b)));
        let min_time = self
            .settings
            .window
            .map(|w| article.time.saturating_sub(w.min(i64::MAX as u64) as i64));
        // Candidates: articles sharing a band's key fingerprint, newest `cap − 1` per
        // bucket (as the batch pipeline limits oversized buckets).
        let keep = self.settings.bucket_cap.saturating_sub(1).max(1);
        scratch.hits.clear();
        // Memory-level parallelism: every band's directory slot, then every band's first
        // base entry, are loaded before any band is scanned (each is a likely cache miss).
        scratch.ranges.clear();
        scratch.ranges.extend(
            (self.bands.iter().zip(&scratch.keys)).map(|(t, &k)| t.base_range((k >> 32) as u32)),
        );
        let touched = (self.bands.iter().zip(&scratch.ranges)).fold(0, |x, (t, &r)| x ^ t.touch(r));
        std::hint::black_box(touched);
        for (band, &key) in scratch.keys.iter().enumerate() {
            scratch.bucket.clear();
            self.bands[band].lookup_in(
                (key >> 32) as u32,
                scratch.ranges[band],
                &mut scratch.bucket,
            );
            if let Some(min) = min_time {
                let times = &self.docs.times;
                scratch.bucket.retain(|&d| times[d as usize] >= min);
            }
            let from = scratch.bucket.len().saturating_sub(keep);
            scratch
                .hits
                .extend(scratch.bucket[from..].iter().map(|&d| (d, band as u16)));
        }
        scratch.hits.sort_unstable();
        let set = &article.fingerprint.set;
        let threshold = self.settings.threshold as f32;
        let mut found: Vec<(u32, Match)> = Vec::new();
        for group in scratch.hits.chunk_by(|a, b| a.0 == b.0) {
            let doc = group[0].0;
            let record = Self::record(
                &self.log,
                &self.docs,
                doc,
                &mut scratch.record,
                self.settings.num_perm,
            )?;
            // Confirm on the full band key: the fingerprint is only its high 32 bits.
            record.signature_into(&mut scratch.signature);
            let confirmed = group.iter().any(|&(_, band)| {
                band_key(&scratch.signature, lsh, band as usize) == scratch.keys[band as usize]
            });
            if !confirmed {
                continue;
            }
            record.set_into(&mut scratch.set);
            // The same arithmetic as the batch pipeline's verification.
            let common = intersection_size(set, &scratch.set) as f64;
            let union = (set.len() + scratch.set.len()) as f64 - common;
            let jaccard = if union > 0.0 {
                (common / union) as f32
            } else {
                0.0
            };
            if jaccard >= threshold {
                found.push((
                    doc,
                    Match {
                        id: record.id.to_string(),
                        score: jaccard,
                        estimated: estimate_jaccard(signature, &scratch.signature) as f32,
                        cluster: record.cluster.to_string(),
                    },
                ));
            }
        }
        found.sort_by(|(da, a), (db, b)| b.score.total_cmp(&a.score).then(da.cmp(db)));
        Ok(found.into_iter().map(|(_, m)| m).collect())
    }

    fn stored_verdict(&mut self, doc: u32) -> Result<Verdict> {
        let r = Self::record(
            &self.log,
            &self.docs,
            doc,
            &mut self.scratch.record,
            self.settings.num_perm,
        )?;
        let matches = match r.verdict {
            StoredVerdict::New => Vec::new(),
            StoredVerdict::Duplicate => vec![Match {
                id: r.best_match.to_string(),
                score: r.score,
                estimated: r.estimated,
                cluster: r.cluster.to_string(),
            }],
        };
        Ok(Verdict {
            id: r.id.to_string(),
            kind: match r.verdict {
                StoredVerdict::New => VerdictKind::New,
                StoredVerdict::Duplicate => VerdictKind::Duplicate,
            },
            matches,
            cluster: r.cluster.to_string(),
            already_indexed: true,
        })
    }

    /// The verdict on `article` without adding it. An article whose id is already indexed
    /// gets the verdict it was given when added.
    pub fn query(&mut self, article: &Article) -> Result<Verdict> {
        if let Some(doc) = self.find(&article.id)? {
            return self.stored_verdict(doc);
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let matches = self.matches(article, &mut scratch);
        self.scratch = scratch;
        Ok(verdict(article, matches?))
    }

    /// Decides on `article` and adds it; `None` if an article with its id is already
    /// indexed (nothing is added). The article is durable after the next
    /// [`FeedIndex::commit`] (which also happens by itself when much is pending).
    pub fn add(&mut self, article: &Article) -> Result<Option<Verdict>> {
        self.writable()?;
        if self.find(&article.id)?.is_some() {
            return Ok(None);
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let matches = self.matches(article, &mut scratch);
        let verdict = match matches {
            Ok(m) => verdict(article, m),
            Err(e) => {
                self.scratch = scratch;
                return Err(e);
            }
        };
        let best = verdict.best();
        let fp = &article.fingerprint;
        scratch.signature_bytes.clear();
        scratch
            .signature_bytes
            .extend(fp.signature.iter().flat_map(|x| x.to_le_bytes()));
        scratch.set_bytes.clear();
        scratch
            .set_bytes
            .extend(fp.set.iter().flat_map(|x| x.to_le_bytes()));
        let record = ArticleRecord {
            dated: article.dated,
            verdict: match verdict.kind {
                VerdictKind::New => StoredVerdict::New,
                VerdictKind::Duplicate => StoredVerdict::Duplicate,
            },
            score: best.map_or(0.0, |m| m.score),
            estimated: best.map_or(0.0, |m| m.estimated),
            time: article.time,
            text_bytes: article.text_bytes,
            tokens: fp.tokens.min(u32::MAX as usize) as u32,
            signature: &scratch.signature_bytes,
            set: &scratch.set_bytes,
            id: &article.id,
            best_match: best.map_or("", |m| m.id.as_str()),
            cluster: &verdict.cluster,
        };
        let (offset, len) = self.log.append(|out| format::encode_article(out, &record));
        self.count_verdict(&record);
        let doc = self.docs.offsets.len() as u32;
        self.docs.offsets.push(offset);
        self.docs.lens.push(len);
        self.docs.times.push(article.time);
        self.note_time(article.time);
        let key = xxh3_64(article.id.as_bytes());
        if let Some(earlier) = self.ids.first.insert(key, doc) {
            self.ids.first.insert(key, earlier);
            self.ids.collided.insert(article.id.as_str().into(), doc);
        }
        for (band, &key) in scratch.keys.iter().enumerate() {
            self.bands[band].insert((key >> 32) as u32, doc);
        }
        // At most one band merges its delta per addition, to spread the cost.
        if let Some(table) = self.bands.iter_mut().find(|t| t.wants_merge()) {
            table.merge();
        }
        self.scratch = scratch;
        if self.log.pending_bytes() >= log::MAX_GROUP_BYTES {
            self.commit()?;
        }
        Ok(Some(verdict))
    }

    fn writable(&self) -> Result<()> {
        if self.lock.is_none() {
            return Err(index_error(&self.dir, "was opened for reading only"));
        }
        Ok(())
    }

    /// Writes the articles added so far to the log and returns what makes them durable:
    /// call [`Syncer::sync`] (on any thread) before acknowledging them. Adding may go on
    /// meanwhile. [`FeedIndex::commit`] does both at once.
    pub fn write(&mut self) -> Result<Syncer> {
        self.log
            .write()
            .map_err(|e| io_error(&self.dir, "writing the article log", e))
    }

    /// Makes every article added so far durable: writes them and syncs the log.
    pub fn commit(&mut self) -> Result<()> {
        self.log
            .commit()
            .map_err(|e| io_error(&self.dir, "writing the article log", e))
    }

    /// Counts describing the index.
    pub fn stats(&self) -> IndexStats {
        let clock = self.clock();
        let expired = match self.settings.window {
            Some(w) => {
                let cutoff = clock.saturating_sub(w.min(i64::MAX as u64) as i64);
                self.docs.times.iter().filter(|&&t| t < cutoff).count() as u64
            }
            None => 0,
        };
        let disk_bytes = std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.metadata().ok())
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        let memory = self.bands.iter().map(BandTable::heap_bytes).sum::<usize>()
            + self.docs.offsets.capacity() * 8
            + self.docs.lens.capacity() * 4
            + self.docs.times.capacity() * 8
            + self.ids.first.capacity() * 13
            + self.clusters.capacity() * 9;
        IndexStats {
            settings: self.settings.clone(),
            generation: self.generation,
            articles: self.len() as u64,
            new: self.new,
            duplicates: self.duplicates,
            clusters_with_duplicates: self.clusters.len() as u64,
            expired,
            time_range: self.oldest.zip(self.newest),
            clock,
            disk_bytes,
            memory_bytes: memory as u64,
            recovered_tail_bytes: self.recovered_tail,
        }
    }

    /// Removes the articles older than the window (see the module documentation) by
    /// writing a new generation of the log. Without a window, nothing is removed. A crash
    /// at any point leaves either the old or the new generation in force.
    pub fn compact(&mut self, observer: &dyn Observer) -> Result<CompactReport> {
        self.writable()?;
        self.commit()?;
        let before = self.log.len();
        let Some(window) = self.settings.window else {
            return Ok(CompactReport {
                removed: 0,
                kept: self.len() as u64,
                log_bytes: (before, before),
            });
        };
        let cutoff = self
            .clock()
            .saturating_sub(window.min(i64::MAX as u64) as i64);
        let keep: Vec<u32> = (0..self.len() as u32)
            .filter(|&d| self.docs.times[d as usize] >= cutoff)
            .collect();
        let removed = (self.len() - keep.len()) as u64;
        if removed == 0 {
            return Ok(CompactReport {
                removed,
                kept: keep.len() as u64,
                log_bytes: (before, before),
            });
        }
        let dir = self.dir.clone();
        let generation = self.generation + 1;
        let path = dir.join(format::log_file_name(generation));
        let _ = std::fs::remove_file(&path); // an earlier compaction's unfinished try
        log::create(&path, generation).map_err(|e| io_error(&dir, "creating the new log", e))?;
        let file = File::options()
            .append(true)
            .open(&path)
            .map_err(|e| io_error(&dir, "opening the new log", e))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let mut buf = Vec::new();
        for &doc in &keep {
            let frame = self
                .log
                .read_frame(
                    self.docs.offsets[doc as usize],
                    self.docs.lens[doc as usize],
                    &mut buf,
                )
                .map_err(|e| io_error(&dir, "reading the article log", e))?;
            out.write_all(frame)
                .map_err(|e| io_error(&dir, "writing the new log", e))?;
        }
        let file = out
            .into_inner()
            .map_err(|e| io_error(&dir, "writing the new log", e.into_error()))?;
        file.sync_all()
            .map_err(|e| io_error(&dir, "syncing the new log", e))?;
        let after = file.metadata().map(|m| m.len()).unwrap_or(0);
        drop(file);
        let meta = Meta {
            generation,
            settings: self.settings.clone(),
            fingerprint_check: probe_check(&self.pipeline),
        };
        // The switch: until this rename, the old generation is in force.
        log::write_atomically(&dir, format::META_FILE, &format::encode_meta(&meta))
            .map_err(|e| io_error(&dir, "writing index.meta", e))?;
        let _ = std::fs::remove_file(self.log.path());
        let file = File::options()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| io_error(&dir, "opening the new log", e))?;
        let lock = self.lock.take();
        *self = Self::load(&dir, meta, path, file, lock, observer)?;
        Ok(CompactReport {
            removed,
            kept: keep.len() as u64,
            log_bytes: (before, after),
        })
    }
}

fn verdict(article: &Article, matches: Vec<Match>) -> Verdict {
    let (kind, cluster) = match matches.first() {
        Some(best) => (VerdictKind::Duplicate, best.cluster.clone()),
        None => (VerdictKind::New, article.id.clone()),
    };
    Verdict {
        id: article.id.clone(),
        kind,
        matches,
        cluster,
        already_indexed: false,
    }
}

/// The fingerprint check of these settings (see [`Meta::fingerprint_check`]).
fn probe_check(pipeline: &Settings) -> u64 {
    format::fingerprint_check(
        Fingerprinter::new(pipeline)
            .fingerprint(format::PROBE_TEXT)
            .as_ref(),
    )
}

fn read_meta(dir: &Path) -> Result<Meta> {
    let mut bytes = Vec::new();
    File::open(dir.join(format::META_FILE))
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| io_error(dir, "reading index.meta", e))?;
    format::decode_meta(&bytes).map_err(|e| index_error(dir, e))
}

/// Takes the writer's lock, or says who holds it.
fn take_lock(dir: &Path) -> Result<File> {
    let path = dir.join(format::LOCK_FILE);
    let mut file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| io_error(dir, "opening the lock file", e))?;
    // A process forked by this one between our closing an earlier handle and its exec
    // holds the lock for a moment: try a few times before saying it is taken.
    let mut locked = try_lock(&file);
    for wait_ms in [5, 20, 50, 100, 200] {
        if !matches!(locked, Ok(false)) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(wait_ms));
        locked = try_lock(&file);
    }
    match locked {
        Ok(true) => {}
        Ok(false) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let who = if holder.is_empty() {
                "another process".to_string()
            } else {
                format!("another process (pid {holder})")
            };
            return Err(index_error(
                dir,
                format!(
                    "is open for writing by {who}; only one process may add to an index at a time (queries and stats can run alongside)"
                ),
            ));
        }
        Err(e) => return Err(io_error(dir, "locking the index", e)),
    }
    // Who holds the lock, for the message above; not needed for correctness.
    let _ = file
        .set_len(0)
        .and_then(|()| file.write_all(std::process::id().to_string().as_bytes()));
    Ok(file)
}

/// Takes an exclusive advisory lock without waiting: `Ok(false)` if another process
/// holds it. The lock is released when the file is closed, or the process dies.
#[cfg(unix)]
fn try_lock(file: &File) -> io::Result<bool> {
    use rustix::fs::{FlockOperation, flock};
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(unix))]
#[allow(clippy::incompatible_msrv)] // elsewhere the lock needs Rust 1.89's File::try_lock
fn try_lock(file: &File) -> io::Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Removes logs of other generations and temporary files left by an interrupted
/// compaction or meta update.
fn remove_stale_files(dir: &Path, generation: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let stale_log = format::parse_log_file_name(name).is_some_and(|g| g != generation);
        if stale_log || name.starts_with(".tmp") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod golden {
    //! The on-disk format is pinned by a small index written by format version 1 and kept
    //! in `tests/golden/feed-index-v1`: it must decode to the values below and re-encode
    //! to the same bytes. (Signatures are not compared: they pin the sketch, not the
    //! format; a changed fingerprint algorithm is caught by the fingerprint check.) After
    //! a deliberate format change, bump [`FORMAT_VERSION`], move the golden index to a new
    //! directory and regenerate it with `NEARDUP_UPDATE_GOLDEN=1 cargo test golden`.

    use super::*;
    use crate::progress::Silent;

    const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/feed-index-v1");
    const T0: i64 = 1_700_000_000;
    const ARTICLES: [(&str, &str); 4] = [
        (
            "rate-1",
            "The central bank raised its benchmark interest rate by half a point on Tuesday, \
             the third increase this year, saying inflation remained far above its target.",
        ),
        (
            "storm-1",
            "A powerful storm closed schools and roads across the northern region for a \
             second day, leaving thousands of homes without electricity.",
        ),
        (
            "rate-2",
            "The central bank raised its benchmark interest rate by half a point on Tuesday, \
             the third increase this year, saying inflation remained well above its target.",
        ),
        (
            "storm-2",
            "A powerful storm closed schools and roads across the northern region for a \
             second day, leaving thousands of homes without power.",
        ),
    ];

    fn settings() -> IndexSettings {
        let pipeline = PipelineBuilder::new()
            .num_perm(16)
            .threshold(0.5)
            .build()
            .unwrap();
        IndexSettings::new(pipeline.settings(), Level::Copy, Some(30 * 86_400)).unwrap()
    }

    fn build(dir: &Path) {
        FeedIndex::create(dir, &settings()).unwrap();
        let mut index = FeedIndex::open(dir, Access::Write, &Silent).unwrap();
        let mut f = index.fingerprinter();
        for (i, (id, text)) in ARTICLES.into_iter().enumerate() {
            let line = serde_json::json!({"id": id, "text": text, "date": T0 + i as i64});
            let article = Article::from_json(&line.to_string(), &Default::default(), &mut f, 0);
            index.add(&article.unwrap()).unwrap();
        }
        index.commit().unwrap();
    }

    #[test]
    fn golden_index_decodes_to_known_values_and_reencodes_byte_for_byte() {
        let golden = Path::new(GOLDEN);
        if std::env::var_os("NEARDUP_UPDATE_GOLDEN").is_some() {
            let _ = std::fs::remove_dir_all(golden);
            build(golden);
            std::fs::remove_file(golden.join(format::LOCK_FILE)).unwrap();
        }
        let meta_bytes = std::fs::read(golden.join(format::META_FILE)).unwrap();
        let meta = format::decode_meta(&meta_bytes).unwrap();
        assert_eq!((meta.generation, &meta.settings), (0, &settings()));
        assert_eq!(format::encode_meta(&meta), meta_bytes);

        let log = std::fs::read(golden.join(format::log_file_name(0))).unwrap();
        format::check_log_header(&log, 0).unwrap();
        let mut at = format::LOG_HEADER_BYTES as usize;
        let mut seen = Vec::new();
        while at < log.len() {
            let header: [u8; 8] = log[at..at + 8].try_into().unwrap();
            let end = at + 8 + format::frame_payload_len(&header) as usize;
            let payload = &log[at + 8..end];
            assert!(format::frame_is_intact(&header, payload));
            let r = format::decode_article(payload, 16).unwrap();
            let mut set = Vec::new();
            r.set_into(&mut set);
            assert!(!set.is_empty() && set.windows(2).all(|w| w[0] < w[1]));
            assert_eq!(r.text_bytes as usize, ARTICLES[seen.len()].1.len());
            let mut again = Vec::new();
            format::encode_article(&mut again, &r);
            assert_eq!(
                again,
                &log[at..end],
                "record {} re-encodes differently",
                r.id
            );
            seen.push((
                r.id.to_string(),
                r.verdict,
                r.best_match.to_string(),
                r.cluster.to_string(),
                r.time,
                r.dated,
            ));
            at = end;
        }
        let (new, dup) = (StoredVerdict::New, StoredVerdict::Duplicate);
        let expected = [
            ("rate-1", new, "", "rate-1"),
            ("storm-1", new, "", "storm-1"),
            ("rate-2", dup, "rate-1", "rate-1"),
            ("storm-2", dup, "storm-1", "storm-1"),
        ];
        assert_eq!(seen.len(), expected.len());
        for (i, (got, want)) in seen.iter().zip(expected).enumerate() {
            assert_eq!(
                (
                    got.0.as_str(),
                    got.1,
                    got.2.as_str(),
                    got.3.as_str(),
                    got.4,
                    got.5
                ),
                (want.0, want.1, want.2, want.3, T0 + i as i64, true)
            );
        }
    }

    #[test]
    fn an_index_fingerprinted_differently_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().join("idx");
        build(&dir);
        assert_eq!(
            FeedIndex::open(&dir, Access::Read, &Silent).unwrap().len(),
            4
        );
        let mut meta = read_meta(&dir).unwrap();
        meta.fingerprint_check ^= 1;
        std::fs::write(dir.join(format::META_FILE), format::encode_meta(&meta)).unwrap();
        let e = FeedIndex::open(&dir, Access::Read, &Silent).unwrap_err();
        assert!(
            e.to_string().contains("fingerprints texts differently"),
            "{e}"
        );
    }
}
