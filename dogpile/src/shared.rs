//! The seam to a shared second level (the fleet tier): [`SharedTier`] and what its
//! steps exchange, and [`SharedLevel`], which runs it inside a cache.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A value read from the shared tier, with its age as the tier's clock knows it (F4).
///
/// ```
/// use dogpile::SharedValue;
/// use std::time::Duration;
///
/// let shared = SharedValue { value: "page", age: Duration::from_millis(250) };
/// assert!(shared.age < Duration::from_secs(1));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedValue<V> {
    /// The value.
    pub value: V,
    /// Time since its creation finished, measured by the tier (F4).
    pub age: Duration,
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
/// # let _ = SharedValue { value: 1, age: Duration::ZERO };
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim<V> {
    /// The tier already holds a fresh value: create nothing (R4, fleet-wide).
    Fresh(SharedValue<V>),
    /// Another owner holds the lease: serve `stale` if there is one (F1), else wait
    /// for its publish, at most until the lease runs out (F2).
    Busy {
        /// The tier's stale value, if any.
        stale: Option<SharedValue<V>>,
        /// Time left on the other owner's lease.
        lease_left: Duration,
    },
    /// This caller owns the lease: create, then [`publish`](SharedTier::publish) or
    /// [`release`](SharedTier::release).
    Owned {
        /// The lease to publish or release under.
        lease: Lease,
        /// The tier's stale value, if any.
        stale: Option<SharedValue<V>>,
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
/// - **F2** cold, fleet-wide: callers elsewhere wait for the owner's publish (bounded,
///   woken by [`TierEvent::Published`]) instead of creating.
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
///   ([`SharedTier::release`]).
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
/// #[derive(Default)]
/// struct InProcess(Mutex<HashMap<String, (String, Instant)>>);
///
/// impl SharedTier<String, String> for InProcess {
///     fn lookup(&self, key: &String) -> Result<Option<SharedValue<String>>, TierError> {
///         let map = self.0.lock().unwrap();
///         Ok(map.get(key).map(|(v, at)| SharedValue { value: v.clone(), age: at.elapsed() }))
///     }
///     fn claim(&self, key: &String, ttl: Duration) -> Result<Claim<String>, TierError> {
///         match self.lookup(key)? {
///             Some(v) if v.age < ttl => Ok(Claim::Fresh(v)),
///             stale => Ok(Claim::Owned { lease: Lease::new("me", 0), stale }),
///         }
///     }
///     fn publish(&self, key: &String, _: &Lease, value: &String) -> Result<Publish, TierError> {
///         self.0.lock().unwrap().insert(key.clone(), (value.clone(), Instant::now()));
///         Ok(Publish::Stored)
///     }
///     fn release(&self, _: &String, _: &Lease) -> Result<(), TierError> { Ok(()) }
///     fn invalidate(&self, key: &String, ttl: Duration) -> Result<(), TierError> {
///         if let Some((_, at)) = self.0.lock().unwrap().get_mut(key) {
///             *at = Instant::now().checked_sub(ttl).unwrap_or(*at);
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
/// let Claim::Owned { lease, stale: None } = tier.claim(&key, Duration::from_secs(60)).unwrap()
/// else { panic!("a cold key is claimed") };
/// assert_eq!(tier.publish(&key, &lease, &"v".to_string()).unwrap(), Publish::Stored);
/// assert!(matches!(tier.claim(&key, Duration::from_secs(60)).unwrap(), Claim::Fresh(_)));
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
    /// against `ttl` (R4, fleet-wide), then either grants a [`Lease`] (renewed by the
    /// tier until publish or release) or reports the current owner's.
    fn claim(&self, key: &K, ttl: Duration) -> Result<Claim<V>, TierError>;

    /// Stores `value` as `key`'s shared value, created now by the tier's clock (F4),
    /// if `lease` still holds and the key's generation has not moved (F5), and ends the
    /// lease either way.
    fn publish(&self, key: &K, lease: &Lease, value: &V) -> Result<Publish, TierError>;

    /// Gives `lease` up at once, storing nothing: its creator failed (F8).
    fn release(&self, key: &K, lease: &Lease) -> Result<(), TierError>;

    /// Soft invalidation (R7) for every process: the shared value turns stale for a
    /// cache of this `ttl`, a lease in flight is fenced, and every process is told
    /// (F6).
    fn invalidate(&self, key: &K, ttl: Duration) -> Result<(), TierError>;

    /// Hard removal (R7) for every process: the shared value goes, a lease in flight is
    /// fenced, and every process is told (F6).
    fn remove(&self, key: &K) -> Result<(), TierError>;

    /// Registers where this tier delivers the [`TierEvent`]s of keys this process has
    /// seen through it (called once, when the cache is built).
    fn subscribe(&self, events: EventSink<K>);

    /// This tier, with its keys kept apart from those of every other `scope` (see
    /// [Scopes](SharedTier#scopes-one-tier-many-memoized-fns)): the same key under two
    /// scopes names two values, and an event of one scope reaches only its caches.
    /// The `#[dogpile]` attribute calls it once per fn, with the fn's path.
    fn scoped(self, scope: &str) -> Self
    where
        Self: Sized;
}

// ---------------------------------------------------------------------------------
// The shared level inside a cache: what runs in place of the creator when a tier is
// configured. The local slot already lets at most one caller per key and process get
// here at a time (the first level of the two-level claim, F3); this adds the second,
// fleet-wide level.

use crate::clock::to_nanos;
use crate::executor::Runner;
use crate::slot::{refresh_task, Claim as SlotClaim, Creator, Env, Store};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::Hash;
use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;
#[cfg(not(loom))]
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

/// A cold key held by another process is waited for at most this much longer than
/// the lease it had when first seen; then this caller creates for itself (F2).
const COLD_WAIT_SLACK: Duration = Duration::from_secs(1);
/// Between two claims of a cold key held elsewhere, absent any notification.
const COLD_RECHECK: Duration = Duration::from_millis(250);

/// Where a value handed to the local slot came from, and so how old it is.
pub(crate) struct Sourced<V> {
    pub(crate) value: V,
    /// How old the value is to be stamped in L1 (zero: created just now).
    pub(crate) age: Duration,
    /// Another process's stale value, held while its lease runs (F1, F3).
    pub(crate) held: bool,
}

/// Set in the age handed to the L1 store for a held stale value: the store keeps it
/// only if no notification for its key came since the claim (see
/// [`SharedLevel::still_held`]).
pub(crate) const HELD: u64 = 1 << 63;

/// What the local cache does on a tier event (F6).
pub(crate) enum LocalAction<K> {
    Invalidate(K),
    Remove(K),
    InvalidateAll,
}

/// Keys with a claim in flight or whose L1 copy is another process's stale value, held
/// while that process's lease runs; a notification for a key takes it out. And the
/// wake-up of callers waiting for a cold key held elsewhere.
struct Board<K> {
    held: Mutex<HashSet<K>>,
    epoch: Mutex<u64>,
    changed: Condvar,
}

impl<K: Hash + Eq> Board<K> {
    fn bump(&self) {
        *self.epoch.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.changed.notify_all();
    }

    fn epoch(&self) -> u64 {
        *self.epoch.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks until a publish or release anywhere, or `timeout`.
    fn wait(&self, seen: u64, timeout: Duration) {
        let epoch = self.epoch.lock().unwrap_or_else(|e| e.into_inner());
        let _ = self
            .changed
            .wait_timeout_while(epoch, timeout, |now| *now == seen)
            .unwrap_or_else(|e| e.into_inner());
    }
}

/// What `CacheBuilder::shared` hands the cache: the tier, and its level's constructor.
/// The constructor is named there, so a cache built without a tier compiles none of
/// the level's code: neither its event handling nor, through `SharedLevel::keyed`, its
/// per-key steps (a fifth of the release build of a memoized fn's first cache of its
/// key and value types).
pub(crate) struct TierSetting<K, V> {
    tier: Arc<dyn SharedTier<K, V>>,
    level: LevelConstructor<K, V>,
}

/// Applies a tier's events to the cache's own values (its L1).
pub(crate) type LocalSink<K> = Box<dyn Fn(LocalAction<K>) + Send + Sync>;

type LevelConstructor<K, V> =
    fn(Arc<dyn SharedTier<K, V>>, Duration, Option<Duration>, LocalSink<K>) -> SharedLevel<K, V>;

/// Builds one key's steps in a level's tier.
type KeyedSteps<K, V> = for<'a> fn(&'a SharedLevel<K, V>, K) -> Box<dyn KeyedTier<V> + 'a>;

impl<K, V> TierSetting<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub(crate) fn new(tier: Arc<dyn SharedTier<K, V>>) -> Self {
        TierSetting {
            tier,
            level: SharedLevel::new,
        }
    }
}

