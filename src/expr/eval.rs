//! The compiled form and its evaluator: a compact tree whose variables are slot indices and whose
//! constants are folded. Evaluation borrows everything (strings included), so it never allocates;
//! a type fault is a small `Copy` value turned into an `Error` only at the top.

use std::cmp::Ordering;

use crate::value::Value;

use super::parser::{Arith, Cmp};

/// A value during evaluation: borrowed from the caller's values or from the program's constants.
#[derive(Debug, Clone, Copy)]
pub(crate) enum V<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    Other(&'a Value),
}

impl<'a> V<'a> {
    #[inline]
    pub(crate) fn of(v: &'a Value) -> V<'a> {
        match v {
            Value::Null => V::Null,
            Value::Bool(b) => V::Bool(*b),
            Value::Int(i) => V::Int(*i),
            Value::Float(f) => V::Float(*f),
            Value::Str(s) => V::Str(s),
            Value::List(_) | Value::Map(_) => V::Other(v),
        }
    }

    pub(crate) fn to_value(self) -> Value {
        match self {
            V::Null => Value::Null,
            V::Bool(b) => Value::Bool(b),
            V::Int(i) => Value::Int(i),
            V::Float(f) => Value::Float(f),
            V::Str(s) => Value::Str(s.into()),
            V::Other(v) => v.clone(),
        }
    }

    pub(crate) fn kind(self) -> Kind {
        match self {
            V::Null => Kind::Null,
            V::Bool(_) => Kind::Bool,
            V::Int(_) => Kind::Int,
            V::Float(_) => Kind::Float,
            V::Str(_) => Kind::Str,
            V::Other(Value::List(_)) => Kind::List,
            V::Other(_) => Kind::Dict,
        }
    }
}

/// The run-time type of an operand that an operator refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Null,
    Bool,
    Int,
    Float,
    Str,
    List,
    Dict,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool => "bool",
            Kind::Int => "int",
            Kind::Float => "float",
            Kind::Str => "str",
            Kind::List => "list",
            Kind::Dict => "dict",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Code {
    Const(Value),
    Var(usize),
    Neg(Box<Code>, u32),
    /// Unary plus: a number check only.
    Pos(Box<Code>, u32),
    Arith(Arith, Box<(Code, Code)>, u32),
    Cmp(Cmp, Box<(Code, Code)>, u32),
    /// `a < b < c`: the middle operand is evaluated once, as in Python.
    Chain(Box<Code>, Box<[(Cmp, Code, u32)]>),
    And(Box<[(Code, u32)]>),
    Or(Box<[(Code, u32)]>),
    Not(Box<Code>, u32),
    /// A comparison whose operands are statically numbers: the hot path of grid constraints,
    /// evaluated without the generic value enum.
    NumCmp(Cmp, Box<(Num, Num)>),
    /// `a < b <= c` over statically numeric operands (`ops.len() == nums.len() - 1`).
    NumChain(Box<[Num]>, Box<[Cmp]>),
    /// `x == <constant>` (or `!=` when the flag is set): `mode == 'long'`, `x == null`.
    EqConst(usize, Box<Value>, bool),
}

/// A statically numeric sub-expression.
#[derive(Debug, Clone)]
pub(crate) enum Num {
    Int(i64),
    Float(f64),
    /// A slot read; `site`/`pos` name the operator and operand to blame if the value is not a
    /// number after all (a caller broke its declared types).
    Var {
        slot: usize,
        site: u32,
        pos: u8,
    },
    Neg(Box<Num>),
    Arith(Arith, Box<(Num, Num)>),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum N {
    I(i64),
    F(f64),
}

impl Num {
    /// The numeric form of a checked numeric `Code` (`None` if it is not purely numeric).
    pub(crate) fn from_code(code: &Code, site: u32, pos: u8) -> Option<Num> {
        Some(match code {
            Code::Const(Value::Int(i)) => Num::Int(*i),
            Code::Const(Value::Float(f)) => Num::Float(*f),
            Code::Var(slot) => Num::Var {
                slot: *slot,
                site,
                pos,
            },
            Code::Neg(arg, site) => Num::Neg(Box::new(Num::from_code(arg, *site, 0)?)),
            Code::Pos(arg, site) => Num::from_code(arg, *site, 0)?,
            Code::Arith(op, args, site) => Num::Arith(
                *op,
                Box::new((
                    Num::from_code(&args.0, *site, 0)?,
                    Num::from_code(&args.1, *site, 1)?,
                )),
            ),
            _ => return None,
        })
    }
}

/// `eval_num` with the leaves inlined (no call for a slot or a constant).
#[inline(always)]
fn num_operand<'v, F>(num: &Num, slot: &F) -> Result<N, Fault>
where
    F: Fn(usize) -> &'v Value + ?Sized,
{
    match num {
        Num::Var { slot: s, site, pos } => match slot(*s) {
            Value::Int(i) => Ok(N::I(*i)),
            Value::Float(f) => Ok(N::F(*f)),
            other => Err(num_fault(other, *site, *pos)),
        },
        Num::Int(i) => Ok(N::I(*i)),
        Num::Float(f) => Ok(N::F(*f)),
        _ => eval_num(num, slot),
    }
}

#[cold]
fn num_fault(other: &Value, site: u32, pos: u8) -> Fault {
    let mut bad = [None, None];
    bad[usize::from(pos & 1)] = Some(V::of(other).kind());
    Fault { site, bad }
}

/// A comparison of two numeric operands, inlined into its caller.
#[inline(always)]
fn num_cmp_node<'v, F>(op: Cmp, args: &(Num, Num), slot: &F) -> Result<bool, Fault>
where
    F: Fn(usize) -> &'v Value + ?Sized,
{
    let a = num_operand(&args.0, slot)?;
    let b = num_operand(&args.1, slot)?;
    Ok(compare_num(op, a, b))
}

fn eval_num<'v, F>(num: &Num, slot: &F) -> Result<N, Fault>
where
    F: Fn(usize) -> &'v Value + ?Sized,
{
    match num {
        Num::Var { .. } | Num::Int(_) | Num::Float(_) => num_operand(num, slot),
        Num::Neg(arg) => Ok(match num_operand(arg, slot)? {
            N::I(i) => i.checked_neg().map_or(N::F(-(i as f64)), N::I),
            N::F(f) => N::F(-f),
        }),
        Num::Arith(op, args) => {
            let a = num_operand(&args.0, slot)?;
            let b = num_operand(&args.1, slot)?;
            Ok(arith_num(*op, a, b))
        }
    }
}

impl<'a> From<N> for V<'a> {
    fn from(n: N) -> V<'a> {
        match n {
            N::I(i) => V::Int(i),
            N::F(f) => V::Float(f),
        }
    }
}

#[inline]
fn compare_num(op: Cmp, a: N, b: N) -> bool {
    let ord = match (a, b) {
        (N::I(x), N::I(y)) => Some(x.cmp(&y)),
        (N::F(x), N::F(y)) => x.partial_cmp(&y),
        (N::I(x), N::F(y)) => cmp_int_float(x, y),
        (N::F(x), N::I(y)) => cmp_int_float(y, x).map(Ordering::reverse),
    };
    match ord {
        None => op == Cmp::Ne,
        Some(ord) => match op {
            Cmp::Lt => ord == Ordering::Less,
            Cmp::Le => ord != Ordering::Greater,
            Cmp::Gt => ord == Ordering::Greater,
            Cmp::Ge => ord != Ordering::Less,
            Cmp::Eq => ord == Ordering::Equal,
            Cmp::Ne => ord != Ordering::Equal,
        },
    }
}

/// Where a fault happened (an index into the program's sites) and which operands were refused.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fault {
    pub site: u32,
    pub bad: [Option<Kind>; 2],
}

