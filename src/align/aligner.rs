//! The fast aligner, on token hashes: seeds → maximal exact matches → chains → passages.
//!
//! 1. **Seeds**: every `seed_words`-gram (a mix of its token hashes) that occurs in both
//!    texts, found through a hash table of each text's n-gram positions (built once per
//!    text). An n-gram that occurs more than `max_repeats` times in either text is not a
//!    seed (a table row, a repeated refrain); the extension below still crosses it when it
//!    lies inside a passage.
//! 2. **Maximal exact matches (MEMs)**: seeds on one diagonal (`i - j`) are extended token
//!    by token in both directions as long as the tokens are equal.
//! 3. **Chains**: a sparse dynamic programme over the MEMs, sorted by their end in `a`,
//!    links a MEM to an earlier one when both gaps (in `a` and in `b`) are at most
//!    `max_gap` tokens. A link costs 1.5 × the edit distance of the gap's tokens and gains
//!    the MEM's length, so a chain grows only while what it gains outweighs the edits it
//!    swallows. Chains are taken best score first; a chain ends where its score peaks,
//!    which trims weak links at both ends.
//! 4. **Ends**: each chain is extended over short exact runs (shorter than a seed) that
//!    follow an edit, under the same gain rule.
//! 5. **Merge**: passages that overlap in both texts on neighbouring diagonals become one;
//!    a passage that lies, in both texts, within another is dropped (a phrase repeated
//!    inside a passage, matched against its other occurrence).
//! 6. **Edits**: a banded edit alignment of the two token ranges, the band spanning the
//!    diagonals the passage uses plus `max_gap`, gives the edit count and the path.
//!
//! Every step is linear in the texts' lengths (up to sorting), except where a text
//! repeats itself; nothing is quadratic in the length of an article.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Range;

use super::PassageSettings;

/// Gain of a matched token and cost of an edit in the chaining score, both doubled to
/// stay in integers: a matched token gains 2, an edit costs 3 (1.5 matched tokens).
const MATCH_GAIN: i64 = 2;
const EDIT_COST: i64 = 3;
/// Predecessors a MEM considers in the chaining step (the nearest ones in `a`).
const MAX_LOOKBACK: usize = 64;
/// Longest exact run looked at when extending the end of a chain.
const MAX_TAIL_RUN: usize = 64;
/// Largest banded alignment (cells) before the band is narrowed.
const MAX_CELLS: usize = 1 << 24;

/// One step of an alignment path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// The tokens are equal.
    Match,
    /// One token replaced by another.
    Substitute,
    /// A token of `b` that `a` lacks.
    Insert,
    /// A token of `a` that `b` lacks.
    Delete,
}

impl Op {
    fn steps(self) -> (usize, usize) {
        match self {
            Op::Match | Op::Substitute => (1, 1),
            Op::Insert => (0, 1),
            Op::Delete => (1, 0),
        }
    }
}

/// A passage in token coordinates: `a` and `b` are token index ranges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenPassage {
    /// Tokens of the first text.
    pub a: Range<usize>,
    /// Tokens of the second text.
    pub b: Range<usize>,
    /// Word edits (substitutions, insertions, deletions) between the two ranges.
    pub edits: u32,
    /// The alignment path, run-length encoded, from `(a.start, b.start)` to `(a.end, b.end)`.
    pub path: Vec<(Op, u32)>,
}

impl TokenPassage {
    /// The token of `b` aligned with the boundary before token `i` of `a` (for splitting):
    /// insertions at that boundary go to the part after it.
    pub fn b_at(&self, i: usize) -> usize {
        let (mut x, mut y) = (self.a.start, self.b.start);
        for &(op, n) in &self.path {
            if x >= i {
                break;
            }
            let (da, db) = op.steps();
            let n = if da == 1 {
                (n as usize).min(i - x)
            } else {
                n as usize
            };
            x += da * n;
            y += db * n;
        }
        y
    }

