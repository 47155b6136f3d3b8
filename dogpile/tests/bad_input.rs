//! Bad input at run time: nonsense settings are refused with a message naming the
//! problem, extreme durations never overflow, and a creator that asks for its own key
//! panics clearly without breaking the cache for anyone else.

use support::common;

use common::bounded;
use dogpile::{BuildError, Cache, CacheBuilder, Clock, Dogpile, ManualClock, SyncReaderDogpile};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

/// The message of the panic `f` raises.
fn panic_message(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .expect("a panic with a message")
}

fn builder() -> CacheBuilder<u64, u64> {
    Cache::builder()
}

#[test]
fn each_refused_setting_says_what_is_wrong_from_try_build_and_build() {
    type Case = (
        fn() -> CacheBuilder<u64, u64>,
        BuildError,
        &'static [&'static str],
    );
    let cases: Vec<Case> = vec![
        (builder, BuildError::MissingTtl, &["needs a ttl", ".ttl("]),
        (
            || builder().ttl(Duration::ZERO),
            BuildError::ZeroTtl,
            &["ttl must be greater than zero"],
        ),
        (
            || builder().ttl(Duration::from_secs(1)).capacity(0),
            BuildError::ZeroCapacity,
            &["capacity must be at least 1"],
        ),
        (
            || {
                builder()
                    .ttl(Duration::from_secs(1))
                    .retry_backoff(Duration::from_secs(2), Duration::from_secs(1))
            },
            BuildError::BadBackoff,
            &["retry_backoff(base, cap) needs 0 < base <= cap"],
        ),
        (
            || {
                builder()
                    .ttl(Duration::from_secs(1))
                    .wait_at_most(Duration::ZERO)
            },
            BuildError::ZeroWaitAtMost,
            &["wait_at_most must be greater than zero", "leave it unset"],
        ),
    ];
    for (make, expected, phrases) in cases {
        let error = make().try_build().expect_err("refused");
        assert_eq!(error, expected);
        let shown = error.to_string();
        let panicked = panic_message(|| drop(make().build()));
        assert_eq!(
            panicked,
            format!("dogpile: {shown}"),
            "build() panics with the same text"
        );
        for phrase in phrases {
            assert!(
                shown.contains(phrase),
                "{expected:?}: {shown:?} lacks {phrase:?}"
            );
        }
        // An error type users can box and report.
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(error);
        assert_eq!(boxed.to_string(), shown);
    }
}

#[test]
fn a_zero_ttl_is_refused_by_every_constructor() {
    let message = panic_message(|| drop(Cache::<u8, u8>::new(Duration::ZERO)));
    assert!(
        message.contains("ttl must be greater than zero"),
        "{message}"
    );
    let message = panic_message(|| drop(Dogpile::<u8>::new(Duration::ZERO)));
    assert!(
        message.contains("Dogpile ttl must be greater than zero"),
        "{message}"
    );
    let message = panic_message(|| drop(SyncReaderDogpile::<u8>::new(Duration::ZERO)));
    assert!(
        message.contains("SyncReaderDogpile ttl must be greater than zero"),
        "{message}"
    );
}

#[test]
fn the_smallest_allowed_settings_work() {
    let clock = ManualClock::new();
    let cache: Cache<u64, u64> = Cache::builder()
        .ttl(Duration::from_nanos(1))
        .stale_while_revalidate(Duration::from_nanos(1))
        .capacity(1)
        .clock(clock.clone())
        .build();
    assert_eq!(cache.get_with(1, || 10), 10);
    assert_eq!(cache.get_with(1, || 11), 10, "fresh until the clock moves");
    clock.advance(Duration::from_nanos(1));
    assert_eq!(cache.get_with(1, || 12), 12, "stale after 1 ns: refreshed");
    clock.advance(Duration::from_nanos(2));
    assert_eq!(
        cache.try_get_with(1, || Err::<u64, _>("down")),
        Err("down"),
        "expired"
    );
    for key in 2..100 {
        assert_eq!(cache.get_with(key, || key), key);
        assert!(cache.len() <= 1);
    }
}

