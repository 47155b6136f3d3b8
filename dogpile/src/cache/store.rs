//! A cache's entries and their map: the hit path, lookups by any key form, and
//! `get` / `invalidate` / `remove` / `clear`. Admitting a new key (and making room for it)
//! is `slots.rs`.

use super::any::TierSteps;
use super::lookup::{Hasher, KeyForm};
use crate::evict::{Evictor, Mark, Marking, Unmarked};
use crate::executor::Executor;
use crate::freshness::{Decision, Lifetime};
use crate::slot::{self, Control, Env, Freshness, Served, Stamp, Stamped};
use crate::stats::Counters;
use crate::tier::{LocalAction, SharedTier, TierLevel, TierSetting};
use dashmap::DashMap;
use std::any::Any;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// What a built cache is made of, none of it typed by its key or value, so that the
/// builder, and the code that checks, moves and drops the settings, are built once
/// whatever the cache's types. A setting that is typed by them is kept as a box whose
/// code is built only by the builder method that takes it, where the types are known,
/// and that puts the typed value in place when the cache is built.
pub(crate) struct Settings {
    pub(crate) env: Env,
    pub(crate) capacity: Option<usize>,
    /// With a capacity: the bounded core's constructor (`bounded_constructor`), which
    /// builds the cache into an `Option<Arc<dyn BoundedCore<K, V>>>`.
    pub(crate) bounded: Option<fn(Settings, &mut dyn Any)>,
    pub(crate) sync_readers: bool,
    pub(crate) executor: Executor,
    /// With a fleet tier: how the cache binds it.
    pub(crate) tier: Option<TierBinding>,
    /// The most keys one call of a batch's creator is given.
    pub(crate) max_batch: usize,
    /// With `ttl_with`: each value's own lifetime, see [`put_lifetime`].
    /// With `ttl_with`: its `Lifetime<K, V>`, behind `Any` (see `Inner::lifetime`).
    pub(crate) lifetime: Option<Box<dyn Any + Send + Sync>>,
}

pub(crate) struct Entry<V, Mk> {
    pub(super) value: Option<Stamped<V>>,
    /// The slot's control, attached only while a call uses it (a claim, a waiter, a read
    /// guard): an idle entry allocates nothing besides its map bucket.
    pub(super) control: Option<Arc<Control>>,
    /// What the eviction policy knows of the entry (bounded caches only); raised by
    /// every call that finds it.
    pub(super) mark: Mk,
}

impl<V, Mk> Entry<V, Mk> {
    pub(super) fn attach(&mut self, sync_readers: bool) -> Arc<Control> {
        attach(&mut self.control, sync_readers)
    }

    /// Marks the slot dropped from its map (see `Control::try_retire`); an entry with
    /// no control has no caller to tell.
    pub(super) fn try_retire(&self) -> bool {
        self.control
            .as_ref()
            .is_none_or(|control| control.try_retire())
    }
}

/// The control of an entry, attached if it had none: apart from `Entry`, so that it is
/// built once, not once per value type.
fn attach(control: &mut Option<Arc<Control>>, sync_readers: bool) -> Arc<Control> {
    control
        .get_or_insert_with(|| Control::new(sync_readers))
        .clone()
}

pub(crate) struct Inner<K, V, Mk> {
    pub(super) map: DashMap<K, Entry<V, Mk>, Hasher>,
    pub(super) env: Env,
    pub(super) capacity: Option<usize>,
    /// The eviction policy, with a capacity.
    pub(super) evictor: Option<Evictor<K>>,
    pub(super) sync_readers: bool,
    pub(super) executor: Executor,
    /// Entries in the map plus places reserved for entries about to be inserted: the
    /// capacity bound is checked against this, not the map's approximate `len`.
    pub(super) entries: AtomicUsize,
    pub(super) admitted_since_sweep: AtomicUsize,
    pub(super) sweeping: parking_lot::Mutex<()>,
    /// The fleet tier (F1–F8), between the local value and the creator: this cache's
    /// `TierLevel<K, V>` (see [`level`](Inner::level)). Boxed as `Any`, built where the
    /// tier is given, so that a cache without one builds none of its code, not even the
    /// code that drops it. Set once, right after the cache is allocated: the tier's
    /// event sink holds a `Weak` of the cache (see [`TierBinding`]).
    pub(super) tier: OnceLock<Box<dyn Any + Send + Sync>>,
    /// The most keys one call of a batch's creator is given.
    pub(super) max_batch: usize,
    /// `ttl_with`: each value's own lifetime (R6).
    /// `Lifetime<K, V>` behind `Any`: a cache without it builds no code to drop it.
    pub(super) lifetime: Option<Box<dyn Any + Send + Sync>>,
}

