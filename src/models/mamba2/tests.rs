//! Unit tests of the bidirectional Mamba-2 encoder (the scan has its own in `ssd.rs`).

use super::*;
use candle_core::{DType, Device, Var};
use candle_nn::{Optimizer, VarMap};
use rand_distr::{Distribution, Normal};
use std::collections::HashMap;

fn seeded_vb(map: &VarMap, seed: u64) -> VarBuilder<'static> {
    seeded_var_builder(map, seed, DType::F32, &Device::Cpu)
}

fn tiny_cfg() -> Mamba2Config {
    Mamba2Config {
        d_model: 8,
        n_layers: 2,
        d_state: 4,
        headdim: 4,
        expand: 2,
        d_conv: 4,
        chunk_size: 4,
    }
}

fn randn(rng: &mut ChaCha8Rng, shape: &[usize]) -> Tensor {
    let normal = Normal::new(0.0f32, 1.0).expect("valid normal");
    let v: Vec<f32> = (0..shape.iter().product())
        .map(|_| normal.sample(rng))
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).expect("shape matches data")
}

fn mask_from_lengths(lengths: &[usize], l: usize) -> Tensor {
    let v: Vec<f32> = lengths
        .iter()
        .flat_map(|&n| (0..l).map(move |t| if t < n { 1.0 } else { 0.0 }))
        .collect();
    Tensor::from_vec(v, (lengths.len(), l), &Device::Cpu).expect("shape matches data")
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .and_then(|d| d.abs())
        .and_then(|d| d.flatten_all())
        .and_then(|d| d.max(0))
        .and_then(|d| d.to_scalar::<f32>())
        .expect("same shapes")
}

/// Reverses axis 1 of a (b, l, d) tensor through plain index arithmetic on a Vec, so the
/// direction test does not rely on `Tensor::flip`, which the model itself uses.
fn reverse_time(t: &Tensor) -> Tensor {
    let (b, l, d) = t.dims3().expect("rank 3");
    let v = t
        .flatten_all()
        .and_then(|f| f.to_vec1::<f32>())
        .expect("f32");
    let mut out = vec![0f32; v.len()];
    for i in 0..b {
        for s in 0..l {
            for k in 0..d {
                out[(i * l + s) * d + k] = v[(i * l + (l - 1 - s)) * d + k];
            }
        }
    }
    Tensor::from_vec(out, (b, l, d), &Device::Cpu).expect("same shape")
}

/// The parameter-count formula equals the sum of all variables the encoder creates.
#[test]
fn param_count_matches_varmap() -> Result<()> {
    let cfg = Mamba2Config {
        d_model: 12,
        n_layers: 3,
        d_state: 5,
        headdim: 6,
        expand: 2,
        d_conv: 3,
        chunk_size: 4,
    };
    let map = VarMap::new();
    BiMamba2Encoder::new(&cfg, seeded_vb(&map, 1))?;
    let total: usize = map.all_vars().iter().map(|v| v.elem_count()).sum();
    assert_eq!(total, cfg.n_params());
    // Per block: in_proj, conv1d weight + bias, A_log, dt_bias, D, norm, out_proj.
    assert_eq!(map.all_vars().len(), 3 * (2 * 8 + 1) + 1);
    Ok(())
}

/// A block computed with the chunked scan equals the same block with the sequential
/// recurrence (length 11 with chunk 4, so the last chunk is padded).
#[test]
fn block_chunked_equals_sequential() -> Result<()> {
    let cfg = tiny_cfg();
    let map = VarMap::new();
    let block = Mamba2Block::new(&cfg, seeded_vb(&map, 2))?;
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let u = randn(&mut rng, &[2, 11, 8]);
    let mask = Tensor::ones((2, 11, 1), DType::F32, &Device::Cpu)?;
    let chunked = block.forward(&u, &mask)?;
    let sequential = block.forward_with(&u, &mask, ssd_sequential)?;
    assert!(max_abs_diff(&chunked, &sequential) < 1e-4);
    Ok(())
}

