//! `key = ..`: only the named arguments (or a computed value) form the key; the others
//! need no bounds and are passed to the body.
use dogpile::{dogpile, Cache};
use std::sync::{Arc, LazyLock};

/// Neither `Hash` nor `Clone`.
struct Pool;

#[dogpile(ttl = "1m", key = id)]
fn user(db: &Pool, id: u64) -> Arc<String> {
    let _ = db;
    Arc::new(format!("user {id}"))
}

#[dogpile(ttl = "1m", key = (region, page))]
fn listing(db: &Pool, page: u32, region: &str, verbose: bool) -> String {
    let _ = (db, verbose);
    format!("{region}/{page}")
}

struct Request {
    id: u64,
}

#[dogpile(ttl = "1m", key(u64) = request.id * 2)]
async fn profile(request: &Request, db: &Pool) -> u64 {
    let _ = db;
    request.id
}

#[dogpile(ttl = "1m", key = ())]
fn config(db: &Pool) -> u8 {
    let _ = db;
    1
}

#[test]
fn runs() {
    assert_eq!(*user(&Pool, 1), "user 1");
    assert_eq!(listing(&Pool, 2, "eu", true), "eu/2");
    assert_eq!(config(&Pool), 1);
    let _: &LazyLock<Cache<u64, Arc<String>>> = &USER;
    let _: &LazyLock<Cache<(String, u32), String>> = &LISTING;
    let _: &LazyLock<Cache<u64, u64>> = &PROFILE;
    let _: &LazyLock<Cache<(), u8>> = &CONFIG;
    let _ = profile(&Request { id: 3 }, &Pool);
}
