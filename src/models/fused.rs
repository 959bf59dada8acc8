//! Fused CPU kernels, with hand-written backward passes, for the two transformer ops that
//! dominate a training step when composed from candle's differentiable primitives:
//! softmax over the attention scores and layer normalisation.
//!
//! Composed, each of them materialises 4–8 full-size temporaries in the forward pass and
//! as many gradients in the backward pass; on the (batch, heads, len, len) score tensor
//! that allocation and page-fault traffic was most of the step (see docs/models.md,
//! "Training throughput vs PyTorch"). The kernels compute the same functions in one pass
//! each way. candle-nn's own fused softmax/layer-norm have no backward (they would stop
//! gradients silently), which is why these exist.
//!
//! On other devices or dtypes the composed versions run: they are the reference the tests
//! compare values and gradients with.

use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor, D,
};
use rayon::prelude::*;

/// Rows per block in the parameter-gradient reductions of the fused kernels (here and in `mamba2::kernels`). Fixed, so
/// each block's partial sum, and the in-order sum over blocks, do not depend on how rayon
/// splits the work: same inputs, same bits (a rayon `fold` + `reduce` does not promise
/// that, and the determinism test caught it).
pub(crate) const BLOCK_ROWS: usize = 64;

/// Element-wise sum of equally long partial vectors, in order (deterministic).
pub(crate) fn sum_in_order(partials: &[Vec<f32>], len: usize) -> Vec<f32> {
    let mut total = vec![0f32; len];
    for p in partials {
        for (t, v) in total.iter_mut().zip(p) {
            *t += v;
        }
    }
    total
}

/// The contiguous f32 slice behind a storage/layout pair.
pub(crate) fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{what}: expected a contiguous tensor"),
    }
}

/// Plain f32 contents of a tensor (copied if it is strided).
pub(crate) fn to_vec(t: &Tensor) -> Result<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}

/// Softmax over the last axis composed of differentiable ops (max subtracted for
/// stability; the max is detached because softmax does not depend on it).
pub(crate) fn softmax_last_composed(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    let s = e.sum_keepdim(D::Minus1)?;
    e.broadcast_div(&s)
}

/// Softmax over the last axis: the fused kernel on CPU f32, the composed ops elsewhere.
pub fn softmax_last(x: &Tensor) -> Result<Tensor> {
    if !x.device().is_cpu() || x.dtype() != DType::F32 {
        return softmax_last_composed(x);
    }
    x.contiguous()?.apply_op1(SoftmaxOp)
}

/// Softmax of one row in place (max subtracted for stability); shared by the plain and the
/// attention kernels.
fn softmax_in_place(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f32;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    row.iter_mut().for_each(|v| *v *= inv);
}

struct SoftmaxOp;

impl CustomOp1 for SoftmaxOp {
    fn name(&self) -> &'static str {
        "scrobust-softmax-last"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l, "softmax input")?;
        let d = l.dims().last().copied().unwrap_or(0);
        if d == 0 {
            return Ok((CpuStorage::F32(x.to_vec()), l.shape().clone()));
        }
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(d)
            .zip(x.par_chunks(d))
            .for_each(|(o, row)| {
                o.copy_from_slice(row);
                softmax_in_place(o);
            });
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        softmax_backward(res, grad, 1.0).map(Some)
    }
}

/// `dx = scale · y ∘ (g − Σ_j g_j y_j)` per row of the last axis, for `y` = softmax(scale · x
/// + c): one kernel reading `y` and `g` in place (no copies of either).
fn softmax_backward(y: &Tensor, g: &Tensor, scale: f32) -> Result<Tensor> {
    y.contiguous()?
        .apply_op2_no_bwd(&g.contiguous()?, &SoftmaxBackward { scale })
}

struct SoftmaxBackward {
    scale: f32,
}

