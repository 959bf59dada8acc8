//! k-nearest-neighbour classifier on the reference's principal components: the query is
//! projected onto the reference PCs (the same Seurat-style pipeline as label transfer:
//! LogNormalize, vst features, scale, 30 PCs; see [`super::reference_pca`]) and each query
//! cell takes the majority label of its `k` (15) nearest reference cells (Euclidean,
//! uniform weights, ties to the first class in class order, as scikit-learn's
//! `KNeighborsClassifier`). The score is the winning vote share.

use super::label_transfer::labelled_reference;
use super::neighbors::knn_exact;
use super::reference_pca::{ReferencePca, ReferencePcaParams};
use crate::data::{Dataset, Labels};
use crate::error::{Error, Result};
use crate::eval::Prediction;
use crate::traits::{Fit, Predict};

/// Parameters of the kNN baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct KnnParams {
    pca: ReferencePcaParams,
    k: usize,
}

impl Default for KnnParams {
    fn default() -> Self {
        Self {
            pca: ReferencePcaParams::default(),
            k: 15,
        }
    }
}

impl KnnParams {
    /// The defaults (each setter states its own).
    pub fn new() -> Self {
        Self::default()
    }
    /// Reference PCA (defaults: 2000 vst features, 30 PCs).
    pub fn pca(mut self, pca: ReferencePcaParams) -> Self {
        self.pca = pca;
        self
    }
    /// Seed of the PCA's random start, defaults to 42.
    pub fn seed(mut self, seed: u64) -> Self {
        self.pca = self.pca.seed(seed);
        self
    }
    /// Neighbours voting, defaults to 15.
    pub fn k(mut self, k: usize) -> Self {
        self.k = k;
        self
    }
}

/// A fitted kNN classifier.
#[derive(Debug, Clone)]
pub struct Knn {
    k: usize,
    pca: ReferencePca,
    labels: Vec<usize>,
    classes: Vec<String>,
}

impl Fit for KnnParams {
    type Fitted = Knn;

    /// Fit the reference PCA and remember the reference labels.
    fn fit(&self, reference: &Dataset, labels: &Labels) -> Result<Knn> {
        if self.k == 0 {
            return Err(Error::param("k", "must be at least 1"));
        }
        let (rows, classes, codes, _) = labelled_reference(reference, labels)?;
        let reference = if rows.len() == reference.n_obs() {
            reference.clone()
        } else {
            reference.select_cells(&rows)
        };
        let pca = self.pca.fit(&reference)?;
        Ok(Knn {
            k: self.k.min(codes.len()),
            pca,
            labels: codes,
            classes,
        })
    }
}

impl Predict for Knn {
    /// Predict query cells (genes matched by name).
    fn predict(&self, query: &Dataset) -> Result<Prediction> {
        let projected = self.pca.project(query)?;
        let nn = knn_exact(self.pca.embeddings(), projected.view(), self.k)?;
        let mut predicted = Vec::with_capacity(query.n_obs());
        let mut scores = Vec::with_capacity(query.n_obs());
        for i in 0..query.n_obs() {
            let mut votes = vec![0usize; self.classes.len()];
            for &r in nn.indices(i) {
                votes[self.labels[r]] += 1;
            }
            let best = (0..votes.len()).fold(0, |b, c| if votes[c] > votes[b] { c } else { b });
            predicted.push(best);
            scores.push(votes[best] as f32 / self.k as f32);
        }
        Ok(Prediction {
            classes: self.classes.clone(),
            predicted,
            scores,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::testutil::{accuracy, clustered_counts};

    /// Separated synthetic types are classified correctly and scores are vote shares.
    #[test]
    fn classifies_separated_types() {
        let (reference, labels) = clustered_counts(30, 3, 40, 11);
        let (query, truth) = clustered_counts(20, 3, 40, 12);
        let params = KnnParams::new()
            .pca(ReferencePcaParams::new().n_pcs(8))
            .k(15);
        let pred = params
            .fit(&reference, &labels)
            .unwrap()
            .predict(&query)
            .unwrap();
        assert!(accuracy(&pred, &truth) > 0.95);
        assert!(pred
            .scores
            .iter()
            .all(|&s| s > 0.0 && s <= 1.0 && (s * 15.0).fract() < 1e-5));
    }

    /// k = 0 is rejected.
    #[test]
    fn rejects_zero_k() {
        let (reference, labels) = clustered_counts(5, 2, 20, 13);
        assert!(KnnParams::new().k(0).fit(&reference, &labels).is_err());
    }
}
