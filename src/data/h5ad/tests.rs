//! Round trips and one test per kind of bad input. Broken files are made by writing a
//! valid file and then editing it with the hdf5 crate, or by garbling its bytes.

use super::*;
use crate::data::{Column, CsrMatrix};
use std::path::{Path, PathBuf};

fn toy() -> Dataset {
    let dense = ndarray::array![
        [1.0f32, 0.0, 3.0],
        [0.0, 2.0, 0.0],
        [4.0, 0.0, 1.0],
        [0.0, 0.0, 7.0]
    ];
    Dataset {
        x: CsrMatrix::from_dense(&dense),
        cell_ids: vec!["c1".into(), "c2".into(), "c3".into(), "cell ü".into()],
        gene_names: vec!["G1".into(), "G2".into(), "G3".into()],
        obs: vec![
            (
                "label".into(),
                Column::Categorical {
                    codes: vec![0, 1, -1, 1],
                    categories: vec!["B".into(), "T cell".into()],
                },
            ),
            (
                "donor".into(),
                Column::Str(vec!["d1".into(), "d1".into(), "d2".into(), "".into()]),
            ),
            ("n_counts".into(), Column::Float(vec![4.0, 2.0, 5.0, 7.5])),
            ("n_genes".into(), Column::Int(vec![2, 1, 2, -1])),
            (
                "is_good".into(),
                Column::Bool(vec![true, false, true, true]),
            ),
        ],
        obsm: vec![(
            "X_pca".into(),
            ndarray::Array2::from_shape_fn((4, 2), |(i, j)| i as f32 - j as f32 * 0.5),
        )],
        value_kind: ValueKind::Counts,
        source: "toy".into(),
    }
}

fn written(dir: &Path) -> PathBuf {
    let p = dir.join("toy.h5ad");
    write_h5ad(&toy(), &p).unwrap();
    p
}

fn read(p: &Path) -> Result<Dataset> {
    read_h5ad(p, &ReadOptions::default())
}

/// Replace dataset `key` (e.g. "X/indptr") of an existing file with `values`.
fn replace<T: hdf5::H5Type>(p: &Path, group: &str, name: &str, values: &[T]) {
    let f = hdf5::File::open_rw(p).unwrap();
    let g = f.group(group).unwrap();
    g.unlink(name).unwrap();
    g.new_dataset::<T>()
        .shape([values.len()])
        .create(name)
        .unwrap()
        .write_raw(values)
        .unwrap();
}

/// Write → read returns the same matrix, ids, genes, every column type and obsm.
#[test]
fn round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let back = read(&written(dir.path())).unwrap();
    let ds = toy();
    assert_eq!(back.x, ds.x);
    assert_eq!(back.cell_ids, ds.cell_ids);
    assert_eq!(back.gene_names, ds.gene_names);
    assert_eq!(back.obs, ds.obs);
    assert_eq!(back.obsm, ds.obsm);
    assert_eq!(back.value_kind, ValueKind::Counts);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("toy.h5ad")],
        "no temporary file left behind"
    );
}

/// `value_kind` in the options overrides detection.
#[test]
fn value_kind_override() {
    let dir = tempfile::tempdir().unwrap();
    let p = written(dir.path());
    let opts = ReadOptions {
        use_raw: false,
        value_kind: Some(ValueKind::LogNormalized),
    };
    assert_eq!(
        read_h5ad(&p, &opts).unwrap().value_kind,
        ValueKind::LogNormalized
    );
}

/// A missing file is `FileNotFound` naming the path.
#[test]
fn missing_file() {
    let e = read(Path::new("/nonexistent/x.h5ad")).unwrap_err();
    assert!(matches!(e, Error::FileNotFound { .. }));
    assert!(e.to_string().contains("/nonexistent/x.h5ad"), "{e}");
}

