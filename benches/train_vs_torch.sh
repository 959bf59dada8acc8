#!/usr/bin/env bash
# Training throughput (forward + backward + clip + AdamW step) of the three candle models
# (examples/train_throughput.rs) vs the same architectures in PyTorch
# (benches/peers/train_torch.py), same config, batch, CPU and thread count, in one run.
# Each model runs in its own process, candle then torch, so the peak RSS (VmHWM) is that
# model's and both frameworks see the same machine load. Installs torch into a venv when
# absent (plain `pip install torch`; extra pip arguments, e.g. a CPU-only wheel index, go
# in TORCH_PIP_ARGS). The torch side checks its parameter count equals candle's.
#   bash benches/train_vs_torch.sh
#   env: CONFIG (configs/quick.toml) THREADS (nproc) STEPS (20) WARMUP (3) REPEATS (1,
#        best of) PROFILE (release) BENCH_VENV (~/.cache/scrobust/bench-venv) OUT (dir
#        to keep the JSON lines)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
profile=${PROFILE:-release}
config=${CONFIG:-configs/quick.toml}
threads=${THREADS:-$(nproc)}
steps=${STEPS:-20}
warmup=${WARMUP:-3}
repeats=${REPEATS:-1}
venv=${BENCH_VENV:-$HOME/.cache/scrobust/bench-venv}
target_dir=${CARGO_TARGET_DIR:-$root/target}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
: > "$out/results.jsonl"

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import torch' 2>/dev/null; then
    echo "installing torch into $venv (large download)" >&2
    python3 -m venv "$venv"
    # shellcheck disable=SC2086
    "$venv/bin/pip" install --quiet ${TORCH_PIP_ARGS:-} torch numpy
fi
python="$venv/bin/python"

# One thread count for both: candle's matmuls and ops use rayon (RAYON_NUM_THREADS),
# PyTorch OpenMP/MKL (and set_num_threads, from --threads).
export RAYON_NUM_THREADS=$threads OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads
# OpenMP's default busy-waiting collapses PyTorch on a loaded machine (SC-MAMBA2-like: 8 s
# per step instead of 0.5 s at load ~9 on 2 cores); passive waiting is the fair setting
# when other processes share the cores. Override with OMP_WAIT_POLICY=ACTIVE on an idle one.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

cd "$root"
cargo build --quiet --profile "$profile" --example train_throughput
dir=$([ "$profile" = dev ] && echo debug || echo "$profile")
bin="$target_dir/$dir/examples/train_throughput"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
args=(--config "$config" --steps "$steps" --warmup "$warmup")
for ((r = 0; r < repeats; r++)); do
    for model in scgpt geneformer scmamba2; do
        line=$("$bin" "${args[@]}" --model "$model")
        echo "$line" >> "$out/results.jsonl"
        n=$(echo "$line" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["n_params"])')
        "$python" benches/peers/train_torch.py "${args[@]}" --model "$model" \
            --threads "$threads" --expect-params "$n" >> "$out/results.jsonl"
    done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

"$python" - "$out/results.jsonl" "$config" "$load_start" "$load_end" "$OMP_WAIT_POLICY" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
best = {}
for r in rows:  # best of the repeats; peak RSS is the largest seen
    key = (r["model"], r["framework"])
    b = best.setdefault(key, dict(r))
    if r["cells_per_s"] > b["cells_per_s"]:
        b.update({k: v for k, v in r.items() if k != "peak_rss_mib"})
    b["peak_rss_mib"] = max(b["peak_rss_mib"] or 0, r["peak_rss_mib"] or 0)
c0 = next(r for r in rows if r["framework"] == "candle")
t0 = next(r for r in rows if r["framework"] == "torch")
print(f"{sys.argv[2]}: batch {c0['batch']} x {c0['seq_len']} tokens, {c0['steps']} timed steps; "
      f"threads candle {c0['threads']}, torch {t0['threads']} (torch {t0['torch']}, "
      f"OMP_WAIT_POLICY={sys.argv[5]}); "
      f"load average {sys.argv[3]} -> {sys.argv[4]}")
print(f"{'model':<11} {'params':>8} {'candle cells/s':>15} {'torch cells/s':>14} {'ratio':>7} "
      f"{'goal':>5} {'candle tok/s':>13} {'torch tok/s':>12} {'candle RSS':>11} {'torch RSS':>10}")
for model in ("scgpt", "geneformer", "scmamba2"):
    c, t = best[(model, "candle")], best[(model, "torch")]
    ratio = c["cells_per_s"] / t["cells_per_s"]
    print(f"{model:<11} {c['n_params']:>8} {c['cells_per_s']:>15.1f} {t['cells_per_s']:>14.1f} "
          f"{ratio:>6.2f}x {'ok' if ratio >= 1.0 else 'miss':>5} {c['tokens_per_s']:>13.0f} "
          f"{t['tokens_per_s']:>12.0f} {c['peak_rss_mib']:>7.0f} MiB {t['peak_rss_mib']:>6.0f} MiB")
print("ms per step (forward + loss / backward / clip + AdamW):")
for model in ("scgpt", "geneformer", "scmamba2"):
    parts = []
    for fw in ("candle", "torch"):
        r = best[(model, fw)]
        parts.append(f"{fw} " + " / ".join(f"{r.get(k, float('nan')) * 1e3:.0f}"
                                           for k in ("forward_s", "backward_s", "optim_s")))
    print(f"  {model:<11} " + ";  ".join(parts))
print("inference cells/s (eval mode, softmax, argmax; batch as above):")
for model in ("scgpt", "geneformer", "scmamba2"):
    c, t = best[(model, "candle")], best[(model, "torch")]
    cp, tp = c.get("predict_cells_per_s"), t.get("predict_cells_per_s")
    if cp and tp:
        print(f"  {model:<11} candle {cp:.0f}, torch {tp:.0f}: {cp / tp:.2f}x")
print("ratio = candle / torch cells per second (forward + backward + clip + AdamW); "
      "RSS = peak resident set (VmHWM) of each model's process")
PY
