//! Training configuration shared by all models: the `[train]` and `[models.*]` sections of
//! `configs/*.toml` (other sections, such as the study runner's `[study]`, are ignored
//! here). One learning rate, batch size and step count for every model, as in the study.

use super::geneformer::GeneformerConfig;
use super::scgpt::ScGptConfig;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Learning-rate decay after warmup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// Cosine decay from `lr` to `lr · min_lr_ratio` over the remaining steps.
    Cosine,
    /// Multiply by `step_gamma` every `step_every` steps (scGPT's StepLR).
    Step,
}

/// How class imbalance is handled in fine-tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClassBalance {
    /// Uniform sampling, unweighted loss (default, as scGPT and Geneformer).
    None,
    /// Sample cells with probability ∝ 1 / class size.
    Sampler,
    /// Weight the loss by 1 / class frequency (normalised to mean 1).
    Loss,
}

/// Which genes a binned model (scGPT-like, SC-MAMBA2-like) sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum GeneSelection {
    /// scGPT's annotation input (default): highly variable genes chosen on the reference
    /// training cells, as many as keep 99% of those cells within `max_seq_len − 1`
    /// non-zero genes, and every non-zero one of them in gene order; the rare longer cell
    /// is subsampled at random (see [`crate::models::genes`]).
    #[default]
    Hvg,
    /// Ablation only: a cell's highest-valued genes, in decreasing value order. It hands a
    /// sequence model the rank order and drops the genes noise creates.
    Top,
    /// All of the reference's genes, a seeded uniform subset of the non-zero ones when a
    /// cell has more than fit (scGPT without HVG selection).
    Random,
}

/// Optimisation and data settings, the `[train]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainParams {
    /// Seed of everything random (splits, tokenization, init, batches, dropout, masks).
    pub seed: u64,
    /// Cells per step.
    pub batch_size: usize,
    /// Masked-modelling steps on reference cells (0 = no pretraining).
    pub pretrain_steps: usize,
    /// Maximum classification steps (fewer when early stopping ends fine-tuning, see
    /// `patience`).
    pub finetune_steps: usize,
    /// Peak learning rate, shared by all models and both stages.
    pub lr: f64,
    /// Linear warmup steps at the start of each stage.
    pub warmup_steps: usize,
    /// Decay after warmup.
    pub schedule: Schedule,
    /// Cosine floor as a fraction of `lr`.
    pub min_lr_ratio: f64,
    /// StepLR factor.
    pub step_gamma: f64,
    /// StepLR period in steps.
    pub step_every: usize,
    /// AdamW decoupled weight decay (applied to matrices only).
    pub weight_decay: f64,
    /// Global gradient-norm clip.
    pub grad_clip: f64,
    /// Tokens per cell including `<cls>`.
    pub max_seq_len: usize,
    /// Which genes binned models see (default `hvg`, scGPT's input; `top` is an ablation).
    #[serde(default)]
    pub gene_selection: GeneSelection,
    /// Expression bins for binned models (scGPT: 51).
    pub n_bins: usize,
    /// Fraction of real gene tokens masked in the Geneformer-like model's masked-gene
    /// pretraining (BERT and Geneformer: 0.15).
    pub mask_ratio: f64,
    /// Fraction of real gene tokens whose value is masked in the binned models' (scGPT-like,
    /// SC-MAMBA2-like) value-prediction pretraining, GEP. Default 0.4, scGPT's `mask_ratio`.
    #[serde(default = "default_gep_mask_ratio")]
    pub gep_mask_ratio: f64,
    /// Fraction of reference cells held out for model selection.
    pub val_fraction: f64,
    /// Evaluate every this many steps and at the last one: fine-tuning scores the
    /// validation cells (loss, accuracy, macro F1), pretraining records its mean training
    /// loss. Each evaluation is one point of the learning curve.
    pub eval_every: usize,
    /// Early stopping: fine-tuning ends once this many evaluations in a row did not lower
    /// the validation loss, and keeps the weights with the lowest one. Default 10;
    /// 0 disables it (all `finetune_steps` run; the best weights are still kept).
    #[serde(default = "default_patience")]
    pub patience: usize,
    /// Write a checkpoint every this many steps (0 = only at the end of a stage).
    pub checkpoint_every: usize,
    /// Class-imbalance handling.
    pub class_balance: ClassBalance,
    /// Hidden blocks of the classification decoder (scGPT: 3).
    pub n_layers_cls: usize,
}

