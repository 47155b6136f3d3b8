//! Checks the fn's signature: what can be memoized at all (no `const`, `unsafe`,
//! `extern`, generic or `&mut`), each argument's name and kind, and the return type.

use crate::ast::{Arg, ArgKind, Func, Key, Output};
use crate::errors::Errors;
use crate::types::{check_type, result_ok_type, type_text, unwrap_type, Position};
use proc_macro2::Span;
use quote::{format_ident, ToTokens};
use syn::{FnArg, GenericParam, ItemFn, Pat, ReturnType, Type};

/// Checks the signature. `None` if it can't be memoized at all.
pub fn func(item: ItemFn, errors: &mut Errors) -> Option<Func> {
    let fail = |errors: &mut Errors, tokens: &dyn ToTokens, message: String| {
        errors.over(tokens, message);
    };
    let sig = &item.sig;
    let name = &sig.ident;

    if let Some(token) = &sig.constness {
        fail(
            errors,
            token,
            "a `const fn` can't be memoized: the cache is a runtime `static` that a const \
             evaluation can't use; remove `const`"
                .to_owned(),
        );
    }
    if let Some(token) = &sig.unsafety {
        fail(
            errors,
            token,
            "an `unsafe fn` can't be memoized: its safety conditions are checked by the caller \
             that runs the body, but a cached value reaches callers that never ran it; memoize a \
             safe fn that wraps the unsafe call"
                .to_owned(),
        );
    }
    if let Some(abi) = &sig.abi {
        fail(
            errors,
            abi,
            "an `extern` fn can't be memoized: the wrapper is a plain Rust fn; memoize a Rust fn \
             and call it from the `extern` one"
                .to_owned(),
        );
    }
    if let Some(variadic) = &sig.variadic {
        fail(
            errors,
            variadic,
            "a variadic fn can't be memoized: its arguments can't form a key".to_owned(),
        );
    }
    for param in &sig.generics.params {
        match param {
            GenericParam::Lifetime(_) => {} // fine: it can only appear on top-level `&'a T` args (checked below)
            GenericParam::Type(_) | GenericParam::Const(_) => fail(
                errors,
                param,
                "a generic fn can't be memoized: its cache is one `static` with concrete key \
                 and value types, and a `static` can't be generic; write a non-generic fn per \
                 type you need (it can call a generic helper), or keep a `dogpile::Cache` \
                 yourself, one per type"
                    .to_owned(),
            ),
        }
    }

    let mut args = Vec::new();
    let mut self_ref = None;
    for (i, input) in sig.inputs.iter().enumerate() {
        let typed = match input {
            FnArg::Receiver(receiver)
                if receiver.reference.is_some()
                    && receiver.mutability.is_none()
                    && receiver.colon_token.is_none() =>
            {
                self_ref = Some(receiver.clone());
                continue;
            }
            FnArg::Receiver(receiver) => {
                let message = if receiver.mutability.is_some() && receiver.reference.is_some() {
                    format!(
                        "only `&self` methods can be memoized: a cache hit skips the body, so \
                         the mutation would happen only sometimes; take `&self` in `{name}`"
                    )
                } else {
                    format!(
                        "only `&self` methods can be memoized: write `&self` instead of `{}` in \
                         `{name}`",
                        type_text(receiver)
                    )
                };
                fail(errors, receiver, message);
                continue;
            }
            FnArg::Typed(typed) => typed,
        };
        for attr in &typed.attrs {
            if attr.path().is_ident("cfg") || attr.path().is_ident("cfg_attr") {
                fail(
                    errors,
                    attr,
                    "conditional arguments can't be memoized: the key is built from every \
                     argument; make the whole fn conditional instead"
                        .to_owned(),
                );
            }
        }
        let ident = match &*typed.pat {
            Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => pat.ident.clone(),
            Pat::Wild(_) => format_ident!("__arg{}", i, span = Span::mixed_site()),
            pat => {
                fail(
                    errors,
                    pat,
                    "only plain names (`x: T`, `mut x: T`) and `_` are supported as arguments of \
                     a memoized fn, because each argument is cloned into the key by name; bind a \
                     name and destructure it in the body (`pair: (u32, u32)`, then `let (a, b) = \
                     pair;`)"
                        .to_owned(),
                );
                continue;
            }
        };
        let ignored = matches!(&*typed.pat, Pat::Wild(_));
        let kind = match unwrap_type(&typed.ty) {
            Type::Reference(r) if r.mutability.is_some() => {
                fail(
                    errors,
                    &typed.ty,
                    "a memoized fn can't take `&mut` arguments: a cache hit skips the body, so \
                     the mutation would happen only sometimes; take `&T` or an owned value"
                        .to_owned(),
                );
                continue;
            }
            // Not part of the key: any type will do, as long as it is not generic.
            _ if ignored => ArgKind::Ignored,
            Type::Reference(r) => ArgKind::Ref((*r.elem).clone()),
            _ => ArgKind::Owned,
        };
        // Types are checked once the key is known (`combination`): only key parts are stored.
        args.push(Arg {
            ident,
            ty: (*typed.ty).clone(),
            in_key: !ignored,
            kind,
        });
    }

    let output = match &sig.output {
        ReturnType::Default => Output::Unit,
        ReturnType::Type(_, ty) => {
            let ty = &**ty;
            check_type(ty, Position::Return, errors);
            match unwrap_type(ty) {
                Type::Tuple(t) if t.elems.is_empty() => Output::Unit,
                inner => match result_ok_type(inner) {
                    Some(ok_ty) => Output::Result {
                        ty: ty.clone(),
                        ok: ok_ty.clone(),
                    },
                    None => Output::Value(ty.clone()),
                },
            }
        }
    };

    // `Self` can only be named in an `impl` (or trait) block: such a fn's cache can't
    // be a `static` beside it.
    let names_self =
        names_self(item.sig.to_token_stream()) || names_self(item.block.to_token_stream());

    // Returned even after an error, so that `resolve` checks the argument types too (the
    // caller reports the errors and does not expand).
    let key = Key::Args((0..args.len()).filter(|&i| args[i].in_key).collect());
    Some(Func {
        attrs: item.attrs,
        vis: item.vis,
        sig: item.sig,
        block: item.block,
        args,
        output,
        key,
        receiver: self_ref,
        names_self,
    })
}

