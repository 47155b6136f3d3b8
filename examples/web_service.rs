//! A cache-stampede library judged where it matters: request latency behind HTTP when
//! a hot key expires under load.
//!
//! ```text
//! cargo run --release --example web_service                                  # serve on 127.0.0.1:3000
//! cargo run --release --example web_service -- --load                        # the load run, about 15 s
//! cargo run --release --example web_service -- --load --svg docs/web.svg     # and its chart
//! ```
//!
//! The service (`support::web_app`, which `tests/web_service.rs` drives too)
//! is an axum app whose handlers call `#[dogpile]` async fns over a slow backend (a
//! 50 ms query, counted), beside the same backend behind `moka` and behind no cache;
//! `GET /stats` shows the caches' counters as JSON. Serving mode prints dogpile's
//! `tracing` events (feature `tracing`): a line per creation, refresh and failure.
//!
//! ```text
//! curl 127.0.0.1:3000/dogpile/7      # {"key":7,"version":1}
//! curl 127.0.0.1:3000/stats          # {"dogpile":{"hits":..},"background":{..},"backend_calls":{..}}
//! ```
//!
//! `--load` starts the service on a free loopback port and, per variant, lets many
//! concurrent HTTP clients (64 tokio tasks sharing a `reqwest` connection pool) request
//! one hot key for a few seconds, long enough for its 500 ms ttl to run out several
//! times. Per variant it prints the requests served, the backend queries, the expiries
//! the value went through, the requests that were slow (over 25 ms: they waited for a
//! backend query), and the p50/p99/max latency of a request. Options: `--clients N`
//! (64), `--secs S` (3), `--pause-ms P` (5: each client pauses this long between
//! requests), `--svg PATH`, and `--port P` for serving mode (3000).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::quantiles::{fmt_ns, quantile};
use support::web_app::{self, Backend};

/// A request slower than this waited for a backend query (which takes 50 ms).
const SLOW: Duration = Duration::from_millis(25);

struct Settings {
    load: bool,
    port: u16,
    clients: usize,
    run: Duration,
    pause: Duration,
    svg: Option<String>,
}

fn settings() -> Result<Settings, String> {
    let mut s = Settings {
        load: false,
        port: 3000,
        clients: 64,
        run: Duration::from_secs(3),
        pause: Duration::from_millis(5),
        svg: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--load" => s.load = true,
            "--port" => s.port = number(value()?)?.try_into().map_err(|e| format!("{e}"))?,
            "--clients" => s.clients = number(value()?)?.max(1) as usize,
            "--secs" => {
                s.run = Duration::from_secs_f64(value()?.parse().map_err(|e| format!("{e}"))?)
            }
            "--pause-ms" => s.pause = Duration::from_millis(number(value()?)?),
            "--svg" => s.svg = Some(value()?),
            "-h" | "--help" => {
                return Err(
                    "usage: web_service [--port P] | --load [--clients N] [--secs S] \
                            [--pause-ms P] [--svg PATH]"
                        .into(),
                )
            }
            other => return Err(format!("unknown option {other}; try --help")),
        }
    }
    Ok(s)
}

#[tokio::main]
async fn main() {
    let s = match settings() {
        Ok(s) => s,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    if s.load {
        load(&s).await;
    } else {
        use tracing_subscriber::prelude::*;
        // dogpile's events, DEBUG and up: one line per creation, refresh and failure.
        tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer())
            .with(
                tracing_subscriber::filter::Targets::new()
                    .with_target("dogpile", tracing::Level::DEBUG),
            )
            .init();
        let address = SocketAddr::from(([127, 0, 0, 1], s.port));
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .unwrap_or_else(|e| panic!("cannot listen on {address}: {e}"));
        println!(
            "serving on http://{address}: /dogpile/7, /background/7, /moka/7, /none/7, /stats"
        );
        web_app::serve(listener).await.expect("the server failed");
    }
}

// ---------------------------------------------------------------------------------
// The load run

struct Variant {
    name: &'static str,
    path: &'static str,
    backend: &'static Backend,
    /// Whether its value expires (the uncached backend has none).
    cached: bool,
}

struct Outcome {
    name: &'static str,
    /// Every request's latency in nanoseconds, sorted.
    latencies: Vec<u64>,
    backend_calls: u64,
    expiries: Option<u64>,
}

impl Outcome {
    fn slow(&self) -> usize {
        let slow = SLOW.as_nanos() as u64;
        self.latencies.len() - self.latencies.partition_point(|&l| l <= slow)
    }

    fn quantile(&self, q: f64) -> u64 {
        quantile(&self.latencies, q)
    }
}

