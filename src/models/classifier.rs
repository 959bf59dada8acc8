//! A fitted neural cell-type classifier: the encoder and head with their trained weights,
//! plus everything needed to turn new cells into the same tokens (the model's gene list
//! and vocabulary, the fitted tokenizer, the reference's value kind and the classes). It
//! predicts any later query read in its genes by name, and saves to a directory:
//!
//! - `model.json`: format version, model kind, `[train]` + `[models]` config, genes,
//!   classes, value kind, seed;
//! - `weights.safetensors`: the classifier's variables (`encoder.*`, `cls_head.*`);
//! - `tokenizer.safetensors`: the rank tokenizer's gene medians in f64 (rank models only;
//!   kept out of JSON so they round-trip bit for bit).

use super::finetune::Classifier;
use super::heads::ClsDecoder;
use super::params::{load_tensors, save_tensors, ParamStore};
use super::pipeline::FitReport;
use super::pretrained::Checkpoint;
use super::trainer::step_seed;
use super::{build_encoder, default_device, DataShape, ModelKind, TrainConfig};
use crate::data::{Dataset, ValueKind};
use crate::error::{Error, Result};
use crate::eval::Prediction;
use crate::models::config::GeneSelection;
use crate::tokenize::rank::rank_encoding_input;
use crate::tokenize::{
    collate, tokenize_binned, tokenize_rank, BinningTokenizer, CollateSpec, FittedRank, GeneVocab,
    RankTokenizerParams, SelectionMode, SequenceSelection, TieMode, TokenizedCell,
};
use crate::traits::{Fit, Predict};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// Version of the saved layout; a directory written by another version is refused.
const FORMAT_VERSION: u32 = 1;

/// A trained classifier that predicts new cells (see the module docs).
pub struct NeuralClassifier {
    meta: ModelMeta,
    report: Option<FitReport>,
    tokenizer: Tokenizer,
    classifier: Classifier,
    store: ParamStore,
    device: Device,
}

/// What `model.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ModelMeta {
    format_version: u32,
    kind: ModelKind,
    config: TrainConfig,
    genes: Vec<String>,
    classes: Vec<String>,
    value_kind: ValueKind,
    seed: u64,
    /// Set when the model was fine-tuned from a published checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    checkpoint: Option<CheckpointTokens>,
}

/// How cells become a fine-tuned checkpoint's tokens: its vocabulary's id for each of the
/// model's genes, its special tokens, and its table sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CheckpointTokens {
    /// The checkpoint folder it started from (for inspection).
    source: String,
    /// Token id of each model gene (`UNKNOWN_GENE` for genes outside the vocabulary).
    token_ids: Vec<u32>,
    /// The checkpoint's collation.
    collate: CollateSpec,
    /// Token table rows.
    vocab_size: usize,
    /// Position table rows (Geneformer) or the longest input.
    max_len: usize,
}

impl NeuralClassifier {
    /// Assemble a classifier after training; its input genes are `reference`'s (the data
    /// the model was fitted on, after any HVG restriction), in that order.
    pub(crate) fn new(
        kind: ModelKind,
        cfg: &TrainConfig,
        reference: &Dataset,
        classes: Vec<String>,
        seed: u64,
        tokenizer: Tokenizer,
        fitted: (Classifier, ParamStore),
    ) -> Self {
        let meta = ModelMeta {
            format_version: FORMAT_VERSION,
            kind,
            config: cfg.clone(),
            genes: reference.gene_names.clone(),
            classes,
            value_kind: reference.value_kind,
            seed,
            checkpoint: tokenizer.checkpoint.clone(),
        };
        let device = fitted.1.device().clone();
        Self {
            meta,
            report: None,
            tokenizer,
            classifier: fitted.0,
            store: fitted.1,
            device,
        }
    }

    /// The architecture.
    pub fn kind(&self) -> ModelKind {
        self.meta.kind
    }
    /// Class names, in the order of predicted indices.
    pub fn classes(&self) -> &[String] {
        &self.meta.classes
    }
    /// The genes the model reads, by name.
    pub fn genes(&self) -> &[String] {
        &self.meta.genes
    }
    /// Share of `query`'s cells with more non-zero model genes than a sequence holds
    /// (those lose genes to the sequence limit).
    pub fn truncation_rate(&self, query: &Dataset) -> Result<f64> {
        let (in_genes, _) = crate::data::split::conform_genes(query, &self.meta.genes)?;
        Ok(crate::models::genes::truncation_rate(
            &in_genes.x,
            &(0..in_genes.n_vars()).collect::<Vec<_>>(),
            self.tokenizer.spec.max_genes(),
        ))
    }

