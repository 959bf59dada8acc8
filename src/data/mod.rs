//! Data types: the cells × genes [`Dataset`] with its obs columns and labels, reading
//! and writing h5ad ([`h5ad`]), the seeded count simulator ([`simulate`]) and
//! reference/query splits ([`split`]).

pub mod h5ad;
mod matrix;
pub mod simulate;
pub mod split;

pub use matrix::CsrMatrix;

use crate::error::{Error, Result};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

/// What the numbers in `X` are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueKind {
    /// Raw UMI / read counts: non-negative integers.
    Counts,
    /// Already normalized and log-transformed (e.g. log1p of CP10k); must not be logged again.
    LogNormalized,
    /// Centred/scaled values (negative entries): described by `inspect`, refused by every
    /// analysis, which needs counts or log-normalized values (often in `raw/X`).
    Scaled,
}

impl ValueKind {
    /// Detect the kind from stored values. Any negative value means scaled data. Otherwise
    /// the matrix is counts when most of its non-zero values are integers: one stray 1.5 in
    /// a count matrix must not turn it into "log-normalized" (and skip normalization), it
    /// must make the counts invalid, which [`h5ad::validate`] then reports by cell and gene.
    /// Log-normalized values are practically never integers, so the majority rule separates
    /// the two with a wide margin.
    pub fn detect(values: &[f32]) -> Self {
        if values.iter().any(|&v| v < 0.0) {
            return ValueKind::Scaled;
        }
        let (mut nonzero, mut integer) = (0usize, 0usize);
        for &v in values.iter().filter(|v| **v != 0.0) {
            nonzero += 1;
            integer += usize::from(v.is_finite() && v.fract() == 0.0);
        }
        if 2 * integer >= nonzero {
            ValueKind::Counts
        } else {
            ValueKind::LogNormalized
        }
    }

    /// Name used in JSON and messages.
    pub fn as_str(&self) -> &'static str {
        match self {
            ValueKind::Counts => "counts",
            ValueKind::LogNormalized => "log_normalized",
            ValueKind::Scaled => "scaled",
        }
    }
}

impl std::str::FromStr for ValueKind {
    type Err = Error;

    /// `counts` or `log-normalized` (also `log_normalized`): the kinds a user may declare.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "counts" => Ok(ValueKind::Counts),
            "log-normalized" | "log_normalized" => Ok(ValueKind::LogNormalized),
            other => Err(Error::param(
                "value-kind",
                format!("'{other}' is not a value kind; use counts or log-normalized"),
            )),
        }
    }
}

/// One obs (cell annotation) column.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// Categorical: `codes[i]` indexes `categories`, `-1` is missing.
    Categorical {
        codes: Vec<i32>,
        categories: Vec<String>,
    },
    /// Plain strings.
    Str(Vec<String>),
    /// Floating point numbers.
    Float(Vec<f64>),
    /// Integers.
    Int(Vec<i64>),
    /// Booleans.
    Bool(Vec<bool>),
}

impl Column {
    /// Number of entries.
    pub fn len(&self) -> usize {
        match self {
            Column::Categorical { codes, .. } => codes.len(),
            Column::Str(v) => v.len(),
            Column::Float(v) => v.len(),
            Column::Int(v) => v.len(),
            Column::Bool(v) => v.len(),
        }
    }

    /// True when the column has no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entry `i` as text (`None` for a missing categorical value).
    pub fn get_str(&self, i: usize) -> Option<String> {
        match self {
            Column::Categorical { codes, categories } => {
                let c = codes[i];
                if c < 0 {
                    None
                } else {
                    categories.get(c as usize).cloned()
                }
            }
            Column::Str(v) => Some(v[i].clone()),
            Column::Float(v) => Some(format_number(v[i])),
            Column::Int(v) => Some(v[i].to_string()),
            Column::Bool(v) => Some(v[i].to_string()),
        }
    }

    /// Entries `rows` (in that order) as a new column.
    pub fn select(&self, rows: &[usize]) -> Column {
        match self {
            Column::Categorical { codes, categories } => Column::Categorical {
                codes: rows.iter().map(|&r| codes[r]).collect(),
                categories: categories.clone(),
            },
            Column::Str(v) => Column::Str(rows.iter().map(|&r| v[r].clone()).collect()),
            Column::Float(v) => Column::Float(rows.iter().map(|&r| v[r]).collect()),
            Column::Int(v) => Column::Int(rows.iter().map(|&r| v[r]).collect()),
            Column::Bool(v) => Column::Bool(rows.iter().map(|&r| v[r]).collect()),
        }
    }

