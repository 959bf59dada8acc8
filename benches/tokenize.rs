//! Criterion benchmark of the two tokenizers on a simulated 2000 × 3000 count matrix
//! (the peer comparison at 15k cells is `benches/tokenize_vs_numpy.sh`).

#[path = "common/sim.rs"]
mod sim;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use scrobust::tokenize::{
    tokenize_binned, tokenize_rank, BinningTokenizer, RankTokenizerParams, SequenceSelection,
};

fn bench_tokenizers(c: &mut Criterion) {
    let cells = 2000;
    let x = sim::simulate_counts(cells, 3000, 0);
    let ids: Vec<u32> = (0..3000u32).map(|g| g + 4).collect();
    let mut group = c.benchmark_group("tokenize");
    group.throughput(Throughput::Elements(cells as u64));
    let binning = BinningTokenizer::default();
    let all = SequenceSelection::all();
    group.bench_function("binning_51", |b| {
        b.iter(|| tokenize_binned(&x, &ids, &binning, &all, 0))
    });
    let fitted = RankTokenizerParams::v1().fit(&x).expect("fit medians");
    group.bench_function("rank_v1", |b| b.iter(|| tokenize_rank(&x, &ids, &fitted)));
    group.finish();
}

criterion_group!(benches, bench_tokenizers);
criterion_main!(benches);
