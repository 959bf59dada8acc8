//! Results on disk: the combined `results.csv`, and `REPORT.md` with the summary table,
//! the noise table, the claims next to our measurements, the figures and provenance.

use crate::error::Result;
use crate::eval::summarize_over_seeds;
use crate::study::claims::{evaluate_claims, pretty, ClaimResult};
use crate::study::config::NoiseCondition;
use crate::study::runner::RunRecord;
use crate::study::write_atomic;
use std::fmt::Write as _;
use std::path::Path;

/// Columns of `results.csv`, one row per grid cell.
pub const CSV_HEADER: &str = "dataset,method,seed,noise_fraction,noise_sigma,noise_target,perturb_zeros,n_reference,n_query,accuracy,accuracy_ci_low,accuracy_ci_high,macro_f1,macro_f1_ci_low,macro_f1_ci_high,weighted_f1,n_params,gate,seconds,key";

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The combined CSV text.
pub fn results_csv(records: &[RunRecord]) -> String {
    let mut s = String::from(CSV_HEADER);
    s.push('\n');
    for r in records {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{:?},{},{},{},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{},{},{:.3},{}",
            csv_field(&r.dataset),
            r.method,
            r.seed,
            r.noise.fraction,
            r.noise.sigma,
            r.noise.target,
            r.noise.perturb_zeros,
            r.n_reference,
            r.n_query,
            r.report.accuracy,
            r.accuracy_ci.0,
            r.accuracy_ci.1,
            r.report.macro_f1,
            r.macro_f1_ci.0,
            r.macro_f1_ci.1,
            r.report.weighted_f1,
            r.n_params.map(|n| n.to_string()).unwrap_or_default(),
            match r.gate_passed {
                Some(true) => "passed",
                Some(false) => "undertrained",
                None => "",
            },
            r.seconds,
            r.key
        )
        .map_err(|_| ());
    }
    s
}

/// Mean over seeds with a 95% CI; for one seed, the bootstrap CI over query cells.
fn cell(values: &[(f64, (f64, f64))]) -> String {
    match values.len() {
        0 => "–".into(),
        1 => format!(
            "{:.3} [{:.3}, {:.3}]ᵇ",
            values[0].0, values[0].1 .0, values[0].1 .1
        ),
        _ => {
            let v: Vec<f64> = values.iter().map(|x| x.0).collect();
            match summarize_over_seeds(&v) {
                Ok(s) => format!(
                    "{:.3} ± {:.3} [{:.3}, {:.3}]",
                    s.mean, s.sd, s.ci95.0, s.ci95.1
                ),
                Err(_) => "–".into(),
            }
        }
    }
}

fn datasets(records: &[RunRecord]) -> Vec<String> {
    let mut d: Vec<String> = Vec::new();
    for r in records {
        if !d.contains(&r.dataset) {
            d.push(r.dataset.clone());
        }
    }
    d
}

fn methods(records: &[RunRecord]) -> Vec<String> {
    let mut d: Vec<String> = Vec::new();
    for r in records {
        if !d.contains(&r.method) {
            d.push(r.method.clone());
        }
    }
    d
}

/// Everything REPORT.md needs besides the records.
pub struct ReportContext<'a> {
    pub profile_name: &'a str,
    pub command: &'a str,
    pub config_hash: &'a str,
    pub notes: &'a [String],
    pub figures: &'a [String],
    pub seconds_total: f64,
    pub n_computed: usize,
}

