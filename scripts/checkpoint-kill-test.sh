#!/usr/bin/env bash
# Kill test of resumable batch runs (`--checkpoint DIR`): runs `neardup cluster` on INPUT
# with a checkpoint, SIGKILLs it at a random moment ROUNDS times (each run resuming from
# what the ones before kept, torn frames included), lets the last run finish, and checks
# that its clusters are byte for byte those of a run without a checkpoint.
#
#     scripts/checkpoint-kill-test.sh INPUT [ROUNDS] [MAX_SECONDS] [LEVEL]
#     # defaults: 5 kills, each within 3 s of its start, near-copy level
set -euo pipefail
input="${1:?usage: $0 INPUT [ROUNDS] [MAX_SECONDS] [LEVEL]}"
rounds="${2:-5}"
max_seconds="${3:-3}"
level="${4:-near-copy}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
neardup="$root/target/release/neardup"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$neardup" cluster --quiet --level "$level" "$input" -o "$work/plain.jsonl"
for round in $(seq 1 "$rounds"); do
  "$neardup" cluster --quiet --level "$level" --checkpoint "$work/ck" "$input" \
    -o "$work/resumed.jsonl" &
  pid=$!
  sleep "$(awk -v max="$max_seconds" -v r="$RANDOM" 'BEGIN { printf "%.2f", max * r / 32768 }')"
  if kill -9 "$pid" 2>/dev/null; then
    wait "$pid" 2>/dev/null || true
    echo "round $round: killed, $(stat -c %s "$work/ck/fingerprints.log" 2>/dev/null || echo 0) bytes in the checkpoint"
  else
    wait "$pid"
    echo "round $round: finished before the kill"
  fi
done
"$neardup" cluster --level "$level" --checkpoint "$work/ck" "$input" -o "$work/resumed.jsonl" \
  2>&1 | grep "checkpoint"
cmp "$work/plain.jsonl" "$work/resumed.jsonl"
echo "after $rounds kills: clusters identical to a run without a checkpoint"
