//! Cell-type fine-tuning: an encoder plus scGPT's [`ClsDecoder`] on the first (`<cls>`)
//! token, trained with cross entropy (optionally class-balanced), validated on held-out
//! reference cells (loss, accuracy, macro F1), and used to predict query cells.

use super::config::ClassBalance;
use super::heads::{weighted_cross_entropy, ClsDecoder};
use super::pretrain::sample_rows;
use super::trainer::{batch_rows, step_rng, Evaluation, StageTask};
use super::{CellEncoder, ModelInput};
use crate::error::{Error, Result};
use crate::tokenize::collate::Batch;
use candle_core::{Device, Tensor, D};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Encoder + classification head.
pub struct Classifier {
    /// The (possibly pretrained) encoder.
    pub encoder: Box<dyn CellEncoder>,
    /// The head on the `<cls>` state.
    pub head: ClsDecoder,
}

impl Classifier {
    /// Logits `(b, n_classes)` from the state of the first token.
    pub fn logits(&self, input: &ModelInput, train: bool) -> Result<Tensor> {
        let h = self.encoder.forward_t(input, train)?;
        let cls = h.narrow(1, 0, 1)?.squeeze(1)?;
        Ok(self.head.forward(&cls)?)
    }

    /// Predicted class and softmax probability of it for every cell of `cells`, in
    /// batches of `batch_size`.
    pub fn predict(
        &self,
        cells: &Batch,
        batch_size: usize,
        device: &Device,
    ) -> Result<(Vec<usize>, Vec<f32>)> {
        let mut classes = Vec::with_capacity(cells.batch_size);
        let mut scores = Vec::with_capacity(cells.batch_size);
        let rows: Vec<usize> = (0..cells.batch_size).collect();
        for chunk in rows.chunks(batch_size.max(1)) {
            let input = ModelInput::from_batch(&batch_rows(cells, chunk), device)?;
            let probs = candle_nn::ops::softmax(&self.logits(&input, false)?, D::Minus1)?;
            let top = probs.argmax(D::Minus1)?.to_vec1::<u32>()?;
            let max = probs.max(D::Minus1)?.to_vec1::<f32>()?;
            classes.extend(top.into_iter().map(|c| c as usize));
            scores.extend(max);
        }
        Ok((classes, scores))
    }
}

/// Accuracy of `predicted` against `labels`.
pub fn accuracy(predicted: &[usize], labels: &[u32]) -> f64 {
    if labels.is_empty() {
        return 0.0;
    }
    let hits = predicted
        .iter()
        .zip(labels)
        .filter(|(p, &y)| **p == y as usize)
        .count();
    hits as f64 / labels.len() as f64
}

/// Accuracy and macro F1 of `predicted` against `labels` with the definitions of
/// [`crate::eval::metrics`] (macro F1 averages the per-class F1 over the classes present
/// in `labels`, as sklearn), so validation scores compare with every reported score.
pub fn accuracy_and_macro_f1(predicted: &[usize], labels: &[u32]) -> (f64, f64) {
    use crate::eval::metrics::{confusion_counts, headline_scores};
    let truth: Vec<usize> = labels.iter().map(|&y| y as usize).collect();
    let k = truth.iter().chain(predicted).max().map_or(0, |m| m + 1);
    let (acc, macro_f1, _) = headline_scores(&confusion_counts(&truth, predicted, k));
    (acc, macro_f1)
}

/// Validation scores of `model` on labelled `cells`, in batches of `batch_size`: mean
/// (unweighted) cross entropy, accuracy and macro F1. `None` without labelled cells.
pub fn score_cells(
    model: &Classifier,
    cells: &Batch,
    batch_size: usize,
    device: &Device,
) -> Result<Option<Evaluation>> {
    let Some(labels) = cells.labels.as_ref().filter(|l| !l.is_empty()) else {
        return Ok(None);
    };
    let mut loss_sum = 0f64;
    let mut predicted = Vec::with_capacity(labels.len());
    let rows: Vec<usize> = (0..cells.batch_size).collect();
    for chunk in rows.chunks(batch_size.max(1)) {
        let batch = batch_rows(cells, chunk);
        let logits = model.logits(&ModelInput::from_batch(&batch, device)?, false)?;
        let y = Tensor::from_vec(batch.labels.unwrap_or_default(), chunk.len(), device)?;
        let ce = candle_nn::loss::cross_entropy(&logits, &y)?.to_scalar::<f32>()?;
        loss_sum += f64::from(ce) * chunk.len() as f64;
        let top = logits.argmax(D::Minus1)?.to_vec1::<u32>()?;
        predicted.extend(top.into_iter().map(|c| c as usize));
    }
    let (accuracy, macro_f1) = accuracy_and_macro_f1(&predicted, labels);
    Ok(Some(Evaluation {
        loss: loss_sum / labels.len() as f64,
        accuracy,
        macro_f1,
    }))
}

