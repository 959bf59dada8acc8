//! Property tests (proptest). Strategies live in `strategies`.

/// Cases for a block whose own default is smaller than proptest's 256 (slow bodies):
/// `PROPTEST_CASES` wins whenever it is set, so `just test` and `just proptest` reach every
/// block; without it the block runs `default` cases.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

mod h5ad;
mod mamba;
mod metrics;
mod strategies;
mod tokenize;
