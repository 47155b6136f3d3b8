//! [`KeyForm`]: the one trait a key is looked up by, in any of its forms: owned
//! ([`Owned`]), borrowed by [`KeyRef`] (`&Q`), or by `Borrow` ([`ByBorrow`]). Each form
//! hashes as the owned key and compares with a stored one, as hashbrown's `Equivalent`
//! does, and builds the owned key when a call must store one.
//!
//! `Cache::get` and `contains_key` take any `Q` with `K: Borrow<Q>`, which cannot build
//! an owned key: they find their entry by hash and `Borrow` equality directly (see
//! `Core::get`).

use crate::key::KeyRef;
use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};

/// The map's hasher: foldhash's fast hasher (what `hashbrown` uses by default), seeded
/// per process. It hashes a `u64` or a short string several times faster than std's
/// SipHash, which shows on the hit path; borrowed lookups hash with the same hasher.
pub(crate) type Hasher = foldhash::fast::RandomState;

/// A key as a call was given it. A call finds, reads and writes its entry by the key as
/// given; only a call that inserts an entry (or hands a background refresh its own copy,
/// or asks a fleet tier) builds an owned key.
pub(crate) trait KeyForm<K> {
    /// The key's hash by the map's hasher: the same as its owned form's.
    fn hash_by(&self, hasher: &Hasher) -> u64;

    /// Whether `stored` is this key.
    fn is(&self, stored: &K) -> bool;

    /// The owned key, built.
    fn to_key(&self) -> K;

    /// The owned key, moved out when the form owns it.
    fn into_key(self) -> K
    where
        Self: Sized,
    {
        self.to_key()
    }
}

/// An owned key.
#[derive(Clone)]
pub(crate) struct Owned<K>(pub(crate) K);

impl<K: Hash + Eq + Clone> KeyForm<K> for Owned<K> {
    #[inline]
    fn hash_by(&self, hasher: &Hasher) -> u64 {
        hasher.hash_one(&self.0)
    }

    #[inline]
    fn is(&self, stored: &K) -> bool {
        self.0 == *stored
    }

    fn to_key(&self) -> K {
        self.0.clone()
    }

    fn into_key(self) -> K {
        self.0
    }
}

impl<K, Q: KeyRef<K> + ?Sized> KeyForm<K> for &Q {
    #[inline]
    fn hash_by(&self, hasher: &Hasher) -> u64 {
        hasher.hash_one(*self)
    }

    #[inline]
    fn is(&self, stored: &K) -> bool {
        self.eq_key(stored)
    }

    fn to_key(&self) -> K {
        KeyRef::to_key(*self)
    }
}

/// A key behind `dyn Slots`: the slow path is built once per key type, whatever form
/// its callers give the key in.
impl<K> KeyForm<K> for &dyn KeyForm<K> {
    fn hash_by(&self, hasher: &Hasher) -> u64 {
        (**self).hash_by(hasher)
    }

    fn is(&self, stored: &K) -> bool {
        (**self).is(stored)
    }

    fn to_key(&self) -> K {
        (**self).to_key()
    }
}

/// A key by `Borrow`, as `Cache::invalidate` and `remove` take it: found by the same hash
/// and equality as the owned key (`Borrow`'s contract), and owned by `ToOwned` and
/// `Into` for the fleet tier.
pub(crate) struct ByBorrow<'a, Q: ?Sized>(pub(crate) &'a Q);

impl<K, Q> KeyForm<K> for ByBorrow<'_, Q>
where
    K: Borrow<Q>,
    Q: Hash + Eq + ToOwned + ?Sized,
    Q::Owned: Into<K>,
{
    fn hash_by(&self, hasher: &Hasher) -> u64 {
        hasher.hash_one(self.0)
    }

    fn is(&self, stored: &K) -> bool {
        stored.borrow() == self.0
    }

    fn to_key(&self) -> K {
        self.0.to_owned().into()
    }
}
