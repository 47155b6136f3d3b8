//! [`Cache`]: a dogpile slot per key, on a [`DashMap`].
//!
//! Every get-like entry point, whatever its mode, first tries the hit path, then funnels
//! into one per-key loop, [`call`]: find (or insert) the key's entry, build its store,
//! run the slot driver ([`slot::drive`]), and start over if the slot was retired
//! meanwhile. The entry points differ only in how they wait (block or await) and in
//! their creator (inline, or handed to an executor for a background refresh).
//!
//! The loop runs on the cache as `dyn` [`Slots`], and a bounded cache's other calls go
//! through `dyn` [`BoundedCore`] (see [`Core`]): what is built once per key and value
//! types stays one copy whichever entry layout a cache has, and the bounded layout is
//! built only for the types of caches given a capacity.

use crate::builder::{CacheBuilder, Settings};
use crate::entry::EntryRef;
use crate::evict::{Candidate, Entries, Evictor, Mark, Marking, Unmarked, Visit};
#[cfg(all(test, not(loom)))]
use crate::executor::RefreshTask;
use crate::executor::{Executor, Pooled};
use crate::key::KeyRef;
use crate::mode::{Background, Inline, Mode, SyncReaders};
use crate::shared::{
    LocalAction, Moved, RunElsewhere, SharedLevel, TierCreator, TierSetting, HELD,
};
use crate::slot::{
    self, take_creator, Control, Creator, Env, Freshness, How, Now, Served, Stamped, Step, Store,
    Waiting,
};
use crate::stats::{Counters, Stats};
use crate::sync_reader::{Held, ReadGuard};
use dashmap::DashMap;
use std::borrow::Borrow;
use std::convert::Infallible;
use std::fmt;
#[cfg(not(loom))]
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
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
/// The third type parameter is the [mode](crate::mode), chosen on the builder:
/// [`Inline`] (the default), [`Background`] (R10) or [`SyncReaders`] (R8). Each mode
/// has the same four names, `get_with`, `try_get_with`, `get_with_async` and
/// `try_get_with_async` (no async ones in `SyncReaders`); the mode decides the creator's
/// bounds and what they return. [`entry_by_ref`](Cache::entry_by_ref) offers the same
/// calls by a borrowed form of the key.
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
/// When a new key needs room, one entry is evicted by S3-FIFO (Yang et al., SOSP '23):
/// new keys wait in a small FIFO queue and leave it first unless someone asks for them
/// again, so a burst of one-time keys (a scan) does not push out the keys in use; keys
/// asked for move to a main queue, where those asked for often survive several passes.
/// Every call that finds a key counts, `get` and stale hits too: a hot key whose value
/// is being refreshed is kept over one nobody asks for. A fresh hit only reads a per-entry
/// counter (and writes it while it is below its ceiling of 3): no lock, no shared write.
/// Only a bounded cache's entries carry that counter: an unbounded cache's are 8 bytes
/// smaller. A bounded cache's calls reach its entries through one dynamic call (its fresh
/// hits measured about 5 % slower than an unbounded cache's), so that a crate that gives
/// no cache of some key and value types a capacity does not compile the bounded layout's
/// code for them.
/// Entries whose creation is in flight are never evicted. If none can be evicted (every
/// entry is being created), the new key's value is computed by its caller and returned without
/// being stored, and the call counts as a miss; in [`SyncReaders`] mode its guard then
/// holds no lock, since nothing can publish over an unstored value.
///
/// Without a capacity, the cache still reclaims values nobody has refreshed for a long
/// time: each time the keys admitted since the last sweep are as many as the entries
/// there were before them (and at least 1024), entries older than `ttl + max_stale`, or
/// `16 × ttl` without `max_stale`, are dropped. Both sweeps cost amortized O(1) per new key.
pub struct Cache<K, V, M = Inline> {
    inner: Core<K, V>,
    _mode: PhantomData<fn() -> M>,
}

/// A cache's state, typed by what its entries carry for eviction. An unbounded cache's
/// entries carry only their value and control (8 bytes less per entry, whose map bucket
/// is then 24 bytes for a `u64` value), since nothing would read a mark there; its calls
/// reach its [`Inner`] directly, the hit path inlined. A bounded cache's entries carry
/// S3-FIFO's [`Mark`], and its calls reach its `Inner` through `dyn` [`BoundedCore`]: the
/// code of that second entry layout (every map routine, once more) is then built only
/// for the key and value types of caches given a capacity, which is where
/// [`CacheBuilder::capacity`] names its constructor.
enum Core<K, V> {
    Unbounded(Arc<Inner<K, V, Unmarked>>),
    Bounded(Arc<dyn BoundedCore<K, V>>),
}

pub(crate) struct Entry<V, Mk> {
    value: Option<Stamped<V>>,
    /// The slot's control, attached only while a call uses it (a claim, a waiter, a read
    /// guard): an idle entry allocates nothing besides its map bucket.
    control: Option<Arc<Control>>,
    /// What the eviction policy knows of the entry (bounded caches only); raised by
    /// every call that finds it.
    mark: Mk,
}

impl<V, Mk> Entry<V, Mk> {
    fn attach(&mut self, sync_readers: bool) -> Arc<Control> {
        self.control
            .get_or_insert_with(|| Control::new(sync_readers))
            .clone()
    }

    /// Marks the slot dropped from its map (see `Control::try_retire`); an entry with
    /// no control has no caller to tell.
    fn try_retire(&self) -> bool {
        self.control
            .as_ref()
            .is_none_or(|control| control.try_retire())
    }
}

/// The map's hasher: foldhash's fast hasher (what `hashbrown` uses by default), seeded
/// per process. It hashes a `u64` or a short string several times faster than std's
/// SipHash, which shows on the hit path; borrowed lookups hash with the same hasher
/// through `DashMap::hash_usize`.
type Hasher = foldhash::fast::RandomState;

pub(crate) struct Inner<K, V, Mk> {
    map: DashMap<K, Entry<V, Mk>, Hasher>,
    env: Env,
    capacity: Option<usize>,
    /// The eviction policy, with a capacity.
    evictor: Option<Evictor<K>>,
    sync_readers: bool,
    executor: Executor,
    /// Entries in the map plus places reserved for entries about to be inserted: the
    /// capacity bound is checked against this, not the map's approximate `len`.
    entries: AtomicUsize,
    admitted_since_sweep: AtomicUsize,
    sweeping: parking_lot::Mutex<()>,
    /// The fleet tier (F1–F8), between the local value and the creator.
    shared: Option<SharedLevel<K, V>>,
}

/// The store of one key, as every call of this cache builds it.
type KeyStore<L, K, V> = EntryStore<SlotsHandle<K, V>, L>;

/// A key as a call was given it: owned, or borrowed (see [`KeyRef`]). A call finds,
/// reads and writes its entry by the key as given; only a call that inserts an entry (or
/// hands a background refresh its own copy, or asks a fleet tier) builds an owned key.
pub(crate) trait Lookup<K>: KeyLookup<K> + Clone {
    /// Runs `read` on the key's entry, if there is one, under its shard's read lock.
    /// By default found by hash and comparison in the map's raw shards.
    fn with_entry<V: Clone, Mk: Marking, R>(
        &self,
        inner: &Inner<K, V, Mk>,
        read: impl FnOnce(&Entry<V, Mk>) -> R,
    ) -> Option<R>
    where
        K: Hash + Eq,
    {
        inner.with_matching(self, read)
    }

    /// Runs `write` on the key's entry, if there is one, under its shard's write lock.
    fn with_entry_mut<V: Clone, Mk: Marking, R>(
        &self,
        inner: &Inner<K, V, Mk>,
        write: impl FnOnce(&mut Entry<V, Mk>) -> R,
    ) -> Option<R>
    where
        K: Hash + Eq,
    {
        inner.with_matching_mut(self, write)
    }

