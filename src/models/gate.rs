//! The competence gate: a neural classifier counts as trained only when it is about as
//! good as L1 logistic regression (the baseline of Boiarsky et al. 2023, which the
//! foundation models are compared with) on the same reference cells.
//!
//! Logistic regression is fitted on the reference training cells the model fine-tuned on
//! and scored on the reference-validation cells the model selected its weights on (the
//! split of [`FitReport::split`]); query cells are never used. The model passes when
//! its validation accuracy is at most [`ACCURACY_MARGIN`] below logistic regression's and
//! its validation macro F1 at most [`MACRO_F1_MARGIN`] below. A model that fails was
//! stopped before it learned what logistic regression learns from the same cells, so its
//! query scores say little about the architecture.

use super::pipeline::{FitReport, ReferenceSplit};
use crate::baseline::LogisticParams;
use crate::data::{Dataset, Labels};
use crate::error::Result;
use crate::eval::metrics::evaluate;
use crate::eval::Prediction;
use crate::traits::{Fit, Predict};
use serde::{Deserialize, Serialize};

/// Largest shortfall of validation accuracy against logistic regression that passes
/// (3 points).
pub const ACCURACY_MARGIN: f64 = 0.03;
/// Largest shortfall of validation macro F1 against logistic regression that passes
/// (5 points).
pub const MACRO_F1_MARGIN: f64 = 0.05;
/// Rounding slack, so that a shortfall of exactly the margin passes.
const SLACK: f64 = 1e-9;

/// Validation scores of one classifier.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ValScores {
    /// Fraction of validation cells predicted correctly.
    pub accuracy: f64,
    /// Mean per-class F1 over the classes present in the validation truth.
    pub macro_f1: f64,
}

/// The gate's verdict on one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateReport {
    /// The model's validation scores (its selected weights).
    pub model: ValScores,
    /// Logistic regression's validation scores on the same cells.
    pub logistic: ValScores,
    /// True when both scores are within their margins.
    pub passed: bool,
    /// One sentence per failed criterion (empty when passed).
    pub failures: Vec<String>,
}

/// The verdict for `model` against `logistic` (a pure function of the four scores).
pub fn verdict(model: ValScores, logistic: ValScores) -> GateReport {
    let mut failures = Vec::new();
    let criteria = [
        (
            "accuracy",
            model.accuracy,
            logistic.accuracy,
            ACCURACY_MARGIN,
        ),
        (
            "macro F1",
            model.macro_f1,
            logistic.macro_f1,
            MACRO_F1_MARGIN,
        ),
    ];
    for (name, ours, theirs, margin) in criteria {
        // A NaN score fails: the comparison below is false for it.
        let passes = ours >= theirs - margin - SLACK;
        if !passes {
            failures.push(format!(
                "validation {name} {ours:.3} is more than {:.0} points below logistic regression's {theirs:.3}",
                margin * 100.0
            ));
        }
    }
    GateReport {
        model,
        logistic,
        passed: failures.is_empty(),
        failures,
    }
}

/// Logistic regression (defaults, `seed`) fitted on the split's training cells and scored
/// on its validation cells. `None` when the split has no validation cells.
pub fn logistic_validation_scores(
    reference: &Dataset,
    labels: &Labels,
    split: &ReferenceSplit,
    seed: u64,
) -> Result<Option<ValScores>> {
    if split.val_rows.is_empty() || split.train_rows.is_empty() {
        return Ok(None);
    }
    let train_labels = Labels {
        codes: split.train_rows.iter().map(|&r| labels.codes[r]).collect(),
        classes: labels.classes.clone(),
    };
    let params = LogisticParams::new().seed(seed);
    let fitted = params.fit(&reference.select_cells(&split.train_rows), &train_labels)?;
    let pred = fitted.predict(&reference.select_cells(&split.val_rows))?;
    let truth: Vec<Option<&str>> = split.val_rows.iter().map(|&r| labels.name(r)).collect();
    let predicted: Vec<&str> = (0..pred.predicted.len()).map(|i| pred.label(i)).collect();
    let report = evaluate(&truth, &predicted, &labels.classes)?;
    Ok(Some(ValScores {
        accuracy: report.accuracy,
        macro_f1: report.macro_f1,
    }))
}