/// A text file and a truncated h5ad are refused with a message naming the file.
#[test]
fn not_hdf5_and_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let txt = dir.path().join("cells.h5ad");
    std::fs::write(&txt, "cell,label\nA,B\n").unwrap();
    let e = read(&txt).unwrap_err();
    assert!(
        matches!(e, Error::NotH5ad { .. }) && e.to_string().contains("cells.h5ad"),
        "{e}"
    );

    let p = written(dir.path());
    let bytes = std::fs::read(&p).unwrap();
    let cut = dir.path().join("cut.h5ad");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = read(&cut).unwrap_err();
    assert!(
        matches!(e, Error::NotH5ad { .. })
            && e.to_string().contains("cut.h5ad")
            && e.to_string().contains("truncated"),
        "{e}"
    );
}

/// A file without `X` is `MissingKey` listing the keys that exist.
#[test]
fn no_x() {
    let dir = tempfile::tempdir().unwrap();
    let p = written(dir.path());
    hdf5::File::open_rw(&p).unwrap().unlink("X").unwrap();
    let e = read(&p).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::MissingKey { .. }), "{msg}");
    assert!(
        msg.contains("toy.h5ad") && msg.contains("'X'") && msg.contains("obs, obsm"),
        "{msg}"
    );
    // Likewise for --use-raw on a file without raw.
    let e = read_h5ad(
        &written(dir.path()),
        &ReadOptions {
            use_raw: true,
            value_kind: None,
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("raw/X"), "{e}");
}

/// An indptr that disagrees with the shape is refused naming `X/indptr`.
#[test]
fn bad_indptr() {
    let dir = tempfile::tempdir().unwrap();
    let p = written(dir.path());
    replace::<i32>(&p, "X", "indptr", &[0, 2, 3, 5]);
    let msg = read(&p).unwrap_err().to_string();
    assert!(
        msg.contains("toy.h5ad") && msg.contains("X/indptr") && msg.contains("4 entries"),
        "{msg}"
    );
    replace::<i32>(&p, "X", "indptr", &[0, 3, 2, 5, 6]);
    let msg = read(&p).unwrap_err().to_string();
    assert!(
        msg.contains("X/indptr") && msg.contains("decreases"),
        "{msg}"
    );
}

/// A column index ≥ n_vars (or negative) is refused naming `X/indices`.
#[test]
fn index_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let p = written(dir.path());
    replace::<i32>(&p, "X", "indices", &[0, 2, 1, 0, 9, 2]);
    let msg = read(&p).unwrap_err().to_string();
    assert!(
        msg.contains("X/indices") && msg.contains("index 9") && msg.contains("out of range"),
        "{msg}"
    );
    replace::<i32>(&p, "X", "indices", &[0, 2, 1, 0, -1, 2]);
    assert!(read(&p).unwrap_err().to_string().contains("index -1"));
}

/// NaN and infinity are refused naming the cell and gene.
#[test]
fn non_finite() {
    let dir = tempfile::tempdir().unwrap();
    let p = written(dir.path());
    replace::<f32>(&p, "X", "data", &[1.0, 3.0, 2.0, 4.0, f32::NAN, 7.0]);
    let msg = read(&p).unwrap_err().to_string();
    assert!(
        msg.contains("non-finite") && msg.contains("'c3'") && msg.contains("'G3'"),
        "{msg}"
    );
    replace::<f32>(
        &p,
        "X",
        "data",
        &[f32::NEG_INFINITY, 3.0, 2.0, 4.0, 1.0, 7.0],
    );
    let msg = read(&p).unwrap_err().to_string();
    assert!(msg.contains("-inf") && msg.contains("'c1'"), "{msg}");
}

