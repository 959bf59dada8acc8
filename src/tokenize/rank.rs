//! Geneformer's rank-value encoding.
//!
//! Source: ctheodoris/Geneformer `geneformer/tokenizer.py` (`TranscriptomeTokenizer`,
//! `tokenize_cell`, `rank_genes`). For one cell of raw counts:
//! 1. normalize: `count / n_counts × 10,000` (`n_counts` = the cell's total over all
//!    genes), then divide by the gene's non-zero median (`gene_median_dictionary`);
//! 2. keep the non-zero genes and order them by that value, descending
//!    (`np.argsort(-gene_vector)`);
//! 3. truncate to the model input size: V1 (`Geneformer-V1-10M`, 30M series) 2048 tokens
//!    with no special tokens; V2 4096 tokens with `<cls>` first and `<eos>` last, so 4094
//!    genes.
//!
//! The medians are a fitted object ([`RankTokenizerParams::fit`]) computed on the
//! reference/training cells only, never on the query. Geneformer's medians come from its
//! pretraining corpus; genes absent from its dictionary are not tokenized. Likewise genes
//! never expressed in the reference get no median here and are skipped (counted in
//! [`FittedRank::n_genes_without_median`]).
//!
//! Differences from Geneformer, on purpose: ties (equal normalized values) are broken by
//! gene index, lower first (numpy's default quicksort is not stable); the per-cell factor
//! `10,000 / n_counts` is common to all genes of a cell, so the order is computed from
//! `count / median` alone and the encoding is invariant to per-cell scaling of the counts.
//! Special tokens are added by [`super::collate`], not here.

use super::binning::{any_invalid, check_column_ids};
use super::collate::CollateSpec;
use super::radix::sort_positions_by_high_half;
use super::vocab::UNKNOWN_GENE;
use super::TokenizedCell;
use crate::data::{CsrMatrix, Dataset};
use crate::error::{Error, Result};
use rayon::prelude::*;

/// Settings of the rank-value encoding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankTokenizerParams {
    /// Normalization target per cell; Geneformer uses 10,000.
    pub target_sum: f64,
    /// Model input size in tokens, special tokens included. V1: 2048, V2: 4096.
    pub max_len: usize,
    /// Whether the model input starts with `<cls>` and ends with `<eos>` (V2).
    pub special_tokens: bool,
}

impl Default for RankTokenizerParams {
    /// Geneformer V1: 10,000 target sum, 2048 tokens, no special tokens.
    fn default() -> Self {
        Self::v1()
    }
}

impl RankTokenizerParams {
    /// Geneformer V1: 2048 genes, no special tokens.
    pub fn v1() -> Self {
        Self {
            target_sum: 10_000.0,
            max_len: 2048,
            special_tokens: false,
        }
    }

    /// Geneformer V2: 4096 tokens, `<cls>` + 4094 genes + `<eos>`.
    pub fn v2() -> Self {
        Self {
            target_sum: 10_000.0,
            max_len: 4096,
            special_tokens: true,
        }
    }

    /// Set the model input size (special tokens included).
    pub fn with_max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// Number of gene tokens per cell: `max_len`, minus 2 with special tokens.
    pub fn n_gene_tokens(&self) -> usize {
        if self.special_tokens {
            self.max_len.saturating_sub(2)
        } else {
            self.max_len
        }
    }

    /// The collation that matches these settings (pad value 0: rank models read no value).
    pub fn collate_spec(&self) -> CollateSpec {
        CollateSpec::geneformer(self.max_len, self.special_tokens)
    }

    fn check(&self) -> Result<()> {
        if !(self.target_sum.is_finite() && self.target_sum > 0.0) {
            return Err(Error::param(
                "target_sum",
                format!("must be positive, got {}", self.target_sum),
            ));
        }
        if self.n_gene_tokens() == 0 {
            return Err(Error::param(
                "max_len",
                format!("{} leaves no room for genes", self.max_len),
            ));
        }
        Ok(())
    }

