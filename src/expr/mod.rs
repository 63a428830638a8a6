//! The constraint expression language: a small, safe language for grid constraints over
//! parameter paths (`fast < slow`, `exit.stop_loss <= exit.take_profit * 0.5`) and result
//! constraints over metrics (`trades >= 20`). Source text is parsed into an AST, type-checked and
//! compiled to a compact tree; nothing is ever evaluated as Python.
//!
//! # Language
//! - Literals: ints (`12`, `1_000`), floats (`1.5`, `.5`, `1e-5`), strings in single or double
//!   quotes with escapes `\\ \' \" \n \t \r \0 \uXXXX`, `true`/`false` (also `True`/`False`),
//!   `null` (also `None`).
//! - Names: dotted paths of identifiers `[A-Za-z_][A-Za-z0-9_]*`, such as `exit.stop_loss`; any
//!   other name in backticks, such as `` `Return [%]` `` or `` `# Trades` `` (the text between them
//!   exactly, never a keyword).
//! - Operators, loosest first: `or` (`||`); `and` (`&&`); `not` (`!`); comparisons
//!   `< <= > >= == !=`, chainable as in Python (`a < b < c` is `a < b and b < c`, `b` evaluated
//!   once); `+ -`; `* / %`; unary `- +`; parentheses.
//!
//! # Semantics
//! - Numbers are ints (i64) or floats (f64). Int `+ - * %` int stays an exact int; on overflow the
//!   result falls back to f64. A mixed operation gives a float. `/` is true division (always a
//!   float). `%` takes the sign of the divisor, as in Python.
//! - Division (or `%`) by zero follows IEEE (inf, -inf or NaN) instead of failing, so a
//!   constraint never aborts a grid. Every comparison with NaN is false except `!=`, which is true.
//! - Int/float comparisons are exact (no rounding of big ints), as in Python.
//! - `==` / `!=` are type-strict like Python's, except that numbers compare by value
//!   (`1 == 1.0`). Bools are not numbers: `true == 1` is false and `true + 1` is a type error.
//! - `< <= > >=` need two numbers or two strings (strings compare by code point).
//! - `and`, `or`, `not` need bools (no truthiness) and short-circuit.
//! - Lists and dicts (type `OTHER`) only support `==` / `!=` (elementwise, type-strict).
//!
//! # Checking
//! [`Expr::compile`] resolves each name to a slot and a [`TypeSet`] and rejects any operation
//! that could meet a wrong type for some value of its names — so a compiled constraint never
//! fails at run time on values of the declared types. `and` / `or` narrow types: in
//! `x == null or x > 2` the right side only runs when `x` is not null. An equality that can never
//! hold because the two sides share no type (`mode == 3` with `mode` a string) is also an error.
//! [`Expr::eval_with`] instead checks the values it is given, at run time.

mod check;
mod columns;
mod eval;
mod lexer;
mod parser;
mod types;

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::value::Value;

pub use columns::ColumnRef;
pub use types::TypeSet;

use check::{Checker, Site};
use eval::Code;
use parser::Node;

/// Deeper nesting (parentheses, unary chains, or operator chains) is refused: hostile input must
/// not overflow the stack of the recursive parser and evaluator.
pub const MAX_DEPTH: usize = 100;

/// A syntax error at a byte offset, turned into `Error::Expr` (with a 1-based char column) once
/// the source is known.
#[derive(Debug)]
pub(crate) struct Syntax {
    pub at: usize,
    pub message: String,
}

impl Syntax {
    pub(crate) fn new(at: usize, message: impl Into<String>) -> Self {
        Syntax {
            at,
            message: message.into(),
        }
    }
}

/// The 1-based column (in characters) of a byte offset.
pub(crate) fn column(src: &str, at: usize) -> usize {
    let at = at.min(src.len());
    src.get(..at).map_or(at, |s| s.chars().count()) + 1
}

/// A parsed expression: immutable, cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct Expr {
    inner: Arc<ExprInner>,
}