/// What this run's scale can judge, said first: seeds are the unit of replication, so a
/// run with one seed per data set is a demonstration whose claims get no verdict, and fits
/// that fail the competence gate are not evidence.
fn scale_section(s: &mut String, records: &[RunRecord]) {
    let mut datasets: Vec<&str> = records.iter().map(|r| r.dataset.as_str()).collect();
    datasets.sort_unstable();
    datasets.dedup();
    let mut seeds: Vec<u64> = records.iter().map(|r| r.seed).collect();
    seeds.sort_unstable();
    seeds.dedup();
    let neural: Vec<&RunRecord> = records.iter().filter(|r| r.gate.is_some()).collect();
    let passed = neural
        .iter()
        .filter(|r| r.gate_passed == Some(true))
        .count();
    let scale = if seeds.len() < 2 {
        "**Demonstration scale.** With one seed there is no replication: every claim below is \
         reported with its point estimate but gets no interval and no verdict. The `standard` \
         profile (5 seeds, 2 draws of each simulated data set, 4 real tasks) is the one that \
         can judge the claims."
    } else if seeds.len() < 5 || datasets.len() < 4 {
        "**Demonstration scale.** Fewer than 5 seeds or 4 data sets: the intervals below show \
         seed-to-seed spread, but rest on too few seeds and data sets to judge the claims, and \
         the verdicts are indicative only. The `standard` profile (5 seeds, 2 draws of each \
         simulated data set, 4 real tasks) is the one that can judge them."
    } else {
        "**Claim scale.** At least 5 seeds and 4 data sets: intervals and verdicts below are the \
         run's answer to each claim."
    };
    let _ = writeln!(
        s,
        "{scale} This run: {} seed(s), {} data set(s); {passed} of {} neural grid cells come from fits that \
         passed the competence gate (only those count as evidence).\n",
        seeds.len(),
        datasets.len(),
        neural.len()
    );
}

/// The Markdown report.
pub fn report_markdown(records: &[RunRecord], ctx: &ReportContext) -> String {
    let mut s = String::new();
    header_section(&mut s, records, ctx);
    clean_section(&mut s, records);
    noise_section(&mut s, records);
    gate_section(&mut s, records);
    tune_section(&mut s, records);
    claims_section(&mut s, records);
    figures_section(&mut s, ctx);
    s
}

/// Title, what the report reproduces, the scale verdict, provenance (command, config hash,
/// code version, wall time) and the data notes.
fn header_section(s: &mut String, records: &[RunRecord], ctx: &ReportContext) {
    let _ = writeln!(s, "# scrobust report: profile `{}`\n", ctx.profile_name);
    let _ = writeln!(
        s,
        "Reproduction of \"Fundamental Limitations of Foundation Models in Single-Cell Transcriptomics\" \
         (bioRxiv 10.1101/2025.06.26.661767) on the data sets below. Every number is measured by this run \
         or read from its cache (`runs/`, keyed by a hash of config, data and code version).\n"
    );
    scale_section(s, records);
    let _ = writeln!(s, "- command: `{}`", ctx.command);
    let _ = writeln!(s, "- config hash: `{}`", ctx.config_hash);
    let _ = writeln!(
        s,
        "- scrobust {} (cache version `{}`)",
        env!("CARGO_PKG_VERSION"),
        crate::study::runner::CODE_VERSION
    );
    let _ = writeln!(
        s,
        "- wall time of this run: {:.1} s ({} grid cells computed, {} from cache)\n",
        ctx.seconds_total,
        ctx.n_computed,
        records.len().saturating_sub(ctx.n_computed)
    );
    if !ctx.notes.is_empty() {
        let _ = writeln!(s, "## Data\n");
        for n in ctx.notes {
            let _ = writeln!(s, "- {n}");
        }
        s.push('\n');
    }
}

/// The clean table: one row per (data set, method) over its noise-free grid cells.
fn clean_section(s: &mut String, records: &[RunRecord]) {
    let _ = writeln!(s, "## Clean accuracy and macro F1\n");
    let _ = writeln!(s, "Mean ± sd over seeds with a 95% t-interval; `ᵇ` marks a single seed, shown with its bootstrap 95% CI over query cells.\n");
    let _ = writeln!(
        s,
        "| data set | method | accuracy | macro F1 | parameters | seconds |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for d in datasets(records) {
        for m in methods(records) {
            clean_row(s, records, &d, &m);
        }
    }
    s.push('\n');
}

/// One row of the clean table; nothing when the pair has no clean grid cell.
fn clean_row(s: &mut String, records: &[RunRecord], d: &str, m: &str) {
    let rs: Vec<&RunRecord> = records
        .iter()
        .filter(|r| {
            r.dataset == d && r.method == m && (r.noise.fraction == 0.0 || r.noise.sigma == 0.0)
        })
        .collect();
    if rs.is_empty() {
        return;
    }
    let acc: Vec<(f64, (f64, f64))> = rs
        .iter()
        .map(|r| (r.report.accuracy, r.accuracy_ci))
        .collect();
    let f1: Vec<(f64, (f64, f64))> = rs
        .iter()
        .map(|r| (r.report.macro_f1, r.macro_f1_ci))
        .collect();
    let secs = rs.iter().map(|r| r.seconds).sum::<f64>() / rs.len() as f64;
    let params = rs[0]
        .n_params
        .map(|n| n.to_string())
        .unwrap_or_else(|| "–".into());
    let _ = writeln!(
        s,
        "| {d} | {} | {} | {} | {params} | {secs:.1} |",
        pretty(m),
        cell(&acc),
        cell(&f1)
    );
}

