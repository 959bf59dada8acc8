//! Property tests (proptest). Strategies live in `strategies`.
mod mamba;
