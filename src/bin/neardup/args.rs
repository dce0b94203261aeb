//! Command-line flags: the one place they are defined (they feed `--help`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use neardup::shingle::ShingleSpec;

const EXAMPLES: &str = "\
Examples:
  neardup cluster texts/                         clusters of near-copies among text files
  neardup pairs news.jsonl.gz --threshold 0.8    every pair with Jaccard >= 0.8
  neardup dedup feed.jsonl -o clean.jsonl --report dropped.jsonl
  zcat a.jsonl.gz | neardup cluster - --format table
  neardup pairs news.jsonl --passages            ... with the passages each pair shares
  neardup cluster archive/ --checkpoint ck/ -o c.jsonl   killed? run it again: it resumes

Inputs: JSON Lines (.jsonl, .ndjson, .json; one object per line, with the id and text in
--id-field and --text-field, every other field kept as metadata), text files (.txt, one
document each), directories (searched for .txt documents, whose id is the relative
path, and for JSON Lines files; other files are skipped), and
'-' for standard input (JSON Lines unless --input-format text). Gzip and zstd inputs are
decompressed whatever their name; an output file named .gz or .zst is compressed.

Bad records (malformed JSON, invalid UTF-8, missing or non-string fields, empty texts
and texts without a word (only punctuation, symbols, emoji or invisible characters),
duplicate ids, truncated compressed streams, unreadable files) are reported with file
and line, counted in the summary, and skipped (the first record with an id keeps it,
even one skipped for its text); the exit code is then 2. --strict stops at the first one.

Story level (--level story): groups copies, updates and rewrites of one news story, even
when reworded (word 5-gram Jaccard near 0), and keeps templated look-alikes apart:
  neardup cluster --level story feed.jsonl                   dated articles match within 72h
  neardup cluster --level story archive.jsonl --window none  or at any distance
  neardup pairs --level story feed.jsonl --format table      kind, score, components
  neardup stats count archive.jsonl -o archive.stats   (or --stats-out of a story run)
  neardup cluster --level story today.jsonl --stats archive.stats

Exit codes: 0 success, 1 fatal error, 2 finished with bad input (or a usage error).";

#[derive(Debug, Parser)]
#[command(
    name = "neardup",
    version,
    about = "Find near-duplicate and copied news articles (shingles, MinHash, LSH, exact verification) \
             and, with --level story, the rewrites and updates of one news story.",
    after_help = "Run 'neardup help <COMMAND>' for the flags of a command.",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The command line, with negative numbers taken as flag values: `--step -0.1` is then
/// refused by the flag's own range, not as "unexpected argument '-0'".
pub fn command() -> clap::Command {
    fn negatives(command: clap::Command) -> clap::Command {
        command
            .mut_args(|arg| {
                let takes_values = arg.get_action().takes_values();
                arg.allow_negative_numbers(takes_values)
            })
            .mut_subcommands(negatives)
    }
    negatives(<Cli as clap::CommandFactory>::command())
}

