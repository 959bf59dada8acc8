//! Reading h5ad: `X` (CSR, CSC or dense), `raw`, the obs/var dataframes and obsm, in the
//! encodings of anndata ≥ 0.8, 0.7 and < 0.7 (compound-dataset dataframes, categories in
//! `uns/<col>_categories`, `raw.X` with `h5sparse_*` attributes).
//! Spec: <https://anndata.readthedocs.io/en/latest/fileformat-prose.html>.

use super::hdf::{self, Ctx, Kind};
use crate::data::{Column, CsrMatrix, Dataset, ValueKind};
use crate::error::{Error, Result};
use std::collections::HashSet;
use std::path::Path;

/// A dataframe as read: its index and its named columns.
pub(super) type Frame = (Vec<String>, Vec<(String, Column)>);

/// How to read an h5ad file.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Read `raw/X` and `raw/var` (or the legacy `raw.X`/`raw.var`) instead of `X`/`var`.
    /// Defaults to `false`.
    pub use_raw: bool,
    /// What the values are; `None` (the default) detects it with [`ValueKind::detect`].
    pub value_kind: Option<ValueKind>,
}

/// Read an h5ad file into a [`Dataset`].
///
/// Checks the matrix structure (indptr, indices, shape), that every stored value is
/// finite and that gene names are unique. Value-level suitability for analysis (no
/// negative values, integer counts, no empty cells) is checked by [`super::validate`].
pub fn read_h5ad(path: &Path, opts: &ReadOptions) -> Result<Dataset> {
    read_with_var(path, opts).map(|(ds, _)| ds)
}

