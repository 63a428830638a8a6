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
//! less than serializing the parameters; SHA-256 alone took longer than Python's
//! `sha256(json.dumps(...))` round trip on this machine. XXH3 is specified bit-for-bit and
//! platform-independent, and 128 bits make an accidental collision among a sweep's trials
//! negligible; keys identify trials, they are not a defence against forged inputs.

use std::ops::Range;

use xxhash_rust::xxh3::xxh3_128;

use crate::error::{Error, Result};
use crate::value::{Map, Value};

/// Prefix of every hashed encoding; bump the version to change the encoding.
pub const DOMAIN: &[u8] = b"fastgrid.trial_key.v1\0";

/// Hex digits in a key (128 bits).
pub const KEY_HEX_LEN: usize = 32;

const SEP: char = '\0';
const CANONICAL_NAN: u64 = 0x7ff8_0000_0000_0000;

/// The canonical key of a parameter set or config tree (a `Value::Map`).
pub fn trial_key(params: &Value) -> Result<String> {
    let map = params
        .as_map()
        .ok_or_else(|| Error::spec("", format!("expected a dict, got {}", params.type_name())))?;
    let mut builder = KeyBuilder::new();
    builder.add_map(map)?;
    builder.finish()
}

/// Collects the leaves of a parameter set, then sorts, checks and hashes them. The bindings layer
/// drives it straight from Python objects (no intermediate tree); `trial_key` drives it from a
/// `Value`, so both produce the same encoding by construction.
#[derive(Debug, Default)]
pub struct KeyBuilder {
    /// The path being walked, segments joined by NUL.
    prefix: String,
    /// Every leaf path, concatenated.
    paths: String,
    /// Every leaf value, encoded and concatenated.
    values: Vec<u8>,
    leaves: Vec<Leaf>,
}

#[derive(Debug, Clone)]
struct Leaf {
    path: Range<usize>,
    value: Range<usize>,
}

/// Where `enter` found the prefix, to give back to `leave`.
#[derive(Debug, Clone, Copy)]
pub struct Mark(usize);

impl KeyBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Descends into `key` (split on dots). Pair with `leave(mark)`.
    pub fn enter(&mut self, key: &str) -> Result<Mark> {
        let mark = Mark(self.prefix.len());
        for segment in key.split('.') {
            if segment.is_empty() || segment.contains(SEP) {
                let what = if segment.is_empty() {
                    "has an empty segment"
                } else {
                    "contains a NUL character"
                };
                self.prefix.truncate(mark.0);
                let path = join_path(&self.prefix, key);
                return Err(Error::spec(path, format!("key {key:?} {what}")));
            }
            if !self.prefix.is_empty() {
                self.prefix.push(SEP);
            }
            self.prefix.push_str(segment);
        }
        Ok(mark)
    }

    pub fn leave(&mut self, mark: Mark) {
        self.prefix.truncate(mark.0);
    }

    /// Starts a leaf at the current path; encode its value with the returned encoder.
    pub fn leaf(&mut self) -> Encoder<'_> {
        let start = self.paths.len();
        self.paths.push_str(&self.prefix);
        let value_start = self.values.len();
        self.leaves.push(Leaf {
            path: start..self.paths.len(),
            // The end is fixed in `finish`: a leaf's value runs up to the next leaf's value.
            value: value_start..value_start,
        });
        Encoder {
            out: &mut self.values,
        }
    }

    /// Adds every leaf of a dict of parameters at the current path.
    pub fn add_map(&mut self, map: &Map) -> Result<()> {
        for (key, value) in map {
            let mark = self.enter(key)?;
            match value {
                Value::Map(inner) if !inner.is_empty() => self.add_map(inner)?,
                other => self.leaf().value(other),
            }
            self.leave(mark);
        }
        Ok(())
    }

    /// Sorts the leaves, refuses duplicate or overlapping paths and returns the hex key.
    pub fn finish(mut self) -> Result<String> {
        let ends: Vec<usize> = self
            .leaves
            .iter()
            .skip(1)
            .map(|leaf| leaf.value.start)
            .chain(std::iter::once(self.values.len()))
            .collect();
        for (leaf, end) in self.leaves.iter_mut().zip(ends) {
            leaf.value.end = end;
        }
        let paths = &self.paths;
        self.leaves
            .sort_unstable_by(|a, b| paths[a.path.clone()].cmp(&paths[b.path.clone()]));
        for pair in self.leaves.windows(2) {
            let (a, b) = (&paths[pair[0].path.clone()], &paths[pair[1].path.clone()]);
            if a == b {
                return Err(Error::spec(
                    dotted(a),
                    "given more than once (a dotted key and a nested dict name the same path)",
                ));
            }
            if b.len() > a.len() && b.starts_with(a) && b[a.len()..].starts_with(SEP) {
                return Err(Error::spec(
                    dotted(b),
                    format!(
                        "{:?} is given a value and is also used as a section",
                        dotted(a)
                    ),
                ));
            }
        }

        // One contiguous buffer and one hash call: XXH3 is fastest on whole inputs.
        let mut data =
            Vec::with_capacity(DOMAIN.len() + 8 + self.paths.len() + self.values.len() + 8 * self.leaves.len());
        data.extend_from_slice(DOMAIN);
        data.extend_from_slice(&(self.leaves.len() as u64).to_le_bytes());
        for leaf in &self.leaves {
            let path = &paths[leaf.path.clone()];
            data.extend_from_slice(&(path.len() as u64).to_le_bytes());
            data.extend_from_slice(path.as_bytes());
            data.extend_from_slice(&self.values[leaf.value.clone()]);
        }
        Ok(hex128(xxh3_128(&data)))
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
        self.out
            .extend_from_slice(&(s.len() as u64).to_le_bytes());
        self.out.extend_from_slice(s.as_bytes());
    }
}

fn dotted(path: &str) -> String {
    path.replace(SEP, ".")
}

fn join_path(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{}.{key}", dotted(prefix))
    }
}

fn hex128(hash: u128) -> String {
    format!("{hash:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, Value)]) -> Value {
        Value::Map(
            entries
                .iter()
                .map(|(k, v)| (Arc::from(*k), v.clone()))
                .collect(),
        )
    }

    use std::sync::Arc;

    fn key(v: &Value) -> String {
        trial_key(v).unwrap()
    }

    /// XXH3-128 itself, against the reference implementation's published value for "abc"
    /// (libxxhash, as printed by `xxhash.xxh3_128_hexdigest(b"abc")`), so a changed hash crate
    /// cannot silently change every key.
    #[test]
    fn hash_is_reference_xxh3_128() {
        assert_eq!(hex128(xxh3_128(b"abc")), "06b05ab6733a618578af5f94892f3950");
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
    fn dotted_and_nested_are_the_same() {
        let dotted = map(&[("risk.stop", Value::Float(0.1)), ("risk.size", Value::Int(3))]);
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
        let keys: std::collections::HashSet<_> =
            variants.iter().map(|v| key(&map(&[("p", v.clone())]))).collect();
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
        let c = Value::List(vec![map(&[("x", Value::Int(1)), ("y", map(&[("z", Value::Int(2))]))])]);
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
        let params = map(&[
            ("a.b", Value::Int(1)),
            ("a", map(&[("b", Value::Int(2))])),
        ]);
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
    fn a_non_dict_is_refused() {
        assert!(trial_key(&Value::Int(1)).is_err());
    }
}
