//! The cache handle: a `static` `LazyLock<Cache>` (for a fn in an `impl` block, the
//! associated fn `{fn}_cache()` holding it), built with the attribute's settings; and
//! the binding through which each generated fn reaches its cache.

use super::key::KeyTypes;
use super::{for_static, Context};
use crate::ast::{Output, SpannedDuration};
use crate::types::option_some_type;
use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;

/// The cache's type for the compiler: with the `KeyPart` / `ValuePart` projections, so
/// that a missing bound is reported once, at the user's type.
fn checked_ty(cx: &Context, types: &KeyTypes) -> TokenStream {
    let (krate, key_ty, value_ty) = (cx.krate, &types.key_ty, &types.value_ty);
    let mode = mode(cx);
    quote!(#krate::Cache<#key_ty, #value_ty, #mode>)
}

fn mode(cx: &Context) -> TokenStream {
    let krate = cx.krate;
    if cx.options.background.is_some() {
        quote!(#krate::mode::Background)
    } else if cx.options.sync_readers.is_some() {
        quote!(#krate::mode::SyncReaders)
    } else {
        quote!(#krate::mode::Inline)
    }
}

/// `let __cache = ..;`: the cache as a `&Cache` in a generated fn's body. A per-instance
/// cache: its field's type must be `Cache<K, V>`, said once, at the option.
pub fn binding(cx: &Context, types: &KeyTypes) -> TokenStream {
    let (krate, cache, handle) = (cx.krate, &cx.cache, &cx.handle);
    match (&cx.options.field, cx.in_impl) {
        (Some(field), _) => {
            let self_ = syn::Token![self](field.span());
            let checked_ty = checked_ty(cx, types);
            quote_spanned!(field.span()=> let #cache: &#checked_ty = &#self_.#field;)
        }
        // Through `handle`, so that an item that took the handle's name is reported in
        // our terms, at the name (the fn's, or `name = ..`).
        (None, true) => {
            quote_spanned!(handle.span()=> let #cache = #krate::__private::handle(Self::#handle());)
        }
        (None, false) => {
            quote_spanned!(handle.span()=> let #cache = #krate::__private::handle(&#handle);)
        }
    }
}

/// The handle item, or nothing for a per-instance cache (`field = ..`). Rustdoc
/// (`cfg(doc)`) is shown the key and value types as the user reads them.
pub fn item(cx: &Context, types: &KeyTypes) -> Option<TokenStream> {
    if cx.options.field.is_some() {
        return None;
    }
    let (krate, handle, vis) = (cx.krate, &cx.handle, &cx.func.vis);
    let name = &cx.func.sig.ident;
    let doc = format!(" The cache behind [`{name}`]: `invalidate`, `remove`, `clear`, `stats`.");
    let attrs: Vec<_> = cx.func.attrs.iter().filter(|a| for_static(a)).collect();
    let checked_ty = checked_ty(cx, types);
    let mode = mode(cx);
    let (plain_key_ty, plain_value_ty) = (&types.plain_key_ty, &types.plain_value_ty);
    let plain_ty = quote!(#krate::Cache<#plain_key_ty, #plain_value_ty, #mode>);
    let build = build(cx, types);
    Some(if cx.in_impl {
        let cache_static = format_ident!("CACHE", span = Span::mixed_site());
        quote! {
            #[doc = #doc]
            #(#attrs)*
            #[allow(dead_code)]
            #[cfg(not(doc))]
            #vis fn #handle() -> &'static #checked_ty {
                static #cache_static: #krate::__private::LazyLock<#checked_ty> = #build;
                &#cache_static
            }
            #[doc = #doc]
            #(#attrs)*
            #[allow(dead_code)]
            #[cfg(doc)]
            #vis fn #handle() -> &'static #plain_ty {
                static #cache_static: #krate::__private::LazyLock<#plain_ty> = #build;
                &#cache_static
            }
        }
    } else {
        quote! {
            #[doc = #doc]
            #(#attrs)*
            #[allow(dead_code)]
            #[cfg(not(doc))]
            #vis static #handle: #krate::__private::LazyLock<#checked_ty> = #build;
            #[doc = #doc]
            #(#attrs)*
            #[allow(dead_code)]
            #[cfg(doc)]
            #vis static #handle: #krate::__private::LazyLock<#plain_ty> = #build;
        }
    })
}

/// The `LazyLock` that builds the cache with the attribute's settings on first use.
fn build(cx: &Context, types: &KeyTypes) -> TokenStream {
    let (krate, options) = (cx.krate, cx.options);
    let ttl = options.ttl.map(|ttl| {
        let ttl = duration(krate, ttl);
        quote!(.ttl(#ttl))
    });
    // With `ttl = EXPR` the builder's ttl is only the horizon of the sweeps and the
    // tier: an hour.
    let ttl = ttl.or_else(|| {
        options
            .ttl_expr
            .as_ref()
            .map(|_| quote!(.ttl(#krate::__private::Duration::from_secs(3600))))
    });
    let capacity = options.capacity.map(|n| {
        let n = Literal::usize_unsuffixed(n);
        quote!(.capacity(#n))
    });
    let background_refresh = options
        .background
        .is_some()
        .then(|| quote!(.background_refresh()));
    let window = |method: &str, d: Option<SpannedDuration>| {
        let method = syn::Ident::new(method, Span::call_site());
        d.map(|d| {
            let d = duration(krate, d);
            quote!(.#method(#d))
        })
    };
    let freshness = [
        window("stale_while_revalidate", options.stale_while_revalidate),
        window("stale_if_error", options.stale_if_error),
        window("refresh_ahead", options.refresh_ahead),
        window("wait_at_most", options.wait_at_most),
        options.retry_backoff.map(|(base, cap)| {
            let (base, cap) = (duration(krate, base), duration(krate, cap));
            quote!(.retry_backoff(#base, #cap))
        }),
        lifetime(cx, types),
    ];
    let sync_readers = options
        .sync_readers
        .is_some()
        .then(|| quote!(.sync_readers()));
    // The cache is named after the fn, so that its `tracing` events say which fn.
    let fn_ident = &cx.func.sig.ident;
    let cache_name = quote! {
        .name(::core::concat!(::core::module_path!(), "::", ::core::stringify!(#fn_ident)))
    };
    let clock = options.clock.as_ref().map(|expr| quote!(.clock(#expr)));
    let builder = quote! {
        #krate::Cache::builder()
            #ttl
            #cache_name
            #capacity
            #background_refresh
            #(#freshness)*
            #sync_readers
            #clock
    };
    // The fleet tier, scoped to the fn's path so that fns sharing a tier keep their keys
    // apart; set through a `__private` helper that names the key and value and bounds the
    // tier once, so that a type that is not their tier is reported once, at the
    // expression, in the user's terms.
    let builder = match &options.shared {
        Some(expr) => {
            let scope = quote!(::core::concat!(
                ::core::module_path!(),
                "::",
                ::core::stringify!(#fn_ident)
            ));
            let (key_ty, value_ty) = (&types.key_ty, &types.value_ty);
            quote_spanned!(expr.span()=>
                #krate::__private::shared_tier::<#key_ty, #value_ty, _, _>(#builder, #expr, #scope)
            )
        }
        None => builder,
    };
    quote! {
        #krate::__private::LazyLock::new(|| {
            #builder.build()
        })
    }
}

/// `ttl_with(..)` for `ttl = EXPR` (each value's lifetime, `EXPR` over the value: the
/// `Ok` value of a `Result` fn, the `Some` value of an `Option` fn), and for `none_ttl`.
fn lifetime(cx: &Context, types: &KeyTypes) -> Option<TokenStream> {
    let (krate, options) = (cx.krate, cx.options);
    // The value's type as the user wrote it, so that a closure of another type is
    // reported in the user's terms; the builder's closure takes the checked type (see
    // `KeyTypes`), so that a value that failed its check is not reported again there.
    let (value_ty, checked_value_ty) = (&types.plain_value_ty, &types.value_ty);
    // A plain `Option<T>` fn with `none_ttl`: `None` keeps that long, `Some` its own.
    let some_ty = match (&cx.func.output, options.none_ttl) {
        (Output::Value(ty), Some(none_ttl)) if !none_ttl.value.is_zero() => {
            option_some_type(ty).map(|some| (some, duration(krate, none_ttl)))
        }
        _ => None,
    };
    // `EXPR` checked against the value's type where the user wrote it.
    let of = |ty: &dyn ToTokens| {
        options.ttl_expr.as_ref().map(
            |expr| quote_spanned!(expr.span()=> #krate::__private::value_lifetime::<#ty, _>(#expr)),
        )
    };
    match some_ty {
        Some((some, none_ttl)) => {
            let some_ttl = match of(some) {
                Some(of) => quote!({ let of = #of; move |v: &#some| of(v) }),
                None => {
                    let ttl = options.ttl.map(|d| duration(krate, d))?;
                    quote!(move |_: &#some| #ttl)
                }
            };
            Some(quote! {
                .ttl_with({
                    let some = #some_ttl;
                    move |_, value: &#checked_value_ty| match value {
                        ::core::option::Option::Some(v) => some(v),
                        ::core::option::Option::None => #none_ttl,
                    }
                })
            })
        }
        None => {
            let of = of(value_ty)?;
            Some(quote!(.ttl_with({ let of = #of; move |_, value: &#checked_value_ty| of(value) })))
        }
    }
}

/// `Duration::new(secs, nanos)`, spanned on the literal it came from.
fn duration(krate: &syn::Path, d: SpannedDuration) -> TokenStream {
    let secs = Literal::u64_unsuffixed(d.value.as_secs());
    let nanos = Literal::u32_unsuffixed(d.value.subsec_nanos());
    quote_spanned!(d.span=> #krate::__private::Duration::new(#secs, #nanos))
}
