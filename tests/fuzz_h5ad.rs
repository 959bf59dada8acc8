//! A corrupt h5ad gives an error, never a crash: fixed-seed mutants of small valid files
//! (random byte flips, truncations, damage aimed at HDF5 metadata) are each read by
//! `scrobust inspect --json` in a child process, so that a segfault, an abort or a runaway
//! read shows up as a test failure instead of killing the test harness.
//!
//! Each child runs under `ulimit -v` 1 GiB and a 20 s wall limit, and its peak resident
//! memory (VmHWM) is sampled. Pass: exit 0 (the damage missed anything read) or 2 (an
//! `error: ...`). Anything else fails: a signal, a panic (101), an abort (134), another
//! code, a timeout, or over 1 GiB (Rust's "memory allocation of N bytes failed" abort
//! under the cap, or a sampled peak above 1 GiB).
//! An exit 2 whose error is an allocation HDF5 could not make under the cap is rerun
//! without the cap, and fails if it then goes over 1 GiB resident: the cap must not hide a
//! read that really would use that much.
//!
//! `SCROBUST_FUZZ_MUTANTS` sets the number of mutants (default 300; `benches/fuzz_h5ad.sh`
//! runs 3,000; `SCROBUST_FUZZ_VERBOSE=1` prints every outcome). Mutant `i` depends only on
//! `i`, and failing mutants are kept under `target/tmp/fuzz_h5ad_failures/` to be rerun by
//! hand.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use scrobust::data::h5ad::write_h5ad;
use scrobust::data::simulate::{simulate, Profile, SimulateOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The `scrobust` binary under test (a copy made at the start).
static BIN: OnceLock<PathBuf> = OnceLock::new();
/// Seed of the whole campaign; mutant `i` uses `SEED + i`.
const SEED: u64 = 0x5c_2024;
/// Wall-clock limit of one read.
const TIME_LIMIT: Duration = Duration::from_secs(20);
/// Address-space limit of one read, in KiB for `ulimit -v` (1 GiB).
const MEMORY_LIMIT_KIB: u64 = 1 << 20;

/// How one read ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Error,
    Panic,
    Abort,
    OverMemory,
    Signal(i32),
    Timeout,
    OtherExit(i32),
}

impl Outcome {
    fn passed(self) -> bool {
        matches!(self, Outcome::Ok | Outcome::Error)
    }
}

/// A valid file to mutate.
struct Base {
    name: &'static str,
    /// The file has `raw.X`, so half its mutants are read with `--use-raw`.
    has_raw: bool,
    bytes: Vec<u8>,
    /// Offsets of HDF5 metadata: signatures (object headers, B-trees, heaps, ...), the
    /// superblock and unsigned (version 1) object headers.
    metadata: Vec<usize>,
}

#[test]
fn corrupt_h5ad_never_crashes() {
    let n_mutants: usize = std::env::var("SCROBUST_FUZZ_MUTANTS")
        .ok()
        .map(|v| v.parse().expect("SCROBUST_FUZZ_MUTANTS must be a number"))
        .unwrap_or(300);
    let dir = tempfile::tempdir().unwrap();
    // Only this run's failures are kept.
    std::fs::remove_dir_all(failures_dir()).ok();
    // A private copy of the binary: the target folder may be shared with other builds,
    // which must not swap the binary under a running campaign.
    let bin = dir.path().join("scrobust");
    std::fs::copy(env!("CARGO_BIN_EXE_scrobust"), &bin).unwrap();
    BIN.set(bin).unwrap();
    let bases = bases(dir.path());
    for base in &bases {
        let path = dir.path().join(format!("{}-intact.h5ad", base.name));
        std::fs::write(&path, &base.bytes).unwrap();
        for use_raw in [false, true].into_iter().filter(|&r| !r || base.has_raw) {
            let read = run_inspect(&path, true, use_raw);
            assert_eq!(
                read.outcome,
                Outcome::Ok,
                "intact {}: {}",
                base.name,
                read.stderr
            );
        }
    }
    let start = Instant::now();
    let results = run_all(&bases, n_mutants, dir.path());
    let elapsed = start.elapsed().as_secs_f64();
    let verbose = std::env::var_os("SCROBUST_FUZZ_VERBOSE").is_some();
    for r in results.iter().filter(|r| verbose || !r.outcome.passed()) {
        println!("{r}");
    }
    println!("{}", summary_line(&results, elapsed));
    let failures: Vec<String> = results
        .iter()
        .filter(|r| !r.outcome.passed())
        .map(|r| r.to_string())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {n_mutants} mutants crashed or ran away (kept in {}):\n{}",
        failures.len(),
        failures_dir().display(),
        failures.join("\n")
    );
}

