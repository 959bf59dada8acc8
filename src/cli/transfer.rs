//! `scrobust transfer`: fit a statistical baseline on a reference and classify a query.
//! Reference and query come from two files, or from one file with two cell-id lists.
//! JSON (`--json`) holds the DESIGN.md classification fields plus `n_skipped_unknown`,
//! `n_anchors` (Seurat) and warnings; the prediction CSV is written atomically.

use crate::baseline::{
    restrict_to_query_genes, BaselineMethod, KnnParams, LogisticParams, SeuratParams,
};
use crate::data::h5ad::{read_h5ad, ReadOptions};
use crate::data::{Dataset, Labels};
use crate::error::{Error, Result};
use crate::eval::metrics::evaluate_prediction;
use crate::eval::Prediction;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Arguments of `scrobust transfer`.
#[derive(Debug, Clone, clap::Args)]
pub struct TransferArgs {
    /// Reference h5ad (with --query).
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// Query h5ad (with --reference).
    #[arg(long)]
    pub query: Option<PathBuf>,
    /// One h5ad holding both reference and query cells (with --reference-cells/--query-cells).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// File of reference cell ids, one per line (with --data).
    #[arg(long)]
    pub reference_cells: Option<PathBuf>,
    /// File of query cell ids, one per line (with --data).
    #[arg(long)]
    pub query_cells: Option<PathBuf>,
    /// obs column holding the cell-type labels.
    #[arg(long)]
    pub label_key: String,
    /// Baseline: seurat, logistic or knn.
    #[arg(long, value_parser = ["seurat", "logistic", "knn"])]
    pub method: String,
    /// Read raw/X instead of X.
    #[arg(long)]
    pub use_raw: bool,
    /// Seurat anchor filtering neighbours (off by default, as in Seurat v5; Seurat 4 used 200).
    #[arg(long)]
    pub k_filter: Option<usize>,
    /// Seed of the random steps.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write predictions (cell_id,true_label,predicted_label,score) to this CSV.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

fn read(path: &Path, use_raw: bool) -> Result<Dataset> {
    read_h5ad(
        path,
        &ReadOptions {
            use_raw,
            ..Default::default()
        },
    )
}

fn read_ids(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

fn select_ids(ds: &Dataset, ids: &[String], list: &Path) -> Result<Dataset> {
    let pos: HashMap<&str, usize> = ds
        .cell_ids
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let rows = ids
        .iter()
        .map(|c| {
            pos.get(c.as_str()).copied().ok_or_else(|| {
                Error::invalid(
                    list.display().to_string(),
                    "cell id",
                    format!("'{c}' is not a cell of {}", ds.source),
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ds.select_cells(&rows))
}

fn load(args: &TransferArgs) -> Result<(Dataset, Dataset)> {
    match (&args.reference, &args.query, &args.data, &args.reference_cells, &args.query_cells) {
        (Some(r), Some(q), None, None, None) => Ok((read(r, args.use_raw)?, read(q, args.use_raw)?)),
        (None, None, Some(d), Some(rc), Some(qc)) => {
            let ds = read(d, args.use_raw)?;
            Ok((select_ids(&ds, &read_ids(rc)?, rc)?, select_ids(&ds, &read_ids(qc)?, qc)?))
        }
        _ => Err(Error::param(
            "input",
            "give either --reference and --query, or --data with --reference-cells and --query-cells",
        )),
    }
}

fn label_strings(ds: &Dataset, key: &str) -> Result<Vec<Option<String>>> {
    let labels = ds.labels(key)?;
    Ok((0..labels.len())
        .map(|i| labels.name(i).map(String::from))
        .collect())
}

/// Run the command.
pub fn run(args: TransferArgs) -> Result<()> {
    let (reference, query) = load(&args)?;
    let ref_labels: Labels = reference.labels(&args.label_key)?;
    let truth = label_strings(&query, &args.label_key)?;
    let method = match args.method.as_str() {
        "seurat" => BaselineMethod::Seurat,
        "logistic" => BaselineMethod::Logistic,
        _ => BaselineMethod::Knn,
    };
    let start = std::time::Instant::now();
    let reference = restrict_to_query_genes(&reference, &query)?;
    let mut extra = serde_json::Map::new();
    let prediction: Prediction = match method {
        BaselineMethod::Seurat => {
            let mut p = SeuratParams {
                k_filter: args.k_filter,
                ..Default::default()
            };
            p.pca.seed = args.seed;
            let out = p.fit(&reference, &ref_labels)?.transfer(&query)?;
            extra.insert("n_anchors".into(), out.n_anchors.into());
            extra.insert("warnings".into(), out.warnings.clone().into());
            for w in &out.warnings {
                eprintln!("note: {w}");
            }
            out.prediction
        }
        BaselineMethod::Logistic => {
            let fitted = LogisticParams {
                seed: args.seed,
                ..Default::default()
            }
            .fit(&reference, &ref_labels)?;
            extra.insert("chosen_c".into(), fitted.chosen_c().into());
            fitted.predict(&query)?
        }
        BaselineMethod::Knn => {
            let mut p = KnnParams::default();
            p.pca.seed = args.seed;
            p.fit(&reference, &ref_labels)?.predict(&query)?
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    let report = evaluate_prediction(&truth, &prediction)?;
    if report.n_skipped_unknown > 0 {
        eprintln!(
            "note: {} query cell(s) have a label absent from the reference ({}) or none; scored {} cells",
            report.n_skipped_unknown,
            report.unknown_classes.join(", "),
            report.n_cells
        );
    }
    if let Some(path) = &args.out {
        let mut csv = String::from("cell_id,true_label,predicted_label,score\n");
        for (i, t) in truth.iter().enumerate() {
            let t = t.as_deref().unwrap_or("");
            csv.push_str(&format!(
                "{},{},{},{}\n",
                quote(&query.cell_ids[i]),
                quote(t),
                quote(prediction.label(i)),
                prediction.scores[i]
            ));
        }
        crate::study::write_atomic(path, csv.as_bytes())?;
    }
    eprintln!(
        "{}: accuracy {:.4}, macro F1 {:.4} on {} query cells ({:.2} s)",
        method.as_str(),
        report.accuracy,
        report.macro_f1,
        report.n_cells,
        seconds
    );
    if args.json {
        let mut obj = serde_json::json!({
            "method": method.as_str(),
            "n_reference": reference.n_obs(),
            "n_query": query.n_obs(),
            "accuracy": report.accuracy,
            "macro_f1": report.macro_f1,
            "per_class": report.per_class,
            "seconds": seconds,
            "n_skipped_unknown": report.n_skipped_unknown,
        });
        if let Some(map) = obj.as_object_mut() {
            map.extend(extra);
        }
        println!("{obj}");
    }
    Ok(())
}

/// CSV field, quoted when it holds a comma, quote or newline.
fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fields with commas or quotes are quoted as CSV requires; plain ones are not.
    #[test]
    fn csv_quoting() {
        assert_eq!(quote("B cells"), "B cells");
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("x\"y"), "\"x\"\"y\"");
    }

    /// Mixing the two-file and one-file forms is a clear parameter error.
    #[test]
    fn rejects_mixed_inputs() {
        let args = TransferArgs {
            reference: Some("r.h5ad".into()),
            query: None,
            data: Some("d.h5ad".into()),
            reference_cells: None,
            query_cells: None,
            label_key: "label".into(),
            method: "seurat".into(),
            use_raw: false,
            k_filter: None,
            seed: 0,
            out: None,
            json: false,
        };
        let err = run(args).unwrap_err().to_string();
        assert!(err.contains("--reference and --query"), "{err}");
    }
}
