//! Differentiable building blocks shared by the transformer models: layer norm, softmax,
//! seeded dropout, multi-head self-attention with a key padding mask, feed-forward, and
//! the encoder layer of "Attention Is All You Need" (Vaswani et al. 2017) in post-norm
//! (PyTorch `nn.TransformerEncoderLayer` default, used by scGPT and BERT) or pre-norm form.
//!
//! Why not candle-nn's versions: in candle-nn 0.11.1 `ops::softmax_last_dim`,
//! `ops::layer_norm` and `LayerNorm::forward` (contiguous input) are custom ops without a
//! backward pass, so gradients stop silently. Everything here is built from tensor ops
//! that candle differentiates; `tests` checks that every parameter receives a gradient.

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

/// A linear layer initialised as PyTorch's `nn.Linear` (weight and bias uniform in
/// ±1/sqrt(in_dim)). candle-nn's `linear` draws Kaiming-normal weights with the ReLU gain
/// (std sqrt(2/in)), which makes attention logits ~4× larger than PyTorch's at init,
/// saturates the softmax and stalls learning on real data.
pub fn linear(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Linear> {
    let bound = 1.0 / (in_dim as f64).sqrt();
    let init = candle_nn::Init::Uniform {
        lo: -bound,
        up: bound,
    };
    let weight = vb.get_with_hints((out_dim, in_dim), "weight", init)?;
    let bias = vb.get_with_hints(out_dim, "bias", init)?;
    Ok(Linear::new(weight, Some(bias)))
}

/// Layer normalisation over the last dimension, from differentiable ops:
/// `y = (x − mean) / sqrt(var + eps) · weight + bias`.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

/// PyTorch's `nn.LayerNorm` epsilon.
pub const TORCH_LAYER_NORM_EPS: f64 = 1e-5;

impl LayerNorm {
    /// Weight `weight` (ones) and bias `bias` (zeros) of size `dim`; eps 1e-5 as PyTorch.
    pub fn new(dim: usize, vb: VarBuilder) -> Result<Self> {
        Self::with_eps(dim, TORCH_LAYER_NORM_EPS, vb)
    }

    /// As [`LayerNorm::new`] with epsilon `eps` (BERT checkpoints use 1e-12).
    pub fn with_eps(dim: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get_with_hints(dim, "weight", candle_nn::init::ONE)?;
        let bias = vb.get_with_hints(dim, "bias", candle_nn::init::ZERO)?;
        Ok(Self { weight, bias, eps })
    }
}

/// The feed-forward activation: ReLU (PyTorch's and scGPT's default, Geneformer's
/// `hidden_act`) or the exact, erf-based GELU (BERT's default `"gelu"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// max(0, x).
    #[default]
    Relu,
    /// x·Φ(x).
    Gelu,
}

impl Activation {
    /// Apply element-wise (both have a backward pass in candle).
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Relu => x.relu(),
            Activation::Gelu => x.gelu_erf(),
        }
    }
}

/// Shape of a transformer encoder stack.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncoderSpec {
    /// Layers.
    pub n_layers: usize,
    /// Hidden width.
    pub d_model: usize,
    /// Attention heads (must divide `d_model`).
    pub n_heads: usize,
    /// Feed-forward width.
    pub d_hidden: usize,
    /// Dropout after attention, inside and after the feed-forward.
    pub dropout: f32,
    /// Pre-norm instead of post-norm layers.
    pub pre_norm: bool,
    /// Layer-norm epsilon.
    pub eps: f64,
    /// Feed-forward activation.
    pub activation: Activation,
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        super::fused::layer_norm(x, &self.weight, &self.bias, self.eps)
    }
}

use super::fused::attention_probs;

/// A shared, reseedable RNG for dropout masks. The trainer reseeds it from (seed, step)
/// before each step, so a resumed run draws the same masks as an uninterrupted one.
#[derive(Clone)]
pub struct DropoutRng(Arc<Mutex<ChaCha8Rng>>);

impl DropoutRng {
    /// A new RNG seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(Arc::new(Mutex::new(ChaCha8Rng::seed_from_u64(seed))))
    }

    /// Restart the stream from `seed`.
    pub fn reseed(&self, seed: u64) {
        if let Ok(mut r) = self.0.lock() {
            *r = ChaCha8Rng::seed_from_u64(seed);
        }
    }
}

