//! The Redis protocol of a shared slot (claim, publish, renew, release, invalidate,
//! remove, notifications, deadlines), each step against a real `redis-server`.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dogpile::{Claim, Publish, SharedTier, SharedValue, TierEvent};
use dogpile_redis::RedisTier;
use support::redis::{holds_within, RedisServer};

const TTL: Duration = Duration::from_secs(60);
const BOUND: Duration = Duration::from_secs(5);
/// A claim that asks for no early refresh: only a value past its lifetime is claimed.
const NO_AHEAD: Duration = Duration::ZERO;

fn tier(server: &RedisServer) -> RedisTier {
    RedisTier::open(&server.url()).unwrap().namespace("t")
}

/// The trait's view, with the key and value types of these tests.
fn t(tier: &RedisTier) -> &dyn SharedTier<String, String> {
    tier
}

fn key(name: &str) -> String {
    name.to_string()
}

/// The value hash of the one key in the namespace.
fn value_key(server: &RedisServer) -> String {
    let found = server.keys("dogpile:{t:*}:v");
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

fn owned(claim: Claim<String>) -> (dogpile::Lease, Option<SharedValue<String>>) {
    match claim {
        Claim::Owned { lease, stale, .. } => (lease, stale),
        other => panic!("expected to own the lease, got {other:?}"),
    }
}

fn cold_claim_publish_then_fresh_everywhere() {
    let server = RedisServer::start();
    let (a, b) = (tier(&server), tier(&server));
    let k = key("cold");
    assert_eq!(t(&a).lookup(&k).unwrap(), None);

    let (lease, stale) = owned(t(&a).claim(&k, NO_AHEAD).unwrap());
    assert_eq!(stale, None);
    // F2: another process finds the claim and no value: it must wait, not create.
    match t(&b).claim(&k, NO_AHEAD).unwrap() {
        Claim::Busy {
            stale: None,
            lease_left,
        } => assert!(lease_left > Duration::ZERO),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        t(&a).publish(&k, &lease, &"v1".into(), TTL).unwrap(),
        Publish::Stored
    );

    // R4 fleet-wide: the claim re-checks and finds the fresh value.
    match t(&b).claim(&k, NO_AHEAD).unwrap() {
        Claim::Fresh(shared) => {
            assert_eq!(shared.value, "v1");
            assert!(shared.age < Duration::from_secs(1));
        }
        other => panic!("{other:?}"),
    }
    let found = t(&b).lookup(&k).unwrap().unwrap();
    assert_eq!(found.value, "v1");
}

fn both_keys_of_a_slot_share_one_cluster_hash_tag() {
    let server = RedisServer::start();
    let a = tier(&server);
    let k = key("tagged");
    let (_lease, _) = owned(t(&a).claim(&k, NO_AHEAD).unwrap());
    let found = server.keys("dogpile:*");
    assert_eq!(found.len(), 1, "only the lease exists yet: {found:?}");
    let lease_key = &found[0];
    let tag = &lease_key[lease_key.find('{').unwrap()..=lease_key.find('}').unwrap()];
    assert!(
        tag.starts_with("{t:") && tag.len() == "{t:}".len() + 40,
        "{tag}"
    );
    assert_eq!(lease_key, &format!("dogpile:{tag}:l"));
}

fn ages_come_from_the_redis_clock() {
    // F4: move the creation time back by a minute in Redis: every process sees the
    // value a minute old, whatever its own clock says.
    let server = RedisServer::start();
    let a = tier(&server);
    let k = key("aged");
    let (lease, _) = owned(t(&a).claim(&k, NO_AHEAD).unwrap());
    t(&a).publish(&k, &lease, &"v".into(), TTL).unwrap();
    let mut con = server.client();
    let (secs, _micros): (u64, u64) = redis::cmd("TIME").query(&mut con).unwrap();
    let _: () = redis::cmd("HSET")
        .arg(value_key(&server))
        .arg("t")
        .arg((secs - 90) * 1000)
        .query(&mut con)
        .unwrap();
    let age = t(&a).lookup(&k).unwrap().unwrap().age;
    assert!(
        age >= Duration::from_secs(89) && age < Duration::from_secs(92),
        "{age:?}"
    );
    // So it is stale for a 60 s ttl: a claim grants the refresh, with the stale value.
    let (_lease, stale) = owned(t(&a).claim(&k, NO_AHEAD).unwrap());
    assert_eq!(stale.unwrap().value, "v");
}

fn a_stale_key_is_claimed_once_and_the_others_get_the_stale_value() {
    // F1: the claim is atomic; every other claimant gets the stale value at once.
    let server = RedisServer::start();
    let tiers: Vec<RedisTier> = (0..4).map(|_| tier(&server)).collect();
    let k = key("stale");
    let short = Duration::from_millis(1);
    let (lease, _) = owned(t(&tiers[0]).claim(&k, NO_AHEAD).unwrap());
    t(&tiers[0])
        .publish(&k, &lease, &"old".into(), short)
        .unwrap();
    std::thread::sleep(Duration::from_millis(5)); // Redis time must pass the 1 ms lifetime

    let barrier = Arc::new(std::sync::Barrier::new(tiers.len()));
    let claims: Vec<Claim<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = tiers
            .iter()
            .map(|tier| {
                let (barrier, k) = (barrier.clone(), k.clone());
                s.spawn(move || {
                    barrier.wait();
                    t(tier).claim(&k, NO_AHEAD).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let owners = claims
        .iter()
        .filter(|c| matches!(c, Claim::Owned { .. }))
        .count();
    assert_eq!(owners, 1, "{claims:?}");
    for claim in &claims {
        match claim {
            Claim::Owned { stale, .. } | Claim::Busy { stale, .. } => {
                assert_eq!(stale.as_ref().unwrap().value, "old")
            }
            Claim::Fresh(_) => panic!("nothing fresh: {claims:?}"),
        }
    }
}

fn a_publish_after_the_lease_was_lost_is_rejected() {
    // F5: the lease runs out (here: deleted, as Redis does on expiry) and another
    // owner takes over; the first owner's late publish is fenced.
    let server = RedisServer::start();
    let (a, b) = (tier(&server), tier(&server));
    let k = key("fenced");
    let (late, _) = owned(t(&a).claim(&k, NO_AHEAD).unwrap());
    let lease_key = server.keys("dogpile:{t:*}:l").pop().unwrap();
    let _: () = redis::cmd("DEL")
        .arg(&lease_key)
        .query(&mut server.client())
        .unwrap();

    let (current, _) = owned(t(&b).claim(&k, NO_AHEAD).unwrap());
    assert_eq!(
        t(&a).publish(&k, &late, &"late".into(), TTL).unwrap(),
        Publish::Rejected
    );
    assert_eq!(
        t(&b).publish(&k, &current, &"current".into(), TTL).unwrap(),
        Publish::Stored
    );
    assert_eq!(t(&a).lookup(&k).unwrap().unwrap().value, "current");
    // A lease that merely expired, with nobody else claiming, is also lost (an early
    // refresh's claim, here: "current" has less than a whole lifetime left).
    let (expired, _) = owned(t(&a).claim(&k, TTL).unwrap());
    let _: () = redis::cmd("DEL")
        .arg(&lease_key)
        .query(&mut server.client())
        .unwrap();
    assert_eq!(
        t(&a).publish(&k, &expired, &"late".into(), TTL).unwrap(),
        Publish::Rejected
    );
    assert_eq!(t(&a).lookup(&k).unwrap().unwrap().value, "current");
}

fn a_publish_that_raced_an_invalidate_or_remove_is_rejected() {
    // F5: the generation moved while the owner was creating.
    let server = RedisServer::start();
    let (a, b) = (tier(&server), tier(&server));
    let k = key("raced");
    let (lease, _) = owned(t(&a).claim(&k, NO_AHEAD).unwrap());
    t(&b).invalidate(&k).unwrap();
    assert_eq!(
        t(&a)
            .publish(&k, &lease, &"computed before".into(), TTL)
            .unwrap(),
        Publish::Rejected
    );
    assert_eq!(t(&a).lookup(&k).unwrap(), None);

    let (lease, _) = owned(t(&a).claim(&k, NO_AHEAD).unwrap());
    t(&b).remove(&k).unwrap();
    assert_eq!(
        t(&a)
            .publish(&k, &lease, &"computed before".into(), TTL)
            .unwrap(),
        Publish::Rejected
    );
    assert_eq!(t(&a).lookup(&k).unwrap(), None);

    // A claim made after the remove publishes normally.
    let (lease, _) = owned(t(&a).claim(&k, NO_AHEAD).unwrap());
    assert_eq!(
        t(&a).publish(&k, &lease, &"after".into(), TTL).unwrap(),
        Publish::Stored
    );
}

fn the_lease_is_renewed_while_the_owner_lives() {
    // F5: a 200 ms lease held for a second is still held: the tier renews it.
    let server = RedisServer::start();
    let a = tier(&server).lease(Duration::from_millis(200));
    let b = tier(&server);
    let k = key("renewed");
    let (lease, _) = owned(t(&a).claim(&k, NO_AHEAD).unwrap());
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        assert!(
            matches!(t(&b).claim(&k, NO_AHEAD).unwrap(), Claim::Busy { .. }),
            "lease lost"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        t(&a).publish(&k, &lease, &"v".into(), TTL).unwrap(),
        Publish::Stored
    );
}

fn release_ends_the_lease_at_once_and_keeps_the_stale_value() {
    // F8.
    let server = RedisServer::start();
    let (a, b) = (tier(&server), tier(&server));
    let k = key("released");
    let (lease, _) = owned(t(&a).claim(&k, NO_AHEAD).unwrap());
    t(&a)
        .publish(&k, &lease, &"old".into(), Duration::from_millis(1))
        .unwrap();
    std::thread::sleep(Duration::from_millis(5));
    let (failing, _) = owned(t(&a).claim(&k, NO_AHEAD).unwrap());
    t(&a).release(&k, &failing, Duration::ZERO).unwrap();
    let (_next, stale) = owned(t(&b).claim(&k, NO_AHEAD).unwrap());
    assert_eq!(stale.unwrap().value, "old");
}

fn invalidate_is_soft_and_remove_is_hard() {
    // R7 on the shared value.
    let server = RedisServer::start();
    let a = tier(&server);
    let k = key("r7");
    let (lease, _) = owned(t(&a).claim(&k, NO_AHEAD).unwrap());
    t(&a).publish(&k, &lease, &"v".into(), TTL).unwrap();
    t(&a).invalidate(&k).unwrap();
    let shared = t(&a).lookup(&k).unwrap().unwrap();
    assert_eq!(shared.value, "v");
    assert!(shared.age >= TTL, "{:?}", shared.age);
    let (lease, stale) = owned(t(&a).claim(&k, NO_AHEAD).unwrap());
    assert_eq!(stale.unwrap().value, "v");
    t(&a).publish(&k, &lease, &"v2".into(), TTL).unwrap();
    t(&a).remove(&k).unwrap();
    assert_eq!(t(&a).lookup(&k).unwrap(), None);
    let (_lease, stale) = owned(t(&a).claim(&k, NO_AHEAD).unwrap());
    assert_eq!(stale, None);
}

fn every_process_hears_invalidate_remove_publish_and_release() {
    // F6, and the wake-ups that F2 and F8 rely on.
    let server = RedisServer::start();
    let (listener, actor) = (tier(&server), tier(&server));
    let (tx, rx) = mpsc::channel();
    t(&listener).subscribe(Arc::new(move |event| {
        let _ = tx.send(event);
    }));
    assert!(holds_within(BOUND, || server
        .subscribers("dogpile:t:events")
        == 1));
    let k = key("heard");
    t(&listener).lookup(&k).unwrap(); // this process has now seen the key
    let next = || {
        rx.recv_timeout(Duration::from_secs(1))
            .expect("no event within a second")
    };

    let (lease, _) = owned(t(&actor).claim(&k, NO_AHEAD).unwrap());
    t(&actor).release(&k, &lease, Duration::ZERO).unwrap();
    assert_eq!(next(), TierEvent::Released(k.clone()));
    let (lease, _) = owned(t(&actor).claim(&k, NO_AHEAD).unwrap());
    t(&actor).publish(&k, &lease, &"v".into(), TTL).unwrap();
    assert_eq!(next(), TierEvent::Published(k.clone()));
    t(&actor).invalidate(&k).unwrap();
    assert_eq!(next(), TierEvent::Invalidated(k.clone()));
    t(&actor).remove(&k).unwrap();
    assert_eq!(next(), TierEvent::Removed(k.clone()));

    // A key this process never saw has no local copy: no event.
    t(&actor).remove(&key("unseen")).unwrap();
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
}

fn a_lost_notification_link_resets_and_resumes() {
    // F6: after the link drops, local copies can no longer be trusted (Reset); once
    // Redis is back, events flow again.
    let mut server = RedisServer::start();
    let (listener, actor) = (tier(&server), tier(&server));
    let (tx, rx) = mpsc::channel();
    t(&listener).subscribe(Arc::new(move |event| {
        let _ = tx.send(event);
    }));
    assert!(holds_within(BOUND, || server
        .subscribers("dogpile:t:events")
        == 1));
    let k = key("link");
    t(&listener).lookup(&k).unwrap();
    server.kill();
    assert_eq!(rx.recv_timeout(BOUND).unwrap(), TierEvent::Reset);
    server.restart();
    assert!(holds_within(BOUND, || server
        .subscribers("dogpile:t:events")
        == 1));
    let k2 = k.clone();
    assert!(holds_within(BOUND, || t(&actor).remove(&k2).is_ok()));
    let heard: Vec<TierEvent<String>> =
        std::iter::from_fn(|| rx.recv_timeout(Duration::from_secs(1)).ok()).collect();
    assert!(heard.contains(&TierEvent::Removed(k)), "{heard:?}");
}

fn a_frozen_server_makes_calls_fail_fast_and_sharing_resumes() {
    // F7: SIGSTOP: the kernel still accepts connections, nothing answers.
    let server = RedisServer::start();
    let a = tier(&server).timeout(Duration::from_millis(100));
    let k = key("frozen");
    assert_eq!(t(&a).lookup(&k).unwrap(), None); // a pooled connection exists
    server.freeze();
    // On a thread, so that a hang (a missing deadline) fails the test instead.
    let (done, finished) = mpsc::channel();
    let (a2, k2, url) = (a.clone(), k.clone(), server.url());
    std::thread::spawn(move || {
        let started = Instant::now();
        let results = [
            t(&a2).lookup(&k2).is_err(),
            t(&a2).claim(&k2, NO_AHEAD).is_err(),
            t(&a2).remove(&k2).is_err(),
            // New connections too: connect and handshake are bounded.
            t(&RedisTier::open(&url)
                .unwrap()
                .timeout(Duration::from_millis(100)))
            .lookup(&k2)
            .is_err(),
        ];
        let _ = done.send((results, started.elapsed()));
    });
    let (results, took) = finished
        .recv_timeout(BOUND)
        .expect("a call to a frozen Redis hung");
    assert_eq!(results, [true; 4]);
    assert!(
        took < Duration::from_secs(1),
        "calls to a frozen Redis took {took:?}"
    );
    server.thaw();
    assert!(
        holds_within(Duration::from_secs(2), || t(&a).lookup(&k).is_ok()),
        "sharing did not resume"
    );
}

fn a_down_server_makes_calls_fail_fast_and_sharing_resumes() {
    // F7: connection refused.
    let mut server = RedisServer::start();
    let a = tier(&server);
    let k = key("down");
    server.kill();
    let started = Instant::now();
    for _ in 0..100 {
        assert!(t(&a).lookup(&k).is_err());
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    server.restart();
    let resumed = Instant::now();
    assert!(holds_within(Duration::from_secs(2), || t(&a)
        .lookup(&k)
        .is_ok()));
    assert!(
        resumed.elapsed() < Duration::from_secs(1),
        "resumed after {:?}",
        resumed.elapsed()
    );
}

fn corrupt_foreign_and_oversized_values_are_misses() {
    let server = RedisServer::start();
    let a = tier(&server);
    let k = key("bad");
    let (lease, _) = owned(t(&a).claim(&k, NO_AHEAD).unwrap());
    t(&a).publish(&k, &lease, &"good".into(), TTL).unwrap();
    let vkey = value_key(&server);
    let mut con = server.client();
    for garbage in [
        &b"\xff\xfe not cbor"[..],
        b"",
        b"\x80\x04\x95pickle",
        b"\x1b\x00\x00\x00\x01",
    ] {
        let _: () = redis::cmd("HSET")
            .arg(&vkey)
            .arg("v")
            .arg(garbage)
            .query(&mut con)
            .unwrap();
        assert_eq!(t(&a).lookup(&k).unwrap(), None, "{garbage:?}");
        // A fresh but unreadable value does not block this process: it may refresh.
        let (lease, stale) = owned(t(&a).claim(&k, NO_AHEAD).unwrap());
        assert_eq!(stale, None);
        t(&a).release(&k, &lease, Duration::ZERO).unwrap();
    }
    // Another type under the same key (another build): a miss for this one.
    let as_number: &dyn SharedTier<String, u64> = &a;
    let (lease, _) = owned(t(&a).claim(&k, NO_AHEAD).unwrap());
    t(&a).publish(&k, &lease, &"text".into(), TTL).unwrap();
    assert_eq!(as_number.lookup(&k).unwrap(), None);
    // Oversized: not transferred, a miss.
    let small = tier(&server).max_value_bytes(8);
    assert_eq!(t(&small).lookup(&k).unwrap().unwrap().value, "text");
    // Claimed early: asked a whole lifetime ahead, the value is due for a refresh.
    let (lease, _) = owned(t(&a).claim(&k, TTL).unwrap());
    t(&a)
        .publish(&k, &lease, &"a value longer than eight bytes".into(), TTL)
        .unwrap();
    assert_eq!(t(&small).lookup(&k).unwrap(), None);
}

fn a_value_keeps_its_own_lifetime_and_is_claimed_early_once() {
    // R6 fleet-wide: the lifetime travels with the value; a claim judges by it, and
    // `refresh_ahead` claims it early, once: the lease makes it one.
    let server = RedisServer::start();
    let (a, b) = (tier(&server), tier(&server));
    let k = key("lifetime");
    let (lease, _) = owned(t(&a).claim(&k, NO_AHEAD).unwrap());
    t(&a)
        .publish(&k, &lease, &"token".into(), Duration::from_secs(10))
        .unwrap();
    let shared = t(&b).lookup(&k).unwrap().unwrap();
    assert_eq!(shared.lifetime, Duration::from_secs(10));
    assert!(matches!(
        t(&b).claim(&k, NO_AHEAD).unwrap(),
        Claim::Fresh(_)
    ));
    // Less than 20 s left: due for an early refresh; one caller in the fleet owns it.
    let ahead = Duration::from_secs(20);
    let (early, stale) = owned(t(&a).claim(&k, ahead).unwrap());
    assert_eq!(stale.unwrap().value, "token");
    assert!(matches!(
        t(&b).claim(&k, ahead).unwrap(),
        Claim::Busy { stale: Some(_), .. }
    ));
    t(&a)
        .publish(&k, &early, &"renewed".into(), Duration::from_secs(60))
        .unwrap();
    // The new value's own lifetime judges it now: fresh even 20 s ahead.
    match t(&b).claim(&k, ahead).unwrap() {
        Claim::Fresh(shared) => assert_eq!(shared.value, "renewed"),
        other => panic!("{other:?}"),
    }
    // Soft invalidation ages it to its own lifetime.
    t(&b).invalidate(&k).unwrap();
    let shared = t(&a).lookup(&k).unwrap().unwrap();
    assert!(shared.age >= Duration::from_secs(60), "{:?}", shared.age);
    let (_lease, stale) = owned(t(&a).claim(&k, NO_AHEAD).unwrap());
    assert_eq!(stale.unwrap().value, "renewed");
}

fn a_release_with_a_hold_backs_the_key_off_fleet_wide() {
    // retry_backoff fleet-wide: a failed creation's lease turns into a back-off that
    // nobody owns; the failures in a row are counted until a publish.
    let server = RedisServer::start();
    let (a, b) = (tier(&server), tier(&server));
    let k = key("backoff");
    let Claim::Owned {
        lease, failures, ..
    } = t(&a).claim(&k, NO_AHEAD).unwrap()
    else {
        panic!("a cold key is claimed")
    };
    assert_eq!(failures, 0);
    t(&a)
        .release(&k, &lease, Duration::from_millis(300))
        .unwrap();
    match t(&b).claim(&k, NO_AHEAD).unwrap() {
        Claim::Busy {
            stale: None,
            lease_left,
        } => assert!(lease_left <= Duration::from_millis(300), "{lease_left:?}"),
        other => panic!("backing off, but {other:?}"),
    }
    assert!(holds_within(BOUND, || matches!(
        t(&b).claim(&k, NO_AHEAD).unwrap(),
        Claim::Owned { failures: 1, .. }
    )));
    let lease_key = server.keys("dogpile:{t:*}:l").pop().unwrap();
    let _: () = redis::cmd("DEL")
        .arg(&lease_key)
        .query(&mut server.client())
        .unwrap();
    let Claim::Owned {
        lease, failures, ..
    } = t(&a).claim(&k, NO_AHEAD).unwrap()
    else {
        panic!("the key is free")
    };
    assert_eq!(failures, 1);
    t(&a)
        .publish(&k, &lease, &"v".into(), Duration::from_millis(1))
        .unwrap();
    std::thread::sleep(Duration::from_millis(5));
    let Claim::Owned {
        lease, failures, ..
    } = t(&a).claim(&k, NO_AHEAD).unwrap()
    else {
        panic!("the 1 ms value is stale")
    };
    assert_eq!(failures, 0, "a publish ends the failures in a row");
    // A release without a hold (a panic, a dropped future) frees the key at once and
    // is no failure in a row.
    t(&a).release(&k, &lease, Duration::ZERO).unwrap();
    let Claim::Owned { failures, .. } = t(&b).claim(&k, NO_AHEAD).unwrap() else {
        panic!("released at once")
    };
    assert_eq!(failures, 0);
}

fn a_value_stored_without_a_lifetime_is_a_miss() {
    // A value an older build stored, without its lifetime: a miss, and claimed as cold.
    let server = RedisServer::start();
    let a = tier(&server);
    let k = key("old format");
    let (lease, _) = owned(t(&a).claim(&k, NO_AHEAD).unwrap());
    t(&a).publish(&k, &lease, &"v".into(), TTL).unwrap();
    let _: () = redis::cmd("HDEL")
        .arg(value_key(&server))
        .arg("d")
        .query(&mut server.client())
        .unwrap();
    assert_eq!(t(&a).lookup(&k).unwrap(), None);
    let (lease, stale) = owned(t(&a).claim(&k, NO_AHEAD).unwrap());
    assert_eq!(stale, None);
    t(&a).publish(&k, &lease, &"v2".into(), TTL).unwrap();
    assert_eq!(t(&a).lookup(&k).unwrap().unwrap().lifetime, TTL);
}

fn a_publish_is_fenced_by_the_generation_even_under_a_live_lease() {
    // F5: the publish checks the generation itself, not only the lease token.
    let server = RedisServer::start();
    let a = tier(&server);
    let k = key("generation");
    let (lease, _) = owned(t(&a).claim(&k, NO_AHEAD).unwrap());
    t(&a).publish(&k, &lease, &"v".into(), TTL).unwrap();
    // Claimed early: asked a whole lifetime ahead, the value is due for a refresh.
    let (lease, _) = owned(t(&a).claim(&k, TTL).unwrap());
    let _: () = redis::cmd("HINCRBY")
        .arg(value_key(&server))
        .arg("g")
        .arg(1)
        .query(&mut server.client())
        .unwrap();
    assert_eq!(
        t(&a).publish(&k, &lease, &"late".into(), TTL).unwrap(),
        Publish::Rejected
    );
    assert_eq!(t(&a).lookup(&k).unwrap().unwrap().value, "v");
}

support::redis_tests! {
    needs_redis: [
        cold_claim_publish_then_fresh_everywhere,
        both_keys_of_a_slot_share_one_cluster_hash_tag,
        ages_come_from_the_redis_clock,
        a_stale_key_is_claimed_once_and_the_others_get_the_stale_value,
        a_publish_after_the_lease_was_lost_is_rejected,
        a_publish_that_raced_an_invalidate_or_remove_is_rejected,
        the_lease_is_renewed_while_the_owner_lives,
        release_ends_the_lease_at_once_and_keeps_the_stale_value,
        invalidate_is_soft_and_remove_is_hard,
        every_process_hears_invalidate_remove_publish_and_release,
        a_lost_notification_link_resets_and_resumes,
        a_frozen_server_makes_calls_fail_fast_and_sharing_resumes,
        a_down_server_makes_calls_fail_fast_and_sharing_resumes,
        corrupt_foreign_and_oversized_values_are_misses,
        a_publish_is_fenced_by_the_generation_even_under_a_live_lease,
        a_value_keeps_its_own_lifetime_and_is_claimed_early_once,
        a_release_with_a_hold_backs_the_key_off_fleet_wide,
        a_value_stored_without_a_lifetime_is_a_miss,
    ],
}
