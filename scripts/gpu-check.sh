#!/usr/bin/env bash
# The checks to run on a GPU machine, in one go, with a CUDA binary built elsewhere by
# scripts/build-cuda.sh (GPU machines here have the driver, CUDA and PyTorch, but no Rust).
#
#   scripts/gpu-check.sh [DIST] [REFERENCE_SCRIPT]
#
# DIST: build-cuda.sh's output folder (default target/cuda-dist: copy it there and carry it);
# REFERENCE_SCRIPT: the PyTorch reference wgangp_ref.py (default DIST/wgangp_ref.py).
# PYTHON (default python3) must have torch with CUDA. Prints, in order:
#   1. the machine: GPU, driver, glibc; the CUDA libraries found beside PyTorch; `ldd`;
#   2. NVRTC compiling the binary's conv kernels (kernels.cu);
#   3. `wgangp-tui gpu-check`: one critic step's gradient (the penalty's included) and one
#      generator step's, toy and MNIST nets, on the GPU against the CPU kernels (median over
#      3 batches of the largest relative error of a tensor; fails above 1e-3);
#   4. a headless MNIST training run on the GPU (STEPS, default 100 generator steps);
#   5. the benchmark, both configs: ours on the GPU and on the CPU (2 threads and all cores),
#      PyTorch's reference on the GPU and on 2 CPU threads, as a table.
# Stops at the first failing check with what failed. ITERS_TOY / ITERS_MNIST (200 / 30) set
# the benchmark's length; SKIP_GPU=1 skips the steps that need a GPU (to rehearse the rest
# on a machine without one).
set -uo pipefail
say() { printf '\n== %s\n' "$*"; }
die() { printf 'gpu-check: %s\n' "$*" >&2; exit 1; }
# Paths as given, from where the script was started; then the repository root.
DIST=$(realpath -m "${1:-$(dirname "$0")/../target/cuda-dist}")
REF=$(realpath -m "${2:-$DIST/wgangp_ref.py}")
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
BIN=$DIST/wgangp-tui
STEPS=${STEPS:-100}
gpu() { [ "${SKIP_GPU:-0}" != 1 ]; }

[ -x "$BIN" ] || die "no binary at $BIN (run scripts/build-cuda.sh and copy its dist folder)"
[ -f "$REF" ] || die "no reference script at $REF (copy shared/bench/wgangp_ref.py there or give its path)"

say "machine"
if gpu; then
    nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv || die "nvidia-smi failed"
fi
ldd --version | head -1
nproc

say "CUDA libraries (libnvrtc.so.13, libcublas.so.13, libcublasLt.so.13) beside PyTorch"
libs=$("$PYTHON" - <<'PY'
import glob, os
import torch
roots = [os.path.dirname(torch.__file__)]
try:
    import nvidia
    roots += list(nvidia.__path__)
except ImportError:
    pass
dirs = set()
for root in roots:
    for name in ("libnvrtc.so.13", "libcublas.so.13", "libcublasLt.so.13"):
        for path in glob.glob(os.path.join(root, "**", name), recursive=True):
            dirs.add(os.path.dirname(path))
print(":".join(sorted(dirs)))
PY
) || die "cannot import torch with $PYTHON"
echo "${libs:-none found}"
export LD_LIBRARY_PATH=$(printf '%s' "${libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" | sed 's/^://')
ldd "$BIN"
if [ "$(ldd "$BIN" | grep -c "not found")" != 0 ]; then
    die "libraries missing (above); CUDA 12 libraries cannot stand in for 13"
fi

say "NVRTC compiles the conv kernels"
nvrtc=$(echo "$LD_LIBRARY_PATH" | tr ':' '\n' | while read -r d; do [ -e "$d/libnvrtc.so.13" ] && echo "$d/libnvrtc.so.13"; done | head -n 1)
[ -n "$nvrtc" ] || die "no libnvrtc.so.13"
"$PYTHON" "$DIST/nvrtc-check.py" "$nvrtc" "$DIST/kernels.cu" || die "NVRTC cannot compile kernels.cu"

if gpu; then
    say "gradients on the GPU against the CPU"
    "$BIN" gpu-check || die "gpu-check failed (figures above)"

    say "headless MNIST training on the GPU, $STEPS steps"
    run=$(mktemp -d)
    start=$(date +%s.%N)
    "$BIN" --no-ui --device cuda --steps "$STEPS" --seed 1 --sample-every "$STEPS" --out "$run/mnist" \
        || die "the training run failed"
    awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "wall time: %.1f s\n", b - a }'
    tail -n 1 "$run/mnist/metrics.jsonl"
    ls "$run/mnist" "$run/mnist/samples"
fi

say "benchmarks"
results=$(mktemp)
for config in toy mnist; do
    iters=${ITERS_TOY:-200}
    [ "$config" = mnist ] && iters=${ITERS_MNIST:-30}
    if gpu; then
        "$BIN" bench --config "$config" --iters "$iters" --device cuda \
            | sed 's/^{/{"where": "ours cuda", /' | tee -a "$results" || die "bench on the GPU failed"
    fi
    for threads in 2 "$(nproc)"; do
        "$BIN" bench --config "$config" --iters "$iters" --threads "$threads" --device cpu \
            | sed 's/^{/{"where": "ours cpu", /' | tee -a "$results" || die "bench on the CPU failed"
    done
    devices=cpu
    gpu && devices="cuda cpu"
    for device in $devices; do
        log=$(mktemp)
        "$PYTHON" "$REF" --config "$config" --iters "$iters" --warmup 5 --threads 2 --device "$device" 2>"$log" \
            | sed -n "s/^RESULT {/{\"where\": \"pytorch $device\", /p" | tee -a "$results" \
            || { cat "$log" >&2; die "PyTorch's reference on $device failed"; }
        rm -f "$log"
    done
done
"$PYTHON" - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("\n| config | run | threads | generator it/s | critic step ms | peak RSS MB | MB to GPU / it | MB from GPU / it | copies / it |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['config']} | {r['where']} | {r.get('threads', '')} | {r['gen_iters_per_s_median']:.3f} "
          f"| {r['critic_step_ms_median']:.1f} | {r.get('peak_rss_mb', 0):.0f} "
          f"| {r.get('host_to_device_mb_per_iter', '')} | {r.get('device_to_host_mb_per_iter', '')} "
          f"| {r.get('copies_per_iter', '')} |")
PY
rm -f "$results"
