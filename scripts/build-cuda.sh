#!/usr/bin/env bash
# Build wgangp-tui with the `cuda` feature (cudarc 0.9: driver API, cuBLAS, NVRTC) on a machine
# WITHOUT a GPU or CUDA toolkit, from PyPI's CUDA 13.0 wheels, and gather what a GPU machine
# needs to run it.
#
#   scripts/build-cuda.sh
#
# Steps (each is skipped when already done, so a rerun is cheap):
#   1. a venv in $WORK/venv with the pinned CUDA 13.0 wheels (runtime headers, NVRTC, cuBLAS);
#   2. a CUDA_ROOT-shaped folder $WORK/cuda: include linked into the wheels
#      nvidia/cu13; lib64/lib{nvrtc,cublas,cublasLt}.so linked to their .so.13;
#   3. a libcuda LINK stub (soname libcuda.so.1) in $WORK/cuda/lib64/stubs, generated from the
#      driver functions that cudarc declares (all return 34 = CUDA_ERROR_STUB_LIBRARY, except
#      cuGetErrorString/cuGetErrorName, which succeed). Never ship it or put it on
#      LD_LIBRARY_PATH: it would hide the real driver;
#   4. `cargo build --release --locked --features cuda` into $CARGO_TARGET_DIR;
#   5. $DIST: the binary, kernels.cu (the conv kernels, src/model/offload/plan.rs's KERNELS_CU,
#      which the binary compiles with NVRTC when it opens the GPU), nvrtc-check.py and
#      GPU-NOTES.txt, which says what the GPU machine must provide (also printed, with ldd);
#   6. nvrtc-check.py run here: NVRTC compiles kernels.cu as the binary will (no GPU needed;
#      gpu-check.sh reruns it on the GPU machine).
# No nvcc runs: the only device code is kernels.cu, compiled at run time.
#
# Inputs (environment, with defaults):
#   WORK=/tmp/wgangp-cuda             everything this script makes
#   PYTHON=python3                    the Python that makes the venv (>= 3.9)
#   CARGO_TARGET_DIR=$WORK/target     cargo's build folder
#   DIST=$WORK/dist                   the output folder
#   CARGO_BUILD_JOBS=1                cargo's parallelism
#   NICE=19                           niceness of every build step
# Needs: cargo, a C compiler (gcc; installed with apt-get when missing and run as root),
# flock (util-linux), network access to PyPI (and crates.io when crates are not fetched yet).
set -euo pipefail

WORK=${WORK:-/tmp/wgangp-cuda}
PYTHON=${PYTHON:-python3}
CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$WORK/target}
DIST=${DIST:-$WORK/dist}
CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}
NICE=${NICE:-19}
export CARGO_TARGET_DIR CARGO_BUILD_JOBS

# Pinned to CUDA 13.0, so that the PTX is `.version 9.0`, which a 580 / CUDA 13.0 driver loads.
WHEELS=(
    nvidia-cuda-runtime==13.0.96
    nvidia-cuda-nvrtc==13.0.88
    nvidia-cublas==13.0.2.14
)

REPO=$(cd "$(dirname "$0")/.." && pwd)
BIN_NAME=wgangp-tui
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
VENV=$WORK/venv
CUDA_ROOT=$WORK/cuda
run_nice() { nice -n "$NICE" "$@"; }

TIMES=()
step() { # step NAME FUNCTION: run FUNCTION, report its wall time
    local name=$1 t0 t
    echo "==> $name"
    t0=$(date +%s.%N)
    "$2"
    t=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    TIMES+=("$(printf '%-10s %7s s' "$name" "$t")")
    echo "    ($name: $t s)"
}

# 1. venv with the pinned wheels ---------------------------------------------------------
NV= # site-packages/nvidia/cu13, set by find_nv
find_nv() {
    local site
    site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')
    NV=$site/nvidia/cu13
}
do_wheels() {
    local marker=$WORK/.wheels-done want
    want=$(printf '%s\n' "${WHEELS[@]}")
    if [ -x "$VENV/bin/python" ] && [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ]; then
        find_nv
        if [ -f "$NV/include/cuda.h" ] && [ -e "$NV/lib/libcublas.so.13" ]; then
            echo "    already installed in $VENV"
            return
        fi
    fi
    [ -x "$VENV/bin/python" ] || run_nice "$PYTHON" -m venv "$VENV"
    run_nice "$VENV/bin/python" -m pip install --quiet --progress-bar off "${WHEELS[@]}"
    find_nv
    for f in include/cuda.h lib/libnvrtc.so.13 lib/libcublas.so.13 lib/libcublasLt.so.13; do
        [ -e "$NV/$f" ] || { echo "missing after pip install: $NV/$f" >&2; exit 1; }
    done
    echo "$want" >"$marker"
}

