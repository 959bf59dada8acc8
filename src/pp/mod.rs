//! Preprocessing with scanpy's names: normalize_total, log1p, highly_variable_genes,
//! scale, pca. Everything that learns is a fitted object: fit on reference, apply to query.

mod eigen;
mod hvg;
pub mod loess;
mod normalize;
mod pca;
mod pipeline;
mod scale;

pub use hvg::{FittedHvg, HvgFlavor, HvgParams};
pub use loess::{FittedLoess, Loess};
pub use normalize::{
    log1p, log1p_inplace, log_normalize, normalize_total, normalize_total_inplace,
};
pub use pca::{FittedPca, Pca};
pub use pipeline::{FittedPcaPipeline, PcaPipeline};
pub use scale::{FittedScaler, Scaler};
