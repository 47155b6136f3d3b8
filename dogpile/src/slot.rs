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
//! [`Policy::classify`]), *claim* ([`Control::try_claim`], or wait with
//! [`Control::wait_for_release`] and look again), *create* ([`Claim::run`]), *publish*
//! ([`Claim::publish`]) and *release* (dropping the [`Claim`]). One driver, [`drive`],
//! walks them for every entry point: blocking or async (how it waits), inline or
//! background (where a refresh runs, decided by its [`Creator`]), guarded or not. A
//! shared tier (a value and a claim in Redis) can later sit between the local value and
//! the creator by wrapping these steps without changing the rules.
//!
//! No lock is held while user code runs: the control mutex is held only to flip the
//! claim, and the value's own lock only to copy or swap the value. The one exception is
//! the reader fence (R8), held by design while a reader uses the value.

use crate::clock::ClockHandle;
use crate::executor::Runner;
use crate::fence::Fence;
use crate::stats::Counters;
use crate::sync::{thread_locals, Condvar, Event, Mutex};
use crate::trace;
use std::any::Any;
use std::cell::RefCell;
use std::future::Future;
use std::num::NonZeroU64;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// A value and the clock reading (nanoseconds) taken when its creation finished (R6).
#[derive(Clone, Debug)]
pub(crate) struct Stamped<V> {
    pub(crate) value: V,
    /// The creation instant in the low 63 bits, never zero, and the soft-invalidation
    /// flag (R7: stale whatever its age) in the top bit. Nonzero, so that
    /// `Option<Stamped<V>>` needs no tag of its own: a cache entry of a `u64` is 16
    /// bytes, not 24.
    stamp: NonZeroU64,
}

/// The top bit of a stamp: invalidated.
const INVALIDATED: u64 = 1 << 63;

impl<V> Stamped<V> {
    /// A fresh stamp. An instant past 2^63 - 1 ns (292 years from the clock's origin)
    /// reads as that; instant 0 as 1 ns.
    pub(crate) fn new(value: V, created: u64) -> Self {
        let created = created.clamp(1, INVALIDATED - 1);
        Stamped {
            value,
            stamp: NonZeroU64::new(created).unwrap_or(NonZeroU64::MIN),
        }
    }

    #[inline]
    pub(crate) fn created(&self) -> u64 {
        self.stamp.get() & !INVALIDATED
    }

    #[inline]
    pub(crate) fn invalidated(&self) -> bool {
        self.stamp.get() & INVALIDATED != 0
    }

    /// R7: stale from now on, whatever its age.
    pub(crate) fn invalidate(&mut self) {
        self.stamp |= INVALIDATED;
    }
}

/// How a value ages.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Policy {
    /// Nanoseconds a value stays fresh (R2, R3). Never zero.
    pub(crate) ttl: u64,
    /// With `max_stale`, a value older than `ttl + max_stale` is not served (R11).
    pub(crate) max_stale: Option<u64>,
    /// A failed refresh returns the stale value instead of the error (R5).
    pub(crate) stale_if_error: bool,
}

/// What the look-up step makes of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Freshness {
    /// `age < ttl`: served at once (R2).
    Fresh,
    /// `age >= ttl` or invalidated: served while one caller refreshes (R3).
    Stale,
    /// Older than `ttl + max_stale`: treated as no value at all (R11).
    Expired,
}

impl Policy {
    #[inline]
    pub(crate) fn classify(&self, created: u64, invalidated: bool, now: u64) -> Freshness {
        let age = now.saturating_sub(created);
        if age < self.ttl && !invalidated {
            return Freshness::Fresh;
        }
        match self.max_stale {
            Some(max_stale) if age >= self.ttl.saturating_add(max_stale) => Freshness::Expired,
            _ => Freshness::Stale,
        }
    }

    #[inline]
    pub(crate) fn is_fresh<V>(&self, stamped: &Stamped<V>, now: u64) -> bool {
        self.classify(stamped.created(), stamped.invalidated(), now) == Freshness::Fresh
    }
}

/// Where a slot's value lives.
pub(crate) trait Store {
    type Value: Clone;

    /// A copy of the current value, if any.
    fn load(&self) -> Option<Stamped<Self::Value>>;

    /// Replaces the value and its stamp in one step (R3: published together).
    fn publish(&self, value: Self::Value, created: u64);

