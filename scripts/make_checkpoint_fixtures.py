#!/usr/bin/env python3
"""Tiny random checkpoints in the published on-disk formats of Geneformer and scGPT.

Dev tool, never needed at run time or in CI. Run it in the environment that
`scripts/setup_checkpoint_fixtures.sh` creates:

    bash scripts/setup_checkpoint_fixtures.sh
    ~/.cache/scrobust/ckpt-venv/bin/python scripts/make_checkpoint_fixtures.py

It writes, under tests/fixtures/checkpoints/ (see the README.md there):

* geneformer/      Geneformer V1-style `BertForMaskedLM` (config.json + model.safetensors
                   via `save_pretrained`), token_dictionary.pkl, gene_median_dictionary.pkl,
                   genes.json, expected.safetensors.
* geneformer_cls/  Geneformer V2-style `BertForSequenceClassification` (config.json +
                   pytorch_model.bin via `save_pretrained(safe_serialization=False)`), its
                   two dictionaries, genes.json, expected.safetensors.
* scgpt/           scGPT `TransformerModel` (best_model.pt with the flash-attention key
                   names `self_attn.Wqkv.*`), vocab.json, args.json, expected.safetensors.

The models are the official classes (transformers' BERT; scGPT 0.2.4's
scgpt/model/model.py, imported without running scgpt/__init__.py, whose imports -
scanpy, torchtext, scib, ... - are unrelated to the model). Every parameter is moved away
from its initial value (+ N(0, 0.1)) so LayerNorm weights/biases, token-type embeddings
and head biases are non-trivial. Everything is seeded and runs on one CPU thread, so
two runs write identical bytes.
"""

from __future__ import annotations

import ast
import collections
import hashlib
import importlib
import importlib.util
import json
import logging
import pickle
import sys
import types
import warnings
from pathlib import Path
from typing import List, Mapping, Optional

import numpy as np
import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "checkpoints"

SEED = 20240611
PERTURB_STD = 0.1
PICKLE_PROTOCOL = 4  # what Python 3.8-3.13 write by default (Geneformer's files: 3.8+)

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)


# --------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------


