//! Block classification of text bytes, the SIMD part of tokenization.
//!
//! One pass over the text writes an ASCII-lowercased copy of it and bitmaps with one bit
//! per byte: ASCII letters/digits, digits, apostrophes, `.`/`,`, and bytes of non-ASCII
//! characters. A second, word-wide pass derives `joiner`, the bytes that may join a token
//! (an apostrophe between two word bytes, or `.`/`,` between two digits or non-ASCII
//! bytes: the character scanner decides the latter), and `token` (letter, digit, joiner
//! or non-ASCII byte). Every run of `token` bits is then either one ASCII token, hashed
//! straight out of the lowered copy, or a stretch with non-ASCII characters that the
//! character-level scanner splits.
//!
//! The implementation is chosen once at run time: AVX2 where the CPU has it, SSE2 on
//! every other x86-64, and a portable table-driven loop elsewhere. All three give
//! identical results (tested), so the release binary needs no `-C target-cpu`.

use std::sync::OnceLock;

/// Per-byte classification of a text, reused between documents to avoid allocation.
#[derive(Debug, Default)]
pub(crate) struct Classified {
    pub lower: Vec<u8>,
    pub token: Vec<u64>,
    pub high: Vec<u64>,
    pub joiner: Vec<u64>,
    /// `high | joiner`: a token touching one of these needs more than the lowered copy.
    pub special: Vec<u64>,
    alnum: Vec<u64>,
    digit: Vec<u64>,
    apostrophe: Vec<u64>,
    separator_dot: Vec<u64>,
}

type ClassifyFn = fn(&[u8], &mut Classified);

/// Which implementation runs on this CPU (for benchmarks and `--version` output).
pub fn simd_level() -> &'static str {
    selected().0
}

fn selected() -> &'static (&'static str, ClassifyFn) {
    static CHOICE: OnceLock<(&'static str, ClassifyFn)> = OnceLock::new();
    CHOICE.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") {
                return ("avx2", x86::classify_avx2_entry);
            }
            ("sse2", x86::classify_sse2)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            ("scalar", classify_scalar)
        }
    })
}

impl Classified {
    /// Classifies `bytes`, replacing the previous contents.
    pub fn classify(&mut self, bytes: &[u8]) {
        (selected().1)(bytes, self);
        self.derive_tokens();
    }

    fn reset(&mut self, len: usize) {
        self.lower.clear();
        self.lower.resize(len, 0);
        // One spare word so that "next byte" lookups never go out of bounds.
        let words = len.div_ceil(64) + 1;
        for bits in [
            &mut self.token,
            &mut self.high,
            &mut self.joiner,
            &mut self.special,
            &mut self.alnum,
            &mut self.digit,
            &mut self.apostrophe,
            &mut self.separator_dot,
        ] {
            bits.clear();
            bits.resize(words, 0);
        }
    }

    /// Joiners need both neighbours, which may sit in the adjacent words.
    fn derive_tokens(&mut self) {
        let words = self.token.len();
        let mut carry_wordish = 0u64;
        let mut carry_digit = 0u64;
        for w in 0..words {
            let wordish = self.alnum[w] | self.high[w];
            let next_wordish = if w + 1 < words {
                self.alnum[w + 1] | self.high[w + 1]
            } else {
                0
            };
            // A non-ASCII byte beside `.`/`,` may be an invisible character between it and a
            // digit: the run goes to the character scanner, which decides.
            let numeric = self.digit[w] | self.high[w];
            let next_numeric = if w + 1 < words {
                self.digit[w + 1] | self.high[w + 1]
            } else {
                0
            };
            // Bit i of `before` is byte i-1; bit i of `after` is byte i+1.
            let wordish_before = (wordish << 1) | carry_wordish;
            let wordish_after = (wordish >> 1) | (next_wordish << 63);
            let digit_before = (numeric << 1) | carry_digit;
            let digit_after = (numeric >> 1) | (next_numeric << 63);
            let joiner = (self.apostrophe[w] & wordish_before & wordish_after)
                | (self.separator_dot[w] & digit_before & digit_after);
            self.joiner[w] = joiner;
            self.special[w] = self.high[w] | joiner;
            self.token[w] = wordish | joiner;
            carry_wordish = wordish >> 63;
            carry_digit = numeric >> 63;
        }
    }

