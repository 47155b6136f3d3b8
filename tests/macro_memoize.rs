//! End-to-end: what `#[dogpile]` fns do at run time, over the real runtime.
//!
//! Time-dependent cases give their fn a `dogpile::ManualClock` (`clock = CLOCK.clone()`)
//! and advance it: time passes only when the test says so, never by sleeping. Each such
//! fn has its own clock, since the tests of this file run in parallel. Every wait on
//! another thread is bounded (`common`).

use support::common;

use common::{join_all, Gate};
use dogpile::{dogpile, ManualClock};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, LazyLock};
use std::thread;
use std::time::{Duration, Instant};

#[dogpile(ttl = "1h")]
fn fib(n: u64) -> u64 {
    if n < 2 {
        n
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

#[test]
fn recursion_completes_and_is_memoized() {
    let start = Instant::now();
    assert_eq!(fib(90), 2_880_067_194_370_816_120);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    // Each n was created exactly once: 91 misses, and the second branch of every
    // recursion (and the second call below) hit.
    let before = FIB.stats();
    assert_eq!(fib(90), 2_880_067_194_370_816_120);
    assert_eq!(FIB.stats().hits, before.hits + 1);
    assert_eq!(before.misses, 91);
    assert_eq!(FIB.len(), 91);
}

static SHOUTS: AtomicUsize = AtomicUsize::new(0);

#[dogpile(ttl = "1h")]
fn shout(word: &str, times: usize) -> Arc<String> {
    SHOUTS.fetch_add(1, SeqCst);
    Arc::new(word.to_uppercase().repeat(times))
}

#[test]
fn borrowed_arguments_are_keyed_by_their_owned_form() {
    assert_eq!(*shout("hi", 2), "HIHI");
    let owned = String::from("hi");
    assert_eq!(
        *shout(&owned, 2),
        "HIHI",
        "a `String` borrowed as `&str` is the same key"
    );
    assert_eq!(SHOUTS.load(SeqCst), 1);
    assert_eq!(
        *shout("hi", 3),
        "HIHIHI",
        "every argument is part of the key"
    );
    assert_eq!(*shout("ho", 2), "HOHO");
    assert_eq!(SHOUTS.load(SeqCst), 3);
    // The static handle is keyed by the owned tuple.
    assert!(SHOUT.remove(&("hi".to_owned(), 2)).is_some());
    assert_eq!(*shout("hi", 2), "HIHI");
    assert_eq!(SHOUTS.load(SeqCst), 4);
}

static PARSES: AtomicUsize = AtomicUsize::new(0);

#[dogpile(ttl = "1h")]
fn parse(text: &str) -> Result<u32, std::num::ParseIntError> {
    PARSES.fetch_add(1, SeqCst);
    text.trim().parse()
}

#[test]
fn errors_are_not_cached() {
    assert!(parse("nope").is_err());
    assert!(parse("nope").is_err());
    assert_eq!(PARSES.load(SeqCst), 2, "each failing call ran the body");
    assert_eq!(parse("42"), Ok(42));
    assert_eq!(parse("42"), Ok(42));
    assert_eq!(PARSES.load(SeqCst), 3, "an Ok is cached");
    assert!(PARSE.stats().failures >= 2);
}

static VERSION: AtomicU64 = AtomicU64::new(1);

#[dogpile(ttl = "1h", name = RELEASES)]
fn release(product: &str) -> String {
    format!("{product} v{}", VERSION.load(SeqCst))
}

#[test]
fn companions_and_the_named_handle() {
    assert_eq!(release("app"), "app v1");
    VERSION.store(2, SeqCst);
    assert_eq!(release("app"), "app v1", "still cached");

    // `_no_cache` runs the body and leaves the cache alone.
    assert_eq!(release_no_cache("app"), "app v2");
    assert_eq!(release("app"), "app v1");

    // `_prime` runs the body and stores its value as fresh.
    assert_eq!(release_prime("app"), "app v2");
    assert_eq!(release("app"), "app v2");

    // invalidate is soft: the next caller refreshes (single-threaded, that is us).
    VERSION.store(3, SeqCst);
    RELEASES.invalidate("app");
    assert_eq!(release("app"), "app v3");

    // remove is hard and returns the value.
    assert_eq!(RELEASES.remove("app").as_deref(), Some("app v3"));
    assert_eq!(RELEASES.remove("app"), None);

    assert_eq!(release("a"), "a v3");
    assert_eq!(release("b"), "b v3");
    assert_eq!(RELEASES.len(), 2);
    RELEASES.clear();
    assert!(RELEASES.is_empty());

    // `_no_cache` and `_prime` don't count as calls; the invalidated call was a stale hit
    // that refreshed.
    let stats = RELEASES.stats();
    assert_eq!(
        (stats.hits, stats.stale_hits, stats.misses, stats.refreshes),
        (3, 1, 3, 1),
        "{stats:?}"
    );
}

#[dogpile(ttl = "1h", capacity = 64)]
fn square(n: u64) -> u64 {
    n * n
}

#[test]
fn capacity_bounds_the_keys() {
    for n in 0..10_000 {
        assert_eq!(square(n), n * n);
    }
    assert!(SQUARE.len() <= 64, "{}", SQUARE.len());
    assert!(SQUARE.stats().evictions > 0);
}

static LOADS: AtomicUsize = AtomicUsize::new(0);

#[dogpile(ttl = "1h")]
fn settings() -> Arc<Vec<String>> {
    LOADS.fetch_add(1, SeqCst);
    Arc::new(vec!["a".into()])
}

static PINGS: AtomicUsize = AtomicUsize::new(0);

/// `()`: the body runs at most once per key per ttl.
#[dogpile(ttl = "1h")]
fn ping(host: &str) {
    let _ = host;
    PINGS.fetch_add(1, SeqCst);
}

#[test]
fn no_arguments_and_no_return_value() {
    assert_eq!(settings().len(), 1);
    assert!(Arc::ptr_eq(&settings(), &settings()));
    assert_eq!(LOADS.load(SeqCst), 1);
    ping("a");
    ping("a");
    ping("b");
    assert_eq!(PINGS.load(SeqCst), 2);
}

static SUMS: AtomicUsize = AtomicUsize::new(0);

/// `_` arguments are not part of the key; `mut` arguments stay mutable in the body.
#[dogpile(ttl = "1h")]
fn sum(mut acc: u64, items: &[u64], _: &str) -> u64 {
    SUMS.fetch_add(1, SeqCst);
    for i in items {
        acc += i;
    }
    acc
}

#[test]
fn ignored_and_mut_arguments() {
    assert_eq!(sum(1, &[2, 3], "first"), 6);
    assert_eq!(sum(1, &[2, 3], "second"), 6);
    assert_eq!(SUMS.load(SeqCst), 1);
    assert_eq!(sum(1, &[2], "x"), 3);
    assert_eq!(SUMS.load(SeqCst), 2);
}

static DOWN: AtomicU64 = AtomicU64::new(0);
static FLAKY_CLOCK: LazyLock<ManualClock> = LazyLock::new(ManualClock::new);
static FLAKY_RUNS: AtomicUsize = AtomicUsize::new(0);

#[dogpile(ttl = "10s", stale_if_error = "1h", clock = FLAKY_CLOCK.clone())]
fn flaky(id: u32) -> Result<String, String> {
    FLAKY_RUNS.fetch_add(1, SeqCst);
    match DOWN.load(SeqCst) {
        0 => Ok(format!("{id}: good")),
        _ => Err("down".into()),
    }
}

#[test]
fn stale_if_error_serves_the_stale_value() {
    assert_eq!(flaky(1).unwrap(), "1: good");
    DOWN.store(1, SeqCst);
    FLAKY_CLOCK.advance(Duration::from_secs(10)); // stale: the next call refreshes, and fails
    assert_eq!(
        flaky(1).unwrap(),
        "1: good",
        "the stale value instead of the error"
    );
    let stats = FLAKY.stats();
    assert_eq!((stats.stale_hits, stats.failures), (1, 1), "{stats:?}");
    // Nothing was stored: the value is still stale, and the next call retries.
    DOWN.store(0, SeqCst);
    FLAKY_CLOCK.advance(Duration::from_secs(1));
    assert_eq!(flaky(1).unwrap(), "1: good");
    let stats = FLAKY.stats();
    assert_eq!((stats.stale_hits, stats.failures), (2, 1), "{stats:?}");
    // That refresh succeeded: the value is fresh again, the body doesn't run.
    DOWN.store(1, SeqCst);
    assert_eq!(FLAKY_RUNS.load(SeqCst), 3);
    assert_eq!(flaky(1).unwrap(), "1: good");
    assert_eq!(FLAKY_RUNS.load(SeqCst), 3, "a fresh hit");
    // A cold key has nothing stale to serve.
    assert_eq!(flaky(2), Err("down".into()));
}

static GEN_COUNTER: AtomicU64 = AtomicU64::new(0);
static GEN_CLOCK: LazyLock<ManualClock> = LazyLock::new(ManualClock::new);

#[dogpile(ttl = "20s", stale_while_revalidate = "20s", clock = GEN_CLOCK.clone())]
fn generation(id: u32) -> (u32, u64) {
    (id, GEN_COUNTER.fetch_add(1, SeqCst))
}

#[test]
fn stale_while_revalidate_bounds_staleness() {
    // Within ttl + stale_while_revalidate a stale value is refreshed like any other (a stale hit).
    assert_eq!(generation(1), (1, 0));
    GEN_CLOCK.advance(Duration::from_secs(40) - Duration::from_nanos(1));
    assert_eq!(generation(1), (1, 1));
    let stats = GENERATION.stats();
    assert_eq!((stats.misses, stats.stale_hits), (1, 1), "{stats:?}");
    // At ttl + stale_while_revalidate it is not served: the key is cold again (a miss).
    GEN_CLOCK.advance(Duration::from_secs(40));
    assert_eq!(generation(1), (1, 2));
    let stats = GENERATION.stats();
    assert_eq!((stats.misses, stats.stale_hits), (2, 1), "{stats:?}");
}

static QUOTE_CLOCK: LazyLock<ManualClock> = LazyLock::new(ManualClock::new);
static QUOTE_CALLS: AtomicUsize = AtomicUsize::new(0);
static QUOTE_GATE: LazyLock<Gate> = LazyLock::new(Gate::new);

/// A slow refresh: every run after the first blocks until the test opens the gate.
#[dogpile(ttl = "10s", clock = QUOTE_CLOCK.clone())]
fn stock_quote(symbol: &str) -> Arc<String> {
    let call = QUOTE_CALLS.fetch_add(1, SeqCst) + 1;
    if call > 1 {
        QUOTE_GATE.wait();
    }
    Arc::new(format!("{symbol} v{call}"))
}

/// The headline, through the generated wrapper: 16 threads on one stale key while the
/// refresh is slow. The body runs once; the 15 other callers return the stale value
/// without waiting for it (they all return while the body is still blocked).
#[test]
fn sixteen_callers_on_a_stale_key_one_body_call_fifteen_stale_at_once() {
    assert_eq!(*stock_quote("ACME"), "ACME v1");
    QUOTE_CLOCK.advance(Duration::from_secs(10));
    let handles: Vec<_> = (0..16)
        .map(|_| {
            thread::spawn(|| {
                let value = stock_quote("ACME");
                (value, QUOTE_GATE.is_open())
            })
        })
        .collect();
    // The gate opens only once 15 callers have returned: none of them waited for the
    // body, which is blocked on it.
    common::eventually("15 callers returned while the refresh is blocked", || {
        handles.iter().filter(|h| h.is_finished()).count() == 15
    });
    assert_eq!(QUOTE_CALLS.load(SeqCst), 2, "one body call for the refresh");
    QUOTE_GATE.open();
    let results: Vec<_> = join_all(handles)
        .into_iter()
        .map(|r| r.expect("caller panicked"))
        .collect();
    let stale_without_waiting = results
        .iter()
        .filter(|(v, opened)| **v == "ACME v1" && !opened)
        .count();
    assert_eq!(stale_without_waiting, 15);
    assert_eq!(results.iter().filter(|(v, _)| **v == "ACME v2").count(), 1);
    assert_eq!(QUOTE_CALLS.load(SeqCst), 2, "still one body call");
    let stats = STOCK_QUOTE.stats();
    assert_eq!(
        (stats.stale_hits, stats.refreshes, stats.waits),
        (16, 1, 0),
        "{stats:?}"
    );
    assert_eq!(*stock_quote("ACME"), "ACME v2", "the new value is fresh");
    assert_eq!(QUOTE_CALLS.load(SeqCst), 2, "a fresh hit runs no body");
}
