//! Canonical trial keys: a stable hash of a parameter set (or a whole config), so that equal
//! configs get equal keys on every machine and in every run, and configs that differ in any value
//! or type get different keys.
//!
//! # Encoding, version 1 (frozen: changing anything here changes every stored key)
//!
//! Paths first. Walking a mapping from its root, every key is split on `.` into segments (so the
//! dotted `{"a.b": 1}` and the nested `{"a": {"b": 1}}` are the same thing), a non-empty dict is
//! descended into, and anything else — a scalar, a list, an empty dict — is a *leaf* at the path of
//! segments that leads to it. Dicts inside lists are values, not paths: their keys are not split.
//! A segment may not be empty and may not contain NUL; two leaves may not share a path and a leaf
//! may not sit on the path of another (`{"a": 1, "a.b": 2}`): those are errors.
//!
//! ```text
//! key      = XXH3-128(DOMAIN || u64(n) || leaf*), seed 0, as 32 lowercase hex digits of its
//!            canonical (big-endian) form — what `xxhash.xxh3_128_hexdigest` prints
//! DOMAIN   = b"fastgrid.trial_key.v1\0"
//! leaf     = str(path) value      path = its segments joined by one 0x00 byte;
//!                                 leaves in ascending byte order of that joined path
//! value    = b"N"                         null
//!          | b"T" | b"F"                  true, false
//!          | b"I" i64                     int (two's complement, little-endian)
//!          | b"D" u64                     float: IEEE-754 bits, little-endian; every NaN is
//!                                         0x7ff8000000000000; -0.0 and 0.0 stay distinct
//!          | b"S" str                     string
//!          | b"L" u64(n) value*           list (tuples are lists)
//!          | b"M" u64(n) (str value)*     dict as a value, entries in ascending byte order of key
//! str      = u64(byte length) UTF-8 bytes
//! u64, i64 = 8 bytes little-endian
//! ```
//!
//! Every production is length-prefixed or fixed-size, so the encoding is injective: `true` and
//! `1`, `1` and `1.0`, `"1"` and `1` all hash differently. Joining with NUL and sorting bytewise
//! orders paths segment by segment, so a path sorts right before the paths under it.
//!
//! Why XXH3-128 and not SHA-256: a key is computed for every trial suggestion and must cost far
//! less than serializing the parameters; SHA-256 of a typical ~500-byte encoding took about
//! 0.9 µs on this machine, most of that budget, where XXH3 takes tens of nanoseconds. XXH3 is
//! specified bit-for-bit and platform-independent, and 128 bits make an accidental collision
//! among a sweep's trials negligible; keys identify trials, they are not a defence against
//! forged inputs.

use std::cell::RefCell;

use xxhash_rust::xxh3::xxh3_128;

use crate::error::{Error, Result};
use crate::value::{Map, Value};

/// Prefix of every hashed encoding; bump the version to change the encoding.
pub const DOMAIN: &[u8] = b"fastgrid.trial_key.v1\0";

/// Hex digits in a key (128 bits).
pub const KEY_HEX_LEN: usize = 32;

const SEP: u8 = 0;
const CANONICAL_NAN: u64 = 0x7ff8_0000_0000_0000;

/// The canonical key of a parameter set or config tree (a `Value::Map`).
pub fn trial_key(params: &Value) -> Result<String> {
    let map = params
        .as_map()
        .ok_or_else(|| Error::spec("", format!("expected a dict, got {}", params.type_name())))?;
    with_builder(|builder| {
        builder.add_map(map)?;
        Ok(builder.finish()?.to_string())
    })
}

/// A builder larger than this after a call (a huge parameter set) is dropped rather than kept.
const KEEP_CAPACITY: usize = 64 * 1024;

thread_local! {
    static BUILDER: RefCell<KeyBuilder> = RefCell::new(KeyBuilder::new());
}

/// Runs `f` with an empty builder, reusing this thread's buffers: a key is computed per trial
/// suggestion, and the allocations of a fresh builder were a tenth of its cost. A reentrant call
/// (Python code run during a walk, such as a custom mapping's `items()`, asking for a key
/// itself) gets a fresh builder.
pub fn with_builder<R>(f: impl FnOnce(&mut KeyBuilder) -> R) -> R {
    let mut f = Some(f);
    let reused = BUILDER
        .try_with(|cell| {
            let mut builder = cell.try_borrow_mut().ok()?;
            let f = f.take()?;
            builder.reset();
            let out = f(&mut builder);
            if builder.oversized() {
                *builder = KeyBuilder::new();
            }
            Some(out)
        })
        .ok()
        .flatten();
    match (reused, f.take()) {
        (Some(out), _) => out,
        (None, Some(f)) => f(&mut KeyBuilder::new()),
        // `f` is only taken on the path that returns its result.
        (None, None) => unreachable!("with_builder lost its closure"),
    }
}

