//! The declarative study grid, read from the `[study]` section of a TOML profile
//! (`configs/*.toml`): data sets × methods × perturbations × seeds.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The `[study]` section of a profile.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudyConfig {
    /// Profile name, used in the report.
    pub name: String,
    /// Seeds; every stochastic step of a grid cell derives from its seed.
    pub seeds: Vec<u64>,
    /// Methods to run, any of `seurat`, `logistic`, `knn`, `scgpt`, `geneformer`, `scmamba2`.
    pub methods: Vec<String>,
    /// Bootstrap resamples for per-run 95% CIs over query cells. Defaults to 1000.
    #[serde(default = "default_bootstrap")]
    pub bootstrap: usize,
    /// Data sets of the grid.
    pub datasets: Vec<DatasetSpec>,
    /// Perturbation settings; the clean condition (fraction 0) is always included.
    #[serde(default)]
    pub perturbations: Vec<PerturbationSpec>,
    /// Tokenizer information-loss measurements (figure 5) on the first data set.
    #[serde(default = "default_true")]
    pub tokenizer_info: bool,
}

fn default_bootstrap() -> usize {
    1000
}

fn default_true() -> bool {
    true
}

/// Where a data set comes from and how it is split into reference and query.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DatasetSpec {
    /// The built-in simulator; reference and query are its `batch` column values.
    Simulated {
        name: String,
        /// `myeloid-like` or `pancreas-like`.
        profile: String,
        cells: Option<usize>,
        #[serde(default = "default_genes")]
        genes: usize,
        /// Simulation seed (fixed, so the data set is the same across method seeds).
        #[serde(default)]
        seed: u64,
    },
    /// A task of the shared real data folder (`splits/<task>/`); skipped with a note
    /// when the folder is absent.
    Shared { name: String, task: String },
    /// A user's h5ad file(s).
    H5ad {
        name: String,
        label_key: String,
        /// Separate reference and query files ...
        reference: Option<PathBuf>,
        query: Option<PathBuf>,
        /// ... or one file split by an obs column or stratified.
        data: Option<PathBuf>,
        split_key: Option<String>,
        reference_values: Option<Vec<String>>,
        train_fraction: Option<f64>,
        #[serde(default)]
        use_raw: bool,
    },
}

fn default_genes() -> usize {
    3000
}

impl DatasetSpec {
    /// The data set's name in results.
    pub fn name(&self) -> &str {
        match self {
            DatasetSpec::Simulated { name, .. }
            | DatasetSpec::Shared { name, .. }
            | DatasetSpec::H5ad { name, .. } => name,
        }
    }
}

/// Which cells receive noise.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum NoiseTarget {
    /// Query only: models are trained on clean cells (the default: it isolates how the
    /// tokenizer reacts to noise at prediction time).
    Query,
    /// Reference only.
    Reference,
    /// Both reference and query.
    Both,
}

/// A family of Gaussian-noise conditions (the cross product of fractions and sigmas).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PerturbationSpec {
    /// Fractions of cells perturbed, e.g. [0.1, 0.2, 0.4].
    pub fractions: Vec<f64>,
    /// Noise standard deviations (in log1p(CP10k) space by default).
    pub sigmas: Vec<f64>,
    /// Which side receives noise. Defaults to the query.
    #[serde(default = "default_target")]
    pub target: NoiseTarget,
    /// Whether zero entries are perturbed too. Defaults to true.
    #[serde(default = "default_true")]
    pub perturb_zeros: bool,
}

fn default_target() -> NoiseTarget {
    NoiseTarget::Query
}

/// One noise condition of the grid.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct NoiseCondition {
    pub fraction: f64,
    pub sigma: f64,
    pub target: NoiseTarget,
    pub perturb_zeros: bool,
}

impl NoiseCondition {
    /// The clean condition.
    pub fn clean() -> Self {
        Self {
            fraction: 0.0,
            sigma: 0.0,
            target: NoiseTarget::Query,
            perturb_zeros: true,
        }
    }

    /// True for the clean condition.
    pub fn is_clean(&self) -> bool {
        self.fraction == 0.0 || self.sigma == 0.0
    }

    /// True when the reference (training) side changes.
    pub fn touches_reference(&self) -> bool {
        !self.is_clean() && matches!(self.target, NoiseTarget::Reference | NoiseTarget::Both)
    }

    /// True when the query side changes.
    pub fn touches_query(&self) -> bool {
        !self.is_clean() && matches!(self.target, NoiseTarget::Query | NoiseTarget::Both)
    }
}

/// The methods the runner knows: the six of the study, and the neural models' `tuned` arm
/// (learning rate and pretraining chosen per model on reference validation, see
/// `models::tune`).
pub const KNOWN_METHODS: [&str; 9] = [
    "seurat",
    "logistic",
    "knn",
    "scgpt",
    "geneformer",
    "scmamba2",
    "scgpt-tuned",
    "geneformer-tuned",
    "scmamba2-tuned",
];