    /// Fit the gene non-zero medians of CP10k values on reference cells (raw counts).
    pub fn fit(&self, reference: &CsrMatrix) -> Result<FittedRank> {
        self.check()?;
        check_nonnegative(reference)?;
        let n_genes = reference.n_cols();
        // Transpose the non-zero CP10k values into per-gene lists (one pass, nnz floats).
        let mut counts = vec![0usize; n_genes + 1];
        for (&c, &v) in reference.indices().iter().zip(reference.data()) {
            if v > 0.0 {
                counts[c as usize + 1] += 1;
            }
        }
        for g in 0..n_genes {
            counts[g + 1] += counts[g];
        }
        let mut fill = counts.clone();
        let mut cp10k = vec![0f64; counts[n_genes]];
        for (r, total) in reference.row_sums().into_iter().enumerate() {
            let (idx, val) = reference.row(r);
            for (&c, &v) in idx.iter().zip(val) {
                if v > 0.0 {
                    cp10k[fill[c as usize]] = v as f64 / total * self.target_sum;
                    fill[c as usize] += 1;
                }
            }
        }
        let medians = (0..n_genes)
            .into_par_iter()
            .map(|g| median(&cp10k[counts[g]..counts[g + 1]]))
            .collect();
        Ok(FittedRank {
            params: *self,
            medians,
        })
    }

    /// [`RankTokenizerParams::fit`] on a data set's matrix (it should hold raw counts).
    pub fn fit_dataset(&self, reference: &Dataset) -> Result<FittedRank> {
        self.fit(&reference.x).map_err(|e| match e {
            Error::InvalidData { key, problem, .. } => {
                Error::invalid(&reference.source, key, problem)
            }
            other => other,
        })
    }
}

/// numpy-style median (mean of the two middle values for an even count); NaN when empty.
fn median(values: &[f64]) -> f64 {
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    let (_, &mut hi, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    if n % 2 == 1 {
        hi
    } else {
        let lo = v[..n / 2].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lo + hi) / 2.0
    }
}

fn check_nonnegative(x: &CsrMatrix) -> Result<()> {
    // Blocks are scanned in parallel; the first block with a bad value is then searched,
    // so the error names the first bad value.
    let first_bad_block = x
        .data()
        .par_chunks(1 << 16)
        .find_first(|block| any_invalid(block));
    let first_bad = first_bad_block.and_then(|b| b.iter().find(|v| !v.is_finite() || **v < 0.0));
    if let Some(v) = first_bad {
        return Err(Error::invalid(
            "rank encoding",
            "X",
            format!("value {v}: rank-value encoding needs finite, non-negative counts"),
        ));
    }
    Ok(())
}

/// Rank-value tokenizer with its gene medians fitted on the reference.
#[derive(Debug, Clone, PartialEq)]
pub struct FittedRank {
    params: RankTokenizerParams,
    medians: Vec<f64>,
}

impl FittedRank {
    /// A fitted tokenizer from known medians (e.g. Geneformer's dictionary), one per gene
    /// column; NaN or non-positive means "no median: do not tokenize this gene".
    pub fn from_medians(params: RankTokenizerParams, medians: Vec<f64>) -> Result<Self> {
        params.check()?;
        Ok(Self { params, medians })
    }

    /// The settings it was fitted with.
    pub fn params(&self) -> &RankTokenizerParams {
        &self.params
    }

    /// Non-zero median of each gene's CP10k values in the reference; NaN for genes never
    /// expressed there.
    pub fn gene_medians(&self) -> &[f64] {
        &self.medians
    }

    /// Genes without a usable median (they are never tokenized).
    pub fn n_genes_without_median(&self) -> usize {
        self.medians
            .iter()
            .filter(|m| !(m.is_finite() && **m > 0.0))
            .count()
    }

    /// A cell's rankable genes in `scratch`, in rank order: `scratch.keys[p]` is
    /// `!bits(count / median)` and `scratch.cols[p]` the column of the `p`-th rankable
    /// entry of the row, and the low 32 bits of `scratch.order[r]` are the `p` of rank
    /// `r`. Ascending `(key, column)` is rank order: positive finite `f64` bit patterns
    /// order like the values, so the complement orders descending and the column breaks
    /// ties. Genes with a zero count, no median, or (when `column_ids` is given) no token
    /// are left out.
    fn rank_keys(
        &self,
        idx: &[u32],
        values: &[f32],
        column_ids: Option<&[u32]>,
        scratch: &mut RankScratch,
    ) {
        let cap = idx.len().min(values.len());
        scratch.reserve(cap);
        let RankScratch {
            keys,
            cols,
            order,
            tmp,
            len,
        } = scratch;
        let (keys_out, cols_out, order_out) =
            (&mut keys[..cap], &mut cols[..cap], &mut order[..cap]);
        let mut n = 0;
        for (&c, &v) in idx.iter().zip(values) {
            let m = self.medians.get(c as usize).copied().unwrap_or(f64::NAN);
            let known = column_ids.is_none_or(|ids| ids[c as usize] != UNKNOWN_GENE);
            if v > 0.0 && m.is_finite() && m > 0.0 && known {
                let key = !(v as f64 / m).to_bits();
                keys_out[n] = key;
                cols_out[n] = c;
                // A row has at most n_cols <= 2^32 entries, so the position fits 32 bits.
                order_out[n] = (key >> 32) << 32 | n as u64;
                n += 1;
            }
        }
        *len = n;
        sort_rank_order(&keys[..n], &cols[..n], &mut order[..n], tmp);
    }