impl<K, V> TierSetting<K, V> {
    /// The cache's level: [`SharedLevel::new`], built where the tier was given.
    pub(crate) fn bind(
        self,
        ttl: Duration,
        max_stale: Option<Duration>,
        local: LocalSink<K>,
    ) -> SharedLevel<K, V> {
        (self.level)(self.tier, ttl, max_stale, local)
    }
}

/// The fleet tier as seen by one cache (cheap to clone: a background refresh takes a
/// clone to the refresh executor).
pub(crate) struct SharedLevel<K, V> {
    tier: Arc<dyn SharedTier<K, V>>,
    ttl: Duration,
    /// R11: a held stale value is served no longer than `ttl + max_stale` after its
    /// creation, by its real age.
    max_stale: Option<Duration>,
    /// With `max_stale`: the stale values held while another process's lease runs (F1),
    /// with their real creation instants; L1 stamps them by that age, so they are
    /// stale there, and its refreshes take them from here instead of asking the tier
    /// again (F3). A notification for a key drops its hold.
    holds: Arc<Mutex<HashMap<K, Hold<V>>>>,
    board: Arc<Board<K>>,
    /// One key's steps in the tier, built where the level is (see [`TierSetting`]).
    keyed: KeyedSteps<K, V>,
}

/// Another process's stale value, held while its lease runs.
struct Hold<V> {
    value: V,
    created: Instant,
    until: Instant,
}