/// The files to mutate: a small simulated one written by the library (anndata ≥ 0.8
/// encoding, HDF5's latest format, whose metadata is checksummed) and, when the repository
/// has them, two written by h5py in HDF5's original format (no checksums, so damage reaches
/// deeper): scClassify's Wang query (anndata ≥ 0.8 encoding, 241 kB) and scanpy's
/// pbmc68k_reduced (compound-dataset dataframes of anndata < 0.7, 1.7 MB).
fn bases(dir: &Path) -> Vec<Base> {
    let mut opts = SimulateOptions::new(Profile::PancreasLike);
    opts.n_cells = Some(60);
    opts.n_genes = 50;
    let path = dir.join("simulated.h5ad");
    write_h5ad(&simulate(&opts).unwrap(), &path).unwrap();
    let mut out = vec![base("simulated", std::fs::read(&path).unwrap())];
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data");
    for (name, file) in [
        ("h5py", "scclassify_wang_query.h5ad"),
        ("legacy", "scanpy_pbmc68k_reduced.h5ad"),
    ] {
        match std::fs::read(data.join(file)) {
            Ok(bytes) => out.push(base(name, bytes)),
            Err(e) => eprintln!("fuzz_h5ad: data/{file} not used: {e}"),
        }
    }
    out
}

fn base(name: &'static str, bytes: Vec<u8>) -> Base {
    // Signatures of HDF5's on-disk metadata structures (format spec, "Disk Format Level 1/2").
    const SIGNATURES: [&[u8]; 12] = [
        b"OHDR", b"OCHK", b"TREE", b"HEAP", b"GCOL", b"SNOD", b"BTHD", b"BTIN", b"BTLF", b"FRHP",
        b"FHDB", b"FHIB",
    ];
    let mut metadata = vec![0]; // the superblock
    for (i, w) in bytes.windows(4).enumerate() {
        if SIGNATURES.contains(&w) {
            metadata.push(i);
        }
    }
    metadata.extend(v1_object_headers(&bytes));
    Base {
        name,
        has_raw: name == "legacy",
        bytes,
        metadata,
    }
}

/// Object header addresses in a file of HDF5's original format (superblock version 0,
/// h5py's default), whose object headers carry no signature: the root group's, from the
/// superblock's root symbol-table entry, and every entry of every symbol-table node (SNOD:
/// 8-byte header, then 40-byte entries with the header address at offset 8).
fn v1_object_headers(bytes: &[u8]) -> Vec<usize> {
    let addr_at = |i: usize| {
        bytes
            .get(i..i + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize)
    };
    let mut out = Vec::new();
    if bytes.get(8) != Some(&0) {
        return out;
    }
    out.extend(addr_at(64));
    for (s, w) in bytes.windows(4).enumerate() {
        if w == b"SNOD" {
            let n = bytes
                .get(s + 6..s + 8)
                .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]) as usize);
            out.extend((0..n).filter_map(|k| addr_at(s + 8 + 40 * k + 8)));
        }
    }
    out.retain(|&a| a < bytes.len());
    out
}

/// The result of reading one mutant.
struct Run {
    index: usize,
    what: String,
    outcome: Outcome,
    /// The capped read failed to allocate and the uncapped rerun decided the outcome.
    rerun_uncapped: bool,
    peak_kib: u64,
    stderr_tail: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "mutant {} ({}): {:?}{}, peak {} MiB: {}",
            self.index,
            self.what,
            self.outcome,
            if self.rerun_uncapped {
                " (rerun uncapped)"
            } else {
                ""
            },
            self.peak_kib / 1024,
            self.stderr_tail
        )
    }
}

/// Read every mutant, one child per core (at most 4; CI has two).
fn run_all(bases: &[Base], n_mutants: usize, dir: &Path) -> Vec<Run> {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::with_capacity(n_mutants));
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n_mutants {
                    break;
                }
                let run = run_mutant(bases, i, dir);
                results.lock().unwrap().push(run);
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|r| r.index);
    results
}

