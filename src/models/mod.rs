//! Foundation-model-like cell-type classifiers in candle: scGPT-like ([`scgpt`]),
//! Geneformer-like ([`geneformer`]) and SC-MAMBA2-like ([`scmamba2`]), their pretraining
//! heads ([`heads`]), one trainer for all of them ([`optim`], [`trainer`], [`pretrain`],
//! [`finetune`]), safetensors checkpoints ([`checkpoint`]), the end-to-end
//! [`train_and_predict`] used by `scrobust train` and the study runner, and the
//! competence gate against logistic regression ([`gate`]).
//!
//! Every model maps a [`ModelInput`] (gene ids, values, padding mask) to hidden states
//! `(b, l, d)`; the classifier reads the first token (`<cls>`).

mod checkpoint;
mod classifier;
pub mod config;
// The training-step building blocks are public only for `examples/train_throughput`
// (the throughput bench against PyTorch); they are not part of the library's API.
#[doc(hidden)]
pub mod finetune;
mod fit;
pub(crate) mod fused;
pub mod gate;
mod geneformer;
mod genes;
#[doc(hidden)]
pub mod heads;
mod layers;
pub mod mamba2;
#[doc(hidden)]
pub mod optim;
#[doc(hidden)]
pub mod params;
mod pipeline;
mod pretrain;
pub mod pretrained;
mod scgpt;
mod scmamba2;
#[cfg(test)]
mod toy;
mod trainer;
pub mod tune;

pub use classifier::{ClassifierParams, NeuralClassifier};
pub use config::{ModelsConfig, TrainConfig};
pub use pipeline::{
    fit_classifier, train_and_predict, train_and_predict_many, FitReport, InitFrom,
    PipelineOptions, ReferenceSplit, TrainOutcome,
};
pub use trainer::CurvePoint;

use crate::error::{Error, Result};
use crate::tokenize::collate::Batch;
use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

/// Which architecture to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// scGPT-like: binned values, gene + value embeddings, post-norm transformer.
    ScGpt,
    /// Geneformer-like: rank-ordered gene tokens, BERT with learned positions.
    Geneformer,
    /// SC-MAMBA2-like: scGPT's inputs with bidirectional Mamba-2 blocks.
    ScMamba2,
}

impl ModelKind {
    /// All kinds, in report order.
    pub const ALL: [ModelKind; 3] = [ModelKind::ScGpt, ModelKind::Geneformer, ModelKind::ScMamba2];

    /// Name used on the command line and in JSON.
    pub fn as_str(&self) -> &'static str {
        match self {
            ModelKind::ScGpt => "scgpt",
            ModelKind::Geneformer => "geneformer",
            ModelKind::ScMamba2 => "scmamba2",
        }
    }

    /// True for the models fed with expression bins (scGPT's tokenization); false for rank
    /// encoding (Geneformer).
    pub fn uses_bins(&self) -> bool {
        !matches!(self, ModelKind::Geneformer)
    }
}

impl std::str::FromStr for ModelKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "scgpt" => Ok(ModelKind::ScGpt),
            "geneformer" => Ok(ModelKind::Geneformer),
            "scmamba2" | "sc-mamba2" | "mamba" => Ok(ModelKind::ScMamba2),
            other => Err(Error::param(
                "model",
                format!("unknown model '{other}' (scgpt, geneformer, scmamba2)"),
            )),
        }
    }
}

/// One batch as tensors on the model's device.
#[derive(Debug, Clone)]
pub struct ModelInput {
    /// Token ids `(b, l)`, u32.
    pub gene_ids: Tensor,
    /// Token values `(b, l)`, f32 (bin index for binned models).
    pub values: Tensor,
    /// `(b, l)` f32, 1 for real tokens, 0 for padding.
    pub mask: Tensor,
}

impl ModelInput {
    /// Move a collated [`Batch`] to `device`.
    pub fn from_batch(batch: &Batch, device: &Device) -> Result<Self> {
        let shape = (batch.batch_size, batch.seq_len);
        let n = batch.batch_size * batch.seq_len;
        if batch.gene_ids.len() != n || batch.values.len() != n || batch.attention_mask.len() != n {
            return Err(Error::Model(format!(
                "batch of {}×{} has {} ids, {} values, {} mask entries",
                batch.batch_size,
                batch.seq_len,
                batch.gene_ids.len(),
                batch.values.len(),
                batch.attention_mask.len()
            )));
        }
        let mask: Vec<f32> = batch.attention_mask.iter().map(|&m| f32::from(m)).collect();
        Ok(Self {
            gene_ids: Tensor::from_slice(&batch.gene_ids, shape, device)?,
            values: Tensor::from_slice(&batch.values, shape, device)?,
            mask: Tensor::from_vec(mask, shape, device)?,
        })
    }
}

/// A sequence encoder: tokens → hidden states `(b, l, d)`.
pub trait CellEncoder {
    /// Hidden states for `input`; dropout only when `train`.
    fn forward_t(&self, input: &ModelInput, train: bool) -> candle_core::Result<Tensor>;
    /// Width of the hidden states.
    fn d_model(&self) -> usize;
    /// Restart the dropout stream (the trainer calls this before every step).
    fn reseed_dropout(&self, seed: u64);
}

