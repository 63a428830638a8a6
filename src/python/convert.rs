//! Conversions between Python objects and the core `Value` tree.

use std::collections::HashMap;
use std::sync::Arc;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::error::Error;
use crate::value::{Map, Value};

/// Nesting deeper than this is refused rather than risking a stack overflow on hostile input.
pub const MAX_DEPTH: usize = 256;

/// Most values one conversion builds. A Python tree may hold one list or dict many times (a YAML
/// alias, `[x] * 8` nested): the tree built here copies each reference, so a few hundred bytes of
/// aliases would otherwise allocate until the process aborts (issue 12, item 13). The same bound
/// as `fastgrid.files.MAX_NODES`.
pub const MAX_NODES: usize = 10_000_000;

/// Values converted before the tree's expanded size is counted (without building anything): small
/// trees, every grid point and override among them, never pay for the count.
const COUNT_AFTER: usize = 100_000;

/// Why a conversion stopped: a Python error, or the tree outgrew the values it may build unchecked.
enum Stop {
    Err(PyErr),
    Big,
}

impl From<PyErr> for Stop {
    fn from(err: PyErr) -> Self {
        Stop::Err(err)
    }
}

impl From<Error> for Stop {
    fn from(err: Error) -> Self {
        Stop::Err(err.into())
    }
}

/// The dotted path of `key` under `path`.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// `path` for a message, with `<root>` for the top level.
pub fn where_(path: &str) -> &str {
    if path.is_empty() {
        "<root>"
    } else {
        path
    }
}

/// The Python type name of `obj`, for messages.
pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default()
}

/// Converts a JSON-like Python object. `path` is used only to name the place of an error.
pub fn to_value(obj: &Bound<'_, PyAny>, path: &str) -> PyResult<Value> {
    let mut budget = COUNT_AFTER;
    match to_value_at(obj, path, 0, &mut budget) {
        Ok(value) => Ok(value),
        Err(Stop::Err(err)) => Err(err),
        Err(Stop::Big) => {
            // A big tree: count what it expands to (each shared list or dict once), then build it.
            if expanded_size(obj, 0, &mut HashMap::new()) > MAX_NODES {
                let message = format!(
                    "the tree holds more than {MAX_NODES} values once its shared lists and dicts are \
                     counted at every place they appear (YAML aliases?); write out less"
                );
                return Err(Error::spec(path, message).into());
            }
            let mut budget = usize::MAX;
            to_value_at(obj, path, 0, &mut budget).map_err(|stop| match stop {
                Stop::Err(err) => err,
                Stop::Big => unreachable!("the budget is unbounded"),
            })
        }
    }
}

/// How many values `obj` expands to (capped just past `MAX_NODES`), memoized per container, so
/// the count is linear in the distinct containers. Past `MAX_DEPTH` (a cycle, or just deep) it
/// stops counting: the conversion reports the depth.
fn expanded_size(obj: &Bound<'_, PyAny>, depth: usize, memo: &mut HashMap<usize, usize>) -> usize {
    let key = obj.as_ptr() as usize;
    if let Some(&known) = memo.get(&key) {
        return known;
    }
    if depth > MAX_DEPTH {
        return 1;
    }
    let mut total: usize = 1;
    let mut add = |child: Bound<'_, PyAny>, memo: &mut HashMap<usize, usize>| {
        total = total.saturating_add(expanded_size(&child, depth + 1, memo));
        total > MAX_NODES
    };
    if let Ok(d) = obj.cast::<PyDict>() {
        for (_, v) in d.iter() {
            if add(v, memo) {
                break;
            }
        }
    } else if let Ok(l) = obj.cast::<PyList>() {
        for v in l.iter() {
            if add(v, memo) {
                break;
            }
        }
    } else if let Ok(t) = obj.cast::<PyTuple>() {
        for v in t.iter() {
            if add(v, memo) {
                break;
            }
        }
    } else {
        return 1;
    }
    memo.insert(key, total);
    total
}

fn to_value_at(
    obj: &Bound<'_, PyAny>,
    path: &str,
    depth: usize,
    budget: &mut usize,
) -> Result<Value, Stop> {
    if depth > MAX_DEPTH {
        return Err(Error::spec(path, format!("nested deeper than {MAX_DEPTH} levels")).into());
    }
    if *budget == 0 {
        return Err(Stop::Big);
    }
    *budget -= 1;
    if obj.is_none() {
        return Ok(Value::Null);
    }
    // bool before int: Python's bool is a subclass of int.
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(i) = obj.cast::<PyInt>() {
        return i.extract::<i64>().map(Value::Int).map_err(|_| {
            Error::spec(
                path,
                "integer does not fit in 64 bits (use a float or a string)",
            )
            .into()
        });
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Value::Float(f.value()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::Str(Arc::from(s.to_str()?)));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut map = Map::with_capacity(d.len());
        for (k, v) in d.iter() {
            let key = k.cast::<PyString>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "{}: dict keys must be strings, got {}",
                    where_(path),
                    k.repr().map(|r| r.to_string()).unwrap_or_default()
                ))
            })?;
            let key = key.to_str()?;
            let child = to_value_at(&v, &join(path, key), depth + 1, budget)?;
            map.insert(Arc::from(key), child);
        }
        return Ok(Value::Map(map));
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return l
            .iter()
            .enumerate()
            .map(|(i, v)| to_value_at(&v, &format!("{path}[{i}]"), depth + 1, budget))
            .collect::<Result<Vec<_>, Stop>>()
            .map(Value::List);
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return t
            .iter()
            .enumerate()
            .map(|(i, v)| to_value_at(&v, &format!("{path}[{i}]"), depth + 1, budget))
            .collect::<Result<Vec<_>, Stop>>()
            .map(Value::List);
    }
    // numpy arrays and scalars (`np.arange(5, 50, 5)`, `np.float64(0.1)`) are how quants write
    // grids: they stand for the exact Python values `tolist()` gives (issue 11).
    if is_numpy(obj) {
        let plain = obj.call_method0(pyo3::intern!(obj.py(), "tolist"))?;
        if !plain.is(obj) {
            return to_value_at(&plain, path, depth + 1, budget);
        }
    }
    Err(Stop::Err(PyTypeError::new_err(format!(
        "{}: {} is not a JSON-like value (use None, bool, int, float, str, list or dict)",
        where_(path),
        type_name(obj)
    ))))
}

/// A numpy array or scalar (its type lives in the `numpy` package and has `tolist`).
fn is_numpy(obj: &Bound<'_, PyAny>) -> bool {
    let ty = obj.get_type();
    ty.module()
        .map(|m| {
            m.to_str()
                .is_ok_and(|m| m == "numpy" || m.starts_with("numpy."))
        })
        .unwrap_or(false)
        && obj
            .hasattr(pyo3::intern!(obj.py(), "tolist"))
            .unwrap_or(false)
}

/// Builds a fresh Python object for a value (new lists and dicts every call).
pub fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::Float(f) => PyFloat::new(py, *f).into_any(),
        Value::Str(s) => PyString::new(py, s).into_any(),
        Value::List(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Map(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(PyString::new(py, k), to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}
