//! Seeded Splatter-style gamma–Poisson count simulator (Zappia, Phipson & Oshlack
//! 2017, "Splatter: simulation of single-cell RNA sequencing data", Genome Biology
//! 18:174) calibrated on real counts, so the default study runs offline.
//!
//! Model, per gene g, class k, batch b and cell c:
//! - base mean m_g ~ Gamma(mean_shape, mean_rate), outliers m_g = median(m)·LogNormal;
//! - class mean m_g · F_lineage(k),g · F_k,g · B_b,g (· D_g in the query), where the
//!   F are Splatter DE factors and B, D batch factors ([`engine::lnorm_factors`]);
//! - library L_c ~ LogNormal(lib_loc + offset_b, lib_scale), μ_gc = L_c · p_gkb with
//!   p the class-batch means normalized to sum to one;
//! - λ_gc ~ Gamma(1/b², μ b²) with BCV b = (bcv_common + 1/√μ)·√(df/χ²_df,g);
//!   y_gc ~ Poisson(λ_gc), then dropped with probability logistic(ln λ; mid, shape).
//!
//! The reference→query shift is the query's extra gene factors D, different batches,
//! and shifted class shares (some classes absent). [`estimate_params`] fits the
//! gene-level parameters on real counts; `data/params/*.toml` ship two such fits.

pub mod calibration;
mod engine;
mod estimate;
mod params;
mod profiles;
mod stats;

pub use estimate::{estimate_params, estimate_params_named};
pub use params::SimParams;
pub use profiles::Profile;

use crate::data::{Column, CsrMatrix, Dataset, ValueKind};
use crate::error::{Error, Result};
use engine::{gene_base, lnorm_factors, sample_counts, Group};
use indicatif::ProgressBar;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma, Normal};

/// Default number of genes.
pub const DEFAULT_GENES: usize = 3000;

/// Bounds of the multiplicative weight that moves a class's query share away from its
/// reference share, so rare classes stay rare and no present class vanishes.
const QUERY_WEIGHT_RANGE: (f64, f64) = (0.3, 1.6);

/// What to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulateOptions {
    /// Which data set to mirror.
    pub profile: Profile,
    /// Number of cells; `None` uses the profile's size (~13k myeloid, ~15k pancreas).
    pub n_cells: Option<usize>,
    /// Number of genes, defaults to [`DEFAULT_GENES`] (3000).
    pub n_genes: usize,
    /// Seed of every random draw, defaults to 0.
    pub seed: u64,
}

impl SimulateOptions {
    /// Options with the defaults for `profile`.
    pub fn new(profile: Profile) -> Self {
        Self {
            profile,
            n_cells: None,
            n_genes: DEFAULT_GENES,
            seed: 0,
        }
    }
}

/// Simulate a profile with its embedded parameters: a raw-count [`Dataset`] with obs
/// columns `cell_type`, `batch` (`reference` / `query`) and the origin of each cell
/// ([`Profile::origin_column`]: `cancer_type` or `study`, values in
/// [`Profile::reference_origins`] and [`Profile::query_origins`]).
pub fn simulate(opts: &SimulateOptions) -> Result<Dataset> {
    simulate_with(opts, None, &ProgressBar::hidden())
}

/// [`simulate`] with optional replacement parameters and a progress bar.
pub fn simulate_with(
    opts: &SimulateOptions,
    params: Option<&SimParams>,
    progress: &ProgressBar,
) -> Result<Dataset> {
    let spec = opts.profile.spec();
    let params = match params {
        Some(p) => {
            p.validate()?;
            p.clone()
        }
        None => opts.profile.default_params()?,
    };
    let n_cells = opts.n_cells.unwrap_or(spec.default_cells);
    if n_cells < 2 {
        return Err(Error::param(
            "cells",
            format!("need at least 2 cells (one reference, one query), got {n_cells}"),
        ));
    }
    if opts.n_genes < 2 {
        return Err(Error::param(
            "genes",
            format!("need at least 2 genes, got {}", opts.n_genes),
        ));
    }
    let n_genes = opts.n_genes;
    // Every draw below comes from this one stream, in a fixed order, so a seed names one
    // data set.
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let base = gene_base(&params, n_genes, &mut rng)?;
    let batches = batch_list(&spec);
    let factors = Factors::draw(&spec, batches.len(), n_genes, &mut rng)?;
    let groups = factors.groups(&spec, &base.means, &batches);
    let cells = assign_cells(&spec, n_cells, batches.len(), &mut rng)?;
    let cell_group: Vec<usize> = cells.iter().map(|&(k, b)| k * batches.len() + b).collect();
    let x = sample_counts(
        &params,
        &base.bcv_scale,
        &groups,
        &cell_group,
        opts.seed,
        progress,
    )?;
    let layout = Layout {
        spec: &spec,
        batches: &batches,
        cells: &cells,
    };
    Ok(assemble_dataset(opts, &layout, x, n_cells))
}