    /// Removes the key's entry if `doomed` says so, under its shard's write lock; the
    /// entry is dropped after the lock is released. True if it was removed.
    fn remove_if<V: Clone, Mk: Marking>(
        &self,
        inner: &Inner<K, V, Mk>,
        doomed: impl FnOnce(&Entry<V, Mk>) -> bool,
    ) -> bool
    where
        K: Hash + Eq,
    {
        let map = &inner.map;
        let hash = self.hash_by(map.hasher()) as usize;
        let mut shard = map.shards()[map.determine_shard(hash)].write();
        let eq = |(stored, _): &(K, _)| self.is(stored);
        let Some((_, entry)) = shard.get(hash as u64, eq) else {
            return false;
        };
        if !doomed(entry.get()) {
            return false;
        }
        let removed = shard.remove_entry(hash as u64, eq);
        drop(shard);
        removed.is_some()
    }

    /// The owned key, built.
    fn to_key(&self) -> K;

    /// The owned key, as it is when it is one.
    fn into_key(self) -> K;

    /// Runs `use_key` on the owned key (built only for a borrowed one).
    fn with_key<R>(&self, use_key: impl FnOnce(&K) -> R) -> R;
}

/// An owned key, for [`Lookup`].
#[derive(Clone)]
pub(crate) struct Owned<K>(pub(crate) K);

impl<K: Hash + Eq + Clone> Lookup<K> for Owned<K> {
    #[inline]
    fn with_entry<V: Clone, Mk: Marking, R>(
        &self,
        inner: &Inner<K, V, Mk>,
        read: impl FnOnce(&Entry<V, Mk>) -> R,
    ) -> Option<R> {
        Some(read(inner.map.get(&self.0)?.value()))
    }

    fn with_entry_mut<V: Clone, Mk: Marking, R>(
        &self,
        inner: &Inner<K, V, Mk>,
        write: impl FnOnce(&mut Entry<V, Mk>) -> R,
    ) -> Option<R> {
        Some(write(inner.map.get_mut(&self.0)?.value_mut()))
    }

    fn remove_if<V: Clone, Mk: Marking>(
        &self,
        inner: &Inner<K, V, Mk>,
        doomed: impl FnOnce(&Entry<V, Mk>) -> bool,
    ) -> bool {
        inner
            .map
            .remove_if(&self.0, |_, entry| doomed(entry))
            .is_some()
    }

    fn to_key(&self) -> K {
        self.0.clone()
    }

    fn into_key(self) -> K {
        self.0
    }

    fn with_key<R>(&self, use_key: impl FnOnce(&K) -> R) -> R {
        use_key(&self.0)
    }
}

impl<K: Hash + Eq, Q: KeyRef<K> + ?Sized> Lookup<K> for &Q {
    fn to_key(&self) -> K {
        KeyRef::to_key(*self)
    }

    fn into_key(self) -> K {
        KeyRef::to_key(self)
    }

    fn with_key<R>(&self, use_key: impl FnOnce(&K) -> R) -> R {
        use_key(&KeyRef::to_key(*self))
    }
}

/// A key as far as finding its entry goes: by hash and comparison. What `get` and
/// `contains_key` need, and all a borrowed `Q` with `K: Borrow<Q>` can offer.
pub(crate) trait KeyMatch<K> {
    /// The key's hash by the map's hasher: the same as its owned form's.
    fn hash_by(&self, hasher: &Hasher) -> u64;

    /// Whether `stored` is this key.
    fn is(&self, stored: &K) -> bool;
}

/// A key as the slow path takes it behind [`Slots`]: enough to find its entry, and to
/// build the owned key.
pub(crate) trait KeyLookup<K>: KeyMatch<K> {
    /// The owned key, built.
    fn owned(&self) -> K;
}

impl<K: Hash + Eq + Clone> KeyMatch<K> for Owned<K> {
    fn hash_by(&self, hasher: &Hasher) -> u64 {
        hasher.hash_one(&self.0)
    }

    fn is(&self, stored: &K) -> bool {
        self.0 == *stored
    }
}

impl<K: Hash + Eq + Clone> KeyLookup<K> for Owned<K> {
    fn owned(&self) -> K {
        self.0.clone()
    }
}

impl<K, Q: KeyRef<K> + ?Sized> KeyMatch<K> for &Q {
    fn hash_by(&self, hasher: &Hasher) -> u64 {
        hasher.hash_one(*self)
    }

    fn is(&self, stored: &K) -> bool {
        self.eq_key(stored)
    }
}

impl<K, Q: KeyRef<K> + ?Sized> KeyLookup<K> for &Q {
    fn owned(&self) -> K {
        KeyRef::to_key(*self)
    }
}

impl<K> KeyMatch<K> for &dyn KeyLookup<K> {
    fn hash_by(&self, hasher: &Hasher) -> u64 {
        (**self).hash_by(hasher)
    }

    fn is(&self, stored: &K) -> bool {
        (**self).is(stored)
    }
}

impl<K> KeyLookup<K> for &dyn KeyLookup<K> {
    fn owned(&self) -> K {
        (**self).owned()
    }
}

/// A key by `Borrow`, as [`Cache::get`], `invalidate` and `remove` take it: the map
/// finds it by the same hash and equality as the owned key (`Borrow`'s contract).
pub(crate) struct ByBorrow<'a, Q: ?Sized>(pub(crate) &'a Q);

impl<K: Borrow<Q>, Q: Hash + Eq + ?Sized> KeyMatch<K> for ByBorrow<'_, Q> {
    fn hash_by(&self, hasher: &Hasher) -> u64 {
        hasher.hash_one(self.0)
    }

    fn is(&self, stored: &K) -> bool {
        stored.borrow() == self.0
    }
}

impl<K, Q> KeyLookup<K> for ByBorrow<'_, Q>
where
    K: Borrow<Q>,
    Q: Hash + Eq + ToOwned + ?Sized,
    Q::Owned: Into<K>,
{
    fn owned(&self) -> K {
        self.0.to_owned().into()
    }
}

/// A key behind [`Slots`], found by its hash in the map's raw shards (the trait's
/// default lookups).
impl<K: Hash + Eq> Lookup<K> for &dyn KeyLookup<K> {
    fn to_key(&self) -> K {
        self.owned()
    }

    fn into_key(self) -> K {
        self.owned()
    }

    fn with_key<R>(&self, use_key: impl FnOnce(&K) -> R) -> R {
        use_key(&self.owned())
    }
}

/// What the hit path found.
enum Hit<V> {
    Fresh(V),
    /// Stale, while another caller refreshes it.
    Stale(V),
    /// Nothing to serve without entering the slot.
    Miss,
}

fn infallible<T>(result: Result<T, Infallible>) -> T {
    match result {
        Ok(value) => value,
        Err(never) => match never {},
    }
}

