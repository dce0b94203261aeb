#!/usr/bin/env python3
"""Exploration of story-level pair features on labelled pairs (prototype, not shipped logic).

    /work/peers/venv/bin/python scripts/story_explore.py CORPUS.jsonl LABELS.jsonl

Prints grouped-CV pairwise figures of logistic models over feature subsets.
"""
import json
import math
import re
import sys
from collections import Counter, defaultdict

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

STOP = set("""a about above after again against all also am an and any are as at
be because been before being below between both but by can could did do does doing down during
each few for from further had has have having he her here hers herself him himself his how i if
in into is it its itself just me more most my myself no nor not now of off on once only or other
our ours ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were what
when where which while who whom why will with would you your yours yourself yourselves said says
say told according mr mrs ms dr would could may might must shall also s t year years week weeks
day days month months time new one two three first last next since still however many much
monday tuesday wednesday thursday friday saturday sunday yesterday today tomorrow""".split())
DAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
TOK = re.compile(r"\w+(?:[.,']\w+)*")


def load(corpus, labels):
    docs = {}
    for line in open(corpus):
        r = json.loads(line)
        docs[r["id"]] = r
    pairs = [json.loads(l) for l in open(labels)]
    if "--fixtures" in sys.argv:
        import glob, itertools, os
        fx = []
        for path in sorted(glob.glob(sys.argv[sys.argv.index("--fixtures") + 1] + "/*.txt")):
            i = "fx-" + os.path.basename(path)[:3]
            docs[i] = {"id": i, "title": "", "text": open(path).read()}
            fx.append(i)
        FIXTURE_PAIRS.extend(itertools.combinations(fx, 2))
    return docs, pairs


def tokens(text):
    return [m.group(0) for m in TOK.finditer(text)]


def sentences(text):
    return [s for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]


