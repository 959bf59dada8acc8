//! Which of a cell's genes enter the sequence of a binned model.
//!
//! scGPT's annotation pipeline (`tutorials/Tutorial_Annotation.ipynb`,
//! `scgpt/tokenizer/gene_tokenizer.py`: `tokenize_batch(include_zero_gene=False)` then
//! `pad_batch`) keeps the non-zero genes of a cell and, when there are more than
//! `max_seq_len`, draws `max_seq_len` of them with `np.random.choice(..., replace=False)`
//! from numpy's global, unseeded generator. Here the draw takes an explicit RNG
//! ([`SelectionMode::RandomSubsample`]); the alternative [`SelectionMode::TopByValue`] keeps
//! the highest-valued genes (ties broken by gene index), which is deterministic.

use rand::Rng;

/// How to choose genes when a cell has more candidates than fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SelectionMode {
    /// scGPT: a uniform random subset without replacement, kept in gene order.
    #[default]
    RandomSubsample,
    /// The `max_genes` genes with the largest values, in decreasing value order
    /// (ties broken by the lower gene index first).
    TopByValue,
}

/// Gene selection for binned models: non-zero genes only (scGPT's
/// `include_zero_gene = false`), at most `max_genes` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SequenceSelection {
    /// Most genes kept per cell, `None` for all. Use the model's sequence length minus
    /// its special tokens (scGPT: `max_seq_len - 1` for `<cls>`).
    pub max_genes: Option<usize>,
    /// How to choose when there are more.
    pub mode: SelectionMode,
}

impl Default for SequenceSelection {
    /// All non-zero genes (no limit), random subsampling when a limit is set.
    fn default() -> Self {
        Self {
            max_genes: None,
            mode: SelectionMode::RandomSubsample,
        }
    }
}

impl SequenceSelection {
    /// Keep every non-zero gene.
    pub fn all() -> Self {
        Self::default()
    }

    /// At most `max_genes` genes chosen by `mode`.
    pub fn limit(max_genes: usize, mode: SelectionMode) -> Self {
        Self {
            max_genes: Some(max_genes),
            mode,
        }
    }

    /// Positions (into `values`) of the genes to keep. `values` are one cell's candidate
    /// values (non-zero genes, in gene order). Random mode returns positions in increasing
    /// order; top-by-value mode in decreasing value order.
    pub fn select<R: Rng + ?Sized>(&self, values: &[f32], rng: &mut R) -> Vec<usize> {
        let n = values.len();
        let k = self.max_genes.unwrap_or(n).min(n);
        match self.mode {
            SelectionMode::RandomSubsample => {
                if k == n {
                    return (0..n).collect();
                }
                let mut picked = rand::seq::index::sample(rng, n, k).into_vec();
                picked.sort_unstable();
                picked
            }
            SelectionMode::TopByValue => {
                let mut order: Vec<usize> = (0..n).collect();
                // total_cmp gives a total order even for NaN; callers reject NaN earlier.
                order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
                order.truncate(k);
                order
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Without a limit every position is kept in order, in both modes' random variant.
    #[test]
    fn no_limit_keeps_everything() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let s = SequenceSelection::all();
        assert_eq!(s.select(&[3.0, 1.0, 2.0], &mut rng), vec![0, 1, 2]);
    }

    /// Random subsampling keeps exactly k distinct positions, sorted, and is reproducible.
    #[test]
    fn random_subsample_is_seeded() {
        let values: Vec<f32> = (1..=20).map(|v| v as f32).collect();
        let s = SequenceSelection::limit(5, SelectionMode::RandomSubsample);
        let a = s.select(&values, &mut ChaCha8Rng::seed_from_u64(7));
        let b = s.select(&values, &mut ChaCha8Rng::seed_from_u64(7));
        assert_eq!(a, b);
        assert_eq!(a.len(), 5);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
    }

    /// Top-by-value keeps the largest values, ties going to the lower index.
    #[test]
    fn top_by_value_breaks_ties_by_index() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let s = SequenceSelection::limit(3, SelectionMode::TopByValue);
        assert_eq!(
            s.select(&[1.0, 5.0, 2.0, 5.0, 2.0], &mut rng),
            vec![1, 3, 2]
        );
    }
}
