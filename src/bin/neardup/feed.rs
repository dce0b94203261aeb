//! `neardup index …` and `neardup watch`: the persistent feed index.

use std::io::{self, BufRead, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use neardup::PipelineBuilder;
use neardup::feed::{
    self, Access, Article, Compaction, FeedIndex, IgnoredDate, IndexSettings, IngestMode,
    IngestOptions, Level, RejectedRecord, StatsRecord, Verdict, VerdictKind, VerdictRecord,
};
use neardup::input::{FieldNames, InputFormat, InputSpec, ReadLimits};
use neardup::report::{Format, count};
use serde::Serialize;

use crate::args::{
    InputArgs, InputFormatArg, ProgressArg, SimilarityArgs, parse_probability, parse_size,
    parse_threshold,
};
use crate::progress::Terminal;

const INDEX_EXAMPLES: &str = "\
Examples:
  neardup index create news.idx --threshold 0.8 --window 7d
  neardup stats count archive.jsonl -o archive.stats
  neardup index create stories.idx --level story --stats archive.stats --window 3d
  neardup index add news.idx archive.jsonl.gz > verdicts.jsonl
  neardup index query news.idx today.jsonl --all-matches
  neardup index stats news.idx --format table
  neardup index export news.idx --clusters       every cluster of 2 or more, with its ids
  neardup index compact news.idx                 drop articles older than the window
  neardup index remove news.idx id-17 id-42      take articles out for good (a takedown)
  neardup index repair news.idx                  keep the intact articles of a damaged index
  scraper | neardup watch news.idx | consumer    one verdict line per article, at once

A verdict is one JSON line: {\"schema_version\":1,\"id\":\"b\",\"verdict\":\"duplicate\",
\"match\":\"a\",\"score\":0.9123,\"cluster\":\"a\"}, or \"verdict\":\"new\" with \"match\" and
\"score\" null and the article's own id as its cluster. The score is the exact Jaccard
similarity of the shingle sets; a duplicate joins its best match's cluster, whose id
never changes. An article whose date is not used (unparsable, or more than a day after
now) says so: \"date_ignored\":{\"value\":\"next tuesday\",\"reason\":\"unparsable\"}.

Levels (fixed at 'index create --level'): copy says duplicate for near-copies only.
story says duplicate for near-copies as copy does, and otherwise rewrite when an indexed
article tells the same story in other words, decided as 'neardup pairs --level story'
decides: {\"verdict\":\"rewrite\",\"match\":\"a\",\"score\":0.87,\"kind\":\"update\",\"cluster\":\"a\"},
where the score is the story model's probability and the kind the batch pair kind (copy,
update or rewrite). Story scores weigh words by their rarity: give the statistics of a
representative corpus with --stats (written by 'neardup stats count', or by 'neardup
cluster --level story --stats-out'); without it, each article is scored against the
statistics of the articles indexed before it (weak for the first few hundred articles).

An index is a directory: settings are fixed when it is created, and every later command
uses them. Verdicts are printed only once the articles are safely stored ('index add'
syncs them to disk; 'watch' and 'serve' as their '--durability' says): an acknowledged
article survives kill -9 or any crash of neardup, and a crash never corrupts the index.
One process may write to an index at a time
(add, remove, compact, repair, watch, serve); queries and stats can run alongside it.";

/// `--date-field` of 'index add' and 'index query' (the batch commands' help speaks of
/// their own uses).
const DATE_FIELD_HELP: &str = concat!(
    "JSON field holding the date: ",
    date_forms!(),
    ". For the window, an article without a usable date (none, in no such form, or more \
     than a day after now: a mistake) matches at any distance, and is stored at the newest \
     date indexed, or its arrival time while none is, for compaction; its verdict says why \
     (\"date_ignored\")"
);

const WATCH_HELP: &str = "\
Reads JSON Lines articles from standard input and, for each one, writes its verdict as
soon as it is decided and the article is safely stored; then the article is in the
index. Safely stored means, by default, handed to the operating system: it survives
kill -9 and any crash of neardup, and the index is synced to disk every 100 ms; with
--durability disk it is synced to disk (fsync) first, which also survives a power loss
but makes each verdict wait for the disk. Articles that arrive together are committed
together. Lines that cannot be checked (malformed JSON, no text, an id already indexed
with other text, too long) get a line with \"verdict\":\"rejected\", their line number and
the reason, so output lines pair with input lines (blank input lines are skipped). An
article re-sent with the same text (the same id and shingles) is not added again: it
gets the verdict it was given the first time, with \"indexed\":true. A gzip or zstd stream
is decompressed as it arrives; one that breaks off ends watch with exit status 1, after
what came before it was stored.

The verdict is new, or duplicate with the best near-copy, its exact Jaccard and the
cluster id; an index created with '--level story' also says rewrite for an article that
tells the story of an indexed one in other words, with the best match, the story
model's probability as its score, the pair kind (copy, update or rewrite, as
'neardup pairs --level story') and the cluster id. At the story level, a record's
\"title\" field counts with its text, as in the batch story level.

Stops cleanly at the end of input or on SIGINT/SIGTERM: articles already read are
decided, committed and answered first (a second signal exits at once). A summary with
verdict latency (reading a line to writing its verdict) goes to standard error.

Examples:
  tail -F scraped.jsonl | neardup watch news.idx >> verdicts.jsonl
  scraper | neardup watch news.idx | jq -c 'select(.verdict == \"new\")'
  neardup index create stories.idx --level story --stats archive.stats --window 3d
  scraper | neardup watch stories.idx | jq -c 'select(.verdict != \"rewrite\")'";

/// `index create --bucket-cap`: an index pairs an over-full bucket otherwise than a batch.
const INDEX_BUCKET_CAP_HELP: &str = "LSH buckets larger than this are not expanded into all \
their pairs: a new article is compared with the bucket's newest N-1 members instead (a \
batch run pairs each member with its next N-1 in id order)";

#[derive(Debug, Args)]
#[command(after_long_help = INDEX_EXAMPLES)]
pub struct IndexArgs {
    #[command(subcommand)]
    pub command: IndexCommand,
}

#[derive(Debug, Subcommand)]
pub enum IndexCommand {
    /// Create an empty index in a new or empty directory, with its settings (fixed for its
    /// lifetime).
    ///
    /// The similarity flags mean what they mean for 'neardup pairs': an index answers
    /// exactly what a batch run with the same flags would pair.
    #[command(
        after_long_help = INDEX_EXAMPLES,
        mut_arg("bucket_cap", |a| a.help(INDEX_BUCKET_CAP_HELP))
    )]
    Create(CreateArgs),
    /// Add articles in bulk; prints each article's verdict (one JSON line) as it is added.
    ///
    /// Each article is compared with everything indexed before it, including the articles
    /// earlier in the same input. An article whose id is already indexed with the same
    /// text is not added again and gets the verdict it was given then ("indexed": true),
    /// so a killed 'index add' is resumed by running it again on the same input; with other
    /// text it is reported as a bad record (duplicate_id) and skipped.
    #[command(after_long_help = INDEX_EXAMPLES, mut_arg("date_field", |a| a.help(DATE_FIELD_HELP)))]
    Add(BulkArgs),
    /// Print verdicts for articles without adding them.
    ///
    /// Articles are compared with the index only, not with one another. An article whose
    /// id is already indexed with the same text gets the verdict it was given when added
    /// ("indexed": true); with other text it is reported as a bad record (duplicate_id).
    #[command(
        after_long_help = INDEX_EXAMPLES,
        mut_arg("date_field", |a| a.help(DATE_FIELD_HELP)),
        mut_arg("commit_every", |a| a.help(
            "Print verdicts every N articles of a file (a query stores and syncs nothing); \
             from a pipe or terminal each line is answered as it arrives"
        )),
        mut_arg("strict", |a| a.help(
            "Stop with an error at the first bad record (the verdicts before it are printed)"
        )),
    )]
    Query(BulkArgs),
    /// Print an index's settings, counts, size on disk and memory needed.
    #[command(after_long_help = INDEX_EXAMPLES)]
    Stats(StatsArgs),
    /// Print what an index holds: every article's verdict, or its clusters.
    ///
    /// Without --clusters: one verdict line per indexed article, in the order added,
    /// exactly as 'index add' printed it when the article was added, without
    /// --all-matches: only the best match is stored (so an index built by several runs,
    /// or resumed after a kill, exports one uninterrupted verdict stream).
    /// With --clusters: one line per cluster, {"cluster", "size", "members"}, in the order
    /// clusters began. Reads the index without locking it; articles removed by 'index
    /// compact' are no longer listed.
    #[command(after_long_help = INDEX_EXAMPLES)]
    Export(ExportArgs),
    /// Remove articles older than the index's window (see 'index create --window').
    ///
    /// The window is measured back from the index's clock: its newest article's time
    /// (never later than now). The new log replaces the old one atomically.
    #[command(after_long_help = INDEX_EXAMPLES)]
    Compact(CompactArgs),
    /// Remove articles by id for good: a takedown, or articles indexed by mistake.
    ///
    /// Prints one line per id asked for, {"id", "removed"} (false: it was not in the
    /// index). The log is rewritten without them into a new generation, as 'index
    /// compact' rewrites it (a crash leaves the old or the new one in force, whole), so
    /// gather the ids of a takedown into one run. Verdicts stored for other articles are
    /// kept as they were given and may still name a removed article as their match or
    /// cluster; a removed id may be added again, as a new article. The index must not be
    /// open for writing elsewhere: stop 'watch' first, or ask 'serve' (POST /remove).
    #[command(after_long_help = INDEX_EXAMPLES)]
    Remove(RemoveArgs),
    /// Recover an index whose article log is damaged: keep every intact article, leave
    /// out the bytes that cannot be read.
    ///
    /// For an index that readers and writers refuse with "... is damaged at byte N ..."
    /// (a bad byte on disk, or a power loss that kept a later part of the last write but
    /// not an earlier one). Every intact article is kept, in the order it was added; each
    /// stretch of bytes that holds no intact article is left out and reported by offset
    /// and length (nothing is guessed from it, not even an id). The kept articles are
    /// added again, in order, to a new log, so their verdicts are those an index holding
    /// only them would give ('index export' shows them); the summary counts those whose
    /// stored verdict changed (their match was left out, say), and --format jsonl lists
    /// them. The index switches to the new log as 'index compact' does: a crash at any
    /// point leaves the damaged index or the repaired one, never a mix.
    ///
    /// Nothing is lost: the damaged log stays in the index directory as
    /// articles.<generation>.log.damaged (delete it once you no longer need it), unless
    /// --discard-damaged is given. An index that is not damaged is left as it is
    /// ("nothing to repair", exit 0); a log that ends in an unfinished write (a crash
    /// while writing) only has it cut off, as any writer does on opening. A log cut short
    /// inside its header holds no article: the repaired index is empty, and the articles
    /// must be added again. index.meta (the settings) and story.stats cannot be repaired:
    /// if either is damaged, create a new index and add the articles again. Needs the
    /// writer's lock: stop 'watch' or 'serve' first.
    #[command(after_long_help = INDEX_EXAMPLES)]
    Repair(RepairArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Directory of the new index (must not exist or be empty; it is built beside it and
    /// renamed into place, or filled in place when it is a mount point or its parent is
    /// read-only).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub similarity: SimilarityArgs,
    /// What counts as the same article. copy: near-copies (exact Jaccard of the shingle
    /// sets at or above --threshold), verdict duplicate. story: near-copies as with copy,
    /// and otherwise copies, updates and rewrites of one news story, verdict rewrite,
    /// decided as 'neardup pairs --level story' decides (needs word shingles).
    #[arg(long, value_enum, default_value_t = LevelArg::Copy, help_heading = "Index")]
    pub level: LevelArg,
    /// Story level: score against these corpus statistics (document frequencies, written
    /// by 'neardup stats count' or 'cluster --level story --stats-out' over a
    /// representative corpus);
    /// they are copied into the index and fixed for its lifetime. Without it, each article
    /// is scored against the statistics of the articles indexed before it.
    #[arg(long, value_name = "FILE", help_heading = "Index")]
    pub stats: Option<PathBuf>,
    /// Story level: lowest model probability that says rewrite (default: the fitted
    /// model's cut, as 'neardup pairs --level story'). Higher: fewer, surer rewrites.
    #[arg(long, value_name = "P", value_parser = parse_probability, help_heading = "Index")]
    pub story_threshold: Option<f64>,
    /// Story level: IDF-weighted Jaccard of rare content words at which an indexed
    /// article becomes a candidate for scoring (default 0.2; lower finds more, slower).
    #[arg(long, value_name = "T", value_parser = parse_threshold, help_heading = "Index")]
    pub story_candidates: Option<f64>,
    /// Dated articles further apart than this do not match (undated ones match any, as in
    /// batch); 'index compact' removes the articles older than this before the newest
    /// date (an undated one counts as of the newest date indexed when it was added, or its
    /// arrival time while none was). E.g. 7d, 36h, 90m,
    /// 2w, 3600s; 'none': no window. Default: none at the copy level, 72h at the story
    /// level (as the batch story level: another day's edition of a report is another
    /// story).
    #[arg(long, value_parser = parse_index_window, value_name = "DURATION", help_heading = "Index")]
    pub window: Option<IndexWindow>,
    /// No summary on standard error.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DurabilityArg {
    /// Synced to disk before the verdict.
    Disk,
    /// Written to the operating system before the verdict; synced within 100 ms.
    Process,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LevelArg {
    /// Near-copies (also spelt near-copy, as the batch commands say).
    #[value(alias = "near-copy")]
    Copy,
    /// Near-copies, and copies, updates and rewrites of one news story.
    Story,
}

#[derive(Debug, Args)]
pub struct BulkArgs {
    /// The index directory.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub input: InputArgs,
    /// List every match at or above the threshold ("matches"), not only the best; on a
    /// story index, a duplicate also lists its same-story matches ("story_matches").
    #[arg(long, help_heading = "Output")]
    pub all_matches: bool,
    /// Commit (fsync) and print verdicts every N articles: smaller acknowledges sooner,
    /// larger adds faster.
    #[arg(long, default_value_t = 4096, value_name = "N", value_parser = parse_count, help_heading = "Run")]
    pub commit_every: usize,
    #[command(flatten)]
    pub exec: FeedExecArgs,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Run")]
pub struct FeedExecArgs {
    /// Worker threads for fingerprinting, 1 to 1024 (default: one per core).
    #[arg(long, value_name = "N", value_parser = crate::args::parse_threads)]
    pub threads: Option<usize>,
    /// No progress bars, warnings or summary on standard error; a run that skipped bad
    /// records or inputs still says so in one line naming the first (exit code 2).
    #[arg(short, long)]
    pub quiet: bool,
    /// Stop with an error at the first bad record (what came before it is kept).
    #[arg(long)]
    pub strict: bool,
    /// Progress bars on standard error.
    #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
    pub progress: ProgressArg,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// The index directory.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// jsonl: one JSON object; table: for people.
    #[arg(long, value_enum, default_value_t = StatsFormat::Jsonl)]
    pub format: StatsFormat,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum StatsFormat {
    /// One JSON object.
    Jsonl,
    /// A two-column table.
    Table,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The index directory.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// One line per cluster instead of one per article.
    #[arg(long)]
    pub clusters: bool,
    /// With --clusters: only clusters with at least N articles (1 lists every article's
    /// cluster, new articles alone in theirs).
    #[arg(long, value_name = "N", default_value_t = 2, requires = "clusters",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub min_size: u64,
    /// Output format: jsonl streams; json, csv and table hold everything in memory first
    /// (csv and table have one row per cluster member).
    #[arg(long, value_enum, default_value_t = crate::args::FormatArg::Jsonl)]
    pub format: crate::args::FormatArg,
    /// Write to FILE instead of standard output (atomically: the file appears only when
    /// complete; gzip or zstd compressed when FILE ends in .gz or .zst).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompactArgs {
    /// The index directory.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// No summary on standard error.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The index directory.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Ids of the articles to remove.
    #[arg(value_name = "ID")]
    pub ids: Vec<String>,
    /// A file of more ids, one per line ('-': standard input); lines are trimmed and blank
    /// ones skipped, and a line starting with '"' is a JSON string (an id with spaces
    /// around it or a line break in it: "\" b \""). An id given twice is answered once.
    #[arg(long, value_name = "FILE")]
    pub ids_from: Option<PathBuf>,
    /// No summary on standard error.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct RepairArgs {
    /// The index directory.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Delete the damaged log instead of keeping it as articles.<generation>.log.damaged
    /// (the bytes left out are then gone for good).
    #[arg(long)]
    pub discard_damaged: bool,
    /// text: a summary on standard error only; jsonl (or json): also one JSON object on
    /// standard output (kept, damaged byte ranges, where the damaged log went, ids whose
    /// verdict changed).
    #[arg(long, value_enum, default_value_t = RepairFormat::Text)]
    pub format: RepairFormat,
    /// No summary on standard error.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RepairFormat {
    /// A summary on standard error.
    Text,
    /// One JSON object on standard output too.
    #[value(alias = "json")]
    Jsonl,
}

#[derive(Debug, Args)]
#[command(after_long_help = WATCH_HELP)]
pub struct WatchArgs {
    /// The index directory (see 'neardup index create').
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub live: LiveArgs,
    /// Longest line accepted; longer ones are rejected (e.g. 16MiB).
    #[arg(long, default_value = "256MiB", value_parser = parse_size, value_name = "SIZE", help_heading = "Input")]
    pub max_record_bytes: u64,
    /// No warnings or summary on standard error.
    #[arg(short, long, help_heading = "Run")]
    pub quiet: bool,
}

/// How a live feed's articles are read, answered and committed (`watch`, `serve`).
#[derive(Clone, Debug, Args)]
pub struct LiveArgs {
    /// JSON field holding the article id (a string or an integer).
    #[arg(
        long,
        default_value = "id",
        value_name = "FIELD",
        help_heading = "Input"
    )]
    pub id_field: String,
    /// JSON field holding the text.
    #[arg(
        long,
        default_value = "text",
        value_name = "FIELD",
        help_heading = "Input"
    )]
    pub text_field: String,
    #[arg(
        long,
        default_value = "date",
        value_name = "FIELD",
        help_heading = "Input",
        help = DATE_FIELD_HELP
    )]
    pub date_field: String,
    /// List every match at or above the threshold ("matches"), not only the best; on a
    /// story index, a duplicate also lists its same-story matches ("story_matches").
    #[arg(long, help_heading = "Output")]
    pub all_matches: bool,
    /// Most articles committed together when they arrive faster than they are synced.
    #[arg(long, default_value_t = 256, value_name = "N", value_parser = parse_count, help_heading = "Run")]
    pub max_group: usize,
    /// When an article's verdict is given. disk: once it is synced to disk (fsync); it
    /// survives kill -9, a system crash and a power loss. process: once it is handed to
    /// the operating system; it survives kill -9 and any crash of neardup, not a system
    /// crash or power loss (the index is synced every 100 ms and at exit).
    #[arg(long, value_enum, default_value_t = DurabilityArg::Process, help_heading = "Run")]
    pub durability: DurabilityArg,
    /// How often to look for articles older than the index's window (e.g. 1h, 30m) and,
    /// when they are a tenth of the index or more, remove them as 'index compact' does
    /// (which cannot run beside this process). It runs in the background while articles
    /// are answered (answers wait only for the switch, milliseconds); meanwhile the
    /// process holds both the old index and the compacted one in memory. 'none': never.
    /// Indexes without a window are never compacted.
    #[arg(long, default_value = "1h", value_parser = parse_compact_every, value_name = "DURATION", help_heading = "Run")]
    pub compact_every: CompactEvery,
}