    /// One cell's non-zero genes with a median, as `(column, normalized value)` in rank
    /// order (descending value, ties by column), before truncation. The normalized value
    /// is `count / n_counts × target_sum / median`. `idx`/`values` are the cell's CSR row.
    pub fn rank_row(&self, idx: &[u32], values: &[f32]) -> Vec<(u32, f64)> {
        let total: f64 = values.iter().map(|&v| v as f64).sum();
        if total <= 0.0 {
            return Vec::new();
        }
        let mut s = RankScratch::default();
        self.rank_keys(idx, values, None, &mut s);
        // Multiplying by the common positive factor keeps the order (rounding is monotone).
        let scale = self.params.target_sum / total;
        s.order[..s.len]
            .iter()
            .map(|&o| {
                let p = o as u32 as usize;
                (s.cols[p], f64::from_bits(!s.keys[p]) * scale)
            })
            .collect()
    }

    /// Tokens of one cell: gene ids in rank order, truncated to
    /// [`RankTokenizerParams::n_gene_tokens`]; values are 0 (rank models read no value).
    /// Columns mapped to [`UNKNOWN_GENE`] are skipped.
    pub fn tokenize_row(&self, idx: &[u32], values: &[f32], column_ids: &[u32]) -> TokenizedCell {
        self.tokenize_row_with(idx, values, column_ids, &mut RankScratch::default())
    }

    fn tokenize_row_with(
        &self,
        idx: &[u32],
        values: &[f32],
        column_ids: &[u32],
        scratch: &mut RankScratch,
    ) -> TokenizedCell {
        self.rank_keys(idx, values, Some(column_ids), scratch);
        let limit = self.params.n_gene_tokens().min(scratch.len);
        let gene_ids: Vec<u32> = scratch.order[..limit]
            .iter()
            .map(|&o| column_ids[scratch.cols[o as u32 as usize] as usize])
            .collect();
        TokenizedCell {
            values: vec![0.0; gene_ids.len()],
            gene_ids,
        }
    }
}

/// Reusable buffers of one cell's rank encoding ([`FittedRank::rank_keys`]): the first
/// `len` entries of `keys`, `cols` and `order` are the cell's; the vectors only grow, so
/// a buffer is not zero-filled again for every cell.
#[derive(Debug, Default)]
struct RankScratch {
    keys: Vec<u64>,
    cols: Vec<u32>,
    order: Vec<u64>,
    tmp: Vec<u64>,
    len: usize,
}

impl RankScratch {
    /// Room for `n` entries in every buffer.
    fn reserve(&mut self, n: usize) {
        if self.keys.len() < n {
            self.keys.resize(n, 0);
            self.cols.resize(n, 0);
            self.order.resize(n, 0);
            self.tmp.resize(n, 0);
        }
    }
}

/// Sort `order` (entries `(keys[p] >> 32) << 32 | p`, `p` ascending) into ascending
/// `(keys[p], cols[p])`.
///
/// The packed entries are sorted by their high half (the key's sign, exponent and top 20
/// mantissa bits: a monotone function of the key) with one integer sort of 8-byte entries
/// instead of a comparison sort of 16-byte `(key, column)` tuples; runs with equal high
/// halves (rare: tied values, or values within about 1e-6 of each other) are then ordered
/// by the full key and the column. The result is the `(key, column)` order, whatever the
/// order of the columns in the row.
fn sort_rank_order(keys: &[u64], cols: &[u32], order: &mut [u64], tmp: &mut [u64]) {
    sort_positions_by_high_half(order, tmp);
    let n = order.len();
    let mut s = 0;
    while s < n {
        let high = order[s] >> 32;
        let mut e = s + 1;
        while e < n && order[e] >> 32 == high {
            e += 1;
        }
        if e - s > 1 {
            order[s..e].sort_unstable_by_key(|&o| {
                let p = o as u32 as usize;
                (keys[p], cols[p])
            });
        }
        s = e;
    }
}

