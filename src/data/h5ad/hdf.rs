//! Typed reads of HDF5 datasets and attributes whatever their on-disk type: strings
//! (variable- or fixed-length, ASCII or UTF-8), numbers of any width, booleans, and
//! single fields of compound datasets (the pre-0.7 anndata dataframe layout).
//!
//! Every function takes a [`Ctx`] so that errors name the file and the key, and every read
//! goes through [`read_all`], which refuses a dataset whose metadata claims more data than
//! the file can hold before anything is allocated for it: a corrupt shape or type must give
//! an error, not an allocation of petabytes.

use crate::error::{Error, Result};
use hdf5::types::{
    CompoundField, CompoundType, FixedAscii, FixedUnicode, H5Type, TypeDescriptor, VarLenAscii,
    VarLenUnicode,
};
use std::cell::RefCell;
use std::path::Path;

/// The file being read, for error messages and for bounding what a read may allocate.
#[derive(Clone, Copy)]
pub(super) struct Ctx<'a> {
    pub path: &'a Path,
    /// The file's size on disk in bytes: no uncompressed dataset can store more.
    pub file_size: u64,
}

impl Ctx<'_> {
    /// An [`Error::InvalidData`] for `key` in this file.
    pub fn invalid(&self, key: &str, problem: impl Into<String>) -> Error {
        Error::invalid(self.path.display().to_string(), key, problem)
    }

    /// Wrap an HDF5 library error raised while reading `key`.
    pub fn h5(&self, key: &str) -> impl FnOnce(hdf5::Error) -> Error + '_ {
        let key = key.to_string();
        move |e| self.invalid(&key, format!("cannot read: {e}"))
    }
}

/// What a stored element is, reduced to the cases the reader distinguishes.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Kind {
    Str,
    Int,
    Float,
    Bool,
    Compound(Vec<(String, TypeDescriptor)>),
    Other(String),
}

/// Classify an on-disk type descriptor.
pub(super) fn kind_of(desc: &TypeDescriptor) -> Kind {
    match desc {
        TypeDescriptor::VarLenUnicode
        | TypeDescriptor::VarLenAscii
        | TypeDescriptor::FixedAscii(_)
        | TypeDescriptor::FixedUnicode(_) => Kind::Str,
        TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_) => Kind::Int,
        TypeDescriptor::Float(_) => Kind::Float,
        TypeDescriptor::Boolean => Kind::Bool,
        // numpy/h5py booleans are an int8 enum {FALSE, TRUE}.
        TypeDescriptor::Enum(e)
            if e.members.len() == 2
                && e.members
                    .iter()
                    .all(|m| m.name == "FALSE" || m.name == "TRUE") =>
        {
            Kind::Bool
        }
        TypeDescriptor::Compound(c) => Kind::Compound(
            c.fields
                .iter()
                .map(|f| (f.name.clone(), f.ty.clone()))
                .collect(),
        ),
        other => Kind::Other(format!("{other}")),
    }
}

/// The on-disk element type of a dataset or attribute.
pub(super) fn descriptor(c: &hdf5::Container, ctx: Ctx, key: &str) -> Result<TypeDescriptor> {
    c.dtype()
        .and_then(|t| t.to_descriptor())
        .map_err(|e| ctx.invalid(key, format!("unsupported element type: {e}")))
}

/// Largest expansion of deflate-compressed data: the format cannot encode more than about
/// 1032 output bytes per input byte, so a compressed dataset claiming more is corrupt.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// The number of elements of `c`, after checking that its metadata (shape × element size)
/// does not claim more bytes than the file can hold. Called before every read, because the
/// buffer of a read is allocated from these numbers before HDF5 looks at the data.
fn checked_len(c: &hdf5::Container, ctx: Ctx, key: &str) -> Result<usize> {
    let space = c.space().map_err(ctx.h5(key))?;
    let shape = space.shape();
    let n = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| ctx.invalid(key, format!("shape {shape:?} overflows")))?
        .max(space.size());
    let elem = c.dtype().map_err(ctx.h5(key))?.size().max(1) as u64;
    let dataset = c.as_dataset().ok();
    let allowed = byte_allowance(dataset.as_ref(), ctx);
    if (n as u64).checked_mul(elem).is_none_or(|b| b > allowed) {
        return Err(ctx.invalid(
            key,
            format!(
                "shape {shape:?} of {elem}-byte elements claims more data than the file \
                 can hold ({} bytes on disk; corrupt metadata?)",
                ctx.file_size
            ),
        ));
    }
    if let Some(ds) = &dataset {
        check_chunks(ds, elem, allowed, ctx, key)?;
    }
    Ok(n)
}

