//! A cache's entries as the per-key loop reaches them ([`Slots`]): a key's control,
//! found or admitted with a new entry (evicting or sweeping to make room), its value
//! loaded and published while the entry still belongs to that control.

use super::call::{Behind, EntryStore, Slots, SlotsHandle};
use super::lookup::{KeyForm, Owned};
use super::store::{is_abandoned, owns, Entry, Inner};
use crate::evict::{Candidate, Entries, Mark, Marking, Visit};
use crate::slot::{Control, Env, Freshness, Provenance, Stamped, Store};
use crate::tier::TierLevel;
use std::hash::Hash;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl<K, V, Mk: Marking> Inner<K, V, Mk>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// This cache, as the slow path runs on it.
    pub(super) fn slots(self: &Arc<Self>) -> SlotsHandle<K, V> {
        SlotsHandle(self.clone())
    }

    /// Runs `read` on the key's entry, if there is one, under its shard's read lock:
    /// the slow path's look-up, its closure behind `dyn` so that the look-up is built
    /// once per entry type (the hit path's `with_matching` is inlined in each caller).
    fn read_entry<R>(
        &self,
        key: &dyn KeyForm<K>,
        read: impl FnOnce(&Entry<V, Mk>) -> R,
    ) -> Option<R> {
        let (mut read, mut out) = (Some(read), None);
        let mut run = |entry: &Entry<V, Mk>| out = read.take().map(|read| read(entry));
        self.with_matching(key, &mut run as &mut dyn FnMut(&Entry<V, Mk>));
        out
    }

    /// [`read_entry`](Inner::read_entry) under the shard's write lock.
    fn write_entry<R>(
        &self,
        key: &dyn KeyForm<K>,
        write: impl FnOnce(&mut Entry<V, Mk>) -> R,
    ) -> Option<R> {
        let (mut write, mut out) = (Some(write), None);
        let mut run = |entry: &mut Entry<V, Mk>| out = write.take().map(|write| write(entry));
        self.with_matching_mut(key, &mut run as &mut dyn FnMut(&mut Entry<V, Mk>));
        out
    }

    /// After a failed first creation the key's entry holds no value: drop it, so that
    /// `len` counts values and failing keys don't pile up. A waiter that already took
    /// over keeps it (its claim makes retiring fail); one still waiting starts over.
    fn drop_if_empty(&self, key: &dyn KeyForm<K>) {
        // A key backing off keeps its entry: its last error answers meanwhile.
        let backing_off =
            |entry: &Entry<V, Mk>| entry.control.as_ref().is_some_and(|c| c.keeps_state());
        let empty = |entry: &Entry<V, Mk>| {
            entry.value.is_none() && !backing_off(entry) && entry.try_retire()
        };
        if self.remove_if(key, empty) {
            self.entries.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// The control of `key`'s slot, inserting an empty entry for a new key. `None`
    /// when the cache is at capacity and nothing can be evicted.
    fn control_for(&self, key: &dyn KeyForm<K>) -> Option<Arc<Control>> {
        let found = self.read_entry(key, |entry| {
            entry.mark.touch(); // a stale hit counts for eviction as a fresh one
            entry.control.clone()
        });
        if let Some(Some(control)) = found {
            return Some(control);
        }
        if let Some(control) = self.write_entry(key, |entry| entry.attach(self.sync_readers)) {
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
        let window = policy
            .stale_while_revalidate
            .unwrap_or(policy.ttl.saturating_mul(15));
        let window = window.max(policy.stale_if_error.unwrap_or(0));
        let now = self.env.now();
        let mut evicted = 0;
        self.map.retain(|_, entry| {
            // Abandoned empty entries (a creation that panicked) go too; a new key's
            // entry, empty until its caller claims it, stays.
            let expired = match &entry.value {
                Some(stamped) => {
                    stamped.expires() != u64::MAX && now >= stamped.expires().saturating_add(window)
                }
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

impl<K, V, Mk: Marking> Inner<K, V, Mk>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub(super) fn insert(self: &Arc<Self>, key: K, value: V) {
        if let Some(tier) = self.level() {
            tier.track(&key);
        }
        let key = Owned(key);
        let Some(control) = self.control_for(&key) else {
            return; // full of entries being created: nothing can make room now
        };
        let store = EntryStore {
            inner: self.slots(),
            key,
            control: control.clone(),
        };
        let now = self.env.now();
        match control.fence() {
            Some(fence) => {
                fence.write();
                store.publish(value, now, Provenance::HERE);
                fence.release_write();
            }
            None => store.publish(value, now, Provenance::HERE),
        }
        drop(control);
        store.release();
    }
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
                    self.env.policy.of(s, now) == Freshness::Expired
                        && !self.env.policy.serves_on_error(s.expires(), now)
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

    fn behind_tier(&self) -> Option<Behind<'_, K, V>> {
        Some((self.level()?, self.behind_tier?))
    }

    fn max_batch(&self) -> usize {
        self.max_batch
    }

    fn control_of(&self, key: &dyn KeyForm<K>) -> Option<Arc<Control>> {
        self.control_for(key)
    }

    fn forget_if_empty(&self, key: &dyn KeyForm<K>) {
        self.drop_if_empty(key);
    }

    fn load_owned(&self, key: &dyn KeyForm<K>, control: &Arc<Control>) -> Option<Stamped<V>> {
        let current = |entry: &Entry<V, Mk>| owns(control, entry).then(|| entry.value.clone());
        self.read_entry(key, current).flatten().flatten()
    }

    fn publish_owned(
        &self,
        key: &dyn KeyForm<K>,
        control: &Arc<Control>,
        mut stamped: Stamped<V>,
        held: bool,
    ) {
        self.write_entry(key, |entry| {
            if owns(control, entry) {
                // F3: another process's stale value is held only if no notification
                // for the key came since the claim; else the next call asks again.
                let still_held = |level: &TierLevel<K, V>| level.still_held(&key.to_key());
                if held && !self.level().is_some_and(still_held) {
                    stamped.invalidate();
                }
                entry.value = Some(stamped);
            }
        });
    }

    fn release_control(&self, key: &dyn KeyForm<K>, control: &Arc<Control>) {
        self.write_entry(key, |entry| {
            // Two holders: the entry and the releasing store.
            if owns(control, entry) && Arc::strong_count(control) == 2 && !control.keeps_state() {
                entry.control = None;
            }
        });
    }

    fn lifetime(&self, key: &dyn KeyForm<K>, value: &V) -> u64 {
        match &self.lifetime {
            Some(lifetime) => lifetime(&key.to_key(), value),
            None => self.env.policy.ttl,
        }
    }
}