/// Appends `key` split into segments (its dots turned into separators) to `out`, for
/// `KeyBuilder::leaf_at_split` and `enter_split`; false, leaving `out` as it was, if the key has
/// an empty segment or a NUL (`leaf_at` then says which, with the path).
pub fn split_key(key: &str, out: &mut Vec<u8>) -> bool {
    push_segments(out, key.as_bytes()).is_ok()
}

/// Collects the leaves of a parameter set, then sorts, checks and hashes them. The bindings layer
/// drives it straight from Python objects (no intermediate tree); `trial_key` drives it from a
/// `Value`, so both produce the same encoding by construction.
#[derive(Debug)]
pub struct KeyBuilder {
    /// The path being walked, segments joined by NUL.
    prefix: Vec<u8>,
    /// The hashed bytes under construction: the header, then each leaf's production
    /// (`str(path) value`) in the order the leaves were added.
    buf: Vec<u8>,
    leaves: Vec<Leaf>,
    /// The encoding in sorted order, when the leaves did not come sorted.
    sorted: Vec<u8>,
    memo: Memo,
}

/// One leaf's span in `buf`. Offsets are 32-bit to keep the sorted records at 32 bytes; `finish`
/// refuses an encoding that does not fit.
#[derive(Debug, Clone, Copy)]
struct Leaf {
    /// The path's first 16 bytes, big-endian and zero-padded: ordering by it first and by the
    /// whole path on a tie is the same as ordering by the path (no path holds two NULs in a row
    /// or ends with one), and cheaper.
    head: u128,
    start: u32,
    /// Where the next leaf starts (set by `finish`).
    end: u32,
    path_len: u32,
    /// Position in insertion order.
    index: u32,
}

impl Leaf {
    fn path<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        let start = self.start as usize + 8;
        &buf[start..start + self.path_len as usize]
    }
}

/// Where `enter` found the prefix, to give back to `leave`.
#[derive(Debug, Clone, Copy)]
pub struct Mark(usize);

const HEADER_LEN: usize = DOMAIN.len() + 8;

impl Default for KeyBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyBuilder {
    pub fn new() -> Self {
        // Sized for a typical trial (a few dozen parameters) so that no buffer grows.
        let mut buf = Vec::with_capacity(1024);
        buf.extend_from_slice(DOMAIN);
        buf.extend_from_slice(&[0; 8]);
        KeyBuilder {
            prefix: Vec::with_capacity(64),
            buf,
            leaves: Vec::with_capacity(32),
            sorted: Vec::with_capacity(1024),
            memo: Memo::default(),
        }
    }

    fn oversized(&self) -> bool {
        self.buf.capacity().max(self.sorted.capacity()) > KEEP_CAPACITY
            || self.memo.paths.capacity() > KEEP_CAPACITY
    }

    /// Forgets every leaf, keeping the buffers.
    pub fn reset(&mut self) {
        self.prefix.clear();
        self.buf.truncate(HEADER_LEN);
        self.leaves.clear();
    }

    /// Descends into `key` (split on dots). Pair with `leave(mark)`.
    pub fn enter(&mut self, key: &str) -> Result<Mark> {
        let mark = self.open_section();
        if let Err(what) = push_segments(&mut self.prefix, key.as_bytes()) {
            self.prefix.truncate(mark.0);
            let path = join_path(&self.prefix, key);
            return Err(Error::spec(path, format!("key {key:?} {what}")));
        }
        Ok(mark)
    }

    /// `enter` for a key already split by `split_key`.
    pub fn enter_split(&mut self, segments: &[u8]) -> Mark {
        let mark = self.open_section();
        self.prefix.extend_from_slice(segments);
        mark
    }

    fn open_section(&mut self) -> Mark {
        let mark = Mark(self.prefix.len());
        if !self.prefix.is_empty() {
            self.prefix.push(SEP);
        }
        mark
    }

    pub fn leave(&mut self, mark: Mark) {
        self.prefix.truncate(mark.0);
    }

