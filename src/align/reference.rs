//! Naive references for the aligner: quadratic, short, obviously right. For tests only.

use std::ops::Range;

/// Every maximal exact match of at least `min_len` tokens: a run of equal tokens on one
/// diagonal that can be extended neither left nor right, and that does not lie, in both
/// texts, within another one. Sorted by `(a.start, b.start)`.
///
/// A full `|a| × |b|` dynamic programme.
pub fn maximal_exact_matches(
    a: &[u64],
    b: &[u64],
    min_len: usize,
) -> Vec<(Range<usize>, Range<usize>)> {
    let mut out = Vec::new();
    let mut prev = vec![0usize; b.len() + 1];
    let mut cur = vec![0usize; b.len() + 1];
    for i in 0..a.len() {
        for j in 0..b.len() {
            cur[j + 1] = if a[i] == b[j] { prev[j] + 1 } else { 0 };
            let len = cur[j + 1];
            let ends_here = i + 1 == a.len() || j + 1 == b.len() || a[i + 1] != b[j + 1];
            if len > 0 && len >= min_len && ends_here {
                out.push((i + 1 - len..i + 1, j + 1 - len..j + 1));
            }
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    let contained = |(x, y): &(Range<usize>, Range<usize>)| {
        out.iter().any(|(ox, oy)| {
            (ox, oy) != (x, y)
                && ox.start <= x.start
                && x.end <= ox.end
                && oy.start <= y.start
                && y.end <= oy.end
        })
    };
    let mut kept: Vec<(Range<usize>, Range<usize>)> =
        out.iter().filter(|m| !contained(m)).cloned().collect();
    kept.sort_by_key(|(x, y)| (x.start, y.start));
    kept
}

/// Edit distance (substitutions, insertions, deletions) between two token sequences,
/// with the full quadratic table.
pub fn edit_distance(a: &[u64], b: &[u64]) -> usize {
    let mut table = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in table.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in table[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let substitute = table[i - 1][j - 1] + usize::from(a[i - 1] != b[j - 1]);
            table[i][j] = substitute.min(table[i - 1][j] + 1).min(table[i][j - 1] + 1);
        }
    }
    table[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::align::{Aligner, PassageSettings};
    use proptest::prelude::*;

    #[test]
    fn reference_table() {
        let a = [1, 2, 3, 4, 5, 9, 1, 2, 3];
        let b = [7, 1, 2, 3, 4, 5, 8, 1, 2, 3];
        assert_eq!(
            maximal_exact_matches(&a, &b, 2),
            vec![(0..5, 1..6), (0..3, 7..10), (6..9, 1..4), (6..9, 7..10)]
        );
        assert_eq!(maximal_exact_matches(&a, &b, 4), vec![(0..5, 1..6)]);
        assert_eq!(edit_distance(&[1, 2, 3], &[1, 3]), 1);
        assert_eq!(edit_distance(&[], &[1, 3]), 2);
        assert_eq!(edit_distance(&[1, 2, 3], &[3, 2, 1]), 2);
    }

    /// A random text over a vocabulary of `vocab` words, with copies of its own stretches
    /// planted into a second text, some edited.
    fn texts() -> impl Strategy<Value = (Vec<u64>, Vec<u64>)> {
        (
            proptest::collection::vec(0u64..60, 0..160),
            proptest::collection::vec(0u64..60, 0..160),
            proptest::collection::vec((0usize..160, 1usize..40, 0usize..160, 0u8..4), 0..5),
        )
            .prop_map(|(a, mut b, plants)| {
                for (from, len, at, edit) in plants {
                    if a.is_empty() {
                        break;
                    }
                    let from = from % a.len();
                    let mut piece = a[from..(from + len).min(a.len())].to_vec();
                    if edit == 1 && piece.len() > 3 {
                        let k = piece.len() / 2;
                        piece[k] = 1000;
                    }
                    if edit == 2 && piece.len() > 3 {
                        piece.remove(piece.len() / 3);
                    }
                    let at = at % (b.len() + 1);
                    b.splice(at..at, piece);
                }
                (a, b)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Without gaps and without a repeat cap, the aligner finds exactly the maximal
        /// exact matches.
        #[test]
        fn exact_mode_equals_the_reference((a, b) in texts(), min in 3usize..10) {
            let settings = PassageSettings {
                min_words: min,
                max_gap: 0,
                max_repeats: usize::MAX,
                ..PassageSettings::default()
            };
            let fast: Vec<(Range<usize>, Range<usize>)> = Aligner::new(settings)
                .align(&a, &b)
                .into_iter()
                .inspect(|p| assert_eq!(p.edits, 0))
                .map(|p| (p.a, p.b))
                .collect();
            prop_assert_eq!(fast, maximal_exact_matches(&a, &b, min));
        }

        /// With gaps, every maximal exact match lies inside a passage, and every passage's
        /// edit count is the true edit distance of its two sides.
        #[test]
        fn tolerant_mode_covers_the_reference((a, b) in texts(), min in 3usize..10) {
            let settings = PassageSettings {
                min_words: min,
                max_repeats: usize::MAX,
                ..PassageSettings::default()
            };
            let fast = Aligner::new(settings).align(&a, &b);
            for (x, y) in maximal_exact_matches(&a, &b, min) {
                prop_assert!(
                    fast.iter().any(|p| p.a.start <= x.start && x.end <= p.a.end
                        && p.b.start <= y.start && y.end <= p.b.end),
                    "{:?} {:?} not covered by {:?}", x, y, fast
                );
            }
            for p in &fast {
                prop_assert!(p.a.len() >= min && p.b.len() >= min);
                let truth = edit_distance(&a[p.a.clone()], &b[p.b.clone()]);
                prop_assert!(p.edits as usize >= truth);
                prop_assert_eq!(p.edits as usize, truth, "{:?}", p);
                prop_assert_eq!(p.edits == 0, a[p.a.clone()] == b[p.b.clone()]);
            }
        }
    }
}
