//! Cross-check of `scrobust::eval::metrics::evaluate` against scikit-learn 1.x on peer
//! prediction files from the shared data folder (`peers/<task>/*.csv`, columns
//! `cell,true,pred[,score]`).
//!
//! Reference numbers: /work/venv-ref python, run inside `data/peers`:
//! ```python
//! import pandas as pd
//! from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
//! for path, known in [("cbmc/seurat_kfNA.csv", None),
//!                     ("pancreas_xin_wang/seurat_kfNA.csv", ["alpha", "beta", "gamma", "delta"]),
//!                     ("pbmc68k/knn.csv", None)]:
//!     d = pd.read_csv(path, dtype=str)
//!     n_all = len(d)
//!     if known is not None:
//!         d = d[d["true"].isin(known)]
//!     y, p = d["true"], d["pred"]
//!     labels = sorted(y.unique())
//!     print(path, len(d), n_all - len(d), sorted(set(p) - set(y)))
//!     print(repr(accuracy_score(y, p)))
//!     print(repr(f1_score(y, p, average="macro", labels=labels, zero_division=0)))
//!     print(repr(f1_score(y, p, average="weighted", zero_division=0)))
//!     pr, rc, f, s = precision_recall_fscore_support(y, p, labels=labels, zero_division=0)
//!     for l, a, b, c, n in zip(labels, pr, rc, f, s):
//!         print(f'("{l}", {a!r}, {b!r}, {c!r}, {n}),')
//! ```
//! Its printed numbers are the constants below.

use scrobust::eval::metrics::{evaluate, ClassificationReport};

mod common;
use common::data_dir;

/// Splits one CSV line, honouring double quotes (labels such as "CD4+/CD25 T Reg").
fn split_csv_line(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    for ch in line.chars() {
        match ch {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            _ => fields.last_mut().expect("fields starts non-empty").push(ch),
        }
    }
    fields
}

/// (truth, predicted) columns of a peer prediction file.
fn read_peer(rel: &str) -> (Vec<String>, Vec<String>) {
    let path = data_dir().join("peers").join(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut lines = text.lines();
    let header = split_csv_line(lines.next().expect("header line"));
    // Seurat files carry a fourth `score` column; kNN and LR files do not.
    assert_eq!(header[..3], ["cell", "true", "pred"], "{rel}: header");
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f = split_csv_line(l);
            (f[1].clone(), f[2].clone())
        })
        .unzip()
}

