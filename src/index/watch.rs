//! notify glue: start a backend (native, falling back to polling), and turn notify's events
//! into what the index worker needs. Events are never applied here: the callback runs on
//! notify's thread and only hands plain data to the worker.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{Config, Event, EventKind, PollWatcher, RecommendedWatcher, RecursiveMode, Watcher};

use crate::error::{Error, Result};

/// Which watcher to run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Backend {
    /// No watcher: the index changes only by `record` and `rescan`.
    Off,
    /// The platform's native events; polling at `fallback` when they are unavailable.
    Native { fallback: Duration },
    /// notify's `PollWatcher` at this interval.
    Poll(Duration),
}

impl Backend {
    /// How often the worker looks at the directory itself when no event comes (None: no worker).
    pub fn interval(&self) -> Option<Duration> {
        match *self {
            Backend::Off => None,
            Backend::Native { fallback } => Some(fallback),
            Backend::Poll(interval) => Some(interval),
        }
    }
}

/// What one notify callback asks of the worker.
#[derive(Debug, PartialEq, Eq)]
pub enum Signal {
    Paths(Vec<PathBuf>),
    /// Re-read the whole directory; carries the watcher error, if that was the reason.
    Rescan(Option<String>),
    Nothing,
}

impl Signal {
    pub fn from_event(res: notify::Result<Event>) -> Signal {
        match res {
            // The polling backend walks with walkdir, which reports each link back to an
            // ancestor directory on every poll; the scan skips those links too (issue 12, item
            // 12), so there is nothing to re-read.
            Err(notify::Error {
                kind: notify::ErrorKind::Generic(ref message),
                ..
            }) if message.starts_with(WALKDIR_LOOP) => Signal::Nothing,
            Err(e) => Signal::Rescan(Some(format!("watcher error: {e}"))),
            // inotify's queue overflowed (IN_Q_OVERFLOW): events were lost, so re-read everything.
            Ok(ev) if ev.need_rescan() => Signal::Rescan(None),
            Ok(ev) => match ev.kind {
                EventKind::Access(AccessKind::Close(AccessMode::Write)) => Signal::Paths(ev.paths),
                // Readers opening results change nothing.
                EventKind::Access(_) => Signal::Nothing,
                // A change we cannot place is never dropped (watchfiles #348): re-read everything.
                _ if ev.paths.is_empty() => Signal::Rescan(None),
                _ => Signal::Paths(ev.paths),
            },
        }
    }
}

/// How walkdir's loop error begins (`walkdir::Error`'s Display).
const WALKDIR_LOOP: &str = "File system loop found: ";

/// Whether `ev` says the watched directory itself was removed or renamed: its watch is then
/// gone or follows the old directory elsewhere.
pub fn moves_root(ev: &Event, root: &Path) -> bool {
    matches!(
        ev.kind,
        EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_))
    ) && ev.paths.iter().any(|p| p == root)
}

pub type Handler = Box<dyn FnMut(notify::Result<Event>) + Send + 'static>;
pub type BoxWatcher = Box<dyn Watcher + Send>;

/// A running watcher (or none) and a human-readable name of its backend.
pub struct Started {
    pub watcher: Option<BoxWatcher>,
    pub name: String,
}

fn mode(recursive: bool) -> RecursiveMode {
    if recursive {
        RecursiveMode::Recursive
    } else {
        RecursiveMode::NonRecursive
    }
}

fn native(dir: &Path, recursive: bool, handler: Handler) -> notify::Result<BoxWatcher> {
    let mut w = RecommendedWatcher::new(handler, Config::default())?;
    w.watch(dir, mode(recursive))?;
    Ok(Box::new(w))
}

fn poll(dir: &Path, recursive: bool, interval: Duration, handler: Handler) -> Result<BoxWatcher> {
    let config = Config::default().with_poll_interval(interval);
    let mut w = PollWatcher::new(handler, config).map_err(|e| notify_error(dir, e))?;
    w.watch(dir, mode(recursive))
        .map_err(|e| notify_error(dir, e))?;
    Ok(Box::new(w))
}

fn notify_error(dir: &Path, e: notify::Error) -> Error {
    match e.kind {
        notify::ErrorKind::Io(source) => Error::io(dir, source),
        notify::ErrorKind::PathNotFound => {
            Error::io(dir, std::io::Error::from(std::io::ErrorKind::NotFound))
        }
        other => Error::Invalid(format!("cannot watch {}: {other:?}", dir.display())),
    }
}

