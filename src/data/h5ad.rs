//! Reading and writing AnnData h5ad files: the only module that touches HDF5.
//!
//! Format: <https://anndata.readthedocs.io/en/latest/fileformat-prose.html>. The reader
//! accepts the encodings of anndata ≥ 0.8, 0.7 and < 0.7; the writer produces the ≥ 0.8
//! encoding, which current `anndata.read_h5ad` opens.
//!
//! Validation is split in two on purpose. [`read_h5ad`] refuses files that are broken
//! whatever one does with them: bad structure, non-finite values, duplicate gene
//! names. [`validate`] refuses data that is intact but unusable for the analyses
//! (negative values, non-integer "counts", cells without any expression); every
//! analysis command calls it, while `inspect` can still describe such a file.

mod hdf;
mod legacy;
mod read;
mod write;

pub use read::{read_h5ad, read_var_column, ReadOptions};
pub use write::write_h5ad;

use crate::data::{Dataset, ValueKind};
use crate::error::{Error, Result};

/// Check that `ds` can be analysed as `expect`: values non-negative (both kinds: negative
/// log-normalized values mean scaled data, which must not be tokenized or re-normalized),
/// integer-valued when counts are expected, and no empty cells.
pub fn validate(ds: &Dataset, expect: ValueKind) -> Result<()> {
    if expect == ValueKind::Scaled {
        return Err(Error::invalid(
            &ds.source,
            "X",
            "the values are scaled (negative entries): analyses need counts or log-normalized \
             values; if the file keeps them in raw/X, pass --use-raw",
        ));
    }
    for r in 0..ds.n_obs() {
        let (idx, val) = ds.x.row(r);
        for (&c, &v) in idx.iter().zip(val) {
            let cell = &ds.cell_ids[r];
            let gene = &ds.gene_names[c as usize];
            if !v.is_finite() {
                return Err(Error::invalid(
                    &ds.source,
                    "X",
                    format!("value {v} at cell '{cell}' gene '{gene}' is not finite"),
                ));
            }
            if v < 0.0 {
                return Err(Error::invalid(
                    &ds.source,
                    "X",
                    format!(
                        "negative value {v} at cell '{cell}' gene '{gene}': expected {} (scaled data? try --use-raw)",
                        expect.as_str()
                    ),
                ));
            }
            if expect == ValueKind::Counts && v.fract() != 0.0 {
                return Err(Error::invalid(
                    &ds.source,
                    "X",
                    format!("non-integer value {v} at cell '{cell}' gene '{gene}' but counts were expected"),
                ));
            }
        }
    }
    ds.check_no_empty_cells()
}

/// Check that `ds` can be analysed as the kind it was read as (detected or declared):
/// every analysis command calls this on each input before fitting anything.
pub fn validate_for_analysis(ds: &Dataset) -> Result<()> {
    validate(ds, ds.value_kind)
}

#[cfg(test)]
mod tests;
