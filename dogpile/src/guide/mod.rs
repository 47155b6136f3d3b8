//! The guide: what the README leaves out, for readers who want the details.
//!
//! - [`testing`]: testing code that uses dogpile, each test with a clock of its own
//!   (feature `test-clock`).
//! - [`performance`]: what a hit costs against its peers, memory per entry, compile
//!   time per memoized fn.
//! - [`eviction`]: how a bounded cache chooses what to evict, and its miss ratios.
//! - [`fleet`]: the fleet tier's costs per call, its scaling, Redis Cluster, TLS and
//!   credentials.
//!
//! Each chapter is a Markdown file beside this module; its Rust examples are doctests.

pub mod eviction {
    #![doc = include_str!("eviction.md")]
}

pub mod fleet {
    #![doc = include_str!("fleet.md")]
}

#[cfg(any(doc, all(feature = "test-clock", feature = "macros")))]
pub mod testing {
    #![doc = include_str!("testing.md")]
}

pub mod performance {
    #![doc = include_str!("performance.md")]
}
