//! One entry point for all six methods, so the runner treats them alike: fit on the
//! reference once, predict several (perturbed) queries.

use crate::baseline::{fit_predict, BaselineMethod};
use crate::data::{CsrMatrix, Dataset, Labels};
use crate::error::{Error, Result};
use crate::eval::Prediction;
use crate::models::pretrained::{read_gene_id_table, Checkpoint};
use crate::models::tune::{tune, TuneGrid, TuneReport};
use crate::models::{
    fit_classifier, FitReport, InitFrom, ModelKind, NeuralClassifier, PipelineOptions, TrainConfig,
};
use crate::study::config::NoiseCondition;
use crate::traits::Predict;
use std::collections::HashMap;

/// Model settings of a profile, and the text of each method's settings (for cache keys).
#[derive(Debug, Clone)]
pub struct MethodContext {
    train: Option<TrainConfig>,
    /// The tuned arm's candidate grid (`[tune]`, or its default).
    tune: TuneGrid,
    model_sections: toml::Value,
    /// Published checkpoints the profile's `[checkpoints]` section points the models at.
    checkpoints: HashMap<ModelKind, std::sync::Arc<ProfileCheckpoint>>,
    /// The competence gate's logistic-regression scores, by reference (source, shape,
    /// content hash), seed and training rows: the three neural models of a data set and
    /// seed share one split, so the fit (seconds on large references) runs once.
    gate_cache: std::sync::Arc<std::sync::Mutex<GateCache>>,
}

type GateCache =
    std::collections::HashMap<(String, u64, Vec<usize>), crate::models::gate::ValScores>;

impl MethodContext {
    /// Read the model/training sections of a profile (absent sections are fine when the
    /// profile runs only baselines).
    pub fn from_profile(text: &str) -> Result<Self> {
        let value: toml::Value = toml::from_str(text).map_err(|e| Error::Parse {
            path: "<profile>".into(),
            problem: e.to_string(),
        })?;
        let train = if value.get("train").is_some() {
            Some(TrainConfig::from_toml_str(
                text,
                std::path::Path::new("<profile>"),
            )?)
        } else {
            None
        };
        Ok(Self {
            train,
            tune: TuneGrid::from_profile(&value)?,
            checkpoints: read_checkpoints(&value)?,
            model_sections: value,
            gate_cache: Default::default(),
        })
    }

    /// The competence gate of a neural fit, with logistic regression's scores memoized.
    fn gate(
        &self,
        reference: &Dataset,
        labels: &Labels,
        fit: &crate::models::FitReport,
        seed: u64,
    ) -> Result<Option<crate::models::gate::GateReport>> {
        use crate::models::gate::{logistic_validation_scores, verdict, ValScores};
        let (Some(accuracy), Some(macro_f1)) = (fit.val_accuracy, fit.val_macro_f1) else {
            return Ok(None);
        };
        let key = (
            format!(
                "{}|{}x{}|{:016x}",
                reference.source,
                reference.n_obs(),
                reference.n_vars(),
                content_hash(reference)
            ),
            seed,
            fit.split.train_rows.clone(),
        );
        let cached = self
            .gate_cache
            .lock()
            .ok()
            .and_then(|c| c.get(&key).copied());
        let logistic = match cached {
            Some(s) => s,
            None => {
                let Some(s) = logistic_validation_scores(reference, labels, &fit.split, seed)?
                else {
                    return Ok(None);
                };
                if let Ok(mut c) = self.gate_cache.lock() {
                    c.insert(key, s);
                }
                s
            }
        };
        Ok(Some(verdict(ValScores { accuracy, macro_f1 }, logistic)))
    }

    /// True when the tuned arm chooses its setting once per data set and model (the default)
    /// rather than on every fit.
    pub fn tunes_once(&self) -> bool {
        !self.tune.per_fit
    }

    /// The settings that determine `method`'s result, as text for the cache key.
    pub fn hash_input(&self, method: &str) -> String {
        let section = |name: &str| {
            self.model_sections
                .get(name)
                .map(|v| v.to_string())
                .unwrap_or_default()
        };
        match model_kind(method) {
            Some(kind) => format!(
                "{}|{}{}{}",
                section("train"),
                self.model_sections
                    .get("models")
                    .and_then(|m| m.get(kind.as_str()))
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
                // The tuned arm's result also depends on its grid.
                if is_tuned(method) {
                    format!("|tune {:?}", self.tune)
                } else {
                    String::new()
                },
                self.checkpoints
                    .get(&kind)
                    .map(|c| format!("|checkpoint {}", c.entry))
                    .unwrap_or_default()
            ),
            None => format!("baseline-defaults-{method}"),
        }
    }
}

