//! `ResultIndex`: the binding of `crate::index::Index`. Converts types, releases the GIL for
//! scans and waits, checks signals during scans and after every wait slice, and caches one
//! `pathlib.Path` per entry (building a Path costs ~2 µs, more than the whole lookup).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use super::gil::detached;
use crate::error::Error;
use crate::index::pattern::KEY_SEP;
use crate::index::{Backend, Entry, Index, Options, Order, OrderBy};

/// Interval of the polling fallback when native events are unavailable (as watchfiles).
const FALLBACK_POLL: Duration = Duration::from_millis(300);
/// How long a wait sleeps between signal and stop-event checks. Changes wake it at once.
const WAIT_SLICE: Duration = Duration::from_millis(50);

type PyEntry = Arc<Entry<Py<PyAny>>>;

// Holds Python objects only inside entry caches: `pathlib.Path`s, which reference nothing that
// could lead back here, so no reference cycle can form and no `__traverse__` is needed.
#[pyclass(frozen, subclass, module = "fastgrid._core", name = "ResultIndex")]
pub struct ResultIndex {
    inner: Index<Py<PyAny>>,
    /// Key-field names, interned once; every lookup reads its kwargs by these.
    fields: Vec<Py<PyString>>,
}

fn path_of(py: Python<'_>, dir: &Path, entry: &PyEntry) -> PyResult<Py<PyAny>> {
    if let Some(p) = entry.cache.get() {
        return Ok(p.clone_ref(py));
    }
    let p = dir.join(&*entry.name).into_pyobject(py)?.unbind();
    // Another thread may have cached an equal Path first; either is fine.
    let _ = entry.cache.set(p.clone_ref(py));
    Ok(p)
}

fn positive_seconds(name: &str, value: f64) -> PyResult<Duration> {
    if value.is_finite() && value >= 0.0 {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(PyValueError::new_err(format!(
            "{name} must be a finite number of seconds >= 0, got {value}"
        )))
    }
}

impl ResultIndex {
    fn field_names(&self, py: Python<'_>) -> String {
        let names: Vec<String> = self.fields.iter().map(|f| f.bind(py).to_string()).collect();
        names.join(", ")
    }

    /// The joined key for `fields`; every key field must be given, as a str, and nothing else.
    fn key(
        &self,
        py: Python<'_>,
        fields: Option<&Bound<'_, PyDict>>,
        what: &str,
    ) -> PyResult<String> {
        let mut key = String::with_capacity(32);
        let given = fields.map_or(0, |f| f.len());
        for (i, name) in self.fields.iter().enumerate() {
            let value = match fields {
                Some(f) => f.get_item(name.bind(py))?,
                None => None,
            };
            let Some(value) = value else {
                return Err(PyTypeError::new_err(format!(
                    "{what}() missing key field {:?} (the key fields are: {})",
                    name.bind(py).to_string(),
                    self.field_names(py)
                )));
            };
            let Ok(text) = value.cast::<PyString>() else {
                return Err(PyTypeError::new_err(format!(
                    "{what}(): key field {:?} must be a str, got {}",
                    name.bind(py).to_string(),
                    value.get_type().name()?
                )));
            };
            if i > 0 {
                key.push(KEY_SEP);
            }
            key.push_str(text.to_str()?);
        }
        if given != self.fields.len() {
            let mut unknown = Vec::new();
            if let Some(f) = fields {
                for k in f.keys() {
                    if !self
                        .fields
                        .iter()
                        .any(|n| n.bind(py).as_any().eq(&k).unwrap_or(false))
                    {
                        unknown.push(k.to_string());
                    }
                }
            }
            return Err(PyTypeError::new_err(format!(
                "{what}() got unknown field(s) {} (the key fields are: {})",
                unknown.join(", "),
                self.field_names(py)
            )));
        }
        Ok(key)
    }

