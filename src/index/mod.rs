//! The indexed results directory (issue 3): the newest result file per key in O(1), kept
//! current from filesystem events by a worker thread that never touches Python.
//!
//! Data flow: notify's callback (`watch`) pushes paths or a rescan request into `Pending` under
//! one lock and wakes the worker; the worker takes the whole batch in that same single lock
//! acquisition (copy-and-clear cannot lose events in between), stats each path outside every
//! lock, then applies the results to the `ResultMap` under one write lock and wakes waiters.
//! Applying an event means "look at the path now", never "trust the event kind", so events are
//! idempotent, may be coalesced, and a rescan racing with events converges to the truth.
//!
//! The worker also follows the directory itself (issue 12, item 11): an event on it, or a stat
//! every `tick`, tells it the directory was deleted, moved away or replaced; the index is then
//! empty (with `last_error` saying why) until a directory is there again, which gets a fresh
//! watch and a full scan.

pub mod map;
pub mod pattern;
pub mod scan;
pub mod watch;

use std::collections::HashSet;
use std::mem;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{Check, Error, Result};
pub use map::{Entry, Found, Order, Rank, ResultMap};
pub use pattern::{OrderBy, Pattern};
pub use scan::{dir_id, DirId, Layout, Probe, Scanned};
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
    /// An event said the directory itself was removed or renamed: look at it now (its watch
    /// may be gone even if a new directory with the same inode number is already there).
    root: bool,
    stop: bool,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.paths.is_empty() && !self.rescan && !self.root
    }
}

/// What the worker knows of the indexed directory itself.
enum Root {
    /// Watched, with this identity.
    Watched(DirId),
    /// Gone or not a directory: nothing is watched and the index is empty.
    Lost,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; if something did, the data is still consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Shared<X> {
    layout: Layout,
    backend: Backend,
    map: RwLock<ResultMap<X>>,
    pending: Mutex<Pending>,
    pending_cv: Condvar,
    changed: Mutex<()>,
    changed_cv: Condvar,
    closed: AtomicBool,
    /// Test hook: discard path events as a full kernel queue would.
    drop_events: AtomicBool,
    last_error: Mutex<Option<String>>,
    /// The running watcher; the worker replaces it when the directory is replaced.
    watcher: Mutex<Option<watch::BoxWatcher>>,
    backend_name: Mutex<String>,
}

impl<X: Send + Sync + 'static> Shared<X> {
    fn read(&self) -> RwLockReadGuard<'_, ResultMap<X>> {
        self.map.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, ResultMap<X>> {
        self.map.write().unwrap_or_else(|e| e.into_inner())
    }

    fn set_error(&self, error: impl Into<String>) {
        *lock(&self.last_error) = Some(error.into());
    }

