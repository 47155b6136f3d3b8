//! The fleet tier across real OS processes: this test binary re-runs itself as worker
//! processes (role in `DP_ROLE`), each with its own `Cache` and connections, on one real
//! `redis-server`. Every wait is bounded; every process is killed on failure.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dogpile::Cache;
use dogpile_redis::RedisTier;
use support::process::Worker;
use support::redis::RedisServer;

fn main() {
    if let Ok(role) = std::env::var("DP_ROLE") {
        return worker(&role);
    }
    // One scenario at a time: each times its worker processes on the machine's cores.
    let mut suite = support::redis::Suite::new();
    suite.one_at_a_time();
    suite.needs_redis(
        "hot_key_one_refresh_per_expiry_fleet_wide",
        hot_key_one_refresh_per_expiry_fleet_wide,
    );
    suite.needs_redis(
        "cold_key_created_once_across_processes",
        cold_key_created_once_across_processes,
    );
    suite.needs_redis(
        "sigkill_mid_creation_is_taken_over",
        sigkill_mid_creation_is_taken_over,
    );
    suite.needs_redis(
        "sigstop_past_the_lease_is_fenced",
        sigstop_past_the_lease_is_fenced,
    );
    suite.needs_redis(
        "redis_killed_and_restarted_under_load",
        redis_killed_and_restarted_under_load,
    );
    suite.needs_redis(
        "failing_creator_hands_over_at_once",
        failing_creator_hands_over_at_once,
    );
    suite.needs_redis(
        "invalidate_and_remove_reach_other_processes",
        invalidate_and_remove_reach_other_processes,
    );
    suite.needs_redis(
        "invalidate_all_and_clear_reach_four_processes",
        invalidate_all_and_clear_reach_four_processes,
    );
    suite.run()
}

// ---------------------------------------------------------------------------------
// Workers