# 2. CUDA_ROOT ------------------------------------------------------------------------------
do_root() {
    mkdir -p "$CUDA_ROOT/lib64/stubs"
    local d lib
    ln -sfn "$NV/include" "$CUDA_ROOT/include"
    for lib in nvrtc cublas cublasLt; do
        ln -sfn "$NV/lib/lib$lib.so.13" "$CUDA_ROOT/lib64/lib$lib.so"
        ln -sfn "$NV/lib/lib$lib.so.13" "$CUDA_ROOT/lib64/lib$lib.so.13"
    done
    echo "    $CUDA_ROOT -> $NV"
}

# 3. libcuda link stub ------------------------------------------------------------------------
cudarc_src() { # the cudarc source that Cargo.lock pins
    local ver dir
    ver=$(awk '/^name = "cudarc"$/ { getline; gsub(/"/, "", $3); print $3; exit }' "$REPO/Cargo.lock")
    [ -n "$ver" ] || { echo "cudarc is not in Cargo.lock" >&2; exit 1; }
    dir=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"cudarc-$ver" 2>/dev/null | head -n 1 || true)
    if [ -z "$dir" ]; then
        (cd "$REPO" && run_nice cargo fetch --locked >&2)
        dir=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"cudarc-$ver" | head -n 1)
    fi
    echo "$dir"
}
do_stub() {
    local sys c so=$CUDA_ROOT/lib64/stubs/libcuda.so.1 new syms
    sys=$(cudarc_src)/src/driver/sys/sys.rs
    [ -f "$sys" ] || sys=$(cudarc_src)/src/driver/sys.rs
    syms=$(grep -oE 'pub fn cu[A-Za-z0-9_]+' "$sys" | awk '{print $3}' | sort -u)
    [ -n "$syms" ] || { echo "no driver functions found in $sys" >&2; exit 1; }
    c=$CUDA_ROOT/lib64/stubs/libcuda-stub.c
    new=$(mktemp)
    {
        echo "/* Generated by scripts/build-cuda.sh from $sys."
        echo " * A LINK-TIME stub of libcuda.so.1: $(echo "$syms" | wc -l) driver functions that all fail with"
        echo " * 34 = CUDA_ERROR_STUB_LIBRARY. Never ship it or put it on LD_LIBRARY_PATH. */"
        echo 'typedef int CUresult;'
        echo '#define CUDA_ERROR_STUB_LIBRARY 34'
        echo 'static const char stub_msg[] = "stub libcuda: no CUDA driver here (link-time stub)";'
        echo 'CUresult cuGetErrorString(CUresult e, const char **s) { (void)e; if (s) *s = stub_msg; return 0; }'
        echo 'CUresult cuGetErrorName(CUresult e, const char **s) {'
        echo '    if (s) *s = e == CUDA_ERROR_STUB_LIBRARY ? "CUDA_ERROR_STUB_LIBRARY" : "CUDA_ERROR_UNKNOWN_TO_STUB";'
        echo '    return 0;'
        echo '}'
        echo "$syms" | grep -vxE 'cuGetErrorString|cuGetErrorName' |
            awk '{ printf "CUresult %s(void) { return CUDA_ERROR_STUB_LIBRARY; }\n", $1 }'
    } >"$new"
    if [ -f "$so" ] && [ -f "$c" ] && cmp -s "$new" "$c"; then
        rm -f "$new"
        echo "    already built: $so"
        return
    fi
    mv "$new" "$c"
    if ! command -v gcc >/dev/null; then
        [ "$(id -u)" = 0 ] || { echo "gcc is needed: install it" >&2; exit 1; }
        run_nice apt-get update -qq && run_nice apt-get install -y -qq gcc
    fi
    run_nice gcc -shared -fPIC -O1 -Wl,-soname,libcuda.so.1 -o "$so" "$c"
    ln -sfn libcuda.so.1 "$CUDA_ROOT/lib64/stubs/libcuda.so"
    echo "    $so: $(nm -D --defined-only "$so" | grep -c ' T cu') functions"
}

write_if_changed() { # write_if_changed FILE (content on stdin), make it executable
    local new
    new=$(mktemp)
    cat >"$new"
    if [ -f "$1" ] && cmp -s "$new" "$1"; then rm -f "$new"; else mv "$new" "$1"; fi
    chmod 755 "$1"
}

# 4. cargo build ------------------------------------------------------------------------------
do_cargo() {
    # cudarc looks at CUDA_PATH first: leave only CUDA_ROOT.
    (
        unset CUDA_PATH CUDA_TOOLKIT_ROOT_DIR CUDNN_LIB
        export CUDA_ROOT
        export LIBRARY_PATH=$CUDA_ROOT/lib64:$CUDA_ROOT/lib64/stubs${LIBRARY_PATH:+:$LIBRARY_PATH}
        cd "$REPO"
        run_nice cargo build --release --locked --features cuda --bin "$BIN_NAME"
    )
}

