//! Typed columns of a range of a grid view, without building points: numeric axes become
//! i64/f64/bool vectors, others a vector of value positions the bindings turn into objects.

use super::axis::{Axis, Dtype};
use super::constrained::Check;
use super::order::View;
use super::Grid;
use crate::error::{Error, Result};
use crate::value::Value;

/// Object columns hold this for a point whose tree lacks the path (unions only).
pub const MISSING: u64 = u64::MAX;

/// Axes up to this size get a lookup table; larger ones compute each value.
const TABLE_LIMIT: u64 = 1 << 16;

pub enum Column {
    I64(Vec<i64>),
    F64(Vec<f64>),
    Bool(Vec<bool>),
    /// Position of the value on its axis (of the point's part), or `MISSING`.
    Object(Vec<u64>),
}

pub struct Columns {
    /// The part of each point, only for unions of several trees.
    pub parts: Option<Vec<u32>>,
    /// Parallel to `Grid::paths`.
    pub columns: Vec<Column>,
}

/// Per path: its dtype over all parts and, per part, the axis holding it.
pub fn plan(grid: &Grid) -> Vec<(Dtype, Vec<Option<usize>>)> {
    grid.paths()
        .iter()
        .map(|path| {
            let axes: Vec<Option<usize>> =
                grid.parts.iter().map(|p| p.tree.position(path)).collect();
            let mut dtypes = grid
                .parts
                .iter()
                .zip(&axes)
                .map(|(p, a)| a.map(|a| p.tree.params[a].axis.dtype()));
            let first = dtypes.next().flatten();
            let same = first.is_some() && dtypes.all(|d| d == first);
            (
                if same {
                    first.unwrap_or(Dtype::Object)
                } else {
                    Dtype::Object
                },
                axes,
            )
        })
        .collect()
}

enum Getter<'a> {
    Int { low: i64, step: i64 },
    I64(Vec<i64>),
    F64(Vec<f64>),
    Bool(Vec<bool>),
    Compute(&'a Axis),
}

impl Getter<'_> {
    fn new(axis: &Axis, dtype: Dtype) -> Getter<'_> {
        if let (Axis::Int { low, step, .. }, Dtype::I64) = (axis, dtype) {
            return Getter::Int {
                low: *low,
                step: *step,
            };
        }
        let n = axis.size().unwrap_or(0);
        if n > TABLE_LIMIT {
            return Getter::Compute(axis);
        }
        let values = (0..n).map(|k| axis.value(k));
        match dtype {
            Dtype::I64 => Getter::I64(values.map(|v| int(&v)).collect()),
            Dtype::F64 => Getter::F64(values.map(|v| v.as_f64().unwrap_or(f64::NAN)).collect()),
            Dtype::Bool => Getter::Bool(values.map(|v| matches!(v, Value::Bool(true))).collect()),
            Dtype::Object => Getter::Compute(axis),
        }
    }

    fn i64(&self, k: u64) -> i64 {
        match self {
            Getter::Int { low, step } => low + step * k as i64,
            Getter::I64(t) => t[k as usize],
            Getter::Compute(a) => int(&a.value(k)),
            _ => 0,
        }
    }

    fn f64(&self, k: u64) -> f64 {
        match self {
            Getter::F64(t) => t[k as usize],
            Getter::Compute(a) => a.value(k).as_f64().unwrap_or(f64::NAN),
            _ => f64::NAN,
        }
    }

    fn bool(&self, k: u64) -> bool {
        match self {
            Getter::Bool(t) => t[k as usize],
            _ => false,
        }
    }
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        _ => 0,
    }
}

fn reserve<T>(n: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    // Fallible, so an impossible size is an error instead of an abort.
    v.try_reserve_exact(n).map_err(|_| {
        Error::Invalid(format!(
            "cannot allocate columns of {n} values; use smaller chunks"
        ))
    })?;
    Ok(v)
}

