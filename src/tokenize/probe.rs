//! The token probe: how much cell-type information a tokenizer's output still carries.
//!
//! Each cell is turned into the features its tokens define (the same genes, so the probes
//! differ only in what the tokenizer keeps), L1 logistic regression is fitted on the
//! reference cells' features and scored on the query's, clean and noisy. Next to the raw
//! values' probe it is the ceiling of what a model reading those tokens could know about
//! cell type. (Mutual information between values and tokens cannot serve: it equals the
//! tokens' entropy by construction and rises under noise, which breaks count ties.)
//!
//! - raw: log1p(CP10k) values;
//! - binning: scGPT's per-cell quantile bin of every non-zero value, divided by the number
//!   of bins (zeros stay 0);
//! - rank: a gene's place in the cell's rank-value sequence (medians fitted on the
//!   reference), as `1 − position / length` so the top gene is 1 and absent genes 0.

use crate::baseline::LogisticParams;
use crate::data::{CsrMatrix, Dataset, Labels, ValueKind};
use crate::error::Result;
use crate::pp::log_normalize;
use crate::tokenize::rank::rank_encoding_input;
use crate::tokenize::{BinningTokenizer, FittedRank, RankTokenizerParams};
use crate::traits::{Fit, Predict};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// One probe's query accuracy.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ProbeScore {
    /// `raw`, `binning` or `rank`.
    pub view: String,
    /// Accuracy of logistic regression on the query cells' features.
    pub accuracy: f64,
}

/// The binned view of `x`: each cell's non-zero values replaced by bin / n_bins.
pub fn binned_view(x: &CsrMatrix, binning: &BinningTokenizer, seed: u64) -> Result<CsrMatrix> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let scale = binning.n_bins.max(1) as f32;
    let mut data = Vec::with_capacity(x.nnz());
    for r in 0..x.n_rows() {
        let (_, values) = x.row(r);
        let bins = binning.bin_values(values, &mut rng)?;
        data.extend(bins.into_iter().map(|b| b as f32 / scale));
    }
    CsrMatrix::new(
        x.n_rows(),
        x.n_cols(),
        x.indptr().to_vec(),
        x.indices().to_vec(),
        data,
        "binned view",
    )
}

/// The rank view of count-like `x`: `1 − position / length` of each gene in the cell's
/// rank-value sequence (truncated as the tokenizer truncates), 0 for genes not in it.
pub fn rank_view(x: &CsrMatrix, rank: &FittedRank) -> Result<CsrMatrix> {
    let max_len = rank.params().n_gene_tokens();
    let (mut indptr, mut indices, mut data) = (vec![0], Vec::new(), Vec::new());
    for r in 0..x.n_rows() {
        let (idx, values) = x.row(r);
        let mut ranked = rank.rank_row(idx, values);
        ranked.truncate(max_len);
        let len = ranked.len().max(1) as f32;
        let mut row: Vec<(u32, f32)> = (ranked.iter().enumerate())
            .map(|(pos, &(c, _))| (c, 1.0 - pos as f32 / len))
            .collect();
        row.sort_unstable_by_key(|e| e.0);
        indices.extend(row.iter().map(|e| e.0));
        data.extend(row.iter().map(|e| e.1));
        indptr.push(indices.len());
    }
    CsrMatrix::new(x.n_rows(), x.n_cols(), indptr, indices, data, "rank view")
}

/// `ds` with its matrix replaced by a view (already on its final scale).
fn with_view(ds: &Dataset, x: CsrMatrix) -> Dataset {
    let mut out = ds.clone();
    out.x = x;
    out.value_kind = ValueKind::LogNormalized;
    out
}

/// Accuracy of `pred`-style labels against the truth (cells without a truth label skipped).
fn accuracy(predicted: &[&str], truth: &[Option<String>]) -> f64 {
    let scored: Vec<bool> = (predicted.iter().zip(truth))
        .filter_map(|(p, t)| t.as_ref().map(|t| t == p))
        .collect();
    scored.iter().filter(|&&h| h).count() as f64 / scored.len().max(1) as f64
}

