#!/usr/bin/env bash
# Our training speed against the PyTorch reference on this machine, in one run: the two
# alternate, config by config, round by round, so that drifts of the machine hit both alike.
#
#   scripts/bench-vs-pytorch.sh PYTHON REFERENCE_SCRIPT [ROUNDS] [THREADS]
#
# PYTHON: a Python with torch (see the reference's README for the one-line set-up);
# REFERENCE_SCRIPT: wgangp_ref.py. Configs: CONFIGS (default "toy mnist cifar32 face64").
# Iterations per run: ITERS_TOY (default 100), ITERS_MNIST (15), ITERS_CIFAR32 (3) and
# ITERS_FACE64 (3), after one untimed iteration (three for toy and mnist). Prints each run's
# figures, then a table of medians and the ratios ours / PyTorch of generator iterations per
# second.
set -euo pipefail
if [ $# -lt 2 ]; then
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
python=$1 ref=$2 rounds=${3:-3} threads=${4:-2}
configs=${CONFIGS:-toy mnist cifar32 face64}
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/wgangp-tui
results=$(mktemp)
trap 'rm -f "$results"' EXIT

for round in $(seq 1 "$rounds"); do
    for config in $configs; do
        case $config in
            toy) iters=${ITERS_TOY:-100} warmup=3 ;;
            mnist) iters=${ITERS_MNIST:-15} warmup=3 ;;
            cifar32) iters=${ITERS_CIFAR32:-3} warmup=1 ;;
            face64) iters=${ITERS_FACE64:-3} warmup=1 ;;
            *) echo "unknown config: $config" >&2; exit 2 ;;
        esac
        ours=$("$bin" bench --config "$config" --iters "$iters" --warmup "$warmup" --threads "$threads")
        echo "$ours" | tee -a "$results"
        # No split of the critic step: it would add untimed passes to the reference's run.
        theirs=$("$python" "$ref" --config "$config" --iters "$iters" --warmup "$warmup" \
            --threads "$threads" --breakdown-steps 0 2>/dev/null | sed -n 's/^RESULT //p')
        echo "$theirs" | sed 's/^{/{"impl": "pytorch", /' | tee -a "$results"
    done
done

"$python" - "$results" "$threads" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
configs = list(dict.fromkeys(r["config"] for r in runs))
print(f"\n{len(runs) // (2 * len(configs))} rounds, {sys.argv[2]} threads")
print("| config | ours it/s | PyTorch it/s | ratio ours/PyTorch | per round | ours peak RSS | PyTorch peak RSS |")
print("|---|---|---|---|---|---|---|")
flops = []
for config in configs:
    ours = [r for r in runs if r["config"] == config and r["impl"] == "wgangp-tui"]
    theirs = [r for r in runs if r["config"] == config and r["impl"] == "pytorch"]
    o = statistics.median(r["gen_iters_per_s_median"] for r in ours)
    t = statistics.median(r["gen_iters_per_s_median"] for r in theirs)
    per = ", ".join(f"{a['gen_iters_per_s_median'] / b['gen_iters_per_s_median']:.2f}" for a, b in zip(ours, theirs))
    rss_o = max(r["peak_rss_mb"] for r in ours)
    rss_t = max(r["peak_rss_mb"] for r in theirs)
    print(f"| {config} | {o:.3f} | {t:.3f} | {o / t:.2f} | {per} | {rss_o:.0f} MB | {rss_t:.0f} MB |")
    gflop = ours[0]["gflop_per_iter"]
    peak = statistics.median(r["peak_gflops"] for r in ours)
    flops.append(f"| {config} | {gflop:.1f} | {gflop * o:.0f} | {gflop * t:.0f} | {peak:.0f} | {gflop * o / peak:.2f} | {gflop * t / peak:.2f} |")
print("\nFloating-point work of one generator iteration (our matrix products) at each median rate,")
print("against this machine's f32 matrix-product peak on the same threads (2048^3, our kernels):")
print("| config | GFLOP per iteration | ours GFLOP/s | PyTorch GFLOP/s (same work) | peak GFLOP/s | ours / peak | PyTorch / peak |")
print("|---|---|---|---|---|---|---|")
print("\n".join(flops))
PY