    fn key_tuple<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.inner.pattern().split_key(key))
    }

    /// What `newer_than` means as an order value (and path, for ties).
    fn threshold(&self, value: &Bound<'_, PyAny>) -> PyResult<(Order, Option<String>)> {
        let by_mtime = self.inner.pattern().order_by() == OrderBy::Mtime;
        if let Ok(text) = value.cast::<PyString>() {
            if !by_mtime {
                return Ok((Order::Text(text.to_str()?.into()), None));
            }
        } else if value.is_instance_of::<PyFloat>() || value.is_instance_of::<PyInt>() {
            if by_mtime {
                let secs: f64 = value.extract()?;
                return Ok((Order::Mtime((secs * 1e9) as i128), None));
            }
        } else if value.hasattr(intern!(value.py(), "__fspath__"))? {
            let path: PathBuf = value.extract()?;
            let path = std::path::absolute(&path).map_err(|e| Error::io(&path, e))?;
            let order = self.inner.order_of(&path)?;
            return Ok((order, self.inner.layout().rel(&path).map(str::to_owned)));
        }
        Err(PyTypeError::new_err(if by_mtime {
            "newer_than must be None, an os.PathLike or a timestamp in seconds (order_by='mtime')"
        } else {
            "newer_than must be None, an os.PathLike or a str compared with the order_by field"
        }))
    }
}

#[pymethods]
impl ResultIndex {
    #[new]
    #[pyo3(signature = (directory, *, pattern = "{symbol}_{timeframe}_{stamp}.json", order_by = "stamp", watch = true, recursive = false, poll_interval = None))]
    fn new(
        py: Python<'_>,
        directory: PathBuf,
        pattern: &str,
        order_by: &str,
        watch: bool,
        recursive: bool,
        poll_interval: Option<f64>,
    ) -> PyResult<Self> {
        let backend = match (watch, poll_interval) {
            (false, Some(_)) => {
                return Err(PyValueError::new_err(
                    "poll_interval needs watch=True (with watch=False nothing is watched)",
                ))
            }
            (false, None) => Backend::Off,
            (true, Some(s)) if s > 0.0 => Backend::Poll(positive_seconds("poll_interval", s)?),
            (true, Some(s)) => {
                return Err(PyValueError::new_err(format!(
                    "poll_interval must be a positive number of seconds, got {s}"
                )))
            }
            (true, None) => Backend::Native {
                fallback: FALLBACK_POLL,
            },
        };
        let opts = Options {
            dir: directory,
            pattern: pattern.to_owned(),
            order_by: order_by.to_owned(),
            recursive,
            backend,
        };
        let inner = detached(py, |check| Index::open(opts, check))?;
        let fields = inner
            .pattern()
            .key_fields()
            .map(|f| PyString::intern(py, f).unbind())
            .collect();
        Ok(ResultIndex { inner, fields })
    }