impl CustomOp2 for SoftmaxBackward {
    fn name(&self) -> &'static str {
        "scrobust-softmax-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let y = f32_slice(s1, l1, "softmax output")?;
        let g = f32_slice(s2, l2, "softmax gradient")?;
        let d = l1.dims().last().copied().unwrap_or(1).max(1);
        if y.len() != g.len() {
            candle_core::bail!("softmax backward: {:?} vs {:?}", l1.dims(), l2.dims());
        }
        let mut dx = vec![0f32; y.len()];
        dx.par_chunks_mut(d)
            .zip(y.par_chunks(d).zip(g.par_chunks(d)))
            .for_each(|(dxr, (yr, gr))| {
                let dot: f32 = yr.iter().zip(gr).map(|(y, g)| y * g).sum();
                for ((o, &y), &g) in dxr.iter_mut().zip(yr).zip(gr) {
                    *o = self.scale * y * (g - dot);
                }
            });
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

/// Attention probabilities `softmax(scale · scores + bias)` over the last axis, `scores`
/// `(b, h, l_q, l_k)` and `bias` `(b, 1, 1, l_k)` (the key padding bias) broadcast over heads
/// and queries. On CPU f32 with a constant bias this is one kernel each way; composed, the
/// scaled and the biased score tensors are each allocated and differentiated as well.
pub fn attention_probs(scores: &Tensor, bias: &Tensor, scale: f64) -> Result<Tensor> {
    let fits = match (scores.dims(), bias.dims()) {
        ([b, _, _, l], [bb, 1, 1, bl]) => b == bb && l == bl,
        _ => false,
    };
    let fused = fits
        && scores.device().is_cpu()
        && scores.dtype() == DType::F32
        && bias.dtype() == DType::F32
        && !bias.track_op();
    if !fused {
        return softmax_last(&(scores * scale)?.broadcast_add(bias)?);
    }
    scores.contiguous()?.apply_op2(
        &bias.contiguous()?,
        AttentionProbs {
            scale: scale as f32,
        },
    )
}

struct AttentionProbs {
    scale: f32,
}

impl CustomOp2 for AttentionProbs {
    fn name(&self) -> &'static str {
        "scrobust-attention-probs"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s1, l1, "attention scores")?;
        let bias = f32_slice(s2, l2, "attention bias")?;
        let (_, h, lq, lk) = l1.shape().dims4()?;
        let mut out = vec![0f32; x.len()];
        if lk == 0 {
            return Ok((CpuStorage::F32(out), l1.shape().clone()));
        }
        out.par_chunks_mut(lk)
            .zip(x.par_chunks(lk))
            .enumerate()
            .for_each(|(row, (o, xr))| {
                let br = &bias[row / (h * lq) * lk..][..lk];
                for ((o, &v), &c) in o.iter_mut().zip(xr).zip(br) {
                    *o = v * self.scale + c;
                }
                softmax_in_place(o);
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    /// The bias is constant (checked before the op is built), so only `scores` gets a gradient.
    fn bwd(
        &self,
        _scores: &Tensor,
        _bias: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some(softmax_backward(res, grad, self.scale)?), None))
    }
}

/// Layer norm over the last axis composed of differentiable ops:
/// `y = (x − mean) / sqrt(var + eps) · weight + bias` (biased variance, as PyTorch).
pub(crate) fn layer_norm_composed(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    eps: f64,
) -> Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let xc = x.broadcast_sub(&mean)?;
    let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
    let inv_std = (var + eps)?.sqrt()?.recip()?;
    xc.broadcast_mul(&inv_std)?
        .broadcast_mul(weight)?
        .broadcast_add(bias)
}

/// Layer norm over the last axis: the fused kernel on CPU f32, the composed ops elsewhere.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    if !x.device().is_cpu() || x.dtype() != DType::F32 {
        return layer_norm_composed(x, weight, bias, eps);
    }
    x.contiguous()?.apply_op3(
        &weight.contiguous()?,
        &bias.contiguous()?,
        LayerNormOp { eps: eps as f32 },
    )
}

struct LayerNormOp {
    eps: f32,
}

impl LayerNormOp {
    /// Mean and `1 / sqrt(var + eps)` of one row.
    fn stats(&self, row: &[f32]) -> (f32, f32) {
        let n = row.len() as f32;
        let mean = row.iter().sum::<f32>() / n;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        (mean, 1.0 / (var + self.eps).sqrt())
    }
}

