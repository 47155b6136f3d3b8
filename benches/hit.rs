//! Hit-path and miss-path speed of dogpile against the caches a user would pick instead.
//!
//! Every group runs all implementations in the same process, so their figures compare:
//!
//! - `dogpile #[dogpile]`: a memoized fn (the attribute over a `dogpile::Cache`);
//! - `dogpile Cache::get_with`: the runtime called directly;
//! - `dogpile Cache::get_with, capacity`: the same on a bounded cache (S3-FIFO), whose
//!   calls reach its entries through a dynamic call (in `fresh_hit_u64`);
//! - `cached #[cached]` / `cached #[concurrent_cached]`: `cached` 4.x with `ttl_secs`;
//! - `moka get_with`: `moka::sync::Cache` with a time-to-live;
//! - `DashMap get+clone`: the floor, a raw map lookup and a clone, no time check at all;
//! - `DashMap get+clone+Instant`: the floor with a per-entry `Instant` TTL check;
//! - `DashMap<foldhash> get+clone`: the floor with the hasher dogpile's map uses.
//!
//! The `fresh_hit_arc` group sets `#[dogpile]` beside the `Cache::get_with` it expands
//! to, with an `Arc` value.
//!
//! The `fresh_hit_async` group compares async hits: a `#[dogpile]` `async fn`,
//! `Cache::get_with_async` and `moka::future::Cache::get_with`, beside the sync
//! `Cache::get_with` and the floor. Each call's future is polled on the bench thread with
//! a no-op waker until ready (a fresh hit is ready on its first poll), so the figure is
//! the cost of the future itself, with no executor around it. The async herd, where
//! async callers wait or not at expiry, is `examples/herd_async.rs`.
//!
//! Run (about three minutes on 2 cores):
//!
//! ```text
//! cargo bench --bench hit -- --warm-up-time 1 --measurement-time 2
//! ```
//!
//! Bytes per entry for 1,000,000 keys come from the `memory` bench.

