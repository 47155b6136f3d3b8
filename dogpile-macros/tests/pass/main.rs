//! The attribute's accepted inputs, one module per option or shape: each compiles under
//! `deny(warnings)` (the expansion adds no warning) and its test runs the memoized fns.
//! Rejected inputs are the trybuild suite's (`tests/ui.rs`); `crate = ..` has its own
//! test crate (`tests/crate_path.rs`), since a renamed dependency is named from a
//! crate's root.
#![deny(warnings)]
// The cases spell their inputs as users may write them (explicit lifetimes, a clock
// expression with commas, an `async fn` called only to see that it compiles).
#![allow(
    clippy::let_underscore_future,
    clippy::needless_lifetimes,
    clippy::unnecessary_literal_unwrap
)]

mod associated;
mod async_fn;
mod background;
mod batch;
mod capacity;
mod clock;
mod freshness;
mod key;
mod methods;
mod name;
mod result;
mod shared;
mod signatures;
mod skip_none;
mod stale_if_error;
mod sync_readers;
mod ttl;
