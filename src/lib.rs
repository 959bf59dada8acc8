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
//!
//! ## Entry points
//!
//! Read an h5ad (scanpy's AnnData layout) and look at it:
//! ```
//! use scrobust::data::h5ad::{read_h5ad, ReadOptions};
//! let ds = read_h5ad("data/muscat_kang_pbmc.h5ad".as_ref(), &ReadOptions::default())?;
//! assert_eq!((ds.n_obs(), ds.n_vars()), (1556, 1267));
//! let labels = ds.labels("label")?;
//! # Ok::<(), scrobust::Error>(())
//! ```
//!
//! Simulate counts shaped like a real data set, and run scanpy's recipe on them (fitted on
//! reference cells, applied unchanged to the query):
//! ```
//! use scrobust::data::simulate::{simulate, Profile, SimulateOptions};
//! use scrobust::pp::{HvgParams, Pca, PcaPipeline};
//! let mut opts = SimulateOptions::new(Profile::PancreasLike);
//! (opts.n_cells, opts.n_genes) = (Some(400), 200);
//! let ds = simulate(&opts)?;
//! let chain = PcaPipeline::new()
//!     .hvg(HvgParams::new().n_top_genes(Some(100)))
//!     .pca(Pca::new().n_components(10));
//! let fitted = chain.fit(&ds.x, ds.value_kind)?;
//! let scores = fitted.transform(&ds.x)?; // cells × 10
//! assert_eq!(scores.dim(), (ds.n_obs(), 10));
//! # Ok::<(), scrobust::Error>(())
//! ```
//!
//! Every classifier, statistical or neural, has one shape,
//! `params.fit(&reference, &labels)?.predict(&query)?` ([`traits`]); a neural classifier
//! also saves and loads ([`models::NeuralClassifier`]); see the README's example.
//!
//! Run a study from a profile (here the tiny smoke profile's grid, a few seconds):
//! ```no_run
//! use scrobust::study::{config::StudyConfig, runner::run_study};
//! let path = std::path::Path::new("configs/smoke.toml");
//! let text = std::fs::read_to_string(path).unwrap();
//! let cfg = StudyConfig::from_toml_str(&text, path)?;
//! let out = run_study(&cfg, &text, "results/smoke".as_ref(), false)?;
//! # Ok::<(), scrobust::Error>(())
//! ```

pub mod baseline;
// The command implementations behind the `scrobust` binary; public only so the binary can
// call them, not part of the library's API.
#[doc(hidden)]
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
    pub use crate::baseline::{KnnParams, LogisticParams, SeuratParams};
    pub use crate::data::h5ad::{read_h5ad, write_h5ad, ReadOptions};
    pub use crate::data::{Column, CsrMatrix, Dataset, Labels, ValueKind};
    pub use crate::error::{Error, Result};
    pub use crate::eval::Prediction;
    pub use crate::models::pretrained::Checkpoint;
    pub use crate::models::{ClassifierParams, ModelKind, NeuralClassifier, TrainConfig};
    pub use crate::traits::{Fit, Predict};
}
