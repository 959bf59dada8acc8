//! How much a tokenizer loses: information-loss measures for binning and rank encoding.
//!
//! The study compares scGPT-style value binning with Geneformer-style rank encoding
//! without measuring what each keeps. For a data set and a tokenizer this module reports,
//! per cell and summarised over cells (`scrobust tokenize-info`):
//!
//! 1. **Mutual information** (bits) between a gene's *original value* and its *token
//!    value*, within the cell, over the genes the tokenizer emits. The original value is
//!    what the tokenizer orders: the input value for binning, the median-scaled CP10k
//!    value for rank encoding. The token value is the bin (binning) or the rank position
//!    (rank encoding). Both use the same plug-in estimator on exact values
//!    (`H(X) + H(T) − H(X, T)`, each distinct value one outcome), so the numbers compare
//!    directly: for binning MI ≤ log2(n_bins − 1); for rank encoding MI = H(X), i.e. all
//!    of the cell's value information. `value_entropy_bits` (H(X)) is reported alongside,
//!    so `MI / H(X)` is the share kept.
//! 2. **Within-cell Spearman correlation** between original values and token values
//!    (rank positions negated so that higher expression is a higher score). Rank
//!    encoding gives 1 on cells without tied values; binning < 1 whenever two genes share
//!    a bin.
//! 3. **Cross-cell spread**: for each token value, the mean expression of the genes that
//!    carry it in a cell, then the standard deviation of that mean across cells, averaged
//!    over token values (weighted by the number of cells). Expression is log1p(CP10k) for
//!    count data and the stored value for log-normalized data, the same scale for both
//!    tokenizers. Large spread means the same token stands for very different expression
//!    levels in different cells (per-cell quantile bins and ranks are both relative).
//!    `cross_cell_spread_relative` divides by the overall standard deviation of expression.
//! 4. **Under noise** ([`noise_info`]): for each perturbed cell, the fraction of tokens
//!    whose value (bin or rank position) changes or that appear/disappear, over the union
//!    of genes in the clean and noisy sequences, and Kendall's tau-b between clean and
//!    noisy token values over the genes present in both.
//!
//! Zeros are not part of (1)–(3): both tokenizers keep "zero ↔ absent/bin 0" exactly.

pub mod stats;

use super::{cell_rng, BinningTokenizer, FittedRank};
use crate::data::{CsrMatrix, ValueKind};
use crate::error::Result;
use crate::perturb::{GaussianNoise, Perturbed};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// The tokenizer being measured.
#[derive(Debug, Clone, Copy)]
pub enum InfoTokenizer<'a> {
    /// scGPT binning of all non-zero genes.
    Binning(&'a BinningTokenizer),
    /// Geneformer rank encoding (truncated to its gene-token budget).
    Rank(&'a FittedRank),
}

impl InfoTokenizer<'_> {
    /// `"binning"` or `"rank"`.
    pub fn name(&self) -> &'static str {
        match self {
            InfoTokenizer::Binning(_) => "binning",
            InfoTokenizer::Rank(_) => "rank",
        }
    }
}

/// One emitted token of a cell, as the measures see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenView {
    /// Gene column.
    pub column: u32,
    /// Value the tokenizer orders (input value, or median-scaled CP10k for rank).
    pub original: f64,
    /// Bin (binning) or 1-based rank position (rank encoding).
    pub token_value: u32,
    /// Token value oriented so that higher expression scores higher (bin, or −position).
    pub token_score: f64,
    /// Expression on the common scale (log1p(CP10k) for counts, else the stored value).
    pub expression: f64,
}

