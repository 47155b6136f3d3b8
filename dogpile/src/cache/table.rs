//! A cache's map as its slow path reaches it: [`Table`], generic over the key type only,
//! whose entries are `dyn` [`Cell`]s with their values as [`AnyValue`]s. What a key's
//! slot does with its entry (find or admit it, load and publish its value, let go of its
//! control: `slots.rs`) is written against it, and so built once per key type; only
//! the few map routines here are built for each value type and entry layout.

use super::any::{AnyValue, TierSteps};
use super::lookup::KeyForm;
use super::store::{Entry, Inner};
use crate::evict::{Mark, Marking};
use crate::slot::{Control, Env, Stamp, Stamped};
use dashmap::SharedValue;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// One entry of a cache's map, its value behind `dyn`.
pub(crate) trait Cell {
    /// The slot's control, if a call uses the entry (see `Entry::control`).
    fn control(&self) -> Option<&Arc<Control>>;

    /// The control, attached if the entry had none.
    fn attach(&mut self, sync_readers: bool) -> Arc<Control>;

    /// Detaches the control: nobody uses the entry now.
    fn detach(&mut self);

    /// Notes that a caller asked for the entry (eviction, bounded caches only).
    fn touch(&self);

    /// The stamp of the entry's value, if it has one.
    fn stamp(&self) -> Option<Stamp>;

    /// A clone of the entry's value.
    fn load(&self) -> Option<Stamped<AnyValue>>;

    /// Replaces the entry's value.
    fn store(&mut self, stamped: Stamped<AnyValue>);
}

impl<V, Mk> Cell for Entry<V, Mk>
where
    V: Clone + Send + Sync + 'static,
    Mk: Marking,
{
    fn control(&self) -> Option<&Arc<Control>> {
        self.control.as_ref()
    }

    fn attach(&mut self, sync_readers: bool) -> Arc<Control> {
        Entry::attach(self, sync_readers)
    }

    fn detach(&mut self) {
        self.control = None;
    }

    fn touch(&self) {
        self.mark.touch();
    }

    fn stamp(&self) -> Option<Stamp> {
        self.value.as_ref().map(|stamped| stamped.stamp)
    }

    fn load(&self) -> Option<Stamped<AnyValue>> {
        let stamped = self.value.as_ref()?;
        Some(Stamped {
            value: AnyValue::new(stamped.value.clone()),
            stamp: stamped.stamp,
        })
    }

    fn store(&mut self, stamped: Stamped<AnyValue>) {
        self.value = Some(stamped.map(AnyValue::take::<V>));
    }
}

impl dyn Cell + '_ {
    /// Whether the entry still belongs to `control`'s slot (it was not removed and
    /// replaced meanwhile).
    pub(super) fn owned_by(&self, control: &Arc<Control>) -> bool {
        self.control().is_some_and(|c| Arc::ptr_eq(c, control))
    }

    /// Marks the slot dropped from its map (see `Control::try_retire`); an entry with no
    /// control has no caller to tell.
    pub(super) fn try_retire(&self) -> bool {
        self.control().is_none_or(|control| control.try_retire())
    }

    /// An entry without a value that no caller is using: a failed or removed creation's
    /// leftover. Callers reach a control only through the map under a shard lock, and
    /// the sweeps run under the shard's write lock, so a count of one is stable there.
    pub(super) fn is_abandoned(&self) -> bool {
        self.stamp().is_none()
            && self
                .control()
                .is_none_or(|control| Arc::strong_count(control) == 1)
    }
}

/// What [`Table::update`] does with a key's entry once its closure has seen it.
pub(crate) enum Change {
    Keep,
    /// Removes the entry (the closure saw one).
    Remove,
    /// Inserts an empty entry with its control attached (the closure saw none).
    Insert,
}

/// What [`Table::update`] did.
pub(crate) enum Changed {
    Kept,
    /// Whether an entry was removed.
    Removed(bool),
    /// A new entry, and its control.
    Inserted(Arc<Control>),
}

/// What bounds a cache's entries: their count against its capacity, and the sweeps.
pub(crate) struct Room<'a> {
    /// See `Inner::entries`.
    pub(super) entries: &'a AtomicUsize,
    pub(super) admitted_since_sweep: &'a AtomicUsize,
    pub(super) sweeping: &'a parking_lot::Mutex<()>,
    pub(super) capacity: Option<usize>,
}

/// A cache's map, as its slow path reaches it (see the module docs).
pub(crate) trait Table<K>: Send + Sync {
    fn env(&self) -> &Env;

    fn sync_readers(&self) -> bool;

    fn room(&self) -> Room<'_>;

    /// Runs `change` on the key's entry (`None`: the key has none) under its shard's
    /// write lock, and does what it says: one look-up routine for everything the slow
    /// path reads or changes in a key's entry. Its closures are short (a reference
    /// count, a stamp, a clone): a slow-path reader holds the write lock about as
    /// briefly as it would hold a read lock, though other slow-path readers of the
    /// shard wait for it meanwhile. The hit path keeps the read lock.
    fn update(
        &self,
        key: &dyn KeyForm<K>,
        change: &mut dyn FnMut(Option<&mut dyn Cell>) -> Change,
    ) -> Changed;

