//! Checks the raw input and builds the model `expand` works from.
//!
//! Every problem is collected (not only the first), each spanned on the token
//! that causes it, and the messages say what to write instead.

use crate::ast::{
    Arg, ArgKind, AttrArgs, Func, Key, KeyOption, Options, Output, RawOption, SpannedDuration,
};
use proc_macro2::Span;
use quote::{format_ident, quote, ToTokens};
use std::fmt::Display;
use syn::{
    FnArg, GenericArgument, GenericParam, ItemFn, Lit, Pat, PathArguments, ReturnType, Type,
};

/// Every option the attribute accepts, in the order the docs list them.
pub const OPTIONS: &[&str] = &[
    "ttl",
    "sync_readers",
    "capacity",
    "background",
    "stale_if_error",
    "max_stale",
    "name",
    "crate",
    "clock",
    "key",
    "skip_none",
    "field",
    "shared",
    "associated",
];

/// Options that configure the cache itself: with `field`, they go where it is built.
const CACHE_SETTINGS: &[&str] = &[
    "ttl",
    "capacity",
    "background",
    "stale_if_error",
    "max_stale",
    "name",
    "clock",
    "shared",
];

/// Names other caches use for the ttl: reported with a hint instead of as missing `ttl`.
const TTL_ALIASES: &[&str] = &[
    "ttl_secs", "ttl_ms", "time", "lifespan", "expire", "expiry", "timeout",
];

/// The most keyed arguments a fn may have: the runtime's borrowed-key tuples go up to 8.
pub const MAX_KEY_ARGS: usize = 8;

/// Collects errors; combined into one `syn::Error` at the end.
#[derive(Default)]
pub struct Errors {
    all: Option<syn::Error>,
    count: usize,
}

impl Errors {
    pub fn push(&mut self, error: syn::Error) {
        self.count += 1;
        match &mut self.all {
            Some(all) => all.combine(error),
            None => self.all = Some(error),
        }
    }

    /// How many errors so far.
    pub fn count(&self) -> usize {
        self.count
    }

    pub fn at(&mut self, span: Span, message: impl Display) {
        self.push(syn::Error::new(span, message));
    }

