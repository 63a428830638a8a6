//! `fastgrid.Expression`: the constraint language for Python callers (result constraints over
//! metrics). Only conversion lives here; parsing and evaluation are `crate::expr`.

use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1};
use pyo3::exceptions::{PyKeyError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple, PyType};

use crate::expr::{ColumnRef, Expr};
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

/// One input of `evaluate_columns`, converted (numeric dtypes widened to f64/i64, borrowed).
enum Held<'py> {
    F64(PyReadonlyArray1<'py, f64>),
    I64(PyReadonlyArray1<'py, i64>),
    Bool(PyReadonlyArray1<'py, bool>),
    Values(Vec<Value>),
    Scalar(Value),
}

impl Held<'_> {
    fn as_ref(&self) -> PyResult<ColumnRef<'_>> {
        let strided = |_| PyValueError::new_err("internal: a converted column is not contiguous");
        Ok(match self {
            Held::F64(a) => ColumnRef::F64(a.as_slice().map_err(strided)?),
            Held::I64(a) => ColumnRef::I64(a.as_slice().map_err(strided)?),
            Held::Bool(a) => ColumnRef::Bool(a.as_slice().map_err(strided)?),
            Held::Values(v) => ColumnRef::Values(v),
            Held::Scalar(v) => ColumnRef::Scalar(v),
        })
    }
}

/// Converts a column: 1-D numpy arrays (or sequences) of numbers or bools stay typed; strings and
/// other objects become values; a 0-d value is one value for every row.
fn hold<'py>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<Held<'py>> {
    let py = obj.py();
    let np = py.import(intern!(py, "numpy"))?;
    let array = np.call_method1(intern!(py, "asarray"), (obj,))?;
    let ndim: usize = array.getattr(intern!(py, "ndim"))?.extract()?;
    if ndim == 0 {
        return Ok(Held::Scalar(convert(
            &array.call_method0(intern!(py, "item"))?,
            name,
        )?));
    }
    if ndim != 1 {
        return Err(PyValueError::new_err(format!(
            "column {name:?} has {ndim} dimensions; expected one value per row (a 1-D array)"
        )));
    }
    let dtype = array.getattr(intern!(py, "dtype"))?;
    let kind: String = dtype.getattr(intern!(py, "kind"))?.extract()?;
    let itemsize: usize = dtype.getattr(intern!(py, "itemsize"))?.extract()?;
    let typed = |target: &str| -> PyResult<Bound<'py, PyAny>> {
        np.call_method1(intern!(py, "ascontiguousarray"), (&array, target))
    };
    Ok(match (kind.as_str(), itemsize) {
        ("f", _) | ("u", 8) => {
            Held::F64(typed("float64")?.cast_into::<PyArray1<f64>>()?.readonly())
        }
        ("i" | "u", _) => Held::I64(typed("int64")?.cast_into::<PyArray1<i64>>()?.readonly()),
        ("b", _) => Held::Bool(typed("bool")?.cast_into::<PyArray1<bool>>()?.readonly()),
        _ => Held::Values(
            array
                .call_method0(intern!(py, "tolist"))?
                .try_iter()?
                .map(|item| convert(&item?, name))
                .collect::<PyResult<_>>()?,
        ),
    })
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

    #[pyo3(signature = (columns, /, *, length = None))]
    fn evaluate_columns<'py>(
        &self,
        py: Python<'py>,
        columns: &Bound<'py, PyAny>,
        length: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray1<bool>>> {
        let Ok(columns) = columns.cast::<PyDict>() else {
            let type_name = columns.get_type().name()?;
            return Err(PyTypeError::new_err(format!(
                "Expression.evaluate_columns needs a dict of names to columns, got {type_name}"
            )));
        };
        let mut held = Vec::with_capacity(self.keys.len());
        for (key, _) in &self.keys {
            let name = key.bind(py).to_str()?;
            let Some(obj) = columns.get_item(key.bind(py))? else {
                let known: Vec<String> = columns
                    .keys()
                    .iter()
                    .filter_map(|k| k.extract::<String>().ok())
                    .collect();
                return Err(self
                    .expr
                    .unknown_name(name, known.iter().map(String::as_str))
                    .into());
            };
            held.push((name.to_owned(), hold(&obj, name)?));
        }
        let refs = held
            .iter()
            .map(|(name, h)| Ok((name.as_str(), h.as_ref()?)))
            .collect::<PyResult<Vec<_>>>()?;
        let n = match (refs.iter().find_map(|(_, c)| c.rows()), length) {
            (Some(n), _) | (None, Some(n)) => n,
            (None, None) => 1,
        };
        let out = PyArray1::<bool>::zeros(py, n, false);
        {
            let mut rw = out.readwrite();
            let slice = rw
                .as_slice_mut()
                .map_err(|_| PyValueError::new_err("internal: a new array is not contiguous"))?;
            let expr = &self.expr;
            py.detach(|| expr.eval_columns(&refs, slice))?;
        }
        Ok(out)
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
