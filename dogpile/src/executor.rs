//! Where background refreshes (R10) run: a small pool shared by the whole process, or
//! the executor the user hands in with
//! [`CacheBuilder::refresh_executor`](crate::CacheBuilder::refresh_executor).
//!
//! The pool has as many threads as [`std::thread::available_parallelism`], started on
//! first use, and a queue of at most [`QUEUE_CAPACITY`] refreshes. When the queue is
//! full, a new refresh is dropped: its claim is released at once, the key keeps serving
//! its stale value, and the next caller that finds it stale claims and submits it again.
//! So a burst of stale keys never starts more threads and never makes a caller wait.

use crate::slot::{refresh_task, Claim, Creator, Env, Now, Store};
use crate::sync::{Condvar, Mutex};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

/// The most refreshes waiting in the process-wide pool's queue; see the module docs.
pub(crate) const QUEUE_CAPACITY: usize = 4096;

/// One background refresh (R10), handed to a
/// [`refresh_executor`](crate::CacheBuilder::refresh_executor). Call
/// [`run`](RefreshTask::run) on any thread; it runs the creator, publishes its value and
/// releases the key's claim. Dropping it unrun releases the claim too: the key stays
/// stale and the next caller retries the refresh.
///
/// # Example
///
/// ```
/// use dogpile::{Cache, RefreshTask};
/// use std::time::Duration;
///
/// let cache: dogpile::Cache<u8, u8, dogpile::mode::Background> = Cache::builder()
///     .ttl(Duration::from_secs(60))
///     .background_refresh()
///     .refresh_executor(|task: RefreshTask| {
///         std::thread::spawn(move || task.run());
///     })
///     .build();
/// assert_eq!(cache.get_with(1, || 1), 1);
/// ```
#[must_use = "a refresh does nothing until `.run()`; dropping it gives the refresh up"]
pub struct RefreshTask {
    refresh: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl RefreshTask {
    pub(crate) fn new(refresh: impl Future<Output = ()> + Send + 'static) -> Self {
        RefreshTask {
            refresh: Box::pin(refresh),
        }
    }

    /// Runs the refresh on this thread until it has published (or failed). A panicking
    /// creator's panic propagates from here, after the claim is released.
    ///
    /// ```
    /// use dogpile::{Cache, RefreshTask};
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    ///
    /// let queued: Arc<Mutex<Vec<RefreshTask>>> = Arc::default();
    /// let sink = queued.clone();
    /// let clock = dogpile::ManualClock::new();
    /// let cache: Cache<u8, u8, dogpile::mode::Background> = Cache::builder()
    ///     .ttl(Duration::from_secs(1))
    ///     .clock(clock.clone())
    ///     .background_refresh()
    ///     .refresh_executor(move |task| sink.lock().unwrap().push(task))
    ///     .build();
    /// cache.get_with(1, || 1);
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(cache.get_with(1, || 2), 1); // stale, refresh handed off
    /// let task = queued.lock().unwrap().pop().unwrap();
    /// task.run();
    /// assert_eq!(cache.get(&1), Some(2));
    /// ```
    pub fn run(self) {
        crate::slot::run_blocking(self.refresh);
    }
}

impl fmt::Debug for RefreshTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshTask")
    }
}

/// Where a `Background` cache runs its refreshes.
#[derive(Clone)]
pub(crate) enum Executor {
    /// The process-wide pool.
    Pool,
    /// The user's own: `rayon::spawn`, tokio's `spawn_blocking`, ...
    Custom(Arc<dyn Fn(RefreshTask) + Send + Sync>),
}

impl Executor {
    pub(crate) fn submit(&self, task: RefreshTask) {
        match self {
            Executor::Pool => pool().submit(task),
            Executor::Custom(submit) => submit(task),
        }
    }
}

impl fmt::Debug for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Executor::Pool => "Pool",
            Executor::Custom(_) => "Custom",
        })
    }
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        size: std::thread::available_parallelism().map_or(1, |n| n.get()),
        state: Mutex::new(PoolState::default()),
        ready: Condvar::new(),
    })
}

struct Pool {
    size: usize,
    state: Mutex<PoolState>,
    ready: Condvar,
}

#[derive(Default)]
struct PoolState {
    queue: VecDeque<RefreshTask>,
    workers: usize,
    idle: usize,
}

impl Pool {
    fn submit(&'static self, task: RefreshTask) {
        let mut state = self.state.lock();
        if state.queue.len() >= QUEUE_CAPACITY {
            // Full: give this refresh up (see the module docs). Dropped after the lock.
            drop(state);
            drop(task);
            return;
        }
        state.queue.push_back(task);
        if state.idle == 0 && state.workers < self.size {
            state.workers += 1;
            let spawned = std::thread::Builder::new()
                .name("dogpile-refresh".into())
                .spawn(move || self.work());
            if spawned.is_err() {
                state.workers -= 1;
                if state.workers == 0 {
                    // No thread will ever take them: give the queued refreshes up.
                    let dropped = std::mem::take(&mut state.queue);
                    drop(state);
                    drop(dropped);
                    return;
                }
            }
        }
        drop(state);
        self.ready.notify_one();
    }

    fn work(&self) {
        loop {
            let mut state = self.state.lock();
            let task = loop {
                if let Some(task) = state.queue.pop_front() {
                    break task;
                }
                state.idle += 1;
                state = self.ready.wait(state);
                state.idle -= 1;
            };
            drop(state);
            // A panicking creator has released its claim while unwinding; the worker
            // lives on for the next refresh.
            let _ = catch_unwind(AssertUnwindSafe(|| task.run()));
        }
    }
}

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
    type Creation = Now<F>;

    fn start(self) -> Now<F> {
        Now::new(self.create)
    }

    fn hand_off(self, claim: Claim, store: &S, env: &Env) -> Result<(), (Self, Claim)> {
        let refresh = refresh_task(claim, store.clone(), env.clone(), Now::new(self.create));
        self.executor.submit(RefreshTask::new(refresh));
        Ok(())
    }
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
    type Creation = F;

    fn start(self) -> F {
        self.create
    }

    fn hand_off(self, claim: Claim, store: &S, env: &Env) -> Result<(), (Self, Claim)> {
        // The claim moves into the task: dropping the task (runtime shut down)
        // releases it.
        let refresh = refresh_task(claim, store.clone(), env.clone(), self.create);
        drop(self.runtime.spawn(refresh));
        Ok(())
    }
}