impl<K, V> Clone for SharedLevel<K, V> {
    fn clone(&self) -> Self {
        SharedLevel {
            tier: self.tier.clone(),
            ttl: self.ttl,
            max_stale: self.max_stale,
            holds: self.holds.clone(),
            board: self.board.clone(),
            keyed: self.keyed,
        }
    }
}

impl<K: Hash + Eq, V> SharedLevel<K, V> {
    /// Whether `key`'s held stale value may be stored as held: no notification for it
    /// came since its claim. Called under the L1 entry's lock, which a notification's
    /// invalidation takes after taking the key off the board: either it sees the key
    /// gone, or the notification invalidates what it stores.
    pub(crate) fn still_held(&self, key: &K) -> bool {
        let held = self.board.held.lock().unwrap_or_else(|e| e.into_inner());
        held.contains(key)
    }
}

impl<K: 'static, V: 'static> SharedLevel<K, V> {
    /// Fleet-wide soft invalidation (F6); a failing tier changes nothing here (F7).
    pub(crate) fn invalidate(&self, key: &K) {
        let _ = self.tier.invalidate(key, self.ttl);
    }

    /// Fleet-wide removal (F6); a failing tier changes nothing here (F7).
    pub(crate) fn remove(&self, key: &K) {
        let _ = self.tier.remove(key);
    }
}

/// The first half of a shared creation: serve from the tier, or create (with a lease
/// when the tier granted one).
enum Begin<V> {
    Serve(Sourced<V>),
    Create(Option<Lease>),
    /// Cold and held elsewhere: wait for a notification, at most this long, then claim
    /// again.
    Wait(Duration),
}

