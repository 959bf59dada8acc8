//! Statistical baselines: Seurat v5 label transfer, logistic regression and kNN.
