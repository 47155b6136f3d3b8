//! A [`ManualClock`] that a test scopes to itself (feature `test-clock`).
//!
//! While a [`ClockScope`] lives on a thread, every cache, [`Dogpile`](crate::Dogpile)
//! and memoized fn that was given no clock of its own reads that clock instead of the
//! system's, on that thread only. Each test of a parallel test run has its own thread,
//! so each test's time moves only when that test advances it. A future bound with
//! [`ManualClock::bind`] reads the clock in every poll, whichever thread polls it; a
//! background refresh reads the clock of the caller that handed it off.
//!
//! The feature is meant for `[dev-dependencies]`: with cargo's resolver 2 it is then on
//! in test builds only. Without it none of this exists and the default clock is the
//! system's, read as before.

use std::future::Future;
use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::clock::{replace_scoped_clock, scoped_clock, ManualClock};

impl ManualClock {
    /// A new manual clock (at one hour, as [`ManualClock::new`]) that every cache
    /// without a clock of its own reads on this thread until the returned guard is
    /// dropped. Feature `test-clock`.
    ///
    /// The guard derefs to the clock: `clock.advance(..)`, and `clock.clone()` for a
    /// thread the test spawns (which enters it with [`enter`](ManualClock::enter)) or a
    /// future it runs elsewhere ([`bind`](ManualClock::bind)).
    ///
    /// ```
    /// use dogpile::{Cache, ManualClock};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::scoped();
    /// let cache: Cache<u32, &str> = Cache::new(Duration::from_secs(60)); // no clock given
    /// cache.get_with(1, || "first");
    /// clock.advance(Duration::from_secs(59));
    /// assert_eq!(cache.get_with(1, || "second"), "first"); // fresh on this clock
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(cache.get_with(1, || "second"), "second"); // stale: refreshed
    /// ```
    pub fn scoped() -> ClockScope {
        ManualClock::new().enter()
    }

    /// Makes this clock the one that caches without a clock of their own read on this
    /// thread, until the returned guard is dropped (the clock in force before it, if
    /// any, comes back). Feature `test-clock`.
    ///
    /// ```
    /// use dogpile::{Cache, ManualClock};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::scoped();
    /// let cache: Cache<u32, u32> = Cache::new(Duration::from_secs(60));
    /// std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         let _same_time = clock.enter(); // this thread reads the test's clock too
    ///         cache.get_with(1, || 10);
    ///     });
    /// });
    /// clock.advance(Duration::from_secs(59));
    /// assert_eq!(cache.get_with(1, || 20), 10); // created 59 s ago on this clock
    /// ```
    pub fn enter(&self) -> ClockScope {
        let previous = replace_scoped_clock(Some(self.clone()));
        ClockScope {
            clock: self.clone(),
            previous,
            not_send: PhantomData,
        }
    }

    /// `future`, reading this clock in every poll wherever it is polled (a task on a
    /// multi-thread runtime moves between threads). Feature `test-clock`.
    ///
    /// ```
    /// use dogpile::{Cache, ManualClock};
    /// use std::time::Duration;
    ///
    /// # let runtime = tokio::runtime::Builder::new_multi_thread().enable_time().build().unwrap();
    /// # runtime.block_on(async {
    /// let clock = ManualClock::new();
    /// let cache: &'static Cache<u32, u32> =
    ///     Box::leak(Box::new(Cache::new(Duration::from_secs(60))));
    /// let task = tokio::spawn(clock.bind(async move {
    ///     cache.get_with_async(1, async { 10 }).await
    /// }));
    /// assert_eq!(task.await.unwrap(), 10);
    /// clock.advance(Duration::from_secs(60));
    /// let refreshed = tokio::spawn(clock.bind(async move {
    ///     cache.get_with_async(1, async { 20 }).await
    /// }));
    /// assert_eq!(refreshed.await.unwrap(), 20); // stale on this clock
    /// # });
    /// ```
    pub fn bind<F: Future>(&self, future: F) -> WithClock<F> {
        WithClock {
            clock: Some(self.clone()),
            future,
        }
    }
}

