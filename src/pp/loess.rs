//! One-dimensional LOESS (Cleveland, Grosse & Shyu 1992, "Local regression models",
//! ch. 8 of *Statistical Models in S*), matching the netlib `dloess` code behind R's
//! `loess(y ~ x, span, degree = 2)` and `skmisc.loess` (which scanpy's `seurat_v3`
//! flavor calls) with their defaults: gaussian family, tricube weights, and
//! `surface = "interpolate"` with `cell = 0.2`.
//!
//! "Interpolate" does not fit at every point. It builds a k-d tree over `x` (in one
//! dimension: recursive median splits until a cell holds at most `floor(n·span·cell)`
//! points), fits the local quadratic only at the cell vertices (keeping value and
//! slope), and evaluates anywhere by cubic Hermite interpolation inside the enclosing
//! cell (netlib routines `ehg126`, `ehg124`, `ehg127`, `ehg128`). The number of
//! vertices is about `2 / (span·cell)` whatever `n` is, so a fit costs O(n log n) for
//! the sort plus O(n) per vertex: 33k genes take milliseconds.

use crate::error::{Error, Result};

/// Local-quadratic LOESS parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Loess {
    span: f64,
    cell: f64,
}

impl Default for Loess {
    fn default() -> Self {
        Self {
            span: 0.75,
            cell: 0.2,
        }
    }
}

impl Loess {
    /// Parameters with `span` (fraction of points in each local fit); `cell` is 0.2.
    pub fn new(span: f64) -> Self {
        Self {
            span,
            ..Self::default()
        }
    }

    /// Fraction of points in each local neighbourhood, defaults to 0.75 (R's default;
    /// Seurat's vst uses 0.3).
    pub fn span(mut self, span: f64) -> Self {
        self.span = span;
        self
    }

    /// Maximum cell size of the k-d tree as a fraction of `n·span`, defaults to 0.2.
    pub fn cell(mut self, cell: f64) -> Self {
        self.cell = cell;
        self
    }

