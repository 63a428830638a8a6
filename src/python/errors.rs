//! The one place where core errors become Python exceptions.

use pyo3::create_exception;
use pyo3::exceptions::{
    PyFileNotFoundError, PyIndexError, PyOSError, PyOverflowError, PyPermissionError,
    PyTimeoutError, PyValueError,
};
use pyo3::prelude::*;

use crate::error::Error;

create_exception!(
    fastgrid,
    SpecError,
    PyValueError,
    "A parameters tree or constraint that cannot be used; `.path` names the parameter."
);
create_exception!(
    fastgrid,
    PatternError,
    PyValueError,
    "A results-file pattern that cannot be used; `.pattern` holds it."
);
create_exception!(
    fastgrid,
    ConfigError,
    PyValueError,
    "A config merge that cannot be done; `.path` names the config path."
);

/// Builds an exception instance and attaches structured attributes to it.
fn with_attrs(err: PyErr, attrs: &[(&str, Py<PyAny>)]) -> PyErr {
    Python::attach(|py| {
        let value = err.value(py);
        for (name, v) in attrs {
            // Attribute setting on a fresh exception instance cannot fail in practice; if it
            // did, the message still carries the same information.
            let _ = value.setattr(*name, v.bind(py));
        }
    });
    err
}

fn py_str(s: &str) -> Py<PyAny> {
    Python::attach(|py| s.into_pyobject(py).map(|o| o.into_any().unbind()))
        .unwrap_or_else(|e: std::convert::Infallible| match e {})
}

impl From<Error> for PyErr {
    fn from(err: Error) -> PyErr {
        let message = err.to_string();
        match err {
            Error::Spec { path, .. } => {
                with_attrs(SpecError::new_err(message), &[("path", py_str(&path))])
            }
            Error::Expr { expr, column, .. } => {
                let column =
                    Python::attach(|py| column.into_pyobject(py).map(|o| o.into_any().unbind()))
                        .unwrap_or_else(|e: std::convert::Infallible| match e {});
                with_attrs(
                    SpecError::new_err(message),
                    &[
                        ("path", py_str(&expr)),
                        ("expr", py_str(&expr)),
                        ("column", column),
                    ],
                )
            }
            Error::Merge { path, .. } => {
                with_attrs(ConfigError::new_err(message), &[("path", py_str(&path))])
            }
            Error::Pattern { pattern, .. } => with_attrs(
                PatternError::new_err(message),
                &[("pattern", py_str(&pattern))],
            ),
            Error::Overflow(_) => PyOverflowError::new_err(message),
            Error::IndexOutOfRange { .. } => PyIndexError::new_err(message),
            Error::NotFound(_) | Error::Invalid(_) | Error::Closed(_) => {
                PyValueError::new_err(message)
            }
            Error::Timeout(_) => PyTimeoutError::new_err(message),
            Error::Io {
                ref path,
                ref source,
            } => {
                let filename = path.display().to_string();
                let errno = source.raw_os_error().unwrap_or(0);
                let args = (errno, source.to_string(), filename);
                match source.kind() {
                    std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(args),
                    std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(args),
                    _ => PyOSError::new_err(args),
                }
            }
        }
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("SpecError", py.get_type::<SpecError>())?;
    m.add("PatternError", py.get_type::<PatternError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    Ok(())
}
