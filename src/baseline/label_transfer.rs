//! Seurat v5 label transfer: `FindTransferAnchors(reduction = "pcaproject")` followed by
//! `TransferData` (satijalab/seurat R/integration.R; Stuart, Butler et al., Cell 2019).
//!
//! Fit ([`SeuratParams::fit`]) does everything that depends on the reference alone:
//! LogNormalize, vst features, scaling, PCA ([`super::reference_pca`]), the L2-normalised
//! reference embedding. [`SeuratTransfer::transfer`]
//! projects the query, finds anchors ([`super::anchors`]), and weights each query cell's
//! `k_weight` nearest anchor query cells in the *un-normalised* projected PCA:
//! `dist = 1 − d_i / d_k` (`d_k`: the `k_weight`-th anchor cell),
//! `w = 1 − exp(−dist · score / (2 / sd)²)` per anchor, normalised per query cell;
//! prediction scores are `Wᵀ · one-hot(anchor reference labels)`. As in Seurat 4.3's
//! weight matrix, only the first `k_weight` anchors met while walking those cells nearest
//! first get a weight (a cell anchored to five reference cells uses five of them).
//!
//! Differences from R, all deliberate: neighbours are exact ([`super::neighbors`]) by
//! default where Seurat uses Annoy (an Annoy-like forest is an option, [`super::annoy`]); when a query cell's weights sum to zero (R: NaN) the anchors of its
//! nearest anchor cell vote equally; when every anchor has the same raw score (R: NaN)
//! all scores are 1; `k` values larger than the data are reduced with a warning (R errors).

use super::anchors::{filter_anchors, find_anchor_pairs, score_anchors, top_dim_features};
use super::neighbors::{knn, l2_normalize_rows, NeighborMethod, Neighbors, PartialNeighbors};
use super::reference_pca::{ReferencePca, ReferencePcaParams};
use crate::data::{Dataset, Labels};
use crate::error::{Error, Result};
use crate::eval::Prediction;
use crate::timing::{StageSeconds, Stopwatch};
use crate::traits::{Fit, Predict};
use ndarray::{Array2, ArrayView2, Axis};

/// Parameters of Seurat label transfer. Defaults are Seurat v5's.
#[derive(Debug, Clone, PartialEq)]
pub struct SeuratParams {
    /// Normalisation, features and PCA (2000 vst features, 30 PCs).
    pca: ReferencePcaParams,
    /// L2-normalise embeddings before anchor finding, defaults to true.
    l2_norm: bool,
    /// Neighbours for mutual-neighbour anchors, defaults to 5.
    k_anchor: usize,
    /// Anchor filtering neighbours; defaults to `None` (off, Seurat v5). Seurat 4 used 200.
    k_filter: Option<usize>,
    /// Neighbours for anchor scoring, defaults to 30.
    k_score: usize,
    /// Feature cap for the filtering space, defaults to 200.
    max_features: usize,
    /// Anchor cells weighted per query cell, defaults to 50.
    k_weight: usize,
    /// Bandwidth of the weight kernel, defaults to 1.
    sd_weight: f64,
    /// Neighbour search for anchors, scores and weights; defaults to exact (Seurat uses
    /// Annoy with 50 trees, [`NeighborMethod::Annoy`]). Anchor filtering stays exact.
    neighbors: NeighborMethod,
}

impl Default for SeuratParams {
    fn default() -> Self {
        Self {
            pca: ReferencePcaParams::default(),
            l2_norm: true,
            k_anchor: 5,
            k_filter: None,
            k_score: 30,
            max_features: 200,
            k_weight: 50,
            sd_weight: 1.0,
            neighbors: NeighborMethod::Exact,
        }
    }
}

