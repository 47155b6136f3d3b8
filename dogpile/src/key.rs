//! [`KeyRef`]: borrowed forms of keys, so that a fresh hit builds no owned key.

use std::ffi::{OsStr, OsString};
use std::hash::Hash;
use std::path::{Path, PathBuf};

/// A borrowed form of a cache key `K`: `str` for `String`, `(&str, &u32)` for
/// `(String, u32)`. Looking up by a `KeyRef` allocates nothing; the owned key is built
/// only when the cache has to store one.
///
/// An implementation must hash exactly as the key it stands for (the contract of
/// [`Borrow`](std::borrow::Borrow)), which the provided ones do:
/// - `str` → `String`, `[T]` → `Vec<T>`, `Path` → `PathBuf`, `OsStr` → `OsString`;
/// - tuples of references `(&A, &B, ..)` (1 to 8 parts) → `(A::Owned, B::Owned, ..)`
///   for any `A: ToOwned + Hash + Eq`, and `()` → `()`. This is the form the
///   `#[dogpile]` attribute uses for a function's arguments.
///
/// # Example
///
/// ```
/// use dogpile::Cache;
/// use std::time::Duration;
///
/// let cache: Cache<(String, u32), usize> = Cache::new(Duration::from_secs(60));
/// let len = cache.entry_by_ref(&("page", &2)).get_with(|| 42);
/// assert_eq!(len, 42);
/// // The stored key is owned:
/// assert_eq!(cache.get_with(("page".to_string(), 2), || 0), 42);
/// ```
pub trait KeyRef<K>: Hash {
    /// Whether `key` is the owned form of `self`.
    ///
    /// ```
    /// use dogpile::KeyRef;
    /// assert!(("a", &1u8).eq_key(&("a".to_string(), 1u8)));
    /// ```
    fn eq_key(&self, key: &K) -> bool;

    /// The owned key, built when the cache must store one.
    ///
    /// ```
    /// use dogpile::KeyRef;
    /// let owned: (String, u8) = ("a", &1u8).to_key();
    /// assert_eq!(owned, ("a".to_string(), 1));
    /// ```
    fn to_key(&self) -> K;
}

macro_rules! unsized_key_ref {
    ($($borrowed:ty => $owned:ty),* $(,)?) => {$(
        impl KeyRef<$owned> for $borrowed {
            fn eq_key(&self, key: &$owned) -> bool {
                *self == **key
            }

            fn to_key(&self) -> $owned {
                self.to_owned()
            }
        }
    )*};
}

unsized_key_ref!(str => String, Path => PathBuf, OsStr => OsString);

impl<T: Clone + Hash + Eq> KeyRef<Vec<T>> for [T] {
    fn eq_key(&self, key: &Vec<T>) -> bool {
        *self == **key
    }

    fn to_key(&self) -> Vec<T> {
        self.to_vec()
    }
}

/// A reference to any key part keys by its owned form: `&str` by `String`, `&u64` by
/// `u64`. This is how a function with a single key argument (`fn user(id: u64)`) looks
/// its key up without a one-tuple: `cache.entry_by_ref(&&id).get_with(..)`.
///
/// ```
/// use dogpile::KeyRef;
/// let name = "ada";
/// assert!((&name).eq_key(&"ada".to_string()));
/// assert_eq!((&7u64).to_key(), 7);
/// ```
impl<A> KeyRef<A::Owned> for &A
where
    A: ?Sized + ToOwned + Hash + Eq,
{
    fn eq_key(&self, key: &A::Owned) -> bool {
        use std::borrow::Borrow;
        **self == *Borrow::<A>::borrow(key)
    }

    fn to_key(&self) -> A::Owned {
        (**self).to_owned()
    }
}

impl KeyRef<()> for () {
    fn eq_key(&self, _: &()) -> bool {
        true
    }

    fn to_key(&self) {}
}

macro_rules! tuple_key_ref {
    ($(($($part:ident $index:tt),+))*) => {$(
        impl<'a, $($part),+> KeyRef<($($part::Owned,)+)> for ($(&'a $part,)+)
        where
            $($part: ?Sized + ToOwned + Hash + Eq,)+
        {
            fn eq_key(&self, key: &($($part::Owned,)+)) -> bool {
                use std::borrow::Borrow;
                $(*self.$index == *Borrow::<$part>::borrow(&key.$index))&&+
            }

            fn to_key(&self) -> ($($part::Owned,)+) {
                ($(self.$index.to_owned(),)+)
            }
        }
    )*};
}

tuple_key_ref! {
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
    (A 0, B 1, C 2, D 3, E 4, F 5)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7)
}

#[cfg(test)]
mod tests {
    use super::KeyRef;
    use std::collections::hash_map::RandomState;
    use std::hash::BuildHasher;

    #[test]
    fn borrowed_tuples_hash_and_compare_like_their_owned_keys() {
        let state = RandomState::new();
        let owned = ("page".to_string(), 7u32, vec![1u8, 2]);
        let borrowed = ("page", &7u32, &[1u8, 2][..]);
        assert_eq!(state.hash_one(borrowed), state.hash_one(&owned));
        assert!(borrowed.eq_key(&owned));
        assert!(!("other", &7u32, &[1u8, 2][..]).eq_key(&owned));
        assert_eq!(borrowed.to_key(), owned);
        assert_eq!(state.hash_one("x"), state.hash_one("x".to_string()));
    }

    #[test]
    // The references are hashed on purpose: the cache hashes the `Q` it is given.
    #[allow(clippy::needless_borrows_for_generic_args)]
    fn a_reference_keys_by_its_owned_form() {
        let state = RandomState::new();
        let name: &str = "ada";
        // `&&str` for a `String` key: what a one-argument `fn f(name: &str)` looks up by.
        assert_eq!(state.hash_one(&name), state.hash_one("ada".to_string()));
        assert!((&name).eq_key(&"ada".to_string()));
        assert!(!(&name).eq_key(&"bob".to_string()));
        assert_eq!(KeyRef::<String>::to_key(&name), "ada");
        // `&u64` for a `u64` key, `&[u8]` for a `Vec<u8>` key.
        assert_eq!(state.hash_one(&7u64), state.hash_one(7u64));
        assert!((&7u64).eq_key(&7) && !(&7u64).eq_key(&8));
        let bytes: &[u8] = &[1, 2];
        assert_eq!(state.hash_one(&bytes), state.hash_one(vec![1u8, 2]));
        assert_eq!(KeyRef::<Vec<u8>>::to_key(&bytes), vec![1, 2]);
    }
}
