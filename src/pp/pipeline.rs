//! The reference-fitted chain normalize_total → log1p → HVG → scale → PCA (scanpy's
//! standard recipe; Seurat's `NormalizeData → FindVariableFeatures → ScaleData →
//! RunPCA`), applied unchanged to query cells.
//!
//! The scaled HVG matrix is dense in scanpy. Here it is never materialized: a scaled,
//! clipped gene takes one value `z0_j` on all zero entries, so `Z = S + 1·z0ᵀ` with `S`
//! as sparse as the input, and the gene covariance is exactly
//! `(n−1)·C = SᵀS − s·sᵀ/n` with `s = Sᵀ1`. `SᵀS` is accumulated in cache-sized gene
//! tiles in parallel; query scores are `base + Σ_nz (Z_ij − z0_j)·W_j`. Same numbers
//! as the dense computation, at a cost proportional to the non-zeros.

use super::{log_normalize, FittedHvg, FittedPca, FittedScaler, HvgFlavor, HvgParams, Pca, Scaler};
use crate::data::{CsrMatrix, ValueKind};
use crate::error::{Error, Result};
use crate::timing::{StageSeconds, Stopwatch};
use ndarray::{Array1, Array2};
use rayon::prelude::*;

/// Parameters of the chain; each stage keeps its own documented defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct PcaPipeline {
    target_sum: f64,
    hvg: HvgParams,
    hvg_on_stored: bool,
    scaler: Scaler,
    pca: Pca,
}

impl Default for PcaPipeline {
    fn default() -> Self {
        Self {
            target_sum: 1e4,
            hvg: HvgParams::new().n_top_genes(Some(2000)),
            hvg_on_stored: false,
            scaler: Scaler::new(),
            pca: Pca::new(),
        }
    }
}

impl PcaPipeline {
    /// Default chain: target sum 1e4, HVG `seurat` with 2000 genes, scale with
    /// max_value 10, PCA with 50 components.
    pub fn new() -> Self {
        Self::default()
    }
    /// Library size each cell is scaled to, defaults to 1e4.
    pub fn target_sum(mut self, target_sum: f64) -> Self {
        self.target_sum = target_sum;
        self
    }
    /// Gene selection, defaults to `HvgParams::new().n_top_genes(Some(2000))`.
    pub fn hvg(mut self, hvg: HvgParams) -> Self {
        self.hvg = hvg;
        self
    }
    /// Scaling, defaults to `Scaler::new()`.
    pub fn scaler(mut self, scaler: Scaler) -> Self {
        self.scaler = scaler;
        self
    }
    /// PCA, defaults to `Pca::new()` (50 components).
    pub fn pca(mut self, pca: Pca) -> Self {
        self.pca = pca;
        self
    }

    /// Run `seurat_v3` HVG on the stored values even when they are log-normalized, as
    /// Seurat's vst does for an object that carries only normalized data; defaults to
    /// false (an error: scanpy's `seurat_v3` expects counts).
    pub fn hvg_on_stored_values(mut self, on_stored: bool) -> Self {
        self.hvg_on_stored = on_stored;
        self
    }

    /// Fit every stage on the reference `x` (cells × genes) whose values are `kind`.
    /// `SeuratV3` HVG needs counts (see [`PcaPipeline::hvg_on_stored_values`]).
    pub fn fit(&self, x: &CsrMatrix, kind: ValueKind) -> Result<FittedPcaPipeline> {
        Ok(self.fit_selected(x, kind)?.0)
    }

    /// [`PcaPipeline::fit`] and the reference's own scores (`FittedPcaPipeline::transform`
    /// of `x`), without normalizing and selecting the reference a second time.
    pub fn fit_transform(
        &self,
        x: &CsrMatrix,
        kind: ValueKind,
    ) -> Result<(FittedPcaPipeline, Array2<f32>)> {
        let (mut fitted, sub) = self.fit_selected(x, kind)?;
        let mut sw = Stopwatch::new();
        let scores = fitted.project_selected(&sub)?;
        sw.lap("embed");
        fitted.fit_stages.extend(sw.finish());
        Ok((fitted, scores))
    }

