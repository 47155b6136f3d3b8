//! The slot driver, [`drive`]: the steps of one call (look up, claim, create, publish,
//! release) for every entry point.

use super::creator::{Creator, InCall, Now};
use super::{
    fence_of, Control, Env, FenceRead, Freshness, Made, SlotClaim, Stamped, Store, TryClaim,
    Waited, WaitedFailure,
};
use crate::executor::run_blocking;
use crate::trace;
use std::future::Future;
use std::sync::Arc;

/// The end of one pass through a slot.
pub(crate) enum Step<R> {
    Done(R),
    /// The slot left its map while we looked; look the key up again.
    Retired,
}

/// What a call found when it first looked; decides the counter it bumps, exactly once,
/// when a slot serves it. A pass that ends in `Retired` counts nothing: the caller
/// starts over on the key's new slot and counts there.
pub(crate) struct Arrival {
    found: Option<Option<Freshness>>,
    counted: bool,
}

impl Arrival {
    pub(crate) fn new() -> Self {
        Arrival {
            found: None,
            counted: false,
        }
    }

    fn see(&mut self, freshness: Option<Freshness>) {
        self.found.get_or_insert(freshness);
    }

    pub(crate) fn record(&mut self, env: &Env) {
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
pub(crate) enum Pass<V> {
    /// Answer with this value: fresh (R2), stale while someone else refreshes (R3), or
    /// fresh on the claimant's re-check (R4).
    Serve(V),
    /// This call holds the claim and creates; `stale` is the value it replaces (R3),
    /// `None` for a cold slot (R1, R11).
    Create { claim: SlotClaim, stale: Option<V> },
    /// Cold, and someone else is creating: wait for them, then pass again (R1).
    Wait,
    /// The slot left its map; look the key up again.
    Retired,
}

/// The shared first half of every call: look up, claim, re-check.
pub(crate) fn pass<S: Store>(
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
                match attempt.and_then(|attempt| control.failure_of(attempt)) {
                    None => {}
                    Some(WaitedFailure::Error(error)) => {
                        arrival.record(env);
                        break Err(error);
                    }
                    Some(WaitedFailure::Panicked) => {
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
    let mut creator = Some(InCall(Now::new(create)));
    run_blocking(drive(control, store, env, &mut creator, how))
}

async fn create_and_publish<S: Store, E: Clone + Send + 'static>(
    claim: &SlotClaim,
    store: &S,
    env: &Env,
    create: impl Future<Output = Result<Made<S::Value>, E>>,
    stale: bool,
) -> Result<S::Value, E> {
    // Counts a panic or a cancellation (the future dropped mid-way) as a failure.
    let started = trace::start();
    let failure = CountFailureOnUnwind(env, claim, &started, stale);
    let outcome = claim.run(create).await;
    std::mem::forget(failure);
    match outcome {
        Ok(Made { value, from }) => {
            // R6: age counts from when the creation finished.
            claim.publish(store, value.clone(), env.now(), from);
            if from.tier {
                env.count(|s| &s.tier_hits);
                trace::from_tier(&env.name, &started, stale);
            } else {
                trace::created(&env.name, &started, stale);
            }
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
struct CountFailureOnUnwind<'a>(&'a Env, &'a SlotClaim, &'a trace::Started, bool);

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
    claim: SlotClaim,
    store: S,
    env: Env,
    create: F,
) -> impl Future<Output = ()> + Send + 'static
where
    S: Store + Send + Sync + 'static,
    S::Value: Send + Sync,
    F: Future<Output = Result<Made<S::Value>, E>> + Send + 'static,
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
