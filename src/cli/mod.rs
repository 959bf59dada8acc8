//! Command implementations behind the `scrobust` binary. Each submodule holds a clap
//! `Args` struct and a `run` function; the binary only dispatches. `--json` output goes
//! to stdout as one object, human text to stderr.

pub mod inspect;
pub mod inspect_checkpoint;
pub mod predict;
pub mod select;
pub mod simulate;
pub mod study;
pub mod tokenize_info;
pub mod train;
pub mod transfer;

mod io;
pub use io::{check_outputs, read_input, require_cells, write_predictions, Staged};