    /// The fit, and the reference log-normalized and restricted to the HVGs.
    fn fit_selected(
        &self,
        x: &CsrMatrix,
        kind: ValueKind,
    ) -> Result<(FittedPcaPipeline, CsrMatrix)> {
        if self.target_sum.is_nan() || self.target_sum <= 0.0 {
            return Err(Error::param(
                "target_sum",
                format!("must be positive, got {}", self.target_sum),
            ));
        }
        let mut sw = Stopwatch::new();
        let lognorm = log_normalize(x, kind, self.target_sum);
        sw.lap("normalize");
        let hvg = self.fit_hvg(x, &lognorm, kind)?;
        sw.lap("hvg");
        let sub = hvg.transform(&lognorm)?;
        self.pca.check(sub.n_rows(), sub.n_cols())?;
        let scaler = self.scaler.fit_sparse(&sub)?;
        sw.lap("scale");
        let pca = fit_pca(&self.pca, &sub, &scaler)?;
        sw.lap("pca");
        let fitted = FittedPcaPipeline {
            kind,
            target_sum: self.target_sum,
            n_genes: x.n_cols(),
            hvg,
            scaler,
            pca,
            fit_stages: sw.finish(),
        };
        Ok((fitted, sub))
    }

    fn fit_hvg(&self, x: &CsrMatrix, lognorm: &CsrMatrix, kind: ValueKind) -> Result<FittedHvg> {
        match (self.hvg.selected_flavor(), kind) {
            (HvgFlavor::SeuratV3, ValueKind::Counts) => self.hvg.fit(x),
            (HvgFlavor::SeuratV3, _) if self.hvg_on_stored => self.hvg.fit(x),
            (HvgFlavor::SeuratV3, ValueKind::LogNormalized | ValueKind::Scaled) => {
                Err(Error::param(
                    "hvg flavor",
                    "seurat_v3 needs raw counts but the data are log-normalized; use seurat",
                ))
            }
            (HvgFlavor::Seurat, _) => self.hvg.fit(lognorm),
        }
    }
}

/// PCA of the scaled HVG matrix `sub` from its sparse Gram matrix (see the module docs).
fn fit_pca(pca: &Pca, sub: &CsrMatrix, scaler: &FittedScaler) -> Result<FittedPca> {
    let (s_vals, z0) = shifted_values(sub, scaler);
    let n = sub.n_rows() as f64;
    let p = sub.n_cols();
    let mut col_sum = vec![0.0f64; p];
    for (&c, &v) in sub.indices().iter().zip(&s_vals) {
        col_sum[c as usize] += v;
    }
    let mut cov = sparse_gram(sub, &s_vals);
    for a in 0..p {
        for b in 0..p {
            cov[[a, b]] = (cov[[a, b]] - col_sum[a] * col_sum[b] / n) / (n - 1.0);
        }
    }
    let mean: Vec<f64> = (0..p).map(|j| z0[j] as f64 + col_sum[j] / n).collect();
    pca.fit_covariance(cov, mean, sub.n_rows())
}

/// `S` values (scaled value minus the gene's zero level `z0_j`) at the stored entries,
/// and `z0`.
fn shifted_values(sub: &CsrMatrix, scaler: &FittedScaler) -> (Vec<f64>, Vec<f32>) {
    let z0: Vec<f32> = (0..sub.n_cols())
        .map(|j| scaler.scale_value(j, 0.0))
        .collect();
    let vals = sub
        .indices()
        .par_iter()
        .zip(sub.data().par_iter())
        .map(|(&c, &v)| scaler.scale_value(c as usize, v) as f64 - z0[c as usize] as f64)
        .collect();
    (vals, z0)
}

