#!/usr/bin/env bash
# Execute the evcxr notebooks headless, keeping executed copies in notebooks/executed/.
# Installs evcxr_jupyter (cargo, --locked) and jupyter (PyPI, in .venv-notebooks) when absent.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v evcxr_jupyter >/dev/null 2>&1; then
  cargo install --locked evcxr_jupyter
fi
if [ ! -x .venv-notebooks/bin/jupyter ]; then
  python3 -m venv .venv-notebooks
  .venv-notebooks/bin/pip install --quiet jupyter nbconvert
fi
export PATH="$PWD/.venv-notebooks/bin:$PATH"
evcxr_jupyter --install >/dev/null
# A persistent build folder: the first run compiles the crate (~6 min), later runs ~30 s.
export EVCXR_TMPDIR="$PWD/target/evcxr"
mkdir -p "$EVCXR_TMPDIR" notebooks/executed
[ -d results/runs ] || { echo "no results/: run 'just reproduce' first" >&2; exit 1; }
for nb in notebooks/*.ipynb; do
  echo "executing $nb" >&2
  (cd notebooks && jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=1800 \
     --output "executed/$(basename "$nb")" "$(basename "$nb")")
done
