//! Estimating [`SimParams`] from raw counts, following Splatter's `splatEstimate`
//! (Zappia et al. 2017) where it is cheap, and moment estimators where Splatter calls
//! R packages:
//!
//! - **Library size**: log-normal with the maximum-likelihood location (mean of log
//!   totals, as `splatEstLib`) and the scale widened when needed so that the mean
//!   library matches: sd of log totals, or √(2(ln mean − loc)) if larger.
//! - **Gene means**: means of library-normalized counts (scaled to the median library),
//!   zero means dropped, Gamma maximum likelihood (Newton on the shape, Minka 2002), as
//!   `splatEstMean` with `fitdistrplus` "mle" but without its 10%/90% winsorizing,
//!   which lifts the rarest genes and overstates detection in sparse data (CBMC
//!   simulated zero fraction 0.878 with it, 0.885 without; real 0.933).
//! - **Outliers**: genes whose log mean exceeds median + 2 MAD; their factor over the
//!   median mean is fitted log-normal by maximum likelihood, as `splatEstOutlier`.
//! - **BCV**: Splatter calls edgeR's `estimateDisp`. Here a per-gene method-of-moments
//!   NB dispersion φ_g = Σ_c[(y − μ)² − μ] / Σ_c μ² with μ_gc = p_g·L_c is matched to
//!   what the simulator itself produces, φ_g = s_g²·(c² + 2c·A_g + B_g) (the
//!   `(bcv.common + 1/√μ)` form of `splatSimCellMeans` summed over cells), with
//!   s_g² ~ df/χ²_df. `bcv_common` = c is chosen so the median residual
//!   log φ_g − log(c² + 2cA_g + B_g) equals the median of log(df/χ²_df), and `bcv_df`
//!   so that trigamma(df/2) (the variance of log χ²_df) equals the residuals' robust
//!   (MAD) variance; the two are iterated.
//! - **Dropout**: Splatter fits a logistic to each gene's zero fraction against its log
//!   mean. Applied on top of gamma–Poisson zeros that double-counts zeros, so here the
//!   logistic (least squares, grid search then refinement) is fitted to the *excess*
//!   zero fraction over what the fitted gamma–Poisson model (with its log-normal
//!   libraries) already predicts.

use super::stats::{digamma, logistic, mad, mean_sd, median, trigamma};
use super::SimParams;
use crate::data::{CsrMatrix, ValueKind};
use crate::error::{Error, Result};

/// Fewest non-empty cells and expressed genes needed for a meaningful fit.
const MIN_CELLS: usize = 20;
const MIN_GENES: usize = 20;

/// Estimate Splatter parameters from a raw-count cells × genes matrix.
/// Empty cells are ignored; non-count values are an error.
pub fn estimate_params(counts: &CsrMatrix) -> Result<SimParams> {
    estimate_params_named(counts, "counts")
}

/// [`estimate_params`] with `source` (a file name) recorded in the parameters and errors.
pub fn estimate_params_named(counts: &CsrMatrix, source: &str) -> Result<SimParams> {
    if ValueKind::detect(counts.data()) != ValueKind::Counts {
        return Err(Error::invalid(
            source,
            "X",
            "values are not raw counts (non-negative integers); simulator parameters must be fitted on raw UMI counts",
        ));
    }
    let n_genes = counts.n_cols();
    let library = fit_library(counts, source)?;
    let sums = GeneSums::of(counts, &library);
    let genes = ExpressedGenes::of(&sums, &library, source)?;
    let (expressed, norm_means) = (&genes.expressed, &genes.norm_means);
    let (mean_shape, mean_rate) =
        fit_mean_gamma(&expressed.iter().map(|&g| norm_means[g]).collect::<Vec<_>>());
    let (out_prob, out_fac_loc, out_fac_scale) = fit_outliers(norm_means, expressed, n_genes);
    let (bcv_common, bcv_mean_term, bcv_df) =
        fit_bcv(&moment_dispersions(&sums, expressed, &library.lib));
    let (xs, excess) = excess_zeros(
        &library,
        &sums,
        &genes,
        (bcv_common, bcv_mean_term, bcv_df),
        source,
    )?;
    let (dropout_mid, dropout_shape) = fit_logistic(&xs, &excess);

    let params = SimParams {
        source: source.to_string(),
        fitted_cells: counts.n_rows(),
        fitted_genes: n_genes,
        mean_shape,
        mean_rate,
        out_prob,
        out_fac_loc,
        out_fac_scale,
        lib_loc: library.loc,
        lib_scale: library.scale,
        bcv_common,
        bcv_mean_term,
        bcv_df,
        dropout_mid,
        dropout_shape,
    };
    params.validate().map_err(|e| {
        Error::invalid(
            source,
            "X",
            format!("estimated parameters are invalid: {e}"),
        )
    })?;
    Ok(params)
}

