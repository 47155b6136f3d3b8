//! Which entry goes when a bounded [`Cache`](crate::Cache) needs room: S3-FIFO.
//!
//! The policy is S3-FIFO (Yang et al., "FIFO queues are all you need for cache
//! eviction", SOSP '23): three FIFO queues instead of one LRU list.
//!
//! - *small* holds new keys. A key reaching its head that nobody asked for again since
//!   it came in is evicted, and its hash is remembered in *ghost*; a key that was asked
//!   for moves on to *main*. A burst of one-time keys (a scan) thus only ever cycles
//!   through *small*: the hot keys in *main* stay.
//! - *main* holds keys that proved useful. Its head is evicted if its mark says nobody
//!   asked for it since its last pass, else its mark is lowered by one and it goes round
//!   again (CLOCK with a 2-bit counter): keys asked for often survive several passes.
//! - *ghost* (hashes only, no values) lets a key that was evicted from *small* too soon
//!   come back straight into *main* on its next miss.
//!
//! Why S3-FIFO: a hit costs one relaxed load of a per-entry [`Mark`] and a store only
//! while the mark is below its ceiling, so a hot entry is not written again: no lock
//! and no shared write on a hit. The queues are touched only on a miss of a bounded
//! cache, under one mutex, O(1) amortized per miss. W-TinyLFU (Caffeine, moka) needs a
//! shared frequency sketch updated on every hit, which moka buffers and applies later:
//! a shared write per hit. SIEVE (Zhang et al., NSDI '24) has as cheap a hit (one
//! visited bit) but misses more on Zipf traces; `examples/eviction.rs` prints the miss
//! ratios of S3-FIFO, SIEVE and moka side by side.
//!
//! Sizes, chosen on those Zipf traces: *small* is 2 % of the capacity (the paper says
//! 10 %, Caffeine's window is 1 %), *ghost* remembers half as many keys as the capacity
//! (the paper: as many as main), and a key moves from *small* to *main* if it was asked
//! for at least once there.
//!
//! Stale values count as asked for: the mark is raised by every call that finds the
//! entry, fresh or stale (and by `get`), so a hot key whose value is being refreshed is
//! kept over a cold one. Entries whose value cannot be served any more (older than
//! their lifetime + `stale_while_revalidate`, R11, or a failed creation's empty leftover) are evicted as soon
//! as the policy reaches them, whatever their mark. An entry whose creation is in
//! flight is never evicted: it is passed over and stays in its queue.
//!
//! The queues hold a copy of each key and the ticket its entry was admitted under, and
//! are cleaned lazily: a node whose entry was removed (or removed and admitted again,
//! under a new ticket) is dropped when it is reached, or when stale nodes make the
//! queues twice as long as the capacity.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};

/// The per-entry state the policy reads: how often the entry was asked for lately (a
/// 2-bit counter, S3-FIFO's) and the ticket it was admitted under (fixed).
pub(crate) struct Mark {
    frequency: AtomicU8,
    ticket: u32,
}

/// A mark's counter saturates here: S3-FIFO's 2 bits.
const MAX_FREQUENCY: u8 = 3;

impl Mark {
    fn new(ticket: u32) -> Self {
        Mark {
            frequency: AtomicU8::new(0),
            ticket,
        }
    }

    /// Notes that a caller asked for the entry. Load first, store only if it changes:
    /// a hot entry already at the ceiling costs one relaxed load and a comparison, and
    /// no write, so threads hitting it do not bounce its cache line. Racing hits may
    /// count once for two; the policy only needs "asked for, and roughly how often".
    #[inline]
    pub(crate) fn touch(&self) {
        let frequency = self.frequency.load(Ordering::Relaxed);
        if frequency < MAX_FREQUENCY {
            self.frequency.store(frequency + 1, Ordering::Relaxed);
        }
    }

    /// The ticket the entry was admitted under.
    pub(crate) fn ticket(&self) -> u32 {
        self.ticket
    }

