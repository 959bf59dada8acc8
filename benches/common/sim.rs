//! A seeded, sparse count matrix shaped like the study's data (~3000 genes, ~87% zeros,
//! many small tied counts) and its binary exchange format for the numpy peer.
//!
//! Format (little endian): b"SCRBCSR1", u64 n_rows, u64 n_cols, u64 nnz, then indptr as
//! u64 × (n_rows + 1), indices as u32 × nnz, data as f32 × nnz.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal};
use scrobust::data::CsrMatrix;
use std::io::Write;

/// `n_cells × n_genes` counts: each cell expresses 250–550 genes (gene popularity skewed),
/// counts `1 + ⌊LogNormal(0, 1.2) × gene scale⌋`.
pub fn simulate_counts(n_cells: usize, n_genes: usize, seed: u64) -> CsrMatrix {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let scale: Vec<f64> = (0..n_genes).map(|_| rng.gen_range(0.2..3.0)).collect();
    let noise = LogNormal::new(0.0, 1.2).expect("valid log-normal");
    let mut indptr = vec![0usize];
    let mut indices = Vec::new();
    let mut data = Vec::new();
    let mut genes: Vec<u32> = Vec::new();
    for _ in 0..n_cells {
        let k = rng.gen_range(250..550).min(n_genes);
        genes.clear();
        // Skewed gene choice: squaring a uniform favours low gene indices.
        while genes.len() < k {
            let u: f64 = rng.gen();
            let g = ((u * u) * n_genes as f64) as u32;
            if !genes.contains(&g) {
                genes.push(g);
            }
        }
        genes.sort_unstable();
        for &g in &genes {
            indices.push(g);
            data.push(1.0 + (noise.sample(&mut rng) * scale[g as usize]).floor() as f32);
        }
        indptr.push(indices.len());
    }
    CsrMatrix::new(n_cells, n_genes, indptr, indices, data, "simulated").expect("valid CSR")
}

/// Write `x` in the exchange format.
// Used by the throughput example, not by the criterion bench that shares this file.
#[allow(dead_code)]
pub fn write_csr(x: &CsrMatrix, path: &std::path::Path) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    out.write_all(b"SCRBCSR1")?;
    for v in [x.n_rows() as u64, x.n_cols() as u64, x.nnz() as u64] {
        out.write_all(&v.to_le_bytes())?;
    }
    for &p in x.indptr() {
        out.write_all(&(p as u64).to_le_bytes())?;
    }
    for &i in x.indices() {
        out.write_all(&i.to_le_bytes())?;
    }
    for &d in x.data() {
        out.write_all(&d.to_le_bytes())?;
    }
    out.flush()
}
