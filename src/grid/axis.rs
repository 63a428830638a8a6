//! One parameter's values: explicit choices, exact integer ranges, and float ranges computed in
//! decimal so that `0.18 + 0.04·3` is exactly `0.3` and no value ever leaves `[low, high]`.

use std::str::FromStr;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use crate::error::{Error, Result};
use crate::value::Value;

/// What a parameter was declared as (the `type` of its leaf).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Grid,
    Fixed,
    Int,
    Float,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Grid => "grid",
            Kind::Fixed => "fixed",
            Kind::Int => "int",
            Kind::Float => "float",
        }
    }
}

/// The element type a whole axis shares, which decides the numpy dtype of its column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    I64,
    F64,
    Bool,
    Object,
}

#[derive(Debug, Clone)]
pub enum Axis {
    /// `grid` choices or a `fixed` value (one choice).
    Values(Vec<Value>),
    /// `low + k·step` for k in `0..len`.
    Int { low: i64, step: i64, len: u64 },
    /// `low + k·step` in decimal, each value the nearest f64 of its decimal text.
    FloatStep {
        low: Decimal,
        step: Decimal,
        len: u64,
    },
    /// `num` evenly spaced values with both ends included, in decimal.
    FloatNum {
        low: Decimal,
        high: Decimal,
        num: u64,
    },
    /// `num` geometrically spaced values with both ends exact.
    FloatLog { low: f64, high: f64, num: u64 },
    /// A float range without `step` or `num`: usable by search, not by a grid.
    Continuous { low: f64, high: f64, log: bool },
}

impl Axis {
    /// Number of values (`None` for a continuous range).
    pub fn size(&self) -> Option<u64> {
        match self {
            Axis::Values(v) => Some(v.len() as u64),
            Axis::Int { len, .. } | Axis::FloatStep { len, .. } => Some(*len),
            Axis::FloatNum { num, .. } | Axis::FloatLog { num, .. } => Some(*num),
            Axis::Continuous { .. } => None,
        }
    }

    /// The k-th value; `k` must be below `len()`.
    pub fn value(&self, k: u64) -> Value {
        match self {
            Axis::Values(v) => v[k as usize].clone(),
            Axis::Int { low, step, .. } => {
                // In range by construction: low + k·step ≤ high.
                Value::Int((*low as i128 + k as i128 * *step as i128) as i64)
            }
            Axis::FloatStep { low, step, .. } => {
                Value::Float(decimal_to_f64(*low + *step * Decimal::from(k)))
            }
            Axis::FloatNum { low, high, num } => Value::Float(linear(*low, *high, *num, k)),
            Axis::FloatLog { low, high, num } => Value::Float(geometric(*low, *high, *num, k)),
            Axis::Continuous { low, .. } => Value::Float(*low),
        }
    }

    /// The position of `value` on this axis, if it is one of its values (type-strict).
    pub fn position(&self, value: &Value) -> Option<u64> {
        match self {
            Axis::Values(v) => v.iter().position(|x| x == value).map(|p| p as u64),
            Axis::Int { low, step, len } => {
                let Value::Int(x) = value else { return None };
                let off = *x as i128 - *low as i128;
                if off < 0 || off % *step as i128 != 0 {
                    return None;
                }
                let k = off / *step as i128;
                (k < *len as i128).then_some(k as u64)
            }
            Axis::FloatStep { .. } | Axis::FloatNum { .. } | Axis::FloatLog { .. } => {
                let Value::Float(x) = value else { return None };
                let n = self.size()?;
                if n == 0 || !x.is_finite() {
                    return None;
                }
                let first = self.value(0).as_f64()?;
                let last = self.value(n - 1).as_f64()?;
                let guess = match self {
                    Axis::FloatLog { .. } if n > 1 => {
                        (x / first).ln() / (last / first).ln() * (n - 1) as f64
                    }
                    _ if n > 1 => (x - first) / (last - first) * (n - 1) as f64,
                    _ => 0.0,
                };
                if !guess.is_finite() {
                    return None;
                }
                let guess = guess.round().clamp(0.0, (n - 1) as f64) as u64;
                // The estimate is within one step of the truth; confirm bit-exactly.
                [guess, guess.saturating_sub(1), guess.saturating_add(1)]
                    .into_iter()
                    .filter(|&k| k < n)
                    .find(|&k| self.value(k) == *value)
            }
            Axis::Continuous { .. } => None,
        }
    }

