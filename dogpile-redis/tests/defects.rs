//! The tier under hostile conditions: held stale values and `stale_while_revalidate`, rejected
//! publishes, frozen handshakes, refused subscriptions and credentials, foreign data,
//! connection churn and dead pooled connections. Each against a real `redis-server`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use dogpile::{Cache, Claim, ManualClock, Publish, SharedTier};
use dogpile_redis::RedisTier;
use support::redis::{holds_within, RedisServer};

const BOUND: Duration = Duration::from_secs(5);

/// The trait's view, with the key and value types of these tests.
fn t(tier: &RedisTier) -> &dyn SharedTier<String, String> {
    tier
}

fn config_set(server: &RedisServer, name: &str, value: &str) {
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .query(&mut server.client())
        .unwrap();
}

fn counting_create<'a>(count: &'a AtomicUsize, value: &str) -> impl FnOnce() -> String + 'a {
    let value = value.to_string();
    move || {
        count.fetch_add(1, Ordering::SeqCst);
        value
    }
}

fn a_held_stale_value_past_stale_while_revalidate_is_not_served() {
    // R11 with F1: another process holds the lease and Redis has only a value far past
    // ttl + stale_while_revalidate; a caller waits for the owner's value instead of serving it.
    let server = RedisServer::start();
    let ttl = Duration::from_millis(300);
    let clock = ManualClock::new();
    let cache = || -> Cache<String, String> {
        let tier = RedisTier::open(&server.url()).unwrap().namespace("d1");
        Cache::builder()
            .ttl(ttl)
            .stale_while_revalidate(Duration::from_millis(300))
            .clock(clock.clone())
            .shared(tier)
            .build()
    };
    let writer = cache();
    assert_eq!(writer.get_with("k".into(), || "old".into()), "old");
    // Three seconds old by Redis's clock.
    let _: () = redis::cmd("HSET")
        .arg(server.slot_key("d1", "v"))
        .arg("t")
        .arg(server.now_ms() - 3000)
        .query(&mut server.client())
        .unwrap();
    clock.advance(Duration::from_secs(3)); // the writer's own copy is as old
    let owner = RedisTier::open(&server.url()).unwrap().namespace("d1");
    let k = "k".to_string();
    let Claim::Owned { lease, stale, .. } = t(&owner).claim(&k, Duration::ZERO).unwrap() else {
        panic!("the stale key is claimed");
    };
    assert_eq!(stale.unwrap().value, "old");
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            assert_eq!(
                t(&owner).publish(&k, &lease, &"new".into(), ttl).unwrap(),
                Publish::Stored
            );
        });
        let reader = cache();
        let started = Instant::now();
        assert_eq!(reader.get_with("k".into(), || "reader's".into()), "new");
        assert!(started.elapsed() < BOUND, "{:?}", started.elapsed());
        // The writer's own, equally old copy is not served either.
        let got = writer.get_with("k".into(), || "writer's".into());
        assert_ne!(got, "old");
    });
}

fn a_rejected_publish_ends_the_lease() {
    // F5 and F8: a publish fenced by the generation (the value hash evicted under a live
    // lease) stores nothing and ends the lease at once, so no caller waits it out.
    let server = RedisServer::start();
    let tier = RedisTier::open(&server.url()).unwrap().namespace("d2");
    let k = "k".to_string();
    t(&tier).remove(&k).unwrap(); // generation 1
    let Claim::Owned { lease, .. } = t(&tier).claim(&k, Duration::ZERO).unwrap() else {
        panic!("a cold key is claimed");
    };
    assert_eq!(lease.generation(), 1);
    let _: () = redis::cmd("DEL")
        .arg(server.slot_key("d2", "v"))
        .query(&mut server.client())
        .unwrap();
    assert_eq!(
        t(&tier).publish(&k, &lease, &"v".into(), BOUND).unwrap(),
        Publish::Rejected
    );
    assert!(server.keys("dogpile:{d2:*}:l").is_empty(), "lease left");
    let other = RedisTier::open(&server.url()).unwrap().namespace("d2");
    assert!(matches!(
        t(&other).claim(&k, Duration::ZERO).unwrap(),
        Claim::Owned { .. }
    ));
}

fn a_new_connection_to_a_frozen_redis_keeps_the_call_deadline() {
    // F7: the deadline bounds the whole connect (TCP, AUTH, SELECT, client name), not
    // each of its steps.
    let server = RedisServer::start();
    config_set(&server, "requirepass", "pw");
    let url = format!("redis://:pw@127.0.0.1:{}/3", server.port());
    let deadline = Duration::from_millis(250);
    let tier = RedisTier::open(&url).unwrap().timeout(deadline);
    tier.ping().unwrap();
    let fresh = RedisTier::open(&url).unwrap().timeout(deadline);
    server.freeze();
    let started = Instant::now();
    let answer = fresh.ping();
    let took = started.elapsed();
    server.thaw();
    assert!(answer.is_err());
    assert!(took < deadline + Duration::from_millis(150), "{took:?}");
}

