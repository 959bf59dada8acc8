//! Classification metrics for cell-type label transfer: accuracy, macro and weighted F1,
//! per-class precision / recall / F1 / support, the confusion matrix and the prediction
//! distribution (each class's predicted share minus its true share).
//!
//! Definitions follow scikit-learn (`sklearn.metrics.precision_recall_fscore_support`,
//! `f1_score`), the convention of the single-cell benchmarks this crate reproduces
//! (Boiarsky et al. 2023; the scGPT and Geneformer papers):
//! - macro F1 is the unweighted mean of per-class F1 over the classes present in the
//!   scored truth, i.e. `f1_score(y, p, average="macro", labels=<classes in y>)`. This is
//!   not linfa's multi-class `f1_score`, which is the F1 of macro precision and recall.
//! - weighted F1 weights each class's F1 by its support.
//! - a class that is never predicted has precision 0 and a class with no true cell has
//!   recall 0 (sklearn `zero_division=0`); F1 is 0 whenever precision + recall is 0.
//!
//! Query cells whose true label is not a reference class ("unknown" cells, e.g. ductal
//! cells in a pancreas query whose reference had none) cannot be classified correctly by
//! any closed-set classifier; they are excluded from scoring and counted in
//! [`ClassificationReport::n_skipped_unknown`].

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::eval::Prediction;

// One import path for every score: the interval helpers live in their own file.
pub use crate::eval::intervals::{
    accuracy_drop, bootstrap_ci, summarize_over_seeds, AccuracyDrop, Metric, SeedSummary,
};

/// Row = true class, column = predicted class, both indexing `classes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ConfusionMatrix {
    /// Class names, in the order of rows and columns.
    pub classes: Vec<String>,
    /// `counts[t][p]`: scored cells of true class `t` predicted as `p`.
    pub counts: Vec<Vec<usize>>,
}

