//! scGPT's per-cell value binning.
//!
//! Source: bowang-lab/scGPT `scgpt/preprocess.py` (`Preprocessor.__call__` step 6,
//! `binning`, `_digitize`). For one cell:
//! 1. take its non-zero values (scGPT rejects negative input: so does this module);
//! 2. bin edges are `np.quantile(non_zero, np.linspace(0, 1, n_bins - 1))` — `n_bins - 1`
//!    edges, numpy's default linear interpolation; the first edge is the cell's minimum
//!    non-zero value and the last its maximum;
//! 3. each non-zero value gets `np.digitize(x, edges)` (the number of edges `<= x`), a bin
//!    in `1..n_bins-1`; zeros stay bin 0.
//!
//! When a value equals one or more edges (ties: many equal counts, or fewer distinct
//! values than edges), the left-side digit (edges `<= x`) and the right-side digit
//! (edges `< x`) differ. scGPT's `_digitize(side="both")` then draws the bin uniformly from
//! `right+1 ..= left` with numpy's global unseeded generator
//! (`ceil(u·(right − left) + left)`, `u ~ U[0,1)`). [`TieMode::Random`] does the same draw
//! with an explicit RNG; [`TieMode::Left`] is scGPT's deterministic `side="one"` (the left
//! digit).
//!
//! Edges are computed in `f64` from the `f32` values as numpy does for a float32 row
//! (numpy's two-sided `_lerp`), so hand-computed numpy results are reproduced bit for bit
//! (see the tests). One deliberate difference: the quantile position is computed exactly
//! (see [`quantile_edges`]), where numpy's floating-point position can create spurious
//! near-ties that depend on the scale of the data.
//!
//! Invariance: the edges are quantiles of the cell's own values, so multiplying a cell by a
//! positive constant or applying any strictly increasing map `f` with `f(0) = 0` to its
//! values leaves the bins unchanged, up to floating-point rounding of interpolated edges.
//! In particular counts, CP10k and log1p(CP10k) give the same bins: the tokenizer
//! accepts whichever the user provides.

use super::radix::sort_positions_by_high_half;
use super::select::{SelectionMode, SequenceSelection};
use super::vocab::UNKNOWN_GENE;
use super::{cell_rng, TokenizedCell};
use crate::data::CsrMatrix;
use crate::error::{Error, Result};
use rand::Rng;
use rayon::prelude::*;

/// Largest supported number of bins.
pub const MAX_BINS: usize = 65_536;

/// How a value lying on bin edges is assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TieMode {
    /// scGPT's `_digitize(side="both")`: uniform between the right- and left-side digit,
    /// drawn from the given RNG.
    #[default]
    Random,
    /// scGPT's `_digitize(side="one")`: the left-side digit (`np.digitize(x, edges)`).
    Left,
}

/// scGPT-style binning of one cell's values into `n_bins` tokens (0 for zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinningTokenizer {
    /// Number of bins including the zero bin; scGPT's default is 51.
    pub n_bins: usize,
    /// Tie handling; defaults to [`TieMode::Random`] as in scGPT.
    pub tie_mode: TieMode,
}

impl Default for BinningTokenizer {
    /// `n_bins = 51`, random ties (scGPT's annotation settings).
    fn default() -> Self {
        Self {
            n_bins: 51,
            tie_mode: TieMode::Random,
        }
    }
}

impl BinningTokenizer {
    /// A tokenizer with `n_bins` bins (at least 2: the zero bin and one non-zero bin).
    pub fn new(n_bins: usize, tie_mode: TieMode) -> Result<Self> {
        let t = Self { n_bins, tie_mode };
        t.check()?;
        Ok(t)
    }

    /// `n_bins` must be in 2..=65536 (the bound makes the rank-based digits exact, see
    /// [`BinningTokenizer::bin_positive`]).
    pub fn check(&self) -> Result<()> {
        if !(2..=MAX_BINS).contains(&self.n_bins) {
            return Err(Error::param(
                "n_bins",
                format!("must be in 2..={MAX_BINS}, got {}", self.n_bins),
            ));
        }
        Ok(())
    }

