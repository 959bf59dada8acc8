//! Sparse multinomial logistic regression on log-normalized variable genes, the baseline
//! of Boiarsky et al. 2023 ("A deep dive into single-cell RNA sequencing foundation
//! models", clinicalml/sc-foundation-eval): L1 (or elastic-net) penalty, `C` chosen by
//! stratified k-fold cross-validation on the reference only, then refitted on all of it.
//!
//! Objective, as scikit-learn's `LogisticRegression(penalty="l1" | "elasticnet")`:
//! `C · Σᵢ CE(yᵢ, softmax(W xᵢ + b)) + r‖W‖₁ + (1 − r)/2 ‖W‖²` with `r` the L1 ratio and an
//! unpenalised intercept. linfa-logistic only offers an L2 penalty, so the L1 problem is
//! solved here with FISTA (accelerated proximal gradient with backtracking; Beck &
//! Teboulle 2009): a gradient step on the smooth loss, then soft-thresholding.

use super::label_transfer::labelled_reference;
use super::reference_pca::{gene_positions, vst_features};
use crate::data::{Dataset, Labels};
use crate::error::{Error, Result};
use crate::eval::Prediction;
use crate::pp::log_normalize;
use crate::traits::{Fit, Predict};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Parameters of the logistic-regression baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticParams {
    n_features: usize,
    scale_factor: f64,
    l1_ratio: f64,
    c_grid: Vec<f64>,
    cv_folds: usize,
    max_iter: usize,
    tol: f64,
    seed: u64,
}

impl Default for LogisticParams {
    fn default() -> Self {
        Self {
            n_features: 2000,
            scale_factor: 1e4,
            l1_ratio: 1.0,
            c_grid: vec![0.01, 0.1, 1.0, 10.0],
            cv_folds: 5,
            max_iter: 150,
            tol: 1e-4,
            seed: 0,
        }
    }
}

impl LogisticParams {
    /// The defaults (each setter states its own).
    pub fn new() -> Self {
        Self::default()
    }
    /// vst variable genes used as features, defaults to 2000 (all when fewer).
    pub fn n_features(mut self, n_features: usize) -> Self {
        self.n_features = n_features;
        self
    }
    /// LogNormalize scale factor for count data, defaults to 1e4.
    pub fn scale_factor(mut self, scale_factor: f64) -> Self {
        self.scale_factor = scale_factor;
        self
    }
    /// Share of the L1 term in the penalty: 1 = L1 (default), below 1 = elastic net.
    pub fn l1_ratio(mut self, l1_ratio: f64) -> Self {
        self.l1_ratio = l1_ratio;
        self
    }
    /// Inverse regularisation strengths tried by cross-validation, defaults to 0.01, 0.1, 1, 10.
    pub fn c_grid(mut self, c_grid: Vec<f64>) -> Self {
        self.c_grid = c_grid;
        self
    }
    /// Cross-validation folds, defaults to 5.
    pub fn cv_folds(mut self, cv_folds: usize) -> Self {
        self.cv_folds = cv_folds;
        self
    }
    /// FISTA iterations per fit, defaults to 150.
    pub fn max_iter(mut self, max_iter: usize) -> Self {
        self.max_iter = max_iter;
        self
    }
    /// Relative change of the weights that stops FISTA, defaults to 1e-4.
    pub fn tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }
    /// Seed of the fold assignment, defaults to 0.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// A fitted logistic-regression classifier.
#[derive(Debug, Clone)]
pub struct LogisticRegression {
    features: Vec<String>,
    scale_factor: f64,
    weights: Array2<f32>,
    intercept: Array1<f32>,
    classes: Vec<String>,
    chosen_c: f64,
    cv_accuracy: Vec<f64>,
}

/// Weights (features × classes) and intercepts.
type Model = (Array2<f32>, Array1<f32>);

