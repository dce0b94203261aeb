//! Two documents compared: the library side of `neardup compare`.

use rayon::prelude::*;

use crate::corpus::Corpus;
use crate::error::{Error, ErrorKind, Result};
use crate::input::Source;
use crate::pipeline::Stats;
use crate::progress::{Observer, Ticker};
use crate::story::{self, Components, Kind, Model, StoryDoc, StoryStats, Veto};
use crate::verify::PairScore;

use super::{PairPassages, Room, align_pairs, missing_text};

/// Two documents compared: their scores, their texts and the passages they share.
#[derive(Debug)]
pub struct Comparison {
    /// The first document.
    pub a: ComparedDoc,
    /// The second document.
    pub b: ComparedDoc,
    /// Estimated and exact Jaccard, containments.
    pub score: PairScore,
    /// The passages they share.
    pub passages: PairPassages,
    /// How the story level judges them.
    pub story: StoryVerdict,
    /// Counts of the run (documents read, bad records).
    pub stats: Stats,
}

/// The story level's judgement of a compared pair, with what led to it.
#[derive(Clone, Debug)]
pub struct StoryVerdict {
    /// The score components (a is the document with the smaller id, as the story level
    /// orders a pair).
    pub components: Components,
    /// Probability of one story under the model (0 when vetoed).
    pub probability: f64,
    /// Whether the model decides one story.
    pub same_story: bool,
    /// The veto that decided two stories, if one did.
    pub veto: Option<Veto>,
    /// What kind the pair is, or would be, as one story.
    pub kind: Kind,
    /// The model that decided.
    pub model: Model,
    /// Documents the statistics (IDF weights) were counted over.
    pub statistics_documents: u64,
    /// Seconds between the two documents' dates when they are further apart than the
    /// window: two stories, whatever the score (the story level never scores such a pair).
    pub beyond_window: Option<u64>,
    /// The window judged by (seconds).
    pub window: Option<i64>,
}

/// One side of a [`Comparison`].
#[derive(Debug)]
pub struct ComparedDoc {
    /// The document's id (the path, for a text file).
    pub id: String,
    /// `file:line` or `file`.
    pub location: String,
    /// The original text.
    pub text: String,
    /// Number of words.
    pub words: u32,
}

/// Which document to compare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DocRef {
    /// The (first) document read from the source with this index.
    Source(usize),
    /// The document with this id.
    Id(String),
}

/// Compares two documents of `sources`; every document read counts for boilerplate.
///
/// The pipeline's shingle settings give the scores, its passage settings (which must be
/// set) the passages.
pub fn compare(
    pipeline: &crate::Pipeline,
    sources: &[Source],
    a: &DocRef,
    b: &DocRef,
    observer: &dyn Observer,
) -> Result<Comparison> {
    let settings = pipeline.settings();
    let passage = settings.passages.as_ref().ok_or_else(|| {
        Error::config("comparing needs passage settings (PipelineBuilder::passages)")
    })?;
    let mut stats = Stats {
        sources: sources.len() as u64,
        ..Stats::default()
    };
    let corpus = pipeline.read_corpus(sources, &mut stats, observer)?;
    let find = |r: &DocRef| -> Result<u32> {
        let found = match r {
            DocRef::Source(s) => {
                (0..corpus.len() as u32).find(|&d| corpus.location(d).source as usize == *s)
            }
            DocRef::Id(id) => (0..corpus.len() as u32).find(|&d| corpus.id(d) == id),
        };
        found.ok_or_else(|| {
            Error::from(ErrorKind::NotFound(match r {
                DocRef::Source(s) => format!(
                    "{}: no document was read from it (see the warnings above)",
                    sources[*s].name
                ),
                // A skipped record (no text, say) is not a document: point to why.
                DocRef::Id(id) if stats.bad() > 0 => format!(
                    "no document with id {id:?} in the inputs that could be compared (records \
                     skipped as bad, named in the warnings above, are not compared)"
                ),
                DocRef::Id(id) => format!("no document with id {id:?} in the inputs"),
            }))
        })
    };
    let (da, db) = (find(a)?, find(b)?);
    if da == db {
        return Err(ErrorKind::NotFound("A and B are the same document".into()).into());
    }
    let score = crate::verify::score_pairs(&corpus, &[(da, db)], Ticker::silent())
        .map_err(|e| Error::io("reading spilled shingle sets", e))?[0];
    let passages = align_pairs(
        &corpus,
        &[(da, db)],
        &Room::of(settings),
        passage,
        Ticker::silent(),
    )?
    .pop()
    .unwrap_or_default();
    let story = story_verdict(&corpus, &settings.story, da, db)?;
    let doc = |d: u32| -> Result<ComparedDoc> {
        let mut buf = Vec::new();
        let text = corpus
            .text(d, &mut buf)
            .map_err(|e| Error::io("reading a spilled text", e))?
            .ok_or_else(|| missing_text(d))?
            .to_string();
        Ok(ComparedDoc {
            id: corpus.id(d).to_string(),
            location: crate::pipeline::describe_location(sources, corpus.location(d)),
            text,
            words: corpus.tokens(d),
        })
    };
    Ok(Comparison {
        a: doc(da)?,
        b: doc(db)?,
        score,
        passages,
        story,
        stats,
    })
}

