//! The fixed gene set a binned model (scGPT-like, SC-MAMBA2-like) reads, as scGPT's
//! annotation pipeline builds it: highly variable genes chosen on the reference, then every
//! non-zero one of them in a cell's sequence (no zero genes), in the data set's gene order,
//! so the position of a gene in the sequence says nothing about its value.
//!
//! scGPT keeps a fixed number of HVGs (its tutorials: 3000) and a sequence long enough for
//! nearly all of them. On a CPU the sequence is shorter, so the number of HVGs is chosen
//! instead: the largest prefix of the HVG ranking for which the 99th percentile of non-zero
//! HVGs per reference training cell fits the sequence. The ~1% of cells with more are
//! subsampled as scGPT does (a seeded uniform subset), and that rate is reported.

use crate::data::{CsrMatrix, Dataset, ValueKind};
use crate::error::Result;
use crate::pp::{HvgFlavor, HvgParams};

/// Share of reference training cells allowed more non-zero HVGs than the sequence holds.
const TRUNCATION_QUANTILE: f64 = 0.99;

/// The chosen genes (indices into the data set's genes, ascending) and how many cells
/// need truncating.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneSet {
    /// Gene indices, in the data set's order.
    pub genes: Vec<usize>,
    /// Share of the reference training cells with more non-zero genes than `max_genes`.
    pub truncation_rate: f64,
}

/// HVGs of the reference training cells (scanpy's `seurat` flavour on log1p(CP10k)),
/// ranked by normalized dispersion, and the longest prefix whose 99th percentile of
/// non-zero genes per cell is at most `max_genes`.
pub fn select_hvg_genes(
    reference: &Dataset,
    train_rows: &[usize],
    max_genes: usize,
) -> Result<GeneSet> {
    let x = log_normalized(&reference.select_cells(train_rows));
    let fitted = HvgParams::new().flavor(HvgFlavor::Seurat).fit(&x)?;
    let scores = fitted.scores();
    let mut ranked: Vec<usize> = (0..x.n_cols()).collect();
    // Highest normalized dispersion first; genes without a score (never expressed) last.
    ranked.sort_by(|&a, &b| {
        let (sa, sb) = (scores[a], scores[b]);
        sb.is_nan()
            .cmp(&sa.is_nan())
            .reverse()
            .then(sb.total_cmp(&sa))
            .then(a.cmp(&b))
    });
    let fits = |n: usize| quantile_nonzero(&x, &ranked[..n], TRUNCATION_QUANTILE) <= max_genes;
    let (mut lo, mut hi) = (1usize.min(ranked.len()), ranked.len());
    if fits(hi) {
        lo = hi;
    }
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let mut genes = ranked[..lo].to_vec();
    genes.sort_unstable();
    let truncation_rate = truncation_rate(&x, &genes, max_genes);
    Ok(GeneSet {
        genes,
        truncation_rate,
    })
}

/// Share of the cells of `x` with more than `max_genes` non-zero values among `genes`.
pub fn truncation_rate(x: &CsrMatrix, genes: &[usize], max_genes: usize) -> f64 {
    let counts = nonzero_counts(x, genes);
    if counts.is_empty() {
        return 0.0;
    }
    counts.iter().filter(|&&c| c > max_genes).count() as f64 / counts.len() as f64
}

fn log_normalized(ds: &Dataset) -> CsrMatrix {
    let mut x = ds.x.clone();
    if ds.value_kind == ValueKind::Counts {
        crate::pp::normalize_total_inplace(&mut x, 1e4);
        crate::pp::log1p_inplace(&mut x);
    }
    x
}

fn nonzero_counts(x: &CsrMatrix, genes: &[usize]) -> Vec<usize> {
    let mut keep = vec![false; x.n_cols()];
    for &g in genes {
        keep[g] = true;
    }
    (0..x.n_rows())
        .map(|r| {
            let (idx, val) = x.row(r);
            idx.iter()
                .zip(val)
                .filter(|(&c, &v)| v != 0.0 && keep[c as usize])
                .count()
        })
        .collect()
}

fn quantile_nonzero(x: &CsrMatrix, genes: &[usize], q: f64) -> usize {
    let mut counts = nonzero_counts(x, genes);
    if counts.is_empty() {
        return 0;
    }
    counts.sort_unstable();
    counts[((q * (counts.len() - 1) as f64).ceil() as usize).min(counts.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::simulate::{simulate, Profile, SimulateOptions};

    /// The chosen set keeps the 99th percentile of non-zero genes within the limit, adding
    /// the next ranked gene would break it, and the set is in the data set's gene order.
    #[test]
    fn hvg_set_fits_the_sequence() {
        let mut opts = SimulateOptions::new(Profile::PancreasLike);
        opts.n_cells = Some(300);
        opts.n_genes = 400;
        opts.seed = 5;
        let ds = simulate(&opts).unwrap();
        let rows: Vec<usize> = (0..300).collect();
        let set = select_hvg_genes(&ds, &rows, 64).unwrap();
        assert!(set.genes.windows(2).all(|w| w[0] < w[1]));
        assert!(
            set.genes.len() > 64 && set.genes.len() < 400,
            "{}",
            set.genes.len()
        );
        assert!(
            set.truncation_rate <= 0.01 + 1e-12,
            "{}",
            set.truncation_rate
        );
        let x = log_normalized(&ds);
        assert!(quantile_nonzero(&x, &set.genes, 0.99) <= 64);
        // All genes would not fit: the limit is binding.
        assert!(quantile_nonzero(&x, &(0..400).collect::<Vec<_>>(), 0.99) > 64);
    }
}
