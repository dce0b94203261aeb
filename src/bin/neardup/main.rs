//! The `neardup` command: parse flags, run the library's pipeline, write the output.

/// `eprintln!` for the whole binary (defined before the modules, so it shadows std's in
/// each): a line on standard error that is dropped when it cannot be written. std's
/// panics when standard error is a closed pipe (`neardup … 2>&1 | head -1`), which lost
/// the run and its `-o` output over a warning nobody would read.
macro_rules! eprintln {
    ($($arg:tt)*) => {
        $crate::print_to_stderr(format_args!($($arg)*))
    };
}

/// The date forms `--date-field` reads (`neardup::input::parse_date`), for its helps.
macro_rules! date_forms {
    () => {
        "seconds since 1970 (milliseconds from 10^11 on; a JSON number or a string of \
         digits, with decimals or not; but eight digits are a date, 20250818), RFC 3339, RFC 2822, 2025-08-18 10:30, 2025/08/18 10:30, 2025-08-18, \
         2025/08/18, 8/18/2025, August 18, 2025 (10:30 AM), Aug 18 2025, 18 August 2025; a \
         date with a time may end in a zone (Z, UTC, GMT, +0200, +02:00, -05); years have \
         four digits (a text date before 1800 is taken for a misreading)"
    };
}

mod args;
mod compare;
mod distributed;
mod eval;
mod feed;
mod params;
mod progress;
mod serve;
mod tls;
mod tokens;

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::FromArgMatches;
use neardup::cluster::{ClusterMode, RepresentativeRule};
use neardup::input::{FieldNames, InputFormat, InputSpec};
use neardup::outfile::OutputFile;
use neardup::report::{self, Format};
use neardup::{Outcome, PipelineBuilder};

use args::{Cli, ClusterArgs, Command, ExecArgs, FormatArg, InputArgs, RunArgs, SimilarityArgs};
use compare::passage_settings;
use progress::{Terminal, stop};

fn main() -> ExitCode {
    let command = args::command();
    let line = args::negative_values_joined(&command, std::env::args_os());
    let matches = command
        .try_get_matches_from(&line)
        .unwrap_or_else(|e| refuse_misplaced_flag(e, &line));
    refuse_story_flags_at_near_copy(&matches);
    refuse_passages_at_story(&matches);
    // Before the level's refusals, which say what the flag does at the other level.
    refuse_ignored_flags(&matches);
    refuse_near_copy_flags_at_story(&matches);
    refuse_passage_tuning_without_passages(&matches);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match run(cli) {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<Usage>().is_some() => {
            let names: Vec<&str> =
                std::iter::successors(matches.subcommand(), |(_, m)| m.subcommand())
                    .map(|(name, _)| name)
                    .collect();
            usage_error(&names, format!("{e:#}"))
        }
        Err(_) if stop::requested().is_some() => {
            let (line, code) = stop::report(stop::requested().unwrap_or_default());
            eprintln!("{line}");
            ExitCode::from(code)
        }
        Err(e) => {
            let message = format!("{e:#}");
            eprintln!("neardup: error: {message}");
            // Where the library did not say so already (an input does): outputs, a
            // checkpoint or a temporary file opened with no descriptor left.
            if out_of_descriptors(&e) && !message.contains("ulimit -n") {
                eprintln!("neardup: hint: raise the limit of open files (`ulimit -n`)");
            }
            ExitCode::from(1)
        }
    }
}

/// Whether `e` comes of the process running out of file descriptors (EMFILE). By the
/// text too: tempfile wraps the error with its path and drops it from the chain.
fn out_of_descriptors(e: &anyhow::Error) -> bool {
    let text = format!("(os error {})", libc::EMFILE);
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.raw_os_error() == Some(libc::EMFILE))
            || c.to_string().contains(&text)
    })
}

/// The commands that take `--level`.
const LEVEL_COMMANDS: [&str; 7] = [
    "cluster", "pairs", "dedup", "eval", "sketch", "verify", "link",
];

/// The flags of the story level (`StoryArgs`) other than `--level` itself.
const STORY_FLAGS: [(&str, &str); 5] = [
    ("window", "--window"),
    ("stats", "--stats"),
    ("stats_out", "--stats-out"),
    ("story_candidates", "--story-candidates"),
    ("story_threshold", "--story-threshold"),
];

/// A usage error (exit 2) for a story-level flag given at the near-copy level: it was
/// ignored without a word (`cluster --story-threshold 0.9` gave near-copy clusters, and
/// `--stats-out` wrote nothing), or, in the distributed steps, refused as a failed run
/// (exit 1). Each command is asked only for the flags it has.
fn refuse_story_flags_at_near_copy(matches: &clap::ArgMatches) {
    let flags = STORY_FLAGS.map(|(id, flag)| (id, flag, ""));
    refuse_flags_at_level(
        matches,
        &LEVEL_COMMANDS,
        args::LevelArg::NearCopy,
        &flags,
        |flag, _| format!("{flag} is a story-level flag: it needs --level story"),
    );
}

/// Exits with a usage error, `message(flag, instead)`, when the subcommand is one of
/// `commands`, runs at `level`, and was given one of `flags` (`(id, flag, instead)`) on
/// the command line.
fn refuse_flags_at_level(
    matches: &clap::ArgMatches,
    commands: &[&str],
    level: args::LevelArg,
    flags: &[(&str, &str, &str)],
    message: impl Fn(&str, &str) -> String,
) {
    let Some((name, sub)) = matches.subcommand() else {
        return;
    };
    if !commands.contains(&name) || sub.get_one::<args::LevelArg>("level") != Some(&level) {
        return;
    }
    for &(id, flag, instead) in flags {
        if given(sub, id) {
            usage_error(&[name], message(flag, instead));
        }
    }
}