impl<K, V> Cache<K, V, Inline>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A cache whose values stay fresh for `ttl`, unbounded, timed by the system clock,
    /// in the default [`Inline`] mode.
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

    /// A builder for every other setting, the mode included.
    ///
    /// ```
    /// let cache: dogpile::Cache<u8, u8> = dogpile::Cache::builder()
    ///     .ttl(std::time::Duration::from_secs(1))
    ///     .build();
    /// assert_eq!(cache.len(), 0);
    /// ```
    pub fn builder() -> CacheBuilder<K, V> {
        CacheBuilder::new()
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
        infallible(self.try_get_inline(Owned(key), || Ok(create())))
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
    pub fn try_get_with<E: Clone + Send + 'static>(
        &self,
        key: K,
        create: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        self.try_get_inline(Owned(key), create)
    }

    /// [`get_with`](Cache::get_with) for async callers: the same rules, and waiting for
    /// a cold key awaits a notification instead of blocking the thread. Works on any
    /// executor. If this future is dropped while it is creating the value, its claim is
    /// released and one waiting caller takes over.
    ///
    /// ```
    /// # block_on(async {
    /// let cache = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// assert_eq!(cache.get_with_async(1, async { 10 }).await, 10);
    /// # });
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v } }
    /// # }
    /// ```
    #[cfg(not(loom))]
    pub async fn get_with_async(&self, key: K, create: impl Future<Output = V>) -> V {
        infallible(
            self.try_get_inline_async(Owned(key), async { Ok(create.await) })
                .await,
        )
    }

    /// [`try_get_with`](Cache::try_get_with) for async callers.
    ///
    /// ```
    /// # block_on(async {
    /// let cache = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// assert_eq!(cache.try_get_with_async(1, async { Err::<u8, _>("down") }).await, Err("down"));
    /// # });
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v } }
    /// # }
    /// ```
    #[cfg(not(loom))]
    pub async fn try_get_with_async<E: Clone + Send + 'static>(
        &self,
        key: K,
        create: impl Future<Output = Result<V, E>>,
    ) -> Result<V, E> {
        self.try_get_inline_async(Owned(key), create).await
    }

    #[inline]
    pub(crate) fn try_get_inline<E: Clone + Send + 'static>(
        &self,
        key: impl Lookup<K>,
        create: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        if let Some(value) = self.hit(&key) {
            return Ok(value);
        }
        let creator = slot::Inline(Now::new(create));
        call_blocking(self.slots(), key, creator, How::BLOCK)
    }

    #[cfg(not(loom))]
    pub(crate) async fn try_get_inline_async<E: Clone + Send + 'static>(
        &self,
        key: impl Lookup<K>,
        create: impl Future<Output = Result<V, E>>,
    ) -> Result<V, E> {
        if let Some(value) = self.hit(&key) {
            return Ok(value);
        }
        // Boxed: the slow path's state (claim, listener, store) would otherwise make
        // every caller's future several times larger, and a hit pays to move it.
        let call = call(self.slots(), key, slot::Inline(create), How::AWAIT);
        Box::pin(call).await.map(|served| served.value)
    }
}

impl<K, V> Cache<K, V, Background>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The value for `key`, as in [`Inline`] mode, except that the refresh of a stale
    /// value runs on the refresh executor and every caller, the claimant included,
    /// returns the stale value at once (R10). The first creation of a key (nothing to
    /// serve meanwhile) runs in the calling thread, while other callers of the key wait.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = dogpile::Cache::<u8, u8>::builder().ttl(Duration::from_secs(9)).background_refresh().build();
    /// assert_eq!(cache.get_with(1, || 1), 1);
    /// ```
    #[inline]
    pub fn get_with(&self, key: K, create: impl FnOnce() -> V + Send + 'static) -> V {
        infallible(self.try_get_background(Owned(key), move || Ok(create())))
    }

    /// `get_with` (above) with a fallible creator. A
    /// failed background refresh keeps the stale value; the next stale hit retries.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = dogpile::Cache::<u8, u8>::builder().ttl(Duration::from_secs(9)).background_refresh().build();
    /// assert_eq!(cache.try_get_with(1, || Ok::<_, String>(1)), Ok(1));
    /// ```
    #[inline]
    pub fn try_get_with<E: Clone + Send + 'static>(
        &self,
        key: K,
        create: impl FnOnce() -> Result<V, E> + Send + 'static,
    ) -> Result<V, E> {
        self.try_get_background(Owned(key), create)
    }

    /// `get_with` (above) for async callers. With the
    /// `tokio` feature and inside a tokio runtime, the refresh of a stale value is
    /// spawned on that runtime and every caller returns the stale value at once (R10).
    /// Without the feature, or outside a runtime, the refresh runs in the claimant's
    /// future, as in [`Inline`] mode.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// let cache = dogpile::Cache::<u8, u8>::builder().ttl(Duration::from_secs(9)).background_refresh().build();
    /// assert_eq!(cache.get_with_async(1, async { 1 }).await, 1);
    /// # }
    /// ```
    #[cfg(not(loom))]
    pub async fn get_with_async(
        &self,
        key: K,
        create: impl Future<Output = V> + Send + 'static,
    ) -> V {
        let create = async { Ok::<V, Infallible>(create.await) };
        infallible(self.try_get_background_async(Owned(key), create).await)
    }

    /// `get_with_async` (above) with a fallible
    /// creator. A failed background refresh keeps the stale value.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// let cache = dogpile::Cache::<u8, u8>::builder().ttl(Duration::from_secs(9)).background_refresh().build();
    /// let value = cache.try_get_with_async(1, async { Ok::<_, String>(1) }).await;
    /// assert_eq!(value, Ok(1));
    /// # }
    /// ```
    #[cfg(not(loom))]
    pub async fn try_get_with_async<E: Clone + Send + 'static>(
        &self,
        key: K,
        create: impl Future<Output = Result<V, E>> + Send + 'static,
    ) -> Result<V, E> {
        self.try_get_background_async(Owned(key), create).await
    }

    #[inline]
    pub(crate) fn try_get_background<E: Clone + Send + 'static>(
        &self,
        key: impl Lookup<K>,
        create: impl FnOnce() -> Result<V, E> + Send + 'static,
    ) -> Result<V, E> {
        if let Some(value) = self.hit(&key) {
            return Ok(value);
        }
        // A refresh handed to the executor owns its key.
        let creator = Pooled::new(create, self.executor());
        call_blocking(self.slots(), Owned(key.into_key()), creator, How::BLOCK)
    }

    #[cfg(not(loom))]
    pub(crate) async fn try_get_background_async<E: Clone + Send + 'static>(
        &self,
        key: impl Lookup<K>,
        create: impl Future<Output = Result<V, E>> + Send + 'static,
    ) -> Result<V, E> {
        if let Some(value) = self.hit(&key) {
            return Ok(value);
        }
        // A refresh spawned on the runtime owns its key.
        let key = Owned(key.into_key());
        #[cfg(feature = "tokio")]
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let creator = crate::executor::Spawned::new(create, runtime);
            let call = call(self.slots(), key, creator, How::AWAIT);
            return Box::pin(call).await.map(|served| served.value);
        }
        let call = call(self.slots(), key, slot::Inline(create), How::AWAIT);
        Box::pin(call).await.map(|served| served.value)
    }
}

impl<K, V> Cache<K, V, SyncReaders>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The value for `key` under a [`ReadGuard`]: publishing a new value for this key
    /// waits until the guard is dropped (R8). Otherwise as in [`Inline`] mode. A thread
    /// that already holds a guard on this key is served the current value at once and
    /// never claims its refresh, so it cannot wait for itself.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = dogpile::Cache::<u8, String>::builder().ttl(Duration::from_secs(9)).sync_readers().build();
    /// let guard = cache.get_with(1, || "one".into());
    /// assert_eq!(guard.as_str(), "one");
    /// ```
    pub fn get_with(&self, key: K, create: impl FnOnce() -> V) -> ReadGuard<V> {
        infallible(self.try_get_guarded(Owned(key), || Ok(create())))
    }

    /// `get_with` (above) with a fallible creator.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = dogpile::Cache::<u8, u8>::builder().ttl(Duration::from_secs(9)).sync_readers().build();
    /// assert!(cache.try_get_with(1, || Err::<u8, _>("no")).is_err());
    /// ```
    pub fn try_get_with<E: Clone + Send + 'static>(
        &self,
        key: K,
        create: impl FnOnce() -> Result<V, E>,
    ) -> Result<ReadGuard<V>, E> {
        self.try_get_guarded(Owned(key), create)
    }

    pub(crate) fn try_get_guarded<E: Clone + Send + 'static>(
        &self,
        key: impl Lookup<K>,
        create: impl FnOnce() -> Result<V, E>,
    ) -> Result<ReadGuard<V>, E> {
        let served = match self.read_hit(&key) {
            Some(served) => served,
            None => {
                let creator = slot::Inline(Now::new(create));
                call_served(self.slots(), key, creator, How::GUARDED)?
            }
        };
        Ok(ReadGuard::new(Held::Owned(served.value), served.read))
    }
}

impl<K, V, M> Cache<K, V, M>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    M: Mode,
{
    pub(crate) fn with_settings(mut settings: Settings) -> Self {
        let inner = match settings.bounded.take() {
            None => Core::Unbounded(Inner::new(settings)),
            Some(constructor) => {
                let constructor = constructor
                    .downcast::<BoundedConstructor<K, V>>()
                    .expect("the builder keeps a constructor of its own key and value types");
                Core::Bounded(constructor(settings))
            }
        };
        Cache {
            inner,
            _mode: PhantomData,
        }
    }

