//! Tokens of the constraint language, each with its byte span in the source.

use super::Syntax;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Int(i64),
    Float(f64),
    Str(String),
    /// A dotted path such as `exit.stop_loss`.
    Name(String),
    True,
    False,
    Null,
    And,
    Or,
    Not,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    LParen,
    RParen,
    End,
}

impl Tok {
    /// How the token is named in "expected … after X" messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Int(_) | Tok::Float(_) => "a number".into(),
            Tok::Str(_) => "a string".into(),
            Tok::Name(n) => format!("'{n}'"),
            Tok::End => "the end of the expression".into(),
            other => format!("'{}'", other.symbol()),
        }
    }

    pub(crate) fn symbol(&self) -> &'static str {
        match self {
            Tok::True => "true",
            Tok::False => "false",
            Tok::Null => "null",
            Tok::And => "and",
            Tok::Or => "or",
            Tok::Not => "not",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Star => "*",
            Tok::Slash => "/",
            Tok::Percent => "%",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            Tok::Eq => "==",
            Tok::Ne => "!=",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::Int(_) | Tok::Float(_) | Tok::Str(_) | Tok::Name(_) | Tok::End => "",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    /// Byte offsets `[start, end)` in the source.
    pub start: usize,
    pub end: usize,
    /// The operator was written in its symbolic form (`&&`, `||`, `!`), kept for messages.
    pub text: &'static str,
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, Syntax> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let (tok, end, text) = match c {
            b'0'..=b'9' | b'.' if c != b'.' || bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let (tok, end) = number(src, i)?;
                (tok, end, "")
            }
            b'\'' | b'"' => {
                let (s, end) = string(src, i)?;
                (Tok::Str(s), end, "")
            }
            b'`' => {
                let (n, end) = quoted_name(src, i)?;
                (Tok::Name(n), end, "")
            }
            c if is_ident_start(c) => {
                let (tok, end) = name(src, i)?;
                (tok, end, "")
            }
            b'+' => (Tok::Plus, i + 1, ""),
            b'-' => (Tok::Minus, i + 1, ""),
            b'*' if bytes.get(i + 1) == Some(&b'*') => {
                return Err(Syntax::new(i, "'**' (power) is not supported"));
            }
            b'*' => (Tok::Star, i + 1, ""),
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                return Err(Syntax::new(
                    i,
                    "'//' (floor division) is not supported; '/' is true division",
                ));
            }
            b'/' => (Tok::Slash, i + 1, ""),
            b'%' => (Tok::Percent, i + 1, ""),
            b'(' => (Tok::LParen, i + 1, ""),
            b')' => (Tok::RParen, i + 1, ""),
            b'<' if bytes.get(i + 1) == Some(&b'=') => (Tok::Le, i + 2, ""),
            b'<' if bytes.get(i + 1) == Some(&b'>') => {
                return Err(Syntax::new(i, "'<>' is not an operator; use '!='"));
            }
            b'<' => (Tok::Lt, i + 1, ""),
            b'>' if bytes.get(i + 1) == Some(&b'=') => (Tok::Ge, i + 2, ""),
            b'>' => (Tok::Gt, i + 1, ""),
            b'=' if bytes.get(i + 1) == Some(&b'=') => (Tok::Eq, i + 2, ""),
            b'=' => {
                return Err(Syntax::new(
                    i,
                    "'=' is not an operator; use '==' to compare",
                ));
            }
            b'!' if bytes.get(i + 1) == Some(&b'=') => (Tok::Ne, i + 2, ""),
            b'!' => (Tok::Not, i + 1, "!"),
            b'&' if bytes.get(i + 1) == Some(&b'&') => (Tok::And, i + 2, "&&"),
            b'|' if bytes.get(i + 1) == Some(&b'|') => (Tok::Or, i + 2, "||"),
            b'&' => return Err(Syntax::new(i, "unexpected '&'; use 'and' (or '&&')")),
            b'|' => return Err(Syntax::new(i, "unexpected '|'; use 'or' (or '||')")),
            _ => {
                let ch = src[i..].chars().next().unwrap_or('\u{fffd}');
                return Err(Syntax::new(i, format!("unexpected character {ch:?}")));
            }
        };
        out.push(Token {
            tok,
            start,
            end,
            text,
        });
        i = end;
    }
    out.push(Token {
        tok: Tok::End,
        start: src.len(),
        end: src.len(),
        text: "",
    });
    Ok(out)
}

