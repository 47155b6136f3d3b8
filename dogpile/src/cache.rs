//! [`Cache`]: a dogpile slot per key, on a [`DashMap`].

use crate::clock::{to_nanos, Clock, ClockHandle};
use crate::key::KeyRef;
use crate::shared::{LocalAction, SharedLevel, SharedTier};
use crate::slot::{self, take_creator, Control, Env, Policy, Stamped, Step, Store};
use crate::stats::{Counters, Stats};
use crate::sync_reader::{Held, ReadGuard};
use dashmap::DashMap;
use std::borrow::Borrow;
use std::convert::Infallible;
use std::fmt;
#[cfg(not(loom))]
use std::future::Future;
use std::hash::Hash;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A memoizing map where each key is its own dogpile lock.
///
/// For every key the rules of [`Dogpile`](crate::Dogpile) hold: the first call for a
/// key creates its value while concurrent callers for that key wait; a fresh value is
/// returned at once; a stale one is returned at once to every caller but the one that
/// refreshes it. Different keys never wait for each other, and a creator may itself
/// call the cache for other keys (recursion), since no map lock is held while a creator
/// runs or a caller waits.
///
/// Values are cloned out, so store an `Arc<T>` when cloning `T` is expensive.
///
/// # Example
///
/// ```
/// use dogpile::Cache;
/// use std::time::Duration;
///
/// let squares: Cache<u64, u64> = Cache::new(Duration::from_secs(60));
/// assert_eq!(squares.get_with(12, || 12 * 12), 144);
/// assert_eq!(squares.get_with(12, || unreachable!("fresh: not recomputed")), 144);
/// ```
///
/// # Bounds and eviction
///
/// With [`CacheBuilder::capacity`] the map never holds more than `capacity` entries.
/// When a new key needs room, the cache evicts, in one batch of about a sixteenth of
/// the capacity, the entries with the oldest values (empty entries first); entries
/// whose creation is in flight are never evicted. If none can be evicted, the new key's
/// value is computed and returned without being stored.
///
/// Without a capacity, the cache still reclaims values nobody has refreshed for a long
/// time: each time the keys admitted since the last sweep are as many as the entries
/// there were before them (and at least 1024), entries older than `ttl + max_stale`, or
/// `16 × ttl` without `max_stale`, are dropped. Both sweeps cost amortized O(1) per new key.
pub struct Cache<K, V> {
    inner: Arc<Inner<K, V>>,
}

struct Entry<V> {
    value: Option<Stamped<V>>,
    control: Arc<Control>,
}

/// The map's hasher: foldhash's fast hasher (what `hashbrown` uses by default), seeded
/// per process. It hashes a `u64` or a short string several times faster than std's
/// SipHash, which shows on the hit path; borrowed lookups hash with the same hasher
/// through `DashMap::hash_usize`.
type Hasher = foldhash::fast::RandomState;

struct Inner<K, V> {
    map: DashMap<K, Entry<V>, Hasher>,
    env: Env,
    capacity: Option<usize>,
    sync_readers: bool,
    background: bool,
    /// Entries in the map plus places reserved for entries about to be inserted: the
    /// capacity bound is checked against this, not the map's approximate `len`.
    entries: AtomicUsize,
    admitted_since_sweep: AtomicUsize,
    sweeping: parking_lot::Mutex<()>,
    /// The fleet tier (F1–F8), between the local value and the creator.
    shared: Option<SharedLevel<K, V>>,
}

/// Builds a [`Cache`]; start from [`Cache::builder`].
///
/// # Example
///
/// ```
/// use dogpile::Cache;
/// use std::time::Duration;
///
/// let cache: Cache<String, u32> = Cache::builder()
///     .ttl(Duration::from_secs(30))
///     .capacity(10_000)
///     .max_stale(Duration::from_secs(300))
///     .build();
/// assert_eq!(cache.get_with("a".into(), || 1), 1);
/// ```
#[must_use = "a builder does nothing until `.build()`"]
pub struct CacheBuilder<K, V> {
    ttl: Option<Duration>,
    capacity: Option<usize>,
    background: bool,
    stale_if_error: bool,
    max_stale: Option<Duration>,
    sync_readers: bool,
    clock: ClockHandle,
    shared: Option<Arc<dyn SharedTier<K, V>>>,
    _types: PhantomData<fn() -> (K, V)>,
}

/// Why [`CacheBuilder::try_build`] refused its settings.
///
/// # Example
///
/// ```
/// use dogpile::{BuildError, Cache};
///
/// let error = Cache::<u8, u8>::builder().try_build().unwrap_err();
/// assert_eq!(error, BuildError::MissingTtl);
/// assert!(error.to_string().contains("ttl"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// No `.ttl(..)` was given.
    MissingTtl,
    /// `.ttl(Duration::ZERO)`: every value would be stale at birth.
    ZeroTtl,
    /// `.capacity(0)`: nothing could ever be stored.
    ZeroCapacity,
    /// `.max_stale(Duration::ZERO)`: use no `max_stale` to serve stale values until
    /// a refresh succeeds, or a positive bound.
    ZeroMaxStale,
    /// `.background_refresh()` with `.sync_readers()`: a background publish would wait
    /// for readers that no caller is responsible for.
    BackgroundWithSyncReaders,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BuildError::MissingTtl => "a cache needs a ttl: call `.ttl(duration)` on the builder",
            BuildError::ZeroTtl => "ttl must be greater than zero (a value would be stale at birth)",
            BuildError::ZeroCapacity => "capacity must be at least 1",
            BuildError::ZeroMaxStale => {
                "max_stale must be greater than zero; leave it unset to serve stale values until a refresh succeeds"
            }
            BuildError::BackgroundWithSyncReaders => {
                "background_refresh and sync_readers cannot be combined: a background publish would wait on readers"
            }
        })
    }
}

