//! `Grid`, its iterators and `parse_parameters`: conversions around the pure-Rust grid engine.
//!
//! Points are built from objects made once per grid: key strings (interned) and each axis's value
//! objects. Iteration keeps a private template point, updates only the axes the odometer changed
//! and hands out a copy (the C-level `dict.copy()`), so a point costs about one dict copy. Lists and
//! dicts among the values are mutable, so every point gets its own copy of those.

use std::sync::{Arc, Mutex};

use numpy::{PyArray1, PyArrayMethods};
use pyo3::exceptions::{PyIndexError, PyKeyError, PyOverflowError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PySlice, PyString, PyTuple};

use super::convert::{to_py, to_value};
use super::gil::detached;
use crate::error::Error;
use crate::grid::axis::Dtype;
use crate::grid::axis::{Axis, Kind};
use crate::grid::columns::{self, Column, Out, MISSING};
use crate::grid::order::{increment, shard_bounds, View};
use crate::grid::rules;
use crate::grid::spec::{parse_root, Node, Param, Tree};
use crate::grid::Grid as CoreGrid;
use crate::value::Value;

/// Axes up to this many values keep their value objects; larger ones build each value on demand.
const CACHE_LIMIT: u64 = 1 << 16;
/// `columns()` refuses results larger than this (8 bytes per value); `iter_columns(chunk=...)`
/// handles any size. An explicit budget, because Linux overcommit would let a huge allocation
/// succeed and the OOM killer end the process later.
const COLUMNS_BUDGET: u128 = 8 << 30;

enum PlanKind {
    Namespace(usize),
    Leaf(usize),
}

struct PlanNode {
    parent: usize,
    key: Py<PyString>,
    kind: PlanKind,
}

/// How one tree's points are assembled in Python.
struct PartPlan {
    /// Depth-first, so inserting in this order keeps every dict in declaration order.
    nodes: Vec<PlanNode>,
    namespaces: usize,
    /// Per axis: the namespace holding its leaf, and the key.
    leaf: Vec<(usize, Py<PyString>)>,
    /// Per axis: cached value objects (`None` for axes too large to cache).
    values: Vec<Option<Vec<Py<PyAny>>>>,
    /// Per axis: whether some values are lists/dicts (fresh copy per point).
    mutable: Vec<bool>,
    /// The point at digits `zeros`: its namespace dicts by id, copied to make other points.
    template: Vec<Py<PyDict>>,
    zeros: Vec<u64>,
    /// One flat dict with no mutable values: a point is exactly a copy of the template.
    simple: bool,
}

struct Cache {
    parts: Vec<PartPlan>,
}

fn build_plan(py: Python<'_>, tree: &Tree, flat: bool) -> PyResult<PartPlan> {
    let mut plan = PartPlan {
        nodes: Vec::new(),
        namespaces: 1,
        leaf: Vec::new(),
        values: Vec::new(),
        mutable: Vec::new(),
        template: Vec::new(),
        zeros: vec![0; tree.params.len()],
        simple: false,
    };
    let mut leaf: Vec<Option<(usize, Py<PyString>)>> =
        (0..tree.params.len()).map(|_| None).collect();
    if flat {
        for (a, p) in tree.params.iter().enumerate() {
            let key = PyString::intern(py, &p.path).unbind();
            plan.nodes.push(PlanNode {
                parent: 0,
                key: key.clone_ref(py),
                kind: PlanKind::Leaf(a),
            });
            leaf[a] = Some((0, key));
        }
    } else {
        fn walk(
            py: Python<'_>,
            ns: &indexmap::IndexMap<Arc<str>, Node>,
            parent: usize,
            plan: &mut PartPlan,
            leaf: &mut [Option<(usize, Py<PyString>)>],
        ) {
            for (k, node) in ns {
                let key = PyString::intern(py, k).unbind();
                match node {
                    Node::Leaf(a) => {
                        plan.nodes.push(PlanNode {
                            parent,
                            key: key.clone_ref(py),
                            kind: PlanKind::Leaf(*a),
                        });
                        leaf[*a] = Some((parent, key));
                    }
                    Node::Namespace(inner) => {
                        let id = plan.namespaces;
                        plan.namespaces += 1;
                        plan.nodes.push(PlanNode {
                            parent,
                            key,
                            kind: PlanKind::Namespace(id),
                        });
                        walk(py, inner, id, plan, leaf);
                    }
                }
            }
        }
        walk(py, &tree.shape, 0, &mut plan, &mut leaf);
    }
    plan.leaf = leaf
        .into_iter()
        .map(|l| l.ok_or_else(|| PyValueError::new_err("internal: parameter without a place")))
        .collect::<PyResult<_>>()?;
    for p in &tree.params {
        let mutable = p.axis.has_mutable();
        plan.mutable.push(mutable);
        let n = p.axis.size().unwrap_or(0);
        plan.values.push(if n <= CACHE_LIMIT {
            Some(
                (0..n)
                    .map(|k| to_py(py, &p.axis.value(k)).map(Bound::unbind))
                    .collect::<PyResult<_>>()?,
            )
        } else {
            None
        });
    }
    plan.simple = plan.namespaces == 1 && !plan.mutable.iter().any(|&m| m);
    plan.template = plan
        .build(py, &tree.params, &plan.zeros)?
        .into_iter()
        .map(Bound::unbind)
        .collect();
    Ok(plan)
}

