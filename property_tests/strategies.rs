//! Shared proptest strategies (after anndata-rs's `csr_strat`/`array_strat`).

use proptest::prelude::*;
use scrobust::data::CsrMatrix;

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
