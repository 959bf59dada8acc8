//! Geneformer's dictionaries: Python pickles of `dict[str, int]` (token ids) and
//! `dict[str, numpy.float64]` (gene medians), read with serde-pickle (protocols 0–5).
//!
//! A numpy scalar pickles as `numpy.core.multiarray.scalar(dtype, raw_bytes)`. With
//! `keep_restore_state`, serde-pickle keeps such an object as the tuple of its arguments,
//! where the dtype has become its `__setstate__` tuple `(3, byte_order, …)`; the value is
//! decoded from the raw bytes (4 or 8 bytes: f32 or f64).

use crate::error::{Error, Result};
use serde_pickle::{DeOptions, HashableValue, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The one `STEM*.pkl` file in `dir` (Geneformer names them e.g.
/// `token_dictionary_gc104M.pkl`).
pub(super) fn find_dictionary(dir: &Path, stem: &str) -> Result<PathBuf> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with(stem) && name.ends_with(".pkl")
        })
        .collect();
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(Error::invalid(
            dir.display().to_string(),
            stem,
            format!(
                "no {stem}*.pkl: copy Geneformer's dictionary (shipped in its geneformer/ \
                 package folder) next to the model"
            ),
        )),
        _ => Err(Error::invalid(
            dir.display().to_string(),
            stem,
            format!("several candidates {found:?}: keep the one that belongs to the model"),
        )),
    }
}

/// Read `path` as a pickled dict with string keys.
fn read_dict(path: &Path) -> Result<Vec<(String, Value)>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let value = serde_pickle::value_from_slice(&bytes, DeOptions::new().keep_restore_state())
        .map_err(|e| Error::invalid(path.display().to_string(), "pickle", e.to_string()))?;
    let Value::Dict(map) = value else {
        return Err(Error::invalid(
            path.display().to_string(),
            "pickle",
            "is not a dict",
        ));
    };
    map.into_iter()
        .map(|(k, v)| match k {
            HashableValue::String(s) => Ok((s, v)),
            other => Err(Error::invalid(
                path.display().to_string(),
                format!("{other:?}"),
                "key is not a string",
            )),
        })
        .collect()
}

/// Geneformer's token dictionary: token → id.
pub(super) fn read_token_dictionary(path: &Path) -> Result<HashMap<String, u32>> {
    read_dict(path)?
        .into_iter()
        .map(|(k, v)| match v {
            Value::I64(i) if (0..=i64::from(u32::MAX)).contains(&i) => Ok((k, i as u32)),
            other => Err(Error::invalid(
                path.display().to_string(),
                k,
                format!("token id {other:?} is not a non-negative integer"),
            )),
        })
        .collect()
}

/// Geneformer's gene median dictionary: Ensembl id → non-zero median (positive, finite).
pub(super) fn read_median_dictionary(path: &Path) -> Result<HashMap<String, f64>> {
    read_dict(path)?
        .into_iter()
        .map(|(k, v)| {
            let m = match &v {
                Value::F64(f) => Some(*f),
                Value::I64(i) => Some(*i as f64),
                other => numpy_float(other),
            };
            let Some(m) = m else {
                return Err(Error::invalid(
                    path.display().to_string(),
                    k,
                    format!("median {v:?} is not a number"),
                ));
            };
            if !(m.is_finite() && m > 0.0) {
                return Err(Error::invalid(
                    path.display().to_string(),
                    k,
                    format!("median {m} is not positive and finite"),
                ));
            }
            Ok((k, m))
        })
        .collect()
}

/// The value of a pickled numpy float scalar (see the module docs), or None.
fn numpy_float(v: &Value) -> Option<f64> {
    let Value::Tuple(args) = v else { return None };
    let [Value::Tuple(dtype_state), Value::Bytes(raw)] = args.as_slice() else {
        return None;
    };
    let big_endian = matches!(dtype_state.get(1), Some(Value::String(o)) if o == ">");
    match raw.len() {
        8 => {
            let b: [u8; 8] = raw.as_slice().try_into().ok()?;
            Some(if big_endian {
                f64::from_be_bytes(b)
            } else {
                f64::from_le_bytes(b)
            })
        }
        4 => {
            let b: [u8; 4] = raw.as_slice().try_into().ok()?;
            let f = if big_endian {
                f32::from_be_bytes(b)
            } else {
                f32::from_le_bytes(b)
            };
            Some(f64::from(f))
        }
        _ => None,
    }
}
