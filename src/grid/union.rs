//! `Grid`: the union of one or more trees' index spaces, in order.

use std::collections::HashMap;

use super::axis::Axis;
use super::constrained::{Check, Constraint, Space};
use super::spec::{parse_root, Node, Tree};
use crate::error::{Error, Result};
use crate::value::Value;

/// One tree of the union and its index space.
pub struct Part {
    pub tree: Tree,
    pub space: Space,
    /// Per axis, for float ranges of at most `FLOAT_INDEX_LIMIT` values: value bits → position,
    /// so `index`/`in` skip the decimal arithmetic of `Axis::position`.
    floats: Vec<Option<HashMap<u64, u64>>>,
}

const FLOAT_INDEX_LIMIT: u64 = 1 << 12;

impl Part {
    pub fn new(tree: Tree, space: Space) -> Part {
        let floats = tree
            .params
            .iter()
            .map(|p| match (&p.axis, p.axis.size()) {
                (Axis::Values(_) | Axis::Int { .. }, _) => None,
                (axis, Some(n)) if n <= FLOAT_INDEX_LIMIT => Some(
                    (0..n)
                        .filter_map(|k| match axis.value(k) {
                            Value::Float(f) => Some((f.to_bits(), k)),
                            _ => None,
                        })
                        .collect(),
                ),
                _ => None,
            })
            .collect();
        Part {
            tree,
            space,
            floats,
        }
    }

    /// The position of `value` on axis `a`.
    fn position(&self, a: usize, value: &Value) -> Option<u64> {
        match (&self.floats[a], value) {
            (Some(index), Value::Float(f)) => index.get(&f.to_bits()).copied(),
            (Some(_), _) => None,
            (None, _) => self.tree.params[a].axis.position(value),
        }
    }

    pub fn axes(&self) -> impl Iterator<Item = &Axis> {
        self.tree.params.iter().map(|p| &p.axis)
    }
}

pub struct Grid {
    pub parts: Vec<Part>,
    /// Index of each part's first point.
    starts: Vec<u128>,
    len: u128,
    /// Every parameter path, in first-seen order over the parts.
    paths: Vec<String>,
}

/// Compiles a constraint text against one tree; with `strict` false, `None` for a constraint that
/// names a parameter the tree does not have.
pub type Compiler<'a> = &'a dyn Fn(&Tree, &str, bool) -> Result<Option<Constraint>>;

impl Grid {
    /// Builds a grid from a parameters tree (or a list of trees) and constraint texts.
    pub fn new(
        root: &Value,
        constraints: &[String],
        compile: Compiler,
        check: Check,
    ) -> Result<Grid> {
        let trees = parse_root(root)?;
        for tree in &trees {
            tree.require_discrete()?;
        }
        let mut used = vec![false; constraints.len()];
        let strict = trees.len() == 1;
        let mut parts = Vec::with_capacity(trees.len());
        for tree in trees {
            let mut bound = Vec::new();
            for (k, text) in constraints.iter().enumerate() {
                if let Some(c) = compile(&tree, text, strict)? {
                    used[k] = true;
                    bound.push(c);
                }
            }
            let radices: Vec<u64> = tree
                .params
                .iter()
                .map(|p| p.axis.size().unwrap_or(0))
                .collect();
            let axes: Vec<Axis> = tree.params.iter().map(|p| p.axis.clone()).collect();
            let space = Space::constrained(&axes, radices, bound, check)?;
            parts.push(Part::new(tree, space));
        }
        if let Some(k) = used.iter().position(|u| !u) {
            // Reached only for unions: a single tree reports the unknown name while compiling.
            return Err(Error::Expr {
                expr: constraints[k].clone(),
                column: 1,
                message: "names parameters that no tree of the union defines all of".into(),
            });
        }
        Grid::from_parts(parts)
    }

    pub fn from_parts(parts: Vec<Part>) -> Result<Grid> {
        let mut starts = Vec::with_capacity(parts.len());
        let mut len = 0u128;
        for p in &parts {
            starts.push(len);
            len = len
                .checked_add(p.space.len())
                .ok_or_else(|| Error::spec("", "the grid has more than 2^128 points"))?;
        }
        // A set beside the ordered list: `Vec::contains` made this quadratic, minutes for a tree of
        // 100,000 fixed values (issue 12, item 8).
        let mut paths: Vec<String> = Vec::new();
        let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for p in &parts {
            for param in &p.tree.params {
                if seen.insert(param.path.as_str()) {
                    paths.push(param.path.clone());
                }
            }
        }
        Ok(Grid {
            parts,
            starts,
            len,
            paths,
        })
    }

    pub fn len(&self) -> u128 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn paths(&self) -> &[String] {
        &self.paths
    }

    pub fn start(&self, part: usize) -> u128 {
        self.starts[part]
    }

