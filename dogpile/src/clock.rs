//! The time source behind every freshness decision.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// A monotonic time source.
///
/// Every age in this crate is measured with a `Clock`: a value is created at
/// `clock.now()` and is fresh while `clock.now() - created < ttl`. The default,
/// [`SystemClock`], reads [`Instant`]. Tests use [`ManualClock`] so that time moves
/// only when the test says so.
///
/// `now` must never go backwards.
///
/// # Example
///
/// ```
/// use dogpile::Clock;
/// use std::time::Duration;
///
/// /// A clock frozen at one instant.
/// struct Frozen(Duration);
///
/// impl Clock for Frozen {
///     fn now(&self) -> Duration {
///         self.0
///     }
/// }
///
/// let cache = dogpile::Cache::<u32, u32>::builder()
///     .ttl(Duration::from_secs(1))
///     .clock(Frozen(Duration::from_secs(42)))
///     .build();
/// assert_eq!(cache.get_with(1, || 10), 10);
/// ```
pub trait Clock: Send + Sync + 'static {
    /// Time elapsed since this clock's fixed, arbitrary origin.
    fn now(&self) -> Duration;
}

/// The default clock: [`Instant::now`], measured from a process-wide origin.
///
/// # Example
///
/// ```
/// use dogpile::{Clock, SystemClock};
///
/// let a = SystemClock.now();
/// let b = SystemClock.now();
/// assert!(b >= a);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        ORIGIN.get_or_init(Instant::now).elapsed()
    }
}

/// A clock that moves only when told to: the way to test anything time-dependent.
///
/// Clones share one time, so a test keeps a clone and hands another to the cache.
/// It starts at one hour, not zero, so that nothing is accidentally "older than the
/// origin".
///
/// # Example
///
/// ```
/// use dogpile::{Dogpile, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let lock = Dogpile::with_clock(Duration::from_secs(60), clock.clone());
/// assert_eq!(*lock.acquire(|| 1), 1);
/// assert_eq!(*lock.acquire(|| 2), 1); // fresh: the creator does not run
/// clock.advance(Duration::from_secs(60));
/// assert_eq!(*lock.acquire(|| 3), 3); // stale: this caller refreshes
/// ```
#[derive(Clone)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock standing at one hour past its origin.
    pub fn new() -> Self {
        ManualClock {
            nanos: Arc::new(AtomicU64::new(3_600_000_000_000)),
        }
    }

    /// Moves the clock forward by `by`.
    ///
    /// ```
    /// use dogpile::{Clock, ManualClock};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let before = clock.now();
    /// clock.advance(Duration::from_millis(5));
    /// assert_eq!(clock.now() - before, Duration::from_millis(5));
    /// ```
    pub fn advance(&self, by: Duration) {
        self.nanos.fetch_add(to_nanos(by), Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &self.now())
            .finish()
    }
}

/// Nanoseconds, saturating at `u64::MAX` (about 584 years).
pub(crate) fn to_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The clock a slot reads; the system clock without a virtual call.
#[derive(Clone)]
pub(crate) enum ClockHandle {
    System,
    Custom(Arc<dyn Clock>),
}

impl ClockHandle {
    pub(crate) fn custom(clock: impl Clock) -> Self {
        ClockHandle::Custom(Arc::new(clock))
    }

    #[inline]
    pub(crate) fn now_nanos(&self) -> u64 {
        match self {
            ClockHandle::System => to_nanos(SystemClock.now()),
            ClockHandle::Custom(clock) => to_nanos(clock.now()),
        }
    }
}

impl fmt::Debug for ClockHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClockHandle::System => f.write_str("SystemClock"),
            ClockHandle::Custom(_) => f.write_str("CustomClock"),
        }
    }
}
