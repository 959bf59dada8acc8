//! Tokenizers: gene vocabulary, scGPT binning, Geneformer rank-value encoding, collation
//! into model batches, and information-loss measures.

pub mod collate;
