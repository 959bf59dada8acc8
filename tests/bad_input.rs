//! The bad-input catalogue: every way a user can hand the CLI a broken file, a wrong key or
//! an impossible size. Each case runs the binary in a fresh folder holding only its inputs
//! and asserts exit status 2, a message naming the file, key or problem, and that no
//! output (nor any other new file) was written.

use scrobust::data::h5ad::write_h5ad;
use scrobust::data::{Column, CsrMatrix, Dataset, ValueKind};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A small labelled count matrix: `n` cells of three classes over 12 genes, every cell
/// with non-zero counts.
fn counts(n: usize, classes: usize) -> Dataset {
    let dense = ndarray::Array2::from_shape_fn((n, 12), |(i, j)| {
        let marker = j / 4 == i % classes;
        ((i * 7 + j * 3) % 5) as f32 + if marker { 6.0 } else { 1.0 }
    });
    let labels: Vec<String> = (0..n).map(|i| format!("type{}", i % classes)).collect();
    Dataset {
        x: CsrMatrix::from_dense(&dense),
        cell_ids: (0..n).map(|i| format!("c{i}")).collect(),
        gene_names: (0..12).map(|j| format!("g{j}")).collect(),
        obs: vec![("label".into(), Column::categorical_from_strings(&labels))],
        obsm: vec![],
        value_kind: ValueKind::Counts,
        source: "bad_input".into(),
    }
}

fn write(dir: &Path, name: &str, ds: &Dataset) -> PathBuf {
    let p = dir.join(name);
    write_h5ad(ds, &p).unwrap_or_else(|e| panic!("{e}"));
    p
}

/// A valid reference `ref.h5ad` and query `query.h5ad` in `dir`.
fn pair(dir: &Path) {
    let ds = counts(60, 3);
    write(
        dir,
        "ref.h5ad",
        &ds.select_cells(&(0..30).collect::<Vec<_>>()),
    );
    write(
        dir,
        "query.h5ad",
        &ds.select_cells(&(30..60).collect::<Vec<_>>()),
    );
}

/// Overwrite one dataset of an h5ad in place (for corruptions the writer would not make).
fn patch<T: hdf5::H5Type>(path: &Path, key: &str, values: &[T]) {
    let f = hdf5::File::open_rw(path).unwrap_or_else(|e| panic!("{e}"));
    let d = f.dataset(key).unwrap_or_else(|e| panic!("{e}"));
    d.write_raw(values).unwrap_or_else(|e| panic!("{e}"));
}