/// Inverted dropout with probability `p`; identity when not training.
#[derive(Clone)]
pub struct Dropout {
    p: f32,
    rng: DropoutRng,
}

impl Dropout {
    /// Dropout drawing its masks from `rng`.
    pub fn new(p: f32, rng: &DropoutRng) -> Self {
        Self {
            p,
            rng: rng.clone(),
        }
    }

    /// Zero each element with probability `p` and scale the rest by `1/(1−p)` when `train`.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        if !train || self.p <= 0.0 {
            return Ok(x.clone());
        }
        let n = x.elem_count();
        let scale = 1.0 / (1.0 - self.p);
        // One pass over a u32 stream: cheaper than candle's rand → ge → cast → mul chain.
        let threshold = (self.p as f64 * u32::MAX as f64) as u32;
        let mask: Vec<f32> = {
            let mut rng = self
                .rng
                .0
                .lock()
                .map_err(|_| candle_core::Error::Msg("dropout rng poisoned".into()))?;
            (0..n)
                .map(|_| {
                    if rng.gen::<u32>() < threshold {
                        0.0
                    } else {
                        scale
                    }
                })
                .collect()
        };
        let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
        x.mul(&mask)
    }
}

/// Additive attention bias from a `(b, l)` f32 mask (1 = real token): 0 for real keys,
/// −1e9 for padding, shaped `(b, 1, 1, l)` to broadcast over heads and queries.
pub fn key_padding_bias(mask: &Tensor) -> Result<Tensor> {
    let (b, l) = mask.dims2()?;
    ((mask.to_dtype(DType::F32)? - 1.0)? * 1e9)?.reshape((b, 1, 1, l))
}

/// Multi-head self-attention (separate q, k, v projections, as PyTorch's `in_proj` split).
#[derive(Clone)]
pub struct MultiHeadAttention {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    n_heads: usize,
    dropout: Dropout,
}

impl MultiHeadAttention {
    /// `d_model` must be divisible by `n_heads`.
    pub fn new(
        d_model: usize,
        n_heads: usize,
        dropout: f32,
        rng: &DropoutRng,
        vb: VarBuilder,
    ) -> Result<Self> {
        if n_heads == 0 || d_model % n_heads != 0 {
            candle_core::bail!("d_model {d_model} is not divisible by n_heads {n_heads}");
        }
        Ok(Self {
            q: linear(d_model, d_model, vb.pp("q"))?,
            k: linear(d_model, d_model, vb.pp("k"))?,
            v: linear(d_model, d_model, vb.pp("v"))?,
            out: linear(d_model, d_model, vb.pp("out"))?,
            n_heads,
            dropout: Dropout::new(dropout, rng),
        })
    }

    /// `x`: `(b, l, d)`; `bias`: from [`key_padding_bias`]. Returns `(b, l, d)`.
    pub fn forward_t(&self, x: &Tensor, bias: &Tensor, train: bool) -> Result<Tensor> {
        let (b, l, d) = x.dims3()?;
        let dh = d / self.n_heads;
        let heads = |t: Tensor| -> Result<Tensor> {
            t.reshape((b, l, self.n_heads, dh))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = heads(self.q.forward(x)?)?;
        let k = heads(self.k.forward(x)?)?;
        let v = heads(self.v.forward(x)?)?;
        // softmax(q kᵀ / sqrt(dh) + padding bias) v
        let probs = attention_probs(&q.matmul(&k.t()?)?, bias, 1.0 / (dh as f64).sqrt())?;
        let attn = self.dropout.forward_t(&probs, train)?;
        let ctx = attn.matmul(&v)?.transpose(1, 2)?.reshape((b, l, d))?;
        self.out.forward(&ctx)
    }
}

/// Position-wise feed-forward: Linear → activation → dropout → Linear.
#[derive(Clone)]
pub struct FeedForward {
    up: Linear,
    down: Linear,
    dropout: Dropout,
    activation: Activation,
}

impl FeedForward {
    /// `spec.d_model → spec.d_hidden → spec.d_model`.
    pub fn new(spec: &EncoderSpec, rng: &DropoutRng, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            up: linear(spec.d_model, spec.d_hidden, vb.pp("up"))?,
            down: linear(spec.d_hidden, spec.d_model, vb.pp("down"))?,
            dropout: Dropout::new(spec.dropout, rng),
            activation: spec.activation,
        })
    }

    /// Apply to `(b, l, d)`.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let h = self.activation.apply(&self.up.forward(x)?)?;
        self.down.forward(&self.dropout.forward_t(&h, train)?)
    }
}