def perturb_(model: torch.nn.Module, seed: int) -> None:
    """Add N(0, PERTURB_STD) to every parameter (tied parameters once)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():  # unique parameters: a tied one is visited once
            p.add_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * PERTURB_STD)


def write_json(path: Path, obj, indent: int = 2) -> None:
    path.write_text(json.dumps(obj, indent=indent) + "\n")


def f32(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.float32).contiguous().clone()


def i64(t) -> torch.Tensor:
    return torch.as_tensor(t).to(torch.int64).contiguous().clone()


# --------------------------------------------------------------------------------------
# Geneformer: gene universe, dictionaries, counts and the tokenizer
# --------------------------------------------------------------------------------------

N_DICT_GENES = 70  # > max_position_embeddings (64) so one cell exercises truncation
N_ABSENT_GENES = 6  # genes of the data that are not in the dictionaries
N_CELLS = 5
MAX_POS = 64


def gene_universe(rng: np.random.Generator):
    """(genes.json rows in column order, sorted dictionary Ensembl ids)."""
    dict_ids = [f"ENSG{i:011d}" for i in range(1, N_DICT_GENES + 1)]
    absent_ids = [f"ENSG{900000 + i:011d}" for i in range(1, N_ABSENT_GENES + 1)]
    rows = [{"ensembl_id": e, "symbol": f"GENE{i + 1}"} for i, e in enumerate(dict_ids)]
    rows += [{"ensembl_id": e, "symbol": f"NOVEL{i + 1}"} for i, e in enumerate(absent_ids)]
    order = rng.permutation(len(rows))  # data columns are not in dictionary order
    return [rows[i] for i in order], dict_ids


def make_counts(rng: np.random.Generator, genes) -> np.ndarray:
    """Raw integer counts (cells x genes, f32) with zeros and out-of-dictionary genes."""
    in_dict = np.array([g["symbol"].startswith("GENE") for g in genes])
    dict_cols = np.flatnonzero(in_dict)
    absent_cols = np.flatnonzero(~in_dict)
    counts = np.zeros((N_CELLS, len(genes)), dtype=np.float32)
    plan = [  # (number of dictionary genes expressed, absent genes expressed)
        (20, 2),  # ordinary cell
        (68, 1),  # more genes than the model takes: truncated (V1: 64, V2: 62 + 2)
        (3, 1),  # sparse cell, dominated by an out-of-dictionary gene
        (35, 0),
        (9, 2),  # low counts, many equal raw counts (medians break the ties)
    ]
    for c, (n_in, n_out) in enumerate(plan):
        cols = rng.choice(dict_cols, size=n_in, replace=False)
        hi = 4 if c == 4 else 80
        counts[c, cols] = rng.integers(1, hi, size=n_in)
        out = rng.choice(absent_cols, size=n_out, replace=False)
        counts[c, out] = rng.integers(1, 40, size=n_out)
    counts[2, absent_cols[0]] = 500.0  # large count outside the dictionary: raises n_counts
    return counts


def geneformer_dictionaries(rng: np.random.Generator, dict_ids, specials):
    """token_dictionary and gene_median_dictionary as Geneformer ships them.

    token_dictionary.pkl: dict str -> Python int, special tokens first, then Ensembl ids.
    gene_median_dictionary.pkl: dict Ensembl id -> numpy.float64 scalar (the shipped file
    holds numpy float64 scalars, pickled by numpy 1.x as `numpy.core.multiarray.scalar`
    with dtype 'f8'); genes only, no special tokens.
    """
    token_dict = {s: i for i, s in enumerate(specials)}
    for e in dict_ids:
        token_dict[e] = len(token_dict)
    medians = rng.uniform(0.3, 8.0, size=len(dict_ids))
    median_dict = {e: np.float64(m) for e, m in zip(dict_ids, medians)}
    return token_dict, median_dict


# The functions below follow geneformer/tokenizer.py (ctheodoris/Geneformer, the current
# TranscriptomeTokenizer with model_version V1/V2, tokenize_anndata + create_dataset). The
# lines followed are quoted as comments.


def rank_genes(gene_vector, gene_tokens):
    # def rank_genes(gene_vector, gene_tokens):
    #     """
    #     Rank gene expression vector.
    #     """
    #     # sort by median-scaled gene values
    #     sorted_indices = np.argsort(-gene_vector)
    #     return gene_tokens[sorted_indices]
    sorted_indices = np.argsort(-gene_vector)
    return gene_tokens[sorted_indices]


