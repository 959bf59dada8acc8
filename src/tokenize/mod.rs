//! Tokenizers: gene vocabulary, scGPT binning, Geneformer rank-value encoding, sequence
//! selection, collation into model batches, and information-loss measures.
//!
//! Each tokenizer is a pure function of one cell's CSR row, its fitted state and an
//! explicit RNG; the data-set functions ([`tokenize_binned`], [`tokenize_rank`]) run cells
//! in parallel with rayon, read the CSR arrays in place (no dense copy) and give cell `i`
//! the RNG [`cell_rng`]`(seed, i)`, so results do not depend on the thread count.

pub mod binning;
pub mod collate;
pub mod info;
pub mod probe;
mod radix;
pub mod rank;
pub mod select;
pub mod vocab;

pub use binning::{tokenize_binned, BinningTokenizer, TieMode};
pub use collate::{collate, Batch, CollateSpec};
pub use rank::{tokenize_rank, FittedRank, RankTokenizerParams};
pub use select::{SelectionMode, SequenceSelection};
pub use vocab::{GeneMapping, GeneVocab, CLS_ID, EOS_ID, MASK_ID, N_SPECIAL, PAD_ID, UNKNOWN_GENE};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// One tokenized cell: gene token ids and their values (bin index as a float for binned
/// models, 0 for rank-encoded ones), without special tokens or padding.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TokenizedCell {
    /// Token id of each kept gene, in sequence order.
    pub gene_ids: Vec<u32>,
    /// Value of each kept gene.
    pub values: Vec<f32>,
}

impl TokenizedCell {
    /// Number of gene tokens.
    pub fn len(&self) -> usize {
        self.gene_ids.len()
    }

    /// True when the cell has no gene token (an all-zero cell).
    pub fn is_empty(&self) -> bool {
        self.gene_ids.is_empty()
    }
}

/// The RNG of cell `cell` for a run seeded with `seed`: ChaCha8 seeded from `seed`, on
/// stream `cell`. Independent streams per cell make parallel results reproducible.
pub fn cell_rng(seed: u64, cell: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(cell as u64);
    rng
}
