//! Pretrain then fine-tune one model on collated cells: the part of the pipeline that
//! knows nothing about h5ad files or tokenizers (see [`super::pipeline`] for that).
//!
//! Pretraining builds encoder + pretraining head in one [`ParamStore`]; fine-tuning builds
//! encoder + classification head in a fresh store (seeded differently) and copies the
//! pretrained `encoder.*` weights in. `n_params` counts the classifier (encoder + head),
//! not the pretraining head.
//!
//! Pretraining runs its `pretrain_steps` and records its training-loss curve. Fine-tuning
//! runs at most `finetune_steps`, evaluates the validation cells every `eval_every` steps,
//! stops early after `patience` evaluations without a lower validation loss, and ends on
//! the weights with the lowest validation loss.

use super::checkpoint::Checkpointer;
use super::finetune::{Classifier, FinetuneTask};
use super::heads::ClsDecoder;
use super::params::ParamStore;
use super::pretrain::PretrainTask;
use super::pretrained::Checkpoint;
use super::trainer::{run_stage, step_seed, StageResult, StageSpec};
use super::{build_encoder, build_pretrain_head, DataShape, ModelKind, TrainConfig};
use crate::error::Result;
use crate::tokenize::collate::Batch;
use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

/// Collated cells for one run.
#[derive(Debug, Clone)]
pub struct FitData {
    /// Pretraining cells (reference training split; never query cells).
    pub pretrain: Batch,
    /// Labelled fine-tuning cells.
    pub train: Batch,
    /// Labelled validation cells (model selection).
    pub val: Batch,
    /// Vocabulary and input length.
    pub shape: DataShape,
    /// Token ids of real genes (random replacements in token masking).
    pub gene_ids: Range<u32>,
    /// Number of classes.
    pub n_classes: usize,
}

/// Options that do not belong in a config file.
#[derive(Debug, Clone, Default)]
pub struct FitOptions<'a> {
    /// Skip pretraining (train from scratch).
    pub no_pretrain: bool,
    /// Checkpoint folder (resume from it when it holds checkpoints).
    pub checkpoint_dir: Option<&'a Path>,
    /// Stop fine-tuning after this many steps (simulates an interruption; tests).
    pub stop_finetune_after: Option<usize>,
    /// Progress bars on stderr.
    pub progress: bool,
    /// Start the encoder from this published checkpoint (no in-project pretraining).
    pub init_from: Option<&'a Checkpoint>,
}

/// A trained classifier and what training did.
pub struct Fitted {
    /// The classifier (best validated weights).
    pub classifier: Classifier,
    /// Its variables.
    pub store: ParamStore,
    /// Trainable parameters of the classifier.
    pub n_params: usize,
    /// Pretraining stage (None with `no_pretrain` or 0 steps).
    pub pretrain: Option<StageResult>,
    /// Fine-tuning stage.
    pub finetune: StageResult,
}

/// Pretrain (unless disabled) and fine-tune `kind` on `data` on `device`.
pub fn fit(
    kind: ModelKind,
    cfg: &TrainConfig,
    data: &FitData,
    seed: u64,
    opts: &FitOptions,
    device: &Device,
) -> Result<Fitted> {
    let run = FitRun {
        kind,
        cfg,
        data,
        seed,
        opts,
        device,
        checkpoints: opts.checkpoint_dir.map(Checkpointer::new).transpose()?,
    };
    let pretrain = opts.init_from.is_none() && !opts.no_pretrain;
    let pretrained = if pretrain && cfg.train.pretrain_steps > 0 {
        Some(run.pretrain()?)
    } else {
        None
    };
    let (result, weights) = pretrained.unzip();
    let mut fitted = run.finetune(weights.as_ref())?;
    fitted.pretrain = result;
    Ok(fitted)
}

/// Everything both stages of one [`fit`] share.
struct FitRun<'a> {
    kind: ModelKind,
    cfg: &'a TrainConfig,
    data: &'a FitData,
    seed: u64,
    opts: &'a FitOptions<'a>,
    device: &'a Device,
    checkpoints: Option<Checkpointer>,
}

