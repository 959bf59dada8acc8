//! The sampling core of the Splatter model (Zappia et al. 2017, `splatSimulate`):
//! gene base means with outliers, log-normal factors (DE, batch), and per-cell
//! gamma–Poisson counts with BCV and logistic dropout.
//!
//! Cells are independent given the gene-level quantities, so they are sampled in
//! parallel, each from its own ChaCha8 stream derived from (seed, cell index): the
//! matrix is identical for a seed whatever the thread count.

use super::SimParams;
use crate::data::CsrMatrix;
use crate::error::{Error, Result};
use indicatif::ProgressBar;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{ChiSquared, Distribution, Gamma, LogNormal, Poisson};
use rayon::prelude::*;

/// Gene-level quantities shared by all cells.
pub(crate) struct GeneBase {
    /// Base mean of each gene (Gamma with outliers), before DE and batch factors.
    pub means: Vec<f64>,
    /// Per-gene BCV multiplier √(df / χ²_df), shared across cells as in Splatter.
    pub bcv_scale: Vec<f64>,
}

fn dist_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::param(what, e.to_string())
}

/// Draw gene base means (`splatSimGeneMeans`) and BCV multipliers.
pub(crate) fn gene_base(
    params: &SimParams,
    n_genes: usize,
    rng: &mut ChaCha8Rng,
) -> Result<GeneBase> {
    let gamma = Gamma::new(params.mean_shape, 1.0 / params.mean_rate)
        .map_err(|e| dist_err("mean_shape", e))?;
    let mut means: Vec<f64> = (0..n_genes).map(|_| gamma.sample(rng)).collect();
    let med = super::stats::median(&means);
    let out_fac = LogNormal::new(params.out_fac_loc, params.out_fac_scale)
        .map_err(|e| dist_err("out_fac_scale", e))?;
    for m in means.iter_mut() {
        // Outliers replace the gene's mean by the median mean times a log-normal factor.
        if rng.gen::<f64>() < params.out_prob {
            *m = med * out_fac.sample(rng);
        }
        // A zero mean (possible for tiny shapes in floating point) would make an empty gene.
        *m = m.max(1e-12);
    }
    let chi = ChiSquared::new(params.bcv_df).map_err(|e| dist_err("bcv_df", e))?;
    let bcv_scale = (0..n_genes)
        .map(|_| (params.bcv_df / chi.sample(rng).max(1e-12)).sqrt())
        .collect();
    Ok(GeneBase { means, bcv_scale })
}

