//! A value with the instant its lifetime ends (R6) and its invalidation flag (R7), in
//! one word beside it.

use crate::freshness::{Freshness, Policy};
use std::num::NonZeroU64;

/// A value and the instant its lifetime ends: when its creation finished plus its
/// lifetime (R6), in clock nanoseconds.
#[derive(Clone, Debug)]
pub(crate) struct Stamped<V> {
    pub(crate) value: V,
    /// The expiry in the low 63 bits, never zero, and the soft-invalidation flag (R7:
    /// stale whatever its age) in the top bit. Nonzero, so that `Option<Stamped<V>>`
    /// needs no tag of its own: a cache entry of a `u64` is 16 bytes, not 24.
    stamp: NonZeroU64,
}

/// The top bit of a stamp: invalidated.
const INVALIDATED: u64 = 1 << 63;
/// The largest expiry a stamp holds: a lifetime that never ends.
const NEVER: u64 = INVALIDATED - 1;

impl<V> Stamped<V> {
    /// A value whose lifetime ends at `expires`. An instant at or past 2^63 - 1 ns (292
    /// years from the clock's origin) reads as never; instant 0 as 1 ns.
    pub(crate) fn new(value: V, expires: u64) -> Self {
        let expires = expires.clamp(1, INVALIDATED - 1);
        Stamped {
            value,
            stamp: NonZeroU64::new(expires).unwrap_or(NonZeroU64::MIN),
        }
    }

    /// The same stamp on `f` of the value.
    pub(crate) fn map<U>(self, f: impl FnOnce(V) -> U) -> Stamped<U> {
        Stamped {
            value: f(self.value),
            stamp: self.stamp,
        }
    }

    #[inline]
    pub(crate) fn expires(&self) -> u64 {
        match self.stamp.get() & !INVALIDATED {
            NEVER => u64::MAX,
            expires => expires,
        }
    }

    #[inline]
    pub(crate) fn invalidated(&self) -> bool {
        self.stamp.get() & INVALIDATED != 0
    }

    /// R7: stale from now on, whatever its age.
    pub(crate) fn invalidate(&mut self) {
        self.stamp |= INVALIDATED;
    }
}

impl Policy {
    #[inline]
    pub(crate) fn is_fresh<V>(&self, stamped: &Stamped<V>, now: u64) -> bool {
        self.classify(stamped.expires(), stamped.invalidated(), now) == Freshness::Fresh
    }

    /// What `stamped` is at `now`.
    #[inline]
    pub(crate) fn of<V>(&self, stamped: &Stamped<V>, now: u64) -> Freshness {
        self.classify(stamped.expires(), stamped.invalidated(), now)
    }
}
