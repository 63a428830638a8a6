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

/// The value of path `c` (an index into `Grid::paths`) when it is the same for every point: a
/// single-valued axis (a fixed value) in every part, with equal values. Batch objectives receive
/// such paths as scalars rather than as columns of one repeated value.
pub fn constant(grid: &Grid, c: usize) -> Option<Value> {
    let path = grid.paths().get(c)?;
    let mut found: Option<Value> = None;
    for part in &grid.parts {
        let a = part.tree.position(path)?;
        let axis = &part.tree.params[a].axis;
        if axis.size() != Some(1) {
            return None;
        }
        let v = axis.value(0);
        match &found {
            Some(f) if *f != v => return None,
            Some(_) => {}
            None => found = Some(v),
        }
    }
    found
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

/// Columns to fill in place (the bindings pass numpy's own buffers, which numpy allocates with
/// huge pages; fresh small pages would cost more in page faults than the filling itself).
pub enum Out<'a> {
    I64(&'a mut [i64]),
    F64(&'a mut [f64]),
    Bool(&'a mut [bool]),
    /// Value positions, `MISSING` where the point's tree lacks the path.
    Object(&'a mut [u64]),
    /// Value positions on the axis, in the narrowest type that holds the axis's size (one tree only).
    U8(&'a mut [u8]),
    U16(&'a mut [u16]),
    U32(&'a mut [u32]),
    /// A column the caller does not want (a constant it takes as a scalar).
    Skip,
}

impl Out<'_> {
    fn set(&mut self, j: usize, get: Option<&Getter>, k: u64) {
        match (self, get) {
            (Out::I64(v), Some(g)) => v[j] = g.i64(k),
            (Out::F64(v), Some(g)) => v[j] = g.f64(k),
            (Out::Bool(v), Some(g)) => v[j] = g.bool(k),
            (Out::Object(v), Some(_)) => v[j] = k,
            (Out::Object(v), None) => v[j] = MISSING,
            (Out::U8(v), _) => v[j] = k as u8,
            (Out::U16(v), _) => v[j] = k as u16,
            (Out::U32(v), _) => v[j] = k as u32,
            (Out::Skip, _) => {}
            // A typed column exists only when every part has the path.
            _ => {}
        }
    }
}

fn reserve<T: Clone>(n: usize, zero: T) -> Result<Vec<T>> {
    let mut v = Vec::new();
    // Fallible, so an impossible size is an error instead of an abort.
    v.try_reserve_exact(n).map_err(|_| {
        Error::Invalid(format!(
            "cannot allocate columns of {n} values; use smaller chunks"
        ))
    })?;
    v.resize(n, zero);
    Ok(v)
}

/// The values at positions `from..to` of path `c`'s axis in the first tree, typed as `plan` says
/// (`Object` holds the positions themselves). `None` when the tree lacks the path or the range
/// passes the axis's end.
pub fn axis_column(grid: &Grid, c: usize, from: u64, to: u64) -> Option<Column> {
    let plan = plan(grid);
    let (dtype, axes) = plan.get(c)?;
    let axis = &grid.parts.first()?.tree.params[(*axes.first()?)?].axis;
    if from > to || to > axis.size()? {
        return None;
    }
    let get = Getter::new(axis, *dtype);
    Some(match dtype {
        Dtype::I64 => Column::I64((from..to).map(|k| get.i64(k)).collect()),
        Dtype::F64 => Column::F64((from..to).map(|k| get.f64(k)).collect()),
        Dtype::Bool => Column::Bool((from..to).map(|k| get.bool(k)).collect()),
        Dtype::Object => Column::Object((from..to).collect()),
    })
}

/// Columns of view positions `from..to`, in new vectors.
pub fn fill(grid: &Grid, view: &View, from: u128, to: u128, check: Check) -> Result<Columns> {
    let n = usize::try_from(to - from)
        .map_err(|_| Error::Invalid("too many points for columns; use smaller chunks".into()))?;
    let mut columns: Vec<Column> = plan(grid)
        .iter()
        .map(|(dtype, _)| {
            Ok(match dtype {
                Dtype::I64 => Column::I64(reserve(n, 0)?),
                Dtype::F64 => Column::F64(reserve(n, 0.0)?),
                Dtype::Bool => Column::Bool(reserve(n, false)?),
                Dtype::Object => Column::Object(reserve(n, 0)?),
            })
        })
        .collect::<Result<_>>()?;
    let mut parts = if grid.parts.len() > 1 {
        Some(reserve(n, 0u32)?)
    } else {
        None
    };
    let mut outs: Vec<Out> = columns
        .iter_mut()
        .map(|c| match c {
            Column::I64(v) => Out::I64(v),
            Column::F64(v) => Out::F64(v),
            Column::Bool(v) => Out::Bool(v),
            Column::Object(v) => Out::Object(v),
        })
        .collect();
    fill_into(
        grid,
        view,
        from,
        &mut outs,
        &mut [],
        parts.as_deref_mut(),
        check,
    )?;
    drop(outs);
    Ok(Columns { parts, columns })
}

/// Fills `outs` (parallel to `Grid::paths`, each as long as the range, typed as `plan` says) with
/// the columns of view positions `from..`; `positions` (empty, or parallel to `outs`: `U8`..`U32`,
/// `Object` or `Skip`) receives each value's position on its axis (one tree only); `parts`
/// receives each point's part for unions.
pub fn fill_into(
    grid: &Grid,
    view: &View,
    from: u128,
    outs: &mut [Out],
    positions: &mut [Out],
    mut parts: Option<&mut [u32]>,
    check: Check,
) -> Result<()> {
    let plan = plan(grid);
    let n = outs
        .iter()
        .chain(positions.iter())
        .map(Out::len)
        .chain(parts.as_deref().map(<[u32]>::len))
        .max()
        .unwrap_or(0);
    let getters: Vec<Vec<Option<Getter>>> = plan
        .iter()
        .map(|(dtype, axes)| {
            axes.iter()
                .zip(&grid.parts)
                .map(|(a, p)| a.map(|a| Getter::new(&p.tree.params[a].axis, *dtype)))
                .collect()
        })
        .collect();

    // A consecutive range of one tree whose space is a product of groups of consecutive axes
    // (a plain product, or constraints that link neighbouring parameters only): every column
    // repeats with a period, written run by run and then copied (memcpy speed, no decoding).
    let groups = match (grid.parts.len(), view.as_range()) {
        (1, Some((_, 1))) => grid.parts[0].space.groups(),
        _ => None,
    };
    if let (Some(groups), Some((start, _))) = (groups, view.as_range()) {
        let space = &grid.parts[0].space;
        let base = (start + from as i128) as u128;
        let mut strides = vec![0u128; groups.len()];
        let mut stride = 1u128;
        for g in (0..groups.len()).rev() {
            strides[g] = stride;
            stride = stride.saturating_mul(groups[g].count as u128);
        }
        let mut group_of = vec![0usize; space.radices().len()];
        for (gi, g) in groups.iter().enumerate() {
            group_of[g.first..g.first + g.len].fill(gi);
        }
        for (c, (_, axes)) in plan.iter().enumerate() {
            let Some(a) = axes[0] else { continue };
            let gi = group_of[a];
            let g = &groups[gi];
            let ranks = g.ranks;
            let position = move |k: u64| match ranks {
                None => k,
                Some(r) => space.digit_in(a, r[k as usize]),
            };
            let get = getters[c][0].as_ref();
            fill_repeating(&mut outs[c], get, base, strides[gi], g.count, &position);
            if let Some(out) = positions.get_mut(c) {
                fill_repeating(out, get, base, strides[gi], g.count, &position);
            }
            check()?;
        }
        return Ok(());
    }

    let mut digits = Vec::new();
    for (j, pos) in (from..from + n as u128).enumerate() {
        if j % 65_536 == 65_535 {
            check()?;
        }
        let p = grid.digits(view.map(pos), &mut digits);
        if let Some(parts) = parts.as_deref_mut() {
            parts[j] = p as u32;
        }
        for (c, (_, axes)) in plan.iter().enumerate() {
            let get = getters[c][p].as_ref();
            let k = axes[p].map_or(MISSING, |a| digits[a]);
            outs[c].set(j, get, k);
            if let Some(out) = positions.get_mut(c) {
                out.set(j, get, k);
            }
        }
    }
    Ok(())
}

impl Out<'_> {
    fn len(&self) -> usize {
        match self {
            Out::I64(v) => v.len(),
            Out::F64(v) => v.len(),
            Out::Bool(v) => v.len(),
            Out::Object(v) => v.len(),
            Out::U8(v) => v.len(),
            Out::U16(v) => v.len(),
            Out::U32(v) => v.len(),
            Out::Skip => 0,
        }
    }
}

/// Fills a column whose group position at base index `i` is `(i / stride) % radix`; `position`
/// maps a group position to the value's position on the column's axis.
/// The column is periodic with period `stride · radix`: the first period is written run by run,
/// the rest is copied from what is already written, doubling each time (memcpy speed).
fn fill_repeating(
    out: &mut Out,
    get: Option<&Getter>,
    base: u128,
    stride: u128,
    radix: u64,
    position: &dyn Fn(u64) -> u64,
) {
    let n = out.len();
    let block = base / stride;
    let runs = Runs {
        k: (block % radix as u128) as u64,
        first_run: ((block + 1) * stride - base).min(n as u128) as usize,
        stride: stride.min(usize::MAX as u128) as usize,
        radix,
        period: stride.saturating_mul(radix as u128),
    };
    match (out, get) {
        (Out::I64(v), Some(g)) => runs.fill(v, |k| g.i64(position(k))),
        (Out::F64(v), Some(g)) => runs.fill(v, |k| g.f64(position(k))),
        (Out::Bool(v), Some(g)) => runs.fill(v, |k| g.bool(position(k))),
        (Out::Object(v), _) => runs.fill(v, position),
        (Out::U8(v), _) => runs.fill(v, |k| position(k) as u8),
        (Out::U16(v), _) => runs.fill(v, |k| position(k) as u16),
        (Out::U32(v), _) => runs.fill(v, |k| position(k) as u32),
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
    fn fill<T: Copy>(&self, v: &mut [T], value: impl Fn(u64) -> T) {
        let n = v.len();
        let head = self.period.min(n as u128) as usize;
        let (mut k, mut run, mut pos) = (self.k, self.first_run, 0);
        while pos < head {
            let take = run.min(head - pos);
            v[pos..pos + take].fill(value(k));
            pos += take;
            k = if k + 1 == self.radix { 0 } else { k + 1 };
            run = self.stride;
        }
        while pos < n {
            let whole = pos - pos % head;
            let take = whole.min(n - pos);
            let from = pos % head;
            v.copy_within(from..from + take, pos);
            pos += take;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::constrained::Constraint;
    use crate::grid::spec::Tree;

    fn map(pairs: Vec<(&str, Value)>) -> Value {
        Value::map_from(pairs)
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
