//! `scrobust inspect FILE.h5ad`: what a file holds (shape, value kind, obs columns,
//! optionally the cells per label) before any analysis is run on it.

use crate::data::h5ad::{read_h5ad, ReadOptions};
use crate::data::{Dataset, ValueKind};
use crate::error::Result;
use serde_json::{json, Map, Value};
use std::path::PathBuf;

/// Arguments of `scrobust inspect`.
#[derive(Debug, Clone, clap::Args)]
pub struct InspectArgs {
    /// The h5ad file to describe.
    pub file: PathBuf,
    /// obs column holding the cell-type labels; adds cells per class.
    #[arg(long)]
    pub label_key: Option<String>,
    /// Print one JSON object on stdout (the human summary still goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Describe `raw/X` and `raw/var` instead of `X` and `var`.
    #[arg(long)]
    pub use_raw: bool,
}

/// Read the file and report it.
pub fn run(args: &InspectArgs) -> Result<()> {
    let ds = read_h5ad(
        &args.file,
        &ReadOptions {
            use_raw: args.use_raw,
            value_kind: None,
        },
    )?;
    let summary = summarize(&ds, args)?;
    eprint!("{}", human(&summary));
    if args.json {
        println!("{}", Value::Object(summary));
    }
    Ok(())
}

/// The facts reported, as the JSON object printed by `--json`.
fn summarize(ds: &Dataset, args: &InspectArgs) -> Result<Map<String, Value>> {
    let (n_obs, n_vars) = ds.x.shape();
    let n_empty = ds.x.indptr().windows(2).filter(|w| w[0] == w[1]).count();
    let (min, max) =
        ds.x.data()
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
    let has_implicit_zeros = ds.x.nnz() < n_obs * n_vars;
    let mut out = Map::new();
    out.insert("file".into(), json!(args.file.display().to_string()));
    out.insert("use_raw".into(), json!(args.use_raw));
    out.insert("n_obs".into(), json!(n_obs));
    out.insert("n_vars".into(), json!(n_vars));
    out.insert("nnz".into(), json!(ds.x.nnz()));
    out.insert(
        "density".into(),
        json!(if n_obs * n_vars == 0 {
            0.0
        } else {
            ds.x.nnz() as f64 / (n_obs * n_vars) as f64
        }),
    );
    out.insert("value_kind".into(), json!(ds.value_kind.as_str()));
    out.insert("value_note".into(), json!(value_note(ds.value_kind, min)));
    out.insert(
        "min_value".into(),
        json!(if ds.x.nnz() == 0 || (has_implicit_zeros && min > 0.0) {
            0.0
        } else {
            min as f64
        }),
    );
    out.insert(
        "max_value".into(),
        json!(if ds.x.nnz() == 0 {
            0.0
        } else {
            max.max(0.0) as f64
        }),
    );
    out.insert("n_empty_cells".into(), json!(n_empty));
    out.insert("obs_columns".into(), json!(ds.obs_columns()));
    out.insert(
        "obsm_keys".into(),
        json!(ds.obsm.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>()),
    );
    out.insert(
        "first_genes".into(),
        json!(ds.gene_names.iter().take(5).collect::<Vec<_>>()),
    );
    if let Some(key) = &args.label_key {
        let labels = ds.labels(key)?;
        let counts: Map<String, Value> = labels
            .classes
            .iter()
            .zip(labels.counts())
            .map(|(c, n)| (c.clone(), json!(n)))
            .collect();
        out.insert("label_key".into(), json!(key));
        out.insert(
            "n_classes".into(),
            json!(labels.counts().iter().filter(|&&n| n > 0).count()),
        );
        out.insert("label_counts".into(), Value::Object(counts));
        out.insert(
            "n_missing_labels".into(),
            json!(labels.codes.iter().filter(|c| c.is_none()).count()),
        );
    }
    Ok(out)
}

