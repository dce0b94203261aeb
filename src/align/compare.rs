//! Two documents compared: the library side of `neardup compare`.

use crate::error::{Error, ErrorKind, Result};
use crate::input::Source;
use crate::pipeline::Stats;
use crate::progress::Observer;
use crate::verify::PairScore;

use super::{PairPassages, align_pairs, missing_text};

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
    /// Counts of the run (documents read, bad records).
    pub stats: Stats,
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
                DocRef::Id(id) => format!("no document with id {id:?} in the inputs"),
            }))
        })
    };
    let (da, db) = (find(a)?, find(b)?);
    if da == db {
        return Err(ErrorKind::NotFound("A and B are the same document".into()).into());
    }
    let score = crate::verify::score_pairs(&corpus, &[(da, db)], &|_| {})
        .map_err(|e| Error::io("reading spilled shingle sets", e))?[0];
    let passages = align_pairs(&corpus, &[(da, db)], settings.shingle, passage, &|_| {})?
        .pop()
        .unwrap_or_default();
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
        stats,
    })
}
