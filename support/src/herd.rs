//! What the two herd demos share: the command line, the instrumented creator's
//! bookkeeping, the measurement summary, the table, the histogram, the checks and the
//! SVG chart.
//!
//! A call *waited for a creation* when the value it returned did not exist yet when the
//! call began (the creation that made it ended after the call started: the probe knows
//! each creation's end, and each creator returns its own number) and the call took at
//! least half a creation. The second condition leaves out a call that began a few
//! nanoseconds before a background refresh published and then read the new value
//! without waiting. Calls over 1 ms that waited for no creation were held up by the
//! scheduler (a preempted thread, a busy run queue), not by the cache: they are counted
//! apart, and no check looks at them. The herd demo (`examples/herd.rs`) runs the scenario on threads, its
//! async twin (`examples/herd_async.rs`) on tokio tasks; everything they report is
//! computed and printed here, so the two tables read the same.

use crate::chart;
use crate::quantiles::{fmt_ns, quantile};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Mutex;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------
// Settings

pub struct Settings {
    /// Threads (`herd`) or tasks (`herd_async`) hammering the key.
    pub workers: usize,
    pub run: Duration,
    pub ttl: Duration,
    pub create: Duration,
    pub pause: Duration,
    pub svg: Option<String>,
}

/// How a demo names its callers on the command line: `--threads` or `--tasks`.
pub struct Cli {
    pub program: &'static str,
    pub workers_flag: &'static str,
    pub workers: usize,
    pub pause: Duration,
}

impl Settings {
    pub fn from_args(cli: &Cli) -> Result<Self, String> {
        let mut s = Settings {
            workers: cli.workers,
            run: Duration::from_secs(2),
            ttl: Duration::from_millis(100),
            create: Duration::from_millis(20),
            pause: cli.pause,
            svg: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or(format!("{flag} needs a value"));
            let number = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
            match flag.as_str() {
                f if f == cli.workers_flag => s.workers = number(value()?)?.max(1) as usize,
                "--secs" => {
                    s.run = Duration::from_secs_f64(value()?.parse().map_err(|e| format!("{e}"))?)
                }
                "--ttl-ms" => s.ttl = Duration::from_millis(number(value()?)?.max(1)),
                "--create-ms" => s.create = Duration::from_millis(number(value()?)?),
                "--pause-us" => s.pause = Duration::from_micros(number(value()?)?),
                "--svg" => s.svg = Some(value()?),
                "-h" | "--help" => {
                    return Err(format!(
                        "usage: {} [{} N] [--secs S] [--ttl-ms T] [--create-ms C] \
                                [--pause-us P] [--svg PATH]",
                        cli.program, cli.workers_flag
                    ))
                }
                other => return Err(format!("unknown option {other}; try --help")),
            }
        }
        Ok(s)
    }

    /// Parses the command line, or prints the problem and exits.
    pub fn from_args_or_exit(cli: &Cli) -> Self {
        match Settings::from_args(cli) {
            Ok(s) => s,
            Err(message) => {
                eprintln!("{message}");
                std::process::exit(2);
            }
        }
    }

    /// "50µs pause", or `zero` when there is no pause.
    pub fn pause_label(&self, zero: &str) -> String {
        if self.pause.is_zero() {
            zero.to_string()
        } else {
            format!("{:?} pause", self.pause)
        }
    }
}

// ---------------------------------------------------------------------------------
// The creator's bookkeeping

/// Counts one implementation's creator runs and when each finished. The demos wrap it
/// in their own slow creator (a thread sleep, or an async sleep) that returns its
/// number, so that a call's value says which creation made it.
pub struct Probe {
    calls: AtomicU64,
    /// (creation number, when it finished), in the order they finished.
    finished: Mutex<Vec<(u64, Instant)>>,
    create: AtomicU64, // nanoseconds the creator sleeps
}