def geneformer_tokenize(
    counts: np.ndarray,
    ensembl_ids: List[str],
    gene_token_dict,
    gene_median_dict,
    model_input_size: int,
    special_token: bool,
    target_sum: int = 10_000,
    n_counts: Optional[np.ndarray] = None,
):
    """Rank value encoding of each cell (list of int64 arrays), as Geneformer does it."""
    # __init__:
    #     # gene keys for full vocabulary
    #     self.gene_keys = list(self.gene_token_dict.keys())
    #     # protein-coding and miRNA gene list dictionary for selecting .loom rows for tokenization
    #     self.genelist_dict = dict(zip(self.gene_keys, [True] * len(self.gene_keys)))
    gene_keys = list(gene_token_dict.keys())
    genelist_dict = dict(zip(gene_keys, [True] * len(gene_keys)))
    ensembl_ids = np.array(ensembl_ids, dtype=object)

    # tokenize_anndata:
    #     coding_miRNA_loc = np.where(
    #         [self.genelist_dict.get(i, False) for i in adata.var["ensembl_id_collapsed"]]
    #     )[0]
    #     norm_factor_vector = np.array(
    #         [
    #             self.gene_median_dict[i]
    #             for i in adata.var["ensembl_id_collapsed"][coding_miRNA_loc]
    #         ]
    #     )
    #     coding_miRNA_ids = adata.var["ensembl_id_collapsed"][coding_miRNA_loc]
    #     coding_miRNA_tokens = np.array(
    #         [self.gene_token_dict[i] for i in coding_miRNA_ids]
    #     )
    # (ensembl_id_collapsed = ensembl_id here: every id maps to itself, none is duplicated)
    coding_miRNA_loc = np.where([genelist_dict.get(i, False) for i in ensembl_ids])[0]
    norm_factor_vector = np.array([gene_median_dict[i] for i in ensembl_ids[coding_miRNA_loc]])
    coding_miRNA_ids = ensembl_ids[coding_miRNA_loc]
    coding_miRNA_tokens = np.array([gene_token_dict[i] for i in coding_miRNA_ids])

    #         n_counts = adata[idx].obs["n_counts"].values[:, None]
    #         X_view0 = adata[idx, :].X
    #         X_view = X_view0[:, coding_miRNA_loc]
    #         X_norm_unscaled = X_view / n_counts * target_sum
    #         X_norm = X_norm_unscaled / norm_factor_vector
    #         X_norm = sp.csr_matrix(X_norm)
    #
    #         tokenized_cells += [
    #             rank_genes(X_norm[i].data, coding_miRNA_tokens[X_norm[i].indices])
    #             for i in range(X_norm.shape[0])
    #         ]
    # n_counts: the cell's total count over ALL genes of the file (Geneformer's examples
    # set obs["n_counts"] = X.sum(axis=1)), not only the dictionary genes.
    if n_counts is None:
        n_counts = counts.sum(axis=1)
    n_counts = np.asarray(n_counts)[:, None]
    X_view = counts[:, coding_miRNA_loc]
    X_norm_unscaled = X_view / n_counts * target_sum
    X_norm = X_norm_unscaled / norm_factor_vector
    tokenized_cells = []
    for i in range(X_norm.shape[0]):
        # sp.csr_matrix(dense) keeps the non-zero entries of each row in column order:
        # .indices are those columns, .data their values.
        indices = np.flatnonzero(X_norm[i])
        data = X_norm[i][indices]
        tokenized_cells.append(rank_genes(data, coding_miRNA_tokens[indices]))

    # create_dataset -> format_cell_features:
    #     if self.special_token:
    #         example["input_ids"] = example["input_ids"][
    #             0 : self.model_input_size - 2
    #         ]  # truncate to leave space for CLS and EOS token
    #         example["input_ids"] = np.insert(
    #             example["input_ids"], 0, self.gene_token_dict.get("<cls>")
    #         )
    #         example["input_ids"] = np.insert(
    #             example["input_ids"],
    #             len(example["input_ids"]),
    #             self.gene_token_dict.get("<eos>"),
    #         )
    #     else:
    #         # Truncate/Crop input_ids to input size
    #         example["input_ids"] = example["input_ids"][0 : self.model_input_size]
    out = []
    for ids in tokenized_cells:
        if special_token:
            ids = ids[0 : model_input_size - 2]
            ids = np.insert(ids, 0, gene_token_dict.get("<cls>"))
            ids = np.insert(ids, len(ids), gene_token_dict.get("<eos>"))
        else:
            ids = ids[0 : model_input_size]
        out.append(np.asarray(ids, dtype=np.int64))
    return out, X_norm


def check_no_near_ties(x_norm: np.ndarray) -> None:
    """The order must not depend on float rounding or on argsort's (unstable) tie rule."""
    for row in x_norm:
        v = np.sort(row[row > 0])
        if len(v) > 1:
            gap = np.min(np.diff(v) / v[1:])
            assert gap > 1e-4, f"near tie in normalised values (relative gap {gap})"


def pad_batch(seqs, pad_id: int):
    length = max(len(s) for s in seqs)
    ids = np.full((len(seqs), length), pad_id, dtype=np.int64)
    mask = np.zeros((len(seqs), length), dtype=np.int64)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = s
        mask[i, : len(s)] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask)


