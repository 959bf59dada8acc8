//! Approximate nearest neighbours with a forest of random-projection trees, after Annoy
//! (Bernhardsson, spotify/annoy `annoylib.h`), the index Seurat uses for anchors
//! (`nn.method = "annoy"`, `n.trees = 50`, `search.k = -1`).
//!
//! Build: every tree splits its points recursively by the hyperplane half-way between two
//! centroids found by Annoy's `two_means` (two sampled points refined on 200 random
//! points), retrying up to three times when one side would hold more than 95% of the
//! points and falling back to a random split; nodes with at most `leaf_size` points
//! (Annoy's `_K = dim + 2` for Euclidean f32 indices) become leaves. Search: one priority
//! queue over all trees keyed by the smallest margin seen on the path (`min(d, ±margin)`),
//! popping nodes until `search_k` candidates (default `n_trees · k`) are collected, then
//! exact distances of the distinct candidates pick the `k` nearest.
//!
//! Differences from Annoy: every tree has its own seeded ChaCha8 stream (seed + tree
//! number), so the forest is reproducible for a seed but is not Annoy's own forest;
//! distances are computed in f64; the search continues past `search_k` until at least
//! `k` distinct candidates are found.

use super::neighbors::Neighbors;
use crate::error::{Error, Result};
use ndarray::ArrayView2;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::collections::BinaryHeap;

/// Parameters of the random-projection forest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnoyParams {
    /// Trees in the forest, defaults to 50 (Seurat's `n.trees`).
    pub n_trees: usize,
    /// Candidates examined per query; `None` (default) means `n_trees · k`, as Annoy's
    /// `search_k = -1`.
    pub search_k: Option<usize>,
    /// Seed of the tree construction, defaults to 42.
    pub seed: u64,
}

impl Default for AnnoyParams {
    fn default() -> Self {
        Self {
            n_trees: 50,
            search_k: None,
            seed: 42,
        }
    }
}

enum Node {
    Split {
        normal: Vec<f32>,
        offset: f32,
        children: [usize; 2],
    },
    Leaf(Vec<u32>),
}

/// A built forest over the rows of a data matrix (held as one contiguous row-major copy,
/// so that distances and margins run over slices).
pub struct AnnoyIndex {
    data: Rows,
    nodes: Vec<Node>,
    roots: Vec<usize>,
}

/// Row-major points.
struct Rows {
    values: Vec<f32>,
    dim: usize,
}

impl Rows {
    fn new(x: ArrayView2<f32>) -> Self {
        Self {
            values: x.iter().copied().collect(),
            dim: x.ncols(),
        }
    }
    fn len(&self) -> usize {
        self.values.len().checked_div(self.dim).unwrap_or(0)
    }
    fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.dim..(i + 1) * self.dim]
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn sq_dist(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Euclidean distance accumulated in f64.
fn distance(a: &[f32], b: &[f32]) -> f32 {
    let s: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| ((x - y) as f64).powi(2))
        .sum();
    s.sqrt() as f32
}

impl AnnoyIndex {
    /// Build the forest over the rows of `data`.
    pub fn build(data: ArrayView2<f32>, params: &AnnoyParams) -> Result<Self> {
        if params.n_trees == 0 {
            return Err(Error::param("n_trees", "must be at least 1"));
        }
        if params.search_k == Some(0) {
            return Err(Error::param("search_k", "must be at least 1"));
        }
        let leaf_size = data.ncols() + 2;
        let all: Vec<u32> = (0..data.nrows() as u32).collect();
        let data = Rows::new(data);
        let trees: Vec<Vec<Node>> = (0..params.n_trees)
            .into_par_iter()
            .map(|t| {
                let mut rng = ChaCha8Rng::seed_from_u64(params.seed.wrapping_add(t as u64));
                let mut nodes = Vec::new();
                build_node(&data, all.clone(), leaf_size, &mut rng, &mut nodes);
                nodes
            })
            .collect();
        // One node list; each tree's root is the last node it pushed.
        let mut nodes = Vec::new();
        let mut roots = Vec::new();
        for tree in trees {
            let base = nodes.len();
            roots.push(base + tree.len() - 1);
            nodes.extend(tree.into_iter().map(|n| match n {
                Node::Split {
                    normal,
                    offset,
                    children,
                } => Node::Split {
                    normal,
                    offset,
                    children: [children[0] + base, children[1] + base],
                },
                leaf => leaf,
            }));
        }
        Ok(Self { data, nodes, roots })
    }

