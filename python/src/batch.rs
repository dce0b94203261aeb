//! The batch calls: clusters and pairs (`analyse`), `dedup`, `evaluate` and `compare`.
//! Each reads records encoded in memory, runs the pipeline without the GIL and answers
//! with what the command writes.

use std::path::PathBuf;

use neardup::align::{self, DocRef, PassageSettings};
use neardup::cluster::{ClusterMode, RepresentativeRule};
use neardup::eval::gold::{self, GoldFields, GoldFormat, GoldShape};
use neardup::eval::plot::{self, ImageFormat};
use neardup::eval::report::{self as eval_report, EvalRecord};
use neardup::eval::sweep::{self, Banding, Score, SweepConfig, UnknownIds};
use neardup::input::{FieldNames, InputFormat, Problem, ProblemKind, RecordLocation};
use neardup::report::{self, DedupPlan, Fate, Format};
use neardup::story::{Model, StorySettings};
use neardup::{Outcome, Pipeline, PipelineBuilder, input};
use pyo3::exceptions::{PyUserWarning, PyValueError};
use pyo3::prelude::*;

use crate::watch::Watch;
use crate::{RECORDS, bad_record, encode, error, in_memory, json_lines};

/// The settings of a run, as the package's functions pass them (every key present).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct Run {
    level: String,
    threshold: f64,
    story_threshold: Option<f64>,
    window: Option<String>,
    stats: Option<PathBuf>,
    shingle: String,
    num_perm: usize,
    seed: u64,
    mode: String,
    representative: String,
    passages: bool,
    min_passage_words: usize,
    passage_gap: usize,
    boilerplate_docs: u64,
    id_field: String,
    text_field: String,
    date_field: String,
    threads: Option<usize>,
}

impl Run {
    fn fields(&self) -> FieldNames {
        crate::fields(&self.id_field, &self.text_field, &self.date_field)
    }

    fn passage_settings(&self) -> PassageSettings {
        PassageSettings {
            min_words: self.min_passage_words,
            max_gap: self.passage_gap,
            boilerplate_docs: self.boilerplate_docs,
            ..PassageSettings::default()
        }
    }

    /// The pipeline of these settings (not strict: a caller that is sets it).
    fn builder(&self) -> PyResult<PipelineBuilder> {
        let mode = match self.mode.as_str() {
            "connected" => ClusterMode::Connected,
            "leader" => ClusterMode::Leader,
            other => {
                return Err(PyValueError::new_err(format!(
                    "mode must be 'connected' or 'leader', not {other:?}"
                )));
            }
        };
        let representative = match self.representative.as_str() {
            "earliest" => RepresentativeRule::Earliest,
            "longest" => RepresentativeRule::Longest,
            "first" => RepresentativeRule::First,
            other => {
                return Err(PyValueError::new_err(format!(
                    "representative must be 'earliest', 'longest' or 'first', not {other:?}"
                )));
            }
        };
        Ok(PipelineBuilder::new()
            .fields(self.fields())
            .shingle(crate::shingle(&self.shingle)?)
            .num_perm(self.num_perm)
            .seed(self.seed)
            .threshold(self.threshold)
            .cluster_mode(mode)
            .representative(representative)
            .level(crate::level(&self.level)?)
            .passages(self.passages.then(|| self.passage_settings()))
            .story(StorySettings {
                window: crate::window(self.window.as_deref())?,
                stats_in: self.stats.clone(),
                model: Model {
                    threshold: crate::story_threshold(self.story_threshold)?,
                    ..Model::fitted()
                },
                ..Default::default()
            }))
    }
}

/// Clusters (`what = "clusters"`) or verified pairs (`"pairs"`) of the records, as
/// `neardup cluster` or `neardup pairs` writes them. A bad record raises `BadRecord`.
#[pyfunction]
#[pyo3(signature = (records, what, run, progress=None))]
pub fn analyse(
    py: Python<'_>,
    records: &Bound<'_, PyAny>,
    what: &str,
    run: Run,
    progress: Option<Py<PyAny>>,
) -> PyResult<String> {
    let write = match what {
        "clusters" => report::write_clusters,
        "pairs" => report::write_pairs,
        other => return Err(PyValueError::new_err(format!("unknown output {other:?}"))),
    };
    let data = encode::json_lines(records, RECORDS, &run.fields(), true, false)?.bytes;
    let pipeline = run.builder()?.strict(true).build().map_err(error)?;
    run_over(py, data, &pipeline, &run, progress, |outcome, _, _| {
        json_lines(|out| write(out, &outcome, Format::Jsonl))
    })
}

