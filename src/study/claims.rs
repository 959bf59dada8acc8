//! The study's claims, evaluated on our grid.
//!
//! The unit of replication is the seed, paired within a data set: every effect is a keyed
//! difference (same data set, seed and noise condition) or a per-record value. Per data set
//! we give the mean over seeds with a t-interval; pooled over data sets, the mean of the
//! data sets' means with a cluster bootstrap interval (resample data sets, then seeds
//! within each), never treating seeds × data sets as independent. Fits that failed the
//! competence gate or collapsed onto one class are left out and counted.

use crate::eval::summarize_over_seeds;
use crate::study::config::{NoiseCondition, NoiseTarget};
use crate::study::methods::{is_tuned, model_kind, TUNED_SUFFIX};
use crate::study::runner::RunRecord;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// Bootstrap resamples of the pooled interval (seeded: same records, same interval).
const N_BOOT: usize = 4000;
/// A fit whose most predicted class takes at least this share of the query predicts one
/// class for (nearly) every cell: it would show no noise drop and a huge share shift, so it
/// would satisfy claims trivially.
const COLLAPSE_SHARE: f64 = 0.95;
/// Classes under this share of the reference are "rare".
const RARE_SHARE: f64 = 0.02;
/// Non-inferiority margin (points) of "fewer parameters and not worse".
const NOT_WORSE_MARGIN: f64 = 2.0;

/// One data set's estimate of an effect.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetEffect {
    pub dataset: String,
    /// Seeds (paired units) in this data set.
    pub n: usize,
    pub mean: f64,
    /// 95% t-interval over seeds (`None` with one seed).
    pub ci95: Option<(f64, f64)>,
}

/// One claim of the study next to what we measured.
#[derive(Debug, Clone, Serialize)]
pub struct ClaimResult {
    /// The claim as the abstract states it.
    pub claim: String,
    /// The noise protocol the row is about (`None` for clean comparisons).
    pub protocol: Option<String>,
    /// The published effect in percentage points; NaN when the abstract gives a direction
    /// only (serialized as null).
    pub published_pp: f64,
    /// Pooled mean effect in percentage points (`None` when the grid lacks the methods).
    pub measured_pp: Option<f64>,
    /// Pooled 95% interval: cluster bootstrap over data sets and seeds.
    pub ci95_pp: Option<(f64, f64)>,
    /// Paired units (data set × seed) behind the pooled estimate.
    pub n: usize,
    /// Data sets behind the pooled estimate.
    pub n_datasets: usize,
    /// Per data set: mean and t-interval over seeds.
    pub per_dataset: Vec<DatasetEffect>,
    /// Does the interval contain the published value?
    pub contains_published: Option<bool>,
    /// Does the interval exclude half the published value (the effect is at least half)?
    pub excludes_half: Option<bool>,
    /// reproduced / direction only (smaller|larger) / inconclusive / not reproduced /
    /// opposite / not evaluated.
    pub verdict: String,
    /// What was compared.
    pub detail: String,
}

/// The verdict of an interval against a published effect (NaN: direction only).
pub fn verdict(published: f64, ci: Option<(f64, f64)>) -> String {
    let Some((lo, hi)) = ci else {
        return "not evaluated (fewer than 2 seeds)".into();
    };
    // The sign bit carries the direction, also of a direction-only (NaN) claim.
    let sign = if published.is_sign_negative() {
        -1.0
    } else {
        1.0
    };
    let (lo_s, hi_s) = if sign > 0.0 { (lo, hi) } else { (-hi, -lo) };
    let p = published.abs();
    if hi_s < 0.0 {
        "opposite".into()
    } else if lo_s <= 0.0 {
        if !published.is_nan() && p > hi_s {
            "not reproduced (interval excludes the published effect)".into()
        } else {
            "inconclusive (interval includes 0)".into()
        }
    } else if published.is_nan() || (lo_s <= p && p <= hi_s) {
        "reproduced".into()
    } else if hi_s < p {
        "direction reproduced, smaller than published".into()
    } else {
        "direction reproduced, larger than published".into()
    }
}

/// A keyed observation: one value for one data set and seed.
#[derive(Debug, Clone, PartialEq)]
struct Obs {
    dataset: String,
    seed: u64,
    value: f64,
}

/// Values grouped by data set, in first-seen order.
fn by_dataset(obs: &[Obs]) -> Vec<(String, Vec<f64>)> {
    let mut out: Vec<(String, Vec<f64>)> = Vec::new();
    for o in obs {
        match out.iter_mut().find(|(d, _)| *d == o.dataset) {
            Some((_, v)) => v.push(o.value),
            None => out.push((o.dataset.clone(), vec![o.value])),
        }
    }
    out
}