/// The non-empty cells, their library sizes and the fitted log-normal library model.
struct Library {
    /// Rows of the matrix with a positive total, in row order.
    cells: Vec<usize>,
    /// Library size (total count) of each of `cells`.
    lib: Vec<f64>,
    /// Log-normal location: the mean of log library sizes.
    loc: f64,
    /// Log-normal scale, widened so the model's mean library matches the observed one.
    scale: f64,
    /// Median library size, the scale of the normalized gene means.
    median: f64,
}

/// Library sizes of the non-empty cells and their log-normal fit; too few non-empty cells
/// is an error.
fn fit_library(counts: &CsrMatrix, source: &str) -> Result<Library> {
    let lib_all = counts.row_sums();
    let cells: Vec<usize> = (0..counts.n_rows()).filter(|&c| lib_all[c] > 0.0).collect();
    if cells.len() < MIN_CELLS {
        return Err(Error::invalid(
            source,
            "X",
            format!(
                "only {} non-empty cells; need at least {MIN_CELLS} to estimate parameters",
                cells.len()
            ),
        ));
    }
    let n = cells.len() as f64;
    let lib: Vec<f64> = cells.iter().map(|&c| lib_all[c]).collect();
    let log_lib: Vec<f64> = lib.iter().map(|l| l.ln()).collect();
    let (loc, lib_sd) = mean_sd(&log_lib);
    // E[L] = exp(loc + scale²/2): keep the MLE location and widen the scale until the
    // mean library matches (bimodal depth, as in CBMC, otherwise halves the mean).
    let mean_lib = lib.iter().sum::<f64>() / n;
    let scale = (2.0 * (mean_lib.ln() - loc)).max(0.0).sqrt().max(lib_sd);
    let med = median(&lib);
    Ok(Library {
        cells,
        lib,
        loc,
        scale,
        median: med,
    })
}

/// Per-gene sums over the non-empty cells, all that the estimators need from the matrix.
struct GeneSums {
    /// Σ_c y_gc.
    sum: Vec<f64>,
    /// Σ_c y_gc².
    sum_sq: Vec<f64>,
    /// Σ_c y_gc·L_c.
    sum_yl: Vec<f64>,
    /// Σ_c y_gc / L_c.
    sum_norm: Vec<f64>,
    /// Number of cells with y_gc > 0.
    nnz: Vec<usize>,
}

impl GeneSums {
    /// One sparse pass over the non-empty cells.
    fn of(counts: &CsrMatrix, library: &Library) -> GeneSums {
        let n_genes = counts.n_cols();
        let mut sum = vec![0.0f64; n_genes];
        let mut sum_sq = vec![0.0f64; n_genes];
        let mut sum_yl = vec![0.0f64; n_genes];
        let mut sum_norm = vec![0.0f64; n_genes];
        let mut nnz = vec![0usize; n_genes];
        for (&c, &l) in library.cells.iter().zip(&library.lib) {
            let (idx, val) = counts.row(c);
            for (&g, &v) in idx.iter().zip(val) {
                let (g, y) = (g as usize, v as f64);
                if y > 0.0 {
                    sum[g] += y;
                    sum_sq[g] += y * y;
                    sum_yl[g] += y * l;
                    sum_norm[g] += y / l;
                    nnz[g] += 1;
                }
            }
        }
        GeneSums {
            sum,
            sum_sq,
            sum_yl,
            sum_norm,
            nnz,
        }
    }
}

