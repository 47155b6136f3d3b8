//! [`CacheBuilder`] and [`BuildError`].

use super::bounded::{bounded_constructor, BoundedConstructor};
use super::store::{Settings, TierBinding};
use crate::clock::{to_nanos, Clock, ClockHandle};
use crate::executor::{Executor, RefreshTask};
use crate::freshness::Backoff;
use crate::freshness::Lifetime;
use crate::mode::{Background, Inline, Mode, SyncReaders};
use crate::slot::{Env, Policy};
use crate::stats::Counters;
use crate::tier::SharedTier;
use std::any::Any;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

/// Builds a [`Cache`](crate::Cache); start from [`Cache::builder`](crate::Cache::builder). The mode (the third type
/// parameter, see [`mode`](crate::mode)) is chosen here:
/// [`background_refresh`](CacheBuilder::background_refresh) or
/// [`sync_readers`](CacheBuilder::sync_readers), at most one of them.
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
///     .stale_while_revalidate(Duration::from_secs(300))
///     .build();
/// assert_eq!(cache.get_with("a".into(), || 1), 1);
/// ```
#[must_use = "a builder does nothing until `.build()`"]
pub struct CacheBuilder<K, V, M = Inline> {
    config: Config,
    _types: Types<K, V, M>,
}

/// What a [`CacheBuilder`] was told, none of it typed by `K`, `V` or `M`: checked and
/// turned into [`Settings`] by code built once whatever the cache's types. What is typed
/// by them (the bounded constructor, `ttl_with`'s function, the tier) is kept in boxes
/// and fn pointers of untyped signatures, built by the one method that takes each (see
/// `Settings`).
struct Config {
    ttl: Option<Duration>,
    capacity: Option<usize>,
    /// With a capacity, the bounded core's constructor (see `Core::new`).
    bounded: Option<BoundedConstructor>,
    stale_while_revalidate: Option<Duration>,
    stale_if_error: Option<Duration>,
    refresh_ahead: Option<Duration>,
    retry_backoff: Option<(Duration, Duration)>,
    wait_at_most: Option<Duration>,
    /// `ttl_with`'s function, a `Lifetime<K, V>` behind `Any`.
    lifetime: Option<Box<dyn Any + Send + Sync>>,
    clock: ClockHandle,
    executor: Executor,
    /// The fleet tier.
    tier: Option<TierBinding>,
    name: Option<Arc<str>>,
    max_batch: Option<usize>,
}

/// The builder holds no `K`, `V` or `M`: it is `Send`, `Sync` and covariant whatever they are.
type Types<K, V, M> = PhantomData<fn() -> (K, V, M)>;

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
    /// `.retry_backoff(base, cap)` with a zero `base` or a `base` above `cap`.
    BadBackoff,
    /// `.wait_at_most(Duration::ZERO)`: every waiter would create at once.
    ZeroWaitAtMost,
    /// `.max_batch(0)`: a batch's creator could never be given a key.
    ZeroMaxBatch,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BuildError::MissingTtl => "a cache needs a ttl: call `.ttl(duration)` on the builder",
            BuildError::ZeroTtl => "ttl must be greater than zero (a value would be stale at birth)",
            BuildError::ZeroCapacity => "capacity must be at least 1",
            BuildError::BadBackoff => {
                "retry_backoff(base, cap) needs 0 < base <= cap (the pause doubles from base up to cap)"
            }
            BuildError::ZeroWaitAtMost => {
                "wait_at_most must be greater than zero; leave it unset to wait for a creation however long it takes"
            }
            BuildError::ZeroMaxBatch => "max_batch must be at least 1",
        })
    }
}

impl std::error::Error for BuildError {}

impl<K, V> CacheBuilder<K, V, Inline> {
    pub(crate) fn new() -> Self {
        CacheBuilder {
            config: Config {
                ttl: None,
                capacity: None,
                bounded: None,
                stale_while_revalidate: None,
                stale_if_error: None,
                refresh_ahead: None,
                retry_backoff: None,
                wait_at_most: None,
                lifetime: None,
                clock: ClockHandle::System,
                executor: Executor::Pool,
                tier: None,
                name: None,
                max_batch: None,
            },
            _types: PhantomData,
        }
    }

