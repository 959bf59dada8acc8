//! Truncated SVD of a linear operator by randomized subspace iteration (Halko,
//! Martinsson & Tropp 2011, Algorithm 4.4), the stand-in for Seurat's `RunPCA` (irlba).
//!
//! The matrix is only touched through products `A·X` and `Aᵀ·Y` ([`Operator`]), so the
//! scaled expression matrix can stay sparse with implicit centring
//! ([`super::scaled_csr`]). Intermediate bases are orthonormalised by Cholesky QR in f64
//! (one Gram matrix and one triangular solve, both matrix products: far cheaper than
//! Gram–Schmidt on tall matrices); the final basis gets a second Cholesky QR pass
//! (CholQR2, Fukaya et al. 2014), and Gram–Schmidt is the fallback when the Gram matrix is
//! too ill-conditioned for Cholesky.

use ndarray::{Array2, ArrayView2, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// A real `rows × cols` matrix known through its products.
pub trait Operator: Sync {
    /// `(rows, cols)`.
    fn shape(&self) -> (usize, usize);
    /// `A · x` for `x` of shape `cols × l`.
    fn apply(&self, x: ArrayView2<f32>) -> Array2<f32>;
    /// `Aᵀ · y` for `y` of shape `rows × l`.
    fn apply_t(&self, y: ArrayView2<f32>) -> Array2<f32>;
}

impl Operator for ArrayView2<'_, f32> {
    fn shape(&self) -> (usize, usize) {
        self.dim()
    }
    fn apply(&self, x: ArrayView2<f32>) -> Array2<f32> {
        self.dot(&x)
    }
    fn apply_t(&self, y: ArrayView2<f32>) -> Array2<f32> {
        self.t().dot(&y)
    }
}

/// Leading `k` right singular vectors (p × k) of the dense `a` (n × p); see
/// [`truncated_svd_op`].
pub fn truncated_svd_right(
    a: ArrayView2<f32>,
    k: usize,
    oversampling: usize,
    iterations: usize,
    seed: u64,
) -> Array2<f32> {
    truncated_svd_op(&a, k, oversampling, iterations, seed)
}

/// Leading `k` right singular vectors (p × k) of the operator `a` (n × p) by randomized
/// subspace iteration with a seeded Gaussian start, `k + oversampling` directions and
/// `iterations` power steps; signs fixed so each vector's largest entry is positive.
pub fn truncated_svd_op<A: Operator>(
    a: &A,
    k: usize,
    oversampling: usize,
    iterations: usize,
    seed: u64,
) -> Array2<f32> {
    let (n, p) = a.shape();
    let l = (k + oversampling).min(n).min(p);
    let k = k.min(l);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let omega = Array2::<f32>::from_shape_fn((p, l), |_| StandardNormal.sample(&mut rng));
    let mut q = orthonormalize_columns(a.apply(omega.view()), 1);
    for _ in 0..iterations {
        let z = orthonormalize_columns(a.apply_t(q.view()), 1);
        q = orthonormalize_columns(a.apply(z.view()), 1);
    }
    let q = orthonormalize_columns(q, 2);
    // B = Qᵀ A (l × p); eigen-decompose B Bᵀ = U Σ² Uᵀ, then V = Bᵀ U Σ⁻¹.
    let bt = a.apply_t(q.view()).mapv(|v| v as f64);
    let (values, vectors) = symmetric_eigen(bt.t().dot(&bt));
    let mut v = Array2::<f32>::zeros((p, k));
    for (c, &value) in values.iter().enumerate().take(k) {
        let sigma = value.max(0.0).sqrt();
        let col = bt.dot(&vectors.column(c));
        let norm = if sigma > 0.0 {
            sigma
        } else {
            col.dot(&col).sqrt().max(1e-300)
        };
        let max_entry = col
            .iter()
            .copied()
            .fold(0.0f64, |m, x| if x.abs() > m.abs() { x } else { m });
        let sign = if max_entry < 0.0 { -1.0 } else { 1.0 };
        v.column_mut(c)
            .assign(&col.mapv(|x| (sign * x / norm) as f32));
    }
    v
}

/// Orthonormal basis of the columns of `m` by `passes` rounds of Cholesky QR in f64
/// (`G = MᵀM = RᵀR`, `M ← M R⁻¹`); falls back to Gram–Schmidt when a pivot of the
/// Cholesky factor is below 1e-12 of its diagonal entry (nearly dependent columns).
pub fn orthonormalize_columns(m: Array2<f32>, passes: usize) -> Array2<f32> {
    let mut q = m.mapv(|v| v as f64);
    for _ in 0..passes {
        let g = q.t().dot(&q);
        match upper_cholesky_inverse(&g) {
            Some(r_inv) => q = q.dot(&r_inv),
            None => return gram_schmidt(&q).mapv(|v| v as f32),
        }
    }
    q.mapv(|v| v as f32)
}

