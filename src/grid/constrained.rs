//! The index space of one tree: a plain mixed-radix product, or the admissible points of a
//! constrained product with exact `len` and O(parameters · log) indexing.
//!
//! Constraints link axes into components (union-find). A point is admissible when each
//! component's combination is, so the admissible set is the product of the components' admissible
//! sets and `len` is the product of their counts. Each component stores its admissible
//! combinations as sorted ranks in its own mixed radix (listed when the component's product is at
//! most `LIST_LIMIT`), or — for larger components — cumulative counts every `block` ranks
//! (checkpoints), rescanning at most one block per lookup. Decoding walks the axes in order: within
//! the current prefix each component's admissible ranks form a contiguous range, so the number of
//! completions of a prefix is the product of the components' range counts.

use std::sync::Arc;

use super::axis::Axis;
use super::order;
use crate::error::{Error, Result};
use crate::value::Value;

/// Components up to this many combinations are enumerated and listed (8 bytes per admissible one).
pub const LIST_LIMIT: u64 = 10_000_000;
/// Checkpointed components keep at most this many checkpoints (8 MiB).
const MAX_CHECKPOINTS: u64 = 1 << 20;
const MIN_BLOCK: u64 = 4096;
/// Axes up to this size have their values materialized for evaluation.
const MATERIALIZE_LIMIT: u64 = 1 << 16;

/// A compiled constraint: reads values by slot, answers admissible or not.
pub trait Predicate: Send + Sync {
    fn eval<'v>(&self, slot: &dyn Fn(usize) -> &'v Value) -> Result<bool>;
}

/// A constraint bound to a tree: `axes[slot]` is the tree axis read by that slot.
pub struct Constraint {
    pub text: String,
    pub axes: Vec<usize>,
    pub pred: Box<dyn Predicate>,
}

pub use crate::error::Check;

/// Evaluates a component's constraints on a combination given by its rank.
struct Evaluator {
    axes: Vec<Axis>,
    radices: Vec<u64>,
    materialized: Vec<Option<Vec<Value>>>,
    /// (constraint, slot → local axis)
    constraints: Vec<(Arc<Constraint>, Vec<usize>)>,
}

impl Evaluator {
    fn admissible_digits(&self, digits: &[u64], scratch: &mut [Value]) -> Result<bool> {
        for (a, m) in self.materialized.iter().enumerate() {
            if m.is_none() {
                scratch[a] = self.axes[a].value(digits[a]);
            }
        }
        let scratch = &*scratch;
        let value = |a: usize| -> &Value {
            match &self.materialized[a] {
                Some(values) => &values[digits[a] as usize],
                None => &scratch[a],
            }
        };
        for (c, local) in &self.constraints {
            if !c.pred.eval(&|slot| value(local[slot]))? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn admissible(&self, x: u64, digits: &mut [u64], scratch: &mut [Value]) -> bool {
        order::decode(x as u128, &self.radices, digits);
        // Every rank was evaluated once while building, where errors surfaced; a later error
        // cannot occur for the same inputs.
        self.admissible_digits(digits, scratch).unwrap_or(false)
    }

    fn count(&self, from: u64, to: u64) -> u64 {
        let mut digits = vec![0; self.radices.len()];
        let mut scratch = vec![Value::Null; self.radices.len()];
        (from..to)
            .filter(|&x| self.admissible(x, &mut digits, &mut scratch))
            .count() as u64
    }
}

enum Store {
    /// An unconstrained axis: every rank is admissible.
    Free,
    Listed(Vec<u64>),
    Checkpointed {
        block: u64,
        cumulative: Vec<u64>,
        eval: Evaluator,
    },
}

struct Component {
    /// Product of the component's radices.
    size: u64,
    count: u128,
    store: Store,
}

impl Component {
    /// Admissible ranks below `x`.
    fn below(&self, x: u64) -> u128 {
        match &self.store {
            Store::Free => x as u128,
            Store::Listed(ranks) => ranks.partition_point(|&r| r < x) as u128,
            Store::Checkpointed {
                block,
                cumulative,
                eval,
            } => {
                let b = x / block;
                let start = b * block;
                (cumulative[b as usize] + eval.count(start, x)) as u128
            }
        }
    }

    /// The rank of the `t`-th admissible combination (`t` below `count`).
    fn select(&self, t: u128) -> u64 {
        match &self.store {
            Store::Free => t as u64,
            Store::Listed(ranks) => ranks[t as usize],
            Store::Checkpointed {
                block,
                cumulative,
                eval,
            } => {
                let t = t as u64;
                let b = cumulative.partition_point(|&c| c <= t).saturating_sub(1);
                let mut seen = cumulative[b];
                let mut digits = vec![0; eval.radices.len()];
                let mut scratch = vec![Value::Null; eval.radices.len()];
                let start = b as u64 * block;
                for x in start..self.size {
                    if eval.admissible(x, &mut digits, &mut scratch) {
                        if seen == t {
                            return x;
                        }
                        seen += 1;
                    }
                }
                self.size.saturating_sub(1)
            }
        }
    }
}

/// One factor of a space written as a product of groups of consecutive axes (`Space::groups`).
pub struct Group<'a> {
    /// The group's axes are `first..first + len`.
    pub first: usize,
    pub len: usize,
    /// Its admissible combinations.
    pub count: u64,
    /// Their ranks in the group's own mixed radix, ascending; `None` for a free axis (every
    /// position admissible: the rank is the position).
    pub ranks: Option<&'a [u64]>,
}

pub struct Space {
    radices: Vec<u64>,
    len: u128,
    /// `None` for a plain product.
    constrained: Option<Constrained>,
}

struct Constrained {
    comps: Vec<Component>,
    /// Per axis: its component and its stride inside the component's mixed radix.
    place: Vec<(usize, u64)>,
}

fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

impl Space {
    pub fn product(radices: Vec<u64>, path: &str) -> Result<Space> {
        let len = order::product(radices.iter().map(|&r| r as u128))
            .ok_or_else(|| Error::spec(path, "the grid has more than 2^128 points"))?;
        Ok(Space {
            radices,
            len,
            constrained: None,
        })
    }

