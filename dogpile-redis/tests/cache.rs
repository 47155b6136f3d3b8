//! A `dogpile::Cache` with the fleet tier: several caches (each its own L1, as separate
//! processes would have) on one real `redis-server`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dogpile::mode::Background;
use dogpile::{Cache, ManualClock, RefreshTask};
use dogpile_redis::RedisTier;
use support::redis::{holds_within, RedisServer};

const TTL: Duration = Duration::from_secs(60);

/// A lease far longer than any test: a test that passes did not wait for it to run out.
const LONG_LEASE: Duration = Duration::from_secs(30);

fn cache(server: &RedisServer, clock: &ManualClock) -> Cache<String, String> {
    let tier = RedisTier::open(&server.url()).unwrap().namespace("c");
    Cache::builder()
        .ttl(TTL)
        .clock(clock.clone())
        .shared(tier)
        .build()
}

fn cache_with_lease(
    server: &RedisServer,
    clock: &ManualClock,
    lease: Duration,
) -> Cache<String, String> {
    let tier = RedisTier::open(&server.url())
        .unwrap()
        .namespace("c")
        .lease(lease);
    Cache::builder()
        .ttl(TTL)
        .clock(clock.clone())
        .shared(tier)
        .build()
}

/// Waits (bounded) until `n` caches of the namespace `c` listen for its notifications:
/// only then does an invalidate or remove reach each of them (F6).
fn wait_for_listeners(server: &RedisServer, n: u64) {
    assert!(
        holds_within(Duration::from_secs(5), || server
            .subscribers("dogpile:c:events")
            == n),
        "{n} listeners on dogpile:c:events within 5 s"
    );
}

fn scripts_run(server: &RedisServer) -> u64 {
    server.calls("evalsha") + server.calls("eval")
}

fn a_fresh_l1_hit_never_touches_redis() {
    // F3.
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let a = cache(&server, &clock);
    // Once the notification link is up: a first link resets what went through the tier
    // before it (F6), which would cost one more claim here.
    wait_for_listeners(&server, 1);
    assert_eq!(a.get_with("k".into(), || "v".into()), "v");
    let before = scripts_run(&server);
    for _ in 0..1000 {
        assert_eq!(a.get_with("k".into(), || unreachable!()), "v");
    }
    assert_eq!(scripts_run(&server), before);
}

fn a_cold_key_is_created_once_across_caches() {
    // F2 and F3: the second process takes the value from Redis.
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let (a, b) = (cache(&server, &clock), cache(&server, &clock));
    let created = AtomicUsize::new(0);
    let create = || {
        created.fetch_add(1, Ordering::SeqCst);
        "from a".to_string()
    };
    assert_eq!(a.get_with("k".into(), create), "from a");
    assert_eq!(
        b.get_with("k".into(), || unreachable!("b must not create")),
        "from a"
    );
    assert_eq!(created.load(Ordering::SeqCst), 1);
}

fn a_cold_key_being_created_elsewhere_is_waited_for() {
    // F2: b arrives while a creates; b waits (woken by the publish), then takes a's.
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let (a, b) = (cache(&server, &clock), cache(&server, &clock));
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        let creator = s.spawn(|| {
            a.get_with("k".into(), || {
                started_tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(300));
                "from a".to_string()
            })
        });
        started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        let waited = Instant::now();
        let got = b.get_with("k".into(), || unreachable!("b must wait, not create"));
        assert_eq!(got, "from a");
        assert!(
            waited.elapsed() < Duration::from_secs(2),
            "{:?}",
            waited.elapsed()
        );
        assert_eq!(creator.join().unwrap(), "from a");
    });
}

fn ages_come_from_redis_whatever_the_local_clock() {
    // F4: b's clock is an hour ahead; the value a just made is fresh for b too, and b
    // keeps it for the rest of its ttl by its own clock.
    let server = RedisServer::start();
    let (clock_a, clock_b) = (ManualClock::new(), ManualClock::new());
    clock_b.advance(Duration::from_secs(3600));
    let (a, b) = (cache(&server, &clock_a), cache(&server, &clock_b));
    a.get_with("k".into(), || "v".into());
    assert_eq!(
        b.get_with("k".into(), || unreachable!("fresh in Redis")),
        "v"
    );
    clock_b.advance(TTL - Duration::from_secs(5));
    assert_eq!(b.get_with("k".into(), || unreachable!("still fresh")), "v");
}

