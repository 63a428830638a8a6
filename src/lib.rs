//! fastgrid's Rust core.
//!
//! Pure-Rust engines (`grid`, `index`, `keys`, `merge`) know nothing of Python; `python` is the one
//! bindings layer that converts types, releases the GIL and maps `error::Error` to exceptions.

pub mod error;
pub mod expr;
pub mod grid;
pub mod index;
pub mod keys;
pub mod merge;
pub mod value;

mod python;

use pyo3::prelude::*;

#[pymodule(gil_used = false)]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    python::register(m)
}
