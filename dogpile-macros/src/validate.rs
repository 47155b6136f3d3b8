//! Checks the raw input and builds the model `expand` works from: the options
//! (`options`), the signature (`signature`), then how they fit together (`rules`).
//!
//! Every problem is collected (not only the first), each spanned on the token
//! that causes it, and the messages say what to write instead.

use crate::ast::{Func, Options};
use crate::attr::AttrArgs;
use crate::errors::Errors;
use crate::options::options;
use crate::rules::{combination, resolve};
use crate::signature::func;
use proc_macro2::Span;
use syn::ItemFn;

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
