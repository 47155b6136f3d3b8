//! Batches (`get_many_with` and its kin): every per-key rule kept, one creator call for
//! the keys a call claims. Interleavings are forced with gates, time moves only through
//! `ManualClock`, and every wait is bounded.

use support::common;

use common::{bounded, eventually, join_all, Counter, Gate};
use dogpile::mode::Background;
use dogpile::{
    Cache, Claim, EventSink, Lease, ManualClock, Publish, RefreshTask, SharedTier, SharedValue,
    TierError,
};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

const TTL: Duration = Duration::from_secs(10);

fn cache_with(clock: &ManualClock) -> Cache<u32, u32> {
    Cache::builder().ttl(TTL).clock(clock.clone()).build()
}

fn value_of(id: u32) -> u32 {
    id * 7 + 1
}

/// Every creator call's keys, in order.
#[derive(Clone, Default)]
struct Calls(Arc<Mutex<Vec<Vec<u32>>>>);

impl Calls {
    fn record(&self, ids: &[u32]) {
        self.0.lock().unwrap().push(ids.to_vec());
    }
    fn get(&self) -> Vec<Vec<u32>> {
        self.0.lock().unwrap().clone()
    }
}

#[test]
fn thirty_two_overlapping_cold_batches_create_each_id_exactly_once() {
    const IDS: usize = 500;
    let cache = Arc::new(cache_with(&ManualClock::new()));
    let created: Arc<Vec<AtomicUsize>> = Arc::new((0..IDS).map(|_| AtomicUsize::new(0)).collect());
    let asked: Arc<Vec<AtomicUsize>> = Arc::new((0..IDS).map(|_| AtomicUsize::new(0)).collect());
    let start = Arc::new(Barrier::new(32));
    let handles: Vec<_> = (0..32u64)
        .map(|thread| {
            let (cache, created, asked, start) =
                (cache.clone(), created.clone(), asked.clone(), start.clone());
            thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(thread);
                let ids: Vec<u32> = (0..50).map(|_| rng.u32(0..IDS as u32)).collect();
                for &id in &ids {
                    asked[id as usize].fetch_add(1, Ordering::SeqCst);
                }
                start.wait();
                let values = cache.get_many_with(&ids, |missing| {
                    for &id in missing {
                        created[id as usize].fetch_add(1, Ordering::SeqCst);
                    }
                    thread::yield_now(); // widen the window for overlapping batches
                    missing.iter().map(|&id| value_of(id)).collect()
                });
                let expected: Vec<u32> = ids.iter().map(|&id| value_of(id)).collect();
                assert_eq!(values, expected, "thread {thread}'s answer");
            })
        })
        .collect();
    for result in join_all(handles) {
        result.unwrap();
    }
    let mut overlapping = 0;
    for id in 0..IDS {
        let (asked, created) = (
            asked[id].load(Ordering::SeqCst),
            created[id].load(Ordering::SeqCst),
        );
        assert_eq!(
            created,
            usize::from(asked > 0),
            "id {id}: asked {asked} times"
        );
        overlapping += usize::from(asked > 1);
    }
    assert!(
        overlapping > 100,
        "the batches overlap ({overlapping} ids asked twice or more)"
    );
}

/// Starts `get_many_with(ids)` on another thread with a creator that records its keys,
/// opens `entered`, and answers only once `release` opens.
fn batch_behind_gate(
    cache: &Arc<Cache<u32, u32>>,
    ids: Vec<u32>,
    calls: &Calls,
    entered: &Gate,
    release: &Gate,
) -> thread::JoinHandle<Vec<u32>> {
    let (cache, calls, entered, release) = (
        cache.clone(),
        calls.clone(),
        entered.clone(),
        release.clone(),
    );
    thread::spawn(move || {
        cache.get_many_with(&ids, |missing| {
            calls.record(missing);
            entered.open();
            release.wait();
            missing.iter().map(|&id| value_of(id)).collect()
        })
    })
}

#[test]
fn a_single_key_caller_waits_for_a_batch_creating_its_key() {
    let cache = Arc::new(cache_with(&ManualClock::new()));
    let (calls, entered, release) = (Calls::default(), Gate::new(), Gate::new());
    let batch = batch_behind_gate(&cache, vec![1, 2, 3], &calls, &entered, &release);
    entered.wait();
    let single = {
        let cache = cache.clone();
        thread::spawn(move || cache.get_with(2, || unreachable!("the batch creates key 2")))
    };
    eventually("the single caller waits", || cache.stats().waits == 1);
    release.open();
    assert_eq!(join_all(vec![single]).pop().unwrap().unwrap(), value_of(2));
    assert_eq!(
        join_all(vec![batch]).pop().unwrap().unwrap(),
        [1, 2, 3].map(value_of)
    );
    assert_eq!(calls.get(), [vec![1, 2, 3]]);
}