/// A checkpoint named in the profile's `[checkpoints]` section, read once per process.
#[derive(Debug)]
struct ProfileCheckpoint {
    checkpoint: Checkpoint,
    gene_ids: Option<HashMap<String, String>>,
    /// The entry as written (part of the cache key).
    entry: String,
}

impl ProfileCheckpoint {
    fn init_from(&self) -> InitFrom<'_> {
        InitFrom {
            checkpoint: &self.checkpoint,
            gene_ids: self.gene_ids.as_ref(),
        }
    }
}

/// One `[checkpoints]` entry: a folder, or a folder with a gene id table.
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
enum CheckpointEntry {
    Dir(std::path::PathBuf),
    WithTable {
        dir: std::path::PathBuf,
        gene_id_table: Option<std::path::PathBuf>,
    },
}

/// `[checkpoints]`: model name → checkpoint folder (or `{ dir, gene_id_table }`); each
/// named model fine-tunes that checkpoint in every fit. Read (and checked) at start.
fn read_checkpoints(
    profile: &toml::Value,
) -> Result<HashMap<ModelKind, std::sync::Arc<ProfileCheckpoint>>> {
    let Some(table) = profile.get("checkpoints") else {
        return Ok(HashMap::new());
    };
    let table = table
        .as_table()
        .ok_or_else(|| Error::param("checkpoints", "must be a table of model = folder"))?;
    table
        .iter()
        .map(|(model, value)| {
            let kind: ModelKind = model.parse()?;
            let entry: CheckpointEntry = value.clone().try_into().map_err(|e| {
                Error::param(
                    format!("checkpoints.{model}"),
                    format!("a folder or {{ dir, gene_id_table }}: {e}"),
                )
            })?;
            let (dir, table) = match entry {
                CheckpointEntry::Dir(d) => (d, None),
                CheckpointEntry::WithTable { dir, gene_id_table } => (dir, gene_id_table),
            };
            let checkpoint = Checkpoint::load(&dir)?;
            let gene_ids = table.as_deref().map(read_gene_id_table).transpose()?;
            let loaded = ProfileCheckpoint {
                checkpoint,
                gene_ids,
                entry: value.to_string(),
            };
            Ok((kind, std::sync::Arc::new(loaded)))
        })
        .collect()
}

/// FNV-1a over the stored values and their columns: a noisy reference differs from the
/// clean one even where its shape and non-zero count do not.
fn content_hash(ds: &Dataset) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let words =
        ds.x.data()
            .iter()
            .map(|v| v.to_bits())
            .chain(ds.x.indices().iter().copied());
    for w in words {
        h = (h ^ u64::from(w)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The suffix of a neural method's `tuned` arm (`scgpt-tuned`, …): each model chooses its
/// learning rate and pretraining on reference validation. Without it, the `identical` arm:
/// one shared `[train]` section for every model, as in the study.
pub const TUNED_SUFFIX: &str = "-tuned";

/// A study method, parsed once from its name (`seurat`, `scgpt`, `scgpt-tuned`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// A statistical baseline.
    Baseline(BaselineMethod),
    /// A neural model in the identical (`tuned: false`) or the tuned arm.
    Neural { kind: ModelKind, tuned: bool },
}

impl std::str::FromStr for Method {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        if let Ok(b) = s.parse::<BaselineMethod>() {
            return Ok(Method::Baseline(b));
        }
        let (name, tuned) = match s.strip_suffix(TUNED_SUFFIX) {
            Some(n) => (n, true),
            None => (s, false),
        };
        ModelKind::ALL
            .into_iter()
            .find(|k| k.as_str() == name)
            .map(|kind| Method::Neural { kind, tuned })
            .ok_or_else(|| {
                Error::param(
                    "method",
                    format!(
                        "unknown method '{s}'; known: {}",
                        crate::study::config::KNOWN_METHODS.join(", ")
                    ),
                )
            })
    }
}

impl Method {
    /// The neural architecture, `None` for a baseline.
    pub fn kind(&self) -> Option<ModelKind> {
        match self {
            Method::Neural { kind, .. } => Some(*kind),
            Method::Baseline(_) => None,
        }
    }
    /// True for the tuned arm.
    pub fn is_tuned(&self) -> bool {
        matches!(self, Method::Neural { tuned: true, .. })
    }
}

/// True for a neural method of the tuned arm (false for unknown names).
pub fn is_tuned(method: &str) -> bool {
    method.parse::<Method>().is_ok_and(|m| m.is_tuned())
}

/// The architecture behind a neural method name of either arm.
pub fn model_kind(method: &str) -> Option<ModelKind> {
    method.parse::<Method>().ok().and_then(|m| m.kind())
}

