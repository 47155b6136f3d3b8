//! Memory bounds: a capacity bounds the entries (and so the memory) whatever the number
//! of distinct keys, and without one, long-expired entries are still reclaimed by the
//! documented sweep (see "Bounds and eviction" in the `Cache` docs).
//!
//! Resident memory is process-wide, so the tests here take turns (`SERIAL`).

use support::common;

use common::Gate;
use dogpile::{Cache, ManualClock};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Resident set size in bytes, from `/proc/self/statm` (Linux); `None` elsewhere.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

const MIB: f64 = 1024.0 * 1024.0;

/// Runs distinct `keys` through `get(key)`, checking `len()` every 1000 keys.
fn churn(
    keys: std::ops::Range<u64>,
    capacity: usize,
    len: impl Fn() -> usize,
    get: impl Fn(u64) -> u64,
) {
    for key in keys {
        assert_eq!(get(key), key * 2);
        if key % 1000 == 0 {
            let len = len();
            assert!(
                len <= capacity,
                "{len} entries after {key} keys, capacity {capacity}"
            );
        }
    }
}

// Thirty times the capacity: enough for a leak to show, few enough for a debug build in
// each of CI's feature combinations (tests/macro_memory.rs runs a million, once).
const KEYS: u64 = 300_000;
const CAPACITY: usize = 10_000;

/// `KEYS` distinct keys after a warm-up that fills the cache: `len()` stays within
/// the capacity throughout, and resident memory does not grow with the keys.
fn churn_past_capacity(len: impl Fn() -> usize, get: impl Fn(u64) -> u64) {
    let started = Instant::now();
    let warm = 2 * CAPACITY as u64;
    churn(0..warm, CAPACITY, &len, &get);
    let before = resident_bytes();
    churn(warm..warm + KEYS, CAPACITY, &len, &get);
    let after = resident_bytes();
    assert!(len() <= CAPACITY, "{} entries at the end", len());
    println!(
        "memory: {} keys through capacity {CAPACITY}, len {} at the end, in {:?}",
        warm + KEYS,
        len(),
        started.elapsed()
    );
    if let (Some(before), Some(after)) = (before, after) {
        let growth = after.saturating_sub(before);
        println!(
            "memory: resident {:.1} MiB before the churn, {:.1} MiB after \
             (growth {:.1} MiB)",
            before as f64 / MIB,
            after as f64 / MIB,
            growth as f64 / MIB
        );
        // 300,000 unbounded entries would take some 20 MiB or more.
        assert!(
            growth < 8 * 1024 * 1024,
            "resident memory grew by {:.1} MiB",
            growth as f64 / MIB
        );
    }
}

#[test]
fn keys_thirty_times_a_capacity_of_10_000_stay_bounded() {
    let _serial = serial();
    let cache: Cache<u64, u64> = Cache::builder()
        .ttl(Duration::from_secs(3600))
        .capacity(CAPACITY)
        .build();
    churn_past_capacity(|| cache.len(), |k| cache.get_with(k, || k * 2));
    let stats = cache.stats();
    assert_eq!(stats.misses, KEYS + 2 * CAPACITY as u64);
    assert!(stats.evictions >= KEYS + CAPACITY as u64, "{stats:?}");
}

/// Whether `key` holds a value, without creating one.
fn present(cache: &Cache<u64, u64>, key: u64) -> bool {
    cache.remove(&key).is_some()
}

