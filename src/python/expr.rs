//! `fastgrid.Expression`: the constraint language for Python callers (result constraints over
//! metrics). Only conversion lives here; parsing and evaluation are `crate::expr`.

use pyo3::exceptions::{PyKeyError, PyTypeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple, PyType};

use crate::expr::Expr;
use crate::value::Value;

use super::convert::to_value;

#[pyclass(frozen, name = "Expression", module = "fastgrid")]
pub struct Expression {
    expr: Expr,
    /// Each name as a Python string (hash cached by Python), with its dotted segments. Strings
    /// cannot form reference cycles, so no `__traverse__` is needed for them.
    keys: Vec<(Py<PyString>, Vec<Py<PyString>>)>,
}

/// `values[key]`, or `None` when the key is absent (KeyError) or `values` is not subscriptable
/// by a string; any other exception propagates.
fn get<'py>(
    values: &Bound<'py, PyAny>,
    key: &Bound<'py, PyString>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    if let Ok(d) = values.cast::<PyDict>() {
        return d.get_item(key);
    }
    if !values.hasattr(intern!(values.py(), "keys"))? {
        return Ok(None);
    }
    match values.get_item(key) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_instance_of::<PyKeyError>(values.py()) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A name `a.b` is the flat key `"a.b"` first, then the nested path `values["a"]["b"]`.
fn lookup<'py>(
    values: &Bound<'py, PyAny>,
    flat: &Py<PyString>,
    parts: &[Py<PyString>],
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = values.py();
    if let Some(v) = get(values, flat.bind(py))? {
        return Ok(Some(v));
    }
    if parts.is_empty() {
        return Ok(None);
    }
    let mut cur = values.clone();
    for part in parts {
        match get(&cur, part.bind(py))? {
            Some(next) => cur = next,
            None => return Ok(None),
        }
    }
    Ok(Some(cur))
}

/// The dotted names a mapping offers (for "did you mean" on a missing name); error path only.
fn known_names(values: &Bound<'_, PyAny>, prefix: &str, depth: usize, out: &mut Vec<String>) {
    let Ok(keys) = values.call_method0(intern!(values.py(), "keys")) else {
        return;
    };
    let Ok(iter) = keys.try_iter() else { return };
    for key in iter.flatten() {
        let Ok(key) = key.cast_into::<PyString>() else {
            continue;
        };
        let Ok(key) = key.to_str() else { continue };
        let path = if prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{prefix}.{key}")
        };
        if depth < 8 && out.len() < 10_000 {
            if let Ok(Some(child)) = get(values, &PyString::new(values.py(), key)) {
                if child.hasattr(intern!(values.py(), "keys")).unwrap_or(false) {
                    known_names(&child, &path, depth + 1, out);
                }
            }
        }
        out.push(path);
    }
}

/// Converts one looked-up value; numpy scalars (and anything else with `.item()`) are unwrapped
/// first so that metrics computed with numpy work as their Python equivalents.
fn convert(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Value> {
    match to_value(obj, name) {
        Ok(v) => Ok(v),
        Err(e) => match obj.call_method0(intern!(obj.py(), "item")) {
            Ok(plain) if !plain.is(obj) => to_value(&plain, name),
            _ => Err(e),
        },
    }
}

#[pymethods]
impl Expression {
    #[new]
    #[pyo3(signature = (source, /))]
    fn new(py: Python<'_>, source: &str) -> PyResult<Self> {
        let expr = Expr::parse(source)?;
        let key = |s: &str| PyString::intern(py, s).unbind();
        let keys = expr
            .names()
            .into_iter()
            .map(|name| {
                let parts = if name.contains('.') {
                    name.split('.').map(key).collect()
                } else {
                    Vec::new()
                };
                (key(name), parts)
            })
            .collect();
        Ok(Expression { expr, keys })
    }

    #[getter]
    fn source(&self) -> &str {
        self.expr.source()
    }

    #[getter]
    fn names<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.expr.names())
    }

    #[pyo3(signature = (values, /))]
    fn evaluate(&self, values: &Bound<'_, PyAny>) -> PyResult<bool> {
        if !values.is_instance_of::<PyDict>() && !values.hasattr(intern!(values.py(), "keys"))? {
            let type_name = values.get_type().name()?;
            return Err(PyTypeError::new_err(format!(
                "Expression.evaluate needs a mapping of names to values, got {type_name}"
            )));
        }
        let mut converted = Vec::with_capacity(self.keys.len());
        for (flat, parts) in &self.keys {
            match lookup(values, flat, parts)? {
                Some(obj) => converted.push(convert(&obj, flat.bind(values.py()).to_str()?)?),
                None => {
                    let mut known = Vec::new();
                    known_names(values, "", 0, &mut known);
                    let name = flat.bind(values.py()).to_str()?;
                    return Err(self
                        .expr
                        .unknown_name(name, known.iter().map(String::as_str))
                        .into());
                }
            }
        }
        Ok(self.expr.eval_indexed(&|i| &converted[i])?)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let source = PyString::new(py, self.expr.source()).repr()?;
        Ok(format!("Expression({source})"))
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<Expression>()
            .is_ok_and(|o| o.get().expr.source() == self.expr.source())
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.expr.source().hash(&mut h);
        h.finish()
    }

    /// Pickles as its source text (the runner ships constraints to worker processes).
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyType>, (String,))> {
        Ok((slf.get_type(), (slf.get().expr.source().to_owned(),)))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Expression>()
}