    /// The `k` (approximate) nearest rows of the data to `q`, nearest first, with their
    /// distances. `seen` is scratch space of one `usize` per data row, `stamp` a value
    /// not yet stored in it.
    fn search(
        &self,
        q: &[f32],
        k: usize,
        search_k: usize,
        seen: &mut [usize],
        stamp: usize,
    ) -> Vec<(f32, usize)> {
        let mut heap: BinaryHeap<(Priority, usize)> = self
            .roots
            .iter()
            .map(|&r| (Priority(f32::INFINITY), r))
            .collect();
        let mut found: Vec<usize> = Vec::with_capacity(search_k + 64);
        let mut n_visited = 0;
        while let Some((Priority(d), node)) = heap.pop() {
            if n_visited >= search_k && found.len() >= k {
                break;
            }
            match &self.nodes[node] {
                Node::Leaf(items) => {
                    n_visited += items.len();
                    for &i in items {
                        let i = i as usize;
                        if seen[i] != stamp {
                            seen[i] = stamp;
                            found.push(i);
                        }
                    }
                }
                Node::Split {
                    normal,
                    offset,
                    children,
                } => {
                    let margin = dot(normal, q) + offset;
                    heap.push((Priority(d.min(margin)), children[1]));
                    heap.push((Priority(d.min(-margin)), children[0]));
                }
            }
        }
        // Rank candidates by f32 squared distance, keep a margin of extra ones, then
        // order the final set by the f64 distance.
        let mut out: Vec<(f32, usize)> = found
            .into_iter()
            .map(|i| (sq_dist(q, self.data.row(i)), i))
            .collect();
        let keep = (2 * k).min(out.len());
        if keep < out.len() {
            out.select_nth_unstable_by(keep, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            out.truncate(keep);
        }
        for item in out.iter_mut() {
            item.0 = distance(q, self.data.row(item.1));
        }
        out.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        out.truncate(k);
        out
    }

    /// Approximate `k` nearest neighbours of every row of `query`.
    pub fn query(
        &self,
        query: ArrayView2<f32>,
        k: usize,
        params: &AnnoyParams,
    ) -> Result<Neighbors> {
        let (n_data, dim) = (self.data.len(), self.data.dim);
        super::neighbors::check_search(n_data, dim, query.ncols(), k)?;
        let search_k = params.search_k.unwrap_or(params.n_trees * k);
        let query = Rows::new(query);
        let rows: Vec<Vec<(f32, usize)>> = (0..query.len())
            .into_par_iter()
            .map_init(
                || vec![usize::MAX; n_data],
                |seen, i| self.search(query.row(i), k, search_k, seen, i),
            )
            .collect();
        let mut indices = Vec::with_capacity(rows.len() * k);
        let mut distances = Vec::with_capacity(rows.len() * k);
        for r in rows {
            distances.extend(r.iter().map(|x| x.0));
            indices.extend(r.iter().map(|x| x.1));
        }
        Ok(Neighbors::from_parts(k, indices, distances))
    }
}

/// Max-heap key: larger margins are searched first; NaN never occurs for finite data.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Priority(f32);
impl Eq for Priority {}
impl PartialOrd for Priority {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Priority {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Build the subtree over `items`; pushes its nodes (children first) and returns the
/// index of its root.
fn build_node(
    data: &Rows,
    items: Vec<u32>,
    leaf_size: usize,
    rng: &mut ChaCha8Rng,
    nodes: &mut Vec<Node>,
) -> usize {
    if items.len() <= leaf_size.max(1) {
        nodes.push(Node::Leaf(items));
        return nodes.len() - 1;
    }
    let mut split = None;
    for _ in 0..3 {
        let (normal, offset) = two_means(data, &items, rng);
        let sides: Vec<bool> = items
            .iter()
            .map(|&i| dot(&normal, data.row(i as usize)) + offset > 0.0)
            .collect();
        let n_right = sides.iter().filter(|&&s| s).count();
        let imbalance = n_right.max(items.len() - n_right) as f64 / items.len() as f64;
        if imbalance <= 0.95 {
            split = Some((normal, offset, sides));
            break;
        }
    }
    let (normal, offset, sides) = split.unwrap_or_else(|| {
        // Annoy's fallback for (near-)duplicate points: a random half split, with a
        // zero hyperplane so that the search explores both sides equally.
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.shuffle(rng);
        let mut sides = vec![false; items.len()];
        for &o in &order[..items.len() / 2] {
            sides[o] = true;
        }
        (vec![0.0; data.dim], 0.0, sides)
    });
    let (mut left, mut right) = (Vec::new(), Vec::new());
    for (&i, &s) in items.iter().zip(&sides) {
        if s {
            right.push(i);
        } else {
            left.push(i);
        }
    }
    drop(items);
    let l = build_node(data, left, leaf_size, rng, nodes);
    let r = build_node(data, right, leaf_size, rng, nodes);
    nodes.push(Node::Split {
        normal,
        offset,
        children: [l, r],
    });
    nodes.len() - 1
}

/// Annoy's `two_means` for Euclidean distance: two centroids grown from two random
/// points over 200 random points, and the hyperplane half-way between them (unit normal
/// `p − q`, offset `−normal · (p + q) / 2`).
fn two_means(data: &Rows, items: &[u32], rng: &mut ChaCha8Rng) -> (Vec<f32>, f32) {
    let n = items.len();
    let i = rng.gen_range(0..n);
    let mut j = rng.gen_range(0..n - 1);
    j += usize::from(j >= i);
    let mut p: Vec<f32> = data.row(items[i] as usize).to_vec();
    let mut q: Vec<f32> = data.row(items[j] as usize).to_vec();
    let (mut ic, mut jc) = (1.0f32, 1.0f32);
    for _ in 0..200 {
        let x = data.row(items[rng.gen_range(0..n)] as usize);
        let di = ic * sq_dist(&p, x);
        let dj = jc * sq_dist(&q, x);
        if di < dj {
            for (a, &b) in p.iter_mut().zip(x) {
                *a = (*a * ic + b) / (ic + 1.0);
            }
            ic += 1.0;
        } else if dj < di {
            for (a, &b) in q.iter_mut().zip(x) {
                *a = (*a * jc + b) / (jc + 1.0);
            }
            jc += 1.0;
        }
    }
    let mut normal: Vec<f32> = p.iter().zip(&q).map(|(a, b)| a - b).collect();
    let norm = normal.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        normal.iter_mut().for_each(|v| *v /= norm);
    }
    let offset = -normal
        .iter()
        .zip(p.iter().zip(&q))
        .map(|(w, (a, b))| w * (a + b) / 2.0)
        .sum::<f32>();
    (normal, offset)
}

/// Approximate `k` nearest neighbours in `data` of each row of `query` (builds the
/// forest, then searches it).
pub fn knn_annoy(
    data: ArrayView2<f32>,
    query: ArrayView2<f32>,
    k: usize,
    params: &AnnoyParams,
) -> Result<Neighbors> {
    AnnoyIndex::build(data, params)?.query(query, k, params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::neighbors::knn_exact;
    use ndarray::Array2;
    use rand_distr::{Distribution, StandardNormal};

    /// Clustered 30-dimensional points, like a PCA embedding.
    fn clustered(n: usize, seed: u64) -> Array2<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let centres = Array2::<f32>::from_shape_fn((8, 30), |_| {
            3.0 * <StandardNormal as Distribution<f64>>::sample(&StandardNormal, &mut rng) as f32
        });
        Array2::from_shape_fn((n, 30), |(i, j)| {
            centres[[i % 8, j]]
                + <StandardNormal as Distribution<f64>>::sample(&StandardNormal, &mut rng) as f32
        })
    }

    /// With Seurat's settings (50 trees, search_k = 50·k) recall against exact search is
    /// at least 0.9, and every returned distance is the true distance, ascending.
    #[test]
    fn recall_against_exact() {
        let data = clustered(1500, 1);
        let query = clustered(200, 2);
        let k = 10;
        let params = AnnoyParams::default();
        let approx = knn_annoy(data.view(), query.view(), k, &params).unwrap();
        let exact = knn_exact(data.view(), query.view(), k).unwrap();
        let hits: usize = (0..200)
            .map(|i| {
                approx
                    .indices(i)
                    .iter()
                    .filter(|j| exact.indices(i).contains(j))
                    .count()
            })
            .sum();
        let recall = hits as f64 / (200 * k) as f64;
        assert!(recall >= 0.9, "recall {recall}");
        for i in 0..200 {
            assert!(approx.distances(i).windows(2).all(|w| w[0] <= w[1]));
            let j = approx.indices(i)[0];
            let d = distance(
                query.row(i).as_slice().unwrap_or(&[]),
                data.row(j).as_slice().unwrap_or(&[]),
            );
            assert_eq!(approx.distances(i)[0], d);
        }
    }

    /// The same seed gives the same neighbours; another seed builds another forest.
    #[test]
    fn deterministic_for_a_seed() {
        let data = clustered(600, 3);
        let params = AnnoyParams {
            n_trees: 5,
            search_k: Some(40),
            seed: 7,
        };
        let a = knn_annoy(data.view(), data.view(), 5, &params).unwrap();
        let b = knn_annoy(data.view(), data.view(), 5, &params).unwrap();
        assert_eq!(a, b);
        let c = knn_annoy(
            data.view(),
            data.view(),
            5,
            &AnnoyParams { seed: 8, ..params },
        )
        .unwrap();
        assert_ne!(a, c);
    }

    /// Duplicate points (no separating hyperplane) still give k distinct neighbours, and
    /// bad parameters are errors.
    #[test]
    fn duplicates_and_bad_params() {
        let data = Array2::<f32>::ones((100, 4));
        let nn = knn_annoy(data.view(), data.view(), 6, &AnnoyParams::default()).unwrap();
        for i in 0..100 {
            let mut idx = nn.indices(i).to_vec();
            idx.dedup();
            assert_eq!(idx.len(), 6);
        }
        let bad = AnnoyParams {
            n_trees: 0,
            ..Default::default()
        };
        assert!(knn_annoy(data.view(), data.view(), 3, &bad).is_err());
        assert!(knn_annoy(data.view(), data.view(), 101, &AnnoyParams::default()).is_err());
    }
}
