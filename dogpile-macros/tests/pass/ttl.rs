#![deny(warnings)]
//! The one required option, with a borrowed and an owned argument.
use dogpile::dogpile;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[derive(Clone, Hash, PartialEq, Eq)]
enum Lang {
    En,
}

static CALLS: AtomicUsize = AtomicUsize::new(0);

/// Renders a page.
#[dogpile(ttl = "1h 30m")]
fn render(page: &str, lang: Lang) -> Arc<String> {
    CALLS.fetch_add(1, Ordering::Relaxed);
    let lang = match lang {
        Lang::En => "en",
    };
    Arc::new(format!("{page}.{lang}"))
}

#[test]
fn runs() {
    assert_eq!(*render("home", Lang::En), "home.en");
    assert_eq!(*render("home", Lang::En), "home.en");
    assert_eq!(CALLS.load(Ordering::Relaxed), 1);
    let cache: &dogpile::Cache<(String, Lang), Arc<String>> = &RENDER;
    assert_eq!(cache.len(), 1);
}