fn default_gep_mask_ratio() -> f64 {
    0.4
}

fn default_patience() -> usize {
    10
}

/// Architecture sizes per model, the `[models.*]` sections. Vocabulary and position sizes
/// come from the data and are filled in at training time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsConfig {
    /// scGPT-like sizes.
    pub scgpt: ScGptConfig,
    /// Geneformer-like sizes.
    pub geneformer: GeneformerConfig,
    /// SC-MAMBA2-like sizes.
    pub scmamba2: super::scmamba2::ScMamba2Config,
}

/// Everything `train_and_predict` needs: `[train]` plus `[models.*]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Optimisation and data settings.
    pub train: TrainParams,
    /// Architecture sizes.
    pub models: ModelsConfig,
}

impl TrainConfig {
    /// Parse the `[train]` and `[models]` sections of a TOML document; `source` names it in
    /// errors. Other top-level sections are ignored.
    pub fn from_toml_str(text: &str, source: &Path) -> Result<Self> {
        let parse_err = |e: String| Error::Parse {
            path: source.to_path_buf(),
            problem: e,
        };
        let doc: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| parse_err(e.to_string()))?;
        let mut kept = toml::Table::new();
        for key in ["train", "models"] {
            let v = doc
                .get(key)
                .ok_or_else(|| parse_err(format!("missing section [{key}]")))?;
            kept.insert(key.to_string(), v.clone());
        }
        let cfg: TrainConfig = toml::Value::Table(kept)
            .try_into()
            .map_err(|e: toml::de::Error| parse_err(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Read a config file.
    pub fn load(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(Error::FileNotFound {
                path: path.to_path_buf(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_toml_str(&text, path)
    }

    /// Check value ranges.
    pub fn validate(&self) -> Result<()> {
        let t = &self.train;
        let positive = [
            ("train.batch_size", t.batch_size),
            ("train.max_seq_len", t.max_seq_len),
            ("train.eval_every", t.eval_every),
            ("train.step_every", t.step_every),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(Error::param(name, "must be > 0"));
            }
        }
        if t.max_seq_len < 2 {
            return Err(Error::param(
                "train.max_seq_len",
                "needs room for <cls> and one gene",
            ));
        }
        if !(t.lr > 0.0 && t.lr.is_finite()) {
            return Err(Error::param(
                "train.lr",
                format!("must be a positive number, got {}", t.lr),
            ));
        }
        for (name, v) in [
            ("train.mask_ratio", t.mask_ratio),
            ("train.gep_mask_ratio", t.gep_mask_ratio),
            ("train.val_fraction", t.val_fraction),
        ] {
            if !(0.0..1.0).contains(&v) {
                return Err(Error::param(name, format!("must be in [0, 1), got {v}")));
            }
        }
        if t.n_bins < 2 {
            return Err(Error::param("train.n_bins", "must be ≥ 2"));
        }
        let m = &self.models;
        for (name, d, h) in [
            ("models.scgpt", m.scgpt.d_model, m.scgpt.n_heads),
            (
                "models.geneformer",
                m.geneformer.d_model,
                m.geneformer.n_heads,
            ),
        ] {
            if h == 0 || d % h != 0 {
                return Err(Error::param(
                    name,
                    format!("d_model {d} must be divisible by n_heads {h}"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_config(name: &str) -> TrainConfig {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("configs")
            .join(name);
        TrainConfig::load(&path).unwrap()
    }

    /// `gene_selection` defaults to scGPT's HVG input when a profile omits it (smoke.toml
    /// does), the quick profile asks for it explicitly, and `top` stays an ablation.
    #[test]
    fn gene_selection_defaults_to_hvg() {
        assert_eq!(
            repo_config("smoke.toml").train.gene_selection,
            GeneSelection::Hvg
        );
        assert_eq!(
            repo_config("quick.toml").train.gene_selection,
            GeneSelection::Hvg
        );
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/quick.toml"),
        )
        .unwrap()
        .replace("gene_selection = \"hvg\"", "gene_selection = \"random\"");
        let cfg = TrainConfig::from_toml_str(&text, Path::new("quick.toml")).unwrap();
        assert_eq!(cfg.train.gene_selection, GeneSelection::Random);
    }

    /// Profiles without the keys get early stopping after 10 evaluations and scGPT's 0.4
    /// GEP mask ratio, Geneformer's MLM keeps `mask_ratio`; both keys can be set.
    #[test]
    fn patience_and_gep_mask_ratio_defaults() {
        let cfg = repo_config("smoke.toml");
        assert_eq!(cfg.train.patience, 10);
        assert_eq!(cfg.train.gep_mask_ratio, 0.4);
        assert_eq!(cfg.train.mask_ratio, 0.15);
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/smoke.toml"),
        )
        .unwrap()
        .replace(
            "[train]\n",
            "[train]\npatience = 0\ngep_mask_ratio = 0.25\n",
        );
        let cfg = TrainConfig::from_toml_str(&text, Path::new("smoke.toml")).unwrap();
        assert_eq!((cfg.train.patience, cfg.train.gep_mask_ratio), (0, 0.25));
        let bad = text.replace("gep_mask_ratio = 0.25", "gep_mask_ratio = 1.0");
        let err = TrainConfig::from_toml_str(&bad, Path::new("smoke.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("gep_mask_ratio"), "{err}");
    }

    /// The three shipped profiles parse, and every profile uses one learning rate.
    #[test]
    fn shipped_profiles_parse() {
        for name in ["smoke.toml", "quick.toml", "paper.toml"] {
            let cfg = repo_config(name);
            assert!(cfg.train.lr > 0.0, "{name}");
        }
    }

    /// Every profile keeps the study's proportion: the Geneformer-like classifier has
    /// 50–70% of the scGPT-like one's parameters on a 3000-gene vocabulary (the study's
    /// data sets), i.e. "~40% fewer".
    #[test]
    fn geneformer_has_about_forty_percent_fewer_parameters() {
        use crate::models::{
            build_encoder, heads::ClsDecoder, params::ParamStore, DataShape, ModelKind,
        };
        use candle_core::Device;
        for name in ["quick.toml", "paper.toml"] {
            let cfg = repo_config(name);
            let shape = DataShape {
                vocab_size: 3004,
                max_len: cfg.train.max_seq_len,
            };
            let count = |kind| {
                let store = ParamStore::new(0, &Device::Cpu);
                let enc = build_encoder(kind, &cfg.models, shape, store.vb()).unwrap();
                ClsDecoder::new(
                    enc.d_model(),
                    cfg.train.n_layers_cls,
                    14,
                    store.vb().pp("cls_head"),
                )
                .unwrap();
                store.n_params().unwrap() as f64
            };
            let ratio = count(ModelKind::Geneformer) / count(ModelKind::ScGpt);
            assert!((0.5..=0.7).contains(&ratio), "{name}: ratio {ratio:.3}");
        }
    }

    /// Unknown keys and out-of-range values are rejected with the key's name.
    #[test]
    fn bad_values_are_rejected() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/smoke.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let typo = text.replace("batch_size", "batchsize");
        assert!(TrainConfig::from_toml_str(&typo, &path).is_err());
        let bad = text.replace("mask_ratio = 0.15", "mask_ratio = 1.5");
        let err = TrainConfig::from_toml_str(&bad, &path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("mask_ratio"), "{err}");
    }
}
