//! The checks the `#[dogpile]` attribute's expansion states its bounds through (reached
//! as `__private::*`): one error per mistake in a key part, a value or an error type,
//! in the user's terms, at the type in the user's signature, and nothing more about it.

/// A key part's or the value's type as the generated code names it:
/// `<T as Checked<{ <T as KeyPart>::OK & <T as KeyShared>::OK }>>::Is`, which is `T`
/// once the checks in the braces pass. The checks come first: when `T` misses a
/// bound, rustc reports the check's own message once, at `T`, and the const is an
/// error; so is every type built from `Is` (the cache's, `<T as ToOwned>::Owned`,
/// every use of the cache), and rustc says nothing more about `T`.
pub trait Checked<const OK: bool> {
    /// `Self`, once the checks passed.
    type Is: ?Sized;
}
impl<T: ?Sized> Checked<true> for T {
    type Is = T;
}

// The checks of an owned key part `x: T` (and of a computed key's type): `KeyPart`
// and `KeyShared`; of a borrowed one `x: &T`, keyed by `<T as ToOwned>::Owned`:
// `KeyRefPart` and `KeyShared`; of the value: `ValueClone` and `ValueShared`; of the
// error type: `ErrorPart`. Each states what is missing in the user's terms; those
// that bundle bounds are implemented with `do_not_recommend`, so that rustc reports
// the bundle once, with its message, rather than each missing bound on its own.

/// The check of an owned key part `x: T`: `Hash + Eq + Clone + 'static`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is part of the memoized fn's key, so it must be `Hash + Eq + Clone`",
    label = "a key part, but not `Hash + Eq + Clone`",
    note = "the key is hashed, compared and stored: derive `Clone, PartialEq, Eq, Hash` on \
            it, or leave this argument out of the key: `#[dogpile(key = ..)]` names the \
            arguments that identify the result"
)]
pub trait KeyPart {
    /// Named by the expansion's checks; true.
    const OK: bool = true;
}
#[diagnostic::do_not_recommend]
impl<T: core::hash::Hash + Eq + Clone + 'static> KeyPart for T {}

/// The check of a borrowed key part `x: &T`: `T: Hash + Eq + ToOwned`, its owned form
/// `Hash + Eq + Clone + Send + Sync + 'static`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is part of the memoized fn's key, so it must be `Hash + Eq + Clone`",
    label = "a key part, but not `Hash + Eq + Clone`",
    note = "the key is hashed, compared and stored (as `<{Self} as ToOwned>::Owned`): \
            derive `Clone, PartialEq, Eq, Hash` on it, or leave this argument out of the \
            key: `#[dogpile(key = ..)]` names the arguments that identify the result"
)]
pub trait KeyRefPart {
    /// Named by the expansion's checks; true.
    const OK: bool = true;
}
#[diagnostic::do_not_recommend]
impl<T> KeyRefPart for T
where
    T: ?Sized + core::hash::Hash + Eq + ToOwned,
    T::Owned: core::hash::Hash + Eq + Clone + Send + Sync + 'static,
{
}

/// The check that a key part is `Send + Sync`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is part of the memoized fn's key, so it must be `Send + Sync`",
    label = "a key part, but not `Send + Sync`",
    note = "the key is stored in a cache shared by every thread; key by an id instead, \
            or leave this argument out of the key with `#[dogpile(key = ..)]`"
)]
pub trait KeyShared {
    /// Named by the expansion's checks; true.
    const OK: bool = true;
}
#[diagnostic::do_not_recommend]
impl<T: Send + Sync + ?Sized> KeyShared for T {}

/// The check that the value is `Clone`.
#[diagnostic::on_unimplemented(
    message = "`{Self}`, the memoized fn's value, must be `Clone`: every hit returns a clone",
    label = "returned by a memoized fn, but not `Clone`",
    note = "return `Arc<{Self}>` instead: it is `Clone` for any `{Self}`, and a clone \
            only counts a reference"
)]
pub trait ValueClone {
    /// Named by the expansion's checks; true.
    const OK: bool = true;
}
impl<T: Clone> ValueClone for T {}

/// The check that the value is `Send + Sync`.
#[diagnostic::on_unimplemented(
    message = "`{Self}`, the memoized fn's value, must be `Send + Sync`: the cache \
               hands it to every thread",
    label = "returned by a memoized fn, but not `Send + Sync`",
    note = "return a thread-safe type: `Arc` instead of `Rc`, `Mutex`/`RwLock` instead of \
            `RefCell`"
)]
pub trait ValueShared {
    /// Named by the expansion's checks; true.
    const OK: bool = true;
}
#[diagnostic::do_not_recommend]
impl<T: Send + Sync + ?Sized> ValueShared for T {}

/// What the generated fns do with key parts and values besides calling the cache:
/// methods of the cache, so that when a key part or the value fails its check (the
/// cache's type is then an error), rustc says nothing about these calls either.
pub trait Parts<K> {
    /// The owned key for a borrowed one (`KeyRef::to_key`).
    fn dogpile_key<Q: ?Sized + crate::KeyRef<K>>(&self, key: &Q) -> K;
    /// A clone of an owned key part or of a value.
    fn dogpile_clone<T: Clone>(&self, part: &T) -> T;
}

impl<K, V, M> Parts<K> for crate::Cache<K, V, M> {
    #[inline]
    fn dogpile_key<Q: ?Sized + crate::KeyRef<K>>(&self, key: &Q) -> K {
        key.to_key()
    }

    #[inline]
    fn dogpile_clone<T: Clone>(&self, part: &T) -> T {
        part.clone()
    }
}

/// The check of the error type `E` of a `Result<T, E>` fn: the bounds of
/// `ErrorShared`, on an impl (as the other checks state theirs), so that rustc
/// reports each missing bound with this message. `ErrorShared` itself bounds the
/// fallible helpers, for an error type the attribute can't see (`io::Result<T>`).
#[diagnostic::on_unimplemented(
    message = "`{Self}`, the memoized fn's error type, must be `Clone + Send + 'static`: \
               callers that waited for a failed first creation each get a clone of its error",
    label = "a memoized fn's error type, but not `Clone + Send + 'static`",
    note = "return `Result<_, Arc<{Self}>>` instead: `Arc` is `Clone` for any error, and \
            `Send` when the error is `Send + Sync`"
)]
pub trait ErrorPart {
    /// Named by the expansion's checks; true.
    const OK: bool = true;
}
impl<E: Clone + Send + 'static> ErrorPart for E {}
