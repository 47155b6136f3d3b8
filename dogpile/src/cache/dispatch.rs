//! [`Core`]: a cache's state behind its public surfaces, and the one place where each
//! mode's get-like calls are written. `Cache` and `EntryRef` forward to it.

use super::any::AnyValue;
use super::bounded::BoundedCore;
use super::call::{call, call_blocking, SlotsHandle};
use super::erased;
use super::lookup::{Hasher, KeyForm, Owned};
use super::store::{Inner, Settings};
use super::table::Table;
use crate::evict::Unmarked;
use crate::executor::Executor;
use crate::slot::{take_creator, Env, How, InCall, Pooled, Served};
use crate::sync_reader::{Held, ReadGuard};
use std::borrow::Borrow;
use std::convert::Infallible;
#[cfg(not(loom))]
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

/// A cache's state, typed by what its entries carry for eviction. An unbounded cache's
/// entries carry only their value and control (8 bytes less per entry, whose map bucket
/// is then 24 bytes for a `u64` value), since nothing would read a mark there; its calls
/// reach its [`Inner`] directly, the hit path inlined. A bounded cache's entries carry
/// S3-FIFO's mark, and its calls reach its `Inner` through `dyn` [`BoundedCore`]: the
/// code of that second entry layout (every map routine, once more) is then built only
/// for the key and value types of caches given a capacity, which is where
/// `CacheBuilder::capacity` names its constructor.
pub(crate) enum Core<K, V> {
    Unbounded(Arc<Inner<K, V, Unmarked>>),
    Bounded(Arc<dyn BoundedCore<K, V>>),
}

impl<K, V> Clone for Core<K, V> {
    fn clone(&self) -> Self {
        match self {
            Core::Unbounded(inner) => Core::Unbounded(inner.clone()),
            Core::Bounded(inner) => Core::Bounded(inner.clone()),
        }
    }
}

impl<K, V> Core<K, V> {
    pub(crate) fn env(&self) -> &Env {
        match self {
            Core::Unbounded(inner) => &inner.env,
            Core::Bounded(inner) => inner.env(),
        }
    }

    pub(crate) fn len(&self) -> usize
    where
        K: Hash + Eq,
    {
        match self {
            Core::Unbounded(inner) => inner.map.len(),
            Core::Bounded(inner) => inner.len(),
        }
    }

    pub(crate) fn capacity(&self) -> Option<usize> {
        match self {
            Core::Unbounded(_) => None,
            Core::Bounded(inner) => inner.capacity(),
        }
    }
}

