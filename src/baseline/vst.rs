//! Seurat's `vst` variable-feature selection (`FindVariableFeatures(selection.method =
//! "vst")`, Stuart et al. 2019, satijalab/seurat R/preprocessing.R): per gene mean and
//! variance of the stored values (Seurat runs it on the counts slot; for data that arrive
//! already log-normalized the stored values are used), a degree-2 loess fit of
//! `log10(variance)` on `log10(mean)` (span 0.3) over non-constant genes, then the variance
//! of values standardised by the fitted standard deviation and clipped at `sqrt(n_cells)`.
//! Genes are ranked by that standardised variance.
//!
//! Difference from R: R's `loess` evaluates the fit on a kd-tree of vertices and
//! interpolates between them (`surface = "interpolate"`); here the local regression is
//! evaluated exactly at every gene (`surface = "direct"`). The two agree to a few parts in
//! 10⁴ on smooth mean–variance trends, which moves at most genes at the selection boundary.

use crate::data::CsrMatrix;
use crate::error::{Error, Result};

/// Per-gene (column) mean and sample variance (divisor n − 1) of a cells × genes matrix,
/// zeros included, as Seurat's `SparseRowVar2`.
pub fn column_mean_var(x: &CsrMatrix) -> (Vec<f64>, Vec<f64>) {
    let n = x.n_rows() as f64;
    let p = x.n_cols();
    let mut sum = vec![0.0f64; p];
    let mut nnz = vec![0usize; p];
    for (&c, &v) in x.indices().iter().zip(x.data()) {
        sum[c as usize] += v as f64;
        nnz[c as usize] += 1;
    }
    let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
    let mut ss = vec![0.0f64; p];
    for (&c, &v) in x.indices().iter().zip(x.data()) {
        let d = v as f64 - mean[c as usize];
        ss[c as usize] += d * d;
    }
    let denom = (n - 1.0).max(1.0);
    let var = (0..p)
        .map(|j| (ss[j] + (n - nnz[j] as f64) * mean[j] * mean[j]) / denom)
        .collect();
    (mean, var)
}

/// Genes ranked by Seurat's vst standardised variance, most variable first; the first
/// `n_features` are returned (all genes when there are fewer). Ties keep gene order.
pub fn vst_select(x: &CsrMatrix, n_features: usize, span: f64, source: &str) -> Result<Vec<usize>> {
    let n_cells = x.n_rows();
    if n_cells < 2 {
        return Err(Error::invalid(
            source,
            "X",
            format!("vst needs at least 2 reference cells, got {n_cells}"),
        ));
    }
    let std_var = vst_standardized_variance(x, span)?;
    let mut order: Vec<usize> = (0..x.n_cols()).collect();
    order.sort_by(|&a, &b| std_var[b].total_cmp(&std_var[a]).then(a.cmp(&b)));
    order.truncate(n_features.min(x.n_cols()));
    Ok(order)
}

/// The vst standardised variance of every gene (0 for constant genes).
pub fn vst_standardized_variance(x: &CsrMatrix, span: f64) -> Result<Vec<f64>> {
    if !(span > 0.0 && span <= 1.0) {
        return Err(Error::param(
            "loess_span",
            format!("must be in (0, 1], got {span}"),
        ));
    }
    let n = x.n_rows() as f64;
    let (mean, var) = column_mean_var(x);
    let not_const: Vec<usize> = (0..x.n_cols()).filter(|&j| var[j] > 0.0).collect();
    let mut expected_sd = vec![0.0f64; x.n_cols()];
    if not_const.len() >= 3 {
        let lx: Vec<f64> = not_const.iter().map(|&j| mean[j].log10()).collect();
        let ly: Vec<f64> = not_const.iter().map(|&j| var[j].log10()).collect();
        let fitted = loess_quadratic(&lx, &ly, span);
        for (&j, f) in not_const.iter().zip(fitted) {
            expected_sd[j] = 10f64.powf(f).sqrt();
        }
    } else {
        // Too few genes for a trend: standardise by each gene's own variance.
        for &j in &not_const {
            expected_sd[j] = var[j].sqrt();
        }
    }
    let vmax = n.sqrt();
    let mut acc = vec![0.0f64; x.n_cols()];
    let mut nnz = vec![0usize; x.n_cols()];
    for (&c, &v) in x.indices().iter().zip(x.data()) {
        let j = c as usize;
        nnz[j] += 1;
        if expected_sd[j] > 0.0 {
            let z = ((v as f64 - mean[j]) / expected_sd[j]).min(vmax);
            acc[j] += z * z;
        }
    }
    Ok((0..x.n_cols())
        .map(|j| {
            if expected_sd[j] > 0.0 {
                let z0 = mean[j] / expected_sd[j];
                (acc[j] + (n - nnz[j] as f64) * z0 * z0) / (n - 1.0)
            } else {
                0.0
            }
        })
        .collect())
}