    /// Calls `on_run(start, end, special)` for every maximal run of token bytes, in order;
    /// `special` says whether the run has a non-ASCII byte or a joiner.
    #[inline]
    pub fn for_each_run(&self, mut on_run: impl FnMut(usize, usize, bool)) {
        let mut open: Option<(usize, bool)> = None;
        let mut carry = 0u64;
        for (w, (&t, &special)) in self.token.iter().zip(&self.special).enumerate() {
            let before = (t << 1) | carry;
            carry = t >> 63;
            let mut starts = t & !before;
            // Bit i of `ends`: byte i is the first byte after a run. The spare zero word
            // at the end guarantees every run an end.
            let mut ends = !t & before;
            if starts == 0 && ends == 0 {
                if let Some((_, ref mut has_special)) = open {
                    *has_special |= special != 0;
                }
                continue;
            }
            let base = w * 64;
            loop {
                if let Some((start, has_special)) = open {
                    if ends == 0 {
                        open = Some((start, has_special || special != 0));
                        break;
                    }
                    let end_bit = ends.trailing_zeros() as usize;
                    ends &= ends - 1;
                    let from_bit = start.saturating_sub(base);
                    // The run's bits in this word: [from_bit, end_bit).
                    let span = ((1u64 << end_bit) - 1) & !((1u64 << from_bit) - 1);
                    on_run(start, base + end_bit, has_special || special & span != 0);
                    open = None;
                }
                if starts == 0 {
                    break;
                }
                open = Some((base + starts.trailing_zeros() as usize, false));
                starts &= starts - 1;
            }
        }
    }

    /// First index `>= i` (and `< n`) of a token byte; `n` if there is none.
    #[cfg(test)]
    pub fn next_token_byte(&self, i: usize, n: usize) -> usize {
        next_set(|w| self.token[w], i, n)
    }

    /// First index `>= i` (and `< n`) of a byte that is not a token byte.
    #[cfg(test)]
    pub fn next_non_token_byte(&self, i: usize, n: usize) -> usize {
        next_set(|w| !self.token[w], i, n)
    }

    /// Whether any byte in `from..to` has its bit set in `bits`.
    #[inline]
    pub fn any_in(bits: &[u64], from: usize, to: usize) -> bool {
        let (mut w, last) = (from / 64, (to - 1) / 64);
        let mut word = bits[w] & (!0u64 << (from % 64));
        loop {
            if w == last {
                let keep = if to % 64 == 0 {
                    !0
                } else {
                    (1u64 << (to % 64)) - 1
                };
                return word & keep != 0;
            }
            if word != 0 {
                return true;
            }
            w += 1;
            word = bits[w];
        }
    }
}

#[cfg(test)]
fn next_set(word: impl Fn(usize) -> u64, i: usize, n: usize) -> usize {
    let mut w = i / 64;
    let mut bits = word(w) & (!0u64 << (i % 64));
    loop {
        if bits != 0 {
            return (w * 64 + bits.trailing_zeros() as usize).min(n);
        }
        w += 1;
        if w * 64 >= n {
            return n;
        }
        bits = word(w);
    }
}

const ALNUM: u8 = 1;
const UPPER: u8 = 2;
const DIGIT: u8 = 4;
const APOSTROPHE: u8 = 8;
const DOT_COMMA: u8 = 16;

static TABLE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = if c.is_ascii_digit() {
            ALNUM | DIGIT
        } else if c.is_ascii_lowercase() {
            ALNUM
        } else if c.is_ascii_uppercase() {
            ALNUM | UPPER
        } else if c == b'\'' {
            APOSTROPHE
        } else if c == b'.' || c == b',' {
            DOT_COMMA
        } else {
            0
        };
        b += 1;
    }
    t
};

/// Classifies `bytes[from..]` one byte at a time (the tail of the SIMD paths, and the
/// whole text on CPUs without them).
fn classify_tail(bytes: &[u8], from: usize, out: &mut Classified) {
    for (i, &b) in bytes.iter().enumerate().skip(from) {
        let class = TABLE[b as usize];
        let (w, bit) = (i / 64, i % 64);
        out.lower[i] = b | ((class & UPPER) << 4);
        out.alnum[w] |= u64::from(class & ALNUM) << bit;
        out.digit[w] |= u64::from((class & DIGIT) >> 2) << bit;
        out.apostrophe[w] |= u64::from((class & APOSTROPHE) >> 3) << bit;
        out.separator_dot[w] |= u64::from((class & DOT_COMMA) >> 4) << bit;
        out.high[w] |= u64::from(b >> 7) << bit;
    }
}

