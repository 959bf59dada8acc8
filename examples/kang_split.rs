//! Write a data set's reference and query cells as two h5ad files, from its fixed cell
//! lists, so that `scrobust train --reference/--query` can run on a shipped task.
//!
//! `cargo run --release --example kang_split -- OUT_DIR` writes `OUT_DIR/kang_ref.h5ad`
//! and `OUT_DIR/kang_query.h5ad` from `data/muscat_kang_pbmc.h5ad` and
//! `data/splits/kang/{ref,query}_cells.txt`.

use scrobust::data::h5ad::{read_h5ad, write_h5ad, ReadOptions};
use scrobust::data::split::{read_cell_list, split_by_cell_ids};
use std::path::{Path, PathBuf};

fn main() -> scrobust::error::Result<()> {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".to_string()));
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let ds = read_h5ad(&data.join("muscat_kang_pbmc.h5ad"), &ReadOptions::default())?;
    let refs = read_cell_list(&data.join("splits/kang/ref_cells.txt"))?;
    let query = read_cell_list(&data.join("splits/kang/query_cells.txt"))?;
    let (r, q) = split_by_cell_ids(&ds, &refs, &query)?;
    write_h5ad(&ds.select_cells(&r), &out.join("kang_ref.h5ad"))?;
    write_h5ad(&ds.select_cells(&q), &out.join("kang_query.h5ad"))?;
    println!(
        "{} reference and {} query cells written to {}",
        r.len(),
        q.len(),
        out.display()
    );
    Ok(())
}
