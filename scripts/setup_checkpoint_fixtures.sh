#!/usr/bin/env bash
# Dev tool, never needed at run time or in CI: creates the Python environment that
# scripts/make_checkpoint_fixtures.py runs in (the official Hugging Face BERT classes and
# scGPT's own `TransformerModel`), pinned to the versions that generated the committed
# files under tests/fixtures/checkpoints/. Idempotent: an environment that already has the
# pinned versions is left as it is.
#
#   bash scripts/setup_checkpoint_fixtures.sh
#   ~/.cache/scrobust/ckpt-venv/bin/python scripts/make_checkpoint_fixtures.py
#
# Versions used for the committed fixtures (Python 3.11.7, Debian 12, x86_64 CPU):
#   torch 2.5.1 (the PyPI build, 2.5.1+cu124, run on the CPU; the CPU-only index was not
#   reachable), transformers 4.46.3, tokenizers 0.20.3, huggingface_hub 0.36.2,
#   safetensors 0.4.5, numpy 1.26.4, scgpt 0.2.4 (installed --no-deps: its dependencies
#   - torchtext, scanpy, scib, flash-attn, ... - are not needed for the model class).
# numpy stays below 2 on purpose: Geneformer's gene_median_dictionary.pkl holds numpy
# float64 scalars pickled by numpy 1.x (global `numpy.core.multiarray.scalar`); numpy 2
# would write `numpy._core.multiarray.scalar` instead.
set -euo pipefail

venv="${SCROBUST_CKPT_VENV:-$HOME/.cache/scrobust/ckpt-venv}"
py="$venv/bin/python"
pip=("$venv/bin/pip" --disable-pip-version-check --quiet)

TORCH=2.5.1
PINS=(
  "numpy==1.26.4"
  "transformers==4.46.3"
  "tokenizers==0.20.3"
  "huggingface_hub==0.36.2"
  "safetensors==0.4.5"
)
SCGPT="scgpt==0.2.4"

if [ ! -x "$py" ]; then
  echo "setup_checkpoint_fixtures: creating $venv" >&2
  mkdir -p "$(dirname "$venv")"
  if ! python3 -m venv "$venv" 2>/dev/null; then
    rm -rf "$venv"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$venv"
  fi
fi

have() {
  "$py" - "$@" <<'EOF' 2>/dev/null
import sys
from importlib.metadata import version
for spec in sys.argv[1:]:
    name, want = spec.split("==")
    got = version(name)
    if got.split("+")[0] != want:
        sys.exit(1)
EOF
}

if ! have "torch==$TORCH"; then
  echo "setup_checkpoint_fixtures: installing torch $TORCH" >&2
  # The CPU-only wheel is much smaller; fall back to PyPI's default build when the
  # PyTorch index cannot be reached (both run the same CPU code here).
  if ! timeout 600 "${pip[@]}" install "torch==$TORCH" \
      --index-url https://download.pytorch.org/whl/cpu 2>/dev/null; then
    "${pip[@]}" install "torch==$TORCH"
  fi
fi
if ! have "${PINS[@]}"; then
  echo "setup_checkpoint_fixtures: installing ${PINS[*]}" >&2
  "${pip[@]}" install "${PINS[@]}"
fi
if ! have "$SCGPT"; then
  echo "setup_checkpoint_fixtures: installing $SCGPT (--no-deps)" >&2
  "${pip[@]}" install --no-deps "$SCGPT"
fi
"$py" -c "import torch, transformers, safetensors, numpy; print('torch', torch.__version__, \
'transformers', transformers.__version__, 'safetensors', safetensors.__version__, \
'numpy', numpy.__version__)"
