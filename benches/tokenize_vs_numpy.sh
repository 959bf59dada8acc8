#!/usr/bin/env bash
# Tokenization throughput: scrobust (Rust, rayon) vs a numpy reference of scGPT's binning
# and Geneformer's rank step, on the same simulated 15k x 3000 count matrix, in one run.
# Installs numpy into a venv when the system python lacks it.
#   bash benches/tokenize_vs_numpy.sh            (release build; PROFILE=dev for a quick look)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
profile=${PROFILE:-release}
cells=${CELLS:-15000}
target_dir=${CARGO_TARGET_DIR:-$root/target}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python=${PYTHON:-python3}
if ! "$python" -c 'import numpy' 2>/dev/null; then
    venv="$target_dir/bench-venv"
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import numpy' 2>/dev/null; then
        echo "installing numpy into $venv" >&2
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet numpy
    fi
    python="$venv/bin/python"
fi

cd "$root"
cargo build --quiet --profile "$profile" --example tokenize_throughput
dir=$([ "$profile" = dev ] && echo debug || echo "$profile")
"$target_dir/$dir/examples/tokenize_throughput" --cells "$cells" --repeats 5 --write "$work/matrix.bin" > "$work/rust.json"
"$python" benches/peers/tokenize_numpy.py "$work/matrix.bin" 1 > "$work/numpy.json"

"$python" - "$work/rust.json" "$work/numpy.json" "$profile" <<'PY'
import json, sys
rust = json.load(open(sys.argv[1])); ref = json.load(open(sys.argv[2])); profile = sys.argv[3]
print(f"matrix {rust['cells']} x {rust['genes']}, nnz {rust['nnz']}; rust profile {profile}, "
      f"{rust['threads']} threads; numpy {ref['numpy']} (1 thread)")
print(f"{'tokenizer':<10} {'rust cells/s':>14} {'numpy cells/s':>14} {'ratio':>8} {'goal':>6} {'x memory pass':>14}")
for name in ("binning", "rank"):
    r, n = rust[f"{name}_cells_per_s"], ref[f"{name}_cells_per_s"]
    ratio = r / n
    print(f"{name:<10} {r:>14.0f} {n:>14.0f} {ratio:>7.1f}x {'ok' if ratio >= 50 else 'miss':>6} "
          f"{rust[f'{name}_s'] / rust['memory_pass_s']:>13.1f}x")
print(f"one read pass over the CSR arrays: {rust['memory_pass_s'] * 1e3:.1f} ms "
      f"({rust['memory_pass_cells_per_s']:.0f} cells/s); 'x memory pass' = tokenizer time / that")
PY