/// The noise table: one row per (data set, method, noise condition), in the order the
/// conditions first appear; absent when the run has no noisy grid cell.
fn noise_section(s: &mut String, records: &[RunRecord]) {
    let noisy: Vec<&RunRecord> = records
        .iter()
        .filter(|r| r.noise.fraction > 0.0 && r.noise.sigma > 0.0)
        .collect();
    if noisy.is_empty() {
        return;
    }
    let _ = writeln!(s, "## Accuracy under Gaussian noise\n");
    let _ = writeln!(s, "Noise N(0, σ²) on log1p(CP10k) values of a random fraction of cells, before tokenization (see README: noise model).\n");
    let _ = writeln!(s, "| data set | method | fraction | σ | target | zeros perturbed | accuracy | drop vs clean (points) |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for d in datasets(records) {
        for m in methods(records) {
            let mut conds: Vec<_> = noisy
                .iter()
                .filter(|r| r.dataset == d && r.method == m)
                .map(|r| r.noise)
                .collect();
            conds.dedup();
            let mut seen = Vec::new();
            for c in conds {
                if seen.contains(&c) {
                    continue;
                }
                seen.push(c);
                noise_row(s, records, &d, &m, c);
            }
        }
    }
    s.push('\n');
}

/// One row of the noise table: accuracy under condition `c`, and the drop from the clean
/// grid cell of the same seed, summarised over seeds.
fn noise_row(s: &mut String, records: &[RunRecord], d: &str, m: &str, c: NoiseCondition) {
    let acc: Vec<(f64, (f64, f64))> = records
        .iter()
        .filter(|r| r.dataset == d && r.method == m && r.noise == c)
        .map(|r| (r.report.accuracy, r.accuracy_ci))
        .collect();
    let drops: Vec<f64> = records
        .iter()
        .filter(|r| r.dataset == d && r.method == m && r.noise == c)
        .filter_map(|r| {
            records
                .iter()
                .find(|x| {
                    x.dataset == d
                        && x.method == m
                        && x.seed == r.seed
                        && (x.noise.fraction == 0.0 || x.noise.sigma == 0.0)
                })
                .map(|x| 100.0 * (x.report.accuracy - r.report.accuracy))
        })
        .collect();
    let drop = if drops.is_empty() {
        "–".to_string()
    } else {
        match summarize_over_seeds(&drops) {
            Ok(sm) if sm.n > 1 => {
                format!("{:.1} [{:.1}, {:.1}]", sm.mean, sm.ci95.0, sm.ci95.1)
            }
            Ok(sm) => format!("{:.1}", sm.mean),
            Err(_) => "–".into(),
        }
    };
    let _ = writeln!(
        s,
        "| {d} | {} | {} | {} | {:?} | {} | {} | {drop} |",
        pretty(m),
        c.fraction,
        c.sigma,
        c.target,
        c.perturb_zeros,
        cell(&acc)
    );
}

/// Every figure with its caption; absent when no figure was drawn.
fn figures_section(s: &mut String, ctx: &ReportContext) {
    if !ctx.figures.is_empty() {
        let _ = writeln!(s, "## Figures\n");
        for f in ctx.figures {
            let _ = writeln!(s, "![{f}]({f})\n\n*{}*\n", figure_caption(f));
        }
    }
}

