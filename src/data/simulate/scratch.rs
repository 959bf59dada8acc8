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

fn centroid_acc(ds: &Dataset) -> (f64, f64) {
    let labels = ds.labels("cell_type").unwrap();
    let side = ds.labels("batch").unwrap();
    let k = labels.classes.len();
    let g = ds.n_vars();
    let lognorm = |r: usize| -> Vec<f64> {
        let (idx, val) = ds.x.row(r);
        let tot: f64 = val.iter().map(|&v| v as f64).sum::<f64>().max(1.0);
        let mut out = vec![0.0; g];
        for (&c, &v) in idx.iter().zip(val) { out[c as usize] = (v as f64 / tot * 1e4).ln_1p(); }
        out
    };
    let mut cent = vec![vec![0.0; g]; k];
    let mut cnt = vec![0usize; k];
    for r in 0..ds.n_obs() {
        if side.name(r) != Some("reference") { continue; }
        let c = labels.codes[r].unwrap();
        for (a, b) in cent[c].iter_mut().zip(lognorm(r)) { *a += b; }
        cnt[c] += 1;
    }
    for c in 0..k { for a in cent[c].iter_mut() { *a /= cnt[c].max(1) as f64; } }
    let (mut ok, mut n, mut ok_ref, mut n_ref) = (0, 0, 0, 0);
    for r in 0..ds.n_obs() {
        let x = lognorm(r);
        let best = (0..k).filter(|&c| cnt[c] > 0).min_by(|&a, &b| {
            let da: f64 = cent[a].iter().zip(&x).map(|(p, q)| (p - q).powi(2)).sum();
            let db: f64 = cent[b].iter().zip(&x).map(|(p, q)| (p - q).powi(2)).sum();
            da.total_cmp(&db)
        }).unwrap();
        let hit = (labels.codes[r] == Some(best)) as usize;
        if side.name(r) == Some("reference") { ok_ref += hit; n_ref += 1; } else { ok += hit; n += 1; }
    }
    (ok as f64 / n as f64, ok_ref as f64 / n_ref as f64)
}

#[test]
fn scratch_separation() {
    for p in Profile::ALL {
        let t = std::time::Instant::now();
        let ds = simulate(&SimulateOptions::new(p)).unwrap();
        eprintln!("{p}: {:?} {}x{} {:?}", t.elapsed(), ds.n_obs(), ds.n_vars(), calibration::summarize_counts(&ds.x));
        let (q, r) = centroid_acc(&ds);
        eprintln!("{p}: nearest-centroid query acc {q:.3}, reference (resubstitution) {r:.3}");
    }
}
