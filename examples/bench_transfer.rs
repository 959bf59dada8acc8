//! Input preparation for `benches/transfer_vs_seurat.sh`: simulates the benchmark data
//! set and exports reference/query pairs in a form R can read, so that scrobust and
//! Seurat time label transfer on exactly the same cells.
//!
//! ```text
//! cargo run --release --example bench_transfer -- simulate CELLS GENES OUT_DIR
//!     writes OUT_DIR/sim.h5ad (pancreas-like counts, obs `cell_type`, `batch` =
//!     reference | query) and its split as MTX (see `export`)
//! cargo run --release --example bench_transfer -- export DATA.h5ad LABEL_KEY REF_CELLS QUERY_CELLS OUT_DIR
//!     writes the split of DATA.h5ad given by two cell-id lists
//! ```
//! Each export writes `ref.mtx` / `query.mtx` (genes × cells, Matrix Market
//! coordinate real, what `Matrix::readMM` reads), `genes.txt`, and
//! `ref_cells.tsv` / `query_cells.tsv` (cell id, tab, label).

use scrobust::data::h5ad::{read_h5ad, write_h5ad, ReadOptions};
use scrobust::data::simulate::{simulate, Profile, SimulateOptions};
use scrobust::data::split::{split_by_cell_ids, split_by_values};
use scrobust::data::Dataset;
use scrobust::{Error, Result};
use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = run(&args) {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}

fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("simulate") if args.len() == 4 => {
            let n_cells = parse(&args[1], "CELLS")?;
            let n_genes = parse(&args[2], "GENES")?;
            let out = Path::new(&args[3]);
            let ds = simulate(&SimulateOptions {
                n_cells: Some(n_cells),
                n_genes,
                ..SimulateOptions::new(Profile::PancreasLike)
            })?;
            // Every command refuses empty cells.
            let (ds, _) = ds.without_empty_cells();
            write_h5ad(&ds, &out.join("sim.h5ad"))?;
            let (r, q) = split_by_values(&ds, "batch", &["reference".to_string()])?;
            export(&ds, "cell_type", &r, &q, out)
        }
        Some("export") if args.len() == 6 => {
            let ds = read_h5ad(Path::new(&args[1]), &ReadOptions::default())?;
            let (r, q) = split_by_cell_ids(&ds, &lines(&args[3])?, &lines(&args[4])?)?;
            export(&ds, &args[2], &r, &q, Path::new(&args[5]))
        }
        _ => Err(Error::param(
            "arguments",
            "usage: bench_transfer simulate CELLS GENES OUT_DIR | export DATA.h5ad LABEL_KEY REF_CELLS QUERY_CELLS OUT_DIR",
        )),
    }
}

fn parse(s: &str, name: &str) -> Result<usize> {
    s.parse()
        .map_err(|_| Error::param(name, format!("not a whole number: '{s}'")))
}

fn lines(path: &str) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

/// Writes one side of the split: genes × cells MTX and the cell/label table.
fn export_side(ds: &Dataset, key: &str, rows: &[usize], out: &Path, name: &str) -> Result<()> {
    let side = ds.select_cells(rows);
    let labels = side.labels(key)?;
    let x = &side.x;
    let mut mtx = format!(
        "%%MatrixMarket matrix coordinate real general\n{} {} {}\n",
        x.n_cols(),
        x.n_rows(),
        x.nnz()
    );
    for cell in 0..x.n_rows() {
        let (idx, val) = x.row(cell);
        for (&g, &v) in idx.iter().zip(val) {
            let _ = writeln!(mtx, "{} {} {}", g + 1, cell + 1, v);
        }
    }
    write(&out.join(format!("{name}.mtx")), &mtx)?;
    let mut tsv = String::new();
    for (i, id) in side.cell_ids.iter().enumerate() {
        let _ = writeln!(tsv, "{id}\t{}", labels.name(i).unwrap_or("NA"));
    }
    write(&out.join(format!("{name}_cells.tsv")), &tsv)
}

fn export(ds: &Dataset, key: &str, reference: &[usize], query: &[usize], out: &Path) -> Result<()> {
    write(&out.join("genes.txt"), &(ds.gene_names.join("\n") + "\n"))?;
    export_side(ds, key, reference, out, "ref")?;
    export_side(ds, key, query, out, "query")?;
    eprintln!(
        "exported {} reference and {} query cells, {} genes, to {}",
        reference.len(),
        query.len(),
        ds.n_vars(),
        out.display()
    );
    Ok(())
}
