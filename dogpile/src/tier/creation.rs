//! A call's creator wrapped in the tier's steps: claim in the tier, then serve, wait,
//! or create under the lease and publish (F1–F8).

use super::level::{KeyedTier, TierLevel, TierSide};
use crate::executor::Runner;
use crate::slot::{refresh_task, Creator, Env, Made, SlotClaim, Store};
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::task::{Context, Poll};

impl<K, V> TierLevel<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Wraps a call's creator: the tier runs first, and the creator only if this caller
    /// holds the lease (or the tier failed, F7). A value taken from the tier comes with
    /// its tier age, for the L1 stamp (F4). `blocking` callers wait by parking, the
    /// others by awaiting. `run_elsewhere` runs a background refresh handed off with its
    /// tier steps (R10).
    pub(crate) fn creator<'a, C, E>(
        &'a self,
        key: K,
        inner: C,
        blocking: bool,
        run_elsewhere: RunElsewhere<'a, V, E>,
    ) -> TierCreator<'a, V, E, C> {
        TierCreator::with_tier(inner, (self.keyed)(self, key), blocking, run_elsewhere)
    }
}

/// A call's creator, behind the fleet tier when the cache has one (see
/// [`TierLevel::creator`](super::TierLevel::creator)). Every call's slot runs this one
/// creator type, tier or not, so that the slot's code is built once per cache and
/// creator rather than twice.
pub(crate) struct TierCreator<'a, V, E, C> {
    inner: C,
    tier: Option<TierSteps<'a, V, E>>,
}

/// What a [`TierCreator`] runs around its creator with a tier.
struct TierSteps<'a, V, E> {
    tier: Box<dyn KeyedTier<V> + 'a>,
    blocking: bool,
    run_elsewhere: RunElsewhere<'a, V, E>,
}

impl<V, E, C> TierCreator<'_, V, E, C> {
    /// The creator alone, for a cache without a tier.
    pub(crate) fn plain(inner: C) -> Self {
        TierCreator { inner, tier: None }
    }
}

impl<'a, V, E, C> TierCreator<'a, V, E, C> {
    /// The creator behind one key's steps in the tier (see [`TierLevel::creator`]).
    ///
    /// [`TierLevel::creator`]: super::TierLevel::creator
    pub(super) fn with_tier(
        inner: C,
        tier: Box<dyn KeyedTier<V> + 'a>,
        blocking: bool,
        run_elsewhere: RunElsewhere<'a, V, E>,
    ) -> Self {
        let steps = TierSteps {
            tier,
            blocking,
            run_elsewhere,
        };
        TierCreator {
            inner,
            tier: Some(steps),
        }
    }
}

/// Runs a background refresh that took its tier steps along (see [`Moved::run`]). Built
/// where the cache's key and value are known to be `'static`, so that the creator's
/// `Creator` impl needs no such bound: async callers keyed by `&'static str` would
/// otherwise fail the `Send` check of their futures.
pub(crate) type RunElsewhere<'a, V, E> = Box<dyn FnOnce(SlotClaim, Moved<V, E>) + Send + 'a>;

/// A background refresh under the tier, moved off the claimant's call (R10 with F1).
pub(crate) struct Moved<V, E> {
    tier: Box<dyn KeyedTier<V>>,
    creation: Pin<Box<dyn Future<Output = Result<Made<V>, E>> + Send>>,
    runner: Runner,
}

impl<V, E> Moved<V, E>
where
    V: Send + Sync + 'static,
    E: Clone + Send + 'static,
{
    /// Runs the refresh on its executor: claim in the tier, create under the lease,
    /// publish to the tier and then to `store`, or release at once on failure (F8).
    pub(crate) fn run<S>(self, claim: SlotClaim, store: S, env: Env)
    where
        S: Store<Value = V> + Send + Sync + 'static,
    {
        let side = TierSide::new(self.runner.blocking());
        let refresh = TierCreation::new(self.tier, side, self.creation);
        self.runner.run(refresh_task(claim, store, env, refresh));
    }
}