/// `--compact-every`: seconds between looks, or none.
#[derive(Clone, Copy, Debug)]
pub struct CompactEvery(Option<u64>);

fn parse_compact_every(s: &str) -> Result<CompactEvery, String> {
    crate::args::none_or(s, parse_duration)
        .map_err(|e| {
            // parse_duration speaks of the window.
            if e == crate::args::WINDOW_NOT_ZERO {
                "the time between compactions must be longer than 0 ('none': never compact)"
                    .to_string()
            } else {
                e
            }
        })
        .map(CompactEvery)
}

/// Keeps a running `watch` or `serve` inside its index's window (`--compact-every`).
pub(crate) struct Compactor {
    every: Option<Duration>,
    last: Instant,
    /// The compaction under way, when it started and how long starting it held answers.
    running: Option<(Compaction, Instant, Duration)>,
    done: u64,
    failed: u64,
    latest: Option<LastCompaction>,
    command: &'static str,
    quiet: bool,
}

/// What `serve`'s `/stats` says of compaction while running.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct CompactionRecord {
    /// `--compact-every` in seconds; `None`: never.
    every_seconds: Option<u64>,
    running: bool,
    done: u64,
    failed: u64,
    last: Option<LastCompaction>,
}

/// The last compaction that was finished.
#[derive(Clone, Copy, Debug, Serialize)]
struct LastCompaction {
    removed: u64,
    kept: u64,
    seconds: f64,
    answers_waited_ms: f64,
}

