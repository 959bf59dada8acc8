//! Library-size normalization and log transform, as scanpy 1.11's
//! `sc.pp.normalize_total(adata, target_sum=1e4)` and `sc.pp.log1p(adata)`
//! (Wolf et al. 2018, Genome Biology 19:15), and Seurat's `LogNormalize`.
//!
//! Both keep the sparsity pattern: a cell whose counts sum to zero stays all zero
//! (scanpy divides such rows by 1 instead of 0), and `log1p(0) = 0`.

use crate::data::{CsrMatrix, ValueKind};

/// Scale every cell (row) so that its values sum to `target_sum`; rows summing to zero
/// are left unchanged. The row total is accumulated in `f64`, the division happens
/// in `f32` like scanpy on a float32 matrix.
pub fn normalize_total(x: &CsrMatrix, target_sum: f64) -> CsrMatrix {
    let mut out = x.clone();
    normalize_total_inplace(&mut out, target_sum);
    out
}

/// In-place form of [`normalize_total`].
pub fn normalize_total_inplace(x: &mut CsrMatrix, target_sum: f64) {
    let indptr = x.indptr().to_vec();
    let data = x.data_mut();
    for w in indptr.windows(2) {
        let row = &mut data[w[0]..w[1]];
        let total: f64 = row.iter().map(|&v| v as f64).sum();
        if total == 0.0 {
            continue;
        }
        // scanpy: counts / (total / target_sum), with the divisor cast to f32.
        let divisor = (total / target_sum) as f32;
        row.iter_mut().for_each(|v| *v /= divisor);
    }
}

/// Natural-log `ln(1 + x)` of every stored value (zeros stay zero).
pub fn log1p(x: &CsrMatrix) -> CsrMatrix {
    let mut out = x.clone();
    log1p_inplace(&mut out);
    out
}

/// Log-normalized values of a matrix holding `kind` values: `normalize_total` to
/// `target_sum` then `log1p` for counts (Seurat's LogNormalize); log-normalized or scaled
/// values are returned unchanged, so nothing is ever logged twice.
pub fn log_normalize(x: &CsrMatrix, kind: ValueKind, target_sum: f64) -> CsrMatrix {
    let mut m = x.clone();
    if kind == ValueKind::Counts {
        normalize_total_inplace(&mut m, target_sum);
        log1p_inplace(&mut m);
    }
    m
}

/// In-place form of [`log1p`].
pub fn log1p_inplace(x: &mut CsrMatrix) {
    x.data_mut().iter_mut().for_each(|v| *v = v.ln_1p());
}

/// Per-gene (column) mean and unbiased variance (ddof = 1) of a sparse matrix in
/// `f64`, two-pass like scanpy's `_get_mean_var`, after mapping every value (zeros
/// included) through `f`, which must satisfy `f(0) = 0`.
pub(crate) fn column_mean_var(x: &CsrMatrix, f: impl Fn(f32) -> f64) -> (Vec<f64>, Vec<f64>) {
    let (n, p) = x.shape();
    let mut mean = vec![0.0f64; p];
    let mut nnz = vec![0usize; p];
    for (&c, &v) in x.indices().iter().zip(x.data()) {
        mean[c as usize] += f(v);
        nnz[c as usize] += 1;
    }
    let nf = n.max(1) as f64;
    mean.iter_mut().for_each(|m| *m /= nf);
    let mut var = vec![0.0f64; p];
    for (&c, &v) in x.indices().iter().zip(x.data()) {
        let d = f(v) - mean[c as usize];
        var[c as usize] += d * d;
    }
    for j in 0..p {
        // Implicit zeros contribute (0 - mean)^2 each.
        var[j] += (n - nnz[j]) as f64 * mean[j] * mean[j];
        var[j] /= if n > 1 { (n - 1) as f64 } else { 1.0 };
    }
    (mean, var)
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;
    use ndarray::array;

    /// Each row is rescaled to the target sum; an all-zero row stays zero.
    #[test]
    fn normalize_rows_to_target() {
        let m = CsrMatrix::from_dense(&array![
            [1.0f32, 3.0, 0.0],
            [0.0, 0.0, 0.0],
            [2.0, 2.0, 6.0]
        ]);
        let d = normalize_total(&m, 100.0).to_dense();
        assert_abs_diff_eq!(
            d,
            array![[25.0f32, 75.0, 0.0], [0.0, 0.0, 0.0], [20.0, 20.0, 60.0]],
            epsilon = 1e-5
        );
    }

    /// log1p is the natural log of 1 + x, applied in place identically.
    #[test]
    fn log1p_natural() {
        let m = CsrMatrix::from_dense(&array![[0.0f32, 1.0, (std::f32::consts::E - 1.0)]]);
        let l = log1p(&m);
        assert_abs_diff_eq!(
            l.to_dense(),
            array![[0.0f32, std::f32::consts::LN_2, 1.0]],
            epsilon = 1e-6
        );
        let mut m2 = m.clone();
        log1p_inplace(&mut m2);
        assert_eq!(m2, l);
    }

    /// Column mean and ddof=1 variance count implicit zeros: column [1, 0, 2, 0] has
    /// mean 0.75 and variance (0.0625+0.5625+1.5625+0.5625)/3 = 0.9166...
    #[test]
    fn mean_var_counts_zeros() {
        let m = CsrMatrix::from_dense(&array![[1.0f32], [0.0], [2.0], [0.0]]);
        let (mu, var) = column_mean_var(&m, |v| v as f64);
        assert_abs_diff_eq!(mu[0], 0.75, epsilon = 1e-12);
        assert_abs_diff_eq!(var[0], 2.75 / 3.0, epsilon = 1e-12);
    }
}