impl std::error::Error for BuildError {}

impl<K, V> CacheBuilder<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// How long a value stays fresh. Required; must be greater than zero.
    ///
    /// ```
    /// let cache = dogpile::Cache::<u8, u8>::builder().ttl(std::time::Duration::from_millis(250)).build();
    /// assert_eq!(cache.get_with(1, || 1), 1);
    /// ```
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// The most entries the cache holds; see [Bounds and eviction](Cache#bounds-and-eviction).
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = dogpile::Cache::<u32, u32>::builder().ttl(Duration::from_secs(1)).capacity(2).build();
    /// for key in 0..10 {
    ///     cache.get_with(key, || key);
    /// }
    /// assert!(cache.len() <= 2);
    /// ```
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// Refresh stale values on a background thread (R10): the caller that claims the
    /// refresh returns the stale value at once like everyone else, so after the first
    /// creation nobody waits.
    ///
    /// The creator then outlives the call, so it must be `Send + 'static`: background
    /// refreshes happen through [`Cache::get_with_background`] and
    /// [`Cache::try_get_with_background`]. The other methods refresh inline.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = dogpile::Cache::<u8, u8>::builder()
    ///     .ttl(Duration::from_secs(1))
    ///     .background_refresh()
    ///     .build();
    /// assert_eq!(cache.get_with_background(1, || 1), 1);
    /// ```
    pub fn background_refresh(mut self) -> Self {
        self.background = true;
        self
    }

    /// A failed refresh returns the stale value to its caller instead of the error
    /// (R5). A failed *first* creation still returns the error: there is nothing else.
    ///
    /// ```
    /// use dogpile::{Cache, ManualClock};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let cache = Cache::<u8, u8>::builder()
    ///     .ttl(Duration::from_secs(1))
    ///     .stale_if_error()
    ///     .clock(clock.clone())
    ///     .build();
    /// cache.get_with(1, || 10);
    /// clock.advance(Duration::from_secs(2));
    /// assert_eq!(cache.try_get_with(1, || Err("backend down")), Ok(10));
    /// ```
    pub fn stale_if_error(mut self) -> Self {
        self.stale_if_error = true;
        self
    }

    /// Bounded staleness (R11): a value older than `ttl + max_stale` is not served;
    /// callers treat its key as cold and wait for a new value.
    ///
    /// ```
    /// use dogpile::{Cache, ManualClock};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let cache = Cache::<u8, u8>::builder()
    ///     .ttl(Duration::from_secs(1))
    ///     .max_stale(Duration::from_secs(1))
    ///     .clock(clock.clone())
    ///     .build();
    /// cache.get_with(1, || 10);
    /// clock.advance(Duration::from_secs(2));
    /// assert_eq!(cache.try_get_with(1, || Err::<u8, _>("down")), Err("down"));
    /// ```
    pub fn max_stale(mut self, max_stale: Duration) -> Self {
        self.max_stale = Some(max_stale);
        self
    }

    /// Reader-synchronised mode (R8): values are read under [`ReadGuard`]s through
    /// [`Cache::read_with`], and publishing a new value for a key waits until every
    /// guard on that key is dropped.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = dogpile::Cache::<u8, String>::builder().ttl(Duration::from_secs(1)).sync_readers().build();
    /// assert_eq!(*cache.read_with(1, || "one".into()), "one");
    /// ```
    pub fn sync_readers(mut self) -> Self {
        self.sync_readers = true;
        self
    }

    /// The clock that times values; [`ManualClock`](crate::ManualClock) in tests.
    ///
    /// ```
    /// use dogpile::{Cache, ManualClock};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let cache = Cache::<u8, u8>::builder().ttl(Duration::from_secs(1)).clock(clock.clone()).build();
    /// cache.get_with(1, || 1);
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(cache.get_with(1, || 2), 2);
    /// ```
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = ClockHandle::custom(clock);
        self
    }

    /// Shares values, their age and the refresh claim with every process that uses the
    /// same tier (F1–F8), for example a `dogpile_redis::RedisTier`. This cache stays the
    /// first level: a fresh value here never reaches the tier (F3), and when the tier
    /// fails the local rules apply (F7).
    ///
    /// ```
    /// # use dogpile::{Claim, EventSink, Lease, Publish, SharedTier, SharedValue, TierError};
    /// # use std::time::Duration;
    /// # struct Down;
    /// # impl SharedTier<u8, u8> for Down {
    /// #     fn lookup(&self, _: &u8) -> Result<Option<SharedValue<u8>>, TierError> { Err(TierError::new("down")) }
    /// #     fn claim(&self, _: &u8, _: Duration) -> Result<Claim<u8>, TierError> { Err(TierError::new("down")) }
    /// #     fn publish(&self, _: &u8, _: &Lease, _: &u8) -> Result<Publish, TierError> { Err(TierError::new("down")) }
    /// #     fn release(&self, _: &u8, _: &Lease) -> Result<(), TierError> { Err(TierError::new("down")) }
    /// #     fn invalidate(&self, _: &u8, _: Duration) -> Result<(), TierError> { Err(TierError::new("down")) }
    /// #     fn remove(&self, _: &u8) -> Result<(), TierError> { Err(TierError::new("down")) }
    /// #     fn subscribe(&self, _: EventSink<u8>) {}
    /// # }
    /// // A tier that is down: the cache follows the local rules (F7).
    /// let cache = dogpile::Cache::<u8, u8>::builder()
    ///     .ttl(Duration::from_secs(60))
    ///     .shared(Down)
    ///     .build();
    /// assert_eq!(cache.get_with(1, || 10), 10);
    /// assert_eq!(cache.get_with(1, || unreachable!()), 10);
    /// ```
    pub fn shared(mut self, tier: impl SharedTier<K, V>) -> Self {
        self.shared = Some(Arc::new(tier));
        self
    }

    /// The cache, or why these settings make no sense.
    ///
    /// ```
    /// use dogpile::{BuildError, Cache};
    /// use std::time::Duration;
    ///
    /// let zero = Cache::<u8, u8>::builder().ttl(Duration::ZERO).try_build();
    /// assert_eq!(zero.err(), Some(BuildError::ZeroTtl));
    /// ```
    pub fn try_build(self) -> Result<Cache<K, V>, BuildError> {
        let ttl = self.ttl.ok_or(BuildError::MissingTtl)?;
        if ttl.is_zero() {
            return Err(BuildError::ZeroTtl);
        }
        if self.capacity == Some(0) {
            return Err(BuildError::ZeroCapacity);
        }
        if self.max_stale.is_some_and(|d| d.is_zero()) {
            return Err(BuildError::ZeroMaxStale);
        }
        if self.background && self.sync_readers {
            return Err(BuildError::BackgroundWithSyncReaders);
        }
        let env = Env {
            policy: Policy {
                ttl: to_nanos(ttl),
                max_stale: self.max_stale.map(to_nanos),
                stale_if_error: self.stale_if_error,
            },
            clock: self.clock,
            stats: Arc::new(Counters::default()),
        };
        let shared = self.shared;
        Ok(Cache {
            inner: Arc::new_cyclic(|this: &std::sync::Weak<Inner<K, V>>| Inner {
                shared: shared.map(|tier| {
                    let this = this.clone();
                    SharedLevel::new(tier, ttl, move |action| {
                        if let Some(inner) = this.upgrade() {
                            Cache { inner }.apply_locally(action);
                        }
                    })
                }),
                map: DashMap::with_hasher(Hasher::default()),
                env,
                capacity: self.capacity,
                sync_readers: self.sync_readers,
                background: self.background,
                entries: AtomicUsize::new(0),
                admitted_since_sweep: AtomicUsize::new(0),
                sweeping: parking_lot::Mutex::new(()),
            }),
        })
    }

    /// The cache.
    ///
    /// # Panics
    ///
    /// With a message naming the problem if the settings make no sense: no ttl, a zero
    /// ttl, capacity 0, a zero `max_stale`, or background refresh with sync readers.
    /// [`try_build`](CacheBuilder::try_build) returns these as a [`BuildError`].
    ///
    /// ```should_panic
    /// // panics: "dogpile: ttl must be greater than zero ..."
    /// dogpile::Cache::<u8, u8>::builder().ttl(std::time::Duration::ZERO).build();
    /// ```
    pub fn build(self) -> Cache<K, V> {
        match self.try_build() {
            Ok(cache) => cache,
            Err(error) => panic!("dogpile: {error}"),
        }
    }
}

