//! fastgrid's Rust core.
//!
//! Pure-Rust engines (`grid`, `index`, `keys`, `merge`, `expr`) know nothing of Python; `python`
//! is the one bindings layer that converts types, releases the GIL and maps `error::Error` to
//! exceptions. It compiles only with the `python` cargo feature (on by default), so a core module
//! cannot reach pyo3: `cargo test --no-default-features` builds the core alone.

pub mod error;
pub mod expr;
pub mod grid;
pub mod index;
pub mod keys;
pub mod merge;
pub mod value;

#[cfg(feature = "python")]
mod python;

#[cfg(feature = "python")]
#[pyo3::pymodule(gil_used = false)]
fn _core(m: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
    use pyo3::types::PyModuleMethods;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    python::register(m)
}
