#![deny(warnings)]
use dogpile::dogpile;
use std::time::Duration;

#[dogpile(
    ttl = "30s",
    stale_while_revalidate = "5m",
    refresh_ahead = "5s",
    wait_at_most = "2s"
)]
fn lookup(id: u32) -> String {
    format!("user {id}")
}

#[derive(Clone)]
struct Token {
    secret: String,
    valid_for: Duration,
}

// Each value's own lifetime: the `Ok` value of a `Result` fn.
#[dogpile(
    ttl = |t: &Token| t.valid_for,
    stale_while_revalidate = "0s",
    stale_if_error = "1h",
    retry_backoff = "100ms..30s"
)]
fn token(user: u32) -> Result<Token, String> {
    Ok(Token {
        secret: format!("secret {user}"),
        valid_for: Duration::from_secs(60),
    })
}

// A lifetime fn takes `&T` of the value, here `String`.
#[allow(clippy::ptr_arg)]
fn lifetime_of(row: &String) -> Duration {
    Duration::from_secs(row.len() as u64)
}

// The `Some` value of an `Option` fn; `None` kept 30 s.
#[dogpile(ttl = lifetime_of, none_ttl = "30s", background)]
fn row(id: u32) -> Option<String> {
    (id < 10).then(|| format!("row {id}"))
}

// `none_ttl = "0s"` is `skip_none`.
#[dogpile(ttl = "1h", none_ttl = "0s")]
fn maybe(id: u32) -> Option<u32> {
    (id % 2 == 0).then_some(id)
}

#[test]
fn runs() {
    assert_eq!(lookup(7), "user 7");
    assert_eq!(token(1).unwrap().secret, "secret 1");
    assert_eq!(row(1).as_deref(), Some("row 1"));
    assert_eq!(row(11), None);
    assert_eq!((maybe(2), maybe(3)), (Some(2), None));
}