/// What the hit path found.
enum Hit<V> {
    Fresh(V),
    /// Stale, while another caller refreshes it.
    Stale(V),
    /// Nothing to serve without entering the slot.
    Miss,
}

/// Whether the hit path serves a value of this stamp that is not plainly fresh, with the
/// slot's control: when the slot would serve it without a claim (see `Control::serves`),
/// that is due for an early refresh that someone holds or held, stale while another
/// caller refreshes it (R3), or stale while the key backs off. Classified by the precise
/// clock as the slot does. `Some(true)`: served as fresh (fresh or due by that clock);
/// `Some(false)`: served stale, and counted so. Apart from the entry, so that it is
/// built once, not once per value type.
fn stale_serves(env: &Env, stamp: Stamp, control: &Control) -> Option<bool> {
    let now = env.now();
    let freshness = env.policy.of(stamp, now);
    let decision = control.serves(&env.policy, now, (stamp.expires(), stamp.invalidated()))?;
    if matches!(freshness, Freshness::Fresh | Freshness::Due) {
        return Some(true);
    }
    env.served_stale(Some(stamp), now);
    if decision == Decision::ServeBackingOff {
        Counters::bump(&env.stats.backoff_answers);
    }
    Some(false)
}

pub(super) fn invalidate_entry<V, Mk>(entry: &mut Entry<V, Mk>) {
    if let Some(stamped) = entry.value.as_mut() {
        stamped.invalidate();
    }
}

