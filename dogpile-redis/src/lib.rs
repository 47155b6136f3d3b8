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
//!   callers elsewhere wait for its value (woken by a notification, and claiming again
//!   at most every 250 ms) for as long as its lease is being renewed, however long the
//!   creation takes, up to the cache's `wait_at_most` (30 s unless set). Only a lease
//!   that runs out, or that limit, lets another caller create.
//! - **F3 L1 first.** A fresh L1 value never touches Redis; a process without one takes
//!   it from Redis with its age as Redis knows it.
//! - **F4 one clock.** Creation instants are Redis `TIME`: freshness never depends on
//!   the clocks of the application machines.
//! - **F5 leases, not locks.** A claim is a lease with an owner token, renewed while the
//!   creator runs; a dead or frozen owner's lease runs out. A publish by an owner that
//!   lost its lease, or that raced an invalidate or remove (the key's generation moved),
//!   is rejected.
//! - **F6 fleet-wide invalidation.** `invalidate` (soft) and `remove` (hard) act on
//!   Redis and are pushed to every process over pub/sub; so do `invalidate_all` (soft)
//!   and `clear` (hard), for every key of the scope at once (see below).
//! - **F7 Redis is optional at run time.** Every connect and round trip has a deadline
//!   ([`RedisTier::timeout`]); after a failure, calls fail at once for a short back-off.
//!   The cache then follows its local rules.
//! - **F8 failure releases at once.** A failed creator's lease is deleted at once, and
//!   waiters elsewhere are told. With the cache's `retry_backoff`, the lease turns into
//!   a back-off marker instead, which nobody owns and which runs out after the pause
//!   (sized by the key's failures in a row, fleet-wide): no process tries the key again
//!   before then, and meanwhile every process serves its stale value, as the claimant's
//!   own process does.
//!
//! Each value travels with its lifetime (R6: the cache's `ttl`, or what its `ttl_with`
//! says for the value): a claim judges freshness by the stored value's own lifetime,
//! by Redis's clock (F4). A cache with `refresh_ahead` claims a value that has less than
//! that left: the lease makes it one early refresh per lifetime, fleet-wide.
//!
//! # In Redis
//!
//! Each key `k` of namespace `ns` uses two Redis keys sharing the Cluster hash tag
//! `{ns:fingerprint}` (SHA-1 of the name of `k`'s type and `k`'s CBOR encoding, so
//! `UserId(7)` and `OrderId(7)` stay apart although they encode alike): a hash with the
//! value, its creation time, its lifetime, a generation and the failures in a row, and
//! the lease (or a back-off marker). A value stored without a lifetime (by a build
//! before lifetimes travelled) is a miss, logged once per process, and replaced by the
//! next creation. Every step is one Lua script on those
//! two keys, so it is atomic and runs on one Cluster node. Notifications go to the
//! channel `dogpile:ns:events`. Slots untouched for a day expire. A fn memoized with
//! `#[dogpile(shared = tier)]` uses the namespace `ns:{module path}::{fn}`
//! ([`RedisTier::scoped`]), so fns sharing a tier keep their keys apart; a `:` inside a
//! namespace given to [`RedisTier::namespace`] is written `%3A`, so no namespace can
//! stand for another namespace's scope. Renaming or moving a key type changes its
//! fingerprints: its keys start cold once.
//!
//! Each cache's notification listener remembers up to 131,072 keys it saw go through
//! the tier (to map a message's fingerprint back to its key). Past that, the key seen
//! longest ago is forgotten and its local copy made stale (its next call asks Redis
//! once): never the whole L1 at once.
//!
//! # Fleet-wide `invalidate_all` and `clear`
//!
//! `Cache::invalidate_all` and `Cache::clear` reach every process and every value of
//! the cache's scope (its namespace) in one script, whatever the number of keys
//! ([`SharedTier::invalidate_all`](dogpile::SharedTier::invalidate_all)). Each scope has
//! two epochs in Redis, a hash `dogpile:{ns}:e` with counters `s` (soft) and `h` (hard):
//! `invalidate_all` raises `s`, `clear` raises both, and the script announces the new
//! pair on the scope's channel. Every value is stored with the pair its claim was
//! granted under. A slot's script never reads the epochs' key (it may live on another
//! Cluster node): each claim and lookup carries the pair its process knows, and
//!
//! - a value of an older `h` is absent: the key is cold (R1), callers wait for one
//!   creation fleet-wide (F2);
//! - a value of an older `s` is stale, aged at least its lifetime (R7, R3): one
//!   caller refreshes it while the others are served it (F1);
//! - a creation whose claim came before an `invalidate_all` or `clear` publishes a
//!   value that already counts as invalidated or cleared (F5); its caller keeps it.
//!
//! Each process's L1 reacts to the announcement as to its own `invalidate_all` or
//! `clear`. The pair only grows in a process, which takes the larger of what it knew
//! and what it hears: the announcement; a read when its first claim runs (at
//! connect) and each time its notification link comes up; the pair stored beside
//! any value a claim returns. A Redis that lost the pair (restarted empty,
//! `FLUSHALL`) is given it back by the next link that comes up.
//!
//! A process whose link is down when the announcement is made misses it until the
//! link is back: a lost link is noticed within about a second (F6, "notification
//! link lost" below) and retried every 200 ms (every 5 s when Redis refuses the
//! subscription); when it comes up, the pair is read again and the L1 invalidated or
//! cleared. Until then its L1 copies are served by their own freshness (after a lost
//! link they are distrusted anyway, each checked once in Redis), and its claims carry
//! the older pair: a value stored before the `invalidate_all` or `clear` can still be
//! served to it, a value stored after it is served with its pair, which the process
//! learns. `invalidate_all` and `clear` return once Redis has applied the script, or
//! its deadline has passed (F7: then only this process's copies changed).
//! [`SharedTier::lookup`](dogpile::SharedTier::lookup) treats a cleared value as
//! absent, and reports a value invalidated by `invalidate_all` with its age since
//! creation (a lookup carries no freshness judgement; a claim ages it to its lifetime).
//!
//! To look a key up fleet-wide without creating, call
//! [`SharedTier::lookup`](dogpile::SharedTier::lookup) on the tier; `Cache::get` reads
//! the process's own copy only.
//!
//! # Batches
//!
//! A batch (`Cache::get_many_with` and its kin) takes each step of the fleet tier for
//! all its keys at once: one script claims them
//! ([`SharedTier::claim_many`](dogpile::SharedTier::claim_many)), one publishes the
//! values its creator made
//! ([`SharedTier::publish_many`](dogpile::SharedTier::publish_many)), one releases
//! every lease of a failed creator call
//! ([`SharedTier::release_many`](dogpile::SharedTier::release_many), F8), and a wait
//! for the cold keys other processes create claims them again with one script per
//! notification or recheck (F2); while its creator runs, its leases, due together,
//! are renewed together (F5). Each script runs the same steps as the single-key
//! scripts, for each slot in turn: each key keeps its own lease (F5), its own
//! freshness, its own events (F6). On a Redis Cluster the keys are grouped by the node
//! that owns their hash slot, one script per node: it declares its first key only (a
//! Cluster refuses a script that declares keys of several hash slots) and reaches the
//! others, all on its node, as arguments (`#!lua flags=allow-cross-slot-keys`, Redis
//! 7). A node that fails fails its keys only (F7). So a batch costs Redis a few round
//! trips per node, whatever its size: with 4 processes of 4 threads asking overlapping
//! batches of 8 keys, about 1.1 scripts per batch that missed its local copies (the
//! `fleet_batch` test); on a three-node Cluster, a batch of 60 cold keys costs each
//! node one claim script and one publish script (the `cluster` test); a batch of 20
//! keys whose creator outlives its 300 ms leases three times over, with another
//! process waiting for it, 23 scripts in all.
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
//!
//! # Under faults
//!
//! What the tier promises when things go wrong, each backed by a test on real
//! `redis-server` processes. "The deadline" is [`RedisTier::timeout`] (250 ms unless
//! set); "local rules" are R1–R11 of one process, without sharing (F7). Every failure
//! below is counted by cause in [`RedisTier::failures`] and logged through `tracing`
//! (`WARN`) at most once per cause and 10 s.
//!
//! | fault | what callers see | bound |
//! |---|---|---|
//! | Redis down, refusing connections | local rules; sharing resumes by itself | a call waits at most one deadline; after a failure, calls fail at once for 250 ms |
//! | Redis frozen (`SIGSTOP`, `DEBUG SLEEP`, overload) | local rules | a call, including a new connection's whole handshake (TCP, TLS, `AUTH`, `SELECT`), returns within one deadline |
//! | a pooled connection closed by the server (`CLIENT KILL`, `timeout`, a load balancer) | nothing: the call runs again on a new connection | one reconnect; no back-off of the tier |
//! | Redis restarted empty, `FLUSHALL` | keys turn cold in Redis; local copies are distrusted when the notification link comes back, which also writes the scope's epochs back | one creation per key fleet-wide after it, per F2 |
//! | `SCRIPT FLUSH` | nothing: a script is loaded again on its first `NOSCRIPT` | one extra round trip |
//! | a value key of another type, a generation or time that is no number | local rules for that key, counted as `WRONGTYPE` and so on | until [`Cache::remove`](dogpile::Cache::remove) or `invalidate` of the key, which clear the foreign data |
//! | a creation time more than 1 s in Redis's future (R1) | the value counts as stale (refreshed; with `stale_while_revalidate`, cold) | never served as fresh |
//! | a lease without expiry (R2) | callers wait as for any lease | it gets one lease's expiry at the next claim |
//! | wrong password, an ACL user without the namespace's keys or scripts | local rules; [`RedisTier::ping`] names the cause | retried after 250 ms by calls, every 5 s by the notification link; local copies are kept |
//! | an ACL user without the channel (Redis 7's `resetchannels` default) | values are shared, but invalidate and remove made elsewhere do not reach this process | [`RedisTier::ping`] answers [`Error::Notifications`]; retried every 5 s |
//! | notification link lost | local copies that came from Redis are checked again (one claim each) | link retried every 200 ms |
//! | a publish fenced by an invalidate, a remove or the value's eviction | the caller keeps its value; the lease ends at once (F8) | waiters elsewhere are woken at once |
//! | `maxmemory` evicting keys (R7) | an evicted value is a cold key; an evicted lease lets a second caller create: one extra creation per evicted lease | use `allkeys-lru` or `volatile-lru` with room to spare, never `volatile-ttl` (it evicts the short-lived leases first), or a Redis of its own |
//!
//! With 64 callers in one process, the tier keeps up to 256 idle connections, so a
//! process opens about as many connections as it has concurrent callers, not one per
//! call.
//!
//! Creations per key within one ttl, fleet-wide: one (F1), plus what each fault near
//! it may add, added up when faults overlap: a fleet-wide remove two (the key turns
//! cold, and a creation in flight is fenced and made again), a worker killed or frozen
//! holding the lease one (it runs out, F5), an unusable tier one per process (the
//! local rules), Redis losing its data two per process (the local rules, then once
//! more when the notification link comes back and distrusts the local copies).
//!
//! The crate's soak (`tests/nemesis.rs`) checks all of this at once: 3 processes × 4
//! threads on 8 keys (ttl 1 s, `stale_while_revalidate` 1 s, lease 1 s), a fault every 0.5–1.5 s
//! (`SIGKILL` and `SIGSTOP` of workers, Redis killed and restarted empty, `CLIENT
//! KILL`, `SCRIPT FLUSH`, `FLUSHALL`, a 300 ms stall, foreign data, memory filled under
//! `maxmemory`) and a fleet-wide remove every 0.1–0.3 s. Over 60 s on a 2-core machine
//! (`DOGPILE_SOAK_SECS=60 cargo test -p dogpile-redis --test nemesis`):
//! 617,599 calls, 779 creations (1.6 per key per ttl on average, never more than one
//! with no fault near), the longest call 272 ms (bound 4 s), the oldest value served
//! 1.94 s after its creator finished (ttl + `stale_while_revalidate` = 2 s), no other key's value,
//! every applied remove seen by every live process within 0.3 s: no violation. Over
//! ten minutes (`DOGPILE_SOAK_SECS=600`): 5,960,450 calls, 7,239 creations (1.51 per key
//! per ttl), 478 faults, 2,758 removes, the longest call 303 ms, the oldest value
//! served 2.01 s after its creator finished (its publish stamps it in Redis a moment
//! later): no violation.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod codec;
mod conn;
mod epoch;
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