#[test]
fn a_batch_waits_for_a_single_key_creation_in_flight_and_does_not_create_it() {
    let cache = Arc::new(cache_with(&ManualClock::new()));
    let (entered, release) = (Gate::new(), Gate::new());
    let single = {
        let (cache, entered, release) = (cache.clone(), entered.clone(), release.clone());
        thread::spawn(move || {
            cache.get_with(3, || {
                entered.open();
                release.wait();
                300
            })
        })
    };
    entered.wait();
    let calls = Calls::default();
    let batch = {
        let (cache, calls) = (cache.clone(), calls.clone());
        thread::spawn(move || {
            cache.get_many_with(&[1, 3, 5], |missing| {
                calls.record(missing);
                missing.iter().map(|&id| value_of(id)).collect()
            })
        })
    };
    // The batch creates its other keys first, then waits for key 3.
    eventually("the batch waits for key 3", || cache.stats().waits == 1);
    assert_eq!(calls.get(), [vec![1, 5]]);
    assert_eq!(cache.get(&1), Some(value_of(1)));
    release.open();
    assert_eq!(join_all(vec![single]).pop().unwrap().unwrap(), 300);
    let values = join_all(vec![batch]).pop().unwrap().unwrap();
    assert_eq!(values, [value_of(1), 300, value_of(5)]);
}

#[test]
fn two_batches_over_overlapping_cold_keys_split_the_work_and_share_the_values() {
    let cache = Arc::new(cache_with(&ManualClock::new()));
    let (first_calls, entered, release) = (Calls::default(), Gate::new(), Gate::new());
    let first = batch_behind_gate(&cache, vec![1, 2, 3], &first_calls, &entered, &release);
    entered.wait();
    let second_calls = Calls::default();
    let second = {
        let (cache, calls) = (cache.clone(), second_calls.clone());
        thread::spawn(move || {
            cache.get_many_with(&[4, 3, 2, 5], |missing| {
                calls.record(missing);
                missing.iter().map(|&id| value_of(id)).collect()
            })
        })
    };
    eventually("the second batch waits for key 3", || {
        cache.stats().waits == 1
    });
    assert_eq!(second_calls.get(), [vec![4, 5]]);
    release.open();
    let second = join_all(vec![second]).pop().unwrap().unwrap();
    assert_eq!(second, [4, 3, 2, 5].map(value_of));
    assert_eq!(
        join_all(vec![first]).pop().unwrap().unwrap(),
        [1, 2, 3].map(value_of)
    );
    assert_eq!(first_calls.get(), [vec![1, 2, 3]]);
}

#[test]
fn values_come_in_the_order_asked_with_duplicates_and_the_creator_gets_the_missing_once() {
    let cache = cache_with(&ManualClock::new());
    cache.insert(2, 20);
    cache.insert(4, 40);
    let calls = Calls::default();
    let values = cache.get_many_with(&[5, 2, 5, 1, 4, 1, 9], |missing| {
        calls.record(missing);
        missing.iter().map(|&id| value_of(id)).collect()
    });
    assert_eq!(
        values,
        [
            value_of(5),
            20,
            value_of(5),
            value_of(1),
            40,
            value_of(1),
            value_of(9)
        ]
    );
    assert_eq!(calls.get(), [vec![5, 1, 9]]);
    // All fresh now: no creator call at all.
    let values = cache.get_many_with(&[1, 2], |_| unreachable!("every key is fresh"));
    assert_eq!(values, [value_of(1), 20]);
    assert_eq!(
        cache.get_many_with(&[], |_| unreachable!("no keys")),
        Vec::<u32>::new()
    );
    let stats = cache.stats();
    assert_eq!(
        (stats.hits, stats.misses),
        (2 + 2, 3),
        "a repeated missing key counts once"
    );
}

