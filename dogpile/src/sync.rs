//! The few blocking primitives the slot needs, from parking_lot (and event-listener for
//! async waiters) normally and from loom under `--cfg loom`, behind one API so the model
//! checks the shipped code.

#[cfg(not(loom))]
mod imp {
    /// Wakes the async waiters: `listen` registers a listener (a future), `notify` wakes
    /// every listener registered before it.
    pub(crate) use event_listener::Event;
    pub(crate) use parking_lot::MutexGuard;

    /// A mutex that never poisons.
    #[derive(Default)]
    pub(crate) struct Mutex<T>(parking_lot::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(parking_lot::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock()
        }
    }

    #[derive(Default)]
    pub(crate) struct Condvar(parking_lot::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Condvar(parking_lot::Condvar::new())
        }

        /// Blocks (parked, not spinning) until notified; may wake spuriously.
        pub(crate) fn wait<'a, T>(&self, mut guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            self.0.wait(&mut guard);
            guard
        }

        /// [`wait`](Condvar::wait), for at most `timeout`; true if it timed out.
        pub(crate) fn wait_timeout<'a, T>(
            &self,
            mut guard: MutexGuard<'a, T>,
            timeout: std::time::Duration,
        ) -> (MutexGuard<'a, T>, bool) {
            let timed_out = self.0.wait_for(&mut guard, timeout).timed_out();
            (guard, timed_out)
        }

        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }

        pub(crate) fn notify_one(&self) {
            self.0.notify_one();
        }
    }

    /// Starts a named thread.
    pub(crate) fn spawn(name: &str, run: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
        std::thread::Builder::new()
            .name(name.into())
            .spawn(run)
            .map(drop)
    }

    macro_rules! thread_locals {
        ($($tt:tt)*) => { std::thread_local!($($tt)*); };
    }
    pub(crate) use thread_locals;
}

#[cfg(loom)]
mod imp {
    pub(crate) use loom::sync::MutexGuard;
    use std::sync::PoisonError;

    /// A mutex that never poisons: a panicking creator must not lock out the others.
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(PoisonError::into_inner)
        }
    }

    impl<T: Default> Default for Mutex<T> {
        fn default() -> Self {
            Mutex::new(T::default())
        }
    }

    pub(crate) struct Condvar(loom::sync::Condvar);

    impl Default for Condvar {
        fn default() -> Self {
            Condvar::new()
        }
    }

    impl Condvar {
        pub(crate) fn new() -> Self {
            Condvar(loom::sync::Condvar::new())
        }

        pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            self.0.wait(guard).unwrap_or_else(PoisonError::into_inner)
        }

        /// loom never times a wait out: a wake-up the code relies on and misses shows
        /// as a deadlock in the model.
        pub(crate) fn wait_timeout<'a, T>(
            &self,
            guard: MutexGuard<'a, T>,
            timeout: std::time::Duration,
        ) -> (MutexGuard<'a, T>, bool) {
            let (guard, result) = self
                .0
                .wait_timeout(guard, timeout)
                .unwrap_or_else(PoisonError::into_inner);
            (guard, result.timed_out())
        }

        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }

        pub(crate) fn notify_one(&self) {
            self.0.notify_one();
        }
    }

    /// event-listener's `Event` as the slot uses it, on loom's mutex, so that loom sees
    /// every interleaving of a waiter's registration, its re-check and a notify: a
    /// listener completes once a `notify` has run after its `listen`, and a pending one
    /// leaves its waker to be woken by that `notify`.
    pub(crate) struct Event {
        state: Mutex<EventState>,
    }

    #[derive(Default)]
    struct EventState {
        /// `notify` calls so far.
        notified: u64,
        /// Listeners alive.
        listeners: usize,
        /// The wakers of pending listeners.
        wakers: Vec<std::task::Waker>,
    }

    impl Event {
        pub(crate) fn new() -> Self {
            Event {
                state: Mutex::new(EventState::default()),
            }
        }

        pub(crate) fn listen(&self) -> EventListener<'_> {
            let mut state = self.state.lock();
            state.listeners += 1;
            EventListener {
                event: self,
                registered_at: state.notified,
            }
        }

        pub(crate) fn total_listeners(&self) -> usize {
            self.state.lock().listeners
        }

        pub(crate) fn notify(&self, _: usize) {
            let wakers = {
                let mut state = self.state.lock();
                state.notified += 1;
                std::mem::take(&mut state.wakers)
            };
            wakers.into_iter().for_each(std::task::Waker::wake);
        }
    }

    pub(crate) struct EventListener<'a> {
        event: &'a Event,
        registered_at: u64,
    }

    impl std::future::Future for EventListener<'_> {
        type Output = ();

        fn poll(
            self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<()> {
            let mut state = self.event.state.lock();
            if state.notified != self.registered_at {
                return std::task::Poll::Ready(());
            }
            state.wakers.push(cx.waker().clone());
            std::task::Poll::Pending
        }
    }

    impl Drop for EventListener<'_> {
        fn drop(&mut self) {
            self.event.state.lock().listeners -= 1;
        }
    }

    /// Starts a model thread (loom runs every thread to its end).
    pub(crate) fn spawn(_name: &str, run: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
        drop(loom::thread::spawn(run));
        Ok(())
    }

    /// loom's `thread_local!` takes no `const { .. }` initializer: unwrap it.
    macro_rules! thread_locals {
        ($(#[$attr:meta])* static $name:ident: $t:ty = const { $init:expr };) => {
            loom::thread_local!($(#[$attr])* static $name: $t = $init;);
        };
        ($($tt:tt)*) => { loom::thread_local!($($tt)*); };
    }
    pub(crate) use thread_locals;
}

pub(crate) use imp::*;
