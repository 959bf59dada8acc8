//! SC-MAMBA2-like encoder (Zhang et al. 2024, "SC-MAMBA2: leveraging state-space models
//! for efficient single-cell ultra-long transcriptome modeling", bioRxiv
//! 10.1101/2024.09.30.615775): scGPT's binned input and gene + value embedding
//! ([`GeneValueEmbedding`]) followed by bidirectional Mamba-2 blocks instead of attention.

use super::layers::DropoutRng;
use super::mamba2::{BiMamba2Encoder, Mamba2Config};
use super::scgpt::GeneValueEmbedding;
use super::{CellEncoder, ModelInput};
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

/// Architecture of the SC-MAMBA2-like encoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScMamba2Config {
    /// Number of gene + special tokens (set from the data; 0 in config files).
    #[serde(default)]
    pub vocab_size: usize,
    /// Embedding width.
    pub d_model: usize,
    /// Bidirectional Mamba-2 layers.
    pub n_layers: usize,
    /// SSM state size per head.
    pub d_state: usize,
    /// Channels per head.
    pub headdim: usize,
    /// Inner width factor.
    pub expand: usize,
    /// Causal convolution width.
    pub d_conv: usize,
    /// SSD chunk length.
    pub chunk_size: usize,
    /// Dropout (embedding and between layers).
    pub dropout: f32,
    /// Values are clamped at this before the value encoder (default 512, as scGPT).
    #[serde(default = "default_max_value")]
    pub max_value: f32,
}

fn default_max_value() -> f32 {
    512.0
}

impl ScMamba2Config {
    /// The sizes of the Mamba-2 stack.
    pub fn mamba(&self) -> Mamba2Config {
        Mamba2Config {
            d_model: self.d_model,
            n_layers: self.n_layers,
            d_state: self.d_state,
            headdim: self.headdim,
            expand: self.expand,
            d_conv: self.d_conv,
            chunk_size: self.chunk_size,
        }
    }
}

/// The SC-MAMBA2-like encoder: [`GeneValueEmbedding`] → [`BiMamba2Encoder`]. The
/// `<cls>` token sits first; the backward direction carries the whole cell into it.
pub struct ScMamba2 {
    embedding: GeneValueEmbedding,
    encoder: BiMamba2Encoder,
    d_model: usize,
    rng: DropoutRng,
}

impl ScMamba2 {
    /// Build under `vb` (`embedding.*`, `encoder.layers.{i}.{norm,fwd,bwd}`, `encoder.norm_f`).
    pub fn new(cfg: &ScMamba2Config, vb: VarBuilder) -> Result<Self> {
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
            encoder: BiMamba2Encoder::new(&cfg.mamba(), vb.pp("encoder"))?
                .with_dropout(cfg.dropout, 0)?,
            d_model: cfg.d_model,
            rng,
        })
    }
}

impl CellEncoder for ScMamba2 {
    fn forward_t(&self, input: &ModelInput, train: bool) -> Result<Tensor> {
        let x = self.embedding.forward_t(input, train)?;
        self.encoder.forward_t(&x, &input.mask, train)
    }

    fn d_model(&self) -> usize {
        self.d_model
    }

    fn reseed_dropout(&self, seed: u64) {
        self.rng.reseed(seed);
        // A different stream for the Mamba stack's own masks.
        self.encoder.reseed_dropout(seed ^ 0x5DEE_CE66_D1CE_5EED);
    }
}
