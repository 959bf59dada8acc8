//! Every real data set in the shared data folder loads with the shapes, label counts
//! and value kinds of its README table; the fixed splits resolve against their files;
//! `scrobust inspect --json` reports the contract fields; python anndata opens what we
//! write.

use scrobust::data::h5ad::{read_h5ad, ReadOptions};
use scrobust::data::{Dataset, ValueKind};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The shared data folder (`SCROBUST_SHARED_DATA`, default `../shared/data`); panics
/// when it is absent so that these tests never pass vacuously.
fn shared_data_dir() -> PathBuf {
    let dir = std::env::var_os("SCROBUST_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    assert!(
        dir.is_dir(),
        "shared data folder {} not found: set SCROBUST_SHARED_DATA to the folder holding the h5ad files",
        dir.display()
    );
    dir
}

fn load(name: &str, use_raw: bool) -> Dataset {
    let path = shared_data_dir().join(name);
    read_h5ad(
        &path,
        &ReadOptions {
            use_raw,
            value_kind: None,
        },
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn label_counts(ds: &Dataset, key: &str) -> BTreeMap<String, usize> {
    let labels = ds.labels(key).unwrap_or_else(|e| panic!("{e}"));
    labels
        .classes
        .iter()
        .cloned()
        .zip(labels.counts())
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn counts_of(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Kang PBMC: shape, the five label counts, raw counts detected.
#[test]
fn kang_loads() {
    let ds = load("muscat_kang_pbmc.h5ad", false);
    assert_eq!(ds.x.shape(), (1556, 1267));
    assert_eq!(
        label_counts(&ds, "label"),
        counts_of(&[
            ("CD14+ Monocytes", 400),
            ("CD4 T cells", 400),
            ("B cells", 298),
            ("FCGR3A+ Monocytes", 249),
            ("CD8 T cells", 209)
        ])
    );
    assert_eq!(ds.value_kind, ValueKind::Counts);
    assert_eq!(ds.obs_columns(), vec!["label", "batch"]);
}

/// The other modern-encoding files: shapes, label counts and value kinds from the README.
#[test]
fn modern_files_load() {
    let xin = load("scclassify_xin_ref.h5ad", false);
    assert_eq!(xin.x.shape(), (674, 980));
    assert_eq!(xin.value_kind, ValueKind::LogNormalized);
    assert_eq!(
        label_counts(&xin, "label"),
        counts_of(&[("alpha", 285), ("beta", 261), ("gamma", 79), ("delta", 49)])
    );

    let wang = load("scclassify_wang_query.h5ad", false);
    assert_eq!(wang.x.shape(), (501, 219));
    assert_eq!(wang.value_kind, ValueKind::LogNormalized);
    assert_eq!(
        label_counts(&wang, "label"),
        counts_of(&[
            ("alpha", 206),
            ("beta", 118),
            ("ductal", 96),
            ("stellate", 45),
            ("gamma", 21),
            ("delta", 10),
            ("acinar", 5)
        ])
    );

    let cbmc = load("scdcc_cite_cbmc_top2000.h5ad", false);
    assert_eq!(cbmc.x.shape(), (8617, 2000));
    assert_eq!(cbmc.value_kind, ValueKind::Counts);
    let counts = label_counts(&cbmc, "label");
    assert_eq!(counts.len(), 15);
    assert_eq!(counts.values().max(), Some(&2293));
    assert_eq!(counts.values().min(), Some(&49));

    let soupx = load("soupx_pbmc4k_subset.h5ad", false);
    assert_eq!(soupx.x.shape(), (2170, 33694));
    assert_eq!(soupx.value_kind, ValueKind::Counts);
    assert_eq!(
        label_counts(&soupx, "label"),
        counts_of(&[
            ("T_CD4", 643),
            ("MNP", 597),
            ("T_CD8", 405),
            ("B", 296),
            ("NK", 209),
            ("?", 20)
        ])
    );

    let cider = load("cider_baron_pancreas_toy.h5ad", false);
    assert_eq!(cider.x.shape(), (350, 12474));
    assert_eq!(cider.value_kind, ValueKind::Counts);
    let counts = label_counts(&cider, "label");
    assert_eq!(counts.len(), 5);
    assert!(counts.values().all(|&n| n == 70), "{counts:?}");
}

/// The legacy (anndata < 0.7) pbmc68k file: compound obs with categories in uns, the
/// scaled X and the log-normalized raw.X.
#[test]
fn pbmc68k_legacy_loads() {
    let ds = load("scanpy_pbmc68k_reduced.h5ad", false);
    assert_eq!(ds.x.shape(), (700, 765));
    assert_eq!(ds.value_kind, ValueKind::LogNormalized);
    let counts = label_counts(&ds, "bulk_labels");
    assert_eq!(counts.len(), 10);
    assert_eq!(counts["Dendritic"], 240);
    assert_eq!(counts["CD4+/CD45RA+/CD25- Naive T"], 8);
    assert_eq!(ds.cell_ids[0], "AAAGCCTGGCTAAC-1");
    assert_eq!(
        ds.gene_names[..2],
        ["HES4".to_string(), "TNFRSF4".to_string()]
    );

    let raw = load("scanpy_pbmc68k_reduced.h5ad", true);
    assert_eq!(raw.x.shape(), (700, 765));
    assert_eq!(raw.value_kind, ValueKind::LogNormalized);
    assert!(raw.x.data().iter().all(|&v| v >= 0.0));
    // Row sums of the first three cells (python: a.raw.X[:3].toarray().sum(1)).
    let sums = raw.x.row_sums();
    for (got, want) in sums.iter().zip([456.883, 470.95, 461.37698]) {
        assert!((got - want).abs() < 1e-2, "{got} vs {want}");
    }
    scrobust::data::h5ad::validate(&raw, raw.value_kind).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        scrobust::data::h5ad::validate(&ds, ds.value_kind).is_err(),
        "scaled X must be refused for analysis"
    );
}
