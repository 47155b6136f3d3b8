//! The thundering herd, side by side: many threads hammer one cached key whose value
//! is slow to create, and we watch what each cache does when the value expires.
//!
//! ```text
//! cargo run --release --example herd                    # about 10 s
//! cargo run --release --example herd -- --svg herd.svg  # also write a latency chart
//! ```
//!
//! Options: `--threads N` (16), `--secs S` (2), `--ttl-ms T` (100), `--create-ms C` (20),
//! `--pause-us P` (50: each thread sleeps this long between calls; 0 spins, and then on
//! a small machine the OS preempts callers mid-call, which shows as slow calls in every
//! column), `--svg PATH`.
//!
//! Every implementation gets the same scenario: the key is created once before the
//! clock starts (the cold start, where every cache must make callers wait, is not
//! measured), then all threads call it for the whole run. The creator sleeps, standing
//! in for a slow query, and returns its number. Per implementation we count creator
//! calls during the run, the expiries the value went through (a value expires `ttl`
//! after its creation finished), the calls that were *blocked*: they waited for a
//! creation (their value was created while they were in the call, and they took at
//! least half a creation), and apart from those, the calls over 1 ms that waited for
//! no creation: the scheduler held them up (on a busy machine, a preempted thread),
//! not the cache.
//!
//! - **dogpile** (`Cache::get_with`): at each expiry exactly one caller refreshes (it
//!   waits for its own creator); everyone else is served the stale value at once.
//! - **dogpile background** (`Cache::get_with_background` on a cache built with
//!   `.background_refresh()`): the refresh runs on another thread; nobody waits.
//! - **dogpile refresh_ahead (background)** (`.refresh_ahead(ttl / 2)` too): the next
//!   caller after half the value's lifetime starts its refresh on another thread, so
//!   nobody waits and no value is served past its lifetime.
//! - **moka** (`sync::Cache::get_with`): one caller creates, every other caller waits.
//! - **cached** (`#[cached(ttl_millis)]`): every caller that sees the expiry recomputes.
//! - **cached by_key** (`sync_writes = "by_key"`): one caller creates, the rest wait.

use cached::macros::cached;
use dogpile::Cache;
use std::sync::Barrier;
use std::time::{Duration, Instant};
use support::herd::{Call, Check, Cli, Outcome, Probe, Settings};

// ---------------------------------------------------------------------------------
// The creator, instrumented

/// The slow creator: a 20 ms "query" that blocks its thread. Returns its number.
fn create(probe: &Probe) -> u64 {
    let (n, sleep) = probe.begin();
    std::thread::sleep(sleep);
    probe.end(n);
    n
}

static DOGPILE: Probe = Probe::new();
static DOGPILE_BG: Probe = Probe::new();
static DOGPILE_AHEAD: Probe = Probe::new();
static MOKA: Probe = Probe::new();
static CACHED: Probe = Probe::new();
static CACHED_BY_KEY: Probe = Probe::new();

// `cached` takes its ttl as a literal; keep it equal to the default `--ttl-ms`.
#[cached(ttl_millis = 100)]
fn cached_herd(key: u64) -> u64 {
    key + create(&CACHED)
}

#[cached(ttl_millis = 100, sync_writes = "by_key")]
fn cached_by_key_herd(key: u64) -> u64 {
    key + create(&CACHED_BY_KEY)
}

// ---------------------------------------------------------------------------------
// The run

