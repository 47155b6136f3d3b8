//! The modes of a [`Cache`](crate::Cache), chosen at build time as its third type
//! parameter, so that calling a mode's methods on a cache of another mode is a compile
//! error rather than a run-time panic.
//!
//! | mode | builder | `get_with` returns | a stale refresh runs |
//! |---|---|---|---|
//! | [`Inline`] (default) | `Cache::builder()` | `V` | in the claimant's call (R3) |
//! | [`Background`] | `.background_refresh()` | `V` | on the refresh executor (R10) |
//! | [`SyncReaders`] | `.sync_readers()` | [`ReadGuard<V>`](crate::ReadGuard) | in the claimant's call (R8) |
//!
//! `background_refresh` and `sync_readers` exist only on an [`Inline`] builder, so the
//! two cannot be combined (a background publish would wait for readers that no caller
//! is responsible for), in either order:
//!
//! ```compile_fail
//! # use std::time::Duration;
//! let cache = dogpile::Cache::<u8, u8>::builder()
//!     .ttl(Duration::from_secs(1))
//!     .background_refresh()
//!     .sync_readers() // error: no method `sync_readers` on a Background builder
//!     .build();
//! ```
//!
//! ```compile_fail
//! # use std::time::Duration;
//! let cache = dogpile::Cache::<u8, u8>::builder()
//!     .ttl(Duration::from_secs(1))
//!     .sync_readers()
//!     .background_refresh() // error: no method `background_refresh` on a SyncReaders builder
//!     .build();
//! ```
//!
//! And a mode's calls exist only in that mode: a guard comes only from a
//! [`SyncReaders`] cache, a `Send + 'static` creator is asked only by a [`Background`]
//! one.
//!
//! ```compile_fail
//! let plain = dogpile::Cache::<u8, u8>::new(std::time::Duration::from_secs(1));
//! let guard: dogpile::ReadGuard<u8> = plain.get_with(1, || 1); // error: returns `u8`
//! ```

mod sealed {
    /// Keeps [`Mode`](super::Mode) closed: the cache relies on knowing every mode.
    pub trait Sealed {
        /// Values are read under guards that publishing waits for (R8).
        const SYNC_READERS: bool;
    }
}

/// A mode of [`Cache`](crate::Cache): [`Inline`], [`Background`] or [`SyncReaders`].
/// Sealed: no other type implements it.
///
/// ```
/// fn describe<M: dogpile::mode::Mode>(_: &dogpile::Cache<u8, u8, M>) -> &'static str {
///     std::any::type_name::<M>()
/// }
/// let cache = dogpile::Cache::<u8, u8>::new(std::time::Duration::from_secs(1));
/// assert!(describe(&cache).ends_with("Inline"));
/// ```
pub trait Mode: sealed::Sealed + Send + Sync + 'static {}

/// The default mode: the caller that claims a stale value's refresh runs it in its own
/// call (R3); every other caller gets the stale value at once.
///
/// ```
/// use dogpile::{mode::Inline, Cache};
/// let cache: Cache<u8, u8, Inline> = Cache::new(std::time::Duration::from_secs(60));
/// assert_eq!(cache.get_with(1, || 1), 1);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Inline;

/// Background refresh (R10): the claimant of a stale value's refresh returns the stale
/// value at once too, and the creator runs on the refresh executor (see
/// [`CacheBuilder::refresh_executor`](crate::CacheBuilder::refresh_executor)). Creators
/// must therefore be `Send + 'static`. After the first creation of a key nobody waits.
///
/// # The refresh pool
///
/// Unless the builder names another executor, refreshes run on one pool shared by the
/// whole process: as many threads as [`std::thread::available_parallelism`], started on
/// first use, and a queue of at most 4096 refreshes. When the queue is full, a new
/// refresh is given up at once: its claim is released, the key keeps serving its stale
/// value, and the next caller that finds it stale claims and submits it again. So a
/// burst of stale keys (10,000 going stale together) never starts more threads and never
/// makes a caller wait; it only spreads the refreshes over the next calls. For creators
/// that mostly wait on I/O, hand them to a bigger pool with
/// [`refresh_executor`](crate::CacheBuilder::refresh_executor).
///
/// ```
/// use dogpile::{mode::Background, Cache};
/// use std::time::Duration;
/// let cache: Cache<u8, u8, Background> =
///     Cache::builder().ttl(Duration::from_secs(60)).background_refresh().build();
/// assert_eq!(cache.get_with(1, || 1), 1);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Background;

/// Reader-synchronised (R8): calls return a [`ReadGuard`](crate::ReadGuard), and
/// publishing a new value for a key waits until every guard on that key is dropped.
/// There are no async calls in this mode: a guard must not be held across an `.await`.
///
/// ```
/// use dogpile::{mode::SyncReaders, Cache};
/// use std::time::Duration;
/// let cache: Cache<u8, String, SyncReaders> =
///     Cache::builder().ttl(Duration::from_secs(60)).sync_readers().build();
/// assert_eq!(*cache.get_with(1, || "one".into()), "one");
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct SyncReaders;

impl sealed::Sealed for Inline {
    const SYNC_READERS: bool = false;
}
impl sealed::Sealed for Background {
    const SYNC_READERS: bool = false;
}
impl sealed::Sealed for SyncReaders {
    const SYNC_READERS: bool = true;
}
impl Mode for Inline {}
impl Mode for Background {}
impl Mode for SyncReaders {}

/// Whether a mode reads under guards; the cache's one use of the sealed trait.
pub(crate) fn sync_readers<M: Mode>() -> bool {
    <M as sealed::Sealed>::SYNC_READERS
}
