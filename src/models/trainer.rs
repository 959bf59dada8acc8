//! The one training loop behind pretraining and fine-tuning: AdamW with warmup + decay,
//! gradient clipping, periodic evaluation with best-model selection and early stopping,
//! learning curves, checkpoints and resume.
//!
//! Every random choice of step `s` (batch, masks, dropout) is drawn from an RNG seeded by
//! `(seed, stage, s)`, so the state of a run after step `s` is fully described by the
//! weights, the AdamW moments and the stage's progress (curve, best-so-far weights, patience
//! counter). A resumed run therefore ends with exactly the weights of an uninterrupted one,
//! early-stopped runs included.
//!
//! Model selection: the weights with the lowest validation loss (cross entropy) win. Loss
//! is a smooth score of every validation cell; accuracy on ~150 cells moves in steps of
//! 0.7 points and a strict `>` on it kept whichever early checkpoint first hit a plateau.

use super::checkpoint::{add_prefix, strip_prefix, CheckpointMeta, Checkpointer};
use super::config::TrainParams;
use super::optim::{learning_rate, AdamW};
use super::params::ParamStore;
use crate::error::{Error, Result};
use crate::tokenize::collate::Batch;
use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A 64-bit seed for step `step` of stage `stage` (SplitMix64 finaliser over the parts).
pub fn step_seed(seed: u64, stage: &str, step: usize) -> u64 {
    let mut h = seed ^ 0x9E37_79B9_7F4A_7C15;
    for b in stage.bytes().map(u64::from).chain([step as u64]) {
        h = (h ^ b).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h ^= h >> 31;
    }
    h
}

/// The RNG of step `step` of stage `stage`.
pub fn step_rng(seed: u64, stage: &str, step: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(step_seed(seed, stage, step))
}

/// Scores of one evaluation on the validation cells.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Mean cross entropy over the validation cells (unweighted).
    pub loss: f64,
    /// Fraction of validation cells predicted correctly.
    pub accuracy: f64,
    /// Mean per-class F1 over the classes present in the validation truth
    /// (`crate::eval::metrics` definitions, as sklearn's macro F1).
    pub macro_f1: f64,
}

/// One point of a learning curve, recorded at every evaluation (every `eval_every` steps
/// and at the last step).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Steps done when evaluated.
    pub step: usize,
    /// Mean training loss of the steps since the previous evaluation.
    pub train_loss: f64,
    /// Validation cross entropy (None when the stage does not validate: pretraining).
    pub val_loss: Option<f64>,
    /// Validation accuracy.
    pub val_accuracy: Option<f64>,
    /// Validation macro F1.
    pub val_macro_f1: Option<f64>,
}

/// What a stage trains: the loss of one step and, optionally, a validation score.
pub trait StageTask {
    /// The training loss of step `step` (draw randomness from [`step_rng`]).
    fn loss(&mut self, step: usize) -> Result<Tensor>;
    /// Validation scores, or `None` when the stage has no validation (pretraining).
    fn evaluate(&mut self) -> Result<Option<Evaluation>>;
}

/// How to run one stage.
pub struct StageSpec<'a> {
    /// `pretrain` or `finetune` (also the checkpoint name).
    pub name: &'a str,
    /// Model name, recorded in checkpoints.
    pub model: &'a str,
    /// Steps in the stage (the maximum when early stopping is on).
    pub total_steps: usize,
    /// Optimisation settings (`patience` sets early stopping).
    pub params: &'a TrainParams,
    /// The variables to train.
    pub store: &'a ParamStore,
    /// Where to checkpoint and resume from, if anywhere.
    pub checkpoints: Option<&'a Checkpointer>,
    /// Stop (after checkpointing) once this many steps are done: simulates an interrupted run.
    pub stop_after: Option<usize>,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// What a stage did.
#[derive(Debug, Clone, PartialEq)]
pub struct StageResult {
    /// Steps completed (including those of an earlier, resumed run).
    pub steps_done: usize,
    /// False when stopped by `stop_after`; true when the stage ran to its end or stopped
    /// early.
    pub completed: bool,
    /// True when validation loss stopped improving for `patience` evaluations.
    pub stopped_early: bool,
    /// Loss of every step run in this call.
    pub losses: Vec<f32>,
    /// The evaluation with the lowest validation loss; the store holds its weights at the end.
    pub best: Option<CurvePoint>,
    /// Every evaluation of the stage so far (including those of an earlier, resumed run).
    pub curve: Vec<CurvePoint>,
}