/// `SᵀS` for the sparse pattern of `m` with values `vals`, by 256-gene tiles.
fn sparse_gram(m: &CsrMatrix, vals: &[f64]) -> Array2<f64> {
    const TILE: usize = 256;
    let (n, p) = m.shape();
    let n_tiles = p.div_ceil(TILE);
    // For each row, where each gene tile starts among its entries.
    let mut cuts = vec![0usize; n * (n_tiles + 1)];
    for i in 0..n {
        let (a, b) = (m.indptr()[i], m.indptr()[i + 1]);
        let idx = &m.indices()[a..b];
        for t in 0..=n_tiles {
            cuts[i * (n_tiles + 1) + t] = a + idx.partition_point(|&c| (c as usize) < t * TILE);
        }
    }
    let pairs: Vec<(usize, usize)> = (0..n_tiles)
        .flat_map(|ta| (ta..n_tiles).map(move |tb| (ta, tb)))
        .collect();
    let blocks: Vec<Vec<f64>> = pairs
        .par_iter()
        .map(|&(ta, tb)| {
            let mut acc = vec![0.0f64; TILE * TILE];
            for i in 0..n {
                let row = &cuts[i * (n_tiles + 1)..(i + 1) * (n_tiles + 1)];
                let (a0, a1, b0, b1) = (row[ta], row[ta + 1], row[tb], row[tb + 1]);
                for ka in a0..a1 {
                    let va = vals[ka];
                    let ra = (m.indices()[ka] as usize - ta * TILE) * TILE;
                    let start = if ta == tb { ka } else { b0 };
                    for kb in start..b1 {
                        acc[ra + m.indices()[kb] as usize - tb * TILE] += va * vals[kb];
                    }
                }
            }
            acc
        })
        .collect();
    let mut gram = Array2::<f64>::zeros((p, p));
    for (&(ta, tb), acc) in pairs.iter().zip(&blocks) {
        for ia in 0..TILE.min(p - ta * TILE) {
            for ib in 0..TILE.min(p - tb * TILE) {
                let (ga, gb) = (ta * TILE + ia, tb * TILE + ib);
                if ta == tb && gb < ga {
                    continue;
                }
                gram[[ga, gb]] = acc[ia * TILE + ib];
                gram[[gb, ga]] = acc[ia * TILE + ib];
            }
        }
    }
    gram
}

/// The fitted chain.
#[derive(Debug, Clone, PartialEq)]
pub struct FittedPcaPipeline {
    kind: ValueKind,
    target_sum: f64,
    n_genes: usize,
    hvg: FittedHvg,
    scaler: FittedScaler,
    pca: FittedPca,
    fit_stages: StageSeconds,
}

