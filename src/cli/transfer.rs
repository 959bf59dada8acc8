//! `scrobust transfer`: fit a statistical baseline on a reference and classify a query.
//! Reference and query come from two files (`--reference`, `--query`) or from one file
//! (`--data`) split by obs values (`--split-key K --reference-values a,b*`), by a
//! stratified random split (`--split stratified --train-fraction F --seed S`) or by two
//! cell-id lists (`--reference-cells`, `--query-cells`).
//! JSON (`--json`) holds the classification fields of docs/design.md plus `n_skipped_unknown`,
//! `n_anchors` (Seurat) and warnings. The prediction CSV and the annotated query h5ad
//! (`--out-h5ad`) are written atomically.

use crate::baseline::annoy::AnnoyParams;
use crate::baseline::neighbors::NeighborMethod;
use crate::baseline::{
    restrict_to_query_genes, BaselineMethod, KnnParams, LogisticParams, SeuratParams,
};
use crate::data::split::{split_by_cell_ids, split_by_values, split_stratified};
use crate::data::{Column, Dataset, Labels, ValueKind};
use crate::error::{Error, Result};
use crate::eval::metrics::evaluate_prediction;
use crate::eval::Prediction;
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
    /// obs column that splits --data into reference and query (with --reference-values).
    #[arg(long)]
    pub split_key: Option<String>,
    /// Comma-separated values of --split-key that make the reference; a trailing `*`
    /// matches a prefix (`ctrl:*`). All other cells are the query.
    #[arg(long, value_delimiter = ',')]
    pub reference_values: Option<Vec<String>>,
    /// Random split of --data within each class of --label-key (seeded by --seed).
    #[arg(long, value_parser = ["stratified"])]
    pub split: Option<String>,
    /// Reference share of each class with --split stratified.
    #[arg(long, default_value_t = 0.8)]
    pub train_fraction: f64,
    /// obs column holding the cell-type labels.
    #[arg(long)]
    pub label_key: String,
    /// Baseline: seurat, logistic or knn.
    #[arg(long, value_parser = ["seurat", "logistic", "knn"])]
    pub method: String,
    /// Read raw/X instead of X.
    #[arg(long)]
    pub use_raw: bool,
    /// What the values are, overriding detection: counts or log-normalized.
    #[arg(long)]
    pub value_kind: Option<ValueKind>,
    /// Seurat anchor filtering neighbours (off by default, as in Seurat v5; Seurat 4 used 200).
    #[arg(long)]
    pub k_filter: Option<usize>,
    /// Neighbour search of Seurat label transfer: exact (default) or annoy (a seeded
    /// random-projection forest like Seurat's Annoy, faster on large data).
    #[arg(long, value_parser = ["exact", "annoy"], default_value = "exact")]
    pub nn: String,
    /// Trees of the annoy forest (with --nn annoy).
    #[arg(long, default_value_t = 50)]
    pub n_trees: usize,
    /// Seed of the random steps.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write predictions (cell_id,true_label,predicted_label,score) to this CSV.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write the query cells to this h5ad with obs columns `predicted_label`
    /// (categorical) and `prediction_score` (float).
    #[arg(long)]
    pub out_h5ad: Option<PathBuf>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

fn read(path: &Path, args: &TransferArgs) -> Result<Dataset> {
    super::read_input(path, args.use_raw, args.value_kind)
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

/// The one-file forms: which of the three ways of splitting `--data` was asked for.
enum OneFileSplit<'a> {
    CellLists(&'a Path, &'a Path),
    ByValues(&'a str, &'a [String]),
    Stratified(f64),
}

fn one_file_split(args: &TransferArgs) -> Result<OneFileSplit<'_>> {
    let lists = (&args.reference_cells, &args.query_cells);
    let values = (&args.split_key, &args.reference_values);
    let chosen = [
        lists.0.is_some() || lists.1.is_some(),
        values.0.is_some() || values.1.is_some(),
        args.split.is_some(),
    ];
    if chosen.iter().filter(|&&c| c).count() != 1 {
        return Err(Error::param(
            "split",
            "with --data give exactly one of: --reference-cells and --query-cells; \
             --split-key and --reference-values; --split stratified",
        ));
    }
    match (lists, values, args.split.as_deref()) {
        ((Some(rc), Some(qc)), _, _) => Ok(OneFileSplit::CellLists(rc, qc)),
        ((Some(_), None) | (None, Some(_)), _, _) => Err(Error::param(
            "reference-cells",
            "--reference-cells and --query-cells go together",
        )),
        (_, (Some(key), Some(vals)), _) => Ok(OneFileSplit::ByValues(key, vals)),
        (_, (Some(_), None) | (None, Some(_)), _) => Err(Error::param(
            "split-key",
            "--split-key and --reference-values go together",
        )),
        _ => Ok(OneFileSplit::Stratified(args.train_fraction)),
    }
}

