//! The index proper: key → files, oldest first (so the newest is `last()` and the common
//! "a newer result arrived" insert is a push), plus path → entry for removals.
//!
//! "Newest" compares `Order` first and breaks ties by the full path text (byte order, which for
//! UTF-8 names is Python's `str` order), so two files with the same stamp still have one
//! deterministic winner: the one whose path sorts last, as with `sorted(glob)[-1]`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// The value that decides "newest" within a key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Order {
    /// The ordering field's text.
    Text(Box<str>),
    /// Modification time in nanoseconds since the Unix epoch (negative before it).
    Mtime(i128),
}

/// A file the scanner or an event found, before it enters the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    pub key: String,
    pub order: Order,
}

/// One indexed file. `cache` holds a converted form of `path` made on first use by a caller
/// (the Python bindings keep the `pathlib.Path` there, because building one costs more than the
/// whole lookup); an entry is replaced, not mutated, when its order changes.
#[derive(Debug)]
pub struct Entry<X> {
    pub path: Arc<Path>,
    pub key: Arc<str>,
    pub order: Order,
    pub cache: OnceLock<X>,
}

impl<X> Entry<X> {
    fn rank(&self) -> (&Order, &[u8]) {
        (&self.order, self.path.as_os_str().as_encoded_bytes())
    }

    /// Whether this entry is newer than `order` (and, if given, than that path at that order).
    pub fn is_newer_than(&self, order: &Order, path: Option<&Path>) -> bool {
        match path {
            None => self.order > *order,
            Some(p) => self.rank() > (order, p.as_os_str().as_encoded_bytes()),
        }
    }
}

#[derive(Debug)]
pub struct ResultMap<X> {
    slots: HashMap<Arc<str>, Vec<Arc<Entry<X>>>>,
    by_path: HashMap<Arc<Path>, Arc<Entry<X>>>,
    generation: u64,
}

impl<X> Default for ResultMap<X> {
    fn default() -> Self {
        ResultMap {
            slots: HashMap::new(),
            by_path: HashMap::new(),
            generation: 0,
        }
    }
}

