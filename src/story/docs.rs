//! The story features of every document of a batch run, as words in a [`SetStore`]: in
//! memory up to the memory budget, then in a temporary file, so that a story-level run
//! over an archive holds no more of them in memory than it is allowed.

use std::io;
use std::path::PathBuf;

use super::features::{StoryDoc, StoryView};
use super::score::Weighted;
use super::stats::StoryStats;
use crate::corpus::SetStore;

/// Story features by document, appended in document order; after the story level's
/// weigh stage, also each document's IDF weights ([`Weighted`]), in a second store.
#[derive(Debug)]
pub struct StoryDocs {
    features: SetStore,
    weights: Option<SetStore>,
    words: Vec<u64>,
}

impl StoryDocs {
    /// An empty store that keeps up to `budget_bytes` of features (and as much of
    /// weights) in memory and spills the rest to a temporary file in `temp_dir` (the
    /// system's when `None`).
    pub fn new(budget_bytes: u64, temp_dir: Option<PathBuf>) -> Self {
        StoryDocs {
            features: SetStore::new(budget_bytes, temp_dir),
            weights: None,
            words: Vec::new(),
        }
    }

    /// Appends the features of the next document.
    pub fn push(&mut self, doc: &StoryDoc) -> io::Result<()> {
        self.words.clear();
        doc.view().encode_into(&mut self.words);
        self.features.push(&self.words)
    }

    /// Appends the features of the next document, as [`StoryView::encode_into`] wrote
    /// them; also written at byte `kept_at` of the checkpoint given to
    /// [`StoryDocs::read_kept_from`], if any.
    pub(crate) fn push_encoded(&mut self, words: &[u64], kept_at: Option<u64>) -> io::Result<()> {
        self.features.push_kept(words, kept_at)
    }

    /// Reads features kept in a checkpoint from there once they leave memory.
    pub(crate) fn read_kept_from(&mut self, kept: std::sync::Arc<crate::corpus::KeptLists>) {
        self.features.read_kept_from(kept);
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.features.count()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The features of document `doc`, borrowed from the store, or from `buf` when they
    /// were spilled.
    pub fn get<'a>(&'a self, doc: u32, buf: &'a mut Vec<u64>) -> io::Result<StoryView<'a>> {
        let words = self.features.get(doc, buf)?;
        StoryView::decode(words).ok_or_else(|| corrupt(doc))
    }

    /// Starts storing weights anew (replacing any earlier ones): the weigh stage then
    /// hands every document's in order to [`Self::push_weights`].
    pub(crate) fn start_weights(&mut self) {
        self.weights = Some(self.features.empty_like());
    }

    /// Appends the next document's weights, as [`Weighted::encode_weights_into`] wrote
    /// them.
    pub(crate) fn push_weights(&mut self, words: &[u64]) -> io::Result<()> {
        self.weights
            .as_mut()
            .expect("start_weights comes before push_weights")
            .push(words)
    }

    /// The features and weights of document `doc` (after the weigh stage), borrowed from
    /// the stores or from the buffers.
    pub(crate) fn get_weighted<'a>(
        &'a self,
        doc: u32,
        buffers: &'a mut (Vec<u64>, Vec<u64>),
    ) -> io::Result<Weighted<'a>> {
        let Some(weights) = &self.weights else {
            return Err(io::Error::other(
                "story weights were read before the weigh stage",
            ));
        };
        let features = self.get(doc, &mut buffers.0)?;
        Weighted::decode(features, weights.get(doc, &mut buffers.1)?).ok_or_else(|| corrupt(doc))
    }

    /// The weighted features of document `doc` by `stats`, looked up afresh.
    pub fn weighted<'a>(
        &'a self,
        doc: u32,
        stats: &StoryStats,
        buf: &'a mut Vec<u64>,
    ) -> io::Result<Weighted<'a>> {
        Ok(Weighted::new(self.get(doc, buf)?, stats))
    }

    /// Bytes of features and weights (in memory, spilled).
    pub fn bytes(&self) -> (u64, u64) {
        let (memory, spilled) = self.features.bytes();
        let (more_memory, more_spilled) = self.weights.as_ref().map_or((0, 0), SetStore::bytes);
        (memory + more_memory, spilled + more_spilled)
    }
}

fn corrupt(doc: u32) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the stored story features of document {doc} are cut short"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::story::features::Extractor;

    const TEXTS: [&str; 3] = [
        "Envoy Steve Witkoff said on Monday: \"We welcome the deal.\" Shares rose 5%.",
        "",
        "Last week the Fed added reserves; funds traded at 6-3/16 pct on Tuesday and Friday.",
    ];

    #[test]
    fn features_and_weights_come_back_as_they_went_in_from_memory_and_from_disk() {
        let mut x = Extractor::new();
        let docs: Vec<StoryDoc> = TEXTS.iter().map(|t| x.extract(t)).collect();
        let mut stats = StoryStats::new();
        docs.iter().for_each(|d| stats.add(d));
        // A budget of one word spills every document; a large one keeps them all.
        for budget in [8, 1 << 20] {
            let mut store = StoryDocs::new(budget, None);
            docs.iter().for_each(|d| store.push(d).unwrap());
            assert_eq!(store.len(), docs.len());
            let mut buffers = (Vec::new(), Vec::new());
            assert!(store.get_weighted(0, &mut buffers).is_err());
            store.start_weights();
            let mut words = Vec::new();
            for (i, d) in docs.iter().enumerate() {
                let mut buf = Vec::new();
                assert_eq!(store.get(i as u32, &mut buf).unwrap(), d.view());
                words.clear();
                Weighted::new(d.view(), &stats).encode_weights_into(&mut words);
                store.push_weights(&words).unwrap();
            }
            for (i, d) in docs.iter().enumerate() {
                let back = store.get_weighted(i as u32, &mut buffers).unwrap();
                let fresh = Weighted::new(d.view(), &stats);
                assert_eq!(back.doc, d.view());
                assert_eq!(format!("{back:?}"), format!("{fresh:?}"));
                let mut buf = Vec::new();
                let again = store.weighted(i as u32, &stats, &mut buf).unwrap();
                assert_eq!(format!("{again:?}"), format!("{fresh:?}"));
            }
            let (memory, spilled) = store.bytes();
            assert_eq!(spilled > 0, budget == 8, "{memory} {spilled}");
        }
    }

    #[test]
    fn cut_or_padded_features_are_an_error_not_a_panic() {
        let doc = Extractor::new().extract(TEXTS[0]);
        let mut words = Vec::new();
        doc.view().encode_into(&mut words);
        for cut in 0..words.len() {
            assert!(StoryView::decode(&words[..cut]).is_none(), "cut at {cut}");
        }
        assert_eq!(StoryView::decode(&words), Some(doc.view()));
        words.push(0);
        assert!(StoryView::decode(&words).is_none());
    }
}
