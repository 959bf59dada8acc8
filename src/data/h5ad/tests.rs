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
