//! Per-gene standardization, as scanpy 1.11's `sc.pp.scale(adata, max_value=10)`:
//! subtract the gene mean, divide by its standard deviation (ddof = 1; a gene with
//! sd 0 is divided by 1) and clip to `[-max_value, max_value]` (only the upper bound
//! without centring). Seurat's `ScaleData` differs only in clipping: it clips above
//! (`scale.max`) and never below, which [`Scaler::clip_both_sides`] selects. Mean and sd
//! are fitted on the reference and reused on queries, as Seurat's `ProjectData` does
//! with the reference's `ScaleData`.

use crate::data::CsrMatrix;
use crate::error::{Error, Result};
use ndarray::{Array2, ArrayView2, Axis, Zip};

/// Scaling parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Scaler {
    zero_center: bool,
    max_value: Option<f32>,
    clip_both_sides: bool,
}

impl Default for Scaler {
    fn default() -> Self {
        Self {
            zero_center: true,
            max_value: Some(10.0),
            clip_both_sides: true,
        }
    }
}

impl Scaler {
    /// Default parameters (see each setter).
    pub fn new() -> Self {
        Self::default()
    }
    /// Subtract the gene means, defaults to true.
    pub fn zero_center(mut self, zero_center: bool) -> Self {
        self.zero_center = zero_center;
        self
    }
    /// Clip scaled values at this magnitude, defaults to `Some(10.0)` (Seurat's
    /// `scale.max`); `None` keeps every value.
    pub fn max_value(mut self, max_value: Option<f32>) -> Self {
        self.max_value = max_value;
        self
    }
    /// With centring, also clip below at `-max_value`, defaults to true (scanpy).
    /// Seurat's `ScaleData` clips only above: false.
    pub fn clip_both_sides(mut self, both: bool) -> Self {
        self.clip_both_sides = both;
        self
    }

    /// Learn per-gene mean and sd (ddof 1, in `f64`) from dense cells × genes data.
    pub fn fit(&self, x: ArrayView2<f32>) -> Result<FittedScaler> {
        self.check(x.nrows())?;
        let n = x.nrows() as f64;
        let mut mean = vec![0.0f64; x.ncols()];
        let mut var = vec![0.0f64; x.ncols()];
        for row in x.axis_iter(Axis(0)) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        for row in x.axis_iter(Axis(0)) {
            for ((s, &m), &v) in var.iter_mut().zip(&mean).zip(row) {
                *s += (v as f64 - m).powi(2);
            }
        }
        var.iter_mut().for_each(|s| *s /= n - 1.0);
        Ok(self.fitted(mean, var))
    }

    /// [`Scaler::fit`] on sparse data without densifying it.
    pub fn fit_sparse(&self, x: &CsrMatrix) -> Result<FittedScaler> {
        self.check(x.n_rows())?;
        let (mean, var) = super::normalize::column_mean_var(x, |v| v as f64);
        Ok(self.fitted(mean, var))
    }

    fn check(&self, n_rows: usize) -> Result<()> {
        if n_rows < 2 {
            return Err(Error::param(
                "scale",
                format!("needs at least 2 cells, got {n_rows}"),
            ));
        }
        if let Some(m) = self.max_value {
            if m.is_nan() || m <= 0.0 {
                return Err(Error::param(
                    "max_value",
                    format!("must be positive, got {m}"),
                ));
            }
        }
        Ok(())
    }

    fn fitted(&self, mean: Vec<f64>, var: Vec<f64>) -> FittedScaler {
        let std: Vec<f64> = var
            .iter()
            .map(|&v| if v > 0.0 { v.sqrt() } else { 1.0 })
            .collect();
        let mean = if self.zero_center {
            mean
        } else {
            vec![0.0; std.len()]
        };
        FittedScaler {
            clip_lower: self.zero_center && self.clip_both_sides,
            max_value: self.max_value,
            mean,
            std,
        }
    }
}

/// Fitted per-gene means and standard deviations.
#[derive(Debug, Clone, PartialEq)]
pub struct FittedScaler {
    clip_lower: bool,
    max_value: Option<f32>,
    mean: Vec<f64>,
    std: Vec<f64>,
}

impl FittedScaler {
    /// Per-gene means (all zero when fitted without centring).
    pub fn means(&self) -> &[f64] {
        &self.mean
    }
    /// Per-gene standard deviations (ddof 1; 1 for constant genes).
    pub fn stds(&self) -> &[f64] {
        &self.std
    }
    /// Number of genes.
    pub fn n_genes(&self) -> usize {
        self.std.len()
    }

    /// The scaled value of gene `j` for raw value `v` (clipping included).
    #[inline]
    pub(crate) fn scale_value(&self, j: usize, v: f32) -> f32 {
        let z = ((v as f64 - self.mean[j]) / self.std[j]) as f32;
        match self.max_value {
            Some(m) if z > m => m,
            Some(m) if self.clip_lower && z < -m => -m,
            _ => z,
        }
    }

