//! Which cells are the reference and which the query, the same on every command that
//! reads them (`transfer`, `train`, `predict`): two files (`--reference`, `--query`), or
//! one file (`--data`) split by obs values (`--split-key K --reference-values a,b*`), by a
//! stratified random split (`--split stratified --train-fraction F`) or by two cell-id
//! lists (`--reference-cells`, `--query-cells`).

use crate::data::split::{read_cell_list, split_by_cell_ids, split_by_values, split_stratified};
use crate::data::{Dataset, ValueKind};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The input options shared by the commands that read a reference and a query.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DataArgs {
    /// Reference h5ad (with --query).
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// Query h5ad (with --reference).
    #[arg(long)]
    pub query: Option<PathBuf>,
    /// One h5ad holding both reference and query cells (with a split option).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// File of reference cell ids, one per line (with --data).
    #[arg(long)]
    pub reference_cells: Option<PathBuf>,
    /// File of query cell ids, one per line (with --data).
    #[arg(long)]
    pub query_cells: Option<PathBuf>,
    /// obs column that splits --data into reference and query (with --reference-values).
    #[arg(long)]
    pub split_key: Option<String>,
    /// Comma-separated values of --split-key that make the reference; a trailing `*`
    /// matches a prefix (`ctrl:*`). All other cells are the query.
    #[arg(long, value_delimiter = ',')]
    pub reference_values: Option<Vec<String>>,
    /// Random split of --data within each class of the label key (seeded by the seed).
    #[arg(long, value_parser = ["stratified"])]
    pub split: Option<String>,
    /// Reference share of each class with --split stratified.
    #[arg(long, default_value_t = 0.8)]
    pub train_fraction: f64,
    /// Read raw/X instead of X.
    #[arg(long)]
    pub use_raw: bool,
    /// What the values are, overriding detection: counts or log-normalized.
    #[arg(long)]
    pub value_kind: Option<ValueKind>,
}

/// The one-file forms: which of the three ways of splitting `--data` was asked for.
enum OneFileSplit<'a> {
    CellLists(&'a Path, &'a Path),
    ByValues(&'a str, &'a [String]),
    Stratified(f64),
}

impl DataArgs {
    /// Every input file named, for the output checks.
    pub fn inputs(&self) -> Vec<&Path> {
        [
            &self.reference,
            &self.query,
            &self.data,
            &self.reference_cells,
            &self.query_cells,
        ]
        .into_iter()
        .flatten()
        .map(PathBuf::as_path)
        .collect()
    }

    fn read(&self, path: &Path) -> Result<Dataset> {
        super::read_input(path, self.use_raw, self.value_kind)
    }

    /// Reference and query cells, in file order (cell lists: in list order). `label_key`
    /// and `seed` drive the stratified split.
    pub fn load(&self, label_key: &str, seed: u64) -> Result<(Dataset, Dataset)> {
        match (&self.reference, &self.query, &self.data) {
            (Some(r), Some(q), None) => {
                self.refuse_split_options()?;
                Ok((self.read(r)?, self.read(q)?))
            }
            (None, None, Some(d)) => {
                let split = self.one_file_split()?;
                let ds = self.read(d)?;
                let (rows_ref, rows_query) = match split {
                    OneFileSplit::CellLists(rc, qc) => {
                        split_by_cell_ids(&ds, &read_cell_list(rc)?, &read_cell_list(qc)?)?
                    }
                    OneFileSplit::ByValues(key, vals) => split_by_values(&ds, key, vals)?,
                    OneFileSplit::Stratified(fraction) => {
                        split_stratified(&ds.labels(label_key)?, fraction, seed)?
                    }
                };
                Ok((ds.select_cells(&rows_ref), ds.select_cells(&rows_query)))
            }
            _ => Err(Error::param(
                "input",
                "give either --reference and --query, or --data with a split \
                 (--split-key/--reference-values, --split stratified, or --reference-cells/--query-cells)",
            )),
        }
    }

