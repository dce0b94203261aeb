//! What a document contributes to story matching: its content terms, names, figures
//! (with the word they qualify) and the weekdays it mentions.
//!
//! Extracted once per document while it is read, from the same tokens as the shingles
//! (normalized forms, byte offsets into the original text for capitalisation).

use std::collections::HashSet;
use std::sync::OnceLock;

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::text::{Token, Tokenizer, hash_normalized, is_unspaced_alphabet};

/// The story features of one document. Every list is sorted and deduplicated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoryDoc {
    /// Hashes of content words (stop words and bare figures left out).
    pub terms: Vec<u64>,
    /// Hashes of names: capitalised words not at a sentence start, and runs of them.
    pub names: Vec<u64>,
    /// Hashes of values: figures (a run such as `12-1/2` or `6-3/8` is one value) and
    /// capitalised month names (dates: "Pay 20 May").
    pub figures: Vec<u64>,
    /// `(slot, value)`: a value with its template slot — the content word within three
    /// tokens before it ("rose 5%", "Shr 73 cts"), or the value just before it ("$280bn
    /// (£155bn)": an amount and its conversion, which changes with the day's rate).
    pub slots: Vec<[u64; 2]>,
    /// Hashes of word pairs inside quotation marks (pairs of two stop words left out).
    pub quotes: Vec<u64>,
    /// Term hashes of the words of the names in the text's lead: its first sentence
    /// that names anyone or anything. Who the story is about: a templated notice of
    /// another company ("Tokyo Optical Co Ltd is issuing…") names someone the other
    /// text never mentions.
    pub lead_names: Vec<u64>,
    /// Bit `d` set when weekday `d` (Monday = 0) is mentioned.
    pub weekdays: u8,
    /// The first weekday mentioned (Monday = 0), if any.
    pub first_weekday: Option<u8>,
    /// Which references to an earlier time it makes ("last week", "earlier this month",
    /// "days ago", …): one bit per [`BackReference`].
    pub back_references: u16,
}

/// Phrases by which a report points back to an earlier day: the mark of a follow-up
/// retelling an earlier story ("Earlier this month, a court rejected the claim").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum BackReference {
    /// "last week"
    LastWeek,
    /// "last month"
    LastMonth,
    /// "last weekend"
    LastWeekend,
    /// "last Monday" … "last Sunday"
    LastWeekday,
    /// "earlier this week", "earlier in the week"
    EarlierThisWeek,
    /// "earlier this month", "earlier in the month"
    EarlierThisMonth,
    /// "earlier this year"
    EarlierThisYear,
    /// "days ago"
    DaysAgo,
    /// "weeks ago", "a week ago"
    WeeksAgo,
    /// "yesterday"
    Yesterday,
    /// "the previous day", "the day before"
    PreviousDay,
}

impl StoryDoc {
    /// The keys corpus statistics count for it: its content words and names.
    pub fn counted_keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.terms.iter().chain(&self.names).copied()
    }

    /// The features as borrowed lists.
    pub fn view(&self) -> StoryView<'_> {
        StoryView {
            terms: &self.terms,
            names: &self.names,
            figures: &self.figures,
            slots: &self.slots,
            quotes: &self.quotes,
            lead_names: &self.lead_names,
            weekdays: self.weekdays,
            first_weekday: self.first_weekday,
            back_references: self.back_references,
        }
    }
}

/// The features of one document, borrowed: from a [`StoryDoc`] or straight from the
/// words a [`super::docs::StoryDocs`] store keeps them in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoryView<'a> {
    /// See [`StoryDoc::terms`].
    pub terms: &'a [u64],
    /// See [`StoryDoc::names`].
    pub names: &'a [u64],
    /// See [`StoryDoc::figures`].
    pub figures: &'a [u64],
    /// See [`StoryDoc::slots`].
    pub slots: &'a [[u64; 2]],
    /// See [`StoryDoc::quotes`].
    pub quotes: &'a [u64],
    /// See [`StoryDoc::lead_names`].
    pub lead_names: &'a [u64],
    /// See [`StoryDoc::weekdays`].
    pub weekdays: u8,
    /// See [`StoryDoc::first_weekday`].
    pub first_weekday: Option<u8>,
    /// See [`StoryDoc::back_references`].
    pub back_references: u16,
}