fn empty(dtype: Dtype, n: usize) -> Result<Column> {
    Ok(match dtype {
        Dtype::I64 => Column::I64(reserve(n)?),
        Dtype::F64 => Column::F64(reserve(n)?),
        Dtype::Bool => Column::Bool(reserve(n)?),
        Dtype::Object => Column::Object(reserve(n)?),
    })
}

fn push(col: &mut Column, get: Option<&Getter>, k: u64) {
    match (col, get) {
        (Column::I64(v), Some(g)) => v.push(g.i64(k)),
        (Column::F64(v), Some(g)) => v.push(g.f64(k)),
        (Column::Bool(v), Some(g)) => v.push(g.bool(k)),
        (Column::Object(v), Some(_)) => v.push(k),
        (Column::Object(v), None) => v.push(MISSING),
        // A typed column exists only when every part has the path.
        _ => {}
    }
}

/// Columns of view positions `from..to`.
pub fn fill(grid: &Grid, view: &View, from: u128, to: u128, check: Check) -> Result<Columns> {
    let n = usize::try_from(to - from)
        .map_err(|_| Error::Invalid("too many points for columns; use smaller chunks".into()))?;
    let plan = plan(grid);
    let getters: Vec<Vec<Option<Getter>>> = plan
        .iter()
        .map(|(dtype, axes)| {
            axes.iter()
                .zip(&grid.parts)
                .map(|(a, p)| a.map(|a| Getter::new(&p.tree.params[a].axis, *dtype)))
                .collect()
        })
        .collect();
    let mut columns: Vec<Column> = plan
        .iter()
        .map(|(d, _)| empty(*d, n))
        .collect::<Result<_>>()?;

    let single_product = grid.parts.len() == 1 && grid.parts[0].space.is_product();
    if let (true, Some((start, 1))) = (single_product, view.as_range()) {
        let base = (start + from as i128) as u128;
        let radices = grid.parts[0].space.radices();
        let mut stride = 1u128;
        let mut strides = vec![0u128; radices.len()];
        for a in (0..radices.len()).rev() {
            strides[a] = stride;
            stride *= radices[a] as u128;
        }
        for (c, (_, axes)) in plan.iter().enumerate() {
            let Some(a) = axes[0] else { continue };
            let get = getters[c][0].as_ref();
            fill_repeating(&mut columns[c], get, base, n, strides[a], radices[a]);
            check()?;
        }
        return Ok(Columns {
            parts: None,
            columns,
        });
    }

    let mut parts = (grid.parts.len() > 1).then(|| Vec::with_capacity(n));
    let mut digits = Vec::new();
    for (j, pos) in (from..to).enumerate() {
        if j % 65_536 == 65_535 {
            check()?;
        }
        let p = grid.digits(view.map(pos), &mut digits);
        if let Some(parts) = parts.as_mut() {
            parts.push(p as u32);
        }
        for (c, (_, axes)) in plan.iter().enumerate() {
            let get = getters[c][p].as_ref();
            let k = axes[p].map_or(MISSING, |a| digits[a]);
            push(&mut columns[c], get, k);
        }
    }
    Ok(Columns { parts, columns })
}

/// Fills `n` values of a column whose value position at base index `i` is `(i / stride) % radix`.
/// The column is periodic with period `stride · radix`: the first period is written run by run,
/// the rest is copied from what is already written, doubling each time (memcpy speed).
fn fill_repeating(
    col: &mut Column,
    get: Option<&Getter>,
    base: u128,
    n: usize,
    stride: u128,
    radix: u64,
) {
    let block = base / stride;
    let runs = Runs {
        k: (block % radix as u128) as u64,
        first_run: ((block + 1) * stride - base).min(n as u128) as usize,
        stride: stride.min(usize::MAX as u128) as usize,
        radix,
        period: stride.saturating_mul(radix as u128),
    };
    match (col, get) {
        (Column::I64(v), Some(g)) => runs.fill(v, n, |k| g.i64(k)),
        (Column::F64(v), Some(g)) => runs.fill(v, n, |k| g.f64(k)),
        (Column::Bool(v), Some(g)) => runs.fill(v, n, |k| g.bool(k)),
        (Column::Object(v), _) => runs.fill(v, n, |k| k),
        _ => {}
    }
}

