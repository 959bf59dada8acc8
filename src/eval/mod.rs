//! Evaluation: predictions and classification metrics.

use serde::{Deserialize, Serialize};

/// One method's predictions on the query cells.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Class names the method can predict (the reference classes).
    pub classes: Vec<String>,
    /// Predicted class of each query cell, as an index into `classes`.
    pub predicted: Vec<usize>,
    /// Confidence of each prediction (e.g. Seurat's `prediction.score.max`, a softmax max).
    pub scores: Vec<f32>,
}

impl Prediction {
    /// Predicted class name of query cell `i`.
    pub fn label(&self, i: usize) -> &str {
        &self.classes[self.predicted[i]]
    }
}

pub mod intervals;
pub mod metrics;

pub use intervals::{
    accuracy_drop, bootstrap_ci, summarize_over_seeds, AccuracyDrop, Metric, SeedSummary,
};
pub use metrics::{
    evaluate, evaluate_prediction, ClassMetrics, ClassificationReport, ConfusionMatrix,
};
