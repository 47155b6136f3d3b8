// `shared = ..` takes a fleet tier (a `dogpile::SharedTier` for the fn's key and value);
// a URL string is not one. rustc underlines the expression.
use dogpile::dogpile;

#[dogpile(ttl = "10s", shared = String::from("redis://127.0.0.1/"))]
fn double(x: u64) -> u64 {
    x * 2
}

fn main() {
    assert_eq!(double(2), 4);
}
