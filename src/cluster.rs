//! Clusters from verified pairs.
//!
//! Two modes:
//! * [`ClusterMode::Connected`]: connected components (union-find). Chains: if a ~ b and
//!   b ~ c, all three are one cluster even when a and c are not similar.
//! * [`ClusterMode::Leader`]: no chaining. Documents are visited in representative order
//!   (see [`RepresentativeRule`]); each one not yet in a cluster leads a new cluster made of
//!   itself and its similar documents that are not yet in one. Every member is similar to
//!   the cluster's representative.
//!
//! Both give the same clusters whatever the input order, except with
//! [`RepresentativeRule::First`], which by definition depends on it.
//!
//! A group of exact copies over the bucket cap comes paired as a star around its first
//! member (see [`crate::index`]). Its members have equal shingle sets, so equal scores with
//! anyone: the leader mode moves the group as one, as it would move a fully paired group.

use crate::corpus::Corpus;
use crate::index::CopyGroup;
use crate::verify::PairScore;

/// How verified pairs become clusters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClusterMode {
    /// Connected components of the similarity graph.
    #[default]
    Connected,
    /// A document joins a cluster only if it is similar to the cluster's representative.
    Leader,
}

/// Which member represents a cluster (and is kept by `dedup`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RepresentativeRule {
    /// Earliest `date`; documents without a date come last; ties go to the longest text,
    /// then the smallest id.
    #[default]
    Earliest,
    /// Longest text; ties go to the earliest date, then the smallest id.
    Longest,
    /// First in input order.
    First,
}

/// One cluster of near-duplicates.
#[derive(Clone, Debug, PartialEq)]
pub struct Cluster {
    /// Members, in id order.
    pub members: Vec<u32>,
    /// The member chosen by the representative rule.
    pub representative: u32,
    /// Indices (into the verified pairs) of the pairs whose two documents are members.
    pub pairs: Vec<usize>,
    /// Lowest Jaccard among those pairs.
    pub min_jaccard: f32,
    /// Mean Jaccard among those pairs.
    pub mean_jaccard: f32,
}

/// Sort key of a document under a representative rule: smaller is preferred.
pub fn preference(
    corpus: &Corpus,
    rank: &[u32],
    rule: RepresentativeRule,
    doc: u32,
) -> (i64, i64, u32) {
    let date = corpus.date(doc).unwrap_or(i64::MAX);
    let shorter = -(corpus.text_bytes(doc).min(i64::MAX as u64) as i64);
    match rule {
        RepresentativeRule::Earliest => (date, shorter, rank[doc as usize]),
        RepresentativeRule::Longest => (shorter, date, rank[doc as usize]),
        RepresentativeRule::First => (i64::from(doc), 0, 0),
    }
}

