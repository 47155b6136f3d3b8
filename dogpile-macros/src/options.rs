//! The attribute's options: each one's value checked and parsed (durations at compile
//! time), every mistake collected with the span of its token and a message that says
//! what to write instead.

use crate::ast::{KeyOption, Options};
use crate::attr::{AttrArgs, RawOption};
use crate::durations::{backoff, duration, lifetime_expr, Zero};
use crate::errors::Errors;
use proc_macro2::Span;
use quote::{quote, ToTokens};
use syn::{Lit, Type};

/// Every option the attribute accepts, in the order the docs list them.
pub const OPTIONS: &[&str] = &[
    "ttl",
    "none_ttl",
    "sync_readers",
    "capacity",
    "background",
    "stale_while_revalidate",
    "stale_if_error",
    "retry_backoff",
    "refresh_ahead",
    "wait_at_most",
    "name",
    "crate",
    "clock",
    "key",
    "skip_none",
    "field",
    "shared",
    "associated",
    "batch",
];

/// Options that configure the cache itself: with `field`, they go where it is built.
const CACHE_SETTINGS: &[&str] = &[
    "ttl",
    "none_ttl",
    "capacity",
    "background",
    "stale_while_revalidate",
    "stale_if_error",
    "retry_backoff",
    "refresh_ahead",
    "wait_at_most",
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

/// Checks each option's value and that `ttl` is present. `None` if anything is wrong.
pub fn options(args: AttrArgs, attr_span: Span, errors: &mut Errors) -> Option<Options> {
    let before = errors.count();
    let mut seen: Vec<String> = Vec::new();
    let mut ttl = None;
    let mut ttl_given = false;
    let mut sync_readers = None;
    let mut capacity = None;
    let mut background = None;
    let mut ttl_expr = None;
    let mut none_ttl = None;
    let mut stale_while_revalidate = None;
    let mut stale_if_error = None;
    let mut retry_backoff = None;
    let mut refresh_ahead = None;
    let mut wait_at_most = None;
    let mut name = None;
    let mut krate = None;
    let mut clock = None;
    let mut key_option = None;
    let mut skip_none = None;
    let mut field = None;
    let mut shared = None;
    let mut associated = None;
    let mut batch = None;
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
                match lifetime_expr(&option) {
                    Some(expr) => {
                        ttl_expr = Some(expr);
                        Ok(())
                    }
                    None => duration(&key, &option, Zero::Refused).map(|d| ttl = Some(d)),
                }
            }
            "none_ttl" => duration(&key, &option, Zero::Allowed).map(|d| none_ttl = Some(d)),
            "stale_while_revalidate" => {
                duration(&key, &option, Zero::Allowed).map(|d| stale_while_revalidate = Some(d))
            }
            "stale_if_error" if option.value.is_none() => Err(syn::Error::new(
                option.key.span(),
                "`stale_if_error` takes a window: `stale_if_error = \"1h\"`, how long past its \
                 lifetime a value is served instead of a failed refresh's `Err`",
            )),
            "stale_if_error" => {
                duration(&key, &option, Zero::Refused).map(|d| stale_if_error = Some(d))
            }
            "retry_backoff" => backoff(&option).map(|b| retry_backoff = Some(b)),
            "refresh_ahead" => {
                duration(&key, &option, Zero::Refused).map(|d| refresh_ahead = Some(d))
            }
            "wait_at_most" => {
                duration(&key, &option, Zero::Refused).map(|d| wait_at_most = Some(d))
            }
            "max_stale" => Err(syn::Error::new(
                option.key.span(),
                "`max_stale` is replaced by `stale_while_revalidate = \"..\"`: how long past \
                 its lifetime a value may be served while one caller refreshes it (and \
                 `stale_if_error = \"..\"` for how long it stands in for a failed refresh)",
            )),
            "sync_readers" => flag(&key, &option).map(|s| sync_readers = Some(s)),
            "background" => flag(&key, &option).map(|s| background = Some(s)),
            "capacity" => positive_int(&key, &option).map(|n| capacity = Some(n)),
            "name" => ident(&key, &option).map(|i| name = Some(i)),
            "crate" => path(&key, &option).map(|p| krate = Some(p)),
            "clock" => expr(&key, &option).map(|e| clock = Some(e)),
            "key" => key_spec(&option).map(|k| key_option = Some(k)),
            "skip_none" => flag(&key, &option).map(|s| skip_none = Some(s)),
            "field" => ident(&key, &option).map(|i| field = Some(i)),
            "shared" => shared_tier(&option).map(|e| shared = Some(e)),
            "associated" => flag(&key, &option).map(|s| associated = Some(s)),
            "batch" => crate::batch::option(&option).map(|i| batch = Some(i)),
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
    if field.is_none() && ttl.is_none() && ttl_expr.is_none() {
        return None;
    }
    if errors.count() > before {
        return None;
    }
    Some(Options {
        ttl,
        ttl_expr,
        none_ttl,
        sync_readers,
        capacity,
        background,
        stale_while_revalidate,
        stale_if_error,
        retry_backoff,
        refresh_ahead,
        wait_at_most,
        name,
        krate: krate.unwrap_or_else(|| syn::parse_quote!(::dogpile)),
        clock,
        key: key_option,
        skip_none,
        field,
        shared,
        associated,
        batch,
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
    unquoted(
        key,
        option,
        "an identifier",
        format!("`{key}` needs a value: write `{key} = MY_CACHE` (the `static` handle's name)"),
        format!(
            "`{key}` takes an identifier (the `static` handle's name), as in `{key} = MY_CACHE`"
        ),
    )
}

/// `crate = path`.
fn path(key: &str, option: &RawOption) -> syn::Result<syn::Path> {
    unquoted(
        key,
        option,
        "a path",
        format!(
            "`{key}` needs a value: the path of the `dogpile` crate, as in `{key} = ::my_dogpile`"
        ),
        format!("`{key}` takes the path of the `dogpile` crate, as in `{key} = ::my_dogpile`"),
    )
}

/// An option whose value is Rust syntax written as is (`T`, e.g. an identifier or a
/// path): a missing value, a quoted one (`"NAME"`, with the unquoted spelling
/// suggested) or one that does not parse as `T` is an error with its own message.
fn unquoted<T: syn::parse::Parse>(
    key: &str,
    option: &RawOption,
    what: &str,
    missing: String,
    unparsable: String,
) -> syn::Result<T> {
    let Some(value) = &option.value else {
        return Err(syn::Error::new(option.key.span(), missing));
    };
    let tokens = &value.tokens;
    if let Ok(Lit::Str(s)) = syn::parse2::<Lit>(tokens.clone()) {
        return Err(syn::Error::new(
            s.span(),
            format!(
                "`{key}` takes {what}, not a string: write `{key} = {}`",
                s.value().trim()
            ),
        ));
    }
    syn::parse2::<T>(tokens.clone()).map_err(|_| syn::Error::new_spanned(tokens, unparsable))
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