/// Mean of data set means, and its cluster-bootstrap 95% interval (`None` with fewer than
/// two paired units in total).
fn pooled(groups: &[(String, Vec<f64>)]) -> (f64, Option<(f64, f64)>) {
    let mean_of = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let means: Vec<f64> = groups.iter().map(|(_, v)| mean_of(v)).collect();
    let mean = mean_of(&means);
    // Seeds are the unit of replication: without two seeds somewhere there is no interval.
    if groups.iter().all(|(_, v)| v.len() < 2) {
        return (mean, None);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut boots: Vec<f64> = (0..N_BOOT)
        .map(|_| {
            let total: f64 = (0..groups.len())
                .map(|_| {
                    let v = &groups[rng.gen_range(0..groups.len())].1;
                    (0..v.len())
                        .map(|_| v[rng.gen_range(0..v.len())])
                        .sum::<f64>()
                        / v.len() as f64
                })
                .sum();
            total / groups.len() as f64
        })
        .collect();
    boots.sort_by(f64::total_cmp);
    let at = |q: f64| boots[((q * (N_BOOT - 1) as f64).round() as usize).min(N_BOOT - 1)];
    (mean, Some((at(0.025), at(0.975))))
}

/// The claim row for keyed observations.
fn summarize(
    claim: &str,
    protocol: Option<String>,
    published: f64,
    obs: &[Obs],
    detail: String,
) -> ClaimResult {
    let groups = by_dataset(obs);
    let per_dataset = groups
        .iter()
        .map(|(d, v)| {
            let s = summarize_over_seeds(v).ok();
            DatasetEffect {
                dataset: d.clone(),
                n: v.len(),
                mean: s.as_ref().map_or(f64::NAN, |s| s.mean),
                ci95: s.filter(|s| s.n > 1).map(|s| s.ci95),
            }
        })
        .collect();
    let (measured, ci) = if obs.is_empty() {
        (None, None)
    } else {
        let (m, ci) = pooled(&groups);
        (Some(m), ci)
    };
    let known = !published.is_nan();
    ClaimResult {
        claim: claim.into(),
        protocol,
        published_pp: published,
        measured_pp: measured,
        ci95_pp: ci,
        n: obs.len(),
        n_datasets: groups.len(),
        per_dataset,
        contains_published: ci
            .filter(|_| known)
            .map(|(lo, hi)| lo <= published && published <= hi),
        excludes_half: ci.filter(|_| known).map(|(lo, hi)| {
            if published >= 0.0 {
                lo > published / 2.0
            } else {
                hi < published / 2.0
            }
        }),
        verdict: if obs.is_empty() {
            "not evaluated (no pair of fits that counts as evidence: methods absent, or their fits undertrained or collapsed)".into()
        } else {
            verdict(published, ci)
        },
        detail,
    }
}

/// Why a record does not count as evidence, if it does not.
fn exclusion(r: &RunRecord) -> Option<&'static str> {
    if r.gate_passed == Some(false) {
        return Some("undertrained (failed the competence gate)");
    }
    let top = r
        .report
        .per_class
        .iter()
        .map(|c| c.predicted_share)
        .fold(0.0, f64::max);
    (top >= COLLAPSE_SHARE).then_some("collapsed (one class for nearly every query cell)")
}

/// Paired differences `f(a) − f(b)` keyed by data set, seed and noise condition.
fn paired(
    records: &[&RunRecord],
    a: &str,
    b: &str,
    cond: &NoiseCondition,
    f: impl Fn(&RunRecord) -> Option<f64>,
) -> Vec<Obs> {
    let find = |m: &str, d: &str, s: u64| {
        records
            .iter()
            .find(|r| r.method == m && r.dataset == d && r.seed == s && r.noise == *cond)
    };
    records
        .iter()
        .filter(|r| r.method == a && r.noise == *cond)
        .filter_map(|ra| {
            let rb = find(b, &ra.dataset, ra.seed)?;
            Some(Obs {
                dataset: ra.dataset.clone(),
                seed: ra.seed,
                value: f(ra)? - f(rb)?,
            })
        })
        .collect()
}

