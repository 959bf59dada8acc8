//! `scrobust inspect-checkpoint DIR`: what a published checkpoint holds (architecture,
//! parameter count, vocabulary, heads, keys it does not use) and, with `--data`, how many
//! of a data set's genes its vocabulary matches.

use crate::error::Result;
use crate::models::pretrained::{
    gene_id_table_from_var, read_gene_id_table, Checkpoint, CheckpointSummary,
};
use crate::models::InitFrom;
use std::path::PathBuf;

/// Arguments of `scrobust inspect-checkpoint`.
#[derive(Debug, Clone, clap::Args)]
pub struct InspectCheckpointArgs {
    /// Checkpoint folder (Hugging Face BERT for Geneformer, or scGPT's best_model.pt,
    /// vocab.json and args.json).
    pub dir: PathBuf,
    /// An h5ad whose genes are matched against the vocabulary.
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Two-column TSV mapping the data's gene names to the vocabulary's.
    #[arg(long, value_name = "FILE", requires = "data")]
    pub gene_id_table: Option<PathBuf>,
    /// Instead of a table: the `var` column of --data holding the vocabulary's gene ids.
    #[arg(
        long,
        value_name = "KEY",
        requires = "data",
        conflicts_with = "gene_id_table"
    )]
    pub gene_id_key: Option<String>,
    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Run `scrobust inspect-checkpoint`.
pub fn run(args: &InspectCheckpointArgs) -> Result<()> {
    let ck = Checkpoint::load(&args.dir)?;
    let genes = match &args.data {
        Some(path) => {
            let ds = super::read_input(path, false, None)?;
            let table = match (&args.gene_id_table, &args.gene_id_key) {
                (Some(t), _) => Some(read_gene_id_table(t)?),
                (None, Some(key)) => Some(gene_id_table_from_var(path, false, key)?),
                (None, None) => None,
            };
            let init = InitFrom {
                checkpoint: &ck,
                gene_ids: table.as_ref(),
            };
            Some(init.vocab_names(&ds.gene_names))
        }
        None => None,
    };
    let summary = ck.summary(genes.as_deref());
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&summary).unwrap_or_default()
        );
    } else {
        print_text(&summary);
    }
    Ok(())
}

fn print_text(s: &CheckpointSummary) {
    println!("{} checkpoint: {} [{}]", s.model, s.dir, s.format);
    println!("architecture: {}", s.architecture);
    println!(
        "parameters: {} in the encoder, {} mapped in all",
        s.encoder_params, s.mapped_params
    );
    println!(
        "vocabulary: {} tokens; special {:?}",
        s.vocab_size, s.special_tokens
    );
    println!("heads: {:?}", s.heads);
    if let Some(labels) = &s.labels {
        println!("classifier labels: {labels:?}");
    }
    if !s.unused_keys.is_empty() {
        println!("not used ({}): {:?}", s.unused_keys.len(), s.unused_keys);
    }
    if let Some(m) = &s.gene_match {
        println!(
            "genes matched: {} of {}{}",
            m.n_matched,
            m.n_genes,
            if m.unmatched_examples.is_empty() {
                String::new()
            } else {
                format!("; not matched e.g. {:?}", m.unmatched_examples)
            }
        );
    }
}
