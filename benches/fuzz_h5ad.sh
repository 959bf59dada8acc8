#!/usr/bin/env bash
# The large corrupt-file campaign: 3,000 fixed-seed mutants of a small simulated h5ad and of
# the legacy pbmc68k_reduced file, each read by `scrobust inspect --json` in a child process
# under a 1 GiB address-space limit and a 20 s wall limit (tests/fuzz_h5ad.rs; CI runs 300).
# Prints one line with the count of every outcome; fails if any read crashed, aborted,
# panicked, timed out or ran out of memory. SCROBUST_FUZZ_MUTANTS overrides the count.
set -euo pipefail
cd "$(dirname "$0")/.."
export SCROBUST_FUZZ_MUTANTS="${SCROBUST_FUZZ_MUTANTS:-3000}"
start=$(date +%s)
status=0
log="$(cargo test --release --locked --test fuzz_h5ad -- --nocapture 2>&1)" || status=$?
echo "$log" | grep -E '^fuzz_h5ad:|^mutant |panicked' || echo "$log" | tail -20
echo "wall time: $(( $(date +%s) - start )) s (including the build)"
exit "$status"