    /// The `n_bins - 1` bin edges of a cell, from its non-zero values sorted ascending.
    /// Empty when there are no values.
    pub fn edges(&self, sorted_nonzero: &[f64]) -> Vec<f64> {
        quantile_edges(sorted_nonzero, self.n_bins.saturating_sub(1))
    }

    /// Bin one cell's values (any subset of its genes, zeros allowed). Errors on a
    /// negative or non-finite value, as scGPT's preprocessor does.
    pub fn bin_values<R: Rng + ?Sized>(&self, values: &[f32], rng: &mut R) -> Result<Vec<u32>> {
        self.check()?;
        check_values(values)?;
        let positive: Vec<f32> = values.iter().copied().filter(|&v| v > 0.0).collect();
        let mut bins = Vec::new();
        self.bin_positive(&positive, &mut Vec::new(), &mut bins, rng);
        let mut next = bins.into_iter();
        Ok(values
            .iter()
            .map(|&v| if v > 0.0 { next.next().unwrap_or(0) } else { 0 })
            .collect())
    }

    /// Bins of a cell's positive values (all `> 0`, finite), written to `out`; `keys` is
    /// a reusable buffer (it ends up with `2 × values.len()` entries).
    ///
    /// Equivalent to `np.digitize` against [`quantile_edges`] but computed from ranks, which
    /// needs one integer sort and no search. With the values sorted, a tie group of value
    /// `x` occupying sorted positions `s..=e`, and edge `i` at position
    /// `p_i = i·(n − 1)/(m − 1)` (`m = n_bins − 1` edges): an edge interpolated between two
    /// different values lies strictly between them, so `edge_i <= x ⇔ p_i <= e` and
    /// `edge_i < x ⇔ p_i < s`. Hence the left digit is `⌊e(m − 1)/(n − 1)⌋ + 1` and the right
    /// digit `⌈s(m − 1)/(n − 1)⌉`. The "strictly between" holds in floating point as well:
    /// distinct `f32` values differ by at least 2⁻²⁴ relative, and with `m ≤ 65535` the
    /// interpolation weight is at least 1/65534, far above `f64` rounding (checked against
    /// the edge-based digits by a property test). Random tie draws go through the group's
    /// members in sorted order, lower column first.
    pub fn bin_positive<R: Rng + ?Sized>(
        &self,
        values: &[f32],
        keys: &mut Vec<u64>,
        out: &mut Vec<u32>,
        rng: &mut R,
    ) {
        let n = values.len();
        out.clear();
        out.resize(n, 0);
        if n == 0 {
            return;
        }
        let m = (self.n_bins - 1) as u64;
        if n == 1 {
            // Every edge equals the one value: left digit m, right digit 0.
            out[0] = self.pick(m as usize, 0, rng) as u32;
            return;
        }
        // Positive f32 bit patterns sort like the values; the low half keeps the position.
        // The second half of `keys` is the sort's scratch space.
        keys.clear();
        keys.extend(
            values
                .iter()
                .enumerate()
                .map(|(i, v)| ((v.to_bits() as u64) << 32) | i as u64),
        );
        keys.resize(2 * n, 0);
        let (keys, tmp) = keys.split_at_mut(n);
        sort_positions_by_high_half(keys, tmp);
        let span = (n - 1) as u64;
        let mut s = 0;
        while s < n {
            let bits = keys[s] >> 32;
            let mut e = s;
            while e + 1 < n && keys[e + 1] >> 32 == bits {
                e += 1;
            }
            let left = (e as u64 * (m - 1)) / span + 1;
            let right = (s as u64 * (m - 1)).div_ceil(span);
            for &k in &keys[s..=e] {
                out[(k & 0xFFFF_FFFF) as usize] =
                    self.pick(left as usize, right as usize, rng) as u32;
            }
            s = e + 1;
        }
    }

