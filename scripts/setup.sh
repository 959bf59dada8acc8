#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine with a Rust toolchain:
# installs only what is missing (HDF5 headers for the h5ad reader, pkg-config, `just`).
set -euo pipefail

need_apt=()
dpkg -s libhdf5-dev >/dev/null 2>&1 || need_apt+=(libhdf5-dev)
dpkg -s pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v just >/dev/null 2>&1; then
  echo "setup: installing just (PyPI rust-just)" >&2
  python3 -m pip install --quiet rust-just
  if ! command -v just >/dev/null 2>&1; then
    echo "setup: 'just' installed but not on PATH; add $(python3 -m site --user-base)/bin to PATH" >&2
    exit 1
  fi
fi
