use super::*;

fn int(i: i64) -> Value {
    Value::Int(i)
}
fn float(f: f64) -> Value {
    Value::Float(f)
}
fn s(x: &str) -> Value {
    Value::Str(x.into())
}

/// Compiles with each variable's type taken from its value, evaluates, and checks that the
/// dynamic path (`eval_with`) agrees.
fn eval(src: &str, vars: &[(&str, Value)]) -> bool {
    let expr = Expr::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    let resolve = |n: &str| {
        vars.iter()
            .position(|(k, _)| *k == n)
            .map(|i| (i, TypeSet::of(&vars[i].1)))
    };
    let compiled = expr
        .compile(&resolve)
        .unwrap_or_else(|e| panic!("{src}: {e}"));
    let got = compiled
        .eval(&|i| &vars[i].1)
        .unwrap_or_else(|e| panic!("{src}: {e}"));
    let lookup = |n: &str| vars.iter().find(|(k, _)| *k == n).map(|(_, v)| v);
    let dynamic = expr
        .eval_with(&lookup)
        .unwrap_or_else(|e| panic!("{src}: {e}"));
    assert_eq!(got, dynamic, "{src}: compiled and dynamic disagree");
    got
}

fn parse_err(src: &str) -> (usize, String) {
    match Expr::parse(src) {
        Err(Error::Expr {
            expr,
            column,
            message,
        }) => {
            assert_eq!(expr, src);
            (column, message)
        }
        other => panic!("{src}: expected a syntax error, got {other:?}"),
    }
}

fn compile_err(src: &str, vars: &[(&str, TypeSet)]) -> (usize, String) {
    let expr = Expr::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    let resolve = |n: &str| {
        vars.iter()
            .position(|(k, _)| *k == n)
            .map(|i| (i, vars[i].1))
    };
    let known: Vec<&str> = vars.iter().map(|(k, _)| *k).collect();
    match expr.compile_with_known(&resolve, &known) {
        Err(Error::Expr {
            column, message, ..
        }) => (column, message),
        Err(other) => panic!("{src}: wrong error {other:?}"),
        Ok(_) => panic!("{src}: expected a check error"),
    }
}

#[test]
fn the_example_constraints() {
    assert!(eval("fast < slow", &[("fast", int(5)), ("slow", int(20))]));
    assert!(!eval(
        "fast < slow",
        &[("fast", int(20)), ("slow", int(20))]
    ));
    let exit = |sl: f64, tp: f64| {
        [
            ("exit.stop_loss", float(sl)),
            ("exit.take_profit", float(tp)),
        ]
    };
    assert!(eval(
        "exit.stop_loss <= exit.take_profit * 0.5",
        &exit(0.02, 0.04)
    ));
    assert!(!eval(
        "exit.stop_loss <= exit.take_profit * 0.5",
        &exit(0.03, 0.04)
    ));
    let v = |mode: &str, lev: i64| [("mode", s(mode)), ("leverage", int(lev))];
    let src = "mode == 'long' or leverage <= 2";
    assert!(eval(src, &v("long", 5)));
    assert!(eval(src, &v("short", 2)));
    assert!(!eval(src, &v("short", 3)));
    assert!(eval("trades >= 20", &[("trades", int(20))]));
    assert!(!eval(
        "max_drawdown <= 0.25",
        &[("max_drawdown", float(0.3))]
    ));
}

#[test]
fn precedence_and_associativity() {
    assert!(eval("1 + 2 * 3 == 7", &[]));
    assert!(eval("(1 + 2) * 3 == 9", &[]));
    assert!(eval("10 - 4 - 3 == 3", &[]));
    assert!(eval("-2 * -3 == 6", &[]));
    assert!(eval("--2 == 2 and +2 == 2", &[]));
    assert!(eval("7 % 3 * 2 == 2", &[]));
    assert!(eval("not 1 > 2", &[]));
    assert!(eval("true or false and false", &[]));
    assert!(!eval("(true or false) and false", &[]));
    assert!(eval("not false and not false", &[]));
    assert!(eval("!(1 > 2) && (2 > 1 || false)", &[]));
}

#[test]
fn chained_comparisons() {
    let x = |v: i64| [("a", int(1)), ("b", int(v)), ("c", int(10))];
    assert!(eval("a < b < c", &x(5)));
    assert!(!eval("a < b < c", &x(10)));
    assert!(!eval("a < b < c", &x(0)));
    assert!(eval("a < b <= c != 3", &x(10)));
    // Python: `1 < 3 > 2` is `1 < 3 and 3 > 2`.
    assert!(eval("1 < 3 > 2", &[]));
}

