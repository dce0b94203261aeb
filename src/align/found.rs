//! The passages found for every pair, kept between aligning and splitting off boilerplate:
//! encoded as words in a [`SetStore`], so in memory up to the memory budget and past it in
//! an unlinked temporary file, like the shingle sets.

use std::io;
use std::path::PathBuf;

use crate::corpus::SetStore;

use super::Side;
use super::aligner::{Op, TokenPassage};
use super::boilerplate::{Window, Windows};

/// A passage found by the aligner, before boilerplate is split off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Found {
    pub tokens: TokenPassage,
    pub a: Side,
    pub b: Side,
    /// The pipeline's shingles inside the passage (when boilerplate can be counted).
    pub windows: Windows,
    /// With windows: byte offsets `(start, end with terminators)` of every token of each
    /// side, to cut the passage without tokenizing again.
    pub a_offsets: Vec<(u32, u32)>,
    pub b_offsets: Vec<(u32, u32)>,
}

/// Every pair's found passages, one list of words per pair, in pair order.
///
/// A pair's list: the number of passages, then for each a header of nine words (token
/// ranges, edits and path length, both sides, the windows' kind and length, the offsets'
/// lengths), its path, its windows (a word shingle's tokens; a character shingle's hash
/// and token span) and its offsets, two `u32` to a word.
#[derive(Debug)]
pub(crate) struct FoundStore {
    store: SetStore,
    words: Vec<u64>,
}

const HEADER: usize = 9;

fn pack(lo: u32, hi: u32) -> u64 {
    u64::from(lo) | u64::from(hi) << 32
}

fn unpack(w: u64) -> (u32, u32) {
    (w as u32, (w >> 32) as u32)
}

fn op_code(op: Op) -> u32 {
    match op {
        Op::Match => 0,
        Op::Substitute => 1,
        Op::Insert => 2,
        Op::Delete => 3,
    }
}

fn op_of(code: u32) -> Op {
    match code {
        0 => Op::Match,
        1 => Op::Substitute,
        2 => Op::Insert,
        _ => Op::Delete,
    }
}

impl FoundStore {
    /// A store keeping up to `budget` bytes in memory.
    pub fn new(budget: u64, temp_dir: Option<PathBuf>) -> Self {
        FoundStore {
            store: SetStore::new(budget, temp_dir),
            words: Vec::new(),
        }
    }

    /// Appends the next pair's passages.
    pub fn push(&mut self, found: &[Found]) -> io::Result<()> {
        let w = &mut self.words;
        w.clear();
        w.push(found.len() as u64);
        for f in found {
            let t = &f.tokens;
            let (kind, len) = match &f.windows {
                Windows::Words { n, tokens } => ((*n as u32) << 1, tokens.len()),
                Windows::Chars(c) => (1, c.len()),
            };
            w.extend([
                pack(t.a.start as u32, t.a.end as u32),
                pack(t.b.start as u32, t.b.end as u32),
                pack(t.edits, t.path.len() as u32),
                pack(f.a.start, f.a.end),
                pack(f.a.first_token, f.a.words),
                pack(f.b.start, f.b.end),
                pack(f.b.first_token, f.b.words),
                pack(kind, len as u32),
                pack(f.a_offsets.len() as u32, f.b_offsets.len() as u32),
            ]);
            w.extend(t.path.iter().map(|&(op, n)| pack(op_code(op), n)));
            match &f.windows {
                Windows::Words { tokens, .. } => w.extend_from_slice(tokens),
                Windows::Chars(c) => {
                    for x in c {
                        w.extend([x.hash, pack(x.first, x.last)]);
                    }
                }
            }
            w.extend(f.a_offsets.iter().map(|&(s, e)| pack(s, e)));
            w.extend(f.b_offsets.iter().map(|&(s, e)| pack(s, e)));
        }
        self.store.push(&self.words)
    }

    /// Number of pairs held.
    pub fn len(&self) -> usize {
        self.store.count()
    }

    /// Bytes held in memory and spilled.
    #[cfg(test)]
    pub fn bytes(&self) -> (u64, u64) {
        self.store.bytes()
    }