/// The tokens of cell `row`. Cell `row` uses `cell_rng(seed, row)` for binning ties, as
/// [`super::tokenize_binned`] does.
pub fn cell_view(
    x: &CsrMatrix,
    row: usize,
    kind: ValueKind,
    tok: InfoTokenizer,
    seed: u64,
) -> Result<Vec<TokenView>> {
    let (idx, val) = x.row(row);
    let total: f64 = val.iter().map(|&v| v as f64).sum();
    let expression = |v: f32| match kind {
        ValueKind::Counts if total > 0.0 => (v as f64 / total * 1e4).ln_1p(),
        _ => v as f64,
    };
    match tok {
        InfoTokenizer::Binning(b) => {
            let (cols, vals): (Vec<u32>, Vec<f32>) = idx
                .iter()
                .zip(val)
                .filter(|(_, &v)| v != 0.0)
                .map(|(&c, &v)| (c, v))
                .unzip();
            let bins = b.bin_values(&vals, &mut cell_rng(seed, row))?;
            Ok(cols
                .iter()
                .zip(&vals)
                .zip(&bins)
                .map(|((&c, &v), &t)| TokenView {
                    column: c,
                    original: v as f64,
                    token_value: t,
                    token_score: t as f64,
                    expression: expression(v),
                })
                .collect())
        }
        InfoTokenizer::Rank(f) => {
            let by_col: HashMap<u32, f32> = idx.iter().copied().zip(val.iter().copied()).collect();
            Ok(f.rank_row(idx, val)
                .into_iter()
                .take(f.params().n_gene_tokens())
                .enumerate()
                .map(|(pos, (c, norm))| TokenView {
                    column: c,
                    original: norm,
                    token_value: pos as u32 + 1,
                    token_score: -(pos as f64),
                    expression: expression(by_col.get(&c).copied().unwrap_or(0.0)),
                })
                .collect())
        }
    }
}

/// Per-cell measures (1) and (2).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CellInfo {
    /// Tokens emitted (non-zero genes kept).
    pub n_tokens: usize,
    /// MI between original and token values, bits.
    pub mutual_information_bits: f64,
    /// Entropy of the original values, bits (the most MI could be).
    pub value_entropy_bits: f64,
    /// Spearman correlation of original and token values; `None` when undefined
    /// (fewer than 2 tokens or a constant variable).
    pub spearman: Option<f64>,
}

fn cell_info(view: &[TokenView]) -> CellInfo {
    let original: Vec<f64> = view.iter().map(|t| t.original).collect();
    let score: Vec<f64> = view.iter().map(|t| t.token_score).collect();
    CellInfo {
        n_tokens: view.len(),
        mutual_information_bits: stats::mutual_information_bits(&original, &score),
        value_entropy_bits: stats::entropy_bits(&original),
        spearman: stats::spearman(&original, &score),
    }
}

/// Spread of one token value's per-cell mean expression across cells (measure 3).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TokenSpread {
    /// Bin or 1-based rank position.
    pub token_value: u32,
    /// Cells in which the token value occurs.
    pub n_cells: usize,
    /// Mean over cells of the per-cell mean expression.
    pub mean_expression: f64,
    /// Standard deviation over cells (population) of the per-cell mean expression.
    pub sd_expression: f64,
}

/// Measures (1)–(3) for a data set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InfoReport {
    /// `"binning"` or `"rank"`.
    pub tokenizer: String,
    /// Cells measured.
    pub n_cells: usize,
    /// Mean over non-empty cells of the per-cell MI, bits.
    pub mutual_information_bits: f64,
    /// Mean over non-empty cells of the per-cell value entropy, bits.
    pub value_entropy_bits: f64,
    /// Sum of MI over sum of value entropy: the share of within-cell information kept.
    pub information_kept_fraction: f64,
    /// Mean over cells where it is defined of the within-cell Spearman correlation.
    pub spearman_within_cell: f64,
    /// Cells where the Spearman correlation is defined.
    pub n_cells_spearman_defined: usize,
    /// Cell-weighted mean over token values of the across-cell SD of mean expression.
    pub cross_cell_spread: f64,
    /// `cross_cell_spread` over the SD of expression over all emitted tokens.
    pub cross_cell_spread_relative: f64,
    /// Measure (3) per token value.
    pub cross_cell_by_token: Vec<TokenSpread>,
    /// Measures (1)–(2) per cell.
    pub per_cell: Vec<CellInfo>,
}

