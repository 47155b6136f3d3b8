//! Loom models of one slot's state machine (`slot/`): every interleaving of 2–3
//! threads, up to a preemption bound, of the shipped code running on loom's mutex and
//! condvar (see `sync.rs`).
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target-loom \
//!     cargo test -p dogpile --lib --release loom -- --nocapture --test-threads=1
//! ```
//!
//! Each model prints the number of interleavings it explored. The preemption bound is
//! 4 unless `LOOM_MAX_PREEMPTIONS` says otherwise.
//!
//! Invariants asserted in every model:
//! - **one creator**: at most one creator in flight per key (a loom counter the creator
//!   raises and lowers, so the window between the two is explored);
//! - **no lost wake-up**: every thread returns (loom fails a model in which every live
//!   thread is blocked);
//! - **monotonic**: a value is never replaced by an older one. A creator takes a serial
//!   when it starts; the store checks that serials only grow.
//!
//! Models drive the one slot driver (`slot::drive`, through `slot::get` blocking and
//! guarded, awaiting under loom's `block_on` as the async calls do, and with the
//! `Pooled` creator that hands a refresh to an executor), the
//! refresh pool's queue and workers, the fence and `try_retire` directly over small
//! stores built on `crate::sync::Mutex`, so the model checks exactly the code that
//! `Dogpile`, `SyncReaderDogpile` and `Cache` run.
//! (`Cache` itself sits on DashMap, whose locks loom cannot see; `Map` below does what
//! it does with one key, under the same lock order.)

use crate::clock::{Clock, ClockHandle};
use crate::executor::{run_blocking, Executor, Pool, RefreshTask};
use crate::slot::{
    self, take_creator, Control, Env, How, Policy, Pooled, Provenance, Served, Stamped, Step,
    Store, Waiting,
};
use crate::stats::{Counters, Stats};
use crate::sync::Mutex;
use loom::sync::atomic::AtomicUsize as LoomUsize;
use loom::thread;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Model time never moves: a value stamped `NOW - TTL` is stale, one stamped by a
/// creator (`NOW`) is fresh.
const NOW: u64 = 1_000_000;
const TTL: u64 = 100;

struct FixedClock;

impl Clock for FixedClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(NOW)
    }
}

fn env() -> Env {
    Env {
        policy: Policy::ttl(TTL),
        clock: ClockHandle::custom(FixedClock),
        stats: Arc::new(Counters::default()),
        name: "loom".into(),
    }
}

/// Runs `model` under loom and prints how many interleavings it explored.
fn check(name: &str, model: impl Fn() + Sync + Send + 'static) {
    quiet_injected_panics();
    let mut builder = loom::model::Builder::new();
    let bound = *builder.preemption_bound.get_or_insert(4);
    let iterations = Arc::new(AtomicUsize::new(0));
    let counted = iterations.clone();
    let started = Instant::now();
    builder.check(move || {
        counted.fetch_add(1, SeqCst);
        model();
    });
    println!(
        "loom model {name}: {} interleavings explored (preemption bound {bound}) in {:.1?}",
        iterations.load(SeqCst),
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------
// Creators and the invariants they check

const INJECTED_PANIC: &str = "loom model: injected creator panic";

/// Keeps the thousands of injected panics out of the output; real failures still print.
fn quiet_injected_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&INJECTED_PANIC) {
                previous(info);
            }
        }));
    });
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    Err,
    Panic,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Injected;

/// Per-key bookkeeping shared by the creators and the store.
struct Probe {
    /// Creators running right now: never above one.
    in_flight: LoomUsize,
    /// Serials handed out; a creator's value is its serial.
    started: AtomicU64,
    /// Creator runs that returned `Err` or panicked.
    failed: AtomicU64,
    /// Threads between taking a read guard and dropping it (R8 models).
    readers_inside: AtomicUsize,
    /// Every value the key ever held, in order (the initial one included).
    published: std::sync::Mutex<Vec<u64>>,
}

impl Probe {
    /// A probe for a key whose first value (if any) is `initial`, serial 0.
    fn new(initial: Option<u64>) -> Arc<Self> {
        Arc::new(Probe {
            in_flight: LoomUsize::new(0),
            started: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            readers_inside: AtomicUsize::new(0),
            published: std::sync::Mutex::new(initial.into_iter().collect()),
        })
    }

