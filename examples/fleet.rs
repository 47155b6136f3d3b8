//! The fleet tier, side by side with caches that each process keeps for itself: N worker
//! processes hammer a few hot keys through several expiries, with a `moka::sync::Cache`
//! per process (for reference), a dogpile `Cache` per process, and dogpile caches sharing
//! one `RedisTier` (inline and background refresh).
//!
//! ```text
//! cargo run --release --example fleet                     # own redis-server, about 12 s
//! cargo run --release --example fleet -- --svg docs/fleet.svg
//! cargo run --release --example fleet -- --sweep          # N = 1, 2, 4, 8 processes
//! REDIS_URL=redis://127.0.0.1:6379/ cargo run --release --example fleet
//! ```
//!
//! Options: `--procs N` (4), `--threads T` (4 per process), `--secs S` (3),
//! `--ttl-ms T` (200), `--create-ms C` (50), `--keys K` (3), `--svg PATH` (the latency
//! chart), `--sweep` (one row per fleet size instead of the table).
//!
//! Per run it prints the creator calls (backend calls) per key expiry across the fleet,
//! the calls slower than a creation (callers that waited), and the Redis round trips
//! (scripts) the run caused, also per key expiry and process. Caches of one process
//! refresh each key once per expiry *per process*; with the tier, once per expiry for the
//! whole fleet (F1), for a handful of Redis round trips per key per expiry per process
//! (F3).

use dogpile::Cache;
use dogpile_redis::RedisTier;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const MOKA: &str = "moka, per process";
const LOCAL: &str = "dogpile, per process";
const FLEET: &str = "dogpile + fleet tier";
const FLEET_BACKGROUND: &str = "dogpile + tier, background";
const MODES: [&str; 4] = [MOKA, LOCAL, FLEET, FLEET_BACKGROUND];

/// Latency buckets of the chart: four per decade, 10 ns to 1 s (as the herd's).
const BUCKETS: usize = 32;

struct Options {
    procs: usize,
    threads: usize,
    secs: u64,
    ttl_ms: u64,
    create_ms: u64,
    keys: usize,
    svg: Option<String>,
    sweep: bool,
}

fn options() -> Options {
    let mut o = Options {
        procs: 4,
        threads: 4,
        secs: 3,
        ttl_ms: 200,
        create_ms: 50,
        keys: 3,
        svg: None,
        sweep: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(name) = args.next() {
        let mut value = || -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match name.as_str() {
            "--procs" => o.procs = value() as usize,
            "--threads" => o.threads = value() as usize,
            "--secs" => o.secs = value(),
            "--ttl-ms" => o.ttl_ms = value(),
            "--create-ms" => o.create_ms = value(),
            "--keys" => o.keys = value() as usize,
            "--svg" => o.svg = Some(args.next().expect("--svg needs a path")),
            "--sweep" => o.sweep = true,
            other => panic!("unknown option {other}"),
        }
    }
    o
}

/// What a run of one mode measured, summed over the fleet.
struct Run {
    mode: &'static str,
    calls: u64,
    creations: u64,
    slow: u64,
    scripts: u64,
    buckets: Vec<u64>,
}

fn main() {
    let o = options();
    if let Ok(mode) = std::env::var("FLEET_WORKER") {
        return worker(&mode, &o);
    }
    let (url, _server) = match std::env::var("REDIS_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            if let Err(missing) = support::redis::server_binary() {
                eprintln!("The demo starts its own redis-server, and {missing}");
                eprintln!("Or give it one: REDIS_URL=redis://127.0.0.1:6379/");
                std::process::exit(2);
            }
            let server = support::redis::RedisServer::start();
            (server.url(), Some(server))
        }
    };
    // A key expires every ttl + creation: a refreshed value is stamped when its creation
    // ends.
    let expiries = (o.secs * 1000 / (o.ttl_ms + o.create_ms)) * o.keys as u64;
    if o.sweep {
        return sweep(&url, &o, expiries);
    }
    println!(
        "{} processes x {} threads, {} hot keys, ttl {} ms, creation {} ms, {} s ({} key expiries)\n",
        o.procs, o.threads, o.keys, o.ttl_ms, o.create_ms, o.secs, expiries
    );
    println!(
        "{:<28} {:>8} {:>10} {:>15} {:>11} {:>14} {:>21}",
        "cache",
        "calls",
        "creations",
        "per key expiry",
        "slow calls",
        "Redis scripts",
        "per expiry, process"
    );
    let mut runs = Vec::new();
    for mode in MODES {
        let run = run(&url, mode, o.procs);
        println!(
            "{:<28} {:>8} {:>10} {:>15.2} {:>11} {:>14} {:>21.2}",
            run.mode,
            run.calls,
            run.creations,
            run.creations as f64 / expiries as f64,
            run.slow,
            run.scripts,
            run.scripts as f64 / (expiries * o.procs as u64) as f64
        );
        runs.push(run);
    }
    if let Some(path) = &o.svg {
        let caption = format!(
            "{} processes x {} threads, {} hot keys, ttl {} ms, creation {} ms",
            o.procs, o.threads, o.keys, o.ttl_ms, o.create_ms
        );
        match write_svg(path, &runs, &caption, o.create_ms) {
            Ok(()) => println!("\nwrote {path}"),
            Err(e) => {
                eprintln!("could not write {path}: {e}");
                std::process::exit(1);
            }
        }
    }
}