/// Duplicate gene names are refused naming the first duplicate.
#[test]
fn duplicate_genes() {
    let dir = tempfile::tempdir().unwrap();
    let mut ds = toy();
    ds.gene_names = vec!["G1".into(), "G2".into(), "G1".into()];
    let p = dir.path().join("dup.h5ad");
    write_h5ad(&ds, &p).unwrap();
    let msg = read(&p).unwrap_err().to_string();
    assert!(
        msg.contains("dup.h5ad") && msg.contains("duplicate name 'G1'"),
        "{msg}"
    );
}

/// `validate` refuses negative values, non-integer counts and empty cells, and accepts
/// the intact toy data.
#[test]
fn validate_values() {
    let ds = toy();
    validate(&ds, ValueKind::Counts).unwrap();
    let mut neg = toy();
    neg.x.data_mut()[0] = -1.0;
    let msg = validate(&neg, ValueKind::Counts).unwrap_err().to_string();
    assert!(
        msg.contains("negative value -1") && msg.contains("'c1'"),
        "{msg}"
    );
    let mut frac = toy();
    frac.x.data_mut()[1] = 0.5;
    assert!(validate(&frac, ValueKind::Counts)
        .unwrap_err()
        .to_string()
        .contains("non-integer"));
    validate(&frac, ValueKind::LogNormalized).unwrap();
    let mut empty = toy();
    empty.x.data_mut()[2] = 0.0;
    let msg = validate(&empty, ValueKind::Counts).unwrap_err().to_string();
    assert!(msg.contains("empty cell") && msg.contains("'c2'"), "{msg}");
}

/// A CSC matrix and a dense float64 matrix read as the same CSR matrix.
#[test]
fn csc_and_dense_x() {
    let dir = tempfile::tempdir().unwrap();
    let p = written(dir.path());
    let want = toy().x.to_dense();
    {
        // CSC of the 4x3 toy: columns G1 = rows 0,2; G2 = row 1; G3 = rows 0,2,3.
        let f = hdf5::File::open_rw(&p).unwrap();
        let x = f.group("X").unwrap();
        x.delete_attr("encoding-type").unwrap();
        x.new_attr::<hdf5::types::VarLenUnicode>()
            .create("encoding-type")
            .unwrap()
            .write_scalar(&"csc_matrix".parse::<hdf5::types::VarLenUnicode>().unwrap())
            .unwrap();
    }
    replace::<i64>(&p, "X", "indptr", &[0, 2, 3, 6]);
    replace::<i64>(&p, "X", "indices", &[2, 0, 1, 3, 0, 2]);
    replace::<f32>(&p, "X", "data", &[4.0, 1.0, 2.0, 7.0, 3.0, 1.0]);
    assert_eq!(read(&p).unwrap().x.to_dense(), want);

    let f = hdf5::File::open_rw(&p).unwrap();
    f.unlink("X").unwrap();
    let flat: Vec<f64> = want.iter().map(|&v| v as f64).collect();
    f.new_dataset::<f64>()
        .shape([4, 3])
        .create("X")
        .unwrap()
        .write_raw(&flat)
        .unwrap();
    drop(f);
    assert_eq!(read(&p).unwrap().x.to_dense(), want);
}