struct ExprInner {
    source: Arc<str>,
    root: Node,
    names: Vec<String>,
    /// Byte offset of each name's first appearance, for error columns.
    name_at: Vec<usize>,
    /// The unchecked program used by `eval_with`: slot `i` is name `i`.
    dynamic: Compiled,
}

impl std::fmt::Debug for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Expr").field(&self.source()).finish()
    }
}

impl Expr {
    /// Parses `source`; a syntax error is `Error::Expr` with the 1-based column where something
    /// else was expected.
    pub fn parse(source: &str) -> Result<Expr> {
        let syntax = |e: Syntax| Error::Expr {
            expr: source.to_owned(),
            column: column(source, e.at),
            message: e.message,
        };
        let tokens = lexer::tokenize(source).map_err(syntax)?;
        let parsed = parser::parse(source, tokens).map_err(syntax)?;
        let source: Arc<str> = source.into();
        let n = parsed.names.len();
        let mut checker = Checker {
            src: &source,
            types: vec![TypeSet::ANY; n],
            slots: (0..n).collect(),
            strict: false,
            sites: Vec::new(),
        };
        let (code, root_site) = checker.check_root(&parsed.root)?;
        let sites = checker.sites;
        let dynamic = Compiled {
            inner: Arc::new(CompiledInner {
                source: source.clone(),
                code,
                root_site,
                slots: (0..n).collect(),
                sites,
            }),
        };
        Ok(Expr {
            inner: Arc::new(ExprInner {
                source,
                root: parsed.root,
                names: parsed.names,
                name_at: parsed.name_at,
                dynamic,
            }),
        })
    }

    pub fn source(&self) -> &str {
        &self.inner.source
    }

    /// The distinct dotted names, in order of first appearance.
    pub fn names(&self) -> Vec<&str> {
        self.inner.names.iter().map(String::as_str).collect()
    }

    /// Resolves every name to a slot and type-checks (see the module docs). An unknown name is an
    /// `Error::Expr` at its first appearance.
    pub fn compile(&self, resolve: &dyn Fn(&str) -> Option<(usize, TypeSet)>) -> Result<Compiled> {
        self.compile_with_known(resolve, &[])
    }

    /// Like [`Expr::compile`], and an unknown name's error suggests the closest of `known`.
    pub fn compile_with_known(
        &self,
        resolve: &dyn Fn(&str) -> Option<(usize, TypeSet)>,
        known: &[&str],
    ) -> Result<Compiled> {
        let inner = &self.inner;
        let mut types = Vec::with_capacity(inner.names.len());
        let mut slots = Vec::with_capacity(inner.names.len());
        for name in &inner.names {
            let (slot, ty) =
                resolve(name).ok_or_else(|| self.unknown_name(name, known.iter().copied()))?;
            slots.push(slot);
            types.push(ty);
        }
        let mut checker = Checker {
            src: &inner.source,
            types,
            slots: slots.clone(),
            strict: true,
            sites: Vec::new(),
        };
        let (code, root_site) = checker.check_root(&inner.root)?;
        let sites = checker.sites;
        let mut distinct: Vec<usize> = Vec::with_capacity(slots.len());
        for s in slots {
            if !distinct.contains(&s) {
                distinct.push(s);
            }
        }
        Ok(Compiled {
            inner: Arc::new(CompiledInner {
                source: inner.source.clone(),
                code,
                root_site,
                slots: distinct,
                sites,
            }),
        })
    }

