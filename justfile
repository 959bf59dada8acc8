# scrobust task runner. `just --list` shows the recipes.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Install what is missing (cmake for the bundled HDF5, just); idempotent.
setup:
    bash scripts/setup.sh

# The main job: the quick study on simulated and the repository's real data, figures and report in results/.
reproduce: setup
    cargo build --release --locked
    target/release/scrobust study --config configs/quick.toml --out results
    @echo "report: results/REPORT.md"

# The paper-scale study (GPU: build with the cuda feature).
reproduce-paper: setup
    cargo build --release --locked --features cuda
    target/release/scrobust study --config configs/paper.toml --out results-paper

# The whole test suite (unit, integration, property tests with a fixed case count). It builds
# in the release profile, so `just test` and `just reproduce` share one build of everything.
test: setup
    PROPTEST_CASES=${PROPTEST_CASES:-256} cargo test --release --locked --lib --bins --tests --examples
    cargo test --release --locked --doc

# Property tests with many more cases.
proptest: setup
    PROPTEST_CASES=4096 cargo test --release --locked --test property_tests

# Criterion benchmarks and the peer comparison scripts (install their Python/R peers when absent).
bench: setup
    cargo bench --locked
    bash benches/run_peers.sh

# Check that the `cuda` feature builds and links without a GPU or driver (CUDA 13.4 wheels, target/cuda; not part of `test` or CI).
check-cuda: setup
    bash scripts/check_cuda_build.sh

# Execute the evcxr notebooks headless (installs evcxr_jupyter and jupyter when absent).
notebooks: setup
    bash scripts/notebooks.sh

fmt:
    cargo fmt

lint:
    cargo fmt --check
    cargo clippy --release --locked --all-targets -- -D warnings

# Regenerate the checkpoint fixtures (tests/fixtures/checkpoints) with the official
# transformers and scGPT classes; a dev tool, never needed to build, test or reproduce.
checkpoint-fixtures:
    bash scripts/setup_checkpoint_fixtures.sh
    ~/.cache/scrobust/ckpt-venv/bin/python scripts/make_checkpoint_fixtures.py
