//! Type checking and compilation of the AST into `eval::Code`.
//!
//! Every name has a `TypeSet` (a grid axis may mix types). An operation is accepted only when it
//! cannot fail for any combination of the types its operands may have, so a checked program never
//! meets a type error at run time. `and` / `or` narrow types the way a reader expects:
//! in `x == null or x > 2`, the right side only runs when `x` is not null, so it type-checks.

use crate::error::{Error, Result};
use crate::value::Value;

use super::eval::{self, Code, Fault, Num, V};
use super::parser::{Cmp, Kind, Node};
use super::types::TypeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SiteKind {
    /// Arithmetic and unary minus/plus: operands must be numbers.
    Numbers,
    /// `< <= > >=`: two numbers or two strings.
    Order,
    /// Operands of `and` / `or` / `not`.
    Logic,
    /// The whole expression must be a bool.
    Root,
}

/// A place in the source where a run-time type fault can be reported.
#[derive(Debug, Clone)]
pub(crate) struct Site {
    pub kind: SiteKind,
    pub op: &'static str,
    pub at: usize,
    pub operands: Vec<(usize, usize, bool)>,
}

pub(crate) struct Checker<'a> {
    pub src: &'a str,
    /// Current (narrowed) type of each name, by name index.
    pub types: Vec<TypeSet>,
    /// Slot of each name, by name index.
    pub slots: Vec<usize>,
    /// Static type errors are reported only in strict mode; dynamic mode (`eval_with`) checks at
    /// run time instead, against the values actually given.
    pub strict: bool,
    pub sites: Vec<Site>,
}

pub(crate) struct Checked {
    pub code: Code,
    pub ty: TypeSet,
    pub is_const: bool,
}

/// `'fast'`, `'x + 1'`, or a literal as written (`3`, `'long'`).
pub(crate) fn quote(src: &str, start: usize, end: usize, literal: bool) -> String {
    let text = src.get(start..end).unwrap_or("").trim();
    let text = if text.chars().count() > 40 {
        let cut: String = text.chars().take(37).collect();
        format!("{cut}...")
    } else {
        text.to_owned()
    };
    if literal {
        text
    } else {
        format!("'{text}'")
    }
}

fn is_literal(node: &Node) -> bool {
    matches!(node.kind, Kind::Lit(_))
}

