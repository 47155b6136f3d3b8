//! Batches: many keys in one call, with every per-key rule kept (`Cache::get_many_with`
//! and its kin).
//!
//! A batch is the per-key steps of `slot::drive` (look up, claim, re-check) taken for
//! each of its keys in turn, with one creator call for every key this call claimed:
//!
//! 1. *hits*: each fresh key is served by the hit path, as a single call would be;
//! 2. *claims*: each other key, once, in first-seen order, goes through the slot's pass:
//!    served (fresh on a second look, or stale while someone else refreshes it, R3),
//!    claimed (cold, or stale: this call refreshes it), or busy (cold, and another
//!    caller, single or batch, is creating it);
//! 3. *create*: the claimed keys go to the creator, `max_batch` at a time; each value is
//!    published under its key's claim and the claims are released; an `Err` is recorded
//!    on every claim of that creator call, for the waiters (R1), and nothing is stored;
//!    in `Background` mode the stale keys' refresh goes to the refresh executor instead
//!    (R10), and their stale values are served;
//! 4. *wait*: only then, holding no claim, the call waits for each busy key and takes
//!    its value (or its creation's error) on the next round.
//!
//! A call never waits while it holds a claim, so two batches over overlapping keys
//! cannot wait for each other, and a creator may call the cache for other keys (R9).

use super::call::{EntryStore, SlotsHandle};
use super::dispatch::Core;
use super::lookup::{ByBorrow, Hasher, Owned};
use crate::executor::{run_blocking, RefreshTask};
use crate::slot::{
    self, Arrival, Env, Pass, Provenance, SlotClaim, Stamped, Store, Waited, Waiting,
};
use crate::stats::Counters;
use crate::trace;
use std::collections::HashMap;
use std::future::{ready, Future};
use std::hash::Hash;
use std::sync::Arc;

/// One key's store, as a batch builds it.
type KeyStore<K, V> = EntryStore<SlotsHandle<K, V>, Owned<K>>;

/// Hands the stale keys a `Background` batch claimed to where their refresh runs.
type HandOff<'a, K, V> = Option<&'a mut (dyn FnMut(Vec<Claimed<K, V>>) + Send)>;

/// The keys of a batch that the hit path did not serve: each once, in first-seen order,
/// and the positions of the call's answer that each one fills.
struct Missing<K, V> {
    /// The answer so far: the hits, and `None` where a value is missing.
    values: Vec<Option<V>>,
    distinct: Vec<K>,
    /// (position in the answer, index in `distinct`).
    at: Vec<(usize, usize)>,
}

impl<K: Clone, V: Clone> Missing<K, V> {
    /// The answer, with `made` (one value per distinct key) in every missing position.
    fn fill(self, made: Vec<V>) -> Vec<V> {
        let Missing { mut values, at, .. } = self;
        for (position, index) in at {
            values[position] = Some(made[index].clone());
        }
        values
            .into_iter()
            .map(|value| value.expect("dogpile: internal error: a batch left a key without value"))
            .collect()
    }
}

/// The panic of a creator that answered with the wrong number of values.
fn check_len(asked: usize, got: usize) {
    if asked != got {
        panic!(
            "dogpile: a batch creator was given {asked} keys and returned {got} values; it \
             must return one value per key, in the order of the keys it was given"
        );
    }
}

/// A key this call holds the claim of, or must compute without storing.
pub(crate) struct Claimed<K, V> {
    /// Its index among the call's distinct keys.
    index: usize,
    key: K,
    /// `None` when the cache is full and nothing can be evicted: the value is computed
    /// for this call and not stored, as a single call does.
    held: Option<(SlotClaim, KeyStore<K, V>)>,
    /// The value it replaces (R3), or still fresh for an early refresh; `None` for a
    /// cold key.
    stale: Option<Stamped<V>>,
    /// A cold key's expired value, served instead of an error within `stale_if_error`
    /// (R5).
    fallback: Option<Stamped<V>>,
}

impl<K: Hash + Eq + Clone, V: Clone> Claimed<K, V> {
    /// Releases the claim, then lets the entry go of its idle control.
    fn finish(self, failed: bool) {
        if let Some((claim, store)) = self.held {
            drop(claim);
            let (inner, key) = (store.inner.clone(), store.key.clone());
            store.release();
            if failed {
                // A failed first creation leaves no empty entry behind (as a single call).
                inner.forget_if_empty(&key);
            }
        }
    }
}

