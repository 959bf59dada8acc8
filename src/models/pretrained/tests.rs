//! Fixture equivalence: tiny random checkpoints written in the published formats by the
//! official classes (transformers' `BertForMaskedLM` / `BertForSequenceClassification`,
//! scGPT's `TransformerModel`; `scripts/make_checkpoint_fixtures.py`), with the outputs
//! those classes gave on a few tokenized cells (`expected.safetensors`). The candle models
//! loaded from the same files must reproduce them to 1e-4, and Geneformer's tokenization of
//! the fixture counts must give the same tokens.

use super::*;
use crate::data::CsrMatrix;
use crate::models::heads::{ClsDecoder, ExprDecoder, MlmHead};
use crate::models::toy::{max_abs_diff, smoke_config};
use crate::models::{build_encoder, ModelInput};
use crate::tokenize::{collate, tokenize_rank, FittedRank, RankTokenizerParams, TokenizedCell};
use candle_core::{Device, D};
use ndarray::Array2;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/checkpoints")
        .join(name)
}

fn expected(name: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixture(name).join("expected.safetensors"), &Device::Cpu)
        .unwrap()
}

fn assert_close(ours: &Tensor, theirs: &Tensor, what: &str) {
    let d = max_abs_diff(ours, theirs);
    eprintln!("{what}: max abs difference {d:.2e}");
    assert!(d < 1e-4, "{what}: max |candle − torch| = {d}");
}

/// Zero the padded positions of `(b, l, …)` `t` (PyTorch's fast path leaves them at 0).
fn masked(t: &Tensor, mask: &Tensor) -> Tensor {
    let mut m = mask.clone();
    while m.rank() < t.rank() {
        m = m.unsqueeze(D::Minus1).unwrap();
    }
    t.broadcast_mul(&m).unwrap()
}

/// The encoder built from `ck`'s architecture, with every variable set from it.
fn loaded_encoder(ck: &Checkpoint, store: &ParamStore) -> Box<dyn crate::models::CellEncoder> {
    let cfg = ck.models_config(&smoke_config().models);
    let enc = build_encoder(ck.kind(), &cfg, ck.data_shape(), store.vb()).unwrap();
    let n = ck.assign(store, "encoder").unwrap();
    assert_eq!(n, store.vars().unwrap().len(), "every encoder variable set");
    enc
}

fn bert_input(e: &HashMap<String, Tensor>) -> ModelInput {
    let ids = e["input_ids"].to_dtype(DType::U32).unwrap();
    let mask = e["attention_mask"].to_dtype(DType::F32).unwrap();
    ModelInput {
        values: mask.zeros_like().unwrap(),
        gene_ids: ids,
        mask,
    }
}

/// Geneformer (BertForMaskedLM, model.safetensors): hidden states and masked-LM logits.
#[test]
fn geneformer_masked_lm_matches_transformers() {
    let ck = Checkpoint::load(&fixture("geneformer")).unwrap();
    assert_eq!(ck.kind(), ModelKind::Geneformer);
    let store = ParamStore::new(0, &Device::Cpu);
    let enc = loaded_encoder(&ck, &store);
    let e = expected("geneformer");
    let h = enc.forward_t(&bert_input(&e), false).unwrap();
    assert_close(&h, &e["last_hidden_state"], "last_hidden_state");
    let Arch::Geneformer(cfg) = &ck.arch else {
        unreachable!()
    };
    let head = MlmHead::with(
        cfg.d_model,
        cfg.token_rows(),
        cfg.activation,
        cfg.layer_norm_eps,
        store.vb().pp("pretrain_head"),
    )
    .unwrap();
    ck.assign(&store, "pretrain_head").unwrap();
    assert_close(&head.forward(&h).unwrap(), &e["logits"], "MLM logits");
}

/// Geneformer V2-style (BertForSequenceClassification, pytorch_model.bin): hidden states,
/// classification logits and labels.
#[test]
fn geneformer_classifier_matches_transformers() {
    let ck = Checkpoint::load(&fixture("geneformer_cls")).unwrap();
    let store = ParamStore::new(0, &Device::Cpu);
    let enc = loaded_encoder(&ck, &store);
    let e = expected("geneformer_cls");
    let h = enc.forward_t(&bert_input(&e), false).unwrap();
    assert_close(&h, &e["last_hidden_state"], "last_hidden_state");
    let logits = geneformer::sequence_logits(&ck.tensors, &h).unwrap();
    assert_close(&logits, &e["logits"], "classification logits");
    assert_eq!(ck.summary(None).labels.map(|l| l.len()), Some(3));
    assert!(ck.uses_special_tokens());
}