    fn frequency(&self) -> u8 {
        self.frequency.load(Ordering::Relaxed)
    }

    /// Lowers the counter by one (a pass of main's hand).
    fn wear(&self) {
        let frequency = self.frequency.load(Ordering::Relaxed);
        if frequency > 0 {
            self.frequency.store(frequency - 1, Ordering::Relaxed);
        }
    }
}

/// What a cache's entries keep for eviction: a [`Mark`] in a bounded cache, nothing in
/// an unbounded one ([`Unmarked`]), whose entries are reclaimed by age only and so need
/// not pay 8 bytes each for a mark nobody reads.
pub(crate) trait Marking: Send + Sync + Sized + 'static {
    /// Whether entries carry a mark, and so whether the cache may evict by it. A
    /// constant, so that an unbounded cache's code builds no eviction path at all.
    const BOUNDED: bool;

    /// The mark of a new entry; `evictor` is the cache's policy, if it is bounded.
    fn issue<K>(evictor: Option<&Evictor<K>>) -> Self;

    /// Notes that a caller asked for the entry.
    fn touch(&self);

    /// What the policy reads; `None` in an unbounded cache.
    fn mark(&self) -> Option<&Mark>;
}

impl Marking for Mark {
    const BOUNDED: bool = true;

    fn issue<K>(evictor: Option<&Evictor<K>>) -> Self {
        evictor.map_or_else(|| Mark::new(0), Evictor::new_mark)
    }

    #[inline]
    fn touch(&self) {
        Mark::touch(self);
    }

    fn mark(&self) -> Option<&Mark> {
        Some(self)
    }
}

/// The "mark" of an unbounded cache's entries: nothing, since no policy reads it.
pub(crate) struct Unmarked;

impl Marking for Unmarked {
    const BOUNDED: bool = false;

    fn issue<K>(_: Option<&Evictor<K>>) -> Self {
        Unmarked
    }

    #[inline]
    fn touch(&self) {}

    fn mark(&self) -> Option<&Mark> {
        None
    }
}

/// What the policy is told about a queued entry.
pub(crate) struct Candidate<'a> {
    pub(crate) mark: &'a Mark,
    /// Its value can no longer be served (R11) or it has none and nobody is creating one.
    pub(crate) worthless: bool,
}

/// How a visit to a queued entry ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Visit {
    /// No entry with that key and ticket any more: the node is stale.
    Gone,
    /// `decide` said keep.
    Kept,
    /// `decide` said evict and the entry was removed.
    Evicted,
    /// `decide` said evict, but its creation is in flight: it stays.
    Busy,
}

/// The map, as the policy sees it. The cache implements it over its `DashMap`.
pub(crate) trait Entries<K> {
    /// Finds the entry of `key` admitted under `ticket`, and removes it if `decide`
    /// returns true and no creation is in flight for it.
    fn visit(&self, key: &K, ticket: u32, decide: impl FnOnce(Candidate<'_>) -> bool) -> Visit;
}

/// The policy of one bounded cache: S3-FIFO's queues.
pub(crate) struct Evictor<K> {
    capacity: usize,
    next_ticket: AtomicU32,
    queues: parking_lot::Mutex<Queues<K>>,
}

struct Queues<K> {
    small: VecDeque<(K, u32)>,
    main: VecDeque<(K, u32)>,
    ghost: Ghost,
}

/// Hashes of keys recently evicted from small, oldest first.
struct Ghost {
    order: VecDeque<u64>,
    members: HashSet<u64, foldhash::fast::RandomState>,
    capacity: usize,
}

impl Ghost {
    fn remember(&mut self, hash: u64) {
        if self.capacity == 0 || !self.members.insert(hash) {
            return;
        }
        self.order.push_back(hash);
        if self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.members.remove(&oldest);
            }
        }
    }

    /// Whether `hash` was evicted lately; forgets it if so. (Its slot in `order` stays
    /// until it falls out; forgetting it again then is harmless.)
    fn recall(&mut self, hash: u64) -> bool {
        self.members.remove(&hash)
    }
}

