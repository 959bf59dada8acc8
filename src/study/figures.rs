//! The six figures of a study, drawn from its records (PNG + SVG under `figures/`).

use crate::data::ValueKind;
use crate::error::Result;
use crate::eval::summarize_over_seeds;
use crate::perturb::GaussianNoise;
use crate::perturb::Perturbed;
use crate::plot::{
    accuracy_bars, confusion_heatmaps, noise_curves, params_vs_accuracy, prediction_shift,
    tokenizer_info, FigurePaths, MethodScore, NoiseAxis, NoisePoint, ParamPoint, ShiftRow,
    TokenInfoRow,
};
use crate::plot::{claims_forest, learning_curves, CurveRow, ForestRow};
use crate::study::claims::{evaluate_claims, pretty, protocol_label, protocol_name};
use crate::study::config::{NoiseCondition, NoiseTarget, StudyConfig};
use crate::study::runner::{RunRecord, StudyOutput};
use crate::study::tasks::Task;
use crate::tokenize::info::{noise_info, InfoTokenizer};
use crate::tokenize::probe::token_probe;
use crate::tokenize::rank::rank_encoding_input;
use crate::tokenize::{BinningTokenizer, RankTokenizerParams};
use std::path::Path;

fn clean(r: &RunRecord) -> bool {
    r.noise.fraction == 0.0 || r.noise.sigma == 0.0
}

/// Mean and 95% interval of values over seeds; for one value, its bootstrap interval.
/// Scores live in [0, 1], so whiskers are drawn clipped to it (the report gives the raw
/// t-interval, which with few seeds can exceed it).
fn mean_ci(values: &[(f64, (f64, f64))]) -> Option<(f64, f64, f64)> {
    let (mean, lo, hi) = match values.len() {
        0 => return None,
        1 => (values[0].0, values[0].1 .0, values[0].1 .1),
        _ => {
            let v: Vec<f64> = values.iter().map(|x| x.0).collect();
            let s = summarize_over_seeds(&v).ok()?;
            (s.mean, s.ci95.0, s.ci95.1)
        }
    };
    Some((mean, lo.clamp(0.0, 1.0), hi.clamp(0.0, 1.0)))
}

/// The clean-condition records of one data set and method (all seeds).
fn clean_runs<'a>(recs: &'a [RunRecord], dataset: &str, method: &str) -> Vec<&'a RunRecord> {
    recs.iter()
        .filter(|r| r.dataset == dataset && r.method == method && clean(r))
        .collect()
}

fn unique<'a>(it: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in it {
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    out
}

/// Draw every figure the records support; returns paths of the PNGs relative to `out`.
pub fn draw_all(cfg: &StudyConfig, output: &StudyOutput, out: &Path) -> Result<Vec<String>> {
    let dir = out.join("figures");
    let recs = &output.records;
    let mut written: Vec<FigurePaths> = Vec::new();
    if recs.is_empty() {
        return Ok(Vec::new());
    }
    written.extend(figure_accuracy(recs, &dir)?);
    written.extend(figure_noise(recs, &dir)?);
    written.extend(figure_shift(recs, &dir)?);
    written.extend(figure_confusion(recs, cfg.seeds[0], &dir)?);
    if cfg.tokenizer_info {
        if let Some(task) = &output.first_task {
            let sigma = cfg
                .perturbations
                .first()
                .and_then(|p| p.sigmas.first().copied())
                .unwrap_or(1.0);
            written.push(figure_tokenizer(task, sigma, cfg.seeds[0], &dir)?);
        }
    }
    written.extend(figure_params(recs, &dir)?);
    written.extend(figure_learning_curves(recs, cfg.seeds[0], &dir)?);
    written.extend(figure_forest(recs, &dir)?);
    Ok(written
        .iter()
        .map(|p| {
            p.png
                .strip_prefix(out)
                .unwrap_or(&p.png)
                .to_string_lossy()
                .into_owned()
        })
        .collect())
}

