//! The wrapper: the fn under its own name, which looks the key up by reference and
//! calls the body (`{fn}_no_cache`) only to create a value.

use super::key::KeyTypes;
use super::{plain_sig, Context};
use crate::ast::{ArgKind, Output};
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{GenericArgument, PathArguments, ReturnType, Type};

/// The wrapper fn. `cache` binds the cache as a local, at the top of its body.
pub fn wrapper(cx: &Context, types: &KeyTypes, cache: &TokenStream) -> TokenStream {
    let func = cx.func;
    let body = if cx.options.background.is_some() {
        background_body(cx, types)
    } else {
        inline_body(cx, types)
    };
    let mut sig = plain_sig(func);
    if cx.options.sync_readers.is_some() {
        sig.output = guarded_output(&func.sig.output, &func.output, cx.krate);
    }
    // The wrapper's braces keep the body's spans, so the wrapper is the user's own item
    // to rustc's lints: an unused memoized fn is reported like an unused plain fn.
    let mut block = TokenStream::new();
    func.block.brace_token.surround(&mut block, |tokens| {
        tokens.extend(quote!(#cache #body));
    });
    let (attrs, vis) = (&func.attrs, &func.vis);
    quote! {
        #(#attrs)*
        #vis #sig #block
    }
}

/// `skip_none`: the body's `None` is an error the cache does not store, turned back into
/// `None` for the caller.
fn skip_none(cx: &Context) -> bool {
    matches!(cx.func.output, Output::Option { .. })
}

/// The creator: the body's call with `args`, awaited in an `async` block for an
/// `async fn`.
fn creator(cx: &Context, args: &[TokenStream], move_: bool) -> TokenStream {
    let (krate, no_cache_fn, self_arg, await_) =
        (cx.krate, &cx.no_cache_fn, &cx.self_arg, &cx.await_);
    let call = quote!(#no_cache_fn(#self_arg #(#args),*) #await_);
    let call = if skip_none(cx) {
        quote!(#krate::__private::some_or_skip(#call))
    } else if cx.func.output.is_result() {
        // Notes the error's `Display` (if it has one) for the `tracing` failure event.
        quote!(#krate::__note_error!(#call))
    } else {
        call
    };
    let move_ = move_.then(|| quote!(move));
    if cx.is_async {
        quote!(async #move_ { #call })
    } else {
        quote!(#move_ || #call)
    }
}

/// A `background` wrapper: the hit path first; on a miss, the creator (which may run on
/// another thread or task after the call has returned) owns a clone of the key parts.
fn background_body(cx: &Context, types: &KeyTypes) -> TokenStream {
    let (krate, cache, await_) = (cx.krate, &cx.cache, &cx.await_);
    let fallible = cx.func.output.is_fallible();
    let parts = &types.parts;
    let call = match (cx.is_async, fallible) {
        (false, false) => "get_with",
        (false, true) => "try_get_with",
        (true, false) => "get_with_async",
        (true, true) => "try_get_with_async",
    };
    // Spanned on the `background` option: an error about the call (a creator that is not
    // `Send + 'static`) points there.
    let call = syn::Ident::new(call, cx.options.background.unwrap_or_else(Span::call_site));
    // The creator borrows the `&T` key parts from its clone of the key; the other
    // arguments (owned, as validation checks) move in.
    let owned = format_ident!("__owned", span = Span::mixed_site());
    let args = cx.func.args.iter().map(|arg| {
        let ident = &arg.ident;
        let Some(index) = parts.iter().position(|p| p.ident == arg.ident) else {
            return quote!(#ident);
        };
        let part = if parts.len() == 1 {
            quote!(#owned)
        } else {
            let i = syn::Index::from(index);
            quote!(#owned.#i)
        };
        match arg.kind {
            ArgKind::Ref(_) => quote!(::core::borrow::Borrow::borrow(&#part)),
            _ => part,
        }
    });
    let args: Vec<_> = args.collect();
    let borrowed = format_ident!("__borrowed", span = Span::mixed_site());
    // The owned key, from the borrowed one (see `KeyTypes::owned_key`).
    let clone_key = (types.computed.is_none() && !parts.is_empty()).then(|| {
        quote!(let #owned = { use #krate::__private::Parts as _; #cache.dogpile_key(#borrowed) };)
    });
    let create = creator(cx, &args, true);
    let entry = format_ident!("__entry", span = Span::mixed_site());
    let hit_value = format_ident!("__hit", span = Span::mixed_site());
    // The `__private` helpers are given the value type (checked, see `KeyTypes`): when it
    // failed its check, the creator's own type is not checked again by them.
    let value_ty = &types.value_ty;
    // A fallible call goes through a `__private` helper that states the error's bound in
    // the user's terms (`ErrorShared`).
    let lookup_call = if fallible {
        let helper = if cx.is_async {
            format_ident!("try_get_background_async", span = cx.error_span)
        } else {
            format_ident!("try_get_background", span = cx.error_span)
        };
        let error_ty = &cx.error_ty;
        quote!(#krate::__private::#helper::<_, #value_ty, _, #error_ty, _>(#entry, #create))
    } else {
        quote!(#entry.#call(#create))
    };
    let hit = if fallible {
        quote!(::core::result::Result::Ok(#hit_value))
    } else {
        quote!(#hit_value)
    };
    let (compute_key, lookup) = (&types.compute_key, &types.lookup);
    let to_option = skip_none(cx).then(|| quote!(.ok()));
    quote! {
        #compute_key
        // A `let` of the borrowed key keeps its temporaries alive for the match.
        let #borrowed = #lookup;
        let #entry = #cache.entry_by_ref(#borrowed);
        match #krate::__private::background_hit::<_, #value_ty, _>(&#entry) {
            ::core::option::Option::Some(#hit_value) => #hit,
            ::core::option::Option::None => {
                #clone_key
                #lookup_call #await_
            }
        } #to_option
    }
}

/// An inline (or `sync_readers`) wrapper: owned key parts are borrowed by the lookup, so
/// the creator clones them (only when it runs), through the cache so that a part that
/// failed its check gives no further error; the other arguments move into it.
fn inline_body(cx: &Context, types: &KeyTypes) -> TokenStream {
    let (krate, cache) = (cx.krate, &cx.cache);
    let fallible = cx.func.output.is_fallible();
    let args: Vec<_> = cx
        .func
        .args
        .iter()
        .map(|arg| {
            let ident = &arg.ident;
            match arg.kind {
                ArgKind::Owned if arg.in_key => {
                    quote_spanned!(arg.ty.span()=>
                        { use #krate::__private::Parts as _; #cache.dogpile_clone(&#ident) }
                    )
                }
                _ => quote!(#ident),
            }
        })
        .collect();
    let create = creator(cx, &args, false);
    let (compute_key, lookup) = (&types.compute_key, &types.lookup);
    let to_option = skip_none(cx).then(|| quote!(.ok()));
    if cx.is_async {
        // The creator is pinned here and passed as `dyn Future + Send` (`DynCreate`), so
        // the runtime's async path is compiled once per key and value type, not per fn.
        // A fallible call's helper states the error's bound in the user's terms.
        let helper = if fallible {
            format_ident!("try_get_async_dyn", span = cx.error_span)
        } else {
            format_ident!("get_async")
        };
        let pinned = quote!(::core::pin::pin!(#create));
        // The value type is named (checked, see `KeyTypes::value_ty`): when it failed its
        // check, the creator's own type is not checked again here.
        let value_ty = &types.value_ty;
        let error_ty = &cx.error_ty;
        let params = if fallible {
            quote!(::<_, #value_ty, _, #error_ty>)
        } else {
            quote!(::<_, #value_ty, _>)
        };
        quote! {
            #compute_key
            #krate::__private::#helper #params (#cache.entry_by_ref(#lookup), #pinned).await #to_option
        }
    } else {
        // Through a `__private` helper, which puts the creator behind `dyn` on a miss only:
        // the runtime's slow path is compiled once per key and value type, not per fn,
        // and a hit builds no creator.
        let calls = if cx.options.sync_readers.is_some() {
            quote!(ReaderCalls)
        } else {
            quote!(InlineCalls)
        };
        let call = if fallible {
            let call = format_ident!("dogpile_try_get", span = cx.error_span);
            let error_ty = &cx.error_ty;
            quote!(#call::<_, #error_ty>)
        } else {
            quote!(dogpile_get)
        };
        quote! {
            #compute_key
            {
                use #krate::__private::#calls as _;
                #cache.#call(#lookup, #create)
            } #to_option
        }
    }
}

/// The `sync_readers` wrapper's return type: `T` becomes `ReadGuard<T>`,
/// `Result<T, E>` (or `io::Result<T>`) becomes `Result<ReadGuard<T>, E>`, and with
/// `skip_none`, `Option<T>` becomes `Option<ReadGuard<T>>`.
fn guarded_output(written: &ReturnType, output: &Output, krate: &syn::Path) -> ReturnType {
    let guard = |ty: &dyn ToTokens| -> Type { syn::parse_quote!(#krate::ReadGuard<#ty>) };
    match output {
        Output::Unit => syn::parse_quote!(-> #krate::ReadGuard<()>),
        Output::Value(ty) => {
            let ty = guard(ty);
            syn::parse_quote!(-> #ty)
        }
        Output::Result { ty, ok } | Output::Option { ty, some: ok } => {
            let mut ty = ty.clone();
            if let Some(first) = first_type_arg(&mut ty) {
                *first = guard(ok);
                syn::parse_quote!(-> #ty)
            } else {
                written.clone()
            }
        }
    }
}

/// The `T` of `Result<T, ..>`, looking through groups and parentheses.
fn first_type_arg(ty: &mut Type) -> Option<&mut Type> {
    match ty {
        Type::Group(g) => first_type_arg(&mut g.elem),
        Type::Paren(p) => first_type_arg(&mut p.elem),
        Type::Path(p) => match &mut p.path.segments.last_mut()?.arguments {
            PathArguments::AngleBracketed(args) => match args.args.first_mut()? {
                GenericArgument::Type(t) => Some(t),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}