/// `--passages` with `--level story` is a usage error (exit 2), with the way to passages
/// of a story pair: the story level aligns no texts, `compare` aligns one pair.
fn refuse_passages_at_story(matches: &clap::ArgMatches) {
    let Some((name, sub)) = matches.subcommand() else {
        return;
    };
    let passages = sub.try_get_one::<bool>("passages").ok().flatten() == Some(&true);
    let story =
        sub.try_get_one::<args::LevelArg>("level").ok().flatten() == Some(&args::LevelArg::Story);
    if story && passages {
        usage_error(
            &[name],
            "--passages finds the passages of near-copy pairs, not with --level story; \
             for a story pair, `neardup compare --in FILE ID_A ID_B` shows the passages \
             the two documents share"
                .to_string(),
        );
    }
}

/// The flags that tune `--passages` (`PassageTuning`), which `pairs` and `cluster` read
/// only with it.
const PASSAGE_TUNING_FLAGS: [(&str, &str); 3] = [
    ("min_passage_words", "--min-passage-words"),
    ("passage_gap", "--passage-gap"),
    ("boilerplate_docs", "--boilerplate-docs"),
];

/// Whether the flag `id` of `sub` was given on the command line (not a default).
fn given(sub: &clap::ArgMatches, id: &str) -> bool {
    sub.try_contains_id(id).is_ok()
        && sub.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
}

/// A usage error (exit 2) for a passage flag of `pairs` or `cluster` given without
/// `--passages`: it was ignored without a word (`pairs --passage-gap 0` gave no passages).
fn refuse_passage_tuning_without_passages(matches: &clap::ArgMatches) {
    let Some((name, sub)) = matches.subcommand() else {
        return;
    };
    if sub.try_get_one::<bool>("passages").ok().flatten() != Some(&false) {
        return; // a command without --passages (compare always aligns), or with it
    }
    for (id, flag) in PASSAGE_TUNING_FLAGS {
        if given(sub, id) {
            usage_error(
                &[name],
                format!("{flag} tunes the passages of --passages: it needs --passages"),
            );
        }
    }
}

/// Flags a command takes with the shared run flags but does nothing with: `(command
/// path, id, why)`. Each was accepted without a word.
const IGNORED_FLAGS: [(&[&str], &str, &str); 7] = [
    (
        &["pairs"],
        "mode",
        "--mode chooses how pairs are grouped into clusters; pairs lists the pairs \
         themselves ('neardup cluster --mode' groups them): leave it out",
    ),
    (
        &["pairs"],
        "representative",
        "--representative chooses a cluster's representative; pairs writes no clusters \
         ('neardup cluster' or 'neardup dedup' do): leave it out",
    ),
    (
        &["sketch"],
        "bucket_cap",
        "--bucket-cap caps the buckets where candidates are made, after sketch (the Spark \
         job's --bucket-cap, link --bucket-cap): leave it out",
    ),
    (
        &["compare"],
        "checkpoint",
        "--checkpoint keeps the fingerprints of a batch run (cluster, pairs, dedup, eval, \
         sketch, stats count); compare keeps none: leave it out",
    ),
    (
        &["compare"],
        "verbose",
        "--verbose times the stages of a batch run; compare has none to time: leave it out",
    ),
    (
        &["sketch"],
        "verbose",
        "--verbose times the stages of a batch run; sketch has none to time: leave it out",
    ),
    (
        &["stats", "count"],
        "verbose",
        "--verbose times the stages of a batch run; stats count has none to time: leave it out",
    ),
];

/// A usage error (exit 2) for a flag in [`IGNORED_FLAGS`] given to its command.
fn refuse_ignored_flags(matches: &clap::ArgMatches) {
    for (path, id, why) in IGNORED_FLAGS {
        let mut sub = matches;
        let mut found = true;
        for name in path {
            match sub.subcommand() {
                Some((n, s)) if n == *name => sub = s,
                _ => {
                    found = false;
                    break;
                }
            }
        }
        if found && given(sub, id) {
            usage_error(path, why.to_string());
        }
    }
}

/// The near-copy flags the story level does not read, and what to use there instead. Not
/// `--representative`, `--seed` or `--shingle`: the story level uses those.
const NEAR_COPY_FLAGS: [(&str, &str, &str); 6] = [
    (
        "threshold",
        "--threshold",
        "the story level decides by --story-threshold (a probability)",
    ),
    (
        "mode",
        "--mode",
        "story clusters are linked by the story model (--story-threshold); --representative \
         still applies",
    ),
    (
        "num_perm",
        "--num-perm",
        "the story level's signature has its own size; its candidates come from \
         --story-candidates",
    ),
    (
        "bands",
        "--bands",
        "the story level's candidates come from --story-candidates",
    ),
    (
        "rows",
        "--rows",
        "the story level's candidates come from --story-candidates",
    ),
    (
        "bucket_cap",
        "--bucket-cap",
        "the story level's candidates come from --story-candidates",
    ),
];

/// A usage error (exit 2) for a near-copy flag given with `--level story`, which does not
/// read it: `cluster --level story --threshold 0.9` gave the default story clusters.
fn refuse_near_copy_flags_at_story(matches: &clap::ArgMatches) {
    refuse_flags_at_level(
        matches,
        &LEVEL_COMMANDS,
        args::LevelArg::Story,
        &NEAR_COPY_FLAGS,
        |flag, instead| format!("{flag} is a near-copy flag, unused with --level story: {instead}"),
    );
}

