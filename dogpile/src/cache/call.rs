//! The one per-key loop every get-like call goes through ([`call`]), and what it runs
//! on: a cache as `dyn` [`Slots`], and one key's value as a slot [`Store`].

use super::lookup::{KeyForm, Owned};
use crate::executor::run_blocking;
use crate::slot::{
    self, take_creator, Control, Creator, Env, How, Provenance, Served, SlotClaim, Stamped, Step,
    Store, Waiting,
};
use crate::stats::Counters;
use crate::tier::{Moved, RunElsewhere, TierCreator, TierLevel};
use std::hash::Hash;
use std::ops::Deref;
use std::sync::Arc;

/// The store of one key, as every call of a cache builds it.
type KeyStore<L, K, V> = EntryStore<SlotsHandle<K, V>, L>;

/// The one per-key loop every get-like call goes through: find or insert the key's
/// entry, build its store, run the slot driver, and start over if the slot was retired
/// meanwhile (removed or evicted between our look-up and our claim).
///
/// The full-map policy lives here too: with no room for the key (at capacity, every
/// entry being created), the caller computes its value without storing it, and the
/// call counts as a miss.
///
/// It runs on the cache as [`Slots`], whatever its entry type: this loop, the slot
/// driver and the creators are built once per key and value types, not once per entry
/// type.
pub(super) async fn call<K, V, L: KeyForm<K> + Clone, C>(
    this: SlotsHandle<K, V>,
    key: L,
    creator: C,
    how: How,
) -> Result<Served<V>, C::Error>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    C: Creator<KeyStore<L, K, V>>,
{
    let creator = match this.tier() {
        // The fleet tier runs in place of the creator, once this call holds the
        // key's local claim: the first level of the two-level claim (F3).
        Some(level) => {
            let blocking = how.waiting == Waiting::Block;
            // The tier names keys as stored: owned.
            let owned = key.to_key();
            // Built only for creators that can detach (background caches): the others
            // never hand a refresh off, and the build leaves this path out (a constant
            // condition).
            let run_elsewhere: RunElsewhere<'_, V, C::Error> = if C::DETACHES {
                let (inner, refresh_key) = (this.clone(), Owned(owned.clone()));
                Box::new(move |claim: SlotClaim, moved: Moved<V, C::Error>| {
                    let env = inner.env().clone();
                    let store = EntryStore {
                        control: claim.control().clone(),
                        inner,
                        key: refresh_key,
                    };
                    moved.run(claim, store, env);
                })
            } else {
                Box::new(|_, _| {
                    unreachable!("dogpile: internal error: a creator without DETACHES detached")
                })
            };
            level.creator(owned, creator, blocking, run_elsewhere)
        }
        // One creator type either way: the loop and the slot are built once.
        None => TierCreator::plain(creator),
    };
    call_loop(&TypedKey { this: &this, key }, creator, how).await
}

/// A key of a cache as the per-key loop reaches it: its control (found or admitted),
/// and its value as a slot [`Store`].
pub(super) trait Keyed {
    type Store: Store;

    fn env(&self) -> &Env;

    /// See `Slots::control_of`.
    fn control(&self) -> Option<Arc<Control>>;

    /// The key's value, while its entry belongs to `control`'s slot.
    fn store(&self, control: Arc<Control>) -> Self::Store;

    /// See `Slots::forget_if_empty`.
    fn forget_if_empty(&self);
}

/// A key of a cache, typed: the key as its caller gave it.
struct TypedKey<'a, K, V, L> {
    this: &'a SlotsHandle<K, V>,
    key: L,
}

impl<K, V, L: KeyForm<K> + Clone> Keyed for TypedKey<'_, K, V, L>
where
    V: Clone,
{
    type Store = KeyStore<L, K, V>;

    fn env(&self) -> &Env {
        self.this.env()
    }

    fn control(&self) -> Option<Arc<Control>> {
        self.this.control_of(&self.key)
    }

    fn store(&self, control: Arc<Control>) -> KeyStore<L, K, V> {
        EntryStore {
            inner: SlotsHandle(self.this.0.clone()),
            key: self.key.clone(),
            control,
        }
    }

    fn forget_if_empty(&self) {
        self.this.forget_if_empty(&self.key);
    }
}

