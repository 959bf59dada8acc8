//! scGPT-like encoder (Cui et al. 2024, "scGPT: toward building a foundation model for
//! single-cell multi-omics", bowang-lab/scGPT scgpt/model/model.py `TransformerModel`).
//!
//! Input: gene tokens plus the expression bin of each gene as a float
//! (`input_emb_style="continuous"`). Embedding = `GeneEncoder(gene)` (Embedding → LayerNorm)
//! plus `ContinuousValueEncoder(value)` (clamp ≤ `max_value` → Linear(1,d) → ReLU → Linear →
//! LayerNorm → dropout), summed, **no positional encoding** (a cell is a set of genes).
//! Encoder: PyTorch `nn.TransformerEncoderLayer` as scGPT builds it, i.e. **post-norm**
//! with ReLU (`pre_norm = false` by default; pre-norm is an option). The `<cls>` token's
//! state is the cell embedding.

use super::layers::{
    linear, Activation, Dropout, DropoutRng, Encoder, EncoderSpec, LayerNorm, TORCH_LAYER_NORM_EPS,
};
use super::{CellEncoder, ModelInput};
use candle_core::{Module, Result, Tensor};
use candle_nn::{Embedding, Linear, VarBuilder};
use serde::{Deserialize, Serialize};

/// Architecture of the scGPT-like encoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScGptConfig {
    /// Number of gene + special tokens (set from the data; 0 in config files).
    #[serde(default)]
    pub vocab_size: usize,
    /// Embedding width (scGPT: 512).
    pub d_model: usize,
    /// Attention heads (scGPT: 8).
    pub n_heads: usize,
    /// Feed-forward width (scGPT: `d_hid` = 512).
    pub d_hidden: usize,
    /// Encoder layers (scGPT: 12).
    pub n_layers: usize,
    /// Dropout (scGPT annotation: 0.2).
    pub dropout: f32,
    /// Pre-norm layers instead of scGPT's post-norm (default false).
    #[serde(default)]
    pub pre_norm: bool,
    /// Values are clamped at this before the value encoder (default 512, as scGPT).
    #[serde(default = "default_max_value")]
    pub max_value: f32,
}

fn default_max_value() -> f32 {
    512.0
}

impl ScGptConfig {
    /// The encoder stack's shape: PyTorch `nn.TransformerEncoderLayer` defaults (ReLU,
    /// eps 1e-5), as scGPT builds it.
    fn encoder_spec(&self) -> EncoderSpec {
        EncoderSpec {
            n_layers: self.n_layers,
            d_model: self.d_model,
            n_heads: self.n_heads,
            d_hidden: self.d_hidden,
            dropout: self.dropout,
            pre_norm: self.pre_norm,
            eps: TORCH_LAYER_NORM_EPS,
            activation: Activation::Relu,
        }
    }
}

/// scGPT's summed gene + continuous value embedding, shared with the SC-MAMBA2-like model.
#[derive(Clone)]
pub struct GeneValueEmbedding {
    gene: Embedding,
    gene_norm: LayerNorm,
    value_in: Linear,
    value_out: Linear,
    value_norm: LayerNorm,
    dropout: Dropout,
    max_value: f32,
}

impl GeneValueEmbedding {
    /// Tables for `vocab_size` tokens of width `d_model`.
    pub fn new(
        vocab_size: usize,
        d_model: usize,
        dropout: f32,
        max_value: f32,
        rng: &DropoutRng,
        vb: VarBuilder,
    ) -> Result<Self> {
        Ok(Self {
            gene: candle_nn::embedding(vocab_size, d_model, vb.pp("gene"))?,
            gene_norm: LayerNorm::new(d_model, vb.pp("gene_norm"))?,
            value_in: linear(1, d_model, vb.pp("value_in"))?,
            value_out: linear(d_model, d_model, vb.pp("value_out"))?,
            value_norm: LayerNorm::new(d_model, vb.pp("value_norm"))?,
            dropout: Dropout::new(dropout, rng),
            max_value,
        })
    }

    /// `(b, l, d)` token embeddings.
    pub fn forward_t(&self, input: &ModelInput, train: bool) -> Result<Tensor> {
        let genes = self
            .gene_norm
            .forward(&self.gene.forward(&input.gene_ids)?)?;
        // Clamp only from above, as scGPT: pad (−2) and mask (−1) values stay distinct.
        let v = input.values.clamp(f32::MIN, self.max_value)?.unsqueeze(2)?;
        let v = self
            .value_out
            .forward(&self.value_in.forward(&v)?.relu()?)?;
        let v = self
            .dropout
            .forward_t(&self.value_norm.forward(&v)?, train)?;
        genes + v
    }
}

/// The scGPT-like encoder.
#[derive(Clone)]
pub struct ScGpt {
    embedding: GeneValueEmbedding,
    encoder: Encoder,
    d_model: usize,
    rng: DropoutRng,
}

impl ScGpt {
    /// Build under `vb` (`embedding.*`, `encoder.layers.{i}.*`).
    pub fn new(cfg: &ScGptConfig, vb: VarBuilder) -> Result<Self> {
        let rng = DropoutRng::new(0);
        Ok(Self {
            embedding: GeneValueEmbedding::new(
                cfg.vocab_size,
                cfg.d_model,
                cfg.dropout,
                cfg.max_value,
                &rng,
                vb.pp("embedding"),
            )?,
            encoder: Encoder::new(&cfg.encoder_spec(), &rng, vb.pp("encoder"))?,
            d_model: cfg.d_model,
            rng,
        })
    }
}

impl CellEncoder for ScGpt {
    fn forward_t(&self, input: &ModelInput, train: bool) -> Result<Tensor> {
        let x = self.embedding.forward_t(input, train)?;
        self.encoder.forward_t(&x, &input.mask, train)
    }

    fn d_model(&self) -> usize {
        self.d_model
    }

    fn reseed_dropout(&self, seed: u64) {
        self.rng.reseed(seed);
    }
}
