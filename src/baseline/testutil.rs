//! Synthetic labelled count data for the baselines' unit tests.

use crate::data::{Column, CsrMatrix, Dataset, Labels, ValueKind};
use ndarray::Array2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Poisson};

/// `n_per_class` cells of each of `n_classes` types over `n_genes` genes: Poisson counts
/// with a base rate, and 8 marker genes per class at a 6× higher rate. Labels are stored
/// in obs column `label` and returned.
pub fn clustered_counts(
    n_per_class: usize,
    n_classes: usize,
    n_genes: usize,
    seed: u64,
) -> (Dataset, Labels) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = n_per_class * n_classes;
    let mut dense = Array2::<f32>::zeros((n, n_genes));
    let mut names = Vec::with_capacity(n);
    for i in 0..n {
        let class = i % n_classes;
        names.push(format!("type{class}"));
        for j in 0..n_genes {
            let base = 0.3 + (j % 5) as f64 * 0.3;
            let marker = j / 8 == class;
            let rate = if marker { base * 6.0 } else { base };
            let pois = Poisson::new(rate).expect("positive rate");
            dense[[i, j]] = pois.sample(&mut rng) as f32;
        }
    }
    let labels = Labels::from_strings(&names);
    let ds = Dataset {
        x: CsrMatrix::from_dense(&dense),
        cell_ids: (0..n).map(|i| format!("cell{seed}_{i}")).collect(),
        gene_names: (0..n_genes).map(|j| format!("gene{j}")).collect(),
        obs: vec![("label".into(), Column::categorical_from_strings(&names))],
        obsm: vec![],
        value_kind: ValueKind::Counts,
        source: format!("synthetic:{seed}"),
    };
    (ds, labels)
}

/// Fraction of query cells whose prediction equals the truth.
pub fn accuracy(pred: &crate::eval::Prediction, truth: &Labels) -> f64 {
    let hits = (0..truth.len())
        .filter(|&i| truth.name(i) == Some(pred.label(i)))
        .count();
    hits as f64 / truth.len() as f64
}
