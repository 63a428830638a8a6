//! Recursive-descent parser from tokens to the AST, with Python's precedence:
//! `or` < `and` < `not` < comparisons (chainable) < `+ -` < `* / %` < unary `- +` < atoms.

use crate::value::Value;

use super::lexer::{Tok, Token};
use super::{Syntax, MAX_DEPTH};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl Arith {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Arith::Add => "+",
            Arith::Sub => "-",
            Arith::Mul => "*",
            Arith::Div => "/",
            Arith::Rem => "%",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Cmp {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
            Cmp::Eq => "==",
            Cmp::Ne => "!=",
        }
    }

    pub(crate) fn is_equality(self) -> bool {
        matches!(self, Cmp::Eq | Cmp::Ne)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub kind: Kind,
    /// Byte span in the source, used to quote the operand in error messages.
    pub start: usize,
    pub end: usize,
    pub depth: usize,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Lit(Value),
    /// Index into the expression's list of distinct names.
    Name(usize),
    /// Unary minus (`neg = true`) or plus; `op` is the operator's byte offset.
    Unary {
        neg: bool,
        op: usize,
        arg: Box<Node>,
    },
    Arith {
        op: Arith,
        at: usize,
        lhs: Box<Node>,
        rhs: Box<Node>,
    },
    /// `a < b <= c`: Python's chained comparison, `b` evaluated once.
    Compare {
        first: Box<Node>,
        rest: Vec<(Cmp, usize, Node)>,
    },
    And(Vec<(usize, Node)>),
    Or(Vec<(usize, Node)>),
    Not {
        op: usize,
        arg: Box<Node>,
    },
}

pub(crate) struct Parsed {
    pub root: Node,
    pub names: Vec<String>,
    pub name_at: Vec<usize>,
}

pub(crate) fn parse(src: &str, tokens: Vec<Token>) -> Result<Parsed, Syntax> {
    let mut p = Parser {
        src,
        tokens,
        pos: 0,
        names: Vec::new(),
        name_at: Vec::new(),
        nesting: 0,
    };
    if p.peek().tok == Tok::End {
        let at = p.peek().start;
        return Err(Syntax::new(
            at,
            "expected a condition, found an empty expression",
        ));
    }
    let root = p.or()?;
    let t = p.peek();
    if t.tok != Tok::End {
        return Err(trailing(t));
    }
    Ok(Parsed {
        root,
        names: p.names,
        name_at: p.name_at,
    })
}

/// A token where an operator or the end should have been.
fn trailing(t: &Token) -> Syntax {
    let message = match &t.tok {
        Tok::RParen => "unmatched ')'".to_owned(),
        Tok::LParen => {
            "expected an operator before '(' (function calls are not supported)".to_owned()
        }
        Tok::Name(n) if n == "is" => "'is' is not supported; use '==' or '!='".to_owned(),
        Tok::Name(n) if n == "in" => "'in' is not supported; use '==' with 'or'".to_owned(),
        other => format!(
            "expected an operator or the end of the expression, found {}",
            other.describe()
        ),
    };
    Syntax::new(t.start, message)
}

struct Parser<'s> {
    src: &'s str,
    tokens: Vec<Token>,
    pos: usize,
    names: Vec<String>,
    name_at: Vec<usize>,
    nesting: usize,
}

