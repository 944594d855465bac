#!/usr/bin/env bash
# A/B: the per-request rows of `bench/run.sh --quick` for an earlier revision and for this work tree,
# run interleaved (before, after, before, after, ...) so that both see the same machine; a noisy
# 2-core host drifts by tens of percent within minutes, which a before-run and a later after-run
# would read as a regression or a gain. Prints, per row, each round's median and the median of the
# rounds for each side.
#
#   bench/ab.sh REV [ROUNDS]        e.g. bench/ab.sh febdcd6 3
#
# REV is checked out into a temporary git worktree (removed on exit); each side builds itself
# (bench/run.sh does). Run as root, on an otherwise idle machine. Raw outputs stay in $AB_OUT
# (default: a temporary directory, printed at the end).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REV=${1:?usage: bench/ab.sh REV [ROUNDS]}
ROUNDS=${2:-3}
OUT=${AB_OUT:-$(mktemp -d /tmp/stockade-ab.XXXXXX)}
OLD=$(mktemp -d /tmp/stockade-ab-tree.XXXXXX)
cleanup() {
  git -C "$ROOT" worktree remove --force "$OLD" >/dev/null 2>&1 || rm -rf "$OLD"
}
trap cleanup EXIT
rmdir "$OLD"
git -C "$ROOT" worktree add --detach -q "$OLD" "$REV"
if [ -d "$ROOT/tests/e2b-js/node_modules" ] && [ ! -d "$OLD/tests/e2b-js/node_modules" ]; then
  cp -a "$ROOT/tests/e2b-js/node_modules" "$OLD/tests/e2b-js/"
fi
ARGS=(--quick --no-pool --no-density --no-sustained --no-load)
for i in $(seq 1 "$ROUNDS"); do
  for side in before after; do
    dir=$ROOT; [ "$side" = before ] && dir=$OLD
    echo "[ab] round $i: $side" >&2
    (cd "$dir" && bash bench/run.sh "${ARGS[@]}" >"$OUT/$side-$i.md" 2>"$OUT/$side-$i.err")
  done
done

ROWS=(
  '`/usr/bin/python3 -c pass` (bare)'
  'create → first `echo` (E2B JS SDK, no pool)'
  '`echo hi` in a running sandbox (E2B JS SDK)'
  'the same `echo` as a raw Connect call'
  'agent alone: exec'
  '`echo hi` in a running sandbox (Stockade Java SDK)'
  '`1+1` in a warm context'
  '`1+1` as raw `POST /execute`'
  '`1+1` through the agent alone'
)
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
echo "A/B at $(date -u +%FT%TZ): before = $REV, after = $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet || echo '+changes'), $ROUNDS rounds interleaved"
echo
echo "| row (median ms per round) | before | after | before, median | after, median |"
echo "|---|---|---|---:|---:|"
for row in "${ROWS[@]}"; do
  line="| $row |"
  for side in before after; do
    vals=""
    for i in $(seq 1 "$ROUNDS"); do
      v=$(grep -F -- "$row" "$OUT/$side-$i.md" | head -1 | awk -F'|' '{gsub(/ /, "", $4); print $4}')
      vals="$vals ${v:-?}"
    done
    line="$line ${vals# } |"
    eval "vals_$side=\"\$vals\""
  done
  for side in before after; do
    eval "vals=\$vals_$side"
    line="$line $(echo "$vals" | tr ' ' '\n' | grep -E '^[0-9.]+$' | median) |"
  done
  echo "$line"
done
echo
echo "raw outputs: $OUT" >&2