/// The gate for a trained model: logistic regression on the cells of `fit.split` of
/// `reference` (the data set and labels the model was trained with). `None` when the model
/// had no validation cells.
pub fn competence_gate(
    reference: &Dataset,
    labels: &Labels,
    fit: &FitReport,
    seed: u64,
) -> Result<Option<GateReport>> {
    let (Some(accuracy), Some(macro_f1)) = (fit.val_accuracy, fit.val_macro_f1) else {
        return Ok(None);
    };
    let Some(logistic) = logistic_validation_scores(reference, labels, &fit.split, seed)? else {
        return Ok(None);
    };
    Ok(Some(verdict(ValScores { accuracy, macro_f1 }, logistic)))
}

/// True when `prediction` gives every cell the same class (a collapsed classifier).
pub fn single_class_prediction(prediction: &Prediction) -> bool {
    !prediction.predicted.is_empty() && prediction.predicted.windows(2).all(|w| w[0] == w[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(accuracy: f64, macro_f1: f64) -> ValScores {
        ValScores { accuracy, macro_f1 }
    }

    /// Within both margins passes, exactly at them too; just outside either fails with
    /// one reason each; beating logistic regression passes.
    #[test]
    fn verdict_boundaries() {
        let lr = s(0.80, 0.75);
        assert!(verdict(s(0.80, 0.75), lr).passed);
        assert!(verdict(s(0.95, 0.90), lr).passed);
        let edge = verdict(s(0.77, 0.70), lr);
        assert!(edge.passed, "{:?}", edge.failures);
        let acc = verdict(s(0.7699, 0.75), lr);
        assert!(!acc.passed);
        assert_eq!(acc.failures.len(), 1);
        assert!(acc.failures[0].contains("accuracy"), "{:?}", acc.failures);
        let f1 = verdict(s(0.80, 0.6999), lr);
        assert!(!f1.passed);
        assert_eq!(f1.failures.len(), 1);
        assert!(f1.failures[0].contains("macro F1"), "{:?}", f1.failures);
        let both = verdict(s(0.30, 0.10), lr);
        assert_eq!(both.failures.len(), 2);
        assert!(!verdict(s(f64::NAN, 0.75), lr).passed);
    }

    /// A collapsed classifier is recognised; two classes or no cells are not.
    #[test]
    fn single_class_is_detected() {
        let p = |predicted: Vec<usize>| Prediction {
            classes: vec!["a".into(), "b".into()],
            scores: vec![0.5; predicted.len()],
            predicted,
        };
        assert!(single_class_prediction(&p(vec![1, 1, 1])));
        assert!(!single_class_prediction(&p(vec![1, 0, 1])));
        assert!(!single_class_prediction(&p(vec![])));
    }

    /// Logistic regression on a separable reference split scores its validation cells
    /// near perfectly, and a split without validation cells gives no scores.
    #[test]
    fn logistic_scores_the_validation_cells() {
        let (reference, labels) = crate::baseline::testutil::clustered_counts(40, 3, 60, 5);
        let n = reference.n_obs();
        let split = ReferenceSplit {
            train_rows: (0..n).filter(|i| i % 5 != 0).collect(),
            val_rows: (0..n).filter(|i| i % 5 == 0).collect(),
        };
        let scores = logistic_validation_scores(&reference, &labels, &split, 0)
            .unwrap()
            .unwrap();
        assert!(scores.accuracy > 0.9 && scores.macro_f1 > 0.9, "{scores:?}");
        let no_val = ReferenceSplit {
            val_rows: vec![],
            ..split
        };
        assert!(logistic_validation_scores(&reference, &labels, &no_val, 0)
            .unwrap()
            .is_none());
    }
}
