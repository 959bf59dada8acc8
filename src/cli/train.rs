//! `scrobust train`: pretrain and fine-tune one foundation-model-like classifier on a
//! reference h5ad, predict a query h5ad, and report classification metrics.

use crate::data::h5ad::{read_h5ad, ReadOptions};
use crate::data::split::{align_genes, conform_genes};
use crate::error::{Error, Result};
use crate::eval::metrics::evaluate_prediction;
use crate::models::pipeline::{train_and_predict_many, PipelineOptions};
use crate::models::{DataShape, ModelKind, TrainConfig};
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `scrobust train`.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    /// Model: scgpt, geneformer or scmamba2.
    #[arg(long)]
    pub model: ModelKind,
    /// Reference (training) h5ad.
    #[arg(long)]
    pub reference: PathBuf,
    /// Query h5ad (predicted and scored; never trained on).
    #[arg(long)]
    pub query: PathBuf,
    /// obs column holding the cell types.
    #[arg(long)]
    pub label_key: String,
    /// Profile with [train] and [models.*] sections.
    #[arg(long, default_value = "configs/quick.toml")]
    pub config: PathBuf,
    /// Override the learning rate of the profile.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Override the seed of the profile.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override the pretraining steps.
    #[arg(long)]
    pub pretrain_steps: Option<usize>,
    /// Override the fine-tuning steps.
    #[arg(long)]
    pub finetune_steps: Option<usize>,
    /// Train from scratch (no masked-modelling pretraining).
    #[arg(long)]
    pub no_pretrain: bool,
    /// Extra unlabelled h5ad for pretraining only (repeatable), read in the reference's
    /// genes; the reference's training cells are always part of the corpus.
    #[arg(long = "pretrain-corpus", value_name = "FILE")]
    pub pretrain_corpus: Vec<PathBuf>,
    /// Folder for checkpoints; an interrupted run resumes from it.
    #[arg(long)]
    pub checkpoint_dir: Option<PathBuf>,
    /// Write predictions as CSV (`cell_id,true_label,predicted_label,score`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Run `scrobust train`.
