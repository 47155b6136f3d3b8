//! Batches in the fleet tier, on a real `redis-server`: the batch steps keep each key's
//! lease and fence (F5); and across a fleet of real OS processes (this test binary
//! re-runs itself as worker processes, `DP_ROLE`) each key is created once per expiry
//! fleet-wide (F1, F2), and a batch costs Redis a few scripts, never one per key,
//! counted by the server itself (`INFO commandstats`). Every wait is bounded; every
//! process is killed on failure.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dogpile::{Cache, Claim, Lease, Publish, SharedTier};
use dogpile_redis::RedisTier;
use support::process::Worker;
use support::redis::RedisServer;

/// The value lifetime: short, so that a run of a few seconds crosses several expiries.
const TTL_MS: u64 = 300;
const RUN_MS: u64 = 2400;
const PROCESSES: usize = 4;
const THREADS: usize = 4;
/// Ids asked, and ids in each batch: each batch overlaps the others'.
const IDS: u64 = 40;
const BATCH: usize = 8;

fn main() {
    if std::env::var("DP_ROLE").is_ok() {
        return worker();
    }
    let mut suite = support::redis::Suite::new();
    suite.one_at_a_time();
    suite.needs_redis(
        "overlapping_batches_create_each_key_once_per_expiry_in_few_scripts",
        overlapping_batches_create_each_key_once_per_expiry_in_few_scripts,
    );
    suite.needs_redis(
        "a_batchs_steps_keep_each_keys_lease_and_fence",
        a_batchs_steps_keep_each_keys_lease_and_fence,
    );
    suite.needs_redis(
        "a_batch_follows_the_local_rules_while_redis_is_down",
        a_batch_follows_the_local_rules_while_redis_is_down,
    );
    suite.needs_redis(
        "a_slow_batch_renews_its_leases_together",
        a_slow_batch_renews_its_leases_together,
    );
    suite.run()
}

fn say(line: String) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// What one thread saw: each creation (id, wall-clock ms at its start), its batches,
/// those that reached the tier, and their keys that were not fresh in its cache.
type ThreadReport = (Vec<(u64, u64)>, u64, u64, u64);

