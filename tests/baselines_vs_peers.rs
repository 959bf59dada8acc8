//! The baselines on the shared real data sets, on exactly the reference/query cells that
//! the peer tools used (`splits/<task>/`), compared with their predictions
//! (`peers/<task>/*.csv`): Seurat 4.3 label transfer with v5 defaults (k.filter = NA),
//! L1 logistic regression with C by 5-fold CV, and kNN (k = 15) on 30 reference PCs.
//! Accuracy is computed on query cells whose true label is a reference class; the number
//! skipped is printed. Run with `--nocapture` to see the numbers.

use scrobust::baseline::AnnoyParams;
use scrobust::baseline::NeighborMethod;
use scrobust::baseline::{fit_predict, BaselineMethod, SeuratParams};
use scrobust::data::h5ad::{read_h5ad, ReadOptions};
use scrobust::data::{Dataset, Labels};
use scrobust::eval::Prediction;
use scrobust::traits::Fit;
use std::collections::HashMap;

mod common;
use common::data_dir;

struct Task {
    reference: Dataset,
    ref_labels: Labels,
    query: Dataset,
    truth: Vec<String>,
}

fn read(file: &str, use_raw: bool) -> Dataset {
    let path = data_dir().join(file);
    read_h5ad(
        &path,
        &ReadOptions {
            use_raw,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn cells(task: &str, which: &str) -> Vec<String> {
    let path = data_dir().join("splits").join(task).join(which);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

fn select(ds: &Dataset, ids: &[String]) -> Dataset {
    let pos: HashMap<&str, usize> = ds
        .cell_ids
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let rows: Vec<usize> = ids
        .iter()
        .map(|c| {
            *pos.get(c.as_str())
                .unwrap_or_else(|| panic!("cell {c} missing"))
        })
        .collect();
    ds.select_cells(&rows)
}

fn label_strings(ds: &Dataset, key: &str) -> Vec<String> {
    let l = ds.labels(key).unwrap_or_else(|e| panic!("{e}"));
    (0..l.len())
        .map(|i| l.name(i).unwrap_or("").to_string())
        .collect()
}

fn load(task: &str) -> Task {
    let (reference, query, key) = match task {
        "kang" => {
            let d = read("muscat_kang_pbmc.h5ad", false);
            (
                select(&d, &cells(task, "ref_cells.txt")),
                select(&d, &cells(task, "query_cells.txt")),
                "label",
            )
        }
        "cbmc" => {
            let d = read("scdcc_cite_cbmc_top2000.h5ad", false);
            (
                select(&d, &cells(task, "ref_cells.txt")),
                select(&d, &cells(task, "query_cells.txt")),
                "label",
            )
        }
        "soupx" => {
            let d = read("soupx_pbmc4k_subset.h5ad", false);
            (
                select(&d, &cells(task, "ref_cells.txt")),
                select(&d, &cells(task, "query_cells.txt")),
                "label",
            )
        }
        "pbmc68k" => {
            let d = read("scanpy_pbmc68k_reduced.h5ad", true);
            (
                select(&d, &cells(task, "ref_cells.txt")),
                select(&d, &cells(task, "query_cells.txt")),
                "bulk_labels",
            )
        }
        "pancreas_xin_wang" => {
            let r = read("scclassify_xin_ref.h5ad", false);
            let q = read("scclassify_wang_query.h5ad", false);
            // Both restricted to the shared genes, in the query's order.
            let rpos: HashMap<&str, usize> = r
                .gene_names
                .iter()
                .enumerate()
                .map(|(i, g)| (g.as_str(), i))
                .collect();
            let (mut rc, mut qc) = (vec![], vec![]);
            for (j, g) in q.gene_names.iter().enumerate() {
                if let Some(&i) = rpos.get(g.as_str()) {
                    rc.push(i);
                    qc.push(j);
                }
            }
            (r.select_genes(&rc), q.select_genes(&qc), "label")
        }
        other => panic!("unknown task {other}"),
    };
    let ref_labels = Labels::from_strings(&label_strings(&reference, key));
    let truth = label_strings(&query, key);
    Task {
        reference,
        ref_labels,
        query,
        truth,
    }
}

/// Peer predictions: cell id → predicted label (CSV with optional quotes).
fn peer(task: &str, file: &str) -> HashMap<String, String> {
    let path = data_dir().join("peers").join(task).join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<String> = l
                .split(',')
                .map(|s| s.trim_matches('"').to_string())
                .collect();
            (f[0].clone(), f[2].clone())
        })
        .collect()
}

/// (accuracy on cells with a reference class, cells skipped, agreement with the peer on all cells)
fn evaluate(task: &Task, method: BaselineMethod, peer_file: &str, name: &str) -> (f64, usize, f64) {
    let t0 = std::time::Instant::now();
    let pred = fit_predict(method, &task.reference, &task.ref_labels, &task.query, 0)
        .unwrap_or_else(|e| panic!("{e}"));
    let secs = t0.elapsed().as_secs_f64();
    score(task, &pred, peer_file, name, method.as_str(), secs)
}

/// Accuracy, cells skipped and agreement with the peer of a prediction on `task`.
fn score(
    task: &Task,
    pred: &Prediction,
    peer_file: &str,
    name: &str,
    what: &str,
    secs: f64,
) -> (f64, usize, f64) {
    let known: std::collections::HashSet<&str> = pred.classes.iter().map(String::as_str).collect();
    let (mut hits, mut scored) = (0, 0);
    for (i, t) in task.truth.iter().enumerate() {
        if known.contains(t.as_str()) {
            scored += 1;
            hits += usize::from(pred.label(i) == t);
        }
    }
    let peers = peer(name, peer_file);
    let agree = task
        .query
        .cell_ids
        .iter()
        .enumerate()
        .filter(|(i, c)| peers.get(c.as_str()).map(String::as_str) == Some(pred.label(*i)))
        .count();
    let acc = hits as f64 / scored as f64;
    let agreement = agree as f64 / task.query.n_obs() as f64;
    let skipped = task.truth.len() - scored;
    println!(
        "{name:>18} {what:>8}: accuracy {acc:.3} ({scored} scored, {skipped} skipped: unknown labels), agreement with {peer_file} {agreement:.3}, {secs:.2} s"
    );
    (acc, skipped, agreement)
}

/// Seurat v5 label transfer reproduces Seurat's predictions on the same cells: accuracy
/// within 1.5 points of Seurat (k.filter = NA) and ≥ 95% identical predicted labels,
/// except kang, where exact neighbours (the default) are allowed 2 points.
/// (pbmc68k, 140 query cells with few anchors per class, is the task that exposed that
/// Seurat weights only the first k.weight anchors, see `label_transfer.rs`.)
/// Why 2 points on kang: Seurat finds neighbours with Annoy (approximate), this crate
/// exactly by default (the next test holds the Annoy-like option to 1.5 points). On
/// kang, Seurat's own embedding with exact anchors and Seurat's weighting gives 0.823
/// instead of Seurat's 0.809 (measured with Seurat 4.3.0 from Debian's r-cran-seurat and
/// a numpy re-implementation); with Annoy's neighbours the weights match Seurat's to 1e-15.
#[test]
fn seurat_matches_seurat_on_all_tasks() {
    let expected = [
        ("kang", 0.809),
        ("cbmc", 0.914),
        ("soupx", 0.974),
        ("pbmc68k", 0.821),
        ("pancreas_xin_wang", 1.000),
    ];
    let mut failures = vec![];
    for (name, peer_acc) in expected {
        let task = load(name);
        let (acc, skipped, agreement) =
            evaluate(&task, BaselineMethod::Seurat, "seurat_kfNA.csv", name);
        if name == "pancreas_xin_wang" {
            assert_eq!(
                skipped, 146,
                "the wang query has 146 cells of classes absent from xin"
            );
        }
        let acc_tol = if name == "kang" { 0.02 } else { 0.015 };
        let min_agreement = 0.95;
        if (acc - peer_acc).abs() > acc_tol || agreement < min_agreement {
            failures.push(format!(
                "{name}: accuracy {acc:.3} vs Seurat {peer_acc:.3}, agreement {agreement:.3}"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}

/// With approximate neighbours, as Seurat itself searches (`--nn annoy`, 50 trees, seed 42
/// by default), kang lands within the 1.5 points of Seurat with ≥ 95% identical
/// labels (measured: 0.813 vs 0.809, agreement 0.991; the CLI with its own seed gave 0.816).
#[test]
fn seurat_with_annoy_neighbours_matches_seurat_on_kang() {
    let task = load("kang");
    let params = SeuratParams::new().neighbors(NeighborMethod::Annoy(AnnoyParams::default()));
    let t0 = std::time::Instant::now();
    let result = params
        .fit(&task.reference, &task.ref_labels)
        .and_then(|r| r.transfer(&task.query))
        .unwrap_or_else(|e| panic!("{e}"));
    let secs = t0.elapsed().as_secs_f64();
    let (acc, _, agreement) = score(
        &task,
        &result.prediction,
        "seurat_kfNA.csv",
        "kang",
        "annoy",
        secs,
    );
    assert!(
        (acc - 0.809).abs() <= 0.015 && agreement >= 0.95,
        "kang with annoy: accuracy {acc:.3} vs Seurat 0.809, agreement {agreement:.3}"
    );
}

/// kNN and logistic regression land near the peers' numbers (same recipe, different
/// implementations of PCA and of the L1 solver): within 3 points of kNN-15 and within 4
/// points of L1-LR accuracy. cbmc (both) and soupx (LR: 50 s at the test opt-level) are
/// left out to keep the suite short.
#[test]
fn knn_and_logistic_near_peers() {
    let knn = [
        ("kang", 0.747),
        ("soupx", 0.972),
        ("pbmc68k", 0.864),
        ("pancreas_xin_wang", 1.000),
    ];
    let lr = [
        ("kang", 0.909),
        ("pbmc68k", 0.850),
        ("pancreas_xin_wang", 0.992),
    ];
    let mut failures = vec![];
    for (name, knn_acc) in knn {
        let task = load(name);
        let (acc, _, _) = evaluate(&task, BaselineMethod::Knn, "knn.csv", name);
        if (acc - knn_acc).abs() > 0.03 {
            failures.push(format!("{name} knn: {acc:.3} vs {knn_acc:.3}"));
        }
        let Some(&(_, lr_acc)) = lr.iter().find(|(n, _)| *n == name) else {
            continue;
        };
        let (acc, _, _) = evaluate(&task, BaselineMethod::Logistic, "lr.csv", name);
        if (acc - lr_acc).abs() > 0.04 {
            failures.push(format!("{name} logistic: {acc:.3} vs {lr_acc:.3}"));
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}

/// Runs the `scrobust` binary; returns (exit code, stdout, stderr).
fn scrobust(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scrobust"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run scrobust: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `scrobust transfer` end to end on kang, split from one file by batch (`ctrl:*` is the
/// reference): the JSON has the docs/design.md classification fields and Seurat-mode accuracy
/// within 2 points of Seurat's 0.809 (exact vs Annoy neighbours, see above); the CSV has the contract header and one row per
/// query cell; the annotated query h5ad reads back with `predicted_label` (categorical)
/// and `prediction_score` (float) matching the CSV.
#[test]
fn transfer_cli_end_to_end_on_kang() {
    use scrobust::data::Column;
    let data = data_dir().join("muscat_kang_pbmc.h5ad");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let csv = dir.path().join("P.csv");
    let h5 = dir.path().join("Q.h5ad");
    let (code, stdout, stderr) = scrobust(&[
        "transfer",
        "--data",
        data.to_str().unwrap_or_default(),
        "--split-key",
        "batch",
        "--reference-values",
        "ctrl:*",
        "--label-key",
        "label",
        "--method",
        "seurat",
        "--json",
        "--out",
        csv.to_str().unwrap_or_default(),
        "--out-h5ad",
        h5.to_str().unwrap_or_default(),
    ]);
    assert_eq!(code, 0, "stderr: {stderr}");
    let json: serde_json::Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    for key in [
        "method",
        "n_reference",
        "n_query",
        "accuracy",
        "macro_f1",
        "per_class",
        "seconds",
    ] {
        assert!(json.get(key).is_some(), "JSON lacks '{key}': {json}");
    }
    assert_eq!(json["method"], "seurat");
    // Kang holds raw counts: detected as such for both sides and said in the JSON.
    assert_eq!(json["value_kind"]["reference"], "counts");
    assert_eq!(json["value_kind"]["query"], "counts");
    let per_class = json["per_class"].as_array().cloned().unwrap_or_default();
    assert_eq!(per_class.len(), 5, "{json}");
    for c in &per_class {
        for key in [
            "precision",
            "recall",
            "f1",
            "support",
            "predicted_share",
            "true_share",
        ] {
            assert!(c.get(key).is_some(), "per_class entry lacks '{key}': {c}");
        }
    }
    let accuracy = json["accuracy"].as_f64().unwrap_or(f64::NAN);
    assert!((accuracy - 0.809).abs() <= 0.02, "accuracy {accuracy}");
    let n_query = json["n_query"].as_u64().unwrap_or(0) as usize;
    let n_reference = json["n_reference"].as_u64().unwrap_or(0) as usize;
    let task_query = cells("kang", "query_cells.txt");
    assert_eq!(n_query, task_query.len());
    assert_eq!(n_reference, cells("kang", "ref_cells.txt").len());

    let text = std::fs::read_to_string(&csv).unwrap_or_else(|e| panic!("{e}"));
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("cell_id,true_label,predicted_label,score")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), n_query);
    assert!(rows.iter().all(|r| r.len() == 4), "every row has 4 fields");

    let back = read_h5ad(&h5, &ReadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back.n_obs(), n_query);
    let predicted = back
        .column("predicted_label")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(predicted, Column::Categorical { .. }));
    assert!(matches!(
        back.column("prediction_score")
            .unwrap_or_else(|e| panic!("{e}")),
        Column::Float(_)
    ));
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r[0], back.cell_ids[i]);
        assert_eq!(Some(r[2].to_string()), predicted.get_str(i));
    }
}

/// Bad input through the CLI exits with code 2 (never 101, a panic) and says what is
/// wrong: a missing file is named; a missing label column lists the columns that exist;
/// an unknown split value lists the values present.
#[test]
fn transfer_cli_bad_input() {
    let data = data_dir().join("muscat_kang_pbmc.h5ad");
    let data = data.to_str().unwrap_or_default();
    let base = ["transfer", "--method", "knn", "--split-key", "batch"];
    let (code, _, stderr) = scrobust(
        &[
            &base[..],
            &[
                "--data",
                "no_such_file.h5ad",
                "--reference-values",
                "ctrl:*",
                "--label-key",
                "label",
            ],
        ]
        .concat(),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no_such_file.h5ad"), "{stderr}");

    let (code, _, stderr) = scrobust(
        &[
            &base[..],
            &[
                "--data",
                data,
                "--reference-values",
                "ctrl:*",
                "--label-key",
                "celltype",
            ],
        ]
        .concat(),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("celltype")
            && stderr.contains("available columns")
            && stderr.contains("label"),
        "{stderr}"
    );

    let (code, _, stderr) = scrobust(
        &[
            &base[..],
            &[
                "--data",
                data,
                "--reference-values",
                "ctrl",
                "--label-key",
                "label",
            ],
        ]
        .concat(),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("values present"), "{stderr}");

    let (code, _, stderr) = scrobust(&[
        "transfer",
        "--data",
        data,
        "--split",
        "stratified",
        "--train-fraction",
        "1.5",
        "--label-key",
        "label",
        "--method",
        "knn",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("train-fraction"), "{stderr}");
}
