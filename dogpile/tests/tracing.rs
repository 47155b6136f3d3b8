//! The `tracing` feature's events, recorded by a subscriber of our own: one event per
//! creation and per refresh (R3), one per failure (R5) with the error's `Display`,
//! one per eviction batch, and none on a hit.
#![cfg(feature = "tracing")]

use dogpile::{Cache, ManualClock};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// One recorded event: its level, target and fields (as text).
#[derive(Debug, Clone)]
struct Recorded {
    level: tracing::Level,
    target: String,
    fields: BTreeMap<String, String>,
}

impl Recorded {
    fn field(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .unwrap_or_else(|| panic!("no field {name} in {self:?}"))
    }
}

/// Records every event; has no spans.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Recorded>>>);

impl Recorder {
    /// Takes the events recorded so far.
    fn take(&self) -> Vec<Recorded> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().push(Recorded {
            level: *event.metadata().level(),
            target: event.metadata().target().to_string(),
            fields,
        });
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Runs `test` with a fresh recorder as this thread's subscriber.
fn recording(test: impl FnOnce(&Recorder)) {
    let recorder = Recorder::default();
    tracing::subscriber::with_default(recorder.clone(), || test(&recorder));
}

fn cache(clock: &ManualClock) -> dogpile::CacheBuilder<u32, u32> {
    Cache::builder()
        .name("reports")
        .ttl(Duration::from_secs(10))
        .clock(clock.clone())
}

#[test]
fn one_event_per_creation_and_per_expiry_and_none_on_hits() {
    recording(|events| {
        let clock = ManualClock::new();
        let cache = cache(&clock).build();
        cache.get_with(1, || 1);
        let created = events.take();
        assert_eq!(created.len(), 1, "{created:?}");
        let created = &created[0];
        assert_eq!(
            (created.level, created.target.as_str()),
            (tracing::Level::DEBUG, "dogpile")
        );
        assert_eq!(created.field("cache"), "reports");
        assert_eq!(created.field("outcome"), "created");
        assert_eq!(created.field("stale_served"), "false");

        for expiry in 1..=3 {
            for _ in 0..10 {
                cache.get_with(1, || unreachable!("fresh"));
            }
            assert!(events.take().is_empty(), "no event on a hit");
            clock.advance(Duration::from_secs(10));
            cache.get_with(1, || 1 + expiry);
            let refreshed = events.take();
            assert_eq!(refreshed.len(), 1, "one event per expiry: {refreshed:?}");
            assert_eq!(refreshed[0].field("outcome"), "refreshed");
            assert_eq!(refreshed[0].field("stale_served"), "true");
            assert!(refreshed[0].field("duration_ms").parse::<f64>().unwrap() >= 0.0);
        }
        assert_eq!(cache.get_with(1, || 0), 4);
        assert!(events.take().is_empty(), "no event on a hit");
    });
}

#[derive(Clone, Debug)]
struct BackendDown {
    status: u16,
}

impl fmt::Display for BackendDown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "backend down (status {})", self.status)
    }
}

#[test]
fn a_failure_event_carries_the_error_display() {
    recording(|events| {
        let clock = ManualClock::new();
        let cache = cache(&clock)
            .stale_if_error(Duration::from_secs(60))
            .build();
        cache.get_with(1, || 1);
        clock.advance(Duration::from_secs(10));
        events.take();

        // What the `#[dogpile]` expansion does: note the error where its type is known.
        let outcome = cache.try_get_with(1, || {
            dogpile::__note_error!(Err(BackendDown { status: 503 }))
        });
        assert_eq!(
            outcome.unwrap(),
            1,
            "stale_if_error serves the stale value (R5)"
        );
        let failed = events.take();
        assert_eq!(failed.len(), 1, "{failed:?}");
        let failed = &failed[0];
        assert_eq!(failed.level, tracing::Level::WARN);
        assert_eq!(failed.field("cache"), "reports");
        assert_eq!(failed.field("outcome"), "error");
        assert_eq!(failed.field("error"), "backend down (status 503)");
        assert_eq!(failed.field("stale_served"), "true");
        assert_eq!(failed.field("stale_if_error"), "true");

        // An error without `Display` (or not noted) is named by its type.
        #[derive(Clone)]
        struct Opaque;
        let outcome = cache.try_get_with(1, || dogpile::__note_error!(Err(Opaque)));
        assert!(outcome.is_ok());
        let failed = events.take();
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert!(
            failed[0].field("error").contains("Opaque"),
            "{:?}",
            failed[0]
        );
    });
}

