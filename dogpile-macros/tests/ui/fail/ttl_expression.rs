use dogpile::dogpile;
use std::time::Duration;

#[dogpile(ttl = Duration::from_secs(5))]
fn lookup(id: u32) -> String {
    format!("user {id}")
}

fn main() {
    let _ = Duration::ZERO;
    let _ = lookup(1);
}