    /// The bin given the left (`#edges <= x`) and right (`#edges < x`) digits.
    fn pick<R: Rng + ?Sized>(&self, left: usize, right: usize, rng: &mut R) -> usize {
        if self.tie_mode == TieMode::Left || left == right {
            return left;
        }
        // scGPT: ceil(u·(right − left) + left), uniform on right+1..=left. Written with
        // floor so that rounding can never produce `right` (which may be 0, the zero bin).
        let span = left - right;
        let u: f64 = rng.gen();
        left - ((u * span as f64) as usize).min(span - 1)
    }
}

/// `np.digitize(x, edges)` and `np.digitize(x, edges, right=True)`: the number of edges
/// `<= x` and `< x`. The reference the rank-based [`BinningTokenizer::bin_positive`] is
/// checked against.
pub fn digitize_left_right(x: f64, edges: &[f64]) -> (usize, usize) {
    (
        edges.partition_point(|&e| e <= x),
        edges.partition_point(|&e| e < x),
    )
}

/// `np.quantile(sorted, np.linspace(0, 1, n_edges))` with numpy's default (linear)
/// method. The position of quantile `i` is `i·(n − 1)/(n_edges − 1)`, computed exactly in
/// integers; numpy computes it in floating point (`n·q + (1 − q) − 1`), which can land an
/// ulp off an integer (4.999999999999999 for n = 8, q = 35/49) and put the edge a hair
/// below a data value instead of on it. Whether the rounded edge still equals the value
/// then depends on the scale of the data, and with it the tie range of that value. The
/// exact position keeps binning invariant to scaling; left digits are unaffected. Interpolation uses numpy's two-sided `_lerp`, so
/// interpolated edges agree with numpy to the last bit.
pub fn quantile_edges(sorted: &[f64], n_edges: usize) -> Vec<f64> {
    let n = sorted.len();
    if n == 0 || n_edges == 0 {
        return Vec::new();
    }
    if n_edges == 1 {
        // np.linspace(0, 1, 1) = [0]: the minimum.
        return vec![sorted[0]];
    }
    let denom = (n_edges - 1) as u128;
    (0..n_edges)
        .map(|i| {
            let pos = i as u128 * (n - 1) as u128;
            let lo = (pos / denom) as usize;
            let rem = pos % denom;
            if rem == 0 {
                return sorted[lo];
            }
            let gamma = rem as f64 / denom as f64;
            let (a, b) = (sorted[lo], sorted[lo + 1]);
            // numpy _lerp: a + (b−a)·t, or b − (b−a)·(1−t) when t >= 0.5.
            let diff = b - a;
            if gamma >= 0.5 {
                b - diff * (1.0 - gamma)
            } else {
                a + diff * gamma
            }
        })
        .collect()
}

/// Whether any value is negative or not finite. It scans without early exit, so the loop
/// vectorizes: input is almost always valid, and then every value is read anyway.
pub(crate) fn any_invalid(values: &[f32]) -> bool {
    values
        .iter()
        .fold(false, |any, v| any | !v.is_finite() | (*v < 0.0))
}

fn check_values(values: &[f32]) -> Result<()> {
    if !any_invalid(values) {
        return Ok(());
    }
    if let Some(v) = values.iter().find(|v| !v.is_finite() || **v < 0.0) {
        return Err(Error::invalid(
            "binning",
            "X",
            format!("value {v}: binning needs finite, non-negative expression (as scGPT's preprocessor); clip or fix the input"),
        ));
    }
    Ok(())
}

/// Bin every cell of `x` and select its genes (scGPT's annotation input).
///
/// `column_ids[c]` is the token id of column `c` ([`UNKNOWN_GENE`] columns are ignored,
/// both for the quantiles and the sequence, as scGPT filters genes to its vocabulary
/// first). Each cell is binned over its non-zero known genes, then `selection` picks the
/// genes. Cell `i` uses the RNG `cell_rng(seed, i)`, so results do not depend on the
/// number of threads. Cells run in parallel and read the CSR rows in place.
pub fn tokenize_binned(
    x: &CsrMatrix,
    column_ids: &[u32],
    tokenizer: &BinningTokenizer,
    selection: &SequenceSelection,
    seed: u64,
) -> Result<Vec<TokenizedCell>> {
    tokenizer.check()?;
    check_column_ids(x, column_ids)?;
    (0..x.n_rows())
        .into_par_iter()
        .map_init(BinScratch::default, |scratch, i| {
            let mut rng = cell_rng(seed, i);
            tokenize_binned_row(x, i, column_ids, tokenizer, selection, scratch, &mut rng)
        })
        .collect()
}

