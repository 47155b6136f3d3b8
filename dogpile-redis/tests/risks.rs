//! What the tier does with data and settings it did not expect: a creation time in the
//! future, a lease without expiry, key types and scopes that could be confused, wrong
//! credentials, script errors. Each against a real `redis-server`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dogpile::{Cache, Claim, ManualClock, SharedTier};
use dogpile_redis::RedisTier;
use serde::Serialize;
use support::redis::RedisServer;

const TTL: Duration = Duration::from_secs(60);

fn t(tier: &RedisTier) -> &dyn SharedTier<String, String> {
    tier
}

fn cache(server: &RedisServer, ns: &str, clock: &ManualClock) -> Cache<String, String> {
    let tier = RedisTier::open(&server.url()).unwrap().namespace(ns);
    Cache::builder()
        .ttl(TTL)
        .clock(clock.clone())
        .shared(tier)
        .build()
}

fn a_creation_time_in_the_future_is_stale_not_fresh() {
    // R1 with F4: a value stamped a minute ahead of Redis's clock (clock skew, a
    // failover to a server whose clock is behind) is not served as fresh for a minute
    // more than its lifetime: it counts as stale, and is refreshed.
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let writer = cache(&server, "r1", &clock);
    assert_eq!(writer.get_with("k".into(), || "old".into()), "old");
    let _: () = redis::cmd("HSET")
        .arg(server.slot_key("r1", "v"))
        .arg("t")
        .arg(server.now_ms() + 60_000)
        .query(&mut server.client())
        .unwrap();
    let reader = cache(&server, "r1", &clock);
    assert_eq!(reader.get_with("k".into(), || "new".into()), "new");
}

fn a_lease_without_expiry_runs_out_after_one_lease() {
    // R2 with F5: a lease key without a TTL (left by a foreign writer or an operator)
    // gets one, so refreshes resume after at most one lease.
    let server = RedisServer::start();
    let tier = RedisTier::open(&server.url())
        .unwrap()
        .namespace("r2")
        .lease(Duration::from_secs(2));
    let k = "k".to_string();
    t(&tier).remove(&k).unwrap();
    let lease_key = server.slot_key("r2", "v").replace(":v", ":l");
    let _: () = redis::cmd("SET")
        .arg(&lease_key)
        .arg("foreign")
        .query(&mut server.client())
        .unwrap();
    assert!(matches!(
        t(&tier).claim(&k, Duration::ZERO).unwrap(),
        Claim::Busy { .. }
    ));
    let left: i64 = redis::cmd("PTTL")
        .arg(&lease_key)
        .query(&mut server.client())
        .unwrap();
    assert!(left > 0 && left <= 2000, "lease left {left} ms");
}

#[derive(Serialize, Clone, Hash, PartialEq, Eq, Debug)]
struct UserId(u64);
#[derive(Serialize, Clone, Hash, PartialEq, Eq, Debug)]
struct OrderId(u64);

fn keys_of_two_types_with_one_encoding_stay_apart() {
    // R4: `UserId(7)` and `OrderId(7)` encode to the same CBOR; on one tier and
    // namespace they still name two values.
    let server = RedisServer::start();
    let tier = || RedisTier::open(&server.url()).unwrap().namespace("r4");
    let users: Cache<UserId, String> = Cache::builder().ttl(TTL).shared(tier()).build();
    let orders: Cache<OrderId, String> = Cache::builder().ttl(TTL).shared(tier()).build();
    assert_eq!(users.get_with(UserId(7), || "ada".into()), "ada");
    assert_eq!(orders.get_with(OrderId(7), || "order 7".into()), "order 7");
}

fn a_namespace_holding_the_separator_cannot_forge_a_scope() {
    // R4: `namespace("shop").scoped("app::x")` and `namespace("shop:app::x")` are two
    // namespaces.
    let server = RedisServer::start();
    let tier = || RedisTier::open(&server.url()).unwrap();
    let scoped: Cache<u64, u64> = Cache::builder()
        .ttl(TTL)
        .shared(tier().namespace("shop").scoped("app::x"))
        .build();
    let forged: Cache<u64, u64> = Cache::builder()
        .ttl(TTL)
        .shared(tier().namespace("shop:app::x"))
        .build();
    assert_eq!(scoped.get_with(1, || 10), 10);
    assert_eq!(forged.get_with(1, || 20), 20);
}

fn client_with_password(server: &RedisServer, pass: &str) -> redis::Connection {
    let url = format!("redis://:{pass}@127.0.0.1:{}/", server.port());
    let con = redis::Client::open(url)
        .unwrap()
        .get_connection_with_timeout(Duration::from_secs(2))
        .unwrap();
    con.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    con
}