/// The story level's verdict on documents `a` and `b` of `corpus`, weighted by the
/// statistics file of `settings` or else by document frequencies over the whole corpus.
fn story_verdict(
    corpus: &Corpus,
    settings: &story::StorySettings,
    a: u32,
    b: u32,
) -> Result<StoryVerdict> {
    let features = |d: u32, x: &mut story::Extractor| -> Result<StoryDoc> {
        let mut buf = Vec::new();
        let text = corpus
            .text(d, &mut buf)
            .map_err(|e| Error::io("reading a spilled text", e))?
            .ok_or_else(|| missing_text(d))?;
        let title = match (&settings.title_field, corpus.metadata(d)) {
            (Some(field), Some(metadata)) => story::string_field(metadata, field),
            _ => None,
        };
        // As the pipeline read it: a text file's byte order mark left out.
        let text = crate::input::document_text(&text);
        Ok(x.extract_document(title.as_deref(), text, None))
    };
    let stats = match &settings.stats_in {
        Some(path) => StoryStats::load(path)?,
        None => {
            // Counted a slice of documents at a time, so the features are never all held.
            let mut stats = StoryStats::new();
            let n = corpus.len() as u32;
            for start in (0..n).step_by(4096) {
                let docs: Vec<StoryDoc> = (start..n.min(start + 4096))
                    .into_par_iter()
                    .map_init(story::Extractor::new, |x, d| features(d, x))
                    .collect::<Result<_>>()?;
                docs.iter().for_each(|d| stats.add(d));
            }
            stats
        }
    };
    // The story level scores a pair with the smaller id first.
    let (a, b) = if corpus.id(a) <= corpus.id(b) {
        (a, b)
    } else {
        (b, a)
    };
    let mut x = story::Extractor::new();
    let (fa, fb) = (features(a, &mut x)?, features(b, &mut x)?);
    let (mut buf_a, mut buf_b) = (Vec::new(), Vec::new());
    let spilled = |e| Error::io("reading spilled shingle sets", e);
    let sa = corpus.set(a, &mut buf_a).map_err(spilled)?;
    let sb = corpus.set(b, &mut buf_b).map_err(spilled)?;
    let components = story::doc_components(&fa, &fb, &stats, sa, sb);
    let model = settings.model;
    let (probability, veto) = model.judge(&components);
    let beyond_window = story::beyond_window(settings.window, corpus.date(a), corpus.date(b));
    Ok(StoryVerdict {
        components,
        probability,
        same_story: probability >= model.threshold && beyond_window.is_none(),
        veto,
        kind: Kind::of(&components),
        model,
        statistics_documents: stats.documents(),
        beyond_window,
        window: settings.window,
    })
}
