//! scrobust's preprocessing against scanpy 1.11.5 (+ scikit-misc 0.5.3 for `seurat_v3`)
//! on the real Kang et al. 2018 PBMC counts (`muscat_kang_pbmc.h5ad`, 1556 × 1267).
//!
//! Reference values came from this Python (venv with scanpy 1.11.5):
//! ```text
//! a = ad.read_h5ad("muscat_kang_pbmc.h5ad")
//! v3 = sc.pp.highly_variable_genes(a, flavor="seurat_v3", n_top_genes=500, inplace=False)
//! sc.pp.normalize_total(a, target_sum=1e4); sc.pp.log1p(a)
//! X = a.X.tocsr(); print(", ".join("%.7f" % v for v in X.data[::20000]))      # LOGNORM_SAMPLE
//! s = sc.pp.highly_variable_genes(a, flavor="seurat", n_top_genes=500, inplace=False)
//! # fixtures/kang_hvg_seurat500.txt, kang_hvg_seurat_v3_500.txt: np.flatnonzero(...highly_variable)
//! b = a[:, s.highly_variable].copy(); sc.pp.scale(b, max_value=10); sc.pp.pca(b, n_comps=50)
//! # fixtures/kang_pca_ratio50.txt: b.uns["pca"]["variance_ratio"] ("%.9f")
//! # fixtures/kang_pca_loadings10_i16.bin: np.round(b.varm["PCs"][:, :10].T * 32767).astype("<i2")
//! ```
//! It printed: 500 genes for both flavors; variance ratios starting 0.10591004,
//! 0.04579082, 0.02395088 (sum of 50: 0.39681377).

use ndarray::{Array2, Axis};
use scrobust::data::CsrMatrix;
use scrobust::pp::{log1p, normalize_total, HvgFlavor, HvgParams, Pca, Scaler};
use std::path::PathBuf;

mod common;
use common::data_dir;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Kang counts read straight from the h5ad's CSR arrays.
fn kang_counts() -> CsrMatrix {
    let path = data_dir().join("muscat_kang_pbmc.h5ad");
    let file = hdf5::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let x = file.group("X").unwrap();
    let shape: Vec<i64> = x.attr("shape").unwrap().read_raw().unwrap();
    let data: Vec<f32> = x.dataset("data").unwrap().read_raw().unwrap();
    let indices: Vec<i32> = x.dataset("indices").unwrap().read_raw().unwrap();
    let indptr: Vec<i32> = x.dataset("indptr").unwrap().read_raw().unwrap();
    CsrMatrix::new(
        shape[0] as usize,
        shape[1] as usize,
        indptr.iter().map(|&v| v as usize).collect(),
        indices.iter().map(|&v| v as u32).collect(),
        data,
        "muscat_kang_pbmc.h5ad",
    )
    .unwrap()
}

fn read_list<T: std::str::FromStr>(name: &str) -> Vec<T> {
    std::fs::read_to_string(fixture(name))
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn agreement(ours: &[usize], theirs: &[usize]) -> f64 {
    let common = ours.iter().filter(|g| theirs.contains(g)).count();
    common as f64 / theirs.len() as f64
}

const LOGNORM_SAMPLE: [f64; 30] = [
    3.3663309, 3.4686856, 2.5111120, 1.9969730, 2.3570950, 2.7403724, 3.7907598, 1.6863012,
    2.2639160, 1.4933190, 3.8949602, 2.2787271, 2.1469343, 2.1915557, 2.8811638, 3.6031659,
    1.6609657, 2.5586953, 2.5843675, 1.9708331, 3.0794706, 3.8358095, 1.4832294, 1.5271215,
    3.4262772, 3.5246797, 1.6091181, 2.4630990, 2.3459196, 1.4404719,
];

/// normalize_total + log1p reproduce scanpy's values (max abs diff over a sample of
/// every 20000th stored value), HVG `seurat` and `seurat_v3` (500 genes) agree with
/// scanpy on ≥ 95% of genes, and PCA on the scaled `seurat` HVG matches scanpy's
/// variance ratios within 1e-3 with a principal angle under 0.02 rad between the
/// first 10 components' subspaces.
#[test]
fn kang_chain_matches_scanpy() {
    let counts = kang_counts();
    let lognorm = log1p(&normalize_total(&counts, 1e4));
    let max_diff = lognorm
        .data()
        .iter()
        .step_by(20000)
        .zip(LOGNORM_SAMPLE)
        .map(|(&a, b)| (a as f64 - b).abs())
        .fold(0.0f64, f64::max);
    eprintln!("lognorm max abs diff vs scanpy: {max_diff:e}");
    assert!(max_diff < 1e-5, "lognorm differs from scanpy by {max_diff}");

    let v3 = HvgParams::new()
        .flavor(HvgFlavor::SeuratV3)
        .n_top_genes(Some(500))
        .fit(&counts)
        .unwrap();
    let v3_ref: Vec<usize> = read_list("kang_hvg_seurat_v3_500.txt");
    let v3_agree = agreement(v3.selected(), &v3_ref);
    eprintln!(
        "seurat_v3 HVG agreement: {v3_agree} ({} selected)",
        v3.n_selected()
    );
    assert!(v3_agree >= 0.95);

    let hvg = HvgParams::new()
        .n_top_genes(Some(500))
        .fit(&lognorm)
        .unwrap();
    let s_ref: Vec<usize> = read_list("kang_hvg_seurat500.txt");
    let s_agree = agreement(hvg.selected(), &s_ref);
    eprintln!(
        "seurat HVG agreement: {s_agree} ({} selected)",
        hvg.n_selected()
    );
    assert!(s_agree >= 0.95);

    // PCA on scanpy's own gene set so the comparison isolates scale + PCA.
    let scaled = {
        let sub = lognorm.select_cols(&s_ref);
        let scaler = Scaler::new().fit_sparse(&sub).unwrap();
        scaler.transform_sparse(&sub).unwrap()
    };
    let pca = Pca::new().n_components(50).fit(scaled.view()).unwrap();
    let ratio_ref: Vec<f64> = read_list("kang_pca_ratio50.txt");
    let ratio_diff = pca
        .explained_variance_ratio()
        .iter()
        .zip(&ratio_ref)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f64, f64::max);
    eprintln!("PCA variance ratio max abs diff: {ratio_diff:e}");
    assert!(ratio_diff < 1e-3);

    let raw = std::fs::read(fixture("kang_pca_loadings10_i16.bin")).unwrap();
    let theirs = Array2::from_shape_vec(
        (10, s_ref.len()),
        raw.chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]) as f64 / 32767.0)
            .collect(),
    )
    .unwrap();
    let ours = pca
        .components()
        .slice(ndarray::s![..10, ..])
        .mapv(|v| v as f64);
    // Cosines of the principal angles are the singular values of ours · theirsᵀ
    // (rows re-normalized after quantization).
    let norm = |m: Array2<f64>| {
        let n = m.map_axis(Axis(1), |r| r.dot(&r).sqrt());
        &m / &n.insert_axis(Axis(1))
    };
    let m = norm(ours).dot(&norm(theirs).t());
    let gram = m.dot(&m.t());
    use linfa_linalg::eigh::Eigh;
    let (vals, _) = gram.eigh().unwrap();
    let min_cos = vals
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .max(0.0)
        .sqrt()
        .min(1.0);
    let angle = min_cos.acos();
    eprintln!("largest principal angle, first 10 PCs: {angle:e} rad");
    assert!(angle < 0.02);
}
