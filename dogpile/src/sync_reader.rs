//! [`SyncReaderDogpile`]: a dogpile lock whose readers hold guards that publishing waits for.

use crate::cell::ValueCell;
use crate::clock::{to_nanos, Clock, ClockHandle};
use crate::dogpile::single_slot_env;
use crate::fence::Fence;
use crate::slot::{self, Control, Env, FenceRead, How, Step};
use crate::stats::Stats;
use std::convert::Infallible;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

/// A dogpile lock for values that must not change under a reader's feet.
///
/// It follows the rules of [`Dogpile`](crate::Dogpile), and in addition every caller
/// holds a [`ReadGuard`] while it uses the value. Publishing a new value, and any
/// [`acquire_write_lock`](SyncReaderDogpile::acquire_write_lock) section the creator
/// takes, waits until every guard is dropped; callers that arrive meanwhile block until
/// the swap is done and then see the new value.
///
/// The classic use: readers read a data file while one caller writes the next version
/// beside it and, under the write lock, moves it into place.
///
/// A thread that already holds a guard and calls `acquire` again is given the current
/// value at once (fresh or stale) and never claims the refresh, so it cannot wait for
/// itself.
///
/// # Example
///
/// ```
/// use dogpile::SyncReaderDogpile;
/// use std::time::Duration;
///
/// let datafile = SyncReaderDogpile::new(Duration::from_secs(60));
/// let guard = datafile.acquire(|| {
///     // Write the new file beside the old one, then swap it in while no one reads.
///     let _swap = datafile.acquire_write_lock();
///     "version 1".to_string()
/// });
/// assert_eq!(*guard, "version 1");
/// ```
pub struct SyncReaderDogpile<T = ()> {
    cell: ValueCell<Arc<T>>,
    control: Arc<Control>,
    env: Env,
}

impl<T> SyncReaderDogpile<T> {
    /// A lock whose value stays fresh for `ttl`, timed by the system clock.
    ///
    /// # Panics
    ///
    /// If `ttl` is zero.
    ///
    /// ```
    /// let lock = dogpile::SyncReaderDogpile::<String>::new(std::time::Duration::from_secs(1));
    /// assert_eq!(*lock.acquire(|| "a".into()), "a");
    /// ```
    pub fn new(ttl: Duration) -> Self {
        Self::with_handle(ttl, ClockHandle::System)
    }

    /// A lock timed by `clock`.
    ///
    /// # Panics
    ///
    /// If `ttl` is zero.
    ///
    /// ```
    /// use dogpile::{ManualClock, SyncReaderDogpile};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let lock = SyncReaderDogpile::with_clock(Duration::from_secs(1), clock.clone());
    /// drop(lock.acquire(|| 1));
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(*lock.acquire(|| 2), 2);
    /// ```
    pub fn with_clock(ttl: Duration, clock: impl Clock) -> Self {
        Self::with_handle(ttl, ClockHandle::custom(clock))
    }

    fn with_handle(ttl: Duration, clock: ClockHandle) -> Self {
        SyncReaderDogpile {
            cell: ValueCell::new(to_nanos(ttl)),
            control: Control::new(true),
            env: single_slot_env(ttl, clock, "SyncReaderDogpile"),
        }
    }

    /// The value under a read guard; creates or refreshes it as
    /// [`Dogpile::acquire`](crate::Dogpile::acquire) does.
    ///
    /// # Panics
    ///
    /// If `create` panics (the panic reaches this caller only, and a waiting caller takes
    /// over with its own creator, R1), or if called from inside this lock's own creator.
    ///
    /// ```
    /// let lock = dogpile::SyncReaderDogpile::new(std::time::Duration::from_secs(60));
    /// let first = lock.acquire(|| 1);
    /// let again = lock.acquire(|| 2); // same thread, guard held: no deadlock
    /// assert_eq!((*first, *again), (1, 1));
    /// ```
    pub fn acquire(&self, create: impl FnOnce() -> T) -> ReadGuard<T> {
        match self.try_acquire(|| Ok::<T, Infallible>(create())) {
            Ok(guard) => guard,
            Err(never) => match never {},
        }
    }

