//! The `scrobust` command line. See DESIGN.md for the contract. Errors print
//! `error: <message>` on stderr and exit with status 2.

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
}

fn main() {
    let args = Cli::parse();
    let result = match &args.command {
        Command::Inspect(a) => cli::inspect::run(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}