impl<K> Evictor<K> {
    pub(crate) fn new(capacity: usize) -> Self {
        Evictor {
            capacity,
            next_ticket: AtomicU32::new(1),
            queues: parking_lot::Mutex::new(Queues {
                small: VecDeque::new(),
                main: VecDeque::new(),
                ghost: Ghost {
                    order: VecDeque::new(),
                    members: HashSet::default(),
                    capacity: capacity / 2,
                },
            }),
        }
    }

    /// The mark for a new entry, with a ticket of its own.
    pub(crate) fn new_mark(&self) -> Mark {
        Mark::new(self.next_ticket.fetch_add(1, Ordering::Relaxed))
    }

    /// The length small is kept at: S3-FIFO evicts from small while it is longer.
    fn small_target(&self) -> usize {
        (self.capacity / 50).max(1)
    }

    /// Queues an entry just inserted into the map: into main if its key was evicted
    /// from small lately (ghost), else into small. `hash` is the key's hash in the map.
    pub(crate) fn admit(&self, key: K, ticket: u32, hash: u64, entries: &impl Entries<K>) {
        let mut queues = self.queues.lock();
        if queues.ghost.recall(hash) {
            queues.main.push_back((key, ticket));
        } else {
            queues.small.push_back((key, ticket));
        }
        // Stale nodes pile up only if keys are removed and admitted again without the
        // cache ever filling; drop them once they double the queues (amortized O(1)).
        if queues.small.len() + queues.main.len() > 2 * self.capacity + 16 {
            let alive =
                |(key, ticket): &(K, u32)| entries.visit(key, *ticket, |_| false) != Visit::Gone;
            queues.small.retain(alive);
            queues.main.retain(alive);
        }
    }

