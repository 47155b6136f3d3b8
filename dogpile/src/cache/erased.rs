//! The blocking calls' slow path with the value type erased: the per-key loop and the
//! slot driver run on an [`AnyValue`] and a `dyn` [`KeySlot`], so that they are built
//! once per error type, not once more for every value type. A key of a cache is a
//! [`Bound`] key of its `dyn` [`Table`], built once per key type; what stays typed is
//! the table's few routines (`table.rs`), the hit path, and the fleet tier's steps when
//! a cache has a tier (`any.rs`).

use super::any::{AnyError, AnyValue, ErasedCreation};
use super::call::{call_loop, Keyed};
use super::lookup::KeyForm;
use super::table::Table;
use crate::executor::run_blocking;
use crate::slot::{
    Control, Creator, Env, How, Made, MadeHere, Now, Provenance, Served, Stamped, Store,
};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// One key of a cache, as the erased slow path reaches it: its control, and its value
/// loaded and published as an [`AnyValue`].
pub(crate) trait KeySlot {
    fn env(&self) -> &Env;
    /// See `Slots::control_of`.
    fn control(&self) -> Option<Arc<Control>>;
    /// See `Slots::forget_if_empty`.
    fn forget_if_empty(&self);
    fn load(&self, control: &Arc<Control>) -> Option<Stamped<AnyValue>>;
    fn publish(&self, control: &Arc<Control>, value: AnyValue, created: u64, from: Provenance);
    fn release(&self, control: &Arc<Control>);
}

/// A key of a cache: its [`KeySlot`], built once per key type.
struct Bound<'a, K> {
    table: &'a dyn Table<K>,
    key: &'a dyn KeyForm<K>,
}

impl<K> KeySlot for Bound<'_, K> {
    fn env(&self) -> &Env {
        self.table.env()
    }

    fn control(&self) -> Option<Arc<Control>> {
        self.table.control_for(self.key)
    }

    fn forget_if_empty(&self) {
        self.table.forget_if_empty(self.key);
    }

    fn load(&self, control: &Arc<Control>) -> Option<Stamped<AnyValue>> {
        self.table.load_owned(self.key, control)
    }

    fn publish(&self, control: &Arc<Control>, value: AnyValue, created: u64, from: Provenance) {
        self.table.publish(self.key, control, value, created, from);
    }

    fn release(&self, control: &Arc<Control>) {
        self.table.release_control(self.key, control);
    }
}

/// One key's value as the erased driver sees it.
pub(crate) struct ErasedStore<'a> {
    slot: &'a dyn KeySlot,
    control: Arc<Control>,
}

impl Store for ErasedStore<'_> {
    type Value = AnyValue;

    fn load(&self) -> Option<Stamped<AnyValue>> {
        self.slot.load(&self.control)
    }

    fn publish(&self, value: AnyValue, created: u64, from: Provenance) {
        self.slot.publish(&self.control, value, created, from);
    }

    fn release(self) {
        self.slot.release(&self.control);
    }
}

impl<'a> Keyed for &'a dyn KeySlot {
    type Store = ErasedStore<'a>;

    fn env(&self) -> &Env {
        KeySlot::env(*self)
    }

    fn control(&self) -> Option<Arc<Control>> {
        KeySlot::control(*self)
    }

    fn store(&self, control: Arc<Control>) -> ErasedStore<'a> {
        ErasedStore {
            slot: *self,
            control,
        }
    }

    fn forget_if_empty(&self) {
        KeySlot::forget_if_empty(*self);
    }
}

/// The creator of an erased call: the caller's, run in the call, or behind the fleet
/// tier's steps.
pub(super) enum Erased<'a, E> {
    Now(&'a mut dyn FnMut() -> Result<AnyValue, E>),
    Tier(ErasedCreation<'a, E>),
}

impl<'a, 's, E: Clone + Send + 'static> Creator<ErasedStore<'s>> for Erased<'a, E> {
    type Error = E;
    type Creation = Creation<'a, E>;

    fn start(self) -> Creation<'a, E> {
        match self {
            Erased::Now(create) => Creation::Now(MadeHere::new(Now::new(create))),
            Erased::Tier(creation) => Creation::Tier(creation),
        }
    }
}

/// The creation of an [`Erased`] creator.
pub(super) enum Creation<'a, E> {
    Now(MadeHere<Now<&'a mut dyn FnMut() -> Result<AnyValue, E>>>),
    Tier(ErasedCreation<'a, E>),
}

impl<E> Future for Creation<'_, E> {
    type Output = Result<Made<AnyValue>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Creation::Now(create) => Pin::new(create).poll(cx),
            Creation::Tier(creation) => creation.as_mut().poll(cx),
        }
    }
}

/// The per-key loop of a blocking call with its value type erased: [`run`], built once
/// per error type, or [`run_infallible`].
pub(super) type Run<E> = fn(&dyn KeySlot, Erased<'_, E>, How) -> Result<Served<AnyValue>, E>;

/// The per-key loop of a blocking call, built once per error type (see the module docs).
pub(super) fn run<E: Clone + Send + 'static>(
    slot: &dyn KeySlot,
    creator: Erased<'_, E>,
    how: How,
) -> Result<Served<AnyValue>, E> {
    run_blocking(call_loop(&slot, creator, how))
}

/// [`run`] for the creators that cannot fail (`get_with`): not generic, so built once,
/// in this crate, rather than in each crate that calls it.
pub(super) fn run_infallible(
    slot: &dyn KeySlot,
    creator: Erased<'_, Infallible>,
    how: How,
) -> Result<Served<AnyValue>, Infallible> {
    run(slot, creator, how)
}

/// A blocking call's slow path, for the `Inline` and `SyncReaders` modes: the per-key
/// loop and the slot driver run erased; only the creator's wrapping and, with a fleet
/// tier, the tier's steps are built for `V`. Never inlined: the hit path that calls it
/// stays small, and its body is built once per key, value and creator, not again in
/// every caller. Its creator runs at most once (the caller's wrapping panics on a
/// second call).
#[inline(never)]
pub(super) fn call_blocking<K, V, E>(
    table: &dyn Table<K>,
    key: &dyn KeyForm<K>,
    create: &mut dyn FnMut() -> Result<V, E>,
    how: How,
    run: Run<E>,
) -> Result<Served<V>, E>
where
    V: Clone + Send + Sync + 'static,
    E: Clone + Send + 'static,
{
    let mut create = || create().map(AnyValue::new);
    let served = call_erased(table, key, &mut create, how, run)?;
    Ok(Served {
        value: served.value.take(),
        read: served.read,
    })
}

/// [`call_blocking`] once its value is erased: built once per key and error types.
fn call_erased<K, E: Clone + Send + 'static>(
    table: &dyn Table<K>,
    key: &dyn KeyForm<K>,
    create: &mut dyn FnMut() -> Result<AnyValue, E>,
    how: How,
    run: Run<E>,
) -> Result<Served<AnyValue>, E> {
    let mut tiered = None;
    let creator = match table.tier_steps() {
        None => Erased::Now(create),
        Some(steps) => {
            let create = tiered.insert(move || create().map_err(AnyError::new));
            let creation = steps.creation(key.to_key(), create);
            Erased::Tier(Box::pin(async move {
                creation.await.map_err(AnyError::take::<E>)
            }))
        }
    };
    run(&Bound { table, key }, creator, how)
}