    fn creator(
        self: &Arc<Self>,
        outcome: Outcome,
    ) -> impl FnOnce() -> Result<u64, Injected> + Send + 'static {
        self.creator_then(outcome, || {})
    }

    /// A creator that runs `inside` (e.g. takes the write lock) before it finishes.
    fn creator_then(
        self: &Arc<Self>,
        outcome: Outcome,
        inside: impl FnOnce() + Send + 'static,
    ) -> impl FnOnce() -> Result<u64, Injected> + Send + 'static {
        let probe = self.clone();
        move || {
            let before = probe.in_flight.fetch_add(1, SeqCst);
            assert_eq!(before, 0, "one creator: two creators in flight for one key");
            let serial = probe.started.fetch_add(1, SeqCst) + 1;
            inside();
            probe.in_flight.fetch_sub(1, SeqCst);
            match outcome {
                Outcome::Ok => Ok(serial),
                Outcome::Err => {
                    probe.failed.fetch_add(1, SeqCst);
                    Err(Injected)
                }
                Outcome::Panic => {
                    probe.failed.fetch_add(1, SeqCst);
                    std::panic::panic_any(INJECTED_PANIC)
                }
            }
        }
    }

    /// Called by a store, under its lock, for every value it publishes.
    fn on_publish(&self, value: u64) {
        assert_eq!(
            self.readers_inside.load(SeqCst),
            0,
            "R8: a value was published while a reader held a guard"
        );
        let mut published = self.published.lock().unwrap();
        if let Some(&last) = published.last() {
            assert!(
                value > last,
                "monotonic: value {value} replaced the newer {last}"
            );
        }
        published.push(value);
    }

    fn creations(&self) -> u64 {
        self.started.load(SeqCst)
    }

    fn failures(&self) -> u64 {
        self.failed.load(SeqCst)
    }

    fn was_published(&self, value: u64) -> bool {
        self.published.lock().unwrap().contains(&value)
    }

    fn last_published(&self) -> Option<u64> {
        self.published.lock().unwrap().last().copied()
    }
}

/// Runs a call whose creator may panic; `None` when the panic reached this caller.
fn catching<T>(call: impl FnOnce() -> T) -> Option<T> {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(out) => Some(out),
        Err(panic) => {
            assert_eq!(
                panic.downcast_ref::<&str>(),
                Some(&INJECTED_PANIC),
                "an unexpected panic"
            );
            None
        }
    }
}

/// The claim was released: nobody holds it once every thread is done.
fn assert_released(control: &Arc<Control>) {
    assert!(!control.claimed(), "a claim was never released");
}

fn assert_calls_counted(stats: Stats, calls: u64) {
    assert_eq!(stats.calls(), calls, "every call counted once: {stats:?}");
}

// ---------------------------------------------------------------------------------
// Stores

/// The value of a lone slot (as in `Dogpile`), on a loom mutex.
struct Cell {
    value: Mutex<Option<Stamped<u64>>>,
    probe: Arc<Probe>,
}

impl Cell {
    /// A cell holding serial 0, stale, or nothing.
    fn new(stale_value: bool) -> Arc<Self> {
        let initial = stale_value.then(|| Stamped::new(0, NOW - TTL));
        Arc::new(Cell {
            probe: Probe::new(initial.as_ref().map(|s| s.value)),
            value: Mutex::new(initial),
        })
    }

    fn current(&self) -> Option<u64> {
        self.value.lock().as_ref().map(|s| s.value)
    }
}

#[derive(Clone)]
struct CellStore(Arc<Cell>);

impl Store for CellStore {
    type Value = u64;

    fn load(&self) -> Option<Stamped<u64>> {
        self.0.value.lock().clone()
    }

    fn publish(&self, value: u64, created: u64, _: Provenance) {
        let mut slot = self.0.value.lock();
        self.0.probe.on_publish(value);
        *slot = Some(Stamped::new(value, created + TTL));
    }
}

/// `slot::get` the way `Dogpile::try_acquire` calls it.
fn get(
    control: &Arc<Control>,
    cell: &Arc<Cell>,
    env: &Env,
    create: impl FnOnce() -> Result<u64, Injected>,
) -> Result<u64, Injected> {
    get_as(control, cell, env, create, How::BLOCK)
}

/// [`get`], blocking or awaiting as `how` says.
fn get_as(
    control: &Arc<Control>,
    cell: &Arc<Cell>,
    env: &Env,
    create: impl FnOnce() -> Result<u64, Injected>,
    how: How,
) -> Result<u64, Injected> {
    let store = CellStore(cell.clone());
    match drive(control, &store, env, create, how) {
        Step::Done(result) => result.map(|served| served.value),
        Step::Retired => unreachable!("a lone slot is never retired"),
    }
}

/// One call through the slot driver: blocking (`slot::get`, as `Dogpile` and
/// `Cache::get_with` run it), or awaiting as `Cache::get_with_async` runs it, with an
/// async creator, the call's future polled by loom's `block_on`. That parks the thread
/// while the future is pending until its waker is woken, so a waiter that is never
/// woken (a lost wake-up between its registration, its re-check and the creator's
/// release) leaves every thread blocked, which loom reports as a deadlock.
fn drive<S: Store<Value = u64>>(
    control: &Arc<Control>,
    store: &S,
    env: &Env,
    create: impl FnOnce() -> Result<u64, Injected>,
    how: How,
) -> Step<Result<Served<u64>, Injected>> {
    match how.waiting {
        Waiting::Block => slot::get(control, store, env, create, how),
        Waiting::Await => {
            let mut creator = Some(slot::InCall(async move { create() }));
            loom::future::block_on(slot::drive(control, store, env, &mut creator, how))
        }
    }
}

/// A one-key `Cache`: entries come and go, each with its own control, and a store
/// reads and writes an entry only while it still belongs to its control. Locks are
/// taken in `Cache`'s order: the map, then a control's state.
struct Map {
    entry: Mutex<Option<Entry>>,
    probe: Arc<Probe>,
}

struct Entry {
    value: Option<Stamped<u64>>,
    /// Attached while a call uses the slot, as in `Cache`.
    control: Option<Arc<Control>>,
}

