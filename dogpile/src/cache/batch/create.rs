//! A batch's creation and publication: the keys it claimed go to the creator,
//! `max_batch` at a time, and each value is published under its key's claim. With a
//! fleet tier, each creator call's keys are first claimed in the tier together (one
//! [`TierLevel::begin_many`]), the values it creates are published there together
//! under their leases (F5), and every lease of a failed creator call is released at
//! once (F8).

use crate::cache::call::{EntryStore, SlotsHandle};
use crate::cache::lookup::Owned;
use crate::slot::{self, Env, Made, Provenance, SlotClaim, Stamped, Store};
use crate::stats::Counters;
use crate::tier::{Begin, ColdWait, TierLevel};
use crate::trace;
use crate::Lease;
use std::future::{ready, Future};
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

/// One key's store, as a batch builds it.
pub(super) type KeyStore<K, V> = EntryStore<SlotsHandle<K, V>, Owned<K>>;

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
    pub(super) index: usize,
    pub(super) key: K,
    /// `None` when the cache is full and nothing can be evicted: the value is computed
    /// for this call and not stored, as a single call does.
    pub(super) held: Option<(SlotClaim, KeyStore<K, V>)>,
    /// Without a claim: where the value is stored when this call gave up waiting for
    /// another caller's creation (`wait_at_most`) and creates the key beside it.
    pub(super) unclaimed: Option<KeyStore<K, V>>,
    /// The value it replaces (R3), or still fresh for an early refresh; `None` for a
    /// cold key.
    pub(super) stale: Option<Stamped<V>>,
    /// A cold key's expired value, served instead of an error within `stale_if_error`
    /// (R5).
    pub(super) fallback: Option<Stamped<V>>,
}

impl<K, V> Claimed<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A key this call creates without its claim: stored in `unclaimed` if given.
    pub(super) fn unstored(index: usize, key: K, unclaimed: Option<KeyStore<K, V>>) -> Self {
        Claimed {
            index,
            key,
            held: None,
            unclaimed,
            stale: None,
            fallback: None,
        }
    }

    /// Stores `value`, made at `now`, under the claim, or beside another caller's
    /// creation after a `wait_at_most`.
    fn publish(&self, value: &V, now: u64, from: Provenance) {
        if let Some((claim, store)) = &self.held {
            claim.publish(store, value.clone(), now, from);
        } else if let Some(store) = &self.unclaimed {
            store.publish(value.clone(), now, from);
        }
    }

    /// Releases the claim, then lets the entry go of its idle control.
    pub(super) fn finish(self, failed: bool) {
        if let Some(store) = self.unclaimed {
            store.release();
            return;
        }
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

/// The tier leases of a creator call's keys, by position in the call, with each key's
/// failures in a row before this claim: released all at once if the call ends without
/// publishing them (an `Err`, a panic, a dropped future, F8).
struct Leases<'a, K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    level: Option<&'a TierLevel<K, V>>,
    held: Vec<(usize, K, Lease, u32)>,
}

impl<K, V> Leases<'_, K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Publishes each leased key's value in the tier (F5): how each value of the call
    /// is to be stamped in L1.
    fn publish(&mut self, values: &[V]) -> Vec<Provenance> {
        let mut from = vec![Provenance::HERE; values.len()];
        let held = std::mem::take(&mut self.held);
        if let (Some(level), false) = (self.level, held.is_empty()) {
            let entries: Vec<(&K, &Lease, &V)> = held
                .iter()
                .map(|(at, key, lease, _)| (key, lease, &values[*at]))
                .collect();
            for ((at, ..), published) in held.iter().zip(level.publish_many(&entries)) {
                from[*at] = published;
            }
        }
        from
    }
}

impl<K, V> Drop for Leases<'_, K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn drop(&mut self) {
        if let (Some(level), false) = (self.level, self.held.is_empty()) {
            let entries: Vec<(&K, &Lease, u32)> = self
                .held
                .iter()
                .map(|(_, key, lease, failures)| (key, lease, *failures))
                .collect();
            level.release_many(&entries); // F8
        }
    }
}

/// Where a batch's creator calls run: the cache's settings and its fleet tier.
pub(crate) struct Creating<'a, K, V> {
    pub(crate) env: &'a Env,
    pub(crate) tier: Option<&'a TierLevel<K, V>>,
    pub(crate) max_batch: usize,
    /// Whether a wait for a key another process creates parks the thread (else it
    /// awaits).
    pub(crate) blocking: bool,
}

