//! Normalization and tokenization: text in, tokens with byte offsets out.
//!
//! A token is a maximal run of word characters. Its `[start, end)` offsets point into the
//! **original** text and no later stage changes them; its `hash` is the xxh3 hash of the
//! token's normalized form. Normalization is, in order:
//!
//! 1. Unicode NFKC, then full case folding (`Straße` and `STRASSE` are one token);
//! 2. apostrophes of every kind (`'`, `’`, `‘`, `ʼ`, `＇`) between two word characters
//!    join the word and are dropped (`Trump’s` = `Trump's` = `trumps`);
//! 3. between two ASCII digits, `,` joins and is dropped (`1,000` = `1000`) and `.`
//!    joins and is kept (`3.5`);
//! 4. default-ignorable characters (soft hyphen, zero-width space, word joiner, byte order
//!    mark, bidirectional controls, variation selectors, …) are invisible: inside a word
//!    they join it and are dropped, as Unicode's NFKC_Casefold drops them (`Qua\u{AD}rterly`
//!    = `Quarterly`, `1\u{AD},000` = `1,000`), elsewhere they are dropped;
//! 5. every other non-alphanumeric character (quotes, dashes of every kind, punctuation,
//!    symbols, white space) separates tokens and is dropped.
//!
//! Scripts written without spaces (Han, Hiragana, Katakana, Thai, Lao, Khmer, Myanmar) are
//! tokenized one character at a time (with its combining marks), so word n-grams over them
//! are character n-grams: two copies of a Chinese article share their shingles without a
//! dictionary-based segmenter. The half-width (semi-)voiced sound marks `ﾞ` `ﾟ` count as
//! combining marks, as their NFKC forms are: `ｶﾞ` is one token, `ガ`.
//!
//! Characters are classified before normalization (it runs per token, off the hot path),
//! so NFKC(text) tokenizes as text does when NFKC maps letters and marks to letters and
//! marks (any width or composition: a property test); not when it makes letters of a
//! symbol (`℃` → `°C`, `½` → `1⁄2`) or a joiner of full-width punctuation (`１，０００`).
//!
//! The scanner has an ASCII fast path (the `scan` module) chosen at run time by CPU features; the
//! result is identical on every path (tested against the scalar path).

mod scan;

use unicode_normalization::UnicodeNormalization;
use xxhash_rust::xxh3::xxh3_64;

/// One token: where it is in the original text and what it normalizes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    /// Byte offset of the first byte of the token in the original text.
    pub start: u32,
    /// Byte offset one past the last byte of the token in the original text.
    pub end: u32,
    /// xxh3 hash of the normalized token.
    pub hash: u64,
}

/// Hash of a normalized token; every path that produces tokens goes through this.
#[inline]
pub fn hash_normalized(normalized: &[u8]) -> u64 {
    xxh3_64(normalized)
}

/// Largest text the tokenizer accepts: token offsets are `u32`.
pub const MAX_TEXT_BYTES: usize = u32::MAX as usize;

/// Tokenizes texts, reusing its buffers from one text to the next.
///
/// One per thread: it is cheap to create but not `Sync`.
#[derive(Debug, Default)]
pub struct Tokenizer {
    classified: scan::Classified,
    scratch: String,
}

impl Tokenizer {
    /// A tokenizer with empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tokenizes `text`, appending to `out` (which is not cleared).
    pub fn tokenize(&mut self, text: &str, out: &mut Vec<Token>) {
        self.for_each(text, |start, end, normalized| {
            out.push(Token {
                start: start as u32,
                end: end as u32,
                hash: hash_normalized(normalized.as_bytes()),
            });
        });
    }

