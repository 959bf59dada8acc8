//! Figures of the study (PNG and SVG) drawn with plotters and the bundled DejaVu Sans.
//!
//! Each figure function takes plain rows the study runner fills, draws the same picture
//! on a bitmap and an SVG backend, writes `<out_stem>.png` and `<out_stem>.svg`
//! atomically and returns both paths. Colours are the Okabe–Ito colour-blind-safe
//! palette; lines also differ by marker shape. Figures:
//! 1. [`accuracy_bars`]: accuracy and macro F1 per dataset and method, with CIs.
//! 2. [`noise_curves`]: accuracy against noise level, one panel per dataset.
//! 3. [`prediction_shift`]: predicted minus true share of each class (pp), per method.
//! 4. [`confusion_heatmaps`]: row-normalised confusion matrix per method.
//! 5. [`tokenizer_info`]: cell type readable from binned vs rank tokens (the token probe),
//!    clean vs noisy, and how much token order survives noise.
//! 6. [`params_vs_accuracy`]: accuracy against parameter count (log x).
//! 7. [`learning_curves`]: the neural fits' training and validation loss.
//! 8. [`claims_forest`]: every claim's effect, per data set and pooled, with the published value.

mod bars;
mod diagnostics;
mod display;
mod heatmap;
mod lines;
pub mod style;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use bars::{accuracy_bars, prediction_shift, tokenizer_info};
pub use diagnostics::{claims_forest, learning_curves, CurveRow, ForestRow};
pub use display::evcxr_show_png;
pub use heatmap::confusion_heatmaps;
pub use lines::{noise_curves, params_vs_accuracy};

/// Where a figure was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FigurePaths {
    /// The PNG file.
    pub png: PathBuf,
    /// The SVG file.
    pub svg: PathBuf,
}

/// One bar of [`accuracy_bars`]: a method's score on a dataset (mean over seeds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodScore {
    /// Dataset name (a bar group).
    pub dataset: String,
    /// Method name (a bar colour).
    pub method: String,
    /// `"accuracy"` or `"macro_f1"` (the panel).
    pub metric: String,
    /// Score in [0, 1].
    pub mean: f64,
    /// Lower end of the 95% interval (NaN: no whisker).
    pub ci_low: f64,
    /// Upper end of the 95% interval (NaN: no whisker).
    pub ci_high: f64,
}

/// Which noise parameter [`noise_curves`] puts on the x axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoiseAxis {
    /// Fraction of query cells that receive noise.
    Fraction,
    /// Standard deviation of the Gaussian noise.
    Sigma,
}

/// One point of [`noise_curves`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoisePoint {
    /// Dataset name (a panel).
    pub dataset: String,
    /// Method name (a line).
    pub method: String,
    /// Fraction of cells with noise, in [0, 1] (0 for the clean condition).
    pub noise_fraction: f64,
    /// Noise standard deviation (0 for the clean condition).
    pub sigma: f64,
    /// Accuracy in [0, 1].
    pub mean: f64,
    /// Lower end of the 95% interval (NaN: no whisker).
    pub ci_low: f64,
    /// Upper end of the 95% interval (NaN: no whisker).
    pub ci_high: f64,
}

/// One bar of [`prediction_shift`]: predicted minus true share of a class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShiftRow {
    /// Dataset name (a panel).
    pub dataset: String,
    /// Method name (a bar colour).
    pub method: String,
    /// Cell type.
    pub class: String,
    /// Predicted share minus true share, in percentage points.
    pub shift_pp: f64,
}

/// One bar pair of [`tokenizer_info`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenInfoRow {
    /// Representation (`"raw"`, `"binning"`, `"rank"`; a bar group).
    pub tokenizer: String,
    /// `"clean"` or `"noisy"` (a bar colour).
    pub condition: String,
    /// Query accuracy of logistic regression on this representation (the token probe).
    pub probe_accuracy: f64,
    /// Noisy rows of tokenizers: mean Kendall τ-b between a perturbed cell's clean and noisy
    /// tokens (how much of the token order survives the noise); `None` otherwise.
    #[serde(default)]
    pub tau_vs_clean: Option<f64>,
}

