use super::*;
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

/// Jacobi eigen-decomposition reconstructs the matrix and orders eigenvalues descending.
#[test]
fn jacobi_reconstructs() {
    let a = ndarray::array![[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 1.0]];
    let (vals, vecs) = symmetric_eigen(a.clone());
    assert!(vals.windows(2).all(|w| w[0] >= w[1]));
    let d = Array2::from_diag(&ndarray::Array1::from(vals));
    let back = vecs.dot(&d).dot(&vecs.t());
    for (x, y) in back.iter().zip(a.iter()) {
        assert!((x - y).abs() < 1e-10);
    }
}

/// The randomized truncated SVD finds the same leading right singular vectors as an
/// exact eigen-decomposition of AᵀA.
#[test]
fn randomized_svd_matches_exact() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (n, p) = (120, 25);
    let a = Array2::<f32>::from_shape_fn((n, p), |(i, j)| {
        ((i * j) % 7) as f32 * 0.3 + rng.gen_range(-1.0f32..1.0)
    });
    let v = truncated_svd_right(a.view(), 5, 10, 8, 1);
    let a64 = a.mapv(|x| x as f64);
    let (_, exact) = symmetric_eigen(a64.t().dot(&a64));
    for c in 0..5 {
        let dot: f64 = v
            .column(c)
            .iter()
            .zip(exact.column(c).iter())
            .map(|(&x, &y)| x as f64 * y)
            .sum();
        assert!(dot.abs() > 0.999, "component {c}: |cos| = {}", dot.abs());
    }
}

/// LogNormalize follows ln(1 + x/total·1e4) on counts and leaves log-normalized data alone.
#[test]
fn log_normalize_counts_only() {
    let d = ndarray::array![[1.0f32, 3.0], [0.0, 2.0]];
    let ln = log_normalize(&dataset(&d, ValueKind::Counts), 1e4).to_dense();
    assert!((ln[[0, 0]] as f64 - (2500.0f64).ln_1p()).abs() < 1e-4);
    assert!((ln[[1, 1]] as f64 - (1e4f64).ln_1p()).abs() < 1e-3);
    let same = log_normalize(&dataset(&d, ValueKind::LogNormalized), 1e4).to_dense();
    assert_eq!(same, d);
}

/// Projecting the reference itself (sparse path) reproduces the stored embeddings
/// (dense scaled data × loadings), and a shuffled gene order gives the same result.
#[test]
fn projection_of_reference_matches_embeddings() {
    let d = counts(90, 40, 7);
    let ds = dataset(&d, ValueKind::Counts);
    let params = ReferencePcaParams {
        n_pcs: 5,
        ..Default::default()
    };
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
    let fitted = ReferencePcaParams {
        n_pcs: 3,
        ..Default::default()
    }
    .fit(&ds)
    .unwrap();
    let mut query = ds.select_genes(&(0..11).collect::<Vec<_>>());
    query.source = "query.h5ad".into();
    let err = fitted.project(&query).unwrap_err().to_string();
    assert!(err.contains("query.h5ad") && err.contains("g11"), "{err}");
}

/// The sparse, implicitly centred PCA equals a randomized SVD of the dense clipped scaled
/// matrix (the pre-sparse implementation): same loadings up to 1e-4 in |cos| and the same
/// embeddings, with a low clip so the clip correction is exercised.
#[test]
fn sparse_pca_matches_dense_scaled_svd() {
    let d = counts(150, 60, 11);
    let ds = dataset(&d, ValueKind::Counts);
    let params = ReferencePcaParams {
        n_features: 60,
        n_pcs: 6,
        scale_max: 1.0,
        ..Default::default()
    };
    let fitted = params.fit(&ds).unwrap();
    let pos = gene_positions(&ds, fitted.features()).unwrap();
    let x = log_normalize(&ds, 1e4).select_cols(&pos);
    let (mean, var) = column_mean_var(&x);
    let mut dense = x.to_dense();
    for ((_, j), v) in dense.indexed_iter_mut() {
        *v = scale_value(*v, mean[j], var[j].sqrt(), 1.0);
    }
    assert!(dense.iter().any(|&v| v == 1.0), "nothing clipped");
    let v = truncated_svd_right(dense.view(), 6, 30, 20, 42);
    for c in 0..6 {
        let cos: f32 = v.column(c).dot(&fitted.loadings().column(c));
        assert!((cos.abs() - 1.0).abs() < 1e-4, "PC {c}: |cos| = {cos}");
    }
    let emb = dense.dot(&v);
    for (a, b) in emb.iter().zip(fitted.embeddings().iter()) {
        assert!((a - b).abs() < 1e-3, "{a} vs {b}");
    }
}