impl<K, V> Cache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A cache whose values stay fresh for `ttl`, unbounded, timed by the system clock.
    ///
    /// # Panics
    ///
    /// If `ttl` is zero.
    ///
    /// ```
    /// let cache: dogpile::Cache<u8, u8> = dogpile::Cache::new(std::time::Duration::from_secs(1));
    /// assert!(cache.is_empty());
    /// ```
    pub fn new(ttl: Duration) -> Self {
        Self::builder().ttl(ttl).build()
    }

    /// A builder for every other setting.
    ///
    /// ```
    /// let cache: dogpile::Cache<u8, u8> = dogpile::Cache::builder()
    ///     .ttl(std::time::Duration::from_secs(1))
    ///     .build();
    /// assert_eq!(cache.len(), 0);
    /// ```
    pub fn builder() -> CacheBuilder<K, V> {
        CacheBuilder {
            ttl: None,
            capacity: None,
            background: false,
            stale_if_error: false,
            max_stale: None,
            sync_readers: false,
            clock: ClockHandle::System,
            shared: None,
            _types: PhantomData,
        }
    }

    /// The value for `key`: fresh at once; stale at once unless this caller is the one
    /// that refreshes it; created by `create` on a cold key, while other callers of the
    /// key wait.
    ///
    /// # Panics
    ///
    /// If `create` panics (the panic reaches this caller only; a waiter takes over), or
    /// if `create` asks for this same key.
    ///
    /// ```
    /// let cache = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// assert_eq!(cache.get_with("k", || 1), 1);
    /// assert_eq!(cache.get_with("k", || 2), 1);
    /// ```
    #[inline]
    pub fn get_with(&self, key: K, create: impl FnOnce() -> V) -> V {
        match self.try_get_with(key, || Ok::<V, Infallible>(create())) {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// [`get_with`](Cache::get_with) with a fallible creator: an `Err` reaches only the
    /// caller whose creator returned it, and nothing is stored (with
    /// [`stale_if_error`](CacheBuilder::stale_if_error), a failed refresh returns the
    /// stale value instead).
    ///
    /// ```
    /// let cache = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// assert_eq!(cache.try_get_with(1, || Err::<u8, _>("down")), Err("down"));
    /// assert_eq!(cache.try_get_with(1, || Ok::<_, &str>(5)), Ok(5));
    /// ```
    #[inline]
    pub fn try_get_with<E>(&self, key: K, create: impl FnOnce() -> Result<V, E>) -> Result<V, E> {
        if let Some(value) = self.inner.fresh(&key) {
            return Ok(value);
        }
        self.inner.get_slow(key, create)
    }

    /// [`get_with`](Cache::get_with) by a borrowed form of the key (see [`KeyRef`]):
    /// a fresh hit builds no owned key and allocates nothing.
    ///
    /// ```
    /// let cache: dogpile::Cache<String, usize> = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// assert_eq!(cache.get_with_by_ref("hello", || 5), 5);
    /// assert_eq!(cache.get_with_by_ref("hello", || 0), 5);
    /// ```
    #[inline]
    pub fn get_with_by_ref<Q>(&self, key: &Q, create: impl FnOnce() -> V) -> V
    where
        Q: KeyRef<K> + ?Sized,
    {
        match self.try_get_with_by_ref(key, || Ok::<V, Infallible>(create())) {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// [`try_get_with`](Cache::try_get_with) by a borrowed form of the key.
    ///
    /// ```
    /// let cache: dogpile::Cache<(String, u8), u8> = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// assert_eq!(cache.try_get_with_by_ref(&("a", &1), || Ok::<_, ()>(7)), Ok(7));
    /// ```
    #[inline]
    pub fn try_get_with_by_ref<Q, E>(
        &self,
        key: &Q,
        create: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E>
    where
        Q: KeyRef<K> + ?Sized,
    {
        if let Some(value) = self.inner.fresh_by_ref(key) {
            return Ok(value);
        }
        self.inner.get_slow(key.to_key(), create)
    }

    /// Like [`get_with`](Cache::get_with), but on a cache built with
    /// [`background_refresh`](CacheBuilder::background_refresh) a stale value is
    /// refreshed on a background thread and every caller, the claimant included,
    /// returns the stale value at once (R10). The first creation of a key still runs
    /// on the calling thread. Without `background_refresh` it refreshes inline.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = dogpile::Cache::<u8, u8>::builder().ttl(Duration::from_secs(9)).background_refresh().build();
    /// assert_eq!(cache.get_with_background(1, || 1), 1);
    /// ```
    pub fn get_with_background(&self, key: K, create: impl FnOnce() -> V + Send + 'static) -> V {
        match self.try_get_with_background(key, || Ok::<V, Infallible>(create())) {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// [`get_with_background`](Cache::get_with_background) with a fallible creator. A
    /// failed background refresh keeps the stale value; the next stale hit retries.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = dogpile::Cache::<u8, u8>::builder().ttl(Duration::from_secs(9)).background_refresh().build();
    /// assert_eq!(cache.try_get_with_background(1, || Ok::<_, String>(1)), Ok(1));
    /// ```
    pub fn try_get_with_background<E>(
        &self,
        key: K,
        create: impl FnOnce() -> Result<V, E> + Send + 'static,
    ) -> Result<V, E> {
        if let Some(value) = self.inner.fresh(&key) {
            return Ok(value);
        }
        if !self.inner.background {
            return self.inner.get_slow(key, create);
        }
        match &self.inner.shared {
            // As in `get_slow`: the tier runs in place of the creator (here on the
            // refresh thread), so the lease is held while the refresh runs.
            Some(_) => {
                let tier_age = Arc::new(AtomicU64::new(0));
                let (inner, shared_key, age) = (self.inner.clone(), key.clone(), tier_age.clone());
                let create = move || {
                    let level = inner
                        .shared
                        .as_ref()
                        .expect("a shared cache keeps its tier");
                    let sourced = level.create(&shared_key, create)?;
                    age.store(to_nanos(sourced.age), Ordering::Relaxed);
                    Ok(sourced.value)
                };
                self.background_loop(key, create, Some(tier_age))
            }
            None => self.background_loop(key, create, None),
        }
    }

    fn background_loop<E>(
        &self,
        key: K,
        create: impl FnOnce() -> Result<V, E> + Send + 'static,
        tier_age: Option<Arc<AtomicU64>>,
    ) -> Result<V, E> {
        let mut create = Some(create);
        loop {
            let Some(control) = self.inner.control_for(&key) else {
                return take_creator(&mut create)();
            };
            let store = EntryStore {
                inner: self.inner.clone(),
                key: key.clone(),
                control: control.clone(),
                tier_age: tier_age.clone(),
            };
            match slot::get_in_background(&control, store, &self.inner.env, &mut create) {
                Step::Done(result) => return result,
                Step::Retired => continue,
            }
        }
    }

    /// The value under a [`ReadGuard`], on a cache built with
    /// [`sync_readers`](CacheBuilder::sync_readers): publishing a new value for this key
    /// waits until the guard is dropped (R8). Otherwise as [`get_with`](Cache::get_with).
    ///
    /// # Panics
    ///
    /// If the cache was not built with `sync_readers`, or as `get_with` does.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = dogpile::Cache::<u8, String>::builder().ttl(Duration::from_secs(9)).sync_readers().build();
    /// let guard = cache.read_with(1, || "one".into());
    /// assert_eq!(guard.as_str(), "one");
    /// ```
    pub fn read_with(&self, key: K, create: impl FnOnce() -> V) -> ReadGuard<V> {
        match self.try_read_with(key, || Ok::<V, Infallible>(create())) {
            Ok(guard) => guard,
            Err(never) => match never {},
        }
    }

    /// [`read_with`](Cache::read_with) with a fallible creator.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = dogpile::Cache::<u8, u8>::builder().ttl(Duration::from_secs(9)).sync_readers().build();
    /// assert!(cache.try_read_with(1, || Err::<u8, _>("no")).is_err());
    /// ```
    pub fn try_read_with<E>(
        &self,
        key: K,
        create: impl FnOnce() -> Result<V, E>,
    ) -> Result<ReadGuard<V>, E> {
        self.inner.read_slow(key, create)
    }

    /// [`read_with`](Cache::read_with) by a borrowed form of the key.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = dogpile::Cache::<String, u8>::builder().ttl(Duration::from_secs(9)).sync_readers().build();
    /// assert_eq!(*cache.read_with_by_ref("a", || 1), 1);
    /// ```
    pub fn read_with_by_ref<Q>(&self, key: &Q, create: impl FnOnce() -> V) -> ReadGuard<V>
    where
        Q: KeyRef<K> + ?Sized,
    {
        self.read_with(key.to_key(), create)
    }

    /// [`try_read_with`](Cache::try_read_with) by a borrowed form of the key.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = dogpile::Cache::<String, u8>::builder().ttl(Duration::from_secs(9)).sync_readers().build();
    /// assert_eq!(*cache.try_read_with_by_ref("a", || Ok::<_, ()>(1)).unwrap(), 1);
    /// ```
    pub fn try_read_with_by_ref<Q, E>(
        &self,
        key: &Q,
        create: impl FnOnce() -> Result<V, E>,
    ) -> Result<ReadGuard<V>, E>
    where
        Q: KeyRef<K> + ?Sized,
    {
        self.try_read_with(key.to_key(), create)
    }

    /// [`get_with`](Cache::get_with) for async callers: the same rules, and waiting for
    /// a cold key awaits a notification instead of blocking the thread. Works on any
    /// executor. If this future is dropped while it is creating the value, its claim is
    /// released and one waiting caller takes over.
    ///
    /// ```
    /// # futures_lite_block_on(async {
    /// let cache = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// assert_eq!(cache.get_with_async(1, async { 10 }).await, 10);
    /// # });
    /// # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let waker = std::task::Waker::noop();
    /// #     let mut cx = std::task::Context::from_waker(&waker);
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v } }
    /// # }
    /// ```
    #[cfg(not(loom))]
    pub async fn get_with_async(&self, key: K, create: impl Future<Output = V>) -> V {
        if let Some(value) = self.inner.fresh(&key) {
            return value;
        }
        let create = async { Ok::<V, Infallible>(create.await) };
        match Box::pin(self.inner.get_async_slow(key, create)).await {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// [`try_get_with`](Cache::try_get_with) for async callers.
    ///
    /// ```
    /// # futures_lite_block_on(async {
    /// let cache = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// assert_eq!(cache.try_get_with_async(1, async { Err::<u8, _>("down") }).await, Err("down"));
    /// # });
    /// # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let waker = std::task::Waker::noop();
    /// #     let mut cx = std::task::Context::from_waker(&waker);
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v } }
    /// # }
    /// ```
    #[cfg(not(loom))]
    pub async fn try_get_with_async<E>(
        &self,
        key: K,
        create: impl Future<Output = Result<V, E>>,
    ) -> Result<V, E> {
        if let Some(value) = self.inner.fresh(&key) {
            return Ok(value);
        }
        // Boxed: the slow path's state (claim, listener, store) would otherwise make
        // every caller's future several times larger, and a hit pays to move it.
        Box::pin(self.inner.get_async_slow(key, create)).await
    }

    /// [`get_with_async`](Cache::get_with_async) with background refresh (R10) on a
    /// cache built with [`background_refresh`](CacheBuilder::background_refresh): the
    /// refresh of a stale value is spawned on the current tokio runtime and every
    /// caller, the claimant included, returns the stale value at once.
    ///
    /// Outside a tokio runtime, or without `background_refresh`, the refresh runs
    /// inline in the claimant's future as with `get_with_async`. Needs the `tokio`
    /// feature.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// let cache = dogpile::Cache::<u8, u8>::builder().ttl(Duration::from_secs(9)).background_refresh().build();
    /// assert_eq!(cache.get_with_async_background(1, async { 1 }).await, 1);
    /// # }
    /// ```
    #[cfg(all(feature = "tokio", not(loom)))]
    pub async fn get_with_async_background(
        &self,
        key: K,
        create: impl Future<Output = V> + Send + 'static,
    ) -> V {
        let create = async { Ok::<V, Infallible>(create.await) };
        match self.try_get_with_async_background(key, create).await {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// [`get_with_async_background`](Cache::get_with_async_background) with a fallible
    /// creator. A failed background refresh keeps the stale value.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// let cache = dogpile::Cache::<u8, u8>::builder().ttl(Duration::from_secs(9)).background_refresh().build();
    /// let value = cache.try_get_with_async_background(1, async { Ok::<_, String>(1) }).await;
    /// assert_eq!(value, Ok(1));
    /// # }
    /// ```
    #[cfg(all(feature = "tokio", not(loom)))]
    pub async fn try_get_with_async_background<E>(
        &self,
        key: K,
        create: impl Future<Output = Result<V, E>> + Send + 'static,
    ) -> Result<V, E>
    where
        E: Send + 'static,
    {
        if let Some(value) = self.inner.fresh(&key) {
            return Ok(value);
        }
        let runtime = match tokio::runtime::Handle::try_current() {
            Ok(runtime) if self.inner.background => runtime,
            _ => return self.try_get_with_async(key, create).await,
        };
        let mut create = Some(create);
        loop {
            let Some(control) = self.inner.control_for(&key) else {
                return take_creator(&mut create).await;
            };
            let store = EntryStore {
                inner: self.inner.clone(),
                key: key.clone(),
                control: control.clone(),
            };
            let spawn = |task| drop(runtime.spawn(task));
            let env = &self.inner.env;
            match slot::get_async_in_background(&control, store, env, &mut create, spawn).await {
                Step::Done(result) => return result,
                Step::Retired => continue,
            }
        }
    }

    /// Stores `value` for `key` as fresh now, whatever was there. A creation in flight
    /// for the key still publishes its own value when it finishes. In reader-synchronised
    /// mode this waits for the key's guards like any publish.
    ///
    /// ```
    /// let cache = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// cache.insert("k", 1);
    /// assert_eq!(cache.get_with("k", || 2), 1);
    /// ```
    pub fn insert(&self, key: K, value: V) {
        let Some(control) = self.inner.control_for(&key) else {
            return; // full of entries being created: nothing can make room now
        };
        let store = EntryStore {
            inner: &*self.inner,
            key,
            control: control.clone(),
            tier_age: None,
        };
        let now = self.inner.env.now();
        match control.fence() {
            Some(fence) => {
                fence.write();
                store.publish(value, now);
                fence.release_write();
            }
            None => store.publish(value, now),
        }
    }

    /// Makes the value for `key` stale (soft, R7): it is still served while the next
    /// caller refreshes it.
    ///
    /// ```
    /// let cache = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// cache.get_with(1, || "old");
    /// cache.invalidate(&1);
    /// assert_eq!(cache.get_with(1, || "new"), "new");
    /// ```
    pub fn invalidate<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.invalidate_here(key);
        if let Some(level) = &self.inner.shared {
            if let Some(owned) = self.inner.map.get(key).map(|e| e.key().clone()) {
                level.invalidate(&owned);
            }
        }
    }

    fn invalidate_here<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(mut entry) = self.inner.map.get_mut(key) {
            if let Some(stamped) = entry.value.as_mut() {
                stamped.invalidated = true;
            }
        }
    }

    /// A tier event from another process (F6), applied to this process's L1 only.
    fn apply_locally(&self, action: LocalAction<K>) {
        match action {
            LocalAction::Invalidate(key) => self.invalidate_here(&key),
            LocalAction::Remove(key) => drop(self.remove_here(&key)),
            LocalAction::InvalidateAll => {
                for mut entry in self.inner.map.iter_mut() {
                    if let Some(stamped) = entry.value.as_mut() {
                        stamped.invalidated = true;
                    }
                }
            }
        }
    }

    /// Removes the value for `key` (hard, R7): the next caller creates a new one while
    /// the others wait. Returns the removed value. A creation already in flight for the
    /// key is not cancelled: it publishes when it finishes.
    ///
    /// ```
    /// let cache = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// cache.get_with(1, || "old");
    /// assert_eq!(cache.remove(&1), Some("old"));
    /// assert_eq!(cache.get_with(1, || "new"), "new");
    /// ```
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(level) = &self.inner.shared {
            if let Some(owned) = self.inner.map.get(key).map(|e| e.key().clone()) {
                level.remove(&owned);
            }
        }
        self.remove_here(key)
    }

    fn remove_here<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let inner = &self.inner;
        match inner
            .map
            .remove_if(key, |_, entry| entry.control.try_retire())
        {
            Some((_, entry)) => {
                inner.entries.fetch_sub(1, Ordering::AcqRel);
                entry.value.map(|s| s.value)
            }
            None => inner
                .map
                .get_mut(key)
                .and_then(|mut entry| entry.value.take())
                .map(|s| s.value),
        }
    }

    /// Removes every value (hard). Creations in flight publish when they finish.
    ///
    /// ```
    /// let cache = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// cache.get_with(1, || 1);
    /// cache.clear();
    /// assert!(cache.is_empty());
    /// ```
    pub fn clear(&self) {
        // Under the sweep lock: an eviction racing the clear would otherwise count the
        // entries it removes before they are subtracted, find only busy entries left,
        // and compute a new key's value outside its slot.
        let _sweep = self.inner.sweeping.lock();
        let mut removed = 0;
        self.inner.map.retain(|_, entry| {
            if entry.control.try_retire() {
                removed += 1;
                false
            } else {
                entry.value = None;
                true
            }
        });
        self.inner.entries.fetch_sub(removed, Ordering::AcqRel);
    }

    /// The number of entries, including keys whose first creation is in flight.
    ///
    /// ```
    /// let cache = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// cache.get_with(1, || 1);
    /// cache.get_with(2, || 2);
    /// assert_eq!(cache.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.inner.map.len()
    }

    /// Whether the cache has no entries.
    ///
    /// ```
    /// let cache: dogpile::Cache<u8, u8> = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// assert!(cache.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.inner.map.is_empty()
    }

    /// Counters of what the cache has seen; see [`Stats`].
    ///
    /// ```
    /// let cache = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// cache.get_with(1, || 1);
    /// cache.get_with(1, || 1);
    /// let stats = cache.stats();
    /// assert_eq!((stats.misses, stats.hits), (1, 1));
    /// ```
    pub fn stats(&self) -> Stats {
        self.inner.env.stats.snapshot()
    }
}

