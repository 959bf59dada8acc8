#!/usr/bin/env python3
"""PyTorch peer of examples/train_throughput.rs, for benches/train_vs_torch.sh.

The three scrobust models (src/models/) written in idiomatic PyTorch with the same layer
structure, sizes, norm placement, activations, dropout sites and parameter count:
- scGPT-like: gene Embedding -> LayerNorm plus value encoder (clamp <= 512, Linear(1,d),
  ReLU, Linear, LayerNorm, Dropout), summed; post-norm nn.TransformerEncoderLayer (ReLU,
  separate q/k/v weights packed as in_proj, key padding mask).
- Geneformer-like: token (+<mask>) Embedding + learned positions -> LayerNorm -> Dropout;
  post-norm encoder layers.
- SC-MAMBA2-like: the scGPT embedding, then bidirectional Mamba-2 layers
  (x + drop(fwd(RMSNorm(x)) + flip(bwd(flip(RMSNorm(x)))))), final RMSNorm, zero at padding.
  Each block is Mamba2Simple (ngroups 1): in_proj -> [z, xBC, dt], masked xBC -> causal
  depthwise conv -> SiLU, dt = softplus(dt + dt_bias) masked, chunked SSD scan as
  state-spaces/mamba ssd_minimal.py, + D x, gated RMSNorm(y * silu(z)), out_proj.
- Head: scGPT ClsDecoder ((Linear, ReLU, LayerNorm) x n_layers_cls, Linear) on token 0.
One step = forward (train mode) + cross entropy + backward + clip_grad_norm_(grad_clip) +
AdamW (weight decay on tensors of rank >= 2 only, lr from the trainer's schedule).

python train_torch.py --model scgpt [--config configs/quick.toml] [--steps 20]
    [--warmup 3] [--genes 1000] [--classes 8] [--threads T] [--expect-params N]
Prints one JSON line like the Rust example, with framework "torch".
"""
import argparse
import json
import math
import os
import sys
import time
import tomllib

import torch
import torch.nn as nn
import torch.nn.functional as F

N_SPECIAL, CLS_ID = 4, 1  # src/tokenize/vocab.rs


def proc_status_mib(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def rms_norm(x, weight, eps=1e-5):
    return F.rms_norm(x, (x.shape[-1],), weight, eps)


class GeneValueEmbedding(nn.Module):
    def __init__(self, vocab, d, dropout, max_value):
        super().__init__()
        self.gene = nn.Embedding(vocab, d)
        self.gene_norm = nn.LayerNorm(d)
        self.value_in = nn.Linear(1, d)
        self.value_out = nn.Linear(d, d)
        self.value_norm = nn.LayerNorm(d)
        self.dropout = nn.Dropout(dropout)
        self.max_value = max_value

    def forward(self, ids, values):
        genes = self.gene_norm(self.gene(ids))
        v = values.clamp(max=self.max_value).unsqueeze(-1)
        v = self.value_out(F.relu(self.value_in(v)))
        return genes + self.dropout(self.value_norm(v))


def encoder_layers(n, d, heads, hidden, dropout, pre_norm):
    return nn.ModuleList(
        nn.TransformerEncoderLayer(d, heads, hidden, dropout, activation="relu",
                                   batch_first=True, norm_first=pre_norm)
        for _ in range(n))


class ScGpt(nn.Module):
    def __init__(self, c, vocab):
        super().__init__()
        self.embedding = GeneValueEmbedding(vocab, c["d_model"], c["dropout"],
                                            c.get("max_value", 512.0))
        self.layers = encoder_layers(c["n_layers"], c["d_model"], c["n_heads"],
                                     c["d_hidden"], c["dropout"], c.get("pre_norm", False))

    def forward(self, ids, values, mask):
        x = self.embedding(ids, values)
        pad = mask == 0
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=pad)
        return x


