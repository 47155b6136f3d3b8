//! The `#[dogpile(...)]` attribute. Use it through `dogpile::dogpile`; its documentation
//! is on [`macro@dogpile`].
//!
//! Layout (the thiserror / serde_derive pattern): `ast` parses the attribute's options
//! into raw `key [= value]` entries and holds the checked model; `validate` checks
//! options and signature, collecting every error with the span of its token; `expand`
//! writes the code. Nothing here panics on any input.
#![forbid(unsafe_code)]

use proc_macro::TokenStream;

mod ast;
mod expand;
mod validate;

#[cfg(test)]
mod fuzz;
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
/// | `capacity = 10_000` | At most this many keys; the oldest values are evicted first. |
/// | `background` | On a stale hit every caller, even the one that triggers the refresh, gets the stale value at once; the body runs on a background thread (for an `async fn`: is spawned on the current tokio runtime, which needs dogpile's `tokio` feature). |
/// | `stale_if_error` | For `Result` fns: when a refresh returns `Err`, callers get the stale value instead. |
/// | `max_stale = "1h"` | A value older than `ttl + max_stale` is not served: callers treat the key as cold. Without it a stale value is served until a refresh succeeds. |
/// | `sync_readers` | The wrapper returns `dogpile::ReadGuard<T>` instead of `T` (`Result<ReadGuard<T>, E>` for `Result` fns), and a new value is published only once every guard on the old one is dropped. |
/// | `name = PAGES` | The name of the generated `static` cache handle. Default: the fn name in SCREAMING_SNAKE_CASE. |
/// | `crate = path` | Where the runtime is, for a renamed or re-exported dependency. Default: `::dogpile`. |
/// | `clock = EXPR` | The cache's time source: any expression whose type implements `dogpile::Clock`, evaluated once, when the `static` cache is first used. Default: the system clock. See [Testing](#testing). |
///
/// `sync_readers` and `background` can't be combined, and `sync_readers` can't be used on
/// an `async fn` (a guard held across `.await` would stall every refresh).
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
/// - **`{fn}`**, the wrapper. A fresh hit looks the key up by reference
///   (`dogpile::KeyRef`) and allocates nothing; the owned key is built only to store
///   a new value. With `background` the wrapper builds the owned key up front (the body
///   may run on another thread, so it owns a clone of the arguments); an `async fn`
///   wrapper does too and awaits `dogpile::Cache::get_with_async`.
/// - **`{fn}_no_cache`**: the original body, called by the wrapper to create a value.
///   Recursive calls in the body (`fib(n - 1)`) go through the wrapper, so they are
///   memoized too.
/// - **`{fn}_prime`**: runs the body now and stores its value as fresh for these
///   arguments, whatever was cached (for `Result` fns, only an `Ok`). Returns the value.
/// - **the `static`**, a `dogpile::Cache` behind a `LazyLock`, keyed by the tuple of
///   the owned arguments: `RENDER.invalidate(&("home".to_owned(), lang))`,
///   `RENDER.remove(..)`, `RENDER.clear()`, `RENDER.stats()`, `RENDER.len()`.
///
/// All four get the fn's visibility and `cfg`. Doc comments stay on the wrapper; other
/// attributes (`#[inline]`, `#[must_use]`, lint levels, ...) go on the wrapper and the
/// companions, except symbol attributes (`#[no_mangle]`, `#[export_name]`), which stay on
/// the wrapper only.
///
/// # Keys and values
///
/// - The key is the tuple of the arguments: `(A,)` for one, `()` for none (the fn then
///   memoizes one value). An owned argument `x: T` is cloned into the key; a borrowed one
///   `x: &T` is keyed by `<T as ToOwned>::Owned` (`&str` by `String`, `&[u8]` by
///   `Vec<u8>`, `&Path` by `PathBuf`). Each key part must be `Hash + Eq + Clone + Send +
///   Sync + 'static`; rustc says so at the argument's type if it is not.
/// - Borrows are allowed only at the top level of an argument's type (or with a
///   `'static` lifetime), since the key lives in a `static`: `Option<&str>` is
///   rejected, take `Option<String>`. At most 8 arguments form the key.
/// - An argument written `_: T` is passed to the body but is **not** part of the key (the
///   body can't observe it), and needs none of those bounds. `mut x: T` is fine: the
///   body gets its own copy.
/// - The value is the return type `T`: `Clone + Send + Sync + 'static` (return `Arc<T>`
///   when clones are expensive). A hit returns a clone.
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
/// with a `self` receiver (keep a `dogpile::Cache` as a struct field instead); generic
/// fns and `impl Trait` arguments or return types (the `static` needs concrete types);
/// `const`, `unsafe` and `extern` fns; `&mut` arguments (a hit would skip the mutation);
/// argument patterns other than a name or `_` (destructure in the body); borrowed
/// return types; `Self` in the signature; `stale_if_error` on a fn that doesn't return a
/// `Result`; the option conflicts above. When the attribute is rejected, the function is
/// still emitted unchanged next to the error, so its callers compile and only the real
/// error is shown.
///
/// # Limitations
///
/// - The attribute goes on free functions (at module level or inside a function body).
///   In an `impl` or `trait` block the generated `static` is not allowed; memoize a free
///   function and call it from the method.
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