/// Words of the header of an encoded [`StoryView`].
const HEADER_WORDS: usize = 4;

impl<'a> StoryView<'a> {
    /// Appends the features to `out` as words: a header of list lengths and the scalar
    /// fields, then the lists in field order (a slot is two words).
    pub fn encode_into(&self, out: &mut Vec<u64>) {
        let len = |n: usize| u32::try_from(n).expect("a list of features fits in u32") as u64;
        out.push(len(self.terms.len()) | len(self.names.len()) << 32);
        out.push(len(self.figures.len()) | len(self.slots.len()) << 32);
        out.push(
            len(self.quotes.len())
                | u64::from(self.weekdays) << 32
                | u64::from(self.first_weekday.unwrap_or(u8::MAX)) << 40
                | u64::from(self.back_references) << 48,
        );
        out.push(len(self.lead_names.len()));
        out.extend_from_slice(self.terms);
        out.extend_from_slice(self.names);
        out.extend_from_slice(self.figures);
        out.extend_from_slice(bytemuck::cast_slice(self.slots));
        out.extend_from_slice(self.quotes);
        out.extend_from_slice(self.lead_names);
    }

    /// The features [`Self::encode_into`] wrote to `words`; `None` when `words` do not
    /// hold exactly them.
    pub fn decode(words: &'a [u64]) -> Option<StoryView<'a>> {
        let header = words.get(..HEADER_WORDS)?;
        let low = |w: u64| (w & 0xFFFF_FFFF) as usize;
        let high = |w: u64| (w >> 32) as usize;
        let mut rest = &words[HEADER_WORDS..];
        let mut take = |n: usize| -> Option<&'a [u64]> {
            let list = rest.get(..n)?;
            rest = &rest[n..];
            Some(list)
        };
        let terms = take(low(header[0]))?;
        let names = take(high(header[0]))?;
        let figures = take(low(header[1]))?;
        let slots = bytemuck::cast_slice(take(2 * high(header[1]))?);
        let quotes = take(low(header[2]))?;
        let lead_names = take(usize::try_from(header[3]).ok()?)?;
        let first = (header[2] >> 40) as u8;
        let view = StoryView {
            terms,
            names,
            figures,
            slots,
            quotes,
            lead_names,
            weekdays: (header[2] >> 32) as u8,
            first_weekday: (first != u8::MAX).then_some(first),
            back_references: (header[2] >> 48) as u16,
        };
        rest.is_empty().then_some(view)
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

/// Hashes of the words that dates and back references are made of.
struct Vocabulary {
    weekdays: [u64; 7],
    months: [u64; 12],
    last: u64,
    week: u64,
    weeks: u64,
    month: u64,
    weekend: u64,
    year: u64,
    earlier: u64,
    this: u64,
    in_: u64,
    the: u64,
    a: u64,
    days: u64,
    ago: u64,
    yesterday: u64,
    previous: u64,
    one: u64,
    numbers: [u64; 17],
    day: u64,
    before: u64,
}

fn vocabulary() -> &'static Vocabulary {
    static VOCABULARY: OnceLock<Vocabulary> = OnceLock::new();
    VOCABULARY.get_or_init(|| {
        let h = |w: &str| hash_normalized(w.as_bytes());
        Vocabulary {
            weekdays: [
                "monday",
                "tuesday",
                "wednesday",
                "thursday",
                "friday",
                "saturday",
                "sunday",
            ]
            .map(h),
            months: [
                "january",
                "february",
                "march",
                "april",
                "may",
                "june",
                "july",
                "august",
                "september",
                "october",
                "november",
                "december",
            ]
            .map(h),
            last: h("last"),
            week: h("week"),
            weeks: h("weeks"),
            month: h("month"),
            weekend: h("weekend"),
            year: h("year"),
            earlier: h("earlier"),
            this: h("this"),
            in_: h("in"),
            the: h("the"),
            a: h("a"),
            days: h("days"),
            ago: h("ago"),
            yesterday: h("yesterday"),
            previous: h("previous"),
            one: h("one"),
            numbers: [
                "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                "twelve", "fifteen", "twenty", "thirty", "forty", "fifty", "hundred",
            ]
            .map(h),
            day: h("day"),
            before: h("before"),
        }
    })
}

impl Vocabulary {
    /// Whether a back reference can start with this word.
    fn opens_back_reference(&self, w: u64) -> bool {
        [
            self.last,
            self.earlier,
            self.days,
            self.weeks,
            self.a,
            self.yesterday,
            self.previous,
            self.day,
        ]
        .contains(&w)
    }
}

/// The back reference that starts at `words[0]`, if any (`words` are token hashes).
fn back_reference(v: &Vocabulary, words: &[u64]) -> Option<BackReference> {
    let at = |i: usize| words.get(i).copied().unwrap_or(0);
    let (w0, w1, w2) = (at(0), at(1), at(2));
    let unit = |w: u64| {
        if w == v.week {
            Some(BackReference::EarlierThisWeek)
        } else if w == v.month {
            Some(BackReference::EarlierThisMonth)
        } else if w == v.year {
            Some(BackReference::EarlierThisYear)
        } else {
            None
        }
    };
    if w0 == v.last {
        if w1 == v.week {
            Some(BackReference::LastWeek)
        } else if w1 == v.month {
            Some(BackReference::LastMonth)
        } else if w1 == v.weekend {
            Some(BackReference::LastWeekend)
        } else if v.weekdays.contains(&w1) {
            Some(BackReference::LastWeekday)
        } else {
            None
        }
    } else if w0 == v.earlier && (w1 == v.this || w1 == v.in_) {
        // "earlier this week", "earlier in the week"
        unit(if w1 == v.this {
            w2
        } else if w2 == v.the {
            at(3)
        } else {
            0
        })
    } else if w0 == v.days && w1 == v.ago {
        Some(BackReference::DaysAgo)
    } else if (w0 == v.weeks && w1 == v.ago) || (w0 == v.a && w1 == v.week && w2 == v.ago) {
        Some(BackReference::WeeksAgo)
    } else if w0 == v.yesterday {
        Some(BackReference::Yesterday)
    } else if (w0 == v.previous && w1 == v.day) || (w0 == v.day && w1 == v.before) {
        Some(BackReference::PreviousDay)
    } else {
        None
    }
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
        self.extract_document(None, text, None)
    }

