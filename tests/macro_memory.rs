//! Memory through the attribute: a `#[dogpile(capacity = 10_000)]` fn called
//! with a million distinct keys keeps at most 10,000 entries, evicting the oldest; and an
//! unbounded cache's idle entry takes at most 80 heap bytes, with no allocation of its
//! own, counted as the `memory` bench counts it.

use dogpile::{dogpile, Cache};
use std::time::{Duration, Instant};

const KEYS: u64 = 1_000_000;

/// The tests of this file one at a time: the first measures the whole process's resident
/// memory, which the second's million entries would disturb.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
const CAPACITY: usize = 10_000;

#[dogpile(ttl = "1h", capacity = 10_000)]
fn doubled(n: u64) -> u64 {
    n * 2
}

/// Resident set size in bytes, from `/proc/self/statm` (Linux); `None` elsewhere.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[test]
fn a_million_distinct_keys_through_a_capacity_10_000_fn() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let mut resident_after_fill = None;
    let mut max_len = 0;
    for key in 0..KEYS {
        assert_eq!(doubled(key), key * 2);
        if (key + 1) % 10_000 == 0 {
            let len = DOUBLED.len();
            assert!(
                len <= CAPACITY,
                "{len} entries after {} keys, capacity {CAPACITY}",
                key + 1
            );
            max_len = max_len.max(len);
            if key + 1 == 2 * CAPACITY as u64 {
                resident_after_fill = resident_bytes();
            }
        }
    }
    let len = DOUBLED.len();
    assert!(len <= CAPACITY, "{len} entries at the end");
    // Eviction frees room in batches of about a sixteenth of the capacity, so the cache
    // stays close to full.
    assert!(len >= CAPACITY - CAPACITY / 8, "{len} entries at the end");

    // Every call was a miss that stored its key; every key that is gone was evicted.
    let stats = DOUBLED.stats();
    assert_eq!(
        (stats.hits, stats.stale_hits, stats.misses),
        (0, 0, KEYS),
        "{stats:?}"
    );
    assert_eq!(stats.evictions, KEYS - len as u64, "{stats:?}");

    // The oldest values went first: the newest keys are all still there (`remove` finds
    // them), the first ones are gone.
    let kept = |keys: std::ops::Range<u64>| keys.filter(|&k| DOUBLED.remove(&k).is_some()).count();
    assert_eq!(kept(KEYS - 1000..KEYS), 1000, "the newest 1000 keys");
    assert_eq!(
        kept(0..KEYS - 2 * CAPACITY as u64),
        0,
        "keys older than the last 20,000"
    );

    let growth = resident_after_fill
        .zip(resident_bytes())
        .map(|(before, after)| after.saturating_sub(before));
    println!(
        "macro_memory: {KEYS} keys, max len {max_len}, len {len} at the end, {} evictions, \
         resident growth after the first {} keys: {}, in {:?}",
        stats.evictions,
        2 * CAPACITY,
        growth.map_or("n/a".to_owned(), |g| format!(
            "{:.1} MiB",
            g as f64 / 1048576.0
        )),
        started.elapsed()
    );
    if let Some(growth) = growth {
        // A million stored entries would take well over 32 MiB.
        assert!(growth < 32 << 20, "resident memory grew by {growth} bytes");
    }
}

#[dogpile(ttl = "1h")]
fn tripled(n: u64) -> u64 {
    n * 3
}

/// Heap bytes held per idle entry after a million distinct `u64 -> u64` keys, counted
/// exactly by a counting allocator (the calling thread's allocations, freed ones
/// subtracted), as `cargo bench --bench memory` counts its `heap bytes/entry` column:
/// the map's buckets with their spare room, and nothing per entry besides.
fn heap_per_entry(fill: impl FnOnce(u64) -> Box<dyn std::any::Any>) -> (f64, f64) {
    const ENTRIES: u64 = 1_000_000;
    let mut keep = None;
    let info = allocation_counter::measure(|| keep = Some(fill(ENTRIES)));
    drop(keep);
    (
        info.bytes_current as f64 / ENTRIES as f64,
        info.count_current as f64 / ENTRIES as f64,
    )
}

#[test]
fn an_idle_entry_of_an_unbounded_cache_takes_at_most_80_heap_bytes_and_no_allocation() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let runtime = heap_per_entry(|entries| {
        let cache: Cache<u64, u64> = Cache::new(Duration::from_secs(3600));
        for key in 0..entries {
            cache.get_with(key, || key);
        }
        assert_eq!(cache.len() as u64, entries);
        Box::new(cache)
    });
    let attribute = heap_per_entry(|entries| {
        for key in 0..entries {
            assert_eq!(tripled(key), key * 3);
        }
        assert_eq!(TRIPLED.len() as u64, entries);
        Box::new(())
    });
    println!(
        "heap bytes and allocations per idle entry: Cache {runtime:?}, #[dogpile] {attribute:?}"
    );
    for (what, (bytes, allocations)) in [("Cache::get_with", runtime), ("#[dogpile]", attribute)] {
        assert!(
            bytes <= 80.0,
            "{what}: {bytes:.1} heap bytes per idle entry"
        );
        // The map's tables grow by doubling: a few dozen allocations in all.
        assert!(
            allocations < 0.001,
            "{what}: {allocations} allocations per entry"
        );
    }
}