/// Runs `pipeline` over records encoded as JSON Lines, without the GIL and on the
/// call's threads (stopped by Ctrl-C, see [`Watch::run`]), then hands `then` the
/// outcome, the problems met (a lenient run's) and the watch (for later stages' progress).
/// Dates that could not be read are warned of (a `UserWarning`), as the command notes
/// them: those records count as undated, which a window does not restrict.
fn run_over<T: Send>(
    py: Python<'_>,
    data: Vec<u8>,
    pipeline: &Pipeline,
    run: &Run,
    progress: Option<Py<PyAny>>,
    then: impl FnOnce(Outcome, Vec<Problem>, &Watch) -> PyResult<T> + Send,
) -> PyResult<T> {
    let input = [in_memory(RECORDS, data)];
    let watch = Watch::new(progress);
    let mut unparsed_dates = None;
    let answer = watch.run(py, run.threads, || {
        let outcome = pipeline.run(&input, &watch);
        let problems = watch.finish()?;
        let outcome = outcome.map_err(error)?;
        unparsed_dates = unparsed_dates_warning(&outcome.stats);
        then(outcome, problems, &watch)
    })?;
    warn(py, unparsed_dates)?;
    Ok(answer)
}

/// The warning of the dates a run could not read, as the command notes them.
fn unparsed_dates_warning(stats: &neardup::Stats) -> Option<String> {
    (stats.unparsed_dates > 0).then(|| {
        format!(
            "{} not be read (e.g. {:?}); those records count as undated",
            report::count(stats.unparsed_dates, "date could", "dates could"),
            stats.unparsed_date_example.as_deref().unwrap_or_default()
        )
    })
}

/// `message`, if any, as a `UserWarning` at the caller of the package's function.
fn warn(py: Python<'_>, message: Option<String>) -> PyResult<()> {
    if let Some(message) = message {
        // Level 2: the caller of the package's function, not the function itself.
        py.import("warnings")?
            .call_method1("warn", (message, py.get_type::<PyUserWarning>(), 2))?;
    }
    Ok(())
}

/// `neardup dedup` of the records: the positions of those kept, in order, and (with
/// `report`) what was dropped, as `--report` writes it. A record repeating an earlier
/// one's id and text is dropped as a copy; any other bad record raises `BadRecord`.
#[pyfunction]
#[pyo3(signature = (records, run, report, progress=None))]
pub fn dedup(
    py: Python<'_>,
    records: &Bound<'_, PyAny>,
    run: Run,
    report: bool,
    progress: Option<Py<PyAny>>,
) -> PyResult<(Vec<usize>, Option<String>)> {
    let encoded = encode::json_lines(records, RECORDS, &run.fields(), true, false)?;
    let pipeline = run.builder()?.build().map_err(error)?;
    let count = encoded.count as u64;
    run_over(
        py,
        encoded.bytes,
        &pipeline,
        &run,
        progress,
        |outcome, problems, _| {
            let plan = DedupPlan::new(&outcome);
            let fate = |line: u64| plan.fate(RecordLocation { source: 0, line });
            let copy = |line: Option<u64>| line.map(fate) == Some(Fate::Drop { repeat: true });
            if let Some(p) = problems.iter().find(|p| !copy(p.line)) {
                return Err(bad_record(p));
            }
            let kept = (1..=count)
                .filter(|&line| fate(line) == Fate::Keep)
                .map(|line| line as usize - 1)
                .collect();
            let dropped = report
                .then(|| json_lines(|out| report::write_dropped(out, &outcome, Format::Jsonl)))
                .transpose()?;
            Ok((kept, dropped))
        },
    )
}

/// How `evaluate` sweeps and where its gold comes from (every key present).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct Sweep {
    score: Option<String>,
    min_threshold: f64,
    max_threshold: f64,
    step: f64,
    beta: Option<f64>,
    explain_at: Option<f64>,
    bins: usize,
    bands: Option<usize>,
    rows: Option<usize>,
    bucket_cap: usize,
    strict: bool,
    plots: Option<PathBuf>,
    plot_format: String,
    gold_fields: GoldNames,
    gold_shape: Option<String>,
    gold_format: Option<String>,
}

