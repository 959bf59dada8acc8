//! Every real data set in the shared data folder loads with the shapes, label counts
//! and value kinds of its README table; the fixed splits resolve against their files;
//! `scrobust inspect --json` reports the contract fields; python anndata opens what we
//! write.

use scrobust::data::h5ad::{read_h5ad, ReadOptions};
use scrobust::data::{Dataset, ValueKind};
use std::collections::BTreeMap;
use std::path::PathBuf;

mod common;
use common::data_dir;

fn load(name: &str, use_raw: bool) -> Dataset {
    let path = data_dir().join(name);
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
    assert_eq!(ds.value_kind, ValueKind::Scaled);
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

/// Task name, source file (reference, query), label column, read raw.
const TASKS: &[(&str, &str, &str, &str, bool)] = &[
    (
        "kang",
        "muscat_kang_pbmc.h5ad",
        "muscat_kang_pbmc.h5ad",
        "label",
        false,
    ),
    (
        "pancreas_xin_wang",
        "scclassify_xin_ref.h5ad",
        "scclassify_wang_query.h5ad",
        "label",
        false,
    ),
    (
        "cbmc",
        "scdcc_cite_cbmc_top2000.h5ad",
        "scdcc_cite_cbmc_top2000.h5ad",
        "label",
        false,
    ),
    (
        "soupx",
        "soupx_pbmc4k_subset.h5ad",
        "soupx_pbmc4k_subset.h5ad",
        "label",
        false,
    ),
    (
        "pbmc68k",
        "scanpy_pbmc68k_reduced.h5ad",
        "scanpy_pbmc68k_reduced.h5ad",
        "bulk_labels",
        true,
    ),
];

fn json_counts(v: &serde_json::Value) -> BTreeMap<String, usize> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, n)| (k.clone(), n.as_u64().unwrap() as usize))
        .collect()
}

/// Every fixed split's cell lists resolve against its file(s), with the sizes, label
/// counts, value kind and gene count recorded in its info.json.
#[test]
fn fixed_splits_resolve() {
    use scrobust::data::split::{align_genes, read_cell_list, split_by_cell_ids};
    let root = data_dir();
    for &(task, ref_file, query_file, label_key, use_raw) in TASKS {
        let dir = root.join("splits").join(task);
        let info: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("info.json")).unwrap()).unwrap();
        let ref_ids = read_cell_list(&dir.join("ref_cells.txt")).unwrap_or_else(|e| panic!("{e}"));
        let query_ids =
            read_cell_list(&dir.join("query_cells.txt")).unwrap_or_else(|e| panic!("{e}"));
        let ref_ds = load(ref_file, use_raw);
        let (reference, query) = if ref_file == query_file {
            let (r, q) = split_by_cell_ids(&ref_ds, &ref_ids, &query_ids)
                .unwrap_or_else(|e| panic!("{task}: {e}"));
            (ref_ds.select_cells(&r), ref_ds.select_cells(&q))
        } else {
            let query_ds = load(query_file, use_raw);
            let (r, _) =
                split_by_cell_ids(&ref_ds, &ref_ids, &[]).unwrap_or_else(|e| panic!("{task}: {e}"));
            let (_, q) = split_by_cell_ids(&query_ds, &[], &query_ids)
                .unwrap_or_else(|e| panic!("{task}: {e}"));
            let (reference, query, alignment) =
                align_genes(&ref_ds.select_cells(&r), &query_ds.select_cells(&q)).unwrap();
            assert_eq!(
                alignment.n_shared as u64,
                info["shared_genes"].as_u64().unwrap(),
                "{task}"
            );
            (reference, query)
        };
        assert_eq!(
            reference.n_obs() as u64,
            info["n_ref"].as_u64().unwrap(),
            "{task}"
        );
        assert_eq!(
            query.n_obs() as u64,
            info["n_query"].as_u64().unwrap(),
            "{task}"
        );
        assert_eq!(
            reference.n_vars() as u64,
            info["n_genes"].as_u64().unwrap(),
            "{task}"
        );
        assert_eq!(
            label_counts(&reference, label_key),
            json_counts(&info["ref_label_counts"]),
            "{task}"
        );
        assert_eq!(
            label_counts(&query, label_key),
            json_counts(&info["query_label_counts"]),
            "{task}"
        );
        let want_kind = if info["is_counts"].as_bool().unwrap() {
            ValueKind::Counts
        } else {
            ValueKind::LogNormalized
        };
        assert_eq!(reference.value_kind, want_kind, "{task}");
    }
}

