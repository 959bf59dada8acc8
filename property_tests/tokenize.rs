//! Properties of the tokenizers (binning, rank encoding), Gaussian noise and the
//! information measures. Case count from `PROPTEST_CASES` (CI: 256).

use crate::strategies::{
    cell_counts_strat, cell_distinct_strat, cell_float_strat, count_matrix_strat,
};
use approx::assert_abs_diff_eq;
use proptest::prelude::*;
use scrobust::data::{CsrMatrix, ValueKind};
use scrobust::perturb::{GaussianNoise, ZeroHandling};
use scrobust::tokenize::binning::digitize_left_right;
use scrobust::tokenize::info::{measure, InfoTokenizer};
use scrobust::tokenize::{
    cell_rng, collate, tokenize_binned, BinningTokenizer, CollateSpec, FittedRank,
    RankTokenizerParams, SelectionMode, SequenceSelection, TieMode, CLS_ID, EOS_ID, PAD_ID,
};

fn tie_mode() -> impl Strategy<Value = TieMode> {
    prop_oneof![Just(TieMode::Random), Just(TieMode::Left)]
}

fn bins(values: &[f32], n_bins: usize, mode: TieMode, seed: u64) -> Vec<u32> {
    let t = BinningTokenizer::new(n_bins, mode).unwrap();
    t.bin_values(values, &mut cell_rng(seed, 0)).unwrap()
}

/// Ids of a matrix's columns as gene tokens (4 = first gene id).
fn ids(n: usize) -> Vec<u32> {
    (0..n as u32).map(|c| c + 4).collect()
}

