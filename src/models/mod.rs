//! Foundation-model-like classifiers in candle: scGPT-like, Geneformer-like, SC-MAMBA2-like.
pub mod mamba2;
