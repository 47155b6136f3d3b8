//! The reader fence of reader-synchronised mode (R8): a read/write lock whose read
//! guards can be released from a `Drop` and which knows which thread holds a guard, so
//! that a thread never waits on its own guard.

use crate::sync::{thread_locals, Condvar, Mutex};
use std::cell::RefCell;

/// The state behind the fence's mutex.
#[derive(Default)]
struct FenceState {
    readers: usize,
    writer: bool,
    writers_waiting: usize,
    /// The creator took the write lock with `acquire_write_lock`; publishing reuses it
    /// so that no reader sees the old value after the creator's write section.
    held_for_publish: bool,
}

/// A read/write lock that prefers writers, built on a mutex and a condvar so that a
/// read guard can be released from its `Drop` without borrowing the lock, and so the
/// loom model checks it too.
#[derive(Default)]
pub(crate) struct Fence {
    state: Mutex<FenceState>,
    changed: Condvar,
}

thread_locals! {
    /// Fences this thread holds read guards on, one entry per guard.
    static READS_HELD: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

impl Fence {
    fn id(&self) -> usize {
        self as *const Fence as usize
    }

    pub(crate) fn read_held_here(&self) -> bool {
        let id = self.id();
        READS_HELD.with(|r| r.borrow().contains(&id))
    }

    pub(crate) fn panic_if_read_held_here(&self, what: &str) {
        if self.read_held_here() {
            panic!(
                "dogpile: this thread holds a ReadGuard and tried to {what}; that would \
                 wait for its own guard forever. Drop the guard first"
            );
        }
    }

    /// Takes a read guard. Blocks while a writer holds or waits for the lock, unless
    /// this thread already holds a guard here: it must never wait on itself (R8).
    pub(crate) fn read(&self) {
        let recursive = self.read_held_here();
        let mut state = self.state.lock();
        if !recursive {
            while state.writer || state.writers_waiting > 0 {
                state = self.changed.wait(state);
            }
        }
        state.readers += 1;
        drop(state);
        let id = self.id();
        READS_HELD.with(|r| r.borrow_mut().push(id));
    }

    pub(crate) fn release_read(&self) {
        let id = self.id();
        READS_HELD.with(|r| {
            let mut r = r.borrow_mut();
            if let Some(at) = r.iter().rposition(|&held| held == id) {
                r.remove(at);
            }
        });
        let mut state = self.state.lock();
        state.readers -= 1;
        let last = state.readers == 0;
        drop(state);
        if last {
            self.changed.notify_all();
        }
    }

    /// Waits until no reader holds a guard, then holds the lock exclusively.
    pub(crate) fn write(&self) {
        self.panic_if_read_held_here("take the write lock");
        let mut state = self.state.lock();
        state.writers_waiting += 1;
        while state.writer || state.readers > 0 {
            state = self.changed.wait(state);
        }
        state.writers_waiting -= 1;
        state.writer = true;
    }

    pub(crate) fn release_write(&self) {
        self.state.lock().writer = false;
        self.changed.notify_all();
    }

    /// The creator's `acquire_write_lock`: held on until the value is published.
    pub(crate) fn write_for_publish(&self) {
        if self.state.lock().held_for_publish {
            return; // taken already by this creator
        }
        self.write();
        self.state.lock().held_for_publish = true;
    }

    /// Runs `section` (the swap) under the write lock, reusing the creator's if held.
    pub(crate) fn write_section(&self, section: impl FnOnce()) {
        let held = std::mem::take(&mut self.state.lock().held_for_publish);
        if !held {
            self.write();
        }
        // Released even if `section` panics.
        struct Release<'a>(&'a Fence);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0.release_write();
            }
        }
        let _release = Release(self);
        section();
    }

    /// A creator that took the write lock and then failed must not leave it held.
    pub(crate) fn release_creator_write(&self) {
        let mut state = self.state.lock();
        if std::mem::take(&mut state.held_for_publish) {
            state.writer = false;
            drop(state);
            self.changed.notify_all();
        }
    }
}