    /// Starts a leaf at the current path plus `key` (split on dots): `enter`, `leaf` and `leave`
    /// in one step, writing the path once.
    pub fn leaf_at(&mut self, key: &str) -> Result<Encoder<'_>> {
        let start = self.open_leaf(key.len());
        if let Err(what) = push_segments(&mut self.buf, key.as_bytes()) {
            self.buf.truncate(start);
            let path = join_path(&self.prefix, key);
            return Err(Error::spec(path, format!("key {key:?} {what}")));
        }
        Ok(self.close_leaf(start))
    }

    /// `leaf_at` for a key already split by `split_key`: callers that see the same names again
    /// and again split each once.
    #[inline]
    pub fn leaf_at_split(&mut self, segments: &[u8]) -> Encoder<'_> {
        let start = self.open_leaf(segments.len());
        self.buf.extend_from_slice(segments);
        self.close_leaf(start)
    }

    /// Writes the length placeholder and the current prefix of a leaf; returns where it starts.
    #[inline(always)]
    fn open_leaf(&mut self, key_len: usize) -> usize {
        let buf = &mut self.buf;
        let start = buf.len();
        // Room for the length, the path, the head's padding and a scalar value, so that nothing
        // below reallocates.
        buf.reserve(8 + self.prefix.len() + 1 + key_len + 16 + 32);
        buf.extend_from_slice(&[0; 8]);
        if !self.prefix.is_empty() {
            buf.extend_from_slice(&self.prefix);
            buf.push(SEP);
        }
        start
    }

    /// Fills in the path length of the leaf at `start` and records it.
    #[inline(always)]
    fn close_leaf(&mut self, start: usize) -> Encoder<'_> {
        let buf = &mut self.buf;
        let path_start = start + 8;
        let path_len = buf.len() - path_start;
        buf[start..path_start].copy_from_slice(&(path_len as u64).to_le_bytes());
        // Zero-pad the path to read its head as one fixed-size load, then drop the padding.
        buf.extend_from_slice(&[0; 16]);
        let mut head = [0u8; 16];
        head.copy_from_slice(&buf[path_start..path_start + 16]);
        buf.truncate(path_start + path_len);
        self.leaves.push(Leaf {
            head: u128::from_be_bytes(head),
            start: start as u32,
            end: 0,
            path_len: path_len as u32,
            index: self.leaves.len() as u32,
        });
        Encoder { out: buf }
    }

    /// Adds every leaf of a dict of parameters at the current path.
    pub fn add_map(&mut self, map: &Map) -> Result<()> {
        for (key, value) in map {
            match value {
                Value::Map(inner) if !inner.is_empty() => {
                    let mark = self.enter(key)?;
                    self.add_map(inner)?;
                    self.leave(mark);
                }
                other => self.leaf_at(key)?.value(other),
            }
        }
        Ok(())
    }

    /// Sorts the leaves, refuses duplicate or overlapping paths and returns the key. The builder
    /// must be `reset` before it is used again.
    pub fn finish(&mut self) -> Result<Key> {
        if u32::try_from(self.buf.len()).is_err() {
            return Err(Error::Invalid(
                "parameters too large to key (their encoding exceeds 4 GiB)".into(),
            ));
        }
        // Each span ends where the next one (in insertion order) begins.
        let mut in_order = true;
        let mut next_start = self.buf.len() as u32;
        for i in (0..self.leaves.len()).rev() {
            let leaf = &mut self.leaves[i];
            leaf.end = next_start;
            next_start = leaf.start;
            if let Some(next) = self.leaves.get(i + 1) {
                in_order &= self.leaves[i].head < next.head;
            }
        }
        let count = (self.leaves.len() as u64).to_le_bytes();
        let buf = &self.buf;
        let leaves = &mut self.leaves;
        let data = &mut self.sorted;
        data.clear();
        data.reserve(buf.len());
        data.extend_from_slice(&buf[..DOMAIN.len()]);
        data.extend_from_slice(&count);
        if self.memo.matches(leaves, buf) {
            // The same paths in the same order as the last key: its order holds, and so does
            // its verdict on duplicates and overlaps.
            for &i in &self.memo.order {
                let leaf = &leaves[i as usize];
                data.extend_from_slice(&buf[leaf.start as usize..leaf.end as usize]);
            }
            return Ok(hex128(xxh3_128(data)));
        }
        if !in_order {
            leaves.sort_unstable_by_key(|leaf| leaf.head);
            // Paths sharing their first 16 bytes are rare: only then order by whole paths.
            if leaves.windows(2).any(|w| w[0].head == w[1].head) {
                leaves.sort_unstable_by(|a, b| {
                    a.head
                        .cmp(&b.head)
                        .then_with(|| a.path(buf).cmp(b.path(buf)))
                });
            }
        }
        check_paths(leaves, buf)?;
        self.memo.remember(leaves, buf);
        let hash = if in_order {
            // Inputs built in a stable sorted order: hash the buffer as it is.
            self.buf[DOMAIN.len()..HEADER_LEN].copy_from_slice(&count);
            xxh3_128(&self.buf)
        } else {
            for leaf in leaves.iter() {
                data.extend_from_slice(&buf[leaf.start as usize..leaf.end as usize]);
            }
            xxh3_128(data)
        };
        Ok(hex128(hash))
    }
}

/// Refuses duplicate paths and a path that is also a section, in sorted leaves.
fn check_paths(leaves: &[Leaf], buf: &[u8]) -> Result<()> {
    for pair in leaves.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        // `b` can only start with `a`'s path if their heads agree over all of `a`'s head.
        let common = ((a.head ^ b.head).leading_zeros() / 8) as usize;
        if common < (a.path_len as usize).min(16) {
            continue;
        }
        let (a, b) = (a.path(buf), b.path(buf));
        if a == b {
            return Err(Error::spec(
                dotted(a),
                "given more than once (a dotted key and a nested dict name the same path)",
            ));
        }
        if b.len() > a.len() && b.starts_with(a) && b[a.len()] == SEP {
            return Err(Error::spec(
                dotted(b),
                format!(
                    "{:?} is given a value and is also used as a section",
                    dotted(a)
                ),
            ));
        }
    }
    Ok(())
}

