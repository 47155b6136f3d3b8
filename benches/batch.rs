//! A batch of 100 fresh hits against 100 single hits, and against the closest forms of
//! the caches a user would pick instead (neither has a batch call):
//!
//! - `dogpile Cache::get_many_with`: one call for 100 keys;
//! - `dogpile 100 x Cache::get_with`: the same keys, one call each;
//! - `dogpile #[dogpile(batch)]`: a memoized batch fn, one call for 100 ids;
//! - `dogpile 100 x #[dogpile]`: a memoized single-key fn, called 100 times;
//! - `moka 100 x get`: `moka::sync::Cache` with a time-to-live, 100 `get`s (moka's
//!   `get_all`-like form);
//! - `cached 100 x #[cached]`: `cached` 4.x with `ttl_secs`, called 100 times.
//!
//! Every value is fresh: the figures are the hit paths. Each iteration answers the same
//! 100 keys (out of 1024 stored) into a `Vec`, so every form pays for its answer.
//!
//! Run (about half a minute on 2 cores):
//!
//! ```text
//! cargo bench --bench batch -- --warm-up-time 1 --measurement-time 2
//! ```

use cached::macros::cached;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dogpile::{dogpile, Cache};
use std::hint::black_box;
use std::time::Duration;

/// Long enough that nothing expires while a bench runs.
const TTL: Duration = Duration::from_secs(3600);
const KEYS: u64 = 1024;
const BATCH: u64 = 100;

#[dogpile(ttl = "1h", batch = ids)]
fn dogpile_batch(ids: &[u64]) -> Vec<u64> {
    ids.iter().map(|id| id.wrapping_mul(3)).collect()
}

#[dogpile(ttl = "1h")]
fn dogpile_single(id: u64) -> u64 {
    id.wrapping_mul(3)
}

#[cached(ttl_secs = 3600)]
fn cached_single(id: u64) -> u64 {
    id.wrapping_mul(3)
}

fn fresh_hits(c: &mut Criterion) {
    // 100 keys spread over the 1024 stored ones.
    let ids: Vec<u64> = (0..BATCH).map(|i| i * 10 % KEYS).collect();
    let cache: Cache<u64, u64> = Cache::new(TTL);
    let moka: moka::sync::Cache<u64, u64> = moka::sync::Cache::builder().time_to_live(TTL).build();
    let all: Vec<u64> = (0..KEYS).collect();
    cache.get_many_with(&all, |ids| ids.iter().map(|id| id * 3).collect());
    dogpile_batch(&all);
    for &k in &all {
        dogpile_single(k);
        cached_single(k);
        moka.insert(k, k * 3);
    }

    let mut g = c.benchmark_group("fresh_hits_100");
    g.throughput(Throughput::Elements(BATCH));
    g.bench_function("dogpile Cache::get_many_with", |b| {
        b.iter(|| cache.get_many_with(black_box(&ids), |_| unreachable!("fresh")))
    });
    g.bench_function("dogpile 100 x Cache::get_with", |b| {
        b.iter(|| {
            let ids = black_box(&ids);
            ids.iter()
                .map(|&k| cache.get_with(k, || unreachable!("fresh")))
                .collect::<Vec<u64>>()
        })
    });
    g.bench_function("dogpile #[dogpile(batch)]", |b| {
        b.iter(|| dogpile_batch(black_box(&ids)))
    });
    g.bench_function("dogpile 100 x #[dogpile]", |b| {
        b.iter(|| {
            let ids = black_box(&ids);
            ids.iter().map(|&k| dogpile_single(k)).collect::<Vec<u64>>()
        })
    });
    g.bench_function("moka 100 x get", |b| {
        b.iter(|| {
            let ids = black_box(&ids);
            ids.iter()
                .map(|k| moka.get(k).expect("stored"))
                .collect::<Vec<u64>>()
        })
    });
    g.bench_function("cached 100 x #[cached]", |b| {
        b.iter(|| {
            let ids = black_box(&ids);
            ids.iter().map(|&k| cached_single(k)).collect::<Vec<u64>>()
        })
    });
    g.finish();
}

criterion_group!(benches, fresh_hits);
criterion_main!(benches);