impl Checker<'_> {
    fn err(&self, at: usize, message: String) -> Error {
        Error::Expr {
            expr: self.src.to_owned(),
            column: super::column(self.src, at),
            message,
        }
    }

    fn q(&self, node: &Node) -> String {
        quote(self.src, node.start, node.end, is_literal(node))
    }

    /// "'mode' is str" or "'x' may be null or number".
    fn describe(&self, node: &Node, ty: TypeSet) -> String {
        let single = ty.bits().count_ones() <= 1;
        format!(
            "{} {} {ty}",
            self.q(node),
            if single { "is" } else { "may be" }
        )
    }

    fn site(&mut self, kind: SiteKind, op: &'static str, at: usize, operands: &[&Node]) -> u32 {
        self.sites.push(Site {
            kind,
            op,
            at,
            operands: operands
                .iter()
                .map(|n| (n.start, n.end, is_literal(n)))
                .collect(),
        });
        // Sites are bounded by the node count, itself bounded by the source length.
        (self.sites.len() - 1) as u32
    }

    /// Folds a variable-free node to a constant, unless evaluating it faults (dynamic mode keeps
    /// the fault for run time, where it is reported like any other).
    fn fold(&self, code: Code, is_const: bool) -> (Code, bool) {
        if !is_const || matches!(code, Code::Const(_)) {
            return (code, is_const);
        }
        let no_vars = |_: usize| -> &Value { &Value::Null };
        let folded = eval::eval(&code, &no_vars).map(V::to_value);
        match folded {
            Ok(v) => (Code::Const(v), true),
            Err(_) => (code, true),
        }
    }

    pub(crate) fn check_root(&mut self, root: &Node) -> Result<(Code, u32)> {
        let c = self.check(root)?;
        if self.strict && !TypeSet::BOOL.contains(c.ty) {
            return Err(self.err(
                root.start,
                format!(
                    "a constraint must be a condition (true or false), but {}",
                    self.describe(root, c.ty)
                ),
            ));
        }
        let site = self.site(SiteKind::Root, "", root.start, &[root]);
        Ok((c.code, site))
    }

    fn check(&mut self, node: &Node) -> Result<Checked> {
        match &node.kind {
            Kind::Lit(v) => Ok(Checked {
                code: Code::Const(v.clone()),
                ty: TypeSet::of(v),
                is_const: true,
            }),
            Kind::Name(i) => Ok(Checked {
                code: Code::Var(self.slots[*i]),
                ty: self.types[*i],
                is_const: false,
            }),
            Kind::Unary { neg, op, arg } => {
                let a = self.check(arg)?;
                let sym = if *neg { "-" } else { "+" };
                self.need_numbers(sym, *op, &[(arg, a.ty)])?;
                let site = self.site(SiteKind::Numbers, sym, *op, &[arg]);
                let code = if *neg {
                    Code::Neg(Box::new(a.code), site)
                } else {
                    Code::Pos(Box::new(a.code), site)
                };
                let (code, is_const) = self.fold(code, a.is_const);
                Ok(Checked {
                    code,
                    ty: TypeSet::NUMBER,
                    is_const,
                })
            }
            Kind::Arith { op, at, lhs, rhs } => {
                let a = self.check(lhs)?;
                let b = self.check(rhs)?;
                self.need_numbers(op.symbol(), *at, &[(lhs, a.ty), (rhs, b.ty)])?;
                let site = self.site(SiteKind::Numbers, op.symbol(), *at, &[lhs, rhs]);
                let (code, is_const) = self.fold(
                    Code::Arith(*op, Box::new((a.code, b.code)), site),
                    a.is_const && b.is_const,
                );
                Ok(Checked {
                    code,
                    ty: TypeSet::NUMBER,
                    is_const,
                })
            }
            Kind::Compare { first, rest } => {
                let f = self.check(first)?;
                let (mut prev_ty, mut prev_node) = (f.ty, &**first);
                let mut all_const = f.is_const;
                let mut all_numbers = TypeSet::NUMBER.contains(f.ty);
                let mut links = Vec::with_capacity(rest.len());
                for (op, at, rhs) in rest {
                    let b = self.check(rhs)?;
                    self.check_pair(*op, *at, prev_node, prev_ty, rhs, b.ty)?;
                    let site = self.site(SiteKind::Order, op.symbol(), *at, &[prev_node, rhs]);
                    all_const &= b.is_const;
                    all_numbers &= TypeSet::NUMBER.contains(b.ty);
                    links.push((*op, b.code, site));
                    (prev_ty, prev_node) = (b.ty, rhs);
                }
                let numeric = self.strict
                    && TypeSet::NUMBER.contains(f.ty)
                    && TypeSet::NUMBER.contains(prev_ty);
                let code = match links.pop() {
                    Some((op, b, site)) if links.is_empty() => {
                        let nums = numeric
                            .then(|| {
                                Some((
                                    Num::from_code(&f.code, site, 0)?,
                                    Num::from_code(&b, site, 1)?,
                                ))
                            })
                            .flatten();
                        match (nums, f.code, b) {
                            (Some(nums), _, _) => Code::NumCmp(op, Box::new(nums)),
                            (None, Code::Var(s), Code::Const(v))
                            | (None, Code::Const(v), Code::Var(s))
                                if op.is_equality() =>
                            {
                                Code::EqConst(s, Box::new(v), op == Cmp::Ne)
                            }
                            (None, a, b) => Code::Cmp(op, Box::new((a, b)), site),
                        }
                    }
                    last => {
                        links.extend(last);
                        let nums = (self.strict && all_numbers)
                            .then(|| num_chain(&f.code, &links))
                            .flatten();
                        match nums {
                            Some(chain) => chain,
                            None => Code::Chain(Box::new(f.code), links.into_boxed_slice()),
                        }
                    }
                };
                let (code, is_const) = self.fold(code, all_const);
                Ok(Checked {
                    code,
                    ty: TypeSet::BOOL,
                    is_const,
                })
            }
            Kind::Not { op, arg } => {
                let a = self.check(arg)?;
                self.need_bool("not", *op, arg, a.ty)?;
                let site = self.site(SiteKind::Logic, "not", *op, &[arg]);
                let (code, is_const) = self.fold(Code::Not(Box::new(a.code), site), a.is_const);
                Ok(Checked {
                    code,
                    ty: TypeSet::BOOL,
                    is_const,
                })
            }
            Kind::And(items) | Kind::Or(items) => {
                let is_and = matches!(node.kind, Kind::And(_));
                let word = if is_and { "and" } else { "or" };
                let saved = self.types.clone();
                let mut out = Vec::with_capacity(items.len());
                let mut all_const = true;
                for (k, (at, item)) in items.iter().enumerate() {
                    let c = self.check(item)?;
                    // The first operand is reported at the operator that follows it.
                    let op_at = if k == 0 { items[1].0 } else { *at };
                    self.need_bool(word, op_at, item, c.ty)?;
                    let site = self.site(SiteKind::Logic, word, op_at, &[item]);
                    all_const &= c.is_const;
                    out.push((c.code, site));
                    // The next operand runs only if this one was true (and) / false (or).
                    let mut facts = Vec::new();
                    narrow(item, is_and, &mut facts);
                    for (name, ty) in facts {
                        self.types[name] = self.types[name] & ty;
                    }
                }
                self.types = saved;
                let code = if is_and {
                    Code::And(out.into_boxed_slice())
                } else {
                    Code::Or(out.into_boxed_slice())
                };
                let (code, is_const) = self.fold(code, all_const);
                Ok(Checked {
                    code,
                    ty: TypeSet::BOOL,
                    is_const,
                })
            }
        }
    }

    fn need_numbers(&self, op: &str, at: usize, operands: &[(&Node, TypeSet)]) -> Result<()> {
        if !self.strict {
            return Ok(());
        }
        let bad: Vec<String> = operands
            .iter()
            .filter(|(_, ty)| !TypeSet::NUMBER.contains(*ty))
            .map(|(n, ty)| self.describe(n, *ty))
            .collect();
        if bad.is_empty() {
            return Ok(());
        }
        Err(self.err(
            at,
            format!("'{op}' needs numbers, but {}", bad.join(" and ")),
        ))
    }

    fn need_bool(&self, op: &str, at: usize, node: &Node, ty: TypeSet) -> Result<()> {
        if !self.strict || TypeSet::BOOL.contains(ty) {
            return Ok(());
        }
        let hint = if ty.contains(TypeSet::NUMBER) {
            " (numbers are not true or false here; compare explicitly, e.g. x != 0)"
        } else {
            ""
        };
        Err(self.err(
            at,
            format!(
                "'{op}' needs true or false, but {}{hint}",
                self.describe(node, ty)
            ),
        ))
    }

    fn check_pair(
        &self,
        op: Cmp,
        at: usize,
        lhs: &Node,
        lt: TypeSet,
        rhs: &Node,
        rt: TypeSet,
    ) -> Result<()> {
        if !self.strict {
            return Ok(());
        }
        if op.is_equality() {
            if lt.is_empty() || rt.is_empty() || !(lt & rt).is_empty() {
                return Ok(());
            }
            return Err(self.err(
                at,
                format!(
                    "{} {} {} is {}: {} and {}",
                    self.q(lhs),
                    op.symbol(),
                    self.q(rhs),
                    if op == Cmp::Eq {
                        "never true"
                    } else {
                        "always true"
                    },
                    self.describe(lhs, lt),
                    self.describe(rhs, rt),
                ),
            ));
        }
        let numbers = TypeSet::NUMBER.contains(lt) && TypeSet::NUMBER.contains(rt);
        let strings = TypeSet::STR.contains(lt) && TypeSet::STR.contains(rt);
        if numbers || strings {
            return Ok(());
        }
        Err(self.err(
            at,
            format!(
                "'{}' needs two numbers or two strings, but {} and {}",
                op.symbol(),
                self.describe(lhs, lt),
                self.describe(rhs, rt)
            ),
        ))
    }
}

