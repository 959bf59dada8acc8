//! One error type for the crate. Every variant that comes from user input names the
//! file (or source), the key and the problem, so a message can be acted on.

use std::path::PathBuf;

/// Errors raised by scrobust.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input file does not exist.
    #[error("{path}: file not found")]
    FileNotFound { path: PathBuf },

    /// A file exists but cannot be opened as HDF5 / h5ad (wrong format, truncated).
    #[error("{path}: not a readable h5ad (HDF5) file: {reason}")]
    NotH5ad { path: PathBuf, reason: String },

    /// A required key (group, dataset, attribute) is missing from a file.
    #[error("{path}: key '{key}' not found{hint}")]
    MissingKey {
        path: PathBuf,
        key: String,
        /// Extra context such as the keys that do exist (starts with "; " when set).
        hint: String,
    },

    /// A key exists but its content is invalid (shape, dtype, values).
    #[error("{source_name}: '{key}': {problem}")]
    InvalidData {
        source_name: String,
        key: String,
        problem: String,
    },

    /// An obs column asked for by the user does not exist.
    #[error("{source_name}: obs column '{column}' not found; available columns: {available}")]
    MissingColumn {
        source_name: String,
        column: String,
        available: String,
    },

    /// A parameter value is out of its valid range.
    #[error("invalid parameter '{name}': {problem}")]
    InvalidParameter { name: String, problem: String },

    /// Reference and query cannot be combined (no shared genes, unknown classes, ...).
    #[error("incompatible reference and query: {0}")]
    Incompatible(String),

    /// An error inside the neural-network backend.
    #[error("model: {0}")]
    Model(String),

    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A config or result file could not be parsed.
    #[error("{path}: cannot parse: {problem}")]
    Parse { path: PathBuf, problem: String },
}

impl Error {
    /// Shorthand for [`Error::InvalidData`].
    pub fn invalid(
        source_name: impl Into<String>,
        key: impl Into<String>,
        problem: impl Into<String>,
    ) -> Self {
        Error::InvalidData {
            source_name: source_name.into(),
            key: key.into(),
            problem: problem.into(),
        }
    }

    /// Shorthand for [`Error::InvalidParameter`].
    pub fn param(name: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::InvalidParameter {
            name: name.into(),
            problem: problem.into(),
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Model(e.to_string())
    }
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
