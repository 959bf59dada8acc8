//! The reference side of Seurat's `FindTransferAnchors(reduction = "pcaproject")`
//! (satijalab/seurat R/integration.R, `ProjectCellEmbeddings`): LogNormalize, vst features,
//! `ScaleData`, `RunPCA`, and the projection of query cells onto the reference PCs.
//!
//! This is implemented here rather than with [`crate::pp`] because Seurat differs from
//! scanpy in details that change the embedding: vst runs on the stored values (counts
//! slot), the scale uses the n − 1 standard deviation and clips only above (+10), and
//! `RunPCA` is a truncated SVD (irlba) of the scaled matrix *without re-centring* — after
//! clipping the columns are not exactly centred, so a centred PCA gives different axes.
//! Cell embeddings are `U·D` (weight.by.var), i.e. scaled data × loadings; the query is
//! scaled with the reference means and standard deviations (clipped at 10) and multiplied
//! by the same loadings.
//!
//! The scaled matrix is never densified ([`super::scaled_csr`]: implicit centring plus a
//! sparse clip correction). The truncated SVD ([`super::svd`]) is a seeded randomized
//! subspace iteration (Halko, Martinsson & Tropp 2011) with oversampling and power
//! iterations, which matches irlba's leading singular
//! vectors to high precision when the spectrum has the decay of expression data.

use super::scaled_csr::{scale_value, ScaledCsr};
pub use super::svd::{symmetric_eigen, truncated_svd_right};
use super::svd::{truncated_svd_op, Operator};
use super::timing::{StageSeconds, Stopwatch};
use super::vst::{column_mean_var, vst_select};
use crate::data::{CsrMatrix, Dataset, ValueKind};
use crate::error::{Error, Result};
use ndarray::{Array2, ArrayView2, Axis};
use std::collections::HashMap;

/// Parameters of the reference PCA. Defaults are Seurat v5's.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferencePcaParams {
    /// Variable features selected by vst, defaults to 2000 (all genes when fewer).
    pub n_features: usize,
    /// Principal components, defaults to 30.
    pub n_pcs: usize,
    /// LogNormalize scale factor, defaults to 1e4.
    pub scale_factor: f64,
    /// vst loess span, defaults to 0.3.
    pub loess_span: f64,
    /// Upper clip of scaled values, defaults to 10.
    pub scale_max: f32,
    /// Extra random directions in the subspace iteration, defaults to 30.
    pub oversampling: usize,
    /// Power iterations of the subspace iteration, defaults to 20 (enough for the 30th PC
    /// to converge on the shared data sets: results no longer depend on the seed).
    pub power_iterations: usize,
    /// Seed of the random start, defaults to 42.
    pub seed: u64,
}

impl Default for ReferencePcaParams {
    fn default() -> Self {
        Self {
            n_features: 2000,
            n_pcs: 30,
            scale_factor: 1e4,
            loess_span: 0.3,
            scale_max: 10.0,
            oversampling: 30,
            power_iterations: 20,
            seed: 42,
        }
    }
}

/// A fitted reference PCA: selected features, their reference mean and SD, loadings
/// (features × PCs) and the reference cell embeddings (cells × PCs).
#[derive(Debug, Clone)]
pub struct ReferencePca {
    features: Vec<String>,
    mean: Vec<f64>,
    sd: Vec<f64>,
    loadings: Array2<f32>,
    embeddings: Array2<f32>,
    scale_factor: f64,
    scale_max: f32,
    fit_stages: StageSeconds,
}

/// Seurat's LogNormalize, `ln(1 + x / total · scale_factor)` per cell, applied only to
/// count data; log-normalized data are returned unchanged (never logged twice).
pub fn log_normalize(ds: &Dataset, scale_factor: f64) -> CsrMatrix {
    match ds.value_kind {
        ValueKind::LogNormalized | ValueKind::Scaled => ds.x.clone(),
        ValueKind::Counts => {
            let totals = ds.x.row_sums();
            let mut out = ds.x.clone();
            let indptr = out.indptr().to_vec();
            let data = out.data_mut();
            for (r, total) in totals.iter().enumerate() {
                let f = if *total > 0.0 {
                    scale_factor / total
                } else {
                    0.0
                };
                for v in &mut data[indptr[r]..indptr[r + 1]] {
                    *v = ((*v as f64) * f).ln_1p() as f32;
                }
            }
            out
        }
    }
}