/// The compute device: the first CUDA GPU when built with the `cuda` feature and one is
/// present, else the CPU.
pub fn default_device() -> Device {
    #[cfg(feature = "cuda")]
    {
        Device::cuda_if_available(0).unwrap_or(Device::Cpu)
    }
    #[cfg(not(feature = "cuda"))]
    {
        Device::Cpu
    }
}

/// The CPU runtime settings the models are measured with; call once at program start,
/// before any tensor op (the `scrobust` binary and the throughput example do):
/// single-threaded element-wise ops ([`default_cpu_threading`]) and freed tensor buffers
/// kept for reuse ([`keep_freed_buffers`]).
pub fn configure_cpu_runtime() {
    default_cpu_threading();
    keep_freed_buffers();
}

/// Element-wise CPU ops run on the calling thread unless `CANDLE_NUM_THREADS` says
/// otherwise.
///
/// Why: candle 0.11.1 parallelises element-wise ops over a pool whose threads are pinned
/// to cores and whose caller busy-waits for them. The models' tensors are small (a few
/// hundred thousand elements), so the hand-off costs more than it saves, and on a busy
/// machine the caller spins for whole time slices: measured on the 2-core development
/// machine (load ~6, `examples/train_throughput.rs`, quick profile), 1 thread trained
/// 2.6–3.6× faster (scGPT-like 308–321 vs 97–118 cells/s, Geneformer-like 398–403 vs
/// 110–184, SC-MAMBA2-like 73–79 vs 38–39). Matrix products keep their own threading
/// (`RAYON_NUM_THREADS`), as do the rayon kernels in this crate.
pub fn default_cpu_threading() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // Single-threaded at this point (program start), so setting the variable is sound.
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}

/// Serve tensor buffers of up to 256 MiB from the heap and keep freed memory for reuse
/// (glibc only; a no-op elsewhere).
///
/// Why: every candle op allocates its output. glibc hands out blocks above its mmap
/// threshold (128 KiB at first, adapting upwards) as fresh zeroed pages and unmaps them on
/// free, so a training step faulted in its multi-MiB activation and gradient buffers anew
/// each time. With the threshold fixed high, freed blocks are reused: scGPT-like at the
/// standard shapes trained at 310 instead of 213 cells/s with the same peak RSS
/// (`examples/train_throughput.rs`, the same two thresholds set through `GLIBC_TUNABLES`).
pub fn keep_freed_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator parameters; it is called before any
        // other thread exists. Returns 0 on failure, which leaves glibc's defaults.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        }
    }
}

/// Sizes of the data-dependent tables: token vocabulary and longest input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataShape {
    /// Gene + special tokens.
    pub vocab_size: usize,
    /// Tokens per cell including `<cls>`.
    pub max_len: usize,
}

/// Build the encoder of `kind` with the sizes of `cfg` and the tables of `shape`, its
/// variables under `vb.pp("encoder")`.
pub fn build_encoder(
    kind: ModelKind,
    cfg: &ModelsConfig,
    shape: DataShape,
    vb: VarBuilder,
) -> Result<Box<dyn CellEncoder>> {
    let vb = vb.pp("encoder");
    Ok(match kind {
        ModelKind::ScGpt => {
            let c = scgpt::ScGptConfig {
                vocab_size: shape.vocab_size,
                ..cfg.scgpt.clone()
            };
            Box::new(scgpt::ScGpt::new(&c, vb)?)
        }
        ModelKind::Geneformer => {
            let c = geneformer::GeneformerConfig {
                vocab_size: shape.vocab_size,
                max_len: shape.max_len,
                ..cfg.geneformer.clone()
            };
            Box::new(geneformer::Geneformer::new(&c, vb)?)
        }
        ModelKind::ScMamba2 => {
            let c = scmamba2::ScMamba2Config {
                vocab_size: shape.vocab_size,
                ..cfg.scmamba2.clone()
            };
            Box::new(scmamba2::ScMamba2::new(&c, vb)?)
        }
    })
}

/// Build the pretraining head of `kind` under `vb.pp("pretrain_head")`: value regression
/// for binned models, masked-token classification (vocabulary + `<mask>`) for Geneformer.
pub fn build_pretrain_head(
    kind: ModelKind,
    d_model: usize,
    shape: DataShape,
    vb: VarBuilder,
) -> Result<pretrain::PretrainHead> {
    let vb = vb.pp("pretrain_head");
    Ok(match kind {
        ModelKind::Geneformer => {
            pretrain::PretrainHead::Tokens(heads::MlmHead::new(d_model, shape.vocab_size + 1, vb)?)
        }
        _ => pretrain::PretrainHead::Values(heads::ExprDecoder::new(d_model, vb)?),
    })
}

/// Trainable parameters of each model's classifier (encoder + classification head with
/// `n_classes` outputs) for the sizes in `cfg` and the tables of `shape`. Builds each model
/// on the CPU once.
pub fn param_counts(
    cfg: &TrainConfig,
    shape: DataShape,
    n_classes: usize,
) -> Result<Vec<(ModelKind, usize)>> {
    ModelKind::ALL
        .iter()
        .map(|&kind| {
            let store = params::ParamStore::new(0, &Device::Cpu);
            let encoder = build_encoder(kind, &cfg.models, shape, store.vb())?;
            heads::ClsDecoder::new(
                encoder.d_model(),
                cfg.train.n_layers_cls,
                n_classes,
                store.vb().pp("cls_head"),
            )?;
            Ok((kind, store.n_params()?))
        })
        .collect()
}
