//! AdamW (Loshchilov & Hutter 2019, decoupled weight decay), the learning-rate schedule
//! (linear warmup, then cosine or step decay) and global gradient-norm clipping.
//!
//! Written here rather than using `candle_nn::AdamW` because a resumable run must save and
//! restore the moment estimates, which candle keeps private; the update is the same as
//! candle's and PyTorch's `torch.optim.AdamW`.

use super::config::{Schedule, TrainParams};
use crate::error::Result;
use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use std::collections::HashMap;

/// Learning rate at `step` (0-based) of a stage of `total` steps.
pub fn learning_rate(p: &TrainParams, step: usize, total: usize) -> f64 {
    if p.warmup_steps > 0 && step < p.warmup_steps {
        return p.lr * (step + 1) as f64 / p.warmup_steps as f64;
    }
    match p.schedule {
        Schedule::Cosine => {
            let span = total.saturating_sub(p.warmup_steps).max(1) as f64;
            let t = ((step - p.warmup_steps.min(step)) as f64 / span).min(1.0);
            let floor = p.lr * p.min_lr_ratio;
            floor + (p.lr - floor) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
        }
        Schedule::Step => {
            let k = (step.saturating_sub(p.warmup_steps) / p.step_every.max(1)) as i32;
            p.lr * p.step_gamma.powi(k)
        }
    }
}

/// AdamW over named variables (β₁ 0.9, β₂ 0.999, ε 1e-8). Weight decay applies to tensors of
/// rank ≥ 2 only (not to biases and norm gains), as is usual for transformers.
pub struct AdamW {
    vars: Vec<(String, Var)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    step: usize,
    weight_decay: f64,
}

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

impl AdamW {
    /// An optimizer over `vars` (give them in a fixed order, e.g. `ParamStore::vars`).
    pub fn new(vars: Vec<(String, Var)>, weight_decay: f64) -> Result<Self> {
        let m = vars
            .iter()
            .map(|(_, v)| v.zeros_like())
            .collect::<candle_core::Result<Vec<_>>>()?;
        let v = vars
            .iter()
            .map(|(_, v)| v.zeros_like())
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            vars,
            m,
            v,
            step: 0,
            weight_decay,
        })
    }

    /// Updates taken so far.
    pub fn step_count(&self) -> usize {
        self.step
    }

    /// Clip the global gradient norm to `max_norm` (no-op when ≤ 0), then take one AdamW
    /// step at learning rate `lr`. Variables without a gradient are left unchanged.
    /// Returns the gradient norm before clipping.
    pub fn step(&mut self, grads: &GradStore, lr: f64, max_norm: f64) -> Result<f64> {
        let mut sq = 0f64;
        for (_, var) in &self.vars {
            if let Some(g) = grads.get(var.as_tensor()) {
                sq += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
            }
        }
        let norm = sq.sqrt();
        let clip = if max_norm > 0.0 && norm > max_norm {
            max_norm / (norm + 1e-6)
        } else {
            1.0
        };
        self.step += 1;
        let t = self.step as i32;
        let (bc1, bc2) = (1.0 - BETA1.powi(t), 1.0 - BETA2.powi(t));
        for (i, (_, var)) in self.vars.iter().enumerate() {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            let g = if clip < 1.0 { (g * clip)? } else { g.clone() };
            let m = ((&self.m[i] * BETA1)? + (&g * (1.0 - BETA1))?)?;
            let v = ((&self.v[i] * BETA2)? + (g.sqr()? * (1.0 - BETA2))?)?;
            // θ ← θ·(1 − lr·wd) − lr · m̂ / (sqrt(v̂) + ε)
            let decay = if var.rank() >= 2 {
                1.0 - lr * self.weight_decay
            } else {
                1.0
            };
            let update = ((&m / bc1)? / ((&v / bc2)?.sqrt()? + EPS)?)?;
            let theta = ((var.as_tensor() * decay)? - (update * lr)?)?;
            var.set(&theta)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(norm)
    }

    /// Moment estimates by name (`m.<name>`, `v.<name>`), for checkpoints.
    pub fn state(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for (i, (name, _)) in self.vars.iter().enumerate() {
            out.insert(format!("m.{name}"), self.m[i].clone());
            out.insert(format!("v.{name}"), self.v[i].clone());
        }
        out
    }

    /// Restore moment estimates saved by [`AdamW::state`] and the step count.
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>, step: usize) -> Result<()> {
        for (i, (name, var)) in self.vars.iter().enumerate() {
            for (prefix, slot) in [("m", &mut self.m[i]), ("v", &mut self.v[i])] {
                let key = format!("{prefix}.{name}");
                let t = state.get(&key).ok_or_else(|| {
                    crate::Error::Model(format!("optimizer state '{key}' missing from checkpoint"))
                })?;
                *slot = t.to_device(var.device())?;
            }
        }
        self.step = step;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::config::TrainConfig;
    use candle_core::Device;

    fn params() -> TrainParams {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/smoke.toml");
        TrainConfig::load(&path).unwrap().train
    }

    /// Warmup rises linearly to `lr`; cosine decays to the floor; step decay multiplies.
    #[test]
    fn schedule_shapes() {
        let mut p = params();
        p.lr = 1.0;
        p.warmup_steps = 4;
        p.min_lr_ratio = 0.1;
        p.schedule = Schedule::Cosine;
        assert!((learning_rate(&p, 0, 20) - 0.25).abs() < 1e-12);
        assert!((learning_rate(&p, 3, 20) - 1.0).abs() < 1e-12);
        assert!((learning_rate(&p, 4, 20) - 1.0).abs() < 1e-12);
        assert!((learning_rate(&p, 20, 20) - 0.1).abs() < 1e-12);
        p.schedule = Schedule::Step;
        p.step_every = 5;
        p.step_gamma = 0.5;
        assert!((learning_rate(&p, 8, 20) - 1.0).abs() < 1e-12);
        assert!((learning_rate(&p, 9, 20) - 0.5).abs() < 1e-12);
    }

    /// One AdamW step matches PyTorch on a scalar: with g = 2, lr 0.1, wd 0 the first step
    /// moves θ by −lr·sign(g) (m̂/sqrt(v̂) = 1); clipping at 1 leaves the direction.
    #[test]
    fn adamw_first_step() {
        let var = Var::new(&[[1f32, 1.0]], &Device::Cpu).unwrap();
        let loss = (var.as_tensor() * 2.0).unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        let mut opt = AdamW::new(vec![("w".into(), var.clone())], 0.0).unwrap();
        let norm = opt.step(&grads, 0.1, 1.0).unwrap();
        assert!((norm - 8f64.sqrt()).abs() < 1e-6);
        let w: Vec<f32> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        // torch.optim.AdamW([p], lr=0.1, weight_decay=0) after one step on grad 2 → 0.9
        for x in w {
            assert!((x - 0.9).abs() < 1e-5, "{x}");
        }
    }
}