# 5. dist ------------------------------------------------------------------------------------
do_dist() {
    local bin=$CARGO_TARGET_DIR/release/$BIN_NAME lib missing=
    mkdir -p "$DIST"
    cp -f "$bin" "$DIST/"
    # The kernel source is the raw string KERNELS_CU in src/model/offload/plan.rs.
    awk '/^pub const KERNELS_CU: &str = r#"$/ { on = 1; next } on && /^"#;$/ { exit } on' \
        "$REPO/src/model/offload/plan.rs" >"$DIST/kernels.cu"
    grep -q '__global__ void im2col' "$DIST/kernels.cu" || { echo "kernels.cu came out empty" >&2; exit 1; }
    # (libcublasLt comes in through libcublas.)
    for lib in libcuda.so.1 libnvrtc.so.13 libcublas.so.13; do
        readelf -d "$bin" | grep -qF "[$lib]" || missing="$missing $lib"
    done
    [ -z "$missing" ] || { echo "the binary does not link:$missing" >&2; exit 1; }
    write_if_changed "$DIST/nvrtc-check.py" <<'PYEOF'
#!/usr/bin/env python3
"""NVRTC check, no GPU needed: compile kernels.cu (the binary's conv kernels) as the binary does
when it opens the GPU (cudarc 0.9's compile_ptx: no options), print the PTX header and kernels.
    python3 nvrtc-check.py LIBNVRTC_SO KERNELS_CU
libnvrtc dlopens libnvrtc-builtins.so.13.*: have its folder on LD_LIBRARY_PATH."""
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
src = open(sys.argv[2], "rb").read()
prog = ctypes.c_void_p()
assert lib.nvrtcCreateProgram(ctypes.byref(prog), src, b"kernels.cu", 0, None, None) == 0
rc = lib.nvrtcCompileProgram(prog, 0, None)
n = ctypes.c_size_t()
lib.nvrtcGetProgramLogSize(prog, ctypes.byref(n))
log = ctypes.create_string_buffer(n.value)
lib.nvrtcGetProgramLog(prog, log)
major, minor = ctypes.c_int(), ctypes.c_int()
lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor))
if rc != 0:
    sys.exit(f"NVRTC {major.value}.{minor.value} failed ({rc}):\n{log.value.decode()}")
lib.nvrtcGetPTXSize(prog, ctypes.byref(n))
ptx = ctypes.create_string_buffer(n.value)
lib.nvrtcGetPTX(prog, ptx)
lines = ptx.value.decode().splitlines()
head = [l for l in lines if l.startswith((".version", ".target"))]
kernels = [l.split()[-1].split("(")[0] for l in lines if ".entry" in l]
for want in ("im2col", "col2im_add"):
    if want not in kernels:
        sys.exit(f"kernel {want} missing from the PTX: {kernels}")
print(f"NVRTC {major.value}.{minor.value} OK: " + ", ".join(head) + f"; kernels {kernels}")
PYEOF
    cat >"$DIST/GPU-NOTES.txt" <<EOF
$BIN_NAME built with --features cuda by scripts/build-cuda.sh.
On the GPU machine it needs:
  - libcuda.so.1 from the NVIDIA driver (CUDA 13.0 or newer, for NVRTC 13's PTX).
    NOT the stub in $CUDA_ROOT/lib64/stubs, which this folder does not contain.
  - libnvrtc.so.13, libcublas.so.13 and libcublasLt.so.13, and libnvrtc-builtins.so.13.*
    beside them (libnvrtc dlopens it): e.g. its PyTorch's site-packages/nvidia/cu13/lib,
    through LD_LIBRARY_PATH (CUDA 12 libraries will not do).
  - glibc >= 2.34.
Check first, with L=/path/to/nvidia/cu13/lib:
  LD_LIBRARY_PATH=\$L ldd ./$BIN_NAME                 (no "not found")
  LD_LIBRARY_PATH=\$L python3 nvrtc-check.py \$L/libnvrtc.so.13 kernels.cu
Then scripts/gpu-check.sh (in the repository) runs all the checks.
EOF
    echo "    $DIST: $(ls "$DIST" | tr '\n' ' ')"
}

step wheels do_wheels
step cuda-root do_root
step stub do_stub
step cargo do_cargo
step dist do_dist
do_nvrtc() {
    LD_LIBRARY_PATH=$NV/lib run_nice "$VENV/bin/python" "$DIST/nvrtc-check.py" \
        "$NV/lib/libnvrtc.so.13" "$DIST/kernels.cu"
}
step nvrtc do_nvrtc

echo
echo "== step wall times"
printf '   %s\n' "${TIMES[@]}"
echo "== $DIST/$BIN_NAME: $(stat -c %s "$DIST/$BIN_NAME") bytes"
echo "== ldd (here, without a driver or LD_LIBRARY_PATH, the CUDA libraries are 'not found'):"
ldd "$DIST/$BIN_NAME" || true
echo
cat "$DIST/GPU-NOTES.txt"
