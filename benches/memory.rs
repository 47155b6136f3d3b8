//! Bytes per entry with 1,000,000 distinct `u64 -> u64` keys, for dogpile and the
//! caches a user would pick instead.
//!
//! ```text
//! cargo bench --bench memory
//! ```
//!
//! Each implementation is filled in its own child process (this binary re-runs itself),
//! so that one's freed memory does not flatter the next one's resident size. Two figures:
//!
//! - **heap bytes / entry**: bytes allocated and still held after the fill, counted
//!   exactly by a counting global allocator (`allocation-counter`), divided by the
//!   number of entries. What the structures ask for, without allocator overhead.
//! - **RSS bytes / entry** (Linux): growth of the resident set over the fill. What the
//!   process pays, allocator overhead and spare capacity included.
//!
//! The fill time is shown too, but the counting allocator slows allocation down: use
//! the `hit` bench's `cold_miss_insert` group for insertion speed.

use cached::macros::{cached, concurrent_cached};
use dashmap::DashMap;
use dogpile::{dogpile, Cache};
use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

const ENTRIES: u64 = 1_000_000;
const TTL: Duration = Duration::from_secs(3600);

#[dogpile(ttl = "1h")]
fn dogpile_fn(k: u64) -> u64 {
    k.wrapping_mul(3)
}

#[cached(ttl_secs = 3600)]
fn cached_fn(k: u64) -> u64 {
    k.wrapping_mul(3)
}

#[concurrent_cached(ttl_secs = 3600)]
fn concurrent_cached_fn(k: u64) -> u64 {
    k.wrapping_mul(3)
}

const IMPLEMENTATIONS: &[&str] = &[
    "dogpile #[dogpile]",
    "dogpile Cache::get_with",
    "cached #[cached]",
    "cached #[concurrent_cached]",
    "moka get_with",
    "DashMap<u64, u64>",
    "DashMap<u64, (Instant, u64)>",
];

/// Fills one implementation with `ENTRIES` keys and returns what keeps it alive.
fn fill(name: &str) -> Box<dyn std::any::Any> {
    match name {
        "dogpile Cache::get_with" => {
            let cache: Cache<u64, u64> = Cache::new(TTL);
            for k in 0..ENTRIES {
                cache.get_with(k, || k);
            }
            assert_eq!(cache.len() as u64, ENTRIES);
            Box::new(cache)
        }
        "dogpile #[dogpile]" => {
            for k in 0..ENTRIES {
                black_box(dogpile_fn(k));
            }
            assert_eq!(DOGPILE_FN.len() as u64, ENTRIES);
            Box::new(())
        }
        "cached #[cached]" => {
            for k in 0..ENTRIES {
                black_box(cached_fn(k));
            }
            Box::new(())
        }
        "cached #[concurrent_cached]" => {
            for k in 0..ENTRIES {
                black_box(concurrent_cached_fn(k));
            }
            Box::new(())
        }
        "moka get_with" => {
            let cache: moka::sync::Cache<u64, u64> =
                moka::sync::Cache::builder().time_to_live(TTL).build();
            for k in 0..ENTRIES {
                cache.get_with(k, || k);
            }
            cache.run_pending_tasks();
            assert_eq!(cache.entry_count(), ENTRIES);
            Box::new(cache)
        }
        "DashMap<u64, u64>" => {
            let map: DashMap<u64, u64> = DashMap::new();
            for k in 0..ENTRIES {
                map.insert(k, k);
            }
            Box::new(map)
        }
        "DashMap<u64, (Instant, u64)>" => {
            let map: DashMap<u64, (Instant, u64)> = DashMap::new();
            for k in 0..ENTRIES {
                map.insert(k, (Instant::now(), k));
            }
            Box::new(map)
        }
        other => panic!("unknown implementation {other:?}"),
    }
}

/// Resident set size in bytes, from /proc (Linux); `None` elsewhere.
fn rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// In the child: fill one implementation and print `heap_bytes rss_bytes nanos`.
fn child(name: &str) {
    let rss_before = rss();
    let began = Instant::now();
    let mut keep = None;
    let info = allocation_counter::measure(|| keep = Some(fill(name)));
    let took = began.elapsed();
    let rss_growth = rss()
        .zip(rss_before)
        .map_or(0, |(after, before)| after.saturating_sub(before));
    println!(
        "{} {} {} {}",
        info.bytes_current,
        info.count_current,
        rss_growth,
        took.as_nanos()
    );
    drop(keep);
}

fn main() {
    let mut args = std::env::args().skip(1);
    if let Some("--child") = args.next().as_deref() {
        return child(&args.next().expect("--child NAME"));
    }
    // `cargo bench` passes `--bench` (and any filter); a filter picks implementations.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();

    println!("{ENTRIES} distinct u64 -> u64 keys (16 bytes of key and value per entry)\n");
    println!(
        "{:<30} {:>17} {:>13} {:>16} {:>10}",
        "implementation", "heap bytes/entry", "allocs/entry", "RSS bytes/entry", "fill time"
    );
    println!("{}", "-".repeat(90));
    let exe = std::env::current_exe().expect("own path");
    for name in IMPLEMENTATIONS {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let out = Command::new(&exe)
            .args(["--child", name])
            .output()
            .expect("run child");
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let fields: Vec<i64> = text
            .split_whitespace()
            .map(|f| f.parse().expect("child output"))
            .collect();
        let [heap, allocations, rss, nanos] = fields[..] else {
            panic!("{name}: unexpected child output {text:?}");
        };
        println!(
            "{:<30} {:>17.1} {:>13.2} {:>16.1} {:>7.0} ms",
            name,
            heap as f64 / ENTRIES as f64,
            allocations as f64 / ENTRIES as f64,
            rss as f64 / ENTRIES as f64,
            nanos as f64 / 1e6,
        );
    }
}