/// Splatter's `getLNormFactors`: each of `n` genes is selected with `sel_prob`; a
/// selected gene gets a log-normal(loc, scale) factor, inverted with `neg_prob`
/// (down-regulation); unselected genes get 1.
pub(crate) fn lnorm_factors(
    n: usize,
    sel_prob: f64,
    neg_prob: f64,
    loc: f64,
    scale: f64,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<f64>> {
    let dist = LogNormal::new(loc, scale).map_err(|e| dist_err("factor scale", e))?;
    Ok((0..n)
        .map(|_| {
            if rng.gen::<f64>() < sel_prob {
                let f = dist.sample(rng);
                let down = rng.gen::<f64>() < neg_prob;
                // As in Splatter, a factor below one reverses the drawn direction.
                let exponent_positive = down == (f < 1.0);
                if exponent_positive {
                    f
                } else {
                    1.0 / f
                }
            } else {
                1.0
            }
        })
        .collect())
}

/// Column indices and values of one sampled cell.
type SparseRow = (Vec<u32>, Vec<f32>);

/// One sampling group (a class in a batch): gene proportions summing to 1 and the
/// log-library offset of its batch.
pub(crate) struct Group {
    pub props: Vec<f64>,
    pub lib_offset: f64,
}

impl Group {
    /// A group from (unnormalized) gene means.
    pub fn new(means: Vec<f64>, lib_offset: f64) -> Self {
        let total: f64 = means.iter().sum();
        Self {
            props: means.into_iter().map(|m| m / total).collect(),
            lib_offset,
        }
    }
}

/// Independent RNG stream of cell `cell` for `seed` (stream 0 is the global stream).
pub(crate) fn cell_rng(seed: u64, cell: usize) -> ChaCha8Rng {
    use rand::SeedableRng;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(cell as u64 + 1);
    rng
}

/// Sample the counts of every cell: library L ~ LogNormal(lib_loc + offset, lib_scale),
/// μ = p_g·L, BCV b = (bcv_common + bcv_mean_term/√μ)·s_g, λ ~ Gamma(1/b², μb²), y ~ Poisson(λ),
/// then y is dropped with probability logistic(ln λ; dropout_mid, dropout_shape).
pub(crate) fn sample_counts(
    params: &SimParams,
    bcv_scale: &[f64],
    groups: &[Group],
    cell_group: &[usize],
    seed: u64,
    progress: &ProgressBar,
) -> Result<CsrMatrix> {
    let n_genes = bcv_scale.len();
    if groups.iter().any(|g| g.props.len() != n_genes)
        || cell_group.iter().any(|&g| g >= groups.len())
    {
        return Err(Error::param(
            "groups",
            "internal inconsistency between groups and genes",
        ));
    }
    progress.set_length(cell_group.len() as u64);
    const CHUNK: usize = 256;
    let rows: Vec<Result<Vec<SparseRow>>> = cell_group
        .par_chunks(CHUNK)
        .enumerate()
        .map(|(chunk, members)| {
            let out = members
                .iter()
                .enumerate()
                .map(|(i, &g)| {
                    sample_cell(
                        params,
                        bcv_scale,
                        &groups[g],
                        &mut cell_rng(seed, chunk * CHUNK + i),
                    )
                })
                .collect::<Result<Vec<_>>>();
            progress.inc(members.len() as u64);
            out
        })
        .collect();
    let mut indptr = Vec::with_capacity(cell_group.len() + 1);
    indptr.push(0usize);
    let (mut indices, mut data) = (Vec::new(), Vec::new());
    for chunk in rows {
        for (idx, val) in chunk? {
            indices.extend_from_slice(&idx);
            data.extend_from_slice(&val);
            indptr.push(indices.len());
        }
    }
    CsrMatrix::new(
        cell_group.len(),
        n_genes,
        indptr,
        indices,
        data,
        "simulator",
    )
}

fn sample_cell(
    params: &SimParams,
    bcv_scale: &[f64],
    group: &Group,
    rng: &mut ChaCha8Rng,
) -> Result<SparseRow> {
    let lib_dist = LogNormal::new(params.lib_loc + group.lib_offset, params.lib_scale)
        .map_err(|e| dist_err("lib_scale", e))?;
    let lib: f64 = lib_dist.sample(rng);
    let (mut idx, mut val) = (Vec::new(), Vec::new());
    for (g, (&p, &s)) in group.props.iter().zip(bcv_scale).enumerate() {
        let mu = p * lib;
        if !(mu > 0.0 && mu.is_finite()) {
            continue;
        }
        let bcv = (params.bcv_common + params.bcv_mean_term / mu.sqrt()) * s;
        let b2 = bcv * bcv;
        let lambda: f64 = Gamma::new(1.0 / b2, mu * b2)
            .map_err(|e| dist_err("bcv", e))?
            .sample(rng);
        if !(lambda > 0.0 && lambda.is_finite()) {
            continue;
        }
        let y: f64 = Poisson::new(lambda)
            .map_err(|e| dist_err("poisson mean", e))?
            .sample(rng);
        if y <= 0.0 {
            continue;
        }
        if rng.gen::<f64>()
            < super::stats::logistic(lambda.ln(), params.dropout_mid, params.dropout_shape)
        {
            continue;
        }
        idx.push(g as u32);
        val.push(y as f32);
    }
    Ok((idx, val))
}