    /// Background refresh (R10), the [`Background`] mode: the caller that claims a
    /// stale value's refresh returns the stale value at once like everyone else, and
    /// the creator runs on the refresh executor (a small pool shared by the process,
    /// or [`refresh_executor`](CacheBuilder::refresh_executor)). After the first
    /// creation of a key nobody waits. Creators must be `Send + 'static`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = dogpile::Cache::<u8, u8>::builder()
    ///     .ttl(Duration::from_secs(1))
    ///     .background_refresh()
    ///     .build();
    /// assert_eq!(cache.get_with(1, || 1), 1);
    /// ```
    pub fn background_refresh(self) -> CacheBuilder<K, V, Background> {
        self.into_mode()
    }

    /// Reader-synchronised mode (R8), the [`SyncReaders`] mode: calls return a
    /// [`ReadGuard`](crate::ReadGuard), and publishing a new value for a key waits until
    /// every guard on that key is dropped.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = dogpile::Cache::<u8, String>::builder().ttl(Duration::from_secs(1)).sync_readers().build();
    /// assert_eq!(*cache.get_with(1, || "one".into()), "one");
    /// ```
    pub fn sync_readers(self) -> CacheBuilder<K, V, SyncReaders> {
        self.into_mode()
    }
}

impl<K, V> CacheBuilder<K, V, Background> {
    /// Hands every background refresh of this cache to `submit` instead of the
    /// process-wide pool: a rayon pool (`rayon::spawn(move || task.run())`), tokio's
    /// `spawn_blocking`, or your own queue. `submit` must not run the task inline in
    /// the call (that would make the claimant wait, breaking R10); a task it drops is
    /// given up (the key stays stale and the next caller retries).
    ///
    /// ```
    /// use dogpile::Cache;
    /// use std::time::Duration;
    ///
    /// let cache = Cache::<u8, u8>::builder()
    ///     .ttl(Duration::from_secs(60))
    ///     .background_refresh()
    ///     .refresh_executor(|task| {
    ///         std::thread::spawn(move || task.run());
    ///     })
    ///     .build();
    /// assert_eq!(cache.get_with(1, || 1), 1);
    /// ```
    pub fn refresh_executor(
        mut self,
        submit: impl Fn(RefreshTask) + Send + Sync + 'static,
    ) -> Self {
        self.config.executor = Executor::Custom(Arc::new(submit));
        self
    }
}

impl<K, V, M: Mode> CacheBuilder<K, V, M> {
    fn into_mode<N>(self) -> CacheBuilder<K, V, N> {
        CacheBuilder {
            config: self.config,
            _types: PhantomData,
        }
    }

