//! `neardup compare A B`: two documents, their scores, and the passages they share
//! highlighted in both texts. Also the passage flags of `pairs` and `cluster`.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::ops::Range;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use neardup::PipelineBuilder;
use neardup::align::{self, Comparison, DocRef, Passage, PassageSettings, StoryVerdict};
use neardup::input::{self, FieldNames, InputFormat, InputSpec};
use neardup::report;
use neardup::story::Component;

use crate::args::{ColorArg, CompareArgs, CompareFormat, PassageArgs, PassageTuning};
use crate::progress::Terminal;

/// The passage settings of `pairs` and `cluster` (`None` without `--passages`).
pub fn passage_settings(args: &PassageArgs) -> Option<PassageSettings> {
    args.passages.then(|| tuning(&args.tuning))
}

fn tuning(t: &PassageTuning) -> PassageSettings {
    PassageSettings {
        min_words: t.min_passage_words,
        max_gap: t.passage_gap,
        boilerplate_docs: t.boilerplate_docs,
        ..PassageSettings::default()
    }
}

/// Why A and B are not a pair of files.
const A_AND_B: &str =
    "A and B must be two files (a directory holds many documents: give two ids with --in)";

pub fn run(args: &CompareArgs) -> Result<ExitCode> {
    if let Some(n) = args.run.threads {
        anyhow::ensure!(n >= 1, "--threads must be at least 1");
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("starting worker threads")?;
    }
    let named = [&args.a, &args.b];
    if args.inputs.is_empty() && named.iter().any(|n| n.as_str() == "-")
        || args.inputs.iter().chain(&args.corpus).any(|n| n == "-")
    {
        bail!(
            "compare reads its inputs twice and cannot take standard input ('-'): save it to a file first"
        );
    }
    let passage = tuning(&args.passages);
    let pipeline = PipelineBuilder::new()
        .fields(FieldNames {
            id: args.id_field.clone(),
            text: args.text_field.clone(),
            date: args.date_field.clone(),
        })
        .shingle(args.shingle)
        .num_perm(args.num_perm)
        .seed(args.seed)
        .strict(args.run.strict)
        .memory_budget(args.run.memory_budget)
        .temp_dir(args.run.temp_dir.clone())
        .passages(Some(passage))
        .story(neardup::story::StorySettings {
            stats_in: args.stats.clone(),
            window: args.window.0,
            ..Default::default()
        })
        .build()
        .map_err(crate::usage)?;
    let terminal = Terminal::new(args.run.progress, args.run.quiet);

    let specs = |names: &[String]| -> Vec<InputSpec> {
        names.iter().map(|s| InputSpec::from(s.as_str())).collect()
    };
    let (sources, problems, skipped, a, b) = if args.inputs.is_empty() {
        let files = [args.a.clone(), args.b.clone()];
        // Said before a directory is walked, where any file's problem came first.
        if files.iter().any(|f| std::path::Path::new(f).is_dir()) {
            bail!(A_AND_B);
        }
        let same = std::fs::canonicalize(&args.a)
            .ok()
            .is_some_and(|p| std::fs::canonicalize(&args.b).ok() == Some(p));
        if same {
            bail!("A and B are the same file");
        }
        // Ids given without --in: name the flag rather than only "no such file".
        if let Some(missing) = files.iter().find(|f| !std::path::Path::new(f).exists()) {
            bail!(
                "{}: no such file; A and B are two files, each one document (to compare two \
                 records of a JSON Lines file or directory, give their ids with --in FILE A B)",
                report::one_line(missing)
            );
        }
        let pair = input::plan_sources(&specs(&files), Some(InputFormat::Text))?;
        let mut sources = pair.sources;
        if let Some(p) = pair.problems.first() {
            bail!("{p}");
        }
        for name in &files {
            // Shown even with --quiet: the scores below are of the JSON text.
            if input::format_from_name(name) == Some(InputFormat::JsonLines) {
                let name = report::one_line(name);
                terminal.println(&format!(
                    "neardup: warning: {name} is named as JSON Lines, but A and B are read as \
                     one text document each, JSON and all; to compare two of its records, give \
                     their ids with --in {name} ID_A ID_B"
                ));
            }
        }
        if sources.len() != 2 {
            bail!(A_AND_B);
        }
        let corpus = input::plan_sources(&specs(&args.corpus), None)?;
        // A and B are in the corpus already: a corpus holding them (their directory, as
        // it usually does) would count them twice, or reject them as repeated ids.
        let identity = |source: &input::Source| match &source.location {
            input::Location::File(path) => std::fs::canonicalize(path).ok(),
            _ => None,
        };
        let pair_files: Vec<_> = sources.iter().filter_map(identity).collect();
        sources.extend(
            corpus
                .sources
                .into_iter()
                .filter(|s| identity(s).is_none_or(|p| !pair_files.contains(&p))),
        );
        (
            sources,
            corpus.problems,
            corpus.skipped,
            DocRef::Source(0),
            DocRef::Source(1),
        )
    } else {
        if !args.corpus.is_empty() {
            bail!("--corpus goes with two files; with --in, the inputs are the corpus");
        }
        let plan = input::plan_sources(&specs(&args.inputs), None)?;
        (
            plan.sources,
            plan.problems,
            plan.skipped,
            DocRef::Id(args.a.clone()),
            DocRef::Id(args.b.clone()),
        )
    };
    for p in &problems {
        if args.run.strict {
            bail!("{p} (stopped: --strict)");
        }
        neardup::Observer::problem(&terminal, p);
    }
    if !args.run.quiet {
        crate::note_skipped_files(&terminal, &skipped);
    }
    let comparison = align::compare(&pipeline, &sources, &a, &b, &terminal)?;
    let bad = problems.len() as u64 + comparison.stats.bad();

    let color = match args.color {
        ColorArg::Always => true,
        ColorArg::Never => false,
        ColorArg::Auto => io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match args.format {
        CompareFormat::Json => report::write_comparison(&mut out, &comparison),
        CompareFormat::Text => render(&mut out, &comparison, color),
    }
    .and_then(|()| out.flush())
    .context("writing to standard output")?;
    if !args.run.quiet {
        // A or B undated by an unreadable date is judged at any distance: say so.
        crate::note_unparsed_dates(&terminal, &comparison.stats);
    }
    if bad > 0 && !args.run.quiet {
        terminal.println(&format!(
            "neardup: {} skipped",
            neardup::report::count(bad, "bad record or input was", "bad records or inputs were")
        ));
    }
    Ok(terminal.exit_code(bad))
}

const PALETTE: [&str; 6] = ["31", "32", "33", "34", "35", "36"];
const RESET: &str = "\x1b[0m";

/// Scores, both texts with the passages marked, and the list of passages.
/// The story verdict: the decision, then each weighted component's value and what it adds
/// to the model's log-odds, then the unweighted ones.
fn render_story(out: &mut dyn Write, v: &StoryVerdict) -> io::Result<()> {
    let decision = if v.same_story {
        format!("one story, {}", v.kind.name())
    } else if let Some(apart) = v.beyond_window {
        format!(
            "two stories (dated {:.1} hours apart, beyond the {} --window)",
            apart as f64 / 3600.0,
            neardup::story::describe_window(v.window.unwrap_or_default().unsigned_abs())
        )
    } else if let Some(veto) = v.veto {
        format!("two stories (vetoed: {})", veto.describe())
    } else {
        format!("two stories (as one, it would be a {})", v.kind.name())
    };
    writeln!(
        out,
        "story level: {decision}; score {:.4}, one story from {:.2}; words weighed over {} document{}",
        v.probability,
        v.model.threshold,
        v.statistics_documents,
        if v.statistics_documents == 1 { "" } else { "s" },
    )?;
    if v.statistics_documents < neardup::story::stats::FEW_DOCUMENTS {
        writeln!(
            out,
            "  (few documents to weigh words by: give --corpus, --in or --stats for a fair verdict)"
        )?;
    }
    let mut log_odds = v.model.bias;
    for c in Component::ALL {
        let weight = v.model.weights[c as usize];
        if weight != 0.0 {
            let value = v.components.get(c);
            // Adding 0 turns a product of -0 into 0, which prints without its sign.
            let adds = weight * value + 0.0;
            log_odds += adds;
            writeln!(
                out,
                "  {:<26} {value:>7.4} × {weight:>7.3} = {adds:>+7.3}",
                c.name()
            )?;
        }
    }
    writeln!(
        out,
        "  {:<26} {:>27.3}\n  {:<26} {:>+27.3}",
        "bias", v.model.bias, "log-odds", log_odds
    )?;
    let unweighted: Vec<String> = Component::ALL
        .iter()
        .filter(|&&c| v.model.weights[c as usize] == 0.0)
        .map(|&c| format!("{} {:.4}", c.name(), v.components.get(c)))
        .collect();
    writeln!(out, "  not weighted: {}", unweighted.join(", "))
}

fn render(out: &mut dyn Write, c: &Comparison, color: bool) -> io::Result<()> {
    let passages = &c.passages.passages;
    let story: Vec<&Passage> = passages
        .iter()
        .filter(|p| p.boilerplate.is_none())
        .collect();
    let exact = story.iter().filter(|p| p.is_exact()).count();
    // Documents are untrusted: their control characters are shown, not obeyed.
    let shown = report::for_terminal;
    // By the id typed (`--in`), and where it was read; a file is its own id.
    let side = |d: &align::ComparedDoc| match d.id == d.location {
        true => format!("{}  ({} words)", shown(&d.location), d.words),
        false => format!(
            "{}  ({}, {} words)",
            shown(&d.id),
            shown(&d.location),
            d.words
        ),
    };
    writeln!(out, "a  {}", side(&c.a))?;
    writeln!(out, "b  {}", side(&c.b))?;
    writeln!(
        out,
        "jaccard {:.4} (estimated {:.4}), containment a in b {:.4}, b in a {:.4}",
        c.score.jaccard, c.score.estimated, c.score.a_in_b, c.score.b_in_a
    )?;
    writeln!(
        out,
        "{} shared passage{} ({} exact), {} boilerplate; they cover {:.1}% of a and {:.1}% of b",
        story.len(),
        if story.len() == 1 { "" } else { "s" },
        exact,
        passages.len() - story.len(),
        100.0 * c.passages.coverage_a,
        100.0 * c.passages.coverage_b,
    )?;
    render_story(out, &c.story)?;
    let spans = |pick: fn(&Passage) -> Range<usize>| -> Vec<(Range<usize>, usize, bool)> {
        passages
            .iter()
            .enumerate()
            .map(|(i, p)| (pick(p), i + 1, p.boilerplate.is_some()))
            .collect()
    };
    for (name, doc, marks) in [
        ("a", &c.a, spans(|p| p.a.range())),
        ("b", &c.b, spans(|p| p.b.range())),
    ] {
        writeln!(out, "\n── {name}: {} ──", shown(&doc.id))?;
        highlight(out, &doc.text, &marks, color)?;
        if !doc.text.ends_with('\n') {
            writeln!(out)?;
        }
    }
    if !passages.is_empty() {
        writeln!(out, "\n── passages ──")?;
    }
    for (i, p) in passages.iter().enumerate() {
        let kind = match (p.boilerplate, p.edits) {
            (Some(docs), _) => format!("boilerplate (in {docs} documents)"),
            (None, 0) => "exact".to_string(),
            (None, 1) => "1 edit".to_string(),
            (None, e) => format!("{e} edits"),
        };
        let label = format!("[{}]", i + 1);
        let label = if color {
            format!(
                "\x1b[{}m{label}{RESET}",
                style(i + 1, p.boilerplate.is_some())
            )
        } else {
            label
        };
        writeln!(
            out,
            "{label} {} words, {kind}: a {}..{}, b {}..{}",
            p.a.words.min(p.b.words),
            p.a.start,
            p.a.end,
            p.b.start,
            p.b.end
        )?;
    }
    Ok(())
}

fn style(number: usize, boilerplate: bool) -> String {
    if boilerplate {
        "2".to_string()
    } else {
        format!("1;{}", PALETTE[(number - 1) % PALETTE.len()])
    }
}

/// Writes `text` with each marked range in colour (the first passage wins where they
/// overlap; a dim `[n]` marks where passage n starts), or between `[n>` and `<n]`.
fn highlight(
    out: &mut dyn Write,
    text: &str,
    marks: &[(Range<usize>, usize, bool)],
    color: bool,
) -> io::Result<()> {
    let numbers = |at: usize, pick: fn(&Range<usize>) -> usize| -> Vec<usize> {
        marks
            .iter()
            .filter(|(r, ..)| pick(r) == at)
            .map(|m| m.1)
            .collect()
    };
    let mut cuts: Vec<usize> = marks
        .iter()
        .flat_map(|(r, ..)| [r.start, r.end])
        .chain([0, text.len()])
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    for w in cuts.windows(2) {
        let (from, to) = (w[0], w[1]);
        // Cuts are at passage ends, which are character boundaries.
        let piece = report::for_terminal(&text[from..to]);
        let piece = piece.as_bytes();
        if color {
            for n in numbers(from, |r| r.start) {
                write!(out, "\x1b[2m[{n}]{RESET}")?;
            }
            let shown = marks
                .iter()
                .filter(|(r, ..)| r.start <= from && to <= r.end)
                .min_by_key(|m| m.1);
            match shown {
                Some(&(_, n, boilerplate)) => {
                    write!(out, "\x1b[{}m", style(n, boilerplate))?;
                    out.write_all(piece)?;
                    out.write_all(RESET.as_bytes())?;
                }
                None => out.write_all(piece)?,
            }
        } else {
            close_markers(out, numbers(from, |r| r.end))?;
            for n in numbers(from, |r| r.start) {
                write!(out, "[{n}>")?;
            }
            out.write_all(piece)?;
        }
    }
    if !color {
        close_markers(out, numbers(text.len(), |r| r.end))?;
    }
    Ok(())
}

/// `<n]` for each passage ending here, the last opened first.
fn close_markers(out: &mut dyn Write, mut numbers: Vec<usize>) -> io::Result<()> {
    numbers.sort_unstable_by(|x, y| y.cmp(x));
    for n in numbers {
        write!(out, "<{n}]")?;
    }
    Ok(())
}