/// A chain `a < b <= c` of statically numeric operands; operand `k` blames the first link
/// it appears in.
fn num_chain(first: &Code, links: &[(Cmp, Code, u32)]) -> Option<Code> {
    let site0 = links.first()?.2;
    let mut nums = vec![Num::from_code(first, site0, 0)?];
    let mut ops = Vec::with_capacity(links.len());
    for (op, code, site) in links {
        nums.push(Num::from_code(code, *site, 1)?);
        ops.push(*op);
    }
    Some(Code::NumChain(
        nums.into_boxed_slice(),
        ops.into_boxed_slice(),
    ))
}

/// What is known about names when `node` evaluated to `truth`: `x == <literal>` true means `x`
/// has the literal's type; `x == null` false means `x` is not null; `not` flips; `and` (true)
/// and `or` (false) combine their operands' facts.
pub(crate) fn narrow(node: &Node, truth: bool, out: &mut Vec<(usize, TypeSet)>) {
    match &node.kind {
        Kind::Compare { first, rest } if rest.len() == 1 => {
            let (op, _, rhs) = &rest[0];
            if !op.is_equality() {
                return;
            }
            let (name, lit) = match (&first.kind, &rhs.kind) {
                (Kind::Name(i), Kind::Lit(v)) | (Kind::Lit(v), Kind::Name(i)) => (*i, v),
                _ => return,
            };
            let equal = truth == (*op == Cmp::Eq);
            if equal {
                out.push((name, TypeSet::of(lit)));
            } else if matches!(lit, Value::Null) {
                out.push((name, TypeSet::ANY.difference(TypeSet::NULL)));
            }
        }
        Kind::Not { arg, .. } => narrow(arg, !truth, out),
        Kind::And(items) if truth => items.iter().for_each(|(_, n)| narrow(n, true, out)),
        Kind::Or(items) if !truth => items.iter().for_each(|(_, n)| narrow(n, false, out)),
        _ => {}
    }
}

/// The message of a run-time type fault.
pub(crate) fn fault_error(src: &str, sites: &[Site], fault: Fault) -> Error {
    let Some(site) = sites.get(fault.site as usize) else {
        return Error::Expr {
            expr: src.to_owned(),
            column: 1,
            message: "type error".to_owned(),
        };
    };
    let operand = |k: usize| {
        site.operands
            .get(k)
            .map(|&(s, e, lit)| quote(src, s, e, lit))
            .unwrap_or_default()
    };
    let parts: Vec<String> = fault
        .bad
        .iter()
        .enumerate()
        .filter_map(|(k, b)| b.map(|kind| format!("{} is {}", operand(k), kind.name())))
        .collect();
    let parts = parts.join(" and ");
    let message = match site.kind {
        SiteKind::Numbers => format!("'{}' needs numbers, but {parts}", site.op),
        SiteKind::Order => format!(
            "'{}' needs two numbers or two strings, but {parts}",
            site.op
        ),
        SiteKind::Logic => format!("'{}' needs true or false, but {parts}", site.op),
        SiteKind::Root => {
            format!("a constraint must be a condition (true or false), but {parts}")
        }
    };
    Error::Expr {
        expr: src.to_owned(),
        column: super::column(src, site.at),
        message,
    }
}
