//! From gene-aligned reference and query data sets to query predictions: split the
//! labelled reference into training and validation cells (stratified), tokenize (scGPT
//! binning for binned models, Geneformer V2 rank encoding fitted on the reference for the
//! Geneformer-like model), collate, pretrain on reference training cells, fine-tune,
//! select the best validated weights, predict the queries.
//!
//! Query cells are used only for the final prediction: never for pretraining, the rank
//! tokenizer's gene medians, or model selection.

use super::classifier::{NeuralClassifier, Tokenizer};
use super::config::GeneSelection;
use super::fit::{fit, FitData, FitOptions, Fitted};
use super::pretrained::Checkpoint;
use super::trainer::CurvePoint;
use super::{default_device, DataShape, ModelKind, TrainConfig};
use crate::data::{Dataset, Labels};
use crate::error::{Error, Result};
use crate::eval::Prediction;
use crate::tokenize::{collate, Batch, CollateSpec, GeneVocab, TokenizedCell, N_SPECIAL};
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

/// What fitting one model did: its stages' steps, validation scores and curves.
#[derive(Debug, Clone, Serialize)]
pub struct FitReport {
    /// Trainable parameters of the classifier (encoder + classification head).
    pub n_params: usize,
    /// Pretraining steps run (0 with `--no-pretrain`).
    pub pretrain_steps: usize,
    /// Fine-tuning steps run: `finetune_steps` of the profile, or fewer when stopped early.
    pub finetune_steps: usize,
    /// True when fine-tuning stopped early (validation loss stopped improving).
    pub stopped_early: bool,
    /// Cells in the pretraining corpus (reference training cells + extra corpus cells).
    pub n_pretrain_cells: usize,
    /// Wall time of tokenization, training and prediction, in seconds.
    pub seconds: f64,
    /// Validation accuracy of the selected weights (those with the lowest validation
    /// loss; None without validation cells).
    pub val_accuracy: Option<f64>,
    /// Validation macro F1 of the selected weights.
    pub val_macro_f1: Option<f64>,
    /// Validation cross entropy of the selected weights.
    pub val_loss: Option<f64>,
    /// Fine-tuning step of the selected weights.
    pub best_step: Option<usize>,
    /// Mean loss of the last 10 pretraining steps.
    pub final_pretrain_loss: Option<f32>,
    /// Mean loss of the last 10 fine-tuning steps.
    pub final_finetune_loss: Option<f32>,
    /// Fine-tuning learning curve: one point per evaluation (step, mean training loss since
    /// the previous one, validation loss, accuracy and macro F1).
    pub learning_curve: Vec<CurvePoint>,
    /// Pretraining learning curve (training loss only; empty without pretraining).
    pub pretrain_curve: Vec<CurvePoint>,
    /// Genes the model reads (the HVG set of a binned model with `gene_selection = "hvg"`,
    /// else all of the reference's genes).
    pub input_genes: usize,
    /// Share of reference training cells with more non-zero input genes than the sequence
    /// holds (subsampled; binned models with the HVG set only, else 0).
    pub truncation_rate: f64,
    /// The reference cells the model trained and validated on, so that a baseline (the
    /// competence gate) can use the identical cells. Not serialized: the row lists of a
    /// large reference would dominate a study record.
    #[serde(skip)]
    pub split: ReferenceSplit,
}

/// What training one model and predicting a query produced.
#[derive(Debug, Clone, Serialize)]
pub struct TrainOutcome {
    /// Predictions on the (first) query.
    pub prediction: Prediction,
    /// The fit.
    #[serde(flatten)]
    pub fit: FitReport,
    /// Share of the (first) query's cells with more non-zero input genes than the sequence
    /// holds (as [`FitReport::truncation_rate`] for the reference).
    pub query_truncation_rate: f64,
}

