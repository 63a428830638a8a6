//! The index proper: key → files, oldest first (so the newest is `last()` and the common
//! "a newer result arrived" insert is a push), plus name → entry for removals.
//!
//! "Newest" compares the order (the order field's text, or the mtime) first and breaks ties by
//! the file's name relative to the directory (byte order, which for UTF-8 is Python's `str`
//! order), so two files with the same stamp still have one deterministic winner: the one whose
//! path sorts last, as with `sorted(glob)[-1]`.
//!
//! Each file costs two allocations (its name and its `Arc<Entry>`): the order text is a span of
//! the name, keys are shared per slot, and the name set borrows the entries' own names.

// `ByName` hashes only the entry's name, which never changes; the interior mutability clippy
// sees is the entry's cache, which takes no part in hashing or equality.
#![allow(clippy::mutable_key_type)]

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

// Fx hashing: keys and names come from the indexed directory's own file names, and the map is
// rebuilt on every rescan, where SipHash showed up in profiles.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

/// An order value on its own (a threshold such as "newer than this stamp").
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Order {
    /// The ordering field's text.
    Text(Box<str>),
    /// Modification time in nanoseconds since the Unix epoch (negative before it).
    Mtime(i128),
}

/// How an entry is ordered: a byte span of its name, or its mtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rank {
    Span(u32, u32),
    Mtime(i128),
}

/// A file the scanner or an event found, before it enters the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Path relative to the indexed directory, `/`-separated.
    pub name: Box<str>,
    pub key: Arc<str>,
    pub rank: Rank,
}

/// One indexed file. `cache` holds a converted form of its path made on first use by a caller
/// (the Python bindings keep the `pathlib.Path` there, because building one costs more than the
/// whole lookup); an entry is replaced, not mutated, when its order changes.
#[derive(Debug)]
pub struct Entry<X> {
    pub name: Box<str>,
    pub key: Arc<str>,
    pub rank: Rank,
    pub cache: OnceLock<X>,
}

impl<X> Entry<X> {
    /// The order field's text (None when ordering by mtime).
    pub fn order_text(&self) -> Option<&str> {
        match self.rank {
            Rank::Span(a, b) => self.name.get(a as usize..b as usize),
            Rank::Mtime(_) => None,
        }
    }

    pub fn order(&self) -> Order {
        match self.rank {
            Rank::Span(..) => Order::Text(self.order_text().unwrap_or_default().into()),
            Rank::Mtime(t) => Order::Mtime(t),
        }
    }

    fn cmp_order(&self, order: &Order) -> Ordering {
        match (self.rank, order) {
            (Rank::Mtime(a), Order::Mtime(b)) => a.cmp(b),
            (Rank::Span(..), Order::Text(t)) => self.order_text().unwrap_or_default().cmp(t),
            // One index never mixes the two; text sorts after times, arbitrarily but stably.
            (Rank::Span(..), Order::Mtime(_)) => Ordering::Greater,
            (Rank::Mtime(_), Order::Text(_)) => Ordering::Less,
        }
    }

    fn cmp_rank(&self, other: &Entry<X>) -> Ordering {
        let by_order = match (self.rank, other.rank) {
            (Rank::Mtime(a), Rank::Mtime(b)) => a.cmp(&b),
            _ => self.order_text().cmp(&other.order_text()),
        };
        by_order.then_with(|| self.name.cmp(&other.name))
    }

    /// Whether this entry is newer than `order` (and, if given, than that name at that order).
    pub fn is_newer_than(&self, order: &Order, name: Option<&str>) -> bool {
        let ord = self.cmp_order(order);
        match name {
            None => ord == Ordering::Greater,
            Some(n) => ord.then_with(|| (*self.name).cmp(n)) == Ordering::Greater,
        }
    }
}

/// A set member that hashes and compares as its entry's name, so the set is searchable by
/// `&str` without storing the name twice.
#[derive(Debug)]
struct ByName<X>(Arc<Entry<X>>);

impl<X> Borrow<str> for ByName<X> {
    fn borrow(&self) -> &str {
        &self.0.name
    }
}

impl<X> Hash for ByName<X> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.name.hash(state)
    }
}

impl<X> PartialEq for ByName<X> {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
    }
}

impl<X> Eq for ByName<X> {}