/// A [`ManualClock`] in force on this thread until dropped: see
/// [`ManualClock::scoped`]. Derefs to the clock.
///
/// It stays on the thread that made it (it is not `Send`); other threads may borrow it
/// to [`enter`](ManualClock::enter) its clock. Drop scopes in the reverse order of their
/// making, as guards of nested blocks are.
#[must_use = "the clock is in force only while this guard lives"]
pub struct ClockScope {
    clock: ManualClock,
    previous: Option<ManualClock>,
    /// A thread's scope: restoring it on another thread would be wrong (not `Send`).
    /// Sharing `&ClockScope` is fine: it gives only the clock (`Sync`).
    not_send: PhantomData<std::sync::MutexGuard<'static, ()>>,
}

impl Deref for ClockScope {
    type Target = ManualClock;

    fn deref(&self) -> &ManualClock {
        &self.clock
    }
}

impl Drop for ClockScope {
    fn drop(&mut self) {
        replace_scoped_clock(self.previous.take());
    }
}

impl std::fmt::Debug for ClockScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ClockScope").field(&self.clock).finish()
    }
}

pin_project_lite::pin_project! {
    /// A future that reads a [`ManualClock`] in every poll: see [`ManualClock::bind`].
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct WithClock<F> {
        clock: Option<ManualClock>,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for WithClock<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let previous = replace_scoped_clock(this.clock.clone());
        // Restored even if the poll panics.
        let _restore = Restore(previous);
        this.future.poll(cx)
    }
}

/// Puts back the clock a poll replaced.
struct Restore(Option<ManualClock>);

impl Drop for Restore {
    fn drop(&mut self) {
        replace_scoped_clock(self.0.take());
    }
}

/// `refresh`, reading the clock of the scope live where it was made (the caller that
/// hands a refresh to the background), wherever it runs.
pub(crate) fn carry<F: Future>(refresh: F) -> WithClock<F> {
    WithClock {
        clock: scoped_clock(),
        future: refresh,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{scoped_now, Clock};
    use std::task::Waker;
    use std::time::Duration;

    /// The output of a future that is ready at its first poll.
    fn poll_once<F: Future>(future: F) -> F::Output {
        let future = std::pin::pin!(future);
        match future.poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(output) => output,
            Poll::Pending => panic!("not ready at once"),
        }
    }

    #[test]
    fn a_scope_is_this_threads_until_dropped() {
        assert_eq!(scoped_now(), None);
        let clock = ManualClock::scoped();
        clock.advance(Duration::from_secs(5));
        assert_eq!(scoped_now(), Some(clock.now()));
        std::thread::scope(|s| {
            s.spawn(|| assert_eq!(scoped_now(), None, "another thread has no scope"));
        });
        drop(clock);
        assert_eq!(scoped_now(), None);
    }

    #[test]
    fn nested_scopes_restore_the_outer_clock() {
        let outer = ManualClock::scoped();
        {
            let inner = ManualClock::scoped();
            inner.advance(Duration::from_secs(7));
            assert_eq!(scoped_now(), Some(inner.now()));
        }
        assert_eq!(scoped_now(), Some(outer.now()));
    }

    #[test]
    fn a_bound_future_reads_its_clock_only_while_polled() {
        let clock = ManualClock::new();
        clock.advance(Duration::from_secs(3));
        let seen = poll_once(clock.bind(async { scoped_now() }));
        assert_eq!(seen, Some(clock.now()));
        assert_eq!(scoped_now(), None);
    }

    #[test]
    fn a_carried_refresh_reads_the_clock_of_its_maker() {
        let clock = ManualClock::scoped();
        let refresh = carry(async { scoped_now() });
        let elsewhere = std::thread::scope(|s| s.spawn(|| poll_once(refresh)).join().unwrap());
        assert_eq!(elsewhere, Some(clock.now()));
    }
}
