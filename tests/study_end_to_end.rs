//! The study runner end to end through the CLI on the `smoke` profile: outputs exist and
//! are complete, and a study killed mid-run resumes to the same results as an
//! uninterrupted one.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_scrobust")
}

fn smoke_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/smoke.toml")
}

fn run_study(out: &Path) {
    let status = Command::new(bin())
        .args(["study", "--no-progress", "--config"])
        .arg(smoke_config())
        .arg("--out")
        .arg(out)
        .status()
        .expect("run scrobust");
    assert!(status.success(), "study failed: {status}");
}

/// results.csv without the wall-time column, which legitimately differs between runs.
fn results_without_time(out: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(out.join("results.csv")).expect("results.csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let t = header
        .iter()
        .position(|h| *h == "seconds")
        .expect("seconds column");
    let mut rows: Vec<String> = lines
        .map(|l| {
            l.split(',')
                .enumerate()
                .filter(|(i, _)| *i != t)
                .map(|(_, f)| f)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    rows.sort();
    rows
}

/// A killed study resumes from its cache and ends with exactly the results of an
/// uninterrupted run; the finished study has its report (tuned arm included), CSV and
/// every figure.
#[test]
fn smoke_study_outputs_and_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let full = tmp.path().join("full");
    run_study(&full);

    // Outputs of the uninterrupted run.
    let report = std::fs::read_to_string(full.join("REPORT.md")).expect("REPORT.md");
    for needle in [
        "Seurat beats Geneformer",
        "CD14",
        "20% noisy cells",
        "config hash",
        "## Figures",
        "Tuned arm: settings chosen on reference validation",
        "[tuned arm] Seurat beats Geneformer",
    ] {
        assert!(report.contains(needle), "REPORT.md lacks '{needle}'");
    }
    let rows = results_without_time(&full);
    // 7 methods (the six and a tuned arm) × 2 seeds × (clean + 1 noise condition).
    assert_eq!(rows.len(), 7 * 2 * 2, "{rows:?}");
    for stem in [
        "fig1_accuracy_macro_f1",
        "fig2_accuracy_vs_noise_fraction",
        "fig3_prediction_shift",
        "fig4_confusion",
        "fig5_tokenizer_information",
        "fig6_params_vs_accuracy",
        "fig7_learning_curves",
        "fig8_claims_forest",
    ] {
        for ext in ["png", "svg"] {
            let p = full.join("figures").join(format!("{stem}.{ext}"));
            let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            assert!(len > 1000, "{} missing or tiny", p.display());
        }
    }

    // The tuned arm chose once for the data set and model (at the first seed, on the clean
    // reference) and every seed and condition reuses that setting.
    let tuning: Vec<_> = std::fs::read_dir(full.join("runs/tuning"))
        .unwrap()
        .collect();
    assert_eq!(tuning.len(), 1, "one choice per data set and tuned method");
    let chosen: Vec<serde_json::Value> = std::fs::read_dir(full.join("runs"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| serde_json::from_slice::<serde_json::Value>(&std::fs::read(p).unwrap()).unwrap())
        .filter(|r| r["method"] == "geneformer-tuned")
        .map(|r| r["tune"]["chosen"].clone())
        .collect();
    assert_eq!(chosen.len(), 4, "2 seeds x 2 conditions");
    assert!(
        chosen.iter().all(|c| c == &chosen[0] && c.is_object()),
        "{chosen:?}"
    );

    // Interrupted run: kill it once the first grid cell is on disk.
    let part = tmp.path().join("part");
    let mut child = Command::new(bin())
        .args(["study", "--no-progress", "--config"])
        .arg(smoke_config())
        .arg("--out")
        .arg(&part)
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn scrobust");
    let started = Instant::now();
    let runs = part.join("runs");
    loop {
        let n = std::fs::read_dir(&runs)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                    .count()
            })
            .unwrap_or(0);
        if n > 0 || started.elapsed() > Duration::from_secs(300) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("kill");
    let _ = child.wait();
    // The default runs one worker process per core; they die with the killed parent, so
    // nothing is written after it.
    let count = || std::fs::read_dir(&runs).map(|d| d.count()).unwrap_or(0);
    std::thread::sleep(Duration::from_millis(500));
    let after_kill = count();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(count(), after_kill, "a worker outlived the killed study");
    assert!(
        !part.join("REPORT.md").exists(),
        "the study finished before it could be interrupted"
    );
    let n_done = std::fs::read_dir(&runs).unwrap().count();
    assert!(
        n_done < rows.len(),
        "nothing left to resume ({n_done} cells done)"
    );

    run_study(&part);
    assert_eq!(results_without_time(&part), rows);
}

fn study_with(args: &[&str], out: &Path) {
    let status = Command::new(bin())
        .args(["study", "--no-progress", "--config"])
        .arg(smoke_config())
        .arg("--out")
        .arg(out)
        .args(args)
        .status()
        .expect("run scrobust");
    assert!(status.success(), "study {args:?} failed: {status}");
}

/// Shards 1/3, 2/3 and 3/3 are disjoint and cover the grid, and merging them gives, with
/// nothing computed, exactly the results of one uninterrupted run; so does `--jobs 2`.
#[test]
fn shards_merge_to_the_single_run() {
    let tmp = tempfile::tempdir().unwrap();
    let full = tmp.path().join("full");
    run_study(&full);
    let mut shard_dirs = Vec::new();
    let mut n_shard_records = 0;
    for k in 1..=3 {
        let dir = tmp.path().join(format!("shard{k}"));
        study_with(&["--shard", &format!("{k}/3")], &dir);
        assert!(!dir.join("REPORT.md").exists(), "a shard writes no report");
        // Records only: a shard with a tuned-arm unit also caches the arm's choice.
        n_shard_records += std::fs::read_dir(dir.join("runs"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .count();
        shard_dirs.push(dir);
    }
    let rows = results_without_time(&full);
    assert_eq!(
        n_shard_records,
        rows.len(),
        "shards must be disjoint and complete"
    );
    let merged = tmp.path().join("merged");
    let mut args = vec!["--merge"];
    let names: Vec<String> = shard_dirs.iter().map(|d| d.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    study_with(&args, &merged);
    assert_eq!(results_without_time(&merged), rows);
    let report = std::fs::read_to_string(merged.join("REPORT.md")).unwrap();
    assert!(report.contains("config hash"));

    // `--jobs 2`: two single-threaded worker processes, then the report.
    let jobs = tmp.path().join("jobs");
    study_with(&["--jobs", "2"], &jobs);
    assert_eq!(results_without_time(&jobs), rows);
    assert!(jobs.join("REPORT.md").exists());
    assert!(!jobs.join(".study.lock").exists(), "the lock is released");
}