/// Per-gene moment dispersions (φ_g, A_g, B_g) for [`fit_bcv`], genes by decreasing mean
/// (it bins them and takes the BCV spread from the top). Uses the closed forms
/// Σ_c μ_gc^k = p_g^k Σ_c L_c^k.
fn moment_dispersions(sums: &GeneSums, expressed: &[usize], lib: &[f64]) -> Vec<(f64, f64, f64)> {
    let s_l: f64 = lib.iter().sum();
    let s_l2: f64 = lib.iter().map(|l| l * l).sum();
    let s_l15: f64 = lib.iter().map(|l| l.powf(1.5)).sum();
    let mut by_mean = expressed.to_vec();
    by_mean.sort_by(|&a, &b| sums.sum[b].total_cmp(&sums.sum[a]).then(a.cmp(&b)));
    by_mean
        .iter()
        .map(|&g| {
            let p = sums.sum[g] / s_l;
            let num = sums.sum_sq[g] - 2.0 * p * sums.sum_yl[g] + p * p * s_l2 - p * s_l;
            (
                num / (p * p * s_l2),
                s_l15 / (p.sqrt() * s_l2),
                s_l / (p * s_l2),
            )
        })
        .collect()
}

/// The genes with any count, and every gene's library-normalized mean.
struct ExpressedGenes {
    /// Genes with any count, in gene order.
    expressed: Vec<usize>,
    /// Library-normalized mean of every gene (indexed by gene, not by `expressed`),
    /// scaled to the median library.
    norm_means: Vec<f64>,
}

impl ExpressedGenes {
    /// Too few expressed genes is an error.
    fn of(sums: &GeneSums, library: &Library, source: &str) -> Result<ExpressedGenes> {
        let n = library.cells.len() as f64;
        let n_genes = sums.sum.len();
        let norm_means: Vec<f64> = sums
            .sum_norm
            .iter()
            .map(|s| s / n * library.median)
            .collect();
        let expressed: Vec<usize> = (0..n_genes).filter(|&g| sums.sum[g] > 0.0).collect();
        if expressed.len() < MIN_GENES {
            return Err(Error::invalid(
                source,
                "X",
                format!(
                    "only {} genes with any count; need at least {MIN_GENES}",
                    expressed.len()
                ),
            ));
        }
        Ok(ExpressedGenes {
            expressed,
            norm_means,
        })
    }
}

/// For each expressed gene, its log normalized mean and its excess zero fraction over the
/// fitted gamma–Poisson model with BCV `(common, mean_term, df)`: the points the dropout
/// logistic is fitted to.
fn excess_zeros(
    library: &Library,
    sums: &GeneSums,
    genes: &ExpressedGenes,
    (bcv_common, bcv_mean_term, bcv_df): (f64, f64, f64),
    source: &str,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let n = library.cells.len() as f64;
    let s_l: f64 = library.lib.iter().sum();
    let mean_s2 = if bcv_df > 2.0 {
        bcv_df / (bcv_df - 2.0)
    } else {
        2.0
    };
    // Libraries drawn from the fitted log-normal rather than the observed ones, so the
    // dropout also absorbs zeros the log-normal misses (e.g. a bimodal depth). A fixed
    // seed keeps the estimate deterministic.
    let lib_dist = rand_distr::LogNormal::new(library.loc, library.scale)
        .map_err(|e| Error::invalid(source, "X", format!("library sizes: {e}")))?;
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
    let lib_sample: Vec<f64> = (0..1000)
        .map(|_| rand_distr::Distribution::sample(&lib_dist, &mut rng))
        .collect();
    let mut xs = Vec::with_capacity(genes.expressed.len());
    let mut excess = Vec::with_capacity(genes.expressed.len());
    for &g in &genes.expressed {
        let p = sums.sum[g] / s_l;
        let expected_zero = lib_sample
            .iter()
            .map(|&l| {
                let mu = p * l;
                let phi = mean_s2 * (bcv_common + bcv_mean_term / mu.sqrt()).powi(2);
                (1.0 + phi * mu).powf(-1.0 / phi)
            })
            .sum::<f64>()
            / lib_sample.len() as f64;
        let observed_zero = 1.0 - sums.nnz[g] as f64 / n;
        let e = if expected_zero < 1.0 {
            (observed_zero - expected_zero) / (1.0 - expected_zero)
        } else {
            0.0
        };
        xs.push(genes.norm_means[g].ln());
        excess.push(e.clamp(0.0, 1.0));
    }
    Ok((xs, excess))
}