/// Predictions for each query, and the model size for neural methods.
#[derive(Debug, Clone)]
pub struct MethodOutcome {
    pub predictions: Vec<Prediction>,
    pub n_params: Option<usize>,
    /// Neural fits: the competence gate (`None` when the reference has no validation cells).
    pub gate: Option<crate::models::gate::GateReport>,
    /// Neural fits: the fine-tuning learning curve.
    pub learning_curve: Vec<crate::models::CurvePoint>,
    /// Tuned arm: the chosen setting and every candidate's validation scores.
    pub tune: Option<TuneReport>,
}

/// Fit `method` on the reference and predict every query. A tuned method fits the setting
/// of `chosen` when given (a choice made once for the data set, see [`choose_setting`]),
/// else tunes on this reference.
///
/// Seurat's anchors depend on the query, so it runs once per query. The other methods
/// predict each cell independently of the rest of the query, so the queries are stacked
/// and fitted/predicted once (same predictions, one fit).
pub fn run_method(
    ctx: &MethodContext,
    method: &str,
    fit_on: &FitOn,
    queries: &[Dataset],
    chosen: Option<&TuneReport>,
) -> Result<MethodOutcome> {
    let FitOn {
        reference,
        labels,
        seed,
        ..
    } = *fit_on;
    let parsed: Method = method.parse()?;
    if parsed == Method::Baseline(BaselineMethod::Seurat) {
        let predictions = queries
            .iter()
            .map(|q| fit_predict(BaselineMethod::Seurat, reference, labels, q, seed))
            .collect::<Result<Vec<_>>>()?;
        return Ok(MethodOutcome {
            predictions,
            n_params: None,
            gate: None,
            learning_curve: Vec::new(),
            tune: None,
        });
    }
    let stacked = stack_cells(queries)?;
    let (kind, tuned) = match parsed {
        Method::Baseline(b) => {
            return Ok(MethodOutcome {
                predictions: unstack(&fit_predict(b, reference, labels, &stacked, seed)?, queries),
                n_params: None,
                gate: None,
                learning_curve: Vec::new(),
                tune: None,
            })
        }
        Method::Neural { kind, tuned } => (kind, tuned),
    };
    let neural = Neural {
        ctx,
        kind,
        on: *fit_on,
    };
    let (pred, fit, tune) = match (tuned, chosen) {
        (true, Some(report)) => {
            let cfg = ctx.tune.config_for(neural.base_config()?, &report.chosen)?;
            let (model, fit) = neural.fit(&cfg)?;
            (model.predict(&stacked)?, fit, Some(report.clone()))
        }
        (true, None) => {
            let (model, fit, report) = tune(&ctx.tune, neural.base_config()?, |c| neural.fit(c))?;
            (model.predict(&stacked)?, fit, Some(report))
        }
        (false, _) => {
            let (model, fit) = neural.fit(neural.base_config()?)?;
            (model.predict(&stacked)?, fit, None)
        }
    };
    // The gate's logistic regression sees the same reference cells as the model.
    let gate = ctx.gate(reference, labels, &fit, seed)?;
    Ok(MethodOutcome {
        predictions: unstack(&pred, queries),
        n_params: Some(fit.n_params),
        gate,
        learning_curve: fit.learning_curve,
        tune,
    })
}

/// The tuned arm's choice for the neural `method` on `reference`: every candidate of the
/// grid fitted with `seed`, the lowest reference-validation loss kept. Nothing is predicted.
pub fn choose_setting(ctx: &MethodContext, method: &str, fit_on: &FitOn) -> Result<TuneReport> {
    let kind = model_kind(method)
        .ok_or_else(|| Error::param("method", format!("'{method}' is not a neural method")))?;
    let neural = Neural {
        ctx,
        kind,
        on: *fit_on,
    };
    let (_, _, report) = tune(&ctx.tune, neural.base_config()?, |c| neural.fit(c))?;
    Ok(report)
}

/// What a method is fitted on: the reference cells and labels, the seed, and whether to
/// show progress bars.
#[derive(Debug, Clone, Copy)]
pub struct FitOn<'a> {
    pub reference: &'a Dataset,
    pub labels: &'a Labels,
    pub seed: u64,
    pub progress: bool,
}

/// One neural fit's inputs.
struct Neural<'a> {
    ctx: &'a MethodContext,
    kind: ModelKind,
    on: FitOn<'a>,
}

impl Neural<'_> {
    fn base_config(&self) -> Result<&TrainConfig> {
        self.ctx.train.as_ref().ok_or_else(|| {
            Error::param(
                "train",
                format!(
                    "the profile has no [train] section, needed by {}",
                    self.kind.as_str()
                ),
            )
        })
    }

    fn fit(&self, cfg: &TrainConfig) -> Result<(NeuralClassifier, FitReport)> {
        let on = self.on;
        let opts = PipelineOptions {
            progress: on.progress,
            init_from: self.ctx.checkpoints.get(&self.kind).map(|c| c.init_from()),
            ..Default::default()
        };
        fit_classifier(self.kind, cfg, on.reference, on.labels, on.seed, &opts)
    }
}

