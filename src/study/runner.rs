//! Runs the grid: for every data set, seed and method, fits once per reference-side
//! condition and predicts every query-side noise condition, writing one JSON per grid
//! cell under `runs/`. A content hash of (config, data, code version) names each file,
//! so finished cells are skipped and an interrupted study resumes where it stopped.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::eval::Prediction;
use crate::eval::{bootstrap_ci, evaluate, ClassificationReport, Metric};
use crate::models::tune::TuneReport;
use crate::study::config::{DatasetSpec, NoiseCondition, StudyConfig};
use crate::study::methods::{
    choose_setting, is_tuned, run_method, FitOn, MethodContext, MethodOutcome,
};
use crate::study::tasks::{load_task, Task};
use crate::study::write_atomic;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The result of one grid cell (data set × method × seed × noise condition).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// Content hash of everything that determines this result.
    pub key: String,
    pub dataset: String,
    pub method: String,
    pub seed: u64,
    pub noise: NoiseCondition,
    pub n_reference: usize,
    pub n_query: usize,
    /// Accuracy, macro F1, per class, confusion, prediction shares.
    pub report: ClassificationReport,
    /// Bootstrap 95% CI of accuracy over query cells.
    pub accuracy_ci: (f64, f64),
    /// Bootstrap 95% CI of macro F1 over query cells.
    pub macro_f1_ci: (f64, f64),
    /// Trainable parameters (neural models only).
    pub n_params: Option<usize>,
    /// Fit + predict wall time of the group this cell belongs to, in seconds.
    pub seconds: f64,
    /// Reference cells per class (for the rare-class claim).
    #[serde(default)]
    pub reference_counts: Vec<(String, usize)>,
    /// The competence gate of a neural fit (`None`: not a neural fit, or not gated).
    #[serde(default)]
    pub gate_passed: Option<bool>,
    /// The gate's numbers: the model's and logistic regression's reference-validation scores.
    #[serde(default)]
    pub gate: Option<crate::models::gate::GateReport>,
    /// A neural fit's fine-tuning learning curve.
    #[serde(default)]
    pub learning_curve: Vec<crate::models::CurvePoint>,
    /// Tuned arm: the setting chosen on reference validation and every candidate's scores.
    #[serde(default)]
    pub tune: Option<crate::models::tune::TuneReport>,
}

/// What a finished study produced.
#[derive(Debug, Clone)]
pub struct StudyOutput {
    /// All grid cells, in grid order.
    pub records: Vec<RunRecord>,
    /// Notes about data sets (skipped, alignment, value kind).
    pub notes: Vec<String>,
    /// Loaded tasks, kept for the tokenizer measurements.
    pub first_task: Option<Task>,
    /// Cells computed in this run (the rest came from the cache).
    pub n_computed: usize,
}

/// The code version that enters every cache key: the package version and a fingerprint of
/// the sources, embedded parameters and locked dependencies (see `build.rs`), so a code
/// change never serves cached cells computed by older code.
pub const CODE_VERSION: &str = concat!(
    "scrobust-",
    env!("CARGO_PKG_VERSION"),
    "-src-",
    env!("SCROBUST_SOURCE_HASH")
);

/// One of `count` disjoint parts of a study's grid (`index` counts from 1), for spreading a
/// grid over machines: part K takes every work unit (one fit: data set × seed × method ×
/// reference-side condition) whose position in grid order is K − 1 modulo `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which part, 1..=count.
    pub index: usize,
    /// Number of parts.
    pub count: usize,
}

impl Shard {
    fn takes(&self, unit: usize) -> bool {
        unit % self.count == self.index - 1
    }
}

impl std::str::FromStr for Shard {
    type Err = Error;

