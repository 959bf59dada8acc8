//! Transfer anchors as in Seurat's `FindAnchors` (satijalab/seurat R/integration.R;
//! Stuart, Butler et al., Cell 2019): mutual nearest neighbours between reference and
//! query in the L2-normalised projected PCA (`FindAnchorPairs`), optional filtering in
//! gene space (`FilterAnchors`, with features from `TopDimFeatures`), and the
//! shared-neighbour score (`ScoreAnchors`) rescaled between its 0.01 and 0.9 quantiles.

use super::neighbors::{knn_exact, l2_normalize_rows, Neighbors, PartialNeighbors};
use crate::error::Result;
use ndarray::{Array2, ArrayView2, Axis};

/// Mutual nearest-neighbour pairs `(reference cell, query cell)`: query `j` is among the
/// first `k_anchor` query neighbours of reference `i` (`ab`) and `i` is among the first
/// `k_anchor` reference neighbours of `j` (`ba`). Ordered by reference cell, then by the
/// rank of `j` among `i`'s neighbours (Seurat's order).
pub fn find_anchor_pairs(ab: &Neighbors, ba: &Neighbors, k_anchor: usize) -> Vec<(usize, usize)> {
    let ka = k_anchor.min(ab.k()).min(ba.k());
    let mut pairs = Vec::new();
    for i in 0..ab.n_query() {
        for &j in &ab.indices(i)[..ka] {
            if ba.indices(j)[..ka].contains(&i) {
                pairs.push((i, j));
            }
        }
    }
    pairs
}