/// Figure 1: clean accuracy and macro F1 per method per data set, with CI whiskers.
pub fn figure_accuracy(recs: &[RunRecord], dir: &Path) -> Result<Option<FigurePaths>> {
    let datasets = unique(recs.iter().map(|r| r.dataset.as_str()));
    let methods = unique(recs.iter().map(|r| r.method.as_str()));
    let mut scores = Vec::new();
    for d in &datasets {
        for m in &methods {
            let rs = clean_runs(recs, d, m);
            for (metric, vals) in [
                (
                    "accuracy",
                    rs.iter()
                        .map(|r| (r.report.accuracy, r.accuracy_ci))
                        .collect::<Vec<_>>(),
                ),
                (
                    "macro_f1",
                    rs.iter()
                        .map(|r| (r.report.macro_f1, r.macro_f1_ci))
                        .collect::<Vec<_>>(),
                ),
            ] {
                if let Some((mean, lo, hi)) = mean_ci(&vals) {
                    scores.push(MethodScore {
                        dataset: d.clone(),
                        method: pretty(m).into(),
                        metric: metric.into(),
                        mean,
                        ci_low: lo,
                        ci_high: hi,
                    });
                }
            }
        }
    }
    if scores.is_empty() {
        return Ok(None);
    }
    accuracy_bars(&scores, &dir.join("fig1_accuracy_macro_f1")).map(Some)
}

/// Figure 2, one pair per noise protocol (side × zero handling): accuracy against the
/// fraction of noisy cells at the protocol's most swept σ (preferring 1), and against σ at
/// its most swept fraction (preferring 0.2). Each figure says what it holds fixed.
pub fn figure_noise(recs: &[RunRecord], dir: &Path) -> Result<Vec<FigurePaths>> {
    let mut written = Vec::new();
    let protocols = unique_protocols(recs);
    for (k, &(target, zeros)) in protocols.iter().enumerate() {
        let of_protocol: Vec<&RunRecord> = recs
            .iter()
            .filter(|r| !clean(r) && r.noise.target == target && r.noise.perturb_zeros == zeros)
            .collect();
        let suffix = if k == 0 {
            String::new()
        } else {
            format!("_{}", protocol_slug(target, zeros))
        };
        let sigma = swept_value(&of_protocol, |r| r.noise.sigma, |r| r.noise.fraction, 1.0);
        let fraction = swept_value(&of_protocol, |r| r.noise.fraction, |r| r.noise.sigma, 0.2);
        let side = format!("noise: {}", protocol_label(target, zeros));
        for (axis, stem, held) in [
            (
                NoiseAxis::Fraction,
                format!("fig2_accuracy_vs_noise_fraction{suffix}"),
                format!("{side}; σ {sigma} held fixed"),
            ),
            (
                NoiseAxis::Sigma,
                format!("fig2b_accuracy_vs_sigma{suffix}"),
                format!("{side}; {:.0}% of cells held fixed", 100.0 * fraction),
            ),
        ] {
            let keep = |r: &RunRecord| match axis {
                NoiseAxis::Fraction => r.noise.sigma == sigma,
                NoiseAxis::Sigma => r.noise.fraction == fraction,
            };
            let points = sweep_points(recs, &of_protocol, axis, keep, (fraction, sigma));
            let distinct = unique_f64(points.iter().map(|p| match axis {
                NoiseAxis::Fraction => p.noise_fraction,
                NoiseAxis::Sigma => p.sigma,
            }));
            if distinct.len() >= 2 {
                let caption = format!("Accuracy (mean over seeds, 95% interval); {held}");
                written.push(noise_curves(&points, axis, &caption, &dir.join(stem))?);
            }
        }
    }
    Ok(written)
}