/// The paths of the last key that passed the checks, and their sorted order. A sweep keys trial
/// after trial with the same names in the same order: comparing against the last key's paths
/// costs a fraction of sorting and checking them again.
#[derive(Debug, Default)]
struct Memo {
    /// Per leaf in insertion order: head, path length, and where its path is in `paths`.
    leaves: Vec<(u128, u32, u32)>,
    paths: Vec<u8>,
    /// Insertion indices in sorted order.
    order: Vec<u32>,
}

impl Memo {
    /// Whether `leaves` (in insertion order) have exactly the remembered paths.
    fn matches(&self, leaves: &[Leaf], buf: &[u8]) -> bool {
        leaves.len() == self.leaves.len()
            && leaves
                .iter()
                .zip(&self.leaves)
                .all(|(leaf, &(head, len, at))| {
                    // A head and a length settle a path of up to 16 bytes; longer ones compare the rest.
                    leaf.head == head
                        && leaf.path_len == len
                        && (len <= 16 || {
                            let at = at as usize + 16;
                            leaf.path(buf)[16..] == self.paths[at..at - 16 + len as usize]
                        })
                })
    }

    /// Remembers sorted, checked `leaves`.
    fn remember(&mut self, leaves: &[Leaf], buf: &[u8]) {
        self.leaves.clear();
        self.leaves.resize(leaves.len(), (0, 0, 0));
        self.paths.clear();
        self.order.clear();
        for leaf in leaves {
            let slot = &mut self.leaves[leaf.index as usize];
            *slot = (leaf.head, leaf.path_len, self.paths.len() as u32);
            self.paths.extend_from_slice(leaf.path(buf));
            self.order.push(leaf.index);
        }
    }
}

/// Appends the encoding of one value. A list header must be followed by exactly that many values.
pub struct Encoder<'a> {
    out: &'a mut Vec<u8>,
}

impl Encoder<'_> {
    pub fn null(&mut self) {
        self.out.push(b'N');
    }

    pub fn bool(&mut self, b: bool) {
        self.out.push(if b { b'T' } else { b'F' });
    }

    pub fn int(&mut self, i: i64) {
        self.tagged(b'I', i.to_le_bytes());
    }

    pub fn float(&mut self, f: f64) {
        let bits = if f.is_nan() {
            CANONICAL_NAN
        } else {
            f.to_bits()
        };
        self.tagged(b'D', bits.to_le_bytes());
    }

    pub fn str(&mut self, s: &str) {
        self.out.push(b'S');
        self.raw_str(s);
    }

    pub fn list_header(&mut self, len: usize) {
        self.tagged(b'L', (len as u64).to_le_bytes());
    }

    pub fn value(&mut self, value: &Value) {
        match value {
            Value::Null => self.null(),
            Value::Bool(b) => self.bool(*b),
            Value::Int(i) => self.int(*i),
            Value::Float(f) => self.float(*f),
            Value::Str(s) => self.str(s),
            Value::List(items) => {
                self.list_header(items.len());
                for item in items {
                    self.value(item);
                }
            }
            Value::Map(map) => {
                self.tagged(b'M', (map.len() as u64).to_le_bytes());
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                for (key, item) in entries {
                    self.raw_str(key);
                    self.value(item);
                }
            }
        }
    }

    /// A tag and an 8-byte payload as one fixed-size append.
    fn tagged(&mut self, tag: u8, payload: [u8; 8]) {
        let mut bytes = [tag; 9];
        bytes[1..].copy_from_slice(&payload);
        self.out.extend_from_slice(&bytes);
    }

    fn raw_str(&mut self, s: &str) {
        self.out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        self.out.extend_from_slice(s.as_bytes());
    }
}

fn dotted(path: &[u8]) -> String {
    String::from_utf8_lossy(path).replace('\0', ".")
}

fn join_path(prefix: &[u8], key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{}.{key}", dotted(prefix))
    }
}

fn hex128(hash: u128) -> Key {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; KEY_HEX_LEN];
    for (pair, byte) in out.chunks_exact_mut(2).zip(hash.to_be_bytes()) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0xf)];
    }
    Key(out)
}

/// Appends `key` to `out` with its dots turned into separators; on an empty segment or a NUL,
/// leaves `out` as it was and says which.
fn push_segments(out: &mut Vec<u8>, key: &[u8]) -> std::result::Result<(), &'static str> {
    let start = out.len();
    out.extend_from_slice(key);
    let scanned = dots_to_separators(&mut out[start..]);
    if scanned.is_err() {
        out.truncate(start);
    }
    scanned
}

