//! Writing h5ad in the anndata ≥ 0.8 encoding (`encoding-type`/`encoding-version`
//! attributes on every element), which `anndata.read_h5ad` opens: `X` as `csr_matrix`,
//! obs/var dataframes with `_index` and `column-order`, categorical columns as
//! `codes` + `categories`, obsm arrays and the empty `uns`, `layers`, `obsp`, `varm`,
//! `varp` groups. Spec: <https://anndata.readthedocs.io/en/latest/fileformat-prose.html>.
//!
//! The file is written to a temporary name in the target folder and renamed into place,
//! so a failed write never leaves a partial file at the destination.

use crate::data::{Column, Dataset};
use crate::error::{Error, Result};
use hdf5::types::{H5Type, VarLenUnicode};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Write `ds` to `path` atomically (temporary file in the same folder, then rename).
pub fn write_h5ad(ds: &Dataset, path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(Error::io(
            &dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "output folder does not exist"),
        ));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out.h5ad".to_string());
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{name}.{}-{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = write_file(ds, &tmp, path)
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e)));
    if result.is_err() {
        // Best effort: the temporary file may not exist if creation itself failed.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Context for write errors: the destination file.
struct W<'a> {
    path: &'a Path,
}

impl W<'_> {
    fn err(&self, key: &str) -> impl FnOnce(hdf5::Error) -> Error + '_ {
        let key = key.to_string();
        move |e| {
            Error::invalid(
                self.path.display().to_string(),
                key,
                format!("cannot write: {e}"),
            )
        }
    }

    fn str_attr(&self, loc: &hdf5::Location, name: &str, value: &str, key: &str) -> Result<()> {
        let v = self.vlen(value, key)?;
        loc.new_attr::<VarLenUnicode>()
            .create(name)
            .and_then(|a| a.write_scalar(&v))
            .map_err(self.err(key))
    }

    fn encoding(&self, loc: &hdf5::Location, kind: &str, version: &str, key: &str) -> Result<()> {
        self.str_attr(loc, "encoding-type", kind, key)?;
        self.str_attr(loc, "encoding-version", version, key)
    }

    fn vlen(&self, s: &str, key: &str) -> Result<VarLenUnicode> {
        s.parse::<VarLenUnicode>().map_err(|e| {
            Error::invalid(
                self.path.display().to_string(),
                key,
                format!("string {s:?} cannot be stored: {e}"),
            )
        })
    }

    fn group(
        &self,
        parent: &hdf5::Group,
        name: &str,
        kind: &str,
        version: &str,
        key: &str,
    ) -> Result<hdf5::Group> {
        let g = parent.create_group(name).map_err(self.err(key))?;
        self.encoding(&g, kind, version, key)?;
        Ok(g)
    }

    /// A 1-D (or, with `shape`, N-D) numeric dataset tagged `array`.
    fn array<T: H5Type>(
        &self,
        g: &hdf5::Group,
        name: &str,
        data: &[T],
        shape: &[usize],
        key: &str,
    ) -> Result<()> {
        let ds = g
            .new_dataset::<T>()
            .shape(shape)
            .create(name)
            .map_err(self.err(key))?;
        ds.write_raw(data).map_err(self.err(key))?;
        self.encoding(&ds, "array", "0.2.0", key)
    }

    fn strings(&self, g: &hdf5::Group, name: &str, values: &[String], key: &str) -> Result<()> {
        let v = values
            .iter()
            .map(|s| self.vlen(s, key))
            .collect::<Result<Vec<_>>>()?;
        let ds = g
            .new_dataset::<VarLenUnicode>()
            .shape([v.len()])
            .create(name)
            .map_err(self.err(key))?;
        ds.write_raw(&v).map_err(self.err(key))?;
        self.encoding(&ds, "string-array", "0.2.0", key)
    }
}

/// Write everything to `tmp`; errors name `dest`, the file the user asked for.
fn write_file(ds: &Dataset, tmp: &Path, dest: &Path) -> Result<()> {
    let w = W { path: dest };
    let file = hdf5::File::create(tmp).map_err(w.err("/"))?;
    w.encoding(&file, "anndata", "0.1.0", "/")?;
    write_x(&w, &file, ds)?;
    write_dataframe(&w, &file, "obs", &ds.cell_ids, &ds.obs)?;
    write_dataframe(&w, &file, "var", &ds.gene_names, &[])?;
    {
        let obsm = w.group(&file, "obsm", "dict", "0.1.0", "obsm")?;
        for (name, m) in &ds.obsm {
            let key = format!("obsm/{name}");
            if m.nrows() != ds.n_obs() {
                return Err(Error::invalid(
                    &ds.source,
                    key,
                    format!("has {} rows but there are {} cells", m.nrows(), ds.n_obs()),
                ));
            }
            let values: Vec<f32> = m.iter().copied().collect();
            w.array(&obsm, name, &values, &[m.nrows(), m.ncols()], &key)?;
        }
    }
    for name in ["uns", "layers", "obsp", "varm", "varp"] {
        w.group(&file, name, "dict", "0.1.0", name)?;
    }
    file.close().map_err(w.err("/"))
}

