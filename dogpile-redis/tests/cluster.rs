//! The fleet tier on a real three-node Redis Cluster: two caches opened separately (two
//! "processes", each its own L1 and connections) share every key, whichever node owns
//! it; a killed node costs sharing for its keys only, never a hang (F7).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use dogpile::{Cache, ManualClock};
use dogpile_redis::RedisTier;
use support::redis::cluster::RedisCluster;
use support::redis::holds_within;

const TTL: Duration = Duration::from_secs(60);
const CHANNEL: &str = "dogpile:c:events";

fn tier(cluster: &RedisCluster) -> RedisTier {
    let urls = cluster.urls();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    RedisTier::open_cluster(&urls).unwrap().namespace("c")
}

fn cache(cluster: &RedisCluster, clock: &ManualClock, ttl: Duration) -> Cache<String, String> {
    Cache::builder()
        .ttl(ttl)
        .clock(clock.clone())
        .shared(tier(cluster))
        .build()
}

/// Two caches whose notification links are up (F6).
fn two_caches(
    cluster: &RedisCluster,
    clock: &ManualClock,
    ttl: Duration,
) -> (Cache<String, String>, Cache<String, String>) {
    let (a, b) = (cache(cluster, clock, ttl), cache(cluster, clock, ttl));
    // Touch each once so that its listener starts.
    a.get_with("warm-a".into(), || "w".into());
    b.get_with("warm-b".into(), || "w".into());
    assert!(
        holds_within(Duration::from_secs(5), || cluster.subscribers(CHANNEL) == 2),
        "the notification links did not come up"
    );
    (a, b)
}

/// Keys `prefix0..` made by `a`, grouped by the node that stored them, until each node
/// has at least `per_node`.
fn keys_on_each_node(
    cluster: &RedisCluster,
    a: &Cache<String, String>,
    prefix: &str,
    per_node: usize,
) -> [Vec<String>; 3] {
    let mut on: [Vec<String>; 3] = Default::default();
    for i in 0.. {
        assert!(i < 1000, "keys do not spread over the nodes: {on:?}");
        if on.iter().all(|keys| keys.len() >= per_node) {
            return on;
        }
        let key = format!("{prefix}{i}");
        let node = cluster.node_gaining_a_key(|| {
            a.get_with(key.clone(), || format!("v-{key}"));
        });
        on[node].push(key);
    }
    unreachable!()
}

fn keys_spread_over_all_nodes_and_each_slot_stays_on_one() {
    // Scale: the keys of one slot share a hash tag, so every script runs on one node
    // (a script touching keys of two slots is refused with CROSSSLOT).
    let cluster = RedisCluster::start();
    let clock = ManualClock::new();
    let a = cache(&cluster, &clock, TTL);
    for i in 0..60 {
        assert_eq!(
            a.get_with(format!("k{i}"), || format!("v{i}")),
            format!("v{i}")
        );
    }
    let sizes = cluster.sizes();
    assert!(sizes.iter().all(|&n| n > 0), "keys per node: {sizes:?}");
    // Only value hashes remain (the leases went with the publishes): one per key.
    let keys = cluster.all_keys();
    assert_eq!(keys.len(), 60, "{keys:?}");
    for key in &keys {
        let tag = key
            .strip_suffix(":v")
            .unwrap_or_else(|| panic!("not a value hash: {key}"));
        assert!(
            tag.starts_with("dogpile:{c:") && tag.ends_with('}'),
            "{key}"
        );
        assert_eq!(
            cluster.owner_of(key),
            cluster.owner_of(&format!("{tag}:l")),
            "{key}: value and lease on different nodes"
        );
    }
}

fn a_cold_key_is_created_once_across_caches_on_every_node() {
    // F2 and F3, for keys of each of the three nodes.
    let cluster = RedisCluster::start();
    let clock = ManualClock::new();
    let (a, b) = (cache(&cluster, &clock, TTL), cache(&cluster, &clock, TTL));
    let on = keys_on_each_node(&cluster, &a, "cold", 3);
    for key in on.iter().flatten() {
        let got = b.get_with(key.clone(), || unreachable!("b must not create {key}"));
        assert_eq!(got, format!("v-{key}"));
    }
}