impl SeuratParams {
    /// The defaults (each setter states its own).
    pub fn new() -> Self {
        Self::default()
    }
    /// Normalisation, features and PCA (2000 vst features, 30 PCs).
    pub fn pca(mut self, pca: ReferencePcaParams) -> Self {
        self.pca = pca;
        self
    }
    /// L2-normalise embeddings before anchor finding, defaults to true.
    pub fn l2_norm(mut self, l2_norm: bool) -> Self {
        self.l2_norm = l2_norm;
        self
    }
    /// Neighbours for mutual-neighbour anchors, defaults to 5.
    pub fn k_anchor(mut self, k_anchor: usize) -> Self {
        self.k_anchor = k_anchor;
        self
    }
    /// Anchor filtering neighbours; defaults to `None` (off, Seurat v5). Seurat 4 used 200.
    pub fn k_filter(mut self, k_filter: Option<usize>) -> Self {
        self.k_filter = k_filter;
        self
    }
    /// Neighbours for anchor scoring, defaults to 30.
    pub fn k_score(mut self, k_score: usize) -> Self {
        self.k_score = k_score;
        self
    }
    /// Feature cap for the filtering space, defaults to 200.
    pub fn max_features(mut self, max_features: usize) -> Self {
        self.max_features = max_features;
        self
    }
    /// Anchor cells weighted per query cell, defaults to 50.
    pub fn k_weight(mut self, k_weight: usize) -> Self {
        self.k_weight = k_weight;
        self
    }
    /// Bandwidth of the weight kernel, defaults to 1.
    pub fn sd_weight(mut self, sd_weight: f64) -> Self {
        self.sd_weight = sd_weight;
        self
    }
    /// Seed of the PCA's random start, defaults to 42 (an Annoy forest keeps its own).
    pub fn seed(mut self, seed: u64) -> Self {
        self.pca = self.pca.seed(seed);
        self
    }
    /// Neighbour search for anchors, scores and weights; defaults to exact (Seurat uses
    /// Annoy with 50 trees, [`NeighborMethod::Annoy`]). Anchor filtering stays exact.
    pub fn neighbors(mut self, neighbors: NeighborMethod) -> Self {
        self.neighbors = neighbors;
        self
    }
}

/// A reference prepared for label transfer.
#[derive(Debug, Clone)]
pub struct SeuratTransfer {
    params: SeuratParams,
    pca: ReferencePca,
    anchor_space: Array2<f32>,
    labels: Vec<usize>,
    classes: Vec<String>,
    first_seen: Vec<usize>,
    top_features: Vec<usize>,
    filter_data: Option<Array2<f32>>,
    warnings: Vec<String>,
    fit_stages: StageSeconds,
}

/// The outcome of a transfer.
#[derive(Debug, Clone)]
pub struct TransferResult {
    /// Predicted class and `prediction.score.max` of every query cell.
    pub prediction: Prediction,
    /// Prediction scores, query cells × classes (rows sum to 1).
    pub scores: Array2<f32>,
    /// Anchors used (after filtering, if on).
    pub n_anchors: usize,
    /// Notes on reduced `k`s, skipped filtering, unlabelled reference cells.
    pub warnings: Vec<String>,
    /// Wall-clock seconds of each stage, fit stages first.
    pub stage_seconds: StageSeconds,
}

/// Kept reference rows, class names, class index per kept row, warnings.
pub type LabelledRows = (Vec<usize>, Vec<String>, Vec<usize>, Vec<String>);

/// Reference cells that have a label, the classes present (in `labels` order) and each
/// kept cell's class index. Errors when fewer than two classes are present.
pub fn labelled_reference(reference: &Dataset, labels: &Labels) -> Result<LabelledRows> {
    if labels.len() != reference.n_obs() {
        return Err(Error::invalid(
            &reference.source,
            "labels",
            format!(
                "{} labels for {} reference cells",
                labels.len(),
                reference.n_obs()
            ),
        ));
    }
    let rows: Vec<usize> = (0..labels.len())
        .filter(|&i| labels.codes[i].is_some())
        .collect();
    let mut warnings = Vec::new();
    if rows.len() < labels.len() {
        warnings.push(format!(
            "{} reference cell(s) without a label were left out",
            labels.len() - rows.len()
        ));
    }
    let counts = labels.counts();
    let present: Vec<usize> = (0..labels.classes.len())
        .filter(|&c| counts[c] > 0)
        .collect();
    if present.len() < 2 {
        let which = present
            .first()
            .map(|&c| format!(" ('{}')", labels.classes[c]))
            .unwrap_or_default();
        return Err(Error::invalid(
            &reference.source,
            "labels",
            format!(
                "the reference has {} class(es){which}; classification needs at least two",
                present.len()
            ),
        ));
    }
    let mut remap = vec![usize::MAX; labels.classes.len()];
    for (new, &old) in present.iter().enumerate() {
        remap[old] = new;
    }
    let codes = rows
        .iter()
        .filter_map(|&i| labels.codes[i].map(|c| remap[c]))
        .collect();
    let classes = present.iter().map(|&c| labels.classes[c].clone()).collect();
    Ok((rows, classes, codes, warnings))
}

