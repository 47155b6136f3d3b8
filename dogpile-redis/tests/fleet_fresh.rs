//! The freshness options across real OS processes: a cold wait that outlasts the lease
//! (F2), `wait_at_most`, per-value lifetimes, `refresh_ahead` and `retry_backoff`, each
//! carried by the fleet tier. This test binary re-runs itself as worker processes (role
//! in `DP_ROLE`), each with its own `Cache` and connections, on one real
//! `redis-server`; every creation in the fleet is counted by a Redis `INCR`. Every wait
//! is bounded; every process is killed on failure.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dogpile::Cache;
use dogpile_redis::RedisTier;
use support::process::Worker;
use support::redis::RedisServer;

/// The Redis key counting the fleet's creations (attempts, failed ones included).
const CREATED: &str = "test:created";

fn main() {
    if let Ok(role) = std::env::var("DP_ROLE") {
        return worker(&role);
    }
    // One scenario at a time: each times its worker processes on the machine's cores.
    let mut suite = support::redis::Suite::new();
    suite.one_at_a_time();
    suite.needs_redis(
        "a_cold_creation_outlasting_the_lease_is_waited_for",
        a_cold_creation_outlasting_the_lease_is_waited_for,
    );
    suite.needs_redis(
        "wait_at_most_bounds_a_cold_wait_elsewhere",
        wait_at_most_bounds_a_cold_wait_elsewhere,
    );
    suite.needs_redis(
        "per_value_lifetimes_give_one_creation_per_lifetime",
        per_value_lifetimes_give_one_creation_per_lifetime,
    );
    suite.needs_redis(
        "refresh_ahead_one_early_refresher_per_lifetime",
        refresh_ahead_one_early_refresher_per_lifetime,
    );
    suite.needs_redis(
        "retry_backoff_pauses_the_whole_fleet",
        retry_backoff_pauses_the_whole_fleet,
    );
    suite.run()
}

// ---------------------------------------------------------------------------------
// Workers

fn env_ms(name: &str) -> Option<Duration> {
    let ms = std::env::var(name).ok()?.parse().ok()?;
    Some(Duration::from_millis(ms))
}

fn say(line: String) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

fn wall_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// A value: `"{when its creation finished, wall-clock µs} {its lifetime, ms} {who}"`.
fn lifetime_of(value: &str) -> Duration {
    let ms = value.split(' ').nth(1).unwrap().parse().unwrap();
    Duration::from_millis(ms)
}