    /// `K/N` with 1 ≤ K ≤ N.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::param("shard", format!("'{s}' is not K/N with 1 <= K <= N"));
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// Run the study described by `cfg` (the `[study]` section) with the full profile text
/// `profile_text` (its model/train sections enter the cache key), writing to `out`.
pub fn run_study(
    cfg: &StudyConfig,
    profile_text: &str,
    out: &Path,
    progress: bool,
) -> Result<StudyOutput> {
    run_study_part(cfg, profile_text, out, progress, None)
}

/// [`run_study`] restricted to one [`Shard`] of the grid (all of it with `None`). A shard's
/// records land in `out/runs/` in the usual cache format; copying the `runs/` of all shards
/// into one folder and running the whole study there computes nothing and writes the report.
pub fn run_study_part(
    cfg: &StudyConfig,
    profile_text: &str,
    out: &Path,
    progress: bool,
    shard: Option<Shard>,
) -> Result<StudyOutput> {
    // The profile is checked before any folder is made: a config error leaves nothing.
    let ctx = MethodContext::from_profile(profile_text)?;
    let runs_dir = out.join("runs");
    std::fs::create_dir_all(&runs_dir).map_err(|e| Error::io(&runs_dir, e))?;
    let real = crate::study::tasks::real_data_dirs();
    let conditions = cfg.conditions();
    let mut output = StudyOutput {
        records: Vec::new(),
        notes: Vec::new(),
        first_task: None,
        n_computed: 0,
    };
    let groups = reference_groups(&conditions);
    let n_units = cfg.datasets.len() * cfg.seeds.len() * cfg.methods.len() * groups.len();
    let bar = progress_bar(n_units as u64, progress);
    let mut unit = 0usize;
    for spec in &cfg.datasets {
        let task = load_task(spec, &real)?;
        for n in &task.notes {
            output.notes.push(format!("{}: {n}", task.name));
        }
        let data_hash = fingerprint(&task);
        for &seed in &cfg.seeds {
            for method in &cfg.methods {
                for group in &groups {
                    let mine = shard.is_none_or(|s| s.takes(unit));
                    unit += 1;
                    if mine {
                        let keys: Vec<String> = group
                            .iter()
                            .map(|c| {
                                let h = ctx.hash_input(method);
                                cell_key(spec, method, seed, c, &h, cfg.bootstrap, &data_hash)
                            })
                            .collect();
                        let tuning = (is_tuned(method) && ctx.tunes_once()).then(|| {
                            let first = cfg.seeds[0];
                            let h = ctx.hash_input(method);
                            (tuning_key(spec, method, first, &h, &data_hash), first)
                        });
                        let unit_run = Unit {
                            task: &task,
                            method,
                            seed,
                            group,
                            keys: &keys,
                            tuning,
                        };
                        let (recs, computed) =
                            run_unit(&ctx, &unit_run, &runs_dir, cfg.bootstrap, &bar, progress)?;
                        output.records.extend(recs);
                        output.n_computed += computed;
                    }
                    bar.inc(1);
                }
            }
        }
        if output.first_task.is_none() {
            output.first_task = Some(task);
        }
    }
    bar.finish_and_clear();
    Ok(output)
}

/// One fit of the grid and the query conditions it predicts.
struct Unit<'a> {
    task: &'a Task,
    method: &'a str,
    seed: u64,
    group: &'a [NoiseCondition],
    keys: &'a [String],
    /// Tuned arm, chosen once per data set and model: the cache key of that choice and the
    /// seed it is made with (the study's first).
    tuning: Option<(String, u64)>,
}

