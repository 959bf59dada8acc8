//! Fine-tuning throughput of the three candle models, for `benches/train_vs_torch.sh`.
//!
//! Times what one fine-tuning step of the trainer does (`finetune.rs` + `trainer.rs`):
//! forward with dropout, cross entropy on the `<cls>` head, backward, global gradient-norm
//! clipping and the AdamW update, on one synthetic batch with the config's shapes
//! (`batch_size` cells × `max_seq_len` tokens, `<cls>` first, no padding). Prints one JSON
//! line per model: cells/s, tokens/s, parameter count, threads, and the process's peak RSS
//! (`VmHWM`; run one model per process to get each model's own peak).
//!
//! `cargo run --release --example train_throughput -- [--config configs/quick.toml]
//! [--model scgpt|geneformer|scmamba2|all] [--steps 20] [--warmup 3] [--genes 1000]
//! [--classes 8]`

use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use scrobust::models::finetune::Classifier;
use scrobust::models::heads::{weighted_cross_entropy, ClsDecoder};
use scrobust::models::optim::{learning_rate, AdamW};
use scrobust::models::params::ParamStore;
use scrobust::models::{build_encoder, DataShape, ModelInput, ModelKind, TrainConfig};
use scrobust::tokenize::{Batch, CLS_ID, N_SPECIAL};
use std::time::Instant;

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

/// A kB field (`VmHWM`, `VmRSS`) of `/proc/self/status`, in MiB; `None` off Linux.
fn proc_status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// `batch` cells of `len` tokens: `<cls>` (value 0), then distinct random genes with bins
/// in `1..n_bins` (binned models) or 0 (rank encoding), and a random label each.
fn synthetic_batch(kind: ModelKind, cfg: &TrainConfig, genes: usize, classes: usize) -> Batch {
    let (b, l) = (cfg.train.batch_size, cfg.train.max_seq_len);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut gene_ids = Vec::with_capacity(b * l);
    let mut values = Vec::with_capacity(b * l);
    for _ in 0..b {
        gene_ids.push(CLS_ID);
        values.push(0.0);
        for g in rand::seq::index::sample(&mut rng, genes, l - 1) {
            gene_ids.push(N_SPECIAL + g as u32);
            let bin = rng.gen_range(1..cfg.train.n_bins.max(2)) as f32;
            values.push(if kind.uses_bins() { bin } else { 0.0 });
        }
    }
    Batch {
        batch_size: b,
        seq_len: l,
        gene_ids,
        values,
        attention_mask: vec![1; b * l],
        labels: Some((0..b).map(|_| rng.gen_range(0..classes as u32)).collect()),
    }
}

fn run(
    kind: ModelKind,
    cfg: &TrainConfig,
    genes: usize,
    classes: usize,
    steps: usize,
    warmup: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let device = Device::Cpu;
    let p = &cfg.train;
    let shape = DataShape {
        vocab_size: genes + N_SPECIAL as usize,
        max_len: p.max_seq_len,
    };
    let store = ParamStore::new(p.seed, &device);
    let encoder = build_encoder(kind, &cfg.models, shape, store.vb())?;
    let head = ClsDecoder::new(
        encoder.d_model(),
        p.n_layers_cls,
        classes,
        store.vb().pp("cls_head"),
    )?;
    let model = Classifier { encoder, head };
    let mut opt = AdamW::new(store.vars()?, p.weight_decay)?;
    let batch = synthetic_batch(kind, cfg, genes, classes);
    let labels = batch.labels.clone().unwrap_or_default();
    let total = warmup + steps;
    // Seconds spent in forward + loss, backward, and clip + AdamW over the timed steps.
    let mut phases = [0f64; 3];
    let mut t0 = Instant::now();
    for step in 0..total {
        if step == warmup {
            t0 = Instant::now();
            phases = [0.0; 3];
        }
        let t_fwd = Instant::now();
        // As FinetuneTask::loss + run_stage: the host → tensor copy is part of every step.
        model.encoder.reseed_dropout(step as u64);
        let input = ModelInput::from_batch(&batch, &device)?;
        let y = Tensor::from_slice(&labels, batch.batch_size, &device)?;
        let loss = weighted_cross_entropy(&model.logits(&input, true)?, &y, None)?;
        let value = loss.to_scalar::<f32>()?;
        if !value.is_finite() {
            return Err(format!("{}: loss {value} at step {step}", kind.as_str()).into());
        }
        let t_bwd = Instant::now();
        let grads = loss.backward()?;
        let t_opt = Instant::now();
        opt.step(&grads, learning_rate(p, step, total), p.grad_clip)?;
        phases[0] += (t_bwd - t_fwd).as_secs_f64();
        phases[1] += (t_opt - t_bwd).as_secs_f64();
        phases[2] += t_opt.elapsed().as_secs_f64();
    }
    let secs = t0.elapsed().as_secs_f64();
    let cells = (steps * p.batch_size) as f64;
    let predict_s = time_predict(&model, &batch, steps, warmup, &device)?;
    let json = serde_json::json!({
        "model": kind.as_str(),
        "framework": "candle",
        "cells_per_s": cells / secs,
        "tokens_per_s": cells * p.max_seq_len as f64 / secs,
        "step_s": secs / steps as f64,
        "forward_s": phases[0] / steps as f64,
        "backward_s": phases[1] / steps as f64,
        "optim_s": phases[2] / steps as f64,
        // Inference as the pipeline predicts: eval mode, softmax, argmax and max score.
        "predict_cells_per_s": p.batch_size as f64 / predict_s,
        "n_params": store.n_params()?,
        "threads": candle_core::utils::get_num_threads(),
        "batch": p.batch_size,
        "seq_len": p.max_seq_len,
        "steps": steps,
        "peak_rss_mib": proc_status_mib("VmHWM:"),
    });
    println!("{json}");
    Ok(())
}

/// Seconds per batch of [`Classifier::predict`] on `batch` (after `warmup` untimed calls).
fn time_predict(
    model: &Classifier,
    batch: &Batch,
    steps: usize,
    warmup: usize,
    device: &Device,
) -> Result<f64, Box<dyn std::error::Error>> {
    let mut t0 = Instant::now();
    for i in 0..warmup + steps {
        if i == warmup {
            t0 = Instant::now();
        }
        model.predict(batch, batch.batch_size, device)?;
    }
    Ok(t0.elapsed().as_secs_f64() / steps as f64)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // What the `scrobust` binary does, so the benchmark measures the shipped setting.
    scrobust::models::configure_cpu_runtime();
    let args: Vec<String> = std::env::args().collect();
    let cfg = TrainConfig::load(std::path::Path::new(&arg(
        &args,
        "--config",
        "configs/quick.toml",
    )))?;
    let steps: usize = arg(&args, "--steps", "20").parse()?;
    let warmup: usize = arg(&args, "--warmup", "3").parse()?;
    let genes: usize = arg(&args, "--genes", "1000").parse()?;
    let classes: usize = arg(&args, "--classes", "8").parse()?;
    if steps == 0 || classes == 0 || genes + 1 < cfg.train.max_seq_len {
        return Err("need --steps ≥ 1, --classes ≥ 1 and --genes ≥ max_seq_len − 1".into());
    }
    let model = arg(&args, "--model", "all");
    let kinds: Vec<ModelKind> = if model == "all" {
        ModelKind::ALL.to_vec()
    } else {
        vec![model.parse()?]
    };
    for kind in kinds {
        run(kind, &cfg, genes, classes, steps, warmup)?;
    }
    Ok(())
}
