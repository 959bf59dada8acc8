//! Property tests (proptest). Strategies live in `strategies`.

mod metrics;
mod strategies;
