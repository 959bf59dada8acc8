#!/usr/bin/env bash
# Every peer comparison in one go; each script installs its peer (scanpy, numpy, R/Seurat,
# PyTorch) when absent and prints scrobust's time, the peer's time and the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
bash benches/pp_vs_scanpy.sh
bash benches/tokenize_vs_numpy.sh
bash benches/transfer_vs_seurat.sh
bash benches/train_vs_torch.sh