/// Rows of the reference data set (indices into its cells) in each part of the split.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReferenceSplit {
    /// Labelled cells the model pretrains and fine-tunes on.
    pub train_rows: Vec<usize>,
    /// Labelled cells of model selection and early stopping (empty with `val_fraction` 0).
    pub val_rows: Vec<usize>,
}

/// Options beyond the config file.
#[derive(Debug, Clone, Default)]
pub struct PipelineOptions<'a> {
    /// Train from scratch.
    pub no_pretrain: bool,
    /// Checkpoint / resume folder.
    pub checkpoint_dir: Option<&'a Path>,
    /// Progress bars on stderr.
    pub progress: bool,
    /// Extra unlabelled cells for pretraining only (read in the reference's genes;
    /// missing genes count as unexpressed). Never query cells: a corpus loaded from a
    /// query's own file is refused.
    pub pretrain_corpus: &'a [Dataset],
    /// Fine-tune a published checkpoint instead of a model trained here.
    pub init_from: Option<InitFrom<'a>>,
}

/// A published checkpoint to fine-tune (see [`crate::models::pretrained`]): its
/// architecture, vocabulary and (Geneformer) gene medians replace the profile's and the
/// reference-fitted ones; in-project pretraining is skipped.
#[derive(Debug, Clone, Copy)]
pub struct InitFrom<'a> {
    /// The checkpoint.
    pub checkpoint: &'a Checkpoint,
    /// Data gene name → the vocabulary's name for it (Geneformer's vocabulary is Ensembl
    /// ids); genes not in the table are looked up under their own name.
    pub gene_ids: Option<&'a HashMap<String, String>>,
}

impl InitFrom<'_> {
    /// The vocabulary's names for `genes`.
    pub fn vocab_names(&self, genes: &[String]) -> Vec<String> {
        genes
            .iter()
            .map(|g| self.gene_ids.and_then(|t| t.get(g)).unwrap_or(g).clone())
            .collect()
    }

    /// `cfg` with the checkpoint's architecture and (scGPT) bin count.
    fn train_config(&self, kind: ModelKind, cfg: &TrainConfig) -> Result<TrainConfig> {
        let ck = self.checkpoint;
        if ck.kind() != kind {
            return Err(Error::param(
                "init_from",
                format!(
                    "{} holds a {} checkpoint, not {}",
                    ck.dir().display(),
                    ck.kind().as_str(),
                    kind.as_str()
                ),
            ));
        }
        let mut out = cfg.clone();
        out.models = ck.models_config(&cfg.models);
        if let Some(n) = ck.n_bins() {
            out.train.n_bins = n;
        }
        Ok(out)
    }

    /// For binned models, `reference` restricted to the genes the vocabulary holds (as
    /// scGPT's fine-tuning filters `id_in_vocab`); rank models keep every gene, since
    /// Geneformer normalizes by the total over all genes.
    fn restrict(&self, kind: ModelKind, reference: &Dataset) -> Result<Dataset> {
        let m = self
            .checkpoint
            .match_genes(&self.vocab_names(&reference.gene_names));
        if m.n_matched == 0 {
            return Err(Error::Incompatible(format!(
                "none of {}'s {} genes is in the vocabulary of {} (examples: {:?}); \
                 map them with a gene id table",
                reference.source,
                m.n_genes,
                self.checkpoint.dir().display(),
                m.unmatched_examples
            )));
        }
        if !kind.uses_bins() {
            return Ok(reference.clone());
        }
        let keep: Vec<usize> = (0..m.n_genes)
            .filter(|&c| m.column_ids[c] != crate::tokenize::UNKNOWN_GENE)
            .collect();
        Ok(reference.select_genes(&keep))
    }
}

