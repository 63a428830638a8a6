//! Result-file name patterns such as `{symbol}_{timeframe}_{stamp}.json`.
//!
//! A pattern is literal text with `{field}` placeholders. Fields match non-empty text without
//! `/`; each matches as little as possible (left to right), so `{a}_{b}_{c}.json` splits
//! `BTCUSD_1h_20261129_171502.json` into `BTCUSD`, `1h`, `20261129_171502`. Fields named `_` or
//! starting with `_` are wildcards: matched, never part of the key, and allowed to repeat.
//! `{{` and `}}` are literal braces.

use crate::error::{Error, Result};

/// Separates key parts inside a joined key. File names cannot contain NUL, so no field value can.
pub const KEY_SEP: char = '\0';

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// Index into `Pattern::fields`.
    Field(usize),
}

/// What decides "newest" inside one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderBy {
    /// The text of this field (index into `Pattern::fields`), compared like Python `str`.
    Field(usize),
    /// The file's modification time.
    Mtime,
}

#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    segments: Vec<Segment>,
    fields: Vec<String>,
    /// Indices into `fields` of the fields that form the key, in pattern order.
    key_fields: Vec<usize>,
    order_by: OrderBy,
    /// Whether the pattern contains `/` (then names are relative paths and fields stop at `/`).
    spans_dirs: bool,
}

/// A successful match: the joined key and the ordering text (when ordering by a field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match<'a> {
    pub key: String,
    pub order_text: Option<&'a str>,
}

