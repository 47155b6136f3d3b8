#![deny(warnings)]
use dogpile::dogpile;

#[dogpile(ttl = "60s", name = USERS)]
fn lookup(id: u32) -> String {
    format!("user {id}")
}

#[test]
fn runs() {
    assert_eq!(lookup(7), "user 7");
    assert_eq!(USERS.len(), 1);
    USERS.invalidate(&7);
    assert_eq!(USERS.remove(&7).as_deref(), Some("user 7"));
    USERS.clear();
    let _stats = USERS.stats();
}
