#!/usr/bin/env python3
"""Times the Python package's neardup.cluster as the peers are timed: the records are
loaded into Python dicts first (not timed), then the whole job is one call.

    (cd python && maturin develop --release)       # in a venv, once per change
    python scripts/python-bench.py ../shared/data/{reuters21578.jsonl,bbc-news.jsonl,20newsgroups.jsonl.gz} \
        --threads 2 --repeat 3

Prints one JSON line per run: seconds of the whole call, and of its two parts (the
native call, which reads the records' fields and runs; the clusters read back into
dicts). `--job dedup` times neardup.dedup instead (the whole call only), and
`--progress` passes a callback that counts its calls, to measure what progress costs.
"""

import argparse
import gzip
import json
import resource
import statistics
import sys
import time

import neardup
from neardup import _native


def load(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--level", default="near-copy")
    ap.add_argument("--job", choices=["cluster", "dedup"], default="cluster")
    ap.add_argument("--progress", action="store_true", help="pass a progress callback")
    ap.add_argument("--total-only", action="store_true",
                    help="time the whole call alone (for builds whose native part differs)")
    a = ap.parse_args()

    started = time.perf_counter()
    records = [r for path in a.files for r in load(path)]
    loading = time.perf_counter() - started
    calls = []
    progress = (lambda *call: calls.append(call)) if a.progress else None
    options = dict(level=a.level, threshold=a.threshold, threads=a.threads)
    job = getattr(neardup, a.job)
    times = []
    for run in range(1, a.repeat + 1):
        t0 = time.perf_counter()
        calls.clear()
        result = job(records, progress=progress, **options)
        total = time.perf_counter() - t0
        row = {"peer": "neardup (Python)", "job": a.job, "run": run, "docs": len(records),
               "seconds_total": round(total, 3), "docs_per_s": round(len(records) / total),
               "results": len(result), "progress_calls": len(calls)}
        times.append(total)
        if a.total_only or a.job != "cluster":
            print(json.dumps(row), flush=True)
            continue
        # The same call's parts, timed one by one.
        t1 = time.perf_counter()
        output = _native.analyse(records, "clusters", neardup._run(options), progress)
        t2 = time.perf_counter()
        decoded = [json.loads(line) for line in output.splitlines()]
        t3 = time.perf_counter()
        assert decoded == result
        print(json.dumps({
            **row,
            "native_s": round(t2 - t1, 3),
            "decode_s": round(t3 - t2, 3), "clusters": len(result),
            "verified_pairs": sum(len(c["pairs"]) for c in result),
            "loading_s_not_counted": round(loading, 3),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }), flush=True)
    print(f"median {statistics.median(times):.3f} s over {len(times)} runs", file=sys.stderr)


if __name__ == "__main__":
    main()