#[test]
fn arithmetic_semantics() {
    assert!(eval(
        "x + 1 == 9223372036854775807",
        &[("x", int(i64::MAX - 1))]
    ));
    // Overflow falls back to float instead of wrapping.
    assert!(eval("x + 1 > x", &[("x", int(i64::MAX))]));
    assert!(eval("x * x > 0", &[("x", int(1 << 40))]));
    assert!(eval("7 / 2 == 3.5", &[]));
    assert!(eval("x / 0 > 1e308", &[("x", int(1))]));
    assert!(eval("-x / 0 < -1e308", &[("x", int(1))]));
    // 0/0 is NaN: every comparison false, != true.
    let z = [("x", int(0))];
    assert!(!eval("x / 0 == x / 0", &z));
    assert!(!eval("x / 0 < 1 or x / 0 >= 1", &z));
    assert!(eval("x / 0 != 1", &z));
    assert!(eval("-7 % 3 == 2 and 7 % -3 == -2", &[]));
    assert!(eval("-7.5 % 2 == 0.5", &[]));
    assert!(eval("1e-5 * 100000 == 1", &[]));
    assert!(eval("0.1 + 0.2 != 0.3", &[]));
}

#[test]
fn equality_and_types() {
    assert!(eval("1 == 1.0", &[]));
    assert!(eval("x == 1", &[("x", float(1.0))]));
    let t = [("flag", Value::Bool(true))];
    assert!(eval("flag", &t));
    assert!(eval("flag == true and flag != false", &t));
    assert!(eval("x == null", &[("x", Value::Null)]));
    let zero = int(0);
    let e = Expr::parse("x != null").expect("parses");
    assert!(e.eval_with(&|_| Some(&zero)).expect("evals"));
    // Statically, a number is never null: the check says so.
    let (_, msg) = compile_err("x != null", &[("x", TypeSet::NUMBER)]);
    assert!(msg.contains("always true"), "{msg}");
    assert!(eval("'a' < 'b' and \"é\" > 'z'", &[]));
    let list = Value::List(vec![int(1), int(2)]);
    assert!(eval("x == y", &[("x", list.clone()), ("y", list.clone())]));
    assert!(!eval("x != y", &[("x", list.clone()), ("y", list)]));
}

#[test]
fn true_is_not_one() {
    // A mixed axis [true, 1]: `x == 1` holds for 1 only.
    let expr = Expr::parse("x == 1").expect("parses");
    let compiled = expr
        .compile(&|_| Some((0, TypeSet::BOOL | TypeSet::NUMBER)))
        .expect("compiles");
    assert!(!compiled.eval(&|_| &Value::Bool(true)).expect("evals"));
    assert!(compiled.eval(&|_| &Value::Int(1)).expect("evals"));
    // A pure bool compared with a number can never hold: a check error.
    let (col, msg) = compile_err("x == 1", &[("x", TypeSet::BOOL)]);
    assert_eq!(col, 3);
    assert!(
        msg.contains("never true") && msg.contains("'x' is bool"),
        "{msg}"
    );
    // Dynamically it is simply false.
    let v = Value::Bool(true);
    assert!(!expr.eval_with(&|_| Some(&v)).expect("evals"));
}

#[test]
fn narrowing_through_and_or() {
    let ty = TypeSet::NULL | TypeSet::NUMBER;
    for src in [
        "x == null or x > 2",
        "x != null and x > 2",
        "not (x == null) and x > 2",
        "None == x or 2 < x",
        "y > 0 and x != null and x + y > 2",
    ] {
        let expr = Expr::parse(src).expect("parses");
        let resolve = |n: &str| match n {
            "x" => Some((0, ty)),
            "y" => Some((1, TypeSet::NUMBER)),
            _ => None,
        };
        let compiled = expr.compile(&resolve).unwrap_or_else(|e| panic!("{e}"));
        let vals = [Value::Null, int(1)];
        let null_ok = compiled.eval(&|i| &vals[i]).expect("evals");
        assert_eq!(
            null_ok,
            src.starts_with("x == null") || src.starts_with("None"),
            "{src}"
        );
        let vals = [int(5), int(1)];
        assert!(compiled.eval(&|i| &vals[i]).expect("evals"), "{src}");
    }
    // Without the guard, or with the guard on the wrong side, it is an error.
    for src in ["x > 2", "x > 2 or x == null", "x != 1 and x > 2"] {
        let (_, msg) = compile_err(src, &[("x", ty)]);
        assert!(msg.contains("'x' may be null or number"), "{src}: {msg}");
    }
    let (_, msg) = compile_err("x == null and x > 2", &[("x", ty)]);
    assert!(msg.contains("'x' is null"), "{msg}");
}

