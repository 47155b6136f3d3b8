//! [`EntryRef`]: one key of a [`Cache`](crate::Cache), named by a borrowed form of the key.

use super::dispatch::Core;
use crate::key::KeyRef;
use crate::mode::{Background, Inline, Mode, SyncReaders};
use crate::sync_reader::ReadGuard;
use std::convert::Infallible;
use std::fmt;
#[cfg(not(loom))]
use std::future::Future;
use std::hash::Hash;
use std::marker::PhantomData;

/// One key of a [`Cache`](crate::Cache), by a borrowed form of the key (see [`KeyRef`]), from
/// [`Cache::entry_by_ref`](crate::Cache::entry_by_ref). It has the calls of the cache's mode under the same names,
/// consuming the `EntryRef`; nothing is allocated unless a key must be stored.
///
/// # Example
///
/// ```
/// use dogpile::Cache;
/// use std::time::Duration;
///
/// let pages: Cache<(String, u32), String> = Cache::new(Duration::from_secs(60));
/// let page = pages.entry_by_ref(&("about", &2)).get_with(|| "<h1>About</h1>".into());
/// assert_eq!(page, "<h1>About</h1>");
/// // A fresh hit by reference builds no owned key:
/// assert_eq!(pages.entry_by_ref(&("about", &2)).get(), Some(page));
/// ```
pub struct EntryRef<'a, K, V, M, Q: ?Sized> {
    core: &'a Core<K, V>,
    key: &'a Q,
    _mode: PhantomData<fn() -> M>,
}

impl<'a, K, V, M, Q> EntryRef<'a, K, V, M, Q>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    M: Mode,
    Q: KeyRef<K> + ?Sized,
{
    #[inline]
    pub(crate) fn new(core: &'a Core<K, V>, key: &'a Q) -> Self {
        EntryRef {
            core,
            key,
            _mode: PhantomData,
        }
    }

    /// A fresh value, or a stale one while another caller refreshes it, counted as the
    /// call's hit; `None` when the call must go on to its slot. For a caller whose
    /// creator costs something to build (a `'static` one owns its key): it is built
    /// only after this misses.
    pub(crate) fn hit(&self) -> Option<V> {
        self.core.hit(&self.key)
    }

    /// As [`Cache::get`](crate::Cache::get): the value if it may be served; never creates, not counted.
    ///
    /// ```
    /// let cache: dogpile::Cache<String, u8> = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// assert_eq!(cache.entry_by_ref("a").get(), None);
    /// cache.insert("a".into(), 1);
    /// assert_eq!(cache.entry_by_ref("a").get(), Some(1));
    /// ```
    pub fn get(&self) -> Option<V> {
        self.core.get(&self.key)
    }

    /// As [`Cache::contains_key`](crate::Cache::contains_key).
    ///
    /// ```
    /// let cache: dogpile::Cache<String, u8> = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// cache.insert("a".into(), 1);
    /// assert!(cache.entry_by_ref("a").contains());
    /// assert!(!cache.entry_by_ref("b").contains());
    /// ```
    pub fn contains(&self) -> bool {
        self.core.contains(&self.key)
    }

    /// As [`Cache::invalidate`](crate::Cache::invalidate) (soft, R7).
    ///
    /// ```
    /// let cache: dogpile::Cache<String, u8> = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// cache.insert("a".into(), 1);
    /// cache.entry_by_ref("a").invalidate();
    /// assert_eq!(cache.entry_by_ref("a").get_with(|| 2), 2);
    /// ```
    pub fn invalidate(&self) {
        self.core.invalidate(&self.key);
    }

    /// As [`Cache::remove`](crate::Cache::remove) (hard, R7).
    ///
    /// ```
    /// let cache: dogpile::Cache<String, u8> = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// cache.insert("a".into(), 1);
    /// assert_eq!(cache.entry_by_ref("a").remove(), Some(1));
    /// assert!(cache.is_empty());
    /// ```
    pub fn remove(&self) -> Option<V> {
        self.core.remove(&self.key)
    }
}

fn infallible<T>(result: Result<T, Infallible>) -> T {
    match result {
        Ok(value) => value,
        Err(never) => match never {},
    }
}

impl<K, V, Q> EntryRef<'_, K, V, Inline, Q>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    Q: KeyRef<K> + ?Sized,
{
    /// [`Cache::get_with`](crate::Cache::get_with) by this key.
    ///
    /// ```
    /// let cache: dogpile::Cache<String, usize> = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// assert_eq!(cache.entry_by_ref("hello").get_with(|| 5), 5);
    /// ```
    #[inline]
    pub fn get_with(self, create: impl FnOnce() -> V) -> V {
        infallible(self.core.get_inline(self.key, create))
    }

