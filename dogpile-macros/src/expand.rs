//! Turns the checked model into code: the wrapper, `{fn}_no_cache`, `{fn}_prime` and the
//! `static` cache handle.

use crate::ast::{ArgKind, AttrArgs, Func, Options, Output, SpannedDuration};
use crate::validate::{self, handle_name};
use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{
    Attribute, GenericArgument, ItemFn, Meta, Pat, PatIdent, PathArguments, ReturnType, Type,
};

/// The attribute: parse, validate, expand. On any error, the fn is emitted unchanged
/// beside the errors, so its callers still compile and only the real error shows.
pub fn attribute(args: TokenStream, input: TokenStream) -> TokenStream {
    let item = match syn::parse2::<ItemFn>(input.clone()) {
        Ok(item) => item,
        Err(_) => {
            let error = syn::Error::new(
                Span::call_site(),
                "#[dogpile] goes on a fn with a body, such as \
                 `#[dogpile(ttl = \"60s\")] fn render(page: &str) -> String { .. }`",
            )
            .to_compile_error();
            return quote!(#error #input);
        }
    };
    let args = syn::parse2::<AttrArgs>(args);
    match validate::validate(args, item, Span::call_site()) {
        Ok((options, func)) => expand(&options, &func),
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#error #input)
        }
    }
}

