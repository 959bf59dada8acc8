#!/usr/bin/env bash
# Does the `cuda` feature still build? On a machine without a GPU, driver or CUDA install:
# installs the CUDA toolkit parts that candle's `cuda` feature needs at build time from
# PyPI wheels into a venv, and runs
#   cargo build --release --locked --features cuda --lib --bins
# into target/cuda (its own target dir: the CPU build in target/ is left alone).
#
# What candle needs at build time (candle-core/cuda -> cudarc + candle-kernels):
# - nvcc, with the CUDA headers and CCCL (cub/thrust): candle-kernels compiles its kernels
#   to PTX and a static libmoe.a with nvcc (through cudaforge), for the compute capability
#   in CUDA_COMPUTE_CAP (default here 80; any GPU found by nvidia-smi is not used);
# - `nvcc --version`: cudarc (feature cuda-version-from-build-system) picks its bindings
#   from it;
# - libraries to link against (cudarc's dynamic-linking, candle-kernels' cudart):
#   libcuda, libnvrtc, libcurand, libcublas, libcublasLt, libcudart.
#
# Why CUDA 13.4 wheels: the cu12 nvcc wheel (nvidia-cuda-nvcc-cu12) ships ptxas but no nvcc
# driver; the CUDA 13 wheels (nvidia-cuda-nvcc, -crt, nvvm, ...) install one complete
# toolkit tree, site-packages/nvidia/cu13/{bin,include,lib,nvvm}. 13.4 is the newest
# release cudarc 0.19 knows. The pins are those of the cuda-toolkit==13.4.3 meta package.
#
# Why `cargo build` and not `cargo check`: check runs the build scripts (so the nvcc
# kernel compile is covered) but neither generates code for nor links the crate. A build
# links too. libcuda is the one library only a driver install provides; the script puts
# a stub libcuda.so (every cu* entry point that cudarc declares, each returning
# CUDA_ERROR_STUB_LIBRARY) in the toolkit's lib/stubs, the same stand-in a CUDA toolkit
# ships there for building on machines without a driver. At run time on a GPU machine
# the driver's libcuda.so.1 is loaded instead. Finally the built binary is started once
# (`scrobust --help`) with the stub, to check that its shared libraries resolve.
#
# Not part of `.ci/run` or `just test`: it downloads about 1 GB of wheels and compiles
# the CUDA kernels (long on 2 cores). Run it as `just check-cuda` or
#   bash scripts/check_cuda_build.sh
# Environment: CUDA_COMPUTE_CAP (80), SCROBUST_CUDA_VENV (~/.cache/scrobust/cuda-venv),
# SCROBUST_CUDA_TARGET_DIR (target/cuda; a CARGO_TARGET_DIR set for the CPU build is not
# used, so the two builds never share a target dir).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
start=$(date +%s)

venv=${SCROBUST_CUDA_VENV:-$HOME/.cache/scrobust/cuda-venv}
pins=(
  nvidia-cuda-nvcc==13.4.92
  nvidia-cuda-crt==13.4.92
  nvidia-nvvm==13.4.92
  nvidia-cuda-runtime==13.4.92
  nvidia-cuda-nvrtc==13.4.92
  nvidia-cublas==13.8.0.4
  nvidia-curand==10.4.4.72
  nvidia-cuda-cccl==13.3.4.3.1
)
marker="$venv/.scrobust-pins"
if [ ! -f "$marker" ] || [ "$(cat "$marker")" != "${pins[*]}" ]; then
  echo "check-cuda: installing the CUDA 13.4 toolkit wheels into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"
  echo "${pins[*]}" > "$marker"
fi
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cuda="$site/nvidia/cu13"
[ -x "$cuda/bin/nvcc" ] || { echo "check-cuda: no nvcc in $cuda" >&2; exit 1; }

# Link names: the wheels ship only the versioned sonames (libcublas.so.13).
for lib in "$cuda"/lib/lib*.so.*; do
  name=$(basename "$lib")
  base=${name%%.so.*}.so
  [ -e "$cuda/lib/$base" ] || ln -s "$name" "$cuda/lib/$base"
done

# HDF5 is built from source and needs CMake >= 3.26 (scripts/setup.sh, as `just` does).
if [ -z "${CMAKE:-}" ] && [ ! -x "$root/.venv-tools/bin/cmake" ]; then
  bash "$root/scripts/setup.sh"
fi

# The libcuda stub, from the entry points of the cudarc version in Cargo.lock.
if [ ! -f "$cuda/lib/stubs/libcuda.so" ]; then
  cudarc=$(cargo metadata --locked --format-version 1 --features cuda |
    "$venv/bin/python" -c '
import json, sys, os
pkgs = json.load(sys.stdin)["packages"]
print(os.path.dirname(next(p["manifest_path"] for p in pkgs if p["name"] == "cudarc")))')
  mkdir -p "$cuda/lib/stubs"
  grep -oE '^ *fn cu[A-Za-z0-9_]+\(' "$cudarc/src/driver/sys/mod.rs" |
    sed -E 's/^ *fn (cu[A-Za-z0-9_]+)\(/\1/' | sort -u |
    awk '{ printf "int %s(void) { return 34; }\n", $1 }' > "$cuda/lib/stubs/libcuda_stub.c"
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$cuda/lib/stubs/libcuda.so" \
    "$cuda/lib/stubs/libcuda_stub.c"
  ln -sf libcuda.so "$cuda/lib/stubs/libcuda.so.1"
  echo "check-cuda: stub libcuda.so with $(wc -l < "$cuda/lib/stubs/libcuda_stub.c") entry points" >&2
fi

export CUDA_ROOT="$cuda" CUDA_PATH="$cuda" CUDA_HOME="$cuda"
export NVCC="$cuda/bin/nvcc" PATH="$cuda/bin:$PATH"
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-80}
export CARGO_TARGET_DIR=${SCROBUST_CUDA_TARGET_DIR:-$root/target/cuda}
echo "check-cuda: $("$NVCC" --version | tail -2 | head -1); compute cap $CUDA_COMPUTE_CAP; target $CARGO_TARGET_DIR" >&2

cargo build --release --locked --features cuda --lib --bins
LD_LIBRARY_PATH="$cuda/lib/stubs:$cuda/lib" "$CARGO_TARGET_DIR/release/scrobust" --help > /dev/null
echo "check-cuda: ok, the cuda feature builds and links ($(($(date +%s) - start)) s)"