fn worker(role: &str) {
    let url = std::env::var("DP_URL").unwrap();
    let tier = RedisTier::open(&url)
        .unwrap()
        .namespace("fresh")
        .lease(env_ms("DP_LEASE_MS").unwrap_or(Duration::from_secs(1)))
        .timeout(Duration::from_millis(200));
    let mut builder = Cache::builder()
        .ttl(env_ms("DP_TTL_MS").unwrap_or(Duration::from_secs(60)))
        .shared(tier);
    // Each value says its own lifetime (an OAuth token's `expires_in`, say).
    if std::env::var("DP_VALUE_LIFETIME_MS").is_ok() {
        builder = builder.ttl_with(|_, value: &String| lifetime_of(value));
    }
    if let Some(ahead) = env_ms("DP_AHEAD_MS") {
        builder = builder.refresh_ahead(ahead);
    }
    if let Some(limit) = env_ms("DP_WAIT_MS") {
        builder = builder.wait_at_most(limit);
    }
    if let Some(window) = env_ms("DP_STALE_IF_ERROR_MS") {
        builder = builder.stale_if_error(window);
    }
    if let Some(base) = env_ms("DP_BACKOFF_MS") {
        builder = builder.retry_backoff(base, Duration::from_secs(5));
    }
    let cache = if std::env::var("DP_BACKGROUND").is_ok() {
        Either::Background(builder.background_refresh().build())
    } else {
        Either::Inline(builder.build())
    };
    let name = std::env::var("DP_NAME").unwrap_or_else(|_| std::process::id().to_string());
    let create_for = env_ms("DP_CREATE_MS").unwrap_or_default();
    let lifetime = env_ms("DP_VALUE_LIFETIME_MS")
        .or(env_ms("DP_TTL_MS"))
        .unwrap_or(Duration::from_secs(60));
    // Succeeds for the first `DP_SUCCEED` creations of the fleet, then fails.
    let succeed: u64 = std::env::var("DP_SUCCEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX);
    let counter = redis::Client::open(url.as_str()).unwrap();
    // A creator that owns what it uses: a background refresh runs it elsewhere.
    let create = || {
        let (counter, name) = (counter.clone(), name.clone());
        move || -> Result<String, String> {
            let mut con = counter.get_connection().unwrap();
            let n: u64 = redis::cmd("INCR").arg(CREATED).query(&mut con).unwrap();
            say("creating".into());
            std::thread::sleep(create_for);
            if n > succeed {
                return Err("backend down".into());
            }
            Ok(format!("{} {} {name}", wall_us(), lifetime.as_millis()))
        }
    };
    match role {
        // One call after "go".
        "once" => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).unwrap();
            let started = Instant::now();
            let value = cache.get(create()).unwrap();
            let who = value.rsplit(' ').next().unwrap();
            say(format!(
                "got {who} after_ms {}",
                started.elapsed().as_millis()
            ));
        }
        // Threads call one key every few ms for a while, then report.
        "hammer" => {
            let run_for = env_ms("DP_RUN_MS").unwrap();
            let late = AtomicU64::new(0);
            let blocked = AtomicU64::new(0);
            let errors = AtomicU64::new(0);
            let calls = AtomicU64::new(0);
            let slow = AtomicU64::new(0);
            let started = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..2 {
                    s.spawn(|| {
                        let mut first = true;
                        while started.elapsed() < run_for {
                            let call = Instant::now();
                            let asked_at = wall_us();
                            let got = cache.get(create());
                            let took = call.elapsed();
                            calls.fetch_add(1, Ordering::Relaxed);
                            // The first call may wait for the cold creation (F2).
                            let first = std::mem::take(&mut first);
                            if !first && took >= create_for.max(Duration::from_millis(1)) {
                                slow.fetch_add(1, Ordering::Relaxed);
                            }
                            match got {
                                Ok(value) => {
                                    let made: u64 =
                                        value.split(' ').next().unwrap().parse().unwrap();
                                    // Created while this call was in, which took at
                                    // least half a creation: it waited for it.
                                    if !first && made >= asked_at && took >= create_for / 2 {
                                        blocked.fetch_add(1, Ordering::Relaxed);
                                    }
                                    // Its age when asked: a scheduler's pause after the
                                    // call cannot make it look older than it was.
                                    let age_ms = asked_at.saturating_sub(made) / 1000;
                                    let lifetime = lifetime_of(&value).as_millis() as u64;
                                    late.fetch_max(
                                        age_ms.saturating_sub(lifetime),
                                        Ordering::Relaxed,
                                    );
                                }
                                Err(_) => {
                                    errors.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    });
                }
            });
            say(format!("calls {}", calls.load(Ordering::Relaxed)));
            say(format!("errors {}", errors.load(Ordering::Relaxed)));
            say(format!("slow {}", slow.load(Ordering::Relaxed)));
            say(format!("blocked {}", blocked.load(Ordering::Relaxed)));
            say(format!("late_ms {}", late.load(Ordering::Relaxed)));
        }
        other => panic!("unknown role {other}"),
    }
}

/// A worker's cache, inline or with background refresh.
enum Either {
    Inline(Cache<String, String>),
    Background(Cache<String, String, dogpile::mode::Background>),
}

