//! Unit tests of a cache's entries.

use super::*;
use crate::mode::Background;
use crate::{ManualClock, RefreshTask};

fn attached<K, V, M>(cache: &Cache<K, V, M>) -> usize
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    cache.core.attached()
}

/// An idle entry holds no control (no allocation besides its bucket): one is
/// attached while a call uses the slot and detached by the last call to leave.
#[test]
fn idle_entries_hold_no_control() {
    let clock = ManualClock::new();
    let cache: Cache<u32, u32> = Cache::builder()
        .ttl(Duration::from_secs(1))
        .clock(clock.clone())
        .build();
    for key in 0..100 {
        cache.get_with(key, || key);
    }
    cache.insert(100, 100);
    assert_eq!(
        (cache.len(), attached(&cache)),
        (101, 0),
        "after cold misses"
    );
    clock.advance(Duration::from_secs(1));
    for key in 0..100 {
        assert_eq!(cache.get_with(key, || key + 1), key + 1);
    }
    let _ = cache.try_get_with(1000, || Err::<u32, _>("down"));
    assert_eq!(attached(&cache), 0, "after refreshes and a failure");

    let background: Cache<u32, u32, Background> = Cache::builder()
        .ttl(Duration::from_secs(1))
        .clock(clock.clone())
        .background_refresh()
        .refresh_executor(RefreshTask::run)
        .build();
    background.get_with(1, || 1);
    clock.advance(Duration::from_secs(1));
    // This executor runs the refresh inside the claimant's call: whichever store
    // leaves last, the task's or the claimant's, detaches.
    assert_eq!(background.get_with(1, || 2), 1);
    assert_eq!(background.get(&1), Some(2));
    assert_eq!(attached(&background), 0, "after a background refresh");
}
