//! The process-wide refresh pool (R10) under a burst: 10,000 keys go stale at once.
//! Alone in its test binary, so that the thread count it watches is its own.

use support::common;

use common::{Gate, BOUND};
use dogpile::mode::Background;
use dogpile::{Cache, ManualClock};
use std::time::{Duration, Instant};

const KEYS: u64 = 10_000;
const TTL: Duration = Duration::from_secs(10);

/// This process's thread count, as the kernel sees it.
fn threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|line| line.starts_with("Threads:"))
        .expect("a Threads: line");
    line["Threads:".len()..].trim().parse().expect("a number")
}

#[test]
fn ten_thousand_stale_keys_are_all_refreshed_by_a_pool_of_bounded_size() {
    let pool_size = std::thread::available_parallelism().map_or(1, |n| n.get());
    let clock = ManualClock::new();
    let cache: Cache<u64, u64, Background> = Cache::builder()
        .ttl(TTL)
        .background_refresh()
        .clock(clock.clone())
        .build();
    for key in 0..KEYS {
        cache.get_with(key, || 0);
    }
    clock.advance(TTL);
    // Refreshes block until every key has been asked for once: a thread per refresh
    // would now hold 10,000 threads.
    let gate = Gate::new();
    let before = threads();
    let deadline = Instant::now() + BOUND;
    let mut most = before;
    for key in 0..KEYS {
        let gate = gate.clone();
        let value = cache.get_with(key, move || {
            gate.wait();
            key + 1
        });
        assert_eq!(value, 0, "R10: the stale value, at once");
        if key % 500 == 0 {
            most = most.max(threads());
        }
    }
    most = most.max(threads());
    assert!(
        most <= before + pool_size,
        "threads rose from {before} to {most} with every refresh blocked; the pool has {pool_size}"
    );
    let stats = cache.stats();
    assert_eq!(stats.refreshes, KEYS, "every key's refresh was claimed");
    assert_eq!(stats.waits, 0, "R10: nobody waits");
    gate.open();

    // The queue held at most a few thousand: the rest were given up, their keys stayed
    // stale, and the next caller of each claims its refresh again.
    let mut pending: Vec<u64> = (0..KEYS).collect();
    while !pending.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{} keys still not refreshed after {BOUND:?}",
            pending.len()
        );
        pending.retain(|&key| cache.get_with(key, move || key + 1) != key + 1);
        most = most.max(threads());
        std::thread::yield_now();
    }
    for key in 0..KEYS {
        assert_eq!(cache.get(&key), Some(key + 1));
    }
    assert!(
        cache.stats().refreshes > KEYS,
        "a full queue gives refreshes up, and later callers claim them again"
    );
    assert!(
        most <= before + pool_size,
        "threads rose from {before} to {most}; the pool has {pool_size}"
    );
}
