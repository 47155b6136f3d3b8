//! The tier inside a cache: what runs in place of the creator when a tier is
//! configured. The local slot already lets at most one caller per key and process get
//! here at a time (the first level of the two-level claim, F3); this adds the second,
//! fleet-wide level.

use super::board::Board;
use super::{Claim, Lease, Publish, SharedTier, TierError, TierEvent};
use crate::clock::to_nanos;
use crate::freshness::{Lifetime, Policy};
use crate::slot::{Made, Provenance};
use crate::sync::Mutex;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;
#[cfg(not(loom))]
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// How long a cold key held by a live owner elsewhere is waited for when the cache sets
/// no `wait_at_most` (F2); then this caller creates for itself.
const COLD_WAIT_DEFAULT: Duration = Duration::from_secs(30);
/// Between two claims of a cold key held elsewhere, absent any notification: each
/// claim sees whether the owner's lease is still being renewed (F2).
const COLD_RECHECK: Duration = Duration::from_millis(250);

/// What the local cache does on a tier event (F6).
pub(crate) enum LocalAction<K> {
    Invalidate(K),
    Remove(K),
    InvalidateAll,
    Clear,
}

/// What `CacheBuilder::shared` hands the cache: the tier, and its level's constructor.
/// The constructor is named there, so a cache built without a tier compiles none of
/// the level's code: neither its event handling nor, through `TierLevel::keyed`, its
/// per-key steps.
pub(crate) struct TierSetting<K, V> {
    tier: Arc<dyn SharedTier<K, V>>,
    level: LevelConstructor<K, V>,
}

/// Applies a tier's events to the cache's own values (its L1).
pub(crate) type LocalSink<K> = Box<dyn Fn(LocalAction<K>) + Send + Sync>;

type LevelConstructor<K, V> =
    fn(Arc<dyn SharedTier<K, V>>, &Policy, Option<Lifetime<K, V>>, LocalSink<K>) -> TierLevel<K, V>;

/// Builds one key's steps in a level's tier.
type KeyedSteps<K, V> = for<'a> fn(&'a TierLevel<K, V>, K) -> Box<dyn KeyedTier<V> + 'a>;

impl<K, V> TierSetting<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub(crate) fn new(tier: Arc<dyn SharedTier<K, V>>) -> Self {
        TierSetting {
            tier,
            level: TierLevel::new,
        }
    }
}

impl<K, V> TierSetting<K, V> {
    /// The cache's level: [`TierLevel::new`], built where the tier was given.
    pub(crate) fn bind(
        self,
        policy: &Policy,
        lifetime: Option<Lifetime<K, V>>,
        local: LocalSink<K>,
    ) -> TierLevel<K, V> {
        (self.level)(self.tier, policy, lifetime, local)
    }
}

/// The fleet tier as seen by one cache (cheap to clone: a background refresh takes a
/// clone to the refresh executor).
pub(crate) struct TierLevel<K, V> {
    pub(super) tier: Arc<dyn SharedTier<K, V>>,
    /// The cache's freshness settings: `ttl`, `refresh_ahead` for the claims, the back-off
    /// a failed creation holds the key for, how long a cold wait lasts.
    pub(super) policy: Policy,
    /// `ttl_with`: each value's own lifetime, published with it (R6).
    lifetime: Option<Lifetime<K, V>>,
    /// R11: a held stale value is served no longer than its lifetime +
    /// `stale_while_revalidate` after its creation, by its real age.
    stale_while_revalidate: Option<Duration>,
    /// With `stale_while_revalidate`: the stale values held while another process's lease runs (F1),
    /// with their real creation instants. L1 stamps them by that age, so they are stale
    /// there, and its refreshes take them from here instead of asking the tier again
    /// (F3). A notification for a key drops its hold.
    holds: Arc<Mutex<HashMap<K, Hold<V>>>>,
    pub(super) board: Arc<Board<K>>,
    /// One key's steps in the tier, built where the level is (see [`TierSetting`]).
    pub(super) keyed: KeyedSteps<K, V>,
}

