//! Seurat's `ScaleData` matrix as a linear operator, without densifying it.
//!
//! The scaled value of gene `j` in a cell is `min((x − μ_j) / σ_j, scale_max)`. A zero
//! count scales to `−μ_j / σ_j`, which is never clipped, so the scaled matrix is exactly
//! `A = S − 1·cᵀ` with `c_j = μ_j / σ_j` and `S` sparse on the non-zeros of `x`
//! (`S_ij = min((x_ij − μ_j)/σ_j, scale_max) + c_j`). Products with `A` and `Aᵀ` are then
//! sparse products plus a rank-one correction, which is what the truncated SVD of
//! [`super::svd`] needs; the dense `cells × features` matrix is never built. Constant
//! features (σ = 0) scale to 0, as in the dense form.

use super::svd::Operator;
use crate::data::CsrMatrix;
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

/// `S − 1·cᵀ` with `S` held in both row (CSR) and column (CSC, as the CSR of `Sᵀ`) form.
#[derive(Debug, Clone)]
pub struct ScaledCsr {
    rows: SparseRows,
    cols: SparseRows,
    shift: Vec<f32>,
}

/// Plain CSR arrays (`n` rows).
#[derive(Debug, Clone)]
struct SparseRows {
    indptr: Vec<usize>,
    indices: Vec<u32>,
    data: Vec<f32>,
}

/// `(v − mean) / sd` clipped above at `scale_max`; constant features scale to 0.
pub fn scale_value(v: f32, mean: f64, sd: f64, scale_max: f32) -> f32 {
    if sd > 0.0 {
        (((v as f64 - mean) / sd) as f32).min(scale_max)
    } else {
        0.0
    }
}

impl ScaledCsr {
    /// The scaled form of `x` (cells × features) with per-feature `mean` and `sd`.
    pub fn new(x: &CsrMatrix, mean: &[f64], sd: &[f64], scale_max: f32) -> Self {
        let shift: Vec<f32> = (0..x.n_cols())
            .map(|j| -scale_value(0.0, mean[j], sd[j], scale_max))
            .collect();
        let data: Vec<f32> = x
            .indices()
            .iter()
            .zip(x.data())
            .map(|(&c, &v)| {
                let j = c as usize;
                scale_value(v, mean[j], sd[j], scale_max) + shift[j]
            })
            .collect();
        let rows = SparseRows {
            indptr: x.indptr().to_vec(),
            indices: x.indices().to_vec(),
            data,
        };
        let cols = rows.transpose(x.n_cols());
        Self { rows, cols, shift }
    }
}

impl SparseRows {
    fn n_rows(&self) -> usize {
        self.indptr.len() - 1
    }

    /// The CSR arrays of the transpose (`n_cols` rows); row indices come out sorted.
    fn transpose(&self, n_cols: usize) -> SparseRows {
        let mut indptr = vec![0usize; n_cols + 1];
        for &c in &self.indices {
            indptr[c as usize + 1] += 1;
        }
        for j in 0..n_cols {
            indptr[j + 1] += indptr[j];
        }
        let mut next = indptr.clone();
        let mut indices = vec![0u32; self.indices.len()];
        let mut data = vec![0f32; self.data.len()];
        for r in 0..self.n_rows() {
            for k in self.indptr[r]..self.indptr[r + 1] {
                let c = self.indices[k] as usize;
                indices[next[c]] = r as u32;
                data[next[c]] = self.data[k];
                next[c] += 1;
            }
        }
        SparseRows {
            indptr,
            indices,
            data,
        }
    }

    /// `self · x` minus a rank-one correction: `correction` (one value per column of `x`)
    /// is subtracted from every row, scaled by `per_row[r]` when given. Rows of the
    /// result are computed in parallel.
    fn times(
        &self,
        x: ArrayView2<f32>,
        correction: &[f32],
        per_row: Option<&[f32]>,
    ) -> Array2<f32> {
        let l = x.ncols();
        let x = x.as_standard_layout();
        let xs = x.as_slice().unwrap_or(&[]);
        let mut out = vec![0f32; self.n_rows() * l];
        if l > 0 {
            out.par_chunks_mut(l).enumerate().for_each(|(r, row)| {
                for k in self.indptr[r]..self.indptr[r + 1] {
                    let v = self.data[k];
                    let src = &xs[self.indices[k] as usize * l..][..l];
                    for (o, &s) in row.iter_mut().zip(src) {
                        *o += v * s;
                    }
                }
                let f = per_row.map_or(1.0, |w| w[r]);
                for (o, &c) in row.iter_mut().zip(correction) {
                    *o -= f * c;
                }
            });
        }
        Array2::from_shape_vec((self.n_rows(), l), out).unwrap_or_default()
    }
}

impl Operator for ScaledCsr {
    fn shape(&self) -> (usize, usize) {
        (self.rows.n_rows(), self.cols.n_rows())
    }

    fn apply(&self, x: ArrayView2<f32>) -> Array2<f32> {
        // A x = S x − 1 (cᵀ x)
        let cx: Vec<f32> = x
            .columns()
            .into_iter()
            .map(|col| {
                col.iter()
                    .zip(&self.shift)
                    .map(|(&a, &c)| a as f64 * c as f64)
                    .sum::<f64>() as f32
            })
            .collect();
        self.rows.times(x, &cx, None)
    }

    fn apply_t(&self, y: ArrayView2<f32>) -> Array2<f32> {
        // Aᵀ y = Sᵀ y − c (1ᵀ y)
        let colsum: Vec<f32> = y
            .columns()
            .into_iter()
            .map(|col| col.iter().map(|&a| a as f64).sum::<f64>() as f32)
            .collect();
        self.cols.times(y, &colsum, Some(&self.shift))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn sparse_example() -> (CsrMatrix, Vec<f64>, Vec<f64>) {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let dense = Array2::<f32>::from_shape_fn((40, 7), |(_, j)| {
            if j == 6 {
                0.0 // a constant feature
            } else if rng.gen::<f64>() < 0.3 {
                rng.gen_range(0.5f32..(3.0 + 20.0 * (j == 2) as u8 as f32))
            } else {
                0.0
            }
        });
        let x = CsrMatrix::from_dense(&dense);
        let (mean, var) = super::super::vst::column_mean_var(&x);
        let sd = var.iter().map(|v| v.sqrt()).collect();
        (x, mean, sd)
    }

    /// Products with the implicit form equal products with the dense clipped scaled
    /// matrix, both ways, with a clip low enough that some values are clipped.
    #[test]
    fn matches_dense_scaled_matrix() {
        let (x, mean, sd) = sparse_example();
        let scale_max = 2.0; // low enough that some values are clipped
        let mut dense = x.to_dense();
        for ((_, j), v) in dense.indexed_iter_mut() {
            *v = scale_value(*v, mean[j], sd[j], scale_max);
        }
        assert!(dense.iter().any(|&v| v == scale_max), "no clipped value");
        let op = ScaledCsr::new(&x, &mean, &sd, scale_max);
        assert_eq!(op.shape(), (40, 7));
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let v = Array2::<f32>::from_shape_fn((7, 3), |_| rng.gen_range(-1.0..1.0));
        let u = Array2::<f32>::from_shape_fn((40, 3), |_| rng.gen_range(-1.0..1.0));
        for (a, b) in op.apply(v.view()).iter().zip(dense.dot(&v).iter()) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
        for (a, b) in op.apply_t(u.view()).iter().zip(dense.t().dot(&u).iter()) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }
}
