//! The indexed results directory (issue 3): the newest result file per key in O(1), kept
//! current from filesystem events by a worker thread that never touches Python.
//!
//! Data flow: notify's callback (`watch`) pushes paths or a rescan request into `Pending` under
//! one lock and wakes the worker; the worker takes the whole batch in that same single lock
//! acquisition (copy-and-clear cannot lose events in between), stats each path outside every
//! lock, then applies the results to the `ResultMap` under one write lock and wakes waiters.
//! Applying an event means "look at the path now", never "trust the event kind", so events are
//! idempotent, may be coalesced, and a rescan racing with events converges to the truth.

pub mod map;
pub mod pattern;
pub mod scan;
pub mod watch;

use std::collections::HashSet;
use std::mem;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{Error, Result};
pub use map::{Entry, Found, Order, Rank, ResultMap};
pub use pattern::{OrderBy, Pattern};
pub use scan::{Layout, Probe};
pub use watch::{Backend, Signal};

/// How to open an index.
#[derive(Debug, Clone)]
pub struct Options {
    pub dir: PathBuf,
    pub pattern: String,
    pub order_by: String,
    pub recursive: bool,
    pub backend: Backend,
}

#[derive(Debug, Default)]
struct Pending {
    paths: Vec<PathBuf>,
    rescan: bool,
    stop: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; if something did, the data is still consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Shared<X> {
    layout: Layout,
    map: RwLock<ResultMap<X>>,
    pending: Mutex<Pending>,
    pending_cv: Condvar,
    changed: Mutex<()>,
    changed_cv: Condvar,
    closed: AtomicBool,
    /// Test hook: discard path events as a full kernel queue would.
    drop_events: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl<X: Send + Sync + 'static> Shared<X> {
    fn read(&self) -> RwLockReadGuard<'_, ResultMap<X>> {
        self.map.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, ResultMap<X>> {
        self.map.write().unwrap_or_else(|e| e.into_inner())
    }

    fn on_signal(&self, signal: Signal) {
        let mut p = lock(&self.pending);
        match signal {
            Signal::Nothing => return,
            Signal::Paths(_) if self.drop_events.load(Ordering::Relaxed) => return,
            Signal::Paths(paths) => p.paths.extend(paths),
            Signal::Rescan(error) => {
                p.rescan = true;
                if let Some(error) = error {
                    *lock(&self.last_error) = Some(error);
                }
            }
        }
        drop(p);
        self.pending_cv.notify_one();
    }

    fn notify_changed(&self) {
        let _g = lock(&self.changed);
        self.changed_cv.notify_all();
    }

    fn rescan(&self) -> Result<bool> {
        let found = match self.layout.scan() {
            Ok(found) => found,
            // The directory itself went away: it holds no results.
            Err(Error::Io { ref source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        let changed = self.write().replace_all(found);
        if changed {
            self.notify_changed();
        }
        Ok(changed)
    }

    fn apply(&self, mut paths: Vec<PathBuf>) -> Result<()> {
        let mut seen = HashSet::with_capacity(paths.len());
        paths.retain(|p| seen.insert(p.clone()));
        let mut probes = Vec::with_capacity(paths.len());
        let mut rescan = false;
        for path in paths {
            match self.layout.probe(&path) {
                Probe::Ignored => {}
                // The polling backend reports the directory's own mtime on every change in it;
                // only its disappearance (deleted, moved away) matters.
                Probe::Root => rescan |= !self.layout.dir.is_dir(),
                Probe::Dir => {
                    // Files created before notify added a watch on the new directory.
                    probes.extend(self.layout.scan_subdir(&path)?.into_iter().map(Probe::File));
                }
                probe => probes.push(probe),
            }
        }
        if rescan {
            self.rescan()?;
        }
        if probes.is_empty() {
            return Ok(());
        }
        let mut changed = false;
        {
            let mut map = self.write();
            for probe in probes {
                match probe {
                    Probe::File(found) => changed |= map.upsert(found),
                    Probe::Gone(name) => {
                        changed |= map.remove(&name);
                        if self.layout.recursive {
                            changed |= map.remove_under(&name) > 0;
                        }
                    }
                    _ => {}
                }
            }
        }
        if changed {
            self.notify_changed();
        }
        Ok(())
    }

    fn run_worker(self: Arc<Self>) {
        loop {
            let batch = {
                let mut p = lock(&self.pending);
                loop {
                    if p.stop {
                        return;
                    }
                    if p.rescan || !p.paths.is_empty() {
                        break mem::take(&mut *p);
                    }
                    p = self.pending_cv.wait(p).unwrap_or_else(|e| e.into_inner());
                }
            };
            let mut result = Ok(());
            if batch.rescan {
                result = self.rescan().map(|_| ());
            }
            if result.is_ok() {
                result = self.apply(batch.paths);
            }
            if let Err(e) = result {
                // Keep the index as it is and try again on the next event; the error is exposed.
                *lock(&self.last_error) = Some(e.to_string());
                lock(&self.pending).rescan = true;
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// An open index. `X` is the type callers cache per entry (see `Entry::cache`).
pub struct Index<X: Send + Sync + 'static> {
    shared: Arc<Shared<X>>,
    watcher: Mutex<Option<watch::BoxWatcher>>,
    worker: Mutex<Option<JoinHandle<()>>>,
    backend: String,
}

impl<X: Send + Sync + 'static> Index<X> {
    /// Starts the watcher, then scans, then merges, so a file created during start-up is seen
    /// either by the scan or by an event applied after it.
    pub fn open(opts: Options) -> Result<Self> {
        let pattern = Pattern::new(&opts.pattern, &opts.order_by)?;
        if pattern.spans_dirs() && !opts.recursive {
            return Err(Error::Pattern {
                pattern: opts.pattern,
                message: "contains '/', which needs recursive=True".into(),
            });
        }
        let dir = std::path::absolute(&opts.dir).map_err(|e| Error::io(&opts.dir, e))?;
        // Fails early with the OS's own reason: missing, not a directory, no permission.
        std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        let shared = Arc::new(Shared {
            layout: Layout {
                dir,
                pattern,
                recursive: opts.recursive,
            },
            map: RwLock::new(ResultMap::new()),
            pending: Mutex::new(Pending::default()),
            pending_cv: Condvar::new(),
            changed: Mutex::new(()),
            changed_cv: Condvar::new(),
            closed: AtomicBool::new(false),
            drop_events: AtomicBool::new(false),
            last_error: Mutex::new(None),
        });
        let make_handler = || -> watch::Handler {
            let shared = Arc::clone(&shared);
            Box::new(move |res| shared.on_signal(Signal::from_event(res)))
        };
        let started = watch::start(
            &shared.layout.dir,
            opts.recursive,
            opts.backend,
            &make_handler,
        )?;
        let found = shared.layout.scan()?;
        shared.write().replace_all(found);
        let worker = match started.watcher {
            None => None,
            Some(_) => {
                let s = Arc::clone(&shared);
                Some(
                    std::thread::Builder::new()
                        .name("fastgrid-index".into())
                        .spawn(move || s.run_worker())
                        .map_err(|e| Error::io(&shared.layout.dir, e))?,
                )
            }
        };
        Ok(Index {
            shared,
            watcher: Mutex::new(started.watcher),
            worker: Mutex::new(worker),
            backend: started.name,
        })
    }

    fn check_open(&self) -> Result<()> {
        if self.shared.closed.load(Ordering::Acquire) {
            Err(Error::Closed(format!(
                "the results index of {} is closed",
                self.shared.layout.dir.display()
            )))
        } else {
            Ok(())
        }
    }

    /// Read access to the map; every lookup goes through here.
    pub fn read(&self) -> Result<RwLockReadGuard<'_, ResultMap<X>>> {
        self.check_open()?;
        Ok(self.shared.read())
    }

    pub fn latest(&self, key: &str) -> Result<Option<Arc<Entry<X>>>> {
        Ok(self.read()?.latest(key).cloned())
    }

    pub fn layout(&self) -> &Layout {
        &self.shared.layout
    }

    pub fn pattern(&self) -> &Pattern {
        &self.shared.layout.pattern
    }

    pub fn dir(&self) -> &Path {
        &self.shared.layout.dir
    }

    pub fn backend(&self) -> &str {
        &self.backend
    }

    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// The last watcher or rescan error the worker met (it keeps running and retries).
    pub fn last_error(&self) -> Option<String> {
        lock(&self.shared.last_error).clone()
    }

    /// Indexes a file the caller knows about now; the later event for it changes nothing.
    /// Returns whether the index changed.
    pub fn record(&self, path: &Path) -> Result<bool> {
        self.check_open()?;
        let path = std::path::absolute(path).map_err(|e| Error::io(path, e))?;
        let layout = &self.shared.layout;
        match layout.probe(&path) {
            Probe::File(found) => {
                let changed = self.shared.write().upsert(found);
                if changed {
                    self.shared.notify_changed();
                }
                Ok(changed)
            }
            Probe::Gone(_) => Err(Error::io(
                path,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            )),
            Probe::Dir | Probe::Root => Err(Error::Invalid(format!(
                "{} is a directory, not a result file",
                path.display()
            ))),
            Probe::Ignored => Err(Error::Invalid(format!(
                "{} is not a result file of this index: its name must match pattern {:?} {} {}",
                path.display(),
                layout.pattern.text(),
                if layout.recursive {
                    "below"
                } else {
                    "directly in"
                },
                layout.dir.display(),
            ))),
        }
    }

    /// The order value of `path` (indexed or not, present or not when ordering by a field),
    /// for "newer than this file" questions.
    pub fn order_of(&self, path: &Path) -> Result<Order> {
        self.check_open()?;
        let path = std::path::absolute(path).map_err(|e| Error::io(path, e))?;
        if let Some(rel) = self.shared.layout.rel(&path) {
            if let Some(e) = self.shared.read().get(rel) {
                return Ok(e.order());
            }
        }
        self.shared.layout.order_of(&path)
    }

    /// Re-reads the directory now (in the calling thread). Returns whether anything changed.
    pub fn rescan(&self) -> Result<bool> {
        self.check_open()?;
        self.shared.rescan()
    }

    pub fn generation(&self) -> Result<u64> {
        Ok(self.read()?.generation())
    }

    /// Blocks until the generation differs from `seen`, the index closes, or `timeout` passes;
    /// returns the generation then. Wakes on change (condition variable), not by polling.
    pub fn wait_changed(&self, seen: u64, timeout: Duration) -> Result<u64> {
        self.check_open()?;
        let guard = lock(&self.shared.changed);
        let (guard, _) = self
            .shared
            .changed_cv
            .wait_timeout_while(guard, timeout, |_| {
                !self.shared.closed.load(Ordering::Acquire)
                    && self.shared.read().generation() == seen
            })
            .unwrap_or_else(|e| e.into_inner());
        drop(guard);
        self.generation()
    }

    /// Test hook: feed the handler exactly what notify would.
    pub fn inject(&self, res: notify::Result<notify::Event>) {
        self.shared.on_signal(Signal::from_event(res));
    }

    /// Test hook: while set, path events are discarded (a full kernel queue).
    pub fn set_drop_events(&self, drop: bool) {
        self.shared.drop_events.store(drop, Ordering::Relaxed);
    }

    /// Stops the watcher and the worker; later calls fail with `Error::Closed`. Idempotent.
    pub fn close(&self) {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        // Dropping the watcher stops notify's thread, so no callback runs after this.
        drop(lock(&self.watcher).take());
        lock(&self.shared.pending).stop = true;
        self.shared.pending_cv.notify_all();
        if let Some(worker) = lock(&self.worker).take() {
            // The worker holds no lock across its waits, so it reaches the stop flag promptly.
            let _ = worker.join();
        }
        self.shared.notify_changed();
    }
}

impl<X: Send + Sync + 'static> Drop for Index<X> {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::time::Instant;

    fn open(dir: &Path, backend: Backend) -> Index<()> {
        Index::open(Options {
            dir: dir.to_path_buf(),
            pattern: "{symbol}_{timeframe}_{stamp}.json".into(),
            order_by: "stamp".into(),
            recursive: false,
            backend,
        })
        .unwrap()
    }

    fn native() -> Backend {
        Backend::Native {
            fallback: Duration::from_millis(50),
        }
    }

    fn latest_name(idx: &Index<()>, key: &str) -> Option<String> {
        idx.latest(key).unwrap().map(|e| e.name.to_string())
    }

    /// Waits (bounded) until the newest file for `key` is `want`.
    fn settle(idx: &Index<()>, key: &str, want: Option<&str>) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let seen = idx.generation().unwrap();
            if latest_name(idx, key).as_deref() == want {
                return;
            }
            assert!(Instant::now() < deadline, "{key}: never became {want:?}");
            idx.wait_changed(seen, Duration::from_millis(200)).unwrap();
        }
    }

    #[test]
    fn follows_creates_renames_and_deletes() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        fs::write(d.join("A_1h_1.json"), b"{}").unwrap();
        let idx = open(d, native());
        let k = "A\u{0}1h";
        assert_eq!(latest_name(&idx, k).as_deref(), Some("A_1h_1.json"));
        fs::write(d.join(".A_1h_2.json.tmp"), b"{}").unwrap();
        fs::rename(d.join(".A_1h_2.json.tmp"), d.join("A_1h_2.json")).unwrap();
        settle(&idx, k, Some("A_1h_2.json"));
        fs::remove_file(d.join("A_1h_2.json")).unwrap();
        settle(&idx, k, Some("A_1h_1.json"));
        fs::rename(d.join("A_1h_1.json"), d.join("moved.txt")).unwrap();
        settle(&idx, k, None);
        assert_eq!(idx.read().unwrap().file_count(), 0);
    }

    #[test]
    fn overflow_rescan_recovers_lost_events() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let idx = open(d, native());
        idx.set_drop_events(true);
        fs::write(d.join("A_1h_5.json"), b"{}").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(latest_name(&idx, "A\u{0}1h"), None);
        idx.set_drop_events(false);
        idx.inject(Ok(
            notify::Event::new(notify::EventKind::Other).set_flag(notify::event::Flag::Rescan)
        ));
        settle(&idx, "A\u{0}1h", Some("A_1h_5.json"));
    }

