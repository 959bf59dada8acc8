//! A bidirectional Mamba-2 encoder that trains in candle (every op has a backward pass).
//!
//! Sources: Dao & Gu 2024, "Transformers are SSMs: Generalized Models and Efficient
//! Algorithms Through Structured State Space Duality" (arXiv 2405.21060); the block follows
//! state-spaces/mamba `mamba_ssm/modules/mamba2_simple.py` (ngroups = 1), the scan
//! `ssd_minimal.py` (see `mamba2/ssd.rs`); SC-MAMBA2 (bioRxiv 10.1101/2024.09.30.615775) stacks
//! such blocks bidirectionally.
//!
//! One layer: `u = RMSNorm(x)`; `x + drop(fwd(u) + flip(bwd(flip(u))))`, where `fwd` and
//! `bwd` are Mamba-2 blocks with separate parameters. The two directions are combined by
//! a **sum** (each block has its own `out_proj`, so this equals concat + one linear without
//! bias). The stack ends with a final RMSNorm, as Mamba's `norm_f`.
//!
//! Padding: sequences are right-padded, so the reversed sequence starts with padding. Each
//! block multiplies the conv input `[x, B, C]` and the step size `dt` by the mask. With
//! `dt = 0` a padded step neither decays the state (`exp(dt·A) = 1`) nor adds to it
//! (`dt·x ⊗ B = 0`), and the zeroed conv inputs look like the zero padding of a sequence
//! start, so real tokens see exactly what they would see without the padding. Outputs at
//! padded positions are set to zero.
//!
//! candle-nn 0.11's fused `rms_norm`/`softmax` have no backward. Softplus is composed of
//! differentiable primitives here; RMSNorm and the causal depthwise conv are CPU kernels
//! with hand-written backward passes (`mamba2/kernels.rs`; composed ops on other devices),
//! because their composed autograd dominated the step time.

mod kernels;
mod seeded;
mod ssd;

use kernels::{causal_conv, rms_norm};

pub use seeded::seeded_var_builder;
pub use ssd::{ssd_chunked, ssd_sequential};

use std::sync::Mutex;

use candle_core::{Module, Result, Tensor};
use candle_nn::{Init, Linear, VarBuilder};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Range of the per-head step size `softplus(dt_bias)` at init (`dt_min`, `dt_max`).
const DT_RANGE: (f64, f64) = (1e-3, 1e-1);
/// Range of the per-head decay rate `A = exp(A_log)` at init (`A_init_range`).
const A_RANGE: (f64, f64) = (1.0, 16.0);

/// Sizes of a [`BiMamba2Encoder`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Mamba2Config {
    /// Token embedding width.
    pub d_model: usize,
    /// Number of bidirectional layers.
    pub n_layers: usize,
    /// SSM state size N per head (Mamba-2 default 64–128).
    pub d_state: usize,
    /// Channels per head P (Mamba-2 default 64); must divide `d_inner`.
    pub headdim: usize,
    /// Inner width factor, `d_inner = expand · d_model` (Mamba-2 default 2).
    pub expand: usize,
    /// Width of the causal depthwise convolution (Mamba-2 default 4).
    pub d_conv: usize,
    /// Chunk length of the SSD scan (Mamba-2 default 256; 64 suits CPU).
    pub chunk_size: usize,
}

impl Mamba2Config {
    /// Inner width `expand · d_model`.
    pub fn d_inner(&self) -> usize {
        self.d_model * self.expand
    }

    /// Number of heads `d_inner / headdim`.
    pub fn n_heads(&self) -> usize {
        self.d_inner() / self.headdim.max(1)
    }

    /// Channels passed through the causal conv: `[x, B, C]`.
    fn d_xbc(&self) -> usize {
        self.d_inner() + 2 * self.d_state
    }

    /// Trainable parameters of one direction's block.
    fn block_params(&self) -> usize {
        let (d, di, h) = (self.d_model, self.d_inner(), self.n_heads());
        let in_proj = d * (di + self.d_xbc() + h); // z, xBC, dt
        let conv = self.d_xbc() * (self.d_conv + 1); // weight + bias
        in_proj + conv + 3 * h + di + di * d // A_log, D, dt_bias; norm; out_proj
    }

    /// Total trainable parameters: per layer two blocks + a pre-norm, plus the final norm.
    pub fn n_params(&self) -> usize {
        self.n_layers * (2 * self.block_params() + self.d_model) + self.d_model
    }

