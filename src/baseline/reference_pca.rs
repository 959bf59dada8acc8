//! The reference side of Seurat's `FindTransferAnchors(reduction = "pcaproject")`
//! (satijalab/seurat R/integration.R, `ProjectCellEmbeddings`): LogNormalize, vst features,
//! `ScaleData`, `RunPCA`, and the projection of query cells onto the reference PCs.
//!
//! Every step is [`crate::pp`]'s, configured the way Seurat differs from scanpy's
//! defaults: vst (`seurat_v3` HVG) runs on the stored values (the counts slot, or the
//! data when a file holds only log-normalized values), `ScaleData` clips only above
//! (+10), and `RunPCA` is a truncated SVD of the scaled matrix *without re-centring*
//! (after clipping its columns are not exactly centred, so a centred PCA gives other
//! axes). Cell embeddings are `U·D` (weight.by.var), i.e. scaled data × loadings; a query
//! is scaled with the reference's means and standard deviations and multiplied by the
//! same loadings.

use crate::data::{CsrMatrix, Dataset};
use crate::error::{Error, Result};
use crate::pp::{log_normalize, FittedPcaPipeline, HvgFlavor, HvgParams, Pca, PcaPipeline, Scaler};
use ndarray::{Array2, ArrayView2};
use std::collections::HashMap;

/// Parameters of the reference PCA. Defaults are Seurat v5's.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferencePcaParams {
    /// Variable features selected by vst, defaults to 2000 (all genes when fewer).
    n_features: usize,
    /// Principal components, defaults to 30 (fewer when the data have fewer cells or features).
    n_pcs: usize,
    /// LogNormalize scale factor, defaults to 1e4.
    scale_factor: f64,
    /// vst loess span, defaults to 0.3.
    loess_span: f64,
    /// Upper clip of scaled values, defaults to 10.
    scale_max: f32,
    /// Seed of the eigensolver's random start, defaults to 42 (the result does not
    /// depend on it beyond the solver's tolerance).
    seed: u64,
}

impl Default for ReferencePcaParams {
    fn default() -> Self {
        Self {
            n_features: 2000,
            n_pcs: 30,
            scale_factor: 1e4,
            loess_span: 0.3,
            scale_max: 10.0,
            seed: 42,
        }
    }
}

impl ReferencePcaParams {
    /// The defaults (each setter states its own).
    pub fn new() -> Self {
        Self::default()
    }
    /// Variable features selected by vst, defaults to 2000 (all genes when fewer).
    pub fn n_features(mut self, n_features: usize) -> Self {
        self.n_features = n_features;
        self
    }
    /// Principal components, defaults to 30 (fewer when the data have fewer cells or features).
    pub fn n_pcs(mut self, n_pcs: usize) -> Self {
        self.n_pcs = n_pcs;
        self
    }
    /// LogNormalize scale factor, defaults to 1e4.
    pub fn scale_factor(mut self, scale_factor: f64) -> Self {
        self.scale_factor = scale_factor;
        self
    }
    /// vst loess span, defaults to 0.3.
    pub fn loess_span(mut self, loess_span: f64) -> Self {
        self.loess_span = loess_span;
        self
    }
    /// Upper clip of scaled values, defaults to 10.
    pub fn scale_max(mut self, scale_max: f32) -> Self {
        self.scale_max = scale_max;
        self
    }
    /// Seed of the eigensolver's random start, defaults to 42 (the result does not
    /// depend on it beyond the solver's tolerance).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// A fitted reference PCA: the fitted pp chain, the names of its features, and the
/// reference cell embeddings (cells × PCs).
#[derive(Debug, Clone)]
pub struct ReferencePca {
    chain: FittedPcaPipeline,
    features: Vec<String>,
    loadings: Array2<f32>,
    embeddings: Array2<f32>,
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
    /// The pp chain these parameters describe, for `n_cells × n_genes` reference data.
    pub fn pipeline(&self, n_cells: usize, n_genes: usize) -> PcaPipeline {
        let n_features = self.n_features.min(n_genes);
        let k = self.n_pcs.min(n_cells - 1).min(n_features);
        PcaPipeline::new()
            .target_sum(self.scale_factor)
            .hvg(
                HvgParams::new()
                    .flavor(HvgFlavor::SeuratV3)
                    .n_top_genes(Some(n_features))
                    .span(self.loess_span),
            )
            .hvg_on_stored_values(true)
            .scaler(
                Scaler::new()
                    .max_value(Some(self.scale_max))
                    .clip_both_sides(false),
            )
            .pca(
                Pca::new()
                    .n_components(k)
                    .zero_center(false)
                    .seed(self.seed),
            )
    }

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
        let (chain, embeddings) = self
            .pipeline(reference.n_obs(), reference.n_vars())
            .fit_transform(&reference.x, reference.value_kind)
            .map_err(|e| in_file(e, &reference.source))?;
        let features = chain
            .hvg()
            .selected()
            .iter()
            .map(|&j| reference.gene_names[j].clone())
            .collect();
        let loadings = chain.pca().components().t().to_owned();
        Ok(ReferencePca {
            chain,
            features,
            loadings,
            embeddings,
        })
    }
}

/// Seurat's vst features of `ds` (at most `n_features`, span 0.3), on its stored values,
/// as column indices in gene order.
pub fn vst_features(ds: &Dataset, n_features: usize) -> Result<Vec<usize>> {
    let hvg = HvgParams::new()
        .flavor(HvgFlavor::SeuratV3)
        .n_top_genes(Some(n_features.min(ds.n_vars())))
        .fit(&ds.x)
        .map_err(|e| in_file(e, &ds.source))?;
    Ok(hvg.selected().to_vec())
}

/// A data error from pp names "expression matrix"; name the reference file instead.
fn in_file(e: Error, source: &str) -> Error {
    match e {
        Error::InvalidData { key, problem, .. } => Error::InvalidData {
            source_name: source.to_string(),
            key,
            problem,
        },
        other => other,
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
    /// Wall-clock seconds of each fitting stage (normalize, hvg, scale, pca, embed).
    pub fn fit_stages(&self) -> &[(&'static str, f64)] {
        self.chain.fit_stages()
    }
    /// Number of PCs.
    pub fn n_pcs(&self) -> usize {
        self.loadings.ncols()
    }

    /// Log-normalized values of `ds` on the selected features (cells × features).
    pub fn log_normalized_features(&self, ds: &Dataset) -> Result<CsrMatrix> {
        let pos = gene_positions(ds, &self.features)?;
        let lognorm = log_normalize(&ds.x, ds.value_kind, self.chain.target_sum());
        Ok(lognorm.select_cols(&pos))
    }

    /// Project cells onto the reference PCs (Seurat's `ProjectCellEmbeddings`): scale with
    /// the reference mean/SD, clip at `scale_max`, multiply by the loadings. Genes are
    /// matched by name, so `ds` may hold extra genes or another gene order.
    pub fn project(&self, ds: &Dataset) -> Result<Array2<f32>> {
        self.chain
            .project_selected(&self.log_normalized_features(ds)?)
    }
}

#[cfg(test)]
#[path = "reference_pca_tests.rs"]
mod tests;
