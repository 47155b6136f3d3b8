//! [`Cache`]: a dogpile slot per key, on a [`DashMap`](dashmap::DashMap).
//!
//! Each public method here is its docs and a forward to [`Core`], where each mode's calls
//! are written once; [`EntryRef`] forwards to the same `Core` by a borrowed key.
//!
//! - `modes.rs`: the `Background` and `SyncReaders` calls; `access.rs`: every mode's
//!   reads, writes and invalidation (this file: the `Inline` calls and batches);
//! - `dispatch.rs`: [`Core`], the state behind both surfaces, and the mode-specific calls;
//! - `store.rs`: the entries, the hit path, `get` / `invalidate` / `remove` / `clear`;
//! - `table.rs`: `Table`, the map as the slow path reaches it, built
//!   once per value type; `slots.rs`: a key's entry on it, admission and eviction,
//!   built once per key type;
//! - `call.rs`: the per-key loop every get-like call goes through;
//! - `erased.rs`: the blocking calls' slow path, its value type erased;
//! - `any.rs`: values and errors behind `dyn` for it, and its creator behind a tier;
//! - `batch/`: `get_many_with` and its kin, many keys with one creator call;
//! - `bounded.rs`: the bounded layout (the policy itself is `evict.rs`);
//! - `lookup.rs`: `KeyForm`, the one trait a key is looked up by, and its forms;
//! - `builder.rs`: [`CacheBuilder`] and [`BuildError`].

mod access;
mod any;
mod batch;
mod bounded;
mod builder;
mod call;
mod dispatch;
mod entry;
mod erased;
mod lookup;
mod modes;
mod slots;
mod store;
mod table;
#[cfg(all(test, not(loom)))]
mod tests;

pub use builder::{BuildError, CacheBuilder};
pub use entry::EntryRef;