/// Train `kind` on the labelled reference and predict `query` (gene-aligned with it).
pub fn train_and_predict(
    kind: ModelKind,
    cfg: &TrainConfig,
    reference: &Dataset,
    reference_labels: &Labels,
    query: &Dataset,
    seed: u64,
    progress: bool,
) -> Result<TrainOutcome> {
    let opts = PipelineOptions {
        progress,
        ..Default::default()
    };
    let (outcome, _) = train_and_predict_many(
        kind,
        cfg,
        reference,
        reference_labels,
        std::slice::from_ref(query),
        seed,
        &opts,
    )?;
    Ok(outcome)
}

fn mean_tail(losses: &[f32]) -> Option<f32> {
    let tail = &losses[losses.len().saturating_sub(10)..];
    (!tail.is_empty()).then(|| tail.iter().sum::<f32>() / tail.len() as f32)
}

/// Like [`train_and_predict`], but fits once and predicts several queries (e.g. clean and
/// noisy versions). The outcome holds the first query's prediction; all predictions are
/// returned in query order.
pub fn train_and_predict_many(
    kind: ModelKind,
    cfg: &TrainConfig,
    reference: &Dataset,
    reference_labels: &Labels,
    queries: &[Dataset],
    seed: u64,
    opts: &PipelineOptions,
) -> Result<(TrainOutcome, Vec<Prediction>)> {
    check_queries(reference, queries, opts.pretrain_corpus)?;
    let (model, fit) = fit_classifier(kind, cfg, reference, reference_labels, seed, opts)?;
    let predictions = queries
        .iter()
        .enumerate()
        .map(|(qi, q)| model.predict_stream(q, qi))
        .collect::<Result<Vec<_>>>()?;
    let query_truncation_rate = model.truncation_rate(&queries[0])?;
    let outcome = TrainOutcome {
        prediction: predictions[0].clone(),
        fit,
        query_truncation_rate,
    };
    Ok((outcome, predictions))
}

/// Train `kind` on the labelled reference: split it into training and validation cells,
/// fit the tokenizer on the training cells, pretrain and fine-tune, keep the weights with
/// the lowest validation loss. Returns the classifier and what the fit did.
pub fn fit_classifier(
    kind: ModelKind,
    cfg: &TrainConfig,
    reference: &Dataset,
    reference_labels: &Labels,
    seed: u64,
    opts: &PipelineOptions,
) -> Result<(NeuralClassifier, FitReport)> {
    let started = Instant::now();
    cfg.validate()?;
    check_labels(reference, reference_labels)?;
    let p = &cfg.train;
    let (train_rows, val_rows) = split_reference(reference_labels, p.val_fraction, seed)?;
    let adapted;
    let (cfg, reference) = match &opts.init_from {
        Some(init) => {
            adapted = (
                init.train_config(kind, cfg)?,
                init.restrict(kind, reference)?,
            );
            (&adapted.0, &adapted.1)
        }
        None => (cfg, reference),
    };
    let inputs = ModelInputs::choose(kind, cfg, reference, opts.pretrain_corpus, &train_rows)?;
    let reference = &inputs.reference;
    let (tokenizer, column_ids, shape) = match &opts.init_from {
        Some(init) => {
            let names = init.vocab_names(&reference.gene_names);
            let (tok, ids) = Tokenizer::from_checkpoint(init.checkpoint, kind, cfg, &names)?;
            (tok, ids, init.checkpoint.data_shape())
        }
        None => {
            let vocab = GeneVocab::from_genes(&reference.gene_names)?;
            let column_ids = vocab.map_genes(&reference.gene_names).column_ids;
            let shape = DataShape {
                vocab_size: vocab.len(),
                max_len: p.max_seq_len,
            };
            (
                Tokenizer::fit(kind, cfg, reference, &train_rows)?,
                column_ids,
                shape,
            )
        }
    };
    let ref_cells = tokenizer.tokenize(reference, &column_ids, seed)?;
    let codes: Vec<u32> = reference_labels
        .codes
        .iter()
        .map(|c| c.unwrap_or(0) as u32)
        .collect();
    let corpus_cells = tokenize_corpus(&tokenizer, reference, &inputs.corpus, &column_ids, seed)?;
    let gather = |rows: &[usize], labelled: bool| -> Result<Batch> {
        let mut cells: Vec<&TokenizedCell> = rows.iter().map(|&r| &ref_cells[r]).collect();
        if !labelled {
            cells.extend(corpus_cells.iter());
        }
        let labels: Vec<u32> = rows.iter().map(|&r| codes[r]).collect();
        collate(
            &cells,
            labelled.then_some(labels.as_slice()),
            &tokenizer.spec,
        )
    };
    let data = FitData {
        pretrain: gather(&train_rows, false)?,
        train: gather(&train_rows, true)?,
        val: gather(&val_rows, true)?,
        shape,
        gene_ids: N_SPECIAL..shape.vocab_size as u32,
        n_classes: reference_labels.classes.len(),
    };
    let fit_opts = FitOptions {
        no_pretrain: opts.no_pretrain,
        checkpoint_dir: opts.checkpoint_dir,
        stop_finetune_after: None,
        progress: opts.progress,
        init_from: opts.init_from.map(|i| i.checkpoint),
    };
    let fitted = fit(kind, cfg, &data, seed, &fit_opts, &default_device())?;
    let split = ReferenceSplit {
        train_rows,
        val_rows,
    };
    let mut report = report_of(&fitted, data.pretrain.batch_size, split);
    report.input_genes = reference.n_vars();
    report.truncation_rate = inputs.truncation_rate;
    let classes = reference_labels.classes.clone();
    let parts = (fitted.classifier, fitted.store);
    let model = NeuralClassifier::new(kind, cfg, reference, classes, seed, tokenizer, parts);
    report.seconds = started.elapsed().as_secs_f64();
    Ok((model, report))
}