impl LogisticParams {
    fn check(&self) -> Result<()> {
        if self.c_grid.is_empty() || self.c_grid.iter().any(|&c| !(c > 0.0 && c.is_finite())) {
            return Err(Error::param(
                "c_grid",
                "needs at least one positive, finite C",
            ));
        }
        if !(0.0..=1.0).contains(&self.l1_ratio) {
            return Err(Error::param(
                "l1_ratio",
                format!("must be in [0, 1], got {}", self.l1_ratio),
            ));
        }
        if self.cv_folds < 2 && self.c_grid.len() > 1 {
            return Err(Error::param(
                "cv_folds",
                "needs at least 2 folds to choose C",
            ));
        }
        Ok(())
    }

    /// FISTA on `(1/n) Σ CE + λ (r‖W‖₁ + (1−r)/2‖W‖²)` with `λ = 1 / (C n)`.
    fn solve(
        &self,
        x: ArrayView2<f32>,
        y: &[usize],
        k: usize,
        c: f64,
        warm: Option<Model>,
    ) -> Model {
        let (n, p) = x.dim();
        let lambda = 1.0 / (c * n as f64);
        let (l1, l2) = (lambda * self.l1_ratio, lambda * (1.0 - self.l1_ratio));
        let (mut w, mut b) = warm.unwrap_or_else(|| {
            let mut counts = vec![1.0f64; k];
            for &c in y {
                counts[c] += 1.0;
            }
            let prior = Array1::from_iter(
                counts
                    .iter()
                    .map(|c| (c / (n as f64 + k as f64)).ln() as f32),
            );
            (Array2::zeros((p, k)), prior)
        });
        let (mut zw, mut zb) = (w.clone(), b.clone());
        let mut t_k = 1.0f64;
        let mut step = 1.0f64;
        for _ in 0..self.max_iter {
            let (loss_z, gw, gb) = loss_and_grad(x, y, &zw, &zb);
            // Backtracking: shrink the step until the quadratic upper bound holds.
            let (new_w, new_b) = loop {
                let mut cand_w = &zw - &gw.mapv(|g| (g as f64 * step) as f32);
                let th = (step * l1) as f32;
                let shrink = (1.0 / (1.0 + step * l2)) as f32;
                cand_w.mapv_inplace(|v| (v.signum() * (v.abs() - th).max(0.0)) * shrink);
                let cand_b = &zb - &gb.mapv(|g| (g as f64 * step) as f32);
                let (loss_c, _, _) = loss_only(x, y, &cand_w, &cand_b);
                let dw = &cand_w - &zw;
                let db = &cand_b - &zb;
                let lin: f64 = (&gw * &dw).iter().map(|&v| v as f64).sum::<f64>()
                    + (&gb * &db).iter().map(|&v| v as f64).sum::<f64>();
                let sq: f64 = dw
                    .iter()
                    .chain(db.iter())
                    .map(|&v| (v as f64).powi(2))
                    .sum();
                if loss_c <= loss_z + lin + sq / (2.0 * step) + 1e-12 || step < 1e-8 {
                    break (cand_w, cand_b);
                }
                step *= 0.5;
            };
            let change: f64 = (&new_w - &w)
                .iter()
                .map(|&v| (v as f64).powi(2))
                .sum::<f64>()
                .sqrt();
            let norm: f64 = new_w
                .iter()
                .map(|&v| (v as f64).powi(2))
                .sum::<f64>()
                .sqrt();
            let t_next = (1.0 + (1.0 + 4.0 * t_k * t_k).sqrt()) / 2.0;
            let mom = ((t_k - 1.0) / t_next) as f32;
            zw = &new_w + &((&new_w - &w) * mom);
            zb = &new_b + &((&new_b - &b) * mom);
            w = new_w;
            b = new_b;
            t_k = t_next;
            if change <= self.tol * norm.max(1.0) {
                break;
            }
        }
        (w, b)
    }
}