    /// [`Cache::try_get_with`](crate::Cache::try_get_with) by this key.
    ///
    /// ```
    /// let cache: dogpile::Cache<(String, u8), u8> = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// assert_eq!(cache.entry_by_ref(&("a", &1)).try_get_with(|| Ok::<_, ()>(7)), Ok(7));
    /// ```
    #[inline]
    pub fn try_get_with<E: Clone + Send + 'static>(
        self,
        create: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        self.core.try_get_inline(self.key, create)
    }

    /// [`Cache::get_with_async`](crate::Cache::get_with_async) by this key.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache: dogpile::Cache<String, u8> = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// assert_eq!(cache.entry_by_ref("a").get_with_async(async { 1 }).await, 1);
    /// # }
    /// ```
    #[cfg(not(loom))]
    pub async fn get_with_async(self, create: impl Future<Output = V>) -> V {
        let create = async { Ok(create.await) };
        infallible(self.core.try_get_inline_async(self.key, create).await)
    }

    /// [`Cache::try_get_with_async`](crate::Cache::try_get_with_async) by this key.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache: dogpile::Cache<String, u8> = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// let value = cache.entry_by_ref("a").try_get_with_async(async { Err::<u8, _>("down") }).await;
    /// assert_eq!(value, Err("down"));
    /// # }
    /// ```
    #[cfg(not(loom))]
    pub async fn try_get_with_async<E: Clone + Send + 'static>(
        self,
        create: impl Future<Output = Result<V, E>>,
    ) -> Result<V, E> {
        self.core.try_get_inline_async(self.key, create).await
    }
}

impl<K, V, Q> EntryRef<'_, K, V, Background, Q>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    Q: KeyRef<K> + ?Sized,
{
    /// `Cache::get_with` of a [`Background`] cache by this key.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = dogpile::Cache::<String, u8>::builder().ttl(Duration::from_secs(9)).background_refresh().build();
    /// assert_eq!(cache.entry_by_ref("a").get_with(|| 1), 1);
    /// ```
    #[inline]
    pub fn get_with(self, create: impl FnOnce() -> V + Send + 'static) -> V {
        infallible(self.core.try_get_background(self.key, move || Ok(create())))
    }

    /// `Cache::try_get_with` of a [`Background`] cache by this key.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = dogpile::Cache::<String, u8>::builder().ttl(Duration::from_secs(9)).background_refresh().build();
    /// assert_eq!(cache.entry_by_ref("a").try_get_with(|| Ok::<_, String>(1)), Ok(1));
    /// ```
    #[inline]
    pub fn try_get_with<E: Clone + Send + 'static>(
        self,
        create: impl FnOnce() -> Result<V, E> + Send + 'static,
    ) -> Result<V, E> {
        self.core.try_get_background(self.key, create)
    }

    /// `Cache::get_with_async` of a [`Background`] cache by this key.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// let cache = dogpile::Cache::<String, u8>::builder().ttl(Duration::from_secs(9)).background_refresh().build();
    /// assert_eq!(cache.entry_by_ref("a").get_with_async(async { 1 }).await, 1);
    /// # }
    /// ```
    #[cfg(not(loom))]
    pub async fn get_with_async(self, create: impl Future<Output = V> + Send + 'static) -> V {
        let create = async { Ok::<V, Infallible>(create.await) };
        infallible(self.core.try_get_background_async(self.key, create).await)
    }

    /// `Cache::try_get_with_async` of a [`Background`] cache by this key.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// let cache = dogpile::Cache::<String, u8>::builder().ttl(Duration::from_secs(9)).background_refresh().build();
    /// let value = cache.entry_by_ref("a").try_get_with_async(async { Ok::<_, String>(1) }).await;
    /// assert_eq!(value, Ok(1));
    /// # }
    /// ```
    #[cfg(not(loom))]
    pub async fn try_get_with_async<E: Clone + Send + 'static>(
        self,
        create: impl Future<Output = Result<V, E>> + Send + 'static,
    ) -> Result<V, E> {
        self.core.try_get_background_async(self.key, create).await
    }
}

impl<K, V, Q> EntryRef<'_, K, V, SyncReaders, Q>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    Q: KeyRef<K> + ?Sized,
{
    /// `Cache::get_with` of a [`SyncReaders`] cache by this key.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = dogpile::Cache::<String, u8>::builder().ttl(Duration::from_secs(9)).sync_readers().build();
    /// assert_eq!(*cache.entry_by_ref("a").get_with(|| 1), 1);
    /// ```
    pub fn get_with(self, create: impl FnOnce() -> V) -> ReadGuard<V> {
        infallible(self.core.get_guarded(self.key, create))
    }

    /// `Cache::try_get_with` of a [`SyncReaders`] cache by this key.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = dogpile::Cache::<String, u8>::builder().ttl(Duration::from_secs(9)).sync_readers().build();
    /// assert_eq!(*cache.entry_by_ref("a").try_get_with(|| Ok::<_, ()>(1)).unwrap(), 1);
    /// ```
    pub fn try_get_with<E: Clone + Send + 'static>(
        self,
        create: impl FnOnce() -> Result<V, E>,
    ) -> Result<ReadGuard<V>, E> {
        self.core.try_get_guarded(self.key, create)
    }
}

impl<K, V, M, Q: fmt::Debug + ?Sized> fmt::Debug for EntryRef<'_, K, V, M, Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntryRef").field("key", &self.key).finish()
    }
}