    /// The story features of a document: its headline (when the record has one) and its
    /// text, given the text's tokens when the word shingler already made them.
    ///
    /// The headline counts like the text (it names the company of a one-line dividend
    /// notice), except that an all-capitals headline has no names to find.
    pub fn extract_document(
        &mut self,
        title: Option<&str>,
        text: &str,
        text_tokens: Option<&[Token]>,
    ) -> StoryDoc {
        let mut doc = StoryDoc::default();
        let mut tokens = std::mem::take(&mut self.tokens);
        if let Some(title) = title {
            tokens.clear();
            self.tokenizer.tokenize(title, &mut tokens);
            let names = title.chars().any(char::is_lowercase);
            add_features(&mut doc, title, &tokens, Part::title(names));
        }
        match text_tokens {
            Some(t) => add_features(&mut doc, text, t, Part::Text),
            None => {
                tokens.clear();
                self.tokenizer.tokenize(text, &mut tokens);
                add_features(&mut doc, text, &tokens, Part::Text);
            }
        }
        self.tokens = tokens;
        finish(&mut doc);
        doc
    }

    /// The story features of `text` given its tokens (as the word shingler made them).
    pub fn extract_tokens(text: &str, tokens: &[Token]) -> StoryDoc {
        let mut doc = StoryDoc::default();
        add_features(&mut doc, text, tokens, Part::Text);
        finish(&mut doc);
        doc
    }
}