fn a_stale_key_is_refreshed_once_across_caches() {
    // F1: both L1 copies go stale; one refresh in the fleet.
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let short = |server: &RedisServer| -> Cache<String, String> {
        Cache::builder()
            .ttl(Duration::from_millis(200))
            .clock(clock.clone())
            .shared(RedisTier::open(&server.url()).unwrap().namespace("c"))
            .build()
    };
    let (a, b) = (short(&server), short(&server));
    a.get_with("k".into(), || "v1".into());
    b.get_with("k".into(), || unreachable!());
    std::thread::sleep(Duration::from_millis(250)); // Redis time: the shared value is stale
    clock.advance(Duration::from_millis(250)); // local time: the L1 copies are stale
    let refreshes = AtomicUsize::new(0);
    let refresh = || {
        refreshes.fetch_add(1, Ordering::SeqCst);
        "v2".to_string()
    };
    let first = a.get_with("k".into(), refresh);
    let second = b.get_with("k".into(), refresh);
    assert_eq!((first.as_str(), second.as_str()), ("v2", "v2"));
    assert_eq!(refreshes.load(Ordering::SeqCst), 1);
}

fn invalidate_and_remove_reach_the_other_caches() {
    // F6.
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let (a, b) = (cache(&server, &clock), cache(&server, &clock));
    wait_for_listeners(&server, 2);
    a.get_with("k".into(), || "v1".into());
    b.get_with("k".into(), || unreachable!());
    a.invalidate("k");
    // b's copy turns stale: its next call refreshes (once, fleet-wide).
    let reached = holds_within(Duration::from_secs(1), || {
        b.get_with("k".into(), || "v2".into()) == "v2"
    });
    assert!(reached, "invalidate did not reach b");
    a.remove("k");
    // b's copy is gone: its next call creates.
    let reached = holds_within(Duration::from_secs(1), || {
        b.get_with("k".into(), || "v3".into()) == "v3"
    });
    assert!(reached, "remove did not reach b");
}

fn a_failing_creator_releases_the_lease_at_once() {
    // F8: a's creator fails; b, arriving cold, creates at once instead of waiting out
    // the 30 s lease.
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let a = cache_with_lease(&server, &clock, LONG_LEASE);
    let b = cache_with_lease(&server, &clock, LONG_LEASE);
    assert_eq!(
        a.try_get_with("k".into(), || Err::<String, _>("backend down")),
        Err("backend down")
    );
    let started = Instant::now();
    assert_eq!(b.get_with("k".into(), || "from b".into()), "from b");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // A panic too.
    let c = Arc::new(a);
    let panicking = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        c.get_with("p".into(), || panic!("creator panicked"))
    }));
    assert!(panicking.is_err());
    let started = Instant::now();
    assert_eq!(b.get_with("p".into(), || "from b".into()), "from b");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

fn with_redis_down_the_local_rules_apply() {
    // F7: no error, no hang, one creation per process; sharing resumes after.
    let mut server = RedisServer::start();
    let clock = ManualClock::new();
    let (a, b) = (cache(&server, &clock), cache(&server, &clock));
    server.kill();
    let started = Instant::now();
    assert_eq!(a.get_with("k".into(), || "a".into()), "a");
    assert_eq!(a.get_with("k".into(), || unreachable!()), "a");
    assert_eq!(b.get_with("k".into(), || "b".into()), "b");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    server.restart();
    // Sharing resumes: a new key made by a reaches b.
    let mut attempt = 0;
    assert!(holds_within(Duration::from_secs(3), || {
        attempt += 1;
        let key = format!("later-{attempt}");
        a.get_with(key.clone(), || "shared".into());
        b.get_with(key, || "not shared".into()) == "shared"
    }));
}

fn a_background_cache_refreshes_once_across_caches() {
    // F1 for a `Background` cache: its refresh runs on the executor, under the lease.
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let build = || -> Cache<String, String, dogpile::mode::Background> {
        Cache::builder()
            .ttl(Duration::from_millis(200))
            .clock(clock.clone())
            .background_refresh()
            .shared(RedisTier::open(&server.url()).unwrap().namespace("c"))
            .build()
    };
    let (a, b) = (build(), build());
    a.get_with("k".into(), || "v1".into());
    assert_eq!(b.get_with("k".into(), || unreachable!()), "v1");
    std::thread::sleep(Duration::from_millis(250));
    clock.advance(Duration::from_millis(250));
    let refreshes = Arc::new(AtomicUsize::new(0));
    let refresh = |n: Arc<AtomicUsize>| {
        move || {
            n.fetch_add(1, Ordering::SeqCst);
            "v2".to_string()
        }
    };
    assert!(holds_within(Duration::from_secs(2), || {
        a.get_with("k".into(), refresh(refreshes.clone())) == "v2"
            && b.get_with("k".into(), refresh(refreshes.clone())) == "v2"
    }));
    assert_eq!(refreshes.load(Ordering::SeqCst), 1);
}

