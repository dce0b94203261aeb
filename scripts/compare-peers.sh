#!/usr/bin/env bash
# Side-by-side speed of neardup and the peer tools (datasketch, rensa, gaoya,
# FastSketchLSH) on the same files with the same settings, in one run.
#
#   scripts/compare-peers.sh [--threads N] [--repeat R] FILE...
#
# Defaults: the three corpora of ../shared/data, 2 threads, threshold 0.5, 128
# permutations, word 5-grams, 1 repetition. Needs the peers' virtual environment
# (created on first use with ../shared/bench/setup-peers.sh into .peers-venv, or set
# PEERS_VENV). Prints one JSON line per tool and run, then a table of ratios.
# neardup's time is its whole job as a process (read, fingerprint, LSH, verify, cluster,
# write clusters with their pairs); the peers' `seconds_total` leaves out their loading.
# When a Python with the neardup package is there (NEARDUP_PYTHON, else
# target/py-venv/bin/python after `maturin develop --release`), the package is timed as
# the peers are too (scripts/python-bench.py: records loaded first, then one call).
set -euo pipefail
cd "$(dirname "$0")/.."
threads=2
repeat=1
files=()
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    *) files+=("$1"); shift ;;
  esac
done
data=${NEARDUP_DATA:-../shared/data}
[ ${#files[@]} -gt 0 ] || files=("$data/reuters21578.jsonl" "$data/bbc-news.jsonl" "$data/20newsgroups.jsonl.gz")
bench=${PEERS_BENCH:-../shared/bench}
venv=${PEERS_VENV:-.peers-venv}
[ -x "$venv/bin/python" ] || "$bench/setup-peers.sh" "$venv" >&2
nd_python=${NEARDUP_PYTHON:-target/py-venv/bin/python}

cargo build --release --quiet
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
results="$out/results.jsonl"
for run in $(seq "$repeat"); do
  /usr/bin/time -f '%e %M' -o "$out/time" \
    target/release/neardup cluster --quiet --threads "$threads" --threshold 0.5 --num-perm 128 \
    --shingle words:5 -o "$out/clusters.jsonl" "${files[@]}"
  read -r secs rss_kb < "$out/time"
  target/release/neardup pairs --threads "$threads" --threshold 0.5 "${files[@]}" 2> "$out/summary" > /dev/null
  docs=$(grep -o '[0-9]* documents,' "$out/summary" | head -1 | grep -o '[0-9]*')
  pairs=$(grep -o '[0-9]* verified pairs' "$out/summary" | grep -o '[0-9]*')
  clusters=$(wc -l < "$out/clusters.jsonl")
  mb=$(python3 -c "import sys; print(round(sum(__import__('os').path.getsize(f) for f in sys.argv[1:])/1e6,1))" "${files[@]}")
  echo "{\"peer\": \"neardup\", \"version\": \"$(target/release/neardup --version | cut -d' ' -f2)\", \"run\": $run, \"threads\": $threads, \"docs\": $docs, \"seconds_total\": $secs, \"docs_per_s\": $(python3 -c "print(round($docs/$secs,1))"), \"verified_pairs\": $pairs, \"clusters\": $clusters, \"peak_rss_mb\": $(python3 -c "print(round($rss_kb/1024,1))"), \"input_file_mb\": $mb}" | tee -a "$results"
  "$venv/bin/python" "$bench/bench_peers.py" "${files[@]}" --threshold 0.5 --num-perm 128 --ngram 5 \
    --threads "$threads" --peers datasketch,rensa,gaoya,fastsketch | sed "s/^{/{\"run\": $run, /" | tee -a "$results"
  if "$nd_python" -c "import neardup" 2>/dev/null; then
    "$nd_python" scripts/python-bench.py "${files[@]}" --threads "$threads" --repeat 1 2>/dev/null \
      | sed "s/\"run\": 1, //; s/^{/{\"run\": $run, /" | tee -a "$results"
  fi
done
python3 - "$results" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    if "seconds_total" in r:
        by.setdefault(r["peer"], []).append(r)
nd = statistics.median(r["seconds_total"] for r in by["neardup"])
py = by.get("neardup (Python)")
py = statistics.median(r["seconds_total"] for r in py) if py else None
print(f"\n{'tool':<17} {'median s':>9} {'docs/s':>10} {'peak RSS MB':>12} {'neardup is':>12}"
      + (f" {'the Python package is':>22}" if py else ""))
for peer, rs in by.items():
    s = statistics.median(r["seconds_total"] for r in rs)
    docs = rs[0]["docs"]
    rss = max(r["peak_rss_mb"] for r in rs)
    ours = peer.startswith("neardup")
    ratio = "" if ours else f"{s / nd:.1f}x faster"
    py_ratio = "" if ours or not py else f"{s / py:.1f}x faster"
    print(f"{peer:<17} {s:>9.3f} {docs / s:>10.0f} {rss:>12.1f} {ratio:>12}"
          + (f" {py_ratio:>22}" if py else ""))
PY
