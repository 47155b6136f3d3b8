#![deny(warnings)]
use dogpile::dogpile;
use std::sync::atomic::{AtomicUsize, Ordering};

static CALLS: AtomicUsize = AtomicUsize::new(0);

#[dogpile(ttl = "60s")]
fn parse(text: &str) -> Result<u32, std::num::ParseIntError> {
    CALLS.fetch_add(1, Ordering::Relaxed);
    text.parse()
}

#[test]
fn runs() {
    assert!(parse("x").is_err());
    assert!(parse("x").is_err());
    assert_eq!(CALLS.load(Ordering::Relaxed), 2, "errors are not cached");
    assert_eq!(parse("7"), Ok(7));
    assert_eq!(parse("7"), Ok(7));
    assert_eq!(CALLS.load(Ordering::Relaxed), 3);
    assert!(parse_prime("y").is_err());
    assert_eq!(PARSE.remove("y"), None, "`_prime` stores only `Ok`");
    assert_eq!(PARSE.remove("7"), Some(7));
}