async fn async_callers_share_through_the_tier() {
    // F2 for async callers, on a one-thread runtime: b's wait for a's cold creation
    // must not block the thread a's creator needs.
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let (a, b) = (cache(&server, &clock), cache(&server, &clock));
    let created = AtomicUsize::new(0);
    let first = a.get_with_async("k".into(), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        created.fetch_add(1, Ordering::SeqCst);
        "from a".to_string()
    });
    let second = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        b.get_with_async("k".into(), async {
            created.fetch_add(1, Ordering::SeqCst);
            "from b".to_string()
        })
        .await
    };
    let both = tokio::time::timeout(Duration::from_secs(5), async {
        tokio::join!(first, second)
    });
    let (first, second) = both.await.expect("async callers hung");
    assert_eq!((first.as_str(), second.as_str()), ("from a", "from a"));
    assert_eq!(created.load(Ordering::SeqCst), 1);
    assert_eq!(
        b.try_get_with_async("k".into(), async { Err::<String, ()>(()) })
            .await,
        Ok("from a".to_string())
    );
}

fn a_waiter_elsewhere_takes_over_at_once_when_the_creator_fails() {
    // F8 with F2: b waits for a's cold creation; a's creator fails; b claims at once
    // instead of waiting out a's 30 s lease.
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let a = cache_with_lease(&server, &clock, LONG_LEASE);
    let b = cache_with_lease(&server, &clock, LONG_LEASE);
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        let failing = s.spawn(|| {
            a.try_get_with("k".into(), || {
                started_tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(300)); // b is waiting by now
                Err::<String, _>("backend down")
            })
        });
        started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        let waited = Instant::now();
        assert_eq!(b.get_with("k".into(), || "from b".into()), "from b");
        assert!(
            waited.elapsed() < Duration::from_secs(2),
            "{:?}",
            waited.elapsed()
        );
        assert_eq!(failing.join().unwrap(), Err("backend down"));
    });
}

async fn a_dropped_creation_releases_the_lease_at_once() {
    // F8: an async creator whose future is dropped (here by a timeout) releases.
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let a = cache_with_lease(&server, &clock, LONG_LEASE);
    let b = cache_with_lease(&server, &clock, LONG_LEASE);
    let dropped = tokio::time::timeout(
        Duration::from_millis(100),
        a.get_with_async("k".into(), std::future::pending::<String>()),
    )
    .await;
    assert!(dropped.is_err());
    let started = Instant::now();
    let got = tokio::time::timeout(
        Duration::from_secs(5),
        b.get_with_async("k".into(), async { "from b".into() }),
    );
    assert_eq!(got.await.expect("b hung"), "from b");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

fn a_frozen_redis_neither_hangs_nor_fails_a_call() {
    // F7: SIGSTOP: calls fall back to the local rules within the deadline.
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let a: Cache<String, String> = Cache::builder()
        .ttl(TTL)
        .clock(clock.clone())
        .shared(
            RedisTier::open(&server.url())
                .unwrap()
                .namespace("c")
                .timeout(Duration::from_millis(100)),
        )
        .build();
    a.get_with("warm".into(), || "w".into());
    server.freeze();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            let started = Instant::now();
            let values = (0..20)
                .map(|i| a.get_with(format!("k{i}"), || "local".into()))
                .collect::<Vec<_>>();
            a.invalidate("warm");
            a.remove("warm");
            let _ = done.send((values, started.elapsed()));
        });
        let (values, took) = finished
            .recv_timeout(Duration::from_secs(10))
            .expect("a call hung on a frozen Redis");
        assert!(values.iter().all(|v| v == "local"));
        assert!(took < Duration::from_secs(1), "20 calls took {took:?}");
        server.thaw();
    });
}

/// A `Background` cache with the tier whose refreshes run on threads of their own, so
/// that a refresh held at a gate ties up no shared pool thread.
fn background(
    server: &RedisServer,
    clock: &ManualClock,
    lease: Duration,
) -> Cache<String, String, Background> {
    Cache::builder()
        .ttl(TTL)
        .clock(clock.clone())
        .background_refresh()
        .refresh_executor(|task: RefreshTask| {
            std::thread::spawn(move || task.run());
        })
        .shared(
            RedisTier::open(&server.url())
                .unwrap()
                .namespace("bg")
                .lease(lease),
        )
        .build()
}

