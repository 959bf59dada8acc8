//! Reference/query splits: by obs column values, stratified random, or cell-id lists;
//! and restricting a reference/query pair to their shared genes.
//!
//! Every function returns indices into the data set's cells in ascending order
//! (or list order for cell-id lists), so selecting them keeps the file order.

use crate::data::{CsrMatrix, Dataset, Labels};
use crate::error::{Error, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Does `value` match `pattern`? A trailing `*` matches any suffix (`ctrl:*`), otherwise
/// the match is exact.
fn matches(pattern: &str, value: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => value.starts_with(prefix),
        None => value == pattern,
    }
}

/// Reference = cells whose obs column `key` matches one of `reference_values` (exact, or
/// a prefix when the value ends in `*`); query = all other cells. Cells with a missing
/// value go to neither side. Errors when a pattern matches no cell (listing the values
/// that exist) or when either side ends up empty.
pub fn split_by_values(
    ds: &Dataset,
    key: &str,
    reference_values: &[String],
) -> Result<(Vec<usize>, Vec<usize>)> {
    if reference_values.is_empty() {
        return Err(Error::param(
            "reference-values",
            "at least one value is required",
        ));
    }
    let col = ds.column(key)?;
    let values: Vec<Option<String>> = (0..col.len()).map(|i| col.get_str(i)).collect();
    for pattern in reference_values {
        if !values.iter().flatten().any(|v| matches(pattern, v)) {
            let mut present: Vec<&str> = values.iter().flatten().map(String::as_str).collect();
            present.sort_unstable();
            present.dedup();
            return Err(Error::invalid(
                &ds.source,
                format!("obs/{key}"),
                format!(
                    "reference value '{pattern}' matches no cell; values present: {}",
                    present.join(", ")
                ),
            ));
        }
    }
    let (mut reference, mut query) = (Vec::new(), Vec::new());
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) if reference_values.iter().any(|p| matches(p, v)) => reference.push(i),
            Some(_) => query.push(i),
            None => {}
        }
    }
    if query.is_empty() {
        return Err(Error::invalid(
            &ds.source,
            format!("obs/{key}"),
            format!(
                "every cell matches the reference values [{}]; the query would be empty",
                reference_values.join(", ")
            ),
        ));
    }
    Ok((reference, query))
}

