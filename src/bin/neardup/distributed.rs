//! The steps of a distributed story run (`sketch --level story`, `verify`) and the
//! statistics files they share (`stats count`, `merge`, `show`).

use std::io::{self, BufRead, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use neardup::Level;
use neardup::cluster::{ClusterMode, RepresentativeRule};
use neardup::distributed::{PairLinker, PairVerifier};
use neardup::input::{Location, open_decoded};
use neardup::story::distributed::{StoryLinker, Verifier, write_sketches};
use neardup::story::{Model, StorySettings, StoryStats};

use crate::args::{
    LevelArg, LinkArgs, ModeArg, RepresentativeArg, SketchArgs, StatsArgs, StatsCommand, VerifyArgs,
};
use crate::progress::Terminal;
use crate::{
    Stdout, base_builder, check_outputs, format, input_builder, input_specs, read_files,
    set_threads, write_atomically,
};

/// `neardup sketch --level story`.
pub fn sketch_stories(a: &SketchArgs) -> Result<ExitCode> {
    let stats: Vec<_> = a.stats.iter().map(|p| ("--stats", p.as_path())).collect();
    check_outputs(
        &[("-o", a.output.as_deref(), Stdout::Default)],
        &read_files(&a.input, None, &a.run, &stats)?,
    )?;
    let settings = StorySettings {
        stats_in: a.stats.clone(),
        candidate_threshold: a.story_candidates,
        ..StorySettings::default()
    };
    let pipeline = base_builder(&a.input, &a.similarity, &a.run)
        .level(Level::Story)
        .story(settings.clone())
        .build()
        .map_err(crate::usage)?;
    let terminal = Terminal::new(a.run.progress, a.run.quiet);
    let (corpus, docs, stats, read) =
        pipeline.fingerprint_stories(&input_specs(&a.input), &terminal)?;
    write_atomically(a.output.as_deref(), |w| {
        write_sketches(w, &corpus, &docs, &stats, &settings, pipeline.settings())
    })?;
    if !a.run.quiet {
        let lsh = neardup::story::candidate_lsh(settings.candidate_threshold, settings.num_perm);
        let secs = read.elapsed().as_secs_f64().max(1e-9);
        terminal.println(&format!(
            "neardup: sketched {} documents at the story level ({} x {}, words \
             weighed by the statistics of {} documents{}), {} bad records, in {:.2} s",
            read.documents,
            neardup::report::count(lsh.bands as u64, "band", "bands"),
            neardup::report::count(lsh.rows as u64, "row", "rows"),
            stats.documents(),
            if a.stats.is_some() { "" } else { " read" },
            read.bad(),
            secs,
        ));
        crate::note_unparsed_dates(&terminal, &read);
    }
    Ok(terminal.exit_code(read.bad()))
}

/// `neardup verify`.
pub fn verify(a: &VerifyArgs) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let mut read = named_files("input", [a.input.as_str()]);
    read.extend(a.stats.iter().map(|p| ("--stats".to_string(), p.clone())));
    check_outputs(&[("-o", a.output.as_deref(), Stdout::Default)], &read)?;
    if a.level == LevelArg::NearCopy {
        if !(0.0..=1.0).contains(&a.threshold) || a.num_perm == 0 {
            return Err(crate::usage(
                "--threshold must be in [0, 1] and --num-perm above 0",
            ));
        }
        let verifier = PairVerifier::new(a.threshold, a.num_perm);
        let counts = read_decoded(&a.input, |input, name| {
            write_library(a.output.as_deref(), |w| verifier.verify(input, name, w))
        })?;
        return finished(
            a.quiet,
            started,
            format!(
                "verified {}: {} at or above Jaccard {},",
                neardup::report::count(counts.pairs, "candidate pair", "candidate pairs"),
                counts.verified,
                a.threshold
            ),
        );
    }
    let settings = StorySettings {
        window: a.window.0,
        candidate_threshold: a.story_candidates,
        ..judged_at(a.story_threshold)
    };
    settings.check().map_err(crate::usage)?;
    let stats_path = a.stats.as_deref().ok_or_else(|| {
        crate::usage("--level story needs --stats: the statistics the documents were sketched with")
    })?;
    let stats = StoryStats::load(stats_path)?;
    let verifier = Verifier::new(&stats, &settings);
    let counts = read_decoded(&a.input, |input, name| {
        write_library(a.output.as_deref(), |w| verifier.verify(input, name, w))
    })?;
    finished(
        a.quiet,
        started,
        format!(
            "verified {} candidate pairs: {} scored ({} one story), {} below the signature \
             estimate, {} further apart than the window,",
            counts.pairs,
            counts.scored,
            counts.same_story,
            counts.below_estimate,
            counts.outside_window,
        ),
    )
}