impl Entry {
    fn owned_by(&self, control: &Arc<Control>) -> bool {
        self.control
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, control))
    }
}

struct EntryStore {
    map: Arc<Map>,
    control: Arc<Control>,
}

impl Store for EntryStore {
    type Value = u64;

    fn load(&self) -> Option<Stamped<u64>> {
        match &*self.map.entry.lock() {
            Some(entry) if entry.owned_by(&self.control) => entry.value.clone(),
            _ => None,
        }
    }

    fn publish(&self, value: u64, created: u64, _: Provenance) {
        if let Some(entry) = &mut *self.map.entry.lock() {
            if entry.owned_by(&self.control) {
                self.map.probe.on_publish(value);
                entry.value = Some(Stamped::new(value, created + TTL));
            }
        }
    }

    /// `Cache`'s detach: the last call to leave an idle slot takes its control away.
    fn release(self) {
        let mut entry = self.map.entry.lock();
        if let Some(entry) = entry.as_mut() {
            if entry.owned_by(&self.control) && Arc::strong_count(&self.control) == 2 {
                entry.control = None;
            }
        }
    }
}

impl Map {
    /// A map whose one entry holds serial 0, stale.
    fn with_stale_value() -> Arc<Self> {
        Arc::new(Map {
            entry: Mutex::new(Some(Entry {
                value: Some(Stamped::new(0, NOW - TTL)),
                control: None,
            })),
            probe: Probe::new(Some(0)),
        })
    }

    /// `Cache::control_for`.
    fn control(&self) -> Arc<Control> {
        let mut entry = self.entry.lock();
        let entry = entry.get_or_insert_with(|| Entry {
            value: None,
            control: None,
        });
        entry
            .control
            .get_or_insert_with(|| Control::new(false))
            .clone()
    }

    /// `Cache::try_get_with`'s slow path.
    fn get(
        self: &Arc<Self>,
        env: &Env,
        create: impl FnOnce() -> Result<u64, Injected>,
    ) -> Result<u64, Injected> {
        self.get_as(env, create, How::BLOCK)
    }

    /// `Cache`'s per-key loop, blocking or awaiting as `how` says.
    fn get_as(
        self: &Arc<Self>,
        env: &Env,
        create: impl FnOnce() -> Result<u64, Injected>,
        how: How,
    ) -> Result<u64, Injected> {
        let mut create = Some(create);
        loop {
            let control = self.control();
            let store = EntryStore {
                map: self.clone(),
                control: control.clone(),
            };
            let create = || take_creator(&mut create)();
            let step = drive(&control, &store, env, create, how);
            drop(control);
            store.release();
            match step {
                Step::Done(result) => return result.map(|served| served.value),
                Step::Retired => continue,
            }
        }
    }

    /// `Cache::remove`: retire an idle entry; clear the value of a busy one.
    fn remove(&self) -> Option<u64> {
        let mut slot = self.entry.lock();
        let entry = slot.as_mut()?;
        let idle = entry.control.as_ref().is_none_or(|c| c.try_retire());
        let removed = if idle {
            slot.take().and_then(|entry| entry.value)
        } else {
            entry.value.take()
        };
        removed.map(|s| s.value)
    }

    /// `Cache::invalidate`.
    fn invalidate(&self) {
        if let Some(Entry {
            value: Some(stamped),
            ..
        }) = &mut *self.entry.lock()
        {
            stamped.invalidate();
        }
    }

    fn current(&self) -> Option<(Option<Arc<Control>>, Option<u64>)> {
        let entry = self.entry.lock();
        let entry = entry.as_ref()?;
        Some((entry.control.clone(), entry.value.as_ref().map(|s| s.value)))
    }
}

// ---------------------------------------------------------------------------------
// R1: cold start

/// Three callers on an empty slot: one creates, two wait and get its value.
#[test]
fn loom_cold_start_with_waiters() {
    check("cold_start_with_waiters", || {
        let (control, cell, env) = (Control::new(false), Cell::new(false), env());
        let spawn_caller = || {
            let (control, cell, env) = (control.clone(), cell.clone(), env.clone());
            thread::spawn(move || get(&control, &cell, &env, cell.probe.creator(Outcome::Ok)))
        };
        let (a, b) = (spawn_caller(), spawn_caller());
        let mine = get(&control, &cell, &env, cell.probe.creator(Outcome::Ok));
        let results = [mine, a.join().unwrap(), b.join().unwrap()];

        assert_eq!(cell.probe.creations(), 1, "R1: exactly one creation");
        for result in results {
            assert_eq!(result, Ok(1), "R1: every caller gets the one value");
        }
        assert_eq!(cell.current(), Some(1));
        assert_released(&control);
        let stats = env.stats.snapshot();
        assert_calls_counted(stats, 3);
        assert_eq!(stats.failures, 0);
    });
}