/// Groups the documents of `pairs` (verified pairs, in output order) into clusters of two
/// or more, sorted by size (largest first), then by representative id. `copies` are the
/// copy groups paired as stars in `pairs`.
pub fn cluster(
    corpus: &Corpus,
    pairs: &[PairScore],
    copies: &[CopyGroup],
    mode: ClusterMode,
    rule: RepresentativeRule,
    rank: &[u32],
) -> Vec<Cluster> {
    let n = corpus.len();
    let mut cluster_of = vec![u32::MAX; n];
    let mut groups: Vec<Vec<u32>> = Vec::new();
    match mode {
        ClusterMode::Connected => {
            let mut uf = UnionFind::new(n);
            for p in pairs {
                uf.union(p.a, p.b);
            }
            let mut group_of_root = vec![u32::MAX; n];
            for p in pairs {
                for doc in [p.a, p.b] {
                    if cluster_of[doc as usize] != u32::MAX {
                        continue;
                    }
                    let root = uf.find(doc) as usize;
                    if group_of_root[root] == u32::MAX {
                        group_of_root[root] = groups.len() as u32;
                        groups.push(Vec::new());
                    }
                    cluster_of[doc as usize] = group_of_root[root];
                    groups[group_of_root[root] as usize].push(doc);
                }
            }
        }
        ClusterMode::Leader => {
            let mut neighbours: Vec<Vec<u32>> = vec![Vec::new(); n];
            for p in pairs {
                neighbours[p.a as usize].push(p.b);
                neighbours[p.b as usize].push(p.a);
            }
            let mut order: Vec<u32> = (0..n as u32)
                .filter(|&d| !neighbours[d as usize].is_empty())
                .collect();
            order.sort_by_key(|&d| preference(corpus, rank, rule, d));
            let mut copy_group = vec![u32::MAX; if copies.is_empty() { 0 } else { n }];
            for (i, g) in copies.iter().enumerate() {
                for &d in &g.members {
                    copy_group[d as usize] = i as u32;
                }
            }
            let group_of = |doc: u32| match copy_group.get(doc as usize) {
                Some(&g) if g != u32::MAX => Some(&copies[g as usize].members),
                _ => None,
            };
            // Takes `doc` into cluster `id`, with its copy group if it has one.
            let take = |doc: u32, id: u32, cluster_of: &mut Vec<u32>, group: &mut Vec<u32>| {
                let copies_of = group_of(doc).map_or(std::slice::from_ref(&doc), |m| &m[..]);
                for &d in std::iter::once(&doc).chain(copies_of) {
                    if cluster_of[d as usize] == u32::MAX {
                        cluster_of[d as usize] = id;
                        group.push(d);
                    }
                }
            };
            for leader in order {
                if cluster_of[leader as usize] != u32::MAX {
                    continue;
                }
                let id = groups.len() as u32;
                let mut group = Vec::new();
                take(leader, id, &mut cluster_of, &mut group);
                // A copy's neighbours are its group's first member's.
                let hub = group_of(leader).map_or(leader, |m| m[0]);
                for &m in &neighbours[hub as usize] {
                    if cluster_of[m as usize] == u32::MAX {
                        take(m, id, &mut cluster_of, &mut group);
                    }
                }
                if group.len() == 1 {
                    // Every neighbour is taken: this document stays on its own. (No later
                    // leader can be its neighbour: it would have joined this one.)
                    cluster_of[leader as usize] = u32::MAX;
                    continue;
                }
                groups.push(group);
            }
        }
    }
    let cluster_of_pair = |p: &PairScore| {
        let (ca, cb) = (cluster_of[p.a as usize], cluster_of[p.b as usize]);
        (ca == cb && (ca as usize) < groups.len()).then_some(ca as usize)
    };
    // Sized first: grown by doubling, the lists of a huge cluster would hold up to twice
    // their 8 bytes a pair.
    let mut sizes = vec![0usize; groups.len()];
    for c in pairs.iter().filter_map(cluster_of_pair) {
        sizes[c] += 1;
    }
    let mut pair_lists: Vec<Vec<usize>> = sizes.into_iter().map(Vec::with_capacity).collect();
    for (i, p) in pairs.iter().enumerate() {
        if let Some(c) = cluster_of_pair(p) {
            pair_lists[c].push(i);
        }
    }
    let mut clusters: Vec<Cluster> = groups
        .into_iter()
        .zip(pair_lists)
        .map(|(mut members, pair_idx)| {
            let representative = match mode {
                ClusterMode::Leader => members[0],
                ClusterMode::Connected => *members
                    .iter()
                    .min_by_key(|&&d| preference(corpus, rank, rule, d))
                    .expect("clusters are not empty"),
            };
            members.sort_unstable_by_key(|&d| rank[d as usize]);
            let sims = pair_idx.iter().map(|&i| pairs[i].jaccard);
            let min_jaccard = sims.clone().fold(f32::INFINITY, f32::min);
            let mean_jaccard = sims.map(f64::from).sum::<f64>() / pair_idx.len().max(1) as f64;
            Cluster {
                members,
                representative,
                pairs: pair_idx,
                min_jaccard,
                mean_jaccard: mean_jaccard as f32,
            }
        })
        .collect();
    clusters.sort_by(|x, y| {
        y.members
            .len()
            .cmp(&x.members.len())
            .then(rank[x.representative as usize].cmp(&rank[y.representative as usize]))
    });
    clusters
}

/// Union-find with path halving and union by size.
#[derive(Debug)]
pub struct UnionFind {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl UnionFind {
    /// `n` singletons.
    pub fn new(n: usize) -> Self {
        UnionFind {
            parent: (0..n as u32).collect(),
            size: vec![1; n],
        }
    }

    /// The root of `x`'s set.
    pub fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let grand = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = grand;
            x = grand;
        }
        x
    }

    /// Merges the sets of `a` and `b`.
    pub fn union(&mut self, a: u32, b: u32) {
        let (mut ra, mut rb) = (self.find(a), self.find(b));
        if ra == rb {
            return;
        }
        if self.size[ra as usize] < self.size[rb as usize] {
            std::mem::swap(&mut ra, &mut rb);
        }
        self.parent[rb as usize] = ra;
        self.size[ra as usize] += self.size[rb as usize];
    }
}