#[test]
fn check_errors_name_the_names_and_types() {
    let (col, msg) = compile_err("mode < 3", &[("mode", TypeSet::STR)]);
    assert_eq!(col, 6);
    assert_eq!(
        msg,
        "'<' needs two numbers or two strings, but 'mode' is str and 3 is number"
    );
    let (col, msg) = compile_err("flag + 1 > 2", &[("flag", TypeSet::BOOL | TypeSet::NUMBER)]);
    assert_eq!(col, 6);
    assert_eq!(msg, "'+' needs numbers, but 'flag' may be bool or number");
    let (col, msg) = compile_err(
        "fast + slow",
        &[("fast", TypeSet::NUMBER), ("slow", TypeSet::NUMBER)],
    );
    assert_eq!(col, 1);
    assert!(msg.starts_with("a constraint must be a condition"), "{msg}");
    assert!(msg.contains("'fast + slow' is number"), "{msg}");
    let (col, msg) = compile_err("n and true", &[("n", TypeSet::NUMBER)]);
    assert_eq!(col, 3);
    assert!(
        msg.starts_with("'and' needs true or false, but 'n' is number"),
        "{msg}"
    );
    let (_, msg) = compile_err("mode == 3", &[("mode", TypeSet::STR)]);
    assert!(msg.contains("never true"), "{msg}");
    let (_, msg) = compile_err("mode != 3", &[("mode", TypeSet::STR)]);
    assert!(msg.contains("always true"), "{msg}");
    let (_, msg) = compile_err("xs < 3", &[("xs", TypeSet::OTHER)]);
    assert!(msg.contains("'xs' is list/dict"), "{msg}");
    let (col, msg) = compile_err("-'a' < 0", &[]);
    assert_eq!(col, 1);
    assert!(msg.contains("'-' needs numbers, but 'a' is str"), "{msg}");
}

#[test]
fn unknown_names_suggest() {
    let vars = [
        ("fast", TypeSet::NUMBER),
        ("slow", TypeSet::NUMBER),
        ("exit.stop_loss", TypeSet::NUMBER),
    ];
    let (col, msg) = compile_err("fast < slwo", &vars);
    assert_eq!(col, 8);
    assert_eq!(msg, "unknown name 'slwo' (did you mean 'slow'?)");
    let (_, msg) = compile_err("stop_loss < 1", &vars);
    assert_eq!(
        msg,
        "unknown name 'stop_loss' (did you mean 'exit.stop_loss'?)"
    );
    let (_, msg) = compile_err("zzz < 1", &vars);
    assert_eq!(msg, "unknown name 'zzz'");
    let expr = Expr::parse("trades >= 20 and sharpe > 1").expect("parses");
    let v = int(30);
    let err = expr
        .eval_with(&|n| (n == "trades").then_some(&v))
        .expect_err("sharpe missing");
    assert!(err.to_string().contains("unknown name 'sharpe'"), "{err}");
}

#[test]
fn backtick_names_compile_evaluate_and_are_suggested_in_backticks() {
    let vars = [
        ("Return [%]", TypeSet::NUMBER),
        ("# Trades", TypeSet::NUMBER),
    ];
    let expr = Expr::parse("`Return [%]` >= 0 and `# Trades` > 5").expect("parses");
    assert_eq!(expr.names(), ["Return [%]", "# Trades"]);
    let (ret, trades) = (Value::Float(1.5), int(7));
    let lookup = |n: &str| match n {
        "Return [%]" => Some(&ret),
        "# Trades" => Some(&trades),
        _ => None,
    };
    assert!(expr.eval_with(&lookup).expect("evaluates"));
    let (col, msg) = compile_err("`Return [%%]` > 0", &vars);
    assert_eq!(col, 1);
    assert_eq!(
        msg,
        "unknown name 'Return [%%]' (did you mean `Return [%]`?)"
    );
    let (_, msg) = compile_err("Return > 0", &vars);
    assert_eq!(msg, "unknown name 'Return' (did you mean `Return [%]`?)");
}