/// Another process's stale value, held while its lease runs.
struct Hold<V> {
    value: V,
    created: Instant,
    lifetime: Duration,
    until: Instant,
}

impl<K, V> Clone for TierLevel<K, V> {
    fn clone(&self) -> Self {
        TierLevel {
            tier: self.tier.clone(),
            policy: self.policy,
            lifetime: self.lifetime.clone(),
            stale_while_revalidate: self.stale_while_revalidate,
            holds: self.holds.clone(),
            board: self.board.clone(),
            keyed: self.keyed,
        }
    }
}

impl<K: Hash + Eq, V> TierLevel<K, V> {
    /// Whether `key`'s held stale value may be stored as held: no notification for it
    /// came since its claim. Called under the L1 entry's lock, which a notification's
    /// invalidation takes after taking the key off the board: either it sees the key
    /// gone, or the notification invalidates what it stores.
    pub(crate) fn still_held(&self, key: &K) -> bool {
        self.board.holds(key)
    }
}

impl<K: 'static, V: 'static> TierLevel<K, V> {
    /// Fleet-wide soft invalidation (F6); a failing tier changes nothing here (F7).
    pub(crate) fn invalidate(&self, key: &K) {
        let _ = self.tier.invalidate(key);
    }

    /// Fleet-wide removal (F6); a failing tier changes nothing here (F7).
    pub(crate) fn remove(&self, key: &K) {
        let _ = self.tier.remove(key);
    }

    /// Fleet-wide `invalidate_all` (soft) or `clear` (`hard`, F6); a failing tier
    /// changes nothing here (F7).
    pub(crate) fn invalidate_all(&self, hard: bool) {
        let _ = self.tier.invalidate_all(hard);
    }

    /// A copy stored here without the tier (`insert`) still hears the key's events (F6).
    pub(crate) fn track(&self, key: &K) {
        self.tier.track(key);
    }
}

/// The first half of a shared creation: serve from the tier, or create (with a lease
/// when the tier granted one).
pub(crate) enum Begin<V> {
    Serve(Made<V>),
    Create(Option<Lease>),
    /// Cold and held elsewhere: wait for a notification, at most this long, then claim
    /// again.
    Wait(Duration),
}

/// How a cold wait for another process's creation is going (F2).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ColdWait {
    /// When this caller gives up and creates itself: `wait_at_most` after it first saw
    /// the key held elsewhere.
    deadline: Option<Instant>,
}