/// The competence gate of every clean neural fit: its reference-validation scores next to
/// logistic regression's on the same cells. Failing fits are "undertrained" and left out.
fn gate_section(s: &mut String, records: &[RunRecord]) {
    let fits: Vec<&RunRecord> = records
        .iter()
        .filter(|r| r.gate.is_some() && r.noise.is_clean())
        .collect();
    if fits.is_empty() {
        return;
    }
    let _ = writeln!(s, "## Competence gate (neural fits, clean reference)\n");
    let _ = writeln!(s, "A fit counts as evidence only when its reference-validation accuracy is within 3 points, and its macro F1 within 5, of L1 logistic regression trained and scored on the same reference cells. Failing fits are marked undertrained and left out of every claim.\n");
    let _ = writeln!(s, "| data set | method | seed | val accuracy | LR val accuracy | val macro F1 | LR val macro F1 | best step | verdict |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    for r in fits {
        let Some(g) = &r.gate else { continue };
        let best = r
            .learning_curve
            .iter()
            .filter(|c| c.val_loss.is_some())
            .min_by(|a, b| {
                a.val_loss
                    .partial_cmp(&b.val_loss)
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
            .map_or("–".into(), |c| c.step.to_string());
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {} | {} |",
            r.dataset,
            pretty(&r.method),
            r.seed,
            g.model.accuracy,
            g.logistic.accuracy,
            g.model.macro_f1,
            g.logistic.macro_f1,
            best,
            if g.passed { "passed" } else { "undertrained" }
        );
    }
    s.push('\n');
}

/// What a figure shows and what its error bars are, by its file name.
fn figure_caption(path: &str) -> String {
    let stem = std::path::Path::new(path)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let bars = "Bars and points: mean over seeds; whiskers: 95% t-interval over seeds, or the bootstrap 95% CI over query cells when there is one seed.";
    match stem.split('_').next().unwrap_or("") {
        "fig1" => format!("Clean accuracy and macro F1 per data set and method. {bars}"),
        "fig2" => format!("Accuracy against the fraction of noisy cells, one figure per noise protocol; the subtitle gives the protocol and the σ held fixed. {bars}"),
        "fig2b" => format!("Accuracy against the noise σ, one figure per noise protocol; the subtitle gives the protocol and the fraction held fixed. {bars}"),
        "fig3" => "Predicted minus true share of each class (percentage points), clean query, mean over seeds.".into(),
        "fig4" => "Row-normalised confusion matrices on the first data set, first seed, clean query.".into(),
        "fig5" => "Token probe: query accuracy of L1 logistic regression fitted on the reference's raw values, binned tokens and rank positions, clean and with every query cell perturbed; Kendall τ between each perturbed cell's clean and noisy tokens. One fit each, no interval.".into(),
        "fig6" => format!("Clean accuracy against trainable parameters (measured), colour = model, marker = data set. {bars}"),
        "fig7" => "Fine-tuning learning curves (first seed, clean reference): reference-validation loss (thick) and training loss (thin).".into(),
        "fig8" => "Forest plot of the claims (clean, and noise at 20% of query cells, σ 1, zeros perturbed), signed so that positive is the claim's direction: pooled effect with its cluster-bootstrap 95% interval (black), each data set's mean with its t-interval over seeds (colours), published value (diamond).".into(),
        _ => String::new(),
    }
}

/// The tuned arm: the setting each fit chose on reference-validation loss, out of the grid.
fn tune_section(s: &mut String, records: &[RunRecord]) {
    let fits: Vec<&RunRecord> = records
        .iter()
        .filter(|r| r.tune.is_some() && r.noise.is_clean())
        .collect();
    if fits.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "## Tuned arm: settings chosen on reference validation
"
    );
    let _ = writeln!(s, "For each data set and model, every learning rate × pretraining setting of the grid was fitted on the clean reference with the study's first seed and the same split, and the one with the lowest reference-validation loss was kept for every seed and noise condition (with `per_fit = true` in `[tune]`, each fit is tuned on its own reference); query cells never entered the choice. The validation scores below are those of the choice.\n");
    let _ = writeln!(s, "| data set | method | seed | chosen lr | pretraining | val loss | val accuracy | candidates (lr, pretrain: val loss) |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    let num = |v: Option<f64>| v.map_or("–".into(), |x| format!("{x:.3}"));
    for r in fits {
        let Some(t) = &r.tune else { continue };
        let chosen = t.candidates.iter().find(|c| c.candidate == t.chosen);
        let all: Vec<String> = t
            .candidates
            .iter()
            .map(|c| {
                let on = if c.candidate.pretrain { "on" } else { "off" };
                format!("{:.0e}, {on}: {}", c.candidate.lr, num(c.val_loss))
            })
            .collect();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.0e} | {} | {} | {} | {} |",
            r.dataset,
            pretty(&r.method),
            r.seed,
            t.chosen.lr,
            if t.chosen.pretrain { "on" } else { "off" },
            num(chosen.and_then(|c| c.val_loss)),
            num(chosen.and_then(|c| c.val_accuracy)),
            all.join("; ")
        );
    }
    s.push('\n');
}