/// Reusable buffers of [`tokenize_binned_row`].
#[derive(Debug, Default)]
pub struct BinScratch {
    keys: Vec<u64>,
    bins: Vec<u32>,
    values: Vec<f32>,
    genes: Vec<u32>,
}

/// One cell of [`tokenize_binned`].
pub fn tokenize_binned_row<R: Rng + ?Sized>(
    x: &CsrMatrix,
    row: usize,
    column_ids: &[u32],
    tokenizer: &BinningTokenizer,
    selection: &SequenceSelection,
    scratch: &mut BinScratch,
    rng: &mut R,
) -> Result<TokenizedCell> {
    let (idx, val) = x.row(row);
    if any_invalid(val) {
        return Err(Error::invalid(
            "binning",
            "X",
            format!("cell {row} has a negative or non-finite value; binning needs non-negative expression"),
        ));
    }
    let BinScratch {
        keys,
        bins,
        values,
        genes,
    } = scratch;
    values.clear();
    genes.clear();
    for (&c, &v) in idx.iter().zip(val) {
        let id = column_ids[c as usize];
        if v > 0.0 && id != UNKNOWN_GENE {
            genes.push(id);
            values.push(v);
        }
    }
    tokenizer.bin_positive(values, keys, bins, rng);
    let keeps_all = selection.max_genes.is_none_or(|k| k >= values.len());
    if keeps_all && selection.mode == SelectionMode::RandomSubsample {
        return Ok(TokenizedCell {
            gene_ids: genes.clone(),
            values: bins.iter().map(|&b| b as f32).collect(),
        });
    }
    let keep = selection.select(values, rng);
    Ok(TokenizedCell {
        gene_ids: keep.iter().map(|&k| genes[k]).collect(),
        values: keep.iter().map(|&k| bins[k] as f32).collect(),
    })
}

