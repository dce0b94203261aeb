#!/usr/bin/env python3
"""Would the lead veto catch more templated notices if it compared whole name runs? (exploration)

    python3 scripts/lead_runs.py DATA_DIR FIXTURE_DIR REUTERS_PAIRS.jsonl [--show [--fuzzy]]

REUTERS_PAIRS.jsonl: `neardup pairs --level story` output on reuters21578.jsonl (the pairs
to judge). For each lead name (a run of capitalised words in the first sentence that has
one, as `story::features` finds them, approximately), V0 counts the IDF weight of its
words the other text never mentions (the shipped `lead_name_conflict`); V1 counts a run
of two or more words as missing unless it appears whole inside a name run of the other
text, so "Franklin Michigan Insured Tax-Free Income Fund" no longer matches "Franklin
Insured Tax-Free Income Fund" while "Vladimir Putin" still matches "Russian President
Vladimir Putin". V2 is V1 with words written alike taken as one (equal without
punctuation, one edit or transposition apart, or sharing their first four letters), so a
misspelt or inflected name still matches. Each takes the smaller share of the two sides.
It prints how many pairs reach 0.5, 0.75 and 0.9 per BBC label, for the fixtures, and for
the Reuters pairs by ticker relation and for Franklin fund notices; --show lists the
Reuters pairs V1 (V2 with --fuzzy) would newly veto, Franklin aside. A prototype, not
shipped logic: BENCHMARKS.md records what it printed.
"""
import glob
import json
import math
import os
import re
import sys
from collections import Counter, defaultdict
from itertools import combinations

sys.path.insert(0, os.path.dirname(__file__))
from story_explore import STOP  # noqa: E402

TOKEN = re.compile(r"[A-Za-z0-9][\w'.\-]*\w|[A-Za-z0-9]")
MONTHS = {m.lower() for m in (
    "January February March April May June July August September October November December"
).split()}
STOPS = {w.lower() for w in STOP}


def norm(t):
    t = t.lower().replace("\u2019", "'")
    return t[:-2] if t.endswith("'s") else t


def names_of(text):
    """A text's words, its name runs of two or more words (with every contiguous part, for
    V1), and the names of its lead: the first sentence that has one. A run of
    capitalised words opening a sentence counts only with two or more words."""
    words = set()
    sentences = [s for s in re.split(r"(?<=[.!?:\"])\s+|\n+", text) if s.strip()]
    all_runs, lead_units = [], None
    for sent in sentences:
        toks = list(TOKEN.finditer(sent))
        units, run, prev_end = [], [], None
        def flush():
            if len(run) >= 2:
                units.append(tuple(w for w, _ in run))
            elif len(run) == 1 and not run[0][1]:
                units.append((run[0][0],))
            run.clear()
        for i, m in enumerate(toks):
            t = m.group(0)
            w = norm(t)
            words.add(w)
            gap = sent[prev_end:m.start()] if prev_end is not None else " "
            if prev_end is not None and gap != " ":
                flush()
            if t[0].isupper() and w not in STOPS and w not in MONTHS:
                run.append((w, i == 0))
            else:
                flush()
            prev_end = m.end()
        flush()
        all_runs.extend(u for u in units if len(u) >= 2)
        if lead_units is None and units:
            lead_units = units
    subruns = set()
    for r in all_runs:
        for i in range(len(r)):
            for j in range(i + 1, len(r) + 1):
                subruns.add(r[i:j])
    return {"words": words, "subruns": subruns, "runs": all_runs, "lead": lead_units or []}


def close(x, y):
    """Two name words written alike: equal without punctuation, one transposition,
    insertion, deletion or substitution apart, or sharing their first four letters."""
    x, y = re.sub(r"[^a-z0-9]", "", x), re.sub(r"[^a-z0-9]", "", y)
    if x == y or (len(x) >= 4 and len(y) >= 4 and x[:4] == y[:4]):
        return True
    if abs(len(x) - len(y)) > 1 or min(len(x), len(y)) < 4:
        return False
    # Damerau-Levenshtein distance at most 1.
    i = 0
    while i < min(len(x), len(y)) and x[i] == y[i]:
        i += 1
    return (x[i + 1:] == y[i + 1:] or x[i + 1:] == y[i:] or x[i:] == y[i + 1:]
            or (x[i:i + 2] == y[i:i + 2][::-1] and x[i + 2:] == y[i + 2:]))


def fuzzy_in(run, runs):
    """Whether `run` appears, word by word close, contiguously inside one of `runs`."""
    n = len(run)
    return any(all(close(a, b) for a, b in zip(run, r[i:i + n]))
               for r in runs for i in range(len(r) - n + 1))


