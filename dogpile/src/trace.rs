//! `tracing` events, with the `tracing` feature: one per creation (a refresh or a cold
//! creation), one per failed creation, one per eviction batch; nothing on the hit path.
//!
//! Every event has target `dogpile` and a `cache` field (the name given to
//! [`CacheBuilder::name`](crate::CacheBuilder::name); the `#[dogpile]` attribute names
//! its cache after the fn). Keys are not recorded: a key type need not be `Debug`.
//!
//! | event | level | fields |
//! |---|---|---|
//! | a creation succeeded | `DEBUG` | `cache`, `outcome` (`"refreshed"`, or `"created"` for a cold key), `duration_ms`, `stale_served` (whether other callers were served the stale value meanwhile, R3/R10) |
//! | a fleet tier answered in place of a creation | `DEBUG` | `cache`, `outcome` (`"from tier"`), `duration_ms`, `stale_served` |
//! | a creation failed | `WARN` | `cache`, `outcome` (`"error"`, `"panic"`, or `"cancelled"` for a dropped future), `error` (the error's `Display`, else its type), `duration_ms`, `stale_served`, `stale_if_error` (whether the caller got the stale value instead, R5) |
//! | entries were evicted | `DEBUG` | `cache`, `evicted`, `reason` (`"capacity"` or `"expired"`) |
//! | an early refresh was claimed (`refresh_ahead`) | `DEBUG` | `cache`, `outcome` (`"early_refresh"`) |
//! | a key entered its back-off (`retry_backoff`) | `INFO` | `cache`, `outcome` (`"backing_off"`) |
//!
//! Without the feature every function here is an empty `#[inline(always)]` function
//! and [`Started`] is zero-sized, so the runtime's calls compile away.
//!
//! An error's `Display` is known only where its type is: the runtime's creation paths
//! are generic over any error type, so they record the error's type name unless the
//! creator *noted* the error first (the `#[dogpile]` expansion does, through
//! [`ErrorNote`], for every error type that implements `Display`).

#[cfg(feature = "tracing")]
use std::cell::RefCell;
use std::fmt::Display;
#[cfg(feature = "tracing")]
use std::time::Instant;

/// When a creation began; zero-sized without the feature.
pub(crate) struct Started {
    #[cfg(feature = "tracing")]
    at: Instant,
}

/// A creation begins: starts its clock.
#[inline(always)]
pub(crate) fn start() -> Started {
    Started {
        #[cfg(feature = "tracing")]
        at: Instant::now(),
    }
}

#[cfg(feature = "tracing")]
fn millis(started: &Started) -> f64 {
    started.at.elapsed().as_secs_f64() * 1e3
}

/// A creation published its value. `stale` is whether it replaced a stale value (a
/// refresh, during which the stale value was served) rather than filling a cold key.
#[inline(always)]
pub(crate) fn created(cache: &str, started: &Started, stale: bool) {
    #[cfg(feature = "tracing")]
    tracing::debug!(
        target: "dogpile",
        cache,
        outcome = if stale { "refreshed" } else { "created" },
        duration_ms = millis(started),
        stale_served = stale,
        "{}",
        if stale { "value refreshed" } else { "value created" },
    );
    #[cfg(not(feature = "tracing"))]
    let _ = (cache, started, stale);
}

/// The next caller claimed an early refresh of a value still within its lifetime
/// (`refresh_ahead`).
#[inline(always)]
pub(crate) fn early_refresh(cache: &str) {
    #[cfg(feature = "tracing")]
    tracing::debug!(target: "dogpile", cache, outcome = "early_refresh", "early refresh claimed");
    #[cfg(not(feature = "tracing"))]
    let _ = cache;
}

/// A failure put its key in back-off (`retry_backoff`): no attempt until it passes.
#[inline(always)]
pub(crate) fn backing_off(cache: &str) {
    #[cfg(feature = "tracing")]
    tracing::info!(target: "dogpile", cache, outcome = "backing_off", "key backing off after a failure");
    #[cfg(not(feature = "tracing"))]
    let _ = cache;
}

/// A creation was answered by the fleet tier: the value was taken from it (created by
/// another process), not made by the creator here.
#[inline(always)]
pub(crate) fn from_tier(cache: &str, started: &Started, stale: bool) {
    #[cfg(feature = "tracing")]
    tracing::debug!(
        target: "dogpile",
        cache,
        outcome = "from tier",
        duration_ms = millis(started),
        stale_served = stale,
        "value taken from the fleet tier",
    );
    #[cfg(not(feature = "tracing"))]
    let _ = (cache, started, stale);
}

/// How a creation failed.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(crate) enum Failure {
    /// The creator returned `Err` of type `E`.
    Error(&'static str),
    /// The creator panicked.
    Panic,
    /// The creator's future was dropped before it finished.
    Cancelled,
}

/// A creation failed: its value was not stored. `stale` is whether a stale value
/// exists (it is kept, R5); `stale_if_error` whether the caller gets it instead.
#[inline(always)]
pub(crate) fn failed(
    cache: &str,
    started: &Started,
    failure: Failure,
    stale: bool,
    stale_if_error: bool,
) {
    #[cfg(feature = "tracing")]
    {
        let (outcome, error) = match failure {
            Failure::Error(type_name) => ("error", take_note(type_name)),
            Failure::Panic => ("panic", "the creator panicked".to_string()),
            Failure::Cancelled => (
                "cancelled",
                "the creator's future was dropped before it finished".to_string(),
            ),
        };
        tracing::warn!(
            target: "dogpile",
            cache,
            outcome,
            error = %error,
            duration_ms = millis(started),
            stale_served = stale,
            stale_if_error = stale && stale_if_error,
            "creation failed",
        );
    }
    #[cfg(not(feature = "tracing"))]
    let _ = (cache, started, failure, stale, stale_if_error);
}