impl SeuratParams {
    fn check(&self) -> Result<()> {
        let positive = [
            ("k_anchor", self.k_anchor),
            ("k_score", self.k_score),
            ("k_weight", self.k_weight),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(Error::param(name, "must be at least 1"));
            }
        }
        if self.k_filter == Some(0) {
            return Err(Error::param("k_filter", "must be at least 1 (or off)"));
        }
        if !(self.sd_weight > 0.0 && self.sd_weight.is_finite()) {
            return Err(Error::param(
                "sd_weight",
                format!("must be positive, got {}", self.sd_weight),
            ));
        }
        Ok(())
    }
}

/// Anchor pairs (reference cell, query cell) and the cross-data neighbourhoods they came from.
struct Anchors {
    pairs: Vec<(usize, usize)>,
    ref_to_query: Neighbors,
    query_to_ref: Neighbors,
}

impl SeuratTransfer {
    /// The fitted reference PCA.
    pub fn pca(&self) -> &ReferencePca {
        &self.pca
    }
    /// Classes that can be predicted.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Transfer the reference labels to `query` (genes matched by name).
    pub fn transfer(&self, query: &Dataset) -> Result<TransferResult> {
        let p = &self.params;
        let mut warnings = self.warnings.clone();
        let (n_ref, n_query) = (self.anchor_space.nrows(), query.n_obs());
        if n_query < 2 {
            return Err(Error::invalid(
                &query.source,
                "X",
                format!("the query needs at least 2 cells, got {n_query}"),
            ));
        }
        let mut sw = Stopwatch::new();
        sw.extend(&self.fit_stages);
        let projected = self.pca.project(query)?;
        sw.lap("project");
        let query_space = if p.l2_norm {
            l2_normalize_rows(projected.view())
        } else {
            projected.clone()
        };
        let wanted = p.k_anchor.max(p.k_score);
        let k = wanted.min(n_query - 1).min(n_ref - 1).max(1);
        if k < wanted {
            warnings.push(format!(
                "neighbourhoods reduced from {wanted} to {k} cells (small reference or query)"
            ));
        }
        let anchors = self.find_anchors(query, query_space.view(), k, &mut sw, &mut warnings)?;
        let anchor_scores = self.score_anchor_pairs(&anchors, query_space.view(), k, &mut sw)?;
        let pairs = anchors.pairs;
        let scores = self.weighted_votes(&pairs, &anchor_scores, &projected, &mut warnings)?;
        let (predicted, max_scores) = self.argmax(&scores);
        sw.lap("weights + votes");
        Ok(TransferResult {
            prediction: Prediction {
                classes: self.classes.clone(),
                predicted,
                scores: max_scores,
            },
            scores,
            n_anchors: pairs.len(),
            warnings,
            stage_seconds: sw.finish(),
        })
    }