impl Either {
    fn get(
        &self,
        create: impl FnOnce() -> Result<String, String> + Send + 'static,
    ) -> Result<String, String> {
        match self {
            Either::Inline(cache) => cache.try_get_with("k".to_string(), create),
            Either::Background(cache) => cache.try_get_with("k".to_string(), create),
        }
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

/// `name N` lines of one worker's report, summed over `reports` (`late_ms`: the largest).
fn totals(reports: &[Vec<String>]) -> HashMap<String, u64> {
    let mut totals = HashMap::new();
    for (name, n) in reports
        .iter()
        .flatten()
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse::<u64>().ok()?)))
    {
        let total = totals.entry(name.clone()).or_insert(0);
        *total = if name == "late_ms" {
            (*total).max(n)
        } else {
            *total + n
        };
    }
    totals
}

fn created(server: &RedisServer) -> u64 {
    redis::cmd("GET")
        .arg(CREATED)
        .query::<Option<u64>>(&mut server.client())
        .unwrap()
        .unwrap_or(0)
}

/// The "got" line of a `once` worker: who created the value, and after how long.
fn got(lines: &[String]) -> (String, u64) {
    let line = lines
        .iter()
        .find_map(|l| l.strip_prefix("got "))
        .unwrap_or_else(|| panic!("no value: {lines:?}"));
    let (who, after) = line.split_once(" after_ms ").unwrap();
    (who.to_string(), after.parse().unwrap())
}

const SECOND: Duration = Duration::from_secs(1);

fn hammer(server: &RedisServer, env: &[(&str, String)]) -> HashMap<String, u64> {
    let workers: Vec<Worker> = (0..4).map(|_| spawn(server, "hammer", env)).collect();
    let reports: Vec<Vec<String>> = workers.into_iter().map(|w| w.finish(60 * SECOND)).collect();
    totals(&reports)
}

fn a_cold_creation_outlasting_the_lease_is_waited_for() {
    // F2: a 3 s creation under a 1 s lease, renewed while it runs: a process that
    // arrives meanwhile waits for it, however long past the lease, and creates nothing.
    let server = RedisServer::start();
    let env = |name: &str| {
        vec![
            ("DP_CREATE_MS", "3000".to_string()),
            ("DP_LEASE_MS", "1000".to_string()),
            ("DP_NAME", name.to_string()),
        ]
    };
    let mut owner = spawn(&server, "once", &env("owner"));
    let mut waiter = spawn(&server, "once", &env("waiter"));
    owner.send("go");
    assert_eq!(owner.expect_line(10 * SECOND), "creating");
    waiter.send("go");
    let (who, after) = got(&waiter.finish(20 * SECOND));
    assert_eq!(who, "owner", "the waiter created for itself");
    assert!(after >= 2000, "the waiter got the value after {after} ms");
    assert_eq!(got(&owner.finish(10 * SECOND)).0, "owner");
    assert_eq!(created(&server), 1, "one creation fleet-wide");
}

fn wait_at_most_bounds_a_cold_wait_elsewhere() {
    // `wait_at_most` applies to a process waiting for the fleet's claimant as to a
    // caller waiting in its own process: after 500 ms it creates for itself.
    let server = RedisServer::start();
    let mut owner = spawn(
        &server,
        "once",
        &[("DP_CREATE_MS", "3000".into()), ("DP_NAME", "owner".into())],
    );
    let mut impatient = spawn(
        &server,
        "once",
        &[
            ("DP_WAIT_MS", "500".into()),
            ("DP_NAME", "impatient".into()),
        ],
    );
    owner.send("go");
    assert_eq!(owner.expect_line(10 * SECOND), "creating");
    impatient.send("go");
    let (who, after) = got(&impatient.finish(10 * SECOND));
    assert_eq!(who, "impatient");
    assert!((450..2000).contains(&after), "it created after {after} ms");
    assert_eq!(got(&owner.finish(10 * SECOND)).0, "owner");
    assert_eq!(created(&server), 2);
}

