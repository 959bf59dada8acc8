//! `evaluate_claims` on synthetic records with known answers.

use super::*;
use crate::eval::evaluate;

/// A record of `method` on `dataset` with `seed` under `noise`, of accuracy `acc` on 100
/// cells of two classes (A 60, B 40); `collapse` predicts A for every cell instead. Shared
/// with the figure tests.
pub(crate) fn record(
    dataset: &str,
    method: &str,
    seed: u64,
    noise: NoiseCondition,
    acc: f64,
    collapse: bool,
) -> RunRecord {
    let truth: Vec<String> = (0..100)
        .map(|i| if i < 60 { "A" } else { "B" }.to_string())
        .collect();
    let wrong = ((1.0 - acc) * 100.0).round() as usize;
    let pred: Vec<String> = truth
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if collapse {
                "A".to_string()
            } else if i < wrong {
                if t == "A" { "B" } else { "A" }.to_string()
            } else {
                t.clone()
            }
        })
        .collect();
    RunRecord {
        key: format!("{dataset}-{method}-{seed}"),
        dataset: dataset.into(),
        method: method.into(),
        seed,
        noise,
        n_reference: 100,
        n_query: 100,
        report: evaluate(&truth, &pred, &["A", "B"]).unwrap(),
        accuracy_ci: (0.0, 1.0),
        macro_f1_ci: (0.0, 1.0),
        n_params: None,
        seconds: 0.0,
        reference_counts: vec![("A".into(), 60), ("B".into(), 40)],
        gate_passed: None,
        gate: None,
        learning_curve: Vec::new(),
        tune: None,
    }
}

fn claim<'a>(rows: &'a [ClaimResult], prefix: &str) -> &'a ClaimResult {
    rows.iter()
        .find(|c| c.claim.starts_with(prefix))
        .unwrap_or_else(|| panic!("no claim '{prefix}'"))
}

/// Seurat 9 points above Geneformer (±2 over seeds) on two data sets: reproduced, with the
/// published 9 inside the interval; 10 below: opposite; ±10 around +4: inconclusive.
#[test]
fn verdicts_on_known_answers() {
    let clean = NoiseCondition::clean();
    let mut recs = Vec::new();
    for d in ["d1", "d2"] {
        for seed in 0..5u64 {
            let jitter = (seed as f64 - 2.0) * 0.01;
            recs.push(record(d, "seurat", seed, clean, 0.89 + jitter, false));
            recs.push(record(d, "geneformer", seed, clean, 0.80, false));
            recs.push(record(d, "scgpt", seed, clean, 0.90 + jitter, false));
            // Geneformer − SC-MAMBA2: +12, −8, +12, −8, +12 (mean +4, wide).
            let other = if seed % 2 == 0 { 0.68 } else { 0.88 };
            recs.push(record(d, "scmamba2", seed, clean, other, false));
        }
    }
    let rows = evaluate_claims(&recs);
    let sg = claim(&rows, "Seurat beats Geneformer");
    assert_eq!(sg.n, 10);
    assert_eq!(sg.n_datasets, 2);
    assert!((sg.measured_pp.unwrap() - 9.0).abs() < 1e-6);
    assert_eq!(sg.verdict, "reproduced", "{sg:?}");
    assert_eq!(sg.contains_published, Some(true));
    let gs = claim(&rows, "Geneformer beats scGPT in accuracy");
    assert_eq!(gs.verdict, "opposite", "{gs:?}");
    let gm = claim(&rows, "Geneformer beats SC-MAMBA2 in accuracy");
    assert!(gm.verdict.starts_with("inconclusive"), "{gm:?}");
    assert_eq!(gm.per_dataset.len(), 2);
}

/// A collapsed fit is excluded (and counted); with one seed there is no interval.
#[test]
fn collapsed_runs_are_excluded_and_one_seed_is_not_evaluated() {
    let clean = NoiseCondition::clean();
    let mut recs = vec![
        record("d1", "seurat", 0, clean, 0.9, false),
        record("d1", "geneformer", 0, clean, 0.6, true),
        record("d1", "seurat", 1, clean, 0.9, false),
        record("d1", "geneformer", 1, clean, 0.8, false),
    ];
    let rows = evaluate_claims(&recs);
    let sg = claim(&rows, "Seurat beats Geneformer");
    assert_eq!(sg.n, 1, "the collapsed seed-0 fit must not be paired");
    assert!(sg.verdict.starts_with("not evaluated"), "{sg:?}");
    assert_eq!(
        exclusions(&recs),
        vec![(
            "collapsed (one class for nearly every query cell)".to_string(),
            1
        )]
    );
    recs[3].gate_passed = Some(false);
    assert_eq!(
        claim(&evaluate_claims(&recs), "Seurat beats Geneformer").n,
        0
    );
}