impl<K, V> TierLevel<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Binds `tier` to a cache of this `policy` and `lifetime`; `local` applies events
    /// to the cache's L1.
    fn new(
        tier: Arc<dyn SharedTier<K, V>>,
        policy: &Policy,
        lifetime: Option<Lifetime<K, V>>,
        local: LocalSink<K>,
    ) -> Self {
        let board = Arc::new(Board::new());
        let events = board.clone();
        let holds: Arc<Mutex<HashMap<K, Hold<V>>>> = Arc::new(Mutex::new(HashMap::new()));
        let dropped = holds.clone();
        tier.subscribe(Arc::new(move |event| {
            let wake = |key: &K| {
                dropped.lock().remove(key);
                events.notify(key)
            };
            match event {
                TierEvent::Invalidated(key) => {
                    wake(&key);
                    local(LocalAction::Invalidate(key));
                }
                TierEvent::Removed(key) => {
                    wake(&key);
                    local(LocalAction::Remove(key));
                }
                // A held stale copy may now be replaced from the tier (F3).
                TierEvent::Published(key) | TierEvent::Released(key) => {
                    if wake(&key) {
                        local(LocalAction::Invalidate(key));
                    }
                }
                TierEvent::Reset | TierEvent::InvalidatedAll => {
                    dropped.lock().clear();
                    events.reset();
                    local(LocalAction::InvalidateAll);
                }
                TierEvent::Cleared => {
                    dropped.lock().clear();
                    events.reset();
                    local(LocalAction::Clear);
                }
            }
        }));
        TierLevel {
            tier,
            policy: *policy,
            lifetime,
            stale_while_revalidate: policy.stale_while_revalidate.map(Duration::from_nanos),
            holds,
            board,
            keyed: |level, key| {
                Box::new(KeyedLevel {
                    level,
                    key,
                    _value: PhantomData,
                })
            },
        }
    }

    /// How long `value` stays fresh: `ttl`, or what `ttl_with` says (R6).
    pub(super) fn lifetime_of(&self, key: &K, value: &V) -> Duration {
        Duration::from_nanos(match &self.lifetime {
            Some(lifetime) => lifetime(key, value),
            None => self.policy.ttl,
        })
    }

    /// How long to keep `key` claimed after its `failures`-th failure in a row: the
    /// back-off's pause, fleet-wide (`retry_backoff`); zero without one (F8).
    pub(super) fn hold_after(&self, failures: u32) -> Duration {
        self.policy.backoff.map_or(Duration::ZERO, |backoff| {
            Duration::from_nanos(backoff.pause(failures.max(1), fastrand::f64()))
        })
    }

    fn begin(&self, key: &K, cold: &mut ColdWait, failures: &mut u32) -> Begin<V> {
        if let Some(held) = self.held_copy(key) {
            return Begin::Serve(held);
        }
        // On the board before the claim, so that a notification arriving between the
        // claim's reply and the L1 store is not lost (it takes the key out).
        self.board.hold(key.clone());
        let claim = self.tier.claim(key, self.refresh_ahead());
        self.settle(key, claim, cold, failures)
    }

    /// The `refresh_ahead` each claim carries (zero without one).
    pub(super) fn refresh_ahead(&self) -> Duration {
        Duration::from_nanos(self.policy.refresh_ahead)
    }

    /// What a claim's answer means for `key`, which was put on the board before it.
    pub(super) fn settle(
        &self,
        key: &K,
        claim: Result<Claim<V>, TierError>,
        cold: &mut ColdWait,
        failures: &mut u32,
    ) -> Begin<V> {
        if !matches!(claim, Ok(Claim::Busy { stale: Some(_), .. })) {
            self.board.drop_hold(key);
        }
        let claim = match claim {
            Ok(claim) => claim,
            // F7: Redis is down or slow: the local rules apply.
            Err(_) => return Begin::Create(None),
        };
        match claim {
            // R4 fleet-wide, and F3: a process without a fresh copy takes the tier's.
            Claim::Fresh(shared) => Begin::Serve(Made {
                value: shared.value,
                from: Provenance {
                    age: to_nanos(shared.age),
                    held: false,
                    tier: true,
                },
            }),
            // F1: someone else refreshes; hold their stale value as if fresh until
            // their lease ends or a notification arrives, without asking again.
            Claim::Busy {
                stale: Some(stale),
                lease_left,
            } => match self.stale_while_revalidate {
                None => {
                    // Held until the lease ends; a value still within its lifetime (due
                    // for an early refresh) no longer than that lifetime either.
                    let mut age = stale.lifetime.saturating_sub(lease_left);
                    if stale.age < stale.lifetime {
                        age = age.max(stale.age);
                    }
                    Begin::Serve(Made {
                        value: stale.value,
                        from: Provenance {
                            age: to_nanos(age),
                            held: true,
                            tier: true,
                        },
                    })
                }
                // R11: too old to serve by its real age: cold, wait for the owner (F2).
                Some(stale_while_revalidate)
                    if stale.age >= stale.lifetime.saturating_add(stale_while_revalidate) =>
                {
                    self.board.drop_hold(key);
                    self.wait_cold(lease_left, cold)
                }
                Some(_) => {
                    let now = Instant::now();
                    let hold = Hold {
                        value: stale.value.clone(),
                        created: now.checked_sub(stale.age).unwrap_or(now),
                        lifetime: stale.lifetime,
                        until: now + lease_left,
                    };
                    self.holds.lock().insert(key.clone(), hold);
                    Begin::Serve(Made {
                        value: stale.value,
                        from: Provenance {
                            age: to_nanos(stale.age),
                            held: true,
                            tier: true,
                        },
                    })
                }
            },
            // F2: cold, created elsewhere: wait (bounded), then claim again.
            Claim::Busy {
                stale: None,
                lease_left,
            } => self.wait_cold(lease_left, cold),
            Claim::Owned {
                lease,
                failures: before,
                ..
            } => {
                *failures = before;
                Begin::Create(Some(lease))
            }
        }
    }

    /// F2: a cold key created elsewhere is waited for while its owner's lease is
    /// renewed (each claim after a notification or a recheck sees that), up to
    /// `wait_at_most` (30 s unless set) from when this caller first saw it held; past
    /// that, created here. An owner whose lease runs out lets the next claim own it.
    fn wait_cold(&self, lease_left: Duration, cold: &mut ColdWait) -> Begin<V> {
        let now = Instant::now();
        let limit = self
            .policy
            .wait_at_most
            .map_or(COLD_WAIT_DEFAULT, Duration::from_nanos);
        let deadline = *cold.deadline.get_or_insert(now + limit);
        if now >= deadline {
            return Begin::Create(None);
        }
        Begin::Wait(lease_left.min(COLD_RECHECK).min(deadline - now))
    }

    /// With `stale_while_revalidate`: the stale value held for `key` while another process's lease
    /// runs, with its real age, if it may still be served (R11) and no notification
    /// for the key came since (F3).
    pub(super) fn held_copy(&self, key: &K) -> Option<Made<V>> {
        let stale_while_revalidate = self.stale_while_revalidate?;
        let mut holds = self.holds.lock();
        let hold = holds.get(key)?;
        let age = hold.created.elapsed();
        let servable = Instant::now() < hold.until
            && age < hold.lifetime.saturating_add(stale_while_revalidate)
            && self.board.holds(key);
        if !servable {
            holds.remove(key);
            return None;
        }
        Some(Made {
            value: hold.value.clone(),
            from: Provenance {
                age: to_nanos(age),
                held: true,
                tier: true,
            },
        })
    }
}

