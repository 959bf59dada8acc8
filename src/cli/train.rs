//! `scrobust train`: pretrain and fine-tune one foundation-model-like classifier on a
//! reference h5ad, predict a query h5ad, and report classification metrics, the learning
//! curve and the competence gate (the model's reference-validation scores against L1
//! logistic regression trained and scored on the same reference cells; see
//! [`crate::models::gate`]).

use crate::data::split::{align_genes, conform_genes};
use crate::error::{Error, Result};
use crate::eval::metrics::evaluate_prediction;
use crate::models::gate::{competence_gate, single_class_prediction, GateReport};
use crate::models::pretrained::Checkpoint;
use crate::models::{fit_classifier, InitFrom, PipelineOptions, TrainOutcome};
use crate::models::{DataShape, ModelKind, TrainConfig};
use crate::traits::Predict;
use std::path::PathBuf;

/// Arguments of `scrobust train`.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    /// Model: scgpt, geneformer or scmamba2.
    #[arg(long)]
    pub model: ModelKind,
    /// Reference (trained on) and query (predicted and scored; never trained on) cells.
    #[command(flatten)]
    pub input: super::select::DataArgs,
    /// obs column holding the cell types.
    #[arg(long)]
    pub label_key: String,
    /// Profile with [train] and [models.*] sections (default: the built-in quick profile).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override the learning rate of the profile.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Override the seed of the profile.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override the pretraining steps.
    #[arg(long)]
    pub pretrain_steps: Option<usize>,
    /// Override the maximum fine-tuning steps.
    #[arg(long)]
    pub finetune_steps: Option<usize>,
    /// Override the early-stopping patience (evaluations without a lower validation loss;
    /// 0 = run all fine-tuning steps).
    #[arg(long)]
    pub patience: Option<usize>,
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
    /// Save the trained classifier (weights, tokenizer, genes, classes, config) to this
    /// folder; `scrobust predict --model DIR` uses it later.
    #[arg(long, value_name = "DIR")]
    pub save_model: Option<PathBuf>,
    /// Fine-tune a published checkpoint folder (Geneformer: a Hugging Face BERT folder
    /// with its token and gene-median dictionaries; scGPT: best_model.pt, vocab.json,
    /// args.json). Its architecture replaces the profile's; in-project pretraining is
    /// skipped. `scrobust inspect-checkpoint DIR` shows what it holds.
    #[arg(long, value_name = "DIR")]
    pub init_from: Option<PathBuf>,
    /// Gene name mapping onto the checkpoint's vocabulary (with --init-from).
    #[command(flatten)]
    pub gene_ids: super::select::GeneIdArgs,
    /// Prediction outputs.
    #[command(flatten)]
    pub output: super::select::OutputArgs,
}

/// How many reference genes the checkpoint's vocabulary holds (stderr).
fn report_gene_match(init: &InitFrom, reference: &crate::data::Dataset) {
    let m = init
        .checkpoint
        .match_genes(&init.vocab_names(&reference.gene_names));
    eprintln!(
        "checkpoint {} ({}): {} of {} reference genes in its vocabulary{}",
        init.checkpoint.dir().display(),
        init.checkpoint.kind().as_str(),
        m.n_matched,
        m.n_genes,
        if m.unmatched_examples.is_empty() {
            String::new()
        } else {
            format!("; not matched e.g. {:?}", m.unmatched_examples)
        }
    );
}

/// The profile with the command line's overrides.
fn load_config(args: &TrainArgs) -> Result<TrainConfig> {
    let mut cfg = match &args.config {
        Some(path) => TrainConfig::load(path)?,
        None => TrainConfig::from_toml_str(
            super::study::QUICK_PROFILE,
            std::path::Path::new("(built-in quick profile)"),
        )?,
    };
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
    if let Some(n) = args.patience {
        cfg.train.patience = n;
    }
    cfg.validate()?;
    Ok(cfg)
}

