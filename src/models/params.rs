//! A seeded parameter store for candle models.
//!
//! candle's `VarMap` initialises weights with the device RNG, which cannot be seeded on the
//! CPU (`Device::set_seed` bails there). [`ParamStore`] implements candle-nn's
//! `SimpleBackend` so that every `vb.get_with_hints(shape, name, init)` draws its values from
//! one explicit `ChaCha8Rng`: the same seed and the same construction order give the same
//! weights. Names follow the `vb.pp(..)` tree, so safetensors keys are predictable.

use crate::error::{Error, Result};
use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::init::{FanInOut, Init, NormalOrUniform};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

struct Inner {
    vars: Mutex<BTreeMap<String, Var>>,
    rng: Mutex<ChaCha8Rng>,
}

/// Trainable variables by name, created on first use from a seeded RNG. Cheap to clone
/// (shared handle).
#[derive(Clone)]
pub struct ParamStore {
    inner: Arc<Inner>,
    device: Device,
}

fn lock_err<T>(_: T) -> candle_core::Error {
    candle_core::Error::Msg("parameter store lock poisoned".into())
}

impl ParamStore {
    /// An empty store whose initial values are drawn from `ChaCha8Rng::seed_from_u64(seed)`.
    pub fn new(seed: u64, device: &Device) -> Self {
        Self {
            inner: Arc::new(Inner {
                vars: Mutex::new(BTreeMap::new()),
                rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
            }),
            device: device.clone(),
        }
    }