fn per_value_lifetimes_give_one_creation_per_lifetime() {
    // R6 fleet-wide: each value says it lives 300 ms (the caches' ttl is a minute);
    // 4 processes calling for 2 s create about one value per 300 ms between them.
    let server = RedisServer::start();
    let (lifetime, run) = (300, 2000);
    let totals = hammer(
        &server,
        &[
            ("DP_VALUE_LIFETIME_MS", lifetime.to_string()),
            ("DP_CREATE_MS", "10".into()),
            ("DP_RUN_MS", run.to_string()),
        ],
    );
    let created = created(&server);
    // The workers' runs span at most run + 1 s: one creation per lifetime, plus the
    // first. A minute's ttl would make one; each process on its own, four times more.
    let most = (run + 1000) / lifetime + 1;
    println!("\n  per-value lifetimes: {created} creations (at most {most}), {totals:?}");
    assert!(created <= most, "{created} creations, at most {most}");
    assert!(
        created >= run / lifetime - 1,
        "{created} creations: lifetimes ignored"
    );
    assert_eq!(totals["errors"], 0);
}

fn refresh_ahead_one_early_refresher_per_lifetime() {
    // 4 processes, background refresh, lifetime 400 ms, refresh ahead 200 ms: the value
    // is refreshed early once per lifetime fleet-wide (the lease makes it one), no call
    // waits for a creation, and no call is served a value past its lifetime.
    let server = RedisServer::start();
    let (ttl, ahead, run) = (400, 200, 2000);
    let totals = hammer(
        &server,
        &[
            ("DP_TTL_MS", ttl.to_string()),
            ("DP_AHEAD_MS", ahead.to_string()),
            ("DP_BACKGROUND", "1".into()),
            ("DP_CREATE_MS", "20".into()),
            ("DP_RUN_MS", run.to_string()),
        ],
    );
    let created = created(&server);
    // A value is refreshed once it has less than `ahead` left: at most one creation
    // per (ttl - ahead) over the runs' span, plus the first.
    let most = (run + 1000) / (ttl - ahead) + 1;
    println!("\n  refresh_ahead: {created} creations (at most {most}), {totals:?}");
    assert!(created <= most, "{created} creations, at most {most}");
    assert!(created >= 3, "never refreshed: {created}");
    // "slow": calls that took a creation's time, which on a loaded machine the
    // scheduler alone can cause; "blocked": calls served a value created during them.
    assert_eq!(
        totals["blocked"], 0,
        "a call waited for a creation: {totals:?}"
    );
    // A few ms of slack: the value's lifetime runs from its publish in Redis (F4), a
    // little after the creation's own wall-clock stamp.
    assert!(
        totals["late_ms"] <= 5,
        "served past its lifetime: {totals:?}"
    );
}

fn retry_backoff_pauses_the_whole_fleet() {
    // The back-off applies to the fleet's single claimant as to a process's: after the
    // first value, every refresh fails; with `retry_backoff(100ms, 5s)` the fleet makes
    // one attempt per pause (100, 200, 400, 800, 1600 ms...) between its 4 processes,
    // and every call is served the stale value (`stale_if_error`).
    let server = RedisServer::start();
    let totals = hammer(
        &server,
        &[
            ("DP_TTL_MS", "200".into()),
            ("DP_SUCCEED", "1".into()),
            ("DP_BACKOFF_MS", "100".into()),
            ("DP_STALE_IF_ERROR_MS", "3600000".into()),
            ("DP_RUN_MS", "3000".into()),
        ],
    );
    let attempts = created(&server) - 1;
    println!("\n  retry_backoff: {attempts} failed attempts fleet-wide, {totals:?}");
    // Within the runs' span of at most 4 s, pauses of 100, 200, 400, 800, 1600 ms
    // (each up to a quarter longer) after the first expiry: at most 6 attempts, and
    // a few more for processes that start apart. Each process on its own: 4 times that.
    assert!(attempts <= 9, "{attempts} attempts");
    assert!(
        attempts >= 3,
        "{attempts} attempts: the refresh was never retried"
    );
    assert_eq!(totals["errors"], 0, "a call was not served the stale value");
}