    /// The hit path of an unguarded call: inlined for an unbounded cache.
    #[inline]
    fn hit(&self, key: &impl Lookup<K>) -> Option<V> {
        match &self.inner {
            Core::Unbounded(inner) => inner.hit(key),
            Core::Bounded(inner) => inner.hit(key),
        }
    }

    /// The hit path of a guarded call (see `Inner::read_hit`).
    fn read_hit(&self, key: &impl Lookup<K>) -> Option<Served<V>> {
        match &self.inner {
            Core::Unbounded(inner) => inner.read_hit(key),
            Core::Bounded(inner) => inner.read_hit(key),
        }
    }

    /// This cache, as the slow path runs on it.
    fn slots(&self) -> SlotsHandle<K, V> {
        match &self.inner {
            Core::Unbounded(inner) => inner.slots(),
            Core::Bounded(inner) => inner.clone().into_slots(),
        }
    }

    fn executor(&self) -> &Executor {
        match &self.inner {
            Core::Unbounded(inner) => &inner.executor,
            Core::Bounded(inner) => inner.executor(),
        }
    }

    fn get_matching<Q: KeyMatch<K>>(&self, key: &Q) -> Option<V> {
        match &self.inner {
            Core::Unbounded(inner) => inner.get_matching(key),
            Core::Bounded(inner) => inner.get(key),
        }
    }

    fn contains_matching<Q: KeyMatch<K>>(&self, key: &Q) -> bool {
        match &self.inner {
            Core::Unbounded(inner) => inner.contains_matching(key),
            Core::Bounded(inner) => inner.contains(key),
        }
    }

    fn invalidate_matching<Q: KeyLookup<K>>(&self, key: &Q) {
        match &self.inner {
            Core::Unbounded(inner) => inner.invalidate_matching(key),
            Core::Bounded(inner) => inner.invalidate(key),
        }
    }

    fn remove_matching<Q: KeyLookup<K>>(&self, key: &Q) -> Option<V> {
        match &self.inner {
            Core::Unbounded(inner) => inner.remove_matching(key),
            Core::Bounded(inner) => inner.remove(key),
        }
    }

    pub(crate) fn get_by_ref<Q: KeyRef<K> + ?Sized>(&self, key: &Q) -> Option<V> {
        self.get_matching(&key)
    }

    /// The hit path alone (see `Inner::hit`), counted as a call's hit or stale hit:
    /// `None` when the call must enter its slot.
    pub(crate) fn hit_by_ref<Q: KeyRef<K> + ?Sized>(&self, key: &Q) -> Option<V> {
        self.hit(&key)
    }

    pub(crate) fn contains_by_ref<Q: KeyRef<K> + ?Sized>(&self, key: &Q) -> bool {
        self.contains_matching(&key)
    }

    pub(crate) fn invalidate_by_ref<Q: KeyRef<K> + ?Sized>(&self, key: &Q) {
        self.invalidate_matching(&key)
    }

    pub(crate) fn remove_by_ref<Q: KeyRef<K> + ?Sized>(&self, key: &Q) -> Option<V> {
        self.remove_matching(&key)
    }

    /// The calls of this cache by a borrowed form of the key (see [`KeyRef`]): `&str`
    /// for a `String` key, `("page", &2)` for `(String, u32)`. Nothing is allocated
    /// unless a key must be stored, so a fresh hit by reference allocates nothing.
    ///
    /// ```
    /// let cache: dogpile::Cache<String, usize> = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// assert_eq!(cache.entry_by_ref("hello").get_with(|| 5), 5);
    /// assert_eq!(cache.entry_by_ref("hello").get_with(|| 0), 5);
    /// assert!(cache.entry_by_ref("hello").contains());
    /// ```
    #[inline]
    pub fn entry_by_ref<'a, Q>(&'a self, key: &'a Q) -> EntryRef<'a, K, V, M, Q>
    where
        Q: KeyRef<K> + ?Sized,
    {
        EntryRef::new(self, key)
    }

    /// The current value for `key` if it may be served: fresh, or stale but within
    /// `max_stale` (R11). Never creates, never waits, never claims a refresh, and is not
    /// counted in [`Stats`] (which count the calls that may create; moka counts its
    /// `get`, we keep the two apart so that `hits + stale_hits + misses` stays the
    /// number of get-with calls).
    ///
    /// ```
    /// let cache = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// assert_eq!(cache.get(&1), None);
    /// cache.get_with(1, || "one");
    /// assert_eq!(cache.get(&1), Some("one"));
    /// assert_eq!(cache.stats().calls(), 1);
    /// ```
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get_matching(&ByBorrow(key))
    }

    /// Whether [`get`](Cache::get) would return a value, without cloning it.
    ///
    /// ```
    /// let cache = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// cache.get_with("a", || 1);
    /// assert!(cache.contains_key("a"));
    /// assert!(!cache.contains_key("b"));
    /// ```
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.contains_matching(&ByBorrow(key))
    }

    /// Stores `value` for `key` as fresh now, whatever was there. A creation in flight
    /// for the key still publishes its own value when it finishes. In reader-synchronised
    /// mode this waits for the key's guards like any publish. If the cache is at
    /// capacity and every entry is being created, nothing is stored. With a
    /// [shared tier](CacheBuilder::shared) it stores in this process only: a value reaches
    /// the tier through a creation under its lease (F5).
    ///
    /// ```
    /// let cache = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// cache.insert("k", 1);
    /// assert_eq!(cache.get_with("k", || 2), 1);
    /// ```
    pub fn insert(&self, key: K, value: V) {
        match &self.inner {
            Core::Unbounded(inner) => inner.insert(key, value),
            Core::Bounded(inner) => inner.clone().insert(key, value),
        }
    }

    /// Makes the value for `key` stale (soft, R7): it is still served while the next
    /// caller refreshes it. With a [shared tier](CacheBuilder::shared) it reaches every
    /// process (F6), also when this one holds no copy of the key: the owned key
    /// (`Q::Owned` into `K`) is built for the tier then.
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
        Q: Hash + Eq + ToOwned + ?Sized,
        Q::Owned: Into<K>,
    {
        self.invalidate_matching(&ByBorrow(key))
    }

    /// Makes every value stale (soft, R7, for every key): each is still served while the
    /// next caller of its key refreshes it.
    ///
    /// With a [shared tier](CacheBuilder::shared), only this process's copies (see
    /// [Shared tiers: what stays local](Cache#shared-tiers-what-stays-local)): each key's
    /// next caller here asks the tier again and takes its value if that is fresh.
    ///
    /// ```
    /// let cache = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// cache.get_with(1, || "old");
    /// cache.get_with(2, || "old");
    /// cache.invalidate_all();
    /// assert_eq!(cache.get_with(1, || "new"), "new");
    /// assert_eq!(cache.get(&2), Some("old")); // stale, still served
    /// ```
    pub fn invalidate_all(&self) {
        match &self.inner {
            Core::Unbounded(inner) => inner.invalidate_all(),
            Core::Bounded(inner) => inner.invalidate_all(),
        }
    }

    /// Removes the value for `key` (hard, R7): the next caller creates a new one while
    /// the others wait. Returns the removed value (this process's copy). A creation
    /// already in flight for the key is not cancelled: it publishes when it finishes.
    /// With a [shared tier](CacheBuilder::shared) it reaches every process (F6), also
    /// when this one holds no copy of the key, as [`invalidate`](Cache::invalidate) does.
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
        Q: Hash + Eq + ToOwned + ?Sized,
        Q::Owned: Into<K>,
    {
        self.remove_matching(&ByBorrow(key))
    }

    /// Removes every value (hard). Creations in flight publish when they finish.
    ///
    /// # Shared tiers: what stays local
    ///
    /// With a [shared tier](CacheBuilder::shared), `clear` and
    /// [`invalidate_all`](Cache::invalidate_all) act on this process's copies only; the
    /// fleet's values stay, and the next caller of a key here takes the tier's value if
    /// it is fresh (F3). A tier keeps no list of a cache's keys, and a flag for a whole
    /// namespace would be a Redis key outside every slot's Cluster hash tag, on another
    /// node than the slot: each claim would need a second round trip, or a script over
    /// two slots, which a Redis Cluster refuses. To reach the fleet, invalidate or remove
    /// the keys one by one, or move to a new namespace (a version in it) to start over.
    ///
    /// ```
    /// let cache = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// cache.get_with(1, || 1);
    /// cache.clear();
    /// assert!(cache.is_empty());
    /// ```
    pub fn clear(&self) {
        match &self.inner {
            Core::Unbounded(inner) => inner.clear(),
            Core::Bounded(inner) => inner.clear(),
        }
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
        match &self.inner {
            Core::Unbounded(inner) => inner.map.len(),
            Core::Bounded(inner) => inner.len(),
        }
    }

    /// Whether the cache has no entries.
    ///
    /// ```
    /// let cache: dogpile::Cache<u8, u8> = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// assert!(cache.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        self.env().stats.snapshot()
    }
}