/// Columns of a curve row in a checkpoint: step, train loss, validated (0/1), validation
/// loss, accuracy, macro F1.
const CURVE_COLS: usize = 6;

/// Everything besides the weights and AdamW moments that a resumed stage needs to
/// continue exactly as an uninterrupted one.
#[derive(Default)]
struct Progress {
    curve: Vec<CurvePoint>,
    /// Sum and count of the step losses since the last evaluation.
    pending_sum: f64,
    pending_n: usize,
    best: Option<CurvePoint>,
    best_weights: Option<HashMap<String, Tensor>>,
    /// Evaluations with validation since the best one.
    evals_since_best: usize,
    stopped_early: bool,
}

impl Progress {
    fn record_loss(&mut self, value: f32) {
        self.pending_sum += f64::from(value);
        self.pending_n += 1;
    }

    /// Add the curve point of an evaluation at `step`; true when it has the lowest
    /// validation loss so far (strictly: ties keep the earlier, less trained weights).
    fn record_eval(&mut self, step: usize, eval: Option<Evaluation>) -> bool {
        let point = CurvePoint {
            step,
            train_loss: self.pending_sum / self.pending_n.max(1) as f64,
            val_loss: eval.map(|e| e.loss),
            val_accuracy: eval.map(|e| e.accuracy),
            val_macro_f1: eval.map(|e| e.macro_f1),
        };
        self.pending_sum = 0.0;
        self.pending_n = 0;
        self.curve.push(point.clone());
        let Some(e) = eval else {
            return false;
        };
        let best_loss = self.best.as_ref().and_then(|b| b.val_loss);
        let improved = e.loss.is_finite() && best_loss.is_none_or(|b| e.loss < b);
        if improved {
            self.best = Some(point);
            self.evals_since_best = 0;
        } else {
            self.evals_since_best += 1;
        }
        improved
    }

    /// Checkpoint tensors: the curve (`stage.curve`, rows of [`CURVE_COLS`]), the loss sum
    /// since the last evaluation (`stage.pending_sum`) and the best weights (`best.*`).
    /// The floats go to the tensors file rather than the JSON because serde_json's
    /// default float parser does not round-trip every f64 exactly, and a resumed run must
    /// compare validation losses bit for bit.
    fn to_tensors(&self) -> Result<HashMap<String, Tensor>> {
        let cpu = Device::Cpu;
        let mut out = HashMap::new();
        let sum = Tensor::from_vec(vec![self.pending_sum], 1, &cpu)?;
        out.insert("stage.pending_sum".to_string(), sum);
        if !self.curve.is_empty() {
            let rows: Vec<f64> = self.curve.iter().flat_map(curve_row).collect();
            let t = Tensor::from_vec(rows, (self.curve.len(), CURVE_COLS), &cpu)?;
            out.insert("stage.curve".to_string(), t);
        }
        if let Some(weights) = &self.best_weights {
            out.extend(add_prefix(weights.clone(), "best."));
        }
        Ok(out)
    }

    /// The progress saved by [`Progress::to_tensors`] and the checkpoint's meta.
    fn from_checkpoint(meta: &CheckpointMeta, tensors: &HashMap<String, Tensor>) -> Result<Self> {
        let curve: Vec<CurvePoint> = match tensors.get("stage.curve") {
            Some(t) => t.to_vec2::<f64>()?.iter().map(|r| curve_point(r)).collect(),
            None => Vec::new(),
        };
        let best = match meta.best {
            Some((_, step)) => Some(
                curve
                    .iter()
                    .find(|p| p.step == step && p.val_loss.is_some())
                    .cloned()
                    .ok_or_else(|| {
                        Error::Model(format!(
                            "checkpoint '{}' has no curve entry for its best step {step} (written by an older scrobust?); use another folder",
                            meta.stage
                        ))
                    })?,
            ),
            None => None,
        };
        let pending_sum = match tensors.get("stage.pending_sum") {
            Some(t) => t.to_vec1::<f64>()?.first().copied().unwrap_or(0.0),
            None => 0.0,
        };
        Ok(Self {
            curve,
            pending_sum,
            pending_n: meta.losses_since_eval,
            best_weights: best.as_ref().map(|_| strip_prefix(tensors, "best.")),
            best,
            evals_since_best: meta.evals_since_best,
            stopped_early: meta.stopped_early,
        })
    }
}