/// The gold's field names, as `neardup eval --gold-a` and the others give them.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct GoldNames {
    a: String,
    b: String,
    label: Option<String>,
    kind: String,
    id: String,
    cluster: String,
}

impl Sweep {
    fn score(&self, story_level: bool) -> PyResult<Score> {
        let Some(name) = &self.score else {
            return Ok(if story_level {
                Score::Story
            } else {
                Score::Jaccard
            });
        };
        // The names the keyword takes, as documented (`estimated`, `containment-min`);
        // the report's spellings (`estimated_jaccard`, `containment_min`) are taken too.
        let keyword = |s: Score| match s.name() {
            "estimated_jaccard" => "estimated".to_string(),
            report => report.replace('_', "-"),
        };
        let score = Score::ALL
            .into_iter()
            .find(|&s| keyword(s) == name.replace('_', "-") || s.name() == name.replace('-', "_"))
            .ok_or_else(|| {
                let names: Vec<String> = Score::ALL.into_iter().map(keyword).collect();
                PyValueError::new_err(format!(
                    "score must be one of {}, not {name:?}",
                    names.join(", ")
                ))
            })?;
        match (score.is_story(), story_level) {
            (true, false) => Err(PyValueError::new_err("score='story' needs level='story'")),
            (false, true) => Err(PyValueError::new_err(
                "at level='story' the swept score is the story score; shingle scores are swept at the near-copy level",
            )),
            _ => Ok(score),
        }
    }

    fn plot_formats(&self) -> PyResult<&'static [ImageFormat]> {
        match self.plot_format.as_str() {
            "both" => Ok(&[ImageFormat::Svg, ImageFormat::Png]),
            "svg" => Ok(&[ImageFormat::Svg]),
            "png" => Ok(&[ImageFormat::Png]),
            other => Err(PyValueError::new_err(format!(
                "plot_format must be 'both', 'svg' or 'png', not {other:?}"
            ))),
        }
    }

    fn gold(&self, gold: &Bound<'_, PyAny>) -> PyResult<(String, gold::Gold)> {
        let names = &self.gold_fields;
        let fields = GoldFields {
            a: names.a.clone(),
            b: names.b.clone(),
            label: names.label.clone(),
            kind: names.kind.clone(),
            id: names.id.clone(),
            cluster: names.cluster.clone(),
        };
        let shape = match self.gold_shape.as_deref() {
            None => None,
            Some("pairs") => Some(GoldShape::Pairs),
            Some("clusters") => Some(GoldShape::Clusters),
            Some(other) => {
                return Err(PyValueError::new_err(format!(
                    "gold_shape must be 'pairs' or 'clusters', not {other:?}"
                )));
            }
        };
        let format = match self.gold_format.as_deref() {
            None => None,
            Some("jsonl") => Some(GoldFormat::JsonLines),
            Some("csv") => Some(GoldFormat::Csv),
            Some(other) => {
                return Err(PyValueError::new_err(format!(
                    "gold_format must be 'jsonl' or 'csv', not {other:?}"
                )));
            }
        };
        if let Ok(path) = gold.extract::<PathBuf>() {
            if let Err(e) = std::fs::metadata(&path) {
                return Err(crate::os_error(format!("{}: {e}", path.display()), &e));
            }
            let read = gold::read_gold(&path, format, shape, &fields).map_err(error)?;
            return Ok((path.display().to_string(), read));
        }
        // Records in memory: written as JSON Lines and read by the same parser.
        let no_text = crate::fields("", "", "");
        let lines = encode::json_lines(gold, GOLD, &no_text, false, false)?.bytes;
        let parsed =
            gold::parse_gold(GOLD, &lines, GoldFormat::JsonLines, shape, &fields).map_err(error)?;
        Ok((GOLD.to_string(), parsed))
    }
}

/// The name gold records given as a list are reported under.
pub const GOLD: &str = "gold";

