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
`--interrupt-after S` sends the process SIGINT (Ctrl-C) S seconds into each call and
prints how soon after it the call raised KeyboardInterrupt, and the stages it began.
"""

import argparse
import gzip
import json
import os
import resource
import signal
import statistics
import sys
import threading
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
    ap.add_argument("--interrupt-after", type=float, metavar="S",
                    help="send SIGINT S seconds into each call; time how soon it stops")
    a = ap.parse_args()

    started = time.perf_counter()
    records = [r for path in a.files for r in load(path)]
    loading = time.perf_counter() - started
    calls = []
    progress = (lambda *call: calls.append(call)) if a.progress else None
    options = dict(level=a.level, threshold=a.threshold, threads=a.threads)
    job = getattr(neardup, a.job)
    if a.interrupt_after is not None:
        interrupt(job, records, options, a)
        return
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


def interrupt(job, records, options, a):
    """Each run: SIGINT `a.interrupt_after` seconds in, then the time to KeyboardInterrupt."""
    for run in range(1, a.repeat + 1):
        stages = []
        progress = lambda stage, done, total: stages.append(stage) if stage not in stages else None
        sent = []

        def send():
            sent.append(time.perf_counter())
            os.kill(os.getpid(), signal.SIGINT)

        timer = threading.Timer(a.interrupt_after, send)
        t0 = time.perf_counter()
        timer.start()
        finished = stopped = None
        try:
            job(records, progress=progress, **options)
            finished = time.perf_counter()
            # Finished first: a signal sent since must not end the script.
            timer.cancel()
            timer.join()
            time.sleep(0.2)
        except KeyboardInterrupt:
            if finished is None:
                stopped = time.perf_counter()
        timer.join()
        row = {"job": a.job, "level": a.level, "run": run, "signal_after_s": a.interrupt_after,
               "stages_begun": stages}
        if finished is not None:
            row["finished_s"] = round(finished - t0, 3)
        else:
            row["stopped_s_after_signal"] = round(stopped - sent[0], 3)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