/// Exits with clap's error `e`, or, for a flag this command does not have but a newcomer
/// gives it (a setting of the index to `index add`, a threshold to `eval`, a level to
/// `compare`), with what to do instead: clap's tips for those ("a similar argument exists:
/// '--threads'", "use '-- --level'") led astray.
fn refuse_misplaced_flag(e: clap::Error, line: &[std::ffi::OsString]) -> ! {
    use clap::error::{ContextKind, ContextValue};
    let flag = match (e.kind(), e.get(ContextKind::InvalidArg)) {
        (clap::error::ErrorKind::UnknownArgument, Some(ContextValue::String(arg))) => {
            arg.split('=').next().unwrap_or(arg).to_string()
        }
        _ => e.exit(),
    };
    let words: Vec<&str> = line.iter().skip(1).filter_map(|w| w.to_str()).collect();
    let names: Vec<&str> = match words.as_slice() {
        ["index", sub, ..] => vec!["index", sub],
        [command, ..] => vec![command],
        [] => e.exit(),
    };
    let index_setting = || {
        args::command()
            .find_subcommand("index")
            .and_then(|i| i.find_subcommand("create"))
            .is_some_and(|c| {
                c.get_arguments()
                    .any(|a| a.get_long() == flag.strip_prefix("--"))
            })
    };
    let message = match names.as_slice() {
        ["index", "add" | "query"] | ["watch"] | ["serve"] if index_setting() => format!(
            "{flag} is a setting of the index, fixed when it is created ('neardup index create \
             DIR {flag} …'); '{}' uses the index's own settings ('neardup index stats DIR' \
             shows them)",
            names.join(" ")
        ),
        ["eval"] if flag == "--threshold" => "eval sweeps thresholds (--min-threshold, \
            --max-threshold, --step) rather than take one; --explain-at T lists the pairs it \
            misses and merges at T"
            .to_string(),
        ["compare"] if flag == "--level" => "compare gives both levels at once: the \
            near-copy scores and the story level's verdict (its settings, such as --window \
            and --stats, are compare's own flags)"
            .to_string(),
        _ => e.exit(),
    };
    usage_error(&names, message)
}

/// Exits with clap's usage error (exit 2) for the subcommand at path `names` (`["index",
/// "create"]`), saying `message`.
fn usage_error(names: &[&str], message: String) -> ! {
    let mut command = args::command();
    command.build(); // gives the subcommand's usage line its "neardup"
    let mut command = &mut command;
    for name in names {
        command = command.find_subcommand_mut(name).expect("a subcommand");
    }
    command
        .error(clap::error::ErrorKind::ValueValidation, message)
        .exit()
}

/// A flag's value that is refused (out of range, or not with the other flags given): a
/// usage error (exit 2), as clap's own, not a failed run (exit 1).
#[derive(Debug)]
pub(crate) struct Usage(String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// `e` (the library refusing settings made from flags) as a usage error.
pub(crate) fn usage(e: impl std::fmt::Display) -> anyhow::Error {
    Usage(format!("{e:#}")).into()
}

/// A path as a message shows it: control characters escaped (a name from a glob or a
/// directory may hold a newline or an escape sequence).
pub(crate) fn shown_path(path: &Path) -> String {
    report::one_line(&path.display().to_string()).into_owned()
}

/// Writes one line to standard error, ignoring a failure (see `eprintln!` above).
fn print_to_stderr(line: std::fmt::Arguments<'_>) {
    let mut err = io::stderr().lock();
    let _ = err.write_fmt(line).and_then(|()| err.write_all(b"\n"));
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Index(a) => feed::run_index(a),
        Command::Watch(a) => feed::watch(a),
        Command::Serve(a) => serve::serve(a),
        Command::Cluster(a) => analyse_and_write(&a, report::write_clusters),
        Command::Pairs(a) => analyse_and_write(&a, report::write_pairs),
        Command::Dedup(a) => dedup(&a),
        Command::Sketch(a) => sketch(&a),
        Command::Verify(a) => distributed::verify(&a),
        Command::Link(a) => distributed::link(&a),
        Command::Stats(a) => distributed::stats(&a),
        Command::Compare(a) => compare::run(&a),
        Command::Eval(a) => eval::run(*a),
        Command::Params(a) => params::run(a),
    }
}

/// `neardup dedup`: the kept records, and optionally the rejected lines and a report of
/// what was dropped.
fn dedup(a: &args::DedupArgs) -> Result<ExitCode> {
    stop::install()?;
    check_outputs(
        &[
            ("-o", a.output.as_deref(), Stdout::Default),
            ("--report", a.report.as_deref(), Stdout::Allowed),
            ("--rejects", a.rejects.as_deref(), Stdout::Refused),
            ("--stats-out", a.story.stats_out.as_deref(), Stdout::Refused),
        ],
        &read_files(&a.input, Some(&a.story), &a.run, &[])?,
    )?;
    let mut kept = Output::open("-o", a.output.as_deref())?;
    let mut rejects = a
        .rejects
        .as_deref()
        .map(|p| Output::open("--rejects", Some(p)))
        .transpose()?;
    let mut dropped = a
        .report
        .as_deref()
        .map(|p| Output::open("--report", Some(p)))
        .transpose()?;
    let mut stats_out = open_stats_out(&a.story)?;
    analyse(
        Purpose::Dedup {
            rejects: a.rejects.is_some(),
        },
        &a.input,
        &a.similarity,
        &a.clustering,
        &a.story,
        &a.run,
        |outcome| {
            let counts = kept.write(|w| {
                let mut rejects = rejects.as_mut().and_then(Output::file).map(stop::Stoppable);
                let rejects = rejects.as_mut().map(|f| f as &mut dyn Write);
                report::write_deduplicated(outcome, w, rejects)
            })?;
            if let Some(report) = dropped.as_mut() {
                report.write(|w| report::write_dropped(w, outcome, format(a.report_format)))?;
            }
            if let Some(stats) = stats_out.as_mut() {
                stats.write_stats(outcome)?;
            }
            // Committed together once all are written.
            let outputs = [Some(kept), rejects, dropped, stats_out];
            Output::commit_all(outputs.into_iter().flatten())?;
            if !a.run.quiet {
                eprintln!("neardup: {}", dedup_summary(&counts, a));
            }
            Ok(())
        },
    )
}