/// Gamma (shape, rate) by maximum likelihood on the non-zero means.
fn fit_mean_gamma(means: &[f64]) -> (f64, f64) {
    let w = means;
    let mean = w.iter().sum::<f64>() / w.len() as f64;
    let mean_log = w.iter().map(|m| m.ln()).sum::<f64>() / w.len() as f64;
    let s = (mean.ln() - mean_log).max(1e-9);
    // Minka's closed-form start, then Newton on log k − ψ(k) = s.
    let mut k = (3.0 - s + ((s - 3.0).powi(2) + 24.0 * s).sqrt()) / (12.0 * s);
    for _ in 0..50 {
        let f = k.ln() - digamma(k) - s;
        let df = 1.0 / k - trigamma(k);
        let next = k - f / df;
        k = if next > 0.0 { next } else { k / 2.0 };
        if (f / df).abs() < 1e-10 * k {
            break;
        }
    }
    (k, k / mean)
}

/// Outlier probability and log-normal factor, as `splatEstOutlier`. With fewer than
/// two outliers Splatter's default factor (location 4, scale 0.5) is kept.
fn fit_outliers(norm_means: &[f64], expressed: &[usize], n_genes: usize) -> (f64, f64, f64) {
    let log_means: Vec<f64> = expressed.iter().map(|&g| norm_means[g].ln()).collect();
    let bound = median(&log_means) + 2.0 * mad(&log_means);
    let med_mean = median(&expressed.iter().map(|&g| norm_means[g]).collect::<Vec<_>>());
    let facs: Vec<f64> = log_means
        .iter()
        .filter(|&&l| l > bound)
        .map(|&l| l - med_mean.ln())
        .collect();
    let prob = facs.len() as f64 / n_genes as f64;
    if facs.len() < 2 {
        return (prob, 4.0, 0.5);
    }
    let (loc, scale) = mean_sd(&facs);
    (prob, loc, scale)
}