/// The claims table: pooled effect with its cluster-bootstrap interval, the magnitude
/// checks, the verdict; per-data-set means below; exclusions counted.
fn claims_section(s: &mut String, records: &[RunRecord]) {
    let claims = evaluate_claims(records);
    let _ = writeln!(s, "## The study's claims next to our measurements\n");
    let _ = writeln!(s, "Effects in percentage points. Units are seeds, paired within a data set (same data set, seed and noise condition). \"pooled\" is the mean of the data sets' means; its 95% interval is a cluster bootstrap (data sets resampled, then seeds within them; {} resamples, seeded). \"inconclusive\": the interval includes 0; \"not reproduced\": it includes 0 and excludes the published effect; \"opposite\": it excludes 0 on the other side. \"has published\" / \">half\": the interval contains the published value / lies beyond half of it. Published magnitudes come from other data and model scales.\n", 4000);
    let excluded = crate::study::claims::exclusions(records);
    if excluded.is_empty() {
        let _ = writeln!(
            s,
            "No fit was left out (none failed the competence gate or collapsed onto one class).\n"
        );
    } else {
        let list: Vec<String> = excluded
            .iter()
            .map(|(why, n)| format!("{n} {why}"))
            .collect();
        let _ = writeln!(
            s,
            "Left out of every claim: {} (of {} records).\n",
            list.join(", "),
            records.len()
        );
    }
    let _ = writeln!(s, "| claim | noise protocol | published | pooled | 95% CI | seeds × data sets | has published | >half | verdict |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
    for c in &claims {
        let yn = |b: Option<bool>| b.map_or("–", |b| if b { "yes" } else { "no" });
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} × {} | {} | {} | {} |",
            c.claim,
            c.protocol.as_deref().unwrap_or("clean"),
            if c.published_pp.is_nan() {
                "direction".to_string()
            } else {
                format!("{:+.0}", c.published_pp)
            },
            fmt_opt(c.measured_pp),
            fmt_ci(c.ci95_pp),
            c.n,
            c.n_datasets,
            yn(c.contains_published),
            yn(c.excludes_half),
            c.verdict
        );
    }
    s.push('\n');
    for c in &claims {
        let per: Vec<String> = c
            .per_dataset
            .iter()
            .map(|d| {
                format!(
                    "{} {:+.1} {} (n {})",
                    d.dataset,
                    d.mean,
                    fmt_ci(d.ci95),
                    d.n
                )
            })
            .collect();
        let _ = writeln!(
            s,
            "- *{}*{}: {}. Per data set (t-interval over seeds): {}",
            c.claim,
            c.protocol
                .as_deref()
                .map_or(String::new(), |p| format!(" ({p})")),
            c.detail,
            if per.is_empty() {
                "–".into()
            } else {
                per.join("; ")
            }
        );
    }
    s.push('\n');
}

fn fmt_opt(x: Option<f64>) -> String {
    x.map(|v| format!("{v:+.1}")).unwrap_or_else(|| "–".into())
}

fn fmt_ci(x: Option<(f64, f64)>) -> String {
    x.map(|(a, b)| format!("[{a:+.1}, {b:+.1}]"))
        .unwrap_or_else(|| "–".into())
}

/// The claims, for JSON output.
pub fn claims_json(records: &[RunRecord]) -> Vec<ClaimResult> {
    evaluate_claims(records)
}

/// Write `results.csv` and `REPORT.md` into `out`.
pub fn write_outputs(records: &[RunRecord], ctx: &ReportContext, out: &Path) -> Result<()> {
    write_atomic(&out.join("results.csv"), results_csv(records).as_bytes())?;
    write_atomic(
        &out.join("REPORT.md"),
        report_markdown(records, ctx).as_bytes(),
    )?;
    Ok(())
}