    /// Only the query: `--query` alone, or the query part of a split `--data`.
    pub fn load_query(&self, label_key: Option<&str>, seed: u64) -> Result<Dataset> {
        match (&self.reference, &self.query, &self.data) {
            (None, Some(q), None) => {
                self.refuse_split_options()?;
                self.read(q)
            }
            (None, None, Some(_)) => {
                if self.split.is_some() && label_key.is_none() {
                    return Err(Error::param(
                        "split",
                        "--split stratified needs --label-key (the classes it stratifies by)",
                    ));
                }
                Ok(self.load(label_key.unwrap_or(""), seed)?.1)
            }
            _ => Err(Error::param(
                "input",
                "give --query, or --data with a split (the query part is predicted)",
            )),
        }
    }

    fn refuse_split_options(&self) -> Result<()> {
        if self.reference_cells.is_some()
            || self.query_cells.is_some()
            || self.split_key.is_some()
            || self.reference_values.is_some()
            || self.split.is_some()
        {
            return Err(Error::param(
                "input",
                "the split options (--reference-cells, --split-key, --split ...) need --data, not --reference and --query",
            ));
        }
        Ok(())
    }

    fn one_file_split(&self) -> Result<OneFileSplit<'_>> {
        let lists = (&self.reference_cells, &self.query_cells);
        let values = (&self.split_key, &self.reference_values);
        let chosen = [
            lists.0.is_some() || lists.1.is_some(),
            values.0.is_some() || values.1.is_some(),
            self.split.is_some(),
        ];
        if chosen.iter().filter(|&&c| c).count() != 1 {
            return Err(Error::param(
                "split",
                "with --data give exactly one of: --reference-cells and --query-cells; \
                 --split-key and --reference-values; --split stratified",
            ));
        }
        match (lists, values, self.split.as_deref()) {
            ((Some(rc), Some(qc)), _, _) => Ok(OneFileSplit::CellLists(rc, qc)),
            ((Some(_), None) | (None, Some(_)), _, _) => Err(Error::param(
                "reference-cells",
                "--reference-cells and --query-cells go together",
            )),
            (_, (Some(key), Some(vals)), _) => Ok(OneFileSplit::ByValues(key, vals)),
            (_, (Some(_), None) | (None, Some(_)), _) => Err(Error::param(
                "split-key",
                "--split-key and --reference-values go together",
            )),
            _ => Ok(OneFileSplit::Stratified(self.train_fraction)),
        }
    }
}

/// Where a command writes its predictions, and whether it prints JSON.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OutputArgs {
    /// Write predictions as CSV (`cell_id,true_label,predicted_label,score`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write the query cells to this h5ad with obs columns `predicted_label`
    /// (categorical) and `prediction_score` (float).
    #[arg(long)]
    pub out_h5ad: Option<PathBuf>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

impl OutputArgs {
    /// The output files named, with their option names.
    pub fn files(&self) -> Vec<(&'static str, &Path)> {
        [("out", &self.out), ("out-h5ad", &self.out_h5ad)]
            .into_iter()
            .filter_map(|(name, p)| p.as_deref().map(|p| (name, p)))
            .collect()
    }

