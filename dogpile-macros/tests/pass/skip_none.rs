//! `skip_none`: an `Option<T>` fn stores `T` and hands `None` back without storing it.
use dogpile::{dogpile, Cache, ReadGuard};
use std::sync::LazyLock;

#[dogpile(ttl = "1m", skip_none)]
fn row(id: u64) -> Option<String> {
    (id > 0).then(|| format!("row {id}"))
}

#[dogpile(ttl = "1m", skip_none, sync_readers)]
fn guarded(id: u64) -> std::option::Option<String> {
    (id > 0).then(|| format!("row {id}"))
}

#[dogpile(ttl = "1m", skip_none, background)]
async fn fetched(id: u64) -> Option<u64> {
    Some(id)
}

#[test]
fn runs() {
    assert_eq!(row(0), None);
    assert_eq!(row(1).as_deref(), Some("row 1"));
    let guard: Option<ReadGuard<String>> = guarded(2);
    assert_eq!(guard.as_deref().map(String::as_str), Some("row 2"));
    let _: &LazyLock<Cache<u64, String>> = &ROW;
    let _ = fetched(1);
}
