//! Test and demo support for the dogpile workspace (not published).
//!
//! - [`common`]: thread helpers whose every wait is bounded (a gate, a counter,
//!   `bounded`, `eventually`, `join_all`) and a watchdog for the whole test binary.
//! - [`process`]: the multi-process tests' worker processes, each killed on drop.
//! - [`quantiles`]: quantiles of sorted latencies and their human format.
//! - `redis` (feature `redis`): the one `redis-server` launcher (a server, a
//!   three-node cluster, a TLS-only server with feature `tls`) and the harness of the
//!   test binaries that need one, which skips those tests, loudly, where no
//!   `redis-server` is installed (`redis_tests!`).
//! - `chart` (feature `chart`): the demos' latency chart (SVG).
//! - `herd` (feature `herd`): the herd demos' measurement, table, checks and chart.
//! - `web_app` (feature `web`): the service behind HTTP of the web demo and its test.

pub mod common;
pub mod process;
pub mod quantiles;

#[cfg(feature = "chart")]
pub mod chart;
#[cfg(feature = "herd")]
pub mod herd;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "web")]
pub mod web_app;