/// R1 with async waiters: a blocking caller and two awaiting ones on an empty slot. One
/// creates (an awaiting one too: its creator is a future), the others wait without
/// blocking their thread and are woken by the release (no lost wake-up: loom would
/// report the deadlock), and every caller gets the one value.
#[test]
fn loom_cold_start_with_async_waiters() {
    check("cold_start_with_async_waiters", || {
        let (control, cell, env) = (Control::new(false), Cell::new(false), env());
        let spawn_async_caller = || {
            let (control, cell, env) = (control.clone(), cell.clone(), env.clone());
            let create = cell.probe.creator(Outcome::Ok);
            thread::spawn(move || get_as(&control, &cell, &env, create, How::AWAIT))
        };
        let (a, b) = (spawn_async_caller(), spawn_async_caller());
        let mine = get(&control, &cell, &env, cell.probe.creator(Outcome::Ok));
        let results = [mine, a.join().unwrap(), b.join().unwrap()];

        assert_eq!(cell.probe.creations(), 1, "R1: exactly one creation");
        for result in results {
            assert_eq!(result, Ok(1), "R1: every caller gets the one value");
        }
        assert_released(&control);
        let stats = env.stats.snapshot();
        assert_calls_counted(stats, 3);
        assert!(
            stats.waits <= 2,
            "only callers that found a creation waited: {stats:?}"
        );
    });
}

/// What a caller of a cold slot got.
#[derive(Debug)]
enum Got {
    Value(u64),
    /// Its own creator's failure, or (R1) a clone of the `Err` it waited for.
    Failure,
}

fn got(call: impl FnOnce() -> Result<u64, Injected>) -> Got {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(value)) => Got::Value(value),
        Ok(Err(Injected)) => Got::Failure,
        Err(panic) => {
            let message = panic.downcast_ref::<&str>().copied().unwrap_or_default();
            assert_eq!(message, INJECTED_PANIC, "R1: only the creator's own panic");
            Got::Failure
        }
    }
}

/// Three callers on a cold slot, one with a failing creator: the callers that waited
/// for a creation that returned `Err` share it (R1) instead of creating one after
/// another; after a panic one of them takes over; any other caller creates at most
/// once, and nothing stays claimed.
fn cold_failure_is_shared(failure: Outcome, others: How) {
    let (control, cell, env) = (Control::new(false), Cell::new(false), env());
    let failing = {
        let (control, cell, env) = (control.clone(), cell.clone(), env.clone());
        thread::spawn(move || got(|| get(&control, &cell, &env, cell.probe.creator(failure))))
    };
    let other = {
        let (control, cell, env) = (control.clone(), cell.clone(), env.clone());
        let create = cell.probe.creator(Outcome::Ok);
        thread::spawn(move || got(|| get_as(&control, &cell, &env, create, others)))
    };
    let mine = got(|| {
        get_as(
            &control,
            &cell,
            &env,
            cell.probe.creator(Outcome::Ok),
            others,
        )
    });
    let failing = failing.join().unwrap();
    let others = [mine, other.join().unwrap()];

    let failed = cell.probe.failures();
    let succeeded = cell.probe.creations() - failed;
    assert!(
        failed <= 1 && succeeded <= 1,
        "R1: one creation at a time, one success"
    );
    match failing {
        Got::Failure => assert_eq!(failed, 1),
        // It came late: someone else's value, its creator never ran.
        Got::Value(value) => assert_eq!((value, failed), (cell.current().unwrap(), 0)),
    }
    let mut shared = 0;
    for result in others {
        match result {
            Got::Value(value) => assert!(cell.probe.was_published(value), "served {value}"),
            // R1: an `Err` is shared with its waiters; a panic reaches its own caller
            // only, and a waiter takes over with its own creator.
            Got::Failure => {
                assert_eq!((failure, failed), (Outcome::Err, 1));
                shared += 1;
            }
        }
    }
    assert_eq!(cell.current().is_some(), succeeded == 1);
    assert_released(&control);
    let stats = env.stats.snapshot();
    assert!(
        shared <= stats.waits,
        "only waiters share a failure: {stats:?}"
    );
    assert_calls_counted(stats, 3);
    assert_eq!(stats.failures, failed, "R5: failures counted");
}

#[test]
fn loom_cold_creator_error_is_shared_with_its_waiters() {
    check("cold_creator_error_is_shared", || {
        cold_failure_is_shared(Outcome::Err, How::BLOCK)
    });
}

#[test]
fn loom_cold_creator_panic_is_taken_over_by_a_waiter() {
    check("cold_creator_panic_taken_over", || {
        cold_failure_is_shared(Outcome::Panic, How::BLOCK)
    });
}

/// R1 with async waiters: a failed cold creation's `Err` reaches the callers that
/// awaited it, each woken once, and nothing stays claimed.
#[test]
fn loom_cold_creator_error_is_shared_with_its_async_waiters() {
    check("cold_creator_error_is_shared_async", || {
        cold_failure_is_shared(Outcome::Err, How::AWAIT)
    });
}

// ---------------------------------------------------------------------------------
// R3 + R4: stale