/// The backward branch equals the sequential recurrence run on the time-reversed input
/// and reversed back; the forward branch only looks left and the backward only right.
#[test]
fn reverse_direction_is_recurrence_on_reversed_sequence() -> Result<()> {
    let cfg = tiny_cfg();
    let map = VarMap::new();
    let layer = BiLayer::new(&cfg, seeded_vb(&map, 3))?;
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (l, s) = (9, 4);
    let u = randn(&mut rng, &[1, l, 8]);
    let mask = Tensor::ones((1, l, 1), DType::F32, &Device::Cpu)?;
    let bwd = layer.bwd.forward(&u.flip(&[1])?, &mask)?.flip(&[1])?;
    let reference = reverse_time(&layer.bwd.forward_with(
        &reverse_time(&u),
        &mask,
        ssd_sequential,
    )?);
    assert!(max_abs_diff(&bwd, &reference) < 1e-4);

    // Perturb token s: forward outputs before s and backward outputs after s stay put.
    let bump = Tensor::zeros((1, l, 8), DType::F32, &Device::Cpu)?.slice_assign(
        &[0..1, s..s + 1, 0..8],
        &Tensor::ones((1, 1, 8), DType::F32, &Device::Cpu)?,
    )?;
    let u2 = (&u + bump)?;
    let fwd1 = layer.fwd.forward(&u, &mask)?;
    let fwd2 = layer.fwd.forward(&u2, &mask)?;
    let bwd2 = layer.bwd.forward(&u2.flip(&[1])?, &mask)?.flip(&[1])?;
    assert!(max_abs_diff(&fwd1.narrow(1, 0, s)?, &fwd2.narrow(1, 0, s)?) < 1e-6);
    assert!(
        max_abs_diff(
            &bwd.narrow(1, s + 1, l - s - 1)?,
            &bwd2.narrow(1, s + 1, l - s - 1)?
        ) < 1e-6
    );
    assert!(max_abs_diff(&fwd1.narrow(1, s, l - s)?, &fwd2.narrow(1, s, l - s)?) > 1e-3);
    assert!(max_abs_diff(&bwd.narrow(1, 0, s + 1)?, &bwd2.narrow(1, 0, s + 1)?) > 1e-3);
    Ok(())
}

/// Real-token outputs ignore the padded embeddings in both directions, equal the output
/// of the same sequence encoded alone without padding, and padded outputs are zero.
#[test]
fn padding_does_not_leak() -> Result<()> {
    let cfg = tiny_cfg();
    let map = VarMap::new();
    let enc = BiMamba2Encoder::new(&cfg, seeded_vb(&map, 4))?;
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let (l, short) = (10, 5);
    let xs = randn(&mut rng, &[2, l, 8]);
    let mask = mask_from_lengths(&[l, short], l);
    let out = enc.forward_t(&xs, &mask, false)?;

    // Replace the padded embeddings of sequence 1 with large garbage.
    let garbage = (randn(&mut rng, &[1, l - short, 8]) * 50.0)?;
    let xs2 = xs.slice_assign(&[1..2, short..l, 0..8], &garbage)?;
    let out2 = enc.forward_t(&xs2, &mask, false)?;
    assert!(
        max_abs_diff(&out, &out2) < 1e-5,
        "padding leaked into outputs"
    );

    let alone = enc.forward_t(
        &xs.narrow(0, 1, 1)?.narrow(1, 0, short)?,
        &mask_from_lengths(&[short], short),
        false,
    )?;
    let in_batch = out.narrow(0, 1, 1)?.narrow(1, 0, short)?;
    assert!(max_abs_diff(&alone, &in_batch) < 1e-5);
    assert_eq!(
        out.narrow(0, 1, 1)?
            .narrow(1, short, l - short)?
            .abs()?
            .sum_all()?
            .to_scalar::<f32>()?,
        0.0
    );
    Ok(())
}

/// One backward pass of a simple loss gives every trainable tensor a non-zero gradient.
#[test]
fn every_parameter_gets_a_gradient() -> Result<()> {
    let cfg = tiny_cfg();
    let map = VarMap::new();
    let enc = BiMamba2Encoder::new(&cfg, seeded_vb(&map, 5))?;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let xs = randn(&mut rng, &[2, 7, 8]);
    let target = randn(&mut rng, &[2, 7, 8]);
    let mask = mask_from_lengths(&[7, 5], 7);
    let loss = (enc.forward_t(&xs, &mask, true)? * target)?.sum_all()?;
    let grads = loss.backward()?;
    let named: HashMap<String, Var> = map.data().lock().expect("lock").clone();
    assert_eq!(named.len(), map.all_vars().len());
    for (name, var) in named {
        let g = grads
            .get(&var)
            .ok_or_else(|| candle_core::Error::Msg(format!("no grad for {name}")))?;
        let norm = g.sqr()?.sum_all()?.to_scalar::<f32>()?;
        assert!(
            norm > 0.0 && norm.is_finite(),
            "{name}: gradient norm {norm}"
        );
    }
    Ok(())
}

