//! Testing with time as a user's integration tests do: memoized fns written once, with no
//! `clock = ..`, their caches `static`s shared by every test of this binary, and each
//! test advancing a clock of its own (`ManualClock::scoped`, feature `test-clock`, on in
//! this package's dev-dependencies). cargo runs these 30 tests in parallel; a clock
//! shared between them would age one test's values by another's steps.
//!
//! Three kinds, ten tests each, each test on its own key: an inline fn (the refresher
//! creates on the test's thread), a `background` fn (the refresh runs on the pool's
//! thread and must stamp its value with the test's clock), and an `async fn` called from
//! tasks of a multi-thread runtime (`ManualClock::bind`).

use dogpile::{dogpile, ManualClock};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;
use support::common::eventually;

const TTL: Duration = Duration::from_secs(60);
/// Expiries each test goes through.
const ROUNDS: u64 = 5;
/// One key per test, for each kind.
const KEYS: usize = 10;

/// Body runs per key, for each kind: the value a body returns is its run's number.
static INLINE_RUNS: [AtomicU64; KEYS] = [const { AtomicU64::new(0) }; KEYS];
static BACKGROUND_RUNS: [AtomicU64; KEYS] = [const { AtomicU64::new(0) }; KEYS];
static ASYNC_RUNS: [AtomicU64; KEYS] = [const { AtomicU64::new(0) }; KEYS];

fn run(runs: &[AtomicU64; KEYS], key: usize) -> u64 {
    runs[key].fetch_add(1, SeqCst) + 1
}

#[dogpile(ttl = "60s")]
fn inline(key: usize) -> u64 {
    run(&INLINE_RUNS, key)
}

#[dogpile(ttl = "60s", background)]
fn background(key: usize) -> u64 {
    run(&BACKGROUND_RUNS, key)
}

#[dogpile(ttl = "60s")]
async fn in_task(key: usize) -> u64 {
    run(&ASYNC_RUNS, key)
}

/// Just before each expiry the value is fresh (no body run); at it, the caller
/// refreshes and gets the next run's value (R2, R3).
fn inline_test(key: usize) {
    let clock = ManualClock::scoped();
    assert_eq!(inline(key), 1);
    for round in 1..=ROUNDS {
        clock.advance(TTL - Duration::from_millis(1));
        assert_eq!(inline(key), round, "fresh 1 ms before its expiry");
        clock.advance(Duration::from_millis(1));
        assert_eq!(inline(key), round + 1, "stale at its ttl: refreshed");
        assert_eq!(INLINE_RUNS[key].load(SeqCst), round + 1);
    }
}

/// At each expiry the caller gets the stale value and the refresh runs on the pool's
/// thread (R10); the value it publishes is stamped with this test's clock, so it stays
/// fresh until this test moves its clock a ttl further.
fn background_test(key: usize) {
    let clock = ManualClock::scoped();
    assert_eq!(background(key), 1);
    for round in 1..=ROUNDS {
        clock.advance(TTL);
        assert_eq!(background(key), round, "stale: served at once");
        eventually("the background refresh published", || {
            BACKGROUND.get(&key) == Some(round + 1)
        });
        clock.advance(TTL - Duration::from_millis(1));
        assert_eq!(background(key), round + 1, "fresh on this test's clock");
        assert_eq!(BACKGROUND_RUNS[key].load(SeqCst), round + 1);
    }
}

/// The same as `inline_test`, each call from a task that any of the runtime's two
/// worker threads may poll.
fn async_test(key: usize) {
    let clock = ManualClock::scoped();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let call = |key| {
        let task = runtime.spawn(clock.bind(in_task(key)));
        runtime.block_on(task).unwrap()
    };
    assert_eq!(call(key), 1);
    for round in 1..=ROUNDS {
        clock.advance(TTL - Duration::from_millis(1));
        assert_eq!(call(key), round, "fresh 1 ms before its expiry");
        clock.advance(Duration::from_millis(1));
        assert_eq!(call(key), round + 1, "stale at its ttl: refreshed");
    }
}

macro_rules! tests {
    ($kind:ident: $($name:ident = $key:literal),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $kind($key);
            }
        )*
    };
}

tests!(inline_test: inline_0 = 0, inline_1 = 1, inline_2 = 2, inline_3 = 3, inline_4 = 4,
    inline_5 = 5, inline_6 = 6, inline_7 = 7, inline_8 = 8, inline_9 = 9);
tests!(background_test: background_0 = 0, background_1 = 1, background_2 = 2,
    background_3 = 3, background_4 = 4, background_5 = 5, background_6 = 6,
    background_7 = 7, background_8 = 8, background_9 = 9);
tests!(async_test: async_0 = 0, async_1 = 1, async_2 = 2, async_3 = 3, async_4 = 4,
    async_5 = 5, async_6 = 6, async_7 = 7, async_8 = 8, async_9 = 9);