/// Three callers on a stale slot: exactly one refreshes (R4 stops a second claimant
/// that comes after the publish), the others return the stale or the new value and
/// nobody waits.
#[test]
fn loom_stale_claim_races_fresh_readers_and_a_second_claimant() {
    check("stale_claim_races_readers_and_second_claimant", || {
        let (control, cell, env) = (Control::new(false), Cell::new(true), env());
        let spawn_caller = || {
            let (control, cell, env) = (control.clone(), cell.clone(), env.clone());
            thread::spawn(move || get(&control, &cell, &env, cell.probe.creator(Outcome::Ok)))
        };
        let (a, b) = (spawn_caller(), spawn_caller());
        let mine = get(&control, &cell, &env, cell.probe.creator(Outcome::Ok));
        let results = [mine, a.join().unwrap(), b.join().unwrap()];

        assert_eq!(cell.probe.creations(), 1, "R3/R4: exactly one refresh");
        assert_eq!(cell.current(), Some(1));
        for result in &results {
            let value = *result.as_ref().unwrap();
            assert!(value == 0 || value == 1, "served {value}");
        }
        assert!(results.contains(&Ok(1)), "the refresher returns its value");
        assert_released(&control);
        let stats = env.stats.snapshot();
        assert_calls_counted(stats, 3);
        assert_eq!(stats.misses, 0);
        assert_eq!(stats.refreshes, 1);
        assert_eq!(stats.waits, 0, "R3: a stale slot never makes anyone wait");
    });
}

/// A refresh that fails while two other callers are served the stale value: the
/// stale value stays, the error reaches its caller only, and a caller after it may
/// retry (one creator at a time).
#[test]
fn loom_stale_refresh_failure_keeps_the_stale_value() {
    check("stale_refresh_failure_keeps_stale_value", || {
        let (control, cell, env) = (Control::new(false), Cell::new(true), env());
        let failing = {
            let (control, cell, env) = (control.clone(), cell.clone(), env.clone());
            thread::spawn(move || get(&control, &cell, &env, cell.probe.creator(Outcome::Err)))
        };
        let other = {
            let (control, cell, env) = (control.clone(), cell.clone(), env.clone());
            thread::spawn(move || get(&control, &cell, &env, cell.probe.creator(Outcome::Ok)))
        };
        let mine = get(&control, &cell, &env, cell.probe.creator(Outcome::Ok));
        let failing = failing.join().unwrap();
        let other = other.join().unwrap();

        let failed = cell.probe.failures();
        assert_eq!(
            failing.is_err(),
            failed == 1,
            "R5: the error reaches its caller"
        );
        for value in [mine, other] {
            let value = value.expect("R5: the error reached another caller");
            assert!(
                value == 0 || cell.probe.was_published(value),
                "served {value}"
            );
        }
        if let Ok(value) = failing {
            assert!(
                value == 0 || cell.probe.was_published(value),
                "served {value}"
            );
        }
        // The failed refresh stored nothing: the stale value or a later success.
        assert_eq!(cell.current(), cell.probe.last_published());
        assert!(cell.probe.creations() <= 2);
        assert_released(&control);
        let stats = env.stats.snapshot();
        assert_calls_counted(stats, 3);
        assert_eq!(stats.failures, failed);
        assert_eq!(stats.waits, 0);
    });
}

// ---------------------------------------------------------------------------------
// R7: invalidate and remove during a refresh

/// A refresh in flight while another thread removes the key and a third asks for it:
/// the removal retires the entry only if no creation is in flight, a creation in
/// flight publishes when it finishes, and callers of a retired entry start over.
#[test]
fn loom_remove_during_refresh() {
    check("remove_during_refresh", || {
        let (map, env) = (Map::with_stale_value(), env());
        let refresher = {
            let (map, env) = (map.clone(), env.clone());
            thread::spawn(move || map.get(&env, map.probe.creator(Outcome::Ok)))
        };
        let remover = {
            let map = map.clone();
            thread::spawn(move || map.remove())
        };
        let mine = map.get(&env, map.probe.creator(Outcome::Ok)).unwrap();
        let refreshed = refresher.join().unwrap().unwrap();
        let removed = remover.join().unwrap();

        for value in [mine, refreshed] {
            assert!(
                value == 0 || map.probe.was_published(value),
                "served {value}"
            );
        }
        if let Some(removed) = removed {
            assert!(map.probe.was_published(removed));
        }
        assert!(map.probe.creations() <= 2);
        if let Some((control, value)) = map.current() {
            if let Some(value) = value {
                assert_eq!(Some(value), map.probe.last_published());
            }
            assert!(control.is_none(), "an idle entry keeps no control");
        }
        assert_calls_counted(env.stats.snapshot(), 2);
    });
}

/// Two callers on a cold key while a third removes it: a waiter woken by a release
/// may find its entry retired and must start over on a new one, never hang, and
/// never run a second creator at the same time.
#[test]
fn loom_remove_racing_cold_waiters() {
    check("remove_racing_cold_waiters", || {
        remove_racing_cold_waiters(How::BLOCK)
    });
}

/// The same with async callers: a waiter is woken by the retirement (`try_retire`
/// notifies the async waiters too) and starts over.
#[test]
fn loom_remove_racing_async_cold_waiters() {
    check("remove_racing_async_cold_waiters", || {
        remove_racing_cold_waiters(How::AWAIT)
    });
}