/// The loop itself, typed or with the value type erased (see `erased.rs`).
pub(super) async fn call_loop<Kd, C>(
    keyed: &Kd,
    creator: C,
    how: How,
) -> Result<Served<<Kd::Store as Store>::Value>, C::Error>
where
    Kd: Keyed,
    C: Creator<Kd::Store>,
{
    let mut creator = Some(creator);
    loop {
        let Some(control) = keyed.control() else {
            Counters::bump(&keyed.env().stats.misses);
            let made = take_creator(&mut creator).start().await?;
            return Ok(Served {
                value: made.value,
                read: None,
            });
        };
        let store = keyed.store(control.clone());
        let step = slot::drive(&control, &store, keyed.env(), &mut creator, how).await;
        drop(control);
        store.release();
        match step {
            Step::Done(Err(error)) => {
                keyed.forget_if_empty();
                return Err(error);
            }
            Step::Done(Ok(served)) => return Ok(served),
            Step::Retired => continue,
        }
    }
}

/// [`call`] for the blocking entry points of a `Background` cache: never pending (see
/// [`run_blocking`]).
pub(super) fn call_blocking<K, V, L: KeyForm<K> + Clone, C>(
    this: SlotsHandle<K, V>,
    key: L,
    creator: C,
    how: How,
) -> Result<V, C::Error>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    C: Creator<KeyStore<L, K, V>>,
{
    run_blocking(call(this, key, creator, how)).map(|served| served.value)
}

/// A cache as its slow path holds it. A type with no lifetime of its own: an async
/// caller's future holds it, and a trait object's lifetime there would fail the
/// future's `Send` check.
#[derive(Clone)]
pub(crate) struct SlotsHandle<K, V>(pub(super) Arc<dyn Slots<K, V>>);

impl<K, V> Deref for SlotsHandle<K, V> {
    type Target = dyn Slots<K, V>;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

/// A cache as the slow path sees it: its entries reached by key, their eviction mark
/// (the one thing that differs between a bounded and an unbounded cache's entries)
/// left to the implementation.
pub(crate) trait Slots<K, V>: Send + Sync {
    fn env(&self) -> &Env;

    fn tier(&self) -> Option<&TierLevel<K, V>>;

    /// The most keys one call of a batch's creator is given.
    fn max_batch(&self) -> usize;

    /// See `Inner::control_for`.
    fn control_of(&self, key: &dyn KeyForm<K>) -> Option<Arc<Control>>;

    /// See `Inner::drop_if_empty`.
    fn forget_if_empty(&self, key: &dyn KeyForm<K>);

    /// The key's value while its entry still belongs to `control`'s slot.
    fn load_owned(&self, key: &dyn KeyForm<K>, control: &Arc<Control>) -> Option<Stamped<V>>;

    /// Stores a created value in the key's entry while it belongs to `control`'s slot
    /// (see `Table::publish`).
    fn publish(
        &self,
        key: &dyn KeyForm<K>,
        control: &Arc<Control>,
        value: V,
        created: u64,
        from: Provenance,
    );

    /// Detaches `control` from the key's entry if nobody else holds it.
    fn release_control(&self, key: &dyn KeyForm<K>, control: &Arc<Control>);
}

/// One key's value inside the map, seen by its slot. Reads and writes only touch the
/// entry while it still belongs to this slot's control.
#[derive(Clone)]
pub(crate) struct EntryStore<I, K> {
    pub(super) inner: I,
    pub(super) key: K,
    pub(super) control: Arc<Control>,
}

impl<L, K, V> Store for EntryStore<SlotsHandle<K, V>, L>
where
    // No `'static` here: async callers hold this store across awaits, and a lifetime
    // bound would make their futures fail `Send` for borrowed keys like `&'static str`.
    L: KeyForm<K> + Clone,
    V: Clone,
{
    type Value = V;

    fn load(&self) -> Option<Stamped<V>> {
        self.inner.load_owned(&self.key, &self.control)
    }

    fn publish(&self, value: V, created: u64, from: Provenance) {
        self.inner
            .publish(&self.key, &self.control, value, created, from);
    }

    /// Detaches the control from the entry if nobody else holds it: no claim, no
    /// waiter, no read guard. Callers reach a control only through the map under a
    /// shard lock, so the count is stable under the shard's write lock there.
    fn release(self) {
        self.inner.release_control(&self.key, &self.control);
    }
}
