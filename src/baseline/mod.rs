//! Statistical baselines: Seurat v5 label transfer, logistic regression and kNN.

pub mod neighbors;
pub mod reference_pca;
pub mod vst;
