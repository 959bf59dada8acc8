//! Uncertainty of classification scores: percentile bootstrap over query cells
//! (Efron & Tibshirani 1993, ch. 13), mean ± sd with a Student-t 95% interval over
//! seeds, and the accuracy drop caused by noise.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::eval::metrics::{confusion_counts, encode, headline_scores, TruthLabel};

/// A headline score that can be bootstrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Fraction of scored cells predicted correctly.
    Accuracy,
    /// Mean per-class F1 over the classes present in the (resampled) truth.
    MacroF1,
    /// Per-class F1 weighted by support.
    WeightedF1,
}

/// Percentile bootstrap 95% interval of `metric` over query cells: `n_resamples` resamples
/// of the scored cells with replacement (cells with a class outside `known_classes` are
/// dropped first, as in [`crate::eval::metrics::evaluate`]), then the 2.5th and 97.5th
/// percentiles (linear interpolation, numpy's default). Same seed, same interval.
pub fn bootstrap_ci<T: TruthLabel, P: AsRef<str>, K: AsRef<str>>(
    truth: &[T],
    predicted: &[P],
    known_classes: &[K],
    metric: Metric,
    n_resamples: usize,
    seed: u64,
) -> Result<(f64, f64)> {
    if n_resamples == 0 {
        return Err(Error::param("n_resamples", "must be at least 1"));
    }
    let enc = encode(truth, predicted, known_classes)?;
    let n = enc.truth.len();
    let k = enc.classes.len();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut t = vec![0usize; n];
    let mut p = vec![0usize; n];
    let mut values = Vec::with_capacity(n_resamples);
    for _ in 0..n_resamples {
        for j in 0..n {
            let i = rng.gen_range(0..n);
            t[j] = enc.truth[i];
            p[j] = enc.pred[i];
        }
        let (acc, macro_f1, weighted_f1) = headline_scores(&confusion_counts(&t, &p, k));
        values.push(match metric {
            Metric::Accuracy => acc,
            Metric::MacroF1 => macro_f1,
            Metric::WeightedF1 => weighted_f1,
        });
    }
    values.sort_by(f64::total_cmp);
    Ok((percentile(&values, 2.5), percentile(&values, 97.5)))
}

/// `q`-th percentile (0..=100) of sorted, non-empty `values`, interpolating linearly.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q / 100.0 * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// A score summarised over seeds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SeedSummary {
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation (n − 1); NaN (JSON `null`) for a single seed.
    pub sd: f64,
    /// mean ± t(0.975, n − 1) · sd / √n; NaN for a single seed.
    pub ci95: (f64, f64),
    /// Number of seeds.
    pub n: usize,
}

/// Mean, sd and Student-t 95% interval of one score over seeds. Errors on an empty
/// slice or a non-finite value.
pub fn summarize_over_seeds(values: &[f64]) -> Result<SeedSummary> {
    if values.is_empty() {
        return Err(Error::param("values", "no seeds to summarise"));
    }
    if let Some(v) = values.iter().find(|v| !v.is_finite()) {
        return Err(Error::param("values", format!("non-finite score {v}")));
    }
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return Ok(SeedSummary {
            mean,
            sd: f64::NAN,
            ci95: (f64::NAN, f64::NAN),
            n,
        });
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let sd = var.sqrt();
    let half = t_quantile_975(n - 1) * sd / (n as f64).sqrt();
    Ok(SeedSummary {
        mean,
        sd,
        ci95: (mean - half, mean + half),
        n,
    })
}

/// The 97.5% quantile of Student's t with `df` ≥ 1 degrees of freedom.
///
/// df ≤ 30: `scipy.stats.t.ppf(0.975, df)` rounded to 9 decimals. Above: the
/// Cornish–Fisher expansion around the normal quantile (Abramowitz & Stegun 26.7.5),
/// within 3e-8 of scipy at df = 31 and closer beyond.
fn t_quantile_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706204736,
        4.30265273,
        3.182446305,
        2.776445105,
        2.570581836,
        2.446911851,
        2.364624252,
        2.306004135,
        2.262157163,
        2.228138852,
        2.20098516,
        2.17881283,
        2.160368656,
        2.144786688,
        2.131449546,
        2.119905299,
        2.109815578,
        2.10092204,
        2.093024054,
        2.085963447,
        2.079613845,
        2.073873068,
        2.06865761,
        2.063898562,
        2.059538553,
        2.055529439,
        2.051830516,
        2.048407142,
        2.045229642,
        2.042272456,
    ];
    if (1..=30).contains(&df) {
        return TABLE[df - 1];
    }
    let z: f64 = 1.959963984540054;
    let d = df.max(1) as f64;
    let (z3, z5, z7, z9) = (z.powi(3), z.powi(5), z.powi(7), z.powi(9));
    z + (z3 + z) / (4.0 * d)
        + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * d * d)
        + (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / (384.0 * d.powi(3))
        + (79.0 * z9 + 776.0 * z7 + 1482.0 * z5 - 1920.0 * z3 - 945.0 * z) / (92160.0 * d.powi(4))
}