/// Sorts and deduplicates every list of `doc`. Not trimmed: a document's features live
/// only until they are encoded into a store or an index record.
fn finish(doc: &mut StoryDoc) {
    for list in [
        &mut doc.terms,
        &mut doc.names,
        &mut doc.figures,
        &mut doc.quotes,
        &mut doc.lead_names,
    ] {
        list.sort_unstable();
        list.dedup();
    }
    doc.slots.sort_unstable();
    doc.slots.dedup();
}

/// Which part of a record a text is: what its capitals say, and whether it has a lead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    /// A headline in mixed case: it names, but the lead is the text's.
    Title,
    /// An all-capitals headline: its capitals name nothing.
    CapitalsTitle,
    /// The text.
    Text,
}

impl Part {
    fn title(mixed_case: bool) -> Part {
        if mixed_case {
            Part::Title
        } else {
            Part::CapitalsTitle
        }
    }
}

/// Adds the features of `text` (its `tokens`, a `part` of the record) to `doc`, unsorted.
fn add_features(doc: &mut StoryDoc, text: &str, tokens: &[Token], part: Part) {
    {
        let find_names = part != Part::CapitalsTitle;
        // Open until the end of the text's first sentence that names something.
        let mut in_lead = part == Part::Text;
        let stop = stop_words();
        let v = vocabulary();
        let bytes = text.as_bytes();
        let mut run: Vec<u64> = Vec::new();
        let mut last_content: Option<(u64, usize)> = None;
        let mut values = Values::default();
        let mut prev_end = 0usize;
        let mut in_quote = false;
        let mut previous_quoted: Option<u64> = None;
        let mut previous_stop = false;
        let mut grams = Grams::default();
        for (i, t) in tokens.iter().enumerate() {
            let (start, end) = (t.start as usize, t.end as usize);
            let gap = &bytes[prev_end..start];
            let is_stop = stop.contains(&t.hash);
            // The word this token stands for: itself, or in an alphabet written without
            // spaces the n-gram of letters it ends (none until the run is long enough).
            let word = if bytes[start] >= 0x80
                && text[start..end]
                    .chars()
                    .next()
                    .is_some_and(is_unspaced_alphabet)
            {
                grams.push(&mut doc.terms, t.hash, start, end)
            } else {
                grams.flush(&mut doc.terms);
                Some(t.hash)
            };
            in_quote = quote_state(in_quote, gap);
            if !in_quote {
                previous_quoted = None;
            } else if let Some(word) = word {
                if let Some(prev) = previous_quoted {
                    if !(previous_stop && is_stop) {
                        doc.quotes.push(xxh3_64_with_seed(
                            bytemuck::cast_slice(&[prev, word]),
                            QUOTE_SEED,
                        ));
                    }
                }
                previous_quoted = Some(word);
                previous_stop = is_stop;
            }
            let first = bytes[start];
            // Numbers written as words are values too ("Qtly div five cts"); "one" only in
            // a date ("Pay April One"), being a pronoun as often as not.
            let is_figure = first.is_ascii_digit()
                || v.numbers.contains(&t.hash)
                || (t.hash == v.one && i > 0 && v.months.contains(&tokens[i - 1].hash));
            let capitalised = if first < 0x80 {
                first.is_ascii_uppercase()
            } else {
                text[start..end]
                    .chars()
                    .next()
                    .is_some_and(char::is_uppercase)
            };
            let sentence_start = i == 0 || starts_sentence(gap);
            if is_stop {
                if let Some(d) = v.weekdays.iter().position(|&h| h == t.hash) {
                    doc.weekdays |= 1 << d;
                    doc.first_weekday.get_or_insert(d as u8);
                }
            }
            if v.opens_back_reference(t.hash) {
                if let Some(r) = back_reference(v, &tokens_hashes(tokens, i)) {
                    doc.back_references |= 1 << r as u8;
                }
            }
            // "May" opening a sentence is the verb more often than the month.
            let month = capitalised
                && v.months.contains(&t.hash)
                && !(sentence_start && t.hash == v.months[4]);
            if !gap.iter().all(|&b| b == b' ') {
                // Only a space joins the words of one name.
                flush_name(&mut run, &mut doc.names, lead(in_lead, &mut doc.lead_names));
            }
            if in_lead && sentence_start && !doc.lead_names.is_empty() {
                in_lead = false;
            }
            if find_names && capitalised && !is_figure && !is_stop && !month {
                run.push(t.hash);
                if !sentence_start {
                    doc.names.push(t.hash ^ NAME_SEED);
                    if in_lead {
                        doc.lead_names.push(t.hash);
                    }
                }
            } else {
                flush_name(&mut run, &mut doc.names, lead(in_lead, &mut doc.lead_names));
            }
            let slot = last_content.filter(|&(_, at)| i - at <= 3).map(|(s, _)| s);
            if is_figure {
                let joined = gap.len() == 1 && matches!(gap[0], b'-' | b'/');
                values.figure(doc, t.hash, i, joined, slot);
            } else {
                values.flush(doc);
                if month {
                    values.month(doc, t.hash, slot);
                }
                if let Some(word) = word.filter(|_| !is_stop) {
                    doc.terms.push(word);
                    if !month {
                        last_content = Some((word, i));
                    }
                }
            }
            prev_end = end;
        }
        grams.flush(&mut doc.terms);
        values.flush(doc);
        flush_name(&mut run, &mut doc.names, lead(in_lead, &mut doc.lead_names));
    }
}

