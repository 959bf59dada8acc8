use super::*;
use crate::baseline::testutil::{accuracy, clustered_counts};

fn small_params() -> SeuratParams {
    SeuratParams {
        pca: ReferencePcaParams {
            n_pcs: 10,
            ..Default::default()
        },
        ..Default::default()
    }
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