impl StudyConfig {
    /// Read the `[study]` section of a profile file and validate it.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_toml_str(&text, path)
    }

    /// Parse the `[study]` section of a profile given as text (`path` is used in errors).
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Self> {
        #[derive(Deserialize)]
        struct Wrapper {
            study: Option<StudyConfig>,
        }
        let w: Wrapper = toml::from_str(text).map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            problem: e.to_string(),
        })?;
        let cfg = w.study.ok_or_else(|| Error::MissingKey {
            path: path.to_path_buf(),
            key: "study".into(),
            hint: "; a profile needs a [study] section".into(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Check ranges and names.
    pub fn validate(&self) -> Result<()> {
        if self.seeds.is_empty() {
            return Err(Error::param("study.seeds", "needs at least one seed"));
        }
        if self.datasets.is_empty() {
            return Err(Error::param(
                "study.datasets",
                "needs at least one data set",
            ));
        }
        for m in &self.methods {
            if m.parse::<crate::study::methods::Method>().is_err() {
                return Err(Error::param(
                    "study.methods",
                    format!("unknown method '{m}'; known: {}", KNOWN_METHODS.join(", ")),
                ));
            }
        }
        let mut names: Vec<&str> = self.datasets.iter().map(|d| d.name()).collect();
        names.sort();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err(Error::param(
                "study.datasets",
                "data set names must be unique",
            ));
        }
        for p in &self.perturbations {
            if p.fractions.iter().any(|f| !(0.0..=1.0).contains(f)) {
                return Err(Error::param(
                    "study.perturbations.fractions",
                    "each fraction must lie in [0, 1]",
                ));
            }
            if p.sigmas.iter().any(|s| !s.is_finite() || *s < 0.0) {
                return Err(Error::param(
                    "study.perturbations.sigmas",
                    "each sigma must be finite and >= 0",
                ));
            }
        }
        Ok(())
    }

    /// All noise conditions: clean first, then each perturbation family's cross product
    /// (duplicates removed).
    pub fn conditions(&self) -> Vec<NoiseCondition> {
        let mut out = vec![NoiseCondition::clean()];
        for p in &self.perturbations {
            for &fraction in &p.fractions {
                for &sigma in &p.sigmas {
                    let c = NoiseCondition {
                        fraction,
                        sigma,
                        target: p.target,
                        perturb_zeros: p.perturb_zeros,
                    };
                    if !c.is_clean() && !out.contains(&c) {
                        out.push(c);
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
[study]
name = "t"
seeds = [0, 1]
methods = ["knn", "scgpt"]
[[study.datasets]]
kind = "simulated"
name = "sim"
profile = "myeloid-like"
cells = 300
genes = 200
[[study.perturbations]]
fractions = [0.0, 0.2]
sigmas = [1.0]
"#;

    /// A profile parses, and the clean condition comes first without duplicates.
    #[test]
    fn parses_and_expands_conditions() {
        let cfg = StudyConfig::from_toml_str(EXAMPLE, Path::new("x.toml")).unwrap();
        assert_eq!(cfg.seeds, vec![0, 1]);
        let c = cfg.conditions();
        assert_eq!(c.len(), 2);
        assert!(c[0].is_clean());
        assert_eq!(c[1].fraction, 0.2);
        assert!(c[1].touches_query() && !c[1].touches_reference());
    }

    /// An unknown method is rejected with its name in the message.
    #[test]
    fn rejects_unknown_method() {
        let bad = EXAMPLE.replace("\"knn\"", "\"svm\"");
        let e = StudyConfig::from_toml_str(&bad, Path::new("x.toml")).unwrap_err();
        assert!(e.to_string().contains("svm"), "{e}");
    }

    /// A file without a [study] section names the missing key.
    #[test]
    fn missing_section() {
        let e = StudyConfig::from_toml_str("[train]\nlr = 1.0\n", Path::new("p.toml")).unwrap_err();
        assert!(e.to_string().contains("study"), "{e}");
    }
}

#[cfg(test)]
mod shipped_profiles {
    use super::*;

    /// Every shipped profile parses: its [study] grid and its [train]/[models] sections.
    #[test]
    fn all_configs_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                continue;
            }
            let cfg = StudyConfig::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(!cfg.conditions().is_empty());
            let text = std::fs::read_to_string(&path).unwrap();
            crate::models::TrainConfig::from_toml_str(&text, &path)
                .unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
        assert!(
            n >= 4,
            "expected smoke, quick, paper and paper-real profiles, found {n}"
        );
    }

    /// The standard profile holds the grid the study issue fixed in advance: 5 seeds, two
    /// draws of each simulated profile, 4 real tasks, all six methods, the four noise
    /// protocols at 20% / σ 1, and the fraction and σ sweeps for query-only noise.
    #[test]
    fn standard_profile_has_the_fixed_grid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/standard.toml");
        let cfg = StudyConfig::from_file(&path).unwrap();
        assert!(cfg.seeds.len() >= 5);
        // All six methods, the neural ones in both arms.
        for m in KNOWN_METHODS {
            assert!(cfg.methods.iter().any(|x| x == m), "{m} missing");
        }
        let sims: Vec<&DatasetSpec> = cfg
            .datasets
            .iter()
            .filter(|d| matches!(d, DatasetSpec::Simulated { .. }))
            .collect();
        let reals = cfg.datasets.len() - sims.len();
        assert!(
            sims.len() >= 4 && reals >= 4,
            "{} simulated, {reals} real",
            sims.len()
        );
        let conds = cfg.conditions();
        for target in [NoiseTarget::Query, NoiseTarget::Both] {
            for zeros in [true, false] {
                assert!(
                    conds.iter().any(|c| c.fraction == 0.2
                        && c.sigma == 1.0
                        && c.target == target
                        && c.perturb_zeros == zeros),
                    "{target:?} zeros {zeros}"
                );
            }
        }
        let query = |f: f64, s: f64| {
            conds.iter().any(|c| {
                c.fraction == f && c.sigma == s && c.target == NoiseTarget::Query && c.perturb_zeros
            })
        };
        assert!([0.1, 0.2, 0.4].iter().all(|&f| query(f, 1.0)));
        assert!([0.5, 1.0, 2.0].iter().all(|&s| query(0.2, s)));
    }
}
