//! The two simulation profiles that mirror the study's data sets: class names and
//! shares, lineages (classes of one lineage share differential expression, so they are
//! confused with each other more than with other lineages), reference and query
//! batches, and the strength of differential expression and of the batch shift.

use super::SimParams;
use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// Which data set a simulation mirrors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// Tumour-infiltrating myeloid cells (Cheng et al. 2021 as packaged by scGPT):
    /// ~13k cells, 21 classes, `CD14_Mono` dominant, reference and query from
    /// different cancer types. Library and dispersion parameters from Kang et al. PBMC.
    MyeloidLike,
    /// Human pancreas (Baron + Muraro reference, Xin + Segerstolpe query): ~15k cells,
    /// 14 classes. Library and dispersion parameters from the CITE-seq CBMC counts.
    PancreasLike,
}

impl Profile {
    /// Both profiles.
    pub const ALL: [Profile; 2] = [Profile::MyeloidLike, Profile::PancreasLike];

    /// The command-line name.
    pub fn name(&self) -> &'static str {
        match self {
            Profile::MyeloidLike => "myeloid-like",
            Profile::PancreasLike => "pancreas-like",
        }
    }

    /// Number of cells simulated when `n_cells` is not given.
    pub fn default_cells(&self) -> usize {
        self.spec().default_cells
    }

    /// Class names, in profile order (largest first).
    pub fn classes(&self) -> Vec<&'static str> {
        self.spec().classes.iter().map(|c| c.name).collect()
    }

    /// The obs column naming where each cell came from: `cancer_type` (myeloid-like)
    /// or `study` (pancreas-like). Each origin has its own batch factors.
    pub fn origin_column(&self) -> &'static str {
        match self {
            Profile::MyeloidLike => "cancer_type",
            Profile::PancreasLike => "study",
        }
    }

    /// Origins (values of [`Profile::origin_column`]) of reference cells.
    pub fn reference_origins(&self) -> &'static [&'static str] {
        self.spec().reference_batches
    }

    /// Origins (values of [`Profile::origin_column`]) of query cells.
    pub fn query_origins(&self) -> &'static [&'static str] {
        self.spec().query_batches
    }

    /// The embedded fitted parameters this profile uses by default.
    pub fn default_params(&self) -> Result<SimParams> {
        match self {
            Profile::MyeloidLike => SimParams::kang_pbmc(),
            Profile::PancreasLike => SimParams::cbmc(),
        }
    }

    pub(crate) fn spec(&self) -> ProfileSpec {
        match self {
            Profile::MyeloidLike => myeloid(),
            Profile::PancreasLike => pancreas(),
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Profile {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                Error::param(
                    "profile",
                    format!("unknown profile '{s}'; expected one of: myeloid-like, pancreas-like"),
                )
            })
    }
}

/// One class: name, lineage index, share in the reference, and whether it occurs in
/// the query at all.
#[derive(Debug, Clone)]
pub(crate) struct ClassSpec {
    pub name: &'static str,
    pub lineage: usize,
    pub share: f64,
    pub in_query: bool,
}

/// Differential-expression factors (Splatter `de.prob`, `de.downProb`, `de.facLoc`,
/// `de.facScale`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeSpec {
    pub prob: f64,
    pub down_prob: f64,
    pub loc: f64,
    pub scale: f64,
}

/// Everything a profile fixes besides the fitted [`SimParams`].
#[derive(Debug, Clone)]
pub(crate) struct ProfileSpec {
    pub default_cells: usize,
    pub classes: Vec<ClassSpec>,
    pub n_lineages: usize,
    /// Lineage-level DE, shared by the classes of a lineage.
    pub lineage_de: DeSpec,
    /// Class-level DE on top of the lineage.
    pub class_de: DeSpec,
    /// Fraction of cells in the reference.
    pub reference_fraction: f64,
    pub reference_batches: &'static [&'static str],
    pub query_batches: &'static [&'static str],
    /// Per-batch gene factors (Splatter `batch.facLoc`, `batch.facScale`; all genes).
    pub batch_fac: (f64, f64),
    /// Extra gene factors shared by all query batches: the reference→query shift.
    pub domain_fac: (f64, f64),
    /// Standard deviation of the per-batch offset of the log library size.
    pub batch_lib_sd: f64,
    /// Dirichlet concentration of the query's class shares around the reference's
    /// (larger: closer). The class named `pinned` keeps its share exactly.
    pub query_concentration: f64,
    pub pinned: Option<&'static str>,
}

fn class(name: &'static str, lineage: usize, share: f64) -> ClassSpec {
    ClassSpec {
        name,
        lineage,
        share,
        in_query: true,
    }
}

