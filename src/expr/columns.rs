//! Vectorized evaluation: one expression over columns of values (result constraints over the
//! metric columns of a batch chunk, issue 13). The expression is compiled once against the
//! columns' types, then evaluated row by row into a bool column without touching Python.

use crate::error::{Error, Result};
use crate::value::Value;

use super::{Expr, TypeSet};

/// One named input: a typed column, or one value for every row.
#[derive(Debug, Clone, Copy)]
pub enum ColumnRef<'a> {
    F64(&'a [f64]),
    I64(&'a [i64]),
    Bool(&'a [bool]),
    /// Any values (strings, nulls, mixed types): checked at run time.
    Values(&'a [Value]),
    Scalar(&'a Value),
}

impl ColumnRef<'_> {
    /// Rows of a column; `None` for a scalar.
    pub fn rows(&self) -> Option<usize> {
        match self {
            ColumnRef::F64(v) => Some(v.len()),
            ColumnRef::I64(v) => Some(v.len()),
            ColumnRef::Bool(v) => Some(v.len()),
            ColumnRef::Values(v) => Some(v.len()),
            ColumnRef::Scalar(_) => None,
        }
    }

    fn types(&self) -> TypeSet {
        match self {
            ColumnRef::F64(_) | ColumnRef::I64(_) => TypeSet::NUMBER,
            ColumnRef::Bool(_) => TypeSet::BOOL,
            ColumnRef::Values(v) => TypeSet::of_all(v.iter()),
            ColumnRef::Scalar(v) => TypeSet::of(v),
        }
    }

    #[inline]
    fn load(&self, row: usize, into: &mut Value) {
        match self {
            ColumnRef::F64(v) => *into = Value::Float(v[row]),
            ColumnRef::I64(v) => *into = Value::Int(v[row]),
            ColumnRef::Bool(v) => *into = Value::Bool(v[row]),
            ColumnRef::Values(v) => into.clone_from(&v[row]),
            ColumnRef::Scalar(_) => {}
        }
    }
}

impl Expr {
    /// Evaluates the expression on every row of `columns` (name → column) into `out`.
    ///
    /// Every name must be one of `columns` (otherwise the error names it and suggests the closest
    /// column, as for grid constraints); columns must be as long as `out`. The expression is
    /// type-checked against the column types first, so `sharpe > 'x'` fails before any row is read;
    /// a type error that only a value can reveal (an object column) names the row.
    pub fn eval_columns(&self, columns: &[(&str, ColumnRef<'_>)], out: &mut [bool]) -> Result<()> {
        let n = out.len();
        for (name, col) in columns {
            if let Some(len) = col.rows().filter(|&len| len != n) {
                return Err(Error::Invalid(format!(
                    "column {name:?} has {len} values, expected {n} (one per row)"
                )));
            }
        }
        let names = self.names();
        let mut inputs: Vec<ColumnRef<'_>> = Vec::with_capacity(names.len());
        for name in &names {
            match columns.iter().find(|(k, _)| k == name) {
                Some((_, col)) => inputs.push(*col),
                None => return Err(self.unknown_name(name, columns.iter().map(|(k, _)| *k))),
            }
        }
        let resolve = |name: &str| {
            let k = names.iter().position(|n| *n == name)?;
            Some((k, inputs[k].types()))
        };
        let compiled = self.compile(&resolve)?;
        if let Some(constant) = compiled.constant() {
            out.fill(constant);
            return Ok(());
        }
        let mut scratch: Vec<Value> = inputs
            .iter()
            .map(|c| match c {
                ColumnRef::Scalar(v) => (*v).clone(),
                _ => Value::Null,
            })
            .collect();
        for (row, slot) in out.iter_mut().enumerate() {
            for (k, col) in inputs.iter().enumerate() {
                col.load(row, &mut scratch[k]);
            }
            let values = &scratch;
            *slot = compiled.eval(&|k| &values[k]).map_err(|e| match e {
                Error::Expr {
                    expr,
                    column,
                    message,
                } => Error::Expr {
                    expr,
                    column,
                    message: format!("{message} (row {row})"),
                },
                other => other,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(src: &str, columns: &[(&str, ColumnRef<'_>)], n: usize) -> Result<Vec<bool>> {
        let mut out = vec![false; n];
        Expr::parse(src)?.eval_columns(columns, &mut out)?;
        Ok(out)
    }

    #[test]
    fn rows_match_scalar_evaluation() {
        let sharpe = [0.5, 1.5, f64::NAN, 2.0];
        let trades = [30i64, 5, 40, 20];
        let ok = [true, true, true, false];
        let cols = [
            ("sharpe", ColumnRef::F64(&sharpe)),
            ("trades", ColumnRef::I64(&trades)),
            ("ok", ColumnRef::Bool(&ok)),
        ];
        let got = eval("sharpe > 1 and trades >= 10 or not ok", &cols, 4).unwrap();
        // NaN compares false, as in the scalar language.
        assert_eq!(got, vec![false, false, false, true]);
        let expr = Expr::parse("sharpe > 1 and trades >= 10 or not ok").unwrap();
        for (row, want) in got.iter().enumerate() {
            let values = [
                Value::Float(sharpe[row]),
                Value::Int(trades[row]),
                Value::Bool(ok[row]),
            ];
            assert_eq!(
                expr.eval_values(&values.iter().collect::<Vec<_>>())
                    .unwrap(),
                *want
            );
        }
    }

    #[test]
    fn scalars_and_value_columns() {
        let mode = [Value::Str("long".into()), Value::Str("short".into())];
        let cost = Value::Float(0.5);
        let cols = [
            ("mode", ColumnRef::Values(&mode)),
            ("cost", ColumnRef::Scalar(&cost)),
        ];
        assert_eq!(
            eval("mode == 'long' and cost < 1", &cols, 2).unwrap(),
            vec![true, false]
        );
    }

    #[test]
    fn unknown_name_suggests_a_column() {
        let x = [1.0];
        let err = eval("sharp > 1", &[("sharpe", ColumnRef::F64(&x))], 1).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("unknown name 'sharp'") && text.contains("did you mean 'sharpe'"),
            "{text}"
        );
    }

    #[test]
    fn type_errors_and_lengths() {
        let x = [1.0, 2.0];
        let err = eval("x > 'a'", &[("x", ColumnRef::F64(&x))], 2).unwrap_err();
        assert!(matches!(err, Error::Expr { .. }), "{err}");
        let err = eval("x > 1", &[("x", ColumnRef::F64(&x))], 3).unwrap_err();
        assert!(
            err.to_string().contains("has 2 values, expected 3"),
            "{err}"
        );
        // A column that mixes numbers and strings cannot be ordered: refused before any row.
        let mixed = [Value::Int(1), Value::Str("a".into())];
        let err = eval("m > 0", &[("m", ColumnRef::Values(&mixed))], 2).unwrap_err();
        assert!(matches!(err, Error::Expr { .. }), "{err}");
    }
}