/// The noise protocols of the records, query-only with zeros perturbed first (the study's).
fn unique_protocols(recs: &[RunRecord]) -> Vec<(NoiseTarget, bool)> {
    let mut out: Vec<(NoiseTarget, bool)> = Vec::new();
    for r in recs.iter().filter(|r| !clean(r)) {
        let p = (r.noise.target, r.noise.perturb_zeros);
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out.sort_by_key(|&(t, z)| (t != NoiseTarget::Query, !z));
    out
}

fn protocol_slug(target: NoiseTarget, zeros: bool) -> String {
    let side = match target {
        NoiseTarget::Query => "query",
        NoiseTarget::Reference => "reference",
        NoiseTarget::Both => "both",
    };
    format!("{side}_zeros_{}", if zeros { "perturbed" } else { "kept" })
}

/// The value of `held` (e.g. σ) at which `swept` (e.g. the fraction) takes the most
/// distinct values; ties go to `prefer`, then to the first seen.
fn swept_value(
    recs: &[&RunRecord],
    held: impl Fn(&RunRecord) -> f64,
    swept: impl Fn(&RunRecord) -> f64,
    prefer: f64,
) -> f64 {
    let candidates = unique_f64(recs.iter().map(|r| held(r)));
    let breadth = |h: f64| {
        unique_f64(recs.iter().filter(|r| held(r) == h).map(|r| swept(r))).len() * 2
            + usize::from(h == prefer)
    };
    candidates
        .into_iter()
        .max_by(|a, b| {
            breadth(*a)
                .cmp(&breadth(*b))
                .then(std::cmp::Ordering::Greater)
        })
        .unwrap_or(prefer)
}

/// A score and its interval.
type Scored = (f64, (f64, f64));

/// One sweep's points: the clean condition at x = 0 and every kept noisy condition, per
/// data set and method, as the mean over seeds with its interval.
fn sweep_points(
    recs: &[RunRecord],
    noisy: &[&RunRecord],
    axis: NoiseAxis,
    keep: impl Fn(&RunRecord) -> bool,
    (fraction, sigma): (f64, f64),
) -> Vec<NoisePoint> {
    let datasets = unique(recs.iter().map(|r| r.dataset.as_str()));
    let methods = unique(recs.iter().map(|r| r.method.as_str()));
    let mut points = Vec::new();
    for d in &datasets {
        for m in &methods {
            let mine = |r: &RunRecord| &r.dataset == d && &r.method == m;
            let mut groups: Vec<(NoiseCondition, Vec<Scored>)> = Vec::new();
            for r in noisy.iter().filter(|r| mine(r) && keep(r)) {
                let v = (r.report.accuracy, r.accuracy_ci);
                match groups.iter_mut().find(|g| g.0 == r.noise) {
                    Some(g) => g.1.push(v),
                    None => groups.push((r.noise, vec![v])),
                }
            }
            if groups.is_empty() {
                continue;
            }
            let clean_vals: Vec<Scored> = recs
                .iter()
                .filter(|r| mine(r) && clean(r))
                .map(|r| (r.report.accuracy, r.accuracy_ci))
                .collect();
            let (f0, s0) = match axis {
                NoiseAxis::Fraction => (0.0, sigma),
                NoiseAxis::Sigma => (fraction, 0.0),
            };
            let clean_point = (f0, s0, clean_vals);
            let noisy_points = groups
                .into_iter()
                .map(|(c, vals)| (c.fraction, c.sigma, vals));
            for (f, s, vals) in std::iter::once(clean_point).chain(noisy_points) {
                if let Some((mean, lo, hi)) = mean_ci(&vals) {
                    points.push(NoisePoint {
                        dataset: d.clone(),
                        method: pretty(m).into(),
                        noise_fraction: f,
                        sigma: s,
                        mean,
                        ci_low: lo,
                        ci_high: hi,
                    });
                }
            }
        }
    }
    points
}

/// Figure 3: predicted − true share per class and method (clean, mean over seeds).
pub fn figure_shift(recs: &[RunRecord], dir: &Path) -> Result<Option<FigurePaths>> {
    let datasets = unique(recs.iter().map(|r| r.dataset.as_str()));
    let methods = unique(recs.iter().map(|r| r.method.as_str()));
    let mut shifts = Vec::new();
    for d in &datasets {
        for m in &methods {
            let rs = clean_runs(recs, d, m);
            if let Some(first) = rs.first() {
                for (k, c) in first.report.per_class.iter().enumerate() {
                    let mean = rs
                        .iter()
                        .filter_map(|r| r.report.per_class.get(k))
                        .map(|x| x.share_shift_pp)
                        .sum::<f64>()
                        / rs.len() as f64;
                    shifts.push(ShiftRow {
                        dataset: d.clone(),
                        method: pretty(m).into(),
                        class: c.class.clone(),
                        shift_pp: mean,
                    });
                }
            }
        }
    }
    if shifts.is_empty() {
        return Ok(None);
    }
    prediction_shift(&shifts, &dir.join("fig3_prediction_shift")).map(Some)
}

/// Figure 4: row-normalised confusion matrices of every method on the first data set
/// (seed `seed0`, clean).
pub fn figure_confusion(recs: &[RunRecord], seed0: u64, dir: &Path) -> Result<Option<FigurePaths>> {
    let datasets = unique(recs.iter().map(|r| r.dataset.as_str()));
    let methods = unique(recs.iter().map(|r| r.method.as_str()));
    if datasets.is_empty() {
        return Ok(None);
    }
    let mats: Vec<(String, crate::eval::ConfusionMatrix)> = methods
        .iter()
        .filter_map(|m| {
            recs.iter()
                .find(|r| r.dataset == datasets[0] && &r.method == m && r.seed == seed0 && clean(r))
                .map(|r| {
                    let title = format!("{} ({}, seed {seed0})", pretty(m), r.dataset);
                    (title, r.report.confusion.clone())
                })
        })
        .collect();
    if mats.is_empty() {
        return Ok(None);
    }
    confusion_heatmaps(&mats, &dir.join("fig4_confusion")).map(Some)
}

/// Figure 5: the token probe on `task` (logistic regression on raw values, on binned
/// tokens and on rank positions, fitted on the reference, scored on the query clean and
/// with every query cell perturbed by N(0, σ²), zeros included), and how much of each
/// cell's token order survives that noise (Kendall τ of clean vs noisy tokens).
pub fn figure_tokenizer(task: &Task, sigma: f64, seed: u64, dir: &Path) -> Result<FigurePaths> {
    let noise = GaussianNoise::new(1.0, sigma);
    let (noisy_query, perturbed_cells) = noise.apply_dataset(&task.query, seed)?;
    let probe = token_probe(
        &task.reference,
        &task.reference_labels,
        &[&task.query, &noisy_query],
        &task.query_truth,
        seed,
    )?;
    let noisy = Perturbed {
        x: noisy_query.x.clone(),
        perturbed_cells,
    };
    let taus = token_taus(task, &noisy, &noise, seed)?;
    let mut rows = Vec::new();
    for (cond, scores) in ["clean", "noisy"].iter().zip(&probe) {
        for s in scores {
            let tau = taus
                .iter()
                .find(|t| t.0 == s.view && *cond == "noisy")
                .map(|t| t.1);
            rows.push(TokenInfoRow {
                tokenizer: s.view.clone(),
                condition: cond.to_string(),
                probe_accuracy: s.accuracy,
                tau_vs_clean: tau,
            });
        }
    }
    let title = format!("{} (σ {sigma})", task.name);
    tokenizer_info(&rows, &title, &dir.join("fig5_tokenizer_information"))
}

/// Kendall τ between the query's clean tokens and those of `noisy` (the same query after
/// `noise`, drawn once by the caller), per tokenizer. Rank encoding runs on count-like
/// values with medians fitted on the reference.
fn token_taus(
    task: &Task,
    noisy: &Perturbed,
    noise: &GaussianNoise,
    seed: u64,
) -> Result<Vec<(&'static str, f64)>> {
    let (x, kind) = (&task.query.x, task.query.value_kind);
    let binning = BinningTokenizer::default();
    let rank_clean = rank_encoding_input(x, kind);
    let rank_noisy = Perturbed {
        x: rank_encoding_input(&noisy.x, kind),
        perturbed_cells: noisy.perturbed_cells.clone(),
    };
    let reference = rank_encoding_input(&task.reference.x, task.reference.value_kind);
    let rank = RankTokenizerParams::default().fit(&reference)?;
    let binned = noise_info(
        x,
        noisy,
        kind,
        InfoTokenizer::Binning(&binning),
        noise,
        seed,
    )?;
    let ranked = noise_info(
        &rank_clean,
        &rank_noisy,
        ValueKind::Counts,
        InfoTokenizer::Rank(&rank),
        noise,
        seed,
    )?;
    Ok(vec![
        ("binning", binned.kendall_tau),
        ("rank", ranked.kendall_tau),
    ])
}

/// Figure 6: parameters vs clean accuracy of the neural models, per data set.
pub fn figure_params(recs: &[RunRecord], dir: &Path) -> Result<Option<FigurePaths>> {
    let datasets = unique(recs.iter().map(|r| r.dataset.as_str()));
    let methods = unique(recs.iter().map(|r| r.method.as_str()));
    let mut pts = Vec::new();
    for d in &datasets {
        for m in &methods {
            let rs: Vec<&RunRecord> = recs
                .iter()
                .filter(|r| &r.dataset == d && &r.method == m && clean(r) && r.n_params.is_some())
                .collect();
            let vals: Vec<(f64, (f64, f64))> = rs
                .iter()
                .map(|r| (r.report.accuracy, r.accuracy_ci))
                .collect();
            if let (Some(first), Some((mean, lo, hi))) = (rs.first(), mean_ci(&vals)) {
                pts.push(ParamPoint {
                    model: pretty(m).into(),
                    dataset: d.clone(),
                    n_params: first.n_params.unwrap_or(0) as f64,
                    accuracy: mean,
                    ci_low: lo,
                    ci_high: hi,
                });
            }
        }
    }
    if pts.is_empty() {
        return Ok(None);
    }
    params_vs_accuracy(&pts, &dir.join("fig6_params_vs_accuracy")).map(Some)
}

fn unique_f64(it: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut out: Vec<f64> = Vec::new();
    for x in it {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

/// Figure 7: the neural fits' learning curves (first seed, clean reference), one panel per
/// data set.
pub fn figure_learning_curves(
    recs: &[RunRecord],
    seed0: u64,
    dir: &Path,
) -> Result<Option<FigurePaths>> {
    let mut rows = Vec::new();
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for r in recs.iter().filter(|r| r.seed == seed0 && clean(r)) {
        if seen.contains(&(r.dataset.as_str(), r.method.as_str())) {
            continue;
        }
        seen.push((&r.dataset, &r.method));
        for p in &r.learning_curve {
            if let Some(v) = p.val_loss.filter(|v| v.is_finite()) {
                if p.train_loss.is_finite() {
                    rows.push(CurveRow {
                        panel: r.dataset.clone(),
                        method: pretty(&r.method).into(),
                        step: p.step as f64,
                        train_loss: p.train_loss,
                        val_loss: v,
                    });
                }
            }
        }
    }
    if rows.is_empty() {
        return Ok(None);
    }
    learning_curves(&rows, &dir.join("fig7_learning_curves")).map(Some)
}

/// Figure 8: forest plot of the clean claims and of the noise claims at the headline
/// protocol (20% of query cells, σ 1, zeros perturbed), pooled and per data set, signed so
/// that positive is the claim's direction, with the published value.
pub fn figure_forest(recs: &[RunRecord], dir: &Path) -> Result<Option<FigurePaths>> {
    let headline = NoiseCondition {
        fraction: 0.2,
        sigma: 1.0,
        target: NoiseTarget::Query,
        perturb_zeros: true,
    };
    let headline = protocol_name(&headline);
    let mut rows = Vec::new();
    for c in evaluate_claims(recs) {
        if c.protocol.as_ref().is_some_and(|p| p != &headline) {
            continue;
        }
        let Some(mean) = c.measured_pp else { continue };
        let sign = if c.published_pp.is_sign_negative() {
            -1.0
        } else {
            1.0
        };
        let label = match &c.protocol {
            Some(p) => format!("{} ({p})", c.claim),
            None => c.claim.clone(),
        };
        let (lo, hi) = c.ci95_pp.unwrap_or((f64::NAN, f64::NAN));
        let signed = |a: f64, b: f64| if sign > 0.0 { (a, b) } else { (-b, -a) };
        let (lo, hi) = signed(lo, hi);
        rows.push(ForestRow {
            claim: label.clone(),
            dataset: None,
            mean: sign * mean,
            ci_low: lo,
            ci_high: hi,
            published: c.published_pp.abs(),
        });
        for d in &c.per_dataset {
            let (lo, hi) = d.ci95.unwrap_or((f64::NAN, f64::NAN));
            let (lo, hi) = signed(lo, hi);
            rows.push(ForestRow {
                claim: label.clone(),
                dataset: Some(d.dataset.clone()),
                mean: sign * d.mean,
                ci_low: lo,
                ci_high: hi,
                published: c.published_pp.abs(),
            });
        }
    }
    if rows.is_empty() {
        return Ok(None);
    }
    claims_forest(&rows, &dir.join("fig8_claims_forest")).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::claims::tests::record as claim_record;

    fn record(method: &str, seed: u64, noise: NoiseCondition, acc: f64) -> RunRecord {
        claim_record("d1", method, seed, noise, acc, false)
    }

    /// Four protocols share fraction 0.2 and σ 1: each gets its own figures (they used to
    /// collide as two points at one x and fail the report), the query-only protocol keeps
    /// the plain file names, and a protocol with one condition draws no sweep.
    #[test]
    fn noise_figures_per_protocol() {
        let cond = |fraction, sigma, target, perturb_zeros| NoiseCondition {
            fraction,
            sigma,
            target,
            perturb_zeros,
        };
        let mut recs = Vec::new();
        for seed in 0..3 {
            recs.push(record("knn", seed, NoiseCondition::clean(), 0.9));
            for f in [0.1, 0.2, 0.4] {
                recs.push(record(
                    "knn",
                    seed,
                    cond(f, 1.0, NoiseTarget::Query, true),
                    0.8,
                ));
            }
            recs.push(record(
                "knn",
                seed,
                cond(0.2, 2.0, NoiseTarget::Query, true),
                0.7,
            ));
            recs.push(record(
                "knn",
                seed,
                cond(0.2, 1.0, NoiseTarget::Both, true),
                0.85,
            ));
            recs.push(record(
                "knn",
                seed,
                cond(0.2, 1.0, NoiseTarget::Both, false),
                0.86,
            ));
            recs.push(record(
                "knn",
                seed,
                cond(0.2, 1.0, NoiseTarget::Query, false),
                0.87,
            ));
        }
        let dir = tempfile::tempdir().unwrap();
        let written = figure_noise(&recs, dir.path()).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.png.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(names.contains(&"fig2_accuracy_vs_noise_fraction.png".to_string()));
        assert!(names.contains(&"fig2b_accuracy_vs_sigma.png".to_string()));
        // Each other protocol has clean + one condition: a two-point fraction sweep.
        for slug in [
            "both_zeros_perturbed",
            "both_zeros_kept",
            "query_zeros_kept",
        ] {
            let f = format!("fig2_accuracy_vs_noise_fraction_{slug}.png");
            assert!(names.contains(&f), "{f} missing from {names:?}");
        }
        assert_eq!(names.len(), 2 + 3 * 2);
    }
}