fn env_ms(name: &str, default: u64) -> Duration {
    Duration::from_millis(
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn say(line: String) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

fn worker(role: &str) {
    let url = std::env::var("DP_URL").unwrap();
    let tier = RedisTier::open(&url)
        .unwrap()
        .namespace("fleet")
        .lease(env_ms("DP_LEASE_MS", 1000))
        .timeout(Duration::from_millis(100));
    // A process may run on a clock far off the others' (F4: ages come from Redis).
    let skewed = dogpile::ManualClock::new();
    skewed.advance(Duration::from_secs(env_num("DP_SKEW_S", 0) as u64));
    let builder = Cache::builder()
        .ttl(env_ms("DP_TTL_MS", 60_000))
        .shared(tier);
    let cache: Cache<String, String> = if std::env::var("DP_SKEW_S").is_ok() {
        builder.clock(skewed).build()
    } else {
        builder.build()
    };
    let key = std::env::var("DP_KEY").unwrap_or_else(|_| "k".into());
    let name = std::env::var("DP_NAME").unwrap_or_else(|_| std::process::id().to_string());
    let create_for = env_ms("DP_CREATE_MS", 0);
    match role {
        // Threads hammer one key until told to stop by the run time.
        "hammer" => {
            let run_for = env_ms("DP_RUN_MS", 2000);
            let created = Arc::new(AtomicUsize::new(0));
            let calls = AtomicUsize::new(0);
            let slow = AtomicUsize::new(0);
            let max_micros = AtomicU64::new(0);
            say("ready".into());
            let started = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..env_num("DP_THREADS", 4) {
                    s.spawn(|| {
                        // The first call may wait for the cold creation (F2): only
                        // later calls count as slow or not.
                        let mut first = true;
                        while started.elapsed() < run_for {
                            let call = Instant::now();
                            let created = created.clone();
                            let value = cache.get_with(key.clone(), move || {
                                created.fetch_add(1, Ordering::SeqCst);
                                std::thread::sleep(create_for);
                                "v".to_string()
                            });
                            assert_eq!(value, "v");
                            let took = call.elapsed();
                            calls.fetch_add(1, Ordering::Relaxed);
                            if !std::mem::take(&mut first)
                                && took >= create_for
                                && !create_for.is_zero()
                            {
                                slow.fetch_add(1, Ordering::Relaxed);
                            }
                            max_micros.fetch_max(took.as_micros() as u64, Ordering::Relaxed);
                            std::thread::sleep(Duration::from_micros(200));
                        }
                    });
                }
            });
            say(format!("created {}", created.load(Ordering::SeqCst)));
            say(format!("calls {}", calls.load(Ordering::SeqCst)));
            say(format!("slow {}", slow.load(Ordering::SeqCst)));
            say(format!("max_us {}", max_micros.load(Ordering::SeqCst)));
        }
        // One call, whose creator announces itself; optionally a second call later.
        "once" => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).unwrap(); // "go"
            let started = Instant::now();
            let fail = std::env::var("DP_FAIL").is_ok();
            let value = cache.try_get_with(key.clone(), || {
                say("creating".into());
                std::thread::sleep(create_for);
                if fail {
                    return Err("backend down");
                }
                Ok(format!("from {name}"))
            });
            match value {
                Ok(value) => say(format!(
                    "got {value} after_ms {}",
                    started.elapsed().as_millis()
                )),
                Err(error) => say(format!("err {error}")),
            }
            if std::env::var("DP_AGAIN").is_ok() {
                let value = cache.get_with(key.clone(), || "created again".into());
                say(format!("again {value}"));
            }
        }
        // Holds the key, then reports how soon another process's invalidate and
        // remove reach it (F6).
        "watch" => {
            cache.get_with(key.clone(), || "original".into());
            say("have".into());
            let seen = Instant::now();
            let within = Duration::from_secs(10);
            while cache.get_with(key.clone(), || "refreshed".into()) != "refreshed" {
                assert!(seen.elapsed() < within, "invalidate never arrived");
                std::thread::sleep(Duration::from_millis(2));
            }
            say(format!("invalidated_ms {}", seen.elapsed().as_millis()));
            say("go on".into());
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).unwrap(); // removed by now
            let seen = Instant::now();
            while cache.get(&key).is_some() {
                assert!(seen.elapsed() < within, "remove never arrived");
                std::thread::sleep(Duration::from_millis(2));
            }
            say(format!("removed_ms {}", seen.elapsed().as_millis()));
        }
        other => panic!("unknown role {other}"),
    }
}

// ---------------------------------------------------------------------------------
// The parent's side

/// This test binary again, as a worker in `role` against `server`.
fn spawn(server: &RedisServer, role: &str, env: &[(&str, String)]) -> Worker {
    let mut all = vec![("DP_ROLE", role.to_string()), ("DP_URL", server.url())];
    all.extend(env.iter().cloned());
    Worker::spawn_self(&all)
}

/// `name N` lines of one worker's report.
fn report(lines: &[String]) -> HashMap<String, u64> {
    lines
        .iter()
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect()
}

const SECOND: Duration = Duration::from_secs(1);

