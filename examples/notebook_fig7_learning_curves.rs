//! Notebook `notebooks/fig7_learning_curves.ipynb`: figure 7, the neural fits' training and reference-validation loss.
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
    // The first seed of the study, clean reference: one panel per data set.
    let seed0 = records.iter().map(|r| r.seed).min().unwrap_or(0);
    if let Some(f) =
        scrobust::study::figures::figure_learning_curves(&records, seed0, &out.join("figures"))?
    {
        scrobust::plot::evcxr_show_png(&f.png)?;
    }
    Ok(())
}
