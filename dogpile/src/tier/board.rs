//! The tier engine's board: the keys whose L1 copy is another process's stale value held
//! while that process's lease runs (F1, F3), and the wake-up of callers waiting for a
//! cold key created elsewhere (F2). A notification for a key takes it off the board
//! and wakes every waiter. Built on the crate's `sync` primitives, so that the loom
//! models check its waiting.

use crate::sync::{Condvar, Mutex};
use std::collections::HashSet;
use std::hash::Hash;
use std::time::{Duration, Instant};

pub(super) struct Board<K> {
    state: Mutex<State<K>>,
    changed: Condvar,
}

struct State<K> {
    held: HashSet<K>,
    /// Notifications so far: a waiter waits for it to move past what it saw.
    epoch: u64,
}

impl<K: Hash + Eq> Board<K> {
    pub(super) fn new() -> Self {
        Board {
            state: Mutex::new(State {
                held: HashSet::new(),
                epoch: 0,
            }),
            changed: Condvar::new(),
        }
    }

    /// Puts `key` on the board (before its claim, so that a notification arriving
    /// between the claim's reply and the L1 store takes it off again).
    pub(super) fn hold(&self, key: K) {
        self.state.lock().held.insert(key);
    }

    /// Takes `key` off the board without waking anyone: its claim was not answered by
    /// another process's stale value.
    pub(super) fn drop_hold(&self, key: &K) {
        self.state.lock().held.remove(key);
    }

    /// Whether `key` is still on the board: no notification for it came since it was
    /// put there.
    pub(super) fn holds(&self, key: &K) -> bool {
        self.state.lock().held.contains(key)
    }

    /// A notification for `key`: takes it off the board and wakes every waiter. True
    /// if it was on the board.
    pub(super) fn notify(&self, key: &K) -> bool {
        let mut state = self.state.lock();
        let held = state.held.remove(key);
        state.epoch = state.epoch.wrapping_add(1);
        drop(state);
        self.changed.notify_all();
        held
    }

    /// Events may have been missed: nothing stays held, every waiter looks again.
    pub(super) fn reset(&self) {
        let mut state = self.state.lock();
        state.held.clear();
        state.epoch = state.epoch.wrapping_add(1);
        drop(state);
        self.changed.notify_all();
    }

    /// What a waiter saw before it asked the tier; see [`wait`](Board::wait).
    pub(super) fn epoch(&self) -> u64 {
        self.state.lock().epoch
    }

    /// Blocks until a notification after `seen`, or `timeout`.
    pub(super) fn wait(&self, seen: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut state = self.state.lock();
        while state.epoch == seen {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            let (next, timed_out) = self.changed.wait_timeout(state, left);
            if timed_out {
                return;
            }
            state = next;
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::Board;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    #[test]
    fn a_notification_takes_a_key_off_and_a_wait_ends_by_its_timeout() {
        let board = Board::new();
        board.hold(7u32);
        assert!(board.holds(&7));
        assert!(board.notify(&7));
        assert!(!board.holds(&7) && !board.notify(&7));
        board.hold(8);
        board.reset();
        assert!(!board.holds(&8));
        let started = Instant::now();
        board.wait(board.epoch(), Duration::from_millis(20));
        assert!(started.elapsed() >= Duration::from_millis(20));
        // A wait for an epoch already past returns at once.
        board.wait(board.epoch().wrapping_sub(1), Duration::from_secs(60));
    }

    #[test]
    fn a_notification_wakes_a_waiter() {
        let board = Arc::new(Board::<u32>::new());
        let seen = board.epoch();
        let notifier = board.clone();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            notifier.notify(&1);
        });
        let started = Instant::now();
        board.wait(seen, Duration::from_secs(30));
        assert!(started.elapsed() < Duration::from_secs(30));
        thread.join().unwrap();
    }
}

/// loom models of the engine's waiting: a caller that saw the epoch before its claim
/// and then waits is woken by a notification that came after the claim, whichever way
/// the two interleave; loom never times a wait out, so a lost wake-up is a deadlock.
#[cfg(all(test, loom))]
mod loom_models {
    use super::Board;
    use loom::thread;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn loom_tier_board_wait_is_woken_by_a_later_notification() {
        loom::model(|| {
            let board = Arc::new(Board::<u8>::new());
            board.hold(1);
            let seen = board.epoch();
            // The publish that another process makes after this caller's claim.
            let notifier = board.clone();
            let published = thread::spawn(move || notifier.notify(&1));
            board.wait(seen, Duration::from_secs(3600));
            assert!(published.join().unwrap(), "the key was held until notified");
            assert!(!board.holds(&1));
        });
    }

    #[test]
    fn loom_tier_board_wakes_every_waiter() {
        loom::model(|| {
            let board = Arc::new(Board::<u8>::new());
            let seen = board.epoch();
            let waiter = {
                let board = board.clone();
                thread::spawn(move || board.wait(seen, Duration::from_secs(3600)))
            };
            let notifier = board.clone();
            let reset = thread::spawn(move || notifier.reset());
            board.wait(seen, Duration::from_secs(3600));
            waiter.join().unwrap();
            reset.join().unwrap();
            assert_ne!(board.epoch(), seen);
        });
    }
}
