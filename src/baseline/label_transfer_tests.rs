use super::*;
use crate::baseline::testutil::{accuracy, clustered_counts};

fn small_params() -> SeuratParams {
    SeuratParams::new().pca(ReferencePcaParams::new().n_pcs(10))
}

/// Well-separated synthetic cell types are transferred almost perfectly; scores are
/// probabilities (rows sum to 1) and the reported score is the row maximum.
#[test]
fn transfers_separated_types() {
    let (reference, ref_labels) = clustered_counts(40, 4, 60, 1);
    let (query, query_labels) = clustered_counts(30, 4, 60, 2);
    let fitted = small_params().fit(&reference, &ref_labels).unwrap();
    let out = fitted.transfer(&query).unwrap();
    assert!(accuracy(&out.prediction, &query_labels) > 0.95);
    assert!(out.n_anchors > 0);
    for (row, &m) in out.scores.rows().into_iter().zip(&out.prediction.scores) {
        assert!((row.sum() - 1.0).abs() < 1e-4);
        assert_eq!(row.iter().copied().fold(0.0f32, f32::max), m);
    }
}

/// The same seed gives identical predictions and scores.
#[test]
fn deterministic() {
    let (reference, ref_labels) = clustered_counts(20, 3, 40, 3);
    let (query, _) = clustered_counts(15, 3, 40, 4);
    let a = small_params()
        .fit(&reference, &ref_labels)
        .unwrap()
        .transfer(&query)
        .unwrap();
    let b = small_params()
        .fit(&reference, &ref_labels)
        .unwrap()
        .transfer(&query)
        .unwrap();
    assert_eq!(a.prediction, b.prediction);
}

/// Anchor filtering (Seurat 4's k.filter) keeps at most the unfiltered anchors, and with
/// more neighbours than cells it is skipped with a warning.
#[test]
fn k_filter_option() {
    let (reference, ref_labels) = clustered_counts(40, 3, 60, 5);
    let (query, query_labels) = clustered_counts(30, 3, 60, 6);
    let plain = small_params()
        .fit(&reference, &ref_labels)
        .unwrap()
        .transfer(&query)
        .unwrap();
    let filtered_params = SeuratParams {
        k_filter: Some(20),
        ..small_params()
    };
    let filtered = filtered_params
        .fit(&reference, &ref_labels)
        .unwrap()
        .transfer(&query)
        .unwrap();
    assert!(filtered.n_anchors <= plain.n_anchors);
    assert!(accuracy(&filtered.prediction, &query_labels) > 0.9);
    let skip = SeuratParams {
        k_filter: Some(1000),
        ..small_params()
    };
    let skipped = skip
        .fit(&reference, &ref_labels)
        .unwrap()
        .transfer(&query)
        .unwrap();
    assert!(
        skipped.warnings.iter().any(|w| w.contains("k.filter")),
        "{:?}",
        skipped.warnings
    );
    assert_eq!(skipped.n_anchors, plain.n_anchors);
}

/// A reference with a single class is refused with a message naming the class.
#[test]
fn one_class_reference_is_an_error() {
    let (reference, _) = clustered_counts(10, 2, 30, 7);
    let labels = Labels::from_strings(&vec!["T".to_string(); reference.n_obs()]);
    let err = small_params()
        .fit(&reference, &labels)
        .unwrap_err()
        .to_string();
    assert!(err.contains("1 class") && err.contains("'T'"), "{err}");
}

/// Reference cells without a label are left out with a warning, not treated as a class.
#[test]
fn unlabelled_reference_cells_dropped() {
    let (reference, mut labels) = clustered_counts(20, 3, 40, 8);
    labels.codes[0] = None;
    labels.codes[5] = None;
    let (query, _) = clustered_counts(10, 3, 40, 9);
    let out = small_params()
        .fit(&reference, &labels)
        .unwrap()
        .transfer(&query)
        .unwrap();
    assert!(
        out.warnings
            .iter()
            .any(|w| w.starts_with("2 reference cell")),
        "{:?}",
        out.warnings
    );
    assert_eq!(out.prediction.classes.len(), 3);
}

/// Invalid parameters are rejected before any work.
#[test]
fn rejects_bad_params() {
    let (reference, labels) = clustered_counts(10, 2, 30, 10);
    let bad = SeuratParams {
        sd_weight: 0.0,
        ..small_params()
    };
    assert!(bad.fit(&reference, &labels).is_err());
    let bad = SeuratParams {
        k_anchor: 0,
        ..small_params()
    };
    assert!(bad.fit(&reference, &labels).is_err());
}

/// As in Seurat 4.3's weight matrix, only the first `k_weight` anchors met while walking
/// the nearest anchor cells get a weight: with `k_weight` 3 and a nearest anchor cell
/// holding three anchors, the next cell's anchor gets nothing although it is nearer than
/// the `k_weight`-th cell.
#[test]
fn weights_stop_after_k_weight_anchors() {
    let (reference, ref_labels) = clustered_counts(20, 3, 40, 9);
    let params = SeuratParams {
        k_weight: 3,
        ..small_params()
    };
    let fitted = params.fit(&reference, &ref_labels).unwrap();
    let (class_a, class_b) = (fitted.labels[0], fitted.labels[1]);
    assert_ne!(class_a, class_b);
    assert_eq!(fitted.labels[3], class_a);
    assert_eq!(fitted.labels[6], class_a);
    // Query cells on a line: q0 at 0, anchor cells q1 at 1, q2 at 2, q3 at 10.
    let projected = ndarray::array![[0.0f32], [1.0], [2.0], [10.0]];
    // q1 is anchored to reference cells 0, 3, 6 (class A), q2 to 1 (B), q3 to 2.
    let pairs = vec![(0, 1), (1, 2), (2, 3), (3, 1), (6, 1)];
    let scores = vec![1.0; pairs.len()];
    let mut warnings = vec![];
    let out = fitted
        .weighted_votes(&pairs, &scores, &projected, &mut warnings)
        .unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(out[[0, class_a]], 1.0);
    assert_eq!(out[[0, class_b]], 0.0);
}

/// With the Annoy-like forest the transfer still works and mostly agrees with exact
/// neighbours, and the same seed gives the same predictions.
#[test]
fn annoy_neighbours_option() {
    let (reference, ref_labels) = clustered_counts(60, 4, 60, 21);
    let (query, query_labels) = clustered_counts(40, 4, 60, 22);
    let exact = small_params()
        .fit(&reference, &ref_labels)
        .unwrap()
        .transfer(&query)
        .unwrap();
    let annoy_params = SeuratParams {
        neighbors: NeighborMethod::Annoy(crate::baseline::annoy::AnnoyParams {
            n_trees: 10,
            ..Default::default()
        }),
        ..small_params()
    };
    let run = || {
        annoy_params
            .fit(&reference, &ref_labels)
            .unwrap()
            .transfer(&query)
            .unwrap()
    };
    let (a, b) = (run(), run());
    assert_eq!(a.prediction, b.prediction);
    assert!(accuracy(&a.prediction, &query_labels) > 0.9);
    let same = (0..query.n_obs())
        .filter(|&i| a.prediction.predicted[i] == exact.prediction.predicted[i])
        .count();
    assert!(same as f64 / query.n_obs() as f64 > 0.9, "{same}");
}