    /// What training did (steps, validation scores, learning curves), when this object
    /// was fitted by [`ClassifierParams`] (not after [`NeuralClassifier::load`]).
    pub fn fit_report(&self) -> Option<&FitReport> {
        self.report.as_ref()
    }

    /// [`NeuralClassifier::predict`] with tokenization randomness (binning ties, gene
    /// subsets) drawn from stream `stream` of the fit's seed.
    pub(crate) fn predict_stream(&self, query: &Dataset, stream: usize) -> Result<Prediction> {
        if query.value_kind != self.meta.value_kind {
            return Err(Error::Incompatible(format!(
                "{}: holds {} values but the model was trained on {}",
                query.source,
                query.value_kind.as_str(),
                self.meta.value_kind.as_str()
            )));
        }
        let aligned;
        let query = if query.gene_names == self.meta.genes {
            query
        } else {
            aligned = crate::data::split::conform_genes(query, &self.meta.genes)?.0;
            &aligned
        };
        let seed = step_seed(self.meta.seed, "query", stream);
        let cells = self.tokenizer.tokenize(query, &self.column_ids()?, seed)?;
        let refs: Vec<&TokenizedCell> = cells.iter().collect();
        let batch = collate(&refs, None, &self.tokenizer.spec)?;
        let batch_size = self.meta.config.train.batch_size.max(64);
        let (predicted, scores) = self.classifier.predict(&batch, batch_size, &self.device)?;
        Ok(Prediction {
            classes: self.meta.classes.clone(),
            predicted,
            scores,
        })
    }

    fn column_ids(&self) -> Result<Vec<u32>> {
        if let Some(ck) = &self.meta.checkpoint {
            return Ok(ck.token_ids.clone());
        }
        let vocab = GeneVocab::from_genes(&self.meta.genes)?;
        Ok(vocab.map_genes(&self.meta.genes).column_ids)
    }

    /// Write the classifier to `dir`. The files are written into a sibling staging folder
    /// that replaces `dir` only when complete, so an interrupted save leaves no half-written
    /// model; a `dir` that exists and is not a saved model is refused.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let occupied = dir.is_file()
            || (dir.is_dir()
                && !dir.join("model.json").is_file()
                && std::fs::read_dir(dir)
                    .map_err(|e| Error::io(dir, e))?
                    .next()
                    .is_some());
        if occupied {
            return Err(Error::param(
                "save-model",
                format!(
                    "{} exists and is not a saved model: refusing to replace it",
                    dir.display()
                ),
            ));
        }
        let name = dir
            .file_name()
            .map_or("model".into(), |n| n.to_string_lossy().into_owned());
        let staging = dir.with_file_name(format!(".{name}.partial"));
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
        }
        std::fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
        self.write_files(&staging)?;
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        std::fs::rename(&staging, dir).map_err(|e| Error::io(dir, e))
    }

    fn write_files(&self, dir: &Path) -> Result<()> {
        if let Tokenization::Rank(fitted) = &self.tokenizer.kind {
            let medians = Tensor::new(fitted.gene_medians(), &Device::Cpu)?;
            let tensors = HashMap::from([("gene_medians".to_string(), medians)]);
            save_tensors(&tensors, &dir.join("tokenizer.safetensors"))?;
        }
        self.store.save(&dir.join("weights.safetensors"))?;
        let json = serde_json::to_string_pretty(&self.meta)
            .map_err(|e| Error::Model(format!("cannot serialize the model description: {e}")))?;
        let path = dir.join("model.json");
        std::fs::write(&path, json).map_err(|e| Error::io(&path, e))
    }

    /// Read a classifier saved by [`NeuralClassifier::save`].
    pub fn load(dir: &Path) -> Result<Self> {
        let meta = read_meta(&dir.join("model.json"))?;
        let device = default_device();
        let medians = match meta.kind.uses_bins() {
            true => None,
            false => {
                let path = dir.join("tokenizer.safetensors");
                let t = load_tensors(&path, &Device::Cpu)?;
                let m = t.get("gene_medians").ok_or_else(|| {
                    Error::invalid(path.display().to_string(), "gene_medians", "missing")
                })?;
                Some(m.to_dtype(DType::F64)?.to_vec1::<f64>()?)
            }
        };
        let mut tokenizer = Tokenizer::from_parts(meta.kind, &meta.config, medians)?;
        if let Some(ck) = &meta.checkpoint {
            tokenizer = tokenizer.with_checkpoint(ck.clone())?;
        }
        let store = ParamStore::new(0, &device);
        let classifier = build_classifier(&meta, store.vb())?;
        let path = dir.join("weights.safetensors");
        let weights = load_tensors(&path, &device)?;
        check_names(&store, &weights, &path)?;
        store.assign_from(&weights)?;
        Ok(Self {
            meta,
            report: None,
            tokenizer,
            classifier,
            store,
            device,
        })
    }
}

