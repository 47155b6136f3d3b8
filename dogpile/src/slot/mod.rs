//! The state machine of one slot (one key): rules R1–R11 (see the crate docs).
//!
//! A slot is two things:
//! - its *value*, the current value with the instant it was created, kept wherever the
//!   public type reads it fastest (a lock in `Dogpile`, the map entry in `Cache`) and
//!   reached through [`Store`];
//! - its [`Control`]: whether a creation is in flight, who waits for it, and the reader
//!   fence of reader-synchronised mode.
//!
//! A call walks the same distinct steps every time: *look up* ([`Store::load`] and
//! [`Control::decide`], which claims when it decides so, or wait with
//! [`Control::wait_for_release`] and look again), *create* ([`SlotClaim::run`]),
//! *publish* ([`SlotClaim::publish`]) and *release* (dropping the [`SlotClaim`]). One
//! driver, [`drive`], walks them for every entry point: blocking or async (how it
//! waits), inline or background (where a refresh runs, decided by its [`Creator`]),
//! guarded or not. A fleet tier sits between the local value and the creator by
//! wrapping the creator (see `tier::level`), without changing the rules.
//!
//! - this file: the [`Store`] seam, the [`Control`] (claim, waiters, fence);
//! - `reentry.rs`: same-key re-entry detection (R9);
//! - `stamp.rs`: a value with its expiry (R6) and invalidation (R7);
//! - `drive.rs`: the driver and the steps of one call;
//! - `creator.rs`: the [`Creator`] seam, and the creators that run in their call;
//! - `background.rs`: the creators that hand a refresh to an executor (R10).
//!
//! No lock is held while user code runs: the control mutex is held only to flip the
//! claim, and the value's own lock only to copy or swap the value. The one exception is
//! the reader fence (R8), held by design while a reader uses the value.

mod background;
mod creator;
mod drive;
mod reentry;
mod stamp;
#[cfg(all(test, not(loom)))]
mod tests;

pub(crate) use crate::freshness::{Freshness, Policy};
pub(crate) use background::Pooled;
#[cfg(all(feature = "tokio", not(loom)))]
pub(crate) use background::Spawned;
pub(crate) use creator::{Creator, InCall, MadeHere, Now};
pub(crate) use drive::{
    drive, get, pass, read_hit, refresh_task, take_creator, Arrival, How, Pass, Served, Step,
    Waiting,
};
pub(crate) use stamp::{Stamp, Stamped};

use crate::clock::ClockHandle;
use crate::fence::Fence;
use crate::freshness::{self, Decision, Failures, Look};
use crate::stats::Counters;
use crate::sync::{Condvar, Event, Mutex};
use reentry::{creating_here, CreatorScope};
use std::any::Any;
use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// Where a slot's value lives.
pub(crate) trait Store {
    type Value: Clone;

    /// A copy of the current value, if any.
    fn load(&self) -> Option<Stamped<Self::Value>>;

    /// Replaces the value and its stamp in one step (R3: published together): `created`
    /// is when the creation finished here, `from` where the value came from.
    fn publish(&self, value: Self::Value, created: u64, from: Provenance);

    /// The call is done with the slot: a store may let go of what only calls need (a
    /// cache entry detaches its idle control).
    fn release(self)
    where
        Self: Sized,
    {
    }
}

/// Where a created value came from, and so how its stamp reads (R6, F4): made by this
/// call's creator just now, or taken from a fleet tier, aged as the tier says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Provenance {
    /// How old the value already is when it is published, in nanoseconds.
    pub(crate) age: u64,
    /// Another process's stale value, held only while that process's lease runs and no
    /// notification for the key came since the claim (F1, F3).
    pub(crate) held: bool,
    /// Taken from the fleet tier rather than made by this call's creator: counted as a
    /// tier hit, not as a creation.
    pub(crate) tier: bool,
}

impl Provenance {
    /// Made here, by this call's creator, just now.
    pub(crate) const HERE: Provenance = Provenance {
        age: 0,
        held: false,
        tier: false,
    };
}

