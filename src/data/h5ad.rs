//! Reading and writing AnnData h5ad files: the only module that touches HDF5.