    /// Mutual-neighbour anchors between the reference and the query (`FindAnchors`), filtered
    /// in feature space when `k_filter` is set.
    fn find_anchors(
        &self,
        query: &Dataset,
        query_space: ArrayView2<f32>,
        k: usize,
        sw: &mut Stopwatch,
        warnings: &mut Vec<String>,
    ) -> Result<Anchors> {
        let p = &self.params;
        let ref_to_query = knn(&p.neighbors, query_space, self.anchor_space.view(), k)?;
        let query_to_ref = knn(&p.neighbors, self.anchor_space.view(), query_space, k)?;
        sw.lap("anchor neighbours");
        let mut pairs = find_anchor_pairs(&ref_to_query, &query_to_ref, p.k_anchor);
        if let (Some(k_filter), Some(ref_data)) = (p.k_filter, &self.filter_data) {
            let query_data = self
                .pca
                .log_normalized_features(query)?
                .select_cols(&self.top_features)
                .to_dense();
            let (kept, skipped) =
                filter_anchors(&pairs, ref_data.view(), query_data.view(), k_filter)?;
            if skipped {
                warnings.push(format!(
                    "fewer cells than k.filter = {k_filter}: all anchors kept"
                ));
            }
            pairs = kept;
            sw.lap("filter anchors");
        }
        if pairs.is_empty() {
            return Err(Error::Incompatible(format!(
                "{}: no anchors between reference and query; the data sets share no neighbourhoods",
                query.source
            )));
        }
        Ok(Anchors {
            pairs,
            ref_to_query,
            query_to_ref,
        })
    }

    /// `ScoreAnchors`: shared-neighbour overlap of each pair, from neighbourhoods searched
    /// for the anchor cells only.
    fn score_anchor_pairs(
        &self,
        anchors: &Anchors,
        query_space: ArrayView2<f32>,
        k: usize,
        sw: &mut Stopwatch,
    ) -> Result<Vec<f64>> {
        let p = &self.params;
        let n_ref = self.anchor_space.nrows();
        let pairs = &anchors.pairs;
        let cells = |side: fn(&(usize, usize)) -> usize| {
            let mut c: Vec<usize> = pairs.iter().map(side).collect();
            c.sort_unstable();
            c.dedup();
            c
        };
        let k_within = (p.k_anchor.max(p.k_score) + 1).min(n_ref);
        let within = PartialNeighbors::search(
            &p.neighbors,
            self.anchor_space.view(),
            &cells(|a| a.0),
            k_within,
        )?;
        let self_query =
            PartialNeighbors::search(&p.neighbors, query_space, &cells(|a| a.1), k + 1)?;
        sw.lap("within neighbours");
        let scores = score_anchors(
            pairs,
            &within,
            &self_query,
            &anchors.ref_to_query,
            &anchors.query_to_ref,
            p.k_score,
            n_ref,
        );
        sw.lap("anchor pairs + scores");
        Ok(scores)
    }

