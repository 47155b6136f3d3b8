//! The freshness model: each value's own lifetime (`ttl_with`), the stale windows
//! (`stale_while_revalidate`, `stale_if_error`), `retry_backoff`, `refresh_ahead` and
//! `wait_at_most`, driven by the manual clock except where the real clock is the point.

use dogpile::{Cache, Clock, ManualClock};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use support::common::{bounded, eventually, join_all, Counter, Gate};

const MS: Duration = Duration::from_millis(1);

/// An access token: valid for its own `valid_for` from when it was issued.
#[derive(Clone, Debug)]
struct Token {
    issued: Duration,
    valid_for: Duration,
}

#[test]
fn each_token_is_served_only_within_its_own_lifetime() {
    let clock = ManualClock::new();
    let issued = Counter::new();
    let tokens: Cache<&str, Token> = Cache::builder()
        .ttl(Duration::from_secs(3600))
        .ttl_with(|_, token: &Token| token.valid_for)
        .stale_while_revalidate(Duration::ZERO)
        .clock(clock.clone())
        .build();
    let start = clock.now();
    // 15 s of calls every 10 ms; tokens live 700 ms to 2.2 s, a different one each time.
    for step in 0..1500u64 {
        let now = clock.now() - start;
        let token = tokens.get_with("api", || {
            let n = issued.bump() as u64;
            Token {
                issued: now,
                valid_for: Duration::from_millis(700 + (n * 300) % 1500),
            }
        });
        assert!(
            now < token.issued + token.valid_for,
            "step {step}: a token past its expiry was returned ({token:?} at {now:?})"
        );
        assert_eq!(
            tokens.get(&"api").is_some(),
            now < token.issued + token.valid_for
        );
        clock.advance(10 * MS);
    }
    let stats = tokens.stats();
    assert_eq!(stats.stale_served, 0, "{stats:?}");
    // About 15 s / 1.4 s on average: one creation per token lifetime, no more.
    let created = issued.get();
    assert!((8..=16).contains(&created), "{created} tokens in 15 s");
    assert_eq!(
        stats.misses as usize, created,
        "every expiry made the key cold"
    );
}

#[test]
fn a_short_lifetime_for_a_missing_row_makes_one_lookup_per_lifetime() {
    let clock = ManualClock::new();
    let lookups = Counter::new();
    let rows: Cache<u32, Option<String>> = Cache::builder()
        .ttl(Duration::from_secs(3600))
        .ttl_with(|_, row: &Option<String>| match row {
            Some(_) => Duration::from_secs(3600),
            None => Duration::from_secs(1),
        })
        .clock(clock.clone())
        .build();
    for _ in 0..100 {
        assert_eq!(
            rows.get_with(7, || {
                lookups.bump();
                None
            }),
            None
        );
        clock.advance(100 * MS);
    }
    assert!(
        (9..=11).contains(&lookups.get()),
        "{} lookups",
        lookups.get()
    );
}

#[test]
fn a_failing_refresh_backs_off_and_every_call_gets_the_stale_value() {
    let clock = ManualClock::new();
    let cache: Cache<&str, u64> = Cache::builder()
        .ttl(Duration::from_secs(1))
        .stale_if_error(Duration::from_secs(3600))
        .retry_backoff(100 * MS, Duration::from_secs(5))
        .clock(clock.clone())
        .build();
    cache.get_with("k", || 1);
    clock.advance(Duration::from_secs(1));
    let attempts = Counter::new();
    for call in 0..1000 {
        let got = cache.try_get_with("k", || {
            attempts.bump();
            Err::<u64, _>("backend down")
        });
        assert_eq!(got, Ok(1), "call {call}");
        clock.advance(10 * MS);
    }
    // 100 ms, 200, 400, 800, 1.6 s, 3.2 s, 5 s...: 7 or 8 attempts in 10 s.
    let attempts = attempts.get();
    assert!((5..16).contains(&attempts), "{attempts} attempts");
    let stats = cache.stats();
    assert_eq!(stats.failures as usize, attempts);
    assert_eq!(stats.stale_served, 1000, "{stats:?}");
    assert_eq!(stats.backoff_answers as usize, 1000 - attempts, "{stats:?}");
    assert!(stats.past_lifetime_max_us >= 9_900_000, "{stats:?}");
    assert!(stats.past_lifetime_p99_us >= 8_000_000, "{stats:?}");
    // A success ends the back-off.
    clock.advance(Duration::from_secs(6));
    assert_eq!(cache.try_get_with("k", || Ok::<_, &str>(2)), Ok(2));
    cache.invalidate(&"k");
    assert_eq!(cache.try_get_with("k", || Ok::<_, &str>(3)), Ok(3));
}