/// Column indices in `ds` of the genes `names`, or an error naming the first missing gene.
pub fn gene_positions(ds: &Dataset, names: &[String]) -> Result<Vec<usize>> {
    let map: HashMap<&str, usize> = ds
        .gene_names
        .iter()
        .enumerate()
        .map(|(i, g)| (g.as_str(), i))
        .collect();
    let missing: Vec<&String> = names
        .iter()
        .filter(|g| !map.contains_key(g.as_str()))
        .collect();
    if let Some(first) = missing.first() {
        return Err(Error::Incompatible(format!(
            "{}: {} of the reference's {} features are absent from the query (first: '{}'); align the genes first",
            ds.source,
            missing.len(),
            names.len(),
            first
        )));
    }
    Ok(names.iter().map(|g| map[g.as_str()]).collect())
}

impl ReferencePcaParams {
    /// Fit on the reference: normalize, select features, scale, truncated SVD.
    pub fn fit(&self, reference: &Dataset) -> Result<ReferencePca> {
        if self.n_pcs == 0 {
            return Err(Error::param("n_pcs", "must be at least 1"));
        }
        if reference.n_obs() < 3 {
            return Err(Error::invalid(
                &reference.source,
                "X",
                "the reference needs at least 3 cells",
            ));
        }
        let mut sw = Stopwatch::new();
        let lognorm = log_normalize(reference, self.scale_factor);
        sw.lap("normalize");
        // vst runs on the stored values (Seurat's counts slot).
        let selected = vst_select(
            &reference.x,
            self.n_features,
            self.loess_span,
            &reference.source,
        )?;
        sw.lap("vst");
        let x_sel = lognorm.select_cols(&selected);
        let (mean, var) = column_mean_var(&x_sel);
        let sd: Vec<f64> = var.iter().map(|v| v.sqrt()).collect();
        // The scaled matrix stays sparse: implicit centring plus a sparse clip correction.
        let scaled = ScaledCsr::new(&x_sel, &mean, &sd, self.scale_max);
        sw.lap("scale");
        let (n, p) = scaled.shape();
        let k = self.n_pcs.min(n - 1).min(p.saturating_sub(1).max(1));
        let loadings = truncated_svd_op(
            &scaled,
            k,
            self.oversampling,
            self.power_iterations,
            self.seed,
        );
        sw.lap("pca");
        let embeddings = scaled.apply(loadings.view());
        sw.lap("embed");
        Ok(ReferencePca {
            features: selected
                .iter()
                .map(|&j| reference.gene_names[j].clone())
                .collect(),
            mean,
            sd,
            loadings,
            embeddings,
            scale_factor: self.scale_factor,
            scale_max: self.scale_max,
            fit_stages: sw.finish(),
        })
    }
}

impl ReferencePca {
    /// Names of the selected features, in the order of the loadings' rows.
    pub fn features(&self) -> &[String] {
        &self.features
    }
    /// Loadings, features × PCs.
    pub fn loadings(&self) -> ArrayView2<'_, f32> {
        self.loadings.view()
    }
    /// Reference cell embeddings, cells × PCs.
    pub fn embeddings(&self) -> ArrayView2<'_, f32> {
        self.embeddings.view()
    }
    /// Wall-clock seconds of each fitting stage (normalize, vst, scale, pca, embed).
    pub fn fit_stages(&self) -> &[(&'static str, f64)] {
        &self.fit_stages
    }
    /// Number of PCs.
    pub fn n_pcs(&self) -> usize {
        self.loadings.ncols()
    }

    /// Log-normalized values of `ds` on the selected features (cells × features).
    pub fn log_normalized_features(&self, ds: &Dataset) -> Result<CsrMatrix> {
        let pos = gene_positions(ds, &self.features)?;
        Ok(log_normalize(ds, self.scale_factor).select_cols(&pos))
    }

    /// Project cells onto the reference PCs (Seurat's `ProjectCellEmbeddings`): scale with
    /// the reference mean/SD, clip at `scale_max`, multiply by the loadings. Genes are
    /// matched by name, so `ds` may hold extra genes or another gene order.
    pub fn project(&self, ds: &Dataset) -> Result<Array2<f32>> {
        let x = self.log_normalized_features(ds)?;
        let d = self.n_pcs();
        // Scaled zero of each feature, and the embedding of an all-zero cell.
        let z0: Vec<f32> = (0..self.features.len())
            .map(|j| scale_value(0.0, self.mean[j], self.sd[j], self.scale_max))
            .collect();
        let z0_view = ndarray::ArrayView1::from(&z0);
        let base = self.loadings.t().dot(&z0_view);
        let mut out = Array2::<f32>::zeros((x.n_rows(), d));
        for (r, mut row) in out.axis_iter_mut(Axis(0)).enumerate() {
            row.assign(&base);
            let (idx, val) = x.row(r);
            for (&c, &v) in idx.iter().zip(val) {
                let j = c as usize;
                let delta = scale_value(v, self.mean[j], self.sd[j], self.scale_max) - z0[j];
                row.scaled_add(delta, &self.loadings.row(j));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
#[path = "reference_pca_tests.rs"]
mod tests;