    /// The call is done with the slot: a store may let go of what only calls need (a
    /// cache entry detaches its idle control).
    fn release(self)
    where
        Self: Sized,
    {
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
    failed: Option<Box<Failure>>,
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

/// A failed creation, as its waiters see it.
struct Failure {
    attempt: u32,
    /// A clone of the creator's `Err`; `None` if the creator panicked.
    error: Option<Box<dyn Any + Send>>,
}

/// What a caller that waited for a failed creation gets instead of running its own (R1).
pub(crate) enum Shared<E> {
    Error(E),
    Panicked,
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

/// The outcome of trying to claim without waiting (the stale path).
pub(crate) enum TryClaim {
    Claimed(Claim),
    /// Someone else is creating: serve the stale value (R3).
    Busy,
    Retired,
}

/// How a wait for another caller's creation ended.
pub(crate) enum Waited {
    /// The creator released its claim: look the value up again, or share its failure.
    /// Names the creation waited for, if there was one.
    Released(Option<u32>),
    Retired,
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

    /// Claims the creation if nobody holds it; never waits.
    pub(crate) fn try_claim(self: &Arc<Self>) -> TryClaim {
        let mut state = self.state.lock();
        if state.retired {
            TryClaim::Retired
        } else if state.claimed {
            drop(state);
            self.panic_if_reentered();
            TryClaim::Busy
        } else {
            state.claimed = true;
            state.attempt = state.attempt.wrapping_add(1);
            TryClaim::Claimed(Claim::new(self.clone(), state.attempt))
        }
    }

    /// Blocks (parked, not spinning) until the creation in flight releases its claim.
    /// Counted in `waits` only if there was one to wait for.
    pub(crate) fn wait_for_release(self: &Arc<Self>, stats: &Counters) -> Waited {
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
                state = self.released.wait(state);
            }
        }
        state.wait_ended(waited_for)
    }

    /// Async twin of [`Control::wait_for_release`]: awaits instead of blocking.
    pub(crate) async fn wait_for_release_async(self: &Arc<Self>, stats: &Counters) -> Waited {
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
            listener.await;
        }
    }