fn write_x(w: &W, file: &hdf5::File, ds: &Dataset) -> Result<()> {
    let x = w.group(file, "X", "csr_matrix", "0.1.0", "X")?;
    let (n_obs, n_vars) = ds.x.shape();
    x.new_attr::<i64>()
        .shape([2])
        .create("shape")
        .and_then(|a| a.write_raw(&[n_obs as i64, n_vars as i64]))
        .map_err(w.err("X"))?;
    let nnz = ds.x.nnz();
    write_plain(w, &x, "data", ds.x.data(), "X/data")?;
    let indices: Vec<i32> = ds.x.indices().iter().map(|&c| c as i32).collect();
    write_plain(w, &x, "indices", &indices, "X/indices")?;
    // scipy's default index type is int32; switch to int64 only when nnz needs it.
    if nnz <= i32::MAX as usize {
        let indptr: Vec<i32> = ds.x.indptr().iter().map(|&p| p as i32).collect();
        write_plain(w, &x, "indptr", &indptr, "X/indptr")
    } else {
        let indptr: Vec<i64> = ds.x.indptr().iter().map(|&p| p as i64).collect();
        write_plain(w, &x, "indptr", &indptr, "X/indptr")
    }
}

/// A 1-D dataset without encoding attributes (members of a sparse matrix group).
fn write_plain<T: H5Type>(w: &W, g: &hdf5::Group, name: &str, data: &[T], key: &str) -> Result<()> {
    let ds = g
        .new_dataset::<T>()
        .shape([data.len()])
        .create(name)
        .map_err(w.err(key))?;
    ds.write_raw(data).map_err(w.err(key))
}

fn write_dataframe(
    w: &W,
    file: &hdf5::File,
    key: &str,
    index: &[String],
    columns: &[(String, Column)],
) -> Result<()> {
    let g = w.group(file, key, "dataframe", "0.2.0", key)?;
    w.str_attr(&g, "_index", "_index", key)?;
    write_column_order(w, &g, key, columns)?;
    w.strings(&g, "_index", index, &format!("{key}/_index"))?;
    for (name, col) in columns {
        let ckey = format!("{key}/{name}");
        if name == "_index" || name.contains('/') {
            return Err(Error::invalid(
                w.path.display().to_string(),
                ckey,
                "column name cannot be '_index' or contain '/'",
            ));
        }
        match col {
            Column::Categorical { codes, categories } => {
                write_categorical(w, &g, name, &ckey, codes, categories)?
            }
            Column::Str(v) => w.strings(&g, name, v, &ckey)?,
            Column::Float(v) => w.array(&g, name, v, &[v.len()], &ckey)?,
            Column::Int(v) => w.array(&g, name, v, &[v.len()], &ckey)?,
            Column::Bool(v) => w.array(&g, name, v, &[v.len()], &ckey)?,
        }
    }
    Ok(())
}

/// The dataframe's `column-order` attribute: the column names in order.
fn write_column_order(
    w: &W,
    g: &hdf5::Group,
    key: &str,
    columns: &[(String, Column)],
) -> Result<()> {
    if columns.is_empty() {
        // anndata itself writes an empty float array when there are no columns.
        g.new_attr::<f64>()
            .shape([0])
            .create("column-order")
            .map_err(w.err(key))?;
    } else {
        let names = columns
            .iter()
            .map(|(n, _)| w.vlen(n, key))
            .collect::<Result<Vec<_>>>()?;
        g.new_attr::<VarLenUnicode>()
            .shape([names.len()])
            .create("column-order")
            .and_then(|a| a.write_raw(&names))
            .map_err(w.err(key))?;
    }
    Ok(())
}

/// A categorical column: group `name` of `g` (at `ckey`) with `ordered`, the codes and
/// the categories. Codes are checked before anything is written.
fn write_categorical(
    w: &W,
    g: &hdf5::Group,
    name: &str,
    ckey: &str,
    codes: &[i32],
    categories: &[String],
) -> Result<()> {
    if let Some(c) = codes
        .iter()
        .find(|&&c| c < -1 || c as i64 >= categories.len() as i64)
    {
        return Err(Error::invalid(
            w.path.display().to_string(),
            ckey,
            format!("categorical code {c} out of range"),
        ));
    }
    let cg = &w.group(g, name, "categorical", "0.2.0", ckey)?;
    cg.new_attr::<bool>()
        .create("ordered")
        .and_then(|a| a.write_scalar(&false))
        .map_err(w.err(ckey))?;
    let ck = format!("{ckey}/codes");
    // pandas picks the smallest signed type that holds the codes.
    match categories.len() {
        0..=127 => w.array(
            cg,
            "codes",
            &codes.iter().map(|&c| c as i8).collect::<Vec<_>>(),
            &[codes.len()],
            &ck,
        )?,
        128..=32767 => w.array(
            cg,
            "codes",
            &codes.iter().map(|&c| c as i16).collect::<Vec<_>>(),
            &[codes.len()],
            &ck,
        )?,
        _ => w.array(cg, "codes", codes, &[codes.len()], &ck)?,
    }
    w.strings(cg, "categories", categories, &format!("{ckey}/categories"))
}