/// The lead's name words while the lead is open.
fn lead(in_lead: bool, lead_names: &mut Vec<u64>) -> Option<&mut Vec<u64>> {
    in_lead.then_some(lead_names)
}

/// Letters in one n-gram term of an alphabet written without spaces (Thai, Lao, Khmer,
/// Myanmar). Its letters, a few dozen, are in every text and weigh nothing as words;
/// letter pairs are few too (70k in 1,520 generated Thai texts, against 268k trigrams),
/// and 4-grams only widen what one edited letter changes (BENCHMARKS.md).
const GRAM_LETTERS: usize = 3;
/// Seed of those n-grams: they never equal a one-letter term (how statistics counted by
/// an older neardup, which weighed the letters, are told apart: [`super::stats`]).
const GRAM_SEED: u64 = 0x0067_7261_6d73;

/// Builds the n-gram terms of runs of adjacent letters of an alphabet written without
/// spaces: each letter from the n-th on ends one; a shorter run is one term.
#[derive(Debug, Default)]
struct Grams {
    /// The run's last letters (token hashes), the latest at `len - 1` (modulo n).
    letters: [u64; GRAM_LETTERS],
    /// Letters in the run so far.
    len: usize,
    /// Where the run's last letter ends in the text.
    end: usize,
}

impl Grams {
    /// Adds a letter at `[start, end)`; returns the n-gram it ends, if the run has n
    /// letters. A letter not adjacent to the run starts a new one.
    fn push(&mut self, terms: &mut Vec<u64>, letter: u64, start: usize, end: usize) -> Option<u64> {
        if self.len > 0 && self.end != start {
            self.flush(terms);
        }
        self.letters[self.len % GRAM_LETTERS] = letter;
        self.len += 1;
        self.end = end;
        (self.len >= GRAM_LETTERS).then(|| self.hash(GRAM_LETTERS))
    }

    /// Ends the run: a run shorter than n letters becomes one term of its own.
    fn flush(&mut self, terms: &mut Vec<u64>) {
        if (1..GRAM_LETTERS).contains(&self.len) {
            terms.push(self.hash(self.len));
        }
        self.len = 0;
    }

    /// The hash of the run's last `n` letters, in order.
    fn hash(&self, n: usize) -> u64 {
        let ordered: [u64; GRAM_LETTERS] =
            std::array::from_fn(|k| self.letters[(self.len + GRAM_LETTERS - n + k) % GRAM_LETTERS]);
        xxh3_64_with_seed(bytemuck::cast_slice(&ordered[..n]), GRAM_SEED)
    }
}

/// Up to four token hashes from `i` on (what a back reference is matched against).
fn tokens_hashes(tokens: &[Token], i: usize) -> [u64; 4] {
    std::array::from_fn(|k| tokens.get(i + k).map_or(0, |t| t.hash))
}

