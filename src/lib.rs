//! # scrobust
//!
//! How do cell-type classifiers built like single-cell "foundation models" (scGPT,
//! Geneformer, SC-MAMBA2) compare with statistical methods (Seurat v5 label transfer,
//! logistic regression, kNN), and how do tokenization (expression binning vs rank-value
//! encoding) and input noise degrade them? scrobust reproduces the study
//! "Fundamental Limitations of Foundation Models in Single-Cell Transcriptomics"
//! (bioRxiv 10.1101/2025.06.26.661767) and goes beyond it.
//!
//! Data flow: h5ad / simulator → [`data::Dataset`] → split → [`pp`] → [`baseline`];
//! → [`perturb`] → [`tokenize`] → [`models`]; both → [`eval`] → [`study`] → [`plot`].
//! Every stage that learns something is fitted on reference cells only.

pub mod baseline;
pub mod cli;
pub mod data;
pub mod error;
pub mod eval;
pub mod models;
pub mod perturb;
pub mod plot;
pub mod pp;
pub mod study;
pub(crate) mod timing;
pub mod tokenize;
pub mod traits;

pub use error::{Error, Result};

/// The README's library example runs as a doctest (`cargo test --doc`), so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeExample;

/// The names most programs need.
pub mod prelude {
    pub use crate::data::{Column, CsrMatrix, Dataset, Labels, ValueKind};
    pub use crate::error::{Error, Result};
    pub use crate::eval::Prediction;
    pub use crate::traits::{Fit, Predict};
}
