//! The [`Creator`] seam: how a call's creator runs (in the call, or handed off for a
//! background refresh), and the creators that run in their call.

use super::{Env, Made, SlotClaim, Store};
use crate::executor::Runner;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The one shape of a creator, for every entry point: its creation as a future (a
/// blocking creator is a future that is ready at its first poll, see [`Now`]), and,
/// for background refresh (R10), a way to run a refresh somewhere else.
pub(crate) trait Creator<S: Store>: Sized {
    /// Shared with the callers that waited for a failed creation (R1).
    type Error: Clone + Send + 'static;
    /// The value and where it came from (see [`Made`]), or the creator's error.
    type Creation: Future<Output = Result<Made<S::Value>, Self::Error>>;

    /// The creation, run by the caller that claimed the slot.
    fn start(self) -> Self::Creation;

    /// R10: hands the refresh of a stale value (with its claim) to another thread or
    /// task, so that the claimant returns the stale value too. Gives both back when
    /// this call refreshes inline.
    fn hand_off(self, claim: SlotClaim, store: &S, env: &Env) -> Result<(), (Self, SlotClaim)> {
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
    /// creator never detaches builds neither the hand-off nor the tier's off-call
    /// refresh (a constant condition).
    const DETACHES: bool = false;
}

/// A creation detached from its call by [`Creator::detach`], and where to run it.
pub(crate) type Detached<V, E> = (
    Pin<Box<dyn Future<Output = Result<Made<V>, E>> + Send + 'static>>,
    Runner,
);

/// A creator that runs in its caller's call, blocking or async.
pub(crate) struct InCall<F>(pub(crate) F);

impl<S, F, E> Creator<S> for InCall<F>
where
    S: Store,
    F: Future<Output = Result<S::Value, E>>,
    E: Clone + Send + 'static,
{
    type Error = E;
    type Creation = MadeHere<F>;

    fn start(self) -> MadeHere<F> {
        MadeHere::new(self.0)
    }
}

pin_project_lite::pin_project! {
    /// A creator's own future, its value marked as made here, just now.
    pub(crate) struct MadeHere<F> {
        #[pin]
        create: F,
    }
}

impl<F> MadeHere<F> {
    pub(crate) fn new(create: F) -> Self {
        MadeHere { create }
    }
}

impl<F: Future<Output = Result<V, E>>, V, E> Future for MadeHere<F> {
    type Output = Result<Made<V>, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project()
            .create
            .poll(cx)
            .map(|outcome| outcome.map(Made::here))
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
