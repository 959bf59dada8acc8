//! Helpers shared by the integration tests (each file under `tests/` is its own crate and
//! includes this module with `mod common;`).

use std::path::PathBuf;

/// The shared real-data folder: `$SCROBUST_SHARED_DATA`, else `../shared/data` beside the
/// crate. Panics with a clear message when it is missing: tests that need real data must
/// fail loudly, never pass silently.
pub fn shared_data_dir() -> PathBuf {
    let dir = std::env::var_os("SCROBUST_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    assert!(
        dir.is_dir(),
        "shared data folder {} not found: set SCROBUST_SHARED_DATA to the folder holding the h5ad files",
        dir.display()
    );
    dir
}
