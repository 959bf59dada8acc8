//! The dataframe layout of anndata < 0.7: obs/var as one HDF5 compound dataset (one
//! field per column, the index in field `index`), with the categories of categorical
//! columns in `uns/<column>_categories` (e.g. scanpy's bundled `pbmc68k_reduced.h5ad`).

use super::hdf::{self, Ctx, Kind};
use super::read::{categorical, Frame};
use crate::data::Column;
use crate::error::Result;

/// Read the index and columns of a compound-dataset dataframe.
pub(super) fn read_compound_dataframe(
    root: &hdf5::Group,
    ds: &hdf5::Dataset,
    key: &str,
    ctx: Ctx,
) -> Result<Frame> {
    let Kind::Compound(fields) = hdf::kind_of(&hdf::descriptor(ds, ctx, key)?) else {
        return Err(ctx.invalid(key, "expected a dataframe group or a compound dataset"));
    };
    let index_field = ["index", "_index"]
        .iter()
        .find_map(|want| fields.iter().find(|(n, _)| n == want))
        .or_else(|| fields.iter().find(|(_, t)| hdf::kind_of(t) == Kind::Str))
        .ok_or_else(|| ctx.invalid(key, "compound dataframe has no 'index' field"))?;
    let index = hdf::read_field_strings(
        ds,
        &index_field.0,
        &index_field.1,
        ctx,
        &format!("{key}.{}", index_field.0),
    )?;
    let mut columns = Vec::new();
    for (name, ty) in &fields {
        if name == &index_field.0 {
            continue;
        }
        let fkey = format!("{key}.{name}");
        let cats_key = format!("{name}_categories");
        let col = match hdf::kind_of(ty) {
            Kind::Int => match root.group("uns").and_then(|u| u.dataset(&cats_key)) {
                Ok(cats) => {
                    let codes = hdf::read_field_numbers::<i64>(ds, name, ctx, &fkey)?;
                    let categories = hdf::read_strings(&cats, ctx, &format!("uns/{cats_key}"))?;
                    categorical(codes, categories, ctx, &fkey)?
                }
                Err(_) => Column::Int(hdf::read_field_numbers::<i64>(ds, name, ctx, &fkey)?),
            },
            Kind::Float => Column::Float(hdf::read_field_numbers::<f64>(ds, name, ctx, &fkey)?),
            // As integers, not `bool`: a corrupt byte outside the enum would not be a valid `bool`.
            Kind::Bool => Column::Bool(
                hdf::read_field_numbers::<u8>(ds, name, ctx, &fkey)?
                    .into_iter()
                    .map(|v| v != 0)
                    .collect(),
            ),
            Kind::Str => Column::Str(hdf::read_field_strings(ds, name, ty, ctx, &fkey)?),
            // Array-valued fields are not dataframe columns.
            Kind::Compound(_) | Kind::Other(_) => continue,
        };
        columns.push((name.clone(), col));
    }
    Ok((index, columns))
}