    pub fn dtype(&self) -> Dtype {
        match self {
            Axis::Int { .. } => Dtype::I64,
            Axis::Values(v) => {
                let all = |f: fn(&Value) -> bool| !v.is_empty() && v.iter().all(f);
                if all(|x| matches!(x, Value::Bool(_))) {
                    Dtype::Bool
                } else if all(|x| matches!(x, Value::Int(_))) {
                    Dtype::I64
                } else if all(|x| matches!(x, Value::Float(_))) {
                    Dtype::F64
                } else {
                    Dtype::Object
                }
            }
            _ => Dtype::F64,
        }
    }

    /// Whether values are lists or dicts, which every point must receive as its own copy.
    pub fn has_mutable(&self) -> bool {
        matches!(self, Axis::Values(v) if v.iter().any(|x| matches!(x, Value::List(_) | Value::Map(_))))
    }
}

/// The nearest f64 of a decimal's text, so that a decimal 0.3 becomes the float literal `0.3`.
pub fn decimal_to_f64(d: Decimal) -> f64 {
    // Decimal's own `to_f64` is not correctly rounded; the std parser is.
    let text = d.normalize().to_string();
    f64::from_str(&text).unwrap_or_else(|_| d.to_f64().unwrap_or(f64::NAN))
}

fn linear(low: Decimal, high: Decimal, num: u64, k: u64) -> f64 {
    if k == 0 || num <= 1 {
        return decimal_to_f64(low);
    }
    if k == num - 1 {
        return decimal_to_f64(high);
    }
    // Multiply before dividing: one rounding, at the 28th significant digit.
    let v = (high - low)
        .checked_mul(Decimal::from(k))
        .and_then(|x| x.checked_div(Decimal::from(num - 1)))
        .and_then(|x| x.checked_add(low));
    match v {
        Some(v) => decimal_to_f64(v),
        None => {
            let (l, h) = (decimal_to_f64(low), decimal_to_f64(high));
            l + (h - l) * k as f64 / (num - 1) as f64
        }
    }
}

fn geometric(low: f64, high: f64, num: u64, k: u64) -> f64 {
    if k == 0 || num <= 1 {
        return low;
    }
    if k == num - 1 {
        return high;
    }
    let t = k as f64 / (num - 1) as f64;
    (low.ln() + t * (high.ln() - low.ln()))
        .exp()
        .clamp(low, high)
}

/// A bound or step as an exact decimal: the shortest text of the float, as written in the file.
pub fn to_decimal(v: &Value, path: &str, field: &str) -> Result<Decimal> {
    match v {
        Value::Int(i) => Ok(Decimal::from(*i)),
        Value::Float(f) if f.is_finite() => {
            // Rust prints the shortest text that round-trips, never in exponent form, so
            // `1e-05` becomes "0.00001" and 0.1 becomes "0.1", not its binary expansion.
            Decimal::from_str_exact(&f.to_string()).map_err(|_| {
                Error::spec(
                    path,
                    format!(
                        "{field} = {f} cannot be represented exactly in decimal \
                         (at most 28 significant digits and |x| < 7.9e28)"
                    ),
                )
            })
        }
        Value::Float(f) => Err(Error::spec(
            path,
            format!("{field} must be a finite number, got {f}"),
        )),
        other => Err(Error::spec(
            path,
            format!("{field} must be a number, got {}", other.type_name()),
        )),
    }
}