/// A creator that says when it starts, then waits (bounded) for its gate to open.
fn gated(
    value: &'static str,
    created: Arc<AtomicUsize>,
    started: Sender<()>,
    gate: Receiver<()>,
) -> impl FnOnce() -> String + Send + 'static {
    move || {
        created.fetch_add(1, Ordering::SeqCst);
        let _ = started.send(());
        gate.recv_timeout(Duration::from_secs(10))
            .expect("the test never opened the gate");
        value.to_string()
    }
}

/// Makes both caches' copies of `k` (value `v1`) stale: in Redis by a soft invalidate
/// (not by waiting: Redis ages values by its real clock, F4, and a short ttl would let
/// the refreshed value go stale too on a slow machine), and in L1 by the manual clock.
fn make_stale(
    a: &Cache<String, String, Background>,
    b: &Cache<String, String, Background>,
    clock: &ManualClock,
) {
    a.get_with("k".into(), || "v1".into());
    assert_eq!(
        b.get_with("k".into(), || unreachable!("fresh in Redis")),
        "v1"
    );
    a.invalidate("k");
    clock.advance(TTL);
}

fn a_background_claimant_returns_at_once_while_the_fleet_refreshes_once() {
    // R10 with F1: the claimant hands the tier steps and the creation to its executor
    // and returns the stale value while the creator is still held at its gate; the
    // other cache serves the stale value too, creating nothing; the refresh's value is
    // published to Redis and reaches the other cache.
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let (a, b) = (
        background(&server, &clock, Duration::from_secs(30)),
        background(&server, &clock, Duration::from_secs(30)),
    );
    make_stale(&a, &b, &clock);
    let created = Arc::new(AtomicUsize::new(0));
    let (started_tx, started_rx) = channel();
    let (open_tx, open_rx) = channel();
    let called = Instant::now();
    let got = a.get_with(
        "k".into(),
        gated("v2", created.clone(), started_tx, open_rx),
    );
    assert_eq!(got, "v1", "the claimant is served the stale value");
    assert!(
        called.elapsed() < Duration::from_secs(2),
        "{:?}",
        called.elapsed()
    );
    started_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the refresh never started on the executor");
    // While a's refresh holds the lease, b (stale too) serves v1 and creates nothing.
    for _ in 0..20 {
        let count = created.clone();
        let got = b.get_with("k".into(), move || {
            count.fetch_add(1, Ordering::SeqCst);
            "from b".to_string()
        });
        assert_eq!(got, "v1");
    }
    assert_eq!(
        a.get_with("k".into(), || unreachable!("a is refreshing")),
        "v1"
    );
    open_tx.send(()).unwrap();
    let no_creation = |count: Arc<AtomicUsize>| {
        move || {
            count.fetch_add(1, Ordering::SeqCst);
            "not shared".to_string()
        }
    };
    assert!(
        holds_within(Duration::from_secs(3), || {
            a.get_with("k".into(), no_creation(created.clone())) == "v2"
                && b.get_with("k".into(), no_creation(created.clone())) == "v2"
        }),
        "the refreshed value did not reach both caches"
    );
    // Published in Redis: a third process takes it without creating (F3).
    let c_tier = RedisTier::open(&server.url()).unwrap().namespace("bg");
    let c: Cache<String, String> = Cache::builder()
        .ttl(TTL)
        .clock(clock.clone())
        .shared(c_tier)
        .build();
    assert_eq!(c.get_with("k".into(), || unreachable!("published")), "v2");
    assert_eq!(created.load(Ordering::SeqCst), 1, "one creation fleet-wide");
}

fn a_failing_background_refresh_releases_the_lease_at_once() {
    // F8 on the executor: a's refresh fails while its 30 s lease has long to run; b's
    // refresh claims the key at once and its value reaches a.
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let (a, b) = (
        background(&server, &clock, Duration::from_secs(30)),
        background(&server, &clock, Duration::from_secs(30)),
    );
    make_stale(&a, &b, &clock);
    let (failed_tx, failed_rx) = channel();
    let got = a.try_get_with("k".into(), move || {
        let _ = failed_tx.send(());
        Err::<String, &str>("backend down")
    });
    assert_eq!(got, Ok("v1".to_string()));
    failed_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the refresh never ran");
    assert!(
        holds_within(Duration::from_secs(3), || {
            b.get_with("k".into(), || "from b".into()) == "from b"
        }),
        "b could not refresh: the failed refresh kept its lease"
    );
    assert!(holds_within(Duration::from_secs(3), || {
        a.get_with("k".into(), || "from a".into()) == "from b"
    }));
}

