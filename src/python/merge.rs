//! Binding of `crate::merge`: `ConfigTemplate`, a config tree mirrored as Python objects once and
//! copied with a merge plan's changes per trial.

use pyo3::exceptions::PyTypeError;
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString};
use pyo3::PyTraverseError;

use crate::error::Error;
use crate::merge::{self, Edit, Override, Patch, Template};
use crate::value::Value;

use super::convert::{join, to_py, to_value, type_name};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ConfigTemplate>()
}

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