/// Run `scrobust train`.
pub fn run(args: &TrainArgs) -> Result<()> {
    let cfg = load_config(args)?;
    check_train_outputs(args)?;
    let (reference, query) = args.input.load(&args.label_key, cfg.train.seed)?;
    super::require_cells(&reference, "reference")?;
    super::require_cells(&query, "query")?;
    let (reference, query, alignment) = align_genes(&reference, &query)?;
    let labels = reference.labels(&args.label_key)?;
    require_two_classes(&labels, &reference, &args.label_key)?;
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
    let checkpoint = args
        .init_from
        .as_deref()
        .map(Checkpoint::load)
        .transpose()?;
    if args.gene_ids.given() && args.init_from.is_none() {
        return Err(Error::param(
            "gene-id-table",
            "maps genes for --init-from; give it too",
        ));
    }
    let data_file = args
        .input
        .reference
        .as_deref()
        .or(args.input.data.as_deref());
    let gene_ids = args.gene_ids.load(data_file, args.input.use_raw)?;
    let init_from = checkpoint.as_ref().map(|checkpoint| InitFrom {
        checkpoint,
        gene_ids: gene_ids.as_ref(),
    });
    if let Some(init) = &init_from {
        report_gene_match(init, &reference);
    } else {
        print_param_counts(&cfg, &reference, labels.classes.len());
    }
    let corpus = read_corpus(args, &reference)?;
    let opts = PipelineOptions {
        no_pretrain: args.no_pretrain,
        checkpoint_dir: args.checkpoint_dir.as_deref(),
        progress: true,
        pretrain_corpus: &corpus,
        init_from,
    };
    let (model, fit) =
        fit_classifier(args.model, &cfg, &reference, &labels, cfg.train.seed, &opts)?;
    let outcome = TrainOutcome {
        prediction: model.predict(&query)?,
        query_truncation_rate: model.truncation_rate(&query)?,
        fit,
    };
    let report = evaluate_prediction(&truth, &outcome.prediction)?;
    if let Some(dir) = &args.save_model {
        model.save(dir)?;
        eprintln!("saved the classifier to {}", dir.display());
    }
    args.output.write(&query, &truth, &outcome.prediction)?;
    let gate = competence_gate(&reference, &labels, &outcome.fit, cfg.train.seed)?;
    let single_class = single_class_prediction(&outcome.prediction);
    warn_if_undertrained(args.model, gate.as_ref(), single_class, &outcome);
    if args.output.json {
        let mut obj =
            serde_json::to_value(&report).map_err(|e| Error::Model(format!("report JSON: {e}")))?;
        if let Some(map) = obj.as_object_mut() {
            let extra = serde_json::json!({
                "method": args.model.as_str(),
                "model": args.model.as_str(),
                "n_reference": reference.n_obs(),
                "n_query": query.n_obs(),
                "config": args.config.as_ref().map_or("(built-in quick)".to_string(), |p| p.display().to_string()),
                "init_from": args.init_from.as_ref().map(|p| p.display().to_string()),
                "value_kind": {
                    "reference": reference.value_kind.as_str(),
                    "query": query.value_kind.as_str(),
                },
            });
            for part in [
                extra,
                training_json(&cfg, &outcome, gate.as_ref(), single_class),
            ] {
                if let serde_json::Value::Object(part) = part {
                    map.extend(part);
                }
            }
        }
        println!("{obj}");
    } else {
        print_summary(args.model, &report, &outcome, gate.as_ref());
    }
    Ok(())
}

