//! A cache's values and errors behind `dyn`, as the blocking calls' erased slow path
//! carries them (see `erased.rs`), and a blocking creator behind the fleet tier's steps
//! with its value and error so erased.

use crate::slot::{Creator, InCall, Made, Now, Provenance, Stamped, Store};
use crate::tier::{RunElsewhere, TierCreator, TierLevel};
use std::any::Any;
use std::convert::Infallible;
use std::future::Future;
use std::hash::Hash;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

/// A value of the cache's type, behind `dyn`, shared: a clone (the driver publishes a
/// clone of what it returns) counts a reference instead of allocating. The value comes
/// back out by its own type's `Clone`, never moved out of the `Arc`: moving it out is
/// code built once more for each value type (the unwrap, the `Arc`'s drop and its weak
/// count's), which the slow path does not need to save a clone.
#[derive(Clone)]
pub(crate) struct AnyValue(Arc<dyn Any + Send + Sync>);

impl AnyValue {
    pub(crate) fn new<V: Clone + Send + Sync + 'static>(value: V) -> Self {
        AnyValue(Arc::new(value))
    }

    /// The value, borrowed as the type it was made of.
    pub(crate) fn typed<V: 'static>(&self) -> &V {
        match self.0.downcast_ref::<V>() {
            Some(value) => value,
            None => panic!("dogpile: internal error: a value of another type in a cache"),
        }
    }

    /// The value, as the type it was made of.
    pub(crate) fn take<V: Clone + Send + Sync + 'static>(self) -> V {
        self.typed::<V>().clone()
    }
}

/// An error of the caller's type, behind `dyn`, as the tier's steps carry it.
pub(crate) struct AnyError(Box<dyn ErrorValue>);

/// What the tier's steps need of an error: a clone, and the error back.
trait ErrorValue: Send {
    fn clone_error(&self) -> Box<dyn ErrorValue>;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<E: Clone + Send + 'static> ErrorValue for E {
    fn clone_error(&self) -> Box<dyn ErrorValue> {
        Box::new(self.clone())
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

impl Clone for AnyError {
    fn clone(&self) -> Self {
        AnyError((*self.0).clone_error())
    }
}

impl AnyError {
    pub(crate) fn new<E: Clone + Send + 'static>(error: E) -> Self {
        AnyError(Box::new(error))
    }

    /// The error, as the type it was made of.
    pub(crate) fn take<E: 'static>(self) -> E {
        match self.0.into_any().downcast::<E>() {
            Ok(error) => *error,
            Err(_) => panic!("dogpile: internal error: an error of another type in a creation"),
        }
    }
}

/// A creation whose value (and, behind the tier, error) is erased.
pub(crate) type ErasedCreation<'a, E> =
    Pin<Box<dyn Future<Output = Result<Made<AnyValue>, E>> + 'a>>;

/// A blocking creator behind the fleet tier's steps (F1–F8): the tier's creator wraps
/// it typed, and its value comes out erased. A cache reaches it only through its bound
/// tier (`BoundTier::steps`), so that a cache without a tier builds none of it; its
/// error is erased too, so that it is built once per key and value types.
pub(crate) trait TierSteps<K> {
    fn creation<'a>(
        &'a self,
        key: K,
        create: &'a mut dyn FnMut() -> Result<AnyValue, AnyError>,
    ) -> ErasedCreation<'a, AnyError>;
}

impl<K, V> TierSteps<K> for TierLevel<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn creation<'a>(
        &'a self,
        key: K,
        create: &'a mut dyn FnMut() -> Result<AnyValue, AnyError>,
    ) -> ErasedCreation<'a, AnyError> {
        let typed = InCall(Now::new(move || create().map(AnyValue::take::<V>)));
        // A blocking inline creator never detaches, so nothing runs elsewhere.
        let run_elsewhere: RunElsewhere<'a, V, AnyError> = Box::new(|_, _| {
            unreachable!("dogpile: internal error: a creator without DETACHES detached")
        });
        let creator = self.creator(key, typed, true, run_elsewhere);
        let creation = <TierCreator<'a, V, AnyError, _> as Creator<Unstored<V>>>::start(creator);
        Box::pin(async move {
            let Made { value, from } = creation.await?;
            Ok(Made {
                value: AnyValue::new(value),
                from,
            })
        })
    }
}

/// The store a tier's creator is written for, never built: its creation reads and
/// writes no store (the erased driver publishes what it made).
struct Unstored<V>(Infallible, PhantomData<V>);

impl<V: Clone> Store for Unstored<V> {
    type Value = V;

    fn load(&self) -> Option<Stamped<V>> {
        match self.0 {}
    }

    fn publish(&self, _: V, _: u64, _: Provenance) {
        match self.0 {}
    }
}
