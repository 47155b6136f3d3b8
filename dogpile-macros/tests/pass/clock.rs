#![deny(warnings)]
//! `clock = EXPR`: a `dogpile::ManualClock` shared with the test makes time move only
//! when the test says so.
use dogpile::{dogpile, ManualClock};
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::LazyLock;
use std::time::Duration;

static CLOCK: LazyLock<ManualClock> = LazyLock::new(ManualClock::new);
static CALLS: AtomicU32 = AtomicU32::new(0);

#[dogpile(ttl = "10s", clock = CLOCK.clone())]
fn lookup(id: u32) -> (u32, u32) {
    (id, CALLS.fetch_add(1, SeqCst))
}

/// Any expression works, commas outside parentheses included; it runs once, when the
/// cache is first used.
#[dogpile(ttl = "1m", stale_while_revalidate = "1m", clock = Option::<ManualClock>::None.unwrap_or_else(|| CLOCK.clone()))]
fn other(id: u32) -> u32 {
    id
}

/// A clock of one's own.
struct Frozen;

impl dogpile::Clock for Frozen {
    fn now(&self) -> Duration {
        Duration::from_secs(7)
    }
}

#[dogpile(ttl = "1ms", clock = Frozen, capacity = 8)]
fn frozen(id: u32) -> u32 {
    CALLS.fetch_add(1, SeqCst);
    id
}

#[test]
fn runs() {
    assert_eq!(lookup(1), (1, 0));
    CLOCK.advance(Duration::from_secs(9));
    assert_eq!(lookup(1), (1, 0), "fresh for 10s of the manual clock");
    CLOCK.advance(Duration::from_secs(1));
    assert_eq!(lookup(1), (1, 1), "stale: this caller refreshed");
    assert_eq!(LOOKUP.stats().refreshes, 1);
    assert_eq!(other(3), 3);

    let before = CALLS.load(SeqCst);
    assert_eq!(frozen(5), 5);
    assert_eq!(frozen(5), 5, "time never passes");
    assert_eq!(CALLS.load(SeqCst), before + 1);
}
