//! Geneformer-like encoder (Theodoris et al. 2023, "Transfer learning enables predictions
//! in network biology", ctheodoris/Geneformer; a BERT, Devlin et al. 2019).
//!
//! Input: gene tokens in rank order (values unused). Embedding = token embedding + learned
//! position embedding over the rank position → LayerNorm → dropout (BERT embeddings without
//! token types). Encoder: post-norm BERT layers with ReLU, dropout 0.02. The token table
//! has one extra row, the `<mask>` token of masked-gene pretraining (id = `vocab_size`).

use super::layers::{Dropout, DropoutRng, Encoder, LayerNorm};
use super::{CellEncoder, ModelInput};
use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Embedding, VarBuilder};
use serde::{Deserialize, Serialize};

/// Architecture of the Geneformer-like encoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneformerConfig {
    /// Number of gene + special tokens (the `<mask>` token is added on top); set from the
    /// data, 0 in config files.
    #[serde(default)]
    pub vocab_size: usize,
    /// Longest input (position table size; Geneformer V1: 2048, V2: 4096); set from
    /// `train.max_seq_len`, 0 in config files.
    #[serde(default)]
    pub max_len: usize,
    /// Hidden width (Geneformer: 256 or 512).
    pub d_model: usize,
    /// Attention heads (4 or 8).
    pub n_heads: usize,
    /// Feed-forward width (512 or 1024).
    pub d_hidden: usize,
    /// Layers (6 or 12).
    pub n_layers: usize,
    /// Dropout (Geneformer: 0.02).
    pub dropout: f32,
}

impl GeneformerConfig {
    /// Id of the `<mask>` token (one past the tokenizer's vocabulary).
    pub fn mask_token_id(&self) -> u32 {
        self.vocab_size as u32
    }
}

/// The Geneformer-like encoder.
#[derive(Clone)]
pub struct Geneformer {
    tokens: Embedding,
    positions: Embedding,
    norm: LayerNorm,
    dropout: Dropout,
    encoder: Encoder,
    max_len: usize,
    d_model: usize,
    rng: DropoutRng,
}

impl Geneformer {
    /// Build under `vb` (`embedding.*`, `encoder.layers.{i}.*`).
    pub fn new(cfg: &GeneformerConfig, vb: VarBuilder) -> Result<Self> {
        let rng = DropoutRng::new(0);
        let emb = vb.pp("embedding");
        Ok(Self {
            tokens: candle_nn::embedding(cfg.vocab_size + 1, cfg.d_model, emb.pp("tokens"))?,
            positions: candle_nn::embedding(cfg.max_len, cfg.d_model, emb.pp("positions"))?,
            norm: LayerNorm::new(cfg.d_model, emb.pp("norm"))?,
            dropout: Dropout::new(cfg.dropout, &rng),
            encoder: Encoder::new(
                cfg.n_layers,
                cfg.d_model,
                cfg.n_heads,
                cfg.d_hidden,
                cfg.dropout,
                false,
                &rng,
                vb.pp("encoder"),
            )?,
            max_len: cfg.max_len,
            d_model: cfg.d_model,
            rng,
        })
    }
}

impl CellEncoder for Geneformer {
    fn forward_t(&self, input: &ModelInput, train: bool) -> Result<Tensor> {
        let (_, l) = input.gene_ids.dims2()?;
        if l > self.max_len {
            candle_core::bail!(
                "sequence length {l} exceeds the position table ({})",
                self.max_len
            );
        }
        let pos = Tensor::arange(0u32, l as u32, input.gene_ids.device())?;
        let pos = self.positions.forward(&pos)?.unsqueeze(0)?;
        let x = self
            .tokens
            .forward(&input.gene_ids.to_dtype(DType::U32)?)?
            .broadcast_add(&pos)?;
        let x = self.dropout.forward_t(&self.norm.forward(&x)?, train)?;
        self.encoder.forward_t(&x, &input.mask, train)
    }

    fn d_model(&self) -> usize {
        self.d_model
    }

    fn reseed_dropout(&self, seed: u64) {
        self.rng.reseed(seed);
    }
}