fn hot_key_one_refresh_per_expiry_fleet_wide() {
    // F1, F3: 4 processes x 4 threads on one key, ttl 200 ms, for 2 s (~8 expiries of
    // a value that takes 50 ms to create). A call is slow if it took a creation's time.
    let server = RedisServer::start();
    let (ttl, run) = (200, 2000);
    let before = server.calls("evalsha") + server.calls("eval");
    let workers: Vec<Worker> = (0..4)
        .map(|_| {
            spawn(
                &server,
                "hammer",
                &[
                    ("DP_TTL_MS", ttl.to_string()),
                    ("DP_RUN_MS", run.to_string()),
                    ("DP_CREATE_MS", "20".into()),
                    ("DP_THREADS", "4".into()),
                    ("DP_KEY", "hot".into()),
                ],
            )
        })
        .collect();
    let reports: Vec<HashMap<String, u64>> = workers
        .into_iter()
        .map(|w| report(&w.finish(30 * SECOND)))
        .collect();
    let created: u64 = reports.iter().map(|r| r["created"]).sum();
    let calls: u64 = reports.iter().map(|r| r["calls"]).sum();
    let slow: u64 = reports.iter().map(|r| r["slow"]).sum();
    let scripts = server.calls("evalsha") + server.calls("eval") - before;
    // Workers start within a few hundred ms of each other: their runs span at most
    // run + 1 s; one refresh per ttl, plus the first creation.
    let expiries = (run + 1000) / ttl;
    println!(
        "\n  fleet: {created} creations, {calls} calls, {slow} slow calls, {scripts} Redis scripts \
         (~{} per expiry window of {ttl} ms)",
        scripts / expiries
    );
    assert!(
        created <= expiries + 1,
        "{created} creations for at most {expiries} expiries"
    );
    assert!(created >= 2, "the hot key was never refreshed: {created}");
    // Only refreshers are slow: at most one slow call per creation.
    assert!(slow <= created, "{slow} slow calls for {created} creations");
    // A handful of Redis commands per key per expiry per process, not one per call.
    assert!(
        scripts <= expiries * 4 * 6,
        "{scripts} scripts for {expiries} expiries"
    );
    assert!(calls >= scripts * 10, "{calls} calls for {scripts} scripts");
}

fn cold_key_created_once_across_processes() {
    // F2, with F4: clock skew changes nothing.
    let server = RedisServer::start();
    let mut workers: Vec<Worker> = (0..4)
        .map(|i| {
            // Two of them on clocks an hour and a day ahead (F4).
            let skew = [None, None, Some(3600), Some(86_400)][i];
            let mut env = vec![
                ("DP_CREATE_MS", "300".to_string()),
                ("DP_NAME", format!("w{i}")),
            ];
            env.extend(skew.map(|s: u64| ("DP_SKEW_S", s.to_string())));
            spawn(&server, "once", &env)
        })
        .collect();
    for worker in &mut workers {
        worker.send("go");
    }
    let lines: Vec<String> = workers
        .into_iter()
        .flat_map(|w| w.finish(10 * SECOND))
        .collect();
    let creating = lines.iter().filter(|l| *l == "creating").count();
    let values: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("got "))
        .map(|l| l.split(" after_ms").next().unwrap())
        .collect();
    assert_eq!(creating, 1, "{lines:?}");
    assert_eq!(values.len(), 4, "{lines:?}");
    assert!(values.iter().all(|v| *v == values[0]), "{values:?}");
}

fn sigkill_mid_creation_is_taken_over() {
    // F5: the owner dies; its lease (1 s) runs out; another process creates.
    let server = RedisServer::start();
    let lease = 1000;
    let mut dying = spawn(
        &server,
        "once",
        &[
            ("DP_CREATE_MS", "60000".into()),
            ("DP_NAME", "dying".into()),
            ("DP_LEASE_MS", lease.to_string()),
        ],
    );
    dying.send("go");
    assert_eq!(dying.expect_line(10 * SECOND), "creating");
    let mut heir = spawn(
        &server,
        "once",
        &[
            ("DP_CREATE_MS", "0".into()),
            ("DP_NAME", "heir".into()),
            ("DP_LEASE_MS", lease.to_string()),
        ],
    );
    heir.send("go");
    std::thread::sleep(Duration::from_millis(200)); // the heir waits on the claim
    dying.signal("-KILL");
    let lines = heir.finish(10 * SECOND);
    let got = lines
        .iter()
        .find(|l| l.starts_with("got "))
        .expect("heir got nothing");
    assert!(got.starts_with("got from heir "), "{lines:?}");
    let after: u64 = got.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        after < lease + 800,
        "took over after {after} ms (lease {lease} ms)"
    );
}