fn remove_racing_cold_waiters(how: How) {
    {
        let map = Arc::new(Map {
            entry: Mutex::new(None),
            probe: Probe::new(None),
        });
        let env = env();
        let caller = {
            let (map, env) = (map.clone(), env.clone());
            thread::spawn(move || map.get_as(&env, map.probe.creator(Outcome::Ok), how))
        };
        let remover = {
            let map = map.clone();
            thread::spawn(move || map.remove())
        };
        let mine = map
            .get_as(&env, map.probe.creator(Outcome::Ok), how)
            .unwrap();
        let theirs = caller.join().unwrap().unwrap();
        remover.join().unwrap();

        for value in [mine, theirs] {
            assert!(map.probe.was_published(value), "served {value}");
        }
        assert!((1..=2).contains(&map.probe.creations()));
        if let Some((control, _)) = map.current() {
            assert!(control.is_none(), "an idle entry keeps no control");
        }
        assert_calls_counted(env.stats.snapshot(), 2);
    }
}

/// A refresh in flight while another thread invalidates the key and a third asks for
/// it: one creator at a time, values only move forward.
#[test]
fn loom_invalidate_during_refresh() {
    check("invalidate_during_refresh", || {
        let (map, env) = (Map::with_stale_value(), env());
        let refresher = {
            let (map, env) = (map.clone(), env.clone());
            thread::spawn(move || map.get(&env, map.probe.creator(Outcome::Ok)))
        };
        let invalidator = {
            let map = map.clone();
            thread::spawn(move || map.invalidate())
        };
        let mine = map.get(&env, map.probe.creator(Outcome::Ok)).unwrap();
        let refreshed = refresher.join().unwrap().unwrap();
        invalidator.join().unwrap();

        for value in [mine, refreshed] {
            assert!(
                value == 0 || map.probe.was_published(value),
                "served {value}"
            );
        }
        assert!((1..=2).contains(&map.probe.creations()));
        let (control, value) = map.current().expect("invalidate never removes");
        assert_eq!(value, map.probe.last_published());
        assert!(control.is_none(), "an idle entry keeps no control");
        let stats = env.stats.snapshot();
        assert_calls_counted(stats, 2);
        assert_eq!(stats.waits, 0, "R7: invalidate is soft, nobody waits");
    });
}

// ---------------------------------------------------------------------------------
// R8: reader-synchronised publish

/// `slot::get_guarded` the way `SyncReaderDogpile::try_acquire` calls it.
fn get_guarded(
    control: &Arc<Control>,
    cell: &Arc<Cell>,
    env: &Env,
    create: impl FnOnce() -> Result<u64, Injected>,
) -> Result<(u64, slot::FenceRead), Injected> {
    let store = CellStore(cell.clone());
    match slot::get(control, &store, env, create, How::GUARDED) {
        Step::Done(result) => result.map(|served| {
            let read = served.read.expect("R8: a guarded call holds a read");
            (served.value, read)
        }),
        Step::Retired => unreachable!("a lone slot is never retired"),
    }
}

/// While this thread holds a guard, the value under it does not change.
fn use_guarded_value(cell: &Cell, value: u64) {
    cell.probe.readers_inside.fetch_add(1, SeqCst);
    assert_eq!(
        cell.current(),
        Some(value),
        "R8: the value changed under a guard"
    );
    cell.probe.readers_inside.fetch_sub(1, SeqCst);
}

/// A stale slot in reader-synchronised mode. The main thread refreshes it with a
/// creator that takes the write lock (`acquire_write_lock`) before it finishes; a
/// reader takes a guard, asks again while holding it (it must not wait on itself, even
/// with a writer waiting), and uses the value. No publish and no write section while
/// a guard is held; the reader that arrives later sees the new value.
fn sync_readers_publish(creator_outcome: Outcome) {
    let (control, cell, env) = (Control::new(true), Cell::new(true), env());
    let reader = {
        let (control, cell, env) = (control.clone(), cell.clone(), env.clone());
        thread::spawn(move || {
            let (value, guard) =
                get_guarded(&control, &cell, &env, cell.probe.creator(Outcome::Ok))
                    .expect("this creator succeeds");
            use_guarded_value(&cell, value);
            // Asking again while holding the guard never waits on ourselves.
            let (again, inner) = get_guarded(&control, &cell, &env, || {
                unreachable!("a guard holder never creates")
            })
            .unwrap();
            assert_eq!(again, value, "R8: a guard holder sees the value it holds");
            use_guarded_value(&cell, again);
            drop(inner);
            drop(guard);
            value
        })
    };
    let fence_control = control.clone();
    let probe = cell.probe.clone();
    let creator = cell.probe.creator_then(creator_outcome, move || {
        // `acquire_write_lock` inside the creator: held until the publish.
        fence_control
            .fence()
            .expect("sync_readers slot")
            .write_for_publish();
        assert_eq!(
            probe.readers_inside.load(SeqCst),
            0,
            "R8: the write section overlaps a guard"
        );
    });
    let mine = get_guarded(&control, &cell, &env, creator).map(|(value, guard)| {
        use_guarded_value(&cell, value);
        drop(guard);
        value
    });
    let read = reader.join().unwrap();

    let failed = cell.probe.failures();
    assert_eq!(mine.is_err(), failed == 1);
    assert!(cell.probe.creations() >= 1, "someone refreshed");
    assert!(read == 0 || cell.probe.was_published(read));
    assert_released(&control);
    // The write lock is free again: a writer outside any creator gets it.
    let fence = control.fence().expect("sync_readers slot");
    fence.write();
    fence.release_write();
    assert_calls_counted(env.stats.snapshot(), 3);
}

