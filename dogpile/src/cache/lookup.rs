//! The forms a key comes in: owned ([`Owned`]), borrowed by [`KeyRef`] (`&Q`), or by
//! `Borrow` ([`ByBorrow`]); each hashes as the owned key and compares with a stored one.

use crate::key::KeyRef;
use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};

/// The map's hasher: foldhash's fast hasher (what `hashbrown` uses by default), seeded
/// per process. It hashes a `u64` or a short string several times faster than std's
/// SipHash, which shows on the hit path; borrowed lookups hash with the same hasher
/// through `DashMap::hash_usize`.
pub(crate) type Hasher = foldhash::fast::RandomState;

/// A key as a call was given it: owned, or borrowed (see [`KeyRef`]). A call finds,
/// reads and writes its entry by the key as given; only a call that inserts an entry (or
/// hands a background refresh its own copy, or asks a fleet tier) builds an owned key.
pub(crate) trait Lookup<K>: KeyLookup<K> + Clone {
    /// The owned key, built.
    fn to_key(&self) -> K;

    /// The owned key, as it is when it is one.
    fn into_key(self) -> K;
}

/// An owned key, for [`Lookup`].
#[derive(Clone)]
pub(crate) struct Owned<K>(pub(crate) K);

impl<K: Hash + Eq + Clone> Lookup<K> for Owned<K> {
    fn to_key(&self) -> K {
        self.0.clone()
    }

    fn into_key(self) -> K {
        self.0
    }
}

impl<K: Hash + Eq, Q: KeyRef<K> + ?Sized> Lookup<K> for &Q {
    fn to_key(&self) -> K {
        KeyRef::to_key(*self)
    }

    fn into_key(self) -> K {
        KeyRef::to_key(self)
    }
}

/// A key as far as finding its entry goes: by hash and comparison. What `get` and
/// `contains_key` need, and all a borrowed `Q` with `K: Borrow<Q>` can offer.
pub(crate) trait KeyMatch<K> {
    /// The key's hash by the map's hasher: the same as its owned form's.
    fn hash_by(&self, hasher: &Hasher) -> u64;

    /// Whether `stored` is this key.
    fn is(&self, stored: &K) -> bool;
}

/// A key as the slow path takes it behind `dyn Slots`: enough to find its entry, and to
/// build the owned key.
pub(crate) trait KeyLookup<K>: KeyMatch<K> {
    /// The owned key, built.
    fn owned(&self) -> K;
}

impl<K: Hash + Eq + Clone> KeyMatch<K> for Owned<K> {
    fn hash_by(&self, hasher: &Hasher) -> u64 {
        hasher.hash_one(&self.0)
    }

    fn is(&self, stored: &K) -> bool {
        self.0 == *stored
    }
}

impl<K: Hash + Eq + Clone> KeyLookup<K> for Owned<K> {
    fn owned(&self) -> K {
        self.0.clone()
    }
}

impl<K, Q: KeyRef<K> + ?Sized> KeyMatch<K> for &Q {
    fn hash_by(&self, hasher: &Hasher) -> u64 {
        hasher.hash_one(*self)
    }

    fn is(&self, stored: &K) -> bool {
        self.eq_key(stored)
    }
}

impl<K, Q: KeyRef<K> + ?Sized> KeyLookup<K> for &Q {
    fn owned(&self) -> K {
        KeyRef::to_key(*self)
    }
}

impl<K> KeyMatch<K> for &dyn KeyLookup<K> {
    fn hash_by(&self, hasher: &Hasher) -> u64 {
        (**self).hash_by(hasher)
    }

    fn is(&self, stored: &K) -> bool {
        (**self).is(stored)
    }
}

impl<K> KeyLookup<K> for &dyn KeyLookup<K> {
    fn owned(&self) -> K {
        (**self).owned()
    }
}

/// A key by `Borrow`, as `Cache::get`, `invalidate` and `remove` take it: the map
/// finds it by the same hash and equality as the owned key (`Borrow`'s contract).
pub(crate) struct ByBorrow<'a, Q: ?Sized>(pub(crate) &'a Q);

impl<K: Borrow<Q>, Q: Hash + Eq + ?Sized> KeyMatch<K> for ByBorrow<'_, Q> {
    fn hash_by(&self, hasher: &Hasher) -> u64 {
        hasher.hash_one(self.0)
    }

    fn is(&self, stored: &K) -> bool {
        stored.borrow() == self.0
    }
}

impl<K, Q> KeyLookup<K> for ByBorrow<'_, Q>
where
    K: Borrow<Q>,
    Q: Hash + Eq + ToOwned + ?Sized,
    Q::Owned: Into<K>,
{
    fn owned(&self) -> K {
        self.0.to_owned().into()
    }
}

/// A key behind `dyn Slots`.
impl<K: Hash + Eq> Lookup<K> for &dyn KeyLookup<K> {
    fn to_key(&self) -> K {
        self.owned()
    }

    fn into_key(self) -> K {
        self.owned()
    }
}