/// Numbers as Python writes them: `12`, `1_000`, `1.5`, `.5`, `1.`, `1e-5`, `2.5E3`.
/// An integer literal beyond i64 becomes a float (as arithmetic overflow does).
fn number(src: &str, start: usize) -> Result<(Tok, usize), Syntax> {
    let bytes = src.as_bytes();
    let mut i = start;
    let mut is_float = false;
    let digits = |i: &mut usize| {
        while *i < bytes.len() && (bytes[*i].is_ascii_digit() || bytes[*i] == b'_') {
            *i += 1;
        }
    };
    digits(&mut i);
    if i < bytes.len() && bytes[i] == b'.' {
        is_float = true;
        i += 1;
        digits(&mut i);
    }
    if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
        is_float = true;
        i += 1;
        if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
            i += 1;
        }
        let exp_start = i;
        digits(&mut i);
        if i == exp_start {
            return Err(malformed(src, start, i));
        }
    }
    // `1abc`, `1.2.3`: glued characters make the literal malformed rather than two tokens.
    if i < bytes.len() && (is_ident_char(bytes[i]) || bytes[i] == b'.') {
        return Err(malformed(src, start, scan_word(bytes, i)));
    }
    let text = &src[start..i];
    if text.starts_with('_')
        || text.ends_with('_')
        || text.contains("__")
        || text.contains("_.")
        || text.contains("._")
        || text.contains("_e")
        || text.contains("_E")
        || text.contains("e_")
        || text.contains("E_")
    {
        return Err(malformed(src, start, i));
    }
    let clean: String = text.chars().filter(|&c| c != '_').collect();
    if !is_float {
        if let Ok(v) = clean.parse::<i64>() {
            return Ok((Tok::Int(v), i));
        }
    }
    clean
        .parse::<f64>()
        .map(|v| (Tok::Float(v), i))
        .map_err(|_| malformed(src, start, i))
}

fn scan_word(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && (is_ident_char(bytes[i]) || bytes[i] == b'.') {
        i += 1;
    }
    i
}

fn malformed(src: &str, start: usize, end: usize) -> Syntax {
    let end = end.min(src.len());
    let text = src.get(start..end).unwrap_or("");
    Syntax::new(start, format!("malformed number '{text}'"))
}

fn string(src: &str, start: usize) -> Result<(String, usize), Syntax> {
    let quote = src.as_bytes()[start] as char;
    let mut out = String::new();
    let mut chars = src[start + 1..].char_indices();
    while let Some((off, c)) = chars.next() {
        let at = start + 1 + off;
        match c {
            c if c == quote => return Ok((out, at + 1)),
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                match e {
                    '\\' => out.push('\\'),
                    '\'' => out.push('\''),
                    '"' => out.push('"'),
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '0' => out.push('\0'),
                    'u' => {
                        let hex: String = chars.by_ref().take(4).map(|(_, h)| h).collect();
                        let code = (hex.len() == 4)
                            .then(|| u32::from_str_radix(&hex, 16).ok())
                            .flatten()
                            .and_then(char::from_u32);
                        match code {
                            Some(ch) => out.push(ch),
                            None => {
                                return Err(Syntax::new(
                                    at,
                                    "'\\u' must be followed by 4 hex digits of a character",
                                ))
                            }
                        }
                    }
                    other => {
                        return Err(Syntax::new(
                            at,
                            format!(
                                "unknown escape '\\{other}' (use \\\\, \\', \\\", \\n, \\t, \\r, \\0 or \\uXXXX)"
                            ),
                        ))
                    }
                }
            }
            c => out.push(c),
        }
    }
    Err(Syntax::new(
        start,
        format!("unterminated string: expected a closing {quote}"),
    ))
}

/// A name in backticks, for names that are not identifiers: metrics such as `` `Return [%]` ``
/// or `` `# Trades` `` (backtesting.py's statistics). The text between the backticks is the name
/// exactly (no escapes; it cannot hold a backtick), never a keyword.
fn quoted_name(src: &str, start: usize) -> Result<(String, usize), Syntax> {
    let body = &src[start + 1..];
    let Some(len) = body.find('`') else {
        return Err(Syntax::new(
            start,
            "unterminated name: expected a closing ` (backticks quote a name such as `Return [%]`)",
        ));
    };
    if body[..len].trim().is_empty() {
        return Err(Syntax::new(start, "empty name between backticks"));
    }
    Ok((body[..len].to_owned(), start + 1 + len + 1))
}

