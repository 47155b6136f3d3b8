//! A dogpile lock: exactly one caller regenerates an expensive value while every other
//! caller keeps using the previous value until the new one is ready.
//!
//! When a cached value expires, a naive cache lets every caller that notices recompute
//! it at once (a *cache stampede*, or *dogpile*), or makes them all wait for one
//! recompute. Here, once a value exists, **only the caller that refreshes it waits**;
//! everyone else is served the stale value immediately. Only the very first creation,
//! when there is nothing to serve, makes callers wait, and then exactly one of them
//! creates.
//!
//! | type | for |
//! |---|---|
//! | [`Dogpile<T>`] | one value, or (`Dogpile<()>`) one external resource |
//! | [`SyncReaderDogpile<T>`] | one value that must not change while a reader uses it |
//! | [`Cache<K, V, M>`] | a dogpile lock per key, on a [`DashMap`](dashmap::DashMap); `M` is its [`mode`] |
//! | [`#[dogpile]`](macro@dogpile) | turns a function into a memoized wrapper over a `Cache` |
//!
#![doc = include_str!("overview.md")]
//!
//! # Implementation
//!
//! Shallow layers, one job per file; the rules live in the slot driver, which every
//! public type runs.
//!
//! ```text
//! src/
//!   lib.rs             these docs, the re-exports, `__private` (what `#[dogpile]` expands to)
//!   overview.md        the crate docs' chapters before this one: the rules, the modes,
//!                      Cache, batches
//!   checks.rs          the checks through which `#[dogpile]` states its bounds on key
//!                      parts, values and error types, each mistake once
//!   cache/             Cache: a slot per key, on a DashMap
//!     mod.rs           Cache: each public method, its docs and a one-line forward:
//!                      the Inline calls and batches here,
//!     modes.rs         the Background and SyncReaders calls,
//!     access.rs        and every mode's reads, writes and invalidation
//!     dispatch.rs      Core: the entry layout (unbounded, or bounded behind `dyn`),
//!                      and each mode's get-like calls, written once
//!     entry.rs         EntryRef: the same calls by a borrowed key, forwarding to Core
//!     builder.rs       CacheBuilder, BuildError
//!     store.rs         the entries, the hit path, get / invalidate / remove / clear
//!     table.rs         Table: the map as the slow path reaches it, its entries as
//!                      dyn Cells with their values erased; the few routines built
//!                      per value type
//!     slots.rs         a key's entry as the per-key loop reaches it, on a Table:
//!                      admission, eviction, sweep, load, publish, insert
//!     call.rs          the per-key loop every get-like call goes through
//!     erased.rs        the blocking calls' slow path with the value type erased: the
//!                      loop and the slot driver built once, not once per value type
//!     any.rs           values and errors behind dyn for it, and its creator behind a tier
//!     batch/           get_many_with: each key's pass through its slot, one creator
//!                      call for the keys a batch claimed (create.rs), then its waits
//!     bounded.rs       the bounded layout (the policy is evict.rs)
//!     lookup.rs        KeyForm, the one trait a key is looked up by: owned, KeyRef, Borrow
//!   freshness.rs       the freshness model as pure decisions: (expiry, windows,
//!                      failures, now) -> serve / claim early / claim / wait / fail
//!   slot/              the state machine of one key: R1-R11
//!     stamp.rs         a value with its expiry (R6) and invalidation (R7)
//!     mod.rs           the Store seam, the Control (claim,
//!                      waiters, reader fence)
//!     reentry.rs       same-key re-entry (R9)
//!     drive.rs         the driver: look up, claim, create, publish, release
//!     creator.rs       the Creator seam, and the creators that run in their call
//!     background.rs    the creators that hand a refresh to an executor (R10)
//!   tier/              the fleet tier: F1-F8
//!     mod.rs           the SharedTier seam and its public types
//!     level.rs         the engine that runs a tier inside a cache
//!     creation.rs      a call's creator wrapped in the tier's steps
//!     many.rs          a batch's steps in the tier, a few round trips per batch
//!     board.rs         held keys, and the wake-up of callers waiting for another process
//!   dogpile.rs         Dogpile: one slot, its value in a cell.rs ValueCell
//!   sync_reader.rs     SyncReaderDogpile, ReadGuard, WriteGuard (R8), on fence.rs
//!   evict.rs           S3-FIFO, under the bounded layout's lock
//!   executor.rs        the refresh pool and RefreshTask
//!   timer.rs           the runtime-agnostic sleep of an async wait's limit
//!   clock.rs stats.rs trace.rs mode.rs key.rs
//!   test_clock.rs      ManualClock::scoped and its guards (feature `test-clock`)
//!   sync.rs            the blocking primitives, from loom under `--cfg loom`
//!   guide/             the guide's chapters (Markdown, their examples are doctests)
//!   module_graph.rs    a unit test: the `use crate::` edges between modules, no cycle
//! ```
//!
//! One call's path, `Cache::get_with` on an unbounded cache: three hops from `Cache` to
//! the entry, on the hit path and the slow path alike.
//!
//! ```text
//! Cache::get_with(key, create)                          cache/mod.rs
//!  └─ Core::get_inline                                  cache/dispatch.rs
//!      ├─ Inner::hit: shard read lock, fresh? clone     cache/store.rs    (a hit ends here)
//!      └─ Core::inline_miss: the creator behind dyn      cache/dispatch.rs (out of line)
//!          erased::call_blocking(table, key, creator)    cache/erased.rs
//!          └─ call_loop over a dyn KeySlot: the key's control, then slot::drive over
//!             an ErasedStore, whose load / publish reach the entry through
//!             dyn Table                   cache/call.rs, cache/slots.rs, cache/table.rs
//! ```
//!
//! The hit path is typed and inlined; the slow path of a blocking call runs on the value
//! as an `AnyValue` (the value behind a shared `Arc<dyn Any>`), so that the loop and the
//! driver are built once per error type (once, in this crate, for `get_with`), and what
//! a key's slot does with its entry once per key type, not once per value type: only
//! `Table::update` (one shard-locked look-up that reads, changes, removes or inserts an
//! entry), the sweep and each `Cell`'s few accessors are built per value type. The async
//! and `Background` calls take the same loop typed, through `dyn Slots`, which forwards
//! to the same per-key code but for their values.
//! A bounded cache takes the same path with `Core` reaching its `Inner` through `dyn
//! BoundedCore`; a fleet tier wraps the creator (`tier::creation`) and leaves the path
//! as it is. `scripts/module-edges.sh` lists the edges between these modules and fails
//! on a cycle.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cache;
mod cell;
mod checks;
mod clock;
#[allow(clippy::module_inception)]
mod dogpile;
mod evict;
mod executor;
mod fence;
mod freshness;
pub mod guide;
mod key;
#[cfg(all(test, loom))]
mod loom_tests;
pub mod mode;
#[cfg(all(test, not(loom)))]
mod module_graph;
mod slot;
mod stats;
mod sync;
mod sync_reader;
#[cfg(any(doc, feature = "test-clock"))]
mod test_clock;
mod tier;
mod timer;
mod trace;