/// Number of values `low + k·step ≤ high` (exact, in decimal).
pub fn stepped_len(low: Decimal, high: Decimal, step: Decimal, path: &str) -> Result<u64> {
    let too_many = || {
        Error::spec(
            path,
            "range has more than 2^64 - 1 values; use a larger step",
        )
    };
    let span = high.checked_sub(low).ok_or_else(too_many)?;
    let mut k = span
        .checked_div(step)
        .ok_or_else(too_many)?
        .floor()
        .to_u64()
        .ok_or_else(too_many)?;
    // Decimal division rounds at 28 digits; settle the last step exactly.
    let at = |k: u64| {
        step.checked_mul(Decimal::from(k))
            .and_then(|x| x.checked_add(low))
    };
    while k > 0 && at(k).is_none_or(|v| v > high) {
        k -= 1;
    }
    while at(k + 1).is_some_and(|v| v <= high) {
        k += 1;
    }
    k.checked_add(1).ok_or_else(too_many)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn floats(axis: &Axis) -> Vec<f64> {
        (0..axis.size().unwrap())
            .map(|k| axis.value(k).as_f64().unwrap())
            .collect()
    }

    fn stepped(low: f64, high: f64, step: f64) -> Axis {
        let d = |x: f64| to_decimal(&Value::Float(x), "p", "x").unwrap();
        let len = stepped_len(d(low), d(high), d(step), "p").unwrap();
        Axis::FloatStep {
            low: d(low),
            step: d(step),
            len,
        }
    }

    #[test]
    fn stepped_floats_are_the_decimal_values() {
        assert_eq!(
            floats(&stepped(0.18, 0.34, 0.04)),
            vec![0.18, 0.22, 0.26, 0.3, 0.34]
        );
        assert_eq!(
            floats(&stepped(0.2, 0.6, 0.1)),
            vec![0.2, 0.3, 0.4, 0.5, 0.6]
        );
        assert_eq!(stepped(0.0, 0.0001, 1e-05).size(), Some(11));
        assert_eq!(floats(&stepped(0.1, 1.0, 0.1)).last(), Some(&1.0));
    }

    #[test]
    fn high_off_the_step_is_excluded_and_nothing_leaves_the_range() {
        let v = floats(&stepped(0.0, 1.0, 0.3));
        assert_eq!(v, vec![0.0, 0.3, 0.6, 0.9]);
        assert!(v.iter().all(|x| (0.0..=1.0).contains(x)));
    }

    #[test]
    fn linear_and_geometric_include_both_ends() {
        let d = |x: &str| Decimal::from_str(x).unwrap();
        let lin = Axis::FloatNum {
            low: d("0"),
            high: d("1"),
            num: 5,
        };
        assert_eq!(floats(&lin), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        let geo = Axis::FloatLog {
            low: 1e-4,
            high: 1.0,
            num: 5,
        };
        let g = floats(&geo);
        assert_eq!((g[0], g[4]), (1e-4, 1.0));
        assert!((g[2] - 1e-2).abs() < 1e-15);
    }

    #[test]
    fn position_inverts_value_type_strictly() {
        let axes = [
            stepped(0.18, 0.34, 0.04),
            Axis::Int {
                low: -5,
                step: 3,
                len: 7,
            },
            Axis::FloatLog {
                low: 0.001,
                high: 10.0,
                num: 9,
            },
            Axis::Values(vec![Value::Bool(true), Value::Int(1), Value::Null]),
        ];
        for axis in &axes {
            for k in 0..axis.size().unwrap() {
                assert_eq!(axis.position(&axis.value(k)), Some(k));
            }
        }
        assert_eq!(axes[1].position(&Value::Int(-4)), None);
        assert_eq!(axes[1].position(&Value::Float(-5.0)), None);
        assert_eq!(axes[0].position(&Value::Float(0.30000000000000004)), None);
        assert_eq!(axes[3].position(&Value::Int(1)), Some(1));
    }

    #[test]
    fn unrepresentable_bounds_are_spec_errors() {
        assert!(to_decimal(&Value::Float(f64::NAN), "p", "low").is_err());
        assert!(to_decimal(&Value::Float(1e300), "p", "low").is_err());
        assert!(to_decimal(&Value::Bool(true), "p", "low").is_err());
        assert_eq!(
            to_decimal(&Value::Float(1e-5), "p", "step").unwrap(),
            Decimal::from_str("0.00001").unwrap()
        );
    }
}