/// How much accuracy noise costs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AccuracyDrop {
    /// `clean − noisy` in percentage points (accuracies in [0, 1] × 100).
    pub points: f64,
    /// `(clean − noisy) / clean` in percent; NaN when `clean` is 0.
    pub relative_percent: f64,
}

/// Drop from `clean` to `noisy` accuracy (both fractions), absolute and relative. The
/// study's "noise costs scGPT ~11% accuracy" may mean either; report both.
pub fn accuracy_drop(clean: f64, noisy: f64) -> AccuracyDrop {
    let diff = clean - noisy;
    AccuracyDrop {
        points: 100.0 * diff,
        relative_percent: if clean == 0.0 {
            f64::NAN
        } else {
            100.0 * diff / clean
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;

    fn labels(n_right: usize, n_wrong: usize) -> (Vec<&'static str>, Vec<&'static str>) {
        let truth = vec!["a"; n_right + n_wrong];
        let mut pred = vec!["a"; n_right];
        pred.extend(vec!["b"; n_wrong]);
        (truth, pred)
    }

    /// The bootstrap interval contains the point accuracy, has the binomial width and is
    /// reproducible from its seed.
    #[test]
    fn bootstrap_accuracy_interval() {
        let (truth, pred) = labels(160, 40); // accuracy 0.8, n 200
        let known = ["a", "b"];
        let ci = bootstrap_ci(&truth, &pred, &known, Metric::Accuracy, 1000, 7).unwrap();
        assert!(ci.0 < 0.8 && 0.8 < ci.1, "{ci:?}");
        // Normal approximation: ±1.96·sqrt(.8·.2/200) = ±0.0554.
        assert_abs_diff_eq!(ci.1 - ci.0, 2.0 * 0.0554, epsilon = 0.02);
        let again = bootstrap_ci(&truth, &pred, &known, Metric::Accuracy, 1000, 7).unwrap();
        assert_eq!(ci, again);
        assert!(bootstrap_ci(&truth, &pred, &known, Metric::MacroF1, 0, 7).is_err());
    }

    /// Perfect predictions give a degenerate interval at 1 for every metric.
    #[test]
    fn bootstrap_perfect_is_one() {
        let truth = ["a", "b", "c", "a"];
        for m in [Metric::Accuracy, Metric::MacroF1, Metric::WeightedF1] {
            assert_eq!(
                bootstrap_ci(&truth, &truth, &truth, m, 50, 1).unwrap(),
                (1.0, 1.0)
            );
        }
    }

    /// Percentiles interpolate like numpy: percentile([0,1,2,3], 2.5) = 0.075.
    #[test]
    fn percentile_matches_numpy() {
        let v = [0.0, 1.0, 2.0, 3.0];
        assert_abs_diff_eq!(percentile(&v, 2.5), 0.075, epsilon = 1e-12);
        assert_abs_diff_eq!(percentile(&v, 97.5), 2.925, epsilon = 1e-12);
    }

    /// Seed summary of [0.6, 0.7, 0.8]: mean 0.7, sd 0.1, CI ±4.302653·0.1/√3 (scipy).
    #[test]
    fn seed_summary_t_interval() {
        let s = summarize_over_seeds(&[0.6, 0.7, 0.8]).unwrap();
        assert_abs_diff_eq!(s.mean, 0.7, epsilon = 1e-12);
        assert_abs_diff_eq!(s.sd, 0.1, epsilon = 1e-12);
        let half = 4.30265273 * 0.1 / 3f64.sqrt();
        assert_abs_diff_eq!(s.ci95.0, 0.7 - half, epsilon = 1e-9);
        assert_eq!(s.n, 3);
        let one = summarize_over_seeds(&[0.5]).unwrap();
        assert!(one.sd.is_nan() && one.ci95.0.is_nan());
        assert!(summarize_over_seeds(&[]).is_err());
        assert!(summarize_over_seeds(&[f64::NAN]).is_err());
    }

    /// The large-df expansion agrees with scipy's t.ppf(0.975, df).
    #[test]
    fn t_quantile_beyond_table() {
        // scipy.stats.t.ppf(0.975, [31, 60, 1000])
        assert_abs_diff_eq!(t_quantile_975(31), 2.039513446396408, epsilon = 1e-7);
        assert_abs_diff_eq!(t_quantile_975(60), 2.0002978220142604, epsilon = 1e-8);
        assert_abs_diff_eq!(t_quantile_975(1000), 1.9623390808264083, epsilon = 1e-12);
    }

    /// 0.70 → 0.59 is 11 points and 15.71% relative.
    #[test]
    fn accuracy_drop_points_and_relative() {
        let d = accuracy_drop(0.70, 0.59);
        assert_abs_diff_eq!(d.points, 11.0, epsilon = 1e-9);
        assert_abs_diff_eq!(d.relative_percent, 11.0 / 0.70, epsilon = 1e-9);
        assert!(accuracy_drop(0.0, 0.0).relative_percent.is_nan());
    }
}