/// For a chunked dataset, check what HDF5 sizes its own read buffers by: every stored
/// chunk (address and size from the chunk index) must lie inside the file, and the chunk
/// shape (the decompression buffer) must fit the dataset's allowance once any chunk is
/// stored. Unchecked, a corrupt index makes HDF5 allocate gigabytes before it fails.
fn check_chunks(ds: &hdf5::Dataset, elem: u64, allowed: u64, ctx: Ctx, key: &str) -> Result<()> {
    let Some(chunk) = ds.chunk() else {
        return Ok(());
    };
    let (mut stored, mut outside) = (0usize, None);
    ds.chunks_visit(|c| {
        stored += 1;
        if c.addr
            .checked_add(c.size)
            .is_none_or(|end| end > ctx.file_size)
        {
            outside = Some((c.offset.to_vec(), c.size, c.addr));
            return 1; // stop the walk
        }
        0
    })
    .map_err(ctx.h5(key))?;
    if let Some((offset, size, addr)) = outside {
        return Err(ctx.invalid(
            key,
            format!(
                "chunk at {offset:?} ({size} bytes at address {addr}) lies outside the file \
                 ({} bytes; corrupt chunk index?)",
                ctx.file_size
            ),
        ));
    }
    let chunk_bytes = chunk
        .iter()
        .try_fold(elem, |acc, &d| acc.checked_mul(d as u64));
    if stored > 0 && chunk_bytes.is_none_or(|b| b > allowed) {
        return Err(ctx.invalid(
            key,
            format!("chunk shape {chunk:?} of {elem}-byte elements exceeds what the file can hold"),
        ));
    }
    Ok(())
}

/// How many bytes a dataset (`None`: an attribute) may hold: the file size, plus for a
/// filtered (compressed) chunked dataset its stored chunks at the largest deflate
/// expansion. The stored size is capped by the file size, since the chunk index it comes
/// from may itself be corrupt.
fn byte_allowance(dataset: Option<&hdf5::Dataset>, ctx: Ctx) -> u64 {
    let compressed = dataset.filter(|d| d.is_chunked() && !d.filters().is_empty());
    match compressed {
        Some(d) => ctx.file_size.saturating_add(
            d.storage_size()
                .min(ctx.file_size)
                .saturating_mul(MAX_DEFLATE_RATIO),
        ),
        None => ctx.file_size,
    }
}

/// Read every element of `c` as `T`, refusing sizes the file cannot hold ([`checked_len`]).
fn read_all<T: H5Type>(c: &hdf5::Container, ctx: Ctx, key: &str) -> Result<Vec<T>> {
    checked_len(c, ctx, key)?;
    c.read_raw::<T>().map_err(ctx.h5(key))
}

/// Bytes of one variable-length element on disk: sequence length (u32), global-heap
/// address (8 bytes, the default of every h5ad writer) and heap index (u32).
const VLEN_DESCRIPTOR: usize = 16;

/// Check the stored lengths of variable-length strings before HDF5 converts them: HDF5
/// sizes and zeroes its conversion buffer by an element's stated length before comparing
/// it with the heap object, so one corrupt length costs up to 4 GiB of written memory. No
/// string is longer than the file, so the descriptors are read from the file where they lie
/// as stored (contiguous storage, unfiltered chunks). Compressed chunks need no check:
/// deflate's checksum rejects a corrupt one first. Attributes and compact datasets, inside
/// object headers, cannot be located through the HDF5 API and are not checked.
fn check_vlen_lengths(c: &hdf5::Container, ctx: Ctx, key: &str) -> Result<()> {
    let Ok(ds) = c.as_dataset() else {
        return Ok(());
    };
    let mut index = 0usize;
    for (addr, len) in raw_regions(&ds, ctx, key)? {
        let bytes = read_file_bytes(ctx, addr, len, key)?;
        for d in bytes.chunks_exact(VLEN_DESCRIPTOR) {
            let n = u32::from_le_bytes([d[0], d[1], d[2], d[3]]);
            if u64::from(n) > ctx.file_size {
                return Err(ctx.invalid(
                    key,
                    format!("string {index} claims {n} bytes, more than the whole file"),
                ));
            }
            index += 1;
        }
    }
    Ok(())
}