/// What a creation hands back: its value and where the value came from.
#[derive(Debug)]
pub(crate) struct Made<V> {
    pub(crate) value: V,
    pub(crate) from: Provenance,
}

impl<V> Made<V> {
    /// A value made here, just now.
    pub(crate) fn here(value: V) -> Self {
        Made {
            value,
            from: Provenance::HERE,
        }
    }
}

/// Everything a slow-path call needs besides the slot itself.
#[derive(Clone)]
pub(crate) struct Env {
    pub(crate) policy: Policy,
    pub(crate) clock: ClockHandle,
    pub(crate) stats: Arc<Counters>,
    /// What `tracing` events call this cache or lock.
    pub(crate) name: Arc<str>,
}

impl Env {
    pub(crate) fn now(&self) -> u64 {
        self.clock.now_nanos()
    }

    fn count(&self, counter: impl Fn(&Counters) -> &AtomicU64) {
        Counters::bump(counter(&self.stats));
    }

    /// Records a served value that was past its lifetime, and how far (a fresh or due
    /// value records nothing: a hit makes no shared write).
    pub(crate) fn served_stale(&self, stamp: Option<Stamp>, now: u64) {
        if let Some(stamp) = stamp {
            let past = crate::freshness::past_lifetime(stamp.expires(), now);
            self.stats.served_stale(past);
        }
    }
}

// ---------------------------------------------------------------------------------
// Claim bookkeeping

#[derive(Default)]
struct ClaimState {
    /// A creation is in flight (at most one: R1, R3).
    claimed: bool,
    /// The slot was dropped from its map; callers must look the key up again.
    retired: bool,
    /// Claims taken so far (wrapping): names the creation a waiter waits for. 32 bits
    /// keep the state small, and a waiter compares only with the claims of its own wait.
    attempt: u32,
    /// The last creation that failed, kept until a later one ends, so that the callers
    /// that waited for it share its failure (R1). Boxed: a cache keeps a control per key,
    /// and failures are rare.
    failed: Option<Box<FailedAttempt>>,
    /// Failed creations in a row, and until when the key is not tried again.
    failures: Failures,
    /// The last failure's error while the key is backing off: a cold key answers with
    /// a clone of it. Boxed for the same reason as `failed`.
    last_error: Option<Box<dyn Any + Send>>,
    /// The expiry of the value whose early refresh was claimed (one per lifetime).
    early_claimed: Option<u64>,
}

impl ClaimState {
    /// How a wait for creation `waited_for` (if any) ended. A failed first creation
    /// retires its cache entry at once; its waiters still share its failure (R1).
    fn wait_ended(&self, waited_for: Option<u32>) -> Waited {
        let failed = |attempt| self.failed.as_ref().is_some_and(|f| f.attempt == attempt);
        if self.retired && !waited_for.is_some_and(failed) {
            Waited::Retired
        } else {
            Waited::Released(waited_for)
        }
    }
}

/// A failed creation, as its waiters see it. A panicked creation records none: one
/// waiter takes over with its own creator (R1).
struct FailedAttempt {
    attempt: u32,
    /// A clone of the creator's `Err`.
    error: Box<dyn Any + Send>,
}

/// The control half of a slot: the claim, its waiters, and the optional reader fence.
pub(crate) struct Control {
    state: Mutex<ClaimState>,
    released: Condvar,
    /// The async waiters' wake-up: event-listener's `Event`, or under loom a model of it
    /// (see `sync.rs`), so that the loom models check the async wait too.
    released_async: Event,
    /// Boxed: only reader-synchronised slots have one, and a cache has a control per key.
    fence: Option<Box<Fence>>,
}

/// What [`Control::decide`] made of a look: its decision, with the claim if it claims.
pub(crate) enum Decided {
    Decision(Decision, Option<SlotClaim>),
    Retired,
}

/// How a wait for another caller's creation ended.
pub(crate) enum Waited {
    /// The creator released its claim: look the value up again, or share its failure.
    /// Names the creation waited for, if there was one.
    Released(Option<u32>),
    Retired,
    /// `wait_at_most` passed with the creation still in flight.
    TimedOut,
}

