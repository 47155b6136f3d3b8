//! A key's entry as the per-key loop reaches it: its control, found or admitted with a
//! new entry (evicting or sweeping to make room), its value loaded and published while
//! the entry still belongs to that control. Written once per key type on a cache's
//! [`Table`]; the typed [`Slots`] of the async and background calls forward to it but
//! for their values.

use super::any::AnyValue;
use super::call::{Slots, SlotsHandle};
use super::lookup::KeyForm;
use super::store::Inner;
use super::table::{Cell, Change, Changed, Table};
use crate::evict::{Candidate, Entries, Marking, Visit};
use crate::slot::{Control, Env, Freshness, Provenance, Stamped};
use crate::tier::TierLevel;
use std::hash::Hash;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl<K> dyn Table<K> + '_ {
    /// Runs `write` on the key's entry, if there is one, under its shard's lock.
    fn write_cell<R>(
        &self,
        key: &dyn KeyForm<K>,
        write: impl FnOnce(&mut dyn Cell) -> R,
    ) -> Option<R> {
        let (mut write, mut out) = (Some(write), None);
        self.update(key, &mut |cell| {
            if let Some(cell) = cell {
                out = write.take().map(|write| write(cell));
            }
            Change::Keep
        });
        out
    }

    /// After a failed first creation the key's entry holds no value: drop it, so that
    /// `len` counts values and failing keys don't pile up. A waiter that already took
    /// over keeps it (its claim makes retiring fail); one still waiting starts over.
    pub(super) fn forget_if_empty(&self, key: &dyn KeyForm<K>) {
        // A key backing off keeps its entry: its last error answers meanwhile.
        let backing_off = |cell: &dyn Cell| cell.control().is_some_and(|c| c.keeps_state());
        let empty =
            |cell: &dyn Cell| cell.stamp().is_none() && !backing_off(cell) && cell.try_retire();
        let mut change = |cell: Option<&mut dyn Cell>| match cell {
            Some(cell) if empty(cell) => Change::Remove,
            _ => Change::Keep,
        };
        if let Changed::Removed(true) = self.update(key, &mut change) {
            self.room().unreserve();
        }
    }

    /// The control of `key`'s slot, inserting an empty entry for a new key. `None`
    /// when the cache is at capacity and nothing can be evicted.
    pub(super) fn control_for(&self, key: &dyn KeyForm<K>) -> Option<Arc<Control>> {
        let sync_readers = self.sync_readers();
        let found = self.write_cell(key, |cell| {
            cell.touch(); // a stale hit counts for eviction as a fresh one
            cell.attach(sync_readers)
        });
        if let Some(control) = found {
            return Some(control);
        }
        if !self.reserve_place() {
            return None;
        }
        // Another caller may have inserted the key since our look-up.
        let mut found = None;
        let mut admit = |cell: Option<&mut dyn Cell>| match cell {
            Some(cell) => {
                found = Some(cell.attach(sync_readers));
                Change::Keep
            }
            None => Change::Insert,
        };
        match self.update(key, &mut admit) {
            Changed::Inserted(control) => {
                self.after_admission();
                Some(control)
            }
            _ => {
                self.room().unreserve();
                found
            }
        }
    }

    /// Counts a new entry in, evicting first if the cache is full.
    fn reserve_place(&self) -> bool {
        let room = self.room();
        let Some(capacity) = room.capacity else {
            room.entries.fetch_add(1, Ordering::AcqRel);
            return true;
        };
        loop {
            let entries = room.entries.load(Ordering::Acquire);
            if entries < capacity {
                if room
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
        let room = self.room();
        let _sweep = room.sweeping.lock();
        if room.entries.load(Ordering::Acquire) < capacity {
            return true; // another thread made room while we waited for the sweep
        }
        let evicted = self.evict_one();
        self.note_evictions(usize::from(evicted));
        crate::trace::evicted(&self.env().name, usize::from(evicted), "capacity");
        evicted
    }

    /// Reclaims long-expired entries every so often, amortized over admissions.
    fn after_admission(&self) {
        let room = self.room();
        let admitted = room.admitted_since_sweep.fetch_add(1, Ordering::AcqRel) + 1;
        // Against the entries that were there before these admissions: `entries` counts
        // the admitted keys too, so comparing with it would never sweep again once the
        // map held more than 1024 entries.
        let before = room
            .entries
            .load(Ordering::Acquire)
            .saturating_sub(admitted);
        if admitted < before.max(1024) {
            return;
        }
        let Some(_sweep) = room.sweeping.try_lock() else {
            return;
        };
        room.admitted_since_sweep.store(0, Ordering::Release);
        let policy = self.env().policy;
        let window = policy
            .stale_while_revalidate
            .unwrap_or(policy.ttl.saturating_mul(15));
        let window = window.max(policy.stale_if_error.unwrap_or(0));
        let now = self.env().now();
        let evicted = self.sweep(&mut |cell| {
            // Abandoned empty entries (a creation that panicked) go too; a new key's
            // entry, empty until its caller claims it, stays.
            let expired = match cell.stamp() {
                Some(stamp) => {
                    stamp.expires() != u64::MAX && now >= stamp.expires().saturating_add(window)
                }
                None => cell.is_abandoned(),
            };
            expired && cell.try_retire()
        });
        self.note_evictions(evicted);
        crate::trace::evicted(&self.env().name, evicted, "expired");
    }

    fn note_evictions(&self, evicted: usize) {
        self.room().entries.fetch_sub(evicted, Ordering::AcqRel);
        self.env()
            .stats
            .evictions
            .fetch_add(evicted as u64, Ordering::Relaxed);
    }

    /// The key's value while its entry still belongs to `control`'s slot.
    pub(super) fn load_owned(
        &self,
        key: &dyn KeyForm<K>,
        control: &Arc<Control>,
    ) -> Option<Stamped<AnyValue>> {
        let current = |cell: &mut dyn Cell| cell.owned_by(control).then(|| cell.load());
        self.write_cell(key, current).flatten().flatten()
    }

    /// Stores a created value in the key's entry while it belongs to `control`'s slot.
    /// A value from the tier is stamped with the tier's age (F4), not as created now; its
    /// lifetime is `ttl`, or what `ttl_with` says for it (R6). Another process's stale
    /// value (`from.held`) is held only if no notification for the key came since the
    /// claim (F3); else the next call asks again.
    pub(super) fn publish(
        &self,
        key: &dyn KeyForm<K>,
        control: &Arc<Control>,
        value: AnyValue,
        created: u64,
        from: Provenance,
    ) {
        let lifetime = self.lifetime(key, &value);
        let mut stamped = stamp(value, created, from, lifetime);
        self.write_cell(key, |cell| {
            if cell.owned_by(control) {
                if from.held && !self.still_held(key) {
                    stamped.stamp.invalidate();
                }
                cell.store(stamped);
            }
        });
    }

    /// Detaches `control` from the key's entry if nobody else holds it: no claim, no
    /// waiter, no read guard. Callers reach a control only through the map under a
    /// shard lock, so the count is stable under the shard's write lock there.
    pub(super) fn release_control(&self, key: &dyn KeyForm<K>, control: &Arc<Control>) {
        self.write_cell(key, |cell| {
            // Two holders: the entry and the releasing caller.
            if cell.owned_by(control) && Arc::strong_count(control) == 2 && !control.keeps_state() {
                cell.detach();
            }
        });
    }

    /// `Cache::insert`: the value, stored as fresh through the key's slot (a read
    /// guard's fence waited for, R8), whatever was cached.
    pub(super) fn insert(&self, key: &dyn KeyForm<K>, value: AnyValue) {
        self.track(key);
        let Some(control) = self.control_for(key) else {
            return; // full of entries being created: nothing can make room now
        };
        let now = self.env().now();
        match control.fence() {
            Some(fence) => {
                fence.write();
                self.publish(key, &control, value, now, Provenance::HERE);
                fence.release_write();
            }
            None => self.publish(key, &control, value, now, Provenance::HERE),
        }
        self.release_control(key, &control);
    }
}

/// A created value with its stamp: its lifetime counted from its creation, or for a
/// value from the tier from the tier's age (F4). An age from the tier may reach back
/// before this process's clock began: a value already stale by it is marked so, whatever
/// `created` could say.
pub(super) fn stamp<V>(value: V, created: u64, from: Provenance, lifetime: u64) -> Stamped<V> {
    let expires = created.saturating_sub(from.age).saturating_add(lifetime);
    let mut stamped = Stamped::new(value, expires);
    if from.age >= lifetime {
        stamped.invalidate();
    }
    stamped
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
                    self.env.policy.of(s.stamp, now) == Freshness::Expired
                        && !self.env.policy.serves_on_error(s.expires(), now)
                }
                None => (entry as &dyn Cell).is_abandoned(),
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

impl<K, V, Mk: Marking> Inner<K, V, Mk>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// This cache, as the slow path runs on it typed.
    pub(super) fn slots(self: &Arc<Self>) -> SlotsHandle<K, V> {
        SlotsHandle(self.clone())
    }

    /// This cache's map, as the slow path reaches it (see `table.rs`).
    pub(super) fn table(&self) -> &dyn Table<K> {
        self
    }
}

