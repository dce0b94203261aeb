#!/usr/bin/env python3
"""Writes the lines of a file to standard output at a steady rate, one flush per line:
a stand-in for a scraper feeding `neardup watch` (see BENCHMARKS.md).

    scripts/pace.py FILE RATE [COUNT] [--wait SECONDS]

RATE is lines per second; COUNT stops early; --wait sleeps first (so that the consumer
has opened its index before the clock starts).
"""
import sys
import time


def main():
    args = [a for a in sys.argv[1:]]
    wait = 0.0
    if "--wait" in args:
        i = args.index("--wait")
        wait = float(args[i + 1])
        del args[i : i + 2]
    if len(args) < 2:
        sys.exit(__doc__)
    path, rate = args[0], float(args[1])
    count = int(args[2]) if len(args) > 2 else None
    time.sleep(wait)
    out = sys.stdout.buffer
    start = time.perf_counter()
    with open(path, "rb") as f:
        for n, line in enumerate(f):
            if count is not None and n >= count:
                break
            due = start + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            out.write(line)
            out.flush()


if __name__ == "__main__":
    try:
        main()
    except BrokenPipeError:
        pass