fn a_stale_key_is_served_while_one_cache_refreshes() {
    // F1: both copies are stale; a refreshes (held at a gate) and b, meanwhile, returns
    // the stale value at once without creating; then b takes a's new value.
    let cluster = RedisCluster::start();
    let clock = ManualClock::new();
    let (a, b) = two_caches(&cluster, &clock, TTL);
    let on = keys_on_each_node(&cluster, &a, "stale", 1);
    for key in on.iter().flatten() {
        b.get_with(key.clone(), || unreachable!());
    }
    clock.advance(TTL); // local time: every L1 copy is stale
    let refreshes = AtomicUsize::new(0);
    for key in on.iter().flatten() {
        a.invalidate(key); // Redis: the shared value is stale (aged to the ttl)
        let (started_tx, started_rx) = mpsc::channel();
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        std::thread::scope(|s| {
            let (a, refreshes) = (&a, &refreshes);
            let refresher = s.spawn(move || {
                a.get_with(key.clone(), || {
                    refreshes.fetch_add(1, Ordering::SeqCst);
                    started_tx.send(()).unwrap();
                    gate_rx.recv_timeout(Duration::from_secs(10)).unwrap();
                    "new".to_string()
                })
            });
            started_rx
                .recv_timeout(Duration::from_secs(5))
                .expect("a did not refresh");
            let asked = Instant::now();
            let got = b.get_with(key.clone(), || unreachable!("b must not refresh {key}"));
            assert_eq!(got, format!("v-{key}"), "b serves the stale value");
            assert!(
                asked.elapsed() < Duration::from_secs(1),
                "{:?}",
                asked.elapsed()
            );
            gate_tx.send(()).unwrap();
            assert_eq!(refresher.join().unwrap(), "new");
        });
        // The publish reaches b (F6): its next call returns the new value.
        assert!(
            holds_within(Duration::from_secs(2), || {
                b.get_with(key.clone(), || unreachable!()) == "new"
            }),
            "{key}: b never saw a's new value"
        );
    }
    // One refresh per key, each by a.
    assert_eq!(
        refreshes.load(Ordering::SeqCst),
        on.iter().flatten().count()
    );
}

fn invalidate_and_remove_reach_the_other_cache_from_every_node() {
    // F6: each node's scripts publish; the notification reaches b's link, wherever it
    // is subscribed.
    let cluster = RedisCluster::start();
    let clock = ManualClock::new();
    let (a, b) = two_caches(&cluster, &clock, TTL);
    let on = keys_on_each_node(&cluster, &a, "inv", 2);
    for keys in &on {
        let (soft, hard) = (&keys[0], &keys[1]);
        for key in [soft, hard] {
            b.get_with(key.clone(), || unreachable!());
        }
        a.invalidate(soft);
        assert!(
            holds_within(Duration::from_secs(1), || {
                b.get_with(soft.clone(), || "refreshed".into()) == "refreshed"
            }),
            "invalidate of {soft} did not reach b"
        );
        a.remove(hard);
        assert!(
            holds_within(Duration::from_secs(1), || {
                b.get_with(hard.clone(), || "recreated".into()) == "recreated"
            }),
            "remove of {hard} did not reach b"
        );
    }
}

fn invalidate_all_and_clear_reach_the_other_cache_on_every_node() {
    // F6 for a whole scope on a cluster: the epochs live on one node, the slots on all
    // three; each claim carries the epochs, so no script crosses slots.
    let cluster = RedisCluster::start();
    let clock = ManualClock::new();
    let (a, b) = two_caches(&cluster, &clock, TTL);
    let on = keys_on_each_node(&cluster, &a, "all", 1);
    let keys: Vec<&String> = on.iter().map(|keys| &keys[0]).collect();
    for key in &keys {
        b.get_with((*key).clone(), || unreachable!());
    }
    a.invalidate_all();
    for key in &keys {
        assert!(
            holds_within(Duration::from_secs(1), || {
                b.get_with((*key).clone(), || "refreshed".into()) == "refreshed"
            }),
            "invalidate_all did not reach b for {key}"
        );
        assert_eq!(a.get_with((*key).clone(), || unreachable!()), "refreshed");
    }
    a.clear();
    for key in &keys {
        assert!(
            holds_within(Duration::from_secs(1), || b.get(key.as_str()).is_none()),
            "clear did not reach b for {key}"
        );
        assert_eq!(
            cache(&cluster, &clock, TTL).get_with((*key).clone(), || "recreated".into()),
            "recreated",
            "{key} is still in Redis"
        );
        assert_eq!(b.get_with((*key).clone(), || unreachable!()), "recreated");
    }
}

