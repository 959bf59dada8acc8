//! The `tuned` arm: each model picks its own learning rate and whether to pretrain, on
//! reference-validation loss only. Every candidate is fitted with the same seed, split and
//! inputs; the query never enters the choice (nothing is predicted until a setting is
//! chosen).
//!
//! In a study the choice is made once per data set and model, on the clean reference with
//! the first seed, and reused for every seed and noise condition (`per_fit = false`, the
//! default): seeds and noise conditions are then compared at the same setting, so their
//! differences are not blurred by a selection that moves with them, and the grid is fitted
//! once instead of once per fit. `per_fit = true` re-tunes every fit.

use super::{FitReport, TrainConfig};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// The candidate settings of the tuned arm, the `[tune]` section of a profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TuneGrid {
    /// Peak learning rates tried. Default {1e-4, 3e-4, 1e-3, 3e-3}.
    #[serde(default = "default_lrs")]
    pub lrs: Vec<f64>,
    /// Pretraining on (the profile's `pretrain_steps`) and/or off. Default both.
    #[serde(default = "default_pretrain")]
    pub pretrain: Vec<bool>,
    /// Re-tune every fit (each seed and reference condition) instead of choosing once per
    /// data set and model on the clean reference at the first seed. Default false.
    #[serde(default)]
    pub per_fit: bool,
}

fn default_lrs() -> Vec<f64> {
    vec![1e-4, 3e-4, 1e-3, 3e-3]
}

fn default_pretrain() -> Vec<bool> {
    vec![true, false]
}

impl Default for TuneGrid {
    fn default() -> Self {
        Self {
            lrs: default_lrs(),
            pretrain: default_pretrain(),
            per_fit: false,
        }
    }
}

impl TuneGrid {
    /// Read the optional `[tune]` section of a profile (absent: the default grid).
    pub fn from_profile(doc: &toml::Value) -> Result<Self> {
        let Some(section) = doc.get("tune") else {
            return Ok(Self::default());
        };
        let grid: TuneGrid = section.clone().try_into().map_err(|e| Error::Parse {
            path: "<profile>".into(),
            problem: format!("[tune]: {e}"),
        })?;
        grid.validate()?;
        Ok(grid)
    }

    /// Non-empty lists, positive finite learning rates.
    pub fn validate(&self) -> Result<()> {
        if self.lrs.is_empty() || self.pretrain.is_empty() {
            return Err(Error::param("tune", "lrs and pretrain must not be empty"));
        }
        if let Some(bad) = self.lrs.iter().find(|l| !(l.is_finite() && **l > 0.0)) {
            return Err(Error::param(
                "tune.lrs",
                format!("{bad} is not a positive learning rate"),
            ));
        }
        Ok(())
    }

    /// `base` with the chosen setting (the grid's configuration for `chosen`).
    pub fn config_for(&self, base: &TrainConfig, chosen: &Candidate) -> Result<TrainConfig> {
        self.candidates(base)
            .into_iter()
            .find(|(c, _)| c == chosen)
            .map(|(_, cfg)| cfg)
            .ok_or_else(|| {
                Error::param(
                    "tune",
                    format!("setting {chosen:?} is not a candidate of the grid"),
                )
            })
    }

    /// The candidate configurations, in grid order (learning rate, then pretraining).
    pub fn candidates(&self, base: &TrainConfig) -> Vec<(Candidate, TrainConfig)> {
        let mut out = Vec::new();
        for &lr in &self.lrs {
            for &pretrain in &self.pretrain {
                let mut cfg = base.clone();
                cfg.train.lr = lr;
                if !pretrain {
                    cfg.train.pretrain_steps = 0;
                }
                out.push((Candidate { lr, pretrain }, cfg));
            }
        }
        out
    }
}

/// One setting of the grid.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub lr: f64,
    pub pretrain: bool,
}

/// A candidate's reference-validation scores.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CandidateScore {
    pub candidate: Candidate,
    pub val_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
    pub val_macro_f1: Option<f64>,
}

/// What tuning chose, and every candidate's validation scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuneReport {
    pub chosen: Candidate,
    pub candidates: Vec<CandidateScore>,
}

/// Index of the candidate with the lowest validation loss (the first on ties; candidates
/// without a validation loss are never chosen while another has one).
pub fn choose(scores: &[CandidateScore]) -> Option<usize> {
    let key = |s: &CandidateScore| {
        s.val_loss
            .filter(|v| v.is_finite())
            .unwrap_or(f64::INFINITY)
    };
    (0..scores.len()).reduce(|best, i| {
        if key(&scores[i]) < key(&scores[best]) {
            i
        } else {
            best
        }
    })
}

/// Fit every candidate of `grid` with `fit` (one fit of the model on the reference, e.g. a
/// closure over [`fit_classifier`](super::fit_classifier)) and keep the one with the
/// lowest reference-validation loss (the first on ties). Only the best model so far is
/// kept, and nothing is predicted: the caller predicts with the chosen one.
pub fn tune<T>(
    grid: &TuneGrid,
    base: &TrainConfig,
    mut fit: impl FnMut(&TrainConfig) -> Result<(T, FitReport)>,
) -> Result<(T, FitReport, TuneReport)> {
    grid.validate()?;
    let mut scores = Vec::new();
    let mut best: Option<(Candidate, T, FitReport)> = None;
    for (candidate, cfg) in grid.candidates(base) {
        let (model, report) = fit(&cfg)?;
        scores.push(CandidateScore {
            candidate,
            val_loss: report.val_loss,
            val_accuracy: report.val_accuracy,
            val_macro_f1: report.val_macro_f1,
        });
        if choose(&scores) == Some(scores.len() - 1) {
            best = Some((candidate, model, report));
        }
    }
    let (chosen, model, report) = best.ok_or_else(|| Error::param("tune", "empty grid"))?;
    Ok((
        model,
        report,
        TuneReport {
            chosen,
            candidates: scores,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(lr: f64, loss: Option<f64>) -> CandidateScore {
        CandidateScore {
            candidate: Candidate { lr, pretrain: true },
            val_loss: loss,
            val_accuracy: None,
            val_macro_f1: None,
        }
    }

    #[test]
    fn lowest_validation_loss_wins_and_missing_losses_never_do() {
        let s = [
            score(1e-4, None),
            score(3e-4, Some(0.9)),
            score(1e-3, Some(0.4)),
        ];
        assert_eq!(choose(&s), Some(2));
        let ties = [score(1e-4, Some(0.5)), score(3e-4, Some(0.5))];
        assert_eq!(choose(&ties), Some(0));
        let nan = [score(1e-4, Some(f64::NAN)), score(3e-4, Some(2.0))];
        assert_eq!(choose(&nan), Some(1));
        assert_eq!(choose(&[]), None);
    }

    #[test]
    fn default_grid_has_the_four_rates_with_pretraining_on_and_off() {
        let doc: toml::Value = toml::from_str("[train]\nlr = 1.0").unwrap();
        let g = TuneGrid::from_profile(&doc).unwrap();
        assert_eq!(g.lrs, vec![1e-4, 3e-4, 1e-3, 3e-3]);
        assert_eq!(g.pretrain, vec![true, false]);
        let bad: toml::Value = toml::from_str("[tune]\nlrs = [-1.0]").unwrap();
        assert!(TuneGrid::from_profile(&bad).is_err());
        let empty: toml::Value = toml::from_str("[tune]\npretrain = []").unwrap();
        assert!(TuneGrid::from_profile(&empty).is_err());
    }
}
