//! Isolated deep merge of config trees: an immutable default config (`Template`) and, per trial,
//! a handful of overrides written at their paths.
//!
//! Semantics (the README's "config" section says the same for users):
//! - A path is a list of key segments; a dotted key is split on `.`, at any depth, so `risk.stop`
//!   and `{"risk": {"stop": ..}}` address the same place.
//! - A path must exist in the template unless `allow_new`: an unknown key is an error that names
//!   the path and suggests the closest existing key. With `allow_new`, missing keys and sections
//!   are created (new sections follow the template's keys, in the order the overrides came).
//! - An override replaces a leaf (scalar or list) whole, whatever its type. A dict override is a
//!   deep merge: each of its keys is an override below that path (an empty dict only requires the
//!   section to exist). Lists are leaves: paths never index into them.
//! - Errors: a path through a value that is not a dict; a section (dict) replaced by a scalar or
//!   list; one path set twice (a dotted key and a nested dict naming the same place); a path that is
//!   set to a value by one override and used as a section by another.
//!
//! `plan` checks the overrides against the template and returns an `Edit` (a trie of the changes,
//! addressing existing keys by position); `Template::merge` applies it to the `Value` tree, and the
//! bindings apply the same plan to their cached Python mirror of the tree.

use std::collections::btree_map::Entry as BEntry;
use std::collections::BTreeMap;
use std::sync::Arc;

use indexmap::map::Entry as IEntry;
use indexmap::IndexMap;

use crate::error::{Error, Result};
use crate::keys;
use crate::value::{Map, Value};

/// One override: the key segments of its path and the value to write there.
pub type Override = (Vec<String>, Value);

/// Splits a dotted key into its segments; empty segments are an error.
pub fn split_path(dotted: &str) -> Result<Vec<&str>> {
    let segments: Vec<&str> = dotted.split('.').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(merge_err(dotted, "the key has an empty segment"));
    }
    Ok(segments)
}

/// What happens at one key.
#[derive(Debug)]
pub enum Patch<'v> {
    /// The value is replaced (or added) by this one.
    Set(&'v Value),
    /// The value is a section that is edited below.
    Edit(Edit<'v>),
}

/// The changes inside one section.
#[derive(Debug, Default)]
pub struct Edit<'v> {
    /// Existing keys by their position in the template section, in order.
    pub existing: BTreeMap<usize, Patch<'v>>,
    /// New keys (only with `allow_new`), in the order the overrides named them.
    pub added: IndexMap<&'v str, Patch<'v>>,
}

/// The default config: an immutable tree whose root is a dict, and its fingerprint.
#[derive(Debug, Clone)]
pub struct Template {
    root: Value,
    fingerprint: String,
}

impl Template {
    /// Checks that `root` is a dict whose section keys can be addressed by dotted paths.
    pub fn new(root: Value) -> Result<Self> {
        let map = root.as_map().ok_or_else(|| {
            merge_err(
                "",
                format!(
                    "a config must be a dict at the top level, got {}",
                    root.type_name()
                ),
            )
        })?;
        check_keys(map, &mut Vec::new())?;
        let fingerprint = keys::trial_key(&root)?;
        Ok(Template { root, fingerprint })
    }

    pub fn root(&self) -> &Value {
        &self.root
    }

    pub fn root_map(&self) -> &Map {
        match &self.root {
            Value::Map(m) => m,
            // `new` only accepts dicts.
            _ => unreachable!("Template::new checks that the root is a dict"),
        }
    }

    /// The trial key of the whole tree (see `keys`).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Checks `overrides` against the tree; the result addresses existing keys by position.
    pub fn plan<'v>(&self, overrides: &'v [Override], allow_new: bool) -> Result<Edit<'v>> {
        plan(self.root_map(), overrides, allow_new)
    }

    /// A new tree with `overrides` written at their paths.
    pub fn merge(&self, overrides: &[Override], allow_new: bool) -> Result<Value> {
        let edit = self.plan(overrides, allow_new)?;
        Ok(Value::Map(apply(self.root_map(), &edit)))
    }
}

/// Section keys are addressed by dotted paths, so a dot (or an empty key) inside one would make
/// paths ambiguous. Dicts inside lists are plain values and are not checked.
fn check_keys(map: &Map, path: &mut Vec<Arc<str>>) -> Result<()> {
    for (key, value) in map {
        if key.is_empty() || key.contains('.') {
            return Err(merge_err(
                &join(path.iter().map(|s| &**s)),
                format!(
                    "config key {key:?} cannot be addressed by a dotted path \
                     (use nested sections instead of dots inside keys, and no empty keys)"
                ),
            ));
        }
        if let Value::Map(inner) = value {
            path.push(key.clone());
            check_keys(inner, path)?;
            path.pop();
        }
    }
    Ok(())
}

