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
    /// The key type as the compiler sees it: each part written `<T as KeyPart>::Is`.
    pub key_ty: TokenStream,
    /// The value type as the compiler sees it: `<T as ValuePart>::Is`.
    pub value_ty: TokenStream,
    /// The same types as the user reads them, for the `static`'s rustdoc.
    pub plain_key_ty: TokenStream,
    pub plain_value_ty: TokenStream,
    /// `let __key: T = EXPR;` for a computed key, before the arguments move into the body.
    pub compute_key: Option<TokenStream>,
    /// What a fresh hit looks the key up by, without allocating.
    pub lookup: TokenStream,
    /// The owned key to store: `(page.to_owned(), lang.clone())`.
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
        // Each part (and the value) is written `<T as KeyPart>::Is`, spanned on `T`: that
        // is `T` itself, but when `T` lacks `Hash`, `Clone`, ... rustc reports it once, at
        // `T` in the signature, instead of at every use of the cache.
        let key_ty = match computed {
            Some((ty, _)) => checked(ty, ty, quote!(#krate::__private::KeyPart)),
            None => tuple(parts.iter().map(|arg| match &arg.kind {
                ArgKind::Ref(inner) => {
                    let owned =
                        quote_spanned!(inner.span()=> <#inner as ::std::borrow::ToOwned>::Owned);
                    checked(inner, &owned, quote!(#krate::__private::KeyPart))
                }
                _ => checked(&arg.ty, &arg.ty, quote!(#krate::__private::KeyPart)),
            })),
        };
        let value_ty = match &func.output {
            Output::Unit => quote!(()),
            Output::Value(ty) | Output::Result { ok: ty, .. } | Output::Option { some: ty, .. } => {
                checked(ty, ty, quote!(#krate::__private::ValuePart))
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
        let owned_key = match computed {
            Some(_) => quote!(#key),
            None => tuple(parts.iter().map(|arg| {
                let ident = &arg.ident;
                match &arg.kind {
                    // Through `<T as ToOwned>`, spanned on `T`: when `T` is not `ToOwned`,
                    // rustc reports it once, at `T`, as for the key type, rather than again
                    // at the argument with a suggestion to borrow it.
                    ArgKind::Ref(inner) => quote_spanned!(inner.span()=>
                        <#inner as ::std::borrow::ToOwned>::to_owned(#ident)
                    ),
                    _ => quote_spanned!(arg.ty.span()=> ::core::clone::Clone::clone(&#ident)),
                }
            })),
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

/// `<ty as check>::Is`, which is `ty` itself when it meets the check's bounds. Its first
/// tokens carry the span of `written`'s first token and `Is` that of its last, so rustc
/// underlines all of `written` (stable proc macros can't join spans themselves).
fn checked(written: &dyn ToTokens, ty: &dyn ToTokens, check: TokenStream) -> TokenStream {
    let mut tokens = written.to_token_stream().into_iter();
    let first = tokens.next().map_or_else(Span::call_site, |t| t.span());
    let last = tokens.last().map_or(first, |t| t.span());
    let is = syn::Ident::new("Is", last);
    let check = respan(check, first);
    quote_spanned!(first=> <#ty as #check>::#is)
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
