//! Published checkpoints of the real foundation models, read into this crate's candle
//! models so that the study can run on them with the same tokenizers, noise and metrics:
//!
//! - Geneformer ([`geneformer`]): a Hugging Face BERT directory (`config.json`, then
//!   `model.safetensors` or `pytorch_model.bin`, for `BertForMaskedLM`,
//!   `BertForSequenceClassification` or a bare `BertModel`) plus Geneformer's token and
//!   gene-median dictionaries (Python pickles);
//! - scGPT ([`scgpt`]): `best_model.pt` (a PyTorch state dict), `vocab.json`, `args.json`.
//!
//! The architecture comes from the checkpoint, never from the profile. Every key of the
//! checkpoint is either mapped onto a variable of the candle model, listed as known but
//! unused (a head the study does not run), or refused: unknown keys, missing keys and
//! shape mismatches end in one error that lists them all.

mod dictionary;
mod geneformer;
mod scgpt;

use super::config::ModelsConfig;
use super::geneformer::GeneformerConfig;
use super::params::ParamStore;
use super::scgpt::ScGptConfig;
use super::{DataShape, ModelKind};
use crate::error::{Error, Result};
use crate::tokenize::vocab::UNKNOWN_GENE;
use crate::tokenize::CollateSpec;
use candle_core::{DType, Tensor};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// A checkpoint read from disk, its tensors renamed to this crate's variable names
/// (`encoder.*`, and `pretrain_head.*` / `cls_head.*` / `bert_head.*` for its heads).
#[derive(Debug)]
pub struct Checkpoint {
    dir: PathBuf,
    format: &'static str,
    arch: Arch,
    vocab: TokenVocab,
    medians: Option<HashMap<String, f64>>,
    tensors: HashMap<String, Tensor>,
    unused: Vec<String>,
    labels: Option<Vec<String>>,
}

/// The architecture a checkpoint describes.
#[derive(Debug, Clone)]
enum Arch {
    Geneformer(GeneformerConfig),
    ScGpt {
        cfg: ScGptConfig,
        pad_value: f32,
        n_bins: Option<usize>,
        max_seq_len: Option<usize>,
    },
}

/// A checkpoint's token vocabulary and its special tokens.
#[derive(Debug, Clone)]
pub struct TokenVocab {
    ids: HashMap<String, u32>,
    pad: u32,
    cls: Option<u32>,
    eos: Option<u32>,
    mask: Option<u32>,
}

impl TokenVocab {
    /// Read the specials from `ids` under the names the model uses.
    fn new(ids: HashMap<String, u32>, pad_token: &str, source: &Path) -> Result<Self> {
        let pad = *ids.get(pad_token).ok_or_else(|| {
            Error::invalid(
                source.display().to_string(),
                pad_token,
                "the vocabulary has no padding token",
            )
        })?;
        Ok(Self {
            cls: ids.get("<cls>").copied(),
            eos: ids.get("<eos>").copied(),
            mask: ids.get("<mask>").copied(),
            pad,
            ids,
        })
    }

    /// Token id of `name`.
    pub fn id(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when the vocabulary holds no token.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    fn is_special(name: &str) -> bool {
        name.starts_with('<') && name.ends_with('>')
    }
}

/// How a data set's genes map onto a checkpoint's vocabulary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GeneMatch {
    /// Token id of each column, [`UNKNOWN_GENE`] for genes the checkpoint lacks.
    #[serde(skip)]
    pub column_ids: Vec<u32>,
    /// Genes of the data set.
    pub n_genes: usize,
    /// Genes with a token (and, for Geneformer, a median).
    pub n_matched: usize,
    /// Up to ten unmatched gene names, as examples.
    pub unmatched_examples: Vec<String>,
}