#[derive(Default, Clone, Copy)]
struct Moments {
    n: f64,
    sum: f64,
    sum_sq: f64,
}

impl Moments {
    fn add(&mut self, x: f64) {
        self.n += 1.0;
        self.sum += x;
        self.sum_sq += x * x;
    }
    fn merge(mut self, o: Moments) -> Moments {
        self.n += o.n;
        self.sum += o.sum;
        self.sum_sq += o.sum_sq;
        self
    }
    fn mean(&self) -> f64 {
        self.sum / self.n
    }
    fn sd(&self) -> f64 {
        (self.sum_sq / self.n - self.mean().powi(2)).max(0.0).sqrt()
    }
}

type Spread = (BTreeMap<u32, Moments>, Moments);

fn merge_spread(mut a: Spread, b: Spread) -> Spread {
    for (k, m) in b.0 {
        let slot = a.0.entry(k).or_default();
        *slot = slot.merge(m);
    }
    a.1 = a.1.merge(b.1);
    a
}

/// Measures (1)–(3) over every cell of `x` (values of `kind`), in parallel.
pub fn measure(
    x: &CsrMatrix,
    kind: ValueKind,
    tok: InfoTokenizer,
    seed: u64,
) -> Result<InfoReport> {
    let results: Vec<(CellInfo, Spread)> = (0..x.n_rows())
        .into_par_iter()
        .map(|r| {
            let view = cell_view(x, r, kind, tok, seed)?;
            let mut per_token: BTreeMap<u32, Moments> = BTreeMap::new();
            let mut all = Moments::default();
            for t in &view {
                per_token
                    .entry(t.token_value)
                    .or_default()
                    .add(t.expression);
                all.add(t.expression);
            }
            // One observation per (token value, cell): the cell's mean expression there.
            let cell_means = per_token
                .into_iter()
                .map(|(k, m)| {
                    let mut one = Moments::default();
                    one.add(m.mean());
                    (k, one)
                })
                .collect();
            Ok((cell_info(&view), (cell_means, all)))
        })
        .collect::<Result<_>>()?;
    let (per_cell, spreads): (Vec<CellInfo>, Vec<Spread>) = results.into_iter().unzip();
    let (by_token, all) = spreads
        .into_iter()
        .fold((BTreeMap::new(), Moments::default()), merge_spread);
    let nonempty: Vec<&CellInfo> = per_cell.iter().filter(|c| c.n_tokens > 0).collect();
    let mean = |f: &dyn Fn(&CellInfo) -> f64| {
        if nonempty.is_empty() {
            f64::NAN
        } else {
            nonempty.iter().map(|c| f(c)).sum::<f64>() / nonempty.len() as f64
        }
    };
    let mi = mean(&|c| c.mutual_information_bits);
    let h = mean(&|c| c.value_entropy_bits);
    let rhos: Vec<f64> = per_cell.iter().filter_map(|c| c.spearman).collect();
    let cross_cell_by_token: Vec<TokenSpread> = by_token
        .iter()
        .map(|(&k, m)| TokenSpread {
            token_value: k,
            n_cells: m.n as usize,
            mean_expression: m.mean(),
            sd_expression: m.sd(),
        })
        .collect();
    let weight: f64 = by_token.values().map(|m| m.n).sum();
    let cross = by_token.values().map(|m| m.n * m.sd()).sum::<f64>() / weight;
    Ok(InfoReport {
        tokenizer: tok.name().to_string(),
        n_cells: x.n_rows(),
        mutual_information_bits: mi,
        value_entropy_bits: h,
        information_kept_fraction: if h > 0.0 { mi / h } else { f64::NAN },
        spearman_within_cell: rhos.iter().sum::<f64>() / rhos.len() as f64,
        n_cells_spearman_defined: rhos.len(),
        cross_cell_spread: cross,
        cross_cell_spread_relative: cross / all.sd(),
        cross_cell_by_token,
        per_cell,
    })
}