    fn check(&self, n_cols: usize) -> Result<()> {
        if n_cols != self.n_genes() {
            return Err(Error::Incompatible(format!(
                "scaler was fitted on {} genes but the data has {}",
                self.n_genes(),
                n_cols
            )));
        }
        Ok(())
    }

    /// Scale dense cells × genes data with the fitted statistics.
    ///
    /// # Panics
    /// When `x` does not have the fitted number of genes; use
    /// [`FittedScaler::try_transform`] for data from users.
    pub fn transform(&self, x: ArrayView2<f32>) -> Array2<f32> {
        match self.try_transform(x) {
            Ok(z) => z,
            Err(e) => panic!("{e}"),
        }
    }

    /// [`FittedScaler::transform`] that reports a gene-count mismatch as an error.
    pub fn try_transform(&self, x: ArrayView2<f32>) -> Result<Array2<f32>> {
        self.check(x.ncols())?;
        let mut out = x.to_owned();
        Zip::from(out.rows_mut()).par_for_each(|mut row| {
            row.iter_mut()
                .enumerate()
                .for_each(|(j, v)| *v = self.scale_value(j, *v));
        });
        Ok(out)
    }

    /// Scale sparse data into a dense matrix (zeros become `-mean/std`).
    pub fn transform_sparse(&self, x: &CsrMatrix) -> Result<Array2<f32>> {
        self.check(x.n_cols())?;
        let zero_row: Vec<f32> = (0..self.n_genes())
            .map(|j| self.scale_value(j, 0.0))
            .collect();
        let mut out = Array2::<f32>::zeros((x.n_rows(), x.n_cols()));
        Zip::indexed(out.rows_mut()).par_for_each(|i, mut row| {
            row.iter_mut().zip(&zero_row).for_each(|(o, &z)| *o = z);
            let (idx, val) = x.row(i);
            for (&c, &v) in idx.iter().zip(val) {
                row[c as usize] = self.scale_value(c as usize, v);
            }
        });
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;
    use ndarray::array;

    /// Column [1, 2, 3] has mean 2, sd 1 (ddof 1) and scales to [-1, 0, 1]; a constant
    /// column keeps sd 1 and becomes 0.
    #[test]
    fn standardizes_with_ddof1() {
        let x = array![[1.0f32, 5.0], [2.0, 5.0], [3.0, 5.0]];
        let fit = Scaler::new().fit(x.view()).unwrap();
        assert_abs_diff_eq!(fit.stds()[0], 1.0, epsilon = 1e-12);
        assert_abs_diff_eq!(fit.stds()[1], 1.0, epsilon = 1e-12);
        let z = fit.transform(x.view());
        assert_abs_diff_eq!(
            z,
            array![[-1.0f32, 0.0], [0.0, 0.0], [1.0, 0.0]],
            epsilon = 1e-6
        );
    }

    /// Values beyond max_value are clipped on both sides when centring; the sparse
    /// path gives the same numbers as the dense one.
    #[test]
    fn clips_and_sparse_matches_dense() {
        let mut x = Array2::<f32>::zeros((30, 2));
        x[[0, 0]] = 100.0;
        x[[1, 1]] = 3.0;
        let fit = Scaler::new().max_value(Some(2.0)).fit(x.view()).unwrap();
        let z = fit.transform(x.view());
        assert_eq!(z[[0, 0]], 2.0);
        assert!(z.iter().all(|v| v.abs() <= 2.0));
        let s = CsrMatrix::from_dense(&x);
        let fit_s = Scaler::new().max_value(Some(2.0)).fit_sparse(&s).unwrap();
        for (a, b) in fit.stds().iter().zip(fit_s.stds()) {
            assert_abs_diff_eq!(*a, *b, epsilon = 1e-9);
        }
        assert_abs_diff_eq!(fit_s.transform_sparse(&s).unwrap(), z, epsilon = 1e-6);
    }

    /// Seurat's clipping: only values above max_value are clipped, so a far-below-mean
    /// value keeps its z-score.
    #[test]
    fn upper_clip_only() {
        let mut x = Array2::<f32>::from_elem((30, 1), 10.0);
        x[[0, 0]] = -100.0;
        x[[1, 0]] = 100.0;
        let fit = Scaler::new()
            .max_value(Some(2.0))
            .clip_both_sides(false)
            .fit(x.view())
            .unwrap();
        let z = fit.transform(x.view());
        assert_eq!(z[[1, 0]], 2.0);
        let want = ((-100.0 - fit.means()[0]) / fit.stds()[0]) as f32;
        assert_abs_diff_eq!(z[[0, 0]], want, epsilon = 1e-6);
        assert!(z[[0, 0]] < -2.0);
    }

    /// A query with a different number of genes is rejected.
    #[test]
    fn rejects_wrong_width() {
        let fit = Scaler::new()
            .fit(array![[1.0f32, 2.0], [3.0, 4.0]].view())
            .unwrap();
        assert!(fit.try_transform(array![[1.0f32], [2.0]].view()).is_err());
    }
}