    /// A `VarBuilder` (f32) creating its variables in this store.
    pub fn vb(&self) -> VarBuilder<'static> {
        VarBuilder::from_backend(Box::new(self.clone()), DType::F32, self.device.clone())
    }

    /// The device the variables live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// All variables sorted by name (a fixed order makes reductions such as the gradient
    /// norm reproducible).
    pub fn vars(&self) -> Result<Vec<(String, Var)>> {
        let vars = self.inner.vars.lock().map_err(lock_err)?;
        Ok(vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    /// Total number of scalar parameters.
    pub fn n_params(&self) -> Result<usize> {
        Ok(self.vars()?.iter().map(|(_, v)| v.elem_count()).sum())
    }

    /// Number of scalar parameters whose name starts with `prefix`.
    pub fn n_params_under(&self, prefix: &str) -> Result<usize> {
        Ok(self
            .vars()?
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.elem_count())
            .sum())
    }

    /// Current values by name (copies of the tensors, detached from later updates).
    pub fn snapshot(&self) -> Result<HashMap<String, Tensor>> {
        self.vars()?
            .into_iter()
            .map(|(k, v)| Ok((k, v.as_tensor().copy()?)))
            .collect()
    }

    /// Overwrite variables with the tensors of the same name in `values`. Names in `values`
    /// that are not in the store are ignored; a shape mismatch is an error. Returns how many
    /// variables were set.
    pub fn assign_from(&self, values: &HashMap<String, Tensor>) -> Result<usize> {
        let mut n = 0;
        for (name, var) in self.vars()? {
            if let Some(t) = values.get(&name) {
                if t.dims() != var.dims() {
                    return Err(Error::Model(format!(
                        "parameter '{name}': stored shape {:?} does not match the model's {:?}",
                        t.dims(),
                        var.dims()
                    )));
                }
                var.set(&t.to_device(&self.device)?.to_dtype(var.dtype())?)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Write all variables to a safetensors file atomically (temporary file, then rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        save_tensors(&self.snapshot()?, path)
    }
}

/// Write named tensors to `path` as safetensors, atomically.
pub fn save_tensors(tensors: &HashMap<String, Tensor>, path: &Path) -> Result<()> {
    let tmp = path.with_extension("safetensors.tmp");
    candle_core::safetensors::save(tensors, &tmp)
        .map_err(|e| Error::Model(format!("{}: cannot write safetensors: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Read all tensors of a safetensors file onto `device`.
pub fn load_tensors(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    if !path.exists() {
        return Err(Error::FileNotFound {
            path: path.to_path_buf(),
        });
    }
    candle_core::safetensors::load(path, device)
        .map_err(|e| Error::Model(format!("{}: cannot read safetensors: {e}", path.display())))
}

/// Draw `n` values for an initializer from `rng` (same formulas as candle-nn's `Init::var`).
fn draw(init: Init, shape: &Shape, rng: &mut ChaCha8Rng) -> candle_core::Result<Vec<f32>> {
    let n = shape.elem_count();
    let normal = |mean: f64, std: f64, rng: &mut ChaCha8Rng| -> candle_core::Result<Vec<f32>> {
        let dist = Normal::new(mean, std.max(1e-12))
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        Ok((0..n).map(|_| dist.sample(rng) as f32).collect())
    };
    let uniform = |lo: f64, up: f64, rng: &mut ChaCha8Rng| -> Vec<f32> {
        (0..n)
            .map(|_| (lo + (up - lo) * rng.gen::<f64>()) as f32)
            .collect()
    };
    match init {
        Init::Const(c) => Ok(vec![c as f32; n]),
        Init::Randn { mean, stdev } => normal(mean, stdev, rng),
        Init::Uniform { lo, up } => Ok(uniform(lo, up, rng)),
        Init::Kaiming {
            dist,
            fan,
            non_linearity,
        } => {
            let fan = match fan {
                FanInOut::FanIn => FanInOut::FanIn.for_shape(shape),
                FanInOut::FanOut => FanInOut::FanOut.for_shape(shape),
            };
            let std = non_linearity.gain() / (fan.max(1) as f64).sqrt();
            match dist {
                NormalOrUniform::Uniform => {
                    let bound = 3f64.sqrt() * std;
                    Ok(uniform(-bound, bound, rng))
                }
                NormalOrUniform::Normal => normal(0.0, std, rng),
            }
        }
    }
}

impl SimpleBackend for ParamStore {
    fn get(
        &self,
        s: Shape,
        name: &str,
        h: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let mut vars = self.inner.vars.lock().map_err(lock_err)?;
        if let Some(v) = vars.get(name) {
            if v.shape() != &s {
                candle_core::bail!(
                    "parameter '{name}' exists with shape {:?}, asked for {:?}",
                    v.dims(),
                    s.dims()
                );
            }
            return Ok(v.as_tensor().clone());
        }
        let values = {
            let mut rng = self.inner.rng.lock().map_err(lock_err)?;
            draw(h, &s, &mut rng)?
        };
        let t = Tensor::from_vec(values, s, dev)?.to_dtype(dtype)?;
        let var = Var::from_tensor(&t)?;
        let out = var.as_tensor().clone();
        vars.insert(name.to_string(), var);
        Ok(out)
    }

    fn get_unchecked(
        &self,
        name: &str,
        _dtype: DType,
        _dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let vars = self.inner.vars.lock().map_err(lock_err)?;
        vars.get(name)
            .map(|v| v.as_tensor().clone())
            .ok_or_else(|| candle_core::Error::Msg(format!("parameter '{name}' not in store")))
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.inner
            .vars
            .lock()
            .map(|v| v.contains_key(name))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same seed gives identical initial weights; another seed gives different ones.
    #[test]
    fn seeded_init_is_reproducible() {
        let make = |seed| -> Vec<f32> {
            let store = ParamStore::new(seed, &Device::Cpu);
            let lin = candle_nn::linear(4, 3, store.vb().pp("l")).unwrap();
            lin.weight().flatten_all().unwrap().to_vec1().unwrap()
        };
        assert_eq!(make(1), make(1));
        assert_ne!(make(1), make(2));
    }

    /// Saving and loading a store restores every variable exactly.
    #[test]
    fn save_and_assign_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let a = ParamStore::new(3, &Device::Cpu);
        candle_nn::linear(5, 2, a.vb().pp("x")).unwrap();
        a.save(&path).unwrap();
        let b = ParamStore::new(4, &Device::Cpu);
        candle_nn::linear(5, 2, b.vb().pp("x")).unwrap();
        let n = b
            .assign_from(&load_tensors(&path, &Device::Cpu).unwrap())
            .unwrap();
        assert_eq!(n, 2);
        let (sa, sb) = (a.snapshot().unwrap(), b.snapshot().unwrap());
        for (k, t) in &sa {
            let x: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
            let y: Vec<f32> = sb[k].flatten_all().unwrap().to_vec1().unwrap();
            assert_eq!(x, y, "{k}");
        }
        assert_eq!(a.n_params().unwrap(), 12);
    }
}
