//! Principal component analysis, the computation of scanpy 1.11's `sc.pp.pca`
//! (sklearn `PCA`): centre each gene, take the leading eigenvectors of the gene
//! covariance, report explained variance (ddof 1) and its ratio to the total variance.
//!
//! Solver: exact, via the p × p covariance (scanpy's `svd_solver="covariance_eigh"`):
//! `C = (X − μ)ᵀ(X − μ)/(n − 1)` accumulated in `f64` by row blocks with parallel gemm,
//! then [`super::eigen`] (dense `eigh` for small p, seeded block Krylov otherwise).
//! Signs follow sklearn's `svd_flip(u_based_decision=False)`: each component's
//! largest-magnitude loading is positive, so results are reproducible.
//!
//! Without centring ([`Pca::zero_center`]`(false)`, scanpy's `zero_center=False`) the
//! same solver decomposes the second-moment matrix `XᵀX/(n − 1)`: that is the truncated
//! SVD of `X` itself, which is what Seurat's `RunPCA` computes on its scaled data (it
//! never re-centres them, and after clipping their columns are not exactly centred).

use super::eigen::top_eigen;
use crate::error::{Error, Result};
use ndarray::{s, Array1, Array2, ArrayView2, Axis};
use rayon::prelude::*;

/// PCA parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Pca {
    n_components: usize,
    zero_center: bool,
    seed: u64,
}

impl Default for Pca {
    fn default() -> Self {
        Self {
            n_components: 50,
            zero_center: true,
            seed: 0,
        }
    }
}

impl Pca {
    /// Default parameters (see each setter).
    pub fn new() -> Self {
        Self::default()
    }
    /// Number of components, defaults to 50 (scanpy's `n_comps`).
    pub fn n_components(mut self, n: usize) -> Self {
        self.n_components = n;
        self
    }
    /// Centre each gene before the decomposition, defaults to true. With false the
    /// components are the right singular vectors of the data as given, and the
    /// explained variance is the mean square (ddof 1) along each of them.
    pub fn zero_center(mut self, zero_center: bool) -> Self {
        self.zero_center = zero_center;
        self
    }
    /// Seed of the Krylov start block (used only for the Krylov solver;
    /// the result does not depend on it beyond the convergence tolerance),
    /// defaults to 0.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Fit on dense cells × genes data (typically scaled HVG expression).
    pub fn fit(&self, x: ArrayView2<f32>) -> Result<FittedPca> {
        let (n, p) = x.dim();
        self.check(n, p)?;
        if x.iter().any(|v| !v.is_finite()) {
            return Err(Error::invalid(
                "PCA input",
                "X",
                "contains non-finite values",
            ));
        }
        let mean: Vec<f64> = (0..p)
            .map(|j| x.column(j).iter().map(|&v| v as f64).sum::<f64>() / n as f64)
            .collect();
        let mean_arr = Array1::from(mean.clone());
        // Row blocks: centre in f64, gemm, sum the p × p partial products.
        const BLOCK: usize = 512;
        let starts: Vec<usize> = (0..n).step_by(BLOCK).collect();
        let gram = starts
            .par_iter()
            .map(|&a| {
                let b = (a + BLOCK).min(n);
                let xb = x.slice(s![a..b, ..]).mapv(|v| v as f64) - &mean_arr;
                xb.t().dot(&xb)
            })
            .reduce(|| Array2::<f64>::zeros((p, p)), |acc, g| acc + g);
        self.fit_covariance(gram / (n - 1) as f64, mean, n)
    }

    pub(crate) fn check(&self, n: usize, p: usize) -> Result<()> {
        if n < 2 {
            return Err(Error::param(
                "pca",
                format!("needs at least 2 cells, got {n}"),
            ));
        }
        if self.n_components == 0 || self.n_components > n.min(p) {
            return Err(Error::param(
                "n_components",
                format!(
                    "must be in 1..={} for {n} cells × {p} genes, got {}",
                    n.min(p),
                    self.n_components
                ),
            ));
        }
        Ok(())
    }