#[test]
fn a_panicking_creator_is_a_failure_event() {
    recording(|events| {
        let clock = ManualClock::new();
        let cache = cache(&clock).build();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            cache.get_with(1, || panic!("boom"))
        }));
        assert!(panicked.is_err());
        let failed = events.take();
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(failed[0].field("outcome"), "panic");
        assert_eq!(failed[0].field("stale_served"), "false");
    });
}

#[test]
fn one_event_per_eviction_batch() {
    recording(|events| {
        let clock = ManualClock::new();
        let cache = cache(&clock).capacity(4).build();
        for key in 0..4 {
            cache.get_with(key, || key);
        }
        events.take();
        cache.get_with(4, || 4); // needs room: one batch goes
        let evicted: Vec<_> = events
            .take()
            .into_iter()
            .filter(|e| e.fields.contains_key("evicted"))
            .collect();
        assert_eq!(evicted.len(), 1, "{evicted:?}");
        assert_eq!(evicted[0].field("cache"), "reports");
        assert_eq!(evicted[0].field("reason"), "capacity");
        let count: u64 = evicted[0].field("evicted").parse().unwrap();
        assert_eq!(count, cache.stats().evictions);
        assert!(count >= 1);
    });
}

#[test]
fn a_dropped_creator_future_is_a_cancelled_failure() {
    use std::future::Future;
    use std::task::{Context, Waker};

    recording(|events| {
        let clock = ManualClock::new();
        let cache = cache(&clock).build();
        {
            let mut call = std::pin::pin!(cache.get_with_async(1, std::future::pending()));
            let polled = call.as_mut().poll(&mut Context::from_waker(Waker::noop()));
            assert!(polled.is_pending());
        } // dropped mid-creation
        let failed = events.take();
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(failed[0].field("outcome"), "cancelled");
        assert_eq!(cache.stats().failures, 1);
    });
}

#[test]
fn a_background_refresh_is_traced_where_it_runs() {
    let recorder = Recorder::default();
    let dispatch = tracing::Dispatch::new(recorder.clone());
    let (ran, refreshes) = std::sync::mpsc::channel();
    let clock = ManualClock::new();
    let on_refresh_thread = dispatch.clone();
    let cache = Cache::<u32, u32>::builder()
        .name("reports")
        .ttl(Duration::from_secs(10))
        .clock(clock.clone())
        .background_refresh()
        // Each refresh runs on its own thread, under the recording subscriber.
        .refresh_executor(move |task| {
            let (dispatch, ran) = (on_refresh_thread.clone(), ran.clone());
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || task.run());
                ran.send(()).unwrap();
            });
        })
        .build();
    // This thread records too: with a single dispatcher, tracing asks the current
    // thread's subscriber whether an event is of interest, and remembers the answer.
    tracing::dispatcher::with_default(&dispatch, || {
        cache.get_with(1, || 1); // cold, inline, on this thread
        assert_eq!(recorder.take()[0].field("outcome"), "created");
        clock.advance(Duration::from_secs(10));
        assert_eq!(cache.get_with(1, || 2), 1, "the stale value at once (R10)");
    });
    refreshes
        .recv_timeout(Duration::from_secs(10))
        .expect("the refresh ran within 10 s");
    let refreshed = recorder.take();
    assert_eq!(refreshed.len(), 1, "{refreshed:?}");
    assert_eq!(refreshed[0].field("cache"), "reports");
    assert_eq!(refreshed[0].field("outcome"), "refreshed");
    assert_eq!(refreshed[0].field("stale_served"), "true");
    assert_eq!(cache.get_with(1, || 3), 2);
}