#[test]
fn a_cold_failing_key_backs_off_and_answers_with_its_last_error() {
    let clock = ManualClock::new();
    let cache: Cache<&str, u64> = Cache::builder()
        .ttl(Duration::from_secs(60))
        .retry_backoff(Duration::from_secs(1), Duration::from_secs(1))
        .clock(clock.clone())
        .build();
    let attempts = Counter::new();
    for _ in 0..1000 {
        let got = cache.try_get_with("k", || {
            let n = attempts.bump();
            Err::<u64, _>(format!("down {n}"))
        });
        assert_eq!(
            got,
            Err(format!("down {}", attempts.get())),
            "the last error"
        );
        clock.advance(10 * MS);
    }
    // One attempt per 1 s to 1.25 s.
    let attempts = attempts.get();
    assert!((8..=10).contains(&attempts), "{attempts} attempts in 10 s");
    assert_eq!(cache.stats().backoff_answers as usize, 1000 - attempts);
    assert_eq!(cache.len(), 1, "a key backing off keeps its entry");
}

#[test]
fn without_retry_backoff_every_stale_caller_retries() {
    let clock = ManualClock::new();
    let cache: Cache<&str, u64> = Cache::builder()
        .ttl(Duration::from_secs(1))
        .stale_if_error(Duration::from_secs(3600))
        .clock(clock.clone())
        .build();
    cache.get_with("k", || 1);
    clock.advance(Duration::from_secs(1));
    let attempts = Counter::new();
    for _ in 0..10 {
        let got = cache.try_get_with("k", || {
            attempts.bump();
            Err::<u64, _>("down")
        });
        assert_eq!(got, Ok(1));
    }
    assert_eq!(attempts.get(), 10);
}

#[test]
fn refresh_ahead_inline_only_its_claimant_waits_and_once_per_lifetime() {
    let clock = ManualClock::new();
    let cache: Arc<Cache<&str, u64>> = Arc::new(
        Cache::builder()
            .ttl(Duration::from_secs(10))
            .refresh_ahead(Duration::from_secs(2))
            .clock(clock.clone())
            .build(),
    );
    cache.get_with("k", || 1);
    clock.advance(Duration::from_secs(7));
    assert_eq!(cache.get_with("k", || unreachable!()), 1, "3 s left: fresh");
    clock.advance(Duration::from_secs(2)); // 1 s left: due
    let gate = Gate::new();
    let started = Counter::new();
    let claimant = {
        let (cache, gate, started) = (cache.clone(), gate.clone(), started.clone());
        thread::spawn(move || {
            cache.get_with("k", || {
                started.bump();
                gate.wait();
                2
            })
        })
    };
    eventually("early refresh running", || started.get() == 1);
    for _ in 0..5 {
        assert_eq!(
            cache.get_with("k", || unreachable!()),
            1,
            "others are not held"
        );
    }
    gate.open();
    assert_eq!(bounded("claimant", move || claimant.join().unwrap()), 2);
    let stats = cache.stats();
    assert_eq!(
        (stats.early_refreshes, stats.refreshes, stats.waits),
        (1, 1, 0)
    );
    assert_eq!(
        stats.stale_served, 0,
        "an early refresh serves fresh values only"
    );

    // A failed early refresh keeps the fresh value and is not retried in this lifetime.
    clock.advance(Duration::from_secs(9));
    let failed = cache.try_get_with("k", || Err::<u64, _>("down"));
    assert_eq!(failed, Ok(2), "its claimant gets the still-fresh value");
    for _ in 0..5 {
        assert_eq!(cache.try_get_with("k", || Err::<u64, _>("again")), Ok(2));
    }
    assert_eq!(cache.stats().failures, 1, "one early refresh per lifetime");
    clock.advance(Duration::from_secs(1)); // expired now: an ordinary refresh
    assert_eq!(cache.get_with("k", || 3), 3);
}

