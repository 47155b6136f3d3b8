//! Helpers on the fn's types: looking through groups, finding `Result`'s `Ok` and
//! `Option`'s `Some` type, printing a type as the user wrote it, and rejecting what a
//! key or value stored in a `static` can't hold.

use crate::errors::Errors;
use quote::ToTokens;
use syn::{GenericArgument, PathArguments, ReturnType, Type};

#[derive(Clone, Copy, PartialEq)]
pub enum Position {
    /// A keyed argument.
    Arg,
    /// A `_` argument: only `impl Trait` matters.
    Ignored,
    Return,
}

/// Looks through the invisible groups of `macro_rules!` fragments and parentheses.
pub fn unwrap_type(ty: &Type) -> &Type {
    match ty {
        Type::Group(g) => unwrap_type(&g.elem),
        Type::Paren(p) => unwrap_type(&p.elem),
        ty => ty,
    }
}

/// `T` if `ty` is `Result<T, ..>` (any path whose last segment is `Result` with type arguments,
/// so `io::Result<T>` and `anyhow::Result<T>` count).
pub fn result_ok_type(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = unwrap_type(ty) else {
        return None;
    };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(ok) => Some(ok),
        _ => None,
    }
}

/// `E` if `ty` is `Result<T, E>` written with both arguments (not for an alias such as
/// `io::Result<T>`, whose error type the attribute can't see).
pub fn result_err_type(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = unwrap_type(ty) else {
        return None;
    };
    let last = path.path.segments.last()?;
    if path.qself.is_some() || last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.iter().nth(1)? {
        GenericArgument::Type(err) => Some(err),
        _ => None,
    }
}

/// A type as a user writes it, for messages: `Result<String, E>`, not `Result < String , E >`.
pub fn type_text(ty: &dyn ToTokens) -> String {
    let mut text = ty.to_token_stream().to_string();
    for (from, to) in [
        (" < ", "<"),
        ("< ", "<"),
        (" <", "<"),
        (" >", ">"),
        (" ,", ","),
        ("& ", "&"),
        (" :: ", "::"),
        (":: ", "::"),
        ("( ", "("),
        (" )", ")"),
        ("[ ", "["),
        (" ]", "]"),
        (" ;", ";"),
        (" : ", ": "),
    ] {
        text = text.replace(from, to);
    }
    text
}

/// `T` if `ty` is `Option<T>` (any path whose last segment is `Option` with one type argument).
pub fn option_some_type(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = unwrap_type(ty) else {
        return None;
    };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    if last.ident != "Option" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(some) if args.args.len() == 1 => Some(some),
        _ => None,
    }
}

/// Rejects what a key or value in a `static` can't hold: `impl Trait`, `Self`, and borrows
/// other than `'static` (a top-level `&T` argument is handled before this is called).
pub fn check_type(ty: &Type, at: Position, errors: &mut Errors) {
    let fail = |errors: &mut Errors, tokens: &dyn ToTokens, message: &str| {
        errors.over(tokens, message);
    };
    match ty {
        Type::ImplTrait(t) => fail(
            errors,
            t,
            if at != Position::Return {
                "a memoized fn can't take `impl Trait` arguments: that makes it generic, and its \
                 cache is one `static` with a concrete key type; name a concrete type (e.g. `&str` \
                 or `String` instead of `impl AsRef<str>`)"
            } else {
                "a memoized fn can't return `impl Trait`: the value type of its `static` cache \
                 must be nameable; return a concrete type, or `Arc<dyn Trait + Send + Sync>`"
            },
        ),
        Type::Never(t) if at == Position::Return => fail(
            errors,
            t,
            "a fn that never returns has no value to cache; remove #[dogpile]",
        ),
        Type::Reference(r) if at == Position::Ignored => check_type(&r.elem, at, errors),
        Type::Reference(r) => {
            let is_static = r.lifetime.as_ref().is_some_and(|l| l.ident == "static");
            if !is_static {
                fail(
                    errors,
                    r,
                    if at == Position::Arg {
                        "a memoized fn's argument can borrow only at the top level (`x: &T`, keyed by \
                         `T::Owned`): the key is stored in a `static`, so it must own its data; \
                         take an owned type here (e.g. `Option<String>` for `Option<&str>`)"
                    } else {
                        "a memoized fn can't return a borrow: the value is stored in a `static` and \
                         cloned out to every caller; return an owned value (or `Arc<T>` when \
                         clones are expensive)"
                    },
                );
                return;
            }
            check_type(&r.elem, at, errors);
        }
        Type::Path(p) => {
            if let Some(q) = &p.qself {
                check_type(&q.ty, at, errors);
            }
            for segment in &p.path.segments {
                if segment.ident == "Self" && at != Position::Ignored {
                    fail(
                        errors,
                        segment,
                        if at == Position::Arg {
                            "`Self` can't be part of a memoized fn's key: the key's type is \
                             written in the cache's `static`, which can't name `Self`; write the \
                             type's name instead"
                        } else {
                            "`Self` can't be a memoized fn's value type: the value's type is \
                             written in the cache's `static`, which can't name `Self`; write the \
                             type's name instead"
                        },
                    );
                    return;
                }
                match &segment.arguments {
                    PathArguments::None => {}
                    PathArguments::AngleBracketed(args) => {
                        for arg in &args.args {
                            match arg {
                                GenericArgument::Lifetime(l)
                                    if l.ident != "static" && at != Position::Ignored =>
                                {
                                    errors.over(
                                        l,
                                        if at == Position::Arg {
                                            "a memoized fn's argument can borrow only at the top \
                                             level (`x: &T`): the key is stored in a `static`, so \
                                             it must own its data; take an owned type here"
                                        } else {
                                            "a memoized fn can't return a borrowing type: the \
                                             value is stored in a `static`; return an owned value"
                                        },
                                    );
                                }
                                GenericArgument::Type(t) => check_type(t, at, errors),
                                GenericArgument::AssocType(a) => check_type(&a.ty, at, errors),
                                _ => {}
                            }
                        }
                    }
                    PathArguments::Parenthesized(args) => {
                        for t in &args.inputs {
                            check_type(t, at, errors);
                        }
                        if let ReturnType::Type(_, t) = &args.output {
                            check_type(t, at, errors);
                        }
                    }
                }
            }
        }
        Type::Tuple(t) => t.elems.iter().for_each(|t| check_type(t, at, errors)),
        Type::Array(t) => check_type(&t.elem, at, errors),
        Type::Slice(t) => check_type(&t.elem, at, errors),
        Type::Paren(t) => check_type(&t.elem, at, errors),
        Type::Group(t) => check_type(&t.elem, at, errors),
        Type::Ptr(t) => check_type(&t.elem, at, errors),
        // fn pointers, trait objects, macros, ...: left to rustc.
        _ => {}
    }
}
