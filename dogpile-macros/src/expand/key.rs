//! The key and value: their types (checked for the compiler, plain for rustdoc), and
//! the expressions that look a key up by reference and build the owned key to store.

use super::Context;
use crate::ast::{Arg, ArgKind, Key, Output};
use crate::types::unwrap_type;
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Expr, Type};

/// The key and value of one memoized fn.
pub struct KeyTypes<'a> {
    /// The arguments that form the key, in key order (none for a computed key).
    pub parts: Vec<&'a Arg>,
    /// `key(T) = EXPR`: its type and expression.
    pub computed: Option<(&'a Type, &'a Expr)>,
    /// The key type as the compiler sees it: each part written `<T as Checked<..>>::Is`.
    pub key_ty: TokenStream,
    /// The value type as the compiler sees it: `<T as Checked<..>>::Is`.
    pub value_ty: TokenStream,
    /// The same types as the user reads them, for the `static`'s rustdoc.
    pub plain_key_ty: TokenStream,
    pub plain_value_ty: TokenStream,
    /// `let __key: T = EXPR;` for a computed key, before the arguments move into the body.
    pub compute_key: Option<TokenStream>,
    /// What a fresh hit looks the key up by, without allocating.
    pub lookup: TokenStream,
    /// The owned key to store: `__cache.dogpile_key(&(page, &lang))`.
    pub owned_key: TokenStream,
}

