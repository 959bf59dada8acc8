//! `scrobust transfer`: fit a statistical baseline on a reference and classify a query.
//! Reference and query come from two files (`--reference`, `--query`) or from one file
//! (`--data`) split by obs values (`--split-key K --reference-values a,b*`), by a
//! stratified random split (`--split stratified --train-fraction F --seed S`) or by two
//! cell-id lists (`--reference-cells`, `--query-cells`).
//! JSON (`--json`) holds the classification fields of docs/design.md plus `n_skipped_unknown`,
//! `n_anchors` (Seurat) and warnings. The prediction CSV and the annotated query h5ad
//! (`--out-h5ad`) are written atomically.

use crate::baseline::AnnoyParams;
use crate::baseline::NeighborMethod;
use crate::baseline::{
    restrict_to_query_genes, BaselineMethod, KnnParams, LogisticParams, SeuratParams,
};
use crate::data::{Dataset, Labels};
use crate::error::Result;
use crate::eval::metrics::evaluate_prediction;
use crate::eval::Prediction;
use crate::traits::{Fit, Predict};

/// Arguments of `scrobust transfer`.
#[derive(Debug, Clone, clap::Args)]
pub struct TransferArgs {
    /// Which cells are the reference and which the query.
    #[command(flatten)]
    pub input: super::select::DataArgs,
    /// obs column holding the cell-type labels.
    #[arg(long)]
    pub label_key: String,
    /// Baseline: seurat, logistic or knn.
    #[arg(long)]
    pub method: BaselineMethod,
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
    /// Prediction outputs.
    #[command(flatten)]
    pub output: super::select::OutputArgs,
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
    let (reference, query) = args.input.load(&args.label_key, args.seed)?;
    super::require_cells(&reference, "reference")?;
    super::require_cells(&query, "query")?;
    let ref_labels: Labels = reference.labels(&args.label_key)?;
    let truth = label_strings(&query, &args.label_key)?;
    let method = args.method;
    let start = std::time::Instant::now();
    let reference = restrict_to_query_genes(&reference, &query)?;
    let mut extra = serde_json::Map::new();
    let prediction = match method {
        BaselineMethod::Seurat => seurat(&args, &reference, &ref_labels, &query, &mut extra)?,
        BaselineMethod::Logistic => {
            let fitted = LogisticParams::new()
                .seed(args.seed)
                .fit(&reference, &ref_labels)?;
            extra.insert("chosen_c".into(), fitted.chosen_c().into());
            fitted.predict(&query)?
        }
        BaselineMethod::Knn => KnnParams::new()
            .seed(args.seed)
            .fit(&reference, &ref_labels)?
            .predict(&query)?,
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
    args.output.write(&query, &truth, &prediction)?;
    eprintln!(
        "{}: accuracy {:.4}, macro F1 {:.4} on {} query cells ({:.2} s)",
        method.as_str(),
        report.accuracy,
        report.macro_f1,
        report.n_cells,
        seconds
    );
    if args.output.json {
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

/// Seurat label transfer with the command's options; its anchor count, warnings and
/// stage timings go into `extra` (the JSON).
fn seurat(
    args: &TransferArgs,
    reference: &Dataset,
    labels: &Labels,
    query: &Dataset,
    extra: &mut serde_json::Map<String, serde_json::Value>,
) -> Result<Prediction> {
    let neighbors = match args.nn.as_str() {
        "annoy" => NeighborMethod::Annoy(AnnoyParams {
            n_trees: args.n_trees,
            search_k: None,
            seed: args.seed,
        }),
        _ => NeighborMethod::Exact,
    };
    let out = SeuratParams::new()
        .k_filter(args.k_filter)
        .neighbors(neighbors)
        .seed(args.seed)
        .fit(reference, labels)?
        .transfer(query)?;
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
    Ok(out.prediction)
}

/// Refuse outputs that are one of the command's inputs.
fn check_transfer_outputs(args: &TransferArgs) -> Result<()> {
    let outputs = args.output.files();
    super::check_outputs(&args.input.inputs(), &outputs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::select::tests::write_fixture;
    use crate::data::h5ad::{read_h5ad, ReadOptions};
    use crate::data::Column;

    fn args(label_key: &str) -> TransferArgs {
        TransferArgs {
            input: super::super::select::DataArgs {
                train_fraction: 0.8,
                ..Default::default()
            },
            label_key: label_key.into(),
            method: BaselineMethod::Knn,
            k_filter: None,
            nn: "exact".into(),
            n_trees: 50,
            seed: 0,
            output: Default::default(),
        }
    }

    /// `--data --split-key batch --reference-values ctrl:*` puts the two ctrl batches in
    /// the reference and the stim batch in the query; `--out-h5ad` writes the query cells
    /// with `predicted_label` (categorical) and `prediction_score` (float in [0, 1]).
    #[test]
    fn split_by_values_and_annotated_h5ad() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut a = args("label");
        a.input.data = Some(write_fixture(dir.path()));
        a.input.split_key = Some("batch".into());
        a.input.reference_values = Some(vec!["ctrl:*".into()]);
        let (reference, query) = a.input.load("label", 0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((reference.n_obs(), query.n_obs()), (60, 30));
        let out = dir.path().join("q.h5ad");
        a.output.out_h5ad = Some(out.clone());
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
        a.input.data = Some(write_fixture(dir.path()));
        a.input.split_key = Some("batch".into());
        a.input.reference_values = Some(vec!["ctrl:*".into()]);
        (a.method, a.nn, a.n_trees) = (BaselineMethod::Seurat, "annoy".into(), 5);
        let csv = dir.path().join("p.csv");
        a.output.out = Some(csv.clone());
        run(a).unwrap_or_else(|e| panic!("{e}"));
        let text = std::fs::read_to_string(&csv).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(text.lines().count(), 31);
    }
}
