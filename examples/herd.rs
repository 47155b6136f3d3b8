//! The thundering herd, side by side: many threads hammer one cached key whose value
//! is slow to create, and we watch what each cache does when the value expires.
//!
//! ```text
//! cargo run --release --example herd                    # about 12 s
//! cargo run --release --example herd -- --svg herd.svg  # also write a latency chart
//! ```
//!
//! Options: `--threads N` (16), `--secs S` (2), `--ttl-ms T` (100), `--create-ms C` (20),
//! `--pause-us P` (50: each thread sleeps this long between calls; 0 spins, and then on
//! a small machine the OS preempts callers mid-call, which shows as "blocked" calls in
//! every column), `--svg PATH`.
//!
//! Every implementation gets the same scenario: the key is created once before the
//! clock starts (the cold start, where every cache must make callers wait, is not
//! measured), then all threads call it for the whole run. The creator sleeps, standing
//! in for a slow query. Per implementation we count creator calls during the run, the
//! expiries the value went through (a value expires `ttl` after its creation finished),
//! and calls that took longer than 1 ms: callers that were made to wait.
//!
//! - **dogpile** (`Cache::get_with`): at each expiry exactly one caller refreshes (it
//!   waits for its own creator); everyone else is served the stale value at once.
//! - **dogpile background** (`Cache::get_with_background` on a cache built with
//!   `.background_refresh()`): the refresh runs on another thread; nobody waits.
//! - **moka** (`sync::Cache::get_with`): one caller creates, every other caller waits.
//! - **cached** (`#[cached(ttl_millis)]`): every caller that sees the expiry recomputes.
//! - **cached by_key** (`sync_writes = "by_key"`): one caller creates, the rest wait.

use cached::macros::cached;
use dogpile::Cache;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------
// Settings

struct Settings {
    threads: usize,
    run: Duration,
    ttl: Duration,
    create: Duration,
    pause: Duration,
    svg: Option<String>,
}

impl Settings {
    fn from_args() -> Result<Self, String> {
        let mut s = Settings {
            threads: 16,
            run: Duration::from_secs(2),
            ttl: Duration::from_millis(100),
            create: Duration::from_millis(20),
            pause: Duration::from_micros(50),
            svg: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or(format!("{flag} needs a value"));
            let number = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
            match flag.as_str() {
                "--threads" => s.threads = number(value()?)?.max(1) as usize,
                "--secs" => {
                    s.run = Duration::from_secs_f64(value()?.parse().map_err(|e| format!("{e}"))?)
                }
                "--ttl-ms" => s.ttl = Duration::from_millis(number(value()?)?.max(1)),
                "--create-ms" => s.create = Duration::from_millis(number(value()?)?),
                "--pause-us" => s.pause = Duration::from_micros(number(value()?)?),
                "--svg" => s.svg = Some(value()?),
                "-h" | "--help" => {
                    return Err(
                        "usage: herd [--threads N] [--secs S] [--ttl-ms T] [--create-ms C] \
                                [--pause-us P] [--svg PATH]"
                            .into(),
                    )
                }
                other => return Err(format!("unknown option {other}; try --help")),
            }
        }
        Ok(s)
    }
}

// ---------------------------------------------------------------------------------
// The creator, instrumented

/// Counts one implementation's creator runs and when each finished.
struct Probe {
    calls: AtomicU64,
    finished: Mutex<Vec<Instant>>,
    create: AtomicU64, // nanoseconds the creator sleeps
}

impl Probe {
    const fn new() -> Self {
        Probe {
            calls: AtomicU64::new(0),
            finished: Mutex::new(Vec::new()),
            create: AtomicU64::new(0),
        }
    }

    /// The slow creator: a 20 ms "query".
    fn create(&self) -> u64 {
        let n = self.calls.fetch_add(1, SeqCst);
        std::thread::sleep(Duration::from_nanos(self.create.load(SeqCst)));
        self.finished.lock().unwrap().push(Instant::now());
        n
    }
}