/// Where the descriptors of a variable-length dataset lie as stored: its contiguous storage
/// or its unfiltered chunks, as (address, length). Regions whose length is not a whole
/// number of 16-byte descriptors per element (another address size) are left out.
fn raw_regions(ds: &hdf5::Dataset, ctx: Ctx, key: &str) -> Result<Vec<(u64, u64)>> {
    let per_element = VLEN_DESCRIPTOR as u64;
    if let Some(offset) = ds.offset() {
        let len = ds.storage_size();
        let expected = (ds.size() as u64).saturating_mul(per_element);
        return Ok(if len == expected {
            vec![(offset, len)]
        } else {
            Vec::new()
        });
    }
    let Some(chunk) = ds.chunk().filter(|_| ds.filters().is_empty()) else {
        return Ok(Vec::new());
    };
    let expected = chunk
        .iter()
        .fold(per_element, |acc, &d| acc.saturating_mul(d as u64));
    let mut regions = Vec::new();
    ds.chunks_visit(|c| {
        if c.size == expected {
            regions.push((c.addr, c.size));
        }
        0
    })
    .map_err(ctx.h5(key))?;
    Ok(regions)
}

/// `len` bytes of the file at `addr`, refused when they lie outside it.
fn read_file_bytes(ctx: Ctx, addr: u64, len: u64, key: &str) -> Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    if addr.checked_add(len).is_none_or(|end| end > ctx.file_size) {
        return Err(ctx.invalid(
            key,
            format!(
                "{len} bytes at address {addr} lie outside the file ({} bytes)",
                ctx.file_size
            ),
        ));
    }
    let mut buf = vec![0u8; len as usize];
    std::fs::File::open(ctx.path)
        .and_then(|mut f| {
            f.seek(SeekFrom::Start(addr))?;
            f.read_exact(&mut buf)
        })
        .map_err(|e| Error::io(ctx.path, e))?;
    Ok(buf)
}

/// Read all elements as strings. Numbers are formatted (some writers store a numeric index).
pub(super) fn read_strings(c: &hdf5::Container, ctx: Ctx, key: &str) -> Result<Vec<String>> {
    let desc = descriptor(c, ctx, key)?;
    read_strings_as(&desc, ctx, key, Source::Whole(c))
}

/// Read all elements as `f64` (integers and floats; booleans as 0/1).
pub(super) fn read_f64(c: &hdf5::Container, ctx: Ctx, key: &str) -> Result<Vec<f64>> {
    match kind_of(&descriptor(c, ctx, key)?) {
        Kind::Int | Kind::Float => read_all::<f64>(c, ctx, key),
        Kind::Bool => Ok(read_bools(c, ctx, key)?
            .into_iter()
            .map(|b| b as u8 as f64)
            .collect()),
        k => Err(ctx.invalid(key, format!("expected numbers, found {k:?}"))),
    }
}

/// Read all elements as `i64` (integers only).
pub(super) fn read_i64(c: &hdf5::Container, ctx: Ctx, key: &str) -> Result<Vec<i64>> {
    match kind_of(&descriptor(c, ctx, key)?) {
        Kind::Int => read_all::<i64>(c, ctx, key),
        k => Err(ctx.invalid(key, format!("expected integers, found {k:?}"))),
    }
}

/// Read all elements as `f32` (the expression matrix type).
pub(super) fn read_f32(c: &hdf5::Container, ctx: Ctx, key: &str) -> Result<Vec<f32>> {
    match kind_of(&descriptor(c, ctx, key)?) {
        Kind::Int | Kind::Float => read_all::<f32>(c, ctx, key),
        Kind::Bool => Ok(read_bools(c, ctx, key)?
            .into_iter()
            .map(|b| b as u8 as f32)
            .collect()),
        k => Err(ctx.invalid(key, format!("expected numbers, found {k:?}"))),
    }
}

/// Read all elements as booleans. Stored booleans are an enum; they are read as its
/// underlying integers, not as Rust `bool`: HDF5 fills a value outside the enum (a corrupt
/// byte) with 0xff, which is not a valid `bool`.
pub(super) fn read_bools(c: &hdf5::Container, ctx: Ctx, key: &str) -> Result<Vec<bool>> {
    match kind_of(&descriptor(c, ctx, key)?) {
        Kind::Bool => Ok(read_all::<u8>(c, ctx, key)?
            .into_iter()
            .map(|v| v != 0)
            .collect()),
        Kind::Int => Ok(read_i64(c, ctx, key)?.into_iter().map(|v| v != 0).collect()),
        k => Err(ctx.invalid(key, format!("expected booleans, found {k:?}"))),
    }
}