/// Fleet creations per key expiry as the fleet grows: one row per N.
fn sweep(url: &str, o: &Options, expiries: u64) {
    println!(
        "{} threads per process, {} hot keys, ttl {} ms, creation {} ms, {} s ({} key expiries)\n",
        o.threads, o.keys, o.ttl_ms, o.create_ms, o.secs, expiries
    );
    println!(
        "{:>9} {:>31} {:>31} {:>33}",
        "processes",
        "per process: creations/expiry",
        "fleet tier: creations/expiry",
        "fleet tier: scripts/expiry/proc"
    );
    for procs in [1, 2, 4, 8] {
        let local = run(url, LOCAL, procs);
        let fleet = run(url, FLEET, procs);
        println!(
            "{procs:>9} {:>31.2} {:>31.2} {:>33.2}",
            local.creations as f64 / expiries as f64,
            fleet.creations as f64 / expiries as f64,
            fleet.scripts as f64 / (expiries * procs as u64) as f64
        );
    }
}

/// Runs `procs` worker processes in `mode` and sums what they report.
fn run(url: &str, mode: &'static str, procs: usize) -> Run {
    redis_command(url, "FLUSHALL");
    redis_command(url, "CONFIG RESETSTAT");
    let workers: Vec<Child> = (0..procs)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args(std::env::args().skip(1))
                .env("FLEET_WORKER", mode)
                .env("FLEET_URL", url)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut run = Run {
        mode,
        calls: 0,
        creations: 0,
        slow: 0,
        scripts: 0,
        buckets: vec![0; BUCKETS],
    };
    for mut worker in workers {
        let out = BufReader::new(worker.stdout.take().unwrap());
        for line in out.lines().map_while(Result::ok) {
            let numbers: Vec<u64> = line
                .split(' ')
                .skip(1)
                .filter_map(|n| n.parse().ok())
                .collect();
            match (line.split(' ').next(), numbers.as_slice()) {
                (Some("calls"), [n]) => run.calls += n,
                (Some("created"), [n]) => run.creations += n,
                (Some("slow"), [n]) => run.slow += n,
                (Some("bucket"), [i, n]) => run.buckets[*i as usize] += n,
                _ => {}
            }
        }
        assert!(worker.wait().unwrap().success(), "a worker failed");
    }
    run.scripts = redis_command(url, "INFO commandstats")
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
    run
}

static CALLS: AtomicU64 = AtomicU64::new(0);
static CREATED: AtomicU64 = AtomicU64::new(0);
static SLOW: AtomicU64 = AtomicU64::new(0);
static LATENCY: [AtomicU64; BUCKETS] = [const { AtomicU64::new(0) }; BUCKETS];