    /// A categorical column from strings (categories sorted, as pandas does).
    pub fn categorical_from_strings(values: &[String]) -> Column {
        let mut categories: Vec<String> = values.to_vec();
        categories.sort();
        categories.dedup();
        let codes = values
            .iter()
            .map(|v| categories.binary_search(v).map(|i| i as i32).unwrap_or(-1))
            .collect();
        Column::Categorical { codes, categories }
    }
}

fn format_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// Cell-type labels as codes into a list of class names.
#[derive(Debug, Clone, PartialEq)]
pub struct Labels {
    /// `codes[i]` indexes `classes`; `None` means missing.
    pub codes: Vec<Option<usize>>,
    /// Class names.
    pub classes: Vec<String>,
}

impl Labels {
    /// Labels from strings; classes sorted.
    pub fn from_strings(values: &[String]) -> Self {
        let mut classes: Vec<String> = values.to_vec();
        classes.sort();
        classes.dedup();
        let codes = values
            .iter()
            .map(|v| classes.binary_search(v).ok())
            .collect();
        Self { codes, classes }
    }

    /// Label of cell `i` as text.
    pub fn name(&self, i: usize) -> Option<&str> {
        self.codes[i].map(|c| self.classes[c].as_str())
    }

    /// Cells per class, in class order (missing labels not counted).
    pub fn counts(&self) -> Vec<usize> {
        let mut counts = vec![0usize; self.classes.len()];
        for c in self.codes.iter().flatten() {
            counts[*c] += 1;
        }
        counts
    }

    /// Number of cells.
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    /// True when there are no cells.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }
}

/// A cells × genes expression data set with cell and gene annotations.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Expression values, cells × genes.
    pub x: CsrMatrix,
    /// Cell ids (obs index).
    pub cell_ids: Vec<String>,
    /// Gene names (var index).
    pub gene_names: Vec<String>,
    /// obs columns, in file order.
    pub obs: Vec<(String, Column)>,
    /// obsm embeddings (cells × k), written to h5ad when present.
    pub obsm: Vec<(String, Array2<f32>)>,
    /// What the values are.
    pub value_kind: ValueKind,
    /// Where the data came from (a file path or "simulated:..."), used in messages.
    pub source: String,
}

impl Dataset {
    /// Number of cells.
    pub fn n_obs(&self) -> usize {
        self.x.n_rows()
    }

    /// Number of genes.
    pub fn n_vars(&self) -> usize {
        self.x.n_cols()
    }

    /// Names of the obs columns.
    pub fn obs_columns(&self) -> Vec<String> {
        self.obs.iter().map(|(k, _)| k.clone()).collect()
    }

