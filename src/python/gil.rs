//! Core work with the GIL released, interruptible by Ctrl-C.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use pyo3::prelude::*;

use crate::error::{Error, Result as CoreResult};

/// The least time between two signal checks: taking the GIL back costs more than the work a
/// `check` call usually sits between, and another thread may hold it for a switch interval.
const SIGNAL_CHECK_GAP: Duration = Duration::from_millis(20);

/// Runs `f` with the GIL released. `f` gets a `check` to call from time to time; at most every
/// `SIGNAL_CHECK_GAP` it takes the GIL and runs the signal handlers, and a raised exception
/// (KeyboardInterrupt) stops `f` and is what this returns.
pub fn detached<T: Send>(
    py: Python<'_>,
    f: impl FnOnce(&dyn Fn() -> CoreResult<()>) -> CoreResult<T> + Send,
) -> PyResult<T> {
    let pending: Mutex<Option<PyErr>> = Mutex::new(None);
    let last: Mutex<Instant> = Mutex::new(Instant::now());
    let check = || {
        {
            let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
            if last.elapsed() < SIGNAL_CHECK_GAP {
                return Ok(());
            }
            *last = Instant::now();
        }
        Python::attach(|py| py.check_signals()).map_err(|e| {
            if let Ok(mut p) = pending.lock() {
                *p = Some(e);
            }
            Error::Invalid("interrupted".into())
        })
    };
    let result = py.detach(|| f(&check));
    match result {
        Ok(v) => Ok(v),
        Err(e) => match pending.lock().ok().and_then(|mut p| p.take()) {
            Some(interrupt) => Err(interrupt),
            None => Err(e.into()),
        },
    }
}
