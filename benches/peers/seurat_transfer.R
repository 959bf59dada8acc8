# Seurat label transfer on a reference/query pair exported by
# `cargo run --release --example bench_transfer` (genes x cells MTX, cell tables).
# Same recipe as the shared peers (peers/<task>/seurat_kfNA.csv): LogNormalize (1e4),
# vst 2000 features on the reference, FindTransferAnchors(reduction = "pcaproject",
# dims = 1:30, k.filter = NA), TransferData(k.weight = 50).
# Usage: Rscript seurat_transfer.R DIR   -> prints "seurat_seconds <s>" and
# "seurat_accuracy <a>" (on query cells whose label is a reference class) and writes
# DIR/seurat_predictions.csv (cell,true,pred,score).
suppressPackageStartupMessages({
  library(Matrix)
  library(Seurat)
})
args <- commandArgs(trailingOnly = TRUE)
dir <- if (length(args) >= 1) args[1] else "."
genes <- readLines(file.path(dir, "genes.txt"))
load_side <- function(name) {
  m <- as(readMM(file.path(dir, paste0(name, ".mtx"))), "CsparseMatrix")
  cells <- read.delim(file.path(dir, paste0(name, "_cells.tsv")), header = FALSE,
                      col.names = c("cell", "label"), colClasses = "character")
  dimnames(m) <- list(make.unique(genes), cells$cell)
  obj <- CreateSeuratObject(counts = m)
  obj$label <- cells$label
  obj
}
ref <- load_side("ref")
query <- load_side("query")
t0 <- Sys.time()
ref <- NormalizeData(ref, verbose = FALSE)
query <- NormalizeData(query, verbose = FALSE)
ref <- FindVariableFeatures(ref, selection.method = "vst", nfeatures = 2000, verbose = FALSE)
anchors <- FindTransferAnchors(reference = ref, query = query, reduction = "pcaproject",
                               dims = 1:30, k.filter = NA, verbose = FALSE)
pred <- TransferData(anchorset = anchors, refdata = ref$label, k.weight = 50, verbose = FALSE)
secs <- as.numeric(difftime(Sys.time(), t0, units = "secs"))
known <- query$label %in% unique(ref$label)
acc <- mean(pred$predicted.id[known] == query$label[known])
write.csv(data.frame(cell = colnames(query), true = query$label, pred = pred$predicted.id,
                     score = pred$prediction.score.max),
          file.path(dir, "seurat_predictions.csv"), row.names = FALSE)
cat(sprintf("seurat_seconds %.3f\nseurat_accuracy %.4f\n", secs, acc))
