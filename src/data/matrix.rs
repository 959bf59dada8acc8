//! A compressed sparse row (CSR) matrix of `f32` cells × genes, the one in-memory
//! expression layout of scrobust. Rows are cells, columns genes, as in AnnData.

use crate::error::{Error, Result};
use ndarray::Array2;

/// Cells × genes matrix in CSR form. Column indices within a row are strictly
/// increasing (validated on construction).
#[derive(Debug, Clone, PartialEq)]
pub struct CsrMatrix {
    n_rows: usize,
    n_cols: usize,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    data: Vec<f32>,
}

impl CsrMatrix {
    /// Build a CSR matrix and check its invariants: `indptr` has `n_rows + 1` entries,
    /// starts at 0, never decreases and ends at `nnz`; every index is `< n_cols`;
    /// indices are strictly increasing within a row. `source` names the origin in errors.
    pub fn new(
        n_rows: usize,
        n_cols: usize,
        indptr: Vec<usize>,
        indices: Vec<u32>,
        data: Vec<f32>,
        source: &str,
    ) -> Result<Self> {
        if indptr.len() != n_rows + 1 {
            return Err(Error::invalid(
                source,
                "X/indptr",
                format!(
                    "has {} entries but shape says {} rows (expected {})",
                    indptr.len(),
                    n_rows,
                    n_rows + 1
                ),
            ));
        }
        if indices.len() != data.len() {
            return Err(Error::invalid(
                source,
                "X/indices",
                format!("{} indices but {} data values", indices.len(), data.len()),
            ));
        }
        if indptr[0] != 0 || indptr[n_rows] != data.len() {
            return Err(Error::invalid(
                source,
                "X/indptr",
                format!(
                    "must start at 0 and end at nnz = {} (starts at {}, ends at {})",
                    data.len(),
                    indptr[0],
                    indptr[n_rows]
                ),
            ));
        }
        for r in 0..n_rows {
            let (a, b) = (indptr[r], indptr[r + 1]);
            if b < a {
                return Err(Error::invalid(
                    source,
                    "X/indptr",
                    format!("decreases at row {r}"),
                ));
            }
            let mut prev: Option<u32> = None;
            for &c in &indices[a..b] {
                if c as usize >= n_cols {
                    return Err(Error::invalid(
                        source,
                        "X/indices",
                        format!("column index {c} out of range in row {r} (n_vars = {n_cols})"),
                    ));
                }
                if let Some(p) = prev {
                    if c <= p {
                        return Err(Error::invalid(
                            source,
                            "X/indices",
                            format!(
                                "column indices not strictly increasing in row {r} ({p} then {c})"
                            ),
                        ));
                    }
                }
                prev = Some(c);
            }
        }
        Ok(Self {
            n_rows,
            n_cols,
            indptr,
            indices,
            data,
        })
    }

    /// Like [`CsrMatrix::new`] but sorts each row's entries by column and sums duplicates
    /// first (CSC input and some writers produce unsorted rows).
    pub fn from_unsorted(
        n_rows: usize,
        n_cols: usize,
        indptr: Vec<usize>,
        indices: Vec<u32>,
        data: Vec<f32>,
        source: &str,
    ) -> Result<Self> {
        if indptr.len() != n_rows + 1
            || indices.len() != data.len()
            || indptr.last() != Some(&data.len())
        {
            // Let `new` produce the precise message.
            return Self::new(n_rows, n_cols, indptr, indices, data, source);
        }
        let mut new_indptr = Vec::with_capacity(n_rows + 1);
        new_indptr.push(0);
        let mut new_indices = Vec::with_capacity(indices.len());
        let mut new_data = Vec::with_capacity(data.len());
        let mut buf: Vec<(u32, f32)> = Vec::new();
        for r in 0..n_rows {
            let (a, b) = (indptr[r], indptr[r + 1]);
            if b < a || b > data.len() {
                return Err(Error::invalid(
                    source,
                    "X/indptr",
                    format!("decreases or overruns at row {r}"),
                ));
            }
            buf.clear();
            buf.extend(
                indices[a..b]
                    .iter()
                    .copied()
                    .zip(data[a..b].iter().copied()),
            );
            buf.sort_by_key(|&(c, _)| c);
            for &(c, v) in &buf {
                if new_indices.len() > *new_indptr.last().unwrap_or(&0)
                    && new_indices.last() == Some(&c)
                {
                    if let Some(last) = new_data.last_mut() {
                        *last += v;
                    }
                } else {
                    new_indices.push(c);
                    new_data.push(v);
                }
            }
            new_indptr.push(new_indices.len());
        }
        Self::new(n_rows, n_cols, new_indptr, new_indices, new_data, source)
    }

    /// A matrix from a dense array, keeping only non-zero entries.
    pub fn from_dense(dense: &Array2<f32>) -> Self {
        let (n_rows, n_cols) = dense.dim();
        let mut indptr = Vec::with_capacity(n_rows + 1);
        indptr.push(0);
        let mut indices = Vec::new();
        let mut data = Vec::new();
        for row in dense.rows() {
            for (c, &v) in row.iter().enumerate() {
                if v != 0.0 {
                    indices.push(c as u32);
                    data.push(v);
                }
            }
            indptr.push(indices.len());
        }
        Self {
            n_rows,
            n_cols,
            indptr,
            indices,
            data,
        }
    }

