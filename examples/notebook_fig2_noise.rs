//! Notebook `notebooks/fig2_noise.ipynb`: figure 2, accuracy under Gaussian noise (fraction of noisy cells and sigma).
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
    for f in scrobust::study::figures::figure_noise(&records, &out.join("figures"))? {
        scrobust::plot::evcxr_show_png(&f.png)?;
    }
    Ok(())
}
