//! [`Cache`]'s calls in the [`Background`] and [`SyncReaders`] modes: each public method
//! its docs and a forward to `Core`, as in `mod.rs`.

use super::lookup::Owned;
use super::{infallible, Cache};
use crate::mode::{Background, SyncReaders};
use crate::sync_reader::ReadGuard;
use std::convert::Infallible;
#[cfg(not(loom))]
use std::future::Future;
use std::hash::Hash;

impl<K, V> Cache<K, V, Background>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The value for `key`, as in [`Inline`](crate::mode::Inline) mode, except that the refresh of a stale
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
        infallible(
            self.core
                .try_get_background(Owned(key), move || Ok(create())),
        )
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
        self.core.try_get_background(Owned(key), create)
    }

    /// `get_with` (above) for async callers. With the
    /// `tokio` feature and inside a tokio runtime, the refresh of a stale value is
    /// spawned on that runtime and every caller returns the stale value at once (R10).
    /// Without the feature, or outside a runtime, the refresh runs in the claimant's
    /// future, as in [`Inline`](crate::mode::Inline) mode.
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
        infallible(self.core.try_get_background_async(Owned(key), create).await)
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
        self.core.try_get_background_async(Owned(key), create).await
    }
    /// The values for many keys at once, as
    /// [`Cache::<K, V, Inline>::get_many_with`](Cache::get_many_with) does, except that
    /// the refresh of the stale keys this call claims runs on the refresh executor, in
    /// creator calls of their own, and their stale values are served at once (R10). The
    /// cold keys are created in this call, while it waits. `create` may then run on
    /// another thread, and more than once: it is `Fn + Send + Sync + 'static`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = dogpile::Cache::<u8, u8>::builder().ttl(Duration::from_secs(9)).background_refresh().build();
    /// assert_eq!(cache.get_many_with(&[1, 2], |ids| ids.to_vec()), [1, 2]);
    /// ```
    pub fn get_many_with(
        &self,
        keys: &[K],
        create: impl Fn(&[K]) -> Vec<V> + Send + Sync + 'static,
    ) -> Vec<V> {
        infallible(
            self.core
                .try_get_many_background(keys, move |keys| Ok(create(keys))),
        )
    }

    /// `get_many_with` (above) with a fallible creator. A failed background refresh
    /// keeps the stale values; the next stale hit of each key retries.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = dogpile::Cache::<u8, u8>::builder().ttl(Duration::from_secs(9)).background_refresh().build();
    /// assert_eq!(cache.try_get_many_with(&[1], |ids| Ok::<_, String>(ids.to_vec())), Ok(vec![1]));
    /// ```
    pub fn try_get_many_with<E: Clone + Send + 'static>(
        &self,
        keys: &[K],
        create: impl Fn(&[K]) -> Result<Vec<V>, E> + Send + Sync + 'static,
    ) -> Result<Vec<V>, E> {
        self.core.try_get_many_background(keys, create)
    }

    /// `get_many_with` (above) for async callers. With the `tokio` feature and inside a
    /// tokio runtime, the stale keys' refresh is spawned on that runtime (R10); without
    /// the feature, or outside a runtime, it runs in this call, as in [`Inline`](crate::mode::Inline) mode.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// let cache = dogpile::Cache::<u8, u8>::builder().ttl(Duration::from_secs(9)).background_refresh().build();
    /// let values = cache.get_many_with_async(&[1, 2], |ids: Vec<u8>| async move { ids });
    /// assert_eq!(values.await, [1, 2]);
    /// # }
    /// ```
    #[cfg(not(loom))]
    pub async fn get_many_with_async<Fut>(
        &self,
        keys: &[K],
        create: impl Fn(Vec<K>) -> Fut + Send + Sync + 'static,
    ) -> Vec<V>
    where
        Fut: Future<Output = Vec<V>> + Send + 'static,
    {
        let create = move |keys| {
            let values = create(keys);
            async { Ok::<_, Infallible>(values.await) }
        };
        infallible(self.core.try_get_many_background_async(keys, create).await)
    }

    /// `get_many_with_async` (above) with a fallible creator.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// let cache = dogpile::Cache::<u8, u8>::builder().ttl(Duration::from_secs(9)).background_refresh().build();
    /// let values = cache.try_get_many_with_async(&[1], |_| async { Err::<Vec<u8>, _>("down") });
    /// assert_eq!(values.await, Err("down"));
    /// # }
    /// ```
    #[cfg(not(loom))]
    pub async fn try_get_many_with_async<E, Fut>(
        &self,
        keys: &[K],
        create: impl Fn(Vec<K>) -> Fut + Send + Sync + 'static,
    ) -> Result<Vec<V>, E>
    where
        E: Clone + Send + 'static,
        Fut: Future<Output = Result<Vec<V>, E>> + Send + 'static,
    {
        self.core.try_get_many_background_async(keys, create).await
    }
}

impl<K, V> Cache<K, V, SyncReaders>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The value for `key` under a [`ReadGuard`]: publishing a new value for this key
    /// waits until the guard is dropped (R8). Otherwise as in [`Inline`](crate::mode::Inline) mode. A thread
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
        infallible(self.core.get_guarded(Owned(key), create))
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
        self.core.try_get_guarded(Owned(key), create)
    }
}
