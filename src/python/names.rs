//! A per-thread cache of parameter names already split into key segments.
//!
//! A sweep keys every trial with the same few dozen names, and its dicts reuse the same name
//! objects (the grid and the sampler build each name once). Reading a name's UTF-8 and splitting
//! it on dots was a third of the cost of a key; a cache hit is one pointer compare. The cache
//! holds a strong reference to every name it knows, so a cached address cannot be freed and
//! reused by another string while it is in the table.

use std::cell::RefCell;
use std::mem::ManuallyDrop;

use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::keys::split_key;

/// Slots in the table (a power of two); a sweep has far fewer names.
const SLOTS: usize = 256;
/// Split names kept before the whole cache is dropped and refilled.
const MAX_BYTES: usize = 64 * 1024;

pub struct NameCache {
    slots: Vec<Option<Slot>>,
    /// Every cached name's segments, back to back.
    bytes: Vec<u8>,
}

struct Slot {
    name: Py<PyString>,
    start: u32,
    len: u32,
}

thread_local! {
    // Never dropped: a thread's exit (or the process's, after the interpreter is gone) must not
    // run Python decrefs. What it leaks is bounded by SLOTS names per thread.
    static NAMES: ManuallyDrop<RefCell<NameCache>> = ManuallyDrop::new(RefCell::new(NameCache::new()));
}

/// Runs `f` with this thread's cache, or with none if it is already in use (a reentrant call).
pub fn with_names<R>(f: impl FnOnce(Option<&mut NameCache>) -> R) -> R {
    let mut f = Some(f);
    let out = NAMES
        .try_with(|cell| {
            let mut names = cell.try_borrow_mut().ok()?;
            let f = f.take()?;
            Some(f(Some(&mut names)))
        })
        .ok()
        .flatten();
    match (out, f.take()) {
        (Some(out), _) => out,
        (None, Some(f)) => f(None),
        // `f` is only taken on the path that returns its result.
        (None, None) => unreachable!("with_names lost its closure"),
    }
}

impl NameCache {
    fn new() -> Self {
        NameCache {
            slots: (0..SLOTS).map(|_| None).collect(),
            bytes: Vec::with_capacity(4096),
        }
    }

    /// The segments of `name`, or None if it is not valid UTF-8 or not a valid key (the caller
    /// takes the uncached way, which reports the error).
    #[inline]
    pub fn split(&mut self, name: &Bound<'_, PyString>) -> Option<&[u8]> {
        let ptr = name.as_ptr() as usize;
        // Objects are 16-byte aligned: drop the low bits, fold in higher ones.
        let index = ((ptr >> 4) ^ (ptr >> 12)) & (SLOTS - 1);
        let hit = matches!(&self.slots[index], Some(slot) if slot.name.as_ptr() as usize == ptr);
        if !hit {
            self.insert(index, name)?;
        }
        let slot = self.slots[index].as_ref()?;
        let start = slot.start as usize;
        self.bytes.get(start..start + slot.len as usize)
    }

    #[cold]
    fn insert(&mut self, index: usize, name: &Bound<'_, PyString>) -> Option<()> {
        let text = name.to_str().ok()?;
        if text.len() > MAX_BYTES {
            return None;
        }
        if self.bytes.len() + text.len() > MAX_BYTES {
            self.slots.iter_mut().for_each(|slot| *slot = None);
            self.bytes.clear();
        }
        let start = self.bytes.len();
        if !split_key(text, &mut self.bytes) {
            return None;
        }
        self.slots[index] = Some(Slot {
            name: name.clone().unbind(),
            start: start as u32,
            len: (self.bytes.len() - start) as u32,
        });
        Some(())
    }
}
