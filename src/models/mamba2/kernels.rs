//! Fused CPU kernels, with hand-written backward passes, for the two layers whose
//! composed candle autograd is slow: the causal depthwise conv (four broadcast taps whose
//! weight gradients are strided reductions over batch × length) and RMSNorm.
//!
//! On other devices (or for tests) the composed versions run instead; they are the
//! reference the kernels are tested against. Both kernels take contiguous f32 input.

use crate::models::fused::{f32_slice, sum_in_order, to_vec, BLOCK_ROWS};
use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor, D};
use rayon::prelude::*;

/// RMSNorm epsilon, as `mamba_ssm` (1e-5).
pub(super) const RMS_EPS: f64 = 1e-5;

/// RMSNorm composed of differentiable ops: `x / sqrt(mean(x²) + eps) · w` (last axis).
pub(super) fn rms_norm_composed(xs: &Tensor, weight: &Tensor) -> Result<Tensor> {
    let rms = (xs.sqr()?.mean_keepdim(D::Minus1)? + RMS_EPS)?.sqrt()?;
    xs.broadcast_div(&rms)?.broadcast_mul(weight)
}

/// RMSNorm over the last axis; the fused kernel on CPU f32, the composed ops elsewhere.
pub(super) fn rms_norm(xs: &Tensor, weight: &Tensor) -> Result<Tensor> {
    if !xs.device().is_cpu() || xs.dtype() != DType::F32 {
        return rms_norm_composed(xs, weight);
    }
    xs.contiguous()?.apply_op2(&weight.contiguous()?, RmsNormOp)
}

struct RmsNormOp;

/// `1 / sqrt(mean(row²) + eps)` for one row.
fn inv_rms(row: &[f32]) -> f32 {
    let ms = row.iter().map(|v| v * v).sum::<f32>() / row.len() as f32;
    1.0 / (ms + RMS_EPS as f32).sqrt()
}

impl CustomOp2 for RmsNormOp {
    fn name(&self) -> &'static str {
        "mamba2-rms-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s1, l1, "rms_norm input")?;
        let w = f32_slice(s2, l2, "rms_norm weight")?;
        let d = w.len();
        if d == 0 || l1.dims().last() != Some(&d) {
            candle_core::bail!(
                "rms_norm: weight {:?} does not fit input {:?}",
                l2.dims(),
                l1.dims()
            );
        }
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(d)
            .zip(x.par_chunks(d))
            .for_each(|(o, row)| {
                let r = inv_rms(row);
                for ((o, &v), &wv) in o.iter_mut().zip(row).zip(w) {
                    *o = v * r * wv;
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    /// With `gw = g·w`: `dx = r·gw − x·r³·mean(gw·x)`, `dw = Σ_rows g·x·r`.
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (xv, wv, gv) = (to_vec(x)?, to_vec(w)?, to_vec(grad)?);
        let d = wv.len();
        let mut dx = vec![0f32; xv.len()];
        let block = d * BLOCK_ROWS;
        let partials: Vec<Vec<f32>> = dx
            .par_chunks_mut(block)
            .zip(xv.par_chunks(block).zip(gv.par_chunks(block)))
            .map(|(dxb, (xb, gb))| {
                let mut dw = vec![0f32; d];
                for ((dxr, xr), gr) in dxb.chunks_mut(d).zip(xb.chunks(d)).zip(gb.chunks(d)) {
                    let r = inv_rms(xr);
                    let dot: f32 = xr
                        .iter()
                        .zip(gr)
                        .zip(&wv)
                        .map(|((x, g), w)| g * w * x)
                        .sum();
                    let k = r * r * r * dot / d as f32;
                    for j in 0..d {
                        dxr[j] = r * gr[j] * wv[j] - xr[j] * k;
                        dw[j] += gr[j] * xr[j] * r;
                    }
                }
                dw
            })
            .collect();
        let dw = sum_in_order(&partials, d);
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), x.device())?),
            Some(Tensor::from_vec(dw, w.shape(), w.device())?),
        ))
    }
}

/// Causal depthwise conv composed of differentiable ops: `xs` (b, l, c), `w_t` (k, c)
/// (tap-major), `bias` (c); `out[t] = bias + Σ_i w_t[i] · xs[t + i − (k − 1)]`.
pub(super) fn causal_conv_composed(xs: &Tensor, w_t: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let (_, l, c) = xs.dims3()?;
    let k = w_t.dim(0)?;
    let padded = xs.pad_with_zeros(1, k - 1, 0)?;
    let mut out = bias.reshape((1, 1, c))?;
    for i in 0..k {
        let tap = padded
            .narrow(1, i, l)?
            .broadcast_mul(&w_t.narrow(0, i, 1)?)?;
        out = out.broadcast_add(&tap)?;
    }
    Ok(out)
}

/// Causal depthwise conv; the fused kernel on CPU f32, the composed ops elsewhere.
pub(super) fn causal_conv(xs: &Tensor, w_t: &Tensor, bias: &Tensor) -> Result<Tensor> {
    if !xs.device().is_cpu() || xs.dtype() != DType::F32 {
        return causal_conv_composed(xs, w_t, bias);
    }
    xs.contiguous()?
        .apply_op3(&w_t.contiguous()?, &bias.contiguous()?, CausalConvOp)
}

struct CausalConvOp;