    /// `axes[a]` with `radices[a]` values; constraints read the axes they name.
    pub fn constrained(
        axes: &[Axis],
        radices: Vec<u64>,
        constraints: Vec<Constraint>,
        check: Check,
    ) -> Result<Space> {
        Space::constrained_with(axes, radices, constraints, check, LIST_LIMIT, MIN_BLOCK)
    }

    /// `constrained` with explicit limits (tests force the checkpointed store on small grids).
    fn constrained_with(
        axes: &[Axis],
        radices: Vec<u64>,
        constraints: Vec<Constraint>,
        check: Check,
        list_limit: u64,
        min_block: u64,
    ) -> Result<Space> {
        if constraints.is_empty() {
            return Space::product(radices, "");
        }
        let n = radices.len();
        let mut parent: Vec<usize> = (0..n).collect();
        let mut constant = Vec::new();
        for c in &constraints {
            if let Some((&first, rest)) = c.axes.split_first() {
                for &a in rest {
                    let (x, y) = (find(&mut parent, first), find(&mut parent, a));
                    parent[x.max(y)] = x.min(y);
                }
            }
        }
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); n];
        for a in 0..n {
            let root = find(&mut parent, a);
            members[root].push(a);
        }
        let mut bound: Vec<Vec<Arc<Constraint>>> = vec![Vec::new(); n];
        for c in constraints {
            match c.axes.first() {
                Some(&a) => {
                    let root = find(&mut parent, a);
                    bound[root].push(Arc::new(c));
                }
                None => constant.push(c),
            }
        }
        for c in &constant {
            // No parameter involved: the constraint is true or false for the whole grid.
            if !c.pred.eval(&|_| &Value::Null)? {
                return Ok(Space {
                    len: 0,
                    constrained: Some(Constrained {
                        comps: Vec::new(),
                        place: Vec::new(),
                    }),
                    radices,
                });
            }
        }
        let mut comps = Vec::new();
        let mut place = vec![(0usize, 1u64); n];
        for root in 0..n {
            let axes_here = &members[root];
            if axes_here.is_empty() {
                continue;
            }
            let ci = comps.len();
            if bound[root].is_empty() {
                let a = axes_here[0];
                place[a] = (ci, 1);
                comps.push(Component {
                    size: radices[a],
                    count: radices[a] as u128,
                    store: Store::Free,
                });
                continue;
            }
            let local_radices: Vec<u64> = axes_here.iter().map(|&a| radices[a]).collect();
            let texts = || {
                bound[root]
                    .iter()
                    .map(|c| format!("{:?}", c.text))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let size = local_radices
                .iter()
                .try_fold(1u64, |acc, &r| acc.checked_mul(r))
                .ok_or_else(|| {
                    Error::spec(
                        "",
                        format!(
                            "constraints {} link parameters with more than 2^64 combinations; \
                             split them or coarsen the ranges",
                            texts()
                        ),
                    )
                })?;
            let mut stride = 1u64;
            for (k, &a) in axes_here.iter().enumerate().rev() {
                place[a] = (ci, stride);
                stride *= local_radices[k];
            }
            let eval = Evaluator {
                axes: axes_here.iter().map(|&a| axes[a].clone()).collect(),
                materialized: axes_here
                    .iter()
                    .map(|&a| {
                        (radices[a] <= MATERIALIZE_LIMIT)
                            .then(|| (0..radices[a]).map(|k| axes[a].value(k)).collect())
                    })
                    .collect(),
                radices: local_radices,
                constraints: bound[root]
                    .iter()
                    .map(|c| {
                        let local = c
                            .axes
                            .iter()
                            .map(|a| axes_here.iter().position(|m| m == a).unwrap_or(0))
                            .collect();
                        (c.clone(), local)
                    })
                    .collect(),
            };
            comps.push(build_component(eval, size, check, list_limit, min_block)?);
        }
        let len = order::product(comps.iter().map(|c| c.count))
            .ok_or_else(|| Error::spec("", "the grid has more than 2^128 points"))?;
        Ok(Space {
            radices,
            len,
            constrained: Some(Constrained { comps, place }),
        })
    }