/// Awaits a message on `rx` without blocking the runtime's thread, for at most 10 s.
/// (A `Receiver` is not `Sync`: behind a mutex, the awaiting future stays `Send`.)
async fn recv_async<T>(rx: &std::sync::Mutex<Receiver<T>>, what: &str) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let received = rx.lock().unwrap().try_recv();
        if let Ok(message) = received {
            return message;
        }
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn an_async_background_claimant_returns_at_once_and_the_runtime_refreshes() {
    // R10 with F1 for async callers: the refresh, tier steps and all, is spawned on the
    // caller's runtime; the claimant is served the stale value while it is held at its
    // gate, and its value reaches the other cache.
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let (a, b) = (
        background(&server, &clock, Duration::from_secs(30)),
        background(&server, &clock, Duration::from_secs(30)),
    );
    make_stale(&a, &b, &clock);
    let created = Arc::new(AtomicUsize::new(0));
    let (started_tx, started_rx) = channel();
    let (open_tx, open_rx) = channel::<()>();
    let (started_rx, open_rx) = (
        std::sync::Mutex::new(started_rx),
        std::sync::Mutex::new(open_rx),
    );
    let count = created.clone();
    let refresh = async move {
        count.fetch_add(1, Ordering::SeqCst);
        started_tx.send(()).unwrap();
        recv_async(&open_rx, "the test never opened the gate").await;
        "v2".to_string()
    };
    assert_eq!(a.get_with_async("k".into(), refresh).await, "v1");
    recv_async(&started_rx, "the refresh never started on the runtime").await;
    let count = created.clone();
    let other = async move {
        count.fetch_add(1, Ordering::SeqCst);
        "from b".to_string()
    };
    assert_eq!(b.get_with_async("k".into(), other).await, "v1");
    open_tx.send(()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let none = || async { unreachable!("the refresh was published") };
        let got_a = a.get_with_async("k".into(), none()).await;
        let got_b = b.get_with_async("k".into(), none()).await;
        if got_a == "v2" && got_b == "v2" {
            break;
        }
        assert!(Instant::now() < deadline, "got {got_a} and {got_b}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(created.load(Ordering::SeqCst), 1, "one creation fleet-wide");
}

fn invalidate_and_remove_reach_the_fleet_from_a_process_without_the_key() {
    // F6: `a` never asked for "k", so it holds no copy; its invalidate and remove still
    // reach Redis and b.
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let (a, b) = (cache(&server, &clock), cache(&server, &clock));
    wait_for_listeners(&server, 2);
    b.get_with("k".into(), || "v1".into());
    assert!(!a.contains_key("k"));
    a.invalidate("k");
    let reached = holds_within(Duration::from_secs(1), || {
        b.get_with("k".into(), || "v2".into()) == "v2"
    });
    assert!(reached, "invalidate did not reach b");
    assert!(!a.contains_key("k"));
    assert_eq!(a.remove("k"), None, "a held no copy");
    let reached = holds_within(Duration::from_secs(1), || {
        b.get_with("k".into(), || "v3".into()) == "v3"
    });
    assert!(reached, "remove did not reach b");
}

/// A third process, with no copy of anything: what it gets shows what Redis holds.
fn newcomer(server: &RedisServer, clock: &ManualClock) -> Cache<String, String> {
    cache(server, clock)
}

fn clear_and_invalidate_all_reach_every_process() {
    // F6 for a whole scope: `invalidate_all` (soft, R7) makes every copy stale, in
    // every process and in Redis; `clear` (hard, R1) makes every value absent. Each is
    // one script in Redis, whatever the number of keys.
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let (a, b) = (cache(&server, &clock), cache(&server, &clock));
    // Three keys watched below, and more that only make the calls' cost visible.
    for key in ["k1", "k2", "k3", "x1", "x2", "x3", "x4", "x5", "x6"] {
        a.get_with(key.into(), || "v1".into());
        assert_eq!(b.get_with(key.into(), || unreachable!()), "v1");
    }
    assert!(
        holds_within(Duration::from_secs(5), || server
            .subscribers("dogpile:c:events")
            == 2),
        "the notification links did not come up"
    );

    let before = scripts_run(&server);
    a.invalidate_all();
    // One script for nine keys (its first run loads it: EVALSHA, then EVAL).
    assert!(
        scripts_run(&server) <= before + 2,
        "one script for all keys"
    );
    // Still served (stale), and refreshed by the next caller, in b as in a.
    assert_eq!(a.get("k1"), Some("v1".to_string()));
    assert!(
        holds_within(Duration::from_secs(1), || {
            b.get_with("k1".into(), || "v2".into()) == "v2"
        }),
        "invalidate_all did not reach b"
    );
    assert_eq!(
        a.get_with("k1".into(), || unreachable!("b's refresh")),
        "v2"
    );
    // A process with no copy finds k2 stale in Redis: it refreshes.
    let n = newcomer(&server, &clock);
    assert_eq!(n.get_with("k2".into(), || "v2".into()), "v2");
    assert!(holds_within(Duration::from_secs(5), || server
        .subscribers("dogpile:c:events")
        == 3));

    let before = scripts_run(&server);
    a.clear();
    // One script (with, at most, the epoch read of a link that just came up).
    assert!(
        scripts_run(&server) <= before + 2,
        "one script for all keys"
    );
    assert!(
        holds_within(Duration::from_secs(1), || n.is_empty()),
        "clear did not reach n"
    );
    assert!(a.is_empty());
    assert!(
        holds_within(Duration::from_secs(1), || b.get("k3").is_none()
            && b.get("k1").is_none()),
        "clear did not reach b"
    );
    // Absent in Redis, not stale: while one newcomer creates, another waits for its
    // value (F2) instead of being served the cleared one (F1).
    let (started, creating) = channel();
    let creator = newcomer(&server, &clock);
    let created = std::thread::spawn(move || {
        creator.get_with("k3".into(), || {
            started.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            "v3".into()
        })
    });
    creating.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(
        newcomer(&server, &clock).get_with("k3".into(), || unreachable!("waits")),
        "v3",
        "a cleared value was served"
    );
    assert_eq!(created.join().unwrap(), "v3");
    assert_eq!(
        b.get_with("k3".into(), || unreachable!("created by the newcomer")),
        "v3"
    );
    assert_eq!(
        a.get_with("k3".into(), || unreachable!("created by the newcomer")),
        "v3"
    );
    assert_eq!(a.get_with("k1".into(), || "v3".into()), "v3");
}

fn a_creation_across_invalidate_all_publishes_a_stale_value() {
    // F5 for a whole scope: a value whose claim was granted before an `invalidate_all`
    // is stored with the epoch it was created under, so it is stale for everyone.
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let (a, b) = (cache(&server, &clock), cache(&server, &clock));
    let got = a.get_with("k".into(), || {
        b.invalidate_all();
        "created before".into()
    });
    assert_eq!(got, "created before", "its caller gets its value");
    assert_eq!(
        newcomer(&server, &clock).get_with("k".into(), || "created after".into()),
        "created after"
    );
}

fn a_process_that_missed_a_clear_learns_it_on_resubscribing() {
    // F6: b's notification link is down (refused) while a clears; b's copies stay until
    // the link is back, then the epoch re-read on subscribing clears them.
    let server = RedisServer::start();
    let acl = |rights: &str| {
        let _: () = redis::cmd("ACL")
            .arg("SETUSER")
            .arg("app")
            .arg("on")
            .arg(">pw")
            .arg("~*")
            .arg("+@all")
            .arg(rights)
            .query(&mut server.client())
            .unwrap();
    };
    acl("allchannels");
    let clock = ManualClock::new();
    let a = cache(&server, &clock);
    let url = format!("redis://app:pw@127.0.0.1:{}/", server.port());
    let tier_b = RedisTier::open(&url).unwrap().namespace("c");
    let b: Cache<String, String> = Cache::builder()
        .ttl(TTL)
        .clock(clock.clone())
        .shared(tier_b.clone())
        .build();
    for key in ["k", "untouched"] {
        a.get_with(key.into(), || "v1".into());
        assert_eq!(b.get_with(key.into(), || unreachable!()), "v1");
    }
    let channel = "dogpile:c:events";
    assert!(holds_within(Duration::from_secs(5), || server
        .subscribers(channel)
        == 2));

    acl("resetchannels");
    let _: () = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("USER")
        .arg("app")
        .query(&mut server.client())
        .unwrap();
    assert!(
        holds_within(Duration::from_secs(5), || server.subscribers(channel) == 1),
        "b's link is still up"
    );
    // b has noticed the lost link (and distrusted its copies) once its next subscription
    // is refused: the server seeing one subscriber is not enough on a busy machine.
    assert!(
        holds_within(Duration::from_secs(10), || matches!(
            tier_b.ping(),
            Err(dogpile_redis::Error::Notifications(_))
        )),
        "b never noticed its lost link"
    );
    a.clear();
    assert_eq!(
        b.get("untouched"),
        Some("v1".to_string()),
        "b missed the clear"
    );
    // Meanwhile a value created after the clear reaches b through its claim.
    assert_eq!(a.get_with("k".into(), || "v2".into()), "v2");
    assert_eq!(b.get_with("k".into(), || unreachable!("a's value")), "v2");

    acl("allchannels");
    // The link retries a refused subscription every 5 s.
    assert!(
        holds_within(Duration::from_secs(8), || b.get("untouched").is_none()),
        "b never learnt of the clear"
    );
    assert_eq!(b.get_with("untouched".into(), || "v2".into()), "v2");
}

fn sync_readers(
    server: &RedisServer,
    clock: &ManualClock,
) -> Cache<String, String, dogpile::mode::SyncReaders> {
    Cache::builder()
        .ttl(TTL)
        .clock(clock.clone())
        .sync_readers()
        .shared(
            RedisTier::open(&server.url())
                .unwrap()
                .namespace("sr")
                .lease(LONG_LEASE),
        )
        .build()
}

fn sync_readers_caches_create_once_and_refresh_once_across_caches() {
    // F2 then F1 in `sync_readers` mode: one creation for two caches; when the value goes
    // stale, one refresh, and the other cache serves the stale value meanwhile.
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let (a, b) = (sync_readers(&server, &clock), sync_readers(&server, &clock));
    let created = Arc::new(AtomicUsize::new(0));
    let counted = |value: &'static str| {
        let created = created.clone();
        move || {
            created.fetch_add(1, Ordering::SeqCst);
            value.to_string()
        }
    };
    assert_eq!(*a.get_with("k".into(), counted("v1")), "v1");
    assert_eq!(*b.get_with("k".into(), counted("from b")), "v1");
    assert_eq!(created.load(Ordering::SeqCst), 1, "F2: one creation");

    a.invalidate("k"); // stale in Redis (F6), and in both L1s by the clock
    clock.advance(TTL);
    let (started_tx, started_rx) = channel();
    let (open_tx, open_rx) = channel();
    std::thread::scope(|s| {
        let refresher = s.spawn(|| {
            let refresh = gated("v2", created.clone(), started_tx, open_rx);
            a.get_with("k".into(), refresh).to_string()
        });
        started_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("a's refresh never started");
        // a holds the lease: b serves its stale copy at once and creates nothing.
        for _ in 0..10 {
            let called = Instant::now();
            assert_eq!(*b.get_with("k".into(), counted("from b")), "v1");
            assert!(called.elapsed() < Duration::from_secs(2));
        }
        open_tx.send(()).unwrap();
        assert_eq!(refresher.join().unwrap(), "v2");
    });
    let reached = holds_within(Duration::from_secs(3), || {
        *b.get_with("k".into(), counted("from b")) == "v2"
    });
    assert!(reached, "the refreshed value did not reach b");
    assert_eq!(created.load(Ordering::SeqCst), 2, "F1: one refresh");
}

fn a_lost_notification_link_makes_every_l1_copy_checked_again() {
    // F6: events sent while the link is down are lost, so when it comes back the process
    // is told Reset and checks its L1 copies with Redis again. Redis's value is changed
    // behind the tier's back (no notification), so only that re-check can see it.
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let a = cache(&server, &clock);
    let watcher = RedisTier::open(&server.url()).unwrap().namespace("c");
    let (events_tx, events) = channel();
    dogpile::SharedTier::<String, String>::subscribe(
        &watcher,
        Arc::new(move |event| {
            let _ = events_tx.send(event);
        }),
    );
    wait_for_listeners(&server, 2);
    a.get_with("k".into(), || "v1".into());
    let value_keys: Vec<String> = redis::cmd("KEYS")
        .arg("dogpile:{c:*}:v")
        .query(&mut server.client())
        .unwrap();
    assert_eq!(value_keys.len(), 1, "{value_keys:?}");
    let v2_in_cbor: &[u8] = &[0x62, b'v', b'2']; // a text string of 2 bytes
    let _: i64 = redis::cmd("HSET")
        .arg(&value_keys[0])
        .arg("v")
        .arg(v2_in_cbor)
        .query(&mut server.client())
        .unwrap();
    let before = scripts_run(&server);
    assert_eq!(
        a.get_with("k".into(), || unreachable!()),
        "v1",
        "L1 trusted"
    );
    assert_eq!(scripts_run(&server), before, "a fresh L1 hit (F3)");

    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query(&mut server.client())
        .unwrap();
    assert_eq!(killed, 2, "both subscriptions were cut");
    assert_eq!(
        events.recv_timeout(Duration::from_secs(5)).unwrap(),
        dogpile::TierEvent::Reset
    );
    let rechecked = holds_within(Duration::from_secs(5), || {
        a.get_with("k".into(), || unreachable!("fresh in Redis")) == "v2"
    });
    assert!(
        rechecked,
        "a kept trusting its L1 copy after the link was lost"
    );
    // The link is back: events flow again.
    wait_for_listeners(&server, 2);
}

fn a_first_link_after_keys_went_through_the_tier_makes_their_l1_copies_checked_again() {
    // F6 and F7: the cache is built and used while Redis is down (its copy is made by the
    // local rules); events for that key may have gone unheard, so when the notification
    // link first comes up the process is told Reset and checks its copy in Redis again.
    let mut server = RedisServer::start();
    server.kill();
    let clock = ManualClock::new();
    let tier_a = RedisTier::open(&server.url()).unwrap().namespace("c");
    let a: Cache<String, String> = Cache::builder()
        .ttl(TTL)
        .clock(clock.clone())
        .shared(tier_a.clone())
        .build();
    assert_eq!(a.get_with("k".into(), || "local".into()), "local");
    server.restart();
    let b = cache(&server, &clock);
    assert_eq!(b.get_with("k".into(), || "v2".into()), "v2");
    // a's connections are back (its back-off after the failure is over, F7) and both
    // notification links are up; a still serves its own copy until told Reset.
    let probe = "probe".to_string();
    assert!(holds_within(Duration::from_secs(5), || {
        dogpile::SharedTier::<String, String>::lookup(&tier_a, &probe).is_ok()
    }));
    wait_for_listeners(&server, 2);
    let rechecked = holds_within(Duration::from_secs(5), || {
        a.get_with("k".into(), || unreachable!("fresh in Redis")) == "v2"
    });
    assert!(
        rechecked,
        "a kept trusting the copy it made while Redis was down"
    );
}

fn insert_stores_in_this_process_only() {
    // As documented on `Cache::insert` (and so for `{fn}_prime`): a value reaches the
    // tier only through a creation under its lease (F5).
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let a = cache(&server, &clock);
    a.insert("k".into(), "inserted".into());
    assert_eq!(a.get_with("k".into(), || unreachable!()), "inserted");
    assert_eq!(
        newcomer(&server, &clock).get_with("k".into(), || "created".into()),
        "created"
    );
}

support::redis_tests! {
    needs_redis: [
        a_fresh_l1_hit_never_touches_redis,
        a_cold_key_is_created_once_across_caches,
        a_cold_key_being_created_elsewhere_is_waited_for,
        ages_come_from_redis_whatever_the_local_clock,
        a_stale_key_is_refreshed_once_across_caches,
        invalidate_and_remove_reach_the_other_caches,
        a_failing_creator_releases_the_lease_at_once,
        with_redis_down_the_local_rules_apply,
        a_background_cache_refreshes_once_across_caches,
        a_waiter_elsewhere_takes_over_at_once_when_the_creator_fails,
        a_frozen_redis_neither_hangs_nor_fails_a_call,
        a_background_claimant_returns_at_once_while_the_fleet_refreshes_once,
        a_failing_background_refresh_releases_the_lease_at_once,
        invalidate_and_remove_reach_the_fleet_from_a_process_without_the_key,
        clear_and_invalidate_all_reach_every_process,
        a_creation_across_invalidate_all_publishes_a_stale_value,
        a_process_that_missed_a_clear_learns_it_on_resubscribing,
        sync_readers_caches_create_once_and_refresh_once_across_caches,
        a_lost_notification_link_makes_every_l1_copy_checked_again,
        a_first_link_after_keys_went_through_the_tier_makes_their_l1_copies_checked_again,
        insert_stores_in_this_process_only,
    ],
    needs_redis_async: [
        async_callers_share_through_the_tier,
        a_dropped_creation_releases_the_lease_at_once,
        an_async_background_claimant_returns_at_once_and_the_runtime_refreshes,
    ],
}