/// Stratified random split: within each class, a seeded shuffle puts
/// `round(train_fraction × n)` cells on the training side, clamped so that every class
/// with at least two cells has at least one cell on each side (a singleton class goes to
/// training). Cells with a missing label go to neither side.
pub fn split_stratified(
    labels: &Labels,
    train_fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>)> {
    if !(train_fraction > 0.0 && train_fraction < 1.0) {
        return Err(Error::param(
            "train-fraction",
            format!("must be strictly between 0 and 1, got {train_fraction}"),
        ));
    }
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); labels.classes.len()];
    for (i, c) in labels.codes.iter().enumerate() {
        if let Some(c) = c {
            by_class[*c].push(i);
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for mut cells in by_class {
        let n = cells.len();
        if n == 0 {
            continue;
        }
        cells.shuffle(&mut rng);
        let n_train = if n == 1 {
            1
        } else {
            ((train_fraction * n as f64).round() as usize).clamp(1, n - 1)
        };
        train.extend_from_slice(&cells[..n_train]);
        test.extend_from_slice(&cells[n_train..]);
    }
    if train.is_empty() || test.is_empty() {
        return Err(Error::param(
            "train-fraction",
            "the split leaves one side empty (too few labelled cells)",
        ));
    }
    train.sort_unstable();
    test.sort_unstable();
    Ok((train, test))
}

/// Reference and query from explicit cell-id lists (in list order). Errors naming ids
/// that are not in the data set, ids listed on both sides, or ambiguous (duplicated)
/// cell ids in the data set.
pub fn split_by_cell_ids(
    ds: &Dataset,
    reference_ids: &[String],
    query_ids: &[String],
) -> Result<(Vec<usize>, Vec<usize>)> {
    let mut position: HashMap<&str, usize> = HashMap::with_capacity(ds.n_obs());
    let mut duplicated: HashSet<&str> = HashSet::new();
    for (i, id) in ds.cell_ids.iter().enumerate() {
        if position.insert(id.as_str(), i).is_some() {
            duplicated.insert(id.as_str());
        }
    }
    let resolve = |ids: &[String], side: &str| -> Result<Vec<usize>> {
        let unknown: Vec<&str> = ids
            .iter()
            .map(String::as_str)
            .filter(|id| !position.contains_key(id))
            .collect();
        if !unknown.is_empty() {
            let shown: Vec<&str> = unknown.iter().take(5).copied().collect();
            return Err(Error::invalid(
                &ds.source,
                "obs index",
                format!(
                    "{} {side} cell id(s) not in the data set, e.g. {}",
                    unknown.len(),
                    shown.join(", ")
                ),
            ));
        }
        if let Some(id) = ids.iter().find(|id| duplicated.contains(id.as_str())) {
            return Err(Error::invalid(
                &ds.source,
                "obs index",
                format!("{side} cell id '{id}' occurs more than once in the data set"),
            ));
        }
        Ok(ids.iter().map(|id| position[id.as_str()]).collect())
    };
    let reference = resolve(reference_ids, "reference")?;
    let query = resolve(query_ids, "query")?;
    let ref_set: HashSet<usize> = reference.iter().copied().collect();
    if let Some(&q) = query.iter().find(|q| ref_set.contains(q)) {
        return Err(Error::invalid(
            &ds.source,
            "obs index",
            format!(
                "cell '{}' is listed as both reference and query",
                ds.cell_ids[q]
            ),
        ));
    }
    Ok((reference, query))
}

/// Read a cell list: one id per line; blank lines and lines starting with `#` are
/// skipped. Errors on a missing file, an empty list or a repeated id.
pub fn read_cell_list(path: &Path) -> Result<Vec<String>> {
    if !path.exists() {
        return Err(Error::FileNotFound {
            path: path.to_path_buf(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let ids: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    if ids.is_empty() {
        return Err(Error::Parse {
            path: path.to_path_buf(),
            problem: "no cell ids in the list".to_string(),
        });
    }
    let mut seen = HashSet::with_capacity(ids.len());
    if let Some(dup) = ids.iter().find(|id| !seen.insert(id.as_str())) {
        return Err(Error::Parse {
            path: path.to_path_buf(),
            problem: format!("cell id '{dup}' listed twice"),
        });
    }
    Ok(ids)
}

/// How many genes a reference/query pair share, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GeneAlignment {
    /// Genes present in both (the genes kept).
    pub n_shared: usize,
    /// Reference genes missing from the query (dropped).
    pub n_reference_only: usize,
    /// Query genes missing from the reference (dropped).
    pub n_query_only: usize,
}

/// Restrict reference and query to their shared genes, in reference order, so column
/// `j` is the same gene in both. Errors when they share no gene.
pub fn align_genes(
    reference: &Dataset,
    query: &Dataset,
) -> Result<(Dataset, Dataset, GeneAlignment)> {
    let query_pos: HashMap<&str, usize> = query
        .gene_names
        .iter()
        .enumerate()
        .map(|(i, g)| (g.as_str(), i))
        .collect();
    let (ref_cols, query_cols): (Vec<usize>, Vec<usize>) = reference
        .gene_names
        .iter()
        .enumerate()
        .filter_map(|(i, g)| query_pos.get(g.as_str()).map(|&j| (i, j)))
        .unzip();
    if ref_cols.is_empty() {
        return Err(Error::Incompatible(format!(
            "reference {} ({} genes, e.g. {}) and query {} ({} genes, e.g. {}) share no gene name",
            reference.source,
            reference.n_vars(),
            reference
                .gene_names
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            query.source,
            query.n_vars(),
            query
                .gene_names
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
        )));
    }
    let alignment = GeneAlignment {
        n_shared: ref_cols.len(),
        n_reference_only: reference.n_vars() - ref_cols.len(),
        n_query_only: query.n_vars() - query_cols.len(),
    };
    Ok((
        reference.select_genes(&ref_cols),
        query.select_genes(&query_cols),
        alignment,
    ))
}

/// `ds` with its columns put in the order of `genes`: genes `ds` lacks become all-zero
/// columns and genes outside `genes` are dropped, so column `j` is `genes[j]`. For
/// unlabelled extra data (a pretraining corpus) that must be read in a reference's gene
/// space. Returns the data and how many of `genes` it has; errors when it has none.
pub fn conform_genes(ds: &Dataset, genes: &[String]) -> Result<(Dataset, usize)> {
    let target: HashMap<&str, u32> = genes
        .iter()
        .enumerate()
        .map(|(j, g)| (g.as_str(), j as u32))
        .collect();
    let new_col: Vec<Option<u32>> = ds
        .gene_names
        .iter()
        .map(|g| target.get(g.as_str()).copied())
        .collect();
    let n_shared = new_col.iter().flatten().count();
    if n_shared == 0 {
        return Err(Error::Incompatible(format!(
            "{} ({} genes) shares no gene name with the {} genes it must be read in (e.g. {})",
            ds.source,
            ds.n_vars(),
            genes.len(),
            genes.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    let (mut indptr, mut indices, mut data) = (vec![0usize], Vec::new(), Vec::new());
    for r in 0..ds.n_obs() {
        let (idx, val) = ds.x.row(r);
        for (&c, &v) in idx.iter().zip(val) {
            if let Some(j) = new_col[c as usize] {
                indices.push(j);
                data.push(v);
            }
        }
        indptr.push(indices.len());
    }
    let x = CsrMatrix::from_unsorted(ds.n_obs(), genes.len(), indptr, indices, data, &ds.source)?;
    // Field by field: `..ds.clone()` would copy the old matrix only to drop it.
    Ok((
        Dataset {
            x,
            cell_ids: ds.cell_ids.clone(),
            gene_names: genes.to_vec(),
            obs: ds.obs.clone(),
            obsm: ds.obsm.clone(),
            value_kind: ds.value_kind,
            source: ds.source.clone(),
        },
        n_shared,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Column, ValueKind};

    fn toy(n: usize, genes: &[&str], batch: &[&str]) -> Dataset {
        let dense = ndarray::Array2::from_shape_fn((n, genes.len()), |(i, j)| (i + j + 1) as f32);
        Dataset {
            x: CsrMatrix::from_dense(&dense),
            cell_ids: (0..n).map(|i| format!("c{i}")).collect(),
            gene_names: genes.iter().map(|g| g.to_string()).collect(),
            obs: vec![(
                "batch".into(),
                Column::Str(batch.iter().map(|b| b.to_string()).collect()),
            )],
            obsm: vec![],
            value_kind: ValueKind::Counts,
            source: "toy".into(),
        }
    }

    /// A trailing `*` selects by prefix; other cells become the query.
    #[test]
    fn values_with_prefix_glob() {
        let ds = toy(4, &["a"], &["ctrl:1", "stim:1", "ctrl:2", "stim:2"]);
        let (r, q) = split_by_values(&ds, "batch", &["ctrl:*".to_string()]).unwrap();
        assert_eq!((r, q), (vec![0, 2], vec![1, 3]));
        let (r, _) = split_by_values(&ds, "batch", &["stim:2".to_string()]).unwrap();
        assert_eq!(r, vec![3]);
    }

    /// An unknown value, an unknown column and an empty query are errors naming the problem.
    #[test]
    fn values_errors() {
        let ds = toy(2, &["a"], &["x", "y"]);
        let e = split_by_values(&ds, "batch", &["z".to_string()])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'z' matches no cell") && e.contains("x, y"),
            "{e}"
        );
        let e = split_by_values(&ds, "nope", &["x".to_string()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("'nope' not found"), "{e}");
        let e = split_by_values(&ds, "batch", &["*".to_string()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("query would be empty"), "{e}");
    }

    /// Stratified: per-class proportions, both sides for every class of ≥2 cells, seeded.
    #[test]
    fn stratified_properties() {
        let names: Vec<String> = (0..103)
            .map(|i| {
                if i < 100 {
                    format!("big{}", i % 2)
                } else {
                    "tiny".to_string()
                }
            })
            .collect();
        let labels = Labels::from_strings(&names);
        let (tr, te) = split_stratified(&labels, 0.8, 7).unwrap();
        assert_eq!(tr.len() + te.len(), 103);
        let count = |idx: &[usize], class: &str| {
            idx.iter()
                .filter(|&&i| labels.name(i) == Some(class))
                .count()
        };
        assert_eq!(count(&tr, "big0"), 40);
        assert_eq!(count(&te, "big1"), 10);
        assert!(count(&tr, "tiny") >= 1 && count(&te, "tiny") >= 1);
        assert_eq!(split_stratified(&labels, 0.8, 7).unwrap(), (tr.clone(), te));
        assert_ne!(split_stratified(&labels, 0.8, 8).unwrap().0, tr);
        assert!(split_stratified(&labels, 1.0, 0).is_err());
    }

    /// Cell-id lists resolve in list order; unknown and doubly listed ids are named.
    #[test]
    fn cell_ids() {
        let ds = toy(3, &["a"], &["x", "y", "z"]);
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            split_by_cell_ids(&ds, &ids(&["c2", "c0"]), &ids(&["c1"])).unwrap(),
            (vec![2, 0], vec![1])
        );
        let e = split_by_cell_ids(&ds, &ids(&["c9"]), &ids(&["c1"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("c9") && e.contains("reference"), "{e}");
        let e = split_by_cell_ids(&ds, &ids(&["c1"]), &ids(&["c1"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("'c1' is listed as both"), "{e}");
    }

    /// Cell lists skip blanks/comments and reject repeats and missing files.
    #[test]
    fn cell_list_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cells.txt");
        std::fs::write(&p, "# ref\nA\n\n B \n").unwrap();
        assert_eq!(read_cell_list(&p).unwrap(), vec!["A", "B"]);
        std::fs::write(&p, "A\nA\n").unwrap();
        assert!(read_cell_list(&p)
            .unwrap_err()
            .to_string()
            .contains("'A' listed twice"));
        let e = read_cell_list(&dir.path().join("none.txt")).unwrap_err();
        assert!(matches!(e, Error::FileNotFound { .. }));
    }

    /// Gene alignment keeps shared genes in reference order with matching values.
    #[test]
    fn align() {
        let r = toy(2, &["g1", "g2", "g3"], &["x", "y"]);
        let q = toy(2, &["g3", "g9", "g1"], &["x", "y"]);
        let (ra, qa, info) = align_genes(&r, &q).unwrap();
        assert_eq!(ra.gene_names, vec!["g1", "g3"]);
        assert_eq!(qa.gene_names, vec!["g1", "g3"]);
        assert_eq!(
            info,
            GeneAlignment {
                n_shared: 2,
                n_reference_only: 1,
                n_query_only: 1
            }
        );
        // Query column "g1" was at position 2: values (i + 2 + 1).
        assert_eq!(qa.x.to_dense()[[0, 0]], 3.0);
        let none = toy(2, &["zz"], &["x", "y"]);
        assert!(align_genes(&r, &none)
            .unwrap_err()
            .to_string()
            .contains("share no gene"));
    }

    /// Conforming puts columns in the target order, zero-fills missing genes, drops extra
    /// ones, and refuses data sharing no gene.
    #[test]
    fn conform_genes_reorders_fills_and_drops() {
        let ds = toy(2, &["A", "B", "C"], &["x", "y"]);
        let genes: Vec<String> = ["C", "Z", "A"].iter().map(|g| g.to_string()).collect();
        let (c, n) = conform_genes(&ds, &genes).unwrap();
        assert_eq!(n, 2);
        assert_eq!(c.gene_names, genes);
        let dense = c.x.to_dense();
        let orig = ds.x.to_dense();
        for i in 0..2 {
            assert_eq!(dense[[i, 0]], orig[[i, 2]]);
            assert_eq!(dense[[i, 1]], 0.0);
            assert_eq!(dense[[i, 2]], orig[[i, 0]]);
        }
        let none: Vec<String> = vec!["Q".into()];
        assert!(conform_genes(&ds, &none)
            .unwrap_err()
            .to_string()
            .contains("shares no gene"));
    }
}