/// The `dedup` summary line: what was kept, dropped and rejected, and where to see it.
fn dedup_summary(counts: &report::DedupCounts, a: &args::DedupArgs) -> String {
    let dropped = match a.story.level {
        args::LevelArg::NearCopy => ("near-duplicate", "near-duplicates"),
        args::LevelArg::Story => ("same-story duplicate", "same-story duplicates"),
    };
    let mut line = format!(
        "dedup kept {}, dropped {}",
        report::count(counts.kept, "record", "records"),
        report::count(counts.dropped, dropped.0, dropped.1)
    );
    if counts.repeated_copies > 0 {
        line += &format!(
            " ({} repeating an earlier record's id and text)",
            counts.repeated_copies
        );
    }
    if a.report.is_none() && counts.dropped > counts.repeated_copies {
        line += " (--report FILE lists them)";
    }
    // A record only over --max-record-bytes is not called malformed: it was never parsed.
    let malformed = counts.rejected - counts.repeated_conflicts - counts.oversized;
    let mut rejected = Vec::new();
    if malformed > 0 || counts.oversized == 0 {
        rejected.push(format!("{malformed} malformed"));
    }
    if counts.oversized > 0 {
        rejected.push(format!("{} over --max-record-bytes", counts.oversized));
    }
    if counts.repeated_conflicts > 0 {
        rejected.push(format!(
            "{} repeating an earlier record's id with other text",
            counts.repeated_conflicts
        ));
    }
    line += &format!(", rejected {}", rejected.join(" and "));
    if a.rejects.is_none() && counts.rejected > 0 {
        line += " (--rejects FILE keeps them)";
    }
    line
}

pub(crate) fn format(f: FormatArg) -> Format {
    match f {
        FormatArg::Jsonl => Format::Jsonl,
        FormatArg::Json => Format::Json,
        FormatArg::Csv => Format::Csv,
        FormatArg::Table => Format::Table,
    }
}

/// Builds the pipeline from flags, runs it, hands the outcome to `write`, prints the summary.
/// `cluster` and `pairs`: one run, then one output file written atomically.
fn analyse_and_write(
    a: &RunArgs,
    write: fn(&mut dyn Write, &Outcome, Format) -> io::Result<()>,
) -> Result<ExitCode> {
    stop::install()?;
    check_outputs(
        &[
            ("-o", a.output.output.as_deref(), Stdout::Default),
            ("--stats-out", a.story.stats_out.as_deref(), Stdout::Refused),
        ],
        &read_files(&a.input, Some(&a.story), &a.run, &[])?,
    )?;
    let mut out = Output::open("-o", a.output.output.as_deref())?;
    let mut stats_out = open_stats_out(&a.story)?;
    analyse(
        Purpose::Report(passage_settings(&a.passages)),
        &a.input,
        &a.similarity,
        &a.clustering,
        &a.story,
        &a.run,
        |outcome| {
            out.write(|w| write(w, outcome, format(a.output.format)))?;
            if let Some(stats) = stats_out.as_mut() {
                stats.write_stats(outcome)?;
            }
            Output::commit_all([Some(out), stats_out].into_iter().flatten())
        },
    )
}

/// Whether an output path is `-`, standard output (as `-` is standard input for inputs).
fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// An output flag of a command, its path if given, and whether `-` (standard output) is
/// allowed for it; an absent `-o` is standard output too.
pub(crate) type NamedOutput<'a> = (&'a str, Option<&'a Path>, Stdout);

/// Whether an output may be standard output.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stdout {
    /// `-o`: standard output when absent or `-`.
    Default,
    /// `--report`: standard output when `-`.
    Allowed,
    /// `--rejects`, `--stats-out`: a file only.
    Refused,
}

/// The file an output path will be written to: an existing file by its own canonical
/// path, which sees through symbolic links; a file not there yet by its directory's
/// canonical path and its name, or, behind a link, what the link points to (OutputFile
/// writes through links). `None` for a device or pipe (written in place).
fn output_identity(path: &Path, links: u8) -> Option<PathBuf> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => None,
        Ok(_) => path.canonicalize().ok(),
        Err(_) => match std::fs::read_link(path) {
            Ok(target) if links > 0 => output_identity(&parent.join(target), links - 1),
            _ => Some(parent.canonicalize().ok()?.join(path.file_name()?)),
        },
    }
}

/// Refuses an output inside directory `dir` (e.g. `index export -o news.idx/index.meta`):
/// renamed into place, it could replace a file the directory's owner depends on.
pub(crate) fn output_outside(
    flag: &str,
    output: Option<&Path>,
    what: &str,
    dir: &Path,
) -> Result<()> {
    let Some(path) = output.filter(|p| !is_stdout(p)) else {
        return Ok(());
    };
    let (Some(file), Ok(dir_real)) = (output_identity(path, 8), dir.canonicalize()) else {
        return Ok(());
    };
    anyhow::ensure!(
        !file.starts_with(&dir_real),
        "{flag} {} is inside {what} {}: the output could replace one of its files; write it \
         outside the directory",
        shown_path(path),
        shown_path(dir)
    );
    Ok(())
}

/// Refuses two outputs that name one file, or both standard output. Each output is
/// renamed into place when it is complete, so the later would replace the earlier
/// without a word (`dedup -o kept.jsonl --report kept.jsonl` left an empty report where
/// the kept records were). Devices and pipes (`/dev/null`) are written in place and may
/// be named twice.
pub(crate) fn distinct_outputs(outputs: &[NamedOutput]) -> Result<()> {
    let stdout = Path::new("-");
    let mut named: Vec<(&str, PathBuf)> = Vec::new();
    for &(flag, path, takes) in outputs {
        let path = match (path, takes) {
            (None, Stdout::Default) => stdout,
            (None, _) => continue,
            (Some(p), Stdout::Refused) if is_stdout(p) => anyhow::bail!(
                "{flag} writes a file: give it a path ('-', standard output, is for -o and \
                 --report)"
            ),
            (Some(p), _) => p,
        };
        let Some(id) = (if is_stdout(path) {
            Some(stdout.to_path_buf())
        } else {
            output_identity(path, 8)
        }) else {
            continue;
        };
        if let Some((other, _)) = named.iter().find(|(_, earlier)| *earlier == id) {
            if is_stdout(path) {
                anyhow::bail!(
                    "{other} and {flag} would both go to standard output: give one a file"
                );
            }
            anyhow::bail!(
                "{other} and {flag} both name {}: each output needs a file of its own (one \
                 would replace the other)",
                shown_path(path)
            );
        }
        named.push((flag, id));
    }
    Ok(())
}

