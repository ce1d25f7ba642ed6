#!/usr/bin/env bash
# The size of a run's TensorBoard event file against metrics.jsonl and the sample grids, for
# 1,000 toy steps at the defaults (metrics every step, samples every 100), in a temporary run
# folder:
#
#   scripts/event-file-size.sh [DATA] [STEPS]
#
# BIN: the wgangp-tui to run (default: a release build made here).
set -euo pipefail
data=${1:-toy:8gaussians} steps=${2:-1000}
cd "$(dirname "$0")/.."
bin=${BIN:-}
if [ -z "$bin" ]; then
    cargo build --release --quiet
    bin=target/release/wgangp-tui
fi
run=$(mktemp -d)/run
trap 'rm -rf "$(dirname "$run")"' EXIT
"$bin" --no-ui --data "$data" --steps "$steps" --out "$run" 2>/dev/null
events=$(stat -c %s "$run"/events.out.tfevents.*)
pngs=$(cat "$run"/samples/*.png | wc -c)
grids=$(ls "$run"/samples/*.png | wc -l)
echo "$data, $steps steps: event file $events bytes ($((events / 1024)) KB), metrics.jsonl $(stat -c %s "$run/metrics.jsonl") bytes, $grids sample grids of $((pngs / grids / 1024)) KB on average"
