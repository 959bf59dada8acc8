#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine with a Rust toolchain. Installs only what
# is missing: a C compiler and CMake >= 3.26 (HDF5 2.2 is built from source by the `hdf5`
# crate's `static` feature, so no system libhdf5 is needed; Debian 12's CMake is 3.25, so
# CMake comes from PyPI into the project's .venv-tools, which .cargo/config.toml points the
# build at) and `just`, from crates.io, because bookworm has no `just` package and its
# Python refuses `pip install` outside a venv (PEP 668).
# Nothing here is needed at run time beyond the build, and no test installs anything.
set -euo pipefail

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(gcc)
command -v make >/dev/null 2>&1 || need_apt+=(make)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

root="$(cd "$(dirname "$0")/.." && pwd)"
cmake_bin="$root/.venv-tools/bin/cmake"
if [ ! -x "$cmake_bin" ]; then
  echo "setup: installing CMake 3.31 (PyPI) into $root/.venv-tools" >&2
  if ! python3 -m venv "$root/.venv-tools" 2>/dev/null; then
    rm -rf "$root/.venv-tools"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$root/.venv-tools"
  fi
  "$root/.venv-tools/bin/pip" install --quiet --disable-pip-version-check "cmake==3.31.10"
fi
# anndata, so the test that python's reader opens our files runs without installing anything.
if ! "$root/.venv-tools/bin/python" -c "import anndata" 2>/dev/null; then
  echo "setup: installing anndata (PyPI) into $root/.venv-tools" >&2
  "$root/.venv-tools/bin/pip" install --quiet --disable-pip-version-check "anndata==0.11.4"
fi

if ! command -v just >/dev/null 2>&1; then
  echo "setup: installing just (cargo install --locked just)" >&2
  cargo install --locked --quiet just
  if ! command -v just >/dev/null 2>&1; then
    echo "setup: 'just' installed but not on PATH; add ${CARGO_HOME:-$HOME/.cargo}/bin to PATH" >&2
    exit 1
  fi
fi
