//! Property tests (proptest). Strategies live in `strategies`.

mod mamba;
mod metrics;
mod strategies;
mod tokenize;
