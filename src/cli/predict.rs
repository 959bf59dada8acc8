//! `scrobust predict`: classify query cells with a classifier saved by
//! `scrobust train --save-model DIR`. The query is read like every command's (`--query`, or
//! the query part of a split `--data`); its genes are matched to the model's by name.
//! With `--label-key` the predictions are also scored against the query's labels.

use crate::error::{Error, Result};
use crate::eval::metrics::evaluate_prediction;
use crate::models::gate::single_class_prediction;
use crate::models::NeuralClassifier;
use crate::traits::Predict;
use std::path::PathBuf;

/// Arguments of `scrobust predict`.
#[derive(Debug, Clone, clap::Args)]
pub struct PredictArgs {
    /// Folder written by `scrobust train --save-model`.
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// The cells to classify.
    #[command(flatten)]
    pub input: super::select::DataArgs,
    /// obs column with true labels, to score the predictions (optional).
    #[arg(long)]
    pub label_key: Option<String>,
    /// Seed of a stratified split of --data.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Prediction outputs.
    #[command(flatten)]
    pub output: super::select::OutputArgs,
}

/// Run `scrobust predict`.
pub fn run(args: &PredictArgs) -> Result<()> {
    let outputs = args.output.files();
    let mut inputs = args.input.inputs();
    inputs.push(&args.model);
    super::check_outputs(&inputs, &outputs)?;
    let model = NeuralClassifier::load(&args.model)?;
    let query = args
        .input
        .load_query(args.label_key.as_deref(), args.seed)?;
    super::require_cells(&query, "query")?;
    // Counted by name: `predict` itself reads the query in the model's genes.
    let in_query: std::collections::HashSet<&str> =
        query.gene_names.iter().map(String::as_str).collect();
    let shared = model
        .genes()
        .iter()
        .filter(|g| in_query.contains(g.as_str()))
        .count();
    eprintln!(
        "{} classifier from {}: {} query cells, {} of its {} genes present",
        model.kind().as_str(),
        args.model.display(),
        query.n_obs(),
        shared,
        model.genes().len()
    );
    let started = std::time::Instant::now();
    let prediction = model.predict(&query)?;
    let seconds = started.elapsed().as_secs_f64();
    let truth: Vec<Option<String>> = match &args.label_key {
        Some(key) => {
            let col = query.column(key)?;
            (0..query.n_obs()).map(|i| col.get_str(i)).collect()
        }
        None => vec![None; query.n_obs()],
    };
    args.output.write(&query, &truth, &prediction)?;
    let single_class = single_class_prediction(&prediction);
    if single_class {
        eprintln!(
            "warning: the classifier predicts one class ('{}') for every query cell",
            prediction.label(0)
        );
    }
    let report = match &args.label_key {
        Some(_) => Some(evaluate_prediction(&truth, &prediction)?),
        None => None,
    };
    if let Some(r) = &report {
        eprintln!(
            "accuracy {:.4}, macro F1 {:.4} on {} scored cells ({:.2} s)",
            r.accuracy, r.macro_f1, r.n_cells, seconds
        );
    }
    if args.output.json {
        let mut obj = serde_json::json!({
            "model": model.kind().as_str(),
            "n_query": query.n_obs(),
            "n_model_genes": model.genes().len(),
            "n_shared_genes": shared,
            "seconds": seconds,
            "single_class_prediction": single_class,
        });
        if let (Some(r), Some(map)) = (&report, obj.as_object_mut()) {
            let scored =
                serde_json::to_value(r).map_err(|e| Error::Model(format!("report JSON: {e}")))?;
            if let serde_json::Value::Object(fields) = scored {
                map.extend(fields);
            }
        }
        println!("{obj}");
    }
    Ok(())
}