/// The three probes, fitted on `reference` and scored on each of `queries` (e.g. clean and
/// noisy); returns, per query, the raw, binning and rank scores. The rank tokenizer's
/// medians come from the reference only.
pub fn token_probe(
    reference: &Dataset,
    labels: &Labels,
    queries: &[&Dataset],
    truth: &[Option<String>],
    seed: u64,
) -> Result<Vec<Vec<ProbeScore>>> {
    let binning = BinningTokenizer::default();
    let rank = RankTokenizerParams::default()
        .fit(&rank_encoding_input(&reference.x, reference.value_kind))?;
    let views = |ds: &Dataset| -> Result<[(&'static str, Dataset); 3]> {
        let raw = with_view(ds, log_normalize(&ds.x, ds.value_kind, 1e4));
        let binned = with_view(ds, binned_view(&ds.x, &binning, seed)?);
        let ranked = rank_view(&rank_encoding_input(&ds.x, ds.value_kind), &rank)?;
        Ok([
            ("raw", raw),
            ("binning", binned),
            ("rank", with_view(ds, ranked)),
        ])
    };
    let params = LogisticParams::new().seed(seed);
    let fitted = views(reference)?
        .into_iter()
        .map(|(name, v)| Ok((name, params.fit(&v, labels)?)))
        .collect::<Result<Vec<_>>>()?;
    let mut out = Vec::new();
    for q in queries {
        let mut scores = Vec::new();
        for ((name, model), (_, view)) in fitted.iter().zip(views(q)?) {
            let pred = model.predict(&view)?;
            let labels: Vec<&str> = (0..pred.predicted.len()).map(|i| pred.label(i)).collect();
            scores.push(ProbeScore {
                view: name.to_string(),
                accuracy: accuracy(&labels, truth),
            });
        }
        out.push(scores);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts() -> CsrMatrix {
        // Two cells over four genes.
        CsrMatrix::new(
            2,
            4,
            vec![0, 3, 5],
            vec![0, 1, 3, 1, 2],
            vec![5.0, 1.0, 3.0, 2.0, 8.0],
            "test",
        )
        .unwrap()
    }

    /// Bins keep the sparsity pattern and the within-cell order, on a 0–1 scale.
    #[test]
    fn binned_view_keeps_pattern_and_order() {
        let x = counts();
        let b = binned_view(&x, &BinningTokenizer::default(), 0).unwrap();
        assert_eq!(b.indptr(), x.indptr());
        assert_eq!(b.indices(), x.indices());
        let (_, v) = b.row(0);
        assert!(v[0] > v[2] && v[2] > v[1], "{v:?}");
        assert!(b.data().iter().all(|&v| v > 0.0 && v <= 1.0));
    }

    /// With unit medians the rank view puts the top gene at 1 and steps by 1/length.
    #[test]
    fn rank_view_is_position_in_sequence() {
        let x = counts();
        let rank = FittedRank::from_medians(RankTokenizerParams::default(), vec![1.0; 4]).unwrap();
        let r = rank_view(&x, &rank).unwrap();
        let (idx, v) = r.row(0);
        assert_eq!(idx, &[0, 1, 3]);
        let expect = [1.0, 1.0 - 2.0 / 3.0, 1.0 - 1.0 / 3.0];
        for (a, b) in v.iter().zip(expect) {
            assert!((a - b).abs() < 1e-6, "{v:?}");
        }
        let (idx, v) = r.row(1);
        assert_eq!(idx, &[1, 2]);
        assert_eq!(v, &[0.5, 1.0]);
    }

    /// On a simulated task every probe beats chance, and the raw probe equals logistic
    /// regression on the data itself.
    #[test]
    fn probes_learn_cell_types() {
        use crate::data::simulate::{simulate, Profile, SimulateOptions};
        let mut opts = SimulateOptions::new(Profile::PancreasLike);
        opts.n_cells = Some(300);
        opts.n_genes = 200;
        opts.seed = 4;
        let ds = simulate(&opts).unwrap();
        let reference = ds.select_cells(&(0..200).collect::<Vec<_>>());
        let query = ds.select_cells(&(200..300).collect::<Vec<_>>());
        let labels = reference.labels("cell_type").unwrap();
        let q_labels = query.labels("cell_type").unwrap();
        let truth: Vec<Option<String>> = (0..query.n_obs())
            .map(|i| q_labels.codes[i].map(|c| q_labels.classes[c].clone()))
            .collect();
        let scores = token_probe(&reference, &labels, &[&query], &truth, 0).unwrap();
        let names: Vec<&str> = scores[0].iter().map(|s| s.view.as_str()).collect();
        assert_eq!(names, ["raw", "binning", "rank"]);
        let majority = labels.counts().into_iter().max().unwrap() as f64 / labels.len() as f64;
        for s in &scores[0] {
            assert!(s.accuracy > majority + 0.1, "{s:?} vs majority {majority}");
        }
        let direct = LogisticParams::default().fit(&reference, &labels).unwrap();
        let pred = direct.predict(&query).unwrap();
        let direct_labels: Vec<&str> = (0..pred.predicted.len()).map(|i| pred.label(i)).collect();
        // Same features and penalty; only the feature order (and so float sums) may differ.
        assert!((scores[0][0].accuracy - accuracy(&direct_labels, &truth)).abs() < 0.02);
    }
}
