#!/usr/bin/env python3
"""Templated notices of different companies on Reuters: how many does the story level merge?

    neardup pairs --level story --story-threshold 0 ../shared/data/reuters21578.jsonl -o scored.jsonl
    neardup cluster --level story ../shared/data/reuters21578.jsonl -o clusters.jsonl
    python3 scripts/templated_notices.py ../shared/data/reuters21578.jsonl scored.jsonl \
        [clusters.jsonl] [--before scored-by-an-older-neardup.jsonl]

There are no labels for Reuters, so this is a proxy that needs none: Reuters marks
companies with tickers (`<SGIC>`, `<QANT.O>`), and two articles whose tickers are all
different are about different companies, so never one story (the data's README: "another
company's similar announcement" is a different story). For the scored candidates (every
pair the story level scored, `--story-threshold 0`) it prints, per class of pair, how many
were decided one story (score at or above the model's cut) and the distribution of
`lead_name_conflict` (absent in output of neardup before the lead veto); with a clusters
file, how many pairs of articles sharing a story cluster have all-different tickers.
With `--before`, the `lead_name_conflict` distribution is of the pairs that the older
neardup's scored file decided one story (how the lead veto would cut into them).

Standard library only.
"""
import json
import re
import sys
from collections import Counter

TICKER = re.compile(r"<([A-Z][A-Z.]*)>")
CUT = 0.35  # Model::fitted's threshold; pass --cut X for another
CLASSES = ("all-different tickers", "a shared ticker", "untickered")


def tickers_by_id(corpus):
    tickers = {}
    for line in open(corpus, encoding="utf-8"):
        r = json.loads(line)
        tickers[r["id"]] = set(TICKER.findall((r.get("title") or "") + " " + r["text"]))
    return tickers


def pair_class(a, b):
    if a and b and not a & b:
        return CLASSES[0]
    return CLASSES[1] if a & b else CLASSES[2]


def main(argv):
    options = {}
    for flag in ("--cut", "--before"):
        if flag in argv:
            i = argv.index(flag)
            options[flag] = argv[i + 1]
            argv = argv[:i] + argv[i + 2:]
    cut = float(options.get("--cut", CUT))
    corpus, scored = argv[1], argv[2]
    tickers = tickers_by_id(corpus)
    chosen = None
    if "--before" in options:
        chosen = set()
        for line in open(options["--before"], encoding="utf-8"):
            p = json.loads(line)
            if p["score"] >= cut:
                chosen.add((p["a"], p["b"]))
    same, conflict = Counter(), {c: [] for c in CLASSES}
    for line in open(scored, encoding="utf-8"):
        p = json.loads(line)
        c = pair_class(tickers[p["a"]], tickers[p["b"]])
        same[c] += p["score"] >= cut
        wanted = chosen is None or (p["a"], p["b"]) in chosen
        if wanted and "lead_name_conflict" in p["components"]:
            conflict[c].append(p["components"]["lead_name_conflict"])
    print(f"scored candidates decided one story (score >= {cut}), by class:")
    for c in CLASSES:
        print(f"  {c:22} {same[c]:6}")
    if any(conflict.values()):
        which = "scored candidates" if chosen is None else "pairs the older run decided one story"
        print(f"lead_name_conflict of the {which}: n, >= 0.5, >= 0.75, >= 0.9")
        for c in CLASSES:
            v = conflict[c]
            print(f"  {c:22} {len(v):6} {sum(x >= 0.5 for x in v):6} "
                  f"{sum(x >= 0.75 for x in v):6} {sum(x >= 0.9 for x in v):6}")
    if len(argv) > 3:
        different = total = 0
        for line in open(argv[3], encoding="utf-8"):
            members = [m["id"] for m in json.loads(line)["members"]]
            for i, a in enumerate(members):
                for b in members[i + 1:]:
                    total += 1
                    different += pair_class(tickers[a], tickers[b]) == CLASSES[0]
        print(f"pairs of articles sharing a story cluster: {total}, "
              f"of them with all-different tickers: {different}")


if __name__ == "__main__":
    main(sys.argv)