/// Accuracy drop (clean − noisy, points) of `method` under `cond`, keyed by data set and seed.
fn drops(records: &[&RunRecord], method: &str, cond: &NoiseCondition) -> Vec<Obs> {
    let clean = NoiseCondition::clean();
    paired(records, method, method, cond, |r| {
        Some(100.0 * r.report.accuracy)
    })
    .into_iter()
    .filter_map(|o| {
        let c = records.iter().find(|r| {
            r.method == method && r.dataset == o.dataset && r.seed == o.seed && r.noise == clean
        })?;
        let noisy = records.iter().find(|r| {
            r.method == method && r.dataset == o.dataset && r.seed == o.seed && r.noise == *cond
        })?;
        Some(Obs {
            value: 100.0 * (c.report.accuracy - noisy.report.accuracy),
            ..o
        })
    })
    .collect()
}

/// Per-record values of `method` on clean data, keyed by data set and seed.
fn values(records: &[&RunRecord], method: &str, f: impl Fn(&RunRecord) -> Option<f64>) -> Vec<Obs> {
    let clean = NoiseCondition::clean();
    records
        .iter()
        .filter(|r| r.method == method && r.noise == clean)
        .filter_map(|r| {
            Some(Obs {
                dataset: r.dataset.clone(),
                seed: r.seed,
                value: f(r)?,
            })
        })
        .collect()
}

/// The CD14-like class's share shift of a record (predicted − true, points) and its
/// relative over-prediction (%), if the data set has a class whose name contains "CD14".
fn cd14(r: &RunRecord) -> Option<(f64, f64)> {
    let c = r
        .report
        .per_class
        .iter()
        .find(|c| c.class.to_uppercase().contains("CD14"))?;
    let relative = if c.true_share > 0.0 {
        100.0 * (c.predicted_share / c.true_share - 1.0)
    } else {
        f64::NAN
    };
    Some((c.share_shift_pp, relative))
}