/// The command line with `--flag -.5` given as `--flag=-.5`: clap takes `-1` and `-0.5`
/// as values (see [`command`]), but read `-.5`, `-1e-7` and `-inf` as flags ("unexpected
/// argument '-.'"), where the flag's own range says what is wrong. Only after a long flag
/// that takes a value, and before `--`.
pub fn negative_values_joined(
    command: &clap::Command,
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    fn takes_value(command: &clap::Command, long: &str) -> bool {
        command
            .get_arguments()
            .any(|a| a.get_long() == Some(long) && a.get_action().takes_values())
            || command.get_subcommands().any(|sub| takes_value(sub, long))
    }
    let mut joined: Vec<std::ffi::OsString> = Vec::new();
    let mut args = args.into_iter().peekable();
    while let Some(arg) = args.next() {
        if arg == "--" {
            joined.push(arg);
            joined.extend(args);
            break;
        }
        let long = arg.to_str().and_then(|a| a.strip_prefix("--"));
        let negative = args
            .peek()
            .and_then(|next| next.to_str())
            .filter(|next| next.starts_with('-') && next.parse::<f64>().is_ok());
        match (long, negative) {
            (Some(name), Some(value)) if !name.contains('=') && takes_value(command, name) => {
                let value = value.to_string();
                args.next();
                joined.push(format!("--{name}={value}").into());
            }
            _ => joined.push(arg),
        }
    }
    joined
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Group near-duplicate documents (--level story: articles of one story) into clusters.
    ///
    /// One JSON line per cluster. A cluster lists its members (with their metadata), a
    /// representative, its cohesion (lowest and mean Jaccard among its verified pairs; at
    /// the story level, lowest and mean score) and those pairs. Documents without a
    /// similar document are not listed.
    #[command(after_long_help = EXAMPLES)]
    Cluster(RunArgs),
    /// List every similar pair: both ids, estimated and exact Jaccard, containments
    /// (--level story: every same-story pair, its kind and score components).
    ///
    /// A pair is listed when the exact Jaccard similarity of its shingle sets reaches the
    /// threshold. Pairs are ordered by id, the smaller id first.
    #[command(
        after_long_help = EXAMPLES,
        mut_arg("mode", |a| a.hide(true)),
        mut_arg("representative", |a| a.hide(true))
    )]
    Pairs(RunArgs),
    /// Write the input records minus near-duplicates (--level story: minus other articles
    /// of one story), one kept per cluster.
    ///
    /// Records are written byte for byte (with their own line endings), in input order; the kept member of each cluster
    /// is its representative (see --representative). Malformed lines are not written
    /// (see --rejects). A record repeating an earlier record's id is dropped when its text
    /// has the first's shingles (a copy at any threshold) and rejected otherwise (also when
    /// either has no usable text), so output ids are unique. Records without a usable text
    /// (empty, missing) or id (null, an array, a boolean, a fraction) are written unchanged
    /// but not compared; one without a usable text still owns its id. Text-file inputs are
    /// written as {"id", "text"} JSON lines.
    #[command(after_long_help = EXAMPLES)]
    Dedup(DedupArgs),
    /// A persistent index for deduplicating a feed: create, add, query, stats, export, compact, remove, repair.
    ///
    /// Articles are added as they arrive and each gets a verdict at once (new, or a
    /// duplicate of an indexed article, with its score and cluster), without re-reading
    /// the archive. See 'neardup watch' for a live feed on standard input.
    Index(crate::feed::IndexArgs),
    /// Print a verdict for each article read from standard input as soon as it is
    /// decided, and add it to an index.
    Watch(crate::feed::WatchArgs),
    /// Answer articles pushed over HTTP with verdicts, and add them to an index: 'watch'
    /// for many scrapers at once.
    ///
    /// POST a body of JSON lines to /articles; the answer, once the articles are stored
    /// (see --durability), holds one verdict per article, in order, as 'watch' prints
    /// them. One process writes the index, whatever the number of clients.
    Serve(crate::serve::ServeArgs),
    /// Judge every threshold against gold labels: precision, recall, F1, misses and why.
    ///
    /// Runs the pipeline once and sweeps thresholds over its signatures, reporting the
    /// quality of the clusters at each, the best threshold, and charts.
    #[command(
        after_long_help = crate::eval::EVAL_HELP,
        mut_arg("story_threshold", |a| a.hide(true))
    )]
    Eval(Box<crate::eval::EvalArgs>),
    /// Show the LSH bands and rows a threshold gets and its S-curve P(candidate | s).
    #[command(after_long_help = crate::params::PARAMS_HELP)]
    Params(crate::params::ParamsArgs),
    /// Fingerprint documents for a distributed run: one JSON line per document with its
    /// LSH band keys, signature and shingle set, comparing nothing.
    ///
    /// The map step of neardup on a cluster engine: each worker sketches its share of the
    /// input with the same similarity flags, documents sharing a band key are candidate
    /// pairs, 'neardup verify' scores each from its two records and 'neardup link'
    /// clusters the verified pairs; with the same flags that gives the output of 'neardup
    /// pairs' and 'neardup cluster' on the whole input. scripts/spark/neardup_spark.py
    /// runs it on Apache Spark. The records are shown below the flags.
    ///
    /// With --level story, the band keys are those of the weighted word signature, weighed
    /// by --stats (the whole input's statistics, so that keys match across workers), and
    /// the record also holds the signature and the story features, for 'neardup verify'.
    #[command(after_long_help = SKETCH_EXAMPLES, mut_arg("verbose", |a| a.hide(true)))]
    Sketch(SketchArgs),
    /// Score candidate pairs of sketches as 'neardup pairs' would: the verify step of a
    /// distributed run.
    ///
    /// Reads JSON lines, each an array of two records of 'neardup sketch' (two documents
    /// that share a band key). Near-copy level: writes the 'neardup pairs' record of every
    /// pair whose exact Jaccard reaches --threshold, then "exact_jaccard" (unrounded: the
    /// shortest decimal of the 32-bit float that 'neardup link' averages).
    /// Story level (records of 'sketch --level story'): writes one JSON line per pair that
    /// gets scored: the fields of a 'pairs --level story' record (a, b, kind, score,
    /// components), then "probability" (unrounded), "same_story" and "veto"; pairs whose
    /// signatures agree on too few slots, and dated pairs further apart than --window, are
    /// counted and not written, as the batch level drops them. --stats must be the
    /// statistics the documents were sketched with.
    ///
    /// Every record must have been sketched with the settings of the first one read
    /// (shingles, seed, slots, statistics) and with this command's --level, --num-perm
    /// and --stats: a record made otherwise is refused by file and line, naming the
    /// setting.
    #[command(after_long_help = VERIFY_EXAMPLES)]
    Verify(VerifyArgs),
    /// Cluster verified pairs as 'neardup cluster' would: the last step of a distributed
    /// run.
    ///
    /// Reads the pairs 'neardup verify' wrote, then from --members the records of the
    /// documents that cluster (their sketch records serve; others are skipped), and writes
    /// the records of 'neardup cluster': representative, cohesion, members with their
    /// metadata and the pairs inside, largest cluster first. Near-copy level: --mode
    /// connected or leader. Story level: every judged pair (the linkage weighs the pairs
    /// across two clusters), majority linkage. The pairs of any union of connected
    /// components cluster on their own, so a cluster engine can link components apart and
    /// number the clusters afterwards.
    #[command(after_long_help = LINK_EXAMPLES)]
    Link(LinkArgs),
    /// Corpus statistics of the story level: count them over inputs, merge the counts of
    /// parts, show a file.
    ///
    /// The story level weighs words and names by their inverse document frequency. A file
    /// of statistics lets another run (--stats), the feed index (index create --stats) or
    /// a distributed run weigh by the same corpus.
    #[command(after_long_help = STATS_EXAMPLES)]
    Stats(StatsArgs),
    /// Compare two documents: scores, and both texts with their shared passages highlighted.
    ///
    /// A and B are two files (each read as one text document, gzip or zstd or plain), or,
    /// with --in, two ids of documents in those inputs. Passages are the stretches the two
    /// texts share, found in any order and across small edits; each is numbered and
    /// highlighted in both texts (in colour on a terminal, between [n> and <n] markers
    /// otherwise), then listed with its byte offsets, words and edits. Boilerplate
    /// (banners, footers, sign-offs that recur in many documents) is told apart when
    /// there is a corpus to count in: the --in inputs, or --corpus.
    #[command(
        after_long_help = COMPARE_EXAMPLES,
        mut_arg("checkpoint", |a| a.hide(true)),
        mut_arg("verbose", |a| a.hide(true))
    )]
    Compare(CompareArgs),
}

