//! `TypeSet`: the set of value types a name may hold (a grid axis may mix types).

use std::fmt;
use std::ops::{BitAnd, BitOr, BitOrAssign};

use crate::value::Value;

/// A set of the language's value types, as bit flags.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TypeSet(u8);

impl TypeSet {
    pub const EMPTY: TypeSet = TypeSet(0);
    pub const NULL: TypeSet = TypeSet(1);
    pub const BOOL: TypeSet = TypeSet(2);
    /// Ints and floats: one type in this language (`1 == 1.0`).
    pub const NUMBER: TypeSet = TypeSet(4);
    pub const STR: TypeSet = TypeSet(8);
    /// Lists and dicts: only `==` / `!=` apply to them.
    pub const OTHER: TypeSet = TypeSet(16);
    pub const ANY: TypeSet = TypeSet(31);

    /// The (single) type of a value.
    pub const fn of(value: &Value) -> TypeSet {
        match value {
            Value::Null => TypeSet::NULL,
            Value::Bool(_) => TypeSet::BOOL,
            Value::Int(_) | Value::Float(_) => TypeSet::NUMBER,
            Value::Str(_) => TypeSet::STR,
            Value::List(_) | Value::Map(_) => TypeSet::OTHER,
        }
    }

    /// The union of the types of some values (for a grid axis).
    pub fn of_all<'a>(values: impl IntoIterator<Item = &'a Value>) -> TypeSet {
        values
            .into_iter()
            .fold(TypeSet::EMPTY, |acc, v| acc | TypeSet::of(v))
    }

    pub const fn union(self, other: TypeSet) -> TypeSet {
        TypeSet(self.0 | other.0)
    }

    pub const fn intersection(self, other: TypeSet) -> TypeSet {
        TypeSet(self.0 & other.0)
    }

    pub const fn difference(self, other: TypeSet) -> TypeSet {
        TypeSet(self.0 & !other.0)
    }

    /// True when every type of `other` is in `self` (`other ⊆ self`).
    pub const fn contains(self, other: TypeSet) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub const fn bits(self) -> u8 {
        self.0
    }

    fn names(self) -> impl Iterator<Item = &'static str> {
        [
            (TypeSet::NULL, "null"),
            (TypeSet::BOOL, "bool"),
            (TypeSet::NUMBER, "number"),
            (TypeSet::STR, "str"),
            (TypeSet::OTHER, "list/dict"),
        ]
        .into_iter()
        .filter(move |(t, _)| self.contains(*t))
        .map(|(_, n)| n)
    }
}

impl BitOr for TypeSet {
    type Output = TypeSet;
    fn bitor(self, rhs: TypeSet) -> TypeSet {
        self.union(rhs)
    }
}

impl BitOrAssign for TypeSet {
    fn bitor_assign(&mut self, rhs: TypeSet) {
        *self = self.union(rhs);
    }
}

impl BitAnd for TypeSet {
    type Output = TypeSet;
    fn bitand(self, rhs: TypeSet) -> TypeSet {
        self.intersection(rhs)
    }
}

/// "number", "bool or null", "null, number or str", "nothing".
impl fmt::Display for TypeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.names().collect();
        match names.as_slice() {
            [] => f.write_str("nothing"),
            [one] => f.write_str(one),
            [init @ .., last] => write!(f, "{} or {last}", init.join(", ")),
        }
    }
}

impl fmt::Debug for TypeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TypeSet({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn of_union_contains() {
        let axis = [
            Value::Bool(true),
            Value::Null,
            Value::Int(0),
            Value::Str("a".into()),
        ];
        let t = TypeSet::of_all(&axis);
        assert_eq!(
            t,
            TypeSet::BOOL | TypeSet::NULL | TypeSet::NUMBER | TypeSet::STR
        );
        assert!(t.contains(TypeSet::NUMBER));
        assert!(!t.contains(TypeSet::OTHER));
        assert!(TypeSet::NUMBER.contains(TypeSet::EMPTY));
        assert_eq!(TypeSet::of(&Value::Float(1.0)), TypeSet::of(&Value::Int(1)));
        assert_eq!(TypeSet::of(&Value::List(vec![])), TypeSet::OTHER);
        assert_eq!(t.to_string(), "null, bool, number or str");
        assert_eq!(TypeSet::NUMBER.to_string(), "number");
        assert_eq!(TypeSet::EMPTY.to_string(), "nothing");
        assert_eq!(t.difference(TypeSet::NULL) & TypeSet::NULL, TypeSet::EMPTY);
    }
}