fn kind_name(kind: notify::WatcherKind) -> String {
    format!("{kind:?}").to_lowercase()
}

/// Starts the backend; `make_handler` is called once per attempt.
pub fn start(
    dir: &Path,
    recursive: bool,
    backend: Backend,
    make_handler: &dyn Fn() -> Handler,
) -> Result<Started> {
    start_with(dir, recursive, backend, make_handler, native)
}

/// `start` with the native backend injectable, so the fallback path is testable anywhere.
pub fn start_with(
    dir: &Path,
    recursive: bool,
    backend: Backend,
    make_handler: &dyn Fn() -> Handler,
    native: impl FnOnce(&Path, bool, Handler) -> notify::Result<BoxWatcher>,
) -> Result<Started> {
    match backend {
        Backend::Off => Ok(Started {
            watcher: None,
            name: "none".into(),
        }),
        Backend::Poll(interval) => Ok(Started {
            watcher: Some(poll(dir, recursive, interval, make_handler())?),
            name: format!("poll every {}s", interval.as_secs_f64()),
        }),
        Backend::Native { fallback } => match native(dir, recursive, make_handler()) {
            Ok(w) => Ok(Started {
                watcher: Some(w),
                name: kind_name(<RecommendedWatcher as Watcher>::kind()),
            }),
            // Network filesystems, exhausted inotify watches or instances: poll instead.
            Err(e) => Ok(Started {
                watcher: Some(poll(dir, recursive, fallback, make_handler())?),
                name: format!(
                    "poll every {}s (native watching failed: {e})",
                    fallback.as_secs_f64()
                ),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, Flag, ModifyKind, RenameMode};
    use std::sync::mpsc;

    #[test]
    fn events_become_signals() {
        let p = PathBuf::from("/d/a.json");
        let ev = |kind| Ok(Event::new(kind).add_path(p.clone()));
        assert_eq!(
            Signal::from_event(ev(EventKind::Create(CreateKind::File))),
            Signal::Paths(vec![p.clone()])
        );
        assert_eq!(
            Signal::from_event(ev(EventKind::Access(AccessKind::Close(AccessMode::Write)))),
            Signal::Paths(vec![p.clone()])
        );
        assert_eq!(
            Signal::from_event(ev(EventKind::Access(AccessKind::Open(AccessMode::Any)))),
            Signal::Nothing
        );
        assert_eq!(
            Signal::from_event(ev(EventKind::Modify(ModifyKind::Name(RenameMode::To)))),
            Signal::Paths(vec![p.clone()])
        );
        assert_eq!(
            Signal::from_event(Ok(Event::new(EventKind::Other).set_flag(Flag::Rescan))),
            Signal::Rescan(None)
        );
        assert_eq!(
            Signal::from_event(Ok(Event::new(EventKind::Remove(
                notify::event::RemoveKind::Any
            )))),
            Signal::Rescan(None)
        );
        assert!(matches!(
            Signal::from_event(Err(notify::Error::generic("boom"))),
            Signal::Rescan(Some(m)) if m.contains("boom")
        ));
    }

    #[test]
    fn falls_back_to_polling_when_native_fails() {
        let tmp = tempfile::tempdir().unwrap();
        let (tx, rx) = mpsc::channel();
        let make = move || -> Handler {
            let tx = tx.clone();
            Box::new(move |res| {
                let _ = tx.send(Signal::from_event(res));
            })
        };
        let started = start_with(
            tmp.path(),
            false,
            Backend::Native {
                fallback: Duration::from_millis(20),
            },
            &make,
            |_, _, _| Err(notify::Error::new(notify::ErrorKind::MaxFilesWatch)),
        )
        .unwrap();
        assert!(started
            .name
            .starts_with("poll every 0.02s (native watching failed"));
        std::fs::write(tmp.path().join("a.json"), b"{}").unwrap();
        let got = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(got, Signal::Paths(vec![tmp.path().join("a.json")]));
    }

    #[test]
    fn native_backend_reports_its_kind() {
        let tmp = tempfile::tempdir().unwrap();
        let make = || -> Handler { Box::new(|_| {}) };
        let started = start(
            tmp.path(),
            false,
            Backend::Native {
                fallback: Duration::from_secs(1),
            },
            &make,
        )
        .unwrap();
        assert!(started.watcher.is_some());
        assert!(!started.name.is_empty());
        let off = start(tmp.path(), false, Backend::Off, &make).unwrap();
        assert!(off.watcher.is_none());
        assert_eq!(off.name, "none");
    }
}
