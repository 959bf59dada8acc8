//! Checkpoints of a training stage: one safetensors file (parameters `p.*`, AdamW moments
//! `m.*`/`v.*`, best-so-far parameters `best.*`, the learning curve and loss sum of the
//! trainer's progress `stage.*`) plus a JSON file that names it.
//!
//! Both are written atomically (temporary file, then rename) and the JSON is written last,
//! so it is the commit point: an interrupted write leaves the previous checkpoint valid.
//! Each safetensors file carries its step in its name, and the one the JSON replaced is
//! removed afterwards.

use crate::error::{Error, Result};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What the JSON side of a checkpoint records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Stage name (`pretrain`, `finetune`).
    pub stage: String,
    /// Model name.
    pub model: String,
    /// Steps completed.
    pub step: usize,
    /// Steps in the stage.
    pub total_steps: usize,
    /// Safetensors file (in the same folder) holding the tensors.
    pub tensors_file: String,
    /// Lowest validation loss so far and the step it was reached at (for inspection: the
    /// exact value is read back from the curve in the tensors file).
    pub best: Option<(f64, usize)>,
    /// Training steps since the last evaluation (their loss sum is in the tensors file).
    #[serde(default)]
    pub losses_since_eval: usize,
    /// Evaluations since the one with the lowest validation loss (early stopping).
    #[serde(default)]
    pub evals_since_best: usize,
    /// The stage stopped early at `step`: resuming it trains no further.
    #[serde(default)]
    pub stopped_early: bool,
    /// The configuration the run used (for inspection; not re-read on resume).
    pub config: serde_json::Value,
}

/// Reads and writes the checkpoints of one run in a folder.
#[derive(Debug, Clone)]
pub struct Checkpointer {
    dir: PathBuf,
}

impl Checkpointer {
    /// Use (and create) folder `dir`.
    pub fn new(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn meta_path(&self, stage: &str) -> PathBuf {
        self.dir.join(format!("{stage}.json"))
    }

    /// Write a checkpoint of `stage`: `tensors` are stored as they are (use the `p.`, `m.`,
    /// `v.`, `best.` prefixes), `meta.tensors_file` is set here.
    pub fn save(&self, meta: &CheckpointMeta, tensors: &HashMap<String, Tensor>) -> Result<()> {
        let previous = self.read_meta(&meta.stage)?.map(|m| m.tensors_file);
        let tensors_file = format!("{}-step{}.safetensors", meta.stage, meta.step);
        super::params::save_tensors(tensors, &self.dir.join(&tensors_file))?;
        let meta = CheckpointMeta {
            tensors_file: tensors_file.clone(),
            ..meta.clone()
        };
        let json = serde_json::to_string_pretty(&meta)
            .map_err(|e| Error::Model(format!("checkpoint JSON: {e}")))?;
        let path = self.meta_path(&meta.stage);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, json).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        if let Some(old) = previous.filter(|old| *old != tensors_file) {
            // Best effort: a leftover file wastes space but does no harm.
            let _ = std::fs::remove_file(self.dir.join(old));
        }
        Ok(())
    }

    fn read_meta(&self, stage: &str) -> Result<Option<CheckpointMeta>> {
        let path = self.meta_path(stage);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::Parse {
                path: path.clone(),
                problem: e.to_string(),
            })
    }

    /// The latest checkpoint of `stage`, if one was written.
    pub fn load(
        &self,
        stage: &str,
        device: &Device,
    ) -> Result<Option<(CheckpointMeta, HashMap<String, Tensor>)>> {
        let Some(meta) = self.read_meta(stage)? else {
            return Ok(None);
        };
        let tensors = super::params::load_tensors(&self.dir.join(&meta.tensors_file), device)?;
        Ok(Some((meta, tensors)))
    }
}

/// Tensors of `map` whose key starts with `prefix`, with the prefix removed.
pub fn strip_prefix(map: &HashMap<String, Tensor>, prefix: &str) -> HashMap<String, Tensor> {
    map.iter()
        .filter_map(|(k, t)| k.strip_prefix(prefix).map(|s| (s.to_string(), t.clone())))
        .collect()
}

/// `map` with `prefix` put in front of every key.
pub fn add_prefix(map: HashMap<String, Tensor>, prefix: &str) -> HashMap<String, Tensor> {
    map.into_iter()
        .map(|(k, t)| (format!("{prefix}{k}"), t))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A saved checkpoint loads back with its metadata, and a newer one replaces the older
    /// tensors file.
    #[test]
    fn save_load_replace() {
        let dir = tempfile::tempdir().unwrap();
        let ck = Checkpointer::new(dir.path()).unwrap();
        let mut meta = CheckpointMeta {
            stage: "pretrain".into(),
            model: "scgpt".into(),
            step: 3,
            total_steps: 10,
            tensors_file: String::new(),
            best: None,
            losses_since_eval: 0,
            evals_since_best: 0,
            stopped_early: false,
            config: serde_json::Value::Null,
        };
        let t = HashMap::from([(
            "p.w".to_string(),
            Tensor::new(&[1f32, 2.], &Device::Cpu).unwrap(),
        )]);
        ck.save(&meta, &t).unwrap();
        meta.step = 5;
        ck.save(&meta, &t).unwrap();
        let (m, tensors) = ck.load("pretrain", &Device::Cpu).unwrap().unwrap();
        assert_eq!(m.step, 5);
        assert!(!dir.path().join("pretrain-step3.safetensors").exists());
        let w: Vec<f32> = tensors["p.w"].to_vec1().unwrap();
        assert_eq!(w, vec![1., 2.]);
        assert!(ck.load("finetune", &Device::Cpu).unwrap().is_none());
    }
}
