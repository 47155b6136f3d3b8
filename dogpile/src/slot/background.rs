//! The creators of a `Background` cache's calls: a stale key's refresh is handed to the
//! refresh executor, or spawned on the caller's tokio runtime (R10).

use super::creator::{Creator, Detached, MadeHere, Now};
use super::drive::refresh_task;
use super::{Env, SlotClaim, Store};
use crate::executor::{Executor, RefreshTask, Runner};
#[cfg(all(feature = "tokio", not(loom)))]
use std::future::Future;

/// The creator of a blocking call on a `Background` cache: runs inline for a cold key,
/// and hands a stale key's refresh to the executor (R10).
pub(crate) struct Pooled<'a, F> {
    create: F,
    executor: &'a Executor,
}

impl<'a, F> Pooled<'a, F> {
    pub(crate) fn new(create: F, executor: &'a Executor) -> Self {
        Pooled { create, executor }
    }
}

impl<S, F, E> Creator<S> for Pooled<'_, F>
where
    S: Store + Clone + Send + Sync + 'static,
    S::Value: Send + Sync,
    F: FnOnce() -> Result<S::Value, E> + Send + 'static,
    E: Clone + Send + 'static,
{
    type Error = E;
    type Creation = MadeHere<Now<F>>;

    fn start(self) -> Self::Creation {
        MadeHere::new(Now::new(self.create))
    }

    fn hand_off(self, claim: SlotClaim, store: &S, env: &Env) -> Result<(), (Self, SlotClaim)> {
        let create = MadeHere::new(Now::new(self.create));
        let refresh = refresh_task(claim, store.clone(), env.clone(), create);
        self.executor.submit(RefreshTask::new(refresh));
        Ok(())
    }

    fn detach(self) -> Result<Detached<S::Value, E>, Self> {
        let runner = Runner::Executor(self.executor.clone());
        Ok((Box::pin(MadeHere::new(Now::new(self.create))), runner))
    }

    const DETACHES: bool = true;
}

/// The creator of an async call on a `Background` cache inside a tokio runtime: a stale
/// key's refresh is spawned on that runtime (R10).
#[cfg(all(feature = "tokio", not(loom)))]
pub(crate) struct Spawned<F> {
    create: F,
    runtime: tokio::runtime::Handle,
}

#[cfg(all(feature = "tokio", not(loom)))]
impl<F> Spawned<F> {
    pub(crate) fn new(create: F, runtime: tokio::runtime::Handle) -> Self {
        Spawned { create, runtime }
    }
}

#[cfg(all(feature = "tokio", not(loom)))]
impl<S, F, E> Creator<S> for Spawned<F>
where
    S: Store + Clone + Send + Sync + 'static,
    S::Value: Send + Sync,
    F: Future<Output = Result<S::Value, E>> + Send + 'static,
    E: Clone + Send + 'static,
{
    type Error = E;
    type Creation = MadeHere<F>;

    fn start(self) -> Self::Creation {
        MadeHere::new(self.create)
    }

    fn hand_off(self, claim: SlotClaim, store: &S, env: &Env) -> Result<(), (Self, SlotClaim)> {
        // The claim moves into the task: dropping the task (runtime shut down)
        // releases it.
        let refresh = refresh_task(
            claim,
            store.clone(),
            env.clone(),
            MadeHere::new(self.create),
        );
        drop(self.runtime.spawn(refresh));
        Ok(())
    }

    fn detach(self) -> Result<Detached<S::Value, E>, Self> {
        Ok((
            Box::pin(MadeHere::new(self.create)),
            Runner::Tokio(self.runtime),
        ))
    }

    const DETACHES: bool = true;
}