use cached::macros::{cached, concurrent_cached};
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use dashmap::DashMap;
use dogpile::{dogpile, Cache};
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::{Arc, Barrier, LazyLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Long enough that nothing expires while a bench runs.
const TTL: Duration = Duration::from_secs(3600);
const KEYS: u64 = 1024;
const MILLION: u64 = 1_000_000;

/// The hasher dogpile's map uses, for a floor with the same hasher.
type Fold = foldhash::fast::RandomState;

// ---------------------------------------------------------------------------------
// The memoized functions. Their bodies are the "expensive" creator: trivial here,
// since only hits (and, for the cold case, insertion) are measured.

#[dogpile(ttl = "1h")]
fn dogpile_u64(k: u64) -> u64 {
    k.wrapping_mul(3)
}

#[dogpile(ttl = "1h")]
fn dogpile_arc(k: u64) -> Arc<u64> {
    Arc::new(k.wrapping_mul(3))
}

#[dogpile(ttl = "1h")]
fn dogpile_str(k: &str) -> u64 {
    k.len() as u64
}

#[dogpile(ttl = "1h")]
fn dogpile_cold(k: u64) -> u64 {
    k.wrapping_mul(3)
}

#[dogpile(ttl = "1h")]
fn dogpile_million(k: u64) -> u64 {
    k.wrapping_mul(3)
}

#[dogpile(ttl = "1h")]
async fn dogpile_async_u64(k: u64) -> u64 {
    k.wrapping_mul(3)
}

#[cached(ttl_secs = 3600)]
fn cached_u64(k: u64) -> u64 {
    k.wrapping_mul(3)
}

#[concurrent_cached(ttl_secs = 3600)]
fn concurrent_cached_u64(k: u64) -> u64 {
    k.wrapping_mul(3)
}

#[cached(ttl_secs = 3600, key = "String", convert = r#"{ k.to_owned() }"#)]
fn cached_str(k: &str) -> u64 {
    k.len() as u64
}

#[concurrent_cached(ttl_secs = 3600, key = "String", convert = r#"{ k.to_owned() }"#)]
fn concurrent_cached_str(k: &str) -> u64 {
    k.len() as u64
}

#[cached(ttl_secs = 3600)]
fn cached_cold(k: u64) -> u64 {
    k.wrapping_mul(3)
}

#[concurrent_cached(ttl_secs = 3600)]
fn concurrent_cached_cold(k: u64) -> u64 {
    k.wrapping_mul(3)
}

#[cached(ttl_secs = 3600)]
fn cached_million(k: u64) -> u64 {
    k.wrapping_mul(3)
}

#[concurrent_cached(ttl_secs = 3600)]
fn concurrent_cached_million(k: u64) -> u64 {
    k.wrapping_mul(3)
}

// ---------------------------------------------------------------------------------
// The maps called directly.

/// One of each directly-called cache, filled with `n` keys.
struct Maps<K> {
    dogpile: Cache<K, u64>,
    bounded: Cache<K, u64>,
    moka: moka::sync::Cache<K, u64>,
    dash: DashMap<K, u64>,
    dash_ttl: DashMap<K, (Instant, u64)>,
    dash_fold: DashMap<K, u64, Fold>,
}

impl<K> Maps<K>
where
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
{
    fn new() -> Self {
        Maps {
            dogpile: Cache::new(TTL),
            bounded: Cache::builder()
                .ttl(TTL)
                .capacity(2 * KEYS as usize)
                .build(),
            moka: moka::sync::Cache::builder().time_to_live(TTL).build(),
            dash: DashMap::new(),
            dash_ttl: DashMap::new(),
            dash_fold: DashMap::with_hasher(Fold::default()),
        }
    }

    fn fill(self, keys: impl Iterator<Item = K>) -> Self {
        for k in keys {
            self.dogpile.get_with(k.clone(), || 1);
            self.bounded.get_with(k.clone(), || 1);
            self.moka.get_with(k.clone(), || 1);
            self.dash.insert(k.clone(), 1);
            self.dash_fold.insert(k.clone(), 1);
            self.dash_ttl.insert(k, (Instant::now(), 1));
        }
        self
    }
}

/// The floor with a TTL check: what a hand-written `DashMap<K, (Instant, V)>` cache does.
#[inline]
fn dash_ttl_get<K, Q>(map: &DashMap<K, (Instant, u64)>, k: &Q) -> Option<u64>
where
    K: std::hash::Hash + Eq + std::borrow::Borrow<Q>,
    Q: std::hash::Hash + Eq + ?Sized,
{
    let entry = map.get(k)?;
    (entry.0.elapsed() < TTL).then_some(entry.1)
}

fn str_keys() -> Vec<String> {
    (0..KEYS)
        .map(|i| format!("/articles/{i:04}/comments"))
        .collect()
}

// ---------------------------------------------------------------------------------
// Runners

/// One lookup per key, all keys per iteration.
fn on_keys<F: Fn(u64) -> u64>(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, f: F) {
    g.bench_function(name, |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for k in 0..KEYS {
                sum = sum.wrapping_add(f(black_box(k)));
            }
            sum
        })
    });
}

fn on_str_keys<F: Fn(&str) -> u64>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    keys: &[String],
    f: F,
) {
    g.bench_function(name, |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for k in keys {
                sum = sum.wrapping_add(f(black_box(k.as_str())));
            }
            sum
        })
    });
}

