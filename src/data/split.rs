//! Reference/query splits: by obs column values, stratified random, or cell-id lists.
