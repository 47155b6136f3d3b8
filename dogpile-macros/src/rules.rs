//! How the options fit the fn: the options that reshape the model (`key`,
//! `skip_none`), and the combinations that can't work (`sync_readers` with
//! `background`, `field` on a fn without `self`, a borrowed context argument with
//! `background`, a clash of generated names, ...).

use crate::ast::{ArgKind, Func, Key, KeyOption, Options, Output};
use crate::errors::Errors;
use crate::naming::handle_name;
use crate::options::MAX_KEY_ARGS;
use crate::types::{check_type, option_some_type, type_text, unwrap_type, Position};
use proc_macro2::Span;
use quote::{format_ident, quote};
use syn::Type;

/// Applies the options that change the model: `skip_none` (the output), and `key = ..`
/// (setting `func.key` and each argument's `in_key`); then checks the argument types: a
/// key part must be storable in a `static`, the other arguments only reach the body.
pub fn resolve(options: Option<&Options>, func: &mut Func, errors: &mut Errors) {
    if let Some(batch) = options.and_then(|o| o.batch.as_ref()) {
        crate::batch::resolve(batch, func, errors);
        if let Some(batch) = &func.batch {
            check_type(&batch.key, Position::Arg, errors);
        }
        check_args(func, errors);
        return;
    }
    // `none_ttl = "0s"` is `skip_none`.
    let none_ttl = options.and_then(|o| o.none_ttl);
    let zero_none_ttl = none_ttl.filter(|d| d.value.is_zero()).map(|d| d.span);
    let skip_none = options.and_then(|o| o.skip_none).or(zero_none_ttl);
    if let (Some(span), Some(_)) = (options.and_then(|o| o.skip_none), none_ttl) {
        errors.at(
            span,
            "`skip_none` is `none_ttl = \"0s\"`: give one of them (`none_ttl = \"30s\"` keeps a \
             `None` that long)",
        );
    }
    if let Some(d) = none_ttl.filter(|d| !d.value.is_zero()) {
        let is_option = matches!(&func.output, Output::Value(ty) if option_some_type(ty).is_some());
        if !is_option {
            errors.at(
                d.span,
                format!(
                    "`none_ttl` is how long an `Option` fn's `None` is kept, and `{}` does not \
                     return `Option<T>`; remove it",
                    func.sig.ident
                ),
            );
        }
    }
    let key = options.and_then(|o| o.key.as_ref());
    if let Some(span) = skip_none {
        match &func.output {
            Output::Value(ty) => match option_some_type(ty) {
                Some(some) => {
                    func.output = Output::Option {
                        some: some.clone(),
                        ty: ty.clone(),
                    }
                }
                None if options.and_then(|o| o.skip_none).is_none() => errors.at(
                    span,
                    format!(
                        "`none_ttl` is how long an `Option` fn's `None` is kept, and `{}` \
                         returns `{}`, not `Option<T>`; remove it",
                        func.sig.ident,
                        type_text(ty)
                    ),
                ),
                None => errors.at(
                    span,
                    format!(
                        "`skip_none` needs a fn that returns `Option<T>` (it stores `Some` and \
                         hands `None` back without storing it), and `{}` returns `{}`; remove it",
                        func.sig.ident,
                        type_text(ty)
                    ),
                ),
            },
            Output::Result { ty, .. } => errors.at(
                span,
                format!(
                    "`skip_none` needs a fn that returns `Option<T>`, and `{}` returns `{}`, \
                     whose `Err` is already not stored; remove it",
                    func.sig.ident,
                    type_text(ty)
                ),
            ),
            Output::Unit | Output::Option { .. } => errors.at(
                span,
                format!(
                    "`skip_none` needs a fn that returns `Option<T>`, and `{}` returns nothing; \
                     remove it",
                    func.sig.ident
                ),
            ),
        }
    }
    match key {
        None => {}
        Some(KeyOption::Args(names)) => {
            let mut parts = Vec::new();
            for name in names {
                match func.args.iter().position(|a| a.ident == *name) {
                    Some(i) => parts.push(i),
                    None => {
                        let named: Vec<String> = func
                            .args
                            .iter()
                            .filter(|a| !matches!(a.kind, ArgKind::Ignored))
                            .map(|a| format!("`{}`", a.ident))
                            .collect();
                        let list = if named.is_empty() {
                            format!("`{}` has no named arguments", func.sig.ident)
                        } else {
                            format!("its arguments are {}", named.join(", "))
                        };
                        errors.at(
                            name.span(),
                            format!(
                                "`key` names `{name}`, which is not an argument of `{}`; {list} \
                                 (a value computed from them needs its type: `key(T) = EXPR`)",
                                func.sig.ident
                            ),
                        );
                    }
                }
            }
            for (i, arg) in func.args.iter_mut().enumerate() {
                arg.in_key = parts.contains(&i);
            }
            func.key = Key::Args(parts);
        }
        Some(KeyOption::Computed { ty, expr }) => {
            check_type(ty, Position::Arg, errors);
            for arg in &mut func.args {
                arg.in_key = false;
            }
            func.key = Key::Computed {
                ty: ty.clone(),
                expr: expr.clone(),
            };
        }
    }
    check_args(func, errors);
}