#[test]
fn a_hundred_stale_ids_refresh_in_one_creator_call_while_another_batch_is_served_stale() {
    let clock = ManualClock::new();
    let cache = Arc::new(cache_with(&clock));
    let ids: Vec<u32> = (0..100).collect();
    cache.get_many_with(&ids, |missing| missing.to_vec());
    clock.advance(TTL + Duration::from_secs(1));
    let (calls, entered, release) = (Calls::default(), Gate::new(), Gate::new());
    let refresher = batch_behind_gate(&cache, ids.clone(), &calls, &entered, &release);
    entered.wait();
    // The refresh is in flight: a concurrent batch is served the stale values at once,
    // without a creator call and without waiting (R3).
    let served = bounded("a batch over stale keys", {
        let (cache, ids) = (cache.clone(), ids.clone());
        move || cache.get_many_with(&ids, |_| unreachable!("another caller refreshes these"))
    });
    assert_eq!(served, ids);
    assert_eq!(cache.stats().waits, 0);
    release.open();
    let refreshed = join_all(vec![refresher]).pop().unwrap().unwrap();
    let new_values: Vec<u32> = ids.iter().map(|&id| value_of(id)).collect();
    assert_eq!(
        refreshed, new_values,
        "the refreshing batch returns its new values"
    );
    assert_eq!(
        calls.get(),
        vec![ids.clone()],
        "one creator call with every stale id, in order"
    );
    assert_eq!(
        cache.get_many_with(&ids, |_| unreachable!("fresh")),
        new_values
    );
    let stats = cache.stats();
    assert_eq!((stats.refreshes, stats.stale_hits), (100, 200));
}

#[test]
fn background_a_hundred_stale_ids_are_served_at_once_and_refreshed_in_one_task() {
    let clock = ManualClock::new();
    let tasks: Arc<Mutex<Vec<RefreshTask>>> = Arc::default();
    let cache: Cache<u32, u32, Background> = Cache::builder()
        .ttl(TTL)
        .clock(clock.clone())
        .background_refresh()
        .refresh_executor({
            let tasks = tasks.clone();
            move |task| tasks.lock().unwrap().push(task)
        })
        .build();
    let ids: Vec<u32> = (0..100).collect();
    let calls = Calls::default();
    let create = {
        let calls = calls.clone();
        move |ids: &[u32]| {
            calls.record(ids);
            ids.iter().map(|&id| value_of(id)).collect()
        }
    };
    // Cold keys are created in the call (nothing to serve meanwhile).
    assert_eq!(
        cache.get_many_with(&ids[..50], create.clone()),
        ids[..50].iter().map(|&id| value_of(id)).collect::<Vec<_>>()
    );
    clock.advance(TTL + Duration::from_secs(1));
    // 50 stale and 50 cold keys: the cold ones are created now, the stale ones served
    // and handed to the executor in one task.
    let values = cache.get_many_with(&ids, create.clone());
    let expected: Vec<u32> = ids.iter().map(|&id| value_of(id)).collect();
    assert_eq!(values, expected);
    assert_eq!(calls.get().len(), 2);
    assert_eq!(calls.get()[1], ids[50..].to_vec());
    // A second batch: still stale, the refresh is claimed: served at once, no new task.
    assert_eq!(
        cache.get_many_with(&ids[..50], create.clone()),
        expected[..50].to_vec()
    );
    let queued: Vec<RefreshTask> = std::mem::take(&mut *tasks.lock().unwrap());
    assert_eq!(queued.len(), 1, "the stale keys' refresh is one task");
    assert!(cache.get(&0).is_some());
    for task in queued {
        task.run();
    }
    assert_eq!(
        calls.get()[2],
        ids[..50].to_vec(),
        "one creator call for the 50 stale ids"
    );
    assert_eq!(calls.get().len(), 3);
    // Refreshed: fresh again, no creator call.
    cache.get_many_with(&ids, |_| unreachable!("fresh"));
    assert_eq!(cache.stats().refreshes, 50);
}