    pub fn len(&self) -> u128 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn radices(&self) -> &[u64] {
        &self.radices
    }

    pub fn is_product(&self) -> bool {
        self.constrained.is_none()
    }

    /// The space as a mixed-radix product of groups of consecutive axes, in axis order: point
    /// `i` is `i`'s mixed-radix digits over the groups' counts, each digit indexing its group's
    /// admissible combinations (ascending ranks, so the order is the lexicographic one `decode`
    /// walks). A plain product is one free group per axis. `None` when a constraint links axes
    /// that are not consecutive or a component is too large to list: columns of such spaces are
    /// decoded point by point.
    pub fn groups(&self) -> Option<Vec<Group<'_>>> {
        let Some(c) = &self.constrained else {
            let free = |(a, &r): (usize, &u64)| Group {
                first: a,
                len: 1,
                count: r,
                ranks: None,
            };
            return Some(self.radices.iter().enumerate().map(free).collect());
        };
        if self.len == 0 {
            return None;
        }
        let mut groups: Vec<Group> = Vec::new();
        let mut seen = vec![false; c.comps.len()];
        for (a, &(ci, _)) in c.place.iter().enumerate() {
            if let Some(g) = groups.last_mut() {
                if c.place[g.first].0 == ci {
                    g.len += 1;
                    continue;
                }
            }
            if seen[ci] {
                return None; // the component's axes are not consecutive
            }
            seen[ci] = true;
            let comp = &c.comps[ci];
            let ranks = match &comp.store {
                Store::Free => None,
                Store::Listed(ranks) => Some(ranks.as_slice()),
                Store::Checkpointed { .. } => return None,
            };
            groups.push(Group {
                first: a,
                len: 1,
                count: u64::try_from(comp.count).ok()?,
                ranks,
            });
        }
        Some(groups)
    }

    /// Axis `a`'s digit in `rank`, a rank of its group's combinations (see `groups`).
    pub fn digit_in(&self, a: usize, rank: u64) -> u64 {
        let stride = self.constrained.as_ref().map_or(1, |c| c.place[a].1);
        (rank / stride) % self.radices[a]
    }

    /// Digits of the `i`-th point (`i` below `len`).
    pub fn decode(&self, mut i: u128, out: &mut [u64]) {
        let Some(c) = &self.constrained else {
            return order::decode(i, &self.radices, out);
        };
        let mut lo = vec![0u64; c.comps.len()];
        let mut cnt: Vec<u128> = c.comps.iter().map(|k| k.count).collect();
        let mut total = self.len;
        for (a, &(ci, stride)) in c.place.iter().enumerate() {
            let comp = &c.comps[ci];
            let other = total / cnt[ci];
            let base = comp.below(lo[ci]);
            let x = comp.select(base + i / other);
            let block = x / stride;
            out[a] = block % self.radices[a];
            let lo2 = block * stride;
            let below2 = comp.below(lo2);
            i -= (below2 - base) * other;
            let cnt2 = comp.below(lo2 + stride) - below2;
            total = other * cnt2;
            cnt[ci] = cnt2;
            lo[ci] = lo2;
        }
    }

    /// The index of the point with these digits, `None` if it is not admissible.
    pub fn rank(&self, digits: &[u64]) -> Option<u128> {
        if digits.iter().zip(&self.radices).any(|(d, r)| d >= r) {
            return None;
        }
        let Some(c) = &self.constrained else {
            return Some(order::encode(digits, &self.radices));
        };
        if self.len == 0 {
            return None;
        }
        let mut lo = vec![0u64; c.comps.len()];
        let mut cnt: Vec<u128> = c.comps.iter().map(|k| k.count).collect();
        let mut total = self.len;
        let mut rank = 0u128;
        for (a, &(ci, stride)) in c.place.iter().enumerate() {
            let comp = &c.comps[ci];
            let other = total / cnt[ci];
            let base = comp.below(lo[ci]);
            let lo2 = lo[ci] + digits[a] * stride;
            let below2 = comp.below(lo2);
            let cnt2 = comp.below(lo2 + stride) - below2;
            if cnt2 == 0 {
                return None;
            }
            rank += (below2 - base) * other;
            total = other * cnt2;
            cnt[ci] = cnt2;
            lo[ci] = lo2;
        }
        Some(rank)
    }
}

