"""numpy reference of the two tokenizers' per-cell work, timed on the matrix written by
`examples/tokenize_throughput.rs` (format in benches/common/sim.rs). Written for this
benchmark after the published algorithms, not copied:

- scGPT `scgpt/preprocess.py` `binning`/`_digitize(side="both")`: per dense row, edges =
  np.quantile(non-zero values, np.linspace(0, 1, n_bins - 1)), left/right np.digitize,
  a uniform draw between them. scGPT's Preprocessor densifies the matrix once first
  (`layer_data.A`); that copy is made before the timer starts.
- Geneformer `geneformer/tokenizer.py` rank step: per CSR row, counts / n_counts x 10,000
  / gene median, np.argsort(-values), first 2048 gene tokens (medians precomputed).

Prints one JSON line with cells/s.
"""
import json
import sys
import time

import numpy as np


def read_csr(path):
    with open(path, "rb") as f:
        if f.read(8) != b"SCRBCSR1":
            sys.exit(f"{path}: not a SCRBCSR1 file")
        n_rows, n_cols, nnz = np.frombuffer(f.read(24), dtype="<u8")
        indptr = np.frombuffer(f.read(8 * (int(n_rows) + 1)), dtype="<u8").astype(np.int64)
        indices = np.frombuffer(f.read(4 * int(nnz)), dtype="<u4")
        data = np.frombuffer(f.read(4 * int(nnz)), dtype="<f4")
    return int(n_rows), int(n_cols), indptr, indices, data


def bin_row(row, n_bins, rng):
    out = np.zeros_like(row, dtype=np.int64)
    nz = row.nonzero()
    values = row[nz]
    if values.size == 0:
        return out
    edges = np.quantile(values, np.linspace(0, 1, n_bins - 1))
    left = np.digitize(values, edges)
    right = np.digitize(values, edges, right=True)
    out[nz] = np.ceil(rng.random(values.size) * (right - left) + left).astype(np.int64)
    return out


def best(repeats, f):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    path = sys.argv[1]
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    n_rows, n_cols, indptr, indices, data = read_csr(path)
    dense = np.zeros((n_rows, n_cols), dtype=np.float32)
    for r in range(n_rows):
        a, b = indptr[r], indptr[r + 1]
        dense[r, indices[a:b]] = data[a:b]
    rng = np.random.default_rng(0)

    def binning():
        return [bin_row(row, 51, rng) for row in dense]

    totals = np.add.reduceat(data.astype(np.float64), indptr[:-1]) if data.size else np.zeros(n_rows)
    cp10k = data / np.repeat(totals, np.diff(indptr)) * 1e4
    medians = np.full(n_cols, np.nan)
    order = np.argsort(indices, kind="stable")
    cols, starts = np.unique(indices[order], return_index=True)
    for c, chunk in zip(cols, np.split(cp10k[order], starts[1:])):
        medians[c] = np.median(chunk)
    tokens = np.arange(n_cols) + 4

    def rank():
        out = []
        for r in range(n_rows):
            a, b = indptr[r], indptr[r + 1]
            idx = indices[a:b]
            values = data[a:b] / totals[r] * 1e4 / medians[idx]
            out.append(tokens[idx][np.argsort(-values)][:2048])
        return out

    t_bin = best(repeats, binning)
    t_rank = best(max(repeats, 3), rank)
    print(json.dumps({
        "cells": n_rows,
        "numpy": np.__version__,
        "binning_s": t_bin,
        "rank_s": t_rank,
        "binning_cells_per_s": n_rows / t_bin,
        "rank_cells_per_s": n_rows / t_rank,
    }))


if __name__ == "__main__":
    main()