async fn load(s: &Settings) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free loopback port");
    let address = listener.local_addr().expect("a bound address");
    tokio::spawn(web_app::serve(listener));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(s.clients)
        .build()
        .expect("an HTTP client");

    let variants = [
        Variant {
            name: "dogpile",
            path: "/dogpile/7",
            backend: &web_app::DOGPILE_BACKEND,
            cached: true,
        },
        Variant {
            name: "dogpile background",
            path: "/background/7",
            backend: &web_app::BACKGROUND_BACKEND,
            cached: true,
        },
        Variant {
            name: "moka",
            path: "/moka/7",
            backend: &web_app::MOKA_BACKEND,
            cached: true,
        },
        Variant {
            name: "no cache",
            path: "/none/7",
            backend: &web_app::NO_CACHE_BACKEND,
            cached: false,
        },
    ];
    let mut outcomes = Vec::new();
    for variant in &variants {
        outcomes.push(run(variant, &client, address, s).await);
    }

    println!(
        "\n{} HTTP clients on one hot key for {:?} each; backend query {:?}; ttl {:?}; \
         {:?} pause between requests\n",
        s.clients,
        s.run,
        web_app::QUERY,
        web_app::TTL,
        s.pause
    );
    println!(
        "{:<20} {:>9} {:>8} {:>8} {:>11} {:>9} {:>9} {:>9}",
        "variant", "requests", "backend", "expiries", "slow >25ms", "p50", "p99", "max"
    );
    println!("{}", "-".repeat(90));
    for o in &outcomes {
        println!(
            "{:<20} {:>9} {:>8} {:>8} {:>11} {:>9} {:>9} {:>9}",
            o.name,
            o.latencies.len(),
            o.backend_calls,
            o.expiries.map_or("-".into(), |e| e.to_string()),
            o.slow(),
            fmt_ns(o.quantile(0.5)),
            fmt_ns(o.quantile(0.99)),
            fmt_ns(o.latencies.last().copied().unwrap_or(0)),
        );
    }
    let stats: web_app::ServiceStats = client
        .get(format!("http://{address}/stats"))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .expect("GET /stats")
        .json()
        .await
        .expect("/stats is JSON");
    println!("\nGET /stats, dogpile:    {}", stats.dogpile);
    println!("GET /stats, background: {}", stats.background);

    if let Some(path) = &s.svg {
        let caption = format!(
            "{} HTTP clients, one key, ttl {:?}, backend {:?}: request latency",
            s.clients,
            web_app::TTL,
            web_app::QUERY
        );
        match write_svg(path, &outcomes, &caption) {
            Ok(()) => println!("\nwrote {path}"),
            Err(e) => {
                eprintln!("could not write {path}: {e}");
                std::process::exit(1);
            }
        }
    }
}

async fn run(
    variant: &Variant,
    client: &reqwest::Client,
    address: SocketAddr,
    s: &Settings,
) -> Outcome {
    let url = Arc::new(format!("http://{address}{}", variant.path));
    get(client, &url).await; // the cold start: not measured
    let primed = variant.backend.calls();
    let barrier = Arc::new(tokio::sync::Barrier::new(s.clients + 1));
    let clients: Vec<_> = (0..s.clients)
        .map(|_| {
            let (client, url, barrier) = (client.clone(), url.clone(), barrier.clone());
            let (run, pause) = (s.run, s.pause);
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(1 << 10);
                barrier.wait().await;
                let deadline = Instant::now() + run;
                loop {
                    let t0 = Instant::now();
                    if t0 >= deadline {
                        break;
                    }
                    std::hint::black_box(get(&client, &url).await);
                    latencies.push(t0.elapsed().as_nanos() as u64);
                    tokio::time::sleep(pause).await;
                }
                latencies
            })
        })
        .collect();
    barrier.wait().await;
    let start = Instant::now();
    let mut latencies = Vec::new();
    for client in clients {
        latencies.extend(client.await.expect("a client task panicked"));
    }
    let end = Instant::now();
    latencies.sort_unstable();
    // Let a background refresh finish before the next variant runs.
    tokio::time::sleep(web_app::QUERY * 2).await;
    Outcome {
        name: variant.name,
        latencies,
        backend_calls: variant.backend.calls() - primed,
        expiries: variant
            .cached
            .then(|| expiries(&variant.backend.finished(), start, end)),
    }
}

async fn get(client: &reqwest::Client, url: &str) -> web_app::Report {
    client
        .get(url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: not a report: {e}"))
}

/// How many times the value's ttl ran out during `[start, end]`: each backend query
/// that finished made a value that expires a ttl later.
fn expiries(finished: &[Instant], start: Instant, end: Instant) -> u64 {
    finished
        .iter()
        .filter(|&&created| (start..=end).contains(&(created + web_app::TTL)))
        .count() as u64
}

// ---------------------------------------------------------------------------------
// The chart, drawn like the herd's (`support::herd`)

/// One color per variant, in order: the herd chart's colors for the same caches.
const COLORS: [support::chart::RGBColor; 4] = [
    support::chart::RGBColor(214, 39, 40),  // dogpile: red
    support::chart::RGBColor(44, 160, 44),  // dogpile background: green
    support::chart::RGBColor(255, 127, 14), // moka: orange
    support::chart::RGBColor(31, 119, 180), // no cache: blue
];

fn write_svg(
    path: &str,
    outcomes: &[Outcome],
    caption: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let lines: Vec<_> = outcomes
        .iter()
        .enumerate()
        .map(|(i, o)| support::chart::Line {
            label: format!("{} ({} slow)", o.name, o.slow()),
            color: COLORS[i % COLORS.len()],
            points: support::chart::histogram(&o.latencies, 1e4),
        })
        .collect();
    let frame = support::chart::Frame {
        caption,
        from_ns: 1e4,
        x_desc: "latency of one HTTP request",
        y_desc: "requests",
        slow_ns: SLOW.as_nanos() as f64,
        slow_label: "25 ms: requests beyond this line waited for the backend".into(),
    };
    support::chart::write(path, &frame, &lines)
}