    /// The passages of pair `pair`; `buf` holds them when spilled.
    pub fn get(&self, pair: usize, buf: &mut Vec<u64>) -> io::Result<Vec<Found>> {
        let words = self.store.get(pair as u32, buf)?;
        let mut out = Vec::with_capacity(words[0] as usize);
        let mut at = 1;
        for _ in 0..words[0] {
            let h = &words[at..at + HEADER];
            at += HEADER;
            let range = |w: u64| {
                let (s, e) = unpack(w);
                s as usize..e as usize
            };
            let (edits, path_len) = unpack(h[2]);
            let side = |x: u64, y: u64| {
                let ((start, end), (first_token, words)) = (unpack(x), unpack(y));
                Side {
                    start,
                    end,
                    first_token,
                    words,
                }
            };
            let path = words[at..at + path_len as usize]
                .iter()
                .map(|&w| {
                    let (op, n) = unpack(w);
                    (op_of(op), n)
                })
                .collect();
            at += path_len as usize;
            let windows = decode_windows(h[7], &words[at..], &mut at);
            let (la, lb) = unpack(h[8]);
            let offsets = |at: &mut usize, n: u32| -> Vec<(u32, u32)> {
                let o = words[*at..*at + n as usize].iter().map(|&w| unpack(w));
                *at += n as usize;
                o.collect()
            };
            let a_offsets = offsets(&mut at, la);
            let b_offsets = offsets(&mut at, lb);
            out.push(Found {
                tokens: TokenPassage {
                    a: range(h[0]),
                    b: range(h[1]),
                    edits,
                    path,
                },
                a: side(h[3], h[4]),
                b: side(h[5], h[6]),
                windows,
                a_offsets,
                b_offsets,
            });
        }
        Ok(out)
    }

    /// Calls `f` with the windows of every passage of every pair, in pair order.
    pub fn each_windows(&self, f: &mut dyn FnMut(&Windows)) -> io::Result<()> {
        let mut buf = Vec::new();
        for pair in 0..self.len() {
            let words = self.store.get(pair as u32, &mut buf)?;
            let mut at = 1;
            for _ in 0..words[0] {
                let h = &words[at..at + HEADER];
                at += HEADER + unpack(h[2]).1 as usize;
                let windows = decode_windows(h[7], &words[at..], &mut at);
                let (la, lb) = unpack(h[8]);
                at += la as usize + lb as usize;
                f(&windows);
            }
        }
        Ok(())
    }
}

/// The windows described by header word `head`, from `words`; advances `at` past them.
fn decode_windows(head: u64, words: &[u64], at: &mut usize) -> Windows {
    let (kind, len) = unpack(head);
    let len = len as usize;
    if kind & 1 == 0 {
        *at += len;
        Windows::Words {
            n: (kind >> 1) as usize,
            tokens: words[..len].to_vec(),
        }
    } else {
        *at += 2 * len;
        Windows::Chars(
            words[..2 * len]
                .chunks_exact(2)
                .map(|x| {
                    let (first, last) = unpack(x[1]);
                    Window {
                        hash: x[0],
                        first,
                        last,
                    }
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(seed: u32, windows: Windows, offsets: usize) -> Found {
        Found {
            tokens: TokenPassage {
                a: seed as usize..seed as usize + 9,
                b: 3..12 + seed as usize,
                edits: seed % 4,
                path: vec![
                    (Op::Match, 4),
                    (Op::Insert, seed),
                    (Op::Delete, 1),
                    (Op::Substitute, 2),
                ],
            },
            a: Side {
                start: seed * 10,
                end: seed * 10 + 70,
                first_token: seed,
                words: 9,
            },
            b: Side {
                start: 5,
                end: 90 + seed,
                first_token: 3,
                words: 9 + seed,
            },
            windows,
            a_offsets: (0..offsets as u32).map(|i| (i * 7, i * 7 + 5)).collect(),
            b_offsets: (0..offsets as u32)
                .map(|i| (i * 8 + seed, i * 8 + 6))
                .collect(),
        }
    }

    #[test]
    fn passages_come_back_as_they_went_in_from_memory_or_disk() {
        let pairs: Vec<Vec<Found>> = (0..60u32)
            .map(|p| {
                (0..p % 4)
                    .map(|k| {
                        let windows = match (p + k) % 3 {
                            0 => Windows::none(),
                            1 => Windows::Words {
                                n: 5,
                                tokens: (0..9).map(|t| u64::from(p * 100 + t) << 40 | 7).collect(),
                            },
                            _ => Windows::Chars(
                                (0..6)
                                    .map(|t| Window {
                                        hash: u64::MAX - u64::from(t + p),
                                        first: t,
                                        last: t + 2,
                                    })
                                    .collect(),
                            ),
                        };
                        let offsets = if windows.len() == 0 { 0 } else { 9 };
                        found(p * 3 + k, windows, offsets)
                    })
                    .collect()
            })
            .collect();
        for budget in [1 << 20, 64] {
            let mut store = FoundStore::new(budget, None);
            for p in &pairs {
                store.push(p).unwrap();
            }
            assert_eq!(
                store.bytes().1 > 0,
                budget == 64,
                "spilled under the small budget"
            );
            let mut buf = Vec::new();
            for (i, p) in pairs.iter().enumerate() {
                assert_eq!(&store.get(i, &mut buf).unwrap(), p, "pair {i}");
            }
            let mut seen = Vec::new();
            store.each_windows(&mut |w| seen.push(w.clone())).unwrap();
            let expected: Vec<Windows> =
                pairs.iter().flatten().map(|f| f.windows.clone()).collect();
            assert_eq!(seen, expected);
        }
    }
}