    /// Evicts one entry; `hash` gives a key's hash in the map (for ghost). False if no
    /// entry can go: every queued entry is being created.
    pub(crate) fn evict_one(&self, entries: &impl Entries<K>, hash: impl Fn(&K) -> u64) -> bool {
        let mut queues = self.queues.lock();
        let queues = &mut *queues;
        // Every node is reached at most MAX_FREQUENCY + 2 times before it is evicted
        // (once in small, then once per unit of its counter in main, then once more);
        // past that, what is left is busy.
        let mut budget = (queues.small.len() + queues.main.len()) * (MAX_FREQUENCY as usize + 2);
        while budget > 0 {
            budget -= 1;
            let from_small = queues.small.len() >= self.small_target() || queues.main.is_empty();
            if from_small {
                let Some((key, ticket)) = queues.small.pop_front() else {
                    return false;
                };
                let mut asked = false;
                let visit = entries.visit(&key, ticket, |candidate| {
                    asked = candidate.mark.frequency() > 0;
                    candidate.worthless || !asked
                });
                match visit {
                    Visit::Gone => {}
                    Visit::Evicted => {
                        if !asked {
                            queues.ghost.remember(hash(&key));
                        }
                        return true;
                    }
                    Visit::Kept => queues.main.push_back((key, ticket)),
                    Visit::Busy => queues.small.push_back((key, ticket)),
                }
            } else {
                let Some((key, ticket)) = queues.main.pop_front() else {
                    return false;
                };
                let visit = entries.visit(&key, ticket, |candidate| {
                    if candidate.worthless || candidate.mark.frequency() == 0 {
                        return true;
                    }
                    candidate.mark.wear();
                    false
                });
                match visit {
                    Visit::Gone => {}
                    Visit::Evicted => return true,
                    Visit::Kept | Visit::Busy => queues.main.push_back((key, ticket)),
                }
            }
        }
        // Callers raised the marks faster than the passes wore them down (or what is
        // left is busy): take the first entry that can go, so that "no room" means
        // every entry is being created, and a new key is not computed outside its slot.
        for queue in [&mut queues.small, &mut queues.main] {
            for _ in 0..queue.len() {
                let Some((key, ticket)) = queue.pop_front() else {
                    break;
                };
                match entries.visit(&key, ticket, |_| true) {
                    Visit::Gone => {}
                    Visit::Evicted => return true,
                    Visit::Kept | Visit::Busy => queue.push_back((key, ticket)),
                }
            }
        }
        false
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    /// A map of entries for the policy alone: key -> (mark, busy, worthless).
    /// `hot`: every visit first raises the mark to the ceiling, as callers hitting
    /// every entry all the time would.
    #[derive(Default)]
    struct FakeMap(
        RefCell<HashMap<u64, (Mark, bool, bool)>>,
        std::cell::Cell<bool>,
    );

    impl Entries<u64> for FakeMap {
        fn visit(
            &self,
            key: &u64,
            ticket: u32,
            decide: impl FnOnce(Candidate<'_>) -> bool,
        ) -> Visit {
            let mut map = self.0.borrow_mut();
            let Some((mark, busy, worthless)) = map.get(key) else {
                return Visit::Gone;
            };
            if mark.ticket() != ticket {
                return Visit::Gone;
            }
            let busy = *busy;
            if self.1.get() {
                (0..MAX_FREQUENCY).for_each(|_| mark.touch());
            }
            if !decide(Candidate {
                mark,
                worthless: *worthless,
            }) {
                Visit::Kept
            } else if busy {
                Visit::Busy
            } else {
                map.remove(key);
                Visit::Evicted
            }
        }
    }

    /// The policy and its map, evicting whenever the map is full, as the cache does.
    struct Sim {
        evictor: Evictor<u64>,
        map: FakeMap,
        capacity: usize,
    }

    impl Sim {
        fn new(capacity: usize) -> Self {
            Sim {
                evictor: Evictor::new(capacity),
                map: FakeMap::default(),
                capacity,
            }
        }

        /// A call for `key`: a hit touches its mark; a miss makes room and admits it.
        /// True on a hit.
        fn get(&self, key: u64) -> bool {
            if let Some((mark, _, _)) = self.map.0.borrow().get(&key) {
                mark.touch();
                return true;
            }
            while self.map.0.borrow().len() >= self.capacity {
                assert!(self.evictor.evict_one(&self.map, |k| *k), "no room");
            }
            let mark = self.evictor.new_mark();
            let ticket = mark.ticket();
            self.map.0.borrow_mut().insert(key, (mark, false, false));
            self.evictor.admit(key, ticket, key, &self.map);
            false
        }

        fn has(&self, key: u64) -> bool {
            self.map.0.borrow().contains_key(&key)
        }

        fn set(&self, key: u64, busy: bool, worthless: bool) {
            let mut map = self.map.0.borrow_mut();
            let entry = map.get_mut(&key).unwrap();
            entry.1 = busy;
            entry.2 = worthless;
        }

        fn queued(&self) -> usize {
            let queues = self.evictor.queues.lock();
            queues.small.len() + queues.main.len()
        }
    }

    #[test]
    fn a_touch_counts_up_to_the_ceiling_and_keeps_the_ticket() {
        let mark = Mark::new(12345);
        for expected in [1, 2, 3, 3, 3] {
            mark.touch();
            assert_eq!(mark.frequency(), expected);
            assert_eq!(mark.ticket(), 12345);
        }
        mark.wear();
        assert_eq!((mark.frequency(), mark.ticket()), (2, 12345));
        for _ in 0..5 {
            mark.wear();
        }
        assert_eq!((mark.frequency(), mark.ticket()), (0, 12345));
    }

    #[test]
    fn keys_nobody_asks_for_again_leave_in_arrival_order() {
        let sim = Sim::new(100);
        for key in 0..100 {
            assert!(!sim.get(key));
        }
        sim.get(1000);
        assert!(!sim.has(0) && sim.has(1) && sim.has(1000));
        sim.get(1001);
        assert!(!sim.has(1) && sim.has(2));
    }

    #[test]
    fn a_key_asked_for_again_survives_a_flood_of_one_time_keys() {
        let sim = Sim::new(100);
        sim.get(7);
        assert!(sim.get(7));
        for key in 1000..11_000 {
            sim.get(key);
            sim.get(7); // hot: asked for all along
        }
        assert!(sim.has(7));
        // Keys asked for once before the flood survive it too: they went to main.
        let sim = Sim::new(100);
        for key in 0..50 {
            sim.get(key);
            sim.get(key);
        }
        for key in 1000..11_000 {
            sim.get(key);
        }
        assert!((0..50).all(|key| sim.has(key)), "a scan evicted main keys");
    }

    #[test]
    fn main_keys_not_asked_for_lately_go_before_those_that_were() {
        let sim = Sim::new(10);
        for key in 0..10 {
            sim.get(key);
            sim.get(key);
        }
        // 0..10 are headed for main. Keep asking for the even ones only, while new
        // keys asked for twice (so bound for main too) come in.
        for round in 0..200 {
            for key in (0..10).step_by(2) {
                sim.get(key);
            }
            sim.get(1000 + round);
            sim.get(1000 + round);
        }
        assert!((0..10).step_by(2).all(|key| sim.has(key)));
        assert!((1..10).step_by(2).all(|key| !sim.has(key)));
    }

    #[test]
    fn a_key_evicted_from_small_comes_back_into_main() {
        let sim = Sim::new(100);
        for key in 0..101 {
            sim.get(key);
        }
        assert!(!sim.has(0), "0 was evicted from small");
        sim.get(0); // a ghost hit: straight into main
        assert!(sim
            .evictor
            .queues
            .lock()
            .main
            .iter()
            .any(|(key, _)| *key == 0));
        for key in 2000..2200 {
            sim.get(key);
        }
        assert!(
            sim.has(0),
            "0 went into main, where one-time keys do not reach"
        );
    }

    #[test]
    fn worthless_entries_go_first_whatever_their_mark() {
        let sim = Sim::new(10);
        for key in 0..10 {
            for _ in 0..4 {
                sim.get(key);
            }
        }
        sim.set(5, false, true);
        sim.get(100);
        assert!(!sim.has(5), "the worthless entry was not the one evicted");
        assert!((0..10).filter(|key| *key != 5).all(|key| sim.has(key)));
    }

    #[test]
    fn entries_being_created_are_passed_over_and_none_when_all_are() {
        let sim = Sim::new(3);
        for key in 0..3 {
            sim.get(key);
        }
        sim.set(0, true, false);
        sim.get(10);
        assert!(sim.has(0) && !sim.has(1), "the busy head was evicted");
        for key in [0, 2, 10] {
            sim.set(key, true, false);
        }
        assert!(!sim.evictor.evict_one(&sim.map, |k| *k));
        assert_eq!(sim.map.0.borrow().len(), 3);
    }

    #[test]
    fn room_is_made_even_when_every_entry_is_asked_for_between_passes() {
        let sim = Sim::new(8);
        for key in 0..8 {
            sim.get(key);
            sim.get(key);
        }
        sim.map.1.set(true);
        sim.set(0, true, false); // busy: cannot go
        assert!(sim.evictor.evict_one(&sim.map, |k| *k), "no room made");
        assert_eq!(sim.map.0.borrow().len(), 7);
        assert!(sim.has(0));
    }

    #[test]
    fn stale_nodes_are_skipped_and_do_not_pile_up() {
        let sim = Sim::new(4);
        for round in 0..1000 {
            sim.get(round % 3);
            sim.map.0.borrow_mut().remove(&(round % 3)); // removed behind the policy's back
        }
        assert!(
            sim.queued() <= 2 * 4 + 16 + 1,
            "{} nodes queued",
            sim.queued()
        );
        // Readmitted under a new ticket: the old node must not evict the new entry.
        sim.get(1);
        for key in 10..13 {
            sim.get(key);
        }
        sim.get(20);
        assert!(!sim.has(1), "the oldest live entry goes");
        assert!((10..13).all(|key| sim.has(key)));
    }
}
