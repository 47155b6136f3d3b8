//! The slot driver, [`drive`]: the steps of one call (look up, claim, create, publish,
//! release) for every entry point.

use super::creator::{Creator, InCall, Now};
use super::{
    fence_of, Control, Decided, Env, FenceRead, Freshness, Made, SlotClaim, Stamped, Store, Waited,
};
use crate::executor::run_blocking;
use crate::freshness::Decision;
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
            Some(Freshness::Fresh | Freshness::Due) => env.stats.hit(),
            Some(Freshness::Stale) => env.count(|s| &s.stale_hits),
            _ => env.count(|s| &s.misses),
        }
    }
}

/// What one pass of look-up, decision, claim and re-check decides.
pub(crate) enum Pass<V, E> {
    /// Answer with this value: fresh (R2), stale while someone else refreshes it (R3),
    /// fresh on the claimant's re-check (R4), or stale while the key backs off.
    Serve(V),
    /// The key backs off after failures and has nothing to serve: its last error.
    Fail(E),
    /// This call holds the claim and creates. `current` is the value it replaces: stale
    /// (R3), or still fresh for an early refresh; `None` for a cold slot (R1, R11).
    /// `fallback`: a cold slot's expired value, served instead of an error within
    /// `stale_if_error` (R5).
    Create {
        claim: SlotClaim,
        current: Option<Stamped<V>>,
        early: bool,
        fallback: Option<Stamped<V>>,
    },
    /// Cold, and someone else is creating: wait for them, then pass again (R1).
    Wait { fallback: Option<Stamped<V>> },
    /// The slot left its map; look the key up again.
    Retired,
}

/// The shared first half of every call: look up, decide (claiming if it says so),
/// re-check.
pub(crate) fn pass<S: Store, E: Clone + 'static>(
    control: &Arc<Control>,
    store: &S,
    env: &Env,
    arrival: &mut Arrival,
) -> Pass<S::Value, E> {
    let now = env.now();
    let current = store.load();
    let freshness = current.as_ref().map(|s| env.policy.of(s.stamp, now));
    arrival.see(freshness);
    if freshness == Some(Freshness::Fresh) {
        arrival.record(env);
        return Pass::Serve(current.map(|s| s.value).expect("a fresh value was found"));
    }
    let found = current.as_ref().map(|s| (s.expires(), s.invalidated()));
    let (decision, claim) = match control.decide(&env.policy, now, found) {
        Decided::Retired => return Pass::Retired,
        Decided::Decision(decision, claim) => (decision, claim),
    };
    // A cold slot's expired value stands in for a failure within `stale_if_error`.
    let fallback = || {
        current
            .clone()
            .filter(|s| env.policy.serves_on_error(s.expires(), now))
    };
    let Some(claim) = claim else {
        match decision {
            Decision::Serve => {
                if freshness == Some(Freshness::Stale) {
                    env.served_stale(current.as_ref().map(|s| s.stamp), now);
                }
                arrival.record(env);
                return Pass::Serve(current.expect("a servable value was found").value);
            }
            Decision::ServeBackingOff => {
                env.served_stale(current.as_ref().map(|s| s.stamp), now);
                env.count(|s| &s.backoff_answers);
                arrival.record(env);
                return Pass::Serve(current.expect("a servable value was found").value);
            }
            Decision::Failed => {
                if let Some(error) = control.last_error::<E>() {
                    env.count(|s| &s.backoff_answers);
                    arrival.record(env);
                    return Pass::Fail(error);
                }
                // Another call site's error type, with no error of its own to answer
                // with: it creates as for a cold key, or waits for whoever does.
                let Some(claim) = control.claim_if_idle() else {
                    return Pass::Wait {
                        fallback: fallback(),
                    };
                };
                arrival.record(env);
                if let Some(fresh) = recheck(store, env) {
                    return Pass::Serve(fresh);
                }
                return Pass::Create {
                    claim,
                    current: None,
                    early: false,
                    fallback: fallback(),
                };
            }
            _ => {
                return Pass::Wait {
                    fallback: fallback(),
                }
            }
        }
    };
    arrival.record(env);
    if let Some(fresh) = recheck(store, env) {
        return Pass::Serve(fresh);
    }
    match decision {
        Decision::ClaimEarly => {
            env.count(|s| &s.refreshes);
            env.count(|s| &s.early_refreshes);
            trace::early_refresh(&env.name);
            Pass::Create {
                claim,
                current,
                early: true,
                fallback: None,
            }
        }
        Decision::ClaimStale => {
            env.count(|s| &s.refreshes);
            Pass::Create {
                claim,
                current,
                early: false,
                fallback: None,
            }
        }
        _ => Pass::Create {
            claim,
            current: None,
            early: false,
            fallback: fallback(),
        },
    }
}

/// R4: whoever claims looks once more; someone may have published since our look-up.
fn recheck<S: Store>(store: &S, env: &Env) -> Option<S::Value> {
    let now = env.now();
    store
        .load()
        .filter(|s| env.policy.is_fresh(s.stamp, now))
        .map(|s| s.value)
}