/// The profile's batches, reference ones first, each with whether it is a query batch;
/// a batch's index here is its index in every per-batch list.
fn batch_list(spec: &profiles::ProfileSpec) -> Vec<(&'static str, bool)> {
    spec.reference_batches
        .iter()
        .map(|b| (*b, false))
        .chain(spec.query_batches.iter().map(|b| (*b, true)))
        .collect()
}

/// The multiplicative gene factors and library offsets that make classes and batches
/// differ.
struct Factors {
    /// Per lineage, per gene DE factor.
    lineage: Vec<Vec<f64>>,
    /// Per class, per gene DE factor.
    class: Vec<Vec<f64>>,
    /// Per batch, per gene batch factor.
    batch: Vec<Vec<f64>>,
    /// Per gene factor applied to query batches only: the reference→query shift.
    domain: Vec<f64>,
    /// Per batch offset of the log library location.
    lib_offset: Vec<f64>,
}

impl Factors {
    /// Draw every factor, in the order lineage, class, batch, domain, library offset.
    fn draw(
        spec: &profiles::ProfileSpec,
        n_batches: usize,
        n_genes: usize,
        rng: &mut ChaCha8Rng,
    ) -> Result<Factors> {
        let de = |d: profiles::DeSpec, rng: &mut ChaCha8Rng| {
            lnorm_factors(n_genes, d.prob, d.down_prob, d.loc, d.scale, rng)
        };
        let lineage = (0..spec.n_lineages)
            .map(|_| de(spec.lineage_de, rng))
            .collect::<Result<Vec<_>>>()?;
        let class = spec
            .classes
            .iter()
            .map(|_| de(spec.class_de, rng))
            .collect::<Result<Vec<_>>>()?;
        let batch = (0..n_batches)
            .map(|_| lnorm_factors(n_genes, 1.0, 0.5, spec.batch_fac.0, spec.batch_fac.1, rng))
            .collect::<Result<Vec<_>>>()?;
        let domain = lnorm_factors(n_genes, 1.0, 0.5, spec.domain_fac.0, spec.domain_fac.1, rng)?;
        let lib_noise = Normal::new(0.0, spec.batch_lib_sd)
            .map_err(|e| Error::param("batch_lib_sd", e.to_string()))?;
        let lib_offset: Vec<f64> = (0..n_batches).map(|_| lib_noise.sample(rng)).collect();
        Ok(Factors {
            lineage,
            class,
            batch,
            domain,
            lib_offset,
        })
    }

    /// One group per (class, batch), group k·n_batches + b being class k in batch b, with
    /// its gene means: base × lineage × class × batch (× domain in the query).
    fn groups(
        &self,
        spec: &profiles::ProfileSpec,
        base_means: &[f64],
        batches: &[(&str, bool)],
    ) -> Vec<Group> {
        let mut groups = Vec::with_capacity(spec.classes.len() * batches.len());
        for (k, class) in spec.classes.iter().enumerate() {
            for (b, &(_, is_query)) in batches.iter().enumerate() {
                let means = (0..base_means.len())
                    .map(|g| {
                        let shift = if is_query { self.domain[g] } else { 1.0 };
                        base_means[g]
                            * self.lineage[class.lineage][g]
                            * self.class[k][g]
                            * self.batch[b][g]
                            * shift
                    })
                    .collect();
                groups.push(Group::new(means, self.lib_offset[b]));
            }
        }
        groups
    }
}

/// The (class, batch) of every cell, shuffled: class counts follow the reference shares in
/// the reference and freshly drawn shares in the query, and each cell gets a uniformly
/// drawn batch of its side.
fn assign_cells(
    spec: &profiles::ProfileSpec,
    n_cells: usize,
    n_batches: usize,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<(usize, usize)>> {
    let n_ref = ((n_cells as f64 * spec.reference_fraction).round() as usize).clamp(1, n_cells - 1);
    let ref_shares: Vec<f64> = spec.classes.iter().map(|c| c.share).collect();
    let query_shares = query_shares(spec, rng)?;
    let n_ref_batches = spec.reference_batches.len();
    let mut cells: Vec<(usize, usize)> = Vec::with_capacity(n_cells); // (class, batch)
    for (n_split, shares, batch_range) in [
        (n_ref, &ref_shares, 0..n_ref_batches),
        (n_cells - n_ref, &query_shares, n_ref_batches..n_batches),
    ] {
        for (k, &count) in largest_remainder(shares, n_split).iter().enumerate() {
            for _ in 0..count {
                cells.push((k, rng.gen_range(batch_range.clone())));
            }
        }
    }
    cells.shuffle(rng);
    Ok(cells)
}

/// What names the cells: the profile, its batches and each cell's (class, batch).
struct Layout<'a> {
    spec: &'a profiles::ProfileSpec,
    batches: &'a [(&'static str, bool)],
    cells: &'a [(usize, usize)],
}