/// Noise drops are keyed by protocol: a query-only and a both-sides condition give
/// separate rows, each pairing the noisy record with the clean one of its seed.
#[test]
fn noise_drops_are_keyed_by_protocol() {
    let clean = NoiseCondition::clean();
    let q = NoiseCondition {
        fraction: 0.2,
        sigma: 1.0,
        target: NoiseTarget::Query,
        perturb_zeros: true,
    };
    let b = NoiseCondition {
        target: NoiseTarget::Both,
        perturb_zeros: false,
        ..q
    };
    let mut recs = Vec::new();
    for seed in 0..3u64 {
        let j = seed as f64 * 0.01;
        for m in ["scgpt", "geneformer"] {
            recs.push(record("d1", m, seed, clean, 0.9, false));
        }
        recs.push(record("d1", "scgpt", seed, q, 0.80 - j, false));
        recs.push(record("d1", "geneformer", seed, q, 0.85 - j, false));
        recs.push(record("d1", "scgpt", seed, b, 0.88, false));
        recs.push(record("d1", "geneformer", seed, b, 0.88, false));
    }
    let rows = evaluate_claims(&recs);
    let noisy: Vec<&ClaimResult> = rows
        .iter()
        .filter(|c| c.claim.starts_with("20% noisy cells cost scGPT"))
        .collect();
    assert_eq!(noisy.len(), 2);
    let query = noisy
        .iter()
        .find(|c| {
            c.protocol
                .as_deref()
                .is_some_and(|p| p.starts_with("query only"))
        })
        .unwrap();
    assert!(
        (query.measured_pp.unwrap() - 11.0).abs() < 1e-6,
        "{query:?}"
    );
    let both = noisy
        .iter()
        .find(|c| {
            c.protocol
                .as_deref()
                .is_some_and(|p| p.starts_with("both sides, zeros kept"))
        })
        .unwrap();
    assert!((both.measured_pp.unwrap() - 2.0).abs() < 1e-6, "{both:?}");
    let diff = rows
        .iter()
        .find(|c| c.claim.starts_with("Noise hurts") && c.protocol == query.protocol)
        .unwrap();
    assert!((diff.measured_pp.unwrap() - 5.0).abs() < 1e-6, "{diff:?}");
}

/// The verdict words: an interval around 0 that still holds the published value is
/// inconclusive; one that excludes it is "not reproduced"; direction-only claims.
#[test]
fn verdict_words() {
    assert_eq!(verdict(9.0, Some((5.0, 12.0))), "reproduced");
    assert_eq!(
        verdict(9.0, Some((1.0, 3.0))),
        "direction reproduced, smaller than published"
    );
    assert_eq!(
        verdict(9.0, Some((-1.0, 12.0))),
        "inconclusive (interval includes 0)"
    );
    assert_eq!(
        verdict(9.0, Some((-1.0, 3.0))),
        "not reproduced (interval excludes the published effect)"
    );
    assert_eq!(verdict(9.0, Some((-3.0, -1.0))), "opposite");
    assert_eq!(verdict(-f64::NAN, Some((-3.0, -1.0))), "reproduced");
    assert_eq!(verdict(-f64::NAN, Some((1.0, 3.0))), "opposite");
    assert!(verdict(9.0, None).starts_with("not evaluated"));
}

/// The tuned arm is judged on its own records against the same baselines: Seurat 9 points
/// above the identical-arm Geneformer, 2 below the tuned one.
#[test]
fn tuned_arm_gets_its_own_rows() {
    let clean = NoiseCondition::clean();
    let mut recs = Vec::new();
    for d in ["d1", "d2"] {
        for seed in 0..5u64 {
            let jitter = 0.01 * (seed as f64 - 2.0);
            recs.push(record(d, "seurat", seed, clean, 0.85 + jitter, false));
            recs.push(record(d, "geneformer", seed, clean, 0.76, false));
            recs.push(record(d, "geneformer-tuned", seed, clean, 0.87, false));
        }
    }
    let rows = evaluate_claims(&recs);
    let identical = claim(&rows, "Seurat beats Geneformer");
    let tuned = claim(&rows, "[tuned arm] Seurat beats Geneformer");
    assert!((identical.measured_pp.unwrap() - 9.0).abs() < 1e-9);
    assert!((tuned.measured_pp.unwrap() + 2.0).abs() < 1e-9);
    assert_eq!(tuned.verdict, "opposite");
    // Without tuned records there are no tuned rows.
    let plain: Vec<RunRecord> = recs
        .into_iter()
        .filter(|r| !r.method.ends_with("-tuned"))
        .collect();
    assert!(evaluate_claims(&plain)
        .iter()
        .all(|c| !c.claim.starts_with("[tuned arm]")));
}
