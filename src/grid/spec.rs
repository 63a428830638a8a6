//! The parameters tree: parse and validate it into parameters (in point order) and the namespace
//! shape a point mirrors. Every error names the dotted path of the parameter at fault.

use std::sync::Arc;

use indexmap::IndexMap;
use rust_decimal::Decimal;

use super::axis::{stepped_len, to_decimal, Axis, Kind};
use crate::error::{Error, Result};
use crate::expr::suggest;
use crate::value::{Map, Value};

/// One leaf of the tree.
#[derive(Debug, Clone)]
pub struct Param {
    /// Dotted path, e.g. `exit.stop_loss`.
    pub path: String,
    /// The path's segments (the nested keys of a point).
    pub segments: Vec<Arc<str>>,
    pub kind: Kind,
    pub axis: Axis,
    /// The leaf's fields as written (low/high/step/num/log, or values/value), for `axes`.
    pub fields: Vec<(&'static str, Value)>,
}

/// The namespace structure of a point: keys in declaration order, leaves index `Tree::params`.
#[derive(Debug, Clone)]
pub enum Node {
    Leaf(usize),
    Namespace(IndexMap<Arc<str>, Node>),
}

#[derive(Debug, Clone)]
pub struct Tree {
    /// In point order: a depth-first walk of `shape`, which is declaration order once dotted keys
    /// are expanded (the last parameter varies fastest).
    pub params: Vec<Param>,
    /// The root namespace.
    pub shape: IndexMap<Arc<str>, Node>,
}

impl Tree {
    pub fn position(&self, path: &str) -> Option<usize> {
        self.params.iter().position(|p| p.path == path)
    }

    /// A continuous float range cannot be enumerated; a grid needs `step` or `num`.
    pub fn require_discrete(&self) -> Result<()> {
        match self
            .params
            .iter()
            .find(|p| matches!(p.axis, Axis::Continuous { .. }))
        {
            Some(p) => Err(Error::spec(
                &p.path,
                "a float range without `step` or `num` is continuous; a grid needs `step = ...` \
                 (values low, low+step, ...) or `num = ...` (evenly spaced, both ends included)",
            )),
            None => Ok(()),
        }
    }
}

/// Parses a root: one tree (a dict) or a list of trees (the union of their grids).
pub fn parse_root(root: &Value) -> Result<Vec<Tree>> {
    match root {
        Value::Map(m) => Ok(vec![parse_tree(m, "")?]),
        Value::List(items) => {
            if items.is_empty() {
                return Err(Error::spec(
                    "",
                    "an empty list of parameter trees has no points",
                ));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::Map(m) => parse_tree(m, &format!("[{i}]")),
                    other => Err(Error::spec(
                        format!("[{i}]"),
                        format!("a list of trees must hold dicts, got {}", other.type_name()),
                    )),
                })
                .collect()
        }
        other => Err(Error::spec(
            "",
            format!(
                "the parameters tree must be a dict (or a list of dicts), got {}",
                other.type_name()
            ),
        )),
    }
}

/// Parses one tree. `tag` prefixes error paths of trees inside a union (`[1]`).
pub fn parse_tree(map: &Map, tag: &str) -> Result<Tree> {
    let mut b = Builder {
        params: Vec::new(),
        shape: IndexMap::new(),
        tag,
    };
    b.namespace(map, &[])?;
    let Builder {
        mut params, shape, ..
    } = b;
    let mut order = Vec::with_capacity(params.len());
    walk(&shape, &mut order);
    let mut renumber = vec![0; params.len()];
    for (new, &old) in order.iter().enumerate() {
        renumber[old] = new;
    }
    let mut slots: Vec<Option<Param>> = params.drain(..).map(Some).collect();
    let params = order.iter().filter_map(|&i| slots[i].take()).collect();
    let shape = renumbered(shape, &renumber);
    Ok(Tree { params, shape })
}

fn walk(ns: &IndexMap<Arc<str>, Node>, out: &mut Vec<usize>) {
    for node in ns.values() {
        match node {
            Node::Leaf(i) => out.push(*i),
            Node::Namespace(m) => walk(m, out),
        }
    }
}

fn renumbered(ns: IndexMap<Arc<str>, Node>, map: &[usize]) -> IndexMap<Arc<str>, Node> {
    ns.into_iter()
        .map(|(k, node)| {
            let node = match node {
                Node::Leaf(i) => Node::Leaf(map[i]),
                Node::Namespace(m) => Node::Namespace(renumbered(m, map)),
            };
            (k, node)
        })
        .collect()
}

struct Builder<'a> {
    params: Vec<Param>,
    shape: IndexMap<Arc<str>, Node>,
    tag: &'a str,
}

