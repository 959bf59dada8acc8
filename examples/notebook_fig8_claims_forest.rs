//! Notebook `notebooks/fig8_claims_forest.ipynb`: figure 8, every claim's effect per data set and pooled, next to the published value.
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
    // The verdicts behind the figure (both arms when the grid has the tuned one).
    for c in scrobust::study::claims::evaluate_claims(&records) {
        println!("{}: {}", c.claim, c.verdict);
    }
    // ---
    if let Some(f) = scrobust::study::figures::figure_forest(&records, &out.join("figures"))? {
        scrobust::plot::evcxr_show_png(&f.png)?;
    }
    Ok(())
}