    /// Edits on the path between the boundaries before `a` tokens `from` and `to`.
    pub fn edits_between(&self, from: usize, to: usize) -> u32 {
        let (mut x, mut edits) = (self.a.start, 0u32);
        for &(op, n) in &self.path {
            let (da, _) = op.steps();
            if da == 0 {
                // Insertions at boundary x belong to the part that starts there (or to the
                // last part, at the passage's end).
                if (from <= x && x < to) || (x == to && to == self.a.end) {
                    edits += n;
                }
                continue;
            }
            let lo = x.max(from);
            let hi = (x + n as usize).min(to);
            if op != Op::Match && hi > lo {
                edits += (hi - lo) as u32;
            }
            x += n as usize;
        }
        edits
    }
}

/// A maximal exact match: `len` equal tokens at `a` in the first text and `b` in the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mem {
    a: usize,
    b: usize,
    len: usize,
}

impl Mem {
    fn a_end(&self) -> usize {
        self.a + self.len
    }
    fn b_end(&self) -> usize {
        self.b + self.len
    }
    fn diagonal(&self) -> i64 {
        self.a as i64 - self.b as i64
    }
}

/// A passage under construction: its ranges and the diagonals it spans.
#[derive(Clone, Copy, Debug)]
struct Draft {
    a: (usize, usize),
    b: (usize, usize),
    diagonals: (i64, i64),
}

/// A text ready to be aligned: its token hashes and an index of its seed n-grams.
/// Prepare a text once to align it with many others.
#[derive(Clone, Debug, Default)]
pub struct Prepared {
    hashes: Vec<u64>,
    /// The hash of the n-gram starting at each position.
    grams: Vec<u64>,
    /// Open-addressing table: slot → 1 + the first position of an n-gram hash (0: empty).
    table: Vec<u32>,
    /// The next position with the same n-gram hash (`NONE` at the end).
    next: Vec<u32>,
    /// How many positions hold the n-gram of each position.
    count: Vec<u32>,
    /// The index (`grams`, `table`, `next`, `count`) is built for `hashes`, with this seed
    /// length (0: not built; identical texts never need it).
    indexed: usize,
}

impl Prepared {
    /// The token hashes.
    pub fn hashes(&self) -> &[u64] {
        &self.hashes
    }

    /// Builds the n-gram index of `hashes`, unless it is built.
    fn index(&mut self, k: usize) {
        if self.indexed == k {
            return;
        }
        self.indexed = k;
        self.grams.clear();
        if self.hashes.len() >= k {
            self.grams.extend(self.hashes.windows(k).map(gram_hash));
        }
        let n = self.grams.len();
        let slots = (2 * n).next_power_of_two().max(16);
        self.table.clear();
        self.table.resize(slots, 0);
        self.next.clear();
        self.next.resize(n, NONE);
        self.count.clear();
        self.count.resize(n, 0);
        // From the end, so that each chain lists its positions in increasing order.
        for i in (0..n).rev() {
            let slot = self.slot(self.grams[i]);
            if self.table[slot] != 0 {
                self.next[i] = self.table[slot] - 1;
            }
            self.table[slot] = i as u32 + 1;
        }
        for i in 0..n {
            if self.count[i] == 0 {
                let mut positions = 0;
                let mut p = i as u32;
                while p != NONE {
                    positions += 1;
                    p = self.next[p as usize];
                }
                let mut p = i as u32;
                while p != NONE {
                    self.count[p as usize] = positions;
                    p = self.next[p as usize];
                }
            }
        }
    }

    /// The slot of `hash`: where it is, or the empty slot where it goes.
    fn slot(&self, hash: u64) -> usize {
        let mask = self.table.len() - 1;
        let mut slot = (hash >> 17) as usize & mask;
        loop {
            let entry = self.table[slot];
            if entry == 0 || self.grams[entry as usize - 1] == hash {
                return slot;
            }
            slot = (slot + 1) & mask;
        }
    }

    /// The first position of the n-gram `hash`.
    fn first(&self, hash: u64) -> Option<usize> {
        if self.table.is_empty() {
            return None;
        }
        match self.table[self.slot(hash)] {
            0 => None,
            entry => Some(entry as usize - 1),
        }
    }
}

/// Finds the passages two token sequences share. Reuses its buffers: one per thread.
#[derive(Debug)]
pub struct Aligner {
    settings: PassageSettings,
    scratch_a: Prepared,
    scratch_b: Prepared,
    covered: HashMap<i64, usize, BuildHasherDefault<MixHasher>>,
    mems: Vec<Mem>,
    score: Vec<i64>,
    pred: Vec<u32>,
    order: Vec<u32>,
    used: Vec<bool>,
    chain: Vec<u32>,
    dp: Vec<u32>,
    trace: Vec<u8>,
}