/// Whether `tokens` name `Self` outside nested items (`impl`, `trait`, `struct`, `enum`,
/// `union`, which have their own `Self`) and macro invocations (whose tokens may be
/// anything). Errs towards `false`: a fn that names `Self` only there is taken for a
/// free fn, and needs `associated` in an `impl` block.
fn names_self(tokens: proc_macro2::TokenStream) -> bool {
    use proc_macro2::TokenTree;
    let mut tokens = tokens.into_iter().peekable();
    let mut after_ident = false;
    while let Some(token) = tokens.next() {
        let ident = matches!(&token, TokenTree::Ident(_));
        match token {
            TokenTree::Ident(ident) if ident == "Self" => return true,
            TokenTree::Ident(ident)
                if ["impl", "trait", "struct", "enum", "union"]
                    .iter()
                    .any(|item| ident == item) =>
            {
                // Skip to the end of the nested item: its braces or its `;`.
                for token in tokens.by_ref() {
                    match token {
                        TokenTree::Group(g) if g.delimiter() == proc_macro2::Delimiter::Brace => {
                            break
                        }
                        TokenTree::Punct(p) if p.as_char() == ';' => break,
                        _ => {}
                    }
                }
            }
            TokenTree::Punct(p) if p.as_char() == '!' && after_ident => {
                if let Some(TokenTree::Group(_)) = tokens.peek() {
                    tokens.next(); // a macro's input
                }
            }
            TokenTree::Group(group) if names_self(group.stream()) => return true,
            _ => {}
        }
        after_ident = ident;
    }
    false
}
