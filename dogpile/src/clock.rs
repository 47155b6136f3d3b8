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
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `dogpile::Clock`",
    label = "expected a clock here",
    note = "use `dogpile::ManualClock` (tests) or `dogpile::SystemClock`, or implement `dogpile::Clock` (`fn now(&self) -> Duration`, never going backwards)"
)]
pub trait Clock: Send + Sync + 'static {
    /// Time elapsed since this clock's fixed, arbitrary origin.
    ///
    /// ```
    /// use dogpile::{Clock, ManualClock};
    /// let clock = ManualClock::new();
    /// assert_eq!(clock.now(), std::time::Duration::from_secs(3600));
    /// ```
    fn now(&self) -> Duration;
}

/// The default clock: [`Instant::now`], measured from a process-wide origin.
///
/// # Precision on the hit path
///
/// Reading [`Instant`] costs about as much as the rest of a cache hit, so a
/// [`Cache`](crate::Cache) or [`Dogpile`](crate::Dogpile) using this clock (the
/// default) checks freshness on a hit against a *coarse* reading of it instead: a
/// process-wide atomic that one background thread, `dogpile-clock`, sets from `Instant` every millisecond. That thread starts on
/// the first such hit and lives as long as the process.
///
/// The coarse reading is never ahead of `Instant`, only behind it by up to about a
/// millisecond (more if that thread is starved of CPU), so a value may be served as
/// fresh for that much longer than its ttl; it is never judged stale early. Every other
/// decision (a stale value's refresh claim, the expiry stamp, the stale windows) reads
/// `Instant` itself, and a cache whose ttl is under 50 ms reads `Instant` on hits too.
/// Clocks given through [`CacheBuilder::clock`](crate::CacheBuilder::clock) are
/// always read directly.
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

/// The coarse reading of [`SystemClock`] for the hit path; see
/// [its docs](SystemClock#precision-on-the-hit-path).
#[cfg(not(loom))]
mod coarse {
    use super::{to_nanos, Clock, SystemClock};
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    use std::sync::Once;
    use std::time::Duration;

    /// How often the ticker thread refreshes the reading.
    const TICK: Duration = Duration::from_millis(1);

    /// Nanoseconds of `SystemClock`, at most about one tick old; 0 until the ticker runs.
    static NOW: AtomicU64 = AtomicU64::new(0);

    fn precise() -> u64 {
        // Never 0, which means "no ticker".
        to_nanos(SystemClock.now()).max(1)
    }

    /// One relaxed load once the ticker runs; `SystemClock` itself if it cannot run.
    #[inline]
    pub(super) fn now_nanos() -> u64 {
        match NOW.load(Relaxed) {
            0 => start(),
            now => now,
        }
    }

    #[cold]
    fn start() -> u64 {
        static START: Once = Once::new();
        START.call_once(|| {
            NOW.store(precise(), Relaxed);
            let ticker = std::thread::Builder::new()
                .name("dogpile-clock".into())
                .spawn(|| loop {
                    std::thread::sleep(TICK);
                    // fetch_max: the reading never goes backwards.
                    NOW.fetch_max(precise(), Relaxed);
                });
            if ticker.is_err() {
                NOW.store(0, Relaxed); // no thread: read the precise clock every time
            }
        });
        precise()
    }
}

/// A clock that moves only when told to: the way to test anything time-dependent.
///
/// Clones share one time, so a test keeps a clone and hands another to the cache.
/// It starts at one hour, not zero, so that nothing is accidentally "older than the
/// origin". With the feature `test-clock`, [`ManualClock::scoped`] puts a new one in
/// force for every cache without a clock of its own, on the test's thread only (see
/// the guide's "Testing code that uses dogpile").
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
    ///
    /// ```
    /// use dogpile::{Clock, ManualClock};
    /// let clock = ManualClock::new();
    /// let shared = clock.clone(); // clones share one time
    /// clock.advance(std::time::Duration::from_secs(1));
    /// assert_eq!(shared.now(), clock.now());
    /// ```
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
        // Saturating: a huge step (`Duration::MAX`) must not wrap time backwards.
        let by = to_nanos(by);
        let _ = self
            .nanos
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_add(by))
            });
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

/// Below this ttl a fresh hit reads the precise clock: a millisecond of coarseness
/// would be a noticeable share of the value's life.
#[cfg(not(loom))]
const COARSE_MIN_TTL_NANOS: u64 = 50_000_000;

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
            ClockHandle::System => {
                // A test's scoped clock, when one is in force on this thread.
                #[cfg(feature = "test-clock")]
                if let Some(now) = scoped_now() {
                    return to_nanos(now);
                }
                to_nanos(SystemClock.now())
            }
            ClockHandle::Custom(clock) => to_nanos(clock.now()),
        }
    }

    /// The reading a fresh-hit check uses for a value that lives `ttl` nanoseconds:
    /// the coarse system clock when the ttl is long enough for its precision (never
    /// ahead of [`now_nanos`](Self::now_nanos), so it never makes a value stale early).
    #[inline]
    #[cfg_attr(loom, allow(unused_variables))]
    pub(crate) fn hit_now_nanos(&self, ttl: u64) -> u64 {
        // A test's scoped clock, when one is in force on this thread.
        #[cfg(feature = "test-clock")]
        if let ClockHandle::System = self {
            if let Some(now) = scoped_now() {
                return to_nanos(now);
            }
        }
        match self {
            #[cfg(not(loom))]
            ClockHandle::System if ttl >= COARSE_MIN_TTL_NANOS => coarse::now_nanos(),
            _ => self.now_nanos(),
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

// A test's scoped clock (feature `test-clock`): the one in force on this thread, set and
// restored by `crate::test_clock`'s guards. It lives here, where every default-clock
// reading looks at it.
#[cfg(any(doc, feature = "test-clock"))]
thread_local! {
    static SCOPED: std::cell::RefCell<Option<ManualClock>> = const { std::cell::RefCell::new(None) };
}

/// The time of the scoped clock in force on this thread, if any.
#[cfg(feature = "test-clock")]
#[inline]
pub(crate) fn scoped_now() -> Option<Duration> {
    SCOPED.with(|scoped| scoped.borrow().as_ref().map(ManualClock::now))
}

/// The scoped clock in force on this thread, if any.
#[cfg(any(doc, feature = "test-clock"))]
pub(crate) fn scoped_clock() -> Option<ManualClock> {
    SCOPED.with(|scoped| scoped.borrow().clone())
}

/// Puts `clock` in force on this thread; returns the one it replaces.
#[cfg(any(doc, feature = "test-clock"))]
pub(crate) fn replace_scoped_clock(clock: Option<ManualClock>) -> Option<ManualClock> {
    SCOPED.with(|scoped| scoped.replace(clock))
}