impl Predict for NeuralClassifier {
    /// Predict every cell of `query`. Its genes are matched by name: genes the model reads
    /// but the query lacks count as unexpressed, extra genes are ignored. The query must
    /// hold the same kind of values (counts or log-normalized) as the reference did.
    fn predict(&self, query: &Dataset) -> Result<Prediction> {
        self.predict_stream(query, 0)
    }
}

/// Parameters of a neural classifier: its architecture and a profile (`[train]` plus
/// `[models.*]`, e.g. [`TrainConfig::load`] of `configs/quick.toml`).
#[derive(Debug, Clone)]
pub struct ClassifierParams {
    kind: ModelKind,
    cfg: TrainConfig,
    seed: u64,
    pretrain: bool,
    init_from: Option<std::sync::Arc<SharedCheckpoint>>,
}

/// A checkpoint and its gene id table, shared by clones of the params.
type SharedCheckpoint = (Checkpoint, Option<HashMap<String, String>>);

impl ClassifierParams {
    /// `kind` trained with `cfg`; seed 0, pretraining on.
    pub fn new(kind: ModelKind, cfg: TrainConfig) -> Self {
        Self {
            kind,
            cfg,
            seed: 0,
            pretrain: true,
            init_from: None,
        }
    }
    /// Seed of every random step (split, initialisation, batches, tokenization), defaults to 0.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Masked-modelling pretraining on the reference before fine-tuning, defaults to true.
    pub fn pretrain(mut self, pretrain: bool) -> Self {
        self.pretrain = pretrain;
        self
    }
    /// Fine-tune a published checkpoint ([`Checkpoint::load`]) instead of pretraining
    /// here; `gene_ids` maps the data's gene names to the vocabulary's (see
    /// [`crate::models::pretrained::read_gene_id_table`]). Defaults to none.
    pub fn init_from(
        mut self,
        checkpoint: Checkpoint,
        gene_ids: Option<HashMap<String, String>>,
    ) -> Self {
        self.init_from = Some(std::sync::Arc::new((checkpoint, gene_ids)));
        self
    }
}

impl Fit for ClassifierParams {
    type Fitted = NeuralClassifier;

    /// [`fit_classifier`](super::fit_classifier); the report is kept in the classifier.
    fn fit(&self, reference: &Dataset, labels: &crate::data::Labels) -> Result<NeuralClassifier> {
        let opts = super::PipelineOptions {
            no_pretrain: !self.pretrain,
            init_from: self
                .init_from
                .as_deref()
                .map(|(checkpoint, gene_ids)| super::InitFrom {
                    checkpoint,
                    gene_ids: gene_ids.as_ref(),
                }),
            ..Default::default()
        };
        let (mut model, report) =
            super::fit_classifier(self.kind, &self.cfg, reference, labels, self.seed, &opts)?;
        model.report = Some(report);
        Ok(model)
    }
}