    #[test]
    fn record_is_immediate_and_idempotent() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let idx = open(d, Backend::Off);
        fs::write(d.join("A_1h_1.json"), b"{}").unwrap();
        assert!(idx.record(&d.join("A_1h_1.json")).unwrap());
        assert!(!idx.record(&d.join("A_1h_1.json")).unwrap());
        assert_eq!(
            latest_name(&idx, "A\u{0}1h").as_deref(),
            Some("A_1h_1.json")
        );
        assert!(matches!(
            idx.record(&d.join("A_1h_2.json")),
            Err(Error::Io { .. })
        ));
        assert!(matches!(
            idx.record(&d.join("x.txt")),
            Err(Error::Invalid(_))
        ));
        idx.close();
        assert!(matches!(idx.latest("A\u{0}1h"), Err(Error::Closed(_))));
    }

    #[test]
    fn open_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = Index::<()>::open(Options {
            dir: tmp.path().join("missing"),
            pattern: "{a}.json".into(),
            order_by: "a".into(),
            recursive: false,
            backend: Backend::Off,
        });
        assert!(matches!(missing, Err(Error::Io { .. })));
        let slash = Index::<()>::open(Options {
            dir: tmp.path().to_path_buf(),
            pattern: "{a}/{b}.json".into(),
            order_by: "b".into(),
            recursive: false,
            backend: Backend::Off,
        });
        assert!(
            matches!(slash, Err(Error::Pattern { message, .. }) if message.contains("recursive"))
        );
    }
}