impl<K: Hash + Eq, V: Clone, Mk: Marking> Inner<K, V, Mk> {
    /// The hit path of every unguarded call, before it enters its slot: a fresh value
    /// (R2: a shared shard lock, a clock read, a comparison and a clone), or a stale one
    /// while another caller refreshes it (R3, R10). By a borrowed key the entry is found
    /// by hash and compared in place, so neither builds an owned key or allocates.
    /// `None`: the call goes on to its slot.
    #[inline]
    pub(super) fn hit(&self, key: &(impl KeyForm<K> + ?Sized)) -> Option<V> {
        let now = self.hit_now()?;
        match self.with_matching(key, |entry| self.hit_value(entry, now))? {
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
        if !self.env.policy.is_fresh(stamped.stamp, now) {
            return self.stale_value(entry);
        }
        entry.mark.touch();
        Hit::Fresh(stamped.value.clone())
    }

    /// A value that is not plainly fresh, served at once when the slot would serve it
    /// without a claim (see [`stale_serves`]).
    #[inline(never)]
    fn stale_value(&self, entry: &Entry<V, Mk>) -> Hit<V> {
        let (Some(stamped), Some(control)) = (&entry.value, &entry.control) else {
            return Hit::Miss;
        };
        let Some(fresh) = stale_serves(&self.env, stamped.stamp, control) else {
            return Hit::Miss;
        };
        entry.mark.touch(); // a stale hit counts for eviction as a fresh one
        let value = stamped.value.clone();
        if fresh {
            Hit::Fresh(value)
        } else {
            Hit::Stale(value)
        }
    }

    /// The hit path of a reader-synchronised call (R8): see [`slot::read_hit`]. Only an
    /// entry whose control is attached (it stays attached while its guards are used) is
    /// served here, so nothing is allocated.
    pub(super) fn read_hit(&self, key: &(impl KeyForm<K> + ?Sized)) -> Option<Served<V>> {
        let control = self.with_matching(key, |entry| entry.control.clone())??;
        slot::read_hit(&control, &self.env, || {
            let owned = |entry: &Entry<V, Mk>| {
                let ours = entry
                    .control
                    .as_ref()
                    .is_some_and(|c| Arc::ptr_eq(c, &control));
                ours.then(|| entry.value.clone()).flatten()
            };
            self.with_matching(key, owned).flatten()
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
        // one, so a value it calls stale is stale for the slow path too. Not with values
        // of their own lifetimes, or a stale window that may be zero: a lagging clock
        // would serve them past their lifetime.
        if self.lifetime.is_some() || self.env.policy.stale_while_revalidate.is_some() {
            return Some(self.env.now());
        }
        Some(self.env.clock.hit_now_nanos(self.env.policy.ttl))
    }

    /// The value of an entry if it may be served: within its lifetime, or (unless
    /// `fresh_only`) past it but within `stale_while_revalidate` (R11).
    fn servable<'e>(&self, entry: &'e Entry<V, Mk>, fresh_only: bool) -> Option<&'e V> {
        let stamped = entry.value.as_ref()?;
        let serve = match self.env.policy.of(stamped.stamp, self.env.now()) {
            Freshness::Fresh | Freshness::Due => true,
            Freshness::Stale => !fresh_only,
            Freshness::Expired => false,
        };
        serve.then_some(&stamped.value)
    }

    /// A clone of the value `get` may serve; a read that finds one counts for eviction.
    fn served(&self, entry: &Entry<V, Mk>, fresh_only: bool) -> Option<V> {
        let value = self.servable(entry, fresh_only).cloned();
        if value.is_some() {
            entry.mark.touch();
        }
        value
    }

    /// Runs `read` on the key's entry, if there is one, under its shard's read lock.
    #[inline]
    pub(super) fn with_matching<R>(
        &self,
        key: &(impl KeyForm<K> + ?Sized),
        read: impl FnOnce(&Entry<V, Mk>) -> R,
    ) -> Option<R> {
        self.with_found(
            key.hash_by(self.map.hasher()),
            |stored| key.is(stored),
            read,
        )
    }

    /// Runs `read` on the entry whose key hashes to `hash` (by the map's hasher) and is
    /// `is`, if there is one, under its shard's read lock.
    #[inline]
    pub(super) fn with_found<R>(
        &self,
        hash: u64,
        is: impl Fn(&K) -> bool,
        read: impl FnOnce(&Entry<V, Mk>) -> R,
    ) -> Option<R> {
        // As DashMap hashes: a `usize`, which the shard's table takes as a `u64`.
        let hash = hash as usize;
        let shard = self.map.shards()[self.map.determine_shard(hash)].read();
        let (_, entry) = shard.get(hash as u64, |(stored, _)| is(stored))?;
        Some(read(entry.get()))
    }

    /// Runs `write` on the key's entry, if there is one, under its shard's write lock.
    pub(super) fn with_matching_mut<R>(
        &self,
        key: &(impl KeyForm<K> + ?Sized),
        write: impl FnOnce(&mut Entry<V, Mk>) -> R,
    ) -> Option<R> {
        self.with_found_mut(
            key.hash_by(self.map.hasher()),
            |stored| key.is(stored),
            write,
        )
    }

    /// [`with_found`](Inner::with_found) under the shard's write lock.
    fn with_found_mut<R>(
        &self,
        hash: u64,
        is: impl Fn(&K) -> bool,
        write: impl FnOnce(&mut Entry<V, Mk>) -> R,
    ) -> Option<R> {
        let hash = hash as usize;
        let mut shard = self.map.shards()[self.map.determine_shard(hash)].write();
        let (_, entry) = shard.get_mut(hash as u64, |(stored, _)| is(stored))?;
        Some(write(entry.get_mut()))
    }

    /// `Cache::get`: the value of the entry found as [`with_found`](Inner::with_found)
    /// finds it, if it may be served.
    /// With `fresh_only` (`Cache::get_fresh`), only a value within its lifetime.
    pub(super) fn get_found(
        &self,
        hash: u64,
        is: impl Fn(&K) -> bool,
        fresh_only: bool,
    ) -> Option<V> {
        self.with_found(hash, is, |entry| self.served(entry, fresh_only))?
    }

    /// `Cache::contains_key`: whether [`get_found`](Inner::get_found) would serve a value.
    pub(super) fn contains_found(&self, hash: u64, is: impl Fn(&K) -> bool) -> bool {
        self.with_found(hash, is, |entry| self.servable(entry, false).is_some()) == Some(true)
    }

    /// A removal, here only: what `remove` does locally, and what a tier event from
    /// another process does (F6). Retires an idle entry, and only clears the value of
    /// one whose creation is in flight.
    fn remove_found(&self, hash: u64, is: impl Fn(&K) -> bool) -> Option<V> {
        let hash = hash as usize;
        let mut shard = self.map.shards()[self.map.determine_shard(hash)].write();
        let eq = |(stored, _): &(K, _)| is(stored);
        let (_, entry) = shard.get_mut(hash as u64, eq)?;
        if !entry.get().try_retire() {
            return entry.get_mut().value.take().map(|s| s.value);
        }
        let (_, entry) = shard.remove_entry(hash as u64, eq)?;
        drop(shard);
        self.entries.fetch_sub(1, Ordering::AcqRel);
        entry.into_inner().value.map(|s| s.value)
    }

    /// `invalidate_all` here only.
    fn invalidate_all_here(&self) {
        self.map
            .iter_mut()
            .for_each(|mut entry| invalidate_entry(&mut entry));
    }

    /// `clear` here only.
    fn clear_here(&self) {
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

    /// A tier event from another process (F6), applied to this process's L1 only.
    fn apply_locally(&self, action: LocalAction<K>) {
        match action {
            LocalAction::Invalidate(key) => {
                let hash = self.map.hasher().hash_one(&key);
                self.with_found_mut(hash, |stored| *stored == key, invalidate_entry);
            }
            LocalAction::Remove(key) => {
                let hash = self.map.hasher().hash_one(&key);
                drop(self.remove_found(hash, |stored| *stored == key));
            }
            LocalAction::InvalidateAll => self.invalidate_all_here(),
            LocalAction::Clear => self.clear_here(),
        }
    }

    /// `Cache::invalidate`, by any form of the key.
    pub(super) fn invalidate_matching(&self, key: &(impl KeyForm<K> + ?Sized))
    where
        K: 'static,
        V: 'static,
    {
        // F6: the fleet too, also for a key this process holds no copy of.
        if let Some(level) = self.level() {
            level.invalidate(&key.to_key());
        }
        self.with_matching_mut(key, invalidate_entry);
    }

    /// `Cache::remove`, by any form of the key.
    pub(super) fn remove_matching(&self, key: &(impl KeyForm<K> + ?Sized)) -> Option<V>
    where
        K: 'static,
        V: 'static,
    {
        // F6: the fleet too, also for a key this process holds no copy of.
        if let Some(level) = self.level() {
            level.remove(&key.to_key());
        }
        self.remove_found(key.hash_by(self.map.hasher()), |stored| key.is(stored))
    }
}

/// The bodies of `Cache`'s calls that are not hits, for either entry type.
impl<K, V, Mk: Marking> Inner<K, V, Mk>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// `evictor`: the eviction policy of a bounded cache (see `bounded_constructor`).
    pub(super) fn new(settings: Settings, evictor: Option<Evictor<K>>) -> Arc<Self> {
        let inner = Inner {
            tier: OnceLock::new(),
            lifetime: settings.lifetime,
            map: DashMap::with_capacity_and_hasher_and_shard_amount(0, Hasher::default(), shards()),
            env: settings.env,
            capacity: settings.capacity,
            evictor,
            sync_readers: settings.sync_readers,
            executor: settings.executor,
            max_batch: settings.max_batch,
            entries: AtomicUsize::new(0),
            admitted_since_sweep: AtomicUsize::new(0),
            sweeping: parking_lot::Mutex::new(()),
        };
        let inner = Arc::new(inner);
        attach_tier(settings.tier, &inner);
        inner
    }

    /// `Cache::invalidate_all`: the fleet too (F6), then this process's copies.
    pub(super) fn invalidate_all(&self) {
        if let Some(level) = self.level() {
            level.invalidate_all(false);
        }
        self.invalidate_all_here();
    }

    /// `Cache::clear`: the fleet too (F6), then this process's copies.
    pub(super) fn clear(&self) {
        if let Some(level) = self.level() {
            level.invalidate_all(true);
        }
        self.clear_here();
    }

    /// How many entries hold a control (tests: idle entries hold none).
    #[cfg(all(test, not(loom)))]
    pub(super) fn attached(&self) -> usize {
        self.map
            .iter()
            .filter(|entry| entry.control.is_some())
            .count()
    }
}

/// How many shards a cache's map has: DashMap's own default (four per core, rounded up
/// to a power of two), computed here so that the map is built through its one
/// constructor that takes every parameter, not through two more layers per entry type.
fn shards() -> usize {
    static SHARDS: OnceLock<usize> = OnceLock::new();
    *SHARDS.get_or_init(|| {
        (std::thread::available_parallelism().map_or(1, usize::from) * 4).next_power_of_two()
    })
}

/// Binds the tier, if there is one, to the allocated cache (an `Arc<Inner<K, V, _>>`).
fn attach_tier(tier: Option<TierBinding>, inner: &dyn Any) {
    if let Some(binding) = tier {
        (binding.0)(inner);
    }
}

/// What `CacheBuilder::shared` hands the cache: the step that binds the tier to the
/// cache, of either layout, once it is allocated (F6: the tier's event sink holds a
/// `Weak` of it). Named there, so that a cache without a tier builds none of that code;
/// given the cache as `dyn Any`, so that the box, and the code that calls and drops it,
/// are the same for every cache.
pub(crate) struct TierBinding(AttachTier);

/// Given the allocated cache, an `Arc<Inner<K, V, _>>`: see [`TierBinding`].
type AttachTier = Box<dyn FnOnce(&dyn Any) + Send + Sync>;

impl TierBinding {
    pub(crate) fn new<K, V>(tier: Arc<dyn SharedTier<K, V>>) -> Self
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        let setting = TierSetting::new(tier);
        TierBinding(Box::new(move |inner: &dyn Any| {
            if let Some(inner) = inner.downcast_ref::<Arc<Inner<K, V, Unmarked>>>() {
                return bind(setting, inner);
            }
            let inner = inner
                .downcast_ref::<Arc<Inner<K, V, Mark>>>()
                .expect("a cache binds its tier to itself");
            bind(setting, inner);
        }))
    }
}

