//! Counters behind [`Stats`].

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// What a [`Cache`](crate::Cache) has seen since it was built.
///
/// Every call to a `get_with`-style method counts as exactly one of `hits`,
/// `stale_hits` or `misses`, judged by what the call found when it arrived, so
/// `hits + stale_hits + misses` is the number of calls. The other counters count
/// events: creator runs, failures, blocking waits and evicted entries.
///
/// Counters are read one by one while other threads may be counting, so a snapshot
/// taken under load is consistent only once the cache is quiet.
///
/// # Example
///
/// ```
/// use dogpile::Cache;
/// use std::time::Duration;
///
/// let cache = Cache::new(Duration::from_secs(60));
/// cache.get_with("a", || 1); // miss: the creator runs
/// cache.get_with("a", || 2); // hit
/// let stats = cache.stats();
/// assert_eq!((stats.hits, stats.misses), (1, 1));
/// assert_eq!(stats.calls(), 2);
/// ```
///
/// # For people and for machines
///
/// `Display` writes one line for a log or a console; with the `serde` feature a
/// snapshot serializes as a flat object with one number per counter, for a service to
/// expose (say, as JSON on a `/stats` endpoint).
///
/// ```
/// let stats = dogpile::Stats::default();
/// assert_eq!(
///     stats.to_string(),
///     "calls 0 (hits 0, stale hits 0, misses 0), refreshes 0, failures 0, waits 0, evictions 0"
/// );
/// ```
///
#[cfg_attr(feature = "serde", doc = "```")]
#[cfg_attr(not(feature = "serde"), doc = "```ignore")]
/// // With the `serde` feature:
/// let stats = dogpile::Stats::default();
/// let json = serde_json::to_string(&stats).unwrap();
/// assert!(json.starts_with(r#"{"hits":0,"stale_hits":0,"misses":0,"#));
/// assert_eq!(serde_json::from_str::<dogpile::Stats>(&json).unwrap(), stats);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
// A snapshot from an older version, missing a newer counter, still reads (as 0).
#[cfg_attr(feature = "serde", serde(default))]
#[non_exhaustive]
pub struct Stats {
    /// Calls that found a fresh value.
    pub hits: u64,
    /// Calls that found a stale value (`age >= ttl`, or invalidated).
    pub stale_hits: u64,
    /// Calls that found no value they could serve: cold, removed, or past `max_stale`.
    pub misses: u64,
    /// Creator runs that replaced a stale value (inline or in the background).
    pub refreshes: u64,
    /// Creator runs that returned `Err` or panicked.
    pub failures: u64,
    /// Calls that blocked waiting for another caller's creation.
    pub waits: u64,
    /// Entries dropped to respect `capacity` or reclaimed long after they expired.
    pub evictions: u64,
    /// With a fleet tier: misses and refreshes answered with a value taken from the
    /// tier (created by another process) instead of running the creator here. Written
    /// by `Display` only when nonzero.
    pub tier_hits: u64,
}

impl Stats {
    /// `hits + stale_hits + misses`: the number of calls counted.
    ///
    /// ```
    /// let stats = dogpile::Stats::default();
    /// assert_eq!(stats.calls(), 0);
    /// ```
    pub fn calls(&self) -> u64 {
        self.hits + self.stale_hits + self.misses
    }
}

/// One line: the calls and how they were served, then the events.
impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "calls {} (hits {}, stale hits {}, misses {}), \
             refreshes {}, failures {}, waits {}, evictions {}",
            self.calls(),
            self.hits,
            self.stale_hits,
            self.misses,
            self.refreshes,
            self.failures,
            self.waits,
            self.evictions,
        )?;
        // Only caches with a fleet tier take values from it.
        if self.tier_hits > 0 {
            write!(f, ", tier hits {}", self.tier_hits)?;
        }
        Ok(())
    }
}

/// Hits are counted on the hot path by many threads at once: each thread adds to its
/// own cache line so that counting never bounces a line between cores.
const STRIPES: usize = 16;

#[repr(align(128))]
#[derive(Default)]
struct Padded(AtomicU64);

#[derive(Default)]
pub(crate) struct Counters {
    hits: [Padded; STRIPES],
    pub(crate) stale_hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) refreshes: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) waits: AtomicU64,
    pub(crate) evictions: AtomicU64,
    pub(crate) tier_hits: AtomicU64,
}

fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local!(static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) });
    STRIPE.with(|s| {
        if s.get() == usize::MAX {
            s.set(NEXT.fetch_add(1, Relaxed) % STRIPES);
        }
        s.get()
    })
}

impl Counters {
    #[inline]
    pub(crate) fn hit(&self) {
        self.hits[stripe()].0.fetch_add(1, Relaxed);
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            hits: self.hits.iter().map(|p| p.0.load(Relaxed)).sum(),
            stale_hits: self.stale_hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            refreshes: self.refreshes.load(Relaxed),
            failures: self.failures.load(Relaxed),
            waits: self.waits.load(Relaxed),
            evictions: self.evictions.load(Relaxed),
            tier_hits: self.tier_hits.load(Relaxed),
        }
    }
}