    pub fn over(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    pub fn finish(self) -> syn::Result<()> {
        match self.all {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

/// Checks the options, the fn, and how they combine.
///
/// `attr_span` is where to report a missing `ttl` (the attribute itself).
pub fn validate(
    args: syn::Result<AttrArgs>,
    item: ItemFn,
    attr_span: Span,
) -> syn::Result<(Options, Func)> {
    let mut errors = Errors::default();
    let options = match args {
        Ok(args) => options(args, attr_span, &mut errors),
        Err(error) => {
            errors.push(error);
            None
        }
    };
    let mut func = func(item, &mut errors);
    if let Some(func) = &mut func {
        // Without valid options, the argument types are still checked as default key parts.
        resolve(options.as_ref(), func, &mut errors);
    }
    if let (Some(options), Some(func)) = (&options, &func) {
        combination(options, func, &mut errors);
    }
    errors.finish()?;
    match (options, func) {
        (Some(options), Some(func)) => Ok((options, func)),
        // Unreachable: a `None` always comes with an error. Still, never panic.
        _ => Err(syn::Error::new(attr_span, "invalid #[dogpile] attribute")),
    }
}

/// Checks each option's value and that `ttl` is present. `None` if anything is wrong.
pub fn options(args: AttrArgs, attr_span: Span, errors: &mut Errors) -> Option<Options> {
    let before = errors.count();
    let mut seen: Vec<String> = Vec::new();
    let mut ttl = None;
    let mut ttl_given = false;
    let mut sync_readers = None;
    let mut capacity = None;
    let mut background = None;
    let mut stale_if_error = None;
    let mut max_stale = None;
    let mut name = None;
    let mut krate = None;
    let mut clock = None;
    let mut key_option = None;
    let mut skip_none = None;
    let mut field = None;
    let mut shared = None;
    let mut associated = None;
    let mut settings: Vec<(String, Span)> = Vec::new();

    for option in args.options {
        let key = option.key.to_string();
        let key = key.trim_start_matches("r#").to_owned();
        if seen.contains(&key) {
            errors.at(
                option.key.span(),
                format!("`{key}` is given more than once; give each option once"),
            );
            continue;
        }
        let result = match key.as_str() {
            "ttl" => {
                ttl_given = true;
                duration(&key, &option).map(|d| ttl = Some(d))
            }
            "max_stale" => duration(&key, &option).map(|d| max_stale = Some(d)),
            "sync_readers" => flag(&key, &option).map(|s| sync_readers = Some(s)),
            "background" => flag(&key, &option).map(|s| background = Some(s)),
            "stale_if_error" => flag(&key, &option).map(|s| stale_if_error = Some(s)),
            "capacity" => positive_int(&key, &option).map(|n| capacity = Some(n)),
            "name" => ident(&key, &option).map(|i| name = Some(i)),
            "crate" => path(&key, &option).map(|p| krate = Some(p)),
            "clock" => expr(&key, &option).map(|e| clock = Some(e)),
            "key" => key_spec(&option).map(|k| key_option = Some(k)),
            "skip_none" => flag(&key, &option).map(|s| skip_none = Some(s)),
            "field" => ident(&key, &option).map(|i| field = Some(i)),
            "shared" => shared_tier(&option).map(|e| shared = Some(e)),
            "associated" => flag(&key, &option).map(|s| associated = Some(s)),
            _ => {
                // A misspelt ttl: don't also report it missing.
                ttl_given |= TTL_ALIASES.contains(&key.as_str());
                Err(unknown_option(&key, &option))
            }
        };
        if CACHE_SETTINGS.contains(&key.as_str()) {
            settings.push((key.clone(), option.key.span()));
        }
        if OPTIONS.contains(&key.as_str()) {
            seen.push(key);
        }
        if let Err(error) = result {
            errors.push(error);
        }
    }

    if let Some(field) = &field {
        for (setting, span) in &settings {
            let message = if setting == "background" {
                "`background` can't be used with `field`: the body borrows `self`, and a \
                 background refresh would run it after the call has returned"
                    .to_owned()
            } else {
                format!(
                    "with `field = {field}` the cache is the struct's field, so `{setting}` is \
                     set where that field is built: `dogpile::Cache::builder().{setting}(..)`"
                )
            };
            errors.at(*span, message);
        }
    } else if !ttl_given {
        errors.at(
            attr_span,
            "missing `ttl`: every memoized fn needs one, as in `#[dogpile(ttl = \"60s\")]`",
        );
    }
    if field.is_none() {
        ttl?;
    }
    if errors.count() > before {
        return None;
    }
    Some(Options {
        ttl,
        sync_readers,
        capacity,
        background,
        stale_if_error,
        max_stale,
        name,
        krate: krate.unwrap_or_else(|| syn::parse_quote!(::dogpile)),
        clock,
        key: key_option,
        skip_none,
        field,
        shared,
        associated,
    })
}

/// `shared = EXPR`: any expression; rustc checks that its type is a `dogpile::SharedTier`
/// for the fn's key and value.
fn shared_tier(option: &RawOption) -> syn::Result<syn::Expr> {
    let example = "`shared = RedisTier::open(URL).unwrap()` (a `dogpile::SharedTier`, such as \
                   `dogpile_redis::RedisTier`)";
    let Some(value) = &option.value else {
        return Err(syn::Error::new(
            option.key.span(),
            format!("`shared` needs a value: the tier to share values through, as in {example}"),
        ));
    };
    let tokens = &value.tokens;
    if let Ok(Lit::Str(s)) = syn::parse2::<Lit>(tokens.clone()) {
        return Err(syn::Error::new(
            s.span(),
            format!(
                "`shared` takes an expression giving the tier, not a string: a URL goes to \
                 the tier's constructor, as in `shared = RedisTier::open({}).unwrap()`",
                s.token()
            ),
        ));
    }
    syn::parse2::<syn::Expr>(tokens.clone()).map_err(|e| {
        syn::Error::new_spanned(
            tokens,
            format!("`shared` takes an expression giving the tier, as in {example} ({e})"),
        )
    })
}

/// `key = id`, `key = (region, page)` or `key(T) = EXPR`.
fn key_spec(option: &RawOption) -> syn::Result<KeyOption> {
    let examples = "`key = id`, `key = (region, page)`, or a computed key with its type, \
                    `key(u64) = user.id`";
    let Some(value) = &option.value else {
        let span = option
            .paren
            .as_ref()
            .map_or(option.key.span(), |p| p.span_close());
        return Err(syn::Error::new(
            span,
            format!(
                "`key` needs a value: the arguments that identify the result, as in {examples}"
            ),
        ));
    };
    let tokens = &value.tokens;
    if let Some(paren) = &option.paren {
        let ty = syn::parse2::<Type>(paren.stream()).map_err(|_| {
            syn::Error::new(
                paren.span(),
                "expected the key's type in `key(..)`, as in `key(u64) = user.id`; \
                 for a list of arguments write `key = (region, page)`",
            )
        })?;
        let expr = syn::parse2::<syn::Expr>(tokens.clone()).map_err(|e| {
            syn::Error::new_spanned(
                tokens,
                format!("`key({})` takes an expression over the arguments, as in `key(u64) = user.id` ({e})", ty.to_token_stream()),
            )
        })?;
        return Ok(KeyOption::Computed { ty, expr });
    }
    let not_names = || {
        syn::Error::new_spanned(
            tokens,
            format!(
                "`key` takes argument names: {examples}; for an expression over the \
                 arguments, write the key's type once: `key(T) = {}`",
                tokens
            ),
        )
    };
    let names: Vec<syn::Ident> = match syn::parse2::<syn::Expr>(tokens.clone()) {
        Ok(syn::Expr::Path(p)) if p.qself.is_none() && p.attrs.is_empty() => {
            vec![p.path.get_ident().ok_or_else(not_names)?.clone()]
        }
        Ok(syn::Expr::Tuple(t)) if t.attrs.is_empty() => t
            .elems
            .iter()
            .map(|e| match e {
                syn::Expr::Path(p) if p.qself.is_none() => p.path.get_ident().cloned(),
                _ => None,
            })
            .collect::<Option<_>>()
            .ok_or_else(not_names)?,
        Ok(syn::Expr::Paren(p)) => match &*p.expr {
            syn::Expr::Path(path) if path.qself.is_none() => {
                vec![path.path.get_ident().ok_or_else(not_names)?.clone()]
            }
            _ => return Err(not_names()),
        },
        _ => return Err(not_names()),
    };
    let mut errors = Errors::default();
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            errors.at(
                name.span(),
                format!("`{name}` is named twice in `key`; name each argument once"),
            );
        }
    }
    errors.finish()?;
    Ok(KeyOption::Args(names))
}

/// `ttl = "…"` / `max_stale = "…"`: a humantime string, parsed now, non-zero.
fn duration(key: &str, option: &RawOption) -> syn::Result<SpannedDuration> {
    let example = "\"250ms\", \"60s\", \"5m\" or \"1h 30m\"";
    let Some(value) = &option.value else {
        return Err(syn::Error::new(
            option.key.span(),
            format!("`{key}` needs a value: write `{key} = \"60s\"` ({example})"),
        ));
    };
    let tokens = &value.tokens;
    match syn::parse2::<Lit>(tokens.clone()) {
        Ok(Lit::Str(lit)) => {
            let text = lit.value();
            match humantime::parse_duration(text.trim()) {
                Ok(d) if d.is_zero() => Err(syn::Error::new(
                    lit.span(),
                    if key == "ttl" {
                        "`ttl` must be greater than zero: with a zero ttl every value is stale \
                         as soon as it is made"
                            .to_owned()
                    } else {
                        format!(
                            "`{key}` must be greater than zero; leave it out to serve a stale \
                             value until a refresh succeeds"
                        )
                    },
                )),
                Ok(d) => Ok(SpannedDuration {
                    value: d,
                    span: lit.span(),
                }),
                Err(e) => Err(syn::Error::new(
                    lit.span(),
                    format!("invalid `{key}` {text:?}: {e}; write a duration such as {example}"),
                )),
            }
        }
        Ok(Lit::Int(int)) => {
            let hint = if int.suffix().is_empty() {
                format!("{}s", int.base10_digits())
            } else {
                format!("{}{}", int.base10_digits(), int.suffix())
            };
            Err(syn::Error::new(
                int.span(),
                format!(
                    "`{key}` takes a duration string, not a number: write `{key} = \"{hint}\"` \
                     (humantime syntax, e.g. {example})"
                ),
            ))
        }
        _ => Err(syn::Error::new_spanned(
            tokens,
            format!(
                "`{key}` takes a duration string literal, parsed at compile time: \
                 write e.g. `{key} = \"60s\"` ({example})"
            ),
        )),
    }
}

/// A flag option: no value allowed. Returns the flag's span.
fn flag(key: &str, option: &RawOption) -> syn::Result<Span> {
    match &option.value {
        None => Ok(option.key.span()),
        Some(value) => {
            let (eq, tokens) = (&value.eq, &value.tokens);
            Err(syn::Error::new_spanned(
                quote!(#eq #tokens),
                format!("`{key}` is a flag and takes no value: write just `{key}`"),
            ))
        }
    }
}

/// `capacity = N`: an integer literal, at least 1.
fn positive_int(key: &str, option: &RawOption) -> syn::Result<usize> {
    let Some(value) = &option.value else {
        return Err(syn::Error::new(
            option.key.span(),
            format!("`{key}` needs a value: write `{key} = 10_000` (the most keys to keep)"),
        ));
    };
    let tokens = &value.tokens;
    match syn::parse2::<Lit>(tokens.clone()) {
        Ok(Lit::Int(int)) if !matches!(int.suffix(), "" | "usize") => Err(syn::Error::new(
            int.span(),
            format!(
                "`{key}` is a `usize`: write `{key} = {}`",
                int.base10_digits()
            ),
        )),
        Ok(Lit::Int(int)) => match int.base10_parse::<usize>() {
            _ if int.base10_digits().starts_with('-') => Err(syn::Error::new(
                int.span(),
                format!("`{key}` must be at least 1; leave it out for an unbounded cache"),
            )),
            Ok(0) => Err(syn::Error::new(
                int.span(),
                format!("`{key}` must be at least 1; leave it out for an unbounded cache"),
            )),
            Ok(n) => Ok(n),
            Err(e) => Err(syn::Error::new(int.span(), format!("invalid `{key}`: {e}"))),
        },
        Ok(Lit::Str(s)) => Err(syn::Error::new(
            s.span(),
            format!(
                "`{key}` takes an integer literal, not a string: write `{key} = {}`",
                s.value().trim()
            ),
        )),
        _ => Err(syn::Error::new_spanned(
            tokens,
            format!("`{key}` takes an integer literal greater than zero, as in `{key} = 10_000`"),
        )),
    }
}

/// `name = IDENT`.
fn ident(key: &str, option: &RawOption) -> syn::Result<syn::Ident> {
    let Some(value) = &option.value else {
        return Err(syn::Error::new(
            option.key.span(),
            format!("`{key}` needs a value: write `{key} = MY_CACHE` (the `static` handle's name)"),
        ));
    };
    let tokens = &value.tokens;
    if let Ok(Lit::Str(s)) = syn::parse2::<Lit>(tokens.clone()) {
        return Err(syn::Error::new(
            s.span(),
            format!(
                "`{key}` takes an identifier, not a string: write `{key} = {}`",
                s.value().trim()
            ),
        ));
    }
    syn::parse2::<syn::Ident>(tokens.clone()).map_err(|_| {
        syn::Error::new_spanned(
            tokens,
            format!("`{key}` takes an identifier (the `static` handle's name), as in `{key} = MY_CACHE`"),
        )
    })
}

/// `crate = path`.
fn path(key: &str, option: &RawOption) -> syn::Result<syn::Path> {
    let Some(value) = &option.value else {
        return Err(syn::Error::new(
            option.key.span(),
            format!("`{key}` needs a value: the path of the `dogpile` crate, as in `{key} = ::my_dogpile`"),
        ));
    };
    let tokens = &value.tokens;
    if let Ok(Lit::Str(s)) = syn::parse2::<Lit>(tokens.clone()) {
        return Err(syn::Error::new(
            s.span(),
            format!(
                "`{key}` takes a path, not a string: write `{key} = {}`",
                s.value().trim()
            ),
        ));
    }
    syn::parse2::<syn::Path>(tokens.clone()).map_err(|_| {
        syn::Error::new_spanned(
            tokens,
            format!("`{key}` takes the path of the `dogpile` crate, as in `{key} = ::my_dogpile`"),
        )
    })
}

/// `clock = EXPR`: any expression; rustc checks that its type implements `Clock`.
fn expr(key: &str, option: &RawOption) -> syn::Result<syn::Expr> {
    let example = "`clock = CLOCK.clone()`, with `static CLOCK: LazyLock<dogpile::ManualClock>`";
    let Some(value) = &option.value else {
        return Err(syn::Error::new(
            option.key.span(),
            format!(
                "`{key}` needs a value: an expression whose type implements `dogpile::Clock`, \
                 as in {example}"
            ),
        ));
    };
    let tokens = &value.tokens;
    if let Ok(Lit::Str(s)) = syn::parse2::<Lit>(tokens.clone()) {
        return Err(syn::Error::new(
            s.span(),
            format!(
                "`{key}` takes an expression whose type implements `dogpile::Clock`, not a \
                 string, as in {example}"
            ),
        ));
    }
    syn::parse2::<syn::Expr>(tokens.clone()).map_err(|e| {
        syn::Error::new_spanned(
            tokens,
            format!(
                "`{key}` takes an expression whose type implements `dogpile::Clock`, as in \
                 {example} ({e})"
            ),
        )
    })
}

fn unknown_option(key: &str, option: &RawOption) -> syn::Error {
    let valid = OPTIONS
        .iter()
        .map(|o| format!("`{o}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let hint = match key {
        _ if TTL_ALIASES.contains(&key) => {
            " (write the ttl as a string: `ttl = \"60s\"`)".to_owned()
        }
        "size" | "max_size" | "max_capacity" => " (did you mean `capacity`?)".to_owned(),
        _ => match OPTIONS
            .iter()
            .map(|o| (edit_distance(key, o), o))
            .filter(|(d, _)| *d <= 2)
            .min()
        {
            Some((_, o)) => format!(" (did you mean `{o}`?)"),
            None => String::new(),
        },
    };
    syn::Error::new(
        option.key.span(),
        format!("unknown option `{key}`{hint}; the options are {valid}"),
    )
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

/// Checks the signature. `None` if it can't be memoized at all.
pub fn func(item: ItemFn, errors: &mut Errors) -> Option<Func> {
    let fail = |errors: &mut Errors, tokens: &dyn ToTokens, message: String| {
        errors.over(tokens, message);
    };
    let sig = &item.sig;
    let name = &sig.ident;

    if let Some(token) = &sig.constness {
        fail(
            errors,
            token,
            "a `const fn` can't be memoized: the cache is a runtime `static` that a const \
             evaluation can't use; remove `const`"
                .to_owned(),
        );
    }
    if let Some(token) = &sig.unsafety {
        fail(
            errors,
            token,
            "an `unsafe fn` can't be memoized: its safety conditions are checked by the caller \
             that runs the body, but a cached value reaches callers that never ran it; memoize a \
             safe fn that wraps the unsafe call"
                .to_owned(),
        );
    }
    if let Some(abi) = &sig.abi {
        fail(
            errors,
            abi,
            "an `extern` fn can't be memoized: the wrapper is a plain Rust fn; memoize a Rust fn \
             and call it from the `extern` one"
                .to_owned(),
        );
    }
    if let Some(variadic) = &sig.variadic {
        fail(
            errors,
            variadic,
            "a variadic fn can't be memoized: its arguments can't form a key".to_owned(),
        );
    }
    for param in &sig.generics.params {
        match param {
            GenericParam::Lifetime(_) => {} // fine: it can only appear on top-level `&'a T` args (checked below)
            GenericParam::Type(_) | GenericParam::Const(_) => fail(
                errors,
                param,
                "a generic fn can't be memoized: its cache is one `static` with concrete key \
                 and value types, and a `static` can't be generic; write a non-generic fn per \
                 type you need (it can call a generic helper), or keep a `dogpile::Cache` \
                 yourself, one per type"
                    .to_owned(),
            ),
        }
    }

    let mut args = Vec::new();
    let mut self_ref = None;
    for (i, input) in sig.inputs.iter().enumerate() {
        let typed = match input {
            FnArg::Receiver(receiver)
                if receiver.reference.is_some()
                    && receiver.mutability.is_none()
                    && receiver.colon_token.is_none() =>
            {
                self_ref = Some(receiver.clone());
                continue;
            }
            FnArg::Receiver(receiver) => {
                let message = if receiver.mutability.is_some() && receiver.reference.is_some() {
                    format!(
                        "only `&self` methods can be memoized: a cache hit skips the body, so \
                         the mutation would happen only sometimes; take `&self` in `{name}`"
                    )
                } else {
                    format!(
                        "only `&self` methods can be memoized: write `&self` instead of `{}` in \
                         `{name}`",
                        type_text(receiver)
                    )
                };
                fail(errors, receiver, message);
                continue;
            }
            FnArg::Typed(typed) => typed,
        };
        for attr in &typed.attrs {
            if attr.path().is_ident("cfg") || attr.path().is_ident("cfg_attr") {
                fail(
                    errors,
                    attr,
                    "conditional arguments can't be memoized: the key is built from every \
                     argument; make the whole fn conditional instead"
                        .to_owned(),
                );
            }
        }
        let ident = match &*typed.pat {
            Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => pat.ident.clone(),
            Pat::Wild(_) => format_ident!("__arg{}", i, span = Span::mixed_site()),
            pat => {
                fail(
                    errors,
                    pat,
                    "only plain names (`x: T`, `mut x: T`) and `_` are supported as arguments of \
                     a memoized fn, because each argument is cloned into the key by name; bind a \
                     name and destructure it in the body (`pair: (u32, u32)`, then `let (a, b) = \
                     pair;`)"
                        .to_owned(),
                );
                continue;
            }
        };
        let ignored = matches!(&*typed.pat, Pat::Wild(_));
        let kind = match unwrap_type(&typed.ty) {
            Type::Reference(r) if r.mutability.is_some() => {
                fail(
                    errors,
                    &typed.ty,
                    "a memoized fn can't take `&mut` arguments: a cache hit skips the body, so \
                     the mutation would happen only sometimes; take `&T` or an owned value"
                        .to_owned(),
                );
                continue;
            }
            // Not part of the key: any type will do, as long as it is not generic.
            _ if ignored => ArgKind::Ignored,
            Type::Reference(r) => ArgKind::Ref((*r.elem).clone()),
            _ => ArgKind::Owned,
        };
        // Types are checked once the key is known (`combination`): only key parts are stored.
        args.push(Arg {
            ident,
            ty: (*typed.ty).clone(),
            in_key: !ignored,
            kind,
        });
    }

    let output = match &sig.output {
        ReturnType::Default => Output::Unit,
        ReturnType::Type(_, ty) => {
            let ty = &**ty;
            check_type(ty, Position::Return, errors);
            match unwrap_type(ty) {
                Type::Tuple(t) if t.elems.is_empty() => Output::Unit,
                inner => match result_ok_type(inner) {
                    Some(ok_ty) => Output::Result {
                        ty: ty.clone(),
                        ok: ok_ty.clone(),
                    },
                    None => Output::Value(ty.clone()),
                },
            }
        }
    };

    // `Self` can only be named in an `impl` (or trait) block: such a fn's cache can't
    // be a `static` beside it.
    let names_self =
        names_self(item.sig.to_token_stream()) || names_self(item.block.to_token_stream());

    // Returned even after an error, so that `resolve` checks the argument types too (the
    // caller reports the errors and does not expand).
    let key = Key::Args((0..args.len()).filter(|&i| args[i].in_key).collect());
    Some(Func {
        attrs: item.attrs,
        vis: item.vis,
        sig: item.sig,
        block: item.block,
        args,
        output,
        key,
        receiver: self_ref,
        names_self,
    })
}

#[derive(Clone, Copy, PartialEq)]
enum Position {
    /// A keyed argument.
    Arg,
    /// A `_` argument: only `impl Trait` matters.
    Ignored,
    Return,
}

/// Looks through the invisible groups of `macro_rules!` fragments and parentheses.
pub fn unwrap_type(ty: &Type) -> &Type {
    match ty {
        Type::Group(g) => unwrap_type(&g.elem),
        Type::Paren(p) => unwrap_type(&p.elem),
        ty => ty,
    }
}

/// `T` if `ty` is `Result<T, ..>` (any path whose last segment is `Result` with type arguments,
/// so `io::Result<T>` and `anyhow::Result<T>` count).
pub fn result_ok_type(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = unwrap_type(ty) else {
        return None;
    };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(ok) => Some(ok),
        _ => None,
    }
}

/// A type as a user writes it, for messages: `Result<String, E>`, not `Result < String , E >`.
pub fn type_text(ty: &dyn ToTokens) -> String {
    let mut text = ty.to_token_stream().to_string();
    for (from, to) in [
        (" < ", "<"),
        ("< ", "<"),
        (" <", "<"),
        (" >", ">"),
        (" ,", ","),
        ("& ", "&"),
        (" :: ", "::"),
        (":: ", "::"),
        ("( ", "("),
        (" )", ")"),
        ("[ ", "["),
        (" ]", "]"),
        (" ;", ";"),
        (" : ", ": "),
    ] {
        text = text.replace(from, to);
    }
    text
}

/// `T` if `ty` is `Option<T>` (any path whose last segment is `Option` with one type argument).
pub fn option_some_type(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = unwrap_type(ty) else {
        return None;
    };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    if last.ident != "Option" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(some) if args.args.len() == 1 => Some(some),
        _ => None,
    }
}

/// Rejects what a key or value in a `static` can't hold: `impl Trait`, `Self`, and borrows
/// other than `'static` (a top-level `&T` argument is handled before this is called).
fn check_type(ty: &Type, at: Position, errors: &mut Errors) {
    let fail = |errors: &mut Errors, tokens: &dyn ToTokens, message: &str| {
        errors.over(tokens, message);
    };
    match ty {
        Type::ImplTrait(t) => fail(
            errors,
            t,
            if at != Position::Return {
                "a memoized fn can't take `impl Trait` arguments: that makes it generic, and its \
                 cache is one `static` with a concrete key type; name a concrete type (e.g. `&str` \
                 or `String` instead of `impl AsRef<str>`)"
            } else {
                "a memoized fn can't return `impl Trait`: the value type of its `static` cache \
                 must be nameable; return a concrete type, or `Arc<dyn Trait + Send + Sync>`"
            },
        ),
        Type::Never(t) if at == Position::Return => fail(
            errors,
            t,
            "a fn that never returns has no value to cache; remove #[dogpile]",
        ),
        Type::Reference(r) if at == Position::Ignored => check_type(&r.elem, at, errors),
        Type::Reference(r) => {
            let is_static = r.lifetime.as_ref().is_some_and(|l| l.ident == "static");
            if !is_static {
                fail(
                    errors,
                    r,
                    if at == Position::Arg {
                        "a memoized fn's argument can borrow only at the top level (`x: &T`, keyed by \
                         `T::Owned`): the key is stored in a `static`, so it must own its data; \
                         take an owned type here (e.g. `Option<String>` for `Option<&str>`)"
                    } else {
                        "a memoized fn can't return a borrow: the value is stored in a `static` and \
                         cloned out to every caller; return an owned value (or `Arc<T>` when \
                         clones are expensive)"
                    },
                );
                return;
            }
            check_type(&r.elem, at, errors);
        }
        Type::Path(p) => {
            if let Some(q) = &p.qself {
                check_type(&q.ty, at, errors);
            }
            for segment in &p.path.segments {
                if segment.ident == "Self" && at != Position::Ignored {
                    fail(
                        errors,
                        segment,
                        if at == Position::Arg {
                            "`Self` can't be part of a memoized fn's key: the key's type is \
                             written in the cache's `static`, which can't name `Self`; write the \
                             type's name instead"
                        } else {
                            "`Self` can't be a memoized fn's value type: the value's type is \
                             written in the cache's `static`, which can't name `Self`; write the \
                             type's name instead"
                        },
                    );
                    return;
                }
                match &segment.arguments {
                    PathArguments::None => {}
                    PathArguments::AngleBracketed(args) => {
                        for arg in &args.args {
                            match arg {
                                GenericArgument::Lifetime(l)
                                    if l.ident != "static" && at != Position::Ignored =>
                                {
                                    errors.over(
                                        l,
                                        if at == Position::Arg {
                                            "a memoized fn's argument can borrow only at the top \
                                             level (`x: &T`): the key is stored in a `static`, so \
                                             it must own its data; take an owned type here"
                                        } else {
                                            "a memoized fn can't return a borrowing type: the \
                                             value is stored in a `static`; return an owned value"
                                        },
                                    );
                                }
                                GenericArgument::Type(t) => check_type(t, at, errors),
                                GenericArgument::AssocType(a) => check_type(&a.ty, at, errors),
                                _ => {}
                            }
                        }
                    }
                    PathArguments::Parenthesized(args) => {
                        for t in &args.inputs {
                            check_type(t, at, errors);
                        }
                        if let ReturnType::Type(_, t) = &args.output {
                            check_type(t, at, errors);
                        }
                    }
                }
            }
        }
        Type::Tuple(t) => t.elems.iter().for_each(|t| check_type(t, at, errors)),
        Type::Array(t) => check_type(&t.elem, at, errors),
        Type::Slice(t) => check_type(&t.elem, at, errors),
        Type::Paren(t) => check_type(&t.elem, at, errors),
        Type::Group(t) => check_type(&t.elem, at, errors),
        Type::Ptr(t) => check_type(&t.elem, at, errors),
        // fn pointers, trait objects, macros, ...: left to rustc.
        _ => {}
    }
}

/// Applies the options that change the model: `skip_none` (the output), and `key = ..`
/// (setting `func.key` and each argument's `in_key`); then checks the argument types: a
/// key part must be storable in a `static`, the other arguments only reach the body.
pub fn resolve(options: Option<&Options>, func: &mut Func, errors: &mut Errors) {
    let skip_none = options.and_then(|o| o.skip_none);
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

/// Whether the fn is in an `impl` block: a method, an associated fn marked
/// `associated`, or one whose signature or body names `Self`. Its cache handle is then
/// an associated fn, `{fn}_cache()`, since an `impl` can't hold a `static`.
pub fn in_impl(options: &Options, func: &Func) -> bool {
    func.receiver.is_some() || options.associated.is_some() || func.names_self
}

/// Whether `tokens` name `Self` outside nested items (`impl`, `trait`, `struct`, `enum`,
/// `union`, which have their own `Self`) and macro invocations (whose tokens may be
/// anything). Errs towards `false`: a fn that names `Self` only there is taken for a
/// free fn, and needs `associated` in an `impl` block.
fn names_self(tokens: proc_macro2::TokenStream) -> bool {
    use proc_macro2::TokenTree;
    let mut tokens = tokens.into_iter().peekable();
    let mut after_ident = false;
    while let Some(token) = tokens.next() {
        let ident = matches!(&token, TokenTree::Ident(_));
        match token {
            TokenTree::Ident(ident) if ident == "Self" => return true,
            TokenTree::Ident(ident)
                if ["impl", "trait", "struct", "enum", "union"]
                    .iter()
                    .any(|item| ident == item) =>
            {
                // Skip to the end of the nested item: its braces or its `;`.
                for token in tokens.by_ref() {
                    match token {
                        TokenTree::Group(g) if g.delimiter() == proc_macro2::Delimiter::Brace => {
                            break
                        }
                        TokenTree::Punct(p) if p.as_char() == ';' => break,
                        _ => {}
                    }
                }
            }
            TokenTree::Punct(p) if p.as_char() == '!' && after_ident => {
                if let Some(TokenTree::Group(_)) = tokens.peek() {
                    tokens.next(); // a macro's input
                }
            }
            TokenTree::Group(group) if names_self(group.stream()) => return true,
            _ => {}
        }
        after_ident = ident;
    }
    false
}

/// Checks how the options fit the fn.
pub fn combination(options: &Options, func: &Func, errors: &mut Errors) {
    let name = &func.sig.ident;
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
        (Some(receiver), None, None) => errors.over(
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
    if options.background.is_some() {
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
    if let Some(span) = options.stale_if_error {
        if !func.output.is_result() {
            errors.at(
                span,
                format!(
                    "`stale_if_error` needs a fn that returns `Result<T, E>` (it serves the stale \
                     value when a refresh returns `Err`), and `{name}` does not; remove it, or \
                     spell the return type `Result<T, E>` (an alias such as `io::Result<T>` is fine)"
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

/// The handle: `name = IDENT`, or the fn name in SCREAMING_SNAKE_CASE for a `static`,
/// or `{fn}_cache` for the associated fn a method's shared cache lives in. `None` if
/// the fn name has no valid SCREAMING_SNAKE_CASE form.
pub fn handle_name(options: &Options, func: &Func) -> Option<syn::Ident> {
    match &options.name {
        Some(name) => Some(name.clone()),
        None if in_impl(options, func) => {
            let name = &func.sig.ident;
            Some(format_ident!("{}_cache", name, span = name.span()))
        }
        None => {
            let name = func.sig.ident.to_string();
            let name = screaming_snake_case(name.trim_start_matches("r#"));
            let mut ident = syn::parse_str::<syn::Ident>(&name).ok()?;
            ident.set_span(func.sig.ident.span());
            Some(ident)
        }
    }
}

/// `render_page` → `RENDER_PAGE`, `renderPage` → `RENDER_PAGE`.
pub fn screaming_snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_uppercase() && prev_lower {
            out.push('_');
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        out.extend(c.to_uppercase());
    }
    out
}