    /// An obs column, or an error listing the columns that exist.
    pub fn column(&self, key: &str) -> Result<&Column> {
        self.obs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, c)| c)
            .ok_or_else(|| Error::MissingColumn {
                source_name: self.source.clone(),
                column: key.to_string(),
                available: if self.obs.is_empty() {
                    "(none)".to_string()
                } else {
                    self.obs_columns().join(", ")
                },
            })
    }

    /// Add or replace an obs column.
    pub fn set_column(&mut self, key: &str, column: Column) -> Result<()> {
        if column.len() != self.n_obs() {
            return Err(Error::invalid(
                &self.source,
                format!("obs/{key}"),
                format!(
                    "column has {} entries but there are {} cells",
                    column.len(),
                    self.n_obs()
                ),
            ));
        }
        if let Some(slot) = self.obs.iter_mut().find(|(k, _)| k == key) {
            slot.1 = column;
        } else {
            self.obs.push((key.to_string(), column));
        }
        Ok(())
    }

    /// The labels in obs column `key` (any column type is read as text).
    pub fn labels(&self, key: &str) -> Result<Labels> {
        let col = self.column(key)?;
        match col {
            Column::Categorical { codes, categories } => Ok(Labels {
                codes: codes
                    .iter()
                    .map(|&c| {
                        if c < 0 || c as usize >= categories.len() {
                            None
                        } else {
                            Some(c as usize)
                        }
                    })
                    .collect(),
                classes: categories.clone(),
            }),
            Column::Float(v) if v.iter().any(|x| x.fract() != 0.0) => Err(Error::invalid(
                &self.source,
                format!("obs/{key}"),
                "a continuous (non-integer float) column cannot hold cell-type labels; \
                 pick a categorical or string column",
            )),
            other => {
                let strings: Vec<String> = (0..other.len())
                    .map(|i| other.get_str(i).unwrap_or_default())
                    .collect();
                Ok(Labels::from_strings(&strings))
            }
        }
    }

    /// Cells `rows` (in that order) as a new data set.
    pub fn select_cells(&self, rows: &[usize]) -> Dataset {
        Dataset {
            x: self.x.select_rows(rows),
            cell_ids: rows.iter().map(|&r| self.cell_ids[r].clone()).collect(),
            gene_names: self.gene_names.clone(),
            obs: self
                .obs
                .iter()
                .map(|(k, c)| (k.clone(), c.select(rows)))
                .collect(),
            obsm: self
                .obsm
                .iter()
                .map(|(k, m)| (k.clone(), m.select(ndarray::Axis(0), rows)))
                .collect(),
            value_kind: self.value_kind,
            source: self.source.clone(),
        }
    }

    /// Genes `cols` (in that order) as a new data set.
    pub fn select_genes(&self, cols: &[usize]) -> Dataset {
        Dataset {
            x: self.x.select_cols(cols),
            cell_ids: self.cell_ids.clone(),
            gene_names: cols.iter().map(|&c| self.gene_names[c].clone()).collect(),
            obs: self.obs.clone(),
            obsm: self.obsm.clone(),
            value_kind: self.value_kind,
            source: self.source.clone(),
        }
    }

    /// Check values for the declared kind: finite everywhere, and for counts non-negative.
    /// Returns an error naming the first offending cell and gene.
    pub fn validate_values(&self) -> Result<()> {
        for r in 0..self.n_obs() {
            let (idx, val) = self.x.row(r);
            for (&c, &v) in idx.iter().zip(val) {
                if !v.is_finite() || v < 0.0 {
                    return Err(Error::invalid(
                        &self.source,
                        "X",
                        format!(
                            "value {v} at cell '{}' gene '{}': expression must be finite and non-negative",
                            self.cell_ids[r], self.gene_names[c as usize]
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The cells that have at least one non-zero value, and how many were dropped: what
    /// scanpy's `filter_cells(min_counts=1)` keeps. For simulated data, where a cell can
    /// draw no count; user files with empty cells are refused instead
    /// ([`Dataset::check_no_empty_cells`]), since dropping them is the user's choice.
    pub fn without_empty_cells(&self) -> (Dataset, usize) {
        let expressed: Vec<usize> = (0..self.n_obs())
            .filter(|&r| self.x.row(r).1.iter().any(|&v| v != 0.0))
            .collect();
        let n_empty = self.n_obs() - expressed.len();
        (self.select_cells(&expressed), n_empty)
    }

    /// Error when a cell has no non-zero value (it cannot be normalized or tokenized).
    pub fn check_no_empty_cells(&self) -> Result<()> {
        let empty: Vec<&str> = (0..self.n_obs())
            .filter(|&r| self.x.row(r).1.iter().all(|&v| v == 0.0))
            .map(|r| self.cell_ids[r].as_str())
            .collect();
        if empty.is_empty() {
            Ok(())
        } else {
            Err(Error::invalid(
                &self.source,
                "X",
                format!(
                    "{} empty cell(s) with no non-zero value (first: '{}'); filter them out first",
                    empty.len(),
                    empty[0]
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One stray non-integer keeps a count matrix "counts" (validation then names it); one
    /// negative value makes it "scaled"; log1p(CP10k) values are "log-normalized".
    #[test]
    fn value_kind_detection_is_robust_to_stray_values() {
        let mut counts: Vec<f32> = (0..1000).map(|i| (i % 7) as f32).collect();
        assert_eq!(ValueKind::detect(&counts), ValueKind::Counts);
        counts[10] = 1.5;
        assert_eq!(ValueKind::detect(&counts), ValueKind::Counts);
        counts[11] = -3.0;
        assert_eq!(ValueKind::detect(&counts), ValueKind::Scaled);
        let logged: Vec<f32> = (0..1000).map(|i| ((i % 7) as f32 * 3.3).ln_1p()).collect();
        assert_eq!(ValueKind::detect(&logged), ValueKind::LogNormalized);
        assert_eq!(
            "log-normalized".parse::<ValueKind>().unwrap(),
            ValueKind::LogNormalized
        );
        assert!("scaled".parse::<ValueKind>().is_err());
    }
}
