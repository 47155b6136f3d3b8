//! The slot rules for async callers: nobody blocks an executor thread, a
//! cancelled creator hands over, and sync and async callers share one cache. Every
//! wait is bounded by `tokio::time::timeout`.

use dogpile::{Cache, ManualClock};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::timeout;

const TTL: Duration = Duration::from_secs(10);
const BOUND: Duration = Duration::from_secs(20);

fn cache(clock: &ManualClock) -> Arc<Cache<&'static str, u64>> {
    Arc::new(Cache::builder().ttl(TTL).clock(clock.clone()).build())
}

/// A gate tasks can await: `Notify` remembers an open with `notify_one` only for one
/// waiter, so use a watch channel that stays open.
#[derive(Clone)]
struct Gate(tokio::sync::watch::Sender<bool>);

impl Gate {
    fn new() -> Self {
        Gate(tokio::sync::watch::channel(false).0)
    }
    fn open(&self) {
        self.0.send_replace(true);
    }
    fn is_open(&self) -> bool {
        *self.0.borrow()
    }
    async fn wait(&self) {
        let mut rx = self.0.subscribe();
        rx.wait_for(|open| *open).await.expect("gate dropped");
    }
}

async fn eventually(what: &str, condition: impl Fn() -> bool) {
    timeout(BOUND, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}: never happened (hang)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_tasks_on_a_stale_key_one_creator_the_rest_return_at_once() {
    let clock = ManualClock::new();
    let cache = cache(&clock);
    cache.get_with_async("k", async { 1 }).await;
    clock.advance(TTL);
    let created = Arc::new(AtomicUsize::new(0));
    let gate = Gate::new();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (cache, created, gate) = (cache.clone(), created.clone(), gate.clone());
            tokio::spawn(async move {
                let value = cache
                    .get_with_async("k", async {
                        created.fetch_add(1, Ordering::SeqCst);
                        gate.wait().await;
                        2
                    })
                    .await;
                (value, gate.is_open())
            })
        })
        .collect();
    eventually("99 tasks done while the creator is blocked", || {
        tasks.iter().filter(|t| t.is_finished()).count() == 99
    })
    .await;
    assert_eq!(created.load(Ordering::SeqCst), 1);
    gate.open();
    let mut stale_at_once = 0;
    for task in tasks {
        let (value, opened) = timeout(BOUND, task).await.expect("hang").unwrap();
        stale_at_once += usize::from(value == 1 && !opened);
    }
    assert_eq!(stale_at_once, 99);
    assert_eq!(created.load(Ordering::SeqCst), 1);
    assert_eq!(cache.stats().waits, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_key_has_one_creator_and_everyone_else_awaits_it() {
    let cache = cache(&ManualClock::new());
    let created = Arc::new(AtomicUsize::new(0));
    let gate = Gate::new();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (cache, created, gate) = (cache.clone(), created.clone(), gate.clone());
            tokio::spawn(async move {
                cache
                    .get_with_async("k", async {
                        created.fetch_add(1, Ordering::SeqCst);
                        gate.wait().await;
                        7
                    })
                    .await
            })
        })
        .collect();
    eventually("99 waiters", || cache.stats().waits == 99).await;
    gate.open();
    for task in tasks {
        assert_eq!(timeout(BOUND, task).await.expect("hang").unwrap(), 7);
    }
    assert_eq!(created.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_creator_hands_over_to_a_waiting_task() {
    let cache = cache(&ManualClock::new());
    let started = Arc::new(Notify::new());
    let creator = {
        let (cache, started) = (cache.clone(), started.clone());
        tokio::spawn(async move {
            cache
                .get_with_async("k", async move {
                    started.notify_one();
                    std::future::pending::<u64>().await // never finishes on its own
                })
                .await
        })
    };
    timeout(BOUND, started.notified())
        .await
        .expect("creator never started");
    let waiter = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.get_with_async("k", async { 5 }).await })
    };
    eventually("waiter waits", || cache.stats().waits == 1).await;
    creator.abort();
    assert!(timeout(BOUND, creator)
        .await
        .expect("hang")
        .unwrap_err()
        .is_cancelled());
    assert_eq!(
        timeout(BOUND, waiter).await.expect("waiter hung").unwrap(),
        5
    );
    assert_eq!(cache.get_with_async("k", async { 6 }).await, 5);
}

#[tokio::test(flavor = "current_thread")]
async fn a_current_thread_runtime_does_not_deadlock() {
    let cache = cache(&ManualClock::new());
    let created = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (cache, created) = (cache.clone(), created.clone());
            tokio::spawn(async move {
                cache
                    .get_with_async("k", async {
                        created.fetch_add(1, Ordering::SeqCst);
                        // Yield to the other tasks (which wait on this one) mid-creation.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        3
                    })
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(timeout(BOUND, task).await.expect("deadlock").unwrap(), 3);
    }
    assert_eq!(created.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_creator_asking_for_its_own_key_panics_instead_of_hanging() {
    let cache = cache(&ManualClock::new());
    let task = {
        let cache = cache.clone();
        tokio::spawn(async move {
            let inner = cache.clone();
            cache
                .get_with_async(
                    "k",
                    async move { inner.get_with_async("k", async { 1 }).await },
                )
                .await
        })
    };
    let error = timeout(BOUND, task).await.expect("hang").unwrap_err();
    assert!(error.is_panic());
    let panic = error.into_panic();
    let text = panic.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(text.contains("same-key re-entry"), "{text:?}");
    // Nothing stayed locked.
    assert_eq!(cache.get_with_async("k", async { 2 }).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_refresh_runs_on_the_runtime_and_the_claimant_returns_stale() {
    let clock = ManualClock::new();
    let cache: Arc<Cache<&str, u64, dogpile::mode::Background>> = Arc::new(
        Cache::builder()
            .ttl(TTL)
            .background_refresh()
            .clock(clock.clone())
            .build(),
    );
    cache.get_with_async("k", async { 1 }).await;
    clock.advance(TTL);
    let gate = Gate::new();
    let value = {
        let gate = gate.clone();
        cache
            .get_with_async("k", async move {
                gate.wait().await;
                2
            })
            .await
    };
    assert_eq!(value, 1, "the claimant returned the stale value at once");
    for _ in 0..10 {
        assert_eq!(cache.get_with_async("k", async { unreachable!() }).await, 1);
    }
    gate.open();
    let cache2 = cache.clone();
    eventually("published in the background", move || {
        cache2.stats().refreshes == 1 && cache2.get_with("k", || unreachable!()) == 2
    })
    .await;
    assert_eq!(cache.stats().waits, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_and_async_callers_share_one_cache() {
    let cache = cache(&ManualClock::new());
    let gate = Gate::new();
    let creator = {
        let (cache, gate) = (cache.clone(), gate.clone());
        tokio::spawn(async move {
            cache
                .get_with_async("k", async move {
                    gate.wait().await;
                    11
                })
                .await
        })
    };
    eventually("async creator running", || cache.stats().misses == 1).await;
    let sync_waiter = {
        let cache = cache.clone();
        std::thread::spawn(move || cache.get_with("k", || unreachable!("shared value")))
    };
    eventually("sync caller waits", || cache.stats().waits == 1).await;
    gate.open();
    assert_eq!(timeout(BOUND, creator).await.expect("hang").unwrap(), 11);
    let joined = tokio::task::spawn_blocking(move || sync_waiter.join().unwrap());
    assert_eq!(timeout(BOUND, joined).await.expect("hang").unwrap(), 11);
}