fn node(kind: Kind, start: usize, end: usize, depth: usize, at: usize) -> Result<Node, Syntax> {
    if depth > MAX_DEPTH {
        return Err(Syntax::new(
            at,
            format!("expression nested too deeply (more than {MAX_DEPTH} levels)"),
        ));
    }
    Ok(Node {
        kind,
        start,
        end,
        depth,
    })
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        // The token list always ends with `End` and `pos` never moves past it.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if t.tok != Tok::End {
            self.pos += 1;
        }
        t
    }

    fn enter(&mut self, at: usize) -> Result<(), Syntax> {
        self.nesting += 1;
        if self.nesting > MAX_DEPTH {
            return Err(Syntax::new(
                at,
                format!("expression nested too deeply (more than {MAX_DEPTH} levels)"),
            ));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Node, Syntax> {
        self.logical(true)
    }

    fn logical(&mut self, is_or: bool) -> Result<Node, Syntax> {
        let first = if is_or {
            self.logical(false)?
        } else {
            self.not()?
        };
        let want = if is_or { Tok::Or } else { Tok::And };
        if self.peek().tok != want {
            return Ok(first);
        }
        let start = first.start;
        let mut depth = first.depth;
        let mut items = vec![(0, first)];
        while self.peek().tok == want {
            let op = self.bump();
            let label = if op.text.is_empty() {
                op.tok.symbol()
            } else {
                op.text
            };
            self.expect_value(label)?;
            let next = if is_or {
                self.logical(false)?
            } else {
                self.not()?
            };
            depth = depth.max(next.depth);
            items.push((op.start, next));
        }
        let end = items.last().map_or(start, |(_, n)| n.end);
        let at = items.last().map_or(start, |(at, _)| *at);
        let kind = if is_or {
            Kind::Or(items)
        } else {
            Kind::And(items)
        };
        node(kind, start, end, depth + 1, at)
    }

    fn not(&mut self) -> Result<Node, Syntax> {
        if self.peek().tok != Tok::Not {
            return self.comparison();
        }
        let op = self.bump();
        self.enter(op.start)?;
        self.expect_value(if op.text.is_empty() { "not" } else { op.text })?;
        let arg = self.not()?;
        self.nesting -= 1;
        let (end, depth) = (arg.end, arg.depth + 1);
        node(
            Kind::Not {
                op: op.start,
                arg: Box::new(arg),
            },
            op.start,
            end,
            depth,
            op.start,
        )
    }

    fn comparison(&mut self) -> Result<Node, Syntax> {
        let first = self.sum()?;
        let mut rest = Vec::new();
        let mut depth = first.depth;
        loop {
            let op = match self.peek().tok {
                Tok::Lt => Cmp::Lt,
                Tok::Le => Cmp::Le,
                Tok::Gt => Cmp::Gt,
                Tok::Ge => Cmp::Ge,
                Tok::Eq => Cmp::Eq,
                Tok::Ne => Cmp::Ne,
                _ => break,
            };
            let t = self.bump();
            self.expect_value(op.symbol())?;
            let rhs = self.sum()?;
            depth = depth.max(rhs.depth);
            rest.push((op, t.start, rhs));
        }
        if rest.is_empty() {
            return Ok(first);
        }
        let (start, end) = (first.start, rest.last().map_or(first.end, |r| r.2.end));
        let at = rest.last().map_or(start, |r| r.1);
        node(
            Kind::Compare {
                first: Box::new(first),
                rest,
            },
            start,
            end,
            depth + 1,
            at,
        )
    }

    fn sum(&mut self) -> Result<Node, Syntax> {
        let mut lhs = self.term()?;
        loop {
            let op = match self.peek().tok {
                Tok::Plus => Arith::Add,
                Tok::Minus => Arith::Sub,
                _ => return Ok(lhs),
            };
            lhs = self.binary(op, lhs, Self::term)?;
        }
    }

    fn term(&mut self) -> Result<Node, Syntax> {
        let mut lhs = self.unary()?;
        loop {
            let op = match self.peek().tok {
                Tok::Star => Arith::Mul,
                Tok::Slash => Arith::Div,
                Tok::Percent => Arith::Rem,
                _ => return Ok(lhs),
            };
            lhs = self.binary(op, lhs, Self::unary)?;
        }
    }

    fn binary(
        &mut self,
        op: Arith,
        lhs: Node,
        operand: fn(&mut Self) -> Result<Node, Syntax>,
    ) -> Result<Node, Syntax> {
        let t = self.bump();
        self.expect_value(op.symbol())?;
        let rhs = operand(self)?;
        let (start, end, depth) = (lhs.start, rhs.end, lhs.depth.max(rhs.depth) + 1);
        node(
            Kind::Arith {
                op,
                at: t.start,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            },
            start,
            end,
            depth,
            t.start,
        )
    }

    fn unary(&mut self) -> Result<Node, Syntax> {
        let neg = match self.peek().tok {
            Tok::Minus => true,
            Tok::Plus => false,
            _ => return self.atom(),
        };
        let op = self.bump();
        self.enter(op.start)?;
        self.expect_value(op.tok.symbol())?;
        let arg = self.unary()?;
        self.nesting -= 1;
        let (end, depth) = (arg.end, arg.depth + 1);
        node(
            Kind::Unary {
                neg,
                op: op.start,
                arg: Box::new(arg),
            },
            op.start,
            end,
            depth,
            op.start,
        )
    }

    /// After an operator: the next token must be able to start a value.
    fn expect_value(&self, after: &str) -> Result<(), Syntax> {
        let t = self.peek();
        let starts_value = matches!(
            t.tok,
            Tok::Int(_)
                | Tok::Float(_)
                | Tok::Str(_)
                | Tok::Name(_)
                | Tok::True
                | Tok::False
                | Tok::Null
                | Tok::LParen
                | Tok::Minus
                | Tok::Plus
                | Tok::Not
        );
        // `not` may only follow a logical operator or `(`: Python rejects `a < not b`.
        let not_allowed =
            t.tok == Tok::Not && !matches!(after, "and" | "or" | "not" | "&&" | "||" | "!" | "(");
        if starts_value && !not_allowed {
            return Ok(());
        }
        let message = if t.tok == Tok::End {
            format!("expected a value after '{after}'")
        } else {
            format!(
                "expected a value after '{after}', found {}",
                t.tok.describe()
            )
        };
        Err(Syntax::new(t.start, message))
    }

    fn atom(&mut self) -> Result<Node, Syntax> {
        let t = self.bump();
        let lit = |v: Value| node(Kind::Lit(v), t.start, t.end, 1, t.start);
        match t.tok {
            Tok::Int(i) => lit(Value::Int(i)),
            Tok::Float(f) => lit(Value::Float(f)),
            Tok::Str(ref s) => lit(Value::Str(s.as_str().into())),
            Tok::True => lit(Value::Bool(true)),
            Tok::False => lit(Value::Bool(false)),
            Tok::Null => lit(Value::Null),
            Tok::Name(ref n) => {
                let idx = match self.names.iter().position(|x| x == n) {
                    Some(i) => i,
                    None => {
                        self.names.push(n.clone());
                        self.name_at.push(t.start);
                        self.names.len() - 1
                    }
                };
                node(Kind::Name(idx), t.start, t.end, 1, t.start)
            }
            Tok::LParen => {
                self.enter(t.start)?;
                self.expect_value("(")?;
                let inner = self.or()?;
                self.nesting -= 1;
                let close = self.peek().clone();
                if close.tok != Tok::RParen {
                    let found = if close.tok == Tok::End {
                        String::new()
                    } else {
                        format!(", found {}", close.tok.describe())
                    };
                    return Err(Syntax::new(
                        close.start,
                        format!(
                            "expected ')' to close the '(' at column {}{found}",
                            super::column(self.src, t.start)
                        ),
                    ));
                }
                self.bump();
                // Parentheses keep the inner node; its span widens to quote them in messages.
                Ok(Node {
                    start: t.start,
                    end: close.end,
                    ..inner
                })
            }
            // Callers check `expect_value` first, so only the very first token lands here.
            ref other => Err(Syntax::new(
                t.start,
                format!("expected a value, found {}", other.describe()),
            )),
        }
    }
}