#[test]
fn loom_sync_readers_publish_waits_for_a_guard() {
    check("sync_readers_publish_waits_for_guard", || {
        sync_readers_publish(Outcome::Ok)
    });
}

/// The creator takes the write lock and then fails: the lock must not stay held.
#[test]
fn loom_sync_readers_failed_creator_releases_the_write_lock() {
    check("sync_readers_failed_creator_releases_write_lock", || {
        sync_readers_publish(Outcome::Err)
    });
}

// ---------------------------------------------------------------------------------
// R10: background refresh

/// Two callers on a stale slot with background refresh: the claimant hands its claim
/// to a model thread (the injected spawn) and returns the stale value like the other
/// caller; the refresh publishes and releases the claim from that thread.
fn background_hand_off(outcome: Outcome) {
    let (control, cell, env) = (Control::new(false), Cell::new(true), env());
    let tasks: Arc<std::sync::Mutex<Vec<thread::JoinHandle<()>>>> = Arc::default();
    let task_panics = Arc::new(AtomicUsize::new(0));
    let call = {
        let (control, cell, env, tasks) =
            (control.clone(), cell.clone(), env.clone(), tasks.clone());
        let task_panics = task_panics.clone();
        // The executor hand-off, as `Cache<_, _, Background>` does it, with a custom
        // executor that runs each refresh on a model thread.
        let executor = Executor::Custom(Arc::new(move |task: RefreshTask| {
            let task_panics = task_panics.clone();
            // A panic ends the task's thread only, as on a pool worker (loom would fail
            // the model on an uncaught panic, so it is caught at the thread's top).
            let task = move || {
                if catching(|| task.run()).is_none() {
                    task_panics.fetch_add(1, SeqCst);
                }
            };
            tasks.lock().unwrap().push(thread::spawn(task));
        }));
        move || {
            let mut creator = Some(Pooled::new(cell.probe.creator(outcome), &executor));
            let store = CellStore(cell.clone());
            let call = slot::drive(&control, &store, &env, &mut creator, How::BLOCK);
            match run_blocking(call) {
                Step::Done(result) => result.map(|served| served.value),
                Step::Retired => unreachable!("a lone slot is never retired"),
            }
        }
    };
    // After a failed refresh a later caller may refresh again: keep the threads (callers
    // plus refresh tasks) within loom's five.
    let others: Vec<_> = (0..if outcome == Outcome::Ok { 2 } else { 1 })
        .map(|_| thread::spawn(call.clone()))
        .collect();
    let mine = call();
    let mut results = vec![mine];
    results.extend(others.into_iter().map(|other| other.join().unwrap()));
    let background: Vec<_> = std::mem::take(&mut *tasks.lock().unwrap());
    let spawned = background.len() as u64;
    for task in background {
        task.join().unwrap();
    }
    assert_eq!(
        task_panics.load(SeqCst) > 0,
        outcome == Outcome::Panic,
        "a panicking refresh ends its task"
    );
    // One refresh; after a failed one, a later stale caller may retry.
    assert_eq!(cell.probe.creations(), spawned);
    match outcome {
        Outcome::Ok => assert_eq!(spawned, 1, "R10: exactly one refresh"),
        _ => assert!((1..=2).contains(&spawned)),
    }

    let callers = results.len() as u64;
    for result in results {
        let value = result.expect("R10: callers never see the background failure");
        assert!(
            value == 0 || cell.probe.was_published(value),
            "served {value}"
        );
    }
    let expected = if outcome == Outcome::Ok { 1 } else { 0 };
    assert_eq!(
        cell.current(),
        Some(expected),
        "R5: a failed refresh keeps the value"
    );
    assert_released(&control);
    let stats = env.stats.snapshot();
    assert_calls_counted(stats, callers);
    assert_eq!(stats.waits, 0, "R10: nobody waits");
    assert_eq!(stats.failures, cell.probe.failures());
}

#[test]
fn loom_background_refresh_hand_off() {
    check("background_refresh_hand_off", || {
        background_hand_off(Outcome::Ok)
    });
}

#[test]
fn loom_background_refresh_failure_releases_the_claim() {
    check("background_refresh_failure_releases_claim", || {
        background_hand_off(Outcome::Err)
    });
}

#[test]
fn loom_background_refresh_panic_releases_the_claim() {
    check("background_refresh_panic_releases_claim", || {
        background_hand_off(Outcome::Panic)
    });
}

// ---------------------------------------------------------------------------------
// R10: the refresh pool's hand-off

/// Counts refresh tasks that ended, run or given up, so the model can wait for all.
#[derive(Default)]
struct Settled {
    count: Mutex<(usize, usize)>,
    changed: crate::sync::Condvar,
}

impl Settled {
    fn settle(&self, ran: bool) {
        let mut count = self.count.lock();
        count.0 += 1;
        count.1 += usize::from(ran);
        drop(count);
        self.changed.notify_all();
    }
}

/// A refresh that reports how it ended: run, or dropped unrun (its claim released).
fn counted_task(settled: &Arc<Settled>) -> RefreshTask {
    struct OnDrop(Arc<Settled>, bool);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            self.0.settle(self.1);
        }
    }
    let guard = OnDrop(settled.clone(), false);
    RefreshTask::new(async move {
        let mut guard = guard; // the whole guard, not just its flag
        guard.1 = true;
    })
}

