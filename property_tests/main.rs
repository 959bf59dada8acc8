//! Property tests (proptest). Strategies live in `strategies`.

mod h5ad;
mod mamba;
mod metrics;
mod strategies;
mod tokenize;
