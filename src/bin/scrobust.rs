//! The `scrobust` command line. See docs/design.md for the contract. Errors print
//! `error: <message>` on stderr and exit with status 2 (usage errors too, via clap).

use clap::{Parser, Subcommand};
use scrobust::cli;

/// Compare single-cell foundation-model classifiers with statistical label transfer,
/// and measure how tokenization and noise degrade them.
#[derive(Debug, Parser)]
#[command(name = "scrobust", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Describe an h5ad file: shape, value kind, obs columns, cells per label.
    Inspect(cli::inspect::InspectArgs),
    /// Describe a published Geneformer or scGPT checkpoint folder and its gene match.
    InspectCheckpoint(cli::inspect_checkpoint::InspectCheckpointArgs),
    /// Write simulated raw counts (myeloid-like or pancreas-like), or fit parameters.
    Simulate(cli::simulate::SimulateArgs),
    /// Statistical label transfer: Seurat v5, logistic regression or kNN.
    Transfer(cli::transfer::TransferArgs),
    /// Information kept by a tokenizer (binning or rank), clean and under noise.
    TokenizeInfo(cli::tokenize_info::TokenizeInfoArgs),
    /// Pretrain, fine-tune and evaluate a foundation-model-like classifier.
    Train(cli::train::TrainArgs),
    /// Classify cells with a classifier saved by `train --save-model`.
    Predict(cli::predict::PredictArgs),
    /// Run a study grid from a TOML profile: results, figures and report.
    Study(cli::study::StudyArgs),
    /// The default study on embedded simulated data (+ shared real tasks when present).
    Reproduce(cli::study::ReproduceArgs),
}

fn main() {
    scrobust::models::configure_cpu_runtime();
    let args = Cli::parse();
    let result = match args.command {
        Command::Inspect(a) => cli::inspect::run(&a),
        Command::InspectCheckpoint(a) => cli::inspect_checkpoint::run(&a),
        Command::Simulate(a) => cli::simulate::run(&a),
        Command::Transfer(a) => cli::transfer::run(a),
        Command::TokenizeInfo(a) => cli::tokenize_info::run(&a),
        Command::Train(a) => cli::train::run(&a),
        Command::Predict(a) => cli::predict::run(&a),
        Command::Study(a) => cli::study::run(&a),
        Command::Reproduce(a) => cli::study::run_reproduce(&a),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}
