//! End to end on real data: the three foundation-model-like classifiers trained on Kang
//! PBMC control cells (reference) and predicting IFN-β stimulated cells (query), with the
//! `smoke` profile so the test stays short. Accuracy at the `quick` profile is reported by
//! `scrobust train` (see the models report); here each model must run, predict every query
//! cell, stay deterministic, and beat the majority-class rate.

use scrobust::data::h5ad::{read_h5ad, ReadOptions};
use scrobust::data::split::{read_cell_list, split_by_cell_ids};
use scrobust::data::Dataset;
use scrobust::models::{train_and_predict, ModelKind, TrainConfig};
use std::path::Path;

mod common;
use common::data_dir;

fn kang() -> (Dataset, Dataset) {
    let dir = data_dir();
    let ds = read_h5ad(&dir.join("muscat_kang_pbmc.h5ad"), &ReadOptions::default()).unwrap();
    let refs = read_cell_list(&dir.join("splits/kang/ref_cells.txt")).unwrap();
    let query = read_cell_list(&dir.join("splits/kang/query_cells.txt")).unwrap();
    let (r, q) = split_by_cell_ids(&ds, &refs, &query).unwrap();
    (ds.select_cells(&r), ds.select_cells(&q))
}

/// Every model trains on kang ctrl with the smoke profile, predicts all stim cells with
/// valid classes and scores, repeats itself exactly, and beats the majority-class rate.
#[test]
fn every_model_trains_on_kang() {
    let (reference, query) = kang();
    let labels = reference.labels("label").unwrap();
    let truth = query.labels("label").unwrap();
    let mut cfg =
        TrainConfig::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/smoke.toml"))
            .unwrap();
    // Enough steps and input for the tiny smoke models to leave the majority class, still
    // seconds: 64 genes (the binned models' HVG set is sized to that), 150 steps, all run.
    cfg.train.finetune_steps = 150;
    cfg.train.patience = 0;
    cfg.train.max_seq_len = 65;
    cfg.train.lr = 1e-3;
    let majority = *truth.counts().iter().max().unwrap() as f64 / truth.len() as f64;
    for kind in ModelKind::ALL {
        let out = train_and_predict(kind, &cfg, &reference, &labels, &query, 0, false).unwrap();
        let pred = &out.prediction;
        assert_eq!(pred.predicted.len(), query.n_obs());
        assert!(pred.predicted.iter().all(|&c| c < labels.classes.len()));
        assert!(pred.scores.iter().all(|s| (0.0..=1.0).contains(s)));
        assert_eq!(out.fit.pretrain_steps, cfg.train.pretrain_steps);
        assert_eq!(out.fit.finetune_steps, cfg.train.finetune_steps);
        assert!(out.fit.n_params > 0);
        let correct = (0..query.n_obs())
            .filter(|&i| truth.name(i) == Some(pred.label(i)))
            .count() as f64
            / query.n_obs() as f64;
        assert!(
            correct > majority,
            "{kind:?}: accuracy {correct:.3} ≤ majority rate {majority:.3}"
        );
        let again = train_and_predict(kind, &cfg, &reference, &labels, &query, 0, false).unwrap();
        assert_eq!(
            again.prediction, out.prediction,
            "{kind:?} not deterministic"
        );
    }
}

fn scrobust(args: &[&str], cwd: &Path) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scrobust"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `train` reads one file split by cell lists (as `transfer` does), saves the classifier,
/// and `predict` with the saved folder on the same query cells writes the identical
/// prediction CSV; a query of the other value kind is refused with exit 2.
#[test]
fn train_save_then_predict_gives_the_same_predictions() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_dir();
    let (file, refs, query) = (
        data.join("muscat_kang_pbmc.h5ad"),
        data.join("splits/kang/ref_cells.txt"),
        data.join("splits/kang/query_cells.txt"),
    );
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/smoke.toml");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (file, refs, query, config) = (s(&file), s(&refs), s(&query), s(&config));
    let split = [
        "--data",
        &file,
        "--reference-cells",
        &refs,
        "--query-cells",
        &query,
        "--label-key",
        "label",
    ];
    let mut train = vec!["train", "--model", "geneformer", "--config", &config];
    train.extend(split);
    train.extend(["--save-model", "model", "--out", "train.csv"]);
    let (code, err) = scrobust(&train, dir.path());
    assert_eq!(code, 0, "{err}");
    let mut predict = vec!["predict", "--model", "model"];
    predict.extend(split);
    predict.extend(["--out", "predict.csv"]);
    let (code, err) = scrobust(&predict, dir.path());
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("accuracy"), "{err}");
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
    assert_eq!(read("train.csv"), read("predict.csv"));
    assert_eq!(read("predict.csv").lines().count(), 807);
    let mut other = vec![
        "predict",
        "--model",
        "model",
        "--value-kind",
        "log-normalized",
    ];
    other.extend(split);
    let (code, err) = scrobust(&other, dir.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("trained on counts"), "{err}");
}