/// What `scrobust inspect-checkpoint` prints.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointSummary {
    /// The folder.
    pub dir: String,
    /// Model kind (`geneformer`, `scgpt`).
    pub model: String,
    /// File layout that was read.
    pub format: String,
    /// The architecture, in this crate's config names.
    pub architecture: serde_json::Value,
    /// Parameters of the encoder.
    pub encoder_params: usize,
    /// Parameters of every tensor that was mapped (encoder and heads).
    pub mapped_params: usize,
    /// Tokens in the vocabulary, special tokens included.
    pub vocab_size: usize,
    /// Special tokens and their ids.
    pub special_tokens: BTreeMap<String, u32>,
    /// Heads found in the checkpoint.
    pub heads: Vec<String>,
    /// Classification labels of a fine-tuned checkpoint, when it names them.
    pub labels: Option<Vec<String>>,
    /// Checkpoint keys that are recognised but not used by this crate.
    pub unused_keys: Vec<String>,
    /// Genes of a data set matched against the vocabulary, when one was given.
    pub gene_match: Option<GeneMatch>,
}

impl Checkpoint {
    /// Read the checkpoint in `dir`: a Hugging Face BERT folder (`config.json`) is read as
    /// Geneformer, a folder with `args.json` or `best_model.pt` as scGPT.
    pub fn load(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::FileNotFound {
                path: dir.to_path_buf(),
            });
        }
        if dir.join("config.json").is_file() {
            geneformer::read(dir)
        } else if dir.join("args.json").is_file() || dir.join("best_model.pt").is_file() {
            scgpt::read(dir)
        } else {
            Err(Error::invalid(
                dir.display().to_string(),
                "checkpoint",
                "neither a Hugging Face BERT folder (config.json) nor an scGPT folder \
                 (args.json, best_model.pt, vocab.json)",
            ))
        }
    }

    /// The architecture.
    pub fn kind(&self) -> ModelKind {
        match self.arch {
            Arch::Geneformer(_) => ModelKind::Geneformer,
            Arch::ScGpt { .. } => ModelKind::ScGpt,
        }
    }

    /// The folder it was read from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A mapped tensor by this crate's variable name (e.g. `encoder.embedding.gene.weight`).
    pub fn tensor(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }

    /// The vocabulary.
    pub fn vocab(&self) -> &TokenVocab {
        &self.vocab
    }

    /// `base` with this checkpoint's architecture in place of the profile's.
    pub fn models_config(&self, base: &ModelsConfig) -> ModelsConfig {
        let mut cfg = base.clone();
        match &self.arch {
            Arch::Geneformer(c) => cfg.geneformer = c.clone(),
            Arch::ScGpt { cfg: c, .. } => cfg.scgpt = c.clone(),
        }
        cfg
    }

    /// The token table and position table sizes of the checkpoint.
    pub fn data_shape(&self) -> DataShape {
        match &self.arch {
            Arch::Geneformer(c) => DataShape {
                vocab_size: c.vocab_size,
                max_len: c.max_len,
            },
            Arch::ScGpt {
                cfg, max_seq_len, ..
            } => DataShape {
                vocab_size: cfg.vocab_size,
                max_len: max_seq_len.unwrap_or(0),
            },
        }
    }

    /// Longest input the checkpoint takes (Geneformer's position table; scGPT has none).
    pub fn max_len(&self) -> Option<usize> {
        match &self.arch {
            Arch::Geneformer(c) => Some(c.max_len),
            Arch::ScGpt { .. } => None,
        }
    }

    /// Number of expression bins scGPT was trained with (`n_bins` in args.json).
    pub fn n_bins(&self) -> Option<usize> {
        match &self.arch {
            Arch::ScGpt { n_bins, .. } => *n_bins,
            Arch::Geneformer(_) => None,
        }
    }

    /// The collation of the checkpoint's inputs with at most `max_len` tokens per cell:
    /// its own special-token ids and padding.
    pub fn collate_spec(&self, max_len: usize) -> CollateSpec {
        let v = &self.vocab;
        match &self.arch {
            Arch::Geneformer(_) => {
                let special = v.cls.is_some() && v.eos.is_some();
                let mut spec = CollateSpec::geneformer(max_len, special);
                spec.pad_id = v.pad;
                spec.cls_id = v.cls.unwrap_or(v.pad);
                spec.eos_id = v.eos.unwrap_or(v.pad);
                spec
            }
            Arch::ScGpt { pad_value, .. } => {
                let mut spec = CollateSpec::scgpt(max_len);
                spec.pad_id = v.pad;
                spec.cls_id = v.cls.unwrap_or(v.pad);
                spec.pad_value = *pad_value;
                spec
            }
        }
    }

    /// True when the checkpoint wraps cells in `<cls>` … `<eos>` (Geneformer V2).
    pub fn uses_special_tokens(&self) -> bool {
        self.vocab.cls.is_some() && self.vocab.eos.is_some()
    }

    /// Map `genes` (the data set's columns, by the names the vocabulary uses: Ensembl ids
    /// for Geneformer, symbols for scGPT) to token ids. A Geneformer gene also needs a
    /// median to be rankable.
    pub fn match_genes(&self, genes: &[String]) -> GeneMatch {
        let column_ids: Vec<u32> = genes
            .iter()
            .map(|g| {
                let known = !TokenVocab::is_special(g)
                    && self.medians.as_ref().is_none_or(|m| m.contains_key(g));
                match self.vocab.id(g) {
                    Some(id) if known => id,
                    _ => UNKNOWN_GENE,
                }
            })
            .collect();
        let unmatched_examples = genes
            .iter()
            .zip(&column_ids)
            .filter(|(_, &id)| id == UNKNOWN_GENE)
            .take(10)
            .map(|(g, _)| g.clone())
            .collect();
        GeneMatch {
            n_genes: genes.len(),
            n_matched: column_ids.iter().filter(|&&i| i != UNKNOWN_GENE).count(),
            column_ids,
            unmatched_examples,
        }
    }

    /// Geneformer's gene medians for `genes` (NaN where the dictionary has none).
    pub fn medians_for(&self, genes: &[String]) -> Option<Vec<f64>> {
        let m = self.medians.as_ref()?;
        Some(
            genes
                .iter()
                .map(|g| m.get(g).copied().unwrap_or(f64::NAN))
                .collect(),
        )
    }

    /// Set every variable of `store` under `prefix` (e.g. `encoder`) from the
    /// checkpoint. Variables the checkpoint lacks and shape mismatches are listed in one
    /// error. Returns the number of values set.
    pub fn assign(&self, store: &ParamStore, prefix: &str) -> Result<usize> {
        let mut missing = Vec::new();
        let mut mismatched = Vec::new();
        let vars = store.vars()?;
        let under = format!("{prefix}.");
        let wanted: Vec<_> = vars
            .iter()
            .filter(|(n, _)| n == prefix || n.starts_with(&under))
            .collect();
        for (name, var) in &wanted {
            match self.tensors.get(name) {
                None => missing.push(name.clone()),
                Some(t) if t.dims() != var.dims() => mismatched.push(format!(
                    "{name}: checkpoint {:?}, model {:?}",
                    t.dims(),
                    var.dims()
                )),
                Some(_) => {}
            }
        }
        if !missing.is_empty() || !mismatched.is_empty() {
            missing.sort();
            return Err(Error::invalid(
                self.dir.display().to_string(),
                prefix,
                format!("checkpoint does not fit the model: missing {missing:?}, shape mismatches {mismatched:?}"),
            ));
        }
        let subset: HashMap<String, Tensor> = wanted
            .iter()
            .map(|(n, _)| (n.clone(), self.tensors[n].clone()))
            .collect();
        store.assign_from(&subset)
    }

    /// Parameters of the mapped tensors whose names start with `prefix`.
    fn n_params_under(&self, prefix: &str) -> usize {
        self.tensors
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, t)| t.elem_count())
            .sum()
    }

    /// The heads present (`pretrain_head`, `cls_head`, `bert_head`).
    fn heads(&self) -> Vec<String> {
        let mut heads: Vec<String> = self
            .tensors
            .keys()
            .filter_map(|k| k.split('.').next())
            .filter(|h| *h != "encoder")
            .map(str::to_string)
            .collect();
        heads.sort();
        heads.dedup();
        heads
    }

    /// A description for `inspect-checkpoint`; `genes` are a data set's genes to match.
    pub fn summary(&self, genes: Option<&[String]>) -> CheckpointSummary {
        let architecture = match &self.arch {
            Arch::Geneformer(c) => serde_json::to_value(c),
            Arch::ScGpt { cfg, .. } => serde_json::to_value(cfg),
        }
        .unwrap_or(serde_json::Value::Null);
        let v = &self.vocab;
        let special_tokens = [
            ("pad", Some(v.pad)),
            ("cls", v.cls),
            ("eos", v.eos),
            ("mask", v.mask),
        ]
        .into_iter()
        .filter_map(|(k, id)| id.map(|i| (k.to_string(), i)))
        .collect();
        CheckpointSummary {
            dir: self.dir.display().to_string(),
            model: self.kind().as_str().to_string(),
            format: self.format.to_string(),
            architecture,
            encoder_params: self.n_params_under("encoder."),
            mapped_params: self.n_params_under(""),
            vocab_size: v.len(),
            special_tokens,
            heads: self.heads(),
            labels: self.labels.clone(),
            unused_keys: self.unused.clone(),
            gene_match: genes.map(|g| self.match_genes(g)),
        }
    }
}