/// Measure (4) for one perturbed cell.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NoiseCellInfo {
    /// Row of the cell.
    pub cell: usize,
    /// Tokens whose value/position changed or that appeared/disappeared, over the union.
    pub token_change_fraction: f64,
    /// Kendall's tau-b of clean vs noisy token values over shared genes; `None` if undefined.
    pub kendall_tau: Option<f64>,
}

/// Measure (4) for a data set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoiseInfo {
    /// Fraction of cells perturbed.
    pub fraction: f64,
    /// Noise standard deviation.
    pub sigma: f64,
    /// Cells perturbed.
    pub n_perturbed: usize,
    /// Mean over perturbed cells of the token change fraction.
    pub token_change_fraction: f64,
    /// Mean over perturbed cells (where defined) of Kendall's tau-b.
    pub kendall_tau: f64,
    /// Per perturbed cell.
    pub per_cell: Vec<NoiseCellInfo>,
}

/// Compare clean and noisy token sequences of one cell.
pub fn compare_views(clean: &[TokenView], noisy: &[TokenView]) -> (f64, Option<f64>) {
    let noisy_by_col: HashMap<u32, &TokenView> = noisy.iter().map(|t| (t.column, t)).collect();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let mut unchanged = 0usize;
    for t in clean {
        if let Some(n) = noisy_by_col.get(&t.column) {
            a.push(t.token_score);
            b.push(n.token_score);
            unchanged += (n.token_value == t.token_value) as usize;
        }
    }
    let union = clean.len() + noisy.len() - a.len();
    let change = if union == 0 {
        0.0
    } else {
        1.0 - unchanged as f64 / union as f64
    };
    (change, stats::kendall_tau_b(&a, &b))
}

