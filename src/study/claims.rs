//! The study's claims, evaluated on our grid: paired differences between methods (same
//! data set, seed and noise condition), their mean with a 95% t-interval, and a verdict.

use crate::eval::summarize_over_seeds;
use crate::study::runner::RunRecord;
use serde::Serialize;

/// One claim of the study next to what we measured.
#[derive(Debug, Clone, Serialize)]
pub struct ClaimResult {
    /// The claim as the abstract states it.
    pub claim: String,
    /// The published effect in percentage points.
    pub published_pp: f64,
    /// Our mean effect in percentage points (`None` when the grid lacks the methods).
    pub measured_pp: Option<f64>,
    /// 95% CI of our effect (t-interval over paired units).
    pub ci95_pp: Option<(f64, f64)>,
    /// Number of paired units (data set × seed [× class]).
    pub n: usize,
    /// reproduced / not reproduced / opposite / not evaluated.
    pub verdict: String,
    /// What was compared.
    pub detail: String,
}

fn verdict(published: f64, ci: Option<(f64, f64)>, n: usize) -> String {
    match ci {
        None => "not evaluated".into(),
        Some(_) if n < 2 => "not evaluated (one unit: no interval)".into(),
        Some((lo, hi)) => {
            if (published > 0.0 && lo > 0.0) || (published < 0.0 && hi < 0.0) {
                "reproduced (direction)".into()
            } else if (published > 0.0 && hi < 0.0) || (published < 0.0 && lo > 0.0) {
                "opposite".into()
            } else {
                "not reproduced (interval includes 0)".into()
            }
        }
    }
}

fn is_clean(r: &RunRecord) -> bool {
    r.noise.fraction == 0.0 || r.noise.sigma == 0.0
}

/// Paired differences `f(a) - f(b)` over records of methods `a` and `b` that share data
/// set, seed and noise condition and pass `keep`.
fn paired(
    records: &[RunRecord],
    a: &str,
    b: &str,
    keep: impl Fn(&RunRecord) -> bool,
    f: impl Fn(&RunRecord) -> Option<f64>,
) -> Vec<f64> {
    let mut out = Vec::new();
    for ra in records.iter().filter(|r| r.method == a && keep(r)) {
        if let Some(rb) = records.iter().find(|r| {
            r.method == b
                && r.dataset == ra.dataset
                && r.seed == ra.seed
                && r.noise == ra.noise
                && keep(r)
        }) {
            if let (Some(x), Some(y)) = (f(ra), f(rb)) {
                out.push(x - y);
            }
        }
    }
    out
}

fn summarize(claim: &str, published: f64, diffs: &[f64], detail: String) -> ClaimResult {
    if diffs.is_empty() {
        return ClaimResult {
            claim: claim.into(),
            published_pp: published,
            measured_pp: None,
            ci95_pp: None,
            n: 0,
            verdict: verdict(published, None, 0),
            detail,
        };
    }
    let Ok(s) = summarize_over_seeds(diffs) else {
        return ClaimResult {
            claim: claim.into(),
            published_pp: published,
            measured_pp: None,
            ci95_pp: None,
            n: diffs.len(),
            verdict: "not evaluated (non-finite values)".into(),
            detail,
        };
    };
    let ci = if s.n > 1 { Some(s.ci95) } else { None };
    ClaimResult {
        claim: claim.into(),
        published_pp: published,
        measured_pp: Some(s.mean),
        ci95_pp: ci,
        n: s.n,
        verdict: if s.n < 2 {
            "not evaluated (one unit: no interval)".into()
        } else {
            verdict(published, ci, s.n)
        },
        detail,
    }
}