/// Read a gene id table: one `data_name<TAB>vocabulary_name` pair per line (e.g. gene
/// symbol → Ensembl id for Geneformer); empty lines and lines starting with `#` are
/// skipped. A name listed twice is an error naming the line.
pub fn read_gene_id_table(path: &Path) -> Result<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::FileNotFound {
            path: path.to_path_buf(),
        },
        _ => Error::io(path, e),
    })?;
    let mut table = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let key = format!("line {}", i + 1);
        let [name, id] = fields.as_slice() else {
            return Err(Error::invalid(
                path.display().to_string(),
                key,
                format!("{} tab-separated fields, expected 2", fields.len()),
            ));
        };
        if table.insert(name.to_string(), id.to_string()).is_some() {
            return Err(Error::invalid(
                path.display().to_string(),
                key,
                format!("gene '{name}' is listed twice"),
            ));
        }
    }
    Ok(table)
}

/// The gene names of the h5ad at `path` and a gene id table from its `var` column
/// `column` (gene name → the column's value; genes with an empty value are left out).
pub fn gene_id_table_from_var(
    path: &Path,
    use_raw: bool,
    column: &str,
) -> Result<(Vec<String>, HashMap<String, String>)> {
    let opts = crate::data::h5ad::ReadOptions {
        use_raw,
        value_kind: None,
    };
    let pairs = crate::data::h5ad::read_var_column(path, &opts, column)?;
    let table = pairs
        .iter()
        .filter_map(|(gene, id)| Some((gene.clone(), id.clone().filter(|s| !s.is_empty())?)))
        .collect();
    Ok((pairs.into_iter().map(|(g, _)| g).collect(), table))
}

