//! Gene vocabulary: gene name ↔ token id, with reserved special tokens.
//!
//! scGPT (`scgpt/tokenizer/gene_tokenizer.py`, `GeneVocab`) and Geneformer
//! (`geneformer/tokenizer.py`, `token_dictionary`) both map gene names to integer ids and
//! reserve a few ids for `<pad>`, `<cls>`, `<mask>` and `<eos>`/`<eoc>`. Here the special
//! tokens always take ids 0–3 ([`PAD_ID`], [`CLS_ID`], [`MASK_ID`], [`EOS_ID`]) and genes
//! follow in reference order, so every model and tokenizer agrees on them without
//! passing a vocabulary around.
//!
//! The vocabulary is built from the reference genes only. Mapping query genes onto it
//! returns a [`GeneMapping`] that counts and names the genes the vocabulary does not
//! know; such columns carry [`UNKNOWN_GENE`] and the tokenizers skip them.

use crate::error::{Error, Result};
use std::collections::HashMap;

/// Padding token id.
pub const PAD_ID: u32 = 0;
/// Cell-summary token id (scGPT prepends it; Geneformer V2 starts with it).
pub const CLS_ID: u32 = 1;
/// Masked-value / masked-gene token id for masked modelling.
pub const MASK_ID: u32 = 2;
/// End-of-cell token id (Geneformer V2's `<eos>`, scGPT's `<eoc>`).
pub const EOS_ID: u32 = 3;
/// Number of reserved special tokens; gene ids start here.
pub const N_SPECIAL: u32 = 4;
/// Names of the special tokens, in id order.
pub const SPECIAL_TOKENS: [&str; 4] = ["<pad>", "<cls>", "<mask>", "<eos>"];
/// Marker in a column → token id table for a gene the vocabulary does not contain.
pub const UNKNOWN_GENE: u32 = u32::MAX;

/// Gene name ↔ id table with the special tokens at ids 0..4.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneVocab {
    tokens: Vec<String>,
    index: HashMap<String, u32>,
}

/// How a data set's genes map onto a vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneMapping {
    /// Token id of each column of the data set, [`UNKNOWN_GENE`] when not in the vocabulary.
    pub column_ids: Vec<u32>,
    /// Names of the genes not in the vocabulary, in column order.
    pub unknown: Vec<String>,
}

impl GeneMapping {
    /// Number of columns whose gene is not in the vocabulary.
    pub fn n_unknown(&self) -> usize {
        self.unknown.len()
    }

    /// Number of columns that map to a token.
    pub fn n_known(&self) -> usize {
        self.column_ids.len() - self.unknown.len()
    }

    /// One-line summary for logs: how many genes are unknown, and the first few.
    pub fn report(&self) -> String {
        if self.unknown.is_empty() {
            return format!("all {} genes are in the vocabulary", self.column_ids.len());
        }
        let shown: Vec<&str> = self.unknown.iter().take(5).map(String::as_str).collect();
        format!(
            "{} of {} genes are not in the vocabulary and are not tokenized (first: {})",
            self.unknown.len(),
            self.column_ids.len(),
            shown.join(", ")
        )
    }
}

impl GeneVocab {
    /// A vocabulary of the special tokens followed by `genes` (the reference genes), in
    /// order. Errors on an empty name, a duplicate name or a name equal to a special token.
    pub fn from_genes(genes: &[String]) -> Result<Self> {
        let mut tokens: Vec<String> = SPECIAL_TOKENS.iter().map(|s| s.to_string()).collect();
        let mut index: HashMap<String, u32> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        for (i, g) in genes.iter().enumerate() {
            if g.is_empty() {
                return Err(Error::invalid(
                    "gene vocabulary",
                    "var/_index",
                    format!("gene {i} has an empty name"),
                ));
            }
            if index.contains_key(g) {
                return Err(Error::invalid(
                    "gene vocabulary",
                    "var/_index",
                    format!("gene name '{g}' appears twice (or is a special token); gene names must be unique"),
                ));
            }
            index.insert(g.clone(), tokens.len() as u32);
            tokens.push(g.clone());
        }
        Ok(Self { tokens, index })
    }

    /// Number of tokens, special tokens included.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Always false: the special tokens are always present.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Number of genes (tokens minus special tokens).
    pub fn n_genes(&self) -> usize {
        self.tokens.len() - N_SPECIAL as usize
    }

    /// Id of a token (gene or special), if present.
    pub fn id(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }

    /// Name of token `id`, if in range.
    pub fn token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// Map a data set's gene names onto the vocabulary. Unknown genes are collected in
    /// [`GeneMapping::unknown`] so the caller can report them.
    pub fn map_genes(&self, genes: &[String]) -> GeneMapping {
        let mut unknown = Vec::new();
        let column_ids = genes
            .iter()
            .map(|g| match self.index.get(g) {
                Some(&id) if id >= N_SPECIAL => id,
                _ => {
                    unknown.push(g.clone());
                    UNKNOWN_GENE
                }
            })
            .collect();
        GeneMapping {
            column_ids,
            unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// Special tokens take ids 0..4 and genes follow in reference order.
    #[test]
    fn special_tokens_first_then_genes() {
        let v = GeneVocab::from_genes(&names(&["CD3E", "MS4A1"])).unwrap();
        assert_eq!(v.id("<pad>"), Some(PAD_ID));
        assert_eq!(v.id("<cls>"), Some(CLS_ID));
        assert_eq!(v.id("<mask>"), Some(MASK_ID));
        assert_eq!(v.id("<eos>"), Some(EOS_ID));
        assert_eq!(v.id("CD3E"), Some(4));
        assert_eq!(v.token(5), Some("MS4A1"));
        assert_eq!(v.len(), 6);
        assert_eq!(v.n_genes(), 2);
    }

    /// Unknown query genes are counted and named, and their columns get UNKNOWN_GENE.
    #[test]
    fn unknown_genes_are_reported() {
        let v = GeneVocab::from_genes(&names(&["A", "B"])).unwrap();
        let m = v.map_genes(&names(&["B", "X", "A", "<cls>"]));
        assert_eq!(m.column_ids, vec![5, UNKNOWN_GENE, 4, UNKNOWN_GENE]);
        assert_eq!(m.n_unknown(), 2);
        assert_eq!(m.n_known(), 2);
        assert!(m.report().contains("2 of 4"), "{}", m.report());
    }

    /// Duplicate gene names are rejected with a message naming the gene.
    #[test]
    fn duplicate_gene_is_an_error() {
        let e = GeneVocab::from_genes(&names(&["A", "A"])).unwrap_err();
        assert!(e.to_string().contains("'A'"), "{e}");
    }
}
