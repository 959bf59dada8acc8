//! `scrobust study --config FILE [--out DIR]` and `scrobust reproduce`: run the grid,
//! draw the figures, write `results.csv` and `REPORT.md`.

use crate::error::{Error, Result};
use crate::study::config::StudyConfig;
use crate::study::figures::draw_all;
use crate::study::report::{write_outputs, ReportContext};
use crate::study::runner::run_study;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The quick profile, compiled in so that `scrobust reproduce` needs no file.
pub const QUICK_PROFILE: &str = include_str!("../../configs/quick.toml");

/// Arguments of `scrobust study`.
#[derive(Debug, Clone, clap::Args)]
pub struct StudyArgs {
    /// Study profile (TOML with [study], [train] and [models.*] sections).
    #[arg(long)]
    pub config: PathBuf,
    /// Output folder (results.csv, REPORT.md, runs/, figures/).
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Print a JSON summary (claims and per-cell metrics) on stdout.
    #[arg(long)]
    pub json: bool,
    /// Hide the progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// Arguments of `scrobust reproduce`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReproduceArgs {
    /// Output folder.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Hide the progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// Run `scrobust study`.
pub fn run(args: &StudyArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.config).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::FileNotFound {
            path: args.config.clone(),
        },
        _ => Error::io(&args.config, e),
    })?;
    let command = format!(
        "scrobust study --config {} --out {}",
        args.config.display(),
        args.out.display()
    );
    run_profile(
        &text,
        &args.config,
        &args.out,
        &command,
        args.json,
        !args.no_progress,
    )
}

/// Run `scrobust reproduce`: the compiled-in quick profile.
pub fn run_reproduce(args: &ReproduceArgs) -> Result<()> {
    let command = format!("scrobust reproduce --out {}", args.out.display());
    run_profile(
        QUICK_PROFILE,
        Path::new("configs/quick.toml"),
        &args.out,
        &command,
        false,
        !args.no_progress,
    )
}

fn run_profile(
    text: &str,
    path: &Path,
    out: &Path,
    command: &str,
    json: bool,
    progress: bool,
) -> Result<()> {
    let cfg = StudyConfig::from_toml_str(text, path)?;
    let started = Instant::now();
    let config_hash: String = Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    eprintln!(
        "study '{}': {} data sets, {} methods, {} seeds, {} noise conditions",
        cfg.name,
        cfg.datasets.len(),
        cfg.methods.len(),
        cfg.seeds.len(),
        cfg.conditions().len()
    );
    let existed = out.exists();
    let lock = StudyLock::acquire(out)?;
    let output = match run_study(&cfg, text, out, progress) {
        Ok(o) => o,
        Err(e) => {
            drop(lock);
            remove_if_empty(&out.join("runs"));
            if !existed {
                remove_if_empty(out);
            }
            return Err(e);
        }
    };
    let figures = draw_all(&cfg, &output, out)?;
    let ctx = ReportContext {
        profile_name: &cfg.name,
        command,
        config_hash: &config_hash[..16],
        notes: &output.notes,
        figures: &figures,
        seconds_total: started.elapsed().as_secs_f64(),
        n_computed: output.n_computed,
    };
    write_outputs(&output.records, &ctx, out)?;
    drop(lock);
    eprintln!(
        "wrote {} and {} ({} grid cells, {:.1} s)",
        out.join("REPORT.md").display(),
        out.join("results.csv").display(),
        output.records.len(),
        started.elapsed().as_secs_f64()
    );
    if json {
        let v = serde_json::json!({
            "profile": cfg.name,
            "n_cells": output.records.len(),
            "claims": crate::study::report::claims_json(&output.records),
            "records": output.records,
        });
        println!("{v}");
    }
    Ok(())
}

/// Remove `dir` if it exists and is empty (a failed study leaves no empty folders).
fn remove_if_empty(dir: &Path) {
    if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none()) {
        let _ = std::fs::remove_dir(dir);
    }
}

/// `OUT/.study.lock`, holding the pid of the study writing to OUT: a second study on the
/// same folder is refused while the first runs (their records would mix in `runs/`). A
/// lock whose process is gone (a killed study) is taken over, so resuming needs no cleanup.
struct StudyLock {
    path: PathBuf,
}

impl StudyLock {
    fn acquire(out: &Path) -> Result<Self> {
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        let path = out.join(".study.lock");
        for _ in 0..2 {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    use std::io::Write;
                    write!(f, "{}", std::process::id()).map_err(|e| Error::io(&path, e))?;
                    return Ok(StudyLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let pid = std::fs::read_to_string(&path).unwrap_or_default();
                    let pid = pid.trim();
                    if !pid.is_empty() && Path::new("/proc").join(pid).exists() {
                        return Err(Error::param(
                            "out",
                            format!("another study (pid {pid}) is writing to {}; wait for it or choose another --out", out.display()),
                        ));
                    }
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        Err(Error::param("out", format!("cannot take the lock {}", path.display())))
    }
}

impl Drop for StudyLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
