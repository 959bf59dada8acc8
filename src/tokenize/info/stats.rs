//! Small statistics used by the information measures: plug-in entropy and mutual
//! information of discrete variables, Spearman's rho with average ranks, Kendall's tau-b
//! (Knight's O(n log n) algorithm, as `scipy.stats.kendalltau`).

use std::cmp::Ordering;

/// Plug-in entropy in bits of the empirical distribution given by group sizes.
fn entropy_of_counts(counts: impl Iterator<Item = usize>, n: usize) -> f64 {
    let n = n as f64;
    counts
        .filter(|&c| c > 0)
        .map(|c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// Sizes of runs of equal elements in a sorted slice.
fn run_lengths<T: PartialEq>(sorted: &[T]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i + 1;
        while j < sorted.len() && sorted[j] == sorted[i] {
            j += 1;
        }
        out.push(j - i);
        i = j;
    }
    out
}

/// Plug-in entropy in bits of the values (each distinct value one outcome).
pub fn entropy_bits(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    entropy_of_counts(run_lengths(&v).into_iter(), v.len())
}

/// Plug-in mutual information in bits between two discrete variables observed in pairs:
/// `H(X) + H(Y) − H(X, Y)`, each distinct value one outcome. Never exceeds
/// `min(H(X), H(Y))` (up to rounding), so with `k` distinct `y` values it is ≤ log2(k).
pub fn mutual_information_bits(x: &[f64], y: &[f64]) -> f64 {
    let mut pairs: Vec<(f64, f64)> = x.iter().copied().zip(y.iter().copied()).collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let h_xy = entropy_of_counts(run_lengths(&pairs).into_iter(), pairs.len());
    (entropy_bits(x) + entropy_bits(y) - h_xy).max(0.0)
}

/// Ranks 1..n with ties given their average rank.
pub fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && values[order[j]] == values[order[i]] {
            j += 1;
        }
        let avg = (i + j + 1) as f64 / 2.0;
        for &k in &order[i..j] {
            ranks[k] = avg;
        }
        i = j;
    }
    ranks
}

/// Pearson correlation; `None` when fewer than 2 points or a variable is constant.
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len();
    if n < 2 || y.len() != n {
        return None;
    }
    let mx = x.iter().sum::<f64>() / n as f64;
    let my = y.iter().sum::<f64>() / n as f64;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    if sxx <= 0.0 || syy <= 0.0 {
        return None;
    }
    Some((sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0))
}

/// Spearman's rho (Pearson on average ranks); `None` when undefined.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    pearson(&average_ranks(x), &average_ranks(y))
}

/// Number of pairs `i < j` with `a[i] > a[j]`, sorting `a` (merge sort).
fn count_inversions(a: &mut [f64], buf: &mut Vec<f64>) -> u64 {
    let n = a.len();
    if n < 2 {
        return 0;
    }
    let mid = n / 2;
    let mut inv = count_inversions(&mut a[..mid], buf) + count_inversions(&mut a[mid..], buf);
    buf.clear();
    let (mut i, mut j) = (0, mid);
    while i < mid && j < n {
        if a[i].total_cmp(&a[j]) != Ordering::Greater {
            buf.push(a[i]);
            i += 1;
        } else {
            buf.push(a[j]);
            inv += (mid - i) as u64;
            j += 1;
        }
    }
    buf.extend_from_slice(&a[i..mid]);
    buf.extend_from_slice(&a[j..n]);
    a.copy_from_slice(buf);
    inv
}

/// Number of tied pairs in a sorted slice.
fn tied_pairs<T: PartialEq>(sorted: &[T]) -> u64 {
    run_lengths(sorted)
        .into_iter()
        .map(|c| (c as u64) * (c as u64 - 1) / 2)
        .sum()
}

/// Kendall's tau-b; `None` when fewer than 2 points or a variable is constant.
pub fn kendall_tau_b(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len();
    if n < 2 || y.len() != n {
        return None;
    }
    let mut pairs: Vec<(f64, f64)> = x.iter().copied().zip(y.iter().copied()).collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let xs: Vec<f64> = pairs.iter().map(|p| p.0).collect();
    let x_ties = tied_pairs(&xs);
    let joint_ties = tied_pairs(&pairs);
    let mut ys: Vec<f64> = pairs.iter().map(|p| p.1).collect();
    let discordant = count_inversions(&mut ys, &mut Vec::with_capacity(n));
    let y_ties = tied_pairs(&ys);
    let total = (n as u64) * (n as u64 - 1) / 2;
    if total == x_ties || total == y_ties {
        return None;
    }
    let con_minus_dis =
        total as f64 - x_ties as f64 - y_ties as f64 + joint_ties as f64 - 2.0 * discordant as f64;
    let tau = con_minus_dis / ((total - x_ties) as f64).sqrt() / ((total - y_ties) as f64).sqrt();
    Some(tau.clamp(-1.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;

    /// Kendall's tau-b and Spearman's rho agree with scipy on a small case with ties.
    ///
    /// ```python
    /// from scipy.stats import kendalltau, spearmanr
    /// x = [1, 2, 2, 3, 4, 5]; y = [2, 1, 3, 3, 5, 4]
    /// kendalltau(x, y).statistic   # 0.6428571428571429
    /// spearmanr(x, y).statistic    # 0.8088235294117647
    /// ```
    #[test]
    fn tau_and_rho_match_scipy() {
        let x = [1.0, 2.0, 2.0, 3.0, 4.0, 5.0];
        let y = [2.0, 1.0, 3.0, 3.0, 5.0, 4.0];
        assert_abs_diff_eq!(
            kendall_tau_b(&x, &y).unwrap(),
            0.6428571428571429,
            epsilon = 1e-12
        );
        assert_abs_diff_eq!(
            spearman(&x, &y).unwrap(),
            0.8088235294117647,
            epsilon = 1e-12
        );
        assert_eq!(kendall_tau_b(&[1.0, 1.0], &[1.0, 2.0]), None);
    }

    /// MI of a variable with itself is its entropy; with a constant it is 0.
    #[test]
    fn mutual_information_bounds() {
        let x = [1.0, 2.0, 3.0, 4.0];
        assert_abs_diff_eq!(mutual_information_bits(&x, &x), 2.0, epsilon = 1e-12);
        assert_abs_diff_eq!(mutual_information_bits(&x, &[0.0; 4]), 0.0, epsilon = 1e-12);
        // Two bins of two: 1 bit.
        assert_abs_diff_eq!(
            mutual_information_bits(&x, &[1.0, 1.0, 2.0, 2.0]),
            1.0,
            epsilon = 1e-12
        );
    }
}