/// anndata 0.7 layout: categorical codes as a dataset with categories in
/// `obs/__categories/<col>`, and a fixed-length ASCII index.
#[test]
fn anndata_07_categorical_and_fixed_strings() {
    let dir = tempfile::tempdir().unwrap();
    let p = written(dir.path());
    {
        let f = hdf5::File::open_rw(&p).unwrap();
        let obs = f.group("obs").unwrap();
        obs.unlink("label").unwrap();
        obs.new_dataset::<i16>()
            .shape([4])
            .create("label")
            .unwrap()
            .write_raw(&[1i16, 0, 0, -1])
            .unwrap();
        let cats: Vec<hdf5::types::FixedAscii<8>> = ["x", "yy"]
            .iter()
            .map(|s| hdf5::types::FixedAscii::from_ascii(s).unwrap())
            .collect();
        obs.create_group("__categories")
            .unwrap()
            .new_dataset::<hdf5::types::FixedAscii<8>>()
            .shape([2])
            .create("label")
            .unwrap()
            .write_raw(&cats)
            .unwrap();
        obs.unlink("_index").unwrap();
        let ids: Vec<hdf5::types::FixedAscii<4>> = ["a", "b", "c", "d"]
            .iter()
            .map(|s| hdf5::types::FixedAscii::from_ascii(s).unwrap())
            .collect();
        obs.new_dataset::<hdf5::types::FixedAscii<4>>()
            .shape([4])
            .create("_index")
            .unwrap()
            .write_raw(&ids)
            .unwrap();
    }
    let ds = read(&p).unwrap();
    assert_eq!(ds.cell_ids, vec!["a", "b", "c", "d"]);
    assert_eq!(
        ds.column("label").unwrap(),
        &Column::Categorical {
            codes: vec![1, 0, 0, -1],
            categories: vec!["x".into(), "yy".into()]
        }
    );
}

/// A categorical code beyond the categories is refused naming the column.
#[test]
fn bad_categorical_code() {
    let dir = tempfile::tempdir().unwrap();
    let p = written(dir.path());
    replace::<i8>(&p, "obs/label", "codes", &[0, 1, 5, 1]);
    let msg = read(&p).unwrap_err().to_string();
    assert!(msg.contains("obs/label") && msg.contains("code 5"), "{msg}");
}

/// A failed write leaves neither the destination nor a temporary file.
#[test]
fn failed_write_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut ds = toy();
    ds.cell_ids[3] = "bad\0id".into();
    let p = dir.path().join("out.h5ad");
    let msg = write_h5ad(&ds, &p).unwrap_err().to_string();
    assert!(
        msg.contains("out.h5ad") && msg.contains("obs/_index"),
        "{msg}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    assert!(write_h5ad(&toy(), &dir.path().join("no/such/dir/x.h5ad")).is_err());
}

/// Make `X` of the toy file CSC with the given `shape` attribute (arrays unchanged).
fn set_csc_shape(p: &Path, shape: [i64; 2]) {
    let f = hdf5::File::open_rw(p).unwrap();
    let x = f.group("X").unwrap();
    x.delete_attr("encoding-type").unwrap();
    x.new_attr::<hdf5::types::VarLenUnicode>()
        .create("encoding-type")
        .unwrap()
        .write_scalar(&"csc_matrix".parse::<hdf5::types::VarLenUnicode>().unwrap())
        .unwrap();
    x.delete_attr("shape").unwrap();
    x.new_attr::<i64>()
        .shape([2])
        .create("shape")
        .unwrap()
        .write_raw(&shape)
        .unwrap();
}

/// A dataset whose shape claims more data than the file holds is refused, naming the
/// key, before any buffer is allocated for it (corrupt metadata once meant a 6.6e14-byte
/// allocation and an abort).
#[test]
fn inflated_dataset_shape() {
    let dir = tempfile::tempdir().unwrap();
    let p = written(dir.path());
    {
        let f = hdf5::File::open_rw(&p).unwrap();
        let x = f.group("X").unwrap();
        x.unlink("data").unwrap();
        // Chunked and never written: 4 TiB of float32 claimed, nothing stored.
        x.new_dataset::<f32>()
            .chunk(1024)
            .shape([1usize << 40])
            .create("data")
            .unwrap();
    }
    let msg = read(&p).unwrap_err().to_string();
    assert!(
        msg.contains("toy.h5ad")
            && msg.contains("X/data")
            && msg.contains("more data than the file can hold"),
        "{msg}"
    );
}