fn a_killed_node_costs_its_keys_sharing_never_a_hang() {
    // F7: node 0 (the first seed, which carries both notification links) is killed.
    // Calls for its keys fall back to the local rules within the deadline, and that
    // node backs off alone: keys of the other nodes stay shared; the links move to a
    // live node and, having missed events, reset (F6) and carry invalidations again.
    let mut cluster = RedisCluster::start();
    let clock = ManualClock::new();
    let fast = |cluster: &RedisCluster| -> Cache<String, String> {
        Cache::builder()
            .ttl(TTL)
            .clock(clock.clone())
            .shared(tier(cluster).timeout(Duration::from_millis(100)))
            .build()
    };
    let (a, b) = (fast(&cluster), fast(&cluster));
    a.get_with("warm-a".into(), || "w".into());
    b.get_with("warm-b".into(), || "w".into());
    assert!(holds_within(Duration::from_secs(5), || {
        cluster.node(0).subscribers(CHANNEL) == 2
    }));
    let on = keys_on_each_node(&cluster, &a, "kill", 5);
    let live_key = on[1][0].clone();
    b.get_with(live_key.clone(), || unreachable!());

    cluster.kill(0);
    let (done, finished) = mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            let started = Instant::now();
            let values: Vec<String> = on[0]
                .iter()
                .map(|key| b.get_with(key.clone(), || "local".into()))
                .collect();
            let _ = done.send((values, started.elapsed()));
        });
        let (values, took) = finished
            .recv_timeout(Duration::from_secs(10))
            .expect("a call hung on a killed node");
        assert!(values.iter().all(|v| v == "local"), "{values:?}");
        assert!(took < Duration::from_secs(1), "5 calls took {took:?}");
    });

    // Keys of the live nodes are still shared, at once: only node 0 backs off.
    for key in on[1][1..].iter().chain(&on[2]) {
        let got = b.get_with(key.clone(), || unreachable!("{key} is on a live node"));
        assert_eq!(got, format!("v-{key}"));
    }
    // Both links moved to a live node.
    assert!(
        holds_within(Duration::from_secs(5), || cluster.subscribers(CHANNEL) == 2),
        "the notification links did not move to a live node"
    );
    // A fresh L1 copy in b (from Redis, or local if b is backing off): only a
    // notification makes b drop it.
    b.get_with(live_key.clone(), || "local".into());
    assert!(
        holds_within(Duration::from_secs(2), || {
            // Repeated: a call during a's back-off after a node-0 failure stays local.
            a.invalidate(&live_key);
            b.get_with(live_key.clone(), || "refreshed".into()) == "refreshed"
        }),
        "invalidate did not reach b after the move"
    );
}