/// The [`Dataset`] around the simulated counts: cell and gene names, and the obs columns
/// `cell_type`, `batch` (reference/query) and the profile's origin column.
fn assemble_dataset(
    opts: &SimulateOptions,
    layout: &Layout,
    x: CsrMatrix,
    n_cells: usize,
) -> Dataset {
    let (spec, batches) = (layout.spec, layout.batches);
    let n_genes = opts.n_genes;
    let names =
        |f: &dyn Fn(&(usize, usize)) -> String| layout.cells.iter().map(f).collect::<Vec<String>>();
    let cell_type = names(&|&(k, _)| spec.classes[k].name.to_string());
    let origin = names(&|&(_, b)| batches[b].0.to_string());
    let side = names(&|&(_, b)| if batches[b].1 { "query" } else { "reference" }.to_string());
    let width = n_cells.to_string().len().max(5);
    let gene_width = n_genes.to_string().len().max(4);
    Dataset {
        x,
        cell_ids: (1..=n_cells).map(|i| format!("cell{i:0width$}")).collect(),
        gene_names: (1..=n_genes)
            .map(|i| format!("GENE{i:0gene_width$}"))
            .collect(),
        obs: vec![
            (
                "cell_type".to_string(),
                Column::categorical_from_strings(&cell_type),
            ),
            ("batch".to_string(), Column::categorical_from_strings(&side)),
            (
                opts.profile.origin_column().to_string(),
                Column::categorical_from_strings(&origin),
            ),
        ],
        obsm: Vec::new(),
        value_kind: ValueKind::Counts,
        source: format!(
            "simulated:{}:cells={n_cells}:genes={n_genes}:seed={}",
            opts.profile, opts.seed
        ),
    }
}

/// Simulate one homogeneous population (no classes, batches or DE) with `params`: the
/// matrix the calibration test compares with the data the parameters were fitted on.
pub fn simulate_counts(
    params: &SimParams,
    n_cells: usize,
    n_genes: usize,
    seed: u64,
) -> Result<CsrMatrix> {
    params.validate()?;
    if n_cells == 0 || n_genes == 0 {
        return Err(Error::param(
            "cells/genes",
            format!("need at least one cell and gene, got {n_cells} x {n_genes}"),
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let base = gene_base(params, n_genes, &mut rng)?;
    let groups = [Group::new(base.means, 0.0)];
    sample_counts(
        params,
        &base.bcv_scale,
        &groups,
        &vec![0; n_cells],
        seed,
        &ProgressBar::hidden(),
    )
}

/// Query class shares: reference shares times Gamma(c, 1/c) weights clamped to
/// [`QUERY_WEIGHT_RANGE`] and renormalized (a Dirichlet-like perturbation with
/// concentration c in which every class keeps its order of magnitude); classes absent
/// from the query get 0, the pinned class keeps its reference share.
fn query_shares(spec: &profiles::ProfileSpec, rng: &mut ChaCha8Rng) -> Result<Vec<f64>> {
    let c = spec.query_concentration;
    let gamma =
        Gamma::new(c, 1.0 / c).map_err(|e| Error::param("query_concentration", e.to_string()))?;
    let mut pinned_share = 0.0;
    let mut shares: Vec<f64> = spec
        .classes
        .iter()
        .map(|class| {
            let w: f64 = gamma.sample(rng);
            if Some(class.name) == spec.pinned {
                pinned_share = class.share;
                0.0
            } else if class.in_query {
                class.share * w.clamp(QUERY_WEIGHT_RANGE.0, QUERY_WEIGHT_RANGE.1)
            } else {
                0.0
            }
        })
        .collect();
    let free: f64 = shares.iter().sum();
    for (s, class) in shares.iter_mut().zip(&spec.classes) {
        if Some(class.name) == spec.pinned {
            *s = pinned_share;
        } else {
            *s *= (1.0 - pinned_share) / free;
        }
    }
    Ok(shares)
}

/// Split `n` into integer counts proportional to `shares` (largest remainder), then
/// give every class with a positive share at least one cell when `n` allows, taking
/// it from the largest class.
fn largest_remainder(shares: &[f64], n: usize) -> Vec<usize> {
    let total: f64 = shares.iter().sum();
    let exact: Vec<f64> = shares.iter().map(|s| s / total * n as f64).collect();
    let mut counts: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| {
        (exact[b] - exact[b].floor())
            .total_cmp(&(exact[a] - exact[a].floor()))
            .then(a.cmp(&b))
    });
    let assigned: usize = counts.iter().sum();
    for &i in order.iter().take(n - assigned) {
        counts[i] += 1;
    }
    let present = shares.iter().filter(|&&s| s > 0.0).count();
    if n >= 2 * present {
        for i in 0..shares.len() {
            if shares[i] > 0.0 && counts[i] == 0 {
                if let Some(largest) = (0..counts.len()).max_by_key(|&j| counts[j]) {
                    counts[largest] -= 1;
                    counts[i] += 1;
                }
            }
        }
    }
    counts
}

#[cfg(test)]
mod tests;