/// Connections the server accepted so far (each costs this call one more).
fn connections(server: &RedisServer) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query(&mut client_with_password(server, "pw"))
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("total_connections_received:"))
        .map(|n| n.trim().parse().unwrap())
        .unwrap()
}

fn a_wrong_password_is_not_retried_in_a_loop() {
    // R5: the notification link does not knock every 200 ms with a password Redis
    // refuses; it waits seconds between attempts, and the failure is counted.
    let server = RedisServer::start();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("pw")
        .query(&mut server.client())
        .unwrap();
    let url = format!("redis://:wrong@127.0.0.1:{}/", server.port());
    let tier = RedisTier::open(&url).unwrap().namespace("r5");
    let before = connections(&server);
    let _cache: Cache<String, String> = Cache::builder().ttl(TTL).shared(tier.clone()).build();
    std::thread::sleep(Duration::from_secs(2));
    let attempts = connections(&server) - before - 1;
    assert!(
        attempts <= 2,
        "{attempts} logins with a refused password in 2 s"
    );
    assert!(tier.ping().is_err());
    assert!(
        tier.failures()
            .iter()
            .any(|f| f.cause == "authentication failed"),
        "{:?}",
        tier.failures()
    );
}

fn script_errors_are_counted_by_cause_and_reported_by_ping() {
    // A value key of another type fails every script of its slot: each failure is
    // counted (and logged once per interval), and `ping`, which runs a script on a slot
    // of its own, still says the tier works.
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let tier = RedisTier::open(&server.url()).unwrap().namespace("r6");
    let cache: Cache<String, String> = Cache::builder()
        .ttl(TTL)
        .clock(clock.clone())
        .shared(tier.clone())
        .build();
    assert_eq!(cache.get_with("k".into(), || "v".into()), "v");
    let value_key = server.slot_key("r6", "v");
    let _: () = redis::cmd("DEL")
        .arg(&value_key)
        .query(&mut server.client())
        .unwrap();
    let _: () = redis::cmd("RPUSH")
        .arg(&value_key)
        .arg("x")
        .query(&mut server.client())
        .unwrap();
    let created = AtomicUsize::new(0);
    for _ in 0..5 {
        cache.clear(); // the local copy goes: the next call asks the tier
        cache.get_with("k".into(), || {
            created.fetch_add(1, Ordering::SeqCst);
            "local".into()
        });
    }
    let wrongtype = tier
        .failures()
        .into_iter()
        .find(|f| f.cause == "WRONGTYPE")
        .expect("WRONGTYPE counted");
    assert_eq!(wrongtype.count, 5, "{wrongtype:?}");
    assert!(tier.ping().is_ok());
    assert_eq!(created.load(Ordering::SeqCst), 5, "local rules (F7)");
}

fn script_flush_and_flushall_are_survived() {
    // A flushed script cache is filled again on the first call (NOSCRIPT), and a
    // flushed database makes keys cold: neither stops sharing.
    let server = RedisServer::start();
    let clock = ManualClock::new();
    let (a, b) = (
        cache(&server, "flush", &clock),
        cache(&server, "flush", &clock),
    );
    assert_eq!(a.get_with("k".into(), || "v1".into()), "v1");
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query(&mut server.client())
        .unwrap();
    let created = AtomicUsize::new(0);
    let count = |value: &'static str| {
        let created = &created;
        move || {
            created.fetch_add(1, Ordering::SeqCst);
            value.to_string()
        }
    };
    assert_eq!(b.get_with("k".into(), count("b")), "v1", "taken from Redis");
    let _: () = redis::cmd("FLUSHALL").query(&mut server.client()).unwrap();
    let c = cache(&server, "flush", &clock);
    assert_eq!(c.get_with("k2".into(), count("c")), "c");
    assert_eq!(b.get_with("k2".into(), count("b")), "c", "taken from Redis");
    assert_eq!(created.load(Ordering::SeqCst), 1);
}

support::redis_tests! {
    needs_redis: [
        script_flush_and_flushall_are_survived,
        a_creation_time_in_the_future_is_stale_not_fresh,
        a_lease_without_expiry_runs_out_after_one_lease,
        keys_of_two_types_with_one_encoding_stay_apart,
        a_namespace_holding_the_separator_cannot_forge_a_scope,
        a_wrong_password_is_not_retried_in_a_loop,
        script_errors_are_counted_by_cause_and_reported_by_ping,
    ],
}
