//! Unit tests of the slot driver and the stamp.

use super::*;
use crate::clock::ManualClock;
use std::collections::VecDeque;
use std::convert::Infallible;

/// A store that answers loads from a script: it plays "someone else published
/// between our look-up and our claim", the window R4 is about.
struct Scripted {
    loads: Mutex<VecDeque<Option<Stamped<u32>>>>,
    published: Mutex<Vec<u32>>,
}

impl Store for Scripted {
    type Value = u32;
    fn load(&self) -> Option<Stamped<u32>> {
        self.loads.lock().pop_front().expect("unscripted load")
    }
    fn publish(&self, value: u32, _: u64, _: Provenance) {
        self.published.lock().push(value);
    }
}

fn env(clock: &ManualClock) -> Env {
    Env {
        policy: Policy::ttl(10),
        clock: ClockHandle::custom(clock.clone()),
        stats: Arc::new(Counters::default()),
        name: "test".into(),
    }
}

fn now(clock: &ManualClock) -> u64 {
    crate::clock::to_nanos(crate::Clock::now(clock))
}

#[test]
fn r4_a_stale_claimant_that_finds_a_fresh_value_creates_nothing() {
    let clock = ManualClock::new();
    let t = now(&clock);
    let store = Scripted {
        loads: Mutex::new(VecDeque::from([
            Some(Stamped::new(1, t - 20)),
            Some(Stamped::new(2, t + 10)),
        ])),
        published: Mutex::new(Vec::new()),
    };
    let env = env(&clock);
    let outcome = get(
        &Control::new(false),
        &store,
        &env,
        || -> Result<u32, Infallible> {
            panic!("R4 broken: the claimant created although a fresh value was there")
        },
        How::BLOCK,
    );
    assert!(matches!(outcome, Step::Done(Ok(Served { value: 2, .. }))));
    assert!(store.published.lock().is_empty());
    assert_eq!(env.stats.snapshot().refreshes, 0);
}

#[test]
fn r4_a_cold_claimant_that_finds_a_fresh_value_creates_nothing() {
    let clock = ManualClock::new();
    let t = now(&clock);
    let store = Scripted {
        loads: Mutex::new(VecDeque::from([None, Some(Stamped::new(2, t + 10))])),
        published: Mutex::new(Vec::new()),
    };
    let outcome = get(
        &Control::new(false),
        &store,
        &env(&clock),
        || -> Result<u32, Infallible> { panic!("R4 broken on the cold path") },
        How::BLOCK,
    );
    assert!(matches!(outcome, Step::Done(Ok(Served { value: 2, .. }))));
}

#[test]
fn a_stamp_packs_instant_and_invalidation_with_no_tag() {
    assert_eq!(std::mem::size_of::<Option<Stamped<u64>>>(), 16);
    let mut stamped = Stamped::new(7u64, 12_345);
    assert_eq!((stamped.expires(), stamped.invalidated()), (12_345, false));
    stamped.invalidate();
    assert_eq!((stamped.expires(), stamped.invalidated()), (12_345, true));
    assert_eq!(Stamped::new((), 0).expires(), 1);
    let far = Stamped::new((), u64::MAX);
    assert_eq!(
        (far.expires(), far.invalidated()),
        (u64::MAX, false),
        "never"
    );
}

#[test]
fn classify_saturates() {
    // A huge window or a clock behind the stamp never overflows.
    let policy = Policy {
        stale_while_revalidate: Some(u64::MAX),
        ..Policy::ttl(u64::MAX)
    };
    assert_eq!(
        policy.classify(u64::MAX, false, u64::MAX - 1),
        Freshness::Fresh
    );
    assert_eq!(policy.classify(5, false, u64::MAX - 1), Freshness::Stale);
    assert_eq!(Policy::ttl(10).classify(100, false, 50), Freshness::Fresh);
}