impl<K, V> Creating<'_, K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The creator over every claimed key, `max_batch` keys a call, in first-seen
    /// order. On an `Err` the keys of later calls are released unasked (their waiters
    /// take over), so that a failing backend is not asked again within this call.
    pub(crate) async fn create_claimed<E, F, Fut>(
        &self,
        mut claimed: Vec<Claimed<K, V>>,
        create: &mut F,
    ) -> Result<Vec<(usize, V)>, E>
    where
        E: Clone + Send + 'static,
        F: FnMut(Vec<K>) -> Fut,
        Fut: Future<Output = Result<Vec<V>, E>>,
    {
        let mut made = Vec::with_capacity(claimed.len());
        while !claimed.is_empty() {
            let rest = claimed.split_off(claimed.len().min(self.max_batch));
            let chunk = std::mem::replace(&mut claimed, rest);
            let created = match self.tier {
                None => {
                    let leases = chunk.iter().map(|_| None).collect();
                    self.create_chunk(chunk, leases, create).await
                }
                Some(level) => self.create_shared(level, chunk, create).await,
            };
            made.extend(created?);
        }
        Ok(made)
    }

    /// `chunk` through the fleet tier, round after round: one claim for all its keys in
    /// the tier; the keys the tier has a value for (fresh, or stale while another
    /// process refreshes it, F1) are served from it; the keys this call now holds the
    /// lease of (or that the tier could not answer for, F7) go to one creator call;
    /// then, holding no lease, one wait for any of the cold keys another process is
    /// creating (F2, bounded per key), and the next round claims those again.
    async fn create_shared<E, F, Fut>(
        &self,
        level: &TierLevel<K, V>,
        chunk: Vec<Claimed<K, V>>,
        create: &mut F,
    ) -> Result<Vec<(usize, V)>, E>
    where
        E: Clone + Send + 'static,
        F: FnMut(Vec<K>) -> Fut,
        Fut: Future<Output = Result<Vec<V>, E>>,
    {
        let env = self.env;
        let mut made = Vec::with_capacity(chunk.len());
        let mut pending = chunk;
        let mut colds = vec![ColdWait::default(); pending.len()];
        loop {
            let seen = level.events_seen();
            let keys: Vec<K> = pending.iter().map(|claimed| claimed.key.clone()).collect();
            let started = trace::start();
            let mut failures = vec![0; pending.len()];
            let begins = level.begin_many(&keys, &mut colds, &mut failures);
            let (mut creating, mut leases, mut waiting) = (vec![], vec![], vec![]);
            let mut wait_colds = vec![];
            let mut timeout = Duration::MAX;
            let answers = begins.into_iter().zip(colds).zip(failures);
            for (claimed, ((begin, cold), failures)) in pending.into_iter().zip(answers) {
                match begin {
                    Begin::Serve(Made { value, from }) => {
                        claimed.publish(&value, env.now(), from);
                        Counters::bump(&env.stats.tier_hits);
                        trace::from_tier(&env.name, &started, claimed.stale.is_some());
                        made.push((claimed.index, value));
                        claimed.finish(false);
                    }
                    Begin::Create(lease) => {
                        creating.push(claimed);
                        leases.push(lease.map(|lease| (lease, failures)));
                    }
                    Begin::Wait(wait) => {
                        timeout = timeout.min(wait);
                        waiting.push(claimed);
                        wait_colds.push(cold);
                    }
                }
            }
            if !creating.is_empty() {
                match self.create_chunk(creating, leases, create).await {
                    Ok(created) => made.extend(created),
                    Err(error) => {
                        waiting
                            .into_iter()
                            .for_each(|claimed| claimed.finish(false));
                        return Err(error);
                    }
                }
            }
            if waiting.is_empty() {
                return Ok(made);
            }
            level.wait_for_events(seen, timeout, self.blocking).await;
            (pending, colds) = (waiting, wait_colds);
        }
    }

    /// One creator call over `chunk`: each value published under its key's lease in
    /// the tier (`leases`, by position), then under its key's claim here, the claims
    /// released. Values by index among the call's distinct keys.
    async fn create_chunk<E, F, Fut>(
        &self,
        chunk: Vec<Claimed<K, V>>,
        leases: Vec<Option<(Lease, u32)>>,
        create: &mut F,
    ) -> Result<Vec<(usize, V)>, E>
    where
        E: Clone + Send + 'static,
        F: FnMut(Vec<K>) -> Fut,
        Fut: Future<Output = Result<Vec<V>, E>>,
    {
        let env = self.env;
        let keys: Vec<K> = chunk.iter().map(|claimed| claimed.key.clone()).collect();
        let mut leases = Leases {
            level: self.tier,
            held: chunk
                .iter()
                .zip(leases)
                .enumerate()
                .filter_map(|(at, (claimed, lease))| {
                    let (lease, failures) = lease?;
                    Some((at, claimed.key.clone(), lease, failures))
                })
                .collect(),
        };
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
                let from = leases.publish(&values);
                // R6: age counts from when the creation finished.
                let now = env.now();
                let mut made = Vec::with_capacity(values.len());
                for ((claimed, value), from) in chunk.into_iter().zip(values).zip(from) {
                    if claimed.held.is_some() || claimed.unclaimed.is_some() {
                        claimed.publish(&value, now, from);
                        trace::created(&env.name, &started, claimed.stale.is_some());
                    }
                    made.push((claimed.index, value));
                    claimed.finish(false);
                }
                Ok(made)
            }
            Err(error) => {
                drop(leases); // F8: every lease at once
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
                // R5: a failed creation whose keys all have a value within
                // `stale_if_error` serves those values.
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
}

/// The refresh of a `Background` batch's stale keys, ready to run elsewhere (R10): it
/// owns their claims (released when it ends, or when it is dropped unrun), and takes
/// the tier's steps for them when the cache has a fleet tier.
// Not an `async fn`: the `Send + 'static` bounds are checked here, once.
#[allow(clippy::manual_async_fn)]
pub(crate) fn refresh_task<K, V, E, F>(
    env: Env,
    tier: Option<TierLevel<K, V>>,
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
        let creating = Creating {
            env: &env,
            tier: tier.as_ref(),
            max_batch,
            blocking: true,
        };
        // Its outcome is traced where each creator call ends, in `create_chunk`.
        let _ = creating.create_claimed(claimed, &mut run).await;
    }
}