/// scGPT (best_model.pt with flash-attention `Wqkv` names): transformer output, `<cls>`
/// cell embedding, classifier and expression-decoder outputs.
#[test]
fn scgpt_matches_official_model() {
    let ck = Checkpoint::load(&fixture("scgpt")).unwrap();
    assert_eq!(ck.kind(), ModelKind::ScGpt);
    let store = ParamStore::new(0, &Device::Cpu);
    let enc = loaded_encoder(&ck, &store);
    let e = expected("scgpt");
    let mask = (1.0 - e["src_key_padding_mask"].to_dtype(DType::F32).unwrap()).unwrap();
    let input = ModelInput {
        gene_ids: e["gene_ids"].to_dtype(DType::U32).unwrap(),
        values: e["values"].clone(),
        mask: mask.clone(),
    };
    let h = enc.forward_t(&input, false).unwrap();
    assert_close(
        &masked(&h, &mask),
        &masked(&e["transformer_output"], &mask),
        "transformer output",
    );
    let cell = h.narrow(1, 0, 1).unwrap().squeeze(1).unwrap();
    assert_close(&cell, &e["cell_emb"], "cell_emb");
    let d = cell.dims()[1];
    let cls = ClsDecoder::new(d, 2, 3, store.vb().pp("cls_head")).unwrap();
    let expr = ExprDecoder::new(d, store.vb().pp("pretrain_head")).unwrap();
    ck.assign(&store, "cls_head").unwrap();
    ck.assign(&store, "pretrain_head").unwrap();
    assert_close(&cls.forward(&cell).unwrap(), &e["cls_output"], "cls_output");
    assert_close(
        &masked(&expr.forward(&h).unwrap(), &mask),
        &masked(&e["mlm_output"], &mask),
        "mlm_output",
    );
}

/// Ensembl ids of the fixture's count columns (`genes.json`).
fn fixture_genes(name: &str) -> Vec<String> {
    let v: Vec<serde_json::Value> = read_json(&fixture(name).join("genes.json")).unwrap();
    v.iter()
        .map(|g| g["ensembl_id"].as_str().unwrap().to_string())
        .collect()
}

/// The fixture counts tokenized with the checkpoint's dictionaries give the tokens that
/// Geneformer's tokenizer produced (V1 without, V2 with `<cls>` … `<eos>`).
#[test]
fn geneformer_tokens_match_reference_tokenizer() {
    for name in ["geneformer", "geneformer_cls"] {
        let ck = Checkpoint::load(&fixture(name)).unwrap();
        let e = expected(name);
        let counts: Vec<Vec<f32>> = e["counts"].to_vec2().unwrap();
        let (n, g) = (counts.len(), counts[0].len());
        let dense = Array2::from_shape_vec((n, g), counts.concat()).unwrap();
        let genes = fixture_genes(name);
        let matched = ck.match_genes(&genes);
        assert!(
            matched.n_matched < genes.len(),
            "{name}: fixture has unknown genes"
        );
        let max_len = ck.max_len().unwrap();
        let params = if ck.uses_special_tokens() {
            RankTokenizerParams::v2()
        } else {
            RankTokenizerParams::v1()
        }
        .with_max_len(max_len);
        let fitted = FittedRank::from_medians(params, ck.medians_for(&genes).unwrap()).unwrap();
        let x = CsrMatrix::from_dense(&dense);
        let cells = tokenize_rank(&x, &matched.column_ids, &fitted).unwrap();
        let refs: Vec<&TokenizedCell> = cells.iter().collect();
        let batch = collate(&refs, None, &ck.collate_spec(max_len)).unwrap();
        let theirs: Vec<Vec<i64>> = e["input_ids"].to_vec2().unwrap();
        let mask: Vec<Vec<i64>> = e["attention_mask"].to_vec2().unwrap();
        for (i, (row, m)) in theirs.iter().zip(&mask).enumerate() {
            let len = m.iter().filter(|&&v| v == 1).count();
            let ours = &batch.gene_ids[i * batch.seq_len..][..batch.seq_len];
            let ours_len = batch.attention_mask[i * batch.seq_len..][..batch.seq_len]
                .iter()
                .filter(|&&v| v == 1)
                .count();
            assert_eq!(ours_len, len, "{name} cell {i}: length");
            let theirs: Vec<u32> = row[..len].iter().map(|&t| t as u32).collect();
            assert_eq!(&ours[..len], theirs.as_slice(), "{name} cell {i}");
        }
    }
}

/// Keys that no mapping knows are refused with their names (end to end for a BERT
/// folder, at the renaming step for scGPT); a checkpoint that does not fit the model lists
/// what is missing.
#[test]
fn unknown_and_missing_keys_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture("geneformer")).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    let st = dir.path().join("model.safetensors");
    let mut w = candle_core::safetensors::load(&st, &Device::Cpu).unwrap();
    let zeros = Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap();
    w.insert("bert.mystery.weight".into(), zeros.clone());
    candle_core::safetensors::save(&w, &st).unwrap();
    let err = Checkpoint::load(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("bert.mystery.weight") && err.contains("model.safetensors"),
        "{err}"
    );

    let src = fixture("scgpt").join("best_model.pt");
    let mut raw = candle_core::pickle::read_all(&src).unwrap();
    raw.push(("mystery.weight".into(), zeros));
    let err = rename(scgpt::split_qkv(raw, &src).unwrap(), scgpt::map_key, &src)
        .unwrap_err()
        .to_string();
    assert!(err.contains("mystery.weight"), "{err}");

    let ck = Checkpoint::load(&fixture("scgpt")).unwrap();
    let store = ParamStore::new(0, &Device::Cpu);
    let mut cfg = ck.models_config(&smoke_config().models);
    cfg.scgpt.n_layers += 1;
    build_encoder(ModelKind::ScGpt, &cfg, ck.data_shape(), store.vb()).unwrap();
    let err = ck.assign(&store, "encoder").unwrap_err().to_string();
    assert!(
        err.contains("encoder.encoder.layers.2.attn.q.weight"),
        "{err}"
    );
}
