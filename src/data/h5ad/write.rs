//! writer
use crate::data::Dataset;
use crate::error::Result;
use std::path::Path;
/// Write.
pub fn write_h5ad(_ds: &Dataset, _path: &Path) -> Result<()> {
    Ok(())
}
