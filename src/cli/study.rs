//! `scrobust study --config FILE [--out DIR]` and `scrobust reproduce`: run the grid,
//! draw the figures, write `results.csv` and `REPORT.md`.

use crate::error::{Error, Result};
use crate::study::config::StudyConfig;
use crate::study::figures::draw_all;
use crate::study::report::{write_outputs, ReportContext};
use crate::study::runner::{run_study, run_study_part, Shard};
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
    /// Run only part K of N of the grid (e.g. `--shard 2/3`, one Slurm array task each);
    /// writes its records to OUT/runs and no report. Merge with `--merge`.
    #[arg(long, conflicts_with = "merge")]
    pub shard: Option<Shard>,
    /// Copy the records of these shard output folders into OUT/runs, then write the report
    /// of the whole grid (units no shard ran are computed).
    #[arg(long, num_args = 1..)]
    pub merge: Vec<PathBuf>,
    /// Grid units run at once on this machine, each in its own single-threaded process
    /// (shard k of J); the report is written once all are done. Defaults to the number of
    /// cores available: on 2 cores, 2 single-threaded jobs finished the quick profile
    /// faster than 1 job with 2 threads (see the README). `--jobs 1` runs in this process.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub jobs: Option<u32>,
    /// Internal: a worker of `--jobs`, writing under its parent's lock.
    #[arg(long, hide = true, requires = "shard")]
    pub worker: bool,
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
    if !args.merge.is_empty() {
        StudyConfig::from_toml_str(&text, &args.config)?;
        merge_runs(&args.merge, &args.out)?;
    }
    let progress = !args.no_progress;
    if let Some(shard) = args.shard {
        return run_shard(
            &text,
            &args.config,
            &args.out,
            shard,
            progress && !args.worker,
            args.worker,
        );
    }
    let jobs = args.jobs.unwrap_or_else(default_jobs);
    // The report's wall time and computed count include the workers' part.
    let run = ProfileRun {
        started: Instant::now(),
        computed_before: 0,
    };
    let before = count_records(&args.out);
    if jobs > 1 {
        run_workers(args, jobs)?;
    }
    let run = ProfileRun {
        computed_before: count_records(&args.out).saturating_sub(before),
        ..run
    };
    run_profile(
        &text,
        &args.config,
        &args.out,
        &command,
        (args.json, progress),
        run,
    )
}

/// When the study started, and how many records worker processes computed before the
/// report's own pass.
#[derive(Debug, Clone, Copy)]
struct ProfileRun {
    started: Instant,
    computed_before: usize,
}

/// Records cached under `out/runs`.
fn count_records(out: &Path) -> usize {
    std::fs::read_dir(out.join("runs")).map_or(0, |d| {
        d.filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .count()
    })
}

/// One job per core the process may use.
fn default_jobs() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 256) as u32)
}

/// A `--jobs` worker ends with its parent: a study killed by its pid (not only by a
/// terminal's Ctrl-C, which reaches the whole process group) leaves no worker writing into
/// its folder.
fn die_with_parent() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a flag of the calling process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    // A parent that died before the flag was set has already re-parented this process.
    let parent = std::env::var("SCROBUST_PARENT_PID").ok();
    #[cfg(unix)]
    // SAFETY: getppid has no preconditions.
    let ppid = unsafe { libc::getppid() }.to_string();
    #[cfg(not(unix))]
    let ppid = parent.clone().unwrap_or_default();
    if parent.is_some_and(|p| p != ppid) {
        std::process::exit(2);
    }
}

/// Run one shard of the grid: records only, no figures or report.
fn run_shard(
    text: &str,
    path: &Path,
    out: &Path,
    shard: Shard,
    progress: bool,
    worker: bool,
) -> Result<()> {
    let cfg = StudyConfig::from_toml_str(text, path)?;
    if worker {
        die_with_parent();
    }
    let lock = if worker {
        None
    } else {
        Some(StudyLock::acquire(out)?)
    };
    let output = run_study_part(&cfg, text, out, progress, Some(shard))?;
    drop(lock);
    eprintln!(
        "shard {}/{}: {} records in {} ({} computed); merge the shards with --merge",
        shard.index,
        shard.count,
        output.records.len(),
        out.join("runs").display(),
        output.n_computed
    );
    Ok(())
}