/// What the analyses will do with these values (the README asks to say it, not guess silently).
fn value_note(kind: ValueKind, min: f32) -> &'static str {
    match kind {
        ValueKind::Counts => "raw counts: analyses normalize them (total 1e4, log1p) first",
        ValueKind::Scaled => {
            "negative values: scaled (z-scored); analyses refuse it, try --use-raw"
        }
        ValueKind::LogNormalized if min < 0.0 => "negative values: analyses refuse them",
        ValueKind::LogNormalized => "log-normalized: used as is, never logged again",
    }
}

/// The human-readable summary (stderr).
fn human(s: &Map<String, Value>) -> String {
    let get = |k: &str| match s.get(k) {
        Some(Value::Array(items)) if items.is_empty() => "(none)".to_string(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(", "),
        Some(Value::String(v)) => v.clone(),
        Some(Value::Number(n)) if n.is_f64() => format!("{:.4}", n.as_f64().unwrap_or(0.0))
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string(),
        Some(v) => v.to_string(),
        None => String::new(),
    };
    let mut text = format!(
        "{}{}\n  {} cells x {} genes, {} stored values (density {:.3})\n  values: {} in [{}, {}] ({})\n  empty cells: {}\n  obs columns: {}\n  obsm: {}\n",
        get("file"),
        if s.get("use_raw") == Some(&json!(true)) { " (raw)" } else { "" },
        get("n_obs"),
        get("n_vars"),
        get("nnz"),
        s.get("density").and_then(Value::as_f64).unwrap_or(0.0),
        get("value_kind"),
        get("min_value"),
        get("max_value"),
        get("value_note"),
        get("n_empty_cells"),
        get("obs_columns"),
        get("obsm_keys"),
    );
    if let Some(Value::Object(counts)) = s.get("label_counts") {
        let mut pairs: Vec<(&String, u64)> = counts
            .iter()
            .map(|(k, v)| (k, v.as_u64().unwrap_or(0)))
            .collect();
        pairs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        text.push_str(&format!(
            "  labels '{}' ({} classes, {} missing):\n",
            get("label_key"),
            get("n_classes"),
            get("n_missing_labels")
        ));
        for (class, n) in pairs {
            text.push_str(&format!("    {n:>7}  {class}\n"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Column, CsrMatrix};

    fn args(label_key: Option<&str>) -> InspectArgs {
        InspectArgs {
            file: "toy.h5ad".into(),
            label_key: label_key.map(String::from),
            json: true,
            use_raw: false,
        }
    }

    fn toy() -> Dataset {
        Dataset {
            x: CsrMatrix::from_dense(&ndarray::array![[1.0f32, 0.0], [0.0, 0.0], [2.0, 5.0]]),
            cell_ids: vec!["a".into(), "b".into(), "c".into()],
            gene_names: vec!["G1".into(), "G2".into()],
            obs: vec![(
                "cell_type".into(),
                Column::Categorical {
                    codes: vec![0, 1, -1],
                    categories: vec!["B".into(), "T".into()],
                },
            )],
            obsm: vec![],
            value_kind: ValueKind::Counts,
            source: "toy".into(),
        }
    }

    /// The summary holds the contract fields with the right values.
    #[test]
    fn summary_fields() {
        let s = summarize(&toy(), &args(Some("cell_type"))).unwrap();
        assert_eq!(s["n_obs"], json!(3));
        assert_eq!(s["n_vars"], json!(2));
        assert_eq!(s["value_kind"], json!("counts"));
        assert_eq!(s["obs_columns"], json!(["cell_type"]));
        assert_eq!(s["label_counts"], json!({"B": 1, "T": 1}));
        assert_eq!(s["n_missing_labels"], json!(1));
        assert_eq!(s["n_empty_cells"], json!(1));
        assert_eq!(s["min_value"], json!(0.0));
        assert!(human(&s).contains("3 cells x 2 genes"));
    }

    /// An unknown label key is an error listing the columns.
    #[test]
    fn unknown_label_key() {
        let e = summarize(&toy(), &args(Some("celltype")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'celltype' not found") && e.contains("cell_type"),
            "{e}"
        );
    }
}
