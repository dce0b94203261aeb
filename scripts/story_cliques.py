#!/usr/bin/env python3
"""Group evidence for the story level: does a group of articles that all resemble one
another a little mark one story? (exploration, twenty-eighth session)

    neardup pairs --level story --story-threshold 0.02 -q BBC.jsonl -o bbc-pairs.jsonl
    neardup cluster --level story -q BBC.jsonl -o bbc-clusters.jsonl
    neardup pairs --level story --story-threshold 0.05 -q CORPORA... FIXTURE_DIR -o mixed.jsonl
    python3 scripts/story_cliques.py LABELS.jsonl bbc-pairs.jsonl bbc-clusters.jsonl mixed.jsonl

The five wire-story fixtures score 0.09-0.20 pairwise, far below the model's cut, but all
ten pairs do: a clique. For cuts t and sizes k, every maximal clique of at least k
articles whose pairs all score t or more is merged into the shipped clusters; it prints
the labelled BBC pairs' precision, recall and F1 (and per label kind), and how many such
cliques the mixed corpora hold. Standard library only.
"""

import json
import sys
from collections import defaultdict


def read(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def maximal_cliques(adjacent):
    """Bron-Kerbosch with pivoting."""
    out = []

    def expand(r, p, x):
        if not p and not x:
            out.append(r)
            return
        pivot = max(p | x, key=lambda v: len(adjacent[v] & p))
        for v in list(p - adjacent[pivot]):
            expand(r | {v}, p & adjacent[v], x & adjacent[v])
            p = p - {v}
            x = x | {v}

    expand(set(), set(adjacent), set())
    return out


def cliques_at(pairs, cut, size):
    adjacent = defaultdict(set)
    for p in pairs:
        if p["score"] >= cut:
            adjacent[p["a"]].add(p["b"])
            adjacent[p["b"]].add(p["a"])
    return [c for c in maximal_cliques(adjacent) if len(c) >= size]


def judged(labels, clusters, cliques):
    # Which group each document ends in: components of the graph whose edges join each
    # cluster's and each clique's members.
    neighbours = defaultdict(set)
    for group in [[m["id"] for m in c["members"]] for c in clusters] + [list(c) for c in cliques]:
        for member in group[1:]:
            neighbours[group[0]].add(member)
            neighbours[member].add(group[0])
    component = {}
    for start in neighbours:
        if start in component:
            continue
        component[start] = start
        frontier = [start]
        while frontier:
            for other in neighbours[frontier.pop()]:
                if other not in component:
                    component[other] = start
                    frontier.append(other)

    def find(x):
        return component.get(x, x)

    tp = fp = fn = 0
    kinds = defaultdict(lambda: [0, 0])
    for label in labels:
        same = find(label["a"]) == find(label["b"])
        tp += same and label["same_story"]
        fp += same and not label["same_story"]
        fn += label["same_story"] and not same
        kinds[label["label"]][0 if same else 1] += 1
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    merged = ", ".join(f"{k} {v[0]}/{sum(v)}" for k, v in sorted(kinds.items()))
    return f"P {precision:.3f} R {recall:.3f} F1 {f1:.3f} ({tp}/{fp}/{fn}; merged: {merged})"


def main():
    labels, bbc_pairs, clusters, mixed = (read(p) for p in sys.argv[1:5])
    print("shipped clusters:", judged(labels, clusters, []))
    print("cut  size  BBC cliques  labelled BBC pairs  |  mixed-corpora cliques (largest)")
    for cut in (0.08, 0.09, 0.1, 0.12, 0.15, 0.2):
        for size in (3, 4, 5, 6):
            bbc = cliques_at(bbc_pairs, cut, size)
            many = cliques_at(mixed, cut, size)
            largest = max((len(c) for c in many), default=0)
            print(f"{cut:.2f} {size:5d} {len(bbc):12d}  {judged(labels, clusters, bbc)}  |  {len(many)} ({largest})")


if __name__ == "__main__":
    main()