/// Checks `overrides` against the section `template` and builds the trie of changes.
pub fn plan<'v>(template: &Map, overrides: &'v [Override], allow_new: bool) -> Result<Edit<'v>> {
    let mut planner = Planner {
        allow_new,
        path: Vec::new(),
    };
    let mut root = Edit::default();
    for (segments, value) in overrides {
        if segments.is_empty() || segments.iter().any(|s| s.is_empty()) {
            return Err(merge_err(
                &segments.join("."),
                "the key has an empty segment",
            ));
        }
        let segs: Vec<&'v str> = segments.iter().map(String::as_str).collect();
        planner.insert(&mut root, Some(template), &segs, value)?;
    }
    Ok(root)
}

struct Planner<'v> {
    allow_new: bool,
    /// The path of the key being placed, for error messages.
    path: Vec<&'v str>,
}

impl<'v> Planner<'v> {
    /// Places `value` at `segs` below the section `edit` (whose template is `section`, or `None`
    /// for a section that the overrides create).
    fn insert(
        &mut self,
        edit: &mut Edit<'v>,
        section: Option<&Map>,
        segs: &[&'v str],
        value: &'v Value,
    ) -> Result<()> {
        let Some((&head, rest)) = segs.split_first() else {
            return Ok(());
        };
        let depth = self.path.len();
        self.path.push(head);
        let result = self.insert_at(edit, section, head, rest, value);
        self.path.truncate(depth);
        result
    }

    fn insert_at(
        &mut self,
        edit: &mut Edit<'v>,
        section: Option<&Map>,
        head: &'v str,
        rest: &[&'v str],
        value: &'v Value,
    ) -> Result<()> {
        if let Some((index, _, existing)) = section.and_then(|m| m.get_full(head)) {
            return match edit.existing.entry(index) {
                BEntry::Vacant(slot) => {
                    let mut patch = None;
                    self.place(&mut patch, Some(existing), rest, value)?;
                    if let Some(p) = patch {
                        slot.insert(p);
                    }
                    Ok(())
                }
                BEntry::Occupied(mut slot) => {
                    let mut patch = Some(std::mem::replace(slot.get_mut(), Patch::Set(value)));
                    let result = self.place(&mut patch, Some(existing), rest, value);
                    if let Some(p) = patch {
                        *slot.get_mut() = p;
                    }
                    result
                }
            };
        }
        if !self.allow_new {
            return Err(self.unknown_key(section, head));
        }
        match edit.added.entry(head) {
            IEntry::Vacant(slot) => {
                let mut patch = None;
                self.place(&mut patch, None, rest, value)?;
                if let Some(p) = patch {
                    slot.insert(p);
                }
                Ok(())
            }
            IEntry::Occupied(mut slot) => {
                let mut patch = Some(std::mem::replace(slot.get_mut(), Patch::Set(value)));
                let result = self.place(&mut patch, None, rest, value);
                if let Some(p) = patch {
                    *slot.get_mut() = p;
                }
                result
            }
        }
    }

    /// Updates the patch of one key: `existing` is the template's value there (if any), `rest`
    /// the segments still to walk below it.
    fn place(
        &mut self,
        patch: &mut Option<Patch<'v>>,
        existing: Option<&Value>,
        rest: &[&'v str],
        value: &'v Value,
    ) -> Result<()> {
        let section = match existing {
            Some(Value::Map(m)) => Some(m),
            Some(other) if !rest.is_empty() || matches!(value, Value::Map(_)) => {
                let below = rest
                    .first()
                    .copied()
                    .or_else(|| value.as_map().and_then(|m| m.keys().next().map(|k| &**k)));
                return Err(self.not_a_section(other, below));
            }
            _ => None,
        };
        if rest.is_empty() && !matches!(value, Value::Map(_)) {
            // A leaf value lands here.
            if matches!(existing, Some(Value::Map(_))) {
                return Err(self.section_replaced(section, value));
            }
            return match patch {
                None => {
                    *patch = Some(Patch::Set(value));
                    Ok(())
                }
                Some(Patch::Set(_)) => Err(self.twice()),
                Some(Patch::Edit(_)) => Err(self.set_and_section()),
            };
        }
        // Going below this key: it must be (or become) a section.
        let edit = match patch {
            None => {
                *patch = Some(Patch::Edit(Edit::default()));
                match patch {
                    Some(Patch::Edit(e)) => e,
                    _ => unreachable!("just set"),
                }
            }
            Some(Patch::Edit(e)) => e,
            Some(Patch::Set(_)) => return Err(self.set_and_section()),
        };
        if rest.is_empty() {
            // A dict override: each of its keys is an override below this path.
            if let Value::Map(entries) = value {
                for (key, inner) in entries {
                    let segs = split_path(key).map_err(|_| {
                        merge_err(
                            &format!("{}.{key}", self.dotted()),
                            "the key has an empty segment",
                        )
                    })?;
                    self.insert(edit, section, &segs, inner)?;
                }
            }
            Ok(())
        } else {
            self.insert(edit, section, rest, value)
        }
    }

    fn dotted(&self) -> String {
        join(self.path.iter().copied())
    }

    fn unknown_key(&self, section: Option<&Map>, key: &str) -> Error {
        let parent = join(self.path[..self.path.len() - 1].iter().copied());
        let place = if parent.is_empty() {
            "at the top level of the config".to_owned()
        } else {
            format!("in section {parent:?}")
        };
        let keys: Vec<&str> = section
            .map(|m| m.keys().map(|k| &**k).collect())
            .unwrap_or_default();
        let hint = match closest(key, &keys) {
            Some(best) => format!(" (did you mean {best:?}?)"),
            None if keys.is_empty() => String::new(),
            None => {
                let mut sorted = keys.clone();
                sorted.sort_unstable();
                let shown: Vec<String> = sorted.iter().take(12).map(|k| format!("{k:?}")).collect();
                let more = if sorted.len() > 12 { ", ..." } else { "" };
                format!(" (known keys: {}{more})", shown.join(", "))
            }
        };
        merge_err(
            &self.dotted(),
            format!(
                "unknown key {key:?} {place}{hint}; pass allow_new=True to add keys \
                 that the default config does not have"
            ),
        )
    }

    fn not_a_section(&self, existing: &Value, below: Option<&str>) -> Error {
        let here = self.dotted();
        let full = match below {
            Some(k) => format!("{here}.{k}"),
            None => here.clone(),
        };
        merge_err(
            &full,
            format!(
                "{here:?} is a {} in the config, not a section, so nothing can be set below it",
                existing.type_name()
            ),
        )
    }

    fn section_replaced(&self, section: Option<&Map>, value: &Value) -> Error {
        let here = self.dotted();
        let example = section
            .and_then(|m| m.keys().next())
            .map(|k| format!(" (for example {:?})", format!("{here}.{k}")))
            .unwrap_or_default();
        merge_err(
            &here,
            format!(
                "is a section of the config and cannot be replaced by a {}; set its keys instead{example}",
                value.type_name()
            ),
        )
    }

    fn twice(&self) -> Error {
        merge_err(
            &self.dotted(),
            "set more than once (a dotted key and a nested dict name the same path)",
        )
    }

    fn set_and_section(&self) -> Error {
        merge_err(
            &self.dotted(),
            "is set to a value by one override and used as a section by another",
        )
    }
}

/// The closest of `candidates` to `key`, if it is close enough to be a likely typo.
fn closest<'a>(key: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| {
            let score =
                strsim::normalized_damerau_levenshtein(&key.to_lowercase(), &c.to_lowercase());
            (score, *c)
        })
        .filter(|(score, _)| *score >= 0.6)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Applies a plan to a template section, cloning everything (so the result owns its tree).
pub fn apply(section: &Map, edit: &Edit<'_>) -> Map {
    let mut out = Map::with_capacity(section.len() + edit.added.len());
    for (index, (key, value)) in section.iter().enumerate() {
        let merged = match edit.existing.get(&index) {
            None => value.clone(),
            Some(Patch::Set(v)) => (*v).clone(),
            Some(Patch::Edit(inner)) => {
                let empty = Map::new();
                Value::Map(apply(value.as_map().unwrap_or(&empty), inner))
            }
        };
        out.insert(key.clone(), merged);
    }
    for (key, patch) in &edit.added {
        out.insert(Arc::from(*key), build_new(patch));
    }
    out
}

/// The value of a key that the template does not have.
pub fn build_new(patch: &Patch<'_>) -> Value {
    match patch {
        Patch::Set(v) => (*v).clone(),
        Patch::Edit(inner) => Value::Map(apply(&Map::new(), inner)),
    }
}

fn join<'a>(segments: impl Iterator<Item = &'a str>) -> String {
    segments.collect::<Vec<_>>().join(".")
}

