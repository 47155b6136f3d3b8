//! The `#[dogpile(...)]` attribute. Use it through `dogpile::dogpile`; its documentation
//! is on [`macro@dogpile`].
//!
//! Layout (the serde_derive / thiserror pattern), each step a module:
//!
//! - `attr` parses the attribute's arguments into raw `key [= value]` entries;
//! - `validate` builds the checked model (`ast`) from them and the fn: `options` checks
//!   each option's value, `signature` the fn's signature (with the type helpers in
//!   `types`), `rules` how options and fn fit together (`batch` for the batch form),
//!   `naming` the generated names;
//!   every error is collected with the span of its token;
//! - `expand` writes the code, one generator per generated item.
//!
//! Nothing here panics on any input.
#![forbid(unsafe_code)]

use proc_macro::TokenStream;

mod ast;
mod attr;
mod batch;
mod durations;
mod errors;
mod expand;
mod naming;
mod options;
mod rules;
mod signature;
mod types;
mod validate;

#[cfg(test)]
mod tests;

/// Memoizes a function over a `dogpile::Cache`: a stampede-proof, per-arguments cache.
///
/// ```
/// use dogpile::dogpile;
/// use std::sync::Arc;
///
/// #[dogpile(ttl = "10m")]
/// fn render(page: &str, user: u64) -> Arc<String> {
///     Arc::new(format!("<h1>{page}</h1> for {user}")) // slow in real life
/// }
///
/// assert_eq!(*render("home", 7), "<h1>home</h1> for 7"); // runs the body
/// assert_eq!(*render("home", 7), "<h1>home</h1> for 7"); // a hit: clones the Arc
/// assert_eq!(RENDER.stats().hits, 1);
/// ```
///
/// The wrapper keeps the function's name, signature, visibility, attributes and doc
/// comments. The arguments form the key; the body creates the value; the cache follows
/// the dogpile rules: a fresh value is returned at once, a stale one is refreshed by
/// exactly one caller while the others keep getting the stale value, and only a key's
/// first creation makes callers wait.
///
/// # Options
///
/// | option | meaning |
/// |---|---|
/// | `ttl = "10m"` | **Required.** How long a value stays fresh, in [humantime] syntax (`"250ms"`, `"30s"`, `"5m"`, `"1h 30m"`), parsed at compile time. Must be non-zero. |
/// | `ttl = \|t: &Token\| t.valid_for` | Instead: each value's own lifetime, a closure (or fn) `Fn(&T) -> Duration` over the value (the `Ok` value of a `Result` fn, the `Some` value of an `Option` fn). See [Freshness](#freshness). |
/// | `none_ttl = "30s"` | For `Option<T>` fns: `None` is kept this long (`Some` keeps `ttl`). `none_ttl = "0s"` is `skip_none`. |
/// | `stale_while_revalidate = "1m"` | How long past its lifetime a value may be served while one caller refreshes it; past that, callers wait as for a cold key. `"0s"`: never past its lifetime. Without it a stale value is served until a refresh succeeds. |
/// | `stale_if_error = "1h"` | For `Result` fns: how long past its lifetime a value is served instead of a failed refresh's `Err`. |
/// | `retry_backoff = "100ms..30s"` | For `Result` fns: after `n` failures in a row, the body is not run again for `min(base * 2^(n-1), cap)` (jittered up by at most a quarter); meanwhile a stale key serves its stale value, a cold key its last `Err`. |
/// | `refresh_ahead = "10s"` | Once a value has less than this left, the next caller refreshes it early (once per lifetime); with `background` nobody waits. |
/// | `wait_at_most = "2s"` | A caller waiting for another's creation gives up after this and runs the body itself. |
/// | `capacity = 10_000` | At most this many keys. When full, keys nobody asked for again since they came in go first, and a burst of one-time keys does not push out the keys in use (S3-FIFO: see the `dogpile::Cache` docs). |
/// | `background` | On a stale hit every caller, even the one that triggers the refresh, gets the stale value at once; the body runs on a background thread (for an `async fn`: is spawned on the current tokio runtime, which needs dogpile's `tokio` feature). |
/// | `sync_readers` | The wrapper returns `dogpile::ReadGuard<T>` instead of `T` (`Result<ReadGuard<T>, E>` for `Result` fns), and a new value is published only once every guard on the old one is dropped. |
/// | `name = PAGES` | The name of the generated `static` cache handle. Default: the fn name in SCREAMING_SNAKE_CASE. |
/// | `crate = path` | Where the runtime is, for a renamed or re-exported dependency. Default: `::dogpile`. |
/// | `clock = EXPR` | The cache's time source: any expression whose type implements `dogpile::Clock`, evaluated once, when the `static` cache is first used. Default: the system clock. See [Testing](#testing). |
/// | `key = id`, `key = (region, page)` | Only these arguments form the key, in this order; the others (a pool, a client, a logger) are passed to the body but never hashed, cloned or stored, and need no bounds. See [Context arguments](#context-arguments-key). |
/// | `key(T) = EXPR` | The key is the value of `EXPR` (over the arguments, and `self` in a method), of type `T`. |
/// | `skip_none` | For `Option<T>` fns: `Some` is stored, `None` goes back to its caller and is not stored (the next call runs the body again). See [`skip_none`](#skip_none). |
/// | `field = cache` | For `&self` methods: the cache is the field `self.cache: dogpile::Cache<K, V>`, one per instance, built (with its `ttl` and other settings) where the struct is. See [Methods](#methods). |
/// | `shared = EXPR` | The fleet tier: a `dogpile::SharedTier` (such as `dogpile_redis::RedisTier`) that the processes of a service share, so that a key is created once per expiry for all of them. Evaluated once, when the cache is first used; scoped to the fn's path. See [Fleet](#fleet-shared). |
/// | `associated` | For associated fns without `self` in an `impl` block: the cache is reached through the associated fn `{fn}_cache()` instead of a `static`. Not needed when the fn names `Self`. See [Methods](#methods). |
/// | `batch = ids` | The batch form: the elements of the slice argument `ids: &[K]` are the keys, the fn returns `Vec<V>` (or `Result<Vec<V>, E>`), the body is called with the missing ids only, and the wrapper answers every id, in order. See [Batches](#batches-batch). |
///
/// `sync_readers` and `background` can't be combined, and `sync_readers` can't be used on
/// an `async fn` (a guard held across `.await` would stall every refresh).
///
/// # Context arguments: `key`
///
/// Arguments that are not part of what the fn computes stay out of the key. They need no
/// bounds at all: here `Pool` is neither `Hash` nor `Clone`.
///
/// ```
/// use dogpile::dogpile;
/// use std::sync::Arc;
///
/// struct Pool; // a connection pool
/// impl Pool {
///     fn query(&self, id: u64) -> String { format!("user {id}") }
/// }
///
/// #[dogpile(ttl = "5m", key = id)]
/// fn user(db: &Pool, id: u64) -> Arc<String> {
///     Arc::new(db.query(id))
/// }
///
/// assert_eq!(*user(&Pool, 7), "user 7");
/// assert_eq!(*user(&Pool, 7), "user 7"); // a hit, whatever pool is passed
/// assert_eq!(USER.stats().hits, 1);
/// USER.invalidate(&7); // the handle is keyed by `id` alone: `Cache<u64, Arc<String>>`
/// ```
///
/// Several names form a tuple in the order written (`key = (region, page)` keys by
/// `(String, u32)` for `region: &str, page: u32`); `key = ()` keeps one value. A value
/// computed from the arguments is a key too, with its type written once:
///
/// ```
/// use dogpile::dogpile;
///
/// struct Request { user: u64, trace: String }
///
/// #[dogpile(ttl = "1m", key(u64) = request.user)]
/// fn profile(request: &Request) -> String {
///     format!("profile {} (first asked by {})", request.user, request.trace)
/// }
///
/// let first = profile(&Request { user: 1, trace: "a".into() });
/// assert_eq!(profile(&Request { user: 1, trace: "b".into() }), first);
/// ```
///
/// The expression runs on every call, before the body, so keep it cheap (a hit
/// allocates only what it allocates). With `background`, the body may run after the
/// call has returned, so arguments outside the key must be owned (`Arc<Pool>`, or a
/// pool handle that is cheap to clone); a borrowed one is a compile error.
///
/// # `skip_none`
///
/// ```
/// use dogpile::dogpile;
///
/// #[dogpile(ttl = "1h", skip_none)]
/// fn find(id: u64) -> Option<String> {
///     (id < 100).then(|| format!("row {id}")) // a row that may appear later
/// }
///
/// assert_eq!(find(1).as_deref(), Some("row 1")); // stored
/// assert_eq!(find(500), None);                    // not stored: asked again next time
/// assert_eq!(FIND.len(), 1);
/// ```
///
/// Without `skip_none` an `Option` fn caches `None` like any value; `none_ttl = "30s"`
/// keeps it a shorter time than a found value.
///
/// # Freshness
///
/// A value can carry its own lifetime: `ttl = EXPR`, where `EXPR` is a closure or fn
/// from the value to a `Duration`.
///
/// ```
/// use dogpile::dogpile;
/// use std::time::Duration;
///
/// #[derive(Clone)]
/// struct Token { secret: String, valid_for: Duration }
///
/// #[dogpile(
///     ttl = |t: &Token| t.valid_for,   // each token's own lifetime
///     stale_while_revalidate = "0s",   // never served past it
///     refresh_ahead = "5s",            // renewed by the next caller 5 s before it ends
///     retry_backoff = "100ms..30s",    // a failing issuer is not hammered
/// )]
/// fn token(client: u32) -> Result<Token, String> {
///     Ok(Token { secret: format!("s{client}"), valid_for: Duration::from_secs(300) })
/// }
///
/// assert_eq!(token(1).unwrap().secret, "s1");
/// ```
///
/// # Batches: `batch`
///
/// A fn that loads by lists (`SELECT .. WHERE id IN (..)`, a GraphQL loader, a multi-get)
/// names its slice argument: each element is a key of its own, and the body is called
/// once per call with only the ids that need a value (the cold ones, and the stale ones
/// whose refresh this call claimed), in first-seen order, each once. Ids another caller
/// is creating are waited for, never created twice; fresh ids, and stale ids that another
/// caller refreshes, are served at once. The wrapper runs `Cache::get_many_with` (see
/// its docs for every rule).
///
/// ```
/// use dogpile::dogpile;
///
/// struct Pool; // not `Hash`, not `Clone`: context, as with `key = ..`
///
/// #[dogpile(ttl = "5m", batch = ids)]
/// fn users(db: &Pool, ids: &[u64]) -> Vec<Option<String>> {
///     let _ = db; // SELECT id, name FROM users WHERE id IN (..ids)
///     ids.iter().map(|id| (*id < 100).then(|| format!("user {id}"))).collect()
/// }
///
/// assert_eq!(users(&Pool, &[1, 2]), [Some("user 1".into()), Some("user 2".into())]);
/// // Only 500 reaches the body; 1 is a hit, and `None` is stored like any value.
/// assert_eq!(users(&Pool, &[500, 1]), [None, Some("user 1".into())]);
/// assert_eq!(USERS.len(), 3);
/// ```
///
/// The cache is keyed by the slice's element (`Cache<u64, Option<String>>` here); every
/// other argument is context: never hashed or stored, it needs no bounds, and an owned
/// one is cloned for each body call (a reference is copied). The body must return one
/// value per id it is given, in order: another number of values is a panic naming both
/// numbers. `async fn` works the same way; a `Result<Vec<V>, E>` fn stores nothing on
/// `Err`, which reaches this call and every caller waiting for its ids. `users_prime(db,
/// ids)` runs the body for all the ids and stores each value.
///
/// `batch` can't be combined with `key` (the ids are the key), `sync_readers` (a read
/// guard per id held at once), `background` (use a `Cache` built with
/// `background_refresh()` and its `get_many_with`), `skip_none` or `field`. A `&self`
/// method may be a batch fn: its cache is shared by every instance, keyed by the ids.
///
/// # Methods
///
/// A `&self` method keeps its cache in a field with `field = ..` (one cache per
/// instance; the struct builds it, with its `ttl` and other settings), or shares one
/// cache between all instances when `key` says what identifies the result (`self` is
/// then not part of the key; the cache is reached through the generated associated fn
/// `{fn}_cache()`).
///
/// ```
/// use dogpile::{dogpile, Cache};
/// use std::time::Duration;
///
/// struct Users {
///     origin: String,
///     names: Cache<u64, String>,
/// }
///
/// impl Users {
///     #[dogpile(field = names)]
///     fn name(&self, id: u64) -> String {
///         format!("{}/{id}", self.origin) // per instance: `self` shapes the value
///     }
///
///     #[dogpile(ttl = "1h", key = id)]
///     fn is_admin(&self, id: u64) -> bool {
///         id == 0 // the same for every instance
///     }
/// }
///
/// let eu = Users { origin: "eu".into(), names: Cache::new(Duration::from_secs(60)) };
/// let us = Users { origin: "us".into(), names: Cache::new(Duration::from_secs(60)) };
/// assert_eq!(eu.name(1), "eu/1");
/// assert_eq!(us.name(1), "us/1"); // its own cache
/// assert!(eu.is_admin(0) && us.is_admin(0));
/// assert_eq!(Users::is_admin_cache().stats().hits, 1);
/// ```
///
/// An associated fn without `self` (`Repo::lookup(id)`) has one shared cache too, behind
/// `{fn}_cache()`: an `impl` block can't hold the `static` a free fn gets, and the
/// attribute can't see that it is in one, so say so with `associated`. A fn that names
/// `Self` in its signature or body (`Self::parse(..)`, `repo: &Self` outside the key) is
/// known to be in an `impl` block and needs no marker.
///
/// ```
/// use dogpile::dogpile;
/// use std::sync::Arc;
///
/// struct Repo;
///
/// impl Repo {
///     #[dogpile(ttl = "1m", associated)]
///     fn lookup(id: u64) -> Arc<str> {
///         format!("row {id}").into() // a query in real life
///     }
///
///     #[dogpile(ttl = "1m")] // `Self` in the body: no marker needed
///     async fn title(id: u64) -> Arc<str> {
///         Self::lookup(id)
///     }
/// }
///
/// assert_eq!(&*Repo::lookup(7), "row 7");
/// assert_eq!(&*Repo::lookup(7), "row 7");
/// assert_eq!(Repo::lookup_cache().stats().hits, 1);
/// ```
///
/// With `field`, the options that configure the cache (`ttl`, `capacity`, the freshness
/// options, `clock`, `name`) go where the field is built; `background` can't be
/// used on a method (its body borrows `self`). A method with neither `field` nor `key`
/// is a compile error that says so.
///
/// # Fleet: `shared`
///
/// A service that runs as several processes shares values, their age and the refresh
/// claim through a tier, `dogpile_redis::RedisTier` in production:
/// `shared = REDIS.clone()` with `static REDIS: LazyLock<RedisTier> = LazyLock::new(||
/// RedisTier::open(URL).unwrap())`. Each key is then created once per expiry for the whole
/// fleet, a fresh local hit never leaves the process, and with the tier down each process
/// follows the local rules (F1–F8, in the `dogpile::SharedTier` docs). Like `clock`, the
/// expression is evaluated once, inside the `static`'s initializer.
///
/// The attribute hands the cache `EXPR.scoped("{module path}::{fn name}")`
/// (`SharedTier::scoped`; `RedisTier` appends it to its namespace): fns that share a tier
/// never see each other's values, even with the same key and value types, while the
/// same fn shares them across processes. Here an in-process toy tier stands in for Redis
/// (its code is hidden; `dogpile::SharedTier` shows one in full):
///
/// ```
/// # mod fleet {
/// #     use dogpile::{Claim, EventSink, Lease, Publish, SharedTier, SharedValue, TierError};
/// #     use std::collections::BTreeMap;
/// #     use std::sync::{Arc, Mutex};
/// #     use std::time::Duration;
/// #     /// Values by scope and key, in this process only.
/// #     #[derive(Clone, Default)]
/// #     pub struct InProcess { scope: String, map: Arc<Mutex<BTreeMap<String, u64>>> }
/// #     impl InProcess {
/// #         pub fn keys(&self) -> Vec<String> { self.map.lock().unwrap().keys().cloned().collect() }
/// #         fn at(&self, key: &u64) -> String { format!("{} {key}", self.scope) }
/// #     }
/// #     impl SharedTier<u64, u64> for InProcess {
/// #         fn lookup(&self, key: &u64) -> Result<Option<SharedValue<u64>>, TierError> {
/// #             let value = self.map.lock().unwrap().get(&self.at(key)).copied();
/// #             Ok(value.map(|value| SharedValue { value, age: Duration::ZERO, lifetime: Duration::MAX }))
/// #         }
/// #         fn claim(&self, key: &u64, _: Duration) -> Result<Claim<u64>, TierError> {
/// #             Ok(match self.lookup(key)? {
/// #                 Some(fresh) => Claim::Fresh(fresh),
/// #                 None => Claim::Owned { lease: Lease::new("me", 0), stale: None, failures: 0 },
/// #             })
/// #         }
/// #         fn publish(&self, key: &u64, _: &Lease, value: &u64, _: Duration) -> Result<Publish, TierError> {
/// #             self.map.lock().unwrap().insert(self.at(key), *value);
/// #             Ok(Publish::Stored)
/// #         }
/// #         fn release(&self, _: &u64, _: &Lease, _: Duration) -> Result<(), TierError> { Ok(()) }
/// #         fn invalidate(&self, _: &u64) -> Result<(), TierError> { Ok(()) }
/// #         fn remove(&self, key: &u64) -> Result<(), TierError> {
/// #             self.map.lock().unwrap().remove(&self.at(key));
/// #             Ok(())
/// #         }
/// #         fn subscribe(&self, _: EventSink<u64>) {}
/// #         fn scoped(self, scope: &str) -> Self { InProcess { scope: scope.to_string(), ..self } }
/// #     }
/// # }
/// use dogpile::dogpile;
/// use fleet::InProcess; // in production: dogpile_redis::RedisTier
/// use std::sync::LazyLock;
///
/// static FLEET: LazyLock<InProcess> = LazyLock::new(InProcess::default);
///
/// #[dogpile(ttl = "10m", shared = FLEET.clone())]
/// fn price(item: u64) -> u64 {
///     item * 100
/// }
///
/// #[dogpile(ttl = "10m", shared = FLEET.clone())]
/// fn stock(item: u64) -> u64 {
///     item + 1
/// }
///
/// assert_eq!(price(7), 700);
/// assert_eq!(stock(7), 8); // the same key, its own value
/// let keys = FLEET.keys(); // each under its fn's path
/// assert!(keys[0].ends_with("::price 7") && keys[1].ends_with("::stock 7"), "{keys:?}");
/// ```
///
/// Keys and values must suit the tier: serde `Serialize` (keys), `Serialize +
/// Deserialize` (values) for `RedisTier`; rustc says so at the expression otherwise. With
/// `field = ..` the tier goes where the field's cache is built,
/// `Cache::builder().shared(..)`. Methods with a `static` cache (`key = ..`) are scoped by
/// module and method name: two types in one module with a method of the same name, key and
/// value types need different namespaces. `{fn}_prime` stores in this process only (it
/// stores with `insert`, which holds no lease); `invalidate` and `remove` reach the fleet
/// (and build the owned key for the tier), and so do `HANDLE.invalidate_all()` and
/// `clear()`, for every key of the fn at once.
///
/// # Testing
///
/// Give the fn a `dogpile::ManualClock` with `clock = ..` and its tests decide when time
/// passes: no sleeps, no flaky timing. Clones of a `ManualClock` share one time, so keep
/// one in a `static` and hand the cache a clone:
///
/// ```
/// use dogpile::{dogpile, ManualClock};
/// use std::sync::LazyLock;
/// use std::time::Duration;
///
/// static CLOCK: LazyLock<ManualClock> = LazyLock::new(ManualClock::new);
///
/// #[dogpile(ttl = "10s", clock = CLOCK.clone())]
/// fn price(item: &str) -> u64 {
///     item.len() as u64 // a slow lookup in real life
/// }
///
/// assert_eq!(price("tea"), 3);              // cold: runs the body
/// CLOCK.advance(Duration::from_secs(9));
/// assert_eq!(price("tea"), 3);              // fresh: a hit
/// CLOCK.advance(Duration::from_secs(1));    // 10s old: stale
/// assert_eq!(price("tea"), 3);              // this caller refreshes
/// assert_eq!(PRICE.stats().refreshes, 1);
/// ```
///
/// The expression is evaluated in the fn's module, inside the initializer of the
/// generated `static`, so it can name other `static`s and call functions but not the
/// fn's arguments. A type that doesn't implement `Clock` is a compile error at the
/// expression. To use a manual clock only in a crate's unit tests, write the attribute
/// twice, under `#[cfg_attr(test, dogpile(.., clock = CLOCK.clone()))]` and
/// `#[cfg_attr(not(test), dogpile(..))]`.
///
/// # What is generated
///
/// For `#[dogpile(ttl = "1h")] pub fn render(page: &str, lang: Lang) -> Arc<Html> { body }`:
///
/// ```text
/// pub fn render(page: &str, lang: Lang) -> Arc<Html> {
///     // (through a `dyn` creator, so the runtime's slow path is compiled once per
///     // key and value type, not once per memoized fn)
///     RENDER.entry_by_ref(&(page, &lang)).get_with(|| render_no_cache(page, Clone::clone(&lang)))
/// }
/// /// Runs the body of [`render`] without the cache: never reads or stores a value.
/// pub fn render_no_cache(page: &str, lang: Lang) -> Arc<Html> { body }
/// /// Runs the body of [`render`] and stores its value for these arguments as fresh, whatever was cached.
/// pub fn render_prime(page: &str, lang: Lang) -> Arc<Html> { .. }
/// /// The cache behind [`render`]: `invalidate`, `remove`, `clear`, `stats`.
/// pub static RENDER: LazyLock<dogpile::Cache<(String, Lang), Arc<Html>, dogpile::mode::Inline>> = ..;
/// ```
///
/// - **`{fn}`**, the wrapper. Every wrapper looks the key up by reference
///   (`entry_by_ref`, `dogpile::KeyRef`): a fresh hit allocates nothing, and the owned
///   key is built only to store a new value. The `async fn` wrapper awaits
///   `get_with_async` on the entry, with the body in an `async` block that clones owned
///   key parts only if it runs; the block is pinned on the wrapper's stack and passed as
///   `dyn Future + Send`, so that the runtime's async path is compiled once per key and
///   value type, not once per fn. The body's future must therefore be `Send` (as for
///   `tokio::spawn`): rustc points at the `.await` that holds a non-`Send` value.
///   With `background` the body may run on another thread after the call has
///   returned, so it owns a clone of the key parts, made only when the hit path
///   misses (a fresh hit, or a stale one while a refresh runs, clones nothing).
/// - **`{fn}_no_cache`**: the original body, called by the wrapper to create a value.
///   Recursive calls in the body (`fib(n - 1)`) go through the wrapper, so they are
///   memoized too.
/// - **`{fn}_prime`**: runs the body now and stores its value as fresh for these
///   arguments, whatever was cached (for `Result` fns, only an `Ok`). Returns the value.
/// - **the `static`**, a `dogpile::Cache` behind a `LazyLock`, keyed by the owned key
///   parts: `RENDER.invalidate(&("home".to_owned(), lang))`, `RENDER.remove(..)`,
///   `RENDER.clear()`, `RENDER.stats()`, `RENDER.len()`. A fn with one key part is
///   keyed by that part itself: `fn user(id: u64)` gives `USER: Cache<u64, _>`, and
///   `fn page(path: &str)` gives `Cache<String, _>`, so `PAGE.remove("/about")`
///   needs no allocation. Several parts are looked up by borrowed parts, also without
///   allocating, through `entry_by_ref`:
///   `RENDER.entry_by_ref(&("home", &lang))` then `.get()` (the value if it may be
///   served; creates nothing), `.contains()`, `.invalidate()` or `.remove()`. Rustdoc
///   shows the `static`'s type with the owned types written out, as above.
///
/// For a `&self` method the handle is the field (`field = ..`) or the associated fn
/// `{fn}_cache()` (`key = ..`), and the companions are methods too; for an associated fn
/// without `self`, the handle is `{fn}_cache()` and the companions are associated fns.
///
/// All four get the fn's visibility and `cfg`. Doc comments stay on the wrapper; other
/// attributes (`#[inline]`, `#[must_use]`, lint levels, ...) go on the wrapper and the
/// companions, except symbol attributes (`#[no_mangle]`, `#[export_name]`), which stay on
/// the wrapper only.
///
/// # Keys and values
///
/// - The key is the tuple of the arguments (or of those named in `key`): the argument
///   itself for one, `()` for none (the fn then memoizes one value). An owned argument
///   `x: T` is cloned into the key; a borrowed one
///   `x: &T` is keyed by `<T as ToOwned>::Owned` (`&str` by `String`, `&[u8]` by
///   `Vec<u8>`, `&Path` by `PathBuf`). Each key part must be `Hash + Eq + Clone + Send +
///   Sync + 'static`; rustc says so at the argument's type if it is not, in one message
///   for `Hash + Eq + Clone` and one for `Send + Sync`, and nothing more about that type.
/// - Borrows are allowed only at the top level of an argument's type (or with a
///   `'static` lifetime), since the key lives in a `static`: `Option<&str>` is
///   rejected, take `Option<String>`. At most 8 arguments form the key.
/// - An argument written `_: T` is passed to the body but is **not** part of the key (the
///   body can't observe it), and needs none of those bounds. `mut x: T` is fine: the
///   body gets its own copy.
/// - The value is the return type `T`: `Clone + Send + Sync + 'static` (return `Arc<T>`
///   when clones are expensive). A hit returns a clone. The error type `E` of a
///   `Result<T, E>` must be `Clone + Send + 'static`: the callers that waited for a
///   failed creation each get a clone. rustc says so at the type if it is not.
/// - A return type spelled `Result<T, E>`, or any path ending in `Result<T, ..>` such as
///   `io::Result<T>`, caches only `Ok(T)`: an `Err` goes to the caller whose call ran the
///   body, and nothing is stored. (A type alias without generic arguments is not
///   recognised as a `Result` and would cache errors too.)
/// - A fn without a return value (`()`) is allowed: its body runs at most once per key
///   per `ttl`, a throttle for side effects such as pings or warm-ups.
///
/// # Rejected, with a compile error that says what to do instead
///
/// Missing, unparsable or zero `ttl`; unknown, repeated or ill-typed options; methods
/// with a receiver other than `&self`, or a `&self` method with neither `field` nor `key`;
/// a `key` that names no argument or names one twice; `skip_none` on a fn that doesn't
/// return `Option`; `background` with a borrowed argument outside the key; generic
/// fns and `impl Trait` arguments or return types (the `static` needs concrete types);
/// `const`, `unsafe` and `extern` fns; `&mut` arguments (a hit would skip the mutation);
/// argument patterns other than a name or `_` (destructure in the body); borrowed
/// return types; `Self` in the key or value type (the `static` can't name it: write the
/// type's name); `associated` on a `&self` method; `stale_if_error` or `retry_backoff` on a
/// fn that doesn't return a `Result`; `none_ttl` on a fn that doesn't return `Option`; a
/// `ttl` closure over another type than the value; `retry_backoff` whose base is above
/// its cap; a bare `stale_if_error` (it takes a window); a `batch` that names no argument,
/// or an argument that is not a slice `&[K]`, or a batch fn that does not return `Vec<V>`
/// or `Result<Vec<V>, E>`; the option conflicts above. When
/// the attribute is rejected, the function is
/// still emitted unchanged next to the error, so its callers compile and only the real
/// error is shown.
///
/// # Limitations
///
/// - The attribute goes on free functions (at module level or inside a function body),
///   `&self` methods and associated fns. An associated fn that doesn't name `Self` and
///   lacks `associated` is taken for a free fn and gets a `static`, which an `impl` block
///   can't hold (rustc: "associated `static` items are not allowed"): add `associated`.
/// - The generated names (`{fn}_no_cache`, `{fn}_prime`, the `static`) must be free in
///   the scope; rename the handle with `name = ..` if it clashes.
/// - A body that calls its own fn with the *same* arguments panics (it would wait for
///   itself forever); calls with other arguments are fine.
///
/// [humantime]: https://docs.rs/humantime
#[proc_macro_attribute]
pub fn dogpile(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::attribute(args.into(), input.into()).into()
}