/// Run one unit, or take its records from the cache; returns the records and how many were
/// computed.
fn run_unit(
    ctx: &MethodContext,
    u: &Unit,
    runs_dir: &Path,
    bootstrap: usize,
    bar: &indicatif::ProgressBar,
    progress: bool,
) -> Result<(Vec<RunRecord>, usize)> {
    let cached: Option<Vec<RunRecord>> = u.keys.iter().map(|k| load_record(runs_dir, k)).collect();
    if let Some(done) = cached {
        return Ok((done, 0));
    }
    // The unit's time includes perturbing its inputs.
    let started = Instant::now();
    let chosen = match &u.tuning {
        Some((key, seed)) => Some(tuning_choice(ctx, u, key, *seed, runs_dir, progress)?),
        None => None,
    };
    let (reference, queries) = perturbed_inputs(u)?;
    let fit_on = FitOn {
        reference: &reference,
        labels: &u.task.reference_labels,
        seed: u.seed,
        progress,
    };
    let outcome = run_method(ctx, u.method, &fit_on, &queries, chosen.as_ref())?;
    let seconds = started.elapsed().as_secs_f64();
    let sink = RecordSink {
        runs_dir,
        bootstrap,
        bar,
    };
    let records = sink.record(u, &outcome, seconds)?;
    let n = records.len();
    Ok((records, n))
}

/// The tuned arm's setting for the unit's data set and model: from `runs/tuning/KEY.json`
/// when an earlier unit (or shard) chose it, else chosen now on the clean reference with
/// `seed` and cached there.
fn tuning_choice(
    ctx: &MethodContext,
    u: &Unit,
    key: &str,
    seed: u64,
    runs_dir: &Path,
    progress: bool,
) -> Result<TuneReport> {
    let path = runs_dir.join("tuning").join(format!("{key}.json"));
    if let Some(report) = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
    {
        return Ok(report);
    }
    let fit_on = FitOn {
        reference: &u.task.reference,
        labels: &u.task.reference_labels,
        seed,
        progress,
    };
    let report = choose_setting(ctx, u.method, &fit_on)?;
    let dir = runs_dir.join("tuning");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    write_atomic(
        &path,
        &serde_json::to_vec_pretty(&report).map_err(json_err)?,
    )?;
    Ok(report)
}

/// The unit's reference (perturbed when a condition of its group touches the reference)
/// and one query per condition (perturbed when it touches the query), each with the noise
/// seed of its condition and side.
fn perturbed_inputs(u: &Unit) -> Result<(Dataset, Vec<Dataset>)> {
    let (task, seed) = (u.task, u.seed);
    let reference = match u.group.iter().find(|c| c.touches_reference()) {
        Some(c) => crate::study::methods::perturb(
            &task.reference,
            c,
            noise_seed(seed, &task.name, c, "reference"),
        )?,
        None => task.reference.clone(),
    };
    let queries: Vec<Dataset> = u
        .group
        .iter()
        .map(|c| {
            if c.touches_query() {
                crate::study::methods::perturb(
                    &task.query,
                    c,
                    noise_seed(seed, &task.name, c, "query"),
                )
            } else {
                Ok(task.query.clone())
            }
        })
        .collect::<Result<_>>()?;
    Ok((reference, queries))
}

/// Where a unit's records go: the cache folder (one JSON per grid cell), with the
/// bootstrap size for their intervals and the progress bar for their log lines.
struct RecordSink<'a> {
    runs_dir: &'a Path,
    bootstrap: usize,
    bar: &'a indicatif::ProgressBar,
}

impl RecordSink<'_> {
    /// Score each of the unit's predictions into a record, log it and cache it.
    fn record(&self, u: &Unit, outcome: &MethodOutcome, seconds: f64) -> Result<Vec<RunRecord>> {
        let (task, seed) = (u.task, u.seed);
        let mut records = Vec::with_capacity(u.group.len());
        for ((cond, key), pred) in u.group.iter().zip(u.keys).zip(&outcome.predictions) {
            let mut rec = score(
                task,
                u.method,
                seed,
                *cond,
                key,
                pred,
                outcome.n_params,
                seconds,
                self.bootstrap,
            )?;
            rec.gate_passed = outcome.gate.as_ref().map(|g| g.passed);
            rec.gate.clone_from(&outcome.gate);
            rec.learning_curve.clone_from(&outcome.learning_curve);
            rec.tune.clone_from(&outcome.tune);
            log_line(
                self.bar,
                format!(
                    "{} {} seed {} noise {:.2}/{:.2} ({:?}): acc {:.3} macro F1 {:.3} [{:.1}s]",
                    rec.dataset,
                    rec.method,
                    seed,
                    cond.fraction,
                    cond.sigma,
                    cond.target,
                    rec.report.accuracy,
                    rec.report.macro_f1,
                    seconds
                ),
            );
            write_atomic(
                &self.runs_dir.join(format!("{key}.json")),
                &serde_json::to_vec_pretty(&rec).map_err(json_err)?,
            )?;
            records.push(rec);
        }
        Ok(records)
    }
}