fn dotted(segments: &[Arc<str>]) -> String {
    segments.join(".")
}

impl Builder<'_> {
    fn err(&self, segments: &[Arc<str>], message: impl Into<String>) -> Error {
        let path = dotted(segments);
        let full = match (self.tag.is_empty(), path.is_empty()) {
            (true, _) => path,
            (false, true) => self.tag.to_owned(),
            (false, false) => format!("{}.{path}", self.tag),
        };
        Error::spec(full, message)
    }

    fn namespace(&mut self, map: &Map, prefix: &[Arc<str>]) -> Result<()> {
        // Register the namespace itself so an empty one still appears in points.
        self.slot(prefix, None)?;
        for (key, value) in map {
            let mut segments = prefix.to_vec();
            for part in key.split('.') {
                if part.is_empty() {
                    return Err(self.err(
                        prefix,
                        format!("key {key:?} has an empty segment (keys are dotted paths like \"exit.stop\")"),
                    ));
                }
                segments.push(Arc::from(part));
            }
            match value {
                Value::Map(m) if !m.contains_key("type") => self.namespace(m, &segments)?,
                _ => {
                    let param = self.leaf(value, &segments)?;
                    let index = self.params.len();
                    self.params.push(param);
                    self.slot(&segments, Some(index))?;
                }
            }
        }
        Ok(())
    }

    /// Places a namespace (`leaf = None`) or a leaf at `segments`, creating parent namespaces.
    fn slot(&mut self, segments: &[Arc<str>], leaf: Option<usize>) -> Result<()> {
        let Some((last, parents)) = segments.split_last() else {
            return Ok(());
        };
        let mut ns = &mut self.shape;
        for (depth, seg) in parents.iter().enumerate() {
            let node = ns
                .entry(seg.clone())
                .or_insert_with(|| Node::Namespace(IndexMap::new()));
            ns = match node {
                Node::Namespace(m) => m,
                Node::Leaf(_) => {
                    let here = &segments[..=depth];
                    return Err(Error::spec(
                        qualify(self.tag, &dotted(here)),
                        format!(
                            "is a parameter and also the namespace of {:?}; rename one of them",
                            dotted(segments)
                        ),
                    ));
                }
            };
        }
        let conflict = match (ns.get(last), leaf) {
            (None, Some(i)) => {
                ns.insert(last.clone(), Node::Leaf(i));
                None
            }
            (None, None) => {
                ns.insert(last.clone(), Node::Namespace(IndexMap::new()));
                None
            }
            (Some(Node::Namespace(_)), None) => None,
            (Some(Node::Leaf(_)), Some(_)) => Some(
                "is defined twice (dotted and nested keys name the same path); keep one definition",
            ),
            (Some(_), _) => Some(
                "is both a parameter and a namespace; a path holds either a value or more parameters",
            ),
        };
        match conflict {
            Some(message) => Err(Error::spec(qualify(self.tag, &dotted(segments)), message)),
            None => Ok(()),
        }
    }

    fn leaf(&self, value: &Value, segments: &[Arc<str>]) -> Result<Param> {
        let path = dotted(segments);
        let err = |m: String| self.err(segments, m);
        let make = |kind, axis, fields| {
            Ok(Param {
                path: path.clone(),
                segments: segments.to_vec(),
                kind,
                axis,
                fields,
            })
        };
        let Value::Map(m) = value else {
            // A bare scalar or list is a fixed value.
            return make(
                Kind::Fixed,
                Axis::Values(vec![value.clone()]),
                vec![("value", value.clone())],
            );
        };
        let ty = match m.get("type") {
            Some(Value::Str(s)) => s.clone(),
            Some(other) => {
                return Err(err(format!(
                    "`type` must be a string, got {}",
                    other.type_name()
                )))
            }
            None => return Err(err("missing `type`".into())),
        };
        let allowed: &[&str] = match &*ty {
            "grid" => &["values"],
            "fixed" => &["value"],
            "int" => &["low", "high", "step", "log"],
            "float" => &["low", "high", "step", "num", "log"],
            "loguniform" => &["low", "high", "num"],
            other => {
                return Err(err(format!(
                "unknown type {other:?}{} (expected one of grid, fixed, int, float, loguniform)",
                hint(type_for(other))
            )))
            }
        };
        // Every unknown field of the leaf in one message, each with its closest allowed one.
        let unknown: Vec<String> = m
            .keys()
            .filter(|key| &***key != "type" && !allowed.contains(&&***key))
            .map(|key| format!("{key:?}{}", hint(suggest(key, allowed.iter().copied()))))
            .collect();
        if !unknown.is_empty() {
            let noun = if unknown.len() == 1 {
                "field"
            } else {
                "fields"
            };
            return Err(err(format!(
                "unknown {noun} {} for type {ty:?} (allowed: {})",
                unknown.join(", "),
                allowed.join(", ")
            )));
        }
        let required = |name: &'static str| {
            m.get(name)
                .ok_or_else(|| err(format!("type {ty:?} needs the field `{name}`")))
        };
        match &*ty {
            "grid" => {
                let values = match required("values")? {
                    Value::List(v) if v.is_empty() => {
                        return Err(err(
                            "`values` is empty; a grid axis needs at least one choice".into(),
                        ))
                    }
                    Value::List(v) => v.clone(),
                    other => {
                        return Err(err(format!(
                        "`values` must be a list, got {} (for a single value use type \"fixed\")",
                        other.type_name()
                    )))
                    }
                };
                let fields = vec![("values", Value::List(values.clone()))];
                make(Kind::Grid, Axis::Values(values), fields)
            }
            "fixed" => {
                let v = required("value")?.clone();
                make(
                    Kind::Fixed,
                    Axis::Values(vec![v.clone()]),
                    vec![("value", v)],
                )
            }
            "int" => {
                let int = |name: &'static str| match m.get(name) {
                    Some(Value::Int(i)) => Ok(Some(*i)),
                    None => Ok(None),
                    Some(other) => Err(err(format!(
                        "`{name}` of an int range must be an integer, got {} {}",
                        other.type_name(),
                        show(other)
                    ))),
                };
                let low =
                    int("low")?.ok_or_else(|| err("type \"int\" needs the field `low`".into()))?;
                let high = int("high")?
                    .ok_or_else(|| err("type \"int\" needs the field `high`".into()))?;
                let step = int("step")?.unwrap_or(1);
                let log = flag(m, "log", &err)?;
                if step <= 0 {
                    return Err(err(format!("`step` must be positive, got {step}")));
                }
                if low > high {
                    return Err(err(format!(
                        "`low` ({low}) is greater than `high` ({high})"
                    )));
                }
                if log && low <= 0 {
                    return Err(err(format!("a log range needs `low` > 0, got {low}")));
                }
                let len = (high as i128 - low as i128) / step as i128 + 1;
                let len = u64::try_from(len)
                    .map_err(|_| err("range has more than 2^64 - 1 values".into()))?;
                let mut fields = vec![
                    ("low", Value::Int(low)),
                    ("high", Value::Int(high)),
                    ("step", Value::Int(step)),
                ];
                fields.push(("log", Value::Bool(log)));
                make(Kind::Int, Axis::Int { low, step, len }, fields)
            }
            _ => {
                let log = ty.as_ref() == "loguniform" || flag(m, "log", &err)?;
                let low_v = required("low")?;
                let high_v = required("high")?;
                let (low, high) = (number(low_v, "low", &err)?, number(high_v, "high", &err)?);
                if low > high {
                    return Err(err(format!(
                        "`low` ({low}) is greater than `high` ({high})"
                    )));
                }
                if log && low <= 0.0 {
                    return Err(err(format!("a log range needs `low` > 0, got {low}")));
                }
                let step = m.get("step");
                let num = match m.get("num") {
                    None => None,
                    Some(Value::Int(n)) if *n >= 1 => Some(*n as u64),
                    Some(other) => {
                        return Err(err(format!(
                            "`num` must be an integer ≥ 1, got {}",
                            show(other)
                        )))
                    }
                };
                let mut fields = vec![("low", as_float(low_v)), ("high", as_float(high_v))];
                let axis = match (step, num) {
                    (Some(_), Some(_)) => {
                        return Err(err("give either `step` or `num`, not both".into()))
                    }
                    (Some(_), None) if log => {
                        return Err(err(
                            "a log range is spaced by `num`, not `step`; replace `step` by `num`"
                                .into(),
                        ))
                    }
                    (Some(step_v), None) => {
                        let dl = to_decimal(low_v, &path, "low").map_err(|e| retag(e, self.tag))?;
                        let dh =
                            to_decimal(high_v, &path, "high").map_err(|e| retag(e, self.tag))?;
                        let ds =
                            to_decimal(step_v, &path, "step").map_err(|e| retag(e, self.tag))?;
                        if ds <= Decimal::ZERO {
                            return Err(err(format!(
                                "`step` must be positive, got {}",
                                show(step_v)
                            )));
                        }
                        let len = stepped_len(dl, dh, ds, &path).map_err(|e| retag(e, self.tag))?;
                        fields.push(("step", as_float(step_v)));
                        Axis::FloatStep {
                            low: dl,
                            step: ds,
                            len,
                        }
                    }
                    (None, Some(num)) if log => {
                        fields.push(("num", Value::Int(num as i64)));
                        Axis::FloatLog { low, high, num }
                    }
                    (None, Some(num)) => {
                        let dl = to_decimal(low_v, &path, "low").map_err(|e| retag(e, self.tag))?;
                        let dh =
                            to_decimal(high_v, &path, "high").map_err(|e| retag(e, self.tag))?;
                        fields.push(("num", Value::Int(num as i64)));
                        Axis::FloatNum {
                            low: dl,
                            high: dh,
                            num,
                        }
                    }
                    (None, None) => Axis::Continuous { low, high, log },
                };
                fields.push(("log", Value::Bool(log)));
                make(Kind::Float, axis, fields)
            }
        }
    }
}