/// Reference and query cells, in file order (cell lists: in list order).
fn load(args: &TransferArgs) -> Result<(Dataset, Dataset)> {
    match (&args.reference, &args.query, &args.data) {
        (Some(r), Some(q), None) => {
            if args.reference_cells.is_some()
                || args.query_cells.is_some()
                || args.split_key.is_some()
                || args.reference_values.is_some()
                || args.split.is_some()
            {
                return Err(Error::param(
                    "input",
                    "the split options (--reference-cells, --split-key, --split ...) need --data, not --reference and --query",
                ));
            }
            Ok((read(r, args)?, read(q, args)?))
        }
        (None, None, Some(d)) => {
            let split = one_file_split(args)?;
            let ds = read(d, args)?;
            let (rows_ref, rows_query) = match split {
                OneFileSplit::CellLists(rc, qc) => {
                    split_by_cell_ids(&ds, &read_ids(rc)?, &read_ids(qc)?)?
                }
                OneFileSplit::ByValues(key, vals) => split_by_values(&ds, key, vals)?,
                OneFileSplit::Stratified(fraction) => {
                    split_stratified(&ds.labels(&args.label_key)?, fraction, args.seed)?
                }
            };
            Ok((ds.select_cells(&rows_ref), ds.select_cells(&rows_query)))
        }
        _ => Err(Error::param(
            "input",
            "give either --reference and --query, or --data with a split \
             (--split-key/--reference-values, --split stratified, or --reference-cells/--query-cells)",
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
    check_transfer_outputs(&args)?;
    let (reference, query) = load(&args)?;
    super::require_cells(&reference, "reference")?;
    super::require_cells(&query, "query")?;
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
            let neighbors = match args.nn.as_str() {
                "annoy" => NeighborMethod::Annoy(AnnoyParams {
                    n_trees: args.n_trees,
                    search_k: None,
                    seed: args.seed,
                }),
                _ => NeighborMethod::Exact,
            };
            let mut p = SeuratParams {
                k_filter: args.k_filter,
                neighbors,
                ..Default::default()
            };
            p.pca.seed = args.seed;
            let out = p.fit(&reference, &ref_labels)?.transfer(&query)?;
            extra.insert("n_anchors".into(), out.n_anchors.into());
            extra.insert("warnings".into(), out.warnings.clone().into());
            let stages: serde_json::Map<String, serde_json::Value> = out
                .stage_seconds
                .iter()
                .map(|(k, v)| (k.to_string(), (*v).into()))
                .collect();
            extra.insert("stage_seconds".into(), stages.into());
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
    let mut staged = super::Staged::default();
    if let Some(path) = &args.out {
        staged.bytes(path, prediction_csv(&query, &truth, &prediction).as_bytes())?;
    }
    if let Some(path) = &args.out_h5ad {
        staged.h5ad(path, &annotated_query(&query, &prediction)?)?;
    }
    staged.commit()?;
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
            "value_kind": {
                "reference": reference.value_kind.as_str(),
                "query": query.value_kind.as_str(),
            },
        });
        if let Some(map) = obj.as_object_mut() {
            map.extend(extra);
        }
        println!("{obj}");
    }
    Ok(())
}

/// Every input file of the command, and refuse outputs that are one of them.
fn check_transfer_outputs(args: &TransferArgs) -> Result<()> {
    let inputs: Vec<&Path> = [
        &args.reference,
        &args.query,
        &args.data,
        &args.reference_cells,
        &args.query_cells,
    ]
    .into_iter()
    .flatten()
    .map(PathBuf::as_path)
    .collect();
    let mut outputs = Vec::new();
    if let Some(p) = &args.out {
        outputs.push(("out", p.as_path()));
    }
    if let Some(p) = &args.out_h5ad {
        outputs.push(("out-h5ad", p.as_path()));
    }
    super::check_outputs(&inputs, &outputs)
}

/// The prediction CSV: `cell_id,true_label,predicted_label,score`.
fn prediction_csv(query: &Dataset, truth: &[Option<String>], prediction: &Prediction) -> String {
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
    csv
}