/// One point of [`params_vs_accuracy`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamPoint {
    /// Model name (a colour, the same as in the other figures).
    pub model: String,
    /// Data set (a marker shape).
    #[serde(default)]
    pub dataset: String,
    /// Trainable parameters (> 0; the x axis is logarithmic).
    pub n_params: f64,
    /// Accuracy in [0, 1].
    pub accuracy: f64,
    /// Lower end of the 95% interval (NaN: no whisker).
    pub ci_low: f64,
    /// Upper end of the 95% interval (NaN: no whisker).
    pub ci_high: f64,
}

/// Distinct values in first-seen order (keeps the runner's method and dataset order).
pub(crate) fn ordered_unique<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        if !out.iter().any(|o| o == v) {
            out.push(v.to_string());
        }
    }
    out
}

/// Fake study output for the figure tests, and a check that a figure was written.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::{Path, PathBuf};

    use super::FigurePaths;

    pub const DATASETS: [&str; 2] = ["hPancreas", "Myeloid"];
    pub const METHODS: [&str; 6] = [
        "Seurat v5",
        "Logistic reg.",
        "kNN",
        "scGPT",
        "Geneformer",
        "SC-MAMBA2",
    ];
    pub const PANCREAS: [&str; 13] = [
        "alpha",
        "beta",
        "ductal",
        "acinar",
        "delta",
        "gamma",
        "activated_stellate",
        "quiescent_stellate",
        "endothelial",
        "macrophage",
        "mast",
        "schwann",
        "t_cell",
    ];
    pub const MYELOID: [&str; 21] = [
        "Mono_CD14",
        "Mono_CD16",
        "Mono_FCN1",
        "Macro_C1QC",
        "Macro_SPP1",
        "Macro_LYVE1",
        "Macro_NLRP3",
        "Macro_ISG15",
        "Macro_IL1B",
        "Macro_INHBA",
        "Macro_FN1",
        "cDC1_CLEC9A",
        "cDC2_CD1C",
        "cDC3_LAMP3",
        "pDC_LILRA4",
        "Mast_KIT",
        "Monocyte-derived dendritic",
        "Proliferating macrophage",
        "Neutrophil",
        "Macro_TREM2",
        "Macro_GPNMB",
    ];

    /// A deterministic pseudo-random number in [0, 1) from a few integers (no RNG state
    /// needed for fake plot data).
    pub fn jitter(a: usize, b: usize, c: usize) -> f64 {
        let h = (a as u64 * 73_856_093) ^ (b as u64 * 19_349_663) ^ (c as u64 * 83_492_791);
        (h % 1000) as f64 / 1000.0
    }

    /// Where test figures go: `$SCROBUST_KEEP_FIGURES` when set (to look at them),
    /// otherwise a temporary folder removed with the guard.
    pub fn out_dir() -> (PathBuf, Option<tempfile::TempDir>) {
        match std::env::var_os("SCROBUST_KEEP_FIGURES") {
            Some(d) => (PathBuf::from(d), None),
            None => {
                let t = tempfile::tempdir().unwrap();
                (t.path().to_path_buf(), Some(t))
            }
        }
    }

    /// Both files exist, the PNG has the PNG signature and the requested size in its
    /// IHDR chunk, the SVG is an <svg> document with text, and no temp file remains.
    pub fn check_written(paths: &FigurePaths, stem: &Path) {
        assert_eq!(paths.png, stem.with_extension("png"));
        let png = std::fs::read(&paths.png).unwrap();
        assert!(png.len() > 1000, "PNG too small: {} bytes", png.len());
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[12..16], b"IHDR");
        let w = u32::from_be_bytes([png[16], png[17], png[18], png[19]]);
        let h = u32::from_be_bytes([png[20], png[21], png[22], png[23]]);
        assert!(w >= 400 && h >= 300, "PNG is {w}x{h}");
        let svg = std::fs::read_to_string(&paths.svg).unwrap();
        assert!(svg.contains("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("<text"), "SVG has no text");
        // Only this figure's temp files: other tests may be writing beside it.
        let dir = stem.parent().unwrap();
        let prefix = format!(".{}.", stem.file_name().unwrap().to_string_lossy());
        let leftovers: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(&prefix) && n.contains(".tmp."))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }
}
