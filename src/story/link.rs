//! Story clusters by a group linkage, so that templated reports do not chain.
//!
//! Plain connected components would join Monday's, Tuesday's and Wednesday's money-market
//! reports as soon as each looks like the next. Here two clusters merge only when their
//! cross pairs (a pair never scored counts as 0) agree: by default more than half of them
//! are accepted ([`Linkage::Majority`]), or their mean probability reaches the model's
//! threshold ([`Linkage::Average`]). Pairs are visited from the most to the least probable
//! (ids break ties), so the result does not depend on input order or thread count.

use std::collections::HashMap;

use crate::cluster::{RepresentativeRule, UnionFind, preference};
use crate::corpus::Corpus;

/// One story cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct StoryCluster {
    /// Members, in id order.
    pub members: Vec<u32>,
    /// The member chosen by the representative rule (the earliest by default).
    pub representative: u32,
    /// Indices (into the accepted pairs) of the pairs inside the cluster.
    pub pairs: Vec<usize>,
    /// Lowest probability among those pairs.
    pub min_probability: f32,
    /// Mean probability among those pairs.
    pub mean_probability: f32,
}

/// When two clusters merge, given the scored pairs across them (a pair never scored
/// counts as probability 0, not accepted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Linkage {
    /// The mean probability over all cross pairs reaches the threshold.
    Average,
    /// More than half of the cross pairs are accepted (probability at least the
    /// threshold): a late article that matches two of three versions joins them, a chain
    /// a~b~c with a and c apart does not.
    #[default]
    Majority,
}

/// A scored pair as the linkage sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Link {
    /// First document.
    pub a: u32,
    /// Second document.
    pub b: u32,
    /// Probability of one story.
    pub probability: f32,
}

/// Clusters documents. `scored` holds every scored candidate (accepted or not),
/// `accepted[i]` indexes the pairs at or above `threshold` (in output order).
pub fn link(
    corpus: &Corpus,
    scored: &[Link],
    accepted: &[Link],
    threshold: f64,
    linkage: Linkage,
    rule: RepresentativeRule,
    rank: &[u32],
) -> Vec<StoryCluster> {
    let n = corpus.len();
    // Every scored pair in both directions, grouped by document (compressed rows).
    let mut starts = vec![0u32; n + 1];
    for l in scored {
        starts[l.a as usize + 1] += 1;
        starts[l.b as usize + 1] += 1;
    }
    for i in 0..n {
        starts[i + 1] += starts[i];
    }
    let mut fill = starts.clone();
    let mut adjacent = vec![(0u32, 0f32); 2 * scored.len()];
    for l in scored {
        for (x, y) in [(l.a, l.b), (l.b, l.a)] {
            adjacent[fill[x as usize] as usize] = (y, l.probability);
            fill[x as usize] += 1;
        }
    }
    let neighbours =
        |d: u32| &adjacent[starts[d as usize] as usize..starts[d as usize + 1] as usize];
    let mut order: Vec<usize> = (0..accepted.len()).collect();
    order.sort_by(|&x, &y| {
        let (p, q) = (&accepted[x], &accepted[y]);
        q.probability
            .total_cmp(&p.probability)
            .then(rank[p.a as usize].cmp(&rank[q.a as usize]))
            .then(rank[p.b as usize].cmp(&rank[q.b as usize]))
    });
    let mut uf = UnionFind::new(n);
    let mut members: HashMap<u32, Vec<u32>> = HashMap::new();
    // Merges refused, by (root, root, size, size): a cluster that has not changed keeps
    // its root and size, so the answer would be the same.
    let mut refused: std::collections::HashSet<(u32, u32, usize, usize)> = Default::default();
    for i in order {
        let l = accepted[i];
        let (ra, rb) = (uf.find(l.a), uf.find(l.b));
        if ra == rb {
            continue;
        }
        let size = |r: u32| members.get(&r).map_or(1, Vec::len);
        let (lo, hi) = (ra.min(rb), ra.max(rb));
        let state = (lo, hi, size(lo), size(hi));
        if refused.contains(&state) {
            continue;
        }
        let ma = members.remove(&ra).unwrap_or_else(|| vec![l.a]);
        let mb = members.remove(&rb).unwrap_or_else(|| vec![l.b]);
        let (small, large_root) = if ma.len() <= mb.len() {
            (&ma, rb)
        } else {
            (&mb, ra)
        };
        let (mut sum, mut accepted) = (0.0f64, 0usize);
        for &m in small {
            for &(other, p) in neighbours(m) {
                if uf.find(other) == large_root {
                    sum += f64::from(p);
                    accepted += usize::from(super::accepted(p, threshold));
                }
            }
        }
        let cross = ma.len() * mb.len();
        let merge = match linkage {
            Linkage::Average => sum / cross as f64 >= threshold,
            Linkage::Majority => 2 * accepted > cross,
        };
        if merge {
            uf.union(l.a, l.b);
            let root = uf.find(l.a);
            let mut joined = ma;
            joined.extend(mb);
            members.insert(root, joined);
        } else {
            refused.insert(state);
            members.insert(ra, ma);
            members.insert(rb, mb);
        }
    }
    let mut cluster_of: HashMap<u32, usize> = HashMap::new();
    let mut clusters: Vec<StoryCluster> = Vec::new();
    let mut groups: Vec<(u32, Vec<u32>)> =
        members.into_iter().filter(|(_, m)| m.len() > 1).collect();
    groups.sort_by_key(|(_, m)| m.iter().map(|&d| rank[d as usize]).min());
    for (_, mut group) in groups {
        group.sort_unstable_by_key(|&d| rank[d as usize]);
        let representative = *group
            .iter()
            .min_by_key(|&&d| preference(corpus, rank, rule, d))
            .expect("clusters are not empty");
        for &d in &group {
            cluster_of.insert(d, clusters.len());
        }
        clusters.push(StoryCluster {
            members: group,
            representative,
            pairs: Vec::new(),
            min_probability: f32::INFINITY,
            mean_probability: 0.0,
        });
    }
    for (i, l) in accepted.iter().enumerate() {
        if let (Some(&ca), Some(&cb)) = (cluster_of.get(&l.a), cluster_of.get(&l.b)) {
            if ca == cb {
                let c = &mut clusters[ca];
                c.pairs.push(i);
                c.min_probability = c.min_probability.min(l.probability);
                c.mean_probability += l.probability;
            }
        }
    }
    for c in &mut clusters {
        c.mean_probability /= c.pairs.len().max(1) as f32;
    }
    clusters.sort_by(|x, y| {
        y.members
            .len()
            .cmp(&x.members.len())
            .then(rank[x.representative as usize].cmp(&rank[y.representative as usize]))
    });
    clusters
}