impl<K, V> SharedLevel<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Binds `tier` to a cache of this `ttl`; `local` applies events to the cache's L1.
    fn new(
        tier: Arc<dyn SharedTier<K, V>>,
        ttl: Duration,
        max_stale: Option<Duration>,
        local: LocalSink<K>,
    ) -> Self {
        let board = Arc::new(Board {
            held: Mutex::new(HashSet::new()),
            epoch: Mutex::new(0),
            changed: Condvar::new(),
        });
        let holds: Arc<Mutex<HashMap<K, Hold<V>>>> = Arc::default();
        let events = board.clone();
        let dropped = holds.clone();
        tier.subscribe(Arc::new(move |event| {
            let wake = |key: &K| {
                dropped
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(key);
                let held = events
                    .held
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(key);
                events.bump();
                held
            };
            match event {
                TierEvent::Invalidated(key) => {
                    wake(&key);
                    local(LocalAction::Invalidate(key));
                }
                TierEvent::Removed(key) => {
                    wake(&key);
                    local(LocalAction::Remove(key));
                }
                // A held stale copy may now be replaced from the tier (F3).
                TierEvent::Published(key) | TierEvent::Released(key) => {
                    if wake(&key) {
                        local(LocalAction::Invalidate(key));
                    }
                }
                TierEvent::Reset => {
                    dropped.lock().unwrap_or_else(|e| e.into_inner()).clear();
                    events
                        .held
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clear();
                    events.bump();
                    local(LocalAction::InvalidateAll);
                }
            }
        }));
        SharedLevel {
            tier,
            ttl,
            max_stale,
            holds,
            board,
            keyed: |level, key| {
                Box::new(KeyedLevel {
                    level,
                    key,
                    _value: PhantomData,
                })
            },
        }
    }

    fn begin(&self, key: &K, cold_deadline: &mut Option<Instant>) -> Begin<V> {
        if let Some(held) = self.held_copy(key) {
            return Begin::Serve(held);
        }
        // On the board before the claim, so that a notification arriving between the
        // claim's reply and the L1 store is not lost (it takes the key out).
        let board = || self.board.held.lock().unwrap_or_else(|e| e.into_inner());
        board().insert(key.clone());
        let claim = self.tier.claim(key, self.ttl);
        if !matches!(claim, Ok(Claim::Busy { stale: Some(_), .. })) {
            board().remove(key);
        }
        let claim = match claim {
            Ok(claim) => claim,
            // F7: Redis is down or slow: the local rules apply.
            Err(_) => return Begin::Create(None),
        };
        match claim {
            // R4 fleet-wide, and F3: a process without a fresh copy takes the tier's.
            Claim::Fresh(shared) => Begin::Serve(Sourced {
                value: shared.value,
                age: shared.age,
                held: false,
            }),
            // F1: someone else refreshes; hold their stale value as if fresh until
            // their lease ends or a notification arrives, without asking again.
            Claim::Busy {
                stale: Some(stale),
                lease_left,
            } => match self.max_stale {
                None => Begin::Serve(Sourced {
                    value: stale.value,
                    age: self.ttl.saturating_sub(lease_left),
                    held: true,
                }),
                // R11: too old to serve by its real age: cold, wait for the owner (F2).
                Some(max_stale) if stale.age >= self.ttl.saturating_add(max_stale) => {
                    board().remove(key);
                    wait_cold(lease_left, cold_deadline)
                }
                Some(_) => {
                    let now = Instant::now();
                    let hold = Hold {
                        value: stale.value.clone(),
                        created: now.checked_sub(stale.age).unwrap_or(now),
                        until: now + lease_left,
                    };
                    let mut holds = self.holds.lock().unwrap_or_else(|e| e.into_inner());
                    holds.insert(key.clone(), hold);
                    Begin::Serve(Sourced {
                        value: stale.value,
                        age: stale.age,
                        held: true,
                    })
                }
            },
            // F2: cold, created elsewhere: wait (bounded), then claim again.
            Claim::Busy {
                stale: None,
                lease_left,
            } => wait_cold(lease_left, cold_deadline),
            Claim::Owned { lease, .. } => Begin::Create(Some(lease)),
        }
    }

    /// With `max_stale`: the stale value held for `key` while another process's lease
    /// runs, with its real age, if it may still be served (R11) and no notification
    /// for the key came since (F3).
    fn held_copy(&self, key: &K) -> Option<Sourced<V>> {
        let max_stale = self.max_stale?;
        let mut holds = self.holds.lock().unwrap_or_else(|e| e.into_inner());
        let hold = holds.get(key)?;
        let age = hold.created.elapsed();
        let servable = Instant::now() < hold.until
            && age < self.ttl.saturating_add(max_stale)
            && self.still_held(key);
        if !servable {
            holds.remove(key);
            return None;
        }
        Some(Sourced {
            value: hold.value.clone(),
            age,
            held: true,
        })
    }

    /// Wraps a call's creator: the tier runs first, and the creator only if this caller
    /// holds the lease (or the tier failed, F7). `age` receives the tier age of a value
    /// taken from the tier, for the L1 stamp (F4); `blocking` callers wait by parking,
    /// the others by awaiting.
    /// `run_elsewhere` runs a background refresh handed off with its tier steps (R10).
    pub(crate) fn creator<'a, C, E>(
        &'a self,
        key: K,
        inner: C,
        age: Arc<AtomicU64>,
        blocking: bool,
        run_elsewhere: RunElsewhere<'a, V, E>,
    ) -> TierCreator<'a, V, E, C> {
        TierCreator {
            inner,
            tier: Some(TierSteps {
                run_elsewhere,
                tier: (self.keyed)(self, key),
                age,
                blocking,
            }),
        }
    }
}