/// Two callers hand refreshes to a pool of one worker and a queue of one: no
/// interleaving loses a refresh (each is run, or given up with its claim released), a
/// worker never sleeps on a non-empty queue, and never more than one worker starts.
#[test]
fn loom_refresh_pool_runs_or_gives_up_every_refresh() {
    check("refresh_pool", || {
        let pool = Pool::new(1, 1);
        let settled = Arc::new(Settled::default());
        let other = {
            let (pool, settled) = (pool.clone(), settled.clone());
            thread::spawn(move || pool.submit(counted_task(&settled)))
        };
        pool.submit(counted_task(&settled));
        other.join().unwrap();
        assert!(pool.workers() <= 1, "the pool's size bounds its threads");
        // Before closing: a worker asleep on a queued refresh would deadlock here.
        let mut count = settled.count.lock();
        while count.0 < 2 {
            count = settled.changed.wait(count);
        }
        let (ended, ran) = *count;
        drop(count);
        assert_eq!(ended, 2, "every refresh ends, run or given up");
        assert!(ran >= 1, "a queue of one always takes the first refresh");
        pool.close();
    });
}

// ---------------------------------------------------------------------------------
// Freshness: the early-refresh claim and the back-off window

fn env_with(policy: Policy) -> Env {
    Env { policy, ..env() }
}

/// Three callers of a value still within its lifetime but due for an early refresh
/// (`refresh_ahead`): exactly one claims it, once per lifetime even when it fails; the
/// others get the still-fresh value without waiting; nothing stays claimed.
fn early_refresh_is_claimed_once(outcome: Outcome) {
    let env = env_with(Policy {
        refresh_ahead: TTL,
        ..Policy::ttl(TTL)
    });
    let cell = Arc::new(Cell {
        probe: Probe::new(Some(0)),
        value: Mutex::new(Some(Stamped::new(0, NOW + TTL / 2))),
    });
    let control = Control::new(false);
    let others: Vec<_> = (0..2)
        .map(|_| {
            let (control, cell, env) = (control.clone(), cell.clone(), env.clone());
            let create = cell.probe.creator(outcome);
            thread::spawn(move || get(&control, &cell, &env, create))
        })
        .collect();
    let mine = get(&control, &cell, &env, cell.probe.creator(outcome));
    let mut results = vec![mine];
    results.extend(others.into_iter().map(|t| t.join().unwrap()));
    assert_eq!(cell.probe.creations(), 1, "one early refresh per lifetime");
    for result in results {
        match (outcome, result) {
            // The old value (still fresh) or the refreshed one.
            (Outcome::Ok, Ok(value)) => assert!(value <= 1, "served {value}"),
            // A failed early refresh leaves the fresh value, for its claimant too.
            (Outcome::Err, Ok(value)) => assert_eq!(value, 0),
            (_, result) => panic!("an early refresh's failure reached a caller: {result:?}"),
        }
    }
    assert_eq!(
        env.stats.snapshot().waits,
        0,
        "nobody waited for an early refresh"
    );
    assert_eq!(env.stats.snapshot().early_refreshes, 1);
    assert_released(&control);
}

#[test]
fn loom_early_refresh_is_claimed_once_and_nobody_waits() {
    check("early_refresh_claimed_once", || {
        early_refresh_is_claimed_once(Outcome::Ok)
    });
}

#[test]
fn loom_a_failed_early_refresh_is_not_claimed_again_in_its_lifetime() {
    check("early_refresh_failed_once", || {
        early_refresh_is_claimed_once(Outcome::Err)
    });
}

/// A cold key with `retry_backoff` (time stands still: the back-off never passes): one
/// caller's creator fails, another's would succeed. Exactly one creator runs. If it
/// failed, the other caller gets its error (it waited for it, R1, or the key was
/// backing off when it arrived) and nothing is stored; if it succeeded, both get its
/// value. Nothing stays claimed.
#[test]
fn loom_a_backing_off_key_is_not_tried_again_within_its_window() {
    check("backoff_window", || {
        let env = env_with(Policy {
            backoff: Some(crate::freshness::Backoff {
                base: TTL,
                cap: TTL,
            }),
            ..Policy::ttl(TTL)
        });
        let (control, cell) = (Control::new(false), Cell::new(false));
        let failing = {
            let (control, cell, env) = (control.clone(), cell.clone(), env.clone());
            let create = cell.probe.creator(Outcome::Err);
            thread::spawn(move || get(&control, &cell, &env, create))
        };
        let other = get(&control, &cell, &env, cell.probe.creator(Outcome::Ok));
        let failing = failing.join().unwrap();
        assert_eq!(cell.probe.creations(), 1, "no attempt within the back-off");
        if cell.probe.failures() == 1 {
            assert_eq!((failing, other), (Err(Injected), Err(Injected)));
            assert_eq!(cell.current(), None);
        } else {
            assert_eq!((failing, other), (Ok(1), Ok(1)));
        }
        assert_released(&control);
        assert_calls_counted(env.stats.snapshot(), 2);
    });
}
