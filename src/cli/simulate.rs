//! `scrobust simulate`: write a calibrated simulated data set (`--profile`), or fit
//! simulator parameters on a real raw-count file (`--fit`).

use crate::data::h5ad::{read_h5ad, write_h5ad, ReadOptions};
use crate::data::simulate::{
    estimate_params_named, simulate_with, Profile, SimParams, SimulateOptions, DEFAULT_GENES,
};
use crate::data::ValueKind;
use crate::error::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;

/// Arguments of `scrobust simulate`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// Data set to mirror: myeloid-like or pancreas-like.
    #[arg(long, required_unless_present = "fit")]
    pub profile: Option<String>,
    /// Number of cells (default: the profile's size, ~13k myeloid-like, ~15k pancreas-like).
    #[arg(long)]
    pub cells: Option<usize>,
    /// Number of genes.
    #[arg(long, default_value_t = DEFAULT_GENES)]
    pub genes: usize,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Parameter file (TOML from `--fit`) replacing the profile's embedded parameters.
    #[arg(long, conflicts_with = "fit")]
    pub params: Option<PathBuf>,
    /// Instead of simulating, estimate parameters from this raw-count h5ad file.
    #[arg(long)]
    pub fit: Option<PathBuf>,
    /// Output: the simulated h5ad, or with `--fit` the parameter TOML (stdout if absent).
    #[arg(long, required_unless_present = "fit")]
    pub out: Option<PathBuf>,
}

/// Run `scrobust simulate`.
pub fn run(args: &SimulateArgs) -> Result<()> {
    let inputs: Vec<&std::path::Path> = [&args.fit, &args.params]
        .into_iter()
        .flatten()
        .map(PathBuf::as_path)
        .collect();
    if let Some(out) = &args.out {
        super::check_outputs(&inputs, &[("out", out.as_path())])?;
    }
    if let Some(input) = &args.fit {
        return fit(input, args.out.as_ref());
    }
    check_size(args.cells, args.genes)?;
    let profile: Profile = args
        .profile
        .as_deref()
        .ok_or_else(|| Error::param("profile", "--profile is required unless --fit is given"))?
        .parse()?;
    let out = args
        .out
        .as_ref()
        .ok_or_else(|| Error::param("out", "--out FILE.h5ad is required"))?;
    let params = args
        .params
        .as_deref()
        .map(SimParams::read_toml)
        .transpose()?;
    let opts = SimulateOptions {
        profile,
        n_cells: args.cells,
        n_genes: args.genes,
        seed: args.seed,
    };
    let bar = ProgressBar::new(0).with_message(format!("simulating {profile}"));
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} cells ({elapsed})")
    {
        bar.set_style(style);
    }
    let ds = simulate_with(&opts, params.as_ref(), &bar)?;
    bar.finish_and_clear();
    // The written file must be one every analysing command accepts, and they refuse
    // empty cells.
    let (ds, n_empty) = ds.without_empty_cells();
    write_h5ad(&ds, out)?;
    eprintln!(
        "wrote {} ({} cells x {} genes, profile {profile}, seed {}; {n_empty} cells without counts dropped)",
        out.display(),
        ds.n_obs(),
        ds.n_vars(),
        args.seed
    );
    Ok(())
}

/// Refuse sizes that cannot be indexed (u32 gene indices) or cannot fit in memory, before
/// anything is allocated. The estimate assumes half the entries are non-zero (8 bytes each:
/// value and index), above what the profiles produce, so a refusal is never a false alarm
/// by much, and an accepted size leaves room for the writer's copy.
fn check_size(cells: Option<usize>, genes: usize) -> Result<()> {
    if genes == 0 || genes > u32::MAX as usize {
        return Err(Error::param(
            "genes",
            format!("{genes} genes: give 1 to {}", u32::MAX),
        ));
    }
    let Some(cells) = cells else { return Ok(()) };
    if cells == 0 {
        return Err(Error::param("cells", "0 cells: give at least 1"));
    }
    let bytes = cells as f64 * genes as f64 * 0.5 * 8.0;
    let available = available_memory_bytes();
    if bytes > available {
        return Err(Error::param(
            "cells",
            format!(
                "{cells} cells x {genes} genes need about {:.1} GiB, more than the {:.1} GiB of memory available",
                bytes / 1024f64.powi(3),
                available / 1024f64.powi(3)
            ),
        ));
    }
    Ok(())
}

/// `MemAvailable` from /proc/meminfo; 8 GiB where it cannot be read.
fn available_memory_bytes() -> f64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(8.0 * 1024f64.powi(3), |kb| kb * 1024.0)
}

fn fit(input: &std::path::Path, out: Option<&PathBuf>) -> Result<()> {
    let ds = read_h5ad(
        input,
        &ReadOptions {
            use_raw: false,
            value_kind: Some(ValueKind::Counts),
        },
    )?;
    let name = input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| input.display().to_string());
    let params = estimate_params_named(&ds.x, &name)?;
    match out {
        Some(path) => {
            params.write_toml(path)?;
            eprintln!(
                "wrote simulator parameters fitted on {} to {}",
                input.display(),
                path.display()
            );
        }
        None => print!("{}", params.to_toml_string()?),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> SimulateArgs {
        SimulateArgs {
            profile: Some("myeloid-like".into()),
            cells: Some(50),
            genes: 20,
            seed: 0,
            params: None,
            fit: None,
            out: Some(PathBuf::from("unused.h5ad")),
        }
    }

    /// An unknown profile is reported with the valid names.
    #[test]
    fn unknown_profile_is_an_error() {
        let mut a = args();
        a.profile = Some("liver-like".into());
        let e = run(&a).unwrap_err().to_string();
        assert!(
            e.contains("liver-like") && e.contains("pancreas-like"),
            "{e}"
        );
    }

    /// A missing --fit input or --params file is reported by path.
    #[test]
    fn missing_files_are_errors() {
        let mut a = args();
        a.fit = Some(PathBuf::from("/nonexistent/x.h5ad"));
        assert!(run(&a)
            .unwrap_err()
            .to_string()
            .contains("/nonexistent/x.h5ad"));
        let mut a = args();
        a.params = Some(PathBuf::from("/nonexistent/p.toml"));
        assert!(run(&a)
            .unwrap_err()
            .to_string()
            .contains("/nonexistent/p.toml"));
    }
}
