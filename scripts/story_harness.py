"""What the story-feature prototypes share: their distributions per label kind, and the
grouped cross-validated pairwise F1 of the shipped components with and without each one,
and the content words they compare.

Imported by `story_evidence.py` and `story_vectors.py` (prototypes, not shipped logic).
"""
import glob
import json
import os
import re
from collections import defaultdict
from itertools import combinations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from story_explore import STOP

SHIPPED = ["term_weighted_jaccard", "shingle_jaccard", "conflicting_slots", "weekday_conflict", "back_reference"]
TOKEN = re.compile(r"\w+(?:[.,']\w+)*")


def normalize(token):
    t = token.lower().replace("\u2019", "'")
    return t[:-2] if t.endswith("'s") else t


def content(text):
    return [t for t in map(normalize, (m.group(0) for m in TOKEN.finditer(text))) if t not in STOP and len(t) > 2]


def load_texts(corpus, fixture_dir):
    """Title and text of each corpus record by id, and the fixtures as `fixture-NNN`."""
    texts = {}
    for line in open(corpus):
        r = json.loads(line)
        texts[r["id"]] = (r.get("title") or "") + "\n" + r["text"]
    fixtures = []
    for path in sorted(glob.glob(os.path.join(fixture_dir, "*.txt"))):
        fixtures.append("fixture-" + os.path.basename(path)[:3])
        texts[fixtures[-1]] = open(path).read()
    return texts, fixtures


def report_features(labels, fixtures, features, dump_path):
    """Prints each feature's distribution per label kind (low-confidence labels apart,
    the fixture pairs as FIXTURE) and its cross-validated gain; `features(a, b)` gives a
    pair's {feature: value}."""
    kind = lambda lab: lab["label"] + ("" if lab["confidence"] == "high" else "-low")
    rows = [(kind(lab), features(lab["a"], lab["b"])) for lab in labels]
    rows += [("FIXTURE", features(a, b)) for a, b in combinations(fixtures, 2)]
    print_distributions(rows)
    print_cross_validation(labels, [f for _, f in rows[: len(labels)]], dump_path)


def print_distributions(rows):
    """rows: (kind, {feature: value}) pairs."""
    names = list(rows[0][1])
    by_kind = defaultdict(list)
    for kind, f in rows:
        by_kind[kind].append(f)
    print("distribution per kind: min q25 median q75 q90 max")
    for name in names:
        for kind in sorted(by_kind):
            v = sorted(f[name] for f in by_kind[kind])
            q = lambda p: v[min(len(v) - 1, int(p * len(v)))]
            print(f"  {name:13} {kind:11} n={len(v):3}  " + " ".join(f"{x:.3f}" for x in (v[0], q(.25), q(.5), q(.75), q(.9), v[-1])))


def print_cross_validation(labels, features, dump_path):
    """Grouped 5-fold CV of a logistic model over the shipped components (from the
    `story_fit --dump` file) plus each feature in turn; `features[i]` belongs to `labels[i]`.
    Pairs linked through a shared document stay in one fold."""
    parent = {}

    def root(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            x = parent[x]
        return x

    for lab in labels:
        parent[root(lab["a"])] = root(lab["b"])
    group_ids = {}
    groups = np.array([group_ids.setdefault(root(lab["a"]), len(group_ids)) for lab in labels])
    y = np.array([lab["same_story"] for lab in labels])
    dump = {(r["a"], r["b"]): r for r in map(json.loads, open(dump_path))}
    shipped = [[dump[(lab["a"], lab["b"])][c] for c in SHIPPED] for lab in labels]
    print("grouped 5-fold CV, pairwise, best threshold:")
    for extra in [None] + list(features[0]):
        x = np.array([s + ([] if extra is None else [f[extra]]) for s, f in zip(shipped, features)])
        p = np.zeros(len(y))
        for train, test in GroupKFold(5).split(x, y, groups):
            model = LogisticRegression(C=10, max_iter=5000).fit(x[train], y[train])
            p[test] = model.predict_proba(x[test])[:, 1]
        best = (0, 0, 0, 0)
        for t in np.arange(0.05, 0.95, 0.05):
            tp = ((p >= t) & y).sum()
            prec, rec = tp / max(1, (p >= t).sum()), tp / y.sum()
            f1 = 2 * prec * rec / (prec + rec) if tp else 0
            best = max(best, (f1, prec, rec, t))
        print(f"  {'shipped' if extra is None else 'shipped + ' + extra:24} F1 {best[0]:.3f}  P {best[1]:.3f}  R {best[2]:.3f}  at {best[3]:.2f}")
