//! The attribute's freshness options on the manual clock: each value's own lifetime
//! (`ttl = |t| ..`), `none_ttl`, and the windows.

use dogpile::{dogpile, Clock, ManualClock};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::LazyLock;
use std::time::Duration;

static TOKEN_CLOCK: LazyLock<ManualClock> = LazyLock::new(ManualClock::new);
static ISSUED: AtomicU64 = AtomicU64::new(0);

#[derive(Clone, Debug)]
struct Token {
    /// When it was issued, on the test's clock.
    issued: Duration,
    valid_for: Duration,
}

/// An OAuth-style token endpoint: each token says how long it is valid.
#[dogpile(
    ttl = |t| t.valid_for,
    stale_while_revalidate = "0s",
    clock = TOKEN_CLOCK.clone()
)]
fn token(user: u32) -> Result<Token, String> {
    let n = ISSUED.fetch_add(1, SeqCst);
    Ok(Token {
        issued: TOKEN_CLOCK.now(),
        valid_for: Duration::from_millis(500 + (n * 700 + u64::from(user)) % 2000),
    })
}

#[test]
fn a_token_is_never_returned_past_its_own_expiry() {
    // 15 s of calls, every 10 ms.
    for step in 0..1500 {
        let now = TOKEN_CLOCK.now();
        let token = token(7).unwrap();
        assert!(
            now < token.issued + token.valid_for,
            "step {step}: {token:?} returned at {now:?}, past its expiry"
        );
        TOKEN_CLOCK.advance(Duration::from_millis(10));
    }
    let stats = TOKEN.stats();
    assert_eq!(stats.stale_served, 0, "{stats:?}");
    let issued = ISSUED.load(SeqCst);
    assert_eq!(
        stats.misses, issued,
        "one creation per token lifetime: {stats:?}"
    );
    assert!((6..=30).contains(&issued), "{issued} tokens in 15 s");
}

static ROW_CLOCK: LazyLock<ManualClock> = LazyLock::new(ManualClock::new);
static LOOKUPS: AtomicUsize = AtomicUsize::new(0);

/// A row that does not exist yet: `None` is kept a second, a found row an hour.
#[dogpile(ttl = "1h", none_ttl = "1s", clock = ROW_CLOCK.clone())]
fn find(id: u32) -> Option<String> {
    LOOKUPS.fetch_add(1, SeqCst);
    (id > 1000).then(|| format!("row {id}"))
}

#[test]
fn none_ttl_makes_one_lookup_per_second_for_a_missing_row() {
    for _ in 0..100 {
        assert_eq!(find(7), None);
        ROW_CLOCK.advance(Duration::from_millis(100));
    }
    let lookups = LOOKUPS.load(SeqCst);
    assert!((9..=11).contains(&lookups), "{lookups} lookups in 10 s");
    // A found row keeps its own (long) lifetime.
    assert_eq!(find(2000).as_deref(), Some("row 2000"));
    ROW_CLOCK.advance(Duration::from_secs(60));
    let before = LOOKUPS.load(SeqCst);
    assert_eq!(find(2000).as_deref(), Some("row 2000"));
    assert_eq!(LOOKUPS.load(SeqCst), before, "a hit");
}

static FLAKY_CLOCK: LazyLock<ManualClock> = LazyLock::new(ManualClock::new);
static ATTEMPTS: AtomicUsize = AtomicUsize::new(0);

#[dogpile(
    ttl = "1s",
    stale_if_error = "1h",
    retry_backoff = "100ms..5s",
    clock = FLAKY_CLOCK.clone()
)]
fn quote(symbol: &str) -> Result<u64, String> {
    match ATTEMPTS.fetch_add(1, SeqCst) {
        0 => Ok(symbol.len() as u64),
        _ => Err("backend down".into()),
    }
}

#[test]
fn a_failing_refresh_backs_off_and_serves_the_stale_value() {
    assert_eq!(quote("ACME"), Ok(4));
    FLAKY_CLOCK.advance(Duration::from_secs(1));
    for _ in 0..1000 {
        assert_eq!(quote("ACME"), Ok(4));
        FLAKY_CLOCK.advance(Duration::from_millis(10));
    }
    let attempts = ATTEMPTS.load(SeqCst) - 1;
    assert!(
        (5..16).contains(&attempts),
        "{attempts} refresh attempts in 10 s"
    );
    assert_eq!(QUOTE.stats().backoff_answers as usize, 1000 - attempts);
}