/// AdamW fits a toy target that needs both directions (each token's target is the mean
/// of feature 0 over the whole sequence): the loss halves within 60 steps.
#[test]
fn toy_regression_loss_decreases() -> Result<()> {
    let cfg = Mamba2Config {
        n_layers: 1,
        ..tiny_cfg()
    };
    let map = VarMap::new();
    let vb = seeded_vb(&map, 6);
    let enc = BiMamba2Encoder::new(&cfg, vb.pp("enc"))?;
    let head = candle_nn::linear(8, 1, vb.pp("head"))?;
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let xs = randn(&mut rng, &[16, 10, 8]);
    let mask = Tensor::ones((16, 10), DType::F32, &Device::Cpu)?;
    let target = xs
        .narrow(2, 0, 1)?
        .mean_keepdim(1)?
        .broadcast_as((16, 10, 1))?
        .contiguous()?;
    let params = candle_nn::ParamsAdamW {
        lr: 1e-2,
        weight_decay: 0.0,
        ..Default::default()
    };
    let mut opt = candle_nn::AdamW::new(map.all_vars(), params)?;
    let mut losses = Vec::new();
    for _ in 0..60 {
        let pred = head.forward(&enc.forward_t(&xs, &mask, true)?)?;
        let loss = (pred - &target)?.sqr()?.mean_all()?;
        losses.push(loss.to_scalar::<f32>()?);
        opt.backward_step(&loss)?;
    }
    let (first, last) = (losses[0], losses[losses.len() - 1]);
    assert!(last < 0.5 * first, "loss {first} -> {last}");
    Ok(())
}

/// Dropout acts only in training, and the same seed gives the same masks.
#[test]
fn dropout_is_seeded_and_train_only() -> Result<()> {
    let cfg = tiny_cfg();
    let map = VarMap::new();
    let vb = seeded_vb(&map, 7);
    let enc_a = BiMamba2Encoder::new(&cfg, vb.clone())?.with_dropout(0.3, 11)?;
    let enc_b = BiMamba2Encoder::new(&cfg, vb)?.with_dropout(0.3, 11)?;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let xs = randn(&mut rng, &[2, 6, 8]);
    let mask = mask_from_lengths(&[6, 6], 6);
    let eval = enc_a.forward_t(&xs, &mask, false)?;
    let train_a = enc_a.forward_t(&xs, &mask, true)?;
    let train_b = enc_b.forward_t(&xs, &mask, true)?;
    assert_eq!(
        max_abs_diff(&eval, &enc_b.forward_t(&xs, &mask, false)?),
        0.0
    );
    assert_eq!(max_abs_diff(&train_a, &train_b), 0.0);
    assert!(max_abs_diff(&train_a, &eval) > 1e-3);
    assert!(BiMamba2Encoder::new(&cfg, seeded_vb(&VarMap::new(), 1))?
        .with_dropout(1.0, 0)
        .is_err());
    Ok(())
}

/// Invalid sizes are reported as errors, not panics.
#[test]
fn invalid_config_is_rejected() {
    let bad = Mamba2Config {
        headdim: 5,
        ..tiny_cfg()
    };
    assert!(BiMamba2Encoder::new(&bad, seeded_vb(&VarMap::new(), 1)).is_err());
    let zero_chunk = Mamba2Config {
        chunk_size: 0,
        ..tiny_cfg()
    };
    assert!(BiMamba2Encoder::new(&zero_chunk, seeded_vb(&VarMap::new(), 1)).is_err());
}

/// in_proj and out_proj start as mamba_ssm's: nn.Linear's U(±1/sqrt(fan_in)), out_proj
/// divided by sqrt(n_layers). Checked on the bound (never exceeded, nearly reached) and
/// on the standard deviation of a uniform draw, bound/sqrt(3).
#[test]
fn projections_start_as_mamba_ssm() -> Result<()> {
    let cfg = Mamba2Config {
        d_model: 32,
        n_layers: 4,
        ..tiny_cfg()
    };
    let map = VarMap::new();
    BiMamba2Encoder::new(&cfg, seeded_vb(&map, 11))?;
    let vars = map.data().lock().expect("var map lock").clone();
    let in_bound = 1.0 / (cfg.d_model as f64).sqrt();
    let out_bound = 1.0 / (cfg.d_inner() as f64).sqrt() / (cfg.n_layers as f64).sqrt();
    let mut checked = 0;
    for (name, var) in &vars {
        let bound = if name.ends_with("in_proj.weight") {
            in_bound
        } else if name.ends_with("out_proj.weight") {
            out_bound
        } else {
            continue;
        };
        let v: Vec<f32> = var.as_tensor().flatten_all()?.to_vec1()?;
        let max = v.iter().fold(0f64, |m, &x| m.max(f64::from(x).abs()));
        assert!(
            max <= bound && max > 0.95 * bound,
            "{name}: max {max}, bound {bound}"
        );
        let n = v.len() as f64;
        let sd = (v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / n).sqrt();
        let expected = bound / 3f64.sqrt();
        assert!(
            (sd - expected).abs() < 0.1 * expected,
            "{name}: std {sd} vs {expected}"
        );
        checked += 1;
    }
    // Two projections in each of two directions per layer.
    assert_eq!(checked, 4 * cfg.n_layers);
    Ok(())
}
