"""scanpy 1.11 peer of benches/pp_chain.rs: the same chain on the same matrix.

Usage: python scanpy_chain.py DIR   (DIR written by `PP_CHAIN_WRITE=DIR cargo bench --bench pp_chain`)
Prints the median wall time of REPEATS runs of
normalize_total(1e4) -> log1p -> highly_variable_genes(seurat, 2000) -> scale(max_value=10)
-> pca(30), each starting from a fresh copy of the counts.
"""
import sys, time, warnings
import numpy as np, scipy.sparse as sp, anndata as ad, scanpy as sc

warnings.filterwarnings("ignore")
REPEATS = 3
d = sys.argv[1]
n, p = map(int, open(f"{d}/shape.txt").read().split())
x = sp.csr_matrix((np.fromfile(f"{d}/data.f32", "<f4"), np.fromfile(f"{d}/indices.u32", "<u4"),
                   np.fromfile(f"{d}/indptr.u64", "<u8")), shape=(n, p))
base = ad.AnnData(x)
times = []
for _ in range(REPEATS):
    a = base.copy()
    t = time.perf_counter()
    sc.pp.normalize_total(a, target_sum=1e4)
    sc.pp.log1p(a)
    sc.pp.highly_variable_genes(a, flavor="seurat", n_top_genes=2000, subset=True)
    sc.pp.scale(a, max_value=10)
    sc.pp.pca(a, n_comps=30)
    times.append(time.perf_counter() - t)
print(f"scanpy {sc.__version__} chain: median {np.median(times):.3f} s over {REPEATS} runs ({', '.join(f'{v:.3f}' for v in times)})")
print(f"SCANPY_SECONDS {np.median(times):.6f}")