def bert_config(vocab_size: int, architecture: str, **extra) -> BertConfig:
    # Geneformer's published config.json (gf-6L-30M-i2048 and the V2 models) uses these
    # fields: hidden_act relu, layer_norm_eps 1e-12, absolute positions, type_vocab_size 2,
    # pad_token_id 0, dropout 0.02; only the sizes are tiny here.
    return BertConfig(
        architectures=[architecture],
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        hidden_act="relu",
        hidden_dropout_prob=0.02,
        attention_probs_dropout_prob=0.02,
        max_position_embeddings=MAX_POS,
        type_vocab_size=2,
        initializer_range=0.02,
        layer_norm_eps=1e-12,
        pad_token_id=0,
        position_embedding_type="absolute",
        **extra,
    )


def run_bert(model, input_ids, attention_mask):
    model.eval()
    with torch.no_grad():
        return model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)


def make_geneformer(
    name: str,
    cls_model: bool,
    specials,
    special_token: bool,
    seed: int,
) -> None:
    out = OUT / name
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    genes, dict_ids = gene_universe(np.random.default_rng(SEED))  # same universe for both
    counts = make_counts(np.random.default_rng(SEED + 1), genes)  # same cells for both
    token_dict, median_dict = geneformer_dictionaries(rng, dict_ids, specials)

    with open(out / "token_dictionary.pkl", "wb") as f:
        pickle.dump(token_dict, f, protocol=PICKLE_PROTOCOL)
    with open(out / "gene_median_dictionary.pkl", "wb") as f:
        pickle.dump(median_dict, f, protocol=PICKLE_PROTOCOL)
    write_json(out / "genes.json", genes)

    ensembl = [g["ensembl_id"] for g in genes]
    # As Geneformer would see an h5ad with float32 X and n_counts = X.sum(axis=1) ...
    seqs, x_norm = geneformer_tokenize(
        counts, ensembl, token_dict, median_dict, MAX_POS, special_token
    )
    # ... and the same in float64: the ranks must not depend on the precision.
    seqs64, x_norm64 = geneformer_tokenize(
        counts.astype(np.float64), ensembl, token_dict, median_dict, MAX_POS, special_token
    )
    assert all(np.array_equal(a, b) for a, b in zip(seqs, seqs64))
    check_no_near_ties(x_norm64)
    assert max(len(s) for s in seqs) == MAX_POS, "one cell must be truncated"
    input_ids, attention_mask = pad_batch(seqs, token_dict["<pad>"])

    torch.manual_seed(seed)
    if cls_model:
        config = bert_config(
            len(token_dict),
            "BertForSequenceClassification",
            num_labels=3,
            id2label={0: "type_a", 1: "type_b", 2: "type_c"},
            label2id={"type_a": 0, "type_b": 1, "type_c": 2},
        )
        model = BertForSequenceClassification(config)
    else:
        config = bert_config(len(token_dict), "BertForMaskedLM")
        model = BertForMaskedLM(config)
    perturb_(model, seed + 7)
    model.eval()
    model.save_pretrained(out, safe_serialization=not cls_model)
    # transformers 4.46 also writes generation_config.json for BertForMaskedLM (it defines
    # prepare_inputs_for_generation); Geneformer's model folders are config.json plus the
    # weights, and nothing here reads it.
    (out / "generation_config.json").unlink(missing_ok=True)

    res = run_bert(model, input_ids, attention_mask)
    expected = {
        "counts": f32(torch.from_numpy(counts)),
        "input_ids": i64(input_ids),
        "attention_mask": i64(attention_mask),
        "embedding_output": f32(res.hidden_states[0]),
        "last_hidden_state": f32(res.hidden_states[-1]),
        "logits": f32(res.logits),
    }
    if cls_model:
        with torch.no_grad():
            expected["pooler_output"] = f32(model.bert.pooler(res.hidden_states[-1]))
    save_file(expected, str(out / "expected.safetensors"))

    # Checks: the saved files load back through transformers and give the same outputs,
    # and the eager attention path agrees with the default (sdpa) one.
    cls = BertForSequenceClassification if cls_model else BertForMaskedLM
    for impl in ("sdpa", "eager"):
        back = cls.from_pretrained(out, attn_implementation=impl)
        r2 = run_bert(back, input_ids, attention_mask)
        tol = 0.0 if impl == "sdpa" else 1e-5
        assert torch.allclose(r2.logits, res.logits, atol=tol, rtol=0), (name, impl)
        assert torch.allclose(r2.hidden_states[-1], res.hidden_states[-1], atol=tol, rtol=0)


