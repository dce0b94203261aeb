#!/usr/bin/env python3
"""Writes a corpus of short random texts in which every K-th record is the same stub (a
paywall notice scraped many times): the memory runs of BENCHMARKS.md, "Mass copies".

    scripts/mass-copies.py 1000000 10 > copies-1m.jsonl      # 100,000 copies of the stub
    scripts/mass-copies.py 300000 10 > copies-300k.jsonl     # 30,000 copies
    scripts/mass-copies.py 100000 1 --vocabulary 13 > tiny.jsonl   # no stub: 1-7 words of 13

Other records have 1 to 8 words (1 to 7 with a vocabulary under 100) drawn from a
vocabulary of w0, w1, ... (50,000 by default), so they rarely pair. With every K set to 1
the stub is left out (`--stub ''` too). Standard library only.
"""
import argparse
import json
import random
import sys


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("records", type=int)
    p.add_argument("every", type=int, help="every K-th record is the stub (1: none)")
    p.add_argument("--vocabulary", type=int, default=50000)
    p.add_argument("--stub", default="Subscribe to read the full story")
    p.add_argument("--seed", type=int, default=6)
    a = p.parse_args()
    rng = random.Random(a.seed)
    words = ["w%d" % i for i in range(a.vocabulary)]
    longest = 8 if a.vocabulary >= 100 else 7
    out = sys.stdout
    for i in range(a.records):
        if a.every > 1 and a.stub and i % a.every == 0:
            text = a.stub
        else:
            text = " ".join(rng.choices(words, k=rng.randint(1, longest)))
        out.write(json.dumps({"id": "t%d" % i, "text": text}) + "\n")


if __name__ == "__main__":
    main()