/// Fit (bcv_common c, bcv_mean_term d, bcv_df) to per-gene (φ_g, A_g, B_g) sorted by
/// decreasing mean, where the model is φ_g = s_g²·(c² + 2cd·A_g + d²·B_g); see the
/// module docs.
fn fit_bcv(dispersion: &[(f64, f64, f64)]) -> (f64, f64, f64) {
    const N_BINS: usize = 10;
    // Genes with a non-positive moment estimate count as −∞ residuals: they still pull
    // the median down without breaking it.
    let residuals = |c: f64, d: f64, genes: &[(f64, f64, f64)]| -> Vec<f64> {
        genes
            .iter()
            .map(|&(phi, a, b)| {
                if phi > 0.0 {
                    phi.ln() - (c * c + 2.0 * c * d * a + d * d * b).max(1e-300).ln()
                } else {
                    f64::NEG_INFINITY
                }
            })
            .collect()
    };
    let bin_size = dispersion.len().div_ceil(N_BINS).max(1);
    let loss = |c: f64, d: f64, target: f64| -> f64 {
        dispersion
            .chunks(bin_size)
            .map(|bin| median(&residuals(c, d, bin)))
            .filter(|m| m.is_finite())
            .map(|m| (m - target).powi(2))
            .sum()
    };
    let median_log_scaled_inv_chisq =
        |df: f64| df.ln() - (df * (1.0 - 2.0 / (9.0 * df)).powi(3)).ln();
    let top = &dispersion[..(dispersion.len() / 4).max(1)];
    let (mut c, mut d, mut df): (f64, f64, f64) = (0.1, 1.0, 60.0);
    for _ in 0..3 {
        let target = median_log_scaled_inv_chisq(df);
        // Coarse grid (c in [0, 3], d in [0, 1.5]), then a 10x finer one around the best.
        let mut best = (f64::INFINITY, c, d);
        for (c_step, d_step, refine) in [(0.1, 0.05, false), (0.01, 0.005, true)] {
            let (c0, d0) = if refine {
                ((best.1 - 0.1).max(0.0), (best.2 - 0.05).max(0.0))
            } else {
                (0.0, 0.0)
            };
            for i in 0..=30 {
                for j in 0..=30 {
                    let (ci, dj) = (c0 + c_step * i as f64, d0 + d_step * j as f64);
                    let l = loss(ci, dj, target);
                    if l < best.0 {
                        best = (l, ci, dj);
                    }
                }
            }
        }
        (c, d) = (best.1, best.2);
        let finite: Vec<f64> = residuals(c, d, top)
            .into_iter()
            .filter(|r| r.is_finite())
            .collect();
        let var = mad(&finite).powi(2);
        // trigamma(df/2) falls with df: bisect on log df in [2.5, 1000].
        let (mut lo, mut hi) = (2.5f64.ln(), 1000f64.ln());
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            if trigamma(mid.exp() / 2.0) > var {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        df = (0.5 * (lo + hi)).exp();
    }
    (c, d, df)
}

/// Least-squares logistic fit y ≈ 1/(1+exp(−k(x−x0))) with k < 0: a coarse grid, then
/// two finer grids around the best point. Returns (x0, k).
fn fit_logistic(xs: &[f64], ys: &[f64]) -> (f64, f64) {
    let sse = |x0: f64, k: f64| -> f64 {
        xs.iter()
            .zip(ys)
            .map(|(&x, &y)| (logistic(x, x0, k) - y).powi(2))
            .sum()
    };
    let (x_min, x_max) = xs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    let (mut x0_lo, mut x0_hi) = (x_min - 5.0, x_max + 1.0);
    let (mut k_lo, mut k_hi) = (-8.0f64, -0.1f64);
    let mut best = (x0_lo, k_hi, f64::INFINITY);
    for _ in 0..3 {
        for i in 0..=40 {
            let x0 = x0_lo + (x0_hi - x0_lo) * i as f64 / 40.0;
            for j in 0..=30 {
                let k = k_lo + (k_hi - k_lo) * j as f64 / 30.0;
                let e = sse(x0, k);
                if e < best.2 {
                    best = (x0, k, e);
                }
            }
        }
        let (dx, dk) = ((x0_hi - x0_lo) / 10.0, (k_hi - k_lo) / 10.0);
        x0_lo = best.0 - dx;
        x0_hi = best.0 + dx;
        k_lo = best.1 - dk;
        k_hi = (best.1 + dk).min(-0.01);
    }
    (best.0, best.1)
}

#[cfg(test)]
mod tests {
    use super::super::{simulate_counts, SimParams};
    use super::*;

    fn truth() -> SimParams {
        SimParams {
            source: "truth".into(),
            fitted_cells: 0,
            fitted_genes: 0,
            mean_shape: 0.6,
            mean_rate: 0.3,
            out_prob: 0.05,
            out_fac_loc: 4.0,
            out_fac_scale: 0.5,
            lib_loc: 8.0,
            lib_scale: 0.4,
            bcv_common: 0.3,
            bcv_mean_term: 1.0,
            bcv_df: 30.0,
            dropout_mid: -20.0,
            dropout_shape: -1.0,
        }
    }

    /// Parameters used to simulate are recovered: library and BCV closely, the
    /// gene-mean Gamma within its winsorized bias.
    #[test]
    fn recovers_simulation_parameters() {
        let t = truth();
        let counts = simulate_counts(&t, 1500, 800, 7).unwrap();
        let e = estimate_params(&counts).unwrap();
        assert!(
            (e.lib_loc - t.lib_loc).abs() < 0.05,
            "lib_loc {}",
            e.lib_loc
        );
        assert!(
            (e.lib_scale - t.lib_scale).abs() < 0.05,
            "lib_scale {}",
            e.lib_scale
        );
        assert!(
            (e.bcv_common - t.bcv_common).abs() < 0.1,
            "bcv_common {}",
            e.bcv_common
        );
        let mean_t = t.mean_shape / t.mean_rate;
        let mean_e = e.mean_shape / e.mean_rate;
        assert!(
            mean_e > 0.3 * mean_t && mean_e < 3.0 * mean_t,
            "mean {mean_e} vs {mean_t}"
        );
    }

    /// Log-normalized values are refused with a message naming the problem.
    #[test]
    fn rejects_non_counts() {
        let d = ndarray::Array2::<f32>::from_elem((30, 30), 0.5);
        let e = estimate_params(&CsrMatrix::from_dense(&d)).unwrap_err();
        assert!(e.to_string().contains("raw counts"), "{e}");
    }

    /// Too few cells give an error, not a panic.
    #[test]
    fn rejects_tiny_input() {
        let d = ndarray::Array2::<f32>::from_elem((3, 30), 1.0);
        assert!(estimate_params(&CsrMatrix::from_dense(&d)).is_err());
    }
}
