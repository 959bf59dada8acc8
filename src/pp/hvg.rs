//! Highly variable genes, as scanpy 1.11's `sc.pp.highly_variable_genes` with
//! `flavor="seurat"` (Satija et al. 2015: binned, z-scored log dispersion) and
//! `flavor="seurat_v3"` (Stuart et al. 2019, Seurat's `FindVariableFeatures(selection.method
//! = "vst")`: LOESS of log10 variance on log10 mean, variance of the standardized,
//! clipped counts). Single batch only.
//!
//! `Seurat` expects log-normalized data (it undoes the log with `expm1` itself, like
//! scanpy); `SeuratV3` expects raw counts.

use super::loess::Loess;
use super::normalize::column_mean_var;
use crate::data::CsrMatrix;
use crate::error::{Error, Result};

/// Which selection rule to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HvgFlavor {
    /// scanpy `seurat`: normalized log dispersion within 20 mean bins; log-normalized input.
    Seurat,
    /// scanpy `seurat_v3` / Seurat vst: LOESS-standardized variance; count input.
    SeuratV3,
}

/// Highly-variable-gene selection parameters (scanpy's defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct HvgParams {
    flavor: HvgFlavor,
    n_top_genes: Option<usize>,
    span: f64,
    n_bins: usize,
    min_mean: f64,
    max_mean: f64,
    min_disp: f64,
    max_disp: f64,
}

impl Default for HvgParams {
    fn default() -> Self {
        Self {
            flavor: HvgFlavor::Seurat,
            n_top_genes: None,
            span: 0.3,
            n_bins: 20,
            min_mean: 0.0125,
            max_mean: 3.0,
            min_disp: 0.5,
            max_disp: f64::INFINITY,
        }
    }
}

impl HvgParams {
    /// Default parameters (see each setter).
    pub fn new() -> Self {
        Self::default()
    }
    /// Selection rule, defaults to [`HvgFlavor::Seurat`].
    pub fn flavor(mut self, flavor: HvgFlavor) -> Self {
        self.flavor = flavor;
        self
    }
    /// Number of genes to keep, defaults to `None`: for `Seurat` the cutoffs below
    /// decide; `SeuratV3` then keeps 2000 (Seurat's `nfeatures`). With `Seurat`, genes
    /// tied at the cutoff are all kept (scanpy's `>=`), so slightly more may be selected.
    pub fn n_top_genes(mut self, n: Option<usize>) -> Self {
        self.n_top_genes = n;
        self
    }
    /// LOESS span for `SeuratV3`, defaults to 0.3.
    pub fn span(mut self, span: f64) -> Self {
        self.span = span;
        self
    }
    /// Number of equal-width mean bins for `Seurat`, defaults to 20.
    pub fn n_bins(mut self, n_bins: usize) -> Self {
        self.n_bins = n_bins;
        self
    }
    /// `Seurat` cutoffs without `n_top_genes`: log1p-mean strictly between `min_mean`
    /// (default 0.0125) and `max_mean` (default 3).
    pub fn mean_range(mut self, min_mean: f64, max_mean: f64) -> Self {
        self.min_mean = min_mean;
        self.max_mean = max_mean;
        self
    }
    /// `Seurat` cutoffs without `n_top_genes`: normalized dispersion strictly between
    /// `min_disp` (default 0.5) and `max_disp` (default +inf).
    pub fn dispersion_range(mut self, min_disp: f64, max_disp: f64) -> Self {
        self.min_disp = min_disp;
        self.max_disp = max_disp;
        self
    }

    /// The flavor these parameters select with.
    pub(crate) fn selected_flavor(&self) -> HvgFlavor {
        self.flavor
    }

