//! The seam to a second level shared by many processes (the fleet tier): [`SharedTier`]
//! and the types its steps exchange. `level.rs` runs a tier inside a cache, `board.rs`
//! keeps its held keys and wakes its waiters, `creation.rs` wraps a call's creator in
//! the tier's steps, `many.rs` takes a batch's steps for all its keys at once.

mod board;
mod creation;
mod level;
mod many;

pub(crate) use creation::{Moved, RunElsewhere, TierCreator};
pub(crate) use level::{Begin, ColdWait, LocalAction, TierLevel, TierSetting};

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A value read from the shared tier, with its age as the tier's clock knows it (F4)
/// and the lifetime it was published with (R6: `ttl`, or what `ttl_with` said for it).
///
/// ```
/// use dogpile::SharedValue;
/// use std::time::Duration;
///
/// let shared = SharedValue {
///     value: "page",
///     age: Duration::from_millis(250),
///     lifetime: Duration::from_secs(1),
/// };
/// assert!(shared.is_fresh(Duration::ZERO));
/// assert!(!shared.is_fresh(Duration::from_millis(800)), "due for an early refresh");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedValue<V> {
    /// The value.
    pub value: V,
    /// Time since its creation finished, measured by the tier (F4).
    pub age: Duration,
    /// How long the value stays fresh from its creation: what it was published with.
    pub lifetime: Duration,
}

impl<V> SharedValue<V> {
    /// Whether the value has more than `refresh_ahead` of its lifetime left: what
    /// [`SharedTier::claim`] answers [`Claim::Fresh`] for.
    ///
    /// ```
    /// use std::time::Duration;
    /// let s = |age| dogpile::SharedValue { value: (), age, lifetime: Duration::from_secs(10) };
    /// assert!(s(Duration::from_secs(9)).is_fresh(Duration::ZERO));
    /// assert!(!s(Duration::from_secs(10)).is_fresh(Duration::ZERO));
    /// assert!(!s(Duration::from_secs(9)).is_fresh(Duration::from_secs(1)));
    /// ```
    pub fn is_fresh(&self, refresh_ahead: Duration) -> bool {
        self.age.saturating_add(refresh_ahead) < self.lifetime
    }
}

/// The right to create a key's next value, granted by [`SharedTier::claim`].
///
/// A lease is fenced (F5): its token names the owner and its generation is the key's
/// generation when the claim was granted. The tier renews it while the creator runs
/// and rejects a publish under it once it was lost or the key was invalidated or
/// removed in between.
///
/// ```
/// use dogpile::Lease;
///
/// let lease = Lease::new("owner-1", 7);
/// assert_eq!(lease.token(), "owner-1");
/// assert_eq!(lease.generation(), 7);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Lease {
    token: Arc<str>,
    generation: u64,
}

impl Lease {
    /// A lease with the owner `token` at the key's `generation` (for tier implementors).
    ///
    /// ```
    /// let lease = dogpile::Lease::new("t", 0);
    /// assert_eq!(lease.generation(), 0);
    /// ```
    pub fn new(token: impl Into<Arc<str>>, generation: u64) -> Self {
        Lease {
            token: token.into(),
            generation,
        }
    }

