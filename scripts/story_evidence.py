#!/usr/bin/env python3
"""Do candidate story features separate rewrites from same-topic stories? (exploration)

    /work/peers/venv/bin/python scripts/story_evidence.py CORPUS.jsonl LABELS.jsonl \
        FIXTURE_DIR --dump DUMP.jsonl

Needs numpy, scipy, scikit-learn and snowballstemmer (pip install).
DUMP.jsonl is `examples/story_fit --dump` output (the shipped components per labelled pair).
For each candidate feature it prints their distribution per label kind and for the ten
fixture pairs, and the grouped cross-validated pairwise F1 of a logistic model over the
shipped model's components with and without the feature:

- lead: IDF-weighted share of each text's first 25 content words found in the other
  (min and mean of both directions): a rewrite retells the same lead event;
- cooc: IDF-weighted Jaccard of content-word pairs within 6 words in one sentence
  (which facts go together, not just which words occur);
- twj-df2: the weighted word Jaccard with words seen in one document only left out
  (a rewrite's own vocabulary should not dilute the shared facts);
- nbr-csls, nbr-rank: the pair's weighted word Jaccard against each side's other
  neighbours in the whole corpus (2·s − mean of each side's 5 best; log of the better of
  the two ranks): a pair that stands out from its neighbours should be one story, while a
  running story's articles all resemble each other;
- align-mean, align-cov25, align-lead: for each sentence (4+ content words) of the
  shorter text, its best weighted word Jaccard with a sentence of the other (the mean;
  the share reaching 0.25; the better of the two first sentences'): a rewrite retells
  the other sentence by sentence, a follow-up shares only background;
- order-tau, order-lis: the order of the shared rarer words (in at most 50 documents) by
  first occurrence: IDF-weighted Kendall tau between the two texts, and the weighted share
  in the longest run kept in the same order: a rewrite retells the facts in its source's
  order, a follow-up brings the background in wherever it fits;
- stem-wj, stem-gain: the weighted Jaccard of Snowball-stemmed words, and its gain over
  the unstemmed one: a rewrite by another outlet inflects the same words differently
  ("sprinters" and "sprinter", "said" and "says").

A prototype, not shipped logic: BENCHMARKS.md records what it printed.
"""
import json
import math
import os
import re
import sys
from collections import Counter
from itertools import combinations

import numpy as np
import snowballstemmer
from scipy import sparse

sys.path.insert(0, os.path.dirname(__file__))
from story_harness import content, load_texts, print_cross_validation, print_distributions  # noqa: E402

LEAD_WORDS, COOC_WINDOW = 25, 6
STEMMER = snowballstemmer.stemmer("english")


class Doc:
    def __init__(self, text):
        words = content(text)
        self.words, self.lead = set(words), set(words[:LEAD_WORDS])
        self.stems = set(STEMMER.stemWords(words))
        self.first = {}  # word -> relative position of its first occurrence
        for i, w in enumerate(words):
            self.first.setdefault(w, i / max(1, len(words)))
        self.pairs = set()
        self.sentences = []
        for sentence in re.split(r"(?<=[.!?])\s+|\n+", text):
            toks = content(sentence)
            if len(set(toks)) >= 4:
                self.sentences.append(set(toks))
            for i, t in enumerate(toks):
                self.pairs.update(tuple(sorted((t, u))) for u in toks[i + 1:i + 1 + COOC_WINDOW] if u != t)


