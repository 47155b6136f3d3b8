//! The wrapper's companions: `{fn}_no_cache`, the body as written, and `{fn}_prime`,
//! which runs it and stores its value as fresh.

use super::key::KeyTypes;
use super::{for_companion_fn, plain_sig, Context};
use crate::ast::Output;
use proc_macro2::TokenStream;
use quote::quote;

/// `{fn}_no_cache`: the original signature and body under the new name.
pub fn no_cache(cx: &Context) -> TokenStream {
    let func = cx.func;
    let name = &func.sig.ident;
    let mut sig = func.sig.clone();
    sig.ident = cx.no_cache.clone();
    let doc =
        format!(" Runs the body of [`{name}`] without the cache: never reads or stores a value.");
    let attrs = func.attrs.iter().filter(|a| for_companion_fn(a));
    let (vis, block) = (&func.vis, &func.block);
    quote! {
        #[doc = #doc]
        #(#attrs)*
        #[allow(dead_code)]
        #vis #sig #block
    }
}

/// `{fn}_prime`: runs the body and stores its value (an `Ok`, a `Some`) for these
/// arguments, whatever was cached. `cache` binds the cache as a local.
pub fn prime(cx: &Context, types: &KeyTypes, cache: &TokenStream) -> TokenStream {
    let func = cx.func;
    let name = &func.sig.ident;
    let (no_cache_fn, self_arg, await_) = (&cx.no_cache_fn, &cx.self_arg, &cx.await_);
    let (key, value, handle) = (&cx.key, &cx.value, &cx.cache);
    let (compute_key, owned_key) = (&types.compute_key, &types.owned_key);
    let args = cx.moved_args();
    // The value's clone goes through the cache, so that a value that failed its check
    // gives no further error here.
    let krate = cx.krate;
    let clone =
        |v: TokenStream| quote!({ use #krate::__private::Parts as _; #handle.dogpile_clone(#v) });
    let (clone_value, clone_ok, clone_some) = (
        clone(quote!(&#value)),
        clone(quote!(ok)),
        clone(quote!(some)),
    );
    let body = match &func.output {
        Output::Unit => quote! {
            #compute_key
            let #key = #owned_key;
            #no_cache_fn(#self_arg #(#args),*)#await_;
            #handle.insert(#key, ());
        },
        Output::Value(_) => quote! {
            #compute_key
            let #key = #owned_key;
            let #value = #no_cache_fn(#self_arg #(#args),*)#await_;
            #handle.insert(#key, #clone_value);
            #value
        },
        Output::Result { .. } => quote! {
            #compute_key
            let #key = #owned_key;
            let #value = #no_cache_fn(#self_arg #(#args),*)#await_;
            if let ::core::result::Result::Ok(ok) = &#value {
                #handle.insert(#key, #clone_ok);
            }
            #value
        },
        Output::Option { .. } => quote! {
            #compute_key
            let #key = #owned_key;
            let #value = #no_cache_fn(#self_arg #(#args),*)#await_;
            if let ::core::option::Option::Some(some) = &#value {
                #handle.insert(#key, #clone_some);
            }
            #value
        },
    };
    let mut sig = plain_sig(func);
    sig.ident = cx.prime.clone();
    let doc = if func.output.is_result() {
        format!(" Runs the body of [`{name}`] and, if it returns `Ok`, stores that value for these arguments as fresh, whatever was cached.")
    } else {
        format!(" Runs the body of [`{name}`] and stores its value for these arguments as fresh, whatever was cached.")
    };
    let attrs = func.attrs.iter().filter(|a| for_companion_fn(a));
    let vis = &func.vis;
    quote! {
        #[doc = #doc]
        #(#attrs)*
        #[allow(dead_code)]
        #vis #sig {
            #cache
            #body
        }
    }
}