class Geneformer(nn.Module):
    def __init__(self, c, vocab, max_len):
        super().__init__()
        self.tokens = nn.Embedding(vocab + 1, c["d_model"])  # + <mask>
        self.positions = nn.Embedding(max_len, c["d_model"])
        self.norm = nn.LayerNorm(c["d_model"])
        self.dropout = nn.Dropout(c["dropout"])
        self.layers = encoder_layers(c["n_layers"], c["d_model"], c["n_heads"],
                                     c["d_hidden"], c["dropout"], False)

    def forward(self, ids, values, mask):
        pos = self.positions(torch.arange(ids.shape[1], device=ids.device))
        x = self.dropout(self.norm(self.tokens(ids) + pos))
        pad = mask == 0
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=pad)
        return x


def segsum(x):
    """exp-ready segment sums over the last axis, -inf above the diagonal (ssd_minimal)."""
    t = x.size(-1)
    cs = torch.cumsum(x, dim=-1)
    seg = cs[..., :, None] - cs[..., None, :]
    keep = torch.tril(torch.ones(t, t, dtype=torch.bool, device=x.device))
    return seg.masked_fill(~keep, -torch.inf)


def ssd_chunked(x, a, b, c, chunk):
    """ssd_minimal_discrete with ngroups 1: x (B,L,H,P) times dt, a = dt*A (B,L,H),
    b/c (B,L,N); zero-padded to whole chunks as src/models/mamba2/ssd.rs."""
    bs, length, h, p = x.shape
    n = b.shape[-1]
    pad = (-length) % chunk
    if pad:
        x = F.pad(x, (0, 0, 0, 0, 0, pad))
        a = F.pad(a, (0, 0, 0, pad))
        b = F.pad(b, (0, 0, 0, pad))
        c = F.pad(c, (0, 0, 0, pad))
    nc = (length + pad) // chunk
    x = x.reshape(bs, nc, chunk, h, p)
    a = a.reshape(bs, nc, chunk, h).permute(0, 3, 1, 2)  # b h c l
    b = b.reshape(bs, nc, chunk, n)
    c = c.reshape(bs, nc, chunk, n)
    a_cum = torch.cumsum(a, dim=-1)
    l_mat = torch.exp(segsum(a))
    y_diag = torch.einsum("bcln,bcsn,bhcls,bcshp->bclhp", c, b, l_mat, x)
    decay_states = torch.exp(a_cum[..., -1:] - a_cum)
    states = torch.einsum("bcln,bhcl,bclhp->bchpn", b, decay_states, x)
    states = torch.cat([torch.zeros_like(states[:, :1]), states], dim=1)
    decay_chunk = torch.exp(segsum(F.pad(a_cum[..., -1], (1, 0))))
    states = torch.einsum("bhzc,bchpn->bzhpn", decay_chunk, states)[:, :-1]
    y_off = torch.einsum("bcln,bchpn,bhcl->bclhp", c, states, torch.exp(a_cum))
    return (y_diag + y_off).reshape(bs, nc * chunk, h, p)[:, :length]


def inv_softplus(y):
    return math.log(math.expm1(y))