const TYPES: [&str; 5] = ["grid", "fixed", "int", "float", "loguniform"];

/// The type a mistyped or foreign type name means: a close spelling (`integer`, `flaot`), or the
/// name other libraries give it (Optuna's `categorical`, scikit-learn's `uniform`).
fn type_for(name: &str) -> Option<&'static str> {
    match name.to_ascii_lowercase().as_str() {
        "categorical" | "choice" | "choices" | "list" | "values" | "enum" => Some("grid"),
        "uniform" | "real" | "double" | "number" | "continuous" => Some("float"),
        "randint" | "range" | "discrete" => Some("int"),
        "const" | "constant" | "value" => Some("fixed"),
        "log" | "log-uniform" | "log_uniform" | "reciprocal" => Some("loguniform"),
        lower => suggest(lower, TYPES),
    }
}

fn hint(suggestion: Option<&str>) -> String {
    suggestion
        .map(|s| format!(" (did you mean {s:?}?)"))
        .unwrap_or_default()
}

fn qualify(tag: &str, path: &str) -> String {
    if tag.is_empty() {
        path.to_owned()
    } else {
        format!("{tag}.{path}")
    }
}

fn retag(e: Error, tag: &str) -> Error {
    match e {
        Error::Spec { path, message } if !tag.is_empty() => {
            Error::spec(qualify(tag, &path), message)
        }
        other => other,
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::Str(s) => format!("{s:?}"),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        other => other.type_name().into(),
    }
}