/// Local quadratic regression (loess, degree 2, tricube weights, no robustness
/// iterations) of `y` on `x`, evaluated at every `x`. The neighbourhood of each point is
/// its `floor(n · span)` nearest points in `x`, as in R's `loess` with `span < 1`.
pub fn loess_quadratic(x: &[f64], y: &[f64], span: f64) -> Vec<f64> {
    let n = x.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let xs: Vec<f64> = order.iter().map(|&i| x[i]).collect();
    let ys: Vec<f64> = order.iter().map(|&i| y[i]).collect();
    let q = ((n as f64 * span).floor() as usize).clamp(3.min(n), n);
    let mut fitted_sorted = vec![0.0; n];
    let mut lo = 0usize;
    for i in 0..n {
        let x0 = xs[i];
        // Slide the window [lo, lo + q) so it holds the q nearest points of x0.
        while lo + q < n && x0 - xs[lo] > xs[lo + q] - x0 {
            lo += 1;
        }
        let hi = lo + q;
        let h = (x0 - xs[lo]).max(xs[hi - 1] - x0);
        fitted_sorted[i] = local_quadratic(&xs, &ys, lo, hi, x0, h);
    }
    let mut fitted = vec![0.0; n];
    for (k, &i) in order.iter().enumerate() {
        fitted[i] = fitted_sorted[k];
    }
    fitted
}

/// Weighted least-squares quadratic in `(x − x0)` over points `lo..hi`; returns its value at x0.
fn local_quadratic(xs: &[f64], ys: &[f64], lo: usize, hi: usize, x0: f64, h: f64) -> f64 {
    // Normal equations of [1, d, d²] with tricube weights; d scaled by h for conditioning.
    let mut m = [[0.0f64; 3]; 3];
    let mut r = [0.0f64; 3];
    let mut any = false;
    for k in lo..hi {
        let d = if h > 0.0 { (xs[k] - x0) / h } else { 0.0 };
        let a = d.abs();
        let w = if a < 1.0 {
            (1.0 - a * a * a).powi(3)
        } else {
            0.0
        };
        if w == 0.0 {
            continue;
        }
        any = true;
        let basis = [1.0, d, d * d];
        for u in 0..3 {
            r[u] += w * basis[u] * ys[k];
            for v in 0..3 {
                m[u][v] += w * basis[u] * basis[v];
            }
        }
    }
    if !any {
        return ys[lo..hi].iter().sum::<f64>() / (hi - lo) as f64;
    }
    solve3(m, r).map(|b| b[0]).unwrap_or_else(|| r[0] / m[0][0])
}

/// Solve a 3×3 system by Gaussian elimination with partial pivoting (None if singular).
fn solve3(mut m: [[f64; 3]; 3], mut r: [f64; 3]) -> Option<[f64; 3]> {
    let scale = m[0][0].abs().max(1e-300);
    for col in 0..3 {
        let piv = (col..3).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))?;
        if m[piv][col].abs() <= 1e-12 * scale {
            return None;
        }
        m.swap(col, piv);
        r.swap(col, piv);
        for row in col + 1..3 {
            let f = m[row][col] / m[col][col];
            let pivot_row = m[col];
            for (c, v) in m[row].iter_mut().enumerate().skip(col) {
                *v -= f * pivot_row[c];
            }
            r[row] -= f * r[col];
        }
    }
    let mut b = [0.0; 3];
    for row in (0..3).rev() {
        let s: f64 = (row + 1..3).map(|c| m[row][c] * b[c]).sum();
        b[row] = (r[row] - s) / m[row][row];
    }
    Some(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loess of an exact quadratic reproduces it (a degree-2 local fit is exact on it).
    #[test]
    fn loess_reproduces_quadratic() {
        let x: Vec<f64> = (0..200).map(|i| i as f64 / 20.0).collect();
        let y: Vec<f64> = x.iter().map(|v| 1.0 + 0.5 * v - 0.2 * v * v).collect();
        let f = loess_quadratic(&x, &y, 0.3);
        for (a, b) in f.iter().zip(&y) {
            assert!((a - b).abs() < 1e-8, "{a} vs {b}");
        }
    }

    /// Mean and variance include the implicit zeros and use the n − 1 divisor.
    #[test]
    fn column_stats_include_zeros() {
        let d = ndarray::array![[1.0f32, 0.0], [0.0, 0.0], [2.0, 0.0], [0.0, 0.0]];
        let (m, v) = column_mean_var(&CsrMatrix::from_dense(&d));
        assert!((m[0] - 0.75).abs() < 1e-12);
        // values 1,0,2,0: sum of squared deviations 2.75, / 3
        assert!((v[0] - 2.75 / 3.0).abs() < 1e-12);
        assert_eq!(v[1], 0.0);
    }

    /// A gene with extra variance on top of a Poisson-like trend ranks first, constant
    /// genes last, and asking for more genes than exist returns all of them.
    #[test]
    fn vst_ranks_overdispersed_gene_first() {
        use rand::SeedableRng;
        use rand_distr::{Distribution, Poisson};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let (n, p) = (300, 40);
        let mut dense = ndarray::Array2::<f32>::zeros((n, p));
        for j in 0..p - 1 {
            let lambda = 0.2 + j as f64 * 0.3;
            let pois = Poisson::new(lambda).unwrap();
            for i in 0..n {
                dense[[i, j]] = pois.sample(&mut rng) as f32;
            }
        }
        // Gene 5: bimodal (half the cells high), far above the trend.
        for i in 0..n / 2 {
            dense[[i, 5]] += 20.0;
        }
        let x = CsrMatrix::from_dense(&dense);
        let sel = vst_select(&x, 100, 0.3, "test").unwrap();
        assert_eq!(sel.len(), p);
        assert_eq!(sel[0], 5);
        assert_eq!(*sel.last().unwrap(), p - 1);
    }
}
