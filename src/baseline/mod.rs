//! Statistical baselines: Seurat v5 label transfer ([`label_transfer`]), L1 logistic
//! regression ([`logistic`]) and kNN on reference PCs ([`knn`]), with the pieces they
//! share: the reference PCA (on [`crate::pp`]) and query projection
//! ([`reference_pca`]), exact neighbour search ([`neighbors`]) and anchors ([`anchors`]).

mod anchors;
mod annoy;
mod knn;
mod label_transfer;
mod logistic;
mod neighbors;
mod reference_pca;
#[cfg(test)]
pub(crate) mod testutil;

use crate::data::{Dataset, Labels};
use crate::error::{Error, Result};
use crate::eval::Prediction;
use crate::traits::{Fit, Predict};
pub use annoy::AnnoyParams;
pub use knn::{Knn, KnnParams};
pub use label_transfer::{SeuratParams, SeuratTransfer, TransferResult};
pub use logistic::{LogisticParams, LogisticRegression};
pub use neighbors::NeighborMethod;
pub use reference_pca::{ReferencePca, ReferencePcaParams};

/// Which baseline to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaselineMethod {
    /// Seurat v5 `FindTransferAnchors` + `TransferData`.
    Seurat,
    /// L1 logistic regression with C chosen by cross-validation.
    Logistic,
    /// kNN (k = 15) on the reference's 30 PCs.
    Knn,
}

impl BaselineMethod {
    /// Name used on the command line and in JSON.
    pub fn as_str(&self) -> &'static str {
        match self {
            BaselineMethod::Seurat => "seurat",
            BaselineMethod::Logistic => "logistic",
            BaselineMethod::Knn => "knn",
        }
    }
}

impl std::str::FromStr for BaselineMethod {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "seurat" => Ok(BaselineMethod::Seurat),
            "logistic" => Ok(BaselineMethod::Logistic),
            "knn" => Ok(BaselineMethod::Knn),
            other => Err(Error::param(
                "method",
                format!("unknown baseline '{other}' (seurat, logistic, knn)"),
            )),
        }
    }
}

/// Fit `method` on the reference (with the default parameters, seeded by `seed`) and
/// predict the query. The reference is first restricted to the genes the query also has
/// (Seurat's `FindTransferAnchors` does the same); no shared gene is an error.
pub fn fit_predict(
    method: BaselineMethod,
    reference: &Dataset,
    reference_labels: &Labels,
    query: &Dataset,
    seed: u64,
) -> Result<Prediction> {
    let reference = restrict_to_query_genes(reference, query)?;
    let labels = reference_labels;
    match method {
        BaselineMethod::Seurat => {
            fit_then_predict(&SeuratParams::new().seed(seed), &reference, labels, query)
        }
        BaselineMethod::Logistic => {
            fit_then_predict(&LogisticParams::new().seed(seed), &reference, labels, query)
        }
        BaselineMethod::Knn => {
            fit_then_predict(&KnnParams::new().seed(seed), &reference, labels, query)
        }
    }
}

fn fit_then_predict<P: Fit>(
    params: &P,
    reference: &Dataset,
    labels: &Labels,
    query: &Dataset,
) -> Result<Prediction> {
    params.fit(reference, labels)?.predict(query)
}

/// The reference on the genes it shares with the query (all of it when all are shared).
/// Note: count data are then LogNormalized over the shared genes only, whereas Seurat
/// normalises the full reference first; the two agree when both sides hold the same genes.
pub fn restrict_to_query_genes(reference: &Dataset, query: &Dataset) -> Result<Dataset> {
    let in_query: std::collections::HashSet<&str> =
        query.gene_names.iter().map(String::as_str).collect();
    let keep: Vec<usize> = (0..reference.n_vars())
        .filter(|&j| in_query.contains(reference.gene_names[j].as_str()))
        .collect();
    if keep.is_empty() {
        return Err(Error::Incompatible(format!(
            "{} and {} share no gene names",
            reference.source, query.source
        )));
    }
    Ok(if keep.len() == reference.n_vars() {
        reference.clone()
    } else {
        reference.select_genes(&keep)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::testutil::clustered_counts;

    /// A query with no gene in common with the reference is a clear error for every method.
    #[test]
    fn no_shared_genes_is_an_error() {
        let (reference, labels) = clustered_counts(10, 2, 20, 31);
        let (mut query, _) = clustered_counts(5, 2, 20, 32);
        query.gene_names = (0..20).map(|j| format!("other{j}")).collect();
        for m in [
            BaselineMethod::Seurat,
            BaselineMethod::Logistic,
            BaselineMethod::Knn,
        ] {
            let err = fit_predict(m, &reference, &labels, &query, 0)
                .unwrap_err()
                .to_string();
            assert!(err.contains("share no gene"), "{err}");
        }
    }

    /// Every method runs through the common entry point on gene-aligned data.
    #[test]
    fn all_methods_predict() {
        let (reference, labels) = clustered_counts(20, 2, 30, 33);
        let (query, _) = clustered_counts(10, 2, 30, 34);
        for m in [
            BaselineMethod::Seurat,
            BaselineMethod::Logistic,
            BaselineMethod::Knn,
        ] {
            let pred = fit_predict(m, &reference, &labels, &query, 0).unwrap();
            assert_eq!(pred.predicted.len(), 20);
            assert_eq!(pred.classes.len(), 2);
        }
    }
}