/// Accuracy drop (clean − noisy, in points) of `method` at noise fraction `fraction`,
/// paired by data set and seed. One sigma only, so conditions are not mixed: σ = 1 (the
/// default) when the grid has it, else the smallest sigma at that fraction.
fn drops(records: &[RunRecord], method: &str, fraction: f64) -> Vec<f64> {
    let at_fraction = |r: &&RunRecord| {
        r.method == method && (r.noise.fraction - fraction).abs() < 1e-9 && r.noise.sigma > 0.0
    };
    let sigmas: Vec<f64> = records
        .iter()
        .filter(at_fraction)
        .map(|r| r.noise.sigma)
        .collect();
    let sigma = match sigmas.iter().copied().find(|&s| s == 1.0) {
        Some(s) => s,
        None => match sigmas.iter().copied().reduce(f64::min) {
            Some(s) => s,
            None => return Vec::new(),
        },
    };
    let mut out = Vec::new();
    for noisy in records
        .iter()
        .filter(at_fraction)
        .filter(|r| r.noise.sigma == sigma)
    {
        if let Some(clean) = records.iter().find(|r| {
            r.method == method && r.dataset == noisy.dataset && r.seed == noisy.seed && is_clean(r)
        }) {
            out.push(100.0 * (clean.report.accuracy - noisy.report.accuracy));
        }
    }
    out
}

/// The CD14-like class share shift (predicted − true, points) of a record, if the data
/// set has a class whose name contains "CD14".
fn cd14_shift(r: &RunRecord) -> Option<f64> {
    r.report
        .per_class
        .iter()
        .find(|c| c.class.to_uppercase().contains("CD14"))
        .map(|c| c.share_shift_pp)
}

/// Evaluate every claim of the abstract on the records.
pub fn evaluate_claims(records: &[RunRecord]) -> Vec<ClaimResult> {
    let acc = |r: &RunRecord| Some(100.0 * r.report.accuracy);
    let f1 = |r: &RunRecord| Some(100.0 * r.report.macro_f1);
    let mut out = Vec::new();
    out.push(summarize(
        "Seurat beats Geneformer by ~9% accuracy",
        9.0,
        &paired(records, "seurat", "geneformer", is_clean, acc),
        "accuracy(seurat) − accuracy(geneformer), clean, paired by data set and seed".into(),
    ));
    for other in ["scgpt", "scmamba2"] {
        out.push(summarize(
            &format!("Geneformer beats {} by ~5% accuracy", pretty(other)),
            5.0,
            &paired(records, "geneformer", other, is_clean, acc),
            format!("accuracy(geneformer) − accuracy({other}), clean"),
        ));
    }
    for (m, published) in [("scgpt", 11.0), ("scmamba2", 11.0), ("geneformer", 8.0)] {
        out.push(summarize(
            &format!("20% noisy cells cost {} ~{published}% accuracy", pretty(m)),
            published,
            &drops(records, m, 0.2),
            format!("accuracy(clean) − accuracy(20% of cells noisy), {m}"),
        ));
    }
    let binned_minus_rank: Vec<f64> = {
        let g = drops(records, "geneformer", 0.2);
        let s = drops(records, "scgpt", 0.2);
        s.iter().zip(&g).map(|(a, b)| a - b).collect()
    };
    out.push(summarize(
        "Noise hurts binned scGPT more than rank-encoded Geneformer (~3 points)",
        3.0,
        &binned_minus_rank,
        "drop(scgpt) − drop(geneformer) at 20% noisy cells, paired by data set and seed".into(),
    ));
    for (m, published) in [("scgpt", 16.0), ("geneformer", 6.0)] {
        let shifts: Vec<f64> = records
            .iter()
            .filter(|r| r.method == m && is_clean(r))
            .filter_map(cd14_shift)
            .collect();
        out.push(summarize(
            &format!("{} over-predicts CD14 monocytes by ~{published}%", pretty(m)),
            published,
            &shifts,
            format!("predicted − true share of the CD14 class (points), {m}, clean, data sets with a CD14 class"),
        ));
    }
    for other in ["scgpt", "scmamba2"] {
        out.push(summarize(
            &format!("Geneformer beats {} by ~26% macro F1", pretty(other)),
            26.0,
            &paired(records, "geneformer", other, is_clean, f1),
            format!("macro F1(geneformer) − macro F1({other}), clean"),
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
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The verdict follows the sign of the interval relative to the published direction.
    #[test]
    fn verdicts() {
        assert_eq!(verdict(9.0, Some((1.0, 3.0)), 4), "reproduced (direction)");
        assert_eq!(verdict(9.0, Some((-3.0, -1.0)), 4), "opposite");
        assert_eq!(
            verdict(9.0, Some((-1.0, 3.0)), 4),
            "not reproduced (interval includes 0)"
        );
        assert_eq!(verdict(9.0, None, 0), "not evaluated");
    }
}