proptest! {
    /// Bins lie in [0, n_bins), zero ↔ bin 0, and at most n_bins − 1 distinct non-zero bins.
    #[test]
    fn binning_range_and_zero(v in cell_counts_strat(80), n_bins in 2usize..60, mode in tie_mode(), seed in any::<u64>()) {
        let b = bins(&v, n_bins, mode, seed);
        prop_assert!(b.iter().all(|&x| (x as usize) < n_bins));
        for (x, bin) in v.iter().zip(&b) {
            prop_assert_eq!(*x == 0.0, *bin == 0);
        }
        let mut distinct: Vec<u32> = b.iter().copied().filter(|&x| x > 0).collect();
        distinct.sort_unstable();
        distinct.dedup();
        prop_assert!(distinct.len() < n_bins);
    }

    /// The rank-based bins equal np.digitize against the quantile edges: the left digit in
    /// left mode, a value in right+1..=left (left when they agree) in random mode.
    #[test]
    fn binning_matches_edge_digitize(v in cell_float_strat(120), n_bins in 2usize..200, seed in any::<u64>()) {
        let t = BinningTokenizer::new(n_bins, TieMode::Left).unwrap();
        let mut sorted: Vec<f64> = v.iter().filter(|&&x| x > 0.0).map(|&x| x as f64).collect();
        sorted.sort_by(f64::total_cmp);
        let edges = t.edges(&sorted);
        let left = bins(&v, n_bins, TieMode::Left, seed);
        let random = bins(&v, n_bins, TieMode::Random, seed);
        for (i, &x) in v.iter().enumerate() {
            if x > 0.0 {
                let (l, r) = digitize_left_right(x as f64, &edges);
                prop_assert_eq!(left[i] as usize, l, "value {} edges {:?}", x, edges);
                // Off an edge l == r and the bin is l; on edges it is uniform in r+1..=l.
                let lo = if l == r { l } else { r + 1 };
                prop_assert!((lo..=l).contains(&(random[i] as usize)), "value {} bin {} not in {}..={}", x, random[i], lo, l);
            }
        }
    }

    /// Binning is monotone within a cell: a > b ⇒ bin(a) ≥ bin(b), in both tie modes.
    #[test]
    fn binning_monotone(v in cell_counts_strat(80), n_bins in 2usize..60, mode in tie_mode(), seed in any::<u64>()) {
        let b = bins(&v, n_bins, mode, seed);
        for i in 0..v.len() {
            for j in 0..v.len() {
                if v[i] > v[j] {
                    prop_assert!(b[i] >= b[j], "{} > {} but bins {} < {}", v[i], v[j], b[i], b[j]);
                }
            }
        }
    }

    /// Per-cell positive scaling and strictly increasing maps with f(0) = 0 leave the
    /// bins unchanged (same seed, both tie modes).
    #[test]
    fn binning_invariant_to_scaling_and_monotone_maps(
        v in cell_counts_strat(80), n_bins in 2usize..60, mode in tie_mode(), seed in any::<u64>(), scale in 0.01f32..100.0,
    ) {
        let base = bins(&v, n_bins, mode, seed);
        let scaled: Vec<f32> = v.iter().map(|x| x * scale).collect();
        prop_assert_eq!(&bins(&scaled, n_bins, mode, seed), &base);
        let logged: Vec<f32> = v.iter().map(|x| (x / 7.0).ln_1p()).collect();
        prop_assert_eq!(&bins(&logged, n_bins, mode, seed), &base);
        let sqrt: Vec<f32> = v.iter().map(|x| x.sqrt()).collect();
        prop_assert_eq!(&bins(&sqrt, n_bins, mode, seed), &base);
    }

    /// Same seed ⇒ same tokens for a whole matrix, with random subsampling.
    #[test]
    fn binning_same_seed_same_tokens(x in count_matrix_strat(8, 40), seed in any::<u64>(), k in 1usize..10) {
        let t = BinningTokenizer::default();
        let sel = SequenceSelection::limit(k, SelectionMode::RandomSubsample);
        let a = tokenize_binned(&x, &ids(x.n_cols()), &t, &sel, seed).unwrap();
        let b = tokenize_binned(&x, &ids(x.n_cols()), &t, &sel, seed).unwrap();
        prop_assert_eq!(&a, &b);
        prop_assert!(a.iter().all(|c| c.len() <= k));
    }

    /// Rank encoding (before truncation) is a permutation of the cell's non-zero genes
    /// in non-increasing normalized value.
    #[test]
    fn rank_is_sorted_permutation(x in count_matrix_strat(10, 40)) {
        let f = RankTokenizerParams::v1().fit(&x).unwrap();
        for r in 0..x.n_rows() {
            let (idx, val) = x.row(r);
            let ranked = f.rank_row(idx, val);
            let mut cols: Vec<u32> = ranked.iter().map(|p| p.0).collect();
            prop_assert!(ranked.windows(2).all(|w| w[0].1 >= w[1].1));
            cols.sort_unstable();
            let nonzero: Vec<u32> = idx.iter().zip(val).filter(|(_, &v)| v > 0.0).map(|(&c, _)| c).collect();
            prop_assert_eq!(cols, nonzero);
        }
    }

    /// Rank encoding is invariant under per-cell scaling of counts (power-of-two factors
    /// are exact in floating point; other factors can only reorder exactly equal ratios).
    #[test]
    fn rank_invariant_to_cell_scaling(x in count_matrix_strat(10, 40), k in -4i32..8) {
        let f = RankTokenizerParams::v1().fit(&x).unwrap();
        let scaled = x.map_values(|v| v * 2f32.powi(k));
        for r in 0..x.n_rows() {
            let (i1, v1) = x.row(r);
            let (i2, v2) = scaled.row(r);
            let a = f.tokenize_row(i1, v1, &ids(x.n_cols()));
            let b = f.tokenize_row(i2, v2, &ids(x.n_cols()));
            prop_assert_eq!(a, b);
        }
    }

    /// Length ≤ the gene budget, and collation puts <cls> first and <eos> right after the
    /// last gene (V2), padding after that.
    #[test]
    fn rank_length_and_special_tokens(x in count_matrix_strat(6, 40), max_len in 3usize..20) {
        let p = RankTokenizerParams::v2().with_max_len(max_len);
        let f = p.fit(&x).unwrap();
        let cells = scrobust::tokenize::tokenize_rank(&x, &ids(x.n_cols()), &f).unwrap();
        prop_assert!(cells.iter().all(|c| c.len() <= max_len - 2));
        let refs: Vec<_> = cells.iter().collect();
        let batch = collate(&refs, None, &p.collate_spec()).unwrap();
        prop_assert!(batch.seq_len <= max_len);
        for (i, c) in cells.iter().enumerate() {
            let row = &batch.gene_ids[i * batch.seq_len..(i + 1) * batch.seq_len];
            prop_assert_eq!(row[0], CLS_ID);
            prop_assert_eq!(&row[1..=c.len()], &c.gene_ids[..]);
            prop_assert_eq!(row[c.len() + 1], EOS_ID);
            prop_assert!(row[c.len() + 2..].iter().all(|&t| t == PAD_ID));
            let mask = &batch.attention_mask[i * batch.seq_len..(i + 1) * batch.seq_len];
            prop_assert_eq!(mask.iter().filter(|&&m| m == 1).count(), c.len() + 2);
        }
    }

    /// sigma = 0 is the identity.
    #[test]
    fn noise_zero_sigma_identity(x in count_matrix_strat(10, 30), fraction in 0.0f64..=1.0, seed in any::<u64>()) {
        let p = GaussianNoise::new(fraction, 0.0).apply(&x, ValueKind::Counts, seed).unwrap();
        prop_assert_eq!(p.x, x);
    }

    /// Exactly round(fraction·n) cells change, all others are bit-identical, no value is
    /// negative with clipping, and the same seed gives the same output.
    #[test]
    fn noise_changes_exactly_the_chosen_cells(
        x in count_matrix_strat(12, 30), fraction in 0.0f64..=1.0, sigma in 0.1f64..3.0, seed in any::<u64>(), keep in any::<bool>(),
    ) {
        let noise = GaussianNoise {
            fraction,
            sigma,
            zeros: if keep { ZeroHandling::Keep } else { ZeroHandling::Perturb },
            ..GaussianNoise::default()
        };
        let p = noise.apply(&x, ValueKind::Counts, seed).unwrap();
        let expected = (fraction * x.n_rows() as f64).round() as usize;
        prop_assert_eq!(p.perturbed_cells.len(), expected);
        let changed: Vec<usize> = (0..x.n_rows()).filter(|&r| p.x.row(r) != x.row(r)).collect();
        prop_assert_eq!(&changed, &p.perturbed_cells);
        prop_assert!(p.x.data().iter().all(|&v| v >= 0.0));
        prop_assert_eq!(p, noise.apply(&x, ValueKind::Counts, seed).unwrap());
    }

    /// Binning's within-cell mutual information never exceeds log2(n_bins − 1).
    #[test]
    fn binning_information_bounded(x in count_matrix_strat(8, 60), n_bins in 3usize..60, mode in tie_mode()) {
        let t = BinningTokenizer::new(n_bins, mode).unwrap();
        let r = measure(&x, ValueKind::Counts, InfoTokenizer::Binning(&t), 0).unwrap();
        let bound = ((n_bins - 1) as f64).log2() + 1e-9;
        for c in &r.per_cell {
            prop_assert!(c.mutual_information_bits <= bound, "{} > {}", c.mutual_information_bits, bound);
            prop_assert!(c.mutual_information_bits <= c.value_entropy_bits + 1e-9);
        }
    }

    /// Rank encoding keeps a cell's within-cell order: Spearman = 1 on the kept genes
    /// and MI equals the value entropy.
    #[test]
    fn rank_keeps_within_cell_order(v in cell_distinct_strat(60)) {
        let x = CsrMatrix::from_dense(&ndarray::Array2::from_shape_vec((1, v.len()), v.clone()).unwrap());
        let f = FittedRank::from_medians(RankTokenizerParams::v1(), vec![1.0; v.len()]).unwrap();
        let r = measure(&x, ValueKind::Counts, InfoTokenizer::Rank(&f), 0).unwrap();
        assert_abs_diff_eq!(r.per_cell[0].spearman.unwrap(), 1.0, epsilon = 1e-12);
        assert_abs_diff_eq!(r.per_cell[0].mutual_information_bits, r.per_cell[0].value_entropy_bits, epsilon = 1e-9);
    }
}

/// The CollateSpec for scGPT is used by binned cells: <cls> value 0, pads −2.
#[test]
fn scgpt_collate_of_binned_cells() {
    let x = CsrMatrix::from_dense(&ndarray::array![[1.0f32, 0.0, 2.0], [3.0, 4.0, 5.0]]);
    let cells = tokenize_binned(
        &x,
        &ids(3),
        &BinningTokenizer::default(),
        &SequenceSelection::all(),
        0,
    )
    .unwrap();
    let refs: Vec<_> = cells.iter().collect();
    let b = collate(&refs, Some(&[0, 1]), &CollateSpec::scgpt(10)).unwrap();
    assert_eq!(b.seq_len, 4);
    assert_eq!(b.values[0], 0.0);
    assert_eq!(b.values[3], -2.0);
}