#[test]
fn wait_at_most_bounds_a_cold_wait_on_a_slow_creation() {
    let cache: Arc<Cache<&str, u64>> = Arc::new(
        Cache::builder()
            .ttl(Duration::from_secs(60))
            .wait_at_most(300 * MS)
            .build(),
    );
    let gate = Gate::new();
    let started = Counter::new();
    // The slow creation: held at the gate (it would take 3 s) until the waiter is done.
    let slow = {
        let (cache, gate, started) = (cache.clone(), gate.clone(), started.clone());
        thread::spawn(move || {
            cache.get_with("k", || {
                started.bump();
                gate.wait();
                1
            })
        })
    };
    eventually("slow creation running", || started.get() == 1);
    let waiter = {
        let cache = cache.clone();
        thread::spawn(move || {
            let begun = Instant::now();
            (cache.get_with("k", || 2), begun.elapsed())
        })
    };
    let (value, waited) = bounded("waiter", move || waiter.join().unwrap());
    assert_eq!(value, 2, "the waiter gave up and created itself");
    assert!(
        waited >= 300 * MS && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    assert_eq!(cache.stats().waits, 1);
    gate.open();
    assert_eq!(bounded("slow", move || slow.join().unwrap()), 1);
}

/// Polls `future` on this thread, parked between wake-ups: no async runtime at all.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let mut future = std::pin::pin!(future);
    let waker = std::task::Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        thread::park();
    }
}