/// The query with the predictions as obs columns `predicted_label` (categorical over the
/// reference classes, in their order) and `prediction_score`.
fn annotated_query(query: &Dataset, prediction: &Prediction) -> Result<Dataset> {
    let mut out = query.clone();
    let codes = prediction
        .predicted
        .iter()
        .map(|&p| i32::try_from(p).map_err(|_| Error::param("prediction", "too many classes")))
        .collect::<Result<Vec<i32>>>()?;
    out.set_column(
        "predicted_label",
        Column::Categorical {
            codes,
            categories: prediction.classes.clone(),
        },
    )?;
    out.set_column(
        "prediction_score",
        Column::Float(prediction.scores.iter().map(|&s| f64::from(s)).collect()),
    )?;
    Ok(out)
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
    use crate::data::h5ad::{read_h5ad, write_h5ad, ReadOptions};

    /// Fields with commas or quotes are quoted as CSV requires; plain ones are not.
    #[test]
    fn csv_quoting() {
        assert_eq!(quote("B cells"), "B cells");
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("x\"y"), "\"x\"\"y\"");
    }

    fn args(label_key: &str) -> TransferArgs {
        TransferArgs {
            reference: None,
            query: None,
            data: None,
            reference_cells: None,
            query_cells: None,
            split_key: None,
            reference_values: None,
            split: None,
            train_fraction: 0.8,
            label_key: label_key.into(),
            method: "knn".into(),
            use_raw: false,
            value_kind: None,
            k_filter: None,
            nn: "exact".into(),
            n_trees: 50,
            seed: 0,
            out: None,
            out_h5ad: None,
            json: false,
        }
    }

    /// A small labelled data set with a `batch` column (`ctrl:0`, `ctrl:1`, `stim:0`),
    /// written to an h5ad in `dir`.
    fn write_fixture(dir: &Path) -> PathBuf {
        let (mut ds, _) = crate::baseline::testutil::clustered_counts(30, 3, 40, 7);
        let batch: Vec<String> = (0..ds.n_obs())
            .map(|i| ["ctrl:0", "ctrl:1", "stim:0"][(i / 3) % 3].to_string())
            .collect();
        ds.set_column("batch", Column::categorical_from_strings(&batch))
            .unwrap_or_else(|e| panic!("{e}"));
        let path = dir.join("data.h5ad");
        write_h5ad(&ds, &path).unwrap_or_else(|e| panic!("{e}"));
        path
    }

    /// `--data --split-key batch --reference-values ctrl:*` puts the two ctrl batches in
    /// the reference and the stim batch in the query; `--out-h5ad` writes the query cells
    /// with `predicted_label` (categorical) and `prediction_score` (float in [0, 1]).
    #[test]
    fn split_by_values_and_annotated_h5ad() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut a = args("label");
        a.data = Some(write_fixture(dir.path()));
        a.split_key = Some("batch".into());
        a.reference_values = Some(vec!["ctrl:*".into()]);
        let (reference, query) = load(&a).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((reference.n_obs(), query.n_obs()), (60, 30));
        let out = dir.path().join("q.h5ad");
        a.out_h5ad = Some(out.clone());
        run(a).unwrap_or_else(|e| panic!("{e}"));
        let back = read_h5ad(&out, &ReadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.n_obs(), 30);
        assert_eq!(back.cell_ids, query.cell_ids);
        match back
            .column("predicted_label")
            .unwrap_or_else(|e| panic!("{e}"))
        {
            Column::Categorical { codes, categories } => {
                assert_eq!(categories, &["type0", "type1", "type2"]);
                assert!(codes.iter().all(|&c| (0..3).contains(&c)));
            }
            other => panic!("predicted_label is not categorical: {other:?}"),
        }
        match back
            .column("prediction_score")
            .unwrap_or_else(|e| panic!("{e}"))
        {
            Column::Float(v) => assert!(v.iter().all(|s| (0.0..=1.0).contains(s))),
            other => panic!("prediction_score is not float: {other:?}"),
        }
    }

    /// `--method seurat --nn annoy` runs label transfer with the approximate forest.
    #[test]
    fn seurat_with_annoy_neighbours() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut a = args("label");
        a.data = Some(write_fixture(dir.path()));
        a.split_key = Some("batch".into());
        a.reference_values = Some(vec!["ctrl:*".into()]);
        (a.method, a.nn, a.n_trees) = ("seurat".into(), "annoy".into(), 5);
        let csv = dir.path().join("p.csv");
        a.out = Some(csv.clone());
        run(a).unwrap_or_else(|e| panic!("{e}"));
        let text = std::fs::read_to_string(&csv).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(text.lines().count(), 31);
    }

    /// `--split stratified` keeps round(0.8 × 30) = 24 cells of each class in the
    /// reference, and the same seed gives the same split.
    #[test]
    fn stratified_split_is_seeded() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut a = args("label");
        a.data = Some(write_fixture(dir.path()));
        a.split = Some("stratified".into());
        let (r1, q1) = load(&a).unwrap_or_else(|e| panic!("{e}"));
        let (r2, _) = load(&a).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((r1.n_obs(), q1.n_obs()), (72, 18));
        assert_eq!(r1.cell_ids, r2.cell_ids);
        let counts = r1
            .labels("label")
            .unwrap_or_else(|e| panic!("{e}"))
            .counts();
        assert_eq!(counts, vec![24, 24, 24]);
    }

    /// Asking for two split forms at once, or half of one, is a parameter error that
    /// names the options; nothing is read.
    #[test]
    fn rejects_ambiguous_split() {
        let mut a = args("label");
        a.data = Some("absent.h5ad".into());
        a.split = Some("stratified".into());
        a.split_key = Some("batch".into());
        let err = load(&a).unwrap_err().to_string();
        assert!(err.contains("exactly one of"), "{err}");
        a.split = None;
        let err = load(&a).unwrap_err().to_string();
        assert!(err.contains("--reference-values"), "{err}");
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
            split_key: None,
            reference_values: None,
            split: None,
            train_fraction: 0.8,
            label_key: "label".into(),
            method: "seurat".into(),
            use_raw: false,
            value_kind: None,
            k_filter: None,
            nn: "exact".into(),
            n_trees: 50,
            seed: 0,
            out: None,
            out_h5ad: None,
            json: false,
        };
        let err = run(args).unwrap_err().to_string();
        assert!(err.contains("--reference and --query"), "{err}");
    }
}