    /// Whether another caller's creation is in flight, so that a stale value is served
    /// at once (R3) without entering the slot: what [`try_claim`](Control::try_claim)
    /// calls busy. Panics if that creation is this thread's own, as `try_claim` does (R9).
    pub(crate) fn refreshing_elsewhere(self: &Arc<Self>) -> bool {
        let state = self.state.lock();
        let busy = state.claimed && !state.retired;
        drop(state);
        if busy {
            self.panic_if_reentered();
        }
        busy
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
    /// error if it is an `E`, or word that it panicked. `None` if it did not fail, or
    /// failed with another error type (that caller then runs its own creator).
    pub(crate) fn shared_failure<E: Clone + 'static>(&self, attempt: u32) -> Option<Shared<E>> {
        let state = self.state.lock();
        let failure = state.failed.as_ref().filter(|f| f.attempt == attempt)?;
        match &failure.error {
            None => Some(Shared::Panicked),
            Some(error) => error.downcast_ref::<E>().cloned().map(Shared::Error),
        }
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
pub(crate) struct Claim {
    control: Arc<Control>,
    attempt: u32,
}

impl Claim {
    fn new(control: Arc<Control>, attempt: u32) -> Self {
        Claim { control, attempt }
    }

    /// The claimed slot.
    pub(crate) fn control(&self) -> &Arc<Control> {
        &self.control
    }

    /// Records this creation's failure for the callers waiting for it (R1).
    fn fail(&self, error: Option<Box<dyn Any + Send>>) {
        self.control.state.lock().failed = Some(Box::new(Failure {
            attempt: self.attempt,
            error,
        }));
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
    pub(crate) fn publish<S: Store>(&self, store: &S, value: S::Value, created: u64) {
        match &self.control.fence {
            Some(fence) => fence.write_section(|| store.publish(value, created)),
            None => store.publish(value, created),
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.control.release(self.attempt);
    }
}

// ---------------------------------------------------------------------------------
// Same-key re-entry detection (R9)

thread_locals! {
    /// Controls whose creator is running on this thread, innermost last.
    static CREATING: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

fn creating_here(id: usize) -> bool {
    CREATING.with(|c| c.borrow().contains(&id))
}

struct CreatorScope(usize);

impl CreatorScope {
    fn enter(id: usize) -> Self {
        CREATING.with(|c| c.borrow_mut().push(id));
        CreatorScope(id)
    }
}

impl Drop for CreatorScope {
    fn drop(&mut self) {
        CREATING.with(|c| {
            let mut c = c.borrow_mut();
            if let Some(at) = c.iter().rposition(|&id| id == self.0) {
                c.remove(at);
            }
        });
    }
}

// ---------------------------------------------------------------------------------
// The call: look up, claim, create, publish, release

/// The end of one pass through a slot.
pub(crate) enum Step<R> {
    Done(R),
    /// The slot left its map while we looked; look the key up again.
    Retired,
}

/// What a call found when it first looked; decides the counter it bumps, exactly once,
/// when a slot serves it. A pass that ends in `Retired` counts nothing: the caller
/// starts over on the key's new slot and counts there.
struct Arrival {
    found: Option<Option<Freshness>>,
    counted: bool,
}

impl Arrival {
    fn new() -> Self {
        Arrival {
            found: None,
            counted: false,
        }
    }

    fn see(&mut self, freshness: Option<Freshness>) {
        self.found.get_or_insert(freshness);
    }

    fn record(&mut self, env: &Env) {
        if std::mem::replace(&mut self.counted, true) {
            return;
        }
        match self.found.flatten() {
            Some(Freshness::Fresh) => env.stats.hit(),
            Some(Freshness::Stale) => env.count(|s| &s.stale_hits),
            _ => env.count(|s| &s.misses),
        }
    }
}

fn look_up<S: Store>(store: &S, env: &Env) -> (Option<Stamped<S::Value>>, Option<Freshness>) {
    let now = env.now();
    let current = store.load();
    let freshness = current
        .as_ref()
        .map(|s| env.policy.classify(s.created(), s.invalidated(), now));
    (current, freshness)
}

/// What one pass of look-up, claim and re-check decides.
enum Pass<V> {
    /// Answer with this value: fresh (R2), stale while someone else refreshes (R3), or
    /// fresh on the claimant's re-check (R4).
    Serve(V),
    /// This call holds the claim and creates; `stale` is the value it replaces (R3),
    /// `None` for a cold slot (R1, R11).
    Create { claim: Claim, stale: Option<V> },
    /// Cold, and someone else is creating: wait for them, then pass again (R1).
    Wait,
    /// The slot left its map; look the key up again.
    Retired,
}

/// The shared first half of every call: look up, claim, re-check.
fn pass<S: Store>(
    control: &Arc<Control>,
    store: &S,
    env: &Env,
    arrival: &mut Arrival,
) -> Pass<S::Value> {
    let (current, freshness) = look_up(store, env);
    arrival.see(freshness);
    let stale = match (current, freshness) {
        (Some(fresh), Some(Freshness::Fresh)) => {
            arrival.record(env);
            return Pass::Serve(fresh.value);
        }
        (Some(stale), Some(Freshness::Stale)) => Some(stale.value),
        // No value, or one past `ttl + max_stale`: cold.
        _ => None,
    };
    let claim = match control.try_claim() {
        TryClaim::Retired => return Pass::Retired,
        TryClaim::Busy => {
            let Some(stale) = stale else {
                return Pass::Wait;
            };
            arrival.record(env);
            return Pass::Serve(stale);
        }
        TryClaim::Claimed(claim) => claim,
    };
    arrival.record(env);
    if let Some(fresh) = recheck(store, env) {
        return Pass::Serve(fresh);
    }
    if stale.is_some() {
        env.count(|s| &s.refreshes);
    }
    Pass::Create { claim, stale }
}

/// R4: whoever claims looks once more; someone may have published since our look-up.
fn recheck<S: Store>(store: &S, env: &Env) -> Option<S::Value> {
    let now = env.now();
    store
        .load()
        .filter(|s| env.policy.is_fresh(s, now))
        .map(|s| s.value)
}

/// R5: a failed refresh keeps the stale value; with `stale_if_error` its caller gets it.
fn stale_if_error<V, E>(env: &Env, outcome: Result<V, E>, stale: Option<V>) -> Result<V, E> {
    match (outcome, stale) {
        (Err(_), Some(stale)) if env.policy.stale_if_error => Ok(stale),
        (outcome, _) => outcome,
    }
}

/// How a call waits for another caller's creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Waiting {
    /// Parks the thread (the blocking entry points).
    Block,
    /// Awaits a notification (the async entry points); never blocks a thread.
    Await,
}

/// How one call goes through its slot, besides its creator.
#[derive(Clone, Copy, Debug)]
pub(crate) struct How {
    pub(crate) waiting: Waiting,
    /// Reader-synchronised (R8): the value comes with a read hold on the fence.
    pub(crate) guarded: bool,
}

impl How {
    pub(crate) const BLOCK: How = How {
        waiting: Waiting::Block,
        guarded: false,
    };
    pub(crate) const GUARDED: How = How {
        waiting: Waiting::Block,
        guarded: true,
    };
    // Under loom only the models await: `Cache`'s async calls are not built there.
    #[cfg_attr(all(loom, not(test)), allow(dead_code))]
    pub(crate) const AWAIT: How = How {
        waiting: Waiting::Await,
        guarded: false,
    };
}

/// The one shape of a creator, for every entry point: its creation as a future (a
/// blocking creator is a future that is ready at its first poll, see [`Now`]), and,
/// for background refresh (R10), a way to run a refresh somewhere else.
pub(crate) trait Creator<S: Store>: Sized {
    /// Shared with the callers that waited for a failed creation (R1).
    type Error: Clone + Send + 'static;
    type Creation: Future<Output = Result<S::Value, Self::Error>>;

    /// The creation, run by the caller that claimed the slot.
    fn start(self) -> Self::Creation;

    /// R10: hands the refresh of a stale value (with its claim) to another thread or
    /// task, so that the claimant returns the stale value too. Gives both back when
    /// this call refreshes inline.
    fn hand_off(self, claim: Claim, store: &S, env: &Env) -> Result<(), (Self, Claim)> {
        let _ = (store, env);
        Err((self, claim))
    }

    /// R10 under a fleet tier (F1): the creation, boxed to run elsewhere, and where to
    /// run it, so that the tier's steps can run around it off the claimant's call.
    /// Gives the creator back when this call refreshes inline.
    fn detach(self) -> Result<Detached<S::Value, Self::Error>, Self> {
        Err(self)
    }

    /// Whether [`hand_off`](Creator::hand_off) or [`detach`](Creator::detach) can
    /// succeed; it must be `true` for any creator that overrides either. A call whose
    /// creator never detaches leaves the hand-off, and the tier's off-call refresh, out
    /// of the build (about a quarter of the release build of a blocking cache of new key
    /// and value types).
    const DETACHES: bool = false;
}

/// A creation detached from its call by [`Creator::detach`], and where to run it.
pub(crate) type Detached<V, E> = (
    Pin<Box<dyn Future<Output = Result<V, E>> + Send + 'static>>,
    Runner,
);

/// A creator that runs in its caller's call, blocking or async.
pub(crate) struct Inline<F>(pub(crate) F);

impl<S, F, E> Creator<S> for Inline<F>
where
    S: Store,
    F: Future<Output = Result<S::Value, E>>,
    E: Clone + Send + 'static,
{
    type Error = E;
    type Creation = F;

    fn start(self) -> F {
        self.0
    }
}

/// A blocking creator seen as a future: runs at its first poll, so it is never pending.
pub(crate) struct Now<F>(Option<F>);

impl<F> Now<F> {
    pub(crate) fn new(create: F) -> Self {
        Now(Some(create))
    }
}

// Never pinned in place: the closure is taken out whole at the first poll.
impl<F> Unpin for Now<F> {}

impl<F: FnOnce() -> R, R> Future for Now<F> {
    type Output = R;

    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<R> {
        match self.0.take() {
            Some(create) => Poll::Ready(create()),
            None => panic!("dogpile: internal error: a creator was polled after it finished"),
        }
    }
}

/// Runs a future that never waits for a wake-up: a blocking call through the one driver
/// (its waits park the thread inside `poll`, its creator is a [`Now`]). That keeps a
/// single copy of the call's steps for blocking and async callers.
pub(crate) fn run_blocking<F: Future>(call: F) -> F::Output {
    let mut call = std::pin::pin!(call);
    match call.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("dogpile: internal error: a blocking call awaited"),
    }
}

/// A value served by a slot, with its read hold in reader-synchronised mode (R8).
pub(crate) struct Served<V> {
    pub(crate) value: V,
    pub(crate) read: Option<FenceRead>,
}

impl<V> Served<V> {
    fn plain(value: V) -> Self {
        Served { value, read: None }
    }
}

/// The slot driver: every call of every slot type goes through here, blocking or async,
/// inline or background, guarded or not. One pass looks up, claims and re-checks; a
/// cold call waits and passes again; the claimant creates, publishes and releases.
pub(crate) async fn drive<S, C>(
    control: &Arc<Control>,
    store: &S,
    env: &Env,
    creator: &mut Option<C>,
    how: How,
) -> Step<Result<Served<S::Value>, C::Error>>
where
    S: Store,
    C: Creator<S>,
{
    if how.guarded {
        if let Some(served) = serve_under_fence(control, store, env) {
            return Step::Done(Ok(served));
        }
    }
    let mut arrival = Arrival::new();
    let outcome = loop {
        match pass(control, store, env, &mut arrival) {
            Pass::Serve(value) => break Ok(value),
            Pass::Retired => return Step::Retired,
            Pass::Wait => {
                let waited = match how.waiting {
                    Waiting::Block => control.wait_for_release(&env.stats),
                    Waiting::Await => control.wait_for_release_async(&env.stats).await,
                };
                let attempt = match waited {
                    Waited::Retired => return Step::Retired,
                    Waited::Released(attempt) => attempt,
                };
                // R1: the callers that waited for a failed creation share its failure
                // instead of each running their own creator, one after another.
                match attempt.and_then(|attempt| control.shared_failure(attempt)) {
                    None => {}
                    Some(Shared::Error(error)) => {
                        arrival.record(env);
                        break Err(error);
                    }
                    Some(Shared::Panicked) => {
                        arrival.record(env);
                        panic!(
                            "dogpile: the creation this call waited for panicked (see that \
                             panic); callers waiting for a failed creation share its failure \
                             rather than retrying one after another (R1)"
                        );
                    }
                }
            }
            Pass::Create { claim, stale } => {
                let creator = take_creator(creator);
                let Some(stale) = stale else {
                    break create_and_publish(&claim, store, env, creator.start(), false).await;
                };
                // A constant condition: a creator that cannot hand off builds no such path.
                let handed = if C::DETACHES {
                    creator.hand_off(claim, store, env)
                } else {
                    Err((creator, claim))
                };
                break match handed {
                    Ok(()) => Ok(stale),
                    Err((creator, claim)) => {
                        let outcome = create_and_publish(&claim, store, env, creator.start(), true);
                        stale_if_error(env, outcome.await, Some(stale))
                    }
                };
            }
        }
    };
    Step::Done(outcome.map(|value| {
        if !how.guarded {
            return Served::plain(value);
        }
        // Readers arriving during a publish wait for it, then see the new value.
        let read = FenceRead::take(control);
        let value = store.load().map_or(value, |s| s.value);
        Served {
            value,
            read: Some(read),
        }
    }))
}

/// R8: a fresh value is served under a read hold. A thread that already holds a guard on
/// this slot is served the current value without claiming anything, since publishing
/// would wait for its own guard.
fn serve_under_fence<S: Store>(
    control: &Arc<Control>,
    store: &S,
    env: &Env,
) -> Option<Served<S::Value>> {
    // Our own creator holds (or will take) the write lock: reading would block on it.
    control.panic_if_reentered();
    let recursive = fence_of(control).read_held_here();
    let read = FenceRead::take(control);
    let (current, freshness) = look_up(store, env);
    let current = current?;
    if freshness == Some(Freshness::Fresh) || recursive {
        let mut arrival = Arrival::new();
        arrival.see(freshness);
        arrival.record(env);
        return Some(Served {
            value: current.value,
            read: Some(read),
        });
    }
    None
}

/// R8's hit path, tried before a call enters its slot: under a read hold on the
/// control's fence, serves what `load` finds if it is fresh, or stale while another
/// caller refreshes it (R3), or anything when this thread already reads this slot (it
/// must not wait for itself), counted as [`drive`] counts it. `None` (the hold released):
/// the call goes on to its slot. Allocates nothing.
pub(crate) fn read_hit<V>(
    control: &Arc<Control>,
    env: &Env,
    load: impl FnOnce() -> Option<Stamped<V>>,
) -> Option<Served<V>> {
    // Our own creator holds (or will take) the write lock: reading would block on it.
    control.panic_if_reentered();
    let recursive = fence_of(control).read_held_here();
    let read = FenceRead::take(control);
    let current = load()?;
    let freshness = env
        .policy
        .classify(current.created(), current.invalidated(), env.now());
    let serve = match freshness {
        Freshness::Fresh => true,
        Freshness::Stale => recursive || control.refreshing_elsewhere(),
        Freshness::Expired => recursive,
    };
    if !serve {
        return None;
    }
    let mut arrival = Arrival::new();
    arrival.see(Some(freshness));
    arrival.record(env);
    Some(Served {
        value: current.value,
        read: Some(read),
    })
}

/// [`drive`] for a lone slot that blocks and creates inline: `Dogpile`, and the unit
/// tests.
pub(crate) fn get<S, E>(
    control: &Arc<Control>,
    store: &S,
    env: &Env,
    create: impl FnOnce() -> Result<S::Value, E>,
    how: How,
) -> Step<Result<Served<S::Value>, E>>
where
    S: Store,
    E: Clone + Send + 'static,
{
    let mut creator = Some(Inline(Now::new(create)));
    run_blocking(drive(control, store, env, &mut creator, how))
}

async fn create_and_publish<S: Store, E: Clone + Send + 'static>(
    claim: &Claim,
    store: &S,
    env: &Env,
    create: impl Future<Output = Result<S::Value, E>>,
    stale: bool,
) -> Result<S::Value, E> {
    // Counts a panic or a cancellation (the future dropped mid-way) as a failure.
    let started = trace::start();
    let failure = CountFailureOnUnwind(env, claim, &started, stale);
    let outcome = claim.run(create).await;
    std::mem::forget(failure);
    match outcome {
        Ok(value) => {
            // R6: age counts from when the creation finished.
            claim.publish(store, value.clone(), env.now());
            trace::created(&env.name, &started, stale);
            Ok(value)
        }
        Err(error) => {
            env.count(|s| &s.failures);
            let failure = trace::Failure::Error(trace::error_type::<E>());
            trace::failed(
                &env.name,
                &started,
                failure,
                stale,
                env.policy.stale_if_error,
            );
            claim.fail(Some(Box::new(error.clone())));
            Err(error)
        }
    }
}

/// The creator of this call. Each call runs its creator at most once; the `Option` only
/// lets a call keep it across a retry after its slot was retired.
pub(crate) fn take_creator<F>(create: &mut Option<F>) -> F {
    match create.take() {
        Some(create) => create,
        None => panic!("dogpile: internal error: a creator was asked to run twice in one call"),
    }
}

/// Counts (and traces) a panicking or cancelled creator as a failure; forgotten when
/// the creator returns. A panic is recorded for the callers waiting for it (R1); a
/// cancelled async creation is not a failure of the value, so a waiter takes over.
/// Also holds when the creation began and whether it refreshes a stale value.
struct CountFailureOnUnwind<'a>(&'a Env, &'a Claim, &'a trace::Started, bool);

impl Drop for CountFailureOnUnwind<'_> {
    fn drop(&mut self) {
        self.0.count(|s| &s.failures);
        let failure = if std::thread::panicking() {
            self.1.fail(None);
            trace::Failure::Panic
        } else {
            trace::Failure::Cancelled
        };
        trace::failed(&self.0.name, self.2, failure, self.3, false);
    }
}