    /// The owner token.
    ///
    /// ```
    /// assert_eq!(dogpile::Lease::new("t", 0).token(), "t");
    /// ```
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The key's generation when the lease was granted.
    ///
    /// ```
    /// assert_eq!(dogpile::Lease::new("t", 3).generation(), 3);
    /// ```
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

/// What [`SharedTier::claim`] found.
///
/// ```
/// use dogpile::{Claim, SharedValue};
/// use std::time::Duration;
///
/// let claim: Claim<u32> = Claim::Busy { stale: None, lease_left: Duration::from_secs(1) };
/// assert!(matches!(claim, Claim::Busy { stale: None, .. }));
/// # let _ = SharedValue { value: 1, age: Duration::ZERO, lifetime: Duration::ZERO };
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim<V> {
    /// The tier already holds a fresh value (more than the claim's `refresh_ahead` of
    /// its lifetime left): create nothing (R4, fleet-wide).
    Fresh(SharedValue<V>),
    /// Another owner holds the lease (or the key backs off after a failure, see
    /// [`SharedTier::release`]): serve `stale` if there is one (F1), else wait for its
    /// publish for as long as the lease is renewed (F2).
    Busy {
        /// The tier's current value, if any: stale, or due for an early refresh.
        stale: Option<SharedValue<V>>,
        /// Time left on the other owner's lease (or on the back-off).
        lease_left: Duration,
    },
    /// This caller owns the lease: create, then [`publish`](SharedTier::publish) or
    /// [`release`](SharedTier::release).
    Owned {
        /// The lease to publish or release under.
        lease: Lease,
        /// The tier's current value, if any: stale, or due for an early refresh.
        stale: Option<SharedValue<V>>,
        /// Failed attempts at this key in a row since its last publish, fleet-wide (the
        /// releases with a `hold` since); 0 for a tier that does not count them. The
        /// cache sizes its next back-off by it (`retry_backoff`).
        failures: u32,
    },
}

/// What [`SharedTier::publish`] did.
///
/// ```
/// assert_ne!(dogpile::Publish::Stored, dogpile::Publish::Rejected);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Publish {
    /// The value is now the shared value, aged zero.
    Stored,
    /// The lease was lost or the key was invalidated or removed since the claim (F5):
    /// nothing was stored. The caller still returns the value it computed.
    Rejected,
}

/// A change to a key made by some process, pushed to every process (F6).
///
/// ```
/// use dogpile::TierEvent;
///
/// let event = TierEvent::Removed("user:7".to_string());
/// assert!(matches!(event, TierEvent::Removed(ref key) if key == "user:7"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TierEvent<K> {
    /// The key was invalidated (soft, R7): the local copy turns stale.
    Invalidated(K),
    /// The key was removed (hard, R7): the local copy must go.
    Removed(K),
    /// A new value was published for the key: a local copy may be refreshed from the
    /// tier, and callers waiting for a cold key may look again.
    Published(K),
    /// The key's lease ended without a value (its creator failed, F8): callers waiting
    /// for a cold key may claim it now instead of waiting for the lease to run out.
    Released(K),
    /// Every value of this tier's scope was invalidated (soft, R7 for every key,
    /// [`SharedTier::invalidate_all`] with `hard` false): every local copy turns stale.
    InvalidatedAll,
    /// Every value of this tier's scope was cleared (hard, R1 for every key,
    /// [`SharedTier::invalidate_all`] with `hard` true): every local copy must go.
    Cleared,
    /// The tier's notification link was lost, so events may have been missed: no local
    /// copy that came from the tier can be trusted any longer without asking it again.
    Reset,
}

/// A sink for [`TierEvent`]s, registered with [`SharedTier::subscribe`].
pub type EventSink<K> = Arc<dyn Fn(TierEvent<K>) + Send + Sync>;

/// An error from a shared tier: the tier is down, slow (past its deadline) or sent
/// something unusable. The cache logs it and follows the local rules (F7).
///
/// ```
/// let err = dogpile::TierError::new("connection refused");
/// assert_eq!(err.to_string(), "connection refused");
/// ```
#[derive(Debug)]
pub struct TierError(Box<dyn StdError + Send + Sync>);

impl TierError {
    /// Wraps any error (or message) as a tier error.
    ///
    /// ```
    /// let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "deadline");
    /// assert_eq!(dogpile::TierError::new(io).to_string(), "deadline");
    /// ```
    pub fn new(error: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        TierError(error.into())
    }
}

impl fmt::Display for TierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl StdError for TierError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source()
    }
}

