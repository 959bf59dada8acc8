//! Property tests (proptest). Strategies live in `strategies`.

mod strategies;
mod tokenize;
