//! Binding of `crate::keys`: `trial_key`, which walks a Python mapping straight into the key
//! builder.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString, PyTuple};

use crate::error::Error;
use crate::keys::{with_builder, Encoder, Key, KeyBuilder, Mark};

use super::convert::{join, to_value, type_name, where_, MAX_DEPTH};
use super::names::{with_names, NameCache};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(trial_key, m)?)
}

/// Walks the Python mapping straight into the key builder: no intermediate tree, so a key costs
/// about as much as reading the dict once.
#[pyfunction]
#[pyo3(signature = (params, /))]
fn trial_key<'py>(params: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyString>> {
    let key = with_names(|names| {
        with_builder(|builder| -> PyResult<Key> {
            let mut walk = Walk { builder, names };
            walk.mapping(params, "", 0)?;
            Ok(walk.builder.finish()?)
        })
    })?;
    Ok(PyString::new(params.py(), key.as_str()))
}

/// One key's walk: the builder, and the thread's cache of split names unless a reentrant call
/// holds it.
struct Walk<'a> {
    builder: &'a mut KeyBuilder,
    names: Option<&'a mut NameCache>,
}

impl Walk<'_> {
    fn mapping(&mut self, obj: &Bound<'_, PyAny>, path: &str, depth: usize) -> PyResult<()> {
        if let Ok(dict) = obj.cast::<PyDict>() {
            for (k, v) in dict.iter() {
                self.entry(&k, &v, path, depth)?;
            }
            return Ok(());
        }
        if let Ok(mapping) = obj.cast::<PyMapping>() {
            for item in mapping.items()?.iter() {
                let (k, v) = item.extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>()?;
                self.entry(&k, &v, path, depth)?;
            }
            return Ok(());
        }
        Err(PyTypeError::new_err(format!(
            "{}: expected a mapping of parameters, got {}",
            where_(path),
            type_name(obj)
        )))
    }

    fn entry(
        &mut self,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        path: &str,
        depth: usize,
    ) -> PyResult<()> {
        let key = key.cast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!(
                "{}: parameter names must be strings, got {}",
                where_(path),
                key.repr().map(|r| r.to_string()).unwrap_or_default()
            ))
        })?;
        // Paths are only built when needed for a message or a nested walk.
        let child_path = || join(path, &key.to_string_lossy());
        // The usual leaves settle on one pointer compare of their exact type, before the general
        // section test below (whose subclass and Mapping checks cost more than the leaf itself).
        if let Ok(f) = value.cast_exact::<PyFloat>() {
            self.leaf(key)?.float(f.value());
        } else if let Ok(i) = value.cast_exact::<PyInt>() {
            let mut enc = self.leaf(key)?;
            enc.int(int64(i, &child_path)?);
        } else if let Ok(s) = value.cast_exact::<PyString>() {
            let s = s.to_str()?;
            self.leaf(key)?.str(s);
        } else if let Ok(b) = value.cast_exact::<PyBool>() {
            self.leaf(key)?.bool(b.is_true());
        } else if is_section(value)? {
            if depth >= MAX_DEPTH {
                let message = format!("nested deeper than {MAX_DEPTH} levels");
                return Err(Error::spec(child_path(), message).into());
            }
            let mark = self.enter(key)?;
            self.mapping(value, &child_path(), depth + 1)?;
            self.builder.leave(mark);
        } else {
            let mut enc = self.leaf(key)?;
            encode(&mut enc, value, &child_path, depth)?;
        }
        Ok(())
    }

    /// Starts the leaf named `key` under the current path.
    fn leaf(&mut self, key: &Bound<'_, PyString>) -> PyResult<Encoder<'_>> {
        if let Some(split) = self.names.as_deref_mut().and_then(|names| names.split(key)) {
            return Ok(self.builder.leaf_at_split(split));
        }
        Ok(self.builder.leaf_at(key.to_str()?)?)
    }

    fn enter(&mut self, key: &Bound<'_, PyString>) -> PyResult<Mark> {
        if let Some(split) = self.names.as_deref_mut().and_then(|names| names.split(key)) {
            return Ok(self.builder.enter_split(split));
        }
        Ok(self.builder.enter(key.to_str()?)?)
    }
}

fn int64(i: &Bound<'_, PyInt>, path: &dyn Fn() -> String) -> PyResult<i64> {
    i.extract::<i64>().map_err(|_| {
        Error::spec(
            path(),
            "integer does not fit in 64 bits (use a float or a string)",
        )
        .into()
    })
}

/// A non-empty mapping is walked as a section; anything else is a leaf value.
fn is_section(value: &Bound<'_, PyAny>) -> PyResult<bool> {
    // Exact-type checks first: scalars are by far the common case and cost a pointer compare.
    if value.is_exact_instance_of::<PyFloat>()
        || value.is_exact_instance_of::<PyInt>()
        || value.is_exact_instance_of::<PyString>()
        || value.is_exact_instance_of::<PyBool>()
        || value.is_exact_instance_of::<PyList>()
        || value.is_none()
    {
        return Ok(false);
    }
    if let Ok(d) = value.cast::<PyDict>() {
        return Ok(!d.is_empty());
    }
    if value.is_instance_of::<PyString>()
        || value.is_instance_of::<PyInt>()
        || value.is_instance_of::<PyFloat>()
        || value.is_instance_of::<PyList>()
        || value.is_instance_of::<PyTuple>()
    {
        return Ok(false);
    }
    match value.cast::<PyMapping>() {
        Ok(m) => Ok(m.len()? > 0),
        Err(_) => Ok(false),
    }
}

fn encode(
    enc: &mut Encoder<'_>,
    obj: &Bound<'_, PyAny>,
    path: &dyn Fn() -> String,
    depth: usize,
) -> PyResult<()> {
    if let Ok(f) = obj.cast_exact::<PyFloat>() {
        enc.float(f.value());
    } else if obj.is_none() {
        enc.null();
    } else if let Ok(b) = obj.cast::<PyBool>() {
        // Before int: bool is a subclass of int, and True must not key like 1.
        enc.bool(b.is_true());
    } else if let Ok(i) = obj.cast::<PyInt>() {
        enc.int(int64(i, path)?);
    } else if let Ok(f) = obj.cast::<PyFloat>() {
        enc.float(f.value());
    } else if let Ok(s) = obj.cast::<PyString>() {
        enc.str(s.to_str()?);
    } else if let Ok(l) = obj.cast::<PyList>() {
        encode_items(enc, l.len(), l.iter(), path, depth)?;
    } else if let Ok(t) = obj.cast::<PyTuple>() {
        encode_items(enc, t.len(), t.iter(), path, depth)?;
    } else {
        // Dicts as values (inside lists, or an empty section) are rare: take the general route,
        // which also sorts their keys.
        enc.value(&to_value(obj, &path())?);
    }
    Ok(())
}

fn encode_items<'py>(
    enc: &mut Encoder<'_>,
    len: usize,
    items: impl Iterator<Item = Bound<'py, PyAny>>,
    path: &dyn Fn() -> String,
    depth: usize,
) -> PyResult<()> {
    if depth >= MAX_DEPTH {
        return Err(Error::spec(path(), format!("nested deeper than {MAX_DEPTH} levels")).into());
    }
    enc.list_header(len);
    let mut count = 0;
    for (i, item) in items.enumerate() {
        let item_path = || format!("{}[{i}]", path());
        encode(enc, &item, &item_path, depth + 1)?;
        count += 1;
    }
    // A list resized during the walk would break the length prefix.
    if count != len {
        return Err(Error::Invalid(format!("{}: list changed size while hashing", path())).into());
    }
    Ok(())
}