use crate::mode::{Inline, Mode};
use dispatch::Core;
use lookup::Owned;
use std::convert::Infallible;
use std::fmt;
#[cfg(not(loom))]
use std::future::Future;
use std::hash::Hash;
use std::marker::PhantomData;
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
/// [`Inline`] (the default), [`Background`](crate::mode::Background) (R10) or [`SyncReaders`](crate::mode::SyncReaders) (R8). Each mode
/// has the same four names, `get_with`, `try_get_with`, `get_with_async` and
/// `try_get_with_async` (no async ones in `SyncReaders`); the mode decides the creator's
/// bounds and what they return. [`entry_by_ref`](Cache::entry_by_ref) offers the same
/// calls by a borrowed form of the key.
///
/// # Batches
///
/// [`get_many_with`](Cache::get_many_with), `try_get_many_with` and their async forms
/// answer many keys in one call, with one creator call for every key that needs a value
/// (a `WHERE id IN (..)`, a GraphQL loader, a multi-get), keeping every per-key rule.
/// [`Inline`] and [`Background`](crate::mode::Background) caches have them. A [`SyncReaders`](crate::mode::SyncReaders) cache has none:
/// its answer would be one read guard per key, held together, so that publishing any of
/// those keys would wait for the whole batch's readers, and two callers holding guards
/// from overlapping batches could each wait for the other's publish (R8).
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
/// smaller. A bounded cache's calls reach its entries through one dynamic call, so that a
/// crate that gives no cache of some key and value types a capacity does not compile the
/// bounded layout's code for them.
/// Entries whose creation is in flight are never evicted. If none can be evicted (every
/// entry is being created), the new key's value is computed by its caller and returned without
/// being stored, and the call counts as a miss; in [`SyncReaders`](crate::mode::SyncReaders) mode its guard then
/// holds no lock, since nothing can publish over an unstored value.
///
/// Without a capacity, the cache still reclaims values nobody has refreshed for a long
/// time: each time the keys admitted since the last sweep are as many as the entries
/// there were before them (and at least 1024), entries past their lifetime by more than
/// `stale_while_revalidate` (and `stale_if_error`), or by `15 × ttl` without it, are
/// dropped. Both sweeps cost amortized O(1) per new key.
pub struct Cache<K, V, M = Inline> {
    core: Core<K, V>,
    _mode: PhantomData<fn() -> M>,
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
        infallible(self.core.get_inline(Owned(key), create))
    }

    /// [`get_with`](Cache::get_with) with a fallible creator: an `Err` reaches the caller
    /// whose creator returned it and, as a clone, the callers that waited for that
    /// creation (R1); nothing is stored (within
    /// [`stale_if_error`](CacheBuilder::stale_if_error), a failed refresh returns the
    /// stale value instead, R5).
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
        self.core.try_get_inline(Owned(key), create)
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
            self.core
                .try_get_inline_async(Owned(key), async { Ok(create.await) })
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
        self.core.try_get_inline_async(Owned(key), create).await
    }
    /// The values for many keys at once, in the order of `keys` (duplicates welcome):
    /// every rule of [`get_with`](Cache::get_with) holds for each key, and `create` is
    /// called once for all the keys that need a value from this call.
    ///
    /// `create` is given each key this call claimed once, in first-seen order: the cold
    /// keys, and the stale keys whose refresh it claimed. It returns one value per key,
    /// in that order. Fresh keys are served at once, and so are stale keys that another
    /// caller is refreshing (R3); a cold key that another caller is creating, alone or in
    /// its own batch, is waited for and never created twice. With
    /// [`max_batch(n)`](CacheBuilder::max_batch), a call that claims more than `n` keys
    /// calls `create` several times, `n` keys at a time; hence `FnMut`.
    ///
    /// The call waits only once the values it creates are published and their keys
    /// released: two batches over overlapping keys never wait for each other, and
    /// `create` may call the cache for other keys (R9). With
    /// [`wait_at_most(limit)`](CacheBuilder::wait_at_most), its waits last `limit` at
    /// most for all its keys together; then `create` is called for the keys still in
    /// creation elsewhere, beside their creators.
    ///
    /// Stats count each key of `keys` as one call, except that a repeated key that is not
    /// a fresh hit counts once.
    ///
    /// With a [shared tier](CacheBuilder::shared), the keys of each creator call are
    /// claimed in the tier together
    /// ([`SharedTier::claim_many`](crate::SharedTier::claim_many)): the keys it has a
    /// value for are served from it (F1, F4), `create` is called once for the keys
    /// whose lease this call got, their values are published together
    /// ([`SharedTier::publish_many`](crate::SharedTier::publish_many), each under its
    /// own lease, F5), and a failed call releases all its leases at once
    /// ([`SharedTier::release_many`](crate::SharedTier::release_many), F8). The cold
    /// keys another process is creating are waited for (F2), each bounded by its own
    /// lease, with one claim of them all again after each notification or recheck: the
    /// tier's round trips are a few per batch, not one per key (`dogpile-redis` takes
    /// each step in one script per Redis node).
    ///
    /// # Panics
    ///
    /// If `create` returns a number of values other than the number of keys it was
    /// given (the message names both), if it panics (then, as for a single key, every
    /// key it was creating is released, and callers waiting for them share the panic,
    /// R1), or if it asks for one of the keys it is creating (R9).
    ///
    /// ```
    /// let users = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// users.get_with(2, || "two".to_string());
    /// let mut asked = Vec::new();
    /// let names = users.get_many_with(&[1, 2, 3, 1], |ids| {
    ///     asked.extend_from_slice(ids); // one `SELECT .. WHERE id IN (1, 3)`
    ///     ids.iter().map(|id| format!("user {id}")).collect()
    /// });
    /// assert_eq!(names, ["user 1", "two", "user 3", "user 1"]);
    /// assert_eq!(asked, [1, 3]);
    /// ```
    pub fn get_many_with(&self, keys: &[K], mut create: impl FnMut(&[K]) -> Vec<V>) -> Vec<V> {
        infallible(self.core.try_get_many_inline(keys, |keys| Ok(create(keys))))
    }

    /// [`get_many_with`](Cache::get_many_with) with a fallible creator. An `Err` stores
    /// nothing and reaches this call and every caller waiting for a key of that creator
    /// call (R1); a later creator call of the same batch (see `max_batch`) is not made.
    /// With [`stale_if_error`](CacheBuilder::stale_if_error), a failed creator call whose
    /// keys were all stale serves their stale values instead (R5).
    ///
    /// ```
    /// let cache = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// assert_eq!(cache.try_get_many_with(&[1, 2], |_| Err::<Vec<u8>, _>("down")), Err("down"));
    /// assert_eq!(cache.try_get_many_with(&[1, 2], |ids| Ok::<_, &str>(ids.to_vec())), Ok(vec![1, 2]));
    /// ```
    pub fn try_get_many_with<E: Clone + Send + 'static>(
        &self,
        keys: &[K],
        create: impl FnMut(&[K]) -> Result<Vec<V>, E>,
    ) -> Result<Vec<V>, E> {
        self.core.try_get_many_inline(keys, create)
    }

    /// [`get_many_with`](Cache::get_many_with) for async callers: waiting never blocks a
    /// thread. `create` is given the keys owned, so that its future may hold them
    /// across awaits.
    ///
    /// ```
    /// # block_on(async {
    /// let cache = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// let values = cache.get_many_with_async(&[1, 2], |ids: Vec<u32>| async move {
    ///     ids.iter().map(|id| id * 10).collect()
    /// });
    /// assert_eq!(values.await, [10, 20]);
    /// # });
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v } }
    /// # }
    /// ```
    #[cfg(not(loom))]
    pub async fn get_many_with_async<Fut: Future<Output = Vec<V>>>(
        &self,
        keys: &[K],
        mut create: impl FnMut(Vec<K>) -> Fut,
    ) -> Vec<V> {
        let create = |keys| {
            let values = create(keys);
            async { Ok(values.await) }
        };
        infallible(self.core.try_get_many_inline_async(keys, create).await)
    }

    /// [`try_get_many_with`](Cache::try_get_many_with) for async callers.
    ///
    /// ```
    /// # block_on(async {
    /// let cache = dogpile::Cache::<u8, u8>::new(std::time::Duration::from_secs(60));
    /// let values = cache.try_get_many_with_async(&[1], |_| async { Err("down") });
    /// assert_eq!(values.await, Err("down"));
    /// # });
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v } }
    /// # }
    /// ```
    #[cfg(not(loom))]
    pub async fn try_get_many_with_async<E, Fut>(
        &self,
        keys: &[K],
        create: impl FnMut(Vec<K>) -> Fut,
    ) -> Result<Vec<V>, E>
    where
        E: Clone + Send + 'static,
        Fut: Future<Output = Result<Vec<V>, E>>,
    {
        self.core.try_get_many_inline_async(keys, create).await
    }
}