    /// Fit `y ~ x`. Needs at least 3 points, finite values and `0 < span ≤ 1`.
    pub fn fit(&self, x: &[f64], y: &[f64]) -> Result<FittedLoess> {
        if !(self.span > 0.0 && self.span <= 1.0) {
            return Err(Error::param(
                "span",
                format!("must be in (0, 1], got {}", self.span),
            ));
        }
        if self.cell.is_nan() || self.cell <= 0.0 {
            return Err(Error::param(
                "cell",
                format!("must be > 0, got {}", self.cell),
            ));
        }
        if x.len() != y.len() {
            return Err(Error::param(
                "loess",
                format!("x has {} values but y has {}", x.len(), y.len()),
            ));
        }
        let n = x.len();
        if n < 3 {
            return Err(Error::param(
                "loess",
                format!("needs at least 3 points, got {n}"),
            ));
        }
        if x.iter().chain(y).any(|v| !v.is_finite()) {
            return Err(Error::param("loess", "x and y must be finite"));
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
        let xs: Vec<f64> = order.iter().map(|&i| x[i]).collect();
        let ys: Vec<f64> = order.iter().map(|&i| y[i]).collect();

        // ehg126: bounding box expanded by 0.5% of the range.
        let (lo, hi) = (xs[0], xs[n - 1]);
        let margin = 0.005 * (hi - lo).max(1e-10 * lo.abs().max(hi.abs()) + 1e-30);
        let mut vertices = vec![lo - margin, hi + margin];
        // lowesd/loess_raw: fc = floor(n · span · cell), fd = 0.
        let fc = (n as f64 * self.span * self.cell).floor() as usize;
        split_cells(&xs, 0, n - 1, lo - margin, hi + margin, fc, &mut vertices);
        vertices.sort_by(f64::total_cmp);
        vertices.dedup();

        let nf = ((n as f64 * self.span).floor() as usize).clamp(1, n);
        let mut values = Vec::with_capacity(vertices.len());
        let mut slopes = Vec::with_capacity(vertices.len());
        for &q in &vertices {
            let (v, s) = local_quadratic(&xs, &ys, q, nf)?;
            values.push(v);
            slopes.push(s);
        }
        Ok(FittedLoess {
            vertices,
            values,
            slopes,
        })
    }
}

/// ehg124 in one dimension: split the sorted points `l..=u` (cell `[vlo, vhi]`) at
/// their median until a cell holds at most `fc` points; ties go to the upper cell.
fn split_cells(xs: &[f64], l: usize, u: usize, vlo: f64, vhi: f64, fc: usize, out: &mut Vec<f64>) {
    if u + 1 - l <= fc || vhi - vlo <= 0.0 {
        return;
    }
    let mut m = (l + u) / 2;
    // Move the split off a run of ties, trying m, m+1, m-1, m+2, ... (btyner's fix).
    let mut offset: isize = 0;
    loop {
        let mo = m as isize + offset;
        if mo >= u as isize || mo < l as isize {
            break;
        }
        let mo = mo as usize;
        if xs[mo] == xs[mo + 1] {
            offset = -offset;
            if offset >= 0 {
                offset += 1;
            }
        } else {
            m = mo;
            break;
        }
    }
    let xi = xs[m];
    if xi == vlo || xi == vhi {
        return;
    }
    out.push(xi);
    split_cells(xs, l, m, vlo, xi, fc, out);
    split_cells(xs, m + 1, u, xi, vhi, fc, out);
}

/// ehg127: weighted least-squares quadratic around `q` on the `nf` nearest points
/// with tricube weights `(1 - (d/h)^3)^3`, `h` the `nf`-th smallest distance.
/// Returns the fitted value and slope at `q`.
fn local_quadratic(xs: &[f64], ys: &[f64], q: f64, nf: usize) -> Result<(f64, f64)> {
    let n = xs.len();
    // Grow [a, b) outwards from q's insertion point, taking the closer side each time.
    let start = xs.partition_point(|&v| v < q);
    let (mut a, mut b) = (start, start);
    while b - a < nf {
        let left = if a > 0 {
            Some((xs[a - 1] - q).powi(2))
        } else {
            None
        };
        let right = if b < n {
            Some((xs[b] - q).powi(2))
        } else {
            None
        };
        match (left, right) {
            (Some(dl), Some(dr)) if dl <= dr => a -= 1,
            (Some(_), None) => a -= 1,
            _ => b += 1,
        }
    }
    let rho = (a..b).map(|i| (xs[i] - q).powi(2)).fold(0.0f64, f64::max);
    if rho <= 0.0 {
        return Err(Error::param(
            "loess",
            format!("all {nf} neighbours of x = {q} coincide: span too small"),
        ));
    }
    // Columns sqrt(w)·[1, dx, dx²] and response sqrt(w)·y, solved by QR (modified
    // Gram-Schmidt, twice) with a pseudo-inverse-like drop of dependent columns.
    let m = b - a;
    let mut cols = vec![vec![0.0f64; m]; 3];
    let mut eta = vec![0.0f64; m];
    for (k, i) in (a..b).enumerate() {
        let dx = xs[i] - q;
        let r = (dx * dx / rho).sqrt();
        let w = (1.0 - r * r * r).max(0.0).powi(3).sqrt();
        cols[0][k] = w;
        cols[1][k] = w * dx;
        cols[2][k] = w * dx * dx;
        eta[k] = w * ys[i];
    }
    let mut r = [[0.0f64; 3]; 3];
    let norms: Vec<f64> = cols.iter().map(|c| dot(c, c).sqrt()).collect();
    for j in 0..3 {
        for _ in 0..2 {
            for i in 0..j {
                let proj = dot(&cols[i], &cols[j]);
                r[i][j] += proj;
                let (ci, cj) = split_pair(&mut cols, i, j);
                cj.iter_mut()
                    .zip(ci.iter())
                    .for_each(|(v, &u)| *v -= proj * u);
            }
        }
        let nrm = dot(&cols[j], &cols[j]).sqrt();
        r[j][j] = nrm;
        if nrm > 0.0 {
            cols[j].iter_mut().for_each(|v| *v /= nrm);
        }
    }
    let qty: Vec<f64> = cols.iter().map(|c| dot(c, &eta)).collect();
    let mut beta = [0.0f64; 3];
    for j in (0..3).rev() {
        // Column j is (numerically) in the span of the previous ones: drop it.
        if r[j][j] <= 1e-10 * norms[j].max(f64::MIN_POSITIVE) {
            continue;
        }
        let mut s = qty[j];
        for (k, &bk) in beta.iter().enumerate().skip(j + 1) {
            s -= r[j][k] * bk;
        }
        beta[j] = s / r[j][j];
    }
    Ok((beta[0], beta[1]))
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Borrow column `i` immutably and column `j > i` mutably.
fn split_pair(cols: &mut [Vec<f64>], i: usize, j: usize) -> (&Vec<f64>, &mut Vec<f64>) {
    let (head, tail) = cols.split_at_mut(j);
    (&head[i], &mut tail[0])
}

/// A fitted LOESS surface: vertex positions with the local fit's value and slope.
#[derive(Debug, Clone, PartialEq)]
pub struct FittedLoess {
    vertices: Vec<f64>,
    values: Vec<f64>,
    slopes: Vec<f64>,
}

impl FittedLoess {
    /// k-d tree vertices (ascending), including the two bounding-box ends.
    pub fn vertices(&self) -> &[f64] {
        &self.vertices
    }

    /// ehg128: cubic Hermite interpolation in the cell containing `z` (a point equal
    /// to a split belongs to the lower cell). Points outside the bounding box are
    /// extrapolated from the end cell.
    pub fn predict(&self, z: f64) -> f64 {
        let nv = self.vertices.len();
        let cell = self.vertices[1..nv - 1].partition_point(|&v| v < z);
        let (v0, v1) = (self.vertices[cell], self.vertices[cell + 1]);
        let width = v1 - v0;
        let h = (z - v0) / width;
        let phi0 = (1.0 - h).powi(2) * (1.0 + 2.0 * h);
        let phi1 = h * h * (3.0 - 2.0 * h);
        let psi0 = h * (1.0 - h).powi(2);
        let psi1 = h * h * (h - 1.0);
        phi0 * self.values[cell]
            + phi1 * self.values[cell + 1]
            + (psi0 * self.slopes[cell] + psi1 * self.slopes[cell + 1]) * width
    }

    /// [`FittedLoess::predict`] at every point.
    pub fn predict_many(&self, z: &[f64]) -> Vec<f64> {
        z.iter().map(|&v| self.predict(v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;

    /// A local quadratic reproduces quadratic data exactly, and cubic Hermite
    /// interpolation of exact values and slopes keeps it exact between vertices.
    #[test]
    fn reproduces_quadratic() {
        let x: Vec<f64> = (0..200)
            .map(|i| (i as f64 * 0.37).sin() * 3.0 + i as f64 * 0.01)
            .collect();
        let y: Vec<f64> = x.iter().map(|v| 1.5 - 0.7 * v + 0.25 * v * v).collect();
        let fit = Loess::new(0.3).fit(&x, &y).unwrap();
        assert!(
            fit.vertices().len() > 5,
            "expected a k-d tree, got {:?}",
            fit.vertices()
        );
        for (xi, yi) in x.iter().zip(&y) {
            assert_abs_diff_eq!(fit.predict(*xi), *yi, epsilon = 1e-9);
        }
    }

    /// Fitted values equal skmisc.loess (netlib dloess, surface "interpolate") on a
    /// sample large enough for a multi-cell k-d tree (n = 120, fc = 7). Python
    /// (skmisc 0.5.3):
    /// ```text
    /// import numpy as np; from skmisc.loess import loess
    /// i = np.arange(120); x = np.sqrt(i) ; y = np.sin(x) + 0.1 * ((i * 7) % 5)
    /// m = loess(x, y, span=0.3, degree=2); m.fit(); f = m.outputs.fitted_values
    /// print(', '.join('%.12f' % v for v in f[::8]))
    /// ```
    #[test]
    fn matches_skmisc() {
        let x: Vec<f64> = (0..120).map(|i| (i as f64).sqrt()).collect();
        let y: Vec<f64> = (0..120)
            .map(|i| (i as f64).sqrt().sin() + 0.1 * ((i * 7) % 5) as f64)
            .collect();
        let fit = Loess::new(0.3).fit(&x, &y).unwrap();
        let got: Vec<f64> = x.iter().step_by(8).map(|&v| fit.predict(v)).collect();
        for (g, want) in got.iter().zip(SKMISC_FITTED) {
            assert_abs_diff_eq!(*g, want, epsilon = 1e-9);
        }
    }

    const SKMISC_FITTED: [f64; 15] = [
        0.395264311723,
        0.395684956006,
        -0.548701030878,
        -0.766306082611,
        -0.375441111636,
        0.241435261698,
        0.800655031137,
        1.129071109453,
        1.187520212861,
        1.003947916887,
        0.661201016931,
        0.242009022755,
        -0.165188200267,
        -0.498569089351,
        -0.703774749646,
    ];

    /// Bad input is an error, not a panic.
    #[test]
    fn rejects_bad_input() {
        assert!(Loess::new(0.3).fit(&[1.0, 2.0], &[1.0, 2.0]).is_err());
        assert!(Loess::new(0.0)
            .fit(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0])
            .is_err());
        assert!(Loess::new(0.5)
            .fit(&[1.0, f64::NAN, 3.0], &[1.0, 2.0, 3.0])
            .is_err());
    }
}