impl FittedPcaPipeline {
    /// Wall-clock seconds of each fitting stage (normalize, hvg, scale, pca).
    pub fn fit_stages(&self) -> &[(&'static str, f64)] {
        &self.fit_stages
    }
    /// Library size cells are normalized to.
    pub fn target_sum(&self) -> f64 {
        self.target_sum
    }
    /// The gene selection.
    pub fn hvg(&self) -> &FittedHvg {
        &self.hvg
    }
    /// Per-HVG mean and sd.
    pub fn scaler(&self) -> &FittedScaler {
        &self.scaler
    }
    /// The PCA on the scaled HVG (its `mean()` is the mean of the scaled, clipped values).
    pub fn pca(&self) -> &FittedPca {
        &self.pca
    }
    /// What the reference values were (the query must be the same kind, same genes).
    pub fn value_kind(&self) -> ValueKind {
        self.kind
    }

    /// Principal-component scores (cells × n_components) of `x`, using only the
    /// reference's fitted statistics.
    pub fn transform(&self, x: &CsrMatrix) -> Result<Array2<f32>> {
        if x.n_cols() != self.n_genes {
            return Err(Error::Incompatible(format!(
                "pipeline was fitted on {} genes but the query has {}",
                self.n_genes,
                x.n_cols()
            )));
        }
        let sub = self
            .hvg
            .transform(&log_normalize(x, self.kind, self.target_sum))?;
        self.project_selected(&sub)
    }

    /// Scores of cells already log-normalized and restricted to the HVGs (cells × HVGs,
    /// in the order of [`FittedHvg::selected`]).
    pub(crate) fn project_selected(&self, sub: &CsrMatrix) -> Result<Array2<f32>> {
        let p = self.hvg.n_selected();
        if sub.n_cols() != p {
            return Err(Error::Incompatible(format!(
                "pipeline selected {p} genes but the data has {}",
                sub.n_cols()
            )));
        }
        let w = self.pca.components().t().mapv(|v| v as f64); // p × k
        let k = self.pca.n_components();
        let z0: Vec<f64> = (0..p)
            .map(|j| self.scaler.scale_value(j, 0.0) as f64)
            .collect();
        let centred0 = Array1::from_iter((0..p).map(|j| z0[j] - self.pca.mean()[j]));
        let base = centred0.dot(&w);
        let mut out = Array2::<f32>::zeros((sub.n_rows(), k));
        out.outer_iter_mut()
            .into_par_iter()
            .enumerate()
            .for_each(|(i, mut row)| {
                let mut acc = base.clone();
                let (idx, val) = sub.row(i);
                for (&c, &v) in idx.iter().zip(val) {
                    let c = c as usize;
                    let d = self.scaler.scale_value(c, v) as f64 - z0[c];
                    acc.scaled_add(d, &w.row(c));
                }
                row.iter_mut()
                    .zip(acc.iter())
                    .for_each(|(o, &a)| *o = a as f32);
            });
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A small random count matrix (about 70% zeros) with gene-specific rates.
    fn counts(n: usize, p: usize, seed: u64) -> CsrMatrix {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let rates: Vec<f64> = (0..p).map(|j| 0.2 + (j % 7) as f64 * 0.5).collect();
        let d = Array2::from_shape_fn((n, p), |(_, j)| {
            let u: f64 = rng.gen();
            if u < 0.7 {
                0.0
            } else {
                (1.0 + (rates[j] * rng.gen::<f64>() * 4.0).floor()) as f32
            }
        });
        CsrMatrix::from_dense(&d)
    }

    /// The sparse covariance route gives the same PCA as densifying the scaled HVG
    /// matrix and calling `Pca::fit`, and the query scores equal `FittedPca::transform`.
    #[test]
    fn sparse_route_equals_dense_route() {
        let x = counts(120, 60, 3);
        let chain = PcaPipeline::new()
            .hvg(HvgParams::new().n_top_genes(Some(30)))
            .scaler(Scaler::new().max_value(Some(2.0)))
            .pca(Pca::new().n_components(5));
        let fitted = chain.fit(&x, ValueKind::Counts).unwrap();
        let lognorm = log_normalize(&x, ValueKind::Counts, 1e4);
        let sub = fitted.hvg().transform(&lognorm).unwrap();
        let dense = fitted.scaler().transform_sparse(&sub).unwrap();
        let pca = Pca::new().n_components(5).fit(dense.view()).unwrap();
        for (a, b) in pca
            .explained_variance()
            .iter()
            .zip(fitted.pca().explained_variance())
        {
            assert_abs_diff_eq!(*a, *b, epsilon = 1e-5 * a.abs().max(1.0));
        }
        let query = counts(40, 60, 4);
        let got = fitted.transform(&query).unwrap();
        let q_dense = fitted
            .scaler()
            .transform_sparse(
                &fitted
                    .hvg()
                    .transform(&log_normalize(&query, ValueKind::Counts, 1e4))
                    .unwrap(),
            )
            .unwrap();
        let want = pca.transform(q_dense.view());
        assert_abs_diff_eq!(got, want, epsilon = 1e-3);
    }

    /// seurat_v3 on log-normalized input and a query with other genes are errors.
    #[test]
    fn rejects_mismatches() {
        let x = counts(50, 20, 1);
        let v3 = PcaPipeline::new()
            .hvg(
                HvgParams::new()
                    .flavor(HvgFlavor::SeuratV3)
                    .n_top_genes(Some(10)),
            )
            .pca(Pca::new().n_components(3));
        assert!(v3.fit(&x, ValueKind::LogNormalized).is_err());
        let fitted = v3.fit(&x, ValueKind::Counts).unwrap();
        assert!(fitted.transform(&counts(5, 19, 2)).is_err());
    }
}