const NONE: u32 = u32::MAX;

impl Aligner {
    /// An aligner with these settings.
    pub fn new(settings: PassageSettings) -> Self {
        Aligner {
            settings,
            scratch_a: Prepared::default(),
            scratch_b: Prepared::default(),
            covered: HashMap::default(),
            mems: Vec::new(),
            score: Vec::new(),
            pred: Vec::new(),
            order: Vec::new(),
            used: Vec::new(),
            chain: Vec::new(),
            dp: Vec::new(),
            trace: Vec::new(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &PassageSettings {
        &self.settings
    }

    /// Prepares a text given its token hashes, reusing `out`'s buffers.
    pub fn prepare(&self, hashes: impl IntoIterator<Item = u64>, out: &mut Prepared) {
        out.hashes.clear();
        out.hashes.extend(hashes);
        out.indexed = 0;
    }

    /// The passages `a` and `b` (token hashes) share, ordered by `(a.start, b.start)`.
    pub fn align(&mut self, a: &[u64], b: &[u64]) -> Vec<TokenPassage> {
        let (mut pa, mut pb) = (
            std::mem::take(&mut self.scratch_a),
            std::mem::take(&mut self.scratch_b),
        );
        self.prepare(a.iter().copied(), &mut pa);
        self.prepare(b.iter().copied(), &mut pb);
        let found = self.align_prepared(&mut pa, &mut pb);
        (self.scratch_a, self.scratch_b) = (pa, pb);
        found
    }

    /// [`Aligner::align`] on prepared texts.
    pub fn align_prepared(&mut self, a: &mut Prepared, b: &mut Prepared) -> Vec<TokenPassage> {
        if a.hashes == b.hashes {
            // Identical texts: one passage over all of both, and every other match lies
            // within it.
            let n = a.hashes.len();
            let whole = TokenPassage {
                a: 0..n,
                b: 0..n,
                edits: 0,
                path: vec![(Op::Match, n as u32)],
            };
            return if n >= self.settings.min_words.max(1) {
                vec![whole]
            } else {
                Vec::new()
            };
        }
        a.index(self.seed_len());
        b.index(self.seed_len());
        self.find_mems(a, b);
        let (a, b) = (&a.hashes[..], &b.hashes[..]);
        self.chain_mems(a, b);
        let drafts = self.extract_chains(a, b);
        let drafts = merge_overlapping(drafts, self.settings.max_gap as i64);
        let min = self.settings.min_words.max(1);
        let mut drafts: Vec<Draft> = drafts
            .into_iter()
            .filter(|d| d.a.1 - d.a.0 >= min && d.b.1 - d.b.0 >= min)
            .collect();
        drop_contained(&mut drafts);
        let mut out: Vec<TokenPassage> = drafts.into_iter().map(|d| self.finish(a, b, d)).collect();
        out.sort_by_key(|p| (p.a.start, p.b.start, p.a.end, p.b.end));
        out
    }

    /// Words in a seed: never more than a passage's minimum length.
    fn seed_len(&self) -> usize {
        self.settings
            .seed_words
            .clamp(1, self.settings.min_words.max(1))
    }

    /// Seeds, then maximal exact matches (into `self.mems`), in the order of `a`.
    fn find_mems(&mut self, pa: &Prepared, pb: &Prepared) {
        let k = self.seed_len();
        let (a, b) = (&pa.hashes[..], &pb.hashes[..]);
        let max = self.settings.max_repeats;
        self.mems.clear();
        // Per diagonal, where the last MEM found on it ends in `a`.
        let covered = &mut self.covered;
        covered.clear();
        for (i, &h) in pa.grams.iter().enumerate() {
            if pa.count[i] as usize > max {
                continue;
            }
            let Some(first) = pb.first(h) else { continue };
            if pb.count[first] as usize > max {
                continue;
            }
            let mut j = first as u32;
            while j != NONE {
                let ju = j as usize;
                j = pb.next[ju];
                let d = i as i64 - ju as i64;
                if covered.get(&d).is_some_and(|&end| i < end) {
                    continue;
                }
                // A 64-bit collision is unlikely, but a seed must be true.
                if a[i..i + k] != b[ju..ju + k] {
                    continue;
                }
                let (mut s, mut t) = (i, ju);
                while s > 0 && t > 0 && a[s - 1] == b[t - 1] {
                    s -= 1;
                    t -= 1;
                }
                let (mut e, mut f) = (i + k, ju + k);
                while e < a.len() && f < b.len() && a[e] == b[f] {
                    e += 1;
                    f += 1;
                }
                self.mems.push(Mem {
                    a: s,
                    b: t,
                    len: e - s,
                });
                covered.insert(d, e);
            }
        }
    }

    /// The chaining programme: `score[m]` and `pred[m]` for every MEM, sorted by end in `a`.
    fn chain_mems(&mut self, a: &[u64], b: &[u64]) {
        let g = self.settings.max_gap;
        let mems = &mut self.mems;
        mems.sort_unstable_by_key(|m| (m.a_end(), m.a, m.b));
        self.score.clear();
        self.pred.clear();
        for yi in 0..mems.len() {
            let y = mems[yi];
            let mut best = MATCH_GAIN * y.len as i64;
            let mut best_pred = NONE;
            let lowest_end = y.a.saturating_sub(g);
            let first = mems[..yi].partition_point(|m| m.a_end() < lowest_end);
            for xi in (first..yi).rev().take(MAX_LOOKBACK) {
                if let Some((gained, cost)) = link(&mems[xi], &y, a, b, g) {
                    let candidate =
                        self.score[xi] + MATCH_GAIN * gained as i64 - EDIT_COST * cost as i64;
                    if candidate > best {
                        best = candidate;
                        best_pred = xi as u32;
                    }
                }
            }
            self.score.push(best);
            self.pred.push(best_pred);
        }
    }

    /// Chains, best first, each cut where it meets an already taken MEM; then their ends
    /// are extended.
    fn extract_chains(&mut self, a: &[u64], b: &[u64]) -> Vec<Draft> {
        let n = self.mems.len();
        self.order.clear();
        self.order.extend(0..n as u32);
        let (mems, score) = (&self.mems, &self.score);
        self.order.sort_unstable_by(|&p, &q| {
            let (mp, mq) = (mems[p as usize], mems[q as usize]);
            score[q as usize]
                .cmp(&score[p as usize])
                .then(mp.a.cmp(&mq.a))
                .then(mp.b.cmp(&mq.b))
                .then(mp.len.cmp(&mq.len))
        });
        self.used.clear();
        self.used.resize(n, false);
        let mut drafts = Vec::new();
        for oi in 0..n {
            let end = self.order[oi];
            if self.used[end as usize] {
                continue;
            }
            self.chain.clear();
            let mut cur = end;
            loop {
                self.used[cur as usize] = true;
                self.chain.push(cur);
                let p = self.pred[cur as usize];
                if p == NONE || self.used[p as usize] {
                    break;
                }
                cur = p;
            }
            let first = self.mems[*self.chain.last().expect("a chain has a MEM") as usize];
            let last = self.mems[self.chain[0] as usize];
            let mut diagonals = (i64::MAX, i64::MIN);
            for &m in &self.chain {
                let d = self.mems[m as usize].diagonal();
                diagonals = (diagonals.0.min(d), diagonals.1.max(d));
            }
            let g = self.settings.max_gap;
            let seed = self.seed_len();
            let (a_end, b_end) = extend_forward(a, b, (last.a_end(), last.b_end()), g, seed);
            let (a_start, b_start) = extend_backward(a, b, (first.a, first.b), g, seed);
            for d in [a_start as i64 - b_start as i64, a_end as i64 - b_end as i64] {
                diagonals = (diagonals.0.min(d), diagonals.1.max(d));
            }
            drafts.push(Draft {
                a: (a_start, a_end),
                b: (b_start, b_end),
                diagonals,
            });
        }
        drafts
    }

    /// The banded edit alignment of a draft: its edit count and path.
    fn finish(&mut self, a: &[u64], b: &[u64], d: Draft) -> TokenPassage {
        let (x, y) = (&a[d.a.0..d.a.1], &b[d.b.0..d.b.1]);
        if x == y {
            // The common case, a verbatim copy: no alignment to compute.
            return TokenPassage {
                a: d.a.0..d.a.1,
                b: d.b.0..d.b.1,
                edits: 0,
                path: vec![(Op::Match, x.len() as u32)],
            };
        }
        let g = self.settings.max_gap as i64;
        let mut band = (d.diagonals.0 - g, d.diagonals.1 + g);
        if (band.1 - band.0 + 1) as usize * (x.len() + 1) > MAX_CELLS {
            // A huge passage drifting over many diagonals: a band around the straight
            // line between its corners still gives a valid path (its edits may be over
            // counted).
            let corners = (d.a.0 as i64 - d.b.0 as i64, d.a.1 as i64 - d.b.1 as i64);
            band = (corners.0.min(corners.1) - g, corners.0.max(corners.1) + g);
        }
        let (edits, path) = banded_alignment(
            x,
            y,
            d.a.0 as i64 - d.b.0 as i64,
            band,
            &mut self.dp,
            &mut self.trace,
        );
        TokenPassage {
            a: d.a.0..d.a.1,
            b: d.b.0..d.b.1,
            edits,
            path,
        }
    }
}

/// A multiplicative hasher for small integer keys (diagonals).
#[derive(Debug, Default)]
struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_i64(&mut self, x: i64) {
        self.write_u64(x as u64);
    }
}

/// The hash of an n-gram of token hashes. Token hashes are uniformly random already, so
/// a cheap mix does (a collision only costs a comparison: seeds are checked token by token).
fn gram_hash(tokens: &[u64]) -> u64 {
    tokens.iter().fold(0u64, |h, &t| {
        (h.rotate_left(23) ^ t).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    })
}

/// Whether MEM `y` can follow MEM `x` in a chain: the tokens `y` adds (after trimming what
/// overlaps `x`) and the edit distance of the gap between them.
fn link(x: &Mem, y: &Mem, a: &[u64], b: &[u64], max_gap: usize) -> Option<(usize, usize)> {
    if !(x.a < y.a && x.b < y.b && x.a_end() < y.a_end() && x.b_end() < y.b_end()) {
        return None;
    }
    let trim = x
        .a_end()
        .saturating_sub(y.a)
        .max(x.b_end().saturating_sub(y.b));
    if trim >= y.len {
        return None;
    }
    let (ya, yb) = (y.a + trim, y.b + trim);
    let (gap_a, gap_b) = (ya - x.a_end(), yb - x.b_end());
    if gap_a > max_gap || gap_b > max_gap {
        return None;
    }
    let cost = levenshtein(&a[x.a_end()..ya], &b[x.b_end()..yb]);
    Some((y.len - trim, cost))
}

/// Extends a passage ending at `(i, j)` over exact runs shorter than a seed after an edit,
/// while the run gains more than its edits cost. Returns the new end.
fn extend_forward(
    a: &[u64],
    b: &[u64],
    (mut i, mut j): (usize, usize),
    g: usize,
    seed: usize,
) -> (usize, usize) {
    loop {
        let mut best: Option<(i64, usize, usize, usize)> = None;
        for da in 0..=g {
            for db in 0..=g {
                let (ia, ib) = (i + da, j + db);
                if da + db == 0 || ia >= a.len() || ib >= b.len() {
                    continue;
                }
                let run = a[ia..]
                    .iter()
                    .zip(&b[ib..])
                    .take(MAX_TAIL_RUN)
                    .take_while(|(x, y)| x == y)
                    .count();
                if run == 0 || run >= seed {
                    // Runs of a seed's length or more are MEMs: the chaining decided on them.
                    continue;
                }
                let cost = levenshtein(&a[i..ia], &b[j..ib]);
                let gain = MATCH_GAIN * run as i64 - EDIT_COST * cost as i64;
                if gain > 0 && best.is_none_or(|(g0, ..)| gain > g0) {
                    best = Some((gain, ia, ib, run));
                }
            }
        }
        match best {
            Some((_, ia, ib, run)) => {
                i = ia + run;
                j = ib + run;
            }
            None => return (i, j),
        }
    }
}

/// The mirror of [`extend_forward`] for a passage starting at `(i, j)`.
fn extend_backward(
    a: &[u64],
    b: &[u64],
    (mut i, mut j): (usize, usize),
    g: usize,
    seed: usize,
) -> (usize, usize) {
    loop {
        let mut best: Option<(i64, usize, usize, usize)> = None;
        for da in 0..=g {
            for db in 0..=g {
                if da + db == 0 || da >= i || db >= j {
                    continue;
                }
                // The run ends just before (i - da, j - db).
                let (ia, ib) = (i - da, j - db);
                let run = a[..ia]
                    .iter()
                    .rev()
                    .zip(b[..ib].iter().rev())
                    .take(MAX_TAIL_RUN)
                    .take_while(|(x, y)| x == y)
                    .count();
                if run == 0 || run >= seed {
                    // Runs of a seed's length or more are MEMs: the chaining decided on them.
                    continue;
                }
                let cost = levenshtein(&a[ia..i], &b[ib..j]);
                let gain = MATCH_GAIN * run as i64 - EDIT_COST * cost as i64;
                if gain > 0 && best.is_none_or(|(g0, ..)| gain > g0) {
                    best = Some((gain, ia, ib, run));
                }
            }
        }
        match best {
            Some((_, ia, ib, run)) => {
                i = ia - run;
                j = ib - run;
            }
            None => return (i, j),
        }
    }
}

/// Removes the drafts that lie, in both texts, within another draft: a repeated phrase
/// inside a passage matched against another place of the same passage.
fn drop_contained(drafts: &mut Vec<Draft>) {
    // Longest first: a draft can only be within a draft at least as long.
    drafts.sort_by_key(|d| (std::cmp::Reverse(d.a.1 - d.a.0), d.a.0, d.b.0, d.b.1));
    let mut kept: Vec<Draft> = Vec::with_capacity(drafts.len());
    for d in drafts.drain(..) {
        let within =
            |o: &Draft| o.a.0 <= d.a.0 && d.a.1 <= o.a.1 && o.b.0 <= d.b.0 && d.b.1 <= o.b.1;
        if !kept.iter().any(within) {
            kept.push(d);
        }
    }
    *drafts = kept;
}

/// Merges drafts that overlap in both texts on diagonals at most `max_gap` apart.
///
/// A sweep in `a` order: each draft is compared only with the merged drafts that still
/// reach past its start. Repeated until nothing merges (a merge can make a draft reach a
/// neighbour it did not touch before).
fn merge_overlapping(mut drafts: Vec<Draft>, max_gap: i64) -> Vec<Draft> {
    loop {
        drafts.sort_by_key(|d| (d.a.0, d.b.0, d.a.1, d.b.1));
        let before = drafts.len();
        let mut out: Vec<Draft> = Vec::with_capacity(drafts.len());
        let mut active: Vec<usize> = Vec::new();
        'next: for d in drafts {
            active.retain(|&k| out[k].a.1 > d.a.0);
            for &k in &active {
                let o = &mut out[k];
                let overlap_b = o.b.0 < d.b.1 && d.b.0 < o.b.1;
                let near = o.diagonals.0 - max_gap <= d.diagonals.1
                    && d.diagonals.0 - max_gap <= o.diagonals.1;
                // No cascades over a repetitive text: a merge may not widen the diagonals
                // beyond the wider part (or two gaps).
                let span = |x: (i64, i64)| x.1 - x.0;
                let union = (
                    o.diagonals.0.min(d.diagonals.0),
                    o.diagonals.1.max(d.diagonals.1),
                );
                let narrow =
                    span(union) <= span(o.diagonals).max(span(d.diagonals)).max(2 * max_gap);
                if overlap_b && near && narrow {
                    o.a = (o.a.0.min(d.a.0), o.a.1.max(d.a.1));
                    o.b = (o.b.0.min(d.b.0), o.b.1.max(d.b.1));
                    o.diagonals = (
                        o.diagonals.0.min(d.diagonals.0),
                        o.diagonals.1.max(d.diagonals.1),
                    );
                    continue 'next;
                }
            }
            if d.a.1 > d.a.0 {
                active.push(out.len());
            }
            out.push(d);
        }
        drafts = out;
        if drafts.len() == before {
            return drafts;
        }
    }
}

/// Edit distance between two short token sequences (the gaps between MEMs).
pub(crate) fn levenshtein(a: &[u64], b: &[u64]) -> usize {
    if a.is_empty() || b.is_empty() {
        return a.len().max(b.len());
    }
    // Gaps are a few words: a row on the stack, no allocation.
    let mut stack = [0usize; 33];
    let mut heap = Vec::new();
    let row: &mut [usize] = if b.len() < stack.len() {
        &mut stack[..=b.len()]
    } else {
        heap.resize(b.len() + 1, 0);
        &mut heap
    };
    for (j, r) in row.iter_mut().enumerate() {
        *r = j;
    }
    for (i, x) in a.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = (diag + usize::from(x != y)).min(up + 1).min(row[j] + 1);
            diag = up;
        }
    }
    row[b.len()]
}

