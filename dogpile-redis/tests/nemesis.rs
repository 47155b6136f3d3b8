//! A fault-injection soak: worker processes (this binary re-run with `DP_ROLE=soak`)
//! hammer a set of keys with short ttls through the fleet tier while a driver kills,
//! stops and continues workers, kills and restarts Redis empty, kills its client
//! connections, flushes its scripts and data, stalls it, plants foreign data in the
//! tier's keys and fills its memory under `maxmemory`, and removes keys fleet-wide.
//! Every call records what it got; a checker then asserts the tier's promises and
//! prints the figures.
//!
//! `DOGPILE_SOAK_SECS` sets the run time (20 s unless set; CI runs it for 60 s, and
//! `DOGPILE_SOAK_SECS=600` is a ten-minute soak).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufWriter, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dogpile::{Cache, SharedTier};
use dogpile_redis::RedisTier;
use support::redis::RedisServer;

const PROCESSES: usize = 3;
const THREADS: usize = 4;
const KEYS: usize = 8;
const TTL: Duration = Duration::from_millis(1000);
const STALE_WHILE_REVALIDATE: Duration = Duration::from_millis(1000);
const LEASE: Duration = Duration::from_millis(1000);
const CREATE: Duration = Duration::from_millis(10);
/// The longest a call may take: a cold wait for another process's creation (twice
/// its lease and a second), then a creation and its publish, each round trip within
/// its deadline.
const CALL_BOUND: Duration = Duration::from_millis(2 * 1000 + 1000 + 1000);
/// How far past `ttl + stale_while_revalidate` a served value may be, counted from the end of its
/// creator: the publish that stamps it in Redis (at most one deadline, 250 ms) and the
/// call's own length.
const AGE_SLACK_MS: u64 = 500;
/// How soon a remove that Redis applied reaches every live process (F6): shorter than
/// the ttl, so that a copy the remove missed would still be served fresh and be seen.
const REMOVE_BOUND_MS: u64 = 300;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn main() {
    if std::env::var("DP_ROLE").as_deref() == Ok("soak") {
        return worker();
    }
    let mut suite = support::redis::Suite::new();
    suite.one_at_a_time();
    suite.needs_redis("soak_under_faults", soak_under_faults);
    suite.run()
}

/// A small xorshift: the soak needs no statistical quality, only variety.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn tier(url: &str) -> RedisTier {
    RedisTier::open(url).unwrap().namespace("soak").lease(LEASE)
}

// ---------------------------------------------------------------------------------
// A worker: THREADS threads call `get_with` on random keys until stdin closes. Lines
// in its record file: `R start end key value here` per call (`here`: this call's
// creator made the value), `C key at pid` per creation.

fn worker() {
    let url = std::env::var("DP_URL").unwrap();
    let out = File::create(std::env::var("DP_OUT").unwrap()).unwrap();
    let out = Arc::new(Mutex::new(BufWriter::new(out)));
    let cache: Cache<String, String> = Cache::builder()
        .ttl(TTL)
        .stale_while_revalidate(STALE_WHILE_REVALIDATE)
        .shared(tier(&url))
        .build();
    let pid = std::process::id();
    // Records reach the file within 50 ms: a killed worker loses at most that much.
    let flushed = out.clone();
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(50));
        let _ = flushed.lock().unwrap().flush();
    });
    for n in 0..THREADS {
        let (cache, out) = (cache.clone(), out.clone());
        std::thread::spawn(move || {
            let mut rng = Rng::new(u64::from(pid) * 31 + n as u64);
            loop {
                let key = format!("k{}", rng.below(KEYS as u64));
                let start = now_ms();
                let made_here = std::cell::Cell::new(false);
                let value = cache.get_with(key.clone(), || {
                    std::thread::sleep(CREATE);
                    made_here.set(true);
                    let at = now_ms();
                    writeln!(out.lock().unwrap(), "C {key} {at} {pid}").unwrap();
                    format!("{key}|{at}|{pid}")
                });
                let end = now_ms();
                let here = u8::from(made_here.get());
                writeln!(out.lock().unwrap(), "R {start} {end} {key} {value} {here}").unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        });
    }
    // The driver closes stdin to stop the worker.
    let mut line = String::new();
    while std::io::stdin().lock().read_line(&mut line).unwrap_or(0) > 0 {}
    let _ = out.lock().unwrap().flush();
}