    /// `Error::Closed` once `close()` ran: every call checks it, and it is the `Check` that
    /// ends the worker's long scans.
    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed(format!(
                "the results index of {} is closed",
                self.layout.dir.display()
            )))
        } else {
            Ok(())
        }
    }

    /// notify's callback (on notify's thread): plain data into `Pending`, nothing else.
    fn on_event(&self, res: notify::Result<notify::Event>) {
        let root = matches!(&res, Ok(ev) if watch::moves_root(ev, &self.layout.dir));
        self.on_signal(Signal::from_event(res), root);
    }

    fn on_signal(&self, signal: Signal, root: bool) {
        let mut p = lock(&self.pending);
        p.root |= root;
        let wake = match signal {
            Signal::Nothing => root,
            Signal::Paths(_) if self.drop_events.load(Ordering::Relaxed) => root,
            Signal::Paths(paths) => {
                p.paths.extend(paths);
                true
            }
            Signal::Rescan(error) => {
                p.rescan = true;
                if let Some(error) = error {
                    self.set_error(error);
                }
                true
            }
        };
        drop(p);
        if wake {
            self.pending_cv.notify_one();
        }
    }

    fn notify_changed(&self) {
        let _g = lock(&self.changed);
        self.changed_cv.notify_all();
    }

    fn replace_all(&self, found: Vec<Found>) -> bool {
        let changed = self.write().replace_all(found);
        if changed {
            self.notify_changed();
        }
        changed
    }

    fn rescan(&self, check: Check) -> Result<bool> {
        let found = match self.layout.scan(check) {
            Ok(scanned) => {
                if let Some(problem) = scanned.problem() {
                    self.set_error(problem);
                }
                scanned.found
            }
            // The directory itself went away: it holds no results.
            Err(Error::Io { ref source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        Ok(self.replace_all(found))
    }

    fn apply(&self, mut paths: Vec<PathBuf>, check: Check) -> Result<()> {
        let mut seen = HashSet::with_capacity(paths.len());
        paths.retain(|p| seen.insert(p.clone()));
        let mut probes = Vec::with_capacity(paths.len());
        for path in paths {
            match self.layout.probe(&path) {
                // The directory itself is followed by `follow_root`.
                Probe::Ignored | Probe::Root => {}
                Probe::Dir(name) => {
                    // Files created before notify added a watch on the new directory.
                    let scanned = self.layout.scan_subdir(&path, check)?;
                    if let Some(problem) = scanned.problem() {
                        self.set_error(problem);
                    }
                    probes.extend(scanned.found.into_iter().map(Probe::File));
                    probes.push(Probe::Dir(name));
                }
                probe => probes.push(probe),
            }
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
                    // A directory is not a file of that name (polling reports a file replaced
                    // by a directory as a change of the path, not as a removal).
                    Probe::Dir(name) => changed |= map.remove(&name),
                    Probe::Ignored | Probe::Root => {}
                }
            }
        }
        if changed {
            self.notify_changed();
        }
        Ok(())
    }

    /// Starts a watcher on the directory in place of the current one (if the index is open).
    fn rewatch(self: &Arc<Self>) -> Result<bool> {
        let mut slot = lock(&self.watcher);
        // `close()` sets `closed` before it takes the watcher: either it sees the new watcher or
        // this sees `closed`, so no watcher outlives the index.
        if self.closed.load(Ordering::Acquire) {
            return Ok(false);
        }
        drop(slot.take());
        let started = watch::start(
            &self.layout.dir,
            self.layout.recursive,
            self.backend,
            &handler_maker(self),
        )?;
        *slot = started.watcher;
        *lock(&self.backend_name) = started.name;
        Ok(true)
    }

    /// Follows the directory itself. Returns whether it rebuilt or emptied the index (which
    /// makes the batch's own events moot).
    fn follow_root(self: &Arc<Self>, root: &mut Root, event: bool, check: Check) -> Result<bool> {
        let dir = &self.layout.dir;
        let now = match std::fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => Ok(dir_id(dir, &meta)),
            Ok(_) => Err("is no longer a directory".to_owned()),
            Err(e) => Err(format!("is gone ({e})")),
        };
        match (now, &*root) {
            (Ok(id), Root::Watched(old)) if *old == id && !event => Ok(false),
            (Ok(id), _) => {
                // Back, replaced, or deleted and made again (perhaps reusing the inode number,
                // so an event on it is reason enough): a fresh watch, then a full scan.
                if !self.rewatch()? {
                    return Ok(true);
                }
                let replaced = matches!(&*root, Root::Watched(old) if *old != id);
                *root = Root::Watched(id);
                if replaced {
                    self.set_error(format!(
                        "results directory {} was replaced by another directory; \
                         watching and indexing the new one",
                        dir.display()
                    ));
                }
                self.rescan(check)?;
                Ok(true)
            }
            (Err(_), Root::Lost) => Ok(true),
            (Err(why), Root::Watched(_)) => {
                drop(lock(&self.watcher).take());
                *root = Root::Lost;
                self.set_error(format!(
                    "results directory {} {why}: the index is empty until a directory is there \
                     again, which is then watched and scanned",
                    dir.display()
                ));
                self.replace_all(Vec::new());
                Ok(true)
            }
        }
    }

    /// One turn of the worker: the directory itself first, then a rescan if asked, then events.
    fn turn(self: &Arc<Self>, root: &mut Root, batch: Pending, retry: bool) -> Result<()> {
        let check = || self.check_open();
        if self.follow_root(root, batch.root, &check)? {
            return Ok(());
        }
        if batch.rescan || retry {
            self.rescan(&check)?;
        }
        self.apply(batch.paths, &check)
    }

    fn run_worker(self: Arc<Self>, mut root: Root, tick: Duration) {
        let mut retry = false;
        loop {
            let batch = {
                let mut p = lock(&self.pending);
                if !p.stop && p.is_empty() {
                    // Without events, wake every `tick` to look at the directory itself.
                    p = self
                        .pending_cv
                        .wait_timeout(p, tick)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                if p.stop {
                    return;
                }
                mem::take(&mut *p)
            };
            retry = match self.turn(&mut root, batch, retry) {
                Ok(()) => false,
                Err(_) if self.closed.load(Ordering::Acquire) => return,
                Err(e) => {
                    // Keep the index as it is and try again next turn; the error is exposed.
                    self.set_error(e.to_string());
                    true
                }
            };
        }
    }
}