fn invalidate_entry<V, Mk>(entry: &mut Entry<V, Mk>) {
    if let Some(stamped) = entry.value.as_mut() {
        stamped.invalidate();
    }
}

impl<K, V, M> Clone for Cache<K, V, M> {
    /// Another handle to the same cache.
    fn clone(&self) -> Self {
        Cache {
            inner: match &self.inner {
                Core::Unbounded(inner) => Core::Unbounded(inner.clone()),
                Core::Bounded(inner) => Core::Bounded(inner.clone()),
            },
            _mode: PhantomData,
        }
    }
}

impl<K, V, M> Cache<K, V, M> {
    fn env(&self) -> &Env {
        match &self.inner {
            Core::Unbounded(inner) => &inner.env,
            Core::Bounded(inner) => inner.env(),
        }
    }
}

impl<K: Hash + Eq, V, M> fmt::Debug for Cache<K, V, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (capacity, entries) = match &self.inner {
            Core::Unbounded(inner) => (None, inner.map.len()),
            Core::Bounded(inner) => (inner.capacity(), inner.len()),
        };
        let env = self.env();
        f.debug_struct("Cache")
            .field("name", &env.name)
            .field("ttl", &Duration::from_nanos(env.policy.ttl))
            .field("capacity", &capacity)
            .field("mode", &std::any::type_name::<M>())
            .field("entries", &entries)
            .finish_non_exhaustive()
    }
}

impl<K: Hash + Eq, V: Clone, Mk: Marking> Inner<K, V, Mk> {
    /// The hit path of every unguarded call, before it enters its slot: a fresh value
    /// (R2: a shared shard lock, a clock read, a comparison and a clone), or a stale one
    /// while another caller refreshes it (R3, R10). By a borrowed key the entry is found
    /// by hash and compared in place, so neither builds an owned key or allocates.
    /// `None`: the call goes on to its slot.
    #[inline]
    pub(crate) fn hit(&self, key: &impl Lookup<K>) -> Option<V> {
        let now = self.hit_now()?;
        match key.with_entry(self, |entry| self.hit_value(entry, now))? {
            Hit::Fresh(value) => {
                self.env.stats.hit();
                Some(value)
            }
            Hit::Stale(value) => {
                Counters::bump(&self.env.stats.stale_hits);
                Some(value)
            }
            Hit::Miss => None,
        }
    }

    #[inline]
    fn hit_value(&self, entry: &Entry<V, Mk>, now: u64) -> Hit<V> {
        let Some(stamped) = entry.value.as_ref() else {
            return Hit::Miss;
        };
        if !self.env.policy.is_fresh(stamped, now) {
            return self.stale_value(entry);
        }
        entry.mark.touch();
        Hit::Fresh(stamped.value.clone())
    }

    /// A stale value, served at once if another caller holds the refresh claim, as the
    /// slot would serve it (R3); classified by the precise clock as the slot does.
    #[inline(never)]
    fn stale_value(&self, entry: &Entry<V, Mk>) -> Hit<V> {
        let (Some(stamped), Some(control)) = (&entry.value, &entry.control) else {
            return Hit::Miss;
        };
        let freshness =
            self.env
                .policy
                .classify(stamped.created(), stamped.invalidated(), self.env.now());
        if freshness != Freshness::Stale || !control.refreshing_elsewhere() {
            return Hit::Miss;
        }
        entry.mark.touch(); // a stale hit counts for eviction as a fresh one
        Hit::Stale(stamped.value.clone())
    }

    /// The hit path of a reader-synchronised call (R8): see [`slot::read_hit`]. Only an
    /// entry whose control is attached (it stays attached while its guards are used) is
    /// served here, so nothing is allocated.
    pub(crate) fn read_hit(&self, key: &impl Lookup<K>) -> Option<Served<V>> {
        let control = key.with_entry(self, |entry| entry.control.clone())??;
        slot::read_hit(&control, &self.env, || {
            let owned = |entry: &Entry<V, Mk>| {
                let ours = entry
                    .control
                    .as_ref()
                    .is_some_and(|c| Arc::ptr_eq(c, &control));
                ours.then(|| entry.value.clone()).flatten()
            };
            key.with_entry(self, owned).flatten()
        })
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

    /// The value of an entry if it may be served (fresh, or stale within `max_stale`).
    fn servable<'e>(&self, entry: &'e Entry<V, Mk>) -> Option<&'e V> {
        let stamped = entry.value.as_ref()?;
        let freshness =
            self.env
                .policy
                .classify(stamped.created(), stamped.invalidated(), self.env.now());
        (freshness != Freshness::Expired).then_some(&stamped.value)
    }

    /// A clone of the value `get` may serve; a read that finds one counts for eviction.
    fn served(&self, entry: &Entry<V, Mk>) -> Option<V> {
        let value = self.servable(entry).cloned();
        if value.is_some() {
            entry.mark.touch();
        }
        value
    }

    /// Runs `read` on the key's entry, if there is one, under its shard's read lock.
    #[inline]
    fn with_matching<Q, R>(&self, key: &Q, read: impl FnOnce(&Entry<V, Mk>) -> R) -> Option<R>
    where
        Q: KeyMatch<K> + ?Sized,
    {
        let hash = key.hash_by(self.map.hasher()) as usize;
        let shard = self.map.shards()[self.map.determine_shard(hash)].read();
        let (_, entry) = shard.get(hash as u64, |(stored, _)| key.is(stored))?;
        Some(read(entry.get()))
    }

    /// Runs `write` on the key's entry, if there is one, under its shard's write lock.
    fn with_matching_mut<Q, R>(
        &self,
        key: &Q,
        write: impl FnOnce(&mut Entry<V, Mk>) -> R,
    ) -> Option<R>
    where
        Q: KeyMatch<K> + ?Sized,
    {
        let hash = key.hash_by(self.map.hasher()) as usize;
        let mut shard = self.map.shards()[self.map.determine_shard(hash)].write();
        let (_, entry) = shard.get_mut(hash as u64, |(stored, _)| key.is(stored))?;
        Some(write(entry.get_mut()))
    }

    /// [`Cache::get`], by any form of the key.
    fn get_matching<Q: KeyMatch<K> + ?Sized>(&self, key: &Q) -> Option<V> {
        self.with_matching(key, |entry| self.served(entry))?
    }

    /// [`Cache::contains_key`], by any form of the key.
    fn contains_matching<Q: KeyMatch<K> + ?Sized>(&self, key: &Q) -> bool {
        self.with_matching(key, |entry| self.servable(entry).is_some()) == Some(true)
    }

    /// A removal, here only: what `remove` does locally, and what a tier event from
    /// another process does (F6). Retires an idle entry, and only clears the value of
    /// one whose creation is in flight.
    fn remove_here<Q: KeyMatch<K> + ?Sized>(&self, key: &Q) -> Option<V> {
        let hash = key.hash_by(self.map.hasher()) as usize;
        let mut shard = self.map.shards()[self.map.determine_shard(hash)].write();
        let eq = |(stored, _): &(K, _)| key.is(stored);
        let (_, entry) = shard.get_mut(hash as u64, eq)?;
        if !entry.get().try_retire() {
            return entry.get_mut().value.take().map(|s| s.value);
        }
        let (_, entry) = shard.remove_entry(hash as u64, eq)?;
        drop(shard);
        self.entries.fetch_sub(1, Ordering::AcqRel);
        entry.into_inner().value.map(|s| s.value)
    }

    /// A tier event from another process (F6), applied to this process's L1 only.
    fn apply_locally(&self, action: LocalAction<K>) {
        match action {
            LocalAction::Invalidate(key) => {
                self.with_matching_mut(&ByBorrow(&key), invalidate_entry);
            }
            LocalAction::Remove(key) => drop(self.remove_here(&ByBorrow(&key))),
            LocalAction::InvalidateAll => self
                .map
                .iter_mut()
                .for_each(|mut entry| invalidate_entry(&mut entry)),
        }
    }

    /// [`Cache::invalidate`], by any form of the key.
    fn invalidate_matching<Q: KeyLookup<K> + ?Sized>(&self, key: &Q)
    where
        K: 'static,
        V: 'static,
    {
        // F6: the fleet too, also for a key this process holds no copy of.
        if let Some(level) = &self.shared {
            level.invalidate(&key.owned());
        }
        self.with_matching_mut(key, invalidate_entry);
    }

    /// [`Cache::remove`], by any form of the key.
    fn remove_matching<Q: KeyLookup<K> + ?Sized>(&self, key: &Q) -> Option<V>
    where
        K: 'static,
        V: 'static,
    {
        // F6: the fleet too, also for a key this process holds no copy of.
        if let Some(level) = &self.shared {
            level.remove(&key.owned());
        }
        self.remove_here(key)
    }
}