    /// The error for a name that is not there, at its first appearance, suggesting the closest
    /// of `known` when one is close.
    pub fn unknown_name<'k>(&self, name: &str, known: impl IntoIterator<Item = &'k str>) -> Error {
        let at = self
            .inner
            .names
            .iter()
            .position(|n| n == name)
            .map_or(0, |i| self.inner.name_at[i]);
        let hint = suggest(name, known)
            .map(|s| format!(" (did you mean {}?)", written(s)))
            .unwrap_or_default();
        Error::Expr {
            expr: self.source().to_owned(),
            column: column(self.source(), at),
            message: format!("unknown name '{name}'{hint}"),
        }
    }

    /// Evaluates against dynamic data (metrics): every name is looked up first (a missing one is
    /// an error naming it), and types are checked on the values given.
    pub fn eval_with<'v>(&self, lookup: &dyn Fn(&str) -> Option<&'v Value>) -> Result<bool> {
        let values = self
            .inner
            .names
            .iter()
            .map(|n| lookup(n).ok_or_else(|| self.unknown_name(n, [])))
            .collect::<Result<Vec<_>>>()?;
        self.eval_values(&values)
    }

    /// Evaluates with the values of [`Expr::names`], in that order, checking types at run time.
    pub fn eval_values(&self, values: &[&Value]) -> Result<bool> {
        let n = self.inner.names.len();
        if values.len() != n {
            return Err(Error::Invalid(format!(
                "expression {:?} has {n} names but {} values were given",
                self.source(),
                values.len()
            )));
        }
        self.eval_indexed(&|i| values[i])
    }

    /// Evaluates with `value(i)` giving the value of the `i`-th of [`Expr::names`], checking
    /// types at run time.
    pub fn eval_indexed<'v>(&self, value: &dyn Fn(usize) -> &'v Value) -> Result<bool> {
        self.inner.dynamic.eval(value)
    }
}

/// A name as an expression writes it: `'a.b'` for a dotted path of identifiers, backticks for any
/// other (`` `Return [%]` ``), so that a suggestion can be pasted as is.
fn written(name: &str) -> String {
    let identifier = |part: &str| {
        let mut chars = part.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if name.split('.').all(identifier) {
        format!("'{name}'")
    } else {
        format!("`{name}`")
    }
}

/// The closest known name: one that ends with `.name` (a forgotten namespace), else the most
/// similar one (Jaro-Winkler, which favours shared prefixes such as `sharpe` / `sharpe_ratio`)
/// when it is close enough to be a typo.
pub(crate) fn suggest<'k>(name: &str, known: impl IntoIterator<Item = &'k str>) -> Option<&'k str> {
    let suffix = format!(".{name}");
    let mut best: Option<(f64, &str)> = None;
    for k in known {
        if k.ends_with(&suffix) {
            return Some(k);
        }
        let close = strsim::damerau_levenshtein(name, k) <= (name.chars().count() / 3).max(1);
        let score = strsim::jaro_winkler(name, k);
        if (close || score >= 0.85) && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, k));
        }
    }
    best.map(|(_, k)| k)
}

/// A type-checked expression whose names are slot indices: immutable, cheap to clone,
/// `Send + Sync`. Evaluation does not allocate.
#[derive(Clone)]
pub struct Compiled {
    inner: Arc<CompiledInner>,
}

struct CompiledInner {
    source: Arc<str>,
    code: Code,
    root_site: u32,
    slots: Vec<usize>,
    sites: Vec<Site>,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled")
            .field("source", &self.source())
            .field("slots", &self.slots())
            .finish()
    }
}

impl Compiled {
    /// The distinct slots the expression reads, in order of first appearance.
    pub fn slots(&self) -> &[usize] {
        &self.inner.slots
    }

    pub fn source(&self) -> &str {
        &self.inner.source
    }

    /// Evaluates with `slot(i)` giving the value of slot `i`. With values of the declared types
    /// this cannot fail; a value of another type is an `Error::Expr` naming the operand.
    #[inline]
    pub fn eval<'v>(&self, slot: &dyn Fn(usize) -> &'v Value) -> Result<bool> {
        let inner = &*self.inner;
        eval::as_bool(&inner.code, inner.root_site, slot)
            .map_err(|f| check::fault_error(&inner.source, &inner.sites, f))
    }

    /// True when the expression folded to a constant (it reads no slot).
    pub fn constant(&self) -> Option<bool> {
        match self.inner.code {
            Code::Const(Value::Bool(b)) => Some(b),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