fn transfer(extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "transfer",
        "--reference",
        "ref.h5ad",
        "--query",
        "query.h5ad",
        "--label-key",
        "label",
        "--method",
        "knn",
        "--out",
        "pred.csv",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// One case: a name, how to lay out its folder, the command line, and a piece of the
/// expected message (lower-case).
struct Case {
    name: &'static str,
    setup: fn(&Path),
    argv: fn() -> Vec<String>,
    expect: &'static str,
}

/// The smoke profile with its simulated data set replaced by an h5ad file that is absent.
fn missing_data_config() -> String {
    let smoke = include_str!("../configs/smoke.toml");
    let sim = "kind = \"simulated\"\nname = \"myeloid-like\"\nprofile = \"myeloid-like\"\ncells = 600\ngenes = 300\nseed = 1\n";
    assert!(
        smoke.contains(sim),
        "configs/smoke.toml changed: update this test"
    );
    smoke.replace(
        sim,
        "kind = \"h5ad\"\nname = \"mine\"\nlabel_key = \"label\"\ndata = \"nowhere.h5ad\"\ntrain_fraction = 0.8\n",
    )
}

/// Copy the checkpoint fixture `name` to `d/ck`.
fn checkpoint(d: &Path, name: &str) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/checkpoints")
        .join(name);
    std::fs::create_dir(d.join("ck")).unwrap();
    for e in std::fs::read_dir(src).unwrap().flatten() {
        std::fs::copy(e.path(), d.join("ck").join(e.file_name())).unwrap();
    }
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "truncated scGPT checkpoint",
            setup: |d| {
                checkpoint(d, "scgpt");
                let p = d.join("ck/best_model.pt");
                let bytes = std::fs::read(&p).unwrap();
                std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
            },
            argv: || args(&["inspect-checkpoint", "ck"]),
            expect: "best_model.pt",
        },
        Case {
            name: "corrupt Geneformer median dictionary",
            setup: |d| {
                checkpoint(d, "geneformer");
                std::fs::write(d.join("ck/gene_median_dictionary.pkl"), b"not a pickle").unwrap();
            },
            argv: || args(&["inspect-checkpoint", "ck"]),
            expect: "gene_median_dictionary.pkl",
        },
        Case {
            name: "Geneformer checkpoint without its token dictionary",
            setup: |d| {
                checkpoint(d, "geneformer_cls");
                std::fs::remove_file(d.join("ck/token_dictionary.pkl")).unwrap();
            },
            argv: || args(&["inspect-checkpoint", "ck"]),
            expect: "token_dictionary",
        },
        Case {
            name: "gene id table with three columns",
            setup: |d| {
                pair(d);
                checkpoint(d, "scgpt");
                std::fs::write(d.join("ids.tsv"), "GENE1\tA\tB\n").unwrap();
            },
            argv: || {
                args(&[
                    "inspect-checkpoint",
                    "ck",
                    "--data",
                    "ref.h5ad",
                    "--gene-id-table",
                    "ids.tsv",
                ])
            },
            expect: "ids.tsv",
        },
        Case {
            name: "missing file",
            setup: |d| {
                pair(d);
                std::fs::remove_file(d.join("query.h5ad")).unwrap();
            },
            argv: || transfer(&[]),
            expect: "query.h5ad",
        },
        Case {
            name: "directory as input",
            setup: |d| {
                pair(d);
                std::fs::remove_file(d.join("query.h5ad")).unwrap();
                std::fs::create_dir(d.join("query.h5ad")).unwrap();
            },
            argv: || transfer(&[]),
            expect: "query.h5ad",
        },
        Case {
            name: "empty file",
            setup: |d| {
                pair(d);
                std::fs::write(d.join("query.h5ad"), b"").unwrap();
            },
            argv: || transfer(&[]),
            expect: "query.h5ad",
        },
        Case {
            name: "text file",
            setup: |d| {
                pair(d);
                std::fs::write(d.join("query.h5ad"), b"cell,gene\n1,2\n").unwrap();
            },
            argv: || transfer(&[]),
            expect: "query.h5ad",
        },
        Case {
            name: "truncated file",
            setup: |d| {
                pair(d);
                let p = d.join("query.h5ad");
                let b = std::fs::read(&p).unwrap();
                std::fs::write(&p, &b[..b.len() / 2]).unwrap();
            },
            argv: || transfer(&[]),
            expect: "query.h5ad",
        },
        Case {
            name: "hdf5 without X",
            setup: |d| {
                pair(d);
                let f = hdf5::File::create(d.join("query.h5ad")).unwrap();
                f.create_group("obs").unwrap();
            },
            argv: || transfer(&[]),
            expect: "'x' not found",
        },
        Case {
            name: "missing label key",
            setup: pair,
            argv: || {
                let mut v = transfer(&[]);
                v[6] = "cell_type".into();
                v
            },
            expect: "cell_type",
        },
        Case {
            name: "NaN value",
            setup: |d| {
                pair(d);
                let mut q = counts(30, 3);
                q.x.data_mut()[5] = f32::NAN;
                write(d, "query.h5ad", &q);
            },
            argv: || transfer(&[]),
            expect: "nan",
        },
        Case {
            name: "Inf value",
            setup: |d| {
                pair(d);
                let mut q = counts(30, 3);
                q.x.data_mut()[5] = f32::INFINITY;
                write(d, "query.h5ad", &q);
            },
            argv: || transfer(&[]),
            expect: "inf",
        },
        Case {
            name: "negative value",
            setup: |d| {
                pair(d);
                let mut q = counts(30, 3);
                q.x.data_mut()[5] = -3.0;
                write(d, "query.h5ad", &q);
            },
            argv: || transfer(&[]),
            expect: "scaled",
        },
        Case {
            name: "non-integer value in counts",
            setup: |d| {
                pair(d);
                let mut q = counts(30, 3);
                q.x.data_mut()[5] = 1.5;
                write(d, "query.h5ad", &q);
            },
            argv: || transfer(&[]),
            expect: "non-integer",
        },
        Case {
            name: "all-zero cell",
            setup: |d| {
                pair(d);
                let q = counts(30, 3);
                let mut dense = q.x.to_dense();
                dense.row_mut(3).fill(0.0);
                let q = Dataset {
                    x: CsrMatrix::from_dense(&dense),
                    ..q
                };
                write(d, "query.h5ad", &q);
            },
            argv: || transfer(&[]),
            expect: "empty cell",
        },
        Case {
            name: "duplicate genes",
            setup: |d| {
                pair(d);
                let mut q = counts(30, 3);
                q.gene_names[1] = "g0".into();
                write(d, "query.h5ad", &q);
            },
            argv: || transfer(&[]),
            expect: "g0",
        },
        Case {
            name: "no shared genes",
            setup: |d| {
                pair(d);
                let mut q = counts(30, 3);
                for g in &mut q.gene_names {
                    g.insert(0, 'x');
                }
                write(d, "query.h5ad", &q);
            },
            argv: || transfer(&[]),
            expect: "gene",
        },
        Case {
            name: "index out of range",
            setup: |d| {
                pair(d);
                let q = d.join("query.h5ad");
                let n = counts(30, 3).x.nnz();
                let mut idx: Vec<i32> = counts(30, 3)
                    .x
                    .indices()
                    .iter()
                    .map(|&i| i as i32)
                    .collect();
                idx[n / 2] = 500;
                patch(&q, "X/indices", &idx);
            },
            argv: || transfer(&[]),
            expect: "indices",
        },
        Case {
            name: "categorical code out of range",
            setup: |d| {
                pair(d);
                let codes: Vec<i8> = (0..30)
                    .map(|i| if i == 4 { 9 } else { (i % 3) as i8 })
                    .collect();
                patch(&d.join("query.h5ad"), "obs/label/codes", &codes);
            },
            argv: || transfer(&[]),
            expect: "label",
        },
        Case {
            name: "output equals the query",
            setup: pair,
            argv: || {
                let mut v = transfer(&[]);
                v[10] = "query.h5ad".into();
                v
            },
            expect: "also an input",
        },
        Case {
            name: "h5ad output equals the reference",
            setup: pair,
            argv: || transfer(&["--out-h5ad", "./ref.h5ad"]),
            expect: "also an input",
        },
        Case {
            name: "zero-cell query",
            setup: |d| {
                pair(d);
                write(d, "query.h5ad", &counts(30, 3).select_cells(&[]));
            },
            argv: || transfer(&[]),
            expect: "no cells",
        },
        Case {
            name: "continuous label column",
            setup: |d| {
                let mut ds = counts(60, 3);
                ds.obs = vec![(
                    "label".into(),
                    Column::Float((0..60).map(|i| i as f64 * 0.37).collect()),
                )];
                write(d, "ref.h5ad", &ds);
                write(d, "query.h5ad", &ds);
            },
            argv: || transfer(&[]),
            expect: "continuous",
        },
        Case {
            name: "one-class reference for train",
            setup: |d| {
                let ds = counts(30, 1);
                write(d, "ref.h5ad", &ds);
                write(d, "query.h5ad", &counts(30, 3));
            },
            argv: || {
                args(&[
                    "train",
                    "--model",
                    "scgpt",
                    "--reference",
                    "ref.h5ad",
                    "--query",
                    "query.h5ad",
                    "--label-key",
                    "label",
                    "--out",
                    "pred.csv",
                ])
            },
            expect: "class",
        },
        Case {
            name: "train output equals an input",
            setup: pair,
            argv: || {
                args(&[
                    "train",
                    "--model",
                    "scgpt",
                    "--reference",
                    "ref.h5ad",
                    "--query",
                    "query.h5ad",
                    "--label-key",
                    "label",
                    "--out",
                    "ref.h5ad",
                ])
            },
            expect: "also an input",
        },
        Case {
            name: "out-of-range noise",
            setup: pair,
            argv: || {
                args(&[
                    "tokenize-info",
                    "--data",
                    "query.h5ad",
                    "--tokenizer",
                    "binning",
                    "--noise-fraction",
                    "1.5",
                ])
            },
            expect: "1.5",
        },
        Case {
            name: "bogus value kind",
            setup: pair,
            argv: || transfer(&["--value-kind", "tpm"]),
            expect: "value",
        },
        Case {
            name: "invalid study config",
            setup: |d| std::fs::write(d.join("bad.toml"), "[study]\nname = 3\n").unwrap(),
            argv: || {
                args(&[
                    "study",
                    "--no-progress",
                    "--config",
                    "bad.toml",
                    "--out",
                    "res",
                ])
            },
            expect: "bad.toml",
        },
        Case {
            name: "study config naming a missing data file",
            setup: |d| std::fs::write(d.join("bad.toml"), missing_data_config()).unwrap(),
            argv: || {
                args(&[
                    "study",
                    "--no-progress",
                    "--config",
                    "bad.toml",
                    "--out",
                    "res",
                ])
            },
            expect: "nowhere.h5ad",
        },
        Case {
            name: "second study on a locked folder",
            setup: |d| {
                std::fs::create_dir(d.join("res")).unwrap();
                std::fs::write(d.join("res/.study.lock"), std::process::id().to_string()).unwrap();
            },
            argv: || {
                args(&[
                    "study",
                    "--no-progress",
                    "--config",
                    concat!(env!("CARGO_MANIFEST_DIR"), "/configs/smoke.toml"),
                    "--out",
                    "res",
                ])
            },
            expect: "another study",
        },
        Case {
            name: "simulate 1e12 cells",
            setup: |_| {},
            argv: || {
                args(&[
                    "simulate",
                    "--profile",
                    "pancreas-like",
                    "--cells",
                    "1000000000000",
                    "--out",
                    "sim.h5ad",
                ])
            },
            expect: "memory",
        },
        Case {
            name: "simulate u64::MAX cells",
            setup: |_| {},
            argv: || {
                args(&[
                    "simulate",
                    "--profile",
                    "pancreas-like",
                    "--cells",
                    "18446744073709551615",
                    "--out",
                    "sim.h5ad",
                ])
            },
            expect: "cells",
        },
        Case {
            name: "simulate zero genes",
            setup: |_| {},
            argv: || {
                args(&[
                    "simulate",
                    "--profile",
                    "pancreas-like",
                    "--genes",
                    "0",
                    "--out",
                    "sim.h5ad",
                ])
            },
            expect: "genes",
        },
        Case {
            name: "unknown method",
            setup: pair,
            argv: || {
                let mut v = transfer(&[]);
                v[8] = "svm".into();
                v
            },
            expect: "svm",
        },
    ]
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = walk(dir)
        .into_iter()
        .map(|p| p.strip_prefix(dir).unwrap().display().to_string())
        .collect();
    v.sort();
    v
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

/// Every case exits 2 with its message and writes nothing.
#[test]
fn bad_input_catalogue() {
    let all = cases();
    assert!(all.len() >= 25, "the catalogue has {} cases", all.len());
    let mut failures = Vec::new();
    for case in &all {
        let dir = tempfile::tempdir().unwrap();
        (case.setup)(dir.path());
        let before = listing(dir.path());
        let out = Command::new(env!("CARGO_BIN_EXE_scrobust"))
            .args((case.argv)())
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
        let after = listing(dir.path());
        let code = out.status.code();
        if code != Some(2) || !stderr.contains(case.expect) || before != after {
            failures.push(format!(
                "{}: exit {code:?}, expected message part '{}', files before {before:?} after {after:?}\n  stderr: {}",
                case.name,
                case.expect,
                stderr.trim()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}
