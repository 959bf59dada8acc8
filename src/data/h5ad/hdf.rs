//! Typed reads of HDF5 datasets and attributes whatever their on-disk type: strings
//! (variable- or fixed-length, ASCII or UTF-8), numbers of any width, booleans, and
//! single fields of compound datasets (the pre-0.7 anndata dataframe layout).
//!
//! Every function takes a [`Ctx`] so that errors name the file and the key.

use crate::error::{Error, Result};
use hdf5::types::{
    CompoundField, CompoundType, FixedAscii, FixedUnicode, H5Type, TypeDescriptor, VarLenAscii,
    VarLenUnicode,
};
use std::cell::RefCell;
use std::path::Path;

/// The file being read, for error messages.
#[derive(Clone, Copy)]
pub(super) struct Ctx<'a> {
    pub path: &'a Path,
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

/// Read all elements as strings. Numbers are formatted (some writers store a numeric index).
pub(super) fn read_strings(c: &hdf5::Container, ctx: Ctx, key: &str) -> Result<Vec<String>> {
    let desc = descriptor(c, ctx, key)?;
    read_strings_as(&desc, ctx, key, Source::Whole(c))
}

/// Read all elements as `f64` (integers and floats; booleans as 0/1).
pub(super) fn read_f64(c: &hdf5::Container, ctx: Ctx, key: &str) -> Result<Vec<f64>> {
    match kind_of(&descriptor(c, ctx, key)?) {
        Kind::Int | Kind::Float => c.read_raw::<f64>().map_err(ctx.h5(key)),
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
        Kind::Int => c.read_raw::<i64>().map_err(ctx.h5(key)),
        k => Err(ctx.invalid(key, format!("expected integers, found {k:?}"))),
    }
}

/// Read all elements as `f32` (the expression matrix type).
pub(super) fn read_f32(c: &hdf5::Container, ctx: Ctx, key: &str) -> Result<Vec<f32>> {
    match kind_of(&descriptor(c, ctx, key)?) {
        Kind::Int | Kind::Float => c.read_raw::<f32>().map_err(ctx.h5(key)),
        Kind::Bool => Ok(read_bools(c, ctx, key)?
            .into_iter()
            .map(|b| b as u8 as f32)
            .collect()),
        k => Err(ctx.invalid(key, format!("expected numbers, found {k:?}"))),
    }
}

/// Read all elements as booleans.
pub(super) fn read_bools(c: &hdf5::Container, ctx: Ctx, key: &str) -> Result<Vec<bool>> {
    match kind_of(&descriptor(c, ctx, key)?) {
        Kind::Bool => c.read_raw::<bool>().map_err(ctx.h5(key)),
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
    let err = ctx.h5(key);
    let out: hdf5::Result<Vec<String>> = match desc {
        TypeDescriptor::VarLenUnicode => read
            .go::<VarLenUnicode>()
            .map(|v| v.iter().map(|s| s.as_str().to_string()).collect()),
        TypeDescriptor::VarLenAscii => read
            .go::<VarLenAscii>()
            .map(|v| v.iter().map(|s| s.as_str().to_string()).collect()),
        TypeDescriptor::FixedAscii(n) => read_fixed_ascii(*n, &read),
        TypeDescriptor::FixedUnicode(n) => read_fixed_unicode(*n, &read),
        TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_) => read
            .go::<i64>()
            .map(|v| v.iter().map(|x| x.to_string()).collect()),
        TypeDescriptor::Float(_) => read
            .go::<f64>()
            .map(|v| v.iter().map(|x| x.to_string()).collect()),
        other => {
            return Err(ctx.invalid(key, format!("expected strings, found element type {other}")))
        }
    };
    out.map_err(err)
}

/// Longest fixed-length string accepted (bytes); longer ones are refused, not truncated.
const MAX_FIXED_STRING: usize = 4096;

macro_rules! fixed_reader {
    ($fname:ident, $ty:ident) => {
        /// Read fixed-length strings into the smallest supported buffer that holds them.
        fn $fname(n: usize, read: &Source) -> hdf5::Result<Vec<String>> {
            fn conv<const N: usize>(read: &Source) -> hdf5::Result<Vec<String>> {
                read.go::<$ty<N>>()
                    .map(|v| v.iter().map(|s| s.as_str().to_string()).collect())
            }
            match n {
                0..=16 => conv::<16>(read),
                17..=64 => conv::<64>(read),
                65..=256 => conv::<256>(read),
                257..=1024 => conv::<1024>(read),
                1025..=MAX_FIXED_STRING => conv::<MAX_FIXED_STRING>(read),
                _ => Err(hdf5::Error::from(format!(
                    "fixed-length strings of {n} bytes exceed the supported {MAX_FIXED_STRING}"
                ))),
            }
        }
    };
}
fixed_reader!(read_fixed_ascii, FixedAscii);
fixed_reader!(read_fixed_unicode, FixedUnicode);

/// Where string elements come from: a whole dataset/attribute or one field of a
/// compound dataset.
#[derive(Clone, Copy)]
enum Source<'a> {
    Whole(&'a hdf5::Container),
    Field(&'a hdf5::Container, &'a str),
}

impl Source<'_> {
    /// Read all elements with memory type `T` (HDF5 converts from the stored type).
    fn go<T: H5Type + Clone>(&self) -> hdf5::Result<Vec<T>> {
        match *self {
            Source::Whole(c) => c.read_raw::<T>(),
            Source::Field(c, field) => read_field::<T>(c, field),
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
    read_field::<T>(c, field).map_err(ctx.h5(key))
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

fn read_field<T: H5Type + Clone>(c: &hdf5::Container, field: &str) -> hdf5::Result<Vec<T>> {
    FIELD_NAME.with(|n| *n.borrow_mut() = field.to_string());
    let out = c.read_raw::<OneField<T>>();
    FIELD_NAME.with(|n| n.borrow_mut().clear());
    Ok(out?.into_iter().map(|f| f.0).collect())
}