/// `Duration::MAX` (about 584 billion years) as ttl and stale_while_revalidate: nothing overflows
/// in the freshness check, the sweep horizon or the clock.
#[test]
fn duration_max_never_overflows() {
    let clock = ManualClock::new();
    let cache: Cache<u64, u64> = Cache::builder()
        .ttl(Duration::MAX)
        .stale_while_revalidate(Duration::MAX)
        .clock(clock.clone())
        .build();
    for key in 0..3000 {
        cache.get_with(key, || key); // enough admissions to run the sweep
    }
    assert_eq!(cache.len(), 3000, "the sweep reclaimed nothing");
    let before = clock.now();
    clock.advance(Duration::MAX);
    assert!(clock.now() >= before, "ManualClock wrapped backwards");
    clock.advance(Duration::MAX);
    for key in 0..3000 {
        assert_eq!(cache.get_with(key, || key + 1), key, "still fresh");
    }
    for key in 3000..6000 {
        cache.get_with(key, || key);
    }
    assert_eq!(cache.len(), 6000, "nothing is ever old enough to sweep");

    // Without stale_while_revalidate, with capacity, and on the system clock (coarse hit path).
    let cache: Cache<u64, u64> = Cache::builder().ttl(Duration::MAX).capacity(10).build();
    for key in 0..100 {
        assert_eq!(cache.get_with(key, || key), key);
    }
    assert_eq!(cache.get_with(99, || 0), 99);
    assert!(cache.len() <= 10);

    let lock = Dogpile::new(Duration::MAX);
    assert_eq!(*lock.acquire(|| 1), 1);
    assert_eq!(*lock.acquire(|| 2), 1);
    let lock = SyncReaderDogpile::with_clock(Duration::MAX, clock.clone());
    assert_eq!(*lock.acquire(|| 1), 1);
    clock.advance(Duration::MAX);
    assert_eq!(*lock.acquire(|| 2), 1);
}

#[test]
fn a_creator_asking_for_its_own_key_panics_clearly_and_the_cache_keeps_serving() {
    bounded("same-key re-entry", || {
        let cache: Arc<Cache<u64, u64>> = Arc::new(Cache::new(Duration::from_secs(60)));
        assert_eq!(cache.get_with(2, || 20), 20);
        let inner = cache.clone();
        let message = panic_message(|| {
            cache.get_with(1, || inner.get_with(1, || 0) + 1);
        });
        assert!(message.contains("same-key re-entry"), "{message}");
        assert!(message.contains("its own key"), "{message}");
        // Nothing is poisoned or left claimed: other keys, and the same key, still work.
        assert_eq!(cache.get_with(2, || 0), 20);
        assert_eq!(cache.get_with(3, || 30), 30);
        assert_eq!(cache.get_with(1, || 10), 10);
        assert_eq!(cache.get_with(1, || 11), 10);
        assert_eq!(
            cache.stats().failures,
            1,
            "the panicking creator counts as a failure"
        );

        // Re-entry in the middle of a recursion over other keys is caught too.
        let inner = cache.clone();
        let message = panic_message(|| {
            cache.get_with(100, || {
                let inner2 = inner.clone();
                inner.get_with(101, move || inner2.get_with(100, || 0))
            });
        });
        assert!(message.contains("same-key re-entry"), "{message}");
        assert_eq!(cache.get_with(100, || 1000), 1000);
        assert_eq!(cache.get_with(101, || 1010), 1010);
    });
}

#[test]
fn re_entry_on_the_single_slot_types_panics_clearly_too() {
    bounded("Dogpile re-entry", || {
        let lock = Arc::new(Dogpile::<u32>::new(Duration::from_secs(60)));
        let inner = lock.clone();
        let message = panic_message(|| {
            lock.acquire(|| *inner.acquire(|| 0) + 1);
        });
        assert!(message.contains("same-key re-entry"), "{message}");
        assert_eq!(*lock.acquire(|| 5), 5);

        let lock = Arc::new(SyncReaderDogpile::<u32>::new(Duration::from_secs(60)));
        let inner = lock.clone();
        let message = panic_message(|| {
            drop(lock.acquire(|| *inner.acquire(|| 0) + 1));
        });
        assert!(message.contains("its own key"), "{message}");
        assert_eq!(*lock.acquire(|| 6), 6);
    });
}
