//! Miss ratios under a capacity: dogpile's `Cache` (S3-FIFO) beside moka 0.12
//! (`moka::sync::Cache` with `max_capacity`, TinyLFU) and cached 4 (`LruTtlCache` with
//! `max_size`, what `#[cached(max_size = ..)]` uses: LRU), on the same request streams.
//!
//! A fourth column is SIEVE (Zhang et al., NSDI '24), the other policy considered for
//! dogpile, as a single-threaded model (a list and a hand, no map around it): it shows
//! why dogpile uses S3-FIFO instead (see `dogpile/src/evict.rs`).
//!
//! Every miss is a creator call, so the miss ratio is the share of requests that reach
//! the backend. Single thread, ttl 1 h (nothing expires), keys `u64`, a seeded
//! generator: the streams are the same on every run and for every cache.
//!
//! Rows:
//! - Zipf s = 0.6, 0.8, 0.99, 1.2 over 100,000 keys, capacity 1 % and 10 % of the keys,
//!   1,000,000 requests each (the cold start included);
//! - scan: a cache of 1,000 warmed by 500,000 Zipf (s = 0.99) requests, then 20,000
//!   one-time keys, then 200,000 more Zipf requests: the miss ratio after the scan,
//!   and how many of the 100 hottest keys had to be created again after it;
//! - shifting working set: Zipf s = 0.99 over 100,000 keys whose ranks move to other
//!   keys every 200,000 requests (5 phases, 1,000,000 requests), capacity 1,000.
//!
//! ```text
//! cargo run --release --example eviction
//! ```

use cached::Cached;
use dogpile::Cache;
use std::time::{Duration, Instant};

const KEYS: usize = 100_000;
const TTL: Duration = Duration::from_secs(3600);
const ZIPF_REQUESTS: usize = 1_000_000;
const SEED: u64 = 0x5eed;

/// splitmix64: small, seeded, good enough to sample from.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Zipf over ranks `0..n` by inverse CDF: rank `r` has weight `1 / (r + 1)^s`.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Self {
        let mut total = 0.0;
        let mut cdf: Vec<f64> = (1..=n)
            .map(|rank| {
                total += 1.0 / (rank as f64).powf(s);
                total
            })
            .collect();
        cdf.iter_mut().for_each(|c| *c /= total);
        Zipf { cdf }
    }

    fn sample(&self, rng: &mut Rng) -> u64 {
        let u = rng.unit();
        self.cdf.partition_point(|&c| c < u) as u64
    }

    fn stream(&self, rng: &mut Rng, len: usize) -> Vec<u64> {
        (0..len).map(|_| self.sample(rng)).collect()
    }
}

/// One of the compared caches, asked through its memoizing call.
trait Memo {
    /// Asks for `key`; true if the creator ran (a miss).
    fn ask(&mut self, key: u64) -> bool;
}

struct Dogpile(Cache<u64, u64>);
struct Moka(moka::sync::Cache<u64, u64>);
struct Lru(cached::LruTtlCache<u64, u64>);

impl Memo for Dogpile {
    fn ask(&mut self, key: u64) -> bool {
        let mut missed = false;
        self.0.get_with(key, || {
            missed = true;
            key
        });
        missed
    }
}

impl Memo for Moka {
    fn ask(&mut self, key: u64) -> bool {
        let mut missed = false;
        self.0.get_with(key, || {
            missed = true;
            key
        });
        missed
    }
}

impl Memo for Lru {
    fn ask(&mut self, key: u64) -> bool {
        let mut missed = false;
        self.0.cache_get_or_set_with(key, || {
            missed = true;
            key
        });
        missed
    }
}

/// SIEVE: a FIFO list of keys with a visited bit each and a hand that moves from the
/// oldest towards the newest, clearing bits, and evicts the first key not visited.
/// Keys stay where they are (no move on hit, unlike CLOCK's reinsertion).
struct Sieve {
    capacity: usize,
    slots: std::collections::HashMap<u64, usize>,
    nodes: Vec<SieveNode>,
    free: Vec<usize>,
    newest: usize,
    oldest: usize,
    hand: usize,
}

struct SieveNode {
    key: u64,
    visited: bool,
    /// Towards the newest / towards the oldest.
    newer: usize,
    older: usize,
}

const NONE: usize = usize::MAX;

impl Sieve {
    fn new(capacity: usize) -> Self {
        Sieve {
            capacity,
            slots: Default::default(),
            nodes: Vec::new(),
            free: Vec::new(),
            newest: NONE,
            oldest: NONE,
            hand: NONE,
        }
    }

    fn evict(&mut self) {
        let mut at = if self.hand == NONE {
            self.oldest
        } else {
            self.hand
        };
        while self.nodes[at].visited {
            self.nodes[at].visited = false;
            at = match self.nodes[at].newer {
                NONE => self.oldest,
                newer => newer,
            };
        }
        let SieveNode {
            key, newer, older, ..
        } = self.nodes[at];
        self.hand = newer;
        match newer {
            NONE => self.newest = older,
            n => self.nodes[n].older = older,
        }
        match older {
            NONE => self.oldest = newer,
            o => self.nodes[o].newer = newer,
        }
        self.slots.remove(&key);
        self.free.push(at);
    }
}

