use super::*;
use crate::data::ValueKind;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub(crate) fn dataset(dense: &Array2<f32>, kind: ValueKind) -> Dataset {
    Dataset {
        x: CsrMatrix::from_dense(dense),
        cell_ids: (0..dense.nrows()).map(|i| format!("c{i}")).collect(),
        gene_names: (0..dense.ncols()).map(|j| format!("g{j}")).collect(),
        obs: vec![],
        obsm: vec![],
        value_kind: kind,
        source: "synthetic".into(),
    }
}

fn counts(n: usize, p: usize, seed: u64) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((n, p), |(i, j)| {
        let rate = if (i % 3) == (j % 3) { 4.0 } else { 0.5 };
        (rng.gen::<f64>() * rate * 2.0).floor() as f32
    })
}

/// Projecting the reference itself (sparse path) reproduces the stored embeddings
/// (dense scaled data × loadings), and a shuffled gene order gives the same result.
#[test]
fn projection_of_reference_matches_embeddings() {
    let d = counts(90, 40, 7);
    let ds = dataset(&d, ValueKind::Counts);
    let params = ReferencePcaParams::new().n_pcs(5);
    let fitted = params.fit(&ds).unwrap();
    let proj = fitted.project(&ds).unwrap();
    for (x, y) in proj.iter().zip(fitted.embeddings().iter()) {
        assert!((x - y).abs() < 1e-3, "{x} vs {y}");
    }
    let order: Vec<usize> = (0..40).rev().collect();
    let shuffled = ds.select_genes(&order);
    let proj2 = fitted.project(&shuffled).unwrap();
    for (x, y) in proj2.iter().zip(proj.iter()) {
        assert!((x - y).abs() < 1e-4);
    }
}

/// A query lacking a selected feature is an error naming the gene, not a panic.
#[test]
fn missing_feature_is_an_error() {
    let d = counts(60, 12, 8);
    let ds = dataset(&d, ValueKind::Counts);
    let fitted = ReferencePcaParams::new().n_pcs(3).fit(&ds).unwrap();
    let mut query = ds.select_genes(&(0..11).collect::<Vec<_>>());
    query.source = "query.h5ad".into();
    let err = fitted.project(&query).unwrap_err().to_string();
    assert!(err.contains("query.h5ad") && err.contains("g11"), "{err}");
}

/// The sparse, implicitly centred PCA equals the exact truncated SVD of the dense,
/// upper-clipped, never re-centred scaled matrix (Seurat's `ScaleData` + `RunPCA`): same
/// loadings up to 1e-4 in |cos| and the same embeddings, with a low clip so clipping
/// happens. The dense side is written out here: LogNormalize in f64, sd with n − 1,
/// `min(z, scale_max)`, eigenvectors of AᵀA by linfa's `eigh`.
#[test]
fn sparse_pca_matches_dense_scaled_svd() {
    use linfa_linalg::eigh::{EigSort, Eigh};
    let d = counts(150, 60, 11);
    let ds = dataset(&d, ValueKind::Counts);
    let params = ReferencePcaParams::new()
        .n_features(60)
        .n_pcs(6)
        .scale_max(1.0);
    let fitted = params.fit(&ds).unwrap();
    let pos = gene_positions(&ds, fitted.features()).unwrap();
    let n = d.nrows() as f64;
    let mut a = Array2::<f64>::zeros((d.nrows(), pos.len()));
    for i in 0..d.nrows() {
        let total: f64 = d.row(i).iter().map(|&v| v as f64).sum();
        for (c, &j) in pos.iter().enumerate() {
            a[[i, c]] = (d[[i, j]] as f64 * 1e4 / total).ln_1p();
        }
    }
    for mut col in a.columns_mut() {
        let mean = col.sum() / n;
        let sd = (col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        col.mapv_inplace(|v| ((v - mean) / sd).min(1.0));
    }
    assert!(a.iter().any(|&v| v == 1.0), "nothing clipped");
    let (_, vecs) = a.t().dot(&a).eigh().unwrap().sort_eig_desc();
    let emb = a.dot(&vecs.slice(ndarray::s![.., ..6]));
    for c in 0..6 {
        let cos: f64 = (0..pos.len())
            .map(|j| vecs[[j, c]] * fitted.loadings()[[j, c]] as f64)
            .sum();
        assert!((cos.abs() - 1.0).abs() < 1e-4, "PC {c}: |cos| = {cos}");
        let sign = cos.signum();
        for i in 0..d.nrows() {
            let (x, y) = (sign * emb[[i, c]], fitted.embeddings()[[i, c]] as f64);
            assert!((x - y).abs() < 1e-3, "cell {i} PC {c}: {x} vs {y}");
        }
    }
}
