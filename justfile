# scrobust task runner. `just --list` shows the recipes.

set shell := ["bash", "-euo", "pipefail", "-c"]

shared := env_var_or_default("SCROBUST_SHARED_DATA", justfile_directory() + "/../shared/data")

# Install what is missing (HDF5 headers, pkg-config, just); idempotent.
setup:
    bash scripts/setup.sh

# The main job: the quick study on embedded simulated data (+ shared real tasks when present), figures and report in results/.
reproduce: setup
    cargo build --release --locked
    SCROBUST_SHARED_DATA={{shared}} target/release/scrobust study --config configs/quick.toml --out results
    @echo "report: results/REPORT.md"

# The paper-scale study (GPU: build with the cuda feature).
reproduce-paper: setup
    cargo build --release --locked --features cuda
    SCROBUST_SHARED_DATA={{shared}} target/release/scrobust study --config configs/paper.toml --out results-paper

# The whole test suite (unit, integration, property tests with a fixed case count).
test: setup
    SCROBUST_SHARED_DATA={{shared}} PROPTEST_CASES=${PROPTEST_CASES:-256} cargo test --locked --lib --bins --tests --examples

# Property tests with many more cases.
proptest: setup
    PROPTEST_CASES=4096 cargo test --locked --test property_tests

# Criterion benchmarks and the peer comparison scripts (install their Python/R peers when absent).
bench: setup
    cargo bench --locked
    bash benches/run_peers.sh

# Execute the evcxr notebooks headless (installs evcxr_jupyter and jupyter when absent).
notebooks: setup
    bash scripts/notebooks.sh

fmt:
    cargo fmt

lint:
    cargo fmt --check
    cargo clippy --locked --all-targets -- -D warnings