fn a_refused_subscription_is_reported() {
    // F6: an ACL user without channel rights shares values, but notifications cannot
    // reach it; `ping` says so instead of reporting a healthy tier.
    let server = RedisServer::start();
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("app")
        .arg("on")
        .arg(">pw")
        .arg("~*")
        .arg("+@all")
        .arg("resetchannels")
        .query(&mut server.client())
        .unwrap();
    let url = format!("redis://app:pw@127.0.0.1:{}/", server.port());
    let tier = RedisTier::open(&url).unwrap().namespace("d4");
    let cache: Cache<String, String> = Cache::builder().ttl(BOUND).shared(tier.clone()).build();
    assert_eq!(cache.get_with("k".into(), || "v".into()), "v");
    assert!(
        holds_within(BOUND, || tier.ping().is_err()),
        "ping reports a healthy tier"
    );
    let err = tier.ping().unwrap_err().to_string();
    assert!(err.contains("NOPERM") && err.contains("subscri"), "{err}");
}

fn refused_credentials_do_not_make_the_listener_distrust_l1() {
    // F7: without the password, the tier is off and the local rules apply: a value
    // created locally stays fresh for its ttl, the listener's failures do not reset it.
    let server = RedisServer::start();
    config_set(&server, "requirepass", "pw");
    let clock = ManualClock::new();
    let tier = RedisTier::open(&server.url()).unwrap().namespace("d5");
    let cache: Cache<String, String> = Cache::builder()
        .ttl(Duration::from_secs(60))
        .clock(clock)
        .shared(tier)
        .build();
    let created = AtomicUsize::new(0);
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(3500) {
        cache.get_with("k".into(), counting_create(&created, "v"));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(created.load(Ordering::SeqCst), 1);
}

fn remove_repairs_a_slot_holding_foreign_data() {
    // A value key of another type, or a generation that is not a number, fails every
    // script of the slot; `remove` clears them, and sharing works again.
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let cache = || -> Cache<String, String> {
        let tier = RedisTier::open(&server.url()).unwrap().namespace("d6");
        Cache::builder()
            .ttl(Duration::from_secs(60))
            .clock(clock.clone())
            .shared(tier)
            .build()
    };
    type Plant = fn(&mut redis::Connection, &str);
    let plants: [(&str, Plant); 2] = [
        ("a list", |con, key| {
            let _: () = redis::cmd("DEL").arg(key).query(con).unwrap();
            let _: () = redis::cmd("RPUSH").arg(key).arg("x").query(con).unwrap();
        }),
        ("a generation that is no number", |con, key| {
            let _: () = redis::cmd("HSET")
                .arg(key)
                .arg("g")
                .arg("x")
                .query(con)
                .unwrap();
        }),
    ];
    for (what, plant) in plants {
        let (a, b) = (cache(), cache());
        assert_eq!(a.get_with("k".into(), || "v1".into()), "v1");
        plant(&mut server.client(), &server.slot_key("d6", "v"));
        a.remove(&"k".to_string());
        assert_eq!(a.get_with("k".into(), || "v2".into()), "v2");
        let created_by_b = AtomicUsize::new(0);
        let got = b.get_with("k".into(), counting_create(&created_by_b, "b's"));
        assert_eq!(got, "v2", "{what}: b takes a's value from Redis");
        assert_eq!(created_by_b.load(Ordering::SeqCst), 0, "{what}");
        let _: () = redis::cmd("FLUSHALL").query(&mut server.client()).unwrap();
    }
}

fn connections_received(server: &RedisServer) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query(&mut server.client())
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("total_connections_received:"))
        .map(|n| n.trim().parse().unwrap())
        .unwrap()
}

/// Keeps the server busy for `long` (a script that loops; `DEBUG SLEEP` is disabled by
/// default since Redis 7).
fn stall(con: &mut redis::Connection, long: Duration) {
    let busy = "local t = redis.call('TIME') local start = t[1] * 1e6 + t[2] \
                repeat t = redis.call('TIME') until t[1] * 1e6 + t[2] - start >= tonumber(ARGV[1])";
    let _: () = redis::cmd("EVAL")
        .arg(busy)
        .arg(0)
        .arg(long.as_micros() as u64)
        .query(con)
        .unwrap();
}

