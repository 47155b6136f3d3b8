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
//!    its value (or its creation's error) on the next round; with `wait_at_most`, the
//!    call's waits end together, and it creates the keys it gave up on itself, beside
//!    their creators.
//!
//! A call never waits while it holds a claim, so two batches over overlapping keys
//! cannot wait for each other, and a creator may call the cache for other keys (R9).
//!
//! With a fleet tier, step 3 takes the tier's steps for each creator call's keys
//! together (`create.rs`): one claim of them all in the tier, one creator call for the
//! keys whose lease it got, one publish of their values, one wait for the cold keys
//! other processes create (F2). Holding only the local claims of those keys (F3), and
//! no lease, it waits for them before the claims of its next creator call.
//!
//! This file plans (which keys are hits, claimed, busy; the rounds and their waits);
//! `create.rs` creates and publishes.

mod create;

use super::call::{EntryStore, SlotsHandle};
use super::dispatch::Core;
use super::lookup::{ByBorrow, Hasher, Owned};
use crate::clock::to_nanos;
use crate::executor::{run_blocking, RefreshTask};
use crate::slot::{self, Arrival, Pass, Store, Waited, Waiting};
use crate::stats::Counters;
use create::{refresh_task, Claimed, Creating, KeyStore};
use std::collections::HashMap;
use std::future::{ready, Future};
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    // `wait_at_most`: when the call's waits end, from its first wait on.
    let mut wait_until: Option<Instant> = None;
    while !pending.is_empty() {
        let (mut now, mut refresh, mut busy, mut again) = (vec![], vec![], vec![], vec![]);
        for index in pending.drain(..) {
            let key = &keys[index];
            let Some(control) = slots.control_of(&Owned(key.clone())) else {
                Counters::bump(&env.stats.misses);
                now.push(Claimed::unstored(index, key.clone(), None));
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
                        unclaimed: None,
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
        let creating = Creating {
            env,
            tier: slots.tier(),
            max_batch: slots.max_batch(),
            blocking: waiting == Waiting::Block,
        };
        let made = creating.create_claimed(now, create).await;
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
        let mut given_up = Vec::new();
        while let Some((index, store)) = busy.next() {
            // `wait_at_most` bounds the call's waits together, from its first wait on.
            let at_most = env.policy.wait_at_most.map(|limit| {
                let until =
                    *wait_until.get_or_insert_with(|| Instant::now() + Duration::from_nanos(limit));
                to_nanos(until.saturating_duration_since(Instant::now()))
            });
            let (control, stats) = (&store.control, &env.stats);
            let waited = match (waiting, at_most) {
                (Waiting::Block, _) => control.wait_for_release(stats, at_most),
                (Waiting::Await, None) => control.wait_for_release_async(stats).await,
                (Waiting::Await, Some(_)) => control.wait_for_release_within(stats, at_most).await,
            };
            if let Waited::TimedOut = waited {
                // This call gives up on the other caller and creates the key itself,
                // beside it, publishing what it makes (as a single call does).
                given_up.push(Claimed::unstored(index, keys[index].clone(), Some(store)));
                continue;
            }
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
                    given_up
                        .into_iter()
                        .for_each(|claimed| claimed.finish(false));
                    return Err(error);
                }
            }
        }
        for (index, value) in creating.create_claimed(given_up, create).await? {
            values[index] = Some(value);
        }
        pending = again;
    }
    Ok(values
        .into_iter()
        .map(|value| value.expect("dogpile: internal error: a batch key without value"))
        .collect())
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
        let mut run = |keys: Vec<K>| ready(create(&keys));
        let slots = self.slots();
        let call = get_many(&slots, &missing.distinct, &mut run, None, Waiting::Block);
        let made = run_blocking(call)?;
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
        let slots = self.slots();
        let call = get_many(&slots, &missing.distinct, &mut create, None, Waiting::Await);
        let made = Box::pin(call).await?;
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
        let slots = self.slots();
        let (env, tier, max_batch, executor) = (
            slots.env().clone(),
            slots.tier().cloned(),
            slots.max_batch(),
            self.executor().clone(),
        );
        let refresher = create.clone();
        let mut hand_off = move |claimed: Vec<Claimed<K, V>>| {
            let (env, tier, create) = (env.clone(), tier.clone(), refresher.clone());
            let task = refresh_task(env, tier, max_batch, claimed, create);
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
        let made = run_blocking(call)?;
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
        let slots = self.slots();
        #[cfg(feature = "tokio")]
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (env, tier, max_batch) = (
                slots.env().clone(),
                slots.tier().cloned(),
                slots.max_batch(),
            );
            let create = Arc::new(create);
            let refresher = create.clone();
            let mut hand_off = move |claimed: Vec<Claimed<K, V>>| {
                let (env, tier, create) = (env.clone(), tier.clone(), refresher.clone());
                drop(runtime.spawn(async move {
                    let mut refresher = move |keys: Vec<K>| create(keys);
                    let creating = Creating {
                        env: &env,
                        tier: tier.as_ref(),
                        max_batch,
                        blocking: false,
                    };
                    let _ = creating.create_claimed(claimed, &mut refresher).await;
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
        let made = Box::pin(call).await?;
        Ok(missing.fill(made))
    }
}

/// Lets go of what a batch holds when a key's back-off ends the call early: the claims
/// (their waiters take over) and the busy keys' stores.
fn release_all<K, V>(
    claimed: Vec<Claimed<K, V>>,
    refresh: Vec<Claimed<K, V>>,
    busy: Vec<(usize, KeyStore<K, V>)>,
) where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    claimed
        .into_iter()
        .chain(refresh)
        .for_each(|claimed| claimed.finish(false));
    busy.into_iter().for_each(|(_, store)| store.release());
}
