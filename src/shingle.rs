//! Shingles: the hashed word or character n-grams that stand for a text.
//!
//! A word shingle's hash is the xxh3 hash of its n token hashes (so each token is
//! normalized and hashed once, however many shingles it is in). A character shingle is
//! n consecutive characters of the normalized text: the normalized tokens, joined by one
//! space where the original had anything between them (so Chinese stays unspaced).
//! A text shorter than n yields one shingle of all it has; a text without tokens yields
//! none.

use std::fmt;
use std::str::FromStr;

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

use crate::text::{Token, Tokenizer};

/// What a shingle is: `words:N` (word n-grams) or `chars:N` (character n-grams).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShingleSpec {
    /// N consecutive tokens.
    Words(usize),
    /// N consecutive characters of the normalized text.
    Chars(usize),
}

impl ShingleSpec {
    /// The n of the n-gram.
    pub fn n(self) -> usize {
        match self {
            ShingleSpec::Words(n) | ShingleSpec::Chars(n) => n,
        }
    }
}

impl Default for ShingleSpec {
    fn default() -> Self {
        ShingleSpec::Words(5)
    }
}

impl fmt::Display for ShingleSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShingleSpec::Words(n) => write!(f, "words:{n}"),
            ShingleSpec::Chars(n) => write!(f, "chars:{n}"),
        }
    }
}

/// Why a shingle spec did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid shingle spec {spec:?}: expected words:N or chars:N with N from 1 to 64")]
pub struct ParseShingleSpecError {
    spec: String,
}

impl FromStr for ShingleSpec {
    type Err = ParseShingleSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseShingleSpecError {
            spec: s.to_string(),
        };
        let (kind, n) = s.split_once(':').ok_or_else(err)?;
        let n: usize = n.trim().parse().map_err(|_| err())?;
        if !(1..=64).contains(&n) {
            return Err(err());
        }
        match kind.trim() {
            "words" | "word" | "w" => Ok(ShingleSpec::Words(n)),
            "chars" | "char" | "c" => Ok(ShingleSpec::Chars(n)),
            _ => Err(err()),
        }
    }
}

/// Turns texts into shingle hashes, reusing its buffers (one per thread).
#[derive(Debug)]
pub struct Shingler {
    spec: ShingleSpec,
    tokenizer: Tokenizer,
    tokens: Vec<Token>,
    token_hashes: Vec<u64>,
    normalized: String,
    char_starts: Vec<usize>,
}

impl Shingler {
    /// A shingler for `spec`.
    pub fn new(spec: ShingleSpec) -> Self {
        Shingler {
            spec,
            tokenizer: Tokenizer::new(),
            tokens: Vec::new(),
            token_hashes: Vec::new(),
            normalized: String::new(),
            char_starts: Vec::new(),
        }
    }

    /// The spec this shingler uses.
    pub fn spec(&self) -> ShingleSpec {
        self.spec
    }

    /// Replaces `out` with the shingle hashes of `text`, in text order (repeats included).
    ///
    /// Returns the number of tokens in the text.
    pub fn shingle(&mut self, text: &str, out: &mut Vec<u64>) -> usize {
        out.clear();
        match self.spec {
            ShingleSpec::Words(n) => {
                self.tokens.clear();
                self.tokenizer.tokenize(text, &mut self.tokens);
                self.token_hashes.clear();
                self.token_hashes.extend(self.tokens.iter().map(|t| t.hash));
                word_shingles(&self.token_hashes, n, out);
                self.tokens.len()
            }
            ShingleSpec::Chars(n) => {
                let normalized = &mut self.normalized;
                normalized.clear();
                let mut count = 0;
                let mut prev_end = 0;
                self.tokenizer.for_each(text, |start, end, norm| {
                    // Tokens written without a gap (Chinese characters) stay joined.
                    if !normalized.is_empty() && start > prev_end {
                        normalized.push(' ');
                    }
                    normalized.push_str(norm);
                    prev_end = end;
                    count += 1;
                });
                char_shingles(&self.normalized, n, &mut self.char_starts, out);
                count
            }
        }
    }

