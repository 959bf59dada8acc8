#!/usr/bin/env bash
# Seurat-mode label transfer: scrobust vs Seurat 4.3 (R) on the same cells.
#
#   benches/transfer_vs_seurat.sh [CELLS] [GENES]      (defaults 15000 3000)
#
# 1. builds scrobust and the bench_transfer example in release;
# 2. simulates a pancreas-like CELLS x GENES data set (reference = batch "reference",
#    query = batch "query") and exports both sides as MTX for R; also exports the
#    shared cbmc task (scdcc_cite_cbmc_top2000.h5ad, splits/cbmc) when the shared data
#    folder exists (SCROBUST_SHARED_DATA, default data/ of this checkout);
# 3. times `scrobust transfer --method seurat` on both with /usr/bin/time -v (wall
#    seconds of fit + predict from the JSON, total wall time and peak RSS);
# 4. if R + Seurat are absent, installs r-base-core and r-cran-seurat with apt when the
#    Debian release has them (otherwise says so and prints only scrobust's numbers);
# 5. times Seurat (benches/peers/seurat_transfer.R) on the same cells and prints the
#    time ratio and the agreement of the two predictions.
# Timings are for this machine; rerun both sides in one session to compare.
# SCROBUST_BIN_DIR=DIR skips the build and takes scrobust and examples/bench_transfer from
# DIR (useful when several checkouts share one CARGO_TARGET_DIR and may overwrite its
# release binaries while the bench runs).
set -euo pipefail
cd "$(dirname "$0")/.."
CELLS="${1:-15000}"
GENES="${2:-3000}"
SHARED="${SCROBUST_SHARED_DATA:-data}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

if [[ -n "${SCROBUST_BIN_DIR:-}" ]]; then
  TARGET="$SCROBUST_BIN_DIR"
else
  echo "== building (release)" >&2
  cargo build --release --quiet --bin scrobust --example bench_transfer
  TARGET="${CARGO_TARGET_DIR:-target}/release"
fi
BIN="$TARGET/scrobust"
PREP="$TARGET/examples/bench_transfer"

# name|data|split arguments|label key
TASKS=()
mkdir -p "$WORK/sim"
echo "== simulating $CELLS x $GENES (pancreas-like)" >&2
"$PREP" simulate "$CELLS" "$GENES" "$WORK/sim"
TASKS+=("sim|$WORK/sim/sim.h5ad|--split-key batch --reference-values reference|cell_type")
if [[ -f "$SHARED/scdcc_cite_cbmc_top2000.h5ad" ]]; then
  mkdir -p "$WORK/cbmc"
  "$PREP" export "$SHARED/scdcc_cite_cbmc_top2000.h5ad" label \
    "$SHARED/splits/cbmc/ref_cells.txt" "$SHARED/splits/cbmc/query_cells.txt" "$WORK/cbmc"
  TASKS+=("cbmc|$SHARED/scdcc_cite_cbmc_top2000.h5ad|--reference-cells $SHARED/splits/cbmc/ref_cells.txt --query-cells $SHARED/splits/cbmc/query_cells.txt|label")
else
  echo "note: $SHARED/scdcc_cite_cbmc_top2000.h5ad not found; cbmc skipped" >&2
fi

have_seurat() { command -v Rscript >/dev/null && Rscript -e 'suppressPackageStartupMessages(library(Seurat))' >/dev/null 2>&1; }
if ! have_seurat; then
  if command -v apt-get >/dev/null && [[ "$(id -u)" == 0 ]]; then
    apt-get update -qq >/dev/null
    if apt-cache policy r-cran-seurat | grep -q 'Candidate: [0-9]'; then
      echo "== installing r-base-core r-cran-seurat (apt)" >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        r-base-core r-cran-seurat >/dev/null
    else
      echo "note: r-cran-seurat is not packaged for this Debian release; Seurat not timed" >&2
    fi
  else
    echo "note: R/Seurat absent and apt-get unavailable (or not root); Seurat not timed" >&2
  fi
fi

printf '\n%-6s %9s %9s %10s %11s %9s %10s %8s %9s\n' task n_ref n_query ours_acc ours_fit_s ours_rss seurat_acc seurat_s ratio
for t in "${TASKS[@]}"; do
  IFS='|' read -r name data split key <<<"$t"
  # shellcheck disable=SC2086
  /usr/bin/time -v "$BIN" transfer --data "$data" $split --label-key "$key" --method seurat \
    --json --out "$WORK/$name/ours.csv" >"$WORK/$name/ours.json" 2>"$WORK/$name/ours.time"
  read -r n_ref n_query acc secs < <(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["n_reference"], j["n_query"], round(j["accuracy"],4), round(j["seconds"],2))' "$WORK/$name/ours.json")
  rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/$name/ours.time")
  s_acc="-"; s_secs="-"; ratio="-"
  if have_seurat; then
    out="$(Rscript benches/peers/seurat_transfer.R "$WORK/$name" 2>"$WORK/$name/seurat.err" || true)"
    s_secs="$(awk '/^seurat_seconds/ {print $2}' <<<"$out")"
    s_acc="$(awk '/^seurat_accuracy/ {print $2}' <<<"$out")"
    if [[ -n "$s_secs" ]]; then
      ratio="$(python3 -c "print(round($s_secs/$secs,1))")x"
      agree="$(python3 - "$WORK/$name" <<'PY'
import csv, sys
d = sys.argv[1]
ours = {r["cell_id"]: r["predicted_label"] for r in csv.DictReader(open(f"{d}/ours.csv"))}
theirs = {r["cell"]: r["pred"] for r in csv.DictReader(open(f"{d}/seurat_predictions.csv"))}
print(round(sum(ours.get(c) == p for c, p in theirs.items()) / len(theirs), 4))
PY
)"
      echo "$name: identical predicted labels (scrobust vs Seurat) $agree" >&2
    else
      echo "note: Seurat failed on $name:" >&2; tail -5 "$WORK/$name/seurat.err" >&2
      s_secs="-"
    fi
  fi
  printf '%-6s %9s %9s %10s %11s %8sM %10s %8s %9s\n' "$name" "$n_ref" "$n_query" "$acc" "$secs" \
    "$((rss_kb / 1024))" "$s_acc" "$s_secs" "$ratio"
done
echo "(ours_fit_s: fit + predict wall time from --json; ours_rss: peak RSS of the whole run; ratio: Seurat time / ours)"