    /// Number of rows (cells).
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }
    /// Number of columns (genes).
    pub fn n_cols(&self) -> usize {
        self.n_cols
    }
    /// `(n_rows, n_cols)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.n_rows, self.n_cols)
    }
    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.data.len()
    }
    /// Row pointer array (`n_rows + 1` entries).
    pub fn indptr(&self) -> &[usize] {
        &self.indptr
    }
    /// Column indices of stored entries.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }
    /// Stored values.
    pub fn data(&self) -> &[f32] {
        &self.data
    }
    /// Mutable stored values (the sparsity pattern cannot change through this).
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Column indices and values of row `i`.
    pub fn row(&self, i: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.indptr[i], self.indptr[i + 1]);
        (&self.indices[a..b], &self.data[a..b])
    }

    /// Sum of each row.
    pub fn row_sums(&self) -> Vec<f64> {
        (0..self.n_rows)
            .map(|i| self.row(i).1.iter().map(|&v| v as f64).sum())
            .collect()
    }

    /// Rows `rows` (in that order) as a new matrix.
    pub fn select_rows(&self, rows: &[usize]) -> Self {
        let mut indptr = Vec::with_capacity(rows.len() + 1);
        indptr.push(0);
        let mut indices = Vec::new();
        let mut data = Vec::new();
        for &r in rows {
            let (idx, val) = self.row(r);
            indices.extend_from_slice(idx);
            data.extend_from_slice(val);
            indptr.push(indices.len());
        }
        Self {
            n_rows: rows.len(),
            n_cols: self.n_cols,
            indptr,
            indices,
            data,
        }
    }

    /// Columns `cols` (in that order; each at most once) as a new matrix.
    pub fn select_cols(&self, cols: &[usize]) -> Self {
        let mut map = vec![u32::MAX; self.n_cols];
        for (new, &old) in cols.iter().enumerate() {
            map[old] = new as u32;
        }
        let mut indptr = Vec::with_capacity(self.n_rows + 1);
        indptr.push(0);
        let mut indices = Vec::new();
        let mut data = Vec::new();
        let mut buf: Vec<(u32, f32)> = Vec::new();
        for r in 0..self.n_rows {
            buf.clear();
            let (idx, val) = self.row(r);
            for (&c, &v) in idx.iter().zip(val) {
                let m = map[c as usize];
                if m != u32::MAX {
                    buf.push((m, v));
                }
            }
            buf.sort_by_key(|&(c, _)| c);
            for &(c, v) in &buf {
                indices.push(c);
                data.push(v);
            }
            indptr.push(indices.len());
        }
        Self {
            n_rows: self.n_rows,
            n_cols: cols.len(),
            indptr,
            indices,
            data,
        }
    }

    /// Dense copy (use only for small matrices or selected genes).
    pub fn to_dense(&self) -> Array2<f32> {
        let mut out = Array2::<f32>::zeros((self.n_rows, self.n_cols));
        for r in 0..self.n_rows {
            let (idx, val) = self.row(r);
            for (&c, &v) in idx.iter().zip(val) {
                out[[r, c as usize]] = v;
            }
        }
        out
    }

    /// Apply `f` to every stored value (zeros stay zero: `f` must map 0 to 0 to be meaningful).
    pub fn map_values(&self, f: impl Fn(f32) -> f32) -> Self {
        let mut out = self.clone();
        out.data.iter_mut().for_each(|v| *v = f(*v));
        out
    }

    /// Drop stored entries equal to zero.
    pub fn eliminate_zeros(&mut self) {
        let mut indptr = Vec::with_capacity(self.n_rows + 1);
        indptr.push(0);
        let mut w = 0;
        for r in 0..self.n_rows {
            let (a, b) = (self.indptr[r], self.indptr[r + 1]);
            for k in a..b {
                if self.data[k] != 0.0 {
                    self.data[w] = self.data[k];
                    self.indices[w] = self.indices[k];
                    w += 1;
                }
            }
            indptr.push(w);
        }
        self.data.truncate(w);
        self.indices.truncate(w);
        self.indptr = indptr;
    }

    /// Stack rows of several matrices with the same number of columns.
    pub fn vstack(parts: &[&CsrMatrix]) -> Result<Self> {
        let n_cols = parts.first().map(|m| m.n_cols).unwrap_or(0);
        if parts.iter().any(|m| m.n_cols != n_cols) {
            return Err(Error::Incompatible(
                "cannot stack matrices with different numbers of genes".into(),
            ));
        }
        let mut indptr = vec![0usize];
        let mut indices = Vec::new();
        let mut data = Vec::new();
        for m in parts {
            for r in 0..m.n_rows {
                let (idx, val) = m.row(r);
                indices.extend_from_slice(idx);
                data.extend_from_slice(val);
                indptr.push(indices.len());
            }
        }
        let n_rows = indptr.len() - 1;
        Ok(Self {
            n_rows,
            n_cols,
            indptr,
            indices,
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A malformed indptr is rejected with a message naming the key.
    #[test]
    fn rejects_bad_indptr() {
        let e = CsrMatrix::new(2, 3, vec![0, 1], vec![0], vec![1.0], "f.h5ad").unwrap_err();
        assert!(e.to_string().contains("X/indptr"), "{e}");
    }

    /// Column selection keeps values and re-sorts indices.
    #[test]
    fn select_cols_reorders() {
        let d = ndarray::array![[1.0f32, 0.0, 2.0], [0.0, 3.0, 0.0]];
        let m = CsrMatrix::from_dense(&d);
        let s = m.select_cols(&[2, 0]);
        assert_eq!(s.to_dense(), ndarray::array![[2.0f32, 1.0], [0.0, 0.0]]);
    }

    /// Unsorted rows with a duplicate entry are sorted and summed.
    #[test]
    fn from_unsorted_sums_duplicates() {
        let m = CsrMatrix::from_unsorted(1, 3, vec![0, 3], vec![2, 0, 2], vec![1.0, 2.0, 3.0], "t")
            .unwrap();
        assert_eq!(m.to_dense(), ndarray::array![[2.0f32, 0.0, 4.0]]);
    }
}
