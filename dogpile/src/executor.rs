//! Where background refreshes (R10) run: a small pool shared by the whole process, or
//! the executor the user hands in with
//! [`CacheBuilder::refresh_executor`](crate::CacheBuilder::refresh_executor).
//!
//! The pool has as many threads as [`std::thread::available_parallelism`], started on
//! first use, and a queue of at most [`QUEUE_CAPACITY`] refreshes. When the queue is
//! full, a new refresh is dropped: its claim is released at once, the key keeps serving
//! its stale value, and the next caller that finds it stale claims and submits it again.
//! So a burst of stale keys never starts more threads and never makes a caller wait.

use crate::sync::{Condvar, Mutex};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

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
        run_blocking(self.refresh);
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

fn pool() -> &'static Arc<Pool> {
    static POOL: OnceLock<Arc<Pool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let size = std::thread::available_parallelism().map_or(1, |n| n.get());
        Pool::new(size, QUEUE_CAPACITY)
    })
}

/// A fixed number of worker threads, started as refreshes arrive, over a bounded queue.
pub(crate) struct Pool {
    size: usize,
    capacity: usize,
    state: Mutex<PoolState>,
    ready: Condvar,
}

#[derive(Default)]
struct PoolState {
    queue: VecDeque<RefreshTask>,
    workers: usize,
    idle: usize,
    /// Workers leave once the queue is empty (the loom models end their pools).
    closing: bool,
}

impl Pool {
    pub(crate) fn new(size: usize, capacity: usize) -> Arc<Self> {
        Arc::new(Pool {
            size,
            capacity,
            state: Mutex::new(PoolState::default()),
            ready: Condvar::new(),
        })
    }

    /// Queues a refresh, starting a worker if none is idle and there is room for one;
    /// gives the refresh up if the queue is full (see the module docs).
    pub(crate) fn submit(self: &Arc<Self>, task: RefreshTask) {
        let mut state = self.state.lock();
        if state.queue.len() >= self.capacity {
            drop(state);
            drop(task); // after the lock: dropping releases the key's claim
            return;
        }
        state.queue.push_back(task);
        if state.idle == 0 && state.workers < self.size {
            state.workers += 1;
            let pool = self.clone();
            if crate::sync::spawn("dogpile-refresh", move || pool.work()).is_err() {
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
                if state.closing {
                    state.workers -= 1;
                    return;
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

    /// Lets the workers leave once the queue is empty.
    #[cfg(loom)]
    pub(crate) fn close(&self) {
        self.state.lock().closing = true;
        self.ready.notify_all();
    }

    /// Worker threads started and not yet left.
    #[cfg(loom)]
    pub(crate) fn workers(&self) -> usize {
        self.state.lock().workers
    }
}

/// Where a detached background refresh runs (see `Creator::detach`).
pub(crate) enum Runner {
    /// The cache's refresh executor: the refresh blocks its thread.
    Executor(Executor),
    /// The caller's tokio runtime: the refresh awaits.
    #[cfg(all(feature = "tokio", not(loom)))]
    Tokio(tokio::runtime::Handle),
}

impl Runner {
    /// True when the refresh runs on a thread of its own, where it may block.
    pub(crate) fn blocking(&self) -> bool {
        match self {
            Runner::Executor(_) => true,
            #[cfg(all(feature = "tokio", not(loom)))]
            Runner::Tokio(_) => false,
        }
    }

    pub(crate) fn run(self, refresh: impl Future<Output = ()> + Send + 'static) {
        match self {
            Runner::Executor(executor) => executor.submit(RefreshTask::new(refresh)),
            // Dropping the task (runtime shut down) releases what it owns.
            #[cfg(all(feature = "tokio", not(loom)))]
            Runner::Tokio(runtime) => drop(runtime.spawn(refresh)),
        }
    }
}

/// Runs a future that never waits for a wake-up: a blocking call through the slot's one driver
/// (its waits park the thread inside `poll`, its creator is ready at its first poll). That keeps a
/// single copy of the call's steps for blocking and async callers.
pub(crate) fn run_blocking<F: Future>(call: F) -> F::Output {
    let mut call = std::pin::pin!(call);
    match call.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("dogpile: internal error: a blocking call awaited"),
    }
}
