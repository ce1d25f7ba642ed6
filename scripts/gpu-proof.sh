#!/usr/bin/env bash
# The proof run on a GPU machine, at most 6 minutes, with a binary built here by
#   cargo build --release --features cuda
# (cudarc loads CUDA's libraries at run time: the build needs nothing of CUDA) and carried to
# the GPU machine with the repository (target/release/wgangp-tui).
#
#   scripts/gpu-proof.sh [BINARY]
#
# Everything it prints is also written to $OUT/gpu-proof.txt (OUT defaults to ./gpu-proof),
# the bench lines to $OUT/bench.jsonl. In order, each step under a time limit:
#   1. the machine (nvidia-smi) and the CUDA libraries the binary will load;
#   2. `gpu-check --device cuda`: one whole critic step's gradients (the penalty's included)
#      and one generator step's, for every family at its benchmark batch, GPU against the CPU
#      and both against the exact (f64) gradients, on 3 batches each; then every kernel on the
#      GPU against the CPU twin (the same source compiled by g++): each family's gradients at
#      a small batch, the toy nets in each penalty mode, and the update kernels. (The twin
#      against the CPU, `gpu-check --device twin`, is what CI runs; it takes minutes.)
#   3. a headless 100-step MNIST run on the GPU;
#   4. the bench on the GPU against shared/bench/wgangp_ref.py --device cuda (PYTHON, default
#      python3, with CUDA torch): toy, MNIST and face64, 3 alternating rounds each, as a
#      table.
# The GPU needs a driver for CUDA 13 and libnvrtc.so.13, libcublas.so.13, libcublasLt.so.13 on
# LD_LIBRARY_PATH or beside PyTorch (nvidia/cu13/lib, found and added here).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath -m "${1:-target/release/wgangp-tui}")
OUT=${OUT:-gpu-proof}
PYTHON=${PYTHON:-python3}
REF=${REF:-../shared/bench/wgangp_ref.py}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu-proof.txt") 2>&1
say() { printf '\n== %s\n' "$*"; }
step() { local limit=$1; shift; timeout "$limit" "$@"; local rc=$?; [ $rc -eq 0 ] || echo "(exit $rc)"; return $rc; }

[ -x "$BIN" ] || { echo "no binary at $BIN"; exit 2; }
say "machine"
step 20 nvidia-smi
lib=$("$PYTHON" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13", "lib"))' 2>/dev/null)
[ -n "$lib" ] && [ -d "$lib" ] && export LD_LIBRARY_PATH="$lib:${LD_LIBRARY_PATH:-}"
echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"

say "gpu-check --device cuda (GPU against CPU and exact; kernels against the twin)"
step 180 "$BIN" gpu-check --device cuda

say "100 MNIST steps on the GPU, headless"
rm -rf "$OUT/run"
step 60 "$BIN" --no-ui --steps 100 --device cuda --out "$OUT/run" --no-tensorboard

say "bench on the GPU: ours against PyTorch's reference, 3 alternating rounds"
: >"$OUT/bench.jsonl"
for config in toy mnist face64; do
    iters=200
    [ "$config" = face64 ] && iters=20
    for round in 1 2 3; do
        step 40 "$BIN" bench --config "$config" --device cuda --iters $iters | tee -a "$OUT/bench.jsonl"
        echo
        step 40 "$PYTHON" "$REF" --config "$config" --device cuda --iters $iters |
            sed 's/^{/{"impl": "pytorch", /' | tee -a "$OUT/bench.jsonl"
    done
done
"$PYTHON" - "$OUT/bench.jsonl" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
print("| config | ours it/s | PyTorch it/s | ratio | per round | MB up / iter | GPU peak MB |")
print("|---|---|---|---|---|---|---|")
for config in ("toy", "mnist", "face64"):
    ours = [r for r in runs if r.get("impl") == "wgangp-tui" and r["config"] == config]
    theirs = [r for r in runs if r.get("impl") == "pytorch" and r["config"] == config]
    if not ours or not theirs:
        continue
    o = statistics.median(r["gen_iters_per_s_median"] for r in ours)
    t = statistics.median(r["gen_iters_per_s_median"] for r in theirs)
    per = ", ".join(f"{a['gen_iters_per_s_median'] / b['gen_iters_per_s_median']:.2f}" for a, b in zip(ours, theirs))
    print(f"| {config} | {o:.1f} | {t:.1f} | {o / t:.2f} | {per} | "
          f"{ours[0]['host_to_device_mb_per_iter']:.2f} | {max(r['device_peak_mb'] for r in ours):.0f} |")
PY