static DOGPILE: Probe = Probe::new();
static DOGPILE_BG: Probe = Probe::new();
static MOKA: Probe = Probe::new();
static CACHED: Probe = Probe::new();
static CACHED_BY_KEY: Probe = Probe::new();

// `cached` takes its ttl as a literal; keep it equal to the default `--ttl-ms`.
#[cached(ttl_millis = 100)]
fn cached_herd(key: u64) -> u64 {
    key + CACHED.create()
}

#[cached(ttl_millis = 100, sync_writes = "by_key")]
fn cached_by_key_herd(key: u64) -> u64 {
    key + CACHED_BY_KEY.create()
}

// ---------------------------------------------------------------------------------
// The run

struct Outcome {
    name: &'static str,
    /// Every call's latency in nanoseconds, sorted.
    latencies: Vec<u64>,
    creator_calls: u64,
    expiries: u64,
}

impl Outcome {
    fn blocked(&self) -> usize {
        self.latencies.len() - self.latencies.partition_point(|&l| l <= 1_000_000)
    }

    fn quantile(&self, q: f64) -> u64 {
        let i = ((self.latencies.len() as f64 - 1.0) * q).round() as usize;
        self.latencies.get(i).copied().unwrap_or(0)
    }
}

fn run(
    name: &'static str,
    probe: &Probe,
    s: &Settings,
    call: &(dyn Fn() -> u64 + Sync),
) -> Outcome {
    probe.create.store(s.create.as_nanos() as u64, SeqCst);
    call(); // the cold start: not measured
    let primed = probe.calls.load(SeqCst);
    let barrier = Barrier::new(s.threads + 1);
    let (start, mut latencies) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..s.threads)
            .map(|_| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let mut latencies = Vec::with_capacity(1 << 16);
                    barrier.wait();
                    let deadline = Instant::now() + s.run;
                    loop {
                        let t0 = Instant::now();
                        if t0 >= deadline {
                            break;
                        }
                        std::hint::black_box(call());
                        latencies.push(t0.elapsed().as_nanos() as u64);
                        if !s.pause.is_zero() {
                            std::thread::sleep(s.pause);
                        }
                    }
                    latencies
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let all: Vec<u64> = workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        (start, all)
    });
    let end = Instant::now();
    let creator_calls = probe.calls.load(SeqCst) - primed;
    // Let background refreshes finish before the next implementation runs.
    std::thread::sleep(s.create + Duration::from_millis(10));
    latencies.sort_unstable();
    let finished = probe.finished.lock().unwrap().clone();
    Outcome {
        name,
        latencies,
        creator_calls,
        expiries: expiries(&finished, start, end, s.ttl),
    }
}

/// How many times the value's ttl ran out during `[start, end]`. Creations that finish
/// within ttl/2 of each other make one value (several callers recomputing the same
/// expiry, as `cached` does); that value expires `ttl` after the last of them.
fn expiries(finished: &[Instant], start: Instant, end: Instant, ttl: Duration) -> u64 {
    let mut finished = finished.to_vec();
    finished.sort();
    let mut values: Vec<(Instant, Instant)> = Vec::new(); // (first, last) creation
    for t in finished {
        match values.last_mut() {
            Some((first, last)) if t.duration_since(*first) < ttl / 2 => *last = t,
            _ => values.push((t, t)),
        }
    }
    values
        .iter()
        .filter(|(_, created)| {
            let expiry = *created + ttl;
            expiry >= start && expiry <= end
        })
        .count() as u64
}

// ---------------------------------------------------------------------------------
// Output

