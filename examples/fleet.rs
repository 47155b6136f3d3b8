//! The fleet tier, side by side with local-only caches: N worker processes hammer a few
//! hot keys through several expiries, first each with its own `Cache`, then with the
//! caches sharing one `RedisTier`.
//!
//! ```text
//! cargo run --release --example fleet       # starts its own redis-server, about 8 s
//! REDIS_URL=redis://127.0.0.1:6379/ cargo run --release --example fleet
//! ```
//!
//! Options: `--procs N` (4), `--threads T` (4 per process), `--secs S` (3),
//! `--ttl-ms T` (200), `--create-ms C` (50), `--keys K` (3).
//!
//! Per run it prints the creator calls (backend calls) per key expiry across the fleet,
//! the calls slower than a creation (callers that waited), and the Redis round trips
//! (scripts) the run caused. Local-only caches refresh each key once per expiry *per process*; with the
//! tier, once per expiry for the whole fleet (F1), for a handful of Redis round trips per
//! key per expiry per process (F3).

use dogpile::Cache;
use dogpile_redis::RedisTier;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Options {
    procs: usize,
    threads: usize,
    secs: u64,
    ttl_ms: u64,
    create_ms: u64,
    keys: usize,
}

fn options() -> Options {
    let mut o = Options {
        procs: 4,
        threads: 4,
        secs: 3,
        ttl_ms: 200,
        create_ms: 50,
        keys: 3,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = || {
            pair.get(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{} needs a number", pair[0]))
        };
        match pair[0].as_str() {
            "--procs" => o.procs = value() as usize,
            "--threads" => o.threads = value() as usize,
            "--secs" => o.secs = value(),
            "--ttl-ms" => o.ttl_ms = value(),
            "--create-ms" => o.create_ms = value(),
            "--keys" => o.keys = value() as usize,
            other => panic!("unknown option {other}"),
        }
    }
    o
}

fn main() {
    let o = options();
    if let Ok(mode) = std::env::var("FLEET_WORKER") {
        return worker(&mode, &o);
    }
    let (url, _server) = match std::env::var("REDIS_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let server = Server::start();
            (server.url(), Some(server))
        }
    };
    println!(
        "{} processes x {} threads, {} hot keys, ttl {} ms, creation {} ms, {} s\n",
        o.procs, o.threads, o.keys, o.ttl_ms, o.create_ms, o.secs
    );
    println!(
        "{:<22} {:>10} {:>10} {:>16} {:>12} {:>15}",
        "cache", "calls", "creations", "per key expiry", "slow calls", "Redis scripts"
    );
    let expiries = (o.secs * 1000 / o.ttl_ms) * o.keys as u64;
    for mode in ["local only", "fleet tier (Redis)"] {
        redis_command(&url, "CONFIG RESETSTAT");
        let workers: Vec<Child> = (0..o.procs)
            .map(|_| {
                Command::new(std::env::current_exe().unwrap())
                    .args(std::env::args().skip(1))
                    .env("FLEET_WORKER", mode)
                    .env("FLEET_URL", &url)
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let (mut calls, mut creations, mut slow) = (0, 0, 0);
        for mut worker in workers {
            let out = BufReader::new(worker.stdout.take().unwrap());
            for line in out.lines().map_while(Result::ok) {
                let mut parts = line.split(' ');
                let (Some(name), Some(n)) = (
                    parts.next(),
                    parts.next().and_then(|n| n.parse::<u64>().ok()),
                ) else {
                    continue;
                };
                match name {
                    "calls" => calls += n,
                    "created" => creations += n,
                    "slow" => slow += n,
                    _ => {}
                }
            }
            assert!(worker.wait().unwrap().success(), "a worker failed");
        }
        let commands: u64 = redis_command(&url, "INFO commandstats")
            .lines()
            .filter(|l| {
                // Round trips: the scripts, not the commands they run inside Redis.
                l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:")
            })
            .filter_map(|l| {
                l.split("calls=")
                    .nth(1)?
                    .split(',')
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .sum();
        println!(
            "{mode:<22} {calls:>10} {creations:>10} {:>16.2} {slow:>12} {commands:>14}",
            creations as f64 / expiries as f64
        );
    }
}

fn worker(mode: &str, o: &Options) {
    let ttl = Duration::from_millis(o.ttl_ms);
    let cache: Cache<String, String> = if mode.starts_with("fleet") {
        let tier = RedisTier::open(&std::env::var("FLEET_URL").unwrap())
            .unwrap()
            .namespace("demo");
        Cache::builder().ttl(ttl).shared(tier).build()
    } else {
        Cache::new(ttl)
    };
    let (calls, created, slow) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let create_for = Duration::from_millis(o.create_ms);
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..o.threads {
            let (cache, calls, created, slow) = (&cache, &calls, &created, &slow);
            s.spawn(move || {
                let mut n = t;
                while started.elapsed() < Duration::from_secs(o.secs) {
                    n += 1;
                    let call = Instant::now();
                    cache.get_with(format!("hot-{}", n % o.keys), || {
                        created.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(create_for); // the slow backend query
                        "value".to_string()
                    });
                    calls.fetch_add(1, Ordering::Relaxed);
                    if call.elapsed() >= create_for {
                        slow.fetch_add(1, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
            });
        }
    });
    println!("calls {}", calls.load(Ordering::Relaxed));
    println!("created {}", created.load(Ordering::Relaxed));
    println!("slow {}", slow.load(Ordering::Relaxed));
}

/// One inline command to Redis, its reply as text.
fn redis_command(url: &str, command: &str) -> String {
    let addr = url
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .rsplit('@')
        .next()
        .unwrap();
    let addr = addr.split('/').next().unwrap();
    let mut stream = TcpStream::connect(addr).expect("Redis is not reachable");
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    write!(stream, "{command}\r\n").unwrap();
    let mut reader = BufReader::new(stream);
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    match first.strip_prefix('$') {
        Some(len) => {
            let mut body = vec![0; len.trim().parse::<usize>().unwrap() + 2];
            reader.read_exact(&mut body).unwrap();
            String::from_utf8_lossy(&body).into_owned()
        }
        None => first,
    }
}

/// A redis-server of the demo's own, on a free loopback port, killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start() -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("no redis-server on PATH: install it or set REDIS_URL");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Server { child, port }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
