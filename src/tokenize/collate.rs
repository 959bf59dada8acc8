//! Padding, truncation and special tokens in one place: tokenized cells → [`Batch`].

/// A padded batch of tokenized cells, row-major `batch_size × seq_len`, ready for candle.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Number of cells.
    pub batch_size: usize,
    /// Tokens per cell after padding.
    pub seq_len: usize,
    /// Gene (or special) token ids, `batch_size × seq_len`.
    pub gene_ids: Vec<u32>,
    /// Token values (bin index as a float for binned models, 0 for rank-encoded ones;
    /// the pad value at padding), `batch_size × seq_len`.
    pub values: Vec<f32>,
    /// 1 for a real token, 0 for padding, `batch_size × seq_len`.
    pub attention_mask: Vec<u8>,
    /// Class index of each cell, when known.
    pub labels: Option<Vec<u32>>,
}