/// One process: `THREADS` threads, each with a cache of its own on this process's tier
/// (so that each thread knows which of its batches reached the tier), asking batches of
/// `BATCH` ids out of `IDS` for `RUN_MS`. Reports every creation (`c id wall_ms`), its
/// batches and those that reached the tier.
fn worker() {
    let url = std::env::var("DP_URL").unwrap();
    let seed: u64 = std::env::var("DP_SEED").unwrap().parse().unwrap();
    // A deadline well above a round trip on a loaded machine: a timeout would follow
    // the local rules (F7) and create a second time, which this test would report.
    let tier = RedisTier::open(&url)
        .unwrap()
        .namespace("batches")
        .lease(Duration::from_secs(2))
        .timeout(Duration::from_secs(2));
    say("ready".into());
    let started = Instant::now();
    let reports: Vec<ThreadReport> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..THREADS as u64)
            .map(|thread| {
                let tier = tier.clone();
                s.spawn(move || {
                    let cache: Cache<u64, String> = Cache::builder()
                        .ttl(Duration::from_millis(TTL_MS))
                        .shared(tier)
                        .build();
                    let mut rng = seed * 1000 + thread + 1;
                    let (mut created, mut batches, mut reached, mut keys) = (Vec::new(), 0, 0, 0);
                    while started.elapsed() < Duration::from_millis(RUN_MS) {
                        let ids: Vec<u64> = (0..BATCH)
                            .map(|_| {
                                rng = rng
                                    .wrapping_mul(6364136223846793005)
                                    .wrapping_add(1442695040888963407);
                                (rng >> 33) % IDS
                            })
                            .collect();
                        let hits = cache.stats().hits;
                        let values = cache.get_many_with(&ids, |missing| {
                            let at = wall_ms();
                            created.extend(missing.iter().map(|&id| (id, at)));
                            std::thread::sleep(Duration::from_millis(5));
                            missing.iter().map(|id| format!("v{id}")).collect()
                        });
                        for (id, value) in ids.iter().zip(&values) {
                            assert_eq!(*value, format!("v{id}"));
                        }
                        batches += 1;
                        let missed = BATCH as u64 - (cache.stats().hits - hits);
                        if missed > 0 {
                            reached += 1;
                            keys += missed;
                        }
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    (created, batches, reached, keys)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    for (created, batches, reached, keys) in reports {
        for (id, at) in created {
            say(format!("c {id} {at}"));
        }
        say(format!("batches {batches}"));
        say(format!("reached {reached}"));
        say(format!("keys {keys}"));
    }
}

/// This test binary again, as a worker asking batches with `seed`.
fn spawn(server: &RedisServer, seed: usize) -> Worker {
    Worker::spawn_self(&[
        ("DP_ROLE", "batches".to_string()),
        ("DP_URL", server.url()),
        ("DP_SEED", seed.to_string()),
    ])
}

fn overlapping_batches_create_each_key_once_per_expiry_in_few_scripts() {
    let server = RedisServer::start();
    let scripts = || server.calls("evalsha") + server.calls("eval");
    let (scripts_before, commands_before) = (scripts(), server.total_calls());
    let workers: Vec<Worker> = (0..PROCESSES).map(|i| spawn(&server, i)).collect();
    let lines: Vec<String> = workers
        .into_iter()
        .flat_map(|w| w.finish(Duration::from_secs(60)))
        .collect();
    let scripts = scripts() - scripts_before;
    let commands = server.total_calls() - commands_before;
    let sum = |name: &str| -> u64 {
        let values = lines.iter().filter_map(|l| l.strip_prefix(name));
        values.map(|n| n.trim().parse::<u64>().unwrap()).sum()
    };
    let (batches, reached, keys) = (sum("batches "), sum("reached "), sum("keys "));
    let mut creations: HashMap<u64, Vec<u64>> = HashMap::new();
    for line in lines.iter().filter_map(|l| l.strip_prefix("c ")) {
        let (id, at) = line.split_once(' ').unwrap();
        creations
            .entry(id.parse().unwrap())
            .or_default()
            .push(at.parse().unwrap());
    }
    // F1, F2: two creations of one key are a lifetime apart at least (the next one
    // starts once the tier's value, published after the previous one started, is
    // past `TTL_MS`); the first is made once, fleet-wide.
    let mut expiries = 0;
    for (id, times) in &mut creations {
        times.sort_unstable();
        for pair in times.windows(2) {
            assert!(
                pair[1] - pair[0] >= TTL_MS,
                "key {id} created twice within one lifetime: {times:?}"
            );
        }
        expiries += 1 + (times[times.len() - 1] - times[0]) / TTL_MS;
    }
    let created: usize = creations.values().map(Vec::len).sum();
    let per_expiry = created as f64 / expiries as f64;
    let per_batch = scripts as f64 / reached as f64;
    let per_key = scripts as f64 / keys as f64;
    println!(
        "\n  fleet batches: {PROCESSES} processes x {THREADS} threads, ttl {TTL_MS} ms, \
         {RUN_MS} ms: {batches} batches of {BATCH} ids ({reached} reached the tier, with \
         {keys} keys not fresh here), {created} creations of {} ids over {expiries} key \
         expiries = {per_expiry:.2} per key per expiry; {scripts} Redis scripts = \
         {per_batch:.2} per batch that reached the tier, {per_key:.2} per key it asked \
         ({commands} commands, those inside the scripts included)",
        creations.len()
    );
    assert_eq!(creations.len() as u64, IDS, "every id was asked");
    assert!(
        per_expiry <= 1.0,
        "{per_expiry} creations per key per expiry"
    );
    assert!(
        expiries >= IDS * 3,
        "{expiries} key expiries: the run crossed too few lifetimes"
    );
    // One claim for the batch's keys, one publish of what it created, and a claim
    // again after each wait for a cold key another process creates: a few scripts per
    // batch on the one node, never one per key (a batch has `BATCH` keys).
    assert!(
        per_batch <= 2.0,
        "{scripts} scripts for {reached} batches that reached the tier"
    );
    // A script per key asked would be at least one per key.
    assert!(
        per_key <= 0.75,
        "{scripts} scripts for {keys} keys asked of the tier"
    );
}

fn a_slow_batch_renews_its_leases_together() {
    // F5: a creator that outlives its leases' length keeps them by renewal; a batch's
    // leases are due together and renewed with one script, not one per key. Two caches
    // on tiers opened apart stand for two processes.
    let server = RedisServer::start();
    let open = || {
        let tier = RedisTier::open(&server.url()).unwrap().namespace("slow");
        let tier = tier.lease(Duration::from_millis(300));
        Cache::<u64, String>::builder()
            .ttl(Duration::from_secs(60))
            .shared(tier)
            .build()
    };
    let (a, b) = (open(), open());
    let ids: Vec<u64> = (0..20).collect();
    let scripts = || server.calls("evalsha") + server.calls("eval");
    let before = scripts();
    let created = std::thread::scope(|s| {
        let slow = s.spawn(|| {
            a.get_many_with(&ids, |missing| {
                std::thread::sleep(Duration::from_millis(1000));
                missing.iter().map(|id| format!("a{id}")).collect()
            })
        });
        // Once a holds the 20 leases, b asks for the same ids: it waits for a's values
        // (F2) instead of creating, the leases being renewed past their 300 ms.
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.keys("dogpile:{slow:*}:l").len() < ids.len() {
            assert!(Instant::now() < deadline, "a never held the leases");
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut asked = Vec::new();
        let values = b.get_many_with(&ids, |missing| {
            asked.extend_from_slice(missing);
            missing.iter().map(|id| format!("b{id}")).collect()
        });
        let from_a: Vec<String> = ids.iter().map(|id| format!("a{id}")).collect();
        assert_eq!(values, from_a);
        assert!(
            asked.is_empty(),
            "b created {asked:?} while a's leases held"
        );
        slow.join().unwrap()
    });
    assert_eq!(created.len(), ids.len());
    let scripts = scripts() - before;
    println!(
        "\n  a batch of {} keys created in 1 s under leases of 300 ms, another cache waiting \
         for it: {scripts} Redis scripts in all",
        ids.len()
    );
    // About ten renewal rounds and a few claims: a script per key per renewal would be
    // 200.
    assert!(scripts <= 40, "{scripts} scripts");
}

fn a_batchs_steps_keep_each_keys_lease_and_fence() {
    let server = RedisServer::start();
    let open = || -> Box<dyn SharedTier<String, String>> {
        Box::new(RedisTier::open(&server.url()).unwrap().namespace("p"))
    };
    let (a, b) = (open(), open());
    let ttl = Duration::from_secs(60);
    let keys: Vec<String> = ["k1", "k2", "k3"].map(String::from).into();
    let owned = |claim: Result<Claim<String>, _>| match claim {
        Ok(Claim::Owned { lease, .. }) => lease,
        other => panic!("expected the lease, got {other:?}"),
    };
    let leases: Vec<Lease> = a
        .claim_many(&keys, Duration::ZERO)
        .into_iter()
        .map(owned)
        .collect();
    // F2, F5: each key's lease is a's; b finds each busy.
    for claim in b.claim_many(&keys, Duration::ZERO) {
        assert!(
            matches!(claim, Ok(Claim::Busy { stale: None, .. })),
            "{claim:?}"
        );
    }
    // F5 per key: k2 invalidated between claim and publish is fenced, the others stored.
    a.invalidate(&keys[1]).unwrap();
    let values: Vec<String> = keys.iter().map(|k| format!("v-{k}")).collect();
    let entries: Vec<(&String, &Lease, &String, Duration)> = (0..3)
        .map(|i| (&keys[i], &leases[i], &values[i], ttl))
        .collect();
    let published: Vec<Publish> = a
        .publish_many(&entries)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        published,
        [Publish::Stored, Publish::Rejected, Publish::Stored]
    );
    let claims = b.claim_many(&keys, Duration::ZERO);
    assert!(
        matches!(&claims[0], Ok(Claim::Fresh(v)) if v.value == "v-k1"),
        "{claims:?}"
    );
    assert!(
        matches!(&claims[2], Ok(Claim::Fresh(v)) if v.value == "v-k3"),
        "{claims:?}"
    );
    let [_, k2, _] = <[_; 3]>::try_from(claims).unwrap();
    let lease = owned(k2);
    // F8: released at once, k2 is a's to claim; released with a hold, nobody's.
    b.release_many(&[(&keys[1], &lease, Duration::ZERO)])[0]
        .as_ref()
        .unwrap();
    let lease = owned(a.claim(&keys[1], Duration::ZERO));
    a.release_many(&[(&keys[1], &lease, Duration::from_secs(30))])[0]
        .as_ref()
        .unwrap();
    let held = b.claim_many(&keys[1..2], Duration::ZERO);
    assert!(matches!(&held[0], Ok(Claim::Busy { .. })), "{held:?}");
}

fn a_batch_follows_the_local_rules_while_redis_is_down() {
    // F7: the tier's failure never reaches the caller; the batch's keys go to one
    // creator call, within one round trip's deadline, not one per key.
    let mut server = RedisServer::start();
    let tier = RedisTier::open(&server.url())
        .unwrap()
        .namespace("down")
        .timeout(Duration::from_millis(200));
    let cache: Cache<u64, String> = Cache::builder()
        .ttl(Duration::from_secs(60))
        .shared(tier)
        .build();
    assert_eq!(cache.get_many_with(&[0], |_| vec!["up".into()]), ["up"]);
    let batch = |ids: std::ops::RangeInclusive<u64>| {
        let ids: Vec<u64> = ids.collect();
        let mut asked = Vec::new();
        let begun = Instant::now();
        let values = cache.get_many_with(&ids, |missing| {
            asked.push(missing.to_vec());
            missing.iter().map(|id| format!("v{id}")).collect()
        });
        let took = begun.elapsed();
        assert_eq!(
            values,
            ids.iter().map(|id| format!("v{id}")).collect::<Vec<_>>()
        );
        assert_eq!(asked, [ids]);
        // 20 keys: one deadline of 200 ms (with a round trip per key, 4 s).
        assert!(took < Duration::from_secs(2), "{took:?} for 20 keys");
    };
    server.freeze(); // slow: every round trip runs into its deadline
    batch(1..=20);
    server.thaw();
    server.kill(); // down: refused at once
    batch(21..=40);
}