#[derive(Debug)]
pub struct ResultMap<X> {
    slots: HashMap<Arc<str>, Vec<Arc<Entry<X>>>>,
    by_name: HashSet<ByName<X>>,
    generation: u64,
}

impl<X> Default for ResultMap<X> {
    fn default() -> Self {
        ResultMap {
            slots: HashMap::default(),
            by_name: HashSet::default(),
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
        self.by_name.len()
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

    /// The entry of a name (relative to the directory).
    pub fn get(&self, name: &str) -> Option<&Arc<Entry<X>>> {
        self.by_name.get(name).map(|b| &b.0)
    }

    /// Every key with its newest entry, in no particular order.
    pub fn newest(&self) -> impl Iterator<Item = (&Arc<str>, &Arc<Entry<X>>)> {
        self.slots
            .iter()
            .filter_map(|(k, s)| s.last().map(|e| (k, e)))
    }

    fn intern(&self, key: Arc<str>) -> Arc<str> {
        match self.slots.get_key_value(&*key) {
            Some((k, _)) => Arc::clone(k),
            None => key,
        }
    }

    /// Inserts or updates one file; returns whether anything changed.
    pub fn upsert(&mut self, found: Found) -> bool {
        if let Some(old) = self.get(&found.name) {
            if old.rank == found.rank && old.key == found.key {
                return false;
            }
        }
        // A moved entry is one change, not a removal plus an insertion.
        let generation = self.generation;
        self.remove(&found.name);
        let entry = Arc::new(Entry {
            key: self.intern(found.key),
            name: found.name,
            rank: found.rank,
            cache: OnceLock::new(),
        });
        let slot = self.slots.entry(Arc::clone(&entry.key)).or_default();
        let at = slot.partition_point(|e| e.cmp_rank(&entry) != Ordering::Greater);
        slot.insert(at, Arc::clone(&entry));
        self.by_name.insert(ByName(entry));
        self.generation = generation + 1;
        true
    }

    /// Removes one file; returns whether it was indexed.
    pub fn remove(&mut self, name: &str) -> bool {
        let Some(ByName(entry)) = self.by_name.take(name) else {
            return false;
        };
        if let Some(slot) = self.slots.get_mut(&*entry.key) {
            if let Ok(at) = slot.binary_search_by(|e| e.cmp_rank(&entry)) {
                slot.remove(at);
            }
            if slot.is_empty() {
                self.slots.remove(&*entry.key);
            }
        }
        self.generation += 1;
        true
    }

    /// Removes every file below the directory `dir` (relative; deleted or renamed away).
    pub fn remove_under(&mut self, dir: &str) -> usize {
        let gone: Vec<Box<str>> = self
            .by_name
            .iter()
            .filter(|b| {
                b.0.name
                    .strip_prefix(dir)
                    .is_some_and(|rest| rest.starts_with('/'))
            })
            .map(|b| b.0.name.clone())
            .collect();
        for name in &gone {
            self.remove(name);
        }
        gone.len()
    }

    /// Makes the index exactly `found` (a fresh scan). Entries whose name, key and order are
    /// unchanged are kept, with their caches. Returns whether anything changed.
    pub fn replace_all(&mut self, found: Vec<Found>) -> bool {
        let mut slots: HashMap<Arc<str>, Vec<Arc<Entry<X>>>> = HashMap::default();
        let mut by_name: HashSet<ByName<X>> =
            HashSet::with_capacity_and_hasher(found.len(), Default::default());
        let mut changed = false;
        let first = self.by_name.is_empty();
        for f in found {
            let reused = if first { None } else { self.get(&f.name) };
            let entry = match reused {
                Some(old) if old.rank == f.rank && old.key == f.key => Arc::clone(old),
                _ => {
                    changed = true;
                    Arc::new(Entry {
                        key: f.key,
                        name: f.name,
                        rank: f.rank,
                        cache: OnceLock::new(),
                    })
                }
            };
            // A name seen twice (impossible from one scan) keeps its first entry.
            if !by_name.insert(ByName(Arc::clone(&entry))) {
                continue;
            }
            match slots.get_mut(&*entry.key) {
                Some(slot) => slot.push(entry),
                None => {
                    slots.insert(Arc::clone(&entry.key), vec![entry]);
                }
            }
        }
        // Every kept entry was in the old map, so equal sizes with nothing new means equal sets.
        changed |= by_name.len() != self.by_name.len();
        for slot in slots.values_mut() {
            slot.sort_unstable_by(|a, b| a.cmp_rank(b));
        }
        self.slots = slots;
        self.by_name = by_name;
        if changed {
            self.generation += 1;
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A found file whose name is "<stamp>-<tag>" ordered by the stamp part.
    fn f(name: &str, key: &str) -> Found {
        let stamp_len = name.find('-').unwrap_or(name.len()) as u32;
        Found {
            name: name.into(),
            key: key.into(),
            rank: Rank::Span(0, stamp_len),
        }
    }

    fn history(m: &ResultMap<()>, key: &str) -> Vec<String> {
        m.history(key).map(|e| e.name.to_string()).collect()
    }

    #[test]
    fn newest_by_order_then_name() {
        let mut m = ResultMap::<()>::new();
        assert!(m.upsert(f("2-b", "k")));
        assert!(m.upsert(f("1-b", "k")));
        assert!(m.upsert(f("3-b", "k")));
        assert!(m.upsert(f("3-x", "k")));
        assert!(m.upsert(f("3-a", "k")));
        assert_eq!(history(&m, "k"), ["3-x", "3-b", "3-a", "2-b", "1-b"]);
        assert_eq!(m.key_count(), 1);
        assert_eq!(m.file_count(), 5);
        assert_eq!(m.latest("k").unwrap().order_text(), Some("3"));
    }

    #[test]
    fn upsert_is_idempotent_and_counts_generations() {
        let mut m = ResultMap::<()>::new();
        assert!(m.upsert(f("1-a", "k")));
        let g = m.generation();
        assert!(!m.upsert(f("1-a", "k")));
        assert_eq!(m.generation(), g);
        let moved = Found {
            rank: Rank::Span(2, 3),
            ..f("1-a", "k")
        };
        assert!(m.upsert(moved));
        assert_eq!(m.generation(), g + 1);
        assert_eq!(m.file_count(), 1);
        assert_eq!(m.latest("k").unwrap().order_text(), Some("a"));
    }

    #[test]
    fn deleting_the_newest_restores_the_previous_one() {
        let mut m = ResultMap::<()>::new();
        m.upsert(f("1", "k"));
        m.upsert(f("2", "k"));
        assert!(m.remove("2"));
        assert_eq!(&*m.latest("k").unwrap().name, "1");
        assert!(!m.remove("2"));
        assert!(m.remove("1"));
        assert!(m.latest("k").is_none());
        assert_eq!(m.key_count(), 0);
    }

    #[test]
    fn replace_all_keeps_unchanged_entries_and_reports_changes() {
        let mut m = ResultMap::<u8>::new();
        m.replace_all(vec![f("1", "k"), f("2", "k")]);
        m.latest("k").unwrap().cache.set(7).unwrap();
        let g = m.generation();
        assert!(!m.replace_all(vec![f("2", "k"), f("1", "k")]));
        assert_eq!(m.generation(), g);
        assert_eq!(m.latest("k").unwrap().cache.get(), Some(&7));
        assert!(m.replace_all(vec![f("1", "k")]));
        assert_eq!(&*m.latest("k").unwrap().name, "1");
        assert!(m.replace_all(vec![f("1", "k"), f("3", "j")]));
        assert_eq!(m.key_count(), 2);
    }

    #[test]
    fn remove_under_drops_a_subtree_only() {
        let mut m = ResultMap::<()>::new();
        m.upsert(f("a/1", "a"));
        m.upsert(f("a/2", "a"));
        m.upsert(f("ab/1", "ab"));
        assert_eq!(m.remove_under("a"), 2);
        assert_eq!(m.file_count(), 1);
        assert!(m.contains_key("ab"));
    }

    #[test]
    fn newer_than() {
        let mut m = ResultMap::<()>::new();
        m.upsert(f("5-b", "k"));
        let e = m.latest("k").unwrap();
        assert!(e.is_newer_than(&Order::Text("4".into()), None));
        assert!(!e.is_newer_than(&Order::Text("5".into()), None));
        assert!(e.is_newer_than(&Order::Text("5".into()), Some("5-a")));
        assert!(!e.is_newer_than(&Order::Text("5".into()), Some("5-b")));
        assert_eq!(e.order(), Order::Text("5".into()));
    }
}