/// The one per-key loop every get-like call goes through: find or insert the key's
/// entry, build its store, run the slot driver, and start over if the slot was retired
/// meanwhile (removed or evicted between our look-up and our claim).
///
/// The full-map policy lives here too: with no room for the key (at capacity, every
/// entry being created), the caller computes its value without storing it, and the
/// call counts as a miss.
///
/// It runs on the cache as [`Slots`], whatever its entry type: this loop, the slot
/// driver and the creators are built once per key and value types, not once per entry
/// type.
async fn call<K, V, L: Lookup<K>, C>(
    this: SlotsHandle<K, V>,
    key: L,
    creator: C,
    how: How,
) -> Result<Served<V>, C::Error>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    C: Creator<KeyStore<L, K, V>>,
{
    let (creator, tier_age) = match this.shared() {
        // The fleet tier runs in place of the creator, once this call holds the
        // key's local claim: the first level of the two-level claim (F3).
        Some(level) => {
            let tier_age = Arc::new(AtomicU64::new(0));
            let blocking = how.waiting == Waiting::Block;
            // The tier names keys as stored: owned.
            let owned = key.to_key();
            // Built only for creators that can detach (background caches): the others
            // never hand a refresh off, and the build leaves this path out (a constant
            // condition).
            let run_elsewhere: RunElsewhere<'_, V, C::Error> = if C::DETACHES {
                let (inner, refresh_key) = (this.clone(), Owned(owned.clone()));
                let refresh_age = tier_age.clone();
                Box::new(move |claim: slot::Claim, moved: Moved<V, C::Error>| {
                    let env = inner.env().clone();
                    let store = EntryStore {
                        control: claim.control().clone(),
                        inner,
                        key: refresh_key,
                        tier_age: Some(refresh_age),
                    };
                    moved.run(claim, store, env);
                })
            } else {
                Box::new(|_, _| {
                    unreachable!("dogpile: internal error: a creator without DETACHES detached")
                })
            };
            let creator = level.creator(owned, creator, tier_age.clone(), blocking, run_elsewhere);
            (creator, Some(tier_age))
        }
        // One creator type either way: the loop and the slot are built once.
        None => (TierCreator::plain(creator), None),
    };
    call_loop(&this, key, creator, how, tier_age).await
}

async fn call_loop<K, V, L: Lookup<K>, C>(
    this: &SlotsHandle<K, V>,
    key: L,
    creator: C,
    how: How,
    tier_age: Option<Arc<AtomicU64>>,
) -> Result<Served<V>, C::Error>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    C: Creator<KeyStore<L, K, V>>,
{
    let mut creator = Some(creator);
    loop {
        let Some(control) = this.control_of(&key) else {
            Counters::bump(&this.env().stats.misses);
            let value = take_creator(&mut creator).start().await?;
            return Ok(Served { value, read: None });
        };
        let store = EntryStore {
            inner: this.clone(),
            key: key.clone(),
            control: control.clone(),
            tier_age: tier_age.clone(),
        };
        let step = slot::drive(&control, &store, this.env(), &mut creator, how).await;
        drop(control);
        store.release();
        match step {
            Step::Done(Err(error)) => {
                this.forget_if_empty(&key);
                return Err(error);
            }
            Step::Done(Ok(served)) => return Ok(served),
            Step::Retired => continue,
        }
    }
}

/// [`call`] for the blocking entry points: never pending (see [`slot::run_blocking`]).
fn call_served<K, V, L: Lookup<K>, C>(
    this: SlotsHandle<K, V>,
    key: L,
    creator: C,
    how: How,
) -> Result<Served<V>, C::Error>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    C: Creator<KeyStore<L, K, V>>,
{
    slot::run_blocking(call(this, key, creator, how))
}

fn call_blocking<K, V, L: Lookup<K>, C>(
    this: SlotsHandle<K, V>,
    key: L,
    creator: C,
    how: How,
) -> Result<V, C::Error>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    C: Creator<KeyStore<L, K, V>>,
{
    call_served(this, key, creator, how).map(|served| served.value)
}

/// A cache as its slow path holds it. A type with no lifetime of its own: an async
/// caller's future holds it, and a trait object's lifetime there would fail the
/// future's `Send` check.
#[derive(Clone)]
pub(crate) struct SlotsHandle<K, V>(Arc<dyn Slots<K, V>>);

impl<K, V> Deref for SlotsHandle<K, V> {
    type Target = dyn Slots<K, V>;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

/// A cache as the slow path sees it: its entries reached by key, their eviction mark
/// (the one thing that differs between a bounded and an unbounded cache's entries)
/// left to the implementation.
pub(crate) trait Slots<K, V>: Send + Sync {
    fn env(&self) -> &Env;

    fn shared(&self) -> Option<&SharedLevel<K, V>>;

    /// See `Inner::control_for`.
    fn control_of(&self, key: &dyn KeyLookup<K>) -> Option<Arc<Control>>;

    /// See `Inner::drop_if_empty`.
    fn forget_if_empty(&self, key: &dyn KeyLookup<K>);

    /// The key's value while its entry still belongs to `control`'s slot.
    fn load_owned(&self, key: &dyn KeyLookup<K>, control: &Arc<Control>) -> Option<Stamped<V>>;

    /// Stores `stamped` while the key's entry still belongs to `control`'s slot; `held`:
    /// another process's stale value, held only if no notification came since (F3).
    fn publish_owned(
        &self,
        key: &dyn KeyLookup<K>,
        control: &Arc<Control>,
        stamped: Stamped<V>,
        held: bool,
    );

    /// Detaches `control` from the key's entry if nobody else holds it.
    fn release_control(&self, key: &dyn KeyLookup<K>, control: &Arc<Control>);
}

impl<K, V, Mk: Marking> Slots<K, V> for Inner<K, V, Mk>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn env(&self) -> &Env {
        &self.env
    }

    fn shared(&self) -> Option<&SharedLevel<K, V>> {
        self.shared.as_ref()
    }

    fn control_of(&self, key: &dyn KeyLookup<K>) -> Option<Arc<Control>> {
        self.control_for(&key)
    }

    fn forget_if_empty(&self, key: &dyn KeyLookup<K>) {
        self.drop_if_empty(&key);
    }

