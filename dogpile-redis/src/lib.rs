//! The fleet tier for [`dogpile`]: one refresh per key per expiry across many
//! processes, on Redis.
//!
//! A service that runs as N processes refreshes each key N times per expiry if every
//! process keeps only its own copy. [`RedisTier`] shares the value, its creation time
//! and the refresh claim through Redis; each process keeps its in-process
//! `dogpile::Cache` as the first level (L1). `RedisTier` implements
//! [`dogpile::SharedTier`], the cache's seam to a shared second level.
//!
//! ```
//! use dogpile_redis::RedisTier;
//! use std::time::Duration;
//!
//! let tier = RedisTier::open("redis://127.0.0.1:6379/0")? // parsed only, not connected
//!     .namespace("render")
//!     .lease(Duration::from_secs(10));
//! # let _ = tier;
//! # Ok::<(), dogpile_redis::Error>(())
//! ```
//!
//! # The rules of a shared slot
//!
//! They extend the rules of one slot (R1–R11 in `dogpile`) to the fleet.
//!
//! - **F1 one refresh per expiry, fleet-wide.** When the shared value goes stale, one
//!   caller in the fleet runs the creator; every other caller returns the stale value.
//! - **F2 cold, fleet-wide.** With no value anywhere, one caller in the fleet creates;
//!   callers elsewhere wait (bounded, woken by a notification) for its value.
//! - **F3 L1 first.** A fresh L1 value never touches Redis; a process without one takes
//!   it from Redis with its age as Redis knows it.
//! - **F4 one clock.** Creation instants are Redis `TIME`: freshness never depends on
//!   the clocks of the application machines.
//! - **F5 leases, not locks.** A claim is a lease with an owner token, renewed while the
//!   creator runs; a dead or frozen owner's lease runs out. A publish by an owner that
//!   lost its lease, or that raced an invalidate or remove (the key's generation moved),
//!   is rejected.
//! - **F6 fleet-wide invalidation.** `invalidate` (soft) and `remove` (hard) act on
//!   Redis and are pushed to every process over pub/sub.
//! - **F7 Redis is optional at run time.** Every connect and round trip has a deadline
//!   ([`RedisTier::timeout`]); after a failure, calls fail at once for a short back-off.
//!   The cache then follows its local rules.
//! - **F8 failure releases at once.** A failed creator's lease is deleted at once, and
//!   waiters elsewhere are told.
//!
//! # In Redis
//!
//! Each key `k` of namespace `ns` uses two Redis keys sharing the Cluster hash tag
//! `{ns:fingerprint}` (SHA-1 of `k`'s CBOR encoding): a hash with the value, its
//! creation time and a generation, and the lease. Every step is one Lua script on those
//! two keys, so it is atomic and runs on one Cluster node. Notifications go to the
//! channel `dogpile:ns:events`. Slots untouched for a day expire. A fn memoized with
//! `#[dogpile(shared = tier)]` uses the namespace `ns:{module path}::{fn}`
//! ([`RedisTier::scoped`]), so fns sharing a tier keep their keys apart.
//!
//! # On a Redis Cluster
//!
//! `RedisTier::open_cluster` (feature `cluster`, on by default) takes the URLs of
//! some nodes. Each call goes to the node that owns its slot's hash tag, under the same
//! deadline (F7); the notification link subscribes through one node (pub/sub messages
//! reach every node of a cluster) and moves to the next one if that node goes away,
//! resetting the local copies it may have missed news of (F6). A node that cannot be
//! reached backs off alone: calls for its slots fall back to the local rules for the
//! back-off, then try again, while keys of the other nodes stay shared (F7).
//!
//! # Trust
//!
//! Keys and values are CBOR (self-describing: a value written by another build of the
//! service decodes, or is a miss). What Redis returns is data, never code: a value over
//! [`RedisTier::max_value_bytes`] is not even transferred, and a corrupt, foreign or
//! oversized value is a miss, logged with `tracing`, never a panic. Credentials come
//! from the URL (`redis://user:pass@host/db`); `rediss://` uses TLS (feature `tls`,
//! on by default) with the public root certificates, or only a private certificate
//! authority with `RedisTier::open_with_root_ca`. A server whose certificate is not
//! trusted is never talked to, and refused credentials make the tier back off as a lost
//! server does: the cache follows its local rules (F7) and [`RedisTier::ping`] names
//! the cause. Errors and `Debug` output never show the password.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod codec;
mod conn;
mod error;
mod events;
mod health;
mod open;
mod protocol;
mod renew;
mod scripts;
mod shared;
#[cfg(feature = "cluster")]
mod slots;
mod sync;
mod tier;

pub use crate::error::Error;
pub use crate::health::Failure;
pub use crate::tier::RedisTier;