/// Shared-neighbour anchor scores: for anchor `(i, j)` the number of distinct cells shared
/// by `i`'s neighbourhood (`k_score` reference neighbours incl. itself, `k_score` query
/// neighbours) and `j`'s (`k_score` reference, `k_score` query neighbours incl. itself),
/// rescaled so the 0.01 quantile maps to 0 and the 0.9 quantile to 1, clipped to [0, 1].
/// `aa` and `bb` need only hold the anchor cells' own neighbourhoods.
pub fn score_anchors(
    pairs: &[(usize, usize)],
    aa: &PartialNeighbors,
    bb: &PartialNeighbors,
    ab: &Neighbors,
    ba: &Neighbors,
    k_score: usize,
    n_reference: usize,
) -> Vec<f64> {
    let ks = k_score.min(aa.k()).min(bb.k()).min(ab.k()).min(ba.k());
    let set = |own: &[usize], other: &[usize], own_offset: usize, other_offset: usize| {
        let mut s: Vec<usize> = own[..ks]
            .iter()
            .map(|&c| c + own_offset)
            .chain(other[..ks].iter().map(|&c| c + other_offset))
            .collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    let raw: Vec<f64> = pairs
        .iter()
        .map(|&(i, j)| {
            let a = set(aa.indices(i), ab.indices(i), 0, n_reference);
            let b = set(ba.indices(j), bb.indices(j), 0, n_reference);
            sorted_intersection_len(&a, &b) as f64
        })
        .collect();
    rescale_scores(&raw)
}

/// Rescale between the 0.01 and 0.9 quantiles (R's type 7) and clip to [0, 1]. When all
/// scores are equal the range is empty; every anchor then gets 1 (R would give NaN).
pub fn rescale_scores(raw: &[f64]) -> Vec<f64> {
    if raw.is_empty() {
        return vec![];
    }
    let mut sorted = raw.to_vec();
    sorted.sort_by(f64::total_cmp);
    let (lo, hi) = (quantile_type7(&sorted, 0.01), quantile_type7(&sorted, 0.9));
    if hi <= lo {
        return vec![1.0; raw.len()];
    }
    raw.iter()
        .map(|s| ((s - lo) / (hi - lo)).clamp(0.0, 1.0))
        .collect()
}

/// R's default quantile (type 7) of sorted data.
pub fn quantile_type7(sorted: &[f64], p: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

fn sorted_intersection_len(a: &[usize], b: &[usize]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

/// R's `round` (half to even) for the non-negative halves used by `Top(balanced = TRUE)`.
fn round_half_even(x: f64) -> usize {
    let r = x.round();
    if (x - x.trunc() - 0.5).abs() < 1e-12 && (r as usize) % 2 == 1 {
        (r - 1.0) as usize
    } else {
        r as usize
    }
}

/// Seurat's `TopDimFeatures`: per PC the `y/2` features with the highest and the `y/2`
/// with the lowest loadings, with `y` the largest count per PC (up to
/// `features_per_dim`) whose union over PCs stays below `max(2·PCs, max_features)`.
/// Returns feature (row) indices of `loadings` (features × PCs).
pub fn top_dim_features(
    loadings: ArrayView2<f32>,
    features_per_dim: usize,
    max_features: usize,
) -> Vec<usize> {
    let (p, d) = loadings.dim();
    let max_features = max_features.max(2 * d);
    let orders: Vec<Vec<usize>> = loadings
        .axis_iter(Axis(1))
        .map(|col| {
            let mut o: Vec<usize> = (0..p).collect();
            o.sort_by(|&a, &b| col[b].total_cmp(&col[a]).then(a.cmp(&b)));
            o
        })
        .collect();
    let union_for = |y: usize| -> Vec<usize> {
        let half = round_half_even(y.min(p) as f64 / 2.0);
        let mut seen = vec![false; p];
        let mut out = Vec::new();
        for o in &orders {
            for &f in o[..half].iter().chain(o[p - half..].iter().rev()) {
                if !seen[f] {
                    seen[f] = true;
                    out.push(f);
                }
            }
        }
        out
    };
    let mut best: Option<(usize, usize)> = None; // (count, y)
    for y in 1..=features_per_dim {
        let count = union_for(y).len();
        if count >= max_features {
            break;
        }
        if best.is_none_or(|(c, _)| count > c) {
            best = Some((count, y));
        }
    }
    union_for(best.map(|b| b.1).unwrap_or(2))
}

/// Seurat's `FilterAnchors`: keep anchor `(i, j)` when query cell `j` is among the
/// `k_filter` nearest query cells of reference cell `i` in L2-normalised gene space
/// (`reference_data`, `query_data`: cells × top features). Returns the kept pairs and
/// whether filtering was skipped because a data set has fewer than `k_filter` cells.
pub fn filter_anchors(
    pairs: &[(usize, usize)],
    reference_data: ArrayView2<f32>,
    query_data: ArrayView2<f32>,
    k_filter: usize,
) -> Result<(Vec<(usize, usize)>, bool)> {
    if reference_data.nrows().min(query_data.nrows()) < k_filter {
        return Ok((pairs.to_vec(), true));
    }
    let mut anchor_refs: Vec<usize> = pairs.iter().map(|p| p.0).collect();
    anchor_refs.dedup();
    let cn1: Array2<f32> = l2_normalize_rows(reference_data.select(Axis(0), &anchor_refs).view());
    let cn2 = l2_normalize_rows(query_data);
    let nn = knn_exact(cn2.view(), cn1.view(), k_filter)?;
    let mut row_of = std::collections::HashMap::new();
    for (r, &i) in anchor_refs.iter().enumerate() {
        row_of.insert(i, r);
    }
    let kept = pairs
        .iter()
        .copied()
        .filter(|&(i, j)| row_of.get(&i).is_some_and(|&r| nn.indices(r).contains(&j)))
        .collect();
    Ok((kept, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// Two well-separated pairs of points give exactly the mutual pairs, in Seurat's order.
    #[test]
    fn mutual_pairs_only() {
        let r = array![[0.0f32, 0.0], [10.0, 0.0], [0.2, 0.0]];
        let q = array![[0.05f32, 0.0], [10.1, 0.0]];
        let ab = knn_exact(q.view(), r.view(), 1).unwrap();
        let ba = knn_exact(r.view(), q.view(), 1).unwrap();
        // r2's nearest query cell is q0, but q0's nearest reference cell is r0: not mutual.
        assert_eq!(find_anchor_pairs(&ab, &ba, 1), vec![(0, 0), (1, 1)]);
    }

    /// Type-7 quantiles match R: quantile(c(1,2,3,4,10), c(0.01, 0.9)) = 1.04, 7.6.
    #[test]
    fn quantile_matches_r() {
        let x = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert!((quantile_type7(&x, 0.01) - 1.04).abs() < 1e-12);
        assert!((quantile_type7(&x, 0.9) - 7.6).abs() < 1e-12);
    }

    /// Rescaled scores lie in [0, 1], keep their order, and a constant set maps to 1.
    #[test]
    fn rescale_clips_and_handles_constant() {
        let s = rescale_scores(&[0.0, 5.0, 10.0, 20.0, 30.0, 31.0, 31.0, 31.0, 31.0, 40.0]);
        assert!(s.iter().all(|&v| (0.0..=1.0).contains(&v)));
        assert!(s.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(s[0], 0.0);
        assert_eq!(*s.last().unwrap(), 1.0);
        assert_eq!(rescale_scores(&[3.0, 3.0]), vec![1.0, 1.0]);
    }

    /// The shared-neighbour count of an anchor between identical data sets is maximal
    /// (each cell shares its whole neighbourhood with its twin).
    #[test]
    fn twin_cells_share_all_neighbours() {
        let x = array![
            [0.0f32, 0.0],
            [1.0, 0.0],
            [0.0, 1.0],
            [5.0, 5.0],
            [6.0, 5.0]
        ];
        let aa = knn_exact(x.view(), x.view(), 3).unwrap();
        let ab = knn_exact(x.view(), x.view(), 2).unwrap();
        let pairs = vec![(0, 0), (3, 3), (1, 2)];
        let ks = 2;
        let aa = PartialNeighbors::full(aa);
        let s = score_anchors(&pairs, &aa, &aa, &ab, &ab, ks, 5);
        // twins share 2 ref + 2 query cells; (1, 2) shares fewer
        assert_eq!(s[0], 1.0);
        assert_eq!(s[1], 1.0);
        assert!(s[2] < 1.0);
    }

    /// R's round-half-even drives how many features per side `Top` takes.
    #[test]
    fn round_half_even_like_r() {
        assert_eq!(round_half_even(0.5), 0);
        assert_eq!(round_half_even(1.5), 2);
        assert_eq!(round_half_even(2.5), 2);
        assert_eq!(round_half_even(2.0), 2);
    }

    /// Top features take both signs of each PC and stay below the feature cap.
    #[test]
    fn top_features_both_signs_under_cap() {
        let loadings =
            Array2::from_shape_fn((500, 3), |(i, j)| ((i * 7 + j * 13) % 101) as f32 - 50.0);
        let f = top_dim_features(loadings.view(), 100, 20);
        assert!(!f.is_empty() && f.len() < 20);
        let col = loadings.column(0);
        let max_i = (0..500)
            .max_by(|&a, &b| col[a].total_cmp(&col[b]).then(b.cmp(&a)))
            .unwrap();
        assert!(f.contains(&max_i));
    }

    /// Filtering drops an anchor whose query cell is far from the reference cell in gene
    /// space, and is skipped when a data set has fewer cells than k_filter.
    #[test]
    fn filter_drops_distant_pairs() {
        let r = array![[1.0f32, 0.0], [0.0, 1.0]];
        let q = array![[1.0f32, 0.1], [0.1, 1.0], [0.9, 0.0]];
        let pairs = vec![(0, 0), (0, 1), (1, 1)];
        let (kept, skipped) = filter_anchors(&pairs, r.view(), q.view(), 2).unwrap();
        assert!(!skipped);
        assert_eq!(kept, vec![(0, 0), (1, 1)]);
        let (all, skipped) = filter_anchors(&pairs, r.view(), q.view(), 5).unwrap();
        assert!(skipped);
        assert_eq!(all, pairs);
    }
}