    /// Which part holds index `i`, and `i`'s index inside it (`i` below `len`).
    pub fn locate(&self, i: u128) -> (usize, u128) {
        if self.parts.len() == 1 {
            return (0, i);
        }
        let p = self.starts.partition_point(|&s| s <= i).saturating_sub(1);
        // Skip empty parts that share a start with the next one.
        let mut p = p;
        while p + 1 < self.parts.len() && self.starts[p + 1] <= i {
            p += 1;
        }
        (p, i - self.starts[p])
    }

    /// Digits of point `i` into `out` (resized); returns its part.
    pub fn digits(&self, i: u128, out: &mut Vec<u64>) -> usize {
        let (p, local) = self.locate(i);
        let space = &self.parts[p].space;
        out.resize(space.radices().len(), 0);
        space.decode(local, out);
        p
    }

    /// The index of a point (nested dicts, or flat dotted keys when `flat`), if it is in the grid.
    pub fn find(&self, point: &Value, flat: bool) -> Option<u128> {
        self.parts
            .iter()
            .enumerate()
            .find_map(|(p, part)| Some(self.starts[p] + Grid::find_in(part, point, flat)?))
    }

    /// The index of a point inside one part.
    pub fn find_in(part: &Part, point: &Value, flat: bool) -> Option<u128> {
        let Value::Map(map) = point else { return None };
        let params = &part.tree.params;
        let shape_ok = if flat {
            map.len() == params.len()
        } else {
            same_shape(map, &part.tree.shape)
        };
        if !shape_ok {
            return None;
        }
        let digits: Option<Vec<u64>> = params
            .iter()
            .enumerate()
            .map(|(a, param)| {
                let value = if flat {
                    map.get(param.path.as_str())
                } else {
                    lookup(point, &param.segments)
                }?;
                part.position(a, value)
            })
            .collect();
        part.space.rank(&digits?)
    }
}

fn lookup<'v>(mut v: &'v Value, segments: &[std::sync::Arc<str>]) -> Option<&'v Value> {
    for s in segments {
        v = v.as_map()?.get(&**s)?;
    }
    Some(v)
}

fn same_shape(
    map: &crate::value::Map,
    shape: &indexmap::IndexMap<std::sync::Arc<str>, Node>,
) -> bool {
    map.len() == shape.len()
        && shape.iter().all(|(k, node)| match (node, map.get(&**k)) {
            (Node::Leaf(_), Some(_)) => true,
            (Node::Namespace(inner), Some(Value::Map(m))) => same_shape(m, inner),
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_constraints(_: &Tree, _: &str, _: bool) -> Result<Option<Constraint>> {
        Ok(None)
    }

    fn grid(json: Value) -> Grid {
        Grid::new(&json, &[], &no_constraints, &|| Ok(())).unwrap()
    }

    fn map(pairs: Vec<(&str, Value)>) -> Value {
        Value::map_from(pairs)
    }

    fn ints(values: &[i64]) -> Value {
        map(vec![
            ("type", Value::Str("grid".into())),
            (
                "values",
                Value::List(values.iter().map(|&i| Value::Int(i)).collect()),
            ),
        ])
    }

    #[test]
    fn union_locates_and_finds_points() {
        let g = grid(Value::List(vec![
            map(vec![("a", ints(&[1, 2, 3]))]),
            map(vec![
                ("b", ints(&[5, 6])),
                ("n", map(vec![("c", ints(&[7, 8]))])),
            ]),
        ]));
        assert_eq!(g.len(), 7);
        assert_eq!(g.paths(), ["a", "b", "n.c"]);
        let mut d = Vec::new();
        assert_eq!(g.digits(4, &mut d), 1);
        assert_eq!(d, [0, 1]);
        let point = map(vec![
            ("b", Value::Int(5)),
            ("n", map(vec![("c", Value::Int(8))])),
        ]);
        assert_eq!(g.find(&point, false), Some(4));
        let flat = map(vec![("b", Value::Int(5)), ("n.c", Value::Int(8))]);
        assert_eq!(g.find(&flat, true), Some(4));
        assert_eq!(g.find(&flat, false), None);
        let extra = map(vec![("a", Value::Int(1)), ("z", Value::Int(1))]);
        assert_eq!(g.find(&extra, false), None);
    }

    #[test]
    fn continuous_ranges_are_refused() {
        let tree = map(vec![(
            "x",
            map(vec![
                ("type", Value::Str("float".into())),
                ("low", Value::Float(0.0)),
                ("high", Value::Float(1.0)),
            ]),
        )]);
        let err = Grid::new(&tree, &[], &no_constraints, &|| Ok(()))
            .err()
            .unwrap();
        assert!(err.to_string().contains("step"), "{err}");
    }
}
