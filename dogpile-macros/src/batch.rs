//! The batch form, `batch = ids`: the option's value, the fn it fits (a slice argument
//! `ids: &[K]`, a return type `Vec<V>` or `Result<Vec<V>, E>`), and the options that
//! make no sense beside it. The code is `expand::batch`'s.

use crate::ast::{Batch, Func, Options, Output};
use crate::attr::RawOption;
use crate::errors::Errors;
use crate::types::{type_text, unwrap_type};
use proc_macro2::Span;
use syn::{GenericArgument, Ident, PathArguments, Type};

/// `batch = ids`: the name of the slice argument.
pub fn option(option: &RawOption) -> syn::Result<Ident> {
    let example = "`batch = ids` for `fn users(db: &Pool, ids: &[u64]) -> Vec<User>`";
    let Some(value) = &option.value else {
        return Err(syn::Error::new(
            option.key.span(),
            format!("`batch` needs a value: the slice argument whose elements are the keys, as in {example}"),
        ));
    };
    syn::parse2::<Ident>(value.tokens.clone()).map_err(|_| {
        syn::Error::new_spanned(
            &value.tokens,
            format!("`batch` takes the name of an argument, as in {example}"),
        )
    })
}

/// Checks the slice argument and the return type, and sets `func.batch`. Every argument
/// is context then (`in_key` false): no bounds, never stored; the keys are the slice's
/// elements.
pub fn resolve(name: &Ident, func: &mut Func, errors: &mut Errors) {
    for arg in &mut func.args {
        arg.in_key = false;
    }
    func.key = crate::ast::Key::Args(Vec::new());
    let fn_name = &func.sig.ident;
    let Some(arg) = func.args.iter().position(|a| a.ident == *name) else {
        let named: Vec<String> = func.args.iter().map(|a| format!("`{}`", a.ident)).collect();
        let list = match named.is_empty() {
            true => format!("`{fn_name}` has no arguments"),
            false => format!("its arguments are {}", named.join(", ")),
        };
        errors.at(
            name.span(),
            format!(
                "`batch` names `{name}`, which is not an argument of `{fn_name}`; {list}. Name \
                 the slice argument whose elements are the keys, as in `batch = ids` for \
                 `ids: &[u64]`"
            ),
        );
        return;
    };
    let ty = &func.args[arg].ty;
    let key = match unwrap_type(ty) {
        Type::Reference(r) if r.mutability.is_none() => match unwrap_type(&r.elem) {
            Type::Slice(slice) => Some((*slice.elem).clone()),
            _ => None,
        },
        _ => None,
    };
    let Some(key) = key else {
        let elem = vec_element(ty)
            .or_else(|| match unwrap_type(ty) {
                Type::Reference(r) => vec_element(&r.elem),
                _ => None,
            })
            .map_or_else(|| "K".to_owned(), |elem| type_text(elem));
        errors.over(
            ty,
            format!(
                "`batch = {name}` needs `{name}` to be a slice, `&[K]`, whose elements are the \
                 keys; it is `{}`: take `{name}: &[{elem}]` (a `Vec` or an array lends one with \
                 `&v`)",
                type_text(ty)
            ),
        );
        return;
    };
    let value = match &func.output {
        Output::Value(ty) => vec_element(ty).ok_or(ty),
        Output::Result { ok, ty } => vec_element(ok).ok_or(ty),
        Output::Unit | Output::Option { .. } => {
            errors.at(
                func.sig.paren_token.span.close(),
                format!(
                    "a batch fn returns one value per key: `{fn_name}` must return `Vec<V>` (or \
                     `Result<Vec<V>, E>`), one value per element of `{name}`, in order"
                ),
            );
            return;
        }
    };
    match value {
        Ok(value) => {
            func.batch = Some(Batch {
                arg,
                key,
                value: value.clone(),
            })
        }
        Err(ty) => errors.over(
            ty,
            format!(
                "a batch fn returns one value per key: `{fn_name}` must return `Vec<V>` (or \
                 `Result<Vec<V>, E>`), one value per element of `{name}`, in order, not `{}`",
                type_text(ty)
            ),
        ),
    }
}

/// The options that make no sense with `batch`, each reported at its own token.
pub fn combination(options: &Options, errors: &mut Errors) {
    let Some(batch) = &options.batch else {
        return;
    };
    if let Some(key) = &options.key {
        let span = match key {
            crate::ast::KeyOption::Args(names) => names.first().map(Ident::span),
            crate::ast::KeyOption::Computed { ty, .. } => Some(syn::spanned::Spanned::span(ty)),
        };
        errors.at(
            span.unwrap_or_else(|| batch.span()),
            format!(
                "`key` can't be combined with `batch`: the keys of a batch fn are the elements \
                 of `{batch}`, and its other arguments are context already; remove `key`"
            ),
        );
    }
    let rejected: [(Option<Span>, &str); 4] = [
        (
            options.sync_readers,
            "`sync_readers` can't be combined with `batch`: a batch would hold a read guard \
             per key at once, and publishing any of them would wait for the whole batch's \
             readers; drop `sync_readers` (callers get clones)",
        ),
        (
            options.background,
            "`background` can't be combined with `batch`: a batch fn refreshes its stale ids \
             in the call, with one body call for all of them; for background refresh use a \
             `Cache` built with `background_refresh()` and its `get_many_with`",
        ),
        (
            options.skip_none,
            "`skip_none` can't be combined with `batch`: a batch fn returns a value for every \
             id, and each one is stored; return `Vec<Option<V>>` to store that an id has none",
        ),
        (
            options.field.as_ref().map(Ident::span),
            "`field` can't be combined with `batch`: a batch fn's cache is a `static` keyed by \
             the ids, shared by every instance; remove `field` (the method's `self` is context)",
        ),
    ];
    for (span, message) in rejected {
        if let Some(span) = span {
            errors.at(span, message);
        }
    }
}

/// `V` of `Vec<V>` (by its last path segment, so `std::vec::Vec<V>` too).
fn vec_element(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = unwrap_type(ty) else {
        return None;
    };
    let last = path.path.segments.last()?;
    if last.ident != "Vec" {
        return None;
    }
    match &last.arguments {
        PathArguments::AngleBracketed(args) if args.args.len() == 1 => match &args.args[0] {
            GenericArgument::Type(ty) => Some(ty),
            _ => None,
        },
        _ => None,
    }
}
