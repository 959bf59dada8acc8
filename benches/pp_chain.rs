//! The preprocessing chain normalize_total → log1p → HVG (seurat, 2000) → scale →
//! PCA (30) on a simulated 15,000 × 3,000 count matrix (gamma-Poisson, ~87% zeros),
//! fitted on all cells and applied to them (scanpy's `X_pca`).
//!
//! `PP_CHAIN_WRITE=DIR cargo bench --bench pp_chain` writes the same matrix as raw
//! little-endian CSR arrays (`indptr.u64`, `indices.u32`, `data.f32`, `shape.txt`)
//! for `benches/peers/scanpy_chain.py` and exits; `benches/pp_vs_scanpy.sh` does both.

use criterion::{criterion_group, Criterion};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma, LogNormal, Poisson};
use scrobust::data::{CsrMatrix, ValueKind};
use scrobust::pp::{HvgParams, Pca, PcaPipeline};
use std::io::Write;
use std::path::Path;

const N_CELLS: usize = 15_000;
const N_GENES: usize = 3_000;

/// Gamma-Poisson counts: gene means log-normal, inverse dispersion 2, cell size factors
/// log-normal; seeded, so Rust and Python see the same matrix.
fn simulate(seed: u64) -> CsrMatrix {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let gene_mean = LogNormal::new(-2.6, 1.3).expect("valid log-normal");
    let size = LogNormal::new(0.0, 0.3).expect("valid log-normal");
    let means: Vec<f64> = (0..N_GENES).map(|_| gene_mean.sample(&mut rng)).collect();
    let shape = 2.0;
    let mut indptr = vec![0usize];
    let (mut indices, mut data) = (Vec::new(), Vec::new());
    for _ in 0..N_CELLS {
        let s: f64 = size.sample(&mut rng);
        for (j, &m) in means.iter().enumerate() {
            let lambda = Gamma::new(shape, m * s / shape)
                .expect("valid gamma")
                .sample(&mut rng);
            let c = if lambda > 0.0 {
                Poisson::new(lambda)
                    .expect("valid poisson")
                    .sample(&mut rng)
            } else {
                0.0
            };
            if c > 0.0 {
                indices.push(j as u32);
                data.push(c as f32);
            }
        }
        indptr.push(indices.len());
    }
    CsrMatrix::new(N_CELLS, N_GENES, indptr, indices, data, "simulated").expect("valid CSR")
}

fn write_raw(x: &CsrMatrix, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let put = |name: &str, bytes: Vec<u8>| std::fs::write(dir.join(name), bytes);
    put(
        "indptr.u64",
        x.indptr()
            .iter()
            .flat_map(|&v| (v as u64).to_le_bytes())
            .collect(),
    )?;
    put(
        "indices.u32",
        x.indices().iter().flat_map(|v| v.to_le_bytes()).collect(),
    )?;
    put(
        "data.f32",
        x.data().iter().flat_map(|v| v.to_le_bytes()).collect(),
    )?;
    let mut f = std::fs::File::create(dir.join("shape.txt"))?;
    writeln!(f, "{} {}", x.n_rows(), x.n_cols())
}

fn chain(c: &mut Criterion) {
    let x = simulate(42);
    let zeros = 1.0 - x.nnz() as f64 / (N_CELLS * N_GENES) as f64;
    eprintln!("simulated {N_CELLS} x {N_GENES}, zero fraction {zeros:.3}");
    let pipeline = PcaPipeline::new()
        .hvg(HvgParams::new().n_top_genes(Some(2000)))
        .pca(Pca::new().n_components(30));
    let mut group = c.benchmark_group("pp_chain");
    group.sample_size(10);
    group.bench_function("normalize_log1p_hvg2000_scale_pca30_15k_x_3k", |b| {
        b.iter(|| {
            let fitted = pipeline.fit(&x, ValueKind::Counts).expect("chain fits");
            fitted.transform(&x).expect("chain transforms")
        })
    });
    group.finish();
}

criterion_group!(benches, chain);

fn main() {
    if let Some(dir) = std::env::var_os("PP_CHAIN_WRITE") {
        let x = simulate(42);
        write_raw(&x, Path::new(&dir)).expect("write simulated matrix");
        eprintln!(
            "wrote {} x {} ({} non-zeros) to {}",
            x.n_rows(),
            x.n_cols(),
            x.nnz(),
            Path::new(&dir).display()
        );
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