impl Compactor {
    pub(crate) fn new(
        every: CompactEvery,
        index: &FeedIndex,
        command: &'static str,
        quiet: bool,
    ) -> Self {
        if every.0.is_some()
            && index.settings().window.is_some()
            && index.accumulates_statistics()
            && !quiet
        {
            eprintln!(
                "neardup: warning: {command}: this story index counts its word statistics from \
                 its own articles (it was created without --stats), so each compaction \
                 (--compact-every) changes later scores; create it with --stats for scores \
                 that do not move, or pass --compact-every none"
            );
        }
        Compactor {
            every: every.0.map(Duration::from_secs),
            last: Instant::now(),
            running: None,
            done: 0,
            failed: 0,
            latest: None,
            command,
            quiet,
        }
    }

    /// Starts compacting `index` in the background if a look is due and a tenth of its
    /// articles or more are older than its window (compacting rewrites the whole log, so
    /// it waits until that pays), or switches to the compacted index once that is ready.
    /// `drain` runs first: it must see every group of the log written to the file.
    pub(crate) fn maybe_compact(
        &mut self,
        index: &mut FeedIndex,
        drain: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        if let Some((compaction, started, starting)) = self.running.take() {
            if !compaction.is_finished() {
                self.running = Some((compaction, started, starting));
                return Ok(());
            }
            drain()?;
            let switching = Instant::now();
            self.last = switching;
            let report = match index.finish_compaction(compaction) {
                Ok(report) => report,
                Err(e) => {
                    self.failed(e);
                    return Ok(());
                }
            };
            let last = LastCompaction {
                removed: report.removed,
                kept: report.kept,
                seconds: started.elapsed().as_secs_f64(),
                answers_waited_ms: (starting + switching.elapsed()).as_secs_f64() * 1e3,
            };
            self.done += 1;
            self.latest = Some(last);
            if !self.quiet {
                eprintln!(
                    "neardup: {}: compacted: removed {} older than the window, kept {}, \
                     in {:.2} s, of which answers waited {:.3} s",
                    self.command,
                    neardup::report::count(last.removed, "article", "articles"),
                    last.kept,
                    last.seconds,
                    last.answers_waited_ms / 1e3
                );
            }
            return Ok(());
        }
        let Some(every) = self.every else {
            return Ok(());
        };
        // A removal rewriting the index in the background (serve's /remove) goes first.
        if self.last.elapsed() < every || index.settings().window.is_none() || index.is_compacting()
        {
            return Ok(());
        }
        self.last = Instant::now();
        let stats = index.stats();
        if stats.expired == 0 || stats.expired * 10 < stats.articles {
            return Ok(());
        }
        drain()?;
        let started = Instant::now();
        match index.start_compaction() {
            Ok(compaction) => self.running = compaction.map(|c| (c, started, started.elapsed())),
            Err(e) => self.failed(e),
        }
        Ok(())
    }

