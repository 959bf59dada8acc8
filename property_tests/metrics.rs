//! Properties of the classification metrics (`scrobust::eval::metrics`).

use proptest::prelude::*;
use scrobust::eval::metrics::{bootstrap_ci, evaluate, summarize_over_seeds, Metric};

use crate::strategies::labelled_predictions;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::cases(64)))]

    /// Accuracy and both F1 averages lie in [0, 1].
    #[test]
    fn scores_are_fractions((classes, truth, pred) in labelled_predictions(6, 60)) {
        let r = evaluate(&truth, &pred, &classes).unwrap();
        for v in [r.accuracy, r.macro_f1, r.weighted_f1] {
            prop_assert!((0.0..=1.0).contains(&v), "{v}");
        }
    }

    /// Macro F1 is 1 exactly when every cell is predicted correctly.
    #[test]
    fn macro_f1_is_one_iff_perfect((classes, truth, pred) in labelled_predictions(5, 40)) {
        let r = evaluate(&truth, &pred, &classes).unwrap();
        let perfect = truth == pred;
        prop_assert_eq!(r.macro_f1 == 1.0, perfect);
        let p = evaluate(&truth, &truth, &classes).unwrap();
        prop_assert_eq!((p.accuracy, p.macro_f1, p.weighted_f1), (1.0, 1.0, 1.0));
    }

    /// Renaming the classes (a bijection, here reversing the names) changes no score.
    #[test]
    fn invariant_to_relabelling((classes, truth, pred) in labelled_predictions(6, 60)) {
        let rename = |c: &String| format!("renamed-{}", c.chars().rev().collect::<String>());
        let t2: Vec<String> = truth.iter().map(rename).collect();
        let p2: Vec<String> = pred.iter().map(rename).collect();
        let k2: Vec<String> = classes.iter().rev().map(rename).collect();
        let a = evaluate(&truth, &pred, &classes).unwrap();
        let b = evaluate(&t2, &p2, &k2).unwrap();
        prop_assert!((a.accuracy - b.accuracy).abs() < 1e-12);
        prop_assert!((a.macro_f1 - b.macro_f1).abs() < 1e-12);
        prop_assert!((a.weighted_f1 - b.weighted_f1).abs() < 1e-12);
        for m in &a.per_class {
            let n = b.per_class.iter().find(|x| x.class == rename(&m.class)).unwrap();
            prop_assert!((m.f1 - n.f1).abs() < 1e-12);
            prop_assert_eq!(m.support, n.support);
        }
    }

    /// Predicted and true shares each sum to 1, so the pp shifts sum to 0; supports sum
    /// to the scored cells and the confusion matrix holds every cell.
    #[test]
    fn shares_sum_to_one((classes, truth, pred) in labelled_predictions(6, 60)) {
        let r = evaluate(&truth, &pred, &classes).unwrap();
        let ps: f64 = r.per_class.iter().map(|m| m.predicted_share).sum();
        let ts: f64 = r.per_class.iter().map(|m| m.true_share).sum();
        let shift: f64 = r.per_class.iter().map(|m| m.share_shift_pp).sum();
        prop_assert!((ps - 1.0).abs() < 1e-9 && (ts - 1.0).abs() < 1e-9);
        prop_assert!(shift.abs() < 1e-7);
        prop_assert_eq!(r.per_class.iter().map(|m| m.support).sum::<usize>(), r.n_cells);
        prop_assert_eq!(r.confusion.total(), truth.len());
    }

    /// The bootstrap interval is ordered and within [0, 1].
    #[test]
    fn bootstrap_interval_is_ordered((classes, truth, pred) in labelled_predictions(4, 40), seed in 0u64..1000) {
        let (lo, hi) = bootstrap_ci(&truth, &pred, &classes, Metric::MacroF1, 50, seed).unwrap();
        prop_assert!(0.0 <= lo && lo <= hi && hi <= 1.0, "({lo}, {hi})");
    }

    /// The t interval over seeds contains the mean and sd is non-negative.
    #[test]
    fn seed_summary_contains_mean(values in proptest::collection::vec(0.0f64..1.0, 2..12)) {
        let s = summarize_over_seeds(&values).unwrap();
        prop_assert!(s.sd >= 0.0);
        prop_assert!(s.ci95.0 <= s.mean + 1e-12 && s.mean <= s.ci95.1 + 1e-12);
    }
}
