//! Build script: a fingerprint of the sources that compute results.
//!
//! The study cache keys every grid cell by (config, data, code version). A package version
//! alone would keep serving stale cells after a code change that did not bump it, so the
//! code version also carries a hash of everything that can change a number: the library
//! sources, the embedded simulator parameters and the locked dependency versions. Editing
//! a comment invalidates the cache too; that errs on the side of recomputing.

use std::fs;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("rs" | "toml")
        ) {
            out.push(path);
        }
    }
}

/// 64-bit FNV-1a: no dependency, stable across platforms and Rust versions.
fn fnv1a(hash: &mut u64, bytes: &[u8]) {
    for &b in bytes {
        *hash ^= u64::from(b);
        *hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into()));
    let mut files = Vec::new();
    for dir in ["src", "data/params"] {
        collect(&root.join(dir), &mut files);
        println!("cargo:rerun-if-changed={dir}");
    }
    files.push(root.join("Cargo.lock"));
    println!("cargo:rerun-if-changed=Cargo.lock");
    files.sort();
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for f in &files {
        let rel = f.strip_prefix(&root).unwrap_or(f);
        // Path separators normalised so a Windows checkout gets the same fingerprint.
        fnv1a(
            &mut hash,
            rel.to_string_lossy().replace('\\', "/").as_bytes(),
        );
        fnv1a(&mut hash, &[0]);
        if let Ok(bytes) = fs::read(f) {
            fnv1a(&mut hash, &bytes);
        }
        fnv1a(&mut hash, &[0]);
    }
    println!("cargo:rustc-env=SCROBUST_SOURCE_HASH={hash:016x}");
}
