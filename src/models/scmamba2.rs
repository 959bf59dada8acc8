//! SC-MAMBA2-like encoder (Zhang et al. 2024, "SC-MAMBA2: leveraging state-space models
//! for efficient single-cell ultra-long transcriptome modeling", bioRxiv
//! 10.1101/2024.09.30.615775): scGPT's binned input and gene + value embedding
//! ([`GeneValueEmbedding`]) followed by bidirectional Mamba-2 blocks instead of attention.

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

/// The SC-MAMBA2-like encoder (placeholder until the Mamba-2 block lands).
pub struct ScMamba2;

impl ScMamba2 {
    /// Not available yet.
    pub fn new(_cfg: &ScMamba2Config, _vb: candle_nn::VarBuilder) -> candle_core::Result<Self> {
        candle_core::bail!("the SC-MAMBA2-like model needs src/models/mamba2.rs")
    }
}

impl super::CellEncoder for ScMamba2 {
    fn forward_t(
        &self,
        _input: &super::ModelInput,
        _train: bool,
    ) -> candle_core::Result<candle_core::Tensor> {
        candle_core::bail!("the SC-MAMBA2-like model needs src/models/mamba2.rs")
    }
    fn d_model(&self) -> usize {
        0
    }
    fn reseed_dropout(&self, _seed: u64) {}
}
