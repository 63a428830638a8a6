//! The one bindings layer: pyclasses and functions that convert types, release the GIL and map
//! errors. No algorithm lives here.

use pyo3::prelude::*;

pub mod convert;
pub mod errors;
mod expr;
mod gil;
mod grid;
mod index;
mod keys;
mod merge;
mod names;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    grid::register(m)?;
    index::register(m)?;
    keys::register(m)?;
    merge::register(m)?;
    expr::register(m)?;
    Ok(())
}
