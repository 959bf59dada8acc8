//! Unit tests of the profile simulator (small sizes; the calibration against real data
//! is `tests/simulate_calibration.rs`).

use super::*;

fn small(profile: Profile, n_cells: usize, n_genes: usize, seed: u64) -> Dataset {
    simulate(&SimulateOptions {
        profile,
        n_cells: Some(n_cells),
        n_genes,
        seed,
    })
    .unwrap()
}

fn shares(ds: &Dataset, key: &str) -> std::collections::HashMap<String, f64> {
    let labels = ds.labels(key).unwrap();
    let n = labels.len() as f64;
    labels
        .classes
        .iter()
        .cloned()
        .zip(labels.counts().iter().map(|&c| c as f64 / n))
        .collect()
}

/// The same seed gives an identical data set; another seed gives different counts.
#[test]
fn deterministic_per_seed() {
    let a = small(Profile::MyeloidLike, 300, 150, 5);
    let b = small(Profile::MyeloidLike, 300, 150, 5);
    let c = small(Profile::MyeloidLike, 300, 150, 6);
    assert_eq!(a.x, b.x);
    assert_eq!(a.obs, b.obs);
    assert_ne!(a.x, c.x);
}

/// `--cells` and `--genes` set the shape; ids are unique; gene names are GENE0001...;
/// the obs columns exist and the values are raw counts.
#[test]
fn shapes_names_and_counts() {
    for profile in Profile::ALL {
        let ds = small(profile, 400, 120, 1);
        assert_eq!((ds.n_obs(), ds.n_vars()), (400, 120));
        let mut ids = ds.cell_ids.clone();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 400);
        assert_eq!(ds.gene_names[0], "GENE0001");
        assert_eq!(ds.gene_names[119], "GENE0120");
        for key in ["cell_type", "batch", profile.origin_column()] {
            assert!(
                matches!(ds.column(key).unwrap(), Column::Categorical { .. }),
                "{key}"
            );
        }
        assert_eq!(ds.value_kind, ValueKind::Counts);
        assert!(ds.x.data().iter().all(|&v| v > 0.0 && v.fract() == 0.0));
        assert!(ds.validate_values().is_ok());
    }
}

/// Myeloid-like: CD14_Mono holds 25–30% of cells, the rare classes stay under 1%, every
/// class is within 1.5 points of its target share in the reference, and the classes
/// absent from the query have no query cell.
#[test]
fn myeloid_class_proportions() {
    let spec = Profile::MyeloidLike.spec();
    for seed in 0..3 {
        let ds = small(Profile::MyeloidLike, 3000, 50, seed);
        let overall = shares(&ds, "cell_type");
        let cd14 = overall["CD14_Mono"];
        assert!(
            (0.25..=0.30).contains(&cd14),
            "seed {seed}: CD14_Mono share {cd14}"
        );
        let split = ds.labels("batch").unwrap();
        let labels = ds.labels("cell_type").unwrap();
        let reference: Vec<usize> = (0..ds.n_obs())
            .filter(|&i| split.name(i) == Some("reference"))
            .collect();
        let ref_shares = shares(&ds.select_cells(&reference), "cell_type");
        for class in &spec.classes {
            if class.share < 0.01 {
                assert!(
                    overall[class.name] < 0.01,
                    "seed {seed}: {} at {}",
                    class.name,
                    overall[class.name]
                );
            }
            let got = ref_shares.get(class.name).copied().unwrap_or(0.0);
            assert!(
                (got - class.share).abs() < 0.015,
                "seed {seed}: {} {got} vs {}",
                class.name,
                class.share
            );
            if !class.in_query {
                let in_query = (0..ds.n_obs())
                    .any(|i| split.name(i) == Some("query") && labels.name(i) == Some(class.name));
                assert!(!in_query, "{} should be absent from the query", class.name);
            }
        }
        let n_rare = spec.classes.iter().filter(|c| c.share < 0.01).count();
        assert!(n_rare >= 3, "only {n_rare} rare classes");
    }
}

/// `batch` is `reference` or `query`; reference cells come only from reference origins
/// and query cells only from query origins, in the profile's proportion.
#[test]
fn batches_follow_split() {
    for profile in Profile::ALL {
        let ds = small(profile, 1000, 40, 2);
        let batch = ds.labels(profile.origin_column()).unwrap();
        let split = ds.labels("batch").unwrap();
        let mut n_ref = 0;
        for i in 0..ds.n_obs() {
            let b = batch.name(i).unwrap();
            match split.name(i) {
                Some("reference") => {
                    n_ref += 1;
                    assert!(profile.reference_origins().contains(&b), "{b}");
                }
                Some("query") => assert!(profile.query_origins().contains(&b), "{b}"),
                other => panic!("unexpected batch {other:?}"),
            }
        }
        let expected = (1000.0 * profile.spec().reference_fraction).round() as usize;
        assert_eq!(n_ref, expected);
    }
}