impl<'a> KeyTypes<'a> {
    pub fn new(cx: &Context<'a>) -> Self {
        let (krate, func, key) = (cx.krate, cx.func, &cx.key);
        let parts: Vec<&Arg> = match &func.key {
            Key::Args(indices) => indices.iter().map(|&i| &func.args[i]).collect(),
            Key::Computed { .. } => Vec::new(),
        };
        let computed = match &func.key {
            Key::Computed { ty, expr } => Some((ty, expr)),
            Key::Args(_) => None,
        };

        // The key type: one part is the key itself, several form a tuple, none make `()`.
        // Each part (and the value) is written `<T as Checked<{ checks of T }>>::Is`,
        // spanned on `T`: that is `T` itself, but when `T` lacks `Hash`, `Clone`, ... rustc
        // reports the check's message once, at `T` in the signature, and nothing more
        // about `T` (see `__private::Checked`). A borrowed part `&T` is checked before
        // its owned form `<T as ToOwned>::Owned` is named.
        let key_ty = match computed {
            Some((ty, _)) => checked(krate, ty, KEY),
            None => tuple(parts.iter().map(|arg| match &arg.kind {
                ArgKind::Ref(inner) => {
                    let inner_checked = checked(krate, inner, KEY_REF);
                    quote_spanned!(inner.span()=>
                        <#inner_checked as ::std::borrow::ToOwned>::Owned
                    )
                }
                _ => checked(krate, &arg.ty, KEY),
            })),
        };
        let value_ty = match &func.output {
            Output::Unit => quote!(()),
            Output::Value(ty) | Output::Result { ok: ty, .. } | Output::Option { some: ty, .. } => {
                checked(krate, ty, VALUE)
            }
        };
        // The same types as the user reads them, for the declared type of the `static`
        // (and so its rustdoc): `String` for `&str`, `Vec<T>` for `&[T]`, `T` for `&T`.
        let plain_key_ty = match computed {
            Some((ty, _)) => ty.to_token_stream(),
            None => tuple(parts.iter().map(|arg| match &arg.kind {
                ArgKind::Ref(inner) => owned_form(inner),
                _ => arg.ty.to_token_stream(),
            })),
        };
        let plain_value_ty = match &func.output {
            Output::Unit => quote!(()),
            Output::Value(ty) | Output::Result { ok: ty, .. } | Output::Option { some: ty, .. } => {
                ty.to_token_stream()
            }
        };
        let compute_key = computed.map(|(ty, expr)| quote!(let #key: #ty = #expr;));
        // `&(page, &lang)` for several parts, `&&id` (a `&u64`, see `KeyRef`) for one,
        // `&()` for none.
        let lookup = match computed {
            Some(_) => quote!(&&#key),
            None if parts.len() == 1 => {
                let ident = &parts[0].ident;
                match parts[0].kind {
                    ArgKind::Ref(_) => quote!(&#ident),
                    _ => quote!(&&#ident),
                }
            }
            None => {
                let parts = parts.iter().map(|arg| {
                    let ident = &arg.ident;
                    match arg.kind {
                        ArgKind::Ref(_) => quote!(#ident),
                        _ => quote!(&#ident),
                    }
                });
                let parts = tuple(parts);
                quote!(&#parts)
            }
        };
        // The owned key, built from the borrowed one by the cache (`KeyRef::to_key`): a
        // key part that failed its check gives no further error here either.
        let owned_key = match computed {
            Some(_) => quote!(#key),
            None if parts.is_empty() => quote!(()),
            None => {
                let cache = &cx.cache;
                quote!({ use #krate::__private::Parts as _; #cache.dogpile_key(#lookup) })
            }
        };
        KeyTypes {
            parts,
            computed,
            key_ty,
            value_ty,
            plain_key_ty,
            plain_value_ty,
            compute_key,
            lookup,
            owned_key,
        }
    }
}

/// The checks (traits in `__private`) of an owned key part, of a borrowed one, of the
/// value, and of the error type.
pub(super) const KEY: &[&str] = &["KeyPart", "KeyShared"];
pub(super) const KEY_REF: &[&str] = &["KeyRefPart", "KeyShared"];
pub(super) const VALUE: &[&str] = &["ValueClone", "ValueShared"];
pub(super) const ERROR: &[&str] = &["ErrorPart"];

/// `<ty as Checked<{ <ty as A>::OK & <ty as B>::OK }>>::Is`, which is `ty` itself when it
/// passes the checks `A` and `B`. The checks keep `ty`'s own spans, so a failed one
/// points at `ty`; the projection's first tokens carry the span of `ty`'s first token and
/// `Is` that of its last, so an error about the type as a whole underlines all of `ty`
/// (stable proc macros can't join spans).
pub(super) fn checked(krate: &syn::Path, ty: &dyn ToTokens, checks: &[&str]) -> TokenStream {
    let mut tokens = ty.to_token_stream().into_iter();
    let first = tokens.next().map_or_else(Span::call_site, |t| t.span());
    let last = tokens.last().map_or(first, |t| t.span());
    let is = syn::Ident::new("Is", last);
    let checks = checks.iter().map(|check| {
        let check = syn::Ident::new(check, first);
        let check = respan(quote!(#krate::__private::#check), first);
        quote_spanned!(first=> <#ty as #check>::OK)
    });
    let checked_trait = respan(quote!(#krate::__private::Checked), first);
    quote_spanned!(first=> <#ty as #checked_trait<{ #(#checks)&* }>>::#is)
}

/// `tokens` with every span set to `span`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let proc_macro2::TokenTree::Group(group) = &token {
                let mut new =
                    proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                new.set_span(span);
                token = new.into();
            }
            token.set_span(span);
            token
        })
        .collect()
}

/// The owned form of a borrowed `&T` key part, written out where it is known from the
/// syntax (`str` → `String`, `[T]` → `Vec<T>`, `Path` → `PathBuf`, `OsStr` → `OsString`,
/// `CStr` → `CString`), `T` itself for any other named type (a `Clone` type owns itself;
/// the checked type compares it with `<T as ToOwned>::Owned`), the projection otherwise.
fn owned_form(inner: &Type) -> TokenStream {
    match unwrap_type(inner) {
        Type::Slice(slice) => {
            let elem = &slice.elem;
            quote!(::std::vec::Vec<#elem>)
        }
        Type::Path(path) if path.qself.is_none() => {
            let last = path.path.segments.last();
            let bare = last
                .filter(|s| s.arguments.is_none())
                .map(|s| s.ident.to_string());
            match bare.as_deref() {
                Some("str") => quote!(::std::string::String),
                Some("Path") => quote!(::std::path::PathBuf),
                Some("OsStr") => quote!(::std::ffi::OsString),
                Some("CStr") => quote!(::std::ffi::CString),
                _ => inner.to_token_stream(),
            }
        }
        Type::Tuple(_) | Type::Array(_) | Type::Reference(_) => inner.to_token_stream(),
        _ => quote!(<#inner as ::std::borrow::ToOwned>::Owned),
    }
}

/// The key of `parts`: `()`, `a` (one part is the key itself, not a one-tuple), `(a, b)`.
pub fn tuple(parts: impl Iterator<Item = TokenStream>) -> TokenStream {
    let parts: Vec<_> = parts.collect();
    match parts.len() {
        1 => parts[0].clone(),
        _ => quote!((#(#parts),*)),
    }
}