/// Make mutant `i`, read it, and keep it if the read failed.
fn run_mutant(bases: &[Base], i: usize, dir: &Path) -> Run {
    // Half the mutants from the simulated file, the rest shared by the others.
    let base = match (i % 2, bases.len()) {
        (0, _) | (_, 1) => &bases[0],
        (_, n) => &bases[1 + (i / 2) % (n - 1)],
    };
    let mut rng = ChaCha8Rng::seed_from_u64(SEED + i as u64);
    let (bytes, what) = mutate(base, &mut rng);
    let path = dir.join(format!("mutant-{i}.h5ad"));
    std::fs::write(&path, &bytes).unwrap();
    let use_raw = base.has_raw && (i / 4) % 2 == 1;
    let mut read = run_inspect(&path, true, use_raw);
    let rerun_uncapped = read.outcome == Outcome::Error && allocation_failed(&read.stderr);
    if rerun_uncapped {
        read = run_inspect(&path, false, use_raw);
    }
    if !read.outcome.passed() {
        let keep = failures_dir();
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(&path, keep.join(format!("mutant-{i}.h5ad"))).unwrap();
    }
    std::fs::remove_file(&path).ok();
    // The message, not the backtrace that RUST_BACKTRACE may add after it.
    let key_lines: Vec<&str> = read
        .stderr
        .lines()
        .filter(|l| {
            ["error:", "panicked", "memory allocation"]
                .iter()
                .any(|k| l.contains(k))
        })
        .take(3)
        .collect();
    let tail = if key_lines.is_empty() {
        read.stderr.lines().rev().take(3).collect()
    } else {
        key_lines
    };
    Run {
        index: i,
        what: format!(
            "{}{} {what}",
            base.name,
            if use_raw { " --use-raw" } else { "" }
        ),
        outcome: read.outcome,
        rerun_uncapped,
        peak_kib: read.peak_kib,
        stderr_tail: tail.join(" | "),
    }
}

fn failures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz_h5ad_failures")
}

/// One mutant of `base` and a short description of the damage.
fn mutate(base: &Base, rng: &mut ChaCha8Rng) -> (Vec<u8>, String) {
    let mut bytes = base.bytes.clone();
    let len = bytes.len();
    match rng.gen_range(0..100) {
        // 1-20 random bytes flipped anywhere.
        0..=39 => {
            let n = rng.gen_range(1..=20);
            for _ in 0..n {
                let at = rng.gen_range(0..len);
                bytes[at] ^= rng.gen_range(1..=255u8);
            }
            (bytes, format!("{n} flips"))
        }
        // Truncated at a random length.
        40..=54 => {
            let at = rng.gen_range(0..len);
            bytes.truncate(at);
            (bytes, format!("truncated at {at}"))
        }
        // 1-8 flips within 96 bytes after metadata signatures: sizes, addresses, dims.
        55..=84 => {
            let n = rng.gen_range(1..=8);
            for _ in 0..n {
                let at = near_metadata(base, rng, 96);
                bytes[at] ^= rng.gen_range(1..=255u8);
            }
            (bytes, format!("{n} metadata flips"))
        }
        // A run of 0xff or 0x00 in metadata: huge or zero lengths, counts and addresses.
        _ => {
            let at = near_metadata(base, rng, 96);
            let run = rng.gen_range(1..=8).min(len - at);
            let fill = if rng.gen_bool(0.5) { 0xff } else { 0x00 };
            bytes[at..at + run].fill(fill);
            (bytes, format!("{run} bytes of {fill:#04x} at {at}"))
        }
    }
}

/// A random offset within `span` bytes after a random metadata signature.
fn near_metadata(base: &Base, rng: &mut ChaCha8Rng, span: usize) -> usize {
    let start = base.metadata[rng.gen_range(0..base.metadata.len())];
    (start + rng.gen_range(0..span)).min(base.bytes.len() - 1)
}

/// How one child read ended.
struct Read {
    outcome: Outcome,
    stderr: String,
    /// Peak resident memory (VmHWM) at the last sample before exit.
    peak_kib: u64,
}