fn run(
    name: &'static str,
    check: Check,
    probe: &Probe,
    s: &Settings,
    // Returns the number of the creation whose value the call got.
    call: &(dyn Fn() -> u64 + Sync),
) -> Outcome {
    probe.arm(s.create);
    call(); // the cold start: not measured
    let primed = probe.calls();
    let barrier = Barrier::new(s.workers + 1);
    let (start, calls) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..s.workers)
            .map(|_| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let mut calls = Vec::with_capacity(1 << 16);
                    barrier.wait();
                    let deadline = Instant::now() + s.run;
                    loop {
                        let began = Instant::now();
                        if began >= deadline {
                            break;
                        }
                        let value_of = call();
                        let took = began.elapsed();
                        calls.push(Call {
                            began,
                            took,
                            value_of,
                        });
                        if !s.pause.is_zero() {
                            std::thread::sleep(s.pause);
                        }
                    }
                    calls
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let all: Vec<Call> = workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        (start, all)
    });
    let end = Instant::now();
    let outcome = Outcome::new(name, check, probe, primed, &calls, (start, end), s.ttl);
    // Let background refreshes finish before the next implementation runs.
    std::thread::sleep(s.create + Duration::from_millis(10));
    outcome
}

// ---------------------------------------------------------------------------------

fn main() {
    let s = Settings::from_args_or_exit(&Cli {
        program: "herd",
        workers_flag: "--threads",
        workers: 16,
        pause: Duration::from_micros(50),
    });
    let key = 7;

    let dogpile: Cache<u64, u64> = Cache::new(s.ttl);
    let background: Cache<u64, u64, dogpile::mode::Background> =
        Cache::builder().ttl(s.ttl).background_refresh().build();
    let ahead: Cache<u64, u64, dogpile::mode::Background> = Cache::builder()
        .ttl(s.ttl)
        .refresh_ahead(s.ttl / 2)
        .background_refresh()
        .build();
    let moka: moka::sync::Cache<u64, u64> =
        moka::sync::Cache::builder().time_to_live(s.ttl).build();

    let mut outcomes = vec![
        run("dogpile", Check::Refresh, &DOGPILE, &s, &|| {
            dogpile.get_with(key, || create(&DOGPILE))
        }),
        run(
            "dogpile background",
            Check::Background,
            &DOGPILE_BG,
            &s,
            &|| background.get_with(key, || create(&DOGPILE_BG)),
        ),
        run(
            "dogpile refresh_ahead (background)",
            Check::Background,
            &DOGPILE_AHEAD,
            &s,
            &|| ahead.get_with(key, || create(&DOGPILE_AHEAD)),
        ),
        run("moka", Check::None, &MOKA, &s, &|| {
            moka.get_with(key, || create(&MOKA))
        }),
    ];
    if s.ttl == Duration::from_millis(100) {
        outcomes.push(run("cached", Check::None, &CACHED, &s, &|| {
            cached_herd(key) - key
        }));
        outcomes.push(run(
            "cached by_key",
            Check::None,
            &CACHED_BY_KEY,
            &s,
            &|| cached_by_key_herd(key) - key,
        ));
    } else {
        eprintln!("(cached skipped: its ttl is fixed at compile time to the default 100 ms)");
    }

    let scenario = format!(
        "{} threads on one key for {:?}; creator sleeps {:?}; ttl {:?}; {} between calls",
        s.workers,
        s.run,
        s.create,
        s.ttl,
        s.pause_label("no pause"),
    );
    support::herd::print_table(&outcomes, &scenario);
    support::herd::print_histogram(&outcomes);
    support::herd::print_checks(&outcomes);
    // How far past its lifetime a served value was, per row: dogpile's own count; moka
    // and cached never serve an expired value (their callers wait for a new one).
    println!();
    for o in &outcomes {
        let stats = match o.name {
            "dogpile" => Some(dogpile.stats()),
            "dogpile background" => Some(background.stats()),
            "dogpile refresh_ahead (background)" => Some(ahead.stats()),
            _ => None,
        };
        let past = stats.map_or("0 (never serves an expired value)".to_owned(), |stats| {
            format!("{:?}", Duration::from_micros(stats.past_lifetime_max_us))
        });
        println!("{}: largest age served past the lifetime {past}", o.name);
    }
    let caption = format!(
        "{} threads, one key, ttl {:?}, creator {:?}: call latency",
        s.workers, s.ttl, s.create
    );
    support::herd::write_svg_or_exit(&outcomes, &s, &caption);
}