/// Seed that keeps a value used as a slot apart from a word used as one.
const VALUE_SLOT_SEED: u64 = 0x0076_616c_7565;

/// Builds values from figure tokens: `12-1/2` is the tokens 12, 1, 2 joined by `-` and
/// `/`, and one value.
#[derive(Debug, Default)]
struct Values {
    /// The value being built: its hash, its first and last token, its slot word.
    open: Option<(u64, usize, usize, Option<u64>)>,
    /// The last finished figure value and its last token.
    previous: Option<(u64, usize)>,
}

impl Values {
    fn figure(&mut self, doc: &mut StoryDoc, hash: u64, i: usize, joined: bool, slot: Option<u64>) {
        match &mut self.open {
            Some((value, _, last, _)) if joined && *last + 1 == i => {
                *value = xxh3_64_with_seed(bytemuck::cast_slice(&[*value, hash]), VALUE_SLOT_SEED);
                *last = i;
            }
            _ => {
                self.flush(doc);
                self.open = Some((hash, i, i, slot));
            }
        }
    }

    fn month(&mut self, doc: &mut StoryDoc, hash: u64, slot: Option<u64>) {
        doc.figures.push(hash);
        if let Some(s) = slot {
            doc.slots.push([s, hash]);
        }
    }

    fn flush(&mut self, doc: &mut StoryDoc) {
        let Some((value, first, last, slot)) = self.open.take() else {
            return;
        };
        doc.figures.push(value);
        if let Some(s) = slot {
            doc.slots.push([s, value]);
        }
        // The amount a value follows closely ("$280bn (£155bn)") is a slot of its own.
        if let Some((before, at)) = self.previous {
            if first - at <= 3 {
                doc.slots.push([before ^ VALUE_SLOT_SEED, value]);
            }
        }
        self.previous = Some((value, last));
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

/// A run of two or more capitalised words is a multi-word name (and, in the lead, each
/// of its words is a lead name: "Tokyo Optical Co Ltd" opening a sentence).
fn flush_name(run: &mut Vec<u64>, names: &mut Vec<u64>, lead_names: Option<&mut Vec<u64>>) {
    if run.len() >= 2 {
        names.push(xxh3_64_with_seed(bytemuck::cast_slice(run), NAME_SEED));
        if let Some(lead_names) = lead_names {
            lead_names.extend_from_slice(run);
        }
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
        assert_eq!(d.slots, vec![[h("rates"), h("0.5")]]);
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
    fn the_lead_is_the_first_sentence_that_names_someone() {
        let mut x = Extractor::new();
        let d = x.extract_document(
            Some("Bank Moves"),
            "Rates rose today. Tokyo Optical Co Ltd said the Bank of Japan acted.\nSony agreed.",
            None,
        );
        let mut expected: Vec<u64> = ["tokyo", "optical", "co", "ltd", "bank", "japan"]
            .into_iter()
            .map(h)
            .collect();
        expected.sort_unstable();
        // Not the headline's names, not the first sentence (no names), not the next one.
        assert_eq!(d.lead_names, expected);
        assert!(x.extract("no names at all.").lead_names.is_empty());
    }

    #[test]
    fn runs_of_thai_letters_are_terms_as_trigrams() {
        let d = Extractor::new().extract("ภาษาไทย ก Thai");
        let letters: Vec<u64> = ["ภ", "า", "ษ", "า", "ไ", "ท", "ย", "ก"]
            .into_iter()
            .map(h)
            .collect();
        // 5 trigrams of the 7-letter run, the 1-letter run whole, and "thai".
        assert_eq!(d.terms.len(), 7, "{:?}", d.terms);
        assert!(d.terms.contains(&h("thai")));
        assert!(!d.terms.iter().any(|t| letters.contains(t)));
        assert!(
            d.terms
                .iter()
                .all(|&t| !crate::story::stats::is_retired_letter_key(t))
        );
        // A trigram is the same wherever its run is.
        let again = Extractor::new().extract("ไทย");
        assert!(again.terms.iter().all(|t| d.terms.contains(t)));
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