impl<'a, V, E, C, S> Creator<S> for TierCreator<'a, V, E, C>
where
    S: Store<Value = V>,
    C: Creator<S, Error = E>,
    E: Clone + Send + 'static,
{
    type Error = E;
    type Creation = Creation<'a, V, C::Creation>;
    const DETACHES: bool = C::DETACHES;

    fn start(self) -> Self::Creation {
        let Some(steps) = self.tier else {
            return Creation::Plain {
                creation: self.inner.start(),
            };
        };
        Creation::Tier {
            creation: TierCreation::new(
                steps.tier,
                TierSide::new(steps.blocking),
                self.inner.start(),
            ),
        }
    }

    /// R10 with F1: a background cache's stale refresh runs on its executor, tier steps
    /// and all: the claim in the tier, the creation under the lease (renewed by the tier
    /// while it runs), the publish, or the release at once on failure (F8). The
    /// claimant returns its stale value without waiting, not even for the tier.
    /// Without a tier, the creator hands itself off.
    fn hand_off(self, claim: SlotClaim, store: &S, env: &Env) -> Result<(), (Self, SlotClaim)> {
        let TierCreator { inner, tier } = self;
        let Some(steps) = tier else {
            return inner
                .hand_off(claim, store, env)
                .map_err(|(inner, claim)| (TierCreator::plain(inner), claim));
        };
        // `run_elsewhere` builds its own store, owned.
        match inner.detach() {
            Ok((creation, runner)) => {
                let TierSteps {
                    tier,
                    run_elsewhere,
                    ..
                } = steps;
                run_elsewhere(
                    claim,
                    Moved {
                        tier: tier.detached(),
                        creation,
                        runner,
                    },
                );
                Ok(())
            }
            Err(inner) => {
                let creator = TierCreator {
                    inner,
                    tier: Some(steps),
                };
                Err((creator, claim))
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// The creation of a [`TierCreator`]: its creator's own without a tier.
    #[project = CreationProj]
    pub(crate) enum Creation<'a, V, F> {
        Plain { #[pin] creation: F },
        Tier { creation: TierCreation<'a, V, F> },
    }
}

impl<V, F, E> Future for Creation<'_, V, F>
where
    F: Future<Output = Result<Made<V>, E>>,
{
    type Output = Result<Made<V>, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            CreationProj::Plain { creation } => creation.poll(cx),
            CreationProj::Tier { creation } => Pin::new(creation).poll(cx),
        }
    }
}

/// The creation of a [`TierCreator`]: claim in the tier, then serve, wait, or create and
/// publish. The tier's steps are its [`KeyedTier`]'s; this part only starts and polls
/// the creator's future, the one part that depends on the creator's type. Dropped while
/// it holds the lease (a panicking creator, a dropped future), it gives the lease up at
/// once (F8).
pub(crate) struct TierCreation<'a, V, F> {
    tier: Box<dyn KeyedTier<V> + 'a>,
    side: TierSide,
    state: State<F>,
}

enum State<F> {
    Begin { creation: Option<F> },
    Creating { creation: Pin<Box<F>> },
    Done,
}

impl<'a, V, F> TierCreation<'a, V, F> {
    fn new(tier: Box<dyn KeyedTier<V> + 'a>, side: TierSide, creation: F) -> Self {
        TierCreation {
            tier,
            side,
            state: State::Begin {
                creation: Some(creation),
            },
        }
    }
}

// Every field is Unpin (the user's future is boxed once it runs).
impl<V, F> Unpin for TierCreation<'_, V, F> {}

impl<V, F, E> Future for TierCreation<'_, V, F>
where
    F: Future<Output = Result<Made<V>, E>>,
{
    type Output = Result<Made<V>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                State::Begin { creation } => {
                    let Poll::Ready(opened) = this.tier.open(&mut this.side, cx) else {
                        return Poll::Pending;
                    };
                    if let Some(made) = opened {
                        this.state = State::Done;
                        return Poll::Ready(Ok(made));
                    }
                    let creation = creation.take().expect("a creation starts once");
                    this.state = State::Creating {
                        creation: Box::pin(creation),
                    };
                }
                State::Creating { creation } => {
                    let Poll::Ready(outcome) = creation.as_mut().poll(cx) else {
                        return Poll::Pending;
                    };
                    this.state = State::Done;
                    let created = outcome.as_ref().ok().map(|made| &made.value);
                    let from = this.tier.close(&mut this.side, created);
                    return Poll::Ready(outcome.map(|made| Made { from, ..made }));
                }
                State::Done => {
                    panic!("dogpile: internal error: a creation was polled after it finished")
                }
            }
        }
    }
}

impl<V, F> Drop for TierCreation<'_, V, F> {
    fn drop(&mut self) {
        // A panicking creator or a dropped future: give the lease up at once (F8).
        if let Some(lease) = &self.side.lease {
            self.tier.release(lease);
        }
    }
}
