#![deny(warnings)]
use dogpile::dogpile;

#[dogpile(ttl = "60s", stale_if_error)]
fn fetch(url: &str) -> Result<String, std::io::Error> {
    Ok(url.to_uppercase())
}

// An alias with one parameter counts as a `Result` too.
#[dogpile(ttl = "60s", stale_if_error)]
fn fetch_io(url: &str) -> std::io::Result<String> {
    Ok(url.to_uppercase())
}

fn main() {
    assert_eq!(fetch("a").unwrap(), "A");
    assert_eq!(fetch_io("b").unwrap(), "B");
}