def conflicts(a, b, idf):
    """The lead name conflict of a pair by V0, V1 and V2: the smaller share of the two
    sides' lead name weight the other text does not mention."""
    def side(x, y):
        tot = miss0 = miss1 = miss2 = 0.0
        for u in x["lead"]:
            m = sum(idf(w) for w in u)
            tot += m
            miss0 += sum(idf(w) for w in u if w not in y["words"])
            if len(u) == 1:
                miss1 += m if u[0] not in y["words"] else 0.0
                miss2 += m if not any(close(u[0], w) for w in y["words"]) else 0.0
            else:
                miss1 += m if u not in y["subruns"] else 0.0
                miss2 += m if not fuzzy_in(u, y["runs"]) else 0.0
        return tuple(v / tot if tot else 0.0 for v in (miss0, miss1, miss2))
    x, y = side(a, b), side(b, a)
    return tuple(min(p, q) for p, q in zip(x, y))


def load(path):
    """Records of a JSON Lines file by id."""
    out = {}
    for line in open(path):
        r = json.loads(line)
        out[r["id"]] = r
    return out


def table(name, rows):
    """How many pairs of each group reach 0.5, 0.75 and 0.9 by each variant."""
    for group, values in rows.items():
        for v, label in ((0, "V0 words"), (1, "V1 runs"), (2, "V2 fuzzy")):
            xs = [x[v] for x in values]
            reach = "  ".join(f">={t} {sum(x >= t for x in xs):4}" for t in (0.5, 0.75, 0.9))
            print(f"  {name:8} {group:28} {label:9} n={len(xs):5}  {reach}")


def analysed(records):
    """Every record's names, and the IDF of a word over the records."""
    docs = {i: names_of(r.get("text") or "") for i, r in records.items()}
    df = Counter()
    for d in docs.values():
        df.update(d["words"])
    n = len(docs)
    return docs, lambda w: math.log((n + 1) / (df[w] + 1))


def tickers(text):
    """Reuters' company tickers (`<SGIC>`) in a text."""
    found = (x.split(">")[0] for x in text.split("<")[1:] if ">" in x)
    return {t for t in found if re.fullmatch(r"[A-Z.]+", t)}


def main():
    data, fixtures, pairs = sys.argv[1:4]
    bbc = load(f"{data}/bbc-news.jsonl")
    for path in sorted(glob.glob(os.path.join(fixtures, "*.txt"))):
        bbc["fx-" + os.path.basename(path)[:3]] = {"text": open(path).read()}
    docs, idf = analysed(bbc)
    rows = defaultdict(list)
    for line in open(f"{data}/labels/bbc-same-story.jsonl"):
        lab = json.loads(line)
        rows[lab["label"]].append(conflicts(docs[lab["a"]], docs[lab["b"]], idf))
    fx = [k for k in docs if k.startswith("fx-")]
    for a, b in combinations(fx, 2):
        rows["fixtures"].append(conflicts(docs[a], docs[b], idf))
    table("BBC", rows)

    reuters = load(f"{data}/reuters21578.jsonl")
    docs, idf = analysed(reuters)
    scored = []
    for line in open(pairs):
        p = json.loads(line)
        ra, rb = reuters[p["a"]], reuters[p["b"]]
        ta = tickers(ra.get("title", "") + " " + ra["text"])
        tb = tickers(rb.get("title", "") + " " + rb["text"])
        franklin = "FRANKLIN" in ra.get("title", "") and "FRANKLIN" in rb.get("title", "")
        scored.append((p, ra, rb, ta, tb, franklin, conflicts(docs[p["a"]], docs[p["b"]], idf)))
    rows = defaultdict(list)
    for _, _, _, ta, tb, franklin, c in scored:
        if franklin:
            rows["franklin"].append(c)
        if ta and tb:
            rows["tickers all different" if ta.isdisjoint(tb) else "tickers shared"].append(c)
        else:
            rows["no tickers"].append(c)
    table("Reuters", rows)

    if "--show" in sys.argv:
        show = 2 if "--fuzzy" in sys.argv else 1
        print(f"--- V{show} >= 0.75, not Franklin")
        for p, ra, rb, ta, tb, franklin, c in scored:
            if franklin or c[show] < 0.75:
                continue
            relation = "-" if not (ta and tb) else ("diff" if ta.isdisjoint(tb) else "SAME")
            titles = f"{ra.get('title', '')[:48]:48} | {rb.get('title', '')[:48]}"
            print(f"{relation:4} {p['kind'][:3]} {c[0]:.2f}/{c[1]:.2f}/{c[2]:.2f} {titles}")
            print("      lead a:", docs[p["a"]]["lead"][:6], " lead b:", docs[p["b"]]["lead"][:6])


if __name__ == "__main__":
    main()