struct Worker {
    child: Child,
    out: std::path::PathBuf,
}

impl Worker {
    fn spawn(url: &str, dir: &std::path::Path, serial: usize) -> Worker {
        let out = dir.join(format!("worker-{serial}.log"));
        let child = Command::new(std::env::current_exe().unwrap())
            .env("DP_ROLE", "soak")
            .env("DP_URL", url)
            .env("DP_OUT", &out)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Worker { child, out }
    }

    fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------
// The driver.

/// A fault and the window (ms since the epoch) in which it may excuse what a process
/// saw: `worker` is the serial of the worker it hit, if one.
struct Fault {
    kind: &'static str,
    from: u64,
    to: u64,
    worker: Option<usize>,
}

fn soak_under_faults() {
    let secs = std::env::var("DOGPILE_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20u64);
    let mut server = RedisServer::start();
    let url = server.url();
    let dir = std::env::temp_dir().join(format!("dogpile-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut serial = 0;
    let mut workers: Vec<(usize, Worker)> = (0..PROCESSES)
        .map(|_| {
            serial += 1;
            (serial, Worker::spawn(&url, &dir, serial))
        })
        .collect();
    let mut logs: Vec<(usize, std::path::PathBuf)> =
        workers.iter().map(|(n, w)| (*n, w.out.clone())).collect();
    let mut faults: Vec<Fault> = Vec::new();
    let mut rng = Rng::new(now_ms());
    let started = Instant::now();
    let run_for = Duration::from_secs(secs);
    // Fleet-wide removes, beside the faults: each that Redis applied is recorded.
    let remover = std::thread::spawn({
        let url = url.clone();
        move || {
            let tier = tier(&url);
            let mut rng = Rng::new(now_ms() ^ 0x5eed);
            let mut removes: Vec<(String, u64, u64)> = Vec::new();
            while started.elapsed() < run_for {
                std::thread::sleep(Duration::from_millis(100 + rng.below(200)));
                let key = format!("k{}", rng.below(KEYS as u64));
                let begun = now_ms();
                if SharedTier::<String, String>::remove(&tier, &key).is_ok() {
                    removes.push((key, begun, now_ms()));
                }
            }
            removes
        }
    });
    std::thread::sleep(Duration::from_millis(500)); // the workers warm up
    while started.elapsed() < run_for {
        std::thread::sleep(Duration::from_millis(500 + rng.below(1000)));
        let at = now_ms();
        let mut fault = |kind, to, worker| {
            faults.push(Fault {
                kind,
                from: at,
                to,
                worker,
            })
        };
        match rng.below(9) {
            0 => {
                let victim = rng.below(workers.len() as u64) as usize;
                let (n, old) = workers.remove(victim);
                drop(old); // SIGKILL
                fault("SIGKILL", now_ms(), Some(n));
                serial += 1;
                let fresh = Worker::spawn(&url, &dir, serial);
                logs.push((serial, fresh.out.clone()));
                workers.push((serial, fresh));
            }
            1 => {
                let victim = rng.below(workers.len() as u64) as usize;
                let (n, worker) = &workers[victim];
                worker.signal("-STOP");
                std::thread::sleep(Duration::from_millis(300 + rng.below(1200)));
                worker.signal("-CONT");
                fault("SIGSTOP", now_ms() + 1000, Some(*n));
            }
            2 => {
                server.kill();
                std::thread::sleep(Duration::from_millis(300 + rng.below(700)));
                server.restart();
                fault("Redis killed and restarted empty", now_ms() + 2000, None);
            }
            3 => {
                let _: redis::RedisResult<()> = redis::cmd("CLIENT")
                    .arg("KILL")
                    .arg("TYPE")
                    .arg("normal")
                    .arg("SKIPME")
                    .arg("yes")
                    .query(&mut server.client());
                fault("CLIENT KILL", now_ms(), None);
            }
            4 => {
                let _: redis::RedisResult<()> = redis::cmd("SCRIPT")
                    .arg("FLUSH")
                    .query(&mut server.client());
                fault("SCRIPT FLUSH", now_ms(), None);
            }
            5 => {
                // DEBUG SLEEP is off by default since Redis 7: a busy script stalls
                // the server the same way.
                let busy = "local t = redis.call('TIME') local s = t[1] * 1e6 + t[2] \
                            repeat t = redis.call('TIME') until t[1] * 1e6 + t[2] - s >= 300000";
                let _: redis::RedisResult<()> = redis::cmd("EVAL")
                    .arg(busy)
                    .arg(0)
                    .query(&mut server.client());
                fault("stall 300 ms", now_ms(), None);
            }
            6 => {
                let found: Vec<String> = redis::cmd("KEYS")
                    .arg("dogpile:{soak:*}:v")
                    .query(&mut server.client())
                    .unwrap_or_default();
                if let Some(key) = found.first() {
                    let mut con = server.client();
                    let _: redis::RedisResult<()> = redis::cmd("DEL").arg(key).query(&mut con);
                    let _: redis::RedisResult<()> =
                        redis::cmd("RPUSH").arg(key).arg("foreign").query(&mut con);
                }
                fault("foreign data planted", now_ms(), None);
            }
            7 => {
                let mut con = server.client();
                let used: String = redis::cmd("INFO").arg("memory").query(&mut con).unwrap();
                let used: u64 = used
                    .lines()
                    .find_map(|l| l.strip_prefix("used_memory:"))
                    .and_then(|n| n.trim().parse().ok())
                    .unwrap_or(0);
                let _: redis::RedisResult<()> = redis::cmd("CONFIG")
                    .arg("SET")
                    .arg("maxmemory-policy")
                    .arg("allkeys-lru")
                    .query(&mut con);
                let _: redis::RedisResult<()> = redis::cmd("CONFIG")
                    .arg("SET")
                    .arg("maxmemory")
                    .arg(used + (512 << 10))
                    .query(&mut con);
                for n in 0..100 {
                    let _: redis::RedisResult<()> = redis::cmd("SET")
                        .arg(format!("filler:{n}"))
                        .arg(vec![b'x'; 10 << 10])
                        .query(&mut con);
                }
                std::thread::sleep(Duration::from_millis(500));
                let _: redis::RedisResult<()> = redis::cmd("CONFIG")
                    .arg("SET")
                    .arg("maxmemory")
                    .arg(0)
                    .query(&mut con);
                fault("memory filled under maxmemory", now_ms(), None);
            }
            _ => {
                let _: redis::RedisResult<()> = redis::cmd("FLUSHALL").query(&mut server.client());
                fault("FLUSHALL", now_ms(), None);
            }
        }
    }
    let removes = remover.join().unwrap();
    drop(workers); // stopped and killed: their records are on disk
    let records = logs
        .iter()
        .map(|(n, path)| (*n, std::fs::read_to_string(path).unwrap_or_default()))
        .collect::<Vec<_>>();
    let _ = std::fs::remove_dir_all(&dir);
    let report = check(&records, &faults, &removes);
    println!("{report}");
    let first: Vec<_> = report.violations.iter().take(10).collect();
    assert!(
        report.violations.is_empty(),
        "the first violations: {first:#?}"
    );
}

// ---------------------------------------------------------------------------------
// The checker.

/// The creations of one key that a fault may add within one ttl (see `check`).
fn extra_creations(fault: &str) -> u64 {
    match fault {
        "Redis killed and restarted empty" | "FLUSHALL" => 2 * PROCESSES as u64,
        "SIGKILL" | "SIGSTOP" => 1,
        _ => PROCESSES as u64,
    }
}

#[derive(Default)]
struct Report {
    calls: u64,
    creations: u64,
    faults: HashMap<&'static str, u64>,
    removes: usize,
    worst_call_ms: u64,
    worst_age_ms: u64,
    most_creations_per_key_per_ttl: u64,
    /// When the window with the most creations of one key began (ms since the epoch).
    worst_window: u64,
    /// The faults in the two seconds before that window.
    worst_window_faults: Vec<&'static str>,
    /// The most creations of one key within one ttl with no fault near.
    most_without_faults: u64,
    creations_per_key_per_ttl: f64,
    violations: Vec<String>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "soak: {} calls, {} creations",
            self.calls, self.creations
        )?;
        let mut faults: Vec<_> = self.faults.iter().collect();
        faults.sort();
        writeln!(
            f,
            "faults injected: {faults:?}; fleet-wide removes: {}",
            self.removes
        )?;
        writeln!(
            f,
            "worst call {} ms (bound {} ms); oldest value served {} ms (bound {} ms)",
            self.worst_call_ms,
            CALL_BOUND.as_millis(),
            self.worst_age_ms,
            (TTL + STALE_WHILE_REVALIDATE).as_millis() as u64 + AGE_SLACK_MS,
        )?;
        writeln!(
            f,
            "creations per key per ttl: {:.2} on average; at most {} with no fault near \
             (bound 1), {} after {:?} (each fault adds at most: a remove 2, a worker's \
             death or stop {}, an unusable tier {}, Redis losing its data {})",
            self.creations_per_key_per_ttl,
            self.most_without_faults,
            self.most_creations_per_key_per_ttl,
            self.worst_window_faults,
            extra_creations("SIGKILL"),
            extra_creations("CLIENT KILL"),
            extra_creations("FLUSHALL"),
        )?;
        write!(f, "violations: {}", self.violations.len())
    }
}

fn check(records: &[(usize, String)], faults: &[Fault], removes: &[(String, u64, u64)]) -> Report {
    let mut report = Report {
        removes: removes.len(),
        ..Report::default()
    };
    for fault in faults {
        *report.faults.entry(fault.kind).or_default() += 1;
    }
    // Whether a fault of the worker `serial` (or of Redis) overlaps [from, to].
    // Faults are recorded in the order they began, and none lasts longer than this.
    // A fault of Redis lasts, for the notification links, until they have noticed it
    // and subscribed again: F7 gives sharing about a second to resume, and an event
    // published meanwhile is replaced by the link's reset.
    const LONGEST_FAULT_MS: u64 = 5000;
    const LINK_RECOVERY_MS: u64 = 1000;
    let excused = |serial: usize, from: u64, to: u64, redis_too: bool| {
        let end = faults.partition_point(|f| f.from <= to);
        faults[..end]
            .iter()
            .rev()
            .take_while(|f| f.from + LONGEST_FAULT_MS + LINK_RECOVERY_MS >= from)
            .any(|f| match f.worker {
                Some(n) => n == serial && from <= f.to,
                // Any fault of Redis itself may delay or lose a notification.
                None => redis_too && from <= f.to + LINK_RECOVERY_MS,
            })
    };
    // Each key's removes, in the order they began.
    let mut removes_of: HashMap<&str, Vec<(u64, u64)>> = HashMap::new();
    for (key, begun, done) in removes {
        removes_of.entry(key).or_default().push((*begun, *done));
    }
    let mut creations: HashMap<String, Vec<u64>> = HashMap::new();
    let bound_age = (TTL + STALE_WHILE_REVALIDATE).as_millis() as u64 + AGE_SLACK_MS;
    for (serial, text) in records {
        for line in text.lines() {
            let parts: Vec<&str> = line.split(' ').collect();
            match parts.as_slice() {
                ["C", key, at, _pid] => {
                    report.creations += 1;
                    creations
                        .entry(key.to_string())
                        .or_default()
                        .push(at.parse().unwrap());
                }
                ["R", start, end, key, value, here] => {
                    report.calls += 1;
                    let (start, end): (u64, u64) = (start.parse().unwrap(), end.parse().unwrap());
                    let mut fields = value.split('|');
                    let (of, at) = (fields.next().unwrap(), fields.next().unwrap_or("0"));
                    let at: u64 = at.parse().unwrap_or(0);
                    if of != *key {
                        report.violations.push(format!("{key} served {value}"));
                    }
                    let took = end.saturating_sub(start);
                    if !excused(*serial, start, end, false) {
                        report.worst_call_ms = report.worst_call_ms.max(took);
                        if took > CALL_BOUND.as_millis() as u64 {
                            report
                                .violations
                                .push(format!("a call on {key} took {took} ms"));
                        }
                        let age = end.saturating_sub(at);
                        report.worst_age_ms = report.worst_age_ms.max(age);
                        if age > bound_age {
                            report
                                .violations
                                .push(format!("{key} served {age} ms old ({value})"));
                        }
                    }
                    // F6: a value created before a remove Redis applied is not served
                    // by a live process once the remove had time to reach it.
                    let of_key = removes_of.get(key).map_or(&[][..], Vec::as_slice);
                    if *here == "0" {
                        let after = of_key.partition_point(|(begun, _)| *begun <= at);
                        for (begun, done) in of_key[after..].iter().take_while(|(b, _)| *b < start)
                        {
                            let late = start > done + REMOVE_BOUND_MS;
                            if late && !excused(*serial, *begun, start, true) {
                                report.violations.push(format!(
                                    "{key} removed at {done}, still served {value} at {start}"
                                ));
                            }
                        }
                    }
                }
                _ => {} // a line cut short by SIGKILL
            }
        }
    }
    let ttl = TTL.as_millis() as u64;
    // The creations of one key allowed within one ttl: one (F1), and for each fault
    // near the window the extra creations it may cause, added up when faults overlap:
    // two per fleet-wide remove (the key turns cold, and a creation in flight is fenced
    // and made once more); one after a worker was killed or stopped holding the lease
    // (it runs out, F5); one per process while the tier is unusable (foreign data,
    // memory full, connections killed, scripts flushed, a stall: the local rules, F7);
    // two per process after Redis lost its data (the local rules, then once more when
    // the notification link comes back and distrusts the local copies, F6).
    let allowed = |key: &str, window: u64| {
        let removed = removes
            .iter()
            .filter(|(k, begun, done)| k == key && *done + ttl >= window && *begun <= window + ttl)
            .count() as u64;
        let extra: u64 = faults
            .iter()
            .filter(|f| f.to + 2000 >= window && f.from <= window + ttl)
            .map(|f| extra_creations(f.kind))
            .sum();
        1 + 2 * removed + extra
    };
    let mut windows = 0u64;
    let mut counts: Vec<(u64, u64)> = Vec::new();
    for (key, times) in creations.iter_mut() {
        times.sort_unstable();
        let first = times[0];
        let last = *times.last().unwrap();
        windows += (last - first) / ttl + 1;
        let mut from = 0;
        for (to, &at) in times.iter().enumerate() {
            while times[from] + ttl <= at {
                from += 1;
            }
            let count = (to - from + 1) as u64;
            let bound = allowed(key, times[from]);
            if count > bound {
                report.violations.push(format!(
                    "{count} creations of {key} within one ttl from {} (bound {bound})",
                    times[from]
                ));
            }
            if count > report.most_creations_per_key_per_ttl {
                report.most_creations_per_key_per_ttl = count;
                report.worst_window = times[from];
            }
            counts.push((count, bound));
        }
    }
    report.creations_per_key_per_ttl = report.creations as f64 / windows.max(1) as f64;
    let window = report.worst_window;
    report.worst_window_faults = faults
        .iter()
        .filter(|f| f.to + 2000 >= window && f.from <= window + ttl)
        .map(|f| f.kind)
        .collect();
    let quiet: Vec<u64> = counts
        .iter()
        .filter(|(_, b)| *b == 1)
        .map(|(c, _)| *c)
        .collect();
    report.most_without_faults = quiet.into_iter().max().unwrap_or(0);
    report
}
