//! The bounded layout: a cache given a capacity keeps S3-FIFO's mark in each entry
//! (the policy is `evict.rs`), and its calls reach its entries through `dyn`
//! [`BoundedCore`], built only for the key and value types of caches given a capacity.

use super::call::{Slots, SlotsHandle};
use super::lookup::{Hasher, KeyForm};
use super::store::{Inner, Settings};
use super::table::Table;
use crate::evict::{Evictor, Mark};
use crate::executor::Executor;
use crate::slot::Served;
use std::any::Any;
use std::hash::Hash;
use std::sync::Arc;

/// A bounded cache's calls, which reach its [`Inner`] through `dyn` (see `Core`).
/// Keys come as `dyn` too: each call is built once per key and value types, not once
/// per caller's key form.
pub(crate) trait BoundedCore<K, V>: Slots<K, V> {
    fn hit(&self, key: &dyn KeyForm<K>) -> Option<V>;
    fn read_hit(&self, key: &dyn KeyForm<K>) -> Option<Served<V>>;
    fn hasher(&self) -> &Hasher;
    fn get(&self, hash: u64, is: &dyn Fn(&K) -> bool, fresh_only: bool) -> Option<V>;
    fn contains(&self, hash: u64, is: &dyn Fn(&K) -> bool) -> bool;
    fn table(&self) -> &dyn Table<K>;
    fn invalidate(&self, key: &dyn KeyForm<K>);
    fn invalidate_all(&self);
    fn remove(&self, key: &dyn KeyForm<K>) -> Option<V>;
    fn clear(&self);
    fn len(&self) -> usize;
    fn capacity(&self) -> Option<usize>;
    fn executor(&self) -> &Executor;
    fn into_slots(self: Arc<Self>) -> SlotsHandle<K, V>;
    /// How many entries hold a control (tests: idle entries hold none).
    #[cfg(all(test, not(loom)))]
    fn attached(&self) -> usize;
}

/// Builds a bounded cache's core into an `Option<Arc<dyn BoundedCore<K, V>>>` (see
/// `Core::new`), its type erased so that the settings hold it whatever the cache's
/// types. Named only by `CacheBuilder::capacity`, so that the bounded entry layout is
/// built only for the types of caches given a capacity.
pub(crate) type BoundedConstructor = fn(Settings, &mut dyn Any);

/// The constructor of a bounded cache of these types, for `CacheBuilder::capacity`.
pub(crate) fn bounded_constructor<K, V>() -> BoundedConstructor
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    |settings, core| {
        let core = core
            .downcast_mut::<Option<Arc<dyn BoundedCore<K, V>>>>()
            .expect("a bounded cache is built for its own key and value types");
        let evictor = settings.capacity.map(Evictor::new);
        *core = Some(Inner::<K, V, Mark>::new(settings, evictor));
    }
}

impl<K, V> BoundedCore<K, V> for Inner<K, V, Mark>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn hit(&self, key: &dyn KeyForm<K>) -> Option<V> {
        Inner::hit(self, key)
    }
    fn read_hit(&self, key: &dyn KeyForm<K>) -> Option<Served<V>> {
        Inner::read_hit(self, key)
    }
    fn hasher(&self) -> &Hasher {
        self.map.hasher()
    }
    fn get(&self, hash: u64, is: &dyn Fn(&K) -> bool, fresh_only: bool) -> Option<V> {
        self.get_found(hash, is, fresh_only)
    }
    fn contains(&self, hash: u64, is: &dyn Fn(&K) -> bool) -> bool {
        self.contains_found(hash, is)
    }
    fn table(&self) -> &dyn Table<K> {
        self
    }
    fn invalidate(&self, key: &dyn KeyForm<K>) {
        self.invalidate_matching(key);
    }
    fn invalidate_all(&self) {
        Inner::invalidate_all(self);
    }
    fn remove(&self, key: &dyn KeyForm<K>) -> Option<V> {
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