/// The portable implementation, also the reference the SIMD paths are tested against.
#[cfg(any(test, not(target_arch = "x86_64")))]
pub(crate) fn classify_scalar(bytes: &[u8], out: &mut Classified) {
    out.reset(bytes.len());
    classify_tail(bytes, 0, out);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Classified, classify_tail};
    use std::arch::x86_64::*;

    pub(super) fn classify_avx2_entry(bytes: &[u8], out: &mut Classified) {
        // SAFETY: selected only after `is_x86_feature_detected!("avx2")` returned true.
        unsafe { classify_avx2(bytes, out) }
    }

    // Closures inside a `#[target_feature]` function are not compiled with the feature
    // (nor inlined into it): the helpers are macros.
    // `lo <= v <= hi` as one unsigned compare: (v - lo) == min(v - lo, hi - lo). Bytes of
    // non-ASCII characters wrap past `hi - lo` and never match. (Written as the AND of two
    // signed compares, LLVM rebuilt one movemask bit by bit.) Closures inside a
    // `#[target_feature]` function are not compiled with the feature: this is a macro.
    macro_rules! in_range_256 {
        ($v:expr, $lo:expr, $hi:expr) => {{
            let d = _mm256_sub_epi8($v, _mm256_set1_epi8($lo as i8));
            _mm256_cmpeq_epi8(_mm256_min_epu8(d, _mm256_set1_epi8(($hi - $lo) as i8)), d)
        }};
    }

    #[target_feature(enable = "avx2")]
    unsafe fn classify_avx2(bytes: &[u8], out: &mut Classified) {
        out.reset(bytes.len());
        let n = bytes.len();
        // Each 32-byte half writes its own 32-bit mask into the little-endian u64 words:
        // combining two movemasks into one u64 made LLVM rebuild them bit by bit.
        let alnum: &mut [u32] = bytemuck::cast_slice_mut(&mut out.alnum);
        let high: &mut [u32] = bytemuck::cast_slice_mut(&mut out.high);
        let digits: &mut [u32] = bytemuck::cast_slice_mut(&mut out.digit);
        let apostrophes: &mut [u32] = bytemuck::cast_slice_mut(&mut out.apostrophe);
        let dots: &mut [u32] = bytemuck::cast_slice_mut(&mut out.separator_dot);
        let mut padded = [0u8; 32];
        for half in 0..n.div_ceil(32) {
            let at = half * 32;
            let v = if at + 32 <= n {
                // SAFETY: at + 32 <= n.
                unsafe { _mm256_loadu_si256(bytes.as_ptr().add(at) as *const __m256i) }
            } else {
                // The last partial chunk, zero-padded: zero bytes set no bit.
                padded[..n - at].copy_from_slice(&bytes[at..]);
                // SAFETY: `padded` is 32 bytes.
                unsafe { _mm256_loadu_si256(padded.as_ptr() as *const __m256i) }
            };
            let upper = in_range_256!(v, b'A', b'Z');
            let lower = in_range_256!(v, b'a', b'z');
            let digit = in_range_256!(v, b'0', b'9');
            let apostrophe = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'\'' as i8));
            let dot_comma = _mm256_or_si256(
                _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'.' as i8)),
                _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b',' as i8)),
            );
            let lowered = _mm256_or_si256(v, _mm256_and_si256(upper, _mm256_set1_epi8(0x20)));
            if at + 32 <= n {
                // SAFETY: at + 32 <= n = out.lower.len().
                unsafe {
                    _mm256_storeu_si256(out.lower.as_mut_ptr().add(at) as *mut __m256i, lowered)
                };
            } else {
                // SAFETY: `padded` is 32 bytes.
                unsafe { _mm256_storeu_si256(padded.as_mut_ptr() as *mut __m256i, lowered) };
                out.lower[at..].copy_from_slice(&padded[..n - at]);
            }
            alnum[half] =
                _mm256_movemask_epi8(_mm256_or_si256(_mm256_or_si256(upper, lower), digit)) as u32;
            high[half] = _mm256_movemask_epi8(v) as u32;
            digits[half] = _mm256_movemask_epi8(digit) as u32;
            apostrophes[half] = _mm256_movemask_epi8(apostrophe) as u32;
            dots[half] = _mm256_movemask_epi8(dot_comma) as u32;
        }
    }

    pub(super) fn classify_sse2(bytes: &[u8], out: &mut Classified) {
        out.reset(bytes.len());
        let n = bytes.len();
        let blocks = n / 64;
        // SAFETY: SSE2 is part of the x86-64 baseline. Same range trick as AVX2.
        let in_range = |v: __m128i, lo: u8, hi: u8| unsafe {
            let d = _mm_sub_epi8(v, _mm_set1_epi8(lo as i8));
            _mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8((hi - lo) as i8)), d)
        };
        for block in 0..blocks {
            let base = block * 64;
            let mut bits = [0u64; 5];
            for quarter in 0..4 {
                let at = base + quarter * 16;
                // SAFETY: at + 16 <= blocks * 64 <= n; SSE2 is baseline on x86-64.
                unsafe {
                    let mask = |m: __m128i| u64::from(_mm_movemask_epi8(m) as u16);
                    let v = _mm_loadu_si128(bytes.as_ptr().add(at) as *const __m128i);
                    let upper = in_range(v, b'A', b'Z');
                    let lower = in_range(v, b'a', b'z');
                    let digit = in_range(v, b'0', b'9');
                    let alnum = _mm_or_si128(_mm_or_si128(upper, lower), digit);
                    let apostrophe = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\'' as i8));
                    let dot_comma = _mm_or_si128(
                        _mm_cmpeq_epi8(v, _mm_set1_epi8(b'.' as i8)),
                        _mm_cmpeq_epi8(v, _mm_set1_epi8(b',' as i8)),
                    );
                    let lowered = _mm_or_si128(v, _mm_and_si128(upper, _mm_set1_epi8(0x20)));
                    _mm_storeu_si128(out.lower.as_mut_ptr().add(at) as *mut __m128i, lowered);
                    let shift = quarter * 16;
                    bits[0] |= mask(alnum) << shift;
                    bits[1] |= mask(v) << shift;
                    bits[2] |= mask(digit) << shift;
                    bits[3] |= mask(apostrophe) << shift;
                    bits[4] |= mask(dot_comma) << shift;
                }
            }
            out.alnum[block] = bits[0];
            out.high[block] = bits[1];
            out.digit[block] = bits[2];
            out.apostrophe[block] = bits[3];
            out.separator_dot[block] = bits[4];
        }
        classify_tail(bytes, blocks * 64, out);
    }

    #[cfg(test)]
    pub(super) fn available() -> Vec<(&'static str, super::ClassifyFn)> {
        let mut v: Vec<(&'static str, super::ClassifyFn)> = vec![("sse2", classify_sse2)];
        if std::is_x86_feature_detected!("avx2") {
            v.push(("avx2", classify_avx2_entry));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn implementations() -> Vec<(&'static str, ClassifyFn)> {
        #[cfg(target_arch = "x86_64")]
        {
            x86::available()
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            Vec::new()
        }
    }

    fn check_all_paths_agree(bytes: &[u8]) {
        let mut reference = Classified::default();
        classify_scalar(bytes, &mut reference);
        for (name, f) in implementations() {
            let mut got = Classified::default();
            f(bytes, &mut got);
            assert_eq!(got.lower, reference.lower, "{name} lower");
            assert_eq!(got.alnum, reference.alnum, "{name} alnum");
            assert_eq!(got.high, reference.high, "{name} high");
            assert_eq!(got.digit, reference.digit, "{name} digit");
            assert_eq!(got.apostrophe, reference.apostrophe, "{name} apostrophe");
            assert_eq!(
                got.separator_dot, reference.separator_dot,
                "{name} dot/comma"
            );
        }
    }

    #[test]
    fn simd_paths_match_scalar_on_edge_cases() {
        let all_bytes: Vec<u8> = (0..=255u8).collect();
        for text in [
            &b""[..],
            b"a",
            b"Hello, World! 123 @[`{",
            &all_bytes,
            &[b'Z'; 200],
            "Ünïcödé – “quotes” and ASCII".as_bytes(),
        ] {
            check_all_paths_agree(text);
        }
    }

    proptest! {
        #[test]
        fn simd_paths_match_scalar(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            check_all_paths_agree(&bytes);
        }
    }

    #[test]
    fn token_runs_and_joiners() {
        let text = b"  don't, 1,000.5 x'  'y a.b \xC3\xA9'z";
        let mut c = Classified::default();
        c.classify(text);
        let n = text.len();
        let runs: Vec<&[u8]> = {
            let mut out = Vec::new();
            let mut i = 0;
            loop {
                let s = c.next_token_byte(i, n);
                if s >= n {
                    break;
                }
                let e = c.next_non_token_byte(s, n);
                out.push(&text[s..e]);
                i = e;
            }
            out
        };
        let expected: Vec<&[u8]> =
            vec![b"don't", b"1,000.5", b"x", b"y", b"a", b"b", b"\xC3\xA9'z"];
        assert_eq!(runs, expected);
        assert!(Classified::any_in(&c.joiner, 2, 7));
        assert!(!Classified::any_in(&c.joiner, 17, 18));
        assert!(Classified::any_in(&c.high, 0, n));
        let long = [b'x'; 130];
        c.classify(&long);
        assert_eq!(c.next_non_token_byte(0, 130), 130);
        assert_eq!(c.next_token_byte(129, 130), 129);
        assert!(!Classified::any_in(&c.joiner, 0, 130));
        assert!(Classified::any_in(&c.token, 127, 130));
    }
}