#[test]
fn an_err_reaches_the_whole_batch_and_every_waiter_and_is_not_stored() {
    let cache: Arc<Cache<u32, u32>> = Arc::new(cache_with(&ManualClock::new()));
    let (entered, release) = (Gate::new(), Gate::new());
    let failing = {
        let (cache, entered, release) = (cache.clone(), entered.clone(), release.clone());
        thread::spawn(move || {
            cache.try_get_many_with(&[1, 2, 3], |_| {
                entered.open();
                release.wait();
                Err::<Vec<u32>, _>("down".to_string())
            })
        })
    };
    entered.wait();
    let single = {
        let cache = cache.clone();
        thread::spawn(move || {
            cache.try_get_with(2, || -> Result<u32, String> { unreachable!("waits") })
        })
    };
    let other_batch = {
        let cache = cache.clone();
        thread::spawn(move || cache.try_get_many_with(&[4, 3], |ids| Ok::<_, String>(ids.to_vec())))
    };
    eventually("two callers wait", || cache.stats().waits == 2);
    release.open();
    let down = Err("down".to_string());
    assert_eq!(join_all(vec![failing]).pop().unwrap().unwrap(), down);
    assert_eq!(
        join_all(vec![single]).pop().unwrap().unwrap(),
        down.clone().map(|_: Vec<u32>| 0)
    );
    assert_eq!(join_all(vec![other_batch]).pop().unwrap().unwrap(), down);
    for id in 1..=3 {
        assert_eq!(cache.get(&id), None, "key {id}: nothing stored");
    }
    // The next caller makes a new attempt.
    let values = cache.try_get_many_with(&[1, 2, 3], |ids| Ok::<_, String>(ids.to_vec()));
    assert_eq!(values, Ok(vec![1, 2, 3]));
}

#[test]
fn a_creator_answering_the_wrong_number_of_values_panics_naming_both_and_holds_nothing() {
    let cache = cache_with(&ManualClock::new());
    let panic = catch_unwind(AssertUnwindSafe(|| {
        cache.get_many_with(&[1, 2, 3], |_| vec![1])
    }))
    .unwrap_err();
    let message = panic_message(&panic);
    assert!(
        message.contains("given 3 keys and returned 1 values"),
        "{message}"
    );
    // Every claim was released: the keys are created again, without a hang.
    let values = bounded("after the panic", move || {
        cache.get_many_with(&[1, 2, 3], |ids| ids.to_vec())
    });
    assert_eq!(values, [1, 2, 3]);
}

#[test]
fn a_panicking_batch_creator_releases_every_claim_and_a_waiter_takes_over() {
    // R1: the panic reaches the batch's own caller only; the single-key caller waiting
    // for one of its keys takes over with its own creator.
    let cache = Arc::new(cache_with(&ManualClock::new()));
    let (entered, release) = (Gate::new(), Gate::new());
    let panicking = {
        let (cache, entered, release) = (cache.clone(), entered.clone(), release.clone());
        thread::spawn(move || {
            cache.get_many_with(&[1, 2], |_| {
                entered.open();
                release.wait();
                panic!("backend exploded");
            })
        })
    };
    entered.wait();
    let waiter = {
        let cache = cache.clone();
        thread::spawn(move || cache.get_with(2, || 20))
    };
    eventually("the waiter waits", || cache.stats().waits == 1);
    release.open();
    assert!(join_all(vec![panicking]).pop().unwrap().is_err());
    let taken_over = join_all(vec![waiter]).pop().unwrap();
    assert_eq!(
        taken_over.ok(),
        Some(20),
        "the waiter creates with its own creator"
    );
    let values = bounded("after the panic", move || {
        cache.get_many_with(&[2, 1], |ids| ids.to_vec())
    });
    assert_eq!(values, [20, 1], "2 is the waiter's value; 1 was left cold");
}

#[test]
fn max_batch_splits_the_claimed_keys_into_creator_calls_in_first_seen_order() {
    let cache: Cache<u32, u32> = Cache::builder().ttl(TTL).max_batch(3).build();
    let calls = Calls::default();
    let ids = [8, 1, 7, 2, 6, 3, 5, 4];
    let values = cache.get_many_with(&ids, |missing| {
        calls.record(missing);
        missing.iter().map(|&id| value_of(id)).collect()
    });
    assert_eq!(values, ids.map(value_of));
    assert_eq!(calls.get(), [vec![8, 1, 7], vec![2, 6, 3], vec![5, 4]]);
    assert_eq!(
        Cache::<u32, u32>::builder()
            .ttl(TTL)
            .max_batch(0)
            .try_build()
            .err(),
        Some(dogpile::BuildError::ZeroMaxBatch)
    );
}