fn sigstop_past_the_lease_is_fenced() {
    // F5: the owner freezes past its lease; another process takes over; the frozen
    // one's late publish is rejected, yet its own caller gets its value; its next call
    // gets the fleet's value.
    let server = RedisServer::start();
    let lease = 500;
    let mut frozen = spawn(
        &server,
        "once",
        &[
            ("DP_CREATE_MS", "300".into()),
            ("DP_NAME", "frozen".into()),
            ("DP_LEASE_MS", lease.to_string()),
            ("DP_AGAIN", "1".into()),
        ],
    );
    frozen.send("go");
    assert_eq!(frozen.expect_line(10 * SECOND), "creating");
    frozen.signal("-STOP");
    let mut heir = spawn(
        &server,
        "once",
        &[
            ("DP_NAME", "heir".into()),
            ("DP_LEASE_MS", lease.to_string()),
        ],
    );
    heir.send("go");
    let heir_lines = heir.finish(10 * SECOND);
    assert!(
        heir_lines.iter().any(|l| l.starts_with("got from heir ")),
        "{heir_lines:?}"
    );
    frozen.signal("-CONT");
    let lines = frozen.finish(10 * SECOND);
    assert!(
        lines.iter().any(|l| l.starts_with("got from frozen ")),
        "{lines:?}"
    );
    assert!(lines.contains(&"again from heir".to_string()), "{lines:?}");
}

fn redis_killed_and_restarted_under_load() {
    // F7: calls never hang and always get a value while Redis is down; then sharing
    // resumes.
    let mut server = RedisServer::start();
    let workers: Vec<Worker> = (0..2)
        .map(|_| {
            spawn(
                &server,
                "hammer",
                &[
                    ("DP_TTL_MS", "100".into()),
                    ("DP_RUN_MS", "3000".into()),
                    ("DP_CREATE_MS", "5".into()),
                    ("DP_THREADS", "2".into()),
                    ("DP_KEY", "outage".into()),
                ],
            )
        })
        .collect();
    for worker in &workers {
        assert_eq!(worker.expect_line(10 * SECOND), "ready");
    }
    std::thread::sleep(Duration::from_millis(700));
    server.kill();
    std::thread::sleep(Duration::from_millis(1000));
    server.restart();
    let restarted = server.calls("evalsha") + server.calls("eval");
    let reports: Vec<HashMap<String, u64>> = workers
        .into_iter()
        .map(|w| report(&w.finish(30 * SECOND)))
        .collect();
    for r in &reports {
        // Bounded latency: a creation (5 ms) plus at most a few deadlines (100 ms).
        assert!(r["max_us"] < 600_000, "a call took {} us", r["max_us"]);
        assert!(r["calls"] > 100, "{r:?}");
    }
    // Sharing resumed after the restart: the scripts ran again.
    let after = server.calls("evalsha") + server.calls("eval");
    assert!(after > restarted, "no Redis traffic after the restart");
}

fn failing_creator_hands_over_at_once() {
    // F8: the owner's creator fails; a process waiting for the cold key creates at
    // once, not after the 30 s lease.
    let server = RedisServer::start();
    let mut failing = spawn(
        &server,
        "once",
        &[
            ("DP_CREATE_MS", "300".into()),
            ("DP_FAIL", "1".into()),
            ("DP_LEASE_MS", "30000".into()),
        ],
    );
    failing.send("go");
    assert_eq!(failing.expect_line(10 * SECOND), "creating");
    let mut heir = spawn(
        &server,
        "once",
        &[("DP_NAME", "heir".into()), ("DP_LEASE_MS", "30000".into())],
    );
    heir.send("go");
    let lines = failing.finish(10 * SECOND);
    assert!(lines.contains(&"err backend down".to_string()), "{lines:?}");
    let lines = heir.finish(10 * SECOND);
    let got = lines
        .iter()
        .find(|l| l.starts_with("got from heir "))
        .expect("heir did not create");
    let after: u64 = got.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(after < 2000, "heir created after {after} ms");
}