/// `E`'s name, for [`Failure::Error`]; not computed without the feature.
#[inline(always)]
#[cfg_attr(not(feature = "tracing"), allow(clippy::extra_unused_type_parameters))]
pub(crate) fn error_type<E>() -> &'static str {
    #[cfg(feature = "tracing")]
    return std::any::type_name::<E>();
    #[cfg(not(feature = "tracing"))]
    ""
}

/// A batch of `evicted` entries left the cache, for `reason`.
#[inline(always)]
pub(crate) fn evicted(cache: &str, evicted: usize, reason: &'static str) {
    #[cfg(feature = "tracing")]
    if evicted > 0 {
        tracing::debug!(
            target: "dogpile",
            cache,
            evicted,
            reason,
            "entries evicted",
        );
    }
    #[cfg(not(feature = "tracing"))]
    let _ = (cache, evicted, reason);
}

// ---------------------------------------------------------------------------------
// Error notes: the `Display` of an error, carried from where its type is known

#[cfg(feature = "tracing")]
thread_local! {
    /// The last error a creator on this thread noted: its type's name and its text.
    /// A creation's failure is reported on the thread, and in the poll, where its
    /// creator returned, so the note is read right after it is written.
    static NOTE: RefCell<Option<(&'static str, String)>> = const { RefCell::new(None) };
}

/// The noted text of the error of type `type_name`, or the type's name.
#[cfg(feature = "tracing")]
fn take_note(type_name: &'static str) -> String {
    match NOTE.with(|note| note.borrow_mut().take()) {
        Some((noted, text)) if noted == type_name => text,
        _ => format!("an error of type {type_name}"),
    }
}

/// Notes an error's `Display` for the failure event the runtime is about to emit.
#[inline(always)]
fn note<E: Display>(error: &E) {
    #[cfg(feature = "tracing")]
    if tracing::enabled!(target: "dogpile", tracing::Level::WARN) {
        let text = error.to_string();
        NOTE.with(|note| *note.borrow_mut() = Some((std::any::type_name::<E>(), text)));
    }
    #[cfg(not(feature = "tracing"))]
    let _ = error;
}

/// Passes a creator's `Result` through, noting its error's `Display` (if the error
/// type has one) for the failure event. For the `#[dogpile]` expansion, where the
/// error's type is known: `$crate::__note_error!(body_fn(args))`, or
/// `$crate::__note_error!(body_fn(args).await)` inside an async creator.
///
/// ```
/// let outcome: Result<u8, &str> = dogpile::__note_error!(Err("backend down"));
/// assert_eq!(outcome, Err("backend down"));
/// struct Opaque;
/// let outcome: Result<u8, Opaque> = dogpile::__note_error!(Err(Opaque)); // no Display: fine
/// assert!(outcome.is_err());
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __note_error {
    ($result:expr) => {{
        let result = $result;
        if let ::core::result::Result::Err(error) = &result {
            #[allow(unused_imports)]
            use $crate::__private::{NoteDisplay as _, NoteNothing as _};
            // The borrows pick `NoteDisplay` when the error has `Display`.
            #[allow(clippy::needless_borrow)]
            (&&$crate::__private::ErrorNote(error)).note();
        }
        result
    }};
}

/// An error a creator is about to return, to be noted for the failure event if its
/// type implements `Display` (and ignored if not), the way [`__note_error!`] does:
///
/// ```
/// use dogpile::__private::{ErrorNote, NoteDisplay as _, NoteNothing as _};
///
/// struct Opaque;
/// (&&ErrorNote(&"backend down")).note(); // noted: `&str` is `Display`
/// (&&ErrorNote(&Opaque)).note(); // compiles, notes nothing
/// ```
pub struct ErrorNote<'a, E>(pub &'a E);

/// The preferred way to note: through `Display`.
pub trait NoteDisplay {
    /// Notes the error's `Display`.
    fn note(&self);
}

impl<E: Display> NoteDisplay for &ErrorNote<'_, E> {
    #[inline(always)]
    fn note(&self) {
        note(self.0);
    }
}

/// The fallback for an error without `Display`: nothing to note.
pub trait NoteNothing {
    /// Does nothing.
    fn note(&self);
}

impl<E> NoteNothing for ErrorNote<'_, E> {
    #[inline(always)]
    fn note(&self) {}
}

#[cfg(test)]
mod tests {
    /// Without the feature, a creation carries nothing for tracing.
    #[test]
    #[cfg(not(feature = "tracing"))]
    fn started_is_zero_sized_without_the_feature() {
        assert_eq!(std::mem::size_of::<super::Started>(), 0);
    }

    /// With it, a noted error of another type is not mistaken for this one's.
    #[test]
    #[cfg(feature = "tracing")]
    fn a_note_is_used_only_for_an_error_of_its_type() {
        // `note` writes only when a subscriber wants the event.
        struct All;
        impl tracing::Subscriber for All {
            fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
                true
            }
            fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
                tracing::span::Id::from_u64(1)
            }
            fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
            fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
            fn event(&self, _: &tracing::Event<'_>) {}
            fn enter(&self, _: &tracing::span::Id) {}
            fn exit(&self, _: &tracing::span::Id) {}
        }
        tracing::subscriber::with_default(All, || {
            super::note(&"down");
            let other = super::take_note(std::any::type_name::<String>());
            assert_eq!(other, "an error of type alloc::string::String");
            super::note(&"down");
            assert_eq!(super::take_note(std::any::type_name::<&str>()), "down");
            assert_eq!(
                super::take_note(std::any::type_name::<&str>()),
                "an error of type &str",
                "a note is used once"
            );
        });
    }
}
