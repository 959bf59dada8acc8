//! Turning a [`DatasetSpec`] into a gene-aligned reference/query pair with labels:
//! simulated profiles, the shared real tasks (`splits/<task>/`), or a user's h5ad files.

use crate::data::h5ad::{read_h5ad, ReadOptions};
use crate::data::simulate::{simulate, Profile, SimulateOptions};
use crate::data::split::{
    align_genes, read_cell_list, split_by_cell_ids, split_by_values, split_stratified,
};
use crate::data::{Dataset, Labels};
use crate::error::{Error, Result};
use crate::study::config::DatasetSpec;
use std::path::PathBuf;

/// A reference/query pair ready for every method.
#[derive(Debug, Clone)]
pub struct Task {
    /// Data set name (from the config).
    pub name: String,
    /// Reference (training) cells.
    pub reference: Dataset,
    /// Reference labels.
    pub reference_labels: Labels,
    /// Query cells, restricted to the reference's genes.
    pub query: Dataset,
    /// True label of each query cell (`None` when missing).
    pub query_truth: Vec<Option<String>>,
    /// Notes for the report (value kind, gene alignment, unknown classes).
    pub notes: Vec<String>,
}

/// The folders searched for the real data sets, in order: the repository's `data/` (the
/// working directory's when it holds `splits/`, else the one this binary was built from),
/// then the optional extra folder `SCROBUST_SHARED_DATA` of the same layout.
pub fn real_data_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let cwd = PathBuf::from("data");
    if cwd.join("splits").is_dir() {
        dirs.push(cwd);
    } else {
        let built = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data");
        if built.join("splits").is_dir() {
            dirs.push(built);
        }
    }
    if let Some(extra) = std::env::var_os("SCROBUST_SHARED_DATA").map(PathBuf::from) {
        if extra.is_dir() {
            dirs.push(extra);
        }
    }
    dirs
}

/// The first of `dirs` that holds `rel`; an error naming every place looked at otherwise.
pub fn locate_real(dirs: &[PathBuf], rel: &str) -> Result<PathBuf> {
    dirs.iter()
        .map(|d| d.join(rel))
        .find(|p| p.exists())
        .ok_or_else(|| {
            let looked: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            Error::invalid(
                rel,
                "",
                format!(
                    "real data file not found in [{}] (the repository's data/ or SCROBUST_SHARED_DATA)",
                    looked.join(", ")
                ),
            )
        })
}

/// Load the task a spec describes; `real` are the folders searched for the real tasks
/// (see [`real_data_dirs`]).
pub fn load_task(spec: &DatasetSpec, real: &[PathBuf]) -> Result<Task> {
    match spec {
        DatasetSpec::Simulated {
            name,
            profile,
            cells,
            genes,
            seed,
        } => load_simulated_task(name, profile, *cells, *genes, *seed),
        DatasetSpec::Shared { name, task } => load_shared_task(name, task, real),
        DatasetSpec::H5ad {
            name,
            label_key,
            reference,
            query,
            data,
            split_key,
            reference_values,
            train_fraction,
            use_raw,
        } => {
            let opts = ReadOptions {
                use_raw: *use_raw,
                value_kind: None,
            };
            match (reference, query, data) {
                (Some(r), Some(q), None) => {
                    let r = read_h5ad(r, &opts)?;
                    let q = read_h5ad(q, &opts)?;
                    finish(name, &r, &q, label_key, vec![])
                }
                (None, None, Some(d)) => {
                    let ds = read_h5ad(d, &opts)?;
                    let split = FileSplit {
                        split_key: split_key.as_deref(),
                        reference_values: reference_values.as_deref(),
                        train_fraction: *train_fraction,
                    };
                    let (ri, qi) = split_data_file(name, &ds, label_key, &split)?;
                    finish(
                        name,
                        &ds.select_cells(&ri),
                        &ds.select_cells(&qi),
                        label_key,
                        vec![],
                    )
                }
                _ => Err(Error::param(
                    format!("study.datasets.{name}"),
                    "give either reference + query files or one data file",
                )),
            }
        }
    }
}

/// A simulated profile, its `batch` column splitting reference from query.
fn load_simulated_task(
    name: &str,
    profile_name: &str,
    cells: Option<usize>,
    genes: usize,
    seed: u64,
) -> Result<Task> {
    let profile: Profile = profile_name.parse()?;
    let ds = simulate(&SimulateOptions {
        profile,
        n_cells: cells,
        n_genes: genes,
        seed,
    })?;
    let (ds, n_empty) = ds.without_empty_cells();
    let (r, q) = split_by_values(&ds, "batch", &["reference".to_string()])?;
    let notes = vec![format!(
        "simulated {profile_name} ({} cells x {} genes, seed {seed}; {n_empty} cells without counts dropped); reference = batch 'reference'",
        ds.n_obs(),
        ds.n_vars()
    )];
    finish(
        name,
        &ds.select_cells(&r),
        &ds.select_cells(&q),
        "cell_type",
        notes,
    )
}