fn read_meta(path: &Path) -> Result<ModelMeta> {
    if !path.exists() {
        return Err(Error::FileNotFound {
            path: path.to_path_buf(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let meta: ModelMeta = serde_json::from_str(&text).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        problem: e.to_string(),
    })?;
    if meta.format_version != FORMAT_VERSION {
        return Err(Error::invalid(
            path.display().to_string(),
            "format_version",
            format!(
                "is {}, this build reads version {FORMAT_VERSION}",
                meta.format_version
            ),
        ));
    }
    meta.config.validate()?;
    Ok(meta)
}

/// Encoder + head of the saved architecture, with fresh variables in `vb`'s store.
fn build_classifier(meta: &ModelMeta, vb: candle_nn::VarBuilder) -> Result<Classifier> {
    let shape = match &meta.checkpoint {
        Some(ck) => DataShape {
            vocab_size: ck.vocab_size,
            max_len: ck.max_len,
        },
        None => DataShape {
            vocab_size: GeneVocab::from_genes(&meta.genes)?.len(),
            max_len: meta.config.train.max_seq_len,
        },
    };
    let encoder = build_encoder(meta.kind, &meta.config.models, shape, vb.clone())?;
    let head = ClsDecoder::new(
        encoder.d_model(),
        meta.config.train.n_layers_cls,
        meta.classes.len(),
        vb.pp("cls_head"),
    )?;
    Ok(Classifier { encoder, head })
}

/// The saved weights must name exactly the model's variables.
fn check_names(store: &ParamStore, weights: &HashMap<String, Tensor>, path: &Path) -> Result<()> {
    let names: Vec<String> = store.vars()?.into_iter().map(|(n, _)| n).collect();
    let mut missing: Vec<&str> = names
        .iter()
        .filter(|n| !weights.contains_key(*n))
        .map(String::as_str)
        .collect();
    let mut unknown: Vec<&str> = weights
        .keys()
        .filter(|k| !names.contains(k))
        .map(String::as_str)
        .collect();
    if missing.is_empty() && unknown.is_empty() {
        return Ok(());
    }
    missing.sort_unstable();
    unknown.sort_unstable();
    Err(Error::invalid(
        path.display().to_string(),
        "weights",
        format!("do not match the model in model.json: missing {missing:?}, unknown {unknown:?}"),
    ))
}

/// The tokenizer of a model kind, fitted on reference training cells where it learns.
pub(crate) struct Tokenizer {
    kind: Tokenization,
    pub(crate) spec: CollateSpec,
    checkpoint: Option<CheckpointTokens>,
}

enum Tokenization {
    Binned(BinningTokenizer, SequenceSelection),
    Rank(FittedRank),
}

impl Tokenizer {
    /// Fit on the reference rows `train_rows` (rank encoding learns gene medians; binning
    /// is per cell and learns nothing).
    pub(crate) fn fit(
        kind: ModelKind,
        cfg: &TrainConfig,
        reference: &Dataset,
        train_rows: &[usize],
    ) -> Result<Self> {
        if kind.uses_bins() {
            return Self::from_parts(kind, cfg, None);
        }
        // Geneformer ranks normalized counts: log1p(CP10k) input is mapped back first.
        let mut train = reference.select_cells(train_rows);
        train.x = rank_encoding_input(&train.x, train.value_kind);
        let fitted = rank_params(cfg).fit_dataset(&train)?;
        Ok(Self {
            spec: rank_params(cfg).collate_spec(),
            kind: Tokenization::Rank(fitted),
            checkpoint: None,
        })
    }

    /// The tokenizer of `kind` under `cfg`, with the rank tokenizer's fitted `medians`.
    fn from_parts(kind: ModelKind, cfg: &TrainConfig, medians: Option<Vec<f64>>) -> Result<Self> {
        if kind.uses_bins() {
            let spec = CollateSpec::scgpt(cfg.train.max_seq_len);
            let mode = match cfg.train.gene_selection {
                GeneSelection::Top => SelectionMode::TopByValue,
                GeneSelection::Hvg | GeneSelection::Random => SelectionMode::RandomSubsample,
            };
            let selection = SequenceSelection::limit(spec.max_genes(), mode);
            let binning = BinningTokenizer::new(cfg.train.n_bins, TieMode::Random)?;
            return Ok(Self {
                kind: Tokenization::Binned(binning, selection),
                spec,
                checkpoint: None,
            });
        }
        let medians =
            medians.ok_or_else(|| Error::param("tokenizer", "rank encoding needs gene medians"))?;
        let params = rank_params(cfg);
        Ok(Self {
            spec: params.collate_spec(),
            kind: Tokenization::Rank(FittedRank::from_medians(params, medians)?),
            checkpoint: None,
        })
    }

    /// The tokenizer of a published checkpoint for the model genes `names` (in the
    /// vocabulary's naming): its token ids and special tokens, Geneformer's dictionary
    /// medians instead of reference-fitted ones, and at most the profile's
    /// `max_seq_len` tokens (capped by the checkpoint's position table). Returns the
    /// token id of each gene too.
    pub(crate) fn from_checkpoint(
        ck: &Checkpoint,
        kind: ModelKind,
        cfg: &TrainConfig,
        names: &[String],
    ) -> Result<(Self, Vec<u32>)> {
        let matched = ck.match_genes(names);
        let max_len = ck
            .max_len()
            .map_or(cfg.train.max_seq_len, |l| l.min(cfg.train.max_seq_len));
        let shape = ck.data_shape();
        let tokens = CheckpointTokens {
            source: ck.dir().display().to_string(),
            token_ids: matched.column_ids.clone(),
            collate: ck.collate_spec(max_len),
            vocab_size: shape.vocab_size,
            max_len: shape.max_len,
        };
        let medians = match kind.uses_bins() {
            true => None,
            false => Some(ck.medians_for(names).ok_or_else(|| {
                Error::param("init_from", "a rank-encoding checkpoint needs gene medians")
            })?),
        };
        let mut cfg = cfg.clone();
        cfg.train.max_seq_len = max_len;
        let base = Self::from_parts(kind, &cfg, medians)?;
        Ok((base.with_checkpoint(tokens)?, matched.column_ids))
    }

    /// Use a checkpoint's collation (rank encoding follows its special tokens and length).
    fn with_checkpoint(mut self, tokens: CheckpointTokens) -> Result<Self> {
        let spec = tokens.collate;
        if let Tokenization::Rank(fitted) = &self.kind {
            let params = if spec.prepend_cls {
                RankTokenizerParams::v2()
            } else {
                RankTokenizerParams::v1()
            }
            .with_max_len(spec.max_len);
            let medians = fitted.gene_medians().to_vec();
            self.kind = Tokenization::Rank(FittedRank::from_medians(params, medians)?);
        }
        self.spec = spec;
        self.checkpoint = Some(tokens);
        Ok(self)
    }

    /// Tokens of every cell of `ds` (genes in the model's order).
    pub(crate) fn tokenize(
        &self,
        ds: &Dataset,
        column_ids: &[u32],
        seed: u64,
    ) -> Result<Vec<TokenizedCell>> {
        match &self.kind {
            Tokenization::Binned(tok, sel) => tokenize_binned(&ds.x, column_ids, tok, sel, seed),
            Tokenization::Rank(fitted) => tokenize_rank(
                &rank_encoding_input(&ds.x, ds.value_kind),
                column_ids,
                fitted,
            ),
        }
    }
}

fn rank_params(cfg: &TrainConfig) -> RankTokenizerParams {
    RankTokenizerParams::v2().with_max_len(cfg.train.max_seq_len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::simulate::{simulate, Profile, SimulateOptions};
    use crate::models::pipeline::{fit_classifier, PipelineOptions};
    use crate::models::toy::smoke_config;

    /// Each architecture, saved and loaded back, predicts bit-identical classes and scores,
    /// also on a query whose genes come in another order with one missing; a directory
    /// whose weights miss a variable is refused with the variable's name.
    #[test]
    fn save_load_predicts_identically() {
        let mut opts = SimulateOptions::new(Profile::PancreasLike);
        opts.n_cells = Some(120);
        opts.n_genes = 60;
        opts.seed = 5;
        let ds = simulate(&opts).unwrap();
        let reference = ds.select_cells(&(0..80).collect::<Vec<_>>());
        let query = ds.select_cells(&(80..120).collect::<Vec<_>>());
        let shuffled = query.select_genes(&(1..60).rev().collect::<Vec<_>>());
        let labels = reference.labels("cell_type").unwrap();
        let mut cfg = smoke_config();
        cfg.train.pretrain_steps = 2;
        cfg.train.finetune_steps = 4;
        let dir = tempfile::tempdir().unwrap();
        for kind in ModelKind::ALL {
            let (model, _) = fit_classifier(
                kind,
                &cfg,
                &reference,
                &labels,
                0,
                &PipelineOptions::default(),
            )
            .unwrap();
            let path = dir.path().join(kind.as_str());
            model.save(&path).unwrap();
            let back = NeuralClassifier::load(&path).unwrap();
            assert_eq!(back.classes(), model.classes());
            for q in [&query, &shuffled] {
                let (a, b) = (model.predict(q).unwrap(), back.predict(q).unwrap());
                assert_eq!(a.predicted, b.predicted, "{kind:?}");
                let bits =
                    |p: &Prediction| p.scores.iter().map(|s| s.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&a), bits(&b), "{kind:?}");
            }
        }
        let path = dir.path().join("scgpt");
        let mut w = load_tensors(&path.join("weights.safetensors"), &Device::Cpu).unwrap();
        let name = w
            .keys()
            .find(|k| k.starts_with("cls_head"))
            .unwrap()
            .clone();
        w.remove(&name);
        save_tensors(&w, &path.join("weights.safetensors")).unwrap();
        let err = NeuralClassifier::load(&path).err().unwrap().to_string();
        assert!(
            err.contains(&name) && err.contains("weights.safetensors"),
            "{err}"
        );
    }

    /// Fine-tuning from the published-format checkpoints of `models::pretrained`'s
    /// fixtures: no in-project pretraining, the encoder starts from the checkpoint's
    /// weights (after four small steps each weight is still within 0.02 of it, while the
    /// fixture's weights sit ≥ 0.1 from any fresh init), genes are tokenized through its
    /// vocabulary (symbols mapped to Ensembl ids by a table for Geneformer), and the saved
    /// model predicts bit-identically after loading. A checkpoint of another kind is refused.
    #[test]
    fn fine_tunes_from_published_checkpoints() {
        use crate::models::pretrained::Checkpoint;
        use crate::models::InitFrom;
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/checkpoints");
        let mut opts = SimulateOptions::new(Profile::PancreasLike);
        opts.n_cells = Some(120);
        opts.n_genes = 60;
        opts.seed = 5;
        let mut ds = simulate(&opts).unwrap();
        ds.gene_names = (1..=60).map(|i| format!("GENE{i}")).collect();
        let reference = ds.select_cells(&(0..80).collect::<Vec<_>>());
        let query = ds.select_cells(&(80..120).collect::<Vec<_>>());
        let labels = reference.labels("cell_type").unwrap();
        let table: HashMap<String, String> = (1..=60)
            .map(|i| (format!("GENE{i}"), format!("ENSG{i:011}")))
            .collect();
        let mut cfg = smoke_config();
        cfg.train.finetune_steps = 4;
        let dir = tempfile::tempdir().unwrap();
        for (name, probe) in [
            ("scgpt", "encoder.encoder.layers.0.attn.q.weight"),
            ("geneformer", "encoder.encoder.layers.1.ffn.up.weight"),
        ] {
            let ck = Checkpoint::load(&root.join(name)).unwrap();
            let init = InitFrom {
                checkpoint: &ck,
                gene_ids: (name == "geneformer").then_some(&table),
            };
            let pipeline = PipelineOptions {
                init_from: Some(init),
                ..Default::default()
            };
            let (model, report) =
                fit_classifier(ck.kind(), &cfg, &reference, &labels, 0, &pipeline).unwrap();
            assert_eq!(report.pretrain_steps, 0, "{name}");
            let fitted = model.store.snapshot().unwrap();
            let start = ck.tensor(probe).unwrap();
            let moved = crate::models::toy::max_abs_diff(&fitted[probe], start);
            let size: f32 = start.abs().unwrap().max_all().unwrap().to_scalar().unwrap();
            assert!(
                moved < 0.02 && size > 0.1,
                "{name}: moved {moved}, size {size}"
            );
            let path = dir.path().join(name);
            model.save(&path).unwrap();
            let back = NeuralClassifier::load(&path).unwrap();
            let (a, b) = (
                model.predict(&query).unwrap(),
                back.predict(&query).unwrap(),
            );
            assert_eq!(a.predicted, b.predicted, "{name}");
            assert_eq!(a.scores, b.scores, "{name}");
        }
        let ck = Checkpoint::load(&root.join("scgpt")).unwrap();
        let pipeline = PipelineOptions {
            init_from: Some(InitFrom {
                checkpoint: &ck,
                gene_ids: None,
            }),
            ..Default::default()
        };
        let err = fit_classifier(ModelKind::ScMamba2, &cfg, &reference, &labels, 0, &pipeline)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("scgpt checkpoint"), "{err}");
        // The library route: ClassifierParams::init_from through the Fit trait.
        let ck = Checkpoint::load(&root.join("geneformer")).unwrap();
        let model = ClassifierParams::new(ModelKind::Geneformer, cfg.clone())
            .init_from(ck, Some(table))
            .fit(&reference, &labels)
            .unwrap();
        assert_eq!(model.fit_report().unwrap().pretrain_steps, 0);
        assert!(model.meta.checkpoint.is_some());
    }
}
