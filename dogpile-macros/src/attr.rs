//! The attribute's arguments as written: comma-separated `key [= value]` entries,
//! parsed for shape only. What each option accepts is checked by `options`.

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::discouraged::Speculative;
use syn::parse::{Parse, ParseStream};
use syn::{Expr, Ident, Token};

/// `#[dogpile(<options>)]`: comma-separated `key` or `key = value` entries.
///
/// Only the shape is checked here; what each option accepts is checked by
/// `validate`, so that every bad option is reported, not just the first.
pub struct AttrArgs {
    pub options: Vec<RawOption>,
}

/// One option as written: `sync_readers`, `ttl = "60s"` or `key(u64) = user.id`.
pub struct RawOption {
    /// The option name (keywords allowed, for `crate`).
    pub key: Ident,
    /// `(..)` right after the name: the key type of a computed `key(T) = EXPR`.
    pub paren: Option<proc_macro2::Group>,
    /// `= value`, if given.
    pub value: Option<RawValue>,
}

/// The `= value` part of an option: every token up to the next top-level comma, or for
/// `clock`, `key`, `shared` and `ttl`, a whole Rust expression (which may hold commas, as in
/// `make::<A, B>()` or a closure's parameters).
pub struct RawValue {
    pub eq: Token![=],
    pub tokens: TokenStream,
}

impl Parse for AttrArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut options = Vec::new();
        while !input.is_empty() {
            if !input.peek(Ident::peek_any) {
                return Err(input.error(
                    "expected an option name, as in `#[dogpile(ttl = \"60s\", background)]`",
                ));
            }
            let key = input.call(Ident::parse_any)?;
            let paren = match input.cursor().group(proc_macro2::Delimiter::Parenthesis) {
                Some((_, span, _)) if key.unraw() == "key" => {
                    let tree: TokenTree = input.parse()?;
                    match tree {
                        TokenTree::Group(group) => Some(group),
                        _ => return Err(syn::Error::new(span.join(), "expected `(..)`")),
                    }
                }
                _ => None,
            };
            let value = if input.peek(Token![=]) {
                let eq: Token![=] = input.parse()?;
                let mut tokens = TokenStream::new();
                if ["clock", "key", "shared", "ttl"]
                    .iter()
                    .any(|k| key.unraw() == k)
                {
                    // An expression may hold commas outside any group (turbofish generics,
                    // closure parameters): take a whole one if it ends the option.
                    let fork = input.fork();
                    if let Ok(expr) = fork.parse::<Expr>() {
                        if fork.is_empty() || fork.peek(Token![,]) {
                            input.advance_to(&fork);
                            tokens = expr.into_token_stream();
                        }
                    }
                }
                while !input.is_empty() && !input.peek(Token![,]) {
                    tokens.extend([input.parse::<TokenTree>()?]);
                }
                if tokens.is_empty() {
                    return Err(syn::Error::new(
                        eq.span,
                        format!("expected a value after `{key} =`"),
                    ));
                }
                Some(RawValue { eq, tokens })
            } else {
                None
            };
            if !input.is_empty() && !input.peek(Token![,]) {
                return Err(input.error(format!(
                    "expected `,` or `=` after `{key}`; options are written `key = value` or `flag`, \
                     as in `#[dogpile(ttl = \"60s\", background)]`"
                )));
            }
            options.push(RawOption { key, paren, value });
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(AttrArgs { options })
    }
}