fn invalidate_and_remove_reach_other_processes() {
    // F6: well under a second on one host.
    let server = RedisServer::start();
    let mut watcher = spawn(&server, "watch", &[("DP_KEY", "watched".into())]);
    assert_eq!(watcher.expect_line(10 * SECOND), "have");
    let here: Cache<String, String> = Cache::builder()
        .ttl(Duration::from_secs(60))
        .shared(RedisTier::open(&server.url()).unwrap().namespace("fleet"))
        .build();
    assert_eq!(
        here.get_with("watched".into(), || unreachable!()),
        "original"
    );
    here.invalidate("watched");
    let line = watcher.expect_line(5 * SECOND);
    let ms: u64 = line
        .strip_prefix("invalidated_ms ")
        .expect(&line)
        .parse()
        .unwrap();
    assert!(ms < 500, "invalidate took {ms} ms to arrive");
    assert_eq!(watcher.expect_line(5 * SECOND), "go on");
    here.get_with("watched".into(), || {
        unreachable!("refreshed by the watcher")
    });
    here.remove("watched");
    watcher.send("removed");
    let line = watcher.expect_line(5 * SECOND);
    let ms: u64 = line
        .strip_prefix("removed_ms ")
        .expect(&line)
        .parse()
        .unwrap();
    assert!(ms < 500, "remove took {ms} ms to arrive");
    watcher.finish(5 * SECOND);
}

fn invalidate_all_and_clear_reach_four_processes() {
    // F6 for a whole scope, across this process and three workers, each holding its own
    // key: one `invalidate_all` makes every copy stale (R7), one `clear` removes every
    // copy and every value in Redis (R1).
    let server = RedisServer::start();
    let mut watchers: Vec<Worker> = (0..3)
        .map(|i| spawn(&server, "watch", &[("DP_KEY", format!("w{i}"))]))
        .collect();
    for watcher in &watchers {
        assert_eq!(watcher.expect_line(10 * SECOND), "have");
    }
    let here: Cache<String, String> = Cache::builder()
        .ttl(Duration::from_secs(60))
        .shared(RedisTier::open(&server.url()).unwrap().namespace("fleet"))
        .build();
    for i in 0..3 {
        assert_eq!(
            here.get_with(format!("w{i}"), || unreachable!()),
            "original"
        );
    }
    assert!(
        support::redis::holds_within(5 * SECOND, || server.subscribers("dogpile:fleet:events")
            == 4),
        "the notification links did not come up"
    );
    here.invalidate_all();
    for watcher in &watchers {
        let line = watcher.expect_line(5 * SECOND);
        let ms: u64 = line
            .strip_prefix("invalidated_ms ")
            .expect(&line)
            .parse()
            .unwrap();
        assert!(ms < 500, "invalidate_all took {ms} ms to arrive");
        assert_eq!(watcher.expect_line(5 * SECOND), "go on");
    }
    for i in 0..3 {
        // Each worker refreshed its own key: stale here too, then taken from Redis.
        assert!(
            support::redis::holds_within(SECOND, || here
                .get_with(format!("w{i}"), || unreachable!("refreshed by its worker"))
                == "refreshed"),
            "w{i} was not refreshed here"
        );
    }
    here.clear();
    for watcher in &mut watchers {
        watcher.send("cleared");
    }
    for watcher in watchers {
        let line = watcher.expect_line(5 * SECOND);
        let ms: u64 = line
            .strip_prefix("removed_ms ")
            .expect(&line)
            .parse()
            .unwrap();
        assert!(ms < 500, "clear took {ms} ms to arrive");
        watcher.finish(5 * SECOND);
    }
    // Gone from Redis too: the next caller creates.
    for i in 0..3 {
        assert_eq!(here.get_with(format!("w{i}"), || "new".into()), "new");
    }
}
