#![deny(warnings)]
use dogpile::dogpile;

#[dogpile(ttl = "60s")]
async fn fetch(url: &str, retries: u8) -> String {
    format!("{url}#{retries}")
}

#[dogpile(ttl = "60s", stale_if_error = "1h")]
async fn try_fetch(url: &str) -> Result<String, String> {
    Ok(url.to_owned())
}

#[test]
fn runs() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(runtime.block_on(fetch("a", 1)), "a#1");
    assert_eq!(runtime.block_on(fetch("a", 1)), "a#1");
    assert_eq!(runtime.block_on(try_fetch("b")).unwrap(), "b");
    assert_eq!(runtime.block_on(fetch_prime("a", 1)), "a#1");
}
