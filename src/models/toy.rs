//! Test fixtures: a learnable toy data set of collated cells and tiny model configs.

use super::config::TrainConfig;
use super::DataShape;
use crate::tokenize::collate::Batch;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Token ids below this are special (`<pad>` 0, `<cls>` 1, ...).
pub const FIRST_GENE: u32 = 4;
/// Toy vocabulary size.
pub const VOCAB: usize = 24;
/// Tokens per toy cell, `<cls>` included.
pub const SEQ: usize = 10;

/// `n` toy cells of two classes: class 0 expresses genes 4..14 with high bins, class 1
/// genes 14..24; each cell has 5–9 genes (the rest is padding with value −2).
pub fn toy_cells(n: usize, seed: u64) -> Batch {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut b = Batch {
        batch_size: n,
        seq_len: SEQ,
        gene_ids: Vec::new(),
        values: Vec::new(),
        attention_mask: Vec::new(),
        labels: Some(Vec::new()),
    };
    for i in 0..n {
        let class = (i % 2) as u32;
        let n_genes = rng.gen_range(5..SEQ);
        b.gene_ids.push(1);
        b.values.push(0.0);
        b.attention_mask.push(1);
        for _ in 0..n_genes {
            let own = rng.gen_bool(0.8);
            let base = if (class == 0) == own {
                FIRST_GENE
            } else {
                FIRST_GENE + 10
            };
            b.gene_ids.push(base + rng.gen_range(0..10));
            b.values.push(if own {
                rng.gen_range(30..51) as f32
            } else {
                rng.gen_range(1..20) as f32
            });
            b.attention_mask.push(1);
        }
        for _ in n_genes + 1..SEQ {
            b.gene_ids.push(0);
            b.values.push(-2.0);
            b.attention_mask.push(0);
        }
        if let Some(l) = b.labels.as_mut() {
            l.push(class);
        }
    }
    b
}

/// The smoke profile (tiny models).
pub fn smoke_config() -> TrainConfig {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/smoke.toml");
    match TrainConfig::load(&path) {
        Ok(c) => c,
        Err(e) => panic!("configs/smoke.toml: {e}"),
    }
}

/// Table sizes of the toy data.
pub fn toy_shape() -> DataShape {
    DataShape {
        vocab_size: VOCAB,
        max_len: SEQ,
    }
}

/// Largest absolute element-wise difference of two tensors of one shape.
pub fn max_abs_diff(a: &candle_core::Tensor, b: &candle_core::Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b)
        .and_then(|d| d.abs())
        .and_then(|d| d.flatten_all())
        .and_then(|d| d.max(0))
        .and_then(|d| d.to_scalar())
        .unwrap()
}