/// One worker process: `threads` threads call the cache for `secs` seconds.
fn worker(mode: &str, o: &Options) {
    let ttl = Duration::from_millis(o.ttl_ms);
    let tier = || {
        RedisTier::open(&std::env::var("FLEET_URL").unwrap())
            .unwrap()
            .namespace("demo")
    };
    let create_for = Duration::from_millis(o.create_ms);
    let create = move || {
        CREATED.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(create_for); // the slow backend query
        "value".to_string()
    };
    let get: Box<dyn Fn(String) -> String + Sync> = match mode {
        MOKA => {
            let cache = moka::sync::Cache::builder().time_to_live(ttl).build();
            Box::new(move |key| cache.get_with(key, create))
        }
        LOCAL => {
            let cache: Cache<String, String> = Cache::new(ttl);
            Box::new(move |key| cache.get_with(key, create))
        }
        FLEET => {
            let cache: Cache<String, String> = Cache::builder().ttl(ttl).shared(tier()).build();
            Box::new(move |key| cache.get_with(key, create))
        }
        FLEET_BACKGROUND => {
            let cache: Cache<String, String, dogpile::mode::Background> = Cache::builder()
                .ttl(ttl)
                .background_refresh()
                .shared(tier())
                .build();
            Box::new(move |key| cache.get_with(key, create))
        }
        other => panic!("unknown mode {other}"),
    };
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..o.threads {
            let get = &get;
            s.spawn(move || {
                let mut n = t;
                while started.elapsed() < Duration::from_secs(o.secs) {
                    n += 1;
                    let call = Instant::now();
                    get(format!("hot-{}", n % o.keys));
                    let took = call.elapsed();
                    CALLS.fetch_add(1, Ordering::Relaxed);
                    if took >= create_for {
                        SLOW.fetch_add(1, Ordering::Relaxed);
                    }
                    LATENCY[bucket(took)].fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_micros(200));
                }
            });
        }
    });
    println!("calls {}", CALLS.load(Ordering::Relaxed));
    println!("created {}", CREATED.load(Ordering::Relaxed));
    println!("slow {}", SLOW.load(Ordering::Relaxed));
    for (i, n) in LATENCY.iter().enumerate() {
        println!("bucket {i} {}", n.load(Ordering::Relaxed));
    }
}

/// The chart bucket of a call that took `took`: four per decade from 10 ns.
fn bucket(took: Duration) -> usize {
    let ns = (took.as_nanos() as f64).max(10.0);
    ((4.0 * (ns / 10.0).log10()) as usize).min(BUCKETS - 1)
}

/// The latency of one call per mode, as the herd's chart draws it.
fn write_svg(
    path: &str,
    runs: &[Run],
    caption: &str,
    create_ms: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    use support::chart::RGBColor;
    const COLORS: [RGBColor; 4] = [
        RGBColor(255, 127, 14), // moka: orange
        RGBColor(31, 119, 180), // dogpile per process: blue
        RGBColor(214, 39, 40),  // dogpile + tier: red
        RGBColor(44, 160, 44),  // dogpile + tier, background: green
    ];
    let middle = |i: usize| 10.0 * 10f64.powf((i as f64 + 0.5) / 4.0);
    let lines: Vec<_> = runs
        .iter()
        .zip(COLORS)
        .map(|(run, color)| support::chart::Line {
            label: format!(
                "{} ({} creations, {} slow)",
                run.mode, run.creations, run.slow
            ),
            color,
            points: (run.buckets.iter().enumerate())
                .map(|(i, &n)| (middle(i), n as f64))
                .collect(),
        })
        .collect();
    let frame = support::chart::Frame {
        caption,
        from_ns: 10.0,
        x_desc: "latency of one call",
        y_desc: "calls, whole fleet",
        slow_ns: create_ms as f64 * 1e6,
        slow_label: format!("{create_ms} ms: one creation; calls beyond it waited"),
    };
    support::chart::write(path, &frame, &lines)
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