impl CustomOp3 for LayerNormOp {
    fn name(&self) -> &'static str {
        "scrobust-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s1, l1, "layer_norm input")?;
        let w = f32_slice(s2, l2, "layer_norm weight")?;
        let b = f32_slice(s3, l3, "layer_norm bias")?;
        let d = w.len();
        if d == 0 || l1.dims().last() != Some(&d) || b.len() != d {
            candle_core::bail!(
                "layer_norm: weight {:?} / bias {:?} do not fit input {:?}",
                l2.dims(),
                l3.dims(),
                l1.dims()
            );
        }
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(d)
            .zip(x.par_chunks(d))
            .for_each(|(o, row)| {
                let (mean, r) = self.stats(row);
                for (j, (o, &v)) in o.iter_mut().zip(row).enumerate() {
                    *o = (v - mean) * r * w[j] + b[j];
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    /// With `x̂ = (x − mean)·r` and `ĝ = g·w`:
    /// `dx = r·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂))`, `dw = Σ_rows g·x̂`, `db = Σ_rows g`.
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (xv, wv, gv) = (to_vec(x)?, to_vec(w)?, to_vec(grad)?);
        let d = wv.len();
        let n = d as f32;
        let mut dx = vec![0f32; xv.len()];
        let block = d * BLOCK_ROWS;
        let partials: Vec<(Vec<f32>, Vec<f32>)> = dx
            .par_chunks_mut(block)
            .zip(xv.par_chunks(block).zip(gv.par_chunks(block)))
            .map(|(dxb, (xb, gb))| {
                let (mut dw, mut db) = (vec![0f32; d], vec![0f32; d]);
                for ((dxr, xr), gr) in dxb.chunks_mut(d).zip(xb.chunks(d)).zip(gb.chunks(d)) {
                    let (mean, r) = self.stats(xr);
                    let (mut sum_g, mut sum_gx) = (0f32, 0f32);
                    // First pass: x̂ parked in dxr (no scratch buffer), row sums, dw, db.
                    for j in 0..d {
                        let xh = (xr[j] - mean) * r;
                        let gh = gr[j] * wv[j];
                        sum_g += gh;
                        sum_gx += gh * xh;
                        dw[j] += gr[j] * xh;
                        db[j] += gr[j];
                        dxr[j] = xh;
                    }
                    let (mg, mgx) = (sum_g / n, sum_gx / n);
                    for j in 0..d {
                        dxr[j] = r * (gr[j] * wv[j] - mg - dxr[j] * mgx);
                    }
                }
                (dw, db)
            })
            .collect();
        let (dws, dbs): (Vec<Vec<f32>>, Vec<Vec<f32>>) = partials.into_iter().unzip();
        let (dw, db) = (sum_in_order(&dws, d), sum_in_order(&dbs, d));
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), x.device())?),
            Some(Tensor::from_vec(dw, w.shape(), w.device())?),
            Some(Tensor::from_vec(db, w.shape(), w.device())?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Max absolute difference of two tensors' values.
    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        let (a, b) = (to_vec(a).unwrap(), to_vec(b).unwrap());
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(&b)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    }

