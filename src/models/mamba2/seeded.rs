//! A `VarBuilder` whose initial values come from a seeded ChaCha8 RNG.
//!
//! candle 0.11's CPU device cannot be seeded (`Device::set_seed` fails and `Init` draws
//! from a thread RNG), so a `VarMap`-backed model would start from different weights on
//! every run. This backend honours the same `Init` hints as `VarMap` (constant, uniform,
//! normal, Kaiming with candle's fan and gain rules) but draws them from one seeded
//! stream, and stores the variables in the given `VarMap` for the optimiser.

use std::sync::Mutex;

use candle_core::{DType, Device, Result, Shape, Tensor, Var};
use candle_nn::init::NormalOrUniform;
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

struct SeededBackend {
    map: VarMap,
    rng: Mutex<ChaCha8Rng>,
}

impl SeededBackend {
    /// Draws `count` values for `init` from the seeded stream.
    fn draw(&self, init: Init, shape: &Shape) -> Result<Vec<f64>> {
        let mut rng = self
            .rng
            .lock()
            .map_err(|_| candle_core::Error::Msg("init RNG lock poisoned".into()))?;
        let count = shape.elem_count();
        let normal = |rng: &mut ChaCha8Rng, mean: f64, std: f64| -> Result<Vec<f64>> {
            let dist = Normal::new(mean, std).map_err(candle_core::Error::wrap)?;
            Ok((0..count).map(|_| dist.sample(rng)).collect())
        };
        match init {
            Init::Const(v) => Ok(vec![v; count]),
            Init::Uniform { lo, up } => Ok((0..count).map(|_| rng.gen_range(lo..up)).collect()),
            Init::Randn { mean, stdev } => normal(&mut rng, mean, stdev),
            Init::Kaiming {
                dist,
                fan,
                non_linearity,
            } => {
                let std = non_linearity.gain() / (fan.for_shape(shape) as f64).sqrt();
                match dist {
                    NormalOrUniform::Normal => normal(&mut rng, 0.0, std),
                    NormalOrUniform::Uniform => {
                        let bound = 3f64.sqrt() * std;
                        Ok((0..count).map(|_| rng.gen_range(-bound..bound)).collect())
                    }
                }
            }
        }
    }
}

impl SimpleBackend for SeededBackend {
    fn get(&self, s: Shape, name: &str, h: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        // Look up first, without holding the map's lock while drawing.
        let existing = {
            let data = self
                .map
                .data()
                .lock()
                .map_err(|_| candle_core::Error::Msg("var map lock poisoned".into()))?;
            data.get(name).map(|v| v.as_tensor().clone())
        };
        if let Some(t) = existing {
            if t.shape() != &s {
                candle_core::bail!("variable {name} has shape {:?}, asked for {s:?}", t.dims());
            }
            return Ok(t);
        }
        let values = self.draw(h, &s)?;
        let var = Var::from_tensor(&Tensor::from_vec(values, s, dev)?.to_dtype(dtype)?)?;
        let tensor = var.as_tensor().clone();
        self.map
            .data()
            .lock()
            .map_err(|_| candle_core::Error::Msg("var map lock poisoned".into()))?
            .insert(name.to_string(), var);
        Ok(tensor)
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _dev: &Device) -> Result<Tensor> {
        candle_core::bail!("get_unchecked({name}): a seeded VarMap needs a shape and an init")
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.map
            .data()
            .lock()
            .map(|d| d.contains_key(name))
            .unwrap_or(false)
    }
}

/// A `VarBuilder` that creates missing variables in `map` from a ChaCha8 stream seeded
/// with `seed` (same seed and same build order → same weights); existing ones are reused.
pub fn seeded_var_builder(
    map: &VarMap,
    seed: u64,
    dtype: DType,
    device: &Device,
) -> VarBuilder<'static> {
    let backend = SeededBackend {
        map: map.clone(),
        rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
    };
    VarBuilder::from_backend(Box::new(backend), dtype, device.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same seed gives the same weights, another seed different ones, and a second
    /// request for a name returns the stored variable.
    #[test]
    fn same_seed_same_weights() -> Result<()> {
        let draw = |seed| -> Result<(VarMap, Vec<f32>)> {
            let map = VarMap::new();
            let vb = seeded_var_builder(&map, seed, DType::F32, &Device::Cpu);
            let lin = candle_nn::linear(4, 3, vb.pp("lin"))?;
            let w = lin.weight().flatten_all()?.to_vec1::<f32>()?;
            Ok((map, w))
        };
        let (map, a) = draw(9)?;
        assert_eq!(a, draw(9)?.1);
        assert_ne!(a, draw(10)?.1);
        let vb = seeded_var_builder(&map, 123, DType::F32, &Device::Cpu);
        let again = vb.get_with_hints((3, 4), "lin.weight", Init::Const(0.0))?;
        assert_eq!(again.flatten_all()?.to_vec1::<f32>()?, a);
        assert!(vb
            .get_with_hints((4, 4), "lin.weight", Init::Const(0.0))
            .is_err());
        Ok(())
    }
}