/// How a value this process created and published with `lifetime` is stamped in L1.
pub(super) fn published(publish: Result<Publish, TierError>, lifetime: Duration) -> Provenance {
    match publish {
        Ok(Publish::Stored) => Provenance::HERE,
        // F5: fenced. The caller still gets its value; L1 keeps it stale, so the next
        // caller takes the tier's current one.
        Ok(Publish::Rejected) => Provenance {
            age: to_nanos(lifetime),
            held: false,
            tier: false,
        },
        // F7: kept locally, as the local rules would.
        Err(_) => Provenance::HERE,
    }
}

/// One key's steps in the tier, with the key's type erased: the creation future then
/// names no `K`, and so needs no `K: 'static` proof where it is checked for `Send` (an
/// async caller keyed by `&'static str` would otherwise fail that check). The steps
/// around a creation live here, behind `dyn`, rather than in `TierCreation`: built
/// where a tier is given, so that a cache without one builds none of them.
pub(super) trait KeyedTier<V>: Send + Sync {
    /// Before the creation: `Ready(Some(made))`, the tier's value and its age, to serve;
    /// `Ready(None)`, create, under the lease if `side` now holds it; or wait for
    /// another process's value.
    fn open(&self, side: &mut TierSide, cx: &mut Context<'_>) -> Poll<Option<Made<V>>>;
    /// After the creation: publish its value under the lease, or release the lease at
    /// once if it failed (`None`, F8). Says how the created value is to be stamped in
    /// L1: fresh, or stale when the tier fenced it off (F5).
    fn close(&self, side: &mut TierSide, created: Option<&V>) -> Provenance;
    fn release(&self, lease: &Lease);
    /// The same key's steps, owning their level, to run on the refresh executor (R10).
    fn detached(&self) -> Box<dyn KeyedTier<V>>;
}

/// What one creation's tier steps carry between [`KeyedTier::open`] and
/// [`KeyedTier::close`].
pub(crate) struct TierSide {
    /// Waits by parking (blocking callers) or by awaiting.
    blocking: bool,
    cold: ColdWait,
    waiting: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    pub(super) lease: Option<Lease>,
    /// The key's failures in a row before this claim, fleet-wide (sizes the back-off).
    failures: u32,
}

impl TierSide {
    pub(super) fn new(blocking: bool) -> Self {
        TierSide {
            blocking,
            cold: ColdWait::default(),
            waiting: None,
            lease: None,
            failures: 0,
        }
    }
}

/// One key of a level that is borrowed by a call, or owned by a detached refresh.
struct KeyedLevel<L, K, V> {
    level: L,
    key: K,
    _value: PhantomData<fn() -> V>,
}

impl<L, K, V> KeyedTier<V> for KeyedLevel<L, K, V>
where
    L: Deref<Target = TierLevel<K, V>> + Send + Sync,
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn open(&self, side: &mut TierSide, cx: &mut Context<'_>) -> Poll<Option<Made<V>>> {
        let board = &self.level.board;
        loop {
            if let Some(wait) = &mut side.waiting {
                if wait.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                side.waiting = None;
            }
            let seen = board.epoch();
            match self
                .level
                .begin(&self.key, &mut side.cold, &mut side.failures)
            {
                Begin::Serve(made) => return Poll::Ready(Some(made)),
                Begin::Create(lease) => {
                    side.lease = lease;
                    return Poll::Ready(None);
                }
                Begin::Wait(timeout) if side.blocking => board.wait(seen, timeout),
                Begin::Wait(timeout) => {
                    side.waiting = Some(Box::pin(wait_off_thread(board.clone(), seen, timeout)));
                }
            }
        }
    }

