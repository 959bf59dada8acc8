//! Helpers shared by the integration tests (each file under `tests/` is its own crate and
//! includes this module with `mod common;`).

use std::path::PathBuf;

/// The repository's real-data folder (`data/`): the h5ad files, their fixed splits and the
/// peer tools' predictions are part of the checkout, so the tests need nothing beside it.
pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data")
}