impl FitRun<'_> {
    /// The stage spec both stages run under: `name` and its step budget.
    fn stage_spec<'s>(
        &'s self,
        name: &'static str,
        total_steps: usize,
        store: &'s ParamStore,
        stop_after: Option<usize>,
    ) -> StageSpec<'s> {
        StageSpec {
            name,
            model: self.kind.as_str(),
            total_steps,
            params: &self.cfg.train,
            store,
            checkpoints: self.checkpoints.as_ref(),
            stop_after,
            progress: self.opts.progress,
        }
    }

    /// Pretrain encoder + pretraining head in their own store; returns the stage and a
    /// snapshot of every weight (fine-tuning keeps only the encoder's).
    fn pretrain(&self) -> Result<(StageResult, HashMap<String, Tensor>)> {
        let (kind, data, p) = (self.kind, self.data, &self.cfg.train);
        let store = ParamStore::new(step_seed(self.seed, "init-pretrain", 0), self.device);
        let encoder = build_encoder(kind, &self.cfg.models, data.shape, store.vb())?;
        let head = build_pretrain_head(kind, encoder.d_model(), data.shape, store.vb())?;
        let token_masking = (kind == ModelKind::Geneformer)
            .then(|| (data.shape.vocab_size as u32, data.gene_ids.clone()));
        // BERT's 15% for masked genes, scGPT's 40% for masked values.
        let mask_ratio = if token_masking.is_some() {
            p.mask_ratio
        } else {
            p.gep_mask_ratio
        };
        let mut task = PretrainTask {
            encoder: encoder.as_ref(),
            head: &head,
            cells: &data.pretrain,
            batch_size: p.batch_size,
            mask_ratio,
            has_cls: true,
            token_masking,
            value_scale: p.n_bins.saturating_sub(1).max(1) as f32,
            seed: self.seed,
            device: self.device,
        };
        let spec = self.stage_spec("pretrain", p.pretrain_steps, &store, None);
        let result = run_stage(&spec, &mut task)?;
        Ok((result, store.snapshot()?))
    }

    /// Build encoder + classification head in a fresh store, copy the pretrained
    /// `encoder.*` weights in when there are any, and fine-tune. `n_params` is counted
    /// before the copy, which changes values only.
    fn finetune(&self, pretrained: Option<&HashMap<String, Tensor>>) -> Result<Fitted> {
        let (data, p) = (self.data, &self.cfg.train);
        let store = ParamStore::new(step_seed(self.seed, "init-finetune", 0), self.device);
        let encoder = build_encoder(self.kind, &self.cfg.models, data.shape, store.vb())?;
        let head = ClsDecoder::new(
            encoder.d_model(),
            p.n_layers_cls,
            data.n_classes,
            store.vb().pp("cls_head"),
        )?;
        let n_params = store.n_params()?;
        if let Some(ck) = self.opts.init_from {
            ck.assign(&store, "encoder")?;
        } else if let Some(weights) = pretrained {
            let encoder_only = weights
                .iter()
                .filter(|(k, _)| k.starts_with("encoder."))
                .map(|(k, t)| (k.clone(), t.clone()))
                .collect();
            store.assign_from(&encoder_only)?;
        }
        let classifier = Classifier { encoder, head };
        let mut task = FinetuneTask::new(
            &classifier,
            &data.train,
            &data.val,
            p.batch_size,
            p.class_balance,
            data.n_classes,
            self.seed,
            self.device,
        )?;
        let spec = self.stage_spec(
            "finetune",
            p.finetune_steps,
            &store,
            self.opts.stop_finetune_after,
        );
        let finetune = run_stage(&spec, &mut task)?;
        Ok(Fitted {
            classifier,
            store,
            n_params,
            pretrain: None,
            finetune,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::toy::{smoke_config, toy_cells, toy_shape, FIRST_GENE, VOCAB};
    use candle_core::Tensor;

    fn toy_data() -> FitData {
        FitData {
            pretrain: toy_cells(64, 1),
            train: toy_cells(64, 2),
            val: toy_cells(16, 3),
            shape: toy_shape(),
            gene_ids: FIRST_GENE..VOCAB as u32,
            n_classes: 2,
        }
    }

    fn logits(f: &Fitted, cells: &Batch) -> Vec<f32> {
        let input = crate::models::ModelInput::from_batch(cells, &Device::Cpu).unwrap();
        f.classifier
            .logits(&input, false)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    }

    /// Two runs with the same seed give identical logits (dropout on, CPU).
    #[test]
    fn training_is_deterministic() {
        let cfg = smoke_config();
        let data = toy_data();
        for kind in ModelKind::ALL {
            let a = fit(kind, &cfg, &data, 5, &FitOptions::default(), &Device::Cpu).unwrap();
            let b = fit(kind, &cfg, &data, 5, &FitOptions::default(), &Device::Cpu).unwrap();
            assert_eq!(logits(&a, &data.val), logits(&b, &data.val), "{kind:?}");
            let c = fit(kind, &cfg, &data, 6, &FitOptions::default(), &Device::Cpu).unwrap();
            assert_ne!(logits(&a, &data.val), logits(&c, &data.val), "{kind:?}");
        }
    }

    /// An interrupted and resumed run ends with the weights of an uninterrupted one.
    #[test]
    fn resume_matches_uninterrupted_run() {
        let mut cfg = smoke_config();
        cfg.train.checkpoint_every = 4;
        let data = toy_data();
        let full_dir = tempfile::tempdir().unwrap();
        let opts = FitOptions {
            checkpoint_dir: Some(full_dir.path()),
            ..Default::default()
        };
        let full = fit(ModelKind::ScGpt, &cfg, &data, 9, &opts, &Device::Cpu).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let stopped = FitOptions {
            checkpoint_dir: Some(dir.path()),
            stop_finetune_after: Some(13),
            ..Default::default()
        };
        let part = fit(ModelKind::ScGpt, &cfg, &data, 9, &stopped, &Device::Cpu).unwrap();
        assert!(!part.finetune.completed);
        let resumed_opts = FitOptions {
            checkpoint_dir: Some(dir.path()),
            ..Default::default()
        };
        let resumed = fit(
            ModelKind::ScGpt,
            &cfg,
            &data,
            9,
            &resumed_opts,
            &Device::Cpu,
        )
        .unwrap();
        assert!(resumed.finetune.completed);
        assert_eq!(resumed.finetune.losses.len(), cfg.train.finetune_steps - 13);
        assert_eq!(resumed.finetune.best, full.finetune.best);
        assert_eq!(resumed.finetune.curve, full.finetune.curve);
        let (a, b) = (
            full.store.snapshot().unwrap(),
            resumed.store.snapshot().unwrap(),
        );
        for (k, t) in &a {
            let x: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
            let y: Vec<f32> = b[k].flatten_all().unwrap().to_vec1().unwrap();
            assert_eq!(x, y, "{k}");
        }
    }

    /// The fine-tuning loss falls on the learnable toy task for every model, and the
    /// classifier then separates the validation cells.
    #[test]
    fn loss_decreases_on_toy_task() {
        let mut cfg = smoke_config();
        cfg.train.lr = 1e-3;
        cfg.train.finetune_steps = 200;
        let data = toy_data();
        for kind in ModelKind::ALL {
            let opts = FitOptions {
                no_pretrain: true,
                ..Default::default()
            };
            let f = fit(kind, &cfg, &data, 0, &opts, &Device::Cpu).unwrap();
            let l = &f.finetune.losses;
            let head: f32 = l[..5].iter().sum::<f32>() / 5.0;
            let tail: f32 = l[l.len() - 5..].iter().sum::<f32>() / 5.0;
            assert!(tail < 0.7 * head, "{kind:?}: loss {head} → {tail}");
            let best = f.finetune.best.as_ref().and_then(|b| b.val_accuracy);
            assert!(
                best.unwrap_or(0.0) >= 0.75,
                "{kind:?}: {:?}",
                f.finetune.best
            );
        }
    }

    /// Fine-tuning records one curve point per evaluation with validation scores and keeps
    /// the point with the lowest validation loss; pretraining records its training loss.
    #[test]
    fn fits_return_learning_curves() {
        let mut cfg = smoke_config();
        cfg.train.pretrain_steps = 10;
        cfg.train.finetune_steps = 25;
        cfg.train.eval_every = 10;
        let f = fit(
            ModelKind::ScGpt,
            &cfg,
            &toy_data(),
            1,
            &FitOptions::default(),
            &Device::Cpu,
        )
        .unwrap();
        let steps: Vec<usize> = f.finetune.curve.iter().map(|c| c.step).collect();
        assert_eq!(steps, vec![10, 20, 25]);
        for c in &f.finetune.curve {
            assert!(c.train_loss.is_finite() && c.train_loss > 0.0);
            let (l, a, m) = (
                c.val_loss.unwrap(),
                c.val_accuracy.unwrap(),
                c.val_macro_f1.unwrap(),
            );
            assert!(l.is_finite() && (0.0..=1.0).contains(&a) && (0.0..=1.0).contains(&m));
        }
        let lowest = f
            .finetune
            .curve
            .iter()
            .min_by(|a, b| a.val_loss.partial_cmp(&b.val_loss).unwrap())
            .cloned();
        assert_eq!(f.finetune.best, lowest);
        let pre = f.pretrain.unwrap();
        assert_eq!(pre.curve.len(), 1);
        assert_eq!(pre.curve[0].step, 10);
        assert!(pre.curve[0].val_loss.is_none() && pre.best.is_none());
    }

    /// After one step of pretraining loss + classification loss, every trainable tensor of
    /// every model (encoder, pretraining head, classification head) has a non-zero gradient.
    #[test]
    fn every_tensor_gets_a_gradient() {
        let cfg = smoke_config();
        let cells = toy_cells(8, 4);
        for kind in ModelKind::ALL {
            let store = ParamStore::new(0, &Device::Cpu);
            let encoder = build_encoder(kind, &cfg.models, toy_shape(), store.vb()).unwrap();
            let head =
                build_pretrain_head(kind, encoder.d_model(), toy_shape(), store.vb()).unwrap();
            let cls = ClsDecoder::new(encoder.d_model(), 2, 2, store.vb().pp("cls_head")).unwrap();
            let mut rng = crate::models::trainer::step_rng(0, "t", 0);
            let masked = if kind == ModelKind::Geneformer {
                crate::models::pretrain::mask_tokens(
                    &cells,
                    0.3,
                    true,
                    VOCAB as u32,
                    FIRST_GENE..VOCAB as u32,
                    &mut rng,
                )
            } else {
                crate::models::pretrain::mask_values(&cells, 0.3, true, &mut rng)
            };
            let input = crate::models::ModelInput::from_batch(&masked.batch, &Device::Cpu).unwrap();
            let hidden = encoder.forward_t(&input, true).unwrap();
            assert_eq!(
                hidden.dims(),
                &[8, crate::models::toy::SEQ, encoder.d_model()]
            );
            let mlm = crate::models::pretrain::masked_loss(&head, &hidden, &masked, 1.0).unwrap();
            let classifier = Classifier { encoder, head: cls };
            let logits = classifier.logits(&input, true).unwrap();
            assert_eq!(logits.dims(), &[8, 2]);
            let y = Tensor::new(cells.labels.as_ref().unwrap().as_slice(), &Device::Cpu).unwrap();
            let ce = candle_nn::loss::cross_entropy(&logits, &y).unwrap();
            let grads = (mlm + ce).unwrap().backward().unwrap();
            let vars = store.vars().unwrap();
            assert!(vars.len() > 10);
            for (name, var) in vars {
                let g = grads
                    .get(var.as_tensor())
                    .unwrap_or_else(|| panic!("{kind:?}: no gradient for {name}"));
                let n: f32 = g.abs().unwrap().sum_all().unwrap().to_scalar().unwrap();
                assert!(n > 0.0, "{kind:?}: zero gradient for {name}");
            }
        }
    }

    /// Changing tokens at padded positions does not change any model's logits.
    #[test]
    fn padding_does_not_change_outputs() {
        let cfg = smoke_config();
        let cells = toy_cells(4, 5);
        let mut noisy = cells.clone();
        for i in 0..noisy.gene_ids.len() {
            if noisy.attention_mask[i] == 0 {
                noisy.gene_ids[i] = 7;
                noisy.values[i] = 33.0;
            }
        }
        for kind in ModelKind::ALL {
            let store = ParamStore::new(0, &Device::Cpu);
            let encoder = build_encoder(kind, &cfg.models, toy_shape(), store.vb()).unwrap();
            let head = ClsDecoder::new(encoder.d_model(), 1, 2, store.vb().pp("cls_head")).unwrap();
            let c = Fitted {
                classifier: Classifier { encoder, head },
                store,
                n_params: 0,
                pretrain: None,
                finetune: StageResult {
                    steps_done: 0,
                    completed: true,
                    stopped_early: false,
                    losses: vec![],
                    best: None,
                    curve: vec![],
                },
            };
            let (a, b) = (logits(&c, &cells), logits(&c, &noisy));
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() < 1e-5, "{kind:?}: {x} vs {y}");
            }
        }
    }
}