class Doc:
    def __init__(self, rec):
        self.id = rec["id"]
        self.title = rec.get("title", "")
        self.text = rec["text"]
        toks = tokens(self.text)
        self.toks = toks
        low = [t.lower() for t in toks]
        self.low = low
        self.terms = set(t for t in low if t not in STOP and not t[0].isdigit())
        self.figures = set(t for t in low if t[0].isdigit())
        self.shingles = set(tuple(low[i:i + 5]) for i in range(len(low) - 4))
        seq = [tuple(low[i:i + 5]) for i in range(len(low) - 4)]
        k = max(len(seq) // 3, 1)
        self.first3, self.last3 = set(seq[:k]), set(seq[-k:])
        self.names = set()
        for m in re.finditer(r"(?<![.!?\n]\s)(?<!^)\b([A-Z][a-z]+(?:\s[A-Z][a-z]+)*)", self.text):
            w = m.group(1)
            if w.lower() not in STOP:
                self.names.add(w.lower())
        # slots: figure with previous content word (within 3 tokens) and previous token
        self.slots = set()
        self.fig_pairs = set()  # (figure, next figure within 3 tokens)
        last = None
        lastfig = None
        for i, t in enumerate(low):
            if t[0].isdigit():
                if last and i - last[1] <= 3:
                    self.slots.add((last[0], t))
                if lastfig and i - lastfig[1] <= 3:
                    self.fig_pairs.add((lastfig[0], t))
                lastfig = (t, i)
            elif t not in STOP:
                last = (t, i)
        self.days = [d for d in low if d in DAYS]
        sents = sentences(self.text)
        self.lead = " ".join(sents[:2])
        self.quotes = set()
        for q in re.findall(r"\"([^\"\n]{3,300})\"", self.text):
            qt = [t.lower() for t in tokens(q)]
            for i in range(len(qt) - 1):
                if not (qt[i] in STOP and qt[i + 1] in STOP):
                    self.quotes.add((qt[i], qt[i + 1]))
        lt = self.text.lower()
        self.back = sum(lt.count(p) for p in BACKREF)
        self.now = sum(lt.count(p) for p in NOWREF)
        self.sents = []
        for s in sentences(self.text):
            w = [t.lower() for t in tokens(s)]
            self.sents.append((s.lower(), w, set(tuple(w[i:i + 3]) for i in range(len(w) - 2))))
        self.tri = set()
        for _, _, t in self.sents:
            self.tri |= t
        self.lead_sh = set()
        for _, w, _ in self.sents[:2]:
            self.lead_sh |= set(tuple(w[i:i + 5]) for i in range(len(w) - 4))


STRONG_BACK = ["last week", "last month", "earlier this month", "earlier this week", "earlier this year",
               "days ago", "weeks ago", "a week ago", "last monday", "last tuesday", "last wednesday",
               "last thursday", "last friday", "last saturday", "last sunday", "yesterday", "previous day",
               "the day before", "last weekend", "earlier in the week", "earlier in the month"]


def aligned_backref(a, b):
    """Sentences of a that retell b's text (>= 30% of their word trigrams in b) and add a
    back-reference that b's text does not have."""
    n = 0
    bt = b.text.lower()
    for s, w, tri in a.sents:
        if len(tri) < 4:
            continue
        shared = len(tri & b.tri) / len(tri)
        if shared < 0.3:
            continue
        for p in STRONG_BACK:
            if p in s and p not in bt:
                n += 1
                break
    return n


RARE = 4.5
FIXTURE_PAIRS = []
BACKREF = ["earlier this month", "earlier this week", "last week", "last month", "earlier this year",
           "on monday", "on tuesday", "on wednesday", "on thursday", "on friday", "last year's",
           "a week ago", "days ago", "weeks ago", "previously", "had been", "last monday",
           "last tuesday", "last wednesday", "last thursday", "last friday"]
NOWREF = ["today", "on monday", "on tuesday", "on wednesday", "on thursday", "on friday", "on saturday", "on sunday", "this week"]


def jac(a, b):
    u = len(a | b)
    return len(a & b) / u if u else 0.0


def cont(a, b):
    m = min(len(a), len(b))
    return len(a & b) / m if m else 0.0


def wjac(a, b, idf):
    inter = sum(idf[t] for t in a & b)
    uni = sum(idf[t] for t in a | b)
    return inter / uni if uni else 0.0


def wcont(a, b, idf):
    inter = sum(idf[t] for t in a & b)
    m = min(sum(idf[t] for t in a), sum(idf[t] for t in b))
    return inter / m if m else 0.0


def slot_conflict(a, b):
    sa, sb = defaultdict(set), defaultdict(set)
    for s, f in a:
        sa[s].add(f)
    for s, f in b:
        sb[s].add(f)
    shared = [s for s in sa if s in sb]
    if not shared:
        return 0.0, 0
    conf = sum(1 for s in shared if not (sa[s] & sb[s]))
    return conf / len(shared), conf


def main():
    docs_raw, pairs = load(sys.argv[1], sys.argv[2])
    ids = sorted(docs_raw)
    docs = {i: Doc(docs_raw[i]) for i in ids}
    n = len(ids)
    df = Counter()
    for d in docs.values():
        df.update(d.terms)
        df.update("N:" + x for x in d.names)
    idf = defaultdict(lambda: math.log((n + 100) / 1), {t: math.log((n + 100) / (c + 1)) for t, c in df.items()})
    nidf = defaultdict(lambda: math.log((n + 100) / 1), {t[2:]: math.log((n + 100) / (c + 1)) for t, c in df.items() if t.startswith("N:")})
    index = {i: k for k, i in enumerate(ids)}
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    X = vec.fit_transform([docs[i].text for i in ids])
    X1 = TfidfVectorizer(ngram_range=(1, 1), sublinear_tf=True).fit_transform([docs[i].text for i in ids])
    X1s = TfidfVectorizer(ngram_range=(1, 1), sublinear_tf=True, stop_words=list(STOP)).fit_transform([docs[i].text for i in ids])
    X1b = TfidfVectorizer(ngram_range=(1, 1), binary=True, stop_words=list(STOP)).fit_transform([docs[i].text for i in ids])
    X2s = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, stop_words=list(STOP)).fit_transform([docs[i].text for i in ids])
    X2raw = TfidfVectorizer(ngram_range=(1, 2)).fit_transform([docs[i].text for i in ids])
    tvec = TfidfVectorizer(ngram_range=(1, 1), sublinear_tf=True)
    T = tvec.fit_transform([docs[i].title for i in ids])
    lvec = TfidfVectorizer(ngram_range=(1, 1), sublinear_tf=True)
    L = lvec.fit_transform([docs[i].lead for i in ids])

    def cos(M, a, b):
        return float((M[index[a]] @ M[index[b]].T).toarray()[0, 0])

    rows, y, labels, groups, high = [], [], [], [], []
    # groups: connected components over pairs + shingle-containment >= 0.5 among labelled docs
    parent = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a, b):
        parent[find(a)] = find(b)

    ldocs = sorted({p["a"] for p in pairs} | {p["b"] for p in pairs})
    for p in pairs:
        union(p["a"], p["b"])
    for i, x in enumerate(ldocs):
        for z in ldocs[i + 1:]:
            if cont(docs[x].shingles, docs[z].shingles) >= 0.5:
                union(x, z)
    names = None

    def feats(a, b):
        f = {}
        f["tfidf"] = cos(X, a.id, b.id)
        f["title"] = cos(T, a.id, b.id)
        f["tf1"] = cos(X1, a.id, b.id)
        f["tf1s"] = cos(X1s, a.id, b.id)
        f["tf1b"] = cos(X1b, a.id, b.id)
        f["tf2s"] = cos(X2s, a.id, b.id)
        f["tf2raw"] = cos(X2raw, a.id, b.id)
        f["lead"] = cos(L, a.id, b.id)
        f["sh_j"] = jac(a.shingles, b.shingles)
        f["sh_c"] = cont(a.shingles, b.shingles)
        f["wj"] = wjac(a.terms, b.terms, idf)
        f["wc"] = wcont(a.terms, b.terms, idf)
        f["names_wj"] = wjac(a.names, b.names, nidf)
        f["names_wc"] = wcont(a.names, b.names, nidf)
        f["fig_j"] = jac(a.figures, b.figures)
        f["fig_c"] = cont(a.figures, b.figures)
        sc, scn = slot_conflict(a.slots, b.slots)
        f["slot_conf"] = sc
        f["slot_conf_n"] = min(scn, 5) / 5
        fc, fcn = slot_conflict(a.fig_pairs, b.fig_pairs)
        f["figpair_conf"] = min(fcn, 3) / 3
        f["quote_c"] = cont(a.quotes, b.quotes)
        da, db = set(a.days), set(b.days)
        f["wd_conflict"] = float(bool(da) and bool(db) and not (da <= db or db <= da))
        f["first_wd_diff"] = float(bool(a.days) and bool(b.days) and a.days[0] != b.days[0])
        f["len_ratio"] = min(len(a.low), len(b.low)) / max(len(a.low), len(b.low))
        f["back"] = min(abs(a.back - b.back), 3) / 3
        ab = max(aligned_backref(a, b), aligned_backref(b, a))
        f["al_back"] = min(ab, 2) / 2
        sa = sum(1 for p in STRONG_BACK if p in a.text.lower() and p not in b.text.lower())
        sb = sum(1 for p in STRONG_BACK if p in b.text.lower() and p not in a.text.lower())
        f["strong_back_asym"] = min(max(sa, sb), 3) / 3
        f["lead_in_other"] = max(len(a.lead_sh & b.shingles) / max(len(a.lead_sh), 1), len(b.lead_sh & a.shingles) / max(len(b.lead_sh), 1))
        rare = lambda d: {t for t in d.terms if idf[t] >= RARE} | {"N:" + x for x in d.names if nidf[x] >= RARE}
        ra, rb = rare(a), rare(b)
        wt = lambda t: idf[t] if not t.startswith("N:") else nidf[t[2:]]
        inter = sum(wt(t) for t in ra & rb)
        f["rare_c"] = inter / max(min(sum(wt(t) for t in ra), sum(wt(t) for t in rb)), 1e-9)
        f["rare_j"] = inter / max(sum(wt(t) for t in ra | rb), 1e-9)
        c1 = lambda x, y: len(x.first3 & y.shingles) / max(len(x.first3), 1)
        c3 = lambda x, y: len(x.last3 & y.shingles) / max(len(x.last3), 1)
        f["first3_max"] = max(c1(a, b), c1(b, a))
        f["first3_min"] = min(c1(a, b), c1(b, a))
        f["last3_max"] = max(c3(a, b), c3(b, a))
        f["front_bias"] = f["first3_max"] - f["last3_max"]
        for k in (2, 3, 5, 10, 20):
            def spec(d):
                return {t for t in d.terms if df[t] <= k} | {"N:" + x for x in d.names if df["N:" + x] <= k}
            sa_, sb_ = spec(a), spec(b)
            inter = sum(wt(t) for t in sa_ & sb_)
            f[f"spec{k}"] = inter / max(min(sum(wt(t) for t in sa_), sum(wt(t) for t in sb_)), 1e-9)
            f[f"specn{k}"] = min(len(sa_ & sb_), 10) / 10
        for nsent in (1, 2, 3):
            def lead_terms(d):
                w = set()
                for _, ws, _ in d.sents[:nsent]:
                    w |= {t for t in ws if t not in STOP and not t[0].isdigit()}
                return w
            def lc(x, y):
                lt = lead_terms(x)
                tot = sum(idf[t] for t in lt)
                return sum(idf[t] for t in lt if t in y.terms) / tot if tot else 0.0
            u, v = lc(a, b), lc(b, a)
            f[f"lead{nsent}_min"] = min(u, v)
            f[f"lead{nsent}_max"] = max(u, v)
        return f

    for p in pairs:
        f = feats(docs[p["a"]], docs[p["b"]])
        rows.append(f)
        y.append(int(p["same_story"]))
        labels.append(p["label"])
        groups.append(find(p["a"]))
        high.append(p["confidence"] == "high")
    names = list(rows[0])
    Xf = np.array([[r[k] for k in names] for r in rows])
    y = np.array(y)
    gid = {g: i for i, g in enumerate(sorted(set(groups)))}
    FX = np.array([[feats(docs[a], docs[b])[k] for k in names] for a, b in FIXTURE_PAIRS]) if FIXTURE_PAIRS else None
    if FX is not None:
        for (a, b), r in zip(FIXTURE_PAIRS, FX):
            print(a, b, " ".join(f"{k}={v:.2f}" for k, v in zip(names, r)))
    groups = np.array([gid[g] for g in groups])
    print(f"{len(y)} pairs, {y.sum()} positive, {len(gid)} groups")
    # univariate: best-threshold F1 per feature
    for k, name in enumerate(names):
        best = (0, 0)
        for t in sorted(set(Xf[:, k])):
            pred = Xf[:, k] >= t
            for s in (pred, ~pred):
                tp = (s & (y == 1)).sum(); fp = (s & (y == 0)).sum(); fn = ((~s) & (y == 1)).sum()
                f1 = 2 * tp / max(2 * tp + fp + fn, 1)
                if f1 > best[0]:
                    best = (f1, t)
        pos = Xf[y == 1, k]; neg = Xf[y == 0, k]
        print(f"  {name:14} best F1 {best[0]:.3f} at {best[1]:.3f}   pos mean {pos.mean():.3f}  neg mean {neg.mean():.3f}")

    def cv(cols, C=1.0, folds=5, reps=5):
        f1s = []
        allp = []
        for rep in range(reps):
            rng = np.random.RandomState(rep)
            perm = rng.permutation(len(gid))
            g2 = perm[groups]
            pred = np.zeros(len(y), bool)
            for tr, te in GroupKFold(folds).split(Xf, y, g2):
                m = LogisticRegression(C=C, max_iter=2000)
                m.fit(Xf[tr][:, cols], y[tr])
                ptr = m.predict_proba(Xf[tr][:, cols])[:, 1]
                # threshold by F1 on training
                bt, bf = 0.5, -1
                for t in np.arange(0.05, 0.96, 0.05):
                    s = ptr >= t
                    tp = (s & (y[tr] == 1)).sum(); fp = (s & (y[tr] == 0)).sum(); fn = ((~s) & (y[tr] == 1)).sum()
                    f1 = 2 * tp / max(2 * tp + fp + fn, 1)
                    if f1 >= bf:
                        bf, bt = f1, t
                pred[te] = m.predict_proba(Xf[te][:, cols])[:, 1] >= bt
            tp = (pred & (y == 1)).sum(); fp = (pred & (y == 0)).sum(); fn = ((~pred) & (y == 1)).sum()
            f1s.append((tp / max(tp + fp, 1), tp / max(tp + fn, 1), 2 * tp / (2 * tp + fp + fn)))
            allp.append(pred)
        return np.mean(f1s, axis=0), allp[0]

    def show(title, cols, C=1.0):
        (p, r, f), pred = cv([names.index(c) for c in cols], C)
        print(f"{title:40} P {p:.3f} R {r:.3f} F1 {f:.3f}")
        return pred

    if "--rule" in sys.argv:
        expr = sys.argv[sys.argv.index("--rule") + 1]
        for i, p in enumerate(pairs):
            if eval(expr, {}, rows[i]):
                print(("+" if y[i] else "-"), p["label"], p["confidence"], p["a"], p["b"], p["note"][:60])
        return
    if "--rank" in sys.argv:
        cols = [names.index(c) for c in sys.argv[sys.argv.index("--rank") + 1].split(",")]
        prob = np.zeros(len(y))
        for rep in range(5):
            perm = np.random.RandomState(rep).permutation(len(gid))
            for tr, te in GroupKFold(5).split(Xf, y, perm[groups]):
                m = LogisticRegression(C=float(dict(enumerate(sys.argv)).get(sys.argv.index("--rank") + 2, 1)), max_iter=5000)
                m.fit(Xf[tr][:, cols], y[tr])
                prob[te] += m.predict_proba(Xf[te][:, cols])[:, 1] / 5
        if FX is not None:
            m = LogisticRegression(C=float(dict(enumerate(sys.argv)).get(sys.argv.index("--rank") + 2, 1)), max_iter=5000).fit(Xf[:, cols], y)
            print("fixture probabilities:", np.round(m.predict_proba(FX[:, cols])[:, 1], 3), "coef", np.round(m.coef_, 2))
        order = np.argsort(-prob)
        tp = fp = 0
        best = (0, 0)
        for k, i in enumerate(order):
            tp += y[i]; fp += 1 - y[i]
            f1 = 2 * tp / (tp + fp + y.sum())
            if f1 > best[0]:
                best = (f1, prob[i], tp, fp)
            if k < 110:
                p = pairs[i]
                print(f"{prob[i]:.3f} {'+' if y[i] else '-'} {p['label']:8} {p['confidence']:4} {p['a']} {p['b']}  {p['note'][:70]}")
        print("best F1 %.3f at p>=%.3f tp %d fp %d" % best)
        return
    if "--select" in sys.argv:
        chosen = []
        best_f = 0
        while True:
            cands = []
            for c in names:
                if c in chosen:
                    continue
                (pp, rr, ff), _ = cv([names.index(x) for x in chosen + [c]])
                cands.append((ff, pp, rr, c))
            cands.sort(reverse=True)
            ff, pp, rr, c = cands[0]
            if ff <= best_f + 0.002:
                break
            best_f = ff
            chosen.append(c)
            print(f"  + {c:16} P {pp:.3f} R {rr:.3f} F1 {ff:.3f}", flush=True)
        return
    if "--sets" in sys.argv:
        for spec in sys.argv[sys.argv.index("--sets") + 1:]:
            C = 1.0
            if ":" in spec:
                spec, C = spec.split(":"); C = float(C)
            show(f"{spec[:60]} C={C}", spec.split(","), C)
        return
    print("== grouped CV, pairwise ==")
    show("tfidf", ["tfidf"])
    show("current-like", ["wj", "wc", "sh_c", "sh_j", "names_wj", "fig_j", "quote_c", "slot_conf", "wd_conflict", "first_wd_diff"])
    show("all", names)
    for extra in names:
        show(f"tfidf + {extra}", ["tfidf", extra])
    pred = show("all", names)
    for i, p in enumerate(pairs):
        if pred[i] != y[i]:
            print("  miss" if y[i] else "  FP  ", p["label"], p["confidence"], p["a"], p["b"], " ".join(f"{k}={rows[i][k]:.2f}" for k in names))


if __name__ == "__main__":
    main()