# --------------------------------------------------------------------------------------
# scGPT
# --------------------------------------------------------------------------------------


def import_scgpt():
    """scgpt/model/model.py (the official TransformerModel) without scgpt/__init__.py."""
    spec = importlib.util.find_spec("scgpt")
    if spec is None or spec.origin is None:
        sys.exit("scgpt is not installed: run scripts/setup_checkpoint_fixtures.sh")
    pkg_dir = Path(spec.origin).parent
    for name, path in (("scgpt", pkg_dir), ("scgpt.model", pkg_dir / "model")):
        mod = types.ModuleType(name)
        mod.__path__ = [str(path)]
        mod.__package__ = name
        sys.modules[name] = mod
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "flash_attn is not installed"
        model_mod = importlib.import_module("scgpt.model.model")
    # scgpt.utils.load_pretrained, taken from scgpt/utils/util.py as it is (the module
    # itself imports scanpy, matplotlib, IPython, ...).
    util_path = pkg_dir / "utils" / "util.py"
    tree = ast.parse(util_path.read_text())
    fn = next(
        n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "load_pretrained"
    )
    ns = {
        "torch": torch,
        "Mapping": Mapping,
        "Optional": Optional,
        "List": List,
        "logger": logging.getLogger("scGPT"),
    }
    exec(compile(ast.Module(body=[fn], type_ignores=[]), str(util_path), "exec"), ns)
    return model_mod, ns["load_pretrained"]


SCGPT_GENES = 40
SCGPT = dict(embsize=32, nheads=2, d_hid=64, nlayers=2, n_layers_cls=3, n_cls=3,
             dropout=0.2, pad_token="<pad>", pad_value=-2, mask_value=-1, n_bins=51,
             max_seq_len=64)


def scgpt_args() -> dict:
    """args.json with the keys (and key order) of the published scGPT_human/args.json."""
    c = SCGPT
    return {
        "data_source": "generated",
        "save_dir": "generated",
        "load_model": None,
        "n_hvg": None,
        "valid_size_or_ratio": 0.003,
        "dist_backend": "nccl",
        "grad_accu_steps": 1,
        "pad_token": c["pad_token"],
        "input_style": "binned",
        "input_emb_style": "continuous",
        "n_bins": c["n_bins"],
        "max_seq_len": c["max_seq_len"],
        "training_tasks": "both",
        "dist_url": "generated",
        "mask_ratio": [0.25, 0.5, 0.75],
        "trunc_by_sample": True,
        "vocab_path": "vocab.json",
        "rank": 0,
        "batch_size": 32,
        "eval_batch_size": 64,
        "epochs": 6,
        "lr": 0.0001,
        "scheduler_interval": 100,
        "scheduler_factor": 0.99,
        "warmup_ratio_or_step": 10000.0,
        "no_cls": True,
        "no_cce": True,
        "fp16": True,
        "fast_transformer": True,
        "nlayers": c["nlayers"],
        "nheads": c["nheads"],
        "embsize": c["embsize"],
        "d_hid": c["d_hid"],
        "dropout": c["dropout"],
        "n_layers_cls": c["n_layers_cls"],
        "log_interval": 9000,
        "save_interval": 27000,
        "mask_value": c["mask_value"],
        "pad_value": c["pad_value"],
        "USE_CLS": False,
        "USE_CCE": False,
        "MVC": False,
        "USE_GENERATIVE_TRAINING": True,
        "world_size": 16,
        "distributed": True,
        "local_rank": 0,
        "gpu": 0,
    }