/// Every tensor as f32 (checkpoints are often saved in f16 or bf16).
fn to_f32(tensors: Vec<(String, Tensor)>, path: &Path) -> Result<Vec<(String, Tensor)>> {
    tensors
        .into_iter()
        .map(|(k, t)| {
            let t = t.to_dtype(DType::F32).map_err(|e| {
                Error::invalid(path.display().to_string(), k.as_str(), e.to_string())
            })?;
            Ok((k, t))
        })
        .collect()
}

/// Where each checkpoint key goes.
enum Target {
    /// A variable of this crate's model.
    Var(String),
    /// Recognised, not used.
    Unused,
}

/// Rename `tensors` with `map` (None = unknown key). Unknown keys are refused in one
/// error that lists them.
fn rename(
    tensors: Vec<(String, Tensor)>,
    map: impl Fn(&str) -> Option<Target>,
    path: &Path,
) -> Result<(HashMap<String, Tensor>, Vec<String>)> {
    let mut out = HashMap::new();
    let mut unused = Vec::new();
    let mut unknown = Vec::new();
    for (k, t) in tensors {
        match map(&k) {
            Some(Target::Var(name)) => {
                out.insert(name, t);
            }
            Some(Target::Unused) => unused.push(k),
            None => unknown.push(k),
        }
    }
    if !unknown.is_empty() {
        unknown.sort();
        return Err(Error::invalid(
            path.display().to_string(),
            "state dict",
            format!("unknown keys {unknown:?}"),
        ));
    }
    unused.sort();
    Ok((out, unused))
}

/// Read a JSON file into `T`, naming the file in errors.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        problem: e.to_string(),
    })
}

#[cfg(test)]
mod tests;
