//! The batch form's code (`batch = ids`): the wrapper answers every id through
//! `Cache::get_many_with` (or its kin) and calls the body with the missing ids only;
//! `{fn}_prime` runs the body for all the ids and stores each value. The handle and
//! `{fn}_no_cache` are the plain form's.

use super::key::{checked, KeyTypes, KEY, VALUE};
use super::{companions, handle, plain_sig, Context};
use crate::ast::{ArgKind, Batch};
use crate::types::unwrap_type;
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::Type;

/// Every item of a batch fn.
pub fn expand(cx: &Context, batch: &Batch) -> TokenStream {
    let types = key_types(cx, batch);
    let cache = handle::binding(cx, &types);
    let wrapper = wrapper(cx, batch, &types, &cache);
    let no_cache = companions::no_cache(cx);
    let prime = prime(cx, batch, &cache);
    let handle = handle::item(cx, &types);
    quote! {
        #wrapper
        #no_cache
        #prime
        #handle
    }
}

/// The cache's key is the slice's element, its value the `Vec`'s.
fn key_types<'a>(cx: &Context<'a>, batch: &'a Batch) -> KeyTypes<'a> {
    let krate = cx.krate;
    let (key, value) = (&batch.key, &batch.value);
    KeyTypes {
        parts: Vec::new(),
        computed: None,
        key_ty: checked(krate, key, KEY),
        value_ty: checked(krate, value, VALUE),
        plain_key_ty: quote!(#key),
        plain_value_ty: quote!(#value),
        compute_key: None,
        lookup: TokenStream::new(),
        owned_key: TokenStream::new(),
    }
}

/// The body's arguments in a creator call: the missing ids for the slice, and each
/// context argument, a reference copied or an owned value cloned (the body may be called
/// more than once per call: a key another caller was creating may need a value again).
fn creator_args(cx: &Context, batch: &Batch, missing: &TokenStream) -> Vec<TokenStream> {
    cx.func
        .args
        .iter()
        .enumerate()
        .map(|(i, arg)| {
            let ident = &arg.ident;
            if i == batch.arg {
                missing.clone()
            } else if matches!(arg.kind, ArgKind::Ref(_))
                || matches!(unwrap_type(&arg.ty), Type::Reference(_))
            {
                quote!(#ident)
            } else {
                quote_spanned!(arg.ty.span()=> ::core::clone::Clone::clone(&#ident))
            }
        })
        .collect()
}

fn wrapper(cx: &Context, batch: &Batch, types: &KeyTypes, cache: &TokenStream) -> TokenStream {
    let func = cx.func;
    let (krate, no_cache_fn, self_arg, handle) =
        (cx.krate, &cx.no_cache_fn, &cx.self_arg, &cx.cache);
    let ids = &func.args[batch.arg].ident;
    let missing = format_ident!("__missing", span = Span::mixed_site());
    let fallible = func.output.is_result();
    // A fallible call's helper is given the key, value and error types (checked, see
    // `KeyTypes`): when one failed its check, the ids' and the creator's own types are
    // not checked again there.
    let (key_ty, value_ty, error_ty) = (&types.key_ty, &types.value_ty, &cx.error_ty);
    let body = if cx.is_async {
        // Each owned context argument is cloned into the future, which owns the ids.
        let clones = func.args.iter().enumerate().filter_map(|(i, arg)| {
            let ident = &arg.ident;
            let owned = i != batch.arg
                && !matches!(arg.kind, ArgKind::Ref(_))
                && !matches!(unwrap_type(&arg.ty), Type::Reference(_));
            owned.then(|| quote_spanned!(arg.ty.span()=> let #ident = ::core::clone::Clone::clone(&#ident);))
        });
        let clones: Vec<_> = clones.collect();
        let plain_args = func.args.iter().enumerate().map(|(i, arg)| {
            let ident = &arg.ident;
            if i == batch.arg {
                quote!(&#missing)
            } else {
                quote!(#ident)
            }
        });
        let plain_args: Vec<_> = plain_args.collect();
        let create = quote! {
            |#missing: ::std::vec::Vec<_>| {
                #(#clones)*
                async move { #no_cache_fn(#self_arg #(#plain_args),*).await }
            }
        };
        if fallible {
            let helper = format_ident!("try_get_many_async", span = cx.error_span);
            quote!(#krate::__private::#helper::<#key_ty, #value_ty, #error_ty, _, _>(#handle, #ids, #create).await)
        } else {
            quote!(#handle.get_many_with_async(#ids, #create).await)
        }
    } else {
        let args = creator_args(cx, batch, &quote!(#missing));
        let create = quote!(|#missing| #no_cache_fn(#self_arg #(#args),*));
        if fallible {
            let helper = format_ident!("try_get_many", span = cx.error_span);
            quote!(#krate::__private::#helper::<#key_ty, #value_ty, #error_ty, _>(#handle, #ids, #create))
        } else {
            quote!(#handle.get_many_with(#ids, #create))
        }
    };
    let sig = plain_sig(func);
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

/// `{fn}_prime`: runs the body for every id and stores each value (with a `Result`, only
/// an `Ok`'s) as fresh, whatever was cached.
fn prime(cx: &Context, batch: &Batch, cache: &TokenStream) -> TokenStream {
    let func = cx.func;
    let name = &func.sig.ident;
    let (no_cache_fn, self_arg, await_) = (&cx.no_cache_fn, &cx.self_arg, &cx.await_);
    let (value, handle) = (&cx.value, &cx.cache);
    let ids = &func.args[batch.arg].ident;
    let args = cx.moved_args();
    let (id, one) = (
        format_ident!("__id", span = Span::mixed_site()),
        format_ident!("__one", span = Span::mixed_site()),
    );
    // The clones go through the cache, so that an id or value type that failed its check
    // gives no further error here.
    let krate = cx.krate;
    let store = |values: TokenStream| {
        quote! {
            for (#id, #one) in ::core::iter::Iterator::zip(#ids.iter(), #values.iter()) {
                use #krate::__private::Parts as _;
                #handle.insert(#handle.dogpile_clone(#id), #handle.dogpile_clone(#one));
            }
        }
    };
    let stored = if func.output.is_result() {
        let ok = format_ident!("__ok", span = Span::mixed_site());
        let store = store(quote!(#ok));
        quote!(if let ::core::result::Result::Ok(#ok) = &#value { #store })
    } else {
        store(quote!(#value))
    };
    let mut sig = plain_sig(func);
    sig.ident = cx.prime.clone();
    let doc = format!(
        " Runs the body of [`{name}`] for all of `{ids}` and stores each value as fresh, \
         whatever was cached."
    );
    let attrs = func.attrs.iter().filter(|a| super::for_companion_fn(a));
    let vis = &func.vis;
    quote! {
        #[doc = #doc]
        #(#attrs)*
        #[allow(dead_code)]
        #vis #sig {
            #cache
            let #value = #no_cache_fn(#self_arg #(#args),*) #await_;
            #stored
            #value
        }
    }
}
