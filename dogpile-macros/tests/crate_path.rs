#![deny(warnings)]
//! `crate = path` for a renamed or re-exported runtime. Its own test crate: a renamed
//! dependency is named from the crate root (`::renamed`).
extern crate dogpile as renamed;

mod reexport {
    pub use dogpile as rt;
}

#[renamed::dogpile(ttl = "60s", crate = ::renamed)]
fn one(id: u32) -> u32 {
    id + 1
}

#[reexport::rt::dogpile(ttl = "60s", crate = crate::reexport::rt)]
fn two(id: u32) -> u32 {
    id + 2
}

#[test]
fn runs() {
    assert_eq!(one(1), 2);
    assert_eq!(two(1), 3);
}