/// `threads` threads each run the whole key loop `iters` times, started together;
/// the time is the wall time of the slowest. Throughput counts every thread's lookups.
fn on_keys_threads<F: Fn(u64) -> u64 + Sync>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    threads: usize,
    f: F,
) {
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Barrier::new(threads + 1);
            std::thread::scope(|s| {
                let workers: Vec<_> = (0..threads)
                    .map(|t| {
                        let (f, start) = (&f, &start);
                        s.spawn(move || {
                            start.wait();
                            let began = Instant::now();
                            let mut sum = 0u64;
                            for _ in 0..iters {
                                // Threads walk the same keys interleaved (thread t reads
                                // key 7i + t): hot keys read by every core at once, the
                                // worst case for any write a hit makes.
                                for i in 0..KEYS {
                                    let k = (7 * i + t as u64) % KEYS;
                                    sum = sum.wrapping_add(f(black_box(k)));
                                }
                            }
                            black_box(sum);
                            began.elapsed()
                        })
                    })
                    .collect();
                start.wait();
                workers
                    .into_iter()
                    .map(|w| w.join().unwrap())
                    .max()
                    .unwrap()
            })
        })
    });
}

// ---------------------------------------------------------------------------------
// Groups

fn fresh_hit(c: &mut Criterion) {
    let maps = Maps::new().fill(0..KEYS);
    for k in 0..KEYS {
        dogpile_u64(k);
        cached_u64(k);
        concurrent_cached_u64(k);
    }
    for threads in [1, 2] {
        let mut g = c.benchmark_group(format!("fresh_hit_u64/{threads}_thread"));
        g.throughput(Throughput::Elements(KEYS * threads as u64));
        let dp = |k| maps.dogpile.get_with(k, || unreachable!());
        let bounded = |k| maps.bounded.get_with(k, || unreachable!());
        let moka = |k| maps.moka.get_with(k, || unreachable!());
        let dash = |k| *maps.dash.get(&k).unwrap();
        let dash_ttl = |k| dash_ttl_get(&maps.dash_ttl, &k).unwrap();
        let dash_fold = |k| *maps.dash_fold.get(&k).unwrap();
        if threads == 1 {
            on_keys(&mut g, "dogpile #[dogpile]", dogpile_u64);
            on_keys(&mut g, "dogpile Cache::get_with", dp);
            on_keys(&mut g, "dogpile Cache::get_with, capacity", bounded);
            on_keys(&mut g, "cached #[cached]", cached_u64);
            on_keys(&mut g, "cached #[concurrent_cached]", concurrent_cached_u64);
            on_keys(&mut g, "moka get_with", moka);
            on_keys(&mut g, "DashMap get+clone", dash);
            on_keys(&mut g, "DashMap get+clone+Instant", dash_ttl);
            on_keys(&mut g, "DashMap<foldhash> get+clone", dash_fold);
        } else {
            on_keys_threads(&mut g, "dogpile #[dogpile]", threads, dogpile_u64);
            on_keys_threads(&mut g, "dogpile Cache::get_with", threads, dp);
            on_keys_threads(
                &mut g,
                "dogpile Cache::get_with, capacity",
                threads,
                bounded,
            );
            on_keys_threads(&mut g, "cached #[cached]", threads, cached_u64);
            on_keys_threads(
                &mut g,
                "cached #[concurrent_cached]",
                threads,
                concurrent_cached_u64,
            );
            on_keys_threads(&mut g, "moka get_with", threads, moka);
            on_keys_threads(&mut g, "DashMap get+clone", threads, dash);
            on_keys_threads(&mut g, "DashMap get+clone+Instant", threads, dash_ttl);
            on_keys_threads(&mut g, "DashMap<foldhash> get+clone", threads, dash_fold);
        }
        g.finish();
    }
}

/// The attribute against the runtime it expands to, side by side: a `u64` key and an
/// `Arc` value (what a memoized fn of a large value returns), one thread.
fn fresh_hit_arc(c: &mut Criterion) {
    let direct: Cache<u64, Arc<u64>> = Cache::new(TTL);
    for k in 0..KEYS {
        dogpile_arc(k);
        direct.get_with(k, || Arc::new(k.wrapping_mul(3)));
    }
    let mut g = c.benchmark_group("fresh_hit_arc/1_thread");
    g.throughput(Throughput::Elements(KEYS));
    on_keys(&mut g, "dogpile #[dogpile]", |k| *dogpile_arc(k));
    on_keys(&mut g, "dogpile Cache::get_with", |k| {
        *direct.get_with(k, || unreachable!())
    });
    g.finish();
}