/// The kang rule "ref = batch ctrl:*" reproduces the fixed reference list exactly.
#[test]
fn kang_split_by_batch_prefix() {
    use scrobust::data::split::{read_cell_list, split_by_values};
    let ds = load("muscat_kang_pbmc.h5ad", false);
    let (r, q) = split_by_values(&ds, "batch", &["ctrl:*".to_string()]).unwrap();
    let mut got: Vec<&str> = r.iter().map(|&i| ds.cell_ids[i].as_str()).collect();
    let mut want = read_cell_list(&data_dir().join("splits/kang/ref_cells.txt")).unwrap();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);
    assert_eq!(q.len(), 806);
}

/// `scrobust inspect --json` prints the contract fields; a missing file exits with 2.
#[test]
fn cli_inspect_json() {
    let bin = env!("CARGO_BIN_EXE_scrobust");
    let file = data_dir().join("muscat_kang_pbmc.h5ad");
    let out = std::process::Command::new(bin)
        .args(["inspect", "--label-key", "label", "--json"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is one JSON object");
    assert_eq!(v["n_obs"], 1556);
    assert_eq!(v["n_vars"], 1267);
    assert_eq!(v["value_kind"], "counts");
    assert_eq!(v["obs_columns"], serde_json::json!(["label", "batch"]));
    assert_eq!(v["label_counts"]["B cells"], 298);
    assert_eq!(v["file"], file.display().to_string());

    let out = std::process::Command::new(bin)
        .args(["inspect", "/nonexistent/none.h5ad"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("none.h5ad"),
        "{err}"
    );
}

/// A Python interpreter with anndata: `SCROBUST_PYTHON` if set, otherwise a throwaway
/// venv in `dir` with anndata installed by pip. `None` when there is no `python3`.
fn python_with_anndata() -> Option<PathBuf> {
    // Nothing is installed here: scripts/setup.sh puts anndata into .venv-tools.
    let python = std::env::var_os("SCROBUST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-tools/bin/python")
        });
    let ok = std::process::Command::new(&python)
        .args(["-c", "import anndata"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!(
            "SKIPPED anndata_reads_our_h5ad: {} has no anndata (run scripts/setup.sh, or set SCROBUST_PYTHON)",
            python.display()
        );
        return None;
    }
    Some(python)
}

/// python `anndata.read_h5ad` opens a file written by our writer: same shape, X sum,
/// label categories and counts, var names and obsm.
#[test]
fn anndata_reads_our_h5ad() {
    let dir = tempfile::tempdir().unwrap();
    let Some(python) = python_with_anndata() else {
        return;
    };
    let ds = load("muscat_kang_pbmc.h5ad", false);
    let mut ds = ds.select_cells(&(0..200).collect::<Vec<_>>());
    ds.obsm.push((
        "X_toy".into(),
        ndarray::Array2::from_shape_fn((200, 3), |(i, j)| (i * 3 + j) as f32),
    ));
    let path = dir.path().join("ours.h5ad");
    scrobust::data::h5ad::write_h5ad(&ds, &path).unwrap();
    let script = r#"
import sys, json, anndata
a = anndata.read_h5ad(sys.argv[1])
print(json.dumps({
    "shape": list(a.shape),
    "x_sum": float(a.X.sum()),
    "categories": [str(c) for c in a.obs["label"].cat.categories],
    "label_counts": {str(k): int(v) for k, v in a.obs["label"].value_counts().items() if v > 0},
    "var_names": [str(v) for v in a.var_names],
    "obs_names_head": [str(v) for v in a.obs_names[:3]],
    "obsm_sum": float(a.obsm["X_toy"].sum()),
}))
"#;
    let out = std::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "anndata could not read our file:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["shape"], serde_json::json!([200, 1267]));
    let x_sum: f64 = ds.x.data().iter().map(|&x| x as f64).sum();
    assert!(
        (v["x_sum"].as_f64().unwrap() - x_sum).abs() < 1e-3 * x_sum,
        "{} vs {x_sum}",
        v["x_sum"]
    );
    let labels = ds.labels("label").unwrap();
    assert_eq!(v["categories"], serde_json::json!(labels.classes));
    assert_eq!(json_counts(&v["label_counts"]), label_counts(&ds, "label"));
    assert_eq!(v["var_names"], serde_json::json!(ds.gene_names));
    assert_eq!(v["obs_names_head"], serde_json::json!(ds.cell_ids[..3]));
    assert_eq!(
        v["obsm_sum"].as_f64().unwrap(),
        (0..600).sum::<usize>() as f64
    );
}