    /// Finish a fit from the gene covariance (ddof 1) and gene means of `n` cells.
    /// Without centring, the second moment `cov + n/(n−1)·mean·meanᵀ` is decomposed.
    pub(crate) fn fit_covariance(
        &self,
        mut cov: Array2<f64>,
        mut mean: Vec<f64>,
        n: usize,
    ) -> Result<FittedPca> {
        if !self.zero_center {
            let f = n as f64 / (n as f64 - 1.0);
            let m = Array1::from(mean.clone());
            let outer = m
                .view()
                .insert_axis(Axis(1))
                .dot(&m.view().insert_axis(Axis(0)));
            cov.scaled_add(f, &outer);
            mean.iter_mut().for_each(|v| *v = 0.0);
        }
        let total: f64 = cov.diag().sum();
        let (vals, vecs) = top_eigen(&cov, self.n_components, self.seed)?;
        let mut components = vecs.t().to_owned();
        for mut row in components.axis_iter_mut(Axis(0)) {
            let big = row
                .iter()
                .copied()
                .fold(0.0f64, |m, v| if v.abs() > m.abs() { v } else { m });
            if big < 0.0 {
                row.mapv_inplace(|v| -v);
            }
        }
        // Clamp round-off negatives of a PSD matrix.
        let variance: Vec<f64> = vals.iter().map(|&v| v.max(0.0)).collect();
        let ratio = variance
            .iter()
            .map(|&v| if total > 0.0 { v / total } else { 0.0 })
            .collect();
        Ok(FittedPca {
            components: components.mapv(|v| v as f32),
            variance,
            ratio,
            mean,
        })
    }
}

/// A fitted PCA: loadings, explained variance and the centring mean.
#[derive(Debug, Clone, PartialEq)]
pub struct FittedPca {
    components: Array2<f32>,
    variance: Vec<f64>,
    ratio: Vec<f64>,
    mean: Vec<f64>,
}

