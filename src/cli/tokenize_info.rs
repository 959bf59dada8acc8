//! `scrobust tokenize-info`: how much information a tokenizer keeps, and how its tokens
//! react to Gaussian noise (measures documented in [`crate::tokenize::info`]).
//!
//! Rank encoding needs counts (Geneformer divides by the cell total). For log-normalized
//! input (log1p of CP10k, as scGPT's packaged data) the values are mapped back with
//! `expm1`, which gives CP10k: proportional to the counts in each cell, so the rank order
//! is Geneformer's. The gene medians are fitted on the given data set. Noise is applied to
//! the values as given, before any such mapping.

use crate::data::{Dataset, ValueKind};
use crate::error::{Error, Result};
use crate::perturb::{GaussianNoise, Perturbed, ZeroHandling};
use crate::tokenize::info::{measure, noise_info, InfoTokenizer};
use crate::tokenize::{BinningTokenizer, RankTokenizerParams, TieMode};
use serde_json::{json, Value};
use std::path::PathBuf;

/// Which tokenizer to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TokenizerChoice {
    /// scGPT per-cell quantile binning.
    Binning,
    /// Geneformer rank-value encoding.
    Rank,
}

/// How binning resolves values on bin edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TiesChoice {
    /// Random between the left and right edge (scGPT), seeded.
    Random,
    /// The left edge (deterministic).
    Left,
}

/// Geneformer input size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RankVersion {
    /// 2048 genes, no special tokens.
    V1,
    /// `<cls>` + 4094 genes + `<eos>`.
    V2,
}

/// Arguments of `scrobust tokenize-info`.
#[derive(Debug, Clone, clap::Args)]
pub struct TokenizeInfoArgs {
    /// Input data set (h5ad).
    #[arg(long)]
    pub data: PathBuf,
    /// Tokenizer to measure.
    #[arg(long, value_enum)]
    pub tokenizer: TokenizerChoice,
    /// Fraction of cells to perturb with Gaussian noise (enables the noise measures;
    /// default 0.2 when only --noise-sigma is given).
    #[arg(long)]
    pub noise_fraction: Option<f64>,
    /// Noise standard deviation in log1p(CP10k) units (default 1.0 when only
    /// --noise-fraction is given).
    #[arg(long)]
    pub noise_sigma: Option<f64>,
    /// Perturb stored non-zero values only (default: zeros are perturbed too).
    #[arg(long)]
    pub noise_keep_zeros: bool,
    /// Number of bins including the zero bin (binning).
    #[arg(long, default_value_t = 51)]
    pub n_bins: usize,
    /// Tie handling (binning).
    #[arg(long, value_enum, default_value = "random")]
    pub ties: TiesChoice,
    /// Geneformer version (rank).
    #[arg(long, value_enum, default_value = "v1")]
    pub rank_version: RankVersion,
    /// Print one JSON object on stdout (per-cell arrays included).
    #[arg(long)]
    pub json: bool,
    /// Seed for tie draws and noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Read raw/X instead of X.
    #[arg(long)]
    pub use_raw: bool,
    /// What the values are, overriding detection: counts or log-normalized.
    #[arg(long)]
    pub value_kind: Option<ValueKind>,
}

impl TokenizeInfoArgs {
    /// The noise to apply, if any was asked for.
    pub fn noise(&self) -> Option<GaussianNoise> {
        if self.noise_fraction.is_none() && self.noise_sigma.is_none() {
            return None;
        }
        let d = GaussianNoise::default();
        Some(GaussianNoise {
            fraction: self.noise_fraction.unwrap_or(d.fraction),
            sigma: self.noise_sigma.unwrap_or(d.sigma),
            zeros: if self.noise_keep_zeros {
                ZeroHandling::Keep
            } else {
                ZeroHandling::Perturb
            },
            ..d
        })
    }
}

/// Measure the data set; returns the JSON object `tokenize-info --json` prints.
pub fn run_on_dataset(ds: &Dataset, args: &TokenizeInfoArgs) -> Result<Value> {
    ds.validate_values()?;
    let noise = args.noise();
    let perturbed = match &noise {
        Some(n) => Some(n.apply(&ds.x, ds.value_kind, args.seed)?),
        None => None,
    };
    let (mut out, noise_json) = match args.tokenizer {
        TokenizerChoice::Binning => {
            let ties = match args.ties {
                TiesChoice::Random => TieMode::Random,
                TiesChoice::Left => TieMode::Left,
            };
            let b = BinningTokenizer::new(args.n_bins, ties)?;
            let tok = InfoTokenizer::Binning(&b);
            let report = measure(&ds.x, ds.value_kind, tok, args.seed)?;
            let noise_json = match (&noise, &perturbed) {
                (Some(n), Some(p)) => Some(noise_info(&ds.x, p, ds.value_kind, tok, n, args.seed)?),
                _ => None,
            };
            let settings =
                json!({ "n_bins": args.n_bins, "ties": format!("{:?}", args.ties).to_lowercase() });
            (with_settings(to_value(&report)?, settings), noise_json)
        }
        TokenizerChoice::Rank => {
            let params = match args.rank_version {
                RankVersion::V1 => RankTokenizerParams::v1(),
                RankVersion::V2 => RankTokenizerParams::v2(),
            };
            let x = crate::tokenize::rank::rank_encoding_input(&ds.x, ds.value_kind);
            let fitted = params.fit(&x)?;
            let tok = InfoTokenizer::Rank(&fitted);
            let report = measure(&x, ValueKind::Counts, tok, args.seed)?;
            let noise_json = match (&noise, &perturbed) {
                (Some(n), Some(p)) => {
                    let p = Perturbed {
                        x: crate::tokenize::rank::rank_encoding_input(&p.x, ds.value_kind),
                        perturbed_cells: p.perturbed_cells.clone(),
                    };
                    Some(noise_info(&x, &p, ValueKind::Counts, tok, n, args.seed)?)
                }
                _ => None,
            };
            let settings = json!({
                "version": format!("{:?}", args.rank_version).to_lowercase(),
                "max_len": params.max_len,
                "special_tokens": params.special_tokens,
                "gene_tokens": params.n_gene_tokens(),
                "medians_fitted_on": "this data set",
                "n_genes_without_median": fitted.n_genes_without_median(),
            });
            (with_settings(to_value(&report)?, settings), noise_json)
        }
    };
    if let (Some(info), Some(n)) = (noise_json, &noise) {
        let mut v = to_value(&info)?;
        if let Value::Object(m) = &mut v {
            m.insert("space".into(), to_value(&n.space)?);
            m.insert("zeros".into(), to_value(&n.zeros)?);
            m.insert("clip_negative".into(), Value::Bool(n.clip_negative));
            m.insert("seed".into(), json!(args.seed));
        }
        out["noise"] = v;
    }
    out["source"] = json!(ds.source);
    out["value_kind"] = json!(ds.value_kind.as_str());
    out["n_genes"] = json!(ds.n_vars());
    Ok(out)
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| Error::param("tokenize-info output", e.to_string()))
}