fn name(src: &str, start: usize) -> Result<(Tok, usize), Syntax> {
    let bytes = src.as_bytes();
    let mut i = start;
    loop {
        while i < bytes.len() && is_ident_char(bytes[i]) {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == b'.' {
            if bytes.get(i + 1).is_some_and(|&c| is_ident_start(c)) {
                i += 1;
                continue;
            }
            return Err(Syntax::new(
                i + 1,
                format!("expected a name after '.' in '{}.'", &src[start..i]),
            ));
        }
        break;
    }
    let text = &src[start..i];
    let tok = match text {
        "and" => Tok::And,
        "or" => Tok::Or,
        "not" => Tok::Not,
        "true" | "True" => Tok::True,
        "false" | "False" => Tok::False,
        "null" | "None" => Tok::Null,
        _ => Tok::Name(text.to_owned()),
    };
    Ok((tok, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        tokenize(src)
            .unwrap_or_else(|e| panic!("{src}: {e:?}"))
            .into_iter()
            .map(|t| t.tok)
            .collect()
    }

    #[test]
    fn numbers() {
        assert_eq!(toks("12"), vec![Tok::Int(12), Tok::End]);
        assert_eq!(toks("1_000"), vec![Tok::Int(1000), Tok::End]);
        assert_eq!(toks("1.5"), vec![Tok::Float(1.5), Tok::End]);
        assert_eq!(toks(".5"), vec![Tok::Float(0.5), Tok::End]);
        assert_eq!(toks("1."), vec![Tok::Float(1.0), Tok::End]);
        assert_eq!(toks("1e-5"), vec![Tok::Float(1e-5), Tok::End]);
        assert_eq!(toks("2.5E3"), vec![Tok::Float(2500.0), Tok::End]);
        assert_eq!(
            toks("99999999999999999999"),
            vec![Tok::Float(1e20), Tok::End]
        );
    }

    #[test]
    fn malformed_numbers() {
        for (src, col) in [
            ("1e", 0),
            ("1abc", 0),
            ("x < 1.2.3", 4),
            ("1__0", 0),
            ("1_", 0),
        ] {
            let err = tokenize(src).expect_err(src);
            assert_eq!(err.at, col, "{src}");
            assert!(
                err.message.starts_with("malformed number"),
                "{src}: {}",
                err.message
            );
        }
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(toks("'a\\'b'"), vec![Tok::Str("a'b".into()), Tok::End]);
        assert_eq!(toks("\"x\\ny\""), vec![Tok::Str("x\ny".into()), Tok::End]);
        assert_eq!(toks("'\\u00e9'"), vec![Tok::Str("é".into()), Tok::End]);
        assert_eq!(toks("'é'"), vec![Tok::Str("é".into()), Tok::End]);
        assert_eq!(tokenize("'abc").expect_err("open").at, 0);
        assert_eq!(tokenize("x == 'a\\q'").expect_err("escape").at, 7);
    }

    #[test]
    fn names_keywords_and_operators() {
        assert_eq!(
            toks("exit.stop_loss <= x and not y or True != None"),
            vec![
                Tok::Name("exit.stop_loss".into()),
                Tok::Le,
                Tok::Name("x".into()),
                Tok::And,
                Tok::Not,
                Tok::Name("y".into()),
                Tok::Or,
                Tok::True,
                Tok::Ne,
                Tok::Null,
                Tok::End
            ]
        );
        assert_eq!(
            toks("a&&!b||c"),
            vec![
                Tok::Name("a".into()),
                Tok::And,
                Tok::Not,
                Tok::Name("b".into()),
                Tok::Or,
                Tok::Name("c".into()),
                Tok::End
            ]
        );
        // A keyword inside a dotted path is just a path segment.
        assert_eq!(toks("x.and"), vec![Tok::Name("x.and".into()), Tok::End]);
        assert_eq!(tokenize("a.").expect_err("dot").at, 2);
        assert_eq!(tokenize("a.1").expect_err("dot").at, 2);
    }

    #[test]
    fn backticks_quote_any_name() {
        assert_eq!(
            toks("`Return [%]` >= 0 and `# Trades`>5"),
            vec![
                Tok::Name("Return [%]".into()),
                Tok::Ge,
                Tok::Int(0),
                Tok::And,
                Tok::Name("# Trades".into()),
                Tok::Gt,
                Tok::Int(5),
                Tok::End
            ]
        );
        // Quoted, a keyword or a dotted text is one name.
        assert_eq!(toks("`and`"), vec![Tok::Name("and".into()), Tok::End]);
        assert_eq!(toks("`a.b c`"), vec![Tok::Name("a.b c".into()), Tok::End]);
        let open = tokenize("x + `Return [%]").expect_err("unterminated");
        assert_eq!(open.at, 4);
        assert!(
            open.message.starts_with("unterminated name"),
            "{}",
            open.message
        );
        assert_eq!(tokenize("` ` > 1").expect_err("empty").at, 0);
    }
}