fn as_float(v: &Value) -> Value {
    match v {
        Value::Int(i) => Value::Float(*i as f64),
        other => other.clone(),
    }
}

fn number(v: &Value, name: &str, err: &dyn Fn(String) -> Error) -> Result<f64> {
    match v {
        Value::Int(i) => Ok(*i as f64),
        Value::Float(f) if f.is_finite() => Ok(*f),
        Value::Float(f) => Err(err(format!("`{name}` must be a finite number, got {f}"))),
        other => Err(err(format!(
            "`{name}` must be a number, got {} {}",
            other.type_name(),
            show(other)
        ))),
    }
}

fn flag(m: &Map, name: &str, err: &dyn Fn(String) -> Error) -> Result<bool> {
    match m.get(name) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(err(format!(
            "`{name}` must be true or false, got {}",
            show(other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, Value)]) -> Value {
        Value::map_from(pairs.iter().map(|(k, v)| (*k, v.clone())))
    }

    fn grid(values: &[i64]) -> Value {
        map(&[
            ("type", Value::Str("grid".into())),
            (
                "values",
                Value::List(values.iter().map(|&i| Value::Int(i)).collect()),
            ),
        ])
    }

    fn err_path(root: &Value) -> String {
        match parse_root(root) {
            Err(Error::Spec { path, .. }) => path,
            other => panic!("expected a spec error, got {other:?}"),
        }
    }

    #[test]
    fn dotted_and_nested_keys_are_one_tree_in_declaration_order() {
        let root = map(&[
            ("a.x", grid(&[1, 2])),
            ("b", Value::Int(7)),
            ("a", map(&[("y", grid(&[3]))])),
        ]);
        let tree = parse_root(&root).unwrap().remove(0);
        let paths: Vec<_> = tree.params.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["a.x", "a.y", "b"]);
        assert_eq!(tree.params[2].kind, Kind::Fixed);
        assert_eq!(
            tree.shape.keys().map(|k| &**k).collect::<Vec<_>>(),
            ["a", "b"]
        );
    }

    #[test]
    fn conflicts_name_the_path() {
        let twice = map(&[("a.x", grid(&[1])), ("a", map(&[("x", grid(&[2]))]))]);
        assert_eq!(err_path(&twice), "a.x");
        let both = map(&[("a", grid(&[1])), ("a.x", grid(&[2]))]);
        assert_eq!(err_path(&both), "a");
        let both_rev = map(&[("a.x", grid(&[1])), ("a", grid(&[2]))]);
        assert_eq!(err_path(&both_rev), "a");
    }

    #[test]
    fn leaf_errors_name_the_path() {
        let t = |leaf: Value| err_path(&map(&[("ns", map(&[("p", leaf)]))]));
        let s = |x: &str| Value::Str(x.into());
        assert_eq!(t(map(&[("type", s("nope"))])), "ns.p");
        assert_eq!(
            t(map(&[("type", s("grid")), ("values", Value::List(vec![]))])),
            "ns.p"
        );
        assert_eq!(
            t(map(&[("type", s("int")), ("low", Value::Int(1))])),
            "ns.p"
        );
        assert_eq!(
            t(map(&[
                ("type", s("int")),
                ("low", Value::Int(1)),
                ("high", Value::Int(2)),
                ("stp", Value::Int(1))
            ])),
            "ns.p"
        );
        assert_eq!(
            t(map(&[
                ("type", s("float")),
                ("low", Value::Float(1.0)),
                ("high", Value::Float(0.0)),
                ("step", Value::Float(0.1))
            ])),
            "ns.p"
        );
        assert_eq!(
            t(map(&[
                ("type", s("float")),
                ("low", Value::Float(0.0)),
                ("high", Value::Float(1.0)),
                ("step", Value::Float(0.0))
            ])),
            "ns.p"
        );
    }

    fn err_message(root: &Value) -> String {
        match parse_root(root) {
            Err(Error::Spec { message, .. }) => message,
            other => panic!("expected a spec error, got {other:?}"),
        }
    }

    #[test]
    fn unknown_types_and_fields_suggest_the_meant_one() {
        let s = |x: &str| Value::Str(x.into());
        let leaf = |pairs: &[(&str, Value)]| map(&[("p", map(pairs))]);
        let int = |extra: (&str, Value)| {
            leaf(&[
                ("type", s("int")),
                ("low", Value::Int(1)),
                ("high", Value::Int(9)),
                extra,
            ])
        };
        for (ty, meant) in [
            ("integer", "int"),
            ("flaot", "float"),
            ("categorical", "grid"),
            ("uniform", "float"),
        ] {
            let msg = err_message(&leaf(&[("type", s(ty))]));
            assert!(
                msg.starts_with(&format!("unknown type {ty:?} (did you mean {meant:?}?)")),
                "{msg}"
            );
        }
        let msg = err_message(&leaf(&[("type", s("zzz"))]));
        assert_eq!(
            msg,
            "unknown type \"zzz\" (expected one of grid, fixed, int, float, loguniform)"
        );
        let msg = err_message(&int(("stepp", Value::Int(2))));
        assert_eq!(
            msg,
            "unknown field \"stepp\" (did you mean \"step\"?) for type \"int\" (allowed: low, high, step, log)"
        );
        let msg = err_message(&leaf(&[
            ("type", s("int")),
            ("lo", Value::Int(1)),
            ("high", Value::Int(2)),
        ]));
        assert!(
            msg.contains("\"lo\" (did you mean \"low\"?) for type \"int\""),
            "{msg}"
        );
        let msg = err_message(&leaf(&[
            ("type", s("int")),
            ("lo", Value::Int(1)),
            ("high", Value::Int(2)),
            ("stepp", Value::Int(1)),
        ]));
        assert_eq!(
            msg,
            "unknown fields \"lo\" (did you mean \"low\"?), \"stepp\" (did you mean \"step\"?) \
             for type \"int\" (allowed: low, high, step, log)"
        );
    }

    #[test]
    fn continuous_ranges_parse_but_are_not_discrete() {
        let root = map(&[(
            "lr",
            map(&[
                ("type", Value::Str("float".into())),
                ("low", Value::Float(1e-4)),
                ("high", Value::Float(1.0)),
                ("log", Value::Bool(true)),
            ]),
        )]);
        let tree = parse_root(&root).unwrap().remove(0);
        assert!(matches!(
            tree.params[0].axis,
            Axis::Continuous { log: true, .. }
        ));
        assert!(matches!(tree.require_discrete(), Err(Error::Spec { path, .. }) if path == "lr"));
    }

    #[test]
    fn union_errors_carry_the_tree_index() {
        let root = Value::List(vec![
            map(&[("a", grid(&[1]))]),
            map(&[("b", map(&[("type", Value::Str("x".into()))]))]),
        ]);
        assert_eq!(err_path(&root), "[1].b");
    }
}
