//! Property tests (proptest). Strategies live in `strategies`.

mod h5ad;
mod strategies;
