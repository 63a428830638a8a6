//! Criterion benches of the pure-Rust config merge and trial keys (no Python involved).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use fastgrid::keys::trial_key;
use fastgrid::merge::{Override, Template};
use fastgrid::value::{Map, Value};

/// A ~150-leaf strategy config: 15 sections of 10 leaves, one nested level in each.
fn config() -> Value {
    let mut root = Map::new();
    for s in 0..15 {
        let mut section = Map::new();
        for i in 0..7 {
            let value = match i % 4 {
                0 => Value::Float(f64::from(i) * 0.5),
                1 => Value::Int(i64::from(i) * 10),
                2 => Value::Bool(i % 2 == 0),
                _ => Value::Str(Arc::from(format!("value_{s}_{i}"))),
            };
            section.insert(Arc::from(format!("key_{i}")), value);
        }
        let mut inner = Map::new();
        inner.insert("enabled".into(), Value::Bool(true));
        inner.insert("window".into(), Value::Int(96));
        section.insert("nested".into(), Value::Map(inner));
        section.insert(
            "list".into(),
            Value::List(vec![Value::Int(1), Value::Int(2), Value::Int(3)]),
        );
        root.insert(Arc::from(format!("section_{s}")), Value::Map(section));
    }
    Value::Map(root)
}

fn overrides() -> Vec<Override> {
    [
        "section_1.key_0",
        "section_3.key_1",
        "section_5.nested.window",
        "section_7.key_4",
        "section_9.list",
    ]
    .iter()
    .map(|p| {
        let value = if p.ends_with("list") {
            Value::List(vec![Value::Int(7)])
        } else {
            Value::Float(0.25)
        };
        (p.split('.').map(str::to_owned).collect(), value)
    })
    .collect()
}

fn params() -> Value {
    let mut m = Map::new();
    for i in 0..15 {
        let value = match i % 3 {
            0 => Value::Float(f64::from(i) * 0.25),
            1 => Value::Int(i64::from(i)),
            _ => Value::Str(Arc::from("15m")),
        };
        m.insert(Arc::from(format!("section_{}.key_{i}", i % 5)), value);
    }
    Value::Map(m)
}

fn benches(c: &mut Criterion) {
    let template = Template::new(config()).expect("valid config");
    let overrides = overrides();
    c.bench_function("merge/plan_5_overrides", |b| {
        b.iter(|| {
            template
                .plan(black_box(&overrides), false)
                .map(|e| e.existing.len())
        })
    });
    c.bench_function("merge/merge_150_leaves_5_overrides", |b| {
        b.iter(|| template.merge(black_box(&overrides), false))
    });
    c.bench_function("merge/clone_150_leaves", |b| {
        b.iter(|| black_box(template.root()).clone())
    });
    let params = params();
    c.bench_function("keys/trial_key_15_params", |b| {
        b.iter(|| trial_key(black_box(&params)))
    });
    let empty = Value::Map(Map::new());
    c.bench_function("keys/trial_key_empty", |b| {
        b.iter(|| trial_key(black_box(&empty)))
    });
    c.bench_function("keys/fingerprint_150_leaves", |b| {
        b.iter(|| trial_key(black_box(template.root())))
    });
}

criterion_group!(group, benches);
criterion_main!(group);