/// Polls `f` on this thread with a no-op waker until it is ready: the smallest
/// `block_on`. A fresh hit is ready on its first poll.
fn poll_ready<F: Future>(f: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn fresh_hit_async(c: &mut Criterion) {
    let maps = Maps::new().fill(0..KEYS);
    let moka: moka::future::Cache<u64, u64> =
        moka::future::Cache::builder().time_to_live(TTL).build();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        for k in 0..KEYS {
            dogpile_async_u64(k).await;
            maps.dogpile.get_with_async(k, async move { 1 }).await;
            moka.get_with(k, async move { 1 }).await;
        }
    });
    let mut g = c.benchmark_group("fresh_hit_async_u64/1_thread");
    g.throughput(Throughput::Elements(KEYS));
    on_keys(&mut g, "dogpile #[dogpile] async fn", |k| {
        poll_ready(dogpile_async_u64(k))
    });
    on_keys(&mut g, "dogpile Cache::get_with_async", |k| {
        poll_ready(maps.dogpile.get_with_async(k, async move { k }))
    });
    on_keys(&mut g, "moka future get_with", |k| {
        poll_ready(moka.get_with(k, async move { k }))
    });
    on_keys(&mut g, "dogpile Cache::get_with (sync)", |k| {
        maps.dogpile.get_with(k, || unreachable!())
    });
    on_keys(&mut g, "DashMap get+clone", |k| *maps.dash.get(&k).unwrap());
    g.finish();
}

fn fresh_hit_str(c: &mut Criterion) {
    let keys = str_keys();
    let maps = Maps::new().fill(keys.iter().cloned());
    for k in &keys {
        dogpile_str(k);
        cached_str(k);
        concurrent_cached_str(k);
    }
    let mut g = c.benchmark_group("fresh_hit_str/1_thread");
    g.throughput(Throughput::Elements(KEYS));
    on_str_keys(&mut g, "dogpile #[dogpile]", &keys, dogpile_str);
    on_str_keys(&mut g, "dogpile Cache::entry_by_ref", &keys, |k| {
        maps.dogpile.entry_by_ref(k).get_with(|| unreachable!())
    });
    on_str_keys(&mut g, "cached #[cached]", &keys, cached_str);
    on_str_keys(
        &mut g,
        "cached #[concurrent_cached]",
        &keys,
        concurrent_cached_str,
    );
    on_str_keys(&mut g, "moka get_with_by_ref", &keys, |k| {
        maps.moka.get_with_by_ref(k, || unreachable!())
    });
    on_str_keys(&mut g, "DashMap get+clone", &keys, |k| {
        *maps.dash.get(k).unwrap()
    });
    on_str_keys(&mut g, "DashMap get+clone+Instant", &keys, |k| {
        dash_ttl_get(&maps.dash_ttl, k).unwrap()
    });
    on_str_keys(&mut g, "DashMap<foldhash> get+clone", &keys, |k| {
        *maps.dash_fold.get(k).unwrap()
    });
    g.finish();
}