#[test]
fn dynamic_type_errors_name_the_operand() {
    let expr = Expr::parse("trades >= 20").expect("parses");
    let v = s("many");
    let err = expr.eval_with(&|_| Some(&v)).expect_err("type error");
    assert_eq!(
        err.to_string(),
        "constraint \"trades >= 20\", column 8: '>=' needs two numbers or two strings, but 'trades' is str and 20 is int"
    );
    let expr = Expr::parse("ok and x > 1").expect("parses");
    let vals = [int(1), int(2)];
    let err = expr
        .eval_values(&[&vals[0], &vals[1]])
        .expect_err("not a bool");
    assert!(
        err.to_string()
            .contains("'and' needs true or false, but 'ok' is int"),
        "{err}"
    );
    let expr = Expr::parse("x").expect("parses");
    let err = expr.eval_values(&[&vals[0]]).expect_err("not a bool");
    assert!(err.to_string().contains("must be a condition"), "{err}");
    // A compiled program given a value outside its declared types reports instead of panicking.
    let compiled = Expr::parse("x + 1 > 0")
        .and_then(|e| e.compile(&|_| Some((0, TypeSet::NUMBER))))
        .expect("compiles");
    let err = compiled.eval(&|_| &v).expect_err("wrong type");
    assert!(
        err.to_string()
            .contains("'+' needs numbers, but 'x' is str"),
        "{err}"
    );
}

#[test]
fn names_slots_and_folding() {
    let expr = Expr::parse("b.x < a and a < b.x * (2 + 3) or c == 'a'").expect("parses");
    assert_eq!(expr.names(), vec!["b.x", "a", "c"]);
    let resolve = |n: &str| match n {
        "a" => Some((7, TypeSet::NUMBER)),
        "b.x" => Some((3, TypeSet::NUMBER)),
        "c" => Some((7, TypeSet::STR | TypeSet::NUMBER)),
        _ => None,
    };
    let compiled = expr.compile(&resolve).expect("compiles");
    assert_eq!(compiled.slots(), &[3, 7]);
    assert_eq!(compiled.source(), expr.source());
    let c = Expr::parse("2 * 3 > 5 and 'a' < 'b'")
        .and_then(|e| e.compile(&|_| None))
        .expect("compiles");
    assert_eq!(c.constant(), Some(true));
    assert!(c.slots().is_empty());
}

/// The catalogue of malformed expressions: the column says where something else was expected.
#[test]
fn syntax_error_columns() {
    let cases: &[(&str, usize, &str)] = &[
        ("fast <", 7, "expected a value after '<'"),
        ("", 1, "expected a condition, found an empty expression"),
        ("   ", 4, "expected a condition, found an empty expression"),
        ("(a < b", 7, "expected ')' to close the '(' at column 1"),
        ("a < b)", 6, "unmatched ')'"),
        (
            "a b",
            3,
            "expected an operator or the end of the expression, found 'b'",
        ),
        ("a < < b", 5, "expected a value after '<', found '<'"),
        ("a = b", 3, "'=' is not an operator; use '==' to compare"),
        ("a & b", 3, "unexpected '&'; use 'and' (or '&&')"),
        ("x # y", 3, "unexpected character '#'"),
        ("'abc", 1, "unterminated string: expected a closing '"),
        (
            "x == \"abc",
            6,
            "unterminated string: expected a closing \"",
        ),
        ("a.", 3, "expected a name after '.' in 'a.'"),
        ("1e", 1, "malformed number '1e'"),
        ("not", 4, "expected a value after 'not'"),
        ("a and", 6, "expected a value after 'and'"),
        ("a ||", 5, "expected a value after '||'"),
        ("a < not b", 5, "expected a value after '<', found 'not'"),
        ("()", 2, "expected a value after '(', found ')'"),
        ("x is None", 3, "'is' is not supported; use '==' or '!='"),
        (
            "f(x) > 1",
            2,
            "expected an operator before '(' (function calls are not supported)",
        ),
        ("x ** 2", 3, "'**' (power) is not supported"),
        (
            "x // 2",
            3,
            "'//' (floor division) is not supported; '/' is true division",
        ),
        ("é < 1", 1, "unexpected character 'é'"),
        ("'é' < x <", 10, "expected a value after '<'"),
        ("x <> 1", 3, "'<>' is not an operator; use '!='"),
        (") x", 1, "expected a value, found ')'"),
    ];
    for &(src, col, msg) in cases {
        let (c, m) = parse_err(src);
        assert_eq!((c, m.as_str()), (col, msg), "{src:?}");
    }
    let err = Expr::parse("fast <").expect_err("error");
    assert_eq!(
        err.to_string(),
        "constraint \"fast <\", column 7: expected a value after '<'"
    );
}

