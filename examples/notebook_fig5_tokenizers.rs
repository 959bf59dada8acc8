//! Notebook `notebooks/fig5_tokenizers.ipynb`: figure 5, cell type readable from binning vs rank encoding, clean and noisy (computed here on a simulated task).
//!
//! The body of `main` is the notebook's code, one cell per `// ---` section;
//! `scripts/notebooks.py` writes the .ipynb from this file and a test checks they agree,
//! so the notebook only calls library code that compiles.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // ---
    // A simulated myeloid-like task: reference and query are the simulator's two batches.
    use scrobust::study::config::DatasetSpec;
    let spec = DatasetSpec::Simulated {
        name: "myeloid-like".into(),
        profile: "myeloid-like".into(),
        cells: Some(1000),
        genes: 1000,
        seed: 1,
    };
    let task = scrobust::study::tasks::load_task(&spec, &[])?;
    println!(
        "{} reference and {} query cells",
        task.reference.n_obs(),
        task.query.n_obs()
    );
    // ---
    // The token probe (logistic regression on raw values, bins and rank positions; clean
    // and with every query cell perturbed at σ 1) and Kendall τ of clean vs noisy tokens.
    let dir = std::path::Path::new("../results/figures");
    let f = scrobust::study::figures::figure_tokenizer(&task, 1.0, 0, dir)?;
    scrobust::plot::evcxr_show_png(&f.png)?;
    Ok(())
}
