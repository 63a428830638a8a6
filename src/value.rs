//! The JSON-like value tree shared by the grid engine, trial keys and config merge.
//!
//! Equality is type-strict (`Bool(true) != Int(1)`, `Int(1) != Float(1.0)`) because a sweep must
//! keep `True` and `1` apart: they are different choices and produce different trial keys.

use std::sync::Arc;

use indexmap::IndexMap;

pub type Map = IndexMap<Arc<str>, Value>;

#[derive(Debug, Clone)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Arc<str>),
    List(Vec<Value>),
    Map(Map),
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            // Bitwise on floats so that NaN equals itself as a grid choice and 0.0 / -0.0 stay apart,
            // matching how the canonical key encodes them.
            (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits(),
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::List(a), Value::List(b)) => a == b,
            (Value::Map(a), Value::Map(b)) => {
                a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| w == v))
            }
            _ => false,
        }
    }
}

impl Value {
    /// A map from `(key, value)` pairs, in their order (a later duplicate key replaces the value).
    pub fn map_from<'k>(pairs: impl IntoIterator<Item = (&'k str, Value)>) -> Value {
        Value::Map(pairs.into_iter().map(|(k, v)| (Arc::from(k), v)).collect())
    }

    /// A short name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::List(_) => "list",
            Value::Map(_) => "dict",
        }
    }

    pub fn as_map(&self) -> Option<&Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// Numeric view for ranges and constraints (bools are not numbers here).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equality_keeps_bool_int_float_apart() {
        assert_ne!(Value::Bool(true), Value::Int(1));
        assert_ne!(Value::Int(1), Value::Float(1.0));
        assert_eq!(Value::Float(f64::NAN), Value::Float(f64::NAN));
        assert_ne!(Value::Float(0.0), Value::Float(-0.0));
    }

    #[test]
    fn map_equality_ignores_order() {
        let mut a = Map::new();
        a.insert("x".into(), Value::Int(1));
        a.insert("y".into(), Value::Int(2));
        let mut b = Map::new();
        b.insert("y".into(), Value::Int(2));
        b.insert("x".into(), Value::Int(1));
        assert_eq!(Value::Map(a), Value::Map(b));
    }
}