    /// How long a value stays fresh. Required; must be greater than zero.
    ///
    /// ```
    /// let cache = dogpile::Cache::<u8, u8>::builder().ttl(std::time::Duration::from_millis(250)).build();
    /// assert_eq!(cache.get_with(1, || 1), 1);
    /// ```
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.config.ttl = Some(ttl);
        self
    }

    /// R11: how long past its lifetime a value may still be served, while one caller
    /// refreshes it. Past that, callers treat the key as cold (R1) and wait for a new
    /// value. Zero: no value is ever served past its lifetime. Unset: a stale value is
    /// served until a refresh succeeds.
    ///
    /// ```
    /// use dogpile::{Cache, ManualClock};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let cache = Cache::<u8, u8>::builder()
    ///     .ttl(Duration::from_secs(1))
    ///     .stale_while_revalidate(Duration::from_secs(1))
    ///     .clock(clock.clone())
    ///     .build();
    /// cache.get_with(1, || 10);
    /// clock.advance(Duration::from_millis(1500)); // stale, within the window
    /// assert_eq!(cache.get(&1), Some(10));
    /// clock.advance(Duration::from_secs(1)); // past it: cold
    /// assert_eq!(cache.get(&1), None);
    /// assert_eq!(cache.try_get_with(1, || Err::<u8, _>("down")), Err("down"));
    /// ```
    pub fn stale_while_revalidate(mut self, window: Duration) -> Self {
        self.config.stale_while_revalidate = Some(window);
        self
    }

    /// R5: how long past its lifetime a value is served instead of a failed refresh's
    /// error (and while its key backs off, see
    /// [`retry_backoff`](CacheBuilder::retry_backoff)). A failed *first* creation still
    /// returns the error: there is nothing else.
    ///
    /// ```
    /// use dogpile::{Cache, ManualClock};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let cache = Cache::<u8, u8>::builder()
    ///     .ttl(Duration::from_secs(1))
    ///     .stale_if_error(Duration::from_secs(60))
    ///     .clock(clock.clone())
    ///     .build();
    /// cache.get_with(1, || 10);
    /// clock.advance(Duration::from_secs(2));
    /// assert_eq!(cache.try_get_with(1, || Err("backend down")), Ok(10));
    /// clock.advance(Duration::from_secs(60));
    /// assert_eq!(cache.try_get_with(1, || Err("backend down")), Err("backend down"));
    /// ```
    pub fn stale_if_error(mut self, window: Duration) -> Self {
        self.config.stale_if_error = Some(window);
        self
    }

    /// After `n` failed creations of a key in a row, the key is not tried again for
    /// `min(base * 2^(n-1), cap)`, raised at random by at most a quarter. Meanwhile a
    /// stale key serves its stale value (within
    /// [`stale_while_revalidate`](CacheBuilder::stale_while_revalidate), or
    /// [`stale_if_error`](CacheBuilder::stale_if_error)) and a cold key returns a clone
    /// of its last error. A success ends it. Needs `0 < base <= cap`.
    ///
    /// ```
    /// use dogpile::{Cache, ManualClock};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let cache = Cache::<u8, u8>::builder()
    ///     .ttl(Duration::from_secs(60))
    ///     .retry_backoff(Duration::from_secs(1), Duration::from_secs(30))
    ///     .clock(clock.clone())
    ///     .build();
    /// assert_eq!(cache.try_get_with(1, || Err("down")), Err("down"));
    /// // Within the back-off the creator is not called: the last error answers.
    /// assert_eq!(cache.try_get_with(1, || Ok(10)), Err("down"));
    /// clock.advance(Duration::from_secs(2));
    /// assert_eq!(cache.try_get_with(1, || Ok::<_, &str>(10)), Ok(10));
    /// ```
    pub fn retry_backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.config.retry_backoff = Some((base, cap));
        self
    }

    /// Once a value has less than `ahead` left of its lifetime, the next caller claims
    /// an early refresh, one per lifetime, while everyone else keeps getting the
    /// still-fresh value. With [`background_refresh`](CacheBuilder::background_refresh)
    /// it runs on the refresh executor and nobody waits; inline, only its claimant
    /// waits. A failed early refresh leaves the value as it is (its claimant gets it).
    ///
    /// ```
    /// use dogpile::{Cache, ManualClock};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let cache = Cache::<u8, u8>::builder()
    ///     .ttl(Duration::from_secs(10))
    ///     .refresh_ahead(Duration::from_secs(2))
    ///     .clock(clock.clone())
    ///     .build();
    /// cache.get_with(1, || 1);
    /// clock.advance(Duration::from_secs(9)); // 1 s left: the next caller refreshes
    /// assert_eq!(cache.get_with(1, || 2), 2);
    /// assert_eq!(cache.stats().early_refreshes, 1);
    /// ```
    pub fn refresh_ahead(mut self, ahead: Duration) -> Self {
        self.config.refresh_ahead = Some(ahead);
        self
    }

    /// A caller waiting for another caller's creation of a key gives up after `limit`
    /// and runs its own creator (its value is published too; the last to finish stays).
    /// Unset: a waiter waits for the creation however long it takes. Blocking and async
    /// callers alike: an async caller's limit runs on one timer thread for the whole
    /// process, so it needs no particular async runtime. With a fleet tier, a cold key
    /// created by another process is waited for while that process renews its lease,
    /// up to `limit` (30 s unless set, F2). A batch (`get_many_with`) waits `limit` at
    /// most for all its keys together, then creates the keys it still waits for in one
    /// creator call.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = dogpile::Cache::<u8, u8>::builder()
    ///     .ttl(Duration::from_secs(60))
    ///     .wait_at_most(Duration::from_secs(2))
    ///     .build();
    /// assert_eq!(cache.get_with(1, || 1), 1);
    /// ```
    pub fn wait_at_most(mut self, limit: Duration) -> Self {
        self.config.wait_at_most = Some(limit);
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
        self.config.clock = ClockHandle::custom(clock);
        self
    }

    /// What this cache is called in its `tracing` events; the `#[dogpile]` attribute
    /// names its cache after the fn. Without a name the events say `Cache<K, V>` with
    /// the key and value types.
    ///
    /// # `tracing` events (feature `tracing`)
    ///
    /// Target `dogpile`, one event per creation, failure and eviction batch, none on a
    /// hit; without the feature the calls compile away. Keys are not recorded (a key
    /// type need not be `Debug`).
    ///
    /// | event | level | fields |
    /// |---|---|---|
    /// | a value was created or refreshed | `DEBUG` | `cache`, `outcome` (`"created"` for a cold key, `"refreshed"`), `duration_ms`, `stale_served` (the stale value was served meanwhile: R3, R10) |
    /// | a creation failed | `WARN` | `cache`, `outcome` (`"error"`, `"panic"`, `"cancelled"` for a dropped future), `error` (the error's `Display` where the `#[dogpile]` attribute noted it, else its type name), `duration_ms`, `stale_served` (the stale value is kept: R5), `stale_if_error` (its caller got the stale value instead) |
    /// | entries were evicted | `DEBUG` | `cache`, `evicted` (how many), `reason` (`"capacity"` or `"expired"`) |
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = dogpile::Cache::<u8, u8>::builder()
    ///     .name("user_profiles")
    ///     .ttl(Duration::from_secs(1))
    ///     .build();
    /// assert!(format!("{cache:?}").contains("user_profiles"));
    /// ```
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.config.name = Some(name.into());
        self
    }
}

