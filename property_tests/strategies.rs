//! Shared proptest strategies.

use proptest::prelude::*;

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