/// Read one string attribute (scalar or a one-element array).
pub(super) fn read_string_attr(
    loc: &hdf5::Location,
    name: &str,
    ctx: Ctx,
    key: &str,
) -> Result<Option<String>> {
    let Ok(attr) = loc.attr(name) else {
        return Ok(None);
    };
    let akey = format!("{key}@{name}");
    let desc = descriptor(&attr, ctx, &akey)?;
    if kind_of(&desc) != Kind::Str {
        return Ok(None);
    }
    Ok(read_strings(&attr, ctx, &akey)?.into_iter().next())
}

/// Read a string-array attribute such as `column-order`; a non-string (e.g. an empty
/// float array, as anndata writes for no columns) gives an empty list.
pub(super) fn read_string_list_attr(
    loc: &hdf5::Location,
    name: &str,
    ctx: Ctx,
    key: &str,
) -> Result<Option<Vec<String>>> {
    let Ok(attr) = loc.attr(name) else {
        return Ok(None);
    };
    let akey = format!("{key}@{name}");
    if attr.size() == 0 || kind_of(&descriptor(&attr, ctx, &akey)?) != Kind::Str {
        return Ok(Some(Vec::new()));
    }
    read_strings(&attr, ctx, &akey).map(Some)
}

/// Read an integer-array attribute such as `shape`.
pub(super) fn read_int_list_attr(
    loc: &hdf5::Location,
    name: &str,
    ctx: Ctx,
    key: &str,
) -> Result<Option<Vec<i64>>> {
    let Ok(attr) = loc.attr(name) else {
        return Ok(None);
    };
    read_i64(&attr, ctx, &format!("{key}@{name}")).map(Some)
}

/// Dispatch a string read on the stored string type, so the same code serves whole
/// datasets and compound fields.
fn read_strings_as(
    desc: &TypeDescriptor,
    ctx: Ctx,
    key: &str,
    read: Source,
) -> Result<Vec<String>> {
    match desc {
        TypeDescriptor::VarLenUnicode => {
            read.check_vlen(ctx, key)?;
            let v = read.go::<VarLenUnicode>(ctx, key)?;
            decode(v.iter().map(|s| s.as_bytes()), true, ctx, key)
        }
        TypeDescriptor::VarLenAscii => {
            read.check_vlen(ctx, key)?;
            let v = read.go::<VarLenAscii>(ctx, key)?;
            decode(v.iter().map(|s| s.as_bytes()), false, ctx, key)
        }
        TypeDescriptor::FixedAscii(n) => read_fixed_ascii(*n, &read, ctx, key),
        TypeDescriptor::FixedUnicode(n) => read_fixed_unicode(*n, &read, ctx, key),
        TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_) => Ok(read
            .go::<i64>(ctx, key)?
            .iter()
            .map(|x| x.to_string())
            .collect()),
        TypeDescriptor::Float(_) => Ok(read
            .go::<f64>(ctx, key)?
            .iter()
            .map(|x| x.to_string())
            .collect()),
        other => Err(ctx.invalid(key, format!("expected strings, found element type {other}"))),
    }
}

/// Turn stored string bytes into `String`s. The hdf5 crate's `as_str` assumes valid UTF-8,
/// which a corrupt file does not guarantee, so the bytes are checked here: a
/// Unicode-typed string that is not UTF-8 is an error; ASCII-typed strings often carry
/// UTF-8 or Latin-1 from old writers, so their invalid bytes are replaced instead.
fn decode<'b>(
    items: impl Iterator<Item = &'b [u8]>,
    unicode: bool,
    ctx: Ctx,
    key: &str,
) -> Result<Vec<String>> {
    items
        .enumerate()
        .map(|(i, b)| match std::str::from_utf8(b) {
            Ok(s) => Ok(s.to_string()),
            Err(_) if !unicode => Ok(String::from_utf8_lossy(b).into_owned()),
            Err(e) => Err(ctx.invalid(key, format!("string {i} is not valid UTF-8: {e}"))),
        })
        .collect()
}

/// Longest fixed-length string accepted (bytes); longer ones are refused, not truncated.
const MAX_FIXED_STRING: usize = 4096;