fn json_err(e: serde_json::Error) -> Error {
    Error::Parse {
        path: PathBuf::from("<json>"),
        problem: e.to_string(),
    }
}

/// Conditions grouped by what the reference sees: all clean-reference conditions share
/// one fit; each condition that perturbs the reference needs its own.
fn reference_groups(conditions: &[NoiseCondition]) -> Vec<Vec<NoiseCondition>> {
    let mut clean_ref: Vec<NoiseCondition> = conditions
        .iter()
        .filter(|c| !c.touches_reference())
        .copied()
        .collect();
    let mut groups = Vec::new();
    if !clean_ref.is_empty() {
        groups.push(std::mem::take(&mut clean_ref));
    }
    for c in conditions.iter().filter(|c| c.touches_reference()) {
        groups.push(vec![*c]);
    }
    groups
}

#[allow(clippy::too_many_arguments)]
fn score(
    task: &Task,
    method: &str,
    seed: u64,
    noise: NoiseCondition,
    key: &str,
    pred: &Prediction,
    n_params: Option<usize>,
    seconds: f64,
    bootstrap: usize,
) -> Result<RunRecord> {
    let predicted: Vec<String> = (0..pred.predicted.len())
        .map(|i| pred.label(i).to_string())
        .collect();
    let report = evaluate(
        &task.query_truth,
        &predicted,
        &task.reference_labels.classes,
    )?;
    let boot_seed = seed ^ 0x5eed_b007;
    let accuracy_ci = bootstrap_ci(
        &task.query_truth,
        &predicted,
        &task.reference_labels.classes,
        Metric::Accuracy,
        bootstrap,
        boot_seed,
    )?;
    let macro_f1_ci = bootstrap_ci(
        &task.query_truth,
        &predicted,
        &task.reference_labels.classes,
        Metric::MacroF1,
        bootstrap,
        boot_seed,
    )?;
    Ok(RunRecord {
        key: key.to_string(),
        dataset: task.name.clone(),
        method: method.to_string(),
        seed,
        noise,
        n_reference: task.reference.n_obs(),
        n_query: task.query.n_obs(),
        report,
        accuracy_ci,
        macro_f1_ci,
        n_params,
        seconds,
        reference_counts: task
            .reference_labels
            .classes
            .iter()
            .cloned()
            .zip(task.reference_labels.counts())
            .collect(),
        gate_passed: None,
        gate: None,
        learning_curve: Vec::new(),
        tune: None,
    })
}

/// A hash of the task's content (genes, cells, values, labels).
fn fingerprint(task: &Task) -> String {
    let mut h = Sha256::new();
    for ds in [&task.reference, &task.query] {
        h.update((ds.n_obs() as u64).to_le_bytes());
        h.update((ds.n_vars() as u64).to_le_bytes());
        for &i in ds.x.indptr() {
            h.update((i as u64).to_le_bytes());
        }
        for &i in ds.x.indices() {
            h.update(i.to_le_bytes());
        }
        for &v in ds.x.data() {
            h.update(v.to_le_bytes());
        }
        for g in &ds.gene_names {
            h.update(g.as_bytes());
            h.update([0]);
        }
    }
    for c in &task.reference_labels.codes {
        h.update((c.map(|x| x as i64).unwrap_or(-1)).to_le_bytes());
    }
    for t in &task.query_truth {
        h.update(t.as_deref().unwrap_or("\u{0}").as_bytes());
        h.update([0]);
    }
    hex(&h.finalize())
}