/// Each gene's name and its value in the string column `column` of `var` (or `raw/var`
/// with `use_raw`), in [`read_h5ad`]'s gene order, e.g. Ensembl ids in `var["gene_ids"]`.
/// The file is read and checked as [`read_h5ad`] does.
pub fn read_var_column(
    path: &Path,
    opts: &ReadOptions,
    column: &str,
) -> Result<Vec<(String, Option<String>)>> {
    let (ds, var) = read_with_var(path, opts)?;
    let col = var
        .iter()
        .find(|(name, _)| name == column)
        .map(|(_, c)| c)
        .ok_or_else(|| Error::MissingKey {
            path: path.to_path_buf(),
            key: format!("var/{column}"),
            hint: format!(
                "; var columns present: {}",
                var.iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })?;
    let values = (0..ds.n_vars()).map(|i| col.get_str(i));
    Ok(ds.gene_names.into_iter().zip(values).collect())
}

/// [`read_h5ad`], also returning the `var` columns.
fn read_with_var(path: &Path, opts: &ReadOptions) -> Result<(Dataset, Vec<(String, Column)>)> {
    if !path.exists() {
        return Err(Error::FileNotFound {
            path: path.to_path_buf(),
        });
    }
    let file = hdf5::File::open(path).map_err(|e| Error::NotH5ad {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let file_size = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    let ctx = Ctx { path, file_size };
    let root: &hdf5::Group = &file;

    let (x_key, var_key) = if opts.use_raw {
        raw_keys(root, ctx)?
    } else {
        ("X", "var")
    };
    if !root.link_exists(x_key) {
        return Err(missing(root, ctx, x_key));
    }
    let x = read_matrix(root, x_key, ctx)?;
    let (n_obs, n_vars) = x.shape();
    let (cell_ids, obs) = read_dataframe(root, "obs", n_obs, ctx)?;
    let (gene_names, var) = read_dataframe(root, var_key, n_vars, ctx)?;
    // Only now that the stored indexes confirm the shape may buffers sized by it be made.
    let x = x.build(ctx)?;
    check_unique(&gene_names, ctx, &format!("{var_key} index (gene names)"))?;
    check_finite(&x, &cell_ids, &gene_names, ctx, x_key)?;
    let obsm = read_obsm(root, n_obs, ctx)?;
    let value_kind = opts
        .value_kind
        .unwrap_or_else(|| ValueKind::detect(x.data()));
    let ds = Dataset {
        x,
        cell_ids,
        gene_names,
        obs,
        obsm,
        value_kind,
        source: path.display().to_string(),
    };
    Ok((ds, var))
}

/// A [`Error::MissingKey`] listing the keys that do exist next to `key` (or why they
/// cannot be listed: in a corrupt file a key can be "missing" because its group is).
fn missing(root: &hdf5::Group, ctx: Ctx, key: &str) -> Error {
    Error::MissingKey {
        path: ctx.path.to_path_buf(),
        key: key.to_string(),
        hint: listing(root, "keys"),
    }
}

/// "; keys present: a, b" for `g`, or why they cannot be listed.
fn listing(g: &hdf5::Group, what: &str) -> String {
    match member_names(g) {
        Ok(names) if names.is_empty() => format!("; {what} present: (none)"),
        Ok(names) => format!("; {what} present: {}", names.join(", ")),
        Err(e) => format!("; the {what} present cannot be listed: {e}"),
    }
}

/// Open dataset `name` of `g` (`key` is its full name). A missing link is
/// [`Error::MissingKey`] with `hint`; a link that exists but does not open (a corrupt
/// object header) is [`Error::InvalidData`] with HDF5's reason rather than "not found".
fn open_dataset(
    g: &hdf5::Group,
    name: &str,
    ctx: Ctx,
    key: &str,
    hint: impl FnOnce() -> String,
) -> Result<hdf5::Dataset> {
    g.dataset(name).map_err(|e| {
        // A corrupt name index can fail the lookup of a link that the listing still shows.
        let listed = || member_names(g).is_ok_and(|names| names.iter().any(|n| n == name));
        if g.link_exists(name) || listed() {
            ctx.invalid(key, format!("cannot open: {e}"))
        } else {
            Error::MissingKey {
                path: ctx.path.to_path_buf(),
                key: key.to_string(),
                hint: hint(),
            }
        }
    })
}

/// The names of a group's members, sorted: HDF5 lists links in storage order, which
/// depends on the library version and on how the group is stored, and messages and the
/// fallback column order should not.
fn member_names(g: &hdf5::Group) -> hdf5::Result<Vec<String>> {
    let mut names = g.member_names()?;
    names.sort();
    Ok(names)
}

/// `raw/X` + `raw/var` (anndata ≥ 0.7) or `raw.X` + `raw.var` (older).
fn raw_keys(root: &hdf5::Group, ctx: Ctx) -> Result<(&'static str, &'static str)> {
    if root.link_exists("raw") && root.group("raw").is_ok_and(|g| g.link_exists("X")) {
        Ok(("raw/X", "raw/var"))
    } else if root.link_exists("raw.X") {
        Ok(("raw.X", "raw.var"))
    } else {
        Err(missing(
            root,
            ctx,
            "raw/X (or legacy raw.X), needed for --use-raw",
        ))
    }
}

/// X as stored, checked against its shape but not yet converted to CSR. Conversion
/// allocates buffers sized by the shape (row pointers, a transposition), and the shape is
/// metadata that a corrupt file can inflate (a CSR matrix's column count is bounded by
/// nothing else in `X`), so conversion waits until the obs and var indexes agree with it.
enum RawMatrix {
    Dense {
        n_rows: usize,
        n_cols: usize,
        values: Vec<f32>,
    },
    Compressed {
        n_rows: usize,
        n_cols: usize,
        is_csr: bool,
        indptr: Vec<usize>,
        indices: Vec<u32>,
        data: Vec<f32>,
    },
}

impl RawMatrix {
    fn shape(&self) -> (usize, usize) {
        match *self {
            RawMatrix::Dense { n_rows, n_cols, .. } => (n_rows, n_cols),
            RawMatrix::Compressed { n_rows, n_cols, .. } => (n_rows, n_cols),
        }
    }

    /// Convert to CSR (CSC is transposed, dense values are compressed).
    fn build(self, ctx: Ctx) -> Result<CsrMatrix> {
        let source = ctx.path.display().to_string();
        match self {
            RawMatrix::Dense {
                n_rows,
                n_cols,
                values,
            } => dense_to_csr(n_rows, n_cols, &values, &source),
            RawMatrix::Compressed {
                n_rows,
                n_cols,
                is_csr: true,
                indptr,
                indices,
                data,
            } => CsrMatrix::from_unsorted(n_rows, n_cols, indptr, indices, data, &source),
            RawMatrix::Compressed {
                n_rows,
                n_cols,
                is_csr: false,
                indptr,
                indices,
                data,
            } => {
                let (indptr, indices, data) =
                    transpose_compressed(n_cols, n_rows, &indptr, &indices, &data);
                CsrMatrix::new(n_rows, n_cols, indptr, indices, data, &source)
            }
        }
    }
}

/// Read a sparse group or a dense 2-D dataset.
fn read_matrix(root: &hdf5::Group, key: &str, ctx: Ctx) -> Result<RawMatrix> {
    if let Ok(g) = root.group(key) {
        return read_sparse(&g, key, ctx);
    }
    let ds = root
        .dataset(key)
        .map_err(|e| ctx.invalid(key, format!("neither a sparse group nor a dataset: {e}")))?;
    let shape = ds.shape();
    if shape.len() != 2 {
        return Err(ctx.invalid(
            key,
            format!("dense matrix must be 2-D, found shape {shape:?}"),
        ));
    }
    let (n_rows, n_cols) = (shape[0], shape[1]);
    if n_cols > u32::MAX as usize {
        return Err(ctx.invalid(
            key,
            format!("{n_cols} columns exceed the supported maximum"),
        ));
    }
    let values = hdf::read_f32(&ds, ctx, key)?;
    Ok(RawMatrix::Dense {
        n_rows,
        n_cols,
        values,
    })
}

/// Row-major dense values → CSR, keeping the non-zeros.
fn dense_to_csr(n_rows: usize, n_cols: usize, values: &[f32], source: &str) -> Result<CsrMatrix> {
    let mut indptr = Vec::with_capacity(n_rows + 1);
    indptr.push(0);
    let (mut indices, mut data) = (Vec::new(), Vec::new());
    for row in values.chunks(n_cols.max(1)).take(n_rows) {
        for (c, &v) in row.iter().enumerate() {
            if v != 0.0 {
                indices.push(c as u32);
                data.push(v);
            }
        }
        indptr.push(data.len());
    }
    if n_cols == 0 {
        indptr.resize(n_rows + 1, 0);
    }
    CsrMatrix::new(n_rows, n_cols, indptr, indices, data, source)
}

/// Read a `csr_matrix`/`csc_matrix` group (modern `encoding-type` + `shape`, or legacy
/// `h5sparse_format` + `h5sparse_shape`) and validate its arrays against the shape.
fn read_sparse(g: &hdf5::Group, key: &str, ctx: Ctx) -> Result<RawMatrix> {
    let is_csr = sparse_is_csr(g, key, ctx)?;
    let (n_rows, n_cols) = sparse_shape(g, key, ctx)?;
    let member = |name: &str| -> Result<hdf5::Dataset> {
        open_dataset(g, name, ctx, &format!("{key}/{name}"), || {
            listing(g, "members")
        })
    };
    let data = hdf::read_f32(&*member("data")?, ctx, &format!("{key}/data"))?;
    let indices = hdf::read_i64(&*member("indices")?, ctx, &format!("{key}/indices"))?;
    let indptr = hdf::read_i64(&*member("indptr")?, ctx, &format!("{key}/indptr"))?;
    // For CSC the compressed axis is columns.
    let (n_major, n_minor) = if is_csr {
        (n_rows, n_cols)
    } else {
        (n_cols, n_rows)
    };
    let (indptr, indices) =
        check_compressed(indptr, indices, data.len(), n_major, n_minor, ctx, key)?;
    Ok(RawMatrix::Compressed {
        n_rows,
        n_cols,
        is_csr,
        indptr,
        indices,
        data,
    })
}

/// Whether a sparse group is CSR (`true`) or CSC (`false`), from its encoding attribute.
fn sparse_is_csr(g: &hdf5::Group, key: &str, ctx: Ctx) -> Result<bool> {
    let format = match hdf::read_string_attr(g, "encoding-type", ctx, key)? {
        Some(f) => f,
        None => hdf::read_string_attr(g, "h5sparse_format", ctx, key)?.ok_or_else(|| {
            ctx.invalid(
                key,
                "sparse group has neither an 'encoding-type' nor an 'h5sparse_format' attribute",
            )
        })?,
    };
    match format.as_str() {
        "csr_matrix" | "csr" => Ok(true),
        "csc_matrix" | "csc" => Ok(false),
        other => Err(ctx.invalid(
            key,
            format!("unsupported matrix encoding '{other}' (expected csr_matrix or csc_matrix)"),
        )),
    }
}

/// The `shape` (or legacy `h5sparse_shape`) attribute of a sparse group.
fn sparse_shape(g: &hdf5::Group, key: &str, ctx: Ctx) -> Result<(usize, usize)> {
    let shape = match hdf::read_int_list_attr(g, "shape", ctx, key)? {
        Some(s) => s,
        None => hdf::read_int_list_attr(g, "h5sparse_shape", ctx, key)?
            .ok_or_else(|| ctx.invalid(key, "sparse group has no 'shape' attribute"))?,
    };
    if shape.len() != 2 || shape.iter().any(|&d| d < 0) {
        return Err(ctx.invalid(
            key,
            format!("shape attribute must be two non-negative numbers, found {shape:?}"),
        ));
    }
    if shape.iter().any(|&d| d > u32::MAX as i64) {
        return Err(ctx.invalid(
            key,
            format!("shape {shape:?} exceeds the supported maximum"),
        ));
    }
    Ok((shape[0] as usize, shape[1] as usize))
}

/// Validate compressed-sparse arrays against the shape and convert index types.
fn check_compressed(
    indptr: Vec<i64>,
    indices: Vec<i64>,
    nnz: usize,
    n_major: usize,
    n_minor: usize,
    ctx: Ctx,
    key: &str,
) -> Result<(Vec<usize>, Vec<u32>)> {
    let pkey = format!("{key}/indptr");
    if indptr.len() != n_major + 1 {
        return Err(ctx.invalid(
            &pkey,
            format!(
                "has {} entries but the shape implies {}",
                indptr.len(),
                n_major + 1
            ),
        ));
    }
    if indices.len() != nnz {
        return Err(ctx.invalid(
            &format!("{key}/indices"),
            format!("has {} entries but data has {nnz}", indices.len()),
        ));
    }
    if indptr[0] != 0 || indptr[n_major] != nnz as i64 {
        return Err(ctx.invalid(
            &pkey,
            format!(
                "must start at 0 and end at nnz = {nnz} (starts at {}, ends at {})",
                indptr[0], indptr[n_major]
            ),
        ));
    }
    if let Some(i) = indptr.windows(2).position(|w| w[1] < w[0]) {
        return Err(ctx.invalid(
            &pkey,
            format!(
                "decreases at position {i} ({} then {})",
                indptr[i],
                indptr[i + 1]
            ),
        ));
    }
    if let Some((k, &c)) = indices
        .iter()
        .enumerate()
        .find(|(_, &c)| c < 0 || c as usize >= n_minor)
    {
        return Err(ctx.invalid(
            &format!("{key}/indices"),
            format!("index {c} at position {k} out of range 0..{n_minor}"),
        ));
    }
    Ok((
        indptr.into_iter().map(|p| p as usize).collect(),
        indices.into_iter().map(|c| c as u32).collect(),
    ))
}

/// Transpose compressed arrays (CSC with `n_major` columns → CSR with `n_minor` rows).
/// Entries come out sorted by column within each row because columns are visited in order.
fn transpose_compressed(
    n_major: usize,
    n_minor: usize,
    indptr: &[usize],
    indices: &[u32],
    data: &[f32],
) -> (Vec<usize>, Vec<u32>, Vec<f32>) {
    let mut counts = vec![0usize; n_minor + 1];
    for &r in indices {
        counts[r as usize + 1] += 1;
    }
    for i in 0..n_minor {
        counts[i + 1] += counts[i];
    }
    let out_ptr = counts.clone();
    let mut next = counts;
    let mut out_idx = vec![0u32; indices.len()];
    let mut out_val = vec![0f32; data.len()];
    for col in 0..n_major {
        for k in indptr[col]..indptr[col + 1] {
            let r = indices[k] as usize;
            out_idx[next[r]] = col as u32;
            out_val[next[r]] = data[k];
            next[r] += 1;
        }
    }
    (out_ptr, out_idx, out_val)
}

/// Error on NaN/±inf, naming the first offending cell and gene.
fn check_finite(
    x: &CsrMatrix,
    cells: &[String],
    genes: &[String],
    ctx: Ctx,
    key: &str,
) -> Result<()> {
    let bad = x.data().iter().filter(|v| !v.is_finite()).count();
    if bad == 0 {
        return Ok(());
    }
    for (r, cell) in cells.iter().enumerate() {
        let (idx, val) = x.row(r);
        if let Some((c, v)) = idx.iter().zip(val).find(|(_, v)| !v.is_finite()) {
            return Err(ctx.invalid(
                key,
                format!(
                    "{bad} non-finite value(s); first: {v} at cell '{}' gene '{}'",
                    cell, genes[*c as usize]
                ),
            ));
        }
    }
    Ok(())
}

/// Error naming the first duplicated name.
fn check_unique(names: &[String], ctx: Ctx, what: &str) -> Result<()> {
    let mut seen = HashSet::with_capacity(names.len());
    for (i, n) in names.iter().enumerate() {
        if !seen.insert(n.as_str()) {
            return Err(ctx.invalid(
                what,
                format!(
                    "duplicate name '{n}' (first repeat at position {i}); names must be unique"
                ),
            ));
        }
    }
    Ok(())
}

/// Read a dataframe (obs or var): its index and its columns. Handles the group layout
/// (anndata ≥ 0.7) and the compound-dataset layout (anndata < 0.7).
fn read_dataframe(root: &hdf5::Group, key: &str, n: usize, ctx: Ctx) -> Result<Frame> {
    if !root.link_exists(key) {
        return Err(missing(root, ctx, key));
    }
    let (index, columns) = match root.group(key) {
        Ok(g) => read_group_dataframe(&g, key, n, ctx)?,
        Err(_) => {
            let ds = root.dataset(key).map_err(ctx.h5(key))?;
            super::legacy::read_compound_dataframe(root, &ds, key, ctx)?
        }
    };
    if index.len() != n {
        return Err(ctx.invalid(
            key,
            format!(
                "index has {} entries but X has {n} along this axis",
                index.len()
            ),
        ));
    }
    for (name, col) in &columns {
        if col.len() != n {
            return Err(ctx.invalid(
                &format!("{key}/{name}"),
                format!("column has {} entries, expected {n}", col.len()),
            ));
        }
    }
    Ok((index, columns))
}

fn read_group_dataframe(g: &hdf5::Group, key: &str, n: usize, ctx: Ctx) -> Result<Frame> {
    let index_name = match hdf::read_string_attr(g, "_index", ctx, key)? {
        Some(name) => name,
        None if g.link_exists("_index") => "_index".to_string(),
        None if g.link_exists("index") => "index".to_string(),
        None => {
            return Err(Error::MissingKey {
                path: ctx.path.to_path_buf(),
                key: format!("{key}/_index"),
                hint: "; the dataframe has no '_index' attribute or index dataset".to_string(),
            })
        }
    };
    let index_key = format!("{key}/{index_name}");
    let index = read_string_values(g, &index_name, n, ctx, &index_key, || {
        "; named by the '_index' attribute".to_string()
    })?;
    let order = match hdf::read_string_list_attr(g, "column-order", ctx, key)? {
        Some(order) => order,
        None => {
            let mut names = member_names(g).map_err(ctx.h5(key))?;
            names.retain(|m| m != &index_name && m != "__categories");
            names
        }
    };
    let mut columns = Vec::with_capacity(order.len());
    for name in order {
        if let Some(col) = read_group_column(g, &name, n, ctx, &format!("{key}/{name}"))? {
            columns.push((name, col));
        }
    }
    Ok((index, columns))
}

/// Strings stored as a dataset, or as the `nullable-string-array` group (values + mask)
/// that anndata ≥ 0.11 writes for pandas' string dtype (index and categories included).
fn read_string_values(
    g: &hdf5::Group,
    name: &str,
    n: usize,
    ctx: Ctx,
    key: &str,
    hint: impl FnOnce() -> String,
) -> Result<Vec<String>> {
    if let Ok(sub) = g.group(name) {
        // Only this encoding: a categorical group here could link back to its parent
        // (HDF5 allows cycles) and recurse without end.
        let enc = hdf::read_string_attr(&sub, "encoding-type", ctx, key)?.unwrap_or_default();
        if enc != "nullable-string-array" {
            return Err(ctx.invalid(key, format!("a '{enc}' group, not a string array")));
        }
        return match read_group_column(g, name, n, ctx, key)? {
            Some(Column::Str(v)) => Ok(v),
            _ => Err(ctx.invalid(key, "a group that is not a (nullable) string array")),
        };
    }
    hdf::read_strings(&*open_dataset(g, name, ctx, key, hint)?, ctx, key)
}

/// One dataframe column; `None` for encodings this reader does not represent (they are
/// skipped rather than failing the whole file).
fn read_group_column(
    g: &hdf5::Group,
    name: &str,
    n: usize,
    ctx: Ctx,
    key: &str,
) -> Result<Option<Column>> {
    if !g.link_exists(name) {
        return Err(Error::MissingKey {
            path: ctx.path.to_path_buf(),
            key: key.to_string(),
            hint: "; listed in 'column-order' but absent".to_string(),
        });
    }
    if let Ok(sub) = g.group(name) {
        let enc = hdf::read_string_attr(&sub, "encoding-type", ctx, key)?.unwrap_or_default();
        let ds = |m: &str| {
            open_dataset(&sub, m, ctx, &format!("{key}/{m}"), || {
                format!("; the '{enc}' encoding needs it")
            })
        };
        return match enc.as_str() {
            "categorical" => {
                let codes = hdf::read_i64(&*ds("codes")?, ctx, &format!("{key}/codes"))?;
                let categories = read_string_values(
                    &sub,
                    "categories",
                    n,
                    ctx,
                    &format!("{key}/categories"),
                    || format!("; the '{enc}' encoding needs it"),
                )?;
                categorical(codes, categories, ctx, key).map(Some)
            }
            "nullable-integer" | "nullable-boolean" | "nullable-string-array" => {
                let mask = hdf::read_bools(&*ds("mask")?, ctx, &format!("{key}/mask"))?;
                let values = ds("values")?;
                let col = if enc == "nullable-integer" {
                    let v = hdf::read_f64(&values, ctx, &format!("{key}/values"))?;
                    Column::Float(
                        v.into_iter()
                            .zip(&mask)
                            .map(|(x, &m)| if m { f64::NAN } else { x })
                            .collect(),
                    )
                } else {
                    let v = if enc == "nullable-boolean" {
                        hdf::read_bools(&values, ctx, key)?
                            .iter()
                            .map(|b| b.to_string())
                            .collect()
                    } else {
                        hdf::read_strings(&values, ctx, key)?
                    };
                    Column::Str(
                        v.into_iter()
                            .zip(&mask)
                            .map(|(x, &m)| if m { String::new() } else { x })
                            .collect(),
                    )
                };
                Ok(Some(col))
            }
            _ => Ok(None),
        };
    }
    let ds = g.dataset(name).map_err(ctx.h5(key))?;
    // anndata 0.7: integer codes with the categories in `__categories/<name>`.
    if let Ok(cats) = g.group("__categories").and_then(|c| c.dataset(name)) {
        let codes = hdf::read_i64(&ds, ctx, key)?;
        let categories = hdf::read_strings(&cats, ctx, &format!("{key} categories"))?;
        return categorical(codes, categories, ctx, key).map(Some);
    }
    if ds.ndim() != 1 || ds.size() != n {
        return Ok(None);
    }
    plain_column(&ds, ctx, key)
}

/// A column from a plain 1-D dataset, typed by its element type.
fn plain_column(ds: &hdf5::Dataset, ctx: Ctx, key: &str) -> Result<Option<Column>> {
    Ok(match hdf::kind_of(&hdf::descriptor(ds, ctx, key)?) {
        Kind::Str => Some(Column::Str(hdf::read_strings(ds, ctx, key)?)),
        Kind::Int => Some(Column::Int(hdf::read_i64(ds, ctx, key)?)),
        Kind::Float => Some(Column::Float(hdf::read_f64(ds, ctx, key)?)),
        Kind::Bool => Some(Column::Bool(hdf::read_bools(ds, ctx, key)?)),
        Kind::Compound(_) | Kind::Other(_) => None,
    })
}

/// Build a categorical column, checking every code is -1 (missing) or a valid category.
pub(super) fn categorical(
    codes: Vec<i64>,
    categories: Vec<String>,
    ctx: Ctx,
    key: &str,
) -> Result<Column> {
    // Codes are kept as i32, so a valid code must also fit one.
    let n_valid = categories.len().min(i32::MAX as usize) as i64;
    if let Some(&c) = codes.iter().find(|&&c| c < -1 || c >= n_valid) {
        return Err(ctx.invalid(
            key,
            format!(
                "categorical code {c} out of range (-1..{} categories)",
                categories.len()
            ),
        ));
    }
    Ok(Column::Categorical {
        codes: codes.into_iter().map(|c| c as i32).collect(),
        categories,
    })
}

/// obsm entries stored as 2-D numeric datasets with one row per cell (others skipped).
fn read_obsm(
    root: &hdf5::Group,
    n_obs: usize,
    ctx: Ctx,
) -> Result<Vec<(String, ndarray::Array2<f32>)>> {
    let Ok(g) = root.group("obsm") else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for name in member_names(&g).map_err(ctx.h5("obsm"))? {
        let Ok(ds) = g.dataset(&name) else { continue };
        let shape = ds.shape();
        let key = format!("obsm/{name}");
        let numeric = matches!(
            hdf::descriptor(&ds, ctx, &key).map(|d| hdf::kind_of(&d)),
            Ok(Kind::Int | Kind::Float)
        );
        if shape.len() != 2 || shape[0] != n_obs || !numeric {
            continue;
        }
        let values = hdf::read_f32(&ds, ctx, &key)?;
        let arr = ndarray::Array2::from_shape_vec((shape[0], shape[1]), values)
            .map_err(|e| ctx.invalid(&key, e.to_string()))?;
        out.push((name, arr));
    }
    Ok(out)
}