    /// Drops every entry `victim` says, under each shard's write lock; how many.
    fn sweep(&self, victim: &mut dyn FnMut(&dyn Cell) -> bool) -> usize;

    /// Evicts one entry as the policy picks it (see `evict.rs`); false if nothing could
    /// be evicted because every entry is being created, or the cache is unbounded.
    fn evict_one(&self) -> bool;

    /// How long `value` stays fresh, in nanoseconds: `ttl`, or what `ttl_with` says.
    fn lifetime(&self, key: &dyn KeyForm<K>, value: &AnyValue) -> u64;

    /// F3: whether another process's stale value may still be held for the key (no
    /// notification for it since the claim).
    fn still_held(&self, key: &dyn KeyForm<K>) -> bool;

    /// Tells the fleet tier, if any, that this process holds a copy of the key.
    fn track(&self, key: &dyn KeyForm<K>);

    /// With a fleet tier: its steps, which a blocking creator runs behind (F1–F8).
    fn tier_steps(&self) -> Option<&dyn TierSteps<K>>;
}

impl<K, V, Mk> Table<K> for Inner<K, V, Mk>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    Mk: Marking,
{
    fn env(&self) -> &Env {
        &self.env
    }

    fn sync_readers(&self) -> bool {
        self.sync_readers
    }

    fn room(&self) -> Room<'_> {
        Room {
            entries: &self.entries,
            admitted_since_sweep: &self.admitted_since_sweep,
            sweeping: &self.sweeping,
            capacity: self.capacity,
        }
    }

    fn update(
        &self,
        key: &dyn KeyForm<K>,
        change: &mut dyn FnMut(Option<&mut dyn Cell>) -> Change,
    ) -> Changed {
        let hash = key.hash_by(self.map.hasher()) as usize;
        let mut shard = self.map.shards()[self.map.determine_shard(hash)].write();
        let eq = |(stored, _): &(K, SharedValue<Entry<V, Mk>>)| key.is(stored);
        let found = shard.get_mut(hash as u64, eq);
        match change(found.map(|(_, entry)| entry.get_mut() as &mut dyn Cell)) {
            Change::Keep => Changed::Kept,
            Change::Remove => {
                let removed = shard.remove_entry(hash as u64, eq);
                // Dropped after the shard lock is released.
                drop(shard);
                Changed::Removed(removed.is_some())
            }
            Change::Insert => {
                // A new entry: the one place a call by a borrowed key builds the owned key.
                let key = key.to_key();
                let mark = Mk::issue(self.evictor.as_ref());
                let ticket = mark.mark().map_or(0, Mark::ticket);
                let mut entry = Entry {
                    value: None,
                    control: None,
                    mark,
                };
                let control = entry.attach(self.sync_readers);
                let admitted = Mk::BOUNDED.then(|| key.clone());
                let hasher = self.map.hasher();
                shard.insert(
                    hash as u64,
                    (key, SharedValue::new(entry)),
                    |(stored, _)| hasher.hash_one(stored),
                );
                drop(shard);
                // Not even built for an unbounded cache's entries.
                if Mk::BOUNDED {
                    if let (Some(key), Some(evictor)) = (admitted, &self.evictor) {
                        evictor.admit(key, ticket, hash as u64, self);
                    }
                }
                Changed::Inserted(control)
            }
        }
    }

    fn sweep(&self, victim: &mut dyn FnMut(&dyn Cell) -> bool) -> usize {
        let mut swept = 0;
        self.map.retain(|_, entry| {
            let gone = victim(entry);
            swept += usize::from(gone);
            !gone
        });
        swept
    }

    fn evict_one(&self) -> bool {
        // Not even built for an unbounded cache's entries.
        if !Mk::BOUNDED {
            return false;
        }
        let Some(evictor) = &self.evictor else {
            return false;
        };
        evictor.evict_one(self, |key| self.map.hash_usize(key) as u64)
    }

    fn lifetime(&self, key: &dyn KeyForm<K>, value: &AnyValue) -> u64 {
        match self.lifetime() {
            Some(lifetime) => lifetime(&key.to_key(), value.typed::<V>()),
            None => self.env.policy.ttl,
        }
    }

    fn still_held(&self, key: &dyn KeyForm<K>) -> bool {
        self.bound().is_some_and(|tier| tier.still_held(key))
    }

    fn track(&self, key: &dyn KeyForm<K>) {
        if let Some(tier) = self.bound() {
            tier.track(key);
        }
    }

    fn tier_steps(&self) -> Option<&dyn TierSteps<K>> {
        self.bound().map(|tier| tier.steps())
    }
}

impl Room<'_> {
    /// Takes back the place reserved for an entry that another caller inserted first.
    pub(super) fn unreserve(&self) {
        self.entries.fetch_sub(1, Ordering::AcqRel);
    }
}