/// Turns the dots of a key into separators and refuses empty segments and NULs. Name bytes
/// (letters, digits, `_`) are all above `.`, so one compare per byte settles the common case.
fn dots_to_separators(key: &mut [u8]) -> std::result::Result<(), &'static str> {
    let mut after_dot = true;
    for byte in key.iter_mut() {
        if *byte > b'.' {
            after_dot = false;
            continue;
        }
        match *byte {
            b'.' if after_dot => return Err("has an empty segment"),
            b'.' => {
                *byte = SEP;
                after_dot = true;
            }
            SEP => return Err("contains a NUL character"),
            _ => after_dot = false,
        }
    }
    if after_dot {
        return Err("has an empty segment");
    }
    Ok(())
}

/// A trial key: 32 lowercase hex digits, kept on the stack until someone needs a string.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key([u8; KEY_HEX_LEN]);

impl Key {
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, Value)]) -> Value {
        Value::map_from(entries.iter().map(|(k, v)| (*k, v.clone())))
    }

    fn key(v: &Value) -> String {
        trial_key(v).unwrap()
    }

    /// XXH3-128 itself, against the reference implementation's published value for "abc"
    /// (libxxhash, as printed by `xxhash.xxh3_128_hexdigest(b"abc")`), so a changed hash crate
    /// cannot silently change every key.
    #[test]
    fn hash_is_reference_xxh3_128() {
        assert_eq!(
            hex128(xxh3_128(b"abc")).as_str(),
            "06b05ab6733a618578af5f94892f3950"
        );
    }

    /// The documented encoding, written out independently of the builder.
    #[test]
    fn matches_the_documented_encoding() {
        let params = map(&[
            ("b", Value::Int(-2)),
            ("a", map(&[("x", Value::Bool(true))])),
        ]);
        let mut bytes = DOMAIN.to_vec();
        bytes.extend_from_slice(&2u64.to_le_bytes());
        bytes.extend_from_slice(&3u64.to_le_bytes());
        bytes.extend_from_slice(b"a\0x");
        bytes.push(b'T');
        bytes.extend_from_slice(&1u64.to_le_bytes());
        bytes.extend_from_slice(b"b");
        bytes.push(b'I');
        bytes.extend_from_slice(&(-2i64).to_le_bytes());
        let expected = format!("{:032x}", xxh3_128(&bytes));
        assert_eq!(hex128(xxh3_128(&bytes)).as_str(), expected);
        assert_eq!(key(&params), expected);
        assert_eq!(expected.len(), KEY_HEX_LEN);
    }

    #[test]
    fn order_of_keys_does_not_matter() {
        let a = map(&[("x", Value::Int(1)), ("y", Value::Float(2.5))]);
        let b = map(&[("y", Value::Float(2.5)), ("x", Value::Int(1))]);
        assert_eq!(key(&a), key(&b));
    }

    #[test]
    fn paths_sharing_their_first_16_bytes_sort_by_the_rest() {
        let names = [
            "execution.slippage_model",
            "execution.slippage_bps",
            "execution.slippage",
            "execution.slippage.cap",
        ];
        let forward = map(&names[..3]
            .iter()
            .map(|n| (*n, Value::Int(1)))
            .collect::<Vec<_>>());
        let backward = map(&names[..3]
            .iter()
            .rev()
            .map(|n| (*n, Value::Int(1)))
            .collect::<Vec<_>>());
        assert_eq!(key(&forward), key(&backward));
        // The overlap of "execution.slippage" and "execution.slippage.cap" is found after the
        // tie-break, whatever the order they came in.
        for order in [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]] {
            let params = map(&order
                .iter()
                .map(|&i| (names[i], Value::Int(1)))
                .collect::<Vec<_>>());
            let err = trial_key(&params).unwrap_err();
            assert!(
                matches!(&err, Error::Spec { path, .. } if path == "execution.slippage.cap"),
                "{err}"
            );
        }
    }

    #[test]
    fn dotted_and_nested_are_the_same() {
        let dotted = map(&[
            ("risk.stop", Value::Float(0.1)),
            ("risk.size", Value::Int(3)),
        ]);
        let nested = map(&[(
            "risk",
            map(&[("size", Value::Int(3)), ("stop", Value::Float(0.1))]),
        )]);
        let mixed = map(&[
            ("risk", map(&[("stop", Value::Float(0.1))])),
            ("risk.size", Value::Int(3)),
        ]);
        assert_eq!(key(&dotted), key(&nested));
        assert_eq!(key(&dotted), key(&mixed));
    }

    #[test]
    fn types_are_kept_apart() {
        let variants = [
            Value::Bool(true),
            Value::Int(1),
            Value::Float(1.0),
            Value::Str("1".into()),
            Value::List(vec![Value::Int(1)]),
            Value::Null,
            Value::Float(0.0),
            Value::Float(-0.0),
            Value::Map(Map::new()),
        ];
        let keys: std::collections::HashSet<_> = variants
            .iter()
            .map(|v| key(&map(&[("p", v.clone())])))
            .collect();
        assert_eq!(keys.len(), variants.len());
    }

    #[test]
    fn every_nan_is_one_value() {
        let quiet = map(&[("p", Value::Float(f64::NAN))]);
        let other = map(&[("p", Value::Float(f64::from_bits(0x7ff8_0000_0000_0001)))]);
        let negative = map(&[("p", Value::Float(-f64::NAN))]);
        assert_eq!(key(&quiet), key(&other));
        assert_eq!(key(&quiet), key(&negative));
    }

    #[test]
    fn list_boundaries_are_part_of_the_key() {
        let flat = map(&[(
            "p",
            Value::List(vec![Value::Int(1), Value::Int(2), Value::Int(3)]),
        )]);
        let nested = map(&[(
            "p",
            Value::List(vec![
                Value::List(vec![Value::Int(1), Value::Int(2)]),
                Value::Int(3),
            ]),
        )]);
        assert_ne!(key(&flat), key(&nested));
    }

    #[test]
    fn dicts_inside_lists_are_sorted_but_not_split() {
        let a = Value::List(vec![map(&[("x", Value::Int(1)), ("y.z", Value::Int(2))])]);
        let b = Value::List(vec![map(&[("y.z", Value::Int(2)), ("x", Value::Int(1))])]);
        let c = Value::List(vec![map(&[
            ("x", Value::Int(1)),
            ("y", map(&[("z", Value::Int(2))])),
        ])]);
        assert_eq!(key(&map(&[("p", a.clone())])), key(&map(&[("p", b)])));
        assert_ne!(key(&map(&[("p", a)])), key(&map(&[("p", c)])));
    }

    #[test]
    fn empty_section_differs_from_nothing() {
        let empty = map(&[("a", Value::Map(Map::new()))]);
        assert_ne!(key(&empty), key(&map(&[])));
    }

    #[test]
    fn paths_sort_segment_by_segment() {
        // "a-c" sorts between "a" and "a.b" as strings; the conflict must still be found.
        let params = map(&[
            ("a", Value::Int(1)),
            ("a-c", Value::Int(2)),
            ("a.b", Value::Int(3)),
        ]);
        let err = trial_key(&params).unwrap_err();
        assert!(
            matches!(&err, Error::Spec { path, .. } if path == "a.b"),
            "{err}"
        );
    }

    #[test]
    fn duplicate_paths_are_refused() {
        let params = map(&[("a.b", Value::Int(1)), ("a", map(&[("b", Value::Int(2))]))]);
        let err = trial_key(&params).unwrap_err();
        assert!(err.to_string().contains("more than once"), "{err}");
        assert!(
            matches!(&err, Error::Spec { path, .. } if path == "a.b"),
            "{err}"
        );
    }

    #[test]
    fn bad_segments_are_refused() {
        for bad in ["a..b", ".a", "a.", "", "a\0b"] {
            let err = trial_key(&map(&[(bad, Value::Int(1))])).unwrap_err();
            assert!(matches!(err, Error::Spec { .. }), "{bad:?}: {err}");
        }
        let nested = map(&[("sec", map(&[("x..y", Value::Int(1))]))]);
        let err = trial_key(&nested).unwrap_err();
        assert!(
            matches!(&err, Error::Spec { path, .. } if path == "sec.x..y"),
            "{err}"
        );
    }

    #[test]
    fn key_scan_matches_a_naive_split() {
        fn naive(key: &[u8]) -> Option<Vec<u8>> {
            let segments: Vec<&[u8]> = key.split(|b| *b == b'.').collect();
            if segments.iter().any(|s| s.is_empty()) || key.contains(&0) {
                return None;
            }
            Some(segments.join(&0u8))
        }
        // Bytes on both sides of '.', NUL, and a UTF-8 lead byte (above every ASCII byte).
        let alphabet = [b'a', b'.', 0u8, b'-', b'/', 0xc3];
        // Every string of up to 5 symbols; longer ones with one or two dots or a NUL at each
        // position (a word is 8 bytes, so pairs straddle word boundaries).
        let mut cases: Vec<Vec<u8>> = vec![Vec::new()];
        for len in 1..=5u32 {
            for n in 0..6usize.pow(len) {
                cases.push(
                    (0..len)
                        .map(|i| alphabet[(n / 6usize.pow(i)) % 6])
                        .collect(),
                );
            }
        }
        for len in [8, 9, 15, 16, 17, 20, 24] {
            for pos in 0..len {
                for sym in [b'.', 0u8] {
                    let mut long = vec![b'x'; len];
                    long[pos] = sym;
                    cases.push(long.clone());
                    if pos + 1 < len {
                        long[pos + 1] = b'.';
                        cases.push(long);
                    }
                }
            }
        }
        cases.push(b"thresholds.entry_z.more_than_eight".to_vec());
        for case in cases {
            // Appends after what is already there, which it leaves alone.
            let mut out = b"pre".to_vec();
            let got = push_segments(&mut out, &case)
                .ok()
                .map(|()| out[3..].to_vec());
            assert_eq!(got, naive(&case), "{case:?}");
            assert_eq!(&out[..3], b"pre");
        }
    }

    /// A failed key leaves nothing behind in the reused builder, and a key asked for while
    /// another is being built (reentrancy) is right too.
    #[test]
    fn reused_builders_start_clean() {
        let good = map(&[("a.b", Value::Int(1)), ("c", Value::Str("x".into()))]);
        let expected = key(&good);
        let duplicate = map(&[("a.b", Value::Int(1)), ("a", map(&[("b", Value::Int(2))]))]);
        assert!(trial_key(&duplicate).is_err());
        assert!(trial_key(&map(&[("x..y", Value::Int(1))])).is_err());
        assert_eq!(key(&good), expected);
        let inner = with_builder(|outer| {
            outer.leaf_at("zzz").unwrap().int(5);
            key(&good)
        });
        assert_eq!(inner, expected);
        let huge = map(&[("s", Value::Str("x".repeat(KEEP_CAPACITY * 2).into()))]);
        assert_ne!(key(&huge), expected);
        assert_eq!(key(&good), expected);
    }

    /// Paths that agree in their first 16 bytes and their length but not after must not be
    /// taken for the last key's paths.
    #[test]
    fn remembered_paths_are_compared_whole() {
        let a = map(&[
            ("execution.slippage_model_a", Value::Int(1)),
            ("b", Value::Int(2)),
        ]);
        let b = map(&[
            ("execution.slippage_model_b", Value::Int(1)),
            ("b", Value::Int(2)),
        ]);
        let c = map(&[
            ("execution.slippage_model_a", Value::Int(1)),
            ("a", Value::Int(2)),
        ]);
        let first = [key(&a), key(&b), key(&c)];
        assert_ne!(first[0], first[1]);
        assert_ne!(first[0], first[2]);
        for _ in 0..2 {
            assert_eq!([key(&a), key(&b), key(&c)], first);
            assert_eq!(
                [key(&a), key(&a), key(&b), key(&b)],
                [0, 0, 1, 1].map(|i| first[i].clone())
            );
        }
        for params in [&a, &b, &c] {
            assert_eq!(Some(key(params)), naive_key(params));
        }
    }

    /// The straightforward statement of the encoding: collect (path, value bytes), sort, join.
    fn naive_key(params: &Value) -> Option<String> {
        fn value(out: &mut Vec<u8>, v: &Value) {
            match v {
                Value::Null => out.push(b'N'),
                Value::Bool(b) => out.push(if *b { b'T' } else { b'F' }),
                Value::Int(i) => {
                    out.push(b'I');
                    out.extend_from_slice(&i.to_le_bytes());
                }
                Value::Float(f) => {
                    out.push(b'D');
                    let bits = if f.is_nan() {
                        CANONICAL_NAN
                    } else {
                        f.to_bits()
                    };
                    out.extend_from_slice(&bits.to_le_bytes());
                }
                Value::Str(s) => {
                    out.push(b'S');
                    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
                    out.extend_from_slice(s.as_bytes());
                }
                Value::List(items) => {
                    out.push(b'L');
                    out.extend_from_slice(&(items.len() as u64).to_le_bytes());
                    items.iter().for_each(|item| value(out, item));
                }
                Value::Map(m) => {
                    out.push(b'M');
                    out.extend_from_slice(&(m.len() as u64).to_le_bytes());
                    let mut entries: Vec<_> = m.iter().collect();
                    entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                    for (k, item) in entries {
                        out.extend_from_slice(&(k.len() as u64).to_le_bytes());
                        out.extend_from_slice(k.as_bytes());
                        value(out, item);
                    }
                }
            }
        }
        fn leaves(m: &Map, prefix: &[String], out: &mut Vec<(Vec<String>, Vec<u8>)>) -> bool {
            for (k, v) in m {
                let mut path = prefix.to_vec();
                for segment in k.split('.') {
                    if segment.is_empty() || segment.contains('\0') {
                        return false;
                    }
                    path.push(segment.to_owned());
                }
                match v {
                    Value::Map(inner) if !inner.is_empty() => {
                        if !leaves(inner, &path, out) {
                            return false;
                        }
                    }
                    _ => {
                        let mut bytes = Vec::new();
                        value(&mut bytes, v);
                        out.push((path, bytes));
                    }
                }
            }
            true
        }
        let mut found = Vec::new();
        if !leaves(params.as_map()?, &[], &mut found) {
            return None;
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        for pair in found.windows(2) {
            if pair[1].0.starts_with(&pair[0].0) {
                return None;
            }
        }
        let mut data = DOMAIN.to_vec();
        data.extend_from_slice(&(found.len() as u64).to_le_bytes());
        for (path, bytes) in &found {
            let joined = path.join("\0");
            data.extend_from_slice(&(joined.len() as u64).to_le_bytes());
            data.extend_from_slice(joined.as_bytes());
            data.extend_from_slice(bytes);
        }
        Some(format!("{:032x}", xxh3_128(&data)))
    }

    mod generated {
        use super::*;
        use proptest::prelude::*;

        /// Segments with long shared prefixes (heads tie past 16 bytes), a dash that sorts
        /// between '.' and names, non-ASCII, and the occasional bad segment.
        fn segment() -> impl Strategy<Value = String> {
            let pooled = prop::sample::select(vec![
                "a",
                "a-c",
                "b",
                "risk",
                "execution",
                "slippage",
                "slippage_bps",
                "thresholds",
                "entry_z",
                "max_positions_per_symbol",
                "é",
                "x_é_y",
            ]);
            prop_oneof![
                150 => (pooled, "[a-z0-9_]{0,2}").prop_map(|(p, s)| format!("{p}{s}")),
                50 => "[a-z_]{1,20}",
                1 => prop::sample::select(vec!["", "a\0b"]).prop_map(str::to_owned),
            ]
        }

        fn name() -> impl Strategy<Value = String> {
            prop::collection::vec(segment(), 1..4).prop_map(|s| s.join("."))
        }

        fn scalar() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::Int),
                any::<f64>().prop_map(Value::Float),
                prop::sample::select(vec![0.0, -0.0, f64::NAN, 1.0]).prop_map(Value::Float),
                ".{0,12}".prop_map(|s| Value::Str(s.into())),
            ]
        }

        fn leaf() -> impl Strategy<Value = Value> {
            let in_list = scalar().prop_recursive(2, 6, 3, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..3).prop_map(Value::List),
                    prop::collection::vec((".{0,4}", inner), 0..3).prop_map(to_map),
                ]
            });
            prop_oneof![
                6 => scalar(),
                1 => prop::collection::vec(in_list, 0..3).prop_map(Value::List),
                1 => Just(Value::Map(Map::new())),
            ]
        }

        fn to_map(entries: Vec<(String, Value)>) -> Value {
            Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
        }

        fn tree() -> impl Strategy<Value = Value> {
            let flat = prop::collection::vec((name(), leaf()), 0..24).prop_map(to_map);
            flat.prop_recursive(2, 40, 6, |inner| {
                prop::collection::vec((name(), prop_oneof![3 => leaf(), 1 => inner]), 0..6)
                    .prop_map(to_map)
            })
        }

        /// The same paths with every leaf value replaced.
        fn revalue(value: &Value, n: i64) -> Value {
            match value {
                Value::Map(map) if !map.is_empty() => Value::Map(
                    map.iter()
                        .map(|(k, v)| (k.clone(), revalue(v, n)))
                        .collect(),
                ),
                _ => Value::Int(n),
            }
        }

        /// The way the bindings go with cached names: split each key once, then the `_split`
        /// calls.
        fn key_by_split(params: &Value) -> Option<String> {
            fn walk(builder: &mut KeyBuilder, map: &Map) -> bool {
                for (key, value) in map {
                    let mut split = b"junk".to_vec();
                    if !split_key(key, &mut split) {
                        return false;
                    }
                    let split = &split[4..];
                    match value {
                        Value::Map(inner) if !inner.is_empty() => {
                            let mark = builder.enter_split(split);
                            if !walk(builder, inner) {
                                return false;
                            }
                            builder.leave(mark);
                        }
                        other => builder.leaf_at_split(split).value(other),
                    }
                }
                true
            }
            let mut builder = KeyBuilder::new();
            if !walk(&mut builder, params.as_map()?) {
                return None;
            }
            builder.finish().ok().map(|key| key.to_string())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]
            #[test]
            fn builder_matches_the_naive_encoding(params in tree()) {
                let expected = naive_key(&params);
                prop_assert_eq!(trial_key(&params).ok(), expected.clone());
                prop_assert_eq!(key_by_split(&params), expected);
            }

            /// Keys of the same names with new values, right after one another (the builder
            /// reuses the last key's order), and of other names again.
            #[test]
            fn remembered_order_matches_the_naive_encoding(params in tree(), other in tree()) {
                let _ = trial_key(&params);
                for each in [revalue(&params, 7), revalue(&params, -1), other.clone(), params] {
                    prop_assert_eq!(trial_key(&each).ok(), naive_key(&each));
                }
            }
        }
    }

    #[test]
    fn a_non_dict_is_refused() {
        assert!(trial_key(&Value::Int(1)).is_err());
    }
}
