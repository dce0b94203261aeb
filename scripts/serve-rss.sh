#!/bin/bash
# Resident memory of `neardup serve` as the same articles are sent again and again (re-sent
# articles are not stored twice, so the index does not grow): what grows is per-answer
# bookkeeping. Usage: scripts/serve-rss.sh NEARDUP_BINARY PORT [REUTERS_JSONL]
set -euo pipefail
BIN=$1; PORT=$2; INPUT=${3:-${NEARDUP_DATA:-../shared/data}/reuters21578.jsonl}
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$(realpath "$BIN"); INPUT=$(realpath "$INPUT")
cd "$(mktemp -d)"
rm -rf rss-$PORT; $BIN index create -q rss-$PORT; $BIN index add -q rss-$PORT "$INPUT" > /dev/null
$BIN serve rss-$PORT --listen 127.0.0.1:$PORT -q 2>/dev/null & PID=$!
sleep 0.5
for k in 1 2 3 4; do
for i in $(seq 25); do python3 "$HERE/serve-bench.py" "$INPUT" --url http://127.0.0.1:$PORT --clients 4 --batch 100 > /dev/null; done
echo "after $((k*25)) rounds: $(grep VmRSS /proc/$PID/status | awk '{print $2}') kB"
done
kill -TERM $PID; wait $PID
rm -rf "$PWD"