/// A background refresh (R10), ready to run elsewhere: it owns its claim (released when
/// it ends, even by panic, or when it is dropped unrun), its store and its creator.
// Not an `async fn`: the `Send + 'static` bounds are checked here, once.
#[allow(clippy::manual_async_fn)]
pub(crate) fn refresh_task<S, F, E>(
    claim: Claim,
    store: S,
    env: Env,
    create: F,
) -> impl Future<Output = ()> + Send + 'static
where
    S: Store + Send + Sync + 'static,
    S::Value: Send + Sync,
    F: Future<Output = Result<S::Value, E>> + Send + 'static,
    E: Clone + Send + 'static,
{
    let refresh = async move {
        // Its outcome is traced where every creation ends, in `create_and_publish`.
        let _ = create_and_publish(&claim, &store, &env, create, true).await;
        drop(claim);
        store.release();
    };
    // A test's scoped clock goes with the refresh to the thread that runs it.
    #[cfg(feature = "test-clock")]
    let refresh = crate::test_clock::carry(refresh);
    refresh
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::collections::VecDeque;
    use std::convert::Infallible;

    /// A store that answers loads from a script: it plays "someone else published
    /// between our look-up and our claim", the window R4 is about.
    struct Scripted {
        loads: Mutex<VecDeque<Option<Stamped<u32>>>>,
        published: Mutex<Vec<u32>>,
    }

    impl Store for Scripted {
        type Value = u32;
        fn load(&self) -> Option<Stamped<u32>> {
            self.loads.lock().pop_front().expect("unscripted load")
        }
        fn publish(&self, value: u32, _: u64) {
            self.published.lock().push(value);
        }
    }

    fn env(clock: &ManualClock) -> Env {
        Env {
            policy: Policy {
                ttl: 10,
                max_stale: None,
                stale_if_error: false,
            },
            clock: ClockHandle::custom(clock.clone()),
            stats: Arc::new(Counters::default()),
            name: "test".into(),
        }
    }

    fn now(clock: &ManualClock) -> u64 {
        crate::clock::to_nanos(crate::Clock::now(clock))
    }

    #[test]
    fn r4_a_stale_claimant_that_finds_a_fresh_value_creates_nothing() {
        let clock = ManualClock::new();
        let t = now(&clock);
        let store = Scripted {
            loads: Mutex::new(VecDeque::from([
                Some(Stamped::new(1, t - 20)),
                Some(Stamped::new(2, t)),
            ])),
            published: Mutex::new(Vec::new()),
        };
        let env = env(&clock);
        let outcome = get(
            &Control::new(false),
            &store,
            &env,
            || -> Result<u32, Infallible> {
                panic!("R4 broken: the claimant created although a fresh value was there")
            },
            How::BLOCK,
        );
        assert!(matches!(outcome, Step::Done(Ok(Served { value: 2, .. }))));
        assert!(store.published.lock().is_empty());
        assert_eq!(env.stats.snapshot().refreshes, 0);
    }

    #[test]
    fn r4_a_cold_claimant_that_finds_a_fresh_value_creates_nothing() {
        let clock = ManualClock::new();
        let t = now(&clock);
        let store = Scripted {
            loads: Mutex::new(VecDeque::from([None, Some(Stamped::new(2, t))])),
            published: Mutex::new(Vec::new()),
        };
        let outcome = get(
            &Control::new(false),
            &store,
            &env(&clock),
            || -> Result<u32, Infallible> { panic!("R4 broken on the cold path") },
            How::BLOCK,
        );
        assert!(matches!(outcome, Step::Done(Ok(Served { value: 2, .. }))));
    }

    #[test]
    fn a_stamp_packs_instant_and_invalidation_with_no_tag() {
        assert_eq!(std::mem::size_of::<Option<Stamped<u64>>>(), 16);
        let mut stamped = Stamped::new(7u64, 12_345);
        assert_eq!((stamped.created(), stamped.invalidated()), (12_345, false));
        stamped.invalidate();
        assert_eq!((stamped.created(), stamped.invalidated()), (12_345, true));
        assert_eq!(Stamped::new((), 0).created(), 1);
        let far = Stamped::new((), u64::MAX);
        assert_eq!((far.created(), far.invalidated()), ((1 << 63) - 1, false));
    }

    #[test]
    fn classify_follows_ttl_invalidation_and_max_stale() {
        let policy = Policy {
            ttl: 10,
            max_stale: Some(5),
            stale_if_error: false,
        };
        assert_eq!(policy.classify(100, false, 109), Freshness::Fresh);
        assert_eq!(policy.classify(100, false, 110), Freshness::Stale);
        assert_eq!(policy.classify(100, true, 100), Freshness::Stale);
        assert_eq!(policy.classify(100, false, 114), Freshness::Stale);
        assert_eq!(policy.classify(100, false, 115), Freshness::Expired);
        // Saturating: a huge ttl or a clock behind the stamp never overflows.
        let forever = Policy {
            ttl: u64::MAX,
            max_stale: Some(u64::MAX),
            stale_if_error: false,
        };
        assert_eq!(forever.classify(5, false, u64::MAX), Freshness::Fresh);
        assert_eq!(policy.classify(100, false, 50), Freshness::Fresh);
    }
}