    /// Calls `emit(start, end, normalized)` for every token of `text`, in order.
    ///
    /// Texts longer than [`MAX_TEXT_BYTES`] are tokenized up to that length; the input
    /// layer rejects such records before they get here.
    pub fn for_each<F>(&mut self, text: &str, mut emit: F)
    where
        F: FnMut(usize, usize, &str),
    {
        let text = &text[..floor_char_boundary(text, text.len().min(MAX_TEXT_BYTES))];
        let Self {
            classified: cls,
            scratch,
        } = self;
        cls.classify(text.as_bytes());
        let cls = &*cls;
        cls.for_each_run(|start, end, special| {
            if !special {
                // The common case: the lowered copy already is the normalized form.
                // SAFETY: `special` is false, so the run has no non-ASCII byte: it is UTF-8.
                let normalized = unsafe { std::str::from_utf8_unchecked(&cls.lower[start..end]) };
                emit(start, end, normalized);
            } else if scan::Classified::any_in(&cls.high, start, end) {
                // Non-ASCII characters: they may split the run or be separators.
                scan_chars(text, start, end, &cls.lower, scratch, &mut emit);
            } else {
                normalize_ascii_joined(&cls.lower[start..end], scratch);
                emit(start, end, scratch);
            }
        });
    }
}

/// The character-level scanner: tokenizes `text[from..to]` one character at a time.
///
/// It defines the tokenization: the fast path in [`Tokenizer::for_each`] gives the same
/// tokens (a property test checks it by running this on whole texts). `lower` is the
/// ASCII-lowercased copy of `text`. Context on both sides comes from the whole text.
fn scan_chars<F>(
    text: &str,
    from: usize,
    to: usize,
    lower: &[u8],
    scratch: &mut String,
    emit: &mut F,
) where
    F: FnMut(usize, usize, &str),
{
    let bytes = text.as_bytes();
    let mut i = from;
    while i < to {
        while i < to && bytes[i] < 0x80 && !bytes[i].is_ascii_alphanumeric() {
            i += 1;
        }
        if i >= to {
            break;
        }
        let start = i;
        if bytes[i] >= 0x80 {
            let c = decode_at(text, i);
            match classify(c) {
                Class::Word => {}
                Class::Solo => {
                    i += c.len_utf8();
                    while i < to && bytes[i] >= 0x80 {
                        let m = decode_at(text, i);
                        if classify(m) != Class::Mark {
                            break;
                        }
                        i += m.len_utf8();
                    }
                    normalize_general(&text[start..i], scratch);
                    if !scratch.is_empty() {
                        emit(start, i, scratch);
                    }
                    continue;
                }
                Class::Apostrophe | Class::Mark | Class::Separator => {
                    i += c.len_utf8();
                    continue;
                }
            }
        }
        // A token starts at `start` with a word character.
        let mut ascii_only = true;
        let mut has_joiner = false;
        while i < to {
            let b = bytes[i];
            if b.is_ascii_alphanumeric() {
                i += 1;
                continue;
            }
            if b < 0x80 {
                let joins = match b {
                    b'\'' => word_starts_after(text, i + 1, to) && prev_is_word(text, i),
                    b'.' | b',' => {
                        prev_visible(text, i).is_some_and(|c| c.is_ascii_digit())
                            && next_visible(text, i + 1, to).is_some_and(|c| c.is_ascii_digit())
                    }
                    _ => false,
                };
                if !joins {
                    break;
                }
                has_joiner = true;
                i += 1;
                continue;
            }
            let c = decode_at(text, i);
            match classify(c) {
                Class::Word | Class::Mark => {
                    ascii_only = false;
                    i += c.len_utf8();
                }
                Class::Apostrophe
                    if word_starts_after(text, i + c.len_utf8(), to) && prev_is_word(text, i) =>
                {
                    ascii_only = false;
                    has_joiner = true;
                    i += c.len_utf8();
                }
                _ => break,
            }
        }
        if ascii_only {
            normalize_ascii_joined(&lower[start..i], scratch);
            if !has_joiner {
                debug_assert_eq!(scratch.len(), i - start);
            }
        } else {
            normalize_general(&text[start..i], scratch);
        }
        if !scratch.is_empty() {
            emit(start, i, scratch);
        }
    }
}

