//! What every analysing command does with its files: read and validate each input (saying
//! on stderr which value kind it was read as), refuse outputs that would overwrite an input,
//! and write all outputs or none.

use crate::data::h5ad::{read_h5ad, validate_for_analysis, write_h5ad, ReadOptions};
use crate::data::{Column, Dataset, ValueKind};
use crate::error::{Error, Result};
use crate::eval::Prediction;
use std::path::{Path, PathBuf};

/// Read `path` for analysis: `declared` overrides the detected value kind; the values must
/// then suit that kind (see [`validate_for_analysis`]). Prints the kind on stderr.
pub fn read_input(path: &Path, use_raw: bool, declared: Option<ValueKind>) -> Result<Dataset> {
    let ds = read_h5ad(
        path,
        &ReadOptions {
            use_raw,
            value_kind: declared,
        },
    )?;
    eprintln!(
        "{}: {} cells x {} genes, values: {} ({})",
        path.display(),
        ds.n_obs(),
        ds.n_vars(),
        ds.value_kind.as_str(),
        if declared.is_some() {
            "declared by --value-kind"
        } else {
            "detected"
        }
    );
    validate_for_analysis(&ds)?;
    Ok(ds)
}

/// Refuse a reference or query without cells before anything is fitted.
pub fn require_cells(ds: &Dataset, role: &str) -> Result<()> {
    if ds.n_obs() == 0 {
        return Err(Error::invalid(
            &ds.source,
            "X",
            format!("the {role} has no cells"),
        ));
    }
    Ok(())
}

/// The path as it will be once written: canonical folder + file name, so `./q.h5ad` and
/// `q.h5ad` compare equal, and a symlink to an input is caught.
fn resolved(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match (parent.canonicalize(), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    }
}

/// Refuse, before any work, an output that is one of the inputs (or an output named twice).
pub fn check_outputs(inputs: &[&Path], outputs: &[(&str, &Path)]) -> Result<()> {
    let ins: Vec<PathBuf> = inputs.iter().map(|p| resolved(p)).collect();
    for (i, (flag, out)) in outputs.iter().enumerate() {
        let r = resolved(out);
        if ins.contains(&r) {
            return Err(Error::param(
                *flag,
                format!(
                    "{} is also an input: refusing to overwrite it",
                    out.display()
                ),
            ));
        }
        if outputs[..i].iter().any(|(_, o)| resolved(o) == r) {
            return Err(Error::param(
                *flag,
                format!("{} is named as two outputs", out.display()),
            ));
        }
        if out.is_dir() {
            return Err(Error::param(
                *flag,
                format!("{} is a directory, not a file", out.display()),
            ));
        }
    }
    Ok(())
}

/// Outputs written to temporary files beside their targets and moved into place together
/// by [`Staged::commit`]: if any output fails, none is left behind (dropping an uncommitted
/// `Staged` removes its temporary files).
#[derive(Default)]
pub struct Staged {
    files: Vec<(PathBuf, PathBuf)>,
}