/// One key's steps in the tier, with the key's type erased: the creation future then
/// names no `K`, and so needs no `K: 'static` proof where it is checked for `Send` (an
/// async caller keyed by `&'static str` would otherwise fail that check). The steps
/// around a creation live here, behind `dyn`, rather than in [`TierCreation`]: built
/// where a tier is given, so that a cache without one builds none of them.
trait KeyedTier<V>: Send + Sync {
    /// Before the creation: `Ready(Some(value))`, the tier's value, to serve;
    /// `Ready(None)`, create, under the lease if `side` now holds it; or wait for
    /// another process's value.
    fn open(&self, side: &mut TierSide, cx: &mut Context<'_>) -> Poll<Option<V>>;
    /// After the creation: publish its value under the lease, or release the lease at
    /// once if it failed (`None`, F8).
    fn close(&self, side: &mut TierSide, created: Option<&V>);
    fn release(&self, lease: &Lease);
    /// The same key's steps, owning their level, to run on the refresh executor (R10).
    fn detached(&self) -> Box<dyn KeyedTier<V>>;
}

/// What one creation's tier steps carry between [`KeyedTier::open`] and
/// [`KeyedTier::close`].
pub(crate) struct TierSide {
    /// Where the value's tier age goes, for the L1 stamp (F4).
    age: Arc<AtomicU64>,
    /// Waits by parking (blocking callers) or by awaiting.
    blocking: bool,
    cold_deadline: Option<Instant>,
    waiting: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    lease: Option<Lease>,
}

impl TierSide {
    fn new(age: Arc<AtomicU64>, blocking: bool) -> Self {
        TierSide {
            age,
            blocking,
            cold_deadline: None,
            waiting: None,
            lease: None,
        }
    }
}

/// One key of a level that is borrowed by a call, or owned by a detached refresh.
struct KeyedLevel<L, K, V> {
    level: L,
    key: K,
    _value: PhantomData<fn() -> V>,
}

impl<L, K, V> KeyedTier<V> for KeyedLevel<L, K, V>
where
    L: Deref<Target = SharedLevel<K, V>> + Send + Sync,
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn open(&self, side: &mut TierSide, cx: &mut Context<'_>) -> Poll<Option<V>> {
        let board = &self.level.board;
        loop {
            if let Some(wait) = &mut side.waiting {
                if wait.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                side.waiting = None;
            }
            let seen = board.epoch();
            match self.level.begin(&self.key, &mut side.cold_deadline) {
                Begin::Serve(sourced) => {
                    let age = to_nanos(sourced.age).min(HELD - 1);
                    let held = if sourced.held { HELD } else { 0 };
                    side.age.store(age | held, Ordering::Relaxed);
                    return Poll::Ready(Some(sourced.value));
                }
                Begin::Create(lease) => {
                    side.lease = lease;
                    return Poll::Ready(None);
                }
                Begin::Wait(timeout) if side.blocking => board.wait(seen, timeout),
                Begin::Wait(timeout) => {
                    side.waiting = Some(Box::pin(wait_off_thread(board.clone(), seen, timeout)));
                }
            }
        }
    }

    fn close(&self, side: &mut TierSide, created: Option<&V>) {
        let Some(lease) = side.lease.take() else {
            return; // F7: no lease, the local rules
        };
        let Some(value) = created else {
            self.release(&lease); // F8
            return;
        };
        let age = match self.level.tier.publish(&self.key, &lease, value) {
            Ok(Publish::Stored) => Duration::ZERO,
            // F5: fenced. The caller still gets its value; L1 keeps it stale, so the
            // next caller takes the tier's current one.
            Ok(Publish::Rejected) => self.level.ttl,
            // F7: kept locally, as the local rules would.
            Err(_) => Duration::ZERO,
        };
        side.age.store(to_nanos(age), Ordering::Relaxed);
    }

    fn release(&self, lease: &Lease) {
        // On failure the lease runs out by itself (F5).
        let _ = self.level.tier.release(&self.key, lease);
    }

    fn detached(&self) -> Box<dyn KeyedTier<V>> {
        Box::new(KeyedLevel {
            level: Arc::new(SharedLevel::clone(&self.level)),
            key: self.key.clone(),
            _value: PhantomData,
        })
    }
}