impl Control {
    pub(crate) fn new(sync_readers: bool) -> Arc<Self> {
        Arc::new(Control {
            state: Mutex::new(ClaimState::default()),
            released: Condvar::new(),
            released_async: Event::new(),
            fence: sync_readers.then(Box::<Fence>::default),
        })
    }

    fn id(self: &Arc<Self>) -> usize {
        Arc::as_ptr(self) as usize
    }

    pub(crate) fn fence(&self) -> Option<&Fence> {
        self.fence.as_deref()
    }

    /// Decides what a call does with the value it found (`(expires, invalidated)`),
    /// under the claim lock so that the decision and the claim are one step; claims
    /// when the decision says so.
    pub(crate) fn decide(
        self: &Arc<Self>,
        policy: &Policy,
        now: u64,
        value: Option<(u64, bool)>,
    ) -> Decided {
        let mut state = self.state.lock();
        if state.retired {
            return Decided::Retired;
        }
        let look = Look {
            now,
            value,
            busy: state.claimed,
            early_claimed: state.early_claimed,
            failures: state.failures,
        };
        let decision = freshness::decide(policy, &look);
        let claims = matches!(
            decision,
            Decision::ClaimEarly | Decision::ClaimStale | Decision::ClaimCold
        );
        if !claims {
            drop(state);
            if look.busy {
                self.panic_if_reentered();
            }
            return Decided::Decision(decision, None);
        }
        if decision == Decision::ClaimEarly {
            state.early_claimed = value.map(|(expires, _)| expires);
        }
        state.claimed = true;
        state.attempt = state.attempt.wrapping_add(1);
        let claim = SlotClaim::new(self.clone(), state.attempt);
        Decided::Decision(decision, Some(claim))
    }

    /// Whether a value found by the hit path may be served without entering the slot:
    /// [`Control::decide`] serves it without a claim.
    pub(crate) fn serves(&self, policy: &Policy, now: u64, value: (u64, bool)) -> Option<Decision> {
        let state = self.state.lock();
        if state.retired {
            return None;
        }
        let look = Look {
            now,
            value: Some(value),
            busy: state.claimed,
            early_claimed: state.early_claimed,
            failures: state.failures,
        };
        let decision = freshness::decide(policy, &look);
        drop(state);
        matches!(decision, Decision::Serve | Decision::ServeBackingOff).then_some(decision)
    }

    /// Claims the creation if nobody holds it, whatever the key's back-off says: for a
    /// caller whose error type differs from the last failure's (it has no error to
    /// answer with).
    pub(crate) fn claim_if_idle(self: &Arc<Self>) -> Option<SlotClaim> {
        let mut state = self.state.lock();
        if state.claimed || state.retired {
            return None;
        }
        state.claimed = true;
        state.attempt = state.attempt.wrapping_add(1);
        Some(SlotClaim::new(self.clone(), state.attempt))
    }