impl Memo for Sieve {
    fn ask(&mut self, key: u64) -> bool {
        if let Some(&at) = self.slots.get(&key) {
            self.nodes[at].visited = true;
            return false;
        }
        if self.slots.len() >= self.capacity {
            self.evict();
        }
        let node = SieveNode {
            key,
            visited: false,
            newer: NONE,
            older: self.newest,
        };
        let at = match self.free.pop() {
            Some(at) => {
                self.nodes[at] = node;
                at
            }
            None => {
                self.nodes.push(node);
                self.nodes.len() - 1
            }
        };
        match self.newest {
            NONE => self.oldest = at,
            newest => self.nodes[newest].newer = at,
        }
        self.newest = at;
        self.slots.insert(key, at);
        true
    }
}

/// A fresh cache of each kind with room for `capacity` keys.
fn caches(capacity: usize) -> [(&'static str, Box<dyn Memo>); 4] {
    [
        (
            "dogpile",
            Box::new(Dogpile(
                Cache::builder().ttl(TTL).capacity(capacity).build(),
            )),
        ),
        (
            "moka",
            Box::new(Moka(
                moka::sync::Cache::builder()
                    .max_capacity(capacity as u64)
                    .time_to_live(TTL)
                    .build(),
            )),
        ),
        (
            "cached",
            Box::new(Lru(cached::LruTtlCache::builder()
                .max_size(capacity)
                .ttl(TTL)
                .build()
                .expect("valid LruTtlCache settings"))),
        ),
        ("SIEVE model", Box::new(Sieve::new(capacity))),
    ]
}

/// Misses over `stream` as a share of its length.
fn miss_ratio(cache: &mut dyn Memo, stream: &[u64]) -> f64 {
    let misses = stream.iter().filter(|&&key| cache.ask(key)).count();
    misses as f64 / stream.len() as f64
}

fn row(label: &str, cells: &[String]) {
    println!("| {label} | {} |", cells.join(" | "));
}

fn main() {
    let began = Instant::now();
    println!(
        "| workload | dogpile `capacity` (S3-FIFO) | moka 0.12 (TinyLFU) | cached 4 `max_size` (LRU) | SIEVE (model) |"
    );
    println!("|---|---|---|---|---|");
    let mut rng = Rng(SEED);

    for s in [0.6, 0.8, 0.99, 1.2] {
        let stream = Zipf::new(KEYS, s).stream(&mut rng, ZIPF_REQUESTS);
        for capacity in [KEYS / 100, KEYS / 10] {
            let cells: Vec<String> = caches(capacity)
                .into_iter()
                .map(|(_, mut cache)| format!("{:.4}", miss_ratio(&mut *cache, &stream)))
                .collect();
            let label = format!("Zipf s = {s}, capacity {capacity}");
            row(&label, &cells);
        }
    }

    // The scan: warm, a burst of one-time keys, then the same popularity again.
    let zipf = Zipf::new(KEYS, 0.99);
    let warm = zipf.stream(&mut rng, 500_000);
    let scan: Vec<u64> = (0..20_000).map(|i| 1_000_000 + i).collect();
    let after = zipf.stream(&mut rng, 200_000);
    let cells: Vec<String> = caches(KEYS / 100)
        .into_iter()
        .map(|(_, mut cache)| {
            miss_ratio(&mut *cache, &warm);
            miss_ratio(&mut *cache, &scan);
            let hot_lost = (0..100).filter(|&key| cache.ask(key)).count();
            let ratio = miss_ratio(&mut *cache, &after);
            format!("{ratio:.4} ({hot_lost} of the 100 hottest lost)")
        })
        .collect();
    row(
        "scan: 20,000 one-time keys through a warm cache of 1000, then Zipf 0.99",
        &cells,
    );

    // The shifting working set: the same popularity, on other keys every phase.
    let phases = 5;
    let per_phase = ZIPF_REQUESTS / phases;
    let shifting: Vec<u64> = (0..phases as u64)
        .flat_map(|phase| {
            let shift = phase * 37_813; // moves the hot ranks onto unrelated keys
            zipf.stream(&mut rng, per_phase)
                .into_iter()
                .map(move |rank| (rank * 7_919 + shift) % KEYS as u64)
        })
        .collect();
    let cells: Vec<String> = caches(KEYS / 100)
        .into_iter()
        .map(|(_, mut cache)| format!("{:.4}", miss_ratio(&mut *cache, &shifting)))
        .collect();
    row(
        "shifting working set: Zipf 0.99, new hot keys every 200,000 requests, capacity 1000",
        &cells,
    );
    eprintln!("({:.1?} in all)", began.elapsed());
}