/// A matrix shape inflated beyond what the stored arrays hold is an error, not an
/// allocation sized by it: a CSC matrix's row count and a dense matrix's rows (with no
/// columns) are bounded only by the obs index, which is checked before the matrix is built.
#[test]
fn inflated_matrix_shape() {
    let dir = tempfile::tempdir().unwrap();
    let p = written(dir.path());
    set_csc_shape(&p, [4_000_000_000, 3]);
    replace::<i64>(&p, "X", "indptr", &[0, 2, 3, 6]);
    let msg = read(&p).unwrap_err().to_string();
    assert!(msg.contains("'obs'") && msg.contains("4000000000"), "{msg}");

    let f = hdf5::File::open_rw(&p).unwrap();
    f.unlink("X").unwrap();
    f.new_dataset::<f32>()
        .shape([1usize << 40, 0])
        .create("X")
        .unwrap();
    drop(f);
    let msg = read(&p).unwrap_err().to_string();
    assert!(
        msg.contains("'obs'") && msg.contains(&(1u64 << 40).to_string()),
        "{msg}"
    );
}

/// A gzip-compressed dataset may hold far more than the file's size (here 16 MiB of zeros
/// in a file of a few KiB) and is still read; an uncompressed one claiming that is not.
#[test]
fn compressed_dataset_within_bound() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("zeros.h5");
    let n = 4usize << 20;
    {
        let f = hdf5::File::create(&p).unwrap();
        f.new_dataset::<f32>()
            .chunk(1 << 20)
            .deflate(9)
            .shape([n])
            .create("zeros")
            .unwrap()
            .write_raw(&vec![0f32; n])
            .unwrap();
        f.new_dataset::<f32>()
            .chunk(1 << 20)
            .shape([n])
            .create("unwritten")
            .unwrap();
    }
    let file_size = std::fs::metadata(&p).unwrap().len();
    assert!(file_size < (n as u64) / 10, "file of {file_size} bytes");
    let ctx = hdf::Ctx {
        path: &p,
        file_size,
    };
    let f = hdf5::File::open(&p).unwrap();
    let zeros = hdf::read_f32(&f.dataset("zeros").unwrap(), ctx, "zeros").unwrap();
    assert_eq!(zeros.len(), n);
    let e = hdf::read_f32(&f.dataset("unwritten").unwrap(), ctx, "unwritten").unwrap_err();
    assert!(e.to_string().contains("'unwritten'"), "{e}");
}

/// A variable-length string whose stored length is corrupt is refused before HDF5 zeroes
/// a buffer of that length (up to 4 GiB per string).
#[test]
fn corrupt_string_length() {
    let dir = tempfile::tempdir().unwrap();
    let p = written(dir.path());
    let offset = {
        let f = hdf5::File::open(&p).unwrap();
        let ds = f.dataset("var/_index").unwrap();
        ds.offset()
            .expect("the writer stores string indexes contiguously")
    };
    let mut bytes = std::fs::read(&p).unwrap();
    // Second string's descriptor: its 4-byte length comes first.
    let at = offset as usize + 16;
    bytes[at..at + 4].copy_from_slice(&0xfff0_0000u32.to_le_bytes());
    std::fs::write(&p, &bytes).unwrap();
    let msg = read(&p).unwrap_err().to_string();
    assert!(
        msg.contains("var/_index") && msg.contains("string 1 claims 4293918720 bytes"),
        "{msg}"
    );
}

