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

use super::vocab::{CLS_ID, EOS_ID, PAD_ID};
use super::TokenizedCell;
use crate::error::{Error, Result};

/// How cells become a [`Batch`]: sequence length, special tokens and padding.
///
/// scGPT (`scgpt/tokenizer/gene_tokenizer.py`: `tokenize_batch(append_cls=True)`,
/// `pad_batch`) prepends `<cls>` with value 0, pads with `<pad>` and value −2, and pads to
/// the longest cell of the batch capped at `max_seq_len`. Geneformer
/// (`geneformer/tokenizer.py`) V2 wraps the genes in `<cls>` … `<eos>`; V1 has no special
/// tokens; its collator pads with `<pad>` to the longest cell.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CollateSpec {
    /// Most tokens per cell, special tokens included; longer cells keep their first genes.
    pub max_len: usize,
    /// Prepend `<cls>`.
    pub prepend_cls: bool,
    /// Token id of `<cls>` (this crate's vocabulary: [`CLS_ID`]; a checkpoint's own).
    pub cls_id: u32,
    /// Value given to `<cls>` (scGPT: 0).
    pub cls_value: f32,
    /// Append `<eos>` after the (truncated) genes.
    pub append_eos: bool,
    /// Token id of `<eos>`.
    pub eos_id: u32,
    /// Value given to `<eos>`.
    pub eos_value: f32,
    /// Token id of padding.
    pub pad_id: u32,
    /// Value at padding (scGPT: −2).
    pub pad_value: f32,
    /// Pad every batch to `max_len` (true) or to its longest cell (false, as scGPT).
    pub pad_to_max_len: bool,
}

impl CollateSpec {
    /// scGPT's annotation setting: `<cls>` (value 0) first, pad value −2, pad to the
    /// longest cell; `max_len` counts `<cls>` (scGPT's `max_seq_len`, 3001 in the tutorial).
    pub fn scgpt(max_len: usize) -> Self {
        Self {
            max_len,
            prepend_cls: true,
            cls_id: CLS_ID,
            cls_value: 0.0,
            append_eos: false,
            eos_id: EOS_ID,
            eos_value: 0.0,
            pad_id: PAD_ID,
            pad_value: -2.0,
            pad_to_max_len: false,
        }
    }

    /// Geneformer: with `special_tokens` (V2) `<cls>` … `<eos>`, else (V1) genes only;
    /// values are all 0 (rank models read positions, not values).
    pub fn geneformer(max_len: usize, special_tokens: bool) -> Self {
        Self {
            max_len,
            prepend_cls: special_tokens,
            cls_id: CLS_ID,
            cls_value: 0.0,
            append_eos: special_tokens,
            eos_id: EOS_ID,
            eos_value: 0.0,
            pad_id: PAD_ID,
            pad_value: 0.0,
            pad_to_max_len: false,
        }
    }

    /// Number of special tokens added per cell.
    pub fn n_special(&self) -> usize {
        self.prepend_cls as usize + self.append_eos as usize
    }

    /// Most genes that fit in one cell's sequence.
    pub fn max_genes(&self) -> usize {
        self.max_len.saturating_sub(self.n_special())
    }
}

