//! Output heads and their losses: scGPT's `ClsDecoder` (classification from the `<cls>`
//! embedding) and `ExprDecoder` (masked value prediction, GEP), and BERT's masked-token
//! prediction head used by Geneformer (bowang-lab/scGPT scgpt/model/model.py;
//! huggingface transformers `BertLMPredictionHead`).

use super::layers::{linear, Activation, LayerNorm, TORCH_LAYER_NORM_EPS};
use candle_core::{DType, Module, Result, Tensor, D};
use candle_nn::{Linear, VarBuilder};

/// LeakyReLU (slope 0.01, PyTorch's default) from differentiable ops:
/// `relu(x) − 0.01·relu(−x)`.
fn leaky_relu(x: &Tensor) -> Result<Tensor> {
    x.relu()? - (x.neg()?.relu()? * 0.01)?
}

/// scGPT's classifier: `(Linear, ReLU, LayerNorm) × n_layers` then `Linear(n_classes)`.
#[derive(Clone)]
pub struct ClsDecoder {
    blocks: Vec<(Linear, LayerNorm)>,
    out: Linear,
}

impl ClsDecoder {
    /// `n_layers` hidden blocks of width `d_model`, then `n_classes` logits.
    pub fn new(d_model: usize, n_layers: usize, n_classes: usize, vb: VarBuilder) -> Result<Self> {
        let blocks = (0..n_layers)
            .map(|i| {
                let vb = vb.pp("blocks").pp(i);
                Ok((
                    linear(d_model, d_model, vb.pp("fc"))?,
                    LayerNorm::new(d_model, vb.pp("norm"))?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            blocks,
            out: linear(d_model, n_classes, vb.pp("out"))?,
        })
    }

    /// Logits `(b, n_classes)` from cell embeddings `(b, d)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for (fc, norm) in &self.blocks {
            h = norm.forward(&fc.forward(&h)?.relu()?)?;
        }
        self.out.forward(&h)
    }
}

/// scGPT's `ExprDecoder`: `Linear, LeakyReLU, Linear, LeakyReLU, Linear(1)` per token.
#[derive(Clone)]
pub struct ExprDecoder {
    fc1: Linear,
    fc2: Linear,
    out: Linear,
}

impl ExprDecoder {
    /// A value regressor on `d_model`-wide token states.
    pub fn new(d_model: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            fc1: linear(d_model, d_model, vb.pp("fc1"))?,
            fc2: linear(d_model, d_model, vb.pp("fc2"))?,
            out: linear(d_model, 1, vb.pp("out"))?,
        })
    }

    /// Predicted values `(n,)` from token states `(n, d)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = leaky_relu(&self.fc1.forward(x)?)?;
        let h = leaky_relu(&self.fc2.forward(&h)?)?;
        self.out.forward(&h)?.squeeze(D::Minus1)
    }
}

/// BERT's masked-token head: `Linear, activation, LayerNorm, Linear(vocab)`.
#[derive(Clone)]
pub struct MlmHead {
    fc: Linear,
    activation: Activation,
    norm: LayerNorm,
    decoder: Linear,
}

impl MlmHead {
    /// Scores over `vocab_size` tokens from `d_model`-wide token states (ReLU, eps 1e-5).
    pub fn new(d_model: usize, vocab_size: usize, vb: VarBuilder) -> Result<Self> {
        Self::with(
            d_model,
            vocab_size,
            Activation::Relu,
            TORCH_LAYER_NORM_EPS,
            vb,
        )
    }

    /// As [`MlmHead::new`] with a checkpoint's activation and layer-norm epsilon.
    pub fn with(
        d_model: usize,
        vocab_size: usize,
        activation: Activation,
        eps: f64,
        vb: VarBuilder,
    ) -> Result<Self> {
        Ok(Self {
            fc: linear(d_model, d_model, vb.pp("fc"))?,
            activation,
            norm: LayerNorm::with_eps(d_model, eps, vb.pp("norm"))?,
            decoder: linear(d_model, vocab_size, vb.pp("decoder"))?,
        })
    }

    /// Logits `(…, vocab)` from token states `(…, d)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.activation.apply(&self.fc.forward(x)?)?;
        self.decoder.forward(&self.norm.forward(&h)?)
    }
}

/// Cross entropy of `logits (n, c)` against `targets (n,)` u32, optionally weighted per
/// class (`weights (c,)`): `−Σ w[yᵢ]·log p(yᵢ) / Σ w[yᵢ]`.
pub fn weighted_cross_entropy(
    logits: &Tensor,
    targets: &Tensor,
    weights: Option<&Tensor>,
) -> Result<Tensor> {
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let picked = logp.gather(&targets.unsqueeze(1)?, 1)?.squeeze(1)?;
    match weights {
        None => picked.mean_all()?.neg(),
        Some(w) => {
            let wy = w.index_select(targets, 0)?.to_dtype(DType::F32)?;
            (picked * &wy)?.sum_all()?.neg()? / wy.sum_all()?.to_scalar::<f32>()? as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Weighted cross entropy equals the hand-computed value and reduces to the mean CE
    /// with equal weights.
    #[test]
    fn weighted_cross_entropy_values() {
        let dev = Device::Cpu;
        let logits = Tensor::new(&[[2f32, 0.], [0., 1.], [1., 1.]], &dev).unwrap();
        let y = Tensor::new(&[0u32, 1, 0], &dev).unwrap();
        // numpy: l = np.array([[2., 0], [0, 1], [1, 1]]); y = np.array([0, 1, 0]); w = np.array([1., 3.])
        // lp = l - np.log(np.exp(l).sum(1, keepdims=True)); p = lp[np.arange(3), y]
        // -p.mean() → 0.377779 ; -(p * w[y]).sum() / w[y].sum() → 0.351972
        let plain: f32 = weighted_cross_entropy(&logits, &y, None)
            .unwrap()
            .to_scalar()
            .unwrap();
        assert!((plain - 0.377_779).abs() < 1e-5, "{plain}");
        let w = Tensor::new(&[1f32, 3.], &dev).unwrap();
        let weighted: f32 = weighted_cross_entropy(&logits, &y, Some(&w))
            .unwrap()
            .to_scalar()
            .unwrap();
        assert!((weighted - 0.351_972).abs() < 1e-5, "{weighted}");
        let ones = Tensor::new(&[1f32, 1.], &dev).unwrap();
        let same: f32 = weighted_cross_entropy(&logits, &y, Some(&ones))
            .unwrap()
            .to_scalar()
            .unwrap();
        assert!((same - plain).abs() < 1e-6);
    }
}
