//! What a document contributes to story matching: its content terms, names, figures
//! (with the word they qualify) and the weekdays it mentions.
//!
//! Extracted once per document while it is read, from the same tokens as the shingles
//! (normalized forms, byte offsets into the original text for capitalisation).

use std::collections::HashSet;
use std::sync::OnceLock;

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::text::{Token, Tokenizer, hash_normalized};

/// The story features of one document. Every list is sorted and deduplicated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoryDoc {
    /// Hashes of content words (stop words and bare figures left out).
    pub terms: Vec<u64>,
    /// Hashes of names: capitalised words not at a sentence start, and runs of them.
    pub names: Vec<u64>,
    /// Hashes of figures (tokens that start with a digit).
    pub figures: Vec<u64>,
    /// `(slot, figure)`: a figure with the content word before it (its template slot).
    pub slots: Vec<(u64, u64)>,
    /// Hashes of word pairs inside quotation marks (pairs of two stop words left out).
    pub quotes: Vec<u64>,
    /// Bit `d` set when weekday `d` (Monday = 0) is mentioned.
    pub weekdays: u8,
    /// The first weekday mentioned (Monday = 0), if any.
    pub first_weekday: Option<u8>,
}

impl StoryDoc {
    /// Bytes this document's features take in memory (for the memory budget note).
    pub fn heap_bytes(&self) -> usize {
        8 * (self.terms.len() + self.names.len() + self.figures.len() + self.quotes.len())
            + 16 * self.slots.len()
    }
}

/// Seed that keeps name hashes apart from term hashes.
const NAME_SEED: u64 = 0x6e61_6d65;
/// Seed of quoted word pairs.
const QUOTE_SEED: u64 = 0x0071_756f_7465;

type KeySet = HashSet<u64, std::hash::BuildHasherDefault<super::stats::KeyHasher>>;

/// The set of stop-word hashes (function words that carry no story).
fn stop_words() -> &'static KeySet {
    static SET: OnceLock<KeySet> = OnceLock::new();
    SET.get_or_init(|| {
        STOP_WORDS
            .split_ascii_whitespace()
            .map(|w| hash_normalized(w.as_bytes()))
            .collect()
    })
}

fn weekday_hashes() -> &'static [u64; 7] {
    static DAYS: OnceLock<[u64; 7]> = OnceLock::new();
    DAYS.get_or_init(|| {
        [
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
        ]
        .map(|d| hash_normalized(d.as_bytes()))
    })
}

/// Whether a normalized token hash is a stop word.
pub fn is_stop_word(hash: u64) -> bool {
    stop_words().contains(&hash)
}

/// English function words, and the reporting verbs and calendar words every story has.
const STOP_WORDS: &str = "a about above after again against all also am an and any are as at
be because been before being below between both but by can could did do does doing down during
each few for from further had has have having he her here hers herself him himself his how i if
in into is it its itself just me more most my myself no nor not now of off on once only or other
our ours ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were what
when where which while who whom why will with would you your yours yourself yourselves said says
say told according mr mrs ms dr would could may might must shall also s t year years week weeks
day days month months time new one two three first last next since still however many much
monday tuesday wednesday thursday friday saturday sunday yesterday today tomorrow";

/// Extracts story features, reusing its buffers (one per thread).
#[derive(Debug, Default)]
pub struct Extractor {
    tokenizer: Tokenizer,
    tokens: Vec<Token>,
}

impl Extractor {
    /// An extractor with empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// The story features of `text`.
    pub fn extract(&mut self, text: &str) -> StoryDoc {
        let mut tokens = std::mem::take(&mut self.tokens);
        tokens.clear();
        self.tokenizer.tokenize(text, &mut tokens);
        let doc = Self::extract_tokens(text, &tokens);
        self.tokens = tokens;
        doc
    }

