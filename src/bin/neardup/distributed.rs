//! The steps of a distributed story run (`sketch --level story`, `verify`) and the
//! statistics files they share (`stats count`, `merge`, `show`).

use std::io::{self, BufRead};
use std::process::ExitCode;

use anyhow::{Context, Result};
use neardup::cluster::RepresentativeRule;
use neardup::input::{Location, open_decoded};
use neardup::story::distributed::{StoryLinker, Verifier, write_sketches};
use neardup::story::{Model, StorySettings, StoryStats};
use neardup::{Level, Stats};

use crate::args::{LinkArgs, RepresentativeArg, SketchArgs, StatsArgs, StatsCommand, VerifyArgs};
use crate::progress::Terminal;
use crate::{base_builder, format, input_builder, input_specs, set_threads, write_atomically};

/// `neardup sketch --level story`.
pub fn sketch_stories(a: &SketchArgs) -> Result<ExitCode> {
    let settings = StorySettings {
        stats_in: a.stats.clone(),
        candidate_threshold: a.story_candidates,
        ..StorySettings::default()
    };
    let pipeline = base_builder(&a.input, &a.similarity, &a.run)
        .level(Level::Story)
        .story(settings.clone())
        .build()?;
    let terminal = Terminal::new(a.run.progress, a.run.quiet);
    let (corpus, docs, stats, read) =
        pipeline.fingerprint_stories(&input_specs(&a.input), &terminal)?;
    let seed = pipeline.settings().seed;
    write_atomically(a.output.as_deref(), |w| {
        write_sketches(w, &corpus, &docs, &stats, &settings, seed)
    })?;
    if !a.run.quiet {
        let lsh = neardup::story::candidate_lsh(settings.candidate_threshold, settings.num_perm);
        let secs = read.elapsed().as_secs_f64().max(1e-9);
        terminal.println(&format!(
            "neardup: sketched {} documents at the story level ({} bands x {} rows, words \
             weighed by the statistics of {} documents{}), {} bad records, in {:.2} s",
            read.documents,
            lsh.bands,
            lsh.rows,
            stats.documents(),
            if a.stats.is_some() { "" } else { " read" },
            read.bad(),
            secs,
        ));
    }
    Ok(exit_code(&read))
}

/// `neardup verify`.
pub fn verify(a: &VerifyArgs) -> Result<ExitCode> {
    let fitted = Model::fitted();
    let settings = StorySettings {
        window: a.window.0,
        candidate_threshold: a.story_candidates,
        model: Model {
            threshold: a.story_threshold.unwrap_or(fitted.threshold),
            ..fitted
        },
        ..StorySettings::default()
    };
    settings.check()?;
    let stats = StoryStats::load(&a.stats)?;
    let verifier = Verifier::new(&stats, &settings);
    let started = std::time::Instant::now();
    let counts = read_decoded(&a.input, |input, name| judge(&verifier, input, name, a))?;
    if !a.quiet {
        eprintln!(
            "neardup: verified {} candidate pairs: {} scored ({} one story), {} below the \
             signature estimate, {} further apart than the window, in {:.2} s",
            counts.pairs,
            counts.scored,
            counts.same_story,
            counts.below_estimate,
            counts.outside_window,
            started.elapsed().as_secs_f64(),
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn judge(
    verifier: &Verifier<'_>,
    input: &mut dyn BufRead,
    name: &str,
    a: &VerifyArgs,
) -> Result<neardup::story::distributed::VerifyCounts> {
    // The verdict on a bad line is an error, not an I/O failure: carried out of the writer.
    let mut failed = None;
    let counts = write_atomically(a.output.as_deref(), |w| {
        verifier.verify(input, name, w).map_err(|e| {
            let message = format!("{e:#}");
            failed = Some(e);
            io::Error::other(message)
        })
    });
    match (counts, failed) {
        (_, Some(e)) => Err(e.into()),
        (counts, None) => counts,
    }
}

/// `neardup link`.
pub fn link(a: &LinkArgs) -> Result<ExitCode> {
    let fitted = Model::fitted();
    let settings = StorySettings {
        model: Model {
            threshold: a.story_threshold.unwrap_or(fitted.threshold),
            ..fitted
        },
        ..StorySettings::default()
    };
    settings.check()?;
    let rule = match a.representative {
        RepresentativeArg::Earliest => RepresentativeRule::Earliest,
        RepresentativeArg::Longest => RepresentativeRule::Longest,
        RepresentativeArg::First => anyhow::bail!(
            "--representative first needs the input order, which judged pairs do not keep \
             (earliest or longest)"
        ),
    };
    if a.inputs.iter().filter(|i| *i == "-").count() > 1 {
        anyhow::bail!("standard input ('-') can be read only once");
    }
    let started = std::time::Instant::now();
    let mut linker = StoryLinker::new(&settings, rule);
    for input in &a.inputs {
        read_decoded(input, |r, name| linker.read_pairs(r, name))?;
    }
    for members in &a.members {
        let name = members.display().to_string();
        read_decoded(&name, |r, name| linker.read_members(r, name))?;
    }
    let mut failed = None;
    let counts = write_atomically(a.output.as_deref(), |w| {
        linker.write(w, format(a.format)).map_err(|e| {
            let message = format!("{e:#}");
            failed = Some(e);
            io::Error::other(message)
        })
    });
    let counts = match (counts, failed) {
        (_, Some(e)) => return Err(e.into()),
        (counts, None) => counts?,
    };
    if !a.quiet {
        eprintln!(
            "neardup: linked {} judged pairs ({} one story) into {} story clusters ({} \
             documents) in {:.2} s",
            counts.pairs,
            counts.same_story,
            counts.clusters,
            counts.clustered_documents,
            started.elapsed().as_secs_f64(),
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

/// `neardup stats`.
pub fn stats(a: &StatsArgs) -> Result<ExitCode> {
    match &a.command {
        StatsCommand::Count(c) => {
            set_threads(&c.run)?;
            let pipeline = input_builder(&c.input, &c.run)
                .level(Level::Story)
                .build()?;
            let terminal = Terminal::new(c.run.progress, c.run.quiet);
            let (_, _, counted, read) =
                pipeline.fingerprint_stories(&input_specs(&c.input), &terminal)?;
            write_stats(&counted, &c.output)?;
            if !c.run.quiet {
                terminal.println(&format!(
                    "neardup: counted {} distinct words and names in {} documents ({} bad \
                     records) into {}",
                    counted.len(),
                    counted.documents(),
                    read.bad(),
                    c.output.display()
                ));
            }
            Ok(exit_code(&read))
        }
        StatsCommand::Merge(m) => {
            let mut merged = StoryStats::new();
            for path in &m.files {
                merged.merge(&StoryStats::load(path)?);
            }
            write_stats(&merged, &m.output)?;
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
            println!("{record}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn write_stats(stats: &StoryStats, path: &std::path::Path) -> Result<()> {
    write_atomically(Some(path), |w| stats.write_to(w))
}

fn exit_code(read: &Stats) -> ExitCode {
    if read.bad() > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}
