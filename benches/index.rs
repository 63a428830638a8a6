//! Criterion benches of the results index core: the initial scan, applying one event (probe +
//! upsert, as the worker does) and a lookup, at 10k and 100k files.

use std::fs;
use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use fastgrid::error::never;
use fastgrid::index::{Layout, Pattern, Probe, ResultMap};

const SYMBOLS: usize = 100;

fn fill(dir: &Path, files: usize) {
    for i in 0..files {
        let name = format!("S{:03}_1h_{:08}.json", i % SYMBOLS, i / SYMBOLS);
        fs::write(dir.join(name), b"").unwrap();
    }
}

fn layout(dir: &Path) -> Layout {
    Layout {
        dir: dir.to_path_buf(),
        pattern: Pattern::new("{symbol}_{timeframe}_{stamp}.json", "stamp").unwrap(),
        recursive: false,
    }
}

fn benches(c: &mut Criterion) {
    for files in [10_000usize, 100_000] {
        let tmp = tempfile::tempdir().unwrap();
        fill(tmp.path(), files);
        let layout = layout(tmp.path());

        let mut group = c.benchmark_group("index");
        group.sample_size(10);
        group.bench_with_input(BenchmarkId::new("scan", files), &layout, |b, l| {
            b.iter(|| {
                let found = l.scan(&never).unwrap().found;
                assert_eq!(found.len(), files);
                let mut map = ResultMap::<()>::new();
                map.replace_all(found);
                black_box(map)
            })
        });
        group.finish();

        let mut map = ResultMap::<()>::new();
        map.replace_all(layout.scan(&never).unwrap().found);
        let new = tmp.path().join("S000_1h_99999999.json");
        fs::write(&new, b"").unwrap();
        c.bench_with_input(BenchmarkId::new("index/event", files), &layout, |b, l| {
            b.iter(|| {
                // What the worker does for one "created" event: stat, match, insert; then the
                // delete event's removal, so every iteration sees the same map.
                let Probe::File(found) = l.probe(&new) else {
                    panic!("not a result")
                };
                assert!(map.upsert(found));
                assert!(map.remove("S000_1h_99999999.json"));
            })
        });
        let key = Pattern::join_key(["S042", "1h"]);
        c.bench_with_input(BenchmarkId::new("index/latest", files), &map, |b, m| {
            b.iter(|| black_box(m.latest(black_box(&key)).is_some()))
        });
    }
    let pattern = Pattern::new("{symbol}_{timeframe}_{stamp}.json", "stamp").unwrap();
    c.bench_function("index/pattern_match", |b| {
        b.iter(|| black_box(pattern.matches(black_box("BTCUSD_1h_20261129_171502.json"))))
    });
}

criterion_group!(index, benches);
criterion_main!(index);
