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
#   2. `wgangp-tui gpu-check`: dfdx's CUDA device, products, activations and their gradients
#      on the GPU against the CPU (relative error, must be <= 1e-3);
#   3. our CPU benchmark on this machine (2 threads and all cores) and PyTorch's reference on
#      the GPU and on 2 CPU threads, both configs, as a table.
# Stops at the first failing check with what failed. ITERS_TOY / ITERS_MNIST (200 / 30) set
# the benchmark's length; SKIP_GPU=1 skips step 2 (to rehearse the rest on a machine without
# a GPU).
set -uo pipefail
cd "$(dirname "$0")/.."
DIST=${1:-target/cuda-dist}
REF=${2:-$DIST/wgangp_ref.py}
PYTHON=${PYTHON:-python3}
BIN=$DIST/wgangp-tui
say() { printf '\n== %s\n' "$*"; }
die() { printf 'gpu-check: %s\n' "$*" >&2; exit 1; }

[ -x "$BIN" ] || die "no binary at $BIN (run scripts/build-cuda.sh and copy its dist folder)"

say "machine"
nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv || die "nvidia-smi failed"
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
export LD_LIBRARY_PATH=${libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
ldd "$BIN"
if ldd "$BIN" | grep -q "not found"; then
    die "libraries missing (above); CUDA 12 libraries cannot stand in for 13"
fi

# dfdx's run-time kernels include cuda_fp16.h from the path baked in at build time.
baked=$(cat "$DIST/INCLUDE_PATH" 2>/dev/null || echo /tmp/wgangp-cuda/cuda/include)
mkdir -p "$baked" && cp "$DIST"/include/cuda_fp16.h* "$baked"/ || die "cannot recreate $baked"

if [ "${SKIP_GPU:-0}" != 1 ]; then
    say "dfdx on the GPU against the CPU"
    check=$("$BIN" gpu-check) || die "gpu-check failed"
    echo "$check"
    "$PYTHON" -c 'import json,sys; e=json.loads(sys.argv[1])["grad_rel_err"]; sys.exit(0 if e <= 1e-3 else 1)' "$check" \
        || die "GPU gradients differ from the CPU's by more than 1e-3"
fi

say "benchmarks"
results=$(mktemp)
for config in toy mnist; do
    iters=${ITERS_TOY:-200}
    [ "$config" = mnist ] && iters=${ITERS_MNIST:-30}
    for threads in 2 "$(nproc)"; do
        "$BIN" bench --config "$config" --iters "$iters" --threads "$threads" \
            | sed 's/^{/{"where": "ours cpu", /' | tee -a "$results"
    done
    for device in cuda cpu; do
        "$PYTHON" "$REF" --config "$config" --iters "$iters" --warmup 5 --threads 2 --device "$device" 2>/dev/null \
            | sed -n "s/^RESULT {/{\"where\": \"pytorch $device\", /p" | tee -a "$results"
    done
done
"$PYTHON" - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("\n| config | run | threads | generator it/s | critic step ms | peak RSS MB |")
print("|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['config']} | {r['where']} | {r.get('threads', '')} | {r['gen_iters_per_s_median']:.3f} "
          f"| {r['critic_step_ms_median']:.1f} | {r.get('peak_rss_mb', 0):.0f} |")
PY
rm -f "$results"