impl PartPlan {
    /// The value object of axis `a` at position `k`: shared when immutable, a fresh copy otherwise.
    fn value<'py>(
        &self,
        py: Python<'py>,
        axis: &Axis,
        a: usize,
        k: u64,
    ) -> PyResult<Bound<'py, PyAny>> {
        match &self.values[a] {
            Some(objs) if !self.mutable[a] => Ok(objs[k as usize].bind(py).clone()),
            _ => to_py(py, &axis.value(k)),
        }
    }

    /// Sets leaf `a` of a template to the value at `k`, without touching reference counts when the
    /// value object is cached (this is the inner loop of iteration).
    fn set_leaf(
        &self,
        py: Python<'_>,
        namespaces: &[Py<PyDict>],
        axis: &Axis,
        a: usize,
        k: u64,
    ) -> PyResult<()> {
        let (ns, key) = &self.leaf[a];
        let dict = &namespaces[*ns];
        match &self.values[a] {
            Some(objs) if !self.mutable[a] => {
                // SAFETY: dict, key and value are live objects owned by the plan and the template;
                // PyDict_SetItem takes its own references.
                let rc = unsafe {
                    ffi::PyDict_SetItem(dict.as_ptr(), key.as_ptr(), objs[k as usize].as_ptr())
                };
                if rc < 0 {
                    Err(PyErr::fetch(py))
                } else {
                    Ok(())
                }
            }
            _ => dict
                .bind(py)
                .set_item(key.bind(py), self.value(py, axis, a, k)?),
        }
    }

    /// Builds a point from scratch (used once per part, for the template).
    fn build<'py>(
        &self,
        py: Python<'py>,
        params: &[Param],
        digits: &[u64],
    ) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let mut dicts = Vec::with_capacity(self.namespaces);
        dicts.push(PyDict::new(py));
        for node in &self.nodes {
            match node.kind {
                PlanKind::Leaf(a) => dicts[node.parent].set_item(
                    node.key.bind(py),
                    self.value(py, &params[a].axis, a, digits[a])?,
                )?,
                PlanKind::Namespace(_) => {
                    let d = PyDict::new(py);
                    dicts[node.parent].set_item(node.key.bind(py), &d)?;
                    dicts.push(d);
                }
            }
        }
        Ok(dicts)
    }

    /// A point as copies of `namespaces` (the template's dicts, which are never handed out) with
    /// the leaves whose digit differs from `base` (or that are mutable) set.
    fn point_from<'py>(
        &self,
        py: Python<'py>,
        namespaces: &[Py<PyDict>],
        params: &[Param],
        digits: &[u64],
        base: Option<&[u64]>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let root = copy_dict(py, &namespaces[0])?;
        let mut out = Vec::new();
        if self.namespaces > 1 {
            out.reserve(self.namespaces);
            out.push(root.clone());
            for node in &self.nodes {
                if let PlanKind::Namespace(id) = node.kind {
                    let copy = namespaces[id].bind(py).copy()?;
                    out[node.parent].set_item(node.key.bind(py), &copy)?;
                    out.push(copy);
                }
            }
        }
        for (a, &d) in digits.iter().enumerate() {
            if self.mutable[a] || base.is_none_or(|b| b[a] != d) {
                let (ns, key) = &self.leaf[a];
                let target = if *ns == 0 { &root } else { &out[*ns] };
                target.set_item(key.bind(py), self.value(py, &params[a].axis, a, d)?)?;
            }
        }
        Ok(root)
    }

    fn point<'py>(
        &self,
        py: Python<'py>,
        params: &[Param],
        digits: &[u64],
    ) -> PyResult<Bound<'py, PyDict>> {
        self.point_from(py, &self.template, params, digits, Some(&self.zeros))
    }
}

fn copy_dict<'py>(py: Python<'py>, dict: &Py<PyDict>) -> PyResult<Bound<'py, PyDict>> {
    // SAFETY: PyDict_Copy of a live dict returns a new reference or NULL with an exception set.
    let copy = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyDict_Copy(dict.as_ptr()))? };
    // SAFETY: PyDict_Copy always returns a dict.
    Ok(unsafe { copy.cast_into_unchecked::<PyDict>() })
}

/// A lazy, exact, indexable grid over a parameters tree (docs in `_core.pyi`).
#[pyclass(frozen, sequence, module = "fastgrid", name = "Grid")]
pub struct PyGrid {
    core: Arc<CoreGrid>,
    // The cache holds only str/int/float/bool/None objects, which cannot form reference cycles,
    // and it is shared by every view of the grid; visiting it from each view in a `__traverse__`
    // would over-count references, so there is deliberately none.
    cache: Arc<Cache>,
    view: View,
    flat: bool,
    constraints: Arc<Vec<String>>,
}

fn constraint_texts(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<String>> {
    let Some(obj) = obj else {
        return Ok(Vec::new());
    };
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(vec![s.to_str()?.to_owned()]);
    }
    obj.try_iter()
        .map_err(|_| {
            PyTypeError::new_err("constraints must be a string or an iterable of strings")
        })?
        .map(|item| {
            let item = item?;
            item.cast::<PyString>()
                .map_err(|_| {
                    PyTypeError::new_err(format!(
                        "each constraint must be a string, got {}",
                        item.get_type()
                            .name()
                            .map(|n| n.to_string())
                            .unwrap_or_default()
                    ))
                })?
                .to_str()
                .map(str::to_owned)
        })
        .collect()
}

fn too_large(what: &str) -> PyErr {
    PyOverflowError::new_err(format!("{what} is beyond this operation's integer range"))
}