/// Counts (and traces) each key of a creator call that panicked or was cancelled as a
/// failed creation. Neither is recorded for the callers waiting for those keys: the
/// panic reaches this call only, and one waiter per key takes over (R1). Forgotten when
/// the creator returns.
struct FailOnUnwind<'a, K, V>(&'a Env, &'a [Claimed<K, V>], &'a trace::Started);

impl<K, V> Drop for FailOnUnwind<'_, K, V> {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        for claimed in self.1 {
            Counters::bump(&self.0.stats.failures);
            let failure = match panicking {
                true => trace::Failure::Panic,
                false => trace::Failure::Cancelled,
            };
            trace::failed(
                &self.0.name,
                self.2,
                failure,
                claimed.stale.is_some(),
                false,
            );
        }
    }
}

/// One creator call over `chunk`: each value published under its key's claim, the
/// claims released. Values by index among the call's distinct keys.
async fn create_chunk<K, V, E, F, Fut>(
    env: &Env,
    chunk: Vec<Claimed<K, V>>,
    create: &mut F,
) -> Result<Vec<(usize, V)>, E>
where
    K: Hash + Eq + Clone,
    V: Clone,
    E: Clone + Send + 'static,
    F: FnMut(Vec<K>) -> Fut,
    Fut: Future<Output = Result<Vec<V>, E>>,
{
    let keys: Vec<K> = chunk.iter().map(|claimed| claimed.key.clone()).collect();
    let started = trace::start();
    let failure = FailOnUnwind(env, &chunk, &started);
    let claims = chunk
        .iter()
        .filter_map(|c| c.held.as_ref().map(|(claim, _)| claim));
    let outcome = slot::run_claimed(claims, || create(keys)).await;
    if let Ok(values) = &outcome {
        check_len(chunk.len(), values.len());
    }
    std::mem::forget(failure);
    match outcome {
        Ok(values) => {
            // R6: age counts from when the creation finished.
            let now = env.now();
            let mut made = Vec::with_capacity(values.len());
            for (claimed, value) in chunk.into_iter().zip(values) {
                if let Some((claim, store)) = &claimed.held {
                    claim.publish(store, value.clone(), now, Provenance::HERE);
                    trace::created(&env.name, &started, claimed.stale.is_some());
                }
                made.push((claimed.index, value));
                claimed.finish(false);
            }
            Ok(made)
        }
        Err(error) => {
            let stale_if_error = env.policy.stale_if_error.is_some();
            let now = env.now();
            for claimed in &chunk {
                Counters::bump(&env.stats.failures);
                let failure = trace::Failure::Error(trace::error_type::<E>());
                let stale = claimed.stale.is_some();
                trace::failed(&env.name, &started, failure, stale, stale_if_error);
                if let Some((claim, _)) = &claimed.held {
                    if claim.fail(&error, &env.policy, now) {
                        trace::backing_off(&env.name);
                    }
                }
            }
            // R5: a failed creation whose keys all have a value within `stale_if_error`
            // serves those values.
            let served: Option<Vec<(usize, V)>> = chunk
                .iter()
                .map(|c| {
                    let kept = c.stale.as_ref().or(c.fallback.as_ref())?;
                    env.policy
                        .serves_on_error(kept.expires(), now)
                        .then(|| (c.index, kept.value.clone()))
                })
                .collect();
            for claimed in chunk {
                claimed.finish(true);
            }
            served.ok_or(error)
        }
    }
}

/// The creator over every claimed key, `max_batch` keys a call, in first-seen order. On
/// an `Err` the keys of later calls are released unasked (their waiters take over), so
/// that a failing backend is not asked again within this call.
async fn create_claimed<K, V, E, F, Fut>(
    env: &Env,
    max_batch: usize,
    mut claimed: Vec<Claimed<K, V>>,
    create: &mut F,
) -> Result<Vec<(usize, V)>, E>
where
    K: Hash + Eq + Clone,
    V: Clone,
    E: Clone + Send + 'static,
    F: FnMut(Vec<K>) -> Fut,
    Fut: Future<Output = Result<Vec<V>, E>>,
{
    let mut made = Vec::with_capacity(claimed.len());
    while !claimed.is_empty() {
        let rest = claimed.split_off(claimed.len().min(max_batch));
        let chunk = std::mem::replace(&mut claimed, rest);
        made.extend(create_chunk(env, chunk, create).await?);
    }
    Ok(made)
}