/// The code for a checked fn. See the crate docs for its shape.
pub fn expand(options: &Options, func: &Func) -> TokenStream {
    let krate = &options.krate;
    let vis = &func.vis;
    let name = &func.sig.ident;
    let handle = handle_name(options, func)
        .unwrap_or_else(|| format_ident!("DOGPILE_CACHE", span = name.span()));
    let no_cache = format_ident!("{}_no_cache", name, span = name.span());
    let prime = format_ident!("{}_prime", name, span = name.span());
    let is_async = func.sig.asyncness.is_some();
    let background = options.background.is_some();
    let sync_readers = options.sync_readers.is_some();
    let result = func.output.is_result();

    // The key: a tuple of the keyed arguments' owned forms. Each part (and the value) is
    // written `<T as KeyPart>::Is`, spanned on `T`: that is `T` itself, but when `T` lacks
    // `Hash`, `Clone`, ... rustc reports it once, at `T` in the signature, instead of at
    // every use of the cache.
    let keyed: Vec<_> = func.args.iter().filter(|a| a.is_keyed()).collect();
    let key_ty = tuple(keyed.iter().map(|arg| match &arg.kind {
        ArgKind::Ref(inner) => {
            let owned = quote_spanned!(inner.span()=> <#inner as ::std::borrow::ToOwned>::Owned);
            checked(inner, &owned, quote!(#krate::__private::KeyPart))
        }
        _ => checked(&arg.ty, &arg.ty, quote!(#krate::__private::KeyPart)),
    }));
    let value_ty = match &func.output {
        Output::Unit => quote!(()),
        Output::Value(ty) | Output::Result { ok: ty, .. } => {
            checked(ty, ty, quote!(#krate::__private::ValuePart))
        }
    };
    // `(page, &lang)`: what a fresh hit looks the key up by, without allocating.
    let borrowed_key = tuple(keyed.iter().map(|arg| {
        let ident = &arg.ident;
        match arg.kind {
            ArgKind::Ref(_) => quote!(#ident),
            _ => quote!(&#ident),
        }
    }));
    // `(page.to_owned(), lang.clone())`: the key to store.
    let owned_key = tuple(keyed.iter().map(|arg| {
        let ident = &arg.ident;
        match &arg.kind {
            ArgKind::Ref(inner) => {
                quote_spanned!(inner.span()=> ::std::borrow::ToOwned::to_owned(#ident))
            }
            _ => quote_spanned!(arg.ty.span()=> ::core::clone::Clone::clone(&#ident)),
        }
    }));
    let moved_args: Vec<_> = func
        .args
        .iter()
        .map(|a| a.ident.to_token_stream())
        .collect();
    let key = format_ident!("__key", span = Span::mixed_site());
    let value = format_ident!("__value", span = Span::mixed_site());

    let await_ = is_async.then(|| quote!(.await));
    let body = if is_async && !background {
        let method = if result {
            quote!(try_get_with_async)
        } else {
            quote!(get_with_async)
        };
        quote!(#handle.#method(#owned_key, #no_cache(#(#moved_args),*)).await)
    } else if let Some(background_span) = options.background {
        // Spanned on the `background` option: an error about the call (a creator that is
        // not `Send + 'static`) points there.
        let method = match (is_async, result) {
            (false, false) => "get_with",
            (false, true) => "try_get_with",
            (true, false) => "get_with_async",
            (true, true) => "try_get_with_async",
        };
        let method = syn::Ident::new(method, background_span);
        // The creator may run on another thread or task: it owns a clone of the key and
        // borrows the `&T` arguments from it.
        let owned = format_ident!("__owned", span = Span::mixed_site());
        let mut index = 0;
        let args = func.args.iter().map(|arg| {
            let ident = &arg.ident;
            let i = syn::Index::from(index);
            match arg.kind {
                ArgKind::Ignored => return quote!(#ident),
                _ => index += 1,
            }
            match arg.kind {
                ArgKind::Ref(_) => quote!(::core::borrow::Borrow::borrow(&#owned.#i)),
                _ => quote!(#owned.#i),
            }
        });
        let args: Vec<_> = args.collect();
        let clone_key =
            (!keyed.is_empty()).then(|| quote!(let #owned = ::core::clone::Clone::clone(&#key);));
        let create = if is_async {
            quote!(async move { #no_cache(#(#args),*).await })
        } else {
            quote!(move || #no_cache(#(#args),*))
        };
        quote! {
            let #key = #owned_key;
            #clone_key
            #handle.#method(#key, #create)#await_
        }
    } else {
        let method = if result {
            quote!(try_get_with)
        } else {
            quote!(get_with)
        };
        // Owned arguments are borrowed by the key during the lookup, so the creator clones them.
        let args = func.args.iter().map(|arg| {
            let ident = &arg.ident;
            match arg.kind {
                ArgKind::Owned => {
                    quote_spanned!(arg.ty.span()=> ::core::clone::Clone::clone(&#ident))
                }
                _ => quote!(#ident),
            }
        });
        quote!(#handle.entry_by_ref(&#borrowed_key).#method(|| #no_cache(#(#args),*)))
    };

    let prime_body = match &func.output {
        Output::Unit => quote! {
            let #key = #owned_key;
            #no_cache(#(#moved_args),*)#await_;
            #handle.insert(#key, ());
        },
        Output::Value(_) => quote! {
            let #key = #owned_key;
            let #value = #no_cache(#(#moved_args),*)#await_;
            #handle.insert(#key, ::core::clone::Clone::clone(&#value));
            #value
        },
        Output::Result { .. } => quote! {
            let #key = #owned_key;
            let #value = #no_cache(#(#moved_args),*)#await_;
            if let ::core::result::Result::Ok(ok) = &#value {
                #handle.insert(#key, ::core::clone::Clone::clone(ok));
            }
            #value
        },
    };

    // Signatures: the wrapper and `_prime` bind each argument by plain name.
    let mut wrapper_sig = func.sig.clone();
    for (input, arg) in wrapper_sig.inputs.iter_mut().zip(&func.args) {
        if let syn::FnArg::Typed(typed) = input {
            typed.attrs.clear();
            *typed.pat = Pat::Ident(PatIdent {
                attrs: Vec::new(),
                by_ref: None,
                mutability: None,
                ident: arg.ident.clone(),
                subpat: None,
            });
        }
    }
    let mut prime_sig = wrapper_sig.clone();
    prime_sig.ident = prime.clone();
    let mut no_cache_sig = func.sig.clone();
    no_cache_sig.ident = no_cache.clone();
    if sync_readers {
        wrapper_sig.output = guarded_output(&func.sig.output, &func.output, krate);
    }

    let ttl = duration(krate, options.ttl);
    let capacity = options.capacity.map(|n| {
        let n = Literal::usize_unsuffixed(n);
        quote!(.capacity(#n))
    });
    let background_refresh = background.then(|| quote!(.background_refresh()));
    let mode = if background {
        quote!(#krate::mode::Background)
    } else if sync_readers {
        quote!(#krate::mode::SyncReaders)
    } else {
        quote!(#krate::mode::Inline)
    };
    let stale_if_error = options.stale_if_error.map(|_| quote!(.stale_if_error()));
    let max_stale = options.max_stale.map(|d| {
        let d = duration(krate, d);
        quote!(.max_stale(#d))
    });
    let sync_readers_call = sync_readers.then(|| quote!(.sync_readers()));
    let clock = options.clock.as_ref().map(|expr| quote!(.clock(#expr)));

    let wrapper_attrs = &func.attrs;
    let fn_attrs: Vec<_> = func.attrs.iter().filter(|a| for_companion_fn(a)).collect();
    let static_attrs: Vec<_> = func.attrs.iter().filter(|a| for_static(a)).collect();
    let no_cache_doc =
        format!(" Runs the body of [`{name}`] without the cache: never reads or stores a value.");
    let prime_doc = if result {
        format!(" Runs the body of [`{name}`] and, if it returns `Ok`, stores that value for these arguments as fresh, whatever was cached.")
    } else {
        format!(" Runs the body of [`{name}`] and stores its value for these arguments as fresh, whatever was cached.")
    };
    let handle_doc =
        format!(" The cache behind [`{name}`]: `invalidate`, `remove`, `clear`, `stats`.");
    let block = &func.block;

    quote! {
        #(#wrapper_attrs)*
        #vis #wrapper_sig {
            #body
        }

        #[doc = #no_cache_doc]
        #(#fn_attrs)*
        #[allow(dead_code)]
        #vis #no_cache_sig #block

        #[doc = #prime_doc]
        #(#fn_attrs)*
        #[allow(dead_code)]
        #vis #prime_sig {
            #prime_body
        }

        #[doc = #handle_doc]
        #(#static_attrs)*
        #[allow(dead_code)]
        #vis static #handle: #krate::__private::LazyLock<#krate::Cache<#key_ty, #value_ty, #mode>> =
            #krate::__private::LazyLock::new(|| {
                #krate::Cache::builder()
                    .ttl(#ttl)
                    #capacity
                    #background_refresh
                    #stale_if_error
                    #max_stale
                    #sync_readers_call
                    #clock
                    .build()
            });
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

/// `()`, `(a,)`, `(a, b)`.
fn tuple(parts: impl Iterator<Item = TokenStream>) -> TokenStream {
    let parts: Vec<_> = parts.collect();
    match parts.len() {
        1 => {
            let part = &parts[0];
            quote!((#part,))
        }
        _ => quote!((#(#parts),*)),
    }
}

/// `Duration::new(secs, nanos)`, spanned on the literal it came from.
fn duration(krate: &syn::Path, d: SpannedDuration) -> TokenStream {
    let secs = Literal::u64_unsuffixed(d.value.as_secs());
    let nanos = Literal::u32_unsuffixed(d.value.subsec_nanos());
    quote_spanned!(d.span=> #krate::__private::Duration::new(#secs, #nanos))
}

/// The `sync_readers` wrapper's return type: `T` becomes `ReadGuard<T>`, and
/// `Result<T, E>` (or `io::Result<T>`) becomes `Result<ReadGuard<T>, E>`.
fn guarded_output(written: &ReturnType, output: &Output, krate: &syn::Path) -> ReturnType {
    let guard = |ty: &dyn ToTokens| -> Type { syn::parse_quote!(#krate::ReadGuard<#ty>) };
    match output {
        Output::Unit => syn::parse_quote!(-> #krate::ReadGuard<()>),
        Output::Value(ty) => {
            let ty = guard(ty);
            syn::parse_quote!(-> #ty)
        }
        Output::Result { ty, ok } => {
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

/// Attributes that only the wrapper gets: its docs, and symbol names.
fn wrapper_only(attr: &Attribute) -> bool {
    let path = attr.path();
    (path.is_ident("doc") && matches!(attr.meta, Meta::NameValue(_)))
        || ["no_mangle", "export_name", "link_section", "unsafe", "test"]
            .iter()
            .any(|name| path.is_ident(name))
}

/// `_no_cache` and `_prime` get every attribute but the wrapper's docs and symbol names.
fn for_companion_fn(attr: &Attribute) -> bool {
    !wrapper_only(attr)
}

/// The `static` gets `cfg`, lint levels, `deprecated` and `doc(hidden)`.
fn for_static(attr: &Attribute) -> bool {
    let path = attr.path();
    [
        "cfg",
        "allow",
        "warn",
        "deny",
        "forbid",
        "expect",
        "deprecated",
    ]
    .iter()
    .any(|name| path.is_ident(name))
        || (path.is_ident("doc") && matches!(attr.meta, Meta::List(_)))
}