/// notify callbacks hold the index weakly: the index owns the watcher, not the other way round.
fn handler_maker<X: Send + Sync + 'static>(shared: &Arc<Shared<X>>) -> impl Fn() -> watch::Handler {
    let weak: Weak<Shared<X>> = Arc::downgrade(shared);
    move || -> watch::Handler {
        let weak = weak.clone();
        Box::new(move |res| {
            if let Some(shared) = weak.upgrade() {
                shared.on_event(res);
            }
        })
    }
}

/// An open index. `X` is the type callers cache per entry (see `Entry::cache`).
pub struct Index<X: Send + Sync + 'static> {
    shared: Arc<Shared<X>>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl<X: Send + Sync + 'static> Index<X> {
    /// Starts the watcher, then scans, then merges, so a file created during start-up is seen
    /// either by the scan or by an event applied after it. `check` is called during the scan;
    /// its error ends the opening.
    pub fn open(opts: Options, check: Check) -> Result<Self> {
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
        let meta = std::fs::metadata(&dir).map_err(|e| Error::io(&dir, e))?;
        let root = Root::Watched(dir_id(&dir, &meta));
        let shared = Arc::new(Shared {
            layout: Layout {
                dir,
                pattern,
                recursive: opts.recursive,
            },
            backend: opts.backend,
            map: RwLock::new(ResultMap::new()),
            pending: Mutex::new(Pending::default()),
            pending_cv: Condvar::new(),
            changed: Mutex::new(()),
            changed_cv: Condvar::new(),
            closed: AtomicBool::new(false),
            drop_events: AtomicBool::new(false),
            last_error: Mutex::new(None),
            watcher: Mutex::new(None),
            backend_name: Mutex::new(String::new()),
        });
        let started = watch::start(
            &shared.layout.dir,
            opts.recursive,
            opts.backend,
            &handler_maker(&shared),
        )?;
        let scanned = shared.layout.scan(check)?;
        if let Some(problem) = scanned.problem() {
            shared.set_error(problem);
        }
        shared.write().replace_all(scanned.found);
        let worker = match (&started.watcher, opts.backend.interval()) {
            (Some(_), Some(tick)) => {
                let s = Arc::clone(&shared);
                Some(
                    std::thread::Builder::new()
                        .name("fastgrid-index".into())
                        .spawn(move || s.run_worker(root, tick))
                        .map_err(|e| Error::io(&shared.layout.dir, e))?,
                )
            }
            _ => None,
        };
        *lock(&shared.watcher) = started.watcher;
        *lock(&shared.backend_name) = started.name;
        Ok(Index {
            shared,
            worker: Mutex::new(worker),
        })
    }

    /// Read access to the map; every lookup goes through here.
    pub fn read(&self) -> Result<RwLockReadGuard<'_, ResultMap<X>>> {
        self.shared.check_open()?;
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

    /// The running backend's name (it can change when the directory is watched anew).
    pub fn backend(&self) -> String {
        lock(&self.shared.backend_name).clone()
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
        self.shared.check_open()?;
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
            // Something is there, but not a regular file: say what it is.
            Probe::Gone(_) | Probe::Dir(_) | Probe::Root => match std::fs::metadata(&path) {
                Err(e) => Err(Error::io(path, e)),
                Ok(meta) => Err(Error::Invalid(format!(
                    "{} is {}, not a result file",
                    path.display(),
                    if meta.is_dir() {
                        "a directory"
                    } else {
                        "not a regular file (a FIFO, socket or device)"
                    }
                ))),
            },
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
        self.shared.check_open()?;
        let path = std::path::absolute(path).map_err(|e| Error::io(path, e))?;
        if let Some(rel) = self.shared.layout.rel(&path) {
            if let Some(e) = self.shared.read().get(rel) {
                return Ok(e.order());
            }
        }
        self.shared.layout.order_of(&path)
    }

    /// Re-reads the directory now (in the calling thread; `check` is called during the scan).
    /// Returns whether anything changed.
    pub fn rescan(&self, check: Check) -> Result<bool> {
        self.shared.check_open()?;
        self.shared.rescan(check)
    }

    pub fn generation(&self) -> Result<u64> {
        Ok(self.read()?.generation())
    }

    /// Blocks until the generation differs from `seen`, the index closes, or `timeout` passes;
    /// returns the generation then. Wakes on change (condition variable), not by polling.
    pub fn wait_changed(&self, seen: u64, timeout: Duration) -> Result<u64> {
        self.shared.check_open()?;
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
        self.shared.on_event(res);
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
        // After this no new callback is queued (the handlers hold the index weakly, and one
        // that still runs only adds to a batch nobody takes).
        drop(lock(&self.shared.watcher).take());
        lock(&self.shared.pending).stop = true;
        self.shared.pending_cv.notify_all();
        if let Some(worker) = lock(&self.worker).take() {
            // The worker holds no lock across its waits and its scans check `closed`, so it
            // reaches the stop flag promptly.
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
    use crate::error::never;
    use std::fs;
    use std::time::Instant;

    fn open(dir: &Path, backend: Backend) -> Index<()> {
        open_with(dir, backend, false)
    }

    fn open_with(dir: &Path, backend: Backend, recursive: bool) -> Index<()> {
        Index::open(
            Options {
                dir: dir.to_path_buf(),
                pattern: "{symbol}_{timeframe}_{stamp}.json".into(),
                order_by: "stamp".into(),
                recursive,
                backend,
            },
            &never,
        )
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
        let missing = Index::<()>::open(
            Options {
                dir: tmp.path().join("missing"),
                pattern: "{a}.json".into(),
                order_by: "a".into(),
                recursive: false,
                backend: Backend::Off,
            },
            &never,
        );
        assert!(matches!(missing, Err(Error::Io { .. })));
        let slash = Index::<()>::open(
            Options {
                dir: tmp.path().to_path_buf(),
                pattern: "{a}/{b}.json".into(),
                order_by: "b".into(),
                recursive: false,
                backend: Backend::Off,
            },
            &never,
        );
        assert!(
            matches!(slash, Err(Error::Pattern { message, .. }) if message.contains("recursive"))
        );
    }

    fn poll() -> Backend {
        Backend::Poll(Duration::from_millis(50))
    }

    /// Waits (bounded) until `last_error` satisfies `want`.
    fn settle_error(idx: &Index<()>, want: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !idx.last_error().is_some_and(|e| want(&e)) {
            assert!(
                Instant::now() < deadline,
                "last_error stayed {:?}",
                idx.last_error()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Issue 12, item 11: the directory deleted, then made again, under either backend.
    #[test]
    fn follows_the_directory_deleted_and_made_again() {
        for backend in [native(), poll()] {
            let tmp = tempfile::tempdir().unwrap();
            let d = tmp.path().join("results");
            fs::create_dir(&d).unwrap();
            fs::write(d.join("A_1h_1.json"), b"{}").unwrap();
            let idx = open(&d, backend);
            let k = "A\u{0}1h";
            fs::remove_dir_all(&d).unwrap();
            settle(&idx, k, None);
            // Either the index's own look at the folder or the watcher's error on it may come
            // last (the polling watcher reports the missing path too): both name the folder.
            settle_error(&idx, |e| {
                e.contains("is gone") || (e.contains("No such file") && e.contains("results"))
            });
            fs::create_dir(&d).unwrap();
            fs::write(d.join("A_1h_2.json"), b"{}").unwrap();
            settle(&idx, k, Some("A_1h_2.json"));
            // The new directory is watched: a later file is seen too.
            fs::write(d.join("A_1h_3.json"), b"{}").unwrap();
            settle(&idx, k, Some("A_1h_3.json"));
        }
    }

    /// Moved away and replaced at once: the old directory's files no longer count, and files
    /// written into the old one (now elsewhere) are not reported under the new one's name.
    #[test]
    fn follows_the_directory_replaced() {
        for backend in [native(), poll()] {
            let tmp = tempfile::tempdir().unwrap();
            let d = tmp.path().join("results");
            let fresh = tmp.path().join("fresh");
            fs::create_dir(&d).unwrap();
            fs::create_dir(&fresh).unwrap();
            fs::write(d.join("A_1h_1.json"), b"{}").unwrap();
            fs::write(fresh.join("B_1h_1.json"), b"{}").unwrap();
            let idx = open(&d, backend);
            fs::rename(&d, tmp.path().join("old")).unwrap();
            fs::rename(&fresh, &d).unwrap();
            settle(&idx, "B\u{0}1h", Some("B_1h_1.json"));
            settle(&idx, "A\u{0}1h", None);
            fs::write(tmp.path().join("old/A_1h_2.json"), b"{}").unwrap();
            fs::write(d.join("B_1h_2.json"), b"{}").unwrap();
            settle(&idx, "B\u{0}1h", Some("B_1h_2.json"));
            assert_eq!(latest_name(&idx, "A\u{0}1h"), None);
            assert!(idx.last_error().is_some());
        }
    }

    /// A file where the directory was: empty, with the reason; a directory again: watched.
    #[test]
    fn follows_the_directory_replaced_by_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("results");
        fs::create_dir(&d).unwrap();
        fs::write(d.join("A_1h_1.json"), b"{}").unwrap();
        let idx = open(&d, native());
        fs::remove_dir_all(&d).unwrap();
        fs::write(&d, b"not a directory").unwrap();
        settle(&idx, "A\u{0}1h", None);
        settle_error(&idx, |e| {
            e.contains("is gone") || e.contains("no longer a directory")
        });
        fs::remove_file(&d).unwrap();
        fs::create_dir(&d).unwrap();
        fs::write(d.join("A_1h_5.json"), b"{}").unwrap();
        settle(&idx, "A\u{0}1h", Some("A_1h_5.json"));
    }

    /// Issue 12, item 12: links back to an ancestor are not followed, by the scan, by events
    /// on a new link, or by the polling backend (whose walk reports them as errors).
    #[cfg(unix)]
    #[test]
    fn links_into_a_loop_are_not_followed() {
        for backend in [native(), poll()] {
            let tmp = tempfile::tempdir().unwrap();
            let d = tmp.path();
            fs::create_dir(d.join("sub")).unwrap();
            fs::write(d.join("A_1h_1.json"), b"{}").unwrap();
            fs::write(d.join("sub/B_1h_1.json"), b"{}").unwrap();
            std::os::unix::fs::symlink(".", d.join("again")).unwrap();
            std::os::unix::fs::symlink("..", d.join("sub/up")).unwrap();
            let idx = open_with(d, backend, true);
            let names = |idx: &Index<()>| {
                let map = idx.read().unwrap();
                let mut n: Vec<String> = map
                    .newest()
                    .flat_map(|(k, _)| map.history(k).map(|e| e.name.to_string()))
                    .collect();
                n.sort();
                n
            };
            assert_eq!(names(&idx), ["A_1h_1.json", "sub/B_1h_1.json"]);
            // A new loop link, then a new file: the file is seen, the loop is not walked.
            std::os::unix::fs::symlink("..", d.join("sub/up2")).unwrap();
            fs::write(d.join("A_1h_2.json"), b"{}").unwrap();
            settle(&idx, "A\u{0}1h", Some("A_1h_2.json"));
            assert_eq!(
                names(&idx),
                ["A_1h_1.json", "A_1h_2.json", "sub/B_1h_1.json"]
            );
            assert_eq!(idx.last_error(), None);
        }
    }

    /// A link to a directory that is not an ancestor is followed (the same directory is then
    /// indexed under both names, as `find -L` lists it twice).
    #[cfg(unix)]
    #[test]
    fn links_to_other_directories_are_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        fs::create_dir(d.join("real")).unwrap();
        fs::write(d.join("real/A_1h_1.json"), b"{}").unwrap();
        std::os::unix::fs::symlink("real", d.join("alias")).unwrap();
        let idx = open_with(d, Backend::Off, true);
        let history: Vec<String> = idx
            .read()
            .unwrap()
            .history("A\u{0}1h")
            .map(|e| e.name.to_string())
            .collect();
        assert_eq!(history, ["real/A_1h_1.json", "alias/A_1h_1.json"]);
    }

    /// A scan stops at the first `check` that fails: `close()` or Ctrl-C ends a long scan.
    #[test]
    fn scans_are_interruptible() {
        let tmp = tempfile::tempdir().unwrap();
        for i in 0..5000 {
            fs::write(tmp.path().join(format!("A_1h_{i}.json")), b"").unwrap();
        }
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let stop = || {
            calls.fetch_add(1, Ordering::Relaxed);
            Err(Error::Invalid("interrupted".into()))
        };
        let opened = Index::<()>::open(
            Options {
                dir: tmp.path().to_path_buf(),
                pattern: "{symbol}_{timeframe}_{stamp}.json".into(),
                order_by: "stamp".into(),
                recursive: false,
                backend: native(),
            },
            &stop,
        );
        assert!(matches!(opened, Err(Error::Invalid(m)) if m == "interrupted"));
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        let idx = open(tmp.path(), Backend::Off);
        assert!(idx.rescan(&stop).is_err());
        assert_eq!(idx.read().unwrap().file_count(), 5000);
    }

    /// Sibling faults: a FIFO or a directory named like a result file is not one.
    #[cfg(unix)]
    #[test]
    fn only_regular_files_are_results() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        fs::create_dir(d.join("A_1h_1.json")).unwrap();
        let fifo = d.join("A_1h_2.json");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        fs::write(d.join("A_1h_0.json"), b"{}").unwrap();
        for recursive in [false, true] {
            let idx = open_with(d, Backend::Off, recursive);
            assert_eq!(
                latest_name(&idx, "A\u{0}1h").as_deref(),
                Some("A_1h_0.json")
            );
            let err = idx.record(&fifo).unwrap_err().to_string();
            assert!(err.contains("not a regular file"), "{err}");
            let err = idx.record(&d.join("A_1h_1.json")).unwrap_err().to_string();
            assert!(err.contains("is a directory"), "{err}");
        }
    }

    /// A result file replaced by a directory of the same name, reported (as polling does) as a
    /// change of the path rather than a removal, leaves the index.
    #[test]
    fn a_file_replaced_by_a_directory_leaves_the_index() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        fs::write(d.join("A_1h_1.json"), b"{}").unwrap();
        fs::write(d.join("A_1h_0.json"), b"{}").unwrap();
        let idx = open_with(d, native(), true);
        idx.set_drop_events(true);
        fs::remove_file(d.join("A_1h_1.json")).unwrap();
        fs::create_dir(d.join("A_1h_1.json")).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        idx.set_drop_events(false);
        idx.inject(Ok(notify::Event::new(notify::EventKind::Modify(
            notify::event::ModifyKind::Metadata(notify::event::MetadataKind::WriteTime),
        ))
        .add_path(d.join("A_1h_1.json"))));
        settle(&idx, "A\u{0}1h", Some("A_1h_0.json"));
    }
}