    /// A clone of the last failure's error while the key backs off, if it is an `E`.
    pub(crate) fn last_error<E: Clone + 'static>(&self) -> Option<E> {
        let state = self.state.lock();
        state.last_error.as_ref()?.downcast_ref::<E>().cloned()
    }

    /// Whether a creation is in flight (the loom models check that none is left).
    #[cfg(all(test, loom))]
    pub(crate) fn claimed(&self) -> bool {
        self.state.lock().claimed
    }

    /// Whether the key keeps state between calls (failures in a row, an early refresh
    /// claimed): its control then stays attached to its entry.
    pub(crate) fn keeps_state(&self) -> bool {
        let state = self.state.lock();
        state.failures.in_a_row > 0 || state.early_claimed.is_some()
    }

    /// Blocks (parked, not spinning) until the creation in flight releases its claim.
    /// Counted in `waits` only if there was one to wait for.
    /// With `at_most`, gives up after that long ([`Waited::TimedOut`]).
    pub(crate) fn wait_for_release(
        self: &Arc<Self>,
        stats: &Counters,
        at_most: Option<u64>,
    ) -> Waited {
        let deadline =
            at_most.map(|n| std::time::Instant::now() + std::time::Duration::from_nanos(n));
        let mut state = self.state.lock();
        let mut waited_for = None;
        if state.claimed && !state.retired {
            // Waiting on our own claim would never end (R9). Unwinding unlocks `state`.
            self.panic_if_reentered();
            if let Some(fence) = &self.fence {
                fence.panic_if_read_held_here("wait for a value of the same key");
            }
            Counters::bump(&stats.waits);
            let attempt = state.attempt;
            waited_for = Some(attempt);
            // Until *this* creation ends: a later claim is a new creation, and this
            // caller must see how this one ended.
            while state.claimed && state.attempt == attempt && !state.retired {
                let Some(deadline) = deadline else {
                    state = self.released.wait(state);
                    continue;
                };
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    return Waited::TimedOut;
                }
                let (next, _) = self.released.wait_timeout(state, left);
                state = next;
            }
        }
        state.wait_ended(waited_for)
    }

    /// Async twin of [`Control::wait_for_release`] without a limit: awaits instead of
    /// blocking.
    pub(crate) async fn wait_for_release_async(self: &Arc<Self>, stats: &Counters) -> Waited {
        self.wait_for_release_within(stats, None).await
    }

    /// Async twin of [`Control::wait_for_release`]: awaits instead of blocking, at most
    /// `at_most` nanoseconds (`wait_at_most`) on a timer that needs no runtime.
    pub(crate) async fn wait_for_release_within(
        self: &Arc<Self>,
        stats: &Counters,
        at_most: Option<u64>,
    ) -> Waited {
        let deadline =
            at_most.map(|n| std::time::Instant::now() + std::time::Duration::from_nanos(n));
        let (mut waited_for, mut counted) = (None, false);
        loop {
            let listener = {
                let state = self.state.lock();
                let ended = waited_for.is_some_and(|attempt| attempt != state.attempt);
                if state.retired || !state.claimed || ended {
                    return state.wait_ended(waited_for);
                }
                self.panic_if_reentered();
                waited_for.get_or_insert(state.attempt);
                // Registered under the lock, so the release cannot slip in between.
                self.released_async.listen()
            };
            if waited_for.is_some() && !std::mem::replace(&mut counted, true) {
                Counters::bump(&stats.waits);
            }
            match deadline {
                None => listener.await,
                Some(deadline) => {
                    if !crate::timer::before(listener, deadline).await {
                        return Waited::TimedOut;
                    }
                }
            }
        }
    }

    /// Marks the slot dropped from its map, unless a creation is in flight (whose
    /// creator will publish into it). Wakes every waiter so that it looks again.
    pub(crate) fn try_retire(&self) -> bool {
        let mut state = self.state.lock();
        if state.claimed {
            return false;
        }
        state.retired = true;
        drop(state);
        self.notify();
        true
    }

    /// The failure of `attempt`, for a caller that waited for it (R1): a clone of its
    /// error if it is an `E`. `None` if it did not fail, panicked, or failed with another
    /// error type (that caller then runs its own creator).
    pub(crate) fn failure_of<E: Clone + 'static>(&self, attempt: u32) -> Option<E> {
        let state = self.state.lock();
        let failure = state.failed.as_ref().filter(|f| f.attempt == attempt)?;
        failure.error.downcast_ref::<E>().cloned()
    }

    fn release(&self, attempt: u32) {
        let mut state = self.state.lock();
        state.claimed = false;
        if state.failed.as_ref().is_some_and(|f| f.attempt != attempt) {
            state.failed = None; // a later creation ended: nobody waits for that one now
        }
        drop(state);
        if let Some(fence) = &self.fence {
            fence.release_creator_write();
        }
        self.notify();
    }

    fn notify(&self) {
        self.released.notify_all();
        // Listeners register under the claim lock, before the state change we announce,
        // so none is missed; skipping `notify` when there are none also spares the
        // allocation event-listener makes on its first notify (one per cache entry).
        if self.released_async.total_listeners() > 0 {
            self.released_async.notify(usize::MAX);
        }
    }

    fn panic_if_reentered(self: &Arc<Self>) {
        if creating_here(self.id()) {
            panic!(
                "dogpile: a creator asked for its own key (same-key re-entry). It would \
                 wait for itself forever; compute the value without asking the cache for \
                 the key being created"
            );
        }
    }
}

