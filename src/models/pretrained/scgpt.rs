//! scGPT checkpoints (bowang-lab/scGPT): `best_model.pt` (a PyTorch state dict of
//! `scgpt.model.TransformerModel`), `vocab.json` (token → id) and `args.json` (the
//! training arguments: `embsize`, `nheads`, `d_hid`, `nlayers`, `n_layers_cls`, …).
//!
//! The published checkpoints were trained with flash attention, whose layer stores the
//! q, k and v projections as one `self_attn.Wqkv` matrix; PyTorch's own layer calls it
//! `self_attn.in_proj_weight`. Both hold q, k, v as three row blocks (flash-attn's
//! `rearrange(qkv, "b s (three h d) -> b s three h d")`), and are split into this crate's
//! separate projections.

use super::{read_json, rename, to_f32, Arch, Checkpoint, Target, TokenVocab};
use crate::error::{Error, Result};
use crate::models::scgpt::ScGptConfig;
use candle_core::Tensor;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;

/// The fields of scGPT's `args.json` this crate reads; the others are ignored.
#[derive(Debug, Deserialize)]
struct Args {
    embsize: usize,
    nheads: usize,
    d_hid: usize,
    nlayers: usize,
    #[serde(default = "default_dropout")]
    dropout: f32,
    #[serde(default = "default_pad_token")]
    pad_token: String,
    #[serde(default = "default_pad_value")]
    pad_value: f32,
    #[serde(default)]
    n_bins: Option<usize>,
    #[serde(default)]
    max_seq_len: Option<usize>,
    #[serde(default)]
    input_emb_style: Option<String>,
    #[serde(default)]
    pre_norm: bool,
    #[serde(default, alias = "DSBN")]
    domain_spec_batchnorm: bool,
}

fn default_dropout() -> f32 {
    0.2
}
fn default_pad_token() -> String {
    "<pad>".into()
}
fn default_pad_value() -> f32 {
    -2.0
}

/// Read the scGPT checkpoint in `dir`.
pub(super) fn read(dir: &Path) -> Result<Checkpoint> {
    let args_path = dir.join("args.json");
    let args: Args = read_json(&args_path)?;
    check_args(&args, &args_path)?;
    let vocab_path = dir.join("vocab.json");
    let ids: HashMap<String, u32> = read_json(&vocab_path)?;
    let vocab = TokenVocab::new(ids, &args.pad_token, &vocab_path)?;
    let weights = dir.join("best_model.pt");
    if !weights.is_file() {
        return Err(Error::FileNotFound { path: weights });
    }
    let raw = candle_core::pickle::read_all(&weights).map_err(|e| {
        Error::invalid(
            weights.display().to_string(),
            "pytorch state dict",
            e.to_string(),
        )
    })?;
    let raw = split_qkv(to_f32(raw, &weights)?, &weights)?;
    let (tensors, unused) = rename(raw, map_key, &weights)?;
    let rows = tensors
        .get("encoder.embedding.gene.weight")
        .and_then(|t| t.dims().first().copied())
        .ok_or_else(|| {
            Error::invalid(
                weights.display().to_string(),
                "encoder.embedding.weight",
                "missing",
            )
        })?;
    let cfg = ScGptConfig {
        vocab_size: rows,
        d_model: args.embsize,
        n_heads: args.nheads,
        d_hidden: args.d_hid,
        n_layers: args.nlayers,
        dropout: args.dropout,
        pre_norm: args.pre_norm,
        max_value: 512.0,
    };
    Ok(Checkpoint {
        dir: dir.to_path_buf(),
        format: "scgpt (best_model.pt, vocab.json, args.json)",
        arch: Arch::ScGpt {
            cfg,
            pad_value: args.pad_value,
            n_bins: args.n_bins,
            max_seq_len: args.max_seq_len,
        },
        vocab,
        medians: None,
        tensors,
        unused,
        labels: None,
    })
}

/// Settings that change the forward pass beyond what this crate implements are refused.
fn check_args(args: &Args, path: &Path) -> Result<()> {
    let src = path.display().to_string();
    if let Some(s) = args
        .input_emb_style
        .as_deref()
        .filter(|s| *s != "continuous")
    {
        return Err(Error::invalid(
            src,
            "input_emb_style",
            format!("'{s}' is not supported (only scGPT's default 'continuous')"),
        ));
    }
    if args.domain_spec_batchnorm {
        return Err(Error::invalid(
            src,
            "domain_spec_batchnorm",
            "domain-specific batch norm is not supported",
        ));
    }
    Ok(())
}

