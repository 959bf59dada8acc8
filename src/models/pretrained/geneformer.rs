//! Geneformer checkpoints: a Hugging Face BERT folder (transformers' `BertModel`,
//! `BertForMaskedLM`, `BertForSequenceClassification`) and Geneformer's dictionaries
//! (`token_dictionary*.pkl`: Ensembl id → token; `gene_median_dictionary*.pkl`: Ensembl
//! id → non-zero median).
//!
//! BERT's embedding is `word + position + token_type[0]` (Geneformer never sets token
//! types), then LayerNorm: the constant `token_type[0]` row is folded into the position
//! table, which leaves this crate's Geneformer model unchanged. The masked-LM decoder is
//! tied to the word embeddings, so `save_pretrained` may omit it; it is then taken from
//! them.

use super::dictionary::{find_dictionary, read_median_dictionary, read_token_dictionary};
use super::{read_json, rename, to_f32, Arch, Checkpoint, Target, TokenVocab};
use crate::error::{Error, Result};
use crate::models::geneformer::GeneformerConfig;
use crate::models::layers::Activation;
use candle_core::{Device, Tensor};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The fields of a BERT `config.json` this crate reads.
#[derive(Debug, Deserialize)]
struct BertConfig {
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    #[serde(default = "default_act")]
    hidden_act: String,
    max_position_embeddings: usize,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
    vocab_size: usize,
    #[serde(default = "default_dropout")]
    hidden_dropout_prob: f32,
    #[serde(default)]
    model_type: Option<String>,
    #[serde(default)]
    position_embedding_type: Option<String>,
    #[serde(default)]
    id2label: Option<BTreeMap<String, String>>,
    #[serde(default)]
    architectures: Vec<String>,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_eps() -> f64 {
    1e-12
}
fn default_dropout() -> f32 {
    0.1
}

/// Read the Geneformer checkpoint in `dir`.
pub(super) fn read(dir: &Path) -> Result<Checkpoint> {
    let config_path = dir.join("config.json");
    let cfg: BertConfig = read_json(&config_path)?;
    let src = config_path.display().to_string();
    if let Some(t) = cfg.model_type.as_deref().filter(|t| *t != "bert") {
        return Err(Error::invalid(
            src,
            "model_type",
            format!("'{t}' is not a BERT"),
        ));
    }
    if let Some(p) = cfg
        .position_embedding_type
        .as_deref()
        .filter(|p| *p != "absolute")
    {
        return Err(Error::invalid(
            src,
            "position_embedding_type",
            format!("'{p}' is not supported (only absolute positions)"),
        ));
    }
    let activation = match cfg.hidden_act.as_str() {
        "relu" => Activation::Relu,
        "gelu" => Activation::Gelu,
        other => {
            return Err(Error::invalid(
                src,
                "hidden_act",
                format!("'{other}' is not supported (relu, gelu)"),
            ))
        }
    };
    let (weights_path, raw) = read_weights(dir)?;
    let vocab = read_vocab(dir, cfg.vocab_size)?;
    let medians = read_median_dictionary(&find_dictionary(dir, "gene_median_dictionary")?)?;
    let (mut tensors, unused) = rename(to_f32(raw, &weights_path)?, map_key, &weights_path)?;
    fold_token_types(&mut tensors, &weights_path)?;
    tie_decoder(&mut tensors);
    let arch = GeneformerConfig {
        vocab_size: cfg.vocab_size,
        max_len: cfg.max_position_embeddings,
        d_model: cfg.hidden_size,
        n_heads: cfg.num_attention_heads,
        d_hidden: cfg.intermediate_size,
        n_layers: cfg.num_hidden_layers,
        dropout: cfg.hidden_dropout_prob,
        layer_norm_eps: cfg.layer_norm_eps,
        activation,
        mask_token: vocab.mask,
    };
    let labels = cfg
        .architectures
        .iter()
        .any(|a| a.ends_with("ForSequenceClassification"))
        .then(|| labels_in_order(cfg.id2label.as_ref()))
        .flatten();
    Ok(Checkpoint {
        dir: dir.to_path_buf(),
        format: if weights_path.extension().is_some_and(|e| e == "bin") {
            "huggingface-bert (pytorch_model.bin)"
        } else {
            "huggingface-bert (model.safetensors)"
        },
        arch: Arch::Geneformer(arch),
        vocab,
        medians: Some(medians),
        tensors,
        unused,
        labels,
    })
}

/// `id2label` as a list ordered by id.
fn labels_in_order(id2label: Option<&BTreeMap<String, String>>) -> Option<Vec<String>> {
    let mut pairs: Vec<(usize, String)> = id2label?
        .iter()
        .filter_map(|(k, v)| Some((k.parse().ok()?, v.clone())))
        .collect();
    pairs.sort();
    Some(pairs.into_iter().map(|(_, v)| v).collect())
}

/// The weights file: `model.safetensors`, else `pytorch_model.bin`.
fn read_weights(dir: &Path) -> Result<(std::path::PathBuf, Vec<(String, Tensor)>)> {
    let st = dir.join("model.safetensors");
    if st.is_file() {
        let t = candle_core::safetensors::load(&st, &Device::Cpu)
            .map_err(|e| Error::invalid(st.display().to_string(), "safetensors", e.to_string()))?;
        return Ok((st, t.into_iter().collect()));
    }
    let bin = dir.join("pytorch_model.bin");
    if bin.is_file() {
        let t = candle_core::pickle::read_all(&bin).map_err(|e| {
            Error::invalid(
                bin.display().to_string(),
                "pytorch state dict",
                e.to_string(),
            )
        })?;
        return Ok((bin, t));
    }
    let sharded = dir.join("model.safetensors.index.json").is_file()
        || dir.join("pytorch_model.bin.index.json").is_file();
    Err(Error::invalid(
        dir.display().to_string(),
        "weights",
        if sharded {
            "sharded checkpoints are not supported: merge the shards into one model.safetensors"
        } else {
            "neither model.safetensors nor pytorch_model.bin"
        },
    ))
}

/// The token dictionary, checked against the embedding table's size.
fn read_vocab(dir: &Path, vocab_size: usize) -> Result<TokenVocab> {
    let path = find_dictionary(dir, "token_dictionary")?;
    let ids: HashMap<String, u32> = read_token_dictionary(&path)?;
    if let Some((tok, &id)) = ids.iter().find(|(_, &id)| id as usize >= vocab_size) {
        return Err(Error::invalid(
            path.display().to_string(),
            tok.as_str(),
            format!("token id {id} is outside the model's vocabulary of {vocab_size}"),
        ));
    }
    TokenVocab::new(ids, "<pad>", &path)
}

/// This crate's name for a BERT key (`bert.` prefix removed), or None when unknown.
fn map_key(key: &str) -> Option<Target> {
    let k = key.strip_prefix("bert.").unwrap_or(key);
    let k = k
        .strip_suffix(".gamma")
        .map(|s| format!("{s}.weight"))
        .or_else(|| k.strip_suffix(".beta").map(|s| format!("{s}.bias")))
        .unwrap_or_else(|| k.to_string());
    let var = |s: &str| Some(Target::Var(s.to_string()));
    if let Some(rest) = k.strip_prefix("encoder.layer.") {
        let (i, rest) = rest.split_once('.')?;
        let i: usize = i.parse().ok()?;
        let (module, param) = rest.rsplit_once('.')?;
        if param != "weight" && param != "bias" {
            return None;
        }
        let ours = match module {
            "attention.self.query" => "attn.q",
            "attention.self.key" => "attn.k",
            "attention.self.value" => "attn.v",
            "attention.output.dense" => "attn.out",
            "attention.output.LayerNorm" => "norm1",
            "intermediate.dense" => "ffn.up",
            "output.dense" => "ffn.down",
            "output.LayerNorm" => "norm2",
            _ => return None,
        };
        return var(&format!("encoder.encoder.layers.{i}.{ours}.{param}"));
    }
    match k.as_str() {
        "embeddings.word_embeddings.weight" => var("encoder.embedding.tokens.weight"),
        "embeddings.position_embeddings.weight" => var("encoder.embedding.positions.weight"),
        "embeddings.token_type_embeddings.weight" => var(TOKEN_TYPES),
        "embeddings.LayerNorm.weight" => var("encoder.embedding.norm.weight"),
        "embeddings.LayerNorm.bias" => var("encoder.embedding.norm.bias"),
        "embeddings.position_ids" | "embeddings.token_type_ids" => Some(Target::Unused),
        "cls.predictions.transform.dense.weight" => var("pretrain_head.fc.weight"),
        "cls.predictions.transform.dense.bias" => var("pretrain_head.fc.bias"),
        "cls.predictions.transform.LayerNorm.weight" => var("pretrain_head.norm.weight"),
        "cls.predictions.transform.LayerNorm.bias" => var("pretrain_head.norm.bias"),
        "cls.predictions.decoder.weight" => var("pretrain_head.decoder.weight"),
        // `bias` and `decoder.bias` are the same tied tensor; either may be saved.
        "cls.predictions.bias" | "cls.predictions.decoder.bias" => {
            var("pretrain_head.decoder.bias")
        }
        "pooler.dense.weight" => var("bert_head.pooler.weight"),
        "pooler.dense.bias" => var("bert_head.pooler.bias"),
        "classifier.weight" => var("bert_head.classifier.weight"),
        "classifier.bias" => var("bert_head.classifier.bias"),
        k if k.starts_with("cls.seq_relationship.") => Some(Target::Unused),
        _ => None,
    }
}

/// Temporary name of the token-type table until it is folded into the positions.
const TOKEN_TYPES: &str = "token_types";

/// Add `token_type[0]` to every position row (Geneformer's token types are all 0).
fn fold_token_types(tensors: &mut HashMap<String, Tensor>, path: &Path) -> Result<()> {
    let Some(types) = tensors.remove(TOKEN_TYPES) else {
        return Ok(());
    };
    let key = "encoder.embedding.positions.weight";
    let Some(pos) = tensors.get(key) else {
        return Ok(());
    };
    let folded = types
        .get(0)
        .and_then(|row| pos.broadcast_add(&row))
        .map_err(|e| Error::invalid(path.display().to_string(), TOKEN_TYPES, e.to_string()))?;
    tensors.insert(key.to_string(), folded);
    Ok(())
}

/// A masked-LM head saved without its tied decoder weight reads the word embeddings.
fn tie_decoder(tensors: &mut HashMap<String, Tensor>) {
    let has_head = tensors.contains_key("pretrain_head.fc.weight");
    if has_head && !tensors.contains_key("pretrain_head.decoder.weight") {
        if let Some(w) = tensors.get("encoder.embedding.tokens.weight").cloned() {
            tensors.insert("pretrain_head.decoder.weight".into(), w);
        }
    }
}

/// BERT's sequence-classification head: `tanh(pooler(h[0]))`, then `classifier`.
#[cfg(test)]
pub(super) fn sequence_logits(
    tensors: &HashMap<String, Tensor>,
    hidden: &Tensor,
) -> candle_core::Result<Tensor> {
    let first = hidden.narrow(1, 0, 1)?.squeeze(1)?;
    let lin = |x: &Tensor, w: &str, b: &str| -> candle_core::Result<Tensor> {
        x.matmul(&tensors[w].t()?)?.broadcast_add(&tensors[b])
    };
    let pooled = lin(&first, "bert_head.pooler.weight", "bert_head.pooler.bias")?.tanh()?;
    lin(
        &pooled,
        "bert_head.classifier.weight",
        "bert_head.classifier.bias",
    )
}