fn merge_err(path: &str, message: impl Into<String>) -> Error {
    Error::Merge {
        path: path.to_owned(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, Value)]) -> Value {
        Value::map_from(entries.iter().map(|(k, v)| (*k, v.clone())))
    }

    fn ov(path: &str, value: Value) -> Override {
        (path.split('.').map(str::to_owned).collect(), value)
    }

    fn template() -> Template {
        Template::new(map(&[
            (
                "risk",
                map(&[
                    ("stop_loss", Value::Float(0.02)),
                    ("take_profit", Value::Float(0.05)),
                    ("limits", map(&[("max_positions", Value::Int(5))])),
                ]),
            ),
            ("symbols", Value::List(vec![Value::Str("BTC".into())])),
            ("name", Value::Str("mean-reversion".into())),
            ("notes", Value::Null),
        ]))
        .unwrap()
    }

    fn get<'a>(v: &'a Value, path: &str) -> &'a Value {
        path.split('.')
            .fold(v, |v, k| v.as_map().and_then(|m| m.get(k)).unwrap())
    }

    fn merge_error(overrides: &[Override], allow_new: bool) -> (String, String) {
        match template().merge(overrides, allow_new) {
            Err(Error::Merge { path, message }) => (path, message),
            other => panic!("expected a merge error, got {other:?}"),
        }
    }

    #[test]
    fn writes_overrides_and_keeps_everything_else() {
        let t = template();
        let merged = t
            .merge(
                &[
                    ov("risk.stop_loss", Value::Float(0.03)),
                    ov("risk.limits.max_positions", Value::Int(2)),
                    ov("symbols", Value::List(vec![])),
                ],
                false,
            )
            .unwrap();
        assert_eq!(get(&merged, "risk.stop_loss"), &Value::Float(0.03));
        assert_eq!(get(&merged, "risk.take_profit"), &Value::Float(0.05));
        assert_eq!(get(&merged, "risk.limits.max_positions"), &Value::Int(2));
        assert_eq!(get(&merged, "symbols"), &Value::List(vec![]));
        assert_eq!(get(&merged, "name"), get(t.root(), "name"));
        // Key order follows the template.
        let keys: Vec<_> = merged.as_map().unwrap().keys().map(|k| &**k).collect();
        assert_eq!(keys, ["risk", "symbols", "name", "notes"]);
        // The template is unchanged.
        assert_eq!(get(t.root(), "risk.stop_loss"), &Value::Float(0.02));
    }

    #[test]
    fn no_overrides_gives_the_template() {
        let t = template();
        assert_eq!(&t.merge(&[], false).unwrap(), t.root());
    }

    #[test]
    fn a_dict_override_is_a_deep_merge() {
        let t = template();
        let nested = t
            .merge(
                &[ov(
                    "risk",
                    map(&[
                        ("stop_loss", Value::Float(0.01)),
                        ("limits.max_positions", Value::Int(9)),
                    ]),
                )],
                false,
            )
            .unwrap();
        let dotted = t
            .merge(
                &[
                    ov("risk.stop_loss", Value::Float(0.01)),
                    ov("risk.limits.max_positions", Value::Int(9)),
                ],
                false,
            )
            .unwrap();
        assert_eq!(nested, dotted);
        assert_eq!(get(&nested, "risk.take_profit"), &Value::Float(0.05));
    }

    #[test]
    fn a_leaf_takes_any_type() {
        let merged = template()
            .merge(&[ov("notes", Value::List(vec![Value::Int(1)]))], false)
            .unwrap();
        assert_eq!(get(&merged, "notes"), &Value::List(vec![Value::Int(1)]));
    }

    #[test]
    fn unknown_key_suggests_the_closest() {
        let (path, message) = merge_error(&[ov("risk.stop_los", Value::Float(0.1))], false);
        assert_eq!(path, "risk.stop_los");
        assert!(message.contains("did you mean \"stop_loss\""), "{message}");
        assert!(message.contains("section \"risk\""), "{message}");
        assert!(message.contains("allow_new"), "{message}");
    }

    #[test]
    fn unknown_key_without_a_close_match_lists_the_keys() {
        let (path, message) = merge_error(&[ov("zzzzzz", Value::Int(1))], false);
        assert_eq!(path, "zzzzzz");
        assert!(message.contains("top level"), "{message}");
        assert!(message.contains("\"symbols\""), "{message}");
    }

    #[test]
    fn unknown_key_inside_a_dict_override_names_the_full_path() {
        let (path, _) = merge_error(
            &[ov(
                "risk",
                map(&[("limits", map(&[("max_pos", Value::Int(1))]))]),
            )],
            false,
        );
        assert_eq!(path, "risk.limits.max_pos");
    }

    #[test]
    fn allow_new_creates_keys_and_sections() {
        let merged = template()
            .merge(
                &[
                    ov("risk.trailing", Value::Bool(true)),
                    ov("extra.deep.value", Value::Int(1)),
                    ov("extra.other", Value::Int(2)),
                ],
                true,
            )
            .unwrap();
        assert_eq!(get(&merged, "risk.trailing"), &Value::Bool(true));
        assert_eq!(get(&merged, "extra.deep.value"), &Value::Int(1));
        assert_eq!(get(&merged, "extra.other"), &Value::Int(2));
    }

    #[test]
    fn an_empty_dict_override_requires_the_section() {
        let t = template();
        assert_eq!(&t.merge(&[ov("risk", map(&[]))], false).unwrap(), t.root());
        let (path, _) = merge_error(&[ov("extra", map(&[]))], false);
        assert_eq!(path, "extra");
        let created = t.merge(&[ov("extra", map(&[]))], true).unwrap();
        assert_eq!(get(&created, "extra"), &map(&[]));
    }

    #[test]
    fn a_path_through_a_leaf_is_refused() {
        for allow_new in [false, true] {
            let (path, message) = merge_error(&[ov("risk.stop_loss.x", Value::Int(1))], allow_new);
            assert_eq!(path, "risk.stop_loss.x");
            assert!(
                message.contains("\"risk.stop_loss\" is a float"),
                "{message}"
            );
        }
        let (path, message) = merge_error(&[ov("symbols.0", Value::Int(1))], false);
        assert_eq!(path, "symbols.0");
        assert!(message.contains("is a list"), "{message}");
        let (path, _) = merge_error(&[ov("notes", map(&[("a", Value::Int(1))]))], true);
        assert_eq!(path, "notes.a");
    }

    #[test]
    fn a_section_cannot_become_a_scalar() {
        let (path, message) = merge_error(&[ov("risk", Value::Float(0.5))], true);
        assert_eq!(path, "risk");
        assert!(
            message.contains("cannot be replaced by a float"),
            "{message}"
        );
        assert!(message.contains("risk.stop_loss"), "{message}");
    }

    #[test]
    fn one_path_set_twice_is_refused() {
        let (path, message) = merge_error(
            &[
                ov("risk.stop_loss", Value::Float(0.1)),
                ov("risk", map(&[("stop_loss", Value::Float(0.2))])),
            ],
            false,
        );
        assert_eq!(path, "risk.stop_loss");
        assert!(message.contains("more than once"), "{message}");
    }

    #[test]
    fn a_new_value_and_a_new_section_at_one_path_are_refused() {
        for order in [[0, 1], [1, 0]] {
            let both = [ov("extra", Value::Int(1)), ov("extra.x", Value::Int(2))];
            let overrides: Vec<Override> = order.iter().map(|&i| both[i].clone()).collect();
            let (path, message) = merge_error(&overrides, true);
            assert_eq!(path, "extra");
            assert!(message.contains("used as a section"), "{message}");
        }
    }

    #[test]
    fn empty_segments_are_refused() {
        assert!(split_path("a..b").is_err());
        assert!(split_path("").is_err());
        assert_eq!(split_path("a.b").unwrap(), ["a", "b"]);
        let (path, _) = merge_error(
            &[(vec!["risk".into(), String::new()], Value::Int(1))],
            false,
        );
        assert_eq!(path, "risk.");
    }

    #[test]
    fn the_template_must_be_an_addressable_dict() {
        assert!(matches!(
            Template::new(Value::List(vec![])),
            Err(Error::Merge { .. })
        ));
        let dotted = map(&[("data", map(&[("BTC.USD", Value::Int(1))]))]);
        match Template::new(dotted) {
            Err(Error::Merge { path, message }) => {
                assert_eq!(path, "data");
                assert!(message.contains("BTC.USD"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // Dicts inside lists are values: their keys are free.
        let in_list = map(&[("rules", Value::List(vec![map(&[("a.b", Value::Int(1))])]))]);
        assert!(Template::new(in_list).is_ok());
    }

    #[test]
    fn fingerprint_is_the_trial_key_of_the_tree() {
        let t = template();
        assert_eq!(t.fingerprint(), keys::trial_key(t.root()).unwrap());
        let changed = Template::new(
            t.merge(&[ov("risk.stop_loss", Value::Float(0.03))], false)
                .unwrap(),
        )
        .unwrap();
        assert_ne!(t.fingerprint(), changed.fingerprint());
    }
}