impl Probe {
    pub const fn new() -> Self {
        Probe {
            calls: AtomicU64::new(0),
            finished: Mutex::new(Vec::new()),
            create: AtomicU64::new(0),
        }
    }

    /// A creator starts: counts it, returns its number and how long it must sleep.
    pub fn begin(&self) -> (u64, Duration) {
        let n = self.calls.fetch_add(1, SeqCst);
        (n, Duration::from_nanos(self.create.load(SeqCst)))
    }

    /// Creation `n` finished (its value is about to be returned): records when.
    pub fn end(&self, n: u64) {
        self.finished.lock().unwrap().push((n, Instant::now()));
    }

    /// Sets how long the creator sleeps, and returns the creator calls so far.
    pub fn arm(&self, create: Duration) -> u64 {
        self.create.store(create.as_nanos() as u64, SeqCst);
        self.calls.load(SeqCst)
    }

    pub fn calls(&self) -> u64 {
        self.calls.load(SeqCst)
    }

    pub fn finished(&self) -> Vec<Instant> {
        self.finished.lock().unwrap().iter().map(|f| f.1).collect()
    }

    /// When creation `n` finished, if it has.
    fn finished_at(&self, n: u64) -> Option<Instant> {
        let finished = self.finished.lock().unwrap();
        finished.iter().find(|f| f.0 == n).map(|f| f.1)
    }

    /// The creation time the probe is armed with.
    fn create(&self) -> Duration {
        Duration::from_nanos(self.create.load(SeqCst))
    }
}

/// One measured call: when it began, how long it took, and the number of the creation
/// whose value it returned.
#[derive(Clone, Copy)]
pub struct Call {
    pub began: Instant,
    pub took: Duration,
    pub value_of: u64,
}

impl Default for Probe {
    fn default() -> Self {
        Probe::new()
    }
}

// ---------------------------------------------------------------------------------
// One implementation's run, summarised

/// Which of the checks applies to an implementation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Dogpile refreshing inline: creator calls = expiries ±1, calls that waited for a
    /// creation ≤ creator calls (only each refresher waits, for its own creation).
    Refresh,
    /// Dogpile refreshing in the background: no call waited for a creation after the
    /// cold start.
    Background,
    /// A peer: no check, just the figures.
    None,
}

/// A call slower than this that waited for no creation was held up by the scheduler.
const OUTLIER: Duration = Duration::from_millis(1);

pub struct Outcome {
    pub name: &'static str,
    pub check: Check,
    /// Every call's latency in nanoseconds, sorted.
    pub latencies: Vec<u64>,
    pub creator_calls: u64,
    pub expiries: u64,
    /// Calls that waited for a creation (see the module docs).
    pub blocked: usize,
    /// Calls over 1 ms that waited for no creation.
    pub outliers: usize,
}

impl Outcome {
    /// Summarises a run over `[start, end]` whose creator calls began at `primed`.
    pub fn new(
        name: &'static str,
        check: Check,
        probe: &Probe,
        primed: u64,
        calls: &[Call],
        (start, end): (Instant, Instant),
        ttl: Duration,
    ) -> Self {
        let half_a_creation = probe.create() / 2;
        let waited = |call: &Call| {
            let created_during = probe
                .finished_at(call.value_of)
                .is_some_and(|finished| finished > call.began);
            created_during && call.took >= half_a_creation
        };
        let blocked = calls.iter().filter(|c| waited(c)).count();
        let outliers = calls
            .iter()
            .filter(|c| c.took > OUTLIER && !waited(c))
            .count();
        let mut latencies: Vec<u64> = calls.iter().map(|c| c.took.as_nanos() as u64).collect();
        latencies.sort_unstable();
        Outcome {
            name,
            check,
            latencies,
            creator_calls: probe.calls() - primed,
            expiries: expiries(&probe.finished(), start, end, ttl),
            blocked,
            outliers,
        }
    }