/// A miss that creates and inserts a new key: every iteration uses a key never seen.
/// Each sample starts from an empty cache, so map growth is part of the cost.
fn cold_miss(c: &mut Criterion) {
    fn fresh_each_sample<C>(
        g: &mut BenchmarkGroup<'_, WallTime>,
        name: &str,
        new: impl Fn() -> C,
        get: impl Fn(&C, u64) -> u64,
    ) {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let cache = new();
                let began = Instant::now();
                for k in 0..iters {
                    black_box(get(&cache, black_box(k)));
                }
                let took = began.elapsed();
                drop(cache);
                took
            })
        });
    }
    fn static_cleared(
        g: &mut BenchmarkGroup<'_, WallTime>,
        name: &str,
        clear: impl Fn(),
        get: impl Fn(u64) -> u64,
    ) {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                clear();
                let began = Instant::now();
                for k in 0..iters {
                    black_box(get(black_box(k)));
                }
                let took = began.elapsed();
                clear();
                took
            })
        });
    }

    let mut g = c.benchmark_group("cold_miss_insert/1_thread");
    g.throughput(Throughput::Elements(1));
    static_cleared(
        &mut g,
        "dogpile #[dogpile]",
        || DOGPILE_COLD.clear(),
        dogpile_cold,
    );
    fresh_each_sample(
        &mut g,
        "dogpile Cache::get_with",
        || Cache::new(TTL),
        |c, k| c.get_with(k, || k),
    );
    static_cleared(
        &mut g,
        "cached #[cached]",
        || {
            use cached::Cached;
            CACHED_COLD.write().cache_clear();
        },
        cached_cold,
    );
    static_cleared(
        &mut g,
        "cached #[concurrent_cached]",
        || {
            use cached::ConcurrentCached;
            CONCURRENT_CACHED_COLD.cache_clear().unwrap();
        },
        concurrent_cached_cold,
    );
    fresh_each_sample(
        &mut g,
        "moka get_with",
        || moka::sync::Cache::builder().time_to_live(TTL).build(),
        |c, k| c.get_with(k, || k),
    );
    fresh_each_sample(&mut g, "DashMap entry+insert", DashMap::new, |c, k| {
        *c.entry(k).or_insert(k)
    });
    fresh_each_sample(
        &mut g,
        "DashMap entry+insert+Instant",
        DashMap::new,
        |c, k| c.entry(k).or_insert_with(|| (Instant::now(), k)).1,
    );
    g.finish();
}

/// Fresh hits spread over 1,000,000 keys: the map no longer fits in cache.
fn million_keys(c: &mut Criterion) {
    static ORDER: LazyLock<Vec<u64>> = LazyLock::new(|| {
        // A fixed pseudo-random visiting order (an LCG), so that lookups miss the CPU cache.
        let mut order: Vec<u64> = (0..MILLION).collect();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for i in (1..order.len()).rev() {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            order.swap(i, (x >> 33) as usize % (i + 1));
        }
        order
    });
    fn on_million<F: Fn(u64) -> u64>(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, f: F) {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut sum = 0u64;
                for &k in ORDER.iter() {
                    sum = sum.wrapping_add(f(black_box(k)));
                }
                sum
            })
        });
    }

    let maps = Maps::new().fill(0..MILLION);
    for k in 0..MILLION {
        dogpile_million(k);
        cached_million(k);
        concurrent_cached_million(k);
    }
    let mut g = c.benchmark_group("fresh_hit_1M_keys/1_thread");
    g.throughput(Throughput::Elements(MILLION));
    g.sample_size(10);
    on_million(&mut g, "dogpile #[dogpile]", dogpile_million);
    on_million(&mut g, "dogpile Cache::get_with", |k| {
        maps.dogpile.get_with(k, || unreachable!())
    });
    on_million(&mut g, "cached #[cached]", cached_million);
    on_million(
        &mut g,
        "cached #[concurrent_cached]",
        concurrent_cached_million,
    );
    on_million(&mut g, "moka get_with", |k| {
        maps.moka.get_with(k, || unreachable!())
    });
    on_million(&mut g, "DashMap get+clone", |k| *maps.dash.get(&k).unwrap());
    on_million(&mut g, "DashMap get+clone+Instant", |k| {
        dash_ttl_get(&maps.dash_ttl, &k).unwrap()
    });
    on_million(&mut g, "DashMap<foldhash> get+clone", |k| {
        *maps.dash_fold.get(&k).unwrap()
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    targets = fresh_hit, fresh_hit_arc, fresh_hit_async, fresh_hit_str, cold_miss, million_keys
}
criterion_main!(benches);
