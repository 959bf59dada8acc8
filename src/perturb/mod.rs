//! Perturbations applied to expression values before tokenization.

pub mod noise;

pub use noise::{GaussianNoise, NoiseSpace, NoiseTarget, Perturbed, ZeroHandling};