fn is_wildcard(name: &str) -> bool {
    name.starts_with('_')
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Pattern {
    /// Parses `pattern`; `order_by` names a field of it or is `"mtime"`.
    pub fn new(pattern: &str, order_by: &str) -> Result<Self> {
        let err = |message: String| Error::Pattern {
            pattern: pattern.to_owned(),
            message,
        };
        let mut segments: Vec<Segment> = Vec::new();
        let mut fields: Vec<String> = Vec::new();
        let mut literal = String::new();
        let mut chars = pattern.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|&(_, n)| n) == Some('{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().map(|&(_, n)| n) == Some('}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => {
                    return Err(err(format!(
                        "unbalanced '}}' at column {} (write '}}}}' for a literal brace)",
                        i + 1
                    )))
                }
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for (_, n) in chars.by_ref() {
                        if n == '}' {
                            closed = true;
                            break;
                        }
                        if n == '{' {
                            break;
                        }
                        name.push(n);
                    }
                    if !closed {
                        return Err(err(format!(
                            "unbalanced '{{' at column {} (write '{{{{' for a literal brace)",
                            i + 1
                        )));
                    }
                    if !valid_name(&name) {
                        return Err(err(format!(
                            "field name {name:?} at column {} is not an identifier",
                            i + 1
                        )));
                    }
                    if !is_wildcard(&name) && fields.contains(&name) {
                        return Err(err(format!("field {{{name}}} appears more than once")));
                    }
                    if literal.is_empty() {
                        if let Some(Segment::Field(prev)) = segments.last() {
                            return Err(err(format!(
                                "fields {{{}}} and {{{name}}} are adjacent; separate them with literal text",
                                fields[*prev]
                            )));
                        }
                    } else {
                        segments.push(Segment::Literal(std::mem::take(&mut literal)));
                    }
                    segments.push(Segment::Field(fields.len()));
                    fields.push(name);
                }
                _ => literal.push(c),
            }
        }
        if !literal.is_empty() {
            segments.push(Segment::Literal(literal));
        }
        if fields.iter().all(|f| is_wildcard(f)) {
            return Err(err(
                "has no fields; name the parts of the key like {symbol}_{stamp}.json".into(),
            ));
        }
        if pattern.starts_with('/')
            || pattern
                .split('/')
                .any(|part| part.is_empty() || part == "..")
        {
            return Err(err(
                "must be a relative path without empty or '..' components".into(),
            ));
        }
        let order_by = if let Some(i) = fields.iter().position(|f| f == order_by) {
            if is_wildcard(order_by) {
                return Err(err(format!(
                    "order_by {order_by:?} names a wildcard field; give it a name without a leading '_'"
                )));
            }
            OrderBy::Field(i)
        } else if order_by == "mtime" {
            OrderBy::Mtime
        } else {
            let named: Vec<&str> = fields
                .iter()
                .map(String::as_str)
                .filter(|f| !is_wildcard(f))
                .collect();
            return Err(err(format!(
                "order_by {order_by:?} names no field of the pattern (fields: {}); use one of them or \"mtime\"",
                named.join(", ")
            )));
        };
        let key_fields = (0..fields.len())
            .filter(|&i| !is_wildcard(&fields[i]) && OrderBy::Field(i) != order_by)
            .collect();
        Ok(Pattern {
            spans_dirs: pattern.contains('/'),
            text: pattern.to_owned(),
            segments,
            fields,
            key_fields,
            order_by,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn order_by(&self) -> OrderBy {
        self.order_by
    }

    /// The name of the ordering field, or `"mtime"`.
    pub fn order_by_name(&self) -> &str {
        match self.order_by {
            OrderBy::Field(i) => &self.fields[i],
            OrderBy::Mtime => "mtime",
        }
    }

    /// Names of the key fields, in pattern order.
    pub fn key_fields(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.key_fields.iter().map(|&i| self.fields[i].as_str())
    }

    /// Whether the pattern spans directories (contains `/`); otherwise it matches file names.
    pub fn spans_dirs(&self) -> bool {
        self.spans_dirs
    }

    /// Matches a name (or a `/`-separated relative path when `spans_dirs`).
    pub fn matches<'a>(&self, name: &'a str) -> Option<Match<'a>> {
        let mut key = String::new();
        let span = self.match_into(name, &mut key)?;
        Some(Match {
            key,
            order_text: span.map(|(a, b)| &name[a..b]),
        })
    }

    /// `matches` without allocating: writes the joined key into `key` (cleared first) and
    /// returns the byte span of the order field (None when ordering by mtime).
    pub fn match_into(&self, name: &str, key: &mut String) -> Option<Option<(usize, usize)>> {
        if !self.spans_dirs && name.contains('/') {
            return None;
        }
        const ON_STACK: usize = 8;
        let mut stack = [(0usize, 0usize); ON_STACK];
        let mut heap = Vec::new();
        let spans: &mut [(usize, usize)] = if self.fields.len() <= ON_STACK {
            &mut stack[..self.fields.len()]
        } else {
            heap.resize(self.fields.len(), (0, 0));
            &mut heap
        };
        if !self.match_from(name, 0, 0, spans) {
            return None;
        }
        key.clear();
        for (n, &i) in self.key_fields.iter().enumerate() {
            if n > 0 {
                key.push(KEY_SEP);
            }
            key.push_str(&name[spans[i].0..spans[i].1]);
        }
        Some(match self.order_by {
            OrderBy::Field(i) => Some(spans[i]),
            OrderBy::Mtime => None,
        })
    }

    /// Leftmost-shortest backtracking match; patterns are short, so the depth is tiny.
    fn match_from(&self, name: &str, seg: usize, pos: usize, spans: &mut [(usize, usize)]) -> bool {
        let rest = &name[pos..];
        match self.segments.get(seg) {
            None => rest.is_empty(),
            Some(Segment::Literal(lit)) => {
                rest.starts_with(lit.as_str())
                    && self.match_from(name, seg + 1, pos + lit.len(), spans)
            }
            Some(Segment::Field(f)) => {
                // A field stops at '/', so the usable text ends there (file names have none).
                let limit = if self.spans_dirs {
                    rest.find('/').unwrap_or(rest.len())
                } else {
                    rest.len()
                };
                match self.segments.get(seg + 1) {
                    None => {
                        if limit == rest.len() && limit > 0 {
                            spans[*f] = (pos, name.len());
                            true
                        } else {
                            false
                        }
                    }
                    Some(Segment::Literal(lit)) => {
                        // The field is non-empty: the literal may start after its first char.
                        let mut from = rest.chars().next().map_or(1, char::len_utf8);
                        while from <= limit {
                            let hay = &rest[from..];
                            // One-char separators (the common `_`) take the memchr path.
                            let found = match lit.as_bytes() {
                                [b] if b.is_ascii() => hay.find(char::from(*b)),
                                _ => hay.find(lit.as_str()),
                            };
                            let Some(found) = found else {
                                return false;
                            };
                            let end = from + found;
                            if end > limit {
                                return false;
                            }
                            spans[*f] = (pos, pos + end);
                            if self.match_from(name, seg + 1, pos + end, spans) {
                                return true;
                            }
                            from = end + rest[end..].chars().next().map_or(1, char::len_utf8);
                        }
                        false
                    }
                    // Adjacent fields are refused at parse time.
                    Some(Segment::Field(_)) => false,
                }
            }
        }
    }

    /// Joins key values given in key-field order.
    pub fn join_key<'a>(values: impl IntoIterator<Item = &'a str>) -> String {
        let mut key = String::new();
        for (n, v) in values.into_iter().enumerate() {
            if n > 0 {
                key.push(KEY_SEP);
            }
            key.push_str(v);
        }
        key
    }

    /// Splits a joined key into its values (one per key field).
    pub fn split_key(&self, key: &str) -> Vec<String> {
        if self.key_fields.is_empty() {
            return Vec::new();
        }
        key.split(KEY_SEP).map(str::to_owned).collect()
    }
}

