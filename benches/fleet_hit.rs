//! A fresh L1 hit with the fleet tier configured costs what it costs without (F3): the
//! hit path never reaches the tier. The tier's URL points at no server on purpose:
//! a hit that touched Redis would fail its deadline and show here as milliseconds.
//!
//! ```text
//! cargo bench --bench fleet_hit -- --warm-up-time 1 --measurement-time 3
//! ```

use criterion::{criterion_group, criterion_main, Criterion};
use dogpile::Cache;
use dogpile_redis::RedisTier;
use std::hint::black_box;
use std::time::Duration;

fn fresh_hit(c: &mut Criterion) {
    let ttl = Duration::from_secs(3600);
    let local: Cache<u64, u64> = Cache::new(ttl);
    let tier = RedisTier::open("redis://127.0.0.1:1/")
        .expect("a valid URL")
        .namespace("bench");
    let shared: Cache<u64, u64> = Cache::builder().ttl(ttl).shared(tier).build();
    for key in 0..1024 {
        local.insert(key, key);
        shared.insert(key, key);
    }
    let mut group = c.benchmark_group("fresh_hit");
    let mut key = 0u64;
    group.bench_function("Cache::get_with, local only", |b| {
        b.iter(|| {
            key = (key + 1) & 1023;
            black_box(local.get_with(black_box(key), || unreachable!()))
        })
    });
    group.bench_function("Cache::get_with, with RedisTier", |b| {
        b.iter(|| {
            key = (key + 1) & 1023;
            black_box(shared.get_with(black_box(key), || unreachable!()))
        })
    });
    group.finish();
}

criterion_group!(benches, fresh_hit);
criterion_main!(benches);