/// The slow path of a batch: `keys` (distinct, none served by the hit path) through
/// claims, creator calls and waits, round after round until each has its value. Values
/// in the order of `keys`.
async fn get_many<K, V, E, F, Fut>(
    slots: &SlotsHandle<K, V>,
    keys: &[K],
    create: &mut F,
    mut hand_off: HandOff<'_, K, V>,
    waiting: Waiting,
) -> Result<Vec<V>, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Clone + Send + 'static,
    F: FnMut(Vec<K>) -> Fut,
    Fut: Future<Output = Result<Vec<V>, E>>,
{
    let env = slots.env();
    let mut values: Vec<Option<V>> = keys.iter().map(|_| None).collect();
    let mut arrivals: Vec<Arrival> = keys.iter().map(|_| Arrival::new()).collect();
    let mut pending: Vec<usize> = (0..keys.len()).collect();
    while !pending.is_empty() {
        let (mut now, mut refresh, mut busy, mut again) = (vec![], vec![], vec![], vec![]);
        for index in pending.drain(..) {
            let key = &keys[index];
            let Some(control) = slots.control_of(&Owned(key.clone())) else {
                Counters::bump(&env.stats.misses);
                let (key, held, stale, fallback) = (key.clone(), None, None, None);
                now.push(Claimed {
                    index,
                    key,
                    held,
                    stale,
                    fallback,
                });
                continue;
            };
            let store = EntryStore {
                inner: slots.clone(),
                key: Owned(key.clone()),
                control,
            };
            match slot::pass::<_, E>(&store.control, &store, env, &mut arrivals[index]) {
                Pass::Serve(value) => {
                    values[index] = Some(value);
                    store.release();
                }
                Pass::Retired => {
                    store.release();
                    again.push(index);
                }
                Pass::Fail(error) => {
                    // The key backs off after failures and has nothing to serve: its
                    // last error answers the whole call.
                    store.release();
                    release_all(now, refresh, busy);
                    return Err(error);
                }
                Pass::Wait { .. } => busy.push((index, store)),
                Pass::Create {
                    claim,
                    current,
                    early: _,
                    fallback,
                } => {
                    let claimed = Claimed {
                        index,
                        key: key.clone(),
                        held: Some((claim, store)),
                        stale: current,
                        fallback,
                    };
                    match (&claimed.stale, hand_off.is_some()) {
                        (Some(stale), true) => {
                            values[index] = Some(stale.value.clone());
                            refresh.push(claimed);
                        }
                        _ => now.push(claimed),
                    }
                }
            }
        }
        if let (Some(hand_off), false) = (hand_off.as_mut(), refresh.is_empty()) {
            hand_off(refresh);
        }
        let made = create_claimed(env, slots.max_batch(), now, create).await;
        let made = match made {
            Ok(made) => made,
            Err(error) => {
                busy.into_iter().for_each(|(_, store)| store.release());
                return Err(error);
            }
        };
        for (index, value) in made {
            values[index] = Some(value);
        }
        let mut busy = busy.into_iter();
        while let Some((index, store)) = busy.next() {
            let waited = match waiting {
                // `wait_at_most` bounds single calls only: a batch waits for each key
                // another caller creates, however long that takes.
                Waiting::Block => store.control.wait_for_release(&env.stats, None),
                Waiting::Await => store.control.wait_for_release_async(&env.stats).await,
            };
            let failure = match waited {
                Waited::Released(Some(attempt)) => store.control.failure_of::<E>(attempt),
                _ => None,
            };
            store.release();
            match failure {
                // Released with a value, or after a panic or a cancellation: look again
                // (after a panic one waiter takes over, R1).
                None => again.push(index),
                Some(error) => {
                    // R1: the callers that waited for a failed creation share its error.
                    arrivals[index].record(env);
                    busy.for_each(|(_, store)| store.release());
                    return Err(error);
                }
            }
        }
        pending = again;
    }
    Ok(values
        .into_iter()
        .map(|value| value.expect("dogpile: internal error: a batch key without value"))
        .collect())
}