    /// Rejects sizes the block cannot use.
    fn validate(&self) -> Result<()> {
        let positive = [
            ("d_model", self.d_model),
            ("d_state", self.d_state),
            ("headdim", self.headdim),
            ("expand", self.expand),
            ("d_conv", self.d_conv),
            ("chunk_size", self.chunk_size),
        ];
        for (name, v) in positive {
            if v == 0 {
                candle_core::bail!("Mamba2Config: {name} must be positive");
            }
        }
        if self.d_inner() % self.headdim != 0 {
            candle_core::bail!(
                "Mamba2Config: headdim {} does not divide d_inner {}",
                self.headdim,
                self.d_inner()
            );
        }
        Ok(())
    }
}

/// `softplus(x) = max(x, 0) + log(1 + exp(−|x|))`: never overflows for large |x|.
fn softplus(xs: &Tensor) -> Result<Tensor> {
    let tail = (xs.abs()?.neg()?.exp()? + 1.0)?.log()?;
    xs.relu()? + tail
}

/// Inverse of softplus, `log(exp(y) − 1)`, for initialising `dt_bias`.
fn inv_softplus(y: f64) -> f64 {
    y.exp_m1().ln()
}

/// A bias-free linear layer with PyTorch's `nn.Linear` weight init, U(±1/sqrt(in_dim)),
/// multiplied by `scale`. candle-nn's `linear_no_bias` draws Kaiming-normal weights with
/// the ReLU gain instead (std sqrt(2/in_dim), 2.4× PyTorch's), which `layers::linear`
/// documents as stalling learning.
fn torch_linear_no_bias(
    in_dim: usize,
    out_dim: usize,
    scale: f64,
    vb: VarBuilder,
) -> Result<Linear> {
    let bound = scale / (in_dim.max(1) as f64).sqrt();
    let init = Init::Uniform {
        lo: -bound,
        up: bound,
    };
    Ok(Linear::new(
        vb.get_with_hints((out_dim, in_dim), "weight", init)?,
        None,
    ))
}

/// One direction's Mamba-2 block (`Mamba2Simple`, ngroups = 1).
struct Mamba2Block {
    in_proj: Linear,
    /// Depthwise conv weight (channels, 1, d_conv) and bias (channels).
    conv_weight: Tensor,
    conv_bias: Tensor,
    a_log: Tensor,
    d: Tensor,
    dt_bias: Tensor,
    norm_weight: Tensor,
    out_proj: Linear,
    cfg: Mamba2Config,
}

impl Mamba2Block {
    fn new(cfg: &Mamba2Config, vb: VarBuilder) -> Result<Self> {
        let (d_inner, h, d_xbc) = (cfg.d_inner(), cfg.n_heads(), cfg.d_xbc());
        // As mamba_ssm: in_proj keeps nn.Linear's default init; out_proj gets it too and is
        // then divided by sqrt(n_layer) (`_init_weights` with rescale_prenorm_residual, one
        // residual per layer), so the residual stream's variance does not grow with depth.
        let in_proj =
            torch_linear_no_bias(cfg.d_model, d_inner + d_xbc + h, 1.0, vb.pp("in_proj"))?;
        // PyTorch's Conv1d default: U(±1/sqrt(fan_in)) with fan_in = d_conv (depthwise).
        let bound = 1.0 / (cfg.d_conv as f64).sqrt();
        let conv_init = Init::Uniform {
            lo: -bound,
            up: bound,
        };
        let conv_weight = vb.get_with_hints((d_xbc, 1, cfg.d_conv), "conv1d.weight", conv_init)?;
        let conv_bias = vb.get_with_hints(d_xbc, "conv1d.bias", conv_init)?;
        // VarBuilder hints offer only constant/uniform/normal draws, so `A` is drawn
        // log-uniformly in A_RANGE (Mamba-2 draws it uniformly: same range, more heads with
        // slow decay), and dt_bias uniformly between inv_softplus(dt_min) and
        // inv_softplus(dt_max): softplus(dt_bias) then spans [dt_min, dt_max] and, as
        // inv_softplus(y) ≈ ln y for small y, is close to Mamba-2's log-uniform dt.
        let a_init = Init::Uniform {
            lo: A_RANGE.0.ln(),
            up: A_RANGE.1.ln(),
        };
        let a_log = vb.get_with_hints(h, "A_log", a_init)?;
        let dt_init = Init::Uniform {
            lo: inv_softplus(DT_RANGE.0),
            up: inv_softplus(DT_RANGE.1),
        };
        let dt_bias = vb.get_with_hints(h, "dt_bias", dt_init)?;
        let d = vb.get_with_hints(h, "D", Init::Const(1.0))?;
        let norm_weight = vb.get_with_hints(d_inner, "norm.weight", Init::Const(1.0))?;
        let rescale = 1.0 / (cfg.n_layers.max(1) as f64).sqrt();
        let out_proj = torch_linear_no_bias(d_inner, cfg.d_model, rescale, vb.pp("out_proj"))?;
        Ok(Self {
            in_proj,
            conv_weight,
            conv_bias,
            a_log,
            d,
            dt_bias,
            norm_weight,
            out_proj,
            cfg: cfg.clone(),
        })
    }