impl<K, V, Mk: Marking> Slots<K, V> for Inner<K, V, Mk>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn env(&self) -> &Env {
        &self.env
    }

    fn tier(&self) -> Option<&TierLevel<K, V>> {
        self.level()
    }

    fn max_batch(&self) -> usize {
        self.max_batch
    }

    fn control_of(&self, key: &dyn KeyForm<K>) -> Option<Arc<Control>> {
        self.table().control_for(key)
    }

    fn forget_if_empty(&self, key: &dyn KeyForm<K>) {
        self.table().forget_if_empty(key);
    }

    // A value goes in and out through the table's per-key code, as the blocking calls'
    // do: one `Arc` per value created or loaded, on the slow path only.
    fn load_owned(&self, key: &dyn KeyForm<K>, control: &Arc<Control>) -> Option<Stamped<V>> {
        let stamped = self.table().load_owned(key, control)?;
        Some(stamped.map(AnyValue::take::<V>))
    }

    fn publish(
        &self,
        key: &dyn KeyForm<K>,
        control: &Arc<Control>,
        value: V,
        created: u64,
        from: Provenance,
    ) {
        let value = AnyValue::new(value);
        self.table().publish(key, control, value, created, from);
    }

    fn release_control(&self, key: &dyn KeyForm<K>, control: &Arc<Control>) {
        self.table().release_control(key, control);
    }
}
