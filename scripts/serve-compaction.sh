#!/bin/bash
# How long answers wait while `neardup serve` compacts a windowed index
# (--compact-every): a copy of INDEX is served with a look every second, and one client
# queries QUERIES one article per request (POST /query, nothing stored) while the
# compaction runs. Prints the client's answer times (median, p99, max ms) and the
# server's "compacted" line.
# Usage: scripts/serve-compaction.sh NEARDUP_BINARY INDEX QUERIES_JSONL PORT
set -euo pipefail
BIN=$(realpath "$1"); INDEX=$(realpath "$2"); QUERIES=$(realpath "$3"); PORT=$4
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d -p "$(dirname "$INDEX")")
trap 'rm -rf "$WORK"' EXIT
cp -r "$INDEX" "$WORK/idx"; sync  # a fresh copy is not yet on disk: syncing it is not compaction
cat "$QUERIES" "$QUERIES" "$QUERIES" > "$WORK/queries.jsonl"
"$BIN" serve "$WORK/idx" --listen 127.0.0.1:"$PORT" --compact-every 1s 2> "$WORK/serve.err" &
PID=$!
until curl -sf -o /dev/null http://127.0.0.1:"$PORT"/health; do sleep 0.05; done
python3 "$HERE/serve-bench.py" "$WORK/queries.jsonl" --url http://127.0.0.1:"$PORT" \
    --clients 1 --batch 1 --path /query
sleep 0.5
kill -TERM $PID; wait $PID || true
grep compacted "$WORK/serve.err"