type Out<'a> = Result<V<'a>, Fault>;

pub(crate) fn eval<'a, 'v: 'a, F>(code: &'a Code, slot: &F) -> Out<'a>
where
    F: Fn(usize) -> &'v Value + ?Sized,
{
    Ok(match code {
        Code::Const(v) => V::of(v),
        Code::Var(s) => V::of(slot(*s)),
        Code::Neg(arg, site) => match eval(arg, slot)? {
            V::Int(i) => i.checked_neg().map_or(V::Float(-(i as f64)), V::Int),
            V::Float(f) => V::Float(-f),
            other => return Err(fault1(*site, other)),
        },
        Code::Pos(arg, site) => match eval(arg, slot)? {
            v @ (V::Int(_) | V::Float(_)) => v,
            other => return Err(fault1(*site, other)),
        },
        Code::Arith(op, args, site) => {
            let a = operand(&args.0, slot)?;
            let b = operand(&args.1, slot)?;
            arith(*op, a, b).ok_or_else(|| fault_numbers(*site, a, b))?
        }
        Code::Cmp(..)
        | Code::Chain(..)
        | Code::And(..)
        | Code::Or(..)
        | Code::Not(..)
        | Code::NumCmp(..)
        | Code::NumChain(..)
        | Code::EqConst(..) => V::Bool(eval_bool(code, slot)?),
    })
}