    /// `TransferData`'s weights and the resulting class scores (query cells × classes).
    fn weighted_votes(
        &self,
        pairs: &[(usize, usize)],
        anchor_scores: &[f64],
        projected: &Array2<f32>,
        warnings: &mut Vec<String>,
    ) -> Result<Array2<f32>> {
        let p = &self.params;
        // Anchor query cells, in order of first appearance, and the anchors of each.
        let mut slot = std::collections::HashMap::new();
        let mut anchor_cells = Vec::new();
        let mut anchors_of: Vec<Vec<usize>> = Vec::new();
        for (a, &(_, j)) in pairs.iter().enumerate() {
            let s = *slot.entry(j).or_insert_with(|| {
                anchor_cells.push(j);
                anchors_of.push(Vec::new());
                anchor_cells.len() - 1
            });
            anchors_of[s].push(a);
        }
        let k_weight = p.k_weight.min(anchor_cells.len());
        if k_weight < p.k_weight {
            warnings.push(format!(
                "k.weight reduced from {} to {k_weight} (number of anchor query cells)",
                p.k_weight
            ));
        }
        let anchor_emb = projected.select(Axis(0), &anchor_cells);
        let nn = knn(&p.neighbors, anchor_emb.view(), projected.view(), k_weight)?;
        let kernel = (2.0 / p.sd_weight).powi(2);
        let mut out = Array2::<f32>::zeros((projected.nrows(), self.classes.len()));
        for (c, mut row) in out.axis_iter_mut(Axis(0)).enumerate() {
            let (idx, dist) = (nn.indices(c), nn.distances(c));
            let d_k = dist[k_weight - 1] as f64;
            let mut acc = vec![0.0f64; self.classes.len()];
            let mut total = 0.0;
            // Seurat 4.3's weight matrix holds the first `k_weight` *anchors* met while
            // walking the `k_weight` nearest anchor cells (each cell's anchors in anchor
            // order), not every anchor of those cells: verified entry by entry against
            // `FindWeights` output on pbmc68k (max difference 6e-16).
            let mut n_anchors = 0;
            'cells: for (&cell, &d) in idx.iter().zip(dist) {
                let rel = if d_k > 0.0 { 1.0 - d as f64 / d_k } else { 1.0 };
                for &a in &anchors_of[cell] {
                    if n_anchors == p.k_weight {
                        break 'cells;
                    }
                    n_anchors += 1;
                    if rel > 0.0 {
                        let w = 1.0 - (-rel * anchor_scores[a] / kernel).exp();
                        acc[self.labels[pairs[a].0]] += w;
                        total += w;
                    }
                }
            }
            if total <= 0.0 {
                // All weights zero (R: NaN): the nearest anchor cell's anchors vote equally.
                for &a in &anchors_of[idx[0]] {
                    acc[self.labels[pairs[a].0]] += 1.0;
                    total += 1.0;
                }
            }
            for (o, v) in row.iter_mut().zip(&acc) {
                *o = (v / total) as f32;
            }
        }
        Ok(out)
    }

    /// Class with the highest score per row; ties go to the class seen first in the
    /// reference (R's `which.max` over `unique(refdata)` levels).
    fn argmax(&self, scores: &Array2<f32>) -> (Vec<usize>, Vec<f32>) {
        scores
            .rows()
            .into_iter()
            .map(|row| {
                let mut best = 0;
                for c in 1..row.len() {
                    if row[c] > row[best]
                        || (row[c] == row[best] && self.first_seen[c] < self.first_seen[best])
                    {
                        best = c;
                    }
                }
                (best, row[best])
            })
            .unzip()
    }
}

impl Fit for SeuratParams {
    type Fitted = SeuratTransfer;

    /// Prepare `reference` (cells labelled by `labels`) for transfer.
    fn fit(&self, reference: &Dataset, labels: &Labels) -> Result<SeuratTransfer> {
        self.check()?;
        let mut sw = Stopwatch::new();
        let (rows, classes, codes, warnings) = labelled_reference(reference, labels)?;
        let reference = if rows.len() == reference.n_obs() {
            reference.clone()
        } else {
            reference.select_cells(&rows)
        };
        sw.lap("labelled cells");
        let pca = self.pca.fit(&reference)?;
        sw.extend(pca.fit_stages());
        let anchor_space = if self.l2_norm {
            l2_normalize_rows(pca.embeddings())
        } else {
            pca.embeddings().to_owned()
        };
        let mut first_seen = vec![usize::MAX; classes.len()];
        for (i, &c) in codes.iter().enumerate() {
            first_seen[c] = first_seen[c].min(i);
        }
        let (top_features, filter_data) = match self.k_filter {
            Some(_) => {
                let top = top_dim_features(pca.loadings(), 100, self.max_features);
                let data = pca
                    .log_normalized_features(&reference)?
                    .select_cols(&top)
                    .to_dense();
                (top, Some(data))
            }
            None => (vec![], None),
        };
        sw.lap("filter features");
        Ok(SeuratTransfer {
            params: self.clone(),
            pca,
            anchor_space,
            labels: codes,
            classes,
            first_seen,
            top_features,
            filter_data,
            warnings,
            fit_stages: sw.finish(),
        })
    }
}

impl Predict for SeuratTransfer {
    /// The predictions of [`SeuratTransfer::transfer`].
    fn predict(&self, query: &Dataset) -> Result<Prediction> {
        Ok(self.transfer(query)?.prediction)
    }
}

#[cfg(test)]
#[path = "label_transfer_tests.rs"]
mod tests;
