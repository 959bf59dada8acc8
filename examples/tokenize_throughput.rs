//! Tokenization throughput on a simulated 15k × 3000 count matrix, for
//! `benches/tokenize_vs_numpy.sh`: writes the matrix for the numpy peer, times binning,
//! rank encoding and one read pass over the CSR arrays, and prints one JSON line.
//!
//! `cargo run --release --example tokenize_throughput -- [--cells N] [--genes G]
//! [--repeats R] [--write FILE]`

#[path = "../benches/common/sim.rs"]
mod sim;

use rayon::prelude::*;
use scrobust::data::CsrMatrix;
use scrobust::tokenize::{
    tokenize_binned, tokenize_rank, BinningTokenizer, RankTokenizerParams, SequenceSelection,
};
use std::time::Instant;

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

/// Best wall time of `repeats` runs of `f`, in seconds.
fn best<T>(repeats: usize, mut f: impl FnMut() -> T) -> f64 {
    (0..repeats.max(1))
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// One parallel read of every CSR array (the floor for any tokenizer that reads them).
fn memory_pass(x: &CsrMatrix) -> f64 {
    (0..x.n_rows())
        .into_par_iter()
        .map(|r| {
            let (idx, val) = x.row(r);
            val.iter().map(|&v| v as f64).sum::<f64>()
                + idx.iter().map(|&i| i as f64).sum::<f64>()
                + x.indptr()[r] as f64
        })
        .sum()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let cells: usize = arg(&args, "--cells", "15000").parse()?;
    let genes: usize = arg(&args, "--genes", "3000").parse()?;
    let repeats: usize = arg(&args, "--repeats", "5").parse()?;
    let x = sim::simulate_counts(cells, genes, 0);
    if let Some(i) = args.iter().position(|a| a == "--write") {
        let path = args.get(i + 1).ok_or("--write needs a path")?;
        sim::write_csr(&x, std::path::Path::new(path))?;
    }
    let ids: Vec<u32> = (0..genes as u32).map(|g| g + 4).collect();
    let binning = BinningTokenizer::default();
    let all = SequenceSelection::all();
    let t_bin = best(repeats, || {
        tokenize_binned(&x, &ids, &binning, &all, 0).map(|c| c.len())
    });
    let fitted = RankTokenizerParams::v1().fit(&x)?;
    let t_rank = best(repeats, || {
        tokenize_rank(&x, &ids, &fitted).map(|c| c.len())
    });
    let t_mem = best(repeats, || memory_pass(&x));
    println!(
        "{{\"cells\": {cells}, \"genes\": {genes}, \"nnz\": {}, \"threads\": {}, \"binning_s\": {t_bin:.6}, \"rank_s\": {t_rank:.6}, \"memory_pass_s\": {t_mem:.6}, \"binning_cells_per_s\": {:.1}, \"rank_cells_per_s\": {:.1}, \"memory_pass_cells_per_s\": {:.1}}}",
        x.nnz(),
        rayon::current_num_threads(),
        cells as f64 / t_bin,
        cells as f64 / t_rank,
        cells as f64 / t_mem,
    );
    Ok(())
}