/// A call's creator, behind the fleet tier when the cache has one (see
/// [`SharedLevel::creator`]). Every call's slot runs this one creator type, tier or
/// not, so that the slot's code is built once per cache and creator rather than twice.
pub(crate) struct TierCreator<'a, V, E, C> {
    inner: C,
    tier: Option<TierSteps<'a, V, E>>,
}

/// What a [`TierCreator`] runs around its creator with a tier.
struct TierSteps<'a, V, E> {
    tier: Box<dyn KeyedTier<V> + 'a>,
    age: Arc<AtomicU64>,
    blocking: bool,
    run_elsewhere: RunElsewhere<'a, V, E>,
}

impl<V, E, C> TierCreator<'_, V, E, C> {
    /// The creator alone, for a cache without a tier.
    pub(crate) fn plain(inner: C) -> Self {
        TierCreator { inner, tier: None }
    }
}

/// Runs a background refresh that took its tier steps along (see [`Moved::run`]). Built
/// where the cache's key and value are known to be `'static`, so that the creator's
/// `Creator` impl needs no such bound: async callers keyed by `&'static str` would
/// otherwise fail the `Send` check of their futures.
pub(crate) type RunElsewhere<'a, V, E> = Box<dyn FnOnce(SlotClaim, Moved<V, E>) + Send + 'a>;

/// A background refresh under the tier, moved off the claimant's call (R10 with F1).
pub(crate) struct Moved<V, E> {
    tier: Box<dyn KeyedTier<V>>,
    age: Arc<AtomicU64>,
    creation: Pin<Box<dyn Future<Output = Result<V, E>> + Send>>,
    runner: Runner,
}

impl<V, E> Moved<V, E>
where
    V: Send + Sync + 'static,
    E: Clone + Send + 'static,
{
    /// Runs the refresh on its executor: claim in the tier, create under the lease,
    /// publish to the tier and then to `store`, or release at once on failure (F8).
    pub(crate) fn run<S>(self, claim: SlotClaim, store: S, env: Env)
    where
        S: Store<Value = V> + Send + Sync + 'static,
    {
        let side = TierSide::new(self.age, self.runner.blocking());
        let refresh = TierCreation::new(self.tier, side, self.creation);
        self.runner.run(refresh_task(claim, store, env, refresh));
    }
}