#[test]
fn hostile_nesting_is_refused() {
    let deep = format!("{}x{}", "(".repeat(100_000), ")".repeat(100_000));
    let (col, msg) = parse_err(&deep);
    assert!(msg.contains("nested too deeply"), "{msg}");
    assert_eq!(col, MAX_DEPTH + 1);
    for src in [
        "-".repeat(100_000) + "1",
        "not ".repeat(100_000) + "x",
        "1".to_owned() + &" + 1".repeat(100_000) + " > 0",
    ] {
        let msg = parse_err(&src).1;
        assert!(msg.contains("nested too deeply"), "{msg}");
    }
    // Chains of `and` / comparisons are flat, not nested.
    let chain = "x".to_owned() + &" < x".repeat(10_000);
    assert!(Expr::parse(&chain).is_ok());
    // Just under the limit is fine.
    let ok = format!(
        "{}x{} > 0",
        "(".repeat(MAX_DEPTH - 2),
        ")".repeat(MAX_DEPTH - 2)
    );
    assert!(Expr::parse(&ok).is_ok());
}

#[test]
fn expr_and_compiled_are_send_sync_clone() {
    fn check<T: Send + Sync + Clone>() {}
    check::<Expr>();
    check::<Compiled>();
}

#[test]
fn readme_examples_hold() {
    assert!(eval("9007199254740993 > 9007199254740992.0", &[]));
    let fs = |f: i64, s: i64| [("fast", int(f)), ("slow", int(s))];
    assert!(eval("10 <= fast < slow <= 200", &fs(10, 200)));
    assert!(!eval("10 <= fast < slow <= 200", &fs(10, 201)));
    assert!(!eval("10 <= fast < slow <= 200", &fs(20, 20)));
    let v = |u: bool, p: i64| {
        [
            ("use_filter", Value::Bool(u)),
            ("filter.period", int(p)),
            ("slow", int(50)),
        ]
    };
    let src = "not (use_filter and filter.period > slow)";
    assert!(!eval(src, &v(true, 60)));
    assert!(eval(src, &v(false, 60)));
    assert!(eval(src, &v(true, 40)));
    let expr = Expr::parse("stop == null or stop < 0.05").expect("parses");
    let compiled = expr
        .compile(&|_| Some((0, TypeSet::NULL | TypeSet::NUMBER)))
        .expect("the guard narrows");
    for (value, want) in [
        (Value::Null, true),
        (float(0.01), true),
        (float(0.07), false),
    ] {
        assert_eq!(compiled.eval(&|_| &value).expect("evals"), want);
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn number() -> impl Strategy<Value = Value> {
        prop_oneof![
            (-20i64..20).prop_map(Value::Int),
            any::<i64>().prop_map(Value::Int),
            (-20.0f64..20.0).prop_map(Value::Float),
            Just(Value::Float(f64::NAN)),
            Just(Value::Float(f64::INFINITY)),
            Just(Value::Int(i64::MIN)),
        ]
    }

    fn numeric() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("x".to_owned()),
            Just("y".to_owned()),
            Just("z.w".to_owned()),
            (-9i64..9).prop_map(|i| i.to_string()),
            Just("0.5".to_owned()),
            Just("9223372036854775807".to_owned()),
        ];
        leaf.prop_recursive(3, 12, 2, |inner| {
            prop_oneof![
                (
                    inner.clone(),
                    prop::sample::select(vec!["+", "-", "*", "/", "%"]),
                    inner.clone()
                )
                    .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
                inner.prop_map(|a| format!("-{a}")),
            ]
        })
    }

    fn condition() -> impl Strategy<Value = String> {
        let ops = || prop::sample::select(vec!["<", "<=", ">", ">=", "==", "!="]);
        let cmp = prop_oneof![
            (numeric(), ops(), numeric()).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            (numeric(), ops(), numeric(), ops(), numeric())
                .prop_map(|(a, o, b, p, c)| format!("{a} {o} {b} {p} {c}")),
        ];
        cmp.prop_recursive(2, 6, 2, |inner| {
            prop_oneof![
                (
                    inner.clone(),
                    prop::sample::select(vec!["and", "or"]),
                    inner.clone()
                )
                    .prop_map(|(a, op, b)| format!("({a}) {op} ({b})")),
                inner.prop_map(|a| format!("not ({a})")),
            ]
        })
    }

    proptest! {
        /// Any input either parses or reports a column inside the text (or just past its end);
        /// it never panics.
        #[test]
        fn parse_never_panics(src in "\\PC{0,40}") {
            match Expr::parse(&src) {
                Ok(e) => prop_assert_eq!(e.source(), src.as_str()),
                Err(Error::Expr { column, .. }) => {
                    prop_assert!(column >= 1 && column <= src.chars().count() + 1);
                }
                Err(other) => prop_assert!(false, "unexpected error {other:?}"),
            }
        }

        /// The same, over the language's own alphabet, where far more inputs parse.
        #[test]
        fn token_soup_never_panics(parts in proptest::collection::vec(
            prop_oneof![
                Just("a"), Just("b.c"), Just("1"), Just("2.5"), Just("'s'"), Just("null"),
                Just("true"), Just("("), Just(")"), Just("<"), Just("=="), Just("+"), Just("-"),
                Just("*"), Just("/"), Just("%"), Just("and"), Just("or"), Just("not"), Just("!="),
            ],
            0..12,
        )) {
            let src = parts.join(" ");
            if let Ok(e) = Expr::parse(&src) {
                // Whatever parses evaluates (or reports) without panicking, both ways.
                let vals = [int(3), float(0.5)];
                let lookup = |n: &str| Some(if n == "a" { &vals[0] } else { &vals[1] });
                let dynamic = e.eval_with(&lookup);
                let resolve = |n: &str| Some((usize::from(n != "a"), TypeSet::NUMBER));
                if let Ok(c) = e.compile(&resolve) {
                    // A checked program never fails on values of the declared types, and agrees
                    // with the dynamic evaluation.
                    let got = c.eval(&|i| &vals[i]);
                    prop_assert!(got.is_ok(), "{src}: {got:?}");
                    prop_assert_eq!(got.ok(), dynamic.ok(), "{}", src);
                }
            }
        }

        /// Random well-typed expressions: the compiled program (numeric fast paths, folding) and
        /// the dynamic one (generic values) agree on any numbers, NaN, infinities and overflow.
        #[test]
        fn random_expressions_compiled_matches_dynamic(
            src in condition(),
            vals in proptest::collection::vec(number(), 3),
        ) {
            let e = Expr::parse(&src).expect("generated expressions parse");
            let resolve = |n: &str| ["x", "y", "z.w"].iter().position(|k| *k == n).map(|i| (i, TypeSet::NUMBER));
            let c = e.compile(&resolve).unwrap_or_else(|err| panic!("{src}: {err}"));
            let got = c.eval(&|i| &vals[i]).expect("evals");
            let by_name = |n: &str| ["x", "y", "z.w"].iter().position(|k| *k == n).map(|i| &vals[i]);
            let dynamic = e.eval_with(&by_name).expect("evals");
            prop_assert_eq!(got, dynamic, "{}", src);
        }

        /// Compiled (specialised) and dynamic (generic) evaluation agree on random numbers.
        #[test]
        fn compiled_matches_dynamic(
            x in prop_oneof![any::<i64>().prop_map(Value::Int), any::<f64>().prop_map(Value::Float)],
            y in prop_oneof![(-5i64..5).prop_map(Value::Int), (-5.0f64..5.0).prop_map(Value::Float)],
            src in prop_oneof![
                Just("x < y"), Just("x <= y * 2"), Just("x == y"), Just("x != y"), Just("-x > y"),
                Just("x % y >= 0"), Just("x / y < x"), Just("x + y - y == x"), Just("y < x < y + 1"),
                Just("x == 3 or y != 2"),
            ],
        ) {
            let e = Expr::parse(src).expect("parses");
            let c = e.compile(&|n| Some((usize::from(n == "y"), TypeSet::NUMBER))).expect("compiles");
            let vals = [x, y];
            let got = c.eval(&|i| &vals[i]).expect("evals");
            let by_name = |n: &str| Some(&vals[usize::from(n == "y")]);
            let dynamic = e.eval_with(&by_name).expect("evals");
            prop_assert_eq!(got, dynamic);
        }
    }
}