/// `neardup eval --format json` of the records against `gold` (a file, or judged pairs or
/// cluster labels as mappings), with the charts written to `plots` when given: the
/// report as JSON, and the chart files written.
#[pyfunction]
#[pyo3(signature = (records, gold, sweep, run, progress=None))]
pub fn evaluate(
    py: Python<'_>,
    records: &Bound<'_, PyAny>,
    gold: &Bound<'_, PyAny>,
    sweep: Sweep,
    run: Run,
    progress: Option<Py<PyAny>>,
) -> PyResult<(String, Vec<PathBuf>)> {
    let (gold_name, gold) = sweep.gold(gold)?;
    let thresholds =
        sweep::thresholds(sweep.min_threshold, sweep.max_threshold, sweep.step).map_err(error)?;
    let story_level = crate::level(&run.level)? == neardup::Level::Story;
    let score = sweep.score(story_level)?;
    if story_level && (sweep.bands.is_some() || sweep.rows.is_some()) {
        return Err(PyValueError::new_err(
            "bands and rows set the near-copy banding; the story level's candidates do not use them",
        ));
    }
    let formats = sweep.plot_formats()?;
    let data = encode::json_lines(records, RECORDS, &run.fields(), true, false)?.bytes;
    // The lowest threshold's candidates are the largest set; the sweep reuses them.
    let pipeline = run
        .builder()?
        .strict(true)
        .threshold(thresholds[0])
        .candidate_scores(true)
        .lsh(sweep.bands, sweep.rows)
        .bucket_cap(sweep.bucket_cap)
        .build()
        .map_err(error)?;
    run_over(py, data, &pipeline, &run, progress, |outcome, _, watch| {
        let banding = if sweep.bands.is_some() || sweep.rows.is_some() {
            Banding::Fixed(outcome.settings.lsh)
        } else {
            Banding::default()
        };
        let config = SweepConfig {
            score,
            thresholds,
            beta: sweep.beta,
            banding,
            explain_at: sweep.explain_at,
            bins: sweep.bins,
            unknown_ids: if sweep.strict {
                UnknownIds::Fail
            } else {
                UnknownIds::Skip
            },
        };
        let evaluation = sweep::evaluate(&outcome, &gold, &config, watch).map_err(error)?;
        watch.finish()?;
        let record = EvalRecord::new(&outcome, &evaluation, &gold_name, banding);
        let json = json_lines(|out| eval_report::write_json(out, &record))?;
        let written = match &sweep.plots {
            None => Vec::new(),
            Some(dir) => {
                let charts =
                    plot::evaluation_charts(&evaluation, &gold_name, record.settings.cluster_mode);
                plot::write_charts(dir, &charts, formats).map_err(error)?
            }
        };
        Ok((json, written))
    })
}

/// `neardup compare --format json` of records `a` and `b` (one-record lists), with the
/// words of `corpus` (records, or none) counted for the story level and boilerplate.
#[pyfunction]
#[pyo3(signature = (a, b, corpus, run, progress=None))]
pub fn compare(
    py: Python<'_>,
    a: &Bound<'_, PyAny>,
    b: &Bound<'_, PyAny>,
    corpus: Option<&Bound<'_, PyAny>>,
    run: Run,
    progress: Option<Py<PyAny>>,
) -> PyResult<String> {
    let fields = run.fields();
    let mut specs = vec![
        in_memory(
            "a",
            encode::json_lines(a, "a", &fields, false, false)?.bytes,
        ),
        in_memory(
            "b",
            encode::json_lines(b, "b", &fields, false, false)?.bytes,
        ),
    ];
    if let Some(corpus) = corpus {
        let encoded = encode::json_lines(corpus, CORPUS, &fields, true, false)?;
        specs.push(in_memory(CORPUS, encoded.bytes));
    }
    let pipeline = run
        .builder()?
        .passages(Some(run.passage_settings()))
        .build()
        .map_err(error)?;
    let watch = Watch::new(progress);
    let mut unparsed_dates = None;
    let answer = watch.run(py, run.threads, || {
        let plan = input::plan_sources(&specs, Some(InputFormat::JsonLines)).map_err(error)?;
        let compared = align::compare(
            &pipeline,
            &plan.sources,
            &DocRef::Source(0),
            &DocRef::Source(1),
            &watch,
        );
        // The corpus may hold a and b themselves, or repeat a record: each counts once.
        let counted_once = |p: &input::Problem| {
            &*p.source == CORPUS && matches!(p.kind, ProblemKind::DuplicateId { .. })
        };
        if let Some(p) = watch.finish()?.iter().find(|p| !counted_once(p)) {
            return Err(bad_record(p));
        }
        let comparison = compared.map_err(error)?;
        unparsed_dates = unparsed_dates_warning(&comparison.stats);
        json_lines(|out| report::write_comparison(out, &comparison))
    })?;
    warn(py, unparsed_dates)?;
    Ok(answer)
}

/// The name corpus records of `compare` are reported under.
pub const CORPUS: &str = "corpus";