    /// Gives up the compaction under way (its index is being opened again): dropping it
    /// removes its new file, the old generation staying in force.
    pub(crate) fn abandon(&mut self) {
        if self.running.take().is_some() {
            self.failed += 1;
        }
    }

    /// Whether a compaction of its own is running.
    pub(crate) fn is_running(&self) -> bool {
        self.running.is_some()
    }

    pub(crate) fn record(&self) -> CompactionRecord {
        CompactionRecord {
            every_seconds: self.every.map(|d| d.as_secs()),
            running: self.running.is_some(),
            done: self.done,
            failed: self.failed,
            last: self.latest,
        }
    }

    /// A compaction that fails leaves the old generation in force, whole (a disk that
    /// filled up, say): the service goes on, and the next look tries again.
    fn failed(&mut self, e: neardup::Error) {
        self.failed += 1;
        eprintln!(
            "neardup: warning: {}: compacting the index failed; it stays as it was, and the \
             next look (--compact-every) tries again: {:#}",
            self.command,
            anyhow::Error::new(e)
        );
    }
}

impl LiveArgs {
    /// The record fields the flags name.
    pub(crate) fn fields(&self) -> Result<FieldNames> {
        Ok(fields(&self.id_field, &self.text_field, &self.date_field))
    }
}

/// An index window in seconds, or none.
#[derive(Clone, Copy, Debug)]
pub struct IndexWindow(Option<u64>);

fn parse_index_window(s: &str) -> Result<IndexWindow, String> {
    crate::args::parse_window_seconds(s).map(IndexWindow)
}

/// Parses `7d`, `36h`, `90m`, `2w`, `3600s` or `3600` (seconds) into seconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    match neardup::story::parse_window(s)? {
        0 => Err(crate::args::WINDOW_NOT_ZERO.into()),
        secs => Ok(secs.unsigned_abs()),
    }
}

pub(crate) fn fields(id: &str, text: &str, date: &str) -> FieldNames {
    FieldNames {
        id: id.to_string(),
        text: text.to_string(),
        date: date.to_string(),
    }
}

pub(crate) fn terminal(progress: ProgressArg, quiet: bool) -> Terminal {
    Terminal::new(progress, quiet)
}

pub fn run_index(args: IndexArgs) -> Result<ExitCode> {
    match args.command {
        IndexCommand::Create(a) => create(a),
        IndexCommand::Add(a) => bulk(a, IngestMode::Add).map_err(|e| {
            after_failed_write(
                e,
                "run the same command again: articles already stored are answered the \
                 verdict they were stored with, marked \"indexed\":true",
            )
        }),
        IndexCommand::Query(a) => bulk(a, IngestMode::Query),
        IndexCommand::Stats(a) => stats(a),
        IndexCommand::Export(a) => export(a),
        IndexCommand::Compact(a) => compact(a),
        IndexCommand::Remove(a) => remove(a),
        IndexCommand::Repair(a) => repair(a),
    }
}

