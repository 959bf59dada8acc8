//! Notebook `notebooks/fig3_shift.ipynb`: figure 3, prediction-distribution shift per class (the CD14 claim).
//!
//! The body of `main` is the notebook's code, one cell per `// ---` section;
//! `scripts/notebooks.py` writes the .ipynb from this file and a test checks they agree,
//! so the notebook only calls library code that compiles.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // ---
    // Results of `just reproduce` (or any `scrobust study --out ../results`).
    let out = std::path::Path::new("../results");
    let records = scrobust::study::runner::load_records(out)?;
    println!("{} grid cells loaded", records.len());
    // ---
    if let Some(f) = scrobust::study::figures::figure_shift(&records, &out.join("figures"))? {
        scrobust::plot::evcxr_show_png(&f.png)?;
    }
    Ok(())
}