macro_rules! fixed_reader {
    ($fname:ident, $ty:ident, $unicode:expr) => {
        /// Read fixed-length strings into the smallest supported buffer that holds them.
        fn $fname(n: usize, read: &Source, ctx: Ctx, key: &str) -> Result<Vec<String>> {
            fn conv<const N: usize>(read: &Source, ctx: Ctx, key: &str) -> Result<Vec<String>> {
                let v = read.go::<$ty<N>>(ctx, key)?;
                decode(v.iter().map(|s| s.as_bytes()), $unicode, ctx, key)
            }
            match n {
                0..=16 => conv::<16>(read, ctx, key),
                17..=64 => conv::<64>(read, ctx, key),
                65..=256 => conv::<256>(read, ctx, key),
                257..=1024 => conv::<1024>(read, ctx, key),
                1025..=MAX_FIXED_STRING => conv::<MAX_FIXED_STRING>(read, ctx, key),
                _ => Err(ctx.invalid(
                    key,
                    format!(
                        "fixed-length strings of {n} bytes exceed the supported {MAX_FIXED_STRING}"
                    ),
                )),
            }
        }
    };
}
fixed_reader!(read_fixed_ascii, FixedAscii, false);
fixed_reader!(read_fixed_unicode, FixedUnicode, true);

/// Where string elements come from: a whole dataset/attribute or one field of a
/// compound dataset.
#[derive(Clone, Copy)]
enum Source<'a> {
    Whole(&'a hdf5::Container),
    Field(&'a hdf5::Container, &'a str),
}

impl Source<'_> {
    /// Read all elements with memory type `T` (HDF5 converts from the stored type).
    fn go<T: H5Type + Clone>(&self, ctx: Ctx, key: &str) -> Result<Vec<T>> {
        match *self {
            Source::Whole(c) => read_all::<T>(c, ctx, key),
            Source::Field(c, field) => read_field::<T>(c, field, ctx, key),
        }
    }

    /// [`check_vlen_lengths`] for a whole dataset. A compound field's descriptors sit at
    /// offsets of the on-disk layout, which the HDF5 API does not give, so fields are not
    /// checked (anndata < 0.7 stores fixed-length strings in compound dataframes anyway).
    fn check_vlen(&self, ctx: Ctx, key: &str) -> Result<()> {
        match *self {
            Source::Whole(c) => check_vlen_lengths(c, ctx, key),
            Source::Field(..) => Ok(()),
        }
    }
}

/// Read string field `field` (stored type `desc`) of compound dataset `c`.
pub(super) fn read_field_strings(
    c: &hdf5::Container,
    field: &str,
    desc: &TypeDescriptor,
    ctx: Ctx,
    key: &str,
) -> Result<Vec<String>> {
    read_strings_as(desc, ctx, key, Source::Field(c, field))
}

/// Read numeric field `field` of compound dataset `c` converted to `T` by HDF5.
pub(super) fn read_field_numbers<T: H5Type + Clone>(
    c: &hdf5::Container,
    field: &str,
    ctx: Ctx,
    key: &str,
) -> Result<Vec<T>> {
    read_field::<T>(c, field, ctx, key)
}

thread_local! {
    /// Field name used by [`OneField`]'s type descriptor. HDF5 converts compound types
    /// member by member *by name*, so a one-member memory type reads just that column;
    /// the name is only known at run time, hence this per-thread slot, set right before
    /// the (synchronous, same-thread) read.
    static FIELD_NAME: RefCell<String> = const { RefCell::new(String::new()) };
}

/// A compound memory type with a single member named by [`FIELD_NAME`].
#[repr(transparent)]
#[derive(Clone)]
struct OneField<T>(T);

// SAFETY: the descriptor describes exactly one member of type `T` at offset 0 and the
// struct is `repr(transparent)` over `T`, so its size and layout equal `T`'s.
unsafe impl<T: H5Type> H5Type for OneField<T> {
    fn type_descriptor() -> TypeDescriptor {
        let name = FIELD_NAME.with(|n| n.borrow().clone());
        TypeDescriptor::Compound(CompoundType {
            fields: vec![CompoundField {
                name,
                ty: T::type_descriptor(),
                offset: 0,
                index: 0,
            }],
            size: std::mem::size_of::<T>(),
        })
    }
}

/// Read field `field` of compound dataset `c`, bounded like [`read_all`] (by the size of
/// the whole compound element, which is what the file stores).
fn read_field<T: H5Type + Clone>(
    c: &hdf5::Container,
    field: &str,
    ctx: Ctx,
    key: &str,
) -> Result<Vec<T>> {
    checked_len(c, ctx, key)?;
    FIELD_NAME.with(|n| *n.borrow_mut() = field.to_string());
    let out = c.read_raw::<OneField<T>>();
    FIELD_NAME.with(|n| n.borrow_mut().clear());
    Ok(out.map_err(ctx.h5(key))?.into_iter().map(|f| f.0).collect())
}
