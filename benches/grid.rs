//! Criterion benches of the pure-Rust grid engine on the million-point workload:
//! `cargo bench --bench grid`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use fastgrid::grid::columns;
use fastgrid::grid::order::{increment, Permutation, View};
use fastgrid::grid::rules;
use fastgrid::grid::Grid;
use fastgrid::value::Value;

fn leaf(pairs: &[(&str, Value)]) -> Value {
    Value::Map(
        pairs
            .iter()
            .map(|(k, v)| (Arc::from(*k), v.clone()))
            .collect(),
    )
}

fn million() -> Value {
    let s = |x: &str| Value::Str(x.into());
    let range = |ty: &str, low: Value, high: Value, step: Value| {
        leaf(&[
            ("type", s(ty)),
            ("low", low),
            ("high", high),
            ("step", step),
        ])
    };
    let grid = |values: Vec<Value>| leaf(&[("type", s("grid")), ("values", Value::List(values))]);
    leaf(&[
        (
            "fast",
            range("int", Value::Int(5), Value::Int(50), Value::Int(5)),
        ),
        (
            "slow",
            range("int", Value::Int(60), Value::Int(240), Value::Int(20)),
        ),
        (
            "entry",
            range(
                "float",
                Value::Float(0.05),
                Value::Float(0.5),
                Value::Float(0.05),
            ),
        ),
        (
            "exit",
            range(
                "float",
                Value::Float(0.1),
                Value::Float(1.0),
                Value::Float(0.1),
            ),
        ),
        (
            "mode",
            grid(
                (0..10)
                    .map(|i| Value::Str(format!("m{i}").into()))
                    .collect(),
            ),
        ),
        (
            "stop_loss",
            grid((1..=10).map(|i| Value::Float(i as f64 * 0.005)).collect()),
        ),
    ])
}

fn build(constraints: &[&str]) -> Grid {
    let texts: Vec<String> = constraints.iter().map(|s| s.to_string()).collect();
    Grid::new(&million(), &texts, &rules::compile, &|| Ok(()))
        .expect("the million workload is valid")
}

fn benches(c: &mut Criterion) {
    let tree = million();
    c.bench_function("construct million", |b| {
        b.iter(|| Grid::new(black_box(&tree), &[], &rules::compile, &|| Ok(())))
    });
    let grid = build(&[]);
    let mut digits = Vec::new();
    c.bench_function("decode index", |b| {
        b.iter(|| grid.digits(black_box(123_456), &mut digits))
    });
    let radices: Vec<u64> = grid.parts[0].space.radices().to_vec();
    c.bench_function("odometer step", |b| {
        let mut d = vec![0u64; radices.len()];
        b.iter(|| increment(black_box(&mut d), &radices))
    });
    let perm = Permutation::new(grid.len(), 42);
    c.bench_function("feistel position", |b| {
        b.iter(|| perm.apply(black_box(777_777)))
    });
    let point = {
        let mut d = Vec::new();
        grid.digits(654_321, &mut d);
        let part = &grid.parts[0];
        Value::Map(
            part.tree
                .params
                .iter()
                .zip(&d)
                .map(|(p, &k)| (Arc::from(p.path.as_str()), p.axis.value(k)))
                .collect(),
        )
    };
    c.bench_function("find point", |b| {
        b.iter(|| grid.find(black_box(&point), true))
    });
    let view = View::identity(grid.len());
    c.bench_function("columns million", |b| {
        b.iter(|| columns::fill(&grid, &view, 0, grid.len(), &|| Ok(())))
    });
    let constrained = build(&["fast * 4 < slow", "entry < exit"]);
    c.bench_function("constrained decode", |b| {
        b.iter(|| constrained.digits(black_box(123_456), &mut digits))
    });
    c.bench_function("constrained build", |b| {
        b.iter(|| build(&["fast * 4 < slow", "entry < exit"]))
    });
}

criterion_group! {
    name = grid;
    config = Criterion::default().sample_size(20);
    targets = benches
}
criterion_main!(grid);