pub use crate::cache::{BuildError, Cache, CacheBuilder, EntryRef};
pub use crate::clock::{Clock, ManualClock, SystemClock};
pub use crate::dogpile::Dogpile;
pub use crate::executor::RefreshTask;
pub use crate::key::KeyRef;
pub use crate::stats::Stats;
pub use crate::sync_reader::{ReadGuard, SyncReaderDogpile, WriteGuard};
#[cfg(any(doc, feature = "test-clock"))]
pub use crate::test_clock::{ClockScope, WithClock};
pub use crate::tier::{
    Claim, EventSink, Lease, Publish, SharedTier, SharedValue, TierError, TierEvent,
};

/// Turns a function into a memoized wrapper over a [`Cache`]: see the
/// `dogpile-macros` crate docs for every option.
#[cfg(feature = "macros")]
pub use dogpile_macros::dogpile;

/// Items the `#[dogpile]` attribute's expansion names. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::trace::{ErrorNote, NoteDisplay, NoteNothing};
    pub use core::time::Duration;
    pub use std::sync::LazyLock;

    pub use crate::checks::{
        Checked, ErrorPart, KeyPart, KeyRefPart, KeyShared, Parts, ValueClone, ValueShared,
    };

    #[diagnostic::on_unimplemented(
        message = "`{Self}`, the memoized fn's error type, must be `Clone + Send + 'static`: \
                   callers that waited for a failed first creation each get a clone of its error",
        label = "a memoized fn's error type, but not `Clone + Send + 'static`",
        note = "return `Result<_, Arc<{Self}>>` instead: `Arc` is `Clone` for any error, and \
                `Send` when the error is `Send + Sync`"
    )]
    pub trait ErrorShared: Clone + Send + 'static {}
    impl<E: Clone + Send + 'static> ErrorShared for E {}

    /// An `async fn` wrapper's creator, behind `dyn`: pinned on the wrapper's stack (no
    /// allocation), so that the runtime's async path is compiled once per key and value
    /// type, not once more for every memoized `async fn` (each `async` block is its own
    /// type). The blocking wrappers get the same from [`InlineCalls`].
    pub type DynCreate<'a, T> =
        core::pin::Pin<&'a mut (dyn core::future::Future<Output = T> + Send + 'a)>;

    /// `entry.get_with_async(create)` with the creator behind `dyn`; see [`DynCreate`].
    #[cfg(not(loom))]
    pub async fn get_async<K, V, Q>(
        entry: crate::EntryRef<'_, K, V, crate::mode::Inline, Q>,
        create: DynCreate<'_, V>,
    ) -> V
    where
        K: core::hash::Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        Q: ?Sized + crate::KeyRef<K>,
    {
        entry.get_with_async(create).await
    }

    /// `entry.try_get_with_async(create)` with the creator behind `dyn` (see
    /// [`DynCreate`]), and the error's bound stated in the user's terms ([`ErrorShared`]).
    #[cfg(not(loom))]
    pub async fn try_get_async_dyn<K, V, Q, E>(
        entry: crate::EntryRef<'_, K, V, crate::mode::Inline, Q>,
        create: DynCreate<'_, Result<V, E>>,
    ) -> Result<V, E>
    where
        K: core::hash::Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        Q: ?Sized + crate::KeyRef<K>,
        E: ErrorShared,
    {
        entry.try_get_with_async(create).await
    }

    /// `entry.try_get_with(create)` of a `Background` cache; see [`try_get_async_dyn`].
    pub fn try_get_background<K, V, Q, E, F>(
        entry: crate::EntryRef<'_, K, V, crate::mode::Background, Q>,
        create: F,
    ) -> Result<V, E>
    where
        K: core::hash::Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        Q: ?Sized + crate::KeyRef<K>,
        E: ErrorShared,
        F: FnOnce() -> Result<V, E> + Send + 'static,
    {
        entry.try_get_with(create)
    }

    /// A background wrapper's hit, before it clones the key parts its `'static` creator
    /// owns: `None` when the call goes on to `entry.get_with(..)` and its kin (which
    /// count it), so a hit by a borrowed key allocates nothing.
    #[inline]
    pub fn background_hit<K, V, Q>(
        entry: &crate::EntryRef<'_, K, V, crate::mode::Background, Q>,
    ) -> Option<V>
    where
        K: core::hash::Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        Q: ?Sized + crate::KeyRef<K>,
    {
        entry.hit()
    }

    /// `entry.try_get_with_async(create)` of a `Background` cache; see [`try_get_async_dyn`].
    #[cfg(not(loom))]
    pub async fn try_get_background_async<K, V, Q, E, F>(
        entry: crate::EntryRef<'_, K, V, crate::mode::Background, Q>,
        create: F,
    ) -> Result<V, E>
    where
        K: core::hash::Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        Q: ?Sized + crate::KeyRef<K>,
        E: ErrorShared,
        F: core::future::Future<Output = Result<V, E>> + Send + 'static,
    {
        entry.try_get_with_async(create).await
    }

    /// What a memoized fn's generated handle is: a `static` `LazyLock<Cache>`, or the
    /// `&'static Cache` its associated `{fn}_cache()` returns. When another item has taken
    /// the handle's name, the wrapper reaches that item instead, and this bound says so
    /// in the user's terms (besides rustc's "defined multiple times").
    #[diagnostic::on_unimplemented(
        message = "`{Self}` is not the cache of a `#[dogpile]` fn: another item has the name \
                   of its handle",
        label = "the name of this fn's cache handle is taken by another item",
        note = "give the handle another name with `#[dogpile(name = ..)]` (by default it is \
                the fn's name in SCREAMING_SNAKE_CASE, or `{{fn}}_cache` in an `impl` block), \
                or rename the other item"
    )]
    pub trait Handle<'a, C: ?Sized> {
        fn cache(self) -> &'a C;
    }
    #[diagnostic::do_not_recommend]
    impl<'a, K, V, M> Handle<'a, crate::Cache<K, V, M>> for &'a LazyLock<crate::Cache<K, V, M>> {
        #[inline(always)]
        fn cache(self) -> &'a crate::Cache<K, V, M> {
            self
        }
    }
    #[diagnostic::do_not_recommend]
    impl<'a, K, V, M> Handle<'a, crate::Cache<K, V, M>> for &'a crate::Cache<K, V, M> {
        #[inline(always)]
        fn cache(self) -> &'a crate::Cache<K, V, M> {
            self
        }
    }

    /// The generated handle as a `&Cache`; see [`Handle`].
    #[inline(always)]
    pub fn handle<'a, C: ?Sized, H: Handle<'a, C>>(handle: H) -> &'a C {
        handle.cache()
    }

    /// The "error" a `skip_none` fn's `None` becomes: the cache's fallible path stores
    /// nothing for it, and the wrapper turns it back into `None`.
    #[derive(Clone, Copy, Debug)]
    pub struct NoValue;

    // The blocking wrappers call the cache through these, with the creator behind
    // `&mut dyn FnMut`: the runtime's slow path is then compiled once per key, value and
    // error type, not once more for every memoized fn (each creator closure is its own
    // type). The hit path is unchanged: no allocation, and the creator is not called.

    /// The blocking calls of an `Inline` cache, by a borrowed key. The creator goes
    /// behind `dyn` on a miss only (see `Core::inline_by`), so that a hit builds nothing.
    /// Methods (not free fns) so that a key or value type that lacks a bound is reported
    /// once, at the user's type, and not again at each call.
    pub trait InlineCalls<K, V> {
        /// `entry_by_ref(key).get_with(create)`.
        fn dogpile_get<Q: ?Sized + crate::KeyRef<K>>(
            &self,
            key: &Q,
            create: impl FnOnce() -> V,
        ) -> V;
        /// `entry_by_ref(key).try_get_with(create)`.
        fn dogpile_try_get<Q: ?Sized + crate::KeyRef<K>, E: ErrorShared>(
            &self,
            key: &Q,
            create: impl FnOnce() -> Result<V, E>,
        ) -> Result<V, E>;
    }

    impl<K, V> InlineCalls<K, V> for crate::Cache<K, V, crate::mode::Inline>
    where
        K: core::hash::Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        // Inlined like the `get_with` they forward to: a memoized fn's hit path is its
        // wrapper, this call and the cache's hit path, with no call between them.
        #[inline]
        fn dogpile_get<Q: ?Sized + crate::KeyRef<K>>(
            &self,
            key: &Q,
            create: impl FnOnce() -> V,
        ) -> V {
            self.entry_by_ref(key).get_with(create)
        }

        #[inline]
        fn dogpile_try_get<Q: ?Sized + crate::KeyRef<K>, E: ErrorShared>(
            &self,
            key: &Q,
            create: impl FnOnce() -> Result<V, E>,
        ) -> Result<V, E> {
            self.entry_by_ref(key).try_get_with(create)
        }
    }

    /// [`InlineCalls`] of a `SyncReaders` cache: they return guards.
    pub trait ReaderCalls<K, V> {
        /// `entry_by_ref(key).get_with(create)`.
        fn dogpile_get<Q: ?Sized + crate::KeyRef<K>>(
            &self,
            key: &Q,
            create: impl FnOnce() -> V,
        ) -> crate::ReadGuard<V>;
        /// `entry_by_ref(key).try_get_with(create)`.
        fn dogpile_try_get<Q: ?Sized + crate::KeyRef<K>, E: ErrorShared>(
            &self,
            key: &Q,
            create: impl FnOnce() -> Result<V, E>,
        ) -> Result<crate::ReadGuard<V>, E>;
    }

    impl<K, V> ReaderCalls<K, V> for crate::Cache<K, V, crate::mode::SyncReaders>
    where
        K: core::hash::Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        fn dogpile_get<Q: ?Sized + crate::KeyRef<K>>(
            &self,
            key: &Q,
            create: impl FnOnce() -> V,
        ) -> crate::ReadGuard<V> {
            self.entry_by_ref(key).get_with(create)
        }

        fn dogpile_try_get<Q: ?Sized + crate::KeyRef<K>, E: ErrorShared>(
            &self,
            key: &Q,
            create: impl FnOnce() -> Result<V, E>,
        ) -> Result<crate::ReadGuard<V>, E> {
            self.entry_by_ref(key).try_get_with(create)
        }
    }

    /// The tier of a `#[dogpile(shared = EXPR)]` fn, scoped to the fn's path
    /// ([`SharedTier::scoped`](crate::SharedTier::scoped)). `K` and `V` are named by the
    /// expansion, so a type that is not their tier is reported at `EXPR`, by
    /// `SharedTier`'s own message.
    pub fn scoped_tier<K, V, T: crate::SharedTier<K, V>>(tier: T, scope: &str) -> T {
        tier.scoped(scope)
    }

    /// `cache.try_get_many_with(keys, create)` of a batch fn (`batch = ids`), with the
    /// error's bound stated in the user's terms ([`ErrorShared`]).
    pub fn try_get_many<K, V, E, F>(
        cache: &crate::Cache<K, V>,
        keys: &[K],
        create: F,
    ) -> Result<Vec<V>, E>
    where
        K: core::hash::Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        E: ErrorShared,
        F: FnMut(&[K]) -> Result<Vec<V>, E>,
    {
        cache.try_get_many_with(keys, create)
    }

    /// `cache.try_get_many_with_async(keys, create)` of an async batch fn; see
    /// [`try_get_many`].
    #[cfg(not(loom))]
    pub async fn try_get_many_async<K, V, E, F, Fut>(
        cache: &crate::Cache<K, V>,
        keys: &[K],
        create: F,
    ) -> Result<Vec<V>, E>
    where
        K: core::hash::Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        E: ErrorShared,
        F: FnMut(Vec<K>) -> Fut,
        Fut: core::future::Future<Output = Result<Vec<V>, E>>,
    {
        cache.try_get_many_with_async(keys, create).await
    }

    /// `ttl = EXPR` of a memoized fn: each value's own lifetime, a fn of the value
    /// (`&T`, the `Ok` value of a `Result` fn, the `Some` value of an `Option` fn) giving
    /// a `Duration`. Names `T`, so that a closure of another type is reported at `EXPR`,
    /// once: what it returns is a fn of `&T` whatever `EXPR` was.
    #[inline]
    pub fn value_lifetime<T: 'static, F>(
        lifetime: F,
    ) -> impl Fn(&T) -> Duration + Send + Sync + 'static
    where
        F: Fn(&T) -> Duration + Send + Sync + 'static,
    {
        move |value: &T| lifetime(value)
    }

    /// `Some(v)` to `Ok(v)`, `None` to `Err(NoValue)`.
    #[inline]
    pub fn some_or_skip<T>(value: Option<T>) -> Result<T, NoValue> {
        value.ok_or(NoValue)
    }

    // ---- dogpile-macros: the fleet tier of a memoized fn ---------------------------

    /// `builder.shared(tier.scoped(scope))`: the tier of a `#[dogpile(shared = EXPR)]`
    /// fn, scoped to the fn's path ([`SharedTier::scoped`](crate::SharedTier::scoped)).
    /// One bound on the tier, with `K` and `V` named by the expansion: a type that is not
    /// their tier is reported once, at `EXPR`, by `SharedTier`'s own message.
    pub fn shared_tier<K, V, M, T>(
        builder: crate::CacheBuilder<K, V, M>,
        tier: T,
        scope: &str,
    ) -> crate::CacheBuilder<K, V, M>
    where
        K: core::hash::Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        M: crate::mode::Mode,
        T: crate::SharedTier<K, V>,
    {
        builder.shared(tier.scoped(scope))
    }
    // ---- end of dogpile-macros' block ----------------------------------------------
}
