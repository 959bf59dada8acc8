//! h5ad write → read is the identity for arbitrary small data sets.

use crate::strategies::csr_strat;
use proptest::prelude::*;
use scrobust::data::h5ad::{read_h5ad, write_h5ad, ReadOptions};
use scrobust::data::{Column, Dataset, ValueKind};

/// Unique names: an arbitrary (possibly empty, non-ASCII) stem made unique by its position.
fn names(n: usize) -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[a-zA-Z0-9_ .:/+-]{0,6}|\\PC{0,4}", n).prop_map(|stems| {
        stems
            .into_iter()
            .enumerate()
            .map(|(i, s)| format!("{s}#{i}"))
            .collect()
    })
}

fn dataset() -> impl Strategy<Value = Dataset> {
    csr_strat(12, 9).prop_flat_map(|x| {
        let (n_obs, n_vars) = x.shape();
        let labels = prop::collection::vec(prop::option::weighted(0.9, "\\PC{1,5}"), n_obs);
        let scores = prop::collection::vec(-1e6f64..1e6, n_obs);
        let embedding = prop::collection::vec(-10f32..10.0, n_obs * 2);
        (
            Just(x),
            names(n_obs),
            names(n_vars),
            labels,
            scores,
            embedding,
        )
            .prop_map(|(x, cell_ids, gene_names, labels, scores, embedding)| {
                let present: Vec<String> = labels.iter().flatten().cloned().collect();
                let Column::Categorical { categories, .. } =
                    Column::categorical_from_strings(&present)
                else {
                    unreachable!("categorical_from_strings returns a categorical column")
                };
                let codes = labels
                    .iter()
                    .map(|l| {
                        l.as_ref()
                            .map_or(-1, |l| categories.binary_search(l).map_or(-1, |i| i as i32))
                    })
                    .collect();
                let value_kind = ValueKind::detect(x.data());
                Dataset {
                    obs: vec![
                        (
                            "cell_type".into(),
                            Column::Categorical { codes, categories },
                        ),
                        ("score".into(), Column::Float(scores)),
                    ],
                    obsm: vec![(
                        "X_emb".into(),
                        ndarray::Array2::from_shape_vec((cell_ids.len(), 2), embedding).unwrap(),
                    )],
                    x,
                    cell_ids,
                    gene_names,
                    value_kind,
                    source: "proptest".into(),
                }
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::cases(48)))]

    /// Writing a data set and reading it back returns the same matrix, cell ids, gene
    /// names, obs columns (categorical with missing values, floats), obsm and value kind.
    #[test]
    fn write_then_read_is_identity(ds in dataset()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.h5ad");
        write_h5ad(&ds, &path).unwrap();
        let back = read_h5ad(&path, &ReadOptions::default()).unwrap();
        prop_assert_eq!(&back.x, &ds.x);
        prop_assert_eq!(&back.cell_ids, &ds.cell_ids);
        prop_assert_eq!(&back.gene_names, &ds.gene_names);
        prop_assert_eq!(&back.obs, &ds.obs);
        prop_assert_eq!(&back.obsm, &ds.obsm);
        prop_assert_eq!(back.value_kind, ds.value_kind);
    }
}
