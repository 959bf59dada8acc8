//! Perturbations applied to expression values before tokenization.
