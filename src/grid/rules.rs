//! Binds constraint texts to a tree's parameters through the expression language (`crate::expr`).

use super::axis::Axis;
use super::constrained::{Constraint, Predicate};
use super::spec::Tree;
use crate::error::Result;
use crate::expr::{Compiled, Expr, TypeSet};
use crate::value::Value;

impl Predicate for Compiled {
    fn eval<'v>(&self, slot: &dyn Fn(usize) -> &'v Value) -> Result<bool> {
        Compiled::eval(self, slot)
    }
}

fn types(axis: &Axis) -> TypeSet {
    match axis {
        Axis::Values(values) => TypeSet::of_all(values),
        _ => TypeSet::NUMBER,
    }
}

/// Compiles `text` against `tree`. With `strict` an unknown name is an error (suggesting the
/// closest path); otherwise a constraint naming a path the tree lacks gives `Ok(None)`, which lets
/// a union apply each constraint to the trees it concerns.
pub fn compile(tree: &Tree, text: &str, strict: bool) -> Result<Option<Constraint>> {
    let expr = Expr::parse(text)?;
    let names: Vec<String> = expr.names().into_iter().map(str::to_owned).collect();
    let axes: Vec<Option<usize>> = names.iter().map(|n| tree.position(n)).collect();
    if !strict && axes.iter().any(Option::is_none) {
        return Ok(None);
    }
    // Slot k is the k-th name; `Constraint::axes[k]` is the parameter it reads.
    let resolve = |name: &str| {
        let k = names.iter().position(|n| n == name)?;
        let a = axes[k]?;
        Some((k, types(&tree.params[a].axis)))
    };
    let known: Vec<&str> = tree.params.iter().map(|p| p.path.as_str()).collect();
    let compiled = expr.compile_with_known(&resolve, &known)?;
    Ok(Some(Constraint {
        text: text.to_owned(),
        axes: axes.into_iter().flatten().collect(),
        pred: Box::new(compiled),
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::error::Error;
    use crate::grid::Grid;

    fn ints(low: i64, high: i64) -> Value {
        Value::Map(
            [
                ("type", Value::Str("int".into())),
                ("low", Value::Int(low)),
                ("high", Value::Int(high)),
            ]
            .into_iter()
            .map(|(k, v)| (Arc::from(k), v))
            .collect(),
        )
    }

    fn tree() -> Value {
        Value::Map(
            [
                ("fast", ints(1, 6)),
                ("mid", ints(0, 2)),
                ("slow", ints(2, 8)),
            ]
            .into_iter()
            .map(|(k, v)| (Arc::from(k), v))
            .collect(),
        )
    }

    fn grid(constraints: &[&str]) -> Result<Grid> {
        let texts: Vec<String> = constraints.iter().map(|s| s.to_string()).collect();
        Grid::new(&tree(), &texts, &compile, &|| Ok(()))
    }

    #[test]
    fn constrained_grid_is_the_filtered_product() {
        let g = grid(&["fast < slow", "mid * 2 != fast"]).unwrap();
        let mut expected = Vec::new();
        for f in 1..=6 {
            for m in 0..=2 {
                for s in 2..=8 {
                    if f < s && m * 2 != f {
                        expected.push(vec![(f - 1) as u64, m as u64, (s - 2) as u64]);
                    }
                }
            }
        }
        assert_eq!(g.len(), expected.len() as u128);
        let mut d = Vec::new();
        for (i, e) in expected.iter().enumerate() {
            g.digits(i as u128, &mut d);
            assert_eq!(&d, e);
        }
    }

    #[test]
    fn unknown_names_and_type_errors_are_expr_errors() {
        let err = grid(&["fast < slw"]).err().unwrap();
        assert!(
            matches!(&err, Error::Expr { message, .. } if message.contains("slow")),
            "{err}"
        );
        assert!(matches!(grid(&["fast < 'x'"]), Err(Error::Expr { .. })));
        assert!(matches!(grid(&["fast <"]), Err(Error::Expr { .. })));
    }
}