/// What a fit did: its stages' steps, scores and curves (sizes and timing filled in by
/// the caller).
fn report_of(fitted: &Fitted, n_pretrain_cells: usize, split: ReferenceSplit) -> FitReport {
    let best = fitted.finetune.best.as_ref();
    FitReport {
        n_params: fitted.n_params,
        pretrain_steps: fitted.pretrain.as_ref().map_or(0, |r| r.steps_done),
        finetune_steps: fitted.finetune.steps_done,
        stopped_early: fitted.finetune.stopped_early,
        n_pretrain_cells,
        seconds: 0.0,
        val_accuracy: best.and_then(|b| b.val_accuracy),
        val_macro_f1: best.and_then(|b| b.val_macro_f1),
        val_loss: best.and_then(|b| b.val_loss),
        best_step: best.map(|b| b.step),
        final_pretrain_loss: fitted.pretrain.as_ref().and_then(|r| mean_tail(&r.losses)),
        final_finetune_loss: mean_tail(&fitted.finetune.losses),
        learning_curve: fitted.finetune.curve.clone(),
        pretrain_curve: fitted
            .pretrain
            .as_ref()
            .map(|r| r.curve.clone())
            .unwrap_or_default(),
        input_genes: 0,
        truncation_rate: 0.0,
        split,
    }
}

/// Tokenize the extra pretraining corpus (already in the reference's genes) with the
/// reference's tokenizer.
fn tokenize_corpus(
    tokenizer: &Tokenizer,
    reference: &Dataset,
    corpus: &[Dataset],
    column_ids: &[u32],
    seed: u64,
) -> Result<Vec<TokenizedCell>> {
    let mut cells = Vec::new();
    for (i, ds) in corpus.iter().enumerate() {
        if ds.value_kind != reference.value_kind {
            return Err(Error::Incompatible(format!(
                "pretraining corpus {} holds {} values, the reference {} holds {}: tokenize like with like",
                ds.source,
                ds.value_kind.as_str(),
                reference.source,
                reference.value_kind.as_str()
            )));
        }
        // Cells expressing none of the reference's genes carry nothing to learn from.
        let tokenized =
            tokenizer.tokenize(ds, column_ids, super::trainer::step_seed(seed, "corpus", i))?;
        cells.extend(tokenized.into_iter().filter(|c| !c.gene_ids.is_empty()));
    }
    Ok(cells)
}