fn concurrent_callers_reuse_their_connections() {
    // 64 callers that call the tier in bursts (between bursts, their L1 answers) keep
    // about 64 connections, instead of opening new ones for every call the idle pool
    // had no room for. A short stall of the server puts each burst's calls in flight
    // at once.
    let server = RedisServer::start();
    let tier = RedisTier::open(&server.url()).unwrap().namespace("d7");
    let (threads, bursts) = (64, 20);
    let before = connections_received(&server);
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        for n in 0..threads {
            let (tier, barrier) = (&tier, &barrier);
            s.spawn(move || {
                let k = format!("k{n}");
                for _ in 0..bursts {
                    barrier.wait();
                    let _ = t(tier).lookup(&k);
                    barrier.wait();
                }
            });
        }
        let mut con = server.client();
        for _ in 0..bursts {
            barrier.wait();
            stall(&mut con, Duration::from_millis(20));
            barrier.wait();
        }
    });
    // The test's own connections count too: one for the stalls, one per INFO call.
    let opened = connections_received(&server) - before - 2;
    assert!(opened <= threads as u64 + 4, "{opened} connections opened");
}

fn dead_pooled_connections_do_not_stop_sharing() {
    // F7: a server that closed the pool's idle connections (`CLIENT KILL`, a `timeout`,
    // a load balancer) costs a reconnect, not a back-off of the whole tier.
    let server = RedisServer::start();
    let tier = Arc::new(RedisTier::open(&server.url()).unwrap().namespace("d8"));
    let barrier = Barrier::new(16);
    std::thread::scope(|s| {
        for n in 0..16 {
            let (tier, barrier) = (&tier, &barrier);
            s.spawn(move || {
                barrier.wait();
                t(tier).lookup(&format!("k{n}")).unwrap();
            });
        }
    });
    let _: () = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .arg("SKIPME")
        .arg("yes")
        .query(&mut server.client())
        .unwrap();
    for n in 0..20 {
        let answer = t(&tier).lookup(&format!("k{n}"));
        assert!(answer.is_ok(), "call {n}: {:?}", answer.err());
    }
}

fn remove_reaches_a_copy_stored_with_insert() {
    // F6 for every copy: a process that filled its cache with `insert` (a list
    // endpoint, say) drops that copy when another process removes the key.
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let cache = || -> Cache<String, String> {
        let tier = RedisTier::open(&server.url()).unwrap().namespace("f6");
        Cache::builder()
            .ttl(Duration::from_secs(60))
            .clock(clock.clone())
            .shared(tier)
            .build()
    };
    let (writer, lister) = (cache(), cache());
    assert!(holds_within(BOUND, || server
        .subscribers("dogpile:f6:events")
        == 2));
    lister.insert("k".into(), "listed".into());
    writer.remove(&"k".to_string());
    assert!(
        holds_within(BOUND, || lister.get(&"k".to_string()).is_none()),
        "the inserted copy outlived the remove"
    );
    lister.insert("k".into(), "listed again".into());
    writer.invalidate(&"k".to_string());
    let created = AtomicUsize::new(0);
    assert!(holds_within(BOUND, || {
        lister.get_with("k".into(), counting_create(&created, "fresh")) == "fresh"
    }));
}

fn a_value_taken_from_the_tier_counts_as_a_tier_hit() {
    // Stats tell a value another process created (taken from Redis) from one this
    // process created: the miss is answered by the tier, the creator never runs.
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let cache = || -> Cache<String, String> {
        let tier = RedisTier::open(&server.url()).unwrap().namespace("hits");
        Cache::builder()
            .ttl(Duration::from_secs(60))
            .clock(clock.clone())
            .shared(tier)
            .build()
    };
    let (a, b) = (cache(), cache());
    assert_eq!(a.get_with("k".into(), || "from a".into()), "from a");
    assert_eq!(b.get_with("k".into(), || "from b".into()), "from a");
    let (a, b) = (a.stats(), b.stats());
    assert_eq!((a.misses, a.tier_hits), (1, 0));
    assert_eq!((b.misses, b.tier_hits), (1, 1));
    assert!(b.to_string().ends_with(", tier hits 1"), "{b}");
}

support::redis_tests! {
    needs_redis: [
        a_held_stale_value_past_stale_while_revalidate_is_not_served,
        a_rejected_publish_ends_the_lease,
        a_new_connection_to_a_frozen_redis_keeps_the_call_deadline,
        a_refused_subscription_is_reported,
        refused_credentials_do_not_make_the_listener_distrust_l1,
        remove_repairs_a_slot_holding_foreign_data,
        concurrent_callers_reuse_their_connections,
        dead_pooled_connections_do_not_stop_sharing,
        remove_reaches_a_copy_stored_with_insert,
        a_value_taken_from_the_tier_counts_as_a_tier_hit,
    ],
}