    fn close(&self, side: &mut TierSide, created: Option<&V>) -> Provenance {
        let Some(lease) = side.lease.take() else {
            return Provenance::HERE; // F7: no lease, the local rules
        };
        let Some(value) = created else {
            // F8, and the back-off fleet-wide: no process tries again before it ends.
            let hold = self.level.hold_after(side.failures.saturating_add(1));
            let _ = self.level.tier.release(&self.key, &lease, hold);
            return Provenance::HERE;
        };
        let lifetime = self.level.lifetime_of(&self.key, value);
        let publish = self.level.tier.publish(&self.key, &lease, value, lifetime);
        published(publish, lifetime)
    }

    fn release(&self, lease: &Lease) {
        // On failure the lease runs out by itself (F5).
        let _ = self.level.tier.release(&self.key, lease, Duration::ZERO);
    }

    fn detached(&self) -> Box<dyn KeyedTier<V>> {
        Box::new(KeyedLevel {
            level: Arc::new(TierLevel::clone(&self.level)),
            key: self.key.clone(),
            _value: PhantomData,
        })
    }
}

/// Waits on the board on a helper thread, so an async caller never blocks its own.
#[cfg(not(loom))]
pub(super) fn wait_off_thread<K: Hash + Eq + Send + Sync + 'static>(
    board: Arc<Board<K>>,
    seen: u64,
    timeout: Duration,
) -> impl Future<Output = ()> + Send {
    let fired = Arc::new((event_listener::Event::new(), AtomicBool::new(false)));
    let signal = fired.clone();
    std::thread::spawn(move || {
        board.wait(seen, timeout);
        signal.1.store(true, Ordering::Release);
        signal.0.notify(usize::MAX);
    });
    async move {
        while !fired.1.load(Ordering::Acquire) {
            let listener = fired.0.listen();
            if fired.1.load(Ordering::Acquire) {
                return;
            }
            listener.await;
        }
    }
}

/// Under loom (no event-listener), the wait parks the polling thread.
#[cfg(loom)]
pub(super) fn wait_off_thread<K: Hash + Eq + Send + Sync + 'static>(
    board: Arc<Board<K>>,
    seen: u64,
    timeout: Duration,
) -> impl Future<Output = ()> + Send {
    board.wait(seen, timeout);
    std::future::ready(())
}