/// Where a repeating column starts: value position `k` for `first_run` values, then runs of
/// `stride`, cycling through `radix` positions; the whole pattern repeats every `period` values.
struct Runs {
    k: u64,
    first_run: usize,
    stride: usize,
    radix: u64,
    period: u128,
}

impl Runs {
    fn fill<T: Copy>(&self, v: &mut Vec<T>, n: usize, value: impl Fn(u64) -> T) {
        let head = self.period.min(n as u128) as usize;
        let (mut k, mut run) = (self.k, self.first_run);
        while v.len() < head {
            let take = run.min(head - v.len());
            v.extend(std::iter::repeat_n(value(k), take));
            k = if k + 1 == self.radix { 0 } else { k + 1 };
            run = self.stride;
        }
        while v.len() < n {
            let len = v.len();
            let whole = len - len % head;
            let take = whole.min(n - len);
            let from = len % head;
            v.extend_from_within(from..from + take);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::constrained::Constraint;
    use crate::grid::spec::Tree;
    use std::sync::Arc;

    fn map(pairs: Vec<(&str, Value)>) -> Value {
        Value::Map(pairs.into_iter().map(|(k, v)| (Arc::from(k), v)).collect())
    }

    fn none(_: &Tree, _: &str, _: bool) -> Result<Option<Constraint>> {
        Ok(None)
    }

    #[test]
    fn fast_and_general_paths_agree() {
        let tree = map(vec![
            (
                "i",
                map(vec![
                    ("type", Value::Str("int".into())),
                    ("low", Value::Int(1)),
                    ("high", Value::Int(5)),
                ]),
            ),
            (
                "f",
                map(vec![
                    ("type", Value::Str("float".into())),
                    ("low", Value::Float(0.1)),
                    ("high", Value::Float(0.3)),
                    ("step", Value::Float(0.1)),
                ]),
            ),
            (
                "b",
                map(vec![
                    ("type", Value::Str("grid".into())),
                    (
                        "values",
                        Value::List(vec![Value::Bool(true), Value::Bool(false)]),
                    ),
                ]),
            ),
            (
                "o",
                map(vec![
                    ("type", Value::Str("grid".into())),
                    (
                        "values",
                        Value::List(vec![Value::Str("x".into()), Value::Int(1)]),
                    ),
                ]),
            ),
        ]);
        let g = Grid::new(&tree, &[], &none, &|| Ok(())).unwrap();
        let n = g.len();
        let ok = &|| Ok(());
        let fast = fill(&g, &View::identity(n), 7, 50, ok).unwrap();
        // A reversed view goes through the general path; reverse it back to compare.
        let rev = View::identity(n).slice(n as i128 - 1, -1, n).unwrap();
        let general = fill(&g, &rev, n - 50, n - 7, ok).unwrap();
        for (a, b) in fast.columns.iter().zip(&general.columns) {
            match (a, b) {
                (Column::I64(x), Column::I64(y)) => assert!(x.iter().eq(y.iter().rev())),
                (Column::F64(x), Column::F64(y)) => assert!(x.iter().eq(y.iter().rev())),
                (Column::Bool(x), Column::Bool(y)) => assert!(x.iter().eq(y.iter().rev())),
                (Column::Object(x), Column::Object(y)) => assert!(x.iter().eq(y.iter().rev())),
                _ => panic!("dtypes differ"),
            }
        }
        let Column::F64(f) = &fast.columns[1] else {
            panic!("f is not f64")
        };
        assert_eq!(&f[..6], &[0.2, 0.3, 0.3, 0.3, 0.3, 0.1]);
        let Column::I64(i) = &fast.columns[0] else {
            panic!("i is not i64")
        };
        assert_eq!(i[0], 1);
        assert_eq!(i[42], 5);
    }
}