impl<K, V, M> CacheBuilder<K, V, M>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    M: Mode,
{
    /// The most entries the cache holds; see [Bounds and eviction](crate::Cache#bounds-and-eviction).
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
        self.config.capacity = Some(capacity);
        self.config.bounded = Some(bounded_constructor::<K, V>());
        self
    }

    /// The most keys one call of a batch's creator is given
    /// ([`get_many_with`](crate::Cache::get_many_with) and its kin): a batch that needs
    /// more values calls its creator several times, `n` keys at a time, in first-seen
    /// order (a database's limit on `IN (..)` lists, a service's page size). Unlimited
    /// by default.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = dogpile::Cache::<u32, u32>::builder().ttl(Duration::from_secs(60)).max_batch(2).build();
    /// let mut calls = Vec::new();
    /// let values = cache.get_many_with(&[1, 2, 3], |ids| {
    ///     calls.push(ids.to_vec());
    ///     ids.iter().map(|id| id * 10).collect()
    /// });
    /// assert_eq!(values, [10, 20, 30]);
    /// assert_eq!(calls, [vec![1, 2], vec![3]]);
    /// ```
    pub fn max_batch(mut self, n: usize) -> Self {
        self.config.max_batch = Some(n);
        self
    }

    /// Shares values, their age and the refresh claim with every process that uses the
    /// same tier (F1–F8), for example a `dogpile_redis::RedisTier`. This cache stays the
    /// first level: a fresh value here never reaches the tier (F3), and when the tier
    /// fails the local rules apply (F7). `invalidate` and `remove` reach every process
    /// (F6). A `Background` cache hands a stale key's whole refresh to its refresh
    /// executor (R10 with F1): the claim in the tier, the creation under the lease
    /// (renewed while it runs, released at once if it fails, F8) and the publish; the
    /// claimant returns the stale value without waiting, even for the tier, and only a
    /// cold key's first creation is waited for.
    ///
    /// ```
    /// # use dogpile::{Claim, EventSink, Lease, Publish, SharedTier, SharedValue, TierError};
    /// # use std::time::Duration;
    /// # struct Down;
    /// # impl SharedTier<u8, u8> for Down {
    /// #     fn lookup(&self, _: &u8) -> Result<Option<SharedValue<u8>>, TierError> { Err(TierError::new("down")) }
    /// #     fn claim(&self, _: &u8, _: Duration) -> Result<Claim<u8>, TierError> { Err(TierError::new("down")) }
    /// #     fn publish(&self, _: &u8, _: &Lease, _: &u8, _: Duration) -> Result<Publish, TierError> { Err(TierError::new("down")) }
    /// #     fn release(&self, _: &u8, _: &Lease, _: Duration) -> Result<(), TierError> { Err(TierError::new("down")) }
    /// #     fn invalidate(&self, _: &u8) -> Result<(), TierError> { Err(TierError::new("down")) }
    /// #     fn remove(&self, _: &u8) -> Result<(), TierError> { Err(TierError::new("down")) }
    /// #     fn subscribe(&self, _: EventSink<u8>) {}
    /// #     fn scoped(self, _: &str) -> Self { self }
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
        let tier: Arc<dyn SharedTier<K, V>> = Arc::new(tier);
        self.config.tier = Some(TierBinding::new(tier));
        self
    }

    /// Each value's own lifetime (R6): how long the value `create` returned for `key`
    /// stays fresh, instead of [`ttl`](CacheBuilder::ttl) (still required: the default,
    /// and what sweeps and a fleet tier go by). An OAuth token's `expires_in`, an HTTP
    /// response's `max-age`, a short lifetime for "not found".
    ///
    /// ```
    /// use dogpile::{Cache, ManualClock};
    /// use std::time::Duration;
    ///
    /// #[derive(Clone)]
    /// struct Token { secret: u32, valid_for: Duration }
    ///
    /// let clock = ManualClock::new();
    /// let tokens = Cache::<&str, Token>::builder()
    ///     .ttl(Duration::from_secs(3600))
    ///     .ttl_with(|_key, token| token.valid_for)
    ///     .stale_while_revalidate(Duration::ZERO)
    ///     .clock(clock.clone())
    ///     .build();
    /// let fetch = |secret| move || Token { secret, valid_for: Duration::from_secs(30) };
    /// assert_eq!(tokens.get_with("api", fetch(1)).secret, 1);
    /// clock.advance(Duration::from_secs(30)); // the token's own lifetime is over
    /// assert_eq!(tokens.get_with("api", fetch(2)).secret, 2);
    /// ```
    pub fn ttl_with(
        mut self,
        lifetime: impl Fn(&K, &V) -> Duration + Send + Sync + 'static,
    ) -> Self {
        let lifetime: Lifetime<K, V> = Arc::new(move |key, value| to_nanos(lifetime(key, value)));
        self.config.lifetime = Some(Box::new(lifetime));
        self
    }

    /// What the cache is built from, or why these settings make no sense (see
    /// `try_build`).
    pub(super) fn settings(self) -> Result<Settings, BuildError> {
        let sync_readers = crate::mode::sync_readers::<M>();
        let types = (std::any::type_name::<K>(), std::any::type_name::<V>());
        self.config.settings(sync_readers, types)
    }
}