#[test]
fn a_batch_creator_may_call_the_cache_for_other_keys_but_not_for_its_own() {
    let cache = Arc::new(cache_with(&ManualClock::new()));
    let inner = cache.clone();
    let values = bounded("re-entrant batch", move || {
        let cache = inner.clone();
        inner.get_many_with(&[1, 2], move |ids| {
            ids.iter()
                .map(|&id| cache.get_with(id + 100, || id) + 1)
                .collect()
        })
    });
    assert_eq!(values, [2, 3]);
    assert_eq!(cache.get(&101), Some(1));
    let inner = cache.clone();
    let panic = bounded("a creator asking for its own key", move || {
        let cache = inner.clone();
        catch_unwind(AssertUnwindSafe(move || {
            inner.get_many_with(&[3, 4], move |ids| {
                let own = cache.get_with(4, || 0);
                ids.iter().map(|_| own).collect()
            })
        }))
        .map_err(|panic| panic_message(&panic))
    })
    .unwrap_err();
    assert!(panic.contains("same-key re-entry"), "{panic}");
    assert_eq!(cache.get_many_with(&[3, 4], |ids| ids.to_vec()), [3, 4]);
}

/// A tier that is down: the cache follows the local rules (F7).
struct Down;

impl SharedTier<u32, u32> for Down {
    fn lookup(&self, _: &u32) -> Result<Option<SharedValue<u32>>, TierError> {
        Err(TierError::new("down"))
    }
    fn claim(&self, _: &u32, _: Duration) -> Result<Claim<u32>, TierError> {
        Err(TierError::new("down"))
    }
    fn publish(&self, _: &u32, _: &Lease, _: &u32, _: Duration) -> Result<Publish, TierError> {
        Err(TierError::new("down"))
    }
    fn release(&self, _: &u32, _: &Lease, _: Duration) -> Result<(), TierError> {
        Err(TierError::new("down"))
    }
    fn invalidate(&self, _: &u32) -> Result<(), TierError> {
        Err(TierError::new("down"))
    }
    fn remove(&self, _: &u32) -> Result<(), TierError> {
        Err(TierError::new("down"))
    }
    fn subscribe(&self, _: EventSink<u32>) {}
    fn scoped(self, _: &str) -> Self {
        self
    }
}

#[test]
fn with_a_tier_down_a_batch_follows_the_local_rules() {
    let cache: Cache<u32, u32> = Cache::builder().ttl(TTL).shared(Down).build();
    cache.insert(2, 20);
    let calls = Calls::default();
    let values = cache.get_many_with(&[1, 2, 3, 1], |ids| {
        calls.record(ids);
        ids.iter().map(|&id| value_of(id)).collect()
    });
    assert_eq!(values, [value_of(1), 20, value_of(3), value_of(1)]);
    // F7: one creator call for the keys the tier could not answer for.
    assert_eq!(calls.get(), [vec![1, 3]]);
}

#[test]
fn async_batches_share_cold_keys_and_errors() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let cache = Arc::new(cache_with(&ManualClock::new()));
    let created = Counter::new();
    let release = Arc::new(tokio::sync::Notify::new());
    let first = runtime.spawn({
        let (cache, created, release) = (cache.clone(), created.clone(), release.clone());
        async move {
            let create = |ids: Vec<u32>| {
                let (created, release) = (created.clone(), release.clone());
                async move {
                    created.bump();
                    release.notified().await;
                    ids.iter().map(|&id| value_of(id)).collect()
                }
            };
            cache.get_many_with_async(&[1, 2, 3], create).await
        }
    });
    eventually("the first batch is creating", || created.get() == 1);
    let second = runtime.spawn({
        let cache = cache.clone();
        async move {
            let create = |ids: Vec<u32>| async move { ids.iter().map(|&id| id + 1000).collect() };
            cache.get_many_with_async(&[3, 4], create).await
        }
    });
    eventually("the second batch waits", || cache.stats().waits == 1);
    release.notify_one();
    let (first, second) = bounded("async batches", move || {
        runtime.block_on(async { (first.await.unwrap(), second.await.unwrap()) })
    });
    assert_eq!(first, [1, 2, 3].map(value_of));
    assert_eq!(second, [value_of(3), 1004]);
    assert_eq!(created.get(), 1);

    let failing = futures_lite_block_on(
        cache.try_get_many_with_async(&[7, 8], |_| async { Err::<Vec<u32>, _>("down") }),
    );
    assert_eq!(failing, Err("down"));
    assert_eq!(cache.get(&7), None);
}

