//! Calibration of the simulator against the real raw-count data its shipped parameters
//! were fitted on (`muscat_kang_pbmc.h5ad`, `scdcc_cite_cbmc_top2000.h5ad` from the
//! shared data folder).
//!
//! For each file: estimate parameters, check they equal the embedded
//! `data/params/*.toml` (so the shipped files are what `--fit` produces), simulate the
//! same number of cells and genes (seed 1) and compare:
//! - mean library size within 10% of the real one;
//! - zero fraction within 0.05 (absolute);
//! - mean–variance trend: genes binned into 10 equal-count bins of real log mean, the
//!   median log variance per bin compared between real and simulated; the median over
//!   bins of the absolute difference must be ≤ 0.5 (natural log, i.e. within a factor
//!   1.65). For Kang every bin must also be within 0.5. CBMC mixes human and mouse
//!   cells with very different depths, so its highest-mean genes are far more variable
//!   than any single gamma–Poisson population can be (measured: bins 1–5 within 0.32,
//!   bins 6–10 off by 0.6–2.0); that part is reported, not asserted.

use scrobust::data::h5ad::{read_h5ad, ReadOptions};
use scrobust::data::simulate::calibration::{
    log_mean_bin_edges, mean_variance_trend, summarize_counts,
};
use scrobust::data::simulate::{estimate_params_named, simulate_counts, SimParams};
use scrobust::data::ValueKind;

mod common;
use common::data_dir;

fn assert_params_close(fitted: &SimParams, embedded: &SimParams) {
    let pairs = [
        ("mean_shape", fitted.mean_shape, embedded.mean_shape),
        ("mean_rate", fitted.mean_rate, embedded.mean_rate),
        ("out_prob", fitted.out_prob, embedded.out_prob),
        ("lib_loc", fitted.lib_loc, embedded.lib_loc),
        ("lib_scale", fitted.lib_scale, embedded.lib_scale),
        ("bcv_common", fitted.bcv_common, embedded.bcv_common),
        (
            "bcv_mean_term",
            fitted.bcv_mean_term,
            embedded.bcv_mean_term,
        ),
        ("bcv_df", fitted.bcv_df, embedded.bcv_df),
        ("dropout_mid", fitted.dropout_mid, embedded.dropout_mid),
    ];
    for (name, a, b) in pairs {
        assert!(
            (a - b).abs() <= 1e-6 * (1.0 + b.abs()),
            "{name}: fitted {a} but embedded {b}"
        );
    }
}

fn check(file: &str, embedded: SimParams, strict_trend: bool) {
    let path = data_dir().join(file);
    let opts = ReadOptions {
        use_raw: false,
        value_kind: Some(ValueKind::Counts),
    };
    let real = read_h5ad(&path, &opts).unwrap_or_else(|e| panic!("{e}"));
    let params = estimate_params_named(&real.x, file).unwrap();
    assert_params_close(&params, &embedded);

    let sim = simulate_counts(&params, real.n_obs(), real.n_vars(), 1).unwrap();
    let (r, s) = (summarize_counts(&real.x), summarize_counts(&sim));
    eprintln!("{file}: real {r:?}\n{file}: sim  {s:?}");
    let lib_error = (s.mean_library - r.mean_library).abs() / r.mean_library;
    assert!(
        lib_error <= 0.10,
        "{file}: mean library {} vs real {}",
        s.mean_library,
        r.mean_library
    );
    assert!(
        (s.zero_fraction - r.zero_fraction).abs() <= 0.05,
        "{file}: zero fraction {} vs real {}",
        s.zero_fraction,
        r.zero_fraction
    );

    let edges = log_mean_bin_edges(&real.x, 10);
    let real_trend = mean_variance_trend(&real.x, &edges, 5);
    let sim_trend = mean_variance_trend(&sim, &edges, 5);
    let mut diffs: Vec<f64> = Vec::new();
    for (i, (a, b)) in real_trend.iter().zip(&sim_trend).enumerate() {
        eprintln!("{file}: bin {i} median log var real {a:?} sim {b:?}");
        if let (Some(a), Some(b)) = (a, b) {
            diffs.push((a - b).abs());
        }
    }
    assert!(
        diffs.len() >= 8,
        "{file}: only {} comparable bins",
        diffs.len()
    );
    let mut sorted = diffs.clone();
    sorted.sort_by(f64::total_cmp);
    let median = 0.5 * (sorted[(sorted.len() - 1) / 2] + sorted[sorted.len() / 2]);
    assert!(
        median <= 0.5,
        "{file}: median |Δ log var| {median} over bins {diffs:?}"
    );
    if strict_trend {
        assert!(
            diffs.iter().all(|&d| d <= 0.5),
            "{file}: a bin differs by more than 0.5: {diffs:?}"
        );
    }
}

/// Kang PBMC: library, zero fraction and the whole mean–variance trend are reproduced.
#[test]
fn kang_pbmc_calibration() {
    check(
        "muscat_kang_pbmc.h5ad",
        SimParams::kang_pbmc().unwrap(),
        true,
    );
}

/// CBMC: library and zero fraction are reproduced, the trend in the median over bins.
#[test]
fn cbmc_calibration() {
    check(
        "scdcc_cite_cbmc_top2000.h5ad",
        SimParams::cbmc().unwrap(),
        false,
    );
}