/// Trainable parameters of each model with this profile, on stderr.
fn print_param_counts(cfg: &TrainConfig, reference: &crate::data::Dataset, n_classes: usize) {
    if let Ok(counts) = crate::models::param_counts(
        cfg,
        DataShape {
            vocab_size: reference.n_vars() + crate::tokenize::N_SPECIAL as usize,
            max_len: cfg.train.max_seq_len,
        },
        n_classes,
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
}

/// The extra pretraining corpus, read in the reference's genes here (the pipeline would do
/// it otherwise), so the shared-gene count comes from the same mapping the training uses.
fn read_corpus(
    args: &TrainArgs,
    reference: &crate::data::Dataset,
) -> Result<Vec<crate::data::Dataset>> {
    let mut corpus = Vec::with_capacity(args.pretrain_corpus.len());
    for path in &args.pretrain_corpus {
        let raw = super::read_input(path, args.input.use_raw, args.input.value_kind)?;
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
    Ok(corpus)
}

/// The human-readable summary on stderr.
fn print_summary(
    model: ModelKind,
    report: &crate::eval::ClassificationReport,
    outcome: &TrainOutcome,
    gate: Option<&GateReport>,
) {
    eprintln!(
        "{}: accuracy {:.4}, macro F1 {:.4}, {} parameters, {} pretrain + {} fine-tune steps{}, best validation step {}: accuracy {}, macro F1 {}, {:.1} s",
        model.as_str(),
        report.accuracy,
        report.macro_f1,
        outcome.fit.n_params,
        outcome.fit.pretrain_steps,
        outcome.fit.finetune_steps,
        if outcome.fit.stopped_early { " (stopped early)" } else { "" },
        outcome.fit.best_step.map_or("-".to_string(), |s| s.to_string()),
        fmt_score(outcome.fit.val_accuracy),
        fmt_score(outcome.fit.val_macro_f1),
        outcome.fit.seconds
    );
    if let Some(g) = gate {
        eprintln!(
            "competence gate: {} (logistic regression on the same cells: validation accuracy {:.4}, macro F1 {:.4})",
            if g.passed { "passed" } else { "failed" },
            g.logistic.accuracy,
            g.logistic.macro_f1
        );
    }
    for c in &report.per_class {
        eprintln!(
            "  {:<28} precision {:.3} recall {:.3} f1 {:.3} support {:>5} predicted {:.3} true {:.3}",
            c.class, c.precision, c.recall, c.f1, c.support, c.predicted_share, c.true_share
        );
    }
}

fn fmt_score(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |a| format!("{a:.4}"))
}

/// Warn on stderr when the model failed the competence gate or predicts one class for
/// every query cell: its query scores then measure an unfinished fit, not the model.
fn warn_if_undertrained(
    model: ModelKind,
    gate: Option<&GateReport>,
    single_class: bool,
    outcome: &TrainOutcome,
) {
    if let Some(g) = gate.filter(|g| !g.passed) {
        eprintln!(
            "warning: {} is undertrained (failed the competence gate: {})",
            model.as_str(),
            g.failures.join("; ")
        );
    }
    if single_class {
        let class = outcome
            .prediction
            .predicted
            .first()
            .and_then(|&c| outcome.prediction.classes.get(c))
            .map_or("?", String::as_str);
        eprintln!(
            "warning: {} predicts one class ('{class}') for every query cell",
            model.as_str()
        );
    }
}

/// The training part of `train --json`: steps, validation scores, learning curves and
/// the competence gate.
fn training_json(
    cfg: &TrainConfig,
    outcome: &TrainOutcome,
    gate: Option<&GateReport>,
    single_class: bool,
) -> serde_json::Value {
    serde_json::json!({
        "seconds": outcome.fit.seconds,
        "n_params": outcome.fit.n_params,
        "pretrain_steps": outcome.fit.pretrain_steps,
        "finetune_steps": outcome.fit.finetune_steps,
        "max_finetune_steps": cfg.train.finetune_steps,
        "stopped_at_step": outcome.fit.finetune_steps,
        "stopped_early": outcome.fit.stopped_early,
        "patience": cfg.train.patience,
        "n_pretrain_cells": outcome.fit.n_pretrain_cells,
        "n_train_cells": outcome.fit.split.train_rows.len(),
        "n_val_cells": outcome.fit.split.val_rows.len(),
        "input_genes": outcome.fit.input_genes,
        "truncation_rate": outcome.fit.truncation_rate,
        "query_truncation_rate": outcome.query_truncation_rate,
        "val_accuracy": outcome.fit.val_accuracy,
        "val_macro_f1": outcome.fit.val_macro_f1,
        "val_loss": outcome.fit.val_loss,
        "best_step": outcome.fit.best_step,
        "final_pretrain_loss": outcome.fit.final_pretrain_loss,
        "final_finetune_loss": outcome.fit.final_finetune_loss,
        "learning_curve": outcome.fit.learning_curve,
        "pretrain_curve": outcome.fit.pretrain_curve,
        "gate": gate.map(|g| serde_json::json!({
            "logistic_val_accuracy": g.logistic.accuracy,
            "logistic_val_macro_f1": g.logistic.macro_f1,
            "gate_passed": g.passed,
            "failures": g.failures,
        })),
        "single_class_prediction": single_class,
        "lr": cfg.train.lr,
        "seed": cfg.train.seed,
    })
}

/// Refuse a prediction CSV, h5ad, model or checkpoint folder that is one of the inputs.
fn check_train_outputs(args: &TrainArgs) -> Result<()> {
    let mut inputs = args.input.inputs();
    inputs.extend(args.pretrain_corpus.iter().map(PathBuf::as_path));
    if let Some(c) = &args.config {
        inputs.push(c);
    }
    let outputs = args.output.files();
    super::check_outputs(&inputs, &outputs)?;
    for (name, dir) in [
        ("checkpoint-dir", &args.checkpoint_dir),
        ("save-model", &args.save_model),
    ] {
        if let Some(dir) = dir {
            check_output_dir(name, dir, &inputs)?;
        }
    }
    Ok(())
}

/// An output folder must not be a file, an input, or hold an input.
fn check_output_dir(name: &str, dir: &std::path::Path, inputs: &[&std::path::Path]) -> Result<()> {
    if inputs.iter().any(|i| i.starts_with(dir) || *i == dir) || dir.is_file() {
        return Err(Error::param(
            name,
            format!(
                "{} is an input or holds one: refusing to write there",
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// A classifier needs at least two classes that have reference cells (unused categories
/// of a categorical column do not count).
fn require_two_classes(
    labels: &crate::data::Labels,
    ds: &crate::data::Dataset,
    key: &str,
) -> Result<()> {
    let present = labels.counts().iter().filter(|&&n| n > 0).count();
    if present < 2 {
        return Err(Error::invalid(
            &ds.source,
            format!("obs/{key}"),
            format!(
                "the reference has {present} class(es) with cells: a classifier needs at least two"
            ),
        ));
    }
    Ok(())
}