impl FittedPca {
    /// Loadings, k × p (rows are unit-norm principal axes).
    pub fn components(&self) -> &Array2<f32> {
        &self.components
    }
    /// Variance along each component (ddof 1), descending.
    pub fn explained_variance(&self) -> &[f64] {
        &self.variance
    }
    /// Explained variance over the total variance of all genes.
    pub fn explained_variance_ratio(&self) -> &[f64] {
        &self.ratio
    }
    /// Per-gene mean used for centring (zeros when fitted without centring).
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }
    /// Number of components.
    pub fn n_components(&self) -> usize {
        self.components.nrows()
    }

    /// Principal-component scores `(x − mean)·componentsᵀ`, cells × k.
    ///
    /// # Panics
    /// When `x` does not have the fitted number of genes; use
    /// [`FittedPca::try_transform`] for data from users.
    pub fn transform(&self, x: ArrayView2<f32>) -> Array2<f32> {
        match self.try_transform(x) {
            Ok(z) => z,
            Err(e) => panic!("{e}"),
        }
    }

    /// [`FittedPca::transform`] that reports a gene-count mismatch as an error.
    pub fn try_transform(&self, x: ArrayView2<f32>) -> Result<Array2<f32>> {
        if x.ncols() != self.mean.len() {
            return Err(Error::Incompatible(format!(
                "PCA was fitted on {} genes but the data has {}",
                self.mean.len(),
                x.ncols()
            )));
        }
        let mean = Array1::from_iter(self.mean.iter().map(|&m| m as f32));
        let centred = &x - &mean;
        Ok(centred.dot(&self.components.t()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;
    use ndarray::array;

    /// Points on the line y = 2x: one component along (1, 2)/√5 with all the variance;
    /// scores are the signed distances along it, and the sign makes the largest loading positive.
    #[test]
    fn line_has_one_component() {
        let x = array![
            [-2.0f32, -4.0],
            [-1.0, -2.0],
            [0.0, 0.0],
            [1.0, 2.0],
            [2.0, 4.0]
        ];
        let fit = Pca::new().n_components(2).fit(x.view()).unwrap();
        let c = fit.components();
        assert_abs_diff_eq!(c[[0, 0]], 1.0 / 5f32.sqrt(), epsilon = 1e-6);
        assert_abs_diff_eq!(c[[0, 1]], 2.0 / 5f32.sqrt(), epsilon = 1e-6);
        // var of t·√5 for t = -2..2 (ddof 1) = 2.5 · 5
        assert_abs_diff_eq!(fit.explained_variance()[0], 12.5, epsilon = 1e-9);
        assert_abs_diff_eq!(fit.explained_variance_ratio()[0], 1.0, epsilon = 1e-9);
        assert_abs_diff_eq!(fit.explained_variance()[1], 0.0, epsilon = 1e-9);
        let z = fit.transform(x.view());
        assert_abs_diff_eq!(z[[4, 0]], 2.0 * 5f32.sqrt(), epsilon = 1e-5);
    }

    /// Matches sklearn PCA on a small matrix: explained variance and |scores|.
    /// Python (scikit-learn 1.x):
    /// ```text
    /// X = np.array([[1,2,0],[3,1,1],[0,0,4],[2,5,1],[1,1,1]], float)
    /// p = PCA(2).fit(X); print(p.explained_variance_, p.explained_variance_ratio_)  # '%.12f'
    /// ```
    /// printed the constants below.
    #[test]
    fn matches_sklearn_small() {
        let x = small_matrix();
        let fit = Pca::new().n_components(2).fit(x.view()).unwrap();
        for (g, w) in fit.explained_variance().iter().zip(SKLEARN_VAR) {
            assert_abs_diff_eq!(*g, w, epsilon = 1e-9);
        }
        for (g, w) in fit.explained_variance_ratio().iter().zip(SKLEARN_RATIO) {
            assert_abs_diff_eq!(*g, w, epsilon = 1e-6);
        }
    }

    /// Without centring, the components are the right singular vectors of X: checked
    /// against the eigenvectors of XᵀX, and the scores are X times the components.
    #[test]
    fn uncentred_is_truncated_svd() {
        let x = small_matrix();
        let fit = Pca::new()
            .n_components(2)
            .zero_center(false)
            .fit(x.view())
            .unwrap();
        assert!(fit.mean().iter().all(|&m| m == 0.0));
        let x64 = x.mapv(|v| v as f64);
        let (vals, vecs) = top_eigen(&x64.t().dot(&x64), 2, 0).unwrap();
        for c in 0..2 {
            assert_abs_diff_eq!(fit.explained_variance()[c], vals[c] / 4.0, epsilon = 1e-9);
            let cos: f64 = (0..3)
                .map(|j| fit.components()[[c, j]] as f64 * vecs[[j, c]])
                .sum();
            assert_abs_diff_eq!(cos.abs(), 1.0, epsilon = 1e-6);
        }
        let z = fit.transform(x.view());
        let want = x.dot(&fit.components().t());
        assert_abs_diff_eq!(z, want, epsilon = 1e-6);
    }

    /// The 5 × 3 matrix of the sklearn comparison.
    fn small_matrix() -> ndarray::Array2<f32> {
        array![
            [1.0f32, 2.0, 0.0],
            [3.0, 1.0, 1.0],
            [0.0, 0.0, 4.0],
            [2.0, 5.0, 1.0],
            [1.0, 1.0, 1.0]
        ]
    }

    const SKLEARN_VAR: [f64; 2] = [4.975928856620, 1.597626362518];
    const SKLEARN_RATIO: [f64; 2] = [0.681634089948, 0.218852926372];

    /// Too many components or a query of the wrong width are errors.
    #[test]
    fn rejects_bad_shapes() {
        let x = array![[1.0f32, 2.0], [3.0, 4.0], [5.0, 7.0]];
        assert!(Pca::new().n_components(3).fit(x.view()).is_err());
        let fit = Pca::new().n_components(1).fit(x.view()).unwrap();
        assert!(fit.try_transform(array![[1.0f32]].view()).is_err());
    }
}