impl<K, V> Clone for Cache<K, V> {
    /// Another handle to the same cache.
    fn clone(&self) -> Self {
        Cache {
            inner: self.inner.clone(),
        }
    }
}

impl<K: Hash + Eq, V> fmt::Debug for Cache<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("ttl", &Duration::from_nanos(self.inner.env.policy.ttl))
            .field("capacity", &self.inner.capacity)
            .field("entries", &self.inner.map.len())
            .finish_non_exhaustive()
    }
}

impl<K, V> Inner<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The hit path: a shared shard lock, a clock read, a comparison and a clone.
    #[inline]
    fn fresh<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let now = self.hit_now()?;
        let value = self.fresh_value(self.map.get(key)?.value(), now)?;
        self.env.stats.hit();
        Some(value)
    }

    /// The hit path by a borrowed key: hashed as the owned key would be, compared in
    /// place, so nothing is allocated.
    #[inline]
    fn fresh_by_ref<Q: KeyRef<K> + ?Sized>(&self, key: &Q) -> Option<V> {
        let now = self.hit_now()?;
        let hash = self.map.hash_usize(&key);
        let value = {
            let shard = self.map.shards()[self.map.determine_shard(hash)].read();
            let (_, entry) = shard.get(hash as u64, |(stored, _)| key.eq_key(stored))?;
            self.fresh_value(entry.get(), now)?
        };
        self.env.stats.hit();
        Some(value)
    }

    /// The clock reading a hit is judged by, taken before the shard lock so that the
    /// lock is held only to compare and clone: under contention the lock word's cache
    /// line moves between cores, and a shorter hold means fewer such moves. `None` in
    /// reader-synchronised mode, where guards are handed out by the reader path only.
    #[inline]
    fn hit_now(&self) -> Option<u64> {
        if self.sync_readers {
            return None;
        }
        // The coarse clock for long ttls (see `SystemClock`): never ahead of the precise
        // one, so a value it calls stale is stale for the slow path too.
        Some(self.env.clock.hit_now_nanos(self.env.policy.ttl))
    }

    #[inline]
    fn fresh_value(&self, entry: &Entry<V>, now: u64) -> Option<V> {
        let stamped = entry.value.as_ref()?;
        self.env
            .policy
            .is_fresh(stamped, now)
            .then(|| stamped.value.clone())
    }

    fn get_slow<E>(&self, key: K, create: impl FnOnce() -> Result<V, E>) -> Result<V, E> {
        match &self.shared {
            // The fleet tier runs in place of the creator, once this call holds the
            // key's local claim: the first level of the two-level claim (F3).
            Some(level) => {
                let tier_age = Arc::new(AtomicU64::new(0));
                let (shared_key, age) = (key.clone(), tier_age.clone());
                let create = move || {
                    let sourced = level.create(&shared_key, create)?;
                    age.store(to_nanos(sourced.age), Ordering::Relaxed);
                    Ok(sourced.value)
                };
                self.get_loop(key, create, Some(tier_age))
            }
            None => self.get_loop(key, create, None),
        }
    }

    fn get_loop<E>(
        &self,
        key: K,
        create: impl FnOnce() -> Result<V, E>,
        tier_age: Option<Arc<AtomicU64>>,
    ) -> Result<V, E> {
        let mut create = Some(create);
        loop {
            let Some(control) = self.control_for(&key) else {
                Counters::bump(&self.env.stats.misses);
                return take_creator(&mut create)();
            };
            let store = EntryStore {
                inner: self,
                key: key.clone(),
                control: control.clone(),
                tier_age: tier_age.clone(),
            };
            match slot::get(&control, &store, &self.env, || take_creator(&mut create)()) {
                Step::Done(Err(error)) => {
                    self.drop_if_empty(&key);
                    return Err(error);
                }
                Step::Done(result) => return result,
                Step::Retired => continue,
            }
        }
    }

    /// After a failed first creation the key's entry holds no value: drop it, so that
    /// `len` counts values and failing keys don't pile up. A waiter that already took
    /// over keeps it (its claim makes retiring fail); one still waiting starts over.
    fn drop_if_empty(&self, key: &K) {
        let dropped = self.map.remove_if(key, |_, entry| {
            entry.value.is_none() && entry.control.try_retire()
        });
        if dropped.is_some() {
            self.entries.fetch_sub(1, Ordering::AcqRel);
        }
    }

    #[cfg(not(loom))]
    async fn get_async_slow<E>(
        &self,
        key: K,
        create: impl Future<Output = Result<V, E>>,
    ) -> Result<V, E> {
        match &self.shared {
            Some(level) => {
                let tier_age = Arc::new(AtomicU64::new(0));
                let (shared_key, age) = (key.clone(), tier_age.clone());
                let create = async move {
                    let sourced = level.create_async(&shared_key, create).await?;
                    age.store(to_nanos(sourced.age), Ordering::Relaxed);
                    Ok(sourced.value)
                };
                self.get_async_loop(key, create, Some(tier_age)).await
            }
            None => self.get_async_loop(key, create, None).await,
        }
    }

    #[cfg(not(loom))]
    async fn get_async_loop<E>(
        &self,
        key: K,
        create: impl Future<Output = Result<V, E>>,
        tier_age: Option<Arc<AtomicU64>>,
    ) -> Result<V, E> {
        let mut create = Some(create);
        loop {
            let Some(control) = self.control_for(&key) else {
                Counters::bump(&self.env.stats.misses);
                return take_creator(&mut create).await;
            };
            let store = EntryStore {
                inner: self,
                key: key.clone(),
                control: control.clone(),
                tier_age: tier_age.clone(),
            };
            match slot::get_async(&control, &store, &self.env, &mut create).await {
                Step::Done(Err(error)) => {
                    self.drop_if_empty(&key);
                    return Err(error);
                }
                Step::Done(result) => return result,
                Step::Retired => continue,
            }
        }
    }

    fn read_slow<E>(
        &self,
        key: K,
        create: impl FnOnce() -> Result<V, E>,
    ) -> Result<ReadGuard<V>, E> {
        assert!(
            self.sync_readers,
            "dogpile: Cache::read_with needs a cache built with CacheBuilder::sync_readers()"
        );
        let mut create = Some(create);
        loop {
            let Some(control) = self.control_for(&key) else {
                panic!("dogpile: no room for a guarded value: every entry is being created");
            };
            let store = EntryStore {
                inner: self,
                key: key.clone(),
                control: control.clone(),
                tier_age: None,
            };
            let attempt = || take_creator(&mut create)();
            match slot::get_guarded(&control, &store, &self.env, attempt) {
                Step::Done(result) => {
                    return result.map(|(value, read)| ReadGuard::new(Held::Owned(value), read))
                }
                Step::Retired => continue,
            }
        }
    }

    /// The control of `key`'s slot, inserting an empty entry for a new key. `None`
    /// when the cache is at capacity and nothing can be evicted.
    fn control_for(&self, key: &K) -> Option<Arc<Control>> {
        if let Some(entry) = self.map.get(key) {
            return Some(entry.control.clone());
        }
        if !self.reserve_place() {
            return None;
        }
        let mut inserted = false;
        let control = self
            .map
            .entry(key.clone())
            .or_insert_with(|| {
                inserted = true;
                Entry {
                    value: None,
                    control: Control::new(self.sync_readers),
                }
            })
            .control
            .clone();
        if inserted {
            self.after_admission();
        } else {
            self.entries.fetch_sub(1, Ordering::AcqRel);
        }
        Some(control)
    }

    /// Counts a new entry in, evicting first if the cache is full.
    fn reserve_place(&self) -> bool {
        let Some(capacity) = self.capacity else {
            self.entries.fetch_add(1, Ordering::AcqRel);
            return true;
        };
        loop {
            let entries = self.entries.load(Ordering::Acquire);
            if entries < capacity {
                if self
                    .entries
                    .compare_exchange(entries, entries + 1, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    return true;
                }
                continue;
            }
            if !self.evict_for_room(capacity) {
                return false;
            }
        }
    }

    /// Evicts a batch of the oldest entries; false if nothing could be evicted.
    fn evict_for_room(&self, capacity: usize) -> bool {
        let _sweep = self.sweeping.lock();
        if self.entries.load(Ordering::Acquire) < capacity {
            return true; // another thread made room while we waited for the sweep
        }
        let batch = (capacity / 16).max(1);
        let mut stamps: Vec<u64> = self.map.iter().map(|e| eviction_stamp(e.value())).collect();
        let threshold = if stamps.len() > batch {
            *stamps.select_nth_unstable(batch - 1).1
        } else {
            u64::MAX
        };
        let mut evicted = 0;
        // The oldest may all be entries whose creation is in flight (they cannot go):
        // then take any entry that can, so that "none" means every entry is busy.
        for threshold in [threshold, u64::MAX] {
            self.map.retain(|_, entry| {
                let victim = evicted < batch
                    && eviction_stamp(entry) <= threshold
                    && entry.control.try_retire();
                evicted += usize::from(victim);
                !victim
            });
            if evicted > 0 {
                break;
            }
        }
        self.note_evictions(evicted);
        evicted > 0
    }

    /// Reclaims long-expired entries every so often, amortized over admissions.
    fn after_admission(&self) {
        let admitted = self.admitted_since_sweep.fetch_add(1, Ordering::AcqRel) + 1;
        // Against the entries that were there before these admissions: `entries` counts
        // the admitted keys too, so comparing with it would never sweep again once the
        // map held more than 1024 entries.
        let before = self
            .entries
            .load(Ordering::Acquire)
            .saturating_sub(admitted);
        if admitted < before.max(1024) {
            return;
        }
        let Some(_sweep) = self.sweeping.try_lock() else {
            return;
        };
        self.admitted_since_sweep.store(0, Ordering::Release);
        let policy = self.env.policy;
        let horizon = policy
            .ttl
            .saturating_add(policy.max_stale.unwrap_or(policy.ttl.saturating_mul(15)));
        let now = self.env.now();
        let mut evicted = 0;
        self.map.retain(|_, entry| {
            // Abandoned empty entries (a creation that panicked) go too; a new key's
            // entry, empty until its caller claims it, stays.
            let expired = match &entry.value {
                Some(stamped) => now.saturating_sub(stamped.created) >= horizon,
                None => is_abandoned(entry),
            };
            let victim = expired && entry.control.try_retire();
            evicted += usize::from(victim);
            !victim
        });
        self.note_evictions(evicted);
    }

    fn note_evictions(&self, evicted: usize) {
        self.entries.fetch_sub(evicted, Ordering::AcqRel);
        self.env
            .stats
            .evictions
            .fetch_add(evicted as u64, Ordering::Relaxed);
    }
}