impl ConfusionMatrix {
    /// Each row divided by its sum (the recall view); rows with no cells stay all zero.
    pub fn row_normalized(&self) -> Vec<Vec<f64>> {
        self.counts
            .iter()
            .map(|row| {
                let total: usize = row.iter().sum();
                row.iter()
                    .map(|&c| {
                        if total == 0 {
                            0.0
                        } else {
                            c as f64 / total as f64
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// Number of cells in the matrix.
    pub fn total(&self) -> usize {
        self.counts.iter().flatten().sum()
    }
}

/// Scores of one class.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ClassMetrics {
    /// Class name.
    pub class: String,
    /// Correct predictions of this class / all predictions of it (0 when never predicted).
    pub precision: f64,
    /// Correct predictions of this class / its true cells (0 when it has none).
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 when both are 0).
    pub f1: f64,
    /// Scored cells whose true label is this class.
    pub support: usize,
    /// Fraction of scored cells predicted as this class, in [0, 1].
    pub predicted_share: f64,
    /// Fraction of scored cells truly of this class, in [0, 1].
    pub true_share: f64,
    /// `predicted_share - true_share` in percentage points (positive: over-predicted).
    pub share_shift_pp: f64,
}

/// All scores of one method on one query.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ClassificationReport {
    /// Scored query cells (cells with an unknown true class are not counted).
    pub n_cells: usize,
    /// Query cells skipped because their true class is not a reference class.
    pub n_skipped_unknown: usize,
    /// The true classes that were skipped, sorted (unlabelled cells are not listed).
    pub unknown_classes: Vec<String>,
    /// Fraction of scored cells predicted correctly.
    pub accuracy: f64,
    /// Mean per-class F1 over the classes present in the scored truth.
    pub macro_f1: f64,
    /// Per-class F1 weighted by support.
    pub weighted_f1: f64,
    /// One entry per class that occurs in the scored truth or in the predictions, in the
    /// order of `known_classes` followed by predicted-only labels (sorted).
    pub per_class: Vec<ClassMetrics>,
    /// Confusion matrix over the same classes as `per_class`.
    pub confusion: ConfusionMatrix,
}

/// A query cell's true label: a class name, or `None` when the cell has no label.
/// Implemented for `String`, `&str` and their `Option`s, so a runner can pass
/// `Vec<Option<String>>` (missing labels) or plain `Vec<String>`.
pub trait TruthLabel {
    /// The class name, if the cell has one.
    fn class_name(&self) -> Option<&str>;
}

impl TruthLabel for String {
    fn class_name(&self) -> Option<&str> {
        Some(self)
    }
}

impl TruthLabel for &str {
    fn class_name(&self) -> Option<&str> {
        Some(self)
    }
}

impl TruthLabel for Option<String> {
    fn class_name(&self) -> Option<&str> {
        self.as_deref()
    }
}

impl TruthLabel for Option<&str> {
    fn class_name(&self) -> Option<&str> {
        *self
    }
}

/// Scored cells with labels encoded as indices into `classes`.
#[derive(Debug, Clone)]
pub(crate) struct Encoded {
    pub classes: Vec<String>,
    pub truth: Vec<usize>,
    pub pred: Vec<usize>,
    pub n_skipped_unknown: usize,
    pub unknown_classes: Vec<String>,
}

/// Drops unknown-truth cells and encodes the rest; errors on length mismatch or when no
/// cell is left to score.
pub(crate) fn encode<T: TruthLabel, P: AsRef<str>, K: AsRef<str>>(
    truth: &[T],
    predicted: &[P],
    known_classes: &[K],
) -> Result<Encoded> {
    if truth.len() != predicted.len() {
        return Err(Error::invalid(
            "predictions",
            "predicted",
            format!(
                "{} predictions for {} query cells; need one per cell",
                predicted.len(),
                truth.len()
            ),
        ));
    }
    let known: BTreeSet<&str> = known_classes.iter().map(|k| k.as_ref()).collect();
    let mut unknown = BTreeSet::new();
    let mut scored: Vec<(&str, &str)> = Vec::with_capacity(truth.len());
    for (t, p) in truth.iter().zip(predicted) {
        match t.class_name() {
            Some(t) if known.contains(t) => scored.push((t, p.as_ref())),
            Some(t) => {
                unknown.insert(t.to_string());
            }
            None => {}
        }
    }
    if scored.is_empty() {
        return Err(Error::invalid(
            "predictions",
            "truth",
            format!(
                "no query cell has a reference class ({} cells, reference classes: {})",
                truth.len(),
                known.iter().copied().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    // Class order: reference order for classes that occur, then predicted-only labels.
    let occurring: BTreeSet<&str> = scored.iter().flat_map(|&(t, p)| [t, p]).collect();
    let mut classes: Vec<String> = Vec::new();
    let mut seen = BTreeSet::new();
    for k in known_classes {
        let k = k.as_ref();
        if occurring.contains(k) && seen.insert(k) {
            classes.push(k.to_string());
        }
    }
    for &c in &occurring {
        if seen.insert(c) {
            classes.push(c.to_string());
        }
    }
    let index: HashMap<&str, usize> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let n_skipped_unknown = truth.len() - scored.len();
    let (truth, pred) = scored.iter().map(|&(t, p)| (index[t], index[p])).unzip();
    Ok(Encoded {
        n_skipped_unknown,
        classes,
        truth,
        pred,
        unknown_classes: unknown.into_iter().collect(),
    })
}

/// Confusion counts (`k` × `k`) of encoded labels.
pub(crate) fn confusion_counts(truth: &[usize], pred: &[usize], k: usize) -> Vec<Vec<usize>> {
    let mut counts = vec![vec![0usize; k]; k];
    for (&t, &p) in truth.iter().zip(pred) {
        counts[t][p] += 1;
    }
    counts
}

/// Per-class (precision, recall, f1, support, n_predicted) from a confusion matrix.
fn per_class_scores(counts: &[Vec<usize>]) -> Vec<(f64, f64, f64, usize, usize)> {
    let k = counts.len();
    (0..k)
        .map(|c| {
            let tp = counts[c][c];
            let support: usize = counts[c].iter().sum();
            let n_pred: usize = counts.iter().map(|row| row[c]).sum();
            let precision = ratio(tp, n_pred);
            let recall = ratio(tp, support);
            let f1 = if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            };
            (precision, recall, f1, support, n_pred)
        })
        .collect()
}

fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// The three headline scores of a confusion matrix: (accuracy, macro F1, weighted F1).
pub(crate) fn headline_scores(counts: &[Vec<usize>]) -> (f64, f64, f64) {
    let total: usize = counts.iter().flatten().sum();
    let correct: usize = (0..counts.len()).map(|c| counts[c][c]).sum();
    let per = per_class_scores(counts);
    let present: Vec<_> = per.iter().filter(|s| s.3 > 0).collect();
    let macro_f1 = if present.is_empty() {
        0.0
    } else {
        present.iter().map(|s| s.2).sum::<f64>() / present.len() as f64
    };
    let weighted_f1 = ratio_f(present.iter().map(|s| s.2 * s.3 as f64).sum::<f64>(), total);
    (ratio(correct, total), macro_f1, weighted_f1)
}

fn ratio_f(num: f64, den: usize) -> f64 {
    if den == 0 {
        0.0
    } else {
        num / den as f64
    }
}

/// Scores predictions against the truth. Cells whose true label is not among
/// `known_classes` (the reference classes), or who have no label (`None`), are skipped
/// and counted in `n_skipped_unknown`.
///
/// Errors when the lengths differ or no cell has a reference class.
pub fn evaluate<T: TruthLabel, P: AsRef<str>, K: AsRef<str>>(
    truth: &[T],
    predicted: &[P],
    known_classes: &[K],
) -> Result<ClassificationReport> {
    let enc = encode(truth, predicted, known_classes)?;
    let counts = confusion_counts(&enc.truth, &enc.pred, enc.classes.len());
    let (accuracy, macro_f1, weighted_f1) = headline_scores(&counts);
    let n = enc.truth.len() as f64;
    let per_class = per_class_scores(&counts)
        .into_iter()
        .zip(&enc.classes)
        .map(|((precision, recall, f1, support, n_pred), class)| {
            let predicted_share = n_pred as f64 / n;
            let true_share = support as f64 / n;
            ClassMetrics {
                class: class.clone(),
                precision,
                recall,
                f1,
                support,
                predicted_share,
                true_share,
                share_shift_pp: 100.0 * (predicted_share - true_share),
            }
        })
        .collect();
    Ok(ClassificationReport {
        n_cells: enc.truth.len(),
        n_skipped_unknown: enc.n_skipped_unknown,
        unknown_classes: enc.unknown_classes,
        accuracy,
        macro_f1,
        weighted_f1,
        per_class,
        confusion: ConfusionMatrix {
            classes: enc.classes,
            counts,
        },
    })
}

/// [`evaluate`] for a [`Prediction`]: its `classes` are the reference classes.
pub fn evaluate_prediction<T: TruthLabel>(
    truth: &[T],
    prediction: &Prediction,
) -> Result<ClassificationReport> {
    let mut predicted = Vec::with_capacity(prediction.predicted.len());
    for (i, &p) in prediction.predicted.iter().enumerate() {
        let label = prediction.classes.get(p).ok_or_else(|| {
            Error::invalid(
                "prediction",
                "predicted",
                format!(
                    "cell {i}: class index {p} out of range ({} classes)",
                    prediction.classes.len()
                ),
            )
        })?;
        predicted.push(label.as_str());
    }
    evaluate(truth, &predicted, &prediction.classes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    /// A hand-computed 3-class case: accuracy, per-class P/R/F1, macro and weighted F1.
    #[test]
    fn hand_computed_three_classes() {
        // truth a a a b b c ; pred a a b b c c
        // a: tp2 pred2 sup3 -> P1 R2/3 F0.8 ; b: tp1 pred2 sup2 -> P.5 R.5 F.5
        // c: tp1 pred2 sup1 -> P.5 R1 F2/3
        let truth = s(&["a", "a", "a", "b", "b", "c"]);
        let pred = s(&["a", "a", "b", "b", "c", "c"]);
        let r = evaluate(&truth, &pred, &s(&["a", "b", "c"])).unwrap();
        assert_abs_diff_eq!(r.accuracy, 4.0 / 6.0, epsilon = 1e-12);
        let f1 = [0.8, 0.5, 2.0 / 3.0];
        assert_abs_diff_eq!(r.macro_f1, f1.iter().sum::<f64>() / 3.0, epsilon = 1e-12);
        let w = (0.8 * 3.0 + 0.5 * 2.0 + 2.0 / 3.0) / 6.0;
        assert_abs_diff_eq!(r.weighted_f1, w, epsilon = 1e-12);
        assert_eq!(r.per_class[0].support, 3);
        assert_abs_diff_eq!(r.per_class[0].recall, 2.0 / 3.0, epsilon = 1e-12);
        assert_abs_diff_eq!(r.per_class[2].precision, 0.5, epsilon = 1e-12);
        // c is predicted for 2/6 cells but is 1/6 of the truth: +16.67 pp.
        assert_abs_diff_eq!(r.per_class[2].share_shift_pp, 100.0 / 6.0, epsilon = 1e-9);
        assert_eq!(
            r.confusion.counts,
            vec![vec![2, 1, 0], vec![0, 1, 1], vec![0, 0, 1]]
        );
    }

    /// A class never predicted gets precision 0 (zero_division=0) and F1 0.
    #[test]
    fn never_predicted_class_has_zero_precision() {
        let truth = s(&["a", "b", "b"]);
        let pred = s(&["b", "b", "b"]);
        let r = evaluate(&truth, &pred, &s(&["a", "b"])).unwrap();
        let a = &r.per_class[0];
        assert_eq!((a.precision, a.recall, a.f1), (0.0, 0.0, 0.0));
        // b: P 2/3, R 1, F1 0.8; macro over {a, b} = 0.4.
        assert_abs_diff_eq!(r.macro_f1, 0.4, epsilon = 1e-12);
    }

    /// Macro F1 averages over truth classes only; a predicted-only class is reported but
    /// does not enter the mean.
    #[test]
    fn macro_f1_ignores_predicted_only_classes() {
        let truth = s(&["a", "a", "b", "b"]);
        let pred = s(&["a", "x", "b", "b"]);
        let r = evaluate(&truth, &pred, &s(&["a", "b", "x"])).unwrap();
        // a: P1 R.5 F2/3 ; b: P1 R1 F1 ; x: support 0, excluded.
        assert_abs_diff_eq!(r.macro_f1, (2.0 / 3.0 + 1.0) / 2.0, epsilon = 1e-12);
        assert_eq!(r.per_class.len(), 3);
        assert_eq!(r.per_class[2].class, "x");
        assert_abs_diff_eq!(r.per_class[2].share_shift_pp, 25.0, epsilon = 1e-12);
    }

    /// Cells of classes the reference never had are skipped and counted.
    #[test]
    fn unknown_truth_classes_are_skipped() {
        let truth = s(&["a", "ductal", "b", "ductal", "acinar"]);
        let pred = s(&["a", "a", "b", "b", "a"]);
        let r = evaluate(&truth, &pred, &s(&["a", "b"])).unwrap();
        assert_eq!(r.n_cells, 2);
        assert_eq!(r.n_skipped_unknown, 3);
        assert_eq!(r.unknown_classes, s(&["acinar", "ductal"]));
        assert_eq!(r.accuracy, 1.0);
        let with_missing = [Some("a"), None, Some("b")];
        let r = evaluate(&with_missing, &["a", "a", "b"], &["a", "b"]).unwrap();
        // The runner's form: Vec<Option<String>> truth, Vec<String> predictions.
        let owned: Vec<Option<String>> = with_missing.iter().map(|t| t.map(String::from)).collect();
        assert_eq!(
            evaluate(&owned, &s(&["a", "a", "b"]), &s(&["a", "b"])).unwrap(),
            r
        );
        assert_eq!((r.n_cells, r.n_skipped_unknown), (2, 1));
        assert!(r.unknown_classes.is_empty());
    }

    /// Mismatched lengths and all-unknown queries are errors, not panics.
    #[test]
    fn bad_input_is_an_error() {
        assert!(evaluate(&s(&["a"]), &s(&["a", "b"]), &s(&["a"])).is_err());
        assert!(evaluate(&s(&["z"]), &s(&["a"]), &s(&["a"])).is_err());
        let p = Prediction {
            classes: s(&["a"]),
            predicted: vec![3],
            scores: vec![1.0],
        };
        assert!(evaluate_prediction(&s(&["a"]), &p).is_err());
    }

    /// The report serializes with the field names of the JSON contract (docs/design.md).
    #[test]
    fn json_field_names() {
        let r = evaluate(&s(&["a", "b"]), &s(&["a", "a"]), &s(&["a", "b"])).unwrap();
        let v = serde_json::to_value(&r).unwrap();
        for key in ["accuracy", "macro_f1", "per_class", "n_skipped_unknown"] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        let c = &v["per_class"][0];
        for key in [
            "precision",
            "recall",
            "f1",
            "support",
            "predicted_share",
            "true_share",
        ] {
            assert!(c.get(key).is_some(), "missing per_class.{key}");
        }
    }

    /// Row normalisation divides by the row sum and leaves empty rows at zero.
    #[test]
    fn row_normalized_confusion() {
        let m = ConfusionMatrix {
            classes: s(&["a", "b"]),
            counts: vec![vec![1, 3], vec![0, 0]],
        };
        assert_eq!(m.row_normalized(), vec![vec![0.25, 0.75], vec![0.0, 0.0]]);
        assert_eq!(m.total(), 4);
    }
}
