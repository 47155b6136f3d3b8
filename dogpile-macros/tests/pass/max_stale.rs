#![deny(warnings)]
use dogpile::dogpile;

#[dogpile(ttl = "30s", max_stale = "5m")]
fn lookup(id: u32) -> String {
    format!("user {id}")
}

#[test]
fn runs() {
    assert_eq!(lookup(7), "user 7");
}
