//! Summary statistics that compare simulated counts with the real counts their
//! parameters were fitted on: mean library size, zero fraction and the gene
//! mean–variance trend (median log variance within bins of log mean).

use super::stats::{median, quantile};
use crate::data::CsrMatrix;

/// Per-gene mean and variance of raw counts (over all cells, zeros included).
pub fn gene_mean_var(m: &CsrMatrix) -> (Vec<f64>, Vec<f64>) {
    let n = m.n_rows().max(1) as f64;
    let mut sum = vec![0.0f64; m.n_cols()];
    let mut sum_sq = vec![0.0f64; m.n_cols()];
    for (&g, &v) in m.indices().iter().zip(m.data()) {
        sum[g as usize] += v as f64;
        sum_sq[g as usize] += (v as f64).powi(2);
    }
    let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
    let var = sum_sq
        .iter()
        .zip(&mean)
        .map(|(s2, mu)| (s2 / n - mu * mu).max(0.0))
        .collect();
    (mean, var)
}

/// Summary of a count matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct CountSummary {
    /// Mean total count per cell.
    pub mean_library: f64,
    /// Fraction of zero entries.
    pub zero_fraction: f64,
    /// Mean non-zero genes per cell.
    pub mean_detected: f64,
}

/// Mean library size, zero fraction and detected genes of `m`.
pub fn summarize_counts(m: &CsrMatrix) -> CountSummary {
    let n = m.n_rows().max(1) as f64;
    let total: f64 = m.data().iter().map(|&v| v as f64).sum();
    let cells = (m.n_rows() * m.n_cols()).max(1) as f64;
    CountSummary {
        mean_library: total / n,
        zero_fraction: 1.0 - m.nnz() as f64 / cells,
        mean_detected: m.nnz() as f64 / n,
    }
}

/// Edges of `n_bins` equal-count bins of log mean over the expressed genes of `m`.
pub fn log_mean_bin_edges(m: &CsrMatrix, n_bins: usize) -> Vec<f64> {
    let (mean, _) = gene_mean_var(m);
    let log_mean: Vec<f64> = mean.iter().filter(|&&x| x > 0.0).map(|x| x.ln()).collect();
    (0..=n_bins)
        .map(|i| quantile(&log_mean, i as f64 / n_bins as f64))
        .collect()
}

/// Median log variance of the expressed genes of `m` in each bin of log mean given by
/// `edges` (`None` for a bin with fewer than `min_genes` genes).
pub fn mean_variance_trend(m: &CsrMatrix, edges: &[f64], min_genes: usize) -> Vec<Option<f64>> {
    let (mean, var) = gene_mean_var(m);
    edges
        .windows(2)
        .enumerate()
        .map(|(i, w)| {
            let last = i + 2 == edges.len();
            let in_bin: Vec<f64> = mean
                .iter()
                .zip(&var)
                .filter(|(&mu, &v)| mu > 0.0 && v > 0.0)
                .filter(|(&mu, _)| {
                    let l = mu.ln();
                    l >= w[0] && (l < w[1] || (last && l <= w[1]))
                })
                .map(|(_, &v)| v.ln())
                .collect();
            (in_bin.len() >= min_genes).then(|| median(&in_bin))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Summary and gene moments of a tiny matrix match hand-computed values.
    #[test]
    fn summary_of_small_matrix() {
        let d = ndarray::array![[1.0f32, 0.0, 3.0], [0.0, 0.0, 1.0]];
        let m = CsrMatrix::from_dense(&d);
        let s = summarize_counts(&m);
        assert_eq!(s.mean_library, 2.5);
        assert_eq!(s.zero_fraction, 0.5);
        let (mean, var) = gene_mean_var(&m);
        assert_eq!(mean, vec![0.5, 0.0, 2.0]);
        assert_eq!(var, vec![0.25, 0.0, 1.0]);
        let edges = log_mean_bin_edges(&m, 1);
        let trend = mean_variance_trend(&m, &edges, 1);
        assert_eq!(trend.len(), 1);
        assert!((trend[0].unwrap() - median(&[0.25f64.ln(), 0.0])).abs() < 1e-12);
    }
}