fn create(a: CreateArgs) -> Result<ExitCode> {
    let s = &a.similarity;
    let pipeline = PipelineBuilder::new()
        .shingle(s.shingle)
        .num_perm(s.num_perm)
        .seed(s.seed)
        .threshold(s.threshold)
        .lsh(s.bands, s.rows)
        .bucket_cap(s.bucket_cap)
        .build()
        .map_err(crate::usage)?;
    let level = match a.level {
        LevelArg::Copy => Level::Copy,
        LevelArg::Story => Level::Story,
    };
    let window = match (a.window, level) {
        (Some(IndexWindow(w)), _) => w,
        (None, Level::Story) => Some(neardup::story::DEFAULT_WINDOW as u64),
        (None, _) => None,
    };
    let mut settings =
        IndexSettings::new(pipeline.settings(), level, window).map_err(crate::usage)?;
    if a.story_threshold.is_some() || a.story_candidates.is_some() {
        let Some(story) = settings.story.as_mut() else {
            return Err(crate::usage(
                "--story-threshold and --story-candidates need --level story",
            ));
        };
        if let Some(p) = a.story_threshold {
            story.threshold = p;
        }
        if let Some(t) = a.story_candidates {
            story.candidate_threshold = t;
            story.lsh = neardup::story::candidate_lsh(t, story.num_perm);
        }
    }
    let stats = match &a.stats {
        None => None,
        Some(path) => {
            if level != Level::Story {
                return Err(crate::usage(
                    "--stats gives story statistics: it needs --level story",
                ));
            }
            Some(neardup::story::StoryStats::load(path)?)
        }
    };
    FeedIndex::create_with_stats(&a.dir, &settings, stats.as_ref())?;
    if !a.quiet {
        eprintln!(
            "neardup: created index {} (level {}, {}, {} slots, threshold {}, {} bands x {} rows, {})",
            neardup::report::shown_path(&a.dir),
            settings.level.name(),
            settings.shingle,
            settings.num_perm,
            settings.threshold,
            settings.lsh.bands,
            settings.lsh.rows,
            match settings.window {
                Some(w) => format!("window {}", neardup::story::describe_window(w)),
                None => "no window".to_string(),
            }
        );
        if let Some(s) = &settings.story {
            eprintln!(
                "neardup: story level: {} weighted slots, {} bands x {} rows, model threshold {}, statistics {}",
                s.num_perm,
                s.lsh.bands,
                s.lsh.rows,
                s.threshold,
                match &stats {
                    Some(st) => format!("fixed ({} documents)", st.documents()),
                    None => "accumulated from the articles indexed".to_string(),
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn bulk(a: BulkArgs, mode: IngestMode) -> Result<ExitCode> {
    if let Some(n) = a.exec.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("starting worker threads")?;
    }
    let terminal = terminal(a.exec.progress, a.exec.quiet);
    let access = match mode {
        IngestMode::Add => Access::Write,
        IngestMode::Query => Access::Read,
    };
    let mut index = open_index(&a.dir, access, &terminal)?;
    let options = IngestOptions {
        fields: fields(&a.input.id_field, &a.input.text_field, &a.input.date_field),
        format: a.input.input_format.map(|f| match f {
            InputFormatArg::Jsonl => InputFormat::JsonLines,
            InputFormatArg::Text => InputFormat::Text,
        }),
        limits: ReadLimits {
            max_record_bytes: a.input.max_record_bytes,
            batch_records: a.commit_every,
            // A query stores nothing: each line read from a pipe is answered at once.
            hand_on_when_waiting: mode == IngestMode::Query,
            ..ReadLimits::default()
        },
        strict: a.exec.strict,
    };
    let specs: Vec<InputSpec> = a
        .input
        .inputs
        .iter()
        .map(|s| InputSpec::from(s.as_str()))
        .collect();
    // Written by the thread that acknowledges verdicts once they are durable.
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout());
    let query = mode == IngestMode::Query;
    let stats = feed::ingest(
        &mut index,
        &specs,
        mode,
        &options,
        &terminal,
        &mut |group| {
            for v in group {
                feed::write_json_line(&mut out, &VerdictRecord::new(v, query, a.all_matches))?;
            }
            out.flush() // each commit group is acknowledged as soon as it is durable
        },
    )?;
    out.flush().context("writing to standard output")?;
    if !a.exec.quiet {
        let secs = stats.elapsed.as_secs_f64().max(1e-9);
        let mut line = format!(
            "neardup: {} {} ({} new, {}{}{}){}, {}, in {:.2} s ({:.0} articles/s); the index holds {}",
            if query { "checked" } else { "added" },
            count(stats.articles, "article", "articles"),
            stats.new,
            count(stats.duplicates, "duplicate", "duplicates"),
            rewrites_clause(&index, stats.rewrites),
            if query {
                format!(", {} already indexed", stats.already_indexed)
            } else {
                String::new()
            },
            if !query && stats.already_indexed > 0 {
                format!(
                    ", {} already indexed with the same text (their verdicts repeated)",
                    stats.already_indexed
                )
            } else {
                String::new()
            },
            count(stats.bad(), "bad record", "bad records"),
            secs,
            stats.articles as f64 / secs,
            count(index.len() as u64, "article", "articles"),
        );
        if stats.bad() > 0 {
            let kinds: Vec<String> = stats
                .problems
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            line.push_str(&format!(" [bad: {}]", kinds.join(", ")));
        }
        terminal.println(&line);
        if let Some(example) = &stats.ignored_date_example {
            terminal.println(&ignored_dates_note(stats.ignored_dates, example, !query));
        }
        crate::note_skipped_files(&terminal, &stats.skipped_files);
    }
    crate::warn_of_no_input(stats.sources, stats.bad());
    Ok(terminal.exit_code(stats.bad()))
}

fn stats(a: StatsArgs) -> Result<ExitCode> {
    let index = FeedIndex::open(&a.dir, Access::Read, &neardup::progress::Silent)?;
    let stats = index.stats();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match a.format {
        StatsFormat::Jsonl => feed::write_json_line(&mut out, &StatsRecord::new(&stats)),
        StatsFormat::Table => feed::write_stats_table(&mut out, &stats),
    }
    .context("writing to standard output")?;
    Ok(ExitCode::SUCCESS)
}

fn export(a: ExportArgs) -> Result<ExitCode> {
    crate::output_outside("-o", a.output.as_deref(), "the index", &a.dir)?;
    let mut index = FeedIndex::open(&a.dir, Access::Read, &neardup::progress::Silent)?;
    let format = crate::format(a.format);
    if a.clusters {
        let min_size = usize::try_from(a.min_size).unwrap_or(usize::MAX);
        let clusters = index.clusters(min_size)?;
        crate::write_atomically(a.output.as_deref(), |out| {
            feed::write_clusters(out, &clusters, format)
        })?;
    } else if format == Format::Jsonl {
        // Streamed: an article's verdict is read from the log as it is written out.
        crate::write_atomically(a.output.as_deref(), |out| {
            for n in 0..index.len() {
                let v = index.verdict_at(n).map_err(io::Error::other)?;
                feed::write_json_line(out, &VerdictRecord::new(&v, false, false))?;
            }
            Ok(())
        })?;
    } else {
        let verdicts = (0..index.len())
            .map(|n| index.verdict_at(n))
            .collect::<neardup::Result<Vec<_>>>()?;
        crate::write_atomically(a.output.as_deref(), |out| {
            feed::write_verdicts(out, &verdicts, format)
        })?;
    }
    Ok(ExitCode::SUCCESS)
}

fn compact(a: CompactArgs) -> Result<ExitCode> {
    let terminal = terminal(ProgressArg::Auto, a.quiet);
    let mut index = open_index(&a.dir, Access::Write, &terminal)?;
    let report = index.compact(&terminal)?;
    if !a.quiet {
        let note = if index.settings().window.is_none() {
            " (the index has no window: nothing expires)"
        } else {
            ""
        };
        eprintln!(
            "neardup: compact removed {} and kept {}{note}; article log {:.1} MB -> {:.1} MB",
            neardup::report::count(report.removed, "article", "articles"),
            report.kept,
            report.log_bytes.0 as f64 / 1e6,
            report.log_bytes.1 as f64 / 1e6,
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn repair(a: RepairArgs) -> Result<ExitCode> {
    let terminal = terminal(ProgressArg::Auto, a.quiet);
    let options = feed::RepairOptions {
        discard_damaged: a.discard_damaged,
    };
    let report = FeedIndex::repair(&a.dir, &options, &terminal)?;
    if a.format == RepairFormat::Jsonl {
        let stdout = io::stdout();
        feed::write_json_line(&mut stdout.lock(), &feed::RepairRecord::new(&report))
            .context("writing to standard output")?;
    }
    if !a.quiet {
        for line in repair_summary(&a.dir, &report) {
            terminal.println(&format!("neardup: {line}"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What `index repair` did, in lines for people.
fn repair_summary(dir: &std::path::Path, r: &feed::RepairReport) -> Vec<String> {
    use neardup::report::count;
    let (dir, log) = (
        neardup::report::shown_path(dir),
        neardup::report::shown_path(&r.log),
    );
    let articles = count(r.kept, "intact article", "intact articles");
    let mut lines = Vec::new();
    match r.outcome {
        feed::RepairOutcome::NothingToRepair => lines.push(format!(
            "nothing to repair in {dir}: {log} holds {articles} and nothing else; nothing was changed"
        )),
        feed::RepairOutcome::CutUnfinishedWrite => {
            let (offset, bytes) = r.unfinished_write.unwrap_or_default();
            lines.push(format!(
                "{dir}: cut off an unfinished write of {} at byte {offset} of {log} (as any \
                 writer does when it opens the index); kept {articles}",
                count(bytes, "byte", "bytes")
            ));
            if let Some(copy) = &r.kept_aside {
                lines.push(format!(
                    "a copy of the bytes cut off is kept as {}; delete it once you no longer \
                     need it",
                    neardup::report::shown_path(copy)
                ));
            }
        }
        _ => {
            let ranges: Vec<String> = r
                .damaged
                .iter()
                .map(|&(offset, bytes)| format!("{} at byte {offset}", count(bytes, "byte", "bytes")))
                .collect();
            let mut line = format!(
                "repaired {dir}: kept {articles}; left out {} of {log} that held no intact \
                 article ({})",
                count(r.damaged.len() as u64, "damaged stretch", "damaged stretches"),
                ranges.join(", ")
            );
            if r.header_damaged {
                line.push_str("; the first holds the log's header, damaged or cut short");
            }
            if let Some((offset, bytes)) = r.unfinished_write {
                line.push_str(&format!(
                    "; also an unfinished write of {} at byte {offset}",
                    count(bytes, "byte", "bytes")
                ));
            }
            lines.push(line + &format!("; the article log is now generation {}", r.generation.1));
            if r.kept == 0 {
                lines.push(format!(
                    "no intact article could be read from the log, so the index is now empty: \
                     add the articles again ('neardup index add {dir} FILE...')"
                ));
            }
            match &r.kept_aside {
                Some(aside) => lines.push(format!(
                    "the damaged log is kept as {} (nothing in it was lost); delete it once you \
                     no longer need it",
                    neardup::report::shown_path(aside)
                )),
                None => lines.push("the damaged log was deleted (--discard-damaged)".into()),
            }
            if !r.verdicts_changed.is_empty() {
                const SHOWN: usize = 5;
                let mut ids = r.verdicts_changed[..r.verdicts_changed.len().min(SHOWN)].join(", ");
                if r.verdicts_changed.len() > SHOWN {
                    ids.push_str(", ... (--format jsonl lists them all)");
                }
                lines.push(format!(
                    "{} now {} another verdict than stored, decided again without what was left \
                     out (a match or cluster among it, or at the story level its statistics): {ids}",
                    count(r.verdicts_changed.len() as u64, "kept article", "kept articles"),
                    if r.verdicts_changed.len() == 1 { "has" } else { "have" },
                ));
            }
        }
    }
    lines
}

/// Opens the index in `dir`; when opening it for writing cut off an unfinished write at
/// the end of its log, says so and where the bytes were kept: even with --quiet, since
/// damage at the very end of a log looks the same as a write torn by a crash.
pub(crate) fn open_index(
    dir: &std::path::Path,
    access: Access,
    terminal: &Terminal,
) -> neardup::Result<FeedIndex> {
    let index = FeedIndex::open(dir, access, terminal)?;
    if let Some(cut) = index.cut_tail() {
        terminal.println(&format!(
            "neardup: warning: {}: cut off {} after byte {} of the article log, an unfinished \
             write (torn by a crash, its articles never acknowledged; unless the log was \
             damaged there); a copy is kept in {}",
            crate::shown_path(dir),
            count(cut.bytes, "byte", "bytes"),
            cut.offset,
            crate::shown_path(&cut.kept)
        ));
    }
    Ok(index)
}

fn remove(a: RemoveArgs) -> Result<ExitCode> {
    if a.ids.is_empty() && a.ids_from.is_none() {
        return Err(crate::usage(
            "no id to remove: give ids as arguments or in a file with --ids-from",
        ));
    }
    let mut ids = a.ids.clone();
    if let Some(path) = &a.ids_from {
        let text = if path.as_os_str() == "-" {
            io::read_to_string(io::stdin()).context("reading ids from standard input")?
        } else {
            std::fs::read_to_string(path).with_context(|| {
                format!("reading ids from {}", neardup::report::shown_path(path))
            })?
        };
        let shown = if path.as_os_str() == "-" {
            "<stdin>".to_string()
        } else {
            neardup::report::shown_path(path)
        };
        ids.extend(ids_of_lines(&text).map_err(|e| anyhow::anyhow!("{shown}:{e}"))?);
    }
    anyhow::ensure!(
        !ids.is_empty(),
        "no id to remove: the --ids-from input holds none (blank lines are skipped)"
    );
    let ids = each_once(ids);
    let terminal = terminal(ProgressArg::Auto, a.quiet);
    let mut index = open_index(&a.dir, Access::Write, &terminal)?;
    let report = index.remove(&ids, &terminal)?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    for (id, removed) in ids.iter().zip(&report.found) {
        let line = serde_json::json!({ "id": id, "removed": removed });
        writeln!(out, "{line}").context("writing to standard output")?;
    }
    out.flush().context("writing to standard output")?;
    if !a.quiet {
        let missing = report.found.iter().filter(|&&found| !found).count();
        eprintln!(
            "neardup: removed {} ({} not in the index); the index holds {}; article log \
             {:.1} MB -> {:.1} MB",
            neardup::report::count(report.compacted.removed, "article", "articles"),
            neardup::report::count(missing as u64, "id was", "ids were"),
            report.compacted.kept,
            report.compacted.log_bytes.0 as f64 / 1e6,
            report.compacted.log_bytes.1 as f64 / 1e6,
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The ids of `text`, one per line (`index remove --ids-from`, `serve`'s `/remove`): a
/// line is trimmed of ASCII whitespace and blank lines are skipped, but a line starting with `"` is a JSON
/// string, for an id with spaces around it or a line break in it. An error names the
/// line (`LINE: why`).
pub(crate) fn ids_of_lines(text: &str) -> Result<Vec<String>, String> {
    let mut ids = Vec::new();
    // A file saved by Notepad starts with a byte-order mark, which is no part of an id.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (number, line) in text.lines().enumerate() {
        // ASCII only: a no-break space may begin an id, and trimming it would remove
        // another article.
        let line = line.trim_matches(|c: char| c.is_ascii_whitespace());
        if line.starts_with('"') {
            let id: String = serde_json::from_str(line).map_err(|e| {
                format!(
                    "{}: a line starting with '\"' is read as a JSON string: {e}",
                    number + 1
                )
            })?;
            ids.push(id);
        } else if !line.is_empty() {
            ids.push(line.to_string());
        }
    }
    Ok(ids)
}

/// `ids` without repeats, in the order first given: each is answered once.
pub(crate) fn each_once(ids: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    ids.into_iter()
        .filter(|id| seen.insert(id.clone()))
        .collect()
}

/// What the stdin reader and the signal handler tell the watch loop.
enum Event {
    Line {
        number: u64,
        bytes: Vec<u8>,
        read_at: Instant,
    },
    TooLarge {
        number: u64,
        bytes: u64,
        read_at: Instant,
    },
    End,
    ReadFailed(io::Error),
    Signal(i32),
}

/// Reads standard input line by line into `tx` (lines longer than `limit` are skipped and
/// reported), then `End`. A gzip or zstd stream is decompressed as it arrives, as every
/// other input is.
fn read_stdin(tx: mpsc::Sender<Event>, limit: u64) {
    let mut uncounted = |_| {};
    let mut reader =
        match neardup::input::open_decoded(&neardup::input::Location::Stdin, &mut uncounted) {
            Ok(reader) => reader,
            Err(e) => {
                let _ = tx.send(Event::ReadFailed(e));
                return;
            }
        };
    let mut number = 0u64;
    loop {
        number += 1;
        let mut bytes = Vec::new();
        let read = (&mut reader).take(limit + 1).read_until(b'\n', &mut bytes);
        let read_at = Instant::now();
        let event = match read {
            Ok(0) => {
                let _ = tx.send(Event::End);
                return;
            }
            Ok(n) if bytes.last() != Some(&b'\n') && n as u64 > limit => {
                let rest = reader.skip_until(b'\n').unwrap_or(0) as u64;
                Event::TooLarge {
                    number,
                    bytes: n as u64 + rest,
                    read_at,
                }
            }
            Ok(_) => {
                while bytes.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
                    bytes.pop();
                }
                if number == 1 && bytes.starts_with(b"\xEF\xBB\xBF") {
                    bytes.drain(..3);
                }
                if bytes.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                Event::Line {
                    number,
                    bytes,
                    read_at,
                }
            }
            Err(e) => {
                let _ = tx.send(Event::ReadFailed(e));
                return;
            }
        };
        if tx.send(event).is_err() {
            return;
        }
    }
}

/// One output line of a commit group.
pub(crate) enum Answer {
    /// A verdict, and the line of the article's record.
    Verdict(Verdict, u64),
    /// A verdict of `serve`'s `/query`: the article was not stored.
    Checked(Verdict, u64),
    Rejected {
        id: Option<String>,
        line: u64,
        reason: String,
    },
}

#[derive(Default)]
pub(crate) struct WatchCounts {
    pub(crate) new: u64,
    pub(crate) duplicates: u64,
    pub(crate) rewrites: u64,
    /// Re-sent articles already indexed with the same text (not stored again).
    pub(crate) already_indexed: u64,
    pub(crate) rejected: u64,
    /// Articles checked and not stored (`serve`'s `/query`).
    pub(crate) checked: u64,
    /// Date fields not used (the article counted as undated), and the first of them.
    pub(crate) ignored_dates: u64,
    pub(crate) ignored_date_example: Option<IgnoredDate>,
    pub(crate) latencies: Latencies,
}

/// The note, after a summary, on the `ignored` date fields (`example` the first), of
/// articles that were added (`stored`) or only checked.
pub(crate) fn ignored_dates_note(ignored: u64, example: &IgnoredDate, stored: bool) -> String {
    format!(
        "neardup: note: {} not used (e.g. {example}); those articles count as undated: they \
         match at any distance{} (their verdicts say \"date_ignored\"; the forms read are in \
         --date-field's help)",
        count(ignored, "date field was", "date fields were"),
        if stored {
            ", and are stored at the index's clock for compaction"
        } else {
            ""
        },
    )
}

/// Times to answer, in microseconds, as a histogram (three significant digits): `watch`
/// and `serve` run for months, and one number per article would grow without end.
#[derive(Clone)]
pub(crate) struct Latencies(hdrhistogram::Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        // Resizes itself to whatever the longest answer takes.
        Latencies(hdrhistogram::Histogram::new(3).expect("3 significant digits are allowed"))
    }
}

impl Latencies {
    /// `articles` answered `waited` after they were read.
    pub(crate) fn record(&mut self, waited: Duration, articles: u64) {
        let us = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
        // Auto-resizing only fails for values beyond u64 range, which `us` cannot exceed.
        let _ = self.0.record_n(us, articles);
    }

    /// How many answers were timed.
    pub(crate) fn samples(&self) -> u64 {
        self.0.len()
    }

    /// Median, p99 and maximum in milliseconds (each to three significant digits); `None`
    /// before the first answer.
    pub(crate) fn percentiles_ms(&self) -> Option<[f64; 3]> {
        if self.0.is_empty() {
            return None;
        }
        let ms = |us: u64| self.0.median_equivalent(us) as f64 / 1e3;
        Some([
            ms(self.0.value_at_quantile(0.5)),
            ms(self.0.value_at_quantile(0.99)),
            ms(self.0.max()),
        ])
    }

    /// `median X ms, p99 Y ms, max Z ms`, or `n/a`.
    pub(crate) fn describe(&self) -> String {
        match self.percentiles_ms() {
            None => "n/a".to_string(),
            Some([median, p99, max]) => {
                format!("median {median:.2} ms, p99 {p99:.2} ms, max {max:.2} ms")
            }
        }
    }
}

/// What `watch`'s deciding thread hands its acknowledging thread.
enum Acked {
    /// A group written to the log (not yet to the file) and its answers, printed once the
    /// group is durable.
    Group(feed::Syncer, Vec<(Answer, Instant)>),
    /// Answered once every group handed before it is written: compacting copies the log
    /// from the file, so it must hold every group.
    Drained(mpsc::Sender<()>),
}

/// Waits until the acknowledging thread has written every group handed to it.
fn drained(ack_tx: &mpsc::SyncSender<Acked>) -> Result<()> {
    let (done, wait) = mpsc::channel();
    ack_tx
        .send(Acked::Drained(done))
        .ok()
        .and_then(|()| wait.recv().ok())
        .context("the acknowledging thread stopped")
}

pub fn watch(a: WatchArgs) -> Result<ExitCode> {
    watch_index(a).map_err(|e| {
        after_failed_write(
            e,
            "send the articles without a verdict again (one already stored is answered the \
             verdict it was stored with, marked \"indexed\":true)",
        )
    })
}

fn watch_index(a: WatchArgs) -> Result<ExitCode> {
    let fields = a.live.fields()?;
    let terminal = terminal(ProgressArg::Auto, a.quiet);
    let mut index = open_index(&a.dir, Access::Write, &terminal)?;
    let mut fingerprinter = index.fingerprinter();

    let (tx, rx) = mpsc::channel::<Event>();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .context("installing signal handlers")?;
    let signal_tx = tx.clone();
    std::thread::spawn(move || {
        let mut seen = 0;
        for signal in signals.forever() {
            seen += 1;
            if seen > 1 {
                // The user insists: leave now. Acknowledged articles are durable anyway.
                std::process::exit(130);
            }
            let _ = signal_tx.send(Event::Signal(signal));
        }
    });
    let limit = a.max_record_bytes;
    std::thread::spawn(move || read_stdin(tx, limit));

    // Groups written to the log wait here for their sync; then their answers are printed.
    // Deciding the next group overlaps with syncing this one.
    let (ack_tx, ack_rx) = mpsc::sync_channel::<Acked>(2);
    let (all_matches, quiet, durability) = (a.live.all_matches, a.quiet, a.live.durability);
    // With --durability process, this thread syncs the log every 100 ms, so that a slow
    // fsync never holds up a verdict.
    let latest: std::sync::Arc<std::sync::Mutex<Option<feed::Written>>> = Default::default();
    let syncing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let background_sync = (durability == DurabilityArg::Process).then(|| {
        let (latest, syncing) = (latest.clone(), syncing.clone());
        std::thread::spawn(move || -> Result<()> {
            use std::sync::atomic::Ordering;
            while syncing.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(100));
                let due = latest.lock().expect("sync lock").take();
                if let Some(written) = due {
                    written.sync()?;
                }
            }
            Ok(())
        })
    });
    let pending_sync = latest.clone();
    // Set when standard output fails (its reader went away): deciding stops, and the
    // groups already handed over are still written, counted and synced.
    let output_closed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let closed = output_closed.clone();
    type Acknowledged = (WatchCounts, Option<io::Error>);
    let acknowledger = std::thread::spawn(move || -> Result<Acknowledged> {
        let mut out: Box<dyn Write> = Box::new(BufWriter::with_capacity(1 << 16, io::stdout()));
        let mut counts = WatchCounts::default();
        let mut out_failed = None;
        for acked in ack_rx {
            let (syncer, mut answers) = match acked {
                Acked::Group(syncer, answers) => (syncer, answers),
                Acked::Drained(done) => {
                    let _ = done.send(());
                    continue;
                }
            };
            match durability {
                DurabilityArg::Disk => syncer.sync()?,
                DurabilityArg::Process => {
                    let written = syncer.write()?;
                    *pending_sync.lock().expect("sync lock") = Some(written);
                }
            }
            let printed = answers
                .iter()
                .try_for_each(|(answer, _)| {
                    acknowledge(&mut out, answer, &mut counts, all_matches, quiet, "<stdin>")
                })
                .and_then(|()| out.flush());
            if let Err(e) = printed {
                if out_failed.is_none() {
                    closed.store(true, std::sync::atomic::Ordering::Release);
                    out_failed = Some(e);
                }
                // Still counted (the articles are stored), no longer printed.
                out = Box::new(io::sink());
                continue;
            }
            let written = Instant::now();
            for (_, read_at) in answers.drain(..) {
                counts.latencies.record(written.duration_since(read_at), 1);
            }
        }
        Ok((counts, out_failed))
    });
    let mut stop = None;
    // A stream that broke off (a truncated gzip, say) is an error, not an end of input.
    let mut read_failed = None;
    let mut compactor = Compactor::new(a.live.compact_every, &index, "watch", a.quiet);
    let decided = (|| -> Result<()> {
        while stop.is_none() && !output_closed.load(std::sync::atomic::Ordering::Acquire) {
            // A quiet feed still gets compacted: wake up now and then to look.
            let first = match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(event) => event,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    compactor.maybe_compact(&mut index, || drained(&ack_tx))?;
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let mut group = vec![first];
            // Whatever has already arrived joins this commit group.
            while group.len() < a.live.max_group
                && !matches!(
                    group.last(),
                    Some(Event::End | Event::Signal(_) | Event::ReadFailed(_))
                )
            {
                match rx.try_recv() {
                    Ok(event) => group.push(event),
                    Err(_) => break,
                }
            }
            let mut answers = Vec::with_capacity(group.len());
            for event in group {
                match event {
                    Event::Line {
                        number,
                        bytes,
                        read_at,
                    } => {
                        let answer =
                            decide(&mut index, &mut fingerprinter, &fields, number, &bytes)?;
                        answers.push((answer, read_at));
                    }
                    Event::TooLarge {
                        number,
                        bytes,
                        read_at,
                    } => answers.push((
                        Answer::Rejected {
                            id: None,
                            line: number,
                            reason: format!(
                                "record of at least {bytes} bytes exceeds the limit of {limit} bytes (--max-record-bytes)"
                            ),
                        },
                        read_at,
                    )),
                    Event::End => stop = Some(None),
                    Event::Signal(s) => stop = Some(Some(format!("signal {s}"))),
                    Event::ReadFailed(e) => {
                        let why = format!("reading standard input failed: {e}");
                        stop = Some(Some(why.clone()));
                        read_failed = Some(why);
                    }
                }
            }
            // Durable first, then acknowledged (by the acknowledging thread).
            if ack_tx.send(Acked::Group(index.write()?, answers)).is_err() {
                break; // it failed: its error is returned below
            }
            compactor.maybe_compact(&mut index, || drained(&ack_tx))?;
        }
        Ok(())
    })();
    drop(ack_tx);
    let acknowledged = acknowledger
        .join()
        .map_err(|_| anyhow::anyhow!("the acknowledging thread panicked"))?;
    syncing.store(false, std::sync::atomic::Ordering::Release);
    if let Some(thread) = background_sync {
        thread
            .join()
            .map_err(|_| anyhow::anyhow!("the syncing thread panicked"))??;
    }
    // Whatever the durability, everything is on disk before watch exits.
    if let Some(written) = latest.lock().expect("sync lock").take() {
        written.sync()?;
    }
    decided?;
    let (mut counts, out_failed) = acknowledged?;
    if let Some(e) = out_failed {
        // Not the broken pipe itself, which main takes for a reader that had enough:
        // here articles were stored whose verdicts nobody received.
        anyhow::bail!(
            "watch: the verdict output was closed ({e}); {} articles were stored this run; \
             send them again to get their verdicts (marked \"indexed\":true)",
            counts.new + counts.duplicates + counts.rewrites
        );
    }
    if !a.quiet {
        let why = match stop.flatten() {
            Some(why) => format!(" (stopped by {why})"),
            None => String::new(),
        };
        terminal.println(&counts.summary("watch", &why, "verdict latency", &index));
        if let Some(example) = &counts.ignored_date_example {
            terminal.println(&ignored_dates_note(counts.ignored_dates, example, true));
        }
    }
    if let Some(failed) = read_failed {
        anyhow::bail!("{failed}; the articles before it were decided and stored");
    }
    Ok(if counts.rejected > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// A failed write to the index (a full disk, say) with what is kept and what to do next.
/// Verdicts are printed only once their articles are written, so every article answered
/// is stored; `again` says how to send the rest.
pub(crate) fn after_failed_write(e: anyhow::Error, again: &str) -> anyhow::Error {
    let Some(io) = e
        .downcast_ref::<neardup::Error>()
        .and_then(|e| match e.kind() {
            neardup::ErrorKind::Io { source, .. } => Some(source),
            _ => None,
        })
    else {
        return e;
    };
    let fix = match io.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            "free space on the disk holding the index, then"
        }
        _ => "once that is fixed,",
    };
    anyhow::anyhow!(
        "{e:#}\n  every article answered before this is stored; the rest are not answered \
         (some may be stored): {fix} {again}"
    )
}

/// `, N rewrites` in a summary line, for a story index only (a copy index has none).
fn rewrites_clause(index: &FeedIndex, rewrites: u64) -> String {
    if index.settings().level == Level::Story {
        format!(", {}", count(rewrites, "rewrite", "rewrites"))
    } else {
        String::new()
    }
}

impl WatchCounts {
    /// The closing line of `command` (`stopped`: why it stopped, if it says), with its
    /// latencies under the name `latency`.
    pub(crate) fn summary(
        &mut self,
        command: &str,
        stopped: &str,
        latency: &str,
        index: &FeedIndex,
    ) -> String {
        format!(
            "neardup: {command}: {} ({} new, {}{}, {} already indexed), {} rejected{}{stopped}; {latency} {}; the index holds {}",
            count(
                self.new + self.duplicates + self.rewrites + self.already_indexed,
                "article",
                "articles"
            ),
            self.new,
            count(self.duplicates, "duplicate", "duplicates"),
            rewrites_clause(index, self.rewrites),
            self.already_indexed,
            self.rejected,
            if self.checked > 0 {
                format!(", {} checked without storing", self.checked)
            } else {
                String::new()
            },
            self.latencies.describe(),
            count(index.len() as u64, "article", "articles"),
        )
    }
}

/// Writes one answer line and counts it.
pub(crate) fn acknowledge(
    out: &mut dyn Write,
    answer: &Answer,
    counts: &mut WatchCounts,
    all_matches: bool,
    quiet: bool,
    source: &str,
) -> io::Result<()> {
    if let Answer::Verdict(v, line) | Answer::Checked(v, line) = answer {
        if let Some(date) = &v.ignored_date {
            counts.ignored_dates += 1;
            if counts.ignored_date_example.is_none() && !quiet {
                // Said at once: a long-running feed would otherwise run without its
                // window until it stops. Later ones are counted in the summary.
                eprintln!(
                    "neardup: warning: {source}:{line}: the date of article {:?} is not used ({date}): it counts as undated; its verdict says \"date_ignored\", as will later ones' (counted in the summary)",
                    v.id
                );
            }
            counts
                .ignored_date_example
                .get_or_insert_with(|| (**date).clone());
        }
    }
    match answer {
        Answer::Verdict(v, _) => {
            match v.kind {
                // A re-send: counted apart, as 'index add' does, not as a new article.
                _ if v.already_indexed => counts.already_indexed += 1,
                VerdictKind::New => counts.new += 1,
                VerdictKind::Rewrite => counts.rewrites += 1,
                _ => counts.duplicates += 1,
            }
            feed::write_json_line(out, &VerdictRecord::new(v, false, all_matches))
        }
        Answer::Checked(v, _) => {
            counts.checked += 1;
            feed::write_json_line(out, &VerdictRecord::new(v, true, all_matches))
        }
        Answer::Rejected { id, line, reason } => {
            counts.rejected += 1;
            if !quiet {
                eprintln!("neardup: warning: {source}:{line}: {reason}");
            }
            feed::write_json_line(
                out,
                &RejectedRecord::new(id.as_deref(), *line, reason.clone()),
            )
        }
    }
}

/// Parses, fingerprints and adds one input line.
pub(crate) fn decide(
    index: &mut FeedIndex,
    fingerprinter: &mut neardup::pipeline::Fingerprinter,
    fields: &FieldNames,
    line: u64,
    bytes: &[u8],
) -> Result<Answer> {
    match prepare(fingerprinter, fields, line, bytes) {
        Ok(article) => commit(index, article, line),
        Err(rejected) => Ok(rejected),
    }
}

/// The article of one input line, fingerprinted (any thread may do it), or why the line
/// is rejected.
pub(crate) fn prepare(
    fingerprinter: &mut neardup::pipeline::Fingerprinter,
    fields: &FieldNames,
    line: u64,
    bytes: &[u8],
) -> Result<Article, Answer> {
    let rejected = |reason: String| Answer::Rejected {
        id: None,
        line,
        reason,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| {
        rejected(
            neardup::input::ProblemKind::InvalidUtf8 {
                byte: e.valid_up_to(),
            }
            .to_string(),
        )
    })?;
    Article::from_json(text, fields, fingerprinter, feed::now()).map_err(|kind| Answer::Rejected {
        // A record refused for its text or date still says whose it was.
        id: neardup::input::usable_id(text, fields),
        line,
        reason: kind.to_string(),
    })
}

/// Adds a prepared article to the index: its verdict, or its rejection for an id already
/// indexed with other text.
pub(crate) fn commit(index: &mut FeedIndex, article: Article, line: u64) -> Result<Answer> {
    let verdict = index.add(&article)?.map(|v| Answer::Verdict(v, line));
    Ok(verdict.unwrap_or_else(|| id_taken(article, line, "this record is skipped")))
}

/// The verdict on a prepared article without adding it (`serve`'s `/query`), or its
/// rejection for an id already indexed with other text.
pub(crate) fn check(index: &mut FeedIndex, article: Article, line: u64) -> Result<Answer> {
    let verdict = index.query(&article)?.map(|v| Answer::Checked(v, line));
    Ok(verdict.unwrap_or_else(|| id_taken(article, line, "this record is not checked")))
}

fn id_taken(article: Article, line: u64, so: &str) -> Answer {
    Answer::Rejected {
        id: Some(article.id),
        line,
        reason: format!(
            "duplicate id: an article with this id is already indexed with other text; {so}"
        ),
    }
}

/// `--commit-every`, `--max-group`: a whole number, at least 1.
pub(crate) fn parse_count(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("must be a whole number, at least 1".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("7d"), Ok(7 * 86_400));
        assert_eq!(parse_duration("36h"), Ok(36 * 3600));
        assert_eq!(parse_duration("90m"), Ok(5400));
        assert_eq!(parse_duration("2w"), Ok(14 * 86_400));
        assert_eq!(parse_duration("3600"), Ok(3600));
        assert!(parse_duration("0d").is_err());
        assert!(parse_duration("7 fortnights").is_err());
        assert!(parse_duration("d").is_err());
    }

    #[test]
    fn latency_percentiles() {
        let mut latencies = Latencies::default();
        assert_eq!(latencies.describe(), "n/a");
        for ms in 1..=100 {
            latencies.record(Duration::from_millis(ms), 1);
        }
        // Nearest rank, to three significant digits.
        let [median, p99, max] = latencies.percentiles_ms().unwrap();
        for (got, expected) in [(median, 50.0), (p99, 99.0), (max, 100.0)] {
            assert!(
                (got - expected).abs() <= expected * 1e-3,
                "{got} for {expected}"
            );
        }
        assert!(latencies.describe().starts_with("median 50.0"));
        // A month of answers is still one small histogram.
        latencies.record(Duration::from_secs(90), 1_000_000_000);
        let [median, p99, max] = latencies.percentiles_ms().unwrap();
        assert!(
            median == p99 && p99 == max && (max - 90_000.0).abs() < 90.0,
            "{max}"
        );
        assert_eq!(latencies.0.len(), 1_000_000_100);
        assert!(latencies.0.distinct_values() < 100_000, "counters stay few");
    }
}
