//! Proptest strategies shared by the property tests (one module, as anndata-rs does).

use ndarray::Array2;
use proptest::prelude::*;
use scrobust::data::CsrMatrix;

/// Class names `c0..c{k-1}` for `k` in `2..=max_classes`.
pub fn class_names(max_classes: usize) -> impl Strategy<Value = Vec<String>> {
    (2..=max_classes).prop_map(|k| (0..k).map(|i| format!("c{i}")).collect())
}

/// A set of classes and a (truth, predicted) pair of equal length (1..=max_cells) drawn
/// from them.
pub fn labelled_predictions(
    max_classes: usize,
    max_cells: usize,
) -> impl Strategy<Value = (Vec<String>, Vec<String>, Vec<String>)> {
    class_names(max_classes).prop_flat_map(move |classes| {
        let k = classes.len();
        proptest::collection::vec((0..k, 0..k), 1..=max_cells).prop_map(move |pairs| {
            let truth = pairs.iter().map(|&(t, _)| classes[t].clone()).collect();
            let pred = pairs.iter().map(|&(_, p)| classes[p].clone()).collect();
            (classes.clone(), truth, pred)
        })
    })
}

/// One count value: zero about half the time, else an integer in 1..1000.
pub fn count_value() -> impl Strategy<Value = f32> {
    prop_oneof![Just(0.0f32), (1u32..1000).prop_map(|v| v as f32)]
}

/// One cell's counts over exactly `n_genes` genes (zeros and ties likely).
pub fn cell_counts_exact(n_genes: usize) -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(count_value(), n_genes)
}

/// One cell's counts over 1..`max_genes` genes with at least one non-zero value.
pub fn cell_counts_strat(max_genes: usize) -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(count_value(), 1..max_genes)
        .prop_filter("needs a non-zero value", |v| v.iter().any(|&x| x > 0.0))
}

/// One cell whose non-zero values are all distinct (no ties), with zeros in between.
pub fn cell_distinct_strat(max_genes: usize) -> impl Strategy<Value = Vec<f32>> {
    (
        prop::collection::hash_set(1u32..100_000, 2..max_genes),
        prop::collection::vec(any::<bool>(), max_genes),
    )
        .prop_map(|(set, zeros)| {
            let mut out = Vec::new();
            for (i, v) in set.into_iter().enumerate() {
                if zeros[i % zeros.len()] {
                    out.push(0.0);
                }
                out.push(v as f32);
            }
            out
        })
}

/// A cells × genes count matrix (1..`max_rows` × 1..`max_cols`), every cell with at
/// least one non-zero value.
pub fn count_matrix_strat(max_rows: usize, max_cols: usize) -> impl Strategy<Value = CsrMatrix> {
    (1..max_rows, 1..max_cols).prop_flat_map(|(r, c)| {
        prop::collection::vec(cell_counts_exact(c), r).prop_map(move |rows| {
            let mut d = Array2::<f32>::zeros((r, c));
            for (i, row) in rows.iter().enumerate() {
                for (j, &v) in row.iter().enumerate() {
                    d[[i, j]] = v;
                }
                // Guarantee a non-zero value so every cell can be tokenized and perturbed.
                if row.iter().all(|&v| v == 0.0) {
                    d[[i, i % c]] = 1.0;
                }
            }
            CsrMatrix::from_dense(&d)
        })
    })
}

/// One cell of arbitrary non-negative floats: zeros, repeated small integers (ties) and
/// continuous values over seven orders of magnitude.
pub fn cell_float_strat(max_genes: usize) -> impl Strategy<Value = Vec<f32>> {
    let value = prop_oneof![Just(0.0f32), (1u32..5).prop_map(|v| v as f32), 1e-3f32..1e4];
    prop::collection::vec(value, 1..max_genes)
}

/// Sparse cells × genes matrices with 1..=`max_rows` rows and 1..=`max_cols` columns,
/// about three quarters zeros, finite non-negative values (integers half of the time,
/// so both count-like and log-normalized-like matrices occur).
pub fn csr_strat(max_rows: usize, max_cols: usize) -> impl Strategy<Value = CsrMatrix> {
    (1..=max_rows, 1..=max_cols, any::<bool>()).prop_flat_map(|(rows, cols, integer)| {
        let value = if integer {
            (1u32..500).prop_map(|v| v as f32).boxed()
        } else {
            (1e-3f32..50.0).boxed()
        };
        let entry = prop_oneof![3 => Just(0.0f32), 1 => value];
        prop::collection::vec(entry, rows * cols).prop_map(move |values| {
            let dense =
                ndarray::Array2::from_shape_vec((rows, cols), values).expect("rows * cols values");
            CsrMatrix::from_dense(&dense)
        })
    })
}