const SKETCH_EXAMPLES: &str = "\
Records, one JSON line per document (metadata: the record's other fields, absent when none;
'neardup link' lists them with each cluster member):
  {\"schema_version\":1,\"id\":…,
   \"settings\":\"level=near-copy shingle=words:5 seed=42 num_perm=128 tokenizer=<16 hex>
     bands=34 rows=3\",
   \"bands\":[\"<16 hex digits>\",…],\"signature\":\"<base64 of little-endian u32>\",
   \"set\":\"<base64 of sorted little-endian u64>\",\"date\":…|null,\"text_bytes\":…,
   \"metadata\":{…}}
  --level story:
  {\"schema_version\":1,\"level\":\"story\",\"id\":…,
   \"settings\":\"… stats=<digest of the statistics>\",
   \"bands\":[…],\"signature\":\"<base64 of little-endian u32>\",\"features\":\"<base64>\",
   \"set\":…,\"date\":…,\"text_bytes\":…,\"metadata\":{…}}

Examples:
  neardup sketch part-00017.jsonl.gz -o part-00017.sketch.jsonl
  spark-submit scripts/spark/neardup_spark.py news/*.jsonl.gz --output pairs-out --threshold 0.8
  neardup sketch --level story --stats all.stats part-00017.jsonl.gz -o part-00017.sketch.jsonl
  spark-submit scripts/spark/neardup_spark.py news/*.jsonl.gz --output stories-out --level story

Exit codes: 0 success, 1 fatal error, 2 finished with bad input (or a usage error).";

const VERIFY_EXAMPLES: &str = "\
Examples:
  neardup verify candidates.jsonl --threshold 0.8 -o verified.jsonl
  neardup verify --level story --stats all.stats candidates.jsonl -o judged.jsonl
  spark-submit scripts/spark/neardup_spark.py news/*.jsonl.gz --output stories-out --level story

Exit codes: 0 success, 1 fatal error (a line that is not a pair of sketches of the level,
named by file and line), 2 a usage error (e.g. a story-level flag without --level story).";

const LINK_EXAMPLES: &str = "\
Examples:
  neardup link verified.jsonl --members 1.sketch.jsonl 2.sketch.jsonl -o clusters.jsonl
  neardup link verified.jsonl --mode leader --bucket-cap 1000 --members *.sketch.jsonl
  neardup link --level story judged-*.jsonl --members sketches.jsonl.gz --format table
  spark-submit scripts/spark/neardup_spark.py news/*.jsonl.gz --output stories-out --level story

Exit codes: 0 success, 1 fatal error (a line that is not a pair of the level or a document
record, a pair judged at another --story-threshold, a clustered document without a record,
each named by file and line), 2 a usage error (e.g. a story-level flag without --level
story).";

const STATS_EXAMPLES: &str = "\
Examples:
  neardup stats count archive.jsonl.gz -o archive.stats
  neardup stats count part-1.jsonl -o 1.stats; neardup stats count part-2.jsonl -o 2.stats
  neardup stats merge 1.stats 2.stats -o all.stats      the same as counting both at once
  neardup stats show all.stats
  neardup cluster --level story today.jsonl --stats archive.stats
  neardup index create stories.idx --level story --stats archive.stats

Exit codes: 0 success, 1 fatal error, 2 finished with bad input (count).";

#[derive(Debug, Args)]
// Taken from the shared similarity flags only to be refused (main.rs, IGNORED_FLAGS).
#[command(mut_arg("bucket_cap", |a| a.hide(true)))]
pub struct SketchArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub similarity: SimilarityArgs,
    /// near-copy: band keys of the shingle signature (--threshold, --bands, --rows).
    /// story: band keys of the IDF-weighted word signature, with the story features, for
    /// a distributed story run.
    #[arg(long, value_enum, default_value_t = LevelArg::NearCopy, help_heading = "Level")]
    pub level: LevelArg,
    /// Story level: weigh words by these statistics; a distributed run gives every worker
    /// the whole input's (each part counted with 'neardup stats count', then 'neardup
    /// stats merge'). Default: the statistics of the documents read.
    #[arg(long, value_name = "FILE", help_heading = "Level")]
    pub stats: Option<PathBuf>,
    /// Story level: IDF-weighted Jaccard at which a pair becomes a candidate with
    /// probability ~0.93 (as --story-candidates of 'neardup pairs').
    #[arg(long, default_value_t = 0.2, value_name = "T", value_parser = parse_threshold, help_heading = "Level")]
    pub story_candidates: f64,
    /// Write to FILE instead of standard output (atomically: the file appears only when
    /// complete; gzip or zstd compressed when FILE ends in .gz or .zst).
    #[arg(short, long, value_name = "FILE", help_heading = "Output")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub run: ExecArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Candidate pairs: JSON lines of [sketch record, sketch record] (plain, gzip or
    /// zstd); '-' reads standard input.
    #[arg(default_value = "-", value_name = "PAIRS")]
    pub input: String,
    /// The level the documents were sketched at (sketch --level).
    #[arg(long, value_enum, default_value_t = LevelArg::NearCopy)]
    pub level: LevelArg,
    /// Near-copy level: lowest exact Jaccard kept (as --threshold of 'neardup pairs').
    #[arg(short, long, default_value_t = 0.5, value_name = "T", value_parser = parse_threshold)]
    pub threshold: f64,
    /// Near-copy level: MinHash slots of the sketches' signatures (sketch --num-perm).
    #[arg(long, default_value_t = 128, value_name = "K", value_parser = parse_num_perm)]
    pub num_perm: usize,
    /// Story level: the statistics the documents were sketched with (sketch --stats).
    #[arg(long, value_name = "FILE")]
    pub stats: Option<PathBuf>,
    /// Story level: dated articles further apart than this are never one story (as
    /// --window of 'neardup pairs --level story'; 'none': any distance).
    #[arg(long, value_name = "DURATION", value_parser = parse_window, default_value = "72h")]
    pub window: Window,
    /// Story level: the candidate threshold the documents were sketched with (sketch
    /// --story-candidates): pairs whose signatures agree on fewer than three quarters of
    /// it are dropped, as the batch drops such bucket mates.
    #[arg(long, default_value_t = 0.2, value_name = "T", value_parser = parse_threshold)]
    pub story_candidates: f64,
    /// Story level: lowest model probability decided as one story (default: the fitted
    /// model's cut).
    #[arg(long, value_name = "P", value_parser = parse_probability)]
    pub story_threshold: Option<f64>,
    /// Write to FILE instead of standard output (atomically: the file appears only when
    /// complete; gzip or zstd compressed when FILE ends in .gz or .zst).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// No summary on standard error.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct LinkArgs {
    /// Verified or judged pairs, as 'neardup verify' writes them (plain, gzip or zstd);
    /// '-' reads standard input.
    #[arg(default_value = "-", value_name = "PAIRS")]
    pub inputs: Vec<String>,
    /// The level the pairs were verified at (verify --level).
    #[arg(long, value_enum, default_value_t = LevelArg::NearCopy)]
    pub level: LevelArg,
    /// Near-copy level: connected (components) or leader (every member similar to the
    /// representative), as --mode of 'neardup cluster'.
    #[arg(long, value_enum, default_value_t = ModeArg::Connected)]
    pub mode: ModeArg,
    /// Near-copy level, --mode leader: the --bucket-cap the candidates were found with.
    /// More than N members with one shingle set (read from their sketch records) are a
    /// group of copies, moved into a cluster as one, as 'neardup cluster' moves them.
    #[arg(long, default_value_t = 1000, value_name = "N", value_parser = parse_bucket_cap)]
    pub bucket_cap: usize,
    /// Records of the documents (their sketch records, or JSON lines with id, date as
    /// whole seconds since 1970 or null, text_bytes and metadata, whose bytes are copied
    /// as written: sketch records give output byte-identical to 'neardup cluster'; plain,
    /// gzip or zstd): only those of clustered documents are kept. Takes every path up to the next flag, so give the judged
    /// pairs first (or end the list with --).
    #[arg(long, value_name = "FILE", required = true, num_args = 1..)]
    pub members: Vec<PathBuf>,
    /// Story level: the cut the pairs were judged at (verify --story-threshold; default:
    /// the fitted model's). A pair judged at another is refused.
    #[arg(long, value_name = "P", value_parser = parse_probability)]
    pub story_threshold: Option<f64>,
    /// Which member represents a cluster: earliest (undated last, then longest, then
    /// smallest id) or longest (then earliest, then smallest id).
    #[arg(long, default_value = "earliest", value_parser = link_representative())]
    pub representative: RepresentativeArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Jsonl)]
    pub format: FormatArg,
    /// Write to FILE instead of standard output (atomically: the file appears only when
    /// complete; gzip or zstd compressed when FILE ends in .gz or .zst).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// No summary on standard error.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `link --representative`: earliest or longest. `first` is taken only to be refused with
/// its reason (verified pairs keep no input order), so the help does not list it.
fn link_representative() -> impl clap::builder::TypedValueParser<Value = RepresentativeArg> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new([
        PossibleValue::new("earliest")
            .help("Earliest date (undated last), then longest, then smallest id"),
        PossibleValue::new("longest").help("Longest text, then earliest, then smallest id"),
        PossibleValue::new("first").hide(true),
    ])
    .map(|value| match value.as_str() {
        "longest" => RepresentativeArg::Longest,
        "first" => RepresentativeArg::First,
        _ => RepresentativeArg::Earliest,
    })
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(subcommand)]
    pub command: StatsCommand,
}

#[derive(Debug, Subcommand)]
pub enum StatsCommand {
    /// Count the statistics of the inputs (in how many documents each word and name
    /// occurs), comparing nothing.
    ///
    /// The same statistics as 'neardup cluster --level story --stats-out' writes.
    #[command(mut_arg("verbose", |a| a.hide(true)))]
    Count(StatsCountArgs),
    /// Sum statistics counted over disjoint parts of a corpus into the statistics of the
    /// whole (exactly those of counting every part at once).
    Merge(StatsMergeArgs),
    /// Show what a statistics file holds: documents, distinct words and names, and the
    /// inverse document frequencies from which a word counts as common and as rare.
    Show(StatsShowArgs),
}

#[derive(Debug, Args)]
pub struct StatsCountArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// The statistics file to write (atomically).
    #[arg(
        short,
        long,
        value_name = "FILE",
        required = true,
        help_heading = "Output"
    )]
    pub output: PathBuf,
    #[command(flatten)]
    pub run: ExecArgs,
}

#[derive(Debug, Args)]
pub struct StatsMergeArgs {
    /// Statistics files, each counted over its own part of the corpus.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The merged statistics file to write (atomically).
    #[arg(short, long, value_name = "FILE", required = true)]
    pub output: PathBuf,
    /// No summary on standard error.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct StatsShowArgs {
    /// A statistics file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

const COMPARE_EXAMPLES: &str = "\
Examples:
  cd fixtures/wire-story && neardup compare 003_58dcb8302d6f0541.txt 004_0cbea367e9eb4548.txt
  neardup compare --in reuters21578.jsonl reuters-956 reuters-1002   two ids of an input
  neardup compare a.txt b.txt --corpus archive.jsonl          boilerplate and word weights
  neardup compare a.txt b.txt --stats archive.stats           word weights of 'stats count'
  neardup compare a.txt b.txt --format json                   one JSON object
  neardup pairs news.jsonl --passages                         passages of every similar pair

Exit codes: 0 success, 1 fatal error (e.g. an id not found), 2 finished with bad input.";

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The first document: a file, or an id with --in.
    #[arg(value_name = "A")]
    pub a: String,
    /// The second document: a file, or an id with --in.
    #[arg(value_name = "B")]
    pub b: String,
    /// Look A and B up as ids in these inputs (JSON Lines, text files, directories).
    /// Every document read also counts for boilerplate.
    #[arg(long = "in", value_name = "INPUT", help_heading = "Input")]
    pub inputs: Vec<String>,
    /// With two files: count boilerplate in these inputs as well, and weigh words for the
    /// story verdict by how many of them hold each.
    #[arg(long, value_name = "INPUT", help_heading = "Input")]
    pub corpus: Vec<String>,
    /// Weigh words for the story verdict by these corpus statistics (written by
    /// `neardup stats count` or `cluster --level story --stats-out`) instead of the documents read. Two files
    /// alone are too few to tell a rare word from a common one.
    #[arg(long, value_name = "FILE", help_heading = "Input")]
    pub stats: Option<std::path::PathBuf>,
    /// Story verdict: two dated documents (with --in) further apart than this are two
    /// stories, as the story level decides ('none': any distance).
    #[arg(long, value_name = "DURATION", value_parser = parse_window, default_value = "72h", help_heading = "Input")]
    pub window: Window,
    /// JSON field holding the document id.
    #[arg(
        long,
        default_value = "id",
        value_name = "FIELD",
        help_heading = "Input"
    )]
    pub id_field: String,
    /// JSON field holding the text: a top-level key (`body.text` names a key with a dot
    /// in it, not a nested field).
    #[arg(
        long,
        default_value = "text",
        value_name = "FIELD",
        help_heading = "Input"
    )]
    pub text_field: String,
    /// JSON field holding the date, for the story level's --window (as --date-field of
    /// 'neardup pairs --level story', so the verdict is the one it reports).
    #[arg(
        long,
        default_value = "date",
        value_name = "FIELD",
        help_heading = "Input"
    )]
    pub date_field: String,
    /// Shingles for the scores: words:N or chars:N.
    #[arg(
        long,
        default_value = "words:5",
        value_name = "KIND:N",
        help_heading = "Similarity"
    )]
    pub shingle: ShingleSpec,
    /// Slots of the MinHash signature (for the estimated Jaccard).
    #[arg(
        long,
        default_value_t = 128,
        value_name = "K",
        value_parser = parse_num_perm,
        help_heading = "Similarity"
    )]
    pub num_perm: usize,
    /// Seed of the MinHash hash functions.
    #[arg(long, default_value_t = 42, help_heading = "Similarity", value_parser = parse_seed)]
    pub seed: u64,
    #[command(flatten)]
    pub passages: PassageTuning,
    /// text: scores and highlighted texts for people; json: one JSON object.
    #[arg(long, value_enum, default_value_t = CompareFormat::Text, help_heading = "Output")]
    pub format: CompareFormat,
    /// Colours in text output (auto: when standard output is a terminal and NO_COLOR is
    /// not set).
    #[arg(long, value_enum, default_value_t = ColorArg::Auto, help_heading = "Output")]
    pub color: ColorArg,
    #[command(flatten)]
    pub run: ExecArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CompareFormat {
    /// Scores, both texts with the passages highlighted, and the list of passages.
    Text,
    /// One JSON object with the scores and the passages.
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Passages")]
pub struct PassageArgs {
    /// Also report what each pair shares: the passages, with byte offsets and text in both
    /// documents, words and word edits, boilerplate marked, and the fraction of each
    /// document they cover (adds passages, coverage_a, coverage_b to every pair). Near-copy
    /// level only: for a story pair, `neardup compare` shows its passages. The other flags
    /// of this section tune it and are refused without it.
    #[arg(long)]
    pub passages: bool,
    #[command(flatten)]
    pub tuning: PassageTuning,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Passages")]
pub struct PassageTuning {
    /// Shortest passage reported, in words.
    #[arg(long, default_value_t = 8, value_name = "N", value_parser = parse_min_passage_words)]
    pub min_passage_words: usize,
    /// Longest run of differing words bridged inside one passage (0: exact passages only;
    /// at most 32).
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = parse_passage_gap)]
    pub passage_gap: usize,
    /// Text whose shingles each occur in at least N documents of the inputs is boilerplate
    /// (marked, with its document count, and left out of the coverage) when both
    /// documents of the pair have text of their own beside it. Raise N for corpora where
    /// stories are syndicated to many outlets.
    #[arg(long, default_value_t = 20, value_name = "N", value_parser = parse_boilerplate_docs)]
    pub boilerplate_docs: u64,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub similarity: SimilarityArgs,
    #[command(flatten)]
    pub clustering: ClusterArgs,
    #[command(flatten)]
    pub story: StoryArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub passages: PassageArgs,
    #[command(flatten)]
    pub run: ExecArgs,
}

#[derive(Debug, Args)]
pub struct DedupArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub similarity: SimilarityArgs,
    #[command(flatten)]
    pub clustering: ClusterArgs,
    #[command(flatten)]
    pub story: StoryArgs,
    /// Write the kept records here instead of standard output (atomically: the file
    /// appears only when complete; gzip or zstd compressed when FILE ends in .gz or .zst).
    #[arg(short, long, value_name = "FILE", help_heading = "Output")]
    pub output: Option<PathBuf>,
    /// Write what was dropped and why to FILE: one record per dropped record, with the id
    /// kept in its place, the cluster, the best match and its score, the location and the
    /// reason (near_duplicate or, at the story level, same_story; repeated_id for a record
    /// repeating an earlier record's id and text).
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub report: Option<PathBuf>,
    /// Format of the --report file.
    #[arg(long, value_enum, default_value_t = FormatArg::Jsonl, help_heading = "Output")]
    pub report_format: FormatArg,
    /// Write malformed input lines (records over --max-record-bytes too), and records
    /// repeating an id with other text (or without a usable text), verbatim, to FILE.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub rejects: Option<PathBuf>,
    #[command(flatten)]
    pub run: ExecArgs,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Input")]
pub struct InputArgs {
    /// Files or directories to read; '-' reads standard input.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<String>,
    /// JSON field holding the document id (a string or an integer).
    #[arg(long, default_value = "id", value_name = "FIELD")]
    pub id_field: String,
    /// JSON field holding the text: a top-level key (`body.text` names a key with a dot
    /// in it, not a nested field).
    #[arg(long, default_value = "text", value_name = "FIELD")]
    pub text_field: String,
    #[arg(
        long,
        default_value = "date",
        value_name = "FIELD",
        help = concat!(
            "JSON field holding the date (used by --representative earliest and the story \
             level's --window): ",
            date_forms!(),
            ". Dates in no such form are counted and the article treated as undated."
        )
    )]
    pub date_field: String,
    /// Read every input in this format, whatever its name.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub input_format: Option<InputFormatArg>,
    /// Longest record accepted; longer ones are reported and skipped (e.g. 256MiB, 1.5G;
    /// at most 4GiB, which is taken as 4GiB - 1 byte, the longest text).
    #[arg(long, default_value = "256MiB", value_parser = parse_record_size, value_name = "SIZE")]
    pub max_record_bytes: u64,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Similarity")]
pub struct SimilarityArgs {
    /// Shingles: words:N (word n-grams) or chars:N (character n-grams).
    #[arg(long, default_value = "words:5", value_name = "KIND:N")]
    pub shingle: ShingleSpec,
    /// Slots of the MinHash signature: more is more accurate and slower (1 to 65536).
    #[arg(long, default_value_t = 128, value_name = "K", value_parser = parse_num_perm)]
    pub num_perm: usize,
    /// Seed of the MinHash hash functions.
    #[arg(long, default_value_t = 42, value_parser = parse_seed)]
    pub seed: u64,
    /// Lowest exact Jaccard similarity of a reported pair, in (0, 1].
    #[arg(short, long, default_value_t = 0.5, value_name = "T", value_parser = parse_threshold)]
    pub threshold: f64,
    /// LSH bands (default: derived from --threshold, see 'neardup params'; given --rows
    /// alone, --num-perm / rows).
    #[arg(long, value_name = "B", value_parser = parse_bands_or_rows)]
    pub bands: Option<usize>,
    /// Signature slots per LSH band (default: derived from --threshold; given --bands
    /// alone, --num-perm / bands).
    #[arg(long, value_name = "R", value_parser = parse_bands_or_rows)]
    pub rows: Option<usize>,
    /// LSH buckets larger than this are not expanded into all their pairs: each member is
    /// paired with its next N-1 members in id order instead, and the bucket is reported.
    #[arg(long, default_value_t = 1000, value_name = "N", value_parser = parse_bucket_cap)]
    pub bucket_cap: usize,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Clustering")]
pub struct ClusterArgs {
    /// connected: clusters are connected components (a~b, b~c puts a, b, c together);
    /// leader: a document joins a cluster only if similar to its representative.
    #[arg(long, value_enum, default_value_t = ModeArg::Connected)]
    pub mode: ModeArg,
    /// Which member represents a cluster (and is the one dedup keeps).
    #[arg(long, value_enum, default_value_t = RepresentativeArg::Earliest)]
    pub representative: RepresentativeArg,
}

/// How the story level is chosen and tuned (see `--level`).
#[derive(Debug, Args)]
#[command(next_help_heading = "Level")]
pub struct StoryArgs {
    /// near-copy: documents that share most of their text (word-shingle Jaccard >=
    /// --threshold). story: copies, updates and rewrites of one news story, decided from
    /// IDF-weighted words, names, shared text, figures and dates; templated look-alikes
    /// (yesterday's market report, another company's notice in the same template) stay
    /// apart. Every story pair says its kind (copy, update, rewrite) and the score
    /// components behind it. The flags marked "Story level" are refused without --level
    /// story; the near-copy flags among --threshold, --mode, --num-perm, --bands, --rows
    /// and --bucket-cap that this command has (unused there) are refused with it, and
    /// --shingle takes only words:N.
    #[arg(long, value_enum, default_value_t = LevelArg::NearCopy)]
    pub level: LevelArg,
    /// Story level: dated articles further apart than this are never one story (e.g.
    /// 36h, 3d; the date comes from --date-field), since the same running story on
    /// another day, or a report's next edition, is another story. 'none': any distance.
    /// Undated articles match any.
    #[arg(long, value_name = "DURATION", value_parser = parse_window, default_value = "72h")]
    pub window: Window,
    /// Story level: score against these corpus statistics (written by --stats-out or
    /// 'neardup stats count') instead of this run's, e.g. to judge a small batch against an archive.
    #[arg(long, value_name = "FILE")]
    pub stats: Option<std::path::PathBuf>,
    /// Story level: write the corpus statistics used (document frequencies of words and
    /// names) to FILE, for a later --stats.
    #[arg(long, value_name = "FILE")]
    pub stats_out: Option<std::path::PathBuf>,
    /// Story level: IDF-weighted Jaccard of rare content words at which a pair becomes
    /// a candidate for scoring with probability ~0.93 (lower finds more, slower).
    #[arg(long, default_value_t = 0.2, value_name = "T", value_parser = parse_threshold)]
    pub story_candidates: f64,
    /// Story level: lowest model probability decided as one story (default: the fitted
    /// model's cut, see BENCHMARKS.md). Lower merges more; 0 lists every scored candidate
    /// with its components, to see why a pair was or was not matched.
    #[arg(long, value_name = "P", value_parser = parse_probability)]
    pub story_threshold: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LevelArg {
    /// Near-copies: shared text.
    NearCopy,
    /// One news story: copies, updates and rewrites.
    Story,
}

impl From<LevelArg> for neardup::Level {
    fn from(level: LevelArg) -> Self {
        match level {
            LevelArg::NearCopy => neardup::Level::NearCopy,
            LevelArg::Story => neardup::Level::Story,
        }
    }
}

/// A story window in seconds, or none.
#[derive(Clone, Copy, Debug)]
pub struct Window(pub Option<i64>);

fn parse_window(s: &str) -> Result<Window, String> {
    parse_window_seconds(s).map(|w| Window(w.map(|secs| secs as i64)))
}

/// A story or index `--window` in seconds: a whole number with its unit, or `none`.
pub fn parse_window_seconds(s: &str) -> Result<Option<u64>, String> {
    // A bare number was taken as seconds: `--window 72` meant 72 s, not the 72h intended.
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        if t.parse::<f64>() == Ok(0.0) {
            // `0h` would be refused too.
            return Err(WINDOW_NOT_ZERO.into());
        }
        if t.contains('.') {
            // `1.5h` would be refused too.
            return Err(
                "give a whole number with a unit, e.g. 90m (s, m, h, d or w; 'none': no window)"
                    .into(),
            );
        }
        return Err(format!(
            "give a unit, e.g. {t}h (s, m, h, d or w; 'none': no window)"
        ));
    }
    none_or(s, crate::feed::parse_duration)
}

/// What a window of 0 gets told.
pub const WINDOW_NOT_ZERO: &str = "the window must be longer than 0 ('none' for no window)";

/// `none`, or what `parse` makes of the text.
pub fn none_or<T>(s: &str, parse: impl Fn(&str) -> Result<T, String>) -> Result<Option<T>, String> {
    if s.trim() == "none" {
        Ok(None)
    } else {
        parse(s).map(Some)
    }
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// Write to FILE instead of standard output (atomically: the file appears only when
    /// complete; gzip or zstd compressed when FILE ends in .gz or .zst).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Jsonl)]
    pub format: FormatArg,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Run")]
pub struct ExecArgs {
    /// Worker threads, 1 to 1024 (default: one per core).
    #[arg(long, value_name = "N", value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// No progress bars, warnings or summary on standard error; a run that skipped bad
    /// records or inputs still says so in one line naming the first (exit code 2).
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Also print the time each stage took, and the LSH bands and rows used.
    #[arg(short, long)]
    pub verbose: bool,
    /// Stop with an error at the first bad record or unreadable input.
    #[arg(long)]
    pub strict: bool,
    /// Progress bars on standard error.
    #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
    pub progress: ProgressArg,
    /// Memory for each store of per-document data before it spills to a temporary file
    /// (e.g. 512MiB): shingle sets; at the story level also story features and their
    /// weights; with --passages (pairs, cluster) the records' texts and the passages found. A set store that outgrew it keeps an
    /// eighth of it as the buffer of its file. Larger is faster, up to all in memory.
    #[arg(long, default_value = "512MiB", value_parser = parse_size, value_name = "SIZE")]
    pub memory_budget: u64,
    /// Directory for temporary files (default: the system's).
    #[arg(long, value_name = "DIR")]
    pub temp_dir: Option<PathBuf>,
    /// Keep the fingerprints of every batch read in DIR (created if missing), so that a
    /// run that is killed, started again with the same DIR, re-reads its inputs but
    /// fingerprints only what it had not reached. A later run over the same inputs with
    /// other comparison settings (--threshold, --window, clustering, output) reuses them
    /// all. Inputs changed since are fingerprinted afresh from their first changed
    /// batch; other fingerprint settings (--shingle, fields, level), other inputs (another
    /// first input file, or standard input: inputs are known by their names too, so a
    /// moved or renamed file is another input) and a second run on DIR are refused. Takes disk of about 1.6 times the input (2.5 times
    /// at the story level) and little time (what it holds is not spilled again); delete
    /// DIR when done.
    #[arg(long, value_name = "DIR")]
    pub checkpoint: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum InputFormatArg {
    /// One JSON object per line.
    Jsonl,
    /// Each file is one document.
    Text,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Connected components (union-find); chains.
    #[value(alias = "union")]
    Connected,
    /// Every member is similar to the representative; does not chain.
    #[value(alias = "star")]
    Leader,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RepresentativeArg {
    /// Earliest date (undated last), then longest, then smallest id.
    Earliest,
    /// Longest text, then earliest, then smallest id.
    Longest,
    /// First in input order (depends on input order, unlike the others).
    First,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FormatArg {
    /// One JSON object per line.
    Jsonl,
    /// One JSON array.
    Json,
    /// Comma-separated values with a header.
    Csv,
    /// An aligned table, for reading (a tab or newline in a value shown as \t, \n).
    Table,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProgressArg {
    /// When standard error is a terminal.
    Auto,
    Always,
    Never,
}

/// `--bucket-cap`: 2 (a bucket of one has no pair) to the most documents a run can hold
/// (ids are 32-bit), one wording for every command.
pub fn parse_bucket_cap(s: &str) -> Result<usize, String> {
    whole_number_in(s, 2..=u32::MAX as usize)
}

/// A whole number within `range`, or the one message every such flag gives.
pub fn whole_number_in(s: &str, range: std::ops::RangeInclusive<usize>) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(format!(
            "must be a whole number from {} to {}",
            range.start(),
            range.end()
        )),
    }
}

/// The smallest value above 0 a fractional flag takes: below it a similarity, a
/// probability or a step means nothing, and printed in full (`--threshold 1e-300` in a
/// summary) it ran to 300 digits.
pub const SMALLEST_ABOVE_ZERO: f64 = 1e-6;

/// A number above `low` (or equal to it, when `low_taken`) and at most `high` (no upper
/// end if `None`), 0 or at least [`SMALLEST_ABOVE_ZERO`]; or the one message every such
/// flag gives.
pub fn number_in(s: &str, low: f64, low_taken: bool, high: Option<f64>) -> Result<f64, String> {
    let span = match (low_taken, high) {
        (true, Some(high)) => format!("from {low} to {high}"),
        (false, Some(high)) => format!("above {low} and at most {high}"),
        (true, None) => format!("{low} or more"),
        (false, None) => format!("above {low}"),
    };
    let x: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("must be a number {span}"))?;
    let within =
        x.is_finite() && (x > low || (low_taken && x == low)) && high.is_none_or(|high| x <= high);
    if !within {
        return Err(format!("must be a number {span}")); // NaN too
    }
    if x != 0.0 && x.abs() < SMALLEST_ABOVE_ZERO {
        return Err(format!(
            "must be a number {span}; the smallest above 0 taken is {SMALLEST_ABOVE_ZERO}"
        ));
    }
    Ok(x + 0.0) // -0 as 0 (an index stored "model threshold -0")
}

/// `--threshold`, `--story-candidates`: a (weighted) Jaccard similarity in (0, 1].
pub fn parse_threshold(s: &str) -> Result<f64, String> {
    number_in(s, 0.0, false, Some(1.0))
}

/// `--story-threshold`: a probability in [0, 1].
pub fn parse_probability(s: &str) -> Result<f64, String> {
    number_in(s, 0.0, true, Some(1.0))
}

/// `--seed`: any 64-bit number.
pub fn parse_seed(s: &str) -> Result<u64, String> {
    whole_number_in(s, 0..=usize::MAX).map(|n| n as u64)
}

/// `--bands`, `--rows`: 1 to the largest signature (the pipeline checks them against
/// --num-perm).
pub fn parse_bands_or_rows(s: &str) -> Result<usize, String> {
    whole_number_in(s, 1..=neardup::sketch::MAX_NUM_PERM)
}

/// `--min-passage-words`: at least 1.
fn parse_min_passage_words(s: &str) -> Result<usize, String> {
    whole_number_in(s, 1..=usize::MAX)
}

/// `--boilerplate-docs`: at least 3 (every shared passage is in 2 documents).
fn parse_boilerplate_docs(s: &str) -> Result<u64, String> {
    whole_number_in(s, 3..=usize::MAX).map(|n| n as u64)
}

/// `--num-perm`: 1 to the largest signature the sketcher makes.
pub fn parse_num_perm(s: &str) -> Result<usize, String> {
    whole_number_in(s, 1..=neardup::sketch::MAX_NUM_PERM)
}

/// `--threads`: 1 to 1024. More gain nothing and, each with its own stack, a mistyped
/// count (99999999) started threads for minutes instead of running.
pub fn parse_threads(s: &str) -> Result<usize, String> {
    whole_number_in(s, 1..=1024)
}

/// `--passage-gap`: 0 to the aligner's largest gap.
pub fn parse_passage_gap(s: &str) -> Result<usize, String> {
    whole_number_in(s, 0..=neardup::align::MAX_GAP)
}

/// A size: a number, whole or with a decimal fraction (`1.5MiB`), and a binary unit (B,
/// K/KB/KiB, M…, G…, T…; KB is KiB). A fraction of a byte is rounded down.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let not_a_size = || format!("{s:?} is not a size (e.g. 512MiB, 1.5GiB)");
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return Err(not_a_size());
    }
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        other => return Err(format!("unknown size unit {other:?} in {s:?}")),
    };
    let digits = |d: &str| -> Result<u128, String> {
        if d.is_empty() {
            Ok(0)
        } else if d.len() > 30 {
            Err(format!("{s:?} is too large"))
        } else {
            d.parse().map_err(|_| not_a_size())
        }
    };
    let (whole, scale) = (digits(whole)?, 10u128.pow(fraction.len().min(30) as u32));
    let fraction = digits(&fraction[..fraction.len().min(30)])?;
    let bytes = (whole << shift) + ((fraction << shift) / scale);
    u64::try_from(bytes).map_err(|_| format!("{s:?} is too large"))
}

/// `--max-record-bytes`: a size from 1 byte to 4GiB. 4GiB itself means the largest
/// record a text can be (4GiB - 1 byte): refusing it for one byte helped no one.
pub fn parse_record_size(s: &str) -> Result<u64, String> {
    let max = neardup::text::MAX_TEXT_BYTES as u64;
    match parse_size(s)? {
        0 => Err("must be at least 1 byte".into()),
        n if n <= max => Ok(n),
        n if n == max + 1 => Ok(max),
        _ => Err("must be at most 4GiB".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_consistent() {
        command().debug_assert();
    }

    /// Negative values clap would read as flags reach the flag's range check; nothing
    /// else is joined.
    #[test]
    fn negative_values_are_joined_to_their_flag() {
        let joined = |line: &[&str]| -> Vec<String> {
            negative_values_joined(&command(), line.iter().map(|a| (*a).into()))
                .into_iter()
                .map(|a| a.into_string().unwrap())
                .collect()
        };
        assert_eq!(
            joined(&["neardup", "pairs", "--threshold", "-.5", "in.jsonl"]),
            ["neardup", "pairs", "--threshold=-.5", "in.jsonl"]
        );
        assert_eq!(
            joined(&["neardup", "eval", "--step", "-inf", "x", "--gold", "g"]),
            ["neardup", "eval", "--step=-inf", "x", "--gold", "g"]
        );
        for unchanged in [
            &["neardup", "pairs", "--quiet", "-1"][..], // a flag without a value
            &["neardup", "pairs", "-o", "-1", "in"],    // short flags are left alone
            &["neardup", "pairs", "--threshold", "-q"], // not a number
            &["neardup", "pairs", "--", "--threshold", "-.5"],
        ] {
            assert_eq!(joined(unchanged), unchanged);
        }
    }

    /// One rule for fractional flags: the span in the message, NaN and infinity refused,
    /// and nothing between 0 and a millionth (`1e-300` printed as 300 digits).
    #[test]
    fn fractional_flags_share_one_rule() {
        assert_eq!(parse_threshold("1"), Ok(1.0));
        assert_eq!(parse_threshold(" 0.000001 "), Ok(1e-6));
        for bad in ["0", "1.5", "NaN", "inf", "x", ""] {
            assert_eq!(
                parse_threshold(bad),
                Err("must be a number above 0 and at most 1".to_string()),
                "{bad}"
            );
        }
        assert_eq!(
            parse_threshold("1e-300"),
            Err(
                "must be a number above 0 and at most 1; the smallest above 0 taken is 0.000001"
                    .to_string()
            )
        );
        assert_eq!(parse_probability("0"), Ok(0.0));
        assert_eq!(
            parse_probability("1e-7"),
            Err("must be a number from 0 to 1; the smallest above 0 taken is 0.000001".to_string())
        );
        assert_eq!(parse_threshold("1"), Ok(1.0));
        assert_eq!(number_in("1e300", 0.0, false, None), Ok(1e300));
        assert_eq!(
            number_in("inf", 0.0, false, None),
            Err("must be a number above 0".to_string())
        );
    }

    /// The hand-formatted help below the flags (examples, formats) is printed as written
    /// only when each line fits clap's width (100 columns when not on a terminal): a
    /// longer line was broken mid-sentence or inside an example command. Every command
    /// that takes `--quiet`-able summaries has `-q`.
    #[test]
    fn hand_formatted_help_fits_and_every_step_takes_quiet() {
        fn visit(command: &clap::Command, path: &str) {
            let path = format!("{path} {}", command.get_name());
            for text in [command.get_after_help(), command.get_after_long_help()]
                .into_iter()
                .flatten()
            {
                for line in text.to_string().lines() {
                    assert!(
                        line.chars().count() <= 96,
                        "{path}: a help line of {} columns: {line}",
                        line.chars().count()
                    );
                    assert!(!line.ends_with(' '), "{path}: trailing space: {line:?}");
                }
            }
            for sub in command.get_subcommands() {
                visit(sub, &path);
            }
        }
        let cli = command();
        visit(&cli, "");
        let stats = cli.find_subcommand("stats").unwrap();
        for name in ["count", "merge"] {
            let sub = stats.find_subcommand(name).unwrap();
            assert!(
                sub.get_arguments().any(|a| a.get_short() == Some('q')),
                "stats {name} has no -q"
            );
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("123"), Ok(123));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("").is_err());
        // Fractions, rounded down to whole bytes.
        assert_eq!(parse_size("1.5MiB"), Ok(3 << 19));
        assert_eq!(parse_size("0.5k"), Ok(512));
        assert_eq!(parse_size(".25G"), Ok(1 << 28));
        assert_eq!(parse_size("0.1KiB"), Ok(102));
        assert_eq!(parse_size("2.0"), Ok(2));
        for bad in [".", "1.2.3MiB", "1..5G", "99999999999999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_record_size("4GiB"), Ok(u32::MAX as u64));
        assert_eq!(parse_record_size("1.5MiB"), Ok(3 << 19));
        assert!(parse_record_size("4.5GiB").is_err());
        assert!(parse_record_size("0").is_err());
    }
}