impl<K, V> Core<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The cache's state: unbounded, or built by the bounded constructor that
    /// `CacheBuilder::capacity` named.
    pub(crate) fn new(mut settings: Settings) -> Self {
        match settings.bounded.take() {
            None => Core::Unbounded(Inner::new(settings, None)),
            Some(constructor) => {
                let mut core: Option<Arc<dyn BoundedCore<K, V>>> = None;
                constructor(settings, &mut core);
                match core {
                    Some(core) => Core::Bounded(core),
                    None => unreachable!("dogpile: internal error: no bounded cache built"),
                }
            }
        }
    }

    /// The calls of an `Inline` cache: the hit path, else the per-key loop with the
    /// creator run in this call.
    #[inline]
    pub(crate) fn try_get_inline<E: Clone + Send + 'static>(
        &self,
        key: impl KeyForm<K> + Clone,
        create: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        self.inline_by(key, create, erased::run::<E>)
    }

    /// [`try_get_inline`](Core::try_get_inline) of a creator that cannot fail, whose
    /// slow path is built once, in this crate (see [`erased::run_infallible`]).
    #[inline]
    pub(crate) fn get_inline(
        &self,
        key: impl KeyForm<K> + Clone,
        create: impl FnOnce() -> V,
    ) -> Result<V, Infallible> {
        self.inline_by(key, || Ok(create()), erased::run_infallible)
    }

    #[inline]
    fn inline_by<E: Clone + Send + 'static>(
        &self,
        key: impl KeyForm<K> + Clone,
        create: impl FnOnce() -> Result<V, E>,
        run: erased::Run<E>,
    ) -> Result<V, E> {
        if let Some(value) = self.hit(&key) {
            return Ok(value);
        }
        self.inline_miss(key, create, run)
    }

    /// The slow path of [`inline_by`](Core::inline_by). Out of line, so that a hit builds
    /// nothing for it (the creator is moved here only on a miss); the creator goes behind
    /// `dyn` from here on, so that the slow path is built once per value and error
    /// types, whatever the creator.
    #[inline(never)]
    fn inline_miss<E: Clone + Send + 'static>(
        &self,
        key: impl KeyForm<K> + Clone,
        create: impl FnOnce() -> Result<V, E>,
        run: erased::Run<E>,
    ) -> Result<V, E> {
        let mut create = Some(create);
        let mut create = || take_creator(&mut create)();
        let served = erased::call_blocking(self.table(), &key, &mut create, How::BLOCK, run);
        served.map(|served| served.value)
    }

    #[cfg(not(loom))]
    pub(crate) async fn try_get_inline_async<E: Clone + Send + 'static>(
        &self,
        key: impl KeyForm<K> + Clone,
        create: impl Future<Output = Result<V, E>>,
    ) -> Result<V, E> {
        if let Some(value) = self.hit(&key) {
            return Ok(value);
        }
        // Boxed: the slow path's state (claim, listener, store) would otherwise make
        // every caller's future several times larger, and a hit pays to move it.
        let call = call(self.slots(), key, InCall(create), How::AWAIT);
        Box::pin(call).await.map(|served| served.value)
    }

    /// The calls of a `Background` cache: a stale key's refresh goes to the executor.
    #[inline]
    pub(crate) fn try_get_background<E: Clone + Send + 'static>(
        &self,
        key: impl KeyForm<K> + Clone,
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
        key: impl KeyForm<K> + Clone,
        create: impl Future<Output = Result<V, E>> + Send + 'static,
    ) -> Result<V, E> {
        if let Some(value) = self.hit(&key) {
            return Ok(value);
        }
        // A refresh spawned on the runtime owns its key.
        let key = Owned(key.into_key());
        #[cfg(feature = "tokio")]
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let creator = crate::slot::Spawned::new(create, runtime);
            let call = call(self.slots(), key, creator, How::AWAIT);
            return Box::pin(call).await.map(|served| served.value);
        }
        let call = call(self.slots(), key, InCall(create), How::AWAIT);
        Box::pin(call).await.map(|served| served.value)
    }

    /// The calls of a `SyncReaders` cache: the value under a read guard (R8).
    pub(crate) fn try_get_guarded<E: Clone + Send + 'static>(
        &self,
        key: impl KeyForm<K> + Clone,
        create: impl FnOnce() -> Result<V, E>,
    ) -> Result<ReadGuard<V>, E> {
        self.guarded_by(key, create, erased::run::<E>)
    }

    /// [`try_get_guarded`](Core::try_get_guarded) of a creator that cannot fail.
    pub(crate) fn get_guarded(
        &self,
        key: impl KeyForm<K> + Clone,
        create: impl FnOnce() -> V,
    ) -> Result<ReadGuard<V>, Infallible> {
        self.guarded_by(key, || Ok(create()), erased::run_infallible)
    }

    fn guarded_by<E: Clone + Send + 'static>(
        &self,
        key: impl KeyForm<K> + Clone,
        create: impl FnOnce() -> Result<V, E>,
        run: erased::Run<E>,
    ) -> Result<ReadGuard<V>, E> {
        let served = match self.read_hit(&key) {
            Some(served) => served,
            None => {
                let mut create = Some(create);
                let mut create = || take_creator(&mut create)();
                erased::call_blocking(self.table(), &key, &mut create, How::GUARDED, run)?
            }
        };
        Ok(ReadGuard::new(Held::Owned(served.value), served.read))
    }

    /// The hit path of an unguarded call (see `Inner::hit`), counted as the call's hit
    /// or stale hit: `None` when the call must enter its slot. Inlined for an unbounded
    /// cache.
    #[inline]
    pub(crate) fn hit(&self, key: &impl KeyForm<K>) -> Option<V> {
        match self {
            Core::Unbounded(inner) => inner.hit(key),
            Core::Bounded(inner) => inner.hit(key),
        }
    }

    /// The hit path of a guarded call (see `Inner::read_hit`).
    fn read_hit(&self, key: &impl KeyForm<K>) -> Option<Served<V>> {
        match self {
            Core::Unbounded(inner) => inner.read_hit(key),
            Core::Bounded(inner) => inner.read_hit(key),
        }
    }

    /// This cache's map, as the blocking calls' slow path reaches it (see `erased.rs`).
    fn table(&self) -> &dyn Table<K> {
        match self {
            Core::Unbounded(inner) => inner.table(),
            Core::Bounded(inner) => inner.table(),
        }
    }

    /// This cache, as the slow path runs on it typed.
    pub(super) fn slots(&self) -> SlotsHandle<K, V> {
        match self {
            Core::Unbounded(inner) => inner.slots(),
            Core::Bounded(inner) => inner.clone().into_slots(),
        }
    }

    pub(super) fn executor(&self) -> &Executor {
        match self {
            Core::Unbounded(inner) => &inner.executor,
            Core::Bounded(inner) => inner.executor(),
        }
    }

    /// `Cache::get` and `EntryRef::get`: the value of the entry whose key hashes to
    /// `hash` by the map's hasher and is `is`, if it may be served.
    /// With `fresh_only` (`Cache::get_fresh`), only a value within its lifetime.
    fn get_found(
        &self,
        hash: impl Fn(&Hasher) -> u64,
        is: impl Fn(&K) -> bool,
        fresh_only: bool,
    ) -> Option<V> {
        match self {
            Core::Unbounded(inner) => inner.get_found(hash(inner.map.hasher()), is, fresh_only),
            Core::Bounded(inner) => inner.get(hash(inner.hasher()), &is, fresh_only),
        }
    }

    /// `Cache::contains_key` and `EntryRef::contains`; see [`get_found`](Core::get_found).
    fn contains_found(&self, hash: impl Fn(&Hasher) -> u64, is: impl Fn(&K) -> bool) -> bool {
        match self {
            Core::Unbounded(inner) => inner.contains_found(hash(inner.map.hasher()), is),
            Core::Bounded(inner) => inner.contains(hash(inner.hasher()), &is),
        }
    }

    /// `EntryRef::get`.
    pub(crate) fn get(&self, key: &impl KeyForm<K>) -> Option<V> {
        self.get_found(|hasher| key.hash_by(hasher), |stored| key.is(stored), false)
    }

    /// `Cache::get` (`fresh_only`: `Cache::get_fresh`), by `Borrow`: the same hash and
    /// equality as the owned key.
    pub(crate) fn get_borrowed<Q: Hash + Eq + ?Sized>(&self, key: &Q, fresh_only: bool) -> Option<V>
    where
        K: Borrow<Q>,
    {
        self.get_found(
            |hasher| hasher.hash_one(key),
            |stored| stored.borrow() == key,
            fresh_only,
        )
    }

    /// `EntryRef::contains`.
    pub(crate) fn contains(&self, key: &impl KeyForm<K>) -> bool {
        self.contains_found(|hasher| key.hash_by(hasher), |stored| key.is(stored))
    }

    /// `Cache::contains_key`, by `Borrow`.
    pub(crate) fn contains_borrowed<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.contains_found(
            |hasher| hasher.hash_one(key),
            |stored| stored.borrow() == key,
        )
    }

    /// `Cache::invalidate`, by any form of the key.
    pub(crate) fn invalidate(&self, key: &impl KeyForm<K>) {
        match self {
            Core::Unbounded(inner) => inner.invalidate_matching(key),
            Core::Bounded(inner) => inner.invalidate(key),
        }
    }

    /// `Cache::remove`, by any form of the key.
    pub(crate) fn remove(&self, key: &impl KeyForm<K>) -> Option<V> {
        match self {
            Core::Unbounded(inner) => inner.remove_matching(key),
            Core::Bounded(inner) => inner.remove(key),
        }
    }

    pub(crate) fn insert(&self, key: K, value: V) {
        self.table().insert(&Owned(key), AnyValue::new(value));
    }

    pub(crate) fn invalidate_all(&self) {
        match self {
            Core::Unbounded(inner) => inner.invalidate_all(),
            Core::Bounded(inner) => inner.invalidate_all(),
        }
    }

    pub(crate) fn clear(&self) {
        match self {
            Core::Unbounded(inner) => inner.clear(),
            Core::Bounded(inner) => inner.clear(),
        }
    }

    /// How many entries hold a control (tests: idle entries hold none).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn attached(&self) -> usize {
        match self {
            Core::Unbounded(inner) => inner.attached(),
            Core::Bounded(inner) => inner.attached(),
        }
    }
}