fn fmt_ns(ns: u64) -> String {
    match ns {
        0..=999 => format!("{ns} ns"),
        1_000..=999_999 => format!("{:.1} µs", ns as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", ns as f64 / 1e9),
    }
}

fn print_table(outcomes: &[Outcome], s: &Settings) {
    println!(
        "\n{} threads on one key for {:?}; creator sleeps {:?}; ttl {:?}; {} between calls\n",
        s.threads,
        s.run,
        s.create,
        s.ttl,
        if s.pause.is_zero() {
            "no pause".to_string()
        } else {
            format!("{:?} pause", s.pause)
        },
    );
    println!(
        "{:<20} {:>9} {:>9} {:>8} {:>14} {:>9} {:>9} {:>9}",
        "implementation", "calls", "creator", "expiries", "blocked >1ms", "p50", "p99", "max"
    );
    println!("{}", "-".repeat(95));
    for o in outcomes {
        println!(
            "{:<20} {:>9} {:>9} {:>8} {:>14} {:>9} {:>9} {:>9}",
            o.name,
            o.latencies.len(),
            o.creator_calls,
            o.expiries,
            o.blocked(),
            fmt_ns(o.quantile(0.5)),
            fmt_ns(o.quantile(0.99)),
            fmt_ns(o.latencies.last().copied().unwrap_or(0)),
        );
    }
}

/// Decade buckets from "under 1 µs" to "100 ms and more".
const BUCKETS: [(&str, u64); 7] = [
    ("< 1µs", 1_000),
    ("1-10µs", 10_000),
    ("10-100µs", 100_000),
    ("0.1-1ms", 1_000_000),
    ("1-10ms", 10_000_000),
    ("10-100ms", 100_000_000),
    (">= 100ms", u64::MAX),
];

fn bucket_counts(o: &Outcome) -> Vec<usize> {
    let mut below = 0;
    BUCKETS
        .iter()
        .map(|&(_, upper)| {
            let upto = o.latencies.partition_point(|&l| l < upper);
            let n = upto - below;
            below = upto;
            n
        })
        .collect()
}

fn print_histogram(outcomes: &[Outcome]) {
    const WIDTH: usize = 9;
    println!("\nlatency histogram: calls per bucket (bar length is log-scaled)\n");
    print!("{:<10}", "");
    for o in outcomes {
        print!(" {:<19}", o.name);
    }
    println!();
    let counts: Vec<Vec<usize>> = outcomes.iter().map(bucket_counts).collect();
    let max = counts.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
    for (b, (label, _)) in BUCKETS.iter().enumerate() {
        print!("{label:<10}");
        for c in &counts {
            let n = c[b];
            let len = if n == 0 {
                0
            } else {
                (((n as f64).ln_1p() / max.ln_1p()) * WIDTH as f64)
                    .ceil()
                    .max(1.0) as usize
            };
            print!(" {:<width$} {:>8}", "█".repeat(len), n, width = WIDTH + 1);
        }
        println!();
    }
}

fn print_checks(outcomes: &[Outcome]) {
    println!();
    for o in outcomes {
        let line = match o.name {
            "dogpile" => format!(
                "dogpile: creator calls {} vs expiries {} (must be equal ±1): {}; blocked {} ≤ creator calls {}: {}",
                o.creator_calls,
                o.expiries,
                verdict(o.creator_calls.abs_diff(o.expiries) <= 1),
                o.blocked(),
                o.creator_calls,
                verdict(o.blocked() as u64 <= o.creator_calls),
            ),
            "dogpile background" => format!(
                "dogpile background: blocked {} (must be 0): {}; creator calls {} vs expiries {}",
                o.blocked(),
                verdict(o.blocked() == 0),
                o.creator_calls,
                o.expiries,
            ),
            _ => continue,
        };
        println!("{line}");
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "NOT MET"
    }
}

/// One color per implementation, in `outcomes` order.
const COLORS: [plotters::style::RGBColor; 5] = [
    plotters::style::RGBColor(214, 39, 40),   // dogpile: red
    plotters::style::RGBColor(44, 160, 44),   // dogpile background: green
    plotters::style::RGBColor(255, 127, 14),  // moka: orange
    plotters::style::RGBColor(31, 119, 180),  // cached: blue
    plotters::style::RGBColor(148, 103, 189), // cached by_key: purple
];

fn write_svg(
    path: &str,
    outcomes: &[Outcome],
    s: &Settings,
) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;

    // Four buckets per decade, 10 ns to 1 s.
    let edges: Vec<f64> = (0..=32)
        .map(|i| 10.0 * 10f64.powf(f64::from(i) / 4.0))
        .collect();
    let series: Vec<Vec<(f64, f64)>> = outcomes
        .iter()
        .map(|o| {
            edges
                .windows(2)
                .map(|w| {
                    let lo = o.latencies.partition_point(|&l| (l as f64) < w[0]);
                    let hi = o.latencies.partition_point(|&l| (l as f64) < w[1]);
                    ((w[0] * w[1]).sqrt(), (hi - lo) as f64)
                })
                .collect()
        })
        .collect();
    let top = series.iter().flatten().map(|p| p.1).fold(1.0, f64::max) * 3.0;
    let floor = 0.5; // buckets with no calls sit on the floor

    let root = SVGBackend::new(path, (960, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let caption = format!(
        "{} threads, one key, ttl {:?}, creator {:?}: call latency",
        s.threads, s.ttl, s.create
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d((10f64..1e9).log_scale(), (floor..top).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("latency of one call")
        .y_desc("calls")
        .x_label_formatter(&|x| fmt_ns(*x as u64))
        .y_label_formatter(&|y| {
            if *y < 1.0 {
                "0".into()
            } else {
                format!("{y:.0}")
            }
        })
        .draw()?;
    chart
        .draw_series(LineSeries::new(
            [(1e6, floor), (1e6, top)],
            BLACK.stroke_width(2),
        ))?
        .label("1 ms: calls beyond this line were blocked")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 24, y)], BLACK.stroke_width(2)));
    for (i, (o, points)) in outcomes.iter().zip(&series).enumerate() {
        let color = COLORS[i % COLORS.len()];
        let points = points.iter().map(|&(x, y)| (x, y.max(floor)));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(3)))?
            .label(format!("{} ({} blocked)", o.name, o.blocked()))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], color.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