pub fn run(args: &TrainArgs) -> Result<()> {
    let mut cfg = TrainConfig::load(&args.config)?;
    if let Some(lr) = args.lr {
        cfg.train.lr = lr;
    }
    if let Some(seed) = args.seed {
        cfg.train.seed = seed;
    }
    if let Some(n) = args.pretrain_steps {
        cfg.train.pretrain_steps = n;
    }
    if let Some(n) = args.finetune_steps {
        cfg.train.finetune_steps = n;
    }
    cfg.validate()?;
    let reference = read_h5ad(&args.reference, &ReadOptions::default())?;
    let query = read_h5ad(&args.query, &ReadOptions::default())?;
    let (reference, query, alignment) = align_genes(&reference, &query)?;
    let labels = reference.labels(&args.label_key)?;
    let truth: Vec<Option<String>> = {
        let col = query.column(&args.label_key)?;
        (0..query.n_obs()).map(|i| col.get_str(i)).collect()
    };
    eprintln!(
        "{}: {} reference cells, {} query cells, {} shared genes ({} value kind), {} classes",
        args.model.as_str(),
        reference.n_obs(),
        query.n_obs(),
        alignment.n_shared,
        reference.value_kind.as_str(),
        labels.classes.len()
    );
    if let Ok(counts) = crate::models::param_counts(
        &cfg,
        DataShape {
            vocab_size: reference.n_vars() + crate::tokenize::N_SPECIAL as usize,
            max_len: cfg.train.max_seq_len,
        },
        labels.classes.len(),
    ) {
        let text: Vec<String> = counts
            .iter()
            .map(|(k, n)| format!("{} {n}", k.as_str()))
            .collect();
        eprintln!(
            "trainable parameters with this profile: {}",
            text.join(", ")
        );
    }
    // Read in the reference's genes here (the pipeline would do it otherwise), so the
    // shared-gene count comes from the same mapping the training uses.
    let mut corpus = Vec::with_capacity(args.pretrain_corpus.len());
    for path in &args.pretrain_corpus {
        let raw = read_h5ad(path, &ReadOptions::default())?;
        let (conformed, shared) = conform_genes(&raw, &reference.gene_names)?;
        eprintln!(
            "pretraining corpus {}: {} cells, {} of the reference's {} genes",
            raw.source,
            raw.n_obs(),
            shared,
            reference.n_vars()
        );
        corpus.push(conformed);
    }
    let opts = PipelineOptions {
        no_pretrain: args.no_pretrain,
        checkpoint_dir: args.checkpoint_dir.as_deref(),
        progress: true,
        pretrain_corpus: &corpus,
    };
    let (outcome, _) = train_and_predict_many(
        args.model,
        &cfg,
        &reference,
        &labels,
        std::slice::from_ref(&query),
        cfg.train.seed,
        &opts,
    )?;
    let report = evaluate_prediction(&truth, &outcome.prediction)?;
    if let Some(path) = &args.out {
        write_predictions(path, &query.cell_ids, &truth, &outcome.prediction)?;
    }
    if args.json {
        let mut obj =
            serde_json::to_value(&report).map_err(|e| Error::Model(format!("report JSON: {e}")))?;
        if let Some(map) = obj.as_object_mut() {
            let extra = serde_json::json!({
                "method": args.model.as_str(),
                "model": args.model.as_str(),
                "n_reference": reference.n_obs(),
                "n_query": query.n_obs(),
                "seconds": outcome.seconds,
                "n_params": outcome.n_params,
                "pretrain_steps": outcome.pretrain_steps,
                "finetune_steps": outcome.finetune_steps,
                "n_pretrain_cells": outcome.n_pretrain_cells,
                "val_accuracy": outcome.val_accuracy,
                "best_step": outcome.best_step,
                "final_pretrain_loss": outcome.final_pretrain_loss,
                "final_finetune_loss": outcome.final_finetune_loss,
                "lr": cfg.train.lr,
                "seed": cfg.train.seed,
                "config": args.config.display().to_string(),
            });
            if let Some(extra) = extra.as_object() {
                map.extend(extra.clone());
            }
        }
        println!("{obj}");
    } else {
        eprintln!(
            "{}: accuracy {:.4}, macro F1 {:.4}, {} parameters, {} pretrain + {} fine-tune steps, best validation accuracy {}, {:.1} s",
            args.model.as_str(),
            report.accuracy,
            report.macro_f1,
            outcome.n_params,
            outcome.pretrain_steps,
            outcome.finetune_steps,
            outcome.val_accuracy.map_or("-".to_string(), |a| format!("{a:.4}")),
            outcome.seconds
        );
        for c in &report.per_class {
            eprintln!(
                "  {:<28} precision {:.3} recall {:.3} f1 {:.3} support {:>5} predicted {:.3} true {:.3}",
                c.class, c.precision, c.recall, c.f1, c.support, c.predicted_share, c.true_share
            );
        }
    }
    Ok(())
}

/// Predictions as CSV, written atomically.
fn write_predictions(
    path: &std::path::Path,
    cell_ids: &[String],
    truth: &[Option<String>],
    pred: &crate::eval::Prediction,
) -> Result<()> {
    let tmp = path.with_extension("csv.tmp");
    let mut f =
        std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?);
    let quote = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    writeln!(f, "cell_id,true_label,predicted_label,score").map_err(|e| Error::io(&tmp, e))?;
    for i in 0..cell_ids.len() {
        writeln!(
            f,
            "{},{},{},{}",
            quote(&cell_ids[i]),
            quote(truth[i].as_deref().unwrap_or("")),
            quote(pred.label(i)),
            pred.scores[i]
        )
        .map_err(|e| Error::io(&tmp, e))?;
    }
    f.flush().map_err(|e| Error::io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}