impl PyGrid {
    fn with_view(&self, view: View) -> PyGrid {
        PyGrid {
            core: self.core.clone(),
            cache: self.cache.clone(),
            view,
            flat: self.flat,
            constraints: self.constraints.clone(),
        }
    }

    fn point_at<'py>(&self, py: Python<'py>, pos: u128) -> PyResult<Bound<'py, PyDict>> {
        let mut digits = Vec::new();
        let part = self.core.digits(self.view.map(pos), &mut digits);
        self.cache.parts[part].point(py, &self.core.parts[part].tree.params, &digits)
    }

    fn normalize(&self, index: &Bound<'_, PyAny>) -> PyResult<u128> {
        let len = self.view.len();
        let i: i128 = index.extract().map_err(|_| {
            if index.cast::<pyo3::types::PyInt>().is_ok() {
                PyIndexError::new_err("grid index out of range")
            } else {
                PyTypeError::new_err(format!(
                    "grid indices must be integers or slices, not {}",
                    index
                        .get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                ))
            }
        })?;
        let resolved = if i < 0 {
            i128::try_from(len)
                .ok()
                .and_then(|l| l.checked_add(i))
                .filter(|&x| x >= 0)
        } else {
            Some(i)
        };
        match resolved {
            Some(x) if (x as u128) < len => Ok(x as u128),
            _ => Err(Error::IndexOutOfRange {
                index: i.to_string(),
                len: len.to_string(),
                what: "grid",
            }
            .into()),
        }
    }

    fn slice(&self, slice: &Bound<'_, PySlice>) -> PyResult<PyGrid> {
        let len = i128::try_from(self.view.len()).map_err(|_| too_large("grid size"))?;
        let get = |name: &str| -> PyResult<Option<i128>> {
            let v = slice.getattr(name)?;
            if v.is_none() {
                return Ok(None);
            }
            match v.extract::<i128>() {
                Ok(x) => Ok(Some(x)),
                // Ints past i128 clamp like CPython clamps past Py_ssize_t.
                Err(_) if v.cast::<pyo3::types::PyInt>().is_ok() => Ok(Some(if v.lt(0)? {
                    i128::MIN / 2
                } else {
                    i128::MAX / 2
                })),
                Err(_) => Err(PyTypeError::new_err(
                    "slice indices must be integers or None",
                )),
            }
        };
        let step = get("step")?.unwrap_or(1);
        if step == 0 {
            return Err(PyValueError::new_err("slice step cannot be zero"));
        }
        let (lower, upper) = if step > 0 { (0, len) } else { (-1, len - 1) };
        let clamp = |v: Option<i128>, default: i128| match v {
            None => default,
            Some(v) if v < 0 => (v + len).max(lower),
            Some(v) => v.min(upper),
        };
        let start = clamp(get("start")?, if step > 0 { lower } else { upper });
        let stop = clamp(get("stop")?, if step > 0 { upper } else { lower });
        let count = if step > 0 && stop > start {
            (stop - start - 1) / step + 1
        } else if step < 0 && start > stop {
            (start - stop - 1) / (-step) + 1
        } else {
            0
        };
        Ok(self.with_view(self.view.slice(start, step, count as u128)?))
    }

    fn find(&self, point: &Bound<'_, PyAny>) -> Option<u128> {
        let value = to_value(point, "").ok()?;
        let base = self.core.find(&value, self.flat)?;
        self.view.unmap(base)
    }

    fn axes_list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let mut out = Vec::new();
        for (t, part) in self.core.parts.iter().enumerate() {
            for p in &part.tree.params {
                let d = describe(py, p)?;
                d.set_item("tree", t)?;
                out.push(d);
            }
        }
        PyTuple::new(py, out)
    }
}

fn describe<'py>(py: Python<'py>, p: &Param) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("path", &p.path)?;
    d.set_item("kind", p.kind.name())?;
    d.set_item("size", p.axis.size())?;
    for (name, v) in &p.fields {
        d.set_item(*name, to_py(py, v)?)?;
    }
    Ok(d)
}

fn seed_of(seed: &Bound<'_, PyAny>) -> PyResult<u64> {
    seed.extract::<u64>()
        .map_err(|_| PyValueError::new_err("seed must be an integer in [0, 2**64)"))
}

#[pymethods]
impl PyGrid {
    #[new]
    #[pyo3(signature = (spec, *, constraints = None, flat = false))]
    fn new(
        py: Python<'_>,
        spec: &Bound<'_, PyAny>,
        constraints: Option<&Bound<'_, PyAny>>,
        flat: bool,
    ) -> PyResult<Self> {
        let root = to_value(spec, "")?;
        let texts = constraint_texts(constraints)?;
        let texts_for_build = texts.clone();
        let core = detached(py, move |check| {
            CoreGrid::new(&root, &texts_for_build, &rules::compile, check)
        })?;
        let parts = core
            .parts
            .iter()
            .map(|p| build_plan(py, &p.tree, flat))
            .collect::<PyResult<_>>()?;
        let view = View::identity(core.len());
        Ok(PyGrid {
            core: Arc::new(core),
            cache: Arc::new(Cache { parts }),
            view,
            flat,
            constraints: Arc::new(texts),
        })
    }

    fn __len__(&self) -> PyResult<usize> {
        let n = self.view.len();
        if n > isize::MAX as u128 {
            return Err(Error::Overflow(format!(
                "the grid has {n} points, more than sys.maxsize; use grid.size"
            ))
            .into());
        }
        Ok(n as usize)
    }

    #[getter]
    fn size(&self) -> u128 {
        self.view.len()
    }

    #[getter]
    fn flat(&self) -> bool {
        self.flat
    }