/// Editor backups, partial downloads and hidden files: never results, even if they match.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with(".tmp")
        || name.ends_with(".part")
        || name.ends_with('~')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str, order_by: &str) -> Pattern {
        Pattern::new(text, order_by).unwrap()
    }

    fn msg(text: &str, order_by: &str) -> String {
        Pattern::new(text, order_by).unwrap_err().to_string()
    }

    #[test]
    fn splits_the_default_pattern_leftmost_shortest() {
        let pat = p("{symbol}_{timeframe}_{stamp}.json", "stamp");
        let m = pat.matches("BTCUSD_1h_20261129_171502.json").unwrap();
        assert_eq!(pat.split_key(&m.key), ["BTCUSD", "1h"]);
        assert_eq!(m.order_text, Some("20261129_171502"));
        assert_eq!(
            pat.key_fields().collect::<Vec<_>>(),
            ["symbol", "timeframe"]
        );
    }

    #[test]
    fn rejects_names_that_do_not_fit() {
        let pat = p("{symbol}_{timeframe}_{stamp}.json", "stamp");
        for name in [
            "BTCUSD_1h.json",
            "BTCUSD_1h_2026.jsonx",
            "_1h_2026.json",
            "BTCUSD__2026.json",
            "BTCUSD_1h_.json",
            "sub/BTCUSD_1h_2026.json",
            "notes.txt",
        ] {
            assert!(pat.matches(name).is_none(), "{name}");
        }
    }

    #[test]
    fn backtracks_when_the_shortest_split_fails() {
        let pat = p("{a}-x-{b}.json", "b");
        let m = pat.matches("p-q-x-r.json").unwrap();
        assert_eq!(m.key, "p-q");
        assert_eq!(m.order_text, Some("r"));
    }

    #[test]
    fn wildcards_are_not_key_parts_and_may_repeat() {
        let pat = p("{_}_{symbol}_{_}.json", "mtime");
        let m = pat.matches("run_ETH_x.json").unwrap();
        assert_eq!(m.key, "ETH");
        assert_eq!(m.order_text, None);
    }

    #[test]
    fn mtime_ordering_keeps_every_field_in_the_key() {
        let pat = p("{symbol}_{timeframe}.json", "mtime");
        assert_eq!(pat.order_by(), OrderBy::Mtime);
        assert_eq!(pat.matches("A_1h.json").unwrap().key, "A\u{0}1h");
    }

    #[test]
    fn escaped_braces_are_literal() {
        let pat = p("{{{symbol}}}_{stamp}", "stamp");
        assert_eq!(pat.matches("{A}_1").unwrap().key, "A");
        assert!(pat.matches("A_1").is_none());
    }

    #[test]
    fn a_slash_pattern_spans_directories_but_fields_do_not() {
        let pat = p("{symbol}/{stamp}.json", "stamp");
        assert!(pat.spans_dirs());
        assert_eq!(pat.matches("BTC/2026.json").unwrap().key, "BTC");
        assert!(pat.matches("a/b/2026.json").is_none());
    }

    #[test]
    fn unicode_names_match_on_char_boundaries() {
        let pat = p("{symbol}_{stamp}.json", "stamp");
        let m = pat.matches("é_ü_1.json").unwrap();
        assert_eq!(m.key, "é");
        assert_eq!(m.order_text, Some("ü_1"));
    }

    #[test]
    fn bad_patterns_name_the_problem() {
        assert!(msg("results.json", "stamp").contains("has no fields"));
        assert!(msg("{_}.json", "mtime").contains("has no fields"));
        assert!(msg("{a}_{a}.json", "a").contains("{a} appears more than once"));
        assert!(msg("{a}_{b}.json", "stamp").contains("order_by \"stamp\" names no field"));
        assert!(msg("{a}_{b}.json", "stamp").contains("fields: a, b"));
        assert!(msg("{a}_{b.json", "a").contains("unbalanced '{' at column 5"));
        assert!(msg("{a}_b}.json", "a").contains("unbalanced '}' at column 6"));
        assert!(msg("{a}{b}.json", "b").contains("adjacent"));
        assert!(msg("{a b}.json", "mtime").contains("not an identifier"));
        assert!(msg("/abs/{a}.json", "mtime").contains("relative path"));
        assert!(msg("../{a}.json", "mtime").contains("relative path"));
        assert!(msg("{a}_{_x}.json", "_x").contains("wildcard"));
        let Error::Pattern { pattern, .. } = Pattern::new("{a", "a").unwrap_err() else {
            panic!("not a pattern error")
        };
        assert_eq!(pattern, "{a");
    }

    #[test]
    fn temp_names() {
        for name in [".x.json", "x.json.tmp", "x.json.part", "x.json~"] {
            assert!(is_temp_name(name), "{name}");
        }
        assert!(!is_temp_name("x.json"));
    }

    #[test]
    fn keys_round_trip() {
        let pat = p("{a}_{b}_{c}.json", "c");
        let key = Pattern::join_key(["x", "y"]);
        assert_eq!(pat.split_key(&key), ["x", "y"]);
        let single = p("{c}.json", "c");
        assert!(single.split_key("").is_empty());
    }
}