/// Mean cross-entropy and its gradients (features × classes, classes).
fn loss_and_grad(
    x: ArrayView2<f32>,
    y: &[usize],
    w: &Array2<f32>,
    b: &Array1<f32>,
) -> (f64, Array2<f32>, Array1<f32>) {
    let (loss, mut prob, _) = loss_only(x, y, w, b);
    let n = y.len() as f32;
    for (i, &c) in y.iter().enumerate() {
        prob[[i, c]] -= 1.0;
    }
    prob.mapv_inplace(|v| v / n);
    let gw = x.t().dot(&prob);
    let gb = prob.sum_axis(Axis(0));
    (loss, gw, gb)
}

/// Mean cross-entropy and the softmax probabilities (cells × classes).
fn loss_only(
    x: ArrayView2<f32>,
    y: &[usize],
    w: &Array2<f32>,
    b: &Array1<f32>,
) -> (f64, Array2<f32>, ()) {
    let mut z = x.dot(w) + b;
    let mut loss = 0.0f64;
    for (mut row, &c) in z.rows_mut().into_iter().zip(y) {
        let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let s: f64 = row.iter().map(|&v| ((v - m) as f64).exp()).sum();
        loss += s.ln() - (row[c] - m) as f64;
        row.mapv_inplace(|v| (((v - m) as f64).exp() / s) as f32);
    }
    (loss / y.len().max(1) as f64, z, ())
}

/// Argmax class and its probability for each row.
fn predict_rows(x: ArrayView2<f32>, w: &Array2<f32>, b: &Array1<f32>) -> Vec<(usize, f32)> {
    let dummy = vec![0usize; x.nrows()];
    let (_, prob, _) = loss_only(x, &dummy, w, b);
    prob.rows()
        .into_iter()
        .map(|r| {
            (0..r.len()).fold(
                (0, r[0]),
                |(bi, bv), c| if r[c] > bv { (c, r[c]) } else { (bi, bv) },
            )
        })
        .collect()
}

/// Fold of each cell: within each class, cells are shuffled (seeded) and dealt round-robin.
fn stratified_folds(y: &[usize], n_classes: usize, folds: usize, seed: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = vec![0; y.len()];
    let mut next = 0;
    for c in 0..n_classes {
        let mut members: Vec<usize> = (0..y.len()).filter(|&i| y[i] == c).collect();
        members.shuffle(&mut rng);
        for i in members {
            out[i] = next % folds.max(1);
            next += 1;
        }
    }
    out
}

impl LogisticRegression {
    /// The C chosen by cross-validation.
    pub fn chosen_c(&self) -> f64 {
        self.chosen_c
    }
    /// Mean cross-validated accuracy of each C of the grid (zeros when the grid has one C).
    pub fn cv_accuracy(&self) -> &[f64] {
        &self.cv_accuracy
    }
    /// Number of non-zero weights (features × classes).
    pub fn n_nonzero(&self) -> usize {
        self.weights.iter().filter(|&&v| v != 0.0).count()
    }
}

impl Fit for LogisticParams {
    type Fitted = LogisticRegression;

