//! Times one training step (forward + backward + AdamW update) of the bidirectional
//! Mamba-2 encoder at the size of the PyTorch pilot in docs/design.md: batch 32 × 257
//! tokens, d_model 128, 4 layers (PyTorch CPU, 2 threads, chunk 32: 1.24 s per step).
//!
//! Run: `cargo run --example mamba_speed` (optional args: chunk sizes, e.g. `32 64`).

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{Optimizer, VarMap};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use scrobust::models::mamba2::{seeded_var_builder, BiMamba2Encoder, Mamba2Config};

fn main() -> candle_core::Result<()> {
    let chunks: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let chunks = if chunks.is_empty() {
        vec![32, 64]
    } else {
        chunks
    };
    let (batch, len, d_model) = (32, 257, 128);
    let dev = Device::Cpu;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let normal = Normal::new(0f32, 1.0).map_err(candle_core::Error::wrap)?;
    let xs: Vec<f32> = (0..batch * len * d_model)
        .map(|_| normal.sample(&mut rng))
        .collect();
    let xs = Tensor::from_vec(xs, (batch, len, d_model), &dev)?;
    let mask = Tensor::ones((batch, len), DType::F32, &dev)?;
    for chunk_size in chunks {
        for (d_state, headdim) in [(64, 64)] {
            let cfg = Mamba2Config {
                d_model,
                n_layers: 4,
                d_state,
                headdim,
                expand: 2,
                d_conv: 4,
                chunk_size,
            };
            let map = VarMap::new();
            let enc = BiMamba2Encoder::new(&cfg, seeded_var_builder(&map, 0, DType::F32, &dev))?;
            let mut opt = candle_nn::AdamW::new_lr(map.all_vars(), 1e-3)?;
            let mut times = Vec::new();
            let mut forward = Vec::new();
            for _ in 0..4 {
                let t0 = Instant::now();
                let loss = enc.forward_t(&xs, &mask, true)?.sqr()?.mean_all()?;
                forward.push(t0.elapsed().as_secs_f64());
                opt.backward_step(&loss)?;
                times.push(t0.elapsed().as_secs_f64());
            }
            // The first step includes allocation warm-up; report the best of the rest.
            let best = times[1..].iter().cloned().fold(f64::INFINITY, f64::min);
            println!(
                "chunk {chunk_size:3} d_state {d_state:2} headdim {headdim:2} params {:7}: \
                 step {best:.3} s ({:.0} tokens/s; forward {:.3} s), first {:.3} s",
                cfg.n_params(),
                (batch * len) as f64 / best,
                forward[1..].iter().cloned().fold(f64::INFINITY, f64::min),
                times[0]
            );
        }
    }
    Ok(())
}