// ---------------------------------------------------------------------------------

fn main() {
    let s = match Settings::from_args() {
        Ok(s) => s,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let key = 7;

    let dogpile: Cache<u64, u64> = Cache::new(s.ttl);
    let background: Cache<u64, u64> = Cache::builder().ttl(s.ttl).background_refresh().build();
    let moka: moka::sync::Cache<u64, u64> =
        moka::sync::Cache::builder().time_to_live(s.ttl).build();

    let mut outcomes = vec![
        run("dogpile", &DOGPILE, &s, &|| {
            dogpile.get_with(key, || DOGPILE.create())
        }),
        run("dogpile background", &DOGPILE_BG, &s, &|| {
            background.get_with_background(key, || DOGPILE_BG.create())
        }),
        run("moka", &MOKA, &s, &|| moka.get_with(key, || MOKA.create())),
    ];
    if s.ttl == Duration::from_millis(100) {
        outcomes.push(run("cached", &CACHED, &s, &|| cached_herd(key)));
        outcomes.push(run("cached by_key", &CACHED_BY_KEY, &s, &|| {
            cached_by_key_herd(key)
        }));
    } else {
        eprintln!("(cached skipped: its ttl is fixed at compile time to the default 100 ms)");
    }

    print_table(&outcomes, &s);
    print_histogram(&outcomes);
    print_checks(&outcomes);
    if let Some(path) = &s.svg {
        match write_svg(path, &outcomes, &s) {
            Ok(()) => println!("\nwrote {path}"),
            Err(e) => {
                eprintln!("could not write {path}: {e}");
                std::process::exit(1);
            }
        }
    }
}