fn cell_key(
    spec: &DatasetSpec,
    method: &str,
    seed: u64,
    cond: &NoiseCondition,
    method_cfg: &str,
    bootstrap: usize,
    data_hash: &str,
) -> String {
    let text = serde_json::json!({
        "code": CODE_VERSION,
        "dataset": spec,
        "data": data_hash,
        "method": method,
        "method_config": method_cfg,
        "seed": seed,
        "noise": cond,
        "bootstrap": bootstrap,
    });
    content_key(&text)
}

/// The first 24 hex digits of the SHA-256 of `what`'s JSON text.
fn content_key(what: &serde_json::Value) -> String {
    hex(&Sha256::digest(what.to_string().as_bytes()))[..24].to_string()
}

/// Cache key of the tuned arm's choice for a data set and method (made with `seed`).
fn tuning_key(
    spec: &DatasetSpec,
    method: &str,
    seed: u64,
    method_cfg: &str,
    data_hash: &str,
) -> String {
    let text = serde_json::json!({
        "code": CODE_VERSION,
        "dataset": spec,
        "data": data_hash,
        "method": method,
        "method_config": method_cfg,
        "tuning_seed": seed,
    });
    content_key(&text)
}

fn noise_seed(seed: u64, dataset: &str, cond: &NoiseCondition, side: &str) -> u64 {
    let text = format!(
        "{seed}/{dataset}/{}/{}/{:?}/{}/{side}",
        cond.fraction, cond.sigma, cond.target, cond.perturb_zeros
    );
    let d = Sha256::digest(text.as_bytes());
    u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every record under `out/runs/` (a finished or partial study), sorted by data set,
/// method, seed and noise, for notebooks and re-plotting.
pub fn load_records(out: &Path) -> Result<Vec<RunRecord>> {
    let dir = out.join("runs");
    let entries = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
    let mut records = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::io(&dir, e))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let rec: RunRecord = serde_json::from_slice(&bytes).map_err(|e| Error::Parse {
            path: path.clone(),
            problem: e.to_string(),
        })?;
        records.push(rec);
    }
    records.sort_by(|a, b| {
        (&a.dataset, &a.method, a.seed)
            .cmp(&(&b.dataset, &b.method, b.seed))
            .then(a.noise.fraction.total_cmp(&b.noise.fraction))
            .then(a.noise.sigma.total_cmp(&b.noise.sigma))
    });
    Ok(records)
}

fn load_record(dir: &Path, key: &str) -> Option<RunRecord> {
    let path = dir.join(format!("{key}.json"));
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// One line per finished grid cell: above the progress bar, or plain stderr without one.
fn log_line(bar: &indicatif::ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

fn progress_bar(n: u64, show: bool) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(n);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} fits, ETA {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::config::NoiseTarget;

    /// Query-only noise shares the clean fit; reference noise gets its own group.
    #[test]
    fn groups_share_clean_reference_fits() {
        let q = NoiseCondition {
            fraction: 0.2,
            sigma: 1.0,
            target: NoiseTarget::Query,
            perturb_zeros: true,
        };
        let b = NoiseCondition {
            target: NoiseTarget::Both,
            ..q
        };
        let g = reference_groups(&[NoiseCondition::clean(), q, b]);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].len(), 2);
        assert_eq!(g[1], vec![b]);
    }

    /// Noise seeds differ between sides and conditions but are stable.
    #[test]
    fn noise_seeds_are_stable_and_distinct() {
        let c = NoiseCondition {
            fraction: 0.2,
            sigma: 1.0,
            target: NoiseTarget::Both,
            perturb_zeros: true,
        };
        assert_eq!(
            noise_seed(1, "d", &c, "query"),
            noise_seed(1, "d", &c, "query")
        );
        assert_ne!(
            noise_seed(1, "d", &c, "query"),
            noise_seed(1, "d", &c, "reference")
        );
        assert_ne!(
            noise_seed(1, "d", &c, "query"),
            noise_seed(2, "d", &c, "query")
        );
    }
}