/// `R⁻¹` for the upper-triangular Cholesky factor `R` of the symmetric `g` (`g = RᵀR`),
/// or `None` when `g` is not numerically positive definite.
fn upper_cholesky_inverse(g: &Array2<f64>) -> Option<Array2<f64>> {
    let l = g.nrows();
    let mut r = Array2::<f64>::zeros((l, l));
    for j in 0..l {
        let mut d = g[[j, j]];
        for k in 0..j {
            d -= r[[k, j]] * r[[k, j]];
        }
        // Also rejects NaN (a comparison with NaN is false).
        let positive = d > 1e-12 * g[[j, j]] && g[[j, j]] > 0.0;
        if !positive {
            return None;
        }
        let rjj = d.sqrt();
        r[[j, j]] = rjj;
        for c in j + 1..l {
            let mut s = g[[j, c]];
            for k in 0..j {
                s -= r[[k, j]] * r[[k, c]];
            }
            r[[j, c]] = s / rjj;
        }
    }
    // Invert the upper-triangular R column by column (back substitution).
    let mut inv = Array2::<f64>::zeros((l, l));
    for c in 0..l {
        inv[[c, c]] = 1.0 / r[[c, c]];
        for i in (0..c).rev() {
            let mut s = 0.0;
            for k in i + 1..=c {
                s += r[[i, k]] * inv[[k, c]];
            }
            inv[[i, c]] = -s / r[[i, i]];
        }
    }
    Some(inv)
}

/// Orthonormal basis of the columns by modified Gram–Schmidt (two passes): the fallback
/// for (nearly) rank-deficient input, where Cholesky QR breaks down. Columns that are
/// linearly dependent become zero.
fn gram_schmidt(m: &Array2<f64>) -> Array2<f64> {
    let mut t = m.t().to_owned();
    let l = t.nrows();
    for _pass in 0..2 {
        for j in 0..l {
            for i in 0..j {
                let r = t.row(i).dot(&t.row(j));
                let (head, mut tail) = t.view_mut().split_at(Axis(0), j);
                tail.row_mut(0).scaled_add(-r, &head.row(i));
            }
            let norm = t.row(j).dot(&t.row(j)).sqrt();
            if norm > 1e-10 {
                t.row_mut(j).mapv_inplace(|v| v / norm);
            } else {
                t.row_mut(j).fill(0.0);
            }
        }
    }
    t.t().to_owned()
}

/// Eigenvalues (descending) and eigenvectors (columns) of a symmetric matrix, by cyclic
/// Jacobi rotations (used on the small l × l projected problem).
pub fn symmetric_eigen(mut a: Array2<f64>) -> (Vec<f64>, Array2<f64>) {
    let n = a.nrows();
    let mut v = Array2::<f64>::eye(n);
    let total: f64 = a.iter().map(|x| x * x).sum::<f64>().max(1e-300);
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[[i, j]].powi(2))
            .sum();
        if off <= 1e-26 * total {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[[p, q]];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[[q, q]] - a[[p, p]]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[[k, p]], a[[k, q]]);
                    a[[k, p]] = c * akp - s * akq;
                    a[[k, q]] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[[p, k]], a[[q, k]]);
                    a[[p, k]] = c * apk - s * aqk;
                    a[[q, k]] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[[k, p]], v[[k, q]]);
                    v[[k, p]] = c * vkp - s * vkq;
                    v[[k, q]] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| a[[j, j]].total_cmp(&a[[i, i]]));
    let values = order.iter().map(|&i| a[[i, i]]).collect();
    let vectors = v.select(Axis(1), &order);
    (values, vectors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// Cholesky QR gives orthonormal columns spanning the input; dependent columns fall
    /// back to Gram–Schmidt (zero column) instead of producing NaN.
    #[test]
    fn orthonormal_and_fallback() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let m = Array2::<f32>::from_shape_fn((50, 6), |_| rng.gen_range(-1.0..1.0));
        let q = orthonormalize_columns(m.clone(), 2);
        let g = q.t().dot(&q);
        for ((i, j), v) in g.indexed_iter() {
            let want = if i == j { 1.0 } else { 0.0 };
            assert!((v - want).abs() < 1e-5, "G[{i},{j}] = {v}");
        }
        // m's columns lie in span(q): projecting leaves them unchanged.
        let back = q.dot(&q.t().dot(&m));
        assert!(back.iter().zip(m.iter()).all(|(a, b)| (a - b).abs() < 1e-4));
        let mut dep = m.clone();
        let c0 = dep.column(0).to_owned();
        dep.column_mut(3).assign(&c0);
        let q = orthonormalize_columns(dep, 1);
        assert!(q.iter().all(|v| v.is_finite()));
        assert!(q.column(3).iter().all(|v| v.abs() < 1e-6));
    }
}