impl<X> ResultMap<X> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Increases on every change; unchanged by idempotent updates.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn key_count(&self) -> usize {
        self.slots.len()
    }

    pub fn file_count(&self) -> usize {
        self.by_path.len()
    }

    pub fn latest(&self, key: &str) -> Option<&Arc<Entry<X>>> {
        self.slots.get(key).and_then(|s| s.last())
    }

    /// Newest first.
    pub fn history(&self, key: &str) -> impl Iterator<Item = &Arc<Entry<X>>> {
        self.slots.get(key).into_iter().flat_map(|s| s.iter().rev())
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.slots.contains_key(key)
    }

    pub fn get(&self, path: &Path) -> Option<&Arc<Entry<X>>> {
        self.by_path.get(path)
    }

    /// Every key with its newest entry, in no particular order.
    pub fn newest(&self) -> impl Iterator<Item = (&Arc<str>, &Arc<Entry<X>>)> {
        self.slots
            .iter()
            .filter_map(|(k, s)| s.last().map(|e| (k, e)))
    }

    fn intern(&self, key: &str) -> Arc<str> {
        match self.slots.get_key_value(key) {
            Some((k, _)) => Arc::clone(k),
            None => Arc::from(key),
        }
    }

    /// Inserts or updates one file; returns whether anything changed.
    pub fn upsert(&mut self, found: Found) -> bool {
        // A moved entry is one change, not a removal plus an insertion.
        let generation = self.generation;
        if let Some(old) = self.by_path.get(found.path.as_path()) {
            if old.order == found.order && *old.key == *found.key {
                return false;
            }
            self.remove(&found.path);
        }
        let entry = Arc::new(Entry {
            key: self.intern(&found.key),
            path: Arc::from(found.path),
            order: found.order,
            cache: OnceLock::new(),
        });
        self.insert_entry(entry);
        self.generation = generation + 1;
        true
    }

    fn insert_entry(&mut self, entry: Arc<Entry<X>>) {
        let slot = self.slots.entry(Arc::clone(&entry.key)).or_default();
        let at = slot.partition_point(|e| e.rank() <= entry.rank());
        slot.insert(at, Arc::clone(&entry));
        self.by_path.insert(Arc::clone(&entry.path), entry);
    }

    /// Removes one file; returns whether it was indexed.
    pub fn remove(&mut self, path: &Path) -> bool {
        let Some(entry) = self.by_path.remove(path) else {
            return false;
        };
        if let Some(slot) = self.slots.get_mut(&*entry.key) {
            if let Ok(at) = slot.binary_search_by(|e| e.rank().cmp(&entry.rank())) {
                slot.remove(at);
            }
            if slot.is_empty() {
                self.slots.remove(&*entry.key);
            }
        }
        self.generation += 1;
        true
    }

    /// Removes every file below `dir` (a directory that was deleted or renamed away).
    pub fn remove_under(&mut self, dir: &Path) -> usize {
        let gone: Vec<Arc<Path>> = self
            .by_path
            .keys()
            .filter(|p| p.starts_with(dir) && p.as_ref() != dir)
            .cloned()
            .collect();
        for p in &gone {
            self.remove(p);
        }
        gone.len()
    }

    /// Makes the index exactly `found` (a fresh scan). Entries whose path and order are unchanged
    /// are kept, with their caches. Returns whether anything changed.
    pub fn replace_all(&mut self, found: Vec<Found>) -> bool {
        let mut slots: HashMap<Arc<str>, Vec<Arc<Entry<X>>>> = HashMap::new();
        let mut by_path: HashMap<Arc<Path>, Arc<Entry<X>>> = HashMap::with_capacity(found.len());
        let mut changed = false;
        for f in found {
            if by_path.contains_key(f.path.as_path()) {
                continue;
            }
            let entry = match self.by_path.get(f.path.as_path()) {
                Some(old) if old.order == f.order && *old.key == *f.key => Arc::clone(old),
                _ => {
                    changed = true;
                    let key = match slots.get_key_value(f.key.as_str()) {
                        Some((k, _)) => Arc::clone(k),
                        None => self.intern(&f.key),
                    };
                    Arc::new(Entry {
                        key,
                        path: Arc::from(f.path),
                        order: f.order,
                        cache: OnceLock::new(),
                    })
                }
            };
            slots
                .entry(Arc::clone(&entry.key))
                .or_default()
                .push(Arc::clone(&entry));
            by_path.insert(Arc::clone(&entry.path), entry);
        }
        // Every kept entry was in the old map, so equal sizes with nothing new means equal sets.
        changed |= by_path.len() != self.by_path.len();
        for slot in slots.values_mut() {
            slot.sort_unstable_by(|a, b| a.rank().cmp(&b.rank()));
        }
        self.slots = slots;
        self.by_path = by_path;
        if changed {
            self.generation += 1;
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(path: &str, key: &str, stamp: &str) -> Found {
        Found {
            path: PathBuf::from(path),
            key: key.to_owned(),
            order: Order::Text(stamp.into()),
        }
    }

    fn history(m: &ResultMap<()>, key: &str) -> Vec<String> {
        m.history(key)
            .map(|e| e.path.display().to_string())
            .collect()
    }

    #[test]
    fn newest_by_order_then_path() {
        let mut m = ResultMap::<()>::new();
        assert!(m.upsert(f("/d/b2", "b", "2")));
        assert!(m.upsert(f("/d/b1", "b", "1")));
        assert!(m.upsert(f("/d/b3", "b", "3")));
        assert!(m.upsert(f("/d/x3", "b", "3")));
        assert_eq!(history(&m, "b"), ["/d/x3", "/d/b3", "/d/b2", "/d/b1"]);
        assert_eq!(m.key_count(), 1);
        assert_eq!(m.file_count(), 4);
    }

    #[test]
    fn upsert_is_idempotent_and_counts_generations() {
        let mut m = ResultMap::<()>::new();
        assert!(m.upsert(f("/d/a", "k", "1")));
        let g = m.generation();
        assert!(!m.upsert(f("/d/a", "k", "1")));
        assert_eq!(m.generation(), g);
        assert!(m.upsert(f("/d/a", "k", "2")));
        assert_eq!(m.generation(), g + 1);
        assert_eq!(m.file_count(), 1);
    }

    #[test]
    fn deleting_the_newest_restores_the_previous_one() {
        let mut m = ResultMap::<()>::new();
        m.upsert(f("/d/1", "k", "1"));
        m.upsert(f("/d/2", "k", "2"));
        assert!(m.remove(Path::new("/d/2")));
        assert_eq!(m.latest("k").unwrap().path.as_ref(), Path::new("/d/1"));
        assert!(!m.remove(Path::new("/d/2")));
        assert!(m.remove(Path::new("/d/1")));
        assert!(m.latest("k").is_none());
        assert_eq!(m.key_count(), 0);
    }

    #[test]
    fn replace_all_keeps_unchanged_entries_and_reports_changes() {
        let mut m = ResultMap::<u8>::new();
        m.replace_all(vec![f("/d/1", "k", "1"), f("/d/2", "k", "2")]);
        m.latest("k").unwrap().cache.set(7).unwrap();
        let g = m.generation();
        assert!(!m.replace_all(vec![f("/d/2", "k", "2"), f("/d/1", "k", "1")]));
        assert_eq!(m.generation(), g);
        assert_eq!(m.latest("k").unwrap().cache.get(), Some(&7));
        assert!(m.replace_all(vec![f("/d/1", "k", "1")]));
        assert_eq!(m.latest("k").unwrap().path.as_ref(), Path::new("/d/1"));
        assert!(m.replace_all(vec![f("/d/1", "k", "1"), f("/d/3", "j", "3")]));
        assert_eq!(m.key_count(), 2);
    }

    #[test]
    fn remove_under_drops_a_subtree_only() {
        let mut m = ResultMap::<()>::new();
        m.upsert(f("/d/a/1", "a", "1"));
        m.upsert(f("/d/a/2", "a", "2"));
        m.upsert(f("/d/ab/1", "ab", "1"));
        assert_eq!(m.remove_under(Path::new("/d/a")), 2);
        assert_eq!(m.file_count(), 1);
        assert!(m.contains_key("ab"));
    }

    #[test]
    fn newer_than() {
        let mut m = ResultMap::<()>::new();
        m.upsert(f("/d/b", "k", "5"));
        let e = m.latest("k").unwrap();
        assert!(e.is_newer_than(&Order::Text("4".into()), None));
        assert!(!e.is_newer_than(&Order::Text("5".into()), None));
        assert!(e.is_newer_than(&Order::Text("5".into()), Some(Path::new("/d/a"))));
        assert!(!e.is_newer_than(&Order::Text("5".into()), Some(Path::new("/d/b"))));
    }
}