/// One transformer encoder layer. Post-norm: `x = LN(x + drop(attn(x)))`,
/// `x = LN(x + drop(ffn(x)))`; pre-norm: `x = x + drop(attn(LN(x)))`, likewise for ffn.
#[derive(Clone)]
pub struct EncoderLayer {
    attn: MultiHeadAttention,
    ffn: FeedForward,
    norm1: LayerNorm,
    norm2: LayerNorm,
    dropout: Dropout,
    pre_norm: bool,
}

impl EncoderLayer {
    /// One layer of shape `spec`.
    pub fn new(spec: &EncoderSpec, rng: &DropoutRng, vb: VarBuilder) -> Result<Self> {
        let d = spec.d_model;
        Ok(Self {
            attn: MultiHeadAttention::new(d, spec.n_heads, spec.dropout, rng, vb.pp("attn"))?,
            ffn: FeedForward::new(spec, rng, vb.pp("ffn"))?,
            norm1: LayerNorm::with_eps(d, spec.eps, vb.pp("norm1"))?,
            norm2: LayerNorm::with_eps(d, spec.eps, vb.pp("norm2"))?,
            dropout: Dropout::new(spec.dropout, rng),
            pre_norm: spec.pre_norm,
        })
    }

    /// Apply to `(b, l, d)` with the padding bias of [`key_padding_bias`].
    pub fn forward_t(&self, x: &Tensor, bias: &Tensor, train: bool) -> Result<Tensor> {
        if self.pre_norm {
            let h = self.attn.forward_t(&self.norm1.forward(x)?, bias, train)?;
            let x = (x + self.dropout.forward_t(&h, train)?)?;
            let h = self.ffn.forward_t(&self.norm2.forward(&x)?, train)?;
            x + self.dropout.forward_t(&h, train)?
        } else {
            let h = self.attn.forward_t(x, bias, train)?;
            let x = self
                .norm1
                .forward(&(x + self.dropout.forward_t(&h, train)?)?)?;
            let h = self.ffn.forward_t(&x, train)?;
            self.norm2
                .forward(&(x + self.dropout.forward_t(&h, train)?)?)
        }
    }
}

/// A stack of [`EncoderLayer`]s under `vb.pp("layers").pp(i)`.
#[derive(Clone)]
pub struct Encoder {
    layers: Vec<EncoderLayer>,
}