def main():
    corpus, labels_path, fixture_dir = sys.argv[1:4]
    dump_path = sys.argv[sys.argv.index("--dump") + 1]
    texts, fixtures = load_texts(corpus, fixture_dir)
    docs = {i: Doc(t) for i, t in texts.items()}
    n = len(docs)
    word_df, pair_df, stem_df = Counter(), Counter(), Counter()
    for d in docs.values():
        word_df.update(d.words)
        pair_df.update(d.pairs)
        stem_df.update(d.stems)

    def idf(df, k):
        return math.log((n + 1) / (df[k] + 1))

    def weight(keys, df, drop_singletons=False):
        return sum(idf(df, k) for k in keys if not (drop_singletons and df[k] == 1))

    def containment(x, y):
        total = weight(x, word_df)
        return weight(x & y, word_df) / total if total else 0.0

    def jaccard(x, y, df, drop_singletons=False):
        union = weight(x | y, df, drop_singletons)
        return weight(x & y, df, drop_singletons) / union if union else 0.0

    # Weighted word Jaccard of every pair of the corpus, for the neighbour features.
    ids = list(docs)
    row_of = {d: i for i, d in enumerate(ids)}
    vocab = {w: i for i, w in enumerate(word_df)}
    cells = [(row_of[d], vocab[w]) for d in ids for w in docs[d].words]
    member = sparse.csr_matrix(
        (np.ones(len(cells)), ([r for r, _ in cells], [c for _, c in cells])), shape=(n, len(vocab)))
    idfs = np.array([idf(word_df, w) for w in vocab])
    shared = (member.multiply(idfs).tocsr() @ member.T).toarray()
    totals = np.diag(shared).copy()
    sim = shared / (totals[:, None] + totals[None, :] - shared)
    np.fill_diagonal(sim, 0)
    best5 = -np.sort(-sim, axis=1)[:, :5].mean(axis=1)

    def best_matches(x, y):
        # For each sentence of x, its best weighted Jaccard with a sentence of y.
        return [max((jaccard(sx, sy, word_df) for sy in y.sentences), default=0.0) for sx in x.sentences]

    def alignment(da, db):
        ab, ba = best_matches(da, db), best_matches(db, da)
        short = ab if len(ab) <= len(ba) else ba
        mean = lambda v: sum(v) / len(v) if v else 0.0
        cover = lambda v, t: sum(x >= t for x in v) / len(v) if v else 0.0
        return {
            "align-mean": mean(short),
            "align-cov25": cover(short, 0.25),
            "align-lead": max(ab[0] if ab else 0.0, ba[0] if ba else 0.0),
        }

    def order(da, db):
        shared = [w for w in da.words & db.words if word_df[w] <= 50]
        if len(shared) < 3:
            return {"order-tau": 0.0, "order-lis": 0.0}
        shared.sort(key=lambda w: da.first[w])
        ys = [db.first[w] for w in shared]
        wts = [idf(word_df, w) for w in shared]
        conc = disc = 0.0
        for i in range(len(ys)):
            for j in range(i + 1, len(ys)):
                w = wts[i] * wts[j]
                if ys[i] < ys[j]:
                    conc += w
                elif ys[i] > ys[j]:
                    disc += w
        tau = (conc - disc) / (conc + disc) if conc + disc else 0.0
        # Weighted longest increasing subsequence, quadratic: texts share few rare words.
        best = [0.0] * len(ys)
        for i in range(len(ys)):
            best[i] = wts[i] + max((best[j] for j in range(i) if ys[j] < ys[i]), default=0.0)
        return {"order-tau": tau, "order-lis": max(best) / sum(wts)}

    def features(a, b):
        da, db = docs[a], docs[b]
        ab, ba = containment(da.lead, db.words), containment(db.lead, da.words)
        i, j = row_of[a], row_of[b]
        s_ab = sim[i, j]
        return {
            "nbr-csls": 2 * s_ab - best5[i] - best5[j],
            "nbr-rank": math.log1p(min((sim[i] > s_ab).sum(), (sim[j] > s_ab).sum())),
            "lead-min": min(ab, ba),
            "lead-mean": (ab + ba) / 2,
            "cooc": jaccard(da.pairs, db.pairs, pair_df),
            "twj-df2": jaccard(da.words, db.words, word_df, drop_singletons=True),
            **alignment(da, db),
            **order(da, db),
            "stem-wj": jaccard(da.stems, db.stems, stem_df),
            "stem-gain": jaccard(da.stems, db.stems, stem_df) - jaccard(da.words, db.words, word_df),
        }

    labels = [json.loads(line) for line in open(labels_path)]
    rows = [(lab["label"], features(lab["a"], lab["b"])) for lab in labels]
    rows += [("FIXTURE", features(a, b)) for a, b in combinations(fixtures, 2)]
    print_distributions(rows)
    print_cross_validation(labels, [f for _, f in rows[: len(labels)]], dump_path)

if __name__ == "__main__":
    main()