/// Tokenizes `text` with a fresh [`Tokenizer`], appending to `out`.
pub fn tokenize(text: &str, out: &mut Vec<Token>) {
    Tokenizer::new().tokenize(text, out)
}

/// Which SIMD implementation the tokenizer uses on this CPU (`avx2`, `sse2`, `scalar`).
pub fn simd_level() -> &'static str {
    scan::simd_level()
}

/// Normalizes an ASCII token with joiners: drop `'` and `,`, keep the decimal `.`.
fn normalize_ascii_joined(lowered: &[u8], out: &mut String) {
    out.clear();
    out.extend(
        lowered
            .iter()
            .filter(|&&b| b != b'\'' && b != b',')
            .map(|&b| b as char),
    );
}

/// Normalizes any token: NFKC, case folding, then keeps only word characters and `.`.
///
/// The `.` can only be a decimal point here: the scanner admits it only between digits.
pub fn normalize_general(token: &str, out: &mut String) {
    use caseless::Caseless;
    let keep = |c: &char| {
        (c.is_alphanumeric() || *c == '.' || unicode_normalization::char::is_combining_mark(*c))
            && !is_default_ignorable(*c as u32)
    };
    let folded: String = token.nfkc().default_case_fold().collect();
    out.clear();
    // Case folding can leave a sequence that is not NFKC (rare): re-compose only then.
    if unicode_normalization::is_nfkc_quick(folded.chars())
        == unicode_normalization::IsNormalized::Yes
    {
        out.extend(folded.chars().filter(keep));
    } else {
        out.extend(folded.nfkc().filter(keep));
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// Letters and digits of scripts that separate words with spaces.
    Word,
    /// A character that is a token on its own (scripts written without spaces).
    Solo,
    /// Combining marks and zero-width joiners: continue a token, never start one.
    Mark,
    /// Apostrophes: join two word characters.
    Apostrophe,
    Separator,
}

fn classify(c: char) -> Class {
    let u = c as u32;
    // Invisible, so never a break: a site that hyphenates with `&shy;` publishes the same
    // words as one that does not.
    if is_default_ignorable(u) {
        return Class::Mark;
    }
    if is_solo(u) {
        // Combining marks inside these blocks (Thai vowel signs) stay with their base, and
        // so do the half-width (semi-)voiced sound marks, which NFKC makes combining marks:
        // `ｶﾞ` is one token, `ガ`, as its full-width form is.
        if unicode_normalization::char::is_combining_mark(c) || matches!(u, 0xFF9E | 0xFF9F) {
            return Class::Mark;
        }
        return if c.is_alphanumeric() {
            Class::Solo
        } else {
            Class::Separator
        };
    }
    if c.is_alphanumeric() {
        return Class::Word;
    }
    match u {
        0x2019 | 0x2018 | 0x02BC | 0xFF07 => Class::Apostrophe,
        _ if unicode_normalization::char::is_combining_mark(c) => Class::Mark,
        _ => Class::Separator,
    }
}

/// Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt, Unicode 16).
fn is_default_ignorable(u: u32) -> bool {
    matches!(u,
        0x00AD                // soft hyphen
        | 0x034F              // combining grapheme joiner
        | 0x061C              // Arabic letter mark
        | 0x115F..=0x1160     // Hangul fillers
        | 0x17B4..=0x17B5     // Khmer inherent vowels
        | 0x180B..=0x180F     // Mongolian variation selectors and vowel separator
        | 0x200B..=0x200F     // zero-width space, joiners, direction marks
        | 0x202A..=0x202E     // bidirectional embeddings and overrides
        | 0x2060..=0x206F     // word joiner, invisible operators, bidirectional isolates
        | 0x3164              // Hangul filler
        | 0xFE00..=0xFE0F     // variation selectors
        | 0xFEFF              // zero-width no-break space (byte order mark)
        | 0xFFA0              // half-width Hangul filler
        | 0xFFF0..=0xFFF8
        | 0x1BCA0..=0x1BCA3   // shorthand format controls
        | 0x1D173..=0x1D17A   // musical symbol format controls
        | 0xE0000..=0xE0FFF   // tags, variation selectors supplement
    )
}

/// Scripts written without spaces between words.
fn is_solo(u: u32) -> bool {
    is_unspaced_alphabet_code(u)
        || matches!(u,
        0x3040..=0x30FF       // Hiragana, Katakana
        | 0x31F0..=0x31FF     // Katakana phonetic extensions
        | 0x3400..=0x4DBF     // CJK extension A
        | 0x4E00..=0x9FFF     // CJK unified ideographs
        | 0xF900..=0xFAFF     // CJK compatibility ideographs
        | 0xFF66..=0xFF9F     // halfwidth Katakana
        | 0x20000..=0x3FFFF) // CJK extensions B and later
}

/// Whether `c` belongs to an alphabet written without spaces between words (Thai, Lao,
/// Myanmar, Khmer). Its tokens are letters, a few dozen that every text uses, unlike Han
/// characters: where a token must stand for a word (the story level's terms), runs of
/// them are taken as character n-grams instead (`story::features`).
pub fn is_unspaced_alphabet(c: char) -> bool {
    is_unspaced_alphabet_code(c as u32)
}

fn is_unspaced_alphabet_code(u: u32) -> bool {
    matches!(u,
        0x0E00..=0x0EFF       // Thai, Lao
        | 0x1000..=0x109F     // Myanmar
        | 0x1780..=0x17FF) // Khmer
}

/// The hashes of every one-letter token of the alphabets of [`is_unspaced_alphabet`]:
/// what the story level counted as terms before it took n-grams of their runs, and never
/// counts now (statistics holding them were counted by an older neardup).
pub fn unspaced_letter_hashes() -> impl Iterator<Item = u64> {
    let mut scratch = String::new();
    (0x0E00..=0x17FF)
        .filter(|&u| is_unspaced_alphabet_code(u))
        .filter_map(char::from_u32)
        .filter(|&c| classify(c) == Class::Solo)
        .filter_map(move |c| {
            normalize_general(c.encode_utf8(&mut [0; 4]), &mut scratch);
            (!scratch.is_empty()).then(|| hash_normalized(scratch.as_bytes()))
        })
}

#[inline]
fn decode_at(text: &str, i: usize) -> char {
    // `i` is always on a char boundary: the scanner advances by whole characters.
    text[i..].chars().next().unwrap_or('\u{FFFD}')
}

/// Whether the first visible character at or after byte `i` (and before `to`) is a word
/// character: invisible ones between a joiner and its word do not cut the word.
fn word_starts_after(text: &str, i: usize, to: usize) -> bool {
    next_visible(text, i, to).is_some_and(|c| {
        if c.is_ascii() {
            c.is_ascii_alphanumeric()
        } else {
            classify(c) == Class::Word
        }
    })
}

/// The first character at or after byte `i` and before `to` that is not default-ignorable.
fn next_visible(text: &str, i: usize, to: usize) -> Option<char> {
    text[i..to]
        .chars()
        .find(|&c| c.is_ascii() || !is_default_ignorable(c as u32))
}

/// The last character before byte `i` that is not default-ignorable.
fn prev_visible(text: &str, i: usize) -> Option<char> {
    text[..i]
        .chars()
        .rev()
        .find(|&c| c.is_ascii() || !is_default_ignorable(c as u32))
}

/// Whether the character ending at byte `i` is a word character or a mark.
fn prev_is_word(text: &str, i: usize) -> bool {
    match text[..i].chars().next_back() {
        Some(c) if c.is_ascii() => c.is_ascii_alphanumeric(),
        Some(c) => matches!(classify(c), Class::Word | Class::Mark),
        None => false,
    }
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The normalized form of every token of `text`, joined by single spaces.
///
/// This is the text that character n-grams are taken from.
pub fn normalized_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    Tokenizer::new().for_each(text, |_, _, norm| {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(norm);
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        Tokenizer::new().for_each(text, |_, _, n| out.push(n.to_string()));
        out
    }

    fn spans(text: &str) -> Vec<&str> {
        let mut toks = Vec::new();
        tokenize(text, &mut toks);
        toks.iter()
            .map(|t| &text[t.start as usize..t.end as usize])
            .collect()
    }

    #[test]
    fn table_of_edge_cases() {
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("   \n\t ", &[]),
            ("Hello, World!", &["hello", "world"]),
            ("Trump’s deal", &["trumps", "deal"]),
            ("Trump's deal", &["trumps", "deal"]),
            (
                "‘Coalition of the willing’ —",
                &["coalition", "of", "the", "willing"],
            ),
            ("Article 5-like", &["article", "5", "like"]),
            (
                "1,000 bags at 3.5 pct.",
                &["1000", "bags", "at", "3.5", "pct"],
            ),
            ("end. Next", &["end", "next"]),
            ("a''b", &["a", "b"]),
            ("'quoted'", &["quoted"]),
            ("STRASSE Straße", &["strasse", "strasse"]),
            ("ﬁle ＡＢＣ", &["file", "abc"]),
            ("Café café", &["café", "café"]),
            ("Cafe\u{301} x", &["café", "x"]),
            ("東京都 ok", &["東", "京", "都", "ok"]),
            ("ภาษาไทย", &["ภ", "า", "ษ", "า", "ไ", "ท", "ย"]),
            ("ｶﾞｷﾞﾊﾟｱ ﾞｳﾞ", &["ガ", "ギ", "パ", "ア", "ヴ"]),
            (
                "Qua\u{AD}rte\u{AD}rly re\u{200B}sults",
                &["quarterly", "results"],
            ),
            (
                "\u{FEFF}Zero\u{2060}width \u{200B} x\u{E0001}",
                &["zerowidth", "x"],
            ),
            ("naïve\u{202E}ly \u{115F}한\u{3164}국", &["naïvely", "한국"]),
            ("中\u{200B}国 ภา\u{AD}ษา", &["中", "国", "ภ", "า", "ษ", "า"]),
            (
                "1\u{AD},000 3.\u{200B}5 don\u{AD}'\u{200B}t é,1",
                &["1000", "3.5", "dont", "é", "1"],
            ),
            ("カ\u{3099}ガ", &["ガ", "ガ"]),
            ("abc漢字def", &["abc", "漢", "字", "def"]),
            ("under_score", &["under", "score"]),
            ("Ωmega ΣΊΣΥΦΟΣ", &["ωmega", "σίσυφοσ"]),
        ];
        for (text, expected) in cases {
            assert_eq!(&words(text), expected, "text: {text:?}");
        }
    }

    #[test]
    fn offsets_slice_the_original_text() {
        let text = "He said, “We welcome President Trump’s willingness” — Ürsula’s 1,000.";
        assert_eq!(
            spans(text),
            [
                "He",
                "said",
                "We",
                "welcome",
                "President",
                "Trump’s",
                "willingness",
                "Ürsula’s",
                "1,000"
            ]
        );
    }

    #[test]
    fn typographic_and_straight_forms_hash_equally() {
        let a = "We welcome President Trump’s willingness — ‘Coalition’";
        let b = "We welcome President Trump's willingness - 'Coalition'";
        let (mut ta, mut tb) = (Vec::new(), Vec::new());
        tokenize(a, &mut ta);
        tokenize(b, &mut tb);
        let ha: Vec<u64> = ta.iter().map(|t| t.hash).collect();
        let hb: Vec<u64> = tb.iter().map(|t| t.hash).collect();
        assert_eq!(ha, hb);
    }

    /// The reference: the character-level scanner over the whole text.
    fn reference_tokens(text: &str) -> Vec<(usize, usize, String)> {
        let lower = text.as_bytes().to_ascii_lowercase();
        let mut out = Vec::new();
        let mut scratch = String::new();
        scan_chars(
            text,
            0,
            text.len(),
            &lower,
            &mut scratch,
            &mut |s, e, n: &str| out.push((s, e, n.to_string())),
        );
        out
    }

    fn fast_tokens(text: &str) -> Vec<(usize, usize, String)> {
        let mut out = Vec::new();
        Tokenizer::new().for_each(text, |s, e, n| out.push((s, e, n.to_string())));
        out
    }

    proptest::proptest! {
        #[test]
        fn fast_path_matches_the_character_scanner(
            pieces in proptest::collection::vec(proptest::sample::select(vec![
                "a", "Z", "q", "7", "0", " ", "  ", "\n", "'", ".", ",", "-", "_", "é", "É", "’", "‘",
                "漢", "字", "ภ", "\u{0E34}", "ß", "\u{301}", "—", "“", "”", "ﬁ", "Ｗ", "1,0", "3.5", "don't",
                "\u{200D}", "Ω", "ʼ", "x".repeat(70).leak(), "ｶ", "ﾞ", "ﾟ",
                "\u{AD}", "\u{200B}", "\u{FEFF}", "\u{2060}", "\u{3164}",
            ]), 0..120)
        ) {
            let text: String = pieces.concat();
            proptest::prop_assert_eq!(fast_tokens(&text), reference_tokens(&text), "text: {:?}", text);
        }
    }

    proptest::proptest! {
        /// Invisible characters inside or between words change no word, beside a digit
        /// separator or an apostrophe too.
        #[test]
        fn default_ignorables_change_no_word(
            words_in in proptest::collection::vec(
                "[a-zA-Zéß0-9漢ภ]{1,9}|[0-9]{1,3}[,.][0-9]{1,3}|[a-zé]{1,4}['’][a-z]{1,2}", 1..12),
            inserts in proptest::collection::vec((0usize..200, proptest::sample::select(vec![
                '\u{AD}', '\u{200B}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{202E}', '\u{FE0F}',
            ])), 0..20),
        ) {
            let clean = words_in.join(" ");
            let mut chars: Vec<char> = clean.chars().collect();
            for (at, c) in inserts {
                chars.insert(at % (chars.len() + 1), c);
            }
            let marked: String = chars.into_iter().collect();
            proptest::prop_assert_eq!(words(&clean), words(&marked), "text: {:?}", marked);
        }
    }

    proptest::proptest! {
        /// NFKC before tokenizing changes nothing, for texts of letters, marks and
        /// spaces in any width or composition (kana half- or full-width, voiced marks
        /// spacing, combining or composed, NFD Hangul, full-width Latin). Not for every
        /// text: a character that NFKC turns from a symbol into letters (`℃`, `™`) or
        /// one whose NFKC form joins differently (`１．５`, `½`) tokenizes otherwise.
        #[test]
        fn nfkc_form_tokenizes_identically(
            pieces in proptest::collection::vec(proptest::sample::select(vec![
                "ｶ", "ﾞ", "ﾟ", "ﾊ", "ｱ", "ｳ", "ｯ", "ｰ", "ガ", "カ", "\u{3099}", "\u{309A}", "\u{309B}",
                "は", "ば", "漢", "Ａ", "ｚ", "a", "Z", "é", "e", "\u{301}", "한", "\u{1112}\u{1161}\u{11AB}",
                "ﬁ", "ß", "Ω", "ภ", "\u{0E34}", "7", " ", "\n", "-", "'", "＇", "’",
            ]), 0..60)
        ) {
            use unicode_normalization::UnicodeNormalization;
            let text: String = pieces.concat();
            let nfkc: String = text.nfkc().collect();
            proptest::prop_assert_eq!(words(&text), words(&nfkc), "text: {:?}", text);
        }
    }

    #[test]
    fn normalized_text_joins_tokens() {
        assert_eq!(normalized_text("  A-b,  C.\n"), "a b c");
    }
}