    fn load_owned(&self, key: &dyn KeyLookup<K>, control: &Arc<Control>) -> Option<Stamped<V>> {
        let current = |entry: &Entry<V, Mk>| owns(control, entry).then(|| entry.value.clone());
        key.with_entry(self, current).flatten().flatten()
    }

    fn publish_owned(
        &self,
        key: &dyn KeyLookup<K>,
        control: &Arc<Control>,
        mut stamped: Stamped<V>,
        held: bool,
    ) {
        key.with_entry_mut(self, |entry| {
            if owns(control, entry) {
                // F3: another process's stale value is held only if no notification
                // for the key came since the claim; else the next call asks again.
                let still_held =
                    |level: &SharedLevel<K, V>| key.with_key(|key| level.still_held(key));
                if held && !self.shared.as_ref().is_some_and(still_held) {
                    stamped.invalidate();
                }
                entry.value = Some(stamped);
            }
        });
    }

    fn release_control(&self, key: &dyn KeyLookup<K>, control: &Arc<Control>) {
        key.with_entry_mut(self, |entry| {
            // Two holders: the entry and the releasing store.
            if owns(control, entry) && Arc::strong_count(control) == 2 {
                entry.control = None;
            }
        });
    }
}

/// A bounded cache's calls, which reach its [`Inner`] through `dyn` (see [`Core`]).
/// Keys come as `dyn` too: each call is built once per key and value types, not once
/// per caller's key form.
pub(crate) trait BoundedCore<K, V>: Slots<K, V> {
    fn hit(&self, key: &dyn KeyLookup<K>) -> Option<V>;
    fn read_hit(&self, key: &dyn KeyLookup<K>) -> Option<Served<V>>;
    fn get(&self, key: &dyn KeyMatch<K>) -> Option<V>;
    fn contains(&self, key: &dyn KeyMatch<K>) -> bool;
    fn insert(self: Arc<Self>, key: K, value: V);
    fn invalidate(&self, key: &dyn KeyLookup<K>);
    fn invalidate_all(&self);
    fn remove(&self, key: &dyn KeyLookup<K>) -> Option<V>;
    fn clear(&self);
    fn len(&self) -> usize;
    fn capacity(&self) -> Option<usize>;
    fn executor(&self) -> &Executor;
    fn into_slots(self: Arc<Self>) -> SlotsHandle<K, V>;
    /// How many entries hold a control (tests: idle entries hold none).
    #[cfg(all(test, not(loom)))]
    fn attached(&self) -> usize;
}

/// Builds a bounded cache's core. Named only by [`CacheBuilder::capacity`], so that the
/// bounded entry layout is built only for the types of caches given a capacity.
pub(crate) type BoundedConstructor<K, V> = fn(Settings) -> Arc<dyn BoundedCore<K, V>>;

/// The constructor of a bounded cache of these types, for [`CacheBuilder::capacity`].
pub(crate) fn bounded_constructor<K, V>() -> BoundedConstructor<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    |settings| Inner::<K, V, Mark>::new(settings)
}

impl<K, V> BoundedCore<K, V> for Inner<K, V, Mark>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn hit(&self, key: &dyn KeyLookup<K>) -> Option<V> {
        Inner::hit(self, &key)
    }
    fn read_hit(&self, key: &dyn KeyLookup<K>) -> Option<Served<V>> {
        Inner::read_hit(self, &key)
    }
    fn get(&self, key: &dyn KeyMatch<K>) -> Option<V> {
        self.get_matching(key)
    }
    fn contains(&self, key: &dyn KeyMatch<K>) -> bool {
        self.contains_matching(key)
    }
    fn insert(self: Arc<Self>, key: K, value: V) {
        Inner::insert(&self, key, value);
    }
    fn invalidate(&self, key: &dyn KeyLookup<K>) {
        self.invalidate_matching(key);
    }
    fn invalidate_all(&self) {
        Inner::invalidate_all(self);
    }
    fn remove(&self, key: &dyn KeyLookup<K>) -> Option<V> {
        self.remove_matching(key)
    }
    fn clear(&self) {
        Inner::clear(self);
    }
    fn len(&self) -> usize {
        self.map.len()
    }
    fn capacity(&self) -> Option<usize> {
        self.capacity
    }
    fn executor(&self) -> &Executor {
        &self.executor
    }
    fn into_slots(self: Arc<Self>) -> SlotsHandle<K, V> {
        SlotsHandle(self)
    }
    #[cfg(all(test, not(loom)))]
    fn attached(&self) -> usize {
        Inner::attached(self)
    }
}

impl<K, V, Mk: Marking> Inner<K, V, Mk>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// This cache, as the slow path runs on it.
    fn slots(self: &Arc<Self>) -> SlotsHandle<K, V> {
        SlotsHandle(self.clone())
    }

    /// After a failed first creation the key's entry holds no value: drop it, so that
    /// `len` counts values and failing keys don't pile up. A waiter that already took
    /// over keeps it (its claim makes retiring fail); one still waiting starts over.
    fn drop_if_empty(&self, key: &impl Lookup<K>) {
        if key.remove_if(self, |entry| entry.value.is_none() && entry.try_retire()) {
            self.entries.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// The control of `key`'s slot, inserting an empty entry for a new key. `None`
    /// when the cache is at capacity and nothing can be evicted.
    fn control_for(&self, key: &impl Lookup<K>) -> Option<Arc<Control>> {
        let found = key.with_entry(self, |entry| {
            entry.mark.touch(); // a stale hit counts for eviction as a fresh one
            entry.control.clone()
        });
        if let Some(Some(control)) = found {
            return Some(control);
        }
        if let Some(control) = key.with_entry_mut(self, |entry| entry.attach(self.sync_readers)) {
            return Some(control);
        }
        if !self.reserve_place() {
            return None;
        }
        // A new entry: the one place a call by a borrowed key builds the owned key.
        let key = &key.to_key();
        let mut admitted = None;
        let control = self
            .map
            .entry(key.clone())
            .or_insert_with(|| {
                let mark = Mk::issue(self.evictor.as_ref());
                admitted = Some(mark.mark().map_or(0, Mark::ticket));
                Entry {
                    value: None,
                    control: None,
                    mark,
                }
            })
            .attach(self.sync_readers);
        if let Some(ticket) = admitted {
            // Not even built for an unbounded cache's entries.
            if Mk::BOUNDED {
                if let Some(evictor) = &self.evictor {
                    let hash = self.map.hash_usize(key) as u64;
                    evictor.admit(key.clone(), ticket, hash, self);
                }
            }
            self.after_admission();
        } else {
            self.entries.fetch_sub(1, Ordering::AcqRel);
        }
        Some(control)
    }

    /// Counts a new entry in, evicting first if the cache is full.
    fn reserve_place(&self) -> bool {
        // An unbounded cache's entries: no capacity, and no eviction code built.
        if !Mk::BOUNDED {
            self.entries.fetch_add(1, Ordering::AcqRel);
            return true;
        }
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

    /// Evicts one entry as the policy picks it (see `evict.rs`); false if nothing could
    /// be evicted because every entry is being created.
    fn evict_for_room(&self, capacity: usize) -> bool {
        let _sweep = self.sweeping.lock();
        if self.entries.load(Ordering::Acquire) < capacity {
            return true; // another thread made room while we waited for the sweep
        }
        let Some(evictor) = &self.evictor else {
            return false;
        };
        let evicted = evictor.evict_one(self, |key| self.map.hash_usize(key) as u64);
        self.note_evictions(usize::from(evicted));
        crate::trace::evicted(&self.env.name, usize::from(evicted), "capacity");
        evicted
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
                Some(stamped) => now.saturating_sub(stamped.created()) >= horizon,
                None => is_abandoned(entry),
            };
            let victim = expired && entry.try_retire();
            evicted += usize::from(victim);
            !victim
        });
        self.note_evictions(evicted);
        crate::trace::evicted(&self.env.name, evicted, "expired");
    }

    fn note_evictions(&self, evicted: usize) {
        self.entries.fetch_sub(evicted, Ordering::AcqRel);
        self.env
            .stats
            .evictions
            .fetch_add(evicted as u64, Ordering::Relaxed);
    }
}