impl Staged {
    fn temp_for(path: &Path) -> Result<PathBuf> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !dir.is_dir() {
            return Err(Error::io(
                dir,
                std::io::Error::new(std::io::ErrorKind::NotFound, "output folder does not exist"),
            ));
        }
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = name.unwrap_or_else(|| "out".into());
        Ok(dir.join(format!(".{name}.{}.staged", std::process::id())))
    }

    /// Stage `bytes` for `path`.
    pub fn bytes(&mut self, path: &Path, bytes: &[u8]) -> Result<()> {
        let tmp = Self::temp_for(path)?;
        self.files.push((tmp.clone(), path.to_path_buf()));
        std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))
    }

    /// Stage `ds` as an h5ad for `path`.
    pub fn h5ad(&mut self, path: &Path, ds: &Dataset) -> Result<()> {
        let tmp = Self::temp_for(path)?;
        self.files.push((tmp.clone(), path.to_path_buf()));
        write_h5ad(ds, &tmp)
    }

    /// Move every staged file into place.
    pub fn commit(mut self) -> Result<()> {
        let files = std::mem::take(&mut self.files);
        for (i, (tmp, path)) in files.iter().enumerate() {
            if let Err(e) = std::fs::rename(tmp, path) {
                for (t, _) in &files[i..] {
                    let _ = std::fs::remove_file(t);
                }
                return Err(Error::io(path, e));
            }
        }
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        for (tmp, _) in &self.files {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// Write the prediction CSV (`cell_id,true_label,predicted_label,score`) and the query
/// annotated with `predicted_label` / `prediction_score`, each only when asked for, all or
/// nothing.
pub fn write_predictions(
    query: &Dataset,
    truth: &[Option<String>],
    prediction: &Prediction,
    csv: Option<&Path>,
    h5ad: Option<&Path>,
) -> Result<()> {
    let mut staged = Staged::default();
    if let Some(path) = csv {
        staged.bytes(path, prediction_csv(query, truth, prediction).as_bytes())?;
    }
    if let Some(path) = h5ad {
        staged.h5ad(path, &annotated_query(query, prediction)?)?;
    }
    staged.commit()
}

/// The prediction CSV: `cell_id,true_label,predicted_label,score`.
fn prediction_csv(query: &Dataset, truth: &[Option<String>], prediction: &Prediction) -> String {
    let mut csv = String::from("cell_id,true_label,predicted_label,score\n");
    for (i, t) in truth.iter().enumerate() {
        let t = t.as_deref().unwrap_or("");
        csv.push_str(&format!(
            "{},{},{},{}\n",
            quote(&query.cell_ids[i]),
            quote(t),
            quote(prediction.label(i)),
            prediction.scores[i]
        ));
    }
    csv
}

/// The query with the predictions as obs columns `predicted_label` (categorical over the
/// reference classes, in their order) and `prediction_score`.
fn annotated_query(query: &Dataset, prediction: &Prediction) -> Result<Dataset> {
    let mut out = query.clone();
    let codes = prediction
        .predicted
        .iter()
        .map(|&p| i32::try_from(p).map_err(|_| Error::param("prediction", "too many classes")))
        .collect::<Result<Vec<i32>>>()?;
    out.set_column(
        "predicted_label",
        Column::Categorical {
            codes,
            categories: prediction.classes.clone(),
        },
    )?;
    out.set_column(
        "prediction_score",
        Column::Float(prediction.scores.iter().map(|&s| f64::from(s)).collect()),
    )?;
    Ok(out)
}

/// CSV field, quoted when it holds a comma, quote or newline.
fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fields with commas or quotes are quoted as CSV requires; plain ones are not.
    #[test]
    fn csv_quoting() {
        assert_eq!(quote("B cells"), "B cells");
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("x\"y"), "\"x\"\"y\"");
    }

    /// An output equal to an input, spelled differently, is refused; a fresh name is not.
    #[test]
    fn output_equal_to_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("q.h5ad");
        std::fs::write(&input, b"x").unwrap();
        let same = dir.path().join(".").join("q.h5ad");
        let err = check_outputs(&[&input], &[("out", &same)]).unwrap_err();
        assert!(err.to_string().contains("also an input"), "{err}");
        let fresh = dir.path().join("p.csv");
        check_outputs(&[&input], &[("out", &fresh)]).unwrap();
        let err = check_outputs(&[&input], &[("out", &fresh), ("out-h5ad", &fresh)]);
        assert!(err.is_err());
    }

    /// An uncommitted stage leaves nothing; a committed one leaves exactly the targets.
    #[test]
    fn staged_outputs_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.csv");
        {
            let mut s = Staged::default();
            s.bytes(&a, b"1").unwrap();
            assert!(s.bytes(&dir.path().join("missing/b.csv"), b"2").is_err());
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let mut s = Staged::default();
        s.bytes(&a, b"1").unwrap();
        s.commit().unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), b"1");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