/// With the `tokio` feature, inside a runtime: the stale keys are served and their
/// refresh is spawned. Without it: refreshed in the call, as in `Inline` mode.
#[test]
fn async_background_serves_stale_values_and_refreshes_them_together() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let clock = ManualClock::new();
    let cache: Arc<Cache<u32, u32, Background>> = Arc::new(
        Cache::builder()
            .ttl(TTL)
            .clock(clock.clone())
            .background_refresh()
            .build(),
    );
    let calls = Calls::default();
    let create = {
        let calls = calls.clone();
        move |ids: Vec<u32>| {
            calls.record(&ids);
            async move { ids.iter().map(|&id| id * 2).collect() }
        }
    };
    let spawned = cfg!(feature = "tokio");
    runtime.block_on(async {
        assert_eq!(
            cache.get_many_with_async(&[1, 2], create.clone()).await,
            [2, 4]
        );
        clock.advance(TTL + Duration::from_secs(1));
        let values = cache.get_many_with_async(&[2, 1], create.clone()).await;
        assert_eq!(values, [4, 2]);
        if spawned {
            assert_eq!(calls.get().len(), 1, "not refreshed in the call");
            for _ in 0..100 {
                if calls.get().len() == 2 {
                    break;
                }
                tokio::task::yield_now().await;
            }
        }
    });
    assert_eq!(calls.get(), [vec![1, 2], vec![2, 1]]);
    assert_eq!(cache.stats().refreshes, 2);
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    match panic.downcast_ref::<&str>() {
        Some(message) => message.to_string(),
        None => panic.downcast_ref::<String>().cloned().unwrap_or_default(),
    }
}

/// Drives a future on this thread (the inline async path never needs a runtime).
fn futures_lite_block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
    }
}

/// Two slow single creations, of keys 1 and 2, held at `gate` (each made `100 + id`),
/// running once this returns.
fn slow_creations(cache: &Arc<Cache<u32, u32>>, gate: &Gate) -> Vec<thread::JoinHandle<u32>> {
    let started = Counter::new();
    let slow: Vec<_> = [1, 2]
        .map(|id| {
            let (cache, gate, started) = (cache.clone(), gate.clone(), started.clone());
            thread::spawn(move || {
                cache.get_with(id, || {
                    started.bump();
                    gate.wait();
                    100 + id
                })
            })
        })
        .into();
    eventually("both slow creations running", || started.get() == 2);
    slow
}

fn bounded_cache(limit: Duration) -> Arc<Cache<u32, u32>> {
    Arc::new(
        Cache::builder()
            .ttl(Duration::from_secs(60))
            .wait_at_most(limit)
            .build(),
    )
}

#[test]
fn wait_at_most_bounds_a_batchs_waits_together() {
    // The real clock is the point: `wait_at_most` bounds a waiter's real wait.
    let limit = Duration::from_secs(1);
    let (cache, gate) = (bounded_cache(limit), Gate::new());
    let slow = slow_creations(&cache, &gate);
    let calls = Calls::default();
    let batch = {
        let (cache, calls) = (cache.clone(), calls.clone());
        thread::spawn(move || {
            let begun = std::time::Instant::now();
            let values = cache.get_many_with(&[1, 2, 3], |ids| {
                calls.record(ids);
                ids.iter().map(|&id| value_of(id)).collect()
            });
            (values, begun.elapsed())
        })
    };
    let (values, waited) = bounded("batch", move || batch.join().unwrap());
    assert_eq!(
        values,
        [1, 2, 3].map(value_of),
        "it gave up and created both"
    );
    // Key 3 first, then keys 1 and 2 in one creator call once the call's waits, of one
    // `wait_at_most` for the two keys together, ran out.
    assert_eq!(calls.get(), [vec![3], vec![1, 2]]);
    assert!(waited >= limit && waited < 2 * limit, "{waited:?}");
    assert_eq!(cache.stats().waits, 2);
    gate.open();
    let slow: Vec<u32> = slow.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(slow, [101, 102]);
}

#[test]
fn wait_at_most_bounds_an_async_batchs_waits_together() {
    let limit = Duration::from_secs(1);
    let (cache, gate) = (bounded_cache(limit), Gate::new());
    let slow = slow_creations(&cache, &gate);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (values, waited) = bounded("async batch", {
        let cache = cache.clone();
        move || {
            runtime.block_on(async {
                let begun = std::time::Instant::now();
                let values = cache
                    .get_many_with_async(&[1, 2], |ids: Vec<u32>| async move {
                        ids.iter().map(|&id| value_of(id)).collect()
                    })
                    .await;
                (values, begun.elapsed())
            })
        }
    });
    assert_eq!(values, [1, 2].map(value_of), "it gave up and created both");
    assert!(waited >= limit && waited < 2 * limit, "{waited:?}");
    gate.open();
    let slow: Vec<u32> = slow.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(slow, [101, 102]);
}