/// `CacheBuilder::build`'s panic, built once whatever the cache's types.
#[cold]
pub(super) fn refused(error: BuildError) -> ! {
    panic!("dogpile: {error}")
}

impl Config {
    /// `types`: the key's and the value's type names, which name a cache given no name.
    fn settings(self, sync_readers: bool, types: (&str, &str)) -> Result<Settings, BuildError> {
        let ttl = self.ttl.ok_or(BuildError::MissingTtl)?;
        if ttl.is_zero() {
            return Err(BuildError::ZeroTtl);
        }
        if self.capacity == Some(0) {
            return Err(BuildError::ZeroCapacity);
        }
        if self
            .retry_backoff
            .is_some_and(|(base, cap)| base.is_zero() || base > cap)
        {
            return Err(BuildError::BadBackoff);
        }
        if self.wait_at_most.is_some_and(|d| d.is_zero()) {
            return Err(BuildError::ZeroWaitAtMost);
        }
        if self.max_batch == Some(0) {
            return Err(BuildError::ZeroMaxBatch);
        }
        let env = Env {
            policy: Policy {
                ttl: to_nanos(ttl),
                stale_while_revalidate: self.stale_while_revalidate.map(to_nanos),
                stale_if_error: self.stale_if_error.map(to_nanos),
                refresh_ahead: self.refresh_ahead.map_or(0, to_nanos),
                backoff: self.retry_backoff.map(|(base, cap)| Backoff {
                    base: to_nanos(base),
                    cap: to_nanos(cap),
                }),
                wait_at_most: self.wait_at_most.map(to_nanos),
            },
            clock: self.clock,
            stats: Arc::new(Counters::default()),
            name: self
                .name
                .unwrap_or_else(|| format!("Cache<{}, {}>", types.0, types.1).into()),
        };
        Ok(Settings {
            env,
            capacity: self.capacity,
            bounded: self.bounded,
            sync_readers,
            executor: self.executor,
            tier: self.tier,
            max_batch: self.max_batch.unwrap_or(usize::MAX),
            lifetime: self.lifetime,
        })
    }
}

impl<K, V, M> fmt::Debug for CacheBuilder<K, V, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("ttl", &self.config.ttl)
            .field("name", &self.config.name)
            .field("capacity", &self.config.capacity)
            .field("mode", &std::any::type_name::<M>())
            .finish_non_exhaustive()
    }
}
