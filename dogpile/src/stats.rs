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
///     "calls 0 (hits 0, stale hits 0, misses 0), refreshes 0 (early 0), failures 0, \
///      waits 0, evictions 0, stale served 0 (past lifetime: max 0 us, p99 0 us), \
///      back-off answers 0"
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
    /// Calls that found no value they could serve: cold, removed, or past its lifetime
    /// + `stale_while_revalidate`.
    pub misses: u64,
    /// Creator runs that replaced a stale value (inline or in the background).
    pub refreshes: u64,
    /// Creator runs that returned `Err` or panicked.
    pub failures: u64,
    /// Calls that blocked waiting for another caller's creation.
    pub waits: u64,
    /// Entries dropped to respect `capacity` or reclaimed long after they expired.
    pub evictions: u64,
    /// Values served past their lifetime: while a refresh ran (R3, R10), instead of a
    /// failed refresh's error (R5), or while the key backed off.
    pub stale_served: u64,
    /// The furthest past its lifetime a served value was, in microseconds.
    pub past_lifetime_max_us: u64,
    /// The 99th percentile of how far past its lifetime a served stale value was, in
    /// microseconds: the upper end of its power-of-two bucket, so at most twice the
    /// true figure.
    pub past_lifetime_p99_us: u64,
    /// Early refreshes claimed (`refresh_ahead`): counted in `refreshes` too.
    pub early_refreshes: u64,
    /// Calls answered while their key backed off after failures (`retry_backoff`):
    /// with the stale value, or a cold key's last error.
    pub backoff_answers: u64,
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
            "calls {} (hits {}, stale hits {}, misses {}), refreshes {} (early {}), \
             failures {}, waits {}, evictions {}, stale served {} (past lifetime: max {} us, \
             p99 {} us), back-off answers {}",
            self.calls(),
            self.hits,
            self.stale_hits,
            self.misses,
            self.refreshes,
            self.early_refreshes,
            self.failures,
            self.waits,
            self.evictions,
            self.stale_served,
            self.past_lifetime_max_us,
            self.past_lifetime_p99_us,
            self.backoff_answers,
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

/// Buckets of how far past its lifetime a served value was: bucket `i` holds the ages
/// of at most `2^i` microseconds; the last also holds every longer one (past 35 min).
const PAST_BUCKETS: usize = 32;

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) stale_served: AtomicU64,
    past_max_us: AtomicU64,
    past_buckets: [AtomicU64; PAST_BUCKETS],
    pub(crate) early_refreshes: AtomicU64,
    pub(crate) backoff_answers: AtomicU64,
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

    /// A value `past` nanoseconds past its lifetime was served.
    pub(crate) fn served_stale(&self, past: u64) {
        let us = past / 1_000;
        self.stale_served.fetch_add(1, Relaxed);
        self.past_max_us.fetch_max(us, Relaxed);
        let bucket = (u64::BITS - us.saturating_sub(1).leading_zeros()) as usize;
        self.past_buckets[bucket.min(PAST_BUCKETS - 1)].fetch_add(1, Relaxed);
    }

    fn past_p99_us(&self) -> u64 {
        let counts: Vec<u64> = self.past_buckets.iter().map(|b| b.load(Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        // The smallest bucket bound that holds at least 99% of the ages.
        let wanted = total - total / 100;
        let mut seen = 0;
        for (i, count) in counts.iter().enumerate() {
            seen += count;
            if total > 0 && seen >= wanted {
                return if i == 0 { 1 } else { 1 << i };
            }
        }
        0
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
            stale_served: self.stale_served.load(Relaxed),
            past_lifetime_max_us: self.past_max_us.load(Relaxed),
            past_lifetime_p99_us: self.past_p99_us().min(self.past_max_us.load(Relaxed)),
            early_refreshes: self.early_refreshes.load(Relaxed),
            backoff_answers: self.backoff_answers.load(Relaxed),
            tier_hits: self.tier_hits.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Counters;

    #[test]
    fn past_lifetime_max_and_p99_from_served_stale_values() {
        let counters = Counters::default();
        assert_eq!(counters.snapshot().past_lifetime_p99_us, 0, "none served");
        // 990 values 1 ms past their lifetime, 10 values 1 s past.
        for _ in 0..990 {
            counters.served_stale(1_000_000);
        }
        for _ in 0..10 {
            counters.served_stale(1_000_000_000);
        }
        let stats = counters.snapshot();
        assert_eq!(stats.stale_served, 1000);
        assert_eq!(stats.past_lifetime_max_us, 1_000_000);
        // The bucket holding 1000 us is (512, 1024]: at most twice the true figure.
        assert_eq!(stats.past_lifetime_p99_us, 1024);
        counters.served_stale(2_000_000_000);
        let stats = counters.snapshot();
        assert_eq!(stats.past_lifetime_max_us, 2_000_000);
        assert!(stats.past_lifetime_p99_us >= 1_000_000, "{stats:?}");
        // Zero past (an invalidated value within its lifetime) is counted, in bucket 0.
        let counters = Counters::default();
        counters.served_stale(0);
        assert_eq!(counters.snapshot().past_lifetime_p99_us, 0);
    }
}