#[test]
fn an_unnamed_cache_is_named_by_its_types() {
    recording(|events| {
        let cache = Cache::<u32, String>::new(Duration::from_secs(10));
        cache.get_with(1, String::new);
        let created = events.take();
        assert_eq!(
            created[0].field("cache"),
            "Cache<u32, alloc::string::String>"
        );
    });
}

#[test]
fn a_lone_dogpile_is_named_by_its_type() {
    recording(|events| {
        let lock = dogpile::Dogpile::<u8>::new(Duration::from_secs(10));
        lock.acquire(|| 1);
        lock.acquire(|| 2);
        let created = events.take();
        assert_eq!(created.len(), 1, "one creation, then a hit: {created:?}");
        assert_eq!(created[0].field("cache"), "Dogpile");
    });
}

#[cfg(feature = "macros")]
mod attribute {
    use super::recording;
    use dogpile::dogpile;

    #[dogpile(ttl = "1h")]
    fn square(n: u64) -> u64 {
        n * n
    }

    #[dogpile(ttl = "1h")]
    fn lookup(id: u32) -> Result<u32, super::BackendDown> {
        Err(super::BackendDown {
            status: 500 + id as u16,
        })
    }

    #[dogpile(ttl = "1h")]
    async fn lookup_async(id: u32) -> Result<u32, super::BackendDown> {
        Err(super::BackendDown {
            status: 500 + id as u16,
        })
    }

    #[test]
    fn a_memoized_fns_failure_event_carries_its_errors_display() {
        recording(|events| {
            assert!(lookup(3).is_err());
            let failed = events.take();
            assert_eq!(failed.len(), 1, "{failed:?}");
            assert_eq!(failed[0].field("cache"), "tracing::attribute::lookup");
            assert_eq!(failed[0].field("error"), "backend down (status 503)");

            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            assert!(runtime.block_on(lookup_async(4)).is_err());
            let failed = events.take();
            assert_eq!(failed.len(), 1, "{failed:?}");
            assert_eq!(failed[0].field("error"), "backend down (status 504)");
        });
    }

    #[test]
    fn a_memoized_fn_names_its_cache_after_the_fn() {
        recording(|events| {
            assert_eq!(square(7), 49);
            let created = events.take();
            assert_eq!(created.len(), 1, "{created:?}");
            assert_eq!(created[0].field("cache"), "tracing::attribute::square");
        });
    }
}

#[test]
fn an_early_refresh_and_a_key_entering_back_off_each_have_an_event() {
    recording(|events| {
        let clock = ManualClock::new();
        let cache = cache(&clock)
            .refresh_ahead(Duration::from_secs(2))
            .retry_backoff(Duration::from_secs(1), Duration::from_secs(4))
            .build();
        cache.get_with(1, || 1);
        clock.advance(Duration::from_secs(9));
        events.take();
        assert_eq!(cache.get_with(1, || 2), 2);
        let early = events.take();
        assert_eq!(early[0].field("outcome"), "early_refresh", "{early:?}");
        assert_eq!(early[0].field("cache"), "reports");
        assert_eq!(early[0].level, tracing::Level::DEBUG);

        assert_eq!(cache.try_get_with(2, || Err::<u32, _>("down")), Err("down"));
        let failed = events.take();
        let backing_off: Vec<_> = failed
            .iter()
            .filter(|e| e.field("outcome") == "backing_off")
            .collect();
        assert_eq!(backing_off.len(), 1, "{failed:?}");
        assert_eq!(backing_off[0].level, tracing::Level::INFO);
        // Answered from the back-off: no creation, no event.
        assert_eq!(cache.try_get_with(2, || Ok::<_, &str>(7)), Err("down"));
        assert!(events.take().is_empty());
    });
}