/// Pad, truncate and add special tokens: cells → one [`Batch`]. `labels`, when given,
/// holds one class index per cell. Errors when `labels` or a cell's values do not match
/// the number of cells / genes, or when `max_len` leaves no room for a gene.
pub fn collate(
    cells: &[&TokenizedCell],
    labels: Option<&[u32]>,
    spec: &CollateSpec,
) -> Result<Batch> {
    if spec.max_genes() == 0 {
        return Err(Error::param(
            "max_len",
            format!(
                "{} leaves no room for genes after {} special token(s)",
                spec.max_len,
                spec.n_special()
            ),
        ));
    }
    if let Some(l) = labels {
        if l.len() != cells.len() {
            return Err(Error::param(
                "labels",
                format!("{} labels for {} cells", l.len(), cells.len()),
            ));
        }
    }
    if let Some((i, c)) = cells
        .iter()
        .enumerate()
        .find(|(_, c)| c.gene_ids.len() != c.values.len())
    {
        return Err(Error::param(
            "cells",
            format!(
                "cell {i} has {} gene ids but {} values",
                c.gene_ids.len(),
                c.values.len()
            ),
        ));
    }
    let longest = cells
        .iter()
        .map(|c| c.gene_ids.len().min(spec.max_genes()))
        .max()
        .unwrap_or(0);
    let seq_len = if spec.pad_to_max_len {
        spec.max_len
    } else {
        longest + spec.n_special()
    };
    let n = cells.len() * seq_len;
    let mut gene_ids = Vec::with_capacity(n);
    let mut values = Vec::with_capacity(n);
    let mut attention_mask = Vec::with_capacity(n);
    for cell in cells {
        let start = gene_ids.len();
        if spec.prepend_cls {
            gene_ids.push(spec.cls_id);
            values.push(spec.cls_value);
        }
        let k = cell.gene_ids.len().min(spec.max_genes());
        gene_ids.extend_from_slice(&cell.gene_ids[..k]);
        values.extend_from_slice(&cell.values[..k]);
        if spec.append_eos {
            gene_ids.push(spec.eos_id);
            values.push(spec.eos_value);
        }
        let used = gene_ids.len() - start;
        attention_mask.extend(std::iter::repeat_n(1u8, used));
        gene_ids.extend(std::iter::repeat_n(spec.pad_id, seq_len - used));
        values.extend(std::iter::repeat_n(spec.pad_value, seq_len - used));
        attention_mask.extend(std::iter::repeat_n(0u8, seq_len - used));
    }
    Ok(Batch {
        batch_size: cells.len(),
        seq_len,
        gene_ids,
        values,
        attention_mask,
        labels: labels.map(<[u32]>::to_vec),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(ids: &[u32], vals: &[f32]) -> TokenizedCell {
        TokenizedCell {
            gene_ids: ids.to_vec(),
            values: vals.to_vec(),
        }
    }

    /// scGPT layout: <cls> with value 0 first, pad to the longest cell with pad value -2.
    #[test]
    fn scgpt_layout() {
        let a = cell(&[10, 11, 12], &[1.0, 2.0, 3.0]);
        let b = cell(&[20], &[5.0]);
        let batch = collate(&[&a, &b], Some(&[1, 0]), &CollateSpec::scgpt(100)).unwrap();
        assert_eq!(batch.seq_len, 4);
        assert_eq!(
            batch.gene_ids,
            vec![CLS_ID, 10, 11, 12, CLS_ID, 20, PAD_ID, PAD_ID]
        );
        assert_eq!(batch.values, vec![0.0, 1.0, 2.0, 3.0, 0.0, 5.0, -2.0, -2.0]);
        assert_eq!(batch.attention_mask, vec![1, 1, 1, 1, 1, 1, 0, 0]);
        assert_eq!(batch.labels, Some(vec![1, 0]));
    }

    /// Geneformer V2 truncates the genes, then wraps them in <cls> … <eos>; V1 adds nothing.
    #[test]
    fn geneformer_truncation_and_special_tokens() {
        let a = cell(&[10, 11, 12, 13], &[0.0; 4]);
        let v2 = collate(&[&a], None, &CollateSpec::geneformer(4, true)).unwrap();
        assert_eq!(v2.gene_ids, vec![CLS_ID, 10, 11, EOS_ID]);
        let v1 = collate(&[&a], None, &CollateSpec::geneformer(3, false)).unwrap();
        assert_eq!(v1.gene_ids, vec![10, 11, 12]);
        assert_eq!(v1.labels, None);
    }

    /// Fixed-length padding, and mismatched labels are an error.
    #[test]
    fn fixed_length_and_errors() {
        let a = cell(&[10], &[1.0]);
        let mut spec = CollateSpec::scgpt(5);
        spec.pad_to_max_len = true;
        let b = collate(&[&a], None, &spec).unwrap();
        assert_eq!(b.seq_len, 5);
        assert_eq!(b.attention_mask, vec![1, 1, 0, 0, 0]);
        assert!(collate(&[&a], Some(&[0, 1]), &spec).is_err());
        assert!(collate(&[&a], None, &CollateSpec::scgpt(1)).is_err());
    }
}
