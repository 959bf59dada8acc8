//! Small numeric helpers for the parameter estimators: digamma/trigamma (asymptotic
//! series after upward recurrence, Abramowitz & Stegun 6.3.18 and 6.4.12), robust
//! location/scale (median, MAD scaled like R's `mad`), and the logistic curve.

/// Digamma ψ(x) for x > 0.
pub(crate) fn digamma(mut x: f64) -> f64 {
    let mut acc = 0.0;
    // ψ(x) = ψ(x + 1) − 1/x moves x into the range where the series is accurate.
    while x < 6.0 {
        acc -= 1.0 / x;
        x += 1.0;
    }
    let f = 1.0 / (x * x);
    acc + x.ln()
        - 0.5 / x
        - f * (1.0 / 12.0 - f * (1.0 / 120.0 - f * (1.0 / 252.0 - f * (1.0 / 240.0 - f / 132.0))))
}

/// Trigamma ψ'(x) for x > 0.
pub(crate) fn trigamma(mut x: f64) -> f64 {
    let mut acc = 0.0;
    while x < 6.0 {
        acc += 1.0 / (x * x);
        x += 1.0;
    }
    let f = 1.0 / (x * x);
    acc + 1.0 / x + f / 2.0 + f / x * (1.0 / 6.0 - f * (1.0 / 30.0 - f * (1.0 / 42.0 - f / 30.0)))
}

/// Median of finite values (`NaN` when there are none). Sorts a copy.
pub(crate) fn median(values: &[f64]) -> f64 {
    quantile(values, 0.5)
}

/// Quantile `q` of the values with linear interpolation (R type 7).
pub(crate) fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let w = pos - lo as f64;
    if w == 0.0 {
        v[lo]
    } else {
        v[lo] * (1.0 - w) + v[hi] * w
    }
}

/// Median absolute deviation scaled by 1.4826 (consistent for the normal sd, as R's `mad`).
pub(crate) fn mad(values: &[f64]) -> f64 {
    let m = median(values);
    let dev: Vec<f64> = values.iter().map(|x| (x - m).abs()).collect();
    1.4826 * median(&dev)
}

/// Mean and (population) standard deviation.
pub(crate) fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// Logistic curve 1 / (1 + exp(−k (x − x0))), Splatter's dropout probability.
pub(crate) fn logistic(x: f64, x0: f64, k: f64) -> f64 {
    1.0 / (1.0 + (-k * (x - x0)).exp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;

    /// Digamma and trigamma match known values (scipy.special.digamma/polygamma(1, .)).
    #[test]
    fn polygamma_known_values() {
        // python: from scipy.special import digamma, polygamma
        //   digamma([0.5, 1, 3.7]) -> [-1.9635100260214235, -0.5772156649015329, 1.1671535065]
        //   polygamma(1, [0.5, 1, 3.7]) -> [4.934802200544679, 1.6449340668482264, 0.3100295]
        assert_abs_diff_eq!(digamma(0.5), -1.963_510_026_021_423_5, epsilon = 1e-10);
        assert_abs_diff_eq!(digamma(1.0), -0.577_215_664_901_532_9, epsilon = 1e-10);
        assert_abs_diff_eq!(trigamma(0.5), 4.934_802_200_544_679, epsilon = 1e-9);
        assert_abs_diff_eq!(trigamma(1.0), 1.644_934_066_848_226_4, epsilon = 1e-9);
        // ψ(x+1) − ψ(x) = 1/x holds at a non-integer point.
        assert_abs_diff_eq!(digamma(4.7) - digamma(3.7), 1.0 / 3.7, epsilon = 1e-12);
    }

    /// Median, quantile and MAD agree with R on a small vector.
    #[test]
    fn robust_stats() {
        let v = [1.0, 2.0, 3.0, 4.0, 100.0];
        assert_eq!(median(&v), 3.0);
        assert_eq!(quantile(&v, 0.25), 2.0);
        // R: mad(c(1,2,3,4,100)) = 1.4826
        assert_abs_diff_eq!(mad(&v), 1.4826, epsilon = 1e-12);
    }
}