/// The refresh of a `Background` batch's stale keys, ready to run elsewhere (R10): it
/// owns their claims (released when it ends, or when it is dropped unrun).
// Not an `async fn`: the `Send + 'static` bounds are checked here, once.
#[allow(clippy::manual_async_fn)]
fn refresh_task<K, V, E, F>(
    env: Env,
    max_batch: usize,
    claimed: Vec<Claimed<K, V>>,
    create: Arc<F>,
) -> impl Future<Output = ()> + Send + 'static
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Clone + Send + 'static,
    F: Fn(&[K]) -> Result<Vec<V>, E> + Send + Sync + 'static,
{
    async move {
        let mut run = |keys: Vec<K>| ready(create(&keys));
        // Its outcome is traced where each creator call ends, in `create_chunk`.
        let _ = create_claimed(&env, max_batch, claimed, &mut run).await;
    }
}

impl<K, V> Core<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The hit path for each key: the whole answer when every key is fresh, else what
    /// is missing.
    fn hits(&self, keys: &[K]) -> Result<Vec<V>, Missing<K, V>> {
        let hit = |key: &K| self.hit(&ByBorrow(key));
        let mut found = Vec::with_capacity(keys.len());
        for key in keys {
            match hit(key) {
                Some(value) => found.push(value),
                None => break,
            }
        }
        if found.len() == keys.len() {
            return Ok(found);
        }
        let mut values: Vec<Option<V>> = found.into_iter().map(Some).collect();
        let mut missing = Missing {
            values: Vec::new(),
            distinct: Vec::new(),
            at: Vec::new(),
        };
        let mut seen: HashMap<&K, usize, Hasher> = HashMap::default();
        for (position, key) in keys.iter().enumerate().skip(values.len()) {
            if let Some(&index) = seen.get(key) {
                values.push(None);
                missing.at.push((position, index));
                continue;
            }
            let value = hit(key);
            if value.is_none() {
                let index = missing.distinct.len();
                seen.insert(key, index);
                missing.distinct.push(key.clone());
                missing.at.push((position, index));
            }
            values.push(value);
        }
        missing.values = values;
        Err(missing)
    }

    /// A cache with a fleet tier runs a batch's keys one by one through the single-key
    /// path, which takes the tier's steps (F1-F8) for each: the creator is then given
    /// one key a call.
    fn has_tier(&self) -> bool {
        self.slots().tier().is_some()
    }

    /// `get_many_with` and its kin of an `Inline` cache.
    pub(crate) fn try_get_many_inline<E: Clone + Send + 'static>(
        &self,
        keys: &[K],
        mut create: impl FnMut(&[K]) -> Result<Vec<V>, E>,
    ) -> Result<Vec<V>, E> {
        let missing = match self.hits(keys) {
            Ok(values) => return Ok(values),
            Err(missing) => missing,
        };
        let made = if self.has_tier() {
            let mut made = Vec::with_capacity(missing.distinct.len());
            for key in &missing.distinct {
                let one = || create(std::slice::from_ref(key)).map(single);
                made.push(self.try_get_inline(Owned(key.clone()), one)?);
            }
            made
        } else {
            let mut run = |keys: Vec<K>| ready(create(&keys));
            let slots = self.slots();
            run_blocking(get_many(
                &slots,
                &missing.distinct,
                &mut run,
                None,
                Waiting::Block,
            ))?
        };
        Ok(missing.fill(made))
    }

    #[cfg(not(loom))]
    pub(crate) async fn try_get_many_inline_async<E, F, Fut>(
        &self,
        keys: &[K],
        mut create: F,
    ) -> Result<Vec<V>, E>
    where
        E: Clone + Send + 'static,
        F: FnMut(Vec<K>) -> Fut,
        Fut: Future<Output = Result<Vec<V>, E>>,
    {
        let missing = match self.hits(keys) {
            Ok(values) => return Ok(values),
            Err(missing) => missing,
        };
        let made = if self.has_tier() {
            let mut made = Vec::with_capacity(missing.distinct.len());
            for key in &missing.distinct {
                let one = create(vec![key.clone()]);
                let one = async { one.await.map(single) };
                made.push(Box::pin(self.try_get_inline_async(Owned(key.clone()), one)).await?);
            }
            made
        } else {
            let slots = self.slots();
            let call = get_many(&slots, &missing.distinct, &mut create, None, Waiting::Await);
            Box::pin(call).await?
        };
        Ok(missing.fill(made))
    }

    /// `get_many_with` and its kin of a `Background` cache: the stale keys' refresh goes
    /// to the refresh executor (R10).
    pub(crate) fn try_get_many_background<E, F>(&self, keys: &[K], create: F) -> Result<Vec<V>, E>
    where
        E: Clone + Send + 'static,
        F: Fn(&[K]) -> Result<Vec<V>, E> + Send + Sync + 'static,
    {
        let missing = match self.hits(keys) {
            Ok(values) => return Ok(values),
            Err(missing) => missing,
        };
        let create = Arc::new(create);
        let made = if self.has_tier() {
            let mut made = Vec::with_capacity(missing.distinct.len());
            for key in &missing.distinct {
                let (create, one_key) = (create.clone(), key.clone());
                let one = move || create(std::slice::from_ref(&one_key)).map(single);
                made.push(self.try_get_background(Owned(key.clone()), one)?);
            }
            made
        } else {
            let slots = self.slots();
            let (env, max_batch, executor) = (
                slots.env().clone(),
                slots.max_batch(),
                self.executor().clone(),
            );
            let refresher = create.clone();
            let mut hand_off = move |claimed: Vec<Claimed<K, V>>| {
                let task = refresh_task(env.clone(), max_batch, claimed, refresher.clone());
                executor.submit(RefreshTask::new(task));
            };
            let mut run = |keys: Vec<K>| ready(create(&keys));
            let call = get_many(
                &slots,
                &missing.distinct,
                &mut run,
                Some(&mut hand_off),
                Waiting::Block,
            );
            run_blocking(call)?
        };
        Ok(missing.fill(made))
    }

    /// The async calls of a `Background` cache: inside a tokio runtime (with the `tokio`
    /// feature) the stale keys' refresh is spawned on it; otherwise it runs in this call,
    /// as in `Inline` mode.
    #[cfg(not(loom))]
    pub(crate) async fn try_get_many_background_async<E, F, Fut>(
        &self,
        keys: &[K],
        create: F,
    ) -> Result<Vec<V>, E>
    where
        E: Clone + Send + 'static,
        F: Fn(Vec<K>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<V>, E>> + Send + 'static,
    {
        let missing = match self.hits(keys) {
            Ok(values) => return Ok(values),
            Err(missing) => missing,
        };
        let made = if self.has_tier() {
            let create = Arc::new(create);
            let mut made = Vec::with_capacity(missing.distinct.len());
            for key in &missing.distinct {
                let one = create(vec![key.clone()]);
                let one = async { one.await.map(single) };
                let call = self.try_get_background_async(Owned(key.clone()), one);
                made.push(Box::pin(call).await?);
            }
            made
        } else {
            let slots = self.slots();
            #[cfg(feature = "tokio")]
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let (env, max_batch) = (slots.env().clone(), slots.max_batch());
                let create = Arc::new(create);
                let refresher = create.clone();
                let mut hand_off = move |claimed: Vec<Claimed<K, V>>| {
                    let create = refresher.clone();
                    let (env, refresher) = (env.clone(), move |keys: Vec<K>| create(keys));
                    drop(runtime.spawn(async move {
                        let mut refresher = refresher;
                        let _ = create_claimed(&env, max_batch, claimed, &mut refresher).await;
                    }));
                };
                let mut run = |keys: Vec<K>| create(keys);
                let hand_off: HandOff<'_, K, V> = Some(&mut hand_off);
                let call = get_many(
                    &slots,
                    &missing.distinct,
                    &mut run,
                    hand_off,
                    Waiting::Await,
                );
                let made = Box::pin(call).await?;
                return Ok(missing.fill(made));
            }
            let mut run = |keys: Vec<K>| create(keys);
            let call = get_many(&slots, &missing.distinct, &mut run, None, Waiting::Await);
            Box::pin(call).await?
        };
        Ok(missing.fill(made))
    }
}

/// The one value of a creator call given one key.
fn single<V>(mut values: Vec<V>) -> V {
    check_len(1, values.len());
    values.pop().expect("checked: one value")
}

/// Lets go of what a batch holds when a key's back-off ends the call early: the claims
/// (their waiters take over) and the busy keys' stores.
fn release_all<K, V>(
    claimed: Vec<Claimed<K, V>>,
    refresh: Vec<Claimed<K, V>>,
    busy: Vec<(usize, KeyStore<K, V>)>,
) where
    K: Hash + Eq + Clone,
    V: Clone,
{
    claimed
        .into_iter()
        .chain(refresh)
        .for_each(|claimed| claimed.finish(false));
    busy.into_iter().for_each(|(_, store)| store.release());
}