/// The fine-tuning stage: training cells with labels, validation cells with labels.
pub struct FinetuneTask<'a> {
    /// The classifier being trained.
    pub model: &'a Classifier,
    /// Training cells (labels required).
    pub train: &'a Batch,
    /// Validation cells (labels required; may be empty).
    pub val: &'a Batch,
    /// Cells per step.
    pub batch_size: usize,
    /// Class-imbalance handling.
    pub balance: ClassBalance,
    /// Number of classes.
    pub n_classes: usize,
    /// Run seed.
    pub seed: u64,
    /// Device of the model.
    pub device: &'a Device,
    /// Per-class sampling weights or loss weights (1/count), computed once.
    class_weights: Vec<f64>,
}

impl<'a> FinetuneTask<'a> {
    /// A task over `train` and `val`; errors when labels are missing.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        model: &'a Classifier,
        train: &'a Batch,
        val: &'a Batch,
        batch_size: usize,
        balance: ClassBalance,
        n_classes: usize,
        seed: u64,
        device: &'a Device,
    ) -> Result<Self> {
        let labels = train
            .labels
            .as_ref()
            .ok_or_else(|| Error::Model("fine-tuning cells have no labels".into()))?;
        if train.batch_size == 0 {
            return Err(Error::Model("no fine-tuning cells".into()));
        }
        let mut counts = vec![0usize; n_classes];
        for &y in labels {
            let slot = counts.get_mut(y as usize).ok_or_else(|| {
                Error::Model(format!("label {y} out of range for {n_classes} classes"))
            })?;
            *slot += 1;
        }
        let present = counts.iter().filter(|&&c| c > 0).count().max(1) as f64;
        let total = labels.len() as f64;
        // Weight total/(present·count): mean weight over cells is 1.
        let class_weights = counts
            .iter()
            .map(|&c| {
                if c == 0 {
                    0.0
                } else {
                    total / (present * c as f64)
                }
            })
            .collect();
        Ok(Self {
            model,
            train,
            val,
            batch_size,
            balance,
            n_classes,
            seed,
            device,
            class_weights,
        })
    }

    fn draw_rows(&self, rng: &mut ChaCha8Rng) -> Vec<usize> {
        let n = self.train.batch_size;
        match (self.balance, self.train.labels.as_ref()) {
            (ClassBalance::Sampler, Some(labels)) => {
                // Inverse-frequency sampling via cumulative weights.
                let cum: Vec<f64> = labels
                    .iter()
                    .scan(0.0, |s, &y| {
                        *s += self.class_weights[y as usize];
                        Some(*s)
                    })
                    .collect();
                let total = cum.last().copied().unwrap_or(0.0);
                (0..self.batch_size)
                    .map(|_| {
                        let u = rng.gen::<f64>() * total;
                        cum.partition_point(|&c| c <= u).min(n - 1)
                    })
                    .collect()
            }
            _ => sample_rows(n, self.batch_size, rng),
        }
    }
}

impl StageTask for FinetuneTask<'_> {
    fn loss(&mut self, step: usize) -> Result<Tensor> {
        let mut rng = step_rng(self.seed, "finetune", step);
        let rows = self.draw_rows(&mut rng);
        let batch = batch_rows(self.train, &rows);
        let labels = batch.labels.clone().unwrap_or_default();
        self.model.encoder.reseed_dropout(rng.gen());
        let input = ModelInput::from_batch(&batch, self.device)?;
        let logits = self.model.logits(&input, true)?;
        let y = Tensor::from_vec(labels, batch.batch_size, self.device)?;
        let weights = match self.balance {
            ClassBalance::Loss => {
                let w: Vec<f32> = self.class_weights.iter().map(|&w| w as f32).collect();
                Some(Tensor::from_vec(w, self.n_classes, self.device)?)
            }
            _ => None,
        };
        Ok(weighted_cross_entropy(&logits, &y, weights.as_ref())?)
    }

    fn evaluate(&mut self) -> Result<Option<Evaluation>> {
        score_cells(self.model, self.val, self.batch_size.max(64), self.device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Macro F1 averages over the classes present in the truth (sklearn's
    /// `f1_score(y, p, average="macro", labels=sorted(set(y)))`), with zero F1 for a class
    /// that is never predicted.
    #[test]
    fn macro_f1_matches_sklearn() {
        // y = [0,0,1,1,2,2], p = [0,1,1,1,2,0]:
        // f1_score(y, p, average="macro") = mean(0.5, 0.8, 0.6667) = 0.65556
        let (acc, f1) = accuracy_and_macro_f1(&[0, 1, 1, 1, 2, 0], &[0, 0, 1, 1, 2, 2]);
        assert!((acc - 4.0 / 6.0).abs() < 1e-12);
        assert!((f1 - (0.5 + 0.8 + 2.0 / 3.0) / 3.0).abs() < 1e-12, "{f1}");
        // One class predicted for every cell: F1 of the others is 0.
        let (acc, f1) = accuracy_and_macro_f1(&[0, 0, 0, 0], &[0, 0, 1, 1]);
        assert_eq!(acc, 0.5);
        assert!((f1 - (2.0 / 3.0) / 2.0).abs() < 1e-12, "{f1}");
    }
}
