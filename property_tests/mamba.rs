//! The chunked SSD scan of Mamba-2 equals the naive sequential recurrence for random
//! small shapes, including lengths that are not a multiple of the chunk size.

use candle_core::{Device, Tensor};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use scrobust::models::mamba2::{ssd_chunked, ssd_sequential};

fn uniform(rng: &mut ChaCha8Rng, shape: &[usize], lo: f32, hi: f32) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.gen_range(lo..hi)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).expect("shape matches data")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::cases(64)))]

    /// For any batch, length, heads, headdim, d_state and chunk size, the chunked scan
    /// agrees with the sequential recurrence to 1e-4 (relative to the output scale).
    #[test]
    fn ssd_chunked_equals_sequential(
        batch in 1usize..3,
        len in 1usize..30,
        heads in 1usize..4,
        headdim in 1usize..5,
        d_state in 1usize..6,
        chunk in 1usize..12,
        seed in any::<u64>(),
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let x = uniform(&mut rng, &[batch, len, heads, headdim], -1.0, 1.0);
        // dt·A ≤ 0 as in the model (A < 0, dt ≥ 0); −2 covers fast-decaying heads.
        let dt_a = uniform(&mut rng, &[batch, len, heads], -2.0, 0.0);
        let b = uniform(&mut rng, &[batch, len, d_state], -1.0, 1.0);
        let c = uniform(&mut rng, &[batch, len, d_state], -1.0, 1.0);
        let chunked = ssd_chunked(&x, &dt_a, &b, &c, chunk).expect("chunked scan");
        let sequential = ssd_sequential(&x, &dt_a, &b, &c).expect("sequential scan");
        prop_assert_eq!(chunked.dims(), sequential.dims());
        let got = chunked.flatten_all().and_then(|t| t.to_vec1::<f32>()).expect("f32");
        let want = sequential.flatten_all().and_then(|t| t.to_vec1::<f32>()).expect("f32");
        for (g, w) in got.iter().zip(&want) {
            prop_assert!((g - w).abs() <= 1e-4 * w.abs().max(1.0), "{} vs {}", g, w);
        }
    }
}