/// R5: a failed refresh keeps the value it meant to replace; its caller gets that value
/// if it is still within its lifetime (an early refresh) or within `stale_if_error`.
fn on_error<V, E>(
    env: &Env,
    outcome: Result<V, E>,
    current: Option<Stamped<V>>,
    early: bool,
) -> Result<V, E> {
    match (outcome, current) {
        (Err(_), Some(current))
            if early || env.policy.serves_on_error(current.expires(), env.now()) =>
        {
            if !early {
                env.served_stale(Some(current.stamp), env.now());
            }
            Ok(current.value)
        }
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
        match pass::<S, C::Error>(control, store, env, &mut arrival) {
            Pass::Serve(value) => break Ok(value),
            Pass::Fail(error) => break Err(error),
            Pass::Retired => return Step::Retired,
            Pass::Wait { fallback } => {
                let waited = match how.waiting {
                    Waiting::Block => control.wait_for_release(&env.stats, env.policy.wait_at_most),
                    Waiting::Await => {
                        let at_most = env.policy.wait_at_most;
                        control.wait_for_release_within(&env.stats, at_most).await
                    }
                };
                let attempt = match waited {
                    Waited::Retired => return Step::Retired,
                    Waited::Released(attempt) => attempt,
                    Waited::TimedOut => {
                        // `wait_at_most`: this caller creates itself, beside the
                        // creation it gave up on; whichever ends last is kept.
                        arrival.record(env);
                        let creator = take_creator(creator);
                        break create_unclaimed(control, store, env, creator.start()).await;
                    }
                };
                // R1: the callers that waited for a failed creation share its error
                // instead of each running their own creator, one after another. A
                // panicked creation left none: one of them takes over.
                if let Some(error) = attempt.and_then(|attempt| control.failure_of(attempt)) {
                    arrival.record(env);
                    break on_error(env, Err(error), fallback, false);
                }
            }
            Pass::Create {
                claim,
                current,
                early,
                fallback,
            } => {
                let creator = take_creator(creator);
                let Some(current) = current else {
                    let outcome = create_and_publish(&claim, store, env, creator.start(), false);
                    break on_error(env, outcome.await, fallback, false);
                };
                // A constant condition: a creator that cannot hand off builds no such path.
                let handed = if C::DETACHES {
                    creator.hand_off(claim, store, env)
                } else {
                    Err((creator, claim))
                };
                break match handed {
                    Ok(()) => {
                        if !early {
                            env.served_stale(Some(current.stamp), env.now());
                        }
                        Ok(current.value)
                    }
                    Err((creator, claim)) => {
                        let outcome = create_and_publish(&claim, store, env, creator.start(), true);
                        on_error(env, outcome.await, Some(current), early)
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
    let current = store.load()?;
    let freshness = Some(env.policy.of(current.stamp, env.now()));
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
    let now = env.now();
    let freshness = env.policy.of(current.stamp, now);
    let found = (current.expires(), current.invalidated());
    let serve = recursive
        || freshness == Freshness::Fresh
        || control.serves(&env.policy, now, found).is_some();
    if !serve {
        return None;
    }
    if freshness != Freshness::Fresh && freshness != Freshness::Due {
        env.served_stale(Some(current.stamp), now);
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
    let failure = CountFailureOnUnwind(env, &started, stale);
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
            let stale_if_error = env.policy.stale_if_error.is_some();
            trace::failed(&env.name, &started, failure, stale, stale_if_error);
            if claim.fail(&error, &env.policy, env.now()) {
                trace::backing_off(&env.name);
            }
            Err(error)
        }
    }
}

/// `wait_at_most`: a waiter that gave up on another caller's creation creates without
/// the claim, and publishes what it made (under the reader fence's write section in
/// reader-synchronised mode, R8).
async fn create_unclaimed<S: Store, E>(
    control: &Arc<Control>,
    store: &S,
    env: &Env,
    create: impl Future<Output = Result<Made<S::Value>, E>>,
) -> Result<S::Value, E> {
    let Made { value, from } = create.await?;
    let publish = || store.publish(value.clone(), env.now(), from);
    match control.fence() {
        Some(fence) => fence.write_section(publish),
        None => publish(),
    }
    Ok(value)
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
/// the creator returns. Neither is recorded for the callers waiting for it: the panic
/// reaches its own caller only, and one waiter takes over with its own creator (R1),
/// as after a cancelled async creation.
/// Also holds when the creation began and whether it refreshes a stale value.
struct CountFailureOnUnwind<'a>(&'a Env, &'a trace::Started, bool);

impl Drop for CountFailureOnUnwind<'_> {
    fn drop(&mut self) {
        self.0.count(|s| &s.failures);
        let failure = if std::thread::panicking() {
            trace::Failure::Panic
        } else {
            trace::Failure::Cancelled
        };
        trace::failed(&self.0.name, self.1, failure, self.2, false);
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