fn curve_row(p: &CurvePoint) -> [f64; CURVE_COLS] {
    [
        p.step as f64,
        p.train_loss,
        if p.val_loss.is_some() { 1.0 } else { 0.0 },
        p.val_loss.unwrap_or(0.0),
        p.val_accuracy.unwrap_or(0.0),
        p.val_macro_f1.unwrap_or(0.0),
    ]
}

fn curve_point(row: &[f64]) -> CurvePoint {
    let col = |i: usize| row.get(i).copied().unwrap_or(0.0);
    let validated = col(2) != 0.0;
    let val = |i: usize| validated.then(|| col(i));
    CurvePoint {
        step: col(0) as usize,
        train_loss: col(1),
        val_loss: val(3),
        val_accuracy: val(4),
        val_macro_f1: val(5),
    }
}

/// The step and progress to start from: those of the stage's checkpoint when there is one.
fn resume(spec: &StageSpec, opt: &mut AdamW) -> Result<(usize, Progress)> {
    let Some(ck) = spec.checkpoints else {
        return Ok((0, Progress::default()));
    };
    let Some((meta, tensors)) = ck.load(spec.name, spec.store.device())? else {
        return Ok((0, Progress::default()));
    };
    if meta.total_steps != spec.total_steps || meta.model != spec.model {
        return Err(Error::Model(format!(
            "{}: checkpoint '{}' is for {} with {} steps, this run is {} with {} steps; use another folder",
            ck.dir().display(),
            spec.name,
            meta.model,
            meta.total_steps,
            spec.model,
            spec.total_steps
        )));
    }
    let progress = Progress::from_checkpoint(&meta, &tensors)?;
    spec.store.assign_from(&strip_prefix(&tensors, "p."))?;
    opt.load_state(&tensors, meta.step)?;
    Ok((meta.step, progress))
}

/// Write the checkpoint of step `step` (no-op without a checkpoint folder).
fn save(spec: &StageSpec, step: usize, opt: &AdamW, progress: &Progress) -> Result<()> {
    let Some(ck) = spec.checkpoints else {
        return Ok(());
    };
    let mut tensors = add_prefix(spec.store.snapshot()?, "p.");
    tensors.extend(opt.state());
    tensors.extend(progress.to_tensors()?);
    let meta = CheckpointMeta {
        stage: spec.name.to_string(),
        model: spec.model.to_string(),
        step,
        total_steps: spec.total_steps,
        tensors_file: String::new(),
        best: progress
            .best
            .as_ref()
            .and_then(|b| b.val_loss.map(|l| (l, b.step))),
        losses_since_eval: progress.pending_n,
        evals_since_best: progress.evals_since_best,
        stopped_early: progress.stopped_early,
        config: serde_json::to_value(spec.params).unwrap_or(serde_json::Value::Null),
    };
    ck.save(&meta, &tensors)
}