/// The files a batch command reads besides its outputs: every input file (directories
/// expanded as the run will), `--stats`, `--checkpoint`'s files, and `extra` (e.g.
/// `--gold`), each with the flag or argument that names it.
pub(crate) fn read_files(
    input: &InputArgs,
    story: Option<&args::StoryArgs>,
    exec: &ExecArgs,
    extra: &[(&str, &Path)],
) -> anyhow::Result<Vec<(String, PathBuf)>> {
    refuse_repeated_inputs(&input.inputs)?;
    // Failing here (out of descriptors) would leave an output unchecked against the
    // inputs: stop with the run's own message instead.
    let plan = neardup::input::plan_sources(&input_specs(input), None)?;
    let mut files: Vec<(String, PathBuf)> = plan
        .sources
        .iter()
        .filter_map(|s| match &s.location {
            neardup::input::Location::File(p) => Some(("input".to_string(), p.clone())),
            _ => None,
        })
        .collect();
    if let Some(stats) = story.and_then(|s| s.stats.as_ref()) {
        files.push(("--stats".into(), stats.clone()));
    }
    if let Some(dir) = &exec.checkpoint {
        for name in ["fingerprints.log", "lock"] {
            files.push(("--checkpoint".into(), dir.join(name)));
        }
    }
    files.extend(extra.iter().map(|(f, p)| (f.to_string(), p.to_path_buf())));
    Ok(files)
}

/// The device and inode of what `path` names (through links), which tell one file or
/// directory reached by two paths; `None` when it cannot be read.
pub(crate) fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The first of `paths` that names what an earlier one names, by device and inode (so
/// through links), as `(earlier, again)`. Paths that cannot be read are passed over:
/// reading them says why.
pub(crate) fn given_twice<'a, P: AsRef<Path> + ?Sized>(
    paths: impl IntoIterator<Item = &'a P>,
) -> Option<(&'a P, &'a P)> {
    first_repeat(
        paths
            .into_iter()
            .filter_map(|p| Some((p, file_identity(p.as_ref())?))),
    )
}

/// The first item whose identity an earlier one has, as `(earlier, again)` (hashed: a
/// directory of many files is checked file against file).
fn first_repeat<T: Copy>(items: impl IntoIterator<Item = (T, (u64, u64))>) -> Option<(T, T)> {
    let mut seen = std::collections::HashMap::new();
    for (item, identity) in items {
        if let Some(&earlier) = seen.get(&identity) {
            return Some((earlier, item));
        }
        seen.insert(identity, item);
    }
    None
}

/// Refuses an input given twice, by any path (`pairs dir dir`, `dir ./dir/`, a link to
/// it), naming it as given: `check_outputs` would name a file of the directory instead.
fn refuse_repeated_inputs(inputs: &[String]) -> Result<()> {
    let given = inputs
        .iter()
        .filter(|i| i.as_str() != "-")
        .map(String::as_str);
    if let Some((first, again)) = given_twice(given) {
        anyhow::bail!(
            "the input {} is given twice (also as {}): give each input once",
            report::one_line(again),
            report::one_line(first)
        );
    }
    Ok(())
}

/// Refuses, before the run, two outputs naming one file (`distinct_outputs`), an input
/// file given twice, and an output that is one of the files read: being renamed over it at the end, the output
/// would replace the input (`dedup feed.jsonl --report feed.jsonl` replaced the corpus
/// with the report). Files are compared by device and inode, which sees through links;
/// an output not there yet cannot be a file read.
pub(crate) fn check_outputs(outputs: &[NamedOutput], read: &[(String, PathBuf)]) -> Result<()> {
    distinct_outputs(outputs)?;
    let identity = |path: &Path| file_identity(path).filter(|_| path.is_file());
    let read: Vec<_> = read
        .iter()
        .filter_map(|(flag, p)| Some((flag, p, identity(p)?)))
        .collect();
    // One input file given twice (`pairs r.jsonl r.jsonl`, or a file and its directory)
    // made every record a duplicate id, one warning each.
    let inputs = read
        .iter()
        .filter(|(f, _, _)| f.as_str() == "input")
        .map(|&(_, path, id)| (path, id));
    if let Some((first, again)) = first_repeat(inputs) {
        anyhow::bail!(
            "the input {} is given twice (also as {}): give each file once",
            shown_path(again),
            shown_path(first)
        );
    }
    for &(flag, path, _) in outputs {
        let Some(path) = path.filter(|p| !is_stdout(p)) else {
            continue;
        };
        let Some(id) = identity(path) else { continue };
        if let Some((what, file, _)) = read.iter().find(|(_, _, i)| *i == id) {
            let what = if what.as_str() == "input" {
                "an input".to_string()
            } else {
                format!("read as {what}")
            };
            anyhow::bail!(
                "{flag} {} is {what} ({}): the output would replace it; write it to another file",
                shown_path(path),
                shown_path(file)
            );
        }
    }
    Ok(())
}