/// A second level shared by many processes (the fleet tier): the steps of a shared
/// slot. Every method returns within the tier's own deadline (F7).
///
/// `dogpile` has no dependency on any store; a crate such as `dogpile-redis` implements
/// this trait and [`CacheBuilder::shared`](crate::CacheBuilder::shared) plugs it in. The
/// rules of a shared slot extend R1–R11 to the fleet:
///
/// - **F1** one refresh per expiry, fleet-wide: one caller in the fleet holds the
///   [`Lease`]; every other caller serves its stale copy.
/// - **F2** cold, fleet-wide: callers elsewhere wait for the owner's publish (woken by
///   [`TierEvent::Published`] and [`TierEvent::Released`]) instead of creating, for as
///   long as its lease is renewed, up to `wait_at_most` (30 s unless set).
/// - **F3** L1 first: a fresh local value never reaches the tier; in one process at most
///   one caller per key talks to it at a time.
/// - **F4** one clock: ages come from the tier ([`SharedValue::age`]), never from the
///   clock of the process that created the value.
/// - **F5** leases, not locks: a lease runs out when its owner dies or freezes, and a
///   publish under a lost lease, or after an invalidate or remove, is rejected
///   ([`Publish::Rejected`]); its caller still gets the value it computed.
/// - **F6** invalidate and remove reach every process through [`TierEvent`]s.
/// - **F7** the tier is optional at run time: its failures never reach a caller, who
///   gets the local rules instead.
/// - **F8** a failed creation (`Err`, panic, dropped future) releases its lease at once
///   ([`SharedTier::release`]); with `retry_backoff`, an `Err` holds the key for the
///   back-off's pause instead, so the fleet's single claimant backs off for everyone.
///
/// The cache calls it only on an L1 miss or stale value (F3), and for one key from at
/// most one caller per process at a time. The lease is renewed by the tier itself
/// while the creator runs, and a creator that fails has its lease released at once
/// (F8).
///
/// # Scopes: one tier, many memoized fns
///
/// The `#[dogpile(shared = EXPR)]` attribute hands each memoized fn the tier
/// `EXPR.scoped("{module path}::{fn name}")`: two fns with the same key and value types
/// on one tier never see each other's values. [`scoped`](SharedTier::scoped) is a
/// required method, not one with a default that returns the tier unchanged: such a
/// default would let `fn price(id: u64) -> u64` serve `fn stock(id: u64) -> u64`'s
/// values without any error. A tier keeps its scopes apart the way its store allows
/// (`dogpile-redis` appends the scope to its namespace); a tier that is only ever used
/// by one cache may ignore the scope and return `self`, and say so in its docs.
///
/// Methods with a cache shared by every instance (`key = ..`) are scoped by module and
/// method name too: two types in one module with a method of the same name, key and
/// value types each need their own tier setting (a namespace, for `dogpile-redis`).
///
/// A minimal in-process tier, to show the shape (a real one, such as `dogpile-redis`,
/// keeps the value, the lease and a generation in a store shared by processes):
///
/// ```
/// use dogpile::{Claim, EventSink, Lease, Publish, SharedTier, SharedValue, TierError};
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use std::time::{Duration, Instant};
///
/// // Each key's value, its creation instant and its lifetime.
/// #[derive(Default)]
/// struct InProcess(Mutex<HashMap<String, (String, Instant, Duration)>>);
///
/// impl SharedTier<String, String> for InProcess {
///     fn lookup(&self, key: &String) -> Result<Option<SharedValue<String>>, TierError> {
///         let map = self.0.lock().unwrap();
///         Ok(map.get(key).map(|(v, at, lifetime)| SharedValue {
///             value: v.clone(),
///             age: at.elapsed(),
///             lifetime: *lifetime,
///         }))
///     }
///     fn claim(&self, key: &String, refresh_ahead: Duration) -> Result<Claim<String>, TierError> {
///         match self.lookup(key)? {
///             Some(v) if v.is_fresh(refresh_ahead) => Ok(Claim::Fresh(v)),
///             stale => Ok(Claim::Owned { lease: Lease::new("me", 0), stale, failures: 0 }),
///         }
///     }
///     fn publish(
///         &self,
///         key: &String,
///         _: &Lease,
///         value: &String,
///         lifetime: Duration,
///     ) -> Result<Publish, TierError> {
///         let stored = (value.clone(), Instant::now(), lifetime);
///         self.0.lock().unwrap().insert(key.clone(), stored);
///         Ok(Publish::Stored)
///     }
///     fn release(&self, _: &String, _: &Lease, _hold: Duration) -> Result<(), TierError> {
///         Ok(())
///     }
///     fn invalidate(&self, key: &String) -> Result<(), TierError> {
///         // Aged to its own lifetime: stale (R7).
///         if let Some((_, at, lifetime)) = self.0.lock().unwrap().get_mut(key) {
///             *at = Instant::now().checked_sub(*lifetime).unwrap_or(*at);
///         }
///         Ok(())
///     }
///     fn remove(&self, key: &String) -> Result<(), TierError> {
///         self.0.lock().unwrap().remove(key);
///         Ok(())
///     }
///     fn subscribe(&self, _events: EventSink<String>) {}
///     fn scoped(self, _scope: &str) -> Self { self } // one cache per tier
/// }
///
/// let tier = InProcess::default();
/// let key = "k".to_string();
/// let Claim::Owned { lease, stale: None, .. } = tier.claim(&key, Duration::ZERO).unwrap()
/// else { panic!("a cold key is claimed") };
/// let stored = tier.publish(&key, &lease, &"v".to_string(), Duration::from_secs(60));
/// assert_eq!(stored.unwrap(), Publish::Stored);
/// assert!(matches!(tier.claim(&key, Duration::ZERO).unwrap(), Claim::Fresh(_)));
/// // Within 10 s of its expiry, the value is due for an early refresh.
/// let early = tier.claim(&key, Duration::from_secs(60)).unwrap();
/// assert!(matches!(early, Claim::Owned { stale: Some(_), .. }));
/// tier.invalidate(&key).unwrap();
/// assert!(matches!(tier.claim(&key, Duration::ZERO).unwrap(), Claim::Owned { .. }));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a shared tier for keys `{K}` and values `{V}`",
    label = "expected a `dogpile::SharedTier<{K}, {V}>` here",
    note = "a `dogpile_redis::RedisTier` shares keys that serde can serialize and values it can \
            serialize and deserialize: derive `serde::Serialize` on the key's types and \
            `serde::Serialize, serde::Deserialize` on the value's"
)]
pub trait SharedTier<K, V>: Send + Sync + 'static {
    /// The shared value of `key` and its age, on an L1 miss (F3). `Ok(None)` when the
    /// tier has none, or holds one it cannot decode.
    fn lookup(&self, key: &K) -> Result<Option<SharedValue<V>>, TierError>;

    /// Claims the right to create `key`'s next value. Atomically re-checks freshness
    /// (R4, fleet-wide): a value with more than `refresh_ahead` of its own lifetime
    /// left is [`Claim::Fresh`] ([`SharedValue::is_fresh`]); otherwise this either
    /// grants a [`Lease`] (renewed by the tier until publish or release) or reports the
    /// current owner's. With a non-zero `refresh_ahead` a value still within its
    /// lifetime is claimed early, once per lifetime fleet-wide: the lease makes it one.
    fn claim(&self, key: &K, refresh_ahead: Duration) -> Result<Claim<V>, TierError>;

    /// Stores `value` as `key`'s shared value with its `lifetime` (R6), created now by
    /// the tier's clock (F4), if `lease` still holds and the key's generation has not
    /// moved (F5), and ends the lease either way. A publish ends the key's failures in
    /// a row.
    fn publish(
        &self,
        key: &K,
        lease: &Lease,
        value: &V,
        lifetime: Duration,
    ) -> Result<Publish, TierError>;

    /// Gives `lease` up, storing nothing: its creator failed (F8). With a zero `hold`
    /// the key is free at once; otherwise it stays claimed for `hold` (the cache's
    /// `retry_backoff` pause after an `Err`, sized by [`Claim::Owned`]'s `failures`),
    /// so that no process in the fleet tries it again before then and every claim
    /// meanwhile is [`Claim::Busy`], and the failures in a row grow by one. Waiters
    /// are told at once either way.
    fn release(&self, key: &K, lease: &Lease, hold: Duration) -> Result<(), TierError>;

    /// [`claim`](SharedTier::claim) for each of `keys`, answered in their order: a
    /// batch's claims. Each key keeps its own lease (F5) and its own answer, so a key
    /// that fails (`Err`, F7) leaves the others shared. A tier that can should take
    /// them in a few round trips (`dogpile-redis`: one script per Redis node), never one
    /// per key; the default claims one key after the other.
    fn claim_many(&self, keys: &[K], refresh_ahead: Duration) -> Vec<Result<Claim<V>, TierError>> {
        keys.iter()
            .map(|key| self.claim(key, refresh_ahead))
            .collect()
    }

    /// [`publish`](SharedTier::publish) for each `(key, lease, value, lifetime)`,
    /// answered in their order: a batch's publishes, each fenced by its own lease (F5)
    /// and told to every process on its own (F6). The default publishes one after the
    /// other.
    fn publish_many(
        &self,
        entries: &[(&K, &Lease, &V, Duration)],
    ) -> Vec<Result<Publish, TierError>> {
        entries
            .iter()
            .map(|(key, lease, value, lifetime)| self.publish(key, lease, value, *lifetime))
            .collect()
    }

    /// [`release`](SharedTier::release) for each `(key, lease, hold)`: every lease of a
    /// batch whose creator failed, at once (F8). The default releases one after the
    /// other.
    fn release_many(&self, entries: &[(&K, &Lease, Duration)]) -> Vec<Result<(), TierError>> {
        entries
            .iter()
            .map(|(key, lease, hold)| self.release(key, lease, *hold))
            .collect()
    }

    /// Soft invalidation (R7) for every process: the shared value turns stale (aged to
    /// its own lifetime), a lease in flight is fenced, and every process is told (F6).
    fn invalidate(&self, key: &K) -> Result<(), TierError>;

    /// Hard removal (R7) for every process: the shared value goes, a lease in flight is
    /// fenced, and every process is told (F6).
    fn remove(&self, key: &K) -> Result<(), TierError>;

    /// Every value of this tier's scope, for every process, in O(1) of the number of
    /// keys: soft (`hard` false, `Cache::invalidate_all`: each value turns stale, R7,
    /// R3) or hard (`hard` true, `Cache::clear`: each value is gone, R1). A creation in
    /// flight publishes a value that already counts as invalidated or cleared (F5), and
    /// every process is told ([`TierEvent::InvalidatedAll`], [`TierEvent::Cleared`],
    /// F6). Returns once the tier has applied it or its deadline passed (F7).
    ///
    /// The default does nothing: a tier without it leaves `invalidate_all` and `clear`
    /// acting on each process's own copies only.
    fn invalidate_all(&self, hard: bool) -> Result<(), TierError> {
        let _ = hard;
        Ok(())
    }

    /// Registers where this tier delivers the [`TierEvent`]s of keys this process has
    /// seen through it (called once, when the cache is built).
    fn subscribe(&self, events: EventSink<K>);

    /// Notes that this process holds a copy of `key` that did not go through the tier
    /// (`Cache::insert`), so that the key's events reach that copy too (F6). A tier
    /// that delivers every key's events whether or not it saw the key may ignore it.
    fn track(&self, key: &K) {
        let _ = key;
    }

    /// This tier, with its keys kept apart from those of every other `scope` (see
    /// [Scopes](SharedTier#scopes-one-tier-many-memoized-fns)): the same key under two
    /// scopes names two values, and an event of one scope reaches only its caches.
    /// The `#[dogpile]` attribute calls it once per fn, with the fn's path.
    fn scoped(self, scope: &str) -> Self
    where
        Self: Sized;
}
