//! `scrobust inspect-checkpoint DIR`: what a published checkpoint holds (architecture,
//! parameter count, vocabulary, heads, keys it does not use) and, with `--data`, how many
//! of a data set's genes its vocabulary matches.

use crate::error::{Error, Result};
use crate::models::pretrained::{gene_id_table_from_var, Checkpoint, CheckpointSummary};
use crate::models::InitFrom;
use std::collections::HashMap;
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
    /// Gene name mapping onto the vocabulary (with --data).
    #[command(flatten)]
    pub gene_ids: super::select::GeneIdArgs,
    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The vocabulary's names for `genes` under `table`.
fn vocab_names(
    ck: &Checkpoint,
    table: Option<&HashMap<String, String>>,
    genes: &[String],
) -> Vec<String> {
    let init = InitFrom {
        checkpoint: ck,
        gene_ids: table,
    };
    init.vocab_names(genes)
}

/// Run `scrobust inspect-checkpoint`.
pub fn run(args: &InspectCheckpointArgs) -> Result<()> {
    let ck = Checkpoint::load(&args.dir)?;
    if args.gene_ids.given() && args.data.is_none() {
        return Err(Error::param(
            "gene-id-table",
            "maps the genes of --data; give it too",
        ));
    }
    let genes = match &args.data {
        // The var column comes with the gene names: one read of the file.
        Some(path) if args.gene_ids.gene_id_key.is_some() => {
            let key = args.gene_ids.gene_id_key.as_deref().unwrap_or_default();
            let (names, table) = gene_id_table_from_var(path, false, key)?;
            Some(vocab_names(&ck, Some(&table), &names))
        }
        Some(path) => {
            let ds = super::read_input(path, false, None)?;
            let table = args.gene_ids.load(Some(path), false)?;
            Some(vocab_names(&ck, table.as_ref(), &ds.gene_names))
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