/// Run `scrobust inspect FILE --json [--use-raw]` under the time limit, sampling its peak
/// resident memory, and with `capped` under the 1 GiB address-space limit too.
fn run_inspect(file: &Path, capped: bool, use_raw: bool) -> Read {
    let stderr_path = file.with_extension("stderr");
    let stderr_file = std::fs::File::create(&stderr_path).unwrap();
    // `ulimit -v` through bash: the limit applies to the exec'd binary only.
    let ulimit = if capped {
        format!("ulimit -v {MEMORY_LIMIT_KIB}; ")
    } else {
        String::new()
    };
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(format!("{ulimit}exec \"$0\" \"$@\""))
        .arg(BIN.get().expect("binary copied"))
        .arg("inspect")
        .arg(file)
        .arg("--json")
        .args(use_raw.then_some("--use-raw"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr_file)
        .spawn()
        .expect("cannot start bash");
    let (status, peak_kib) = wait_watched(&mut child);
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    std::fs::remove_file(&stderr_path).ok();
    let outcome = match status {
        Err(o) => o,
        Ok(s) => classify(s, &stderr),
    };
    Read {
        outcome,
        stderr,
        peak_kib,
    }
}

/// Wait for `child`, killing it past the time limit or 1 GiB resident; returns its exit
/// status (or the outcome it was killed for) and its peak resident memory in KiB.
fn wait_watched(child: &mut std::process::Child) -> (Result<ExitStatus, Outcome>, u64) {
    let start = Instant::now();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (Ok(status), peak);
        }
        peak = peak.max(vm_hwm_kib(&status_file));
        let killed_for = if peak > MEMORY_LIMIT_KIB {
            Some(Outcome::OverMemory)
        } else if start.elapsed() > TIME_LIMIT {
            Some(Outcome::Timeout)
        } else {
            None
        };
        if let Some(outcome) = killed_for {
            child.kill().ok();
            child.wait().ok();
            return (Err(outcome), peak);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The `VmHWM` (peak resident set) line of a /proc status file, in KiB (0 when gone).
fn vm_hwm_kib(status_file: &str) -> u64 {
    std::fs::read_to_string(status_file)
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Whether an error says an allocation failed (HDF5: "memory allocation failed for ...").
fn allocation_failed(stderr: &str) -> bool {
    stderr.to_lowercase().contains("memory allocation failed")
}

/// Sort an exit into an [`Outcome`]. Rust reports a refused allocation as "memory
/// allocation of N bytes failed" and aborts; that is a read over the memory limit.
fn classify(status: ExitStatus, stderr: &str) -> Outcome {
    use std::os::unix::process::ExitStatusExt;
    let rust_oom = stderr.contains("memory allocation of") || stderr.contains("capacity overflow");
    match (status.code(), status.signal()) {
        (Some(0), _) => Outcome::Ok,
        (Some(2), _) => Outcome::Error,
        (Some(101), _) if rust_oom => Outcome::OverMemory,
        (Some(101), _) => Outcome::Panic,
        (Some(134), _) | (None, Some(6)) if rust_oom => Outcome::OverMemory,
        (Some(134), _) | (None, Some(6)) => Outcome::Abort,
        (Some(c), _) => Outcome::OtherExit(c),
        (None, Some(sig)) => Outcome::Signal(sig),
        (None, None) => Outcome::OtherExit(-1),
    }
}

/// One line with the count of every outcome, printed for the bench.
fn summary_line(results: &[Run], elapsed: f64) -> String {
    let count = |f: &dyn Fn(Outcome) -> bool| results.iter().filter(|r| f(r.outcome)).count();
    let reruns = results.iter().filter(|r| r.rerun_uncapped).count();
    let peak = results.iter().map(|r| r.peak_kib).max().unwrap_or(0);
    format!(
        "fuzz_h5ad: {} mutants in {elapsed:.1} s: exit0 {}, exit2 {}, crashes (signal) {}, \
         panics {}, aborts {}, timeouts {}, over-memory {}, other exits {}; \
         {reruns} allocation failures under the cap rerun uncapped; \
         largest sampled peak resident {} MiB",
        results.len(),
        count(&|o| o == Outcome::Ok),
        count(&|o| o == Outcome::Error),
        count(&|o| matches!(o, Outcome::Signal(_))),
        count(&|o| o == Outcome::Panic),
        count(&|o| o == Outcome::Abort),
        count(&|o| o == Outcome::Timeout),
        count(&|o| o == Outcome::OverMemory),
        count(&|o| matches!(o, Outcome::OtherExit(_))),
        peak / 1024,
    )
}
