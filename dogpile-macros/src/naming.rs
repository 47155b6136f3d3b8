//! The names the expansion gives: where the cache lives and the handle's name.

use crate::ast::{Func, Options};
use quote::format_ident;

/// Whether the fn is in an `impl` block: a method, an associated fn marked
/// `associated`, or one whose signature or body names `Self`. Its cache handle is then
/// an associated fn, `{fn}_cache()`, since an `impl` can't hold a `static`.
pub fn in_impl(options: &Options, func: &Func) -> bool {
    func.receiver.is_some() || options.associated.is_some() || func.names_self
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