    #[getter]
    fn paths<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.core.paths())
    }

    #[getter]
    fn axes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        self.axes_list(py)
    }

    #[getter]
    fn constraints<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.constraints.iter())
    }

    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let Ok(slice) = key.cast::<PySlice>() {
            return Ok(Bound::new(py, self.slice(slice)?)?.into_any());
        }
        let pos = self.normalize(key)?;
        Ok(self.point_at(py, pos)?.into_any())
    }

    fn __contains__(&self, point: &Bound<'_, PyAny>) -> bool {
        self.find(point).is_some()
    }

    fn index(&self, point: &Bound<'_, PyAny>) -> PyResult<u128> {
        self.find(point).ok_or_else(|| {
            let shown = point.repr().map(|r| r.to_string()).unwrap_or_default();
            Error::NotFound(format!("{shown} is not in the grid")).into()
        })
    }

    fn count(&self, point: &Bound<'_, PyAny>) -> usize {
        let Ok(value) = to_value(point, "") else {
            return 0;
        };
        // Parts of a union may share points; count each part's occurrence inside this view.
        (0..self.core.parts.len())
            .filter(|&p| {
                let single = CorePartRef {
                    grid: &self.core,
                    part: p,
                };
                single
                    .find(&value, self.flat)
                    .and_then(|base| self.view.unmap(base))
                    .is_some()
            })
            .count()
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        chained(py, GridIter::new(self, false))
    }

    fn __reversed__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        chained(py, GridIter::new(self, true))
    }

    fn shard(&self, k: &Bound<'_, PyAny>, n: &Bound<'_, PyAny>) -> PyResult<PyGrid> {
        let (k, n): (u128, u128) = match (k.extract(), n.extract()) {
            (Ok(k), Ok(n)) if n >= 1 && k < n => (k, n),
            _ => {
                return Err(PyValueError::new_err(format!(
                    "shard(k, n) needs integers 0 <= k < n, got k={k}, n={n}"
                )))
            }
        };
        let (a, b) = shard_bounds(self.view.len(), k, n);
        let start = i128::try_from(a).map_err(|_| too_large("shard start"))?;
        Ok(self.with_view(self.view.slice(start, 1, b - a)?))
    }

    #[pyo3(signature = (seed, /))]
    fn shuffled(&self, seed: &Bound<'_, PyAny>) -> PyResult<PyGrid> {
        Ok(self.with_view(self.view.shuffled(seed_of(seed)?)))
    }

    #[pyo3(signature = (n, /, *, seed))]
    fn sample<'py>(
        &self,
        py: Python<'py>,
        n: usize,
        seed: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        if n as u128 > self.view.len() {
            return Err(PyValueError::new_err(format!(
                "sample of {n} points is larger than the grid ({} points)",
                self.view.len()
            )));
        }
        let shuffled = self.with_view(self.view.shuffled(seed_of(seed)?));
        let points = (0..n as u128)
            .map(|i| shuffled.point_at(py, i))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, points)
    }

    #[pyo3(signature = (start = None, stop = None, /, *, fixed = "column", positions = false))]
    fn columns<'py>(
        &self,
        py: Python<'py>,
        start: Option<&Bound<'py, PyAny>>,
        stop: Option<&Bound<'py, PyAny>>,
        fixed: &str,
        positions: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let scalars = match fixed {
            "column" => false,
            "scalar" => true,
            other => {
                return Err(PyValueError::new_err(format!(
                    "fixed={other:?}: expected \"column\" or \"scalar\""
                )))
            }
        };
        let len = self.view.len();
        let bound = |v: Option<&Bound<'py, PyAny>>, default: u128| -> PyResult<u128> {
            match v {
                None => Ok(default),
                Some(v) if v.is_none() => Ok(default),
                Some(v) => v.extract::<u128>().map_err(|_| {
                    PyValueError::new_err(format!(
                        "columns(start, stop) needs integers 0 <= start <= stop <= {len}, got {v}"
                    ))
                }),
            }
        };
        let (from, to) = (bound(start, 0)?, bound(stop, len)?);
        if from > to || to > len {
            return Err(PyValueError::new_err(format!(
                "columns(start, stop) needs 0 <= start <= stop <= {len}, got start={from}, stop={to}"
            )));
        }
        let n = to - from;
        let bytes = n.saturating_mul(self.core.paths().len().max(1) as u128 * 8);
        if bytes > COLUMNS_BUDGET {
            return Err(PyValueError::new_err(format!(
                "columns() of {n} points would take {} GiB; use smaller ranges or iter_columns(chunk=...)",
                bytes >> 30
            )));
        }
        if positions && self.core.parts.len() != 1 {
            return Err(PyValueError::new_err(
                "columns(positions=True) needs a grid of one tree: in a union a position names a value \
                 of the point's own tree",
            ));
        }
        let (values, found) = columns_dict(
            py,
            &self.core,
            &self.cache,
            &self.view,
            from,
            to,
            scalars,
            positions,
        )?;
        match found {
            Some(found) => Ok(PyTuple::new(py, [values, found])?.into_any()),
            None => Ok(values.into_any()),
        }
    }

    #[pyo3(signature = (path, /, start = 0, stop = None))]
    fn axis_values<'py>(
        &self,
        py: Python<'py>,
        path: &str,
        start: u64,
        stop: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if self.core.parts.len() != 1 {
            return Err(PyValueError::new_err(
                "axis_values() needs a grid of one tree (a union has one axis per tree)",
            ));
        }
        let Some(c) = self.core.paths().iter().position(|p| p == path) else {
            return Err(PyKeyError::new_err(format!(
                "no parameter '{path}' in this grid (parameters: {})",
                self.core.paths().join(", ")
            )));
        };
        let plan = columns::plan(&self.core);
        let size = plan[c].1[0].map_or(0, |a| {
            self.core.parts[0].tree.params[a].axis.size().unwrap_or(0)
        });
        let stop = stop.unwrap_or(size);
        let Some(column) = columns::axis_column(&self.core, c, start, stop) else {
            return Err(PyValueError::new_err(format!(
                "axis_values('{path}', start, stop) needs 0 <= start <= stop <= {size}, got start={start}, stop={stop}"
            )));
        };
        Ok(match column {
            Column::I64(v) => PyArray1::from_vec(py, v).into_any(),
            Column::F64(v) => PyArray1::from_vec(py, v).into_any(),
            Column::Bool(v) => PyArray1::from_vec(py, v).into_any(),
            Column::Object(ks) => {
                object_column(py, &self.core, &self.cache, &plan[c].1, None, &ks)?
            }
        })
    }

    #[pyo3(signature = (*, chunk = 1_000_000))]
    fn iter_columns(&self, chunk: u64) -> PyResult<ColumnsIter> {
        if chunk == 0 {
            return Err(PyValueError::new_err("chunk must be a positive integer"));
        }
        Ok(ColumnsIter {
            core: self.core.clone(),
            cache: self.cache.clone(),
            view: self.view.clone(),
            state: Mutex::new(0),
            chunk: chunk as u128,
        })
    }

    fn __repr__(&self) -> String {
        let mut trees = Vec::new();
        for part in &self.core.parts {
            let mut varying = Vec::new();
            let mut fixed = 0;
            for p in &part.tree.params {
                match p.axis.size() {
                    Some(1) if p.kind == Kind::Fixed => fixed += 1,
                    n => varying.push(format!("{}={}", p.path, n.unwrap_or(0))),
                }
            }
            if varying.len() > 12 {
                let more = varying.len() - 10;
                varying.truncate(10);
                varying.push(format!("… {more} more"));
            }
            let mut text = if varying.is_empty() {
                "1".to_owned()
            } else {
                varying.join(" × ")
            };
            if fixed > 0 {
                text.push_str(&format!(" (+{fixed} fixed)"));
            }
            if !part.space.is_product() {
                text.push_str(&format!(" → {} admissible", group(part.space.len())));
            }
            trees.push(text);
        }
        let body = if trees.len() == 1 {
            trees.remove(0)
        } else {
            trees
                .iter()
                .map(|t| format!("[{t}]"))
                .collect::<Vec<_>>()
                .join(" + ")
        };
        let mut s = format!("Grid({} points: {body}", group(self.core.len()));
        if !self.constraints.is_empty() {
            s.push_str(&format!(", constraints={:?}", self.constraints));
        }
        if self.flat {
            s.push_str(", flat=True");
        }
        s.push(')');
        if self.view.len() != self.core.len() || self.view.as_range() != Some((0, 1)) {
            s = format!("<view of {} points of {s}>", group(self.view.len()));
        }
        s
    }
}

