//! Preprocessing with scanpy's names: normalize_total, log1p, highly_variable_genes,
//! scale, pca. Everything that learns is a fitted object: fit on reference, apply to query.