/// How one data file is split into reference and query: by values of an obs column, or
/// stratified by label with a training fraction.
struct FileSplit<'a> {
    split_key: Option<&'a str>,
    reference_values: Option<&'a [String]>,
    train_fraction: Option<f64>,
}

/// Reference and query row indices of one data file; exactly one way of splitting must
/// be given.
fn split_data_file(
    name: &str,
    ds: &Dataset,
    label_key: &str,
    split: &FileSplit,
) -> Result<(Vec<usize>, Vec<usize>)> {
    match (
        split.split_key,
        split.reference_values,
        split.train_fraction,
    ) {
        (Some(k), Some(v), None) => split_by_values(ds, k, v),
        (None, None, Some(f)) => split_stratified(&ds.labels(label_key)?, f, 0),
        _ => Err(Error::param(
            format!("study.datasets.{name}"),
            "give either split_key + reference_values or train_fraction",
        )),
    }
}

/// The shared tasks of `splits/<task>/info.json`.
fn load_shared_task(name: &str, task: &str, dirs: &[PathBuf]) -> Result<Task> {
    let ref_ids = read_cell_list(&locate_real(dirs, &format!("splits/{task}/ref_cells.txt"))?)?;
    let query_ids = read_cell_list(&locate_real(
        dirs,
        &format!("splits/{task}/query_cells.txt"),
    )?)?;
    let (file, label_key, use_raw) = match task {
        "kang" => ("muscat_kang_pbmc.h5ad", "label", false),
        "cbmc" => ("scdcc_cite_cbmc_top2000.h5ad", "label", false),
        "soupx" => ("soupx_pbmc4k_subset.h5ad", "label", false),
        "pbmc68k" => ("scanpy_pbmc68k_reduced.h5ad", "bulk_labels", true),
        "pancreas_xin_wang" => {
            let opts = ReadOptions::default();
            let r = read_h5ad(&locate_real(dirs, "scclassify_xin_ref.h5ad")?, &opts)?;
            let q = read_h5ad(&locate_real(dirs, "scclassify_wang_query.h5ad")?, &opts)?;
            let (ri, _) = split_by_cell_ids(&r, &ref_ids, &[])?;
            let (_, qi) = split_by_cell_ids(&q, &[], &query_ids)?;
            let notes = vec!["Xin -> Wang: query cells of classes absent from the reference are not scored".into()];
            return finish(name, &r.select_cells(&ri), &q.select_cells(&qi), "label", notes);
        }
        other => {
            return Err(Error::param(
                "study.datasets.task",
                format!("unknown shared task '{other}'; known: kang, cbmc, soupx, pbmc68k, pancreas_xin_wang"),
            ))
        }
    };
    let ds = read_h5ad(
        &locate_real(dirs, file)?,
        &ReadOptions {
            use_raw,
            value_kind: None,
        },
    )?;
    let (ri, qi) = split_by_cell_ids(&ds, &ref_ids, &query_ids)?;
    finish(
        name,
        &ds.select_cells(&ri),
        &ds.select_cells(&qi),
        label_key,
        vec![format!("shared task {task} ({file})")],
    )
}

/// Align genes, pull labels, and record what happened.
fn finish(
    name: &str,
    reference: &Dataset,
    query: &Dataset,
    label_key: &str,
    mut notes: Vec<String>,
) -> Result<Task> {
    crate::data::h5ad::validate_for_analysis(reference)?;
    crate::data::h5ad::validate_for_analysis(query)?;
    for (ds, role) in [(reference, "reference"), (query, "query")] {
        if ds.n_obs() == 0 {
            return Err(Error::invalid(
                &ds.source,
                "X",
                format!("the {role} of data set '{name}' has no cells"),
            ));
        }
    }
    let reference_labels = reference.labels(label_key)?;
    let query_labels = query.labels(label_key)?;
    let query_truth: Vec<Option<String>> = (0..query.n_obs())
        .map(|i| query_labels.name(i).map(str::to_string))
        .collect();
    if reference_labels.classes.len() < 2 {
        return Err(Error::invalid(
            &reference.source,
            format!("obs/{label_key}"),
            "the reference has fewer than two classes: nothing to classify",
        ));
    }
    let (reference, query, alignment) = align_genes(reference, query)?;
    notes.push(format!(
        "values: {}; genes: {} shared, {} reference-only dropped, {} query-only dropped",
        reference.value_kind.as_str(),
        alignment.n_shared,
        alignment.n_reference_only,
        alignment.n_query_only
    ));
    let unknown = query_truth
        .iter()
        .flatten()
        .filter(|t| !reference_labels.classes.contains(t))
        .count();
    if unknown > 0 {
        notes.push(format!(
            "{unknown} query cells have classes absent from the reference and are not scored"
        ));
    }
    Ok(Task {
        name: name.to_string(),
        reference,
        reference_labels,
        query,
        query_truth,
        notes,
    })
}