class Mamba2Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, n = c["d_model"], c["d_state"]
        self.di = c["expand"] * d
        self.p = c["headdim"]
        self.h = self.di // self.p
        self.n = n
        self.dxbc = self.di + 2 * n
        self.chunk = c["chunk_size"]
        self.in_proj = nn.Linear(d, self.di + self.dxbc + self.h, bias=False)
        self.conv1d = nn.Conv1d(self.dxbc, self.dxbc, c["d_conv"], groups=self.dxbc,
                                padding=c["d_conv"] - 1)
        self.A_log = nn.Parameter(torch.empty(self.h).uniform_(0.0, math.log(16.0)))
        self.dt_bias = nn.Parameter(
            torch.empty(self.h).uniform_(inv_softplus(1e-3), inv_softplus(1e-1)))
        self.D = nn.Parameter(torch.ones(self.h))
        self.norm_weight = nn.Parameter(torch.ones(self.di))
        self.out_proj = nn.Linear(self.di, d, bias=False)

    def forward(self, u, mask):  # u (b, l, d), mask (b, l, 1)
        bs, length, _ = u.shape
        z, xbc, dt = torch.split(self.in_proj(u), [self.di, self.dxbc, self.h], dim=-1)
        xbc = (xbc * mask).transpose(1, 2)
        xbc = F.silu(self.conv1d(xbc)[..., :length].transpose(1, 2))
        x, b, c = torch.split(xbc, [self.di, self.n, self.n], dim=-1)
        dt = F.softplus(dt + self.dt_bias) * mask
        a = -torch.exp(self.A_log)
        x = x.reshape(bs, length, self.h, self.p)
        y = ssd_chunked(x * dt.unsqueeze(-1), dt * a, b, c, self.chunk)
        y = y + x * self.D[:, None]
        y = y.reshape(bs, length, self.di) * F.silu(z)
        return self.out_proj(rms_norm(y, self.norm_weight))


class BiLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm_weight = nn.Parameter(torch.ones(c["d_model"]))
        self.fwd = Mamba2Block(c)
        self.bwd = Mamba2Block(c)

    def forward(self, x, mask):
        u = rms_norm(x, self.norm_weight)
        back = self.bwd(u.flip(1), mask.flip(1)).flip(1)
        return self.fwd(u, mask) + back


class ScMamba2(nn.Module):
    def __init__(self, c, vocab):
        super().__init__()
        self.embedding = GeneValueEmbedding(vocab, c["d_model"], c["dropout"],
                                            c.get("max_value", 512.0))
        self.layers = nn.ModuleList(BiLayer(c) for _ in range(c["n_layers"]))
        self.norm_f = nn.Parameter(torch.ones(c["d_model"]))
        self.dropout = nn.Dropout(c["dropout"])

    def forward(self, ids, values, mask):
        h = self.embedding(ids, values)
        mask = mask.unsqueeze(-1)
        for layer in self.layers:
            h = h + self.dropout(layer(h, mask))
        return rms_norm(h, self.norm_f) * mask


class ClsDecoder(nn.Module):
    def __init__(self, d, n_layers, n_classes):
        super().__init__()
        blocks = []
        for _ in range(n_layers):
            blocks += [nn.Linear(d, d), nn.ReLU(), nn.LayerNorm(d)]
        self.blocks = nn.Sequential(*blocks)
        self.out = nn.Linear(d, n_classes)

    def forward(self, x):
        return self.out(self.blocks(x))


class Classifier(nn.Module):
    def __init__(self, encoder, d, n_layers_cls, n_classes):
        super().__init__()
        self.encoder = encoder
        self.head = ClsDecoder(d, n_layers_cls, n_classes)

    def forward(self, ids, values, mask):
        return self.head(self.encoder(ids, values, mask)[:, 0])


