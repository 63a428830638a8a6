//! Bindings of the small hot helpers: `trial_key` and `ConfigTemplate`.

use pyo3::exceptions::PyTypeError;
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString, PyTuple};
use pyo3::PyTraverseError;

use crate::error::Error;
use crate::keys::{with_builder, Encoder, Key, KeyBuilder, Mark};
use crate::merge::{self, Edit, Override, Patch, Template};
use crate::value::Value;

use super::convert::{to_py, to_value, MAX_DEPTH};
use super::names::{with_names, NameCache};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(trial_key, m)?)?;
    m.add_class::<ConfigTemplate>()?;
    Ok(())
}

// --- trial keys -------------------------------------------------------------------------------

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

// --- config template --------------------------------------------------------------------------

/// The template as Python objects, built once. Every section keeps a prototype dict holding its
/// keys in order with the immutable leaves in place (and `None` where a dict or list goes): a
/// fresh section is `PyDict_Copy` of it — a table copy without rehashing — plus one store per
/// nested container and per override. Lists of scalars are copied the same way.
enum Node {
    Leaf(Py<PyAny>),
    Dict(Section),
    List(Seq),
}

struct Section {
    proto: Py<PyDict>,
    /// Every key in template order, with its node (for edits, which address keys by position).
    entries: Vec<(Py<PyString>, Node)>,
    /// Positions of the entries that are dicts or lists, rebuilt on every copy.
    containers: Vec<usize>,
}

struct Seq {
    proto: Py<PyList>,
    items: Vec<Node>,
    /// Whether any item is a dict or list (else a slice copy of `proto` is the whole job).
    nested: bool,
}

impl Node {
    fn build(py: Python<'_>, value: &Value) -> PyResult<Node> {
        Ok(match value {
            Value::Map(map) => Node::Dict(Section::build(py, map)?),
            Value::List(items) => {
                let items = items
                    .iter()
                    .map(|v| Node::build(py, v))
                    .collect::<PyResult<Vec<_>>>()?;
                let proto = PyList::empty(py);
                for item in &items {
                    proto.append(match item {
                        Node::Leaf(obj) => obj.bind(py).clone(),
                        _ => py.None().into_bound(py),
                    })?;
                }
                let nested = items.iter().any(|n| !matches!(n, Node::Leaf(_)));
                Node::List(Seq {
                    proto: proto.unbind(),
                    items,
                    nested,
                })
            }
            leaf => Node::Leaf(to_py(py, leaf)?.unbind()),
        })
    }

    fn fresh<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(match self {
            Node::Leaf(obj) => obj.bind(py).clone(),
            Node::Dict(section) => section.fresh(py, None)?.into_any(),
            Node::List(seq) => {
                let proto = seq.proto.bind(py);
                let list = proto.get_slice(0, proto.len());
                if seq.nested {
                    for (i, item) in seq.items.iter().enumerate() {
                        if !matches!(item, Node::Leaf(_)) {
                            list.set_item(i, item.fresh(py)?)?;
                        }
                    }
                }
                list.into_any()
            }
        })
    }

    fn visit(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        match self {
            Node::Leaf(obj) => visit.call(obj),
            Node::Dict(section) => section.visit(visit),
            Node::List(seq) => {
                visit.call(&seq.proto)?;
                seq.items.iter().try_for_each(|v| v.visit(visit))
            }
        }
    }
}

impl Section {
    fn build(py: Python<'_>, map: &crate::value::Map) -> PyResult<Section> {
        let proto = PyDict::new(py);
        let mut entries = Vec::with_capacity(map.len());
        let mut containers = Vec::new();
        for (index, (k, v)) in map.iter().enumerate() {
            let key = PyString::intern(py, k);
            let node = Node::build(py, v)?;
            match &node {
                Node::Leaf(obj) => proto.set_item(&key, obj.bind(py))?,
                _ => {
                    proto.set_item(&key, py.None())?;
                    containers.push(index);
                }
            }
            entries.push((key.unbind(), node));
        }
        Ok(Section {
            proto: proto.unbind(),
            entries,
            containers,
        })
    }

    fn empty(py: Python<'_>) -> Section {
        Section {
            proto: PyDict::new(py).unbind(),
            entries: Vec::new(),
            containers: Vec::new(),
        }
    }

    /// A new dict for this section with the plan's changes (if any) applied. Keys already in the
    /// prototype keep their template position when stored again; new keys come last.
    fn fresh<'py>(&self, py: Python<'py>, edit: Option<&Edit<'_>>) -> PyResult<Bound<'py, PyDict>> {
        let dict = self.proto.bind(py).copy()?;
        let Some(edit) = edit else {
            for &index in &self.containers {
                let (key, node) = &self.entries[index];
                dict.set_item(key.bind(py), node.fresh(py)?)?;
            }
            return Ok(dict);
        };
        let mut changes = edit.existing.iter().peekable();
        for &index in &self.containers {
            // Edits before this container touch leaves (or sections) at smaller positions.
            while let Some((i, patch)) = changes.next_if(|(i, _)| **i <= index) {
                self.store(py, &dict, *i, patch)?;
            }
            if edit.existing.contains_key(&index) {
                continue;
            }
            let (key, node) = &self.entries[index];
            dict.set_item(key.bind(py), node.fresh(py)?)?;
        }
        for (i, patch) in changes {
            self.store(py, &dict, *i, patch)?;
        }
        for (key, patch) in &edit.added {
            let value = match patch {
                Patch::Set(v) => to_py(py, v)?,
                Patch::Edit(inner) => Section::empty(py).fresh(py, Some(inner))?.into_any(),
            };
            dict.set_item(PyString::new(py, key), value)?;
        }
        Ok(dict)
    }

