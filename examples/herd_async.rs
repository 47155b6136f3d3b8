//! The thundering herd for async callers: many tokio tasks hammer one cached key whose
//! value is slow to create, and we watch what each async cache does when it expires.
//! The async twin of `examples/herd.rs`; the table and the checks read the same.
//!
//! ```text
//! cargo run --release --example herd_async                          # about 10 s
//! cargo run --release --example herd_async -- --svg herd_async.svg  # also write a chart
//! ```
//!
//! Options: `--tasks N` (64), `--secs S` (2), `--ttl-ms T` (100), `--create-ms C` (20),
//! `--pause-us P` (1000), `--svg PATH`.
//!
//! The runtime is a multi-thread tokio runtime with 2 worker threads (the size of the
//! machine the figures were taken on). Every implementation gets the same scenario: the
//! key is created once before the clock starts (the cold start, where every cache must
//! make callers wait, is not measured), then all tasks call it for the whole run. The
//! creator is `tokio::time::sleep`, an async stand-in for a slow remote call: waiting
//! for it parks a task, never a thread.
//!
//! Between calls each task awaits `tokio::time::sleep(pause)`. Tokio's timer has 1 ms
//! resolution, so the default pause is 1 ms (anything shorter is rounded up to the next
//! tick anyway; in practice each task calls about every 2 ms): the tasks interleave and
//! the runtime keeps idle time, so a call's latency is the cache's, not a run queue's.
//! `--pause-us 0` makes the tasks `yield_now()` instead, which keeps both workers busy
//! all the time: then a task that awaits inside a call also waits for its turn behind
//! every other task after it is woken, which shows as longer latencies in every column.
//!
//! Latency is measured from just before a call to just after its `.await` completes. A
//! call is *blocked* when it waited for a creation (its value was created while it was
//! in the call, and it took at least half a creation); calls over 1 ms that waited for
//! no creation are counted apart: the runtime or the OS scheduler held them up.
//!
//! - **dogpile** (`Cache::get_with_async`): at each expiry exactly one task refreshes
//!   (it awaits its own creator); every other task is served the stale value at once.
//! - **dogpile background** (`Cache::get_with_async` on a cache built with
//!   `.background_refresh()`): the refresh is spawned on the runtime; nobody waits.
//! - **moka future** (`moka::future::Cache::get_with`): one task creates, every other
//!   task awaits it.
//! - **#[dogpile] async fn** (`#[dogpile(ttl = "100ms")]` on an `async fn`): the
//!   attribute's wrapper over `get_with_async`.
//! - **#[dogpile] async bg** (`#[dogpile(ttl = "100ms", background)]`): the wrapper over
//!   `get_with_async` of a `Background` cache.

use dogpile::{dogpile, Cache};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::herd::{Call, Check, Cli, Outcome, Probe, Settings};

/// Tokio worker threads.
const WORKERS: usize = 2;

// ---------------------------------------------------------------------------------
// The creator, instrumented

/// The slow creator: a 20 ms async "remote call". Returns its number.
async fn create(probe: &'static Probe) -> u64 {
    let (n, sleep) = probe.begin();
    tokio::time::sleep(sleep).await;
    probe.end(n);
    n
}

static DOGPILE: Probe = Probe::new();
static DOGPILE_BG: Probe = Probe::new();
static MOKA: Probe = Probe::new();
static ATTRIBUTE: Probe = Probe::new();
static ATTRIBUTE_BG: Probe = Probe::new();

// The attribute takes its ttl as a literal; keep it equal to the default `--ttl-ms`.
#[dogpile(ttl = "100ms")]
async fn attribute_herd(key: u64) -> u64 {
    key + create(&ATTRIBUTE).await
}

#[dogpile(ttl = "100ms", background)]
async fn attribute_bg_herd(key: u64) -> u64 {
    key + create(&ATTRIBUTE_BG).await
}

// ---------------------------------------------------------------------------------
// The run