    /// The tokens of the last text given to [`Shingler::shingle`] with a `words` spec.
    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }
}

/// Hash of one word n-gram given its token hashes.
#[inline]
pub fn word_shingle_hash(token_hashes: &[u64]) -> u64 {
    xxh3_64(bytemuck::cast_slice(token_hashes))
}

/// Appends the word n-gram hashes of a token-hash sequence to `out`.
pub fn word_shingles(token_hashes: &[u64], n: usize, out: &mut Vec<u64>) {
    if token_hashes.is_empty() {
        return;
    }
    if token_hashes.len() <= n {
        out.push(word_shingle_hash(token_hashes));
        return;
    }
    out.extend(token_hashes.windows(n).map(word_shingle_hash));
}

/// Seed for character shingles, so that `chars:5` and a 5-byte word never collide by design.
const CHAR_SEED: u64 = 0x6368_6172_7331;

/// Appends the character n-gram hashes of `normalized` to `out`.
pub fn char_shingles(normalized: &str, n: usize, starts: &mut Vec<usize>, out: &mut Vec<u64>) {
    if normalized.is_empty() {
        return;
    }
    starts.clear();
    starts.extend(normalized.char_indices().map(|(i, _)| i));
    starts.push(normalized.len());
    let chars = starts.len() - 1;
    if chars <= n {
        out.push(xxh3_64_with_seed(normalized.as_bytes(), CHAR_SEED));
        return;
    }
    let bytes = normalized.as_bytes();
    out.extend(
        (0..=chars - n).map(|i| xxh3_64_with_seed(&bytes[starts[i]..starts[i + n]], CHAR_SEED)),
    );
}

/// Sorts and deduplicates shingle hashes into a set.
pub fn into_set(hashes: &mut Vec<u64>) {
    hashes.sort_unstable();
    hashes.dedup();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_of(spec: ShingleSpec, text: &str) -> Vec<u64> {
        let mut out = Vec::new();
        Shingler::new(spec).shingle(text, &mut out);
        into_set(&mut out);
        out
    }

    #[test]
    fn parses_specs() {
        assert_eq!("words:5".parse(), Ok(ShingleSpec::Words(5)));
        assert_eq!("chars:7".parse(), Ok(ShingleSpec::Chars(7)));
        for bad in ["words", "words:0", "words:x", "bytes:3", "chars:65", ""] {
            assert!(bad.parse::<ShingleSpec>().is_err(), "{bad}");
        }
        assert_eq!(ShingleSpec::Words(3).to_string(), "words:3");
    }

    #[test]
    fn counts_word_ngrams() {
        let mut out = Vec::new();
        let mut s = Shingler::new(ShingleSpec::Words(3));
        assert_eq!(s.shingle("a b c d e", &mut out), 5);
        assert_eq!(out.len(), 3);
        s.shingle("a b", &mut out);
        assert_eq!(out.len(), 1, "a text shorter than n is one shingle");
        s.shingle("  ,, ", &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn shingles_ignore_case_and_punctuation() {
        let spec = ShingleSpec::Words(2);
        assert_eq!(
            set_of(spec, "Hello, World! Foo"),
            set_of(spec, "hello world foo")
        );
        let spec = ShingleSpec::Chars(4);
        assert_eq!(set_of(spec, "Hello, World!"), set_of(spec, "hello   world"));
    }

    #[test]
    fn char_shingles_of_cjk_text() {
        let spec = ShingleSpec::Chars(3);
        let a = set_of(spec, "东京是日本的首都");
        assert_eq!(a.len(), 6, "8 characters without spaces: 6 trigrams");
        let b = set_of(spec, "东京是日本的首都。");
        assert_eq!(a, b);
    }

    #[test]
    fn word_and_char_shingles_do_not_collide_by_construction() {
        let w = set_of(ShingleSpec::Words(1), "abcde");
        let c = set_of(ShingleSpec::Chars(5), "abcde");
        assert_ne!(w, c);
    }
}
