//! Statistical baselines: Seurat v5 label transfer, logistic regression and kNN.

pub mod anchors;
pub mod label_transfer;
pub mod neighbors;
pub mod reference_pca;
#[cfg(test)]
pub(crate) mod testutil;
pub mod vst;