fn check_labels(reference: &Dataset, labels: &Labels) -> Result<()> {
    if labels.len() != reference.n_obs() {
        return Err(Error::Incompatible(format!(
            "{}: {} labels for {} reference cells",
            reference.source,
            labels.len(),
            reference.n_obs()
        )));
    }
    Ok(())
}

/// Queries are gene-aligned with the reference, and no pretraining corpus is a query's file.
fn check_queries(reference: &Dataset, queries: &[Dataset], corpus: &[Dataset]) -> Result<()> {
    if queries.is_empty() {
        return Err(Error::param("query", "no query data set given"));
    }
    for q in queries {
        if q.gene_names != reference.gene_names {
            return Err(Error::Incompatible(format!(
                "{} and {} are not gene-aligned ({} vs {} genes); align them first",
                reference.source,
                q.source,
                reference.n_vars(),
                q.n_vars()
            )));
        }
        if let Some(c) = corpus.iter().find(|c| c.source == q.source) {
            return Err(Error::Incompatible(format!(
                "pretraining corpus {} is the query's own file ({}): pretraining never sees query cells",
                c.source, q.source
            )));
        }
    }
    Ok(())
}

/// Stratified training / validation rows of the labelled reference cells.
fn split_reference(
    labels: &Labels,
    val_fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>)> {
    let labelled: Vec<usize> = (0..labels.len())
        .filter(|&i| labels.codes[i].is_some())
        .collect();
    if labelled.is_empty() {
        return Err(Error::Incompatible(
            "the reference has no labelled cell".into(),
        ));
    }
    if val_fraction <= 0.0 {
        return Ok((labelled, Vec::new()));
    }
    crate::data::split::split_stratified(
        labels,
        1.0 - val_fraction,
        super::trainer::step_seed(seed, "validation", 0),
    )
}

/// The data a model reads: for a binned model with `gene_selection = "hvg"`, the reference
/// restricted to the HVG set of its training cells; otherwise the reference as given. The
/// extra corpus is read in the same genes.
struct ModelInputs {
    reference: Dataset,
    corpus: Vec<Dataset>,
    truncation_rate: f64,
}