    /// Write the prediction CSV and annotated h5ad that were asked for (all or nothing).
    pub fn write(
        &self,
        query: &Dataset,
        truth: &[Option<String>],
        prediction: &crate::eval::Prediction,
    ) -> Result<()> {
        super::write_predictions(
            query,
            truth,
            prediction,
            self.out.as_deref(),
            self.out_h5ad.as_deref(),
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::h5ad::write_h5ad;
    use crate::data::Column;

    /// A small labelled data set with a `batch` column (`ctrl:0`, `ctrl:1`, `stim:0`),
    /// written to an h5ad in `dir`.
    pub(crate) fn write_fixture(dir: &Path) -> PathBuf {
        let (mut ds, _) = crate::baseline::testutil::clustered_counts(30, 3, 40, 7);
        let batch: Vec<String> = (0..ds.n_obs())
            .map(|i| ["ctrl:0", "ctrl:1", "stim:0"][(i / 3) % 3].to_string())
            .collect();
        ds.set_column("batch", Column::categorical_from_strings(&batch))
            .unwrap_or_else(|e| panic!("{e}"));
        let path = dir.join("data.h5ad");
        write_h5ad(&ds, &path).unwrap_or_else(|e| panic!("{e}"));
        path
    }

    fn with_data(path: PathBuf) -> DataArgs {
        DataArgs {
            data: Some(path),
            train_fraction: 0.8,
            ..Default::default()
        }
    }

    /// `--split stratified` keeps round(0.8 × 30) = 24 cells of each class in the
    /// reference, and the same seed gives the same split.
    #[test]
    fn stratified_split_is_seeded() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut a = with_data(write_fixture(dir.path()));
        a.split = Some("stratified".into());
        let (r1, q1) = a.load("label", 0).unwrap_or_else(|e| panic!("{e}"));
        let (r2, _) = a.load("label", 0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((r1.n_obs(), q1.n_obs()), (72, 18));
        assert_eq!(r1.cell_ids, r2.cell_ids);
        let counts = r1
            .labels("label")
            .unwrap_or_else(|e| panic!("{e}"))
            .counts();
        assert_eq!(counts, vec![24, 24, 24]);
        let q = a.load_query(Some("label"), 0).unwrap();
        assert_eq!(q.cell_ids, q1.cell_ids);
    }

    /// Asking for two split forms at once, or half of one, is a parameter error that
    /// names the options; nothing is read. Mixing the two-file and one-file forms too.
    #[test]
    fn rejects_ambiguous_split() {
        let mut a = with_data("absent.h5ad".into());
        a.split = Some("stratified".into());
        a.split_key = Some("batch".into());
        let err = a.load("label", 0).unwrap_err().to_string();
        assert!(err.contains("exactly one of"), "{err}");
        a.split = None;
        let err = a.load("label", 0).unwrap_err().to_string();
        assert!(err.contains("--reference-values"), "{err}");
        let mixed = DataArgs {
            reference: Some("r.h5ad".into()),
            ..with_data("d.h5ad".into())
        };
        let err = mixed.load("label", 0).unwrap_err().to_string();
        assert!(err.contains("--reference and --query"), "{err}");
    }
}

/// How a data set's gene names map to a checkpoint vocabulary's (`train --init-from`,
/// `inspect-checkpoint`): a two-column table, or a `var` column of the data file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GeneIdArgs {
    /// Two-column TSV mapping the data's gene names to the checkpoint vocabulary's (e.g.
    /// symbol → Ensembl id for Geneformer); genes not listed keep their own name.
    #[arg(long, value_name = "FILE")]
    pub gene_id_table: Option<PathBuf>,
    /// Instead of a table: the `var` column of the data (reference) file holding the
    /// vocabulary's gene ids (e.g. `gene_ids`, Ensembl ids in Cell Ranger output).
    #[arg(long, value_name = "KEY", conflicts_with = "gene_id_table")]
    pub gene_id_key: Option<String>,
}

impl GeneIdArgs {
    /// True when either option is given.
    pub fn given(&self) -> bool {
        self.gene_id_table.is_some() || self.gene_id_key.is_some()
    }

    /// The table, reading `--gene-id-key` from `data_file` (`None` when there is none to
    /// read it from: an error if the key was given).
    pub fn load(
        &self,
        data_file: Option<&Path>,
        use_raw: bool,
    ) -> Result<Option<std::collections::HashMap<String, String>>> {
        use crate::models::pretrained::{gene_id_table_from_var, read_gene_id_table};
        if let Some(t) = &self.gene_id_table {
            return read_gene_id_table(t).map(Some);
        }
        let Some(key) = &self.gene_id_key else {
            return Ok(None);
        };
        let file = data_file.ok_or_else(|| {
            Error::param("gene-id-key", "needs the data in --reference or --data")
        })?;
        Ok(Some(gene_id_table_from_var(file, use_raw, key)?.1))
    }
}
