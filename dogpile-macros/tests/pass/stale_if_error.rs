#![deny(warnings)]
use dogpile::dogpile;
use std::sync::Arc;

// Errors are shared with the callers that waited for a failed creation, so they are
// `Clone`: `io::Error` is not, `Arc<io::Error>` is.
#[dogpile(ttl = "60s", stale_if_error = "1h")]
fn fetch(url: &str) -> Result<String, Arc<std::io::Error>> {
    Ok(url.to_uppercase())
}

mod io {
    pub type Result<T> = std::result::Result<T, std::sync::Arc<std::io::Error>>;
}

// An alias with one parameter counts as a `Result` too.
#[dogpile(ttl = "60s", stale_if_error = "1h")]
fn fetch_io(url: &str) -> io::Result<String> {
    Ok(url.to_uppercase())
}

#[test]
fn runs() {
    assert_eq!(fetch("a").unwrap(), "A");
    assert_eq!(fetch_io("b").unwrap(), "B");
}
