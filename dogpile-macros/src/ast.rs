//! The checked model of the attribute: its options and the fn, as `validate` builds
//! them from the raw input and `expand` turns them into code.

use proc_macro2::Span;
use std::time::Duration;
use syn::{Attribute, Block, Expr, Ident, Path, Signature, Type, Visibility};

/// A duration given as a humantime string, already parsed, with the span of its literal.
#[derive(Clone, Copy)]
pub struct SpannedDuration {
    pub value: Duration,
    pub span: Span,
}

/// The checked options.
pub struct Options {
    /// Required (a duration, or `ttl_expr`), except with `field` (the cache is built
    /// where the field is).
    pub ttl: Option<SpannedDuration>,
    /// `ttl = EXPR`: each value's own lifetime, `EXPR: Fn(&T) -> Duration` over the
    /// stored value.
    pub ttl_expr: Option<Expr>,
    /// `none_ttl = "30s"`: how long an `Option` fn's `None` is kept (zero: `skip_none`).
    pub none_ttl: Option<SpannedDuration>,
    pub sync_readers: Option<Span>,
    pub capacity: Option<usize>,
    pub background: Option<Span>,
    pub stale_while_revalidate: Option<SpannedDuration>,
    pub stale_if_error: Option<SpannedDuration>,
    /// `retry_backoff = "100ms..30s"`: base and cap; the span is the literal's.
    pub retry_backoff: Option<(SpannedDuration, SpannedDuration)>,
    pub refresh_ahead: Option<SpannedDuration>,
    pub wait_at_most: Option<SpannedDuration>,
    /// The `static` handle's name (`name = IDENT`), if given.
    pub name: Option<Ident>,
    /// The runtime crate's path: `::dogpile` unless `crate = path`.
    pub krate: Path,
    /// `clock = EXPR`: the cache's `dogpile::Clock`, evaluated once when the `static`
    /// initializes. `None`: the system clock.
    pub clock: Option<Expr>,
    /// `key = ..`: what forms the key, if not every named argument.
    pub key: Option<KeyOption>,
    /// `skip_none`: an `Option<T>` fn stores only `Some`.
    pub skip_none: Option<Span>,
    /// `field = cache`: a `&self` method's per-instance cache, `self.cache`.
    pub field: Option<Ident>,
    /// `shared = EXPR`: the fleet tier (a `dogpile::SharedTier`), evaluated once when the
    /// `static` initializes, scoped to the fn's path.
    pub shared: Option<Expr>,
    /// `associated`: the fn is an associated fn of an `impl` block (no `self`).
    pub associated: Option<Span>,
    /// `batch = ids`: the slice argument whose elements are the keys.
    pub batch: Option<Ident>,
}

/// The `key` option as written, before it is checked against the arguments.
#[allow(clippy::large_enum_variant)] // one per expansion
pub enum KeyOption {
    /// `key = id` or `key = (region, page)`: these arguments, in this order.
    Args(Vec<Ident>),
    /// `key(T) = EXPR`: the value of `EXPR`, of type `T`.
    Computed { ty: Type, expr: Expr },
}

/// What forms the key, checked against the arguments.
#[allow(clippy::large_enum_variant)] // one per expansion
pub enum Key {
    /// These arguments (indices into `Func::args`), in key order. A single one is the
    /// key itself, several form a tuple, none make `()`.
    Args(Vec<usize>),
    /// `key(T) = EXPR`.
    Computed { ty: Type, expr: Expr },
}

/// The checked function.
pub struct Func {
    /// Every attribute on the fn, doc comments included, in order.
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    /// The signature exactly as written.
    pub sig: Signature,
    pub block: Box<Block>,
    /// One per argument, in order.
    pub args: Vec<Arg>,
    pub output: Output,
    /// What forms the key: every named argument unless `key = ..` says otherwise.
    pub key: Key,
    /// `&self`, for a method (the only receiver accepted).
    pub receiver: Option<syn::Receiver>,
    /// The signature or body names `Self` (outside nested items and macros): the fn is
    /// in an `impl` block, whatever its receiver.
    pub names_self: bool,
    /// `batch = ids`, checked against the fn.
    pub batch: Option<Batch>,
}

/// The batch form, checked: `ids: &[K]` gives the keys, the fn returns `Vec<V>` (or a
/// `Result` of one), and every other argument is context.
pub struct Batch {
    /// The index of the slice argument in `Func::args`.
    pub arg: usize,
    /// `K`, the slice's element.
    pub key: Type,
    /// `V`, the returned `Vec`'s element.
    pub value: Type,
}

/// One argument of the memoized fn.
pub struct Arg {
    /// The name the wrapper binds it to: the user's name (without `mut`), or a
    /// generated one for a `_` pattern.
    pub ident: Ident,
    /// The type as written.
    pub ty: Type,
    pub kind: ArgKind,
    /// Whether the argument is a part of the key (a `Key::Args` index).
    pub in_key: bool,
}

#[allow(clippy::large_enum_variant)] // a few per expansion
pub enum ArgKind {
    /// `x: T`: keyed by a clone of `T`.
    Owned,
    /// `x: &T`: keyed by `<T as ToOwned>::Owned`; holds `T`.
    Ref(Type),
    /// `_: T`: the body cannot see it, so it is not part of the key.
    Ignored,
}

/// What the fn returns.
#[allow(clippy::large_enum_variant)] // one per expansion
pub enum Output {
    /// No return type, or `-> ()`: the cached value is `()`.
    Unit,
    /// `-> T`: the cached value is `T`.
    Value(Type),
    /// `-> Result<T, E>` (or an alias such as `io::Result<T>`): only `Ok(T)` is cached.
    /// `ty` is the whole return type, `ok` is `T`.
    Result { ty: Type, ok: Type },
    /// `-> Option<T>` with `skip_none`: only `Some(T)` is cached. `ty` is the whole
    /// return type, `some` is `T`. (Without `skip_none` an `Option` is a plain `Value`.)
    Option { ty: Type, some: Type },
}

impl Output {
    pub fn is_result(&self) -> bool {
        matches!(self, Output::Result { .. })
    }

    /// Whether the body's value goes through the fallible (`try_`) path: `Result`, or
    /// `Option` with `skip_none` (a `None` is an error that is not stored).
    pub fn is_fallible(&self) -> bool {
        matches!(self, Output::Result { .. } | Output::Option { .. })
    }
}
