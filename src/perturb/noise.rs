//! Gaussian noise on a seeded subset of cells, applied to expression values before
//! tokenization.
//!
//! The study (bioRxiv 10.1101/2025.06.26.661767, abstract) adds Gaussian noise to 20% of
//! the Myeloid cells before tokenization but gives neither sigma nor how zeros and
//! negative values were handled. Every choice is a parameter here; the defaults and why:
//! - `fraction = 0.2`: the study's figure; exactly `round(fraction × n_cells)` cells are
//!   drawn without replacement with a seeded RNG and returned.
//! - `space = LogNormalized`, `sigma = 1.0`: noise in log1p(CP10k) units, the scale the
//!   scGPT-packaged data sets are stored in, so σ = 1 is an e-fold change of a value.
//!   Count data are mapped to that scale per cell (`y = log1p(x / s)`, `s = total / 10⁴`),
//!   perturbed, and mapped back (`x' = s · expm1(y')`), so the output keeps the input's kind.
//! - `zeros = Perturb`: the literal reading, `X[cells] += N(0, σ²)` on the dense matrix.
//!   With clipping, about half of a perturbed cell's zeros become small positive values,
//!   which changes the set of expressed genes a binned model sees. `Keep` perturbs stored
//!   non-zero values only (a pilot found per-cell quantile bins absorb that noise).
//! - `clip_negative = true`: scGPT's preprocessor raises on negative input and negative
//!   counts have no meaning, so values below 0 become 0 (and leave the sparse matrix).
//!
//! Cells not drawn are copied bit for bit. `sigma = 0` returns the input unchanged.

use crate::data::{CsrMatrix, Dataset, ValueKind};
use crate::error::{Error, Result};
use crate::tokenize::cell_rng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// The scale the noise is added on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoiseSpace {
    /// Directly on the stored values (count data only).
    Counts,
    /// On log1p(CP10k): stored values of log-normalized data, mapped for count data.
    #[default]
    LogNormalized,
}

/// Whether zero entries receive noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZeroHandling {
    /// Only stored non-zero values are perturbed.
    Keep,
    /// Every gene of a perturbed cell is perturbed (dense noise).
    #[default]
    Perturb,
}

/// Which side of a reference/query pair receives noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoiseTarget {
    /// Reference (training) cells only.
    Reference,
    /// Query cells only.
    Query,
    /// Both.
    #[default]
    Both,
}

/// Gaussian noise `N(0, sigma²)` on a fraction of cells. See the module docs for defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GaussianNoise {
    /// Fraction of cells perturbed, in [0, 1]; defaults to 0.2.
    pub fraction: f64,
    /// Standard deviation, ≥ 0; defaults to 1.0 (in `space` units).
    pub sigma: f64,
    /// Scale of the noise; defaults to log1p(CP10k).
    pub space: NoiseSpace,
    /// Whether zeros are perturbed; defaults to `Perturb`.
    pub zeros: ZeroHandling,
    /// Set negative results to 0; defaults to true.
    pub clip_negative: bool,
    /// Which side of a split is perturbed; defaults to both.
    pub target: NoiseTarget,
}

impl Default for GaussianNoise {
    fn default() -> Self {
        Self {
            fraction: 0.2,
            sigma: 1.0,
            space: NoiseSpace::LogNormalized,
            zeros: ZeroHandling::Perturb,
            clip_negative: true,
            target: NoiseTarget::Both,
        }
    }
}

/// A perturbed matrix and the cells that were perturbed (sorted).
#[derive(Debug, Clone, PartialEq)]
pub struct Perturbed {
    /// The matrix after noise.
    pub x: CsrMatrix,
    /// Rows that received noise, increasing.
    pub perturbed_cells: Vec<usize>,
}

/// Seed offset of the query side, so reference and query draw different cells and noise.
const QUERY_SEED_OFFSET: u64 = 0x9E37_79B9_7F4A_7C15;
/// Per-cell noise RNGs use `cell_rng(seed, i)`; the cell draw uses this stream.
const CHOOSER_STREAM: u64 = u64::MAX;

impl GaussianNoise {
    /// Noise with `fraction` and `sigma`, other settings at their defaults.
    pub fn new(fraction: f64, sigma: f64) -> Self {
        Self {
            fraction,
            sigma,
            ..Self::default()
        }
    }

