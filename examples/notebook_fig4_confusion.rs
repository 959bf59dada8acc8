//! Notebook `notebooks/fig4_confusion.ipynb`: figure 4, row-normalised confusion matrices per method.
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
    if let Some(f) = scrobust::study::figures::figure_confusion(&records, 0, &out.join("figures"))?
    {
        scrobust::plot::evcxr_show_png(&f.png)?;
    }
    Ok(())
}