/// The bodies of [`Cache`]'s calls that are not hits, for either entry type.
impl<K, V, Mk: Marking> Inner<K, V, Mk>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn new(settings: Settings) -> Arc<Self> {
        Arc::new_cyclic(|this: &Weak<Self>| Inner {
            shared: settings.shared.map(|setting| {
                let setting = setting
                    .downcast::<TierSetting<K, V>>()
                    .expect("the builder keeps a tier of its own key and value types");
                let this = this.clone();
                let ttl = Duration::from_nanos(settings.env.policy.ttl);
                let max_stale = settings.env.policy.max_stale.map(Duration::from_nanos);
                setting.bind(
                    ttl,
                    max_stale,
                    Box::new(move |action| {
                        if let Some(inner) = this.upgrade() {
                            inner.apply_locally(action);
                        }
                    }),
                )
            }),
            map: DashMap::with_hasher(Hasher::default()),
            env: settings.env,
            capacity: settings.capacity,
            evictor: settings.capacity.map(Evictor::new),
            sync_readers: settings.sync_readers,
            executor: settings.executor,
            entries: AtomicUsize::new(0),
            admitted_since_sweep: AtomicUsize::new(0),
            sweeping: parking_lot::Mutex::new(()),
        })
    }

    fn insert(self: &Arc<Self>, key: K, value: V) {
        let key = Owned(key);
        let Some(control) = self.control_for(&key) else {
            return; // full of entries being created: nothing can make room now
        };
        let store = EntryStore {
            inner: self.slots(),
            key,
            control: control.clone(),
            tier_age: None,
        };
        let now = self.env.now();
        match control.fence() {
            Some(fence) => {
                fence.write();
                store.publish(value, now);
                fence.release_write();
            }
            None => store.publish(value, now),
        }
        drop(control);
        store.release();
    }

    fn invalidate_all(&self) {
        self.map
            .iter_mut()
            .for_each(|mut entry| invalidate_entry(&mut entry));
    }

    fn clear(&self) {
        // Under the sweep lock: an eviction racing the clear would otherwise count the
        // entries it removes before they are subtracted, find only busy entries left,
        // and compute a new key's value outside its slot.
        let _sweep = self.sweeping.lock();
        let mut removed = 0;
        self.map.retain(|_, entry| {
            if entry.try_retire() {
                removed += 1;
                false
            } else {
                entry.value = None;
                true
            }
        });
        self.entries.fetch_sub(removed, Ordering::AcqRel);
    }

    /// How many entries hold a control (tests: idle entries hold none).
    #[cfg(all(test, not(loom)))]
    fn attached(&self) -> usize {
        self.map
            .iter()
            .filter(|entry| entry.control.is_some())
            .count()
    }
}

/// An entry without a value that no caller is using: a failed or removed creation's
/// leftover. Callers reach a control only through the map under a shard lock, and the
/// sweeps run under the shard's write lock, so a count of one is stable there.
fn is_abandoned<V, Mk>(entry: &Entry<V, Mk>) -> bool {
    entry.value.is_none()
        && entry
            .control
            .as_ref()
            .is_none_or(|control| Arc::strong_count(control) == 1)
}

impl<K, V, Mk: Marking> Entries<K> for Inner<K, V, Mk>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn visit(&self, key: &K, ticket: u32, decide: impl FnOnce(Candidate<'_>) -> bool) -> Visit {
        let now = self.env.now();
        let mut visit = Visit::Gone;
        // Dropped after the shard lock is released.
        let _evicted = self.map.remove_if(key, |_, entry| {
            let Some(mark) = entry.mark.mark().filter(|mark| mark.ticket() == ticket) else {
                return false;
            };
            let worthless = match &entry.value {
                Some(s) => {
                    self.env.policy.classify(s.created(), s.invalidated(), now)
                        == Freshness::Expired
                }
                None => is_abandoned(entry),
            };
            visit = if !decide(Candidate { mark, worthless }) {
                Visit::Kept
            } else if entry.try_retire() {
                Visit::Evicted
            } else {
                Visit::Busy
            };
            visit == Visit::Evicted
        });
        visit
    }
}

/// One key's value inside the map, seen by its slot. Reads and writes only touch the
/// entry while it still belongs to this slot's control.
#[derive(Clone)]
pub(crate) struct EntryStore<I, K> {
    inner: I,
    key: K,
    control: Arc<Control>,
    /// With a fleet tier: the age (nanoseconds) of the value the creator took from the
    /// tier, so that L1 stamps it with the tier's age (F4), not as created now.
    tier_age: Option<Arc<AtomicU64>>,
}

impl<L, K, V> Store for EntryStore<SlotsHandle<K, V>, L>
where
    // No `'static` here: async callers hold this store across awaits, and a lifetime
    // bound would make their futures fail `Send` for borrowed keys like `&'static str`.
    L: Lookup<K>,
    V: Clone,
{
    type Value = V;

    fn load(&self) -> Option<Stamped<V>> {
        self.inner.load_owned(&self.key, &self.control)
    }

    fn publish(&self, value: V, created: u64) {
        let raw = self
            .tier_age
            .as_ref()
            .map_or(0, |age| age.swap(0, Ordering::Relaxed));
        let (age, held) = (raw & !HELD, raw & HELD != 0);
        let mut stamped = Stamped::new(value, created.saturating_sub(age));
        // An age from the tier may reach back before this process's clock began: a
        // value already stale by it is marked so, whatever `created` could say.
        if age >= self.inner.env().policy.ttl {
            stamped.invalidate();
        }
        self.inner
            .publish_owned(&self.key, &self.control, stamped, held);
    }

    /// Detaches the control from the entry if nobody else holds it: no claim, no
    /// waiter, no read guard. Callers reach a control only through the map under a
    /// shard lock, so the count is stable under the shard's write lock there.
    fn release(self) {
        self.inner.release_control(&self.key, &self.control);
    }
}

/// Whether the entry still belongs to `control`'s slot (it was not removed and
/// replaced meanwhile).
fn owns<V, Mk>(control: &Arc<Control>, entry: &Entry<V, Mk>) -> bool {
    entry
        .control
        .as_ref()
        .is_some_and(|c| Arc::ptr_eq(c, control))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::ManualClock;

    fn attached<K, V, M>(cache: &Cache<K, V, M>) -> usize
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        match &cache.inner {
            Core::Unbounded(inner) => inner.attached(),
            Core::Bounded(inner) => inner.attached(),
        }
    }

    /// An idle entry holds no control (no allocation besides its bucket): one is
    /// attached while a call uses the slot and detached by the last call to leave.
    #[test]
    fn idle_entries_hold_no_control() {
        let clock = ManualClock::new();
        let cache: Cache<u32, u32> = Cache::builder()
            .ttl(Duration::from_secs(1))
            .clock(clock.clone())
            .build();
        for key in 0..100 {
            cache.get_with(key, || key);
        }
        cache.insert(100, 100);
        assert_eq!(
            (cache.len(), attached(&cache)),
            (101, 0),
            "after cold misses"
        );
        clock.advance(Duration::from_secs(1));
        for key in 0..100 {
            assert_eq!(cache.get_with(key, || key + 1), key + 1);
        }
        let _ = cache.try_get_with(1000, || Err::<u32, _>("down"));
        assert_eq!(attached(&cache), 0, "after refreshes and a failure");

        let background: Cache<u32, u32, Background> = Cache::builder()
            .ttl(Duration::from_secs(1))
            .clock(clock.clone())
            .background_refresh()
            .refresh_executor(RefreshTask::run)
            .build();
        background.get_with(1, || 1);
        clock.advance(Duration::from_secs(1));
        // This executor runs the refresh inside the claimant's call: whichever store
        // leaves last, the task's or the claimant's, detaches.
        assert_eq!(background.get_with(1, || 2), 1);
        assert_eq!(background.get(&1), Some(2));
        assert_eq!(attached(&background), 0, "after a background refresh");
    }
}