/// The story settings of pairs judged at `story_threshold` (default: the fitted model's
/// cut).
fn judged_at(story_threshold: Option<f64>) -> StorySettings {
    let fitted = Model::fitted();
    StorySettings {
        model: Model {
            threshold: story_threshold.unwrap_or(fitted.threshold),
            ..fitted
        },
        ..StorySettings::default()
    }
}

/// Writes the output of a library step atomically; a library error (a bad line) is
/// reported as itself, not as a failure to write the output.
fn write_library<T>(
    output: Option<&std::path::Path>,
    body: impl FnOnce(&mut dyn io::Write) -> neardup::Result<T>,
) -> Result<T> {
    let mut failed = None;
    let written = write_atomically(output, |w| {
        body(w).map_err(|e| {
            let message = format!("{e:#}");
            failed = Some(e);
            io::Error::other(message)
        })
    });
    match (written, failed) {
        (_, Some(e)) => Err(e.into()),
        (written, None) => written,
    }
}

/// `neardup link`.
pub fn link(a: &LinkArgs) -> Result<ExitCode> {
    let rule = match a.representative {
        RepresentativeArg::Earliest => RepresentativeRule::Earliest,
        RepresentativeArg::Longest => RepresentativeRule::Longest,
        RepresentativeArg::First => {
            return Err(crate::usage(
                "--representative first needs the input order, which verified pairs do not \
                 keep (earliest or longest)",
            ));
        }
    };
    if a.inputs.iter().filter(|i| *i == "-").count() > 1 {
        anyhow::bail!("standard input ('-') can be read only once");
    }
    // A members file given twice (by any path) gave every document twice.
    if let Some((first, again)) = crate::given_twice(&a.members) {
        anyhow::bail!(
            "the --members file {} is given twice (also as {}): give each file once",
            crate::shown_path(again),
            crate::shown_path(first)
        );
    }
    let mut read = named_files("input", a.inputs.iter().map(String::as_str));
    read.extend(
        a.members
            .iter()
            .map(|p| ("--members".to_string(), p.clone())),
    );
    check_outputs(&[("-o", a.output.as_deref(), Stdout::Default)], &read)?;
    let started = std::time::Instant::now();
    let members = |read: &mut dyn FnMut(&mut dyn BufRead, &str) -> neardup::Result<()>| {
        a.members.iter().try_for_each(|path| {
            let name = path.display().to_string();
            read_decoded(&name, |r, name| read(r, name))
        })
    };
    if a.level == LevelArg::NearCopy {
        let mode = match a.mode {
            ModeArg::Connected => ClusterMode::Connected,
            ModeArg::Leader => ClusterMode::Leader,
        };
        let mut linker = PairLinker::new(mode, rule).bucket_cap(a.bucket_cap);
        for input in &a.inputs {
            read_decoded(input, |r, name| linker.read_pairs(r, name))?;
        }
        members(&mut |r, name| linker.read_members(r, name))?;
        let counts = write_library(a.output.as_deref(), |w| linker.write(w, format(a.format)))?;
        return finished(
            a.quiet,
            started,
            format!(
                "clustered {} into {} ({})",
                neardup::report::count(counts.pairs, "verified pair", "verified pairs"),
                neardup::report::count(counts.clusters, "cluster", "clusters"),
                neardup::report::count(counts.clustered_documents, "document", "documents")
            ),
        );
    }
    let settings = judged_at(a.story_threshold);
    settings.check().map_err(crate::usage)?;
    let mut linker = StoryLinker::new(&settings, rule);
    for input in &a.inputs {
        read_decoded(input, |r, name| linker.read_pairs(r, name))?;
    }
    members(&mut |r, name| linker.read_members(r, name))?;
    let counts = write_library(a.output.as_deref(), |w| linker.write(w, format(a.format)))?;
    finished(
        a.quiet,
        started,
        format!(
            "linked {} ({} one story) into {} ({})",
            neardup::report::count(counts.pairs, "judged pair", "judged pairs"),
            counts.same_story,
            neardup::report::count(counts.clusters, "story cluster", "story clusters"),
            neardup::report::count(counts.clustered_documents, "document", "documents")
        ),
    )
}

