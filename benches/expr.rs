//! Constraint expressions: parse, compile and — the hot path of a constrained grid — eval.
//! `cargo bench --bench expr`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use fastgrid::expr::{Expr, TypeSet};
use fastgrid::value::Value;

struct Case {
    name: &'static str,
    source: &'static str,
    vars: &'static [(&'static str, TypeSet)],
    /// Rows of slot values; the bench cycles through them so branches are not all predictable.
    rows: Vec<Vec<Value>>,
}

fn cases() -> Vec<Case> {
    let ints = |a: i64, b: i64| vec![Value::Int(a), Value::Int(b)];
    let floats = |a: f64, b: f64| vec![Value::Float(a), Value::Float(b)];
    let mode = |m: &str, l: i64| vec![Value::Str(m.into()), Value::Int(l)];
    vec![
        Case {
            name: "fast < slow",
            source: "fast < slow",
            vars: &[("fast", TypeSet::NUMBER), ("slow", TypeSet::NUMBER)],
            rows: vec![ints(5, 20), ints(30, 20), ints(10, 10), ints(15, 50)],
        },
        Case {
            name: "stop_loss <= take_profit * 0.5",
            source: "exit.stop_loss <= exit.take_profit * 0.5",
            vars: &[
                ("exit.stop_loss", TypeSet::NUMBER),
                ("exit.take_profit", TypeSet::NUMBER),
            ],
            rows: vec![
                floats(0.01, 0.04),
                floats(0.03, 0.04),
                floats(0.02, 0.04),
                floats(0.05, 0.2),
            ],
        },
        Case {
            name: "mode == 'long' or leverage <= 2",
            source: "mode == 'long' or leverage <= 2",
            vars: &[("mode", TypeSet::STR), ("leverage", TypeSet::NUMBER)],
            rows: vec![
                mode("long", 5),
                mode("short", 2),
                mode("short", 3),
                mode("both", 1),
            ],
        },
    ]
}

fn bench(c: &mut Criterion) {
    for case in cases() {
        let resolve = |n: &str| {
            case.vars
                .iter()
                .position(|(k, _)| *k == n)
                .map(|i| (i, case.vars[i].1))
        };
        let expr = Expr::parse(case.source).expect("the bench expressions parse");
        let compiled = expr
            .compile(&resolve)
            .expect("the bench expressions compile");

        c.bench_function(&format!("parse/{}", case.name), |b| {
            b.iter(|| Expr::parse(black_box(case.source)))
        });
        c.bench_function(&format!("compile/{}", case.name), |b| {
            b.iter(|| black_box(&expr).compile(&resolve))
        });
        let rows = &case.rows;
        let expected: Vec<bool> = rows
            .iter()
            .map(|r| compiled.eval(&|i| &r[i]).expect("evaluates"))
            .collect();
        assert!(expected.contains(&true) && expected.contains(&false));
        c.bench_function(&format!("eval/{}", case.name), |b| {
            let mut k = 0usize;
            b.iter(|| {
                k = (k + 1) & 3;
                let row = &rows[k];
                black_box(&compiled).eval(&|i| &row[i])
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