    /// The story features of `text` given its tokens (as the word shingler made them).
    pub fn extract_tokens(text: &str, tokens: &[Token]) -> StoryDoc {
        let stop = stop_words();
        let days = weekday_hashes();
        let bytes = text.as_bytes();
        let mut doc = StoryDoc::default();
        let mut run: Vec<u64> = Vec::new();
        let mut last_content: Option<(u64, usize)> = None;
        let mut prev_end = 0usize;
        let mut in_quote = false;
        let mut previous_quoted: Option<u64> = None;
        let mut previous_stop = false;
        for (i, t) in tokens.iter().enumerate() {
            let (start, end) = (t.start as usize, t.end as usize);
            let gap = &bytes[prev_end..start];
            let is_stop = stop.contains(&t.hash);
            in_quote = quote_state(in_quote, gap);
            if in_quote {
                if let Some(prev) = previous_quoted {
                    if !(previous_stop && is_stop) {
                        doc.quotes.push(xxh3_64_with_seed(
                            bytemuck::cast_slice(&[prev, t.hash]),
                            QUOTE_SEED,
                        ));
                    }
                }
                previous_quoted = Some(t.hash);
                previous_stop = is_stop;
            } else {
                previous_quoted = None;
            }
            let first = bytes[start];
            let is_figure = first.is_ascii_digit();
            if is_stop {
                if let Some(d) = days.iter().position(|&h| h == t.hash) {
                    doc.weekdays |= 1 << d;
                    doc.first_weekday.get_or_insert(d as u8);
                }
            }
            let capitalised = if first < 0x80 {
                first.is_ascii_uppercase()
            } else {
                text[start..end]
                    .chars()
                    .next()
                    .is_some_and(char::is_uppercase)
            };
            let sentence_start = i == 0 || starts_sentence(gap);
            if !gap.iter().all(|&b| b == b' ') {
                // Only a space joins the words of one name.
                flush_name(&mut run, &mut doc.names);
            }
            if capitalised && !is_figure && !is_stop {
                run.push(t.hash);
                if !sentence_start {
                    doc.names.push(t.hash ^ NAME_SEED);
                }
            } else {
                flush_name(&mut run, &mut doc.names);
            }
            if is_figure {
                doc.figures.push(t.hash);
                if let Some((slot, at)) = last_content {
                    if i - at <= 3 {
                        doc.slots.push((slot, t.hash));
                    }
                }
            } else if !is_stop {
                doc.terms.push(t.hash);
                last_content = Some((t.hash, i));
            }
            prev_end = end;
        }
        flush_name(&mut run, &mut doc.names);
        for list in [
            &mut doc.terms,
            &mut doc.names,
            &mut doc.figures,
            &mut doc.quotes,
        ] {
            list.sort_unstable();
            list.dedup();
        }
        doc.slots.sort_unstable();
        doc.slots.dedup();
        doc
    }
}

/// Whether the text after `gap` is inside a quotation, given whether the text before it
/// was. Straight quotes toggle, typographic ones open and close; a line break ends any
/// quotation (a quote carried over a paragraph reopens with its own mark).
fn quote_state(mut inside: bool, gap: &[u8]) -> bool {
    if gap.len() == 1 && gap[0] == b' ' {
        return inside; // the common case
    }
    let text = String::from_utf8_lossy(gap);
    for c in text.chars() {
        match c {
            '"' => inside = !inside,
            '“' | '«' | '„' => inside = true,
            '”' | '»' => inside = false,
            '\n' => inside = false,
            _ => {}
        }
    }
    inside
}

/// A run of two or more capitalised words is a multi-word name.
fn flush_name(run: &mut Vec<u64>, names: &mut Vec<u64>) {
    if run.len() >= 2 {
        names.push(xxh3_64_with_seed(bytemuck::cast_slice(run), NAME_SEED));
    }
    run.clear();
}

/// Whether the text between two tokens ends a sentence (or a line: titles, datelines).
fn starts_sentence(gap: &[u8]) -> bool {
    gap.iter()
        .any(|&b| matches!(b, b'.' | b'!' | b'?' | b'\n' | b':' | b'"'))
        || gap.ends_with("“".as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(w: &str) -> u64 {
        hash_normalized(w.as_bytes())
    }

    #[test]
    fn terms_skip_stop_words_and_figures() {
        let d = Extractor::new().extract("The bank raised rates by 0.5 points on Tuesday.");
        let mut expected = vec![h("bank"), h("raised"), h("rates"), h("points")];
        expected.sort_unstable();
        assert_eq!(d.terms, expected);
        assert_eq!(d.figures, vec![h("0.5")]);
        assert_eq!(d.slots, vec![(h("rates"), h("0.5"))]);
        assert_eq!(d.weekdays, 1 << 1);
        assert_eq!(d.first_weekday, Some(1));
    }

    #[test]
    fn names_are_capitalised_words_inside_sentences() {
        let d = Extractor::new()
            .extract("Talks went on. Envoy Steve Witkoff met Putin in Alaska. Nothing else");
        let name = |w: &str| h(w) ^ NAME_SEED;
        for w in ["steve", "witkoff", "putin", "alaska"] {
            assert!(d.names.contains(&name(w)), "{w}");
        }
        // Sentence openers alone are not names.
        assert!(!d.names.contains(&name("talks")));
        assert!(!d.names.contains(&name("nothing")));
        let run = xxh3_64_with_seed(
            bytemuck::cast_slice(&[h("envoy"), h("steve"), h("witkoff")]),
            NAME_SEED,
        );
        assert!(d.names.contains(&run), "multi-word names are kept whole");
    }

    #[test]
    fn quotes_keep_word_pairs_inside_quotation_marks() {
        let mut x = Extractor::new();
        let straight = x.extract("He said \"We welcome the deal\" on Sunday.");
        let curly = x.extract("“We welcome the deal,” he said.\n“Unclosed and\nafter");
        assert_eq!(straight.quotes.len(), 3); // we welcome, welcome the, the deal
        assert!(straight.quotes.iter().all(|q| curly.quotes.contains(q)));
        assert_eq!(curly.quotes.len(), 4); // + "unclosed and"; the line break ends it
    }
}