    fn check(&self, x: &CsrMatrix) -> Result<()> {
        if self.n_top_genes == Some(0) {
            return Err(Error::param("n_top_genes", "must be at least 1"));
        }
        if self.n_bins == 0 {
            return Err(Error::param("n_bins", "must be at least 1"));
        }
        if x.n_rows() < 2 || x.n_cols() == 0 {
            return Err(Error::param(
                "hvg",
                format!(
                    "needs at least 2 cells and 1 gene, got {} × {}",
                    x.n_rows(),
                    x.n_cols()
                ),
            ));
        }
        if let Some(v) = x.data().iter().find(|v| !v.is_finite()) {
            return Err(Error::invalid(
                "expression matrix",
                "X",
                format!("non-finite value {v}"),
            ));
        }
        if self.flavor == HvgFlavor::SeuratV3 && x.data().iter().any(|&v| v < 0.0) {
            return Err(Error::invalid(
                "expression matrix",
                "X",
                "seurat_v3 expects counts but found negative values",
            ));
        }
        Ok(())
    }

    /// Score every gene of `x` (cells × genes) and select the highly variable ones.
    pub fn fit(&self, x: &CsrMatrix) -> Result<FittedHvg> {
        self.check(x)?;
        match self.flavor {
            HvgFlavor::Seurat => self.fit_seurat(x),
            HvgFlavor::SeuratV3 => self.fit_seurat_v3(x),
        }
    }

    fn fit_seurat(&self, x: &CsrMatrix) -> Result<FittedHvg> {
        // scanpy undoes log1p in float32, then takes f64 moments.
        let (mut mean, var) = column_mean_var(x, |v| v.exp_m1() as f64);
        let mut dispersion = vec![0.0f64; mean.len()];
        for j in 0..mean.len() {
            if mean[j] == 0.0 {
                mean[j] = 1e-12;
            }
            let d = var[j] / mean[j];
            dispersion[j] = if d == 0.0 { f64::NAN } else { d.ln() };
            mean[j] = mean[j].ln_1p();
        }
        let bins = cut_equal_width(&mean, self.n_bins);
        let norm = normalize_within_bins(&dispersion, &bins, self.n_bins);
        let selected: Vec<usize> = match self.n_top_genes {
            Some(n_top) => {
                let mut finite: Vec<f64> = norm.iter().copied().filter(|v| !v.is_nan()).collect();
                if finite.is_empty() {
                    return Err(Error::invalid(
                        "expression matrix",
                        "X",
                        "no gene has a finite normalized dispersion (all genes constant?)",
                    ));
                }
                finite.sort_by(|a, b| b.total_cmp(a));
                let cutoff = finite[n_top.min(finite.len()) - 1];
                (0..norm.len())
                    .filter(|&j| !norm[j].is_nan() && norm[j] >= cutoff)
                    .collect()
            }
            None => (0..norm.len())
                .filter(|&j| {
                    let d = if norm[j].is_nan() { 0.0 } else { norm[j] };
                    mean[j] > self.min_mean
                        && mean[j] < self.max_mean
                        && d > self.min_disp
                        && d < self.max_disp
                })
                .collect(),
        };
        Ok(FittedHvg {
            flavor: HvgFlavor::Seurat,
            n_genes: x.n_cols(),
            selected,
            means: mean,
            dispersions: dispersion,
            norm,
        })
    }