    fn quantile(&self, q: f64) -> u64 {
        quantile(&self.latencies, q)
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

/// The side-by-side table under a one-line description of the scenario.
pub fn print_table(outcomes: &[Outcome], scenario: &str) {
    println!("\n{scenario}");
    println!(
        "blocked: calls that waited for a creation; other >1ms: slower calls that waited \
         for none (the scheduler's)\n"
    );
    println!(
        "{:<34} {:>9} {:>8} {:>8} {:>8} {:>13} {:>9} {:>9} {:>9}",
        "implementation",
        "calls",
        "creator",
        "expiries",
        "blocked",
        "other >1ms",
        "p50",
        "p99",
        "max"
    );
    println!("{}", "-".repeat(116));
    for o in outcomes {
        println!(
            "{:<34} {:>9} {:>8} {:>8} {:>8} {:>13} {:>9} {:>9} {:>9}",
            o.name,
            o.latencies.len(),
            o.creator_calls,
            o.expiries,
            o.blocked,
            o.outliers,
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

pub fn print_histogram(outcomes: &[Outcome]) {
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

/// The checks, one line per dogpile implementation, each followed by the calls the
/// scheduler held up, which no check counts.
pub fn print_checks(outcomes: &[Outcome]) {
    println!();
    for o in outcomes {
        let line = match o.check {
            Check::Refresh => {
                let equal = o.creator_calls.abs_diff(o.expiries) <= 1;
                let bounded = o.blocked as u64 <= o.creator_calls;
                format!(
                        "{}: creator calls {} vs expiries {} (must be equal ±1): {}; blocked {} ≤ creator calls {}: {}",
                        o.name,
                        o.creator_calls,
                        o.expiries,
                        verdict(equal),
                        o.blocked,
                        o.creator_calls,
                        verdict(bounded),
                )
            }
            Check::Background => format!(
                "{}: blocked {} (must be 0): {}; creator calls {} vs expiries {}",
                o.name,
                o.blocked,
                verdict(o.blocked == 0),
                o.creator_calls,
                o.expiries,
            ),
            Check::None => continue,
        };
        println!("{line}");
        if o.outliers > 0 {
            println!(
                "  and {} calls over 1 ms that waited for no creation (held up by the \
                 scheduler, not the cache)",
                o.outliers
            );
        }
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
const COLORS: [chart::RGBColor; 6] = [
    chart::RGBColor(214, 39, 40),   // dogpile: red
    chart::RGBColor(44, 160, 44),   // dogpile background: green
    chart::RGBColor(23, 190, 207),  // dogpile refresh_ahead (background): cyan
    chart::RGBColor(255, 127, 14),  // moka: orange
    chart::RGBColor(31, 119, 180),  // cached: blue
    chart::RGBColor(148, 103, 189), // cached by_key: purple
];

/// Writes the latency chart to `path` (if one was asked for), or exits on failure.
pub fn write_svg_or_exit(outcomes: &[Outcome], s: &Settings, caption: &str) {
    let Some(path) = &s.svg else { return };
    match write_svg(path, outcomes, s, caption) {
        Ok(()) => println!("\nwrote {path}"),
        Err(e) => {
            eprintln!("could not write {path}: {e}");
            std::process::exit(1);
        }
    }
}

fn write_svg(
    path: &str,
    outcomes: &[Outcome],
    s: &Settings,
    caption: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let lines: Vec<_> = outcomes
        .iter()
        .enumerate()
        .map(|(i, o)| chart::Line {
            label: format!("{} ({} blocked)", o.name, o.blocked),
            color: COLORS[i % COLORS.len()],
            points: chart::histogram(&o.latencies, 10.0),
        })
        .collect();
    let frame = chart::Frame {
        caption,
        from_ns: 10.0,
        x_desc: "latency of one call",
        y_desc: "calls",
        slow_ns: s.create.as_nanos() as f64 / 2.0,
        slow_label: format!(
            "{:?}, half a creation: a call that waited for one took at least this",
            s.create / 2
        ),
    };
    chart::write(path, &frame, &lines)
}
