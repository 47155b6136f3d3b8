//! A value with the instant its lifetime ends (R6) and its invalidation flag (R7), in
//! one word beside it.

use crate::freshness::{Freshness, Policy};
use std::num::NonZeroU64;

/// A value and the instant its lifetime ends: when its creation finished plus its
/// lifetime (R6), in clock nanoseconds.
#[derive(Clone, Debug)]
pub(crate) struct Stamped<V> {
    pub(crate) value: V,
    pub(crate) stamp: Stamp,
}

/// The expiry in the low 63 bits, never zero, and the soft-invalidation flag (R7: stale
/// whatever its age) in the top bit. Nonzero, so that `Option<Stamped<V>>` needs no tag
/// of its own: a cache entry of a `u64` is 16 bytes, not 24. Apart from the value, so
/// that what reads only the stamp is built once, not once per value type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp(NonZeroU64);

/// The top bit of a stamp: invalidated.
const INVALIDATED: u64 = 1 << 63;
/// The largest expiry a stamp holds: a lifetime that never ends.
const NEVER: u64 = INVALIDATED - 1;

impl Stamp {
    /// A lifetime that ends at `expires`. An instant at or past 2^63 - 1 ns (292 years
    /// from the clock's origin) reads as never; instant 0 as 1 ns.
    pub(crate) fn new(expires: u64) -> Self {
        let expires = expires.clamp(1, INVALIDATED - 1);
        Stamp(NonZeroU64::new(expires).unwrap_or(NonZeroU64::MIN))
    }

    #[inline]
    pub(crate) fn expires(self) -> u64 {
        match self.0.get() & !INVALIDATED {
            NEVER => u64::MAX,
            expires => expires,
        }
    }

    #[inline]
    pub(crate) fn invalidated(self) -> bool {
        self.0.get() & INVALIDATED != 0
    }

    /// R7: stale from now on, whatever its age.
    pub(crate) fn invalidate(&mut self) {
        self.0 |= INVALIDATED;
    }
}

impl<V> Stamped<V> {
    /// A value whose lifetime ends at `expires` (see [`Stamp::new`]).
    pub(crate) fn new(value: V, expires: u64) -> Self {
        Stamped {
            value,
            stamp: Stamp::new(expires),
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
        self.stamp.expires()
    }

    #[inline]
    pub(crate) fn invalidated(&self) -> bool {
        self.stamp.invalidated()
    }

    /// R7: stale from now on, whatever its age.
    pub(crate) fn invalidate(&mut self) {
        self.stamp.invalidate();
    }
}

impl Policy {
    /// Whether a value of this stamp is fresh at `now`: the hit path's test, inlined.
    #[inline]
    pub(crate) fn is_fresh(&self, stamp: Stamp, now: u64) -> bool {
        self.classify(stamp.expires(), stamp.invalidated(), now) == Freshness::Fresh
    }

    /// What a value of this stamp is at `now`.
    pub(crate) fn of(&self, stamp: Stamp, now: u64) -> Freshness {
        self.classify(stamp.expires(), stamp.invalidated(), now)
    }
}