/// The right to create the slot's value. Dropping it (also while unwinding from a
/// panicking creator) releases the claim and wakes the waiters, so nothing stays locked.
pub(crate) struct SlotClaim {
    control: Arc<Control>,
    attempt: u32,
}

impl SlotClaim {
    fn new(control: Arc<Control>, attempt: u32) -> Self {
        SlotClaim { control, attempt }
    }

    /// The claimed slot.
    pub(crate) fn control(&self) -> &Arc<Control> {
        &self.control
    }

    /// Records this creation's error for the callers waiting for it (R1), and as the
    /// key's latest failure in a row (its back-off starts at `now`). True if the key
    /// entered a back-off.
    pub(crate) fn fail<E: Clone + Send + 'static>(
        &self,
        error: &E,
        policy: &Policy,
        now: u64,
    ) -> bool {
        let mut state = self.control.state.lock();
        state.failed = Some(Box::new(FailedAttempt {
            attempt: self.attempt,
            error: Box::new(error.clone()),
        }));
        let Some(backoff) = policy.backoff else {
            return false;
        };
        state.failures.failed(Some(backoff), now, fastrand::f64());
        state.last_error = Some(Box::new(error.clone()));
        true
    }

    /// A published value ends the failures in a row and any early-refresh mark.
    fn succeeded(&self) {
        let mut state = self.control.state.lock();
        state.failures = Failures::default();
        state.last_error = None;
        state.early_claimed = None;
    }

    /// Polls the creator; each poll is a creator scope, so that asking for this same
    /// key from inside it panics (R9), blocking or async.
    pub(crate) async fn run<F: Future>(&self, create: F) -> F::Output {
        let id = self.control.id();
        let mut create = std::pin::pin!(create);
        std::future::poll_fn(|cx| {
            let _scope = CreatorScope::enter(id);
            create.as_mut().poll(cx)
        })
        .await
    }

    /// Publishes a new value. In reader-synchronised mode this waits until every
    /// guard on the old value is dropped (R8).
    pub(crate) fn publish<S: Store>(
        &self,
        store: &S,
        value: S::Value,
        created: u64,
        from: Provenance,
    ) {
        match &self.control.fence {
            Some(fence) => fence.write_section(|| store.publish(value, created, from)),
            None => store.publish(value, created, from),
        }
        self.succeeded();
    }
}

impl Drop for SlotClaim {
    fn drop(&mut self) {
        self.control.release(self.attempt);
    }
}

// ---------------------------------------------------------------------------------
// Same-key re-entry detection (R9): see `reentry.rs`

/// Runs `start` and polls the future it returns as the creator of every claim in
/// `claims` at once (a batch's creator): asking for any of their keys from inside it
/// panics (R9).
pub(crate) async fn run_claimed<'c, F: Future>(
    claims: impl Iterator<Item = &'c SlotClaim>,
    start: impl FnOnce() -> F,
) -> F::Output {
    let ids: Vec<usize> = claims.map(|claim| claim.control.id()).collect();
    reentry::run_as_creator_of(&ids, start).await
}

// ---------------------------------------------------------------------------------
// Reader-synchronised calls (R8)

/// A read hold on a slot's fence; released on drop.
pub(crate) struct FenceRead(Arc<Control>);

impl FenceRead {
    fn take(control: &Arc<Control>) -> Self {
        fence_of(control).read();
        FenceRead(control.clone())
    }
}

impl Drop for FenceRead {
    fn drop(&mut self) {
        fence_of(&self.0).release_read();
    }
}

fn fence_of(control: &Control) -> &Fence {
    match control.fence() {
        Some(fence) => fence,
        None => panic!("dogpile: internal error: a reader guard on a slot without a fence"),
    }
}

impl Control {
    /// True while this thread runs this slot's creator.
    pub(crate) fn creating_here(self: &Arc<Self>) -> bool {
        creating_here(self.id())
    }
}