/// Rank-encode every cell of `x` (raw counts), in parallel, reading CSR rows in place.
/// `column_ids[c]` is the token id of column `c`; the matrix must have the genes the
/// medians were fitted on, in the same order.
pub fn tokenize_rank(
    x: &CsrMatrix,
    column_ids: &[u32],
    fitted: &FittedRank,
) -> Result<Vec<TokenizedCell>> {
    check_column_ids(x, column_ids)?;
    if fitted.medians.len() != x.n_cols() {
        return Err(Error::Incompatible(format!(
            "rank tokenizer fitted on {} genes, data has {}",
            fitted.medians.len(),
            x.n_cols()
        )));
    }
    check_nonnegative(x)?;
    Ok((0..x.n_rows())
        .into_par_iter()
        .map_init(RankScratch::default, |scratch, i| {
            let (idx, val) = x.row(i);
            fitted.tokenize_row_with(idx, val, column_ids, scratch)
        })
        .collect())
}

/// The matrix rank encoding is computed on: counts as they are; log-normalized values
/// (log1p of CP10k-like values) mapped back with `expm1`, which is proportional to the
/// counts within each cell and so gives Geneformer's order. Used by every caller that
/// fits or measures rank encoding, so they all see the same input.
pub fn rank_encoding_input(x: &CsrMatrix, kind: crate::data::ValueKind) -> CsrMatrix {
    match kind {
        crate::data::ValueKind::Counts => x.clone(),
        crate::data::ValueKind::LogNormalized | crate::data::ValueKind::Scaled => {
            x.map_values(f32::exp_m1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// Medians are of non-zero CP10k values of the reference, NaN for unexpressed genes.
    ///
    /// Cell totals 10 and 2: gene 0 CP10k [2000, 10000] → median 6000; gene 1 only in
    /// cell 0 → 8000; gene 2 never expressed → NaN.
    #[test]
    fn fits_nonzero_medians() {
        let x = CsrMatrix::from_dense(&array![[2.0f32, 8.0, 0.0], [2.0, 0.0, 0.0]]);
        let f = RankTokenizerParams::v1().fit(&x).unwrap();
        let m = f.gene_medians();
        approx::assert_abs_diff_eq!(m[0], 6000.0, epsilon = 1e-9);
        approx::assert_abs_diff_eq!(m[1], 8000.0, epsilon = 1e-9);
        assert!(m[2].is_nan());
        assert_eq!(f.n_genes_without_median(), 1);
    }

    /// A hand-computed cell: order by count / median descending, ties by gene index,
    /// zeros and median-less genes dropped.
    ///
    /// Medians [1, 2, 1, 4, NaN]; counts [4, 8, 0, 4, 9] → keys [4, 4, -, 1, -] → genes
    /// 0, 1 (tie broken by index), 3. Normalized values: key × 10,000 / 25.
    #[test]
    fn ranks_hand_computed_cell() {
        let f = FittedRank::from_medians(
            RankTokenizerParams::v1(),
            vec![1.0, 2.0, 1.0, 4.0, f64::NAN],
        )
        .unwrap();
        let ranked = f.rank_row(&[0, 1, 3, 4], &[4.0, 8.0, 4.0, 9.0]);
        let cols: Vec<u32> = ranked.iter().map(|r| r.0).collect();
        assert_eq!(cols, vec![0, 1, 3]);
        approx::assert_abs_diff_eq!(ranked[0].1, 4.0 * 400.0, epsilon = 1e-9);
        approx::assert_abs_diff_eq!(ranked[2].1, 400.0, epsilon = 1e-9);
    }

    /// Truncation keeps the top genes: 2048 in V1, 4094 (room for <cls>, <eos>) in V2.
    #[test]
    fn truncates_to_model_size() {
        assert_eq!(RankTokenizerParams::v1().n_gene_tokens(), 2048);
        assert_eq!(RankTokenizerParams::v2().n_gene_tokens(), 4094);
        let p = RankTokenizerParams::v1().with_max_len(2);
        let f = FittedRank::from_medians(p, vec![1.0; 4]).unwrap();
        let t = f.tokenize_row(&[0, 1, 2, 3], &[1.0, 5.0, 3.0, 2.0], &[10, 11, 12, 13]);
        assert_eq!(t.gene_ids, vec![11, 12]);
        assert_eq!(t.values, vec![0.0, 0.0]);
    }

    /// An all-zero cell gives an empty sequence; negative counts are an error.
    #[test]
    fn all_zero_cell_and_negative_input() {
        let x = CsrMatrix::from_dense(&array![[0.0f32, 0.0], [1.0, 2.0]]);
        let f = RankTokenizerParams::v1().fit(&x).unwrap();
        let cells = tokenize_rank(&x, &[4, 5], &f).unwrap();
        assert!(cells[0].gene_ids.is_empty());
        assert_eq!(cells[1].gene_ids, vec![4, 5]);
        let bad = CsrMatrix::from_dense(&array![[-1.0f32, 2.0]]);
        assert!(RankTokenizerParams::v1().fit(&bad).is_err());
        assert!(tokenize_rank(&bad, &[4, 5], &f).is_err());
    }

    /// The order of the original implementation: a comparison sort of `(key, column)`.
    fn reference_columns(f: &FittedRank, idx: &[u32], values: &[f32], ids: &[u32]) -> Vec<u32> {
        let mut keys: Vec<(u64, u32)> = idx
            .iter()
            .zip(values)
            .filter_map(|(&c, &v)| {
                let m = f.medians[c as usize];
                let ok = v > 0.0 && m.is_finite() && m > 0.0 && ids[c as usize] != UNKNOWN_GENE;
                ok.then(|| (!(v as f64 / m).to_bits(), c))
            })
            .collect();
        keys.sort_unstable();
        keys.into_iter().map(|(_, c)| c).collect()
    }

    /// The packed radix order (and the comparison sort below 64 genes) is the
    /// `(key, column)` order, truncated or not: exact ties (equal counts and medians),
    /// near-ties (values equal in the key's high 32 bits, different in the low ones),
    /// zeros, median-less and unknown genes, rows with columns out of order.
    #[test]
    fn packed_sort_matches_tuple_sort() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let n_genes = 4000;
        let medians: Vec<f64> = (0..n_genes)
            .map(|g| match g % 7 {
                0 => 2.0,                                       // exact ties between genes
                1 => 2.0 * (1.0 + (g as f64) * 2f64.powi(-45)), // near-ties with them
                2 if g % 14 == 2 => f64::NAN,                   // no median
                _ => rng.gen_range(0.1..50.0),
            })
            .collect();
        let ids: Vec<u32> = (0..n_genes as u32)
            .map(|g| if g % 31 == 5 { UNKNOWN_GENE } else { g + 4 })
            .collect();
        for max_len in [2048, 100] {
            let p = RankTokenizerParams::v1().with_max_len(max_len);
            let f = FittedRank::from_medians(p, medians.clone()).unwrap();
            for n in [0, 1, 5, 63, 64, 65, 400, 3000] {
                let mut idx: Vec<u32> = rand::seq::index::sample(&mut rng, n_genes, n)
                    .into_iter()
                    .map(|g| g as u32)
                    .collect();
                let values: Vec<f32> = (0..n)
                    .map(|_| [0.0, 1.0, 1.0, 2.0, 3.0, 17.0][rng.gen_range(0..6)])
                    .collect();
                let expect = reference_columns(&f, &idx, &values, &ids);
                let ranked: Vec<u32> = f.rank_row(&idx, &values).iter().map(|r| r.0).collect();
                let all = reference_columns(&f, &idx, &values, &vec![0; n_genes]);
                assert_eq!(ranked, all, "rank_row, n = {n}");
                let t = f.tokenize_row(&idx, &values, &ids);
                let want: Vec<u32> = expect
                    .iter()
                    .take(f.params().n_gene_tokens())
                    .map(|&c| ids[c as usize])
                    .collect();
                assert_eq!(t.gene_ids, want, "tokenize_row, n = {n}, max_len {max_len}");
                // The same row with sorted columns, as CSR stores it.
                idx.sort_unstable();
                let sorted = f.tokenize_row(&idx, &values, &ids);
                let want: Vec<u32> = reference_columns(&f, &idx, &values, &ids)
                    .iter()
                    .take(f.params().n_gene_tokens())
                    .map(|&c| ids[c as usize])
                    .collect();
                assert_eq!(sorted.gene_ids, want, "sorted row, n = {n}");
            }
        }
    }
}