fn a_frozen_node_neither_hangs_nor_fails_a_call() {
    // F7: node 1 is frozen (SIGSTOP: the kernel still accepts connections, nothing is
    // answered). Calls for its keys fall back to the local rules within the deadline,
    // also when a new connection to the cluster has to be made.
    let cluster = RedisCluster::start();
    let clock = ManualClock::new();
    let fast = || -> Cache<String, String> {
        Cache::builder()
            .ttl(TTL)
            .clock(clock.clone())
            .shared(tier(&cluster).timeout(Duration::from_millis(100)))
            .build()
    };
    let (a, b) = (fast(), fast());
    let on = keys_on_each_node(&cluster, &a, "frozen", 5);
    b.get_with(on[0][0].clone(), || unreachable!()); // b has pooled connections
    cluster.node(1).freeze();
    let (done, finished) = mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            let started = Instant::now();
            let values: Vec<String> = on[1]
                .iter()
                .map(|key| b.get_with(key.clone(), || "local".into()))
                .collect();
            // A fresh tier must connect to the cluster with node 1 frozen.
            let c = fast();
            let more: Vec<String> = on[1]
                .iter()
                .map(|key| c.get_with(key.clone(), || "local".into()))
                .collect();
            let _ = done.send((values, more, started.elapsed()));
        });
        let outcome = finished.recv_timeout(Duration::from_secs(10));
        cluster.node(1).thaw();
        let (values, more, took) = outcome.expect("a call hung on a frozen node");
        assert!(
            values.iter().chain(&more).all(|v| v == "local"),
            "{values:?} {more:?}"
        );
        assert!(took < Duration::from_secs(2), "10 calls took {took:?}");
    });
}

fn a_moved_slot_is_followed_after_one_local_call() {
    // A slot handed to another node: a's pooled connection still sends its scripts to
    // the old owner, which answers MOVED; that call falls back to the local rules and
    // the next connection reads the new slot map, so sharing resumes.
    let cluster = RedisCluster::start();
    let clock = ManualClock::new();
    let (a, b) = two_caches(&cluster, &clock, TTL);
    let before = cluster.all_keys();
    let key = "moved".to_string();
    let node = cluster.node_gaining_a_key(|| {
        a.get_with(key.clone(), || "before the move".into());
    });
    let redis_key = cluster
        .all_keys()
        .into_iter()
        .find(|k| !before.contains(k))
        .unwrap();
    b.get_with(key.clone(), || unreachable!());
    // Empty the slot (a slot with keys cannot be handed over) and hand it on.
    let _: () = redis::cmd("DEL")
        .arg(&redis_key)
        .query(&mut cluster.node(node).client())
        .unwrap();
    let to = (node + 1) % 3;
    cluster.move_slot_of(&redis_key, node, to);
    assert!(
        holds_within(Duration::from_secs(2), || {
            // A remove that fails stays local and forgets the key here, so a creates.
            a.remove(&key);
            a.get_with(key.clone(), || "after the move".into());
            // b hears of a's publish (F6) only if it reached Redis.
            b.get_with(key.clone(), || "b's own".into()) == "after the move"
        }),
        "a's calls never reached the slot's new node"
    );
    let on_new_owner: u64 = redis::cmd("EXISTS")
        .arg(&redis_key)
        .query(&mut cluster.node(to).client())
        .unwrap();
    assert_eq!(on_new_owner, 1, "the slot's keys are not on node {to}");
}

/// Scripts run on each node so far, by its own `INFO commandstats`.
fn scripts_per_node(cluster: &RedisCluster) -> Vec<u64> {
    (0..3)
        .map(|i| cluster.node(i).calls("evalsha") + cluster.node(i).calls("eval"))
        .collect()
}