impl<'a, V, E, C, S> Creator<S> for TierCreator<'a, V, E, C>
where
    S: Store<Value = V>,
    C: Creator<S, Error = E>,
    E: Clone + Send + 'static,
{
    type Error = E;
    type Creation = Creation<'a, V, C::Creation>;
    const DETACHES: bool = C::DETACHES;

    fn start(self) -> Self::Creation {
        let Some(steps) = self.tier else {
            return Creation::Plain {
                creation: self.inner.start(),
            };
        };
        Creation::Tier {
            creation: TierCreation::new(
                steps.tier,
                TierSide::new(steps.age, steps.blocking),
                self.inner.start(),
            ),
        }
    }

    /// R10 with F1: a background cache's stale refresh runs on its executor, tier steps
    /// and all: the claim in the tier, the creation under the lease (renewed by the tier
    /// while it runs), the publish, or the release at once on failure (F8). The
    /// claimant returns its stale value without waiting, not even for the tier.
    /// Without a tier, the creator hands itself off.
    fn hand_off(self, claim: SlotClaim, store: &S, env: &Env) -> Result<(), (Self, SlotClaim)> {
        let TierCreator { inner, tier } = self;
        let Some(steps) = tier else {
            return inner
                .hand_off(claim, store, env)
                .map_err(|(inner, claim)| (TierCreator::plain(inner), claim));
        };
        // `run_elsewhere` builds its own store, owned.
        match inner.detach() {
            Ok((creation, runner)) => {
                let TierSteps {
                    tier,
                    age,
                    run_elsewhere,
                    ..
                } = steps;
                run_elsewhere(
                    claim,
                    Moved {
                        tier: tier.detached(),
                        age,
                        creation,
                        runner,
                    },
                );
                Ok(())
            }
            Err(inner) => {
                let creator = TierCreator {
                    inner,
                    tier: Some(steps),
                };
                Err((creator, claim))
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// The creation of a [`TierCreator`]: its creator's own without a tier.
    #[project = CreationProj]
    pub(crate) enum Creation<'a, V, F> {
        Plain { #[pin] creation: F },
        Tier { creation: TierCreation<'a, V, F> },
    }
}

impl<V, F, E> Future for Creation<'_, V, F>
where
    F: Future<Output = Result<V, E>>,
{
    type Output = Result<V, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            CreationProj::Plain { creation } => creation.poll(cx),
            CreationProj::Tier { creation } => Pin::new(creation).poll(cx),
        }
    }
}

/// The creation of a [`TierCreator`]: claim in the tier, then serve, wait, or create and
/// publish. The tier's steps are its [`KeyedTier`]'s; this part only starts and polls
/// the creator's future, the one part that depends on the creator's type. Dropped while
/// it holds the lease (a panicking creator, a dropped future), it gives the lease up at
/// once (F8).
pub(crate) struct TierCreation<'a, V, F> {
    tier: Box<dyn KeyedTier<V> + 'a>,
    side: TierSide,
    state: State<F>,
}

enum State<F> {
    Begin { creation: Option<F> },
    Creating { creation: Pin<Box<F>> },
    Done,
}

impl<'a, V, F> TierCreation<'a, V, F> {
    fn new(tier: Box<dyn KeyedTier<V> + 'a>, side: TierSide, creation: F) -> Self {
        TierCreation {
            tier,
            side,
            state: State::Begin {
                creation: Some(creation),
            },
        }
    }
}

// Every field is Unpin (the user's future is boxed once it runs).
impl<V, F> Unpin for TierCreation<'_, V, F> {}

impl<V, F, E> Future for TierCreation<'_, V, F>
where
    F: Future<Output = Result<V, E>>,
{
    type Output = Result<V, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                State::Begin { creation } => {
                    let Poll::Ready(opened) = this.tier.open(&mut this.side, cx) else {
                        return Poll::Pending;
                    };
                    if let Some(value) = opened {
                        this.state = State::Done;
                        return Poll::Ready(Ok(value));
                    }
                    let creation = creation.take().expect("a creation starts once");
                    this.state = State::Creating {
                        creation: Box::pin(creation),
                    };
                }
                State::Creating { creation } => {
                    let Poll::Ready(outcome) = creation.as_mut().poll(cx) else {
                        return Poll::Pending;
                    };
                    this.state = State::Done;
                    this.tier.close(&mut this.side, outcome.as_ref().ok());
                    return Poll::Ready(outcome);
                }
                State::Done => {
                    panic!("dogpile: internal error: a creation was polled after it finished")
                }
            }
        }
    }
}

impl<V, F> Drop for TierCreation<'_, V, F> {
    fn drop(&mut self) {
        // A panicking creator or a dropped future: give the lease up at once (F8).
        if let Some(lease) = &self.side.lease {
            self.tier.release(lease);
        }
    }
}

/// F2: a cold key created elsewhere is waited for, bounded by twice the lease it had
/// when first seen and a slack, then claimed again; past that bound, created here.
fn wait_cold<V>(lease_left: Duration, cold_deadline: &mut Option<Instant>) -> Begin<V> {
    let now = Instant::now();
    let deadline =
        *cold_deadline.get_or_insert(now + lease_left.saturating_mul(2) + COLD_WAIT_SLACK);
    if now >= deadline {
        return Begin::Create(None);
    }
    Begin::Wait(lease_left.min(COLD_RECHECK).min(deadline - now))
}

/// Waits on the board on a helper thread, so an async caller never blocks its own.
#[cfg(not(loom))]
fn wait_off_thread<K: Hash + Eq + Send + Sync + 'static>(
    board: Arc<Board<K>>,
    seen: u64,
    timeout: Duration,
) -> impl Future<Output = ()> + Send {
    let fired = Arc::new((event_listener::Event::new(), AtomicBool::new(false)));
    let signal = fired.clone();
    std::thread::spawn(move || {
        board.wait(seen, timeout);
        signal.1.store(true, Ordering::Release);
        signal.0.notify(usize::MAX);
    });
    async move {
        while !fired.1.load(Ordering::Acquire) {
            let listener = fired.0.listen();
            if fired.1.load(Ordering::Acquire) {
                return;
            }
            listener.await;
        }
    }
}

/// Under loom (no event-listener), the wait parks the polling thread.
#[cfg(loom)]
fn wait_off_thread<K: Hash + Eq + Send + Sync + 'static>(
    board: Arc<Board<K>>,
    seen: u64,
    timeout: Duration,
) -> impl Future<Output = ()> + Send {
    board.wait(seen, timeout);
    std::future::ready(())
}