    /// Check the parameters.
    pub fn check(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.fraction) {
            return Err(Error::param(
                "noise fraction",
                format!("must be in [0, 1], got {}", self.fraction),
            ));
        }
        if !(self.sigma.is_finite() && self.sigma >= 0.0) {
            return Err(Error::param(
                "noise sigma",
                format!("must be finite and >= 0, got {}", self.sigma),
            ));
        }
        Ok(())
    }

    /// Number of cells perturbed out of `n_cells`: `round(fraction × n_cells)`.
    pub fn n_perturbed(&self, n_cells: usize) -> usize {
        ((self.fraction * n_cells as f64).round() as usize).min(n_cells)
    }

    /// The cells drawn for `n_cells` with `seed` (sorted), independent of sigma.
    pub fn choose_cells(&self, n_cells: usize, seed: u64) -> Vec<usize> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(CHOOSER_STREAM);
        let mut cells = sample(&mut rng, n_cells, self.n_perturbed(n_cells)).into_vec();
        cells.sort_unstable();
        cells
    }

    /// Perturb `x`, whose values are of `kind`. Errors on invalid parameters and on
    /// `space = Counts` with log-normalized data (there are no counts to perturb).
    pub fn apply(&self, x: &CsrMatrix, kind: ValueKind, seed: u64) -> Result<Perturbed> {
        self.check()?;
        if self.space == NoiseSpace::Counts && kind != ValueKind::Counts {
            return Err(Error::param(
                "noise space",
                "'counts' needs count data, but the values are log-normalized; use log_normalized",
            ));
        }
        let perturbed_cells = self.choose_cells(x.n_rows(), seed);
        if self.sigma == 0.0 || perturbed_cells.is_empty() {
            return Ok(Perturbed {
                x: x.clone(),
                perturbed_cells,
            });
        }
        let new_rows: Vec<(Vec<u32>, Vec<f32>)> = perturbed_cells
            .par_iter()
            .map(|&r| self.perturb_row(x, r, kind, &mut cell_rng(seed, r)))
            .collect();
        let mut indptr = Vec::with_capacity(x.n_rows() + 1);
        indptr.push(0);
        let mut indices = Vec::with_capacity(x.nnz());
        let mut data = Vec::with_capacity(x.nnz());
        let mut next = perturbed_cells.iter().zip(&new_rows).peekable();
        for r in 0..x.n_rows() {
            match next.peek() {
                Some((&p, (idx, val))) if p == r => {
                    indices.extend_from_slice(idx);
                    data.extend_from_slice(val);
                    next.next();
                }
                _ => {
                    let (idx, val) = x.row(r);
                    indices.extend_from_slice(idx);
                    data.extend_from_slice(val);
                }
            }
            indptr.push(indices.len());
        }
        let x = CsrMatrix::new(
            x.n_rows(),
            x.n_cols(),
            indptr,
            indices,
            data,
            "gaussian noise",
        )?;
        Ok(Perturbed { x, perturbed_cells })
    }

    /// Perturb a data set; returns the new data set and the perturbed cells.
    pub fn apply_dataset(&self, ds: &Dataset, seed: u64) -> Result<(Dataset, Vec<usize>)> {
        let p = self.apply(&ds.x, ds.value_kind, seed)?;
        let mut out = ds.clone();
        out.x = p.x;
        Ok((out, p.perturbed_cells))
    }

    /// Perturb the side(s) of a reference/query pair chosen by `target`. The query uses a
    /// seed derived from `seed`, so the two sides draw independent cells and noise.
    /// Returns the pair and the perturbed cells of each side (empty when not perturbed).
    pub fn apply_split(
        &self,
        reference: &Dataset,
        query: &Dataset,
        seed: u64,
    ) -> Result<(Dataset, Dataset, Vec<usize>, Vec<usize>)> {
        let (r, rc) = match self.target {
            NoiseTarget::Reference | NoiseTarget::Both => self.apply_dataset(reference, seed)?,
            NoiseTarget::Query => (reference.clone(), Vec::new()),
        };
        let (q, qc) = match self.target {
            NoiseTarget::Query | NoiseTarget::Both => {
                self.apply_dataset(query, seed.wrapping_add(QUERY_SEED_OFFSET))?
            }
            NoiseTarget::Reference => (query.clone(), Vec::new()),
        };
        Ok((r, q, rc, qc))
    }

    /// New (indices, values) of row `r` after noise.
    fn perturb_row<R: Rng>(
        &self,
        x: &CsrMatrix,
        r: usize,
        kind: ValueKind,
        rng: &mut R,
    ) -> (Vec<u32>, Vec<f32>) {
        let (idx, val) = x.row(r);
        // Map a stored value to the noise scale and back.
        let size = match (self.space, kind) {
            (NoiseSpace::LogNormalized, ValueKind::Counts) => {
                Some(val.iter().map(|&v| v as f64).sum::<f64>() / 1e4)
            }
            _ => None,
        };
        let noisy = |v: f32, rng: &mut R| -> f32 {
            let eps = self.sigma * rng.sample::<f64, _>(StandardNormal);
            let out = match size {
                Some(s) => s * ((v as f64 / s).ln_1p() + eps).exp_m1(),
                None => v as f64 + eps,
            };
            let out = out as f32;
            if self.clip_negative && out < 0.0 {
                0.0
            } else {
                out
            }
        };
        let mut new_idx = Vec::new();
        let mut new_val = Vec::new();
        let mut push = |c: u32, v: f32| {
            if v != 0.0 {
                new_idx.push(c);
                new_val.push(v);
            }
        };
        match self.zeros {
            ZeroHandling::Keep => {
                for (&c, &v) in idx.iter().zip(val) {
                    let out = if v == 0.0 { 0.0 } else { noisy(v, rng) };
                    push(c, out);
                }
            }
            ZeroHandling::Perturb => {
                // An empty count cell has no size factor: its zeros stay zero.
                let mut k = 0;
                for c in 0..x.n_cols() as u32 {
                    let v = if k < idx.len() && idx[k] == c {
                        k += 1;
                        val[k - 1]
                    } else {
                        0.0
                    };
                    let out = if size == Some(0.0) {
                        0.0
                    } else {
                        noisy(v, rng)
                    };
                    push(c, out);
                }
            }
        }
        (new_idx, new_val)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn matrix() -> CsrMatrix {
        CsrMatrix::from_dense(&array![
            [1.0f32, 0.0, 3.0, 0.0],
            [0.0, 2.0, 0.0, 5.0],
            [4.0, 4.0, 0.0, 0.0],
            [0.0, 0.0, 7.0, 1.0],
            [2.0, 0.0, 0.0, 1.0]
        ])
    }

    /// Exactly round(fraction·n) cells change; the others are bit-identical; seeded.
    #[test]
    fn perturbs_exactly_the_chosen_cells() {
        let x = matrix();
        let noise = GaussianNoise::new(0.4, 0.5);
        let a = noise.apply(&x, ValueKind::Counts, 3).unwrap();
        assert_eq!(a.perturbed_cells.len(), 2);
        for r in 0..x.n_rows() {
            let same = a.x.row(r) == x.row(r);
            assert_eq!(same, !a.perturbed_cells.contains(&r), "row {r}");
        }
        assert_eq!(a, noise.apply(&x, ValueKind::Counts, 3).unwrap());
        assert!(a.x.data().iter().all(|&v| v >= 0.0));
    }

    /// sigma = 0 is the identity, and still reports which cells were drawn.
    #[test]
    fn zero_sigma_is_identity() {
        let x = matrix();
        let p = GaussianNoise::new(0.6, 0.0)
            .apply(&x, ValueKind::Counts, 1)
            .unwrap();
        assert_eq!(p.x, x);
        assert_eq!(p.perturbed_cells.len(), 3);
    }

    /// Keeping zeros leaves the sparsity pattern of a cell unchanged or smaller.
    #[test]
    fn keep_zeros_never_adds_genes() {
        let x = matrix();
        let noise = GaussianNoise {
            zeros: ZeroHandling::Keep,
            fraction: 1.0,
            ..Default::default()
        };
        let p = noise.apply(&x, ValueKind::Counts, 5).unwrap();
        for r in 0..x.n_rows() {
            assert!(p.x.row(r).0.iter().all(|c| x.row(r).0.contains(c)));
        }
    }

    /// Bad parameters and counts-space noise on log-normalized data are errors.
    #[test]
    fn rejects_bad_parameters() {
        let x = matrix();
        assert!(GaussianNoise::new(1.5, 1.0)
            .apply(&x, ValueKind::Counts, 0)
            .is_err());
        assert!(GaussianNoise::new(0.5, -1.0)
            .apply(&x, ValueKind::Counts, 0)
            .is_err());
        let counts_space = GaussianNoise {
            space: NoiseSpace::Counts,
            ..Default::default()
        };
        assert!(counts_space.apply(&x, ValueKind::LogNormalized, 0).is_err());
    }
}