fn a_batch_costs_each_node_one_script_per_step() {
    // A batch's keys are grouped by the node that owns their slot: one claim script and
    // one publish script per node, whatever the number of keys (a script per node may
    // touch several slots of that node).
    let cluster = RedisCluster::start();
    let clock = ManualClock::new();
    let (a, b) = two_caches(&cluster, &clock, TTL);
    // The first batch script a node is sent is loaded there first (NOSCRIPT, then
    // SCRIPT LOAD on every node and a retry): counted apart.
    a.get_many_with(&["warm".to_string()], |keys| keys.to_vec());
    let keys: Vec<String> = (0..60).map(|i| format!("batch{i}")).collect();
    let (before, sizes) = (scripts_per_node(&cluster), cluster.sizes());
    let mut asked = Vec::new();
    let values = a.get_many_with(&keys, |missing| {
        asked.push(missing.len());
        missing.iter().map(|k| format!("v-{k}")).collect()
    });
    assert_eq!(
        values,
        keys.iter().map(|k| format!("v-{k}")).collect::<Vec<_>>()
    );
    assert_eq!(asked, [60]);
    // The value keys each node gained: the keys spread over the nodes.
    let on_each: Vec<u64> = cluster
        .sizes()
        .iter()
        .zip(&sizes)
        .map(|(after, before)| after - before)
        .collect();
    let first: Vec<u64> = scripts_per_node(&cluster)
        .iter()
        .zip(&before)
        .map(|(after, before)| after - before)
        .collect();

    // The other cache: the 60 are served from the tier, 30 new keys are created.
    let more: Vec<String> = (0..90).map(|i| format!("batch{i}")).collect();
    let before = scripts_per_node(&cluster);
    let mut asked = Vec::new();
    let values = b.get_many_with(&more, |missing| {
        asked.push(missing.to_vec());
        missing.iter().map(|k| format!("v-{k}")).collect()
    });
    assert_eq!(
        values,
        more.iter().map(|k| format!("v-{k}")).collect::<Vec<_>>()
    );
    assert_eq!(
        asked,
        [more[60..].to_vec()],
        "F1: the tier's values are served"
    );
    let second: Vec<u64> = scripts_per_node(&cluster)
        .iter()
        .zip(&before)
        .map(|(after, before)| after - before)
        .collect();
    println!(
        "\n  cluster batches: 60 cold keys ({on_each:?} by node): {first:?} scripts by node; \
         60 shared + 30 cold keys: {second:?} scripts by node"
    );
    assert!(on_each.iter().all(|&n| n > 0), "{on_each:?}");
    assert!(first.iter().all(|&n| n <= 2), "{first:?} scripts by node");
    assert!(second.iter().all(|&n| n <= 2), "{second:?} scripts by node");
}

fn a_killed_node_costs_a_batch_its_keys_sharing_only() {
    // F7 per node: a batch over keys of every node, one node killed: its keys follow
    // the local rules within the deadline, the other nodes' keys stay shared.
    let mut cluster = RedisCluster::start();
    let clock = ManualClock::new();
    let fast = |cluster: &RedisCluster| -> Cache<String, String> {
        Cache::builder()
            .ttl(TTL)
            .clock(clock.clone())
            .shared(tier(cluster).timeout(Duration::from_millis(100)))
            .build()
    };
    let (a, b) = (fast(&cluster), fast(&cluster));
    b.get_with("warm-b".into(), || "w".into());
    let on = keys_on_each_node(&cluster, &a, "bkill", 5);
    cluster.kill(2);
    let keys: Vec<String> = on.iter().flatten().cloned().collect();
    let (done, finished) = mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            let started = Instant::now();
            let mut asked = Vec::new();
            let values = b.get_many_with(&keys, |missing| {
                asked.extend_from_slice(missing);
                missing.iter().map(|_| "local".to_string()).collect()
            });
            let _ = done.send((values, asked, started.elapsed()));
        });
        let (values, asked, took) = finished
            .recv_timeout(Duration::from_secs(10))
            .expect("a batch hung on a killed node");
        assert_eq!(asked, on[2], "only the killed node's keys are created here");
        for (key, value) in keys.iter().zip(&values) {
            let expected = match on[2].contains(key) {
                true => "local".to_string(),
                false => format!("v-{key}"),
            };
            assert_eq!(*value, expected);
        }
        assert!(took < Duration::from_secs(1), "the batch took {took:?}");
    });
}

support::redis_tests! {
    needs_redis: [
        a_killed_node_costs_a_batch_its_keys_sharing_only,
        a_batch_costs_each_node_one_script_per_step,
        keys_spread_over_all_nodes_and_each_slot_stays_on_one,
        a_cold_key_is_created_once_across_caches_on_every_node,
        a_stale_key_is_served_while_one_cache_refreshes,
        invalidate_and_remove_reach_the_other_cache_from_every_node,
        invalidate_all_and_clear_reach_the_other_cache_on_every_node,
        a_killed_node_costs_its_keys_sharing_never_a_hang,
        a_frozen_node_neither_hangs_nor_fails_a_call,
        a_moved_slot_is_followed_after_one_local_call,
    ],
}
