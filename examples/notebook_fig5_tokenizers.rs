//! Notebook `notebooks/fig5_tokenizers.ipynb`: figure 5, information kept by binning vs rank encoding, clean and noisy (computed here on simulated data).
//!
//! The body of `main` is the notebook's code, one cell per `// ---` section;
//! `scripts/notebooks.py` writes the .ipynb from this file and a test checks they agree,
//! so the notebook only calls library code that compiles.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // ---
    use scrobust::data::simulate::{simulate, Profile, SimulateOptions};
    let opts = SimulateOptions {
        n_cells: Some(1000),
        n_genes: 1000,
        seed: 1,
        ..SimulateOptions::new(Profile::MyeloidLike)
    };
    let ds = simulate(&opts)?;
    println!("{} cells x {} genes", ds.n_obs(), ds.n_vars());
    // ---
    let dir = std::path::Path::new("../results/figures");
    let f = scrobust::study::figures::figure_tokenizer(&ds, 1.0, 0, dir)?;
    scrobust::plot::evcxr_show_png(&f.png)?;
    Ok(())
}