    /// Deterministic, irregular test values (no RNG needed): a scrambled ramp.
    fn values(n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 7919) % 113) as f32 / 113.0 - 0.5) * scale)
            .collect()
    }

    /// The fused softmax equals the composed one in value and in the gradient of a
    /// weighted sum (so the backward sees a non-uniform upstream gradient), including a
    /// row with a -1e9 padding bias as attention uses.
    #[test]
    fn fused_softmax_matches_composed() {
        let dev = Device::Cpu;
        let mut xv = values(3 * 2 * 5 * 7, 6.0);
        xv[3] = -1e9;
        let x = Var::from_vec(xv, (3, 2, 5, 7), &dev).unwrap();
        let wts = Tensor::from_vec(values(3 * 2 * 5 * 7, 3.0), (3, 2, 5, 7), &dev).unwrap();
        let run = |f: fn(&Tensor) -> Result<Tensor>| {
            let y = f(x.as_tensor()).unwrap();
            let loss = (&y * &wts).unwrap().sum_all().unwrap();
            let grads = loss.backward().unwrap();
            (y, grads.get(x.as_tensor()).unwrap().clone())
        };
        let (y1, g1) = run(softmax_last);
        let (y0, g0) = run(softmax_last_composed);
        assert!(max_diff(&y1, &y0) < 1e-6, "values {}", max_diff(&y1, &y0));
        assert!(max_diff(&g1, &g0) < 1e-5, "grads {}", max_diff(&g1, &g0));
        let row_sums = to_vec(&y1.sum(D::Minus1).unwrap()).unwrap();
        assert!(row_sums.iter().all(|s| (s - 1.0).abs() < 1e-5));
    }

    /// The fused attention probabilities equal the composed scale → bias → softmax in value
    /// and in the gradient of the scores, with one padded key per batch row.
    #[test]
    fn fused_attention_probs_match_composed() {
        let dev = Device::Cpu;
        let x = Var::from_vec(values(3 * 2 * 5 * 7, 6.0), (3, 2, 5, 7), &dev).unwrap();
        let mut bv = vec![0f32; 3 * 7];
        (0..3).for_each(|b| bv[b * 7 + (b * 3) % 7] = -1e9);
        let bias = Tensor::from_vec(bv, (3, 1, 1, 7), &dev).unwrap();
        let wts = Tensor::from_vec(values(3 * 2 * 5 * 7, 3.0), (3, 2, 5, 7), &dev).unwrap();
        let scale = 1.0 / 8f64.sqrt();
        let run = |fused: bool| {
            let y = if fused {
                attention_probs(x.as_tensor(), &bias, scale).unwrap()
            } else {
                let s = (x.as_tensor() * scale)
                    .unwrap()
                    .broadcast_add(&bias)
                    .unwrap();
                softmax_last_composed(&s).unwrap()
            };
            let loss = (&y * &wts).unwrap().sum_all().unwrap();
            let grads = loss.backward().unwrap();
            (y, grads.get(x.as_tensor()).unwrap().clone())
        };
        let ((y1, g1), (y0, g0)) = (run(true), run(false));
        assert!(max_diff(&y1, &y0) < 1e-6, "values {}", max_diff(&y1, &y0));
        assert!(max_diff(&g1, &g0) < 1e-5, "grads {}", max_diff(&g1, &g0));
        let padded = to_vec(&y1.narrow(3, 3, 1).unwrap().narrow(0, 1, 1).unwrap()).unwrap();
        assert!(padded.iter().all(|&p| p == 0.0), "padded key attended");
        assert!(
            g1.abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                > 0.0
        );
    }

    /// The fused layer norm equals the composed one in value and in the gradients of the
    /// input, weight and bias.
    #[test]
    fn fused_layer_norm_matches_composed() {
        let dev = Device::Cpu;
        let x = Var::from_vec(values(4 * 3 * 6, 5.0), (4, 3, 6), &dev).unwrap();
        let w = Var::from_vec(values(6, 2.0).iter().map(|v| v + 1.0).collect(), 6, &dev).unwrap();
        let b = Var::from_vec(values(6, 1.0), 6, &dev).unwrap();
        let wts = Tensor::from_vec(values(4 * 3 * 6, 3.0), (4, 3, 6), &dev).unwrap();
        type Ln = fn(&Tensor, &Tensor, &Tensor, f64) -> Result<Tensor>;
        let run = |f: Ln| {
            let y = f(x.as_tensor(), w.as_tensor(), b.as_tensor(), 1e-5).unwrap();
            let loss = (&y * &wts).unwrap().sum_all().unwrap();
            let grads = loss.backward().unwrap();
            let g = |v: &Var| grads.get(v.as_tensor()).unwrap().clone();
            (y, g(&x), g(&w), g(&b))
        };
        let (y1, gx1, gw1, gb1) = run(layer_norm);
        let (y0, gx0, gw0, gb0) = run(layer_norm_composed);
        assert!(max_diff(&y1, &y0) < 1e-5, "values {}", max_diff(&y1, &y0));
        for (name, a, b) in [("x", &gx1, &gx0), ("w", &gw1, &gw0), ("b", &gb1, &gb0)] {
            assert!(max_diff(a, b) < 1e-4, "grad {name}: {}", max_diff(a, b));
        }
    }
}
