//! The attribute's durations: `ttl` (or each value's own lifetime, `ttl = EXPR`), the
//! freshness windows and `retry_backoff`, parsed at compile time with the span of their
//! literal and a message that says what to write instead.

use crate::ast::SpannedDuration;
use crate::attr::RawOption;
use syn::Lit;

/// Whether a duration option may be zero.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Zero {
    Allowed,
    Refused,
}

/// `ttl = EXPR`: anything but a literal is each value's own lifetime, a closure or fn
/// over the value; rustc checks its type.
pub fn lifetime_expr(option: &RawOption) -> Option<syn::Expr> {
    let tokens = &option.value.as_ref()?.tokens;
    match syn::parse2::<syn::Expr>(tokens.clone()).ok()? {
        expr @ (syn::Expr::Closure(_) | syn::Expr::Path(_)) => Some(expr),
        _ => None,
    }
}

/// `retry_backoff = "100ms..30s"`: base and cap, both non-zero, base at most cap.
pub fn backoff(option: &RawOption) -> syn::Result<(SpannedDuration, SpannedDuration)> {
    let example = "`retry_backoff = \"100ms..30s\"` (the first pause, then doubling up to the cap)";
    let lit = match option
        .value
        .as_ref()
        .map(|v| syn::parse2::<Lit>(v.tokens.clone()))
    {
        Some(Ok(Lit::Str(lit))) => lit,
        Some(_) => {
            let tokens = &option.value.as_ref().map(|v| v.tokens.clone());
            return Err(syn::Error::new_spanned(
                tokens,
                format!("`retry_backoff` takes a string with two durations: {example}"),
            ));
        }
        None => {
            return Err(syn::Error::new(
                option.key.span(),
                format!("`retry_backoff` needs a value: {example}"),
            ))
        }
    };
    let text = lit.value();
    let Some((base, cap)) = text.split_once("..") else {
        return Err(syn::Error::new(
            lit.span(),
            format!("invalid `retry_backoff` {text:?}: write base and cap as {example}"),
        ));
    };
    let parse = |part: &str, which: &str| match humantime::parse_duration(part.trim()) {
        Ok(d) if d.is_zero() => Err(syn::Error::new(
            lit.span(),
            format!("`retry_backoff`'s {which} must be greater than zero: {example}"),
        )),
        Ok(d) => Ok(SpannedDuration {
            value: d,
            span: lit.span(),
        }),
        Err(e) => Err(syn::Error::new(
            lit.span(),
            format!("invalid `retry_backoff` {which} {part:?}: {e}; write {example}"),
        )),
    };
    let (base, cap) = (parse(base, "base")?, parse(cap, "cap")?);
    if base.value > cap.value {
        return Err(syn::Error::new(
            lit.span(),
            format!(
                "`retry_backoff`'s base ({}) is above its cap ({}): the pause doubles from the \
                 base up to the cap, as in {example}",
                humantime::format_duration(base.value),
                humantime::format_duration(cap.value)
            ),
        ));
    }
    Ok((base, cap))
}

/// `ttl = "…"` and the other durations: a humantime string, parsed now; non-zero unless
/// `zero` allows it.
pub fn duration(key: &str, option: &RawOption, zero: Zero) -> syn::Result<SpannedDuration> {
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
                Ok(d) if d.is_zero() && zero == Zero::Refused => Err(syn::Error::new(
                    lit.span(),
                    if key == "ttl" {
                        "`ttl` must be greater than zero: with a zero ttl every value is stale \
                         as soon as it is made"
                            .to_owned()
                    } else {
                        format!("`{key}` must be greater than zero; leave it out instead")
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
            if key == "ttl" {
                format!(
                    "`ttl` takes a duration string literal, parsed at compile time: write e.g. \
                     `ttl = \"60s\"` ({example}); or each value's own lifetime, a closure over \
                     the value: `ttl = |token: &Token| token.valid_for`"
                )
            } else {
                format!(
                    "`{key}` takes a duration string literal, parsed at compile time: \
                     write e.g. `{key} = \"60s\"` ({example})"
                )
            },
        )),
    }
}
