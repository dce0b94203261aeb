//! Block classification of text bytes, the SIMD part of tokenization.
//!
//! One pass over the text writes an ASCII-lowercased copy of it and two bitmaps, one bit
//! per byte: `alnum` (ASCII letter or digit) and `high` (a byte of a non-ASCII character).
//! The tokenizer then finds token boundaries with bit scans instead of byte loops, and
//! hashes ASCII tokens straight out of the lowered copy.
//!
//! The implementation is chosen once at run time: AVX2 where the CPU has it, SSE2 on
//! every other x86-64, and a portable table-driven loop elsewhere. All three give
//! identical results (tested), so the release binary needs no `-C target-cpu`.

use std::sync::OnceLock;

/// Per-byte classification of a text, reused between documents to avoid allocation.
#[derive(Debug, Default)]
pub(crate) struct Classified {
    pub lower: Vec<u8>,
    pub alnum: Vec<u64>,
    pub high: Vec<u64>,
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
        (selected().1)(bytes, self)
    }

    fn reset(&mut self, len: usize) {
        self.lower.clear();
        self.lower.resize(len, 0);
        let words = len.div_ceil(64) + 1;
        self.alnum.clear();
        self.alnum.resize(words, 0);
        self.high.clear();
        self.high.resize(words, 0);
    }

    /// First index `>= i` (and `< n`) whose byte is an ASCII letter/digit or non-ASCII;
    /// `n` if there is none.
    #[inline]
    pub fn next_word_byte(&self, i: usize, n: usize) -> usize {
        next_set(|w| self.alnum[w] | self.high[w], i, n)
    }

    /// First index `>= i` (and `< n`) whose byte is not an ASCII letter/digit.
    #[inline]
    pub fn next_non_alnum(&self, i: usize, n: usize) -> usize {
        next_set(|w| !self.alnum[w], i, n)
    }
}

#[inline]
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

static TABLE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_digit() || c.is_ascii_lowercase() {
            t[b] = ALNUM;
        } else if c.is_ascii_uppercase() {
            t[b] = ALNUM | UPPER;
        }
        b += 1;
    }
    t
};

/// Classifies `bytes[from..]` one byte at a time (the tail of the SIMD paths, and the
/// whole text on CPUs without them).
fn classify_tail(bytes: &[u8], from: usize, out: &mut Classified) {
    for (i, &b) in bytes.iter().enumerate().skip(from) {
        let class = TABLE[b as usize];
        out.lower[i] = b | ((class & UPPER) << 4);
        out.alnum[i / 64] |= u64::from(class & ALNUM) << (i % 64);
        out.high[i / 64] |= u64::from(b >> 7) << (i % 64);
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

    #[target_feature(enable = "avx2")]
    unsafe fn classify_avx2(bytes: &[u8], out: &mut Classified) {
        out.reset(bytes.len());
        let n = bytes.len();
        let blocks = n / 64;
        let in_range = |v: __m256i, lo: i8, hi: i8| {
            // Signed compares: bytes >= 0x80 are negative and never in an ASCII range.
            _mm256_and_si256(
                _mm256_cmpgt_epi8(v, _mm256_set1_epi8(lo - 1)),
                _mm256_cmpgt_epi8(_mm256_set1_epi8(hi + 1), v),
            )
        };
        for block in 0..blocks {
            let base = block * 64;
            let mut alnum_bits = 0u64;
            let mut high_bits = 0u64;
            for half in 0..2 {
                let at = base + half * 32;
                // SAFETY: at + 32 <= blocks * 64 <= n for both the load and the store.
                let v = unsafe { _mm256_loadu_si256(bytes.as_ptr().add(at) as *const __m256i) };
                let upper = in_range(v, b'A' as i8, b'Z' as i8);
                let lower = in_range(v, b'a' as i8, b'z' as i8);
                let digit = in_range(v, b'0' as i8, b'9' as i8);
                let alnum = _mm256_or_si256(_mm256_or_si256(upper, lower), digit);
                let lowered = _mm256_or_si256(v, _mm256_and_si256(upper, _mm256_set1_epi8(0x20)));
                unsafe {
                    _mm256_storeu_si256(out.lower.as_mut_ptr().add(at) as *mut __m256i, lowered)
                };
                alnum_bits |= u64::from(_mm256_movemask_epi8(alnum) as u32) << (half * 32);
                high_bits |= u64::from(_mm256_movemask_epi8(v) as u32) << (half * 32);
            }
            out.alnum[block] = alnum_bits;
            out.high[block] = high_bits;
        }
        classify_tail(bytes, blocks * 64, out);
    }

    pub(super) fn classify_sse2(bytes: &[u8], out: &mut Classified) {
        out.reset(bytes.len());
        let n = bytes.len();
        let blocks = n / 64;
        // SAFETY: SSE2 is part of the x86-64 baseline.
        let in_range = |v: __m128i, lo: i8, hi: i8| unsafe {
            _mm_and_si128(
                _mm_cmpgt_epi8(v, _mm_set1_epi8(lo - 1)),
                _mm_cmpgt_epi8(_mm_set1_epi8(hi + 1), v),
            )
        };
        for block in 0..blocks {
            let base = block * 64;
            let mut alnum_bits = 0u64;
            let mut high_bits = 0u64;
            for quarter in 0..4 {
                let at = base + quarter * 16;
                // SAFETY: at + 16 <= blocks * 64 <= n; SSE2 is baseline on x86-64.
                unsafe {
                    let v = _mm_loadu_si128(bytes.as_ptr().add(at) as *const __m128i);
                    let upper = in_range(v, b'A' as i8, b'Z' as i8);
                    let lower = in_range(v, b'a' as i8, b'z' as i8);
                    let digit = in_range(v, b'0' as i8, b'9' as i8);
                    let alnum = _mm_or_si128(_mm_or_si128(upper, lower), digit);
                    let lowered = _mm_or_si128(v, _mm_and_si128(upper, _mm_set1_epi8(0x20)));
                    _mm_storeu_si128(out.lower.as_mut_ptr().add(at) as *mut __m128i, lowered);
                    alnum_bits |= u64::from(_mm_movemask_epi8(alnum) as u16) << (quarter * 16);
                    high_bits |= u64::from(_mm_movemask_epi8(v) as u16) << (quarter * 16);
                }
            }
            out.alnum[block] = alnum_bits;
            out.high[block] = high_bits;
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
    fn bit_scans_find_boundaries() {
        let text = b"  ab, \xC3\xA9 cd";
        let mut c = Classified::default();
        c.classify(text);
        let n = text.len();
        assert_eq!(c.next_word_byte(0, n), 2);
        assert_eq!(c.next_non_alnum(2, n), 4);
        assert_eq!(c.next_word_byte(4, n), 6);
        assert_eq!(c.next_non_alnum(9, n), n);
        assert_eq!(c.next_word_byte(n, n), n);
        let long = [b'x'; 130];
        c.classify(&long);
        assert_eq!(c.next_non_alnum(0, 130), 130);
        assert_eq!(c.next_word_byte(129, 130), 129);
    }
}