impl ModelInputs {
    fn choose(
        kind: ModelKind,
        cfg: &TrainConfig,
        reference: &Dataset,
        corpus: &[Dataset],
        train_rows: &[usize],
    ) -> Result<Self> {
        let (reference, truncation_rate) =
            if kind.uses_bins() && cfg.train.gene_selection == GeneSelection::Hvg {
                let max_genes = CollateSpec::scgpt(cfg.train.max_seq_len).max_genes();
                let set = crate::models::genes::select_hvg_genes(reference, train_rows, max_genes)?;
                (reference.select_genes(&set.genes), set.truncation_rate)
            } else {
                (reference.clone(), 0.0)
            };
        let corpus = corpus
            .iter()
            .map(|c| {
                if c.gene_names == reference.gene_names {
                    return Ok(c.clone());
                }
                Ok(crate::data::split::conform_genes(c, &reference.gene_names)?.0)
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            reference,
            corpus,
            truncation_rate,
        })
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::simulate::{simulate, Profile, SimulateOptions};
    use crate::models::toy::smoke_config;

    /// Rank tokens of counts and of their log1p(CP10k) are identical: the pipeline maps
    /// log-normalized input back with expm1 wherever the rank tokenizer is fitted or applied.
    #[test]
    fn rank_tokens_same_for_counts_and_their_log1p_cp10k() {
        let (reference, _, _) = tiny();
        let mut logged = reference.clone();
        crate::pp::normalize_total_inplace(&mut logged.x, 1e4);
        crate::pp::log1p_inplace(&mut logged.x);
        logged.value_kind = crate::data::ValueKind::LogNormalized;
        let cfg = smoke_config();
        let rows: Vec<usize> = (0..reference.n_obs()).collect();
        let ids: Vec<u32> = (0..reference.n_vars() as u32)
            .map(|g| g + N_SPECIAL)
            .collect();
        let tokens = |ds: &Dataset| -> Vec<Vec<u32>> {
            let t = Tokenizer::fit(ModelKind::Geneformer, &cfg, ds, &rows).unwrap();
            t.tokenize(ds, &ids, 0)
                .unwrap()
                .into_iter()
                .map(|c| c.gene_ids)
                .collect()
        };
        assert_eq!(tokens(&reference), tokens(&logged));
    }

    fn tiny() -> (Dataset, Dataset, Labels) {
        let mut opts = SimulateOptions::new(Profile::PancreasLike);
        opts.n_cells = Some(120);
        opts.n_genes = 60;
        opts.seed = 3;
        let ds = simulate(&opts).unwrap();
        let reference = ds.select_cells(&(0..80).collect::<Vec<_>>());
        let query = ds.select_cells(&(80..120).collect::<Vec<_>>());
        let labels = reference.labels("cell_type").unwrap();
        (reference, query, labels)
    }

    /// The scGPT-like model trained on `reference` with `corpus` as extra pretraining data.
    fn with_corpus(
        cfg: &TrainConfig,
        reference: &Dataset,
        labels: &Labels,
        query: &Dataset,
        corpus: &[Dataset],
    ) -> Result<(TrainOutcome, Vec<Prediction>)> {
        let opts = PipelineOptions {
            pretrain_corpus: corpus,
            ..Default::default()
        };
        let queries = std::slice::from_ref(query);
        train_and_predict_many(ModelKind::ScGpt, cfg, reference, labels, queries, 0, &opts)
    }

    /// Extra corpus cells (genes in another order, some missing) join pretraining only;
    /// the run predicts every query cell.
    #[test]
    fn pretrain_corpus_joins_pretraining() {
        let (reference, query, labels) = tiny();
        let mut corpus = reference.clone();
        corpus.source = "corpus.h5ad".into();
        let cols: Vec<usize> = (10..60).rev().collect();
        let corpus = corpus.select_genes(&cols);
        let mut cfg = smoke_config();
        cfg.train.pretrain_steps = 3;
        cfg.train.finetune_steps = 3;
        let run = |extra: &[Dataset]| {
            with_corpus(&cfg, &reference, &labels, &query, extra)
                .unwrap()
                .0
        };
        let without = run(&[]);
        let with = run(std::slice::from_ref(&corpus));
        assert_eq!(
            with.fit.n_pretrain_cells,
            without.fit.n_pretrain_cells + corpus.n_obs()
        );
        assert_eq!(with.prediction.predicted.len(), query.n_obs());
    }

    /// The outcome names the reference rows it trained and validated on (a partition of the
    /// labelled cells), carries one curve point per evaluation, and the competence gate
    /// scores logistic regression on exactly those validation rows.
    #[test]
    fn outcome_exposes_split_curve_and_gate() {
        let (reference, query, labels) = tiny();
        let mut cfg = smoke_config();
        cfg.train.pretrain_steps = 3;
        cfg.train.finetune_steps = 12;
        cfg.train.eval_every = 5;
        cfg.train.val_fraction = 0.25;
        let (out, _) = with_corpus(&cfg, &reference, &labels, &query, &[]).unwrap();
        let mut rows: Vec<usize> = out.fit.split.train_rows.clone();
        rows.extend(&out.fit.split.val_rows);
        rows.sort_unstable();
        let labelled: Vec<usize> = (0..labels.len())
            .filter(|&i| labels.codes[i].is_some())
            .collect();
        assert_eq!(rows, labelled);
        assert!(!out.fit.split.val_rows.is_empty());
        let steps: Vec<usize> = out.fit.learning_curve.iter().map(|c| c.step).collect();
        assert_eq!(steps, vec![5, 10, 12]);
        assert_eq!(out.fit.pretrain_curve.len(), 1);
        let best = out.fit.best_step.unwrap();
        let point = out
            .fit
            .learning_curve
            .iter()
            .find(|c| c.step == best)
            .unwrap();
        assert_eq!(out.fit.val_accuracy, point.val_accuracy);
        assert_eq!(out.fit.val_macro_f1, point.val_macro_f1);
        let gate = crate::models::gate::competence_gate(&reference, &labels, &out.fit, 0)
            .unwrap()
            .unwrap();
        assert_eq!(gate.model.accuracy, out.fit.val_accuracy.unwrap());
        assert!((0.0..=1.0).contains(&gate.logistic.accuracy));
        let json = serde_json::to_value(&out).unwrap();
        assert!(json["learning_curve"][0]["val_macro_f1"].is_number());
        assert!(json.get("split").is_none());
    }

    /// Tuning fits every candidate, keeps the lowest reference-validation loss, and its
    /// model is exactly a direct fit with the chosen setting (same seed: same numbers).
    #[test]
    fn tuning_keeps_the_lowest_validation_loss() {
        use crate::models::tune::{tune, TuneGrid};
        use crate::traits::Predict;
        let (reference, query, labels) = tiny();
        let mut cfg = smoke_config();
        cfg.train.pretrain_steps = 2;
        cfg.train.finetune_steps = 6;
        cfg.train.eval_every = 3;
        cfg.train.val_fraction = 0.25;
        let grid = TuneGrid {
            lrs: vec![1e-5, 3e-3],
            pretrain: vec![true, false],
            per_fit: false,
        };
        let opts = PipelineOptions::default();
        let fit =
            |c: &TrainConfig| fit_classifier(ModelKind::ScGpt, c, &reference, &labels, 0, &opts);
        let (model, best, report) = tune(&grid, &cfg, fit).unwrap();
        assert_eq!(report.candidates.len(), 4);
        let losses: Vec<f64> = report
            .candidates
            .iter()
            .map(|c| c.val_loss.unwrap())
            .collect();
        let min = losses.iter().copied().fold(f64::INFINITY, f64::min);
        assert_eq!(best.val_loss, Some(min));
        // Pretraining off really is off.
        let off = report
            .candidates
            .iter()
            .position(|c| !c.candidate.pretrain)
            .unwrap();
        let (_, off_cfg) = &grid.candidates(&cfg)[off];
        assert_eq!(off_cfg.train.pretrain_steps, 0);
        let mut direct_cfg = cfg.clone();
        direct_cfg.train.lr = report.chosen.lr;
        if !report.chosen.pretrain {
            direct_cfg.train.pretrain_steps = 0;
        }
        let (direct_model, direct) = fit(&direct_cfg).unwrap();
        assert_eq!(direct.val_loss, best.val_loss);
        assert_eq!(
            direct_model.predict(&query).unwrap(),
            model.predict(&query).unwrap()
        );
        assert_eq!(best.pretrain_steps == 0, !report.chosen.pretrain);
    }

    /// A corpus read from the query's own file, or of another value kind, is refused.
    #[test]
    fn pretrain_corpus_refuses_query_and_other_value_kinds() {
        let (reference, mut query, labels) = tiny();
        query.source = "query.h5ad".into();
        let cfg = smoke_config();
        let err = |extra: Dataset| {
            with_corpus(
                &cfg,
                &reference,
                &labels,
                &query,
                std::slice::from_ref(&extra),
            )
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
        };
        assert!(err(query.clone()).contains("never sees query cells"));
        let mut logged = reference.clone();
        logged.source = "other.h5ad".into();
        logged.value_kind = crate::data::ValueKind::LogNormalized;
        assert!(err(logged).contains("like with like"));
    }
}