/// `--jobs J`: J worker processes, each running shard k/J single-threaded into OUT/runs
/// under this process's lock; the caller then runs the whole grid (all cached) for the
/// report. Processes rather than threads: each worker has its own thread pools, so no
/// worker's matrix products wait on another's, and results stay keyed and identical.
fn run_workers(args: &StudyArgs, jobs: u32) -> Result<()> {
    StudyConfig::from_toml_str(
        &std::fs::read_to_string(&args.config).map_err(|e| Error::io(&args.config, e))?,
        &args.config,
    )?;
    let existed = args.out.exists();
    let lock = StudyLock::acquire(&args.out)?;
    let exe = std::env::current_exe().map_err(|e| Error::io("current executable", e))?;
    let children: Vec<std::process::Child> = (1..=jobs)
        .map(|k| {
            std::process::Command::new(&exe)
                .args(["study", "--no-progress", "--worker", "--config"])
                .arg(&args.config)
                .arg("--out")
                .arg(&args.out)
                .arg("--shard")
                .arg(format!("{k}/{jobs}"))
                .env("RAYON_NUM_THREADS", "1")
                .env("SCROBUST_PARENT_PID", std::process::id().to_string())
                .env("CANDLE_NUM_THREADS", "1")
                .spawn()
                .map_err(|e| Error::io(&exe, e))
        })
        .collect::<Result<_>>()?;
    let mut failed = 0;
    for mut c in children {
        if !c.wait().is_ok_and(|s| s.success()) {
            failed += 1;
        }
    }
    drop(lock);
    if failed > 0 {
        // As a failed in-process run: folders the workers made but filled with nothing go.
        remove_if_empty(&args.out.join("runs"));
        if !existed {
            remove_if_empty(&args.out);
        }
        return Err(Error::param(
            "jobs",
            format!("{failed} of {jobs} workers failed; rerun to resume"),
        ));
    }
    Ok(())
}

/// Copy every `runs/*.json` of `dirs` into `out/runs`. Records are named by the content
/// hash of everything that determines them, so a name already present holds the same result.
fn merge_runs(dirs: &[PathBuf], out: &Path) -> Result<()> {
    let target = out.join("runs");
    let mut copied = 0usize;
    for dir in dirs {
        let runs = dir.join("runs");
        let entries = std::fs::read_dir(&runs).map_err(|e| Error::io(&runs, e))?;
        std::fs::create_dir_all(&target).map_err(|e| Error::io(&target, e))?;
        for entry in entries {
            let p = entry.map_err(|e| Error::io(&runs, e))?.path();
            let Some(name) = p.file_name() else { continue };
            if p.extension().is_some_and(|x| x == "json") && !target.join(name).exists() {
                let bytes = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
                crate::study::write_atomic(&target.join(name), &bytes)?;
                copied += 1;
            }
        }
    }
    eprintln!(
        "merged {copied} records from {} folder(s) into {}",
        dirs.len(),
        target.display()
    );
    Ok(())
}

/// Run `scrobust reproduce`: the compiled-in quick profile.
pub fn run_reproduce(args: &ReproduceArgs) -> Result<()> {
    let command = format!("scrobust reproduce --out {}", args.out.display());
    let run = ProfileRun {
        started: Instant::now(),
        computed_before: 0,
    };
    run_profile(
        QUICK_PROFILE,
        Path::new("configs/quick.toml"),
        &args.out,
        &command,
        (false, !args.no_progress),
        run,
    )
}

fn run_profile(
    text: &str,
    path: &Path,
    out: &Path,
    command: &str,
    (json, progress): (bool, bool),
    run: ProfileRun,
) -> Result<()> {
    let cfg = StudyConfig::from_toml_str(text, path)?;
    let started = run.started;
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
        n_computed: output.n_computed + run.computed_before,
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
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
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
        Err(Error::param(
            "out",
            format!("cannot take the lock {}", path.display()),
        ))
    }
}

impl Drop for StudyLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