impl CustomOp3 for CausalConvOp {
    fn name(&self) -> &'static str {
        "mamba2-causal-conv"
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
        let x = f32_slice(s1, l1, "conv input")?;
        let w = f32_slice(s2, l2, "conv weight")?;
        let bias = f32_slice(s3, l3, "conv bias")?;
        let (_, l, c) = l1.shape().dims3()?;
        let (k, c2) = l2.shape().dims2()?;
        if c2 != c || bias.len() != c || k == 0 {
            candle_core::bail!(
                "causal_conv: weight {:?} / bias {:?} vs input {:?}",
                l2.dims(),
                l3.dims(),
                l1.dims()
            );
        }
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(l * c)
            .zip(x.par_chunks(l * c))
            .for_each(|(ob, xb)| {
                for t in 0..l {
                    let o = &mut ob[t * c..(t + 1) * c];
                    o.copy_from_slice(bias);
                    for i in 0..k {
                        // Input step t + i − (k − 1); before the start it is zero.
                        let Some(s) = (t + i).checked_sub(k - 1) else {
                            continue;
                        };
                        let (xr, wr) = (&xb[s * c..(s + 1) * c], &w[i * c..(i + 1) * c]);
                        for ((o, &xv), &wv) in o.iter_mut().zip(xr).zip(wr) {
                            *o += xv * wv;
                        }
                    }
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    /// `dx[s] = Σ_i w[i]·g[s − i + k − 1]`, `dw[i] = Σ_{b,t} g[t]·x[t + i − (k − 1)]`,
    /// `dbias = Σ_{b,t} g[t]`.
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (_, l, c) = x.dims3()?;
        let k = w.dim(0)?;
        let (xv, wv, gv) = (to_vec(x)?, to_vec(w)?, to_vec(grad)?);
        let mut dx = vec![0f32; xv.len()];
        // One partial per batch element, summed in order: deterministic (see BLOCK_ROWS).
        let partials: Vec<(Vec<f32>, Vec<f32>)> = dx
            .par_chunks_mut(l * c)
            .zip(xv.par_chunks(l * c).zip(gv.par_chunks(l * c)))
            .map(|(dxb, (xb, gb))| {
                let (mut dw, mut db) = (vec![0f32; k * c], vec![0f32; c]);
                for t in 0..l {
                    let g = &gb[t * c..(t + 1) * c];
                    for (d, &gv) in db.iter_mut().zip(g) {
                        *d += gv;
                    }
                    for i in 0..k {
                        let Some(s) = (t + i).checked_sub(k - 1) else {
                            continue;
                        };
                        let xr = &xb[s * c..(s + 1) * c];
                        let wr = &wv[i * c..(i + 1) * c];
                        let dwr = &mut dw[i * c..(i + 1) * c];
                        let dxr = &mut dxb[s * c..(s + 1) * c];
                        for j in 0..c {
                            dxr[j] += wr[j] * g[j];
                            dwr[j] += g[j] * xr[j];
                        }
                    }
                }
                (dw, db)
            })
            .collect();
        let (dws, dbs): (Vec<Vec<f32>>, Vec<Vec<f32>>) = partials.into_iter().unzip();
        let (dw, db) = (sum_in_order(&dws, k * c), sum_in_order(&dbs, c));
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), x.device())?),
            Some(Tensor::from_vec(dw, w.shape(), w.device())?),
            Some(Tensor::from_vec(db, bias.shape(), bias.device())?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn var(rng: &mut ChaCha8Rng, shape: &[usize]) -> Var {
        let v: Vec<f32> = (0..shape.iter().product())
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        Var::from_tensor(&Tensor::from_vec(v, shape, &Device::Cpu).expect("shape")).expect("var")
    }

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .and_then(|d| d.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>())
            .expect("same shapes")
    }

    /// The fused conv equals the composed one in value and in all three gradients.
    #[test]
    fn conv_kernel_matches_composed_ops() -> Result<()> {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (x, w, b) = (
            var(&mut rng, &[2, 6, 5]),
            var(&mut rng, &[4, 5]),
            var(&mut rng, &[5]),
        );
        let g = var(&mut rng, &[2, 6, 5]);
        let fused = causal_conv(&x, &w, &b)?;
        let composed = causal_conv_composed(&x, &w, &b)?;
        assert!(max_abs_diff(&fused, &composed) < 1e-5);
        let g1 = (fused * g.as_tensor())?.sum_all()?.backward()?;
        let g2 = (composed * g.as_tensor())?.sum_all()?.backward()?;
        for v in [&x, &w, &b] {
            let (a, c) = (
                g1.get(v).expect("fused grad"),
                g2.get(v).expect("composed grad"),
            );
            assert!(max_abs_diff(a, c) < 1e-5);
        }
        Ok(())
    }

    /// The fused RMSNorm equals the composed one in value and in both gradients.
    #[test]
    fn rms_norm_kernel_matches_composed_ops() -> Result<()> {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let (x, w, g) = (
            var(&mut rng, &[3, 4, 7]),
            var(&mut rng, &[7]),
            var(&mut rng, &[3, 4, 7]),
        );
        let fused = rms_norm(&x, &w)?;
        let composed = rms_norm_composed(&x, &w)?;
        assert!(max_abs_diff(&fused, &composed) < 1e-5);
        let g1 = (fused * g.as_tensor())?.sum_all()?.backward()?;
        let g2 = (composed * g.as_tensor())?.sum_all()?.backward()?;
        for v in [&x, &w] {
            let (a, c) = (
                g1.get(v).expect("fused grad"),
                g2.get(v).expect("composed grad"),
            );
            assert!(max_abs_diff(a, c) < 1e-4);
        }
        Ok(())
    }
}
