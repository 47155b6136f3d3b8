//! `RedisTier::open`: URLs are parsed and checked without a server (F7), and bad ones
//! are clear errors that never show the password.

use dogpile_redis::{Error, RedisTier};

#[test]
fn good_urls_open_without_a_server() {
    for url in [
        "redis://127.0.0.1:1/",
        "redis://127.0.0.1",
        "redis://app:s3cret@cache.internal:6380/3",
        "redis://:s3cret@127.0.0.1/0",
        "redis+unix:///run/redis.sock",
    ] {
        assert!(RedisTier::open(url).is_ok(), "{url}");
    }
}

#[cfg(feature = "tls")]
#[test]
fn rediss_opens_with_tls() {
    assert!(RedisTier::open("rediss://app:s3cret@cache.internal:6380/0").is_ok());
}

#[cfg(not(feature = "tls"))]
#[test]
fn rediss_without_the_tls_feature_is_a_clear_error() {
    let err = RedisTier::open("rediss://app:s3cret@cache.internal:6380/0").unwrap_err();
    assert!(matches!(err, Error::InvalidUrl(_)), "{err}");
    assert!(!err.to_string().contains("s3cret"), "{err}");
}

#[test]
fn malformed_urls_are_clear_errors() {
    for url in [
        "",
        "127.0.0.1:6379",
        "http://127.0.0.1:6379",
        "redis://:s3cret@127.0.0.1:notaport/",
        "redis://app:s3cret@127.0.0.1:6379/notadb",
    ] {
        let err = RedisTier::open(url).expect_err(url);
        assert!(matches!(err, Error::InvalidUrl(_)), "{url}: {err:?}");
        let text = err.to_string();
        assert!(text.starts_with("invalid Redis URL"), "{url}: {text}");
        assert!(!text.contains("s3cret"), "{url}: password leaked in {text}");
        assert!(
            !format!("{err:?}").contains("s3cret"),
            "{url}: password leaked in Debug"
        );
    }
}

#[test]
fn debug_output_hides_the_password() {
    let tier = RedisTier::open("redis://app:s3cret@127.0.0.1/")
        .unwrap()
        .namespace("ns");
    let shown = format!("{tier:?}");
    assert!(shown.contains("ns") && !shown.contains("s3cret"), "{shown}");
}

#[test]
#[should_panic(expected = "too short")]
fn a_lease_too_short_to_renew_is_refused() {
    let _ = RedisTier::open("redis://127.0.0.1/")
        .unwrap()
        .lease(std::time::Duration::from_millis(1));
}