/// Checks the argument types: a key part must be storable in a `static`, the other
/// arguments only reach the body.
fn check_args(func: &Func, errors: &mut Errors) {
    let mut keyed = 0;
    for arg in &func.args {
        if !arg.in_key {
            check_type(&arg.ty, Position::Ignored, errors);
            continue;
        }
        match &arg.kind {
            ArgKind::Ref(inner) => check_type(inner, Position::Arg, errors),
            _ => check_type(&arg.ty, Position::Arg, errors),
        }
        keyed += 1;
        if keyed == MAX_KEY_ARGS + 1 {
            let (ident, ty) = (&arg.ident, &arg.ty);
            errors.over(
                quote!(#ident: #ty),
                format!(
                    "a memoized fn can have at most {MAX_KEY_ARGS} arguments in its key; \
                     group some of them into a struct (deriving `Clone, Hash, Eq, PartialEq`), \
                     or name the ones that identify the result with `key = (..)`"
                ),
            );
        }
    }
}

/// Checks how the options fit the fn.
pub fn combination(options: &Options, func: &Func, errors: &mut Errors) {
    let name = &func.sig.ident;
    crate::batch::combination(options, errors);
    if let (Some(span), Some(_)) = (options.associated, &func.receiver) {
        errors.at(
            span,
            format!(
                "`associated` is for associated fns without `self`; `{name}` is a `&self` \
                 method, whose shared cache is reached through `{name}_cache()` already: \
                 remove it"
            ),
        );
    }
    match (&func.receiver, &options.field, &options.key) {
        (Some(receiver), None, None) if options.batch.is_none() => errors.over(
            receiver,
            format!(
                "a `&self` method needs to know where its cache is: `field = cache` for a \
                 per-instance cache in a field `cache: dogpile::Cache<K, V>` of the struct, or \
                 `key = ..` for one cache shared by every instance, keyed by the arguments \
                 named there (not by `self`); `{name}` has neither"
            ),
        ),
        (Some(_), Some(_), _) if options.background.is_some() => {} // reported with the options
        (Some(_), _, _) if options.background.is_some() => errors.at(
            options.background.unwrap_or_else(Span::call_site),
            "`background` can't be used on a `&self` method: the body borrows `self`, and a \
             background refresh would run it after the call has returned",
        ),
        (None, Some(field), _) => errors.at(
            field.span(),
            format!(
                "`field` is for `&self` methods (the cache is `self.{field}`), and `{name}` \
                 takes no `self`; remove it to keep the cache in a `static`"
            ),
        ),
        _ => {}
    }
    if let (Some(_), Some(background)) = (options.sync_readers, options.background) {
        errors.at(
            background,
            "`background` can't be combined with `sync_readers`: `sync_readers` hands out guards \
             that a refresh must wait for, while `background` refreshes on another thread and \
             hands out clones; choose one",
        );
    }
    // A batch fn with `background` is reported by `batch::combination`.
    if options.background.is_some() && options.batch.is_none() {
        // The body may run on another thread after the call has returned: it can borrow
        // only from the key, which it owns a clone of.
        for arg in &func.args {
            if let (ArgKind::Ref(_) | ArgKind::Ignored, false) = (&arg.kind, arg.in_key) {
                if !matches!(unwrap_type(&arg.ty), Type::Reference(_)) {
                    continue;
                }
                let (ty, shown) = (&arg.ty, type_text(&arg.ty));
                let which = match (&arg.kind, &func.key) {
                    (ArgKind::Ignored, _) => format!("`_: {shown}`, which is not part of the key"),
                    (_, Key::Computed { .. }) => format!(
                        "`{}`, which is not part of the key (the computed key is)",
                        arg.ident
                    ),
                    _ => format!("`{}`, which is not named in `key`", arg.ident),
                };
                errors.over(
                    ty,
                    format!(
                        "with `background` the body may run on another thread after `{name}` \
                         has returned, so it can't borrow {which}; take it owned (an `Arc<T>`, \
                         or a handle that is cheap to clone such as a pool), or drop `background`"
                    ),
                );
            }
        }
    }
    let failure_options = [
        (
            "stale_if_error",
            options.stale_if_error.map(|d| d.span),
            "serves the stale value when a refresh returns `Err`",
        ),
        (
            "retry_backoff",
            options.retry_backoff.map(|(d, _)| d.span),
            "pauses a key after a creation returns `Err`",
        ),
    ];
    for (option, span, what) in failure_options {
        if let (Some(span), false) = (span, func.output.is_result()) {
            errors.at(
                span,
                format!(
                    "`{option}` needs a fn that returns `Result<T, E>` (it {what}), and \
                     `{name}` does not; remove it, or spell the return type `Result<T, E>` (an \
                     alias such as `io::Result<T>` is fine)"
                ),
            );
        }
    }
    if let (Some(expr), Output::Value(ty)) = (&options.ttl_expr, &func.output) {
        if option_some_type(ty).is_some() && options.none_ttl.is_none() {
            errors.over(
                expr,
                format!(
                    "`ttl = ..` gives each `Some` value its lifetime; say how long `{name}`'s \
                     `None` is kept with `none_ttl = \"30s\"` (or `none_ttl = \"0s\"` to not \
                     store it)"
                ),
            );
        }
    }
    if func.sig.asyncness.is_some() {
        if let Some(span) = options.sync_readers {
            errors.at(
                span,
                "`sync_readers` can't be used on an `async fn`: its `ReadGuard` blocks every \
                 refresh while it is held, and holding it across an `.await` would stall them; \
                 drop `sync_readers` (callers get clones) or memoize a sync fn",
            );
        }
    }
    if options.field.is_some() {
        return; // no handle is generated
    }
    let Some(handle) = handle_name(options, func) else {
        errors.at(
            func.sig.ident.span(),
            format!("can't make a `static` name from `{name}`; give one with `name = MY_CACHE`"),
        );
        return;
    };
    for clash in [
        name.clone(),
        format_ident!("{}_no_cache", name),
        format_ident!("{}_prime", name),
    ] {
        if handle == clash {
            let message = if options.name.is_some() {
                format!(
                    "`name = {handle}` clashes with the generated fn `{clash}`; pick another name"
                )
            } else {
                format!(
                    "the cache's default name `{handle}` (the fn name in SCREAMING_SNAKE_CASE) \
                     clashes with the fn `{clash}`; give it another with `name = MY_CACHE`"
                )
            };
            errors.at(handle.span(), message);
        }
    }
}