#[test]
fn without_capacity_long_expired_entries_are_swept() {
    let _serial = serial();
    const OLD: u64 = 3000;
    let ttl = Duration::from_secs(1);
    let clock = ManualClock::new();
    let cache: Cache<u64, u64> = Cache::builder().ttl(ttl).clock(clock.clone()).build();
    for key in 0..OLD {
        cache.get_with(key, || key);
    }
    assert_eq!(cache.len(), OLD as usize);

    // 10 × ttl old: stale, but younger than the 16 × ttl horizon, so kept through as
    // many admissions as trigger several sweeps.
    clock.advance(10 * ttl);
    let mut next = OLD;
    for _ in 0..4 * OLD {
        cache.get_with(next, || next);
        next += 1;
    }
    assert_eq!(
        cache.len() as u64,
        next,
        "swept entries younger than 16 × ttl"
    );

    // Now the first OLD keys are 16 × ttl old; the rest at most 6 × ttl.
    clock.advance(6 * ttl);
    let entries = cache.len() as u64;
    let swept_at = (1..=100_000)
        .find(|_| {
            cache.get_with(next, || next);
            next += 1;
            cache.len() as u64 == next - OLD
        })
        .expect("100,000 admissions and no sweep");
    // The documented period: a sweep once the admissions since the last one are as
    // many as the entries before them (and at least 1024).
    assert!(
        swept_at <= entries.max(1024),
        "swept only after {swept_at} admissions"
    );
    assert!(cache.stats().evictions >= OLD);
    assert!(
        (0..OLD).all(|key| !present(&cache, key)),
        "a long-expired key was kept"
    );
    assert!(
        (OLD..next).all(|key| present(&cache, key)),
        "a younger key was swept"
    );
    println!(
        "memory: unbounded cache swept {OLD} keys 16 × ttl old after {swept_at} admissions \
         ({entries} entries)"
    );
}

#[test]
fn with_stale_while_revalidate_the_sweep_horizon_is_the_lifetime_plus_that_window() {
    let _serial = serial();
    let ttl = Duration::from_secs(1);
    let clock = ManualClock::new();
    let cache: Cache<u64, u64> = Cache::builder()
        .ttl(ttl)
        .stale_while_revalidate(2 * ttl)
        .clock(clock.clone())
        .build();
    for key in 0..500 {
        cache.get_with(key, || key);
    }
    clock.advance(ttl);
    for key in 500..1000 {
        cache.get_with(key, || key);
    }
    // Keys 0..500 are exactly ttl + stale_while_revalidate old (past serving: reclaimable), keys
    // 500..1000 are 2 × ttl old (still served stale: kept).
    clock.advance(2 * ttl);
    for key in 1000..2100 {
        cache.get_with(key, || key);
    }
    // The 1024th admission swept.
    assert_eq!(cache.len(), 1600);
    assert!(
        (0..500).all(|key| !present(&cache, key)),
        "an expired key was kept"
    );
    assert!(
        (500..2100).all(|key| present(&cache, key)),
        "a servable key was swept"
    );
}

/// Regression: with the oldest entries all being created (no value, so oldest first),
/// eviction found "nothing to evict" and the new key's value went unstored even though
/// other entries could go.
#[test]
fn eviction_passes_over_entries_being_created() {
    let _serial = serial();
    let clock = ManualClock::new();
    let cache: Arc<Cache<&str, u32>> = Arc::new(
        Cache::builder()
            .ttl(Duration::from_secs(60))
            .capacity(2)
            .clock(clock)
            .build(),
    );
    let (gate, running) = (Gate::new(), Gate::new());
    let creating = {
        let (cache, gate, running) = (cache.clone(), gate.clone(), running.clone());
        thread::spawn(move || {
            cache.get_with("busy", || {
                running.open();
                gate.wait();
                1
            })
        })
    };
    running.wait(); // the creation of "busy" is in flight: its entry cannot be evicted
    assert_eq!(cache.get_with("old", || 2), 2);
    // Full: "busy" (no value yet, in flight) and "old". A new key evicts "old".
    assert_eq!(cache.get_with("new", || 3), 3);
    assert_eq!(
        cache.get_with("new", || panic!(
            "\"new\" was not stored: eviction found no room"
        )),
        3
    );
    assert_eq!(cache.stats().evictions, 1);
    gate.open();
    assert_eq!(creating.join().unwrap(), 1);
    assert!(cache.len() <= 2);
}
