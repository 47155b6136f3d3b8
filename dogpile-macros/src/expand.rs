//! Turns the checked model into code: the wrapper, `{fn}_no_cache`, `{fn}_prime` and the
//! `static` cache handle.

use crate::ast::{Arg, ArgKind, AttrArgs, Func, Key, Options, Output, SpannedDuration};
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
    // Where the cache is: a `static`; for a `&self` method, the field `self.{field}`; in
    // an `impl` block otherwise, a `static` inside the associated fn `{fn}_cache()` (an
    // `impl` can't hold a `static`).
    let method = validate::in_impl(options, func);
    let field_cache = format_ident!("__cache", span = Span::mixed_site());
    let cache = quote!(#field_cache);
    let no_cache_fn = if method {
        quote!(Self::#no_cache)
    } else {
        quote!(#no_cache)
    };
    let self_arg = func.receiver.is_some().then(|| quote!(self,));
    let prime = format_ident!("{}_prime", name, span = name.span());
    let is_async = func.sig.asyncness.is_some();
    let background = options.background.is_some();
    let sync_readers = options.sync_readers.is_some();
    let result = func.output.is_result();
    let fallible = func.output.is_fallible();
    // Where a missing bound on the error type is reported: the user's return type.
    let error_span = match &func.output {
        Output::Result { ty, .. } => ty.span(),
        _ => Span::call_site(),
    };

    let key = format_ident!("__key", span = Span::mixed_site());
    let value = format_ident!("__value", span = Span::mixed_site());
    let parts: Vec<&Arg> = match &func.key {
        Key::Args(indices) => indices.iter().map(|&i| &func.args[i]).collect(),
        Key::Computed { .. } => Vec::new(),
    };
    let computed = match &func.key {
        Key::Computed { ty, expr } => Some((ty, expr)),
        Key::Args(_) => None,
    };

    // The key type: one part is the key itself, several form a tuple, none make `()`.
    // Each part (and the value) is written `<T as KeyPart>::Is`, spanned on `T`: that is
    // `T` itself, but when `T` lacks `Hash`, `Clone`, ... rustc reports it once, at `T`
    // in the signature, instead of at every use of the cache.
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
    // The same types as the user reads them, for the declared type of the `static` (and
    // so its rustdoc): `String` for `&str`, `Vec<T>` for `&[T]`, `T` for `&T`.
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
    // `let __key: T = EXPR;` for a computed key, before the arguments move into the body.
    let compute_key = computed.map(|(ty, expr)| quote!(let #key: #ty = #expr;));
    // What a fresh hit looks the key up by, without allocating: `&(page, &lang)` for
    // several parts, `&&id` (a `&u64`, see `KeyRef`) for one, `&()` for none.
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
    // `(page.to_owned(), lang.clone())`: the key to store.
    let owned_key = match computed {
        Some(_) => quote!(#key),
        None => tuple(parts.iter().map(|arg| {
            let ident = &arg.ident;
            match &arg.kind {
                ArgKind::Ref(inner) => {
                    quote_spanned!(inner.span()=> ::std::borrow::ToOwned::to_owned(#ident))
                }
                _ => quote_spanned!(arg.ty.span()=> ::core::clone::Clone::clone(&#ident)),
            }
        })),
    };
    let moved_args: Vec<_> = func
        .args
        .iter()
        .map(|a| a.ident.to_token_stream())
        .collect();

    // `skip_none`: the body's `None` is an error the cache does not store, turned back
    // into `None` for the caller.
    let skip_none = matches!(func.output, Output::Option { .. });
    let await_ = is_async.then(|| quote!(.await));
    // The creator: the body's call, awaited in an `async` block for an `async fn`.
    let creator = |args: &[TokenStream], move_: bool| {
        let call = quote!(#no_cache_fn(#self_arg #(#args),*) #await_);
        let call = if skip_none {
            quote!(#krate::__private::some_or_skip(#call))
        } else if result {
            // Notes the error's `Display` (if it has one) for the `tracing` failure event.
            quote!(#krate::__note_error!(#call))
        } else {
            call
        };
        let move_ = move_.then(|| quote!(move));
        if is_async {
            quote!(async #move_ { #call })
        } else {
            quote!(#move_ || #call)
        }
    };
    let to_option = skip_none.then(|| quote!(.ok()));
    let call = match (is_async, fallible) {
        (false, false) => "get_with",
        (false, true) => "try_get_with",
        (true, false) => "get_with_async",
        (true, true) => "try_get_with_async",
    };
    // Every wrapper looks the key up by reference: a fresh hit builds no owned key.
    let body = if let Some(background_span) = options.background {
        // Spanned on the `background` option: an error about the call (a creator that is
        // not `Send + 'static`) points there.
        let call = syn::Ident::new(call, background_span);
        // The creator may run on another thread or task after the call has returned: it
        // owns a clone of the key parts and borrows the `&T` ones from it; the other
        // arguments (owned, as validation checks) move in.
        let owned = format_ident!("__owned", span = Span::mixed_site());
        let args = func.args.iter().map(|arg| {
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
        let clone_key =
            (computed.is_none() && !parts.is_empty()).then(|| quote!(let #owned = #owned_key;));
        let create = creator(&args, true);
        let entry = format_ident!("__entry", span = Span::mixed_site());
        let hit_value = format_ident!("__hit", span = Span::mixed_site());
        let borrowed = format_ident!("__borrowed", span = Span::mixed_site());
        // A fallible call goes through a `__private` helper that states the error's
        // bound in the user's terms (`ErrorShared`).
        let lookup_call = if fallible {
            let helper = if is_async {
                format_ident!("try_get_background_async", span = error_span)
            } else {
                format_ident!("try_get_background", span = error_span)
            };
            quote!(#krate::__private::#helper(#entry, #create))
        } else {
            quote!(#entry.#call(#create))
        };
        // The hit path first: the key parts are cloned for the creator only on a miss.
        let hit = if fallible {
            quote!(::core::result::Result::Ok(#hit_value))
        } else {
            quote!(#hit_value)
        };
        quote! {
            #compute_key
            // A `let` of the borrowed key keeps its temporaries alive for the match.
            let #borrowed = #lookup;
            let #entry = #cache.entry_by_ref(#borrowed);
            match #krate::__private::background_hit(&#entry) {
                ::core::option::Option::Some(#hit_value) => #hit,
                ::core::option::Option::None => {
                    #clone_key
                    #lookup_call #await_
                }
            } #to_option
        }
    } else {
        // Owned key parts are borrowed by the lookup, so the creator clones them (only
        // when it runs); the other arguments move into it.
        let args: Vec<_> = func
            .args
            .iter()
            .map(|arg| {
                let ident = &arg.ident;
                match arg.kind {
                    ArgKind::Owned if arg.in_key => {
                        quote_spanned!(arg.ty.span()=> ::core::clone::Clone::clone(&#ident))
                    }
                    _ => quote!(#ident),
                }
            })
            .collect();
        let create = creator(&args, false);
        if is_async {
            // The creator is pinned here and passed as `dyn Future + Send` (`DynCreate`),
            // so the runtime's async path is compiled once per key and value type, not
            // per fn. A fallible call's helper states the error's bound in the user's terms.
            let helper = if fallible {
                format_ident!("try_get_async_dyn", span = error_span)
            } else {
                format_ident!("get_async")
            };
            let pinned = quote!(::core::pin::pin!(#create));
            quote! {
                #compute_key
                #krate::__private::#helper(#cache.entry_by_ref(#lookup), #pinned).await #to_option
            }
        } else {
            // Through a `__private` helper that takes the creator as `&mut dyn FnMut`, so
            // the runtime's slow path is compiled once per key and value type, not per fn.
            let calls = if sync_readers {
                quote!(ReaderCalls)
            } else {
                quote!(InlineCalls)
            };
            let call = if fallible {
                let call = format_ident!("dogpile_try_get", span = error_span);
                quote!(#call)
            } else {
                quote!(dogpile_get)
            };
            quote! {
                #compute_key
                {
                    use #krate::__private::#calls as _;
                    #cache.#call(#lookup, &mut #krate::__private::once(#create))
                } #to_option
            }
        }
    };

    let prime_body = match &func.output {
        Output::Unit => quote! {
            #compute_key
            let #key = #owned_key;
            #no_cache_fn(#self_arg #(#moved_args),*)#await_;
            #cache.insert(#key, ());
        },
        Output::Value(_) => quote! {
            #compute_key
            let #key = #owned_key;
            let #value = #no_cache_fn(#self_arg #(#moved_args),*)#await_;
            #cache.insert(#key, ::core::clone::Clone::clone(&#value));
            #value
        },
        Output::Result { .. } => quote! {
            #compute_key
            let #key = #owned_key;
            let #value = #no_cache_fn(#self_arg #(#moved_args),*)#await_;
            if let ::core::result::Result::Ok(ok) = &#value {
                #cache.insert(#key, ::core::clone::Clone::clone(ok));
            }
            #value
        },
        Output::Option { .. } => quote! {
            #compute_key
            let #key = #owned_key;
            let #value = #no_cache_fn(#self_arg #(#moved_args),*)#await_;
            if let ::core::option::Option::Some(some) = &#value {
                #cache.insert(#key, ::core::clone::Clone::clone(some));
            }
            #value
        },
    };

    // Signatures: the wrapper and `_prime` bind each argument by plain name.
    let mut wrapper_sig = func.sig.clone();
    let typed_inputs = wrapper_sig
        .inputs
        .iter_mut()
        .filter(|input| matches!(input, syn::FnArg::Typed(_)));
    for (input, arg) in typed_inputs.zip(&func.args) {
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

    let ttl = options.ttl.map(|ttl| {
        let ttl = duration(krate, ttl);
        quote!(.ttl(#ttl))
    });
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
    // The cache is named after the fn, so that its `tracing` events say which fn.
    let fn_ident = &func.sig.ident;
    let cache_name = quote! {
        .name(::core::concat!(::core::module_path!(), "::", ::core::stringify!(#fn_ident)))
    };
    let clock = options.clock.as_ref().map(|expr| quote!(.clock(#expr)));
    // The fleet tier, scoped to the fn's path so that fns sharing a tier keep their keys
    // apart; through a `__private` helper that names the key and value, so that a type
    // that is not their tier is reported at the expression, in the user's terms.
    let shared = options.shared.as_ref().map(|expr| {
        let scope = quote!(::core::concat!(
            ::core::module_path!(),
            "::",
            ::core::stringify!(#fn_ident)
        ));
        let scoped = quote_spanned!(expr.span()=>
            #krate::__private::scoped_tier::<#key_ty, #value_ty, _>(#expr, #scope)
        );
        quote!(.shared(#scoped))
    });

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
    // The cache's type for the compiler has the `KeyPart` / `ValuePart` projections, so
    // that a missing bound is reported once, at the user's type. Rustdoc (`cfg(doc)`) is
    // shown the same types as the user reads them instead.
    let checked_ty = quote!(#krate::Cache<#key_ty, #value_ty, #mode>);
    let plain_ty = quote!(#krate::Cache<#plain_key_ty, #plain_value_ty, #mode>);
    let build = quote! {
        #krate::__private::LazyLock::new(|| {
            #krate::Cache::builder()
                #ttl
                #cache_name
                #capacity
                #background_refresh
                #stale_if_error
                #max_stale
                #sync_readers_call
                #clock
                #shared
                .build()
        })
    };
    let handle_item = match (&options.field, method) {
        (Some(_), _) => None,
        (None, true) => {
            let cache_static = format_ident!("CACHE", span = Span::mixed_site());
            Some(quote! {
                #[doc = #handle_doc]
                #(#static_attrs)*
                #[allow(dead_code)]
                #[cfg(not(doc))]
                #vis fn #handle() -> &'static #checked_ty {
                    static #cache_static: #krate::__private::LazyLock<#checked_ty> = #build;
                    &#cache_static
                }
                #[doc = #handle_doc]
                #(#static_attrs)*
                #[allow(dead_code)]
                #[cfg(doc)]
                #vis fn #handle() -> &'static #plain_ty {
                    static #cache_static: #krate::__private::LazyLock<#plain_ty> = #build;
                    &#cache_static
                }
            })
        }
        (None, false) => Some(quote! {
            #[doc = #handle_doc]
            #(#static_attrs)*
            #[allow(dead_code)]
            #[cfg(not(doc))]
            #vis static #handle: #krate::__private::LazyLock<#checked_ty> = #build;
            #[doc = #handle_doc]
            #(#static_attrs)*
            #[allow(dead_code)]
            #[cfg(doc)]
            #vis static #handle: #krate::__private::LazyLock<#plain_ty> = #build;
        }),
    };
    // The cache, as `&checked_ty`. A per-instance cache: its field's type must be
    // `Cache<K, V>`, said once, at the option.
    let field_check = match (&options.field, method) {
        (Some(field), _) => {
            let self_ = syn::Token![self](field.span());
            quote_spanned!(field.span()=> let #field_cache: &#checked_ty = &#self_.#field;)
        }
        // Through `handle`, so that an item that took the handle's name is reported in
        // our terms, at the name (the fn's, or `name = ..`).
        (None, true) => {
            quote_spanned!(handle.span()=> let #field_cache = #krate::__private::handle(Self::#handle());)
        }
        (None, false) => {
            quote_spanned!(handle.span()=> let #field_cache = #krate::__private::handle(&#handle);)
        }
    };

    // The wrapper's braces keep the body's spans, so the wrapper is the user's own item to
    // rustc's lints: an unused memoized fn is reported like an unused plain fn.
    let mut wrapper_block = TokenStream::new();
    func.block
        .brace_token
        .surround(&mut wrapper_block, |tokens| {
            tokens.extend(quote!(#field_check #body));
        });

    quote! {
        #(#wrapper_attrs)*
        #vis #wrapper_sig #wrapper_block

        #[doc = #no_cache_doc]
        #(#fn_attrs)*
        #[allow(dead_code)]
        #vis #no_cache_sig #block

        #[doc = #prime_doc]
        #(#fn_attrs)*
        #[allow(dead_code)]
        #vis #prime_sig {
            #field_check
            #prime_body
        }

        #handle_item
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
    match crate::validate::unwrap_type(inner) {
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
fn tuple(parts: impl Iterator<Item = TokenStream>) -> TokenStream {
    let parts: Vec<_> = parts.collect();
    match parts.len() {
        1 => parts[0].clone(),
        _ => quote!((#(#parts),*)),
    }
}

/// `Duration::new(secs, nanos)`, spanned on the literal it came from.
fn duration(krate: &syn::Path, d: SpannedDuration) -> TokenStream {
    let secs = Literal::u64_unsuffixed(d.value.as_secs());
    let nanos = Literal::u32_unsuffixed(d.value.subsec_nanos());
    quote_spanned!(d.span=> #krate::__private::Duration::new(#secs, #nanos))
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