fn stack_cells(parts: &[Dataset]) -> Result<Dataset> {
    let first = parts
        .first()
        .ok_or_else(|| Error::param("queries", "no query given"))?;
    if parts.len() == 1 {
        return Ok(first.clone());
    }
    let mats: Vec<&CsrMatrix> = parts.iter().map(|d| &d.x).collect();
    let mut out = first.clone();
    out.x = CsrMatrix::vstack(&mats)?;
    out.cell_ids = parts
        .iter()
        .enumerate()
        .flat_map(|(k, d)| d.cell_ids.iter().map(move |c| format!("{c}#{k}")))
        .collect();
    out.obs.clear();
    out.obsm.clear();
    Ok(out)
}

fn unstack(pred: &Prediction, parts: &[Dataset]) -> Vec<Prediction> {
    let mut start = 0;
    parts
        .iter()
        .map(|d| {
            let end = start + d.n_obs();
            let p = Prediction {
                classes: pred.classes.clone(),
                predicted: pred.predicted[start..end].to_vec(),
                scores: pred.scores[start..end].to_vec(),
            };
            start = end;
            p
        })
        .collect()
}

/// Apply one noise condition to a data set with the given seed.
pub fn perturb(ds: &Dataset, cond: &NoiseCondition, seed: u64) -> Result<Dataset> {
    use crate::perturb::{GaussianNoise, NoiseTarget, ZeroHandling};
    let noise = GaussianNoise {
        zeros: if cond.perturb_zeros {
            ZeroHandling::Perturb
        } else {
            ZeroHandling::Keep
        },
        // The runner chooses the side; this call perturbs the data set it is given.
        target: NoiseTarget::Both,
        ..GaussianNoise::new(cond.fraction, cond.sigma)
    };
    Ok(noise.apply_dataset(ds, seed)?.0)
}

#[cfg(test)]
mod method_name_tests {
    use super::*;

    /// Every known name parses and prints back through its parts; other names do not parse.
    #[test]
    fn known_methods_round_trip() {
        for name in crate::study::config::KNOWN_METHODS {
            let m: Method = name.parse().unwrap();
            let back = match m {
                Method::Baseline(b) => b.as_str().to_string(),
                Method::Neural { kind, tuned } => {
                    format!("{}{}", kind.as_str(), if tuned { TUNED_SUFFIX } else { "" })
                }
            };
            assert_eq!(back, name);
        }
        assert_eq!(model_kind("scgpt-tuned"), Some(ModelKind::ScGpt));
        assert!(is_tuned("geneformer-tuned") && !is_tuned("geneformer"));
        for bad in ["mamba", "Seurat", "knn-tuned", "scgpt-tuned-tuned", ""] {
            assert!(bad.parse::<Method>().is_err(), "{bad}");
        }
    }

    /// A profile's `[checkpoints]` section points a model at a checkpoint folder (a plain
    /// path or `{ dir, gene_id_table }`): it is read at start, its fits use it, and it is
    /// part of that model's cache key only; a bad entry is an error naming it.
    #[test]
    fn profile_checkpoints_are_read_and_keyed() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/checkpoints");
        let dir = tempfile::tempdir().unwrap();
        let table = dir.path().join("ids.tsv");
        std::fs::write(&table, "GENE1\tENSG00000000001\n").unwrap();
        let profile = format!(
            "[checkpoints]\nscgpt = \"{root}/scgpt\"\n\
             geneformer = {{ dir = \"{root}/geneformer\", gene_id_table = \"{}\" }}\n",
            table.display()
        );
        let with = MethodContext::from_profile(&profile).unwrap();
        let without = MethodContext::from_profile("").unwrap();
        assert_eq!(with.checkpoints.len(), 2);
        let gf = &with.checkpoints[&ModelKind::Geneformer];
        assert_eq!(
            gf.init_from().vocab_names(&["GENE1".into()]),
            ["ENSG00000000001"]
        );
        for m in ["scgpt", "geneformer-tuned"] {
            assert_ne!(with.hash_input(m), without.hash_input(m), "{m}");
        }
        assert_eq!(with.hash_input("scmamba2"), without.hash_input("scmamba2"));
        let bad = MethodContext::from_profile("[checkpoints]\nscgpt = \"/nonexistent\"\n");
        assert!(bad.unwrap_err().to_string().contains("/nonexistent"));
        let bad = MethodContext::from_profile("[checkpoints]\nbert = \"/x\"\n");
        assert!(bad.unwrap_err().to_string().contains("bert"));
    }
}