    fn fit_seurat_v3(&self, x: &CsrMatrix) -> Result<FittedHvg> {
        let n = x.n_rows();
        let (mean, var) = column_mean_var(x, |v| v as f64);
        let varying: Vec<usize> = (0..var.len()).filter(|&j| var[j] > 0.0).collect();
        if varying.len() < 3 {
            return Err(Error::invalid(
                "expression matrix",
                "X",
                "seurat_v3 needs at least 3 non-constant genes",
            ));
        }
        let lx: Vec<f64> = varying.iter().map(|&j| mean[j].log10()).collect();
        let ly: Vec<f64> = varying.iter().map(|&j| var[j].log10()).collect();
        let fit = Loess::new(self.span).fit(&lx, &ly)?;
        let mut reg_std = vec![1.0f64; var.len()];
        for (&j, &xv) in varying.iter().zip(&lx) {
            reg_std[j] = 10f64.powf(fit.predict(xv)).sqrt();
        }
        // Standardize with the fitted sd, clip at sqrt(n) (only non-zeros can exceed it).
        let vmax = (n as f64).sqrt();
        let clip: Vec<f64> = (0..var.len())
            .map(|j| reg_std[j] * vmax + mean[j])
            .collect();
        let mut sum = vec![0.0f64; var.len()];
        let mut sum_sq = vec![0.0f64; var.len()];
        for (&c, &v) in x.indices().iter().zip(x.data()) {
            let c = c as usize;
            let v = (v as f64).min(clip[c]);
            sum[c] += v;
            sum_sq[c] += v * v;
        }
        let nf = n as f64;
        let norm: Vec<f64> = (0..var.len())
            .map(|j| {
                (nf * mean[j] * mean[j] + sum_sq[j] - 2.0 * sum[j] * mean[j])
                    / ((nf - 1.0) * reg_std[j] * reg_std[j])
            })
            .collect();
        let n_top = self.n_top_genes.unwrap_or(2000).min(norm.len());
        let mut order: Vec<usize> = (0..norm.len()).collect();
        // Descending; NaN last; ties keep gene order.
        order.sort_by(|&a, &b| match (norm[a].is_nan(), norm[b].is_nan()) {
            (false, false) => norm[b].total_cmp(&norm[a]),
            (na, nb) => na.cmp(&nb),
        });
        let mut selected = order[..n_top].to_vec();
        selected.sort_unstable();
        Ok(FittedHvg {
            flavor: HvgFlavor::SeuratV3,
            n_genes: x.n_cols(),
            selected,
            means: mean,
            dispersions: var,
            norm,
        })
    }
}

/// `pandas.cut(values, bins=n_bins)`: equal-width bins over [min, max] with the lowest
/// edge moved down by 0.1% of the range, intervals closed on the right.
fn cut_equal_width(values: &[f64], n_bins: usize) -> Vec<usize> {
    let mut mn = values.iter().copied().fold(f64::INFINITY, f64::min);
    let mut mx = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut edges: Vec<f64>;
    if mn == mx {
        mn -= if mn != 0.0 { 0.001 * mn.abs() } else { 0.001 };
        mx += if mx != 0.0 { 0.001 * mx.abs() } else { 0.001 };
        edges = linspace(mn, mx, n_bins + 1);
    } else {
        edges = linspace(mn, mx, n_bins + 1);
        edges[0] -= (mx - mn) * 0.001;
    }
    values
        .iter()
        .map(|&v| {
            edges
                .partition_point(|&e| e < v)
                .saturating_sub(1)
                .min(n_bins - 1)
        })
        .collect()
}

/// numpy's `linspace(start, stop, num)`: `start + i·step`, last value exactly `stop`.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    let step = (stop - start) / (num - 1) as f64;
    let mut v: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    v[num - 1] = stop;
    v
}

/// z-score of each value against the mean and sd (ddof 1) of the non-NaN values in its
/// bin; a bin with a single value uses mean 0 and sd = that value (scanpy's rule).
fn normalize_within_bins(values: &[f64], bins: &[usize], n_bins: usize) -> Vec<f64> {
    let mut count = vec![0usize; n_bins];
    let mut sum = vec![0.0f64; n_bins];
    for (&v, &b) in values.iter().zip(bins) {
        if !v.is_nan() {
            count[b] += 1;
            sum[b] += v;
        }
    }
    let avg: Vec<f64> = (0..n_bins)
        .map(|b| {
            if count[b] > 0 {
                sum[b] / count[b] as f64
            } else {
                f64::NAN
            }
        })
        .collect();
    let mut ss = vec![0.0f64; n_bins];
    for (&v, &b) in values.iter().zip(bins) {
        if !v.is_nan() {
            ss[b] += (v - avg[b]).powi(2);
        }
    }
    let (mut avg2, mut dev) = (avg.clone(), vec![f64::NAN; n_bins]);
    for b in 0..n_bins {
        if count[b] > 1 {
            dev[b] = (ss[b] / (count[b] - 1) as f64).sqrt();
        } else {
            dev[b] = avg[b];
            avg2[b] = 0.0;
        }
    }
    values
        .iter()
        .zip(bins)
        .map(|(&v, &b)| (v - avg2[b]) / dev[b])
        .collect()
}