fn progress_bar(spec: &StageSpec, start: usize) -> Option<indicatif::ProgressBar> {
    if !spec.progress || start >= spec.total_steps {
        return None;
    }
    let bar = indicatif::ProgressBar::new((spec.total_steps - start) as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed}<{eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(format!("{} {}", spec.model, spec.name));
    Some(bar)
}

/// One optimisation step; returns its loss.
fn train_step(
    spec: &StageSpec,
    task: &mut dyn StageTask,
    opt: &mut AdamW,
    step: usize,
) -> Result<f32> {
    let loss = task.loss(step)?;
    let value = loss.to_scalar::<f32>()?;
    if !value.is_finite() {
        return Err(Error::Model(format!(
            "{} {}: loss became {value} at step {step}",
            spec.model, spec.name
        )));
    }
    let grads = loss.backward()?;
    let p = spec.params;
    opt.step(
        &grads,
        learning_rate(p, step, spec.total_steps),
        p.grad_clip,
    )?;
    Ok(value)
}

/// Evaluate after `done` steps: extend the curve, keep the weights when they are the best
/// so far, and stop early once `patience` evaluations in a row did not improve.
fn evaluate_at(
    spec: &StageSpec,
    task: &mut dyn StageTask,
    progress: &mut Progress,
    done: usize,
) -> Result<()> {
    let eval = task.evaluate()?;
    if progress.record_eval(done, eval) {
        progress.best_weights = Some(spec.store.snapshot()?);
    }
    let patience = spec.params.patience;
    if patience > 0
        && progress.best.is_some()
        && progress.evals_since_best >= patience
        && done < spec.total_steps
    {
        progress.stopped_early = true;
    }
    Ok(())
}

/// Run (or resume) a stage. At the end the store holds the weights with the lowest
/// validation loss when the task validates, else the last ones. With a positive
/// `params.patience` the stage stops once that many evaluations in a row did not lower
/// the validation loss; `total_steps` is then the maximum.
pub fn run_stage(spec: &StageSpec, task: &mut dyn StageTask) -> Result<StageResult> {
    let p = spec.params;
    let mut opt = AdamW::new(spec.store.vars()?, p.weight_decay)?;
    let (start, mut progress) = resume(spec, &mut opt)?;
    let bar = progress_bar(spec, start);
    let mut losses = Vec::new();
    let mut done = start;
    let finish = |done: usize, completed: bool, losses: Vec<f32>, progress: Progress| StageResult {
        steps_done: done,
        completed,
        stopped_early: progress.stopped_early,
        losses,
        best: progress.best,
        curve: progress.curve,
    };
    while done < spec.total_steps && !progress.stopped_early {
        if spec.stop_after == Some(done) {
            save(spec, done, &opt, &progress)?;
            return Ok(finish(done, false, losses, progress));
        }
        let value = train_step(spec, task, &mut opt, done)?;
        losses.push(value);
        progress.record_loss(value);
        done += 1;
        if done % p.eval_every == 0 || done == spec.total_steps {
            evaluate_at(spec, task, &mut progress, done)?;
        }
        let periodic = p.checkpoint_every > 0 && done % p.checkpoint_every == 0;
        if periodic || done == spec.total_steps || progress.stopped_early {
            save(spec, done, &opt, &progress)?;
        }
        if let Some(bar) = &bar {
            bar.set_message(format!("{} {} loss {value:.4}", spec.model, spec.name));
            bar.inc(1);
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if let Some(weights) = &progress.best_weights {
        spec.store.assign_from(weights)?;
    }
    Ok(finish(done, true, losses, progress))
}

/// Rows `rows` of a collated batch, as a new batch (labels kept when present).
pub fn batch_rows(all: &Batch, rows: &[usize]) -> Batch {
    let l = all.seq_len;
    let mut out = Batch {
        batch_size: rows.len(),
        seq_len: l,
        gene_ids: Vec::with_capacity(rows.len() * l),
        values: Vec::with_capacity(rows.len() * l),
        attention_mask: Vec::with_capacity(rows.len() * l),
        labels: all.labels.as_ref().map(|_| Vec::with_capacity(rows.len())),
    };
    for &r in rows {
        out.gene_ids
            .extend_from_slice(&all.gene_ids[r * l..(r + 1) * l]);
        out.values
            .extend_from_slice(&all.values[r * l..(r + 1) * l]);
        out.attention_mask
            .extend_from_slice(&all.attention_mask[r * l..(r + 1) * l]);
        if let (Some(dst), Some(src)) = (out.labels.as_mut(), all.labels.as_ref()) {
            dst.push(src[r]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::toy::smoke_config;

    /// Step seeds differ across steps, stages and seeds, and repeat for the same inputs.
    #[test]
    fn step_seeds_are_distinct_and_stable() {
        assert_eq!(step_seed(1, "a", 2), step_seed(1, "a", 2));
        assert_ne!(step_seed(1, "a", 2), step_seed(1, "a", 3));
        assert_ne!(step_seed(1, "a", 2), step_seed(1, "b", 2));
        assert_ne!(step_seed(1, "a", 2), step_seed(2, "a", 2));
    }

    /// A scalar `w` trained towards 1 while validation wants 0.5: the validation loss
    /// falls until `w` passes 0.5 (about step 10 at lr 0.05), then rises.
    struct Parabola {
        w: Tensor,
    }

    impl StageTask for Parabola {
        fn loss(&mut self, _step: usize) -> Result<Tensor> {
            Ok((&self.w - 1.0)?.sqr()?.sum_all()?)
        }

        fn evaluate(&mut self) -> Result<Option<Evaluation>> {
            let w = f64::from(self.w.to_vec1::<f32>()?[0]);
            Ok(Some(Evaluation {
                loss: (w - 0.5).powi(2),
                accuracy: 1.0 - (w - 0.5).abs(),
                macro_f1: 0.5,
            }))
        }
    }

    /// Constant learning rate 0.05, no decay or clipping, evaluation every step.
    fn parabola_params(patience: usize) -> TrainParams {
        let mut p = smoke_config().train;
        p.lr = 0.05;
        p.warmup_steps = 0;
        p.min_lr_ratio = 1.0;
        p.weight_decay = 0.0;
        p.grad_clip = 0.0;
        p.eval_every = 1;
        p.checkpoint_every = 0;
        p.patience = patience;
        p
    }

    /// Run the parabola stage; returns the result and the final `w`.
    fn run_parabola(
        p: &TrainParams,
        total: usize,
        checkpoints: Option<&Checkpointer>,
        stop_after: Option<usize>,
    ) -> (StageResult, f32) {
        let store = ParamStore::new(0, &Device::Cpu);
        let w = store
            .vb()
            .get_with_hints(1, "w", candle_nn::Init::Const(0.0))
            .unwrap();
        let spec = StageSpec {
            name: "finetune",
            model: "parabola",
            total_steps: total,
            params: p,
            store: &store,
            checkpoints,
            stop_after,
            progress: false,
        };
        let result = run_stage(&spec, &mut Parabola { w }).unwrap();
        let w = store.snapshot().unwrap()["w"].to_vec1::<f32>().unwrap()[0];
        (result, w)
    }

    /// Early stopping ends the stage `patience` evaluations after the lowest validation
    /// loss and restores the weights of that evaluation; the curve has one point per
    /// evaluation.
    #[test]
    fn early_stopping_keeps_best_validation_loss_weights() {
        let (r, w) = run_parabola(&parabola_params(3), 200, None, None);
        assert!(r.completed && r.stopped_early);
        let best = r.best.clone().unwrap();
        assert_eq!(r.steps_done, best.step + 3, "{:?}", r.curve);
        assert!((8..=12).contains(&best.step), "best at {}", best.step);
        assert!((w - 0.5).abs() < 0.05, "w = {w}");
        assert_eq!(best.val_loss, Some((f64::from(w) - 0.5).powi(2)));
        assert_eq!(r.curve.len(), r.steps_done);
        let steps: Vec<usize> = r.curve.iter().map(|c| c.step).collect();
        assert_eq!(steps, (1..=r.steps_done).collect::<Vec<_>>());
        assert_eq!(r.losses.len(), r.steps_done);
        // One step per point: the point's training loss is that step's loss.
        assert_eq!(r.curve[4].train_loss, f64::from(r.losses[4]));
        // Patience 0 runs every step and still ends on the best weights.
        let (all, w_all) = run_parabola(&parabola_params(0), 40, None, None);
        assert!(all.completed && !all.stopped_early);
        assert_eq!(all.steps_done, 40);
        assert_eq!(all.best, r.best);
        assert_eq!(w_all, w);
    }

    /// Evaluating every 4 steps gives one curve point per evaluation (and one at the last
    /// step), each with the mean loss of the steps since the previous one.
    #[test]
    fn curve_has_one_point_per_evaluation() {
        let mut p = parabola_params(0);
        p.eval_every = 4;
        let (r, _) = run_parabola(&p, 10, None, None);
        let steps: Vec<usize> = r.curve.iter().map(|c| c.step).collect();
        assert_eq!(steps, vec![4, 8, 10]);
        let mean = r.losses[8..10].iter().map(|&l| f64::from(l)).sum::<f64>() / 2.0;
        assert!((r.curve[2].train_loss - mean).abs() < 1e-12);
        assert!(r.curve.iter().all(|c| c.val_loss.is_some()));
    }

    /// An interrupted run that early-stops after resuming ends exactly as an uninterrupted
    /// one, and resuming a stopped run trains no further.
    #[test]
    fn early_stopped_runs_resume_exactly() {
        let p = parabola_params(3);
        let (full, w_full) = run_parabola(&p, 200, None, None);
        let dir = tempfile::tempdir().unwrap();
        let ck = Checkpointer::new(dir.path()).unwrap();
        let (part, _) = run_parabola(&p, 200, Some(&ck), Some(11));
        assert!(!part.completed && part.steps_done == 11);
        let (resumed, w_resumed) = run_parabola(&p, 200, Some(&ck), None);
        assert_eq!(resumed.steps_done, full.steps_done);
        assert_eq!(resumed.best, full.best);
        assert_eq!(resumed.curve, full.curve);
        assert_eq!(w_resumed, w_full);
        let (again, w_again) = run_parabola(&p, 200, Some(&ck), None);
        assert!(again.stopped_early && again.losses.is_empty());
        assert_eq!(again.steps_done, full.steps_done);
        assert_eq!(w_again, w_full);
    }
}
