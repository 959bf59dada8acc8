//! Notebook `notebooks/overview.ipynb`: every result of the study: the claims table and the per-cell records.
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
    for c in scrobust::study::claims::evaluate_claims(&records) {
        println!(
            "{:<70} published {:+5.1}  measured {:>8}  {}",
            c.claim,
            c.published_pp,
            c.measured_pp
                .map(|m| format!("{m:+.1}"))
                .unwrap_or_default(),
            c.verdict
        );
    }
    // ---
    print!("{}", scrobust::study::report::results_csv(&records));
    Ok(())
}