fn with_settings(mut v: Value, settings: Value) -> Value {
    v["settings"] = settings;
    v
}

/// Human summary of a [`run_on_dataset`] result, for stderr.
pub fn summary(v: &Value) -> String {
    let f = |k: &str| {
        v[k].as_f64()
            .map(|x| format!("{x:.4}"))
            .unwrap_or_else(|| "n/a".into())
    };
    let mut s = format!(
        "tokenizer {} on {} cells ({}):\n  mutual information {} bits of {} (kept {})\n  within-cell Spearman {}\n  cross-cell spread {} (relative {})\n",
        v["tokenizer"].as_str().unwrap_or("?"),
        v["n_cells"],
        v["value_kind"].as_str().unwrap_or("?"),
        f("mutual_information_bits"),
        f("value_entropy_bits"),
        f("information_kept_fraction"),
        f("spearman_within_cell"),
        f("cross_cell_spread"),
        f("cross_cell_spread_relative"),
    );
    if let Some(n) = v.get("noise") {
        let g = |k: &str| {
            n[k].as_f64()
                .map(|x| format!("{x:.4}"))
                .unwrap_or_else(|| "n/a".into())
        };
        s.push_str(&format!(
            "  noise (fraction {}, sigma {}, {} cells): token change {} , Kendall tau {}\n",
            g("fraction"),
            g("sigma"),
            n["n_perturbed"],
            g("token_change_fraction"),
            g("kendall_tau")
        ));
    }
    s
}

/// Run `scrobust tokenize-info`: read the file, measure, print the summary to stderr and,
/// with `--json`, the JSON object to stdout.
pub fn run(args: &TokenizeInfoArgs) -> Result<()> {
    let ds = super::read_input(&args.data, args.use_raw, args.value_kind)?;
    super::require_cells(&ds, "data set")?;
    let v = run_on_dataset(&ds, args)?;
    eprintln!("{}", summary(&v));
    if args.json {
        println!("{v}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: TokenizeInfoArgs,
    }

    fn dataset() -> Dataset {
        let d = ndarray::array![
            [1.0f32, 0.0, 3.0, 5.0, 2.0],
            [0.0, 2.0, 4.0, 1.0, 7.0],
            [6.0, 1.0, 0.0, 2.0, 9.0]
        ];
        Dataset {
            x: crate::data::CsrMatrix::from_dense(&d),
            cell_ids: vec!["a".into(), "b".into(), "c".into()],
            gene_names: (0..5).map(|g| format!("g{g}")).collect(),
            obs: Vec::new(),
            obsm: Vec::new(),
            value_kind: ValueKind::Counts,
            source: "test".into(),
        }
    }

    /// The JSON holds the contract's fields, with and without noise.
    #[test]
    fn json_has_contract_fields() {
        let ds = dataset();
        for tok in ["binning", "rank"] {
            let cli = Cli::parse_from([
                "x",
                "--data",
                "d.h5ad",
                "--tokenizer",
                tok,
                "--noise-fraction",
                "0.34",
            ]);
            let v = run_on_dataset(&ds, &cli.args).unwrap();
            for k in [
                "tokenizer",
                "n_cells",
                "mutual_information_bits",
                "spearman_within_cell",
                "cross_cell_spread",
            ] {
                assert!(v.get(k).is_some(), "{tok}: missing {k}");
            }
            assert_eq!(v["tokenizer"], tok);
            assert_eq!(v["n_cells"], 3);
            for k in ["fraction", "sigma", "token_change_fraction", "kendall_tau"] {
                assert!(v["noise"].get(k).is_some(), "{tok}: missing noise.{k}");
            }
            assert_eq!(v["noise"]["n_perturbed"], 1);
            assert!(summary(&v).contains("Kendall"));
        }
        let cli = Cli::parse_from(["x", "--data", "d.h5ad", "--tokenizer", "rank"]);
        assert!(run_on_dataset(&ds, &cli.args)
            .unwrap()
            .get("noise")
            .is_none());
    }

    /// Negative input is reported as an error naming the source, not a panic.
    #[test]
    fn negative_values_are_an_error() {
        let mut ds = dataset();
        ds.x.data_mut()[0] = -1.0;
        let cli = Cli::parse_from(["x", "--data", "d.h5ad", "--tokenizer", "binning"]);
        let e = run_on_dataset(&ds, &cli.args).unwrap_err();
        assert!(e.to_string().contains("test"), "{e}");
    }
}