/// Binds the cache's level of the tier: from the cache's freshness policy, `ttl_with`
/// lifetime and an event sink that applies the tier's events to the cache while it
/// lives.
fn bind<K, V, Mk>(setting: TierSetting<K, V>, inner: &Arc<Inner<K, V, Mk>>)
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    Mk: Marking,
{
    let this = Arc::downgrade(inner);
    let sink: LocalSink<K> = Box::new(move |action| {
        if let Some(inner) = this.upgrade() {
            inner.apply_locally(action);
        }
    });
    let level = setting.bind(&inner.env.policy, inner.lifetime().cloned(), sink);
    let level: Box<dyn BoundTier<K, V>> = Box::new(level);
    // Set once: the binding is consumed here, right after the cache is allocated.
    let _ = inner.tier.set(Box::new(level));
}

impl<K: 'static, V: 'static, Mk> Inner<K, V, Mk> {
    /// The cache's level of its fleet tier, if it has one.
    pub(super) fn level(&self) -> Option<&TierLevel<K, V>> {
        self.bound().map(BoundTier::level)
    }

    /// `ttl_with`: each value's own lifetime (R6).
    pub(super) fn lifetime(&self) -> Option<&Lifetime<K, V>> {
        self.lifetime.as_ref()?.downcast_ref()
    }