    /// Like [`acquire`](SyncReaderDogpile::acquire) with a fallible creator; an `Err`
    /// reaches its own caller and, as a clone, the callers that waited for that creation
    /// (R1), and nothing is stored.
    ///
    /// ```
    /// let lock = dogpile::SyncReaderDogpile::new(std::time::Duration::from_secs(60));
    /// assert!(lock.try_acquire(|| Err::<u8, _>("no disk")).is_err());
    /// assert_eq!(*lock.try_acquire(|| Ok::<_, ()>(3)).unwrap(), 3);
    /// ```
    pub fn try_acquire<E: Clone + Send + 'static>(
        &self,
        create: impl FnOnce() -> Result<T, E>,
    ) -> Result<ReadGuard<T>, E> {
        let attempt = || create().map(Arc::new);
        match slot::get(&self.control, &self.cell, &self.env, attempt, How::GUARDED) {
            Step::Done(result) => {
                result.map(|served| ReadGuard::new(Held::Counted(served.value), served.read))
            }
            Step::Retired => unreachable!("dogpile: internal error: a lone slot was retired"),
        }
    }

    /// Takes the write lock: waits until every [`ReadGuard`] is dropped, and makes new
    /// readers wait until the guard is dropped.
    ///
    /// Called from inside this lock's creator, the lock is kept past the guard's drop
    /// until the new value is published, so no reader sees the old value after the
    /// creator's write section. If the creator fails, the lock is released.
    ///
    /// # Panics
    ///
    /// If this thread holds a [`ReadGuard`] of this lock: it would wait for itself.
    ///
    /// ```
    /// let lock = dogpile::SyncReaderDogpile::<()>::new(std::time::Duration::from_secs(60));
    /// {
    ///     let _write = lock.acquire_write_lock();
    ///     // no reader holds a guard here
    /// }
    /// drop(lock.acquire(|| ()));
    /// ```
    pub fn acquire_write_lock(&self) -> WriteGuard<'_> {
        let fence = self
            .control
            .fence()
            .expect("dogpile: internal error: a SyncReaderDogpile without a fence");
        if self.control.creating_here() {
            fence.write_for_publish();
            WriteGuard {
                fence,
                release_on_drop: false,
            }
        } else {
            fence.write();
            WriteGuard {
                fence,
                release_on_drop: true,
            }
        }
    }

    /// Makes the value stale: the next caller refreshes it.
    ///
    /// ```
    /// let lock = dogpile::SyncReaderDogpile::new(std::time::Duration::from_secs(60));
    /// drop(lock.acquire(|| 1));
    /// lock.invalidate();
    /// assert_eq!(*lock.acquire(|| 2), 2);
    /// ```
    pub fn invalidate(&self) {
        self.cell.invalidate();
    }

    /// Counters of what this lock has seen; see [`Stats`].
    ///
    /// ```
    /// let lock = dogpile::SyncReaderDogpile::new(std::time::Duration::from_secs(60));
    /// drop(lock.acquire(|| 1));
    /// assert_eq!(lock.stats().misses, 1);
    /// ```
    pub fn stats(&self) -> Stats {
        self.env.stats.snapshot()
    }
}

impl<T> fmt::Debug for SyncReaderDogpile<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncReaderDogpile")
            .field("ttl", &Duration::from_nanos(self.env.policy.ttl))
            .finish_non_exhaustive()
    }
}

/// What a [`ReadGuard`] holds: a lock's `Arc` of the value, or a cache's clone of it.
pub(crate) enum Held<T> {
    Counted(Arc<T>),
    Owned(T),
}

/// A value read under a reader-synchronised lock; publishing a new value waits until
/// this guard is dropped.
///
/// Returned by [`SyncReaderDogpile::acquire`] and by
/// `Cache::get_with` of a
/// [`SyncReaders`](crate::mode::SyncReaders) cache. It is not `Send`: it must be dropped
/// on the thread that took it (like [`std::sync::MutexGuard`]).
///
/// # Example
///
/// ```
/// let lock = dogpile::SyncReaderDogpile::new(std::time::Duration::from_secs(60));
/// let guard: dogpile::ReadGuard<Vec<u8>> = lock.acquire(|| vec![1, 2, 3]);
/// assert_eq!(guard.len(), 3);
/// ```
pub struct ReadGuard<T> {
    value: Held<T>,
    /// `None` only for a value a full cache computed without storing it.
    _read: Option<FenceRead>,
    /// The fence tracks holders per thread, so the guard stays on its thread.
    _not_send: PhantomData<*const ()>,
}

impl<T> ReadGuard<T> {
    pub(crate) fn new(value: Held<T>, read: Option<FenceRead>) -> Self {
        ReadGuard {
            value,
            _read: read,
            _not_send: PhantomData,
        }
    }
}

impl<T> Deref for ReadGuard<T> {
    type Target = T;

    fn deref(&self) -> &T {
        match &self.value {
            Held::Counted(value) => value,
            Held::Owned(value) => value,
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for ReadGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: fmt::Display> fmt::Display for ReadGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// The write lock of a [`SyncReaderDogpile`], from
/// [`acquire_write_lock`](SyncReaderDogpile::acquire_write_lock).
///
/// # Example
///
/// ```
/// let lock = dogpile::SyncReaderDogpile::<()>::new(std::time::Duration::from_secs(60));
/// let guard: dogpile::WriteGuard<'_> = lock.acquire_write_lock();
/// drop(guard);
/// ```
#[must_use = "the write lock is released when the guard is dropped"]
pub struct WriteGuard<'a> {
    fence: &'a Fence,
    release_on_drop: bool,
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        if self.release_on_drop {
            self.fence.release_write();
        }
    }
}

impl fmt::Debug for WriteGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WriteGuard")
    }
}