type ClassRow = (&'static str, f64, f64, f64, usize);

fn check(r: &ClassificationReport, headline: [f64; 3], rows: &[ClassRow]) {
    let eps = 1e-9;
    assert!(
        (r.accuracy - headline[0]).abs() < eps,
        "accuracy {}",
        r.accuracy
    );
    assert!(
        (r.macro_f1 - headline[1]).abs() < eps,
        "macro F1 {}",
        r.macro_f1
    );
    assert!(
        (r.weighted_f1 - headline[2]).abs() < eps,
        "weighted F1 {}",
        r.weighted_f1
    );
    for &(class, p, rc, f1, support) in rows {
        let m = r
            .per_class
            .iter()
            .find(|m| m.class == class)
            .unwrap_or_else(|| panic!("class {class} missing from report"));
        assert!(
            (m.precision - p).abs() < eps,
            "{class} precision {}",
            m.precision
        );
        assert!((m.recall - rc).abs() < eps, "{class} recall {}", m.recall);
        assert!((m.f1 - f1).abs() < eps, "{class} f1 {}", m.f1);
        assert_eq!(m.support, support, "{class} support");
    }
    let shares: f64 = r.per_class.iter().map(|m| m.predicted_share).sum();
    assert!((shares - 1.0).abs() < 1e-12);
}

fn all_labels(truth: &[String], pred: &[String]) -> Vec<String> {
    let mut v: Vec<String> = truth.iter().chain(pred).cloned().collect();
    v.sort();
    v.dedup();
    v
}

/// CBMC, Seurat label transfer: 15 integer-coded classes, one with recall 0.083.
#[test]
fn cbmc_seurat_matches_sklearn() {
    let (truth, pred) = read_peer("cbmc/seurat_kfNA.csv");
    let r = evaluate(&truth, &pred, &all_labels(&truth, &pred)).expect("evaluate");
    assert_eq!((r.n_cells, r.n_skipped_unknown), (1724, 0));
    let rows: [ClassRow; 15] = [
        (
            "1",
            0.8674033149171271,
            0.8770949720670391,
            0.8722222222222222,
            358,
        ),
        ("10", 1.0, 1.0, 1.0, 24),
        ("11", 1.0, 0.9565217391304348, 0.9777777777777777, 23),
        ("12", 1.0, 1.0, 1.0, 21),
        ("13", 1.0, 0.7894736842105263, 0.8823529411764706, 19),
        (
            "14",
            0.9285714285714286,
            0.9285714285714286,
            0.9285714285714286,
            14,
        ),
        ("15", 1.0, 1.0, 1.0, 10),
        (
            "2",
            0.9114688128772636,
            0.9869281045751634,
            0.9476987447698745,
            459,
        ),
        ("3", 0.828, 0.828, 0.828, 250),
        (
            "4",
            0.9728506787330317,
            0.9862385321100917,
            0.979498861047836,
            218,
        ),
        ("5", 1.0, 1.0, 1.0, 122),
        ("6", 1.0, 0.9857142857142858, 0.9928057553956835, 70),
        (
            "7",
            0.9215686274509803,
            0.8703703703703703,
            0.8952380952380953,
            54,
        ),
        (
            "8",
            0.9534883720930233,
            0.8913043478260869,
            0.9213483146067416,
            46,
        ),
        ("9", 1.0, 0.08333333333333333, 0.15384615384615385, 36),
    ];
    check(
        &r,
        [0.91415313225058, 0.8919573529768189, 0.9064926739649215],
        &rows,
    );
}

/// PBMC68k, kNN: two classes are never predicted correctly (precision 0 by
/// zero_division=0), which pulls macro F1 far below weighted F1.
#[test]
fn pbmc68k_knn_matches_sklearn() {
    let (truth, pred) = read_peer("pbmc68k/knn.csv");
    let r = evaluate(&truth, &pred, &all_labels(&truth, &pred)).expect("evaluate");
    assert_eq!(r.n_cells, 140);
    let rows: [ClassRow; 10] = [
        (
            "CD14+ Monocyte",
            0.8928571428571429,
            0.9615384615384616,
            0.9259259259259259,
            26,
        ),
        ("CD19+ B", 1.0, 0.9473684210526315, 0.972972972972973, 19),
        ("CD34+", 1.0, 1.0, 1.0, 2),
        ("CD4+/CD25 T Reg", 0.5384615384615384, 1.0, 0.7, 14),
        ("CD4+/CD45RA+/CD25- Naive T", 0.0, 0.0, 0.0, 1),
        ("CD4+/CD45RO+ Memory", 0.0, 0.0, 0.0, 4),
        (
            "CD56+ NK",
            0.8333333333333334,
            0.8333333333333334,
            0.8333333333333334,
            6,
        ),
        (
            "CD8+ Cytotoxic T",
            0.75,
            0.5454545454545454,
            0.631578947368421,
            11,
        ),
        (
            "CD8+/CD45RA+ Naive Cytotoxic",
            1.0,
            0.6666666666666666,
            0.8,
            9,
        ),
        (
            "Dendritic",
            0.9782608695652174,
            0.9375,
            0.9574468085106383,
            48,
        ),
    ];
    check(
        &r,
        [0.8642857142857143, 0.6821257988111291, 0.8533241127865988],
        &rows,
    );
}

/// Xin → Wang pancreas: the 146 query cells of classes the reference lacks (ductal,
/// stellate, acinar) are skipped; the 355 scored cells match sklearn on the filtered set.
#[test]
fn pancreas_unknown_cells_are_skipped_like_the_filtered_sklearn_run() {
    let (truth, pred) = read_peer("pancreas_xin_wang/seurat_kfNA.csv");
    let known = ["alpha", "beta", "gamma", "delta"];
    let r = evaluate(&truth, &pred, &known).expect("evaluate");
    assert_eq!((r.n_cells, r.n_skipped_unknown), (355, 146));
    assert_eq!(r.unknown_classes, ["acinar", "ductal", "stellate"]);
    let rows: [ClassRow; 4] = [
        ("alpha", 1.0, 1.0, 1.0, 206),
        ("beta", 1.0, 1.0, 1.0, 118),
        ("delta", 1.0, 1.0, 1.0, 10),
        ("gamma", 1.0, 1.0, 1.0, 21),
    ];
    check(&r, [1.0, 1.0, 1.0], &rows);
}