    /// Block output (b, l, d_model) for input `u` (b, l, d_model) and `mask` (b, l, 1).
    fn forward(&self, u: &Tensor, mask: &Tensor) -> Result<Tensor> {
        self.forward_with(u, mask, |x, dt_a, b, c| {
            ssd_chunked(x, dt_a, b, c, self.cfg.chunk_size)
        })
    }

    /// The block with a pluggable scan (the tests swap in [`ssd_sequential`]).
    fn forward_with<F>(&self, u: &Tensor, mask: &Tensor, scan: F) -> Result<Tensor>
    where
        F: Fn(&Tensor, &Tensor, &Tensor, &Tensor) -> Result<Tensor>,
    {
        let (bs, l, _) = u.dims3()?;
        let (di, h, p, n) = (
            self.cfg.d_inner(),
            self.cfg.n_heads(),
            self.cfg.headdim,
            self.cfg.d_state,
        );
        let proj = self.in_proj.forward(u)?;
        let z = proj.narrow(2, 0, di)?;
        // Zeroing the conv input at padded positions keeps padding out of the conv window.
        let xbc = proj.narrow(2, di, self.cfg.d_xbc())?.broadcast_mul(mask)?;
        let (ch, k) = (self.cfg.d_xbc(), self.cfg.d_conv);
        let w_t = self.conv_weight.reshape((ch, k))?.t()?; // tap-major (k, ch)
        let xbc = candle_nn::ops::silu(&causal_conv(&xbc, &w_t, &self.conv_bias)?)?;
        let x = xbc.narrow(2, 0, di)?;
        let b = xbc.narrow(2, di, n)?;
        let c = xbc.narrow(2, di + n, n)?;
        // dt = softplus(dt + dt_bias), zero at padding: no decay and no input there.
        let dt_raw = proj.narrow(2, di + self.cfg.d_xbc(), h)?;
        let dt = softplus(&dt_raw.broadcast_add(&self.dt_bias)?)?.broadcast_mul(mask)?;
        let a = self.a_log.exp()?.neg()?; // A = −exp(A_log), one scalar per head
        let dt_a = dt.broadcast_mul(&a)?;
        let x = x.reshape((bs, l, h, p))?;
        let x_dt = x.broadcast_mul(&dt.unsqueeze(3)?)?;
        // y = SSM(x) + D·x
        let y = scan(&x_dt, &dt_a, &b, &c)?;
        let y = (y + x.broadcast_mul(&self.d.reshape((1, 1, h, 1))?)?)?;
        // Gated RMSNorm (norm_before_gate = False): RMSNorm(y · silu(z)).
        let y = (y.reshape((bs, l, di))? * candle_nn::ops::silu(&z)?)?;
        self.out_proj.forward(&rms_norm(&y, &self.norm_weight)?)
    }
}

/// One bidirectional layer: pre-norm, forward and reversed Mamba-2 blocks, summed.
struct BiLayer {
    norm_weight: Tensor,
    fwd: Mamba2Block,
    bwd: Mamba2Block,
}

