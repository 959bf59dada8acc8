#!/usr/bin/env bash
# Time scrobust's preprocessing chain (criterion, benches/pp_chain.rs) and scanpy's on
# the identical simulated 15,000 x 3,000 matrix; print both and the ratio.
# Uses $SCANPY_PYTHON when set, else a venv in target/peer-venv (created with scanpy
# 1.11 when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
py="${SCANPY_PYTHON:-}"
if [[ -z "$py" ]]; then
    venv="$target/peer-venv"
    if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c "import scanpy" 2>/dev/null; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet "scanpy==1.11.*"
    fi
    py="$venv/bin/python"
fi
data="$(mktemp -d)"
trap 'rm -rf "$data"' EXIT
PP_CHAIN_WRITE="$data" cargo bench --bench pp_chain "$@"
scanpy_out="$("$py" benches/peers/scanpy_chain.py "$data")"
echo "$scanpy_out" | head -1
log="$(cargo bench --bench pp_chain "$@" -- --noplot 2>&1 | tee /dev/stderr)"
# criterion prints "time:   [low mid high]"; take the middle estimate and its unit.
read -r mid unit < <(echo "$log" | grep -m1 "time:" | sed -E 's/.*\[[^ ]+ [^ ]+ ([^ ]+) ([^ ]+) .*/\1 \2/')
case "$unit" in
    ms) rust_s=$(python3 -c "print($mid/1000)") ;;
    s) rust_s=$mid ;;
    µs|us) rust_s=$(python3 -c "print($mid/1e6)") ;;
    *) echo "unexpected criterion unit: $unit" >&2; exit 1 ;;
esac
scanpy_s="$(echo "$scanpy_out" | awk '/SCANPY_SECONDS/ {print $2}')"
python3 -c "print(f'scrobust {float(\"$rust_s\"):.3f} s, scanpy {float(\"$scanpy_s\"):.3f} s, speed-up {float(\"$scanpy_s\")/float(\"$rust_s\"):.1f}x')"
