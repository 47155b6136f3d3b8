//! `Stats` for people (`Display`) and, with the `serde` feature, for machines.

use dogpile::{Cache, ManualClock, Stats};
use std::time::Duration;

/// A cache that has seen one of everything a single thread can produce: a miss, hits,
/// a stale hit with its refresh, and a failed refresh.
fn busy_stats() -> Stats {
    let clock = ManualClock::new();
    let cache = Cache::<u8, u8>::builder()
        .ttl(Duration::from_secs(1))
        .clock(clock.clone())
        .build();
    cache.get_with(1, || 1); // miss
    cache.get_with(1, || 9); // hit
    cache.get_with(1, || 9); // hit
    clock.advance(Duration::from_secs(1));
    cache.get_with(1, || 2); // stale hit, refresh
    clock.advance(Duration::from_secs(1));
    let _ = cache.try_get_with(1, || Err::<u8, _>("down")); // stale hit, failure
    cache.stats()
}

#[test]
fn display_is_one_line_with_every_counter() {
    let stats = busy_stats();
    assert_eq!(
        stats.to_string(),
        "calls 5 (hits 2, stale hits 2, misses 1), refreshes 2 (early 0), failures 1, waits 0, \
         evictions 0, stale served 0 (past lifetime: max 0 us, p99 0 us), back-off answers 0"
    );
    assert!(!stats.to_string().contains('\n'));
}

#[cfg(feature = "serde")]
#[test]
fn serde_writes_one_number_per_counter_and_reads_it_back() {
    let stats = busy_stats();
    let json = serde_json::to_value(stats).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "hits": 2, "stale_hits": 2, "misses": 1, "refreshes": 2,
            "failures": 1, "waits": 0, "evictions": 0, "stale_served": 0,
            "past_lifetime_max_us": 0, "past_lifetime_p99_us": 0, "early_refreshes": 0,
            "backoff_answers": 0, "tier_hits": 0,
        })
    );
    let back: Stats = serde_json::from_value(json).unwrap();
    assert_eq!(back, stats);
}

#[cfg(feature = "serde")]
#[test]
fn serde_reads_a_snapshot_missing_a_counter_as_zero() {
    let stats: Stats = serde_json::from_str(r#"{"hits": 3, "misses": 1}"#).unwrap();
    assert_eq!((stats.hits, stats.misses, stats.evictions), (3, 1, 0));
    assert_eq!(stats.calls(), 4);
}
