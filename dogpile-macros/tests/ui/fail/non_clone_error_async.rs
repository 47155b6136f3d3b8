use dogpile::dogpile;

#[derive(Debug)]
struct FetchError;

#[dogpile(ttl = "60s")]
async fn fetch(url: &str) -> Result<String, FetchError> {
    Ok(url.to_uppercase())
}

fn main() {
    let _ = fetch("https://example.com");
}
