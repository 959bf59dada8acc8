use super::*;
fn load(k: &str) -> CsrMatrix {
    let rd = |e: &str| std::fs::read(format!("/tmp/simdump/{k}.{e}")).unwrap();
    let sh: Vec<u64> = rd("shape").chunks(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect();
    let ip: Vec<usize> = rd("indptr").chunks(8).map(|c| u64::from_le_bytes(c.try_into().unwrap()) as usize).collect();
    let ix: Vec<u32> = rd("indices").chunks(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect();
    let dt: Vec<f32> = rd("data").chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    CsrMatrix::new(sh[0] as usize, sh[1] as usize, ip, ix, dt, k).unwrap()
}
#[test]
fn scratch_fit() {
    for (k, file) in [("kang", "muscat_kang_pbmc.h5ad"), ("cbmc", "scdcc_cite_cbmc_top2000.h5ad")] {
        let m = load(k);
        let t = std::time::Instant::now();
        let p = estimate_params_named(&m, file).unwrap();
        eprintln!("{k} fit {:?}\n{}", t.elapsed(), p.to_toml_string().unwrap());
        let t = std::time::Instant::now();
        let s = simulate_counts(&p, m.n_rows(), m.n_cols(), 1).unwrap();
        eprintln!("sim {:?}", t.elapsed());
        eprintln!("real {:?}\nsim  {:?}", calibration::summarize_counts(&m), calibration::summarize_counts(&s));
        let edges = calibration::log_mean_bin_edges(&m, 10);
        let a = calibration::mean_variance_trend(&m, &edges, 5);
        let b = calibration::mean_variance_trend(&s, &edges, 5);
        for i in 0..10 { eprintln!("bin {i} {:.2} real {:?} sim {:?}", edges[i], a[i], b[i]); }
        let p2 = estimate_params(&s).unwrap();
        eprintln!("refit {}", p2.to_toml_string().unwrap());
    }
}