/// The fitted selection: per-gene statistics and the selected gene indices.
#[derive(Debug, Clone, PartialEq)]
pub struct FittedHvg {
    flavor: HvgFlavor,
    n_genes: usize,
    selected: Vec<usize>,
    means: Vec<f64>,
    dispersions: Vec<f64>,
    norm: Vec<f64>,
}

impl FittedHvg {
    /// Selected gene indices, ascending.
    pub fn selected(&self) -> &[usize] {
        &self.selected
    }
    /// Number of selected genes.
    pub fn n_selected(&self) -> usize {
        self.selected.len()
    }
    /// The flavor that was fitted.
    pub fn flavor(&self) -> HvgFlavor {
        self.flavor
    }
    /// Per-gene means: `ln(1 + mean(expm1(x)))` for `Seurat` (scanpy's `means`),
    /// the mean count for `SeuratV3`.
    pub fn means(&self) -> &[f64] {
        &self.means
    }
    /// `Seurat`: the normalized log dispersion (NaN for constant genes); `None` for `SeuratV3`.
    pub fn dispersions_norm(&self) -> Option<&[f64]> {
        (self.flavor == HvgFlavor::Seurat).then_some(self.norm.as_slice())
    }
    /// `SeuratV3`: the variance of standardized clipped counts; `None` for `Seurat`.
    pub fn variances_norm(&self) -> Option<&[f64]> {
        (self.flavor == HvgFlavor::SeuratV3).then_some(self.norm.as_slice())
    }
    /// Per-gene dispersion before normalization: `ln(var / mean)` for `Seurat`
    /// (NaN for constant genes), the count variance (ddof 1) for `SeuratV3`.
    pub fn dispersions(&self) -> &[f64] {
        &self.dispersions
    }
    /// The ranking score of either flavor (normalized dispersion or variance).
    pub fn scores(&self) -> &[f64] {
        &self.norm
    }
    /// Keep only the selected genes of `x` (same genes, in the same order, as the
    /// matrix this was fitted on).
    pub fn transform(&self, x: &CsrMatrix) -> Result<CsrMatrix> {
        if x.n_cols() != self.n_genes {
            return Err(Error::Incompatible(format!(
                "HVG were fitted on {} genes but the matrix has {}",
                self.n_genes,
                x.n_cols()
            )));
        }
        Ok(x.select_cols(&self.selected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pp::{log1p, normalize_total};
    use approx::assert_abs_diff_eq;

    /// The deterministic 60 × 40 count matrix also built in the Python snippet below.
    fn counts() -> CsrMatrix {
        let (n, p) = (60usize, 40usize);
        let d = ndarray::Array2::from_shape_fn((n, p), |(i, j)| {
            let base = ((i * i * 3 + j * 7 + i * j) % (j % 6 + 2)) * (j % 4);
            let extra = if i % (j % 9 + 1) == 0 { j % 3 } else { 0 };
            (base + extra) as f32
        });
        CsrMatrix::from_dense(&d)
    }

    // Python (scanpy 1.11.5, skmisc 0.5.3):
    // n, p = 60, 40
    // X = np.array([[((i*i*3 + j*7 + i*j) % (j % 6 + 2)) * (j % 4) + (i % (j % 9 + 1) == 0) * (j % 3)
    //                for j in range(p)] for i in range(n)], dtype=np.float32)
    // a = ad.AnnData(sp.csr_matrix(X))
    // v3 = sc.pp.highly_variable_genes(a, flavor="seurat_v3", n_top_genes=10, inplace=False)
    // sc.pp.normalize_total(a, target_sum=1e4); sc.pp.log1p(a)
    // s = sc.pp.highly_variable_genes(a, flavor="seurat", n_top_genes=10, inplace=False)
    // s2 = sc.pp.highly_variable_genes(a, flavor="seurat", inplace=False)
    // printed: v3 selected [5, 7, 8, 10, 17, 20, 22, 27, 32, 34]; variances_norm[:8] below;
    // seurat selected [5, 10, 16, 17, 22, 23, 25, 27, 32, 34]; dispersions_norm[:8] below;
    // cutoff rule selected [8, 16].
    const V3_NORM: [f64; 8] = [
        0.0,
        0.9968760790,
        0.6252008094,
        0.9244651396,
        0.6850308143,
        2.0133436743,
        1.0821169635,
        1.1044185569,
    ];
    const SEURAT_NORM: [f64; 8] = [
        f64::NAN,
        -0.8415732741,
        -0.6523240209,
        -1.0697259411,
        -std::f64::consts::FRAC_1_SQRT_2,
        0.9894958252,
        f64::NAN,
        0.5827411838,
    ];

    /// seurat_v3 on counts selects scanpy's genes with scanpy's normalized variances.
    #[test]
    fn seurat_v3_matches_scanpy() {
        let fit = HvgParams::new()
            .flavor(HvgFlavor::SeuratV3)
            .n_top_genes(Some(10))
            .fit(&counts())
            .unwrap();
        assert_eq!(fit.selected(), &[5, 7, 8, 10, 17, 20, 22, 27, 32, 34]);
        let norm = fit.variances_norm().unwrap();
        for (g, w) in norm.iter().zip(V3_NORM) {
            assert_abs_diff_eq!(*g, w, epsilon = 1e-6);
        }
    }

    /// seurat on log-normalized data matches scanpy with n_top_genes and with the
    /// default cutoffs, NaN dispersions included.
    #[test]
    fn seurat_matches_scanpy() {
        let x = log1p(&normalize_total(&counts(), 1e4));
        let fit = HvgParams::new().n_top_genes(Some(10)).fit(&x).unwrap();
        assert_eq!(fit.selected(), &[5, 10, 16, 17, 22, 23, 25, 27, 32, 34]);
        for (g, w) in fit.dispersions_norm().unwrap().iter().zip(SEURAT_NORM) {
            if w.is_nan() {
                assert!(g.is_nan());
            } else {
                assert_abs_diff_eq!(*g, w, epsilon = 1e-5);
            }
        }
        let by_cutoff = HvgParams::new().fit(&x).unwrap();
        assert_eq!(by_cutoff.selected(), &[8, 16]);
        assert_eq!(by_cutoff.transform(&x).unwrap().n_cols(), 2);
    }

    /// pandas.cut semantics: the minimum falls in bin 0, the maximum in the last bin,
    /// and a value on an inner edge belongs to the lower (right-closed) bin.
    #[test]
    fn cut_is_right_closed() {
        assert_eq!(cut_equal_width(&[0.0, 1.0, 2.0, 4.0], 4), vec![0, 0, 1, 3]);
        assert_eq!(cut_equal_width(&[3.0, 3.0], 5), vec![2, 2]);
    }

    /// Asking for at least as many genes as exist selects all of them (seurat_v3).
    #[test]
    fn v3_all_genes_when_n_top_large() {
        let fit = HvgParams::new()
            .flavor(HvgFlavor::SeuratV3)
            .n_top_genes(Some(1000))
            .fit(&counts())
            .unwrap();
        assert_eq!(fit.n_selected(), 40);
    }

    /// Invalid parameters and mismatched matrices are errors.
    #[test]
    fn rejects_bad_input() {
        assert!(HvgParams::new()
            .n_top_genes(Some(0))
            .fit(&counts())
            .is_err());
        let neg = CsrMatrix::from_dense(&ndarray::array![[-1.0f32, 2.0, 3.0], [1.0, 0.0, 2.0]]);
        assert!(HvgParams::new()
            .flavor(HvgFlavor::SeuratV3)
            .fit(&neg)
            .is_err());
        let fit = HvgParams::new()
            .n_top_genes(Some(3))
            .fit(&counts())
            .unwrap();
        assert!(fit.transform(&neg).is_err());
    }
}
