//! [`Cache`]'s calls of every mode that read, write or invalidate entries without a
//! creator: each public method its docs and a forward to `Core`, as in `mod.rs`.

use super::lookup::ByBorrow;
use super::{Cache, EntryRef};
use crate::key::KeyRef;
use crate::mode::Mode;
use crate::stats::Stats;
use std::borrow::Borrow;
use std::hash::Hash;

impl<K, V, M> Cache<K, V, M>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    M: Mode,
{
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
        EntryRef::new(&self.core, key)
    }

    /// The current value for `key` if it may be served: within its lifetime, or past it
    /// but within [`stale_while_revalidate`](crate::CacheBuilder::stale_while_revalidate) (R11;
    /// without that window, until a refresh succeeds). For values within their lifetime
    /// only, see [`get_fresh`](Cache::get_fresh). Never creates, never waits, never
    /// claims a refresh, and is not
    /// counted in [`Stats`] (which count the calls that may create; moka counts its
    /// `get`, we keep the two apart so that `hits + stale_hits + misses` stays the
    /// number of get-with calls).
    ///
    /// With a [shared tier](crate::CacheBuilder::shared), `get` reads this process's copy only
    /// and never asks the tier; to look a key up fleet-wide without creating, call the
    /// tier's [`SharedTier::lookup`](crate::SharedTier::lookup).
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
        self.core.get_borrowed(key, false)
    }

    /// The current value for `key` only if it is within its lifetime: what a list built
    /// on `get` + `insert` wants, so that it never shows a value past its ttl.
    ///
    /// ```
    /// use dogpile::{Cache, ManualClock};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let names = Cache::<u32, String>::builder()
    ///     .ttl(Duration::from_secs(300))
    ///     .clock(clock.clone())
    ///     .build();
    /// names.insert(7, "Ada".into());
    /// clock.advance(Duration::from_secs(301));
    /// assert_eq!(names.get(&7).as_deref(), Some("Ada")); // stale, still served
    /// assert_eq!(names.get_fresh(&7), None);
    /// ```
    pub fn get_fresh<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.core.get_borrowed(key, true)
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
        self.core.contains_borrowed(key)
    }

    /// Stores `value` for `key` as fresh now, whatever was there. A creation in flight
    /// for the key still publishes its own value when it finishes. In reader-synchronised
    /// mode this waits for the key's guards like any publish. If the cache is at
    /// capacity and every entry is being created, nothing is stored. With a
    /// [shared tier](crate::CacheBuilder::shared) it stores in this process only (a value reaches
    /// the tier through a creation under its lease, F5), and an `invalidate` or `remove`
    /// of the key by any process reaches this copy too (F6).
    ///
    /// ```
    /// let cache = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// cache.insert("k", 1);
    /// assert_eq!(cache.get_with("k", || 2), 1);
    /// ```
    pub fn insert(&self, key: K, value: V) {
        self.core.insert(key, value);
    }

    /// Makes the value for `key` stale (soft, R7): it is still served while the next
    /// caller refreshes it. With a [shared tier](crate::CacheBuilder::shared) it reaches every
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
        self.core.invalidate(&ByBorrow(key))
    }

    /// Makes every value stale (soft, R7, for every key): each is still served while the
    /// next caller of its key refreshes it.
    ///
    /// With a [shared tier](crate::CacheBuilder::shared) it reaches every process (F6) through
    /// [`SharedTier::invalidate_all`](crate::SharedTier::invalidate_all), in one step
    /// whatever the number of keys, and returns once the tier applied it (or its
    /// deadline passed, F7).
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
        self.core.invalidate_all();
    }

    /// Removes the value for `key` (hard, R7): the next caller creates a new one while
    /// the others wait. Returns the removed value (this process's copy). A creation
    /// already in flight for the key is not cancelled: it publishes when it finishes.
    /// With a [shared tier](crate::CacheBuilder::shared) it reaches every process (F6), also
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
        self.core.remove(&ByBorrow(key))
    }

    /// Removes every value (hard). Creations in flight publish when they finish.
    ///
    /// With a [shared tier](crate::CacheBuilder::shared) it reaches every process (F6): every
    /// value of the fleet is gone (R1), in one step whatever the number of keys (see
    /// [`SharedTier::invalidate_all`](crate::SharedTier::invalidate_all)); it returns
    /// once the tier applied it (or its deadline passed, F7). A tier that does not
    /// implement it leaves the fleet's values in place.
    ///
    /// ```
    /// let cache = dogpile::Cache::new(std::time::Duration::from_secs(60));
    /// cache.get_with(1, || 1);
    /// cache.clear();
    /// assert!(cache.is_empty());
    /// ```
    pub fn clear(&self) {
        self.core.clear();
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
        self.core.len()
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
        self.core.env().stats.snapshot()
    }
}