fn myeloid() -> ProfileSpec {
    // Lineages: 0 monocytes, 1 macrophages, 2 dendritic cells, 3 mast, 4 neutrophils,
    // 5 cycling. Shares loosely follow the scGPT Myeloid reference: CD14 monocytes
    // dominate, five classes are under 1%.
    let mut classes = vec![
        class("CD14_Mono", 0, 0.275),
        class("Macro_C1QC", 1, 0.12),
        class("Macro_SPP1", 1, 0.08),
        class("CD16_Mono", 0, 0.07),
        class("cDC2", 2, 0.065),
        class("Monolike_FCN1", 0, 0.06),
        class("Macro_LYVE1", 1, 0.05),
        class("Macro_NLRP3", 1, 0.045),
        class("Macro_INHBA", 1, 0.04),
        class("Macro_ISG15", 1, 0.035),
        class("Macro_IL1B", 1, 0.03),
        class("Macro_FN1", 1, 0.025),
        class("Mast_KIT", 3, 0.025),
        class("cDC3_LAMP3", 2, 0.02),
        class("Macro_GPNMB", 1, 0.015),
        class("Neutrophil", 4, 0.015),
        class("pDC_LILRA4", 2, 0.008),
        class("cDC1_CLEC9A", 2, 0.007),
        class("Cycling_Myeloid", 5, 0.006),
        class("Macro_CX3CR1", 1, 0.005),
        class("Macro_TREM2", 1, 0.004),
    ];
    for c in classes.iter_mut() {
        if matches!(c.name, "Macro_TREM2" | "Neutrophil") {
            c.in_query = false;
        }
    }
    ProfileSpec {
        default_cells: 13_178,
        classes,
        n_lineages: 6,
        lineage_de: DeSpec {
            prob: 0.1,
            down_prob: 0.5,
            loc: 0.5,
            scale: 0.4,
        },
        class_de: DeSpec {
            prob: 0.06,
            down_prob: 0.5,
            loc: 0.3,
            scale: 0.4,
        },
        reference_fraction: 0.74,
        reference_batches: &["BRCA", "ESCA", "PAAD", "UCEC"],
        query_batches: &["KIDNEY", "LYM", "THCA"],
        batch_fac: (0.05, 0.1),
        domain_fac: (0.1, 0.25),
        batch_lib_sd: 0.2,
        query_concentration: 60.0,
        pinned: Some("CD14_Mono"),
    }
}

fn pancreas() -> ProfileSpec {
    // Lineages: 0 endocrine, 1 exocrine, 2 stellate, 3 endothelial, 4 immune, 5 schwann.
    let mut classes = vec![
        class("alpha", 0, 0.322),
        class("beta", 0, 0.22),
        class("ductal", 1, 0.13),
        class("acinar", 1, 0.11),
        class("delta", 0, 0.06),
        class("stellate", 2, 0.05),
        class("gamma", 0, 0.04),
        class("endothelial", 3, 0.03),
        class("macrophage", 4, 0.015),
        class("mast", 4, 0.008),
        class("MHC class II", 4, 0.005),
        class("schwann", 5, 0.004),
        class("epsilon", 0, 0.003),
        class("t_cell", 4, 0.003),
    ];
    for c in classes.iter_mut() {
        if matches!(c.name, "schwann" | "t_cell") {
            c.in_query = false;
        }
    }
    ProfileSpec {
        default_cells: 14_818,
        classes,
        n_lineages: 6,
        lineage_de: DeSpec {
            prob: 0.25,
            down_prob: 0.5,
            loc: 1.5,
            scale: 0.5,
        },
        class_de: DeSpec {
            prob: 0.15,
            down_prob: 0.5,
            loc: 1.2,
            scale: 0.5,
        },
        reference_fraction: 0.715,
        reference_batches: &["baron", "muraro"],
        query_batches: &["segerstolpe", "xin"],
        batch_fac: (0.05, 0.15),
        domain_fac: (0.1, 0.2),
        batch_lib_sd: 0.3,
        query_concentration: 40.0,
        pinned: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Profile names parse back, unknown names give an error listing the valid ones.
    #[test]
    fn profile_from_str() {
        for p in Profile::ALL {
            assert_eq!(p.name().parse::<Profile>().unwrap(), p);
        }
        let e = "liver".parse::<Profile>().unwrap_err();
        assert!(e.to_string().contains("myeloid-like"), "{e}");
    }

    /// Class counts match the study (21 and 14), shares sum to one and names are unique.
    #[test]
    fn class_tables_are_consistent() {
        for (p, n) in [(Profile::MyeloidLike, 21), (Profile::PancreasLike, 14)] {
            let spec = p.spec();
            assert_eq!(spec.classes.len(), n);
            let total: f64 = spec.classes.iter().map(|c| c.share).sum();
            assert!((total - 1.0).abs() < 1e-9, "{p}: shares sum to {total}");
            let mut names = p.classes();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), n);
            assert!(spec.classes.iter().all(|c| c.lineage < spec.n_lineages));
        }
    }
}
