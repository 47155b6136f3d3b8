use dogpile::dogpile;

#[dogpile(ttl = "60s", background, ttl = "5m")]
fn lookup(id: u32) -> String {
    format!("user {id}")
}

fn main() {
    let _ = lookup(1);
}