/// Pancreas-like has the 14 study classes, all present in a moderate sample.
#[test]
fn pancreas_has_all_classes() {
    let ds = small(Profile::PancreasLike, 2000, 40, 0);
    let labels = ds.labels("cell_type").unwrap();
    assert_eq!(labels.classes.len(), 14);
    assert!(labels.classes.iter().any(|c| c == "MHC class II"));
}

/// Bad sizes and parameters give errors, not panics.
#[test]
fn rejects_bad_options() {
    let mut opts = SimulateOptions::new(Profile::PancreasLike);
    opts.n_cells = Some(1);
    assert!(simulate(&opts).unwrap_err().to_string().contains("cells"));
    opts.n_cells = Some(10);
    opts.n_genes = 0;
    assert!(simulate(&opts).is_err());
    let mut p = SimParams::cbmc().unwrap();
    p.bcv_df = -1.0;
    assert!(simulate_counts(&p, 10, 10, 0).is_err());
}

/// Largest-remainder allocation sums to n and gives each positive share a cell.
#[test]
fn largest_remainder_allocation() {
    let counts = largest_remainder(&[0.9, 0.05, 0.03, 0.02, 0.0], 100);
    assert_eq!(counts.iter().sum::<usize>(), 100);
    assert_eq!(counts, vec![90, 5, 3, 2, 0]);
    let counts = largest_remainder(&[0.97, 0.01, 0.01, 0.01], 20);
    assert_eq!(counts.iter().sum::<usize>(), 20);
    assert!(counts[1..].iter().all(|&c| c == 1));
}

/// Splatter's factor rule: unselected genes get 1, selected genes a factor != 1, and
/// with down-probability 0 every factor is >= 1.
#[test]
fn lnorm_factor_rule() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let f = lnorm_factors(2000, 0.1, 0.0, 0.5, 0.4, &mut rng).unwrap();
    let selected = f.iter().filter(|&&x| x != 1.0).count();
    assert!((150..250).contains(&selected), "{selected}");
    assert!(f.iter().all(|&x| x >= 1.0));
}

/// Reference→query accuracy of a nearest-centroid classifier on log1p(CP10k).
fn nearest_centroid_query_accuracy(ds: &Dataset) -> f64 {
    let labels = ds.labels("cell_type").unwrap();
    let side = ds.labels("batch").unwrap();
    let (k, g) = (labels.classes.len(), ds.n_vars());
    let lognorm = |r: usize| -> Vec<f64> {
        let (idx, val) = ds.x.row(r);
        let total: f64 = val.iter().map(|&v| v as f64).sum::<f64>().max(1.0);
        let mut out = vec![0.0; g];
        for (&c, &v) in idx.iter().zip(val) {
            out[c as usize] = (v as f64 / total * 1e4).ln_1p();
        }
        out
    };
    let mut centroids = vec![vec![0.0; g]; k];
    let mut counts = vec![0usize; k];
    for r in (0..ds.n_obs()).filter(|&r| side.name(r) == Some("reference")) {
        let c = labels.codes[r].unwrap();
        centroids[c]
            .iter_mut()
            .zip(lognorm(r))
            .for_each(|(a, b)| *a += b);
        counts[c] += 1;
    }
    for (cent, &n) in centroids.iter_mut().zip(&counts) {
        cent.iter_mut().for_each(|a| *a /= n.max(1) as f64);
    }
    let query: Vec<usize> = (0..ds.n_obs())
        .filter(|&r| side.name(r) == Some("query"))
        .collect();
    let hits = query
        .iter()
        .filter(|&&r| {
            let x = lognorm(r);
            let dist = |c: usize| -> f64 {
                centroids[c]
                    .iter()
                    .zip(&x)
                    .map(|(p, q)| (p - q).powi(2))
                    .sum()
            };
            let best = (0..k)
                .filter(|&c| counts[c] > 0)
                .min_by(|&a, &b| dist(a).total_cmp(&dist(b)));
            best == labels.codes[r]
        })
        .count();
    hits as f64 / query.len() as f64
}

/// Classes are learnable but not trivially: a nearest-centroid classifier fitted on
/// the reference lands in a plausible range on the shifted query, and pancreas-like
/// (distinct tissues) is easier than myeloid-like (related myeloid states).
#[test]
fn classes_separable_but_not_trivially() {
    let myeloid = nearest_centroid_query_accuracy(&small(Profile::MyeloidLike, 2000, 1000, 0));
    let pancreas = nearest_centroid_query_accuracy(&small(Profile::PancreasLike, 2000, 1000, 0));
    eprintln!(
        "nearest-centroid query accuracy: myeloid-like {myeloid:.3}, pancreas-like {pancreas:.3}"
    );
    assert!((0.5..0.95).contains(&myeloid), "myeloid-like {myeloid}");
    assert!((0.7..0.99).contains(&pancreas), "pancreas-like {pancreas}");
    assert!(pancreas > myeloid);
}