async fn run<F, Fut>(
    name: &'static str,
    check: Check,
    probe: &'static Probe,
    s: &Settings,
    call: F,
) -> Outcome
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = u64> + Send,
{
    probe.arm(s.create);
    call().await; // the cold start: not measured
    let primed = probe.calls();
    let barrier = Arc::new(tokio::sync::Barrier::new(s.workers + 1));
    let tasks: Vec<_> = (0..s.workers)
        .map(|_| {
            let (call, barrier) = (call.clone(), barrier.clone());
            let (run, pause) = (s.run, s.pause);
            tokio::spawn(async move {
                let mut calls = Vec::with_capacity(1 << 12);
                barrier.wait().await;
                let deadline = Instant::now() + run;
                loop {
                    let began = Instant::now();
                    if began >= deadline {
                        break;
                    }
                    let value_of = call().await;
                    let took = began.elapsed();
                    calls.push(Call {
                        began,
                        took,
                        value_of,
                    });
                    if pause.is_zero() {
                        tokio::task::yield_now().await;
                    } else {
                        tokio::time::sleep(pause).await;
                    }
                }
                calls
            })
        })
        .collect();
    barrier.wait().await;
    let start = Instant::now();
    let mut calls = Vec::new();
    for task in tasks {
        calls.extend(task.await.expect("a herd task panicked"));
    }
    let end = Instant::now();
    let outcome = Outcome::new(name, check, probe, primed, &calls, (start, end), s.ttl);
    // Let background refreshes finish before the next implementation runs.
    tokio::time::sleep(s.create + Duration::from_millis(10)).await;
    outcome
}

// ---------------------------------------------------------------------------------

async fn herd(s: &Settings) -> Vec<Outcome> {
    let key = 7;
    // Leaked, so that every task's call borrows the cache for 'static without an Arc
    // clone per call.
    let dogpile: &'static Cache<u64, u64> = Box::leak(Box::new(Cache::new(s.ttl)));
    let background: &'static Cache<u64, u64, dogpile::mode::Background> = Box::leak(Box::new(
        Cache::builder().ttl(s.ttl).background_refresh().build(),
    ));
    let moka: &'static moka::future::Cache<u64, u64> = Box::leak(Box::new(
        moka::future::Cache::builder().time_to_live(s.ttl).build(),
    ));

    let mut outcomes = vec![
        run("dogpile", Check::Refresh, &DOGPILE, s, move || {
            dogpile.get_with_async(key, create(&DOGPILE))
        })
        .await,
        run(
            "dogpile background",
            Check::Background,
            &DOGPILE_BG,
            s,
            move || background.get_with_async(key, create(&DOGPILE_BG)),
        )
        .await,
        run("moka future", Check::None, &MOKA, s, move || {
            moka.get_with(key, create(&MOKA))
        })
        .await,
    ];
    if s.ttl == Duration::from_millis(100) {
        outcomes.push(
            run(
                "#[dogpile] async fn",
                Check::Refresh,
                &ATTRIBUTE,
                s,
                move || async move { attribute_herd(key).await - key },
            )
            .await,
        );
        outcomes.push(
            run(
                "#[dogpile] async bg",
                Check::Background,
                &ATTRIBUTE_BG,
                s,
                move || async move { attribute_bg_herd(key).await - key },
            )
            .await,
        );
    } else {
        eprintln!("(#[dogpile] skipped: its ttl is fixed at compile time to the default 100 ms)");
    }
    outcomes
}

fn main() {
    let s = Settings::from_args_or_exit(&Cli {
        program: "herd_async",
        workers_flag: "--tasks",
        workers: 64,
        pause: Duration::from_millis(1),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_time()
        .build()
        .expect("a tokio runtime");
    let outcomes = runtime.block_on(herd(&s));

    let scenario = format!(
        "{} tasks on {WORKERS} tokio worker threads, one key for {:?}; creator awaits {:?}; \
         ttl {:?}; {} between calls",
        s.workers,
        s.run,
        s.create,
        s.ttl,
        s.pause_label("yield_now"),
    );
    support::herd::print_table(&outcomes, &scenario);
    support::herd::print_histogram(&outcomes);
    support::herd::print_checks(&outcomes);
    let caption = format!(
        "{} tokio tasks on {WORKERS} threads, one key, ttl {:?}, creator {:?}: call latency",
        s.workers, s.ttl, s.create
    );
    support::herd::write_svg_or_exit(&outcomes, &s, &caption);
}
