//! A sleep that works under any async runtime, for the async waits that have a limit
//! (`wait_at_most`): one thread for the whole process, started on first use, wakes each
//! sleeping task at its deadline. No runtime is assumed, so the async entry points
//! keep working on tokio, async-std, smol or a plain `block_on`.
//!
//! A sleep dropped before its deadline leaves its entry to run out: the task it names is
//! then woken once, spuriously, which every waiter here tolerates (it looks again).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Condvar, Mutex, Once, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// The deadlines of the sleeping tasks, and the timer thread's wake-up.
struct Timers {
    pending: Mutex<Vec<(Instant, Waker)>>,
    changed: Condvar,
}

static TIMERS: Timers = Timers {
    pending: Mutex::new(Vec::new()),
    changed: Condvar::new(),
};

static STARTED: Once = Once::new();

/// A future that completes at `deadline` (at once if it has passed).
pub(crate) fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        registered: None,
    }
}

pub(crate) struct Sleep {
    deadline: Instant,
    /// The waker last handed to the timer thread.
    registered: Option<Waker>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        let known = self
            .registered
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()));
        if !known {
            register(self.deadline, cx.waker().clone());
            self.registered = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

fn register(deadline: Instant, waker: Waker) {
    STARTED.call_once(|| {
        std::thread::Builder::new()
            .name("dogpile-timer".into())
            .spawn(run)
            .expect("dogpile: could not start its timer thread");
    });
    let mut pending = TIMERS
        .pending
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    pending.push((deadline, waker));
    drop(pending);
    TIMERS.changed.notify_one();
}

/// The timer thread: wakes every task whose deadline has come, then sleeps until the
/// next deadline or a new registration. Wakers are woken outside the lock, so that an
/// executor that polls on `wake` can register again.
fn run() {
    let mut pending = TIMERS
        .pending
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    loop {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = pending.drain(..).partition(|(at, _)| *at <= now);
        *pending = later;
        if !due.is_empty() {
            drop(pending);
            due.into_iter().for_each(|(_, waker)| waker.wake());
            pending = TIMERS
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            continue;
        }
        pending = match pending.iter().map(|(at, _)| *at).min() {
            None => TIMERS
                .changed
                .wait(pending)
                .unwrap_or_else(PoisonError::into_inner),
            Some(next) => {
                TIMERS
                    .changed
                    .wait_timeout(pending, next.saturating_duration_since(now))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
        };
    }
}

/// Completes with `true` when `first` does, or `false` when `deadline` comes first.
pub(crate) async fn before<F: Future<Output = ()> + Unpin>(first: F, deadline: Instant) -> bool {
    let mut first = first;
    let mut sleep = sleep_until(deadline);
    std::future::poll_fn(move |cx| {
        if Pin::new(&mut first).poll(cx).is_ready() {
            return Poll::Ready(true);
        }
        match Pin::new(&mut sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(false),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::time::Duration;

    struct Unpark(std::thread::Thread);

    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }

    /// Polls on this thread, parked between wake-ups: only the timer wakes it.
    fn block_on<F: Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        let waker = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
            std::thread::park();
        }
    }

    #[test]
    fn a_sleep_ends_at_its_deadline_and_a_ready_future_wins() {
        let started = Instant::now();
        block_on(sleep_until(started + Duration::from_millis(30)));
        assert!(started.elapsed() >= Duration::from_millis(30));
        let never = std::future::pending::<()>();
        let started = Instant::now();
        assert!(!block_on(before(
            never,
            started + Duration::from_millis(20)
        )));
        assert!(started.elapsed() >= Duration::from_millis(20));
        let ready = std::future::ready(());
        assert!(block_on(before(
            ready,
            Instant::now() + Duration::from_secs(60)
        )));
    }
}
