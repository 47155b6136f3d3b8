use dogpile::dogpile;
use std::fmt::Display;

#[dogpile(ttl = "60s")]
fn describe<T: Display>(value: T) -> String {
    format!("<{value}>")
}

fn main() {
    let _ = describe(1);
}