/// Oldest first; an entry without a value (a failed or removed one) before any.
fn eviction_stamp<V>(entry: &Entry<V>) -> u64 {
    match &entry.value {
        Some(stamped) if stamped.invalidated => 0,
        Some(stamped) => stamped.created,
        None if is_abandoned(entry) => 0,
        // A new key whose caller is about to claim it: the youngest of all.
        None => u64::MAX,
    }
}

/// An entry without a value that no caller is using: a failed or removed creation's
/// leftover. Callers reach a control only through the map under a shard lock, and the
/// sweeps run under the shard's write lock, so a count of one is stable there.
fn is_abandoned<V>(entry: &Entry<V>) -> bool {
    entry.value.is_none() && Arc::strong_count(&entry.control) == 1
}

/// One key's value inside the map, seen by its slot. Reads and writes only touch the
/// entry while it still belongs to this slot's control.
struct EntryStore<I, K> {
    inner: I,
    key: K,
    control: Arc<Control>,
    /// With a fleet tier: the age (nanoseconds) of the value the creator took from the
    /// tier, so that L1 stamps it with the tier's age (F4), not as created now.
    tier_age: Option<Arc<AtomicU64>>,
}

impl<I, K, V> Store for EntryStore<I, K>
where
    I: Deref<Target = Inner<K, V>>,
    // No `'static` here: async callers hold this store across awaits, and a lifetime
    // bound would make their futures fail `Send` for borrowed keys like `&'static str`.
    K: Hash + Eq,
    V: Clone,
{
    type Value = V;

    fn load(&self) -> Option<Stamped<V>> {
        let entry = self.inner.map.get(&self.key)?;
        if !Arc::ptr_eq(&entry.control, &self.control) {
            return None;
        }
        entry.value.clone()
    }

    fn publish(&self, value: V, created: u64) {
        let age = self
            .tier_age
            .as_ref()
            .map_or(0, |age| age.swap(0, Ordering::Relaxed));
        let mut stamped = Stamped::new(value, created.saturating_sub(age));
        // An age from the tier may reach back before this process's clock began: a
        // value already stale by it is marked so, whatever `created` could say.
        stamped.invalidated = age >= self.inner.env.policy.ttl;
        if let Some(mut entry) = self.inner.map.get_mut(&self.key) {
            if Arc::ptr_eq(&entry.control, &self.control) {
                entry.value = Some(stamped);
            }
        }
    }
}