/// Sizes the worker pool (--threads) once for the process.
fn set_threads(exec: &ExecArgs) -> Result<()> {
    if let Some(n) = exec.threads {
        if n == 0 {
            return Err(usage("--threads must be at least 1"));
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("starting worker threads")?;
    }
    Ok(())
}

/// The pipeline settings every command that reads inputs shares: fields and format,
/// similarity, and how to run.
fn base_builder(
    input: &InputArgs,
    similarity: &SimilarityArgs,
    exec: &ExecArgs,
) -> PipelineBuilder {
    input_builder(input, exec)
        .shingle(similarity.shingle)
        .num_perm(similarity.num_perm)
        .seed(similarity.seed)
        .threshold(similarity.threshold)
        .lsh(similarity.bands, similarity.rows)
        .bucket_cap(similarity.bucket_cap)
}

/// The pipeline settings of how inputs are read and how to run.
fn input_builder(input: &InputArgs, exec: &ExecArgs) -> PipelineBuilder {
    if let Some(dir) = &exec.checkpoint {
        let _ = stop::CHECKPOINT.set(dir.clone());
    }
    PipelineBuilder::new()
        .fields(FieldNames {
            id: input.id_field.clone(),
            text: input.text_field.clone(),
            date: input.date_field.clone(),
        })
        .format(input.input_format.map(|f| match f {
            args::InputFormatArg::Jsonl => InputFormat::JsonLines,
            args::InputFormatArg::Text => InputFormat::Text,
        }))
        .max_record_bytes(input.max_record_bytes)
        .strict(exec.strict)
        .memory_budget(exec.memory_budget)
        .temp_dir(exec.temp_dir.clone())
        .checkpoint(exec.checkpoint.clone())
}

fn input_specs(input: &InputArgs) -> Vec<InputSpec> {
    input
        .inputs
        .iter()
        .map(|s| InputSpec::from(s.as_str()))
        .collect()
}

/// `neardup sketch`: fingerprint every document and write its band keys and shingle set.
fn sketch(a: &args::SketchArgs) -> Result<ExitCode> {
    stop::install()?;
    set_threads(&a.run)?;
    if a.level == args::LevelArg::Story {
        return distributed::sketch_stories(a);
    }
    check_outputs(
        &[("-o", a.output.as_deref(), Stdout::Default)],
        &read_files(&a.input, None, &a.run, &[])?,
    )?;
    let pipeline = base_builder(&a.input, &a.similarity, &a.run)
        .build()
        .map_err(usage)?;
    let terminal = Terminal::new(a.run.progress, a.run.quiet).strict(a.run.strict);
    let (corpus, stats) = pipeline.fingerprint_inputs(&input_specs(&a.input), &terminal)?;
    let run = pipeline.settings();
    let lsh = run.lsh;
    let settings = neardup::distributed::sketch_settings(
        "near-copy",
        run.shingle,
        run.seed,
        run.num_perm,
        lsh,
    );
    write_atomically(a.output.as_deref(), |w| {
        report::write_sketches(w, &corpus, lsh, &settings)
    })?;
    if !a.run.quiet {
        let secs = stats.elapsed().as_secs_f64().max(1e-9);
        terminal.println(&format!(
            "neardup: sketched {} ({} x {}), {}, in {:.2} s ({:.0} docs/s)",
            report::count(stats.documents, "document", "documents"),
            report::count(lsh.bands as u64, "band", "bands"),
            report::count(lsh.rows as u64, "row", "rows"),
            report::count(stats.bad(), "bad record", "bad records"),
            secs,
            stats.documents as f64 / secs,
        ));
        note_unparsed_dates(&terminal, &stats);
    }
    Ok(terminal.exit_code(stats.bad()))
}

/// What a command makes of a run's outcome, which decides what the run keeps.
pub(crate) enum Purpose {
    /// `pairs`, `cluster`: the pairs and clusters, with passages when set.
    Report(Option<neardup::align::PassageSettings>),
    /// `dedup`: reads the sources again, so standard input is kept; `rejects`: whether
    /// records it cannot write back go to a --rejects file.
    Dedup { rejects: bool },
    /// `eval`: sweeps every candidate's scores.
    Eval,
}

/// One run of the pipeline with the commands' flags; `write` writes its output.
fn analyse(
    purpose: Purpose,
    input: &InputArgs,
    similarity: &SimilarityArgs,
    clustering: &ClusterArgs,
    story: &args::StoryArgs,
    exec: &ExecArgs,
    write: impl FnOnce(&Outcome) -> Result<()>,
) -> Result<ExitCode> {
    set_threads(exec)?;
    let pipeline = base_builder(input, similarity, exec)
        .cluster_mode(match clustering.mode {
            args::ModeArg::Connected => ClusterMode::Connected,
            args::ModeArg::Leader => ClusterMode::Leader,
        })
        .representative(match clustering.representative {
            args::RepresentativeArg::Earliest => RepresentativeRule::Earliest,
            args::RepresentativeArg::Longest => RepresentativeRule::Longest,
            args::RepresentativeArg::First => RepresentativeRule::First,
        })
        .replayable_stdin(matches!(purpose, Purpose::Dedup { .. }))
        .candidate_scores(matches!(purpose, Purpose::Eval))
        .passages(match purpose {
            Purpose::Report(passages) => passages,
            Purpose::Dedup { .. } | Purpose::Eval => None,
        })
        .level(story.level.into())
        .story(neardup::story::StorySettings {
            window: story.window.0,
            stats_in: story.stats.clone(),
            candidate_threshold: story.story_candidates,
            model: neardup::story::Model {
                threshold: story
                    .story_threshold
                    .unwrap_or(neardup::story::Model::fitted().threshold),
                ..neardup::story::Model::fitted()
            },
            ..Default::default()
        })
        .build()
        .map_err(usage)?;

    let mut terminal = Terminal::new(exec.progress, exec.quiet).strict(exec.strict);
    if let Purpose::Dedup { rejects } = purpose {
        terminal = terminal.dedup(rejects);
    }

    let outcome = pipeline.run(&input_specs(input), &terminal)?;
    let started = std::time::Instant::now();
    write(&outcome)?;
    let write_time = started.elapsed();

    warn_of_no_input(outcome.stats.sources, outcome.stats.bad());
    terminal.hint_fields(outcome.stats.documents);
    if !exec.quiet {
        print_summary(&terminal, &outcome, write_time);
        note_skipped_files(&terminal, &outcome.stats.skipped_files);
    }
    if exec.verbose {
        print_stages(&terminal, &outcome, write_time);
    }
    Ok(terminal.exit_code(outcome.stats.bad()))
}

/// Shown even with --quiet: an empty result for a directory of unnamed files (a Spark
/// job's part-00000, say) must not pass for an input without duplicates.
fn warn_of_no_input(sources: u64, bad: u64) {
    if sources == 0 && bad == 0 {
        eprintln!(
            "neardup: warning: no input file was found: a directory is searched for .txt \
             documents and JSON Lines files (.jsonl, .ndjson, .json, also .gz or .zst), and \
             its other files are skipped; give such files by name, or read every file as one \
             format with --input-format"
        );
    }
}

/// Says how many files of the input directories were left out, and names one.
fn note_skipped_files(terminal: &Terminal, skipped: &neardup::input::SkippedFiles) {
    // Names found in a directory may hold newlines and escape sequences.
    let shown = report::one_line;
    if let Some((path, first)) = &skipped.repeated_example {
        let (path, first) = (shown(path), shown(first));
        terminal.println(&format!(
            "neardup: note: files are read once: {} path{} reached again in an input \
             directory (through a link to a file, or to a directory it is in) {} skipped, e.g. \
             {path} (read as {first})",
            skipped.repeated,
            if skipped.repeated == 1 { "" } else { "s" },
            if skipped.repeated == 1 { "was" } else { "were" },
        ));
    }
    if let Some(example) = &skipped.example {
        let example = shown(example);
        terminal.println(&format!(
            "neardup: note: {} file{} in the input directories {} not read, being named \
             neither .txt nor JSON Lines (e.g. {example}); give {} by name, or read every \
             file as one format with --input-format",
            skipped.count,
            if skipped.count == 1 { "" } else { "s" },
            if skipped.count == 1 { "was" } else { "were" },
            if skipped.count == 1 { "it" } else { "them" },
        ));
    }
    if let Some(example) = &skipped.read_as_text_example {
        let example = shown(example);
        let read_as = match skipped.read_as_text {
            1 => "was read as one text document".to_string(),
            n => format!(
                "and {} other file{} were each read as one text document",
                n - 1,
                if n == 2 { "" } else { "s" }
            ),
        };
        terminal.println(&format!(
            "neardup: note: {example} {read_as}: named neither .txt nor JSON Lines, and not \
             starting with '{{'; --input-format jsonl reads JSON Lines whatever the name (a \
             CSV file must be converted first)"
        ));
    }
    if let Some(example) = &skipped.special_example {
        let example = shown(example);
        terminal.println(&format!(
            "neardup: note: {} entr{} in the input directories {} not read, being neither a \
             file nor a directory (a named pipe, socket or device; e.g. {example}); give a \
             named pipe by name to read it",
            skipped.special,
            if skipped.special == 1 { "y" } else { "ies" },
            if skipped.special == 1 { "was" } else { "were" },
        ));
    }
}

/// The note on dates that could not be parsed, if any.
pub(crate) fn note_unparsed_dates(terminal: &Terminal, s: &neardup::pipeline::Stats) {
    if s.unparsed_dates > 0 {
        terminal.println(&format!(
            "neardup: note: {} not be parsed (e.g. {:?}); those documents count as undated",
            report::count(s.unparsed_dates, "date could", "dates could"),
            s.unparsed_date_example.as_deref().unwrap_or_default()
        ));
    }
}

fn print_summary(terminal: &Terminal, outcome: &Outcome, write_time: std::time::Duration) {
    let s = &outcome.stats;
    let secs = (s.elapsed() + write_time).as_secs_f64();
    let bad = s.bad();
    let ((pair, pairs), (cluster, clusters)) = if outcome.story.is_some() {
        (
            ("same-story pair", "same-story pairs"),
            ("story cluster", "story clusters"),
        )
    } else {
        (("verified pair", "verified pairs"), ("cluster", "clusters"))
    };
    let mut candidates = report::count(s.candidate_pairs, "candidate pair", "candidate pairs");
    if let Some(story) = outcome.story.as_ref().filter(|s| s.outside_window > 0) {
        let window = outcome
            .settings
            .story
            .window
            .unwrap_or_default()
            .unsigned_abs();
        candidates.push_str(&format!(
            " ({} further apart than the {} --window)",
            story.outside_window,
            neardup::story::describe_window(window)
        ));
    }
    let mut line = format!(
        "neardup: {}, {}, {candidates}, {}, {} ({}) in {:.2} s ({:.0} docs/s, {:.1} MB/s)",
        report::count(s.documents, "document", "documents"),
        report::count(bad, "bad record", "bad records"),
        report::count(s.verified_pairs, pair, pairs),
        report::count(s.clusters, cluster, clusters),
        report::count(s.clustered_documents, "document", "documents"),
        secs,
        s.documents as f64 / secs.max(1e-9),
        s.text_bytes as f64 / 1e6 / secs.max(1e-9),
    );
    if outcome.passages.is_some() {
        line.push_str(&format!(
            "; {} shared passages ({} boilerplate)",
            s.passages, s.boilerplate_passages
        ));
    }
    if bad > 0 {
        let kinds: Vec<String> = s.problems.iter().map(|(k, n)| format!("{k} {n}")).collect();
        line.push_str(&format!(" [bad: {}]", kinds.join(", ")));
    }
    terminal.println(&line);
    if let Some(dir) = &outcome.settings.checkpoint {
        terminal.println(&format!(
            "neardup: checkpoint {}: fingerprints of {} of {} reused, {} kept anew",
            shown_path(dir),
            s.checkpoint_records,
            report::count(s.records, "record", "records"),
            s.records - s.checkpoint_records,
        ));
    }
    if terminal.hidden_problems() > 0 {
        terminal.println(&format!(
            "neardup: {} counted but not shown",
            report::count(
                terminal.hidden_problems(),
                "bad record was",
                "bad records were"
            )
        ));
    }
    if let Some(biggest) = outcome.oversized.first() {
        let sample: Vec<&str> = biggest
            .sample
            .iter()
            .map(|&d| outcome.corpus.id(d))
            .collect();
        terminal.println(&format!(
            "neardup: note: {} LSH buckets held more than --bucket-cap {} documents (largest: {} documents in band {}, e.g. {}); \
             their members were paired only with their next {} members in id order",
            outcome.oversized.len(),
            outcome.settings.bucket_cap,
            biggest.size,
            biggest.band,
            sample.join(", "),
            outcome.settings.bucket_cap - 1,
        ));
    }
    if let Some(biggest) = outcome.copies.first() {
        let sample: Vec<&str> = biggest
            .members
            .iter()
            .take(5)
            .map(|&d| outcome.corpus.id(d))
            .collect();
        terminal.println(&format!(
            "neardup: note: {} groups of identical documents held more than --bucket-cap {} documents (largest: {} documents, e.g. {}); \
             each was paired only with its first member in id order",
            outcome.copies.len(),
            outcome.settings.bucket_cap,
            biggest.members.len(),
            sample.join(", "),
        ));
    }
    note_unparsed_dates(terminal, s);
    if let Some(story) = outcome.story.as_ref().filter(|s| s.stats.too_few()) {
        terminal.println(&format!(
            "neardup: note: words were weighed over {} documents, too few to tell rare words from \
             common ones; score against an archive's statistics with --stats FILE (written by \
             'neardup stats count' over an archive) for the story level's intended verdicts",
            story.stats.documents()
        ));
    }
}

fn print_stages(terminal: &Terminal, outcome: &Outcome, write_time: std::time::Duration) {
    let s = &outcome.settings;
    let mut line = match &outcome.story {
        Some(story) => format!(
            "neardup: story level, {} x {} of {} weighted slots, {} shingles; stages:",
            report::count(story.lsh.bands as u64, "band", "bands"),
            report::count(story.lsh.rows as u64, "row", "rows"),
            s.story.num_perm,
            s.shingle
        ),
        None => format!(
            "neardup: {} x {}, {} shingles, {} slots; stages:",
            report::count(s.lsh.bands as u64, "band", "bands"),
            report::count(s.lsh.rows as u64, "row", "rows"),
            s.shingle,
            s.num_perm
        ),
    };
    let stages = outcome
        .stats
        .timings
        .iter()
        .map(|(stage, d)| (stage.name(), *d));
    for (name, d) in stages.chain([("write", write_time)]) {
        line.push_str(&format!(" {name} {:.3} s,", d.as_secs_f64()));
    }
    line.pop();
    let mut stores = vec![("shingle sets", outcome.stats.set_bytes)];
    if outcome.story.is_some() {
        stores.push(("story features", outcome.stats.story_bytes));
    }
    for (what, (in_memory, on_disk)) in stores {
        line.push_str(&format!(
            "; {what} {} in memory, {} spilled",
            indicatif::DecimalBytes(in_memory),
            indicatif::DecimalBytes(on_disk)
        ));
    }
    if let Some(story) = &outcome.story {
        line.push_str(&format!(
            "; vetoed: {} pairs by template slots, {} by lead names",
            story.vetoed.template_slots, story.vetoed.lead_names
        ));
    }
    terminal.println(&line);
}

/// One output of a batch run, opened before the run so that a missing or unwritable
/// directory is found at once, not after the whole run: its temporary file exists from
/// the start and is renamed into place by `commit`, after every output is written.
/// Dropped uncommitted, it leaves nothing. `None`: standard output.
pub(crate) struct Output(Option<(PathBuf, OutputFile)>);

impl Output {
    /// Opens `path` (standard output when absent or `-`) for the output named by `flag`.
    pub(crate) fn open(flag: &str, path: Option<&Path>) -> Result<Output> {
        Ok(Output(match path.filter(|p| !is_stdout(p)) {
            None => None,
            Some(p) => {
                let file = OutputFile::create(p)
                    .with_context(|| format!("cannot write {flag} {}", shown_path(p)))?;
                Some((p.to_path_buf(), file))
            }
        }))
    }

    /// Writes the output through a buffer; a file is not yet committed.
    /// Stops between records once a signal asked the run to stop.
    pub(crate) fn write<T>(
        &mut self,
        body: impl FnOnce(&mut dyn Write) -> io::Result<T>,
    ) -> Result<T> {
        match &mut self.0 {
            None => {
                let stdout = io::stdout();
                let mut w = BufWriter::with_capacity(1 << 16, stdout.lock());
                let value =
                    body(&mut stop::Stoppable(&mut w)).context("writing to standard output")?;
                w.flush().context("writing to standard output")?;
                Ok(value)
            }
            Some((path, file)) => {
                let mut w = BufWriter::with_capacity(1 << 16, file);
                let value = body(&mut stop::Stoppable(&mut w))
                    .with_context(|| format!("writing {}", shown_path(path)))?;
                w.flush()
                    .with_context(|| format!("writing {}", shown_path(path)))?;
                Ok(value)
            }
        }
    }

    /// Writes the statistics a story run scored against (`--stats-out`), to be committed
    /// with the run's other outputs.
    pub(crate) fn write_stats(&mut self, outcome: &Outcome) -> Result<()> {
        let Some(story) = &outcome.story else {
            anyhow::bail!("--stats-out needs --level story");
        };
        self.write(|w| story.stats.write_to(w))
    }

    /// The file's writer, or `None` for standard output.
    fn file(&mut self) -> Option<&mut OutputFile> {
        self.0.as_mut().map(|(_, f)| f)
    }

    /// Makes written files appear at their paths, all of them, or none if a signal asked
    /// the run to stop (dropped, they leave nothing).
    pub(crate) fn commit_all(outputs: impl IntoIterator<Item = Output>) -> Result<()> {
        if stop::requested().is_some() {
            return Err(stop::error().into());
        }
        outputs.into_iter().try_for_each(Output::commit)
    }

    /// Makes a written file appear at its path.
    fn commit(self) -> Result<()> {
        if let Some((path, file)) = self.0 {
            file.commit()
                .with_context(|| format!("writing {}", shown_path(&path)))?;
        }
        Ok(())
    }
}

/// `--stats-out`, opened before the run as the other outputs are (a pipe once: opened
/// twice, its reader would see an end of file); [`Output::write_stats`] fills it.
pub(crate) fn open_stats_out(story: &args::StoryArgs) -> Result<Option<Output>> {
    story
        .stats_out
        .as_deref()
        .map(|p| Output::open("--stats-out", Some(p)))
        .transpose()
}

/// Runs `body` on a buffered writer to `path` (or standard output); a regular file is
/// written to a temporary name and renamed into place only when complete.
pub(crate) fn write_atomically<T>(
    path: Option<&Path>,
    body: impl FnOnce(&mut dyn Write) -> io::Result<T>,
) -> Result<T> {
    let mut out = Output(match path.filter(|p| !is_stdout(p)) {
        None => None,
        Some(p) => {
            let file =
                OutputFile::create(p).with_context(|| format!("creating {}", shown_path(p)))?;
            Some((p.to_path_buf(), file))
        }
    });
    let value = out.write(body)?;
    out.commit()?;
    Ok(value)
}