/// Mean recall on rare classes (under 2% of the reference) minus mean recall on common
/// ones, in points, over classes with query cells.
fn rare_minus_common(r: &RunRecord) -> Option<f64> {
    let total: usize = r.reference_counts.iter().map(|(_, n)| n).sum();
    let share = |class: &str| {
        r.reference_counts
            .iter()
            .find(|(c, _)| c == class)
            .map(|(_, n)| *n as f64 / total.max(1) as f64)
    };
    let (mut rare, mut common) = (Vec::new(), Vec::new());
    for c in r.report.per_class.iter().filter(|c| c.support > 0) {
        match share(&c.class) {
            Some(s) if s < RARE_SHARE => rare.push(c.recall),
            Some(_) => common.push(c.recall),
            None => {}
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    (!rare.is_empty() && !common.is_empty()).then(|| 100.0 * (mean(&rare) - mean(&common)))
}

/// The noise protocols of the grid's conditions at fraction 0.2: one condition each, σ = 1
/// where the grid has it, else the smallest σ.
fn protocols(records: &[&RunRecord]) -> Vec<NoiseCondition> {
    let mut out: Vec<NoiseCondition> = Vec::new();
    for r in records
        .iter()
        .filter(|r| (r.noise.fraction - 0.2).abs() < 1e-9 && r.noise.sigma > 0.0)
    {
        let same = |c: &NoiseCondition| {
            c.target == r.noise.target && c.perturb_zeros == r.noise.perturb_zeros
        };
        match out.iter_mut().find(|c| same(c)) {
            Some(c) if c.sigma != 1.0 && (r.noise.sigma == 1.0 || r.noise.sigma < c.sigma) => {
                *c = r.noise
            }
            Some(_) => {}
            None => out.push(r.noise),
        }
    }
    out
}

/// A protocol's side and zero handling, e.g. "query only, zeros perturbed".
pub fn protocol_label(target: NoiseTarget, perturb_zeros: bool) -> String {
    let side = match target {
        NoiseTarget::Query => "query only",
        NoiseTarget::Reference => "reference only",
        NoiseTarget::Both => "both sides",
    };
    let zeros = if perturb_zeros {
        "zeros perturbed"
    } else {
        "zeros kept"
    };
    format!("{side}, {zeros}")
}

/// A noise condition's name: [`protocol_label`], fraction of cells and σ.
pub fn protocol_name(c: &NoiseCondition) -> String {
    format!(
        "{}, {:.0}% of cells, σ {}",
        protocol_label(c.target, c.perturb_zeros),
        100.0 * c.fraction,
        c.sigma
    )
}

/// How many records each exclusion rule removed, for the report.
pub fn exclusions(records: &[RunRecord]) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for why in records.iter().filter_map(exclusion) {
        match out.iter_mut().find(|(w, _)| w == why) {
            Some((_, n)) => *n += 1,
            None => out.push((why.to_string(), 1)),
        }
    }
    out
}

/// Evaluate every claim of the abstract on the records that count as evidence, once per
/// arm: the `identical` arm (one shared training setting, as the study) and, when the grid
/// has it, the `tuned` arm (rows prefixed "[tuned arm]"), each against the same baselines.
pub fn evaluate_claims(all: &[RunRecord]) -> Vec<ClaimResult> {
    let mut out = claims_of_arm(&arm_view(all, false));
    if all.iter().any(|r| is_tuned(&r.method)) {
        for mut row in claims_of_arm(&arm_view(all, true)) {
            row.claim = format!("[tuned arm] {}", row.claim);
            out.push(row);
        }
    }
    out
}

/// The baselines' records plus one arm's neural records, the tuned ones under their
/// model's plain name, so every claim compares the same way in both arms.
fn arm_view(all: &[RunRecord], tuned: bool) -> Vec<RunRecord> {
    all.iter()
        .filter_map(|r| {
            let neural = model_kind(&r.method).is_some();
            match (neural, is_tuned(&r.method), tuned) {
                (false, _, _) | (true, false, false) => Some(r.clone()),
                (true, true, true) => {
                    let mut r = r.clone();
                    r.method = r.method.trim_end_matches(TUNED_SUFFIX).to_string();
                    Some(r)
                }
                _ => None,
            }
        })
        .collect()
}

fn claims_of_arm(view: &[RunRecord]) -> Vec<ClaimResult> {
    let records: Vec<&RunRecord> = view.iter().filter(|r| exclusion(r).is_none()).collect();
    let mut out = clean_claims(&records);
    out.push(params_claim(&records));
    for cond in protocols(&records) {
        out.extend(noise_claims(&records, &cond));
    }
    out.extend(composition_claims(&records));
    out
}

fn clean_claims(records: &[&RunRecord]) -> Vec<ClaimResult> {
    let clean = NoiseCondition::clean();
    let acc = |r: &RunRecord| Some(100.0 * r.report.accuracy);
    let f1 = |r: &RunRecord| Some(100.0 * r.report.macro_f1);
    let mut out = Vec::new();
    // The abstract gives 9 points over Geneformer and 5 more for Geneformer over the
    // binned models, so 14 is the implied gap to those.
    for (fm, published) in [("geneformer", 9.0), ("scgpt", 14.0), ("scmamba2", 14.0)] {
        out.push(summarize(
            &format!(
                "Seurat beats {} in accuracy (~{published:.0} points)",
                pretty(fm)
            ),
            None,
            published,
            &paired(records, "seurat", fm, &clean, acc),
            format!("accuracy(seurat) − accuracy({fm}), clean, keyed by data set and seed"),
        ));
    }
    for (metric, published, f) in [
        ("accuracy", 5.0, &acc as &dyn Fn(&RunRecord) -> Option<f64>),
        ("macro F1", 26.0, &f1),
    ] {
        for other in ["scgpt", "scmamba2"] {
            out.push(summarize(
                &format!(
                    "Geneformer beats {} in {metric} (~{published:.0} points)",
                    pretty(other)
                ),
                None,
                published,
                &paired(records, "geneformer", other, &clean, f),
                format!("{metric}(geneformer) − {metric}({other}), clean"),
            ));
        }
    }
    out
}

/// "~40% fewer parameters" (measured, not configured) "and not worse".
fn params_claim(records: &[&RunRecord]) -> ClaimResult {
    let clean = NoiseCondition::clean();
    let fewer = paired(records, "scgpt", "geneformer", &clean, |r| {
        r.n_params.map(|n| n as f64)
    });
    let pct: Vec<Obs> = fewer
        .iter()
        .filter_map(|o| {
            let g = records.iter().find(|r| {
                r.method == "geneformer"
                    && r.dataset == o.dataset
                    && r.seed == o.seed
                    && r.noise == clean
            })?;
            let s = records.iter().find(|r| {
                r.method == "scgpt"
                    && r.dataset == o.dataset
                    && r.seed == o.seed
                    && r.noise == clean
            })?;
            Some(Obs {
                value: 100.0 * (1.0 - g.n_params? as f64 / s.n_params? as f64),
                ..o.clone()
            })
        })
        .collect();
    let acc = paired(records, "geneformer", "scgpt", &clean, |r| {
        Some(100.0 * r.report.accuracy)
    });
    let mut row = summarize(
        "Geneformer has ~40% fewer parameters than scGPT and is not worse",
        None,
        40.0,
        &pct,
        String::new(),
    );
    let acc_row = summarize("", None, 5.0, &acc, String::new());
    let not_worse = acc_row.ci95_pp.map(|(lo, _)| lo > -NOT_WORSE_MARGIN);
    let fewer_measured = row.measured_pp.map(|m| m > 0.0);
    row.detail = format!(
        "measured parameter counts: 100·(1 − n_params(geneformer)/n_params(scgpt)); not worse = the accuracy(geneformer) − accuracy(scgpt) interval {} lies above −{NOT_WORSE_MARGIN} points",
        acc_row.ci95_pp.map_or("–".into(), |(a, b)| format!("[{a:+.1}, {b:+.1}]"))
    );
    if let (Some(f), Some(nw)) = (fewer_measured, not_worse) {
        row.verdict = match (f, nw) {
            (true, true) => format!("fewer parameters and not worse; size: {}", row.verdict),
            (true, false) => "fewer parameters, but not shown to be not worse".into(),
            (false, _) => "not fewer parameters".into(),
        };
    }
    row
}

fn noise_claims(records: &[&RunRecord], cond: &NoiseCondition) -> Vec<ClaimResult> {
    let p = Some(protocol_name(cond));
    let mut out = Vec::new();
    for (m, published) in [("scgpt", 11.0), ("scmamba2", 11.0), ("geneformer", 8.0)] {
        out.push(summarize(
            &format!(
                "20% noisy cells cost {} ~{published:.0} points of accuracy",
                pretty(m)
            ),
            p.clone(),
            published,
            &drops(records, m, cond),
            format!("accuracy(clean) − accuracy(noisy), {m}, keyed by data set and seed"),
        ));
    }
    let g = drops(records, "geneformer", cond);
    let diff: Vec<Obs> = drops(records, "scgpt", cond)
        .into_iter()
        .filter_map(|s| {
            let r = g
                .iter()
                .find(|o| o.dataset == s.dataset && o.seed == s.seed)?;
            Some(Obs {
                value: s.value - r.value,
                ..s
            })
        })
        .collect();
    out.push(summarize(
        "Noise hurts binned scGPT more than rank-encoded Geneformer (~3 points)",
        p,
        3.0,
        &diff,
        "drop(scgpt) − drop(geneformer), keyed by data set and seed".into(),
    ));
    out
}

fn composition_claims(records: &[&RunRecord]) -> Vec<ClaimResult> {
    let mut out = Vec::new();
    for (m, published) in [("scgpt", 16.0), ("geneformer", 6.0)] {
        let shift = values(records, m, |r| cd14(r).map(|c| c.0));
        let rel = values(records, m, |r| {
            cd14(r).map(|c| c.1).filter(|v| v.is_finite())
        });
        let rel_mean =
            (!rel.is_empty()).then(|| rel.iter().map(|o| o.value).sum::<f64>() / rel.len() as f64);
        out.push(summarize(
            &format!("{} over-predicts CD14 monocytes by ~{published:.0} points of share", pretty(m)),
            None,
            published,
            &shift,
            format!(
                "predicted − true share of the CD14 class (points), {m}, clean, data sets with a CD14 class; relative over-prediction {}",
                rel_mean.map_or("–".into(), |v| format!("{v:+.0}%"))
            ),
        ));
    }
    for m in [
        "seurat",
        "logistic",
        "knn",
        "scgpt",
        "geneformer",
        "scmamba2",
    ] {
        out.push(summarize(
            &format!("{} misclassifies rare cell types (recall, rare − common)", pretty(m)),
            None,
            -f64::NAN,
            &values(records, m, rare_minus_common),
            format!("mean recall on classes under {:.0}% of the reference − mean recall on the others (points), {m}, clean; the abstract gives no size", 100.0 * RARE_SHARE),
        ));
    }
    out
}

/// Display name of a method.
pub fn pretty(method: &str) -> &str {
    match method {
        "seurat" => "Seurat",
        "logistic" => "LogReg",
        "knn" => "kNN",
        "scgpt" => "scGPT",
        "geneformer" => "Geneformer",
        "scmamba2" => "SC-MAMBA2",
        "scgpt-tuned" => "scGPT (tuned)",
        "geneformer-tuned" => "Geneformer (tuned)",
        "scmamba2-tuned" => "SC-MAMBA2 (tuned)",
        other => other,
    }
}

#[cfg(test)]
pub(crate) mod tests;