fn build_component(
    eval: Evaluator,
    size: u64,
    check: Check,
    list_limit: u64,
    min_block: u64,
) -> Result<Component> {
    let mut digits = vec![0u64; eval.radices.len()];
    let mut scratch = vec![Value::Null; eval.radices.len()];
    let listed = size <= list_limit;
    let block = if listed {
        u64::MAX
    } else {
        size.div_ceil(MAX_CHECKPOINTS).max(min_block)
    };
    let mut ranks = Vec::new();
    let mut cumulative = Vec::new();
    let mut count = 0u64;
    for x in 0..size {
        if x % block == 0 {
            cumulative.push(count);
        }
        if x % 65_536 == 0 && x > 0 {
            check()?;
        }
        if eval.admissible_digits(&digits, &mut scratch)? {
            count += 1;
            if listed {
                ranks.push(x);
            }
        }
        order::increment(&mut digits, &eval.radices);
    }
    // One trailing checkpoint so `below(size)` needs no scan past the end.
    cumulative.push(count);
    let store = if listed {
        Store::Listed(ranks)
    } else {
        Store::Checkpointed {
            block,
            cumulative,
            eval,
        }
    };
    Ok(Component {
        size,
        count: count as u128,
        store,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(n: i64) -> Axis {
        Axis::Int {
            low: 0,
            step: 1,
            len: n as u64,
        }
    }

    fn int(v: &Value) -> i64 {
        match v {
            Value::Int(i) => *i,
            _ => panic!("not an int"),
        }
    }

    struct Less;
    impl Predicate for Less {
        fn eval<'v>(&self, s: &dyn Fn(usize) -> &'v Value) -> Result<bool> {
            Ok(int(s(0)) < int(s(1)))
        }
    }

    struct Never;
    impl Predicate for Never {
        fn eval<'v>(&self, _: &dyn Fn(usize) -> &'v Value) -> Result<bool> {
            Ok(false)
        }
    }

    fn less(a: usize, b: usize) -> Constraint {
        Constraint {
            text: format!("x{a} < x{b}"),
            axes: vec![a, b],
            pred: Box::new(Less),
        }
    }

    fn brute(radices: &[u64], keep: &dyn Fn(&[u64]) -> bool) -> Vec<Vec<u64>> {
        let total: u64 = radices.iter().product();
        let mut d = vec![0; radices.len()];
        (0..total)
            .filter_map(|i| {
                order::decode(i as u128, radices, &mut d);
                keep(&d).then(|| d.clone())
            })
            .collect()
    }

    fn check_against(space: &Space, expected: &[Vec<u64>]) {
        assert_eq!(space.len(), expected.len() as u128);
        let mut d = vec![0; space.radices().len()];
        for (i, e) in expected.iter().enumerate() {
            space.decode(i as u128, &mut d);
            assert_eq!(&d, e, "index {i}");
            assert_eq!(space.rank(e), Some(i as u128));
        }
    }

    #[test]
    fn constrained_space_equals_filtering() {
        let radices = vec![4, 3, 5, 2];
        let axes: Vec<Axis> = radices.iter().map(|&r| ints(r as i64)).collect();
        let space =
            Space::constrained(&axes, radices.clone(), vec![less(0, 2)], &|| Ok(())).unwrap();
        let expected = brute(&radices, &|d| d[0] < d[2]);
        check_against(&space, &expected);
        let mut d = vec![0; 4];
        assert_eq!(space.rank(&[3, 0, 1, 0]), None);
        space.decode(0, &mut d);
    }

    #[test]
    fn chained_and_separate_components() {
        let radices = vec![3, 4, 3, 4, 2];
        let axes: Vec<Axis> = radices.iter().map(|&r| ints(r as i64)).collect();
        let cs = vec![less(0, 2), less(1, 3), less(2, 3)];
        let space = Space::constrained(&axes, radices.clone(), cs, &|| Ok(())).unwrap();
        let expected = brute(&radices, &|d| d[0] < d[2] && d[1] < d[3] && d[2] < d[3]);
        check_against(&space, &expected);
    }

    #[test]
    fn checkpointed_components_agree_with_listed_ones() {
        let radices = vec![30, 3, 4, 30];
        let axes: Vec<Axis> = radices.iter().map(|&r| ints(r as i64)).collect();
        let cs = || vec![less(3, 0), less(2, 1)];
        let space =
            Space::constrained_with(&axes, radices.clone(), cs(), &|| Ok(()), 10, 7).unwrap();
        let expected = brute(&radices, &|d| d[3] < d[0] && d[2] < d[1]);
        check_against(&space, &expected);
    }

    /// Digits of point `i` through `groups()`: mixed radix over the groups' counts.
    fn decode_by_groups(space: &Space, mut i: u128, out: &mut [u64]) {
        let groups = space.groups().unwrap();
        for g in groups.iter().rev() {
            let k = (i % g.count as u128) as u64;
            i /= g.count as u128;
            for (a, d) in out.iter_mut().enumerate().skip(g.first).take(g.len) {
                *d = match g.ranks {
                    None => k,
                    Some(r) => space.digit_in(a, r[k as usize]),
                };
            }
        }
    }

    #[test]
    fn groups_of_consecutive_axes_decode_like_decode() {
        let radices = vec![3, 4, 5, 2, 3];
        let axes: Vec<Axis> = radices.iter().map(|&r| ints(r as i64)).collect();
        let space = Space::constrained(
            &axes,
            radices.clone(),
            vec![less(1, 2), less(3, 4)],
            &|| Ok(()),
        )
        .unwrap();
        assert_eq!(space.groups().map(|g| g.len()), Some(3));
        let (mut d, mut e) = (vec![0; 5], vec![0; 5]);
        for i in 0..space.len() {
            space.decode(i, &mut d);
            decode_by_groups(&space, i, &mut e);
            assert_eq!(d, e, "index {i}");
        }
        let product = Space::product(radices.clone(), "").unwrap();
        for i in 0..product.len() {
            product.decode(i, &mut d);
            decode_by_groups(&product, i, &mut e);
            assert_eq!(d, e, "index {i}");
        }
        // Linked axes with another one between them, or a component too large to list: no groups.
        let apart =
            Space::constrained(&axes, radices.clone(), vec![less(0, 2)], &|| Ok(())).unwrap();
        assert!(apart.groups().is_none());
        let big =
            Space::constrained_with(&axes, radices, vec![less(1, 2)], &|| Ok(()), 10, 7).unwrap();
        assert!(big.groups().is_none());
    }

    #[test]
    fn false_constant_empties_and_interrupts_abort() {
        let axes = vec![ints(3)];
        let never = Constraint {
            text: "1 > 2".into(),
            axes: vec![],
            pred: Box::new(Never),
        };
        let space = Space::constrained(&axes, vec![3], vec![never], &|| Ok(())).unwrap();
        assert_eq!(space.len(), 0);
        assert_eq!(space.rank(&[0]), None);
        let axes: Vec<Axis> = vec![ints(100_000), ints(200)];
        let r = Space::constrained(&axes, vec![100_000, 200], vec![less(0, 1)], &|| {
            Err(Error::Invalid("interrupted".into()))
        });
        assert!(r.is_err());
    }
}
