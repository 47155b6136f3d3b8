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
//! # The rules of one slot
//!
//! A slot (a lock, or one key of a cache) holds at most one value with the instant its
//! creation finished, and has at most one creation in flight. Code, tests and docs in
//! this repository cite these rules by number.
//!
//! - **R1 cold.** No value: the first caller runs its creator; concurrent callers wait
//!   (parked, not spinning) and then return that value without creating. If the
//!   creator returns `Err`, nothing is stored, and the error reaches its caller *and
//!   every caller that was waiting for that creation*: they get a clone of it (so the
//!   error type of `try_get_with` / `try_acquire` is `Clone + Send + 'static`; return
//!   `Arc<io::Error>` for an error that is not `Clone`). So a failing cold key costs
//!   **one attempt per creation in flight**, not one per caller, and a caller waits for
//!   at most that one creation: 100 callers on a key whose backend times out after 5 s
//!   all fail after 5 s, not the 100th after 500 s. The next caller to arrive runs a new
//!   attempt. If the creator *panics*, the panic reaches its own caller only, and one
//!   waiter takes over with its own creator, as `std::sync::OnceLock`, tokio's
//!   `OnceCell` and moka do: a panic is never raised in another caller's thread. A
//!   waiter whose own error type differs from the failed creator's (two call sites with
//!   different `E` on one key), and every waiter of an async creation that was
//!   cancelled (its future dropped), runs its own creator instead, one at a time.
//! - **R2 fresh.** Within its lifetime: returned at once. Never waits on a creation in flight;
//!   takes no exclusive lock.
//! - **R3 stale.** Past its lifetime: exactly one caller claims the refresh and runs its
//!   creator; every other caller returns the stale value at once and never waits. The
//!   new value and its creation instant are published together.
//! - **R4 re-check.** A caller that claims a refresh (or wins the cold claim) looks
//!   again first; if someone else already produced a fresh value, it creates nothing.
//! - **R5 failure.** A failed refresh stores nothing and keeps the stale value. Its
//!   caller gets the error (or, within `stale_if_error`, the stale value); a panic
//!   propagates to that caller only. No lock is poisoned; the next stale caller retries,
//!   or, with `retry_backoff`, the first caller after the key's back-off.
//! - **R6 age** counts from when the creation *finished*. A value's *lifetime* is
//!   `ttl`, or what [`ttl_with`](CacheBuilder::ttl_with) says for that value.
//! - **R7 invalidate** is soft: the value turns stale (R3 applies). **remove** is hard:
//!   the slot turns cold (R1 applies).
//! - **R8 sync readers.** In reader-synchronised mode a caller holds a [`ReadGuard`]
//!   while it uses the value. Publishing a new value (and any `acquire_write_lock()`
//!   section the creator takes) waits until every guard on the old value is dropped;
//!   callers that arrive meanwhile wait, then see the new value. A thread that already
//!   holds a guard and calls again never deadlocks on itself.
//! - **R9 re-entrancy.** A creator may use the same cache for other keys (recursion
//!   such as `fib(n - 1)`); no map lock is held while a creator runs or a caller waits.
//!   Asking for its *own* key panics with a message instead of waiting forever.
//! - **R10 background refresh** (opt-in, [`mode::Background`]): on a stale hit the
//!   claiming caller also returns the stale value at once, and the creator runs on the
//!   refresh executor: a small pool shared by the process (as many threads as
//!   [`std::thread::available_parallelism`]) with a bounded queue that gives a refresh
//!   up when full (the next stale caller claims it again), or the executor given to
//!   [`CacheBuilder::refresh_executor`]. After the first creation nobody waits.
//! - **R11 bounded staleness** (opt-in `stale_while_revalidate`): a value older than
//!   its lifetime + `stale_while_revalidate` is not served; callers treat the slot as
//!   cold (R1). Zero: no value is served past its lifetime. Without it, a stale value
//!   is served until a refresh succeeds.
//!
//! # Freshness: each value's own lifetime, and what happens around it
//!
//! The words follow HTTP caching (RFC 9111, RFC 5861), as CDNs, nginx and Varnish use
//! them. Every option is on [`CacheBuilder`], and on the `#[dogpile]` attribute.
//!
//! | option | what it does |
//! |---|---|
//! | [`ttl`](CacheBuilder::ttl) | the default lifetime |
//! | [`ttl_with`](CacheBuilder::ttl_with) | each value's own lifetime: a token's `expires_in`, a response's `max-age`, a short one for "not found" |
//! | [`stale_while_revalidate`](CacheBuilder::stale_while_revalidate) | how long past its lifetime a value may be served while one caller refreshes it (R11) |
//! | [`stale_if_error`](CacheBuilder::stale_if_error) | how long past its lifetime a value is served instead of a failed refresh's error (R5) |
//! | [`retry_backoff`](CacheBuilder::retry_backoff) | after `n` failures in a row, no attempt for `min(base * 2^(n-1), cap)`, jittered up by at most a quarter; meanwhile a stale key serves its stale value and a cold key its last error |
//! | [`refresh_ahead`](CacheBuilder::refresh_ahead) | once a value has less than this left, the next caller claims an early refresh, one per lifetime |
//! | [`wait_at_most`](CacheBuilder::wait_at_most) | a caller waiting for another's creation gives up after this and creates itself |
//!
//! With `refresh_ahead` and [`background_refresh`](CacheBuilder::background_refresh),
//! under continuous traffic no caller waits and none is served a value past its
//! lifetime; inline, only the claimant of the early refresh waits. [`Stats`] say how
//! stale: values served past their lifetime, the largest and the 99th percentile of how
//! far past, early refreshes, and calls answered during a back-off. A fresh hit records
//! nothing. [`Cache::get`] follows the same windows; [`Cache::get_fresh`] returns
//! values within their lifetime only.
//!
//! `refresh_ahead` has no default, not even a multiple of the key's measured creation
//! time. Measuring costs nothing on a hit (the creation path already reads the clock),
//! but the default would be unsafe: an early refresh is a creation the cache would
//! otherwise not make (a key last read just before its expiry is created once more,
//! for nobody), one slow creation (a cold start, a backend stall) would make the window
//! as long as the lifetime itself and the key would refresh on every call, and with a
//! [`SharedTier`] each early claim is a round trip to the fleet. When to renew is a property of the
//! data (a token renewed a minute before it expires), so it is asked for explicitly.
//!
//! ```
//! use dogpile::{Cache, ManualClock};
//! use std::time::Duration;
//!
//! #[derive(Clone)]
//! struct Token { secret: u64, expires_in: Duration }
//!
//! let clock = ManualClock::new();
//! let tokens: Cache<&str, Token> = Cache::builder()
//!     .ttl(Duration::from_secs(3600))
//!     .ttl_with(|_, token: &Token| token.expires_in) // each token's own lifetime
//!     .stale_while_revalidate(Duration::ZERO)       // never past it
//!     .refresh_ahead(Duration::from_secs(5))        // renew 5 s before it ends
//!     .stale_if_error(Duration::from_secs(60))
//!     .retry_backoff(Duration::from_millis(100), Duration::from_secs(30))
//!     .clock(clock.clone())
//!     .build();
//! let issue = |secret| move || Ok::<_, String>(Token { secret, expires_in: Duration::from_secs(30) });
//!
//! assert_eq!(tokens.try_get_with("api", issue(1)).unwrap().secret, 1);
//! clock.advance(Duration::from_secs(26)); // 4 s left: this caller renews early
//! assert_eq!(tokens.try_get_with("api", issue(2)).unwrap().secret, 2);
//! assert_eq!(tokens.stats().early_refreshes, 1);
//! clock.advance(Duration::from_secs(30)); // expired: no stale token is served
//! assert!(tokens.get(&"api").is_none());
//! assert_eq!(tokens.try_get_with("api", issue(3)).unwrap().secret, 3);
//! ```
//!
//! # Guarding an external resource: `Dogpile<()>`
//!
//! The value can be nothing at all: the lock then decides *who* regenerates something
//! that lives elsewhere (a file, a search index, a warmed connection pool) and when.
//!
//! ```
//! use dogpile::Dogpile;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::time::Duration;
//!
//! static REGENERATIONS: AtomicUsize = AtomicUsize::new(0);
//! let sitemap = Dogpile::<()>::new(Duration::from_secs(3600));
//!
//! for _request in 0..100 {
//!     sitemap.acquire(|| {
//!         // Rewrite sitemap.xml; runs once per hour, by one caller.
//!         REGENERATIONS.fetch_add(1, Ordering::Relaxed);
//!     });
//!     // ... serve sitemap.xml ...
//! }
//! assert_eq!(REGENERATIONS.load(Ordering::Relaxed), 1);
//! ```
//!
//! # Swapping a data file under readers: `SyncReaderDogpile`
//!
//! Readers hold a guard while they read the current file. The creator writes the next
//! version beside it, then takes the write lock, which waits for the readers to finish,
//! and moves the new file into place. Readers that arrive during the swap wait for it.
//!
//! ```
//! use dogpile::SyncReaderDogpile;
//! use std::time::Duration;
//!
//! let dir = std::env::temp_dir().join(format!("dogpile-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let live = dir.join("data.txt");
//! let datafile = SyncReaderDogpile::<()>::new(Duration::from_secs(600));
//!
//! let guard = datafile.acquire(|| {
//!     let next = dir.join("data.txt.tmp");
//!     std::fs::write(&next, "version 1").unwrap();
//!     let _swap = datafile.acquire_write_lock(); // no reader holds the old file now
//!     std::fs::rename(&next, &live).unwrap();
//! });
//! assert_eq!(std::fs::read_to_string(&live).unwrap(), "version 1");
//! drop(guard);
//! std::fs::remove_dir_all(&dir).unwrap();
//! ```
//!
//! # Memoizing by key: `Cache`
//!
//! ```
//! use dogpile::Cache;
//! use std::time::Duration;
//!
//! let pages: Cache<String, String> = Cache::builder()
//!     .ttl(Duration::from_secs(60))
//!     .capacity(10_000)
//!     .build();
//! let html = pages.entry_by_ref("/about").get_with(|| "<h1>About</h1>".to_string());
//! assert_eq!(html, "<h1>About</h1>");
//! ```
//!
//! # Loading by lists: `get_many_with`
//!
//! A page of 50 users is one query, not 50: [`Cache::get_many_with`] answers many keys
//! with one creator call for the keys that need a value, in first-seen order, with every
//! per-key rule kept (a key another caller is creating is waited for, a stale key is
//! served while one caller refreshes it). The attribute's form is `#[dogpile(batch =
//! ids)]`.
//!
//! ```
//! use dogpile::Cache;
//! use std::time::Duration;
//!
//! let names: Cache<u64, String> = Cache::new(Duration::from_secs(60));
//! let page = names.get_many_with(&[3, 1, 2], |ids| {
//!     // SELECT id, name FROM users WHERE id IN (3, 1, 2), in the order asked
//!     ids.iter().map(|id| format!("user {id}")).collect()
//! });
//! assert_eq!(page, ["user 3", "user 1", "user 2"]);
//! ```
//!
//!
//! - Values come out of a [`Cache`] as clones; store `Arc<T>` for large values.
//!   [`Dogpile`] hands out `Arc<T>`.
//! - A `Cache` removal (or eviction) never cancels a creation in flight: it publishes
//!   when it finishes, since it began after its caller saw no usable value.
//! - [`Stats`] count every get-like call as exactly one of hit, stale hit or miss, by
//!   what the call found when it arrived, also when a full cache computes a value
//!   without storing it (a miss). [`Cache::get`] and [`Cache::contains_key`] only look
//!   and are not counted.
//! - A [`Cache`]'s mode is a type ([`mode`]): asking a plain cache for a guard, or
//!   combining background refresh with sync readers, does not compile.
//! - Time comes from a [`Clock`]; [`ManualClock`] makes time-dependent tests exact.
//! - A batch's creator is `FnMut` (`Fn + Send + Sync + 'static` in [`mode::Background`],
//!   where the stale keys' refresh runs on the refresh executor), since a batch may call
//!   it more than once: [`CacheBuilder::max_batch`] splits a call, and a key whose creation
//!   by another caller ended without a value is asked for again. The async forms hand it
//!   the keys owned (`Vec<K>`), so that its future may hold them. A
//!   [`mode::SyncReaders`] cache has no batch (see [`Cache`]'s docs, Batches). With a
//!   [`SharedTier`], a batch takes each tier step for all the keys of a creator call at
//!   once ([`SharedTier::claim_many`], [`SharedTier::publish_many`],
//!   [`SharedTier::release_many`]), each key under its own lease.
//! - A failed early refresh (`refresh_ahead`) leaves the value as it is: its claimant
//!   gets the still-fresh value, and no other early refresh is claimed for that value.
//! - `wait_at_most` bounds every wait, blocking or async. An async caller awaits
//!   without holding a thread; its limit runs on one timer thread for the whole process
//!   (started on first use), so it needs no particular async runtime. With a
//!   [`SharedTier`], a cold key created by another process is waited for while that
//!   process's lease is renewed, up to `wait_at_most` (30 s unless set, F2).
//! - A panic is not a failure in a row for `retry_backoff` (it has no error to answer
//!   with); an `Err` is.
//! - With a [`SharedTier`], `invalidate` and `remove` reach every process (F6), and so
//!   do `invalidate_all` and `clear` for every key at once, through
//!   [`SharedTier::invalidate_all`] (a tier that does not implement it leaves them
//!   acting on this process's copies only). [`SharedTier::scoped`], which keeps the keys of the memoized fns sharing
//!   one tier apart, is a required method: a default that ignored the scope would let two
//!   fns with the same key and value types serve each other's values silently.
//!
//! # Implementation
//!
//! Shallow layers, one job per file; the rules live in the slot driver, which every
//! public type runs.
//!
//! ```text
//! src/
//!   lib.rs             these docs, the re-exports, `__private` (what `#[dogpile]` expands to)
//!   checks.rs          the checks through which `#[dogpile]` states its bounds on key
//!                      parts, values and error types, each mistake once
//!   cache/             Cache: a slot per key, on a DashMap
//!     mod.rs           Cache: each public method, its docs and a one-line forward
//!     dispatch.rs      Core: the entry layout (unbounded, or bounded behind `dyn`),
//!                      and each mode's get-like calls, written once
//!     entry.rs         EntryRef: the same calls by a borrowed key, forwarding to Core
//!     builder.rs       CacheBuilder, BuildError
//!     store.rs         the entries, the hit path, get / invalidate / remove / clear
//!     slots.rs         a key's entry as the per-key loop reaches it: admission,
//!                      eviction, sweep, insert
//!     call.rs          the per-key loop every get-like call goes through
//!     batch.rs         get_many_with: each key's pass through its slot, one creator
//!                      call for the keys a batch claimed, then its waits
//!     bounded.rs       the bounded layout (the policy is evict.rs)
//!     lookup.rs        KeyForm, the one trait a key is looked up by: owned, KeyRef, Borrow
//!   freshness.rs       the freshness model as pure decisions: (expiry, windows,
//!                      failures, now) -> serve / claim early / claim / wait / fail
//!   slot/              the state machine of one key: R1-R11
//!     stamp.rs         a value with its expiry (R6) and invalidation (R7)
//!     mod.rs           the Store seam, the Control (claim,
//!                      waiters, reader fence), same-key re-entry (R9)
//!     drive.rs         the driver: look up, claim, create, publish, release
//!     creator.rs       the Creator seam, and the creators that run in their call
//!     background.rs    the creators that hand a refresh to an executor (R10)
//!   tier/              the fleet tier: F1-F8
//!     mod.rs           the SharedTier seam and its public types
//!     level.rs         the engine that runs a tier inside a cache
//!     creation.rs      a call's creator wrapped in the tier's steps
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
//!  └─ Core::try_get_inline                              cache/dispatch.rs
//!      ├─ Inner::hit: shard read lock, fresh? clone     cache/store.rs    (a hit ends here)
//!      └─ call(slots, key, creator)                     cache/call.rs
//!          └─ dyn Slots: the key's control, then slot::drive over an EntryStore,
//!             whose load / publish reach the entry      cache/slots.rs
//! ```
//!
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

    /// A creator that runs at most once, as the `FnMut` the helpers below take.
    #[inline]
    pub fn once<V>(create: impl FnOnce() -> V) -> impl FnMut() -> V {
        let mut create = Some(create);
        move || match create.take() {
            Some(create) => create(),
            None => panic!("dogpile: a creator was called twice"),
        }
    }

    /// The blocking calls of an `Inline` cache, by a borrowed key, with a `dyn` creator.
    /// Methods (not free fns) so that a key or value type that lacks a bound is reported
    /// once, at the user's type, and not again at each call.
    pub trait InlineCalls<K, V> {
        /// `entry_by_ref(key).get_with(create)`.
        fn dogpile_get<Q: ?Sized + crate::KeyRef<K>>(
            &self,
            key: &Q,
            create: &mut dyn FnMut() -> V,
        ) -> V;
        /// `entry_by_ref(key).try_get_with(create)`.
        fn dogpile_try_get<Q: ?Sized + crate::KeyRef<K>, E: ErrorShared>(
            &self,
            key: &Q,
            create: &mut dyn FnMut() -> Result<V, E>,
        ) -> Result<V, E>;
    }

    impl<K, V> InlineCalls<K, V> for crate::Cache<K, V, crate::mode::Inline>
    where
        K: core::hash::Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        fn dogpile_get<Q: ?Sized + crate::KeyRef<K>>(
            &self,
            key: &Q,
            create: &mut dyn FnMut() -> V,
        ) -> V {
            self.entry_by_ref(key).get_with(create)
        }

        fn dogpile_try_get<Q: ?Sized + crate::KeyRef<K>, E: ErrorShared>(
            &self,
            key: &Q,
            create: &mut dyn FnMut() -> Result<V, E>,
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
            create: &mut dyn FnMut() -> V,
        ) -> crate::ReadGuard<V>;
        /// `entry_by_ref(key).try_get_with(create)`.
        fn dogpile_try_get<Q: ?Sized + crate::KeyRef<K>, E: ErrorShared>(
            &self,
            key: &Q,
            create: &mut dyn FnMut() -> Result<V, E>,
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
            create: &mut dyn FnMut() -> V,
        ) -> crate::ReadGuard<V> {
            self.entry_by_ref(key).get_with(create)
        }

        fn dogpile_try_get<Q: ?Sized + crate::KeyRef<K>, E: ErrorShared>(
            &self,
            key: &Q,
            create: &mut dyn FnMut() -> Result<V, E>,
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
