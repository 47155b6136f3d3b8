//! Every error of one attribute, collected so that all of them are reported at once.

use proc_macro2::Span;
use quote::ToTokens;
use std::fmt::Display;

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