static CHAIN: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn chained<'py>(py: Python<'py>, chunks: GridIter) -> PyResult<Bound<'py, PyAny>> {
    let chain = CHAIN.get_or_try_init(py, || {
        py.import("itertools")?
            .getattr("chain")?
            .getattr("from_iterable")
            .map(Bound::unbind)
    })?;
    chain.bind(py).call1((Bound::new(py, chunks)?,))
}

/// `Grid::find` restricted to one part (for `count`).
struct CorePartRef<'a> {
    grid: &'a CoreGrid,
    part: usize,
}

impl CorePartRef<'_> {
    fn find(&self, value: &Value, flat: bool) -> Option<u128> {
        let part = &self.grid.parts[self.part];
        let single = CoreGrid::find_in(part, value, flat)?;
        Some(self.grid.start(self.part) + single)
    }
}

fn group(n: u128) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The columns of view positions `from..to` (path → array, or scalar for a constant with
/// `scalars`) and, with `positions`, each varying path's value positions on its axis (one tree).
#[allow(clippy::too_many_arguments)]
fn columns_dict<'py>(
    py: Python<'py>,
    core: &Arc<CoreGrid>,
    cache: &Cache,
    view: &View,
    from: u128,
    to: u128,
    scalars: bool,
    positions: bool,
) -> PyResult<(Bound<'py, PyDict>, Option<Bound<'py, PyDict>>)> {
    enum Buf<'py> {
        I64(Bound<'py, PyArray1<i64>>),
        F64(Bound<'py, PyArray1<f64>>),
        Bool(Bound<'py, PyArray1<bool>>),
        Object(Bound<'py, PyArray1<u64>>),
        U8(Bound<'py, PyArray1<u8>>),
        U16(Bound<'py, PyArray1<u16>>),
        U32(Bound<'py, PyArray1<u32>>),
        Scalar(Bound<'py, PyAny>),
        Skip,
    }
    let n = usize::try_from(to - from).map_err(|_| too_large("columns size"))?;
    let plan = columns::plan(core);
    // numpy allocates the arrays (with huge pages on Linux, which saves most page faults) and
    // Rust fills them in place. SAFETY: integer and float arrays may start uninitialized: every
    // element is written before the array is read, and any bit pattern is a valid value
    // meanwhile; bools are zeroed because not every byte is a valid bool.
    let mut bufs: Vec<Buf> = plan
        .iter()
        .enumerate()
        .map(|(c, (dtype, _))| {
            if let Some(value) = scalars.then(|| columns::constant(core, c)).flatten() {
                return Ok(Buf::Scalar(to_py(py, &value)?));
            }
            Ok(match dtype {
                Dtype::I64 => Buf::I64(unsafe { PyArray1::new(py, n, false) }),
                Dtype::F64 => Buf::F64(unsafe { PyArray1::new(py, n, false) }),
                Dtype::Bool => Buf::Bool(PyArray1::zeros(py, n, false)),
                Dtype::Object => Buf::Object(unsafe { PyArray1::new(py, n, false) }),
            })
        })
        .collect::<PyResult<_>>()?;
    // Positions in the narrowest unsigned type that holds the axis's size (one tree only).
    let mut found: Vec<Buf> = if positions {
        plan.iter()
            .zip(&bufs)
            .map(|((_, axes), buf)| {
                let (Some(a), false) = (axes[0], matches!(buf, Buf::Scalar(_))) else {
                    return Buf::Skip;
                };
                let size = core.parts[0].tree.params[a].axis.size().unwrap_or(u64::MAX);
                // SAFETY: as above, every element is written before it is read.
                match size {
                    0..=0x100 => Buf::U8(unsafe { PyArray1::new(py, n, false) }),
                    0x101..=0x1_0000 => Buf::U16(unsafe { PyArray1::new(py, n, false) }),
                    0x1_0001..=0x1_0000_0000 => Buf::U32(unsafe { PyArray1::new(py, n, false) }),
                    _ => Buf::Object(unsafe { PyArray1::new(py, n, false) }),
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut parts = (core.parts.len() > 1).then(|| vec![0u32; n]);
    {
        // SAFETY: the arrays are new, contiguous and referenced nowhere else until they are
        // returned, so these are the only views of their buffers while Rust fills them.
        fn as_out<'a>(b: &'a mut Buf<'_>) -> PyResult<Out<'a>> {
            let not_contiguous =
                |_| PyValueError::new_err("internal: a new array is not contiguous");
            Ok(match b {
                Buf::I64(a) => Out::I64(unsafe { a.as_slice_mut() }.map_err(not_contiguous)?),
                Buf::F64(a) => Out::F64(unsafe { a.as_slice_mut() }.map_err(not_contiguous)?),
                Buf::Bool(a) => Out::Bool(unsafe { a.as_slice_mut() }.map_err(not_contiguous)?),
                Buf::Object(a) => Out::Object(unsafe { a.as_slice_mut() }.map_err(not_contiguous)?),
                Buf::U8(a) => Out::U8(unsafe { a.as_slice_mut() }.map_err(not_contiguous)?),
                Buf::U16(a) => Out::U16(unsafe { a.as_slice_mut() }.map_err(not_contiguous)?),
                Buf::U32(a) => Out::U32(unsafe { a.as_slice_mut() }.map_err(not_contiguous)?),
                Buf::Scalar(_) | Buf::Skip => Out::Skip,
            })
        }
        let mut outs: Vec<Out> = bufs.iter_mut().map(as_out).collect::<PyResult<_>>()?;
        let mut found_outs: Vec<Out> = found.iter_mut().map(as_out).collect::<PyResult<_>>()?;
        let parts = parts.as_deref_mut();
        detached(py, |check| {
            columns::fill_into(core, view, from, &mut outs, &mut found_outs, parts, check)
        })?;
    }
    let out = PyDict::new(py);
    for ((path, buf), (_, axes)) in core.paths().iter().zip(bufs).zip(&plan) {
        let array = match buf {
            Buf::I64(a) => a.into_any(),
            Buf::F64(a) => a.into_any(),
            Buf::Bool(a) => a.into_any(),
            Buf::U8(a) => a.into_any(),
            Buf::U16(a) => a.into_any(),
            Buf::U32(a) => a.into_any(),
            Buf::Scalar(v) => v,
            Buf::Skip => continue,
            Buf::Object(ks) => {
                // SAFETY: filled above; no other view of this private array exists.
                let ks = unsafe { ks.as_slice() }
                    .map_err(|_| PyValueError::new_err("internal: not contiguous"))?;
                object_column(py, core, cache, axes, parts.as_deref(), ks)?
            }
        };
        out.set_item(path, array)?;
    }
    let found = if positions {
        let dict = PyDict::new(py);
        for (path, buf) in core.paths().iter().zip(found) {
            let array = match buf {
                Buf::U8(a) => a.into_any(),
                Buf::U16(a) => a.into_any(),
                Buf::U32(a) => a.into_any(),
                Buf::Object(a) => a.into_any(),
                _ => continue,
            };
            dict.set_item(path, array)?;
        }
        Some(dict)
    } else {
        None
    };
    Ok((out, found))
}

/// An object array of the values at positions `ks` (per point's part), sharing the cached value
/// objects (one reference each) and copying lists/dicts.
fn object_column<'py>(
    py: Python<'py>,
    core: &CoreGrid,
    cache: &Cache,
    axes: &[Option<usize>],
    parts: Option<&[u32]>,
    ks: &[u64],
) -> PyResult<Bound<'py, PyAny>> {
    // Per part: the shared objects of the path's axis when they can be shared.
    let shared: Vec<Option<&[Py<PyAny>]>> = axes
        .iter()
        .zip(&cache.parts)
        .map(|(a, plan)| a.and_then(|a| plan.values[a].as_deref().filter(|_| !plan.mutable[a])))
        .collect();
    // numpy zero-fills new object arrays (NULL pointers), so each slot is written exactly once
    // with a new reference and nothing is released.
    let array = unsafe { PyArray1::<Py<PyAny>>::new(py, ks.len(), false) };
    let data = array.data().cast::<*mut ffi::PyObject>();
    if let (None, [Some(table)]) = (parts, shared.as_slice()) {
        // One tree, shared objects: the common case, one reference increment per value.
        for (j, &k) in ks.iter().enumerate() {
            // SAFETY: j < len; the slot is NULL and takes over the new reference.
            unsafe {
                data.add(j)
                    .write(table[k as usize].clone_ref(py).into_ptr())
            };
        }
        return Ok(array.into_any());
    }
    for (j, &k) in ks.iter().enumerate() {
        let p = parts.map_or(0, |ps| ps[j] as usize);
        let obj = match (shared[p], axes[p]) {
            (_, None) => py.None(),
            (_, Some(_)) if k == MISSING => py.None(),
            (Some(table), _) => table[k as usize].clone_ref(py),
            (None, Some(a)) => cache.parts[p]
                .value(py, &core.parts[p].tree.params[a].axis, a, k)?
                .unbind(),
        };
        // SAFETY: as above.
        unsafe { data.add(j).write(obj.into_ptr()) };
    }
    Ok(array.into_any())
}

/// Produces a grid view's points in lists of growing size; `Grid.__iter__` flattens them with
/// `itertools.chain.from_iterable`, so handing out a point is a C-level list step rather than a
/// call into Rust per point (docs in `_core.pyi`).
#[pyclass(module = "fastgrid")]
pub struct GridIter {
    core: Arc<CoreGrid>,
    cache: Arc<Cache>,
    view: View,
    next: u128,
    end: u128,
    reverse: bool,
    chunk: usize,
    state: Option<IterState>,
}

/// The iterator's private template: the namespace dicts of the last point, updated in place.
struct IterState {
    part: usize,
    local: u128,
    digits: Vec<u64>,
    template: Vec<Py<PyDict>>,
}

const FIRST_CHUNK: usize = 8;
const MAX_CHUNK: usize = 32;

impl GridIter {
    fn new(grid: &PyGrid, reverse: bool) -> GridIter {
        GridIter {
            core: grid.core.clone(),
            cache: grid.cache.clone(),
            view: grid.view.clone(),
            next: 0,
            end: grid.view.len(),
            reverse,
            chunk: FIRST_CHUNK,
            state: None,
        }
    }

    fn fresh_state(&self, py: Python<'_>, part: usize, local: u128) -> PyResult<IterState> {
        let space = &self.core.parts[part].space;
        let mut digits = vec![0; space.radices().len()];
        space.decode(local, &mut digits);
        let plan = &self.cache.parts[part];
        let template = plan
            .build(py, &self.core.parts[part].tree.params, &digits)?
            .into_iter()
            .map(Bound::unbind)
            .collect();
        Ok(IterState {
            part,
            local,
            digits,
            template,
        })
    }

    /// Whether consecutive points are consecutive indices of one unconstrained tree whose points
    /// are single flat dicts of cached, immutable values (the common case worth a dedicated loop).
    fn contiguous(&self) -> bool {
        !self.reverse
            && self.core.parts.len() == 1
            && self.core.parts[0].space.is_product()
            && self.cache.parts[0].simple
            && self.cache.parts[0].values.iter().all(Option::is_some)
            && matches!(self.view.as_range(), Some((_, 1)))
    }

    /// Appends up to `n` points at slots `1..` of `list` after `next_point` set the template: an
    /// odometer step, one `PyDict_SetItem` per changed axis, one `PyDict_Copy` per point.
    fn fill_contiguous(
        &mut self,
        py: Python<'_>,
        list: &Bound<'_, PyAny>,
        n: usize,
    ) -> PyResult<usize> {
        let n = (n as u128).min(self.end - self.next) as usize;
        let plan = &self.cache.parts[0];
        let radices = self.core.parts[0].space.radices();
        let Some(st) = self.state.as_mut() else {
            return Ok(0);
        };
        let tmpl = st.template[0].as_ptr();
        let keys: Vec<*mut ffi::PyObject> = plan.leaf.iter().map(|(_, k)| k.as_ptr()).collect();
        let values: Vec<&[Py<PyAny>]> = plan
            .values
            .iter()
            .map(|v| v.as_deref().unwrap_or(&[]))
            .collect();
        let last = radices.len().wrapping_sub(1);
        for i in 0..n {
            let first = increment(&mut st.digits, radices).unwrap_or(0);
            for a in first..=last {
                let value = values[a][st.digits[a] as usize].as_ptr();
                // SAFETY: the template, keys and values are live objects owned by this iterator and
                // the plan; PyDict_SetItem takes its own references.
                if unsafe { ffi::PyDict_SetItem(tmpl, keys[a], value) } < 0 {
                    return Err(PyErr::fetch(py));
                }
            }
            // SAFETY: PyDict_Copy returns a new reference or NULL with an exception set; the list
            // slot `i + 1` is empty and takes over the reference.
            let copy = unsafe { ffi::PyDict_Copy(tmpl) };
            if copy.is_null() {
                return Err(PyErr::fetch(py));
            }
            unsafe { list_set_item(list, i + 1, copy) };
        }
        st.local += n as u128;
        self.next += n as u128;
        Ok(n)
    }

    fn next_point<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        if self.next >= self.end {
            return Ok(None);
        }
        let pos = if self.reverse {
            self.end - 1 - self.next
        } else {
            self.next
        };
        self.next += 1;
        let (part, local) = self.core.locate(self.view.map(pos));
        let space = &self.core.parts[part].space;
        let plan = &self.cache.parts[part];
        let params = &self.core.parts[part].tree.params;
        let st = match self.state.as_mut() {
            Some(st) if st.part == part => {
                let set = |st: &IterState, a: usize, d: u64| -> PyResult<()> {
                    if plan.mutable[a] {
                        return Ok(());
                    }
                    plan.set_leaf(py, &st.template, &params[a].axis, a, d)
                };
                if space.is_product() && st.local.checked_add(1) == Some(local) {
                    if let Some(first) = increment(&mut st.digits, space.radices()) {
                        for a in first..st.digits.len() {
                            set(st, a, st.digits[a])?;
                        }
                    }
                } else if st.local != local {
                    let mut fresh = vec![0; st.digits.len()];
                    space.decode(local, &mut fresh);
                    for (a, &d) in fresh.iter().enumerate() {
                        if d != st.digits[a] {
                            set(st, a, d)?;
                        }
                    }
                    st.digits = fresh;
                }
                st.local = local;
                st
            }
            _ => self.state.insert(self.fresh_state(py, part, local)?),
        };
        // Hand out copies, never the template: the caller may mutate what it receives.
        if plan.simple {
            return copy_dict(py, &st.template[0]).map(Some);
        }
        plan.point_from(py, &st.template, params, &st.digits, Some(&st.digits))
            .map(Some)
    }
}

#[pymethods]
impl GridIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// The next list of points (growing from 16 to 1024 per list).
    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyList>>> {
        let remaining = self.end - self.next;
        if remaining == 0 {
            return Ok(None);
        }
        let n = (self.chunk as u128).min(remaining) as usize;
        self.chunk = (self.chunk * 4).min(MAX_CHUNK);
        // SAFETY: a new list of `n` empty slots; each slot is filled once with a reference the
        // list takes over (`into_ptr`), and a list with unfilled (NULL) slots is still safe to free
        // if an error returns early.
        let list =
            unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyList_New(n as ffi::Py_ssize_t))? };
        let mut i = 0;
        if self.contiguous() {
            // The first point settles the template; the rest of the chunk takes the fast loop.
            if let Some(point) = self.next_point(py)? {
                unsafe { list_set_item(&list, 0, point.into_ptr()) };
                i = 1;
                i += self.fill_contiguous(py, &list, n - 1)?;
            }
        }
        while i < n {
            let Some(point) = self.next_point(py)? else {
                break;
            };
            unsafe { list_set_item(&list, i, point.into_ptr()) };
            i += 1;
        }
        Ok(Some(list.cast_into::<PyList>()?))
    }
}

/// Fills slot `i` of a new list with `item`, taking over its reference.
///
/// # Safety
/// `list` is a list from `PyList_New` whose slot `i` is in range and still empty (NULL), and `item`
/// is a new, non-NULL reference.
#[inline]
unsafe fn list_set_item(list: &Bound<'_, PyAny>, i: usize, item: *mut ffi::PyObject) {
    // The stable ABI (the `abi3` feature, issue 14) has no `PyList_SET_ITEM` macro; its function
    // form cannot fail here (the index is in range) and its Py_XDECREF of the empty slot is a no-op.
    #[cfg(not(feature = "abi3"))]
    ffi::PyList_SET_ITEM(list.as_ptr(), i as ffi::Py_ssize_t, item);
    #[cfg(feature = "abi3")]
    ffi::PyList_SetItem(list.as_ptr(), i as ffi::Py_ssize_t, item);
}

/// Iterates a grid view's columns in chunks (docs in `_core.pyi`).
#[pyclass(frozen, module = "fastgrid")]
pub struct ColumnsIter {
    core: Arc<CoreGrid>,
    cache: Arc<Cache>,
    view: View,
    /// The next position; a lock because the class is frozen and may be shared between threads.
    state: Mutex<u128>,
    chunk: u128,
}

#[pymethods]
impl ColumnsIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let (from, to) = {
            let mut next = self
                .state
                .lock()
                .map_err(|_| PyValueError::new_err("columns iterator poisoned by a panic"))?;
            let from = *next;
            if from >= self.view.len() {
                return Ok(None);
            }
            let to = from.saturating_add(self.chunk).min(self.view.len());
            *next = to;
            (from, to)
        };
        columns_dict(
            py,
            &self.core,
            &self.cache,
            &self.view,
            from,
            to,
            false,
            false,
        )
        .map(|(values, _)| Some(values))
    }
}

/// Validates a parameters tree (continuous float ranges allowed) and describes its parameters.
#[pyfunction]
#[pyo3(signature = (tree, /))]
fn parse_parameters<'py>(
    py: Python<'py>,
    tree: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyList>> {
    let root = to_value(tree, "")?;
    if matches!(root, Value::List(_)) {
        return Err(Error::spec(
            "",
            "parse_parameters takes one tree (a dict), not a list of trees",
        )
        .into());
    }
    let trees = parse_root(&root)?;
    let list = PyList::empty(py);
    for p in &trees[0].params {
        list.append(describe(py, p)?)?;
    }
    Ok(list)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyGrid>()?;
    m.add_class::<GridIter>()?;
    m.add_class::<ColumnsIter>()?;
    m.add_function(wrap_pyfunction!(parse_parameters, m)?)?;
    let py = m.py();
    py.import("collections.abc")?
        .getattr("Sequence")?
        .call_method1("register", (py.get_type::<PyGrid>(),))?;
    Ok(())
}