/// `eval` with the leaves inlined: most operands are a slot or a constant.
#[inline(always)]
fn operand<'a, 'v: 'a, F>(code: &'a Code, slot: &F) -> Out<'a>
where
    F: Fn(usize) -> &'v Value + ?Sized,
{
    match code {
        Code::Var(s) => Ok(V::of(slot(*s))),
        Code::Const(v) => Ok(V::of(v)),
        _ => eval(code, slot),
    }
}

/// Evaluates a node that must produce a bool; `site` names the place that demands it.
#[inline]
pub(crate) fn eval_bool<'a, 'v: 'a, F>(code: &'a Code, slot: &F) -> Result<bool, Fault>
where
    F: Fn(usize) -> &'v Value + ?Sized,
{
    match code {
        Code::NumCmp(op, args) => num_cmp_node(*op, args, slot),
        Code::NumChain(nums, ops) => {
            let Some((first, rest)) = nums.split_first() else {
                return Ok(true);
            };
            let mut a = num_operand(first, slot)?;
            for (op, next) in ops.iter().zip(rest) {
                let b = num_operand(next, slot)?;
                if !compare_num(*op, a, b) {
                    return Ok(false);
                }
                a = b;
            }
            Ok(true)
        }
        Code::EqConst(s, value, ne) => Ok(eq_const(slot(*s), value) != *ne),
        Code::Cmp(op, args, site) => {
            let a = operand(&args.0, slot)?;
            let b = operand(&args.1, slot)?;
            compare(*op, a, b).ok_or_else(|| fault_order(*site, a, b))
        }
        Code::Chain(first, rest) => {
            let mut a = operand(first, slot)?;
            for (op, next, site) in rest.iter() {
                let b = operand(next, slot)?;
                if !compare(*op, a, b).ok_or_else(|| fault_order(*site, a, b))? {
                    return Ok(false);
                }
                a = b;
            }
            Ok(true)
        }
        Code::And(items) => {
            for (item, site) in items.iter() {
                if !as_bool(item, *site, slot)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Code::Or(items) => {
            for (item, site) in items.iter() {
                if as_bool(item, *site, slot)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Code::Not(arg, site) => Ok(!as_bool(arg, *site, slot)?),
        Code::Const(Value::Bool(b)) => Ok(*b),
        Code::Var(s) => match slot(*s) {
            Value::Bool(b) => Ok(*b),
            // Reported by the caller, which knows the site.
            other => Err(Fault {
                site: u32::MAX,
                bad: [Some(V::of(other).kind()), None],
            }),
        },
        other => match eval(other, slot)? {
            V::Bool(b) => Ok(b),
            v => Err(Fault {
                site: u32::MAX,
                bad: [Some(v.kind()), None],
            }),
        },
    }
}

/// `value == constant`, with the usual string case first.
#[inline(always)]
fn eq_const(value: &Value, constant: &Value) -> bool {
    match (value, constant) {
        (Value::Str(x), Value::Str(y)) => x.as_bytes() == y.as_bytes(),
        _ => equal(V::of(value), V::of(constant)),
    }
}

/// An operand of `and` / `or` / `not` (or the whole expression): must be a bool.
#[inline(always)]
pub(crate) fn as_bool<'a, 'v: 'a, F>(code: &'a Code, site: u32, slot: &F) -> Result<bool, Fault>
where
    F: Fn(usize) -> &'v Value + ?Sized,
{
    let r = match code {
        // The common shapes skip the call into the general evaluator.
        Code::NumCmp(op, args) => return num_cmp_node(*op, args, slot),
        Code::EqConst(s, value, ne) => return Ok(eq_const(slot(*s), value) != *ne),
        Code::Var(s) => match slot(*s) {
            Value::Bool(b) => return Ok(*b),
            _ => eval_bool(code, slot),
        },
        _ => eval_bool(code, slot),
    };
    r.map_err(|f| {
        if f.site == u32::MAX {
            Fault { site, ..f }
        } else {
            f
        }
    })
}

fn fault1(site: u32, v: V<'_>) -> Fault {
    Fault {
        site,
        bad: [Some(v.kind()), None],
    }
}

fn is_number(v: V<'_>) -> bool {
    matches!(v, V::Int(_) | V::Float(_))
}

fn fault_numbers(site: u32, a: V<'_>, b: V<'_>) -> Fault {
    Fault {
        site,
        bad: [
            (!is_number(a)).then(|| a.kind()),
            (!is_number(b)).then(|| b.kind()),
        ],
    }
}

fn fault_order(site: u32, a: V<'_>, b: V<'_>) -> Fault {
    // Both types are reported: "needs two numbers or two strings, but X is str and Y is int".
    Fault {
        site,
        bad: [Some(a.kind()), Some(b.kind())],
    }
}

/// Arithmetic on two numbers (`None` if either is not a number); see `arith_num`.
#[inline]
pub(crate) fn arith<'a>(op: Arith, a: V<'a>, b: V<'a>) -> Option<V<'a>> {
    Some(arith_num(op, N::of(a)?, N::of(b)?).into())
}

impl N {
    #[inline]
    fn of(v: V<'_>) -> Option<N> {
        match v {
            V::Int(i) => Some(N::I(i)),
            V::Float(f) => Some(N::F(f)),
            _ => None,
        }
    }

    #[inline]
    fn float(self) -> f64 {
        match self {
            N::I(i) => i as f64,
            N::F(f) => f,
        }
    }
}

/// Int ⊕ int stays exact and falls back to f64 on overflow; `/` is true division; `%` takes the
/// divisor's sign (Python); division by zero gives IEEE inf/NaN rather than an error, so a
/// constraint never aborts a grid.
#[inline]
fn arith_num(op: Arith, a: N, b: N) -> N {
    if let (N::I(x), N::I(y)) = (a, b) {
        return match op {
            Arith::Add => x
                .checked_add(y)
                .map_or_else(|| N::F(x as f64 + y as f64), N::I),
            Arith::Sub => x
                .checked_sub(y)
                .map_or_else(|| N::F(x as f64 - y as f64), N::I),
            Arith::Mul => x
                .checked_mul(y)
                .map_or_else(|| N::F(x as f64 * y as f64), N::I),
            Arith::Div => N::F(x as f64 / y as f64),
            Arith::Rem => match x.checked_rem(y) {
                Some(r) if r != 0 && ((r < 0) != (y < 0)) => N::I(r + y),
                Some(r) => N::I(r),
                None if y == 0 => N::F(f64::NAN),
                // i64::MIN % -1
                None => N::I(0),
            },
        };
    }
    let (x, y) = (a.float(), b.float());
    N::F(match op {
        Arith::Add => x + y,
        Arith::Sub => x - y,
        Arith::Mul => x * y,
        Arith::Div => x / y,
        Arith::Rem => py_fmod(x, y),
    })
}

/// Python's float `%`: the result has the sign of the divisor.
fn py_fmod(x: f64, y: f64) -> f64 {
    let m = x % y;
    if m != 0.0 {
        if (y < 0.0) != (m < 0.0) {
            m + y
        } else {
            m
        }
    } else {
        0.0f64.copysign(y)
    }
}

/// Exact order of an int and a float, as Python computes it (no rounding of the int).
fn cmp_int_float(i: i64, f: f64) -> Option<Ordering> {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f.is_nan() {
        return None;
    }
    if f >= TWO_63 {
        return Some(Ordering::Less);
    }
    if f < -TWO_63 {
        return Some(Ordering::Greater);
    }
    let t = f.trunc();
    // |t| < 2^63 here (or t = -2^63), so the conversion is exact.
    Some(i.cmp(&(t as i64)).then_with(|| {
        let frac = f - t;
        if frac > 0.0 {
            Ordering::Less
        } else if frac < 0.0 {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    }))
}

/// Python's `==` restricted to this language: numbers compare by value (`1 == 1.0`), every other
/// pair must have the same type (`true == 1` is false), NaN equals nothing.
#[inline]
pub(crate) fn equal(a: V<'_>, b: V<'_>) -> bool {
    match (a, b) {
        (V::Null, V::Null) => true,
        (V::Bool(x), V::Bool(y)) => x == y,
        (V::Str(x), V::Str(y)) => x == y,
        (V::Other(x), V::Other(y)) => x == y,
        _ => match (N::of(a), N::of(b)) {
            (Some(x), Some(y)) => compare_num(Cmp::Eq, x, y),
            _ => false,
        },
    }
}

/// A comparison; `None` when an ordering operator gets anything but two numbers or two strings.
#[inline]
pub(crate) fn compare(op: Cmp, a: V<'_>, b: V<'_>) -> Option<bool> {
    let ord = match op {
        Cmp::Eq => return Some(equal(a, b)),
        Cmp::Ne => return Some(!equal(a, b)),
        _ => match (a, b) {
            (V::Str(x), V::Str(y)) => Some(x.cmp(y)),
            _ => return Some(compare_num(op, N::of(a)?, N::of(b)?)),
        },
    };
    let Some(ord) = ord else {
        // NaN: every ordering comparison is false.
        return Some(false);
    };
    Some(match op {
        Cmp::Lt => ord == Ordering::Less,
        Cmp::Le => ord != Ordering::Greater,
        Cmp::Gt => ord == Ordering::Greater,
        Cmp::Ge => ord != Ordering::Less,
        Cmp::Eq | Cmp::Ne => unreachable!("handled above"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_float_order_is_exact() {
        let big = (1i64 << 53) + 1;
        assert_eq!(
            cmp_int_float(big, (1i64 << 53) as f64),
            Some(Ordering::Greater)
        );
        assert_eq!(cmp_int_float(i64::MAX, 2f64.powi(63)), Some(Ordering::Less));
        assert_eq!(
            cmp_int_float(i64::MIN, -(2f64.powi(63))),
            Some(Ordering::Equal)
        );
        assert_eq!(cmp_int_float(2, 2.5), Some(Ordering::Less));
        assert_eq!(cmp_int_float(-2, -2.5), Some(Ordering::Greater));
        assert_eq!(cmp_int_float(3, f64::INFINITY), Some(Ordering::Less));
        assert_eq!(cmp_int_float(3, f64::NEG_INFINITY), Some(Ordering::Greater));
        assert_eq!(cmp_int_float(3, f64::NAN), None);
    }

    #[test]
    fn python_modulo() {
        let m = |a, b| arith(Arith::Rem, V::Int(a), V::Int(b));
        assert!(matches!(m(7, 3), Some(V::Int(1))));
        assert!(matches!(m(-7, 3), Some(V::Int(2))));
        assert!(matches!(m(7, -3), Some(V::Int(-2))));
        assert!(matches!(m(i64::MIN, -1), Some(V::Int(0))));
        assert!(matches!(m(1, 0), Some(V::Float(f)) if f.is_nan()));
        assert_eq!(py_fmod(-7.5, 2.0), 0.5);
        assert_eq!(py_fmod(7.5, -2.0), -0.5);
        assert!(py_fmod(-0.0, 2.0).is_sign_positive());
        assert_eq!(py_fmod(-5.0, f64::INFINITY), f64::INFINITY);
    }

    #[test]
    fn overflow_falls_back_to_float() {
        let r = arith(Arith::Add, V::Int(i64::MAX), V::Int(1));
        assert!(matches!(r, Some(V::Float(f)) if f == 2f64.powi(63)));
        let r = arith(Arith::Mul, V::Int(1 << 40), V::Int(1 << 40));
        assert!(matches!(r, Some(V::Float(f)) if f == 2f64.powi(80)));
        assert!(
            matches!(arith(Arith::Div, V::Int(1), V::Int(0)), Some(V::Float(f)) if f == f64::INFINITY)
        );
        assert!(arith(Arith::Add, V::Int(1), V::Bool(true)).is_none());
    }

    #[test]
    fn equality_is_type_strict_except_numbers() {
        assert!(equal(V::Int(1), V::Float(1.0)));
        assert!(!equal(V::Bool(true), V::Int(1)));
        assert!(!equal(V::Float(f64::NAN), V::Float(f64::NAN)));
        assert!(!equal(V::Null, V::Bool(false)));
        assert!(!equal(V::Int(i64::MAX), V::Float(2f64.powi(63))));
        assert_eq!(compare(Cmp::Lt, V::Float(f64::NAN), V::Int(1)), Some(false));
        assert_eq!(compare(Cmp::Ge, V::Float(f64::NAN), V::Int(1)), Some(false));
        assert_eq!(
            compare(Cmp::Ne, V::Float(f64::NAN), V::Float(f64::NAN)),
            Some(true)
        );
        assert_eq!(compare(Cmp::Lt, V::Str("a"), V::Str("b")), Some(true));
        assert_eq!(compare(Cmp::Lt, V::Str("a"), V::Int(1)), None);
        assert_eq!(compare(Cmp::Lt, V::Bool(false), V::Bool(true)), None);
    }
}