impl<K, V, M> CacheBuilder<K, V, M>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    M: Mode,
{
    /// The cache, or why these settings make no sense.
    ///
    /// ```
    /// use dogpile::{BuildError, Cache};
    /// use std::time::Duration;
    ///
    /// let zero = Cache::<u8, u8>::builder().ttl(Duration::ZERO).try_build();
    /// assert_eq!(zero.err(), Some(BuildError::ZeroTtl));
    /// ```
    pub fn try_build(self) -> Result<Cache<K, V, M>, BuildError> {
        self.settings().map(|settings| Cache {
            core: Core::new(settings),
            _mode: PhantomData,
        })
    }

    /// The cache.
    ///
    /// # Panics
    ///
    /// With a message naming the problem if the settings make no sense: no ttl, a zero
    /// ttl, capacity 0, a `retry_backoff` whose base is zero or above its cap, or a zero
    /// `wait_at_most`. [`try_build`](CacheBuilder::try_build)
    /// returns these as a [`BuildError`].
    ///
    /// ```should_panic
    /// // panics: "dogpile: ttl must be greater than zero ..."
    /// dogpile::Cache::<u8, u8>::builder().ttl(std::time::Duration::ZERO).build();
    /// ```
    pub fn build(self) -> Cache<K, V, M> {
        match self.try_build() {
            Ok(cache) => cache,
            Err(error) => builder::refused(error),
        }
    }
}

impl<K, V, M> Clone for Cache<K, V, M> {
    /// Another handle to the same cache.
    fn clone(&self) -> Self {
        Cache {
            core: self.core.clone(),
            _mode: PhantomData,
        }
    }
}

impl<K: Hash + Eq, V, M> fmt::Debug for Cache<K, V, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env = self.core.env();
        f.debug_struct("Cache")
            .field("name", &env.name)
            .field("ttl", &Duration::from_nanos(env.policy.ttl))
            .field("capacity", &self.core.capacity())
            .field("mode", &std::any::type_name::<M>())
            .field("entries", &self.core.len())
            .finish_non_exhaustive()
    }
}
