//! Geneformer-like encoder (Theodoris et al. 2023, "Transfer learning enables predictions
//! in network biology", ctheodoris/Geneformer; a BERT, Devlin et al. 2019).
//!
//! Input: gene tokens in rank order (values unused). Embedding = token embedding + learned
//! position embedding over the rank position → LayerNorm → dropout (BERT embeddings without
//! token types). Encoder: post-norm BERT layers with ReLU, dropout 0.02. The token table
//! has one extra row, the `<mask>` token of masked-gene pretraining (id = `vocab_size`).
//! Both embedding tables start from N(0, 0.02²), BERT's `initializer_range`
//! (`BertPreTrainedModel._init_weights`); candle-nn's `embedding` draws N(0, 1), which
//! makes the embedding 50× larger than the attention weights expect.

use super::layers::{
    Activation, Dropout, DropoutRng, Encoder, EncoderSpec, LayerNorm, TORCH_LAYER_NORM_EPS,
};
use super::{CellEncoder, ModelInput};
use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Embedding, Init, VarBuilder};
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
    /// Layer-norm epsilon (default 1e-5, PyTorch's; BERT checkpoints such as Geneformer's
    /// use 1e-12 and set it from their `layer_norm_eps`).
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// Feed-forward activation (default ReLU, Geneformer's `hidden_act`).
    #[serde(default)]
    pub activation: Activation,
    /// Id of `<mask>` inside the vocabulary, for checkpoints whose dictionary holds it.
    /// Unset (the default), the token table gets one extra row for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask_token: Option<u32>,
}

fn default_eps() -> f64 {
    TORCH_LAYER_NORM_EPS
}

impl GeneformerConfig {
    /// Id of the `<mask>` token: the checkpoint's, else one past the tokenizer's vocabulary.
    pub fn mask_token_id(&self) -> u32 {
        self.mask_token.unwrap_or(self.vocab_size as u32)
    }

    /// Rows of the token table (and of the masked-token head's output).
    pub fn token_rows(&self) -> usize {
        self.vocab_size + usize::from(self.mask_token.is_none())
    }

    /// The encoder stack's shape (post-norm BERT layers).
    fn encoder_spec(&self) -> EncoderSpec {
        EncoderSpec {
            n_layers: self.n_layers,
            d_model: self.d_model,
            n_heads: self.n_heads,
            d_hidden: self.d_hidden,
            dropout: self.dropout,
            pre_norm: false,
            eps: self.layer_norm_eps,
            activation: self.activation,
        }
    }
}

/// Standard deviation of the embedding tables at init (BERT's `initializer_range`).
pub const EMBEDDING_INIT_STD: f64 = 0.02;

/// An embedding table of `n` rows of width `d` drawn from N(0, [`EMBEDDING_INIT_STD`]²).
fn bert_embedding(n: usize, d: usize, vb: VarBuilder) -> Result<Embedding> {
    let init = Init::Randn {
        mean: 0.0,
        stdev: EMBEDDING_INIT_STD,
    };
    Ok(Embedding::new(
        vb.get_with_hints((n, d), "weight", init)?,
        d,
    ))
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
            tokens: bert_embedding(cfg.token_rows(), cfg.d_model, emb.pp("tokens"))?,
            positions: bert_embedding(cfg.max_len, cfg.d_model, emb.pp("positions"))?,
            norm: LayerNorm::with_eps(cfg.d_model, cfg.layer_norm_eps, emb.pp("norm"))?,
            dropout: Dropout::new(cfg.dropout, &rng),
            encoder: Encoder::new(&cfg.encoder_spec(), &rng, vb.pp("encoder"))?,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::params::ParamStore;
    use candle_core::Device;

    fn std_of(t: &Tensor) -> f64 {
        let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        (v.iter()
            .map(|&x| (f64::from(x) - mean).powi(2))
            .sum::<f64>()
            / n)
            .sqrt()
    }

    /// Token and position tables start with standard deviation 0.02 (within 10%).
    #[test]
    fn embeddings_start_at_bert_std() {
        let cfg = GeneformerConfig {
            vocab_size: 300,
            max_len: 64,
            d_model: 32,
            n_heads: 2,
            d_hidden: 32,
            n_layers: 1,
            dropout: 0.0,
            layer_norm_eps: TORCH_LAYER_NORM_EPS,
            activation: Activation::Relu,
            mask_token: None,
        };
        let store = ParamStore::new(3, &Device::Cpu);
        Geneformer::new(&cfg, store.vb()).unwrap();
        let weights = store.snapshot().unwrap();
        for name in ["embedding.tokens.weight", "embedding.positions.weight"] {
            let sd = std_of(&weights[name]);
            assert!((sd - 0.02).abs() < 0.002, "{name}: std {sd}");
        }
    }
}