/// Edit alignment of `a` against `b` restricted to a band of diagonals.
///
/// `origin` is the global diagonal of `(0, 0)` (`a`'s offset minus `b`'s) and `band` the
/// global diagonals allowed (`i - j`); the band is widened to contain both corners. Returns
/// the edit count and the run-length encoded path.
fn banded_alignment(
    a: &[u64],
    b: &[u64],
    origin: i64,
    band: (i64, i64),
    dp: &mut Vec<u32>,
    trace: &mut Vec<u8>,
) -> (u32, Vec<(Op, u32)>) {
    let (la, lb) = (a.len() as i64, b.len() as i64);
    // Local diagonals (i - j) allowed, containing 0 and la - lb.
    let lo_d = (band.0 - origin).min(0).min(la - lb);
    let hi_d = (band.1 - origin).max(0).max(la - lb);
    // Column q of row i is j = i - hi_d + q.
    let width = (hi_d - lo_d + 1) as usize;
    let rows = a.len() + 1;
    const INF: u32 = u32::MAX / 2;
    dp.clear();
    dp.resize(rows * width, INF);
    trace.clear();
    trace.resize(rows * width, 0);
    let col = |i: i64, j: i64| -> Option<usize> {
        let q = j - i + hi_d;
        (j >= 0 && j <= lb && q >= 0 && q < width as i64).then_some(q as usize)
    };
    // Trace codes: 0 start, 1 diagonal, 2 up (delete a), 3 left (insert b).
    for i in 0..=la {
        for q in 0..width as i64 {
            let j = i - hi_d + q;
            if j < 0 || j > lb {
                continue;
            }
            let cell = i as usize * width + q as usize;
            if i == 0 && j == 0 {
                dp[cell] = 0;
                continue;
            }
            let mut best = (INF, 0u8);
            if i > 0
                && j > 0
                && let Some(pq) = col(i - 1, j - 1)
            {
                let v = dp[(i - 1) as usize * width + pq];
                let c = v + u32::from(a[(i - 1) as usize] != b[(j - 1) as usize]);
                if c < best.0 {
                    best = (c, 1);
                }
            }
            if i > 0
                && let Some(pq) = col(i - 1, j)
            {
                let c = dp[(i - 1) as usize * width + pq] + 1;
                if c < best.0 {
                    best = (c, 2);
                }
            }
            if j > 0
                && let Some(pq) = col(i, j - 1)
            {
                let c = dp[i as usize * width + pq] + 1;
                if c < best.0 {
                    best = (c, 3);
                }
            }
            dp[cell] = best.0;
            trace[cell] = best.1;
        }
    }
    let end = col(la, lb).expect("the band contains the end corner");
    let edits = dp[a.len() * width + end];
    let mut ops: Vec<Op> = Vec::new();
    let (mut i, mut j) = (la, lb);
    while i > 0 || j > 0 {
        let q = col(i, j).expect("the path stays in the band");
        match trace[i as usize * width + q] {
            1 => {
                ops.push(if a[(i - 1) as usize] == b[(j - 1) as usize] {
                    Op::Match
                } else {
                    Op::Substitute
                });
                i -= 1;
                j -= 1;
            }
            2 => {
                ops.push(Op::Delete);
                i -= 1;
            }
            _ => {
                ops.push(Op::Insert);
                j -= 1;
            }
        }
    }
    ops.reverse();
    let mut path: Vec<(Op, u32)> = Vec::new();
    for op in ops {
        match path.last_mut() {
            Some((last, n)) if *last == op => *n += 1,
            _ => path.push((op, 1)),
        }
    }
    (edits, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(max_gap: usize) -> PassageSettings {
        PassageSettings {
            max_gap,
            ..PassageSettings::default()
        }
    }

    fn hashes(words: &str) -> Vec<u64> {
        words
            .split_whitespace()
            .map(|w| crate::text::hash_normalized(w.as_bytes()))
            .collect()
    }

    #[test]
    fn identical_texts_are_one_passage() {
        let a = hashes("one two three one two three one two three four five six seven eight");
        let found = Aligner::new(settings(4)).align(&a, &a);
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].a.clone(), found[0].b.clone(), found[0].edits),
            (0..14, 0..14, 0)
        );
        assert!(
            Aligner::new(settings(4)).align(&a[..5], &a[..5]).is_empty(),
            "shorter than 8 words"
        );
    }

    #[test]
    fn levenshtein_table() {
        let h = |s: &str| hashes(s);
        assert_eq!(levenshtein(&h(""), &h("a b")), 2);
        assert_eq!(levenshtein(&h("a b c"), &h("a b c")), 0);
        assert_eq!(levenshtein(&h("a b c"), &h("a x c")), 1);
        assert_eq!(levenshtein(&h("a b c"), &h("a c")), 1);
        assert_eq!(levenshtein(&h("kitten sat"), &h("sitting sat on")), 2);
    }

    #[test]
    fn finds_a_moved_passage_with_one_changed_word() {
        let a = hashes(
            "one two three four five six seven eight nine ten \
             alpha beta gamma delta epsilon zeta eta theta iota kappa lambda",
        );
        let b = hashes(
            "alpha beta gamma delta EPSILON zeta eta theta iota kappa lambda \
             filler words here \
             one two three four five six seven eight nine ten",
        );
        let found = Aligner::new(settings(4)).align(&a, &b);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!((found[0].a.clone(), found[0].b.clone()), (0..10, 14..24));
        assert_eq!(found[0].edits, 0);
        assert_eq!((found[1].a.clone(), found[1].b.clone()), (10..21, 0..11));
        assert_eq!(found[1].edits, 1);
        assert_eq!(
            found[1].path,
            vec![(Op::Match, 4), (Op::Substitute, 1), (Op::Match, 6)]
        );
    }

    #[test]
    fn short_runs_after_an_edit_extend_the_ends() {
        let a = hashes("x y z one two three four five six seven eight nine ten eleven");
        let b = hashes("p q one two three four five six seven eight nine TEN eleven");
        let found = Aligner::new(settings(4)).align(&a, &b);
        assert_eq!(found.len(), 1, "{found:?}");
        // `eleven` alone after the edit does not pay for it; `nine` ends the passage.
        assert_eq!((found[0].a.clone(), found[0].b.clone()), (3..12, 2..11));
        let b2 = hashes("p q one two three four five six seven eight nine TEN eleven x");
        let a2 = hashes("x y z one two three four five six seven eight nine ten eleven x");
        let found = Aligner::new(settings(4)).align(&a2, &b2);
        assert_eq!((found[0].a.clone(), found[0].b.clone()), (3..15, 2..14));
        assert_eq!(found[0].edits, 1);
    }

    #[test]
    fn weak_links_are_not_chained() {
        // After the shared sentence, three of five words differ before three match again.
        let a = hashes(
            "we were able to win the following concession today \
             witkoff emphasized that this was the first time",
        );
        let b = hashes(
            "we were able to win the following concession today \
             he noted that this is the first time",
        );
        let found = Aligner::new(settings(5)).align(&a, &b);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].a, 0..9);
    }

    #[test]
    fn paths_map_boundaries_and_count_edits() {
        let p = TokenPassage {
            a: 10..20,
            b: 0..11,
            edits: 2,
            path: vec![
                (Op::Match, 3),
                (Op::Insert, 1),
                (Op::Match, 3),
                (Op::Substitute, 1),
                (Op::Match, 3),
            ],
        };
        assert_eq!(p.b_at(10), 0);
        assert_eq!(p.b_at(13), 3);
        assert_eq!(p.b_at(14), 5);
        assert_eq!(p.b_at(20), 11);
        assert_eq!(p.edits_between(10, 20), 2);
        assert_eq!(p.edits_between(10, 13), 0);
        assert_eq!(p.edits_between(10, 14), 1);
        assert_eq!(p.edits_between(16, 20), 1);
        assert_eq!(p.edits_between(17, 20), 0);
    }
}
