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
    let mut builder = KeyBuilder::new();
    builder.add_map(map)?;
    Ok(builder.finish()?.to_string())
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
}

/// One leaf's span in `buf`: `start..` the next leaf's start (or the end of `buf`).
#[derive(Debug, Clone, Copy)]
struct Leaf {
    start: usize,
    path_len: usize,
    /// The path's first 16 bytes, big-endian and zero-padded: ordering by it first and by the
    /// whole path on a tie is the same as ordering by the path (no path holds two NULs in a row
    /// or ends with one), and cheaper.
    head: u128,
}

impl Leaf {
    fn path<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        &buf[self.start + 8..self.start + 8 + self.path_len]
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
        }
    }

    /// Descends into `key` (split on dots). Pair with `leave(mark)`.
    pub fn enter(&mut self, key: &str) -> Result<Mark> {
        let mark = Mark(self.prefix.len());
        if !self.prefix.is_empty() {
            self.prefix.push(SEP);
        }
        // Copy the key, then turn its dots into separators in place while checking it.
        let start = self.prefix.len();
        self.prefix.extend_from_slice(key.as_bytes());
        let bad = dots_to_separators(&mut self.prefix[start..]).err();
        if let Some(what) = bad {
            self.prefix.truncate(mark.0);
            let path = join_path(&self.prefix, key);
            return Err(Error::spec(path, format!("key {key:?} {what}")));
        }
        Ok(mark)
    }

    pub fn leave(&mut self, mark: Mark) {
        self.prefix.truncate(mark.0);
    }

    /// Starts a leaf at the current path plus `key` (split on dots): `enter`, `leaf` and `leave`
    /// in one step, writing the path once.
    pub fn leaf_at(&mut self, key: &str) -> Result<Encoder<'_>> {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; 8]);
        let path_start = self.buf.len();
        if !self.prefix.is_empty() {
            self.buf.extend_from_slice(&self.prefix);
            self.buf.push(SEP);
        }
        let key_start = self.buf.len();
        self.buf.extend_from_slice(key.as_bytes());
        if let Err(what) = dots_to_separators(&mut self.buf[key_start..]) {
            self.buf.truncate(start);
            let path = join_path(&self.prefix, key);
            return Err(Error::spec(path, format!("key {key:?} {what}")));
        }
        let path_len = self.buf.len() - path_start;
        self.buf[start..path_start].copy_from_slice(&(path_len as u64).to_le_bytes());
        self.leaves.push(Leaf {
            start,
            path_len,
            head: head_of(&self.buf[path_start..]),
        });
        Ok(Encoder { out: &mut self.buf })
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

    /// Sorts the leaves, refuses duplicate or overlapping paths and returns the key.
    pub fn finish(mut self) -> Result<Key> {
        let buf = &self.buf;
        // Spans are recorded in insertion order; each ends where the next begins.
        let mut spans: Vec<(Leaf, usize)> = Vec::with_capacity(self.leaves.len());
        for (i, leaf) in self.leaves.iter().enumerate() {
            let end = self.leaves.get(i + 1).map_or(buf.len(), |next| next.start);
            spans.push((*leaf, end));
        }
        // Sort on the 16-byte heads alone (cheap integer compares), then order each run of equal
        // heads by whole path: runs are rare and short (paths sharing their first 16 bytes).
        spans.sort_unstable_by_key(|s| s.0.head);
        let mut run = 0;
        while run < spans.len() {
            let head = spans[run].0.head;
            let end = run + spans[run..].iter().take_while(|s| s.0.head == head).count();
            if end - run > 1 {
                spans[run..end].sort_unstable_by(|a, b| a.0.path(buf).cmp(b.0.path(buf)));
            }
            run = end;
        }
        let in_order = spans.windows(2).all(|w| w[0].0.start < w[1].0.start);
        for pair in spans.windows(2) {
            let (a, b) = (pair[0].0.path(buf), pair[1].0.path(buf));
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
        let count = (spans.len() as u64).to_le_bytes();
        let hash = if in_order {
            // The common case for inputs built in a stable order: hash the buffer as it is.
            self.buf[DOMAIN.len()..HEADER_LEN].copy_from_slice(&count);
            xxh3_128(&self.buf)
        } else {
            let mut data = Vec::with_capacity(buf.len());
            data.extend_from_slice(&buf[..DOMAIN.len()]);
            data.extend_from_slice(&count);
            for (leaf, end) in &spans {
                data.extend_from_slice(&buf[leaf.start..*end]);
            }
            xxh3_128(&data)
        };
        Ok(hex128(hash))
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
        self.out.push(b'I');
        self.out.extend_from_slice(&i.to_le_bytes());
    }

    pub fn float(&mut self, f: f64) {
        self.out.push(b'D');
        let bits = if f.is_nan() {
            CANONICAL_NAN
        } else {
            f.to_bits()
        };
        self.out.extend_from_slice(&bits.to_le_bytes());
    }

    pub fn str(&mut self, s: &str) {
        self.out.push(b'S');
        self.raw_str(s);
    }

    pub fn list_header(&mut self, len: usize) {
        self.out.push(b'L');
        self.out.extend_from_slice(&(len as u64).to_le_bytes());
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
                self.out.push(b'M');
                self.out
                    .extend_from_slice(&(map.len() as u64).to_le_bytes());
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                for (key, item) in entries {
                    self.raw_str(key);
                    self.value(item);
                }
            }
        }
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

/// The first 16 bytes of a path, big-endian and zero-padded.
fn head_of(path: &[u8]) -> u128 {
    let mut head = [0u8; 16];
    let n = path.len().min(16);
    head[..n].copy_from_slice(&path[..n]);
    u128::from_be_bytes(head)
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
        let alphabet = [b'a', b'.', 0u8, b'-'];
        // Every string of up to 6 symbols, and longer ones with a dot or NUL at each position.
        let mut cases: Vec<Vec<u8>> = vec![Vec::new()];
        for len in 1..=6u32 {
            for n in 0..4usize.pow(len) {
                cases.push((0..len).map(|i| alphabet[(n >> (2 * i)) & 3]).collect());
            }
        }
        for pos in 0..20 {
            for sym in [b'.', 0u8] {
                let mut long = vec![b'x'; 20];
                long[pos] = sym;
                cases.push(long);
            }
        }
        cases.push(b"thresholds.entry_z.more_than_eight".to_vec());
        for case in cases {
            let mut scanned = case.clone();
            let got = dots_to_separators(&mut scanned).ok().map(|()| scanned);
            assert_eq!(got, naive(&case), "{case:?}");
        }
    }

    #[test]
    fn a_non_dict_is_refused() {
        assert!(trial_key(&Value::Int(1)).is_err());
    }
}