    /// Select features, choose C by cross-validation and fit on the whole reference.
    fn fit(&self, reference: &Dataset, labels: &Labels) -> Result<LogisticRegression> {
        self.check()?;
        let (rows, classes, y, _) = labelled_reference(reference, labels)?;
        let reference = if rows.len() == reference.n_obs() {
            reference.clone()
        } else {
            reference.select_cells(&rows)
        };
        let selected = vst_features(&reference, self.n_features)?;
        let x = log_normalize(&reference.x, reference.value_kind, self.scale_factor)
            .select_cols(&selected)
            .to_dense();
        let n_classes = classes.len();
        let folds = stratified_folds(&y, n_classes, self.cv_folds, self.seed);
        let mut cv_accuracy = vec![0.0; self.c_grid.len()];
        if self.c_grid.len() > 1 {
            for f in 0..self.cv_folds {
                let train: Vec<usize> = (0..y.len()).filter(|&i| folds[i] != f).collect();
                let test: Vec<usize> = (0..y.len()).filter(|&i| folds[i] == f).collect();
                let xt = x.select(Axis(0), &train);
                let yt: Vec<usize> = train.iter().map(|&i| y[i]).collect();
                let xv = x.select(Axis(0), &test);
                let mut warm: Option<Model> = None;
                for (ci, &c) in self.c_grid.iter().enumerate() {
                    let model = self.solve(xt.view(), &yt, n_classes, c, warm.take());
                    let pred = predict_rows(xv.view(), &model.0, &model.1);
                    let hits = pred
                        .iter()
                        .zip(&test)
                        .filter(|((p, _), &i)| *p == y[i])
                        .count();
                    cv_accuracy[ci] +=
                        hits as f64 / test.len().max(1) as f64 / self.cv_folds as f64;
                    warm = Some(model);
                }
            }
        }
        let best = (0..cv_accuracy.len()).fold(0, |b, i| {
            if cv_accuracy[i] > cv_accuracy[b] + 1e-12 {
                i
            } else {
                b
            }
        });
        let chosen_c = self.c_grid[best];
        let (weights, intercept) = self.solve(x.view(), &y, n_classes, chosen_c, None);
        Ok(LogisticRegression {
            features: selected
                .iter()
                .map(|&j| reference.gene_names[j].clone())
                .collect(),
            scale_factor: self.scale_factor,
            weights,
            intercept,
            classes,
            chosen_c,
            cv_accuracy,
        })
    }
}

impl Predict for LogisticRegression {
    /// Predict query cells (genes matched by name); the score is the softmax maximum.
    fn predict(&self, query: &Dataset) -> Result<Prediction> {
        let pos = gene_positions(query, &self.features)?;
        let x = log_normalize(&query.x, query.value_kind, self.scale_factor)
            .select_cols(&pos)
            .to_dense();
        let (predicted, scores) = predict_rows(x.view(), &self.weights, &self.intercept)
            .into_iter()
            .unzip();
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

    /// Separated types are learned; the L1 penalty leaves most weights at exactly zero.
    #[test]
    fn learns_sparse_model() {
        let (reference, labels) = clustered_counts(30, 3, 60, 21);
        let (query, truth) = clustered_counts(20, 3, 60, 22);
        let params = LogisticParams::new().c_grid(vec![0.1, 1.0]).cv_folds(3);
        let fitted = params.fit(&reference, &labels).unwrap();
        let pred = fitted.predict(&query).unwrap();
        assert!(accuracy(&pred, &truth) > 0.95);
        assert!(
            fitted.n_nonzero() < 60 * 3 / 2,
            "{} non-zeros",
            fitted.n_nonzero()
        );
        assert!(fitted.cv_accuracy().iter().all(|&a| a > 0.5));
    }

    /// Stratified folds give every fold a share of every class.
    #[test]
    fn folds_are_stratified() {
        let y: Vec<usize> = (0..50).map(|i| i % 2).collect();
        let f = stratified_folds(&y, 2, 5, 0);
        for fold in 0..5 {
            for c in 0..2 {
                assert_eq!((0..50).filter(|&i| f[i] == fold && y[i] == c).count(), 5);
            }
        }
    }

    /// An empty or non-positive C grid and an L1 ratio outside [0, 1] are rejected.
    #[test]
    fn rejects_bad_params() {
        let (reference, labels) = clustered_counts(5, 2, 20, 23);
        assert!(LogisticParams::new()
            .c_grid(vec![])
            .fit(&reference, &labels)
            .is_err());
        assert!(LogisticParams::new()
            .c_grid(vec![-1.0])
            .fit(&reference, &labels)
            .is_err());
        assert!(LogisticParams::new()
            .l1_ratio(1.5)
            .fit(&reference, &labels)
            .is_err());
    }
}
