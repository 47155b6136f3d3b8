#![deny(warnings)]
use dogpile::{dogpile, ReadGuard};

#[dogpile(ttl = "10s", sync_readers)]
fn config(path: &str) -> Vec<String> {
    vec![path.to_owned()]
}

#[dogpile(ttl = "10s", sync_readers)]
fn try_config(path: &str) -> Result<Vec<String>, String> {
    Ok(vec![path.to_owned()])
}

#[test]
fn runs() {
    let guard: ReadGuard<Vec<String>> = config("a.toml");
    assert_eq!(guard.len(), 1);
    drop(guard);
    let guard: Result<ReadGuard<Vec<String>>, String> = try_config("b.toml");
    assert_eq!(guard.unwrap()[0], "b.toml");
    // The companions return plain values.
    let plain: Vec<String> = config_no_cache("c.toml");
    assert_eq!(plain.len(), 1);
}
