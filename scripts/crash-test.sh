#!/usr/bin/env bash
# Crash test of the feed index (acceptance criterion 1 of the feed issue): adds a corpus
# with `index add` and `watch` runs killed by SIGKILL at random moments, then checks that
# every acknowledged article is in the index with the verdict it was acknowledged with,
# that the index opens after every kill, and that the finished index answers exactly like
# one built without crashes (at the copy and the story level); then kills `index compact`
# and `index repair` at random moments.
#
#     scripts/crash-test.sh [ROUNDS] [SEED]      # default: 200 kills, seed 1
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-200}"
seed="${2:-1}"
NEARDUP_CRASH_ROUNDS="$rounds" NEARDUP_CRASH_SEED="$seed" \
  cargo test --test tests -- --nocapture \
  feed::acknowledged_articles_survive_sigkill_at_random_moments feed::compaction_survives_sigkill \
  feed::repair_survives_sigkill \
  feed::story_level_acknowledged_articles_survive_sigkill_at_random_moments