/// A step's closing line, unless `quiet`: `what` it did, and in how long since `started`.
fn finished(quiet: bool, started: std::time::Instant, what: String) -> Result<ExitCode> {
    if !quiet {
        eprintln!(
            "neardup: {what} in {:.2} s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens `input` ('-': standard input), decompressing gzip or zstd, and hands it to `read`
/// with the name its errors use.
fn read_decoded<T, E: Into<anyhow::Error>>(
    input: &str,
    read: impl FnOnce(&mut dyn BufRead, &str) -> std::result::Result<T, E>,
) -> Result<T> {
    let (location, name) = if input == "-" {
        (Location::Stdin, "standard input")
    } else {
        (Location::File(input.into()), input)
    };
    let mut uncounted = |_| {};
    let mut reader =
        open_decoded(&location, &mut uncounted).with_context(|| format!("opening {name}"))?;
    read(&mut reader, name).map_err(Into::into)
}

/// The paths among `inputs` ('-' is standard input), each named by `flag`, for
/// `check_outputs`.
fn named_files<'a>(
    flag: &str,
    inputs: impl IntoIterator<Item = &'a str>,
) -> Vec<(String, std::path::PathBuf)> {
    inputs
        .into_iter()
        .filter(|i| *i != "-")
        .map(|i| (flag.to_string(), i.into()))
        .collect()
}

/// `neardup stats`.
pub fn stats(a: &StatsArgs) -> Result<ExitCode> {
    match &a.command {
        StatsCommand::Count(c) => {
            check_outputs(
                &[("-o", Some(c.output.as_path()), Stdout::Allowed)],
                &read_files(&c.input, None, &c.run, &[])?,
            )?;
            set_threads(&c.run)?;
            let pipeline = input_builder(&c.input, &c.run)
                .level(Level::Story)
                .build()
                .map_err(crate::usage)?;
            let terminal = Terminal::new(c.run.progress, c.run.quiet);
            let (_, _, counted, read) =
                pipeline.fingerprint_stories(&input_specs(&c.input), &terminal)?;
            write_stats(&counted, &c.output)?;
            if !c.run.quiet {
                terminal.println(&format!(
                    "neardup: counted {} distinct words and names in {} ({}) into {}",
                    counted.len(),
                    neardup::report::count(counted.documents(), "document", "documents"),
                    neardup::report::count(read.bad(), "bad record", "bad records"),
                    crate::shown_path(&c.output)
                ));
            }
            Ok(terminal.exit_code(read.bad()))
        }
        StatsCommand::Merge(m) => {
            // A file given twice (by any path) would count its documents twice.
            if let Some((first, again)) = crate::given_twice(&m.files) {
                anyhow::bail!(
                    "{} and {} are the same file: merging it twice would count its documents twice",
                    crate::shown_path(first),
                    crate::shown_path(again)
                );
            }
            check_outputs(
                &[("-o", Some(m.output.as_path()), Stdout::Allowed)],
                &m.files
                    .iter()
                    .map(|p| ("input".to_string(), p.clone()))
                    .collect::<Vec<_>>(),
            )?;
            let mut merged = StoryStats::new();
            for path in &m.files {
                merged.merge(&StoryStats::load(path)?);
            }
            write_stats(&merged, &m.output)?;
            if !m.quiet {
                eprintln!(
                    "neardup: merged {} statistics files: {} distinct words and names in {} \
                     documents into {}",
                    m.files.len(),
                    merged.len(),
                    merged.documents(),
                    crate::shown_path(&m.output)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        StatsCommand::Show(s) => {
            let stats = StoryStats::load(&s.file)?;
            let record = serde_json::json!({
                "documents": stats.documents(),
                "distinct_words_and_names": stats.len(),
                "common_idf": stats.common_idf(),
                "rare_idf": stats.rare_idf(),
                "too_few_documents": stats.too_few(),
            });
            // Not `println!`, which panics on a closed pipe.
            writeln!(io::stdout().lock(), "{record}")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn write_stats(stats: &StoryStats, path: &std::path::Path) -> Result<()> {
    write_atomically(Some(path), |w| stats.write_to(w))
}