def to_flash_names(state: Mapping[str, torch.Tensor]) -> "collections.OrderedDict":
    """nn.MultiheadAttention names -> the names of the published flash-attn checkpoints.

    The published checkpoints were trained with FlashTransformerEncoderLayer, whose
    self_attn is flash_attn 1.x's FlashMHA: `Wqkv` = Linear(d, 3d) (rows [q; k; v], heads
    contiguous inside each block: rearrange 'b s (three h d) -> b s three h d') and
    `out_proj`. scgpt.utils.load_pretrained maps them back with
    k.replace("Wqkv.", "in_proj_") when use_fast_transformer is False.
    """
    out = collections.OrderedDict()
    for k, v in state.items():
        k2 = k.replace("self_attn.in_proj_weight", "self_attn.Wqkv.weight")
        k2 = k2.replace("self_attn.in_proj_bias", "self_attn.Wqkv.bias")
        out[k2] = v.detach().clone().contiguous()
    return out


def make_scgpt(seed: int) -> None:
    out = OUT / "scgpt"
    out.mkdir(parents=True, exist_ok=True)
    model_mod, load_pretrained = import_scgpt()
    rng = np.random.default_rng(seed)

    # vocab.json: gene symbols first (0..n-1), then the special tokens appended in the
    # order scGPT's loaders append them ([pad, cls, eoc]), as in the published
    # scGPT_human vocab (60694 genes + 3 = 60697). GeneVocab.save_json writes
    # json.dump(vocab.get_stoi(), f, indent=2): torchtext's stoi comes out in hash order,
    # so the file is not sorted by id; the order here is a fixed shuffle.
    symbols = [f"GENE{i + 1}" for i in range(SCGPT_GENES)]
    vocab = {s: i for i, s in enumerate(sorted(symbols))}
    for s in ("<pad>", "<cls>", "<eoc>"):
        vocab[s] = len(vocab)
    items = list(vocab.items())
    items = [items[i] for i in rng.permutation(len(items))]
    (out / "vocab.json").write_text(json.dumps(dict(items), indent=2))
    write_json(out / "args.json", scgpt_args())

    c = SCGPT
    torch.manual_seed(seed)

    def build():
        return model_mod.TransformerModel(
            ntoken=len(vocab),
            d_model=c["embsize"],
            nhead=c["nheads"],
            d_hid=c["d_hid"],
            nlayers=c["nlayers"],
            nlayers_cls=c["n_layers_cls"],
            n_cls=c["n_cls"],
            vocab=vocab,
            dropout=c["dropout"],
            pad_token=c["pad_token"],
            pad_value=c["pad_value"],
            do_mvc=False,
            do_dab=False,
            use_batch_labels=False,
            domain_spec_batchnorm=False,
            input_emb_style="continuous",
            cell_emb_style="cls",
            explicit_zero_prob=False,
            use_fast_transformer=False,
            pre_norm=False,
        )

    model = build()
    perturb_(model, seed + 7)
    model.eval()
    torch.save(to_flash_names(model.state_dict()), out / "best_model.pt")

    # Inputs as scgpt.tasks.cell_emb builds them: the cell's non-zero genes in column
    # order, "<cls>" first with value pad_value (get_batch_cell_embeddings:
    # genes = np.insert(genes, 0, vocab["<cls>"]);
    # values = np.insert(values, 0, model_configs["pad_value"])), then the collator pads
    # genes with vocab["<pad>"] and values with pad_value; src_key_padding_mask =
    # gene_ids.eq(vocab["<pad>"]). Values are binned expression levels (1..n_bins-1) as
    # floats, plus non-integer values and values over ContinuousValueEncoder's
    # max_value = 512 (clamped) in the last cell.
    n_genes_per_cell = [12, 25, 3, 18, 8]
    gene_rows, value_rows = [], []
    for c_i, n in enumerate(n_genes_per_cell):
        cols = np.sort(rng.choice(SCGPT_GENES, size=n, replace=False))
        ids = [vocab[symbols[j]] for j in cols]
        vals = rng.integers(1, c["n_bins"], size=n).astype(np.float64)
        if c_i == 4:
            vals[:4] = [0.37, 17.25, 700.0, 512.5]
        gene_rows.append([vocab["<cls>"]] + ids)
        value_rows.append([float(c["pad_value"])] + vals.tolist())
    length = max(len(r) for r in gene_rows)
    gene_ids = torch.full((len(gene_rows), length), vocab["<pad>"], dtype=torch.int64)
    values = torch.full((len(gene_rows), length), float(c["pad_value"]), dtype=torch.float32)
    for i, (g, v) in enumerate(zip(gene_rows, value_rows)):
        gene_ids[i, : len(g)] = torch.tensor(g)
        values[i, : len(v)] = torch.tensor(v, dtype=torch.float32)
    mask = gene_ids.eq(vocab["<pad>"])

    def forward(m):
        m.eval()
        with torch.no_grad():
            o = m(gene_ids, values, src_key_padding_mask=mask, CLS=True)
            emb = m.encoder(gene_ids) + m.value_encoder(values)
            enc = m._encode(gene_ids, values, src_key_padding_mask=mask)
        return o, emb, enc

    assert model.transformer_encoder.use_nested_tensor
    o, emb, enc = forward(model)
    expected = {
        "gene_ids": i64(gene_ids),
        "values": f32(values),
        "src_key_padding_mask": i64(mask),
        "embedding_output": f32(emb),
        "transformer_output": f32(enc),
        "cell_emb": f32(o["cell_emb"]),
        "cls_output": f32(o["cls_output"]),
        "mlm_output": f32(o["mlm_output"]),
    }
    save_file(expected, str(out / "expected.safetensors"))

    # Checks. (1) The official loader (load_pretrained, strict) takes best_model.pt into a
    # fresh non-flash model and gives the same outputs.
    torch.manual_seed(seed + 99)
    fresh = build()
    load_pretrained(fresh, torch.load(out / "best_model.pt", weights_only=True),
                    strict=True, verbose=False)
    o2, _, _ = forward(fresh)
    for k in ("cell_emb", "cls_output", "mlm_output"):
        assert torch.equal(o2[k], o[k]), k
    # (2) In eval mode without grad, nn.TransformerEncoder runs PyTorch's nested-tensor
    # fast path: padded positions leave the encoder as exact zeros (so mlm_output there is
    # ExprDecoder(0)); the plain math path (fast path off) agrees on every real token.
    pad = mask.unsqueeze(-1).expand_as(enc)
    assert torch.all(enc[pad] == 0)
    with torch.no_grad():
        dec0 = model.decoder(torch.zeros(1, 1, c["embsize"]))["pred"].item()
    assert torch.allclose(o["mlm_output"][mask], torch.tensor(dec0), atol=1e-6, rtol=0)
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        o3, _, enc3 = forward(model)
    finally:
        torch.backends.mha.set_fastpath_enabled(True)
    keep = ~mask
    assert torch.allclose(enc3[keep], enc[keep], atol=1e-5, rtol=0)
    assert torch.allclose(o3["mlm_output"][keep], o["mlm_output"][keep], atol=1e-5, rtol=0)
    assert torch.allclose(o3["cell_emb"], o["cell_emb"], atol=1e-5, rtol=0)
    assert torch.allclose(o3["cls_output"], o["cls_output"], atol=1e-5, rtol=0)


# --------------------------------------------------------------------------------------


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    make_geneformer("geneformer", cls_model=False, specials=["<pad>", "<mask>"],
                    special_token=False, seed=SEED + 10)
    make_geneformer("geneformer_cls", cls_model=True,
                    specials=["<pad>", "<mask>", "<cls>", "<eos>"], special_token=True,
                    seed=SEED + 20)
    make_scgpt(seed=SEED + 30)
    total = 0
    for p in sorted(OUT.rglob("*")):
        if p.is_file():
            size = p.stat().st_size
            total += size
            digest = hashlib.sha256(p.read_bytes()).hexdigest()[:16]
            print(f"{size:>8}  {digest}  {p.relative_to(ROOT)}")
    print(f"{total:>8}  total")
    assert total < 1 << 20, "fixtures must stay well under 1 MiB"


if __name__ == "__main__":
    main()
