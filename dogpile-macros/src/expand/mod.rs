//! Turns the checked model into code, one generator per item: the key and value types
//! (`key`), the wrapper (`wrapper`), `{fn}_no_cache` and `{fn}_prime` (`companions`),
//! and the cache handle with the binding every generated fn reaches it through
//! (`handle`). See the crate docs for the shape of the output.

mod batch;
mod companions;
mod handle;
mod key;
mod wrapper;

use crate::ast::{Func, Options, Output};
use crate::attr::AttrArgs;
use crate::naming::{handle_name, in_impl};
use crate::types::result_err_type;
use crate::validate::validate;
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, ToTokens};
use syn::spanned::Spanned;
use syn::{Attribute, Ident, ItemFn, Meta, Pat, PatIdent, Signature};

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
    match validate(args, item, Span::call_site()) {
        Ok((options, func)) => expand(&options, &func),
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#error #input)
        }
    }
}

/// The code for a checked fn.
pub fn expand(options: &Options, func: &Func) -> TokenStream {
    let cx = Context::new(options, func);
    if let Some(batch) = &func.batch {
        return batch::expand(&cx, batch);
    }
    let types = key::KeyTypes::new(&cx);
    let cache = handle::binding(&cx, &types);
    let wrapper = wrapper::wrapper(&cx, &types, &cache);
    let no_cache = companions::no_cache(&cx);
    let prime = companions::prime(&cx, &types, &cache);
    let handle = handle::item(&cx, &types);
    quote! {
        #wrapper
        #no_cache
        #prime
        #handle
    }
}

/// What every generator needs: the model, and the names and facts derived from it.
pub struct Context<'a> {
    pub options: &'a Options,
    pub func: &'a Func,
    /// The runtime crate's path.
    pub krate: &'a syn::Path,
    /// The cache handle's name (a `static`, or the associated fn `{fn}_cache`).
    pub handle: Ident,
    pub no_cache: Ident,
    pub prime: Ident,
    /// How the body is called: `f_no_cache`, or `Self::f_no_cache` in an `impl` block.
    pub no_cache_fn: TokenStream,
    /// `self,` for a method's calls of its companions.
    pub self_arg: Option<TokenStream>,
    /// The fn is in an `impl` block: its handle is an associated fn, not a `static`.
    pub in_impl: bool,
    /// The local every generated fn reaches the cache through.
    pub cache: Ident,
    /// The local of a computed or owned key.
    pub key: Ident,
    /// The local of the body's value in `_prime`.
    pub value: Ident,
    pub is_async: bool,
    /// `.await` after the body's call, for an `async fn`.
    pub await_: Option<TokenStream>,
    /// Where a missing bound on the error type is reported: the user's return type.
    pub error_span: Span,
    /// The error type of a `Result<T, E>` fn, checked (see `key::checked`), as the
    /// fallible helpers' `E`; `_` when the attribute can't see it (`io::Result<T>`) or
    /// for `skip_none`.
    pub error_ty: TokenStream,
}

impl<'a> Context<'a> {
    fn new(options: &'a Options, func: &'a Func) -> Self {
        let name = &func.sig.ident;
        let in_impl = in_impl(options, func);
        let no_cache = format_ident!("{}_no_cache", name, span = name.span());
        let no_cache_fn = if in_impl {
            quote!(Self::#no_cache)
        } else {
            quote!(#no_cache)
        };
        let is_async = func.sig.asyncness.is_some();
        Context {
            options,
            func,
            krate: &options.krate,
            handle: handle_name(options, func)
                .unwrap_or_else(|| format_ident!("DOGPILE_CACHE", span = name.span())),
            prime: format_ident!("{}_prime", name, span = name.span()),
            no_cache,
            no_cache_fn,
            self_arg: func.receiver.is_some().then(|| quote!(self,)),
            in_impl,
            cache: format_ident!("__cache", span = Span::mixed_site()),
            key: format_ident!("__key", span = Span::mixed_site()),
            value: format_ident!("__value", span = Span::mixed_site()),
            is_async,
            await_: is_async.then(|| quote!(.await)),
            error_span: match &func.output {
                Output::Result { ty, .. } => ty.span(),
                _ => Span::call_site(),
            },
            error_ty: match &func.output {
                Output::Result { ty, .. } => result_err_type(ty).map_or_else(
                    || quote!(_),
                    |err| key::checked(&options.krate, err, key::ERROR),
                ),
                _ => quote!(_),
            },
        }
    }

    /// The fn's arguments by name, as the companions pass them on.
    pub fn moved_args(&self) -> Vec<TokenStream> {
        self.func
            .args
            .iter()
            .map(|a| a.ident.to_token_stream())
            .collect()
    }
}

/// The signature with each argument bound by its plain name (the wrapper's and
/// `_prime`'s): `_` and `mut x` patterns become names the generated code can use.
pub fn plain_sig(func: &Func) -> Signature {
    let mut sig = func.sig.clone();
    let typed_inputs = sig
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
    sig
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
pub fn for_companion_fn(attr: &Attribute) -> bool {
    !wrapper_only(attr)
}

/// The `static` gets `cfg`, lint levels, `deprecated` and `doc(hidden)`.
pub fn for_static(attr: &Attribute) -> bool {
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