impl Encoder {
    /// `n_layers` identical layers.
    pub fn new(spec: &EncoderSpec, rng: &DropoutRng, vb: VarBuilder) -> Result<Self> {
        let layers = (0..spec.n_layers)
            .map(|i| EncoderLayer::new(spec, rng, vb.pp("layers").pp(i)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { layers })
    }

    /// `x`: `(b, l, d)`, `mask`: `(b, l)` f32, 1 = real token.
    pub fn forward_t(&self, x: &Tensor, mask: &Tensor, train: bool) -> Result<Tensor> {
        let bias = key_padding_bias(mask)?;
        let mut x = x.clone();
        for layer in &self.layers {
            x = layer.forward_t(&x, &bias, train)?;
        }
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::params::ParamStore;
    use candle_core::Device;

    /// Two post-norm layers of width 8, 2 heads, no dropout.
    fn test_spec() -> EncoderSpec {
        EncoderSpec {
            n_layers: 2,
            d_model: 8,
            n_heads: 2,
            d_hidden: 16,
            dropout: 0.0,
            pre_norm: false,
            eps: TORCH_LAYER_NORM_EPS,
            activation: Activation::Relu,
        }
    }

    /// Layer norm and softmax match their definitions on a small example.
    #[test]
    fn layer_norm_and_softmax_values() {
        let store = ParamStore::new(0, &Device::Cpu);
        let ln = LayerNorm::new(4, store.vb()).unwrap();
        let x = Tensor::new(&[[1f32, 2., 3., 4.]], &Device::Cpu).unwrap();
        let y: Vec<f32> = ln
            .forward(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        // numpy: (x - x.mean()) / np.sqrt(x.var() + 1e-5) → [-1.3416, -0.4472, 0.4472, 1.3416]
        for (a, b) in y
            .iter()
            .zip([-1.341_636_f32, -0.447_212, 0.447_212, 1.341_636])
        {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        let s: Vec<f32> = crate::models::fused::softmax_last(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        // scipy.special.softmax([1,2,3,4]) → [0.0320586, 0.08714432, 0.23688282, 0.64391426]
        for (a, b) in s
            .iter()
            .zip([0.032_058_6_f32, 0.087_144_3, 0.236_882_8, 0.643_914_3])
        {
            assert!((a - b).abs() < 1e-6);
        }
    }

    /// Every parameter of an encoder receives a non-zero gradient (no silent custom ops).
    #[test]
    fn encoder_gradients_reach_every_parameter() {
        let store = ParamStore::new(1, &Device::Cpu);
        let rng = DropoutRng::new(0);
        let cases = [
            (false, Activation::Relu),
            (true, Activation::Relu),
            (false, Activation::Gelu),
        ];
        for (pre_norm, activation) in cases {
            let spec = EncoderSpec {
                pre_norm,
                activation,
                dropout: 0.1,
                ..test_spec()
            };
            let enc = Encoder::new(
                &spec,
                &rng,
                store.vb().pp(format!("e{pre_norm}{activation:?}")),
            )
            .unwrap();
            let x = Tensor::randn(0f32, 1., (2, 5, 8), &Device::Cpu).unwrap();
            let mask = Tensor::new(
                &[[1f32, 1., 1., 0., 0.], [1., 1., 1., 1., 1.]],
                &Device::Cpu,
            )
            .unwrap();
            let y = enc.forward_t(&x, &mask, true).unwrap();
            // A non-symmetric target so that the final layer norm's gradient is non-zero.
            let w = Tensor::randn(0f32, 1., (2, 5, 8), &Device::Cpu).unwrap();
            let loss = (y * w).unwrap().sum_all().unwrap();
            let grads = loss.backward().unwrap();
            for (name, var) in store
                .vars()
                .unwrap()
                .iter()
                .filter(|(k, _)| k.starts_with(&format!("e{pre_norm}{activation:?}")))
            {
                let g = grads
                    .get(var.as_tensor())
                    .unwrap_or_else(|| panic!("no gradient for {name}"));
                let n: f32 = g.abs().unwrap().sum_all().unwrap().to_scalar().unwrap();
                assert!(n > 0.0, "zero gradient for {name}");
            }
        }
    }

    /// Outputs at real positions do not depend on what sits in padded positions.
    #[test]
    fn padding_is_never_attended() {
        let store = ParamStore::new(2, &Device::Cpu);
        let enc = Encoder::new(&test_spec(), &DropoutRng::new(0), store.vb()).unwrap();
        let mask = Tensor::new(&[[1f32, 1., 1., 0.]], &Device::Cpu).unwrap();
        let a = Tensor::randn(0f32, 1., (1, 4, 8), &Device::Cpu).unwrap();
        let noise = Tensor::randn(0f32, 5., (1, 1, 8), &Device::Cpu).unwrap();
        let b = Tensor::cat(&[a.narrow(1, 0, 3).unwrap(), noise], 1).unwrap();
        let ya = enc
            .forward_t(&a, &mask, false)
            .unwrap()
            .narrow(1, 0, 3)
            .unwrap();
        let yb = enc
            .forward_t(&b, &mask, false)
            .unwrap()
            .narrow(1, 0, 3)
            .unwrap();
        let diff = crate::models::toy::max_abs_diff(&ya, &yb);
        assert!(diff < 1e-5, "padding changed real outputs by {diff}");
    }

    /// Dropout zeroes about p of the entries, rescales the rest, and is the identity in eval.
    #[test]
    fn dropout_rate_and_eval_identity() {
        let d = Dropout::new(0.25, &DropoutRng::new(7));
        let x = Tensor::ones((100, 100), DType::F32, &Device::Cpu).unwrap();
        let y: Vec<f32> = d
            .forward_t(&x, true)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let zeros = y.iter().filter(|&&v| v == 0.0).count() as f64 / y.len() as f64;
        assert!((zeros - 0.25).abs() < 0.02, "zero fraction {zeros}");
        assert!(y.iter().all(|&v| v == 0.0 || (v - 4.0 / 3.0).abs() < 1e-6));
        let e: Vec<f32> = d
            .forward_t(&x, false)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(e.iter().all(|&v| v == 1.0));
    }
}