pub(crate) fn check_column_ids(x: &CsrMatrix, column_ids: &[u32]) -> Result<()> {
    if column_ids.len() != x.n_cols() {
        return Err(Error::param(
            "column_ids",
            format!(
                "has {} entries but the matrix has {} genes",
                column_ids.len(),
                x.n_cols()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(0)
    }

    /// A hand-computed cell without ties matches scGPT's binning run in numpy.
    ///
    /// ```python
    /// import numpy as np  # numpy 2.x, scGPT preprocess.py `_digitize`, side="one"
    /// row = np.array([0, 3, 1, 0, 7, 2, 12, 5], dtype=np.float32)
    /// nz = row[row.nonzero()]
    /// bins = np.quantile(nz, np.linspace(0, 1, 5))   # n_bins = 6
    /// out = np.zeros_like(row, dtype=np.int64); out[row.nonzero()] = np.digitize(nz, bins)
    /// # bins = [ 1.    2.25  4.    6.5  12.  ]  out = [0 2 1 0 4 1 5 3]
    /// ```
    #[test]
    fn matches_scgpt_without_ties() {
        let t = BinningTokenizer::new(6, TieMode::Left).unwrap();
        let row = [0.0f32, 3.0, 1.0, 0.0, 7.0, 2.0, 12.0, 5.0];
        let mut nz: Vec<f64> = row
            .iter()
            .filter(|&&v| v > 0.0)
            .map(|&v| v as f64)
            .collect();
        nz.sort_by(f64::total_cmp);
        assert_eq!(t.edges(&nz), vec![1.0, 2.25, 4.0, 6.5, 12.0]);
        assert_eq!(
            t.bin_values(&row, &mut rng()).unwrap(),
            vec![0, 2, 1, 0, 4, 1, 5, 3]
        );
    }

    /// Tied values land anywhere in scGPT's allowed range right+1..=left, both ends occur,
    /// and the left mode gives the left digit.
    ///
    /// ```python
    /// row = np.array([1, 1, 1, 1, 2, 5], dtype=np.float32)    # n_bins = 6
    /// bins = np.quantile(row, np.linspace(0, 1, 5))           # [1. 1. 1. 1.75 5.]
    /// np.digitize(row, bins)              # left  = [3 3 3 3 4 5]
    /// np.digitize(row, bins, right=True)  # right = [0 0 0 0 4 4]
    /// # scGPT side="both": the 1s get a bin uniform in 1..=3; 2 -> 4; 5 -> 5
    /// ```
    #[test]
    fn ties_follow_scgpt_range() {
        let row = [1.0f32, 1.0, 1.0, 1.0, 2.0, 5.0];
        let left = BinningTokenizer::new(6, TieMode::Left).unwrap();
        assert_eq!(
            left.bin_values(&row, &mut rng()).unwrap(),
            vec![3, 3, 3, 3, 4, 5]
        );
        let random = BinningTokenizer::new(6, TieMode::Random).unwrap();
        let mut seen = [false; 6];
        let mut r = rng();
        for _ in 0..200 {
            let b = random.bin_values(&row, &mut r).unwrap();
            for &x in &b[..4] {
                assert!((1..=3).contains(&x), "{b:?}");
                seen[x as usize] = true;
            }
            assert_eq!(&b[4..], &[4, 5]);
        }
        assert!(seen[1] && seen[2] && seen[3]);
    }

    /// An all-zero cell gives all-zero bins (and no sequence), as scGPT does.
    #[test]
    fn all_zero_cell() {
        let t = BinningTokenizer::default();
        assert_eq!(t.bin_values(&[0.0, 0.0], &mut rng()).unwrap(), vec![0, 0]);
        let x = CsrMatrix::from_dense(&ndarray::array![[0.0f32, 0.0]]);
        let cells = tokenize_binned(&x, &[4, 5], &t, &SequenceSelection::all(), 0).unwrap();
        assert!(cells[0].gene_ids.is_empty() && cells[0].values.is_empty());
    }

    /// Negative input is rejected, as in scGPT's preprocessor.
    #[test]
    fn negative_is_an_error() {
        let t = BinningTokenizer::default();
        assert!(t.bin_values(&[1.0, -0.5], &mut rng()).is_err());
    }

    /// Data-set tokenization skips unknown genes, keeps non-zero genes and is seeded.
    #[test]
    fn dataset_tokenization() {
        let d = ndarray::array![[0.0f32, 3.0, 1.0, 2.0], [5.0, 0.0, 5.0, 5.0]];
        let x = CsrMatrix::from_dense(&d);
        let ids = [4, 5, UNKNOWN_GENE, 7];
        let t = BinningTokenizer::new(4, TieMode::Left).unwrap();
        let cells = tokenize_binned(&x, &ids, &t, &SequenceSelection::all(), 1).unwrap();
        // Cell 0 known non-zeros 3, 2: edges [2, 2.5, 3] -> bins 3, 1.
        assert_eq!(cells[0].gene_ids, vec![5, 7]);
        assert_eq!(cells[0].values, vec![3.0, 1.0]);
        // Cell 1: all equal 5 -> edges [5,5,5], left digit 3.
        assert_eq!(cells[1].values, vec![3.0, 3.0]);
        let sel = SequenceSelection::limit(1, SelectionMode::RandomSubsample);
        let a = tokenize_binned(&x, &ids, &BinningTokenizer::default(), &sel, 9).unwrap();
        let b = tokenize_binned(&x, &ids, &BinningTokenizer::default(), &sel, 9).unwrap();
        assert_eq!(a, b);
        assert!(a.iter().all(|c| c.gene_ids.len() == 1));
        assert!(tokenize_binned(&x, &ids[..3], &t, &sel, 0).is_err());
    }
}