    /// The newest result for the key given by `fields`, or None.
    #[pyo3(signature = (**fields))]
    fn latest(
        &self,
        py: Python<'_>,
        fields: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Option<Py<PyAny>>> {
        let key = self.key(py, fields, "latest")?;
        match self.inner.latest(&key)? {
            Some(entry) => Ok(Some(path_of(py, self.inner.dir(), &entry)?)),
            None => Ok(None),
        }
    }

    #[pyo3(signature = (**fields))]
    fn history(
        &self,
        py: Python<'_>,
        fields: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Vec<Py<PyAny>>> {
        let key = self.key(py, fields, "history")?;
        let entries: Vec<PyEntry> = self.inner.read()?.history(&key).cloned().collect();
        entries
            .iter()
            .map(|e| path_of(py, self.inner.dir(), e))
            .collect()
    }

    fn keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let mut keys: Vec<Arc<str>> = self
            .inner
            .read()?
            .newest()
            .map(|(k, _)| Arc::clone(k))
            .collect();
        keys.sort_unstable();
        let tuples = keys
            .iter()
            .map(|k| self.key_tuple(py, k))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, tuples)
    }

    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let mut newest: Vec<(Arc<str>, PyEntry)> = self
            .inner
            .read()?
            .newest()
            .map(|(k, e)| (Arc::clone(k), Arc::clone(e)))
            .collect();
        newest.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let out = PyDict::new(py);
        for (k, e) in &newest {
            out.set_item(self.key_tuple(py, k)?, path_of(py, self.inner.dir(), e)?)?;
        }
        Ok(out)
    }

    fn __len__(&self) -> PyResult<usize> {
        Ok(self.inner.read()?.key_count())
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(self.keys(py)?.into_any().try_iter()?.into_any())
    }

    fn __contains__(&self, py: Python<'_>, item: &Bound<'_, PyAny>) -> PyResult<bool> {
        if let Ok(t) = item.cast::<PyTuple>() {
            if t.len() != self.fields.len() {
                return Ok(false);
            }
            let mut parts = Vec::with_capacity(t.len());
            for v in t.iter() {
                match v.cast::<PyString>() {
                    Ok(s) => parts.push(s.to_str()?.to_owned()),
                    Err(_) => return Ok(false),
                }
            }
            let key = crate::index::Pattern::join_key(parts.iter().map(String::as_str));
            return Ok(self.inner.read()?.contains_key(&key));
        }
        if let Ok(d) = item.cast::<PyDict>() {
            let key = self.key(py, Some(d), "__contains__")?;
            return Ok(self.inner.read()?.contains_key(&key));
        }
        if item.hasattr(intern!(py, "__fspath__"))? {
            let path: PathBuf = item.extract()?;
            let path = std::path::absolute(&path).map_err(|e| Error::io(&path, e))?;
            let Some(rel) = self.inner.layout().rel(&path) else {
                return Ok(false);
            };
            return Ok(self.inner.read()?.get(rel).is_some());
        }
        Err(PyTypeError::new_err(format!(
            "'in <ResultIndex>' takes a key tuple, a dict of key fields or an os.PathLike, not {}",
            item.get_type().name()?
        )))
    }

    /// Indexes `path` now; returns whether the index changed.
    fn record(&self, path: PathBuf) -> PyResult<bool> {
        Ok(self.inner.record(&path)?)
    }

    /// Re-reads the directory; returns whether the index changed.
    fn rescan(&self, py: Python<'_>) -> PyResult<bool> {
        detached(py, |check| self.inner.rescan(check))
    }

    #[pyo3(signature = (*, newer_than = None, timeout, stop_event = None, **fields))]
    fn wait_for(
        &self,
        py: Python<'_>,
        newer_than: Option<&Bound<'_, PyAny>>,
        timeout: Option<f64>,
        stop_event: Option<&Bound<'_, PyAny>>,
        fields: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Option<Py<PyAny>>> {
        let key = self.key(py, fields, "wait_for")?;
        let threshold = match newer_than {
            Some(v) if !v.is_none() => Some(self.threshold(v)?),
            _ => None,
        };
        let deadline = match timeout {
            Some(t) => Some(Instant::now() + positive_seconds("timeout", t)?),
            None => None,
        };
        let stop_event = stop_event.filter(|e| !e.is_none());
        loop {
            // Read the generation before looking, so a change in between ends the next wait.
            let seen = self.inner.generation()?;
            if let Some(entry) = self.inner.latest(&key)? {
                let newer = match &threshold {
                    None => true,
                    Some((order, path)) => entry.is_newer_than(order, path.as_deref()),
                };
                if newer {
                    return Ok(Some(path_of(py, self.inner.dir(), &entry)?));
                }
            }
            let slice = match deadline {
                None => WAIT_SLICE,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        let described: Vec<String> = self
                            .inner
                            .pattern()
                            .key_fields()
                            .zip(key.split(KEY_SEP))
                            .map(|(f, v)| format!("{f}={v:?}"))
                            .collect();
                        let after = match newer_than {
                            Some(v) if !v.is_none() => format!(" newer than {}", v.repr()?),
                            _ => String::new(),
                        };
                        return Err(Error::Timeout(format!(
                            "no result for {}{after} within {}s",
                            described.join(", "),
                            timeout.unwrap_or_default()
                        ))
                        .into());
                    }
                    left.min(WAIT_SLICE)
                }
            };
            py.detach(|| self.inner.wait_changed(seen, slice))?;
            py.check_signals()?;
            if let Some(event) = stop_event {
                if event.call_method0(intern!(py, "is_set"))?.is_truthy()? {
                    return Ok(None);
                }
            }
        }
    }

    /// Blocks until the generation differs from `since`; returns the generation then (equal to
    /// `since` after a timeout or a stop).
    #[pyo3(signature = (since, *, timeout, stop_event = None))]
    fn wait_changed(
        &self,
        py: Python<'_>,
        since: u64,
        timeout: Option<f64>,
        stop_event: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let deadline = match timeout {
            Some(t) => Some(Instant::now() + positive_seconds("timeout", t)?),
            None => None,
        };
        let stop_event = stop_event.filter(|e| !e.is_none());
        loop {
            let slice = match deadline {
                None => WAIT_SLICE,
                Some(d) => d.saturating_duration_since(Instant::now()).min(WAIT_SLICE),
            };
            let now = py.detach(|| self.inner.wait_changed(since, slice))?;
            py.check_signals()?;
            if now != since {
                return Ok(now);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(now);
            }
            if let Some(event) = stop_event {
                if event.call_method0(intern!(py, "is_set"))?.is_truthy()? {
                    return Ok(now);
                }
            }
        }
    }

    fn close(&self, py: Python<'_>) {
        py.detach(|| self.inner.close());
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> bool {
        self.close(py);
        false
    }

    #[getter]
    fn directory<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.inner.dir().into_pyobject(py)
    }

    #[getter]
    fn pattern(&self) -> &str {
        self.inner.pattern().text()
    }

    #[getter]
    fn order_by(&self) -> &str {
        self.inner.pattern().order_by_name()
    }

    #[getter]
    fn fields<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.fields.iter().map(|f| f.bind(py)))
    }

    #[getter]
    fn recursive(&self) -> bool {
        self.inner.layout().recursive
    }

    #[getter]
    fn backend(&self) -> String {
        self.inner.backend()
    }

    #[getter]
    fn generation(&self) -> PyResult<u64> {
        Ok(self.inner.generation()?)
    }

    #[getter]
    fn file_count(&self) -> PyResult<usize> {
        Ok(self.inner.read()?.file_count())
    }

    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    #[getter]
    fn last_error(&self) -> Option<String> {
        self.inner.last_error()
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let py = slf.py();
        let this = slf.get();
        let r = |s: &str| -> PyResult<String> { Ok(PyString::new(py, s).repr()?.to_string()) };
        let head = format!(
            "{}({}, pattern={}, order_by={}, backend={}",
            slf.get_type().name()?,
            r(&this.inner.dir().display().to_string())?,
            r(this.inner.pattern().text())?,
            r(this.inner.pattern().order_by_name())?,
            r(&this.inner.backend())?
        );
        Ok(match this.inner.read() {
            Ok(map) => format!(
                "{head}, keys={}, files={})",
                map.key_count(),
                map.file_count()
            ),
            Err(_) => format!("{head}, closed)"),
        })
    }

    /// Test hook: deliver inotify's queue-overflow event (a path-less Rescan flag).
    fn _simulate_overflow(&self) {
        self.inner.inject(Ok(
            notify::Event::new(notify::EventKind::Other).set_flag(notify::event::Flag::Rescan)
        ));
    }

    /// Test hook: while on, path events are discarded as a full kernel queue would.
    fn _drop_events(&self, drop: bool) {
        self.inner.set_drop_events(drop);
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ResultIndex>()
}