/// Measure how the perturbed cells' tokens change: `clean` is the matrix before noise,
/// `perturbed` the result of `noise` applied to it. Both sides use the same tokenizer
/// state and per-cell RNGs.
pub fn noise_info(
    clean: &CsrMatrix,
    perturbed: &Perturbed,
    kind: ValueKind,
    tok: InfoTokenizer,
    noise: &GaussianNoise,
    seed: u64,
) -> Result<NoiseInfo> {
    let per_cell: Vec<NoiseCellInfo> = perturbed
        .perturbed_cells
        .par_iter()
        .map(|&r| {
            let before = cell_view(clean, r, kind, tok, seed)?;
            let after = cell_view(&perturbed.x, r, kind, tok, seed)?;
            let (token_change_fraction, kendall_tau) = compare_views(&before, &after);
            Ok(NoiseCellInfo {
                cell: r,
                token_change_fraction,
                kendall_tau,
            })
        })
        .collect::<Result<_>>()?;
    let n = per_cell.len() as f64;
    let taus: Vec<f64> = per_cell.iter().filter_map(|c| c.kendall_tau).collect();
    Ok(NoiseInfo {
        fraction: noise.fraction,
        sigma: noise.sigma,
        n_perturbed: per_cell.len(),
        token_change_fraction: per_cell
            .iter()
            .map(|c| c.token_change_fraction)
            .sum::<f64>()
            / n,
        kendall_tau: taus.iter().sum::<f64>() / taus.len() as f64,
        per_cell,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenize::{RankTokenizerParams, TieMode};
    use approx::assert_abs_diff_eq;
    use ndarray::array;

    fn data() -> CsrMatrix {
        CsrMatrix::from_dense(&array![
            [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
            [8.0, 0.0, 6.0, 5.0, 0.0, 3.0, 2.0, 1.0],
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        ])
    }

    /// With 2 non-zero bins of 4 distinct values each, binning keeps exactly 1 bit of the
    /// 3 bits in cell 0; rank encoding keeps all 3 and Spearman 1.
    #[test]
    fn binning_loses_and_rank_keeps_within_cell_information() {
        let x = data();
        let b = BinningTokenizer::new(3, TieMode::Left).unwrap();
        let rb = measure(&x, ValueKind::Counts, InfoTokenizer::Binning(&b), 0).unwrap();
        // Edges [1, 8]: values 1..7 → bin 1, 8 → bin 2, so MI = H(7/8, 1/8).
        let h = -(7.0f64 / 8.0) * (7.0f64 / 8.0).log2() - (1.0 / 8.0) * (1.0f64 / 8.0).log2();
        assert_abs_diff_eq!(rb.per_cell[0].mutual_information_bits, h, epsilon = 1e-12);
        assert_abs_diff_eq!(rb.per_cell[0].value_entropy_bits, 3.0, epsilon = 1e-12);
        assert_eq!(rb.per_cell[2].n_tokens, 0);
        let f = FittedRank::from_medians(RankTokenizerParams::v1(), vec![1.0; 8]).unwrap();
        let rr = measure(&x, ValueKind::Counts, InfoTokenizer::Rank(&f), 0).unwrap();
        assert_abs_diff_eq!(rr.per_cell[0].mutual_information_bits, 3.0, epsilon = 1e-12);
        assert_abs_diff_eq!(rr.spearman_within_cell, 1.0, epsilon = 1e-12);
        assert_abs_diff_eq!(rr.information_kept_fraction, 1.0, epsilon = 1e-12);
        assert_eq!(rr.n_cells, 3);
    }

    /// Identical per-cell values in two cells give zero cross-cell spread; different
    /// depths with the same bins give a positive spread for counts.
    #[test]
    fn cross_cell_spread_reflects_depth() {
        let same = CsrMatrix::from_dense(&array![[1.0f32, 2.0, 3.0], [1.0, 2.0, 3.0]]);
        let b = BinningTokenizer::new(4, TieMode::Left).unwrap();
        let r = measure(
            &same,
            ValueKind::LogNormalized,
            InfoTokenizer::Binning(&b),
            0,
        )
        .unwrap();
        assert_abs_diff_eq!(r.cross_cell_spread, 0.0, epsilon = 1e-12);
        let scaled = CsrMatrix::from_dense(&array![[1.0f32, 2.0, 3.0], [10.0, 20.0, 30.0]]);
        let r = measure(
            &scaled,
            ValueKind::LogNormalized,
            InfoTokenizer::Binning(&b),
            0,
        )
        .unwrap();
        assert!(r.cross_cell_spread > 1.0, "{}", r.cross_cell_spread);
    }

    /// Comparing a sequence with itself changes nothing; a swapped pair of ranks is seen.
    #[test]
    fn compare_views_counts_changes() {
        let t = |c: u32, v: u32| TokenView {
            column: c,
            original: 0.0,
            token_value: v,
            token_score: -(v as f64),
            expression: 0.0,
        };
        let clean = [t(0, 1), t(1, 2), t(2, 3)];
        assert_eq!(compare_views(&clean, &clean), (0.0, Some(1.0)));
        let noisy = [t(1, 1), t(0, 2), t(2, 3), t(5, 4)];
        let (change, tau) = compare_views(&clean, &noisy);
        assert_abs_diff_eq!(change, 3.0 / 4.0, epsilon = 1e-12);
        assert_abs_diff_eq!(tau.unwrap(), 1.0 / 3.0, epsilon = 1e-12);
    }

    /// Noise measures cover exactly the perturbed cells and are seeded.
    #[test]
    fn noise_info_is_seeded() {
        let x = data().select_rows(&[0, 1, 0, 1]);
        let b = BinningTokenizer::default();
        let noise = GaussianNoise::new(0.5, 1.0);
        let run = || {
            let p = noise.apply(&x, ValueKind::Counts, 4).unwrap();
            noise_info(
                &x,
                &p,
                ValueKind::Counts,
                InfoTokenizer::Binning(&b),
                &noise,
                4,
            )
            .unwrap()
        };
        let a = run();
        assert_eq!(a.n_perturbed, 2);
        assert!(a.token_change_fraction > 0.0 && a.token_change_fraction <= 1.0);
        assert_eq!(a, run());
    }
}