/// Replace every fused `Wqkv` / `in_proj` tensor by its q, k and v row blocks, named
/// `…self_attn.{q,k,v}.{weight,bias}`; DDP's `module.` prefix is removed.
pub(super) fn split_qkv(
    tensors: Vec<(String, Tensor)>,
    path: &Path,
) -> Result<Vec<(String, Tensor)>> {
    let mut out = Vec::with_capacity(tensors.len() + 16);
    for (k, t) in tensors {
        let k = k.strip_prefix("module.").unwrap_or(&k).to_string();
        let fused = [
            (".self_attn.Wqkv.weight", "weight"),
            (".self_attn.Wqkv.bias", "bias"),
            (".self_attn.in_proj_weight", "weight"),
            (".self_attn.in_proj_bias", "bias"),
        ]
        .into_iter()
        .find_map(|(suffix, p)| k.strip_suffix(suffix).map(|base| (base.to_string(), p)));
        let Some((base, param)) = fused else {
            out.push((k, t));
            continue;
        };
        let rows = t.dims().first().copied().unwrap_or(0);
        if rows == 0 || rows % 3 != 0 {
            return Err(Error::invalid(
                path.display().to_string(),
                k.as_str(),
                format!("fused q/k/v has {rows} rows, not a multiple of 3"),
            ));
        }
        for (j, name) in ["q", "k", "v"].iter().enumerate() {
            let block = t
                .narrow(0, j * rows / 3, rows / 3)
                .and_then(|b| b.contiguous())
                .map_err(|e| {
                    Error::invalid(path.display().to_string(), k.as_str(), e.to_string())
                })?;
            out.push((format!("{base}.self_attn.{name}.{param}"), block));
        }
    }
    Ok(out)
}

/// This crate's name for an scGPT key, or None when unknown.
pub(super) fn map_key(key: &str) -> Option<Target> {
    let var = |s: String| Some(Target::Var(s));
    let (module, param) = key.rsplit_once('.')?;
    if let Some(rest) = module.strip_prefix("transformer_encoder.layers.") {
        let (i, sub) = rest.split_once('.')?;
        let i: usize = i.parse().ok()?;
        let ours = match sub {
            "self_attn.q" => "attn.q",
            "self_attn.k" => "attn.k",
            "self_attn.v" => "attn.v",
            "self_attn.out_proj" => "attn.out",
            "linear1" => "ffn.up",
            "linear2" => "ffn.down",
            "norm1" => "norm1",
            "norm2" => "norm2",
            _ => return None,
        };
        return var(format!("encoder.encoder.layers.{i}.{ours}.{param}"));
    }
    if let Some(j) = module.strip_prefix("cls_decoder._decoder.") {
        let j: usize = j.parse().ok()?;
        // (Linear, ReLU, LayerNorm) per block: modules 3i and 3i + 2.
        let part = match j % 3 {
            0 => "fc",
            2 => "norm",
            _ => return None,
        };
        return var(format!("cls_head.blocks.{}.{part}.{param}", j / 3));
    }
    let ours = match module {
        "encoder.embedding" => "encoder.embedding.gene",
        "encoder.enc_norm" => "encoder.embedding.gene_norm",
        "value_encoder.linear1" => "encoder.embedding.value_in",
        "value_encoder.linear2" => "encoder.embedding.value_out",
        "value_encoder.norm" => "encoder.embedding.value_norm",
        "decoder.fc.0" => "pretrain_head.fc1",
        "decoder.fc.2" => "pretrain_head.fc2",
        "decoder.fc.4" => "pretrain_head.out",
        "cls_decoder.out_layer" => "cls_head.out",
        m if UNUSED_MODULES.iter().any(|u| m.starts_with(u)) => return Some(Target::Unused),
        _ => return None,
    };
    var(format!("{ours}.{param}"))
}

/// Heads and encoders of scGPT's other training objectives and options (masked value
/// prediction for cell embedding, batch and domain terms, zero-probability decoder).
const UNUSED_MODULES: [&str; 7] = [
    "mvc_decoder",
    "decoder.zero_logit",
    "flag_encoder",
    "batch_encoder",
    "grad_reverse_discriminator",
    "dsbn",
    "bn",
];