def learning_rate(t, step, total):
    """src/models/optim.rs learning_rate."""
    if t["warmup_steps"] > 0 and step < t["warmup_steps"]:
        return t["lr"] * (step + 1) / t["warmup_steps"]
    if t["schedule"] == "cosine":
        span = max(total - t["warmup_steps"], 1)
        frac = min((step - min(t["warmup_steps"], step)) / span, 1.0)
        floor = t["lr"] * t["min_lr_ratio"]
        return floor + (t["lr"] - floor) * 0.5 * (1 + math.cos(math.pi * frac))
    k = max(step - t["warmup_steps"], 0) // max(t["step_every"], 1)
    return t["lr"] * t["step_gamma"] ** k


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, choices=["scgpt", "geneformer", "scmamba2"])
    ap.add_argument("--config", default="configs/quick.toml")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--genes", type=int, default=1000)
    ap.add_argument("--classes", type=int, default=8)
    ap.add_argument("--threads", type=int,
                    default=int(os.environ.get("RAYON_NUM_THREADS", os.cpu_count() or 1)))
    ap.add_argument("--expect-params", type=int, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with open(args.config, "rb") as f:
        cfg = tomllib.load(f)
    t, mc = cfg["train"], cfg["models"][args.model]
    torch.manual_seed(t["seed"])
    vocab = args.genes + N_SPECIAL
    bsz, length = t["batch_size"], t["max_seq_len"]
    if args.model == "scgpt":
        enc = ScGpt(mc, vocab)
    elif args.model == "geneformer":
        enc = Geneformer(mc, vocab, length)
    else:
        enc = ScMamba2(mc, vocab)
    model = Classifier(enc, mc["d_model"], t["n_layers_cls"], args.classes)
    n_params = sum(p.numel() for p in model.parameters())
    if args.expect_params is not None and n_params != args.expect_params:
        sys.exit(f"{args.model}: torch has {n_params} parameters, candle "
                 f"{args.expect_params}: the architectures differ")
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": t["weight_decay"]},
                             {"params": rest, "weight_decay": 0.0}],
                            lr=t["lr"], betas=(0.9, 0.999), eps=1e-8)

    # Synthetic batch as the Rust side: <cls> (value 0), then distinct random genes with
    # bins 1..n_bins (binned models) or 0 (rank encoding), no padding, random labels.
    g = torch.Generator().manual_seed(0)
    genes = torch.stack([torch.randperm(args.genes, generator=g)[: length - 1]
                         for _ in range(bsz)]) + N_SPECIAL
    ids = torch.cat([torch.full((bsz, 1), CLS_ID), genes], dim=1)
    values = torch.randint(1, max(t["n_bins"], 2), (bsz, length), generator=g).float()
    values[:, 0] = 0.0
    if args.model == "geneformer":
        values.zero_()
    mask = torch.ones(bsz, length)
    labels = torch.randint(0, args.classes, (bsz,), generator=g)

    model.train()
    total = args.warmup + args.steps
    params = list(model.parameters())
    phases = [0.0, 0.0, 0.0]  # forward + loss, backward, clip + AdamW (timed steps)
    start = time.perf_counter()
    for step in range(total):
        if step == args.warmup:
            start = time.perf_counter()
            phases = [0.0, 0.0, 0.0]
        t_fwd = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = learning_rate(t, step, total)
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(ids, values, mask), labels)
        if not math.isfinite(loss.item()):
            sys.exit(f"{args.model}: loss {loss.item()} at step {step}")
        t_bwd = time.perf_counter()
        loss.backward()
        t_opt = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(params, t["grad_clip"])
        opt.step()
        phases[0] += t_bwd - t_fwd
        phases[1] += t_opt - t_bwd
        phases[2] += time.perf_counter() - t_opt
    secs = time.perf_counter() - start
    cells = args.steps * bsz
    # Inference as the pipeline predicts: eval mode, softmax, argmax and max score.
    model.eval()
    with torch.no_grad():
        for i in range(args.warmup + args.steps):
            if i == args.warmup:
                pstart = time.perf_counter()
            probs = F.softmax(model(ids, values, mask), dim=-1)
            probs.max(dim=-1)
    predict_s = (time.perf_counter() - pstart) / args.steps
    print(json.dumps({
        "model": args.model,
        "framework": "torch",
        "torch": torch.__version__,
        "cells_per_s": cells / secs,
        "tokens_per_s": cells * length / secs,
        "step_s": secs / args.steps,
        "forward_s": phases[0] / args.steps,
        "backward_s": phases[1] / args.steps,
        "optim_s": phases[2] / args.steps,
        "predict_cells_per_s": bsz / predict_s,
        "n_params": n_params,
        "threads": torch.get_num_threads(),
        "batch": bsz,
        "seq_len": length,
        "steps": args.steps,
        "peak_rss_mib": proc_status_mib("VmHWM:"),
    }))


if __name__ == "__main__":
    main()