impl BiLayer {
    fn new(cfg: &Mamba2Config, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            norm_weight: vb.get_with_hints(cfg.d_model, "norm.weight", Init::Const(1.0))?,
            fwd: Mamba2Block::new(cfg, vb.pp("fwd"))?,
            bwd: Mamba2Block::new(cfg, vb.pp("bwd"))?,
        })
    }

    /// The mixing branch `fwd(u) + flip(bwd(flip(u)))` with `u = RMSNorm(xs)`.
    fn branch(&self, xs: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let u = rms_norm(xs, &self.norm_weight)?;
        let forward = self.fwd.forward(&u, mask)?;
        let backward = self
            .bwd
            .forward(&u.flip(&[1])?, &mask.flip(&[1])?)?
            .flip(&[1])?;
        forward + backward
    }
}

/// A stack of bidirectional Mamba-2 layers over right-padded token embeddings.
pub struct BiMamba2Encoder {
    layers: Vec<BiLayer>,
    final_norm: Tensor,
    dropout: f32,
    /// Seeded source of dropout masks (candle's CPU RNG cannot be seeded).
    rng: Mutex<ChaCha8Rng>,
}

impl BiMamba2Encoder {
    /// Builds `cfg.n_layers` layers under `vb` (`layers.{i}.{norm,fwd,bwd}`, `norm_f`).
    /// Dropout is off; see [`BiMamba2Encoder::with_dropout`].
    pub fn new(cfg: &Mamba2Config, vb: VarBuilder) -> Result<Self> {
        cfg.validate()?;
        let layers = (0..cfg.n_layers)
            .map(|i| BiLayer::new(cfg, vb.pp("layers").pp(i)))
            .collect::<Result<Vec<_>>>()?;
        let final_norm = vb.get_with_hints(cfg.d_model, "norm_f.weight", Init::Const(1.0))?;
        Ok(Self {
            layers,
            final_norm,
            dropout: 0.0,
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(0)),
        })
    }

    /// Sets the dropout rate on each layer's mixing branch (applied only when `train`),
    /// drawing masks from a ChaCha8 RNG seeded with `seed`. Defaults to 0 (no dropout).
    pub fn with_dropout(mut self, p: f32, seed: u64) -> Result<Self> {
        if !(0.0..1.0).contains(&p) {
            candle_core::bail!("dropout must be in [0, 1), got {p}");
        }
        self.dropout = p;
        self.rng = Mutex::new(ChaCha8Rng::seed_from_u64(seed));
        Ok(self)
    }

    /// Restarts the dropout stream from `seed` (the trainer reseeds before every step, so
    /// a resumed run draws the same masks as an uninterrupted one).
    pub fn reseed_dropout(&self, seed: u64) {
        if let Ok(mut rng) = self.rng.lock() {
            *rng = ChaCha8Rng::seed_from_u64(seed);
        }
    }

    /// Inverted dropout with a mask from the seeded RNG.
    fn dropout(&self, xs: &Tensor) -> Result<Tensor> {
        let p = self.dropout;
        let keep = 1.0 / (1.0 - p);
        let mask: Vec<f32> = {
            let mut rng = self
                .rng
                .lock()
                .map_err(|_| candle_core::Error::Msg("dropout RNG lock poisoned".into()))?;
            (0..xs.elem_count())
                .map(|_| if rng.gen::<f32>() < p { 0.0 } else { keep })
                .collect()
        };
        let mask = Tensor::from_vec(mask, xs.shape(), xs.device())?.to_dtype(xs.dtype())?;
        xs * mask
    }

    /// Encodes `xs` (batch, len, d_model) with `mask` (batch, len; 1 = real token, 0 =
    /// right padding). Returns (batch, len, d_model), zero at padded positions; real
    /// positions do not depend on padded ones. `train` enables dropout.
    pub fn forward_t(&self, xs: &Tensor, mask: &Tensor, train: bool) -> Result<Tensor> {
        let (bs, l, _) = xs.dims3()?;
        let (mb, ml) = mask.dims2()?;
        if (mb, ml) != (bs, l) {
            candle_core::bail!(
                "mask shape {:?} does not match input {:?}",
                mask.dims(),
                xs.dims()
            );
        }
        let mask = mask.to_dtype(xs.dtype())?.unsqueeze(2)?;
        let mut h = xs.clone();
        for layer in &self.layers {
            let mut branch = layer.branch(&h, &mask)?;
            if train && self.dropout > 0.0 {
                branch = self.dropout(&branch)?;
            }
            h = (h + branch)?;
        }
        rms_norm(&h, &self.final_norm)?.broadcast_mul(&mask)
    }
}

#[cfg(test)]
mod tests;