    /// The cache's tier as bound to it, if it has one.
    pub(super) fn bound(&self) -> Option<&dyn BoundTier<K, V>> {
        let bound = self.tier.get()?.downcast_ref::<Box<dyn BoundTier<K, V>>>();
        bound.map(|bound| &**bound)
    }
}

/// A cache's level of its tier, behind `dyn` inside `Inner::tier`: its code, and the code
/// that drops it, are built by the binding only, where a tier is given.
pub(super) trait BoundTier<K, V>: Send + Sync {
    fn level(&self) -> &TierLevel<K, V>;

    /// A blocking creator behind the tier's steps (see `erased.rs`).
    fn steps(&self) -> &dyn TierSteps<K>;

    /// See `Table::still_held`.
    fn still_held(&self, key: &dyn KeyForm<K>) -> bool;

    /// See `Table::track`.
    fn track(&self, key: &dyn KeyForm<K>);
}

impl<K, V> BoundTier<K, V> for TierLevel<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn level(&self) -> &TierLevel<K, V> {
        self
    }

    fn steps(&self) -> &dyn TierSteps<K> {
        self
    }

    fn still_held(&self, key: &dyn KeyForm<K>) -> bool {
        TierLevel::still_held(self, &key.to_key())
    }

    fn track(&self, key: &dyn KeyForm<K>) {
        TierLevel::track(self, &key.to_key());
    }
}

/// How a cache applies the tier's events (the tier's `LocalSink`).
type LocalSink<K> = Box<dyn Fn(LocalAction<K>) + Send + Sync>;