    fn store(
        &self,
        py: Python<'_>,
        dict: &Bound<'_, PyDict>,
        index: usize,
        patch: &Patch<'_>,
    ) -> PyResult<()> {
        let Some((key, node)) = self.entries.get(index) else {
            return Err(Error::Invalid(format!(
                "merge plan names position {index} of a section of {}",
                self.entries.len()
            ))
            .into());
        };
        let value = match patch {
            Patch::Set(v) => to_py(py, v)?,
            Patch::Edit(inner) => match node {
                Node::Dict(sub) => sub.fresh(py, Some(inner))?.into_any(),
                // The planner only edits sections; a leaf here would be a planner bug.
                _ => Section::empty(py).fresh(py, Some(inner))?.into_any(),
            },
        };
        dict.set_item(key.bind(py), value)
    }

    fn visit(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.proto)?;
        self.entries.iter().try_for_each(|(k, v)| {
            visit.call(k)?;
            v.visit(visit)
        })
    }
}

#[pyclass(frozen, module = "fastgrid._core")]
pub struct ConfigTemplate {
    template: Template,
    mirror: Section,
}

#[pymethods]
impl ConfigTemplate {
    #[new]
    #[pyo3(signature = (tree, /))]
    fn new(py: Python<'_>, tree: &Bound<'_, PyAny>) -> PyResult<Self> {
        let value = if tree.is_instance_of::<PyDict>() {
            to_value(tree, "")?
        } else if let Ok(mapping) = tree.cast::<PyMapping>() {
            to_value(
                &PyDict::from_sequence(mapping.items()?.as_any())?.into_any(),
                "",
            )?
        } else {
            return Err(PyTypeError::new_err(format!(
                "ConfigTemplate expects a dict, got {}",
                type_name(tree)
            )));
        };
        let template = Template::new(value)?;
        let mirror = Section::build(py, template.root_map())?;
        Ok(ConfigTemplate { template, mirror })
    }

    /// See `_core.pyi`.
    #[pyo3(signature = (params, /, *, allow_new = false))]
    fn merged<'py>(
        &self,
        py: Python<'py>,
        params: &Bound<'py, PyAny>,
        allow_new: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let overrides = overrides_of(params)?;
        let edit = self.template.plan(&overrides, allow_new)?;
        self.mirror.fresh(py, Some(&edit))
    }

    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.mirror.fresh(py, None)
    }

    #[getter]
    fn fingerprint(&self) -> &str {
        self.template.fingerprint()
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyDict>,))> {
        let this = slf.get();
        Ok((slf.get_type().into_any(), (this.to_dict(slf.py())?,)))
    }

    fn __repr__(&self) -> String {
        format!(
            "ConfigTemplate(<{} top-level keys>, fingerprint={:?})",
            self.mirror.entries.len(),
            self.template.fingerprint()
        )
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.mirror.visit(&visit)
    }
}

/// `{"a.b": 1}` and `{"a": {"b": 1}}` both become overrides; nested dicts are split further by
/// the planner.
fn overrides_of(params: &Bound<'_, PyAny>) -> PyResult<Vec<Override>> {
    let mut out = Vec::new();
    let mut push = |k: &Bound<'_, PyAny>, v: &Bound<'_, PyAny>| -> PyResult<()> {
        let key = k.cast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!(
                "override keys must be strings, got {}",
                k.repr().map(|r| r.to_string()).unwrap_or_default()
            ))
        })?;
        let key = key.to_str()?;
        let segments = merge::split_path(key)?
            .into_iter()
            .map(str::to_owned)
            .collect();
        out.push((segments, override_value(v, key)?));
        Ok(())
    };
    if let Ok(dict) = params.cast::<PyDict>() {
        for (k, v) in dict.iter() {
            push(&k, &v)?;
        }
    } else if let Ok(mapping) = params.cast::<PyMapping>() {
        for item in mapping.items()?.iter() {
            let (k, v) = item.extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>()?;
            push(&k, &v)?;
        }
    } else {
        return Err(PyTypeError::new_err(format!(
            "merged() expects a mapping of overrides, got {}",
            type_name(params)
        )));
    }
    Ok(out)
}

/// Override values may be read-only mappings (a config snapshot's sections): read them as dicts.
fn override_value(v: &Bound<'_, PyAny>, path: &str) -> PyResult<Value> {
    // The abc check for Mapping is slow; the common values settle with pointer compares.
    let plain = v.is_exact_instance_of::<PyFloat>()
        || v.is_exact_instance_of::<PyInt>()
        || v.is_exact_instance_of::<PyString>()
        || v.is_exact_instance_of::<PyBool>()
        || v.is_exact_instance_of::<PyList>()
        || v.is_none()
        || v.is_instance_of::<PyDict>();
    if !plain {
        if let Ok(mapping) = v.cast::<PyMapping>() {
            let mut map = crate::value::Map::new();
            for item in mapping.items()?.iter() {
                let (k, inner) = item.extract::<(String, Bound<'_, PyAny>)>()?;
                let value = override_value(&inner, &join(path, &k))?;
                map.insert(k.into(), value);
            }
            return Ok(Value::Map(map));
        }
    }
    to_value(v, path)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn where_(path: &str) -> &str {
    if path.is_empty() {
        "<root>"
    } else {
        path
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default()
}