/// An async caller's cold wait on a creation held at a gate (it would take 3 s), with
/// `wait_at_most(300ms)`: it gives up and creates itself. `run` drives the waiter.
fn async_wait_at_most(run: fn(Arc<Cache<&'static str, u64>>) -> u64) {
    let cache: Arc<Cache<&str, u64>> = Arc::new(
        Cache::builder()
            .ttl(Duration::from_secs(60))
            .wait_at_most(300 * MS)
            .build(),
    );
    let gate = Gate::new();
    let started = Counter::new();
    let slow = {
        let (cache, gate, started) = (cache.clone(), gate.clone(), started.clone());
        thread::spawn(move || {
            cache.get_with("k", || {
                started.bump();
                gate.wait();
                1
            })
        })
    };
    eventually("slow creation running", || started.get() == 1);
    let waiter = {
        let cache = cache.clone();
        thread::spawn(move || {
            let begun = Instant::now();
            (run(cache), begun.elapsed())
        })
    };
    let (value, waited) = bounded("async waiter", move || waiter.join().unwrap());
    assert_eq!(value, 2, "the async waiter gave up and created itself");
    assert!(
        waited >= 300 * MS && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    assert_eq!(cache.stats().waits, 1);
    gate.open();
    assert_eq!(bounded("slow", move || slow.join().unwrap()), 1);
}

#[test]
fn wait_at_most_bounds_an_async_cold_wait_without_a_runtime() {
    async_wait_at_most(|cache| block_on(cache.get_with_async("k", async { 2 })));
}

#[test]
fn wait_at_most_bounds_an_async_cold_wait_on_tokio() {
    async_wait_at_most(|cache| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(cache.get_with_async("k", async { 2 }))
    });
}

#[test]
fn get_follows_the_windows_and_get_fresh_serves_fresh_values_only() {
    let clock = ManualClock::new();
    let cache: Cache<u32, &str> = Cache::builder()
        .ttl(Duration::from_secs(300))
        .stale_while_revalidate(Duration::from_secs(60))
        .clock(clock.clone())
        .build();
    cache.insert(1, "Ada");
    assert_eq!(
        (cache.get(&1), cache.get_fresh(&1)),
        (Some("Ada"), Some("Ada"))
    );
    clock.advance(Duration::from_secs(300));
    assert_eq!((cache.get(&1), cache.get_fresh(&1)), (Some("Ada"), None));
    clock.advance(Duration::from_secs(60));
    assert_eq!((cache.get(&1), cache.get_fresh(&1)), (None, None));
    assert_eq!(cache.stats().calls(), 0, "looks are not calls");
}

/// Real clock: under continuous traffic with background refresh ahead of expiry, no
/// caller waits for a creation, and none is served a value past its lifetime unless
/// the machine held a refresh back past it (a loaded machine can: then only by as
/// much as that refresh overran).
#[test]
fn background_refresh_ahead_keeps_every_call_fast_and_fresh() {
    const TTL: Duration = Duration::from_millis(200);
    const THREADS: usize = 8;
    let cache: Arc<Cache<&str, Instant, dogpile::mode::Background>> = Arc::new(
        Cache::builder()
            .ttl(TTL)
            .refresh_ahead(100 * MS)
            .background_refresh()
            .build(),
    );
    let create = || {
        thread::sleep(20 * MS);
        Instant::now()
    };
    cache.get_with("k", create);
    let waits_after_first = cache.stats().waits;
    let start = Arc::new(Barrier::new(THREADS));
    let stop = Arc::new(AtomicBool::new(false));
    let slow = Arc::new(AtomicU64::new(0));
    let seen = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (cache, start, stop) = (cache.clone(), start.clone(), stop.clone());
            let (slow, seen) = (slow.clone(), seen.clone());
            thread::spawn(move || {
                start.wait();
                let (mut calls, mut oldest) = (0u64, Duration::ZERO);
                while !stop.load(SeqCst) {
                    let begun = Instant::now();
                    let created = cache.get_with("k", create);
                    let took = begun.elapsed();
                    if took > 10 * MS {
                        slow.fetch_add(1, SeqCst);
                    }
                    // How old the value was when the call got it.
                    oldest = oldest.max(created.elapsed().saturating_sub(took));
                    seen.lock().unwrap().insert(created);
                    calls += 1;
                    // Continuous traffic that leaves the refresh executor some CPU on a
                    // small machine.
                    thread::sleep(Duration::from_micros(200));
                }
                (calls, oldest)
            })
        })
        .collect();
    thread::sleep(Duration::from_secs(2));
    stop.store(true, SeqCst);
    let ended: Vec<_> = join_all(threads).into_iter().map(|c| c.unwrap()).collect();
    let calls: u64 = ended.iter().map(|c| c.0).sum();
    let oldest = ended.iter().map(|c| c.1).max().unwrap();
    let stats = cache.stats();
    // How far past its predecessor's expiry each value was ready: a refresh overran.
    let values: Vec<Instant> = seen.lock().unwrap().iter().copied().collect();
    let overran = values
        .windows(2)
        .map(|w| (w[1] - w[0]).saturating_sub(TTL))
        .max()
        .unwrap_or_default();
    let slow = slow.load(SeqCst);
    println!(
        "{calls} calls, {slow} over 10 ms (none waited for a creation), oldest {oldest:?}, \
         a refresh overran by {overran:?}: {stats}"
    );
    assert_eq!(
        stats.waits, waits_after_first,
        "a call waited for a creation: {stats:?}"
    );
    assert!(stats.early_refreshes >= 5, "{stats:?}");
    let slack = 5 * MS;
    if overran.is_zero() {
        assert_eq!(stats.stale_served, 0, "served past its lifetime: {stats:?}");
        assert!(oldest < TTL + slack, "a value {oldest:?} old was served");
    } else {
        let past = Duration::from_micros(stats.past_lifetime_max_us);
        assert!(
            past <= overran + slack,
            "{past:?} past, the refresh overran {overran:?}"
        );
        assert!(
            oldest <= TTL + overran + slack,
            "a value {oldest:?} old was served"
        );
    }
}

#[test]
fn a_call_site_with_another_error_type_is_not_held_by_the_back_off() {
    let clock = ManualClock::new();
    let cache: Arc<Cache<&str, u64>> = Arc::new(
        Cache::builder()
            .ttl(Duration::from_secs(60))
            .retry_backoff(Duration::from_secs(10), Duration::from_secs(10))
            .clock(clock.clone())
            .build(),
    );
    assert_eq!(
        cache.try_get_with("k", || Err::<u64, _>("down")),
        Err("down")
    );
    // Backing off: a caller with the same error type gets the last error...
    assert_eq!(cache.try_get_with("k", || Ok::<_, &str>(1)), Err("down"));
    // ...one with another error type has none to answer with: it creates.
    let other = {
        let cache = cache.clone();
        move || cache.try_get_with("k", || Ok::<u64, String>(2))
    };
    assert_eq!(bounded("another error type", other), Ok(2));
    assert_eq!(cache.try_get_with("k", || Err::<u64, _>("unused")), Ok(2));
}