/// The string-length check reads descriptors from contiguous storage and from unfiltered
/// chunks (a partial last chunk included) without refusing intact strings.
#[test]
fn string_layouts_read() {
    use hdf5::types::VarLenUnicode;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("strings.h5");
    let words: Vec<VarLenUnicode> = ["a", "bb", "", "cell ü", "e"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    {
        let f = hdf5::File::create(&p).unwrap();
        for (name, chunk) in [
            ("contiguous", None),
            ("chunked", Some(2)),
            ("gzip", Some(2)),
        ] {
            let mut b = f.new_dataset::<VarLenUnicode>().shape([words.len()]);
            if let Some(c) = chunk {
                b = b.chunk(c);
            }
            if name == "gzip" {
                b = b.deflate(4);
            }
            b.create(name).unwrap().write_raw(&words).unwrap();
        }
    }
    let ctx = hdf::Ctx {
        path: &p,
        file_size: std::fs::metadata(&p).unwrap().len(),
    };
    let f = hdf5::File::open(&p).unwrap();
    for name in ["contiguous", "chunked", "gzip"] {
        let got = hdf::read_strings(&f.dataset(name).unwrap(), ctx, name).unwrap();
        assert_eq!(got, ["a", "bb", "", "cell ü", "e"], "{name}");
    }
    // A corrupt length in an unfiltered chunk is found too.
    let addr = f.dataset("chunked").unwrap().chunk_info(1).unwrap().addr as usize;
    drop(f);
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[addr..addr + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    std::fs::write(&p, &bytes).unwrap();
    let f = hdf5::File::open(&p).unwrap();
    let e = hdf::read_strings(&f.dataset("chunked").unwrap(), ctx, "chunked").unwrap_err();
    assert!(
        e.to_string().contains("string 2 claims 4294967295 bytes"),
        "{e}"
    );
}

/// `read_var_column` returns a `var` string column in gene order (here Ensembl-like ids,
/// as `var["gene_ids"]` of Cell Ranger files); an absent column is an error naming it and
/// the columns that exist.
#[test]
fn var_column_reads_gene_ids() {
    use hdf5::types::VarLenUnicode;
    let dir = tempfile::tempdir().unwrap();
    let p = written(dir.path());
    let n = read(&p).unwrap().n_vars();
    {
        let f = hdf5::File::open_rw(&p).unwrap();
        let var = f.group("var").unwrap();
        var.delete_attr("column-order").unwrap();
        let ids: Vec<VarLenUnicode> = (0..n)
            .map(|i| format!("ENSG{i:011}").parse().unwrap())
            .collect();
        var.new_dataset::<VarLenUnicode>()
            .shape([n])
            .create("gene_ids")
            .unwrap()
            .write_raw(&ids)
            .unwrap();
    }
    let got = read_var_column(&p, &ReadOptions::default(), "gene_ids").unwrap();
    assert_eq!(got.len(), n);
    assert_eq!(got[1].1.as_deref(), Some("ENSG00000000001"));
    let err = read_var_column(&p, &ReadOptions::default(), "symbols")
        .unwrap_err()
        .to_string();
    assert!(err.contains("symbols") && err.contains("gene_ids"), "{err}");
}

/// An index that anndata ≥ 0.11 wrote from pandas' string dtype (a `nullable-string-array`
/// group of values and mask) reads like a plain string index.
#[test]
fn nullable_string_index_reads() {
    use hdf5::types::VarLenUnicode;
    let dir = tempfile::tempdir().unwrap();
    let p = written(dir.path());
    let plain = read(&p).unwrap();
    {
        let f = hdf5::File::open_rw(&p).unwrap();
        let obs = f.group("obs").unwrap();
        obs.unlink("_index").unwrap();
        let g = obs.create_group("_index").unwrap();
        g.new_attr::<VarLenUnicode>()
            .create("encoding-type")
            .unwrap()
            .write_scalar(&"nullable-string-array".parse::<VarLenUnicode>().unwrap())
            .unwrap();
        let ids: Vec<VarLenUnicode> = plain.cell_ids.iter().map(|c| c.parse().unwrap()).collect();
        let n = ids.len();
        g.new_dataset::<VarLenUnicode>()
            .shape([n])
            .create("values")
            .unwrap()
            .write_raw(&ids)
            .unwrap();
        g.new_dataset::<bool>()
            .shape([n])
            .create("mask")
            .unwrap()
            .write_raw(&vec![false; n])
            .unwrap();
    }
    let back = read(&p).unwrap();
    assert_eq!(back.cell_ids, plain.cell_ids);
    assert_eq!(back.gene_names, plain.gene_names);
}
